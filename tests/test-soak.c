/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * A thousand clients, one after another, each opening an image, reading a blob and closing:
 * the process must end up with as many fds and threads as it started with, and about as
 * much memory.
 */

#include "test-util.h"

#define CYCLES  1000
#define WARM_UP 50

static guint
count_threads (void)
{
  g_autoptr (GDir) dir = g_dir_open ("/proc/self/task", 0, NULL);
  guint count = 0;

  while (g_dir_read_name (dir) != NULL)
    count++;
  return count;
}

static void
cycle (const char *ref, JsonObject *layer)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (CImgProxyClient) client = cimg_proxy_client_new (NULL, &error);
  g_autoptr (CImgProxyImage) image = NULL;
  g_autoptr (CImgProxyBlobStream) blob = NULL;
  g_autofree char *digest = NULL;

  test_assert_no_error (error);
  image = cimg_proxy_client_open_image (client, ref, NULL, &error);
  test_assert_no_error (error);
  blob = cimg_proxy_image_open_blob (image, json_object_get_string_member (layer, "digest"),
                                     json_object_get_int_member (layer, "size"), NULL, &error);
  test_assert_no_error (error);
  digest = test_read_digest (G_INPUT_STREAM (blob), 65536, NULL, &error);
  test_assert_no_error (error);
  assert_string_equal (digest, json_object_get_string_member (layer, "digest"));
  assert_true (cimg_proxy_image_close (image, NULL, &error));
  assert_true (cimg_proxy_client_close (client, NULL, &error));
  test_assert_no_error (error);
}

static void
test_thousand_cycles (void **state)
{
  g_autofree char *ref = test_oci_ref ("multi", "latest");
  JsonObject *layer = json_array_get_object_element (test_expected_layers ("multi:latest"), 0);
  guint fds, threads;
  gsize rss;

  for (guint i = 0; i < WARM_UP; i++)
    cycle (ref, layer);
  fds = test_count_open_fds ();
  threads = count_threads ();
  rss = test_status_kib ("VmRSS");

  for (guint i = WARM_UP; i < CYCLES; i++)
    cycle (ref, layer);

  g_print ("# after %u cycles: fds %u -> %u, threads %u -> %u, RSS %zu -> %zu KiB\n", CYCLES, fds,
           test_count_open_fds (), threads, count_threads (), rss, test_status_kib ("VmRSS"));
  assert_int_equal (test_count_open_fds (), fds);
  assert_int_equal (count_threads (), threads);
  /* Allocator slack, not growth: a leak of even 1 KiB a cycle would show as 950 KiB. */
  assert_true (test_status_kib ("VmRSS") < rss + 512);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_thousand_cycles),
  };

  return cmocka_run_group_tests_name ("soak", tests, NULL, NULL);
}
