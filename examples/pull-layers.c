/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Pulls every layer of an image through skopeo and checks each against its digest.
 *
 *   pull-layers oci:/path/to/layout:latest
 */

#include <cimgproxy/cimgproxy.h>

/* Streams one layer in 1 MiB reads; FALSE with @error set when the stream fails, which it
 * does at the end if skopeo finds that the blob does not match its digest. */
static gboolean
check_layer (CImgProxyImage *image, CImgProxyLayerInfo *layer, gboolean *out_match, GError **error)
{
  const char *digest = cimg_proxy_layer_info_get_digest (layer);
  g_autoptr (CImgProxyBlobStream) blob = NULL;
  g_autoptr (GChecksum) checksum = g_checksum_new (G_CHECKSUM_SHA256);
  g_autofree guint8 *buffer = g_malloc (1024 * 1024);
  g_autofree char *actual = NULL;
  gssize n;

  blob =
    cimg_proxy_image_open_blob (image, digest, cimg_proxy_layer_info_get_size (layer), NULL, error);
  if (blob == NULL)
    return FALSE;

  while ((n = g_input_stream_read (G_INPUT_STREAM (blob), buffer, 1024 * 1024, NULL, error)) > 0)
    g_checksum_update (checksum, buffer, n);
  if (n < 0)
    return FALSE;

  actual = g_strconcat ("sha256:", g_checksum_get_string (checksum), NULL);
  *out_match = g_str_equal (actual, digest);
  return g_input_stream_close (G_INPUT_STREAM (blob), NULL, error);
}

int
main (int argc, char *argv[])
{
  g_autoptr (GError) error = NULL;
  g_autoptr (CImgProxyClient) client = NULL;
  g_autoptr (CImgProxyImage) image = NULL;
  g_autoptr (GPtrArray) layers = NULL;
  gboolean all_match = TRUE;

  if (argc != 2)
    {
      g_printerr ("Usage: %s IMAGE-REFERENCE\n", argv[0]);
      return 2;
    }

  client = cimg_proxy_client_new (NULL, &error);
  if (client != NULL)
    image = cimg_proxy_client_open_image (client, argv[1], NULL, &error);
  if (image != NULL)
    layers = cimg_proxy_image_get_layer_info (image, NULL, &error);
  if (layers == NULL)
    {
      g_printerr ("%s\n", error->message);
      return 1;
    }

  for (guint i = 0; i < layers->len; i++)
    {
      CImgProxyLayerInfo *layer = g_ptr_array_index (layers, i);
      gboolean match = FALSE;

      if (!check_layer (image, layer, &match, &error))
        {
          g_printerr ("%s\n", error->message);
          return 1;
        }
      g_print ("%s %" G_GINT64_FORMAT " %s\n", cimg_proxy_layer_info_get_digest (layer),
               cimg_proxy_layer_info_get_size (layer), match ? "OK" : "MISMATCH");
      all_match &= match;
    }

  if (!cimg_proxy_client_close (client, NULL, &error))
    {
      g_printerr ("%s\n", error->message);
      return 1;
    }
  return all_match ? 0 : 1;
}
