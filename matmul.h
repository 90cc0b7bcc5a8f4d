/* matmul.h - the one matrix-product interface every layer goes through, so that
 * SIMD kernels can replace the portable one without touching the layers. */
#ifndef DPO_MATMUL_H
#define DPO_MATMUL_H

/*
 * out (M,N) = init + A @ B, where
 *   init = out            if accumulate (gradients add into what is there),
 *        = bias (N,)      broadcast over rows, if bias is non-NULL,
 *        = 0              otherwise;
 *   A is (M,K) row-major, or stored transposed as (K,M) when a_t is set;
 *   B is (K,N) row-major, or stored transposed as (N,K) when b_t is set.
 * Every out[i][j] is summed in the same order (init, then k = 0, 1, ..., K-1),
 * whatever its position, the matrix shape or the thread count: results are
 * bit-identical for any number of OpenMP threads and for a row whether it sits
 * alone or inside a larger batch.
 */
void mm_matmul(float *out, const float *a, const float *b, const float *bias,
               int M, int N, int K, int a_t, int b_t, int accumulate);

/* The scalar reference with the same semantics: a plain triple loop. Tests
 * compare mm_matmul against it. */
void mm_matmul_ref(float *out, const float *a, const float *b, const float *bias,
                   int M, int N, int K, int a_t, int b_t, int accumulate);

#endif
