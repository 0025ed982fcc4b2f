#!/bin/sh
# SPDX-License-Identifier: MIT
# CMAKE_CROSSCOMPILING_EMULATOR of the Windows build: runs one Windows
# program under Wine, headless and quiet. run.cmake exports WINEPREFIX (a
# fresh prefix under the build tree, whose wineserver it keeps running);
# without it Wine uses its default prefix.
export WINEDEBUG="${WINEDEBUG:--all}"
export WINEDLLOVERRIDES="${WINEDLLOVERRIDES:-mscoree,mshtml=}"
unset DISPLAY WAYLAND_DISPLAY
exec wine "$@"
