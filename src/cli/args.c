// SPDX-License-Identifier: MIT
/*
 * Argument parsing shared by the whsem commands: options before or after
 * positionals, GNU-style long options, "--".
 */
#include "cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

bool parse_int(const char *s, long min, long max, long *out)
{
    const char *digits = s[0] == '-' ? s + 1 : s;
    if (digits[0] < '0' || digits[0] > '9') return false;
    errno = 0;
    char *end;
    long v = strtol(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max) return false;
    *out = v;
    return true;
}

bool parse_duration_ms(const char *s, int64_t max_ms, int64_t *out, const char **why)
{
    static const struct {
        const char *name;
        int64_t ms;
    } units[] = {{"", 1}, {"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}};
    const char *p = s;
    int64_t whole = 0, frac = 0, scale = 1;
    if (*p < '0' || *p > '9') {
        *why = "it does not start with a digit";
        return false;
    }
    /* Digits past what any limit allows are refused below, not wrapped. */
    for (; *p >= '0' && *p <= '9'; p++)
        if ((whole = whole * 10 + (*p - '0')) > max_ms) whole = max_ms + 1;
    if (*p == '.') {
        p++;
        if (*p < '0' || *p > '9') {
            *why = "a '.' must be followed by digits";
            return false;
        }
        for (; *p >= '0' && *p <= '9'; p++) {
            if (scale >= INT64_C(1000000000)) {
                *why = "it has more decimals than a millisecond needs";
                return false;
            }
            frac = frac * 10 + (*p - '0');
            scale *= 10;
        }
    }
    int64_t unit = 0;
    for (size_t k = 0; k < sizeof units / sizeof units[0]; k++)
        if (strcmp(p, units[k].name) == 0) unit = units[k].ms;
    if (!unit) {
        *why = "its unit is not one of ms, s, m, h";
        return false;
    }
    if (scale > 1 && !*p) {
        *why = "a fraction needs a unit";
        return false;
    }
    if ((frac * unit) % scale != 0) {
        *why = "it is not a whole number of milliseconds";
        return false;
    }
    if (whole > max_ms / unit || whole * unit + frac * unit / scale > max_ms) {
        *why = "it is too long";
        return false;
    }
    *out = whole * unit + frac * unit / scale;
    return true;
}

int next_arg(char **argv, int argc, int *i, const struct optdef *defs, const char **arg)
{
    const char *a = argv[*i];
    (*i)++;
    *arg = NULL;
    if (strcmp(a, "--") == 0) return -1;
    if (a[0] != '-' || a[1] == '\0') {
        *arg = a;
        return 0;
    }
    if (a[1] == '-') {
        const char *body = a + 2;
        const char *eq = strchr(body, '=');
        size_t n = eq ? (size_t)(eq - body) : strlen(body);
        for (const struct optdef *d = defs; d->id; d++) {
            if (!d->long_name || strlen(d->long_name) != n || strncmp(d->long_name, body, n) != 0)
                continue;
            if (!d->has_arg) {
                if (eq) usage_error("option '--%s' takes no value", d->long_name);
                return d->id;
            }
            if (eq) *arg = eq + 1;
            else if (*i < argc) *arg = argv[(*i)++];
            else usage_error("option '--%s' needs a value", d->long_name);
            return d->id;
        }
        usage_error("unknown option '%s'", a);
    }
    for (const struct optdef *d = defs; d->id; d++) {
        if (d->short_name != a[1]) continue;
        if (!d->has_arg) {
            if (a[2]) usage_error("unknown option '%s'", a);
            return d->id;
        }
        if (a[2]) *arg = a + 2;
        else if (*i < argc) *arg = argv[(*i)++];
        else usage_error("option '-%c' needs a value", d->short_name);
        return d->id;
    }
    usage_error("unknown option '%s'", a);
}

const char *parse_name_command_args(int argc, char **argv, const struct optdef *defs,
                                    void (*on_opt)(int id, const char *arg, void *ctx), void *ctx)
{
    const char *name = NULL;
    int i = 1;
    bool only_positionals = false;
    while (i < argc) {
        const char *arg;
        int id;
        if (only_positionals) {
            arg = argv[i++];
            id = 0;
        } else {
            id = next_arg(argv, argc, &i, defs, &arg);
        }
        if (id == -1) {
            only_positionals = true;
        } else if (id == 0) {
            if (name) usage_error("unexpected argument '%s'", arg);
            name = arg;
        } else if (id == OPT_HELP) {
            show_help(current_cmd);
            exit(0);
        } else if (id == OPT_BACKEND) {
            set_backend(arg);
        } else {
            on_opt(id, arg, ctx);
        }
    }
    if (!name) usage_error("missing NAME");
    return name;
}

struct id_only {
    void (*on_opt)(int id, void *ctx);
    void *ctx;
};

static void drop_arg(int id, const char *arg, void *ctx)
{
    (void)arg;
    struct id_only *o = ctx;
    o->on_opt(id, o->ctx);
}

const char *parse_name_command(int argc, char **argv, const struct optdef *defs,
                               void (*on_opt)(int id, void *ctx), void *ctx)
{
    struct id_only o = {on_opt, ctx};
    return parse_name_command_args(argc, argv, defs, drop_arg, &o);
}
