/* SPDX-License-Identifier: MIT */
/*
 * libpq as the PostgreSQL backend sees it: loaded with dlopen() at the
 * first PostgreSQL open (libpq.c), so that libwhsem.so.1 never lists it
 * as a dependency and users of the shared-memory backend install nothing.
 * The few declarations below are libpq's ABI (libpq.so.5), written here
 * so that building needs no libpq headers either.
 */
#ifndef WHSEM_PG_LIBPQ_H
#define WHSEM_PG_LIBPQ_H

#include "common.h"

typedef struct pg_conn PGconn;
typedef struct pg_result PGresult;
typedef struct pg_cancel PGcancel;
typedef struct {
    char *keyword, *envvar, *compiled, *val, *label, *dispchar;
    int dispsize;
} PQconninfoOption;

enum { PQ_CONNECTION_OK = 0, PQ_CONNECTION_BAD = 1 };
enum { PQ_POLLING_FAILED = 0, PQ_POLLING_READING = 1, PQ_POLLING_WRITING = 2, PQ_POLLING_OK = 3 };
enum { PQ_EMPTY_QUERY = 0, PQ_COMMAND_OK = 1, PQ_TUPLES_OK = 2, PQ_FATAL_ERROR = 7 };
#define PQ_DIAG_SQLSTATE 'C'
#define PQ_DIAG_MESSAGE_PRIMARY 'M'

struct whsem_libpq {
    PGconn *(*connectStartParams)(const char *const *keywords, const char *const *values,
                                  int expand_dbname);
    int (*connectPoll)(PGconn *conn);
    int (*status)(const PGconn *conn);
    char *(*errorMessage)(const PGconn *conn);
    int (*socket)(const PGconn *conn);
    void (*finish)(PGconn *conn);
    int (*setnonblocking)(PGconn *conn, int arg);
    int (*sendQueryParams)(PGconn *conn, const char *command, int nParams, const unsigned *types,
                           const char *const *values, const int *lengths, const int *formats,
                           int resultFormat);
    int (*sendQuery)(PGconn *conn, const char *query);
    int (*sendPrepare)(PGconn *conn, const char *name, const char *query, int nParams,
                       const unsigned *types);
    int (*sendQueryPrepared)(PGconn *conn, const char *name, int nParams,
                             const char *const *values, const int *lengths, const int *formats,
                             int resultFormat);
    int (*flush)(PGconn *conn);
    int (*consumeInput)(PGconn *conn);
    int (*isBusy)(PGconn *conn);
    PGresult *(*getResult)(PGconn *conn);
    int (*resultStatus)(const PGresult *res);
    char *(*resultErrorField)(const PGresult *res, int fieldcode);
    int (*ntuples)(const PGresult *res);
    char *(*getvalue)(const PGresult *res, int row, int col);
    int (*getisnull)(const PGresult *res, int row, int col);
    void (*clear)(PGresult *res);
    int (*backendPID)(const PGconn *conn);
    char *(*host)(const PGconn *conn);
    char *(*port)(const PGconn *conn);
    char *(*db)(const PGconn *conn);
    char *(*user)(const PGconn *conn);
    PQconninfoOption *(*conninfoParse)(const char *conninfo, char **errmsg);
    void (*conninfoFree)(PQconninfoOption *opts);
    void (*freemem)(void *ptr);
    PGcancel *(*getCancel)(PGconn *conn);
    void (*freeCancel)(PGcancel *cancel);
    int (*cancel)(PGcancel *cancel, char *errbuf, int errbufsize);
    void *(*setNoticeProcessor)(PGconn *conn, void (*proc)(void *arg, const char *message),
                                void *arg);
};

/* libpq's functions, loaded on the first call (WHSEM_OK), or
 * WHSEM_E_UNAVAILABLE with a message that says what to install. */
WHSEM_HIDDEN whsem_status whsem__pq_load(const struct whsem_libpq **out);

#endif
