# SPDX-License-Identifier: MIT
# Builds the Debian packages in a tree of their own and checks them.
# Invoked by CTest with -DSOURCE_DIR, -DBINARY_DIR, -DGENERATOR, -DCHECK.
cmake_host_system_information(RESULT jobs QUERY NUMBER_OF_LOGICAL_CORES)
function(step)
  execute_process(COMMAND ${ARGN} WORKING_DIRECTORY ${BINARY_DIR} RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "packaging: '${ARGN}' failed (${rc})")
  endif()
endfunction()

# The flags Debian builds its packages with (hardening included), as
# debian/rules would pass them.
set(ENV{DEB_BUILD_MAINT_OPTIONS} "hardening=+all")
foreach(kind CFLAGS CXXFLAGS CPPFLAGS LDFLAGS)
  execute_process(COMMAND dpkg-buildflags --get ${kind} OUTPUT_VARIABLE ${kind}
                  OUTPUT_STRIP_TRAILING_WHITESPACE RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "packaging: dpkg-buildflags (dpkg-dev) is needed: .ci/setup installs it")
  endif()
endforeach()

file(MAKE_DIRECTORY ${BINARY_DIR})
step(${CMAKE_COMMAND} -S ${SOURCE_DIR} -B ${BINARY_DIR} -G ${GENERATOR}
     -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX=/usr -DWHSEM_BUILD_STATIC=ON
     -DWHSEM_BUILD_TESTS=OFF -DWHSEM_BUILD_BENCHMARKS=OFF
     "-DCMAKE_C_FLAGS=${CFLAGS} ${CPPFLAGS}" "-DCMAKE_CXX_FLAGS=${CXXFLAGS} ${CPPFLAGS}"
     "-DCMAKE_EXE_LINKER_FLAGS=${LDFLAGS}" "-DCMAKE_SHARED_LINKER_FLAGS=${LDFLAGS}")
step(${CMAKE_COMMAND} --build ${BINARY_DIR} -j ${jobs})
file(GLOB old ${BINARY_DIR}/*.deb)
if(old)
  file(REMOVE ${old})
endif()
step(${CMAKE_CPACK_COMMAND} -G DEB --config ${BINARY_DIR}/CPackConfig.cmake)
step(bash ${CHECK} ${BINARY_DIR} ${SOURCE_DIR})
