/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The signature-policy check that old proxies skip. skopeo's proxy checks
 * containers-policy.json(5) only since protocol 0.2.6 (skopeo 1.13); before that it opens any
 * image whatever the policy says, while `skopeo copy` would refuse it. So on such a proxy the
 * client reads the policy itself, and refuses images for which it asks anything but
 * insecureAcceptAnything: it cannot check signatures, but it can refuse to pretend.
 */

#include "config.h"

#include <json-glib/json-glib.h>

#include "cimgproxy-private.h"

/* containers-policy.json(5): the --policy option, else the user's file, else the system's. */
static char *
effective_policy_path (const char *configured)
{
  g_autofree char *user = NULL;

  if (configured != NULL)
    return g_strdup (configured);
  user = g_build_filename (g_get_home_dir (), ".config", "containers", "policy.json", NULL);
  if (g_file_test (user, G_FILE_TEST_EXISTS))
    return g_steal_pointer (&user);
  return g_strdup ("/etc/containers/policy.json");
}

/* The scopes a policy may name for @name under @transport, most specific first (see
 * containers-policy.json(5)): for docker, repository with tag or digest, repository, then
 * each enclosing namespace up to the host; for path-based transports, the path and each
 * directory above it. */
static GPtrArray *
candidate_scopes (const char *transport, const char *name)
{
  GPtrArray *scopes = g_ptr_array_new_with_free_func (g_free);
  g_autofree char *scope = NULL;

  if (g_str_equal (transport, "docker"))
    {
      char *end;

      scope = g_strdup (g_str_has_prefix (name, "//") ? name + 2 : name);
      g_ptr_array_add (scopes, g_strdup (scope));
      /* Without the tag or digest: the repository. */
      end = strchr (scope, '@');
      if (end == NULL && strrchr (scope, ':') > strrchr (scope, '/'))
        end = strrchr (scope, ':');
      if (end != NULL)
        *end = '\0';
      while (TRUE)
        {
          char *slash;

          if (!g_str_equal (scope, g_ptr_array_index (scopes, scopes->len - 1)))
            g_ptr_array_add (scopes, g_strdup (scope));
          slash = strrchr (scope, '/');
          if (slash == NULL)
            break;
          *slash = '\0';
        }
    }
  else
    {
      char *colon;

      scope = g_strdup (name);
      g_ptr_array_add (scopes, g_strdup (scope));
      /* oci:PATH:TAG and oci-archive:PATH:TAG name the path alone too. */
      colon = strrchr (scope, ':');
      if (colon != NULL && strchr (colon, '/') == NULL)
        {
          *colon = '\0';
          g_ptr_array_add (scopes, g_strdup (scope));
        }
      while (scope[0] == '/' && scope[1] != '\0')
        {
          char *slash = strrchr (scope, '/');
          *(slash == scope ? slash + 1 : slash) = '\0';
          g_ptr_array_add (scopes, g_strdup (scope));
        }
    }
  return scopes;
}

static gboolean
invalid (GError **error, const char *path, const char *what)
{
  g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
               "The signature policy %s is not valid: %s; see containers-policy.json(5)", path,
               what);
  return FALSE;
}

/* The type of the first requirement in @requirements that is not insecureAcceptAnything. */
static gboolean
find_demand (JsonNode *requirements, const char *path, const char **out_demand, GError **error)
{
  JsonArray *array;

  if (requirements == NULL || !JSON_NODE_HOLDS_ARRAY (requirements))
    return invalid (error, path, "a list of requirements is not a JSON array");
  array = json_node_get_array (requirements);
  if (json_array_get_length (array) == 0)
    return invalid (error, path, "a list of requirements is empty");
  *out_demand = NULL;
  for (guint i = 0; i < json_array_get_length (array); i++)
    {
      JsonNode *node = json_array_get_element (array, i);
      const char *type;

      if (!JSON_NODE_HOLDS_OBJECT (node))
        return invalid (error, path, "a requirement is not a JSON object");
      type = json_object_get_string_member_with_default (json_node_get_object (node), "type", NULL);
      if (type == NULL)
        return invalid (error, path, "a requirement has no type");
      if (!g_str_equal (type, "insecureAcceptAnything") && *out_demand == NULL)
        *out_demand = g_intern_string (type);
    }
  return TRUE;
}

gboolean
_cimg_proxy_check_unenforced_policy (const char *configured_path,
                                     const char *reference,
                                     const char *skopeo_version,
                                     GError **error)
{
  g_autofree char *path = effective_policy_path (configured_path);
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_autoptr (GError) local_error = NULL;
  g_autofree char *transport = NULL;
  g_autoptr (GPtrArray) scopes = NULL;
  const char *colon = strchr (reference, ':');
  JsonNode *requirements = NULL;
  JsonObject *root;
  JsonObject *transports = NULL;
  const char *demand = NULL;

  /* No policy anywhere: nothing has been asked for. (skopeo copy would refuse to run.) */
  if (configured_path == NULL && !g_file_test (path, G_FILE_TEST_EXISTS))
    return TRUE;
  if (!json_parser_load_from_file (parser, path, &local_error))
    return invalid (error, path, local_error->message);
  if (!JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser)))
    return invalid (error, path, "it is not a JSON object");
  root = json_node_get_object (json_parser_get_root (parser));
  if (!json_object_has_member (root, "default"))
    return invalid (error, path, "it has no \"default\" requirements");

  if (json_object_has_member (root, "transports"))
    {
      JsonNode *node = json_object_get_member (root, "transports");
      if (!JSON_NODE_HOLDS_OBJECT (node))
        return invalid (error, path, "\"transports\" is not a JSON object");
      transports = json_node_get_object (node);
    }

  transport = colon != NULL ? g_strndup (reference, colon - reference) : g_strdup ("");
  if (transports != NULL && json_object_has_member (transports, transport))
    {
      JsonNode *node = json_object_get_member (transports, transport);
      JsonObject *by_scope;

      if (!JSON_NODE_HOLDS_OBJECT (node))
        return invalid (error, path, "a transport's scopes are not a JSON object");
      by_scope = json_node_get_object (node);
      scopes = candidate_scopes (transport, colon != NULL ? colon + 1 : reference);
      g_ptr_array_add (scopes, g_strdup (""));
      for (guint i = 0; i < scopes->len && requirements == NULL; i++)
        requirements = json_object_get_member (by_scope, g_ptr_array_index (scopes, i));
    }
  if (requirements == NULL)
    requirements = json_object_get_member (root, "default");

  if (!find_demand (requirements, path, &demand, error))
    return FALSE;
  if (demand == NULL)
    return TRUE;

  g_set_error (error, CIMG_PROXY_ERROR, CIMG_PROXY_ERROR_POLICY_NOT_ENFORCED,
               "The signature policy %s requires “%s” for %s, but this skopeo's image proxy "
               "(protocol %s) does not check signature policies, so the image would be used "
               "unverified. Install skopeo 1.13 or newer, whose proxy enforces the policy, or "
               "set the client's insecure-policy property to accept images without the check",
               path, demand, reference, skopeo_version);
  return FALSE;
}
