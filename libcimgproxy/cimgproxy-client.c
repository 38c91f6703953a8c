/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "cimgproxy-private.h"

/**
 * CImgProxyClient:
 *
 * A connection to one `skopeo experimental-image-proxy` process.
 *
 * The client starts skopeo when it is initialized and talks to it over a socket pair. Through
 * it, images from any transport skopeo knows (`docker://`, `oci:`, `oci-archive:`, `dir:`,
 * `docker-archive:`, `containers-storage:`) can be opened with
 * [method@CImgProxy.Client.open_image]; skopeo applies the user's registries.conf,
 * credentials and certificates on the way.
 *
 * ```c
 * g_autoptr(GError) error = NULL;
 * g_autoptr(CImgProxyClient) client = cimg_proxy_client_new (NULL, &error);
 * g_autoptr(CImgProxyImage) image = NULL;
 *
 * if (client != NULL)
 *   image = cimg_proxy_client_open_image (client, "docker://quay.io/fedora/fedora:latest",
 *                                         NULL, &error);
 * ```
 *
 * Options are construct-only properties; set them with g_initable_new() (or, from a binding,
 * the constructor's keyword arguments followed by `init()`).
 *
 * A client may be used from several threads at once. The proxy serves one request at a time,
 * so requests queue up, but blob data flows outside that queue: any number of
 * [class@CImgProxy.BlobStream]s can be read at the same time.
 *
 * Since: 1.0
 */
struct _CImgProxyClient
{
  GObject parent_instance;

  /* Construct-only options */
  char **skopeo_argv;
  char *authfile;
  GBytes *auth_data;
  gboolean anonymous;
  char *cert_dir;
  CImgProxyTlsVerify tls_verify;
  gboolean insecure_policy;
  char *policy;
  char *registries_conf;
  gboolean debug;
  guint idle_timeout;

  /* Set once by initable_init, under init_mutex */
  GMutex init_mutex;
  gboolean init_done;
  GError *init_error;
  CImgCoreProxy *core;
};

static void cimg_proxy_client_initable_iface_init (GInitableIface *iface);

/* GAsyncInitable's default implementation runs GInitable's init in a worker thread, which is
 * all an asynchronous start needs: skopeo is forked from a thread of its own either way. */
G_DEFINE_FINAL_TYPE_WITH_CODE (CImgProxyClient,
                               cimg_proxy_client,
                               G_TYPE_OBJECT,
                               G_IMPLEMENT_INTERFACE (G_TYPE_INITABLE,
                                                      cimg_proxy_client_initable_iface_init)
                                 G_IMPLEMENT_INTERFACE (G_TYPE_ASYNC_INITABLE, NULL))

/* Long enough for a slow registry, short enough that a stalled one does not go unnoticed. */
#define DEFAULT_IDLE_TIMEOUT 120

enum
{
  PROP_0,
  PROP_SKOPEO_ARGV,
  PROP_AUTHFILE,
  PROP_AUTH_DATA,
  PROP_ANONYMOUS,
  PROP_CERT_DIR,
  PROP_TLS_VERIFY,
  PROP_INSECURE_POLICY,
  PROP_POLICY,
  PROP_REGISTRIES_CONF,
  PROP_DEBUG,
  PROP_IDLE_TIMEOUT,
  PROP_PROTOCOL_VERSION,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

static void
cimg_proxy_client_finalize (GObject *object)
{
  CImgProxyClient *self = CIMG_PROXY_CLIENT (object);

  /* Freeing the core closes the socket, which makes skopeo exit, and reaps it. */
  g_clear_pointer (&self->core, cimg_core_proxy_free);
  g_clear_error (&self->init_error);
  g_mutex_clear (&self->init_mutex);
  g_strfreev (self->skopeo_argv);
  g_free (self->authfile);
  g_clear_pointer (&self->auth_data, g_bytes_unref);
  g_free (self->cert_dir);
  g_free (self->registries_conf);
  g_free (self->policy);

  G_OBJECT_CLASS (cimg_proxy_client_parent_class)->finalize (object);
}

static void
cimg_proxy_client_get_property (GObject *object, guint prop_id, GValue *value, GParamSpec *pspec)
{
  CImgProxyClient *self = CIMG_PROXY_CLIENT (object);

  switch (prop_id)
    {
    case PROP_SKOPEO_ARGV:
      g_value_set_boxed (value, self->skopeo_argv);
      break;
    case PROP_AUTHFILE:
      g_value_set_string (value, self->authfile);
      break;
    case PROP_AUTH_DATA:
      g_value_set_boxed (value, self->auth_data);
      break;
    case PROP_ANONYMOUS:
      g_value_set_boolean (value, self->anonymous);
      break;
    case PROP_CERT_DIR:
      g_value_set_string (value, self->cert_dir);
      break;
    case PROP_TLS_VERIFY:
      g_value_set_enum (value, self->tls_verify);
      break;
    case PROP_INSECURE_POLICY:
      g_value_set_boolean (value, self->insecure_policy);
      break;
    case PROP_POLICY:
      g_value_set_string (value, self->policy);
      break;
    case PROP_REGISTRIES_CONF:
      g_value_set_string (value, self->registries_conf);
      break;
    case PROP_DEBUG:
      g_value_set_boolean (value, self->debug);
      break;
    case PROP_IDLE_TIMEOUT:
      g_value_set_uint (value, self->idle_timeout);
      break;
    case PROP_PROTOCOL_VERSION:
      g_value_set_string (value, cimg_proxy_client_get_protocol_version (self));
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
cimg_proxy_client_set_property (GObject *object,
                                guint prop_id,
                                const GValue *value,
                                GParamSpec *pspec)
{
  CImgProxyClient *self = CIMG_PROXY_CLIENT (object);

  switch (prop_id)
    {
    case PROP_SKOPEO_ARGV:
      self->skopeo_argv = g_value_dup_boxed (value);
      break;
    case PROP_AUTHFILE:
      self->authfile = g_value_dup_string (value);
      break;
    case PROP_AUTH_DATA:
      self->auth_data = g_value_dup_boxed (value);
      break;
    case PROP_ANONYMOUS:
      self->anonymous = g_value_get_boolean (value);
      break;
    case PROP_CERT_DIR:
      self->cert_dir = g_value_dup_string (value);
      break;
    case PROP_TLS_VERIFY:
      self->tls_verify = g_value_get_enum (value);
      break;
    case PROP_INSECURE_POLICY:
      self->insecure_policy = g_value_get_boolean (value);
      break;
    case PROP_POLICY:
      self->policy = g_value_dup_string (value);
      break;
    case PROP_REGISTRIES_CONF:
      self->registries_conf = g_value_dup_string (value);
      break;
    case PROP_DEBUG:
      self->debug = g_value_get_boolean (value);
      break;
    case PROP_IDLE_TIMEOUT:
      self->idle_timeout = g_value_get_uint (value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
cimg_proxy_client_class_init (CImgProxyClientClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  const GParamFlags construct_only =
    G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS;

  object_class->finalize = cimg_proxy_client_finalize;
  object_class->get_property = cimg_proxy_client_get_property;
  object_class->set_property = cimg_proxy_client_set_property;

  /**
   * CImgProxyClient:skopeo-argv:
   *
   * The command that runs skopeo, as an argument vector to which
   * `experimental-image-proxy` and the options are appended. `NULL` means `skopeo` from
   * `PATH`. A longer vector runs skopeo through a wrapper, for example
   * `["systemd-run", "--pipe", "--property=DynamicUser=yes", "skopeo"]`.
   *
   * Since: 1.0
   */
  properties[PROP_SKOPEO_ARGV] =
    g_param_spec_boxed ("skopeo-argv", NULL, NULL, G_TYPE_STRV, construct_only);

  /**
   * CImgProxyClient:authfile:
   *
   * The path of a containers-auth.json(5) file with registry credentials (skopeo's
   * `--authfile`). When unset, skopeo looks where containers-auth.json(5) says:
   * `REGISTRY_AUTH_FILE`, `$XDG_RUNTIME_DIR/containers/auth.json`, `~/.docker/config.json`.
   *
   * Since: 1.0
   */
  properties[PROP_AUTHFILE] = g_param_spec_string ("authfile", NULL, NULL, NULL, construct_only);

  /**
   * CImgProxyClient:auth-data:
   *
   * The contents of a containers-auth.json(5) file. They reach skopeo through a sealed
   * anonymous memory file: they are never written to disk and never appear on a command
   * line. Mutually exclusive with [property@CImgProxy.Client:authfile] and
   * [property@CImgProxy.Client:anonymous].
   *
   * Since: 1.0
   */
  properties[PROP_AUTH_DATA] =
    g_param_spec_boxed ("auth-data", NULL, NULL, G_TYPE_BYTES, construct_only);

  /**
   * CImgProxyClient:anonymous:
   *
   * Access registries without any credentials (skopeo's `--no-creds`).
   *
   * Since: 1.0
   */
  properties[PROP_ANONYMOUS] =
    g_param_spec_boolean ("anonymous", NULL, NULL, FALSE, construct_only);

  /**
   * CImgProxyClient:cert-dir:
   *
   * A directory with `*.crt` CA certificates and `*.cert`/`*.key` client certificates for
   * registries (skopeo's `--cert-dir`).
   *
   * Since: 1.0
   */
  properties[PROP_CERT_DIR] = g_param_spec_string ("cert-dir", NULL, NULL, NULL, construct_only);

  /**
   * CImgProxyClient:tls-verify:
   *
   * Whether registries' TLS certificates are verified.
   *
   * Since: 1.0
   */
  properties[PROP_TLS_VERIFY] =
    g_param_spec_enum ("tls-verify", NULL, NULL, CIMG_PROXY_TYPE_TLS_VERIFY,
                       CIMG_PROXY_TLS_VERIFY_DEFAULT, construct_only);

  /**
   * CImgProxyClient:insecure-policy:
   *
   * Run skopeo with `--insecure-policy`, accepting images whatever containers-policy.json(5)
   * says. With skopeo before 1.13, whose proxy checks no policy, this is also the explicit
   * way to use such a proxy despite a policy that asks for signatures.
   *
   * Since: 1.0
   */
  properties[PROP_INSECURE_POLICY] =
    g_param_spec_boolean ("insecure-policy", NULL, NULL, FALSE, construct_only);

  /**
   * CImgProxyClient:policy:
   *
   * A containers-policy.json(5) file to use instead of the user's or the system's (skopeo's
   * `--policy`). Only proxies speaking protocol 0.2.6 (skopeo 1.13) or later check the policy
   * themselves; with older ones the client reads it and refuses images it would have them
   * check, see [method@CImgProxy.Client.get_enforces_policy].
   *
   * Since: 1.0
   */
  properties[PROP_POLICY] = g_param_spec_string ("policy", NULL, NULL, NULL, construct_only);

  /**
   * CImgProxyClient:registries-conf:
   *
   * A containers-registries.conf(5) file to use instead of the system's, for mirrors and
   * short-name aliases.
   *
   * Since: 1.0
   */
  properties[PROP_REGISTRIES_CONF] =
    g_param_spec_string ("registries-conf", NULL, NULL, NULL, construct_only);

  /**
   * CImgProxyClient:debug:
   *
   * Run skopeo with `--debug` and let it write to the program's stderr instead of capturing
   * its output for error messages.
   *
   * Since: 1.0
   */
  properties[PROP_DEBUG] = g_param_spec_boolean ("debug", NULL, NULL, FALSE, construct_only);

  /**
   * CImgProxyClient:idle-timeout:
   *
   * Seconds without progress after which the proxy is taken for wedged: a request without a
   * reply, or a blob on which no byte arrives. The call then fails with
   * %G_IO_ERROR_TIMED_OUT. skopeo has no timeouts of its own and cannot be recovered once
   * stuck, so the client also stops it, and every later call fails at once with
   * %CIMG_PROXY_ERROR_CLOSED saying why. 0 waits forever.
   *
   * Since: 1.0
   */
  properties[PROP_IDLE_TIMEOUT] = g_param_spec_uint ("idle-timeout", NULL, NULL, 0, G_MAXUINT,
                                                     DEFAULT_IDLE_TIMEOUT, construct_only);

  /**
   * CImgProxyClient:protocol-version:
   *
   * The version of the image proxy protocol the running skopeo speaks, such as `0.2.3`;
   * `NULL` until the client is initialized.
   *
   * Since: 1.0
   */
  properties[PROP_PROTOCOL_VERSION] = g_param_spec_string (
    "protocol-version", NULL, NULL, NULL, G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);

  g_object_class_install_properties (object_class, N_PROPS, properties);
}

static void
cimg_proxy_client_init (CImgProxyClient *self)
{
  self->tls_verify = CIMG_PROXY_TLS_VERIFY_DEFAULT;
  self->idle_timeout = DEFAULT_IDLE_TIMEOUT;
  g_mutex_init (&self->init_mutex);
}

/* Puts @data into a sealed memfd: skopeo reads it through /proc/self/fd/N as if it were a
 * file, while nothing touches a filesystem and nobody can change it after the fact. */
static int
create_auth_memfd (GBytes *data, GError **error)
{
  gsize size = 0;
  const guint8 *bytes = g_bytes_get_data (data, &size);
  int fd = memfd_create ("cimgproxy-auth", MFD_CLOEXEC | MFD_ALLOW_SEALING);

  if (fd < 0)
    {
      int errsv = errno;
      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errsv),
                   "Could not create a memory file for the auth data: %s", g_strerror (errsv));
      return -1;
    }

  while (size > 0)
    {
      ssize_t n = write (fd, bytes, size);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        {
          int errsv = errno;
          g_close (fd, NULL);
          g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errsv),
                       "Could not write the auth data: %s", g_strerror (errsv));
          return -1;
        }
      bytes += n;
      size -= (gsize) n;
    }

  if (fcntl (fd, F_ADD_SEALS, F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE) != 0)
    {
      int errsv = errno;
      g_close (fd, NULL);
      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errsv),
                   "Could not seal the auth data: %s", g_strerror (errsv));
      return -1;
    }

  return fd;
}

static gboolean
check_options (CImgProxyClient *self, GError **error)
{
  int n_auth = (self->authfile != NULL) + (self->auth_data != NULL) + (self->anonymous != FALSE);

  if (n_auth > 1)
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                           "The authfile, auth-data and anonymous options of a client exclude "
                           "each other; set at most one");
      return FALSE;
    }

  if (self->skopeo_argv != NULL && self->skopeo_argv[0] == NULL)
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                           "The skopeo-argv option of a client is empty; leave it unset to run "
                           "skopeo from PATH");
      return FALSE;
    }

  return TRUE;
}

static GStrv
build_argv (CImgProxyClient *self)
{
  g_autoptr (GStrvBuilder) argv = g_strv_builder_new ();

  if (self->skopeo_argv != NULL)
    g_strv_builder_addv (argv, (const char **) self->skopeo_argv);
  else
    g_strv_builder_add (argv, "skopeo");

  g_strv_builder_add (argv, "experimental-image-proxy");

  if (self->authfile != NULL)
    g_strv_builder_add_many (argv, "--authfile", self->authfile, NULL);
  if (self->auth_data != NULL)
    {
      g_autofree char *path = g_strdup_printf ("/proc/self/fd/%d", CIMG_CORE_EXTRA_FD);
      g_strv_builder_add_many (argv, "--authfile", path, NULL);
    }
  if (self->anonymous)
    g_strv_builder_add (argv, "--no-creds");
  if (self->cert_dir != NULL)
    g_strv_builder_add_many (argv, "--cert-dir", self->cert_dir, NULL);
  if (self->tls_verify == CIMG_PROXY_TLS_VERIFY_DISABLED)
    g_strv_builder_add (argv, "--tls-verify=false");
  else if (self->tls_verify == CIMG_PROXY_TLS_VERIFY_ENABLED)
    g_strv_builder_add (argv, "--tls-verify=true");
  /* skopeo accepts its global options after the subcommand too. */
  if (self->insecure_policy)
    g_strv_builder_add (argv, "--insecure-policy");
  if (self->policy != NULL)
    g_strv_builder_add_many (argv, "--policy", self->policy, NULL);
  if (self->registries_conf != NULL)
    g_strv_builder_add_many (argv, "--registries-conf", self->registries_conf, NULL);
  if (self->debug)
    g_strv_builder_add (argv, "--debug");

  return g_strv_builder_end (argv);
}

static gboolean
cimg_proxy_client_initable_init (GInitable *initable, GCancellable *cancellable, GError **error)
{
  CImgProxyClient *self = CIMG_PROXY_CLIENT (initable);
  g_autoptr (GMutexLocker) locker = g_mutex_locker_new (&self->init_mutex);
  g_autoptr (GError) local_error = NULL;
  g_auto (GStrv) argv = NULL;
  int auth_fd = -1;

  if (self->init_done)
    {
      if (self->init_error != NULL)
        {
          g_propagate_error (error, g_error_copy (self->init_error));
          return FALSE;
        }
      return TRUE;
    }

  if (check_options (self, &local_error) &&
      (self->auth_data == NULL ||
       (auth_fd = create_auth_memfd (self->auth_data, &local_error)) >= 0))
    {
      argv = build_argv (self);
      /* The core takes auth_fd whether it succeeds or not. */
      self->core = cimg_core_proxy_start ((const char *const *) argv, auth_fd, self->debug,
                                          self->idle_timeout, cancellable, &local_error);
    }

  /* A cancelled initialization can be retried; anything else is final, as GInitable
   * requires. */
  if (self->core == NULL && g_error_matches (local_error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    {
      g_propagate_error (error, g_steal_pointer (&local_error));
      return FALSE;
    }

  self->init_done = TRUE;
  if (self->core == NULL)
    {
      self->init_error = g_error_copy (local_error);
      g_propagate_error (error, g_steal_pointer (&local_error));
      return FALSE;
    }

  g_info ("Started skopeo image proxy %d, protocol %s", cimg_core_proxy_get_pid (self->core),
          cimg_core_proxy_get_version (self->core));
  return TRUE;
}

static void
cimg_proxy_client_initable_iface_init (GInitableIface *iface)
{
  iface->init = cimg_proxy_client_initable_init;
}

/**
 * cimg_proxy_client_new:
 * @cancellable: (nullable): a cancellable
 * @error: return location for an error
 *
 * Starts `skopeo experimental-image-proxy` from `PATH` with default options and negotiates
 * the protocol version with it. Use g_initable_new() to set options.
 *
 * Returns: (transfer full): a new client, or `NULL` with @error set
 *
 * Since: 1.0
 */
CImgProxyClient *
cimg_proxy_client_new (GCancellable *cancellable, GError **error)
{
  g_return_val_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable), NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  return g_initable_new (CIMG_PROXY_TYPE_CLIENT, cancellable, error, NULL);
}

/**
 * cimg_proxy_client_new_async:
 * @cancellable: (nullable): a cancellable
 * @callback: (scope async): called when the client is ready
 * @user_data: data for @callback
 *
 * Starts skopeo with default options without blocking, like [ctor@CImgProxy.Client.new].
 * Use g_async_initable_new_async() to set options.
 *
 * Since: 1.0
 */
void
cimg_proxy_client_new_async (GCancellable *cancellable,
                             GAsyncReadyCallback callback,
                             gpointer user_data)
{
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  g_async_initable_new_async (CIMG_PROXY_TYPE_CLIENT, G_PRIORITY_DEFAULT, cancellable, callback,
                              user_data, NULL);
}

/**
 * cimg_proxy_client_new_finish:
 * @result: the result passed to the callback
 * @error: return location for an error
 *
 * Finishes [func@CImgProxy.Client.new_async].
 *
 * Returns: (transfer full): a new client, or `NULL` with @error set
 *
 * Since: 1.0
 */
CImgProxyClient *
cimg_proxy_client_new_finish (GAsyncResult *result, GError **error)
{
  g_autoptr (GObject) source = g_async_result_get_source_object (result);

  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  return CIMG_PROXY_CLIENT (g_async_initable_new_finish (G_ASYNC_INITABLE (source), result, error));
}

/**
 * cimg_proxy_client_get_protocol_version:
 * @self: a client
 *
 * The version of the image proxy protocol skopeo speaks; it decides which requests are
 * available (`0.2.3` for skopeo 1.6 to 1.10, `0.2.8` since 1.19).
 *
 * Returns: (nullable): the protocol version, or `NULL` if the client is not initialized
 *
 * Since: 1.0
 */
const char *
cimg_proxy_client_get_protocol_version (CImgProxyClient *self)
{
  g_return_val_if_fail (CIMG_PROXY_IS_CLIENT (self), NULL);

  return self->core != NULL ? cimg_core_proxy_get_version (self->core) : NULL;
}

/**
 * cimg_proxy_client_get_enforces_policy:
 * @self: a client
 *
 * Whether the running skopeo checks containers-policy.json(5) when it opens an image:
 * skopeo 1.13 and later do (image proxy protocol 0.2.6). Older ones open any image whatever
 * the policy says; with them the client refuses, with
 * %CIMG_PROXY_ERROR_POLICY_NOT_ENFORCED, images for which the policy asks for more than
 * `insecureAcceptAnything`, unless [property@CImgProxy.Client:insecure-policy] is set.
 *
 * Returns: `TRUE` if skopeo enforces the signature policy
 *
 * Since: 1.0
 */
gboolean
cimg_proxy_client_get_enforces_policy (CImgProxyClient *self)
{
  g_return_val_if_fail (CIMG_PROXY_IS_CLIENT (self), FALSE);

  return self->core != NULL && cimg_core_proxy_enforces_policy (self->core);
}

CImgCoreProxy *
_cimg_proxy_client_get_core (CImgProxyClient *self, GError **error)
{
  if (self->core == NULL)
    {
      g_set_error_literal (error, CIMG_PROXY_ERROR, CIMG_PROXY_ERROR_CLOSED,
                           "The client was not initialized; create it with "
                           "cimg_proxy_client_new() or g_initable_new()");
      return NULL;
    }
  return self->core;
}

int
_cimg_proxy_client_get_pid (CImgProxyClient *self)
{
  return self->core != NULL ? cimg_core_proxy_get_pid (self->core) : -1;
}

guint
_cimg_proxy_client_get_idle_timeout (CImgProxyClient *self)
{
  return self->idle_timeout;
}

static CImgProxyImage *
open_image (CImgProxyClient *self,
            const char *reference,
            gboolean optional,
            GCancellable *cancellable,
            GError **error)
{
  CImgCoreProxy *core = _cimg_proxy_client_get_core (self, error);
  guint64 id = 0;

  if (core == NULL)
    return NULL;

  if (!self->insecure_policy && !cimg_core_proxy_enforces_policy (core) &&
      !_cimg_proxy_check_unenforced_policy (self->policy, reference,
                                            cimg_core_proxy_get_version (core), error))
    {
      g_prefix_error (error, "Refusing to open %s: ", reference);
      return NULL;
    }

  if (!cimg_core_proxy_open_image (core, reference, optional, &id, cancellable, error))
    {
      g_prefix_error (error, "Could not open %s: ", reference);
      return NULL;
    }
  if (id == 0)
    return NULL;

  return _cimg_proxy_image_new (self, reference, id);
}

/**
 * cimg_proxy_client_open_image:
 * @self: a client
 * @reference: an image reference in skopeo's `TRANSPORT:NAME` form, such as
 *   `docker://registry.example.com/app:1` or `oci:/srv/layout:latest`
 * @cancellable: (nullable): a cancellable
 * @error: return location for an error
 *
 * Opens an image. For registries, this fetches the manifest; a manifest list is resolved to
 * the platform skopeo runs on when the manifest is first read.
 *
 * A missing image is reported as %CIMG_PROXY_ERROR_NOT_FOUND, a malformed reference as
 * %CIMG_PROXY_ERROR_INVALID_REFERENCE; see [method@CImgProxy.Client.open_image_optional] to
 * probe for an image instead.
 *
 * Returns: (transfer full): the opened image, or `NULL` with @error set
 *
 * Since: 1.0
 */
CImgProxyImage *
cimg_proxy_client_open_image (CImgProxyClient *self,
                              const char *reference,
                              GCancellable *cancellable,
                              GError **error)
{
  g_return_val_if_fail (CIMG_PROXY_IS_CLIENT (self), NULL);
  g_return_val_if_fail (reference != NULL, NULL);
  g_return_val_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable), NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  return open_image (self, reference, FALSE, cancellable, error);
}

/**
 * cimg_proxy_client_open_image_optional:
 * @self: a client
 * @reference: an image reference in skopeo's `TRANSPORT:NAME` form
 * @cancellable: (nullable): a cancellable
 * @error: return location for an error
 *
 * Opens an image if it exists. Unlike [method@CImgProxy.Client.open_image], a missing image
 * is not an error: the function returns `NULL` and leaves @error unset.
 *
 * Proxies speaking protocol 0.2.4 or later decide what "missing" means themselves. With
 * older ones (skopeo before 1.11) the client recognizes the same cases from skopeo's error:
 * an unknown tag in a registry or an OCI layout, an unknown image in containers-storage.
 *
 * Returns: (transfer full) (nullable): the opened image, or `NULL` if it does not exist or
 *   on error
 *
 * Since: 1.0
 */
CImgProxyImage *
cimg_proxy_client_open_image_optional (CImgProxyClient *self,
                                       const char *reference,
                                       GCancellable *cancellable,
                                       GError **error)
{
  g_return_val_if_fail (CIMG_PROXY_IS_CLIENT (self), NULL);
  g_return_val_if_fail (reference != NULL, NULL);
  g_return_val_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable), NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  return open_image (self, reference, TRUE, cancellable, error);
}

static gpointer
open_image_in_thread (gpointer source, gpointer data, GCancellable *cancellable, GError **error)
{
  return open_image (source, data, FALSE, cancellable, error);
}

static gpointer
open_image_optional_in_thread (gpointer source,
                               gpointer data,
                               GCancellable *cancellable,
                               GError **error)
{
  return open_image (source, data, TRUE, cancellable, error);
}

/**
 * cimg_proxy_client_open_image_async:
 * @self: a client
 * @reference: an image reference in skopeo's `TRANSPORT:NAME` form
 * @cancellable: (nullable): a cancellable
 * @callback: (scope async): called when the image is open
 * @user_data: data for @callback
 *
 * Opens an image without blocking; see [method@CImgProxy.Client.open_image].
 *
 * Since: 1.0
 */
void
cimg_proxy_client_open_image_async (CImgProxyClient *self,
                                    const char *reference,
                                    GCancellable *cancellable,
                                    GAsyncReadyCallback callback,
                                    gpointer user_data)
{
  g_return_if_fail (CIMG_PROXY_IS_CLIENT (self));
  g_return_if_fail (reference != NULL);
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  _cimg_proxy_run_in_thread (self, cimg_proxy_client_open_image_async, open_image_in_thread,
                             g_strdup (reference), g_free, g_object_unref, cancellable, callback,
                             user_data);
}

/**
 * cimg_proxy_client_open_image_finish:
 * @self: a client
 * @result: the result passed to the callback
 * @error: return location for an error
 *
 * Finishes [method@CImgProxy.Client.open_image_async].
 *
 * Returns: (transfer full): the opened image, or `NULL` with @error set
 *
 * Since: 1.0
 */
CImgProxyImage *
cimg_proxy_client_open_image_finish (CImgProxyClient *self, GAsyncResult *result, GError **error)
{
  return _cimg_proxy_thread_finish (self, result, cimg_proxy_client_open_image_async, error);
}

/**
 * cimg_proxy_client_open_image_optional_async:
 * @self: a client
 * @reference: an image reference in skopeo's `TRANSPORT:NAME` form
 * @cancellable: (nullable): a cancellable
 * @callback: (scope async): called when the image is open or known to be missing
 * @user_data: data for @callback
 *
 * Opens an image if it exists, without blocking; see
 * [method@CImgProxy.Client.open_image_optional].
 *
 * Since: 1.0
 */
void
cimg_proxy_client_open_image_optional_async (CImgProxyClient *self,
                                             const char *reference,
                                             GCancellable *cancellable,
                                             GAsyncReadyCallback callback,
                                             gpointer user_data)
{
  g_return_if_fail (CIMG_PROXY_IS_CLIENT (self));
  g_return_if_fail (reference != NULL);
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  _cimg_proxy_run_in_thread (self, cimg_proxy_client_open_image_optional_async,
                             open_image_optional_in_thread, g_strdup (reference), g_free,
                             g_object_unref, cancellable, callback, user_data);
}

/**
 * cimg_proxy_client_open_image_optional_finish:
 * @self: a client
 * @result: the result passed to the callback
 * @error: return location for an error
 *
 * Finishes [method@CImgProxy.Client.open_image_optional_async].
 *
 * Returns: (transfer full) (nullable): the opened image, or `NULL` if it does not exist or
 *   on error
 *
 * Since: 1.0
 */
CImgProxyImage *
cimg_proxy_client_open_image_optional_finish (CImgProxyClient *self,
                                              GAsyncResult *result,
                                              GError **error)
{
  return _cimg_proxy_thread_finish (self, result, cimg_proxy_client_open_image_optional_async,
                                    error);
}

/**
 * cimg_proxy_client_close:
 * @self: a client
 * @cancellable: (nullable): a cancellable
 * @error: return location for an error
 *
 * Asks skopeo to exit and waits for it. Images and blob streams of the client cannot be used
 * afterwards; finish reading blobs first.
 *
 * Closing is optional (dropping the last reference ends the process too) but only closing
 * reports how skopeo ended: a non-zero exit status is a %CIMG_PROXY_ERROR_PROXY_EXITED
 * error. Closing a closed client fails with %CIMG_PROXY_ERROR_CLOSED.
 *
 * Returns: `TRUE` if skopeo exited cleanly
 *
 * Since: 1.0
 */
gboolean
cimg_proxy_client_close (CImgProxyClient *self, GCancellable *cancellable, GError **error)
{
  CImgCoreProxy *core;

  g_return_val_if_fail (CIMG_PROXY_IS_CLIENT (self), FALSE);
  g_return_val_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (g_cancellable_set_error_if_cancelled (cancellable, error))
    return FALSE;

  core = _cimg_proxy_client_get_core (self, error);
  if (core == NULL)
    return FALSE;

  return cimg_core_proxy_shutdown (core, error);
}

static gpointer
close_in_thread (gpointer source, gpointer data, GCancellable *cancellable, GError **error)
{
  return GINT_TO_POINTER (cimg_proxy_client_close (source, cancellable, error));
}

/**
 * cimg_proxy_client_close_async:
 * @self: a client
 * @cancellable: (nullable): a cancellable
 * @callback: (scope async): called when skopeo has exited
 * @user_data: data for @callback
 *
 * Asks skopeo to exit and waits for it without blocking; see
 * [method@CImgProxy.Client.close].
 *
 * Since: 1.0
 */
void
cimg_proxy_client_close_async (CImgProxyClient *self,
                               GCancellable *cancellable,
                               GAsyncReadyCallback callback,
                               gpointer user_data)
{
  g_return_if_fail (CIMG_PROXY_IS_CLIENT (self));
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  _cimg_proxy_run_in_thread (self, cimg_proxy_client_close_async, close_in_thread, NULL, NULL, NULL,
                             cancellable, callback, user_data);
}

/**
 * cimg_proxy_client_close_finish:
 * @self: a client
 * @result: the result passed to the callback
 * @error: return location for an error
 *
 * Finishes [method@CImgProxy.Client.close_async].
 *
 * Returns: `TRUE` if skopeo exited cleanly
 *
 * Since: 1.0
 */
gboolean
cimg_proxy_client_close_finish (CImgProxyClient *self, GAsyncResult *result, GError **error)
{
  return GPOINTER_TO_INT (
    _cimg_proxy_thread_finish (self, result, cimg_proxy_client_close_async, error));
}
