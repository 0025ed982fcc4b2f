// SPDX-License-Identifier: MIT
#include "pg_util.h"

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

namespace pgtest {

const Cluster &cluster()
{
    static Cluster c = [] {
        Cluster k;
        const char *path = WHSEM_PG_STATE; // written by the pg fixture (ctest -L pg)
        std::ifstream f(path);
        std::stringstream ss;
        ss << f.rdbuf();
        std::string json = ss.str();
        std::smatch m;
        if (std::regex_search(json, m, std::regex("\"dir\": \"([^\"]+)\""))) k.dir = m[1];
        if (std::regex_search(json, m, std::regex("\"port\": ([0-9]+)"))) k.port = std::stoi(m[1]);
        if (std::regex_search(json, m, std::regex("\"super\": \"([^\"]+)\""))) k.super = m[1];
        if (k.dir.empty() || !k.port)
            ADD_FAILURE() << "no test cluster described in " << path << ": " << json;
        return k;
    }();
    return c;
}

std::string Socket(const char *db, const char *user)
{
    const Cluster &c = cluster();
    return "host=" + c.dir + " port=" + std::to_string(c.port) + " dbname=" + db +
           " user=" + (user ? user : c.super.c_str());
}

std::string Tcp(const char *db, const char *user)
{
    const Cluster &c = cluster();
    return "host=127.0.0.1 port=" + std::to_string(c.port) + " dbname=" + db +
           " user=" + (user ? user : c.super.c_str());
}

void ClusterCommand(const char *action)
{
    std::string cmd = std::string("python3 ") + WHSEM_PG_CLUSTER + " " + action + " " + WHSEM_PG_STATE;
    ASSERT_EQ(system(cmd.c_str()), 0) << cmd;
}

Admin::Admin() : c_(PQconnectdb(Socket().c_str()))
{
    EXPECT_EQ(PQstatus(c_), CONNECTION_OK) << PQerrorMessage(c_);
}

Admin::~Admin() { PQfinish(c_); }

std::string Admin::Value(const std::string &sql)
{
    PGresult *r = PQexec(c_, sql.c_str());
    std::string v;
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) < 1)
        ADD_FAILURE() << sql << ": " << PQerrorMessage(c_);
    else v = PQgetvalue(r, 0, 0);
    PQclear(r);
    return v;
}

void Admin::Exec(const std::string &sql)
{
    PGresult *r = PQexec(c_, sql.c_str());
    if (PQresultStatus(r) != PGRES_TUPLES_OK && PQresultStatus(r) != PGRES_COMMAND_OK)
        ADD_FAILURE() << sql << ": " << PQerrorMessage(c_);
    PQclear(r);
}

std::string UniqueName(const char *what)
{
    static std::atomic<int> counter{0};
    return std::string("whsem-pgtest-") + what + "-" + std::to_string(getpid()) + "-" +
           std::to_string(counter++) + "-" +
           std::to_string(std::chrono::steady_clock::now().time_since_epoch().count() % 1000000);
}

whsem_open_options Options(const std::string &backend)
{
    // The string must outlive the open: callers keep theirs.
    whsem_open_options o{};
    o.struct_size = sizeof o;
    o.backend = backend.c_str();
    return o;
}

whsem_sem Open(const std::string &name, int32_t max, const std::string &backend)
{
    whsem_open_options o = Options(backend);
    whsem_sem s = 0;
    whsem_status st = whsem_open(name.c_str(), max, &o, &s);
    EXPECT_EQ(st, WHSEM_OK) << whsem_last_error();
    return s;
}

pid_t Child(const std::function<int()> &fn)
{
    fflush(nullptr);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        // A test that fails (or dies) leaves no process behind.
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) _exit(99);
        int rc = fn();
        _exit(rc);
    }
    return pid;
}

int Wait(pid_t pid)
{
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
    return WEXITSTATUS(status);
}

double SecondsSince(std::chrono::steady_clock::time_point t0)
{
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

bool Eventually(const std::function<bool()> &cond, double seconds)
{
    auto t0 = std::chrono::steady_clock::now();
    while (!cond()) {
        if (SecondsSince(t0) > seconds) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    return true;
}

void *SharedBytes(size_t n)
{
    void *p = mmap(nullptr, n, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) abort();
    return p;
}

std::string OwnSessions(long pid)
{
    return "SELECT pid FROM pg_stat_activity WHERE application_name LIKE 'whsem " +
           std::to_string(pid) + " %'";
}

}  // namespace pgtest
