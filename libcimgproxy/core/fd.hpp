// SPDX-License-Identifier: LGPL-2.1-or-later
//
// An owned file descriptor. Every fd the core creates or receives lives in one of these, so
// an error path can never leak one.

#pragma once

#include <unistd.h>

#include <utility>

namespace cimgproxy::core {

class Fd {
  public:
    Fd() noexcept = default;
    explicit Fd(int fd) noexcept
        : fd_(fd) {}
    Fd(Fd&& other) noexcept
        : fd_(other.release()) {}
    Fd& operator=(Fd&& other) noexcept {
        if (this != &other)
            reset(other.release());
        return *this;
    }
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    ~Fd() { reset(); }

    int get() const noexcept { return fd_; }
    bool valid() const noexcept { return fd_ >= 0; }
    explicit operator bool() const noexcept { return valid(); }

    int release() noexcept { return std::exchange(fd_, -1); }

    void reset(int fd = -1) noexcept {
        // close() must not be retried on EINTR on Linux: the fd is gone either way.
        if (fd_ >= 0)
            ::close(fd_);
        fd_ = fd;
    }

  private:
    int fd_ = -1;
};

} // namespace cimgproxy::core
