/* SPDX-License-Identifier: LGPL-2.1-or-later */

#pragma once

#include <cimgproxy/cimgproxy.h>

/* Applies the layers of @image in order into @directory (created if missing): streamed from
 * skopeo through the decompressor into libarchive, honouring OCI whiteouts, never writing
 * outside @directory. Up to @jobs layers stream at once, the ones ahead of their turn into
 * anonymous files. */
gboolean cimgproxy_extract (CImgProxyImage *image,
                            const char *directory,
                            guint jobs,
                            gboolean quiet,
                            GError **error);
