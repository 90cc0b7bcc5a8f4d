/* matmul.c - owns the matrix products: the blocking, packing and threading
 * around one micro-kernel per instruction set (matmul_kernels.h), and the
 * scalar reference they are tested against. It must never allocate, print, or
 * change the summation steps of an output element with the thread count, the
 * element's position, the blocking or the kernel.
 *
 * Every output element is summed as  s = init;  s = fma(a_k, b_k, s) for k = 0,
 * 1, ..., K-1  (see matmul_kernels.h): the reference below does exactly that with
 * fmaf, so each kernel gives the reference's bits.
 *
 * Blocking (the classic packed-panel scheme): K is cut into blocks of kc, N
 * into blocks of nc. For each (nc, kc) block the threads pack B into column
 * panels of NR columns (kc x NR, zero-padded past N); then each thread takes
 * row panels of MR rows, packs its A panel (kc x MR, zero-padded past M) and
 * runs the micro-kernel on it against every B panel of the block. The A panel
 * (kc MR floats) stays in the L1 cache while the B panels stream from the L2
 * cache, where the packed block (kc nc floats) is sized to fit:
 *   kc = 256: the A panel (14 KiB for AVX-512's 14 rows, 6 KiB for AVX2's 6) is
 *        reused against every B panel (32 KiB for AVX-512's 32 columns, 16 for
 *        AVX2's); 128, 192, 384 and 512 measured no better on Zen 5 (2026-12-01);
 *   nc = the largest multiple of NR with kc nc floats <= 3/4 of the L2 cache
 *        (read with sysconf where the C library knows it; 512 KiB assumed
 *        otherwise), at most NC_MAX: 768 columns on a 1 MiB L2 (Zen 4/5), 384 on
 *        512 KiB (Zen 3). On Zen 5, 768 against 512 (half the L2) made the
 *        124M model's products of 768 columns 10-25% faster (one block of all
 *        768 columns instead of two); 896 and 1024 were no better than 768.
 * The block sizes only decide which steps run when: an element's steps are the
 * same whatever kc and nc are, so neither changes a bit of the result.
 *
 * That is the row split. Products of few rows, or few tiles per block, split
 * by column blocks instead, each thread packing its own
 * (matmul_by_column_blocks); at most 4 rows against an untransposed B skip
 * packing altogether (matmul_rows). All three give the same bits.
 *
 * Edge tiles (fewer than MR rows or NR columns left) run the same kernel on a
 * copy of the tile padded with zeros, so an element's value never depends on
 * where it sits. */
#include "matmul.h"

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "matmul_kernels.h"
#include "util.h"

#define MR MM_MR
#define NR MM_NR
#define KC 256     /* depth of a block */
#define NC_MAX 768 /* most columns in a packed B block: KC NC_MAX floats = 768 KiB */
#define NC_SUB 256 /* columns of mm_matmul_sub's block (attention's narrow products) */

/* ------------------------------------------------------------------------ */
/* scalar reference */

void mm_matmul_ref(float *out, const float *a, const float *b, const float *bias,
                   int M, int N, int K, int a_t, int b_t, int accumulate) {
    int i, j, k;
    for (i = 0; i < M; i++) {
        for (j = 0; j < N; j++) {
            float s = accumulate ? out[(size_t)i * N + j] : (bias ? bias[j] : 0.0f);
            for (k = 0; k < K; k++) {
                float av = a_t ? a[(size_t)k * M + i] : a[(size_t)i * K + k];
                float bv = b_t ? b[(size_t)j * K + k] : b[(size_t)k * N + j];
                s = fmaf(av, bv, s);
            }
            out[(size_t)i * N + j] = s;
        }
    }
}

const char *mm_kernel_name(void) { return MM_KERNEL_NAME; }

/* ------------------------------------------------------------------------ */
/* block sizes */

static int nc_cols; /* set by the first call from the calling thread, then read only */

static int block_cols(void) {
    if (!nc_cols) {
        long l2 = 0;
        int nc;
#ifdef _SC_LEVEL2_CACHE_SIZE
        l2 = sysconf(_SC_LEVEL2_CACHE_SIZE);
#endif
        /* cppcheck-suppress knownConditionTrueFalse ; only when _SC_LEVEL2_CACHE_SIZE is not defined */
        if (l2 <= 0) l2 = 512L * 1024;
        nc = (int)(l2 / 4 * 3 / ((long)KC * (long)sizeof(float)));
        nc = nc / NR * NR;
        if (nc < NR) nc = NR;
        if (nc > NC_MAX / NR * NR) nc = NC_MAX / NR * NR;
        nc_cols = nc;
    }
    return nc_cols;
}

void mm_blocking(int *mr, int *nr, int *kc, int *nc) {
    *mr = MR;
    *nr = NR;
    *kc = KC;
    *nc = block_cols();
}

/* a float buffer of n floats aligned to 64 bytes inside storage of n + 16 */
static float *align64(float *storage) {
    uintptr_t p = (uintptr_t)storage;
    return (float *)(void *)((p + 63) & ~(uintptr_t)63);
}

/* ------------------------------------------------------------------------ */
/* packing */

/* panel p of bp (kc, NR) <- B[k0:k0+kc, j0+p*NR : j0+p*NR+NR], zero-padded past nc */
static void pack_b_panel(float *bp, const float *b, size_t ldb, int b_t,
                         int k0, int kc, int j0, int nc, int p) {
    float *dst = bp + (size_t)p * kc * NR;
    int jbase = j0 + p * NR, w = nc - p * NR < NR ? nc - p * NR : NR, k, jj;
    if (!b_t) {
        for (k = 0; k < kc; k++) {
            const float *src = b + (size_t)(k0 + k) * ldb + jbase;
            for (jj = 0; jj < w; jj++) dst[k * NR + jj] = src[jj];
            for (; jj < NR; jj++) dst[k * NR + jj] = 0.0f;
        }
    } else if (w == NR) { /* the NR source rows transposed, in registers (matmul_kernels.h) */
        mm_pack_t(dst, NR, b + (size_t)jbase * ldb + k0, ldb, kc);
    } else { /* an edge panel: k outer, the w source rows read side by side */
        const float *src = b + (size_t)jbase * ldb + k0;
        for (k = 0; k < kc; k++) {
            for (jj = 0; jj < w; jj++) dst[k * NR + jj] = src[(size_t)jj * ldb + k];
            for (; jj < NR; jj++) dst[k * NR + jj] = 0.0f;
        }
    }
}

/* ap (kc, MR) <- A[i0:i0+h, k0:k0+kc] transposed into k-major order, zero-padded */
static void pack_a(float *ap, const float *a, size_t lda, int a_t,
                   int i0, int h, int k0, int kc) {
    int k, ii;
    if (a_t) {
        for (k = 0; k < kc; k++) {
            const float *src = a + (size_t)(k0 + k) * lda + i0;
            for (ii = 0; ii < h; ii++) ap[k * MR + ii] = src[ii];
            for (; ii < MR; ii++) ap[k * MR + ii] = 0.0f;
        }
    } else if (h == MR) { /* the MR source rows transposed, in registers (matmul_kernels.h) */
        mm_pack_t(ap, MR, a + (size_t)i0 * lda + k0, lda, kc);
    } else {
        for (ii = 0; ii < MR; ii++) {
            if (ii < h) {
                const float *src = a + (size_t)(i0 + ii) * lda + k0;
                for (k = 0; k < kc; k++) ap[k * MR + ii] = src[k];
            } else {
                for (k = 0; k < kc; k++) ap[k * MR + ii] = 0.0f;
            }
        }
    }
}

/* ------------------------------------------------------------------------ */
/* blocked product */

/* A product's operands: out (M, N), its rows ldo floats apart; A (M, K), or
 * stored transposed as (K, M) when a_t, its stored rows lda apart; B (K, N), or
 * stored transposed as (N, K) when b_t, its stored rows ldb apart. mm_matmul's
 * whole matrices have ldo = N, lda = K (M when a_t), ldb = N (K when b_t). */
typedef struct {
    float *out;
    const float *a, *b, *bias;
    size_t ldo, lda, ldb;
    int M, N, K, a_t, b_t, accumulate;
} mm_op;

static mm_op make_op(float *out, size_t ldo, const float *a, size_t lda, const float *b, size_t ldb,
                     const float *bias, int M, int N, int K, int a_t, int b_t, int accumulate) {
    mm_op op;
    op.out = out;
    op.a = a;
    op.b = b;
    op.bias = bias;
    op.ldo = ldo;
    op.lda = lda;
    op.ldb = ldb;
    op.M = M;
    op.N = N;
    op.K = K;
    op.a_t = a_t;
    op.b_t = b_t;
    op.accumulate = accumulate;
    return op;
}

static const float zero_row[NR]; /* the initial value of a product without bias */

/* One row panel (rows i0..i0+h-1) against every packed B panel of the block:
 * out[rows, j0:j0+nc] = (first block ? init : out) + A[rows, k0:k0+kc] B[k0:k0+kc, j0:j0+nc] */
static void row_panel(const mm_op *op, const float *bp, int first, int i0, int h, int k0, int kc, int j0,
                      int nc) {
    float ap_store[KC * MR + 16], tile_store[MR * NR + 16], row_store[NR + 16];
    float *ap = align64(ap_store), *tile = align64(tile_store), *prow = align64(row_store);
    const float *bias = op->bias;
    size_t ldo = op->ldo;
    int npan = (nc + NR - 1) / NR, q, ii, jj;
    int from_row = first && !op->accumulate; /* start from the bias (or 0), not from out */
    pack_a(ap, op->a, op->lda, op->a_t, i0, h, k0, kc);
    for (q = 0; q < npan; q++) {
        int jb = j0 + q * NR, w = nc - q * NR < NR ? nc - q * NR : NR;
        const float *bq = bp + (size_t)q * kc * NR;
        float *c = op->out + (size_t)i0 * ldo + jb;
        const float *init = NULL;
        if (from_row) {
            if (!bias) init = zero_row;
            else if (w == NR) init = bias + jb;
            else { /* a partial bias row, zero-padded */
                for (jj = 0; jj < NR; jj++) prow[jj] = jj < w ? bias[jb + jj] : 0.0f;
                init = prow;
            }
        }
        if (h == MR && w == NR) {
            mm_kernel(kc, ap, bq, c, ldo, init);
        } else { /* an edge tile: run the kernel on a zero-padded copy */
            if (!init)
                for (ii = 0; ii < MR; ii++)
                    for (jj = 0; jj < NR; jj++)
                        tile[ii * NR + jj] = ii < h && jj < w ? c[(size_t)ii * ldo + jj] : 0.0f;
            mm_kernel(kc, ap, bq, tile, NR, init);
            for (ii = 0; ii < h; ii++)
                memcpy(c + (size_t)ii * ldo, tile + (size_t)ii * NR, (size_t)w * sizeof(float));
        }
    }
}

/* Columns j0..j0+nc-1 of the product, every K block and every row panel, on the
 * calling thread: the B block is packed into bp (KC x NC_MAX floats), then each
 * row panel runs over it. */
static void column_block(const mm_op *op, float *bp, int j0, int nc) {
    int nrow = (op->M + MR - 1) / MR, npan = (nc + NR - 1) / NR, k0, p, r;
    for (k0 = 0; k0 < op->K; k0 += KC) {
        int kc = op->K - k0 < KC ? op->K - k0 : KC;
        for (p = 0; p < npan; p++) pack_b_panel(bp, op->b, op->ldb, op->b_t, k0, kc, j0, nc, p);
        for (r = 0; r < nrow; r++) {
            int i0 = r * MR, h = op->M - i0 < MR ? op->M - i0 : MR;
            row_panel(op, bp, k0 == 0, i0, h, k0, kc, j0, nc);
        }
    }
}

/* The column split: each thread takes whole column blocks of ncb columns, packs
 * them into its own buffer and runs every row panel over them, with no barrier
 * at all. Used when the rows are few (generation feeds one row per sequence:
 * too few row panels to share, and a barrier per block for little work) or
 * when a block holds few tiles and there are no more rows than columns (a
 * weight gradient of a small model, 128 x 384 summed over 2048 tokens: a
 * shared B block would cost two barriers per K block for 120 tiles; measured
 * 231 against 184 GFLOP/s on Zen 5). The 124M model's products of 768 columns
 * (888 tiles and more per block) were 10-15% faster with the row split. Each
 * output element is still summed by the same kernel steps, so the bits are
 * those of the row split. */
#define FEW_ROW_PANELS 8
#define FEW_TILES 512 /* row panels x column panels of a whole product */

static void matmul_by_column_blocks(const mm_op *op, int ncb) {
    int nblk = (op->N + ncb - 1) / ncb, blk;
    DPO_OMP_PARALLEL_IF((double)op->M * op->N * op->K)
    {
        float bp_store[KC * NC_MAX + 16]; /* this thread's packed B block: 768 KiB of its stack */
        float *bp = align64(bp_store);
        DPO_OMP_LOOP
        for (blk = 0; blk < nblk; blk++) {
            int j0 = blk * ncb;
            column_block(op, bp, j0, op->N - j0 < ncb ? op->N - j0 : ncb);
        }
    }
}

/* At most ROWS_DIRECT rows against B stored (K, N), as generation's linear
 * layers feed one row per sequence: packing B and running a tile of MR rows
 * for one or two real ones would waste most of the work, so each row streams
 * its slice of B directly, the columns vectorized:
 *   out[i][j] = init;  out[i][j] = fmaf(a_ik, b_kj, out[i][j])  for k in order,
 * the same steps as every kernel's, so the same bits. The threads share out
 * column blocks of 256 (B's block of K x 256 floats is read once per row, from
 * the cache after the first). */
#define ROWS_DIRECT 4
#define ROWS_COLS 256

static void matmul_rows(float *out, const float *a, const float *b, const float *bias, int M, int N, int K,
                        int a_t, int accumulate) {
    int nblk = (N + ROWS_COLS - 1) / ROWS_COLS, blk;
    DPO_OMP_PARALLEL_IF((double)M * N * K)
    {
        DPO_OMP_LOOP
        for (blk = 0; blk < nblk; blk++) {
            int j0 = blk * ROWS_COLS, nj = N - j0 < ROWS_COLS ? N - j0 : ROWS_COLS, i, j, k;
            for (i = 0; i < M; i++) {
                float *o = out + (size_t)i * N + j0;
                if (!accumulate)
                    for (j = 0; j < nj; j++) o[j] = bias ? bias[j0 + j] : 0.0f;
                for (k = 0; k < K; k++) {
                    const float av = a_t ? a[(size_t)k * M + i] : a[(size_t)i * K + k];
                    const float *br = b + (size_t)k * N + j0;
                    for (j = 0; j < nj; j++) o[j] = fmaf(av, br[j], o[j]);
                }
            }
        }
    }
}

/* out = init when there is nothing to sum (K = 0) */
static void init_only(const mm_op *op) {
    int i, j;
    if (op->accumulate) return;
    for (i = 0; i < op->M; i++)
        for (j = 0; j < op->N; j++) op->out[(size_t)i * op->ldo + j] = op->bias ? op->bias[j] : 0.0f;
}

void mm_matmul(float *out, const float *a, const float *b, const float *bias,
               int M, int N, int K, int a_t, int b_t, int accumulate) {
    float bp_store[KC * NC_MAX + 16]; /* packed B block: 768 KiB, on the calling thread's stack */
    float *bp = align64(bp_store);
    int nrow = (M + MR - 1) / MR, NC;
    mm_op op = make_op(out, (size_t)N, a, (size_t)(a_t ? M : K), b, (size_t)(b_t ? K : N), bias, M, N, K, a_t,
                       b_t, accumulate);
    if (M <= 0 || N <= 0) return;
    if (K <= 0) {
        init_only(&op);
        return;
    }
    if (M <= ROWS_DIRECT && !b_t) {
        matmul_rows(out, a, b, bias, M, N, K, a_t, accumulate);
        return;
    }
    NC = block_cols();
    {
        int threads = util_threads(), npan = (N + NR - 1) / NR;
        if (threads > 1 && npan >= 2 &&
            (nrow <= FEW_ROW_PANELS || (M <= N && (double)nrow * npan < FEW_TILES))) {
            /* a whole number of blocks per thread, each at most NC columns wide
             * (2304 columns on 2 threads: 6 blocks of 384, not 4 of 512 and one
             * of 256, which left one thread twice the other's work) */
            int per_thread = (npan + threads - 1) / threads;
            int blocks = threads * ((per_thread + NC / NR - 1) / (NC / NR));
            int ncb = (npan + blocks - 1) / blocks * NR;
            matmul_by_column_blocks(&op, ncb);
            return;
        }
    }
    /* one parallel region: the threads pack a block's B panels together, then
     * (after that loop's barrier) share its row panels, block after block */
    DPO_OMP_PARALLEL_IF((double)M * N * K)
    {
        int j0, k0;
        for (j0 = 0; j0 < N; j0 += NC) {
            int nc = N - j0 < NC ? N - j0 : NC, npan = (nc + NR - 1) / NR;
            for (k0 = 0; k0 < K; k0 += KC) {
                int kc = K - k0 < KC ? K - k0 : KC, r, p;
                DPO_OMP_LOOP
                for (p = 0; p < npan; p++) pack_b_panel(bp, b, op.ldb, b_t, k0, kc, j0, nc, p);
                DPO_OMP_LOOP
                for (r = 0; r < nrow; r++) {
                    int i0 = r * MR, h = M - i0 < MR ? M - i0 : MR;
                    row_panel(&op, bp, k0 == 0, i0, h, k0, kc, j0, nc);
                }
            }
        }
    }
}

void mm_matmul_sub(float *out, size_t ldo, const float *a, size_t lda, const float *b, size_t ldb, int M, int N,
                   int K, int a_t, int b_t, int accumulate) {
    float bp_store[KC * NC_SUB + 16]; /* packed B block: 256 KiB of the calling thread's stack */
    float *bp = align64(bp_store);
    int NC, j0;
    mm_op op = make_op(out, ldo, a, lda, b, ldb, NULL, M, N, K, a_t, b_t, accumulate);
    if (M <= 0 || N <= 0) return;
    if (K <= 0) {
        init_only(&op);
        return;
    }
    NC = NC_SUB / NR * NR; /* not block_cols(): its first call may not race with another thread's */
    for (j0 = 0; j0 < N; j0 += NC) column_block(&op, bp, j0, N - j0 < NC ? N - j0 : NC);
}

/* Each thread runs mm_fma_loop(iters); returns the seconds, *n the threads */
static double fma_run(long iters, int *n_out, volatile float *sink) {
    double t0 = util_seconds();
    float acc = 0.0f;
    int n = 0;
#ifdef _OPENMP
    DPO_PRAGMA(omp parallel reduction(+ : n, acc))
#endif
    {
        acc += mm_fma_loop(iters);
        n += 1;
    }
    *sink = acc;
    *n_out = n;
    return util_seconds() - t0;
}

double mm_fma_peak(double seconds, int *threads_out) {
    long iters = 1L << 16;
    volatile float sink = 0.0f; /* keeps the loops' results alive */
    int n = 1;
    double t;
    /* grow the loop until a run takes a quarter of the time, then time one run
     * of 4 times as many iterations */
    while (fma_run(iters, &n, &sink) < seconds / 4 && iters < (1L << 40)) iters *= 2;
    iters *= 4;
    t = fma_run(iters, &n, &sink);
    if (threads_out) *threads_out = n;
    return (double)n * (double)iters * 12.0 * MM_FMA_LANES * 2.0 / t / 1e9;
}
