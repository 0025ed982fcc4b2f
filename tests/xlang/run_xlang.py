#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
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

With --backend CONNINFO the name lives on that PostgreSQL database, as if
every worker ran on a machine of its own, and the chaos adds one
pg_terminate_backend() of a holder's session per language (psql runs it):
that holder lives on, and must be told that its ticket is lost (a "lost"
line instead of "rel"). Holds are 300 ms there, so that a session is ended
while its holder still holds; its interval ends when the termination was
asked for, like a killed holder's at its kill.
"""
import argparse
import json
import os
import glob
import random
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time

MAX = 3


def now_ns():
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC)


class Worker:
    def __init__(self, lang, cmd, name, log, duration_ms, use_async, backend):
        self.lang, self.use_async = lang, use_async
        args = cmd + ["run", "--name", name, "--max", str(MAX), "--duration-ms", str(duration_ms),
                      "--log", log, "--hold-us", "300000" if backend else "300"]
        if use_async:
            args.append("--async")
        if backend:
            args += ["--backend", backend]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.killed = False


def read_log(path):
    events = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            parts = line.split()
            if len(parts) == 4 and parts[0] in ("acq", "rel", "lost"):
                events.append((int(parts[3]), parts[0], int(parts[1]), parts[2]))
    return events


def last_event_of(events, pid):
    last = None
    for ev in events:
        if ev[2] == pid:
            last = ev[1]
    return last


def max_overlap(events, kill_times, term_times):
    """Most tickets held at once; a killed pid's open interval ends at its kill,
    and an interval during which a pid's session was ended, at that moment."""
    points = []
    open_at = {}
    for ts, what, pid, _ in sorted(events):
        if what == "acq":
            open_at[pid] = ts
            points.append((ts, 1))
        elif pid in open_at:
            began = open_at.pop(pid)
            ended = [t for t in term_times.get(pid, []) if began <= t <= ts]
            points.append((min(ended) if ended else ts, -1))
    for pid, ts in open_at.items():
        end = kill_times.get(pid)
        ended = [t for t in term_times.get(pid, []) if t >= ts]
        if ended:
            end = min(ended + ([end] if end else []))
        if end is None:
            raise AssertionError(f"pid {pid} holds a ticket at the end but was not killed")
        points.append((max(end, ts), -1))
    held = high = 0
    for _, d in sorted(points, key=lambda p: (p[0], p[1])):  # releases first on ties
        held += d
        high = max(high, held)
    return high


def psql_command(backend):
    found = shutil.which("psql") or next(iter(sorted(glob.glob("/usr/lib/postgresql/*/bin/psql"), reverse=True)), None)
    if not found:
        raise SystemExit("run_xlang.py: --backend needs psql (postgresql-client)")
    return [found, "-X", "-q", "-A", "-t", "-d", backend, "-c"]


def terminate_holder(psql, pid):
    """Ends the session in which worker pid holds a ticket (its index lock,
    not its marker, which has objid -1): whether there was one."""
    sql = ("SELECT count(pg_terminate_backend(l.pid)) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
           f" WHERE a.application_name LIKE 'whsem {pid} %' AND l.locktype = 'advisory' AND l.granted"
           " AND l.objsubid = 2 AND l.objid <> 4294967295")
    out = subprocess.run(psql + [sql], capture_output=True, timeout=60)
    if out.returncode != 0:
        raise SystemExit(f"run_xlang.py: psql failed: {out.stderr.decode(errors='replace')}")
    return out.stdout.decode().strip() not in ("", "0")


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
    term_times, terms_by_lang = {}, {l: 0 for l in langs}
    workers = []
    deadline_ms = int(duration * 1000)
    cli_backend = ["--backend", args.backend] if args.backend else []
    psql = psql_command(args.backend) if args.backend else None

    def spawn(lang, use_async, remaining_ms):
        w = Worker(lang, workers_by_lang[lang], name, log, max(remaining_ms, 0), use_async, args.backend)
        workers.append(w)
        return w

    def terminate(lang):
        """Ends the session of a holder of lang that has held for at most
        20 ms of its 300 (so that it still holds when told, even on a loaded machine): whether one was."""
        give_up = time.monotonic() + 5
        while time.monotonic() < give_up:
            events = read_log(log)
            last = {}
            for ts, what, pid, _ in events:
                last[pid] = (what, ts)
            fresh = [w for w in workers if w.lang == lang and not w.killed and w.proc.poll() is None
                     and last.get(w.proc.pid, ("", 0))[0] == "acq"
                     and now_ns() - last[w.proc.pid][1] < 20_000_000]
            if fresh:
                victim = random.choice(fresh)
                t = now_ns()  # before the termination: see max_overlap
                if terminate_holder(psql, victim.proc.pid):
                    term_times.setdefault(victim.proc.pid, []).append(t)
                    terms_by_lang[lang] += 1
                    return True
            time.sleep(0.005)
        return False

    start = time.monotonic()
    for lang in langs:
        for use_async in (False, False, True):
            spawn(lang, use_async, deadline_ms)
    kills_wanted = max(args.kills, 4 * len(langs))
    # On a server, one termination per language, spread among the kills.
    terms_at = {round((i + 1) * kills_wanted / (len(langs) + 1)): langs[i] for i in range(len(langs))} if psql else {}
    due_terms = []
    interval = duration * 0.8 / kills_wanted
    next_kill = start + interval
    k = 0
    while time.monotonic() < start + duration * 0.85 and k < kills_wanted:
        time.sleep(max(0.0, next_kill - time.monotonic()))
        next_kill += interval
        if k in terms_at:
            due_terms.append(terms_at.pop(k))
        # One that found none of its language holding freshly enough (a
        # loaded machine reads the log slowly) is tried again at the next.
        due_terms = [l for l in due_terms if not terminate(l)]
        lang = langs[k % len(langs)]
        want_async_waiter = k % 5 == 4
        # The one of that kind may be busy: look again for a moment.
        look_until = time.monotonic() + 1
        while True:
            events = read_log(log)
            # Not one whose session was ended and who has yet to say it was told.
            telling = {pid for pid, ts in term_times.items()
                       if not any(e[1] == "lost" and e[2] == pid and e[0] >= max(ts) for e in events)}
            live = [w for w in workers if w.lang == lang and not w.killed and w.proc.poll() is None
                    and w.proc.pid not in telling]
            if want_async_waiter:
                candidates = [w for w in live if w.use_async and last_event_of(events, w.proc.pid) != "acq"]
            else:
                candidates = [w for w in live if last_event_of(events, w.proc.pid) == "acq"]
            if candidates or time.monotonic() >= look_until:
                break
            time.sleep(0.005)
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
    high = max_overlap(events, kill_times, term_times)
    # Told: a "lost" line of that pid after each termination of its session.
    untold = [(pid, t) for pid, ts in term_times.items() for t in ts
              if not any(e[1] == "lost" and e[2] == pid and e[0] >= t for e in events)]
    by_lang = {l: sum(1 for e in events if e[1] == "acq" and e[3] == l) for l in langs}
    total_kills = sum(kills_by_lang.values())
    acq_times = sorted(e[0] for e in events if e[1] == "acq")
    ends = list(kill_times.values()) + [t for ts in term_times.values() for t in ts]
    stalls = [kt for kt in ends if not any(t > kt for t in acq_times)]

    # Nothing left held: all three at once, through nested `whsem run`.
    hold_all = [args.cli, "run", *cli_backend, name, str(MAX), "-t", "30000", "--"] * MAX + ["true"]
    nested = subprocess.run(hold_all, capture_output=True, timeout=120)
    status = subprocess.run([args.cli, "status", *cli_backend, name, "--json"], capture_output=True, timeout=60)
    info = json.loads(status.stdout) if status.returncode == 0 else {}
    subprocess.run([args.cli, "rm", *cli_backend, "--force", name], capture_output=True, timeout=60)
    os.unlink(log)

    elapsed = time.monotonic() - start
    print(f"contention: {len(workers)} worker processes over {elapsed:.0f} s, max count {MAX}")
    print(f"acquisitions per language: {by_lang}")
    print(f"kills: {total_kills} ({kills_by_lang}), {async_kills} of them while waiting asynchronously")
    if psql:
        print(f"sessions of holders ended: {sum(terms_by_lang.values())} ({terms_by_lang}), "
              f"{len(untold)} of their holders not told")
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
    if psql:
        for l, n in terms_by_lang.items():
            if n == 0:
                problems.append(f"no session of a {l} holder was ended")
        for pid, t in untold:
            after = [f"{e[1]} +{(e[0] - t) / 1e6:.1f} ms" for e in events if e[2] == pid and e[0] >= t][:3]
            lang = next((e[3] for e in events if e[2] == pid), "?")
            problems.append(f"{lang} worker {pid} was not told that its ticket was lost "
                            f"(its session was ended; then: {', '.join(after) or 'nothing'})")
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
    ap.add_argument("--backend", help="a PostgreSQL connection string: the name lives there")
    args = ap.parse_args()
    if args.soak and args.seconds == 20:
        args.seconds = 60
    sys.exit(run(args))


if __name__ == "__main__":
    main()
