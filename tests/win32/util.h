// Helpers shared by the Windows googletest suites: the Windows twin of
// tests/core/util.h. Where the Linux suites fork(), these start the helper
// program (helper.c) as a separate process; where they share memory with
// children, these use a named section.
#pragma once

#include "whsem.h"

#include <gtest/gtest.h>

#include <windows.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <functional>
#include <string>
#include <thread>
#include <vector>

namespace whtest {

// A name no other test (or earlier run) uses: tests run in parallel, and
// names are shared by every process of the Wine prefix.
inline std::string UniqueName(const char *what)
{
    static std::atomic<int> counter{0};
    return std::string("whsem-test-") + what + "-" + std::to_string(GetCurrentProcessId()) + "-" +
           std::to_string(counter++) + "-" +
           std::to_string(std::chrono::steady_clock::now().time_since_epoch().count() % 1000000);
}

#define WH_OK(expr)                                                                         \
    do {                                                                                    \
        whsem_status st_ = (expr);                                                          \
        ASSERT_EQ(st_, WHSEM_OK) << #expr << " -> " << whsem_status_name(st_) << ": "       \
                                 << whsem_last_error();                                     \
    } while (0)

#define WH_EXPECT(expected, expr)                                                           \
    do {                                                                                    \
        whsem_status st_ = (expr);                                                          \
        EXPECT_EQ(st_, expected) << #expr << " -> " << whsem_status_name(st_) << ": "       \
                                 << whsem_last_error();                                     \
    } while (0)

// Opens a fresh semaphore and closes it when the test ends (a name nobody
// has open is gone on Windows; the unlink only matters if a helper process
// outlived the test).
class Sem {
  public:
    Sem(int32_t max, const char *what = "sem", const whsem_open_options *opts = nullptr)
        : name_(UniqueName(what))
    {
        whsem_status st = whsem_open(name_.c_str(), max, opts, &sem_);
        if (st != WHSEM_OK) {
            ADD_FAILURE() << "whsem_open: " << whsem_status_name(st) << ": " << whsem_last_error();
            sem_ = 0;
        }
    }
    ~Sem()
    {
        if (sem_) whsem_close(sem_);
    }
    Sem(const Sem &) = delete;
    Sem &operator=(const Sem &) = delete;
    whsem_sem get() const { return sem_; }
    const std::string &name() const { return name_; }
    const char *c_name() const { return name_.c_str(); }
    void forget() { sem_ = 0; }

  private:
    std::string name_;
    whsem_sem sem_ = 0;
};

// Polls cond for up to `seconds`, generous on purpose: the machine is noisy
// and Wine is slow to start processes.
inline bool Eventually(const std::function<bool()> &cond, double seconds = 30)
{
    auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
    while (std::chrono::steady_clock::now() < end) {
        if (cond()) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return cond();
}

inline whsem_info Info(whsem_sem sem)
{
    whsem_info info{};
    info.struct_size = sizeof info;
    size_t n = 0;
    whsem_status st = whsem_query(sem, &info, nullptr, 0, &n);
    if (st != WHSEM_OK) ADD_FAILURE() << "whsem_query: " << whsem_last_error();
    return info;
}

// ---- helper processes ----------------------------------------------------------

// The helper program sits next to the test executable.
inline std::string HelperPath(const char *exe = "whsem_win_helper.exe")
{
    char self[MAX_PATH];
    DWORD n = GetModuleFileNameA(nullptr, self, sizeof self);
    std::string dir(self, n);
    return dir.substr(0, dir.find_last_of("\\/") + 1) + exe;
}

// A started helper process; killed (if still running) when it goes.
class Child {
  public:
    explicit Child(const std::vector<std::string> &args, const char *exe = "whsem_win_helper.exe",
                   const char *env_name = nullptr, const char *env_value = nullptr)
    {
        std::string cmd = "\"" + HelperPath(exe) + "\"";
        for (auto &a : args) cmd += " \"" + a + "\"";
        STARTUPINFOA si{};
        si.cb = sizeof si;
        PROCESS_INFORMATION pi{};
        if (env_name) SetEnvironmentVariableA(env_name, env_value);
        std::vector<char> line(cmd.begin(), cmd.end());
        line.push_back(0);
        BOOL ok = CreateProcessA(nullptr, line.data(), nullptr, nullptr, FALSE, 0, nullptr, nullptr,
                                 &si, &pi);
        if (env_name) SetEnvironmentVariableA(env_name, nullptr);
        if (!ok) {
            ADD_FAILURE() << "CreateProcess " << cmd << ": error " << GetLastError();
            return;
        }
        CloseHandle(pi.hThread);
        process_ = pi.hProcess;
        pid_ = pi.dwProcessId;
    }
    ~Child()
    {
        if (process_) {
            TerminateProcess(process_, 199);
            WaitForSingleObject(process_, 30000);
            CloseHandle(process_);
        }
    }
    Child(const Child &) = delete;
    Child &operator=(const Child &) = delete;
    bool started() const { return process_ != nullptr; }
    DWORD pid() const { return pid_; }
    // Waits for the exit code (-1 if it did not end within the timeout).
    int Reap(DWORD timeout_ms = 120000)
    {
        if (!process_ || WaitForSingleObject(process_, timeout_ms) != WAIT_OBJECT_0) return -1;
        DWORD code = 0;
        GetExitCodeProcess(process_, &code);
        return (int)code;
    }
    // Kills it the way a crash would, and waits until it is gone.
    int Kill()
    {
        if (!process_) return -1;
        TerminateProcess(process_, 137);
        return Reap();
    }

  private:
    HANDLE process_ = nullptr;
    DWORD pid_ = 0;
};

// Memory shared with helper processes (a named section the helper opens by
// the name it is given on its command line).
template <typename T> class Shared {
  public:
    Shared() : name_("Local\\" + UniqueName("ledger"))
    {
        section_ = CreateFileMappingA(INVALID_HANDLE_VALUE, nullptr, PAGE_READWRITE, 0, sizeof(T),
                                      name_.c_str());
        void *p = section_ ? MapViewOfFile(section_, FILE_MAP_ALL_ACCESS, 0, 0, sizeof(T)) : nullptr;
        if (!p) ADD_FAILURE() << "cannot create the shared ledger: " << GetLastError();
        else ptr_ = new (p) T();
    }
    ~Shared()
    {
        if (ptr_) {
            ptr_->~T();
            UnmapViewOfFile(ptr_);
        }
        if (section_) CloseHandle(section_);
    }
    Shared(const Shared &) = delete;
    Shared &operator=(const Shared &) = delete;
    T *operator->() const { return ptr_; }
    T *get() const { return ptr_; }
    const std::string &name() const { return name_; }

  private:
    std::string name_;
    HANDLE section_ = nullptr;
    T *ptr_ = nullptr;
};

} // namespace whtest
