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
 * blocking calls. [method@Gio.OutputStream.splice_async] into the output
 * stream reads up to 64 KiB at a time from its source and writes each
 * piece whole in one operation (with
 * %G_OUTPUT_STREAM_SPLICE_CLOSE_TARGET it is GIO's own splice, 8 KiB at a
 * time).
 *
 * The input and output streams are made the first time they are asked for
 * ([method@Gio.IOStream.get_input_stream], from any thread), and are then
 * the same ones for the life of the stream. On Unix the bytes calls
 * ([method@Lsock.Stream.send_bytes_async] and the others) and the
 * descriptor calls use the connection directly: a service that uses only
 * those, or that hands the socket over, never has them. Meanwhile the
 * stream holds the direction as the substream would: operations on a
 * substream fail with %G_IO_ERROR_PENDING while a bytes call is in
 * progress the same way, and the other way round.
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
  conn->name = name != NULL ? g_object_ref (name) : NULL;
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
  /* Atomic too: the Unix backend reads it without the lock */
  g_atomic_int_set (&conn->closed, TRUE);
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

  g_return_val_if_fail (name == NULL || LSOCK_IS_NAME (name), NULL);

  self = g_object_new (LSOCK_TYPE_STREAM, NULL);
  self->conn = _lsock_conn_new (name, backend);

  return self;
}

/* The first caller makes them; any thread may be first. Most of an
 * accepted connection's objects were its substreams, which a service on
 * the bytes calls, or one that hands the socket over, never uses. */
static gpointer
get_substream (LsockStream    *self,
               LsockDirection  direction)
{
  gpointer *slot = direction == LSOCK_DIRECTION_READ ? (gpointer *) &self->input :
                                                       (gpointer *) &self->output;
  gpointer substream = g_atomic_pointer_get (slot);

  if (G_LIKELY (substream != NULL))
    return substream;
  if (direction == LSOCK_DIRECTION_READ)
    substream = _lsock_stream_new_input_impl (self);
  else
    substream = _lsock_stream_new_output_impl (self);
  if (!g_atomic_pointer_compare_and_exchange (slot, NULL, substream))
    {
      /* Another thread was first */
      g_object_unref (substream);
      substream = g_atomic_pointer_get (slot);
    }
  return substream;
}

GInputStream *
_lsock_stream_get_input (LsockStream *self)
{
  return get_substream (self, LSOCK_DIRECTION_READ);
}

GOutputStream *
_lsock_stream_get_output (LsockStream *self)
{
  return get_substream (self, LSOCK_DIRECTION_WRITE);
}

/* A call of the stream's own or an operation of the substream is in
 * progress in @direction */
gboolean
_lsock_stream_direction_busy (LsockStream    *self,
                              LsockDirection  direction)
{
  if (self->conn->busy[direction])
    return TRUE;
  if (direction == LSOCK_DIRECTION_READ)
    {
      GInputStream *input = g_atomic_pointer_get (&self->input);

      return input != NULL && g_input_stream_has_pending (input);
    }
  else
    {
      GOutputStream *output = g_atomic_pointer_get (&self->output);

      return output != NULL && g_output_stream_has_pending (output);
    }
}

static void
set_busy_error (LsockConn      *conn,
                LsockDirection  direction,
                GError        **error)
{
  if (direction == LSOCK_DIRECTION_READ)
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_PENDING,
                 _("Could not read from “%s”: another read is in progress"),
                 _lsock_name_get_display (conn->name));
  else
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_PENDING,
                 _("Could not write to “%s”: another write is in progress"),
                 _lsock_name_get_display (conn->name));
}

/* Without the substream, whose pending flag GIO keeps, if it was never
 * made: the connection holds the stream's own */
gboolean
_lsock_stream_set_pending (LsockStream     *self,
                           LsockDirection   direction,
                           GError         **error)
{
  if (_lsock_stream_direction_busy (self, direction))
    {
      set_busy_error (self->conn, direction, error);
      return FALSE;
    }
  self->conn->busy[direction] = TRUE;
  return TRUE;
}

void
_lsock_stream_clear_pending (LsockStream    *self,
                             LsockDirection  direction)
{
  self->conn->busy[direction] = FALSE;
}

gboolean
_lsock_conn_check_not_busy (LsockConn       *conn,
                            LsockDirection   direction,
                            GError         **error)
{
  if (G_LIKELY (!conn->busy[direction]))
    return TRUE;
  set_busy_error (conn, direction, error);
  return FALSE;
}

void
_lsock_stream_set_closed_error (LsockStream  *self,
                                GError      **error)
{
  _lsock_conn_set_closed_error (self->conn, error);
}

void
_lsock_stream_set_connect_timed_out_error (LsockName  *name,
                                           GError    **error)
{
  g_set_error (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
               _("Could not connect to “%s”: timed out"), _lsock_name_get_display (name));
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
  return _lsock_stream_get_input (LSOCK_STREAM (stream));
}

static GOutputStream *
lsock_stream_get_output_stream (GIOStream *stream)
{
  return _lsock_stream_get_output (LSOCK_STREAM (stream));
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
   * returned by an [class@Lsock.Listener]. For a stream adopted with
   * [ctor@Lsock.Stream.new_from_fd], the name either end of the socket is
   * bound to; %NULL when neither is (a socketpair, see
   * [func@Lsock.Stream.new_pair]).
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
 * Connects to the listener at @name, blocking until it is connected, and
 * checks that the listener runs as this user (or as root, or LocalSystem
 * on Windows): [func@Lsock.Stream.connect_full] with %LSOCK_ACCESS_USER and
 * no timeout.
 *
 * Bindings call it `Lsock.Stream.connect_to()`: a `connect()` would hide
 * the signal method of every object (`GObject.Object.connect()` in
 * Python).
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
  return lsock_stream_connect_full (name, LSOCK_ACCESS_USER, 0, cancellable, error);
}

/* The server check of connect_full() and its async variant: a stream that
 * fails it is closed before anyone could send on it */
static gboolean
check_server (LsockStream   *stream,
              LsockAccess    server_access,
              GError       **error)
{
  if (server_access == LSOCK_ACCESS_EVERYONE)
    return TRUE;
  if (_lsock_stream_check_server_impl (stream, error))
    return TRUE;
  _lsock_conn_close (stream->conn);
  return FALSE;
}

/**
 * lsock_stream_connect_full:
 * @name: the name to connect to
 * @server_access: which listeners to talk to: %LSOCK_ACCESS_USER (the
 *   default of [func@Lsock.Stream.connect]) only to one that runs as this
 *   user (or as root; LocalSystem on Windows), %LSOCK_ACCESS_EVERYONE to
 *   any
 * @timeout_ms: how long the whole connect may take, in milliseconds; 0 for
 *   no limit
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Connects to the listener at @name, blocking until it is connected.
 *
 * The listener's user is checked before the stream is returned, so that
 * nothing is sent to another user who took the name first (anyone can
 * bind a free Linux abstract name, or plant the first instance of a
 * Windows pipe name): a listener that @server_access does not admit fails
 * the connect with %G_IO_ERROR_PERMISSION_DENIED, and the connection is
 * closed.
 *
 * Fails with %G_IO_ERROR_NOT_FOUND when nobody listens at @name,
 * %G_IO_ERROR_CONNECTION_REFUSED when a socket file exists but nobody listens
 * on it any more, %G_IO_ERROR_PERMISSION_DENIED when the operating system
 * forbids the connection or the listener is refused,
 * %G_IO_ERROR_TIMED_OUT when @timeout_ms elapses first (a full backlog, a
 * busy pipe), and %G_IO_ERROR_CANCELLED when @cancellable is cancelled.
 * Without a timeout, a full backlog is waited out.
 *
 * Returns: (transfer full): a connected stream
 *
 * Since: 1.0
 */
LsockStream *
lsock_stream_connect_full (LsockName     *name,
                           LsockAccess    server_access,
                           guint          timeout_ms,
                           GCancellable  *cancellable,
                           GError       **error)
{
  LsockStream *stream;

  g_return_val_if_fail (LSOCK_IS_NAME (name), NULL);
  g_return_val_if_fail (server_access == LSOCK_ACCESS_USER ||
                        server_access == LSOCK_ACCESS_EVERYONE, NULL);
  g_return_val_if_fail (timeout_ms <= G_MAXINT, NULL);
  g_return_val_if_fail (!cancellable || G_IS_CANCELLABLE (cancellable), NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  stream = _lsock_stream_connect_impl (name, timeout_ms, cancellable, error);
  if (stream == NULL)
    {
      _lsock_name_cancelled_error (name, error ? *error : NULL);
      return NULL;
    }
  if (!check_server (stream, server_access, error))
    g_clear_object (&stream);
  return stream;
}

/**
 * lsock_stream_connect_async: (rename-to lsock_stream_connect_to_async)
 * @name: the name to connect to
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async) (closure user_data): called when the connection is made or has failed
 * @user_data: data for @callback
 *
 * Connects to the listener at @name without blocking:
 * [func@Lsock.Stream.connect_full_async] with %LSOCK_ACCESS_USER and no
 * timeout. Call [func@Lsock.Stream.connect_finish] from @callback to get
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
  lsock_stream_connect_full_async (name, LSOCK_ACCESS_USER, 0, cancellable, callback, user_data);
}

typedef struct
{
  LsockName   *name;
  LsockAccess  server_access;
} ConnectCheck;

static void
connect_check_free (ConnectCheck *check)
{
  g_object_unref (check->name);
  g_free (check);
}

/* The backend's task is done: check the server, then report */
static void
connect_done_cb (GObject      *source,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  ConnectCheck *check = g_task_get_task_data (task);
  GError *error = NULL;
  LsockStream *stream;

  stream = g_task_propagate_pointer (G_TASK (result), &error);
  if (stream != NULL && !check_server (stream, check->server_access, &error))
    g_clear_object (&stream);
  if (stream != NULL)
    g_task_return_pointer (task, stream, g_object_unref);
  else
    {
      _lsock_name_cancelled_error (check->name, error);
      g_task_return_error (task, error);
    }
}

/**
 * lsock_stream_connect_full_async:
 * @name: the name to connect to
 * @server_access: which listeners to talk to, see [func@Lsock.Stream.connect_full]
 * @timeout_ms: how long the whole connect may take, in milliseconds; 0 for
 *   no limit
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async) (closure user_data): called when the connection is made or has failed
 * @user_data: data for @callback
 *
 * Connects to the listener at @name without blocking, as
 * [func@Lsock.Stream.connect_full] does: the connection is watched from the
 * thread-default main context of the calling thread, where @callback is
 * called. Call [func@Lsock.Stream.connect_full_finish] (or
 * [func@Lsock.Stream.connect_finish]) there to get the stream.
 *
 * Since: 1.0
 */
void
lsock_stream_connect_full_async (LsockName           *name,
                                 LsockAccess          server_access,
                                 guint                timeout_ms,
                                 GCancellable        *cancellable,
                                 GAsyncReadyCallback  callback,
                                 gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;
  ConnectCheck *check;
  GTask *inner;

  g_return_if_fail (LSOCK_IS_NAME (name));
  g_return_if_fail (server_access == LSOCK_ACCESS_USER ||
                    server_access == LSOCK_ACCESS_EVERYONE);
  g_return_if_fail (timeout_ms <= G_MAXINT);
  g_return_if_fail (!cancellable || G_IS_CANCELLABLE (cancellable));

  task = g_task_new (NULL, cancellable, callback, user_data);
  g_task_set_source_tag (task, lsock_stream_connect_full_async);
  g_task_set_name (task, "[lsock] connect");
  check = g_new0 (ConnectCheck, 1);
  check->name = g_object_ref (name);
  check->server_access = server_access;
  g_task_set_task_data (task, check, (GDestroyNotify) connect_check_free);

  if (g_task_return_error_if_cancelled (task))
    return;

  /* The backend's own task (its task data is the backend's) */
  inner = g_task_new (NULL, cancellable, connect_done_cb, g_steal_pointer (&task));
  g_task_set_source_tag (inner, _lsock_stream_connect_async_impl);
  _lsock_stream_connect_async_impl (inner, name, timeout_ms);
}

/**
 * lsock_stream_connect_finish: (rename-to lsock_stream_connect_to_finish)
 * @result: the result passed to the callback of [func@Lsock.Stream.connect_async]
 * @error: return location for a #GError
 *
 * Finishes a connection started with [func@Lsock.Stream.connect_async] or
 * [func@Lsock.Stream.connect_full_async]. Bindings call it
 * `Lsock.Stream.connect_to_finish()`.
 *
 * Returns: (transfer full): a connected stream
 *
 * Since: 1.0
 */
LsockStream *
lsock_stream_connect_finish (GAsyncResult  *result,
                             GError       **error)
{
  return lsock_stream_connect_full_finish (result, error);
}

/**
 * lsock_stream_connect_full_finish:
 * @result: the result passed to the callback of [func@Lsock.Stream.connect_full_async]
 * @error: return location for a #GError
 *
 * Finishes a connection started with [func@Lsock.Stream.connect_full_async]
 * or [func@Lsock.Stream.connect_async].
 *
 * Returns: (transfer full): a connected stream
 *
 * Since: 1.0
 */
LsockStream *
lsock_stream_connect_full_finish (GAsyncResult  *result,
                                  GError       **error)
{
  GError *local_error = NULL;
  ConnectCheck *check;
  LsockStream *stream;

  g_return_val_if_fail (g_task_is_valid (result, NULL), NULL);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == lsock_stream_connect_full_async,
                        NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  stream = g_task_propagate_pointer (G_TASK (result), &local_error);
  if (stream == NULL)
    {
      /* GTask itself reports a cancellation it saw first: name it too */
      check = g_task_get_task_data (G_TASK (result));
      _lsock_name_cancelled_error (check->name, local_error);
      g_propagate_error (error, local_error);
    }
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
 * Gets the name this stream is connected to ([property@Lsock.Stream:name]).
 *
 * Returns: (transfer none) (nullable): the name, or %NULL for a socket
 *   that has none (one of [func@Lsock.Stream.new_pair], or one adopted by
 *   [ctor@Lsock.Stream.new_from_fd] that neither end bound)
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
 * lsock_stream_get_peer_pidfd:
 * @self: a #LsockStream
 * @error: return location for a #GError
 *
 * Gets a pidfd (a descriptor of a process, close-on-exec) for the process
 * at the other end, as it was when the connection was made: unlike a
 * process id, it cannot come to name another process once that one has
 * exited. Use it to check who the peer is (`/proc/self/fdinfo`,
 * `pidfd_send_signal()`, `poll()` for its exit); close it when done.
 *
 * Fails with %G_IO_ERROR_NOT_SUPPORTED where the system has none: Linux
 * before 6.5 (no `SO_PEERPIDFD`), macOS, the BSDs and Windows.
 *
 * Returns: a new pidfd, or -1 with @error set
 *
 * Since: 1.0
 */
int
lsock_stream_get_peer_pidfd (LsockStream  *self,
                             GError      **error)
{
  g_return_val_if_fail (LSOCK_IS_STREAM (self), -1);
  g_return_val_if_fail (error == NULL || *error == NULL, -1);

  if (_lsock_conn_is_closed (self->conn))
    {
      _lsock_stream_set_closed_error (self, error);
      return -1;
    }

  return _lsock_stream_get_peer_pidfd_impl (self, error);
}

/**
 * lsock_stream_get_peer_discarded:
 * @self: a #LsockStream
 *
 * Whether the peer closed the connection with data sent to it still
 * unread: that data was thrown away. A read still ends the stream as
 * usual, with 0 bytes, once all the peer sent has been read (nothing sent
 * to this side is missing); this says what became of the other direction.
 * A relay or a client that must know its request arrived checks it at end
 * of stream: a listener that refuses a peer closes it at once, reading
 * nothing.
 *
 * Only Linux reports this (a reset, `ECONNRESET`), and only once a read or
 * write has met it; elsewhere, and before, it is %FALSE, which therefore
 * never proves that the peer read everything.
 *
 * Returns: %TRUE if the peer is known to have discarded data sent to it
 *
 * Since: 1.0
 */
gboolean
lsock_stream_get_peer_discarded (LsockStream *self)
{
  g_return_val_if_fail (LSOCK_IS_STREAM (self), FALSE);

  return g_atomic_int_get (&self->conn->peer_discarded);
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
