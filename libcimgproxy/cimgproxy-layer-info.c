/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include "config.h"

#include "cimgproxy-private.h"

/**
 * CImgProxyLayerInfo:
 *
 * What the proxy says about one layer of an image: the digest, size and media type of the
 * blob it will serve for it.
 *
 * For images from registries and OCI layouts these are the descriptors of the manifest; for
 * `containers-storage:` they can differ, because storage keeps layers uncompressed, which is
 * why [method@CImgProxy.Image.open_blob] should be given these values rather than the
 * manifest's.
 *
 * Instances are immutable.
 *
 * Since: 1.0
 */
struct _CImgProxyLayerInfo
{
  GObject parent_instance;

  char *digest;
  gint64 size;
  char *media_type;
};

G_DEFINE_FINAL_TYPE (CImgProxyLayerInfo, cimg_proxy_layer_info, G_TYPE_OBJECT)

enum
{
  PROP_0,
  PROP_DIGEST,
  PROP_SIZE,
  PROP_MEDIA_TYPE,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

static void
cimg_proxy_layer_info_finalize (GObject *object)
{
  CImgProxyLayerInfo *self = CIMG_PROXY_LAYER_INFO (object);

  g_free (self->digest);
  g_free (self->media_type);

  G_OBJECT_CLASS (cimg_proxy_layer_info_parent_class)->finalize (object);
}

static void
cimg_proxy_layer_info_get_property (GObject *object,
                                    guint prop_id,
                                    GValue *value,
                                    GParamSpec *pspec)
{
  CImgProxyLayerInfo *self = CIMG_PROXY_LAYER_INFO (object);

  switch (prop_id)
    {
    case PROP_DIGEST:
      g_value_set_string (value, self->digest);
      break;
    case PROP_SIZE:
      g_value_set_int64 (value, self->size);
      break;
    case PROP_MEDIA_TYPE:
      g_value_set_string (value, self->media_type);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
cimg_proxy_layer_info_set_property (GObject *object,
                                    guint prop_id,
                                    const GValue *value,
                                    GParamSpec *pspec)
{
  CImgProxyLayerInfo *self = CIMG_PROXY_LAYER_INFO (object);

  switch (prop_id)
    {
    case PROP_DIGEST:
      self->digest = g_value_dup_string (value);
      break;
    case PROP_SIZE:
      self->size = g_value_get_int64 (value);
      break;
    case PROP_MEDIA_TYPE:
      self->media_type = g_value_dup_string (value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
cimg_proxy_layer_info_class_init (CImgProxyLayerInfoClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->finalize = cimg_proxy_layer_info_finalize;
  object_class->get_property = cimg_proxy_layer_info_get_property;
  object_class->set_property = cimg_proxy_layer_info_set_property;

  /**
   * CImgProxyLayerInfo:digest:
   *
   * The digest of the layer blob, such as `sha256:...`.
   *
   * Since: 1.0
   */
  properties[PROP_DIGEST] =
    g_param_spec_string ("digest", NULL, NULL, NULL,
                         G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);

  /**
   * CImgProxyLayerInfo:size:
   *
   * The size of the layer blob in bytes, or -1 when the source does not know it.
   *
   * Since: 1.0
   */
  properties[PROP_SIZE] =
    g_param_spec_int64 ("size", NULL, NULL, -1, G_MAXINT64, -1,
                        G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);

  /**
   * CImgProxyLayerInfo:media-type:
   *
   * The media type of the layer blob, such as
   * `application/vnd.oci.image.layer.v1.tar+gzip`.
   *
   * Since: 1.0
   */
  properties[PROP_MEDIA_TYPE] =
    g_param_spec_string ("media-type", NULL, NULL, NULL,
                         G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);

  g_object_class_install_properties (object_class, N_PROPS, properties);
}

static void
cimg_proxy_layer_info_init (CImgProxyLayerInfo *self)
{
  self->size = -1;
}

/**
 * cimg_proxy_layer_info_new:
 * @digest: the digest of the layer blob
 * @size: its size in bytes, or -1 if unknown
 * @media_type: its media type
 *
 * Describes a layer. The library creates these itself; this constructor is for callers that
 * obtain descriptors elsewhere, such as from a manifest they parsed.
 *
 * Returns: (transfer full): a new layer info
 *
 * Since: 1.0
 */
CImgProxyLayerInfo *
cimg_proxy_layer_info_new (const char *digest, gint64 size, const char *media_type)
{
  g_return_val_if_fail (digest != NULL, NULL);
  g_return_val_if_fail (size >= -1, NULL);
  g_return_val_if_fail (media_type != NULL, NULL);

  return g_object_new (CIMG_PROXY_TYPE_LAYER_INFO, "digest", digest, "size", size, "media-type",
                       media_type, NULL);
}

/**
 * cimg_proxy_layer_info_get_digest:
 * @self: a layer info
 *
 * The digest of the layer blob, to pass to [method@CImgProxy.Image.open_blob].
 *
 * Returns: the digest of the layer blob
 *
 * Since: 1.0
 */
const char *
cimg_proxy_layer_info_get_digest (CImgProxyLayerInfo *self)
{
  g_return_val_if_fail (CIMG_PROXY_IS_LAYER_INFO (self), NULL);

  return self->digest;
}

/**
 * cimg_proxy_layer_info_get_size:
 * @self: a layer info
 *
 * The size of the layer blob, to pass to [method@CImgProxy.Image.open_blob].
 *
 * Returns: the size of the layer blob in bytes, or -1 when unknown
 *
 * Since: 1.0
 */
gint64
cimg_proxy_layer_info_get_size (CImgProxyLayerInfo *self)
{
  g_return_val_if_fail (CIMG_PROXY_IS_LAYER_INFO (self), -1);

  return self->size;
}

/**
 * cimg_proxy_layer_info_get_media_type:
 * @self: a layer info
 *
 * The media type of the layer blob, which says how it is compressed.
 *
 * Returns: the media type of the layer blob
 *
 * Since: 1.0
 */
const char *
cimg_proxy_layer_info_get_media_type (CImgProxyLayerInfo *self)
{
  g_return_val_if_fail (CIMG_PROXY_IS_LAYER_INFO (self), NULL);

  return self->media_type;
}
