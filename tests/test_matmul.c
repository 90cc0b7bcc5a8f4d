/* tests/test_matmul.c - Check suite for matmul.c: the blocked kernel this build
 * runs (mm_kernel_name: avx512, avx2, neon or scalar) against the scalar
 * reference mm_matmul_ref and against an independent float64 product computed
 * here, for all four (a_t, b_t) layouts, every kind of initial value (zero,
 * bias, accumulate, accumulate with a bias that must be ignored), on shapes on
 * both sides of every edge of this kernel's tile and blocks (MR, NR, KC, NC, read
 * from mm_blocking) and on random shapes. Also: bit-identical results for 1 and
 * 2 threads, a row computed alone equals the same row inside a batch, K = 0
 * leaves out = init, and nothing outside out[0 .. M*N) is written;
 * mm_matmul_sub on strided sub-matrices gives the reference's bits; the named
 * forms of matmul.h (mm_ab, mm_a_bt, mm_add_a_bt, mm_add_at_b) pick the layout
 * and initial value their names say.
 *
 * Threads: the shape sweep runs mm_matmul on one thread, and the thread test
 * compares 1 and 2 threads bit for bit on shapes across the same edges. (With
 * more OpenMP threads than free cores every barrier can cost a scheduler time
 * slice, which made a 2-thread sweep take 40 s under ASan on a busy machine.)
 * Every test that changes the thread count restores it before its checks.
 *
 * Exactness: matmul.h promises that every out element is computed by the same
 * steps (init, then s = fma(a_k, b_k, s) for k = 0 .. K-1) in every kernel and
 * in the reference, so the test asserts bitwise equality with tolerance 0,
 * under every compiler and kernel: built for each kernel (make test-kernels),
 * this shows that they all compute the same bits. Both functions are also
 * checked against the exact value (a float64 sum of products of floats) with
 * the rounding-error bound of recursive summation, (K+1) FLT_EPSILON (|init| +
 * sum_k |a_ik b_kj|): a reference that drifted would fail here even if a
 * kernel drifted with it. */
#include "testutil.h"

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "matmul.h"
#include "matmul_kernels.h" /* mm_kernel, mm_pack_t and mm_fma_loop, tested directly */
#include "util.h"

#define GUARD 64 /* sentinel floats after out */

enum { INIT_ZERO, INIT_BIAS, INIT_ACC, INIT_ACC_BIAS, NUM_INIT };
static const char *const init_name[NUM_INIT] = {"zero", "bias", "accumulate",
                                                "accumulate+bias(ignored)"};

/* ======================================================================== */
/* helpers                                                                   */
/* ======================================================================== */

static float *xmalloc_f(size_t n) {
    float *p = malloc((n ? n : 1) * sizeof *p);
    ck_assert_ptr_nonnull(p);
    return p;
}

/* uniform in [-1, 1), with one value in 8 scaled by up to 2^8 so that sums mix magnitudes */
static void fill(float *x, size_t n, util_rng *r) {
    size_t i;
    for (i = 0; i < n; i++) {
        double v = 2.0 * util_rng_uniform(r) - 1.0;
        if ((util_rng_u64(r) & 7) == 0) v = ldexp(v, (int)(util_rng_u64(r) % 9));
        x[i] = (float)v;
    }
}

static uint32_t bits_of(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

/* the sentinel written after out: a NaN with a recognisable payload */
static float guard_value(void) {
    uint32_t u = 0x7fc0abcdu;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static void set_guard(float *out, size_t n) {
    size_t i;
    float g = guard_value();
    for (i = 0; i < GUARD; i++) out[n + i] = g;
}

static void check_guard(const float *out, size_t n, const char *what) {
    size_t i = 0;
    while (i < GUARD && bits_of(out[n + i]) == 0x7fc0abcdu) i++;
    ck_assert_msg(i == GUARD, "%s: wrote past the end of out (+%zu)", what, i);
}

/* A(i, k) and B(k, j) in the stored layouts, written independently of matmul.c */
static double a_at(const float *a, int M, int K, int a_t, int i, int k) {
    return a_t ? a[(size_t)k * M + i] : a[(size_t)i * K + k];
}
static double b_at(const float *b, int N, int K, int b_t, int k, int j) {
    return b_t ? b[(size_t)j * K + k] : b[(size_t)k * N + j];
}

/* sum[i][j] = sum_k A(i,k) B(k,j) in float64 (each product of two floats is
 * exact in a double; the float64 sum's own error is ~2^-29 of the float bound
 * used below), and mag[i][j] = sum_k |A(i,k) B(k,j)| */
static void product_sums(double *sum, double *mag, const float *a, const float *b, int M, int N,
                         int K, int a_t, int b_t) {
    int i, j, k;
    for (i = 0; i < M; i++) {
        for (j = 0; j < N; j++) {
            double s = 0.0, m = 0.0;
            for (k = 0; k < K; k++) {
                double p = a_at(a, M, K, a_t, i, k) * b_at(b, N, K, b_t, k, j);
                s += p;
                m += fabs(p);
            }
            sum[(size_t)i * N + j] = s;
            mag[(size_t)i * N + j] = m;
        }
    }
}

/* One shape and layout, with the same A and B for all four kinds of initial
 * value: mm_matmul (on one thread: the thread tests below show that the
 * thread count changes no bit) and mm_matmul_ref against each other and
 * against the exact value. One assertion per case: Check logs every passing
 * assertion, which would dominate the run time inside the element loop. */
static void check_shape(util_rng *r, int M, int N, int K, int a_t, int b_t) {
    size_t na = (size_t)M * K, nb = (size_t)K * N, no = (size_t)M * N, x;
    float *a = xmalloc_f(na), *b = xmalloc_f(nb), *bias = xmalloc_f((size_t)N);
    float *init = xmalloc_f(no), *got = xmalloc_f(no + GUARD), *ref = xmalloc_f(no + GUARD);
    double *sum = malloc(no * sizeof *sum), *mag = malloc(no * sizeof *mag);
    int mode, saved = util_threads();
    ck_assert_ptr_nonnull(sum);
    ck_assert_ptr_nonnull(mag);
    fill(a, na, r);
    fill(b, nb, r);
    fill(bias, (size_t)N, r);
    fill(init, no, r);
    product_sums(sum, mag, a, b, M, N, K, a_t, b_t);
    for (mode = 0; mode < NUM_INIT; mode++) {
        const float *bias_arg = (mode == INIT_BIAS || mode == INIT_ACC_BIAS) ? bias : NULL;
        int acc = (mode == INIT_ACC || mode == INIT_ACC_BIAS);
        char what[160], bad[256] = "";
        snprintf(what, sizeof what, "M=%d N=%d K=%d a_t=%d b_t=%d init=%s", M, N, K, a_t, b_t,
                 init_name[mode]);
        /* without accumulate, out's previous content must not matter: fill it with garbage */
        for (x = 0; x < no; x++) {
            got[x] = acc ? init[x] : 1e30f;
            ref[x] = acc ? init[x] : -1e30f;
        }
        set_guard(got, no);
        set_guard(ref, no);
        util_set_threads(1);
        mm_matmul(got, a, b, bias_arg, M, N, K, a_t, b_t, acc);
        util_set_threads(saved);
        mm_matmul_ref(ref, a, b, bias_arg, M, N, K, a_t, b_t, acc);
        check_guard(got, no, what);
        check_guard(ref, no, what);
        for (x = 0; x < no && !bad[0]; x++) {
            double in = acc ? init[x] : (bias_arg ? bias[x % (size_t)N] : 0.0);
            double exact = in + sum[x]; /* exact to ~2^-53 relative: far below the bound */
            double m = fabs(in) + mag[x];
            double tol_exact = (double)(K + 1) * FLT_EPSILON * m;
            if (!(fabs((double)got[x] - exact) <= tol_exact))
                snprintf(bad, sizeof bad, "mm_matmul out[%zu] = %.9g, exact %.17g (bound %.3g)", x,
                         (double)got[x], exact, tol_exact);
            else if (!(fabs((double)ref[x] - exact) <= tol_exact))
                snprintf(bad, sizeof bad, "mm_matmul_ref out[%zu] = %.9g, exact %.17g (bound %.3g)",
                         x, (double)ref[x], exact, tol_exact);
            else if (bits_of(got[x]) != bits_of(ref[x]))
                snprintf(bad, sizeof bad,
                         "out[%zu] = %.9g (0x%08x), reference %.9g (0x%08x): not bit-identical", x,
                         (double)got[x], (unsigned)bits_of(got[x]), (double)ref[x],
                         (unsigned)bits_of(ref[x]));
        }
        ck_assert_msg(!bad[0], "%s: %s", what, bad);
    }
    free(a);
    free(b);
    free(bias);
    free(init);
    free(got);
    free(ref);
    free(sum);
    free(mag);
}

/* ======================================================================== */
/* tests                                                                     */
/* ======================================================================== */

#define COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* Sizes on both sides of this kernel's edges: the tile (MR rows, NR columns),
 * the block depth KC (a partial block, and three blocks) and the block width
 * NC (and the column-block split of few-row products, which N > NC turns on). */
typedef struct {
    int M[5], N[6], K[5];
} edge_sizes;

static edge_sizes kernel_edges(void) {
    edge_sizes e;
    int mr, nr, kc, nc;
    mm_blocking(&mr, &nr, &kc, &nc);
    e.M[0] = 1, e.M[1] = mr - 1, e.M[2] = mr, e.M[3] = mr + 1, e.M[4] = 2 * mr + 3;
    e.N[0] = 1, e.N[1] = nr - 1, e.N[2] = nr, e.N[3] = nr + 1, e.N[4] = nc + 1, e.N[5] = nc + nr + 5;
    e.K[0] = 1, e.K[1] = kc - 1, e.K[2] = kc, e.K[3] = kc + 1, e.K[4] = 2 * kc + 89;
    return e;
}

/* every edge shape for one layout (one Check test per layout keeps each short) */
static void run_all_shapes(int a_t, int b_t) {
    util_rng r;
    edge_sizes e = kernel_edges();
    int mi, ni, ki;
    util_rng_seed(&r, 1000u + (uint64_t)(2 * a_t + b_t));
    for (mi = 0; mi < COUNT(e.M); mi++)
        for (ni = 0; ni < COUNT(e.N); ni++)
            for (ki = 0; ki < COUNT(e.K); ki++) check_shape(&r, e.M[mi], e.N[ni], e.K[ki], a_t, b_t);
}

START_TEST(test_shapes_nn) { run_all_shapes(0, 0); }
END_TEST

START_TEST(test_shapes_nt) { run_all_shapes(0, 1); }
END_TEST

START_TEST(test_shapes_tn) { run_all_shapes(1, 0); }
END_TEST

START_TEST(test_shapes_tt) { run_all_shapes(1, 1); }
END_TEST

/* 60 random shapes and layouts (M up to 4 tiles and a bit, N up to 2 blocks and
 * a bit, K up to 3 blocks): sizes that are multiples of nothing in particular. */
START_TEST(test_shapes_random) {
    util_rng r;
    int mr, nr, kc, nc, n;
    mm_blocking(&mr, &nr, &kc, &nc);
    util_rng_seed(&r, 31337);
    for (n = 0; n < 60; n++) {
        int M = 1 + (int)(util_rng_u64(&r) % (uint64_t)(4 * mr + 7));
        int N = 1 + (int)(util_rng_u64(&r) % (uint64_t)(2 * nc + 50));
        int K = 1 + (int)(util_rng_u64(&r) % (uint64_t)(3 * kc + 20));
        int t = (int)(util_rng_u64(&r) & 3);
        check_shape(&r, M, N, K, t >> 1, t & 1);
    }
}
END_TEST

/* A hand-computed 2x3 @ 3x2 product, in all four layouts: small integers, so
 * every intermediate is exact and the answer is known without any code. */
START_TEST(test_known_small_product) {
    /* A = [1 2 3; 4 5 6], B = [7 8; 9 10; 11 12], bias = [0.5 -1]
     * A B = [58 64; 139 154] */
    static const float A[6] = {1, 2, 3, 4, 5, 6}, At[6] = {1, 4, 2, 5, 3, 6};
    static const float B[6] = {7, 8, 9, 10, 11, 12}, Bt[6] = {7, 9, 11, 8, 10, 12};
    static const float bias[2] = {0.5f, -1.0f};
    static const float want[4] = {58, 64, 139, 154};
    int t, x;
    for (t = 0; t < 4; t++) {
        int a_t = t >> 1, b_t = t & 1;
        const float *a = a_t ? At : A, *b = b_t ? Bt : B;
        float out[4] = {100, 200, 300, 400}, out2[4] = {100, 200, 300, 400}, out3[4];
        mm_matmul(out3, a, b, NULL, 2, 2, 3, a_t, b_t, 0);
        for (x = 0; x < 4; x++)
            ck_assert_msg(out3[x] == want[x], "a_t=%d b_t=%d: out[%d] = %g, want %g", a_t, b_t, x,
                          (double)out3[x], (double)want[x]);
        mm_matmul(out3, a, b, bias, 2, 2, 3, a_t, b_t, 0);
        for (x = 0; x < 4; x++)
            ck_assert_msg(out3[x] == want[x] + bias[x % 2], "bias a_t=%d b_t=%d: out[%d] = %g", a_t,
                          b_t, x, (double)out3[x]);
        mm_matmul(out, a, b, NULL, 2, 2, 3, a_t, b_t, 1);
        mm_matmul(out2, a, b, bias, 2, 2, 3, a_t, b_t, 1); /* bias ignored when accumulating */
        for (x = 0; x < 4; x++) {
            ck_assert_msg(out[x] == want[x] + 100.0f * (float)(x + 1), "acc a_t=%d b_t=%d: out[%d] = %g",
                          a_t, b_t, x, (double)out[x]);
            ck_assert_msg(out2[x] == out[x], "acc+bias a_t=%d b_t=%d: out[%d] = %g", a_t, b_t, x,
                          (double)out2[x]);
        }
    }
}
END_TEST

/* The named forms (mm_ab, mm_a_bt, mm_add_a_bt, mm_add_at_b) on the same
 * hand-computed product: each stores its operands as its name says and sets or
 * adds as documented. A = [1 2 3; 4 5 6], B = [7 8; 9 10; 11 12], A B = [58 64; 139 154]. */
START_TEST(test_named_forms) {
    static const float A[6] = {1, 2, 3, 4, 5, 6}, At[6] = {1, 4, 2, 5, 3, 6};
    static const float B[6] = {7, 8, 9, 10, 11, 12}, Bt[6] = {7, 9, 11, 8, 10, 12};
    static const float bias[2] = {0.5f, -1.0f}, want[4] = {58, 64, 139, 154};
    float ab[4], ab0[4], abt[4], add_abt[4] = {100, 200, 300, 400}, add_atb[4] = {100, 200, 300, 400};
    int x;
    mm_ab(ab, A, B, bias, 2, 2, 3);    /* out = a b + bias */
    mm_ab(ab0, A, B, NULL, 2, 2, 3);   /* out = a b */
    mm_a_bt(abt, A, Bt, 2, 2, 3);      /* out = a b^T, b stored (N, K) */
    mm_add_a_bt(add_abt, A, Bt, 2, 2, 3); /* out += a b^T */
    mm_add_at_b(add_atb, At, B, 2, 2, 3); /* out += a^T b, a stored (K, M) */
    for (x = 0; x < 4; x++) {
        float acc = want[x] + 100.0f * (float)(x + 1);
        ck_assert_msg(ab[x] == want[x] + bias[x % 2], "mm_ab: out[%d] = %g", x, (double)ab[x]);
        ck_assert_msg(ab0[x] == want[x], "mm_ab, no bias: out[%d] = %g", x, (double)ab0[x]);
        ck_assert_msg(abt[x] == want[x], "mm_a_bt: out[%d] = %g", x, (double)abt[x]);
        ck_assert_msg(add_abt[x] == acc, "mm_add_a_bt: out[%d] = %g", x, (double)add_abt[x]);
        ck_assert_msg(add_atb[x] == acc, "mm_add_at_b: out[%d] = %g", x, (double)add_atb[x]);
    }
}
END_TEST

/* The micro-kernel itself on one tile: packed panels of random depth, started
 * from the tile (row NULL) or from one row, against the fmaf chain of its
 * definition, bit for bit; and the FMA-peak loop returns the converged chains'
 * finite sum (each chain tends to 1e-6 / (1 - 0.999999) = 1). */
START_TEST(test_kernel_tile) {
    enum { KMAX = 300 };
    static float ap[KMAX * MM_MR], bp[KMAX * MM_NR];
    float c[MM_MR * MM_NR], want[MM_MR * MM_NR], row[MM_NR];
    int trial, i, j, k;
    float f;
    util_rng r;
    util_rng_seed(&r, 8);
    for (trial = 0; trial < 40; trial++) {
        int kc = 1 + (int)(util_rng_u64(&r) % KMAX), from_row = trial % 2;
        fill(ap, (size_t)kc * MM_MR, &r);
        fill(bp, (size_t)kc * MM_NR, &r);
        fill(c, MM_MR * MM_NR, &r);
        fill(row, MM_NR, &r);
        for (i = 0; i < MM_MR; i++)
            for (j = 0; j < MM_NR; j++) {
                float acc = from_row ? row[j] : c[i * MM_NR + j];
                for (k = 0; k < kc; k++) acc = fmaf(ap[k * MM_MR + i], bp[k * MM_NR + j], acc);
                want[i * MM_NR + j] = acc;
            }
        mm_kernel(kc, ap, bp, c, MM_NR, from_row ? row : NULL);
        ck_assert_msg(memcmp(c, want, sizeof c) == 0, "kernel %s, kc %d, from %s: the tile differs from fmaf",
                      MM_KERNEL_NAME, kc, from_row ? "a row" : "the tile");
    }
    f = mm_fma_loop(100000);
    ck_assert_msg(isfinite(f) && f > 0.0f && f <= 12.0f * MM_FMA_LANES * 1.01f, "mm_fma_loop: %g", (double)f);
}
END_TEST

/* mm_pack_t, the transposing pack of this build's kernel (matmul_kernels.h,
 * included here for it), for every row count w from 1 to 40 (whole register
 * blocks, overlapped last blocks, fewer rows than a block) and random depths kc
 * and row strides: dst[k w + i] must be src[i lds + k] exactly, and nothing
 * past w kc floats of dst written. */
START_TEST(test_pack_transpose) {
    enum { MAXW = 40, MAXK = 300, MAXLD = 340 };
    static float src[MAXW * MAXLD], dst[MAXW * MAXK + 8];
    int w, trial, bad = 0;
    util_rng r;
    util_rng_seed(&r, 5);
    fill(src, (size_t)MAXW * MAXLD, &r);
    for (w = 1; w <= MAXW; w++)
        for (trial = 0; trial < 6; trial++) {
            int kc = 1 + (int)(util_rng_u64(&r) % MAXK), k, i;
            size_t lds = (size_t)kc + util_rng_u64(&r) % (MAXLD - kc + 1);
            for (i = 0; i < MAXW * MAXK + 8; i++) dst[i] = -7.0f;
            mm_pack_t(dst, w, src, lds, kc);
            for (k = 0; k < kc; k++)
                for (i = 0; i < w; i++)
                    if (bits_of(dst[(size_t)k * w + i]) != bits_of(src[(size_t)i * lds + k])) bad++;
            for (i = w * kc; i < MAXW * MAXK + 8; i++)
                if (dst[i] != -7.0f) bad++;
            ck_assert_msg(bad == 0, "mm_pack_t w %d kc %d lds %zu: %d floats wrong", w, kc, lds, bad);
        }
}
END_TEST

/* mm_matmul_sub on sub-matrices with row strides larger than their widths, as
 * the attention calls it (inside qkv rows): 300 random shapes and layouts, each
 * operand cut out of a larger random matrix and out written inside a larger
 * one. Its result must be mm_matmul_ref's on contiguous copies, bit for bit,
 * and every float of out's matrix outside the sub-matrix must be untouched. */
START_TEST(test_sub_matrices) {
    int trial;
    util_rng r;
    util_rng_seed(&r, 91);
    for (trial = 0; trial < 300; trial++) {
        int M = 1 + (int)(util_rng_u64(&r) % 90), N = 1 + (int)(util_rng_u64(&r) % 90);
        int K = trial % 50 == 0 ? 0 : 1 + (int)(util_rng_u64(&r) % 300);
        int a_t = (int)(util_rng_u64(&r) & 1), b_t = (int)(util_rng_u64(&r) & 1);
        int acc = (int)(util_rng_u64(&r) & 1), ra = a_t ? K : M, ca = a_t ? M : K, rb = b_t ? N : K,
            cb = b_t ? K : N, i, j;
        size_t lda = (size_t)ca + util_rng_u64(&r) % 40, ldb = (size_t)cb + util_rng_u64(&r) % 40,
               ldo = (size_t)N + util_rng_u64(&r) % 40;
        float *A = xmalloc_f((size_t)ra * lda + 1), *B = xmalloc_f((size_t)rb * ldb + 1);
        float *O = xmalloc_f((size_t)M * ldo), *O0 = xmalloc_f((size_t)M * ldo);
        float *a = xmalloc_f((size_t)ra * ca + 1), *b = xmalloc_f((size_t)rb * cb + 1);
        float *ref = xmalloc_f((size_t)M * N);
        int ok = 1;
        fill(A, (size_t)ra * lda + 1, &r);
        fill(B, (size_t)rb * ldb + 1, &r);
        fill(O, (size_t)M * ldo, &r);
        memcpy(O0, O, (size_t)M * ldo * sizeof *O);
        for (i = 0; i < ra; i++)
            for (j = 0; j < ca; j++) a[(size_t)i * ca + j] = A[(size_t)i * lda + j];
        for (i = 0; i < rb; i++)
            for (j = 0; j < cb; j++) b[(size_t)i * cb + j] = B[(size_t)i * ldb + j];
        for (i = 0; i < M; i++)
            for (j = 0; j < N; j++) ref[(size_t)i * N + j] = O[(size_t)i * ldo + j];
        mm_matmul_sub(O, ldo, A, lda, B, ldb, M, N, K, a_t, b_t, acc);
        mm_matmul_ref(ref, a, b, NULL, M, N, K, a_t, b_t, acc);
        for (i = 0; i < M; i++)
            for (j = 0; j < (int)ldo; j++) {
                const float want = j < N ? ref[(size_t)i * N + j] : O0[(size_t)i * ldo + j];
                if (bits_of(O[(size_t)i * ldo + j]) != bits_of(want)) ok = 0;
            }
        free(A);
        free(B);
        free(O);
        free(O0);
        free(a);
        free(b);
        free(ref);
        ck_assert_msg(ok, "trial %d: M=%d N=%d K=%d a_t=%d b_t=%d accumulate=%d lda=%zu ldb=%zu ldo=%zu differs",
                      trial, M, N, K, a_t, b_t, acc, lda, ldb, ldo);
    }
}
END_TEST

/* The same product with 1 and with 2 threads must be bitwise identical: shapes
 * across the edges of the row split (MR) and of the N and K blocks, every
 * layout, the three kinds of initial value in rotation. */
START_TEST(test_threads_bit_identical) {
    static const int tM[] = {1, 7, 13, 50}, tN[] = {1, 33, 300}, tK[] = {1, 257, 1025};
    int saved = util_threads(), mi, ni, ki, t, n = 0;
    util_rng r;
    util_rng_seed(&r, 77);
    for (mi = 0; mi < COUNT(tM); mi++)
        for (ni = 0; ni < COUNT(tN); ni++)
            for (ki = 0; ki < COUNT(tK); ki++)
                for (t = 0; t < 4; t++, n++) {
                    int M = tM[mi], N = tN[ni], K = tK[ki], mode = n % 3, same;
                    size_t na = (size_t)M * K, nb = (size_t)K * N, no = (size_t)M * N;
                    float *a = xmalloc_f(na), *b = xmalloc_f(nb), *bias = xmalloc_f((size_t)N);
                    float *o1 = xmalloc_f(no), *o2 = xmalloc_f(no);
                    const float *bb = mode == 1 ? bias : NULL;
                    fill(a, na, &r);
                    fill(b, nb, &r);
                    fill(bias, (size_t)N, &r);
                    fill(o1, no, &r);
                    memcpy(o2, o1, no * sizeof *o1);
                    util_set_threads(1);
                    mm_matmul(o1, a, b, bb, M, N, K, t >> 1, t & 1, mode == 2);
                    util_set_threads(2);
                    mm_matmul(o2, a, b, bb, M, N, K, t >> 1, t & 1, mode == 2);
                    util_set_threads(saved);
                    same = memcmp(o1, o2, no * sizeof *o1) == 0;
                    free(a);
                    free(b);
                    free(bias);
                    free(o1);
                    free(o2);
                    ck_assert_msg(same, "M=%d N=%d K=%d a_t=%d b_t=%d mode=%d: 1 and 2 threads differ",
                                  M, N, K, t >> 1, t & 1, mode);
                }
    ck_assert_int_eq(util_threads(), saved);
}
END_TEST

/* Row i of a 13-row or a 60-row product (at the default thread count) equals,
 * bit for bit, the 1-row product of row i alone (on one thread). With more than
 * NC columns, a product of few rows splits the work by column blocks and one of
 * many rows by row panels: a row is the same bits either way (the key-value
 * cache of generation relies on it). */
START_TEST(test_row_position_independent) {
    int mr, nr, kc, nc, s, t, mode, i, k, saved = util_threads();
    util_rng r;
    mm_blocking(&mr, &nr, &kc, &nc);
    {
    /* N > nc with few rows: the column-block split; 60 rows or more: the row split */
    const int NKs[][3] = {{nc + 44, kc + 88, 13}, {nr + 1, kc + 1, 13}, {1, 1, 13}, {nr, kc, 13},
                          {nc + 88, 2 * kc + 188, 9 * mr + 1}, {nc + 44, nr + 1, 9 * mr + 1}};
    util_rng_seed(&r, 4242);
    for (s = 0; s < COUNT(NKs); s++) {
        int N = NKs[s][0], K = NKs[s][1], M = NKs[s][2];
        size_t na = (size_t)M * K, nb = (size_t)K * N, no = (size_t)M * N;
        float *a = xmalloc_f(na), *b = xmalloc_f(nb), *bias = xmalloc_f((size_t)N);
        float *init = xmalloc_f(no), *big = xmalloc_f(no), *row = xmalloc_f((size_t)K);
        float *one = xmalloc_f((size_t)N);
        fill(a, na, &r);
        fill(b, nb, &r);
        fill(bias, (size_t)N, &r);
        fill(init, no, &r);
        for (t = 0; t < 4; t++) {
            int a_t = t >> 1, b_t = t & 1;
            for (mode = 0; mode < 3; mode++) {
                const float *bb = mode == 1 ? bias : NULL;
                int acc = mode == 2;
                memcpy(big, init, no * sizeof *big);
                mm_matmul(big, a, b, bb, M, N, K, a_t, b_t, acc);
                for (i = 0; i < M; i++) {
                    /* row i of A as a (1, K) matrix; stored transposed that is (K, 1): same bytes */
                    for (k = 0; k < K; k++) row[k] = a_t ? a[(size_t)k * M + i] : a[(size_t)i * K + k];
                    memcpy(one, init + (size_t)i * N, (size_t)N * sizeof *one);
                    util_set_threads(1);
                    mm_matmul(one, row, b, bb, 1, N, K, a_t, b_t, acc);
                    util_set_threads(saved);
                    ck_assert_msg(memcmp(one, big + (size_t)i * N, (size_t)N * sizeof *one) == 0,
                                  "N=%d K=%d a_t=%d b_t=%d mode=%d: row %d alone differs from the "
                                  "same row in a %d-row product",
                                  N, K, a_t, b_t, mode, i, M);
                }
            }
        }
        free(a);
        free(b);
        free(bias);
        free(init);
        free(big);
        free(row);
        free(one);
    }
    }
}
END_TEST

/* K = 0: out = init (0, bias, or left as it is), for both functions. M = 0 or
 * N = 0: nothing is written. */
START_TEST(test_empty_dimensions) {
    const int M = 7, N = 33;
    float a[1] = {123.0f}, b[1] = {456.0f}, bias[33], init[7 * 33], out[7 * 33 + GUARD];
    int f, i;
    util_rng r;
    util_rng_seed(&r, 9);
    fill(bias, (size_t)N, &r);
    fill(init, (size_t)M * N, &r);
    for (f = 0; f < 2; f++) {
        void (*mm)(float *, const float *, const float *, const float *, int, int, int, int, int,
                   int) = f ? mm_matmul_ref : mm_matmul;
        const char *name = f ? "mm_matmul_ref" : "mm_matmul";
        int t;
        for (t = 0; t < 4; t++) {
            /* accumulate: unchanged, bias or not */
            memcpy(out, init, sizeof init);
            set_guard(out, (size_t)M * N);
            mm(out, a, b, bias, M, N, 0, t >> 1, t & 1, 1);
            ck_assert_msg(memcmp(out, init, sizeof init) == 0, "%s K=0 accumulate changed out", name);
            check_guard(out, (size_t)M * N, name);
            /* bias: every row is the bias */
            memcpy(out, init, sizeof init);
            mm(out, a, b, bias, M, N, 0, t >> 1, t & 1, 0);
            for (i = 0; i < M * N && bits_of(out[i]) == bits_of(bias[i % N]); i++) continue;
            ck_assert_msg(i == M * N, "%s K=0 bias: out[%d][%d] = %g", name, i / N, i % N,
                          (double)out[i < M * N ? i : 0]);
            check_guard(out, (size_t)M * N, name);
            /* no bias: +0.0 everywhere */
            memcpy(out, init, sizeof init);
            mm(out, a, b, NULL, M, N, 0, t >> 1, t & 1, 0);
            for (i = 0; i < M * N && bits_of(out[i]) == 0u; i++) continue;
            ck_assert_msg(i == M * N, "%s K=0: out[%d] = %g, want +0", name, i,
                          (double)out[i < M * N ? i : 0]);
            check_guard(out, (size_t)M * N, name);
            /* M = 0 and N = 0: out untouched */
            memcpy(out, init, sizeof init);
            mm(out, a, b, bias, 0, N, 5, t >> 1, t & 1, 0);
            mm(out, a, b, bias, M, 0, 5, t >> 1, t & 1, 0);
            ck_assert_msg(memcmp(out, init, sizeof init) == 0, "%s: M=0 or N=0 wrote to out", name);
        }
    }
}
END_TEST

/* Signed zeros and infinities: the sum starts from init exactly as the
 * reference does (0 * x products are +-0; -0 + -0 = -0; bias -0 survives). */
START_TEST(test_signed_zero_and_inf) {
    /* bias = -0.0: with K = 1 and A = 0, out = -0 + (0 * -1) = -0 + -0 = -0 */
    float a[1] = {0.0f}, b[1] = {-1.0f}, bias[1] = {-0.0f}, out[1] = {5.0f}, ref[1] = {5.0f};
    float ai[2] = {INFINITY, 1.0f}, bi[2] = {1.0f, 2.0f};
    mm_matmul(out, a, b, bias, 1, 1, 1, 0, 0, 0);
    mm_matmul_ref(ref, a, b, bias, 1, 1, 1, 0, 0, 0);
    ck_assert_msg(bits_of(out[0]) == 0x80000000u, "out = %g (0x%08x), want -0", (double)out[0],
                  (unsigned)bits_of(out[0]));
    ck_assert_msg(bits_of(ref[0]) == 0x80000000u, "ref = %g, want -0", (double)ref[0]);
    /* no bias: +0 + (0 * -1) = +0 + -0 = +0 */
    mm_matmul(out, a, b, NULL, 1, 1, 1, 0, 0, 0);
    ck_assert_msg(bits_of(out[0]) == 0u, "out = %g, want +0", (double)out[0]);
    /* an infinite input propagates: (1,2) x (2,1) = inf * 1 + 1 * 2 = inf */
    mm_matmul(out, ai, bi, NULL, 1, 1, 2, 0, 0, 0);
    ck_assert_msg(isinf(out[0]) && out[0] > 0, "out = %g, want +inf", (double)out[0]);
}
END_TEST

static Suite *make_suite(void) {
    Suite *s = suite_create("matmul");
    TCase *tc = tcase_create("matmul");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_known_small_product);
    tcase_add_test(tc, test_named_forms);
    tcase_add_test(tc, test_empty_dimensions);
    tcase_add_test(tc, test_signed_zero_and_inf);
    tcase_add_test(tc, test_shapes_nn);
    tcase_add_test(tc, test_shapes_nt);
    tcase_add_test(tc, test_shapes_tn);
    tcase_add_test(tc, test_shapes_tt);
    tcase_add_test(tc, test_shapes_random);
    tcase_add_test(tc, test_kernel_tile);
    tcase_add_test(tc, test_pack_transpose);
    tcase_add_test(tc, test_sub_matrices);
    tcase_add_test(tc, test_threads_bit_identical);
    tcase_add_test(tc, test_row_position_independent);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    int mr, nr, kc, nc;
    mm_blocking(&mr, &nr, &kc, &nc);
    printf("matmul kernel %s: tile %d x %d, kc %d, nc %d\n", mm_kernel_name(), mr, nr, kc, nc);
    return testutil_run(make_suite());
}
