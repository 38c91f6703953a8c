/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The asynchronous variants of the client's and image's requests. The proxy answers one
 * request at a time, so each runs its synchronous counterpart in a worker thread, with the
 * caller's cancellable; the callback runs in the caller's thread-default main context, as
 * GTask arranges. Blob data does not come this way: blob streams are pollable.
 */

#include "config.h"

#include "cimgproxy-private.h"

typedef struct
{
  CImgProxyThreadFunc func;
  gpointer data;
  GDestroyNotify data_free;
  GDestroyNotify result_free;
} ThreadCall;

static void
thread_call_free (gpointer data)
{
  ThreadCall *call = data;

  if (call->data_free != NULL)
    call->data_free (call->data);
  g_free (call);
}

static void
run_call (GTask *task, gpointer source, gpointer task_data, GCancellable *cancellable)
{
  ThreadCall *call = task_data;
  GError *error = NULL;
  gpointer result = call->func (source, call->data, cancellable, &error);

  if (error != NULL)
    g_task_return_error (task, error);
  else
    g_task_return_pointer (task, result, call->result_free);
}

void
_cimg_proxy_run_in_thread (gpointer source,
                           gpointer source_tag,
                           CImgProxyThreadFunc func,
                           gpointer data,
                           GDestroyNotify data_free,
                           GDestroyNotify result_free,
                           GCancellable *cancellable,
                           GAsyncReadyCallback callback,
                           gpointer user_data)
{
  g_autoptr (GTask) task = g_task_new (source, cancellable, callback, user_data);
  ThreadCall *call = g_new0 (ThreadCall, 1);

  call->func = func;
  call->data = data;
  call->data_free = data_free;
  call->result_free = result_free;
  g_task_set_source_tag (task, source_tag);
  g_task_set_task_data (task, call, thread_call_free);
  g_task_run_in_thread (task, run_call);
}

gpointer
_cimg_proxy_thread_finish (gpointer source,
                           GAsyncResult *result,
                           gpointer source_tag,
                           GError **error)
{
  g_return_val_if_fail (g_task_is_valid (result, source), NULL);
  g_return_val_if_fail (g_async_result_is_tagged (result, source_tag), NULL);

  return g_task_propagate_pointer (G_TASK (result), error);
}
