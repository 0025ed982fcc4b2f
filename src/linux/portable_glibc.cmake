# SPDX-License-Identifier: MIT
# WHSEM_PORTABLE_GLIBC: a libwhsem.so that runs on glibc 2.28 and later
# although it is built against a newer one. The NuGet package's build
# (bindings/csharp/LibWhsem/build-native.cmake) turns it on; distributions,
# which build against their own glibc, have no use for it.
option(WHSEM_PORTABLE_GLIBC
  "Bind libwhsem.so to glibc symbol versions of 2.28 or older (x86_64), for binary packages" OFF)

function(whsem_portable_glibc target)
  if(NOT WHSEM_PORTABLE_GLIBC)
    return()
  endif()
  if(NOT CMAKE_SYSTEM_PROCESSOR MATCHES "^(x86_64|AMD64|amd64)$")
    message(FATAL_ERROR "WHSEM_PORTABLE_GLIBC supports x86_64 only, not ${CMAKE_SYSTEM_PROCESSOR}")
  endif()
  if(NOT WHSEM_SANITIZE STREQUAL "")
    # The sanitizers' interceptors replace pthread_create by its name only.
    message(FATAL_ERROR "WHSEM_PORTABLE_GLIBC cannot be combined with WHSEM_SANITIZE")
  endif()
  target_compile_options(${target} PRIVATE -include ${PROJECT_SOURCE_DIR}/src/linux/glibc_2_28.h)
  # Before glibc 2.34 the pinned pthread and dl functions are defined in
  # these two libraries, which must then be loaded with libwhsem; since,
  # they are empty and cost a file each.
  target_link_libraries(${target} PRIVATE -Wl,--push-state,--no-as-needed -l:libpthread.so.0 -l:libdl.so.2
                        -Wl,--pop-state)
endfunction()
