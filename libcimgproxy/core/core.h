/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The seam between the C++ core and the GObject layer: plain C functions over an opaque proxy
 * handle. Every core failure crosses it as a GError, never as a C++ exception.
 */

#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

typedef struct _CImgCoreProxy CImgCoreProxy;

typedef struct {
    char* digest;
    gint64 size;
    char* media_type;
} CImgCoreLayer;

/* The fd number the extra fd of cimg_core_proxy_start() gets in the child. */
#define CIMG_CORE_EXTRA_FD 3

CImgCoreProxy* cimg_core_proxy_start(const char* const* argv, int extra_fd, gboolean inherit_stderr,
                                     guint idle_timeout_seconds, GCancellable* cancellable,
                                     GError** error);
void cimg_core_proxy_free(CImgCoreProxy* proxy);

const char* cimg_core_proxy_get_version(CImgCoreProxy* proxy);
/* Whether the proxy checks containers-policy.json itself (protocol 0.2.6). */
gboolean cimg_core_proxy_enforces_policy(CImgCoreProxy* proxy);
int cimg_core_proxy_get_pid(CImgCoreProxy* proxy);

gboolean cimg_core_proxy_open_image(CImgCoreProxy* proxy, const char* reference, gboolean optional,
                                    guint64* out_image, GCancellable* cancellable, GError** error);
gboolean cimg_core_proxy_close_image(CImgCoreProxy* proxy, guint64 image, GCancellable* cancellable,
                                     GError** error);
GBytes* cimg_core_proxy_get_manifest(CImgCoreProxy* proxy, guint64 image, char** out_digest,
                                     GCancellable* cancellable, GError** error);
GBytes* cimg_core_proxy_get_config(CImgCoreProxy* proxy, guint64 image, GCancellable* cancellable,
                                   GError** error);
/* An array of CImgCoreLayer that frees its elements. */
GArray* cimg_core_proxy_get_layer_info(CImgCoreProxy* proxy, guint64 image,
                                       GCancellable* cancellable, GError** error);
/* @out_source_size is the size the source reports, or -1. */
gboolean cimg_core_proxy_get_blob(CImgCoreProxy* proxy, guint64 image, const char* digest,
                                  guint64 size, int* out_fd, guint32* out_pipe_id,
                                  gint64* out_source_size, GCancellable* cancellable,
                                  GError** error);
/* GetRawBlob, on proxies that have it (protocol 0.2.8): two pipes, the data and the error. */
gboolean cimg_core_proxy_supports_raw_blob(CImgCoreProxy* proxy);
gboolean cimg_core_proxy_get_raw_blob(CImgCoreProxy* proxy, guint64 image, const char* digest,
                                      int* out_data_fd, int* out_error_fd, gint64* out_source_size,
                                      GCancellable* cancellable, GError** error);
/* What GetRawBlob's error pipe held: FALSE with @error set if it reports a failure. */
gboolean cimg_core_check_raw_blob_error(const char* data, gsize length, GError** error);

/* Takes ownership of @fd, whose blob has been read to its announced size, and reports
 * skopeo's verdict on it. */
gboolean cimg_core_proxy_finish_blob(CImgCoreProxy* proxy, guint32 pipe_id, int fd,
                                     GCancellable* cancellable, GError** error);
/* Takes ownership of @fd and closes it; the pipe is finished before the next request. */
void cimg_core_proxy_abandon_blob(CImgCoreProxy* proxy, guint32 pipe_id, int fd);
/* Kills the proxy; later calls fail with CIMG_PROXY_ERROR_CLOSED and @reason. */
void cimg_core_proxy_terminate(CImgCoreProxy* proxy, const char* reason);
gboolean cimg_core_proxy_shutdown(CImgCoreProxy* proxy, GError** error);

gboolean cimg_core_is_valid_digest(const char* digest);

G_END_DECLS
