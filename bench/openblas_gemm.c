/* bench/openblas_gemm.c - the OpenBLAS reference for `dpo bench --products`:
 * cblas_sgemm timed on the very products dpo's passes make, with the same
 * layouts (row-major, the same operand stored transposed), printed in the same
 * table so that bench/all.sh can divide one GFLOP/s by the other.
 *
 * Optional tooling: never built by `make` or `make test` (bench/all.sh builds it
 * when Debian's libopenblas-dev is installed). It reads /proc/cpuinfo, prints,
 * and writes nothing else.
 *
 *   cc -std=c99 -O2 $(pkg-config --cflags openblas) bench/openblas_gemm.c \
 *      $(pkg-config --libs openblas) -o build/openblas_gemm
 *   env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OPENBLAS_NUM_THREADS=2 \
 *      build/openblas_gemm --layers 12 --dim 768 --vocab 50257 --tokens 512 --threads 2
 *
 * OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE override OpenBLAS's own choice of
 * kernel and blocking (some machines here set them, and they slow it down): the
 * program refuses to run with either set, so that the reference is OpenBLAS as
 * it tunes itself. It prints the core OpenBLAS picked and its build config.
 *
 * The products, for n_tok tokens, width C, vocabulary V (out is M x N, inner K):
 *   linear IC -> OC   forward      out = inp w + b       sgemm NN, C pre-filled with the bias rows, beta 1
 *                     input grad   dinp = dout w^T       sgemm NT, beta 0
 *                     weight grad  dw += inp^T dout      sgemm TN, beta 1
 *   head (tied)       forward      logits = h wte^T      sgemm NT, beta 0
 *                     input grad   dh = dlogits wte      sgemm NN, beta 0
 *                     weight grad  dwte += dlogits^T h   sgemm TN, beta 1
 * for qkv (C -> 3C), attproj (C -> C), fc (C -> 4C), fcproj (4C -> C): each the
 * best and the median of --reps timed calls after one warm-up call; GFLOP/s =
 * 2 M N K / best time (the bias copy of a forward is inside the timed call, as
 * in dpo's mm_ab and PyTorch's addmm). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cblas.h>

#include "../bench_products.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ------------------------------------------------------------------------ */
/* the products */

/* the products and their list: ../bench_products.h (shared with dpo bench --products) */
static const char *const form_names[] = {"sgemm_nn", "sgemm_nn", "sgemm_nt", "sgemm_nt", "sgemm_tn"};

/* one call: a is (M, K), or stored (K, M) for mm_add_at_b (TN); b is (K, N), or stored (N, K) for *_bt (NT) */
static void call(const product *p, float *out, const float *a, const float *b, const float *bias) {
    int M = p->M, N = p->N, K = p->K, i;
    switch (p->call) {
    case CALL_AB_BIAS:
        for (i = 0; i < M; i++) memcpy(out + (size_t)i * N, bias, (size_t)N * sizeof *out);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, N, K, 1.0f, a, K, b, N, 1.0f, out, N);
        break;
    case CALL_AB: cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, N, K, 1.0f, a, K, b, N, 0.0f, out, N); break;
    case CALL_A_BT: cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1.0f, a, K, b, K, 0.0f, out, N); break;
    case CALL_ADD_AT_B: cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, M, N, K, 1.0f, a, M, b, N, 1.0f, out, N); break;
    }
}

static unsigned long long rng_state = 0x9e3779b97f4a7c15ULL;

/* n floats uniform in [-0.5, 0.5) (xorshift64*), or NULL */
static float *random_floats(size_t n) {
    float *p = malloc((n ? n : 1) * sizeof *p);
    size_t i;
    if (!p) return NULL;
    for (i = 0; i < n; i++) {
        rng_state ^= rng_state >> 12;
        rng_state ^= rng_state << 25;
        rng_state ^= rng_state >> 27;
        p[i] = (float)((double)((rng_state * 0x2545f4914f6cdd1dULL) >> 40) / 16777216.0 - 0.5);
    }
    return p;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* ------------------------------------------------------------------------ */
/* the machine */

/* the value of the first line of /proc/cpuinfo whose key is `key`, or NULL (free it) */
static char *cpuinfo(const char *key) {
    FILE *fp = fopen("/proc/cpuinfo", "r");
    char *line = NULL, *out = NULL;
    size_t cap = 0, kl = strlen(key);
    if (!fp) return NULL;
    while (!out && getline(&line, &cap, fp) > 0) {
        char *colon = strchr(line, ':'), *end, *v;
        if (!colon) continue;
        for (end = colon; end > line && (end[-1] == ' ' || end[-1] == '\t'); end--) continue;
        if ((size_t)(end - line) != kl || strncmp(line, key, kl) != 0) continue;
        for (v = colon + 1; *v == ' ' || *v == '\t'; v++) continue;
        v[strcspn(v, "\n")] = '\0';
        out = malloc(strlen(v) + 1);
        if (out) memcpy(out, v, strlen(v) + 1);
    }
    free(line);
    fclose(fp);
    return out;
}

static void print_machine(int threads) {
    static const char *const wanted[] = {"avx2", "fma", "avx512f", "avx512_bf16", "asimd", "neon", "sve"};
    char *name = cpuinfo("model name"), *flags = cpuinfo("flags");
    size_t i;
    int any = 0;
    if (!flags) flags = cpuinfo("Features");
    printf("kernel: openblas %s\n", openblas_get_corename());
    printf("cpu: %s\n", name ? name : "unknown");
    printf("isa:");
    for (i = 0; flags && i < sizeof wanted / sizeof wanted[0]; i++) {
        const char *p = flags;
        size_t wl = strlen(wanted[i]);
        while ((p = strstr(p, wanted[i])) != NULL) {
            if ((p == flags || p[-1] == ' ') && (p[wl] == ' ' || p[wl] == '\0')) break;
            p += wl;
        }
        if (p) {
            printf(" %s", wanted[i]);
            any = 1;
        }
    }
    printf("%s\n", flags ? (any ? "" : " none of avx2 fma avx512f asimd neon") : " unknown");
    printf("threads: %d\n", threads);
    printf("openblas: core %s; config %s\n", openblas_get_corename(), openblas_get_config());
    free(name);
    free(flags);
}

/* ------------------------------------------------------------------------ */

static int arg_int(const char *opt, const char *v, long lo, long hi, int *out) {
    char *end;
    long x;
    errno = 0;
    x = strtol(v, &end, 10);
    if (errno != 0 || end == v || *end != '\0' || x < lo || x > hi) {
        fprintf(stderr, "openblas_gemm: %s must be an integer in [%ld, %ld], got '%s'\n", opt, lo, hi, v);
        return -1;
    }
    *out = (int)x;
    return 0;
}

static void usage(FILE *fp) {
    fprintf(fp, "usage: openblas_gemm --layers L --dim C --vocab V --tokens N [--reps R] [--threads T]\n"
                "cblas_sgemm on the matrix products of dpo bench --products (see the top of\n"
                "bench/openblas_gemm.c); run with OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset.\n");
}

int main(int argc, char **argv) {
    int L = 0, C = 0, V = 0, n_tok = 0, reps = 5, threads = 1, i, r, n;
    product p[BENCH_NUM_PRODUCTS];
    double *t, flops_pass = 0.0, secs_pass = 0.0;
    const char *bad[2] = {"OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"};
    for (i = 1; i < argc; i += 2) { /* --option value */
        int *dst = NULL;
        long hi = 1 << 24;
        if (strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            return 0;
        }
        if (strcmp(argv[i], "--layers") == 0) dst = &L, hi = 256;
        else if (strcmp(argv[i], "--dim") == 0) dst = &C, hi = 16384;
        else if (strcmp(argv[i], "--vocab") == 0) dst = &V, hi = 4194304;
        else if (strcmp(argv[i], "--tokens") == 0) dst = &n_tok, hi = 1 << 24;
        else if (strcmp(argv[i], "--reps") == 0) dst = &reps, hi = 1000000;
        else if (strcmp(argv[i], "--threads") == 0) dst = &threads, hi = 1024;
        if (!dst || i + 1 >= argc) {
            fprintf(stderr, "openblas_gemm: %s '%s'\n", dst ? "a value is missing after" : "unknown argument",
                    argv[i]);
            usage(stderr);
            return 2;
        }
        if (arg_int(argv[i], argv[i + 1], 1, hi, dst) != 0) return 2;
    }
    if (!L || !C || !V || !n_tok) {
        usage(stderr);
        return 2;
    }
    for (i = 0; i < 2; i++) {
        if (getenv(bad[i])) {
            fprintf(stderr, "openblas_gemm: %s=%s is set; it overrides OpenBLAS's own tuning: run with it unset "
                            "(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE ...)\n", bad[i], getenv(bad[i]));
            return 2;
        }
    }
    openblas_set_num_threads(threads);
    print_machine(openblas_get_num_threads());
    t = malloc((size_t)reps * sizeof *t);
    if (!t) return 1;
    n = list_products(p, n_tok, C, V, L);
    printf("\nproducts: n_tok %d, C %d, V %d, %d layers; each the best and median of %d timed calls after 1 "
           "warm-up; GFLOP/s = 2 M N K / best time\n", n_tok, C, V, L, reps);
    printf("%-13s %-12s %7s %7s %7s %10s %10s %9s\n", "name", "call", "M", "N", "K", "best_ms", "median_ms",
           "GFLOP/s");
    for (i = 0; i < n; i++) {
        size_t M = (size_t)p[i].M, N = (size_t)p[i].N, K = (size_t)p[i].K;
        float *a = random_floats(M * K), *b = random_floats(K * N), *out = random_floats(M * N);
        float *bias = random_floats(N);
        double flops = 2.0 * (double)M * (double)N * (double)K, best, med;
        if (!a || !b || !out || !bias) {
            fprintf(stderr, "openblas_gemm: out of memory for %s\n", p[i].name);
            return 1;
        }
        for (r = 0; r <= reps; r++) {
            double t0 = now();
            call(&p[i], out, a, b, bias);
            if (r > 0) t[r - 1] = now() - t0;
        }
        qsort(t, (size_t)reps, sizeof *t, cmp_double);
        best = t[0];
        med = reps % 2 ? t[reps / 2] : 0.5 * (t[reps / 2 - 1] + t[reps / 2]);
        printf("%-13s %-12s %7d %7d %7d %10.3f %10.3f %9.1f\n", p[i].name, form_names[p[i].call], p[i].M, p[i].N,
               p[i].K, best * 1e3, med * 1e3, flops / best / 1e9);
        flops_pass += flops * p[i].per_pass;
        secs_pass += best * p[i].per_pass;
        free(a);
        free(b);
        free(out);
        free(bias);
    }
    printf("all products of one forward + backward pass (%d layers + head): %.1f GFLOP in %.3f s (best times): "
           "%.1f GFLOP/s\n", L, flops_pass / 1e9, secs_pass, flops_pass / secs_pass / 1e9);
    free(t);
    return 0;
}
