/* plot.h - `dpo plot`'s library: a strict reader of tab-separated tables, the
 * "nice" tick values of an axis, and a scatter/line chart with error bars,
 * legend and grid drawn as an SVG document in memory. See plot.c. */
#ifndef DPO_PLOT_H
#define DPO_PLOT_H

#include <stddef.h>
#include "util.h"

/* ======================================================================== */
/* tables                                                                    */
/* ======================================================================== */

/* A TSV table: a header row of column names, then rows of as many cells. */
typedef struct {
    int n_cols, n_rows;
    char **names;  /* (n_cols) the header's names, NUL-terminated, distinct, non-empty */
    char **cells;  /* (n_rows * n_cols) row r's cell c at [r * n_cols + c], NUL-terminated */
    long *line;    /* (n_rows) the file line (from 1) of each row */
    char *text;    /* the file's bytes, cells cut apart by NULs: one allocation */
    char name[512];/* the file's name, for messages */
} plot_table;

/* Parse data[0..len) (name: the file's name in messages). Lines end in "\n" or
 * "\r\n", the last one perhaps in neither; cells are separated by one tab each;
 * blank lines are skipped. Refused, with a message naming the file, line and
 * column: no header, an empty or repeated column name, a row with another
 * number of cells than the header (ragged), a NUL byte. A header without rows
 * is a valid (empty) table. Fills *t (free with plot_table_free), or returns
 * -1 with t empty. */
int plot_table_parse(plot_table *t, const char *name, const char *data, size_t len, dpo_err *e);
void plot_table_free(plot_table *t);

/* the index of the column called name, or -1 with a message listing the columns */
int plot_table_column(const plot_table *t, const char *name, dpo_err *e);

/* A cell as a number, strictly: [+-]digits[.digits][(e|E)[+-]digits] (a digit
 * before or after the point), nothing before or after it, and finite: "nan",
 * "inf", hex, spaces, an empty cell or a value beyond the double range are
 * refused. 0, or -1 (no message: plot_table_numbers says where). */
int plot_parse_number(const char *s, double *out);

/* Column col of every row into out (n_rows values), each by plot_parse_number.
 * 0, or -1 naming the file, line, column and the text that is not a number. */
int plot_table_numbers(const plot_table *t, int col, double *out, dpo_err *e);

/* Columns of a table as the series of a chart: x, y and the optional xerr,
 * yerr (NULL: none) by plot_table_numbers, error half-widths >= 0; the rows
 * grouped by the text of column `series` (NULL: one series named after y) in
 * the order each text first appears, a series' points in file order. The
 * names point into t, which must outlive d. Fills *d (free with
 * plot_data_free), or returns -1 with d empty, naming file, line and column. */
typedef struct plot_series plot_series;
#define PLOT_MAX_SERIES 64 /* more is refused: a legend that long is no longer read */
typedef struct {
    plot_series *series; /* (n_series) */
    int n_series;
    double *num;         /* the values, one allocation */
} plot_data;

int plot_data_from_table(plot_data *d, const plot_table *t, const char *x, const char *y, const char *xerr,
                         const char *yerr, const char *series, dpo_err *e);
void plot_data_free(plot_data *d);

/* ======================================================================== */
/* ticks                                                                     */
/* ======================================================================== */

#define PLOT_MAX_TICKS 10
#define PLOT_MIN_TICKS 4

/* An axis: the range [lo, hi] it spans and its ticks, every one an integer
 * multiple k of a step m 10^exp10 with m in {1, 2, 5}. Tick i is the value
 * mult[i] 10^exp10 (mult[i] = k m, exact integers), so that its label is
 * written from integers, without floating-point noise. */
typedef struct {
    double lo, hi;                 /* the axis range (hi > lo) */
    double step;                   /* m 10^exp10 */
    int m, exp10;
    int n;                         /* ticks, PLOT_MIN_TICKS..PLOT_MAX_TICKS when the range is the data's */
    long long mult[PLOT_MAX_TICKS];/* (n) tick i = mult[i] 10^exp10 */
    double v[PLOT_MAX_TICKS];      /* (n) the same as doubles (the nearest double for exp10 >= -22) */
} plot_axis;

/* The axis of values in [a, b] (finite, a <= b). A free end (fix_lo / fix_hi
 * 0) is rounded outwards to a tick; a fixed end is the axis's end as given
 * (ticks only inside it). The step is the smallest m 10^k, m in {1, 2, 5},
 * that gives at most PLOT_MAX_TICKS ticks; with both ends free that is at
 * least PLOT_MIN_TICKS. A zero-width range (a single value) is widened first:
 * [a - |a|/10, a + |a|/10], or [-1, 1] around 0 (a fixed end stays); so is
 * a range narrower than 1e-9 of the values' size, which doubles cannot
 * divide into ticks. 0, or -1 for values beyond +-1e300, a step that would be
 * below 1e-300, or two fixed ends that are (as good as) one value. */
int plot_axis_make(plot_axis *ax, double a, double b, int fix_lo, int fix_hi, dpo_err *e);

/* Tick i's label into out (cap bytes; 32 are always enough), written from its
 * integers: fixed notation with the axis's decimals (max(0, -exp10)) when
 * every tick is below 10^6 in size and exp10 >= -5 ("0.0", "0.5", "-250",
 * "1000.1"), otherwise the shortest scientific form ("0", "1.5e-9", "2e12").
 * Returns the label's length. */
size_t plot_tick_label(char *out, size_t cap, const plot_axis *ax, int i);

/* ======================================================================== */
/* charts                                                                    */
/* ======================================================================== */

struct plot_series {
    const char *name;   /* legend text (any bytes: escaped, invalid UTF-8 replaced) */
    int n;              /* points */
    const double *x, *y;        /* (n) */
    const double *xerr, *yerr;  /* (n) half-widths of the error bars (>= 0), or NULL */
};

typedef struct {
    const char *title, *xlabel, *ylabel; /* NULL or "": none */
    int lines;                 /* 1: join each series' points in order */
    int legend;                /* 1: draw the legend box */
    int has_xmin, has_xmax, has_ymin, has_ymax;
    double xmin, xmax, ymin, ymax; /* fixed axis ends, when has_* */
    const plot_series *series; /* (n_series) */
    int n_series;
} plot_spec;

/* Where the chart lies in the picture: the plot area in pixels (x0 < x1 left
 * to right, y0 < y1 top to bottom) and the two axes. A value v lies at
 *   px = x0 + (v - x.lo) / (x.hi - x.lo) (x1 - x0),   py = y1 - (v - y.lo) / (y.hi - y.lo) (y1 - y0). */
typedef struct {
    double width, height;  /* the picture */
    double x0, x1, y0, y1; /* the plot area */
    plot_axis x, y;
    double lx, ly, lw, lh; /* the legend box (lw = 0: none) */
} plot_frame;

/* The frame of spec: the axes cover every point and error bar (within the
 * fixed ends), and the picture leaves room for the labels and the legend.
 * 0, or -1 (no points, a value that is not finite, a negative error, fixed
 * ends that are not lo < hi, an axis plot_axis_make refuses). */
int plot_frame_make(plot_frame *f, const plot_spec *spec, dpo_err *e);

/* Colours and markers: series i has colour i % PLOT_N_COLOURS (Okabe and Ito's
 * colour-blind-safe palette) and marker i % PLOT_N_MARKERS (circle, square,
 * triangle, diamond, inverted triangle, plus, cross), so that the first 56
 * series differ in one or both. */
#define PLOT_N_COLOURS 8
#define PLOT_N_MARKERS 7
const char *plot_colour(int i);

/* The chart as an SVG 1.1 document in a fresh buffer (*out, *len; the caller
 * frees *out), starting with "<?xml": white background, title, grid lines at
 * the ticks, the axes with tick labels and axis labels, each series' error bars,
 * line and markers (each marker a <use> at x="px" y="py", %.2f, with a <title>
 * of its values), clipped to the plot area, and the legend box to its right.
 * Every text is XML-escaped and made valid UTF-8 (U+FFFD for an invalid byte).
 * 0, or -1 (plot_frame_make's errors, or out of memory). */
int plot_svg(const plot_spec *spec, char **out, size_t *len, dpo_err *e);

#endif
