#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Tests of the whsem command-line tool.

Usage: test_cli.py PATH_TO_WHSEM [unittest arguments]

Every test uses its own semaphore name and removes it afterwards. Nothing
here depends on how fast the machine is: conditions are polled with
generous deadlines, and no test asserts that something was quick.
"""
import errno
import itertools
import json
import os
import pty
import re
import select
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
import unittest

WHSEM = None  # set from argv in __main__
_counter = itertools.count()

# Deadlines for polling; far longer than anything should take.
SETTLE = 20.0
PROC_TIMEOUT = 60.0


def unique_name():
    return "whsem-cli-test-%d-%d" % (os.getpid(), next(_counter))


def proc_state(pid):
    """The state letter of a process, or None once it is gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            data = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return data[data.rindex(")") + 2]


class CliTestCase(unittest.TestCase):
    # The database the commands use (test_cli_pg.py sets it), or None for
    # this machine.
    BACKEND = None

    def setUp(self):
        self.name = unique_name()
        self.final = "Global\\" + self.name
        self.names = [self.name]
        self.tmp = tempfile.mkdtemp(prefix="whsem-cli-")
        self.procs = []

    def tearDown(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
            p.wait(timeout=PROC_TIMEOUT)
            p.err_file.close()
        for name in self.names:
            r = self.whsem("rm", "--force", "--", name)
            if r.returncode != 0:
                self.assertIn("no semaphore named", r.stderr)
        shutil.rmtree(self.tmp, ignore_errors=True)

    # ---- helpers ----

    def path(self, leaf):
        return os.path.join(self.tmp, leaf)

    def env(self, kw):
        if self.BACKEND and "env" not in kw:
            kw["env"] = dict(os.environ, WHSEM_BACKEND=self.BACKEND)
        return kw

    def whsem(self, *args, **kw):
        kw.setdefault("timeout", PROC_TIMEOUT)
        return subprocess.run([WHSEM] + list(args), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, **self.env(kw))

    def start(self, *args, **kw):
        """Starts whsem in the background; stderr goes to a file."""
        self.env(kw)
        err = open(self.path("stderr-%d" % next(_counter)), "w+")
        p = subprocess.Popen([WHSEM] + list(args), stdout=subprocess.DEVNULL,
                             stderr=err, **kw)
        p.err_file = err
        self.procs.append(p)
        return p

    def stderr_of(self, p):
        p.err_file.seek(0)
        return p.err_file.read()

    def wait_until(self, cond, what, timeout=SETTLE):
        deadline = time.monotonic() + timeout
        while True:
            v = cond()
            if v:
                return v
            if time.monotonic() > deadline:
                self.fail("gave up waiting for: " + what)
            time.sleep(0.05)

    def status_json(self, name=None):
        r = self.whsem("status", "--json", "--", name or self.name)
        if r.returncode != 0:
            return None
        return json.loads(r.stdout)

    def wait_for_status(self, pred, what, name=None):
        def check():
            s = self.status_json(name)
            return s if s is not None and pred(s) else None
        return self.wait_until(check, what)

    def start_holder(self, max_count=1, name=None):
        """A background `whsem run` that holds a ticket until killed."""
        p = self.start("run", name or self.name, str(max_count), "--", "sleep", "300")
        self.wait_for_status(lambda s: any(h["pid"] == p.pid for h in s["holders"]),
                             "the holder to hold its ticket", name)
        return p

    def stop_holder(self, p):
        p.terminate()  # forwarded to sleep, which dies of it
        self.assertEqual(p.wait(timeout=PROC_TIMEOUT), 128 + signal.SIGTERM)


class TestUsage(CliTestCase):
    def test_help_everywhere(self):
        cases = [["--help"], ["-h"], ["help"], ["help", "--help"]]
        for cmd in ["run", "status", "list", "rm", "prune", "name"]:
            cases += [[cmd, "--help"], [cmd, "-h"], ["help", cmd]]
        for args in cases:
            with self.subTest(args=args):
                r = self.whsem(*args)
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertIn("Usage: whsem", r.stdout)
                self.assertEqual(r.stderr, "")
        r = self.whsem("run", "--help")
        self.assertIn("descriptor", r.stdout)  # the inherited liveness fd
        self.assertIn("SIGTSTP", r.stdout)     # the job-control decision
        self.assertIn("--kill-after", r.stdout)
        self.assertIn("--no-kill", r.stdout)
        # --help among run's options, before the command
        r = self.whsem("run", self.name, "1", "--help", "--", "true")
        self.assertEqual(r.returncode, 0)
        self.assertIn("Usage: whsem run", r.stdout)

    def test_version(self):
        for flag in ["--version", "-V"]:
            r = self.whsem(flag)
            self.assertEqual(r.returncode, 0)
            self.assertRegex(r.stdout, r"^whsem \(libwhsem\) \d+\.\d+\.\d+\n$")

    def test_usage_errors_exit_2(self):
        n = self.name
        cases = [
            [], ["bogus"], ["--bogus"], ["-x"],
            ["run"], ["run", n], ["run", n, "2"], ["run", n, "2", "--"],
            ["run", "--", n, "2", "true"],
            ["run", n, "0", "--", "true"], ["run", n, "-1", "--", "true"],
            ["run", n, "abc", "--", "true"], ["run", n, "2x", "--", "true"],
            ["run", n, " 2", "--", "true"], ["run", n, "+2", "--", "true"],
            ["run", n, "", "--", "true"], ["run", n, "2147483648", "--", "true"],
            ["run", n, "99999999999999999999999", "--", "true"],
            ["run", n, "2", "-t", "-5", "--", "true"],
            ["run", n, "2", "-t", "1.5", "--", "true"],
            ["run", n, "2", "-t", "1.5ms", "--", "true"],
            ["run", n, "2", "-t", "5x", "--", "true"],
            ["run", n, "2", "-t", "5 s", "--", "true"],
            ["run", n, "2", "-t", "-2s", "--", "true"],
            ["run", n, "2", "-t", "25d", "--", "true"],
            ["run", n, "2", "-t", "597h", "--", "true"],
            ["run", n, "2", "--mode", "0500", "--", "true"],
            ["run", n, "2", "--mode", "0644x", "--", "true"],
            ["run", n, "2", "--mode=888", "--", "true"],
            ["run", n, "2", "--mode=1777", "--", "true"],
            ["run", n, "2", "--mode=", "--", "true"],
            ["run", n, "2", "--mode"],
            ["run", n, "2", "--mode", "0666", "--backend", "host=/nonexistent", "--", "true"],
            ["run", n, "2", "-t", "", "--", "true"],
            ["run", n, "2", "-t", "2147483648", "--", "true"],
            ["run", n, "2", "-t"],
            ["run", n, "2", "-E", "256", "--", "true"],
            ["run", n, "2", "-E", "x", "--", "true"],
            ["run", n, "2", "--bogus", "--", "true"],
            ["run", n, "2", "--exact=1", "--", "true"],
            ["run", n, "2", "-k", "x", "--", "true"],
            ["run", n, "2", "-k", "-1", "--", "true"],
            ["run", n, "2", "--kill-after=", "--", "true"],
            ["run", n, "2", "--kill-after=5y", "--", "true"],
            ["run", n, "2", "--kill-after=1.5", "--", "true"],
            ["run", n, "2", "--kill-after=2147484s", "--", "true"],
            ["run", n, "2", "--kill-after=2147483648", "--", "true"],
            ["run", n, "2", "--no-kill=1", "--", "true"],
            ["run", n, "2", "--no-kill", "-k", "5", "--", "true"],
            ["status"], ["status", n, "other"], ["status", n, "--bogus"],
            ["list", "x"], ["list", "-l", "x"], ["list", "--bogus"], ["list", "--json=1"],
            ["prune", "--bogus"], ["prune", "--dry-run=1"],
            ["rm"], ["rm", n, "--bogus"], ["rm", "--force=yes", n],
            ["name"], ["name", "a", "b"], ["help", "bogus"],
        ]
        for args in cases:
            with self.subTest(args=args):
                r = self.whsem(*args)
                self.assertEqual(r.returncode, 2, r.stderr)
                self.assertIn("Usage: whsem", r.stderr)
                self.assertEqual(r.stdout, "")
        # None of the rejected runs may have created the semaphore.
        r = self.whsem("status", n)
        self.assertEqual(r.returncode, 1, r.stdout)


class TestRun(CliTestCase):
    def test_exit_status_propagates(self):
        n = self.name
        self.assertEqual(self.whsem("run", n, "2", "--", "true").returncode, 0)
        self.assertEqual(self.whsem("run", n, "2", "--", "sh", "-c", "exit 3").returncode, 3)
        self.assertEqual(self.whsem("run", n, "2", "--", "sh", "-c", "kill -TERM $$").returncode,
                         128 + signal.SIGTERM)
        self.assertEqual(self.whsem("run", n, "2", "--", "sh", "-c", "kill -KILL $$").returncode,
                         128 + signal.SIGKILL)
        # flock(1) style, without "--"
        self.assertEqual(self.whsem("run", n, "2", "sh", "-c", "exit 4").returncode, 4)
        # every ticket came back
        s = self.status_json()
        self.assertEqual((s["max"], s["free"], s["holders"]), (2, 2, []))

    def test_exit_status_with_sigchld_ignored(self):
        # An inherited SIG_IGN must not let the kernel reap the command
        # (its status would be lost); the command still inherits it.
        def ignore_sigchld():
            signal.signal(signal.SIGCHLD, signal.SIG_IGN)
        r = self.whsem("run", self.name, "1", "--", sys.executable, "-c",
                       "import signal, sys; print(signal.getsignal(signal.SIGCHLD) is "
                       "signal.SIG_IGN); sys.exit(3)", preexec_fn=ignore_sigchld)
        self.assertEqual((r.returncode, r.stdout), (3, "True\n"), r.stderr)

    def test_arguments_reach_the_command_verbatim(self):
        r = self.whsem("run", self.name, "1", "-t", "5000", "--", "printf", "%s|",
                       "a", "-t", "--", "b c", "--help", "")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, "a|-t|--|b c|--help||")

    def test_command_not_found_or_not_executable(self):
        r = self.whsem("run", self.name, "1", "--", "whsem-no-such-command-xyz")
        self.assertEqual(r.returncode, 127)
        self.assertIn("whsem-no-such-command-xyz", r.stderr)
        r = self.whsem("run", self.name, "1", "--", self.path("missing/cmd"))
        self.assertEqual(r.returncode, 127)
        plain = self.path("not-executable")
        with open(plain, "w") as f:
            f.write("#!/bin/sh\nexit 0\n")
        os.chmod(plain, 0o644)
        r = self.whsem("run", self.name, "1", "--", plain)
        self.assertEqual(r.returncode, 126, r.stderr)
        self.assertIn("not-executable", r.stderr)
        r = self.whsem("run", self.name, "1", "--", self.tmp)  # a directory
        self.assertEqual(r.returncode, 126, r.stderr)
        s = self.status_json()
        self.assertEqual(s["free"], 1)  # released after each failure

    def test_command_inherits_the_liveness_descriptor(self):
        # The directory listing's own descriptor is gone by the time it is
        # stat'ed: only the descriptors that stay open are looked at.
        r = self.whsem("run", self.name, "1", "--", "sh", "-c",
                       'for f in /proc/$$/fd/*; do stat -L -c "%d:%i" "$f" 2>/dev/null; done; true')
        self.assertEqual(r.returncode, 0, r.stderr)
        # The segment of a plain name lives at /dev/shm/whsem.NAME.
        seg = os.stat("/dev/shm/whsem." + self.name)
        self.assertIn("%d:%d" % (seg.st_dev, seg.st_ino), r.stdout.split())

    def test_max_count_mismatch_is_a_library_error(self):
        # While a live process has it open with max 2, max 3 is an error.
        holder = self.start_holder(max_count=2)
        r = self.whsem("run", self.name, "3", "--", "touch", self.path("ran"))
        self.stop_holder(holder)
        self.assertEqual(r.returncode, 125)
        self.assertRegex(r.stderr, r"^whsem: WHSEM_E_MAX_COUNT_MISMATCH: .+")
        self.assertFalse(os.path.exists(self.path("ran")))
        # Once nobody has it open, the new max count replaces it.
        r = self.whsem("run", self.name, "3", "--", "touch", self.path("ran"))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.status_json()["max"], 3)

    def test_exact_names(self):
        r = self.whsem("run", self.final, "1", "--exact", "--", "true")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.status_json()["name"], self.final)
        r = self.whsem("run", self.name, "1", "--exact", "--", "true")
        self.assertEqual(r.returncode, 125)
        self.assertIn("WHSEM_E_INVALID_NAME", r.stderr)

    def test_at_most_max_run_at_once_and_all_run(self):
        active = self.path("active")
        done = self.path("done")
        os.mkdir(active)
        os.mkdir(done)
        log = self.path("log")
        # Each job marks itself active while it holds the ticket and samples
        # how many are active. It waits (up to 10 s) to see a partner so
        # that the run is known to have exercised two at once.
        job = r'''
            d=$1; me=$2
            mkdir "$d/active/$me"
            n() { ls -A "$d/active" | wc -l; }
            echo "$(n)" >> "$d/log"
            i=0
            while [ "$(n)" -lt 2 ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done
            for k in 1 2 3 4 5 6; do echo "$(n)" >> "$d/log"; sleep 0.05; done
            rmdir "$d/active/$me"
            mkdir "$d/done/$me"
        '''
        jobs = [self.start("run", self.name, "2", "--", "sh", "-c", job, "sh", self.tmp, str(k))
                for k in range(6)]
        for p in jobs:
            self.assertEqual(p.wait(timeout=180), 0, self.stderr_of(p))
        self.assertEqual(sorted(os.listdir(done)), [str(k) for k in range(6)])
        self.assertEqual(os.listdir(active), [])
        with open(log) as f:
            samples = [int(line) for line in f]
        self.assertEqual(len(samples), 6 * 7)
        self.assertLessEqual(max(samples), 2, samples)
        self.assertEqual(max(samples), 2, samples)
        self.assertGreaterEqual(min(samples), 1)
        s = self.status_json()
        self.assertEqual((s["free"], s["waiters"], s["holders"]), (2, 0, []))


class TestTimeout(CliTestCase):
    def test_timeouts(self):
        holder = self.start_holder(1)
        ran = self.path("ran")
        msg = "whsem: timed out after %d ms waiting for a ticket of '%s' (max 1)\n"

        r = self.whsem("run", self.name, "1", "-t", "200", "--", "touch", ran)
        self.assertEqual(r.returncode, 75)
        self.assertEqual(r.stderr, msg % (200, self.final))
        # 75 is whsem's own choice, and the help says so (flock -w exits 1).
        r = self.whsem("run", "--help")
        self.assertRegex(r.stdout, r"75 is EX_TEMPFAIL from sysexits\.h, chosen by whsem")
        self.assertNotIn("as flock(1) uses", r.stdout)

        r = self.whsem("run", self.name, "1", "-t", "200", "-E", "9", "--", "touch", ran)
        self.assertEqual(r.returncode, 9)
        self.assertEqual(r.stderr, msg % (200, self.final))

        r = self.whsem("run", self.name, "1", "--timeout=150", "--timeout-exit-code=0",
                       "--", "touch", ran)
        self.assertEqual(r.returncode, 0)
        self.assertEqual(r.stderr, msg % (150, self.final))

        r = self.whsem("run", self.name, "1", "-t", "0", "--", "touch", ran)  # try once
        self.assertEqual(r.returncode, 75)
        self.assertEqual(r.stderr, msg % (0, self.final))

        r = self.whsem("run", "-t0", "-E3", self.name, "1", "--", "touch", ran)
        self.assertEqual(r.returncode, 3)
        self.assertFalse(os.path.exists(ran))

        self.stop_holder(holder)
        r = self.whsem("run", self.name, "1", "-t", "0", "--", "touch", ran)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(os.path.exists(ran))


class TestSignals(CliTestCase):
    TRAP = ('trap "echo got %s > %s; exit %d" %s; : > %s; '
            'while :; do sleep 0.05; done')

    def trapping_command(self, sig, code):
        got, ready = self.path("got"), self.path("ready")
        return (["sh", "-c", self.TRAP % (sig, got, code, sig, ready)], got, ready)

    def test_sigterm_and_sigusr1_are_forwarded(self):
        for sig, code in [("TERM", 7), ("USR1", 8), ("HUP", 9)]:
            with self.subTest(sig=sig):
                cmd, got, ready = self.trapping_command(sig, code)
                p = self.start("run", self.name, "1", "--", *cmd)
                self.wait_until(lambda: os.path.exists(ready), "the command to start")
                p.send_signal(getattr(signal, "SIG" + sig))
                self.assertEqual(p.wait(timeout=PROC_TIMEOUT), code, self.stderr_of(p))
                with open(got) as f:
                    self.assertEqual(f.read(), "got %s\n" % sig)
                os.unlink(got)
                os.unlink(ready)
        self.assertEqual(self.status_json()["free"], 1)

    def test_signals_while_waiting_abort_without_running(self):
        holder = self.start_holder(1)
        ran = self.path("ran")
        for sig in [signal.SIGINT, signal.SIGTERM, signal.SIGHUP]:
            with self.subTest(sig=sig):
                p = self.start("run", self.name, "1", "--", "touch", ran)
                self.wait_for_status(lambda s: s["waiters"] >= 1, "the waiter to wait")
                p.send_signal(sig)
                self.assertEqual(p.wait(timeout=PROC_TIMEOUT), 128 + sig)
                self.assertIn("interrupted by %s while waiting" % sig.name, self.stderr_of(p))
                self.assertFalse(os.path.exists(ran))
                s = self.wait_for_status(lambda s: s["waiters"] == 0, "the wait to go")
                self.assertEqual(s["free"], 0)
        self.stop_holder(holder)

    def test_signal_ignored_at_start_stays_ignored(self):
        # nohup whsem run ...: SIGHUP must not end the wait.
        holder = self.start_holder(1)
        ran = self.path("ran")
        p = self.start("run", self.name, "1", "--", "touch", ran,
                       preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_IGN))
        self.wait_for_status(lambda s: s["waiters"] >= 1, "the waiter to wait")
        p.send_signal(signal.SIGHUP)
        # Give it ample chance to (wrongly) act on the signal; only a
        # wrong implementation is affected by how long this takes.
        time.sleep(1.0)
        self.assertIsNone(p.poll())
        self.stop_holder(holder)
        self.assertEqual(p.wait(timeout=PROC_TIMEOUT), 0, self.stderr_of(p))
        self.assertTrue(os.path.exists(ran))

    def run_in_pty(self, args):
        try:
            pid, master = pty.fork()
        except OSError as e:
            self.skipTest("no pseudo-terminal available: %s" % e)
        if pid == 0:
            try:
                os.execv(WHSEM, [WHSEM] + list(args))
            finally:
                os._exit(127)
        return pid, master

    def finish_pty(self, pid, master, what):
        """Drains the terminal until whsem exits; returns its wait status."""
        out = b""
        deadline = time.monotonic() + PROC_TIMEOUT
        try:
            while True:
                done, status = os.waitpid(pid, os.WNOHANG)
                if done:
                    # What it wrote just before exiting may still be in the
                    # terminal: read it all before returning.
                    while select.select([master], [], [], 0)[0]:
                        try:
                            chunk = os.read(master, 4096)
                        except OSError as e:
                            if e.errno != errno.EIO:
                                raise
                            break
                        if not chunk:
                            break
                        out += chunk
                    return status, out
                if time.monotonic() > deadline:
                    os.kill(pid, signal.SIGKILL)
                    os.waitpid(pid, 0)
                    self.fail("whsem did not finish: " + what)
                r, _, _ = select.select([master], [], [], 0.05)
                if r:
                    try:
                        out += os.read(master, 4096)
                    except OSError as e:
                        if e.errno != errno.EIO:
                            raise
        finally:
            os.close(master)

    def test_ctrl_c_reaches_the_command_once_through_the_terminal(self):
        cmd, got, ready = self.trapping_command("INT", 5)
        pid, master = self.run_in_pty(["run", self.name, "1", "--"] + cmd)
        try:
            self.wait_until(lambda: os.path.exists(ready), "the command to start")
        except BaseException:
            os.kill(pid, signal.SIGKILL)
            raise
        os.write(master, b"\x03")  # the terminal's VINTR: SIGINT to the group
        status, out = self.finish_pty(pid, master, "after Ctrl-C")
        self.assertTrue(os.WIFEXITED(status), (status, out))
        self.assertEqual(os.WEXITSTATUS(status), 5, out)
        with open(got) as f:
            self.assertEqual(f.read(), "got INT\n")

    def test_hangup_reaches_the_command_when_whsem_leads_the_session(self):
        # pty.fork() makes whsem a session leader, as `ssh -t host whsem run`
        # does: a hangup goes to whsem alone, which must pass it on.
        cmd, got, ready = self.trapping_command("HUP", 9)
        pid, master = self.run_in_pty(["run", self.name, "1", "--"] + cmd)
        try:
            self.wait_until(lambda: os.path.exists(ready), "the command to start")
        except BaseException:
            os.kill(pid, signal.SIGKILL)
            raise
        os.close(master)  # hang up the terminal
        deadline = time.monotonic() + PROC_TIMEOUT
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                self.fail("the command did not get the hangup")
            time.sleep(0.05)
        self.assertTrue(os.WIFEXITED(status), status)
        self.assertEqual(os.WEXITSTATUS(status), 9)
        with open(got) as f:
            self.assertEqual(f.read(), "got HUP\n")

    def test_ctrl_c_while_waiting(self):
        holder = self.start_holder(1)
        ran = self.path("ran")
        pid, master = self.run_in_pty(["run", self.name, "1", "--", "touch", ran])
        try:
            self.wait_for_status(lambda s: s["waiters"] >= 1, "the waiter to wait")
        except BaseException:
            os.kill(pid, signal.SIGKILL)
            raise
        os.write(master, b"\x03")
        status, out = self.finish_pty(pid, master, "Ctrl-C while waiting")
        self.assertTrue(os.WIFEXITED(status), (status, out))
        self.assertEqual(os.WEXITSTATUS(status), 130, out)
        self.assertFalse(os.path.exists(ran))
        self.stop_holder(holder)

    def read_until(self, master, marker, what):
        """Reads the terminal until marker has appeared; returns all read."""
        out = b""
        deadline = time.monotonic() + SETTLE
        while marker not in out:
            if time.monotonic() > deadline:
                self.fail("gave up waiting for %s: %r" % (what, out))
            r, _, _ = select.select([master], [], [], 0.05)
            if r:
                out += os.read(master, 4096)
        return out

    READER = ("import os, sys\n"
              "print('foreground', os.tcgetpgrp(0) == os.getpgrp() == os.getpid())\n"
              "open(sys.argv[1], 'w').close()\n"
              "print('read', sys.stdin.readline().strip())\n")

    def test_the_command_owns_the_terminal(self):
        # In its own process group, the command is still the terminal's
        # foreground: it reads it (no SIGTTIN) and gets its signals.
        ready = self.path("ready")
        pid, master = self.run_in_pty(["run", self.name, "1", "--", sys.executable, "-c",
                                       self.READER, ready])
        os.write(master, b"hello\n")
        status, out = self.finish_pty(pid, master, "reading the terminal")
        self.assertEqual(os.waitstatus_to_exitcode(status), 0, out)
        self.assertIn(b"foreground True", out)
        self.assertIn(b"read hello", out)

    def test_ctrl_z_when_nobody_can_resume_us(self):
        # whsem leads the session (`ssh -t host whsem run ...`): its group is
        # orphaned, the kernel does not stop it, so neither may the command
        # stay stopped: whsem continues it.
        ready = self.path("ready")
        pid, master = self.run_in_pty(["run", self.name, "1", "--", sys.executable, "-c",
                                       self.READER, ready])
        try:
            self.wait_until(lambda: os.path.exists(ready), "the command to start")
        except BaseException:
            os.kill(pid, signal.SIGKILL)
            raise
        os.write(master, b"\x1a")  # VSUSP: SIGTSTP to the foreground group
        os.write(master, b"go on\n")
        status, out = self.finish_pty(pid, master, "after Ctrl-Z")
        self.assertEqual(os.waitstatus_to_exitcode(status), 0, out)
        self.assertIn(b"read go on", out)

    def test_ctrl_z_stops_the_job_and_fg_resumes_it(self):
        # Under a (minimal) job-control shell: Ctrl-Z stops the command, so
        # whsem stops too and the shell sees its job stop; `fg` gives the
        # terminal back to the command, which then reads it.
        ready = self.path("ready")
        args = [WHSEM, "run", self.name, "1", "--", sys.executable, "-c", self.READER, ready]
        try:
            pid, master = pty.fork()
        except OSError as e:
            self.skipTest("no pseudo-terminal available: %s" % e)
        if pid == 0:
            code = 127
            try:
                signal.signal(signal.SIGTTOU, signal.SIG_IGN)  # for tcsetpgrp
                job = os.fork()
                if job == 0:
                    os.setpgid(0, 0)
                    os.tcsetpgrp(0, os.getpid())
                    signal.signal(signal.SIGTTOU, signal.SIG_DFL)
                    os.execv(WHSEM, args)
                os.setpgid(job, job)
                _, st = os.waitpid(job, os.WUNTRACED)
                if os.WIFSTOPPED(st):
                    os.tcsetpgrp(0, os.getpgrp())
                    os.write(1, b"[job stopped]\r\n")
                    os.tcsetpgrp(0, job)  # fg
                    os.killpg(job, signal.SIGCONT)
                    _, st = os.waitpid(job, 0)
                code = os.waitstatus_to_exitcode(st)
            finally:
                os._exit(code)
        try:
            self.wait_until(lambda: os.path.exists(ready), "the command to start")
            os.write(master, b"\x1a")
            out = self.read_until(master, b"[job stopped]", "the job to stop")
        except BaseException:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            os.close(master)
            raise
        os.write(master, b"resumed\n")
        status, rest = self.finish_pty(pid, master, "after fg")
        out += rest
        self.assertEqual(os.waitstatus_to_exitcode(status), 0, out)
        self.assertIn(b"foreground True", out)
        self.assertIn(b"read resumed", out)


class TestDescendants(CliTestCase):
    """What the command starts runs under its ticket too: it is ended when
    the command exits, and the ticket is held until it is gone."""

    def read_pid(self, leaf):
        path = self.path(leaf)
        self.wait_until(lambda: os.path.exists(path), "the pid file " + leaf)
        with open(path) as f:
            return int(f.read())

    def running(self, pid, marker):
        """Whether pid is alive (not a zombie) and is the process marked so."""
        if proc_state(pid) in (None, "Z", "X"):
            return False
        try:
            with open("/proc/%d/cmdline" % pid, "rb") as f:
                return marker.encode() in f.read()
        except (FileNotFoundError, ProcessLookupError):
            return False

    def kill_if_running(self, pid, marker):
        if self.running(pid, marker):
            os.kill(pid, signal.SIGKILL)

    def background(self, leaf, marker, before="", after=""):
        """An sh -c script that starts `sleep MARKER` in the background and
        writes its pid to the file leaf. The sleep keeps no pipe of ours
        open, which would make subprocess.run() wait for it."""
        return ["sh", "-c", before + 'sleep %s >/dev/null 2>&1 & echo $! > "$1.tmp"; '
                'mv "$1.tmp" "$1"; %s' % (marker, after), "sh", self.path(leaf)]

    def try_once(self):
        return self.whsem("run", self.name, "1", "-t", "0", "--", "true").returncode

    def test_the_command_has_a_process_group_of_its_own(self):
        r = self.whsem("run", self.name, "1", "--", sys.executable, "-c",
                       "import os; print(os.getpgrp() == os.getpid(), "
                       "os.getpgid(os.getppid()) != os.getpgrp())")
        self.assertEqual((r.returncode, r.stdout), (0, "True True\n"), r.stderr)

    def test_a_background_process_is_terminated_when_the_command_exits(self):
        r = self.whsem("run", self.name, "1", "--", *self.background("bg.pid", "3141"))
        bg = self.read_pid("bg.pid")
        self.addCleanup(self.kill_if_running, bg, "3141")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertFalse(self.running(bg, "3141"))  # whsem returned after it ended
        self.assertEqual(self.try_once(), 0)

    def test_a_background_process_keeps_the_ticket_while_it_runs(self):
        # The command exits at once; what it left ignores SIGTERM, and the
        # SIGKILL is 10 minutes away: meanwhile the ticket stays taken.
        p = self.start("run", self.name, "1", "--kill-after=600000", "--",
                       *self.background("bg.pid", "3142", before='trap "" TERM; '))
        bg = self.read_pid("bg.pid")
        self.addCleanup(self.kill_if_running, bg, "3142")
        self.assertTrue(self.running(bg, "3142"))
        self.assertEqual(self.try_once(), 75)
        self.assertTrue(self.running(bg, "3142"))  # so it ran all along
        self.assertIsNone(p.poll())
        os.kill(bg, signal.SIGKILL)
        self.assertEqual(p.wait(timeout=PROC_TIMEOUT), 0, self.stderr_of(p))
        self.assertEqual(self.try_once(), 0)

    def test_kill_after_kills_what_ignores_sigterm(self):
        r = self.whsem("run", self.name, "1", "-k", "200ms", "--",
                       *self.background("bg.pid", "3143", before='trap "" TERM; ', after="exit 3"))
        bg = self.read_pid("bg.pid")
        self.addCleanup(self.kill_if_running, bg, "3143")
        self.assertEqual(r.returncode, 3, r.stderr)  # still the command's status
        self.assertFalse(self.running(bg, "3143"))
        self.assertEqual(self.try_once(), 0)

    def test_sigterm_to_whsem_reaches_the_whole_group(self):
        # Whether the command dies of the SIGTERM or exits cleanly without
        # passing it on, its background process gets it too.
        for after, code in [("wait", 128 + signal.SIGTERM), ('trap "exit 0" TERM; wait', 0)]:
            with self.subTest(after=after):
                leaf = "bg-%d.pid" % code
                p = self.start("run", self.name, "1", "--",
                               *self.background(leaf, "3144", after=after))
                bg = self.read_pid(leaf)
                self.addCleanup(self.kill_if_running, bg, "3144")
                p.terminate()
                self.assertEqual(p.wait(timeout=PROC_TIMEOUT), code, self.stderr_of(p))
                self.assertFalse(self.running(bg, "3144"))
                self.assertEqual(self.try_once(), 0)

    DAEMON = ("import os, sys, time\n"
              "def put(path, pid):\n"
              "    with open(path + '.tmp', 'w') as f:\n"
              "        f.write(str(pid))\n"
              "    os.rename(path + '.tmp', path)\n"
              "if os.fork() == 0:\n"
              "    os.setsid()\n"
              "    put(sys.argv[1], os.getpid())\n"
              "    time.sleep(3145)\n"
              "    os._exit(0)\n"
              "put(sys.argv[2], os.getpid())\n"
              "while not os.path.exists(sys.argv[1]):\n"
              "    time.sleep(0.01)\n")

    def test_a_daemon_that_left_the_group_is_waited_for_not_killed(self):
        if not os.path.exists("/proc/self/task/%d/children" % os.getpid()):
            self.skipTest("the kernel does not list children (CONFIG_PROC_CHILDREN)")
        p = self.start("run", self.name, "1", "--kill-after=0", "--", sys.executable, "-c",
                       self.DAEMON, self.path("daemon.pid"), self.path("cmd.pid"))
        daemon = self.read_pid("daemon.pid")
        self.addCleanup(self.kill_if_running, daemon, self.tmp)
        self.read_pid("cmd.pid")
        # The orphaned daemon is whsem's child (it is a subreaper); once it
        # is the only one, the command is reaped and its group was killed.
        children = "/proc/%d/task/%d/children" % (p.pid, p.pid)

        def only_the_daemon_left():
            with open(children) as f:
                return f.read().split() == [str(daemon)]
        self.wait_until(only_the_daemon_left, "whsem to wait for the daemon alone")
        self.assertTrue(self.running(daemon, self.tmp))  # no SIGTERM, no SIGKILL
        self.assertEqual(self.try_once(), 75)
        self.assertIsNone(p.poll())
        p.terminate()  # passed on to the processes whsem waits for
        self.assertEqual(p.wait(timeout=PROC_TIMEOUT), 0, self.stderr_of(p))
        self.assertFalse(self.running(daemon, self.tmp))
        self.assertEqual(self.try_once(), 0)

    def test_no_kill_leaves_background_processes_and_frees_the_ticket(self):
        r = self.whsem("run", self.name, "1", "--no-kill", "--",
                       *self.background("bg.pid", "3146"))
        bg = self.read_pid("bg.pid")
        self.addCleanup(self.kill_if_running, bg, "3146")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(self.running(bg, "3146"))
        self.assertEqual(self.try_once(), 0)  # free, although it still runs
        self.assertTrue(self.running(bg, "3146"))

    def test_kill_after_durations(self):
        for d in ["0", "250", "250ms", "1s"]:
            with self.subTest(d=d):
                r = self.whsem("run", self.name, "1", "-k", d, "--", "true")
                self.assertEqual(r.returncode, 0, r.stderr)
                r = self.whsem("run", self.name, "1", "--kill-after=" + d, "--", "true")
                self.assertEqual(r.returncode, 0, r.stderr)


class TestCrashSafety(CliTestCase):
    def kill_orphan(self, pid, marker):
        """If a failed run left the command running, ends it (checking that
        the pid is still that command, not a reused one)."""
        try:
            with open("/proc/%d/cmdline" % pid, "rb") as f:
                if marker.encode() in f.read():
                    os.kill(pid, signal.SIGKILL)
        except (FileNotFoundError, ProcessLookupError):
            pass

    def test_sigkill_of_whsem_run_kills_the_command_before_the_ticket_moves(self):
        data, pidfile = self.path("data"), self.path("writer.pid")
        size1, size2 = self.path("size1"), self.path("size2")
        writer = self.start("run", self.name, "1", "--", "sh", "-c",
                            'echo $$ > "$1"; while :; do echo x >> "$2"; sleep 0.01; done',
                            "sh", pidfile, data)
        self.wait_until(lambda: os.path.exists(data) and os.path.getsize(data) > 0,
                        "the writer to write")
        with open(pidfile) as f:
            writer_sh = int(f.read())
        self.addCleanup(self.kill_orphan, writer_sh, data)
        waiter = self.start("run", self.name, "1", "-t", "10000", "--", "sh", "-c",
                            'stat -c %s "$1" > "$2"; sleep 0.3; stat -c %s "$1" > "$3"',
                            "sh", data, size1, size2)
        self.wait_for_status(lambda s: s["waiters"] >= 1, "the waiter to wait")
        writer.kill()  # SIGKILL to whsem run itself, not to its command
        writer.wait(timeout=PROC_TIMEOUT)
        self.assertEqual(waiter.wait(timeout=PROC_TIMEOUT), 0, self.stderr_of(waiter))
        # The ticket moved only once the writer was dead (init may not reap
        # the orphan, so a zombie counts as gone).
        self.assertIn(proc_state(writer_sh), (None, "Z", "X"))
        with open(size1) as f1, open(size2) as f2:
            s1, s2 = int(f1.read()), int(f2.read())
        self.assertGreater(s1, 0)
        self.assertEqual(s1, s2, "the command wrote while another process held the ticket")
        self.assertEqual(os.path.getsize(data), s2)
        s = self.status_json()
        self.assertGreaterEqual(s["recoveries"], 1)
        self.assertEqual(s["free"], 1)

    def test_a_descendant_keeping_the_descriptor_keeps_the_ticket(self):
        # The command starts a background loop (which inherits the
        # descriptor but, unlike the command, is not killed with whsem);
        # the ticket must not move before that loop has ended.
        data, pidfile = self.path("data"), self.path("loop.pid")
        size1, size2 = self.path("size1"), self.path("size2")
        holder = self.start("run", self.name, "1", "--", "sh", "-c",
                            '( i=0; while [ $i -lt 150 ]; do echo y >> "$1"; sleep 0.02; '
                            'i=$((i+1)); done ) & echo $! > "$2"; '
                            'while :; do sleep 0.05; done', "sh", data, pidfile)
        self.wait_until(lambda: os.path.exists(data) and os.path.getsize(data) > 0,
                        "the loop to write")
        with open(pidfile) as f:
            loop = int(f.read())
        self.addCleanup(self.kill_orphan, loop, data)
        waiter = self.start("run", self.name, "1", "-t", "120000", "--", "sh", "-c",
                            'stat -c %s "$1" > "$2"; sleep 0.3; stat -c %s "$1" > "$3"',
                            "sh", data, size1, size2)
        self.wait_for_status(lambda s: s["waiters"] >= 1, "the waiter to wait")
        holder.kill()
        holder.wait(timeout=PROC_TIMEOUT)
        self.assertEqual(waiter.wait(timeout=180), 0, self.stderr_of(waiter))
        self.assertIn(proc_state(loop), (None, "Z", "X"))
        with open(size1) as f1, open(size2) as f2:
            s1, s2 = int(f1.read()), int(f2.read())
        self.assertEqual(s1, 2 * 150, "the ticket moved before the loop ended")
        self.assertEqual(s2, s1)


    @unittest.skipUnless(os.geteuid() == 0 and shutil.which("setpriv"),
                         "needs root and setpriv to drop privileges")
    def test_a_command_that_drops_privileges_cannot_truncate_the_segment(self):
        # The descriptor that keeps the ticket alive is inherited by the
        # command; it must not let the command (here as another user) write
        # or truncate the segment, or every user of the name would die of
        # SIGBUS.
        probe = self.path("probe")
        with open(probe, "w") as f:
            f.write(
                "import os, sys\n"
                "tried = refused = 0\n"
                "for fd in map(int, os.listdir('/proc/self/fd')):\n"
                "    try:\n"
                "        target = os.readlink('/proc/self/fd/%d' % fd)\n"
                "    except OSError:\n"
                "        continue\n"
                "    if '/dev/shm/whsem.' not in target:\n"
                "        continue\n"
                "    tried += 1\n"
                "    try:\n"
                "        os.ftruncate(fd, 0)\n"
                "    except OSError:\n"
                "        refused += 1\n"
                "sys.exit(0 if tried >= 1 and refused == tried else 3)\n")
        os.chmod(self.tmp, 0o755)
        os.chmod(probe, 0o644)
        r = self.whsem("run", self.name, "1", "--", "setpriv", "--reuid=65534", "--regid=65534",
                       "--clear-groups", sys.executable, probe)
        self.assertEqual(r.returncode, 0, "the command could truncate the segment, or found "
                         "no descriptor of it: " + r.stderr)
        # And the name is intact for everyone else.
        r = self.whsem("run", self.name, "1", "-t", "0", "--", "true")
        self.assertEqual(r.returncode, 0, r.stderr)


class TestStatus(CliTestCase):
    def test_status_shows_the_holder(self):
        holder = self.start_holder(2)
        r = self.whsem("status", self.name)
        self.assertEqual(r.returncode, 0, r.stderr)
        out = r.stdout
        self.assertRegex(out, r"(?m)^name:\s+%s$" % re.escape(self.final))
        self.assertRegex(out, r"(?m)^max:\s+2$")
        self.assertRegex(out, r"(?m)^free:\s+1$")
        self.assertRegex(out, r"(?m)^waiters:\s+0$")
        self.assertRegex(out, r"(?m)^processes:\s+2\b")  # the holder and us
        self.assertRegex(out, r"(?m)^recoveries:\s+0$")
        self.assertRegex(out, r"(?m)^\s+PID\s+TICKETS\s+HELD SINCE\s+WAITING\s+COMMAND$")
        self.assertRegex(out, r"(?m)^\s+%d\s+1\s+(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d "
                              r"\([^)]*ago\)|-)\s+0\s+\S*whsem run %s 2 -- sleep 300$"
                         % (holder.pid, re.escape(self.name)))

        s = self.status_json()
        self.assertEqual(s["name"], self.final)
        self.assertEqual((s["max"], s["free"], s["waiters"]), (2, 1, 0))
        self.assertEqual(len(s["holders"]), 1)
        h = s["holders"][0]
        self.assertEqual((h["pid"], h["tickets"], h["waiting"]), (holder.pid, 1, 0))
        self.assertTrue(h["since_unix_ms"] is None or h["since_unix_ms"] > 0)
        # --exact with the finalized name means the same semaphore
        r = self.whsem("status", "--exact", "--json", self.final)
        self.assertEqual(json.loads(r.stdout)["holders"][0]["pid"], holder.pid)
        self.stop_holder(holder)
        s = self.status_json()
        self.assertEqual((s["free"], s["holders"]), (2, []))

    def test_status_of_a_missing_name(self):
        for extra in [[], ["--json"]]:
            r = self.whsem("status", self.name, *extra)
            self.assertEqual(r.returncode, 1)
            self.assertEqual(r.stderr, "whsem: no semaphore named '%s'\n" % self.final)
            self.assertEqual(r.stdout, "")


class TestAdmin(CliTestCase):
    def list_names(self):
        r = self.whsem("list")
        self.assertEqual(r.returncode, 0, r.stderr)
        return r.stdout.splitlines()

    def test_list_then_rm(self):
        self.assertNotIn(self.final, self.list_names())
        self.assertEqual(self.whsem("run", self.name, "1", "--", "true").returncode, 0)
        self.assertIn(self.final, self.list_names())
        r = self.whsem("rm", self.name)
        self.assertEqual((r.returncode, r.stdout, r.stderr), (0, "", ""))
        self.assertNotIn(self.final, self.list_names())
        r = self.whsem("status", self.name)
        self.assertEqual(r.returncode, 1)
        self.assertIn("no semaphore named", r.stderr)
        r = self.whsem("rm", self.name)
        self.assertEqual(r.returncode, 1)
        self.assertIn("no semaphore named '%s'" % self.final, r.stderr)

    def test_rm_of_a_name_in_use(self):
        holder = self.start_holder(1)
        r = self.whsem("rm", self.name)
        self.assertEqual(r.returncode, 1)
        self.assertIn("--force", r.stderr)
        self.assertIsNotNone(self.status_json())  # still there
        r = self.whsem("rm", "--force", self.name)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIsNone(self.status_json())
        self.stop_holder(holder)

    def test_list_escapes_control_characters(self):
        forged = "forged-line-%d" % os.getpid()
        tricky = "%s\n%s\t\x1b[2J" % (self.name, forged)
        self.names.append(tricky)
        r = self.whsem("run", tricky, "1", "--", "true")
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = self.list_names()
        self.assertIn("Global\\%s\\x0a%s\\x09\\x1b[2J" % (self.name, forged), lines)
        self.assertFalse(any(forged in l and not l.startswith("Global\\") for l in lines))
        self.assertFalse(any("\x1b" in l or "\t" in l for l in lines))
        # status escapes the name too, and JSON carries it exactly
        self.assertIn("\\x0a", self.whsem("status", tricky).stdout)
        self.assertEqual(self.status_json(tricky)["name"], "Global\\" + tricky)

    def test_name(self):
        cases = {
            "abc": "Global\\abc",
            "Global\\abc": "Global\\abc",
            "": "Global\\EMPTYz4PhNX7vuL3xVChQ1m2AB9Yg5AULVxXcg/SpIdNs6c5H0NE8XYXysP"
                "+DGNKHfuwvY7kxvUdBeoGlODJ6+SfaPg==",
        }
        for name, final in cases.items():
            with self.subTest(name=name):
                r = self.whsem("name", name)
                self.assertEqual((r.returncode, r.stdout, r.stderr), (0, final + "\n", ""))
        r = self.whsem("name", "--", "-dash")
        self.assertEqual(r.stdout, "Global\\-dash\n")
        r = self.whsem("name", "a\\b")  # a backslash forces the hashed form
        self.assertEqual(r.returncode, 0)
        self.assertRegex(r.stdout, r"^Global\\a_b[A-Za-z0-9+/]{86}==\n$")
        r = subprocess.run([WHSEM, "name", b"\xff\xfe"], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=PROC_TIMEOUT)
        self.assertEqual(r.returncode, 1)
        self.assertIn(b"WHSEM_E_INVALID_NAME", r.stderr)


# An idle opener: a process that has a name open and neither holds nor
# waits (none of whsem's commands stays so). Prints "ready" once open.
IDLE_OPENER = r"""
import ctypes, os, sys, time
class Options(ctypes.Structure):
    _fields_ = [("struct_size", ctypes.c_uint32), ("flags", ctypes.c_uint32),
                ("abandonment_check_ms", ctypes.c_int32), ("mode", ctypes.c_uint32),
                ("backend", ctypes.c_char_p), ("connection_check_ms", ctypes.c_int32)]
lib = ctypes.CDLL(sys.argv[1])
o = Options(ctypes.sizeof(Options), 0, 0, 0, (os.environ.get("WHSEM_BACKEND") or "").encode(), 0)
sem = ctypes.c_uint64()
st = lib.whsem_open(sys.argv[2].encode(), int(sys.argv[3]), ctypes.byref(o), ctypes.byref(sem))
print("ready" if st == 0 else "failed %d" % st, flush=True)
time.sleep(300)
"""


class TestStatusProcesses(CliTestCase):
    TOP_KEYS = {"name", "backend", "max", "free", "waiters", "processes", "recoveries",
                "holders", "waiting", "idle", "counters"}
    HOLDER_KEYS = {"host", "pid", "tickets", "since_unix_ms", "since", "waiting", "cmdline",
                   "command"}
    WAITING_KEYS = {"host", "pid", "waiting", "since_unix_ms", "since", "cmdline", "command"}
    IDLE_KEYS = {"host", "pid", "cmdline", "command"}
    COUNTER_KEYS = {"acquisitions", "timeouts", "cancellations", "waits", "wait_ns",
                    "mean_wait_ns", "p50_wait_ns", "p99_wait_ns", "releases", "hold_ns",
                    "mean_hold_ns", "created_unix_ms", "created", "wait_histogram"}

    def start_idle_opener(self, max_count):
        lib = os.path.join(os.path.dirname(WHSEM), "libwhsem.so.1")
        p = subprocess.Popen([sys.executable, "-c", IDLE_OPENER, lib, self.name, str(max_count)],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                             **self.env({}))
        p.err_file = p.stdout  # closed by tearDown
        self.procs.append(p)
        self.assertEqual(p.stdout.readline(), "ready\n")
        return p

    def test_holders_waiters_and_idle_openers_with_their_command_lines(self):
        holder = self.start_holder(1)
        ran = self.path("ran file")
        waiter = self.start("run", self.name, "1", "-t", "2m", "--", "touch", ran)
        idle = self.start_idle_opener(1)
        s = self.wait_for_status(
            lambda s: any(w["pid"] == waiter.pid for w in s["waiting"]) and s["idle"],
            "the waiter to wait and the idle opener to show")

        self.assertEqual(set(s), self.TOP_KEYS)
        self.assertEqual(s["backend"], "postgresql" if self.BACKEND else "shared-memory")
        self.assertEqual((s["max"], s["free"], s["waiters"], s["processes"]), (1, 0, 1, 4))
        [h] = s["holders"]
        self.assertEqual(set(h), self.HOLDER_KEYS)
        self.assertEqual((h["pid"], h["tickets"], h["waiting"]), (holder.pid, 1, 0))
        # The holder's pid is whsem run's; "command" is what it runs.
        self.assertEqual(h["cmdline"], [WHSEM, "run", self.name, "1", "--", "sleep", "300"])
        self.assertEqual(h["command"]["cmdline"], ["sleep", "300"])
        cmd_pid = h["command"]["pid"]
        with open("/proc/%d/stat" % cmd_pid) as f:
            self.assertEqual(int(f.read().rsplit(")", 1)[1].split()[1]), holder.pid)  # ppid
        [w] = s["waiting"]
        self.assertEqual(set(w), self.WAITING_KEYS)
        self.assertEqual((w["pid"], w["waiting"]), (waiter.pid, 1))
        self.assertEqual(w["cmdline"], [WHSEM, "run", self.name, "1", "-t", "2m", "--", "touch",
                                        ran])
        self.assertIsNone(w["command"])  # it runs nothing yet
        if self.BACKEND:
            # PostgreSQL records since when; this machine's backend does not.
            self.assertGreater(w["since_unix_ms"], 0)
            self.assertEqual(h["host"], w["host"])
            self.assertNotEqual(h["host"], "")
        else:
            self.assertEqual((w["since_unix_ms"], w["since"], w["host"]), (None, None, ""))
        [i] = s["idle"]
        self.assertEqual(set(i), self.IDLE_KEYS)
        self.assertEqual(i["pid"], idle.pid)
        self.assertEqual(i["cmdline"][0], sys.executable)

        r = self.whsem("status", self.name)
        self.assertEqual(r.returncode, 0, r.stderr)
        out = r.stdout
        self.assertRegex(out, r"(?m)^waiting:\s+1 process$")
        self.assertRegex(out, r"(?m)^\s+PID\s+WAITING\s+WAITING SINCE\s+COMMAND$"
                         if not self.BACKEND else
                         r"(?m)^\s+HOST\s+PID\s+WAITING\s+WAITING SINCE\s+COMMAND$")
        # An argument with a blank is quoted, so the line reads back.
        self.assertRegex(out, r"(?m)^.*\b%d\s+1\s+.*whsem run %s 1 -t 2m -- touch '%s'$"
                         % (waiter.pid, re.escape(self.name), re.escape(ran)))
        self.assertRegex(out, r"(?m)^\s+-> command %d: sleep 300$" % cmd_pid)
        self.assertRegex(out, r"(?m)^idle:\s+1 process$")
        self.assertRegex(out, r"(?m)^.*\b%d\s+%s -c " % (idle.pid, re.escape(sys.executable)))

        self.stop_holder(holder)
        self.assertEqual(waiter.wait(timeout=PROC_TIMEOUT), 0, self.stderr_of(waiter))
        self.assertTrue(os.path.exists(ran))
        idle.kill()

    def test_counters_are_shown_or_said_not_to_be_kept(self):
        self.assertEqual(self.whsem("run", self.name, "1", "--", "true").returncode, 0)
        s = self.status_json()
        text = self.whsem("status", self.name).stdout
        if s["counters"] is None:
            self.assertRegex(text, r"(?m)^counters:\s+not kept by this backend$")
            self.assertNotIn("acquisitions:", text)
        else:
            self.assertEqual(set(s["counters"]), self.COUNTER_KEYS)
            self.assertEqual(len(s["counters"]["wait_histogram"]), 32)
            for label in ("created", "acquisitions", "timeouts", "cancellations", "waits",
                          "releases"):
                self.assertRegex(text, r"(?m)^%s:\s+\S" % label)
            self.assertNotIn("not kept", text)

    def test_counter_values(self):
        started_ms = time.time() * 1000
        for _ in range(2):
            self.assertEqual(self.whsem("run", self.name, "1", "--", "true").returncode, 0)
        self.assertIsNotNone(self.status_json()["counters"], "both backends keep counters")
        holder = self.start_holder(1)
        # A try that finds no ticket: neither a timeout nor a wait.
        self.assertEqual(self.whsem("run", self.name, "1", "-t", "0", "--", "true").returncode, 75)
        # A wait that times out.
        self.assertEqual(self.whsem("run", self.name, "1", "-t", "300ms", "--", "true").returncode,
                         75)
        # A wait that is interrupted: a cancellation.
        p = self.start("run", self.name, "1", "--", "true")
        self.wait_for_status(lambda s: s["waiters"] >= 1, "the waiter to wait")
        p.send_signal(signal.SIGINT)
        self.assertEqual(p.wait(timeout=PROC_TIMEOUT), 128 + signal.SIGINT)
        # A wait that gets its ticket.
        waiter = self.start("run", self.name, "1", "--", "true")
        self.wait_for_status(lambda s: any(w["pid"] == waiter.pid for w in s["waiting"]),
                             "the second waiter to wait")
        self.stop_holder(holder)
        self.assertEqual(waiter.wait(timeout=PROC_TIMEOUT), 0, self.stderr_of(waiter))

        c = self.status_json()["counters"]
        self.assertEqual((c["acquisitions"], c["releases"]), (4, 4))
        self.assertEqual((c["timeouts"], c["cancellations"], c["waits"]), (1, 1, 3))
        self.assertEqual(sum(c["wait_histogram"]), 3)
        self.assertGreaterEqual(c["wait_ns"], 300 * 10**6)
        self.assertAlmostEqual(c["mean_wait_ns"], c["wait_ns"] / 3, delta=1)
        self.assertGreater(c["hold_ns"], 0)
        self.assertAlmostEqual(c["mean_hold_ns"], c["hold_ns"] / 4, delta=1)
        # The median lies in a bucket that holds a wait: between the
        # shortest and the longest of the three, to a bucket's width.
        self.assertLessEqual(c["p50_wait_ns"], c["p99_wait_ns"])
        self.assertGreater(c["p50_wait_ns"], 0)
        self.assertLessEqual(c["p99_wait_ns"], 2 * c["wait_ns"])
        self.assertGreaterEqual(c["created_unix_ms"], started_ms - 5000)
        self.assertLessEqual(c["created_unix_ms"], time.time() * 1000 + 5000)
        text = self.whsem("status", self.name).stdout
        self.assertRegex(text, r"(?m)^acquisitions:\s+4$")
        self.assertRegex(text, r"(?m)^waits:\s+3 \(mean \S+, p50 \S+, p99 \S+\)$")
        self.assertRegex(text, r"(?m)^releases:\s+4 \(mean hold \S+\)$")


class TestList(CliTestCase):
    def test_list_long_and_json(self):
        holder = self.start_holder(2)
        r = self.whsem("list", "-l")
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = r.stdout.splitlines()
        self.assertRegex(lines[0], r"^\s+MAX\s+FREE\s+HOLDERS\s+WAITERS\s+NAME$")
        self.assertIn(["2", "1", "1", "0", self.final], [l.split() for l in lines[1:]])
        r = self.whsem("list", "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        rows = json.loads(r.stdout)
        [row] = [x for x in rows if x["name"] == self.final]
        self.assertEqual(row, {"name": self.final, "max": 2, "free": 1, "holders": 1,
                               "waiters": 0, "error": None})
        self.stop_holder(holder)
        rows = json.loads(self.whsem("list", "--json", "--long").stdout)
        self.assertIn({"name": self.final, "max": 2, "free": 2, "holders": 0, "waiters": 0,
                       "error": None}, rows)


class TestListGarbled(CliTestCase):
    """A garbled segment, which only this machine's backend can have."""

    def test_a_name_that_cannot_be_opened_says_why(self):
        garbled = self.name + "-garbled"
        self.names.append(garbled)
        with open("/dev/shm/whsem." + garbled, "wb") as f:
            f.write(b"not a segment")
        r = self.whsem("list", "-l")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout, r"(?m)^\s+\?\s+\?\s+\?\s+\?\s+%s  \(WHSEM_E_\w+: .+\)$"
                         % re.escape("Global\\" + garbled))
        [row] = [x for x in json.loads(self.whsem("list", "--json").stdout)
                 if x["name"] == "Global\\" + garbled]
        self.assertIsNone(row["max"])
        self.assertRegex(row["error"]["status"], r"^WHSEM_E_")
        self.assertTrue(row["error"]["message"])
        # And the plain list is unchanged: names only.
        self.assertIn("Global\\" + garbled, self.whsem("list").stdout.splitlines())


class TestMode(CliTestCase):
    def mode_of(self, name):
        return stat.S_IMODE(os.stat("/dev/shm/whsem." + name).st_mode)

    def test_mode_sets_the_permissions_of_a_new_name(self):
        for mode, expect in [(None, 0o600), ("0660", 0o660), ("666", 0o666), ("0640", 0o640)]:
            with self.subTest(mode=mode):
                name = "%s-%s" % (self.name, mode)
                self.names.append(name)
                args = ["--mode", mode] if mode else []
                r = self.whsem("run", name, "1", *args, "--", "true")
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertEqual(self.mode_of(name), expect)

    def test_bad_modes_say_what_is_accepted(self):
        r = self.whsem("run", self.name, "1", "--mode", "0644x", "--", "true")
        self.assertEqual(r.returncode, 2)
        self.assertIn("invalid mode '0644x'", r.stderr)
        self.assertIn("0600 to 0777", r.stderr)
        r = self.whsem("run", self.name, "1", "--mode", "0600", "--backend", "host=/nowhere",
                       "--", "true")
        self.assertEqual(r.returncode, 2)
        self.assertIn("--mode", r.stderr)
        self.assertIn("PostgreSQL", r.stderr)


class TestDurations(CliTestCase):
    def test_timeouts_take_units(self):
        holder = self.start_holder(1)
        msg = "whsem: timed out after %d ms waiting for a ticket of '%s' (max 1)\n"
        for given, ms in [("1s", 1000), ("0.25s", 250), ("300ms", 300), ("200", 200)]:
            with self.subTest(given=given):
                r = self.whsem("run", self.name, "1", "-t", given, "--", "true")
                self.assertEqual((r.returncode, r.stderr), (75, msg % (ms, self.final)))
        r = self.whsem("run", self.name, "1", "--timeout=0.2s", "--", "true")
        self.assertEqual((r.returncode, r.stderr), (75, msg % (200, self.final)))
        self.stop_holder(holder)
        for given in ["2m", "1h", "1.5s", "24h", "-1"]:
            with self.subTest(given=given):
                r = self.whsem("run", self.name, "1", "-t", given, "--", "true")
                self.assertEqual(r.returncode, 0, r.stderr)

    def test_kill_after_takes_units(self):
        for d in ["1.5s", "2m", "1h", "0.5s", "0s"]:
            with self.subTest(d=d):
                r = self.whsem("run", self.name, "1", "-k", d, "--", "true")
                self.assertEqual(r.returncode, 0, r.stderr)

    def test_bad_durations_say_why(self):
        cases = {"5x": "unit", "1.5": "fraction needs a unit", "1.5ms": "whole number",
                 "": "digit", "2147484s": "too long", "1.": "followed by digits"}
        for opt in ["-t", "-k"]:
            for given, why in cases.items():
                with self.subTest(opt=opt, given=given):
                    r = self.whsem("run", self.name, "1", opt, given, "--", "true")
                    self.assertEqual(r.returncode, 2)
                    self.assertIn("'%s': " % given, r.stderr)
                    self.assertIn(why, r.stderr)
                    self.assertIn("500ms, 5s", r.stderr)


class TestPrune(CliTestCase):
    def test_prune_removes_dead_names_and_keeps_live_ones(self):
        dead, live = self.name + "-dead", self.name + "-live"
        self.names += [dead, live]
        self.assertEqual(self.whsem("run", dead, "1", "--", "true").returncode, 0)
        holder = self.start_holder(1, name=live)
        pattern = self.name + "-*"

        r = self.whsem("prune", "--dry-run", pattern)
        self.assertEqual((r.returncode, r.stdout, r.stderr),
                         (0, "would remove Global\\%s\n" % dead, ""))
        self.assertIsNotNone(self.status_json(dead))  # nothing removed

        r = self.whsem("prune", pattern)
        self.assertEqual((r.returncode, r.stdout, r.stderr), (0, "removed Global\\%s\n" % dead, ""))
        self.assertIsNone(self.status_json(dead))
        self.assertIsNotNone(self.status_json(live))
        r = self.whsem("prune", "-n", pattern)
        self.assertEqual((r.returncode, r.stdout), (0, ""))

        # Once nobody has it open, the live one goes too; the full name
        # is a pattern as well.
        self.stop_holder(holder)
        r = self.whsem("prune", "Global\\" + live)
        self.assertEqual((r.returncode, r.stdout), (0, "removed Global\\%s\n" % live), r.stderr)
        self.assertIsNone(self.status_json(live))

    def test_patterns_select_and_other_names_stay(self):
        kept = self.name + "-other"
        self.names.append(kept)
        self.assertEqual(self.whsem("run", kept, "1", "--", "true").returncode, 0)
        r = self.whsem("prune", self.name + "-nomatch*", "--", "-also-no-match")
        self.assertEqual((r.returncode, r.stdout, r.stderr), (0, "", ""))
        self.assertIsNotNone(self.status_json(kept))



def default_signals():
    """Started as a background job (`ctest &` in a script), we would have
    SIGINT and SIGQUIT ignored, and whsem and the shell commands rightly
    keep ignoring what they inherit ignored: give the tests the defaults."""
    for sig in (signal.SIGHUP, signal.SIGINT, signal.SIGQUIT, signal.SIGTERM,
                signal.SIGUSR1, signal.SIGUSR2):
        if signal.getsignal(sig) == signal.SIG_IGN:
            signal.signal(sig, signal.SIG_DFL)


if __name__ == "__main__":
    if len(sys.argv) < 2 or not os.access(sys.argv[1], os.X_OK):
        sys.exit("usage: test_cli.py PATH_TO_WHSEM [unittest args]")
    WHSEM = os.path.abspath(sys.argv.pop(1))
    default_signals()
    unittest.main(verbosity=2)
