# SPDX-License-Identifier: MIT
# Builds libwhsem for one runtime of the NuGet package and writes it,
# stripped, where the package takes it from. `dotnet pack` runs it
# (NativeLibraries.targets), so that packing needs no earlier CMake step:
#
#   cmake -DSOURCE_DIR=<repository> -DBINARY_DIR=<build tree> -DRID=linux-x64|win-x64
#         -DOUTPUT=<file> -P build-native.cmake
#
# linux-x64: libwhsem.so.1 built with WHSEM_PORTABLE_GLIBC, so that it loads
#            on glibc 2.28 and later, not only on the glibc it is built on;
# win-x64:   whsem.dll cross-built with MinGW-w64, with its version resource.
# What the build prints goes to BINARY_DIR/build-native.log; a failure shows
# its end.
foreach(var SOURCE_DIR BINARY_DIR RID OUTPUT)
  if(NOT DEFINED ${var} OR "${${var}}" STREQUAL "")
    message(FATAL_ERROR "build-native.cmake: -D${var}=... is required")
  endif()
endforeach()

if(RID STREQUAL "linux-x64")
  set(configure_args -DWHSEM_PORTABLE_GLIBC=ON)
  set(built ${BINARY_DIR}/libwhsem.so.1)
  set(needed cc)
  set(hint "a C compiler (apt-get install gcc)")
elseif(RID STREQUAL "win-x64")
  set(configure_args -DCMAKE_TOOLCHAIN_FILE=${SOURCE_DIR}/src/win32/mingw-w64-x86_64.cmake)
  set(built ${BINARY_DIR}/bin/whsem.dll)
  set(needed x86_64-w64-mingw32-gcc-posix x86_64-w64-mingw32-windres x86_64-w64-mingw32-strip)
  set(hint "MinGW-w64 (apt-get install gcc-mingw-w64-x86-64-posix g++-mingw-w64-x86-64-posix)")
else()
  message(FATAL_ERROR "build-native.cmake: RID must be linux-x64 or win-x64, not '${RID}'")
endif()
foreach(tool ${needed})
  find_program(found_${tool} ${tool})
  if(NOT found_${tool})
    message(FATAL_ERROR "LibWhsem's package holds libwhsem for ${RID}, and building it needs ${tool}: install ${hint}, "
                        "or give a library built elsewhere (see bindings/csharp/README.md, 'Packing')")
  endif()
endforeach()

file(MAKE_DIRECTORY ${BINARY_DIR})
set(log ${BINARY_DIR}/build-native.log)
file(WRITE ${log} "")
cmake_host_system_information(RESULT jobs QUERY NUMBER_OF_LOGICAL_CORES)

function(step what)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  file(APPEND ${log} "$ ${ARGN}\n${out}\n")
  if(NOT rc EQUAL 0)
    string(LENGTH "${out}" n)
    if(n GREATER 3000)
      math(EXPR from "${n} - 3000")
      string(SUBSTRING "${out}" ${from} -1 out)
    endif()
    message(FATAL_ERROR "${what} libwhsem for ${RID} failed (${rc}); the log is ${log}. Its end:\n${out}")
  endif()
endfunction()

# Only the shared library: no tests, benchmarks or bindings, whose tools a
# packing machine need not have. RelWithDebInfo is the project's default
# build, the one its suites test (-O2, as distributions build).
step("Configuring" ${CMAKE_COMMAND} -S ${SOURCE_DIR} -B ${BINARY_DIR} -DCMAKE_BUILD_TYPE=RelWithDebInfo
     -DWHSEM_BUILD_TESTS=OFF -DWHSEM_BUILD_BENCHMARKS=OFF ${configure_args})
step("Building" ${CMAKE_COMMAND} --build ${BINARY_DIR} --target whsem -j ${jobs})
# The build keeps its debug information (the ABI check reads it); the
# package ships without, as `cmake --install --strip` would, with the
# strip of the build's own toolchain.
load_cache(${BINARY_DIR} READ_WITH_PREFIX cache_ CMAKE_STRIP)
if(NOT cache_CMAKE_STRIP)
  message(FATAL_ERROR "The build tree ${BINARY_DIR} names no strip program (CMAKE_STRIP)")
endif()
get_filename_component(output_dir ${OUTPUT} DIRECTORY)
file(MAKE_DIRECTORY ${output_dir})
step("Stripping" ${cache_CMAKE_STRIP} -o ${OUTPUT} ${built})
message(STATUS "libwhsem for ${RID}: ${OUTPUT}")
