// SPDX-License-Identifier: MIT
// What the PostgreSQL backend's tests share: the test cluster (started by
// cluster.py as a CTest fixture), connection strings to it, an
// administrator's connection (libpq, linked by the tests only), child
// processes, and a few waits.
#pragma once

#include "whsem.h"

#include <gtest/gtest.h>
#include <libpq-fe.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <new>
#include <chrono>
#include <functional>
#include <string>

#include <sys/types.h>

namespace pgtest {

struct Cluster {
    std::string dir;   // its unix socket's directory
    int port = 0;      // 127.0.0.1
    std::string super; // a superuser
};
const Cluster &cluster();
std::string Socket(const char *db = "postgres", const char *user = nullptr);
std::string Tcp(const char *db = "postgres", const char *user = nullptr);
// Runs cluster.py ACTION (restart) on the test cluster.
void ClusterCommand(const char *action);

// An administrator's connection; results as text.
class Admin {
public:
    Admin();
    ~Admin();
    std::string Value(const std::string &sql);
    long Number(const std::string &sql) { return std::stol(Value(sql)); }
    void Exec(const std::string &sql);
    PGconn *conn() { return c_; }

private:
    PGconn *c_;
};

std::string UniqueName(const char *what);
whsem_open_options Options(const std::string &backend);

// Opens name on the test cluster (unix socket), ASSERTing success.
whsem_sem Open(const std::string &name, int32_t max, const std::string &backend = Socket());

// A child process running fn (its exit status is fn's result); fork()ed
// before it touches the database, so that it opens its own sessions.
pid_t Child(const std::function<int()> &fn);
int Wait(pid_t pid);  // the exit status, or 128 + signal

bool Eventually(const std::function<bool()> &cond, double seconds = 30);
double SecondsSince(std::chrono::steady_clock::time_point t0);

// Memory shared with children, for counters that the library does not
// see (the independent check of the safety invariant).
void *SharedBytes(size_t n);
template <class T> T *Shared()
{
    return new (SharedBytes(sizeof(T))) T();
}

// The server processes of this process's sessions: application_name
// begins with "whsem <pid> ".
std::string OwnSessions(long pid);

}  // namespace pgtest

#define WH_OK(call)                                                                           \
    do {                                                                                      \
        whsem_status st_ = (call);                                                            \
        ASSERT_EQ(st_, WHSEM_OK) << #call << ": " << whsem_status_name(st_) << ": "           \
                                 << whsem_last_error();                                       \
    } while (0)
