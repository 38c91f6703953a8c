/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * cimgproxy: inspect container images and unpack their layers through skopeo, streaming,
 * without storing the image anywhere first.
 */

#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <locale.h>
#include <stdio.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>
#include <gio/gunixoutputstream.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>

#include <cimgproxy/cimgproxy.h>

/* Exit codes, so that scripts can tell failures apart. */
enum
{
  EXIT_OK = 0,
  EXIT_FAILED = 1,
  EXIT_USAGE = 2,
  EXIT_NOT_FOUND = 3,
  EXIT_AUTH = 4,
  EXIT_VERIFICATION = 5,
};

static char *opt_authfile;
static char *opt_cert_dir;
static char *opt_tls_verify;
static gboolean opt_no_creds;
static char *opt_registries_conf;
static gboolean opt_insecure_policy;
static char *opt_policy;
static gboolean opt_debug;
static gboolean opt_quiet;
static gboolean opt_json;
static char *opt_output;
static int opt_jobs = 1;

static const GOptionEntry global_entries[] = {
  { "authfile", 0, 0, G_OPTION_ARG_FILENAME, &opt_authfile,
    "Registry credentials (containers-auth.json)", "FILE" },
  { "cert-dir", 0, 0, G_OPTION_ARG_FILENAME, &opt_cert_dir,
    "CA and client certificates for registries", "DIR" },
  { "tls-verify", 0, 0, G_OPTION_ARG_STRING, &opt_tls_verify,
    "Verify registries' TLS certificates (true or false; default: as registries.conf says)",
    "BOOL" },
  { "no-creds", 0, 0, G_OPTION_ARG_NONE, &opt_no_creds, "Access registries anonymously", NULL },
  { "registries-conf", 0, 0, G_OPTION_ARG_FILENAME, &opt_registries_conf, "registries.conf to use",
    "FILE" },
  { "insecure-policy", 0, 0, G_OPTION_ARG_NONE, &opt_insecure_policy,
    "Accept images whatever the signature policy says", NULL },
  { "policy", 0, 0, G_OPTION_ARG_FILENAME, &opt_policy, "Signature policy file to use", "FILE" },
  { "debug", 0, 0, G_OPTION_ARG_NONE, &opt_debug, "Show skopeo's debug output", NULL },
  { "quiet", 'q', 0, G_OPTION_ARG_NONE, &opt_quiet, "Print nothing but errors", NULL },
  { "json", 0, 0, G_OPTION_ARG_NONE, &opt_json, "inspect: print JSON", NULL },
  { "output", 'o', 0, G_OPTION_ARG_FILENAME, &opt_output, "blob: write to FILE, not stdout",
    "FILE" },
  { "jobs", 'j', 0, G_OPTION_ARG_INT, &opt_jobs,
    "extract: stream up to N layers at once (still applied in order)", "N" },
  { NULL }
};

static const char summary[] =
  "Commands:\n"
  "  inspect REF            digest, platform, layers and configuration of an image\n"
  "  manifest REF           the image manifest (OCI), as JSON\n"
  "  config REF             the image configuration (OCI), as JSON\n"
  "  blob REF DIGEST        one blob of the image, verified, to stdout or -o FILE\n"
  "  extract REF DIR        the image's files, layer by layer, into DIR\n"
  "\n"
  "REF is any reference skopeo understands: docker://HOST/NAME:TAG, oci:DIR:TAG,\n"
  "oci-archive:FILE, dir:DIR, docker-archive:FILE, containers-storage:NAME.\n"
  "\n"
  "Exit status: 0 success, 1 failure, 2 usage error, 3 image or blob not found,\n"
  "4 authentication failed, 5 verification failed (digest, size or diff_id).";

static int
exit_code_for (const GError *error)
{
  if (g_error_matches (error, CIMG_PROXY_ERROR, CIMG_PROXY_ERROR_NOT_FOUND))
    return EXIT_NOT_FOUND;
  if (g_error_matches (error, CIMG_PROXY_ERROR, CIMG_PROXY_ERROR_AUTHENTICATION_FAILED))
    return EXIT_AUTH;
  if (g_error_matches (error, CIMG_PROXY_ERROR, CIMG_PROXY_ERROR_VERIFICATION_FAILED))
    return EXIT_VERIFICATION;
  if (g_error_matches (error, CIMG_PROXY_ERROR, CIMG_PROXY_ERROR_INVALID_REFERENCE))
    return EXIT_USAGE;
  return EXIT_FAILED;
}

static int
fail (const GError *error)
{
  g_printerr ("cimgproxy: %s\n", error->message);
  return exit_code_for (error);
}

static CImgProxyClient *
new_client (GError **error)
{
  CImgProxyTlsVerify tls_verify = CIMG_PROXY_TLS_VERIFY_DEFAULT;

  if (opt_tls_verify != NULL)
    {
      if (g_ascii_strcasecmp (opt_tls_verify, "false") == 0)
        tls_verify = CIMG_PROXY_TLS_VERIFY_DISABLED;
      else if (g_ascii_strcasecmp (opt_tls_verify, "true") == 0)
        tls_verify = CIMG_PROXY_TLS_VERIFY_ENABLED;
      else
        {
          g_set_error (error, CIMG_PROXY_ERROR, CIMG_PROXY_ERROR_INVALID_REFERENCE,
                       "--tls-verify takes true or false, not “%s”", opt_tls_verify);
          return NULL;
        }
    }
  return g_initable_new (CIMG_PROXY_TYPE_CLIENT, NULL, error, "authfile", opt_authfile, "cert-dir",
                         opt_cert_dir, "tls-verify", tls_verify, "anonymous", opt_no_creds,
                         "registries-conf", opt_registries_conf, "insecure-policy",
                         opt_insecure_policy, "policy", opt_policy, "debug", opt_debug, NULL);
}

static JsonNode *
parse_json (GBytes *bytes, GError **error)
{
  g_autoptr (JsonParser) parser = json_parser_new ();

  if (!json_parser_load_from_data (parser, g_bytes_get_data (bytes, NULL),
                                   (gssize) g_bytes_get_size (bytes), error))
    return NULL;
  return json_node_copy (json_parser_get_root (parser));
}

static const char *
member_string (JsonObject *object, const char *name)
{
  JsonNode *node = object != NULL ? json_object_get_member (object, name) : NULL;

  return node != NULL && JSON_NODE_HOLDS_VALUE (node) &&
             json_node_get_value_type (node) == G_TYPE_STRING
           ? json_node_get_string (node)
           : NULL;
}

static gboolean
write_bytes_to_stdout (GBytes *bytes, GError **error)
{
  g_autoptr (GOutputStream) out = g_unix_output_stream_new (STDOUT_FILENO, FALSE);

  return g_output_stream_write_all (out, g_bytes_get_data (bytes, NULL), g_bytes_get_size (bytes),
                                    NULL, NULL, error) &&
         g_output_stream_write_all (out, "\n", 1, NULL, NULL, error);
}

static int
cmd_manifest_or_config (CImgProxyImage *image, gboolean config)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GBytes) bytes = config ? cimg_proxy_image_get_config (image, NULL, &error)
                                    : cimg_proxy_image_get_manifest (image, NULL, NULL, &error);

  if (bytes == NULL || !write_bytes_to_stdout (bytes, &error))
    return fail (error);
  return EXIT_OK;
}

static int
cmd_inspect (CImgProxyImage *image)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *digest = NULL;
  g_autoptr (GBytes) manifest = cimg_proxy_image_get_manifest (image, NULL, &digest, &error);
  g_autoptr (GBytes) config =
    manifest != NULL ? cimg_proxy_image_get_config (image, NULL, &error) : NULL;
  g_autoptr (GPtrArray) layers =
    config != NULL ? cimg_proxy_image_get_layer_info (image, NULL, &error) : NULL;
  g_autoptr (JsonNode) manifest_json = NULL;
  g_autoptr (JsonNode) config_json = NULL;
  g_autoptr (JsonBuilder) builder = json_builder_new ();
  g_autoptr (JsonGenerator) generator = json_generator_new ();
  g_autoptr (JsonNode) root = NULL;
  g_autofree char *text = NULL;
  JsonObject *config_object;
  JsonObject *runtime = NULL;
  gint64 total = 0;

  if (layers == NULL || (manifest_json = parse_json (manifest, &error)) == NULL ||
      (config_json = parse_json (config, &error)) == NULL)
    return fail (error);
  config_object = JSON_NODE_HOLDS_OBJECT (config_json) ? json_node_get_object (config_json) : NULL;
  if (config_object != NULL && json_object_has_member (config_object, "config") &&
      JSON_NODE_HOLDS_OBJECT (json_object_get_member (config_object, "config")))
    runtime = json_object_get_object_member (config_object, "config");

  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "reference");
  json_builder_add_string_value (builder, cimg_proxy_image_get_reference (image));
  json_builder_set_member_name (builder, "digest");
  json_builder_add_string_value (builder, digest);
  json_builder_set_member_name (builder, "mediaType");
  json_builder_add_string_value (builder,
                                 member_string (json_node_get_object (manifest_json), "mediaType"));
  json_builder_set_member_name (builder, "os");
  json_builder_add_string_value (builder, member_string (config_object, "os"));
  json_builder_set_member_name (builder, "architecture");
  json_builder_add_string_value (builder, member_string (config_object, "architecture"));
  json_builder_set_member_name (builder, "created");
  json_builder_add_string_value (builder, member_string (config_object, "created"));
  json_builder_set_member_name (builder, "layers");
  json_builder_begin_array (builder);
  for (guint i = 0; i < layers->len; i++)
    {
      CImgProxyLayerInfo *layer = g_ptr_array_index (layers, i);

      json_builder_begin_object (builder);
      json_builder_set_member_name (builder, "digest");
      json_builder_add_string_value (builder, cimg_proxy_layer_info_get_digest (layer));
      json_builder_set_member_name (builder, "size");
      json_builder_add_int_value (builder, cimg_proxy_layer_info_get_size (layer));
      json_builder_set_member_name (builder, "mediaType");
      json_builder_add_string_value (builder, cimg_proxy_layer_info_get_media_type (layer));
      json_builder_end_object (builder);
      total += MAX (cimg_proxy_layer_info_get_size (layer), 0);
    }
  json_builder_end_array (builder);
  if (runtime != NULL)
    {
      json_builder_set_member_name (builder, "config");
      json_builder_add_value (builder,
                              json_node_copy (json_object_get_member (config_object, "config")));
    }
  json_builder_end_object (builder);
  root = json_builder_get_root (builder);

  if (opt_json)
    {
      json_generator_set_pretty (generator, TRUE);
      json_generator_set_root (generator, root);
      text = json_generator_to_data (generator, NULL);
      g_print ("%s\n", text);
      return EXIT_OK;
    }

  g_print ("Reference:    %s\n", cimg_proxy_image_get_reference (image));
  g_print ("Digest:       %s\n", digest);
  g_print ("Platform:     %s/%s\n", member_string (config_object, "os"),
           member_string (config_object, "architecture"));
  if (member_string (config_object, "created") != NULL)
    g_print ("Created:      %s\n", member_string (config_object, "created"));
  if (runtime != NULL)
    {
      JsonNode *cmd = json_object_get_member (runtime, "Cmd");
      JsonNode *entrypoint = json_object_get_member (runtime, "Entrypoint");

      json_generator_set_root (generator, entrypoint != NULL ? entrypoint : cmd);
      if (entrypoint != NULL || cmd != NULL)
        {
          text = json_generator_to_data (generator, NULL);
          g_print ("Command:      %s\n", text);
        }
    }
  g_print ("Layers:       %u, %" G_GINT64_FORMAT " bytes\n", layers->len, total);
  for (guint i = 0; i < layers->len; i++)
    {
      CImgProxyLayerInfo *layer = g_ptr_array_index (layers, i);
      g_print ("  %s  %12" G_GINT64_FORMAT "  %s\n", cimg_proxy_layer_info_get_digest (layer),
               cimg_proxy_layer_info_get_size (layer),
               cimg_proxy_layer_info_get_media_type (layer));
    }
  return EXIT_OK;
}

/* The size of blob @digest: a layer's, or the configuration's from the manifest. */
static gint64
blob_size (CImgProxyImage *image, const char *digest, GError **error)
{
  g_autoptr (GPtrArray) layers = cimg_proxy_image_get_layer_info (image, NULL, error);
  g_autoptr (GBytes) manifest = NULL;
  g_autoptr (JsonNode) root = NULL;
  JsonObject *config;

  if (layers == NULL)
    return -2;
  for (guint i = 0; i < layers->len; i++)
    if (g_str_equal (cimg_proxy_layer_info_get_digest (g_ptr_array_index (layers, i)), digest))
      return cimg_proxy_layer_info_get_size (g_ptr_array_index (layers, i));

  manifest = cimg_proxy_image_get_manifest (image, NULL, NULL, error);
  if (manifest == NULL || (root = parse_json (manifest, error)) == NULL)
    return -2;
  config =
    JSON_NODE_HOLDS_OBJECT (root) && json_object_has_member (json_node_get_object (root), "config")
      ? json_object_get_object_member (json_node_get_object (root), "config")
      : NULL;
  if (config != NULL && g_strcmp0 (member_string (config, "digest"), digest) == 0)
    return json_object_get_int_member_with_default (config, "size", -1);

  g_set_error (error, CIMG_PROXY_ERROR, CIMG_PROXY_ERROR_NOT_FOUND,
               "%s has no blob %s among its layers and configuration",
               cimg_proxy_image_get_reference (image), digest);
  return -2;
}

static int
cmd_blob (CImgProxyImage *image, const char *digest)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (CImgProxyBlobStream) blob = NULL;
  g_autoptr (GOutputStream) out = NULL;
  g_autoptr (GFile) target = NULL;
  g_autoptr (GFile) partial = NULL;
  g_autofree char *partial_path = NULL;
  gint64 size = blob_size (image, digest, &error);

  if (size < -1)
    return fail (error);
  blob = cimg_proxy_image_open_blob (image, digest, size, NULL, &error);
  if (blob == NULL)
    return fail (error);

  if (opt_output == NULL || g_str_equal (opt_output, "-"))
    out = g_unix_output_stream_new (STDOUT_FILENO, FALSE);
  else
    {
      /* Written beside the target and renamed once verified: FILE is never a bad blob. */
      target = g_file_new_for_commandline_arg (opt_output);
      partial_path = g_strconcat (opt_output, ".partial", NULL);
      partial = g_file_new_for_commandline_arg (partial_path);
      out =
        G_OUTPUT_STREAM (g_file_replace (partial, NULL, FALSE, G_FILE_CREATE_NONE, NULL, &error));
      if (out == NULL)
        return fail (error);
    }

  if (g_output_stream_splice (out, G_INPUT_STREAM (blob),
                              G_OUTPUT_STREAM_SPLICE_CLOSE_SOURCE |
                                G_OUTPUT_STREAM_SPLICE_CLOSE_TARGET,
                              NULL, &error) < 0 ||
      (partial != NULL &&
       !g_file_move (partial, target, G_FILE_COPY_OVERWRITE, NULL, NULL, NULL, &error)))
    {
      if (partial != NULL)
        g_file_delete (partial, NULL, NULL);
      return fail (error);
    }
  return EXIT_OK;
}

#include "cimgproxy-extract.h"

static int
cmd_extract (CImgProxyImage *image, const char *directory)
{
  g_autoptr (GError) error = NULL;

  if (opt_jobs < 1 || opt_jobs > 64)
    {
      g_printerr ("cimgproxy: --jobs takes a number from 1 to 64\n");
      return EXIT_USAGE;
    }
  if (!cimgproxy_extract (image, directory, (guint) opt_jobs, opt_quiet, &error))
    return fail (error);
  return EXIT_OK;
}

int
main (int argc, char *argv[])
{
  g_autoptr (GOptionContext) context =
    g_option_context_new ("COMMAND REF [ARGS] - container images through skopeo");
  g_autoptr (GError) error = NULL;
  g_autoptr (CImgProxyClient) client = NULL;
  g_autoptr (CImgProxyImage) image = NULL;
  const char *command;
  guint expected_args;
  int status;

  setlocale (LC_ALL, "");
  g_option_context_add_main_entries (context, global_entries, NULL);
  g_option_context_set_description (context, summary);
  if (!g_option_context_parse (context, &argc, &argv, &error))
    {
      g_printerr ("cimgproxy: %s\nTry “cimgproxy --help”.\n", error->message);
      return EXIT_USAGE;
    }
  command = argc > 1 ? argv[1] : "";
  if (g_str_equal (command, "inspect") || g_str_equal (command, "manifest") ||
      g_str_equal (command, "config"))
    expected_args = 3;
  else if (g_str_equal (command, "blob") || g_str_equal (command, "extract"))
    expected_args = 4;
  else
    {
      g_printerr ("cimgproxy: %s\nTry “cimgproxy --help”.\n",
                  argc > 1 ? "unknown command" : "no command given");
      return EXIT_USAGE;
    }
  if ((guint) argc != expected_args)
    {
      g_printerr ("cimgproxy: %s takes %u argument%s; try “cimgproxy --help”\n", command,
                  expected_args - 2, expected_args == 3 ? "" : "s");
      return EXIT_USAGE;
    }

  client = new_client (&error);
  if (client != NULL)
    image = cimg_proxy_client_open_image (client, argv[2], NULL, &error);
  if (image == NULL)
    return fail (error);

  if (g_str_equal (command, "inspect"))
    status = cmd_inspect (image);
  else if (g_str_equal (command, "manifest"))
    status = cmd_manifest_or_config (image, FALSE);
  else if (g_str_equal (command, "config"))
    status = cmd_manifest_or_config (image, TRUE);
  else if (g_str_equal (command, "blob"))
    status = cmd_blob (image, argv[3]);
  else
    status = cmd_extract (image, argv[3]);

  g_clear_object (&image);
  if (!cimg_proxy_client_close (client, NULL, &error) && status == EXIT_OK)
    return fail (error);
  return status;
}
