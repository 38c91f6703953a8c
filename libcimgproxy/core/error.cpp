// SPDX-License-Identifier: LGPL-2.1-or-later

#include "error.hpp"

#include <glib.h>

#include <cstdarg>

namespace cimgproxy::core {

void throw_errno(const std::string& what, int errnum) {
    throw Error(ErrorKind::Io, what + ": " + g_strerror(errnum), errnum);
}

std::string format(const char* fmt, ...) {
    va_list args;
    va_start(args, fmt);
    char* text = g_strdup_vprintf(fmt, args);
    va_end(args);
    std::string result(text);
    g_free(text);
    return result;
}

} // namespace cimgproxy::core
