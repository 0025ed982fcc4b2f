#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The manual page whsem(1) renders cleanly and cannot go stale.

groff renders it without a single warning (-ww), man -l shows the
installed (compressed) page, and everything the program's own help lists
is described in it: every command of `whsem --help` in a section of its
own, every option of `whsem COMMAND --help` in that command's section,
the global options, the exit codes and the environment variables. Adding
an option to the program without describing it fails here.

Usage: test_docs.py PATH_TO_WHSEM PATH_TO_whsem.1 [unittest arguments]
"""
import gzip
import os
import re
import subprocess
import sys
import unittest

WHSEM = MAN = None  # from argv

# An option as help texts write it: -x, or --long-name.
OPTION = re.compile(r"(?<![\w-])(-[A-Za-z]|--[a-z][a-z-]*)(?![\w-])")


def run(*args, **kw):
    return subprocess.run(list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          timeout=60, **kw)


def help_text(*command):
    r = run(WHSEM, *command, "--help")
    if r.returncode != 0:
        raise AssertionError("whsem %s --help failed: %s" % (" ".join(command), r.stderr))
    return r.stdout


def section(text, title):
    """The lines of a help text after `title:` up to the next blank line."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.startswith(title + ":"):
            out = [line[len(title) + 1:]]
            for more in lines[i + 1:]:
                if not more.strip():
                    break
                out.append(more)
            return out
    return []


def commands():
    names = []
    for line in section(help_text(), "Commands"):
        m = re.match(r"  ([a-z]+)\b", line)
        if m:
            names.append(m.group(1))
    return names


def options(text):
    """Options listed in a help text's Options section (lines that start
    with an option, not mentions in descriptions)."""
    found = set()
    for line in section(text, "Options"):
        m = re.match(r"\s+((?:-[A-Za-z], )?--[a-z][a-z-]*)", line)
        if m:
            found.update(OPTION.findall(m.group(1)))
    return found


def rendered():
    """The page as man shows it: plain text, 80 columns."""
    env = dict(os.environ, MANWIDTH="80", MAN_KEEP_FORMATTING="", LC_ALL="C.UTF-8")
    r = run("man", "-l", MAN + ".gz", env=env)
    if r.returncode != 0:
        raise AssertionError("man -l %s.gz failed: %s" % (MAN, r.stderr))
    return r.stdout


def split_sections(text):
    """{SECTION: body} for the page's .SH headings (unindented lines), and
    {command: body} for the .SS headings `whsem COMMAND ...` (3 spaces in)."""
    sections, commands_ = {}, {}
    sh = ss = None
    for line in text.splitlines():
        if re.match(r"[A-Z][A-Z ]+$", line):
            sh, ss = line.strip(), None
            sections[sh] = []
            continue
        m = re.match(r"   whsem ([a-z]+)", line)
        if sh == "COMMANDS" and m:
            ss = m.group(1)
            commands_[ss] = []  # the heading's synopsis does not describe anything
            continue
        if sh:
            sections[sh].append(line)
        if ss:
            commands_[ss].append(line)
    return ({k: "\n".join(v) for k, v in sections.items()},
            {k: "\n".join(v) for k, v in commands_.items()})


class ManualPage(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.text = rendered()
        cls.sections, cls.commands = split_sections(cls.text)

    def assertMentions(self, body, word, where):
        pattern = r"(?<![\w-])" + re.escape(word) + r"(?![\w-])"
        self.assertRegex(body, pattern, "%s does not mention %s" % (where, word))

    def test_groff_renders_it_without_warnings(self):
        r = run("groff", "-man", "-Tutf8", "-ww", "-z", MAN)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stderr, "", "groff -ww warns:\n" + r.stderr)

    def test_the_installed_page_is_the_built_one(self):
        with open(MAN, "rb") as plain, gzip.open(MAN + ".gz") as packed:
            self.assertEqual(plain.read(), packed.read())

    def test_it_has_the_sections_of_a_command_manual(self):
        for title in ("NAME", "SYNOPSIS", "DESCRIPTION", "COMMANDS", "OPTIONS", "EXIT STATUS",
                      "ENVIRONMENT", "FILES", "EXAMPLES", "SEE ALSO"):
            self.assertIn(title, self.sections, "no %s section" % title)

    def test_it_names_the_version_the_program_reports(self):
        version = run(WHSEM, "--version").stdout.split()[-1]
        self.assertIn("libwhsem " + version, self.text.splitlines()[-1])

    def test_every_command_has_a_section_and_a_synopsis(self):
        listed = commands()
        self.assertGreaterEqual(len(listed), 5, listed)
        for c in listed:
            self.assertIn(c, self.commands, "no section 'whsem %s' under COMMANDS" % c)
            self.assertMentions(self.sections["SYNOPSIS"], c, "SYNOPSIS")

    def test_every_option_of_a_command_is_in_its_section(self):
        for c in commands():
            opts = options(help_text(c))
            if c != "help":
                self.assertIn("--help", opts, "could not read the options of whsem %s --help" % c)
            for o in sorted(opts):
                self.assertMentions(self.commands[c], o, "the section of whsem %s" % c)

    def test_the_global_options_are_in_options(self):
        opts = options(help_text())
        self.assertEqual(opts, {"-h", "--help", "-V", "--version"})
        for o in sorted(opts | {"--backend"}):
            self.assertMentions(self.sections["OPTIONS"], o, "OPTIONS")

    def test_every_exit_code_is_in_exit_status(self):
        codes = set()
        for c in commands():
            # "  75 (or -E N)  no ticket...", "0 on success, 1 if ...": not
            # the codes of other programs it mentions.
            for line in section(help_text(c), "Exit status"):
                codes.update(re.findall(r"^\s+(\d+)\b", line))
                codes.update(re.findall(r"\b(\d+) (?:on|if)\b", line))
        self.assertTrue({"0", "1", "2", "75", "125", "126", "127"} <= codes, codes)
        for code in sorted(codes):
            self.assertMentions(self.sections["EXIT STATUS"], code, "EXIT STATUS")

    def test_every_environment_variable_is_in_environment(self):
        variables = set(re.findall(r"\$([A-Z][A-Z_]+)", help_text()))
        self.assertIn("WHSEM_BACKEND", variables)
        for v in sorted(variables):
            self.assertMentions(self.sections["ENVIRONMENT"], v, "ENVIRONMENT")

    def test_files_names_the_segments(self):
        self.assertIn("/dev/shm/whsem.", self.sections["FILES"])
        self.assertIn("/dev/shm/whsem#", self.sections["FILES"])

    def test_examples_use_real_commands(self):
        used = re.findall(r"^\s+whsem ([a-z]+)", self.sections["EXAMPLES"], re.M)
        self.assertTrue(used)
        for c in used:
            self.assertIn(c, commands())


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    WHSEM, MAN = sys.argv[1], sys.argv[2]
    unittest.main(argv=[sys.argv[0]] + sys.argv[3:], verbosity=2)
