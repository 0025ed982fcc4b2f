/* SPDX-License-Identifier: MIT */
/*
 * What the other process of a multi-process test does, by command, so that
 * one test body serves both platforms: on Linux the test forks and the
 * child runs the command (util.h's Child); on Windows, which cannot fork,
 * the test starts tests/windows/helper.c, which runs it.
 *
 *   hold NAME MAX N          take N tickets, print "ready", sleep until killed
 *   open NAME MAX            open the name, print "ready", sleep until killed
 *   try NAME MAX             one try: 0 if nothing was free, 2 if a ticket was
 *   wait NAME MAX MS         wait up to MS for a ticket: 0 if one came
 *   query NAME               print "free=F waiters=W holders=H recoveries=R"
 *   asyncrace NAME MAX ITER SEED  asynchronous acquisitions racing endings
 *   exitpending NAME MAX     exit with 200 operations pending
 *   fault POINT NAME MAX HELD     hold HELD tickets, then die at POINT
 *                                 (attach, acquire, release)
 *   faultscan NAME MAX GO    open; when file GO exists, die reclaiming a dead
 *                            holder's tickets (fault point scan)
 *   faulthandoff NAME GO     hold the only ticket; when file GO exists, die
 *                            between granting it and the wake-up (handoff)
 *
 * The fault commands need a build with fault points (WHSEM_FAULT_INJECTION):
 * Linux's fault suite, Windows' whsem_win_helper_fi.exe.
 *
 * MAX 0 (or none) opens an existing name. Exit codes: 0 as expected,
 * anything else says what went wrong (see each command).
 */
#ifndef WHTEST_COMMANDS_H
#define WHTEST_COMMANDS_H

#include "whsem.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The exit code of an unknown command or wrong arguments. */
#define WHTEST_USAGE 64

/* Runs argv[0] with its arguments; returns the exit code. */
int whtest_command(int argc, char **argv);

/* Prints what failed and returns code, for a command's error paths. */
int whtest_fail(const char *what, whsem_status st, int code);

#ifdef __cplusplus
}
#endif

#endif
