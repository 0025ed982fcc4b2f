# SPDX-License-Identifier: MIT
# Configures, builds and tests one sanitizer build of the C library.
# Invoked by CTest with -DSOURCE_DIR, -DBINARY_DIR, -DKIND, -DGENERATOR.
cmake_host_system_information(RESULT jobs QUERY NUMBER_OF_LOGICAL_CORES)
function(step)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "sanitize ${KIND}: '${ARGN}' failed (${rc})")
  endif()
endfunction()
step(${CMAKE_COMMAND} -S ${SOURCE_DIR} -B ${BINARY_DIR} -G ${GENERATOR}
     -DCMAKE_BUILD_TYPE=RelWithDebInfo -DWHSEM_SANITIZE=${KIND}
     -DWHSEM_BUILD_BENCHMARKS=OFF -DWHSEM_C_SUITES_ONLY=ON)
step(${CMAKE_COMMAND} --build ${BINARY_DIR} -j ${jobs})
# halt_on_error: the first report fails the run; sanitizer reports from
# forked children surface as their non-zero exit codes.
set(ENV{ASAN_OPTIONS} "detect_leaks=1:abort_on_error=0:halt_on_error=1")
set(ENV{UBSAN_OPTIONS} "print_stacktrace=1:halt_on_error=1")
set(ENV{TSAN_OPTIONS} "halt_on_error=1:second_deadlock_stack=1:die_after_fork=0")
step(${CMAKE_CTEST_COMMAND} --test-dir ${BINARY_DIR} -L "^c$|library|^pg$" --output-on-failure -j ${jobs})
