// SPDX-License-Identifier: MIT
// whsem_bench_syscalls: counts the system calls of uncontended
// acquire + release pairs, to check libwhsem's claim that a pair nobody
// else waits on never enters the kernel.
//
// It runs itself twice per primitive under `strace -f -c` (or, without
// strace, under `valgrind --tool=none --trace-syscalls=yes`): once doing
// warm-up + N pairs and once doing the same warm-up and no pairs. Both runs
// make the same set-up calls, so the difference is what the N pairs cost.
// Per system call name, only increases are summed: a call that happens to
// be rarer in the long run can never hide one that the pairs made.
//
//   whsem_bench_syscalls [--pairs=100000] [--other_pairs=10000] [--warmup=1000]
//                        [--prims=whsem,posix,sysv,flock,atomic]
//                        [--tool=auto|strace|valgrind] [--out=FILE]
//
// --pairs is for libwhsem; the other primitives run --other_pairs pairs,
// since SysV and flock make two calls per pair and a traced call costs tens
// of microseconds. --out writes one line per primitive for
// whsem_bench --syscalls_file.
#include "bench_common.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <sys/stat.h>
#include <sys/wait.h>

namespace wb {
namespace {

template <class P>
void loop(long long warmup, long long pairs)
{
    typename P::Shared sh = P::create(1, 1);
    {
        P p(sh);
        for (long long i = 0; i < warmup + pairs; i++) {
            if (!p.try_acquire(0)) die("%s: uncontended try-acquire failed", P::kKey);
            p.release(0);
        }
    }
    P::destroy(sh);
}

bool run_loop(const std::string &prim, long long warmup, long long pairs)
{
    if (prim == "whsem") loop<WhsemPrim>(warmup, pairs);
    else if (prim == "posix") loop<PosixPrim>(warmup, pairs);
    else if (prim == "sysv") loop<SysvPrim>(warmup, pairs);
    else if (prim == "flock") loop<FlockPrim>(warmup, pairs);
    else if (prim == "atomic") loop<AtomicPrim>(warmup, pairs);
    else return false;
    return true;
}

std::string find_in_path(const char *prog)
{
    const char *path = getenv("PATH");
    std::stringstream ss(path ? path : "/usr/bin:/bin");
    for (std::string dir; std::getline(ss, dir, ':');) {
        std::string f = (dir.empty() ? "." : dir) + "/" + prog;
        if (access(f.c_str(), X_OK) == 0) return f;
    }
    return "";
}

int run(const std::vector<std::string> &args)
{
    std::vector<char *> argv;
    for (const std::string &a : args) argv.push_back(const_cast<char *>(a.c_str()));
    argv.push_back(nullptr);
    pid_t pid = fork();
    if (pid < 0) die("fork: %s", strerror(errno));
    if (pid == 0) {
        execv(argv[0], argv.data());
        _exit(127);
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

using Counts = std::map<std::string, long long>;

// `strace -c` lines: "% time  seconds  usecs/call  calls  [errors]  syscall";
// the errors column is blank when zero, so calls is always the 4th field.
Counts parse_strace(const std::string &file)
{
    Counts c;
    std::ifstream in(file);
    for (std::string line; std::getline(in, line);) {
        std::istringstream ls(line);
        std::vector<std::string> tok;
        for (std::string t; ls >> t;) tok.push_back(t);
        if (tok.size() < 5 || tok.back() == "total" || tok.back() == "syscall") continue;
        char *end;
        strtod(tok[0].c_str(), &end);
        if (*end) continue;
        c[tok.back()] += atoll(tok[3].c_str());
    }
    return c;
}

// valgrind --trace-syscalls lines: "SYSCALL[pid,tid](nr) sys_name ( ... ".
// A call that may block is logged twice, the second time as
// "SYSCALL[pid,tid](nr) ... [async] --> result": that is not a second call.
Counts parse_valgrind(const std::string &file)
{
    Counts c;
    std::ifstream in(file);
    for (std::string line; std::getline(in, line);) {
        size_t at = line.find("SYSCALL[");
        if (at == std::string::npos) continue;
        size_t close = line.find(") ", at);
        if (close == std::string::npos) continue;
        std::istringstream ls(line.substr(close + 2));
        std::string name;
        ls >> name;
        if (name == "...") continue;
        if (name.rfind("sys_", 0) == 0) name = name.substr(4);
        size_t paren = name.find('(');
        if (paren != std::string::npos) name.resize(paren);
        c[name.empty() ? "?" : name]++;
    }
    return c;
}

struct Measured {
    bool ok = false;
    long long calls = 0, futex = 0;
    Counts extra;
    std::string report;  // the tool's summary of the long run, for the log
};

Measured measure(const std::string &tool, const std::string &tool_path, const std::string &self,
                 const std::string &prim, long long warmup, long long pairs)
{
    Measured m;
    Counts counts[2];
    for (int k = 0; k < 2; k++) {
        long long n = k == 0 ? pairs : 0;
        char tmpl[] = "/tmp/whsem-bench-syscalls-XXXXXX";
        int fd = mkstemp(tmpl);
        if (fd < 0) die("mkstemp: %s", strerror(errno));
        close(fd);
        std::string out = tmpl;
        std::vector<std::string> args;
        if (tool == "strace") args = {tool_path, "-f", "-c", "-o", out, "--"};
        else args = {tool_path, "--tool=none", "--trace-syscalls=yes", "--log-file=" + out};
        args.insert(args.end(), {self, "--loop=" + prim, "--pairs=" + std::to_string(n),
                                 "--warmup=" + std::to_string(warmup)});
        int rc = run(args);
        counts[k] = tool == "strace" ? parse_strace(out) : parse_valgrind(out);
        if (k == 0 && tool == "strace") {
            std::ifstream in(out);
            std::stringstream ss;
            ss << in.rdbuf();
            m.report = ss.str();
        }
        unlink(out.c_str());
        if (rc != 0) {
            fprintf(stderr, "whsem_bench_syscalls: %s run of %s failed (exit %d)\n", tool.c_str(),
                    prim.c_str(), rc);
            return m;
        }
    }
    for (auto &kv : counts[0]) {
        long long base = counts[1].count(kv.first) ? counts[1][kv.first] : 0;
        if (kv.second > base) {
            m.extra[kv.first] = kv.second - base;
            m.calls += kv.second - base;
        }
    }
    m.futex = m.extra.count("futex") ? m.extra["futex"] : 0;
    m.ok = true;
    return m;
}

bool take_flag(const char *arg, const char *name, std::string *value)
{
    size_t n = strlen(name);
    if (strncmp(arg, name, n) != 0 || arg[n] != '=') return false;
    *value = arg + n + 1;
    return true;
}

}  // namespace
}  // namespace wb

int main(int argc, char **argv)
{
    using namespace wb;
    std::string v, loop_prim, out_file, tool = "auto";
    std::string prims = "whsem,posix,sysv,flock,atomic";
    long long pairs = 100000, other_pairs = 10000, warmup = 1000;
    for (int i = 1; i < argc; i++) {
        if (take_flag(argv[i], "--loop", &v)) loop_prim = v;
        else if (take_flag(argv[i], "--pairs", &v)) pairs = std::max(0LL, atoll(v.c_str()));
        else if (take_flag(argv[i], "--other_pairs", &v)) other_pairs = std::max(0LL, atoll(v.c_str()));
        else if (take_flag(argv[i], "--warmup", &v)) warmup = std::max(0LL, atoll(v.c_str()));
        else if (take_flag(argv[i], "--prims", &v)) prims = v;
        else if (take_flag(argv[i], "--out", &v)) out_file = v;
        else if (take_flag(argv[i], "--tool", &v)) tool = v;
        else {
            fprintf(stderr, "usage: %s [--pairs=N] [--other_pairs=N] [--warmup=N] [--prims=a,b,...] "
                            "[--tool=auto|strace|valgrind] [--out=FILE]\n", argv[0]);
            return 1;
        }
    }
    install_cleanup("whsem_bench_syscalls");
    if (!loop_prim.empty()) {
        if (!run_loop(loop_prim, warmup, pairs)) die("unknown primitive '%s'", loop_prim.c_str());
        return 0;
    }

    char self[4096];
    ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    if (len <= 0) die("readlink(/proc/self/exe): %s", strerror(errno));
    self[len] = 0;

    std::string tool_path;
    if (tool == "auto" || tool == "strace") {
        tool_path = find_in_path("strace");
        if (!tool_path.empty()) tool = "strace";
    }
    if (tool_path.empty() && (tool == "auto" || tool == "valgrind")) {
        tool_path = find_in_path("valgrind");
        if (!tool_path.empty()) tool = "valgrind";
    }
    if (tool_path.empty()) {
        fprintf(stderr, "whsem_bench_syscalls: neither strace nor valgrind found; nothing measured\n");
        return 0;
    }
    printf("Counting system calls of uncontended acquire+release pairs with %s "
           "(N pairs after %lld warm-up pairs, minus a run with the warm-up only; N = %lld for whsem, "
           "%lld for the others)\n",
           tool == "strace" ? "strace -f -c" : "valgrind --tool=none --trace-syscalls=yes", warmup, pairs,
           other_pairs);

    FILE *out = out_file.empty() ? nullptr : fopen(out_file.c_str(), "w");
    if (!out_file.empty() && !out) die("fopen(%s): %s", out_file.c_str(), strerror(errno));
    std::stringstream ss(prims);
    for (std::string prim; std::getline(ss, prim, ',');) {
        long long n = prim == "whsem" ? pairs : other_pairs;
        Measured m = measure(tool, tool_path, self, prim, warmup, n);
        if (!m.ok) continue;
        std::string detail;
        for (auto &kv : m.extra) detail += " " + kv.first + "=" + std::to_string(kv.second);
        printf("  %-6s %10lld syscalls in %lld pairs = %.4g per pair (futex: %lld)%s%s\n", prim.c_str(),
               m.calls, n, n ? (double)m.calls / (double)n : 0.0, m.futex,
               detail.empty() ? "" : "; by call:", detail.c_str());
        if (prim == "whsem" && !m.report.empty())
            printf("\n  strace -f -c of the whsem run (%lld + %lld pairs, set-up included):\n%s\n", warmup,
                   n, m.report.c_str());
        if (out)
            fprintf(out, "prim=%s pairs=%lld calls=%lld futex=%lld tool=%s\n", prim.c_str(), n, m.calls,
                    m.futex, tool.c_str());
    }
    if (out) fclose(out);
    return 0;
}
