# SPDX-License-Identifier: MIT
# Debian packages from this build: `cpack -G DEB` in a tree configured with
# -DCMAKE_INSTALL_PREFIX=/usr (so that libraries go to the multiarch
# directory) and -DWHSEM_BUILD_STATIC=ON makes three, one per install
# component:
#
#   component    package        holds
#   Runtime      libwhsem1      libwhsem.so.1 (Section libs)
#   Development  libwhsem-dev   whsem.h, libwhsem.so, libwhsem.a, whsem.pc,
#                               the CMake package (Section libdevel)
#   CLI          whsem          the whsem command, whsem(1), its bash
#                               completion (Section utils)
#
# Whatever else is installed joins a package by naming its component.
# Each package also gets /usr/share/doc/<package>/copyright (machine-readable)
# and changelog.Debian.gz, installed only by component installs (CPack's),
# never by a plain `cmake --install`; libwhsem1 gets a symbols file made
# from abi/whsem.abi.json. tests/packaging builds the packages and checks
# them (lintian, an install into a scratch root, a consumer).

set(WHSEM_PACKAGE_MAINTAINER "libwhsem authors <maintainers@libwhsem.invalid>"
    CACHE STRING "Maintainer field of the Debian packages (set it when you publish them)")
set(WHSEM_DEB_RELEASE 1 CACHE STRING "Debian revision of the packages (the -N of 1.1.0-N)")
set(WHSEM_DEB_VERSION ${PROJECT_VERSION}-${WHSEM_DEB_RELEASE})
set(WHSEM_SONAME_PACKAGE libwhsem${PROJECT_VERSION_MAJOR})

# ---- the files of /usr/share/doc/<package> --------------------------------------

# RFC 2822 date of the changelog entry; SOURCE_DATE_EPOCH, when set, makes
# it reproducible.
string(TIMESTAMP WHSEM_DEB_DATE "%a, %d %b %Y %H:%M:%S +0000" UTC)
set(whsem_deb_dir ${PROJECT_BINARY_DIR}/debian)
# Fills in template `in` of this directory as configure_file(@ONLY) does,
# without its leading "#" lines: notes to the reader (the licence among
# them) in formats that have no comments.
function(whsem_deb_template in out)
  set(path ${CMAKE_CURRENT_FUNCTION_LIST_DIR}/${in})
  set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${path})
  file(READ ${path} text)
  while(text MATCHES "^#[^\n]*\n")
    string(REGEX REPLACE "^#[^\n]*\n" "" text "${text}")
  endwhile()
  file(CONFIGURE OUTPUT ${out} CONTENT "${text}" @ONLY)
endfunction()
whsem_deb_template(changelog.Debian.in ${whsem_deb_dir}/changelog.Debian)
set(WHSEM_DEB_SOURCE_FIELD "")
if(CMAKE_PROJECT_HOMEPAGE_URL)
  set(WHSEM_DEB_SOURCE_FIELD "Source: ${CMAKE_PROJECT_HOMEPAGE_URL}\n")
endif()
whsem_deb_template(copyright.in ${whsem_deb_dir}/copyright)
add_custom_command(OUTPUT ${whsem_deb_dir}/changelog.Debian.gz
  COMMAND ${WHSEM_GZIP} -9nkf ${whsem_deb_dir}/changelog.Debian
  DEPENDS ${whsem_deb_dir}/changelog.Debian
  VERBATIM)
add_custom_target(whsem_deb_changelog ALL DEPENDS ${whsem_deb_dir}/changelog.Debian.gz)

foreach(pair Runtime:${WHSEM_SONAME_PACKAGE} Development:libwhsem-dev CLI:whsem)
  string(REPLACE ":" ";" pair ${pair})
  list(GET pair 0 component)
  list(GET pair 1 package)
  install(FILES ${whsem_deb_dir}/copyright ${whsem_deb_dir}/changelog.Debian.gz
    DESTINATION ${CMAKE_INSTALL_DATAROOTDIR}/doc/${package}
    COMPONENT ${component}
    EXCLUDE_FROM_ALL)
endforeach()

# ---- the symbols file of libwhsem1 -----------------------------------------------
# One line per function, at the version node and with the upstream version
# that introduced it, plus the nodes themselves: a program built against
# this library then depends on the oldest libwhsem1 that has every symbol
# it uses. dpkg-gensymbols -c4 in tests/packaging checks it against the
# library.
file(READ ${PROJECT_SOURCE_DIR}/abi/whsem.abi.json whsem_abi)
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/abi/whsem.abi.json)
set(whsem_symbols)
string(JSON count LENGTH "${whsem_abi}" version_nodes)
math(EXPR last "${count} - 1")
foreach(i RANGE ${last})
  string(JSON node GET "${whsem_abi}" version_nodes ${i} name)
  string(JSON version GET "${whsem_abi}" version_nodes ${i} version)
  set(whsem_node_${version} ${node})
  list(APPEND whsem_symbols " ${node}@${node} ${version}.0")
endforeach()
string(JSON count LENGTH "${whsem_abi}" functions)
math(EXPR last "${count} - 1")
foreach(i RANGE ${last})
  string(JSON name GET "${whsem_abi}" functions ${i} name)
  string(JSON since GET "${whsem_abi}" functions ${i} since)
  list(APPEND whsem_symbols " ${name}@${whsem_node_${since}} ${since}.0")
endforeach()
list(SORT whsem_symbols)
list(JOIN whsem_symbols "\n" whsem_symbols)
file(WRITE ${whsem_deb_dir}/symbols
  "libwhsem.so.${PROJECT_VERSION_MAJOR} ${WHSEM_SONAME_PACKAGE} #MINVER#\n"
  "* Build-Depends-Package: libwhsem-dev\n"
  "${whsem_symbols}\n")

# ---- CPack ------------------------------------------------------------------------
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME libwhsem)
set(CPACK_PACKAGE_VENDOR "the libwhsem authors")
set(CPACK_PACKAGE_CONTACT "${WHSEM_PACKAGE_MAINTAINER}")
# Each package has a synopsis of its own (below): none shared to prepend.
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "")
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_ALL Runtime Development CLI)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_RELEASE ${WHSEM_DEB_RELEASE})
set(CPACK_DEBIAN_PACKAGE_SOURCE libwhsem)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
if(CMAKE_PROJECT_HOMEPAGE_URL)
  set(CPACK_DEBIAN_PACKAGE_HOMEPAGE ${CMAKE_PROJECT_HOMEPAGE_URL})
endif()
# The library is compiled with -g always (the ABI check reads it): strip
# what goes into packages.
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
# ${shlibs:Depends}: dpkg-shlibdeps on every ELF file of each package.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS_PRIVATE_DIRS ${PROJECT_BINARY_DIR})

# A shlibs file for every package with a shared library (libwhsem1 alone):
# "libwhsem 1 libwhsem1 (>= <this version>)", for tools that do not read
# symbols files.
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS ON)
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS_POLICY ">=")

set(CPACK_DEBIAN_RUNTIME_PACKAGE_NAME ${WHSEM_SONAME_PACKAGE})
set(CPACK_DEBIAN_RUNTIME_PACKAGE_SECTION libs)
# The ldconfig trigger, as dh_makeshlibs adds it (CPack's postinst and
# postrm also run ldconfig: lintian warns that this is redundant, and it
# is harmless).
file(WRITE ${whsem_deb_dir}/triggers "activate-noawait ldconfig\n")
set(CPACK_DEBIAN_RUNTIME_PACKAGE_CONTROL_EXTRA ${whsem_deb_dir}/symbols ${whsem_deb_dir}/triggers)
# The PostgreSQL backend loads libpq.so.5 when a program first names a
# database; nothing else needs it.
set(CPACK_DEBIAN_RUNTIME_PACKAGE_SUGGESTS "libpq5")
set(CPACK_DEBIAN_RUNTIME_DESCRIPTION
"named, crash-safe, cross-process counting semaphore (library)
libwhsem is a counting semaphore that every process of a machine (or of
every machine reaching one PostgreSQL database) shares by name, whatever
its language: C, Go, Rust, or C# through a drop-in for DistributedLock's
WaitHandleDistributedSemaphore. A ticket held by a process that dies, even
by SIGKILL, returns to the pool, and a canceled or timed-out wait never
loses one.

This package contains the shared library. The PostgreSQL backend uses
libpq5 when it is installed.")

set(CPACK_DEBIAN_DEVELOPMENT_PACKAGE_NAME libwhsem-dev)
set(CPACK_DEBIAN_DEVELOPMENT_PACKAGE_SECTION libdevel)
set(CPACK_DEBIAN_DEVELOPMENT_PACKAGE_DEPENDS "${WHSEM_SONAME_PACKAGE} (= ${WHSEM_DEB_VERSION})")
set(CPACK_DEBIAN_DEVELOPMENT_DESCRIPTION
"named, crash-safe, cross-process counting semaphore (development files)
libwhsem is a counting semaphore that every process of a machine (or of
every machine reaching one PostgreSQL database) shares by name, whatever
its language.

This package contains what building programs against libwhsem needs: the
header whsem.h, which documents every function, the static library, and
the files that pkg-config and CMake (find_package(whsem)) find.")

set(CPACK_DEBIAN_CLI_PACKAGE_NAME whsem)
set(CPACK_DEBIAN_CLI_PACKAGE_SECTION utils)
# dpkg-shlibdeps cannot see the symbols file of a package built alongside
# (CPack runs it with --ignore-missing-info), so the dependency it would
# compute from that file is stated here: the oldest libwhsem1 with every
# function the command uses. tests/packaging computes it with
# dpkg-shlibdeps and checks that the two agree.
set(CPACK_DEBIAN_CLI_PACKAGE_DEPENDS "${WHSEM_SONAME_PACKAGE} (>= 1.1.0)")
set(CPACK_DEBIAN_CLI_DESCRIPTION
"run commands under named, crash-safe, cross-process semaphores
whsem runs a command while holding one ticket of a named counting
semaphore, so that at most MAX such commands run at once, as flock(1)
serializes them: a job that crashes cannot keep its ticket. It also shows
who holds and waits (whsem status), lists and removes names, on this
machine or on a PostgreSQL database that several machines share.")

include(CPack)
