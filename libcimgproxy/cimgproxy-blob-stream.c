/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <gio/gfiledescriptorbased.h>
#include <glib-unix.h>
#include <glib/gstdio.h>

#include "cimgproxy-private.h"

/**
 * CImgProxyBlobStream:
 *
 * A blob of an image, streamed from the proxy as it is read.
 *
 * Streams come from [method@CImgProxy.Image.open_blob]. They are ordinary
 * [class@Gio.InputStream]s: g_input_stream_read_all(), g_output_stream_splice() and bindings'
 * `read_bytes()` loops work as usual. They are also [iface@Gio.PollableInputStream]s, so
 * g_input_stream_read_bytes_async() and g_output_stream_splice_async() read them from the main
 * loop without a thread per read.
 *
 * skopeo verifies the digest and the size of a blob as it sends it, and delivers its verdict
 * only after the last byte. The stream therefore reads exactly the announced size and then
 * asks for the verdict; a mismatch turns the read that would have returned end-of-stream into
 * a %CIMG_PROXY_ERROR_VERIFICATION_FAILED error (or, if the caller never makes that read,
 * g_input_stream_close()). Data is trustworthy only once end-of-stream was reached.
 *
 * A stream is abandoned, and its transfer stopped, when it is closed before its end, when a
 * read of it is cancelled, or when no byte arrives for the client's
 * [property@CImgProxy.Client:idle-timeout] (which also stops the proxy, since skopeo cannot
 * recover from a stalled transfer). The client stays usable in the first two cases. Streams
 * of one client can be read at the same time, from different threads or one main loop.
 *
 * Since: 1.0
 */

typedef enum
{
  BLOB_READING,   /* bytes are still to come from the pipe */
  BLOB_FINISHING, /* all bytes are in; a worker thread waits for skopeo's verdict */
  BLOB_DONE,      /* the pipe is finished; a failed verdict waits in verdict_error */
  BLOB_ABANDONED, /* the reader gave up: early close, cancelled read, or stall */
} BlobState;

struct _CImgProxyBlobStream
{
  GInputStream parent_instance;

  CImgProxyClient *client;
  char *reference;
  char *digest;
  gint64 size;
  guint idle_timeout; /* seconds, 0 for none */

  /* Owned by the reader (GInputStream allows one operation at a time). */
  int fd; /* the pipe, non-blocking; -1 once handed back */
  guint32 pipe_id;
  guint64 offset;
  guint64 remaining;
  gboolean pipe_drained; /* the last read(2) emptied the pipe */
  GSource *watch;        /* waits for the pipe on behalf of asynchronous reads */

  /* A blob from GetRawBlob: read to end-of-file, with the verdict ours to reach: what the
   * error pipe says, then the digest of what came. */
  gboolean raw;
  int error_fd;
  GChecksum *checksum;

  /* Shared with the worker thread that asks for the verdict. */
  GMutex lock;
  GCond done_cond;
  BlobState state;
  GError *verdict_error;
  int done_event; /* eventfd the worker signals, for the pollable source */
};

static void cimg_proxy_blob_stream_pollable_iface_init (GPollableInputStreamInterface *iface);
static void cimg_proxy_blob_stream_fd_based_iface_init (GFileDescriptorBasedIface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE (CImgProxyBlobStream,
                               cimg_proxy_blob_stream,
                               G_TYPE_INPUT_STREAM,
                               G_IMPLEMENT_INTERFACE (G_TYPE_POLLABLE_INPUT_STREAM,
                                                      cimg_proxy_blob_stream_pollable_iface_init)
                                 G_IMPLEMENT_INTERFACE (G_TYPE_FILE_DESCRIPTOR_BASED,
                                                        cimg_proxy_blob_stream_fd_based_iface_init))

enum
{
  PROP_0,
  PROP_DIGEST,
  PROP_SIZE,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

static BlobState
get_state (CImgProxyBlobStream *self)
{
  BlobState state;

  g_mutex_lock (&self->lock);
  state = self->state;
  g_mutex_unlock (&self->lock);
  return state;
}

static void
set_done (CImgProxyBlobStream *self, GError *verdict)
{
  g_mutex_lock (&self->lock);
  self->state = BLOB_DONE;
  self->verdict_error = verdict;
  g_cond_broadcast (&self->done_cond);
  if (self->done_event >= 0)
    {
      guint64 one = 1;
      if (write (self->done_event, &one, sizeof one) < 0)
        g_debug ("Could not signal the end of blob %s: %s", self->digest, g_strerror (errno));
    }
  g_mutex_unlock (&self->lock);
}

/* Reads GetRawBlob's error pipe to its end. skopeo closes it right after the data pipe, so
 * this waits no longer than a stall would. */
static gboolean
read_error_pipe (CImgProxyBlobStream *self, GString *contents, GError **error)
{
  int timeout =
    self->idle_timeout > 0 ? (int) MIN (self->idle_timeout, G_MAXINT / 1000) * 1000 : -1;

  for (;;)
    {
      struct pollfd pfd = { self->error_fd, POLLIN, 0 };
      char buffer[4096];
      ssize_t n;
      int ready = poll (&pfd, 1, timeout);

      if (ready < 0 && errno == EINTR)
        continue;
      if (ready == 0)
        {
          g_set_error (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
                       "The proxy did not end the error pipe of blob %s in %u seconds",
                       self->digest, self->idle_timeout);
          return FALSE;
        }
      n = read (self->error_fd, buffer, sizeof buffer);
      if (n < 0 && (errno == EINTR || errno == EAGAIN))
        continue;
      if (n <= 0)
        return TRUE;
      g_string_append_len (contents, buffer, n);
    }
}

/* The verdict on a raw blob whose data pipe reached its end. */
static GError *
raw_verdict (CImgProxyBlobStream *self)
{
  g_autoptr (GString) contents = g_string_new (NULL);
  g_autofree char *actual = NULL;
  GError *error = NULL;

  if (read_error_pipe (self, contents, &error))
    cimg_core_check_raw_blob_error (contents->str, contents->len, &error);
  g_close (g_steal_fd (&self->error_fd), NULL);
  if (error != NULL)
    {
      g_prefix_error (&error, "Could not read blob %s of %s: ", self->digest, self->reference);
      return error;
    }

  actual = g_strdup_printf ("%.*s:%s", (int) (strchr (self->digest, ':') - self->digest),
                            self->digest, g_checksum_get_string (self->checksum));
  if (!g_str_equal (actual, self->digest))
    g_set_error (&error, CIMG_PROXY_ERROR, CIMG_PROXY_ERROR_VERIFICATION_FAILED,
                 "Blob %s of %s does not match its digest: its %" G_GUINT64_FORMAT
                 " bytes hash to %s",
                 self->digest, self->reference, self->offset, actual);
  return error;
}

/* Hands the completely read pipe back to the proxy and waits for its verdict on the blob. */
static GError *
ask_verdict (CImgProxyBlobStream *self, int fd, GCancellable *cancellable)
{
  GError *error = NULL;
  CImgCoreProxy *core;

  if (self->raw)
    {
      g_close (fd, NULL);
      return raw_verdict (self);
    }

  core = _cimg_proxy_client_get_core (self->client, &error);
  if (core == NULL || !cimg_core_proxy_finish_blob (core, self->pipe_id, fd, cancellable, &error))
    {
      if (core == NULL)
        close (fd);
      g_prefix_error (&error, "Could not read blob %s of %s: ", self->digest, self->reference);
    }
  return error;
}

static void
stop_watching (CImgProxyBlobStream *self)
{
  if (self->watch == NULL)
    return;
  g_source_destroy (self->watch);
  g_clear_pointer (&self->watch, g_source_unref);
}

/* Takes the pipe from the stream, once it is no longer to be read; a source left polling
 * it would spin on the closed fd, or on whatever file next gets its number. */
static int
take_fd (CImgProxyBlobStream *self)
{
  stop_watching (self);
  return g_steal_fd (&self->fd);
}

static void
finish_now (CImgProxyBlobStream *self, GCancellable *cancellable)
{
  int fd = take_fd (self);

  set_done (self, ask_verdict (self, fd, cancellable));
}

static void
finish_in_thread (GTask *task, gpointer source, gpointer task_data, GCancellable *cancellable)
{
  CImgProxyBlobStream *self = source;

  set_done (self, ask_verdict (self, GPOINTER_TO_INT (task_data), NULL));
  g_task_return_boolean (task, TRUE);
}

/* The non-blocking way to the verdict: a FinishPipe is a request that can take a moment, so
 * it goes to a worker; the done_event wakes the pollable source when it is back. */
static void
start_finish (CImgProxyBlobStream *self)
{
  g_autoptr (GTask) task = g_task_new (self, NULL, NULL, NULL);

  g_mutex_lock (&self->lock);
  self->state = BLOB_FINISHING;
  if (self->done_event < 0)
    self->done_event = eventfd (0, EFD_CLOEXEC | EFD_NONBLOCK);
  g_mutex_unlock (&self->lock);

  g_task_set_source_tag (task, start_finish);
  g_task_set_task_data (task, GINT_TO_POINTER (take_fd (self)), NULL);
  g_task_run_in_thread (task, finish_in_thread);
}

static void
wait_done (CImgProxyBlobStream *self)
{
  g_mutex_lock (&self->lock);
  while (self->state == BLOB_FINISHING)
    g_cond_wait (&self->done_cond, &self->lock);
  g_mutex_unlock (&self->lock);
}

/* Gives up the transfer without waiting for anything: the pipe is closed at once, and its
 * FinishPipe goes out ahead of the client's next request. */
static void
abandon (CImgProxyBlobStream *self)
{
  CImgCoreProxy *core = _cimg_proxy_client_get_core (self->client, NULL);

  if (get_state (self) != BLOB_READING)
    return;
  if (self->raw)
    {
      /* Nothing to finish: skopeo's writer sees EPIPE, and the pipes are gone. */
      g_close (take_fd (self), NULL);
      g_close (g_steal_fd (&self->error_fd), NULL);
    }
  else if (core != NULL)
    cimg_core_proxy_abandon_blob (core, self->pipe_id, take_fd (self));
  else
    g_close (take_fd (self), NULL);

  g_mutex_lock (&self->lock);
  self->state = BLOB_ABANDONED;
  g_mutex_unlock (&self->lock);
}

/* No byte for the idle timeout: skopeo has no timeouts of its own and would keep the pipe,
 * and with it every later request, waiting, so the proxy is stopped. */
static void
stall (CImgProxyBlobStream *self, GError **error)
{
  g_autofree char *reason =
    g_strdup_printf ("No data arrived on blob %s of %s for %u seconds; the proxy was stopped, "
                     "since skopeo cannot recover from a stalled transfer",
                     self->digest, self->reference, self->idle_timeout);
  CImgCoreProxy *core = _cimg_proxy_client_get_core (self->client, NULL);

  if (core != NULL)
    cimg_core_proxy_terminate (core, reason);
  abandon (self);
  g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT, reason);
}

/* What a read returns once the pipe is no longer read: end-of-stream, or the error that
 * stands in for it. */
static gssize
read_past_end (CImgProxyBlobStream *self, GError **error)
{
  if (get_state (self) == BLOB_ABANDONED)
    {
      g_set_error (error, CIMG_PROXY_ERROR, CIMG_PROXY_ERROR_CLOSED,
                   "Blob %s of %s was abandoned after a cancelled, stalled or closed read",
                   self->digest, self->reference);
      return -1;
    }
  if (self->verdict_error != NULL)
    {
      g_propagate_error (error, g_steal_pointer (&self->verdict_error));
      return -1;
    }
  return 0;
}

/* One read(2) of what the pipe holds. Fails with G_IO_ERROR_WOULD_BLOCK when it holds
 * nothing yet. */
static gssize
read_pipe (CImgProxyBlobStream *self, void *buffer, gsize count, GError **error)
{
  ssize_t n;

  count = MIN (MIN (count, self->remaining), G_MAXSSIZE);
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

  if (n == 0 && self->raw)
    return 0;
  if (n == 0)
    {
      /* The pipe ended early, which skopeo never does while it lives: its FinishPipe (or its
       * exit status) says why. */
      finish_now (self, NULL);
      if (self->verdict_error == NULL)
        g_set_error (&self->verdict_error, CIMG_PROXY_ERROR, CIMG_PROXY_ERROR_PROTOCOL,
                     "Blob %s of %s ended after %" G_GUINT64_FORMAT " of %" G_GINT64_FORMAT
                     " bytes",
                     self->digest, self->reference, self->offset, self->size);
      return read_past_end (self, error);
    }

  self->offset += (guint64) n;
  self->remaining -= (guint64) n;
  if (self->raw)
    g_checksum_update (self->checksum, buffer, n);
  return n;
}

/* Waits for the pipe, the cancellable or the idle timeout, as GUnixInputStream does, so
 * that a read blocked on a slow registry can be cancelled and a stalled one ends. */
static gboolean
wait_readable (CImgProxyBlobStream *self, GCancellable *cancellable, GError **error)
{
  GPollFD fds[2] = { { self->fd, G_IO_IN | G_IO_HUP | G_IO_ERR, 0 } };
  int n_fds = g_cancellable_make_pollfd (cancellable, &fds[1]) ? 2 : 1;
  int timeout =
    self->idle_timeout > 0 ? (int) MIN (self->idle_timeout, G_MAXINT / 1000) * 1000 : -1;
  int ret;

  do
    ret = g_poll (fds, n_fds, timeout);
  while (ret < 0 && errno == EINTR);
  if (n_fds == 2)
    g_cancellable_release_fd (cancellable);

  if (ret < 0)
    {
      int errsv = errno;
      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errsv),
                   "Could not wait for blob %s: %s", self->digest, g_strerror (errsv));
      return FALSE;
    }
  if (g_cancellable_set_error_if_cancelled (cancellable, error))
    {
      abandon (self);
      return FALSE;
    }
  if (ret == 0)
    {
      stall (self, error);
      return FALSE;
    }
  return TRUE;
}

static gssize
cimg_proxy_blob_stream_read (GInputStream *stream,
                             void *buffer,
                             gsize count,
                             GCancellable *cancellable,
                             GError **error)
{
  CImgProxyBlobStream *self = CIMG_PROXY_BLOB_STREAM (stream);

  wait_done (self);
  if (get_state (self) != BLOB_READING)
    return read_past_end (self, error);
  /* Checked before anything else: with data waiting in the pipe, nothing below would. */
  if (g_cancellable_set_error_if_cancelled (cancellable, error))
    {
      abandon (self);
      return -1;
    }
  if (self->remaining == 0)
    {
      /* An empty blob, or one read through its fd: nothing to wait for but the verdict. */
      finish_now (self, cancellable);
      return read_past_end (self, error);
    }

  for (;;)
    {
      g_autoptr (GError) local_error = NULL;
      gsize wanted = (gsize) MIN (count, self->remaining);
      gssize n;

      /* A reader faster than skopeo finds the pipe empty after each read: waiting first
       * then spares the read(2) that would fail with EAGAIN, a third of the syscalls. */
      if (self->pipe_drained && !wait_readable (self, cancellable, error))
        return -1;
      n = read_pipe (self, buffer, count, &local_error);
      self->pipe_drained = n < 0 || (gsize) n < wanted;

      if (n == 0)
        {
          /* A raw blob's end: the data is all there, the verdict is ours to reach. */
          finish_now (self, cancellable);
          return read_past_end (self, error);
        }
      if (n > 0)
        {
          /* Ask for the verdict right away, so skopeo can release the pipe; a failure is
           * kept for the read that would return end-of-stream. */
          if (self->remaining == 0)
            finish_now (self, cancellable);
          return n;
        }
      if (!g_error_matches (local_error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
        {
          g_propagate_error (error, g_steal_pointer (&local_error));
          return -1;
        }
    }
}

static gssize
cimg_proxy_blob_stream_read_nonblocking (GPollableInputStream *stream,
                                         void *buffer,
                                         gsize count,
                                         GError **error)
{
  CImgProxyBlobStream *self = CIMG_PROXY_BLOB_STREAM (stream);
  gssize n;

  switch (get_state (self))
    {
    case BLOB_FINISHING:
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK, "Waiting for the verdict");
      return -1;
    case BLOB_DONE:
    case BLOB_ABANDONED:
      return read_past_end (self, error);
    case BLOB_READING:
      break;
    }

  if (self->remaining == 0)
    {
      start_finish (self);
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK, "Waiting for the verdict");
      return -1;
    }

  n = read_pipe (self, buffer, count, error);
  if ((n > 0 && self->remaining == 0) || (n == 0 && self->raw))
    start_finish (self);
  if (n == 0 && self->raw)
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK, "Waiting for the verdict");
      return -1;
    }
  return n;
}

static gboolean
cimg_proxy_blob_stream_is_readable (GPollableInputStream *stream)
{
  CImgProxyBlobStream *self = CIMG_PROXY_BLOB_STREAM (stream);
  struct pollfd pfd = { self->fd, POLLIN, 0 };

  switch (get_state (self))
    {
    case BLOB_FINISHING:
      return FALSE;
    case BLOB_DONE:
    case BLOB_ABANDONED:
      return TRUE;
    case BLOB_READING:
      break;
    }
  return self->remaining == 0 || poll (&pfd, 1, 0) != 0;
}

static GSource *
cimg_proxy_blob_stream_create_source (GPollableInputStream *stream, GCancellable *cancellable)
{
  CImgProxyBlobStream *self = CIMG_PROXY_BLOB_STREAM (stream);
  g_autoptr (GSource) child = NULL;

  switch (get_state (self))
    {
    case BLOB_FINISHING:
      child = g_unix_fd_source_new (self->done_event, G_IO_IN);
      break;
    case BLOB_READING:
      if (self->remaining > 0)
        {
          child = g_unix_fd_source_new (self->fd, G_IO_IN | G_IO_HUP | G_IO_ERR);
          break;
        }
      G_GNUC_FALLTHROUGH;
    case BLOB_DONE:
    case BLOB_ABANDONED:
      child = g_idle_source_new ();
      break;
    }
  return g_pollable_source_new_full (stream, child, cancellable);
}

/* Asynchronous reads wait for the pipe with a source of the stream's own rather than through
 * GInputStream's default, so that a cancelled or stalled read abandons the transfer as a
 * synchronous one does. The source outlives the read it waits for: a reader issues its next
 * read from the callback of the last one, finds the source still attached, and the main
 * context polls the same fds from one read to the next. Attaching or destroying an fd source
 * wakes the context up, which for a blob arriving in 64 KiB pipefuls cost more CPU than the
 * reads themselves. */
typedef struct
{
  GSource parent;
  gpointer pipe_tag;
  gint64 idle_timeout;    /* microseconds, 0 for none */
  GTask *task;            /* the read waiting for the pipe, if any */
  GSource *cancel_source; /* that read's cancellable, as a child source */
  gint64 waiting_since;   /* when that read began to wait, in monotonic time */
} PipeWatch;

typedef struct
{
  void *buffer;
  gsize count;
} AsyncRead;

static void try_read_async (GTask *task);

static void
pipe_watch_release_task (PipeWatch *watch)
{
  if (watch->cancel_source != NULL)
    {
      g_source_remove_child_source (&watch->parent, watch->cancel_source);
      g_clear_pointer (&watch->cancel_source, g_source_unref);
    }
  g_clear_object (&watch->task);
}

static gboolean
pipe_watch_dispatch (GSource *source, GSourceFunc callback, gpointer user_data)
{
  PipeWatch *watch = (PipeWatch *) source;
  gint64 now = g_source_get_time (source);
  g_autoptr (GTask) task = NULL;
  gboolean readable, cancelled;
  gint64 deadline;
  GError *error = NULL;

  /* Nobody is reading: stop polling the pipe until somebody does. */
  if (watch->task == NULL)
    return G_SOURCE_REMOVE;

  readable = g_source_query_unix_fd (source, watch->pipe_tag) != 0;
  cancelled = g_cancellable_is_cancelled (g_task_get_cancellable (watch->task));
  deadline = watch->waiting_since + watch->idle_timeout;
  if (!readable && !cancelled && (watch->idle_timeout == 0 || now < deadline))
    {
      /* Woken by the deadline of an earlier read: this one has time left. */
      if (watch->idle_timeout > 0)
        g_source_set_ready_time (source, deadline);
      return G_SOURCE_CONTINUE;
    }
  if (watch->idle_timeout > 0 && g_source_get_ready_time (source) <= now)
    {
      /* A long transfer outlives the deadline the source was created with. */
      g_source_set_ready_time (source, now + watch->idle_timeout);
    }

  task = g_object_ref (watch->task);
  pipe_watch_release_task (watch);
  if (readable)
    CIMG_PROXY_BLOB_STREAM (g_task_get_source_object (task))->pipe_drained = FALSE;
  else if (!cancelled)
    {
      stall (g_task_get_source_object (task), &error);
      g_task_return_error (task, error);
      return G_SOURCE_REMOVE;
    }
  /* This may end the stream, and with it the source: nothing of either is touched after. */
  try_read_async (task);
  return G_SOURCE_CONTINUE;
}

static void
pipe_watch_finalize (GSource *source)
{
  pipe_watch_release_task ((PipeWatch *) source);
}

static GSourceFuncs pipe_watch_funcs = {
  .dispatch = pipe_watch_dispatch,
  .finalize = pipe_watch_finalize,
};

static gboolean
on_cancelled (GCancellable *cancellable, gpointer user_data)
{
  /* The parent source wakes up too, and looks at the cancellable itself. */
  return G_SOURCE_CONTINUE;
}

/* Leaves @task waiting for the pipe, with the stream's source. */
static void
watch_pipe (CImgProxyBlobStream *self, GTask *task)
{
  GCancellable *cancellable = g_task_get_cancellable (task);
  PipeWatch *watch;

  if (self->watch != NULL && (g_source_is_destroyed (self->watch) ||
                              g_source_get_context (self->watch) != g_task_get_context (task) ||
                              g_source_get_priority (self->watch) != g_task_get_priority (task)))
    stop_watching (self);

  if (self->watch == NULL)
    {
      self->watch = g_source_new (&pipe_watch_funcs, sizeof (PipeWatch));
      watch = (PipeWatch *) self->watch;
      g_source_set_static_name (self->watch, "CImgProxyBlobStream pipe");
      g_source_set_priority (self->watch, g_task_get_priority (task));
      /* Otherwise GLib takes the fd out of the poll set around every dispatch, which costs
       * two more wakeups per read. Recursion is harmless: the read is taken off the source
       * before anything is called. */
      g_source_set_can_recurse (self->watch, TRUE);
      watch->pipe_tag = g_source_add_unix_fd (self->watch, self->fd, G_IO_IN | G_IO_HUP | G_IO_ERR);
      watch->idle_timeout = (gint64) self->idle_timeout * G_USEC_PER_SEC;
      if (watch->idle_timeout > 0)
        g_source_set_ready_time (self->watch, g_get_monotonic_time () + watch->idle_timeout);
      g_source_attach (self->watch, g_task_get_context (task));
    }

  watch = (PipeWatch *) self->watch;
  watch->task = g_object_ref (task);
  watch->waiting_since = g_get_monotonic_time ();
  if (cancellable != NULL)
    {
      watch->cancel_source = g_cancellable_source_new (cancellable);
      g_source_set_callback (watch->cancel_source, G_SOURCE_FUNC (on_cancelled), NULL, NULL);
      g_source_add_child_source (self->watch, watch->cancel_source);
    }
}

static gboolean
on_verdict_ready (GObject *stream, gpointer user_data)
{
  try_read_async (user_data);
  return G_SOURCE_REMOVE;
}

/* Leaves @task waiting for the worker that asks for the verdict: once per blob, so an
 * ordinary pollable source does. The FinishPipe is bounded by the proxy's own idle timeout. */
static void
watch_verdict (CImgProxyBlobStream *self, GTask *task)
{
  g_autoptr (GSource) source = g_pollable_input_stream_create_source (
    G_POLLABLE_INPUT_STREAM (self), g_task_get_cancellable (task));

  g_source_set_priority (source, g_task_get_priority (task));
  g_source_set_callback (source, G_SOURCE_FUNC (on_verdict_ready), g_object_ref (task),
                         g_object_unref);
  g_source_attach (source, g_task_get_context (task));
}

/* Whether bytes are still to come from the pipe, rather than the verdict or nothing. */
static gboolean
pipe_pending (CImgProxyBlobStream *self)
{
  return self->remaining > 0 && get_state (self) == BLOB_READING;
}

static void
try_read_async (GTask *task)
{
  CImgProxyBlobStream *self = g_task_get_source_object (task);
  AsyncRead *data = g_task_get_task_data (task);
  gboolean reading = pipe_pending (self);
  gsize wanted = (gsize) MIN (data->count, self->remaining);
  GError *error = NULL;
  gssize n;

  if (g_cancellable_is_cancelled (g_task_get_cancellable (task)))
    {
      abandon (self);
      g_task_return_error_if_cancelled (task);
      return;
    }

  /* As for synchronous reads: after a short read, the pipe is most likely empty. */
  if (reading && self->pipe_drained)
    {
      watch_pipe (self, task);
      return;
    }

  n = cimg_proxy_blob_stream_read_nonblocking (G_POLLABLE_INPUT_STREAM (self), data->buffer,
                                               data->count, &error);
  if (n >= 0)
    {
      self->pipe_drained = reading && (gsize) n < wanted;
      g_task_return_int (task, n);
    }
  else if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
    g_task_return_error (task, error);
  else
    {
      g_clear_error (&error);
      if (pipe_pending (self))
        watch_pipe (self, task);
      else
        watch_verdict (self, task);
    }
}

static void
cimg_proxy_blob_stream_read_async (GInputStream *stream,
                                   void *buffer,
                                   gsize count,
                                   int io_priority,
                                   GCancellable *cancellable,
                                   GAsyncReadyCallback callback,
                                   gpointer user_data)
{
  g_autoptr (GTask) task = g_task_new (stream, cancellable, callback, user_data);
  AsyncRead *data = g_new (AsyncRead, 1);

  data->buffer = buffer;
  data->count = count;
  g_task_set_source_tag (task, cimg_proxy_blob_stream_read_async);
  g_task_set_priority (task, io_priority);
  g_task_set_task_data (task, data, g_free);
  try_read_async (task);
}

static gssize
cimg_proxy_blob_stream_read_finish (GInputStream *stream, GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (g_task_is_valid (result, stream), -1);
  g_return_val_if_fail (g_async_result_is_tagged (result, cimg_proxy_blob_stream_read_async), -1);

  return g_task_propagate_int (G_TASK (result), error);
}

static gboolean
cimg_proxy_blob_stream_close (GInputStream *stream, GCancellable *cancellable, GError **error)
{
  CImgProxyBlobStream *self = CIMG_PROXY_BLOB_STREAM (stream);

  wait_done (self);
  if (get_state (self) == BLOB_READING)
    {
      /* All bytes read but the end not asked for (read_all of exactly the size, or the fd
       * read directly): the verdict is still owed. Otherwise the reader stopped early. */
      if (self->remaining == 0)
        finish_now (self, cancellable);
      else
        abandon (self);
    }

  if (self->verdict_error != NULL)
    {
      g_propagate_error (error, g_steal_pointer (&self->verdict_error));
      return FALSE;
    }
  return TRUE;
}

static int
cimg_proxy_blob_stream_get_fd (GFileDescriptorBased *stream)
{
  return CIMG_PROXY_BLOB_STREAM (stream)->fd;
}

static void
cimg_proxy_blob_stream_finalize (GObject *object)
{
  CImgProxyBlobStream *self = CIMG_PROXY_BLOB_STREAM (object);

  /* GInputStream's dispose closed the stream, so the pipe is finished or abandoned, and
   * nothing watches it any more. */
  g_assert (self->watch == NULL);
  if (self->done_event >= 0)
    g_close (self->done_event, NULL);
  if (self->error_fd >= 0)
    g_close (self->error_fd, NULL);
  g_clear_pointer (&self->checksum, g_checksum_free);
  g_clear_error (&self->verdict_error);
  g_mutex_clear (&self->lock);
  g_cond_clear (&self->done_cond);
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
  stream_class->read_async = cimg_proxy_blob_stream_read_async;
  stream_class->read_finish = cimg_proxy_blob_stream_read_finish;
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
   * The size of the blob in bytes: exactly what the stream delivers before end-of-stream; -1
   * for a blob opened without a known size.
   *
   * Since: 1.0
   */
  properties[PROP_SIZE] = g_param_spec_int64 ("size", NULL, NULL, -1, G_MAXINT64, 0,
                                              G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);

  g_object_class_install_properties (object_class, N_PROPS, properties);
}

static void
cimg_proxy_blob_stream_pollable_iface_init (GPollableInputStreamInterface *iface)
{
  iface->is_readable = cimg_proxy_blob_stream_is_readable;
  iface->create_source = cimg_proxy_blob_stream_create_source;
  iface->read_nonblocking = cimg_proxy_blob_stream_read_nonblocking;
}

static void
cimg_proxy_blob_stream_fd_based_iface_init (GFileDescriptorBasedIface *iface)
{
  iface->get_fd = cimg_proxy_blob_stream_get_fd;
}

static void
cimg_proxy_blob_stream_init (CImgProxyBlobStream *self)
{
  self->fd = -1;
  self->error_fd = -1;
  self->done_event = -1;
  self->state = BLOB_READING;
  g_mutex_init (&self->lock);
  g_cond_init (&self->done_cond);
}

CImgProxyBlobStream *
_cimg_proxy_blob_stream_new (CImgProxyClient *client,
                             const char *reference,
                             const char *digest,
                             gint64 size,
                             gint64 source_size,
                             int fd,
                             guint32 pipe_id,
                             int error_fd)
{
  CImgProxyBlobStream *self = g_object_new (CIMG_PROXY_TYPE_BLOB_STREAM, NULL);

  self->client = g_object_ref (client);
  self->reference = g_strdup (reference);
  self->digest = g_strdup (digest);
  self->size = size;
  self->idle_timeout = _cimg_proxy_client_get_idle_timeout (client);
  self->fd = fd;
  self->pipe_id = pipe_id;
  /* skopeo hands out blocking pipes; the pollable reads need them not to block. */
  if (!g_unix_set_fd_nonblocking (fd, TRUE, NULL))
    g_debug ("Could not make the pipe of blob %s non-blocking: %s", digest, g_strerror (errno));
  if (error_fd >= 0)
    {
      /* GetRawBlob: no size to stop at, the pipe ends with the data. */
      self->raw = TRUE;
      self->error_fd = error_fd;
      self->checksum = g_checksum_new (_cimg_proxy_digest_checksum_type (digest));
      self->remaining = G_MAXUINT64;
      return self;
    }
  /* skopeo keeps the pipe open until FinishPipe, so a source shorter than @size would leave
   * the last read waiting forever. When the source told its size, stop there instead: the
   * verdict then reports the mismatch. A longer source shows up as surplus bytes. */
  self->remaining = (guint64) (source_size >= 0 ? MIN (size, source_size) : size);
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
 * end-of-stream, or -1 if it was opened without a known size.
 *
 * Returns: the size of the blob in bytes, or -1
 *
 * Since: 1.0
 */
gint64
cimg_proxy_blob_stream_get_size (CImgProxyBlobStream *self)
{
  g_return_val_if_fail (CIMG_PROXY_IS_BLOB_STREAM (self), -1);

  return self->size;
}

/**
 * cimg_proxy_blob_stream_consumed:
 * @self: a blob stream
 * @count: the number of bytes read from the stream's file descriptor directly
 *
 * Tells the stream that @count bytes were taken from its pipe without going through it, with
 * splice(2) on the descriptor from g_file_descriptor_based_get_fd() for example.
 *
 * Once the whole blob went through the descriptor, the next read (which returns
 * end-of-stream) or g_input_stream_close() delivers skopeo's verdict as usual. Without this
 * call the stream believes the blob unread, and closing it abandons the transfer.
 *
 * Since: 1.0
 */
void
cimg_proxy_blob_stream_consumed (CImgProxyBlobStream *self, gsize count)
{
  g_return_if_fail (CIMG_PROXY_IS_BLOB_STREAM (self));
  g_return_if_fail (get_state (self) == BLOB_READING);
  g_return_if_fail (count <= self->remaining);

  self->offset += count;
  self->remaining -= count;
}
