/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The asynchronous API, cancellation, idle timeouts and concurrent pulls, against the real
 * skopeo and, for stalls it cannot be made to produce, the fake proxy.
 */

#include "test-util.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <gio/gfiledescriptorbased.h>

/* Runs the default main context until the callback stored a result in *@result. */
static void
on_result (GObject *source, GAsyncResult *result, gpointer user_data)
{
  *(GAsyncResult **) user_data = g_object_ref (result);
}

static GAsyncResult *
wait_for (GAsyncResult **result)
{
  while (*result == NULL)
    g_main_context_iteration (NULL, TRUE);
  return *result;
}

static CImgProxyClient *
new_fake_client (const char *mode, guint idle_timeout)
{
  const char *argv[] = { g_getenv ("CIMG_FAKE_PROXY"), mode, NULL };

  assert_non_null (argv[0]);
  return test_new_client ("skopeo-argv", argv, "idle-timeout", idle_timeout, NULL);
}

static CImgProxyImage *
open_oci (CImgProxyClient *client, const char *layout)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *ref = test_oci_ref (layout, "latest");
  CImgProxyImage *image = cimg_proxy_client_open_image (client, ref, NULL, &error);

  test_assert_no_error (error);
  return image;
}

static CImgProxyBlobStream *
open_layer (CImgProxyImage *image, const char *key, guint index)
{
  g_autoptr (GError) error = NULL;
  JsonObject *layer = json_array_get_object_element (test_expected_layers (key), index);
  CImgProxyBlobStream *blob =
    cimg_proxy_image_open_blob (image, json_object_get_string_member (layer, "digest"),
                                json_object_get_int_member (layer, "size"), NULL, &error);

  test_assert_no_error (error);
  return blob;
}

static const char *
layer_digest (const char *key, guint index)
{
  return json_object_get_string_member (
    json_array_get_object_element (test_expected_layers (key), index), "digest");
}

/* A blob of the fake proxy, which serves whatever digest it is asked for. The image stays
 * open as long as the test: closing it would queue a CloseImage behind the blob's transfer. */
static CImgProxyBlobStream *
open_fake_blob (CImgProxyClient *client, gint64 size, CImgProxyImage **out_image)
{
  g_autoptr (GError) error = NULL;
  CImgProxyBlobStream *blob;

  *out_image = cimg_proxy_client_open_image (client, "oci:/fake:latest", NULL, &error);
  test_assert_no_error (error);
  blob =
    cimg_proxy_image_open_blob (*out_image, layer_digest ("multi:latest", 0), size, NULL, &error);
  test_assert_no_error (error);
  return blob;
}

static void
assert_layer_reads (CImgProxyImage *image, const char *key, guint index)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (CImgProxyBlobStream) blob = open_layer (image, key, index);
  g_autofree char *digest = test_read_digest (G_INPUT_STREAM (blob), 65536, NULL, &error);

  test_assert_no_error (error);
  assert_string_equal (digest, layer_digest (key, index));
}

/* One layer read with read_bytes_async until end-of-stream, on the main loop. */
typedef struct
{
  GInputStream *stream;
  GChecksum *checksum;
  GCancellable *cancellable;
  char *digest; /* set at the end */
  GError *error;
  guint64 size;
} AsyncReader;

static void read_more (AsyncReader *reader);

static void
on_bytes (GObject *source, GAsyncResult *result, gpointer user_data)
{
  AsyncReader *reader = user_data;
  g_autoptr (GBytes) bytes =
    g_input_stream_read_bytes_finish (G_INPUT_STREAM (source), result, &reader->error);

  if (bytes == NULL)
    {
      reader->digest = g_strdup ("error");
      return;
    }
  if (g_bytes_get_size (bytes) == 0)
    {
      reader->digest = g_strconcat ("sha256:", g_checksum_get_string (reader->checksum), NULL);
      return;
    }
  g_checksum_update (reader->checksum, g_bytes_get_data (bytes, NULL), g_bytes_get_size (bytes));
  reader->size += g_bytes_get_size (bytes);
  read_more (reader);
}

static void
read_more (AsyncReader *reader)
{
  g_input_stream_read_bytes_async (reader->stream, 1024 * 1024, G_PRIORITY_DEFAULT,
                                   reader->cancellable, on_bytes, reader);
}

static void
async_reader_start (AsyncReader *reader, CImgProxyBlobStream *blob)
{
  reader->stream = G_INPUT_STREAM (blob);
  reader->checksum = g_checksum_new (G_CHECKSUM_SHA256);
  read_more (reader);
}

static void
async_reader_clear (AsyncReader *reader)
{
  g_checksum_free (reader->checksum);
  g_free (reader->digest);
  g_clear_error (&reader->error);
}

static gboolean
count_tick (gpointer user_data)
{
  (*(guint *) user_data)++;
  return G_SOURCE_CONTINUE;
}

static void
test_async_flow (void **state)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GAsyncResult) result = NULL;
  g_autoptr (CImgProxyClient) client = NULL;
  g_autoptr (CImgProxyImage) image = NULL;
  g_autoptr (GBytes) manifest = NULL;
  g_autoptr (GBytes) config = NULL;
  g_autoptr (GPtrArray) layers = NULL;
  g_autofree char *digest = NULL;
  g_autofree char *ref = test_oci_ref ("wide", "latest");
  AsyncReader readers[4] = { { 0 } };
  CImgProxyBlobStream *blobs[4];
  guint ticks = 0;
  guint ticker;

  cimg_proxy_client_new_async (NULL, on_result, &result);
  client = cimg_proxy_client_new_finish (wait_for (&result), &error);
  test_assert_no_error (error);
  g_clear_object (&result);

  cimg_proxy_client_open_image_async (client, ref, NULL, on_result, &result);
  image = cimg_proxy_client_open_image_finish (client, wait_for (&result), &error);
  test_assert_no_error (error);
  g_clear_object (&result);

  cimg_proxy_image_get_manifest_async (image, NULL, on_result, &result);
  manifest = cimg_proxy_image_get_manifest_finish (image, wait_for (&result), &digest, &error);
  test_assert_no_error (error);
  assert_string_equal (
    digest, json_object_get_string_member (test_expected_image ("wide:latest"), "manifest_digest"));
  g_clear_object (&result);

  cimg_proxy_image_get_config_async (image, NULL, on_result, &result);
  config = cimg_proxy_image_get_config_finish (image, wait_for (&result), &error);
  test_assert_no_error (error);
  assert_non_null (strstr (g_bytes_get_data (config, NULL), "diff_ids"));
  g_clear_object (&result);

  cimg_proxy_image_get_layer_info_async (image, NULL, on_result, &result);
  layers = cimg_proxy_image_get_layer_info_finish (image, wait_for (&result), &error);
  test_assert_no_error (error);
  assert_int_equal (layers->len, 4);
  g_clear_object (&result);

  /* All four at once, on this thread's main loop, which keeps running meanwhile. */
  for (guint i = 0; i < 4; i++)
    {
      CImgProxyLayerInfo *layer = g_ptr_array_index (layers, i);

      cimg_proxy_image_open_blob_async (image, cimg_proxy_layer_info_get_digest (layer),
                                        cimg_proxy_layer_info_get_size (layer), NULL, on_result,
                                        &result);
      blobs[i] = cimg_proxy_image_open_blob_finish (image, wait_for (&result), &error);
      test_assert_no_error (error);
      g_clear_object (&result);
      assert_true (G_IS_POLLABLE_INPUT_STREAM (blobs[i]));
    }
  ticker = g_timeout_add (1, count_tick, &ticks);
  for (guint i = 0; i < 4; i++)
    async_reader_start (&readers[i], blobs[i]);
  for (guint i = 0; i < 4; i++)
    while (readers[i].digest == NULL)
      g_main_context_iteration (NULL, TRUE);
  g_source_remove (ticker);

  for (guint i = 0; i < 4; i++)
    {
      test_assert_no_error (readers[i].error);
      assert_string_equal (readers[i].digest, layer_digest ("wide:latest", i));
      assert_int_equal (readers[i].size,
                        cimg_proxy_layer_info_get_size (g_ptr_array_index (layers, i)));
      async_reader_clear (&readers[i]);
      g_object_unref (blobs[i]);
    }
  assert_true (ticks > 0);

  cimg_proxy_image_close_async (image, NULL, on_result, &result);
  assert_true (cimg_proxy_image_close_finish (image, wait_for (&result), &error));
  test_assert_no_error (error);
  g_clear_object (&result);

  cimg_proxy_client_close_async (client, NULL, on_result, &result);
  assert_true (cimg_proxy_client_close_finish (client, wait_for (&result), &error));
  test_assert_no_error (error);
}

static void
test_async_cancel_before (void **state)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GAsyncResult) result = NULL;
  g_autoptr (CImgProxyClient) client = test_new_client (NULL, NULL);
  g_autoptr (GCancellable) cancellable = g_cancellable_new ();
  g_autofree char *ref = test_oci_ref ("multi", "latest");
  g_autoptr (CImgProxyImage) image = NULL;

  g_cancellable_cancel (cancellable);
  cimg_proxy_client_open_image_async (client, ref, cancellable, on_result, &result);
  image = cimg_proxy_client_open_image_finish (client, wait_for (&result), &error);
  assert_null (image);
  test_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);

  image = open_oci (client, "multi");
  assert_layer_reads (image, "multi:latest", 0);
}

/* Cancelling a read halfway abandons the blob; the client serves the next request. */
static void
test_cancel_during (void **state)
{
  g_autoptr (CImgProxyClient) client = test_new_client (NULL, NULL);
  g_autoptr (CImgProxyImage) image = open_oci (client, "wide");

  for (int async = 0; async <= 1; async++)
    {
      g_autoptr (GError) error = NULL;
      g_autoptr (GCancellable) cancellable = g_cancellable_new ();
      g_autoptr (CImgProxyBlobStream) blob = open_layer (image, "wide:latest", async);
      g_autoptr (GBytes) bytes = NULL;
      g_autoptr (GAsyncResult) result = NULL;
      char buffer[65536];

      assert_true (g_input_stream_read (G_INPUT_STREAM (blob), buffer, sizeof buffer, cancellable,
                                        &error) > 0);
      g_cancellable_cancel (cancellable);
      if (async)
        {
          g_input_stream_read_bytes_async (G_INPUT_STREAM (blob), sizeof buffer, G_PRIORITY_DEFAULT,
                                           cancellable, on_result, &result);
          bytes =
            g_input_stream_read_bytes_finish (G_INPUT_STREAM (blob), wait_for (&result), &error);
          assert_null (bytes);
        }
      else
        assert_int_equal (
          g_input_stream_read (G_INPUT_STREAM (blob), buffer, sizeof buffer, cancellable, &error),
          -1);
      test_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
      g_clear_error (&error);

      /* The transfer is over for good. */
      assert_int_equal (
        g_input_stream_read (G_INPUT_STREAM (blob), buffer, sizeof buffer, NULL, &error), -1);
      test_assert_error (error, CIMG_PROXY_ERROR, CIMG_PROXY_ERROR_CLOSED);
      assert_layer_reads (image, "wide:latest", 2 + async);
    }
}

/* A cancellable cancelled after the end changes nothing: the verdict was already in. */
static void
test_cancel_after (void **state)
{
  g_autoptr (CImgProxyClient) client = test_new_client (NULL, NULL);
  g_autoptr (CImgProxyImage) image = open_oci (client, "multi");

  for (int async = 0; async <= 1; async++)
    {
      g_autoptr (GError) error = NULL;
      g_autoptr (GCancellable) cancellable = g_cancellable_new ();
      g_autoptr (CImgProxyBlobStream) blob = open_layer (image, "multi:latest", 1);
      AsyncReader reader = { .cancellable = cancellable };
      char buffer[65536];

      if (async)
        {
          async_reader_start (&reader, blob);
          while (reader.digest == NULL)
            g_main_context_iteration (NULL, TRUE);
          test_assert_no_error (reader.error);
          assert_string_equal (reader.digest, layer_digest ("multi:latest", 1));
          async_reader_clear (&reader);
        }
      else
        while (g_input_stream_read (G_INPUT_STREAM (blob), buffer, sizeof buffer, cancellable,
                                    &error) > 0)
          ;
      test_assert_no_error (error);
      g_cancellable_cancel (cancellable);
      assert_true (g_input_stream_close (G_INPUT_STREAM (blob), NULL, &error));
      test_assert_no_error (error);
      assert_layer_reads (image, "multi:latest", async);
    }
}

static gpointer
cancel_from_thread (gpointer cancellable)
{
  g_usleep (200 * 1000);
  g_cancellable_cancel (cancellable);
  return NULL;
}

/* A read blocked on a pipe that gets no data ends promptly when cancelled. */
static void
test_cancel_blocked_read (void **state)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (CImgProxyClient) client = new_fake_client ("stall-blob", 0);
  g_autoptr (CImgProxyImage) image = NULL;
  g_autoptr (CImgProxyImage) again = NULL;
  g_autoptr (CImgProxyBlobStream) blob = NULL;
  g_autoptr (GCancellable) cancellable = g_cancellable_new ();
  const char *digest = layer_digest ("multi:latest", 0);
  char buffer[4096];
  GThread *canceller;
  gint64 start;

  image = cimg_proxy_client_open_image (client, "oci:/stalled:latest", NULL, &error);
  test_assert_no_error (error);
  blob = cimg_proxy_image_open_blob (image, digest, 5000, NULL, &error);
  test_assert_no_error (error);

  canceller = g_thread_new ("canceller", cancel_from_thread, cancellable);
  start = g_get_monotonic_time ();
  while (g_input_stream_read (G_INPUT_STREAM (blob), buffer, sizeof buffer, cancellable, &error) >
         0)
    ;
  g_thread_join (canceller);
  test_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  assert_true (g_get_monotonic_time () - start < 5 * G_USEC_PER_SEC);
  g_clear_error (&error);

  /* The abandoned pipe is finished on the way to the next request, which is answered. */
  again = cimg_proxy_client_open_image (client, "oci:/stalled:latest", NULL, &error);
  test_assert_no_error (error);
  assert_non_null (again);
}

static void
assert_stopped_for (CImgProxyClient *client, const char *reason)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (CImgProxyImage) image =
    cimg_proxy_client_open_image (client, "oci:/x:y", NULL, &error);

  assert_null (image);
  test_assert_error (error, CIMG_PROXY_ERROR, CIMG_PROXY_ERROR_CLOSED);
  if (strstr (error->message, reason) == NULL)
    fail_msg ("“%s” does not say “%s”", error->message, reason);
}

/* No byte for the idle timeout: the read fails, the proxy is stopped, later calls say why. */
static void
test_idle_timeout_blob (void **state)
{
  for (int async = 0; async <= 1; async++)
    {
      g_autoptr (GError) error = NULL;
      g_autoptr (CImgProxyClient) client = new_fake_client ("stall-blob", 1);
      g_autoptr (CImgProxyImage) image = NULL;
      g_autoptr (CImgProxyBlobStream) blob = NULL;
      g_autoptr (GAsyncResult) result = NULL;
      g_autoptr (GBytes) bytes = NULL;
      gint64 start;
      char buffer[4096];
      gssize n;

      image = cimg_proxy_client_open_image (client, "oci:/stalled:latest", NULL, &error);
      test_assert_no_error (error);
      blob =
        cimg_proxy_image_open_blob (image, layer_digest ("multi:latest", 0), 5000, NULL, &error);
      test_assert_no_error (error);
      n = g_input_stream_read (G_INPUT_STREAM (blob), buffer, sizeof buffer, NULL, &error);
      assert_int_equal (n, 1000);

      start = g_get_monotonic_time ();
      if (async)
        {
          g_input_stream_read_bytes_async (G_INPUT_STREAM (blob), sizeof buffer, G_PRIORITY_DEFAULT,
                                           NULL, on_result, &result);
          bytes =
            g_input_stream_read_bytes_finish (G_INPUT_STREAM (blob), wait_for (&result), &error);
          assert_null (bytes);
        }
      else
        assert_int_equal (
          g_input_stream_read (G_INPUT_STREAM (blob), buffer, sizeof buffer, NULL, &error), -1);
      test_assert_error (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
      assert_true (g_get_monotonic_time () - start >= G_USEC_PER_SEC / 2);
      assert_true (g_get_monotonic_time () - start < 10 * G_USEC_PER_SEC);
      assert_stopped_for (client, "No data arrived");
    }
}

/* A transfer that takes longer than the idle timeout, with no gap as long, is not a stall:
 * the deadline runs from each read's start, not from the first. */
static void
test_idle_timeout_slow_blob (void **state)
{
  g_autoptr (CImgProxyClient) client = new_fake_client ("trickle-blob", 1);
  g_autoptr (CImgProxyImage) image = NULL;
  g_autoptr (CImgProxyBlobStream) blob = open_fake_blob (client, 5000, &image);
  g_autofree char *expected = g_strnfill (5000, 't');
  g_autofree char *expected_hash =
    g_compute_checksum_for_string (G_CHECKSUM_SHA256, expected, 5000);
  g_autofree char *expected_digest = g_strconcat ("sha256:", expected_hash, NULL);
  AsyncReader reader = { 0 };
  gint64 start;

  start = g_get_monotonic_time ();
  async_reader_start (&reader, blob);
  while (reader.digest == NULL)
    g_main_context_iteration (NULL, TRUE);
  test_assert_no_error (reader.error);
  assert_true (g_get_monotonic_time () - start > 3 * G_USEC_PER_SEC / 2);
  assert_int_equal (reader.size, 5000);
  assert_string_equal (reader.digest, expected_digest);
  async_reader_clear (&reader);
}

/* Between asynchronous reads nothing polls the pipe: data that arrives while nobody reads
 * wakes the main loop once, not at every iteration, and the next read still gets it. */
static void
test_async_quiet_between_reads (void **state)
{
  g_autoptr (CImgProxyClient) client = new_fake_client ("trickle-blob", 0);
  g_autoptr (CImgProxyImage) image = NULL;
  g_autoptr (CImgProxyBlobStream) blob = open_fake_blob (client, 5000, &image);
  g_autoptr (GError) error = NULL;
  AsyncReader reader = { 0 };
  guint dispatched = 0;

  /* The second read has to wait for its bytes; then nobody reads while the third arrive. */
  for (int i = 0; i < 2; i++)
    {
      g_autoptr (GAsyncResult) result = NULL;
      g_autoptr (GBytes) bytes = NULL;

      g_input_stream_read_bytes_async (G_INPUT_STREAM (blob), 1000, G_PRIORITY_DEFAULT, NULL,
                                       on_result, &result);
      bytes = g_input_stream_read_bytes_finish (G_INPUT_STREAM (blob), wait_for (&result), &error);
      test_assert_no_error (error);
      assert_int_equal (g_bytes_get_size (bytes), 1000);
    }
  for (int i = 0; i < 100; i++)
    {
      g_usleep (10 * 1000);
      if (g_main_context_iteration (NULL, FALSE))
        dispatched++;
    }
  assert_in_range (dispatched, 0, 2);

  async_reader_start (&reader, blob);
  while (reader.digest == NULL)
    g_main_context_iteration (NULL, TRUE);
  test_assert_no_error (reader.error);
  assert_int_equal (reader.size, 3000);
  async_reader_clear (&reader);
}

/* open_image, or open_image_async on the main loop. */
static CImgProxyImage *
open_image_either_way (CImgProxyClient *client,
                       const char *reference,
                       gboolean async,
                       GError **error)
{
  g_autoptr (GAsyncResult) result = NULL;

  if (!async)
    return cimg_proxy_client_open_image (client, reference, NULL, error);
  cimg_proxy_client_open_image_async (client, reference, NULL, on_result, &result);
  return cimg_proxy_client_open_image_finish (client, wait_for (&result), error);
}

static void
test_idle_timeout_reply (void **state)
{
  for (int async = 0; async <= 1; async++)
    {
      g_autoptr (GError) error = NULL;
      g_autoptr (CImgProxyClient) client = new_fake_client ("stall-reply", 1);
      g_autoptr (CImgProxyImage) image = NULL;
      gint64 start = g_get_monotonic_time ();

      image = open_image_either_way (client, "oci:/x:y", async, &error);
      assert_null (image);
      test_assert_error (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
      assert_true (g_get_monotonic_time () - start < 10 * G_USEC_PER_SEC);
      assert_stopped_for (client, "got no answer to OpenImage");
    }
}

/* The proxy dies while a request is in flight: its exit status and stderr explain. */
static void
test_exit_mid_request (void **state)
{
  for (int async = 0; async <= 1; async++)
    {
      g_autoptr (GError) error = NULL;
      g_autoptr (CImgProxyClient) client = new_fake_client ("exit-on=OpenImage", 0);
      g_autoptr (CImgProxyImage) image = open_image_either_way (client, "oci:/x:y", async, &error);

      assert_null (image);
      test_assert_error (error, CIMG_PROXY_ERROR, CIMG_PROXY_ERROR_PROXY_EXITED);
      assert_non_null (strstr (error->message, "exited with status 7"));
      assert_non_null (strstr (error->message, "dying in OpenImage"));
      assert_stopped_for (client, "exited with status 7");
    }
}

static void
test_killed_mid_stream_async (void **state)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (CImgProxyClient) client = test_new_client (NULL, NULL);
  g_autoptr (CImgProxyImage) image = open_oci (client, "wide");
  g_autoptr (CImgProxyBlobStream) blob = open_layer (image, "wide:latest", 0);
  AsyncReader reader = { 0 };
  char buffer[4096];

  assert_int_equal (
    g_input_stream_read (G_INPUT_STREAM (blob), buffer, sizeof buffer, NULL, &error),
    sizeof buffer);
  kill (_cimg_proxy_client_get_pid (client), SIGKILL);
  async_reader_start (&reader, blob);
  while (reader.digest == NULL)
    g_main_context_iteration (NULL, TRUE);
  test_assert_error (reader.error, CIMG_PROXY_ERROR, CIMG_PROXY_ERROR_PROXY_EXITED);
  assert_non_null (strstr (reader.error->message, "killed by signal 9"));
  async_reader_clear (&reader);
}

typedef struct
{
  CImgProxyClient *client;
  guint seed;
  char *failure;
} SharedJob;

static gpointer
shared_client_thread (gpointer data)
{
  SharedJob *job = data;
  const char *layouts[] = { "multi", "wide" };

  for (guint round = 0; round < 12 && job->failure == NULL; round++)
    {
      const char *layout = layouts[(job->seed + round) % 2];
      g_autofree char *key = g_strconcat (layout, ":latest", NULL);
      g_autofree char *ref = test_oci_ref (layout, "latest");
      guint index = (job->seed + round) % 3;
      g_autoptr (GError) error = NULL;
      g_autoptr (CImgProxyImage) image =
        cimg_proxy_client_open_image (job->client, ref, NULL, &error);
      g_autoptr (GBytes) manifest = NULL;
      g_autoptr (CImgProxyBlobStream) blob = NULL;
      g_autofree char *digest = NULL;

      if (image != NULL)
        manifest = cimg_proxy_image_get_manifest (image, NULL, NULL, &error);
      if (manifest != NULL)
        blob = cimg_proxy_image_open_blob (
          image, layer_digest (key, index),
          json_object_get_int_member (
            json_array_get_object_element (test_expected_layers (key), index), "size"),
          NULL, &error);
      if (blob != NULL)
        digest = test_read_digest (G_INPUT_STREAM (blob), 32768 + job->seed * 1000, NULL, &error);
      if (digest != NULL && !cimg_proxy_image_close (image, NULL, &error))
        g_clear_pointer (&digest, g_free);

      if (digest == NULL)
        job->failure = g_strdup (error->message);
      else if (!g_str_equal (digest, layer_digest (key, index)))
        job->failure = g_strdup_printf ("%s layer %u read as %s", key, index, digest);
    }
  return NULL;
}

static void
test_eight_threads_one_client (void **state)
{
  g_autoptr (CImgProxyClient) client = test_new_client (NULL, NULL);
  SharedJob jobs[8];
  GThread *threads[8];

  /* expected.json is parsed once, before the threads share it. */
  test_expected_layers ("multi:latest");
  for (guint i = 0; i < 8; i++)
    {
      jobs[i] = (SharedJob){ client, i, NULL };
      threads[i] = g_thread_new ("shared", shared_client_thread, &jobs[i]);
    }
  for (guint i = 0; i < 8; i++)
    g_thread_join (threads[i]);
  for (guint i = 0; i < 8; i++)
    if (jobs[i].failure != NULL)
      fail_msg ("thread %u: %s", i, jobs[i].failure);
}

/* Layer overlap, from the progress signal: how many layers were in flight at most. */
typedef struct
{
  GHashTable *started;
  guint active;
  guint max_active;
  guint emissions;
} Overlap;

static void
on_progress (CImgProxyPuller *puller,
             CImgProxyLayerInfo *layer,
             guint64 done,
             guint64 total,
             gpointer user_data)
{
  Overlap *overlap = user_data;
  const char *digest = cimg_proxy_layer_info_get_digest (layer);

  assert_int_equal (total, cimg_proxy_layer_info_get_size (layer));
  assert_true (done <= total);
  overlap->emissions++;
  if (done == 0 && g_hash_table_add (overlap->started, g_strdup (digest)))
    {
      overlap->active++;
      overlap->max_active = MAX (overlap->max_active, overlap->active);
    }
  if (done == total)
    overlap->active--;
}

static void
assert_directory_holds_layers (const char *dir, const char *key, gboolean all)
{
  JsonArray *layers = test_expected_layers (key);
  g_autoptr (GDir) listing = g_dir_open (dir, 0, NULL);
  const char *name;
  guint count = 0;

  /* Whatever is there is complete and verified: named after, and hashing to, its digest. */
  while ((name = g_dir_read_name (listing)) != NULL)
    {
      g_autofree char *path = g_build_filename (dir, name, NULL);
      g_autofree char *contents = NULL;
      g_autofree char *digest = NULL;
      gsize size = 0;

      assert_true (g_file_get_contents (path, &contents, &size, NULL));
      digest = test_sha256_digest (contents, size);
      assert_string_equal (digest + strlen ("sha256:"), name);
      count++;
    }
  if (all)
    assert_int_equal (count, json_array_get_length (layers));
}

static void
test_puller_to_directory (void **state)
{
  g_autoptr (CImgProxyClient) client = test_new_client (NULL, NULL);
  g_autoptr (CImgProxyImage) image = open_oci (client, "wide");

  for (guint parallel = 1; parallel <= 4; parallel += 3)
    {
      g_autoptr (GError) error = NULL;
      g_autoptr (CImgProxyPuller) puller = cimg_proxy_puller_new (image, parallel);
      g_autofree char *tmp = test_make_tmpdir ();
      g_autoptr (GFile) dir = g_file_new_for_path (tmp);
      Overlap overlap = { g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL) };

      g_signal_connect (puller, "progress", G_CALLBACK (on_progress), &overlap);
      assert_true (cimg_proxy_puller_pull_to_directory (puller, dir, NULL, &error));
      test_assert_no_error (error);
      assert_directory_holds_layers (tmp, "wide:latest", TRUE);
      assert_int_equal (g_hash_table_size (overlap.started), 4);
      assert_int_equal (overlap.active, 0);
      assert_true (overlap.emissions >= 4 * 3);
      /* One at a time means one at a time; four allowed means they really overlap. */
      if (parallel == 1)
        assert_int_equal (overlap.max_active, 1);
      else
        assert_true (overlap.max_active > 1);

      g_hash_table_unref (overlap.started);
      test_remove_tree (tmp);
    }
}

static void
test_puller_async_failure (void **state)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GAsyncResult) result = NULL;
  g_autoptr (CImgProxyClient) client = test_new_client (NULL, NULL);
  g_autoptr (CImgProxyImage) image = open_oci (client, "corrupt");
  g_autoptr (CImgProxyPuller) puller = cimg_proxy_puller_new (image, 3);
  g_autofree char *tmp = test_make_tmpdir ();
  g_autoptr (GFile) dir = g_file_new_for_path (tmp);
  g_autofree char *corrupt_path = NULL;
  guint corrupt_index =
    json_object_get_int_member (test_expected_image ("corrupt:latest"), "corrupt_layer_index");

  cimg_proxy_puller_pull_to_directory_async (puller, dir, NULL, on_result, &result);
  assert_false (cimg_proxy_puller_pull_to_directory_finish (puller, wait_for (&result), &error));
  test_assert_error (error, CIMG_PROXY_ERROR, CIMG_PROXY_ERROR_VERIFICATION_FAILED);

  /* The corrupt layer left nothing behind, and nothing half-written is left either. */
  corrupt_path = g_build_filename (
    tmp, layer_digest ("corrupt:latest", corrupt_index) + strlen ("sha256:"), NULL);
  assert_false (g_file_test (corrupt_path, G_FILE_TEST_EXISTS));
  assert_directory_holds_layers (tmp, "corrupt:latest", FALSE);
  test_remove_tree (tmp);

  /* And the client serves the next request. */
  g_clear_object (&image);
  image = open_oci (client, "multi");
  assert_layer_reads (image, "multi:latest", 2);
}

/* The pipe itself, for splice(2): bytes taken from it directly, then accounted for. */
static void
test_fd_based_splice (void **state)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (CImgProxyClient) client = test_new_client (NULL, NULL);
  g_autoptr (CImgProxyImage) image = open_oci (client, "multi");
  g_autoptr (CImgProxyBlobStream) blob = open_layer (image, "multi:latest", 1);
  g_autofree char *tmp = test_make_tmpdir ();
  g_autofree char *path = g_build_filename (tmp, "layer", NULL);
  g_autofree char *contents = NULL;
  g_autofree char *digest = NULL;
  gsize size = (gsize) cimg_proxy_blob_stream_get_size (blob);
  gsize copied = 0;
  gsize length = 0;
  int in_fd = g_file_descriptor_based_get_fd (G_FILE_DESCRIPTOR_BASED (blob));
  int out_fd = open (path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
  char buffer[16];

  assert_true (in_fd >= 0 && out_fd >= 0);
  while (copied < size)
    {
      struct pollfd pfd = { in_fd, POLLIN, 0 };
      ssize_t n = splice (in_fd, NULL, out_fd, NULL, size - copied, 0);

      if (n < 0 && errno == EAGAIN)
        {
          poll (&pfd, 1, 10000);
          continue;
        }
      assert_true (n > 0);
      copied += (gsize) n;
    }
  close (out_fd);
  cimg_proxy_blob_stream_consumed (blob, copied);

  /* The verdict comes as usual. */
  assert_int_equal (
    g_input_stream_read (G_INPUT_STREAM (blob), buffer, sizeof buffer, NULL, &error), 0);
  test_assert_no_error (error);
  assert_true (g_file_get_contents (path, &contents, &length, NULL));
  digest = test_sha256_digest (contents, length);
  assert_string_equal (digest, layer_digest ("multi:latest", 1));
  test_remove_tree (tmp);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_async_flow),
    cmocka_unit_test (test_async_cancel_before),
    cmocka_unit_test (test_cancel_during),
    cmocka_unit_test (test_cancel_after),
    cmocka_unit_test (test_cancel_blocked_read),
    cmocka_unit_test (test_idle_timeout_blob),
    cmocka_unit_test (test_idle_timeout_slow_blob),
    cmocka_unit_test (test_async_quiet_between_reads),
    cmocka_unit_test (test_idle_timeout_reply),
    cmocka_unit_test (test_exit_mid_request),
    cmocka_unit_test (test_killed_mid_stream_async),
    cmocka_unit_test (test_eight_threads_one_client),
    cmocka_unit_test (test_puller_to_directory),
    cmocka_unit_test (test_puller_async_failure),
    cmocka_unit_test (test_fd_based_splice),
  };

  return cmocka_run_group_tests_name ("async", tests, NULL, NULL);
}
