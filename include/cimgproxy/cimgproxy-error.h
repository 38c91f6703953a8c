/* SPDX-License-Identifier: LGPL-2.1-or-later */

#pragma once

#if !defined (__CIMG_PROXY_H_INSIDE__) && !defined (CIMG_PROXY_COMPILATION)
#error "Only <cimgproxy/cimgproxy.h> can be included directly."
#endif

#include <glib.h>
#include <cimgproxy/cimgproxy-version-macros.h>

G_BEGIN_DECLS

#define CIMG_PROXY_ERROR (cimg_proxy_error_quark ())

typedef enum
{
  CIMG_PROXY_ERROR_SPAWN_FAILED,
  CIMG_PROXY_ERROR_PROXY_EXITED,
  CIMG_PROXY_ERROR_PROTOCOL,
  CIMG_PROXY_ERROR_UNSUPPORTED_VERSION,
  CIMG_PROXY_ERROR_REQUEST_FAILED,
  CIMG_PROXY_ERROR_VERIFICATION_FAILED,
  CIMG_PROXY_ERROR_CLOSED,
  CIMG_PROXY_ERROR_NOT_FOUND,
  CIMG_PROXY_ERROR_INVALID_REFERENCE,
  CIMG_PROXY_ERROR_AUTHENTICATION_FAILED,
  CIMG_PROXY_ERROR_POLICY_NOT_ENFORCED,
} CImgProxyError;

CIMG_PROXY_AVAILABLE_IN_1_0
GQuark cimg_proxy_error_quark (void);

G_END_DECLS
