// SPDX-License-Identifier: LGPL-2.1-or-later
//
// The one exception type of the core. It carries a kind that the C seam (core.cpp) maps onto
// a GError domain and code; nothing else in the library catches it.

#pragma once

#include <stdexcept>
#include <string>

namespace cimgproxy::core {

enum class ErrorKind {
    // CImgProxyError codes
    SpawnFailed,
    ProxyExited,
    Protocol,
    UnsupportedVersion,
    RequestFailed,
    VerificationFailed,
    Closed,
    NotFound,
    InvalidReference,
    AuthenticationFailed,
    // G_IO_ERROR codes
    NotSupported,
    Cancelled,
    TimedOut,
    InvalidArgument,
    Io,
};

class Error : public std::runtime_error {
  public:
    Error(ErrorKind kind, const std::string& message, int errnum = 0)
        : std::runtime_error(message)
        , kind_(kind)
        , errnum_(errnum) {}

    ErrorKind kind() const noexcept { return kind_; }
    // The errno behind an Io error, so the seam can pick the matching GIOErrorEnum.
    int errnum() const noexcept { return errnum_; }

  private:
    ErrorKind kind_;
    int errnum_;
};

// Throws an Io error for a failed system call, with errno's text appended to `what`.
[[noreturn]] void throw_errno(const std::string& what, int errnum);

// Renders any printf-style message; the core's messages are built with it so that they read
// like GLib's.
std::string format(const char* fmt, ...) __attribute__((format(printf, 1, 2)));

} // namespace cimgproxy::core
