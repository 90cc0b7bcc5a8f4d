/* tests/test_plot.c - plot.c and svgbuf.c: the tick algorithm against
 * hand-computed axes (tiny, huge, negative, zero-width, single values, fixed
 * ends) and its invariants over thousands of random ranges; the strict TSV
 * reader's refusals (missing column, bad numbers, nan/inf, ragged rows, empty
 * file, header only, NUL, repeated names, negative error bars); series
 * grouping; and the SVG: well-formed (testutil_check_xml), every text
 * escaped and valid UTF-8, a known point drawn where the axes put it. */
#include <math.h>

#include "testutil.h"
#include "plot.h"
#include "svgbuf.h"
#include "util.h"

/* ======================================================================== */
/* ticks: hand-computed axes                                                 */
/* ======================================================================== */

/* The axis of [a, b] (free ends unless fixed) has step m 10^e and exactly the
 * labels want[0..n) (NULL-terminated). */
static void check_axis(double a, double b, int fix_lo, int fix_hi, int m, int e, double lo, double hi,
                       const char *const *want) {
    plot_axis ax;
    dpo_err err;
    char label[32];
    int n = 0, i;
    while (want[n]) n++;
    ck_assert_msg(plot_axis_make(&ax, a, b, fix_lo, fix_hi, &err) == 0, "[%g, %g]: %s", a, b, err.msg);
    ck_assert_msg(ax.m == m && ax.exp10 == e, "[%g, %g]: step %de%d, want %de%d", a, b, ax.m, ax.exp10, m, e);
    ck_assert_msg(ax.n == n, "[%g, %g]: %d ticks, want %d", a, b, ax.n, n);
    ck_assert_msg(ax.lo == lo && ax.hi == hi, "[%g, %g]: axis [%.17g, %.17g], want [%.17g, %.17g]", a, b, ax.lo, ax.hi,
                  lo, hi);
    for (i = 0; i < n; i++) {
        size_t k = plot_tick_label(label, sizeof label, &ax, i);
        ck_assert_msg(strcmp(label, want[i]) == 0, "[%g, %g]: tick %d is '%s', want '%s'", a, b, i, label, want[i]);
        ck_assert_uint_eq(k, strlen(want[i]));
        /* the label is the decimal of the tick: strtod gives back the very double */
        ck_assert_msg(strtod(label, NULL) == ax.v[i], "'%s' vs %.17g", label, ax.v[i]);
    }
}

START_TEST(test_ticks_by_hand) {
    /* [0, 1]: step 0.1 would give 11 ticks, 0.2 gives 6 */
    static const char *const unit[] = {"0.0", "0.2", "0.4", "0.6", "0.8", "1.0", NULL};
    /* [-3.7, 12.1]: step 1 gives -4..13 (18), 2 gives -4..14 (10) */
    static const char *const mixed[] = {"-4", "-2", "0", "2", "4", "6", "8", "10", "12", "14", NULL};
    /* one value 5: widened to [4.5, 5.5]; step 0.1 gives 11, 0.2 gives 4.4..5.6 (7) */
    static const char *const single[] = {"4.4", "4.6", "4.8", "5.0", "5.2", "5.4", "5.6", NULL};
    /* zero-width at 0: [-1, 1]; step 0.2 gives 11, 0.5 gives 5 */
    static const char *const zero[] = {"-1.0", "-0.5", "0.0", "0.5", "1.0", NULL};
    /* tiny [1e-9, 3.5e-9]: step 2e-10 gives 5..18 (14), 5e-10 gives 2..7 (6), scientific */
    static const char *const tiny[] = {"1e-9", "1.5e-9", "2e-9", "2.5e-9", "3e-9", "3.5e-9", NULL};
    /* huge [0, 3.2e12]: step 2e11 gives 17, 5e11 gives 0..7 (8) */
    static const char *const huge[] = {"0", "5e11", "1e12", "1.5e12", "2e12", "2.5e12", "3e12", "3.5e12", NULL};
    /* negative [-250, -30]: step 20 gives -13..-1 (13), 50 gives -5..0 (6) */
    static const char *const neg[] = {"-250", "-200", "-150", "-100", "-50", "0", NULL};
    /* [1000, 1000.5]: step 0.05 gives 11, 0.1 gives 6 */
    static const char *const offset[] = {"1000.0", "1000.1", "1000.2", "1000.3", "1000.4", "1000.5", NULL};
    /* [-0.004, 0.0123]: step 0.001 gives 18, 0.002 gives -2..7 (10) */
    static const char *const small[] = {"-0.004", "-0.002", "0.000", "0.002", "0.004",
                                        "0.006",  "0.008",  "0.010", "0.012", "0.014", NULL};
    /* [0, 500000]: step 1e5, every tick below 10^6: fixed */
    static const char *const big_fixed[] = {"0", "100000", "200000", "300000", "400000", "500000", NULL};
    /* [0, 999999]: step 1e5 gives 11, 2e5 gives 6 reaching 10^6: scientific */
    static const char *const big_sci[] = {"0", "2e5", "4e5", "6e5", "8e5", "1e6", NULL};
    /* [0, 5e-5]: step 1e-5, the smallest still fixed */
    static const char *const e5[] = {"0.00000", "0.00001", "0.00002", "0.00003", "0.00004", "0.00005", NULL};
    /* [0, 5e-6]: step 1e-6: scientific */
    static const char *const e6[] = {"0", "1e-6", "2e-6", "3e-6", "4e-6", "5e-6", NULL};
    /* [1, 1 + 1e-12]: one value for doubles, widened to [0.9, 1.1]; step 0.02 gives 11, 0.05 gives 5 */
    static const char *const narrow[] = {"0.90", "0.95", "1.00", "1.05", "1.10", NULL};
    /* fixed ends [0, 1.1]: step 0.1 gives 12, 0.2 gives 0..1.0 inside (6); the axis ends at 1.1 */
    static const char *const fixed[] = {"0.0", "0.2", "0.4", "0.6", "0.8", "1.0", NULL};
    /* fixed start 0, free end at 7.3: step 1 gives 0..8 (9) */
    static const char *const half[] = {"0", "1", "2", "3", "4", "5", "6", "7", "8", NULL};
    /* negative and huge [-7e20, -2e20]: step 5e19 gives -14..-4 (11), 1e20 gives -7..-2 (6) */
    static const char *const neg_huge[] = {"-7e20", "-6e20", "-5e20", "-4e20", "-3e20", "-2e20", NULL};

    check_axis(0, 1, 0, 0, 2, -1, 0, 1, unit);
    check_axis(0.03, 0.97, 0, 0, 2, -1, 0, 1, unit);
    check_axis(-3.7, 12.1, 0, 0, 2, 0, -4, 14, mixed);
    check_axis(5, 5, 0, 0, 2, -1, 4.4, 5.6, single);
    check_axis(0, 0, 0, 0, 5, -1, -1, 1, zero);
    check_axis(1e-9, 3.5e-9, 0, 0, 5, -10, 1e-9, 3.5e-9, tiny);
    check_axis(0, 3.2e12, 0, 0, 5, 11, 0, 3.5e12, huge);
    check_axis(-250, -30, 0, 0, 5, 1, -250, 0, neg);
    check_axis(1000, 1000.5, 0, 0, 1, -1, 1000, 1000.5, offset);
    check_axis(-0.004, 0.0123, 0, 0, 2, -3, -0.004, 0.014, small);
    check_axis(0, 500000, 0, 0, 1, 5, 0, 500000, big_fixed);
    check_axis(0, 999999, 0, 0, 2, 5, 0, 1e6, big_sci);
    check_axis(0, 5e-5, 0, 0, 1, -5, 0, 5e-5, e5);
    check_axis(0, 5e-6, 0, 0, 1, -6, 0, 5e-6, e6);
    check_axis(1, 1 + 1e-12, 0, 0, 5, -2, 0.9, 1.1, narrow);
    check_axis(0, 1.1, 1, 1, 2, -1, 0, 1.1, fixed);
    check_axis(0, 7.3, 1, 0, 1, 0, 0, 8, half);
    check_axis(-7e20, -2e20, 0, 0, 1, 20, -7e20, -2e20, neg_huge);
}
END_TEST

START_TEST(test_ticks_refused) {
    plot_axis ax;
    dpo_err e;
    ck_assert_int_eq(plot_axis_make(&ax, NAN, 1, 0, 0, &e), -1);
    ck_assert_int_eq(plot_axis_make(&ax, 0, INFINITY, 0, 0, &e), -1);
    ck_assert_int_eq(plot_axis_make(&ax, 2, 1, 0, 0, &e), -1);
    ck_assert_int_eq(plot_axis_make(&ax, 0, 2e300, 0, 0, &e), -1);
    ck_assert(strstr(e.msg, "1e300") != NULL);
    ck_assert_int_eq(plot_axis_make(&ax, 0, 1e-300, 0, 0, &e), -1); /* a step of 1e-301 */
    ck_assert(strstr(e.msg, "1e-301 apart") != NULL);
    ck_assert_int_eq(plot_axis_make(&ax, -1e300, 1e300, 0, 0, &e), 0); /* the widest: -1e300..1e300 by 5e299 */
    ck_assert(ax.n == 5 && ax.m == 5 && ax.exp10 == 299 && ax.lo == -1e300 && ax.hi == 1e300);
    ck_assert_int_eq(plot_axis_make(&ax, 1, 1, 1, 1, &e), -1); /* both ends fixed at one value */
    ck_assert(strstr(e.msg, "too narrow") != NULL);
}
END_TEST

/* ======================================================================== */
/* ticks: invariants over random ranges                                      */
/* ======================================================================== */

START_TEST(test_ticks_random) {
    util_rng r;
    int t;
    util_rng_seed(&r, 11);
    for (t = 0; t < 20000; t++) {
        /* a centre and a width over many decades, sometimes a single value */
        double scale = pow(10.0, floor(util_rng_uniform(&r) * 40.0) - 20.0);
        double c = (util_rng_uniform(&r) * 2 - 1) * scale * (t % 3 == 0 ? 100.0 : 1.0);
        double w = t % 17 == 0 ? 0.0 : util_rng_uniform(&r) * scale;
        double a = c - w / 2, b = c + w / 2, step;
        plot_axis ax;
        dpo_err e;
        char label[32], prev[32] = "";
        int i;
        ck_assert_msg(plot_axis_make(&ax, a, b, 0, 0, &e) == 0, "[%g, %g]: %s", a, b, e.msg);
        ck_assert_msg(ax.n >= PLOT_MIN_TICKS && ax.n <= PLOT_MAX_TICKS, "[%.17g, %.17g]: %d ticks", a, b, ax.n);
        ck_assert(ax.m == 1 || ax.m == 2 || ax.m == 5);
        ck_assert_msg(ax.lo <= a && ax.hi >= b, "[%.17g, %.17g] not inside [%.17g, %.17g]", a, b, ax.lo, ax.hi);
        ck_assert(ax.lo == ax.v[0] && ax.hi == ax.v[ax.n - 1]);
        /* rounded outwards by less than a step at each end; the step before it in 1, 2, 5, 10, ...
         * would give more than PLOT_MAX_TICKS ticks (a range not widened, as one value, first) */
        step = ax.step;
        if (b - a > 1e-6 * fmax(fabs(a), fabs(b))) {
            double smaller = ax.m == 1 ? step / 2 : ax.m == 2 ? step / 2 : step * 2 / 5;
            ck_assert_msg(ax.hi - ax.lo < (b - a) + 2.0 * step, "[%g, %g]", a, b);
            ck_assert_msg(ceil(b / smaller) - floor(a / smaller) + 1 > PLOT_MAX_TICKS, "[%.17g, %.17g]: step %g too big",
                          a, b, step);
        }
        for (i = 0; i < ax.n; i++) {
            size_t k = plot_tick_label(label, sizeof label, &ax, i);
            ck_assert(k > 0 && k < 16);
            ck_assert_int_eq(ax.mult[i] % ax.m, 0);
            if (i) {
                ck_assert_int_eq(ax.mult[i] - ax.mult[i - 1], ax.m);
                ck_assert_str_ne(label, prev);
            }
            if (abs(ax.exp10) <= 22) ck_assert_msg(strtod(label, NULL) == ax.v[i], "'%s' vs %.17g", label, ax.v[i]);
            ck_assert(strchr(label, ' ') == NULL);
            if (ax.mult[i] == 0) ck_assert_msg(label[0] != '-', "'%s'", label); /* never "-0" */
            memcpy(prev, label, sizeof prev);
        }
    }
}
END_TEST

/* ======================================================================== */
/* tables                                                                    */
/* ======================================================================== */

/* t from text (the name "f.tsv"); 0 or -1 with the message in e */
static int parse(plot_table *t, const char *text, dpo_err *e) {
    return plot_table_parse(t, "f.tsv", text, strlen(text), e);
}

/* text must be refused with a message holding want */
static void refused(const char *text, const char *want) {
    plot_table t;
    dpo_err e;
    ck_assert_msg(parse(&t, text, &e) == -1, "accepted: %s", text);
    ck_assert_msg(strstr(e.msg, want) != NULL, "'%s' lacks '%s'", e.msg, want);
    ck_assert_ptr_null(t.text);
}

START_TEST(test_table_reads) {
    plot_table t;
    dpo_err e;
    double v[3];
    /* \r\n lines, a blank line, no newline at the end */
    ck_assert_int_eq(parse(&t, "name\tx\ty\r\nA\t1\t-2.5\r\n\r\nB\t+.5\t3e2\nA\t1.\t-0", &e), 0);
    ck_assert_int_eq(t.n_cols, 3);
    ck_assert_int_eq(t.n_rows, 3);
    ck_assert_str_eq(t.names[2], "y");
    ck_assert_int_eq(t.line[0], 2);
    ck_assert_int_eq(t.line[1], 4);
    ck_assert_int_eq(t.line[2], 5);
    ck_assert_str_eq(t.cells[1 * 3 + 0], "B");
    ck_assert_int_eq(plot_table_column(&t, "y", &e), 2);
    ck_assert_int_eq(plot_table_numbers(&t, 1, v, &e), 0);
    ck_assert(v[0] == 1 && v[1] == 0.5 && v[2] == 1);
    ck_assert_int_eq(plot_table_numbers(&t, 2, v, &e), 0);
    ck_assert(v[0] == -2.5 && v[1] == 300 && v[2] == 0);
    ck_assert_int_eq(plot_table_numbers(&t, 0, v, &e), -1);
    ck_assert_str_eq(e.msg, "f.tsv: line 2, column 1 (\"name\"): \"A\" is not a number (a decimal number such as -1.5 "
                            "or 2e-3 is; nan and inf are refused)");
    ck_assert_int_eq(plot_table_column(&t, "z", &e), -1);
    ck_assert_str_eq(e.msg, "f.tsv: no column \"z\" (its columns: \"name\", \"x\", \"y\")");
    plot_table_free(&t);
    /* a header alone is an empty table */
    ck_assert_int_eq(parse(&t, "x\ty\n", &e), 0);
    ck_assert_int_eq(t.n_rows, 0);
    plot_table_free(&t);
}
END_TEST

START_TEST(test_table_refuses) {
    refused("", "f.tsv: empty: no header row");
    refused("\n\r\n\n", "f.tsv: empty: no header row");
    refused("x\ty\n1\t2\n3\n", "f.tsv: line 3: 1 cell, but the header (line 1) has 2 columns");
    refused("x\ty\n1\t2\t3\n", "f.tsv: line 2: 3 cells, but the header (line 1) has 2 columns");
    refused("\nx\ty\n1\t2\t\n", "f.tsv: line 3: 3 cells, but the header (line 2) has 2 columns");
    refused("x\t\n", "f.tsv: line 1, column 2: the header has an empty column name");
    refused("x\ty\tx\n", "f.tsv: line 1, column 3: the header repeats the name \"x\" of column 1");
    {
        plot_table t;
        dpo_err e;
        ck_assert_int_eq(plot_table_parse(&t, "f.tsv", "x\n1\n\0002\n", 7, &e), -1);
        ck_assert_str_eq(e.msg, "f.tsv: line 3: a NUL byte (a TSV file is text)");
    }
}
END_TEST

START_TEST(test_numbers_strict) {
    static const char *const bad[] = {"", " 1", "1 ", "nan", "NaN", "inf", "-inf", "Infinity", "0x10", "1e999", "-1e400",
                                      ".", "-", "+", "e5", "1e", "1e+", "1.2.3", "1,5", "--1", "1e5x", "\xef\xbc\x91"};
    static const struct {
        const char *s;
        double v;
    } good[] = {{"0", 0}, {"-0", 0}, {"1.5", 1.5}, {"+2", 2}, {".25", 0.25}, {"3.", 3}, {"1e3", 1000},
                {"-2.5E-2", -0.025}, {"1e-400", 0}, {"007", 7}, {"1e308", 1e308}};
    size_t i;
    double v;
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(plot_parse_number(bad[i], &v) == -1, "'%s' accepted", bad[i]);
    for (i = 0; i < sizeof good / sizeof good[0]; i++) {
        ck_assert_msg(plot_parse_number(good[i].s, &v) == 0, "'%s' refused", good[i].s);
        ck_assert_msg(v == good[i].v, "'%s' -> %g", good[i].s, v);
    }
}
END_TEST

START_TEST(test_table_cell_errors) {
    plot_table t;
    plot_data d;
    dpo_err e;
    ck_assert_int_eq(parse(&t, "m\tx\ty\nA\t1\t2\nA\t2\tnan\n", &e), 0);
    ck_assert_int_eq(plot_data_from_table(&d, &t, "x", "y", NULL, NULL, "m", &e), -1);
    ck_assert(strstr(e.msg, "f.tsv: line 3, column 3 (\"y\"): \"nan\" is not a number") == e.msg);
    ck_assert_ptr_null(d.series);
    ck_assert_int_eq(plot_data_from_table(&d, &t, "x", "w", NULL, NULL, "m", &e), -1);
    ck_assert_str_eq(e.msg, "f.tsv: no column \"w\" (its columns: \"m\", \"x\", \"y\")");
    ck_assert_int_eq(plot_data_from_table(&d, &t, "x", "y", NULL, NULL, "method", &e), -1);
    ck_assert(strstr(e.msg, "no column \"method\"") != NULL);
    plot_table_free(&t);

    ck_assert_int_eq(parse(&t, "x\ty\te\n1\t2\t0.1\n2\t3\t\n", &e), 0);
    ck_assert_int_eq(plot_data_from_table(&d, &t, "x", "y", NULL, "e", NULL, &e), -1);
    ck_assert_str_eq(e.msg, "f.tsv: line 3, column 3 (\"e\"): an empty cell is not a number");
    plot_table_free(&t);

    ck_assert_int_eq(parse(&t, "x\ty\te\n1\t2\t0.1\n2\t3\t-0.5\n", &e), 0);
    ck_assert_int_eq(plot_data_from_table(&d, &t, "x", "y", "e", NULL, NULL, &e), -1);
    ck_assert_str_eq(e.msg, "f.tsv: line 3, column 3 (\"e\"): an error bar's half-width must be >= 0, got -0.5");
    plot_table_free(&t);

    ck_assert_int_eq(parse(&t, "x\ty\n", &e), 0);
    ck_assert_int_eq(plot_data_from_table(&d, &t, "x", "y", NULL, NULL, NULL, &e), -1);
    ck_assert_str_eq(e.msg, "f.tsv: no rows under the header: nothing to draw");
    plot_table_free(&t);
}
END_TEST

START_TEST(test_series_grouping) {
    plot_table t;
    plot_data d;
    dpo_err e;
    ck_assert_int_eq(parse(&t, "m\tx\ty\tey\nB\t1\t10\t1\nA\t2\t20\t2\nB\t3\t30\t3\nC\t4\t40\t4\nA\t5\t50\t5\n", &e), 0);
    ck_assert_int_eq(plot_data_from_table(&d, &t, "x", "y", NULL, "ey", "m", &e), 0);
    ck_assert_int_eq(d.n_series, 3);
    ck_assert_str_eq(d.series[0].name, "B");
    ck_assert_str_eq(d.series[1].name, "A");
    ck_assert_str_eq(d.series[2].name, "C");
    ck_assert_int_eq(d.series[0].n, 2);
    ck_assert(d.series[0].x[0] == 1 && d.series[0].x[1] == 3 && d.series[0].y[1] == 30 && d.series[0].yerr[1] == 3);
    ck_assert(d.series[1].x[0] == 2 && d.series[1].x[1] == 5 && d.series[1].y[0] == 20 && d.series[1].yerr[1] == 5);
    ck_assert(d.series[2].n == 1 && d.series[2].y[0] == 40);
    ck_assert_ptr_null(d.series[0].xerr);
    plot_data_free(&d);
    /* no series column: one series named after y */
    ck_assert_int_eq(plot_data_from_table(&d, &t, "x", "y", NULL, NULL, NULL, &e), 0);
    ck_assert_int_eq(d.n_series, 1);
    ck_assert_str_eq(d.series[0].name, "y");
    ck_assert(d.series[0].n == 5 && d.series[0].y[4] == 50);
    plot_data_free(&d);
    plot_table_free(&t);
}
END_TEST

START_TEST(test_too_many_series) {
    svg_buf b;
    plot_table t;
    plot_data d;
    dpo_err e;
    int i;
    memset(&b, 0, sizeof b);
    SVG_LIT(&b, "s\tx\ty\n");
    for (i = 0; i <= PLOT_MAX_SERIES; i++) svg_printf(&b, "s%d\t%d\t1\n", i, i);
    ck_assert(!b.oom);
    ck_assert_int_eq(parse(&t, b.p, &e), 0);
    ck_assert_int_eq(plot_data_from_table(&d, &t, "x", "y", NULL, NULL, "s", &e), -1);
    ck_assert_msg(strstr(e.msg, "f.tsv: line 66: a series past the 64th") != NULL, "%s", e.msg);
    plot_table_free(&t);
    svg_buf_free(&b);
}
END_TEST

/* ======================================================================== */
/* SVG                                                                       */
/* ======================================================================== */

/* a chart drawn from the given series: the text, checked to be well-formed */
static char *draw(const plot_spec *s, size_t *len) {
    char *out = NULL;
    dpo_err e;
    ck_assert_msg(plot_svg(s, &out, len, &e) == 0, "%s", e.msg);
    ck_assert_uint_eq(strlen(out), *len);
    ck_assert(strncmp(out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg ", 44) == 0);
    ck_assert(*len > 7 && strcmp(out + *len - 7, "</svg>\n") == 0);
    testutil_check_xml(out, *len);
    return out;
}

START_TEST(test_svg_escapes) {
    static const double x[3] = {0, 1, 2}, y[3] = {1, 3, 2}, err[3] = {0.1, 0, 0.5};
    plot_series ser[3];
    plot_spec s;
    size_t len;
    char *out;
    memset(&s, 0, sizeof s);
    memset(ser, 0, sizeof ser);
    ser[0].name = "a < b & \"c\" 'd' >";
    ser[1].name = "bad \xff\xfe utf-8 \x01 control";
    ser[2].name = "a very long series name that goes on and on past forty characters";
    ser[0].n = ser[1].n = ser[2].n = 3;
    ser[0].x = ser[1].x = ser[2].x = x;
    ser[0].y = ser[1].y = ser[2].y = y;
    ser[1].yerr = err;
    ser[2].xerr = err;
    s.series = ser;
    s.n_series = 3;
    s.legend = 1;
    s.lines = 1;
    s.title = "<title> & \"quotes\"";
    s.xlabel = "KL(\xcf\x80 || \xcf\x80_ref) <nats>";
    s.ylabel = "reward & more";
    out = draw(&s, &len);
    ck_assert(strstr(out, ">a &lt; b &amp; &quot;c&quot; &apos;d&apos; &gt;</text>") != NULL);
    ck_assert(strstr(out, ">bad \xef\xbf\xbd\xef\xbf\xbd utf-8 \xef\xbf\xbd control</text>") != NULL);
    ck_assert(strstr(out, ">a very long series name that goes on and\xe2\x80\xa6</text>") != NULL);
    ck_assert(strstr(out, ">&lt;title&gt; &amp; &quot;quotes&quot;</text>") != NULL);
    ck_assert(strstr(out, ">KL(\xcf\x80 || \xcf\x80_ref) &lt;nats&gt;</text>") != NULL);
    ck_assert(strstr(out, "reward &amp; more</text>") != NULL);
    /* three markers, one legend entry each; a polyline per series; error bars */
    ck_assert(strstr(out, "<g id=\"plot-m2\"") != NULL && strstr(out, "<polyline") != NULL);
    ck_assert(strstr(out, "xlink:href=\"#plot-m1\"") != NULL);
    free(out);
}
END_TEST

/* spec s with the one series ser of n points (x, y), nothing else set */
static void one_series(plot_spec *s, plot_series *ser, int n, const double *x, const double *y) {
    memset(s, 0, sizeof *s);
    memset(ser, 0, sizeof *ser);
    ser->name = "one";
    ser->n = n;
    ser->x = x;
    ser->y = y;
    s->series = ser;
    s->n_series = 1;
}

/* the %.2f pixel position of (x, y) in frame f, by the formula of plot.h */
static void expect_at(const char *out, const plot_frame *f, double x, double y) {
    char want[96];
    double px = f->x0 + (x - f->x.lo) / (f->x.hi - f->x.lo) * (f->x1 - f->x0);
    double py = f->y1 - (y - f->y.lo) / (f->y.hi - f->y.lo) * (f->y1 - f->y0);
    ck_assert(px >= f->x0 && px <= f->x1 && py >= f->y0 && py <= f->y1);
    snprintf(want, sizeof want, "x=\"%.2f\" y=\"%.2f\"><title>", px, py);
    ck_assert_msg(strstr(out, want) != NULL, "no marker at %s", want);
}

START_TEST(test_svg_positions) {
    static const double x[4] = {2.5, 0, 10, 7.5}, y[4] = {0.25, 0, 1, 0.5};
    plot_series ser;
    plot_spec s;
    plot_frame f;
    dpo_err e;
    size_t len;
    char *out;
    one_series(&s, &ser, 4, x, y);
    /* the data's axes: x 0..10 (step 2), y 0..1 (step 0.2) */
    ck_assert_int_eq(plot_frame_make(&f, &s, &e), 0);
    ck_assert(f.x.lo == 0 && f.x.hi == 10 && f.y.lo == 0 && f.y.hi == 1);
    ck_assert(f.x1 - f.x0 == 560 && f.y1 - f.y0 == 380 && f.lw == 0);
    out = draw(&s, &len);
    expect_at(out, &f, 2.5, 0.25);
    expect_at(out, &f, 0, 0);
    expect_at(out, &f, 10, 1);
    /* 2.5 of 0..10 and 0.25 of 0..1: a quarter along each axis */
    {
        char want[64];
        snprintf(want, sizeof want, "x=\"%.2f\" y=\"%.2f\"", f.x0 + 140.0, f.y1 - 95.0);
        ck_assert(strstr(out, want) != NULL);
    }
    ck_assert(strstr(out, ">0.0</text>") != NULL && strstr(out, ">0.2</text>") != NULL);
    ck_assert(strstr(out, ">1.0</text>") != NULL && strstr(out, ">10</text>") != NULL);
    ck_assert(strstr(out, "00000") == NULL); /* no float noise anywhere */
    free(out);
    /* fixed ends: the axes as given, the point where they put it */
    s.has_xmin = s.has_xmax = s.has_ymin = s.has_ymax = 1;
    s.xmin = -5;
    s.xmax = 15;
    s.ymin = -1;
    s.ymax = 3;
    ck_assert_int_eq(plot_frame_make(&f, &s, &e), 0);
    ck_assert(f.x.lo == -5 && f.x.hi == 15 && f.y.lo == -1 && f.y.hi == 3);
    out = draw(&s, &len);
    expect_at(out, &f, 7.5, 0.5);
    free(out);
}
END_TEST

START_TEST(test_svg_refuses) {
    static const double x[2] = {0, 1}, y[2] = {1, NAN}, neg[2] = {0.1, -1};
    plot_series ser;
    plot_spec s;
    dpo_err e;
    size_t len;
    char *out = NULL;
    one_series(&s, &ser, 2, x, y);
    ck_assert_int_eq(plot_svg(&s, &out, &len, &e), -1);
    ck_assert_ptr_null(out);
    ck_assert(strstr(e.msg, "not finite") != NULL);
    ser.y = x;
    ser.yerr = neg;
    ck_assert_int_eq(plot_svg(&s, &out, &len, &e), -1);
    ck_assert(strstr(e.msg, "error bar") != NULL);
    ser.yerr = NULL;
    ser.n = 0;
    ck_assert_int_eq(plot_svg(&s, &out, &len, &e), -1);
    ck_assert_str_eq(e.msg, "no points to draw");
    ser.n = 2;
    s.has_xmin = s.has_xmax = 1;
    s.xmin = 1;
    s.xmax = 1;
    ck_assert_int_eq(plot_svg(&s, &out, &len, &e), -1);
    ck_assert(strstr(e.msg, "the x axis") != NULL);
}
END_TEST

/* one point, and every point beyond a single fixed end: still a drawable axis */
START_TEST(test_svg_single_point) {
    static const double x[1] = {3}, y[1] = {-2};
    plot_series ser;
    plot_spec s;
    plot_frame f;
    dpo_err e;
    size_t len;
    char *out;
    one_series(&s, &ser, 1, x, y);
    ck_assert_int_eq(plot_frame_make(&f, &s, &e), 0);
    /* 3 widened to [2.7, 3.3]: step 0.1 (7 ticks); -2 to [-2.2, -1.8]: step 0.05 (9 ticks) */
    ck_assert(f.x.n == 7 && f.x.m == 1 && f.x.exp10 == -1);
    ck_assert(f.y.n == 9 && f.y.m == 5 && f.y.exp10 == -2);
    out = draw(&s, &len);
    expect_at(out, &f, 3, -2);
    free(out);
    s.has_ymin = 1; /* the only point below the fixed start 0: the axis is 0 widened upwards, [0, 1] */
    ck_assert_int_eq(plot_frame_make(&f, &s, &e), 0);
    ck_assert(f.y.lo == 0 && f.y.hi == 1 && f.y.n == 6);
}
END_TEST

/* svgbuf: printf of any length, and oom stops the buffer */
START_TEST(test_svgbuf) {
    svg_buf b;
    char big[3000];
    memset(&b, 0, sizeof b);
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    svg_printf(&b, "<%s>", big);
    ck_assert_uint_eq(b.n, 3001);
    ck_assert(b.p[0] == '<' && b.p[3000] == '>' && b.p[3001] == '\0');
    svg_buf_free(&b);
    svg_xml(&b, "\xc3\xa9<\xe2\x82", 5); /* e-acute, <, a cut 3-byte sequence (one byte each) */
    ck_assert_str_eq(b.p, "\xc3\xa9&lt;\xef\xbf\xbd\xef\xbf\xbd");
    ck_assert_uint_eq(svg_chars("\xc3\xa9<\xe2\x82", 5), 4);
    ck_assert_uint_eq(svg_prefix_bytes("\xc3\xa9<\xe2\x82", 5, 1), 2);
    b.oom = 1;
    SVG_LIT(&b, "more");
    ck_assert_str_eq(b.p, "\xc3\xa9&lt;\xef\xbf\xbd\xef\xbf\xbd");
    svg_buf_free(&b);
}
END_TEST

static Suite *plot_suite(void) {
    Suite *s = suite_create("plot");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_ticks_by_hand);
    tcase_add_test(tc, test_ticks_refused);
    tcase_add_test(tc, test_ticks_random);
    tcase_add_test(tc, test_table_reads);
    tcase_add_test(tc, test_table_refuses);
    tcase_add_test(tc, test_numbers_strict);
    tcase_add_test(tc, test_table_cell_errors);
    tcase_add_test(tc, test_series_grouping);
    tcase_add_test(tc, test_too_many_series);
    tcase_add_test(tc, test_svg_escapes);
    tcase_add_test(tc, test_svg_positions);
    tcase_add_test(tc, test_svg_refuses);
    tcase_add_test(tc, test_svg_single_point);
    tcase_add_test(tc, test_svgbuf);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    return testutil_run(plot_suite());
}
