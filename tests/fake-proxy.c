/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * A stand-in for `skopeo experimental-image-proxy`, for what the real one cannot be made to
 * do: die at chosen moments, break the protocol, stall, or speak a newer protocol than
 * Debian's skopeo. The tests start it through the client's skopeo-argv property; its first
 * argument is a comma-separated list of options:
 *
 *   version=X.Y.Z    the protocol to announce (default 0.2.3); from 0.2.8 on, replies carry
 *                    error_code. Methods newer than the version are unknown, as in skopeo.
 *   layers=N         how many layers images have (default 1)
 *   exit-at-start    exit with status 3 before reading anything, complaining on stderr
 *   exit-on=METHOD   exit with status 7 on receiving METHOD
 *   die-in-blob      exit with status 9 after the first 1000 bytes of a blob
 *   stall-reply      never answer anything but Initialize
 *   stall-blob       serve blobs of unknown size that get 1000 bytes and then nothing
 *   trickle-blob     serve blobs of 5000 "t"s, 1000 bytes every 400 ms, answering nothing
 *                    else meanwhile
 *   bad-json-on=M    answer M with something that is not JSON
 *   extra-fd-on=M    send an extra fd with the answer to M
 *   no-pipe-id-on=M  answer M with its pipe but pipeid 0
 *   bad-image-id     answer OpenImage with a string for the image id
 *   twice-on=M       answer M twice
 *   raw-error        GetRawBlob sends 50 bytes, then a "retryable" error on its error pipe
 *
 * Images: a reference containing "missing" does not exist (OpenImage fails with a message
 * the client cannot tell from other failures; OpenImageOptional answers 0). Every layer is a
 * blob of 100 "a"s; GetBlob serves as many bytes as it is asked for (up to 64 KiB), and the
 * layers from GetLayerInfoPiped have media type application/x-piped, so tests can tell
 * where a layer list came from.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <json-glib/json-glib.h>

static struct
{
  const char *version;
  guint minor_patch; /* 0.2.x: x */
  guint layers;
  const char *exit_on;
  gboolean die_in_blob;
  gboolean stall_reply;
  gboolean stall_blob;
  gboolean trickle_blob;
  const char *bad_json_on;
  const char *extra_fd_on;
  const char *no_pipe_id_on;
  gboolean bad_image_id;
  const char *twice_on;
  gboolean raw_error;
} options = { "0.2.3", 3, 1 };

static const char *current_method;

/* Dies the way a crashing proxy does: at once, without cleaning up (nor, under ASan, a leak
 * report about what it did not clean up). */
static G_NORETURN void
die (int status, const char *why)
{
  fprintf (stderr, "fake-proxy: %s\n", why);
  fflush (stderr);
  _exit (status);
}

static gboolean
is (const char *option, const char *method)
{
  return option != NULL && g_str_equal (option, method);
}

static void
send_packet (const char *packet, const int *fds, guint n_fds)
{
  char control[CMSG_SPACE (4 * sizeof (int))] = { 0 };
  struct iovec iov = { (void *) packet, strlen (packet) };
  struct msghdr message = { 0 };

  message.msg_iov = &iov;
  message.msg_iovlen = 1;
  if (n_fds > 0)
    {
      struct cmsghdr *header;

      message.msg_control = control;
      message.msg_controllen = CMSG_SPACE (n_fds * sizeof (int));
      header = CMSG_FIRSTHDR (&message);
      header->cmsg_level = SOL_SOCKET;
      header->cmsg_type = SCM_RIGHTS;
      header->cmsg_len = CMSG_LEN (n_fds * sizeof (int));
      memcpy (CMSG_DATA (header), fds, n_fds * sizeof (int));
    }
  if (sendmsg (0, &message, MSG_NOSIGNAL) < 0)
    exit (1);
}

/* Sends one reply, bent as the options say. @fd is a pipe read end to pass, or -1. */
static void
reply (gboolean success, const char *value_json, guint pipe_id, const char *error, int fd)
{
  g_autofree char *code = NULL;
  g_autofree char *packet = NULL;
  int fds[2] = { fd, fd };
  guint n_fds = fd >= 0 ? 1 : 0;

  if (options.minor_patch >= 8)
    code = g_strdup_printf (",\"error_code\":\"%s\"", success ? "" : "other");
  packet = g_strdup_printf ("{\"success\":%s,\"value\":%s,\"pipeid\":%u%s,\"error\":\"%s\"}",
                            success ? "true" : "false", value_json, pipe_id,
                            code != NULL ? code : "", error);

  if (is (options.bad_json_on, current_method))
    packet[strlen (packet) / 2] = '\0';
  if (is (options.extra_fd_on, current_method))
    {
      fds[n_fds] = fd >= 0 ? fd : 2;
      n_fds++;
    }
  if (is (options.no_pipe_id_on, current_method))
    {
      g_free (packet);
      packet =
        g_strdup_printf ("{\"success\":true,\"value\":%s,\"pipeid\":0,\"error\":\"\"}", value_json);
    }
  send_packet (packet, fds, n_fds);
  if (is (options.twice_on, current_method))
    send_packet (packet, fds, n_fds);
}

static void
fail (const char *error)
{
  reply (FALSE, "null", 0, error, -1);
}

/* Serves @data through a pipe; the write end stays open until FinishPipe, as in skopeo. */
static void
reply_with_pipe (const char *value_json, const void *data, gsize size)
{
  int fds[2];

  if (pipe (fds) != 0 || (size > 0 && write (fds[1], data, size) != (gssize) size))
    exit (1);
  reply (TRUE, value_json, (guint) fds[1], "", fds[0]);
  close (fds[0]);
}

static char *
layer_digest (void)
{
  char blob[100];

  memset (blob, 'a', sizeof blob);
  return g_strconcat (
    "sha256:", g_compute_checksum_for_data (G_CHECKSUM_SHA256, (guchar *) blob, sizeof blob), NULL);
}

static char *
layer_list (const char *media_type_key, const char *media_type)
{
  g_autofree char *digest = layer_digest ();
  GString *json = g_string_new ("[");

  for (guint i = 0; i < options.layers; i++)
    g_string_append_printf (json, "%s{\"digest\":\"%s\",\"size\":100,\"%s\":\"%s\"}",
                            i > 0 ? "," : "", digest, media_type_key, media_type);
  g_string_append (json, "]");
  return g_string_free (json, FALSE);
}

static void
serve_manifest (void)
{
  g_autofree char *layers = layer_list ("mediaType", "application/vnd.oci.image.layer.v1.tar");
  g_autofree char *manifest =
    g_strdup_printf ("{\"schemaVersion\":2,\"mediaType\":"
                     "\"application/vnd.oci.image.manifest.v1+json\",\"layers\":%s}",
                     layers);
  g_autofree char *digest =
    g_compute_checksum_for_data (G_CHECKSUM_SHA256, (guchar *) manifest, strlen (manifest));
  g_autofree char *value = g_strdup_printf ("\"sha256:%s\"", digest);

  reply_with_pipe (value, manifest, strlen (manifest));
}

static void
serve_blob (JsonArray *args)
{
  gint64 size = json_array_get_length (args) == 3 ? json_array_get_int_element (args, 2) : 0;
  char data[64 * 1024];
  int fds[2];

  if (options.stall_blob || options.die_in_blob)
    {
      memset (data, 'x', 1000);
      if (pipe (fds) != 0 || write (fds[1], data, 1000) != 1000)
        exit (1);
      /* -1: the size is unknown, as from a registry that sends no Content-Length. */
      reply (TRUE, "-1", (guint) fds[1], "", fds[0]);
      close (fds[0]);
      if (options.die_in_blob)
        {
          die (9, "dying in the middle of a blob");
        }
      return;
    }
  if (options.trickle_blob)
    {
      memset (data, 't', 1000);
      if (pipe (fds) != 0)
        exit (1);
      reply (TRUE, "5000", (guint) fds[1], "", fds[0]);
      close (fds[0]);
      for (int i = 0; i < 5; i++)
        {
          if (i > 0)
            g_usleep (400 * 1000);
          if (write (fds[1], data, 1000) != 1000)
            exit (1);
        }
      return;
    }
  size = CLAMP (size, 0, (gint64) sizeof data);
  memset (data, 'a', (gsize) size);
  reply_with_pipe ("null", data, (gsize) size);
}

/* GetRawBlob: the data and an error pipe, both closed by the server once the copy ends. */
static void
serve_raw_blob (void)
{
  const char *error_json = "{\"code\":\"retryable\",\"message\":\"fake: connection reset\"}";
  char data[100];
  int data_pipe[2];
  int error_pipe[2];
  int fds[2];
  gsize size = options.raw_error ? 50 : sizeof data;

  memset (data, 'a', sizeof data);
  if (pipe (data_pipe) != 0 || pipe (error_pipe) != 0 ||
      write (data_pipe[1], data, size) != (gssize) size)
    exit (1);
  if (options.raw_error && write (error_pipe[1], error_json, strlen (error_json)) < 0)
    exit (1);
  close (data_pipe[1]);
  close (error_pipe[1]);

  fds[0] = data_pipe[0];
  fds[1] = error_pipe[0];
  send_packet ("{\"success\":true,\"value\":-1,\"pipeid\":0,\"error_code\":\"\","
               "\"error\":\"\"}",
               fds, 2);
  close (data_pipe[0]);
  close (error_pipe[0]);
}

static void
handle (const char *method, JsonArray *args)
{
  const char *reference =
    json_array_get_length (args) > 0 && JSON_NODE_HOLDS_VALUE (json_array_get_element (args, 0)) &&
        json_node_get_value_type (json_array_get_element (args, 0)) == G_TYPE_STRING
      ? json_array_get_string_element (args, 0)
      : "";
  gboolean missing = strstr (reference, "missing") != NULL;

  if (g_str_equal (method, "OpenImage"))
    {
      if (missing)
        fail ("fake-proxy: nothing here by that name");
      else
        reply (TRUE, options.bad_image_id ? "\"abc\"" : "1", 0, "", -1);
    }
  else if (g_str_equal (method, "OpenImageOptional") && options.minor_patch >= 4)
    reply (TRUE, missing ? "0" : "1", 0, "", -1);
  else if (g_str_equal (method, "CloseImage"))
    reply (TRUE, "null", 0, "", -1);
  else if (g_str_equal (method, "GetManifest"))
    serve_manifest ();
  else if (g_str_equal (method, "GetFullConfig"))
    reply_with_pipe ("null", "{\"architecture\":\"amd64\"}",
                     strlen ("{\"architecture\":\"amd64\"}"));
  else if (g_str_equal (method, "GetLayerInfo") && options.minor_patch >= 5)
    {
      g_autofree char *layers = layer_list ("media_type", "application/x-inline");
      reply (TRUE, layers, 0, "", -1);
    }
  else if (g_str_equal (method, "GetLayerInfoPiped") && options.minor_patch >= 7)
    {
      g_autofree char *layers = layer_list ("media_type", "application/x-piped");
      reply_with_pipe ("null", layers, strlen (layers));
    }
  else if (g_str_equal (method, "GetBlob"))
    serve_blob (args);
  else if (g_str_equal (method, "GetRawBlob") && options.minor_patch >= 8)
    serve_raw_blob ();
  else if (g_str_equal (method, "FinishPipe"))
    {
      /* The pipe id is the write end's fd number, as in skopeo. */
      close ((int) json_array_get_int_element (args, 0));
      reply (TRUE, "null", 0, "", -1);
    }
  else
    {
      g_autofree char *error = g_strdup_printf ("unknown method: %s", method);
      fail (error);
    }
}

static gboolean
parse_options (const char *spec)
{
  g_auto (GStrv) parts = g_strsplit (spec, ",", -1);

  for (char **part = parts; *part != NULL; part++)
    {
      const char *value = strchr (*part, '=') != NULL ? strchr (*part, '=') + 1 : NULL;
      g_autofree char *name =
        g_strndup (*part, value != NULL ? (gsize) (value - 1 - *part) : strlen (*part));

      if (g_str_equal (name, "version"))
        {
          options.version = g_strdup (value);
          options.minor_patch = g_str_has_prefix (value, "0.2.") ? atoi (value + 4) : 0;
        }
      else if (g_str_equal (name, "layers"))
        options.layers = (guint) atoi (value);
      else if (g_str_equal (name, "exit-at-start"))
        {
          die (3, "refusing to start");
        }
      else if (g_str_equal (name, "exit-on"))
        options.exit_on = g_strdup (value);
      else if (g_str_equal (name, "die-in-blob"))
        options.die_in_blob = TRUE;
      else if (g_str_equal (name, "stall-reply"))
        options.stall_reply = TRUE;
      else if (g_str_equal (name, "stall-blob"))
        options.stall_blob = TRUE;
      else if (g_str_equal (name, "trickle-blob"))
        options.trickle_blob = TRUE;
      else if (g_str_equal (name, "bad-json-on"))
        options.bad_json_on = g_strdup (value);
      else if (g_str_equal (name, "extra-fd-on"))
        options.extra_fd_on = g_strdup (value);
      else if (g_str_equal (name, "no-pipe-id-on"))
        options.no_pipe_id_on = g_strdup (value);
      else if (g_str_equal (name, "bad-image-id"))
        options.bad_image_id = TRUE;
      else if (g_str_equal (name, "twice-on"))
        options.twice_on = g_strdup (value);
      else if (g_str_equal (name, "raw-error"))
        options.raw_error = TRUE;
      else
        {
          fprintf (stderr, "fake-proxy: unknown option “%s”\n", *part);
          return FALSE;
        }
    }
  return TRUE;
}

int
main (int argc, char *argv[])
{
  char buffer[32 * 1024];
  ssize_t n;

  if (argc < 2 || !parse_options (argv[1]))
    return 2;

  while ((n = recv (0, buffer, sizeof buffer, 0)) > 0)
    {
      g_autoptr (JsonParser) parser = json_parser_new ();
      g_autofree char *quoted = g_strdup_printf ("\"%s\"", options.version);
      JsonObject *request;
      JsonArray *args;

      if (!json_parser_load_from_data (parser, buffer, n, NULL) ||
          !JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser)))
        {
          current_method = "";
          fail ("invalid request");
          continue;
        }
      request = json_node_get_object (json_parser_get_root (parser));
      current_method = json_object_get_string_member_with_default (request, "method", "");
      args = json_object_get_array_member (request, "args");

      if (g_str_equal (current_method, "Shutdown"))
        break;
      if (is (options.exit_on, current_method))
        {
          g_autofree char *why = g_strdup_printf ("dying in %s", current_method);
          die (7, why);
        }
      if (g_str_equal (current_method, "Initialize"))
        reply (TRUE, quoted, 0, "", -1);
      else if (options.stall_reply)
        pause ();
      else
        handle (current_method, args);
    }
  return 0;
}
