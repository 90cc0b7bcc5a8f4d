/* bench_products.h - the 15 matrix products of one forward + backward pass of a
 * GPT-2, as model.c calls them: `dpo bench --products` (cmd_bench.c) times them
 * through mm_*, bench/openblas_gemm.c through cblas_sgemm. One list, so that the
 * two tables compare the same shapes and layouts. n_tok rows of tokens, C, V:
 *   linear IC -> OC:  forward     out (n_tok, OC) = inp (n_tok, IC) w (IC, OC) + b   mm_ab
 *                     input grad  dinp (n_tok, IC) = dout (n_tok, OC) w^T            mm_a_bt
 *                     weight grad dw (IC, OC) += inp^T dout, inp stored (n_tok, IC)  mm_add_at_b
 *   head (tied):      forward     logits (n_tok, V) = h (n_tok, C) wte^T, wte (V, C) mm_a_bt
 *                     input grad  dh (n_tok, C) = dlogits (n_tok, V) wte (V, C)      mm_ab, no bias
 *                     weight grad dwte (V, C) += dlogits^T h, dlogits (n_tok, V)     mm_add_at_b
 * Header-only (static functions) because the OpenBLAS program is built on its own. */
#ifndef DPO_BENCH_PRODUCTS_H
#define DPO_BENCH_PRODUCTS_H

#include <stdio.h> /* snprintf */

#define BENCH_NUM_PRODUCTS 15

/* which mm_* call (matmul.h), and so which layout */
typedef enum { CALL_AB, CALL_AB_BIAS, CALL_A_BT, CALL_ADD_AT_B } mm_call;

typedef struct {
    char name[24];   /* "qkv.fwd" */
    mm_call call;
    int M, N, K;     /* out (M, N), inner K: matmul.h's names */
    int per_pass;    /* how many times one forward + backward pass makes it (L for a layer's, 1 for the head's) */
} product;

/* p[0 .. BENCH_NUM_PRODUCTS) <- the products of a pass of L layers of width C, vocabulary V, n_tok tokens */
static int list_products(product *p, int n_tok, int C, int V, int L) {
    static const char *const names[] = {"qkv", "attproj", "fc", "fcproj"};
    int ic[4], oc[4], i, n = 0;
    ic[0] = C, oc[0] = 3 * C;
    ic[1] = C, oc[1] = C;
    ic[2] = C, oc[2] = 4 * C;
    ic[3] = 4 * C, oc[3] = C;
    for (i = 0; i < 5; i++) {
        const char *nm = i < 4 ? names[i] : "head";
        product *f = &p[n++], *di = &p[n++], *dw = &p[n++];
        snprintf(f->name, sizeof f->name, "%s.fwd", nm);
        snprintf(di->name, sizeof di->name, "%s.dinp", nm);
        snprintf(dw->name, sizeof dw->name, "%s.dw", nm);
        f->per_pass = di->per_pass = dw->per_pass = i < 4 ? L : 1;
        if (i < 4) {
            f->call = CALL_AB_BIAS, f->M = n_tok, f->N = oc[i], f->K = ic[i];
            di->call = CALL_A_BT, di->M = n_tok, di->N = ic[i], di->K = oc[i];
            dw->call = CALL_ADD_AT_B, dw->M = ic[i], dw->N = oc[i], dw->K = n_tok;
        } else {
            f->call = CALL_A_BT, f->M = n_tok, f->N = V, f->K = C;
            di->call = CALL_AB, di->M = n_tok, di->N = C, di->K = V;
            dw->call = CALL_ADD_AT_B, dw->M = V, dw->N = C, dw->K = n_tok;
        }
    }
    return n;
}

#endif
