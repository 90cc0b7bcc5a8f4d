/* explain.c - owns `dpo explain`'s computation and picture: for one row of a
 * dataset (loaded, tokenized and truncated by data.c), each response token's
 * log-probability under the policy and under the reference and its share of the
 * implicit reward, the sums, the margin and DPO weight of a pair; the visible
 * form of a token's bytes; and the SVG drawing of all of it, into memory.
 * It must never print, open a file or touch the network (the command layer,
 * cmd_explain.c, writes what this file renders), never re-implement data.c's
 * encoding, truncation or packing, and never emit text into the SVG that is not
 * XML-escaped, valid UTF-8 (svgbuf.c holds the buffer and the escaping).
 *
 * The implicit reward (objective.c, step 4 of the derivation) of a response y to
 * a prompt x is
 *
 *     rhat(x,y) = beta (log pi(y|x) - log pi_ref(y|x))
 *               = sum_t beta (log pi(y_t | x, y_<t) - log pi_ref(y_t | x, y_<t)),
 *
 * since a response's log-probability is the sum of its tokens' (the end-of-text
 * token that ends it included, as training counts it). Each term of the second
 * line is one token's share: where in the response the policy moved away from
 * the reference, and which way. For a pair, the margin beta h = rhat(x,y_w) -
 * rhat(x,y_l) and the weight sigmoid(-beta h) of the pair in the DPO gradient
 * (objective.c, step 6) follow from the two sums. */
#include "explain.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "objective.h"
#include "svgbuf.h"
#include "unicode.h"

#define EOS_TEXT "<|endoftext|>"

/* ======================================================================== */
/* checks                                                                    */
/* ======================================================================== */

int explain_check_models(const model *pol, const model *ref, const tok_tokenizer *t, dpo_err *e) {
    static const char *const names[5] = {"n_layer", "n_head", "n_embd", "n_positions", "vocab_size"};
    const int a[5] = {pol->cfg.n_layer, pol->cfg.n_head, pol->cfg.n_embd, pol->cfg.n_ctx, pol->cfg.vocab_size};
    const int b[5] = {ref->cfg.n_layer, ref->cfg.n_head, ref->cfg.n_embd, ref->cfg.n_ctx, ref->cfg.vocab_size};
    int i;
    for (i = 0; i < 5; i++)
        if (a[i] != b[i])
            return dpo_errf(e, "the reference's %s (%d) differs from the policy's (%d): DPO's reference is the "
                               "model the policy was trained from, of the same configuration",
                            names[i], b[i], a[i]);
    if (tok_vocab_size(t) > pol->cfg.vocab_size)
        return dpo_errf(e, "the tokenizer has %d tokens, more than the model's vocab_size %d", tok_vocab_size(t),
                        pol->cfg.vocab_size);
    return 0;
}

/* ======================================================================== */
/* visible text                                                              */
/* ======================================================================== */

size_t explain_visible(char *out, const unsigned char *s, size_t len) {
    static const char hex[] = "0123456789abcdef";
    size_t i = 0, o = 0;
    while (i < len) {
        uint32_t cp = 0;
        int n = uni_decode_utf8(s + i, len - i, &cp);
        if (n == 0 || cp < 0x20 || cp == 0x7f) { /* a control byte, or a byte that is not UTF-8 */
            unsigned char c = s[i];
            out[o++] = '\\';
            if (c == '\n') out[o++] = 'n';
            else if (c == '\t') out[o++] = 't';
            else if (c == '\r') out[o++] = 'r';
            else {
                out[o++] = 'x';
                out[o++] = hex[c >> 4];
                out[o++] = hex[c & 15];
            }
            i++;
        } else if (cp == '\\') {
            out[o++] = '\\';
            out[o++] = '\\';
            i++;
        } else if ((cp >= 0x80 && cp <= 0x9f) || (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069) ||
                   cp == 0xfffe || cp == 0xffff) { /* 6 bytes for the 2 or 3 of the character */
            out[o++] = '\\';
            out[o++] = 'u';
            out[o++] = hex[(cp >> 12) & 15];
            out[o++] = hex[(cp >> 8) & 15];
            out[o++] = hex[(cp >> 4) & 15];
            out[o++] = hex[cp & 15];
            i += (size_t)n;
        } else {
            memcpy(out + o, s + i, (size_t)n);
            o += (size_t)n;
            i += (size_t)n;
        }
    }
    out[o] = '\0';
    return o;
}

double explain_intensity(double v, double scale) {
    double t;
    if (!(scale > 0.0) || !isfinite(v)) return 0.0;
    t = v / scale;
    return t > 1.0 ? 1.0 : t < -1.0 ? -1.0 : t;
}

/* ======================================================================== */
/* the per-token table of one row                                            */
/* ======================================================================== */

void explain_free(explain_result *r) {
    free(r->text_pool);
    free(r->tok_pool);
    memset(r, 0, sizeof *r);
}

/* Bytes of visible text token id needs (with its NUL): the end-of-text label,
 * "[id N]" for an id the tokenizer does not have, else EXPLAIN_VISIBLE_CAP. */
static size_t text_cap(const tok_tokenizer *t, int id) {
    size_t len;
    if (!tok_token_bytes(t, id, &len)) return 32;
    return EXPLAIN_VISIBLE_CAP(len) > sizeof EOS_TEXT ? EXPLAIN_VISIBLE_CAP(len) : sizeof EOS_TEXT;
}

/* One token: id, visible text written at *pool (which moves past it), flags.
 * The end-of-text id is labelled as such when the tokenizer can never produce it
 * from text, or at the end of a sequence (where the program put it). */
static void fill_token(explain_token *x, const tok_tokenizer *t, int eos, int id, int last, char **pool) {
    size_t len, k;
    const unsigned char *b = tok_token_bytes(t, id, &len);
    x->id = id;
    x->eos = id == eos && (tok_eot_id(t) == eos || last);
    x->newline = 0;
    x->text = *pool;
    if (x->eos) {
        memcpy(*pool, EOS_TEXT, sizeof EOS_TEXT);
        len = sizeof EOS_TEXT - 1;
    } else if (!b) {
        len = (size_t)snprintf(*pool, 32, "[id %d]", id);
    } else {
        for (k = 0; k < len; k++)
            if (b[k] == '\n' || b[k] == '\r') x->newline = 1;
        len = explain_visible(*pool, b, len);
    }
    *pool += len + 1;
}

/* The result's two allocations: every token (prompt, then each response) and
 * every visible text. Returns 0, or -1 (out of memory or an impossible size). */
static int alloc_pools(explain_result *r, const tok_tokenizer *t, const int *prompt, int n_prompt,
                       const data_batch *b, int per, dpo_err *e) {
    size_t n_tok = (size_t)n_prompt, chars = 0;
    int k, j, over = 0;
    for (k = 0; k < per; k++) n_tok += (size_t)b->resp_len[k];
    for (j = 0; j < n_prompt && !over; j++) over = util_add_size(chars, text_cap(t, prompt[j]), &chars) != 0;
    for (k = 0; k < per && !over; k++)
        for (j = 0; j < b->resp_len[k] && !over; j++)
            over = util_add_size(chars, text_cap(t, b->targets[b->resp_start[k] + j]), &chars) != 0;
    if (over) {
        dpo_errf(e, "out of memory for the row's token texts (more than %zu bytes)", (size_t)-1);
        return dpo_err_resource(e);
    }
    r->tok_pool = calloc(n_tok, sizeof *r->tok_pool);
    r->text_pool = malloc(chars ? chars : 1); /* malloc(0) may return NULL */
    if (!r->tok_pool || !r->text_pool)
        return dpo_err_oom(e, "the row's tokens and their texts", n_tok * sizeof *r->tok_pool + (chars ? chars : 1), 1);
    return 0;
}

/* Response k of the row: token t of it is the target at resp_start + t of both
 * batches (data_batch_build's layout: the position before a token predicts it),
 * its log-probs those the two forward passes wrote there. */
static void fill_response(explain_response *x, explain_token *tok, const tok_tokenizer *t, int eos, const data_batch *bp,
                          const data_batch *br, int k, double beta, char **pool) {
    int j, n = bp->resp_len[k];
    x->tok = tok;
    x->n = n;
    for (j = 0; j < n; j++) {
        int at = bp->resp_start[k] + j;
        fill_token(&tok[j], t, eos, bp->targets[at], j == n - 1, pool);
        tok[j].logp = (double)bp->logp[at];
        tok[j].ref_logp = (double)br->logp[at];
        /* share_t = beta (log pi(y_t | x, y_<t) - log pi_ref(y_t | x, y_<t)) */
        tok[j].reward = beta * (tok[j].logp - tok[j].ref_logp);
    }
    /* log pi(y|x) = sum_t log pi(y_t | x, y_<t): the same sum, in the same order, as dpo logp */
    x->logp = data_seq_logp(bp, k);
    x->ref_logp = data_seq_logp(br, k);
    x->reward = obj_implicit_reward(beta, x->logp, x->ref_logp);
}

int explain_row(explain_result *r, model *pol, model *ref, const tok_tokenizer *t, int eos, const data_set *d,
                int row, double beta, dpo_err *e) {
    data_batch bp, br;
    const data_row *dr;
    const int *prompt;
    char *pool;
    int per, k, j, rc = -1;
    explain_token *next;

    memset(r, 0, sizeof *r);
    memset(&bp, 0, sizeof bp);
    memset(&br, 0, sizeof br);
    if (row < 0 || row >= d->n_rows) return dpo_errf(e, "row %d is not in the data, which has %d rows", row + 1, d->n_rows);
    if (!(beta > 0.0 && isfinite(beta))) return dpo_errf(e, "beta must be a finite number > 0 (got %g)", beta);
    per = data_seqs_per_row(d);
    dr = &d->rows[row];
    prompt = d->pool + dr->off;
    /* the row packed as training packs it, once for each model's log-probs */
    if (data_batch_build(&bp, d, &row, 1) == 0 || data_batch_build(&br, d, &row, 1) == 0) {
        dpo_err_oom(e, "the row's batch", data_batch_bytes(d, &row, 1, 0), 1);
        goto done;
    }
    if (model_forward(pol, bp.logp, bp.tokens, bp.targets, bp.seq_len, per, e) != 0) {
        dpo_err_prefix(e, "the policy");
        goto done;
    }
    if (model_forward(ref, br.logp, br.tokens, br.targets, br.seq_len, per, e) != 0) {
        dpo_err_prefix(e, "the reference");
        goto done;
    }
    if (alloc_pools(r, t, prompt, dr->n_prompt, &bp, per, e) != 0) goto done;
    pool = r->text_pool;
    r->beta = beta;
    r->truncated = dr->truncated;
    r->prompt = r->tok_pool;
    r->n_prompt = dr->n_prompt;
    for (j = 0; j < dr->n_prompt; j++) fill_token(&r->prompt[j], t, eos, prompt[j], j == dr->n_prompt - 1, &pool);
    next = r->tok_pool + dr->n_prompt;
    r->n_resp = per;
    for (k = 0; k < per; k++) {
        explain_response *x = &r->resp[k];
        fill_response(x, next, t, eos, &bp, &br, k, beta, &pool);
        next += x->n;
        x->name = d->sft ? "completion" : k == 0 ? "chosen" : "rejected";
        x->cut = dr->truncated && (x->n == 0 || !x->tok[x->n - 1].eos);
        for (j = 0; j < x->n; j++)
            if (fabs(x->tok[j].reward) > r->scale) r->scale = fabs(x->tok[j].reward);
    }
    if (per == 2) {
        /* beta h = rhat(x,y_w) - rhat(x,y_l); weight sigmoid(-beta h) (objective.c, step 6) */
        r->margin = r->resp[0].reward - r->resp[1].reward;
        r->weight = obj_dpo_weight(r->margin);
    }
    rc = 0;
done:
    data_batch_free(&bp);
    data_batch_free(&br);
    if (rc != 0) explain_free(r);
    return rc;
}

/* ======================================================================== */
/* SVG                                                                       */
/* ======================================================================== */

/* The layout: a monospace font whose characters are 0.6 em wide. */
#define SVG_W 960
#define SVG_MARGIN 20.0
#define SVG_FONT 14
#define SVG_CHAR_W (0.6 * SVG_FONT)
#define SVG_LINE_H 20.0   /* a line of text */
#define SVG_ROW_H 26.0    /* a line of token boxes */
#define SVG_BOX_H 21.0
#define SVG_PAD 3.0       /* inside a box, left and right */
#define SVG_GAP 2.0       /* between boxes */
#define SVG_CHARS ((size_t)((SVG_W - 2 * SVG_MARGIN) / SVG_CHAR_W))

/* Greek letters and signs, as UTF-8 (separate literals end the hex escapes) */
#define BETA "\xce\xb2"
#define PI "\xcf\x80"
#define SIGMA "\xcf\x83"
#define SUM "\xce\xa3"
#define MINUS "\xe2\x88\x92"

/* One line of text (more when it is longer than the picture is wide), at *y. */
static void draw_text(svg_buf *b, double *y, const char *s, const char *attrs) {
    size_t len = strlen(s), off = 0;
    do {
        size_t k = svg_prefix_bytes(s + off, len - off, SVG_CHARS);
        *y += SVG_LINE_H;
        svg_printf(b, "<text x=\"%.1f\" y=\"%.1f\"%s>", SVG_MARGIN, *y, attrs);
        svg_xml(b, s + off, k);
        SVG_LIT(b, "</text>\n");
        off += k;
    } while (off < len);
}

/* The fill of a box whose value sits at t in [-1, 1] on the colour scale: white
 * at 0, towards green (26, 150, 65) for t > 0 and red (215, 25, 28) for t < 0;
 * its text white on the stronger colours. */
static void box_colour(double t, char fill[8], const char **ink) {
    static const double green[3] = {26, 150, 65}, red[3] = {215, 25, 28};
    const double *c = t >= 0.0 ? green : red;
    double a = fabs(t);
    int rgb[3], i;
    for (i = 0; i < 3; i++) rgb[i] = (int)floor(255.0 + a * (c[i] - 255.0) + 0.5);
    snprintf(fill, 8, "#%02x%02x%02x", (unsigned)rgb[0] & 255u, (unsigned)rgb[1] & 255u, (unsigned)rgb[2] & 255u);
    *ink = a > 0.55 ? "#ffffff" : "#000000";
}

/* Tokens as boxes flowing in lines from *y: coloured by share (values = 1), or
 * grey without values (the prompt). A token holding a line break ends a line. */
static void draw_tokens(svg_buf *b, double *y, const explain_token *tok, int n, double scale, int values) {
    double x = SVG_MARGIN, top = *y + 8.0, avail = SVG_W - 2 * SVG_MARGIN;
    int j;
    for (j = 0; j < n; j++) {
        const explain_token *k = &tok[j];
        size_t len = strlen(k->text);
        double w = (double)svg_chars(k->text, len) * SVG_CHAR_W + 2 * SVG_PAD;
        char fill[8] = "#eeeeee";
        const char *ink = "#555555";
        if (w > avail) w = avail; /* a very long token: squeezed into one line (textLength below) */
        if (x > SVG_MARGIN && x + w > SVG_MARGIN + avail) {
            x = SVG_MARGIN;
            top += SVG_ROW_H;
        }
        if (values) box_colour(explain_intensity(k->reward, scale), fill, &ink);
        SVG_LIT(b, "<g><title>");
        svg_xml(b, k->text, len);
        if (values)
            svg_printf(b, ": log " PI " = %.4f, log " PI "_ref = %.4f, share " BETA " (log " PI " " MINUS " log " PI
                         "_ref) = %+.4f",
                      k->logp, k->ref_logp, k->reward);
        else
            SVG_LIT(b, " (prompt)");
        svg_printf(b, "</title><rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" rx=\"3\" fill=\"%s\" "
                     "stroke=\"#bbbbbb\"/>",
                  x, top, w, SVG_BOX_H, fill);
        svg_printf(b, "<text x=\"%.1f\" y=\"%.1f\" textLength=\"%.1f\" lengthAdjust=\"spacingAndGlyphs\" fill=\"%s\"%s>",
                  x + SVG_PAD, top + 15.0, w - 2 * SVG_PAD, ink, k->eos ? " font-style=\"italic\"" : "");
        svg_xml(b, k->text, len);
        SVG_LIT(b, "</text></g>\n");
        x += w + SVG_GAP;
        if (k->newline && j + 1 < n) {
            x = SVG_MARGIN;
            top += SVG_ROW_H;
        }
    }
    *y = top + SVG_BOX_H + 4.0;
}

/* the colour scale: a gradient from -scale (red) through 0 (white) to +scale (green) */
static void draw_legend(svg_buf *b, double *y, double scale) {
    double x = SVG_MARGIN, w = 360.0;
    draw_text(b, y, "colour: each token's share " BETA " (log " PI " " MINUS " log " PI "_ref) of the implicit reward",
             " fill=\"#333333\"");
    *y += 8.0;
    svg_printf(b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"14\" fill=\"url(#explain-scale)\" "
                 "stroke=\"#999999\"/>\n",
              x, *y, w);
    *y += 14.0 + 16.0;
    svg_printf(b, "<text x=\"%.1f\" y=\"%.1f\" fill=\"#333333\">%+.4f</text>\n", x, *y, -scale);
    svg_printf(b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" fill=\"#333333\">0</text>\n", x + w / 2, *y);
    svg_printf(b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\" fill=\"#333333\">%+.4f</text>\n", x + w, *y, scale);
}

/* everything but the <svg> element itself, which needs the height */
static void draw_body(svg_buf *b, double *y, const explain_result *r, const char *caption) {
    char line[512];
    int k;
    draw_text(b, y, "dpo explain: where the implicit reward lives", " font-weight=\"bold\"");
    if (caption && caption[0]) draw_text(b, y, caption, " fill=\"#333333\"");
    snprintf(line, sizeof line,
             "r(x, y) = " BETA " " SUM "_t (log " PI "(y_t | x, y_<t) " MINUS " log " PI "_ref(y_t | x, y_<t)), " BETA
             " = %g",
             r->beta);
    draw_text(b, y, line, "");
    *y += 6.0;
    snprintf(line, sizeof line, "prompt (%d token%s)%s:", r->n_prompt, r->n_prompt == 1 ? "" : "s",
             r->truncated ? "; the row was truncated to fit the maximum length" : "");
    draw_text(b, y, line, " font-weight=\"bold\"");
    draw_tokens(b, y, r->prompt, r->n_prompt, r->scale, 0);
    for (k = 0; k < r->n_resp; k++) {
        const explain_response *x = &r->resp[k];
        *y += 6.0;
        snprintf(line, sizeof line, "%s (%d token%s%s): r = %g " "\xc3\x97" " (%.4f " MINUS " (%.4f)) = %+.4f",
                 x->name, x->n, x->n == 1 ? "" : "s", x->cut ? ", cut by truncation: no end-of-text" : "", r->beta,
                 x->logp, x->ref_logp, x->reward);
        draw_text(b, y, line, " font-weight=\"bold\"");
        draw_tokens(b, y, x->tok, x->n, r->scale, 1);
    }
    if (r->n_resp == 2) {
        *y += 6.0;
        snprintf(line, sizeof line, "margin " BETA " h = r(chosen) " MINUS " r(rejected) = %+.4f", r->margin);
        draw_text(b, y, line, " font-weight=\"bold\"");
        snprintf(line, sizeof line,
                 "weight " SIGMA "(" MINUS BETA " h) = %.4f: the pair's weight in the DPO gradient, the probability "
                 "the implicit reward gives to the wrong order",
                 r->weight);
        draw_text(b, y, line, "");
    }
    *y += 10.0;
    draw_legend(b, y, r->scale);
}

int explain_svg(const explain_result *r, const char *caption, char **out, size_t *len, dpo_err *e) {
    svg_buf head, body;
    double y = 0.0;
    int h;
    memset(&head, 0, sizeof head);
    memset(&body, 0, sizeof body);
    *out = NULL;
    *len = 0;
    draw_body(&body, &y, r, caption);
    h = (int)ceil(y + SVG_MARGIN);
    svg_printf(&head, "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"%d\" height=\"%d\" "
                     "viewBox=\"0 0 %d %d\" font-family=\"DejaVu Sans Mono, Menlo, Consolas, monospace\" "
                     "font-size=\"%d\" xml:space=\"preserve\">\n",
              SVG_W, h, SVG_W, h, SVG_FONT);
    SVG_LIT(&head, "<title>dpo explain</title>\n<desc>");
    svg_xml(&head, caption ? caption : "", caption ? strlen(caption) : 0);
    SVG_LIT(&head, "</desc>\n");
    SVG_LIT(&head, "<defs><linearGradient id=\"explain-scale\" x1=\"0\" y1=\"0\" x2=\"1\" y2=\"0\">"
                  "<stop offset=\"0\" stop-color=\"#d7191c\"/><stop offset=\"0.5\" stop-color=\"#ffffff\"/>"
                  "<stop offset=\"1\" stop-color=\"#1a9641\"/></linearGradient></defs>\n");
    svg_printf(&head, "<rect x=\"0\" y=\"0\" width=\"%d\" height=\"%d\" fill=\"#ffffff\"/>\n", SVG_W, h);
    if (!body.oom) svg_put(&head, body.p ? body.p : "", body.n);
    SVG_LIT(&head, "</svg>\n");
    free(body.p);
    if (head.oom || body.oom) {
        free(head.p);
        return dpo_err_oom(e, "the SVG", body.oom ? body.oom_bytes : head.oom_bytes, 1);
    }
    *out = head.p;
    *len = head.n;
    return 0;
}
