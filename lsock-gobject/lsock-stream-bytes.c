/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include "lsock-stream-private.h"
#include "lsock-async-result-private.h"

/*
 * The fast path: whole GBytes in and out.
 *
 * On Unix these go straight to the connection's engine (lsock-unix-conn.c):
 * no GTask, a fresh LsockAsyncResult, and, when the socket is ready, the
 * system call at once and the callback later in the same reactor dispatch
 * (when called from one) rather than a main loop iteration later. A send
 * writes everything however many calls it takes, in one operation, and
 * none makes a substream. The direction is busy meanwhile, for the
 * substream's operations too (_lsock_stream_set_pending()), so they mix
 * safely with the usual GIO calls. On Windows they are the usual GIO calls
 * on the substreams. The backends start the operation, with the pending
 * flag set (lsock-stream-unix.c, lsock-stream-win32.c), and clear it
 * before the callback; this checks and finishes.
 */

/**
 * lsock_stream_send_bytes:
 * @self: a #LsockStream
 * @bytes: what to send
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Sends all of @bytes, blocking until it is written (and honouring
 * [property@Lsock.Stream:timeout]). On error some of it may have been
 * sent.
 *
 * Returns: %TRUE if all of @bytes was sent
 *
 * Since: 1.0
 */
gboolean
lsock_stream_send_bytes (LsockStream   *self,
                         GBytes        *bytes,
                         GCancellable  *cancellable,
                         GError       **error)
{
  gsize size;
  gconstpointer data;
  gboolean ok;

  g_return_val_if_fail (LSOCK_IS_STREAM (self), FALSE);
  g_return_val_if_fail (bytes != NULL, FALSE);
  g_return_val_if_fail (!cancellable || G_IS_CANCELLABLE (cancellable), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (!_lsock_stream_set_pending (self, LSOCK_DIRECTION_WRITE, error))
    return FALSE;
  data = g_bytes_get_data (bytes, &size);
  ok = _lsock_stream_send_bytes_impl (self, data, size, cancellable, error);
  _lsock_stream_clear_pending (self, LSOCK_DIRECTION_WRITE);
  return ok;
}

/**
 * lsock_stream_receive_bytes:
 * @self: a #LsockStream
 * @max_bytes: the most to receive, more than 0
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Receives what the peer sent, up to @max_bytes, blocking until something
 * is there (and honouring [property@Lsock.Stream:timeout]).
 *
 * Returns: (transfer full): what was received: empty at the end of the
 *   stream; %NULL with @error set on error
 *
 * Since: 1.0
 */
GBytes *
lsock_stream_receive_bytes (LsockStream   *self,
                            gsize          max_bytes,
                            GCancellable  *cancellable,
                            GError       **error)
{
  GBytes *received;

  g_return_val_if_fail (LSOCK_IS_STREAM (self), NULL);
  g_return_val_if_fail (max_bytes > 0 && max_bytes <= G_MAXSSIZE, NULL);
  g_return_val_if_fail (!cancellable || G_IS_CANCELLABLE (cancellable), NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (!_lsock_stream_set_pending (self, LSOCK_DIRECTION_READ, error))
    return NULL;
  received = _lsock_stream_receive_bytes_impl (self, max_bytes, cancellable, error);
  _lsock_stream_clear_pending (self, LSOCK_DIRECTION_READ);
  return received;
}


/**
 * lsock_stream_send_bytes_async:
 * @self: a #LsockStream
 * @bytes: what to send
 * @io_priority: the I/O priority of the request
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): what to call when it has been sent
 * @user_data: data for @callback
 *
 * Sends all of @bytes without blocking: the cheapest way to write on a
 * main context. However many system calls it takes, it is one operation,
 * with no short writes to loop on (unlike `write_bytes_async()`), and it
 * holds @bytes until done, so a binding's buffer cannot go away under it.
 *
 * When the socket has room, the data is written at once; the callback runs
 * from the main context of the caller (its thread-default one), never
 * before this returns, and, called from the callback of another lsock
 * operation, in the same main loop iteration. No #GTask is made on Unix.
 * Meanwhile the output stream is busy: other writes fail with
 * %G_IO_ERROR_PENDING. On error some of @bytes may have been sent. Call
 * [method@Lsock.Stream.send_bytes_finish] from @callback.
 *
 * Since: 1.0
 */
void
lsock_stream_send_bytes_async (LsockStream         *self,
                               GBytes              *bytes,
                               int                  io_priority,
                               GCancellable        *cancellable,
                               GAsyncReadyCallback  callback,
                               gpointer             user_data)
{
  GError *error = NULL;

  g_return_if_fail (LSOCK_IS_STREAM (self));
  g_return_if_fail (bytes != NULL);
  g_return_if_fail (!cancellable || G_IS_CANCELLABLE (cancellable));

  if (!_lsock_stream_set_pending (self, LSOCK_DIRECTION_WRITE, &error))
    {
      g_task_report_error (self, callback, user_data, lsock_stream_send_bytes_async, error);
      return;
    }

  _lsock_stream_send_bytes_async_impl (self, bytes, io_priority, cancellable,
                                       callback, user_data);
}

/**
 * lsock_stream_send_bytes_finish:
 * @self: a #LsockStream
 * @result: the #GAsyncResult given to the callback
 * @error: return location for a #GError
 *
 * Finishes [method@Lsock.Stream.send_bytes_async].
 *
 * Returns: %TRUE if all of the bytes were sent
 *
 * Since: 1.0
 */
gboolean
lsock_stream_send_bytes_finish (LsockStream   *self,
                                GAsyncResult  *result,
                                GError       **error)
{
  g_return_val_if_fail (LSOCK_IS_STREAM (self), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  /* Ours (Unix, when the operation started), or a GTask (an error
   * reported at once, or the Windows backend) */
  if (_lsock_is_async_result (result))
    {
      g_return_val_if_fail (_lsock_async_result_is_valid (result, self,
                                                          lsock_stream_send_bytes_async), FALSE);
      return _lsock_async_result_propagate ((LsockAsyncResult *) result, error) >= 0;
    }
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  g_return_val_if_fail (g_async_result_is_tagged (result, lsock_stream_send_bytes_async), FALSE);
  return g_task_propagate_boolean (G_TASK (result), error);
}

/**
 * lsock_stream_receive_bytes_async:
 * @self: a #LsockStream
 * @max_bytes: the most to receive, more than 0
 * @io_priority: the I/O priority of the request
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): what to call when something came
 * @user_data: data for @callback
 *
 * Receives what the peer sent, up to @max_bytes, without blocking: the
 * cheapest way to read on a main context. What is there already is read at
 * once; the callback runs as for [method@Lsock.Stream.send_bytes_async].
 * Meanwhile the input stream is busy: other reads fail with
 * %G_IO_ERROR_PENDING. Call [method@Lsock.Stream.receive_bytes_finish] from
 * @callback.
 *
 * Since: 1.0
 */
void
lsock_stream_receive_bytes_async (LsockStream         *self,
                                  gsize                max_bytes,
                                  int                  io_priority,
                                  GCancellable        *cancellable,
                                  GAsyncReadyCallback  callback,
                                  gpointer             user_data)
{
  GError *error = NULL;

  g_return_if_fail (LSOCK_IS_STREAM (self));
  g_return_if_fail (max_bytes > 0 && max_bytes <= G_MAXSSIZE);
  g_return_if_fail (!cancellable || G_IS_CANCELLABLE (cancellable));

  if (!_lsock_stream_set_pending (self, LSOCK_DIRECTION_READ, &error))
    {
      g_task_report_error (self, callback, user_data, lsock_stream_receive_bytes_async, error);
      return;
    }

  _lsock_stream_receive_bytes_async_impl (self, max_bytes, io_priority, cancellable,
                                          callback, user_data);
}

/**
 * lsock_stream_receive_bytes_finish:
 * @self: a #LsockStream
 * @result: the #GAsyncResult given to the callback
 * @error: return location for a #GError
 *
 * Finishes [method@Lsock.Stream.receive_bytes_async].
 *
 * Returns: (transfer full): what was received: empty at the end of the
 *   stream; %NULL with @error set on error
 *
 * Since: 1.0
 */
GBytes *
lsock_stream_receive_bytes_finish (LsockStream   *self,
                                   GAsyncResult  *result,
                                   GError       **error)
{
  LsockAsyncResult *r;

  g_return_val_if_fail (LSOCK_IS_STREAM (self), NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (_lsock_is_async_result (result))
    {
      g_return_val_if_fail (_lsock_async_result_is_valid (result, self,
                                                          lsock_stream_receive_bytes_async), NULL);
      r = (LsockAsyncResult *) result;
      if (_lsock_async_result_propagate (r, error) < 0)
        return NULL;
      /* Given once, like a GTask's */
      return g_steal_pointer (&r->bytes);
    }
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);
  g_return_val_if_fail (g_async_result_is_tagged (result, lsock_stream_receive_bytes_async), NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}
