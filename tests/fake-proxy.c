/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * A stand-in for `skopeo experimental-image-proxy`, for what the real one cannot be made to
 * do. The tests start it through the client's skopeo-argv property; its first argument
 * picks the behaviour:
 *
 *   version=X.Y.Z   answer Initialize with protocol X.Y.Z, then fail every other request
 *   exit-at-start   exit with status 3 before reading anything, complaining on stderr
 *
 * The client appends "experimental-image-proxy" and its options; they are ignored.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <json-glib/json-glib.h>

static void
reply (gboolean success, const char *value, const char *error)
{
  g_autofree char *packet = NULL;
  g_autofree char *quoted = value != NULL ? g_strdup_printf ("\"%s\"", value) : NULL;

  packet = g_strdup_printf ("{\"success\":%s,\"value\":%s,\"pipeid\":0,\"error\":\"%s\"}",
                            success ? "true" : "false", quoted != NULL ? quoted : "null", error);
  if (send (0, packet, strlen (packet), MSG_NOSIGNAL) < 0)
    exit (1);
}

static char *
receive_method (void)
{
  g_autoptr (JsonParser) parser = json_parser_new ();
  char buffer[32 * 1024];
  ssize_t n = recv (0, buffer, sizeof buffer, 0);
  JsonNode *root;

  if (n <= 0)
    return NULL;
  if (!json_parser_load_from_data (parser, buffer, n, NULL))
    return g_strdup ("");
  root = json_parser_get_root (parser);
  if (!JSON_NODE_HOLDS_OBJECT (root))
    return g_strdup ("");
  return g_strdup (
    json_object_get_string_member_with_default (json_node_get_object (root), "method", ""));
}

int
main (int argc, char *argv[])
{
  const char *mode = argc > 1 ? argv[1] : "";
  const char *version = NULL;
  char *method;

  if (g_str_equal (mode, "exit-at-start"))
    {
      fprintf (stderr, "fake-proxy: refusing to start\n");
      return 3;
    }
  if (g_str_has_prefix (mode, "version="))
    version = mode + strlen ("version=");
  else
    {
      fprintf (stderr, "fake-proxy: unknown mode “%s”\n", mode);
      return 2;
    }

  while ((method = receive_method ()) != NULL)
    {
      g_autofree char *owned = method;

      if (g_str_equal (method, "Shutdown"))
        break;
      if (g_str_equal (method, "Initialize"))
        reply (TRUE, version, "");
      else
        reply (FALSE, NULL, "fake-proxy: not implemented");
    }
  return 0;
}
