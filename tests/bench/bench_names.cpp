// SPDX-License-Identifier: MIT
// What an open name costs (issue 14, item 4; a benchmark, not a test):
//   - creating a name, and opening one that other processes hold open
//     (median, p99);
//   - shared memory each name's segment has touched (mincore on the file:
//     a page of a /dev/shm file exists once anyone has touched it) and the
//     RSS each open name adds to the process that opened it;
//   - attaching to one name as the 1st, 100th and 1000th process;
//   - the first open in a freshly forked child;
//   - RSS with 10,000 names open in one process, under the soft descriptor
//     limit most systems give a process (1024), which the library must
//     live with: raising it is the application's business, not ours.
// Every figure is printed; none is checked. Names are
// bench-names-<pid>-..., and every file of them is removed at exit.
#include "whsem.h"

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <dirent.h>
#include <fcntl.h>
#include <string>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

namespace {

int64_t NowNs()
{
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

pid_t g_owner; // the benchmark process: only it removes the files

std::string Prefix() { return "bench-names-" + std::to_string(g_owner) + "-"; }
std::string Name(const char *what, int i) { return Prefix() + what + "-" + std::to_string(i); }
std::string FileOf(const std::string &name) { return "/dev/shm/whsem." + name; }

void RemoveAll()
{
    if (getpid() != g_owner) return;
    std::string file_prefix = "whsem." + Prefix();
    if (DIR *d = opendir("/dev/shm")) {
        while (dirent *e = readdir(d))
            if (strncmp(e->d_name, file_prefix.c_str(), file_prefix.size()) == 0)
                unlink(("/dev/shm/" + std::string(e->d_name)).c_str());
        closedir(d);
    }
}

void OnSignal(int sig)
{
    RemoveAll();
    signal(sig, SIG_DFL);
    raise(sig);
}

[[noreturn]] void Die(const char *what, whsem_status st)
{
    fprintf(stderr, "bench_names: %s: %s: %s\n", what, whsem_status_name(st), whsem_last_error());
    exit(1);
}

whsem_sem Open(const std::string &name, int64_t *ns = nullptr)
{
    whsem_sem s;
    int64_t t0 = NowNs();
    whsem_status st = whsem_open(name.c_str(), 2, nullptr, &s);
    if (ns) *ns = NowNs() - t0;
    if (st != WHSEM_OK) Die(name.c_str(), st);
    return s;
}

struct Stats {
    double p50, p99;
};

// Microseconds.
Stats Summarize(std::vector<int64_t> v)
{
    if (v.empty()) return {0, 0};
    std::sort(v.begin(), v.end());
    auto at = [&](double q) { return (double)v[std::min(v.size() - 1, (size_t)(q * (double)v.size()))] / 1000.0; };
    return {at(0.5), at(0.99)};
}

double Median(std::vector<double> v)
{
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

// /proc/self/status fields, kB.
struct Rss {
    long total = 0, anon = 0, file = 0, shmem = 0;
};

Rss ReadRss()
{
    Rss r;
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return r;
    char line[256];
    while (fgets(line, sizeof line, f)) {
        sscanf(line, "VmRSS: %ld", &r.total);
        sscanf(line, "RssAnon: %ld", &r.anon);
        sscanf(line, "RssFile: %ld", &r.file);
        sscanf(line, "RssShmem: %ld", &r.shmem);
    }
    fclose(f);
    return r;
}

// KiB of the name's file that exist, i.e. that some process has touched.
double TouchedKb(const std::string &name)
{
    int fd = open(FileOf(name).c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    struct stat st;
    double kb = -1;
    if (fstat(fd, &st) == 0 && st.st_size > 0) {
        size_t len = (size_t)st.st_size;
        void *p = mmap(nullptr, len, PROT_READ, MAP_SHARED, fd, 0);
        if (p != MAP_FAILED) {
            long page = sysconf(_SC_PAGESIZE);
            std::vector<unsigned char> vec((len + page - 1) / page);
            if (mincore(p, len, vec.data()) == 0) {
                size_t n = 0;
                for (unsigned char c : vec) n += c & 1;
                kb = (double)(n * page) / 1024.0;
            }
            munmap(p, len);
        }
    }
    close(fd);
    return kb;
}

// A forked process that runs fn, then sleeps until killed; the pipe tells
// the parent when fn is done (and carries its figure).
struct Helper {
    pid_t pid = -1;
    int64_t figure = 0;
    template <class Fn> explicit Helper(Fn fn)
    {
        int p[2];
        if (pipe(p) != 0) exit(1);
        pid = fork();
        if (pid == 0) {
            close(p[0]);
            int64_t v = fn();
            if (write(p[1], &v, sizeof v) != (ssize_t)sizeof v) _exit(1);
            for (;;) pause();
        }
        close(p[1]);
        if (read(p[0], &figure, sizeof figure) != (ssize_t)sizeof figure) {
            fprintf(stderr, "bench_names: a helper process failed\n");
            exit(1);
        }
        close(p[0]);
    }
    void Kill() const
    {
        kill(pid, SIGKILL);
        waitpid(pid, nullptr, 0);
    }
};

// Runs fn in a child and returns what it wrote (a child of its own, so
// that its mappings and descriptors die with it).
template <class Fn> std::vector<int64_t> InChild(Fn fn)
{
    int p[2];
    if (pipe(p) != 0) exit(1);
    pid_t pid = fork();
    if (pid == 0) {
        close(p[0]);
        std::vector<int64_t> out = fn();
        size_t n = out.size();
        if (write(p[1], &n, sizeof n) != (ssize_t)sizeof n) _exit(1);
        for (size_t off = 0; off < n * sizeof(int64_t);) {
            ssize_t w = write(p[1], (char *)out.data() + off, n * sizeof(int64_t) - off);
            if (w <= 0) _exit(1);
            off += (size_t)w;
        }
        _exit(0);
    }
    close(p[1]);
    size_t n = 0;
    std::vector<int64_t> out;
    if (read(p[0], &n, sizeof n) == (ssize_t)sizeof n) {
        out.resize(n);
        for (size_t off = 0; off < n * sizeof(int64_t);) {
            ssize_t r = read(p[0], (char *)out.data() + off, n * sizeof(int64_t) - off);
            if (r <= 0) break;
            off += (size_t)r;
        }
    }
    close(p[0]);
    waitpid(pid, nullptr, 0);
    return out;
}

struct Options {
    int names = 2000;   // create and open-existing rounds
    int users = 3;      // other processes holding each name during open-existing
    int procs = 1000;   // processes attached to one name
    int forks = 50;     // forked children, for the first open in a child
    int many = 10000;   // names open in one process
    long nofile = 1024; // its soft RLIMIT_NOFILE (0: as inherited)
};

// ---- create, open existing, memory per name ----------------------------

void CreateAndOpen(const Options &o)
{
    // Create: names nobody has, kept open.
    std::vector<int64_t> create(o.names);
    std::vector<whsem_sem> sems(o.names);
    Rss r0 = ReadRss();
    for (int i = 0; i < o.names; i++) sems[i] = Open(Name("c", i), &create[i]);
    Rss r1 = ReadRss();
    Stats c = Summarize(create);
    printf("create a name:                       median %8.1f us   p99 %8.1f us   (%d names)\n", c.p50,
           c.p99, o.names);
    printf("  RSS per name created and open:     %8.1f KiB (anon %.1f, shmem %.1f)\n",
           (double)(r1.total - r0.total) / o.names, (double)(r1.anon - r0.anon) / o.names,
           (double)(r1.shmem - r0.shmem) / o.names);
    std::vector<double> touched;
    for (int i = 0; i < o.names; i += std::max(1, o.names / 100)) touched.push_back(TouchedKb(Name("c", i)));
    printf("  shared memory touched, 1 process:  %8.1f KiB per name (median)\n", Median(touched));
    for (auto s : sems) whsem_close(s);

    // Open existing: names that `users` other processes hold open.
    std::vector<Helper> users;
    for (int u = 0; u < o.users; u++)
        users.emplace_back([&] {
            for (int i = 0; i < o.names; i++) Open(Name("e", i));
            return (int64_t)0;
        });
    std::vector<int64_t> open(o.names);
    r0 = ReadRss();
    for (int i = 0; i < o.names; i++) sems[i] = Open(Name("e", i), &open[i]);
    r1 = ReadRss();
    Stats e = Summarize(open);
    printf("open an existing name (%d others):   median %8.1f us   p99 %8.1f us   (%d names)\n", o.users,
           e.p50, e.p99, o.names);
    printf("  RSS per name opened:               %8.1f KiB (anon %.1f, shmem %.1f)\n",
           (double)(r1.total - r0.total) / o.names, (double)(r1.anon - r0.anon) / o.names,
           (double)(r1.shmem - r0.shmem) / o.names);
    touched.clear();
    for (int i = 0; i < o.names; i += std::max(1, o.names / 100)) touched.push_back(TouchedKb(Name("e", i)));
    printf("  shared memory touched, %d processes: %6.1f KiB per name (median)\n", o.users + 1,
           Median(touched));
    for (auto s : sems) whsem_close(s);
    for (auto &u : users) u.Kill();
}

// ---- attach as the k-th process ----------------------------------------

void Attach(const Options &o)
{
    std::string name = Name("attach", 0), warm = Name("attach-warm", 0);
    // The name's creator, and a second name that every attaching process
    // opens first, so that what is timed is the attach, not a process's
    // first call into the library.
    Helper creator([&] {
        Open(name);
        Open(warm);
        return (int64_t)0;
    });
    std::vector<Helper> procs;
    std::vector<int64_t> ns;
    procs.reserve(o.procs);
    for (int k = 0; k < o.procs; k++) {
        procs.emplace_back([&] {
            whsem_sem w = Open(warm);
            whsem_close(w);
            int64_t t;
            Open(name, &t);
            return t;
        });
        ns.push_back(procs.back().figure);
    }
    // The k-th attaching process, as the median of the five around it.
    auto around = [&](int k) {
        int lo = std::max(0, k - 3), hi = std::min((int)ns.size(), lo + 5);
        return Summarize(std::vector<int64_t>(ns.begin() + lo, ns.begin() + hi)).p50;
    };
    printf("attach (open by the k-th process on one name, median of 5 around k):\n");
    for (int k : {1, 10, 100, 1000})
        if (k <= o.procs) printf("  k = %4d:                          %8.1f us\n", k, around(k));
    printf("  shared memory touched:             %8.1f KiB\n", TouchedKb(name));
    for (auto &p : procs) p.Kill();
    creator.Kill();
}

// ---- the first open in a forked child ------------------------------------

void Fork(const Options &o)
{
    std::string mine = Name("fork-mine", 0), theirs = Name("fork-theirs", 0);
    whsem_sem held = Open(mine);
    Helper holder([&] {
        Open(theirs);
        return (int64_t)0;
    });
    for (const std::string *name : {&mine, &theirs}) {
        std::vector<int64_t> ns, from_fork;
        for (int f = 0; f < o.forks; f++) {
            int64_t forked = NowNs();
            std::vector<int64_t> got = InChild([&] {
                int64_t t;
                Open(*name, &t);
                return std::vector<int64_t>{t, NowNs() - forked};
            });
            if (got.size() == 2) {
                ns.push_back(got[0]);
                from_fork.push_back(got[1]);
            }
        }
        Stats s = Summarize(ns), total = Summarize(from_fork);
        printf("first open in a forked child, %s:\n",
               name == &mine ? "a name the parent has open" : "a name the parent has not opened");
        printf("  the open:                          median %8.1f us   p99 %8.1f us\n", s.p50, s.p99);
        printf("  fork() until it returned:          median %8.1f us   p99 %8.1f us\n", total.p50,
               total.p99);
    }
    holder.Kill();
    whsem_close(held);
}

// ---- many names in one process ---------------------------------------------

void Many(const Options &o)
{
    std::vector<int64_t> r = InChild([&] {
        if (o.nofile > 0) {
            struct rlimit rl;
            getrlimit(RLIMIT_NOFILE, &rl);
            rl.rlim_cur = std::min<rlim_t>((rlim_t)o.nofile, rl.rlim_max);
            setrlimit(RLIMIT_NOFILE, &rl);
        }
        Rss r0 = ReadRss();
        int64_t t0 = NowNs(), opened = 0, failed = 0;
        for (int i = 0; i < o.many; i++) {
            whsem_sem s;
            whsem_status st = whsem_open(Name("many", i).c_str(), 2, nullptr, &s);
            if (st != WHSEM_OK) {
                fprintf(stderr, "  open #%d failed: %s: %s\n", i + 1, whsem_status_name(st), whsem_last_error());
                failed = 1;
                break;
            }
            opened++;
        }
        int64_t t1 = NowNs();
        Rss r1 = ReadRss();
        return std::vector<int64_t>{opened, failed, r1.total - r0.total, r1.anon - r0.anon, r1.shmem - r0.shmem,
                                    t1 - t0, r1.total};
    });
    if (r.size() != 7) {
        printf("many names: the child failed\n");
        return;
    }
    char limit[32] = "inherited";
    if (o.nofile > 0) snprintf(limit, sizeof limit, "%ld", o.nofile);
    printf("%lld of %d names open in one process (soft RLIMIT_NOFILE %s)%s:\n", (long long)r[0], o.many,
           limit, r[1] ? ", then an open failed" : "");
    printf("  RSS added:                         %8.1f MiB (anon %.1f, shmem %.1f); %.1f MiB in all\n",
           r[2] / 1024.0, r[3] / 1024.0, r[4] / 1024.0, r[6] / 1024.0);
    if (r[0] > 0)
        printf("  per name:                          %8.1f KiB, %.1f us to create\n", (double)r[2] / r[0],
               (double)r[5] / 1000.0 / r[0]);
}

bool Arg(const char *a, const char *key, long *out)
{
    size_t n = strlen(key);
    if (strncmp(a, key, n) != 0 || a[n] != '=') return false;
    *out = strtol(a + n + 1, nullptr, 10);
    return true;
}

} // namespace

int main(int argc, char **argv)
{
    Options o;
    std::string only;
    for (int i = 1; i < argc; i++) {
        long v;
        if (Arg(argv[i], "--names", &v)) o.names = (int)v;
        else if (Arg(argv[i], "--users", &v)) o.users = (int)v;
        else if (Arg(argv[i], "--procs", &v)) o.procs = (int)v;
        else if (Arg(argv[i], "--forks", &v)) o.forks = (int)v;
        else if (Arg(argv[i], "--many", &v)) o.many = (int)v;
        else if (Arg(argv[i], "--nofile", &v)) o.nofile = v;
        else if (strncmp(argv[i], "--only=", 7) == 0) only = argv[i] + 7;
        else {
            fprintf(stderr,
                    "usage: %s [--names=2000] [--users=3] [--procs=1000] [--forks=50] [--many=10000]\n"
                    "          [--nofile=1024 (0: inherited)] [--only=create,attach,fork,many]\n",
                    argv[0]);
            return 64;
        }
    }
    g_owner = getpid();
    atexit(RemoveAll);
    for (int sig : {SIGINT, SIGTERM, SIGHUP}) signal(sig, OnSignal);
    auto want = [&](const char *phase) { return only.empty() || only.find(phase) != std::string::npos; };
    printf("libwhsem %s, pid %d, %ld CPUs\n", whsem_version_string(), (int)getpid(), sysconf(_SC_NPROCESSORS_ONLN));
    if (want("create")) CreateAndOpen(o);
    if (want("attach")) Attach(o);
    if (want("fork")) Fork(o);
    if (want("many")) Many(o);
    return 0;
}
