// SPDX-License-Identifier: MIT
/*
 * whsem stats: one name's counters as text or JSON, or its wait-time
 * histogram and waiters over time as an SVG picture (written by hand:
 * two panels of bars with their axes, no dependency).
 */
#include "cli.h"

#include <errno.h>
#include <inttypes.h>
#include <locale.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char usage_stats[] =
    "Usage: whsem stats NAME [--exact] [--json | --plot FILE.svg]\n";

static const char help_stats[] =
    "Show the counters of the existing semaphore NAME, kept since the name was\n"
    "created by every process that uses it: acquisitions, releases, timeouts,\n"
    "cancellations, waits (acquisitions that found no ticket free), mean wait\n"
    "and hold times, the median and 99th percentile of the wait times, the\n"
    "wait-time histogram (log-scale buckets from 1µs to 18 minutes) and the\n"
    "waiters of the recent past (the most in each second). \"-\" stands for\n"
    "what the backend does not keep.\n"
    "\n"
    "With --plot it writes them as a picture instead: the wait-time histogram\n"
    "with its median and 99th percentile marked, and the waiters over time.\n"
    "\n"
    "Options:\n"
    "      --exact      NAME is already finalized (\"Global\\...\")\n"
    "      --json       print one JSON object instead of text\n"
    "      --plot=FILE  write an SVG picture to FILE (ending in .svg; - for\n"
    "                   standard output)\n"
    BACKEND_HELP
    "  -h, --help       show this help and exit\n"
    "\n"
    "Exit status: 0 on success, 1 if NAME does not exist or on any failure\n"
    "(with --plot, also if the backend keeps no counters), 2 on a usage\n"
    "error.\n";

struct stats_opts {
    bool exact, json;
    const char *plot;
};

/* ---- text and JSON ---- */

static void put_count(const char *label, bool known, uint64_t v)
{
    if (known) printf("%-16s%" PRIu64 "\n", label, v);
    else printf("%-16s-\n", label);
}

static void put_duration(const char *label, double ns)
{
    char b[32];
    format_duration_ns(ns, b, sizeof b);
    printf("%-16s%s\n", label, b);
}

static double mean_ns(bool known, uint64_t sum, uint64_t n)
{
    return known && n ? (double)sum / (double)n : -1;
}

static void bucket_label(size_t i, char *buf, size_t size)
{
    double lo_ns, hi_ns;
    wait_bucket_bounds(i, &lo_ns, &hi_ns);
    char lo[32], hi[32];
    format_duration_ns(lo_ns, lo, sizeof lo);
    format_duration_ns(hi_ns, hi, sizeof hi);
    if (i == 0) snprintf(buf, size, "under %s", hi);
    else if (isinf(hi_ns)) snprintf(buf, size, "%s or more", lo);
    else snprintf(buf, size, "%s - %s", lo, hi);
}

/* The seconds of the history worth showing: those since the name was
 * created (all zeros before), a minute at least. The last *n of
 * s->history. */
static const uint32_t *shown_history(const struct sem_stats *s, size_t *n)
{
    *n = s->has_history ? s->seconds : 0;
    int64_t created = s->snap.counters ? s->snap.info.created_unix_ms : 0;
    if (created > 0) {
        int64_t age = (now_unix_ms() - created) / 1000 + 1;
        if (age < 60) age = 60;
        if ((int64_t)*n > age) *n = (size_t)age;
    }
    return s->history ? s->history + (s->seconds - *n) : NULL;
}

static void print_text(const char *name, const struct sem_stats *s)
{
    const whsem_info *i = &s->snap.info;
    bool c = s->snap.counters;
    printf("%-16s", "name:");
    put_display(stdout, name);
    printf("\n%-16s%" PRId32 "\n", "max:", i->max_count);
    printf("%-16s%" PRId32 "\n", "free:", i->free_count);
    printf("%-16s%" PRIu32 "\n", "waiters:", i->waiters);
    char since[128];
    format_since(c ? i->created_unix_ms : 0, now_unix_ms(), since, sizeof since);
    printf("%-16s%s\n", "created:", since);
    put_count("acquisitions:", c, i->acquisitions);
    put_count("releases:", c, i->releases);
    put_count("timeouts:", c, i->timeouts);
    put_count("cancellations:", c, i->cancellations);
    put_count("waits:", c, i->waits);
    put_duration("wait mean:", mean_ns(c, i->wait_ns, i->waits));
    put_duration("wait p50:", c ? wait_quantile_ns(s->snap.buckets, 0.50) : -1);
    put_duration("wait p99:", c ? wait_quantile_ns(s->snap.buckets, 0.99) : -1);
    put_duration("hold mean:", mean_ns(c, i->hold_ns, i->releases));
    uint64_t most = 0;
    for (size_t k = 0; c && k < WHSEM_WAIT_BUCKETS; k++)
        if (s->snap.buckets[k] > most) most = s->snap.buckets[k];
    if (!c) printf("%-16s-\n", "wait histogram:");
    else if (!most) printf("%-16s(no waits)\n", "wait histogram:");
    else printf("wait histogram:\n");
    for (size_t k = 0; c && k < WHSEM_WAIT_BUCKETS; k++) {
        if (!s->snap.buckets[k]) continue;
        char label[96];
        bucket_label(k, label, sizeof label);
        printf("  %-22s %10" PRIu64 " ", label, s->snap.buckets[k]);
        int bar = (int)((s->snap.buckets[k] * 40 + most - 1) / most);
        for (int b = 0; b < bar; b++) fputc('#', stdout);
        fputc('\n', stdout);
    }
    printf("%-16s", "waiters:");
    if (!s->has_history) {
        printf("-\n");
        return;
    }
    size_t n;
    const uint32_t *h = shown_history(s, &n);
    uint32_t peak = 0;
    for (size_t k = 0; k < n; k++)
        if (h[k] > peak) peak = h[k];
    printf("the last %zu s, most %" PRIu32 "\n  [", n, peak);
    /* One column a second up to a minute, the rest squeezed into 60. */
    put_sparkline(stdout, h, n, n < 60 ? n : 60);
    printf("]\n");
}

static void print_json(const char *name, const struct sem_stats *s)
{
    const whsem_info *i = &s->snap.info;
    printf("{\"name\":");
    put_json_string(stdout, name);
    printf(",\"max\":%" PRId32 ",\"free\":%" PRId32 ",\"waiters\":%" PRIu32, i->max_count,
           i->free_count, i->waiters);
    if (s->snap.counters) {
        printf(",\"created_unix_ms\":%" PRId64 ",\"acquisitions\":%" PRIu64
               ",\"releases\":%" PRIu64 ",\"timeouts\":%" PRIu64 ",\"cancellations\":%" PRIu64
               ",\"waits\":%" PRIu64 ",\"wait_ns\":%" PRIu64 ",\"hold_ns\":%" PRIu64,
               i->created_unix_ms, i->acquisitions, i->releases, i->timeouts, i->cancellations,
               i->waits, i->wait_ns, i->hold_ns);
        double p50 = wait_quantile_ns(s->snap.buckets, 0.50), p99 = wait_quantile_ns(s->snap.buckets, 0.99);
        if (p50 < 0) printf(",\"wait_p50_ns\":null,\"wait_p99_ns\":null");
        else printf(",\"wait_p50_ns\":%.0f,\"wait_p99_ns\":%.0f", p50, p99);
        printf(",\"wait_histogram\":[");
        for (size_t k = 0; k < WHSEM_WAIT_BUCKETS; k++) {
            double lo, hi;
            wait_bucket_bounds(k, &lo, &hi);
            printf("%s{\"from_ns\":%.0f,\"to_ns\":", k ? "," : "", lo);
            if (isinf(hi)) printf("null");
            else printf("%.0f", hi);
            printf(",\"count\":%" PRIu64 "}", s->snap.buckets[k]);
        }
        printf("]");
    } else {
        /* Not kept by this backend: null, never a 0 that could be believed. */
        printf(",\"created_unix_ms\":null,\"acquisitions\":null,\"releases\":null,"
               "\"timeouts\":null,\"cancellations\":null,\"waits\":null,\"wait_ns\":null,"
               "\"hold_ns\":null,\"wait_p50_ns\":null,\"wait_p99_ns\":null,"
               "\"wait_histogram\":null");
    }
    printf(",\"waiters_per_second\":");
    if (s->has_history) {
        printf("[");
        for (size_t k = 0; k < s->seconds; k++)
            printf("%s%" PRIu32, k ? "," : "", s->history[k]);
        printf("]");
    } else {
        printf("null");
    }
    printf("}\n");
}

/* ---- the SVG ---- */

#define SVG_W 800
#define SVG_H 660
#define PLOT_L 90.0  /* left edge of both plots */
#define PLOT_R 770.0 /* right edge */

/* Text for XML: the display form of a name (no control characters, which
 * XML 1.0 cannot carry at all) with the markup characters escaped. */
static void put_xml(FILE *f, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '&': fputs("&amp;", f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '"': fputs("&quot;", f); break;
        default: fputc(*s, f);
        }
    }
}

static void put_xml_name(FILE *f, const char *name)
{
    char *shown = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&shown, &len);
    if (!m) return;
    put_display(m, name);
    fclose(m);
    put_xml(f, shown);
    free(shown);
}

/* A step of 1, 2 or 5 times a power of ten that cuts [0, top] into at most
 * about five ticks; counts have whole steps. */
static double nice_step(double top)
{
    double raw = top / 5;
    if (raw < 1) return 1;
    double mag = pow(10, floor(log10(raw)));
    static const double m[] = {1, 2, 5, 10};
    for (size_t k = 0; k < sizeof m / sizeof m[0]; k++)
        if (m[k] * mag >= raw) return m[k] * mag;
    return 10 * mag;
}

struct panel {
    double top, bottom; /* y of the plot area */
    double ymax;        /* the value at the top */
};

/* The y axis of a panel: line, ticks, labels and title; returns ymax. */
static void y_axis(FILE *f, struct panel *p, double most, const char *title)
{
    double step = nice_step(most > 0 ? most : 1);
    p->ymax = ceil((most > 0 ? most : 1) / step) * step;
    fprintf(f, "<line class=\"axis\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n", PLOT_L,
            p->top, PLOT_L, p->bottom);
    for (double v = 0; v <= p->ymax + step / 2; v += step) {
        double y = p->bottom - (p->bottom - p->top) * v / p->ymax;
        fprintf(f,
                "<line class=\"grid\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n"
                "<text class=\"tick-label y\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%.0f</text>\n",
                PLOT_L - 4, y, PLOT_R, y, PLOT_L - 8, y + 4, v);
    }
    double mid = (p->top + p->bottom) / 2;
    fprintf(f,
            "<text class=\"axis-title y\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" "
            "transform=\"rotate(-90 %.1f %.1f)\">%s</text>\n",
            PLOT_L - 60, mid, PLOT_L - 60, mid, title);
}

static void x_axis(FILE *f, const struct panel *p, const char *title)
{
    fprintf(f, "<line class=\"axis\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n", PLOT_L,
            p->bottom, PLOT_R, p->bottom);
    fprintf(f, "<text class=\"axis-title x\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%s</text>\n",
            (PLOT_L + PLOT_R) / 2, p->bottom + 38, title);
}

static void x_tick(FILE *f, const struct panel *p, double x, const char *label)
{
    fprintf(f,
            "<line class=\"tick\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n"
            "<text class=\"tick-label x\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%s</text>\n",
            x, p->bottom, x, p->bottom + 5, x, p->bottom + 19, label);
}

/* The histogram's x axis is log10 of the wait in ns, from the first
 * bucket drawn as [2^9, 2^10) to the last as [2^40, 2^41). */
static double hist_x(double ns)
{
    double lo = 9 * log10(2.0), hi = 41 * log10(2.0);
    return PLOT_L + (PLOT_R - PLOT_L) * (log10(ns) - lo) / (hi - lo);
}

static void histogram_panel(FILE *f, const struct sem_stats *s, struct panel *p)
{
    uint64_t most = 0, total = 0;
    for (size_t k = 0; k < WHSEM_WAIT_BUCKETS; k++) {
        if (s->snap.buckets[k] > most) most = s->snap.buckets[k];
        total += s->snap.buckets[k];
    }
    fprintf(f, "<text class=\"panel-title\" x=\"%.1f\" y=\"%.1f\">Wait times of the %" PRIu64
               " acquisitions that waited</text>\n",
            PLOT_L, p->top - 12, total);
    y_axis(f, p, (double)most, "waits");
    for (size_t k = 0; k < WHSEM_WAIT_BUCKETS; k++) {
        if (!s->snap.buckets[k]) continue;
        double lo, hi;
        wait_bucket_bounds(k, &lo, &hi);
        /* Drawn as wide as the others: the first from 2^9 ns, the last to 2^41. */
        if (lo == 0) lo = ldexp(1, 9);
        if (isinf(hi)) hi = ldexp(1, 41);
        double x0 = hist_x(lo) + 0.5, x1 = hist_x(hi) - 0.5;
        double h = (p->bottom - p->top) * (double)s->snap.buckets[k] / p->ymax;
        char label[96];
        bucket_label(k, label, sizeof label);
        fprintf(f,
                "<rect class=\"bar\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\">"
                "<title>%s: %" PRIu64 "</title></rect>\n",
                x0, p->bottom - h, x1 - x0, h, label, s->snap.buckets[k]);
    }
    static const char *const decades[] = {"1µs", "10µs", "100µs", "1ms",  "10ms",
                                          "100ms", "1s",  "10s",   "100s", "1000s"};
    for (int d = 0; d < 10; d++) x_tick(f, p, hist_x(pow(10, 3 + d)), decades[d]);
    x_axis(f, p, "wait time (log scale)");
    /* The percentiles, the second label lower when they would overlap. */
    static const struct {
        double q;
        const char *cls, *label;
    } marks[] = {{0.50, "p50", "p50"}, {0.99, "p99", "p99"}};
    double last_x = -1000;
    for (size_t m = 0; m < 2; m++) {
        double ns = wait_quantile_ns(s->snap.buckets, marks[m].q);
        if (ns < 0) continue;
        if (ns < ldexp(1, 9)) ns = ldexp(1, 9); /* inside the first bar */
        double x = hist_x(ns);
        char b[32];
        format_duration_ns(ns, b, sizeof b);
        double ly = p->top + 12 + (x - last_x < 90 ? 16 : 0);
        fprintf(f,
                "<line class=\"%s marker\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n"
                "<text class=\"%s marker-label\" x=\"%.1f\" y=\"%.1f\">%s %s</text>\n",
                marks[m].cls, x, p->top, x, p->bottom, marks[m].cls, x + 4, ly, marks[m].label, b);
        last_x = x;
    }
}

static void waiters_panel(FILE *f, const struct sem_stats *s, struct panel *p)
{
    size_t n;
    const uint32_t *hist = shown_history(s, &n);
    uint32_t most = 0;
    for (size_t k = 0; k < n; k++)
        if (hist[k] > most) most = hist[k];
    fprintf(f,
            "<text class=\"panel-title\" x=\"%.1f\" y=\"%.1f\">Waiters, the most in each second "
            "of the last %zu s</text>\n",
            PLOT_L, p->top - 12, n);
    y_axis(f, p, most, "waiters");
    double w = n ? (PLOT_R - PLOT_L) / (double)n : 0;
    for (size_t k = 0; k < n; k++) {
        if (!hist[k]) continue;
        double h = (p->bottom - p->top) * hist[k] / p->ymax;
        fprintf(f,
                "<rect class=\"waiters\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\">"
                "<title>%zu s ago: %" PRIu32 "</title></rect>\n",
                PLOT_L + w * (double)k + 0.5, p->bottom - h, w > 1 ? w - 1 : w, h, n - 1 - k,
                hist[k]);
    }
    /* Ticks counted back from now at the right edge (the middle of the
     * last second), eight at most, at round numbers of seconds. */
    static const size_t steps[] = {5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600};
    size_t every = steps[0];
    for (size_t k = 0; k < sizeof steps / sizeof steps[0] && n / steps[k] >= 8; k++)
        every = k + 1 < sizeof steps / sizeof steps[0] ? steps[k + 1] : steps[k];
    for (size_t ago = 0; n && ago < n; ago += every) {
        char label[32];
        if (ago) snprintf(label, sizeof label, "-%zus", ago);
        else snprintf(label, sizeof label, "now");
        x_tick(f, p, PLOT_L + w * ((double)(n - 1 - ago) + 0.5), label);
    }
    x_axis(f, p, "time (seconds before now)");
}

static int write_svg(const char *path, const char *name, const struct sem_stats *s)
{
    bool to_stdout = strcmp(path, "-") == 0;
    FILE *f = to_stdout ? stdout : fopen(path, "w");
    if (!f) {
        fputs("whsem: cannot write '", stderr);
        put_display(stderr, path);
        fprintf(stderr, "': %s\n", strerror(errno));
        return 1;
    }
    fprintf(f,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
            "viewBox=\"0 0 %d %d\" font-family=\"sans-serif\" font-size=\"12\">\n"
            "<style>.axis,.tick{stroke:#333}.grid{stroke:#ddd}.bar{fill:#4a7ab7}"
            ".waiters{fill:#c0504d}.marker{stroke-dasharray:4 3;stroke-width:1.5}"
            "line.p50{stroke:#2e7d32}line.p99{stroke:#e65100}text.p50{fill:#2e7d32}"
            "text.p99{fill:#e65100}.title{font-size:18px;font-weight:bold}"
            ".panel-title{font-weight:bold}"
            ".marker-label{paint-order:stroke;stroke:white;stroke-width:3px}</style>\n"
            "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n",
            SVG_W, SVG_H, SVG_W, SVG_H);
    fputs("<title>", f);
    put_xml_name(f, name);
    fprintf(f, " (max %" PRId32 ")</title>\n", s->snap.info.max_count);
    fputs("<text class=\"title\" x=\"20\" y=\"30\">", f);
    put_xml_name(f, name);
    fprintf(f, " — max %" PRId32 "</text>\n", s->snap.info.max_count);
    char since[128], mean_wait[32], mean_hold[32];
    format_since(s->snap.info.created_unix_ms, now_unix_ms(), since, sizeof since);
    format_duration_ns(mean_ns(true, s->snap.info.wait_ns, s->snap.info.waits), mean_wait, sizeof mean_wait);
    format_duration_ns(mean_ns(true, s->snap.info.hold_ns, s->snap.info.releases), mean_hold, sizeof mean_hold);
    fprintf(f,
            "<text class=\"subtitle\" x=\"20\" y=\"50\">%" PRIu64 " acquisitions, %" PRIu64
            " waits (mean %s), %" PRIu64 " timeouts, %" PRIu64 " cancellations, mean hold %s"
            "</text>\n<text class=\"subtitle\" x=\"20\" y=\"66\">created ",
            s->snap.info.acquisitions, s->snap.info.waits, mean_wait, s->snap.info.timeouts,
            s->snap.info.cancellations, mean_hold);
    put_xml(f, since);
    fputs("</text>\n", f);
    struct panel hist = {100, 330, 0}, wait = {420, 610, 0};
    histogram_panel(f, s, &hist);
    waiters_panel(f, s, &wait);
    fputs("</svg>\n", f);
    bool failed = ferror(f) != 0;
    if (!to_stdout && fclose(f) != 0) failed = true;
    if (failed) {
        fputs("whsem: cannot write '", stderr);
        put_display(stderr, path);
        fprintf(stderr, "': %s\n", strerror(errno));
        return 1;
    }
    return 0;
}

/* ---- the command ---- */

static void stats_opt(int id, const char *arg, void *ctx)
{
    struct stats_opts *o = ctx;
    if (id == OPT_EXACT) o->exact = true;
    if (id == OPT_JSON) o->json = true;
    if (id != OPT_PLOT) return;
    size_t n = strlen(arg);
    if (strcmp(arg, "-") != 0 && (n < 5 || strcasecmp(arg + n - 4, ".svg") != 0))
        usage_error("invalid plot file '%s': whsem writes SVG, so it must end in .svg (or be -)",
                    arg);
    o->plot = arg;
}

static int stats_main(int argc, char **argv)
{
    static const struct optdef defs[] = {
        {"help", 'h', false, OPT_HELP},
        {"exact", 0, false, OPT_EXACT},
        {"json", 0, false, OPT_JSON},
        {"plot", 0, true, OPT_PLOT},
        BACKEND_OPTDEF,
        {NULL, 0, false, 0},
    };
    struct stats_opts o = {false, false, NULL};
    const char *name = parse_name_command_args(argc, argv, defs, stats_opt, &o);
    if (o.plot && o.json) usage_error("--json and --plot cannot be used together");
    setlocale(LC_CTYPE, "");

    whsem_sem sem;
    char final[1024];
    if (!open_named(name, o.exact, &sem, final, sizeof final)) return 1;
    struct sem_stats s;
    /* All the history the backend keeps: a picture has room for it. */
    whsem_status st = read_sem_stats(sem, SIZE_MAX, &s);
    whsem_close(sem);
    if (st != WHSEM_OK) {
        lib_error(st);
        return 1;
    }
    int rc = 0;
    if (o.plot && !s.snap.counters) {
        fputs("whsem: no counters to plot: the backend of '", stderr);
        put_display(stderr, final);
        fputs("' keeps none\n", stderr);
        rc = 1;
    } else if (o.plot) {
        rc = write_svg(o.plot, final, &s);
    } else if (o.json) {
        print_json(final, &s);
    } else {
        print_text(final, &s);
    }
    free_sem_stats(&s);
    return rc;
}

const struct command cmd_stats = {"stats", usage_stats, help_stats, stats_main};
