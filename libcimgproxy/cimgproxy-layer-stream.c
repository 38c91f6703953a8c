/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The uncompressed tar of a layer, as cimg_proxy_image_open_layer() hands it out: a filter
 * over the decompressor that hashes what comes out and, at the end, checks it against the
 * diff_id the image's configuration gives for the layer. It also reads the compressed blob to
 * its own end, since skopeo's verdict on the blob arrives only there and a decompressor may
 * stop short of it (trailing padding, say).
 */

#include "config.h"

#include "cimgproxy-private.h"

struct _CImgProxyLayerStream
{
  GFilterInputStream parent_instance;

  GInputStream *blob;
  GChecksum *checksum;
  char *diff_id;
  char *description; /* "layer DIGEST of REFERENCE", for messages */
  gboolean verified;
};

G_DEFINE_FINAL_TYPE (CImgProxyLayerStream, _cimg_proxy_layer_stream, G_TYPE_FILTER_INPUT_STREAM)

static gboolean
verify (CImgProxyLayerStream *self, GCancellable *cancellable, GError **error)
{
  g_autofree char *actual = NULL;
  char buffer[4096];
  gssize n;

  while ((n = g_input_stream_read (self->blob, buffer, sizeof buffer, cancellable, error)) > 0)
    ;
  if (n < 0)
    return FALSE;

  actual = g_strconcat ("sha256:", g_checksum_get_string (self->checksum), NULL);
  if (!g_str_equal (actual, self->diff_id))
    {
      g_set_error (error, CIMG_PROXY_ERROR, CIMG_PROXY_ERROR_VERIFICATION_FAILED,
                   "The uncompressed %s hashes to %s, but the image configuration's diff_id "
                   "for it is %s",
                   self->description, actual, self->diff_id);
      return FALSE;
    }
  self->verified = TRUE;
  return TRUE;
}

static gssize
cimg_proxy_layer_stream_read (GInputStream *stream,
                              void *buffer,
                              gsize count,
                              GCancellable *cancellable,
                              GError **error)
{
  CImgProxyLayerStream *self = (CImgProxyLayerStream *) stream;
  GInputStream *base = g_filter_input_stream_get_base_stream (G_FILTER_INPUT_STREAM (stream));
  gssize n;

  if (self->verified)
    return 0;
  n = g_input_stream_read (base, buffer, count, cancellable, error);
  if (n > 0)
    g_checksum_update (self->checksum, buffer, n);
  else if (n == 0 && !verify (self, cancellable, error))
    return -1;
  return n;
}

static void
cimg_proxy_layer_stream_finalize (GObject *object)
{
  CImgProxyLayerStream *self = (CImgProxyLayerStream *) object;

  g_clear_object (&self->blob);
  g_checksum_free (self->checksum);
  g_free (self->diff_id);
  g_free (self->description);

  G_OBJECT_CLASS (_cimg_proxy_layer_stream_parent_class)->finalize (object);
}

static void
_cimg_proxy_layer_stream_class_init (CImgProxyLayerStreamClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = cimg_proxy_layer_stream_finalize;
  G_INPUT_STREAM_CLASS (klass)->read_fn = cimg_proxy_layer_stream_read;
}

static void
_cimg_proxy_layer_stream_init (CImgProxyLayerStream *self)
{
  self->checksum = g_checksum_new (G_CHECKSUM_SHA256);
}

GInputStream *
_cimg_proxy_layer_stream_new (GInputStream *uncompressed,
                              GInputStream *blob,
                              const char *diff_id,
                              const char *description)
{
  CImgProxyLayerStream *self =
    g_object_new (_cimg_proxy_layer_stream_get_type (), "base-stream", uncompressed, NULL);

  self->blob = g_object_ref (blob);
  self->diff_id = g_strdup (diff_id);
  self->description = g_strdup (description);
  return G_INPUT_STREAM (self);
}
