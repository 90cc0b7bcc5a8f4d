/* matmul_kernels.h - the matrix-product micro-kernels, one per instruction set:
 * the only file in dpo with SIMD intrinsics. Included by matmul.c alone.
 *
 * Every kernel computes the same thing, an MR x NR tile of the product,
 *
 *   c[i][j] = init[i][j] + sum_k ap[k*MR + i] * bp[k*NR + j],   k = 0, 1, ..., kc-1,
 *
 * from an A panel packed k-major (MR values per k) and a B panel packed k-major
 * (NR values per k), with every element summed by the same steps:
 *
 *   s = init;  for k in order: s = fma(a_k, b_k, s)      (one rounding per step)
 *
 * where fma is the fused multiply-add of IEEE 754 (C99's fmaf, the FMA
 * instructions of AVX2/AVX-512, NEON's vfmaq). The scalar reference of matmul.c
 * does the same with fmaf, so every kernel gives the same bits as the reference
 * and as every other kernel: the same model trained on an AVX-512 server, an
 * AVX2 laptop or an Arm board computes the same numbers (tests/test_matmul.c
 * asserts this with tolerance 0 for whichever kernel is built).
 *
 * init is the tile itself (row == NULL: c is loaded, the running sums of a
 * previous K block or the caller's accumulate) or one row of NR values (row !=
 * NULL: a bias, or zeros) used for every one of the MR rows.
 *
 * Choosing the tile. A k step loads one row of the B panel (NR values) and MR
 * values of A (each broadcast to a vector), and does MR x NR/W fused
 * multiply-adds (W floats per vector) into MR x NR/W accumulator registers. The
 * tile is the largest that keeps all accumulators, the B vectors and one A
 * broadcast in registers: more accumulators mean more independent FMA chains
 * (an FMA has a latency of about 4 cycles and 2 can start per cycle, so at
 * least 8 chains are needed) and fewer loads per FMA.
 *
 * Packing. Besides the kernel, each instruction set has mm_pack_t: w rows of
 * kc floats (row i at src + i lds) written k-major, dst[k w + i] = src[i lds + k],
 * the layout the kernel reads. It packs a B panel from a transposed B (the input
 * gradient's w^T, the head's wte^T, attention's K^T) and an A panel from a
 * row-major A. It only moves floats, so it changes no bit; done one float at a
 * time it took 30-40% of a product of few rows against a transposed B (the
 * head's chunks of 83 rows, Zen 5), in registers a block of 8 x 8 (4 x 4 on
 * NEON) at a time it is a few shuffles per 8 floats.
 *
 * The FMA peak. Each instruction set also has mm_fma_loop: 12 independent
 * chains of vector fused multiply-adds in registers, no memory access, the
 * most FMAs the core can start (12 chains cover 4 cycles of latency on 2 or 3
 * FMA pipes). dpo bench measures it (mm_fma_peak) so that the products can be
 * given as a share of what this machine's cores can do. Each chain is
 * x = x a + b with a < 1, which converges: nothing overflows.
 *
 * Which kernel is compiled: SIMD=scalar forces the portable one
 * (DPO_SIMD_SCALAR); otherwise the best the compiler's target allows
 * (-march=native on the build machine by default, or SIMD=avx2 / avx512 / neon). */
#ifndef DPO_MATMUL_KERNELS_H
#define DPO_MATMUL_KERNELS_H

#include <math.h> /* fmaf */
#include <stddef.h>

#if defined(DPO_SIMD_SCALAR)
#define MM_KERNEL_SCALAR 1
#elif defined(__AVX512F__)
#define MM_KERNEL_AVX512 1
#elif defined(__AVX2__) && defined(__FMA__)
#define MM_KERNEL_AVX2 1
#elif defined(__aarch64__) && defined(__ARM_NEON)
#define MM_KERNEL_NEON 1
#else
#define MM_KERNEL_SCALAR 1
#endif

/* make SIMD=avx2|avx512|neon asks for one kernel: refuse to build another */
#if defined(DPO_SIMD_WANT_AVX512) && !defined(MM_KERNEL_AVX512)
#error "SIMD=avx512: the compiler does not target AVX-512F (is -mavx512f accepted?)"
#endif
#if defined(DPO_SIMD_WANT_AVX2) && !defined(MM_KERNEL_AVX2)
#error "SIMD=avx2: the compiler does not target AVX2 and FMA"
#endif
#if defined(DPO_SIMD_WANT_NEON) && !defined(MM_KERNEL_NEON)
#error "SIMD=neon: the compiler does not target AArch64 with NEON"
#endif

/* ======================================================================== */
#if defined(MM_KERNEL_AVX512)
/* AVX-512: 32 zmm registers of 16 floats. Tile 14 x 32: 28 accumulators (14 rows
 * x 2 vectors), 2 for the B row, 1 for the A broadcast = 31 registers. Per k
 * step: 2 loads of B, 14 broadcasts of A, 28 FMAs (14 cycles at 2 per cycle). */
#include <immintrin.h>

#define MM_KERNEL_NAME "avx512"
#define MM_MR 14
#define MM_NR 32

#define MM_ROWS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11) X(12) X(13)
#define MM_DECL(r) __m512 c##r##_0, c##r##_1;
#define MM_INIT_ROW(r) c##r##_0 = b0; c##r##_1 = b1;
#define MM_LOAD(r) c##r##_0 = _mm512_loadu_ps(c + (size_t)(r) * ldc); \
                   c##r##_1 = _mm512_loadu_ps(c + (size_t)(r) * ldc + 16);
#define MM_STEP(r) a = _mm512_set1_ps(ap[r]); \
                   c##r##_0 = _mm512_fmadd_ps(a, b0, c##r##_0); \
                   c##r##_1 = _mm512_fmadd_ps(a, b1, c##r##_1);
#define MM_STORE(r) _mm512_storeu_ps(c + (size_t)(r) * ldc, c##r##_0); \
                    _mm512_storeu_ps(c + (size_t)(r) * ldc + 16, c##r##_1);

static void mm_kernel(int kc, const float *ap, const float *bp, float *c, size_t ldc,
                      const float *row) {
    __m512 a, b0, b1;
    int k;
    MM_ROWS(MM_DECL)
    if (row) {
        b0 = _mm512_loadu_ps(row);
        b1 = _mm512_loadu_ps(row + 16);
        MM_ROWS(MM_INIT_ROW)
    } else {
        MM_ROWS(MM_LOAD)
    }
    for (k = 0; k < kc; k++, ap += MM_MR, bp += MM_NR) {
        b0 = _mm512_loadu_ps(bp);
        b1 = _mm512_loadu_ps(bp + 16);
        MM_ROWS(MM_STEP)
    }
    MM_ROWS(MM_STORE)
}

#define MM_FMA_LANES 16
static float mm_fma_loop(long iters) {
    __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-6f);
    __m512 x[12];
    float out[16], s = 0.0f;
    long i;
    int j;
    for (j = 0; j < 12; j++) x[j] = _mm512_set1_ps(0.1f * (float)(j + 1));
    for (i = 0; i < iters; i++)
        for (j = 0; j < 12; j++) x[j] = _mm512_fmadd_ps(x[j], a, b);
    for (j = 1; j < 12; j++) x[0] = _mm512_add_ps(x[0], x[j]);
    _mm512_storeu_ps(out, x[0]);
    for (j = 0; j < 16; j++) s += out[j];
    return s;
}

/* ======================================================================== */
#elif defined(MM_KERNEL_AVX2)
/* AVX2 + FMA: 16 ymm registers of 8 floats. Tile 6 x 16: 12 accumulators (6 rows
 * x 2 vectors), 2 for the B row, 1 for the A broadcast = 15 registers. Per k
 * step: 2 loads of B, 6 broadcasts of A, 12 FMAs (6 cycles at 2 per cycle). */
#include <immintrin.h>

#define MM_KERNEL_NAME "avx2"
#define MM_MR 6
#define MM_NR 16

#define MM_ROWS(X) X(0) X(1) X(2) X(3) X(4) X(5)
#define MM_DECL(r) __m256 c##r##_0, c##r##_1;
#define MM_INIT_ROW(r) c##r##_0 = b0; c##r##_1 = b1;
#define MM_LOAD(r) c##r##_0 = _mm256_loadu_ps(c + (size_t)(r) * ldc); \
                   c##r##_1 = _mm256_loadu_ps(c + (size_t)(r) * ldc + 8);
#define MM_STEP(r) a = _mm256_broadcast_ss(ap + (r)); \
                   c##r##_0 = _mm256_fmadd_ps(a, b0, c##r##_0); \
                   c##r##_1 = _mm256_fmadd_ps(a, b1, c##r##_1);
#define MM_STORE(r) _mm256_storeu_ps(c + (size_t)(r) * ldc, c##r##_0); \
                    _mm256_storeu_ps(c + (size_t)(r) * ldc + 8, c##r##_1);

static void mm_kernel(int kc, const float *ap, const float *bp, float *c, size_t ldc,
                      const float *row) {
    __m256 a, b0, b1;
    int k;
    MM_ROWS(MM_DECL)
    if (row) {
        b0 = _mm256_loadu_ps(row);
        b1 = _mm256_loadu_ps(row + 8);
        MM_ROWS(MM_INIT_ROW)
    } else {
        MM_ROWS(MM_LOAD)
    }
    for (k = 0; k < kc; k++, ap += MM_MR, bp += MM_NR) {
        b0 = _mm256_loadu_ps(bp);
        b1 = _mm256_loadu_ps(bp + 8);
        MM_ROWS(MM_STEP)
    }
    MM_ROWS(MM_STORE)
}

#define MM_FMA_LANES 8
static float mm_fma_loop(long iters) {
    __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-6f);
    __m256 x[12];
    float out[8], s = 0.0f;
    long i;
    int j;
    for (j = 0; j < 12; j++) x[j] = _mm256_set1_ps(0.1f * (float)(j + 1));
    for (i = 0; i < iters; i++)
        for (j = 0; j < 12; j++) x[j] = _mm256_fmadd_ps(x[j], a, b);
    for (j = 1; j < 12; j++) x[0] = _mm256_add_ps(x[0], x[j]);
    _mm256_storeu_ps(out, x[0]);
    for (j = 0; j < 8; j++) s += out[j];
    return s;
}

/* ======================================================================== */
#elif defined(MM_KERNEL_NEON)
/* NEON (AArch64): 32 q registers of 4 floats. Tile 8 x 12: 24 accumulators (8
 * rows x 3 vectors), 3 for the B row, 2 holding the 8 A values = 29 registers.
 * vfmaq_laneq_f32 multiplies by one lane of an A register, so A needs no
 * broadcast. Per k step: 5 loads, 24 FMAs. */
#include <arm_neon.h>

#define MM_KERNEL_NAME "neon"
#define MM_MR 8
#define MM_NR 12

#define MM_ROWS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7)
#define MM_DECL(r) float32x4_t c##r##_0, c##r##_1, c##r##_2;
#define MM_INIT_ROW(r) c##r##_0 = b0; c##r##_1 = b1; c##r##_2 = b2;
#define MM_LOAD(r) c##r##_0 = vld1q_f32(c + (size_t)(r) * ldc); \
                   c##r##_1 = vld1q_f32(c + (size_t)(r) * ldc + 4); \
                   c##r##_2 = vld1q_f32(c + (size_t)(r) * ldc + 8);
/* row r takes lane r % 4 of a0 (rows 0-3) or a1 (rows 4-7) */
#define MM_STEP_IN(r, av, lane) c##r##_0 = vfmaq_laneq_f32(c##r##_0, b0, av, lane); \
                                c##r##_1 = vfmaq_laneq_f32(c##r##_1, b1, av, lane); \
                                c##r##_2 = vfmaq_laneq_f32(c##r##_2, b2, av, lane);
#define MM_STORE(r) vst1q_f32(c + (size_t)(r) * ldc, c##r##_0); \
                    vst1q_f32(c + (size_t)(r) * ldc + 4, c##r##_1); \
                    vst1q_f32(c + (size_t)(r) * ldc + 8, c##r##_2);

static void mm_kernel(int kc, const float *ap, const float *bp, float *c, size_t ldc,
                      const float *row) {
    float32x4_t a0, a1, b0, b1, b2;
    int k;
    MM_ROWS(MM_DECL)
    if (row) {
        b0 = vld1q_f32(row);
        b1 = vld1q_f32(row + 4);
        b2 = vld1q_f32(row + 8);
        MM_ROWS(MM_INIT_ROW)
    } else {
        MM_ROWS(MM_LOAD)
    }
    for (k = 0; k < kc; k++, ap += MM_MR, bp += MM_NR) {
        a0 = vld1q_f32(ap);
        a1 = vld1q_f32(ap + 4);
        b0 = vld1q_f32(bp);
        b1 = vld1q_f32(bp + 4);
        b2 = vld1q_f32(bp + 8);
        MM_STEP_IN(0, a0, 0) MM_STEP_IN(1, a0, 1) MM_STEP_IN(2, a0, 2) MM_STEP_IN(3, a0, 3)
        MM_STEP_IN(4, a1, 0) MM_STEP_IN(5, a1, 1) MM_STEP_IN(6, a1, 2) MM_STEP_IN(7, a1, 3)
    }
    MM_ROWS(MM_STORE)
}

#define MM_FMA_LANES 4
static float mm_fma_loop(long iters) {
    float32x4_t a = vdupq_n_f32(0.999999f), b = vdupq_n_f32(1e-6f);
    float32x4_t x[12];
    float out[4], s = 0.0f;
    long i;
    int j;
    for (j = 0; j < 12; j++) x[j] = vdupq_n_f32(0.1f * (float)(j + 1));
    for (i = 0; i < iters; i++)
        for (j = 0; j < 12; j++) x[j] = vfmaq_f32(b, x[j], a);
    for (j = 1; j < 12; j++) x[0] = vaddq_f32(x[0], x[j]);
    vst1q_f32(out, x[0]);
    for (j = 0; j < 4; j++) s += out[j];
    return s;
}

/* dst[k w + i] = src[i lds + k] for i < w, k < kc: 4 x 4 blocks, the rest one by one */
static void mm_pack_t(float *dst, int w, const float *src, size_t lds, int kc) {
    int i0 = 0, k, i;
    for (; i0 + 4 <= w; i0 += 4) {
        const float *s = src + (size_t)i0 * lds;
        for (k = 0; k + 4 <= kc; k += 4) {
            float32x4_t r0 = vld1q_f32(s + k), r1 = vld1q_f32(s + lds + k), r2 = vld1q_f32(s + 2 * lds + k),
                        r3 = vld1q_f32(s + 3 * lds + k);
            float32x4_t t0 = vtrn1q_f32(r0, r1), t1 = vtrn2q_f32(r0, r1), t2 = vtrn1q_f32(r2, r3),
                        t3 = vtrn2q_f32(r2, r3);
            float *d = dst + (size_t)k * w + i0;
            vst1q_f32(d, vreinterpretq_f32_f64(vtrn1q_f64(vreinterpretq_f64_f32(t0), vreinterpretq_f64_f32(t2))));
            vst1q_f32(d + w, vreinterpretq_f32_f64(vtrn1q_f64(vreinterpretq_f64_f32(t1), vreinterpretq_f64_f32(t3))));
            vst1q_f32(d + 2 * w,
                      vreinterpretq_f32_f64(vtrn2q_f64(vreinterpretq_f64_f32(t0), vreinterpretq_f64_f32(t2))));
            vst1q_f32(d + 3 * w,
                      vreinterpretq_f32_f64(vtrn2q_f64(vreinterpretq_f64_f32(t1), vreinterpretq_f64_f32(t3))));
        }
        for (; k < kc; k++)
            for (i = 0; i < 4; i++) dst[(size_t)k * w + i0 + i] = s[(size_t)i * lds + k];
    }
    for (k = 0; k < kc; k++)
        for (i = i0; i < w; i++) dst[(size_t)k * w + i] = src[(size_t)i * lds + k];
}

/* ======================================================================== */
#else
/* Portable scalar kernel: plain C with fmaf, for any CPU. Tile 4 x 8: small
 * enough that a compiler keeps it in registers where it can. Where the target
 * has no FMA instruction, fmaf is libm's exactly rounded software version:
 * slower, the same bits. */

#define MM_KERNEL_NAME "scalar"
#define MM_MR 4
#define MM_NR 8

static void mm_kernel(int kc, const float *ap, const float *bp, float *c, size_t ldc,
                      const float *row) {
    float acc[MM_MR][MM_NR];
    int i, j, k;
    for (i = 0; i < MM_MR; i++)
        for (j = 0; j < MM_NR; j++) acc[i][j] = row ? row[j] : c[(size_t)i * ldc + j];
    for (k = 0; k < kc; k++, ap += MM_MR, bp += MM_NR)
        for (i = 0; i < MM_MR; i++)
            for (j = 0; j < MM_NR; j++) acc[i][j] = fmaf(ap[i], bp[j], acc[i][j]);
    for (i = 0; i < MM_MR; i++)
        for (j = 0; j < MM_NR; j++) c[(size_t)i * ldc + j] = acc[i][j];
}

#define MM_FMA_LANES 1
static float mm_fma_loop(long iters) {
    float x[12], s = 0.0f;
    long i;
    int j;
    for (j = 0; j < 12; j++) x[j] = 0.1f * (float)(j + 1);
    for (i = 0; i < iters; i++)
        for (j = 0; j < 12; j++) x[j] = fmaf(x[j], 0.999999f, 1e-6f);
    for (j = 0; j < 12; j++) s += x[j];
    return s;
}

/* dst[k w + i] = src[i lds + k] for i < w, k < kc */
static void mm_pack_t(float *dst, int w, const float *src, size_t lds, int kc) {
    int k, i;
    for (k = 0; k < kc; k++)
        for (i = 0; i < w; i++) dst[(size_t)k * w + i] = src[(size_t)i * lds + k];
}

#endif

/* AVX-512 and AVX2 both have AVX's 8-float registers: one transposing pack */
#if defined(MM_KERNEL_AVX512) || defined(MM_KERNEL_AVX2)
/* 8 rows of 8 floats (row i at src + i lds) to 8 columns: dst[k dw + i] = src[i lds + k] */
static void mm_t8x8(float *dst, size_t dw, const float *src, size_t lds) {
    __m256 r0 = _mm256_loadu_ps(src), r1 = _mm256_loadu_ps(src + lds), r2 = _mm256_loadu_ps(src + 2 * lds),
           r3 = _mm256_loadu_ps(src + 3 * lds), r4 = _mm256_loadu_ps(src + 4 * lds),
           r5 = _mm256_loadu_ps(src + 5 * lds), r6 = _mm256_loadu_ps(src + 6 * lds),
           r7 = _mm256_loadu_ps(src + 7 * lds);
    /* pairs of rows interleaved, then quadruples, then the 128-bit halves swapped */
    __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1), t2 = _mm256_unpacklo_ps(r2, r3),
           t3 = _mm256_unpackhi_ps(r2, r3), t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5),
           t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
    __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE),
           u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE),
           u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE),
           u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
    _mm256_storeu_ps(dst, _mm256_permute2f128_ps(u0, u4, 0x20));
    _mm256_storeu_ps(dst + dw, _mm256_permute2f128_ps(u1, u5, 0x20));
    _mm256_storeu_ps(dst + 2 * dw, _mm256_permute2f128_ps(u2, u6, 0x20));
    _mm256_storeu_ps(dst + 3 * dw, _mm256_permute2f128_ps(u3, u7, 0x20));
    _mm256_storeu_ps(dst + 4 * dw, _mm256_permute2f128_ps(u0, u4, 0x31));
    _mm256_storeu_ps(dst + 5 * dw, _mm256_permute2f128_ps(u1, u5, 0x31));
    _mm256_storeu_ps(dst + 6 * dw, _mm256_permute2f128_ps(u2, u6, 0x31));
    _mm256_storeu_ps(dst + 7 * dw, _mm256_permute2f128_ps(u3, u7, 0x31));
}

/* mm_pack_t for fewer than 8 rows (AVX2's 6 rows of A): 4 x 4 blocks in SSE
 * registers, the last group of 4 rows overlapping the one before it when w is not
 * a multiple of 4; fewer than 4 rows and the last kc % 4 columns one by one */
static void mm_pack_t4(float *dst, int w, const float *src, size_t lds, int kc) {
    int i0 = 0, k, i;
    if (w < 4) {
        for (k = 0; k < kc; k++)
            for (i = 0; i < w; i++) dst[(size_t)k * w + i] = src[(size_t)i * lds + k];
        return;
    }
    for (;;) {
        const float *s = src + (size_t)i0 * lds;
        for (k = 0; k + 4 <= kc; k += 4) {
            __m128 r0 = _mm_loadu_ps(s + k), r1 = _mm_loadu_ps(s + lds + k), r2 = _mm_loadu_ps(s + 2 * lds + k),
                   r3 = _mm_loadu_ps(s + 3 * lds + k);
            float *d = dst + (size_t)k * w + i0;
            _MM_TRANSPOSE4_PS(r0, r1, r2, r3);
            _mm_storeu_ps(d, r0);
            _mm_storeu_ps(d + w, r1);
            _mm_storeu_ps(d + 2 * (size_t)w, r2);
            _mm_storeu_ps(d + 3 * (size_t)w, r3);
        }
        for (; k < kc; k++)
            for (i = 0; i < 4; i++) dst[(size_t)k * w + i0 + i] = s[(size_t)i * lds + k];
        if (i0 + 4 == w) break;
        i0 = i0 + 8 <= w ? i0 + 4 : w - 4;
    }
}

/* dst[k w + i] = src[i lds + k] for i < w, k < kc: 8 x 8 blocks; when w is not a
 * multiple of 8 (AVX-512's 14 rows of A), the last group of 8 rows overlaps the
 * one before it and writes its rows again with the same floats; w below 8 (AVX2's 6
 * rows) goes to mm_pack_t4, and the last kc % 8 columns one by one */
static void mm_pack_t(float *dst, int w, const float *src, size_t lds, int kc) {
    int i0 = 0, k, i, last;
    if (w < 8) {
        mm_pack_t4(dst, w, src, lds, kc);
        return;
    }
    for (;;) {
        const float *s = src + (size_t)i0 * lds;
        for (k = 0; k + 8 <= kc; k += 8) mm_t8x8(dst + (size_t)k * w + i0, w, s + k, lds);
        for (; k < kc; k++)
            for (i = 0; i < 8; i++) dst[(size_t)k * w + i0 + i] = s[(size_t)i * lds + k];
        last = i0 + 8 == w;
        if (last) break;
        i0 = i0 + 16 <= w ? i0 + 8 : w - 8;
    }
}
#endif

#endif
