/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Real registries: Debian's docker-registry on 127.0.0.1, in three flavours (plain HTTP,
 * HTTPS with a CA made for the test, HTTPS with basic authentication), filled with
 * `skopeo copy` and read through the library. What the tests check is what skopeo is there
 * for: credentials, certificates, mirrors, pulls by tag and digest, and large images.
 */

#include "test-util.h"

#include <sys/prctl.h>
#include <signal.h>

#include <glib/gstdio.h>

typedef struct
{
  GSubprocess *process;
  char *url; /* 127.0.0.1:PORT */
  char *cert_dir;
  char *username;
  char *password;
} Registry;

typedef struct
{
  char *workdir;
  Registry http;
  Registry https;
  Registry auth;
  JsonObject *extra; /* facts about the many/ and big/ images */
  JsonParser *extra_parser;
} Fixture;

static Fixture fixture;

/* The registry dies with the test, whatever happens to the test. */
static void
die_with_parent (gpointer user_data)
{
  prctl (PR_SET_PDEATHSIG, SIGKILL);
}

static gboolean
port_open (const char *url)
{
  g_autoptr (GSocketClient) client = g_socket_client_new ();
  g_autoptr (GSocketConnection) connection =
    g_socket_client_connect_to_host (client, url, 0, NULL, NULL);

  return connection != NULL;
}

static void
run_checked (const char *const *argv)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *err = NULL;
  int status = 0;

  if (!g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL, &err,
                     &status, &error) ||
      !g_spawn_check_wait_status (status, &error))
    fail_msg ("%s failed: %s %s", argv[0], error->message, err != NULL ? err : "");
}

static void
start_registry (Registry *registry, const char *flavour)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *dir = g_build_filename (fixture.workdir, flavour, NULL);
  g_autofree char *out = NULL;
  g_autofree char *log = g_build_filename (dir, "registry.log", NULL);
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_autoptr (GSubprocessLauncher) launcher = NULL;
  const char *helper = g_getenv ("CIMG_REGISTRY_HELPER");
  const char *argv[] = { "/usr/bin/python3", helper, flavour, dir, NULL };
  JsonObject *info;
  JsonArray *registry_argv;
  g_autoptr (GPtrArray) spawn_argv = g_ptr_array_new_with_free_func (g_free);
  int status = 0;
  gint64 deadline;

  assert_non_null (helper);
  if (!g_spawn_sync (NULL, (char **) argv, NULL, 0, NULL, NULL, &out, NULL, &status, &error) ||
      !g_spawn_check_wait_status (status, &error))
    fail_msg ("registry.py %s: %s", flavour, error->message);
  assert_true (json_parser_load_from_data (parser, out, -1, &error));
  info = json_node_get_object (json_parser_get_root (parser));

  registry->url = g_strdup (json_object_get_string_member (info, "url"));
  registry->cert_dir =
    g_strdup (json_object_get_string_member_with_default (info, "cert_dir", NULL));
  registry->username =
    g_strdup (json_object_get_string_member_with_default (info, "username", NULL));
  registry->password =
    g_strdup (json_object_get_string_member_with_default (info, "password", NULL));

  registry_argv = json_object_get_array_member (info, "argv");
  for (guint i = 0; i < json_array_get_length (registry_argv); i++)
    g_ptr_array_add (spawn_argv, g_strdup (json_array_get_string_element (registry_argv, i)));
  g_ptr_array_add (spawn_argv, NULL);

  launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_NONE);
  g_subprocess_launcher_set_stdout_file_path (launcher, log);
  g_subprocess_launcher_set_stderr_file_path (launcher, log);
  g_subprocess_launcher_set_child_setup (launcher, die_with_parent, NULL, NULL);
  registry->process =
    g_subprocess_launcher_spawnv (launcher, (const char *const *) spawn_argv->pdata, &error);
  test_assert_no_error (error);

  deadline = g_get_monotonic_time () + 20 * G_USEC_PER_SEC;
  while (!port_open (registry->url))
    {
      if (g_get_monotonic_time () > deadline)
        fail_msg ("the %s registry did not come up on %s", flavour, registry->url);
      g_usleep (50 * 1000);
    }
}

static void
stop_registry (Registry *registry)
{
  if (registry->process != NULL)
    {
      g_subprocess_force_exit (registry->process);
      g_subprocess_wait (registry->process, NULL, NULL);
    }
  g_clear_object (&registry->process);
  g_clear_pointer (&registry->url, g_free);
  g_clear_pointer (&registry->cert_dir, g_free);
  g_clear_pointer (&registry->username, g_free);
  g_clear_pointer (&registry->password, g_free);
}

/* skopeo copy LAYOUT into REGISTRY as NAME. */
static void
push (Registry *registry, const char *source, const char *name)
{
  g_autofree char *dest = g_strdup_printf ("docker://%s/%s", registry->url, name);
  g_autofree char *creds = registry->username != NULL
                             ? g_strdup_printf ("%s:%s", registry->username, registry->password)
                             : NULL;
  g_autoptr (GPtrArray) argv = g_ptr_array_new ();

  g_ptr_array_add (argv, "skopeo");
  g_ptr_array_add (argv, "copy");
  g_ptr_array_add (argv, "--quiet");
  if (registry->cert_dir != NULL)
    {
      g_ptr_array_add (argv, "--dest-cert-dir");
      g_ptr_array_add (argv, registry->cert_dir);
    }
  else
    g_ptr_array_add (argv, "--dest-tls-verify=false");
  if (creds != NULL)
    {
      g_ptr_array_add (argv, "--dest-creds");
      g_ptr_array_add (argv, creds);
    }
  g_ptr_array_add (argv, (gpointer) source);
  g_ptr_array_add (argv, dest);
  g_ptr_array_add (argv, NULL);
  run_checked ((const char *const *) argv->pdata);
}

static int
setup (void **state)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *multi = test_oci_ref ("multi", "latest");
  g_autofree char *extra_dir = NULL;
  g_autofree char *extra_json = NULL;
  g_autofree char *many = NULL;
  g_autofree char *big = NULL;
  const char *big_mib =
    g_getenv ("CIMG_TEST_BIG_MIB") != NULL ? g_getenv ("CIMG_TEST_BIG_MIB") : "512";

  fixture.workdir = test_make_tmpdir ();
  start_registry (&fixture.http, "http");
  start_registry (&fixture.https, "https");
  start_registry (&fixture.auth, "auth");
  push (&fixture.http, multi, "app:1");
  push (&fixture.https, multi, "app:1");
  push (&fixture.auth, multi, "app:1");

  /* The large images are made here, not at build time: they take 20 s and 0.5 GiB. */
  extra_dir = g_build_filename (fixture.workdir, "extra", NULL);
  {
    const char *argv[] = {
      "/usr/bin/python3", g_getenv ("CIMG_MKOCI"), "--extra", "--big-mib", big_mib, extra_dir, NULL
    };
    run_checked (argv);
  }
  many = g_strdup_printf ("oci:%s/many:latest", extra_dir);
  big = g_strdup_printf ("oci:%s/big:latest", extra_dir);
  push (&fixture.http, many, "many:1");
  push (&fixture.http, big, "big:1");
  extra_json = g_build_filename (extra_dir, "extra.json", NULL);
  fixture.extra_parser = json_parser_new ();
  assert_true (json_parser_load_from_file (fixture.extra_parser, extra_json, &error));
  fixture.extra = json_object_get_object_member (
    json_node_get_object (json_parser_get_root (fixture.extra_parser)), "images");
  /* Half a gigabyte less on the disk; the registry has its copy. */
  test_remove_tree (extra_dir);
  return 0;
}

static int
teardown (void **state)
{
  stop_registry (&fixture.http);
  stop_registry (&fixture.https);
  stop_registry (&fixture.auth);
  g_clear_object (&fixture.extra_parser);
  if (fixture.workdir != NULL)
    test_remove_tree (fixture.workdir);
  g_clear_pointer (&fixture.workdir, g_free);
  return 0;
}

/* Opens REF with @client and reads the manifest and every layer; the first error, if any. */
static GError *
pull (CImgProxyClient *client, const char *ref, char **out_digest)
{
  GError *error = NULL;
  g_autoptr (CImgProxyImage) image = NULL;
  g_autoptr (GBytes) manifest = NULL;
  g_autoptr (GPtrArray) layers = NULL;

  image = cimg_proxy_client_open_image (client, ref, NULL, &error);
  if (image != NULL)
    manifest = cimg_proxy_image_get_manifest (image, NULL, out_digest, &error);
  if (manifest != NULL)
    layers = cimg_proxy_image_get_layer_info (image, NULL, &error);
  for (guint i = 0; layers != NULL && i < layers->len && error == NULL; i++)
    {
      CImgProxyLayerInfo *layer = g_ptr_array_index (layers, i);
      g_autoptr (CImgProxyBlobStream) blob =
        cimg_proxy_image_open_blob (image, cimg_proxy_layer_info_get_digest (layer),
                                    cimg_proxy_layer_info_get_size (layer), NULL, &error);
      g_autofree char *digest = NULL;

      if (blob != NULL)
        digest = test_read_digest (G_INPUT_STREAM (blob), 1024 * 1024, NULL, &error);
      if (digest != NULL && !g_str_equal (digest, cimg_proxy_layer_info_get_digest (layer)))
        g_set_error (&error, G_IO_ERROR, G_IO_ERROR_FAILED, "layer %u hashes to %s", i, digest);
    }
  return error;
}

static char *
app_ref (Registry *registry, const char *name)
{
  return g_strdup_printf ("docker://%s/%s", registry->url, name);
}

static void
assert_message (GError *error, const char *phrase)
{
  if (error == NULL || strstr (error->message, phrase) == NULL)
    fail_msg ("\"%s\" does not say \"%s\"", error != NULL ? error->message : "(no error)", phrase);
}

static void
test_plain_http (void **state)
{
  g_autofree char *ref = app_ref (&fixture.http, "app:1");
  g_autoptr (GError) error = NULL;
  g_autoptr (CImgProxyClient) insecure =
    test_new_client ("tls-verify", CIMG_PROXY_TLS_VERIFY_DISABLED, NULL);
  g_autoptr (CImgProxyClient) strict = test_new_client (NULL, NULL);
  g_autoptr (GError) pulled = pull (insecure, ref, NULL);
  g_autoptr (GError) refused = pull (strict, ref, NULL);

  test_assert_no_error (error);
  test_assert_no_error (pulled);
  test_assert_error (refused, CIMG_PROXY_ERROR, CIMG_PROXY_ERROR_REQUEST_FAILED);
  assert_message (refused, "HTTP response to HTTPS client");
}

static void
test_https_with_test_ca (void **state)
{
  g_autofree char *ref = app_ref (&fixture.https, "app:1");
  g_autoptr (GError) error = NULL;
  g_autoptr (CImgProxyClient) with_ca = test_new_client ("cert-dir", fixture.https.cert_dir, NULL);
  g_autoptr (CImgProxyClient) without = test_new_client (NULL, NULL);
  g_autoptr (GError) pulled = pull (with_ca, ref, NULL);
  g_autoptr (GError) refused = pull (without, ref, NULL);

  test_assert_no_error (error);
  test_assert_no_error (pulled);
  test_assert_error (refused, CIMG_PROXY_ERROR, CIMG_PROXY_ERROR_REQUEST_FAILED);
  assert_message (refused, "certificate signed by unknown authority");
}

static char *
auth_json (const char *url, const char *username, const char *password)
{
  g_autofree char *pair = g_strdup_printf ("%s:%s", username, password);
  g_autofree char *encoded = g_base64_encode ((const guchar *) pair, strlen (pair));

  return g_strdup_printf ("{\"auths\": {\"%s\": {\"auth\": \"%s\"}}}", url, encoded);
}

static void
test_basic_auth (void **state)
{
  Registry *registry = &fixture.auth;
  g_autofree char *ref = app_ref (registry, "app:1");
  g_autofree char *good = auth_json (registry->url, registry->username, registry->password);
  g_autofree char *bad = auth_json (registry->url, registry->username, "wrong");
  g_autofree char *dir = g_build_filename (fixture.workdir, "creds", NULL);
  g_autofree char *authfile = g_build_filename (dir, "auth.json", NULL);
  g_autofree char *docker_dir = g_build_filename (dir, "home", ".docker", NULL);
  g_autofree char *docker_config = g_build_filename (docker_dir, "config.json", NULL);
  g_autofree char *home = g_build_filename (dir, "home", NULL);
  g_autoptr (GBytes) good_bytes = g_bytes_new (good, strlen (good));
  g_autoptr (GBytes) bad_bytes = g_bytes_new (bad, strlen (bad));
  g_autofree char *saved_home = g_strdup (g_getenv ("HOME"));
  g_autofree char *saved_runtime = g_strdup (g_getenv ("XDG_RUNTIME_DIR"));
  GError *error = NULL;

  g_mkdir_with_parents (docker_dir, 0700);
  assert_true (g_file_set_contents (authfile, good, -1, NULL));
  assert_true (g_file_set_contents (docker_config, good, -1, NULL));

  /* authfile */
  {
    g_autoptr (CImgProxyClient) client =
      test_new_client ("cert-dir", registry->cert_dir, "authfile", authfile, NULL);
    error = pull (client, ref, NULL);
    test_assert_no_error (error);
  }
  /* auth-data: in memory only */
  {
    g_autoptr (CImgProxyClient) client =
      test_new_client ("cert-dir", registry->cert_dir, "auth-data", good_bytes, NULL);
    g_autofree char *cmdline_path =
      g_strdup_printf ("/proc/%d/cmdline", _cimg_proxy_client_get_pid (client));
    g_autofree char *cmdline = NULL;
    gsize length = 0;

    assert_true (g_file_get_contents (cmdline_path, &cmdline, &length, NULL));
    assert_null (memmem (cmdline, length, registry->password, strlen (registry->password)));
    error = pull (client, ref, NULL);
    test_assert_no_error (error);
  }
  /* REGISTRY_AUTH_FILE, as skopeo itself looks it up */
  {
    g_autoptr (CImgProxyClient) client = NULL;

    g_setenv ("REGISTRY_AUTH_FILE", authfile, TRUE);
    client = test_new_client ("cert-dir", registry->cert_dir, NULL);
    g_unsetenv ("REGISTRY_AUTH_FILE");
    error = pull (client, ref, NULL);
    test_assert_no_error (error);
  }
  /* ~/.docker/config.json, when nothing else has credentials */
  {
    g_autoptr (CImgProxyClient) client = NULL;

    g_setenv ("HOME", home, TRUE);
    g_setenv ("XDG_RUNTIME_DIR", dir, TRUE);
    client = test_new_client ("cert-dir", registry->cert_dir, NULL);
    g_setenv ("HOME", saved_home, TRUE);
    if (saved_runtime != NULL)
      g_setenv ("XDG_RUNTIME_DIR", saved_runtime, TRUE);
    else
      g_unsetenv ("XDG_RUNTIME_DIR");
    error = pull (client, ref, NULL);
    test_assert_no_error (error);
  }
  /* Wrong credentials, and none at all */
  {
    g_autoptr (CImgProxyClient) wrong =
      test_new_client ("cert-dir", registry->cert_dir, "auth-data", bad_bytes, NULL);
    g_autoptr (CImgProxyClient) anonymous =
      test_new_client ("cert-dir", registry->cert_dir, "anonymous", TRUE, NULL);
    g_autoptr (GError) refused = pull (wrong, ref, NULL);
    g_autoptr (GError) anonymous_refused = pull (anonymous, ref, NULL);

    test_assert_error (refused, CIMG_PROXY_ERROR, CIMG_PROXY_ERROR_AUTHENTICATION_FAILED);
    assert_message (refused, "authentication required");
    test_assert_error (anonymous_refused, CIMG_PROXY_ERROR, CIMG_PROXY_ERROR_AUTHENTICATION_FAILED);
  }
}

static void
test_registries_conf_mirror (void **state)
{
  g_autofree char *conf = g_build_filename (fixture.workdir, "registries.conf", NULL);
  g_autofree char *contents =
    g_strdup_printf ("[[registry]]\nlocation = \"registry.example.invalid\"\n\n"
                     "[[registry.mirror]]\nlocation = \"%s\"\ninsecure = true\n",
                     fixture.http.url);
  g_autoptr (GError) error = NULL;
  g_autoptr (CImgProxyClient) client = NULL;
  g_autoptr (GError) pulled = NULL;
  g_autofree char *digest = NULL;

  assert_true (g_file_set_contents (conf, contents, -1, NULL));
  client = test_new_client ("registries-conf", conf, NULL);
  test_assert_no_error (error);
  pulled = pull (client, "docker://registry.example.invalid/app:1", &digest);
  test_assert_no_error (pulled);
  assert_string_equal (digest, json_object_get_string_member (test_expected_image ("multi:latest"),
                                                              "manifest_digest"));
}

static void
test_tag_and_digest (void **state)
{
  const char *digest =
    json_object_get_string_member (test_expected_image ("multi:latest"), "manifest_digest");
  g_autofree char *by_digest = g_strdup_printf ("docker://%s/app@%s", fixture.http.url, digest);
  g_autofree char *missing = app_ref (&fixture.http, "app:no-such-tag");
  g_autoptr (GError) error = NULL;
  g_autoptr (CImgProxyClient) client =
    test_new_client ("tls-verify", CIMG_PROXY_TLS_VERIFY_DISABLED, NULL);
  g_autoptr (GError) pulled = pull (client, by_digest, NULL);
  g_autoptr (CImgProxyImage) image = NULL;

  test_assert_no_error (pulled);
  image = cimg_proxy_client_open_image (client, missing, NULL, &error);
  assert_null (image);
  test_assert_error (error, CIMG_PROXY_ERROR, CIMG_PROXY_ERROR_NOT_FOUND);
  g_clear_error (&error);
  image = cimg_proxy_client_open_image_optional (client, missing, NULL, &error);
  assert_null (image);
  test_assert_no_error (error);
}

static void
test_many_layers_and_a_big_one (void **state)
{
  g_autofree char *many = app_ref (&fixture.http, "many:1");
  g_autofree char *big = app_ref (&fixture.http, "big:1");
  g_autoptr (GError) error = NULL;
  g_autoptr (CImgProxyClient) client =
    test_new_client ("tls-verify", CIMG_PROXY_TLS_VERIFY_DISABLED, NULL);
  g_autoptr (GError) many_pulled = NULL;
  g_autoptr (GError) big_pulled = NULL;
  gsize peak_before;

  test_assert_no_error (error);
  many_pulled = pull (client, many, NULL);
  test_assert_no_error (many_pulled);
  assert_int_equal (json_array_get_length (json_object_get_array_member (
                      json_object_get_object_member (fixture.extra, "many:latest"), "layers")),
                    60);

  /* Streaming half a gigabyte must not grow the client by more than a few buffers. */
  peak_before = test_status_kib ("VmHWM");
  big_pulled = pull (client, big, NULL);
  test_assert_no_error (big_pulled);
  g_print ("# peak RSS %zu KiB before the big layer, %zu KiB after\n", peak_before,
           test_status_kib ("VmHWM"));
  assert_true (test_status_kib ("VmHWM") < peak_before + 16 * 1024);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_plain_http),     cmocka_unit_test (test_https_with_test_ca),
    cmocka_unit_test (test_basic_auth),     cmocka_unit_test (test_registries_conf_mirror),
    cmocka_unit_test (test_tag_and_digest), cmocka_unit_test (test_many_layers_and_a_big_one),
  };

  return cmocka_run_group_tests_name ("registry", tests, setup, teardown);
}
