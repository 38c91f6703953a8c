// SPDX-License-Identifier: LGPL-2.1-or-later
//
// The skopeo child process: started with one end of the socketpair as its stdin, watched by a
// thread of its own that drains its stderr and reaps it.

#pragma once

#include "fd.hpp"

#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace cimgproxy::core {

struct SpawnOptions {
    // The whole command line; argv[0] is looked up in PATH unless it contains a slash.
    std::vector<std::string> argv;
    // Becomes fd 3 of the child when valid (the sealed memfd holding auth data).
    Fd extra_fd;
    // Let the child write to our stderr instead of capturing it (skopeo --debug).
    bool inherit_stderr = false;
};

class Process {
  public:
    // The fd number that SpawnOptions::extra_fd gets in the child.
    static constexpr int kExtraFdNumber = 3;

    // Runs the command with `socket` as its fd 0, /dev/null as fd 1, and nothing else open but
    // stderr and the extra fd. Throws Error(SpawnFailed) when it cannot be executed.
    static std::unique_ptr<Process> spawn(SpawnOptions options, Fd socket);

    Process(const Process&) = delete;
    Process& operator=(const Process&) = delete;
    // Kills the child if it is still running, then joins the watcher thread.
    ~Process();

    pid_t pid() const noexcept { return pid_; }
    const std::string& program() const noexcept { return program_; }

    // Waits up to `timeout` for the child to exit and be reaped; true once it has.
    bool wait_exit(std::chrono::milliseconds timeout);
    // Sends `signal` unless the child was already reaped, so a recycled pid is never hit.
    void kill(int signal);
    // Gives the child `grace` to exit; if it has not, sends `signal` and waits as long again.
    // True if it exited within the first grace period.
    bool stop(int signal, std::chrono::milliseconds grace);

    bool exited_successfully() const;
    // "exited with status 1", "was killed by signal 9" or "is still running", followed by the
    // last lines skopeo wrote to stderr, ready to be put into an error message.
    std::string describe_exit() const;

  private:
    Process() = default;
    void watch(Fd stderr_pipe);
    void append_stderr(const char* data, size_t length);

    std::string program_;
    pid_t pid_ = -1;
    std::thread watcher_;

    mutable std::mutex mutex_;
    std::condition_variable exited_cond_;
    bool reaped_ = false;
    int wait_status_ = 0;
    std::string stderr_tail_;
};

} // namespace cimgproxy::core
