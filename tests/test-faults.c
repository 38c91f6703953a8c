/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * What skopeo cannot be made to do, played by the fake proxy: dying at chosen moments,
 * malformed replies, surplus fds, unsolicited packets, and the newer protocol versions whose
 * code paths Debian's skopeo 1.9.3 never reaches. Each fault must give its exact error,
 * promptly, without leaking a single fd. And the secrets and fds that must not reach the
 * child, or any other child, do not.
 */

#include "test-util.h"

#include <fcntl.h>
#include <glib/gstdio.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define SMALL_BLOB_DIGEST "sha256:2816597888e4a0d3a36b82b83316ab32680eb8f00f8cd3b904d681246d285a0e"

static void
on_result (GObject *source, GAsyncResult *result, gpointer user_data)
{
  *(GAsyncResult **) user_data = g_object_ref (result);
}

static CImgProxyClient *
new_fake_client (const char *options, GError **error)
{
  const char *argv[] = { g_getenv ("CIMG_FAKE_PROXY"), options, NULL };

  assert_non_null (argv[0]);
  return g_initable_new (CIMG_PROXY_TYPE_CLIENT, NULL, error, "skopeo-argv", argv, "idle-timeout",
                         10, NULL);
}

typedef enum
{
  STEP_INIT,
  STEP_OPEN,
  STEP_MANIFEST,
  STEP_BLOB,
} Step;

static const char *
step_name (Step step)
{
  const char *names[] = { "initialize", "open", "manifest", "blob" };
  return names[step];
}

/* Drives a client through init, open, manifest and a blob read until the first failure. */
static GError *
run_until_failure (const char *options, Step *failed_at)
{
  GError *error = NULL;
  g_autoptr (CImgProxyClient) client = new_fake_client (options, &error);
  g_autoptr (CImgProxyImage) image = NULL;
  g_autoptr (GBytes) manifest = NULL;
  g_autoptr (CImgProxyBlobStream) blob = NULL;
  g_autofree char *digest = NULL;

  *failed_at = STEP_INIT;
  if (client == NULL)
    return error;
  *failed_at = STEP_OPEN;
  image = cimg_proxy_client_open_image (client, "oci:/fake:latest", NULL, &error);
  if (image == NULL)
    return error;
  *failed_at = STEP_MANIFEST;
  manifest = cimg_proxy_image_get_manifest (image, NULL, NULL, &error);
  if (manifest == NULL)
    return error;
  *failed_at = STEP_BLOB;
  blob = cimg_proxy_image_open_blob (image, SMALL_BLOB_DIGEST, 5000, NULL, &error);
  if (blob != NULL)
    digest = test_read_digest (G_INPUT_STREAM (blob), 4096, NULL, &error);
  return error;
}

/* Whether @message contains one of the |-separated @phrases. */
static gboolean
message_says (const char *message, const char *phrases)
{
  g_auto (GStrv) alternatives = g_strsplit (phrases, "|", -1);

  for (char **phrase = alternatives; *phrase != NULL; phrase++)
    if (strstr (message, *phrase) != NULL)
      return TRUE;
  return FALSE;
}

static void
test_fault_modes (void **state)
{
  struct
  {
    const char *options;
    Step step;
    GQuark domain;
    int code;
    const char *says;
  } cases[] = {
    { "exit-at-start", STEP_INIT, CIMG_PROXY_ERROR, CIMG_PROXY_ERROR_PROXY_EXITED,
      "refusing to start" },
    { "exit-on=OpenImage", STEP_OPEN, CIMG_PROXY_ERROR, CIMG_PROXY_ERROR_PROXY_EXITED,
      "exited with status 7" },
    { "exit-on=GetManifest", STEP_MANIFEST, CIMG_PROXY_ERROR, CIMG_PROXY_ERROR_PROXY_EXITED,
      "dying in GetManifest" },
    { "die-in-blob", STEP_BLOB, CIMG_PROXY_ERROR, CIMG_PROXY_ERROR_PROXY_EXITED,
      "exited with status 9" },
    { "bad-json-on=Initialize", STEP_INIT, CIMG_PROXY_ERROR, CIMG_PROXY_ERROR_PROTOCOL,
      "not JSON" },
    { "bad-json-on=OpenImage", STEP_OPEN, CIMG_PROXY_ERROR, CIMG_PROXY_ERROR_PROTOCOL, "not JSON" },
    { "extra-fd-on=OpenImage", STEP_OPEN, CIMG_PROXY_ERROR, CIMG_PROXY_ERROR_PROTOCOL,
      "1 file descriptors instead of 0" },
    { "extra-fd-on=GetManifest", STEP_MANIFEST, CIMG_PROXY_ERROR, CIMG_PROXY_ERROR_PROTOCOL,
      "2 file descriptors instead of 1" },
    { "no-pipe-id-on=GetManifest", STEP_MANIFEST, CIMG_PROXY_ERROR, CIMG_PROXY_ERROR_PROTOCOL,
      "without a pipe id" },
    { "bad-image-id", STEP_OPEN, CIMG_PROXY_ERROR, CIMG_PROXY_ERROR_PROTOCOL, "image id" },
    /* Caught before the next request goes out, or, if it comes in later, as a reply that does
     * not fit that request. */
    { "twice-on=OpenImage", STEP_MANIFEST, CIMG_PROXY_ERROR, CIMG_PROXY_ERROR_PROTOCOL,
      "nobody asked for|file descriptors instead of" },
    { "version=0.3.0", STEP_INIT, CIMG_PROXY_ERROR, CIMG_PROXY_ERROR_UNSUPPORTED_VERSION, "0.3.0" },
    { "version=0.1.0", STEP_INIT, CIMG_PROXY_ERROR, CIMG_PROXY_ERROR_UNSUPPORTED_VERSION,
      "skopeo 1.6 or newer" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      guint fds_before = test_count_open_fds ();
      gint64 start = g_get_monotonic_time ();
      Step step;
      g_autoptr (GError) error = run_until_failure (cases[i].options, &step);

      if (error == NULL)
        fail_msg ("%s: no error", cases[i].options);
      if (step != cases[i].step)
        fail_msg ("%s: failed at %s, not at %s: %s", cases[i].options, step_name (step),
                  step_name (cases[i].step), error->message);
      test_assert_error (error, cases[i].domain, cases[i].code);
      if (!message_says (error->message, cases[i].says))
        fail_msg ("%s: \"%s\" does not say \"%s\"", cases[i].options, error->message,
                  cases[i].says);
      if (g_get_monotonic_time () - start > 5 * G_USEC_PER_SEC)
        fail_msg ("%s: took %.1f s", cases[i].options,
                  (g_get_monotonic_time () - start) / (double) G_USEC_PER_SEC);
      if (test_count_open_fds () != fds_before)
        fail_msg ("%s: %u fds open before, %u after", cases[i].options, fds_before,
                  test_count_open_fds ());
    }
}

/* After a protocol violation the proxy is not trusted again. */
static void
test_protocol_violation_is_final (void **state)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (CImgProxyClient) client = new_fake_client ("bad-json-on=CloseImage", &error);
  g_autoptr (CImgProxyImage) first = NULL;
  g_autoptr (CImgProxyImage) second = NULL;

  test_assert_no_error (error);
  first = cimg_proxy_client_open_image (client, "oci:/fake:1", NULL, &error);
  test_assert_no_error (error);
  assert_false (cimg_proxy_image_close (first, NULL, &error));
  test_assert_error (error, CIMG_PROXY_ERROR, CIMG_PROXY_ERROR_PROTOCOL);
  g_clear_error (&error);

  second = cimg_proxy_client_open_image (client, "oci:/fake:2", NULL, &error);
  assert_null (second);
  test_assert_error (error, CIMG_PROXY_ERROR, CIMG_PROXY_ERROR_CLOSED);
  assert_non_null (strstr (error->message, "broke the protocol"));
}

static const char *
layer_media_type (CImgProxyClient *client)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (CImgProxyImage) image =
    cimg_proxy_client_open_image (client, "oci:/fake:latest", NULL, &error);
  g_autoptr (GPtrArray) layers = NULL;

  test_assert_no_error (error);
  layers = cimg_proxy_image_get_layer_info (image, NULL, &error);
  test_assert_no_error (error);
  assert_int_equal (layers->len, 1);
  return g_intern_string (cimg_proxy_layer_info_get_media_type (g_ptr_array_index (layers, 0)));
}

/* Each protocol version gets the newest way to the same result, and never a method it does
 * not know (the fake, like skopeo, answers those with "unknown method"). */
static void
test_version_gated_paths (void **state)
{
  struct
  {
    const char *version;
    const char *layer_source;
    gboolean native_optional;
  } cases[] = {
    { "version=0.2.3", "application/vnd.oci.image.layer.v1.tar", FALSE },
    { "version=0.2.4", "application/vnd.oci.image.layer.v1.tar", TRUE },
    { "version=0.2.5", "application/x-inline", TRUE },
    { "version=0.2.6", "application/x-inline", TRUE },
    { "version=0.2.7", "application/x-piped", TRUE },
    { "version=0.2.8", "application/x-piped", TRUE },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr (GError) error = NULL;
      g_autoptr (CImgProxyClient) client = new_fake_client (cases[i].version, &error);
      g_autoptr (CImgProxyImage) missing = NULL;
      g_autoptr (CImgProxyImage) image = NULL;
      g_autoptr (CImgProxyBlobStream) blob = NULL;
      g_autofree char *digest = NULL;

      test_assert_no_error (error);
      assert_string_equal (layer_media_type (client), cases[i].layer_source);

      /* The fake's "missing" error is nothing the client recognizes, so only
       * OpenImageOptional gives NULL without an error. */
      missing = cimg_proxy_client_open_image_optional (client, "oci:/missing:x", NULL, &error);
      assert_null (missing);
      if (cases[i].native_optional)
        test_assert_no_error (error);
      else
        test_assert_error (error, CIMG_PROXY_ERROR, CIMG_PROXY_ERROR_REQUEST_FAILED);
      g_clear_error (&error);

      /* Failures carry error_code from 0.2.8 on; either way they read the same. */
      image = cimg_proxy_client_open_image (client, "oci:/missing:x", NULL, &error);
      test_assert_error (error, CIMG_PROXY_ERROR, CIMG_PROXY_ERROR_REQUEST_FAILED);
      g_clear_error (&error);

      image = cimg_proxy_client_open_image (client, "oci:/fake:latest", NULL, &error);
      blob = cimg_proxy_image_open_blob (image, SMALL_BLOB_DIGEST, 100, NULL, &error);
      test_assert_no_error (error);
      digest = test_read_digest (G_INPUT_STREAM (blob), 4096, NULL, &error);
      test_assert_no_error (error);
      assert_string_equal (digest, SMALL_BLOB_DIGEST);
    }
}

/* A blob of unknown size: GetRawBlob on 0.2.8, where the library verifies the digest itself;
 * refused before. Read synchronously and asynchronously. */
static void
test_raw_blob (void **state)
{
  const char *other_digest =
    "sha256:0000000000000000000000000000000000000000000000000000000000000000";
  struct
  {
    const char *options;
    const char *digest;
    GQuark domain;
    int code;
  } cases[] = {
    { "version=0.2.8", SMALL_BLOB_DIGEST, 0, 0 },
    { "version=0.2.8", other_digest, CIMG_PROXY_ERROR, CIMG_PROXY_ERROR_VERIFICATION_FAILED },
    { "version=0.2.8,raw-error", SMALL_BLOB_DIGEST, CIMG_PROXY_ERROR,
      CIMG_PROXY_ERROR_REQUEST_FAILED },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    for (int async = 0; async <= 1; async++)
      {
        g_autoptr (GError) error = NULL;
        g_autoptr (CImgProxyClient) client = new_fake_client (cases[i].options, &error);
        g_autoptr (CImgProxyImage) image = NULL;
        g_autoptr (CImgProxyBlobStream) blob = NULL;
        g_autoptr (GOutputStream) sink = g_memory_output_stream_new_resizable ();
        g_autoptr (GAsyncResult) result = NULL;
        gssize copied;

        test_assert_no_error (error);
        image = cimg_proxy_client_open_image (client, "oci:/fake:latest", NULL, &error);
        blob = cimg_proxy_image_open_blob (image, cases[i].digest, -1, NULL, &error);
        test_assert_no_error (error);
        assert_int_equal (cimg_proxy_blob_stream_get_size (blob), -1);
        if (async)
          {
            g_output_stream_splice_async (sink, G_INPUT_STREAM (blob),
                                          G_OUTPUT_STREAM_SPLICE_CLOSE_SOURCE, G_PRIORITY_DEFAULT,
                                          NULL, on_result, &result);
            while (result == NULL)
              g_main_context_iteration (NULL, TRUE);
            copied = g_output_stream_splice_finish (sink, result, &error);
          }
        else
          copied = g_output_stream_splice (sink, G_INPUT_STREAM (blob),
                                           G_OUTPUT_STREAM_SPLICE_CLOSE_SOURCE, NULL, &error);
        if (cases[i].domain == 0)
          {
            test_assert_no_error (error);
            assert_int_equal (copied, 100);
          }
        else
          {
            assert_int_equal (copied, -1);
            test_assert_error (error, cases[i].domain, cases[i].code);
          }
        g_clear_error (&error);

        /* No FinishPipe and no broken state: the client carries on. */
        g_clear_object (&blob);
        blob = cimg_proxy_image_open_blob (image, SMALL_BLOB_DIGEST, 100, NULL, &error);
        test_assert_no_error (error);
      }

  {
    g_autoptr (GError) error = NULL;
    g_autoptr (CImgProxyClient) client = new_fake_client ("version=0.2.7", &error);
    g_autoptr (CImgProxyImage) image =
      cimg_proxy_client_open_image (client, "oci:/fake:latest", NULL, &error);
    g_autoptr (CImgProxyBlobStream) blob =
      cimg_proxy_image_open_blob (image, SMALL_BLOB_DIGEST, -1, NULL, &error);

    assert_null (blob);
    test_assert_error (error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED);
    assert_non_null (strstr (error->message, "skopeo 1.19"));
  }
}

/* 1000 layers inline: a reply far larger than 32 KiB (skopeo issue 72 of the Rust client). */
static void
test_large_reply (void **state)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (CImgProxyClient) client = new_fake_client ("version=0.2.5,layers=1000", &error);
  g_autoptr (CImgProxyImage) image = NULL;
  g_autoptr (GPtrArray) layers = NULL;

  test_assert_no_error (error);
  image = cimg_proxy_client_open_image (client, "oci:/fake:latest", NULL, &error);
  layers = cimg_proxy_image_get_layer_info (image, NULL, &error);
  test_assert_no_error (error);
  assert_int_equal (layers->len, 1000);
}

static GHashTable *
process_fds (int pid)
{
  g_autofree char *path = g_strdup_printf ("/proc/%d/fd", pid);
  g_autoptr (GDir) dir = g_dir_open (path, 0, NULL);
  GHashTable *fds = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  const char *name;

  assert_non_null (dir);
  while ((name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *link = g_build_filename (path, name, NULL);
      g_hash_table_insert (fds, g_strdup (name), g_file_read_link (link, NULL));
    }
  return fds;
}

/* Whether a regular file in @dir (not below it) modified after @since holds @needle. */
static gboolean
recent_file_contains (const char *dir, gint64 since, const char *needle)
{
  g_autoptr (GDir) listing = g_dir_open (dir, 0, NULL);
  const char *name;

  while (listing != NULL && (name = g_dir_read_name (listing)) != NULL)
    {
      g_autofree char *path = g_build_filename (dir, name, NULL);
      g_autofree char *contents = NULL;
      gsize length = 0;
      GStatBuf info;

      if (g_lstat (path, &info) != 0 || !S_ISREG (info.st_mode) ||
          (gint64) info.st_mtime * G_USEC_PER_SEC < since)
        continue;
      if (g_file_get_contents (path, &contents, &length, NULL) &&
          memmem (contents, length, needle, strlen (needle)) != NULL)
        return TRUE;
    }
  return FALSE;
}

/* The fake opens nothing of its own, so its fds are exactly what it inherited. */
static void
test_child_holds_only_its_fds (void **state)
{
  const char *secret = "{\"auths\":{\"r.example\":{\"auth\":\"c2VjcmV0LXVzZXI6aHVudGVyMg==\"}}}";
  g_autoptr (GBytes) auth = g_bytes_new_static (secret, strlen (secret));
  const char *argv[] = { g_getenv ("CIMG_FAKE_PROXY"), "version=0.2.3", NULL };
  gint64 start = g_get_real_time () - G_USEC_PER_SEC;

  for (int with_auth = 0; with_auth <= 1; with_auth++)
    {
      g_autoptr (GError) error = NULL;
      g_autoptr (CImgProxyClient) client =
        g_initable_new (CIMG_PROXY_TYPE_CLIENT, NULL, &error, "skopeo-argv", argv, "auth-data",
                        with_auth ? auth : NULL, NULL);
      g_autoptr (GHashTable) fds = NULL;
      g_autofree char *environ_path = NULL;
      g_autofree char *child_environ = NULL;
      gsize length = 0;

      test_assert_no_error (error);
      fds = process_fds (_cimg_proxy_client_get_pid (client));
      assert_int_equal (g_hash_table_size (fds), with_auth ? 4 : 3);
      assert_true (g_str_has_prefix (g_hash_table_lookup (fds, "0"), "socket:"));
      assert_string_equal (g_hash_table_lookup (fds, "1"), "/dev/null");
      assert_true (g_str_has_prefix (g_hash_table_lookup (fds, "2"), "pipe:"));
      if (with_auth)
        assert_true (g_str_has_prefix (g_hash_table_lookup (fds, "3"), "/memfd:cimgproxy-auth"));

      /* Nor in a file: none written since the test began holds it. */
      assert_false (recent_file_contains (g_get_tmp_dir (), start, "c2VjcmV0LXVzZXI6"));
      assert_false (recent_file_contains (g_get_user_runtime_dir (), start, "c2VjcmV0LXVzZXI6"));

      /* Nor does the secret travel in the environment. */
      environ_path = g_strdup_printf ("/proc/%d/environ", _cimg_proxy_client_get_pid (client));
      assert_true (g_file_get_contents (environ_path, &child_environ, &length, NULL));
      assert_null (memmem (child_environ, length, "c2VjcmV0LXVzZXI6", strlen ("c2VjcmV0LXVzZXI6")));
      /* The search saw the whole block, past the first variable's terminating NUL. */
      assert_non_null (memmem (child_environ, length, "CIMG_TEST_IMAGES=", 17));
    }
}

/* The fds a child spawned now inherits, as the child itself lists them once it runs (from
 * outside, a child caught inside execve() still shows the fds it is about to close).
 * posix_spawn, unlike g_spawn, leaves every fd without FD_CLOEXEC to the child. */
static guint
count_inherited_fds (void)
{
  char *const argv[] = { "ls", "-1", "/proc/self/fd", NULL };
  posix_spawn_file_actions_t actions;
  g_autoptr (GString) listing = g_string_new (NULL);
  g_auto (GStrv) lines = NULL;
  int out[2];
  char buffer[4096];
  ssize_t n;
  pid_t pid;

  assert_int_equal (pipe2 (out, O_CLOEXEC), 0);
  posix_spawn_file_actions_init (&actions);
  posix_spawn_file_actions_adddup2 (&actions, out[1], STDOUT_FILENO);
  assert_int_equal (posix_spawnp (&pid, "ls", &actions, NULL, argv, environ), 0);
  posix_spawn_file_actions_destroy (&actions);
  close (out[1]);
  while ((n = read (out[0], buffer, sizeof buffer)) > 0)
    g_string_append_len (listing, buffer, n);
  close (out[0]);
  waitpid (pid, NULL, 0);

  if (g_getenv ("CIMG_DEBUG_FDS") != NULL)
    g_printerr ("# the child holds fds:\n%s", listing->str);
  lines = g_strsplit (g_strstrip (listing->str), "\n", -1);
  return g_strv_length (lines);
}

/* Every fd the library holds is close-on-exec: a child the program spawns itself, while
 * blobs are open, inherits none of them. (Compared with a child spawned before, since a
 * test runner such as valgrind may hand down fds of its own.) */
static void
test_fds_are_cloexec (void **state)
{
  g_autoptr (GError) error = NULL;
  guint baseline = count_inherited_fds ();
  g_autoptr (CImgProxyClient) client = cimg_proxy_client_new (NULL, &error);
  g_autofree char *ref = test_oci_ref ("multi", "latest");
  g_autoptr (CImgProxyImage) image = cimg_proxy_client_open_image (client, ref, NULL, &error);
  g_autoptr (GPtrArray) blobs = g_ptr_array_new_with_free_func (g_object_unref);
  JsonArray *layers = test_expected_layers ("multi:latest");

  test_assert_no_error (error);
  for (guint i = 0; i < json_array_get_length (layers); i++)
    {
      JsonObject *layer = json_array_get_object_element (layers, i);
      g_ptr_array_add (blobs, cimg_proxy_image_open_blob (
                                image, json_object_get_string_member (layer, "digest"),
                                json_object_get_int_member (layer, "size"), NULL, &error));
      test_assert_no_error (error);
    }

  assert_true (test_count_open_fds () >= json_array_get_length (layers) + 1);
  assert_int_equal (count_inherited_fds (), baseline);
}

/* The proxy dies with its parent, even one that never gets to clean up. */
static void
test_parent_death_kills_proxy (void **state)
{
  g_autoptr (GError) error = NULL;
  const char *helper = g_getenv ("CIMG_PDEATHSIG_HELPER");
  g_autoptr (GSubprocess) parent = NULL;
  g_autoptr (GDataInputStream) out = NULL;
  g_autofree char *line = NULL;
  g_autofree char *stat_path = NULL;
  int proxy_pid;
  gint64 deadline;

  assert_non_null (helper);
  parent = g_subprocess_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE, &error, helper, NULL);
  test_assert_no_error (error);
  out = g_data_input_stream_new (g_subprocess_get_stdout_pipe (parent));
  line = g_data_input_stream_read_line (out, NULL, NULL, &error);
  test_assert_no_error (error);
  assert_non_null (line);
  proxy_pid = atoi (line);
  assert_true (proxy_pid > 0);
  assert_int_equal (kill (proxy_pid, 0), 0);

  g_subprocess_force_exit (parent);
  g_subprocess_wait (parent, NULL, NULL);

  /* Gone, or a zombie waiting for whichever process inherited it. */
  stat_path = g_strdup_printf ("/proc/%d/stat", proxy_pid);
  deadline = g_get_monotonic_time () + 10 * G_USEC_PER_SEC;
  for (;;)
    {
      g_autofree char *stat = NULL;
      const char *state_field;

      if (!g_file_get_contents (stat_path, &stat, NULL, NULL))
        break;
      state_field = strrchr (stat, ')');
      if (state_field != NULL && (state_field[2] == 'Z' || state_field[2] == 'X'))
        break;
      if (g_get_monotonic_time () > deadline)
        fail_msg ("proxy %d outlived its parent by 10 s", proxy_pid);
      g_usleep (20 * 1000);
    }
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_fault_modes),
    cmocka_unit_test (test_protocol_violation_is_final),
    cmocka_unit_test (test_version_gated_paths),
    cmocka_unit_test (test_raw_blob),
    cmocka_unit_test (test_large_reply),
    cmocka_unit_test (test_child_holds_only_its_fds),
    cmocka_unit_test (test_fds_are_cloexec),
    cmocka_unit_test (test_parent_death_kills_proxy),
  };

  return cmocka_run_group_tests_name ("faults", tests, NULL, NULL);
}
