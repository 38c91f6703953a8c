/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Internal constructors and accessors shared by the GObject types. Not installed.
 */

#pragma once

#include "cimgproxy/cimgproxy.h"
#include "core/core.h"

G_BEGIN_DECLS

CImgCoreProxy *_cimg_proxy_client_get_core (CImgProxyClient *self, GError **error);
int _cimg_proxy_client_get_pid (CImgProxyClient *self);
guint _cimg_proxy_client_get_idle_timeout (CImgProxyClient *self);

CImgProxyImage *_cimg_proxy_image_new (CImgProxyClient *client, const char *reference, guint64 id);

CImgProxyBlobStream *_cimg_proxy_blob_stream_new (CImgProxyClient *client,
                                                  const char *reference,
                                                  const char *digest,
                                                  gint64 size,
                                                  gint64 source_size,
                                                  int fd,
                                                  guint32 pipe_id,
                                                  int error_fd);
/* The GChecksumType for a digest's algorithm, or -1 when GLib has none. */
int _cimg_proxy_digest_checksum_type (const char *digest);

/* A zstd GConverter that reads every frame, skippable ones included. */
G_DECLARE_FINAL_TYPE (CImgProxyZstdDecompressor,
                      _cimg_proxy_zstd_decompressor,
                      CIMG_PROXY,
                      ZSTD_DECOMPRESSOR,
                      GObject)
GConverter *_cimg_proxy_zstd_decompressor_new (void);

/* The uncompressed tar of a layer, checked against @diff_id at its end; @blob is the
 * compressed stream under @uncompressed (the same stream for uncompressed layers). */
G_DECLARE_FINAL_TYPE (CImgProxyLayerStream,
                      _cimg_proxy_layer_stream,
                      CIMG_PROXY,
                      LAYER_STREAM,
                      GFilterInputStream)
GInputStream *_cimg_proxy_layer_stream_new (GInputStream *uncompressed,
                                            GInputStream *blob,
                                            const char *diff_id,
                                            const char *description);

/* On a proxy that does not check signature policies: fails, with
 * CIMG_PROXY_ERROR_POLICY_NOT_ENFORCED, if the effective policy asks for more than
 * insecureAcceptAnything for @reference. */
gboolean _cimg_proxy_check_unenforced_policy (const char *configured_path,
                                              const char *reference,
                                              const char *skopeo_version,
                                              GError **error);

/* The synchronous body of an asynchronous call: returns its result, or NULL with @error set
 * (NULL without an error is a valid result too). */
typedef gpointer (*CImgProxyThreadFunc) (gpointer source,
                                         gpointer data,
                                         GCancellable *cancellable,
                                         GError **error);

void _cimg_proxy_run_in_thread (gpointer source,
                                gpointer source_tag,
                                CImgProxyThreadFunc func,
                                gpointer data,
                                GDestroyNotify data_free,
                                GDestroyNotify result_free,
                                GCancellable *cancellable,
                                GAsyncReadyCallback callback,
                                gpointer user_data);
gpointer _cimg_proxy_thread_finish (gpointer source,
                                    GAsyncResult *result,
                                    gpointer source_tag,
                                    GError **error);

G_END_DECLS
