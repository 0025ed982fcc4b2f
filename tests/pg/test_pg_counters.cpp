// SPDX-License-Identifier: MIT
// The counters on the PostgreSQL backend (pg/DESIGN.md, "Counters"):
// counted over every process that uses a name, flushed to whsem.counters
// periodically, when the last handle closes and at exit; readable at once
// for what the reading process counted itself; a role that may not create
// the table still acquires, and its counters calls say what to do.
#include "pg_util.h"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <numeric>
#include <thread>

using namespace pgtest;

namespace {

// A flush period no test waits for: what reaches the database came from
// the flush at close or at exit.
const char *const kNoPeriodicFlush = "3600000";

whsem_info Info(whsem_sem s)
{
    whsem_info info{};
    info.struct_size = sizeof info;
    whsem_holder h[4];
    size_t n = 0;
    whsem_status st = whsem_query(s, &info, h, 4, &n);
    EXPECT_EQ(st, WHSEM_OK) << whsem_last_error();
    return info;
}

// An "ask, then fill" call's whole answer.
template <class T>
std::vector<T> AskThenFill(whsem_status(WHSEM_CALL *call)(whsem_sem, T *, size_t, size_t *),
                           whsem_sem s)
{
    size_t n = 0;
    EXPECT_EQ(call(s, nullptr, 0, &n), WHSEM_OK) << whsem_last_error();
    std::vector<T> v(n);
    EXPECT_EQ(call(s, v.data(), v.size(), &n), WHSEM_OK) << whsem_last_error();
    return v;
}

std::vector<uint64_t> Histogram(whsem_sem s) { return AskThenFill(whsem_wait_histogram, s); }
std::vector<uint32_t> History(whsem_sem s) { return AskThenFill(whsem_waiters_history, s); }

// Opens name with max count 1 and takes its ticket.
whsem_sem OpenHolding(const std::string &name, whsem_ticket *held)
{
    whsem_sem s = Open(name, 1);
    EXPECT_EQ(whsem_acquire(s, 0, 0, held), WHSEM_OK) << whsem_last_error();
    return s;
}

// A database of its own, where the administrator made what 1.1.0 makes:
// the schema and whsem.semaphore, not whsem.counters.
std::string DatabaseOf110(Admin &admin, const char *what)
{
    std::string db = "whsem_" + std::string(what) + "_" + std::to_string(getpid());
    admin.Exec("CREATE DATABASE " + db);
    PGconn *c = PQconnectdb(Socket(db.c_str()).c_str());
    EXPECT_EQ(PQstatus(c), CONNECTION_OK) << PQerrorMessage(c);
    PGresult *r = PQexec(c, "CREATE SCHEMA whsem;"
                            "CREATE TABLE whsem.semaphore ("
                            " id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
                            " name text NOT NULL UNIQUE,"
                            " max_count integer NOT NULL CHECK (max_count > 0),"
                            " created timestamptz NOT NULL DEFAULT now());"
                            "GRANT USAGE ON SCHEMA whsem TO PUBLIC;"
                            "GRANT SELECT, INSERT, UPDATE ON whsem.semaphore TO PUBLIC;");
    EXPECT_EQ(PQresultStatus(r), PGRES_COMMAND_OK) << PQerrorMessage(c);
    PQclear(r);
    PQfinish(c);
    return db;
}

std::string ValueIn(const std::string &db, const std::string &sql)
{
    PGconn *c = PQconnectdb(Socket(db.c_str()).c_str());
    EXPECT_EQ(PQstatus(c), CONNECTION_OK) << PQerrorMessage(c);
    PGresult *r = PQexec(c, sql.c_str());
    std::string v;
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1) v = PQgetvalue(r, 0, 0);
    else if (PQresultStatus(r) != PGRES_COMMAND_OK) ADD_FAILURE() << sql << ": " << PQerrorMessage(c);
    PQclear(r);
    PQfinish(c);
    return v;
}

}  // namespace

TEST(PgCounters, OutcomesWaitsAndHoldsAreCountedAtOnceInTheirProcess)
{
    std::string name = UniqueName("ctr");
    whsem_sem s = Open(name, 1);
    auto t0 = std::chrono::system_clock::now();
    whsem_ticket a, b;
    WH_OK(whsem_acquire(s, 0, 0, &a));
    EXPECT_EQ(whsem_acquire(s, 0, 0, &b), WHSEM_TIMEOUT);  // a try: no wait, no timeout
    EXPECT_EQ(whsem_acquire(s, 50, 0, &b), WHSEM_TIMEOUT); // a wait
    whsem_cancel c;
    WH_OK(whsem_cancel_new(&c));
    std::thread waiter([&] {
        whsem_ticket t;
        EXPECT_EQ(whsem_acquire(s, WHSEM_INFINITE, c, &t), WHSEM_CANCELED);
    });
    ASSERT_TRUE(Eventually([&] { return Info(s).waiters == 1; }));
    WH_OK(whsem_cancel_trigger(c));
    waiter.join();
    WH_OK(whsem_cancel_free(c));
    WH_OK(whsem_release(a));

    // Nothing was flushed yet (a period has not passed, or it has and the
    // sum is the same): this process's own counts are there at once.
    whsem_info i = Info(s);
    EXPECT_EQ(i.acquisitions, 1u);
    EXPECT_EQ(i.timeouts, 1u);
    EXPECT_EQ(i.cancellations, 1u);
    EXPECT_EQ(i.waits, 2u);
    EXPECT_EQ(i.releases, 1u);
    EXPECT_GE(i.wait_ns, 50000000u);
    EXPECT_GT(i.hold_ns, 0u); // held across both waits, 50 ms and more
    EXPECT_EQ(i.recoveries, 0u);
    int64_t created = std::chrono::duration_cast<std::chrono::milliseconds>(
                          t0.time_since_epoch()).count();
    EXPECT_NEAR(i.created_unix_ms, created, 60000);

    std::vector<uint64_t> h = Histogram(s);
    ASSERT_EQ(h.size(), size_t(WHSEM_WAIT_BUCKETS));
    EXPECT_EQ(std::accumulate(h.begin(), h.end(), uint64_t(0)), i.waits);
    // The 50 ms wait: in the bucket of 2^25 ns (33.6 ms) or above.
    EXPECT_GE(std::accumulate(h.begin() + 16, h.end(), uint64_t(0)), 1u);
    WH_OK(whsem_close(s));
}

TEST(PgCounters, CountedOverEveryProcessThatUsesTheName)
{
    std::string name = UniqueName("ctr2");
    whsem_ticket held;
    whsem_sem s = OpenHolding(name, &held);
    int *stage = Shared<int>();
    pid_t child = Child([&] {
        whsem_sem mine = Open(name, 1);
        whsem_ticket t;
        if (whsem_acquire(mine, 0, 0, &t) != WHSEM_TIMEOUT) return 1; // ours holds it
        __atomic_store_n(stage, 1, __ATOMIC_SEQ_CST);
        for (int i = 0; i < 3; i++) {
            if (whsem_acquire(mine, WHSEM_INFINITE, 0, &t) != WHSEM_OK) return 2;
            if (whsem_release(t) != WHSEM_OK) return 3;
        }
        whsem_close(mine);
        exit(0); // the close's flush may still be on its way: exit waits for it
    });
    ASSERT_TRUE(Eventually([&] { return __atomic_load_n(stage, __ATOMIC_SEQ_CST) == 1; }));
    WH_OK(whsem_release(held));
    ASSERT_EQ(Wait(child), 0);
    for (int i = 0; i < 2; i++) {
        WH_OK(whsem_acquire(s, WHSEM_INFINITE, 0, &held));
        WH_OK(whsem_release(held));
    }
    // The child's counts reach the table (its flush at close), ours are
    // added by the reader: the sums, never more.
    ASSERT_TRUE(Eventually([&] { return Info(s).acquisitions >= 6; })) << Info(s).acquisitions;
    whsem_info i = Info(s);
    EXPECT_EQ(i.acquisitions, 6u);
    EXPECT_EQ(i.releases, 6u);
    EXPECT_EQ(i.timeouts, 0u); // the child's try found none, but did not wait
    std::vector<uint64_t> h = Histogram(s);
    EXPECT_EQ(std::accumulate(h.begin(), h.end(), uint64_t(0)), i.waits);
    WH_OK(whsem_close(s));
}

TEST(PgCounters, HistoryShowsTheWaitersOfAnotherProcess)
{
    std::string name = UniqueName("hist");
    whsem_ticket held;
    whsem_sem s = OpenHolding(name, &held);
    EXPECT_GE(History(s).size(), 60u);
    pid_t child = Child([&] {
        whsem_sem mine = Open(name, 1);
        whsem_ticket t;
        if (whsem_acquire(mine, WHSEM_INFINITE, 0, &t) != WHSEM_OK) return 1;
        whsem_release(t);
        whsem_close(mine);
        return 0;
    });
    // The child waits in the server: its periodic flushes say so.
    bool seen = Eventually([&] {
        std::vector<uint32_t> h = History(s);
        return std::find(h.begin(), h.end(), 1u) != h.end();
    });
    EXPECT_TRUE(seen);
    WH_OK(whsem_release(held));
    EXPECT_EQ(Wait(child), 0);
    // This process's waits show at once, in the current second (the last).
    // (A wait: the child's release may not have reached the server yet.)
    WH_OK(whsem_acquire(s, WHSEM_INFINITE, 0, &held));
    std::thread waiter([&] {
        whsem_ticket t;
        if (whsem_acquire(s, WHSEM_INFINITE, 0, &t) == WHSEM_OK) whsem_release(t);
    });
    EXPECT_TRUE(Eventually([&] { return History(s).back() >= 1; }));
    WH_OK(whsem_release(held));
    waiter.join();
    WH_OK(whsem_close(s));
}

TEST(PgCounters, FlushedWhenTheLastHandleCloses)
{
    std::string name = UniqueName("close");
    whsem_sem s = Open(name, 2);
    int *stage = Shared<int>();
    pid_t child = Child([&] {
        setenv("WHSEM_PG_FLUSH_MS", kNoPeriodicFlush, 1);
        whsem_sem a = Open(name, 2), b = Open(name, 2);
        whsem_ticket t;
        for (int i = 0; i < 2; i++) {
            if (whsem_acquire(a, 0, 0, &t) != WHSEM_OK) return 1;
            whsem_release(t);
        }
        whsem_close(a); // not the last handle: nothing goes yet
        whsem_close(b);
        __atomic_store_n(stage, 1, __ATOMIC_SEQ_CST);
        // Alive, so that nothing but the close can have flushed.
        while (__atomic_load_n(stage, __ATOMIC_SEQ_CST) != 2) usleep(1000);
        return 0;
    });
    ASSERT_TRUE(Eventually([&] { return __atomic_load_n(stage, __ATOMIC_SEQ_CST) == 1; }));
    EXPECT_TRUE(Eventually([&] { return Info(s).acquisitions == 2; })) << Info(s).acquisitions;
    EXPECT_EQ(Info(s).releases, 2u);
    __atomic_store_n(stage, 2, __ATOMIC_SEQ_CST);
    EXPECT_EQ(Wait(child), 0);
    WH_OK(whsem_close(s));
}

TEST(PgCounters, FlushedAtExit)
{
    std::string name = UniqueName("exit");
    whsem_sem s = Open(name, 1);
    pid_t child = Child([&] {
        setenv("WHSEM_PG_FLUSH_MS", kNoPeriodicFlush, 1);
        whsem_sem mine = Open(name, 1);
        whsem_ticket t;
        if (whsem_acquire(mine, 0, 0, &t) != WHSEM_OK) return 1;
        whsem_release(t);
        exit(0); // the handle still open: only the exit's flush sends it
    });
    ASSERT_EQ(Wait(child), 0);
    EXPECT_TRUE(Eventually([&] { return Info(s).acquisitions == 1; })) << Info(s).acquisitions;
    WH_OK(whsem_close(s));
}

TEST(PgCounters, DatabaseOf110GetsTheTableOnFirstUse)
{
    Admin admin;
    std::string db = DatabaseOf110(admin, "ctr110");
    std::string backend = Socket(db.c_str());
    std::string name = UniqueName("first");
    whsem_sem s = Open(name, 1, backend);
    whsem_ticket t;
    WH_OK(whsem_acquire(s, 0, 0, &t));
    WH_OK(whsem_release(t));
    EXPECT_EQ(Info(s).acquisitions, 1u);
    EXPECT_EQ(ValueIn(db, "SELECT to_regclass('whsem.counters') IS NOT NULL"), "t");
    WH_OK(whsem_close(s));
    // The flush at close lands in the new table.
    EXPECT_TRUE(Eventually([&] {
        return ValueIn(db, "SELECT coalesce(sum(acquisitions), 0) FROM whsem.counters") == "1";
    }));
    // whsem rm takes the name's counters with its row.
    WH_OK(whsem_unlink_backend(backend.c_str(), name.c_str(), 0));
    EXPECT_EQ(ValueIn(db, "SELECT count(*) FROM whsem.counters"), "0");
    admin.Exec("DROP DATABASE " + db + " WITH (FORCE)");
}

TEST(PgCounters, RoleThatMayNotCreateTheTableAcquiresAndIsToldWhatToRun)
{
    Admin admin;
    std::string db = DatabaseOf110(admin, "ctrplain");
    std::string backend = Socket(db.c_str(), "whsem_plain");
    std::string name = UniqueName("plain");
    whsem_sem s = Open(name, 1, backend);
    ASSERT_NE(s, 0u);
    whsem_ticket t;
    for (int i = 0; i < 3; i++) {
        WH_OK(whsem_acquire(s, WHSEM_INFINITE, 0, &t));
        WH_OK(whsem_release(t));
    }
    size_t n = 0;
    EXPECT_EQ(whsem_wait_histogram(s, nullptr, 0, &n), WHSEM_E_ACCESS_DENIED);
    std::string msg = whsem_last_error();
    EXPECT_NE(msg.find("whsem.counters"), std::string::npos) << msg;
    EXPECT_NE(msg.find("permission denied"), std::string::npos) << msg;
    size_t from = msg.find("CREATE TABLE"), to = msg.find("TO PUBLIC;");
    ASSERT_NE(from, std::string::npos) << msg;
    ASSERT_NE(to, std::string::npos) << msg;
    EXPECT_EQ(whsem_waiters_history(s, nullptr, 0, &n), WHSEM_E_ACCESS_DENIED);
    // whsem_query (whsem status) still answers, its counters 0.
    whsem_info i = Info(s);
    EXPECT_EQ(i.max_count, 1);
    EXPECT_EQ(i.acquisitions, 0u);
    WH_OK(whsem_acquire(s, 0, 0, &t));
    WH_OK(whsem_release(t));

    // The administrator runs the statement the message gives; nothing was
    // lost meanwhile.
    ValueIn(db, msg.substr(from, to + strlen("TO PUBLIC;") - from));
    EXPECT_EQ(Info(s).acquisitions, 4u);
    EXPECT_EQ(Info(s).releases, 4u);
    EXPECT_EQ(Histogram(s).size(), size_t(WHSEM_WAIT_BUCKETS));
    WH_OK(whsem_close(s));
    admin.Exec("DROP DATABASE " + db + " WITH (FORCE)");
}

TEST(PgCounters, NameRemovedByForceStillAnswersWithWhatThisProcessCounted)
{
    std::string name = UniqueName("forced");
    whsem_ticket t;
    whsem_sem s = OpenHolding(name, &t);
    WH_OK(whsem_release(t));
    WH_OK(whsem_unlink_backend(Socket().c_str(), name.c_str(), WHSEM_UNLINK_FORCE));
    whsem_info i = Info(s);
    EXPECT_EQ(i.acquisitions, 1u);
    EXPECT_EQ(i.created_unix_ms, 0);
    WH_OK(whsem_acquire(s, 0, 0, &t)); // its advisory locks still work
    WH_OK(whsem_release(t));
    EXPECT_EQ(Info(s).acquisitions, 2u);
    WH_OK(whsem_close(s)); // its flush fails the foreign key: nothing more
}

TEST(PgCounters, RowLockedElsewhereNeitherHoldsUpTriesNorLosesTickets)
{
    // A server object of its own (another connection string), flushing
    // every 100 ms, while an administrator's transaction locks the row for
    // longer than the main connection may stay silent (2 s): each flush
    // gives up after its lock timeout, and the main connection, which
    // carries a ticket a try took, lives on.
    setenv("WHSEM_PG_FLUSH_MS", "100", 1);
    std::string backend = Socket() + " connect_timeout=9";
    std::string name = UniqueName("locked");
    whsem_sem s = Open(name, 2, backend);
    unsetenv("WHSEM_PG_FLUSH_MS");
    whsem_ticket t, u;
    WH_OK(whsem_acquire(s, 0, 0, &t));
    WH_OK(whsem_release(t));
    Admin admin;
    std::string row = "(SELECT id FROM whsem.semaphore WHERE name = 'Global\\" + name + "')";
    ASSERT_TRUE(Eventually([&] {
        return admin.Value("SELECT count(*) FROM whsem.counters WHERE id = " + row) == "1";
    }));
    admin.Exec("BEGIN");
    admin.Value("SELECT acquisitions FROM whsem.counters WHERE id = " + row + " FOR UPDATE");
    WH_OK(whsem_acquire(s, 0, 0, &t)); // on the main connection, with the flushes
    auto t0 = std::chrono::steady_clock::now();
    int pairs = 0;
    while (SecondsSince(t0) < 3) {
        WH_OK(whsem_acquire(s, 0, 0, &u));
        WH_OK(whsem_release(u));
        pairs++;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    WH_OK(whsem_ticket_check(t));
    admin.Exec("COMMIT");
    WH_OK(whsem_release(t));
    const uint64_t all = 2 + pairs;
    EXPECT_EQ(Info(s).acquisitions, all);
    EXPECT_TRUE(Eventually([&] {
        return admin.Value("SELECT acquisitions FROM whsem.counters WHERE id = " + row) ==
               std::to_string(all);
    }));
    WH_OK(whsem_close(s));
}
