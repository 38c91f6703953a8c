/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * One measurement per run, of libcimgproxy or of the minimal reader beside it, on blobs
 * the caller names; run-benchmarks.py runs it many times and compares. The result is one
 * line of JSON on stdout: bytes moved, wall-clock seconds, the CPU time of this process
 * alone (skopeo is a child and not counted) and its peak RSS; for the minimal reader also
 * the CPU time skopeo used.
 */

#include <cimgproxy/cimgproxy.h>
#include <gio/gfiledescriptorbased.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "minimal-reader.h"

#define BUFFER_SIZE (1024 * 1024)

/* Untimed round trips before a latency run, so that it measures the steady state: the first
 * requests pay for lazy set-up on both sides of the socket. */
#define WARM_UP_REQUESTS 100

typedef struct
{
  const char *mode;
  const char *reference;
  MinimalBlob *blobs;
  size_t n_blobs;
  int requests;
} Job;

typedef struct
{
  guint64 bytes;
  double seconds;
  double cpu_seconds;
  double proxy_cpu_seconds;
  long context_switches;
  long peak_rss_before_kib;
  int requests;
} Result;

/* The peak RSS of this process image. getrusage's ru_maxrss would not do: it survives
 * exec(2), so it would report the forking parent's (Python's) size. */
static long
peak_rss_kib (void)
{
  g_autofree char *status = NULL;
  const char *line;

  if (!g_file_get_contents ("/proc/self/status", &status, NULL, NULL))
    return -1;
  line = strstr (status, "\nVmHWM:");
  return line != NULL ? strtol (line + strlen ("\nVmHWM:"), NULL, 10) : -1;
}

/* The clock and CPU time around the part being measured. */
typedef struct
{
  gint64 start_us;
  double start_cpu;
  long start_switches;
} Stopwatch;

static double
cpu_seconds (struct rusage *usage)
{
  return (double) usage->ru_utime.tv_sec + usage->ru_utime.tv_usec / 1e6 +
         (double) usage->ru_stime.tv_sec + usage->ru_stime.tv_usec / 1e6;
}

static void
stopwatch_start (Stopwatch *watch, Result *result)
{
  struct rusage usage;

  getrusage (RUSAGE_SELF, &usage);
  result->peak_rss_before_kib = peak_rss_kib ();
  watch->start_cpu = cpu_seconds (&usage);
  watch->start_switches = usage.ru_nvcsw + usage.ru_nivcsw;
  watch->start_us = g_get_monotonic_time ();
}

static void
stopwatch_stop (Stopwatch *watch, Result *result)
{
  struct rusage usage;

  result->seconds = (double) (g_get_monotonic_time () - watch->start_us) / G_USEC_PER_SEC;
  getrusage (RUSAGE_SELF, &usage);
  result->cpu_seconds = cpu_seconds (&usage) - watch->start_cpu;
  result->context_switches = usage.ru_nvcsw + usage.ru_nivcsw - watch->start_switches;
}

static guint64
total_size (const Job *job)
{
  guint64 total = 0;

  for (size_t i = 0; i < job->n_blobs; i++)
    total += (guint64) job->blobs[i].size;
  return total;
}

/* --- the minimal reader ------------------------------------------------------------- */

static gboolean
run_minimal (const Job *job, Result *result)
{
  g_autofree char *buffer = g_malloc (BUFFER_SIZE);
  struct rusage usage;
  MinimalProxy proxy;
  Stopwatch watch;
  int64_t image;
  int ret = 0;

  if (g_str_equal (job->mode, "minimal-startup"))
    {
      stopwatch_start (&watch, result);
      ret = minimal_proxy_start (&proxy, "skopeo");
      stopwatch_stop (&watch, result);
      if (ret == 0)
        minimal_proxy_stop (&proxy, NULL);
      return ret == 0;
    }

  if (minimal_proxy_start (&proxy, "skopeo") < 0)
    return FALSE;
  if (minimal_proxy_open_image (&proxy, job->reference, &image) < 0)
    {
      minimal_proxy_stop (&proxy, NULL);
      return FALSE;
    }
  if (g_str_equal (job->mode, "minimal-latency"))
    for (int i = 0; ret == 0 && i < WARM_UP_REQUESTS; i++)
      {
        size_t size;

        ret = minimal_proxy_get_manifest (&proxy, image, &size);
      }

  stopwatch_start (&watch, result);
  if (g_str_equal (job->mode, "minimal-read"))
    {
      for (size_t i = 0; ret == 0 && i < job->n_blobs; i++)
        ret = minimal_proxy_read_blob (&proxy, image, &job->blobs[i], buffer, BUFFER_SIZE);
      result->bytes = total_size (job);
    }
  else if (g_str_equal (job->mode, "minimal-concurrent"))
    {
      ret = minimal_proxy_read_blobs_concurrently (&proxy, image, job->blobs, job->n_blobs, buffer,
                                                   BUFFER_SIZE);
      result->bytes = total_size (job);
    }
  else
    {
      for (int i = 0; ret == 0 && i < job->requests; i++)
        {
          size_t size;

          ret = minimal_proxy_get_manifest (&proxy, image, &size);
          result->bytes += size;
        }
      result->requests = job->requests;
    }
  stopwatch_stop (&watch, result);

  /* What skopeo spent over its whole life, start-up included: where the limit comes from. */
  minimal_proxy_stop (&proxy, &usage);
  result->proxy_cpu_seconds = cpu_seconds (&usage);
  return ret == 0;
}

/* --- libcimgproxy ------------------------------------------------------------------- */

/* Reads a blob to its end, the verdict included, in reads of up to 1 MiB. */
static gboolean
read_blob (CImgProxyBlobStream *blob, char *buffer, guint64 *bytes, GError **error)
{
  gssize n;

  while ((n = g_input_stream_read (G_INPUT_STREAM (blob), buffer, BUFFER_SIZE, NULL, error)) > 0)
    *bytes += (guint64) n;
  return n == 0;
}

/* Moves the blob's bytes from its pipe to /dev/null without copying them through user
 * space, then reads the verdict. The pipe is non-blocking, as for any pollable stream. */
static gboolean
splice_blob (CImgProxyBlobStream *blob, int null_fd, guint64 *bytes, GError **error)
{
  int fd = g_file_descriptor_based_get_fd (G_FILE_DESCRIPTOR_BASED (blob));
  guint64 left = (guint64) cimg_proxy_blob_stream_get_size (blob);
  char byte;

  while (left > 0)
    {
      struct pollfd pfd = { fd, POLLIN, 0 };
      ssize_t n = splice (fd, NULL, null_fd, NULL, left, SPLICE_F_MOVE);

      if (n < 0 && errno == EAGAIN)
        n = poll (&pfd, 1, -1) < 0 ? -1 : 0;
      if (n < 0)
        {
          int errsv = errno;
          g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errsv), "splice: %s",
                       g_strerror (errsv));
          return FALSE;
        }
      left -= (guint64) n;
      *bytes += (guint64) n;
      cimg_proxy_blob_stream_consumed (blob, (gsize) n);
    }
  return g_input_stream_read (G_INPUT_STREAM (blob), &byte, 1, NULL, error) == 0;
}

typedef struct
{
  CImgProxyImage *image;
  const MinimalBlob *blob;
  guint64 bytes;
  GError *error;
} ThreadJob;

static gpointer
read_in_thread (gpointer data)
{
  ThreadJob *job = data;
  g_autofree char *buffer = g_malloc (BUFFER_SIZE);
  g_autoptr (CImgProxyBlobStream) blob =
    cimg_proxy_image_open_blob (job->image, job->blob->digest, job->blob->size, NULL, &job->error);

  if (blob != NULL)
    read_blob (blob, buffer, &job->bytes, &job->error);
  return NULL;
}

static gboolean
read_with_threads (CImgProxyImage *image, const Job *job, guint64 *bytes, GError **error)
{
  g_autofree ThreadJob *jobs = g_new0 (ThreadJob, job->n_blobs);
  g_autofree GThread **threads = g_new0 (GThread *, job->n_blobs);

  for (size_t i = 0; i < job->n_blobs; i++)
    {
      jobs[i] = (ThreadJob){ image, &job->blobs[i], 0, NULL };
      threads[i] = g_thread_new ("bench-reader", read_in_thread, &jobs[i]);
    }
  for (size_t i = 0; i < job->n_blobs; i++)
    {
      g_thread_join (threads[i]);
      *bytes += jobs[i].bytes;
      if (jobs[i].error != NULL)
        {
          if (error != NULL && *error == NULL)
            g_propagate_error (error, jobs[i].error);
          else
            g_error_free (jobs[i].error);
        }
    }
  return error == NULL || *error == NULL;
}

/* The main-loop flavour: every blob opened and read with async calls, from one thread. */
typedef struct
{
  GMainLoop *loop;
  guint pending;
  guint64 bytes;
  GError *error;
} LoopState;

typedef struct
{
  LoopState *state;
  CImgProxyImage *image;
  CImgProxyBlobStream *blob;
  char *buffer;
} LoopReader;

static void
loop_reader_done (LoopReader *reader, GError *error)
{
  LoopState *state = reader->state;

  if (error != NULL && state->error == NULL)
    state->error = error;
  else if (error != NULL)
    g_error_free (error);
  g_clear_object (&reader->blob);
  g_free (reader->buffer);
  g_free (reader);
  if (--state->pending == 0)
    g_main_loop_quit (state->loop);
}

static void
on_read (GObject *source, GAsyncResult *result, gpointer user_data)
{
  LoopReader *reader = user_data;
  GError *error = NULL;
  gssize n = g_input_stream_read_finish (G_INPUT_STREAM (source), result, &error);

  if (n <= 0)
    {
      loop_reader_done (reader, error);
      return;
    }
  reader->state->bytes += (guint64) n;
  g_input_stream_read_async (G_INPUT_STREAM (reader->blob), reader->buffer, BUFFER_SIZE,
                             G_PRIORITY_DEFAULT, NULL, on_read, reader);
}

static void
on_blob_opened (GObject *source, GAsyncResult *result, gpointer user_data)
{
  LoopReader *reader = user_data;
  GError *error = NULL;

  reader->blob = cimg_proxy_image_open_blob_finish (reader->image, result, &error);
  if (reader->blob == NULL)
    {
      loop_reader_done (reader, error);
      return;
    }
  reader->buffer = g_malloc (BUFFER_SIZE);
  g_input_stream_read_async (G_INPUT_STREAM (reader->blob), reader->buffer, BUFFER_SIZE,
                             G_PRIORITY_DEFAULT, NULL, on_read, reader);
}

static gboolean
read_with_main_loop (CImgProxyImage *image, const Job *job, guint64 *bytes, GError **error)
{
  g_autoptr (GMainContext) context = g_main_context_new ();
  g_autoptr (GMainLoop) loop = g_main_loop_new (context, FALSE);
  LoopState state = { loop, (guint) job->n_blobs, 0, NULL };

  g_main_context_push_thread_default (context);
  for (size_t i = 0; i < job->n_blobs; i++)
    {
      LoopReader *reader = g_new0 (LoopReader, 1);

      reader->state = &state;
      reader->image = image;
      cimg_proxy_image_open_blob_async (image, job->blobs[i].digest, job->blobs[i].size, NULL,
                                        on_blob_opened, reader);
    }
  g_main_loop_run (loop);
  g_main_context_pop_thread_default (context);

  *bytes = state.bytes;
  if (state.error != NULL)
    {
      g_propagate_error (error, state.error);
      return FALSE;
    }
  return TRUE;
}

static gboolean
run_library (const Job *job, Result *result, GError **error)
{
  g_autoptr (CImgProxyClient) client = NULL;
  g_autoptr (CImgProxyImage) image = NULL;
  g_autofree char *buffer = g_malloc (BUFFER_SIZE);
  Stopwatch watch;
  gboolean ok = TRUE;

  if (g_str_equal (job->mode, "startup"))
    {
      stopwatch_start (&watch, result);
      client = cimg_proxy_client_new (NULL, error);
      stopwatch_stop (&watch, result);
      return client != NULL && cimg_proxy_client_close (client, NULL, error);
    }

  client = cimg_proxy_client_new (NULL, error);
  if (client == NULL)
    return FALSE;
  image = cimg_proxy_client_open_image (client, job->reference, NULL, error);
  if (image == NULL)
    return FALSE;
  if (g_str_equal (job->mode, "latency"))
    for (int i = 0; i < WARM_UP_REQUESTS; i++)
      {
        g_autoptr (GBytes) manifest = cimg_proxy_image_get_manifest (image, NULL, NULL, error);

        if (manifest == NULL)
          return FALSE;
      }

  stopwatch_start (&watch, result);
  if (g_str_equal (job->mode, "read") || g_str_equal (job->mode, "splice"))
    {
      int null_fd = open ("/dev/null", O_WRONLY | O_CLOEXEC);

      for (size_t i = 0; ok && i < job->n_blobs; i++)
        {
          g_autoptr (CImgProxyBlobStream) blob = cimg_proxy_image_open_blob (
            image, job->blobs[i].digest, job->blobs[i].size, NULL, error);

          ok = blob != NULL && (g_str_equal (job->mode, "read")
                                  ? read_blob (blob, buffer, &result->bytes, error)
                                  : splice_blob (blob, null_fd, &result->bytes, error));
        }
      close (null_fd);
    }
  else if (g_str_equal (job->mode, "threads"))
    ok = read_with_threads (image, job, &result->bytes, error);
  else if (g_str_equal (job->mode, "mainloop"))
    ok = read_with_main_loop (image, job, &result->bytes, error);
  else
    {
      for (int i = 0; ok && i < job->requests; i++)
        {
          g_autoptr (GBytes) manifest = cimg_proxy_image_get_manifest (image, NULL, NULL, error);

          ok = manifest != NULL;
          if (ok)
            result->bytes += g_bytes_get_size (manifest);
        }
      result->requests = job->requests;
    }
  stopwatch_stop (&watch, result);

  return ok && cimg_proxy_client_close (client, NULL, error);
}

/* --- driver ------------------------------------------------------------------------- */

static const char *const modes[] = {
  "minimal-read", "minimal-concurrent", "minimal-latency", "minimal-startup", "read", "splice",
  "threads",      "mainloop",           "latency",         "startup",
};

static gboolean
parse_blob (const char *arg, MinimalBlob *blob)
{
  const char *colon = strrchr (arg, ':');
  char *end;

  if (colon == NULL || colon == arg)
    return FALSE;
  blob->digest = g_strndup (arg, (gsize) (colon - arg));
  blob->size = g_ascii_strtoll (colon + 1, &end, 10);
  return *end == '\0' && blob->size > 0;
}

int
main (int argc, char **argv)
{
  g_autoptr (GError) error = NULL;
  Job job = { 0 };
  Result result = { 0 };
  gboolean ok;

  if (argc < 3 || !g_strv_contains ((const char *const *) modes, argv[1]) ||
      argc - 3 > MINIMAL_MAX_BLOBS)
    {
      fprintf (stderr,
               "Usage: %s MODE REFERENCE [DIGEST:SIZE...]\n"
               "MODE: minimal-read, minimal-concurrent, minimal-latency, minimal-startup,\n"
               "      read, splice, threads, mainloop, latency or startup\n"
               "The latency modes make $CIMG_BENCH_REQUESTS requests (10000).\n",
               argv[0]);
      return 2;
    }

  job.mode = argv[1];
  job.reference = argv[2];
  job.n_blobs = (size_t) (argc - 3);
  job.blobs = g_new0 (MinimalBlob, MAX (job.n_blobs, 1));
  job.requests =
    g_getenv ("CIMG_BENCH_REQUESTS") != NULL ? atoi (g_getenv ("CIMG_BENCH_REQUESTS")) : 10000;
  for (size_t i = 0; i < job.n_blobs; i++)
    if (!parse_blob (argv[3 + i], &job.blobs[i]))
      {
        fprintf (stderr, "%s: not DIGEST:SIZE: %s\n", argv[0], argv[3 + i]);
        return 2;
      }

  if (g_str_has_prefix (job.mode, "minimal-"))
    ok = run_minimal (&job, &result);
  else
    ok = run_library (&job, &result, &error);
  if (!ok)
    {
      fprintf (stderr, "%s %s: %s\n", argv[0], job.mode, error != NULL ? error->message : "failed");
      return 1;
    }

  printf ("{\"mode\": \"%s\", \"bytes\": %" G_GUINT64_FORMAT ", \"seconds\": %.6f, "
          "\"cpu_seconds\": %.6f, \"proxy_cpu_seconds\": %.6f, \"context_switches\": %ld, "
          "\"requests\": %d, "
          "\"peak_rss_before_kib\": %ld, \"peak_rss_kib\": %ld}\n",
          job.mode, result.bytes, result.seconds, result.cpu_seconds, result.proxy_cpu_seconds,
          result.context_switches, result.requests, result.peak_rss_before_kib, peak_rss_kib ());

  for (size_t i = 0; i < job.n_blobs; i++)
    g_free ((char *) job.blobs[i].digest);
  g_free (job.blobs);
  return 0;
}
