/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include "test-util.h"

#include <dirent.h>

#include <glib/gstdio.h>

static const char *
images_dir (void)
{
  const char *dir = g_getenv ("CIMG_TEST_IMAGES");

  if (dir == NULL)
    fail_msg ("CIMG_TEST_IMAGES is not set; run the tests with meson test");
  return dir;
}

char *
test_oci_ref (const char *layout, const char *tag)
{
  return g_strdup_printf ("oci:%s/%s:%s", images_dir (), layout, tag);
}

char *
test_make_tmpdir (void)
{
  g_autoptr (GError) error = NULL;
  char *path = g_dir_make_tmp ("cimgproxy-test-XXXXXX", &error);

  test_assert_no_error (error);
  return path;
}

void
test_remove_tree (const char *path)
{
  g_autoptr (GFile) dir = g_file_new_for_path (path);
  g_autoptr (GFileEnumerator) children = g_file_enumerate_children (
    dir, G_FILE_ATTRIBUTE_STANDARD_NAME "," G_FILE_ATTRIBUTE_STANDARD_TYPE,
    G_FILE_QUERY_INFO_NOFOLLOW_SYMLINKS, NULL, NULL);
  GFileInfo *info;

  while (children != NULL && (info = g_file_enumerator_next_file (children, NULL, NULL)) != NULL)
    {
      g_autoptr (GFileInfo) owned = info;
      g_autofree char *child = g_build_filename (path, g_file_info_get_name (info), NULL);

      if (g_file_info_get_file_type (info) == G_FILE_TYPE_DIRECTORY)
        test_remove_tree (child);
      else
        g_unlink (child);
    }
  g_rmdir (path);
}

JsonObject *
test_expected_root (void)
{
  static JsonParser *parser;

  if (parser == NULL)
    {
      g_autoptr (GError) error = NULL;
      g_autofree char *path = g_build_filename (images_dir (), "expected.json", NULL);

      parser = json_parser_new ();
      json_parser_load_from_file (parser, path, &error);
      test_assert_no_error (error);
    }
  return json_node_get_object (json_parser_get_root (parser));
}

JsonObject *
test_expected_image (const char *key)
{
  JsonObject *images = json_object_get_object_member (test_expected_root (), "images");
  JsonObject *image = json_object_get_object_member (images, key);

  if (image == NULL)
    fail_msg ("expected.json describes no image %s", key);
  return image;
}

JsonArray *
test_expected_layers (const char *key)
{
  return json_object_get_array_member (test_expected_image (key), "layers");
}

char *
test_sha256_digest (const void *data, gsize size)
{
  g_autofree char *hex = g_compute_checksum_for_data (G_CHECKSUM_SHA256, data, size);

  return g_strconcat ("sha256:", hex, NULL);
}

char *
test_read_digest (GInputStream *stream, gsize chunk_size, guint64 *out_size, GError **error)
{
  g_autoptr (GChecksum) checksum = g_checksum_new (G_CHECKSUM_SHA256);
  g_autofree guint8 *buffer = g_malloc (chunk_size);
  guint64 total = 0;

  for (;;)
    {
      gssize n = g_input_stream_read (stream, buffer, chunk_size, NULL, error);
      if (n < 0)
        return NULL;
      if (n == 0)
        break;
      g_checksum_update (checksum, buffer, n);
      total += (guint64) n;
    }

  if (out_size != NULL)
    *out_size = total;
  return g_strconcat ("sha256:", g_checksum_get_string (checksum), NULL);
}

static guint
count_dir_entries (const char *path)
{
  DIR *dir = opendir (path);
  struct dirent *entry;
  guint count = 0;

  if (dir == NULL)
    fail_msg ("cannot list %s", path);
  while ((entry = readdir (dir)) != NULL)
    if (entry->d_name[0] != '.')
      count++;
  closedir (dir);
  /* Minus the fd opendir() itself holds when listing our own fds. */
  return count;
}

CImgProxyClient *
test_new_client (const char *first_property, ...)
{
  g_autoptr (GError) error = NULL;
  va_list args;
  GObject *client;

  va_start (args, first_property);
  client = g_initable_new_valist (CIMG_PROXY_TYPE_CLIENT, first_property, args, NULL, &error);
  va_end (args);
  test_assert_no_error (error);
  return CIMG_PROXY_CLIENT (client);
}

guint
test_count_open_fds (void)
{
  return count_dir_entries ("/proc/self/fd") - 1;
}

gsize
test_status_kib (const char *field)
{
  g_autofree char *status = NULL;
  g_autofree char *key = g_strconcat (field, ":", NULL);
  const char *line;

  if (!g_file_get_contents ("/proc/self/status", &status, NULL, NULL))
    fail_msg ("cannot read /proc/self/status");
  line = strstr (status, key);
  if (line == NULL)
    fail_msg ("/proc/self/status has no %s", field);
  return (gsize) g_ascii_strtoull (line + strlen (key), NULL, 10);
}

guint
test_count_process_fds (int pid)
{
  g_autofree char *path = g_strdup_printf ("/proc/%d/fd", pid);

  return count_dir_entries (path);
}
