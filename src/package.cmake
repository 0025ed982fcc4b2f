# SPDX-License-Identifier: MIT
# What a program using libwhsem builds against, in the build tree
# (add_subdirectory, FetchContent) and once installed (find_package(whsem
# CONFIG), pkg-config whsem), on Linux:
#
#   default                   libwhsem.so.1        whsem::whsem_shared
#   -DWHSEM_BUILD_STATIC=ON   and libwhsem.a       whsem::whsem_static
#   -DBUILD_SHARED_LIBS=OFF   libwhsem.a alone     whsem::whsem_static
#
# whsem::whsem is the one BUILD_SHARED_LIBS asks for (the shared library
# unless it is OFF), as zstd's zstd::libzstd is: code written against it
# follows the packager's or the parent project's choice, and code that
# needs one kind names it. A distribution builds both in one tree
# (WHSEM_BUILD_STATIC=ON), as zstd and libuv do; BUILD_SHARED_LIBS=OFF
# installs no shared library, as libgit2 does.
include(CMakePackageConfigHelpers)

if(DEFINED BUILD_SHARED_LIBS AND NOT BUILD_SHARED_LIBS)
  set(WHSEM_SHARED_WANTED OFF)
else()
  set(WHSEM_SHARED_WANTED ON)
endif()
set(whsem_installed_libraries "")

add_library(whsem::whsem_shared ALIAS whsem)
set_target_properties(whsem PROPERTIES EXPORT_NAME whsem_shared)
if(WHSEM_SHARED_WANTED)
  list(APPEND whsem_installed_libraries whsem)
elseif(NOT WHSEM_BUILD_TESTS)
  # The test suite and the bindings load libwhsem.so.1 whatever users
  # link; nothing else needs it built.
  set_target_properties(whsem PROPERTIES EXCLUDE_FROM_ALL ON)
endif()

if(WHSEM_BUILD_STATIC OR NOT WHSEM_SHARED_WANTED)
  add_library(whsem_static STATIC ${WHSEM_SOURCES})
  whsem_configure(whsem_static)
  # libwhsem.a beside libwhsem.so, as -lwhsem -static expects. Position
  # independent, so that it may go into a user's shared object too. Every
  # symbol it defines starts with whsem_, so it takes no name of the
  # program's.
  set_target_properties(whsem_static PROPERTIES
    OUTPUT_NAME whsem
    POSITION_INDEPENDENT_CODE ON
    EXPORT_NAME whsem_static)
  add_library(whsem::whsem_static ALIAS whsem_static)
  list(APPEND whsem_installed_libraries whsem_static)
endif()

add_library(whsem_preferred INTERFACE)
if(WHSEM_SHARED_WANTED)
  target_link_libraries(whsem_preferred INTERFACE whsem)
else()
  target_link_libraries(whsem_preferred INTERFACE whsem_static)
endif()
set_target_properties(whsem_preferred PROPERTIES EXPORT_NAME whsem)
add_library(whsem::whsem ALIAS whsem_preferred)

# Components: Runtime is what a program needs to run (libwhsem.so.1),
# Development what building one needs (a distribution's -dev package).
set(WHSEM_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/whsem)
install(TARGETS ${whsem_installed_libraries} whsem_preferred EXPORT whsem-targets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT Runtime NAMELINK_COMPONENT Development
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT Development
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(FILES ${PROJECT_SOURCE_DIR}/abi/whsem.h DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} COMPONENT Development)
install(EXPORT whsem-targets NAMESPACE whsem:: FILE whsemTargets.cmake
  DESTINATION ${WHSEM_CMAKE_DIR} COMPONENT Development)
configure_package_config_file(${PROJECT_SOURCE_DIR}/pkgconfig/whsemConfig.cmake.in
  ${PROJECT_BINARY_DIR}/whsemConfig.cmake INSTALL_DESTINATION ${WHSEM_CMAKE_DIR})
# A 1.x program builds against any 1.y, y >= x: minor releases only add.
write_basic_package_version_file(${PROJECT_BINARY_DIR}/whsemConfigVersion.cmake
  COMPATIBILITY SameMajorVersion)
install(FILES ${PROJECT_BINARY_DIR}/whsemConfig.cmake ${PROJECT_BINARY_DIR}/whsemConfigVersion.cmake
  DESTINATION ${WHSEM_CMAKE_DIR} COMPONENT Development)

# whsem.pc is written when installing, for the prefix installed to
# (pkgconfig/install_pc.cmake says why). What static linking needs besides
# libwhsem.a: the same libraries the shared one links.
set(WHSEM_PC_LIBS_PRIVATE -lpthread)
foreach(lib IN LISTS CMAKE_DL_LIBS)
  list(APPEND WHSEM_PC_LIBS_PRIVATE -l${lib})
endforeach()
list(JOIN WHSEM_PC_LIBS_PRIVATE " " WHSEM_PC_LIBS_PRIVATE)
install(CODE "
  set(WHSEM_PC_TEMPLATE \"${PROJECT_SOURCE_DIR}/pkgconfig/whsem.pc.in\")
  set(WHSEM_PC_LIBDIR \"${CMAKE_INSTALL_LIBDIR}\")
  set(WHSEM_PC_INCLUDEDIR \"${CMAKE_INSTALL_INCLUDEDIR}\")
  set(WHSEM_PC_LIBS_PRIVATE \"${WHSEM_PC_LIBS_PRIVATE}\")
  set(PROJECT_DESCRIPTION \"${PROJECT_DESCRIPTION}\")
  set(PROJECT_HOMEPAGE_URL \"${PROJECT_HOMEPAGE_URL}\")
  set(PROJECT_VERSION \"${PROJECT_VERSION}\")
  include(\"${PROJECT_SOURCE_DIR}/pkgconfig/install_pc.cmake\")"
  COMPONENT Development)
