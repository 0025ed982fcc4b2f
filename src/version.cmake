# SPDX-License-Identifier: MIT
# The release version is written once, in the public header's
# WHSEM_VERSION_MAJOR/MINOR/PATCH (the manual states it and the library
# reports it), as libuv, zstd and libgit2 keep theirs. It is read before
# project(), so that the project, the shared library's file version,
# whsem.pc and the CMake package all take it from there (RELEASING.md).
file(STRINGS ${CMAKE_CURRENT_LIST_DIR}/../abi/whsem.h whsem_version_lines
     REGEX "^#define WHSEM_VERSION_(MAJOR|MINOR|PATCH) ")
foreach(part MAJOR MINOR PATCH)
  set(line ${whsem_version_lines})
  list(FILTER line INCLUDE REGEX "_${part} ")
  # Exactly one line, with a plain number: two definitions would make a list.
  if(NOT line MATCHES "^#define WHSEM_VERSION_${part} +([0-9]+)$")
    message(FATAL_ERROR "abi/whsem.h must define WHSEM_VERSION_${part} once, as a plain number")
  endif()
  set(WHSEM_VERSION_${part} ${CMAKE_MATCH_1})
endforeach()
set(WHSEM_VERSION ${WHSEM_VERSION_MAJOR}.${WHSEM_VERSION_MINOR}.${WHSEM_VERSION_PATCH})
