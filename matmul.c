/* matmul.c - owns the matrix-product kernels: a portable blocked kernel written
 * so that the compiler vectorizes it without fast-math, and the scalar reference
 * it is tested against. It must never allocate, print, or change the summation
 * order of an output element with the thread count or the element's position.
 *
 * Blocking: the K dimension is cut into blocks of KC, the N dimension into
 * blocks of NC. For each (NC, KC) block, B is packed into column panels of NR
 * columns (KC x NR, zero-padded), and each thread takes row panels of MR rows,
 * packs its A panel (KC x MR, zero-padded) and runs the MR x NR micro-kernel.
 * Zero padding means edge tiles run the same code as interior ones (adding
 * 0 * b leaves a sum unchanged), so an element's value never depends on where
 * it sits. Padded lanes are computed and then discarded. */
#include "matmul.h"

#include <stddef.h>
#include <string.h>

#include "util.h"

#define MR 6   /* rows of the micro-tile */
#define NR 32  /* columns of the micro-tile: two 512-bit vectors of floats */
#define KC 512 /* depth of one block */
#define NC 256 /* columns of one packed B block (a multiple of NR) */

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
                s += av * bv;
            }
            out[(size_t)i * N + j] = s;
        }
    }
}

/* ------------------------------------------------------------------------ */
/* packing */

/* panel p of bp (kc, NR) <- B[k0:k0+kc, j0+p*NR : j0+p*NR+NR], zero-padded past nc */
static void pack_b_panel(float *bp, const float *b, int N, int K, int b_t,
                         int k0, int kc, int j0, int nc, int p) {
    float *dst = bp + (size_t)p * kc * NR;
    int jbase = j0 + p * NR, w = nc - p * NR < NR ? nc - p * NR : NR, k, jj;
    if (!b_t) {
        for (k = 0; k < kc; k++) {
            const float *src = b + (size_t)(k0 + k) * N + jbase;
            for (jj = 0; jj < w; jj++) dst[k * NR + jj] = src[jj];
            for (; jj < NR; jj++) dst[k * NR + jj] = 0.0f;
        }
    } else { /* k outer: the packed panel is written in order, the w source rows read side by side */
        const float *src = b + (size_t)jbase * K + k0;
        for (k = 0; k < kc; k++) {
            for (jj = 0; jj < w; jj++) dst[k * NR + jj] = src[(size_t)jj * K + k];
            for (; jj < NR; jj++) dst[k * NR + jj] = 0.0f;
        }
    }
}

/* ap (kc, MR) <- A[i0:i0+h, k0:k0+kc] transposed into k-major order, zero-padded */
static void pack_a(float *ap, const float *a, int M, int K, int a_t,
                   int i0, int h, int k0, int kc) {
    int k, ii;
    if (a_t) {
        for (k = 0; k < kc; k++) {
            const float *src = a + (size_t)(k0 + k) * M + i0;
            for (ii = 0; ii < h; ii++) ap[k * MR + ii] = src[ii];
            for (; ii < MR; ii++) ap[k * MR + ii] = 0.0f;
        }
    } else {
        for (ii = 0; ii < MR; ii++) {
            if (ii < h) {
                const float *src = a + (size_t)(i0 + ii) * K + k0;
                for (k = 0; k < kc; k++) ap[k * MR + ii] = src[k];
            } else {
                for (k = 0; k < kc; k++) ap[k * MR + ii] = 0.0f;
            }
        }
    }
}

/* ------------------------------------------------------------------------ */
/* micro-kernel: acc (MR, NR) += ap (kc, MR)^T-panel x bp (kc, NR)-panel
 *   acc[ii][jj] += sum_k ap[k][ii] * bp[k][jj],  k in order */

static void micro_kernel(float acc[MR][NR], const float *ap, const float *bp, int kc) {
    int k, ii, jj;
    for (k = 0; k < kc; k++) {
        const float *brow = bp + (size_t)k * NR;
        const float *acol = ap + (size_t)k * MR;
        for (ii = 0; ii < MR; ii++) {
            float av = acol[ii];
            for (jj = 0; jj < NR; jj++) acc[ii][jj] += av * brow[jj];
        }
    }
}

/* ------------------------------------------------------------------------ */
/* blocked product */

/* One row panel (rows i0..i0+h-1) against every packed B panel of the block:
 * out[rows, j0:j0+nc] = (first block ? init : out) + A[rows, k0:k0+kc] B[k0:k0+kc, j0:j0+nc] */
static void row_panel(float *out, const float *a, const float *bp, const float *bias,
                      int M, int N, int K, int a_t, int accumulate, int first,
                      int i0, int h, int k0, int kc, int j0, int nc) {
    float ap[KC * MR];
    float acc[MR][NR];
    int npan = (nc + NR - 1) / NR, q, ii, jj;
    pack_a(ap, a, M, K, a_t, i0, h, k0, kc);
    for (q = 0; q < npan; q++) {
        int jb = j0 + q * NR, w = nc - q * NR < NR ? nc - q * NR : NR;
        /* load the running sums (or the initial value on the first block) */
        for (ii = 0; ii < MR; ii++) {
            for (jj = 0; jj < NR; jj++) {
                float v = 0.0f;
                if (ii < h && jj < w) {
                    if (!first || accumulate) v = out[(size_t)(i0 + ii) * N + jb + jj];
                    else if (bias) v = bias[jb + jj];
                }
                acc[ii][jj] = v;
            }
        }
        micro_kernel(acc, ap, bp + (size_t)q * kc * NR, kc);
        for (ii = 0; ii < h; ii++)
            memcpy(out + (size_t)(i0 + ii) * N + jb, acc[ii], (size_t)w * sizeof(float));
    }
}

/* Few rows (generation feeds one row per sequence): too few row panels to keep
 * the threads busy, and a barrier per block for little work. Each thread takes
 * whole NC-column blocks instead, packs them into its own buffer and runs every
 * row panel over them: one parallel region per call, and each output element
 * still summed in k order by the same micro-kernel, so the bits are those of
 * the row-panel split. */
#define FEW_ROW_PANELS 8

static void matmul_by_column_blocks(float *out, const float *a, const float *b, const float *bias,
                                    int M, int N, int K, int a_t, int b_t, int accumulate) {
    int nrow = (M + MR - 1) / MR, nblk = (N + NC - 1) / NC, blk;
    DPO_OMP_PARALLEL_IF((double)M * N * K)
    {
        float bp[KC * NC]; /* this thread's packed B block: 512 KiB of its stack */
        DPO_OMP_LOOP
        for (blk = 0; blk < nblk; blk++) {
            int j0 = blk * NC, nc = N - j0 < NC ? N - j0 : NC, npan = (nc + NR - 1) / NR, k0, p, r;
            for (k0 = 0; k0 < K; k0 += KC) {
                int kc = K - k0 < KC ? K - k0 : KC;
                for (p = 0; p < npan; p++) pack_b_panel(bp, b, N, K, b_t, k0, kc, j0, nc, p);
                for (r = 0; r < nrow; r++) {
                    int i0 = r * MR, h = M - i0 < MR ? M - i0 : MR;
                    row_panel(out, a, bp, bias, M, N, K, a_t, accumulate, k0 == 0, i0, h, k0, kc, j0, nc);
                }
            }
        }
    }
}

void mm_matmul(float *out, const float *a, const float *b, const float *bias,
               int M, int N, int K, int a_t, int b_t, int accumulate) {
    float bp[KC * NC]; /* packed B block: 512 KiB, on the calling thread's stack */
    int nrow = (M + MR - 1) / MR, j0, k0;
    if (M <= 0 || N <= 0) return;
    if (K <= 0) { /* nothing to add: out = init */
        int i, j;
        for (i = 0; i < M; i++)
            for (j = 0; j < N; j++)
                if (!accumulate) out[(size_t)i * N + j] = bias ? bias[j] : 0.0f;
        return;
    }
    if (nrow <= FEW_ROW_PANELS && N > NC) {
        matmul_by_column_blocks(out, a, b, bias, M, N, K, a_t, b_t, accumulate);
        return;
    }
    for (j0 = 0; j0 < N; j0 += NC) {
        int nc = N - j0 < NC ? N - j0 : NC, npan = (nc + NR - 1) / NR;
        for (k0 = 0; k0 < K; k0 += KC) {
            int kc = K - k0 < KC ? K - k0 : KC, r, p;
            /* the threads pack B's panels, then (after that loop's barrier) share the row panels */
            DPO_OMP_PARALLEL_IF((double)M * nc * kc)
            {
                DPO_OMP_LOOP
                for (p = 0; p < npan; p++) pack_b_panel(bp, b, N, K, b_t, k0, kc, j0, nc, p);
                DPO_OMP_LOOP
                for (r = 0; r < nrow; r++) {
                    int i0 = r * MR, h = M - i0 < MR ? M - i0 : MR;
                    row_panel(out, a, bp, bias, M, N, K, a_t, accumulate, k0 == 0, i0, h, k0, kc,
                              j0, nc);
                }
            }
        }
    }
}
