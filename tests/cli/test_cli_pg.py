#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The whsem commands of test_cli.py that look at names (status, list -l,
prune, durations) again on PostgreSQL: the same tests, with every whsem
they start given WHSEM_BACKEND, on the test cluster (CTest's pg fixture).

Usage: test_cli_pg.py PATH_TO_WHSEM [unittest arguments]
Environment (required): WHSEM_TEST_PG_BACKEND, a connection string of the
test cluster.
"""
import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_cli  # noqa: E402  (after the path it is found on)

PG = os.environ.get("WHSEM_TEST_PG_BACKEND", "")


class PgStatusProcesses(test_cli.TestStatusProcesses):
    BACKEND = PG


class PgList(test_cli.TestList):
    BACKEND = PG


class PgDurations(test_cli.TestDurations):
    BACKEND = PG


class PgPrune(test_cli.TestPrune):
    BACKEND = PG


class PgMode(test_cli.CliTestCase):
    BACKEND = PG

    def test_mode_is_refused_with_a_backend_from_the_environment(self):
        r = self.whsem("run", self.name, "1", "--mode", "0666", "--", "true")
        self.assertEqual(r.returncode, 2)
        self.assertIn("PostgreSQL", r.stderr)
        self.assertEqual(self.whsem("status", self.name).returncode, 1)  # nothing created

    def test_the_tests_really_use_the_database(self):
        # A name made here is the database's, not a file of this machine.
        self.assertEqual(self.whsem("run", self.name, "1", "--", "true").returncode, 0)
        self.assertFalse(os.path.exists("/dev/shm/whsem." + self.name))
        self.assertEqual(self.status_json()["backend"], "postgresql")
        local = subprocess.run([test_cli.WHSEM, "status", self.name], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, timeout=60,
                               env={k: v for k, v in os.environ.items() if k != "WHSEM_BACKEND"})
        self.assertEqual(local.returncode, 1, local.stdout)


if __name__ == "__main__":
    if len(sys.argv) < 2 or not os.access(sys.argv[1], os.X_OK) or not PG:
        sys.exit(__doc__)
    test_cli.WHSEM = os.path.abspath(sys.argv.pop(1))
    test_cli.default_signals()
    unittest.main(verbosity=2)
