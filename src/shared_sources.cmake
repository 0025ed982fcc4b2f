# SPDX-License-Identifier: MIT
# The C both libraries are built from (the Linux library, CMakeLists.txt,
# and whsem.dll, src/win32/windows.cmake): argument checks and API glue,
# accounting, cancellation, the handle table, the asynchronous engine, the
# backend seam, names, SHA-2, ABI checksums, status names. Each platform
# adds only its primitives (src/linux/, src/win32/).
set(WHSEM_SHARED_SOURCES
  src/abi_checksums.generated.c
  src/accounting.c
  src/answers.c
  src/api.c
  src/async_callbacks.c
  src/async_engine.c
  src/async_ops.c
  src/async_queues.c
  src/cancel.c
  src/counters.c
  src/deadlines.c
  src/dispatcher.c
  src/handles.c
  src/names.c
  src/sha2.c
  src/shm_backend.c
  src/status.c
  src/ticket_watch.c
  src/watches.c)
