/* SPDX-License-Identifier: LGPL-2.1-or-later */

#pragma once

#if !defined (__CIMG_PROXY_H_INSIDE__) && !defined (CIMG_PROXY_COMPILATION)
#error "Only <cimgproxy/cimgproxy.h> can be included directly."
#endif

#include <glib-object.h>
#include <cimgproxy/cimgproxy-version-macros.h>

G_BEGIN_DECLS

#define CIMG_PROXY_TYPE_LAYER_INFO (cimg_proxy_layer_info_get_type ())

CIMG_PROXY_AVAILABLE_IN_1_0
G_DECLARE_FINAL_TYPE (CImgProxyLayerInfo, cimg_proxy_layer_info, CIMG_PROXY, LAYER_INFO, GObject)

CIMG_PROXY_AVAILABLE_IN_1_0
CImgProxyLayerInfo *cimg_proxy_layer_info_new            (const char         *digest,
                                                          gint64              size,
                                                          const char         *media_type);
CIMG_PROXY_AVAILABLE_IN_1_0
const char         *cimg_proxy_layer_info_get_digest     (CImgProxyLayerInfo *self);
CIMG_PROXY_AVAILABLE_IN_1_0
gint64              cimg_proxy_layer_info_get_size       (CImgProxyLayerInfo *self);
CIMG_PROXY_AVAILABLE_IN_1_0
const char         *cimg_proxy_layer_info_get_media_type (CImgProxyLayerInfo *self);

G_END_DECLS
