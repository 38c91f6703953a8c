// SPDX-License-Identifier: LGPL-2.1-or-later
//
// libFuzzer target for the proxy's replies: parse_reply() with any bytes as the packet, any
// method, and any number of fds attached. The first input byte picks the method (low nibble)
// and the fd count (high nibble); the rest is the packet. Whatever comes in must end as a
// Reply or an Error(Protocol), and every fd must be closed either way.

#include "core/error.hpp"
#include "core/protocol.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <string_view>

using namespace cimgproxy::core;

namespace {

int count_fds() {
    int count = 0;
    for (int fd = 0; fd < 256; fd++)
        if (fcntl(fd, F_GETFD) != -1)
            count++;
    return count;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size == 0)
        return 0;
    const int fds_before = count_fds();
    Method method =
        static_cast<Method>((data[0] & 0x0f) % (static_cast<int>(Method::Shutdown) + 1));
    size_t n_fds = (data[0] >> 4) % 4;
    std::vector<Fd> fds;
    for (size_t i = 0; i < n_fds; i++)
        fds.emplace_back(open("/dev/null", O_RDONLY | O_CLOEXEC));

    {
        std::string_view packet(reinterpret_cast<const char*>(data + 1), size - 1);
        try {
            Reply reply = parse_reply(method, packet, std::move(fds));
            // What parse_reply accepts must be consistent with what it promises.
            if (reply.value == nullptr)
                abort();
            if (!reply.success && !reply.fds.empty())
                abort();
        } catch (const Error& error) {
            if (error.kind() != ErrorKind::Protocol)
                abort();
        }
    }
    if (count_fds() != fds_before)
        abort();
    return 0;
}
