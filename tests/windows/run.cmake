# SPDX-License-Identifier: MIT
# Cross-builds the project for Windows and runs that build's tests under
# Wine. Invoked by CTest (test windows_wine) with -DSOURCE_DIR,
# -DBINARY_DIR and -DGENERATOR.
#
# Wine needs care to be fast and reliable in CI: a fresh prefix under the
# build tree (names are shared per prefix, and a stale one may hold a
# previous run's state), and a wineserver that is started once, warmed up
# and kept running (-p) for the whole run. Without that, every test waits
# seconds for Wine to shut down, and the first may hang initialising the
# prefix. The server is stopped at the end, pass or fail.
cmake_host_system_information(RESULT jobs QUERY NUMBER_OF_LOGICAL_CORES)

set(missing "")
foreach(tool x86_64-w64-mingw32-gcc-posix x86_64-w64-mingw32-g++-posix x86_64-w64-mingw32-objdump
             wine wineboot wineserver)
  find_program(found_${tool} ${tool})
  if(NOT found_${tool})
    list(APPEND missing ${tool})
  endif()
endforeach()
if(missing)
  message(FATAL_ERROR "windows: missing ${missing}; install gcc-mingw-w64-x86-64-posix "
                      "g++-mingw-w64-x86-64-posix wine wine64 (.ci/setup all does)")
endif()

set(prefix ${BINARY_DIR}/wineprefix)
file(REMOVE_RECURSE ${prefix})
file(MAKE_DIRECTORY ${BINARY_DIR})
set(ENV{WINEPREFIX} ${prefix})
set(ENV{WINEDEBUG} -all)
set(ENV{WINEDLLOVERRIDES} "mscoree,mshtml=") # no Mono or Gecko installer prompts
unset(ENV{DISPLAY})
unset(ENV{WAYLAND_DISPLAY})

set(failed "")
# Runs one step unless an earlier one failed; a failure is remembered so
# that the wineserver is still stopped.
function(step what timeout)
  if(failed)
    return()
  endif()
  string(TIMESTAMP t0 "%s")
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc TIMEOUT ${timeout})
  string(TIMESTAMP t1 "%s")
  math(EXPR secs "${t1} - ${t0}")
  message(STATUS "windows: ${what}: ${rc} (${secs} s)")
  if(NOT rc EQUAL 0)
    set(failed "${what} failed (${rc})" PARENT_SCOPE)
  endif()
endfunction()

step("wineboot -i" 300 ${found_wineboot} -i)
step("wineserver -w" 120 ${found_wineserver} -w)
# Persistent from here on. The server goes to the background; its output
# goes to a file, or this script (and CTest) would wait for the pipe that
# the server kept open.
step("wineserver -p" 60 sh -c "exec '${found_wineserver}' -p >'${BINARY_DIR}/wineserver.log' 2>&1")
# The first program of a prefix starts Wine's own services, which keep
# running with the server and keep what they inherited: a file, not a pipe.
step("warm-up" 120 sh -c "exec '${found_wine}' cmd /c exit >'${BINARY_DIR}/warmup.log' 2>&1")
step("configure" 300 ${CMAKE_COMMAND} -S ${SOURCE_DIR} -B ${BINARY_DIR} -G ${GENERATOR}
     -DCMAKE_TOOLCHAIN_FILE=${SOURCE_DIR}/src/win32/mingw-w64-x86_64.cmake
     -DCMAKE_BUILD_TYPE=Release)
step("build" 900 ${CMAKE_COMMAND} --build ${BINARY_DIR} -j ${jobs})
step("ctest" 900 ${CMAKE_CTEST_COMMAND} --test-dir ${BINARY_DIR} --output-on-failure -j ${jobs})

execute_process(COMMAND ${found_wineserver} -k RESULT_VARIABLE rc TIMEOUT 60)
message(STATUS "windows: wineserver -k: ${rc}")
if(failed)
  message(FATAL_ERROR "windows: ${failed}")
endif()
