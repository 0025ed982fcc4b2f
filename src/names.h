/* SPDX-License-Identifier: MIT */
/*
 * Names: the C#-compatible finalization of a user's name, and the
 * injective mapping of a finalized name to a file under /dev/shm.
 */
#ifndef WHSEM_NAMES_H
#define WHSEM_NAMES_H

#include "common.h"
#include "utf8.h"

#include <stddef.h>

#define WHSEM_GLOBAL_PREFIX "Global\\"
#define WHSEM_GLOBAL_PREFIX_LEN 7
#define WHSEM_MAX_NAME_UTF16 260
/* A finalized name is at most 260 UTF-16 code units; one unit takes at
 * most 3 UTF-8 bytes (a 4-byte sequence counts as 2 units). */
#define WHSEM_MAX_NAME_BYTES (3 * WHSEM_MAX_NAME_UTF16)

/* Directory of the shared segments, and the two file-name prefixes. */
#define WHSEM_SHM_DIR "/dev/shm"
#define WHSEM_FILE_PREFIX "whsem."
#define WHSEM_HASHED_FILE_PREFIX "whsem#"

/* Validates UTF-8 (no surrogates, no overlongs, no NUL inside len) and
 * counts UTF-16 code units. Returns false for invalid input. */
WHSEM_HIDDEN bool whsem__utf8_utf16_len(const char *s, size_t len, size_t *out_units);

/* Finalizes name (exact: validate only) into out, which must hold
 * WHSEM_MAX_NAME_BYTES + 1 bytes. Sets the thread's message on error. */
WHSEM_HIDDEN whsem_status whsem__finalize_name(const char *name, bool exact, char *out,
                                               size_t *out_len);

/* The file name (no directory) for a finalized name, into out (which must
 * hold 256 bytes). */
WHSEM_HIDDEN void whsem__file_name(const char *final_name, size_t len, char out[256]);

/* Inverse of whsem__file_name for the non-hashed form: writes the
 * finalized name and returns true, or returns false for a name that is
 * not ours or is hashed (whose name only its segment header knows). */
WHSEM_HIDDEN bool whsem__decode_file_name(const char *file, char *out, size_t cap);

#endif
