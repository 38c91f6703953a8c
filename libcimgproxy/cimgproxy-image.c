/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include "config.h"

#include <json-glib/json-glib.h>

#include "cimgproxy-private.h"

/**
 * CImgProxyImage:
 *
 * An image opened through a [class@CImgProxy.Client].
 *
 * What the proxy hands out is always in OCI form: Docker schema 2 manifests and configs are
 * converted, and a manifest list or OCI index is resolved to the platform skopeo runs on.
 *
 * ```c
 * g_autoptr(GPtrArray) layers = cimg_proxy_image_get_layer_info (image, NULL, &error);
 *
 * for (guint i = 0; layers != NULL && i < layers->len; i++)
 *   {
 *     CImgProxyLayerInfo *layer = g_ptr_array_index (layers, i);
 *     g_autoptr(CImgProxyBlobStream) blob =
 *       cimg_proxy_image_open_blob (image, cimg_proxy_layer_info_get_digest (layer),
 *                                   cimg_proxy_layer_info_get_size (layer), NULL, &error);
 *     ...
 *   }
 * ```
 *
 * Since: 1.0
 */
struct _CImgProxyImage
{
  GObject parent_instance;

  CImgProxyClient *client;
  char *reference;
  guint64 id;
  gint closed; /* atomic */

  /* What open_layer() needs to know about every layer, fetched once. */
  GMutex layer_lock;
  GPtrArray *layers;
  GStrv diff_ids;
};

G_DEFINE_FINAL_TYPE (CImgProxyImage, cimg_proxy_image, G_TYPE_OBJECT)

enum
{
  PROP_0,
  PROP_REFERENCE,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

static void
cimg_proxy_image_dispose (GObject *object)
{
  CImgProxyImage *self = CIMG_PROXY_IMAGE (object);

  /* Without this the proxy would keep the image source, and for registries its connection,
   * until it exits. */
  if (self->client != NULL && g_atomic_int_compare_and_exchange (&self->closed, FALSE, TRUE))
    {
      g_autoptr (GError) error = NULL;
      CImgCoreProxy *core = _cimg_proxy_client_get_core (self->client, &error);

      if (core == NULL || !cimg_core_proxy_close_image (core, self->id, NULL, &error))
        g_debug ("Could not close %s in the proxy: %s", self->reference, error->message);
    }
  g_clear_object (&self->client);

  G_OBJECT_CLASS (cimg_proxy_image_parent_class)->dispose (object);
}

static void
cimg_proxy_image_finalize (GObject *object)
{
  CImgProxyImage *self = CIMG_PROXY_IMAGE (object);

  g_free (self->reference);
  g_clear_pointer (&self->layers, g_ptr_array_unref);
  g_strfreev (self->diff_ids);
  g_mutex_clear (&self->layer_lock);

  G_OBJECT_CLASS (cimg_proxy_image_parent_class)->finalize (object);
}

static void
cimg_proxy_image_get_property (GObject *object, guint prop_id, GValue *value, GParamSpec *pspec)
{
  CImgProxyImage *self = CIMG_PROXY_IMAGE (object);

  switch (prop_id)
    {
    case PROP_REFERENCE:
      g_value_set_string (value, self->reference);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
cimg_proxy_image_class_init (CImgProxyImageClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = cimg_proxy_image_dispose;
  object_class->finalize = cimg_proxy_image_finalize;
  object_class->get_property = cimg_proxy_image_get_property;

  /**
   * CImgProxyImage:reference:
   *
   * The reference the image was opened with.
   *
   * Since: 1.0
   */
  properties[PROP_REFERENCE] =
    g_param_spec_string ("reference", NULL, NULL, NULL, G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);

  g_object_class_install_properties (object_class, N_PROPS, properties);
}

static void
cimg_proxy_image_init (CImgProxyImage *self)
{
  g_mutex_init (&self->layer_lock);
}

CImgProxyImage *
_cimg_proxy_image_new (CImgProxyClient *client, const char *reference, guint64 id)
{
  CImgProxyImage *self = g_object_new (CIMG_PROXY_TYPE_IMAGE, NULL);

  self->client = g_object_ref (client);
  self->reference = g_strdup (reference);
  self->id = id;
  return self;
}

/* The core of the client, or an error when the image or the client can no longer be used. */
static CImgCoreProxy *
get_core (CImgProxyImage *self, GError **error)
{
  if (g_atomic_int_get (&self->closed))
    {
      g_set_error (error, CIMG_PROXY_ERROR, CIMG_PROXY_ERROR_CLOSED, "The image %s was closed",
                   self->reference);
      return NULL;
    }
  return _cimg_proxy_client_get_core (self->client, error);
}

/**
 * cimg_proxy_image_get_reference:
 * @self: an image
 *
 * The reference the image was opened with, as given to
 * [method@CImgProxy.Client.open_image].
 *
 * Returns: the reference the image was opened with
 *
 * Since: 1.0
 */
const char *
cimg_proxy_image_get_reference (CImgProxyImage *self)
{
  g_return_val_if_fail (CIMG_PROXY_IS_IMAGE (self), NULL);

  return self->reference;
}

/**
 * cimg_proxy_image_get_manifest:
 * @self: an image
 * @cancellable: (nullable): a cancellable
 * @out_digest: (out) (optional) (transfer full): return location for the manifest digest
 * @error: return location for an error
 *
 * Reads the image manifest, always an OCI image manifest
 * (`application/vnd.oci.image.manifest.v1+json`).
 *
 * @out_digest receives the digest skopeo reports: the digest of the manifest as the source
 * stores it, before any conversion, and for a manifest list the digest of the selected
 * platform's manifest, not of the list. It equals the digest of the returned bytes only when
 * no conversion happened.
 *
 * Returns: (transfer full): the manifest, or `NULL` with @error set
 *
 * Since: 1.0
 */
GBytes *
cimg_proxy_image_get_manifest (CImgProxyImage *self,
                               GCancellable *cancellable,
                               char **out_digest,
                               GError **error)
{
  CImgCoreProxy *core;
  GBytes *manifest;

  g_return_val_if_fail (CIMG_PROXY_IS_IMAGE (self), NULL);
  g_return_val_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable), NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  core = get_core (self, error);
  if (core == NULL)
    return NULL;

  manifest = cimg_core_proxy_get_manifest (core, self->id, out_digest, cancellable, error);
  if (manifest == NULL)
    g_prefix_error (error, "Could not read the manifest of %s: ", self->reference);
  return manifest;
}

/**
 * cimg_proxy_image_get_config:
 * @self: an image
 * @cancellable: (nullable): a cancellable
 * @error: return location for an error
 *
 * Reads the image configuration: the whole OCI image config
 * (`application/vnd.oci.image.config.v1+json`), with `rootfs.diff_ids`, `history` and the
 * runtime `config`.
 *
 * Returns: (transfer full): the configuration, or `NULL` with @error set
 *
 * Since: 1.0
 */
GBytes *
cimg_proxy_image_get_config (CImgProxyImage *self, GCancellable *cancellable, GError **error)
{
  CImgCoreProxy *core;
  GBytes *config;

  g_return_val_if_fail (CIMG_PROXY_IS_IMAGE (self), NULL);
  g_return_val_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable), NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  core = get_core (self, error);
  if (core == NULL)
    return NULL;

  config = cimg_core_proxy_get_config (core, self->id, cancellable, error);
  if (config == NULL)
    g_prefix_error (error, "Could not read the configuration of %s: ", self->reference);
  return config;
}

/**
 * cimg_proxy_image_get_layer_info:
 * @self: an image
 * @cancellable: (nullable): a cancellable
 * @error: return location for an error
 *
 * Lists the layers of the image, base layer first, as the blobs the proxy will serve for
 * them. These are the values to give to [method@CImgProxy.Image.open_blob].
 *
 * The list comes from GetLayerInfoPiped on skopeo 1.19 and later, from GetLayerInfo on 1.11
 * to 1.18, and from the manifest on older versions. For `containers-storage:` images only the
 * first two are exact, since storage may serve layers uncompressed.
 *
 * Returns: (transfer container) (element-type CImgProxyLayerInfo): the layers, or `NULL`
 *   with @error set
 *
 * Since: 1.0
 */
GPtrArray *
cimg_proxy_image_get_layer_info (CImgProxyImage *self, GCancellable *cancellable, GError **error)
{
  g_autoptr (GArray) layers = NULL;
  GPtrArray *result;
  CImgCoreProxy *core;

  g_return_val_if_fail (CIMG_PROXY_IS_IMAGE (self), NULL);
  g_return_val_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable), NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  core = get_core (self, error);
  if (core == NULL)
    return NULL;

  layers = cimg_core_proxy_get_layer_info (core, self->id, cancellable, error);
  if (layers == NULL)
    {
      g_prefix_error (error, "Could not list the layers of %s: ", self->reference);
      return NULL;
    }

  result = g_ptr_array_new_full (layers->len, g_object_unref);
  for (guint i = 0; i < layers->len; i++)
    {
      const CImgCoreLayer *layer = &g_array_index (layers, CImgCoreLayer, i);
      g_ptr_array_add (result,
                       cimg_proxy_layer_info_new (layer->digest, layer->size, layer->media_type));
    }
  return result;
}

int
_cimg_proxy_digest_checksum_type (const char *digest)
{
  if (g_str_has_prefix (digest, "sha256:"))
    return G_CHECKSUM_SHA256;
  if (g_str_has_prefix (digest, "sha384:"))
    return G_CHECKSUM_SHA384;
  if (g_str_has_prefix (digest, "sha512:"))
    return G_CHECKSUM_SHA512;
  return -1;
}

static CImgProxyBlobStream *
open_raw_blob (CImgProxyImage *self,
               CImgCoreProxy *core,
               const char *digest,
               GCancellable *cancellable,
               GError **error)
{
  gint64 source_size = -1;
  int data_fd = -1;
  int error_fd = -1;

  if (!cimg_core_proxy_supports_raw_blob (core))
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                   "Blob %s of %s has no known size; reading it needs its exact size, or "
                   "skopeo 1.19 or newer (image proxy protocol 0.2.8)",
                   digest, self->reference);
      return NULL;
    }
  if (_cimg_proxy_digest_checksum_type (digest) < 0)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                   "Blob %s of %s has no known size, and its digest algorithm is not one the "
                   "library can verify itself",
                   digest, self->reference);
      return NULL;
    }
  if (!cimg_core_proxy_get_raw_blob (core, self->id, digest, &data_fd, &error_fd, &source_size,
                                     cancellable, error))
    {
      g_prefix_error (error, "Could not open blob %s of %s: ", digest, self->reference);
      return NULL;
    }
  return _cimg_proxy_blob_stream_new (self->client, self->reference, digest, -1, source_size,
                                      data_fd, 0, error_fd);
}

/**
 * cimg_proxy_image_open_blob:
 * @self: an image
 * @digest: the digest of the blob, such as `sha256:...`
 * @size: its exact size in bytes, from the manifest or [class@CImgProxy.LayerInfo]
 * @cancellable: (nullable): a cancellable
 * @error: return location for an error
 *
 * Opens a blob of the image (a layer or the config) as a stream. The data is streamed from the
 * source as it is read; nothing is stored on disk.
 *
 * The proxy verifies the digest and the size, but can only tell after the last byte: the read
 * that would return end-of-stream fails instead with %CIMG_PROXY_ERROR_VERIFICATION_FAILED,
 * so consumers must not commit the data before they saw end-of-stream. See
 * [class@CImgProxy.BlobStream].
 *
 * A @size of -1 opens a blob whose size is not known. That needs skopeo 1.19 or later
 * (protocol 0.2.8, GetRawBlob), whose proxy does not verify such blobs; the stream computes
 * the digest itself then, which it can for `sha256`, `sha384` and `sha512` digests. Older
 * proxies fail with %G_IO_ERROR_NOT_SUPPORTED.
 *
 * Returns: (transfer full): a stream of the blob, or `NULL` with @error set
 *
 * Since: 1.0
 */
CImgProxyBlobStream *
cimg_proxy_image_open_blob (CImgProxyImage *self,
                            const char *digest,
                            gint64 size,
                            GCancellable *cancellable,
                            GError **error)
{
  CImgCoreProxy *core;
  guint32 pipe_id = 0;
  gint64 source_size = -1;
  int fd = -1;

  g_return_val_if_fail (CIMG_PROXY_IS_IMAGE (self), NULL);
  g_return_val_if_fail (digest != NULL, NULL);
  g_return_val_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable), NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (!cimg_core_is_valid_digest (digest))
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                   "“%s” is not a valid digest, which reads algorithm:hex", digest);
      return NULL;
    }

  core = get_core (self, error);
  if (core == NULL)
    return NULL;

  /* GetBlob checks the byte count against the size it is given, so that size must be exact;
   * a blob of unknown size takes GetRawBlob, which skopeo 1.19 introduced and which leaves
   * the verification to us. */
  if (size < 0)
    return open_raw_blob (self, core, digest, cancellable, error);

  if (!cimg_core_proxy_get_blob (core, self->id, digest, (guint64) size, &fd, &pipe_id,
                                 &source_size, cancellable, error))
    {
      g_prefix_error (error, "Could not open blob %s of %s: ", digest, self->reference);
      return NULL;
    }

  return _cimg_proxy_blob_stream_new (self->client, self->reference, digest, size, source_size, fd,
                                      pipe_id, -1);
}

/**
 * cimg_proxy_image_close:
 * @self: an image
 * @cancellable: (nullable): a cancellable
 * @error: return location for an error
 *
 * Releases the image in the proxy. Blob streams already opened stay readable. Dropping the
 * last reference closes the image too, without reporting errors.
 *
 * Returns: `TRUE` on success
 *
 * Since: 1.0
 */
gboolean
cimg_proxy_image_close (CImgProxyImage *self, GCancellable *cancellable, GError **error)
{
  CImgCoreProxy *core;

  g_return_val_if_fail (CIMG_PROXY_IS_IMAGE (self), FALSE);
  g_return_val_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  core = get_core (self, error);
  if (core == NULL)
    return FALSE;

  if (!g_atomic_int_compare_and_exchange (&self->closed, FALSE, TRUE))
    {
      g_set_error (error, CIMG_PROXY_ERROR, CIMG_PROXY_ERROR_CLOSED, "The image %s was closed",
                   self->reference);
      return FALSE;
    }

  if (!cimg_core_proxy_close_image (core, self->id, cancellable, error))
    {
      g_prefix_error (error, "Could not close %s: ", self->reference);
      return FALSE;
    }
  return TRUE;
}

typedef struct
{
  GBytes *manifest;
  char *digest;
} ManifestResult;

static void
manifest_result_free (gpointer data)
{
  ManifestResult *result = data;

  g_bytes_unref (result->manifest);
  g_free (result->digest);
  g_free (result);
}

static gpointer
get_manifest_in_thread (gpointer source, gpointer data, GCancellable *cancellable, GError **error)
{
  g_autofree char *digest = NULL;
  GBytes *manifest = cimg_proxy_image_get_manifest (source, cancellable, &digest, error);
  ManifestResult *result;

  if (manifest == NULL)
    return NULL;
  result = g_new0 (ManifestResult, 1);
  result->manifest = manifest;
  result->digest = g_steal_pointer (&digest);
  return result;
}

/**
 * cimg_proxy_image_get_manifest_async:
 * @self: an image
 * @cancellable: (nullable): a cancellable
 * @callback: (scope async): called when the manifest is read
 * @user_data: data for @callback
 *
 * Reads the image manifest without blocking; see [method@CImgProxy.Image.get_manifest].
 *
 * Since: 1.0
 */
void
cimg_proxy_image_get_manifest_async (CImgProxyImage *self,
                                     GCancellable *cancellable,
                                     GAsyncReadyCallback callback,
                                     gpointer user_data)
{
  g_return_if_fail (CIMG_PROXY_IS_IMAGE (self));
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  _cimg_proxy_run_in_thread (self, cimg_proxy_image_get_manifest_async, get_manifest_in_thread,
                             NULL, NULL, manifest_result_free, cancellable, callback, user_data);
}

/**
 * cimg_proxy_image_get_manifest_finish:
 * @self: an image
 * @result: the result passed to the callback
 * @out_digest: (out) (optional) (transfer full): return location for the manifest digest
 * @error: return location for an error
 *
 * Finishes [method@CImgProxy.Image.get_manifest_async].
 *
 * Returns: (transfer full): the manifest, or `NULL` with @error set
 *
 * Since: 1.0
 */
GBytes *
cimg_proxy_image_get_manifest_finish (CImgProxyImage *self,
                                      GAsyncResult *result,
                                      char **out_digest,
                                      GError **error)
{
  ManifestResult *manifest =
    _cimg_proxy_thread_finish (self, result, cimg_proxy_image_get_manifest_async, error);
  GBytes *bytes;

  if (manifest == NULL)
    return NULL;
  bytes = g_steal_pointer (&manifest->manifest);
  if (out_digest != NULL)
    *out_digest = g_steal_pointer (&manifest->digest);
  manifest_result_free (manifest);
  return bytes;
}

static gpointer
get_config_in_thread (gpointer source, gpointer data, GCancellable *cancellable, GError **error)
{
  return cimg_proxy_image_get_config (source, cancellable, error);
}

/**
 * cimg_proxy_image_get_config_async:
 * @self: an image
 * @cancellable: (nullable): a cancellable
 * @callback: (scope async): called when the configuration is read
 * @user_data: data for @callback
 *
 * Reads the image configuration without blocking; see [method@CImgProxy.Image.get_config].
 *
 * Since: 1.0
 */
void
cimg_proxy_image_get_config_async (CImgProxyImage *self,
                                   GCancellable *cancellable,
                                   GAsyncReadyCallback callback,
                                   gpointer user_data)
{
  g_return_if_fail (CIMG_PROXY_IS_IMAGE (self));
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  _cimg_proxy_run_in_thread (self, cimg_proxy_image_get_config_async, get_config_in_thread, NULL,
                             NULL, (GDestroyNotify) g_bytes_unref, cancellable, callback,
                             user_data);
}

/**
 * cimg_proxy_image_get_config_finish:
 * @self: an image
 * @result: the result passed to the callback
 * @error: return location for an error
 *
 * Finishes [method@CImgProxy.Image.get_config_async].
 *
 * Returns: (transfer full): the configuration, or `NULL` with @error set
 *
 * Since: 1.0
 */
GBytes *
cimg_proxy_image_get_config_finish (CImgProxyImage *self, GAsyncResult *result, GError **error)
{
  return _cimg_proxy_thread_finish (self, result, cimg_proxy_image_get_config_async, error);
}

static gpointer
get_layer_info_in_thread (gpointer source, gpointer data, GCancellable *cancellable, GError **error)
{
  return cimg_proxy_image_get_layer_info (source, cancellable, error);
}

/**
 * cimg_proxy_image_get_layer_info_async:
 * @self: an image
 * @cancellable: (nullable): a cancellable
 * @callback: (scope async): called when the layers are known
 * @user_data: data for @callback
 *
 * Lists the layers of the image without blocking; see
 * [method@CImgProxy.Image.get_layer_info].
 *
 * Since: 1.0
 */
void
cimg_proxy_image_get_layer_info_async (CImgProxyImage *self,
                                       GCancellable *cancellable,
                                       GAsyncReadyCallback callback,
                                       gpointer user_data)
{
  g_return_if_fail (CIMG_PROXY_IS_IMAGE (self));
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  _cimg_proxy_run_in_thread (self, cimg_proxy_image_get_layer_info_async, get_layer_info_in_thread,
                             NULL, NULL, (GDestroyNotify) g_ptr_array_unref, cancellable, callback,
                             user_data);
}

/**
 * cimg_proxy_image_get_layer_info_finish:
 * @self: an image
 * @result: the result passed to the callback
 * @error: return location for an error
 *
 * Finishes [method@CImgProxy.Image.get_layer_info_async].
 *
 * Returns: (transfer container) (element-type CImgProxyLayerInfo): the layers, or `NULL`
 *   with @error set
 *
 * Since: 1.0
 */
GPtrArray *
cimg_proxy_image_get_layer_info_finish (CImgProxyImage *self, GAsyncResult *result, GError **error)
{
  return _cimg_proxy_thread_finish (self, result, cimg_proxy_image_get_layer_info_async, error);
}

typedef struct
{
  char *digest;
  gint64 size;
} BlobRequest;

static void
blob_request_free (gpointer data)
{
  BlobRequest *request = data;

  g_free (request->digest);
  g_free (request);
}

static gpointer
open_blob_in_thread (gpointer source, gpointer data, GCancellable *cancellable, GError **error)
{
  BlobRequest *request = data;

  return cimg_proxy_image_open_blob (source, request->digest, request->size, cancellable, error);
}

/**
 * cimg_proxy_image_open_blob_async:
 * @self: an image
 * @digest: the digest of the blob, such as `sha256:...`
 * @size: its exact size in bytes
 * @cancellable: (nullable): a cancellable
 * @callback: (scope async): called when the blob is ready to be read
 * @user_data: data for @callback
 *
 * Opens a blob of the image without blocking; see [method@CImgProxy.Image.open_blob]. The
 * stream it gives is pollable: read it with g_input_stream_read_bytes_async() and the like.
 *
 * Since: 1.0
 */
void
cimg_proxy_image_open_blob_async (CImgProxyImage *self,
                                  const char *digest,
                                  gint64 size,
                                  GCancellable *cancellable,
                                  GAsyncReadyCallback callback,
                                  gpointer user_data)
{
  BlobRequest *request;

  g_return_if_fail (CIMG_PROXY_IS_IMAGE (self));
  g_return_if_fail (digest != NULL);
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  request = g_new0 (BlobRequest, 1);
  request->digest = g_strdup (digest);
  request->size = size;
  _cimg_proxy_run_in_thread (self, cimg_proxy_image_open_blob_async, open_blob_in_thread, request,
                             blob_request_free, g_object_unref, cancellable, callback, user_data);
}

/**
 * cimg_proxy_image_open_blob_finish:
 * @self: an image
 * @result: the result passed to the callback
 * @error: return location for an error
 *
 * Finishes [method@CImgProxy.Image.open_blob_async].
 *
 * Returns: (transfer full): a stream of the blob, or `NULL` with @error set
 *
 * Since: 1.0
 */
CImgProxyBlobStream *
cimg_proxy_image_open_blob_finish (CImgProxyImage *self, GAsyncResult *result, GError **error)
{
  return _cimg_proxy_thread_finish (self, result, cimg_proxy_image_open_blob_async, error);
}

static gpointer
close_in_thread (gpointer source, gpointer data, GCancellable *cancellable, GError **error)
{
  return GINT_TO_POINTER (cimg_proxy_image_close (source, cancellable, error));
}

/**
 * cimg_proxy_image_close_async:
 * @self: an image
 * @cancellable: (nullable): a cancellable
 * @callback: (scope async): called when the image is closed
 * @user_data: data for @callback
 *
 * Releases the image in the proxy without blocking; see [method@CImgProxy.Image.close].
 *
 * Since: 1.0
 */
void
cimg_proxy_image_close_async (CImgProxyImage *self,
                              GCancellable *cancellable,
                              GAsyncReadyCallback callback,
                              gpointer user_data)
{
  g_return_if_fail (CIMG_PROXY_IS_IMAGE (self));
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  _cimg_proxy_run_in_thread (self, cimg_proxy_image_close_async, close_in_thread, NULL, NULL, NULL,
                             cancellable, callback, user_data);
}

/**
 * cimg_proxy_image_close_finish:
 * @self: an image
 * @result: the result passed to the callback
 * @error: return location for an error
 *
 * Finishes [method@CImgProxy.Image.close_async].
 *
 * Returns: `TRUE` on success
 *
 * Since: 1.0
 */
gboolean
cimg_proxy_image_close_finish (CImgProxyImage *self, GAsyncResult *result, GError **error)
{
  return GPOINTER_TO_INT (
    _cimg_proxy_thread_finish (self, result, cimg_proxy_image_close_async, error));
}

/* The rootfs.diff_ids of an image configuration. */
static GStrv
parse_diff_ids (GBytes *config, const char *reference, GError **error)
{
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_autoptr (GStrvBuilder) builder = g_strv_builder_new ();
  JsonNode *root;
  JsonObject *rootfs = NULL;
  JsonArray *diff_ids = NULL;

  if (!json_parser_load_from_data (parser, g_bytes_get_data (config, NULL),
                                   (gssize) g_bytes_get_size (config), error))
    return NULL;
  root = json_parser_get_root (parser);
  if (JSON_NODE_HOLDS_OBJECT (root) &&
      json_object_has_member (json_node_get_object (root), "rootfs"))
    rootfs = json_object_get_object_member (json_node_get_object (root), "rootfs");
  if (rootfs != NULL && json_object_has_member (rootfs, "diff_ids"))
    diff_ids = json_object_get_array_member (rootfs, "diff_ids");
  if (diff_ids == NULL)
    {
      g_set_error (error, CIMG_PROXY_ERROR, CIMG_PROXY_ERROR_PROTOCOL,
                   "The configuration of %s has no rootfs.diff_ids", reference);
      return NULL;
    }
  for (guint i = 0; i < json_array_get_length (diff_ids); i++)
    {
      JsonNode *node = json_array_get_element (diff_ids, i);
      g_strv_builder_add (builder, JSON_NODE_HOLDS_VALUE (node) &&
                                       json_node_get_value_type (node) == G_TYPE_STRING
                                     ? json_node_get_string (node)
                                     : "");
    }
  return g_strv_builder_end (builder);
}

/* The diff_id of @layer, from the layer list and configuration, each fetched once. */
static char *
lookup_diff_id (CImgProxyImage *self,
                CImgProxyLayerInfo *layer,
                GCancellable *cancellable,
                GError **error)
{
  g_autoptr (GMutexLocker) locker = g_mutex_locker_new (&self->layer_lock);
  const char *digest = cimg_proxy_layer_info_get_digest (layer);

  if (self->layers == NULL)
    {
      self->layers = cimg_proxy_image_get_layer_info (self, cancellable, error);
      if (self->layers == NULL)
        return NULL;
    }
  if (self->diff_ids == NULL)
    {
      g_autoptr (GBytes) config = cimg_proxy_image_get_config (self, cancellable, error);
      if (config == NULL ||
          (self->diff_ids = parse_diff_ids (config, self->reference, error)) == NULL)
        return NULL;
    }

  /* Layers and diff_ids go in the same order. */
  for (guint i = 0; i < self->layers->len; i++)
    {
      CImgProxyLayerInfo *candidate = g_ptr_array_index (self->layers, i);
      if (g_str_equal (cimg_proxy_layer_info_get_digest (candidate), digest))
        {
          if (i >= g_strv_length (self->diff_ids) || !cimg_core_is_valid_digest (self->diff_ids[i]))
            break;
          return g_strdup (self->diff_ids[i]);
        }
    }
  g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
               "%s has no layer %s with a diff_id in its configuration", self->reference, digest);
  return NULL;
}

/* How a layer's media type says it is compressed: a converter, NULL for a plain tar, or an
 * error for anything that is not a tar layer. */
static gboolean
decompressor_for (const char *media_type, GConverter **out_converter, GError **error)
{
  *out_converter = NULL;
  if (g_str_has_suffix (media_type, ".tar+gzip") || g_str_has_suffix (media_type, ".tar.gzip"))
    *out_converter = G_CONVERTER (g_zlib_decompressor_new (G_ZLIB_COMPRESSOR_FORMAT_GZIP));
  else if (g_str_has_suffix (media_type, ".tar+zstd"))
    *out_converter = _cimg_proxy_zstd_decompressor_new ();
  else if (!g_str_has_suffix (media_type, ".tar"))
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                   "Layers of media type %s are not tar archives compressed with gzip or zstd, "
                   "the kinds the library can unpack",
                   media_type);
      return FALSE;
    }
  return TRUE;
}

/**
 * cimg_proxy_image_open_layer:
 * @self: an image
 * @layer: one of the image's layers, from [method@CImgProxy.Image.get_layer_info]
 * @cancellable: (nullable): a cancellable
 * @error: return location for an error
 *
 * Opens a layer as the uncompressed tar archive it holds, decompressing gzip and zstd
 * (including zstd:chunked, whose extra frames are read too) as its media type says; plain
 * tar layers pass through.
 *
 * At its end the stream checks the sha256 of what it delivered against the layer's diff_id in
 * the image configuration (`rootfs.diff_ids`) and fails the read that would return
 * end-of-stream with %CIMG_PROXY_ERROR_VERIFICATION_FAILED on a mismatch, as
 * [class@CImgProxy.BlobStream] does for the compressed blob, whose own verdict it also
 * waits for. Other media types fail with %G_IO_ERROR_NOT_SUPPORTED.
 *
 * Returns: (transfer full): a stream of the layer's tar archive, or `NULL` with @error set
 *
 * Since: 1.0
 */
GInputStream *
cimg_proxy_image_open_layer (CImgProxyImage *self,
                             CImgProxyLayerInfo *layer,
                             GCancellable *cancellable,
                             GError **error)
{
  g_autoptr (GConverter) converter = NULL;
  g_autoptr (CImgProxyBlobStream) blob = NULL;
  g_autoptr (GInputStream) uncompressed = NULL;
  g_autofree char *diff_id = NULL;
  g_autofree char *description = NULL;

  g_return_val_if_fail (CIMG_PROXY_IS_IMAGE (self), NULL);
  g_return_val_if_fail (CIMG_PROXY_IS_LAYER_INFO (layer), NULL);
  g_return_val_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable), NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (!decompressor_for (cimg_proxy_layer_info_get_media_type (layer), &converter, error))
    return NULL;
  diff_id = lookup_diff_id (self, layer, cancellable, error);
  if (diff_id == NULL)
    return NULL;
  blob = cimg_proxy_image_open_blob (self, cimg_proxy_layer_info_get_digest (layer),
                                     cimg_proxy_layer_info_get_size (layer), cancellable, error);
  if (blob == NULL)
    return NULL;

  uncompressed = converter != NULL ? g_converter_input_stream_new (G_INPUT_STREAM (blob), converter)
                                   : g_object_ref (G_INPUT_STREAM (blob));
  description =
    g_strdup_printf ("layer %s of %s", cimg_proxy_layer_info_get_digest (layer), self->reference);
  return _cimg_proxy_layer_stream_new (uncompressed, G_INPUT_STREAM (blob), diff_id, description);
}

static gpointer
open_layer_in_thread (gpointer source, gpointer data, GCancellable *cancellable, GError **error)
{
  return cimg_proxy_image_open_layer (source, data, cancellable, error);
}

/**
 * cimg_proxy_image_open_layer_async:
 * @self: an image
 * @layer: one of the image's layers
 * @cancellable: (nullable): a cancellable
 * @callback: (scope async): called when the layer is ready to be read
 * @user_data: data for @callback
 *
 * Opens a layer as its uncompressed tar archive without blocking; see
 * [method@CImgProxy.Image.open_layer].
 *
 * Since: 1.0
 */
void
cimg_proxy_image_open_layer_async (CImgProxyImage *self,
                                   CImgProxyLayerInfo *layer,
                                   GCancellable *cancellable,
                                   GAsyncReadyCallback callback,
                                   gpointer user_data)
{
  g_return_if_fail (CIMG_PROXY_IS_IMAGE (self));
  g_return_if_fail (CIMG_PROXY_IS_LAYER_INFO (layer));
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  _cimg_proxy_run_in_thread (self, cimg_proxy_image_open_layer_async, open_layer_in_thread,
                             g_object_ref (layer), g_object_unref, g_object_unref, cancellable,
                             callback, user_data);
}

/**
 * cimg_proxy_image_open_layer_finish:
 * @self: an image
 * @result: the result passed to the callback
 * @error: return location for an error
 *
 * Finishes [method@CImgProxy.Image.open_layer_async].
 *
 * Returns: (transfer full): a stream of the layer's tar archive, or `NULL` with @error set
 *
 * Since: 1.0
 */
GInputStream *
cimg_proxy_image_open_layer_finish (CImgProxyImage *self, GAsyncResult *result, GError **error)
{
  return _cimg_proxy_thread_finish (self, result, cimg_proxy_image_open_layer_async, error);
}
