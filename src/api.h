/*
 * The part of the public API that does not depend on the platform (api.c,
 * compiled into the Linux library and whsem.dll alike) and the calls each
 * platform's semaphore.c provides it: api.c checks arguments and options,
 * finalizes names and builds the answers of whsem_list and whsem_query;
 * the platform finds or makes the semaphore and walks its segment.
 */
#ifndef WHSEM_API_H
#define WHSEM_API_H

#include "common.h"
#include "names.h"

#include <stdbool.h>
#include <stddef.h>

/* whsem_open_options, read as far as the caller's struct_size covers it,
 * with the defaults filled in. */
struct open_opts {
    uint32_t flags;
    int32_t check_ms;         /* abandonment check period, -1 = never      */
    uint32_t mode;            /* permission bits, always including 0600    */
    bool mode_explicit;       /* the caller chose mode: an existing segment
                                 may not be wider (see segment.c)          */
};

/* ---- api.c ------------------------------------------------------------ */

/* Whether timeout_ms is 0, WHSEM_INFINITE or 1 ... INT32_MAX: inline, for
 * the fast path; whsem__bad_timeout gives the status and message if not. */
static inline bool whsem__timeout_ok(int64_t timeout_ms)
{
    return timeout_ms >= WHSEM_INFINITE && timeout_ms <= INT32_MAX;
}
WHSEM_HIDDEN whsem_status whsem__bad_timeout(int64_t timeout_ms);

/* The status and message for a handle that is 0, stale or of another kind. */
WHSEM_HIDDEN whsem_status whsem__invalid_handle(uint64_t h, const char *what);
/* Copies a string into a caller's buffer, "ask, then fill" style. */
WHSEM_HIDDEN whsem_status whsem__copy_out(const char *s, size_t len, char *buf, size_t size,
                                          size_t *out_len);

/* whsem_list's answer, built in the caller's buffer "ask, then fill"
 * style: NUL-terminated names, then one more NUL. What does not fit is
 * still counted. */
struct name_list {
    char *buf;
    size_t size, need, used;
    bool fits;
};
WHSEM_HIDDEN void whsem__list_init(struct name_list *l, char *buf, size_t size);
WHSEM_HIDDEN void whsem__list_add(struct name_list *l, const char *name);
/* Sets *out_len to the size the whole list needs; WHSEM_E_INVALID_ARGUMENT
 * if it did not fit. */
WHSEM_HIDDEN whsem_status whsem__list_finish(struct name_list *l, size_t *out_len);

/* whsem_query's answer, gathered while the platform walks the slots of a
 * segment under its lock: every process that has the name open is
 * reported, and those holding tickets are listed as holders. */
struct query_report {
    whsem_info *info;
    whsem_holder *holders;
    size_t capacity, n;
    uint32_t processes;
};
WHSEM_HIDDEN void whsem__report_init(struct query_report *r, whsem_info *info,
                                     whsem_holder *holders, size_t capacity);
WHSEM_HIDDEN void whsem__report_process(struct query_report *r, int64_t pid,
                                        int64_t since_unix_ms, uint32_t held, uint32_t grants,
                                        uint32_t want);
/* Fills info (if any) from the header's counts; *out_count = the holders. */
WHSEM_HIDDEN void whsem__report_finish(struct query_report *r, int32_t max_count,
                                       int32_t free_count, uint32_t waiting, uint64_t recoveries,
                                       size_t *out_count);

/* ---- each platform's semaphore.c ---------------------------------------- */

/* whsem_open (max_count >= 1) or whsem_open_existing (max_count 0) of a
 * finalized name, with the options already checked. */
WHSEM_HIDDEN whsem_status whsem__open_final(const char *final, size_t len, int32_t max_count,
                                            const struct open_opts *o, whsem_sem *out_sem);
/* whsem_query, with the arguments checked. */
WHSEM_HIDDEN whsem_status whsem__query(whsem_sem sem, whsem_info *info, whsem_holder *holders,
                                       size_t capacity, size_t *out_count);
/* The finalized name (unless name is NULL) and the max count of a live
 * semaphore handle; WHSEM_E_INVALID_HANDLE, with nothing written, if it is
 * not one. */
WHSEM_HIDDEN whsem_status whsem__sem_identity(whsem_sem sem, char name[WHSEM_MAX_NAME_BYTES + 1],
                                              size_t *name_len, int32_t *max_count);

#endif
