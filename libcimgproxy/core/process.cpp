// SPDX-License-Identifier: LGPL-2.1-or-later

#include "process.hpp"

#include "error.hpp"

#include <fcntl.h>
#include <glib.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <climits>

extern char** environ;

namespace cimgproxy::core {

namespace {

// Enough of skopeo's stderr to explain a failure; older output is dropped as new output comes.
constexpr size_t kStderrKeep = 16 * 1024;
// How much of it goes into an error message.
constexpr size_t kStderrReport = 2 * 1024;

// Everything the forked child needs, prepared before fork() because after it only
// async-signal-safe calls are allowed in a multi-threaded process.
struct ChildPlan {
    const char* program;
    char* const* argv;
    int socket;
    int devnull;
    int stderr_fd; // -1: keep ours
    int extra_fd;  // -1: none
    int report_fd; // CLOEXEC pipe that carries errno back when exec fails
    pid_t parent;
    int max_fd;
};

// Moves `fd` to a number no lower than `floor`, so that dup2() onto 0..3 cannot overwrite a
// descriptor that is still to be moved.
int lift(int fd, int floor) {
    return fd < 0 ? -1 : fcntl(fd, F_DUPFD_CLOEXEC, floor);
}

[[noreturn]] void report_and_exit(int report_fd) {
    int errnum = errno;
    ssize_t ignored = write(report_fd, &errnum, sizeof errnum);
    (void)ignored;
    _exit(127);
}

[[noreturn]] void exec_child(const ChildPlan& plan) {
    sigset_t all;
    sigemptyset(&all);
    pthread_sigmask(SIG_SETMASK, &all, nullptr);
    // An ignored SIGPIPE survives exec; skopeo should see the default disposition.
    struct sigaction dfl = {};
    dfl.sa_handler = SIG_DFL;
    sigaction(SIGPIPE, &dfl, nullptr);

    // The kernel sends the signal when the thread that forked us exits; that thread is the
    // watcher, which lives exactly as long as this child, so in effect: when our parent dies.
    if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0 || getppid() != plan.parent)
        _exit(127);

    const int floor = Process::kExtraFdNumber + 8;
    int report = lift(plan.report_fd, floor);
    int socket = lift(plan.socket, floor);
    int devnull = lift(plan.devnull, floor);
    int err = lift(plan.stderr_fd, floor);
    int extra = lift(plan.extra_fd, floor);
    if (report < 0 || socket < 0 || devnull < 0 || (plan.stderr_fd >= 0 && err < 0) ||
        (plan.extra_fd >= 0 && extra < 0))
        report_and_exit(plan.report_fd);

    // dup2() leaves the new descriptor without FD_CLOEXEC: exactly these survive exec.
    if (dup2(socket, 0) < 0 || dup2(devnull, 1) < 0 || (err >= 0 && dup2(err, 2) < 0))
        report_and_exit(report);
    int keep = 2;
    if (extra >= 0) {
        if (dup2(extra, Process::kExtraFdNumber) < 0)
            report_and_exit(report);
        keep = Process::kExtraFdNumber;
    }
    // The report pipe stays open (CLOEXEC) just above the kept range; everything else goes,
    // including whatever other threads of the host program opened without CLOEXEC.
    int report_low = dup3(report, keep + 1, O_CLOEXEC);
    if (report_low < 0)
        report_and_exit(report);
    if (syscall(SYS_close_range, keep + 2, ~0U, 0) != 0) {
        for (int fd = keep + 2; fd < plan.max_fd; fd++)
            close(fd);
    }

    execve(plan.program, plan.argv, environ);
    report_and_exit(report_low);
}

std::string resolve_program(const std::string& name) {
    if (name.empty())
        throw Error(ErrorKind::SpawnFailed, "The skopeo command line is empty");
    if (name.find('/') != std::string::npos)
        return name;
    char* found = g_find_program_in_path(name.c_str());
    if (found == nullptr)
        throw Error(ErrorKind::SpawnFailed,
                    format("Could not find “%s” in PATH; install skopeo or point the client's "
                           "skopeo-argv property at it",
                           name.c_str()));
    std::string path(found);
    g_free(found);
    return path;
}

Fd make_pipe(Fd& write_end) {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0)
        throw_errno("Could not create a pipe", errno);
    write_end.reset(fds[1]);
    return Fd(fds[0]);
}

} // namespace

std::unique_ptr<Process> Process::spawn(SpawnOptions options, Fd socket) {
    std::unique_ptr<Process> self(new Process());
    self->program_ = resolve_program(options.argv.at(0));

    Fd stderr_write;
    Fd stderr_read;
    if (!options.inherit_stderr)
        stderr_read = make_pipe(stderr_write);
    Fd report_write;
    Fd report_read = make_pipe(report_write);
    Fd devnull(open("/dev/null", O_WRONLY | O_CLOEXEC));
    if (!devnull)
        throw_errno("Could not open /dev/null", errno);

    std::vector<char*> argv;
    for (auto& arg : options.argv)
        argv.push_back(arg.data());
    argv.push_back(nullptr);

    struct rlimit limit = {};
    getrlimit(RLIMIT_NOFILE, &limit);

    ChildPlan plan = {};
    plan.program = self->program_.c_str();
    plan.argv = argv.data();
    plan.socket = socket.get();
    plan.devnull = devnull.get();
    plan.stderr_fd = stderr_write.get();
    plan.extra_fd = options.extra_fd.get();
    plan.report_fd = report_write.get();
    plan.parent = getpid();
    plan.max_fd = limit.rlim_cur == RLIM_INFINITY || limit.rlim_cur > INT_MAX
                      ? 65536
                      : static_cast<int>(limit.rlim_cur);

    // The fork happens on the watcher thread (see exec_child), so the thread has to report
    // back whether the child got as far as exec. Until it has, it may use this frame's
    // locals; what it needs afterwards, it owns.
    std::mutex started_mutex;
    std::condition_variable started_cond;
    bool started = false;
    int exec_errno = 0;

    self->watcher_ =
        std::thread([&, process = self.get(), stderr_pipe = std::move(stderr_read)]() mutable {
            pid_t pid = fork();
            if (pid == 0)
                exec_child(plan);
            int fork_errno = errno;

            // The child's ends are the child's business now.
            socket.reset();
            devnull.reset();
            stderr_write.reset();
            options.extra_fd.reset();
            report_write.reset();

            int errnum = pid < 0 ? fork_errno : 0;
            if (pid > 0) {
                ssize_t n;
                do
                    n = read(report_read.get(), &errnum, sizeof errnum);
                while (n < 0 && errno == EINTR);
                if (n != sizeof errnum)
                    errnum = 0;
                if (errnum != 0) {
                    while (waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
                    }
                }
            }
            report_read.reset();
            bool exec_failed = errnum != 0;
            {
                std::lock_guard lock(started_mutex);
                process->pid_ = exec_failed ? -1 : pid;
                exec_errno = errnum;
                started = true;
                // Notified under the lock: once it is released, spawn() may return and take the
                // condition variable with it.
                started_cond.notify_one();
            }
            if (!exec_failed)
                process->watch(std::move(stderr_pipe));
        });

    {
        std::unique_lock lock(started_mutex);
        started_cond.wait(lock, [&] { return started; });
    }
    if (exec_errno != 0) {
        self->watcher_.join();
        self->reaped_ = true;
        throw Error(
            ErrorKind::SpawnFailed,
            format("Could not run “%s”: %s", self->program_.c_str(), g_strerror(exec_errno)),
            exec_errno);
    }
    g_debug("Started %s as process %d", self->program_.c_str(), static_cast<int>(self->pid_));
    return self;
}

void Process::watch(Fd stderr_pipe) {
    if (stderr_pipe) {
        char buffer[4096];
        for (;;) {
            ssize_t n = read(stderr_pipe.get(), buffer, sizeof buffer);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                break;
            append_stderr(buffer, static_cast<size_t>(n));
        }
    }

    // Wait without reaping first: until the pid is reaped under the mutex, kill() cannot
    // reach a process that merely inherited the number.
    siginfo_t info = {};
    while (waitid(P_PID, static_cast<id_t>(pid_), &info, WEXITED | WNOWAIT) < 0 && errno == EINTR) {
    }
    std::lock_guard lock(mutex_);
    int status = 0;
    while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    wait_status_ = status;
    reaped_ = true;
    exited_cond_.notify_all();
}

void Process::append_stderr(const char* data, size_t length) {
    std::lock_guard lock(mutex_);
    stderr_tail_.append(data, length);
    if (stderr_tail_.size() > 2 * kStderrKeep)
        stderr_tail_.erase(0, stderr_tail_.size() - kStderrKeep);
}

Process::~Process() {
    if (pid_ > 0 && !wait_exit(std::chrono::milliseconds(0))) {
        kill(SIGKILL);
        wait_exit(std::chrono::hours(1));
    }
    if (watcher_.joinable())
        watcher_.join();
}

bool Process::wait_exit(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mutex_);
    return exited_cond_.wait_for(lock, timeout, [this] { return reaped_; });
}

void Process::kill(int signal) {
    std::lock_guard lock(mutex_);
    if (!reaped_ && pid_ > 0)
        ::kill(pid_, signal);
}

bool Process::stop(int signal, std::chrono::milliseconds grace) {
    if (wait_exit(grace))
        return true;
    kill(signal);
    wait_exit(grace);
    return false;
}

bool Process::exited_successfully() const {
    std::lock_guard lock(mutex_);
    return reaped_ && WIFEXITED(wait_status_) && WEXITSTATUS(wait_status_) == 0;
}

std::string Process::describe_exit() const {
    std::lock_guard lock(mutex_);
    std::string text;
    if (!reaped_)
        text = "is still running";
    else if (WIFEXITED(wait_status_))
        text = format("exited with status %d", WEXITSTATUS(wait_status_));
    else if (WIFSIGNALED(wait_status_))
        text = format("was killed by signal %d (%s)", WTERMSIG(wait_status_),
                      g_strsignal(WTERMSIG(wait_status_)));
    else
        text = "ended";

    std::string tail = stderr_tail_.size() > kStderrReport
                           ? stderr_tail_.substr(stderr_tail_.size() - kStderrReport)
                           : stderr_tail_;
    while (!tail.empty() && g_ascii_isspace(tail.back()))
        tail.pop_back();
    if (!tail.empty())
        text += "; its last words on stderr: " + tail;
    return text;
}

} // namespace cimgproxy::core
