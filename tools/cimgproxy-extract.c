/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * `cimgproxy extract`: layer tars streamed straight into the file system.
 *
 * libarchive writes the files, with the flags that keep an entry from reaching outside the
 * target: no "..", no absolute paths, no extraction through a symlink. Whiteouts are applied
 * by this file, with the same care: a path to remove is walked component by component
 * without following symlinks. As the OCI image spec says, a whiteout hides what lower layers
 * put there, not what its own layer adds, so they are applied once the layer's own entries
 * are written, sparing those.
 */

#include "config.h"

#include "cimgproxy-extract.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>
#include <gio/gunixinputstream.h>
#include <gio/gunixoutputstream.h>
#include <glib/gstdio.h>

#define WHITEOUT_PREFIX ".wh."
#define OPAQUE_MARKER   ".wh..wh..opq"

typedef struct _Progress Progress;

typedef struct
{
  GInputStream *stream;
  GError *error; /* what the stream said when libarchive got -1 */
  char buffer[256 * 1024];
  guint64 bytes;
  Progress *progress;
} Source;

static void progress_update (Progress *progress, guint64 bytes);

static la_ssize_t
read_source (struct archive *archive, void *data, const void **buffer)
{
  Source *source = data;
  gssize n = g_input_stream_read (source->stream, source->buffer, sizeof source->buffer, NULL,
                                  &source->error);

  if (n < 0)
    {
      archive_set_error (archive, EIO, "%s", source->error->message);
      return -1;
    }
  source->bytes += (guint64) n;
  if (source->progress != NULL)
    progress_update (source->progress, source->bytes);
  *buffer = source->buffer;
  return n;
}

/* An entry's path as a clean relative path ("./a/b/" gives "a/b"), or NULL for the root. */
static char *
clean_path (const char *path)
{
  g_autofree char *canonical = NULL;

  while (g_str_has_prefix (path, "./"))
    path += 2;
  canonical = g_canonicalize_filename (path, "/");
  if (g_str_equal (canonical, "/"))
    return NULL;
  return g_strdup (canonical + 1);
}

static gboolean remove_tree_at (int parent, const char *name, GError **error);

static gboolean
remove_children_at (int dir_fd, GHashTable *keep, const char *prefix, GError **error)
{
  int fd = dup (dir_fd);
  DIR *dir = fd >= 0 ? fdopendir (fd) : NULL;
  struct dirent *entry;
  gboolean ok = TRUE;

  if (dir == NULL)
    {
      if (fd >= 0)
        close (fd);
      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errno), "Cannot list %s: %s", prefix,
                   g_strerror (errno));
      return FALSE;
    }
  while (ok && (entry = readdir (dir)) != NULL)
    {
      g_autofree char *path = NULL;

      if (g_str_equal (entry->d_name, ".") || g_str_equal (entry->d_name, ".."))
        continue;
      path =
        prefix != NULL ? g_build_filename (prefix, entry->d_name, NULL) : g_strdup (entry->d_name);
      if (keep == NULL || !g_hash_table_contains (keep, path))
        ok = remove_tree_at (dir_fd, entry->d_name, error);
    }
  closedir (dir);
  return ok;
}

/* rm -rf NAME under PARENT, never following a symlink. */
static gboolean
remove_tree_at (int parent, const char *name, GError **error)
{
  struct stat info;
  int fd;
  gboolean ok;

  if (fstatat (parent, name, &info, AT_SYMLINK_NOFOLLOW) != 0)
    return errno == ENOENT ? TRUE : FALSE;
  if (!S_ISDIR (info.st_mode))
    return unlinkat (parent, name, 0) == 0 || errno == ENOENT;

  fd = openat (parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    {
      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errno), "Cannot open %s: %s", name,
                   g_strerror (errno));
      return FALSE;
    }
  ok = remove_children_at (fd, NULL, name, error);
  close (fd);
  return ok && (unlinkat (parent, name, AT_REMOVEDIR) == 0 || errno == ENOENT);
}

/* Opens the directory @path under @root without following symlinks on the way; -1 if some
 * component is missing or not a real directory. */
static int
open_directory_beneath (int root, const char *path)
{
  g_auto (GStrv) parts = g_strsplit (path, "/", -1);
  int fd = dup (root);

  for (char **part = parts; fd >= 0 && *part != NULL; part++)
    {
      int next;

      if (**part == '\0')
        continue;
      next = openat (fd, *part, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      close (fd);
      fd = next;
    }
  return fd;
}

typedef struct
{
  GHashTable *written;  /* paths this layer wrote, and their parent directories */
  GPtrArray *whiteouts; /* paths hidden by this layer */
  GPtrArray *opaque;    /* directories whose lower contents this layer hides */
} LayerChanges;

static void
record_written (LayerChanges *changes, const char *path)
{
  g_autofree char *walk = g_strdup (path);

  while (TRUE)
    {
      char *slash;

      g_hash_table_add (changes->written, g_strdup (walk));
      slash = strrchr (walk, '/');
      if (slash == NULL)
        break;
      *slash = '\0';
    }
}

static gboolean
apply_whiteouts (int root, LayerChanges *changes, const char *layer, GError **error)
{
  for (guint i = 0; i < changes->whiteouts->len; i++)
    {
      const char *path = g_ptr_array_index (changes->whiteouts, i);
      g_autofree char *parent = g_path_get_dirname (path);
      g_autofree char *name = g_path_get_basename (path);
      int fd;
      gboolean ok;

      if (g_hash_table_contains (changes->written, path))
        continue;
      fd = open_directory_beneath (root, g_str_equal (parent, ".") ? "" : parent);
      if (fd < 0)
        continue; /* nothing there to hide */
      ok = remove_tree_at (fd, name, error);
      close (fd);
      if (!ok)
        {
          g_prefix_error (error, "Could not apply the whiteout of %s in layer %s: ", path, layer);
          return FALSE;
        }
    }
  for (guint i = 0; i < changes->opaque->len; i++)
    {
      const char *path = g_ptr_array_index (changes->opaque, i);
      int fd = open_directory_beneath (root, path);
      gboolean ok;

      if (fd < 0)
        continue;
      ok = remove_children_at (fd, changes->written, path, error);
      close (fd);
      if (!ok)
        {
          g_prefix_error (error, "Could not make %s opaque in layer %s: ", path, layer);
          return FALSE;
        }
    }
  return TRUE;
}

static gboolean
archive_failed (struct archive *archive, Source *source, const char *what, GError **error)
{
  if (source->error != NULL)
    g_propagate_prefixed_error (error, g_steal_pointer (&source->error), "%s: ", what);
  else
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED, "%s: %s", what,
                 archive_error_string (archive));
  return FALSE;
}

/* Writes one layer's tar into the current directory, which is the target. */
static gboolean
apply_layer (int root,
             GInputStream *tar,
             const char *layer,
             Progress *progress,
             guint64 *out_bytes,
             GError **error)
{
  /* Not ARCHIVE_EXTRACT_UNLINK: with it, libarchive would quietly replace a symlink in an
   * entry's path by a directory; without it, it refuses the entry, as it should. Files of
   * lower layers are still replaced. */
  int flags = ARCHIVE_EXTRACT_SECURE_NODOTDOT | ARCHIVE_EXTRACT_SECURE_SYMLINKS |
              ARCHIVE_EXTRACT_SECURE_NOABSOLUTEPATHS | ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_TIME;
  struct archive *reader = archive_read_new ();
  struct archive *writer = archive_write_disk_new ();
  g_autofree Source *source = g_new0 (Source, 1);
  LayerChanges changes = { g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL),
                           g_ptr_array_new_with_free_func (g_free),
                           g_ptr_array_new_with_free_func (g_free) };
  struct archive_entry *entry;
  gboolean ok = FALSE;
  int status;

  /* Ownership only means something, and only works, as root. */
  if (geteuid () == 0)
    flags |= ARCHIVE_EXTRACT_OWNER;
  archive_write_disk_set_options (writer, flags);
  archive_write_disk_set_standard_lookup (writer);
  archive_read_support_format_tar (reader);
  archive_read_support_format_gnutar (reader);
  source->stream = tar;
  source->progress = progress;

  if (archive_read_open (reader, source, NULL, read_source, NULL) != ARCHIVE_OK)
    {
      archive_failed (reader, source, layer, error);
      goto out;
    }

  while ((status = archive_read_next_header (reader, &entry)) == ARCHIVE_OK)
    {
      g_autofree char *path = clean_path (archive_entry_pathname (entry));
      const char *base;

      if (path == NULL)
        continue;
      base = strrchr (path, '/') != NULL ? strrchr (path, '/') + 1 : path;
      if (g_str_has_prefix (base, WHITEOUT_PREFIX))
        {
          g_autofree char *dir = g_path_get_dirname (path);

          if (g_str_equal (base, OPAQUE_MARKER))
            g_ptr_array_add (changes.opaque, g_strdup (g_str_equal (dir, ".") ? "" : dir));
          else
            g_ptr_array_add (changes.whiteouts,
                             g_str_equal (dir, ".")
                               ? g_strdup (base + strlen (WHITEOUT_PREFIX))
                               : g_build_filename (dir, base + strlen (WHITEOUT_PREFIX), NULL));
          continue;
        }

      if (archive_write_header (writer, entry) != ARCHIVE_OK)
        {
          g_set_error (error, G_IO_ERROR, G_IO_ERROR_PERMISSION_DENIED,
                       "Refusing entry %s of layer %s: %s", archive_entry_pathname (entry), layer,
                       archive_error_string (writer));
          goto out;
        }
      if (archive_entry_size (entry) > 0)
        {
          const void *block;
          size_t size;
          la_int64_t offset;

          while ((status = archive_read_data_block (reader, &block, &size, &offset)) == ARCHIVE_OK)
            if (archive_write_data_block (writer, block, size, offset) != ARCHIVE_OK)
              {
                g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED, "Writing %s of layer %s: %s",
                             path, layer, archive_error_string (writer));
                goto out;
              }
          if (status != ARCHIVE_EOF)
            {
              archive_failed (reader, source, layer, error);
              goto out;
            }
        }
      if (archive_write_finish_entry (writer) != ARCHIVE_OK)
        {
          g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED, "Writing %s of layer %s: %s", path,
                       layer, archive_error_string (writer));
          goto out;
        }
      record_written (&changes, path);
    }
  if (status != ARCHIVE_EOF)
    {
      archive_failed (reader, source, layer, error);
      goto out;
    }

  /* The tar ends before the stream does (padding): read on, for the diff_id check. */
  {
    char rest[4096];
    gssize n;

    while ((n = g_input_stream_read (tar, rest, sizeof rest, NULL, error)) > 0)
      source->bytes += (guint64) n;
    if (n < 0)
      goto out;
  }

  ok = apply_whiteouts (root, &changes, layer, error);
  *out_bytes = source->bytes;

out:
  g_clear_error (&source->error);
  archive_read_free (reader);
  archive_write_free (writer);
  g_hash_table_unref (changes.written);
  g_ptr_array_unref (changes.whiteouts);
  g_ptr_array_unref (changes.opaque);
  return ok;
}

/* On a terminal, one line that says how the current layer and the whole image are doing;
 * elsewhere, nothing until a layer is done (then one line each, see cimgproxy_extract()). */
struct _Progress
{
  gboolean terminal;
  guint index;
  guint count;
  const char *digest;
  gint64 layer_start;
  gint64 start;
  guint64 total_size; /* compressed, all layers */
  guint64 done_size;  /* compressed, layers done */
  gint64 last_draw;
};

static void
progress_update (Progress *progress, guint64 bytes)
{
  gint64 now = g_get_monotonic_time ();
  double layer_seconds = (now - progress->layer_start) / (double) G_USEC_PER_SEC;
  double seconds = (now - progress->start) / (double) G_USEC_PER_SEC;
  g_autofree char *eta = NULL;

  if (!progress->terminal || now - progress->last_draw < G_USEC_PER_SEC / 10)
    return;
  progress->last_draw = now;
  /* The overall rate in compressed bytes of finished layers is the best guess there is:
   * layers differ in how well they compress. */
  if (progress->done_size > 0 && seconds > 0)
    eta = g_strdup_printf (", about %.0f s left", (progress->total_size - progress->done_size) /
                                                    (progress->done_size / seconds));
  g_printerr ("\r\033[Klayer %u/%u %.19s… %.1f MiB, %.1f MiB/s%s", progress->index + 1,
              progress->count, progress->digest, bytes / 1048576.0,
              layer_seconds > 0 ? bytes / 1048576.0 / layer_seconds : 0.0, eta ? eta : "");
}

/* A layer fetched ahead of its turn, into an anonymous file. */
typedef struct
{
  CImgProxyImage *image;
  CImgProxyLayerInfo *layer;
  GCancellable *cancellable;
  GMutex lock;
  GCond done_cond;
  gboolean done;
  int fd;
  GError *error;
  GThread *thread;
} Prefetch;

static gpointer
prefetch_layer (gpointer data)
{
  Prefetch *prefetch = data;
  g_autoptr (GError) error = NULL;
  g_autoptr (GInputStream) tar =
    cimg_proxy_image_open_layer (prefetch->image, prefetch->layer, prefetch->cancellable, &error);
  g_autofree char *path = NULL;
  int fd = -1;

  if (tar != NULL)
    fd = g_file_open_tmp ("cimgproxy-layer-XXXXXX", &path, &error);
  if (fd >= 0)
    {
      g_autoptr (GOutputStream) out = g_unix_output_stream_new (fd, FALSE);

      g_unlink (path);
      /* Reading to the end checks the diff_id, before the layer's turn comes. */
      if (g_output_stream_splice (out, tar, G_OUTPUT_STREAM_SPLICE_CLOSE_SOURCE,
                                  prefetch->cancellable, &error) < 0)
        g_close (g_steal_fd (&fd), NULL);
      else
        lseek (fd, 0, SEEK_SET);
    }

  g_mutex_lock (&prefetch->lock);
  prefetch->fd = fd;
  prefetch->error = g_steal_pointer (&error);
  prefetch->done = TRUE;
  g_cond_signal (&prefetch->done_cond);
  g_mutex_unlock (&prefetch->lock);
  return NULL;
}

static Prefetch *
prefetch_start (CImgProxyImage *image, CImgProxyLayerInfo *layer, GCancellable *cancellable)
{
  Prefetch *prefetch = g_new0 (Prefetch, 1);

  prefetch->image = g_object_ref (image);
  prefetch->layer = g_object_ref (layer);
  prefetch->cancellable = g_object_ref (cancellable);
  prefetch->fd = -1;
  g_mutex_init (&prefetch->lock);
  g_cond_init (&prefetch->done_cond);
  prefetch->thread = g_thread_new ("cimgproxy-prefetch", prefetch_layer, prefetch);
  return prefetch;
}

/* Waits for the prefetch and gives its file as a stream, or NULL with @error set. */
static GInputStream *
prefetch_finish (Prefetch *prefetch, GError **error)
{
  g_mutex_lock (&prefetch->lock);
  while (!prefetch->done)
    g_cond_wait (&prefetch->done_cond, &prefetch->lock);
  g_mutex_unlock (&prefetch->lock);
  if (prefetch->error != NULL)
    {
      g_propagate_error (error, g_steal_pointer (&prefetch->error));
      return NULL;
    }
  return g_unix_input_stream_new (g_steal_fd (&prefetch->fd), TRUE);
}

static void
prefetch_free (gpointer data)
{
  Prefetch *prefetch = data;

  if (prefetch == NULL)
    return;
  g_cancellable_cancel (prefetch->cancellable);
  g_thread_join (prefetch->thread);
  if (prefetch->fd >= 0)
    close (prefetch->fd);
  g_clear_error (&prefetch->error);
  g_object_unref (prefetch->image);
  g_object_unref (prefetch->layer);
  g_object_unref (prefetch->cancellable);
  g_mutex_clear (&prefetch->lock);
  g_cond_clear (&prefetch->done_cond);
  g_free (prefetch);
}

gboolean
cimgproxy_extract (CImgProxyImage *image,
                   const char *directory,
                   guint jobs,
                   gboolean quiet,
                   GError **error)
{
  g_autoptr (GPtrArray) layers = NULL;
  g_autoptr (GPtrArray) prefetches = NULL;
  g_autoptr (GCancellable) cancellable = g_cancellable_new ();
  Progress progress = { !quiet && isatty (STDERR_FILENO) };
  int root = -1;
  int previous = -1;
  gboolean ok = FALSE;

  if (g_mkdir_with_parents (directory, 0755) != 0 ||
      (root = open (directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0 ||
      (previous = open (".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
    {
      int errsv = errno;
      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errsv), "Cannot use %s: %s", directory,
                   g_strerror (errsv));
      goto out;
    }
  layers = cimg_proxy_image_get_layer_info (image, NULL, error);
  if (layers == NULL)
    goto out;

  prefetches = g_ptr_array_new_full (layers->len, prefetch_free);
  g_ptr_array_set_size (prefetches, layers->len);
  progress.count = layers->len;
  progress.start = g_get_monotonic_time ();
  for (guint i = 0; i < layers->len; i++)
    progress.total_size += MAX (cimg_proxy_layer_info_get_size (g_ptr_array_index (layers, i)), 0);

  /* libarchive resolves entries, and checks them for escapes, relative to the current
   * directory. */
  if (fchdir (root) != 0)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED, "Cannot enter %s", directory);
      goto out;
    }
  for (guint i = 0; i < layers->len; i++)
    {
      CImgProxyLayerInfo *layer = g_ptr_array_index (layers, i);
      const char *digest = cimg_proxy_layer_info_get_digest (layer);
      g_autoptr (GInputStream) tar = NULL;
      gint64 start = g_get_monotonic_time ();
      guint64 bytes = 0;

      /* With -j N, the next N-1 layers stream ahead into anonymous files while this one is
       * applied; the layers are still applied in order. */
      for (guint ahead = i + 1; ahead < MIN (i + jobs, layers->len); ahead++)
        if (g_ptr_array_index (prefetches, ahead) == NULL)
          g_ptr_array_index (prefetches, ahead) =
            prefetch_start (image, g_ptr_array_index (layers, ahead), cancellable);

      progress.index = i;
      progress.digest = digest;
      progress.layer_start = start;
      tar = g_ptr_array_index (prefetches, i) != NULL
              ? prefetch_finish (g_ptr_array_index (prefetches, i), error)
              : cimg_proxy_image_open_layer (image, layer, cancellable, error);
      if (tar == NULL || !apply_layer (root, tar, digest, &progress, &bytes, error))
        {
          g_prefix_error (error, "Extracting %s: ", cimg_proxy_image_get_reference (image));
          goto out;
        }
      progress.done_size += MAX (cimg_proxy_layer_info_get_size (layer), 0);
      if (progress.terminal)
        g_printerr ("\r\033[K");
      if (!quiet)
        g_printerr ("layer %u/%u %s: %" G_GUINT64_FORMAT " bytes unpacked in %.1f s\n", i + 1,
                    layers->len, digest, bytes,
                    (g_get_monotonic_time () - start) / (double) G_USEC_PER_SEC);
    }
  ok = TRUE;

out:
  /* Layers still streaming ahead are not wanted any more. */
  g_cancellable_cancel (cancellable);
  if (previous >= 0 && fchdir (previous) != 0)
    g_debug ("Could not return to the previous directory");
  if (previous >= 0)
    close (previous);
  if (root >= 0)
    close (root);
  return ok;
}
