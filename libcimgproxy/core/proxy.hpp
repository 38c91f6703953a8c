// SPDX-License-Identifier: LGPL-2.1-or-later
//
// One running `skopeo experimental-image-proxy` and the conversation with it. The server
// answers one request at a time, in order, so every request holds the proxy's mutex from send
// to reply; blob data flows through pipes that never touch that mutex, which is what lets
// several blobs stream at once.

#pragma once

#include "error.hpp"
#include "fd.hpp"
#include "oci.hpp"
#include "process.hpp"
#include "protocol.hpp"

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace cimgproxy::core {

class Proxy {
  public:
    // Starts the process and negotiates the protocol version. `cancel_fd` (or -1) becomes
    // readable when the caller gives up; the same convention holds for every method below.
    // See set_idle_timeout() for `idle_timeout`.
    static std::unique_ptr<Proxy> start(SpawnOptions options,
                                        std::chrono::milliseconds idle_timeout, int cancel_fd);

    Proxy(const Proxy&) = delete;
    Proxy& operator=(const Proxy&) = delete;
    ~Proxy();

    const Version& version() const noexcept { return version_; }
    // How long a request may go without a reply, and FinishPipe without data, before the
    // proxy is taken for wedged and stopped; zero waits forever.
    void set_idle_timeout(std::chrono::milliseconds timeout);
    std::chrono::milliseconds idle_timeout() const noexcept { return idle_timeout_; }
    bool supports(Method method) const;
    pid_t pid() const noexcept { return process_->pid(); }

    // Returns 0 for a missing image when `optional`, using OpenImageOptional where the proxy
    // has it and recognizing skopeo's "not found" errors where it does not.
    uint64_t open_image(const std::string& reference, bool optional, int cancel_fd);
    void close_image(uint64_t image, int cancel_fd);

    std::string get_manifest(uint64_t image, std::string& digest, int cancel_fd);
    std::string get_config(uint64_t image, int cancel_fd);
    std::vector<LayerInfo> get_layer_info(uint64_t image, int cancel_fd);

    struct BlobPipe {
        Fd fd;
        uint32_t pipe_id = 0;
        // What the source says the blob's size is, -1 when it does not know.
        int64_t source_size = -1;
    };
    BlobPipe get_blob(uint64_t image, const std::string& digest, uint64_t size, int cancel_fd);
    // Collects skopeo's verdict on a blob after exactly its size was read from `fd`.
    void finish_blob(uint32_t pipe_id, Fd fd, int cancel_fd);
    // GetRawBlob (protocol 0.2.8): the blob's data and, on a second pipe, the error that ended
    // it, if any. No FinishPipe and no verification: the reader checks the digest itself.
    struct RawBlob {
        Fd data;
        Fd error;
        int64_t source_size = -1;
    };
    RawBlob get_raw_blob(uint64_t image, const std::string& digest, int cancel_fd);

    // Forgets a blob whose reader gave up and closed its pipe, without waiting: its
    // FinishPipe (which skopeo needs to release the pipe, and which now fails fast with EPIPE)
    // goes out ahead of the next request.
    void abandon_blob(uint32_t pipe_id);

    // Stops the proxy for good, from any thread: it is killed, and every later call, and any
    // call still waiting for it, fails with Error(Closed) giving `reason`.
    void terminate(const std::string& reason);

    // Sends one request and returns its reply, whatever it says. Methods the proxy is too old
    // for fail with Error(NotSupported) without being sent.
    Reply call(Method method, const std::vector<Arg>& args, int cancel_fd);

    // Sends Shutdown and waits for the process; fails if it does not exit with status 0.
    void shutdown();

  private:
    // Reads a pipe while its FinishPipe is outstanding. The sink returns false when it wants
    // no more data; the pipe is then closed so that skopeo's writer fails instead of blocking.
    struct Drain {
        Fd* fd;
        std::function<bool(const char*, size_t)> sink;
    };

    explicit Proxy(std::unique_ptr<Process> process, Fd socket);

    Reply call(Method method, const std::vector<Arg>& args, int cancel_fd, Drain* drain);
    Reply exchange(Method method, const std::vector<Arg>& args, int cancel_fd, Drain* drain);
    // Blocks for at most the idle timeout when `wait`; otherwise a reply must be waiting.
    Reply receive(Method method, bool wait);
    void discard_abandoned();
    void finish_abandoned_pipes();
    std::string read_piped(Method method, uint64_t image, int cancel_fd, JsonNodePtr* value);

    [[noreturn]] void fail_exited();
    [[noreturn]] void fail_protocol(const Error& error);
    [[noreturn]] void fail_timeout(Method method);
    void ensure_usable() const;
    // Records why the proxy can no longer be used, unless an earlier reason stands.
    void set_unusable(const std::string& reason);

    std::unique_ptr<Process> process_;
    std::string name_;
    Version version_;
    std::chrono::milliseconds idle_timeout_{0};

    // The request in flight: everything here belongs to whoever holds the mutex.
    std::mutex mutex_;
    Fd socket_;
    // Room for the largest reply allowed, so that one recvmsg() takes any reply whole. Only
    // the pages replies reach are ever backed by memory.
    std::unique_ptr<char[]> buffer_;
    GObjectPtr<JsonParser> parser_;
    // Requests whose caller stopped waiting; their replies still arrive, in order.
    std::deque<Method> abandoned_;

    // State any thread may look at or change without waiting for the request in flight.
    mutable std::mutex state_mutex_;
    // Set once no request can be made any more, with the reason given to later callers.
    std::optional<std::string> unusable_;
    // Pipes given up by their readers, still to be finished.
    std::vector<uint32_t> abandoned_pipes_;
};

// Why skopeo refused to open an image, from its error text: the proxy has no error codes for
// this (error_code of protocol 0.2.8 says only whether to retry), so the phrases c/image uses
// for "no such image" and "not a reference" are matched, as skopeo's own OpenImageOptional does
// by error type.
ErrorKind classify_open_failure(std::string_view message);
// The same for the FinishPipe of a blob: a digest or size mismatch, or something else.
ErrorKind classify_transfer_failure(std::string_view message);

// What GetRawBlob's error pipe held once the data ended: nothing when the transfer went
// well, else {"code": "EPIPE"|"retryable"|"other", "message": "..."}, thrown as
// Error(RequestFailed) (or Error(Protocol) when it is not that).
void check_raw_blob_error(std::string_view json);

} // namespace cimgproxy::core
