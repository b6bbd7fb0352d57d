/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include "lsock-stream-private.h"
#include "lsock-name-private.h"
#include "lsock-i18n-private.h"

/**
 * LsockStream:
 *
 * A connection to a local socket: a [class@Gio.IOStream] whose input and
 * output streams carry exactly the bytes written at the other end, with no
 * framing.
 *
 * Make one with [func@Lsock.Stream.connect] or
 * [func@Lsock.Stream.connect_async], or get one from an
 * [class@Lsock.Listener].
 *
 * On Unix the input and output streams are pollable
 * ([iface@Gio.PollableInputStream], [iface@Gio.PollableOutputStream]), so
 * their asynchronous operations are driven by the caller's main context, with
 * no helper thread. On every platform, one thread may read while another
 * writes the same stream.
 *
 * Writes never raise `SIGPIPE`: writing after the peer went away fails with
 * %G_IO_ERROR_BROKEN_PIPE or %G_IO_ERROR_CONNECTION_CLOSED, and reading after
 * the peer went away returns 0 bytes (end of stream).
 *
 * Blocking reads and writes honour [property@Lsock.Stream:timeout] and fail
 * with %G_IO_ERROR_TIMED_OUT when it elapses; every operation takes a
 * [class@Gio.Cancellable].
 *
 * ## Asynchronous operations
 *
 * On Unix, asynchronous reads and writes are driven by one watch per
 * connection on the caller's thread-default main context (one epoll
 * descriptor per context on Linux), and report with a new
 * [class@Lsock.AsyncResult] each, never before the `_async()` call has
 * returned. Cancellables and [property@Lsock.Stream:timeout] work as for
 * blocking calls.
 *
 * ## Lifetime and closing
 *
 * As with a [class@Gio.SocketConnection], dropping the last reference to
 * the stream closes the connection, unless an operation on its input or
 * output stream is pending: then the connection stays open until that
 * operation is done and nothing holds the substreams (a `splice_async()`
 * echo service may drop the stream at once).
 *
 * [method@Gio.IOStream.close] closes the connection at once, from any
 * thread: pending and later operations on the substreams end with
 * %G_IO_ERROR_CLOSED, each in its own main context; a blocking read or
 * write in another thread returns. The substreams are not closed through
 * [method@Gio.InputStream.close], which marks a stream busy while it runs
 * and would make an operation that another thread starts at that moment
 * fail with %G_IO_ERROR_PENDING; so [method@Gio.InputStream.is_closed] on
 * them stays %FALSE. Closing a substream by itself does nothing to the
 * connection.
 *
 * Since: 1.0
 */

enum {
  PROP_0,
  PROP_NAME,
  PROP_TIMEOUT,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

G_DEFINE_FINAL_TYPE (LsockStream, lsock_stream, G_TYPE_IO_STREAM)

LsockConn *
_lsock_conn_new (LsockName *name,
                 gpointer   backend)
{
  LsockConn *conn = g_new0 (LsockConn, 1);

  g_atomic_ref_count_init (&conn->ref_count);
  conn->owners = 1;
  conn->name = g_object_ref (name);
  g_mutex_init (&conn->lock);
  conn->backend = backend;
  return conn;
}

LsockConn *
_lsock_conn_ref (LsockConn *conn)
{
  g_atomic_ref_count_inc (&conn->ref_count);
  return conn;
}

void
_lsock_conn_unref (LsockConn *conn)
{
  if (!g_atomic_ref_count_dec (&conn->ref_count))
    return;

  g_assert (conn->closed);
  _lsock_conn_free_impl (conn);
  g_clear_object (&conn->name);
  g_mutex_clear (&conn->lock);
  g_free (conn);
}

LsockConn *
_lsock_conn_own (LsockConn *conn)
{
  g_atomic_int_inc (&conn->owners);
  return _lsock_conn_ref (conn);
}

void
_lsock_conn_disown (LsockConn *conn)
{
  if (g_atomic_int_dec_and_test (&conn->owners))
    _lsock_conn_close (conn);
  _lsock_conn_unref (conn);
}

gboolean
_lsock_conn_close (LsockConn *conn)
{
  gboolean was_closed;

  g_mutex_lock (&conn->lock);
  was_closed = conn->closed;
  conn->closed = TRUE;
  g_mutex_unlock (&conn->lock);

  if (!was_closed)
    _lsock_conn_close_impl (conn);
  return !was_closed;
}

gboolean
_lsock_conn_is_closed (LsockConn *conn)
{
  gboolean closed;

  g_mutex_lock (&conn->lock);
  closed = conn->closed;
  g_mutex_unlock (&conn->lock);
  return closed;
}

void
_lsock_conn_set_closed_error (LsockConn  *conn,
                              GError    **error)
{
  g_set_error (error, G_IO_ERROR, G_IO_ERROR_CLOSED,
               _("The connection to “%s” is closed"),
               _lsock_name_get_display (conn->name));
}

LsockStream *
_lsock_stream_new (LsockName *name,
                   gpointer   backend)
{
  LsockStream *self;

  g_return_val_if_fail (LSOCK_IS_NAME (name), NULL);

  self = g_object_new (LSOCK_TYPE_STREAM, NULL);
  self->conn = _lsock_conn_new (name, backend);
  _lsock_stream_init_streams_impl (self);

  return self;
}

void
_lsock_stream_set_closed_error (LsockStream  *self,
                                GError      **error)
{
  _lsock_conn_set_closed_error (self->conn, error);
}

void
_lsock_name_cancelled_error (LsockName *name,
                             GError    *error)
{
  if (error == NULL || !g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return;
  g_free (error->message);
  error->message = g_strdup_printf (_("The operation on “%s” was cancelled"),
                                    _lsock_name_get_display (name));
}

static void
substream_close_async (gpointer             stream,
                       GCancellable        *cancellable,
                       GAsyncReadyCallback  callback,
                       gpointer             user_data)
{
  g_autoptr(GTask) task = g_task_new (stream, cancellable, callback, user_data);

  g_task_set_source_tag (task, substream_close_async);
  g_task_set_name (task, "[lsock] close");
  g_task_return_boolean (task, TRUE);
}

static gboolean
substream_close_finish (gpointer       stream,
                        GAsyncResult  *result,
                        GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, stream), FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}

static gboolean
input_close (GInputStream  *stream,
             GCancellable  *cancellable,
             GError       **error)
{
  return TRUE;
}

static void
input_close_async (GInputStream        *stream,
                   int                  io_priority,
                   GCancellable        *cancellable,
                   GAsyncReadyCallback  callback,
                   gpointer             user_data)
{
  substream_close_async (stream, cancellable, callback, user_data);
}

static gboolean
input_close_finish (GInputStream  *stream,
                    GAsyncResult  *result,
                    GError       **error)
{
  return substream_close_finish (stream, result, error);
}

static gboolean
output_close (GOutputStream  *stream,
              GCancellable   *cancellable,
              GError        **error)
{
  return TRUE;
}

static void
output_close_async (GOutputStream       *stream,
                    int                  io_priority,
                    GCancellable        *cancellable,
                    GAsyncReadyCallback  callback,
                    gpointer             user_data)
{
  substream_close_async (stream, cancellable, callback, user_data);
}

static gboolean
output_close_finish (GOutputStream  *stream,
                     GAsyncResult   *result,
                     GError        **error)
{
  return substream_close_finish (stream, result, error);
}

void
_lsock_input_stream_class_set_close (GInputStreamClass *klass)
{
  klass->close_fn = input_close;
  klass->close_async = input_close_async;
  klass->close_finish = input_close_finish;
}

void
_lsock_output_stream_class_set_close (GOutputStreamClass *klass)
{
  klass->close_fn = output_close;
  klass->close_async = output_close_async;
  klass->close_finish = output_close_finish;
}

static GInputStream *
lsock_stream_get_input_stream (GIOStream *stream)
{
  return LSOCK_STREAM (stream)->input;
}

static GOutputStream *
lsock_stream_get_output_stream (GIOStream *stream)
{
  return LSOCK_STREAM (stream)->output;
}

/* Closes the connection: pending and later operations on the substreams,
 * in any thread, fail with G_IO_ERROR_CLOSED. The substreams are not
 * closed through g_input_stream_close() and g_output_stream_close(): those
 * mark the substream busy while they run, which would make an operation
 * that another thread starts at that moment fail with
 * G_IO_ERROR_PENDING. (Closing a substream does nothing to the connection
 * either, as with GSocketConnection.) */
static gboolean
lsock_stream_close_fn (GIOStream     *stream,
                       GCancellable  *cancellable,
                       GError       **error)
{
  LsockStream *self = LSOCK_STREAM (stream);

  if (!self->keep_open)
    _lsock_conn_close (self->conn);
  return TRUE;
}

/* Closing is immediate (it never waits for the peer), so the asynchronous
 * close does it in place where GIOStream's default would use a thread. */
static void
lsock_stream_close_async (GIOStream           *stream,
                          int                  io_priority,
                          GCancellable        *cancellable,
                          GAsyncReadyCallback  callback,
                          gpointer             user_data)
{
  g_autoptr(GTask) task = g_task_new (stream, cancellable, callback, user_data);
  GError *error = NULL;

  g_task_set_source_tag (task, lsock_stream_close_async);
  g_task_set_name (task, "[lsock] close");
  if (lsock_stream_close_fn (stream, cancellable, &error))
    g_task_return_boolean (task, TRUE);
  else
    g_task_return_error (task, error);
}

static gboolean
lsock_stream_close_finish (GIOStream     *stream,
                           GAsyncResult  *result,
                           GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, stream), FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}

static void
lsock_stream_dispose (GObject *object)
{
  LsockStream *self = LSOCK_STREAM (object);

  /* GIOStream's dispose closes the stream. Not with an operation pending,
   * which holds its substream: the connection then closes when the last
   * substream goes, as a GSocketConnection's socket does. */
  if (!g_io_stream_is_closed (G_IO_STREAM (self)) &&
      ((self->input != NULL && g_input_stream_has_pending (self->input)) ||
       (self->output != NULL && g_output_stream_has_pending (self->output))))
    self->keep_open = TRUE;

  G_OBJECT_CLASS (lsock_stream_parent_class)->dispose (object);

  g_clear_object (&self->input);
  g_clear_object (&self->output);
}

static void
lsock_stream_finalize (GObject *object)
{
  LsockStream *self = LSOCK_STREAM (object);

  g_clear_pointer (&self->conn, _lsock_conn_disown);

  G_OBJECT_CLASS (lsock_stream_parent_class)->finalize (object);
}

static void
lsock_stream_get_property (GObject    *object,
                           guint       prop_id,
                           GValue     *value,
                           GParamSpec *pspec)
{
  LsockStream *self = LSOCK_STREAM (object);

  switch (prop_id)
    {
    case PROP_NAME:
      g_value_set_object (value, self->conn->name);
      break;

    case PROP_TIMEOUT:
      g_value_set_uint (value, lsock_stream_get_timeout (self));
      break;

    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
lsock_stream_set_property (GObject      *object,
                           guint         prop_id,
                           const GValue *value,
                           GParamSpec   *pspec)
{
  LsockStream *self = LSOCK_STREAM (object);

  switch (prop_id)
    {
    case PROP_TIMEOUT:
      lsock_stream_set_timeout (self, g_value_get_uint (value));
      break;

    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
lsock_stream_class_init (LsockStreamClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GIOStreamClass *stream_class = G_IO_STREAM_CLASS (klass);

  object_class->dispose = lsock_stream_dispose;
  object_class->finalize = lsock_stream_finalize;
  object_class->get_property = lsock_stream_get_property;
  object_class->set_property = lsock_stream_set_property;

  stream_class->get_input_stream = lsock_stream_get_input_stream;
  stream_class->get_output_stream = lsock_stream_get_output_stream;
  stream_class->close_fn = lsock_stream_close_fn;
  stream_class->close_async = lsock_stream_close_async;
  stream_class->close_finish = lsock_stream_close_finish;

  /**
   * LsockStream:name:
   *
   * The name this stream is connected to: the name given to
   * [func@Lsock.Stream.connect], or the listener's name for a stream
   * returned by an [class@Lsock.Listener].
   *
   * Since: 1.0
   */
  properties[PROP_NAME] =
    g_param_spec_object ("name", NULL, NULL,
                         LSOCK_TYPE_NAME,
                         (G_PARAM_READABLE |
                          G_PARAM_EXPLICIT_NOTIFY |
                          G_PARAM_STATIC_STRINGS));

  /**
   * LsockStream:timeout:
   *
   * The timeout, in milliseconds, of blocking reads and writes, and of the
   * wait of asynchronous reads and writes; 0 (the default) means none. An
   * operation that waits longer fails with %G_IO_ERROR_TIMED_OUT, and the
   * stream stays usable.
   *
   * Since: 1.0
   */
  properties[PROP_TIMEOUT] =
    g_param_spec_uint ("timeout", NULL, NULL,
                       0, G_MAXINT, 0,
                       (G_PARAM_READWRITE |
                        G_PARAM_EXPLICIT_NOTIFY |
                        G_PARAM_STATIC_STRINGS));

  g_object_class_install_properties (object_class, N_PROPS, properties);
}

static void
lsock_stream_init (LsockStream *self)
{
}

/**
 * lsock_stream_connect: (rename-to lsock_stream_connect_to)
 * @name: the name to connect to
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Connects to the listener at @name, blocking until it is connected.
 *
 * Bindings call it `Lsock.Stream.connect_to()`: a `connect()` would hide
 * the signal method of every object (`GObject.Object.connect()` in
 * Python).
 *
 * Fails with %G_IO_ERROR_NOT_FOUND when nobody listens at @name,
 * %G_IO_ERROR_CONNECTION_REFUSED when a socket file exists but nobody listens
 * on it any more, %G_IO_ERROR_PERMISSION_DENIED when the operating system
 * forbids the connection, and %G_IO_ERROR_CANCELLED when @cancellable is
 * cancelled. When the listener's backlog is full, this waits (cancellably)
 * until there is room.
 *
 * Returns: (transfer full): a connected stream
 *
 * Since: 1.0
 */
LsockStream *
lsock_stream_connect (LsockName     *name,
                      GCancellable  *cancellable,
                      GError       **error)
{
  LsockStream *stream;

  g_return_val_if_fail (LSOCK_IS_NAME (name), NULL);
  g_return_val_if_fail (!cancellable || G_IS_CANCELLABLE (cancellable), NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  stream = _lsock_stream_connect_impl (name, cancellable, error);
  if (stream == NULL)
    _lsock_name_cancelled_error (name, error ? *error : NULL);
  return stream;
}

/**
 * lsock_stream_connect_async: (rename-to lsock_stream_connect_to_async)
 * @name: the name to connect to
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async) (closure user_data): called when the connection is made or has failed
 * @user_data: data for @callback
 *
 * Connects to the listener at @name without blocking: the connection is
 * watched from the thread-default main context of the calling thread, where
 * @callback is called. Call [func@Lsock.Stream.connect_finish] there to get
 * the stream.
 *
 * Bindings call it `Lsock.Stream.connect_to_async()`.
 *
 * Since: 1.0
 */
void
lsock_stream_connect_async (LsockName           *name,
                            GCancellable        *cancellable,
                            GAsyncReadyCallback  callback,
                            gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;

  g_return_if_fail (LSOCK_IS_NAME (name));
  g_return_if_fail (!cancellable || G_IS_CANCELLABLE (cancellable));

  task = g_task_new (NULL, cancellable, callback, user_data);
  g_task_set_source_tag (task, lsock_stream_connect_async);
  g_task_set_name (task, "[lsock] connect");
  /* The task data belongs to the backend; this is for connect_finish() */
  g_object_set_data_full (G_OBJECT (task), "lsock-name", g_object_ref (name), g_object_unref);

  if (g_task_return_error_if_cancelled (task))
    return;

  _lsock_stream_connect_async_impl (g_steal_pointer (&task), name);
}

/**
 * lsock_stream_connect_finish: (rename-to lsock_stream_connect_to_finish)
 * @result: the result passed to the callback of [func@Lsock.Stream.connect_async]
 * @error: return location for a #GError
 *
 * Finishes a connection started with [func@Lsock.Stream.connect_async].
 * Bindings call it `Lsock.Stream.connect_to_finish()`.
 *
 * Returns: (transfer full): a connected stream
 *
 * Since: 1.0
 */
LsockStream *
lsock_stream_connect_finish (GAsyncResult  *result,
                             GError       **error)
{
  LsockStream *stream;

  g_return_val_if_fail (g_task_is_valid (result, NULL), NULL);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == lsock_stream_connect_async, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  stream = g_task_propagate_pointer (G_TASK (result), error);
  if (stream == NULL && error != NULL)
    _lsock_name_cancelled_error (g_object_get_data (G_OBJECT (result), "lsock-name"), *error);
  return stream;
}

/* The names bindings see lsock_stream_connect() and friends by (see
 * their "rename-to"): aliases, so that a GIR name can differ from the
 * C name */

/**
 * lsock_stream_connect_to:
 * @name: the name to connect to
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * The same as [func@Lsock.Stream.connect].
 *
 * Returns: (transfer full): a connected stream
 *
 * Since: 1.0
 */
LsockStream *
lsock_stream_connect_to (LsockName     *name,
                         GCancellable  *cancellable,
                         GError       **error)
{
  return lsock_stream_connect (name, cancellable, error);
}

/**
 * lsock_stream_connect_to_async:
 * @name: the name to connect to
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async) (closure user_data): called when the connection is made or has failed
 * @user_data: data for @callback
 *
 * The same as [func@Lsock.Stream.connect_async].
 *
 * Since: 1.0
 */
void
lsock_stream_connect_to_async (LsockName           *name,
                               GCancellable        *cancellable,
                               GAsyncReadyCallback  callback,
                               gpointer             user_data)
{
  lsock_stream_connect_async (name, cancellable, callback, user_data);
}

/**
 * lsock_stream_connect_to_finish:
 * @result: the result passed to the callback
 * @error: return location for a #GError
 *
 * The same as [func@Lsock.Stream.connect_finish].
 *
 * Returns: (transfer full): a connected stream
 *
 * Since: 1.0
 */
LsockStream *
lsock_stream_connect_to_finish (GAsyncResult  *result,
                                GError       **error)
{
  return lsock_stream_connect_finish (result, error);
}

/**
 * lsock_stream_get_name:
 * @self: a #LsockStream
 *
 * Gets the name this stream is connected to.
 *
 * Returns: (transfer none): the name
 *
 * Since: 1.0
 */
LsockName *
lsock_stream_get_name (LsockStream *self)
{
  g_return_val_if_fail (LSOCK_IS_STREAM (self), NULL);

  return self->conn->name;
}

/**
 * lsock_stream_get_peer_credentials:
 * @self: a #LsockStream
 * @error: return location for a #GError
 *
 * Gets the credentials of the process at the other end, as the operating
 * system recorded them when the connection was made: on Linux the process
 * id, user id and group id; on macOS and the BSDs the user id (and the
 * process id where the system reports it); on Windows the process id.
 *
 * A process id can be reused once that process has exited; use it for
 * logging rather than for decisions.
 *
 * Returns: (transfer full): the peer's credentials
 *
 * Since: 1.0
 */
GCredentials *
lsock_stream_get_peer_credentials (LsockStream  *self,
                                   GError      **error)
{
  g_return_val_if_fail (LSOCK_IS_STREAM (self), NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (_lsock_conn_is_closed (self->conn))
    {
      _lsock_stream_set_closed_error (self, error);
      return NULL;
    }

  return _lsock_stream_get_peer_credentials_impl (self, error);
}

/**
 * lsock_stream_shutdown:
 * @self: a #LsockStream
 * @shutdown_read: whether to stop reading
 * @shutdown_write: whether to stop writing
 * @error: return location for a #GError
 *
 * Shuts down one or both directions of the connection without closing the
 * stream. After `shutdown_write` the peer reads end of stream once it has
 * read everything written before, while this side can still read what the
 * peer sends: a half-close. After `shutdown_read` reads return end of
 * stream.
 *
 * On Windows, named pipes have no half-close: `shutdown_write` fails with
 * %G_IO_ERROR_NOT_SUPPORTED unless `shutdown_read` is also given, in which
 * case the pipe is closed.
 *
 * Returns: %TRUE on success
 *
 * Since: 1.0
 */
gboolean
lsock_stream_shutdown (LsockStream  *self,
                       gboolean      shutdown_read,
                       gboolean      shutdown_write,
                       GError      **error)
{
  g_return_val_if_fail (LSOCK_IS_STREAM (self), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (_lsock_conn_is_closed (self->conn))
    {
      _lsock_stream_set_closed_error (self, error);
      return FALSE;
    }

  if (!shutdown_read && !shutdown_write)
    return TRUE;

  return _lsock_stream_shutdown_impl (self, shutdown_read, shutdown_write, error);
}

/**
 * lsock_stream_get_timeout:
 * @self: a #LsockStream
 *
 * Gets [property@Lsock.Stream:timeout].
 *
 * Returns: the I/O timeout in milliseconds, or 0 for none
 *
 * Since: 1.0
 */
guint
lsock_stream_get_timeout (LsockStream *self)
{
  g_return_val_if_fail (LSOCK_IS_STREAM (self), 0);

  return (guint) g_atomic_int_get (&self->conn->timeout_ms);
}

/**
 * lsock_stream_set_timeout:
 * @self: a #LsockStream
 * @timeout_ms: the timeout in milliseconds, or 0 for none
 *
 * Sets [property@Lsock.Stream:timeout]: how long a read or write may wait
 * before it fails with %G_IO_ERROR_TIMED_OUT. It applies to operations
 * started after the call.
 *
 * Since: 1.0
 */
void
lsock_stream_set_timeout (LsockStream *self,
                          guint        timeout_ms)
{
  g_return_if_fail (LSOCK_IS_STREAM (self));
  g_return_if_fail (timeout_ms <= G_MAXINT);

  if (g_atomic_int_exchange (&self->conn->timeout_ms, (int) timeout_ms) != (int) timeout_ms)
    g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_TIMEOUT]);
}
