// SPDX-License-Identifier: LGPL-2.1-or-later
//
// The only place where core errors turn into GErrors: every function here runs its body
// through guard(), which catches whatever the core throws.

#include "core.h"

#include "cimgproxy/cimgproxy-error.h"
#include "error.hpp"
#include "proxy.hpp"

#include <new>

using namespace cimgproxy::core;

struct _CImgCoreProxy {
    std::unique_ptr<Proxy> proxy;
    std::string version;
};

namespace {

void set_error(GError** error, const Error& failure) {
    GQuark domain = CIMG_PROXY_ERROR;
    int code = 0;
    switch (failure.kind()) {
    case ErrorKind::SpawnFailed:
        code = CIMG_PROXY_ERROR_SPAWN_FAILED;
        break;
    case ErrorKind::ProxyExited:
        code = CIMG_PROXY_ERROR_PROXY_EXITED;
        break;
    case ErrorKind::Protocol:
        code = CIMG_PROXY_ERROR_PROTOCOL;
        break;
    case ErrorKind::UnsupportedVersion:
        code = CIMG_PROXY_ERROR_UNSUPPORTED_VERSION;
        break;
    case ErrorKind::RequestFailed:
        code = CIMG_PROXY_ERROR_REQUEST_FAILED;
        break;
    case ErrorKind::VerificationFailed:
        code = CIMG_PROXY_ERROR_VERIFICATION_FAILED;
        break;
    case ErrorKind::Closed:
        code = CIMG_PROXY_ERROR_CLOSED;
        break;
    case ErrorKind::NotFound:
        code = CIMG_PROXY_ERROR_NOT_FOUND;
        break;
    case ErrorKind::InvalidReference:
        code = CIMG_PROXY_ERROR_INVALID_REFERENCE;
        break;
    case ErrorKind::AuthenticationFailed:
        code = CIMG_PROXY_ERROR_AUTHENTICATION_FAILED;
        break;
    case ErrorKind::NotSupported:
        domain = G_IO_ERROR;
        code = G_IO_ERROR_NOT_SUPPORTED;
        break;
    case ErrorKind::Cancelled:
        domain = G_IO_ERROR;
        code = G_IO_ERROR_CANCELLED;
        break;
    case ErrorKind::TimedOut:
        domain = G_IO_ERROR;
        code = G_IO_ERROR_TIMED_OUT;
        break;
    case ErrorKind::InvalidArgument:
        domain = G_IO_ERROR;
        code = G_IO_ERROR_INVALID_ARGUMENT;
        break;
    case ErrorKind::Io:
        domain = G_IO_ERROR;
        code = failure.errnum() != 0 ? g_io_error_from_errno(failure.errnum()) : G_IO_ERROR_FAILED;
        break;
    }
    g_set_error_literal(error, domain, code, failure.what());
}

template <typename Body>
bool guard(GError** error, Body&& body) {
    try {
        body();
        return true;
    } catch (const Error& failure) {
        set_error(error, failure);
    } catch (const std::bad_alloc&) {
        // As everywhere in GLib, running out of memory is not an error to recover from.
        g_error("libcimgproxy: out of memory");
    } catch (const std::exception& failure) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "Internal error in libcimgproxy: %s",
                    failure.what());
    }
    return false;
}

// A GCancellable seen as an fd the core can poll, for as long as one call lasts.
class CancelFd {
  public:
    explicit CancelFd(GCancellable* cancellable)
        : cancellable_(cancellable) {
        GPollFD pollfd;
        if (cancellable_ != nullptr && g_cancellable_make_pollfd(cancellable_, &pollfd))
            fd_ = pollfd.fd;
    }
    CancelFd(const CancelFd&) = delete;
    CancelFd& operator=(const CancelFd&) = delete;
    ~CancelFd() {
        if (fd_ >= 0)
            g_cancellable_release_fd(cancellable_);
    }
    int get() const noexcept { return fd_; }

  private:
    GCancellable* cancellable_;
    int fd_ = -1;
};

GBytes* bytes_from_string(std::string data) {
    auto* owned = new std::string(std::move(data));
    return g_bytes_new_with_free_func(
        owned->data(), owned->size(), [](gpointer p) { delete static_cast<std::string*>(p); },
        owned);
}

void clear_layer(gpointer element) {
    auto* layer = static_cast<CImgCoreLayer*>(element);
    g_free(layer->digest);
    g_free(layer->media_type);
}

} // namespace

CImgCoreProxy* cimg_core_proxy_start(const char* const* argv, int extra_fd, gboolean inherit_stderr,
                                     guint idle_timeout_seconds, GCancellable* cancellable,
                                     GError** error) {
    SpawnOptions options;
    for (const char* const* arg = argv; *arg != nullptr; arg++)
        options.argv.emplace_back(*arg);
    options.extra_fd = Fd(extra_fd);
    options.inherit_stderr = inherit_stderr;

    std::unique_ptr<_CImgCoreProxy> handle(new _CImgCoreProxy());
    CancelFd cancel(cancellable);
    auto idle_timeout = std::chrono::seconds(idle_timeout_seconds);
    if (!guard(error, [&] {
            handle->proxy = Proxy::start(std::move(options), idle_timeout, cancel.get());
        }))
        return nullptr;
    handle->version = handle->proxy->version().to_string();
    return handle.release();
}

void cimg_core_proxy_free(CImgCoreProxy* proxy) {
    delete proxy;
}

const char* cimg_core_proxy_get_version(CImgCoreProxy* proxy) {
    return proxy->version.c_str();
}

gboolean cimg_core_proxy_enforces_policy(CImgCoreProxy* proxy) {
    return proxy->proxy->version().at_least(Version{0, 2, 6});
}

int cimg_core_proxy_get_pid(CImgCoreProxy* proxy) {
    return static_cast<int>(proxy->proxy->pid());
}

gboolean cimg_core_proxy_open_image(CImgCoreProxy* proxy, const char* reference, gboolean optional,
                                    guint64* out_image, GCancellable* cancellable, GError** error) {
    CancelFd cancel(cancellable);
    return guard(error,
                 [&] { *out_image = proxy->proxy->open_image(reference, optional, cancel.get()); });
}

gboolean cimg_core_proxy_close_image(CImgCoreProxy* proxy, guint64 image, GCancellable* cancellable,
                                     GError** error) {
    CancelFd cancel(cancellable);
    return guard(error, [&] { proxy->proxy->close_image(image, cancel.get()); });
}

GBytes* cimg_core_proxy_get_manifest(CImgCoreProxy* proxy, guint64 image, char** out_digest,
                                     GCancellable* cancellable, GError** error) {
    CancelFd cancel(cancellable);
    GBytes* manifest = nullptr;
    std::string digest;
    if (!guard(error, [&] {
            manifest = bytes_from_string(proxy->proxy->get_manifest(image, digest, cancel.get()));
        }))
        return nullptr;
    if (out_digest != nullptr)
        *out_digest = g_strdup(digest.c_str());
    return manifest;
}

GBytes* cimg_core_proxy_get_config(CImgCoreProxy* proxy, guint64 image, GCancellable* cancellable,
                                   GError** error) {
    CancelFd cancel(cancellable);
    GBytes* config = nullptr;
    guard(error,
          [&] { config = bytes_from_string(proxy->proxy->get_config(image, cancel.get())); });
    return config;
}

GArray* cimg_core_proxy_get_layer_info(CImgCoreProxy* proxy, guint64 image,
                                       GCancellable* cancellable, GError** error) {
    CancelFd cancel(cancellable);
    std::vector<LayerInfo> layers;
    if (!guard(error, [&] { layers = proxy->proxy->get_layer_info(image, cancel.get()); }))
        return nullptr;
    GArray* array =
        g_array_sized_new(FALSE, FALSE, sizeof(CImgCoreLayer), static_cast<guint>(layers.size()));
    g_array_set_clear_func(array, clear_layer);
    for (const LayerInfo& layer : layers) {
        CImgCoreLayer element = {g_strdup(layer.digest.c_str()), layer.size,
                                 g_strdup(layer.media_type.c_str())};
        g_array_append_val(array, element);
    }
    return array;
}

gboolean cimg_core_proxy_get_blob(CImgCoreProxy* proxy, guint64 image, const char* digest,
                                  guint64 size, int* out_fd, guint32* out_pipe_id,
                                  gint64* out_source_size, GCancellable* cancellable,
                                  GError** error) {
    CancelFd cancel(cancellable);
    return guard(error, [&] {
        Proxy::BlobPipe pipe = proxy->proxy->get_blob(image, digest, size, cancel.get());
        *out_pipe_id = pipe.pipe_id;
        *out_source_size = pipe.source_size;
        *out_fd = pipe.fd.release();
    });
}

gboolean cimg_core_proxy_finish_blob(CImgCoreProxy* proxy, guint32 pipe_id, int fd,
                                     GCancellable* cancellable, GError** error) {
    Fd pipe(fd);
    CancelFd cancel(cancellable);
    return guard(error, [&] { proxy->proxy->finish_blob(pipe_id, std::move(pipe), cancel.get()); });
}

gboolean cimg_core_proxy_supports_raw_blob(CImgCoreProxy* proxy) {
    return proxy->proxy->supports(Method::GetRawBlob);
}

gboolean cimg_core_proxy_get_raw_blob(CImgCoreProxy* proxy, guint64 image, const char* digest,
                                      int* out_data_fd, int* out_error_fd, gint64* out_source_size,
                                      GCancellable* cancellable, GError** error) {
    CancelFd cancel(cancellable);
    return guard(error, [&] {
        Proxy::RawBlob blob = proxy->proxy->get_raw_blob(image, digest, cancel.get());
        *out_source_size = blob.source_size;
        *out_error_fd = blob.error.release();
        *out_data_fd = blob.data.release();
    });
}

gboolean cimg_core_check_raw_blob_error(const char* data, gsize length, GError** error) {
    return guard(error, [&] { check_raw_blob_error(std::string_view(data, length)); });
}

void cimg_core_proxy_abandon_blob(CImgCoreProxy* proxy, guint32 pipe_id, int fd) {
    // Closing first makes skopeo's writer fail at its next write, so the deferred FinishPipe
    // returns at once.
    Fd(fd).reset();
    guard(nullptr, [&] { proxy->proxy->abandon_blob(pipe_id); });
}

void cimg_core_proxy_terminate(CImgCoreProxy* proxy, const char* reason) {
    guard(nullptr, [&] { proxy->proxy->terminate(reason); });
}

gboolean cimg_core_proxy_shutdown(CImgCoreProxy* proxy, GError** error) {
    return guard(error, [&] { proxy->proxy->shutdown(); });
}

gboolean cimg_core_is_valid_digest(const char* digest) {
    return is_valid_digest(digest);
}
