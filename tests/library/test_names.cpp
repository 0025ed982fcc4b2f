// SPDX-License-Identifier: MIT
// Name finalization (agreement with the C# original) and the name -> file
// (Linux) or object (Windows) mapping: injective, never escapes /dev/shm.
#include "util.h"

#include <cstring>

#ifndef _WIN32
#include <dirent.h>
#include <sys/stat.h>
#endif

#include <set>
#include <vector>

using namespace whtest;

namespace {

std::string Safe(const std::string &name)
{
    char buf[1024];
    size_t len = 0;
    whsem_status st = whsem_safe_name(name.c_str(), buf, sizeof buf, &len);
    EXPECT_EQ(st, WHSEM_OK) << whsem_last_error();
    if (st != WHSEM_OK) return "";
    EXPECT_EQ(len, strlen(buf) + 1);
    return buf;
}

size_t Utf16Units(const std::string &s)
{
    size_t n = 0;
    for (size_t i = 0; i < s.size();) {
        unsigned char c = (unsigned char)s[i];
        size_t len = c < 0x80 ? 1 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;
        n += len == 4 ? 2 : 1;
        i += len;
    }
    return n;
}

} // namespace

// Vectors published with the C# DistributedLock library's tests.
TEST(Names, KnownVectorsOfTheCSharpOriginal)
{
    EXPECT_EQ(Safe(""), "Global\\EMPTYz4PhNX7vuL3xVChQ1m2AB9Yg5AULVxXcg/SpIdNs6c5H0NE8XYXysP+"
                        "DGNKHfuwvY7kxvUdBeoGlODJ6+SfaPg==");
    EXPECT_EQ(Safe("abc"), "Global\\abc");
    EXPECT_EQ(Safe("\\"), "Global\\_CgzRFsLFf7El/ZraEx9sqWRYeplYohSBSmI9sYIe1c4y2u7ECFoU4x2QCjV7HiVJ"
                          "MZsuDMLIz7r8akpKr+viAw==");
    EXPECT_EQ(Safe(std::string(253, 'a')), "Global\\" + std::string(253, 'a'));
    EXPECT_EQ(Safe(std::string(253, '\\')),
              "Global\\" + std::string(165, '_') +
                  "Y7DJXlpJeJjeX5XAOWV+ka/3ONBj5dHhKWcSH4pd5AC9YHFm+l1gBArGpBSBn3WcX00ArcDtKw7g24kJaHLifQ==");
    EXPECT_EQ(Safe(std::string(254, 'x')),
              "Global\\" + std::string(165, 'x') +
                  "srCnXZ1XHiT//dOSBfAU0iC4Gtnlr0dQACBUK8Ev2OdRYJ9jcvbiqVCv/rjyPemTW9AvOonkdr0B2bG04gmeYA==");
}

TEST(Names, PrefixedNamesKeepTheirPrefix)
{
    EXPECT_EQ(Safe("Global\\abc"), "Global\\abc");
    // Only the part after the prefix is made safe: "" after the prefix is
    // the empty name, which is why "" and "Global\" meet, as in C#.
    EXPECT_EQ(Safe("Global\\"), Safe(""));
    std::string sub = Safe("Global\\a\\b");
    EXPECT_EQ(sub.rfind("Global\\a_b", 0), 0u) << sub;
    // A prefix in another case is no prefix.
    EXPECT_EQ(Safe("global\\x"), Safe("global\\x"));
    EXPECT_EQ(Safe("global\\x").rfind("Global\\global_x", 0), 0u);
}

TEST(Names, LengthsAreUtf16CodeUnits)
{
    // U+1F600 is 4 UTF-8 bytes but 2 UTF-16 units: 126 of them = 252 units
    // fit (<= 253), 127 = 254 do not.
    std::string emoji = "\xF0\x9F\x98\x80";
    std::string fits, too_long;
    for (int i = 0; i < 126; i++) fits += emoji;
    too_long = fits + emoji;
    EXPECT_EQ(Safe(fits), "Global\\" + fits);
    std::string hashed = Safe(too_long);
    EXPECT_EQ(Utf16Units(hashed), 7u + 165 + 88) << hashed;
    // A 3-byte BMP character counts one unit.
    std::string bmp;
    for (int i = 0; i < 253; i++) bmp += "\xE2\x82\xAC"; // euro sign
    EXPECT_EQ(Safe(bmp), "Global\\" + bmp);
}

TEST(Names, CutThroughASurrogatePairBecomesReplacementCharacter)
{
    // 164 ASCII characters, then an astral character straddling the 165-unit
    // cut; the name is long enough to need hashing.
    std::string name = std::string(164, 'a') + "\xF0\x9F\x98\x80" + std::string(100, 'b');
    std::string safe = Safe(name);
    EXPECT_EQ(safe.substr(0, 7 + 164), "Global\\" + std::string(164, 'a'));
    EXPECT_EQ(safe.substr(7 + 164, 3), "\xEF\xBF\xBD");
    EXPECT_EQ(safe.size(), 7u + 164 + 3 + 88);
}

TEST(Names, NamesAreCaseSensitive)
{
    Sem lower(1, "case");
    std::string upper_name = lower.name();
    for (char &c : upper_name) c = (char)toupper((unsigned char)c);
    whsem_sem upper = 0;
    WH_OK(whtest_open(upper_name.c_str(), 1, nullptr, &upper));
    whsem_ticket a = 0, b = 0;
    WH_OK(whsem_acquire(lower.get(), 0, 0, &a));
    WH_OK(whsem_acquire(upper, 0, 0, &b)); // another semaphore: its own ticket
    WH_OK(whsem_release(a));
    WH_OK(whsem_release(b));
    WH_OK(whsem_close(upper));
    WH_EXPECT(UnlinkUnused(), whsem_unlink(upper_name.c_str(), 0));
}

TEST(Names, ExactNamesAreValidatedLikeTheOriginal)
{
    whsem_open_options o{};
    o.struct_size = sizeof o;
    o.flags = WHSEM_OPEN_EXACT_NAME;
    whsem_sem s = 0;
    for (const char *bad : {"abc", "gLoBaL\\weirdPrefixCasing", "global\\weirdPrefixCasing2",
                            "Global\\", "Global\\a\\b"}) {
        WH_EXPECT(WHSEM_E_INVALID_NAME, whtest_open(bad, 1, &o, &s));
        EXPECT_NE(std::string(whsem_last_error()), "") << bad;
    }
    std::string max_len = "Global\\" + UniqueName("x");
    max_len += std::string(260 - Utf16Units(max_len), 'a');
    ASSERT_EQ(Utf16Units(max_len), 260u);
    WH_OK(whtest_open(max_len.c_str(), 1, &o, &s));
    char buf[400];
    size_t len;
    WH_OK(whsem_name(s, buf, sizeof buf, &len));
    EXPECT_EQ(std::string(buf), max_len);
    // Removed while open; on PostgreSQL there is nothing of this machine's.
    WH_EXPECT(OnSharedMemory() ? WHSEM_OK : WHSEM_E_NOT_FOUND,
              whsem_unlink(max_len.c_str(), WHSEM_OPEN_EXACT_NAME));
    WH_OK(whsem_close(s));
    WH_EXPECT(WHSEM_E_INVALID_NAME, whtest_open((max_len + "a").c_str(), 1, &o, &s));
}

TEST(Names, InvalidUtf8IsRejected)
{
    whsem_sem s = 0;
    char buf[512];
    size_t len;
    for (const char *bad : {"\xff", "a\xc0\x80", "\xed\xa0\x80" /* surrogate */, "\xe2\x82",
                            "\xf4\x90\x80\x80" /* > U+10FFFF */}) {
        WH_EXPECT(WHSEM_E_INVALID_NAME, whtest_open(bad, 1, nullptr, &s));
        WH_EXPECT(WHSEM_E_INVALID_NAME, whsem_safe_name(bad, buf, sizeof buf, &len));
    }
}

TEST(Names, SafeNameAsksThenFills)
{
    size_t len = 0;
    WH_EXPECT(WHSEM_E_INVALID_ARGUMENT, whsem_safe_name("abc", nullptr, 0, &len));
    EXPECT_EQ(len, sizeof("Global\\abc"));
    char small[4] = {'x', 'x', 'x', 'x'};
    WH_EXPECT(WHSEM_E_INVALID_ARGUMENT, whsem_safe_name("abc", small, sizeof small, &len));
    EXPECT_EQ(small[0], 'x'); // untouched
    std::vector<char> buf(len);
    WH_OK(whsem_safe_name("abc", buf.data(), buf.size(), &len));
    EXPECT_STREQ(buf.data(), "Global\\abc");
    WH_EXPECT(WHSEM_E_INVALID_ARGUMENT, whsem_safe_name(nullptr, buf.data(), buf.size(), &len));
    WH_EXPECT(WHSEM_E_INVALID_ARGUMENT, whsem_safe_name("abc", buf.data(), buf.size(), nullptr));
}

// Names full of path syntax, object-name syntax and escape characters map
// to distinct semaphores; those of this machine are listed by their
// finalized names (whsem_list knows no other), and on Linux every file is
// directly in /dev/shm.
TEST(Names, MappingIsInjectiveAndStaysInItsNamespace)
{
    std::string base = UniqueName("inj");
    std::vector<std::string> names = {
        base + "/a", base + "%2Fa", base + "_a", base + ".a", base + "..", base + "/../../etc",
        base + "%", base + "%25", base + " ", base + "\n", base + "\xC3\xA9", base + "e\xCC\x81",
        base + "#1", base + "!lock", base + "!w0", base + "#", base + "\\x",
        base + std::string(200, '/'), base + std::string(200, '%'), base + std::string(300, 'q'),
        base + std::string(301, 'q')};
    std::vector<whsem_sem> sems;
    for (auto &n : names) {
        whsem_sem s = 0;
        WH_OK(whtest_open(n.c_str(), 1, nullptr, &s));
        sems.push_back(s);
    }
    // Every semaphore is distinct: each grants its own only ticket.
    std::vector<whsem_ticket> tickets;
    for (auto s : sems) {
        whsem_ticket t = 0;
        WH_OK(whsem_acquire(s, 0, 0, &t));
        tickets.push_back(t);
    }
    std::vector<char> list(1 << 18);
    size_t len = 0;
    WH_OK(whsem_list(list.data(), list.size(), &len));
    std::set<std::string> listed;
    for (char *p = list.data(); *p; p += strlen(p) + 1) listed.insert(p);
    for (auto &n : names) EXPECT_EQ(listed.count(Safe(n)), OnSharedMemory() ? 1u : 0u) << n;
#ifndef _WIN32
    // And every file is a regular file directly inside /dev/shm.
    DIR *d = opendir("/dev/shm");
    ASSERT_NE(d, nullptr);
    int ours = 0, named = 0;
    while (struct dirent *de = readdir(d)) {
        std::string f = de->d_name;
        if (f.rfind("whsem.", 0) != 0 && f.rfind("whsem#", 0) != 0) continue;
        struct stat st;
        ASSERT_EQ(lstat(("/dev/shm/" + f).c_str(), &st), 0);
        EXPECT_TRUE(S_ISREG(st.st_mode)) << f;
        bool with_base = f.find(base.substr(0, 20)) != std::string::npos;
        named += with_base;
        if (with_base || f.rfind("whsem#", 0) == 0) ours++;
    }
    closedir(d);
    if (OnSharedMemory()) EXPECT_GE(ours, (int)names.size() - 4); // the long ones are hashed (whsem#...)
    else EXPECT_EQ(named, 0); // a PostgreSQL semaphore has no file
#endif
    for (auto t : tickets) WH_OK(whsem_release(t));
    for (auto s : sems) WH_OK(whsem_close(s));
    for (auto &n : names) WH_EXPECT(UnlinkUnused(), whsem_unlink(n.c_str(), 0));
    // Gone, they are not listed any more.
    WH_OK(whsem_list(list.data(), list.size(), &len));
    listed.clear();
    for (char *p = list.data(); *p; p += strlen(p) + 1) listed.insert(p);
    for (auto &n : names) EXPECT_FALSE(listed.count(Safe(n))) << n;
}

TEST(Names, NonAsciiNamesAgreeAcrossOpens)
{
    std::string name = UniqueName("uni") + "-\xE6\x97\xA5\xE6\x9C\xAC-\xF0\x9F\x94\x92";
    whsem_sem a = 0, b = 0;
    WH_OK(whtest_open(name.c_str(), 1, nullptr, &a));
    // The finalized name opened exactly is the same semaphore.
    std::string safe = Safe(name);
    whsem_open_options o{};
    o.struct_size = sizeof o;
    o.flags = WHSEM_OPEN_EXACT_NAME;
    WH_OK(whtest_open(safe.c_str(), 1, &o, &b));
    whsem_ticket t = 0, u = 0;
    WH_OK(whsem_acquire(a, 0, 0, &t));
    WH_EXPECT(WHSEM_TIMEOUT, whsem_acquire(b, 0, 0, &u));
    WH_OK(whsem_release(t));
    WH_OK(whsem_close(a));
    WH_OK(whsem_close(b));
    WH_EXPECT(UnlinkUnused(), whsem_unlink(name.c_str(), 0));
}
