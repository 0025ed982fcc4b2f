# SPDX-License-Identifier: MIT
# What whsem.dll ships with, included by windows.cmake once its targets and
# install rules exist: a version resource, the PE header's versions, an
# import library for MSVC, and the ZIP that `cpack -G ZIP` makes of the
# installed tree:
#   bin/whsem.dll          stripped (CPACK_STRIP_FILES; `cmake --install --strip`)
#   include/whsem.h
#   lib/libwhsem.dll.a     the MinGW import library
#   lib/whsem.lib          the MSVC import library
#   lib/whsem.def          the exports, for making an import library of another kind
#   LICENSE

# Explorer and GetFileVersionInfo read the version from the resource.
enable_language(RC)
configure_file(${PROJECT_SOURCE_DIR}/src/win32/whsem.rc.in ${PROJECT_BINARY_DIR}/whsem.rc @ONLY)
target_sources(whsem PRIVATE ${PROJECT_BINARY_DIR}/whsem.rc)
# VERSION becomes the image version (major.minor) of the PE header. The
# operating system and subsystem versions there name the oldest Windows the
# DLL runs on: 6.2, Windows 8 and Server 2012, which introduced
# WaitOnAddress and GetSystemTimePreciseAsFileTime (src/win32/README.md).
set_target_properties(whsem PROPERTIES VERSION ${PROJECT_VERSION_MAJOR}.${PROJECT_VERSION_MINOR})
target_link_options(whsem PRIVATE
  -Wl,--major-os-version,6,--minor-os-version,2,--major-subsystem-version,6,--minor-subsystem-version,2)

# whsem.lib, from the same .def file that defines the DLL's exports.
# llvm-dlltool writes the short import format that Microsoft's own lib.exe
# writes; MinGW's dlltool, the fallback, writes the older long format, which
# link.exe reads too.
find_program(WHSEM_DLLTOOL NAMES llvm-dlltool llvm-dlltool-19 llvm-dlltool-18 llvm-dlltool-17
             llvm-dlltool-16 llvm-dlltool-15 llvm-dlltool-14)
if(NOT WHSEM_DLLTOOL)
  find_program(WHSEM_DLLTOOL NAMES ${WHSEM_MINGW_TRIPLET}-dlltool x86_64-w64-mingw32-dlltool REQUIRED)
  message(STATUS "whsem.lib: llvm-dlltool not found, using ${WHSEM_DLLTOOL}")
endif()
set(WHSEM_MSVC_IMPORT_LIBRARY ${PROJECT_BINARY_DIR}/whsem.lib)
add_custom_command(OUTPUT ${WHSEM_MSVC_IMPORT_LIBRARY}
  COMMAND ${WHSEM_DLLTOOL} -m i386:x86-64 -d ${WHSEM_DEF_FILE} -D whsem.dll -l ${WHSEM_MSVC_IMPORT_LIBRARY}
  DEPENDS ${WHSEM_DEF_FILE}
  COMMENT "Making the MSVC import library whsem.lib"
  VERBATIM)
add_custom_target(whsem_msvc_import_library ALL DEPENDS ${WHSEM_MSVC_IMPORT_LIBRARY})
install(FILES ${WHSEM_MSVC_IMPORT_LIBRARY} DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(FILES ${PROJECT_SOURCE_DIR}/LICENSE DESTINATION .)

set(CPACK_GENERATOR ZIP)
set(CPACK_PACKAGE_NAME libwhsem)
set(CPACK_PACKAGE_VENDOR "the libwhsem authors")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "${PROJECT_DESCRIPTION}")
set(CPACK_PACKAGE_FILE_NAME libwhsem-${PROJECT_VERSION}-win64)
set(CPACK_RESOURCE_FILE_LICENSE ${PROJECT_SOURCE_DIR}/LICENSE)
set(CPACK_STRIP_FILES ON)
include(CPack)
