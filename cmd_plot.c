/* cmd_plot.c - owns `dpo plot`'s command line: its options, reading the TSV
 * table (a file, or standard input for "-"), choosing the columns and series,
 * and writing the SVG chart plot.c draws, atomically, to --out.
 * It must never parse a number or draw anything itself (plot.c does), never
 * write over an input file, never leave a partial --out behind, and never touch
 * the network. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "plot.h"
#include "util.h"

typedef struct {
    const char *data, *out, *x, *y, *xerr, *yerr, *series, *title, *xlabel, *ylabel;
    const char *lim[4]; /* --xmin, --xmax, --ymin, --ymax as given */
    int lines;
} plot_opts;

static const char *const lim_names[4] = {"--xmin", "--xmax", "--ymin", "--ymax"};

/* Returns 0 to go on (stop 0), or the exit status: 0 after --help, 2 after a usage error. */
static int cmd_plot_parse(int argc, char **argv, plot_opts *o, plot_spec *s, int *stop) {
    double *lim_out[4];
    int *has[4], rc, i;
    opt_spec opts[] = {
        {"--data", OPT_STR, &o->data, 0, 0, 1, "the table: tab-separated, a header row of column names ('-': standard input)", 0},
        {"--x", OPT_NAME, &o->x, 0, 0, 1, "the column of x values", 0},
        {"--y", OPT_NAME, &o->y, 0, 0, 1, "the column of y values", 0},
        {"--xerr", OPT_NAME, &o->xerr, 0, 0, 0, "a column of x error bars: half-widths, drawn x - e to x + e", 0},
        {"--yerr", OPT_NAME, &o->yerr, 0, 0, 0, "a column of y error bars: half-widths, drawn y - e to y + e", 0},
        {"--series", OPT_NAME, &o->series, 0, 0, 0, "the column naming each row's series (one colour, marker and legend entry each)", 0},
        {"--lines", OPT_FLAG, &o->lines, 0, 0, 0, "join each series' points in file order", 0},
        {"--out", OPT_STR, &o->out, 0, 0, 1, "the SVG file to write (replaced atomically; never an input)", 0},
        {"--title", OPT_TEXT, &o->title, 0, 0, 0, "the title (default: 'Y against X')", 0},
        {"--xlabel", OPT_TEXT, &o->xlabel, 0, 0, 0, "the x axis' label (default: the --x column's name)", 0},
        {"--ylabel", OPT_TEXT, &o->ylabel, 0, 0, 0, "the y axis' label (default: the --y column's name)", 0},
        {"--xmin", OPT_TEXT, &o->lim[0], 0, 0, 0, "where the x axis starts (default: the data's, rounded to a tick)", 0},
        {"--xmax", OPT_TEXT, &o->lim[1], 0, 0, 0, "where the x axis ends", 0},
        {"--ymin", OPT_TEXT, &o->lim[2], 0, 0, 0, "where the y axis starts", 0},
        {"--ymax", OPT_TEXT, &o->lim[3], 0, 0, 0, "where the y axis ends", 0},
    };
    *stop = 1;
    rc = cli_parse("plot", "usage: dpo plot --data FILE.tsv --x COL --y COL [--xerr COL] [--yerr COL] [--series COL]\n"
                   "                [--lines] --out FILE.svg [--title TEXT] [--xlabel TEXT] [--ylabel TEXT]\n"
                   "                [--xmin X] [--xmax X] [--ymin Y] [--ymax Y]\n\n"
                   "Draw columns of a tab-separated table as an SVG chart: one point per row at (x, y),\n"
                   "the rows grouped into series by the text of --series (in order of first appearance,\n"
                   "each its own colour and marker, named in a legend), error bars from --xerr/--yerr,\n"
                   "axes with ticks at 1, 2 or 5 times a power of ten, grid lines and a title. Numbers\n"
                   "are read strictly: a cell that is not a decimal number (nan and inf included), a\n"
                   "missing column or a row with another number of cells than the header is an error\n"
                   "naming the line and column, and nothing is written. Points outside --xmin..--ymax\n"
                   "are clipped from sight.",
                   argc, argv, opts, CLI_NOPTS(opts));
    if (rc != 0) return rc > 0 ? 0 : 2;
    *stop = 0;
    lim_out[0] = &s->xmin;
    lim_out[1] = &s->xmax;
    lim_out[2] = &s->ymin;
    lim_out[3] = &s->ymax;
    has[0] = &s->has_xmin;
    has[1] = &s->has_xmax;
    has[2] = &s->has_ymin;
    has[3] = &s->has_ymax;
    for (i = 0; i < 4; i++) {
        if (!o->lim[i]) continue;
        if (plot_parse_number(o->lim[i], lim_out[i]) != 0 || fabs(*lim_out[i]) > 1e300) {
            fprintf(stderr, "dpo plot: %s must be a finite decimal number, got '%s'\n", lim_names[i], o->lim[i]);
            return 2;
        }
        *has[i] = 1;
    }
    for (i = 0; i < 4; i += 2)
        if (*has[i] && *has[i + 1] && !(*lim_out[i] < *lim_out[i + 1])) {
            fprintf(stderr, "dpo plot: %s %s must be below %s %s\n", lim_names[i], o->lim[i], lim_names[i + 1],
                    o->lim[i + 1]);
            return 2;
        }
    return 0;
}

/* "Y against X", the default title; NULL when out of memory */
static char *cmd_plot_title(const char *y, const char *x) {
    size_t n = strlen(y) + strlen(x) + sizeof " against ";
    char *t = malloc(n);
    if (t) snprintf(t, n, "%s against %s", y, x);
    return t;
}

int cmd_plot(int argc, char **argv) {
    plot_opts o;
    plot_spec s;
    plot_table t;
    plot_data d;
    dpo_err e;
    char *text = NULL, *svg = NULL, *title = NULL, name[4096];
    const char *inputs[1];
    size_t len = 0, svg_len = 0;
    int rc, stop, points = 0, i;

    memset(&o, 0, sizeof o);
    memset(&s, 0, sizeof s);
    memset(&t, 0, sizeof t);
    memset(&d, 0, sizeof d);
    rc = cmd_plot_parse(argc, argv, &o, &s, &stop);
    if (rc != 0 || stop) return rc;
    inputs[0] = o.data;
    if (cli_check_out_file("plot", "--out", o.out, inputs, 1, NULL, 0) != 0) return 2;
    rc = 1;
    if (cli_read_input(o.data, &text, &len, &e) != 0 ||
        plot_table_parse(&t, strcmp(o.data, "-") == 0 ? "standard input" : o.data, text, len, &e) != 0 ||
        plot_data_from_table(&d, &t, o.x, o.y, o.xerr, o.yerr, o.series, &e) != 0)
        goto done;
    if (!o.title && !(title = cmd_plot_title(o.y, o.x))) {
        dpo_err_oom(&e, "the title", strlen(o.y) + strlen(o.x) + sizeof " against ", 1);
        goto done;
    }
    s.title = o.title ? o.title : title;
    s.xlabel = o.xlabel ? o.xlabel : o.x;
    s.ylabel = o.ylabel ? o.ylabel : o.y;
    s.lines = o.lines;
    s.legend = o.series != NULL;
    s.series = d.series;
    s.n_series = d.n_series;
    if (plot_svg(&s, &svg, &svg_len, &e) != 0) {
        dpo_err_prefix(&e, "%s", t.name);
        goto done;
    }
    if (util_atomic_write_file(o.out, svg, svg_len, &e) != 0) goto done;
    for (i = 0; i < d.n_series; i++) points += d.series[i].n;
    util_escape_text(name, sizeof name, o.out);
    printf("dpo plot: %d point%s in %d series -> %s\n", points, points == 1 ? "" : "s", d.n_series, name);
    rc = 0;
done:
    if (rc == 1) cli_fail("plot", &e);
    free(svg);
    free(title);
    plot_data_free(&d);
    plot_table_free(&t);
    free(text);
    return rc;
}
