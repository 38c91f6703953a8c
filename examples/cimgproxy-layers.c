/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Lists the layers of an image and streams one of them to a file or stdout.
 *
 *   cimgproxy-layers oci:/path/to/layout:latest
 *   cimgproxy-layers --layer 1 --output layer.tar.gz docker://quay.io/fedora/fedora:latest
 */

#include <stdlib.h>

#include <gio/gio.h>
#include <gio/gunixoutputstream.h>
#include <cimgproxy/cimgproxy.h>

static int layer_index = -1;
static char *output_path = NULL;

static const GOptionEntry entries[] = { { "layer", 'l', 0, G_OPTION_ARG_INT, &layer_index,
                                          "Stream layer N (0 is the base)", "N" },
                                        { "output", 'o', 0, G_OPTION_ARG_FILENAME, &output_path,
                                          "Write the layer to FILE instead of stdout", "FILE" },
                                        { NULL } };

static GOutputStream *
open_output (GError **error)
{
  g_autoptr (GFile) file = NULL;

  if (output_path == NULL || g_str_equal (output_path, "-"))
    return g_unix_output_stream_new (STDOUT_FILENO, FALSE);

  file = g_file_new_for_commandline_arg (output_path);
  return G_OUTPUT_STREAM (g_file_replace (file, NULL, FALSE, G_FILE_CREATE_NONE, NULL, error));
}

static gboolean
stream_layer (CImgProxyImage *image, CImgProxyLayerInfo *layer, GError **error)
{
  g_autoptr (CImgProxyBlobStream) blob = NULL;
  g_autoptr (GOutputStream) output = NULL;
  gssize copied;

  blob = cimg_proxy_image_open_blob (image, cimg_proxy_layer_info_get_digest (layer),
                                     cimg_proxy_layer_info_get_size (layer), NULL, error);
  if (blob == NULL)
    return FALSE;

  output = open_output (error);
  if (output == NULL)
    return FALSE;

  /* The splice fails, and a file being replaced is left untouched, if skopeo finds that the
   * blob does not match its digest. */
  copied = g_output_stream_splice (
    output, G_INPUT_STREAM (blob),
    G_OUTPUT_STREAM_SPLICE_CLOSE_SOURCE | G_OUTPUT_STREAM_SPLICE_CLOSE_TARGET, NULL, error);
  if (copied < 0)
    return FALSE;

  g_printerr ("Wrote %" G_GSSIZE_FORMAT " verified bytes of %s\n", copied,
              cimg_proxy_layer_info_get_digest (layer));
  return TRUE;
}

int
main (int argc, char *argv[])
{
  g_autoptr (GOptionContext) context = g_option_context_new ("REFERENCE");
  g_autoptr (GError) error = NULL;
  g_autoptr (CImgProxyClient) client = NULL;
  g_autoptr (CImgProxyImage) image = NULL;
  g_autoptr (GPtrArray) layers = NULL;
  g_autofree char *digest = NULL;
  g_autoptr (GBytes) manifest = NULL;

  g_option_context_add_main_entries (context, entries, NULL);
  g_option_context_set_summary (context,
                                "Lists the layers of a container image and streams one of "
                                "them.\nREFERENCE is any image reference skopeo understands, "
                                "such as oci:DIR:TAG or docker://HOST/NAME:TAG.");
  if (!g_option_context_parse (context, &argc, &argv, &error) || argc != 2)
    {
      g_printerr ("%s\n", error != NULL ? error->message : "Give exactly one image reference");
      return 2;
    }

  client = cimg_proxy_client_new (NULL, &error);
  if (client != NULL)
    image = cimg_proxy_client_open_image (client, argv[1], NULL, &error);
  if (image != NULL)
    manifest = cimg_proxy_image_get_manifest (image, NULL, &digest, &error);
  if (manifest != NULL)
    layers = cimg_proxy_image_get_layer_info (image, NULL, &error);
  if (layers == NULL)
    {
      g_printerr ("%s\n", error->message);
      return 1;
    }

  g_printerr ("%s (manifest %s, skopeo proxy protocol %s)\n", argv[1], digest,
              cimg_proxy_client_get_protocol_version (client));
  for (guint i = 0; i < layers->len; i++)
    {
      CImgProxyLayerInfo *layer = g_ptr_array_index (layers, i);
      g_printerr ("  %u  %s  %12" G_GINT64_FORMAT "  %s\n", i,
                  cimg_proxy_layer_info_get_digest (layer), cimg_proxy_layer_info_get_size (layer),
                  cimg_proxy_layer_info_get_media_type (layer));
    }

  if (layer_index >= 0)
    {
      if ((guint) layer_index >= layers->len)
        {
          g_printerr ("%s has no layer %d\n", argv[1], layer_index);
          return 2;
        }
      if (!stream_layer (image, g_ptr_array_index (layers, layer_index), &error))
        {
          g_printerr ("%s\n", error->message);
          return 1;
        }
    }

  if (!cimg_proxy_image_close (image, NULL, &error) ||
      !cimg_proxy_client_close (client, NULL, &error))
    {
      g_printerr ("%s\n", error->message);
      return 1;
    }
  return 0;
}
