# SPDX-License-Identifier: MIT
# Tests of what the Windows build ships (src/win32/artifact.cmake), part of
# the cross build's suite (tests/windows/CMakeLists.txt).

# The ZIP of `cpack -G ZIP`: its entries, whsem.dll's version resource and
# stripping, the import libraries.
add_test(NAME win_artifact_zip
  COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/check_artifact.py
          --cpack ${CMAKE_CPACK_COMMAND} --config ${PROJECT_BINARY_DIR}/CPackConfig.cmake
          --work ${CMAKE_CURRENT_BINARY_DIR}/artifact --source ${PROJECT_SOURCE_DIR}
          --version ${PROJECT_VERSION})

# whsem.lib used as MSVC's linker uses it: a program compiled for the MSVC
# target and linked by lld-link (no Visual Studio here), run under Wine.
set(WHSEM_MSVC_TOOLS_HINT "/usr/lib/llvm-14/bin")
find_program(WHSEM_CLANG NAMES clang clang-19 clang-18 clang-17 clang-16 clang-15 clang-14
             HINTS ${WHSEM_MSVC_TOOLS_HINT})
find_program(WHSEM_LLD_LINK NAMES lld-link lld-link-19 lld-link-18 lld-link-17 lld-link-16 lld-link-15
             lld-link-14 HINTS ${WHSEM_MSVC_TOOLS_HINT})
if(NOT WHSEM_CLANG OR NOT WHSEM_LLD_LINK)
  message(FATAL_ERROR "windows: the MSVC import library test needs clang and lld-link: "
                      "install clang-14 lld-14 (.ci/setup all does)")
endif()
set(WHSEM_MSVC_CONSUMER ${CMAKE_RUNTIME_OUTPUT_DIRECTORY}/whsem_msvc_consumer.exe)
add_custom_command(OUTPUT ${WHSEM_MSVC_CONSUMER}
  COMMAND ${WHSEM_CLANG} --target=x86_64-pc-windows-msvc -ffreestanding -nostdlibinc -O2
          -Wall -Wextra -Werror -I${PROJECT_SOURCE_DIR}/abi
          -c ${CMAKE_CURRENT_SOURCE_DIR}/msvc_consumer.c -o ${CMAKE_CURRENT_BINARY_DIR}/msvc_consumer.obj
  COMMAND ${WHSEM_LLD_LINK} /nologo /entry:whsem_msvc_consumer /subsystem:console /nodefaultlib
          /out:${WHSEM_MSVC_CONSUMER} ${CMAKE_CURRENT_BINARY_DIR}/msvc_consumer.obj ${WHSEM_MSVC_IMPORT_LIBRARY}
  DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/msvc_consumer.c ${PROJECT_SOURCE_DIR}/abi/whsem.h whsem_msvc_import_library
          ${WHSEM_MSVC_IMPORT_LIBRARY}
  COMMENT "Building whsem_msvc_consumer.exe with clang and lld-link against whsem.lib"
  VERBATIM)
add_custom_target(whsem_msvc_consumer ALL DEPENDS ${WHSEM_MSVC_CONSUMER})
add_dependencies(whsem_msvc_consumer whsem)
# Not a target of this build's compilers, so the emulator is named here.
add_test(NAME win_msvc_import_library COMMAND ${WHSEM_WINE_RUN} ${WHSEM_MSVC_CONSUMER})

set_tests_properties(win_artifact_zip win_msvc_import_library PROPERTIES LABELS "windows" TIMEOUT 300)
