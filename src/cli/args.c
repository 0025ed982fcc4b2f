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

const char *parse_name_command(int argc, char **argv, const struct optdef *defs,
                                      void (*on_opt)(int id, void *ctx), void *ctx)
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
            on_opt(id, ctx);
        }
    }
    if (!name) usage_error("missing NAME");
    return name;
}
