#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Tests of `whsem top` and `whsem stats`: a contended name as top shows it
(plain frames, and the full screen in tmux), names appearing and
vanishing, the terminal given back on q, Ctrl-C and SIGTERM, the counters
of `whsem stats` and the SVG of `whsem stats --plot`.

Usage: test_top.py PATH_TO_WHSEM [unittest arguments]

Environment: WHSEM_TEST_PG_BACKEND, if set, a connection string: every
test then runs on that PostgreSQL database instead of this machine.

Nothing depends on how fast the machine is: a contended name is made by
workers that take turns with one ticket, and the tests look at frame after
frame until one shows what they expect, with a generous deadline.
"""
import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest
import xml.etree.ElementTree as ET

WHSEM = None  # from argv
BACKEND = os.environ.get("WHSEM_TEST_PG_BACKEND", "")
SETTLE = 30.0
_counter = itertools.count()
SVG = "{http://www.w3.org/2000/svg}"
PROMPTS = ("$", "#")  # sh's, for a user and for root


def unique_name(what):
    return "whsem-top-%s-%d-%d" % (what, os.getpid(), next(_counter))


def env():
    e = dict(os.environ, LC_ALL="C.UTF-8")
    if BACKEND:
        e["WHSEM_BACKEND"] = BACKEND
    else:
        e.pop("WHSEM_BACKEND", None)
    return e


def whsem(*args, **kw):
    kw.setdefault("timeout", 60)
    return subprocess.run([WHSEM] + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, env=env(), **kw)


# A row of a frame: NAME MAX FREE HOLD WAIT ACQ/s TMO/s P50 P99 PEAK [sparkline].
COLUMNS = ["max", "free", "hold", "wait", "acq", "tmo", "p50", "p99", "peak"]


def parse_row(line, name):
    """The columns of name's row in a frame line, or None if it is not that row."""
    if not line.startswith(name + " "):
        return None
    rest = line[len(name):]
    cells = rest.split()
    if len(cells) < len(COLUMNS):
        return None
    row = dict(zip(COLUMNS, cells[:len(COLUMNS)]))
    # The sparkline: what follows PEAK's cell, blanks included.
    m = re.match(r"(\s+\S+){%d} (.*)$" % len(COLUMNS), rest)
    row["spark"] = m.group(2) if m else ""
    return row


def row_in(lines, name):
    """The columns of name's row among the lines of a frame, or None."""
    for line in lines:
        r = parse_row(line, name)
        if r:
            return r
    return None


def split_frames(text):
    """The frames of top's plain output, each a list of lines."""
    frames = []
    for line in text.splitlines():
        if line.startswith("whsem top - "):
            frames.append([])
        if frames:
            frames[-1].append(line)
    return frames


def last_line(screen):
    """The last line of a screen that is not blank, stripped."""
    lines = [l.strip() for l in screen if l.strip()]
    return lines[-1] if lines else ""


def number(cell):
    try:
        return float(cell)
    except ValueError:
        return None


class Workers:
    """Processes taking turns with the one ticket of a name: each holds it
    for a moment, over and over, so that the others wait; one more only
    tries for 10 ms at a time, and times out."""

    def __init__(self, name, holders=3):
        loop = ('while :; do "$0" run "$1" 1 -- sleep 0.05 || exit; done')
        tries = ('while :; do "$0" run -t 10 -E 0 "$1" 1 -- true || exit; sleep 0.02; done')
        self.procs = [subprocess.Popen(["sh", "-c", loop, WHSEM, name], env=env(),
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                       start_new_session=True)
                      for _ in range(holders)]
        self.procs.append(subprocess.Popen(["sh", "-c", tries, WHSEM, name], env=env(),
                                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                           start_new_session=True))

    def stop(self):
        for p in self.procs:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for p in self.procs:
            p.wait(timeout=60)


class Base(unittest.TestCase):
    def setUp(self):
        self.names = []
        self.workers = []
        self.tmp = tempfile.mkdtemp(prefix="whsem-top-")
        # Cleanups run last first: this one after the tmux servers' (whose
        # sockets live in tmp) and after tearDown.
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)

    def tearDown(self):
        for w in self.workers:
            w.stop()
        for n in self.names:
            whsem("rm", "--force", "--", n)

    def name(self, what):
        n = unique_name(what)
        self.names.append(n)
        return n

    def contend(self, name):
        w = Workers(name)
        self.workers.append(w)
        return w

    def until(self, cond, what, timeout=SETTLE):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            ok, last = cond()
            if ok:
                return last
            time.sleep(0.1)
        self.fail("gave up waiting for %s; last seen:\n%s" % (what, last))

    def settled_stats(self, name):
        """`whsem stats --json` once the counters hold still (the workers
        stopped; on PostgreSQL, every process's counts flushed): two
        looks in a row that agree."""
        keys = ("acquisitions", "releases", "timeouts", "cancellations", "waits", "wait_ns",
                "hold_ns", "wait_histogram")
        last = [None]

        def check():
            r = whsem("stats", "--json", "--", name)
            if r.returncode != 0:
                return False, r.stderr
            s = json.loads(r.stdout)
            now = [s[k] for k in keys]
            same, last[0] = now == last[0], now
            return same, r.stdout
        return json.loads(self.until(check, "counters that hold still"))

    def contended_stats(self, name):
        """`whsem stats --json` once the workers have waited, timed out
        and been counted."""
        def check():
            r = whsem("stats", "--json", "--", name)
            if r.returncode != 0:
                return False, r.stderr
            s = json.loads(r.stdout)
            ok = ((s["acquisitions"] or 0) >= 10 and (s["timeouts"] or 0) >= 1
                  and s["wait_histogram"] and sum(b["count"] for b in s["wait_histogram"]) >= 5
                  and s["waiters_per_second"] and max(s["waiters_per_second"]) >= 1)
            return ok, r.stdout
        return json.loads(self.until(check, "counters of a contended name"))

    def check_contended_row(self, row):
        """What a frame must show of a contended name with max 1."""
        self.assertEqual(row["max"], "1")
        self.assertIn(row["free"], ("0", "1"))
        self.assertIn(row["hold"], ("0", "1"))
        self.assertGreaterEqual(number(row["wait"]), 1, row)
        self.assertGreater(number(row["acq"]), 0, row)
        self.assertGreater(number(row["tmo"]), 0, row)
        self.assertRegex(row["p50"], r"^[0-9.]+(ns|us|ms|s)$")
        self.assertRegex(row["p99"], r"^[0-9.]+(ns|us|ms|s)$")
        self.assertGreaterEqual(number(row["peak"]), 1, row)
        self.assertRegex(row["spark"], "[▁▂▃▄▅▆▇█]", row)

    def row_is_contended(self, row):
        return (row is not None and number(row["wait"]) and number(row["acq"])
                and number(row["tmo"]) and row["p50"] != "-")


class TestTopBatch(Base):
    """Plain frames, as top -b writes them when its output is not a terminal."""

    def frames(self, *args):
        """Starts top and yields its frames (lists of lines) as they come."""
        p = subprocess.Popen([WHSEM, "top", "-d", "200ms"] + list(args), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=env())
        self.addCleanup(lambda: (p.kill(), p.wait(), p.stdout.close(), p.stderr.close()))
        self.top = p
        frame = []
        for line in p.stdout:
            line = line.rstrip("\n")
            if line.startswith("whsem top - ") and frame:
                yield frame
                frame = []
            frame.append(line)
        if frame:
            yield frame

    def first_frame(self, frames, cond, what):
        deadline = time.monotonic() + SETTLE
        last = None
        for f in frames:
            if cond(f):
                return f
            last = f
            if time.monotonic() > deadline:
                break
        ended = self.top.poll()
        why = "" if ended is None else "; top exited with %d: %s" % (ended, self.top.stderr.read())
        self.fail("no frame showed %s%s; the last:\n%s" % (what, why, "\n".join(last or [])))

    def test_a_contended_name(self):
        name = self.name("batch")
        self.contend(name)
        self.contended_stats(name)  # counted: top shows the same
        f = self.first_frame(self.frames(), lambda f: self.row_is_contended(row_in(f, name)),
                             "the contended name with waiters and rates")
        self.assertRegex(f[0], r"^whsem top - \d\d:\d\d:\d\d - \d+ names? - ")
        self.assertIn("PostgreSQL" if BACKEND else "this machine", f[0])
        self.assertRegex(f[2], r"^NAME +MAX +FREE +HOLD +WAIT +ACQ/s +TMO/s +P50 +P99 +PEAK")
        self.check_contended_row(row_in(f, name))

    def test_count_and_order(self):
        quiet, busy = self.name("quiet"), self.name("busy")
        holder = subprocess.Popen([WHSEM, "run", quiet, "3", "--", "sleep", "300"], env=env(),
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.addCleanup(lambda: (holder.kill(), holder.wait()))
        self.contend(busy)
        self.until(lambda: (whsem("status", quiet).returncode == 0, ""), "the quiet name")

        def check():
            r = whsem("top", "-n", "3", "-d", "100ms")
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(r.stderr, "")
            frames = split_frames(r.stdout)
            self.assertEqual(len(frames), 3, r.stdout)
            last = frames[-1]
            rows = {n: row_in(last, n) for n in (quiet, busy)}
            return rows[busy] and number(rows[busy]["wait"]), (last, rows)
        last, rows = self.until(check, "a frame with the busy name waiting")
        self.assertEqual(rows[quiet]["max"], "3")
        self.assertEqual(rows[quiet]["free"], "2")
        self.assertEqual(rows[quiet]["hold"], "1")
        self.assertEqual(rows[quiet]["wait"], "0")
        # Names with waiters first, then by name.
        order = [l.split()[0] for l in last[3:] if l.strip()]
        self.assertLess(order.index(busy), order.index(quiet), last)
        # Other suites' names share the database on PostgreSQL: a line that
        # is not a row of a plain name (one with a space, say) is left out.
        waiting = [number(r["wait"]) or 0 for r in (row_in(last, n) for n in order) if r]
        self.assertEqual(waiting, sorted(waiting, reverse=True), last)

    def test_names_appear_and_vanish(self):
        name = self.name("comes-and-goes")
        frames = self.frames()
        self.first_frame(frames, lambda f: f and f[0].startswith("whsem top - "), "a first frame")
        holder = subprocess.Popen([WHSEM, "run", name, "2", "--", "sleep", "300"], env=env(),
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        f = self.first_frame(frames, lambda f: row_in(f, name) is not None, "the new name")
        self.assertEqual(row_in(f, name)["max"], "2")
        holder.kill()
        holder.wait()
        r = whsem("rm", "--force", "--", name)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.first_frame(frames, lambda f: len(f) > 2 and row_in(f, name) is None,
                         "the name gone")

    def test_top_does_not_keep_names_open(self):
        # Else `whsem rm` would refuse every name top shows.
        name = self.name("rm-while-shown")
        r = whsem("run", name, "1", "--", "true")
        self.assertEqual(r.returncode, 0, r.stderr)
        frames = self.frames()
        self.first_frame(frames, lambda f: row_in(f, name) is not None, "the name")
        next(frames)
        # top opens each name for a moment at every refresh: one of a few
        # tries may meet that moment, not all.
        for _ in range(5):
            r = whsem("rm", "--", name)
            if r.returncode == 0:
                break
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_usage_errors(self):
        for args, msg in [(["-d", "0"], "invalid delay"), (["-d", "soon"], "invalid delay"),
                          (["-n", "0"], "invalid count"), (["-n", "x"], "invalid count"),
                          (["extra"], "unexpected argument"), (["--color"], "unknown option")]:
            with self.subTest(args=args):
                r = whsem("top", *args)
                self.assertEqual(r.returncode, 2, r.stderr)
                self.assertIn(msg, r.stderr)
                self.assertIn("Usage: whsem top", r.stderr)
                self.assertEqual(r.stdout, "")

    def test_an_unreachable_backend_is_an_error(self):
        r = whsem("top", "-n", "1", "--backend", "host=/nonexistent-whsem-test dbname=x")
        self.assertEqual(r.returncode, 1)
        self.assertRegex(r.stderr, r"^whsem: WHSEM_E_\w+: .+")


def running(pid):
    """Whether pid is a process that has not ended (a zombie has)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return not f.read().rsplit(") ", 1)[-1].startswith("Z")
    except FileNotFoundError:
        return False


class Tmux:
    """A tmux server of its own, with one window of a fixed size."""

    def __init__(self, tmp, command, width=150, height=30):
        self.socket = os.path.join(tmp, "tmux")
        self.run("-f", "/dev/null", "new-session", "-d", "-x", str(width), "-y", str(height),
                 "-e", "LC_ALL=C.UTF-8",
                 *(["-e", "WHSEM_BACKEND=" + BACKEND] if BACKEND else []),
                 command)
        self.run("set-option", "-g", "remain-on-exit", "on")

    def run(self, *args):
        r = subprocess.run(["tmux", "-S", self.socket] + list(args), stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, timeout=60)
        if r.returncode != 0:
            raise AssertionError("tmux %s: %s" % (" ".join(args), r.stderr))
        return r.stdout

    def screen(self):
        return self.run("capture-pane", "-p").splitlines()

    def show(self, fmt):
        return self.run("display-message", "-p", fmt).strip()

    def processes(self):
        """The pane's process and its descendants (top, or a shell and its top)."""
        try:
            todo = [int(self.show("#{pane_pid}"))]
        except (AssertionError, ValueError):
            return []
        found = []
        while todo:
            pid = todo.pop()
            found.append(pid)
            r = subprocess.run(["pgrep", "-P", str(pid)], stdout=subprocess.PIPE, text=True)
            todo += [int(x) for x in r.stdout.split()]
        return found

    def kill(self):
        pids = self.processes()
        r = subprocess.run(["tmux", "-S", self.socket, "kill-server"], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, timeout=60)
        if r.returncode != 0:
            raise AssertionError("tmux kill-server: " + r.stdout)
        # The terminal is gone: SIGHUP must end top, however long a
        # refresh takes. One that outlives it is killed, and is a failure.
        deadline = time.monotonic() + 20
        alive = pids
        while alive and time.monotonic() < deadline:
            time.sleep(0.1)
            alive = [p for p in alive if running(p)]
        for p in alive:
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if alive:
            raise AssertionError("processes %s outlived their terminal by 20 s" % alive)


class TestTopScreen(Base):
    """The full screen, in a terminal that tmux emulates (.ci/setup
    installs tmux: without it these tests fail, they do not skip)."""

    def start(self, width=150, height=30, shell=False):
        # In a shell, to see what top leaves behind; else top alone.
        cmd = "sh" if shell else "%s top -d 200ms" % WHSEM
        t = Tmux(self.tmp, cmd, width, height)
        self.addCleanup(t.kill)
        return t

    def screen_until(self, t, cond, what):
        def check():
            s = t.screen()
            return cond(s), "\n".join(s)
        return self.until(check, what).splitlines()

    def test_a_contended_name(self):
        name = self.name("screen")
        self.contend(name)
        self.contended_stats(name)
        t = self.start()
        s = self.screen_until(t, lambda s: self.row_is_contended(row_in(s, name)),
                              "the contended name on the screen")
        self.assertRegex(s[0], r"^whsem top - .* - q quits$")
        self.check_contended_row(row_in(s, name))
        self.assertEqual(t.show("#{alternate_on}"), "1")
        self.assertEqual(t.show("#{cursor_flag}"), "0")
        t.run("send-keys", "q")
        self.until(lambda: (t.show("#{pane_dead}") == "1", "\n".join(t.screen())),
                   "top to quit on q")
        # (Its exit status: test_q_restores_the_terminal, through a shell;
        # tmux does not always tell a dead pane's. Nor its cursor: tmux
        # hides that of a dead pane itself.)
        self.assertEqual(t.show("#{alternate_on}"), "0")

    def test_resize(self):
        name = self.name("resize")
        self.contend(name)
        t = self.start(150, 30)
        s = self.screen_until(t, lambda s: row_in(s, name) is not None, "the name")
        self.assertIn("WAITERS, LAST MINUTE", s[2])
        # Too narrow for the sparkline: it goes; what does not fit is cut
        # at the edge, no line wraps onto the next.
        t.run("resize-window", "-x", "100", "-y", "10")
        s = self.screen_until(t, lambda s: len(s) > 2 and s[2].startswith("NAME")
                              and "WAITERS" not in s[2] and row_in(s, name) is not None,
                              "a frame for 100 columns")
        self.assertLessEqual(len(s), 10, s)
        self.assertTrue(all(len(l) <= 100 for l in s), s)
        self.assertEqual(row_in(s, name)["max"], "1")
        for line in s[3:]:
            cells = line.split()
            self.assertTrue(not cells or len(cells) >= len(COLUMNS) + 1 or
                            re.match(r"^\(\d+ more\)$", line), s)
        t.run("resize-window", "-x", "150", "-y", "30")
        self.screen_until(t, lambda s: len(s) > 2 and "WAITERS, LAST MINUTE" in s[2],
                          "the wide frame again")

    def check_restored(self, t, status):
        """After top, the shell's terminal is as before: prompt, echo, lines.
        status None: the shell drops the rest of the line (after Ctrl-C),
        so its prompt is all there is to wait for."""
        if status is None:
            self.screen_until(t, lambda s: len(s) > 1 and last_line(s) in PROMPTS,
                              "the prompt again")
        else:
            self.screen_until(t, lambda s: "status=%d" % status in [l.strip() for l in s]
                              and last_line(s) in PROMPTS,
                              "the shell to report top's exit status %d" % status)
        self.assertEqual(t.show("#{alternate_on}"), "0")
        self.assertEqual(t.show("#{cursor_flag}"), "1")
        n = next(_counter)
        out = os.path.join(self.tmp, "stty-%d" % n)
        t.run("send-keys", "-l", "stty -a > %s; echo stty-done-%d\n" % (out, n))
        # The line echo prints, not the typed one that contains it.
        self.screen_until(t, lambda s: "stty-done-%d" % n in [l.strip() for l in s], "stty")
        with open(out) as f:
            modes = f.read().split()
        self.assertIn("icanon", modes)
        self.assertIn("echo", modes)
        # What was typed shows: echo is back.
        t.run("send-keys", "-l", "echo typed-$((%d*7))\n" % n)
        self.screen_until(t, lambda s: "typed-%d" % (n * 7) in [l.strip() for l in s], "echo")

    def run_top_from_shell(self):
        t = self.start(shell=True)
        self.screen_until(t, lambda s: bool(s) and s[0] in PROMPTS, "the shell's prompt")
        t.run("send-keys", "-l", "sh -c 'echo $$ > %s/top.pid; exec %s top -d 200ms';"
              " echo status=$?\n" % (self.tmp, WHSEM))
        pidfile = os.path.join(self.tmp, "top.pid")
        self.until(lambda: (os.path.exists(pidfile) and os.path.getsize(pidfile) > 0, ""),
                   "top to start")
        self.screen_until(t, lambda s: bool(s) and s[0].startswith("whsem top - "), "top's screen")
        self.assertEqual(t.show("#{alternate_on}"), "1")
        with open(pidfile) as f:
            return t, int(f.read())

    def test_q_restores_the_terminal(self):
        t, _ = self.run_top_from_shell()
        t.run("send-keys", "q")
        self.check_restored(t, 0)

    def test_ctrl_c_restores_the_terminal(self):
        t, _ = self.run_top_from_shell()
        t.run("send-keys", "C-c")
        self.check_restored(t, None)

    def test_ctrl_z_gives_the_terminal_back_until_fg(self):
        t, _ = self.run_top_from_shell()
        t.run("send-keys", "C-z")
        # The shell goes on with the line: top's status is its stop signal's.
        self.check_restored(t, 128 + signal.SIGTSTP)
        t.run("send-keys", "-l", "fg\n")
        self.screen_until(t, lambda s: bool(s) and s[0].startswith("whsem top - "),
                          "top's screen again")
        self.assertEqual(t.show("#{alternate_on}"), "1")
        t.run("send-keys", "q")
        self.check_restored(t, None)

    def test_sigterm_restores_the_terminal(self):
        t, pid = self.run_top_from_shell()
        os.kill(pid, signal.SIGTERM)
        self.check_restored(t, 128 + signal.SIGTERM)


class TestStats(Base):
    def test_text_and_json(self):
        name = self.name("stats")
        w = self.contend(name)
        self.contended_stats(name)
        w.stop()
        s = self.settled_stats(name)
        self.assertEqual(s["name"], "Global\\" + name)
        self.assertEqual(s["max"], 1)
        self.assertGreater(s["created_unix_ms"], 0)
        self.assertGreaterEqual(s["acquisitions"], 10)
        self.assertGreaterEqual(s["timeouts"], 1)
        # Every wait, however it ended, is in the histogram.
        self.assertEqual(s["waits"], sum(b["count"] for b in s["wait_histogram"]))
        self.assertGreater(s["wait_ns"], 0)
        self.assertLessEqual(0, s["wait_p50_ns"])
        self.assertLessEqual(s["wait_p50_ns"], s["wait_p99_ns"])
        self.assertEqual(len(s["wait_histogram"]), 32)
        self.assertEqual(s["wait_histogram"][0]["from_ns"], 0)
        self.assertEqual(s["wait_histogram"][1]["from_ns"], 1024)
        self.assertIsNone(s["wait_histogram"][-1]["to_ns"])
        self.assertGreaterEqual(len(s["waiters_per_second"]), 60)
        r = whsem("stats", name)
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = dict(re.match(r"^([a-z0-9 ]+):\s*(.*)$", l).groups()
                     for l in r.stdout.splitlines() if re.match(r"^[a-z]", l))
        self.assertEqual(lines["name"], "Global\\" + name)
        self.assertEqual(lines["max"], "1")
        self.assertEqual(int(lines["acquisitions"]), s["acquisitions"])
        self.assertEqual(int(lines["timeouts"]), s["timeouts"])
        self.assertEqual(int(lines["waits"]), s["waits"])
        self.assertRegex(lines["wait p50"], r"^[0-9.]+(ns|us|ms|s)$")
        self.assertRegex(lines["wait p99"], r"^[0-9.]+(ns|us|ms|s)$")
        self.assertRegex(r.stdout, r"\n  \S.* +\d+ #+\n")  # a bar of the histogram
        self.assertRegex(lines["waiters"], r"^the last \d+ s, most [1-9]")

    def test_plot(self):
        name = self.name("plot <&> \"svg\"")
        w = self.contend(name)
        self.contended_stats(name)
        w.stop()
        s = self.settled_stats(name)  # to compare the picture with
        path = os.path.join(self.tmp, "waits.svg")
        r = whsem("stats", "--plot", path, "--", name)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, "")
        root = ET.parse(path).getroot()
        self.assertEqual(root.tag, SVG + "svg")

        def texts(cls=None):
            return [e.text or "" for e in root.iter(SVG + "text")
                    if cls is None or cls in (e.get("class") or "").split()]

        def elems(tag, cls):
            return [e for e in root.iter(SVG + tag) if cls in (e.get("class") or "").split()]

        title = texts("title")
        self.assertEqual(len(title), 1)
        self.assertIn("Global\\" + name, title[0])
        self.assertIn("max 1", title[0])
        self.assertIn("Global\\" + name, root.find(SVG + "title").text)
        axis_titles = texts("axis-title")
        for t in ("wait time (log scale)", "waits", "waiters", "time (seconds before now)"):
            self.assertIn(t, axis_titles)
        ticks = texts("tick-label")
        for t in ("1µs", "10µs", "100µs", "1ms", "10ms", "100ms", "1s", "10s"):
            self.assertIn(t, ticks)
        self.assertIn("now", ticks)
        self.assertTrue([t for t in ticks if re.match(r"^-\d+s$", t)], ticks)
        self.assertEqual(len(elems("line", "axis")), 4)  # x and y of both panels
        bars = elems("rect", "bar")
        self.assertTrue(bars)
        self.assertLessEqual(len(bars), 32)
        for b in bars:
            self.assertGreater(float(b.get("height")), 0)
            self.assertGreater(float(b.get("width")), 0)
        # One bar a bucket that counts waits, the tallest the fullest.
        counts = [x["count"] for x in s["wait_histogram"]]
        self.assertEqual(len(bars), len([c for c in counts if c]))
        tallest = max(bars, key=lambda b: float(b.get("height")))
        self.assertTrue(tallest.find(SVG + "title").text.endswith(": %d" % max(counts)))
        self.assertTrue(elems("rect", "waiters"))
        for q in ("p50", "p99"):
            self.assertEqual(len(elems("line", q)), 1, q)
            label = [t for t in texts(q)]
            self.assertEqual(len(label), 1)
            self.assertRegex(label[0], r"^%s [0-9.]+(ns|us|ms|s)$" % q)
        x50 = float(elems("line", "p50")[0].get("x1"))
        x99 = float(elems("line", "p99")[0].get("x1"))
        self.assertLessEqual(x50, x99)

        r = whsem("stats", "--plot=-", name)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(ET.fromstring(r.stdout).tag, SVG + "svg")

    def test_errors(self):
        name = self.name("stats-errors")
        r = whsem("stats", name)
        self.assertEqual(r.returncode, 1)
        self.assertIn("no semaphore named 'Global\\%s'" % name, r.stderr)
        self.assertEqual(whsem("run", name, "1", "--", "true").returncode, 0)
        for args, msg in [(["--plot", "x.png"], "must end in .svg"),
                          (["--plot"], "needs a value"),
                          (["--json", "--plot", "x.svg"], "cannot be used together")]:
            with self.subTest(args=args):
                r = whsem("stats", name, *args)
                self.assertEqual(r.returncode, 2, r.stderr)
                self.assertIn(msg, r.stderr)
        r = whsem("stats", name, "--plot", os.path.join(self.tmp, "no", "such", "dir.svg"))
        self.assertEqual(r.returncode, 1)
        self.assertIn("cannot write", r.stderr)


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    WHSEM = os.path.abspath(sys.argv[1])
    unittest.main(argv=[sys.argv[0]] + sys.argv[2:], verbosity=2)
