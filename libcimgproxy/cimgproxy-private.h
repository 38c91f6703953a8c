/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Internal constructors and accessors shared by the GObject types. Not installed.
 */

#pragma once

#include "cimgproxy/cimgproxy.h"
#include "core/core.h"

G_BEGIN_DECLS

CImgCoreProxy *
_cimg_proxy_client_get_core (CImgProxyClient *self, GError **error);
int
_cimg_proxy_client_get_pid (CImgProxyClient *self);

CImgProxyImage *
_cimg_proxy_image_new (CImgProxyClient *client, const char *reference, guint64 id);

CImgProxyBlobStream *
_cimg_proxy_blob_stream_new (CImgProxyClient *client,
                             const char *reference,
                             const char *digest,
                             gint64 size,
                             gint64 source_size,
                             int fd,
                             guint32 pipe_id);

G_END_DECLS
