# SPDX-License-Identifier: MIT
# Run by `cmake --install` (src/package.cmake): writes whsem.pc for the
# prefix being installed to, which `--prefix` may have changed since the
# configure step. The prefix is spelled out, not found from ${pcfiledir}:
# pkg-config leaves out of --cflags and --libs only the system directories
# spelled as such (-I/usr/include, -L/usr/lib/<triplet>), and a -L of a
# system directory ahead of others on a link line makes the linker take
# the system's copy of every library named after it. Written straight to
# its destination, so that installs of one build tree to several
# prefixes at once do not share a file.
foreach(dir LIBDIR INCLUDEDIR)
  if(NOT IS_ABSOLUTE "${WHSEM_PC_${dir}}")
    set(WHSEM_PC_${dir} "\${prefix}/${WHSEM_PC_${dir}}")
  endif()
endforeach()
set(WHSEM_PC_PREFIX "${CMAKE_INSTALL_PREFIX}")
string(REPLACE "\${prefix}" "${CMAKE_INSTALL_PREFIX}" whsem_pc_dir "${WHSEM_PC_LIBDIR}/pkgconfig")
set(whsem_pc "$ENV{DESTDIR}${whsem_pc_dir}/whsem.pc")
message(STATUS "Installing: ${whsem_pc}")
configure_file("${WHSEM_PC_TEMPLATE}" "${whsem_pc}" @ONLY)
list(APPEND CMAKE_INSTALL_MANIFEST_FILES "${whsem_pc}")
