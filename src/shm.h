/* SPDX-License-Identifier: MIT */
/*
 * What each platform's semaphore.c provides for the shared-memory
 * backend's entry in the backend seam (shm_backend.c).
 */
#ifndef WHSEM_SHM_H
#define WHSEM_SHM_H

#include "backend.h"

struct wmap;

/* Opens a finalized name (the options checked) as a semaphore of backend
 * be: the shared-memory backend's entry passes itself. */
WHSEM_HIDDEN whsem_status whsem__shm_open(const char *final, size_t len, int32_t max_count,
                                          const struct open_opts *o,
                                          const struct whsem_backend *be, whsem_sem *out_sem);
/* Takes m's segment lock for whsem_query, for as long as an open waits
 * (a stopped holder makes it WHSEM_E_BUSY). */
WHSEM_HIDDEN whsem_status whsem__p_query_lock(struct wmap *m);
/* whsem_share_liveness of m (kept alive by the caller), out_fd not NULL:
 * Linux hands over a descriptor, Windows answers WHSEM_E_UNSUPPORTED. */
WHSEM_HIDDEN whsem_status whsem__p_share_liveness(struct wmap *m, int32_t *out_fd);

#endif
