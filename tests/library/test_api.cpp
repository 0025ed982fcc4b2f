// SPDX-License-Identifier: MIT
// Every public function with NULL, zero, stale, wrong-kind and out-of-range
// arguments: a status and a message, never a crash.
#include "util.h"

#include <climits>
#include <cstring>
#include <string>
#include <vector>

using namespace whtest;

TEST(Api, VersionAndStatusNames)
{
    EXPECT_EQ(whsem_version(), (uint32_t)WHSEM_VERSION);
    // The header's version is the release's (RELEASING.md): the string says the same.
    EXPECT_EQ(whsem_version_string(), std::to_string(WHSEM_VERSION_MAJOR) + "." +
                                          std::to_string(WHSEM_VERSION_MINOR) + "." +
                                          std::to_string(WHSEM_VERSION_PATCH));
    EXPECT_STREQ(whsem_status_name(WHSEM_OK), "WHSEM_OK");
    EXPECT_STREQ(whsem_status_name(WHSEM_E_MAX_COUNT_MISMATCH), "WHSEM_E_MAX_COUNT_MISMATCH");
    EXPECT_STREQ(whsem_status_name(WHSEM_E_UNSUPPORTED), "WHSEM_E_UNSUPPORTED");
    EXPECT_STREQ(whsem_status_name(WHSEM_E_NOT_FOUND), "WHSEM_E_NOT_FOUND");
    EXPECT_STREQ(whsem_status_name(WHSEM_E_TICKET_LOST), "WHSEM_E_TICKET_LOST");
    for (int s : {-17, 4, 1000, INT32_MIN, INT32_MAX})
        EXPECT_STREQ(whsem_status_name(s), "WHSEM_UNKNOWN_STATUS");
    for (int s = WHSEM_E_UNAVAILABLE; s <= WHSEM_CANCELED; s++)
        EXPECT_STRNE(whsem_status_name(s), "WHSEM_UNKNOWN_STATUS") << s;
    EXPECT_NE(whsem_abi_checksum("whsem_open"), 0u);
    EXPECT_EQ(whsem_abi_checksum("whsem_no_such_function"), 0u);
    EXPECT_EQ(whsem_abi_checksum(nullptr), 0u);
}

TEST(Api, LastErrorIsPerThreadAndEmptyAtFirst)
{
    std::string in_thread = "unset";
    std::thread([&] { in_thread = whsem_last_error(); }).join();
    EXPECT_EQ(in_thread, "");
    WH_EXPECT(WHSEM_E_INVALID_HANDLE, whsem_release(0));
    std::string here = whsem_last_error();
    EXPECT_NE(here, "");
    std::thread([&] { in_thread = whsem_last_error(); }).join();
    EXPECT_EQ(in_thread, "");
}

TEST(Api, OpenRejectsBadArguments)
{
    whsem_sem s = 0;
    std::string n = UniqueName("args");
    WH_EXPECT(WHSEM_E_INVALID_ARGUMENT, whtest_open(nullptr, 1, nullptr, &s));
    WH_EXPECT(WHSEM_E_INVALID_ARGUMENT, whtest_open(n.c_str(), 1, nullptr, nullptr));
    for (int32_t bad : {0, -1, INT32_MIN}) {
        WH_EXPECT(WHSEM_E_INVALID_ARGUMENT, whtest_open(n.c_str(), bad, nullptr, &s));
        EXPECT_NE(strstr(whsem_last_error(), "max_count"), nullptr) << whsem_last_error();
    }
    whsem_open_options o{};
    WH_EXPECT(WHSEM_E_INVALID_ARGUMENT, whtest_open(n.c_str(), 1, &o, &s)); // struct_size 0
    o.struct_size = sizeof o;
    o.flags = 0x80;
    WH_EXPECT(WHSEM_E_INVALID_ARGUMENT, whtest_open(n.c_str(), 1, &o, &s));
    o.flags = 0;
    o.abandonment_check_ms = -2;
    WH_EXPECT(WHSEM_E_INVALID_ARGUMENT, whtest_open(n.c_str(), 1, &o, &s));
    o.abandonment_check_ms = 0;
    for (uint32_t mode : {01777u, 0400u, 0200u, 04600u}) {
        o.mode = mode;
        WH_EXPECT(WHSEM_E_INVALID_ARGUMENT, whtest_open(n.c_str(), 1, &o, &s));
    }
    // Nothing was created by the failed calls.
    WH_EXPECT(WHSEM_E_NOT_FOUND, whtest_open_existing(n.c_str(), nullptr, &s));
    WH_EXPECT(WHSEM_E_NOT_FOUND, whsem_unlink(n.c_str(), 0));
}

TEST(Api, OptionsOfAnOlderCallerAreAccepted)
{
    // A caller built against a header with only the first two fields.
    struct {
        uint32_t struct_size, flags;
    } old{8, 0};
    std::string n = UniqueName("oldopts");
    whsem_sem s = 0;
    WH_OK(whtest_open(n.c_str(), 1, reinterpret_cast<const whsem_open_options *>(&old), &s));
    WH_OK(whsem_close(s));
    WH_EXPECT(UnlinkUnused(), whsem_unlink(n.c_str(), 0));
}

TEST(Api, HandleFunctionsRejectZeroStaleAndWrongKind)
{
    Sem sem(2);
    whsem_ticket t = 0;
    WH_OK(whsem_acquire(sem.get(), 0, 0, &t));
    whsem_cancel c = 0;
    WH_OK(whsem_cancel_new(&c));

    char buf[64];
    size_t len;
    int32_t max;
    whsem_ticket out;
    // Zero.
    WH_EXPECT(WHSEM_E_INVALID_HANDLE, whsem_close(0));
    WH_EXPECT(WHSEM_E_INVALID_HANDLE, whsem_name(0, buf, sizeof buf, &len));
    WH_EXPECT(WHSEM_E_INVALID_HANDLE, whsem_max_count(0, &max));
    WH_EXPECT(WHSEM_E_INVALID_HANDLE, whsem_query(0, nullptr, nullptr, 0, &len));
    WH_EXPECT(WHSEM_E_INVALID_HANDLE, whsem_acquire(0, 0, 0, &out));
    WH_EXPECT(WHSEM_E_INVALID_HANDLE, whsem_release(0));
    WH_EXPECT(WHSEM_E_INVALID_HANDLE, whsem_cancel_trigger(0));
    WH_EXPECT(WHSEM_E_INVALID_HANDLE, whsem_cancel_free(0));
    // Wrong kind: each handle passed where another kind is expected.
    WH_EXPECT(WHSEM_E_INVALID_HANDLE, whsem_release(sem.get()));
    WH_EXPECT(WHSEM_E_INVALID_HANDLE, whsem_release(c));
    WH_EXPECT(WHSEM_E_INVALID_HANDLE, whsem_close(t));
    WH_EXPECT(WHSEM_E_INVALID_HANDLE, whsem_close(c));
    WH_EXPECT(WHSEM_E_INVALID_HANDLE, whsem_acquire(t, 0, 0, &out));
    WH_EXPECT(WHSEM_E_INVALID_HANDLE, whsem_acquire(sem.get(), 0, t, &out));
    WH_EXPECT(WHSEM_E_INVALID_HANDLE, whsem_acquire(sem.get(), 0, sem.get(), &out));
    WH_EXPECT(WHSEM_E_INVALID_HANDLE, whsem_cancel_trigger(sem.get()));
    WH_EXPECT(WHSEM_E_INVALID_HANDLE, whsem_cancel_free(t));
    WH_EXPECT(WHSEM_E_INVALID_HANDLE, whsem_name(t, buf, sizeof buf, &len));
    WH_EXPECT(WHSEM_E_INVALID_HANDLE, whsem_max_count(c, &max));
    // Garbage values, including ones that look like every kind.
    for (uint64_t junk : std::initializer_list<uint64_t>{1, 2, 3, 4, 0xffffffffffffffffull, 0x1234567890abcdefull,
                          t ^ (1ull << 40), t + 16, sem.get() + (1ull << 28)}) {
        WH_EXPECT(WHSEM_E_INVALID_HANDLE, whsem_release(junk));
        WH_EXPECT(WHSEM_E_INVALID_HANDLE, whsem_close(junk));
        WH_EXPECT(WHSEM_E_INVALID_HANDLE, whsem_acquire(junk, 0, 0, &out));
        WH_EXPECT(WHSEM_E_INVALID_HANDLE, whsem_cancel_trigger(junk));
    }
    // Stale: released, freed, closed.
    WH_OK(whsem_release(t));
    WH_EXPECT(WHSEM_E_INVALID_HANDLE, whsem_release(t));
    EXPECT_NE(strstr(whsem_last_error(), "ticket"), nullptr);
    WH_OK(whsem_cancel_free(c));
    WH_EXPECT(WHSEM_E_INVALID_HANDLE, whsem_cancel_free(c));
    WH_EXPECT(WHSEM_E_INVALID_HANDLE, whsem_cancel_trigger(c));
    WH_EXPECT(WHSEM_E_INVALID_HANDLE, whsem_acquire(sem.get(), 0, c, &out));
    whsem_sem s = sem.get();
    WH_OK(whsem_close(s));
    sem.forget();
    WH_EXPECT(WHSEM_E_INVALID_HANDLE, whsem_close(s));
    WH_EXPECT(WHSEM_E_INVALID_HANDLE, whsem_acquire(s, 0, 0, &out));
    WH_EXPECT(WHSEM_E_INVALID_HANDLE, whsem_name(s, buf, sizeof buf, &len));
    WH_EXPECT(WHSEM_E_INVALID_HANDLE, whsem_max_count(s, &max));
    WH_EXPECT(WHSEM_E_INVALID_HANDLE, whsem_query(s, nullptr, nullptr, 0, &len));
}

TEST(Api, StaleHandlesStayInvalidAfterTheirSlotIsReused)
{
    Sem sem(1);
    whsem_ticket first = 0, second = 0;
    WH_OK(whsem_acquire(sem.get(), 0, 0, &first));
    WH_OK(whsem_release(first));
    WH_OK(whsem_acquire(sem.get(), 0, 0, &second)); // likely the same table entry
    EXPECT_NE(first, second);
    WH_EXPECT(WHSEM_E_INVALID_HANDLE, whsem_release(first));
    WH_OK(whsem_release(second)); // the stale release did not touch it
}

TEST(Api, OutPointersAreChecked)
{
    Sem sem(1);
    size_t len;
    char buf[8];
    WH_EXPECT(WHSEM_E_INVALID_ARGUMENT, whsem_acquire(sem.get(), 0, 0, nullptr));
    WH_EXPECT(WHSEM_E_INVALID_ARGUMENT, whsem_max_count(sem.get(), nullptr));
    WH_EXPECT(WHSEM_E_INVALID_ARGUMENT, whsem_name(sem.get(), buf, sizeof buf, nullptr));
    WH_EXPECT(WHSEM_E_INVALID_ARGUMENT, whsem_query(sem.get(), nullptr, nullptr, 0, nullptr));
    WH_EXPECT(WHSEM_E_INVALID_ARGUMENT, whsem_query(sem.get(), nullptr, nullptr, 3, &len));
    whsem_info bad{};
    WH_EXPECT(WHSEM_E_INVALID_ARGUMENT, whsem_query(sem.get(), &bad, nullptr, 0, &len));
    WH_EXPECT(WHSEM_E_INVALID_ARGUMENT, whsem_cancel_new(nullptr));
    WH_EXPECT(WHSEM_E_INVALID_ARGUMENT, whsem_list(buf, sizeof buf, nullptr));
    WH_EXPECT(WHSEM_E_INVALID_ARGUMENT, whsem_unlink(nullptr, 0));
    WH_EXPECT(WHSEM_E_INVALID_ARGUMENT, whsem_unlink(sem.c_name(), 0x100));
    WH_EXPECT(WHSEM_E_INVALID_ARGUMENT, whtest_open_existing(nullptr, nullptr, nullptr));
}

// Since 1.1: on every status but WHSEM_OK a handle out-parameter is 0, so a
// caller that forgets to check holds the invalid handle, never what the
// variable held before (here: garbage that could pass for a handle).
TEST(Api, OutParametersAreZeroOnEveryOtherStatus)
{
    constexpr uint64_t kJunk = 0xdeadbeefcafef00dull;
    Sem sem(1);
    std::string other = UniqueName("outs");
    whsem_sem s;
    auto open_status = [&](const char *name, int32_t max, const whsem_open_options *o) {
        s = kJunk;
        whsem_status st = whtest_open(name, max, o, &s);
        EXPECT_EQ(s, 0u) << whsem_status_name(st);
        return st;
    };
    WH_EXPECT(WHSEM_E_INVALID_ARGUMENT, open_status(other.c_str(), 0, nullptr));
    WH_EXPECT(WHSEM_E_INVALID_ARGUMENT, open_status(nullptr, 1, nullptr));
    whsem_open_options bad{};
    WH_EXPECT(WHSEM_E_INVALID_ARGUMENT, open_status(other.c_str(), 1, &bad));
    whsem_open_options exact{};
    exact.struct_size = sizeof exact;
    exact.flags = WHSEM_OPEN_EXACT_NAME;
    WH_EXPECT(WHSEM_E_INVALID_NAME, open_status("not-global", 1, &exact));
    WH_EXPECT(WHSEM_E_MAX_COUNT_MISMATCH, open_status(sem.c_name(), 2, nullptr));
    s = kJunk;
    WH_EXPECT(WHSEM_E_NOT_FOUND, whtest_open_existing(other.c_str(), nullptr, &s));
    EXPECT_EQ(s, 0u);
    int32_t max = 12345;
    WH_EXPECT(WHSEM_E_INVALID_HANDLE, whsem_max_count(0, &max));
    EXPECT_EQ(max, 0);

    // Blocking acquisition: errors, and the outcomes that bring no ticket.
    whsem_ticket held;
    WH_OK(whsem_acquire(sem.get(), 0, 0, &held));
    whsem_cancel triggered;
    WH_OK(whsem_cancel_new(&triggered));
    WH_OK(whsem_cancel_trigger(triggered));
    whsem_ticket t;
    auto acquire_status = [&](whsem_sem on, int64_t timeout, whsem_cancel c) {
        t = kJunk;
        whsem_status st = whsem_acquire(on, timeout, c, &t);
        EXPECT_EQ(t, 0u) << whsem_status_name(st);
        return st;
    };
    WH_EXPECT(WHSEM_TIMEOUT, acquire_status(sem.get(), 0, 0));
    WH_EXPECT(WHSEM_TIMEOUT, acquire_status(sem.get(), 1, 0));
    WH_EXPECT(WHSEM_CANCELED, acquire_status(sem.get(), WHSEM_INFINITE, triggered));
    WH_EXPECT(WHSEM_E_INVALID_HANDLE, acquire_status(0, 0, 0));
    WH_EXPECT(WHSEM_E_INVALID_HANDLE, acquire_status(held, 0, 0)); // wrong kind
    WH_EXPECT(WHSEM_E_INVALID_HANDLE, acquire_status(sem.get(), 0, held));
    WH_EXPECT(WHSEM_E_INVALID_ARGUMENT, acquire_status(sem.get(), -2, 0));

    // Starting an asynchronous acquisition.
    whsem_op op;
    auto start_status = [&](whsem_sem on, int64_t timeout, whsem_cancel c) {
        op = kJunk;
        whsem_status st = whsem_acquire_async(on, timeout, c, nullptr, nullptr, &op);
        EXPECT_EQ(op, 0u) << whsem_status_name(st);
        return st;
    };
    WH_EXPECT(WHSEM_E_INVALID_ARGUMENT, start_status(sem.get(), -2, 0));
    WH_EXPECT(WHSEM_E_INVALID_HANDLE, start_status(0, 0, 0));
    WH_EXPECT(WHSEM_E_INVALID_HANDLE, start_status(sem.get(), 0, held));

    // Taking the ticket of an operation that has none (yet, or ever).
    auto take_status = [&](whsem_op from) {
        t = kJunk;
        whsem_status st = whsem_op_take_ticket(from, &t);
        EXPECT_EQ(t, 0u) << whsem_status_name(st);
        return st;
    };
    WH_EXPECT(WHSEM_E_INVALID_HANDLE, take_status(0));
    WH_EXPECT(WHSEM_E_INVALID_HANDLE, take_status(sem.get()));
    whsem_op pending, timed_out, canceled;
    WH_OK(whsem_acquire_async(sem.get(), WHSEM_INFINITE, 0, nullptr, nullptr, &pending));
    WH_OK(whsem_acquire_async(sem.get(), 0, 0, nullptr, nullptr, &timed_out));
    WH_OK(whsem_acquire_async(sem.get(), WHSEM_INFINITE, triggered, nullptr, nullptr, &canceled));
    EXPECT_EQ(take_status(pending), WHSEM_PENDING);
    EXPECT_EQ(whsem_op_wait(timed_out, WHSEM_INFINITE), WHSEM_TIMEOUT);
    EXPECT_EQ(take_status(timed_out), WHSEM_TIMEOUT);
    EXPECT_EQ(whsem_op_wait(canceled, WHSEM_INFINITE), WHSEM_CANCELED);
    EXPECT_EQ(take_status(canceled), WHSEM_CANCELED);
    WH_OK(whsem_release(held));
    EXPECT_EQ(whsem_op_wait(pending, WHSEM_INFINITE), WHSEM_OK);
    WH_OK(whsem_op_take_ticket(pending, &held));
    EXPECT_NE(held, 0u);
    WH_EXPECT(WHSEM_E_INVALID_ARGUMENT, take_status(pending)); // taken already
    for (whsem_op o : {pending, timed_out, canceled}) WH_OK(whsem_op_free(o));
    WH_EXPECT(WHSEM_E_INVALID_HANDLE, take_status(pending)); // freed

    // Completion queues.
    whsem_queue q;
    WH_OK(whsem_queue_new(&q));
    uint64_t tag;
    auto pop_status = [&](whsem_queue from, whsem_op *out_op, uint64_t *out_tag) {
        op = tag = kJunk;
        whsem_status st = whsem_queue_pop(from, out_op, out_tag);
        if (out_op) EXPECT_EQ(op, 0u) << whsem_status_name(st);
        if (out_tag) EXPECT_EQ(tag, 0u) << whsem_status_name(st);
        return st;
    };
    EXPECT_EQ(pop_status(q, &op, &tag), WHSEM_PENDING); // nothing posted
    WH_EXPECT(WHSEM_E_INVALID_HANDLE, pop_status(sem.get(), &op, &tag));
    WH_EXPECT(WHSEM_E_INVALID_ARGUMENT, pop_status(q, nullptr, &tag));
    WH_EXPECT(WHSEM_E_INVALID_ARGUMENT, pop_status(q, &op, nullptr));
    op = kJunk;
    WH_EXPECT(WHSEM_E_INVALID_HANDLE, whsem_acquire_queued(sem.get(), 0, 0, 0, 1, &op));
    EXPECT_EQ(op, 0u);
    op = kJunk;
    WH_EXPECT(WHSEM_E_INVALID_HANDLE, whsem_acquire_queued(0, 0, 0, q, 1, &op));
    EXPECT_EQ(op, 0u);
    op = kJunk;
    WH_EXPECT(WHSEM_E_INVALID_ARGUMENT, whsem_acquire_queued(sem.get(), -2, 0, q, 1, &op));
    EXPECT_EQ(op, 0u);
    // The queue's waitable object: a value that names nothing on failure
    // (0 would be standard input on Linux; -1 the current process on Windows).
    int32_t fd = 7;
    EXPECT_NE(whsem_queue_fd(0, &fd), WHSEM_OK);
    EXPECT_EQ(fd, -1);
    uint64_t waitable = 7;
    WH_EXPECT(WHSEM_E_INVALID_HANDLE, whsem_queue_handle(0, &waitable));
    EXPECT_EQ(waitable, kWindows ? 0u : UINT64_MAX);
    WH_OK(whsem_queue_free(q));

    WH_OK(whsem_release(held));
    WH_OK(whsem_cancel_free(triggered));
}

TEST(Api, TimeoutRange)
{
    Sem sem(1);
    whsem_ticket t = 0;
    for (int64_t bad : std::initializer_list<int64_t>{-2, INT32_MIN, (int64_t)INT32_MAX + 1, INT64_MAX, INT64_MIN}) {
        WH_EXPECT(WHSEM_E_INVALID_ARGUMENT, whsem_acquire(sem.get(), bad, 0, &t));
        EXPECT_NE(strstr(whsem_last_error(), "timeout_ms"), nullptr);
    }
    // The largest valid timeout is accepted (and here returns at once).
    WH_OK(whsem_acquire(sem.get(), INT32_MAX, 0, &t));
    WH_OK(whsem_release(t));
}

TEST(Api, NameAndMaxCountAskThenFill)
{
    Sem sem(7);
    int32_t max = 0;
    WH_OK(whsem_max_count(sem.get(), &max));
    EXPECT_EQ(max, 7);
    size_t len = 0;
    WH_EXPECT(WHSEM_E_INVALID_ARGUMENT, whsem_name(sem.get(), nullptr, 0, &len));
    EXPECT_EQ(len, sem.name().size() + 7 + 1);
    std::vector<char> buf(len);
    WH_OK(whsem_name(sem.get(), buf.data(), buf.size(), &len));
    EXPECT_EQ(std::string(buf.data()), "Global\\" + sem.name());
}

TEST(Api, ListAsksThenFills)
{
    Sem sem(1);
    size_t need = 0;
    WH_EXPECT(WHSEM_E_INVALID_ARGUMENT, whsem_list(nullptr, 0, &need));
    ASSERT_GT(need, sem.name().size());
    std::vector<char> buf(need + 4096); // others may appear meanwhile
    WH_OK(whsem_list(buf.data(), buf.size(), &need));
    bool found = false;
    for (char *p = buf.data(); *p; p += strlen(p) + 1) found |= ("Global\\" + sem.name()) == p;
    EXPECT_TRUE(found);
}

// The name goes once it is unlinked; on Windows also once nobody has it
// open (a semaphore exists while a process has it open: the kernel objects
// go with their last handle).
TEST(Api, OpenExistingAndUnlink)
{
    std::string n = UniqueName("exist");
    whsem_sem s = 0, t = 0;
    WH_EXPECT(WHSEM_E_NOT_FOUND, whtest_open_existing(n.c_str(), nullptr, &s));
    EXPECT_NE(std::string(whsem_last_error()).find(n), std::string::npos);
    WH_OK(whtest_open(n.c_str(), 5, nullptr, &s));
    WH_OK(whtest_open_existing(n.c_str(), nullptr, &t));
    int32_t max = 0;
    WH_OK(whsem_max_count(t, &max));
    EXPECT_EQ(max, 5);
    WH_OK(whsem_close(t));
    WH_OK(whsem_unlink(n.c_str(), 0)); // only we have it open
    WH_EXPECT(WHSEM_E_NOT_FOUND, whsem_unlink(n.c_str(), 0));
    WH_EXPECT(WHSEM_E_NOT_FOUND, whtest_open_existing(n.c_str(), nullptr, &t));
    WH_OK(whsem_close(s));
    WH_OK(whtest_open(n.c_str(), 2, nullptr, &s));
    WH_OK(whsem_close(s));
    WH_EXPECT(UnlinkUnused(), whsem_unlink(n.c_str(), 0));
    WH_EXPECT(WHSEM_E_NOT_FOUND, whtest_open_existing(n.c_str(), nullptr, &s));
}

TEST(Api, UnlinkedNameIsFreshForNewOpensWhileOldHandlesKeepTheOld)
{
    Sem sem(1);
    whsem_ticket held;
    WH_OK(whsem_acquire(sem.get(), 0, 0, &held));
    WH_OK(whsem_unlink(sem.c_name(), 0));
    // A new open, even in this process, meets a fresh semaphore...
    whsem_sem fresh = 0;
    WH_OK(whtest_open(sem.c_name(), 3, nullptr, &fresh)); // a new max count is fine
    EXPECT_EQ(Info(fresh).free_count, 3);
    // ...while the old handle and its ticket keep the old one.
    whsem_ticket t;
    WH_EXPECT(WHSEM_TIMEOUT, whsem_acquire(sem.get(), 0, 0, &t));
    WH_OK(whsem_release(held));
    WH_OK(whsem_acquire(sem.get(), 0, 0, &t));
    WH_OK(whsem_release(t));
    size_t need = 0;
    std::vector<char> list(1 << 16);
    WH_OK(whsem_list(list.data(), list.size(), &need));
    int listed = 0;
    for (char *p = list.data(); *p; p += strlen(p) + 1) listed += ("Global\\" + sem.name()) == p;
    EXPECT_EQ(listed, 1); // the unlinked one is not listed
    WH_OK(whsem_close(fresh));
}

// The times a finalized name appears in the list of the backend named.
static int TimesListed(const char *backend, const std::string &final)
{
    size_t need = 0;
    whsem_status st = whsem_list_backend(backend, nullptr, 0, &need);
    EXPECT_EQ(st, WHSEM_E_INVALID_ARGUMENT) << whsem_last_error();
    std::vector<char> buf(need + 4096); // others may appear meanwhile
    st = whsem_list_backend(backend, buf.data(), buf.size(), &need);
    EXPECT_EQ(st, WHSEM_OK) << whsem_last_error();
    int found = 0;
    if (st == WHSEM_OK)
        for (char *p = buf.data(); *p; p += strlen(p) + 1) found += final == p;
    return found;
}

// whsem_list_backend and whsem_unlink_backend (1.1) are whsem_list and
// whsem_unlink on whichever backend the semaphores live.
TEST(Api, ListAndUnlinkReachTheBackendUnderTest)
{
    const char *backend = whtest_backend();
    std::string n = UniqueName("listed");
    whsem_sem s = 0, t = 0;
    WH_OK(whtest_open(n.c_str(), 2, nullptr, &s));
    EXPECT_EQ(TimesListed(backend, "Global\\" + n), 1);
    WH_EXPECT(WHSEM_E_INVALID_ARGUMENT, whsem_unlink_backend(backend, n.c_str(), 0x100));
    WH_EXPECT(WHSEM_E_INVALID_ARGUMENT, whsem_unlink_backend(backend, nullptr, 0));
    WH_OK(whsem_unlink_backend(backend, n.c_str(), 0)); // only we have it open
    EXPECT_EQ(TimesListed(backend, "Global\\" + n), 0);
    WH_EXPECT(WHSEM_E_NOT_FOUND, whsem_unlink_backend(backend, n.c_str(), 0));
    WH_OK(whsem_close(s)); // (a handle of ours would let PostgreSQL's open find it)
    WH_EXPECT(WHSEM_E_NOT_FOUND, whtest_open_existing(n.c_str(), nullptr, &t));
}

// Without a backend (NULL or ""), they are this machine's whsem_list and
// whsem_unlink, whatever the backend under test.
TEST(Api, ListAndUnlinkWithoutABackendAreThisMachines)
{
    std::string n = UniqueName("local");
    whsem_sem s = 0;
    WH_OK(whsem_open(n.c_str(), 1, nullptr, &s));
    size_t need = 0;
    WH_EXPECT(WHSEM_E_INVALID_ARGUMENT, whsem_list_backend(nullptr, nullptr, 0, nullptr));
    char untouched = 'x';
    WH_EXPECT(WHSEM_E_INVALID_ARGUMENT, whsem_list_backend("", &untouched, 0, &need));
    EXPECT_EQ(untouched, 'x'); // a buffer of size 0 holds not even the final NUL
    EXPECT_GT(need, n.size());
    EXPECT_EQ(TimesListed(nullptr, "Global\\" + n), 1);
    EXPECT_EQ(TimesListed("", "Global\\" + n), 1);
    WH_OK(whsem_unlink_backend("", n.c_str(), 0));
    WH_EXPECT(WHSEM_E_NOT_FOUND, whsem_unlink_backend(nullptr, n.c_str(), 0));
    EXPECT_EQ(TimesListed(nullptr, "Global\\" + n), 0);
    WH_OK(whsem_close(s));
}

// whsem_share_liveness (1.1): a descriptor where one carries a process's
// tickets (Linux's shared memory), WHSEM_E_UNSUPPORTED elsewhere. What the
// descriptor does: DeadHolderWithAChild.* (test_process.cpp).
TEST(Api, ShareLivenessGivesADescriptorOnlyWhereOneCarriesTickets)
{
    Sem sem(1);
    int32_t fd = 7;
    WH_EXPECT(WHSEM_E_INVALID_ARGUMENT, whsem_share_liveness(sem.get(), nullptr));
    WH_EXPECT(WHSEM_E_INVALID_HANDLE, whsem_share_liveness(0, &fd));
    EXPECT_EQ(fd, -1);
    fd = 7;
    whsem_status st = whsem_share_liveness(sem.get(), &fd);
    if (kWindows || !OnSharedMemory()) {
        EXPECT_EQ(st, WHSEM_E_UNSUPPORTED) << whsem_last_error();
        EXPECT_EQ(fd, -1);
        return;
    }
#ifndef _WIN32
    ASSERT_EQ(st, WHSEM_OK) << whsem_last_error();
    EXPECT_GE(fd, 3); // out of the way of the standard descriptors
    EXPECT_EQ(fcntl(fd, F_GETFD) & FD_CLOEXEC, 0);       // made to be inherited
    EXPECT_EQ(fcntl(fd, F_GETFL) & O_ACCMODE, O_RDONLY); // nobody writes through it
    close(fd);
    // Removed, the name is another segment's (or none's) now.
    WH_OK(whsem_unlink(sem.c_name(), 0));
    fd = 7;
    WH_EXPECT(WHSEM_E_NOT_FOUND, whsem_share_liveness(sem.get(), &fd));
    EXPECT_EQ(fd, -1);
#endif
}

TEST(Api, UnlinkRefusesANameInUseElsewhereUnlessForced)
{
    Sem sem(1);
    Child child({"open", sem.name(), "1"});
    ASSERT_TRUE(child.started());
    ASSERT_TRUE(Eventually([&] { return Info(sem.get()).processes == 2; }));
    WH_EXPECT(WHSEM_E_BUSY, whsem_unlink(sem.c_name(), 0));
    EXPECT_NE(strstr(whsem_last_error(), "WHSEM_UNLINK_FORCE"), nullptr);
    EXPECT_EQ(child.Kill(), kKilled);
    // Once the other process is gone the name is ours alone.
    WH_OK(whsem_unlink(sem.c_name(), 0));
    Child again({"open", sem.name(), "1"});
    whsem_sem fresh;
    WH_OK(whtest_open(sem.c_name(), 1, nullptr, &fresh));
    ASSERT_TRUE(Eventually([&] { return Info(fresh).processes == 2; }));
    WH_OK(whsem_unlink(sem.c_name(), WHSEM_UNLINK_FORCE));
    WH_OK(whsem_close(fresh));
}

#ifdef _WIN32
TEST(Api, QueueFdIsNotAvailableOnWindows)
{
    whsem_queue q;
    WH_OK(whsem_queue_new(&q));
    int32_t fd = 7;
    WH_EXPECT(WHSEM_E_UNSUPPORTED, whsem_queue_fd(q, &fd));
    EXPECT_NE(strstr(whsem_last_error(), "whsem_queue_handle"), nullptr) << whsem_last_error();
    EXPECT_EQ(fd, -1); // no descriptor (since 1.1)
    WH_EXPECT(WHSEM_E_INVALID_ARGUMENT, whsem_queue_fd(q, nullptr));
    WH_OK(whsem_queue_free(q));
    WH_EXPECT(WHSEM_E_INVALID_HANDLE, whsem_queue_fd(q, &fd));
}

TEST(Api, OtherBackendsNamesAreNotAvailableOnWindows)
{
    size_t need = 0;
    WH_EXPECT(WHSEM_E_UNSUPPORTED, whsem_list_backend("host=db", nullptr, 0, &need));
    EXPECT_NE(strstr(whsem_last_error(), "PostgreSQL"), nullptr) << whsem_last_error();
    WH_EXPECT(WHSEM_E_UNSUPPORTED, whsem_unlink_backend("host=db", "abc", 0));
}
#endif
