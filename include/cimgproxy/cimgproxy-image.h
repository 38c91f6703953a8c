/* SPDX-License-Identifier: LGPL-2.1-or-later */

#pragma once

#if !defined (__CIMG_PROXY_H_INSIDE__) && !defined (CIMG_PROXY_COMPILATION)
#error "Only <cimgproxy/cimgproxy.h> can be included directly."
#endif

#include <gio/gio.h>
#include <cimgproxy/cimgproxy-version-macros.h>
#include <cimgproxy/cimgproxy-blob-stream.h>
#include <cimgproxy/cimgproxy-layer-info.h>

G_BEGIN_DECLS

#define CIMG_PROXY_TYPE_IMAGE (cimg_proxy_image_get_type ())

CIMG_PROXY_AVAILABLE_IN_1_0
G_DECLARE_FINAL_TYPE (CImgProxyImage, cimg_proxy_image, CIMG_PROXY, IMAGE, GObject)

CIMG_PROXY_AVAILABLE_IN_1_0
const char          *cimg_proxy_image_get_reference         (CImgProxyImage      *self);

CIMG_PROXY_AVAILABLE_IN_1_0
GBytes              *cimg_proxy_image_get_manifest          (CImgProxyImage      *self,
                                                             GCancellable        *cancellable,
                                                             char               **out_digest,
                                                             GError             **error);
CIMG_PROXY_AVAILABLE_IN_1_0
void                 cimg_proxy_image_get_manifest_async    (CImgProxyImage      *self,
                                                             GCancellable        *cancellable,
                                                             GAsyncReadyCallback  callback,
                                                             gpointer             user_data);
CIMG_PROXY_AVAILABLE_IN_1_0
GBytes              *cimg_proxy_image_get_manifest_finish   (CImgProxyImage      *self,
                                                             GAsyncResult        *result,
                                                             char               **out_digest,
                                                             GError             **error);

CIMG_PROXY_AVAILABLE_IN_1_0
GBytes              *cimg_proxy_image_get_config            (CImgProxyImage      *self,
                                                             GCancellable        *cancellable,
                                                             GError             **error);
CIMG_PROXY_AVAILABLE_IN_1_0
void                 cimg_proxy_image_get_config_async      (CImgProxyImage      *self,
                                                             GCancellable        *cancellable,
                                                             GAsyncReadyCallback  callback,
                                                             gpointer             user_data);
CIMG_PROXY_AVAILABLE_IN_1_0
GBytes              *cimg_proxy_image_get_config_finish     (CImgProxyImage      *self,
                                                             GAsyncResult        *result,
                                                             GError             **error);

CIMG_PROXY_AVAILABLE_IN_1_0
GPtrArray           *cimg_proxy_image_get_layer_info        (CImgProxyImage      *self,
                                                             GCancellable        *cancellable,
                                                             GError             **error);
CIMG_PROXY_AVAILABLE_IN_1_0
void                 cimg_proxy_image_get_layer_info_async  (CImgProxyImage      *self,
                                                             GCancellable        *cancellable,
                                                             GAsyncReadyCallback  callback,
                                                             gpointer             user_data);
CIMG_PROXY_AVAILABLE_IN_1_0
GPtrArray           *cimg_proxy_image_get_layer_info_finish (CImgProxyImage      *self,
                                                             GAsyncResult        *result,
                                                             GError             **error);

CIMG_PROXY_AVAILABLE_IN_1_0
CImgProxyBlobStream *cimg_proxy_image_open_blob             (CImgProxyImage      *self,
                                                             const char          *digest,
                                                             gint64               size,
                                                             GCancellable        *cancellable,
                                                             GError             **error);
CIMG_PROXY_AVAILABLE_IN_1_0
void                 cimg_proxy_image_open_blob_async       (CImgProxyImage      *self,
                                                             const char          *digest,
                                                             gint64               size,
                                                             GCancellable        *cancellable,
                                                             GAsyncReadyCallback  callback,
                                                             gpointer             user_data);
CIMG_PROXY_AVAILABLE_IN_1_0
CImgProxyBlobStream *cimg_proxy_image_open_blob_finish      (CImgProxyImage      *self,
                                                             GAsyncResult        *result,
                                                             GError             **error);

CIMG_PROXY_AVAILABLE_IN_1_0
GInputStream        *cimg_proxy_image_open_layer            (CImgProxyImage      *self,
                                                             CImgProxyLayerInfo  *layer,
                                                             GCancellable        *cancellable,
                                                             GError             **error);
CIMG_PROXY_AVAILABLE_IN_1_0
void                 cimg_proxy_image_open_layer_async      (CImgProxyImage      *self,
                                                             CImgProxyLayerInfo  *layer,
                                                             GCancellable        *cancellable,
                                                             GAsyncReadyCallback  callback,
                                                             gpointer             user_data);
CIMG_PROXY_AVAILABLE_IN_1_0
GInputStream        *cimg_proxy_image_open_layer_finish     (CImgProxyImage      *self,
                                                             GAsyncResult        *result,
                                                             GError             **error);

CIMG_PROXY_AVAILABLE_IN_1_0
gboolean             cimg_proxy_image_close                 (CImgProxyImage      *self,
                                                             GCancellable        *cancellable,
                                                             GError             **error);
CIMG_PROXY_AVAILABLE_IN_1_0
void                 cimg_proxy_image_close_async           (CImgProxyImage      *self,
                                                             GCancellable        *cancellable,
                                                             GAsyncReadyCallback  callback,
                                                             gpointer             user_data);
CIMG_PROXY_AVAILABLE_IN_1_0
gboolean             cimg_proxy_image_close_finish          (CImgProxyImage      *self,
                                                             GAsyncResult        *result,
                                                             GError             **error);

G_END_DECLS
