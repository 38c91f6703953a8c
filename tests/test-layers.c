/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Layers as uncompressed tar archives: gzip, zstd (several frames and skippable ones, as in
 * zstd:chunked) and plain tar, each checked against its diff_id; an image whose config lies
 * about a diff_id; media types that are not tar layers.
 */

#include "test-util.h"

static CImgProxyImage *
open_layers_image (CImgProxyClient *client, const char *tag)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *ref = test_oci_ref ("layers", tag);
  CImgProxyImage *image = cimg_proxy_client_open_image (client, ref, NULL, &error);

  test_assert_no_error (error);
  return image;
}

static CImgProxyLayerInfo *
first_layer (CImgProxyImage *image)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) layers = cimg_proxy_image_get_layer_info (image, NULL, &error);

  test_assert_no_error (error);
  return g_object_ref (g_ptr_array_index (layers, 0));
}

static void
test_every_kind_unpacks_to_its_diff_id (void **state)
{
  const char *kinds[] = { "gzip", "zstd", "plain" };
  g_autoptr (GError) error = NULL;
  g_autoptr (CImgProxyClient) client = cimg_proxy_client_new (NULL, &error);

  for (guint i = 0; i < G_N_ELEMENTS (kinds); i++)
    {
      g_autofree char *key = g_strconcat ("layers:", kinds[i], NULL);
      JsonObject *expected = json_array_get_object_element (test_expected_layers (key), 0);
      g_autoptr (CImgProxyImage) image = open_layers_image (client, kinds[i]);
      g_autoptr (CImgProxyLayerInfo) layer = first_layer (image);
      g_autoptr (GInputStream) tar = cimg_proxy_image_open_layer (image, layer, NULL, &error);
      g_autofree char *digest = NULL;

      test_assert_no_error (error);
      assert_string_equal (cimg_proxy_layer_info_get_media_type (layer),
                           json_object_get_string_member (expected, "media_type"));
      digest = test_read_digest (tar, 7000, NULL, &error);
      test_assert_no_error (error);
      assert_string_equal (digest, json_object_get_string_member (expected, "diff_id"));
      assert_true (g_input_stream_close (tar, NULL, &error));
    }
}

static void
on_result (GObject *source, GAsyncResult *result, gpointer user_data)
{
  *(GAsyncResult **) user_data = g_object_ref (result);
}

static void
test_async (void **state)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (CImgProxyClient) client = cimg_proxy_client_new (NULL, &error);
  g_autoptr (CImgProxyImage) image = open_layers_image (client, "zstd");
  g_autoptr (CImgProxyLayerInfo) layer = first_layer (image);
  g_autoptr (GAsyncResult) result = NULL;
  g_autoptr (GInputStream) tar = NULL;
  g_autoptr (GChecksum) checksum = g_checksum_new (G_CHECKSUM_SHA256);
  g_autofree char *digest = NULL;

  cimg_proxy_image_open_layer_async (image, layer, NULL, on_result, &result);
  while (result == NULL)
    g_main_context_iteration (NULL, TRUE);
  tar = cimg_proxy_image_open_layer_finish (image, result, &error);
  test_assert_no_error (error);

  for (;;)
    {
      g_autoptr (GAsyncResult) read = NULL;
      g_autoptr (GBytes) bytes = NULL;

      g_input_stream_read_bytes_async (tar, 65536, G_PRIORITY_DEFAULT, NULL, on_result, &read);
      while (read == NULL)
        g_main_context_iteration (NULL, TRUE);
      bytes = g_input_stream_read_bytes_finish (tar, read, &error);
      test_assert_no_error (error);
      if (g_bytes_get_size (bytes) == 0)
        break;
      g_checksum_update (checksum, g_bytes_get_data (bytes, NULL), g_bytes_get_size (bytes));
    }
  digest = g_strconcat ("sha256:", g_checksum_get_string (checksum), NULL);
  assert_string_equal (
    digest, json_object_get_string_member (
              json_array_get_object_element (test_expected_layers ("layers:zstd"), 0), "diff_id"));
}

static void
test_lying_diff_id (void **state)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (CImgProxyClient) client = cimg_proxy_client_new (NULL, &error);
  g_autoptr (CImgProxyImage) image = open_layers_image (client, "lying");
  g_autoptr (CImgProxyLayerInfo) layer = first_layer (image);
  g_autoptr (GInputStream) tar = cimg_proxy_image_open_layer (image, layer, NULL, &error);
  g_autofree char *digest = NULL;

  test_assert_no_error (error);
  digest = test_read_digest (tar, 65536, NULL, &error);
  assert_null (digest);
  test_assert_error (error, CIMG_PROXY_ERROR, CIMG_PROXY_ERROR_VERIFICATION_FAILED);
  assert_non_null (strstr (error->message, "diff_id"));
}

static void
test_not_a_tar_layer (void **state)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (CImgProxyClient) client = cimg_proxy_client_new (NULL, &error);
  g_autoptr (CImgProxyImage) image = open_layers_image (client, "gzip");
  g_autoptr (CImgProxyLayerInfo) real = first_layer (image);
  g_autoptr (CImgProxyLayerInfo) odd = cimg_proxy_layer_info_new (
    cimg_proxy_layer_info_get_digest (real), cimg_proxy_layer_info_get_size (real),
    "application/vnd.example.wasm.module");
  g_autoptr (CImgProxyLayerInfo) stranger = cimg_proxy_layer_info_new (
    "sha256:0000000000000000000000000000000000000000000000000000000000000000", 10,
    "application/vnd.oci.image.layer.v1.tar+gzip");
  g_autoptr (GInputStream) tar = cimg_proxy_image_open_layer (image, odd, NULL, &error);

  assert_null (tar);
  test_assert_error (error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED);
  assert_non_null (strstr (error->message, "application/vnd.example.wasm.module"));
  g_clear_error (&error);

  tar = cimg_proxy_image_open_layer (image, stranger, NULL, &error);
  assert_null (tar);
  test_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_every_kind_unpacks_to_its_diff_id),
    cmocka_unit_test (test_async),
    cmocka_unit_test (test_lying_diff_id),
    cmocka_unit_test (test_not_a_tar_layer),
  };

  return cmocka_run_group_tests_name ("layers", tests, NULL, NULL);
}
