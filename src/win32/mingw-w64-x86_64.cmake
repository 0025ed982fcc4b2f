# SPDX-License-Identifier: MIT
# CMake toolchain file: cross-build whsem.dll and its tests for 64-bit
# Windows with Debian's MinGW-w64 compilers. The -posix variants are the
# ones whose C++ runtime has std::thread and std::mutex (googletest needs
# them); the library itself uses only Win32.
#   cmake -S . -B build-win -DCMAKE_TOOLCHAIN_FILE=src/win32/mingw-w64-x86_64.cmake
set(CMAKE_SYSTEM_NAME Windows)
set(CMAKE_SYSTEM_PROCESSOR x86_64)

set(WHSEM_MINGW_TRIPLET x86_64-w64-mingw32)
set(CMAKE_C_COMPILER ${WHSEM_MINGW_TRIPLET}-gcc-posix)
set(CMAKE_CXX_COMPILER ${WHSEM_MINGW_TRIPLET}-g++-posix)
set(CMAKE_RC_COMPILER ${WHSEM_MINGW_TRIPLET}-windres)

set(CMAKE_FIND_ROOT_PATH /usr/${WHSEM_MINGW_TRIPLET})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)
