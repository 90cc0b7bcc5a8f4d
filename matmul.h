/* matmul.h - the one matrix-product interface every layer goes through; behind
 * it, one SIMD micro-kernel per instruction set (matmul_kernels.h). */
#ifndef DPO_MATMUL_H
#define DPO_MATMUL_H

#include <stddef.h> /* NULL */

/*
 * Dimensions, here and in every mm_* function: out is M rows by N columns, and
 * K is the inner dimension that is summed over. (N means columns only here;
 * model.c calls its token count n_tok.)
 *
 * out (M,N) = init + A @ B, where
 *   init = out            if accumulate (gradients add into what is there),
 *        = bias (N,)      broadcast over rows, if bias is non-NULL,
 *        = 0              otherwise;
 *   A is (M,K) row-major, or stored transposed as (K,M) when a_t is set;
 *   B is (K,N) row-major, or stored transposed as (N,K) when b_t is set.
 * Every out[i][j] is summed by the same steps,
 *     s = init;  s = fma(a_ik, b_kj, s)  for k = 0, 1, ..., K-1
 * (fma: the fused multiply-add, one rounding per step), whatever its position,
 * the matrix shape, the thread count or the kernel: results are bit-identical
 * for any number of OpenMP threads, for a row whether it sits alone or inside a
 * larger batch, and between the scalar, AVX2, AVX-512 and NEON kernels.
 */
void mm_matmul(float *out, const float *a, const float *b, const float *bias,
               int M, int N, int K, int a_t, int b_t, int accumulate);

/* The same product on the calling thread alone, on sub-matrices: row i of out
 * starts at out + i ldo; row i of A at a + i lda (or, when a_t, row k of its
 * stored transpose at a + k lda); row k of B at b + k ldb (or, when b_t, row j
 * of its stored transpose at b + j ldb). No bias: init is out (accumulate) or 0.
 * For a caller that is already one task of a parallel loop (the attention: one
 * task per sequence and head, its heads' columns strided inside the qkv rows).
 * The same steps per element as mm_matmul, so the same bits. */
void mm_matmul_sub(float *out, size_t ldo, const float *a, size_t lda, const float *b, size_t ldb, int M, int N,
                   int K, int a_t, int b_t, int accumulate);

/* The scalar reference with the same semantics: a plain triple loop with fmaf.
 * Tests compare mm_matmul against it, bit for bit. */
void mm_matmul_ref(float *out, const float *a, const float *b, const float *bias,
                   int M, int N, int K, int a_t, int b_t, int accumulate);

/* The kernel this build runs: "avx512", "avx2", "neon" or "scalar". */
const char *mm_kernel_name(void);

/* Its register tile (mr x nr) and block sizes (kc deep, nc columns; nc is read
 * from the L2 cache size on the first product). For --version, bench and tests. */
void mm_blocking(int *mr, int *nr, int *kc, int *nc);

/* The fp32 FMA peak of this build's instruction set on the current threads, in
 * GFLOP/s (a fused multiply-add counts 2): every thread runs independent
 * chains of vector FMAs in registers (no memory access) for about `seconds`;
 * *threads_out (when not NULL) receives how many threads ran. The most any
 * product can reach; dpo bench gives each product as a share of it. */
double mm_fma_peak(double seconds, int *threads_out);

/* Named forms of mm_matmul, so that a call says which operand is transposed and
 * whether it adds into out; "bt" means b is stored transposed, "at" a, "add" +=.
 * The layers call these; mm_matmul stays the one kernel behind them. */

/* out (M,N) = a (M,K) @ b (K,N) + bias (N), or + 0 when bias is NULL.
 * A linear layer's forward: out = inp w + b. */
static inline void mm_ab(float *out, const float *a, const float *b, const float *bias,
                         int M, int N, int K) {
    mm_matmul(out, a, b, bias, M, N, K, 0, 0, 0);
}

/* out (M,N) = a (M,K) @ b^T, b stored (N,K). */
static inline void mm_a_bt(float *out, const float *a, const float *b, int M, int N, int K) {
    mm_matmul(out, a, b, NULL, M, N, K, 0, 1, 0);
}

/* out (M,N) += a (M,K) @ b^T, b stored (N,K).
 * A linear layer's input gradient: dinp += dout w^T. */
static inline void mm_add_a_bt(float *out, const float *a, const float *b, int M, int N, int K) {
    mm_matmul(out, a, b, NULL, M, N, K, 0, 1, 1);
}

/* out (M,N) += a^T @ b (K,N), a stored (K,M).
 * A linear layer's weight gradient: dw += inp^T dout. */
static inline void mm_add_at_b(float *out, const float *a, const float *b, int M, int N, int K) {
    mm_matmul(out, a, b, NULL, M, N, K, 1, 0, 1);
}

#endif
