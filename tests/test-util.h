/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Helpers shared by the CMocka tests: where the generated images are, what they contain, and
 * small checks that need GLib.
 */

#pragma once

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>

#include <json-glib/json-glib.h>

#include "cimgproxy-private.h"

G_BEGIN_DECLS

/* cmocka 1.1 declares some of its functions without C linkage guards. */
#include <cmocka.h>

/* An `oci:` reference to @layout (multi, corrupt, sample) in the generated images. */
char *test_oci_ref (const char *layout, const char *tag);
/* A temporary directory that is removed with its contents by test_remove_tree(). */
char *test_make_tmpdir (void);
void test_remove_tree (const char *path);

/* The whole of expected.json, and the facts mkoci.py recorded for "LAYOUT:TAG"; owned by the test
 * utilities. */
JsonObject *test_expected_root (void);
JsonObject *test_expected_image (const char *key);
JsonArray *test_expected_layers (const char *key);

char *test_sha256_digest (const void *data, gsize size);
/* Reads @stream to the end in @chunk_size reads; the digest of what came, or NULL. */
char *test_read_digest (GInputStream *stream, gsize chunk_size, guint64 *out_size, GError **error);

/* A client with the given properties, NULL-terminated; failing to start one fails the test. */
CImgProxyClient *test_new_client (const char *first_property, ...) G_GNUC_NULL_TERMINATED;

guint test_count_open_fds (void);
/* A "Vm..." figure of /proc/self/status in KiB, such as "VmRSS" or "VmHWM" (the peak). */
gsize test_status_kib (const char *field);
guint test_count_process_fds (int pid);

/* Fails the running test with the error's message if @error is set. */
#define test_assert_no_error(error)                                                                \
  do                                                                                               \
    {                                                                                              \
      if ((error) != NULL)                                                                         \
        fail_msg ("unexpected error: %s", (error)->message);                                       \
    }                                                                                              \
  while (0)

#define test_assert_error(error, expected_domain, expected_code)                                   \
  do                                                                                               \
    {                                                                                              \
      if ((error) == NULL)                                                                         \
        fail_msg ("expected an error %s/%d, got none", g_quark_to_string (expected_domain),        \
                  (int) (expected_code));                                                          \
      if (!g_error_matches ((error), (expected_domain), (expected_code)))                          \
        fail_msg ("expected error %s/%d, got %s/%d: %s", g_quark_to_string (expected_domain),      \
                  (int) (expected_code), g_quark_to_string ((error)->domain), (error)->code,       \
                  (error)->message);                                                               \
    }                                                                                              \
  while (0)

G_END_DECLS
