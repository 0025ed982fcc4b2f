// SPDX-License-Identifier: MIT
/*
 * Text output of the whsem commands: names shown safely on a terminal,
 * JSON strings, times.
 */
#include "cli.h"
#include "../utf8.h"

#include <inttypes.h>
#include <string.h>
#include <time.h>

/* Code points a terminal would act on instead of showing: a name must not
 * be able to forge another line, move the cursor or reorder the text. */
static bool is_unsafe_cp(uint32_t cp)
{
    return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) || (cp >= 0x202a && cp <= 0x202e) ||
           (cp >= 0x2066 && cp <= 0x2069) || cp == 0x2028 || cp == 0x2029;
}

/* Names may come from files any local user can create, so they are
 * escaped for display. Finalized names contain no '\' after "Global\",
 * which keeps the escapes unambiguous without doubling backslashes. */
void put_display(FILE *f, const char *s)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + strlen(s);
    while (*p) {
        uint32_t cp;
        size_t n = whsem__utf8_decode(p, (size_t)(end - p), &cp);
        if (n == 0) {
            fprintf(f, "\\x%02x", *p++);
        } else if (is_unsafe_cp(cp)) {
            if (cp < 0x80) fprintf(f, "\\x%02x", (unsigned)cp);
            else fprintf(f, "\\u%04x", (unsigned)cp);
            p += n;
        } else {
            fwrite(p, 1, n, f);
            p += n;
        }
    }
}

/* A JSON string; bytes that are not UTF-8 become U+FFFD so the output
 * stays valid JSON. */
void put_json_string(FILE *f, const char *s)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + strlen(s);
    fputc('"', f);
    while (*p) {
        uint32_t cp;
        size_t n = whsem__utf8_decode(p, (size_t)(end - p), &cp);
        if (n == 0) {
            fputs("\\ufffd", f);
            p++;
            continue;
        }
        if (cp == '"' || cp == '\\') fprintf(f, "\\%c", (char)cp);
        else if (cp == '\n') fputs("\\n", f);
        else if (cp == '\t') fputs("\\t", f);
        else if (is_unsafe_cp(cp)) fprintf(f, "\\u%04x", (unsigned)cp);
        else fwrite(p, 1, n, f);
        p += n;
    }
    fputc('"', f);
}

/* Local time as ISO-8601 with seconds and UTC offset, e.g.
 * 2024-05-01T12:00:00+02:00. */
void format_local_time(int64_t unix_ms, char *buf, size_t size)
{
    time_t t = (time_t)(unix_ms / 1000);
    struct tm tm;
    if (!localtime_r(&t, &tm)) {
        snprintf(buf, size, "@%" PRId64, unix_ms / 1000);
        return;
    }
    char date[32];
    strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S", &tm);
    long off = tm.tm_gmtoff;
    char sign = off < 0 ? '-' : '+';
    if (off < 0) off = -off;
    snprintf(buf, size, "%s%c%02ld:%02ld", date, sign, off / 3600, off / 60 % 60);
}

void format_ago(int64_t ms, char *buf, size_t size)
{
    if (ms < 0) {
        snprintf(buf, size, "in the future by %" PRId64 "s", -ms / 1000);
        return;
    }
    int64_t s = ms / 1000;
    if (s < 60) snprintf(buf, size, "%" PRId64 "s ago", s);
    else if (s < 3600) snprintf(buf, size, "%" PRId64 "m%02" PRId64 "s ago", s / 60, s % 60);
    else if (s < 86400) snprintf(buf, size, "%" PRId64 "h%02" PRId64 "m ago", s / 3600, s / 60 % 60);
    else snprintf(buf, size, "%" PRId64 "d%02" PRId64 "h ago", s / 86400, s / 3600 % 24);
}

void format_since(int64_t since_unix_ms, int64_t now_ms, char *buf, size_t size)
{
    if (!since_unix_ms) {
        snprintf(buf, size, "-");
        return;
    }
    char when[64], ago[48];
    format_local_time(since_unix_ms, when, sizeof when);
    format_ago(now_ms - since_unix_ms, ago, sizeof ago);
    snprintf(buf, size, "%s (%s)", when, ago);
}

int64_t now_unix_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
