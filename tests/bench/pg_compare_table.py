#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The table of pg_compare.sh, from the RESULT lines of both programs.

    pg_compare_table.py RESULTS [--redis-default-kills K]

RESULTS holds lines "RESULT <label> <key> <value>" (labels: whsem, npgsql,
pglock, redis, redis_fastwait, redis_shortlease). A key measured several
times (repetitions) is reported by its median. Prints a Markdown table,
then which of issue 15's targets libwhsem meets. Exits 1 if a cell that
should have been measured has no value (a program failed), never because
of a figure.
"""
import argparse
import statistics
import sys


def load(path):
    values = {}
    with open(path) as f:
        for line in f:
            parts = line.split()
            if len(parts) == 4 and parts[0] == "RESULT":
                values.setdefault((parts[1], parts[2]), []).append(float(parts[3]))
    return {k: statistics.median(v) for k, v in values.items()}, values


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("results")
    ap.add_argument("--redis-default-kills", type=int, default=3)
    args = ap.parse_args()
    r, runs = load(args.results)
    n = {k: len(v) for k, v in runs.items()}
    missing = []

    def get(label, key, expected=True):
        v = r.get((label, key))
        if v is None and expected and f"{label} {key}" not in missing:
            missing.append(f"{label} {key}")
        return v

    def us(v):
        return "—" if v is None else f"{v:,.0f}"

    def ms(v):
        if v is None:
            return "—"
        if v < 0:
            return "never"
        return f"{v:.2f}" if v < 10 else f"{v:,.0f}"

    def plain(v, digits=0):
        return "—" if v is None else f"{v:,.{digits}f}"

    def ratio(a, b):
        if a is None or b is None or a < 0 or b <= 0:
            return ""
        x = a / b
        # Two significant digits where two decimals would say 0.00.
        return f"{x:.2f}×" if x >= 0.1 else f"{float(f'{x:.2g}'):f}".rstrip("0") + "×"

    dk = args.redis_default_kills
    kills_w = int(r.get(("whsem", "c_kills"), 0))

    def pct_label(label):
        k = int(r.get((label, "c_kills"), 0))
        return "p99" if k >= 100 else "max"

    rows = []  # (what, whsem, pglock, redis, ratio to pglock, ratio to redis)

    def row(what, key, fmt, w=None, p="pglock", rl="redis", ratios=True, expected_redis=True, expected_pg=True):
        wv = get("whsem", key) if w is None else w
        pv = get(p, key, expected_pg) if p else None
        rv = get(rl, key, expected_redis) if rl else None
        rows.append((what, fmt(wv), fmt(pv) if p else "", fmt(rv) if rl else "",
                     ratio(wv, pv) if ratios and p else "", ratio(wv, rv) if ratios and rl else ""))

    a_reps = n.get(("whsem", "a_median_us"), 0)
    b_reps = n.get(("whsem", "b_per_s"), 0)
    row(f"(a) try-acquire + release, median µs (runs: {a_reps})", "a_median_us", us)
    row("(a) try-acquire + release, p99 µs", "a_p99_us", us)
    npg = get("npgsql", "a_median_us")
    rows.append(("(a) for scale: a raw pg_try_advisory_lock + pg_advisory_unlock pair (Npgsql, one connection), median µs",
                 "", us(npg), "", "", ""))
    row(f"(b) 8 processes holding 1 ms: acquisitions/s (ideal: 2,000 on max 2, 1,000 on max 1; runs: {b_reps})",
        "b_per_s", lambda v: plain(v))
    row("(b) fairness: smallest share / largest", "b_fairness", lambda v: plain(v, 2))
    row("(b) wait from asking to holding, p50 ms", "b_wait_p50_ms", ms)
    row("(b) wait, p99 ms", "b_wait_p99_ms", ms)
    fw_rate, fw_fair = get("redis_fastwait", "b_per_s"), get("redis_fastwait", "b_fairness")
    rows.append(("(b) Redis with its busy-wait shortened to 1–10 ms (default 10–800 ms): acquisitions/s, fairness",
                 "", "", "—" if fw_rate is None else f"{fw_rate:,.0f}, {plain(fw_fair, 2)}",
                 "", ratio(get("whsem", "b_per_s"), fw_rate)))
    redis_default = dk > 0
    row(f"(c) SIGKILL of a holder → a waiter of another process holds, p50 ms ({kills_w} kills; "
        f"Redis: default 30 s lease, {dk} kills)", "c_p50_ms", ms, expected_redis=redis_default)
    row(f"(c) … {pct_label('whsem')} ms", "c_max_ms" if pct_label("whsem") == "max" else "c_p99_ms", ms,
        expected_redis=redis_default)
    sl50, slmax = get("redis_shortlease", "c_p50_ms"), get("redis_shortlease", "c_max_ms")
    rows.append((f"(c) Redis with the shortest lease it accepts (0.1 s), {int(r.get(('redis_shortlease', 'c_kills'), 0))} kills: p50, max ms",
                 "", "", "—" if sl50 is None else f"{ms(sl50)}, {ms(slmax)}", "", ratio(get("whsem", "c_p50_ms"), sl50)))
    row("(d) server restart while every ticket is held (max 2; PostgresDistributedLock: 1 of 1), processes trying throughout: "
        "most holders at once", "d_max_holders", lambda v: plain(v), ratios=False)
    row("(d) … time with more holders than the max, ms", "d_over_ms", ms, ratios=False)
    row("(d) … from the first moment with more holders than the max to the last, ms", "d_over_window_ms", ms,
        ratios=False)
    row("(d) … restart → every old holder told (HandleLostToken / ticket watch), ms", "d_told_all_ms", ms)
    row("(d) … restart → the first acquisition that began after it, ms", "d_resumed_ms", ms)
    row("(d) … the restart itself (command until the server answers), ms", "d_restart_ms", ms, ratios=False)

    print()
    print("| | libwhsem on PostgreSQL (max 2; (c) max 1) | DistributedLock PostgresDistributedLock (max 1) | "
          "libwhsem / it | DistributedLock RedisDistributedSemaphore (max 2; (c) max 1) | libwhsem / it |")
    print("|---|---:|---:|---:|---:|---:|")
    for what, w, p, rd, rp, rr in rows:
        print(f"| {what} | {w} | {p} | {rp} | {rd} | {rr} |")
    print()

    spread = [("(a) median µs", "a_median_us", us), ("(b) acquisitions/s", "b_per_s", lambda v: plain(v)),
              ("(b) fairness", "b_fairness", lambda v: plain(v, 2))]
    labels = [("whsem", "libwhsem"), ("pglock", "PostgresDistributedLock"), ("redis", "RedisDistributedSemaphore"),
              ("npgsql", "raw Npgsql pair"), ("redis_fastwait", "Redis, busy-wait 1–10 ms")]
    if any(len(runs.get((lab, key), [])) > 1 for _, key, _ in spread for lab, _ in labels):
        print("Spread over the runs (smallest … largest):")
        print()
        print("| | " + " | ".join(name for _, name in labels) + " |")
        print("|---|" + "---:|" * len(labels))
        for what, key, fmt in spread:
            cells = []
            for lab, _ in labels:
                v = runs.get((lab, key))
                cells.append(f"{fmt(min(v))} … {fmt(max(v))}" if v else "")
            print(f"| {what} | " + " | ".join(cells) + " |")
        print()

    def verdict(ok):
        return "—" if ok is None else ("met" if ok else "NOT met")

    w = lambda k: r.get(("whsem", k))  # noqa: E731
    p = lambda k: r.get(("pglock", k))  # noqa: E731
    rd = lambda k: r.get(("redis", k))  # noqa: E731
    a_ok = None if w("a_median_us") is None or p("a_median_us") is None else w("a_median_us") <= 0.6 * p("a_median_us")
    b_ok = None if w("b_per_s") is None else (w("b_per_s") >= 1500 and (w("b_fairness") or 0) >= 0.8)
    c_rivals = [v for v in (p("c_p50_ms"), rd("c_p50_ms"), r.get(("redis_shortlease", "c_p50_ms"))) if v is not None]
    c_ok = None if w("c_p50_ms") is None else (w("c_p50_ms") <= 5 and all(w("c_p50_ms") < v for v in c_rivals))
    d_ok = None if w("d_max_holders") is None else (w("d_max_holders") <= 2 and 0 <= (w("d_told_all_ms") or -1) <= 1000)
    print("Issue 15's targets for libwhsem:")
    print(f"- (a) at most 0.6× PostgresDistributedLock's median: "
          f"{ratio(w('a_median_us'), p('a_median_us')) or '—'} → {verdict(a_ok)}")
    print(f"- (b) at least 1,500 acquisitions/s with fairness at least 0.8: "
          f"{plain(w('b_per_s'))}/s, {plain(w('b_fairness'), 2)} → {verdict(b_ok)}")
    print(f"- (c) p50 at most 5 ms and ahead of both: {ms(w('c_p50_ms'))} ms → {verdict(c_ok)}")
    print(f"- (d) never more than 2 holders, every old holder told within 1 s: "
          f"{plain(w('d_max_holders'))} holders, told after {ms(w('d_told_all_ms'))} ms → {verdict(d_ok)}")
    if missing:
        print("missing values (a program failed): " + ", ".join(missing), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
