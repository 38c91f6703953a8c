/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include "config.h"

#include "cimgproxy-private.h"

/**
 * CImgProxyPuller:
 *
 * Pulls every layer of an image into caller-supplied streams, or into a directory, with a
 * bounded number of layers in flight.
 *
 * All the work happens in the main context the pull is started from: layers are read with
 * asynchronous reads of pollable [class@CImgProxy.BlobStream]s, so a pull of many layers needs
 * no thread per layer and never blocks that context. [signal@CImgProxy.Puller::progress]
 * reports each layer's bytes as they go.
 *
 * ```c
 * g_autoptr (CImgProxyPuller) puller = cimg_proxy_puller_new (image, 4);
 * g_autoptr (GFile) dir = g_file_new_for_path ("/var/cache/layers");
 *
 * if (!cimg_proxy_puller_pull_to_directory (puller, dir, NULL, &error))
 *   g_printerr ("%s\n", error->message);
 * ```
 *
 * The first layer that fails stops the others, and the pull fails with its error; what the
 * failed and stopped layers wrote is discarded as [callback@CImgProxy.LayerSinkFunc] says.
 *
 * Since: 1.0
 */
struct _CImgProxyPuller
{
  GObject parent_instance;

  CImgProxyImage *image;
  guint max_parallel;
};

G_DEFINE_FINAL_TYPE (CImgProxyPuller, cimg_proxy_puller, G_TYPE_OBJECT)

enum
{
  PROP_0,
  PROP_IMAGE,
  PROP_MAX_PARALLEL,
  N_PROPS
};

enum
{
  SIGNAL_PROGRESS,
  N_SIGNALS
};

static GParamSpec *properties[N_PROPS];
static guint signals[N_SIGNALS];

/* Reads of this size keep the per-read overhead small next to skopeo's own work. */
#define CHUNK_SIZE           (1024 * 1024)
#define DEFAULT_MAX_PARALLEL 3
#define MAX_PARALLEL_LIMIT   64

/* One pull, shared by its layer transfers. */
typedef struct
{
  CImgProxyLayerSinkFunc sink;
  gpointer sink_data;
  GDestroyNotify sink_data_free;

  /* For pulls into a directory: where finished layers go. */
  GFile *directory;

  GPtrArray *layers;
  guint next_layer;
  guint n_active;
  /* Cancelled by the first failure, and by the caller's cancellable. */
  GCancellable *cancellable;
  GCancellable *caller_cancellable;
  gulong caller_handler;
  GError *error;
} Pull;

typedef struct
{
  GTask *task; /* of the pull */
  CImgProxyLayerInfo *layer;
  CImgProxyBlobStream *blob;
  GOutputStream *sink;
  GBytes *chunk;
  guint64 done;
} Transfer;

static void
pull_free (gpointer data)
{
  Pull *pull = data;

  if (pull->caller_cancellable != NULL)
    g_cancellable_disconnect (pull->caller_cancellable, pull->caller_handler);
  g_clear_object (&pull->caller_cancellable);
  g_clear_object (&pull->cancellable);
  g_clear_object (&pull->directory);
  g_clear_pointer (&pull->layers, g_ptr_array_unref);
  g_clear_error (&pull->error);
  if (pull->sink_data_free != NULL)
    pull->sink_data_free (pull->sink_data);
  g_free (pull);
}

static void start_transfers (GTask *task);
static void read_next (Transfer *transfer);

/* A layer pulled into a directory is written to DIR/HEX.partial and renamed to DIR/HEX only
 * once skopeo verified it, so a file named after a digest always holds that digest. */
static GFile *
directory_file (GFile *directory, CImgProxyLayerInfo *layer, gboolean partial)
{
  const char *digest = cimg_proxy_layer_info_get_digest (layer);
  g_autofree char *name = g_strconcat (strchr (digest, ':') + 1, partial ? ".partial" : "", NULL);

  return g_file_get_child (directory, name);
}

static void
directory_commit (Pull *pull, CImgProxyLayerInfo *layer, GError **error)
{
  g_autoptr (GFile) partial = directory_file (pull->directory, layer, TRUE);
  g_autoptr (GFile) final = directory_file (pull->directory, layer, FALSE);

  if (*error == NULL)
    g_file_move (partial, final, G_FILE_COPY_OVERWRITE, NULL, NULL, NULL, error);
  if (*error != NULL)
    g_file_delete (partial, NULL, NULL);
}

static void
transfer_done (Transfer *transfer, GError *error)
{
  GTask *task = transfer->task;
  Pull *pull = g_task_get_task_data (task);

  if (transfer->sink != NULL && !g_output_stream_is_closed (transfer->sink))
    {
      /* A cancelled close is how GIO asks a stream to take back what it wrote, where it can. */
      g_autoptr (GCancellable) discard = g_cancellable_new ();
      g_cancellable_cancel (discard);
      g_output_stream_close (transfer->sink, discard, NULL);
    }
  if (pull->directory != NULL && transfer->sink != NULL)
    directory_commit (pull, transfer->layer, &error);

  if (error != NULL && pull->error == NULL)
    {
      g_debug ("Pulling layer %s failed: %s", cimg_proxy_layer_info_get_digest (transfer->layer),
               error->message);
      pull->error = error;
      g_cancellable_cancel (pull->cancellable);
    }
  else if (error != NULL)
    g_error_free (error);

  if (transfer->blob != NULL)
    g_input_stream_close (G_INPUT_STREAM (transfer->blob), NULL, NULL);

  g_clear_object (&transfer->sink);
  g_clear_object (&transfer->blob);
  g_clear_pointer (&transfer->chunk, g_bytes_unref);
  g_clear_object (&transfer->layer);
  g_free (transfer);

  pull->n_active--;
  start_transfers (task);
  g_object_unref (task);
}

static void
emit_progress (Transfer *transfer)
{
  g_signal_emit (g_task_get_source_object (transfer->task), signals[SIGNAL_PROGRESS], 0,
                 transfer->layer, transfer->done,
                 (guint64) cimg_proxy_layer_info_get_size (transfer->layer));
}

static void
on_sink_closed (GObject *source, GAsyncResult *result, gpointer user_data)
{
  Transfer *transfer = user_data;
  GError *error = NULL;

  g_output_stream_close_finish (G_OUTPUT_STREAM (source), result, &error);
  transfer_done (transfer, error);
}

static void
on_chunk_written (GObject *source, GAsyncResult *result, gpointer user_data)
{
  Transfer *transfer = user_data;
  GError *error = NULL;
  gsize written = 0;

  if (!g_output_stream_write_all_finish (G_OUTPUT_STREAM (source), result, &written, &error))
    {
      transfer_done (transfer, error);
      return;
    }
  g_clear_pointer (&transfer->chunk, g_bytes_unref);
  transfer->done += written;
  emit_progress (transfer);
  read_next (transfer);
}

static void
on_chunk_read (GObject *source, GAsyncResult *result, gpointer user_data)
{
  Transfer *transfer = user_data;
  Pull *pull = g_task_get_task_data (transfer->task);
  GError *error = NULL;
  gsize size;
  gconstpointer data;

  transfer->chunk = g_input_stream_read_bytes_finish (G_INPUT_STREAM (source), result, &error);
  if (transfer->chunk == NULL)
    {
      transfer_done (transfer, error);
      return;
    }

  data = g_bytes_get_data (transfer->chunk, &size);
  if (size == 0)
    {
      /* End-of-stream: skopeo verified the layer, so the sink may keep it. */
      g_output_stream_close_async (transfer->sink, G_PRIORITY_DEFAULT, pull->cancellable,
                                   on_sink_closed, transfer);
      return;
    }
  g_output_stream_write_all_async (transfer->sink, data, size, G_PRIORITY_DEFAULT,
                                   pull->cancellable, on_chunk_written, transfer);
}

static void
read_next (Transfer *transfer)
{
  Pull *pull = g_task_get_task_data (transfer->task);

  g_input_stream_read_bytes_async (G_INPUT_STREAM (transfer->blob), CHUNK_SIZE, G_PRIORITY_DEFAULT,
                                   pull->cancellable, on_chunk_read, transfer);
}

static void
on_blob_opened (GObject *source, GAsyncResult *result, gpointer user_data)
{
  Transfer *transfer = user_data;
  Pull *pull = g_task_get_task_data (transfer->task);
  CImgProxyPuller *self = g_task_get_source_object (transfer->task);
  GError *error = NULL;

  transfer->blob = cimg_proxy_image_open_blob_finish (CIMG_PROXY_IMAGE (source), result, &error);
  if (transfer->blob != NULL)
    transfer->sink = pull->sink (self, transfer->layer, pull->sink_data, &error);
  if (transfer->sink == NULL)
    {
      if (error == NULL)
        g_set_error (&error, G_IO_ERROR, G_IO_ERROR_FAILED, "The sink gave no stream for layer %s",
                     cimg_proxy_layer_info_get_digest (transfer->layer));
      transfer_done (transfer, error);
      return;
    }

  emit_progress (transfer);
  read_next (transfer);
}

static void
start_transfers (GTask *task)
{
  CImgProxyPuller *self = g_task_get_source_object (task);
  Pull *pull = g_task_get_task_data (task);

  while (pull->error == NULL && pull->n_active < self->max_parallel &&
         pull->next_layer < pull->layers->len)
    {
      Transfer *transfer = g_new0 (Transfer, 1);

      transfer->task = g_object_ref (task);
      transfer->layer = g_object_ref (g_ptr_array_index (pull->layers, pull->next_layer++));
      pull->n_active++;
      cimg_proxy_image_open_blob_async (self->image,
                                        cimg_proxy_layer_info_get_digest (transfer->layer),
                                        cimg_proxy_layer_info_get_size (transfer->layer),
                                        pull->cancellable, on_blob_opened, transfer);
    }

  if (pull->n_active > 0)
    return;
  if (pull->error != NULL)
    g_task_return_error (task, g_steal_pointer (&pull->error));
  else
    g_task_return_boolean (task, TRUE);
}

static void
on_layers_listed (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  Pull *pull = g_task_get_task_data (task);
  GError *error = NULL;

  pull->layers = cimg_proxy_image_get_layer_info_finish (CIMG_PROXY_IMAGE (source), result, &error);
  if (pull->layers == NULL)
    {
      g_task_return_error (task, error);
      return;
    }
  start_transfers (task);
}

static void
on_caller_cancelled (GCancellable *caller_cancellable, gpointer user_data)
{
  g_cancellable_cancel (G_CANCELLABLE (user_data));
}

static void
pull_async (CImgProxyPuller *self,
            gpointer source_tag,
            GFile *directory,
            CImgProxyLayerSinkFunc sink,
            gpointer sink_data,
            GDestroyNotify sink_data_free,
            GCancellable *cancellable,
            GAsyncReadyCallback callback,
            gpointer user_data)
{
  GTask *task = g_task_new (self, cancellable, callback, user_data);
  Pull *pull = g_new0 (Pull, 1);

  pull->directory = directory != NULL ? g_object_ref (directory) : NULL;
  pull->sink = sink;
  pull->sink_data = sink_data;
  pull->sink_data_free = sink_data_free;
  pull->cancellable = g_cancellable_new ();
  if (cancellable != NULL)
    {
      pull->caller_cancellable = g_object_ref (cancellable);
      pull->caller_handler =
        g_cancellable_connect (cancellable, G_CALLBACK (on_caller_cancelled),
                               g_object_ref (pull->cancellable), g_object_unref);
    }
  g_task_set_source_tag (task, source_tag);
  g_task_set_task_data (task, pull, pull_free);

  cimg_proxy_image_get_layer_info_async (self->image, pull->cancellable, on_layers_listed, task);
}

/**
 * cimg_proxy_puller_pull_async:
 * @self: a puller
 * @sink: (scope notified) (closure sink_data) (destroy sink_data_free): gives the stream
 *   each layer is written into
 * @sink_data: data for @sink
 * @sink_data_free: (nullable): frees @sink_data when the pull is over
 * @cancellable: (nullable): a cancellable
 * @callback: (scope async): called when every layer is pulled, or one failed
 * @user_data: data for @callback
 *
 * Pulls every layer of the image, at most [property@CImgProxy.Puller:max-parallel] at a time,
 * writing each into the stream @sink gives for it. Layers start in the order of the image and
 * may end in any order.
 *
 * Since: 1.0
 */
void
cimg_proxy_puller_pull_async (CImgProxyPuller *self,
                              CImgProxyLayerSinkFunc sink,
                              gpointer sink_data,
                              GDestroyNotify sink_data_free,
                              GCancellable *cancellable,
                              GAsyncReadyCallback callback,
                              gpointer user_data)
{
  g_return_if_fail (CIMG_PROXY_IS_PULLER (self));
  g_return_if_fail (sink != NULL);
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  pull_async (self, cimg_proxy_puller_pull_async, NULL, sink, sink_data, sink_data_free,
              cancellable, callback, user_data);
}

/**
 * cimg_proxy_puller_pull_finish:
 * @self: a puller
 * @result: the result passed to the callback
 * @error: return location for an error
 *
 * Finishes [method@CImgProxy.Puller.pull_async].
 *
 * Returns: `TRUE` if every layer was pulled and verified
 *
 * Since: 1.0
 */
gboolean
cimg_proxy_puller_pull_finish (CImgProxyPuller *self, GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  g_return_val_if_fail (g_async_result_is_tagged (result, cimg_proxy_puller_pull_async), FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}

static GOutputStream *
directory_sink (CImgProxyPuller *puller,
                CImgProxyLayerInfo *layer,
                gpointer user_data,
                GError **error)
{
  g_autoptr (GFile) partial = directory_file (G_FILE (user_data), layer, TRUE);

  return G_OUTPUT_STREAM (
    g_file_replace (partial, NULL, FALSE, G_FILE_CREATE_REPLACE_DESTINATION, NULL, error));
}

/**
 * cimg_proxy_puller_pull_to_directory_async:
 * @self: a puller
 * @directory: an existing directory
 * @cancellable: (nullable): a cancellable
 * @callback: (scope async): called when every layer is pulled, or one failed
 * @user_data: data for @callback
 *
 * Pulls every layer of the image into @directory, each into a file named after the hex part
 * of its digest, as skopeo's `dir:` transport names them. A layer is written to a `.partial`
 * file first, renamed once skopeo verified it, and removed if it fails: a file named after a
 * digest always holds that digest.
 *
 * Since: 1.0
 */
void
cimg_proxy_puller_pull_to_directory_async (CImgProxyPuller *self,
                                           GFile *directory,
                                           GCancellable *cancellable,
                                           GAsyncReadyCallback callback,
                                           gpointer user_data)
{
  g_return_if_fail (CIMG_PROXY_IS_PULLER (self));
  g_return_if_fail (G_IS_FILE (directory));
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  pull_async (self, cimg_proxy_puller_pull_to_directory_async, directory, directory_sink,
              g_object_ref (directory), g_object_unref, cancellable, callback, user_data);
}

/**
 * cimg_proxy_puller_pull_to_directory_finish:
 * @self: a puller
 * @result: the result passed to the callback
 * @error: return location for an error
 *
 * Finishes [method@CImgProxy.Puller.pull_to_directory_async].
 *
 * Returns: `TRUE` if every layer was pulled and verified
 *
 * Since: 1.0
 */
gboolean
cimg_proxy_puller_pull_to_directory_finish (CImgProxyPuller *self,
                                            GAsyncResult *result,
                                            GError **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  g_return_val_if_fail (
    g_async_result_is_tagged (result, cimg_proxy_puller_pull_to_directory_async), FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}

static void
on_sync_pull_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  *(GAsyncResult **) user_data = g_object_ref (result);
}

/**
 * cimg_proxy_puller_pull_to_directory:
 * @self: a puller
 * @directory: an existing directory
 * @cancellable: (nullable): a cancellable
 * @error: return location for an error
 *
 * Pulls every layer of the image into @directory and waits for it; see
 * [method@CImgProxy.Puller.pull_to_directory_async]. The layers still stream in parallel,
 * driven by a main context of the call's own, in which
 * [signal@CImgProxy.Puller::progress] is emitted.
 *
 * Returns: `TRUE` if every layer was pulled and verified
 *
 * Since: 1.0
 */
gboolean
cimg_proxy_puller_pull_to_directory (CImgProxyPuller *self,
                                     GFile *directory,
                                     GCancellable *cancellable,
                                     GError **error)
{
  g_autoptr (GMainContext) context = g_main_context_new ();
  g_autoptr (GAsyncResult) result = NULL;

  g_return_val_if_fail (CIMG_PROXY_IS_PULLER (self), FALSE);
  g_return_val_if_fail (G_IS_FILE (directory), FALSE);
  g_return_val_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  g_main_context_push_thread_default (context);
  cimg_proxy_puller_pull_to_directory_async (self, directory, cancellable, on_sync_pull_done,
                                             &result);
  while (result == NULL)
    g_main_context_iteration (context, TRUE);
  g_main_context_pop_thread_default (context);

  return cimg_proxy_puller_pull_to_directory_finish (self, result, error);
}

static void
cimg_proxy_puller_finalize (GObject *object)
{
  CImgProxyPuller *self = CIMG_PROXY_PULLER (object);

  g_clear_object (&self->image);

  G_OBJECT_CLASS (cimg_proxy_puller_parent_class)->finalize (object);
}

static void
cimg_proxy_puller_get_property (GObject *object, guint prop_id, GValue *value, GParamSpec *pspec)
{
  CImgProxyPuller *self = CIMG_PROXY_PULLER (object);

  switch (prop_id)
    {
    case PROP_IMAGE:
      g_value_set_object (value, self->image);
      break;
    case PROP_MAX_PARALLEL:
      g_value_set_uint (value, self->max_parallel);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
cimg_proxy_puller_set_property (GObject *object,
                                guint prop_id,
                                const GValue *value,
                                GParamSpec *pspec)
{
  CImgProxyPuller *self = CIMG_PROXY_PULLER (object);

  switch (prop_id)
    {
    case PROP_IMAGE:
      self->image = g_value_dup_object (value);
      break;
    case PROP_MAX_PARALLEL:
      self->max_parallel = g_value_get_uint (value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
cimg_proxy_puller_class_init (CImgProxyPullerClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->finalize = cimg_proxy_puller_finalize;
  object_class->get_property = cimg_proxy_puller_get_property;
  object_class->set_property = cimg_proxy_puller_set_property;

  /**
   * CImgProxyPuller:image:
   *
   * The image whose layers are pulled.
   *
   * Since: 1.0
   */
  properties[PROP_IMAGE] =
    g_param_spec_object ("image", NULL, NULL, CIMG_PROXY_TYPE_IMAGE,
                         G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);

  /**
   * CImgProxyPuller:max-parallel:
   *
   * How many layers stream at the same time. On a machine with few cores skopeo's own
   * copying bounds the gain; a few layers in flight already hide most of a registry's
   * latency.
   *
   * Since: 1.0
   */
  properties[PROP_MAX_PARALLEL] =
    g_param_spec_uint ("max-parallel", NULL, NULL, 1, MAX_PARALLEL_LIMIT, DEFAULT_MAX_PARALLEL,
                       G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);

  g_object_class_install_properties (object_class, N_PROPS, properties);

  /**
   * CImgProxyPuller::progress:
   * @self: the puller
   * @layer: the layer that made progress
   * @bytes_done: how many of its bytes went into its sink so far
   * @bytes_total: its size
   *
   * Emitted when a layer starts (with @bytes_done 0) and after each chunk of it was written,
   * in the main context the pull was started from. The last emission for a layer has
   * @bytes_done equal to @bytes_total; the layer is verified when its sink is closed, right
   * after.
   *
   * Since: 1.0
   */
  signals[SIGNAL_PROGRESS] =
    g_signal_new ("progress", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                  G_TYPE_NONE, 3, CIMG_PROXY_TYPE_LAYER_INFO, G_TYPE_UINT64, G_TYPE_UINT64);
}

static void
cimg_proxy_puller_init (CImgProxyPuller *self)
{
  self->max_parallel = DEFAULT_MAX_PARALLEL;
}

/**
 * cimg_proxy_puller_new:
 * @image: the image whose layers to pull
 * @max_parallel: how many layers may stream at the same time, at least 1
 *
 * Creates a puller for the layers of @image.
 *
 * Returns: (transfer full): a new puller
 *
 * Since: 1.0
 */
CImgProxyPuller *
cimg_proxy_puller_new (CImgProxyImage *image, guint max_parallel)
{
  g_return_val_if_fail (CIMG_PROXY_IS_IMAGE (image), NULL);
  g_return_val_if_fail (max_parallel >= 1 && max_parallel <= MAX_PARALLEL_LIMIT, NULL);

  return g_object_new (CIMG_PROXY_TYPE_PULLER, "image", image, "max-parallel", max_parallel, NULL);
}

/**
 * cimg_proxy_puller_get_image:
 * @self: a puller
 *
 * The image whose layers the puller pulls.
 *
 * Returns: (transfer none): the image
 *
 * Since: 1.0
 */
CImgProxyImage *
cimg_proxy_puller_get_image (CImgProxyPuller *self)
{
  g_return_val_if_fail (CIMG_PROXY_IS_PULLER (self), NULL);

  return self->image;
}

/**
 * cimg_proxy_puller_get_max_parallel:
 * @self: a puller
 *
 * How many layers the puller streams at the same time.
 *
 * Returns: the most layers in flight
 *
 * Since: 1.0
 */
guint
cimg_proxy_puller_get_max_parallel (CImgProxyPuller *self)
{
  g_return_val_if_fail (CIMG_PROXY_IS_PULLER (self), 0);

  return self->max_parallel;
}
