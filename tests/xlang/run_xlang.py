#!/usr/bin/env python3
"""Cross-language proof: C, Go, Rust and C# processes share one semaphore,
through crashes.

Workers of every language (same command line, see worker.c) contend for one
name with max count 3, logging "acq"/"rel" lines with CLOCK_MONOTONIC
timestamps to one O_APPEND file. Meanwhile holders of each language, and
processes waiting asynchronously, are SIGKILLed and replaced. Afterwards the
log proves that no more than 3 ever held at once (a killed holder's interval
ends when the kill was sent: the library cannot reclaim its ticket earlier),
that every language acquired, that work went on after every kill, and the
semaphore proves that nothing is left held: all 3 tickets can be taken at
once.

    run_xlang.py --cli WHSEM --worker c=PATH --worker go=PATH ... [--soak]

Each --worker is LANG=COMMAND (the command may have arguments, e.g.
"csharp=dotnet /path/Worker.dll"). --soak runs the same mix for 60 s and
prints throughput and fairness instead of failing on them.
"""
import argparse
import json
import os
import random
import shlex
import signal
import subprocess
import sys
import tempfile
import time

MAX = 3


def now_ns():
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC)


class Worker:
    def __init__(self, lang, cmd, name, log, duration_ms, use_async):
        self.lang, self.use_async = lang, use_async
        args = cmd + ["run", "--name", name, "--max", str(MAX), "--duration-ms", str(duration_ms),
                      "--log", log, "--hold-us", "300"]
        if use_async:
            args.append("--async")
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.killed = False


def read_log(path):
    events = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            parts = line.split()
            if len(parts) == 4 and parts[0] in ("acq", "rel"):
                events.append((int(parts[3]), parts[0], int(parts[1]), parts[2]))
    return events


def last_event_of(events, pid):
    last = None
    for ev in events:
        if ev[2] == pid:
            last = ev[1]
    return last


def max_overlap(events, kill_times):
    """Most tickets held at once; a killed pid's open interval ends at its kill."""
    points = []
    open_at = {}
    for ts, what, pid, _ in sorted(events):
        if what == "acq":
            open_at[pid] = ts
            points.append((ts, 1))
        elif pid in open_at:
            del open_at[pid]
            points.append((ts, -1))
    for pid, ts in open_at.items():
        end = kill_times.get(pid)
        if end is None:
            raise AssertionError(f"pid {pid} holds a ticket at the end but was not killed")
        points.append((max(end, ts), -1))
    held = high = 0
    for _, d in sorted(points, key=lambda p: (p[0], p[1])):  # releases first on ties
        held += d
        high = max(high, held)
    return high


def run(args):
    workers_by_lang = {}
    for spec in args.worker:
        lang, _, cmd = spec.partition("=")
        workers_by_lang[lang] = shlex.split(cmd)
    langs = sorted(workers_by_lang)
    problems = []

    # --- names agree --------------------------------------------------------
    names = ["plain-name", "", "a\\b" * 120, "\u00dcn\u00efc\u00f8d\u00e9-\u540d\u524d-\U0001F512",
             "x" * 254]
    for n in names:
        got = {}
        for lang in langs:
            out = subprocess.run(workers_by_lang[lang] + ["name", n], capture_output=True, timeout=120)
            got[lang] = out.stdout.decode("utf-8", "replace").rstrip("\n")
            if out.returncode != 0:
                problems.append(f"{lang} worker 'name' failed: {out.stderr.decode(errors='replace')}")
        cli = subprocess.run([args.cli, "name", "--", n], capture_output=True, timeout=60)
        got["cli"] = cli.stdout.decode("utf-8", "replace").rstrip("\n")
        if len(set(got.values())) != 1:
            problems.append(f"finalized names of {n!r} disagree: {got}")
    print(f"names: {len(names)} names finalized identically by {', '.join(langs)} and the CLI")

    # --- contention with chaos -------------------------------------------
    duration = args.seconds
    name = f"xlang-\u00fc-{os.getpid()}-{random.randrange(1 << 30)}"
    log = tempfile.NamedTemporaryFile(prefix="whsem-xlang-", suffix=".log", delete=False).name
    kill_times, kills_by_lang, async_kills = {}, {l: 0 for l in langs}, 0
    workers = []
    deadline_ms = int(duration * 1000)

    def spawn(lang, use_async, remaining_ms):
        w = Worker(lang, workers_by_lang[lang], name, log, max(remaining_ms, 0), use_async)
        workers.append(w)
        return w

    start = time.monotonic()
    for lang in langs:
        for use_async in (False, False, True):
            spawn(lang, use_async, deadline_ms)
    kills_wanted = max(args.kills, 4 * len(langs))
    interval = duration * 0.8 / kills_wanted
    next_kill = start + interval
    k = 0
    while time.monotonic() < start + duration * 0.85 and k < kills_wanted:
        time.sleep(max(0.0, next_kill - time.monotonic()))
        next_kill += interval
        lang = langs[k % len(langs)]
        want_async_waiter = k % 5 == 4
        events = read_log(log)
        live = [w for w in workers if w.lang == lang and not w.killed and w.proc.poll() is None]
        if want_async_waiter:
            candidates = [w for w in live if w.use_async and last_event_of(events, w.proc.pid) != "acq"]
        else:
            candidates = [w for w in live if last_event_of(events, w.proc.pid) == "acq"]
        victim = random.choice(candidates or live) if (candidates or live) else None
        if victim is None:
            continue
        kill_times[victim.proc.pid] = now_ns()  # before the kill: see max_overlap
        victim.proc.send_signal(signal.SIGKILL)
        victim.proc.wait()
        victim.killed = True
        kills_by_lang[lang] += 1
        if want_async_waiter and victim in candidates:
            async_kills += 1
        k += 1
        remaining = int((start + duration - time.monotonic()) * 1000)
        spawn(lang, victim.use_async, remaining)

    for w in workers:
        try:
            w.proc.wait(timeout=duration + 120)
        except subprocess.TimeoutExpired:
            w.proc.kill()
            problems.append(f"a {w.lang} worker did not finish")
        err = w.proc.stderr.read().decode(errors="replace")
        if not w.killed and w.proc.returncode != 0:
            problems.append(f"{w.lang} worker {w.proc.pid} exited {w.proc.returncode}: {err.strip()}")

    events = read_log(log)
    high = max_overlap(events, kill_times)
    by_lang = {l: sum(1 for e in events if e[1] == "acq" and e[3] == l) for l in langs}
    total_kills = sum(kills_by_lang.values())
    acq_times = sorted(e[0] for e in events if e[1] == "acq")
    stalls = [kt for kt in kill_times.values() if not any(t > kt for t in acq_times)]

    # Nothing left held: all three at once, through nested `whsem run`.
    hold_all = [args.cli, "run", name, str(MAX), "-t", "30000", "--"] * MAX + ["true"]
    nested = subprocess.run(hold_all, capture_output=True, timeout=120)
    status = subprocess.run([args.cli, "status", name, "--json"], capture_output=True, timeout=60)
    info = json.loads(status.stdout) if status.returncode == 0 else {}
    subprocess.run([args.cli, "rm", "--force", name], capture_output=True, timeout=60)
    os.unlink(log)

    elapsed = time.monotonic() - start
    print(f"contention: {len(workers)} worker processes over {elapsed:.0f} s, max count {MAX}")
    print(f"acquisitions per language: {by_lang}")
    print(f"kills: {total_kills} ({kills_by_lang}), {async_kills} of them while waiting asynchronously")
    print(f"most tickets held at once: {high}")

    if args.soak:
        per_proc = {l: by_lang[l] / elapsed / 3 for l in langs}
        fairness = min(per_proc.values()) / max(per_proc.values()) if max(per_proc.values()) else 0
        print()
        print("| language | acquisitions/s | per process |")
        print("|---|---|---|")
        for l in langs:
            print(f"| {l} | {by_lang[l] / elapsed:.0f} | {per_proc[l]:.0f} |")
        print(f"\nfairness between languages (min/max per process): {fairness:.2f}; "
              f"kills survived: {total_kills} ({async_kills} while waiting asynchronously); "
              f"most held at once: {high} (max {MAX})")

    if high > MAX:
        problems.append(f"{high} tickets were held at once; the max count is {MAX}")
    for l, n in by_lang.items():
        if n == 0:
            problems.append(f"the {l} workers never acquired")
    if total_kills < args.kills:
        problems.append(f"only {total_kills} kills, wanted {args.kills}")
    if async_kills == 0:
        problems.append("no process was killed while waiting asynchronously")
    if stalls:
        problems.append(f"no acquisition after {len(stalls)} kill(s): work stopped")
    if nested.returncode != 0:
        problems.append(f"could not hold all {MAX} tickets at once at the end: {nested.stderr.decode(errors='replace')}")
    if info.get("free") != MAX or info.get("holders"):
        problems.append(f"left held at the end: {status.stdout.decode(errors='replace')}")
    for p in problems:
        print(f"FAIL: {p}", file=sys.stderr)
    return 1 if problems else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cli", required=True)
    ap.add_argument("--worker", action="append", required=True, help="LANG=COMMAND")
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--kills", type=int, default=20)
    ap.add_argument("--soak", action="store_true")
    args = ap.parse_args()
    if args.soak and args.seconds == 20:
        args.seconds = 60
    sys.exit(run(args))


if __name__ == "__main__":
    main()
