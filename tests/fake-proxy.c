/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * A stand-in for `skopeo experimental-image-proxy`, for what the real one cannot be made to
 * do. The tests start it through the client's skopeo-argv property; its first argument
 * picks the behaviour:
 *
 *   version=X.Y.Z   answer Initialize with protocol X.Y.Z, then fail every other request
 *   exit-at-start   exit with status 3 before reading anything, complaining on stderr
 *   stall-reply     answer Initialize, then never answer anything else
 *   stall-blob      open any image as 1; serve every blob through a pipe that gets 1000
 *                   bytes and then nothing, as from a registry that stopped sending
 *   exit-on=METHOD  answer Initialize, then exit with status 7 on receiving METHOD
 *
 * The client appends "experimental-image-proxy" and its options; they are ignored.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <json-glib/json-glib.h>

static void
send_packet (const char *packet, int fd)
{
  char control[CMSG_SPACE (sizeof (int))] = { 0 };
  struct iovec iov = { (void *) packet, strlen (packet) };
  struct msghdr message = { 0 };

  message.msg_iov = &iov;
  message.msg_iovlen = 1;
  if (fd >= 0)
    {
      struct cmsghdr *header;

      message.msg_control = control;
      message.msg_controllen = sizeof control;
      header = CMSG_FIRSTHDR (&message);
      header->cmsg_level = SOL_SOCKET;
      header->cmsg_type = SCM_RIGHTS;
      header->cmsg_len = CMSG_LEN (sizeof (int));
      memcpy (CMSG_DATA (header), &fd, sizeof fd);
    }
  if (sendmsg (0, &message, MSG_NOSIGNAL) < 0)
    exit (1);
}

static void
reply (gboolean success, const char *value_json, guint pipe_id, const char *error, int fd)
{
  g_autofree char *packet =
    g_strdup_printf ("{\"success\":%s,\"value\":%s,\"pipeid\":%u,\"error\":\"%s\"}",
                     success ? "true" : "false", value_json, pipe_id, error);

  send_packet (packet, fd);
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

/* A pipe with a little data and then silence; its write end stays open for good. */
static void
reply_stalled_blob (void)
{
  char data[1000];
  int fds[2];

  memset (data, 'x', sizeof data);
  if (pipe (fds) != 0 || write (fds[1], data, sizeof data) != sizeof data)
    exit (1);
  /* -1: the size is unknown, as from a registry that sends no Content-Length. */
  reply (TRUE, "-1", (guint) fds[1], "", fds[0]);
  close (fds[0]);
}

int
main (int argc, char *argv[])
{
  const char *mode = argc > 1 ? argv[1] : "";
  const char *version = "0.2.3";
  const char *exit_on = NULL;
  char *method;

  if (g_str_equal (mode, "exit-at-start"))
    {
      fprintf (stderr, "fake-proxy: refusing to start\n");
      return 3;
    }
  if (g_str_has_prefix (mode, "version="))
    version = mode + strlen ("version=");
  else if (g_str_has_prefix (mode, "exit-on="))
    exit_on = mode + strlen ("exit-on=");
  else if (!g_str_equal (mode, "stall-reply") && !g_str_equal (mode, "stall-blob"))
    {
      fprintf (stderr, "fake-proxy: unknown mode “%s”\n", mode);
      return 2;
    }

  while ((method = receive_method ()) != NULL)
    {
      g_autofree char *owned G_GNUC_UNUSED = method;
      g_autofree char *quoted = g_strdup_printf ("\"%s\"", version);

      if (g_str_equal (method, "Shutdown"))
        break;
      if (exit_on != NULL && g_str_equal (method, exit_on))
        {
          fprintf (stderr, "fake-proxy: dying in %s\n", method);
          return 7;
        }
      if (g_str_equal (method, "Initialize"))
        reply (TRUE, quoted, 0, "", -1);
      else if (g_str_equal (mode, "stall-reply"))
        pause ();
      else if (g_str_equal (mode, "stall-blob") && g_str_equal (method, "OpenImage"))
        reply (TRUE, "1", 0, "", -1);
      else if (g_str_equal (mode, "stall-blob") && g_str_equal (method, "GetBlob"))
        reply_stalled_blob ();
      else if (g_str_equal (method, "FinishPipe"))
        reply (FALSE, "null", 0, "write |1: broken pipe", -1);
      else
        reply (FALSE, "null", 0, "fake-proxy: not implemented", -1);
    }
  return 0;
}
