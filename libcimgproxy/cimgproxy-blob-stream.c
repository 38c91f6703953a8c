/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include "config.h"

#include <errno.h>
#include <poll.h>
#include <unistd.h>

#include "cimgproxy-private.h"

/**
 * CImgProxyBlobStream:
 *
 * A blob of an image, streamed from the proxy as it is read.
 *
 * Streams come from [method@CImgProxy.Image.open_blob]. They are ordinary
 * [class@Gio.InputStream]s: g_input_stream_read_all(), g_output_stream_splice() and bindings'
 * `read_bytes()` loops work as usual.
 *
 * skopeo verifies the digest and the size of a blob as it sends it, and delivers its verdict
 * only after the last byte. The stream therefore reads exactly the announced size and then
 * asks for the verdict; a mismatch turns the read that would have returned end-of-stream into
 * a %CIMG_PROXY_ERROR_VERIFICATION_FAILED error (or, if the caller never makes that read,
 * g_input_stream_close()). Data is trustworthy only once end-of-stream was reached.
 *
 * Closing a stream before its end abandons the blob; the client stays usable. Streams of one
 * client can be read at the same time, from different threads.
 *
 * Since: 1.0
 */
struct _CImgProxyBlobStream
{
  GInputStream parent_instance;

  CImgProxyClient *client;
  char *reference;
  char *digest;
  gint64 size;

  int fd;
  guint32 pipe_id;
  guint64 offset;
  guint64 remaining;
  gboolean finished;     /* FinishPipe was sent; the fd is gone */
  GError *verdict_error; /* what FinishPipe said, until reported */
};

G_DEFINE_FINAL_TYPE (CImgProxyBlobStream, cimg_proxy_blob_stream, G_TYPE_INPUT_STREAM)

enum
{
  PROP_0,
  PROP_DIGEST,
  PROP_SIZE,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

/* Hands the pipe back to the proxy: after a complete read to learn whether the blob was
 * valid, otherwise to abandon it. Either way the fd is closed and the pipe forgotten. */
static gboolean
finish (CImgProxyBlobStream *self, gboolean abort, GCancellable *cancellable, GError **error)
{
  g_autoptr (GError) local_error = NULL;
  CImgCoreProxy *core = _cimg_proxy_client_get_core (self->client, &local_error);
  int fd = self->fd;

  self->fd = -1;
  self->finished = TRUE;

  if (core != NULL)
    cimg_core_proxy_finish_blob (core, self->pipe_id, fd, abort, cancellable, &local_error);
  else
    close (fd);

  if (local_error != NULL)
    {
      g_propagate_prefixed_error (error, g_steal_pointer (&local_error),
                                  "Could not read blob %s of %s: ", self->digest, self->reference);
      return FALSE;
    }
  return TRUE;
}

/* Waits for the pipe or the cancellable, as GUnixInputStream does, so that a read blocked on
 * a slow registry can still be cancelled. */
static gboolean
wait_readable (CImgProxyBlobStream *self, GCancellable *cancellable, GError **error)
{
  GPollFD fds[2] = { { self->fd, G_IO_IN | G_IO_HUP | G_IO_ERR, 0 } };
  int ret;

  /* Without a cancellable, the read itself can block. */
  if (!g_cancellable_make_pollfd (cancellable, &fds[1]))
    return TRUE;

  do
    ret = g_poll (fds, G_N_ELEMENTS (fds), -1);
  while (ret < 0 && errno == EINTR);
  g_cancellable_release_fd (cancellable);

  if (ret < 0)
    {
      int errsv = errno;
      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errsv),
                   "Could not wait for blob %s: %s", self->digest, g_strerror (errsv));
      return FALSE;
    }
  return !g_cancellable_set_error_if_cancelled (cancellable, error);
}

static gssize
cimg_proxy_blob_stream_read (GInputStream *stream,
                             void *buffer,
                             gsize count,
                             GCancellable *cancellable,
                             GError **error)
{
  CImgProxyBlobStream *self = CIMG_PROXY_BLOB_STREAM (stream);
  ssize_t n;

  if (self->verdict_error != NULL)
    {
      g_propagate_error (error, g_steal_pointer (&self->verdict_error));
      return -1;
    }
  if (self->finished)
    return 0;
  if (self->remaining == 0)
    {
      /* An empty blob: there is nothing to wait for but the verdict. */
      if (!finish (self, FALSE, cancellable, error))
        return -1;
      return 0;
    }

  count = MIN (count, self->remaining);
  if (count > G_MAXSSIZE)
    count = G_MAXSSIZE;

  if (!wait_readable (self, cancellable, error))
    return -1;
  do
    n = read (self->fd, buffer, count);
  while (n < 0 && errno == EINTR);

  if (n < 0)
    {
      int errsv = errno;
      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errsv),
                   "Could not read blob %s of %s: %s", self->digest, self->reference,
                   g_strerror (errsv));
      return -1;
    }

  if (n == 0)
    {
      /* The pipe ended early, which skopeo never does while it lives: its FinishPipe (or its
       * exit status) says why. */
      if (!finish (self, FALSE, cancellable, error))
        return -1;
      g_set_error (error, CIMG_PROXY_ERROR, CIMG_PROXY_ERROR_PROTOCOL,
                   "Blob %s of %s ended after %" G_GUINT64_FORMAT " of %" G_GINT64_FORMAT " bytes",
                   self->digest, self->reference, self->offset, self->size);
      return -1;
    }

  self->offset += (guint64)n;
  self->remaining -= (guint64)n;
  /* Ask for the verdict right away, so skopeo can release the pipe; a failure is kept for
   * the read that would return end-of-stream. */
  if (self->remaining == 0)
    finish (self, FALSE, cancellable, &self->verdict_error);
  return n;
}

static gboolean
cimg_proxy_blob_stream_close (GInputStream *stream, GCancellable *cancellable, GError **error)
{
  CImgProxyBlobStream *self = CIMG_PROXY_BLOB_STREAM (stream);

  if (!self->finished)
    {
      /* The caller chose to stop: whatever skopeo says about the rest is of no interest, and
       * a client that went away in the meantime does not matter either. */
      g_autoptr (GError) ignored = NULL;
      if (!finish (self, TRUE, cancellable, &ignored))
        g_debug ("%s", ignored->message);
      return TRUE;
    }

  if (self->verdict_error != NULL)
    {
      g_propagate_error (error, g_steal_pointer (&self->verdict_error));
      return FALSE;
    }
  return TRUE;
}

static void
cimg_proxy_blob_stream_finalize (GObject *object)
{
  CImgProxyBlobStream *self = CIMG_PROXY_BLOB_STREAM (object);

  /* GInputStream's dispose closed the stream, so the pipe is finished. */
  g_clear_error (&self->verdict_error);
  g_clear_object (&self->client);
  g_free (self->reference);
  g_free (self->digest);

  G_OBJECT_CLASS (cimg_proxy_blob_stream_parent_class)->finalize (object);
}

static void
cimg_proxy_blob_stream_get_property (GObject *object,
                                     guint prop_id,
                                     GValue *value,
                                     GParamSpec *pspec)
{
  CImgProxyBlobStream *self = CIMG_PROXY_BLOB_STREAM (object);

  switch (prop_id)
    {
    case PROP_DIGEST:
      g_value_set_string (value, self->digest);
      break;
    case PROP_SIZE:
      g_value_set_int64 (value, self->size);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
cimg_proxy_blob_stream_class_init (CImgProxyBlobStreamClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GInputStreamClass *stream_class = G_INPUT_STREAM_CLASS (klass);

  object_class->finalize = cimg_proxy_blob_stream_finalize;
  object_class->get_property = cimg_proxy_blob_stream_get_property;
  stream_class->read_fn = cimg_proxy_blob_stream_read;
  stream_class->close_fn = cimg_proxy_blob_stream_close;

  /**
   * CImgProxyBlobStream:digest:
   *
   * The digest of the blob.
   *
   * Since: 1.0
   */
  properties[PROP_DIGEST] =
    g_param_spec_string ("digest", NULL, NULL, NULL, G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);

  /**
   * CImgProxyBlobStream:size:
   *
   * The size of the blob in bytes: exactly what the stream delivers before end-of-stream.
   *
   * Since: 1.0
   */
  properties[PROP_SIZE] = g_param_spec_int64 ("size", NULL, NULL, 0, G_MAXINT64, 0,
                                              G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);

  g_object_class_install_properties (object_class, N_PROPS, properties);
}

static void
cimg_proxy_blob_stream_init (CImgProxyBlobStream *self)
{
  self->fd = -1;
}

CImgProxyBlobStream *
_cimg_proxy_blob_stream_new (CImgProxyClient *client,
                             const char *reference,
                             const char *digest,
                             gint64 size,
                             gint64 source_size,
                             int fd,
                             guint32 pipe_id)
{
  CImgProxyBlobStream *self = g_object_new (CIMG_PROXY_TYPE_BLOB_STREAM, NULL);

  self->client = g_object_ref (client);
  self->reference = g_strdup (reference);
  self->digest = g_strdup (digest);
  self->size = size;
  self->fd = fd;
  self->pipe_id = pipe_id;
  /* skopeo keeps the pipe open until FinishPipe, so a source shorter than @size would leave
   * the last read waiting forever. When the source told its size, stop there instead: the
   * verdict then reports the mismatch. A longer source shows up as surplus bytes. */
  self->remaining = (guint64)(source_size >= 0 ? MIN (size, source_size) : size);
  return self;
}

/**
 * cimg_proxy_blob_stream_get_digest:
 * @self: a blob stream
 *
 * The digest the blob was opened with, and that skopeo verifies it against.
 *
 * Returns: the digest of the blob
 *
 * Since: 1.0
 */
const char *
cimg_proxy_blob_stream_get_digest (CImgProxyBlobStream *self)
{
  g_return_val_if_fail (CIMG_PROXY_IS_BLOB_STREAM (self), NULL);

  return self->digest;
}

/**
 * cimg_proxy_blob_stream_get_size:
 * @self: a blob stream
 *
 * The size the blob was opened with: the number of bytes the stream delivers before
 * end-of-stream.
 *
 * Returns: the size of the blob in bytes
 *
 * Since: 1.0
 */
gint64
cimg_proxy_blob_stream_get_size (CImgProxyBlobStream *self)
{
  g_return_val_if_fail (CIMG_PROXY_IS_BLOB_STREAM (self), -1);

  return self->size;
}
