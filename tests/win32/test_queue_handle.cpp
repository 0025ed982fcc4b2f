// The completion queue's waitable event (whsem_queue_handle): an event
// loop on WaitForSingleObject, the Windows twin of the Linux suite's epoll
// loop.
#include "util.h"

#include <map>
#include <set>

using namespace whtest;

TEST(QueueHandle, ErrorPaths)
{
    uint64_t h = 0;
    WH_EXPECT(WHSEM_E_INVALID_HANDLE, whsem_queue_handle(0, &h));
    whsem_queue q;
    WH_OK(whsem_queue_new(&q));
    WH_EXPECT(WHSEM_E_INVALID_ARGUMENT, whsem_queue_handle(q, nullptr));
    WH_OK(whsem_queue_handle(q, &h));
    EXPECT_NE(h, 0u);
    WH_OK(whsem_queue_free(q));
    WH_EXPECT(WHSEM_E_INVALID_HANDLE, whsem_queue_handle(q, &h));
}

TEST(QueueHandle, AnEventLoopOnTheQueueHandle)
{
    Sem sem(2);
    whsem_queue q;
    WH_OK(whsem_queue_new(&q));
    uint64_t raw = 0;
    WH_OK(whsem_queue_handle(q, &raw));
    HANDLE ev = (HANDLE)(uintptr_t)raw;
    EXPECT_EQ(WaitForSingleObject(ev, 0), (DWORD)WAIT_TIMEOUT); // nothing posted: not signaled

    const int kOps = 200;
    std::map<uint64_t, whsem_op> by_tag;
    for (int i = 0; i < kOps; i++) {
        whsem_op op;
        WH_OK(whsem_acquire_queued(sem.get(), WHSEM_INFINITE, 0, q, 1000 + i, &op));
        by_tag[1000 + i] = op;
    }
    int completed = 0, loops = 0, max_inside = 0, inside = 0;
    std::set<uint64_t> seen;
    while (completed < kOps && loops < 100000) {
        loops++;
        ASSERT_EQ(WaitForSingleObject(ev, 30000), (DWORD)WAIT_OBJECT_0) << "no completion within 30 s";
        whsem_op op;
        uint64_t tag;
        std::vector<whsem_ticket> got;
        while (whsem_queue_pop(q, &op, &tag) == WHSEM_OK) {
            ASSERT_EQ(by_tag[tag], op);
            ASSERT_TRUE(seen.insert(tag).second) << "tag " << tag << " posted twice";
            ASSERT_EQ(whsem_op_poll(op), WHSEM_OK);
            whsem_ticket t;
            WH_OK(whsem_op_take_ticket(op, &t));
            WH_OK(whsem_op_free(op));
            got.push_back(t);
            completed++;
        }
        inside += (int)got.size();
        max_inside = std::max(max_inside, inside);
        for (auto t : got) WH_OK(whsem_release(t));
        inside -= (int)got.size();
    }
    EXPECT_EQ(completed, kOps);
    EXPECT_LE(max_inside, 2);
    EXPECT_EQ(WaitForSingleObject(ev, 0), (DWORD)WAIT_TIMEOUT); // drained: not signaled again
    WH_OK(whsem_queue_free(q));
    EXPECT_EQ(Info(sem.get()).free_count, 2);
}
