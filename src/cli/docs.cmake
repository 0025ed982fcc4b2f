# SPDX-License-Identifier: MIT
# What comes with the whsem command besides the program: its manual page
# whsem(1) and its bash completion, both in the install component "CLI"
# (the whsem Debian package).

# The page names the version and the date (string(TIMESTAMP) takes
# SOURCE_DATE_EPOCH when it is set, so packages build reproducibly) and
# where the completion is installed.
string(TIMESTAMP WHSEM_MAN_DATE "%Y-%m-%d" UTC)
string(REPLACE "-" "\\-" WHSEM_COMPLETION_DIR
       "${CMAKE_INSTALL_FULL_DATAROOTDIR}/bash-completion/completions")
configure_file(${PROJECT_SOURCE_DIR}/src/cli/whsem.1.in ${PROJECT_BINARY_DIR}/whsem.1 @ONLY)

# Installed compressed, as Debian policy wants manual pages (man reads them
# either way): -n leaves out the name and time, so the bytes depend on the
# page alone.
find_program(WHSEM_GZIP gzip REQUIRED)
add_custom_command(OUTPUT ${PROJECT_BINARY_DIR}/whsem.1.gz
  COMMAND ${WHSEM_GZIP} -9nkf ${PROJECT_BINARY_DIR}/whsem.1
  DEPENDS ${PROJECT_BINARY_DIR}/whsem.1
  COMMENT "Compressing whsem.1"
  VERBATIM)
add_custom_target(whsem_man ALL DEPENDS ${PROJECT_BINARY_DIR}/whsem.1.gz)

install(FILES ${PROJECT_BINARY_DIR}/whsem.1.gz DESTINATION ${CMAKE_INSTALL_MANDIR}/man1 COMPONENT CLI)
# bash-completion loads completions/<command> when <command> is first
# completed.
install(FILES ${PROJECT_SOURCE_DIR}/src/cli/whsem.bash
  DESTINATION ${CMAKE_INSTALL_DATAROOTDIR}/bash-completion/completions
  RENAME whsem
  COMPONENT CLI)
