/* SPDX-License-Identifier: LGPL-2.1-or-later */

#pragma once

#if !defined (__CIMG_PROXY_H_INSIDE__) && !defined (CIMG_PROXY_COMPILATION)
#error "Only <cimgproxy/cimgproxy.h> can be included directly."
#endif

#include <gio/gio.h>
#include <cimgproxy/cimgproxy-version-macros.h>
#include <cimgproxy/cimgproxy-image.h>
#include <cimgproxy/cimgproxy-layer-info.h>

G_BEGIN_DECLS

#define CIMG_PROXY_TYPE_PULLER (cimg_proxy_puller_get_type ())

CIMG_PROXY_AVAILABLE_IN_1_0
G_DECLARE_FINAL_TYPE (CImgProxyPuller, cimg_proxy_puller, CIMG_PROXY, PULLER, GObject)

/**
 * CImgProxyLayerSinkFunc:
 * @puller: the puller
 * @layer: the layer about to be pulled
 * @user_data: the data given with the function
 * @error: return location for an error
 *
 * Gives the stream a layer is to be written into. It is called in the main context the pull
 * was started from, when the layer's turn comes.
 *
 * The puller closes the stream once the whole layer went through it and skopeo verified it.
 * When the layer fails, the puller closes it with a cancelled #GCancellable instead: streams
 * that can take back what they wrote do so then (g_file_replace() of an existing file does);
 * for others, the caller cleans up once the pull reported the failure.
 *
 * Returns: (transfer full) (nullable): the stream for the layer, or `NULL` with @error set
 *
 * Since: 1.0
 */
typedef GOutputStream *(*CImgProxyLayerSinkFunc) (CImgProxyPuller    *puller,
                                                  CImgProxyLayerInfo *layer,
                                                  gpointer            user_data,
                                                  GError            **error);

CIMG_PROXY_AVAILABLE_IN_1_0
CImgProxyPuller *cimg_proxy_puller_new                      (CImgProxyImage         *image,
                                                             guint                   max_parallel);
CIMG_PROXY_AVAILABLE_IN_1_0
CImgProxyImage  *cimg_proxy_puller_get_image                (CImgProxyPuller        *self);
CIMG_PROXY_AVAILABLE_IN_1_0
guint            cimg_proxy_puller_get_max_parallel         (CImgProxyPuller        *self);

CIMG_PROXY_AVAILABLE_IN_1_0
void             cimg_proxy_puller_pull_async               (CImgProxyPuller        *self,
                                                             CImgProxyLayerSinkFunc  sink,
                                                             gpointer                sink_data,
                                                             GDestroyNotify          sink_data_free,
                                                             GCancellable           *cancellable,
                                                             GAsyncReadyCallback     callback,
                                                             gpointer                user_data);
CIMG_PROXY_AVAILABLE_IN_1_0
gboolean         cimg_proxy_puller_pull_finish              (CImgProxyPuller        *self,
                                                             GAsyncResult           *result,
                                                             GError                **error);

CIMG_PROXY_AVAILABLE_IN_1_0
void             cimg_proxy_puller_pull_to_directory_async  (CImgProxyPuller        *self,
                                                             GFile                  *directory,
                                                             GCancellable           *cancellable,
                                                             GAsyncReadyCallback     callback,
                                                             gpointer                user_data);
CIMG_PROXY_AVAILABLE_IN_1_0
gboolean         cimg_proxy_puller_pull_to_directory_finish (CImgProxyPuller        *self,
                                                             GAsyncResult           *result,
                                                             GError                **error);
CIMG_PROXY_AVAILABLE_IN_1_0
gboolean         cimg_proxy_puller_pull_to_directory        (CImgProxyPuller        *self,
                                                             GFile                  *directory,
                                                             GCancellable           *cancellable,
                                                             GError                **error);

G_END_DECLS
