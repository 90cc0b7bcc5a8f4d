/* plot.c - owns `dpo plot`'s library: the strict reader of tab-separated
 * tables (a header of column names, numeric cells parsed strictly), the series
 * a chart draws from a table's columns, the "nice" ticks of an axis (steps of
 * 1, 2 or 5 times a power of ten, labels written from integers), and the chart
 * itself (grid, axes, error bars, lines, markers, legend) as an SVG document
 * in memory.
 * It must never print, open a file or touch the network (cmd_plot.c reads the
 * table and writes the picture), never accept a number that is not finite or
 * a cell it cannot parse as one, and never put text into the SVG other than
 * through svg_xml (escaped, valid UTF-8). */
#include "plot.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "svgbuf.h"

/* ======================================================================== */
/* tables                                                                    */
/* ======================================================================== */

void plot_table_free(plot_table *t) {
    free(t->names);
    free(t->cells);
    free(t->line);
    free(t->text);
    memset(t, 0, sizeof *t);
}

/* The line that starts at *pos in s[0..len): its bytes [*start, *end) without
 * the "\n" or "\r\n" that ends it; *pos moves past it. 0 at the end of s. */
static int next_line(const char *s, size_t len, size_t *pos, size_t *start, size_t *end) {
    const char *nl;
    if (*pos >= len) return 0;
    *start = *pos;
    nl = memchr(s + *pos, '\n', len - *pos);
    *end = nl ? (size_t)(nl - s) : len;
    *pos = nl ? *end + 1 : len;
    if (*end > *start && s[*end - 1] == '\r') (*end)--;
    return 1;
}

/* cells (tabs + 1) of s[start..end) */
static long count_cells(const char *s, size_t start, size_t end) {
    long n = 1;
    size_t i;
    for (i = start; i < end; i++)
        if (s[i] == '\t') n++;
    return n;
}

/* Cut line [start, end) of t->text into cells: NULs for its tabs and end;
 * the cells' starts into cell[0..). */
static void cut_cells(char *text, size_t start, size_t end, char **cell) {
    size_t i;
    int c = 0;
    cell[c++] = text + start;
    for (i = start; i < end; i++)
        if (text[i] == '\t') {
            text[i] = '\0';
            cell[c++] = text + i + 1;
        }
    text[end] = '\0';
}

/* The header's names: none empty, none repeated. */
static int check_header(const plot_table *t, long header_line, dpo_err *e) {
    int i, j;
    for (i = 0; i < t->n_cols; i++) {
        /* NOLINTNEXTLINE(clang-analyzer-core.NullDereference): pass 1 counted the n_cols names that pass 2's cut_cells sets */
        if (!t->names[i][0])
            return dpo_errf(e, "%s: line %ld, column %d: the header has an empty column name", t->name, header_line,
                            i + 1);
        for (j = 0; j < i; j++)
            if (strcmp(t->names[i], t->names[j]) == 0)
                return dpo_errf(e, "%s: line %ld, column %d: the header repeats the name \"%.100s\" of column %d", t->name,
                                header_line, i + 1, t->names[i], j + 1);
    }
    return 0;
}

/* Pass 1: the header's columns and the rows; every row as wide as the header. */
static int scan_table(plot_table *t, const char *s, size_t len, long *header_line, dpo_err *e) {
    size_t pos = 0, start, end;
    long lineno = 0, rows = 0;
    const char *nul = memchr(s, '\0', len);
    if (nul) {
        long l = 1;
        const char *q;
        for (q = s; q < nul; q++)
            if (*q == '\n') l++;
        return dpo_errf(e, "%s: line %ld: a NUL byte (a TSV file is text)", t->name, l);
    }
    *header_line = 0;
    while (next_line(s, len, &pos, &start, &end)) {
        long cells;
        lineno++;
        if (end == start) continue; /* a blank line */
        cells = count_cells(s, start, end);
        if (!*header_line) {
            if (cells > 100000) return dpo_errf(e, "%s: line %ld: %ld columns, more than 100000", t->name, lineno, cells);
            *header_line = lineno;
            t->n_cols = (int)cells;
            continue;
        }
        if (cells != t->n_cols)
            return dpo_errf(e, "%s: line %ld: %ld cell%s, but the header (line %ld) has %d column%s (cells are separated "
                               "by one tab)",
                            t->name, lineno, cells, cells == 1 ? "" : "s", *header_line, t->n_cols,
                            t->n_cols == 1 ? "" : "s");
        if (++rows > 100000000) return dpo_errf(e, "%s: more than 100000000 rows", t->name);
    }
    if (!*header_line)
        return dpo_errf(e, "%s: empty: no header row (a TSV table starts with a line of column names)", t->name);
    t->n_rows = (int)rows;
    return 0;
}

int plot_table_parse(plot_table *t, const char *name, const char *data, size_t len, dpo_err *e) {
    size_t pos = 0, start, end, n_cells, bytes, row = 0;
    long lineno = 0, header_line = 0;

    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    if (scan_table(t, data, len, &header_line, e) != 0) goto fail;
    if (util_mul_size((size_t)t->n_rows, (size_t)t->n_cols, &n_cells) != 0 ||
        util_mul_size(n_cells, sizeof *t->cells, &bytes) != 0 || len == (size_t)-1) {
        dpo_errf(e, "%s: the table is too large", t->name);
        goto fail;
    }
    t->text = malloc(len + 1);
    t->names = malloc((size_t)t->n_cols * sizeof *t->names);
    t->cells = malloc(bytes ? bytes : 1);
    t->line = malloc(((size_t)t->n_rows + 1) * sizeof *t->line);
    if (!t->text || !t->names || !t->cells || !t->line) {
        dpo_err_oom(e, "the table",
                    len + 1 + (size_t)t->n_cols * sizeof *t->names + (bytes ? bytes : 1) +
                        ((size_t)t->n_rows + 1) * sizeof *t->line,
                    1);
        dpo_err_prefix(e, "%s", t->name);
        goto fail;
    }
    memcpy(t->text, data, len);
    t->text[len] = '\0';
    /* pass 2: the header's names and the rows' cells, cut apart in place */
    while (next_line(t->text, len, &pos, &start, &end)) {
        lineno++;
        if (end == start) continue;
        if (lineno == header_line) {
            cut_cells(t->text, start, end, t->names);
            continue;
        }
        t->line[row] = lineno;
        cut_cells(t->text, start, end, t->cells + row * (size_t)t->n_cols);
        row++;
    }
    if (check_header(t, header_line, e) != 0) goto fail;
    return 0;
fail:
    plot_table_free(t);
    return -1;
}

int plot_table_column(const plot_table *t, const char *name, dpo_err *e) {
    char list[640];
    size_t n = 0;
    int i;
    for (i = 0; i < t->n_cols; i++)
        if (strcmp(t->names[i], name) == 0) return i;
    list[0] = '\0';
    for (i = 0; i < t->n_cols && n < sizeof list; i++) {
        int k = snprintf(list + n, sizeof list - n, "%s\"%s\"", i ? ", " : "", t->names[i]);
        if (k < 0 || (size_t)k >= sizeof list - n) {
            snprintf(list + n, sizeof list - n, ", ...");
            break;
        }
        n += (size_t)k;
    }
    dpo_errf(e, "%s: no column \"%.100s\" (its columns: %s)", t->name, name, list);
    return -1;
}

static int is_digit(char c) {
    return c >= '0' && c <= '9';
}

int plot_parse_number(const char *s, double *out) {
    const char *p = s;
    char *end;
    double v;
    int digits = 0;
    if (*p == '+' || *p == '-') p++;
    for (; is_digit(*p); p++) digits++;
    if (*p == '.')
        for (p++; is_digit(*p); p++) digits++;
    if (!digits) return -1;
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '+' || *p == '-') p++;
        if (!is_digit(*p)) return -1;
        while (is_digit(*p)) p++;
    }
    if (*p) return -1;
    /* the syntax is a subset of strtod's (the "C" locale: dpo never calls setlocale) */
    v = strtod(s, &end);
    if (end != p || !isfinite(v)) return -1;
    *out = v;
    return 0;
}

int plot_table_numbers(const plot_table *t, int col, double *out, dpo_err *e) {
    int r;
    for (r = 0; r < t->n_rows; r++) {
        const char *c = t->cells[(size_t)r * (size_t)t->n_cols + (size_t)col];
        if (plot_parse_number(c, &out[r]) == 0) continue;
        if (!c[0])
            return dpo_errf(e, "%s: line %ld, column %d (\"%.100s\"): an empty cell is not a number", t->name,
                            t->line[r], col + 1, t->names[col]);
        return dpo_errf(e, "%s: line %ld, column %d (\"%.100s\"): \"%.40s\" is not a number (a decimal number such as "
                           "-1.5 or 2e-3 is; nan and inf are refused)",
                        t->name, t->line[r], col + 1, t->names[col], c);
    }
    return 0;
}

/* ======================================================================== */
/* series from a table                                                       */
/* ======================================================================== */

void plot_data_free(plot_data *d) {
    free(d->series);
    free(d->num);
    memset(d, 0, sizeof *d);
}

/* Half-widths of error bars are >= 0. */
static int check_errors(const plot_table *t, int col, const double *v, dpo_err *e) {
    int r;
    for (r = 0; r < t->n_rows; r++)
        if (v[r] < 0.0)
            return dpo_errf(e, "%s: line %ld, column %d (\"%.100s\"): an error bar's half-width must be >= 0, got %g",
                            t->name, t->line[r], col + 1, t->names[col], v[r]);
    return 0;
}

int plot_data_from_table(plot_data *d, const plot_table *t, const char *x, const char *y, const char *xerr,
                         const char *yerr, const char *series, dpo_err *e) {
    const char *names[4];
    int col[4], sid = -1, k, r, s;
    size_t n = (size_t)t->n_rows, total;
    double *raw = NULL;   /* (4, n_rows) the columns as the file orders the rows */
    int *of = NULL;       /* (n_rows) each row's series */
    int *count = NULL;    /* (PLOT_MAX_SERIES) */

    memset(d, 0, sizeof *d);
    names[0] = x;
    names[1] = y;
    names[2] = xerr;
    names[3] = yerr;
    for (k = 0; k < 4; k++) col[k] = names[k] ? plot_table_column(t, names[k], e) : -1;
    for (k = 0; k < 4; k++)
        if (names[k] && col[k] < 0) return -1;
    if (series && (sid = plot_table_column(t, series, e)) < 0) return -1;
    if (t->n_rows == 0) return dpo_errf(e, "%s: no rows under the header: nothing to draw", t->name);
    if (util_mul_size(n, 8, &total) != 0 || util_mul_size(total, sizeof(double), &total) != 0)
        return dpo_errf(e, "%s: the table is too large", t->name);
    raw = malloc(total / 2);
    d->num = malloc(total / 2);
    of = malloc(n * sizeof *of);
    count = calloc(PLOT_MAX_SERIES, sizeof *count);
    d->series = calloc(PLOT_MAX_SERIES, sizeof *d->series);
    if (!raw || !d->num || !of || !count || !d->series) {
        dpo_err_oom(e, "the plot's data",
                    total + n * sizeof *of + PLOT_MAX_SERIES * (sizeof *count + sizeof *d->series), 1);
        dpo_err_prefix(e, "%s", t->name);
        goto fail;
    }
    for (k = 0; k < 4; k++)
        if (col[k] >= 0 && (plot_table_numbers(t, col[k], raw + (size_t)k * n, e) != 0 ||
                            (k >= 2 && check_errors(t, col[k], raw + (size_t)k * n, e) != 0)))
            goto fail;
    /* each row's series: the series column's text, in order of first appearance */
    for (r = 0; r < t->n_rows; r++) {
        const char *label = sid >= 0 ? t->cells[(size_t)r * (size_t)t->n_cols + (size_t)sid] : t->names[col[1]];
        for (s = 0; s < d->n_series && strcmp(d->series[s].name, label) != 0; s++) continue;
        if (s == d->n_series) {
            if (s == PLOT_MAX_SERIES) {
                dpo_errf(e, "%s: line %ld: a series past the %dth in column \"%.100s\" (at most %d)", t->name,
                         t->line[r], PLOT_MAX_SERIES, series, PLOT_MAX_SERIES);
                goto fail;
            }
            d->series[s].name = label;
            d->n_series++;
        }
        of[r] = s;
        count[s]++;
    }
    /* each series' values contiguous: column k of series s at num + k n + (its first slot) */
    {
        size_t at = 0;
        for (s = 0; s < d->n_series; s++) {
            plot_series *p = &d->series[s];
            p->n = 0;
            p->x = d->num + at;
            p->y = d->num + n + at;
            p->xerr = col[2] >= 0 ? d->num + 2 * n + at : NULL;
            p->yerr = col[3] >= 0 ? d->num + 3 * n + at : NULL;
            at += (size_t)count[s];
        }
        for (r = 0; r < t->n_rows; r++) {
            plot_series *p = &d->series[of[r]];
            size_t dst = (size_t)(p->x - d->num) + (size_t)p->n;
            for (k = 0; k < 4; k++) d->num[(size_t)k * n + dst] = col[k] >= 0 ? raw[(size_t)k * n + (size_t)r] : 0.0;
            p->n++;
        }
    }
    free(raw);
    free(of);
    free(count);
    return 0;
fail:
    free(raw);
    free(of);
    free(count);
    plot_data_free(d);
    return -1;
}

/* ======================================================================== */
/* ticks                                                                     */
/* ======================================================================== */

/* 10^k: exact for |k| <= 22 (powers of ten up to 10^22 are doubles), so that
 * mult / 10^-k is the double nearest the decimal mult 10^k */
static double pow10i(int k) {
    double p = 1.0;
    int i, a = k < 0 ? -k : k;
    if (a > 22) return pow(10.0, (double)k);
    for (i = 0; i < a; i++) p *= 10.0;
    return k < 0 ? 1.0 / p : p;
}

/* mult 10^k as the nearest double (for |k| <= 22) */
static double scaled(long long mult, int k) {
    return k < 0 ? (double)mult / pow10i(-k) : (double)mult * pow10i(k);
}

/* floor and ceiling of q, forgiving the few ulps a division q = v / step is off */
static double floor_tol(double q) {
    double tol = fmax(1e-9, 8.0 * DBL_EPSILON * fabs(q));
    return floor(q + tol);
}

static double ceil_tol(double q) {
    double tol = fmax(1e-9, 8.0 * DBL_EPSILON * fabs(q));
    return ceil(q - tol);
}

int plot_axis_make(plot_axis *ax, double a, double b, int fix_lo, int fix_hi, dpo_err *e) {
    static const int ms[3] = {1, 2, 5};
    double size;
    int k, k0, i;

    memset(ax, 0, sizeof *ax);
    if (!isfinite(a) || !isfinite(b) || a > b) return dpo_errf(e, "the axis range [%g, %g] is not a range", a, b);
    if (fabs(a) > 1e300 || fabs(b) > 1e300) return dpo_errf(e, "values beyond +-1e300 cannot be drawn (%g, %g)", a, b);
    size = fmax(fabs(a), fabs(b));
    if (b - a <= 1e-9 * size) { /* one value, or as good as one for doubles: widened */
        double c = fix_lo ? a : fix_hi ? b : a + (b - a) / 2, h = c == 0.0 ? 1.0 : fabs(c) / 10;
        if (fix_lo && fix_hi)
            return dpo_errf(e, "the axis range [%.17g, %.17g] is too narrow to draw", a, b);
        a = fix_lo ? a : c - h;
        b = fix_hi ? b : c + h;
    }
    /* the smallest step m 10^k that gives at most PLOT_MAX_TICKS ticks; 10^k0 is at
     * most (b - a) / 100, whose ticks are far too many, so the search starts below it */
    k0 = (int)floor(log10(b - a)) - 2;
    for (k = k0; k < k0 + 6; k++) {
        for (i = 0; i < 3; i++) {
            double step = scaled(ms[i], k);
            double qlo = fix_lo ? ceil_tol(a / step) : floor_tol(a / step);
            double qhi = fix_hi ? floor_tol(b / step) : ceil_tol(b / step);
            int j;
            if (qhi - qlo + 1 > PLOT_MAX_TICKS) continue;
            if (k < -300 || k > 300 || fabs(qlo) > 1e15 || fabs(qhi) > 1e15)
                return dpo_errf(e, "the axis range [%g, %g] cannot be drawn (its ticks would be 1e%d apart)", a, b, k);
            ax->m = ms[i];
            ax->exp10 = k;
            ax->step = step;
            ax->n = (int)(qhi - qlo) + 1;
            for (j = 0; j < ax->n; j++) {
                ax->mult[j] = ((long long)qlo + j) * ms[i];
                ax->v[j] = scaled(ax->mult[j], k);
            }
            ax->lo = fix_lo || ax->n == 0 ? a : ax->v[0];
            ax->hi = fix_hi || ax->n == 0 ? b : ax->v[ax->n - 1];
            return 0;
        }
    }
    return dpo_errf(e, "the axis range [%g, %g]: no tick step found", a, b); /* not reached */
}

/* digits of |v| (1 for 0) */
static int n_digits(long long v) {
    int n = 1;
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    while (u >= 10) {
        u /= 10;
        n++;
    }
    return n;
}

/* fixed notation when every tick is below 10^6 in size and the step at least 10^-5 */
static int axis_fixed(const plot_axis *ax) {
    int i;
    if (ax->exp10 < -5) return 0;
    for (i = 0; i < ax->n; i++)
        if (ax->mult[i] != 0 && n_digits(ax->mult[i]) + ax->exp10 > 6) return 0;
    return 1;
}

size_t plot_tick_label(char *out, size_t cap, const plot_axis *ax, int i) {
    char d[32];
    long long K = ax->mult[i];
    unsigned long long u = K < 0 ? 0ULL - (unsigned long long)K : (unsigned long long)K;
    int e = ax->exp10, L, k;
    const char *sign = K < 0 ? "-" : "";
    if (axis_fixed(ax)) {
        if (e >= 0) { /* K followed by e zeros */
            k = snprintf(out, cap, "%s%llu%.*s", u ? sign : "", u, u ? e : 0, "000000");
        } else { /* K with the point -e digits from the right, a 0 before it when needed */
            L = snprintf(d, sizeof d, "%0*llu", -e + 1, u);
            k = snprintf(out, cap, "%s%.*s.%s", sign, L + e, d, d + L + e);
        }
    } else if (u == 0) {
        k = snprintf(out, cap, "0");
    } else { /* the shortest scientific form: the digits without trailing zeros, d.ddd e E */
        while (u % 10 == 0) {
            u /= 10;
            e++;
        }
        L = snprintf(d, sizeof d, "%llu", u);
        k = snprintf(out, cap, "%s%c%s%s" "e%d", sign, d[0], L > 1 ? "." : "", d + 1, e + L - 1);
    }
    return k < 0 ? 0 : (size_t)k < cap ? (size_t)k : cap ? cap - 1 : 0;
}

/* ======================================================================== */
/* the frame: axes and layout                                                */
/* ======================================================================== */

/* The layout, in pixels: a sans-serif font whose characters are taken to be
 * at most 0.6 em wide on average (room for labels is reserved by that). */
#define FONT 13.0
#define CHAR_W (0.6 * FONT)
#define TITLE_FONT 16.0
#define PAD 16.0          /* the picture's edge */
#define AREA_W 560.0      /* the plot area */
#define AREA_H 380.0
#define TICK_LEN 5.0
#define LEGEND_CHARS 40   /* a longer series name is cut, with an ellipsis */
#define LEGEND_ROW 20.0
#define MARK 4.5          /* a marker's half-size */
#define ELLIPSIS "\xe2\x80\xa6"

/* the data's extent along one axis: values v[i] -+ err[i] of every series */
static void extent(const plot_spec *s, int axis_y, double *lo, double *hi) {
    int i, j;
    *lo = INFINITY;
    *hi = -INFINITY;
    for (i = 0; i < s->n_series; i++) {
        const plot_series *p = &s->series[i];
        const double *v = axis_y ? p->y : p->x, *err = axis_y ? p->yerr : p->xerr;
        for (j = 0; j < p->n; j++) {
            double d = err ? err[j] : 0.0;
            *lo = fmin(*lo, v[j] - d);
            *hi = fmax(*hi, v[j] + d);
        }
    }
}

/* every value finite, every error half-width finite and >= 0 */
static int check_values(const plot_spec *s, dpo_err *e) {
    int i, j, points = 0;
    for (i = 0; i < s->n_series; i++) {
        const plot_series *p = &s->series[i];
        points += p->n;
        for (j = 0; j < p->n; j++) {
            if (!isfinite(p->x[j]) || !isfinite(p->y[j]))
                return dpo_errf(e, "series %d, point %d: a value that is not finite", i + 1, j + 1);
            if ((p->xerr && !(p->xerr[j] >= 0.0 && isfinite(p->xerr[j]))) ||
                (p->yerr && !(p->yerr[j] >= 0.0 && isfinite(p->yerr[j]))))
                return dpo_errf(e, "series %d, point %d: an error bar that is negative or not finite", i + 1, j + 1);
        }
    }
    if (points == 0) return dpo_errf(e, "no points to draw");
    return 0;
}

/* One axis from the data's extent [dlo, dhi] and the fixed ends. */
static int make_axis(plot_axis *ax, double dlo, double dhi, int has_lo, double lo, int has_hi, double hi, char which,
                     dpo_err *e) {
    double a = has_lo ? lo : dlo, b = has_hi ? hi : dhi;
    if (has_lo && has_hi && !(lo < hi))
        return dpo_errf(e, "the %c axis: its minimum %g must be below its maximum %g", which, lo, hi);
    if (a > b) { /* every value beyond the one fixed end: the axis starts (or ends) there */
        if (has_lo) b = a;
        else a = b;
    }
    if (plot_axis_make(ax, a, b, has_lo, has_hi, e) != 0) return dpo_err_prefix(e, "the %c axis", which);
    return 0;
}

/* widest tick label of an axis, in characters */
static size_t widest_label(const plot_axis *ax) {
    char buf[32];
    size_t w = 0, k;
    int i;
    for (i = 0; i < ax->n; i++)
        if ((k = plot_tick_label(buf, sizeof buf, ax, i)) > w) w = k;
    return w;
}

static int has_text(const char *s) {
    return s && s[0];
}

int plot_frame_make(plot_frame *f, const plot_spec *s, dpo_err *e) {
    double dlo, dhi, left, top, bottom;
    int i;
    memset(f, 0, sizeof *f);
    if (check_values(s, e) != 0) return -1;
    extent(s, 0, &dlo, &dhi);
    if (make_axis(&f->x, dlo, dhi, s->has_xmin, s->xmin, s->has_xmax, s->xmax, 'x', e) != 0) return -1;
    extent(s, 1, &dlo, &dhi);
    if (make_axis(&f->y, dlo, dhi, s->has_ymin, s->ymin, s->has_ymax, s->ymax, 'y', e) != 0) return -1;
    top = PAD + (has_text(s->title) ? TITLE_FONT + 14.0 : 4.0);
    left = PAD + (has_text(s->ylabel) ? FONT + 10.0 : 0.0) + (double)widest_label(&f->y) * CHAR_W + TICK_LEN + 6.0;
    bottom = TICK_LEN + 6.0 + FONT + (has_text(s->xlabel) ? FONT + 14.0 : 0.0) + PAD;
    f->x0 = left;
    f->x1 = left + AREA_W;
    f->y0 = top;
    f->y1 = top + AREA_H;
    f->width = f->x1 + PAD;
    f->height = f->y1 + bottom;
    if (s->legend) {
        size_t w = 0;
        for (i = 0; i < s->n_series; i++) {
            const char *n = s->series[i].name ? s->series[i].name : "";
            size_t c = svg_chars(n, strlen(n));
            if (c > w) w = c;
        }
        if (w > LEGEND_CHARS) w = LEGEND_CHARS + 1;
        f->lx = f->x1 + 20.0;
        f->ly = f->y0;
        f->lw = 10.0 + 28.0 + 8.0 + (double)w * CHAR_W + 10.0;
        f->lh = 8.0 + LEGEND_ROW * s->n_series + 4.0;
        f->width = f->lx + f->lw + PAD;
        if (f->ly + f->lh + PAD > f->height) f->height = f->ly + f->lh + PAD;
    }
    return 0;
}

/* a value's place along the plot area */
static double px_of(const plot_frame *f, double v) {
    return f->x0 + (v - f->x.lo) / (f->x.hi - f->x.lo) * (f->x1 - f->x0);
}

static double py_of(const plot_frame *f, double v) {
    return f->y1 - (v - f->y.lo) / (f->y.hi - f->y.lo) * (f->y1 - f->y0);
}

/* ======================================================================== */
/* the SVG                                                                   */
/* ======================================================================== */

/* Okabe and Ito's palette (blue, vermillion, bluish green, reddish purple,
 * orange, sky blue, black, yellow), told apart with any colour vision */
const char *plot_colour(int i) {
    static const char *const c[PLOT_N_COLOURS] = {"#0072b2", "#d55e00", "#009e73", "#cc79a7",
                                                  "#e69f00", "#56b4e9", "#000000", "#f0e442"};
    return c[(i % PLOT_N_COLOURS + PLOT_N_COLOURS) % PLOT_N_COLOURS];
}

/* A pixel coordinate, bounded: a value far outside fixed axis ends is clipped
 * from sight anyway, and must not print as hundreds of digits. */
static double bound_px(double p) {
    return p > 1e7 ? 1e7 : p < -1e7 ? -1e7 : p;
}

/* series i's marker, centred on (0, 0), as a definition <use> refers to */
static void marker_def(svg_buf *b, int i) {
    static const char *const shape[PLOT_N_MARKERS] = {
        "<circle r=\"4.5\"/>",
        "<rect x=\"-4\" y=\"-4\" width=\"8\" height=\"8\"/>",
        "<path d=\"M0,-5.2L4.6,3.2L-4.6,3.2Z\"/>",
        "<path d=\"M0,-5.5L5.5,0L0,5.5L-5.5,0Z\"/>",
        "<path d=\"M0,5.2L4.6,-3.2L-4.6,-3.2Z\"/>",
        "<path d=\"M-5,0H5M0,-5V5\"/>",
        "<path d=\"M-4,-4L4,4M-4,4L4,-4\"/>",
    };
    int m = i % PLOT_N_MARKERS;
    if (m >= 5) /* plus and cross: strokes */
        svg_printf(b, "<g id=\"plot-m%d\" fill=\"none\" stroke=\"%s\" stroke-width=\"2.2\">%s</g>\n", i, plot_colour(i),
                   shape[m]);
    else
        svg_printf(b, "<g id=\"plot-m%d\" fill=\"%s\" stroke=\"#333333\" stroke-width=\"0.7\">%s</g>\n", i,
                   plot_colour(i), shape[m]);
}

/* grid lines and the plot area's frame */
static void draw_grid(svg_buf *b, const plot_frame *f) {
    int i;
    SVG_LIT(b, "<g stroke=\"#e3e3e3\" stroke-width=\"1\">\n");
    for (i = 0; i < f->x.n; i++)
        svg_printf(b, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\"/>\n", px_of(f, f->x.v[i]), f->y0,
                   px_of(f, f->x.v[i]), f->y1);
    for (i = 0; i < f->y.n; i++)
        svg_printf(b, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\"/>\n", f->x0, py_of(f, f->y.v[i]), f->x1,
                   py_of(f, f->y.v[i]));
    SVG_LIT(b, "</g>\n");
    svg_printf(b, "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" fill=\"none\" stroke=\"#333333\"/>\n",
               f->x0, f->y0, f->x1 - f->x0, f->y1 - f->y0);
}

/* tick marks and labels of both axes, the axis labels and the title */
static void draw_axes(svg_buf *b, const plot_frame *f, const plot_spec *s) {
    char label[32];
    int i;
    size_t k;
    SVG_LIT(b, "<g stroke=\"#333333\" stroke-width=\"1\">\n");
    for (i = 0; i < f->x.n; i++)
        svg_printf(b, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\"/>\n", px_of(f, f->x.v[i]), f->y1,
                   px_of(f, f->x.v[i]), f->y1 + TICK_LEN);
    for (i = 0; i < f->y.n; i++)
        svg_printf(b, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\"/>\n", f->x0 - TICK_LEN,
                   py_of(f, f->y.v[i]), f->x0, py_of(f, f->y.v[i]));
    SVG_LIT(b, "</g>\n<g fill=\"#222222\">\n");
    for (i = 0; i < f->x.n; i++) {
        k = plot_tick_label(label, sizeof label, &f->x, i);
        svg_printf(b, "<text x=\"%.2f\" y=\"%.2f\" text-anchor=\"middle\">", px_of(f, f->x.v[i]),
                   f->y1 + TICK_LEN + 4.0 + FONT);
        svg_xml(b, label, k);
        SVG_LIT(b, "</text>\n");
    }
    for (i = 0; i < f->y.n; i++) {
        k = plot_tick_label(label, sizeof label, &f->y, i);
        svg_printf(b, "<text x=\"%.2f\" y=\"%.2f\" text-anchor=\"end\">", f->x0 - TICK_LEN - 4.0,
                   py_of(f, f->y.v[i]) + FONT * 0.35);
        svg_xml(b, label, k);
        SVG_LIT(b, "</text>\n");
    }
    if (has_text(s->xlabel)) {
        svg_printf(b, "<text x=\"%.2f\" y=\"%.2f\" text-anchor=\"middle\">", (f->x0 + f->x1) / 2,
                   f->y1 + TICK_LEN + 4.0 + 2 * FONT + 12.0);
        svg_xml(b, s->xlabel, strlen(s->xlabel));
        SVG_LIT(b, "</text>\n");
    }
    if (has_text(s->ylabel)) {
        double x = PAD + FONT - 2.0, y = (f->y0 + f->y1) / 2;
        svg_printf(b, "<text x=\"%.2f\" y=\"%.2f\" text-anchor=\"middle\" transform=\"rotate(-90 %.2f %.2f)\">", x, y,
                   x, y);
        svg_xml(b, s->ylabel, strlen(s->ylabel));
        SVG_LIT(b, "</text>\n");
    }
    SVG_LIT(b, "</g>\n");
    if (has_text(s->title)) {
        svg_printf(b, "<text x=\"%.2f\" y=\"%.2f\" text-anchor=\"middle\" font-size=\"%g\" font-weight=\"bold\">",
                   (f->x0 + f->x1) / 2, PAD + TITLE_FONT, TITLE_FONT);
        svg_xml(b, s->title, strlen(s->title));
        SVG_LIT(b, "</text>\n");
    }
}

/* one series: error bars (with caps), the line joining its points, its markers */
static void draw_series(svg_buf *b, const plot_frame *f, const plot_series *p, int i, int lines) {
    int j;
    if (p->xerr || p->yerr) {
        svg_printf(b, "<g stroke=\"%s\" stroke-width=\"1.2\" fill=\"none\">\n", plot_colour(i));
        for (j = 0; j < p->n; j++) {
            double x = bound_px(px_of(f, p->x[j])), y = bound_px(py_of(f, p->y[j]));
            if (p->yerr && p->yerr[j] > 0) {
                double ya = bound_px(py_of(f, p->y[j] - p->yerr[j])), yb = bound_px(py_of(f, p->y[j] + p->yerr[j]));
                svg_printf(b, "<path d=\"M%.2f,%.2fV%.2fM%.2f,%.2fH%.2fM%.2f,%.2fH%.2f\"/>\n", x, ya, yb, x - 3, ya, x + 3,
                           x - 3, yb, x + 3);
            }
            if (p->xerr && p->xerr[j] > 0) {
                double xa = bound_px(px_of(f, p->x[j] - p->xerr[j])), xb = bound_px(px_of(f, p->x[j] + p->xerr[j]));
                svg_printf(b, "<path d=\"M%.2f,%.2fH%.2fM%.2f,%.2fV%.2fM%.2f,%.2fV%.2f\"/>\n", xa, y, xb, xa, y - 3, y + 3,
                           xb, y - 3, y + 3);
            }
        }
        SVG_LIT(b, "</g>\n");
    }
    if (lines && p->n > 1) {
        svg_printf(b, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.8\" stroke-linejoin=\"round\" points=\"",
                   plot_colour(i));
        for (j = 0; j < p->n; j++)
            svg_printf(b, "%s%.2f,%.2f", j ? " " : "", bound_px(px_of(f, p->x[j])), bound_px(py_of(f, p->y[j])));
        SVG_LIT(b, "\"/>\n");
    }
    for (j = 0; j < p->n; j++) {
        svg_printf(b, "<use xlink:href=\"#plot-m%d\" x=\"%.2f\" y=\"%.2f\"><title>", i, bound_px(px_of(f, p->x[j])),
                   bound_px(py_of(f, p->y[j])));
        if (p->name) svg_xml(b, p->name, strlen(p->name));
        svg_printf(b, ": x = %.6g", p->x[j]);
        if (p->xerr) svg_printf(b, " \xc2\xb1 %.6g", p->xerr[j]);
        svg_printf(b, ", y = %.6g", p->y[j]);
        if (p->yerr) svg_printf(b, " \xc2\xb1 %.6g", p->yerr[j]);
        SVG_LIT(b, "</title></use>\n");
    }
}

/* the legend box: each series' line sample (with lines), marker and name */
static void draw_legend(svg_buf *b, const plot_frame *f, const plot_spec *s) {
    int i;
    svg_printf(b, "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" fill=\"#ffffff\" stroke=\"#999999\"/>\n",
               f->lx, f->ly, f->lw, f->lh);
    for (i = 0; i < s->n_series; i++) {
        const char *name = s->series[i].name ? s->series[i].name : "";
        size_t len = strlen(name), cut = svg_prefix_bytes(name, len, LEGEND_CHARS);
        double y = f->ly + 8.0 + LEGEND_ROW * i + LEGEND_ROW / 2, x = f->lx + 10.0;
        if (s->lines)
            svg_printf(b, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" stroke=\"%s\" stroke-width=\"1.8\"/>\n", x,
                       y, x + 28.0, y, plot_colour(i));
        svg_printf(b, "<use xlink:href=\"#plot-m%d\" x=\"%.2f\" y=\"%.2f\"/>\n", i, x + 14.0, y);
        svg_printf(b, "<text x=\"%.2f\" y=\"%.2f\" fill=\"#222222\">", x + 36.0, y + FONT * 0.35);
        svg_xml(b, name, cut);
        if (cut < len) SVG_LIT(b, ELLIPSIS);
        SVG_LIT(b, "</text>\n");
    }
}

int plot_svg(const plot_spec *s, char **out, size_t *len, dpo_err *e) {
    plot_frame f;
    svg_buf b;
    int i, points = 0;
    *out = NULL;
    *len = 0;
    if (plot_frame_make(&f, s, e) != 0) return -1;
    memset(&b, 0, sizeof b);
    for (i = 0; i < s->n_series; i++) points += s->series[i].n;
    SVG_LIT(&b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    svg_printf(&b, "<svg xmlns=\"http://www.w3.org/2000/svg\" xmlns:xlink=\"http://www.w3.org/1999/xlink\" "
                   "version=\"1.1\" width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" "
                   "font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\" font-size=\"%g\">\n",
               ceil(f.width), ceil(f.height), ceil(f.width), ceil(f.height), FONT);
    SVG_LIT(&b, "<title>");
    if (has_text(s->title)) svg_xml(&b, s->title, strlen(s->title));
    else SVG_LIT(&b, "dpo plot");
    svg_printf(&b, "</title>\n<desc>dpo plot: %d series, %d points</desc>\n<defs>\n", s->n_series, points);
    /* data is clipped to the plot area, widened by a marker so that points on its edge show whole */
    svg_printf(&b, "<clipPath id=\"plot-area\"><rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\"/></clipPath>\n",
               f.x0 - 2 * MARK, f.y0 - 2 * MARK, f.x1 - f.x0 + 4 * MARK, f.y1 - f.y0 + 4 * MARK);
    for (i = 0; i < s->n_series; i++) marker_def(&b, i);
    SVG_LIT(&b, "</defs>\n");
    svg_printf(&b, "<rect x=\"0\" y=\"0\" width=\"%.0f\" height=\"%.0f\" fill=\"#ffffff\"/>\n", ceil(f.width),
               ceil(f.height));
    draw_grid(&b, &f);
    draw_axes(&b, &f, s);
    SVG_LIT(&b, "<g clip-path=\"url(#plot-area)\">\n");
    for (i = 0; i < s->n_series; i++) draw_series(&b, &f, &s->series[i], i, s->lines);
    SVG_LIT(&b, "</g>\n");
    if (s->legend) draw_legend(&b, &f, s);
    SVG_LIT(&b, "</svg>\n");
    if (b.oom) {
        size_t bytes = b.oom_bytes;
        svg_buf_free(&b);
        return dpo_err_oom(e, "the SVG", bytes, 1);
    }
    *out = b.p;
    *len = b.n;
    return 0;
}
