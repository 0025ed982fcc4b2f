# SPDX-License-Identifier: MIT
# The Windows build, included by the top-level CMakeLists.txt when the
# target is Windows (cross-built with src/win32/mingw-w64-x86_64.cmake):
# whsem.dll, its import library libwhsem.dll.a, and, with
# WHSEM_BUILD_TESTS, the Windows test suites (tests/windows), which CTest
# runs through CMAKE_CROSSCOMPILING_EMULATOR (Wine on Linux). The options
# are the top-level CMakeLists.txt's.

set(CMAKE_C_STANDARD 11)
set(CMAKE_C_STANDARD_REQUIRED ON)
set(CMAKE_C_EXTENSIONS ON)
set(CMAKE_CXX_STANDARD 17)
set(CMAKE_CXX_STANDARD_REQUIRED ON)
if(NOT CMAKE_BUILD_TYPE AND NOT CMAKE_CONFIGURATION_TYPES)
  set(CMAKE_BUILD_TYPE RelWithDebInfo CACHE STRING "Build type" FORCE)
endif()

# The C both libraries share (shared_sources.cmake) and the Win32
# primitives and shared-memory segment under it.
include(${PROJECT_SOURCE_DIR}/src/shared_sources.cmake)
set(WHSEM_WIN32_SOURCES
  ${WHSEM_SHARED_SOURCES}
  src/win32/async_os.c
  src/win32/errors.c
  src/win32/handles_os.c
  src/win32/pg_unsupported.c
  src/win32/process.c
  src/win32/segment.c
  src/win32/semaphore.c)
list(TRANSFORM WHSEM_WIN32_SOURCES PREPEND ${PROJECT_SOURCE_DIR}/)
set(WHSEM_DEF_FILE ${PROJECT_SOURCE_DIR}/abi/whsem.def)
# Programs next to whsem.dll, where Windows (and Wine) look for it.
set(CMAKE_RUNTIME_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR}/bin)

function(whsem_win32_configure target)
  target_include_directories(${target} PUBLIC ${PROJECT_SOURCE_DIR}/abi
    PRIVATE ${PROJECT_SOURCE_DIR}/src ${PROJECT_SOURCE_DIR}/src/win32)
  # Windows 8 APIs (GetSystemTimePreciseAsFileTime); UNICODE: the W
  # functions are the ones used, named explicitly.
  target_compile_definitions(${target} PRIVATE WHSEM_BUILDING _WIN32_WINNT=0x0602 UNICODE _UNICODE)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wshadow -Wstrict-prototypes
    -Wmissing-prototypes -g)
  # synchronization: WaitOnAddress (Windows 8).
  target_link_libraries(${target} PRIVATE advapi32 synchronization)
endfunction()

# whsem.dll: exports exactly the functions listed in abi/whsem.def (which
# abi/generate.py derives from abi/whsem.abi.json), and depends on no
# MinGW runtime DLL (libgcc is linked in statically).
add_library(whsem SHARED ${WHSEM_WIN32_SOURCES} ${PROJECT_SOURCE_DIR}/src/win32/dllmain.c
            ${WHSEM_DEF_FILE})
whsem_win32_configure(whsem)
set_target_properties(whsem PROPERTIES
  PREFIX ""
  OUTPUT_NAME whsem
  PUBLIC_HEADER abi/whsem.h
  LINK_DEPENDS ${WHSEM_DEF_FILE})
target_link_options(whsem PRIVATE -static-libgcc -Wl,--no-undefined)

# The same code as a static library (define WHSEM_STATIC when including
# whsem.h), for programs that link libwhsem statically.
add_library(whsem_static STATIC ${WHSEM_WIN32_SOURCES})
whsem_win32_configure(whsem_static)
target_compile_definitions(whsem_static PUBLIC WHSEM_STATIC)
target_link_libraries(whsem_static PUBLIC advapi32 synchronization)

include(GNUInstallDirs)
install(TARGETS whsem
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  PUBLIC_HEADER DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(FILES ${WHSEM_DEF_FILE} DESTINATION ${CMAKE_INSTALL_LIBDIR})
include(${PROJECT_SOURCE_DIR}/src/win32/artifact.cmake)

if(WHSEM_BUILD_TESTS)
  enable_testing()
  add_subdirectory(tests/windows)
endif()
