/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include "lsock-stream-private.h"
#include "lsock-name-private.h"
#include "lsock-i18n-private.h"

#include <errno.h>

/*
 * LsockStream by descriptor: adopting a socket, handing it over, and
 * passing descriptors to the peer. The platform does the work
 * (lsock-stream-unix.c, lsock-stream-win32.c); this is the API, the
 * pending flags, and the async forms, which wait with the substreams'
 * pollable sources.
 */

/**
 * lsock_stream_new_from_fd:
 * @fd: a connected `AF_UNIX` `SOCK_STREAM` socket
 * @error: return location for a #GError
 *
 * Makes a stream of a socket that is already connected: one end of a
 * socketpair, a connection passed by socket activation with `Accept=yes`
 * (`$LISTEN_FDS`, from fd 3), or one received from another process.
 *
 * The socket is validated: anything but a connected Unix-domain stream
 * socket fails with %G_IO_ERROR_INVALID_ARGUMENT, and then @fd stays the
 * caller's. On success the stream owns @fd and closes it when the stream
 * is closed. The socket is made close-on-exec and blocking (the stream
 * waits with `poll()` where it must not block); the
 * [property@Lsock.Stream:name] is what either end is bound to, or %NULL.
 *
 * No access check is made: whoever gave you the socket vouched for the
 * peer. [method@Lsock.Stream.get_peer_credentials] tells who it is.
 *
 * On Windows this fails with %G_IO_ERROR_NOT_SUPPORTED.
 *
 * Returns: (transfer full): a new #LsockStream
 *
 * Since: 1.0
 */
LsockStream *
lsock_stream_new_from_fd (int      fd,
                          GError **error)
{
  g_return_val_if_fail (fd >= 0, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  return _lsock_stream_new_from_fd_impl (fd, error);
}

/**
 * lsock_stream_new_pair:
 * @first: (out) (transfer full) (optional): return location for one end
 * @second: (out) (transfer full) (optional): return location for the other
 * @error: return location for a #GError
 *
 * Makes two streams connected to each other, with no name: a
 * `socketpair()` on Unix. One end can be handed to a child process (take
 * its descriptor with [method@Lsock.Stream.steal_fd] and give it to
 * [method@Gio.SubprocessLauncher.take_fd]); the child adopts it with
 * [ctor@Lsock.Stream.new_from_fd].
 *
 * On Windows the two ends are the two ends of a named pipe of this user's
 * made for the purpose, under a random name.
 *
 * Returns: (skip): %TRUE on success
 *
 * Since: 1.0
 */
gboolean
lsock_stream_new_pair (LsockStream **first,
                       LsockStream **second,
                       GError      **error)
{
  LsockStream *a = NULL;
  LsockStream *b = NULL;

  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (!_lsock_stream_new_pair_impl (&a, &b, error))
    return FALSE;

  if (first != NULL)
    *first = a;
  else
    g_object_unref (a);
  if (second != NULL)
    *second = b;
  else
    g_object_unref (b);
  return TRUE;
}

/**
 * lsock_stream_get_fd:
 * @self: a #LsockStream
 *
 * Gets the stream's socket, for what only a descriptor can do (a
 * `getsockopt()`, `SO_PEERSEC`, registering it with a sandbox broker).
 *
 * The descriptor stays the stream's: do not close it, do not read from or
 * write to it while the stream may (the bytes would be missing from the
 * stream, or interleaved with its own), and do not change its flags
 * (`O_NONBLOCK`). It is valid until the stream is closed; after that its
 * number may name another file. To give the socket to GIO code (a
 * #GSocket, a #GUnixConnection) take it instead, with
 * [method@Lsock.Stream.steal_fd] or [method@Lsock.Stream.steal_connection].
 *
 * Returns: the socket, or -1 if the stream is closed or on Windows
 *
 * Since: 1.0
 */
int
lsock_stream_get_fd (LsockStream *self)
{
  g_return_val_if_fail (LSOCK_IS_STREAM (self), -1);

  return _lsock_stream_get_fd_impl (self);
}

gboolean
_lsock_stream_check_not_pending (LsockStream  *self,
                                 GError      **error)
{
  if (g_io_stream_has_pending (G_IO_STREAM (self)) ||
      _lsock_stream_direction_busy (self, LSOCK_DIRECTION_READ) ||
      _lsock_stream_direction_busy (self, LSOCK_DIRECTION_WRITE))
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_PENDING,
                   _("Could not take the socket of “%s”: an operation on it is still "
                     "in progress"), _lsock_name_get_display (self->conn->name));
      return FALSE;
    }
  return TRUE;
}

/**
 * lsock_stream_steal_fd:
 * @self: a #LsockStream
 * @error: return location for a #GError
 *
 * Takes the socket out of the stream: the socket is yours (close it when
 * done), and the stream is closed, without shutting the socket down, so
 * the peer sees nothing. Use it to hand a connection to other code or to
 * a child process.
 *
 * Fails with %G_IO_ERROR_PENDING while an operation on the stream is in
 * progress (or a pollable source of it exists), %G_IO_ERROR_CLOSED if it is
 * closed, and %G_IO_ERROR_NOT_SUPPORTED on Windows.
 *
 * Returns: the socket (close-on-exec, blocking), or -1 with @error set
 *
 * Since: 1.0
 */
int
lsock_stream_steal_fd (LsockStream  *self,
                       GError      **error)
{
  int fd;

  g_return_val_if_fail (LSOCK_IS_STREAM (self), -1);
  g_return_val_if_fail (error == NULL || *error == NULL, -1);

  if (!_lsock_stream_check_not_pending (self, error))
    return -1;
  fd = _lsock_stream_steal_fd_impl (self, error);
  if (fd >= 0)
    g_io_stream_close (G_IO_STREAM (self), NULL, NULL);  /* closed already: marks it */
  return fd;
}

/**
 * lsock_stream_steal_connection:
 * @self: a #LsockStream
 * @error: return location for a #GError
 *
 * Takes the socket out of the stream, as [method@Lsock.Stream.steal_fd]
 * does, as a #GSocketConnection (a #GUnixConnection on Unix), for GIO code
 * that needs one: [method@Gio.UnixConnection.send_credentials], a
 * #GSocket's options. The stream is closed; the connection is yours.
 *
 * Returns: (transfer full): the connection, or %NULL with @error set
 *
 * Since: 1.0
 */
GSocketConnection *
lsock_stream_steal_connection (LsockStream  *self,
                               GError      **error)
{
  g_autoptr(GSocket) socket = NULL;
  int fd;

  g_return_val_if_fail (LSOCK_IS_STREAM (self), NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  fd = lsock_stream_steal_fd (self, error);
  if (fd < 0)
    return NULL;
  socket = g_socket_new_from_fd (fd, error);
  if (socket == NULL)
    {
      _lsock_fd_close_impl (fd);
      return NULL;
    }
  return g_socket_connection_factory_create_connection (socket);
}

/**
 * lsock_stream_send_fd:
 * @self: a #LsockStream
 * @fd: the descriptor to send
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Sends a copy of @fd to the peer, which receives it with
 * [method@Lsock.Stream.receive_fd]. @fd stays yours: close it when you no
 * longer need it (the peer's copy stays open).
 *
 * On the wire it is what [method@Gio.UnixConnection.send_fd] sends, one
 * byte (0) carrying the descriptor (`SCM_RIGHTS`), so either side may be
 * GIO's #GUnixConnection, or Python's `socket.recv_fds()`/`send_fds()`,
 * instead. It is written in order with the stream's other data: the peer
 * must call its receive when that byte is next. It honours
 * [property@Lsock.Stream:timeout].
 *
 * Fails with %G_IO_ERROR_PENDING while another write is in progress, and
 * with %G_IO_ERROR_NOT_SUPPORTED on Windows, where named pipes carry no
 * descriptors.
 *
 * Returns: %TRUE on success
 *
 * Since: 1.0
 */
gboolean
lsock_stream_send_fd (LsockStream   *self,
                      int            fd,
                      GCancellable  *cancellable,
                      GError       **error)
{
  gboolean ok;

  g_return_val_if_fail (LSOCK_IS_STREAM (self), FALSE);
  g_return_val_if_fail (fd >= 0, FALSE);
  g_return_val_if_fail (!cancellable || G_IS_CANCELLABLE (cancellable), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (!_lsock_stream_set_pending (self, LSOCK_DIRECTION_WRITE, error))
    return FALSE;
  ok = _lsock_stream_send_fd_impl (self, fd, TRUE, cancellable, error);
  _lsock_stream_clear_pending (self, LSOCK_DIRECTION_WRITE);
  return ok;
}

/**
 * lsock_stream_receive_fd:
 * @self: a #LsockStream
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Receives a descriptor that the peer sent with
 * [method@Lsock.Stream.send_fd] (or [method@Gio.UnixConnection.send_fd],
 * or Python's `socket.send_fds()` with one byte): it reads one byte, which
 * must carry exactly one descriptor.
 *
 * The descriptor is new to this process, close-on-exec, and yours to
 * close. Anything else fails and leaks nothing: end of stream fails with
 * %G_IO_ERROR_CONNECTION_CLOSED; a byte without a descriptor, several
 * descriptors, or more than the control message could hold (`MSG_CTRUNC`)
 * fail with %G_IO_ERROR_INVALID_DATA, and whatever descriptors came are
 * closed. The byte is consumed in every case.
 *
 * Fails with %G_IO_ERROR_PENDING while another read is in progress, and
 * with %G_IO_ERROR_NOT_SUPPORTED on Windows.
 *
 * Returns: the descriptor, or -1 with @error set
 *
 * Since: 1.0
 */
int
lsock_stream_receive_fd (LsockStream   *self,
                         GCancellable  *cancellable,
                         GError       **error)
{
  int fd;

  g_return_val_if_fail (LSOCK_IS_STREAM (self), -1);
  g_return_val_if_fail (!cancellable || G_IS_CANCELLABLE (cancellable), -1);
  g_return_val_if_fail (error == NULL || *error == NULL, -1);

  if (!_lsock_stream_set_pending (self, LSOCK_DIRECTION_READ, error))
    return -1;
  fd = _lsock_stream_receive_fd_impl (self, TRUE, cancellable, error);
  _lsock_stream_clear_pending (self, LSOCK_DIRECTION_READ);
  return fd;
}

/* The async forms: try without blocking, then wait for the substream to
 * poll ready, and try again */

typedef struct
{
  gboolean  sending;
  int       fd;  /* sending: our copy of it */
} FdOp;

static void
fd_op_free (FdOp *op)
{
  if (op->fd >= 0)
    _lsock_fd_close_impl (op->fd);
  g_free (op);
}

static void
close_received_fd (gpointer data)
{
  int *fd = data;

  if (*fd >= 0)
    _lsock_fd_close_impl (*fd);
  g_free (fd);
}

static void fd_op_step (GTask *task);

static gboolean
fd_op_ready_cb (GObject  *pollable,
                gpointer  user_data)
{
  fd_op_step (user_data);
  return G_SOURCE_REMOVE;
}

static void
fd_op_step (GTask *task)
{
  LsockStream *self = g_task_get_source_object (task);
  FdOp *op = g_task_get_task_data (task);
  GCancellable *cancellable = g_task_get_cancellable (task);
  GError *error = NULL;
  gboolean ok;
  int fd = -1;

  if (op->sending)
    ok = _lsock_stream_send_fd_impl (self, op->fd, FALSE, cancellable, &error);
  else
    ok = (fd = _lsock_stream_receive_fd_impl (self, FALSE, cancellable, &error)) >= 0;

  if (!ok && g_error_matches (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
    {
      g_autoptr(GSource) source = NULL;

      g_clear_error (&error);
      if (op->sending)
        source = g_pollable_output_stream_create_source (G_POLLABLE_OUTPUT_STREAM (_lsock_stream_get_output (self)),
                                                         cancellable);
      else
        source = g_pollable_input_stream_create_source (G_POLLABLE_INPUT_STREAM (_lsock_stream_get_input (self)),
                                                        cancellable);
      g_task_attach_source (task, source, (GSourceFunc) (void (*) (void)) fd_op_ready_cb);
      return;
    }

  if (op->sending)
    _lsock_stream_clear_pending (self, LSOCK_DIRECTION_WRITE);
  else
    _lsock_stream_clear_pending (self, LSOCK_DIRECTION_READ);

  if (!ok)
    {
      _lsock_name_cancelled_error (self->conn->name, error);
      g_task_return_error (task, error);
    }
  else if (op->sending)
    g_task_return_boolean (task, TRUE);
  else
    {
      int *received = g_new (int, 1);

      *received = fd;
      g_task_return_pointer (task, received, close_received_fd);
    }
  g_object_unref (task);
}

static void
fd_op_start (LsockStream         *self,
             gboolean             sending,
             int                  fd,
             GCancellable        *cancellable,
             GAsyncReadyCallback  callback,
             gpointer             user_data,
             gpointer             source_tag)
{
  GTask *task;
  FdOp *op;
  GError *error = NULL;
  gboolean pending_set;
  int errsv = 0;

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, source_tag);
  g_task_set_name (task, sending ? "[lsock] send fd" : "[lsock] receive fd");
  op = g_new0 (FdOp, 1);
  op->sending = sending;
  op->fd = -1;
  g_task_set_task_data (task, op, (GDestroyNotify) fd_op_free);

  if (sending)
    pending_set = _lsock_stream_set_pending (self, LSOCK_DIRECTION_WRITE, &error);
  else
    pending_set = _lsock_stream_set_pending (self, LSOCK_DIRECTION_READ, &error);
  if (!pending_set)
    {
      g_task_return_error (task, error);
      g_object_unref (task);
      return;
    }

  /* Ours: the caller may close theirs once this returns */
  if (sending && (op->fd = _lsock_fd_dup_impl (fd, &errsv)) < 0)
    {
      _lsock_stream_clear_pending (self, LSOCK_DIRECTION_WRITE);
      g_task_return_new_error (task, G_IO_ERROR,
                               errsv == EBADF ? G_IO_ERROR_INVALID_ARGUMENT :
                                                g_io_error_from_errno (errsv),
                               _("Could not send file descriptor %d on “%s”: %s"),
                               fd, _lsock_name_get_display (self->conn->name),
                               g_strerror (errsv));
      g_object_unref (task);
      return;
    }

  fd_op_step (task);
}

/**
 * lsock_stream_send_fd_async:
 * @self: a #LsockStream
 * @fd: the descriptor to send
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): what to call when it has been sent
 * @user_data: data for @callback
 *
 * Sends a copy of @fd to the peer without blocking, as
 * [method@Lsock.Stream.send_fd] does. A copy is taken at once: @fd may be
 * closed as soon as this returns. @callback is called in the thread-default
 * main context of the caller; call [method@Lsock.Stream.send_fd_finish]
 * there.
 *
 * Since: 1.0
 */
void
lsock_stream_send_fd_async (LsockStream         *self,
                            int                  fd,
                            GCancellable        *cancellable,
                            GAsyncReadyCallback  callback,
                            gpointer             user_data)
{
  g_return_if_fail (LSOCK_IS_STREAM (self));
  g_return_if_fail (fd >= 0);
  g_return_if_fail (!cancellable || G_IS_CANCELLABLE (cancellable));

  fd_op_start (self, TRUE, fd, cancellable, callback, user_data, lsock_stream_send_fd_async);
}

/**
 * lsock_stream_send_fd_finish:
 * @self: a #LsockStream
 * @result: the #GAsyncResult given to the callback
 * @error: return location for a #GError
 *
 * Finishes [method@Lsock.Stream.send_fd_async].
 *
 * Returns: %TRUE if the descriptor was sent
 *
 * Since: 1.0
 */
gboolean
lsock_stream_send_fd_finish (LsockStream   *self,
                             GAsyncResult  *result,
                             GError       **error)
{
  g_return_val_if_fail (LSOCK_IS_STREAM (self), FALSE);
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == lsock_stream_send_fd_async,
                        FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}

/**
 * lsock_stream_receive_fd_async:
 * @self: a #LsockStream
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): what to call when a descriptor came (or not)
 * @user_data: data for @callback
 *
 * Receives a descriptor without blocking, as
 * [method@Lsock.Stream.receive_fd] does. @callback is called in the
 * thread-default main context of the caller; call
 * [method@Lsock.Stream.receive_fd_finish] there. A descriptor that nobody
 * finishes for is closed.
 *
 * Since: 1.0
 */
void
lsock_stream_receive_fd_async (LsockStream         *self,
                               GCancellable        *cancellable,
                               GAsyncReadyCallback  callback,
                               gpointer             user_data)
{
  g_return_if_fail (LSOCK_IS_STREAM (self));
  g_return_if_fail (!cancellable || G_IS_CANCELLABLE (cancellable));

  fd_op_start (self, FALSE, -1, cancellable, callback, user_data, lsock_stream_receive_fd_async);
}

/**
 * lsock_stream_receive_fd_finish:
 * @self: a #LsockStream
 * @result: the #GAsyncResult given to the callback
 * @error: return location for a #GError
 *
 * Finishes [method@Lsock.Stream.receive_fd_async].
 *
 * Returns: the descriptor (close-on-exec, yours to close), or -1 with
 *   @error set
 *
 * Since: 1.0
 */
int
lsock_stream_receive_fd_finish (LsockStream   *self,
                                GAsyncResult  *result,
                                GError       **error)
{
  int *received;
  int fd;

  g_return_val_if_fail (LSOCK_IS_STREAM (self), -1);
  g_return_val_if_fail (g_task_is_valid (result, self), -1);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == lsock_stream_receive_fd_async,
                        -1);
  g_return_val_if_fail (error == NULL || *error == NULL, -1);

  received = g_task_propagate_pointer (G_TASK (result), error);
  if (received == NULL)
    return -1;
  fd = *received;
  g_free (received);
  return fd;
}
