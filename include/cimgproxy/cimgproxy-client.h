/* SPDX-License-Identifier: LGPL-2.1-or-later */

#pragma once

#if !defined (__CIMG_PROXY_H_INSIDE__) && !defined (CIMG_PROXY_COMPILATION)
#error "Only <cimgproxy/cimgproxy.h> can be included directly."
#endif

#include <gio/gio.h>
#include <cimgproxy/cimgproxy-version-macros.h>
#include <cimgproxy/cimgproxy-image.h>

G_BEGIN_DECLS

/**
 * CImgProxyTlsVerify:
 * @CIMG_PROXY_TLS_VERIFY_DISABLED: talk to registries without TLS verification
 *   (`--tls-verify=false`)
 * @CIMG_PROXY_TLS_VERIFY_ENABLED: always verify TLS (`--tls-verify=true`)
 * @CIMG_PROXY_TLS_VERIFY_DEFAULT: leave the decision to skopeo's configuration, which verifies
 *   TLS except for registries marked insecure in registries.conf
 *
 * Whether the proxy verifies the TLS certificates of registries. The first two values equal
 * `FALSE` and `TRUE`, so a boolean from a binding maps onto the expected choice.
 *
 * Since: 1.0
 */
typedef enum
{
  CIMG_PROXY_TLS_VERIFY_DISABLED = 0,
  CIMG_PROXY_TLS_VERIFY_ENABLED = 1,
  CIMG_PROXY_TLS_VERIFY_DEFAULT = 2,
} CImgProxyTlsVerify;

#define CIMG_PROXY_TYPE_CLIENT (cimg_proxy_client_get_type ())

CIMG_PROXY_AVAILABLE_IN_1_0
G_DECLARE_FINAL_TYPE (CImgProxyClient, cimg_proxy_client, CIMG_PROXY, CLIENT, GObject)

CIMG_PROXY_AVAILABLE_IN_1_0
CImgProxyClient *cimg_proxy_client_new                  (GCancellable    *cancellable,
                                                         GError         **error);
CIMG_PROXY_AVAILABLE_IN_1_0
void             cimg_proxy_client_new_async            (GCancellable        *cancellable,
                                                         GAsyncReadyCallback  callback,
                                                         gpointer             user_data);
CIMG_PROXY_AVAILABLE_IN_1_0
CImgProxyClient *cimg_proxy_client_new_finish           (GAsyncResult        *result,
                                                         GError             **error);
CIMG_PROXY_AVAILABLE_IN_1_0
const char      *cimg_proxy_client_get_protocol_version (CImgProxyClient *self);
CIMG_PROXY_AVAILABLE_IN_1_0
gboolean         cimg_proxy_client_get_enforces_policy  (CImgProxyClient *self);
CIMG_PROXY_AVAILABLE_IN_1_0
CImgProxyImage  *cimg_proxy_client_open_image           (CImgProxyClient *self,
                                                         const char      *reference,
                                                         GCancellable    *cancellable,
                                                         GError         **error);
CIMG_PROXY_AVAILABLE_IN_1_0
void             cimg_proxy_client_open_image_async     (CImgProxyClient     *self,
                                                         const char          *reference,
                                                         GCancellable        *cancellable,
                                                         GAsyncReadyCallback  callback,
                                                         gpointer             user_data);
CIMG_PROXY_AVAILABLE_IN_1_0
CImgProxyImage  *cimg_proxy_client_open_image_finish    (CImgProxyClient     *self,
                                                         GAsyncResult        *result,
                                                         GError             **error);
CIMG_PROXY_AVAILABLE_IN_1_0
CImgProxyImage  *cimg_proxy_client_open_image_optional  (CImgProxyClient *self,
                                                         const char      *reference,
                                                         GCancellable    *cancellable,
                                                         GError         **error);
CIMG_PROXY_AVAILABLE_IN_1_0
void             cimg_proxy_client_open_image_optional_async  (CImgProxyClient     *self,
                                                               const char          *reference,
                                                               GCancellable        *cancellable,
                                                               GAsyncReadyCallback  callback,
                                                               gpointer             user_data);
CIMG_PROXY_AVAILABLE_IN_1_0
CImgProxyImage  *cimg_proxy_client_open_image_optional_finish (CImgProxyClient     *self,
                                                               GAsyncResult        *result,
                                                               GError             **error);
CIMG_PROXY_AVAILABLE_IN_1_0
gboolean         cimg_proxy_client_close                (CImgProxyClient *self,
                                                         GCancellable    *cancellable,
                                                         GError         **error);
CIMG_PROXY_AVAILABLE_IN_1_0
void             cimg_proxy_client_close_async          (CImgProxyClient     *self,
                                                         GCancellable        *cancellable,
                                                         GAsyncReadyCallback  callback,
                                                         gpointer             user_data);
CIMG_PROXY_AVAILABLE_IN_1_0
gboolean         cimg_proxy_client_close_finish         (CImgProxyClient     *self,
                                                         GAsyncResult        *result,
                                                         GError             **error);

G_END_DECLS
