/* SPDX-License-Identifier: LGPL-2.1-or-later */

#pragma once

#if !defined (__CIMG_PROXY_H_INSIDE__) && !defined (CIMG_PROXY_COMPILATION)
#error "Only <cimgproxy/cimgproxy.h> can be included directly."
#endif

#include <gio/gio.h>
#include <cimgproxy/cimgproxy-version-macros.h>

G_BEGIN_DECLS

#define CIMG_PROXY_TYPE_BLOB_STREAM (cimg_proxy_blob_stream_get_type ())

CIMG_PROXY_AVAILABLE_IN_1_0
G_DECLARE_FINAL_TYPE (CImgProxyBlobStream, cimg_proxy_blob_stream, CIMG_PROXY, BLOB_STREAM,
                      GInputStream)

CIMG_PROXY_AVAILABLE_IN_1_0
const char *cimg_proxy_blob_stream_get_digest (CImgProxyBlobStream *self);
CIMG_PROXY_AVAILABLE_IN_1_0
gint64      cimg_proxy_blob_stream_get_size   (CImgProxyBlobStream *self);
CIMG_PROXY_AVAILABLE_IN_1_0
void        cimg_proxy_blob_stream_consumed   (CImgProxyBlobStream *self,
                                               gsize                count);

G_END_DECLS
