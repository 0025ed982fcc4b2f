// SPDX-License-Identifier: MIT
/*
 * The arithmetic of src/cli/stats.c that no backend's counters need to
 * drive: wait percentiles from a WHSEM_WAIT_BUCKETS histogram, durations
 * for people, command lines (of this process) and their quoting, and
 * durations parsed from arguments (args.c).
 */
#include "cli.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int failures;

#define CHECK(cond)                                                                  \
    do {                                                                             \
        if (!(cond)) {                                                               \
            fprintf(stderr, "%s:%d: failed: %s\n", __FILE__, __LINE__, #cond);       \
            failures++;                                                              \
        }                                                                            \
    } while (0)

/* What main.c gives args.c, which parts these tests do not call. */
const struct command *current_cmd;
void usage_error(const char *fmt, ...)
{
    fprintf(stderr, "unexpected usage_error: %s\n", fmt);
    exit(1);
}
void show_help(const struct command *c) { (void)c; }
void set_backend(const char *conninfo) { (void)conninfo; }

static bool near(double got, double want)
{
    return fabs(got - want) <= 1e-9 * fabs(want) + 1e-9;
}

static void quantiles(void)
{
    uint64_t h[WHSEM_WAIT_BUCKETS] = {0};
    CHECK(wait_quantile_ns(h, 0.5) == -1); /* no waits: unknown */

    /* One wait in bucket 20, [2^29, 2^30) ns: the median is the geometric
     * middle of the bucket, p99 near its top. */
    h[20] = 1;
    CHECK(near(wait_quantile_ns(h, 0.5), ldexp(1, 29) * sqrt(2)));
    CHECK(near(wait_quantile_ns(h, 0.99), ldexp(1, 29) * pow(2, 0.99)));
    CHECK(near(wait_quantile_ns(h, 0), ldexp(1, 29)));

    /* 99 waits in bucket 20, one in bucket 25: p99 is still in bucket 20
     * (its top), p100 the top of bucket 25. */
    h[20] = 99;
    h[25] = 1;
    CHECK(near(wait_quantile_ns(h, 0.99), ldexp(1, 30)));
    CHECK(near(wait_quantile_ns(h, 1), ldexp(1, 35)));
    CHECK(wait_quantile_ns(h, 0.5) > ldexp(1, 29) && wait_quantile_ns(h, 0.5) < ldexp(1, 30));

    /* Bucket 0 starts at 0: interpolated linearly up to 2^10 ns. */
    memset(h, 0, sizeof h);
    h[0] = 4;
    CHECK(near(wait_quantile_ns(h, 0.5), 512));

    /* The last bucket is open-ended: its lower bound, 2^40 ns. */
    memset(h, 0, sizeof h);
    h[WHSEM_WAIT_BUCKETS - 1] = 3;
    CHECK(near(wait_quantile_ns(h, 0.99), ldexp(1, 40)));
}

static void durations_for_people(void)
{
    static const struct {
        double ns;
        const char *text;
    } cases[] = {
        {0, "0ns"},          {999.4, "999ns"},       {999.6, "1.00us"},    {1234, "1.23us"},
        {99951, "100us"},    {999951, "1.00ms"},     {4.567e6, "4.57ms"},  {1.5e9, "1.50s"},
        {59.94e9, "59.9s"},  {59.96e9, "1m00s"},     {123e9, "2m03s"},     {3600e9, "1h00m"},
        {7380e9, "2h03m"},   {-1, "-"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        char buf[32];
        format_duration_ns(cases[k].ns, buf, sizeof buf);
        if (strcmp(buf, cases[k].text) != 0) {
            fprintf(stderr, "format_duration_ns(%g) = %s, not %s\n", cases[k].ns, buf,
                    cases[k].text);
            failures++;
        }
    }
}

static void durations_from_arguments(void)
{
    static const struct {
        const char *text;
        int64_t ms; /* -1: refused */
    } cases[] = {
        {"0", 0},          {"250", 250},       {"250ms", 250},      {"5s", 5000},
        {"1.5s", 1500},    {"0.001s", 1},      {"2m", 120000},      {"1h", 3600000},
        {"0.5h", 1800000}, {"2147483647", 2147483647},              {"2147483648", -1},
        {"596h", 2145600000},                  {"597h", -1},        {"1.5", -1},
        {"1.5ms", -1},     {"0.0001s", -1},    {"", -1},            {"s", -1},
        {"-1", -1},        {"+1", -1},         {" 1", -1},          {"1 s", -1},
        {"1e3", -1},       {"1.", -1},         {".5s", -1},         {"5d", -1},
        {"99999999999999999999999999s", -1},   {"1.0000000001s", -1},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        int64_t ms = -7;
        const char *why = NULL;
        bool ok = parse_duration_ms(cases[k].text, INT32_MAX, &ms, &why);
        if (ok != (cases[k].ms >= 0) || (ok && ms != cases[k].ms) || (!ok && (!why || !*why))) {
            fprintf(stderr, "parse_duration_ms(\"%s\") = %d, %lld, not %lld\n", cases[k].text, ok,
                    (long long)ms, (long long)cases[k].ms);
            failures++;
        }
    }
}

static void command_lines(void)
{
    size_t len = 0;
    char *args = read_cmdline(getpid(), &len);
    CHECK(args != NULL);
    if (args) {
        CHECK(len > strlen(args) && args[len - 1] == '\0');
        CHECK(strstr(args, "test_stats") != NULL || strstr(args, "stats") != NULL);
        CHECK(!is_whsem_run(args, len));
        free(args);
    }
    CHECK(read_cmdline(-5, &len) == NULL);
    CHECK(run_command_pid(getpid()) == 0); /* no child leading a group */

    static const char run[] = "/usr/bin/whsem\0run\0x\0" "1\0--\0true";
    CHECK(is_whsem_run(run, sizeof run));
    static const char other[] = "whsem\0status\0x";
    CHECK(!is_whsem_run(other, sizeof other));
    static const char alone[] = "whsem";
    CHECK(!is_whsem_run(alone, sizeof alone));

    /* Quoted so that the line reads back as the same words. */
    static const char words[] = "sh\0-c\0echo 'a b'\0\0plain\0$HOME";
    char *out = NULL;
    size_t out_len = 0;
    FILE *f = open_memstream(&out, &out_len);
    put_cmdline(f, words, sizeof words);
    put_cmdline_json(f, words, sizeof words);
    put_cmdline_json(f, NULL, 0);
    fclose(f);
    const char *want = "sh -c 'echo '\\''a b'\\''' '' plain '$HOME'"
                       "[\"sh\",\"-c\",\"echo 'a b'\",\"\",\"plain\",\"$HOME\"]null";
    if (strcmp(out, want) != 0) {
        fprintf(stderr, "put_cmdline: %s\n  not: %s\n", out, want);
        failures++;
    }
    free(out);
}

int main(void)
{
    quantiles();
    durations_for_people();
    durations_from_arguments();
    command_lines();
    if (failures) fprintf(stderr, "%d checks failed\n", failures);
    else printf("all checks passed\n");
    return failures ? 1 : 0;
}
