/* tests/kernel_check.c - the matrix kernel of this build against the scalar
 * reference, bit for bit, with no test framework: built for every kernel by
 * `make test-kernels`, including an AArch64 build run under qemu-user, where the
 * Check library of the Check suites (tests/test_matmul.c) is not at hand.
 *
 * 400 products: the edges of the kernel's tile and blocks (MR, NR, KC, NC from
 * mm_blocking) and random shapes, in all four layouts, with a zero, bias or
 * accumulated initial value, at 1 and at 2 threads. Every element must equal
 * mm_matmul_ref's (init, then s = fmaf(a_k, b_k, s) in k order) exactly: since
 * every kernel is checked against the same reference, they all compute the
 * same bits. Exit status 0 when all agree, 1 otherwise (naming the first
 * disagreement). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "matmul.h"
#include "util.h"

static int check(util_rng *r, int M, int N, int K, int a_t, int b_t, int mode, int threads) {
    size_t na = (size_t)M * K, nb = (size_t)K * N, no = (size_t)M * N, x;
    float *a = malloc(na * sizeof *a), *b = malloc(nb * sizeof *b), *bias = malloc((size_t)N * sizeof *bias);
    float *got = malloc(no * sizeof *got), *ref = malloc(no * sizeof *ref);
    int bad = 0;
    if (!a || !b || !bias || !got || !ref) {
        fprintf(stderr, "kernel_check: out of memory\n");
        exit(2);
    }
    for (x = 0; x < na; x++) a[x] = (float)(2.0 * util_rng_uniform(r) - 1.0);
    for (x = 0; x < nb; x++) b[x] = (float)(2.0 * util_rng_uniform(r) - 1.0);
    for (x = 0; x < (size_t)N; x++) bias[x] = (float)(2.0 * util_rng_uniform(r) - 1.0);
    for (x = 0; x < no; x++) got[x] = ref[x] = (float)(4.0 * util_rng_uniform(r) - 2.0);
    util_set_threads(threads);
    mm_matmul(got, a, b, mode == 1 ? bias : NULL, M, N, K, a_t, b_t, mode == 2);
    mm_matmul_ref(ref, a, b, mode == 1 ? bias : NULL, M, N, K, a_t, b_t, mode == 2);
    for (x = 0; x < no && !bad; x++)
        if (memcmp(&got[x], &ref[x], sizeof(float)) != 0) {
            fprintf(stderr,
                    "kernel %s: M=%d N=%d K=%d a_t=%d b_t=%d init=%s threads=%d: out[%zu] = %.9g, "
                    "reference %.9g\n",
                    mm_kernel_name(), M, N, K, a_t, b_t, mode == 0 ? "zero" : mode == 1 ? "bias" : "accumulate",
                    threads, x, (double)got[x], (double)ref[x]);
            bad = 1;
        }
    free(a);
    free(b);
    free(bias);
    free(got);
    free(ref);
    return bad;
}

int main(void) {
    int mr, nr, kc, nc, n = 0, bad = 0, i, j, k;
    util_rng r;
    mm_blocking(&mr, &nr, &kc, &nc);
    util_rng_seed(&r, 20261201);
    {
        const int Ms[] = {1, mr - 1, mr, mr + 1, 9 * mr + 2};
        const int Ns[] = {1, nr - 1, nr + 1, nc + 3};
        const int Ks[] = {1, kc, kc + 1, 2 * kc + 7};
        for (i = 0; i < 5; i++)
            for (j = 0; j < 4; j++)
                for (k = 0; k < 4; k++, n++)
                    if (!bad) bad = check(&r, Ms[i], Ns[j], Ks[k], n & 1, (n >> 1) & 1, n % 3, 1 + (n & 1));
    }
    while (n < 400 && !bad) {
        int M = 1 + (int)(util_rng_u64(&r) % (uint64_t)(4 * mr + 9));
        int N = 1 + (int)(util_rng_u64(&r) % (uint64_t)(nc + 2 * nr + 9));
        int K = 1 + (int)(util_rng_u64(&r) % (uint64_t)(2 * kc + 9));
        bad |= check(&r, M, N, K, n & 1, (n >> 1) & 1, n % 3, 1 + ((n >> 2) & 1));
        n++;
    }
    if (bad) return 1;
    printf("kernel %s (tile %d x %d, kc %d, nc %d): %d products bit-identical to the scalar reference\n",
           mm_kernel_name(), mr, nr, kc, nc, n);
    return 0;
}
