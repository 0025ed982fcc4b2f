/* SPDX-License-Identifier: MIT */
/*
 * Loading libpq at the first PostgreSQL open. Once loaded it stays: the
 * library is linked with -z nodelete and its threads may be inside libpq
 * at any time, so it is never closed.
 */
#include "libpq.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

/* WHSEM_LIBPQ names another file to load instead (tests: a missing one). */
#define LIBPQ_SONAME "libpq.so.5"

static struct whsem_libpq pq;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static whsem_status load_status;
static char load_error[400];

static const struct {
    const char *name;
    size_t offset;
} symbols[] = {
#define SYM(field, name) {name, offsetof(struct whsem_libpq, field)}
    SYM(connectStartParams, "PQconnectStartParams"),
    SYM(connectPoll, "PQconnectPoll"),
    SYM(status, "PQstatus"),
    SYM(errorMessage, "PQerrorMessage"),
    SYM(socket, "PQsocket"),
    SYM(finish, "PQfinish"),
    SYM(setnonblocking, "PQsetnonblocking"),
    SYM(sendQueryParams, "PQsendQueryParams"),
    SYM(sendQuery, "PQsendQuery"),
    SYM(sendPrepare, "PQsendPrepare"),
    SYM(sendQueryPrepared, "PQsendQueryPrepared"),
    SYM(flush, "PQflush"),
    SYM(consumeInput, "PQconsumeInput"),
    SYM(isBusy, "PQisBusy"),
    SYM(getResult, "PQgetResult"),
    SYM(resultStatus, "PQresultStatus"),
    SYM(resultErrorField, "PQresultErrorField"),
    SYM(ntuples, "PQntuples"),
    SYM(getvalue, "PQgetvalue"),
    SYM(getisnull, "PQgetisnull"),
    SYM(clear, "PQclear"),
    SYM(backendPID, "PQbackendPID"),
    SYM(host, "PQhost"),
    SYM(port, "PQport"),
    SYM(db, "PQdb"),
    SYM(user, "PQuser"),
    SYM(conninfoParse, "PQconninfoParse"),
    SYM(conninfoFree, "PQconninfoFree"),
    SYM(freemem, "PQfreemem"),
    SYM(getCancel, "PQgetCancel"),
    SYM(freeCancel, "PQfreeCancel"),
    SYM(cancel, "PQcancel"),
    SYM(setNoticeProcessor, "PQsetNoticeProcessor"),
#undef SYM
};

static void load(void)
{
    const char *file = getenv("WHSEM_LIBPQ");
    if (!file || !*file) file = LIBPQ_SONAME;
    void *lib = dlopen(file, RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        const char *why = dlerror();
        snprintf(load_error, sizeof load_error,
                 "the PostgreSQL backend needs libpq (%s), which cannot be loaded: %s. Install "
                 "PostgreSQL's client library (Debian/Ubuntu: apt install libpq5; Fedora/RHEL: "
                 "dnf install libpq; Alpine: apk add libpq)",
                 file, why ? why : "not found");
        load_status = WHSEM_E_UNAVAILABLE;
        return;
    }
    for (size_t i = 0; i < sizeof symbols / sizeof symbols[0]; i++) {
        void *f = dlsym(lib, symbols[i].name);
        if (!f) {
            snprintf(load_error, sizeof load_error,
                     "%s has no %s: the PostgreSQL backend needs libpq 12 or later", file,
                     symbols[i].name);
            load_status = WHSEM_E_UNAVAILABLE;
            return;
        }
        *(void **)((char *)&pq + symbols[i].offset) = f;
    }
    load_status = WHSEM_OK;
}

whsem_status whsem__pq_load(const struct whsem_libpq **out)
{
    pthread_once(&once, load);
    if (load_status != WHSEM_OK) return whsem__fail(load_status, "%s", load_error);
    *out = &pq;
    return WHSEM_OK;
}
