/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Signature policy on a proxy too old to check it. Debian's skopeo 1.9.3 (protocol 0.2.3)
 * opens any image whatever containers-policy.json says; the client must then refuse images
 * for which the policy asks for signatures, rather than use them unverified.
 */

#include "test-util.h"

static char *tmpdir;

static int
setup (void **state)
{
  tmpdir = test_make_tmpdir ();
  return 0;
}

static int
teardown (void **state)
{
  test_remove_tree (tmpdir);
  g_clear_pointer (&tmpdir, g_free);
  return 0;
}

static char *
write_policy (const char *name, const char *json)
{
  char *path = g_build_filename (tmpdir, name, NULL);

  assert_true (g_file_set_contents (path, json, -1, NULL));
  return path;
}

/* Opens @reference with a client using @policy; the error, if any. */
static GError *
open_with_policy (const char *policy, gboolean insecure, const char *reference)
{
  GError *error = NULL;
  g_autoptr (CImgProxyClient) client = g_initable_new (
    CIMG_PROXY_TYPE_CLIENT, NULL, &error, "policy", policy, "insecure-policy", insecure, NULL);
  g_autoptr (CImgProxyImage) image = NULL;

  if (client == NULL)
    return error;
  assert_false (cimg_proxy_client_get_enforces_policy (client));
  image = cimg_proxy_client_open_image (client, reference, NULL, &error);
  return error;
}

static void
test_reject_and_signed_by_are_refused (void **state)
{
  g_autofree char *ref = test_oci_ref ("multi", "latest");
  g_autofree char *reject = write_policy ("reject.json", "{\"default\": [{\"type\": \"reject\"}]}");
  g_autofree char *signed_by = write_policy (
    "signed.json", "{\"default\": [{\"type\": \"insecureAcceptAnything\"}],"
                   " \"transports\": {\"oci\": {\"\": [{\"type\": \"signedBy\","
                   " \"keyType\": \"GPGKeys\", \"keyPath\": \"/nonexistent.gpg\"}]}}}");
  g_autoptr (GError) rejected = open_with_policy (reject, FALSE, ref);
  g_autoptr (GError) unsigned_image = open_with_policy (signed_by, FALSE, ref);
  g_autoptr (GError) opted_out = open_with_policy (reject, TRUE, ref);

  test_assert_error (rejected, CIMG_PROXY_ERROR, CIMG_PROXY_ERROR_POLICY_NOT_ENFORCED);
  assert_non_null (strstr (rejected->message, "“reject”"));
  assert_non_null (strstr (rejected->message, "skopeo 1.13"));
  assert_non_null (strstr (rejected->message, "insecure-policy"));
  test_assert_error (unsigned_image, CIMG_PROXY_ERROR, CIMG_PROXY_ERROR_POLICY_NOT_ENFORCED);
  assert_non_null (strstr (unsigned_image->message, "“signedBy”"));
  /* The explicit opt-out opens the image unchecked. */
  test_assert_no_error (opted_out);
}

static void
test_scopes_decide (void **state)
{
  g_autofree char *ref = test_oci_ref ("multi", "latest");
  g_autofree char *layout = test_oci_ref ("multi", "x");
  g_autofree char *layout_dir = g_strndup (layout + strlen ("oci:"), strlen (layout) - 6);
  g_autofree char *docker_only = write_policy (
    "docker-only.json", "{\"default\": [{\"type\": \"insecureAcceptAnything\"}],"
                        " \"transports\": {\"docker\": {\"registry.example.invalid/app\":"
                        " [{\"type\": \"reject\"}]}}}");
  g_autofree char *this_layout_json =
    g_strdup_printf ("{\"default\": [{\"type\": \"reject\"}], \"transports\": {\"oci\": {\"%s\":"
                     " [{\"type\": \"insecureAcceptAnything\"}]}}}",
                     layout_dir);
  g_autofree char *this_layout = write_policy ("this-layout.json", this_layout_json);
  g_autoptr (GError) other_transport = open_with_policy (docker_only, FALSE, ref);
  g_autoptr (GError) refused_repo =
    open_with_policy (docker_only, FALSE, "docker://registry.example.invalid/app:1");
  g_autoptr (GError) allowed_layout = open_with_policy (this_layout, FALSE, ref);

  /* A policy for another transport does not touch oci: images. */
  test_assert_no_error (other_transport);
  /* The repository's scope applies to its tags, and is refused without any network traffic
   * (registry.example.invalid does not resolve). */
  test_assert_error (refused_repo, CIMG_PROXY_ERROR, CIMG_PROXY_ERROR_POLICY_NOT_ENFORCED);
  /* A scope naming the layout directory overrides a rejecting default. */
  test_assert_no_error (allowed_layout);
}

static void
test_accept_anything_changes_nothing (void **state)
{
  g_autofree char *ref = test_oci_ref ("multi", "latest");
  g_autofree char *accept =
    write_policy ("accept.json", "{\"default\": [{\"type\": \"insecureAcceptAnything\"}]}");
  g_autoptr (GError) error = open_with_policy (accept, FALSE, ref);
  g_autoptr (GError) system_default = open_with_policy (NULL, FALSE, ref);

  test_assert_no_error (error);
  /* Debian's /etc/containers/policy.json is insecureAcceptAnything. */
  test_assert_no_error (system_default);
}

static void
test_malformed_policy (void **state)
{
  g_autofree char *ref = test_oci_ref ("multi", "latest");
  const char *bad[] = { "{\"default\": ", "[]", "{\"transports\": {}}",
                        "{\"default\": [{\"keyType\": \"GPGKeys\"}]}", "{\"default\": []}" };

  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autofree char *name = g_strdup_printf ("bad-%u.json", i);
      g_autofree char *path = write_policy (name, bad[i]);
      g_autoptr (GError) error = open_with_policy (path, FALSE, ref);

      test_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA);
      assert_non_null (strstr (error->message, path));
    }
}

/* A proxy that checks the policy itself gets it, and the client leaves the check to it. */
static void
test_newer_proxy_enforces (void **state)
{
  g_autofree char *reject = write_policy ("reject.json", "{\"default\": [{\"type\": \"reject\"}]}");
  const char *argv[] = { g_getenv ("CIMG_FAKE_PROXY"), "version=0.2.6", NULL };
  g_autoptr (GError) error = NULL;
  g_autoptr (CImgProxyClient) client = g_initable_new (CIMG_PROXY_TYPE_CLIENT, NULL, &error,
                                                       "skopeo-argv", argv, "policy", reject, NULL);
  g_autoptr (CImgProxyImage) image = NULL;
  g_autofree char *cmdline_path = NULL;
  g_autofree char *cmdline = NULL;
  gsize length = 0;

  test_assert_no_error (error);
  assert_true (cimg_proxy_client_get_enforces_policy (client));
  cmdline_path = g_strdup_printf ("/proc/%d/cmdline", _cimg_proxy_client_get_pid (client));
  assert_true (g_file_get_contents (cmdline_path, &cmdline, &length, NULL));
  assert_non_null (memmem (cmdline, length, reject, strlen (reject)));
  image = cimg_proxy_client_open_image (client, "oci:/fake:latest", NULL, &error);
  test_assert_no_error (error);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_reject_and_signed_by_are_refused),
    cmocka_unit_test (test_scopes_decide),
    cmocka_unit_test (test_accept_anything_changes_nothing),
    cmocka_unit_test (test_malformed_policy),
    cmocka_unit_test (test_newer_proxy_enforces),
  };

  return cmocka_run_group_tests_name ("policy", tests, setup, teardown);
}
