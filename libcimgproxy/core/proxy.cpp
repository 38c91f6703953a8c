// SPDX-License-Identifier: LGPL-2.1-or-later

#include "proxy.hpp"

#include "error.hpp"

#include <glib.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cinttypes>
#include <cstring>

using namespace std::chrono_literals;

namespace cimgproxy::core {

namespace {

// Replies can be far larger than requests: GetLayerInfo inlines one entry per layer.
constexpr size_t kMaxReplySize = 16 * 1024 * 1024;
// Manifests, configs and layer lists; c/image itself refuses manifests above 4 MiB.
constexpr size_t kMaxMetadataSize = 64 * 1024 * 1024;
// GetRawBlob sends two fds, nothing sends more; room for a few more lets us see and close
// surplus ones instead of having the kernel drop them silently.
constexpr size_t kMaxFds = 8;

constexpr auto kExitGrace = 2s;

// How long a drained request waits for its answer alone before it watches the pipe too (see
// exchange()): what a payload larger than a pipe holds costs in extra latency. At 1 ms the
// short timer and the fallbacks it triggered on a loaded machine cost more than the wakeup it
// saves.
constexpr int kAnswerFirstMs = 10;

bool contains(std::string_view haystack, std::string_view needle) {
    return haystack.find(needle) != std::string_view::npos;
}

bool poll_readable(int fd, int timeout_ms) {
    struct pollfd pfd = {fd, POLLIN, 0};
    int n;
    do
        n = poll(&pfd, 1, timeout_ms);
    while (n < 0 && errno == EINTR);
    return n > 0;
}

// poll()'s timeout argument for an idle timeout: -1 when there is none.
int poll_timeout(std::chrono::milliseconds timeout) {
    return timeout.count() > 0 ? static_cast<int>(timeout.count()) : -1;
}

[[noreturn]] void throw_cancelled() {
    throw Error(ErrorKind::Cancelled, "Operation was cancelled");
}

std::string basename_of(const std::string& path) {
    size_t slash = path.rfind('/');
    return slash == std::string::npos ? path : path.substr(slash + 1);
}

} // namespace

ErrorKind classify_open_failure(std::string_view message) {
    // oci: and oci-archive: (ImageNotFoundError), docker:// (MANIFEST_UNKNOWN),
    // containers-storage: (ErrNoSuchImage)
    if (contains(message, "no descriptor found for reference") ||
        contains(message, "manifest unknown") || contains(message, "identifier is not an image"))
        return ErrorKind::NotFound;
    // The registry's UNAUTHORIZED and DENIED error codes, as docker/distribution words them
    if (contains(message, "unauthorized:") || contains(message, "authentication required") ||
        contains(message, "denied:"))
        return ErrorKind::AuthenticationFailed;
    // alltransports.ParseImageName and the docker reference parser
    if (message.rfind("Invalid image name", 0) == 0 ||
        contains(message, "invalid reference format"))
        return ErrorKind::InvalidReference;
    return ErrorKind::RequestFailed;
}

ErrorKind classify_transfer_failure(std::string_view message) {
    // skopeo's own verifier in GetBlob, and c/image's where it verifies
    if (contains(message, "corrupted blob") || contains(message, "bytes in blob") ||
        contains(message, "Digest did not match"))
        return ErrorKind::VerificationFailed;
    return ErrorKind::RequestFailed;
}

Proxy::Proxy(std::unique_ptr<Process> process, Fd socket)
    : process_(std::move(process))
    , name_(basename_of(process_->program()))
    , socket_(std::move(socket))
    // Not value-initialized: untouched, the allocation costs address space, not memory.
    , buffer_(new char[kMaxReplySize])
    , parser_(json_parser_new_immutable()) {}

std::unique_ptr<Proxy> Proxy::start(SpawnOptions options, std::chrono::milliseconds idle_timeout,
                                    int cancel_fd) {
    int pair[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) != 0)
        throw_errno("Could not create the proxy socket", errno);
    Fd ours(pair[0]);
    Fd theirs(pair[1]);

    auto process = Process::spawn(std::move(options), std::move(theirs));
    std::unique_ptr<Proxy> proxy(new Proxy(std::move(process), std::move(ours)));
    proxy->set_idle_timeout(idle_timeout);

    Reply reply = proxy->call(Method::Initialize, {}, cancel_fd);
    if (!reply.success)
        throw Error(ErrorKind::RequestFailed, "Initialize failed: " + reply.error);
    const char* text = JSON_NODE_HOLDS_VALUE(reply.value.get()) &&
                               json_node_get_value_type(reply.value.get()) == G_TYPE_STRING
                           ? json_node_get_string(reply.value.get())
                           : nullptr;
    std::optional<Version> version = text != nullptr ? Version::parse(text) : std::nullopt;
    if (!version)
        throw Error(ErrorKind::Protocol, "Initialize did not return a protocol version");
    // 0.2.x is the only series there has ever been; a 0.3 or 1.0 would be free to change
    // anything, so it is refused rather than guessed at.
    if (version->major != 0 || version->minor != 2 || !version->at_least(kMinimumVersion))
        throw Error(ErrorKind::UnsupportedVersion,
                    format("%s speaks image proxy protocol %s, but libcimgproxy needs 0.2.x with "
                           "x >= %u (skopeo 1.6 or newer)",
                           proxy->name_.c_str(), text, kMinimumVersion.patch));
    proxy->version_ = *version;
    g_debug("Proxy %d speaks protocol %s", static_cast<int>(proxy->pid()), text);
    return proxy;
}

void Proxy::set_idle_timeout(std::chrono::milliseconds timeout) {
    idle_timeout_ = timeout;
    // A receive blocked on the socket alone is bounded by the socket itself, which spares
    // a poll() per request; zero means no bound, as it does for the idle timeout.
    struct timeval limit = {};
    limit.tv_sec = static_cast<time_t>(timeout.count() / 1000);
    limit.tv_usec = static_cast<suseconds_t>(timeout.count() % 1000 * 1000);
    if (setsockopt(socket_.get(), SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit) != 0)
        throw_errno("Could not set the proxy socket's receive timeout", errno);
}

Proxy::~Proxy() {
    // Closing our end is skopeo's signal to exit; a proxy stuck in a request gets a SIGTERM.
    socket_.reset();
    process_->stop(SIGTERM, kExitGrace);
}

bool Proxy::supports(Method method) const {
    return version_.at_least(method_info(method).since);
}

void Proxy::ensure_usable() const {
    std::lock_guard lock(state_mutex_);
    if (unusable_)
        throw Error(ErrorKind::Closed, *unusable_);
}

void Proxy::set_unusable(const std::string& reason) {
    std::lock_guard lock(state_mutex_);
    if (!unusable_)
        unusable_ = reason;
}

void Proxy::terminate(const std::string& reason) {
    set_unusable(reason);
    g_info("Stopping proxy %d: %s", static_cast<int>(process_->pid()), reason.c_str());
    // The socket stays with the request in flight, if any: that request sees the process go
    // and reports the reason recorded above.
    process_->kill(SIGKILL);
}

void Proxy::abandon_blob(uint32_t pipe_id) {
    std::lock_guard lock(state_mutex_);
    abandoned_pipes_.push_back(pipe_id);
}

Reply Proxy::call(Method method, const std::vector<Arg>& args, int cancel_fd) {
    return call(method, args, cancel_fd, nullptr);
}

Reply Proxy::call(Method method, const std::vector<Arg>& args, int cancel_fd, Drain* drain) {
    const MethodInfo& info = method_info(method);
    // Before Initialize has answered, the version is 0.0.0 and nothing is gated.
    if (version_.major != 0 || version_.minor != 0) {
        if (!supports(method))
            throw Error(ErrorKind::NotSupported,
                        format("%s needs skopeo %s or newer (image proxy protocol %s); this %s "
                               "speaks protocol %s",
                               info.name, info.skopeo_release, info.since.to_string().c_str(),
                               name_.c_str(), version_.to_string().c_str()));
    }
    if (cancel_fd >= 0 && poll_readable(cancel_fd, 0))
        throw_cancelled();

    std::lock_guard lock(mutex_);
    ensure_usable();
    discard_abandoned();
    finish_abandoned_pipes();
    return exchange(method, args, cancel_fd, drain);
}

Reply Proxy::exchange(Method method, const std::vector<Arg>& args, int cancel_fd, Drain* drain) {
    // Between requests the proxy has nothing to say: anything waiting now is a packet nobody
    // asked for, which would be taken for the answer to this request. (Or the proxy is gone.)
    if (poll_readable(socket_.get(), 0)) {
        char probe;
        if (recv(socket_.get(), &probe, 1, MSG_PEEK | MSG_DONTWAIT) <= 0)
            fail_exited();
        fail_protocol(
            Error(ErrorKind::Protocol, format("The proxy sent a packet nobody asked for before %s",
                                              method_info(method).name)));
    }
    std::string request = build_request(method, args);
    if (request.size() > kMaxRequestSize)
        throw Error(ErrorKind::InvalidArgument,
                    format("The %s request is %zu bytes long; the proxy reads at most %zu",
                           method_info(method).name, request.size(), kMaxRequestSize));
    ssize_t sent;
    do
        sent = send(socket_.get(), request.data(), request.size(), MSG_NOSIGNAL);
    while (sent < 0 && errno == EINTR);
    if (sent < 0) {
        if (errno == EPIPE || errno == ECONNRESET)
            fail_exited();
        throw_errno("Could not send a request to the proxy", errno);
    }
    // Shutdown is the one request without a reply.
    if (method == Method::Shutdown)
        return Reply{};
    // With only the socket to watch, the socket's own timeout does what poll() would.
    if (cancel_fd < 0 && drain == nullptr)
        return receive(method, true);

    std::optional<Reply> reply;
    char chunk[64 * 1024];
    // A payload that fits in the pipe, as nearly all manifests and configs do, is written
    // before skopeo answers: watching the pipe at once would wake us up for its bytes and
    // again for the answer. Only a larger payload keeps the answer waiting for the reader, so
    // the pipe is watched from the start only after a moment without an answer.
    bool answer_first = drain != nullptr;
    for (;;) {
        bool draining = drain != nullptr && drain->fd->valid();
        if (reply && !draining)
            return std::move(*reply);
        bool answer_wait = draining && !reply && answer_first;
        bool watch_pipe = draining && !answer_wait;

        struct pollfd fds[3];
        nfds_t count = 0;
        int socket_index = -1;
        int drain_index = -1;
        if (!reply) {
            socket_index = static_cast<int>(count);
            fds[count++] = {socket_.get(), POLLIN, 0};
        }
        if (watch_pipe) {
            drain_index = static_cast<int>(count);
            fds[count++] = {drain->fd->get(), POLLIN, 0};
        }
        if (cancel_fd >= 0)
            fds[count++] = {cancel_fd, POLLIN, 0};

        // skopeo closes a pipe's write end before it answers FinishPipe, so once the answer
        // is in, whatever is left is already in the pipe: do not wait for more.
        int timeout = reply ? 0 : answer_wait ? kAnswerFirstMs : poll_timeout(idle_timeout_);
        int ready = poll(fds, count, timeout);
        if (ready == 0 && reply && drain_index >= 0) {
            drain->fd->reset();
            continue;
        }
        if (ready == 0 && answer_wait) {
            answer_first = false;
            continue;
        }
        if (ready < 0) {
            if (errno == EINTR)
                continue;
            throw_errno("Could not wait for the proxy", errno);
        }
        // Any byte on the pipe counts as life; only silence everywhere is a stall.
        if (ready == 0)
            fail_timeout(method);
        if (cancel_fd >= 0 && fds[count - 1].revents != 0) {
            // The reply still comes, in order: whoever sends the next request reads it first.
            if (!reply)
                abandoned_.push_back(method);
            throw_cancelled();
        }
        if (drain_index >= 0 && fds[drain_index].revents != 0) {
            ssize_t n = read(drain->fd->get(), chunk, sizeof chunk);
            if (n < 0 && errno != EINTR && errno != EAGAIN)
                drain->fd->reset();
            else if (n == 0 || (n > 0 && !drain->sink(chunk, static_cast<size_t>(n))))
                drain->fd->reset();
        }
        if (socket_index >= 0 && fds[socket_index].revents != 0)
            reply = receive(method, false);
    }
}

Reply Proxy::receive(Method method, bool wait) {
    alignas(struct cmsghdr) char control[CMSG_SPACE(kMaxFds * sizeof(int))];
    struct iovec iov = {buffer_.get(), kMaxReplySize};
    struct msghdr message = {};
    message.msg_iov = &iov;
    message.msg_iovlen = 1;
    message.msg_control = control;
    message.msg_controllen = sizeof control;

    // MSG_TRUNC: the length returned is the reply's, even where it did not fit.
    int flags = MSG_CMSG_CLOEXEC | MSG_TRUNC | (wait ? 0 : MSG_DONTWAIT);
    ssize_t n;
    do
        n = recvmsg(socket_.get(), &message, flags);
    while (n < 0 && errno == EINTR);
    if (n < 0 && wait && (errno == EAGAIN || errno == EWOULDBLOCK))
        fail_timeout(method);
    if (n == 0 || (n < 0 && errno == ECONNRESET))
        fail_exited();
    if (n < 0)
        throw_errno("Could not receive from the proxy", errno);

    // Take ownership of every fd before looking at anything else, so none can leak.
    std::vector<Fd> fds;
    for (struct cmsghdr* header = CMSG_FIRSTHDR(&message); header != nullptr;
         header = CMSG_NXTHDR(&message, header)) {
        if (header->cmsg_level != SOL_SOCKET || header->cmsg_type != SCM_RIGHTS)
            continue;
        size_t payload = header->cmsg_len - CMSG_LEN(0);
        const unsigned char* data = CMSG_DATA(header);
        for (size_t i = 0; i + sizeof(int) <= payload; i += sizeof(int)) {
            int fd;
            memcpy(&fd, data + i, sizeof fd);
            fds.emplace_back(fd);
        }
    }

    try {
        size_t size = static_cast<size_t>(n);
        if (size > kMaxReplySize)
            throw Error(ErrorKind::Protocol,
                        format("The reply to %s is %zu bytes long, more than the %zu a reply "
                               "may have",
                               method_info(method).name, size, kMaxReplySize));
        if (message.msg_flags & MSG_CTRUNC)
            throw Error(ErrorKind::Protocol,
                        format("The reply to %s carried more than %zu file descriptors",
                               method_info(method).name, kMaxFds));
        return parse_reply(parser_.get(), method, std::string_view(buffer_.get(), size),
                           std::move(fds));
    } catch (const Error& error) {
        fail_protocol(error);
    }
}

void Proxy::discard_abandoned() {
    while (!abandoned_.empty()) {
        Method method = abandoned_.front();
        Reply reply = receive(method, true);
        abandoned_.pop_front();
        // Nobody will read its pipe: closing it keeps the FinishPipe from blocking, which goes
        // out once every abandoned reply is in.
        if (reply.pipe_id != 0)
            abandon_blob(reply.pipe_id);
    }
}

void Proxy::finish_abandoned_pipes() {
    std::vector<uint32_t> pipes;
    {
        std::lock_guard lock(state_mutex_);
        pipes.swap(abandoned_pipes_);
    }
    for (uint32_t pipe_id : pipes) {
        // "broken pipe" is the expected answer; whatever it says, nobody is waiting for it.
        Reply reply = exchange(Method::FinishPipe, {uint64_t{pipe_id}}, -1, nullptr);
        if (!reply.success)
            g_debug("Abandoned pipe %u: %s", pipe_id, reply.error.c_str());
    }
}

void Proxy::fail_timeout(Method method) {
    std::string reason =
        format("%s got no answer to %s for %lld seconds and was stopped; skopeo has no timeouts of "
               "its own, so a stalled registry would have blocked every later request",
               name_.c_str(), method_info(method).name,
               static_cast<long long>(
                   std::chrono::duration_cast<std::chrono::seconds>(idle_timeout_).count()));
    terminate(reason);
    socket_.reset();
    throw Error(ErrorKind::TimedOut, reason);
}

void Proxy::fail_exited() {
    // A proxy stopped on purpose (terminate()) is reported with the reason it was stopped.
    {
        std::lock_guard lock(state_mutex_);
        if (unusable_) {
            socket_.reset();
            throw Error(ErrorKind::Closed, *unusable_);
        }
    }
    // One that closed its socket but lives on is not a proxy we can talk to any more.
    process_->stop(SIGKILL, kExitGrace);
    std::string message = format("%s %s", name_.c_str(), process_->describe_exit().c_str());
    set_unusable("The proxy is gone: " + message);
    socket_.reset();
    throw Error(ErrorKind::ProxyExited, message);
}

void Proxy::fail_protocol(const Error& error) {
    // Replies carry no request ids: after a reply we do not understand, we can no longer
    // tell which reply belongs to which request.
    set_unusable(std::string("The proxy broke the protocol: ") + error.what());
    socket_.reset();
    process_->kill(SIGKILL);
    throw error;
}

uint64_t Proxy::open_image(const std::string& reference, bool optional, int cancel_fd) {
    bool native_optional = optional && supports(Method::OpenImageOptional);
    Reply reply = call(native_optional ? Method::OpenImageOptional : Method::OpenImage, {reference},
                       cancel_fd);
    if (!reply.success) {
        ErrorKind kind = classify_open_failure(reply.error);
        if (optional && kind == ErrorKind::NotFound)
            return 0;
        throw Error(kind, reply.error);
    }
    if (JSON_NODE_HOLDS_NULL(reply.value.get()))
        throw Error(ErrorKind::RequestFailed,
                    "The proxy opened nothing and gave no reason (skopeo 1.13 answers this way "
                    "when the signature policy rejects an image)");
    std::optional<uint64_t> image = json_to_uint(reply.value.get());
    if (!image || (*image == 0 && !native_optional))
        throw Error(ErrorKind::Protocol, "OpenImage did not return an image id");
    return *image;
}

void Proxy::close_image(uint64_t image, int cancel_fd) {
    Reply reply = call(Method::CloseImage, {image}, cancel_fd);
    if (!reply.success)
        throw Error(ErrorKind::RequestFailed, reply.error);
}

std::string Proxy::read_piped(Method method, uint64_t image, int cancel_fd, JsonNodePtr* value) {
    Reply reply = call(method, {image}, cancel_fd);
    if (!reply.success)
        throw Error(ErrorKind::RequestFailed, reply.error);
    if (value != nullptr)
        *value = std::move(reply.value);

    // The length is not announced and EOF comes only after FinishPipe, so the pipe is read
    // while the FinishPipe is outstanding.
    Fd pipe = std::move(reply.fds.at(0));
    std::string data;
    bool too_large = false;
    Drain drain{&pipe, [&](const char* chunk, size_t length) {
                    if (data.size() + length > kMaxMetadataSize) {
                        too_large = true;
                        return false;
                    }
                    data.append(chunk, length);
                    return true;
                }};
    Reply finish = call(Method::FinishPipe, {uint64_t{reply.pipe_id}}, cancel_fd, &drain);
    if (too_large)
        throw Error(ErrorKind::Protocol, format("The proxy sent more than %zu bytes for %s",
                                                kMaxMetadataSize, method_info(method).name));
    if (!finish.success)
        throw Error(ErrorKind::RequestFailed, finish.error);
    return data;
}

std::string Proxy::get_manifest(uint64_t image, std::string& digest, int cancel_fd) {
    JsonNodePtr value;
    std::string manifest = read_piped(Method::GetManifest, image, cancel_fd, &value);
    const char* text =
        JSON_NODE_HOLDS_VALUE(value.get()) && json_node_get_value_type(value.get()) == G_TYPE_STRING
            ? json_node_get_string(value.get())
            : nullptr;
    if (text == nullptr || !is_valid_digest(text))
        throw Error(ErrorKind::Protocol, "GetManifest did not return a manifest digest");
    digest = text;
    return manifest;
}

std::string Proxy::get_config(uint64_t image, int cancel_fd) {
    return read_piped(Method::GetFullConfig, image, cancel_fd, nullptr);
}

std::vector<LayerInfo> Proxy::get_layer_info(uint64_t image, int cancel_fd) {
    if (supports(Method::GetLayerInfoPiped))
        return parse_layer_infos(read_piped(Method::GetLayerInfoPiped, image, cancel_fd, nullptr));
    if (supports(Method::GetLayerInfo)) {
        Reply reply = call(Method::GetLayerInfo, {image}, cancel_fd);
        if (!reply.success)
            throw Error(ErrorKind::RequestFailed, reply.error);
        return parse_layer_infos(reply.value.get());
    }
    // Protocol 0.2.3 and 0.2.4 have no layer-info method; the manifest has the same
    // descriptors for every transport except containers-storage.
    std::string digest;
    return parse_manifest_layers(get_manifest(image, digest, cancel_fd));
}

Proxy::BlobPipe Proxy::get_blob(uint64_t image, const std::string& digest, uint64_t size,
                                int cancel_fd) {
    Reply reply = call(Method::GetBlob, {image, digest, size}, cancel_fd);
    if (!reply.success)
        throw Error(ErrorKind::RequestFailed, reply.error);
    std::optional<int64_t> source_size = json_to_int(reply.value.get());
    return BlobPipe{std::move(reply.fds.at(0)), reply.pipe_id,
                    source_size && *source_size >= 0 ? *source_size : -1};
}

Proxy::RawBlob Proxy::get_raw_blob(uint64_t image, const std::string& digest, int cancel_fd) {
    Reply reply = call(Method::GetRawBlob, {image, digest}, cancel_fd);
    if (!reply.success)
        throw Error(ErrorKind::RequestFailed, reply.error);
    std::optional<int64_t> source_size = json_to_int(reply.value.get());
    return RawBlob{std::move(reply.fds.at(0)), std::move(reply.fds.at(1)),
                   source_size && *source_size >= 0 ? *source_size : -1};
}

void check_raw_blob_error(std::string_view json) {
    if (json.empty())
        return;
    JsonNodePtr root;
    {
        std::unique_ptr<JsonParser, decltype(&g_object_unref)> parser(json_parser_new_immutable(),
                                                                      g_object_unref);
        if (json_parser_load_from_data(parser.get(), json.data(), static_cast<gssize>(json.size()),
                                       nullptr))
            root.reset(json_node_copy(json_parser_get_root(parser.get())));
    }
    if (!root || !JSON_NODE_HOLDS_OBJECT(root.get()))
        throw Error(ErrorKind::Protocol, "GetRawBlob's error pipe held something other than an "
                                         "error object");
    JsonObject* object = json_node_get_object(root.get());
    const char* code = json_object_get_string_member_with_default(object, "code", "other");
    const char* message = json_object_get_string_member_with_default(object, "message", "");
    throw Error(ErrorKind::RequestFailed,
                format("%s (%s)", *message != '\0' ? message : "the transfer failed", code));
}

void Proxy::finish_blob(uint32_t pipe_id, Fd fd, int cancel_fd) {
    // Bytes beyond the announced size mean the descriptor lied; stop at the first one, and
    // the closed pipe keeps skopeo's writer from blocking the FinishPipe.
    bool longer = false;
    Drain drain{&fd, [&](const char*, size_t) {
                    longer = true;
                    return false;
                }};
    Reply reply = call(Method::FinishPipe, {uint64_t{pipe_id}}, cancel_fd, &drain);
    if (longer)
        throw Error(ErrorKind::VerificationFailed, "The blob is longer than its size says");
    if (!reply.success)
        throw Error(classify_transfer_failure(reply.error), reply.error);
}

void Proxy::shutdown() {
    std::lock_guard lock(mutex_);
    ensure_usable();
    set_unusable("The client was closed");
    try {
        exchange(Method::Shutdown, {}, -1, nullptr);
    } catch (const Error&) {
        // A proxy that already left is reported below from its exit status.
    }
    socket_.reset();
    if (!process_->stop(SIGKILL, kExitGrace))
        throw Error(ErrorKind::ProxyExited,
                    format("%s did not exit after Shutdown and was killed", name_.c_str()));
    if (!process_->exited_successfully())
        throw Error(ErrorKind::ProxyExited,
                    format("%s %s", name_.c_str(), process_->describe_exit().c_str()));
}

} // namespace cimgproxy::core
