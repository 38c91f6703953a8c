/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The umbrella header on its own, compiled and linked as an outside program would: against
 * the shared library, without the library's internal defines, with warnings as errors.
 */

#include <cimgproxy/cimgproxy.h>

int
main (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (CImgProxyClient) client = NULL;
  g_autoptr (CImgProxyLayerInfo) info =
    cimg_proxy_layer_info_new ("sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b"
                               "7852b855",
                               0, "application/vnd.oci.image.layer.v1.tar");

#if !CIMG_PROXY_CHECK_VERSION(1, 0, 0)
#error "the version macros disagree with the library"
#endif

  g_assert_cmpint (cimg_proxy_layer_info_get_size (info), ==, 0);
  g_assert_true (g_type_is_a (CIMG_PROXY_TYPE_BLOB_STREAM, G_TYPE_INPUT_STREAM));
  g_assert_true (G_TYPE_IS_ENUM (CIMG_PROXY_TYPE_TLS_VERIFY));
  g_assert_true (G_TYPE_IS_ENUM (CIMG_PROXY_TYPE_ERROR));

  client = cimg_proxy_client_new (NULL, &error);
  g_assert_no_error (error);
  g_assert_nonnull (cimg_proxy_client_get_protocol_version (client));
  return 0;
}
