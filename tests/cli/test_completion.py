#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The bash completion of whsem (src/cli/whsem.bash), driven as bash
drives it: COMP_WORDS, COMP_CWORD, COMP_LINE and COMP_POINT set, the
function called, COMPREPLY read.

It completes command prefixes, every option each command's --help lists
(and no other), and semaphore names from `whsem list`: this machine's, or
those of the database a --backend on the line names (in any spelling bash
splits at '=' and ':'), or of $WHSEM_BACKEND.

Usage: test_completion.py PATH_TO_WHSEM PATH_TO_whsem.bash [unittest arguments]
Environment (required): WHSEM_TEST_PG_BACKEND, a connection string of the
test cluster (CTest's pg fixture), for the --backend cases.
"""
import os
import re
import subprocess
import sys
import tempfile
import unittest

WHSEM = SCRIPT = None  # from argv
PG = os.environ.get("WHSEM_TEST_PG_BACKEND", "")

DRIVER = r'''
source "$1"
prog=$2
shift 2
COMP_LINE=$1
shift
COMP_WORDS=("$@")
COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
COMP_POINT=${#COMP_LINE}
_whsem "$prog" "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}"
printf '%s\n' "${COMPREPLY[@]}"
'''


def bash_words(line):
    """COMP_WORDS as bash makes them: words at blanks, and '=' and ':'
    (COMP_WORDBREAKS) as words of their own."""
    words = []
    for word in line.split(" "):
        words.extend(w for w in re.split(r"([=:]+)", word) if w)
    if line.endswith(" ") or not line:
        words.append("")
    return words


def complete(line, env=None):
    """What completing at the end of line offers, sorted."""
    r = subprocess.run(["bash", "-c", DRIVER, "driver", SCRIPT, WHSEM, line] + bash_words(line),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=60,
                       env=dict(os.environ, **(env or {})))
    if r.returncode != 0 or r.stderr:
        raise AssertionError("completing %r: exit %d: %s" % (line, r.returncode, r.stderr))
    return sorted(w for w in r.stdout.split("\n") if w)


def whsem(*args, **kw):
    return subprocess.run([WHSEM] + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, timeout=60, **kw)


def help_options(*command):
    """The options a help text's Options section lists."""
    text = whsem(*command, "--help").stdout
    opts, inside = set(), False
    for line in text.splitlines():
        if line.startswith("Options:"):
            inside = True
        elif inside and not line.strip():
            break
        elif inside:
            m = re.match(r"\s+((?:-[A-Za-z], )?--[a-z][a-z-]*)", line)
            if m:
                opts.update(re.findall(r"-[A-Za-z](?![\w-])|--[a-z][a-z-]*", m.group(1)))
    return opts


def help_commands():
    text = whsem("--help").stdout
    block = text.split("Commands:", 1)[1].split("\n\n", 1)[0]
    return sorted(re.findall(r"^  ([a-z]+)\b", block, re.M))


class Completion(unittest.TestCase):
    def test_a_command_prefix(self):
        self.assertEqual(complete("whsem st"), ["stats", "status"])
        self.assertEqual(complete("whsem r"), ["rm", "run"])
        self.assertEqual(complete("whsem help sta"), ["stats", "status"])
        self.assertEqual(complete("whsem p"), ["prune"])

    def test_every_command_and_nothing_else(self):
        self.assertEqual(complete("whsem "), help_commands())

    def test_the_global_options(self):
        self.assertEqual(set(complete("whsem -")), help_options())

    def test_an_option_prefix(self):
        self.assertEqual(complete("whsem run --ti"), ["--timeout", "--timeout-exit-code"])
        self.assertEqual(complete("whsem status abc --j"), ["--json"])
        self.assertEqual(complete("whsem list --l"), ["--long"])
        self.assertEqual(complete("whsem run --mo"), ["--mode"])

    def test_each_command_offers_exactly_the_options_of_its_help(self):
        for c in help_commands():
            with self.subTest(command=c):
                self.assertEqual(set(complete("whsem %s -" % c)), help_options(c))

    def test_nothing_for_an_option_value(self):
        self.assertEqual(complete("whsem run -t "), [])
        self.assertEqual(complete("whsem run --mode "), [])
        self.assertEqual(complete("whsem list --backend "), [])
        self.assertEqual(complete("whsem top -d "), [])
        self.assertEqual(complete("whsem top --iterations "), [])

    def test_a_file_for_plot(self):
        with tempfile.TemporaryDirectory() as d:
            open(os.path.join(d, "waits.svg"), "w").close()
            self.assertEqual(complete("whsem stats abc --plot %s/wa" % d), [d + "/waits.svg"])

    def test_the_command_of_run(self):
        self.assertIn("echo", complete("whsem run abc 2 -- ech"))
        self.assertIn("echo", complete("whsem run abc 2 ech"))
        self.assertEqual(complete("whsem run abc 2 -- echo --ti"), [])  # its own options: files


class Names(unittest.TestCase):
    """Names of this machine, and (with a test cluster) of a database."""

    @classmethod
    def setUpClass(cls):
        cls.prefix = "whsem-completion-test-%d-" % os.getpid()
        cls.local = cls.prefix + "here"
        r = whsem("run", cls.local, "1", "--", "true")
        if r.returncode != 0:
            raise AssertionError("creating %s: %s" % (cls.local, r.stderr))
        cls.remote = cls.prefix + "there"
        r = whsem("run", "--backend", PG, cls.remote, "1", "--", "true")
        if r.returncode != 0:
            raise AssertionError("creating %s on %s: %s" % (cls.remote, PG, r.stderr))

    @classmethod
    def tearDownClass(cls):
        whsem("rm", "--force", cls.local)
        whsem("rm", "--force", "--backend", PG, cls.remote)

    def test_a_name_of_this_machine(self):
        self.assertEqual(complete("whsem status " + self.prefix), [self.local])
        self.assertEqual(complete("whsem rm --force " + self.prefix), [self.local])
        self.assertEqual(complete("whsem run " + self.prefix + "h"), [self.local])
        # prune's patterns are names too, as many as one likes.
        self.assertEqual(complete("whsem prune -n " + self.prefix), [self.local])
        self.assertEqual(complete("whsem prune x* " + self.prefix), [self.local])

    def test_exact_names_are_whole_and_quoted(self):
        offered = complete("whsem status --exact Global")
        self.assertIn("Global\\\\" + self.local, offered)  # Global\\name, for the shell
        self.assertTrue(all(n.startswith("Global\\\\") for n in offered), offered)

    def test_only_the_first_argument_is_a_name(self):
        self.assertEqual(complete("whsem status %s %s" % (self.local, self.prefix)), [])
        self.assertEqual(complete("whsem run %s 1" % self.local), [])

    def test_a_name_of_the_backend_on_the_line(self):
        for line in ("whsem status --backend %s %s" % (PG, self.prefix),
                     "whsem status --backend=%s %s" % (PG, self.prefix),
                     "whsem rm --force --backend=postgresql://?%s %s" % (PG, self.prefix),
                     "whsem run -t 5 --backend %s %s" % (PG, self.prefix)):
            with self.subTest(line=line):
                self.assertEqual(complete(line), [self.remote])

    def test_a_name_of_whsem_backend(self):
        self.assertEqual(complete("whsem status " + self.prefix, {"WHSEM_BACKEND": PG}),
                         [self.remote])
        # The line wins over the environment, as with the command itself.
        self.assertEqual(complete("whsem status --backend '' " + self.prefix, {"WHSEM_BACKEND": PG}),
                         [self.local])


if __name__ == "__main__":
    if len(sys.argv) < 3 or not PG:
        sys.exit(__doc__)
    WHSEM, SCRIPT = sys.argv[1], sys.argv[2]
    unittest.main(argv=[sys.argv[0]] + sys.argv[3:], verbosity=2)
