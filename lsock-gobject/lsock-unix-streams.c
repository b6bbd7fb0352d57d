/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include "lsock-unix-conn-private.h"

/* The input and output streams of an LsockStream on Unix: pollable, each
 * an owner of the connection, every operation one call into
 * lsock-unix-conn.c. Closing one does nothing to the connection (see
 * _lsock_input_stream_class_set_close()). */

#define LSOCK_TYPE_UNIX_INPUT_STREAM (lsock_unix_input_stream_get_type ())
G_DECLARE_FINAL_TYPE (LsockUnixInputStream, lsock_unix_input_stream,
                      LSOCK, UNIX_INPUT_STREAM, GInputStream)

struct _LsockUnixInputStream
{
  GInputStream  parent_instance;
  LsockConn    *conn;
};

static void lsock_unix_input_stream_pollable_iface_init (GPollableInputStreamInterface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE (LsockUnixInputStream, lsock_unix_input_stream, G_TYPE_INPUT_STREAM,
                               G_IMPLEMENT_INTERFACE (G_TYPE_POLLABLE_INPUT_STREAM,
                                                      lsock_unix_input_stream_pollable_iface_init))

/* GInputStream checked the type: no checked casts on the hot paths */
#define INPUT_CONN(stream) (((LsockUnixInputStream *) (stream))->conn)

static gssize
lsock_unix_input_stream_read (GInputStream  *stream,
                              void          *buffer,
                              gsize          count,
                              GCancellable  *cancellable,
                              GError       **error)
{
  if (!_lsock_conn_check_not_busy (INPUT_CONN (stream), LSOCK_DIRECTION_READ, error))
    return -1;
  return _lsock_unix_conn_io (INPUT_CONN (stream), LSOCK_DIRECTION_READ,
                              buffer, count, TRUE, cancellable, error);
}

static void
lsock_unix_input_stream_read_async (GInputStream        *stream,
                                    void                *buffer,
                                    gsize                count,
                                    int                  io_priority,
                                    GCancellable        *cancellable,
                                    GAsyncReadyCallback  callback,
                                    gpointer             user_data)
{
  _lsock_unix_conn_io_async (INPUT_CONN (stream), stream, LSOCK_DIRECTION_READ,
                             buffer, count, io_priority, cancellable, callback, user_data,
                             lsock_unix_input_stream_read_async);
}

static gssize
lsock_unix_input_stream_read_finish (GInputStream  *stream,
                                     GAsyncResult  *result,
                                     GError       **error)
{
  return _lsock_unix_conn_io_finish (stream, result, lsock_unix_input_stream_read_async, error);
}

static gboolean
lsock_unix_input_stream_can_poll (GPollableInputStream *stream)
{
  return TRUE;
}

static gboolean
lsock_unix_input_stream_is_readable (GPollableInputStream *stream)
{
  return _lsock_unix_conn_is_ready (INPUT_CONN (stream), LSOCK_DIRECTION_READ);
}

static GSource *
lsock_unix_input_stream_create_source (GPollableInputStream *stream,
                                       GCancellable         *cancellable)
{
  return _lsock_unix_conn_create_source (INPUT_CONN (stream), G_OBJECT (stream),
                                         LSOCK_DIRECTION_READ, cancellable);
}

static gssize
lsock_unix_input_stream_read_nonblocking (GPollableInputStream  *stream,
                                          void                  *buffer,
                                          gsize                  count,
                                          GError               **error)
{
  return _lsock_unix_conn_io (INPUT_CONN (stream), LSOCK_DIRECTION_READ,
                              buffer, count, FALSE, NULL, error);
}

static void
lsock_unix_input_stream_finalize (GObject *object)
{
  g_clear_pointer (&INPUT_CONN (object), _lsock_conn_disown);

  G_OBJECT_CLASS (lsock_unix_input_stream_parent_class)->finalize (object);
}

static void
lsock_unix_input_stream_class_init (LsockUnixInputStreamClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GInputStreamClass *input_class = G_INPUT_STREAM_CLASS (klass);

  object_class->finalize = lsock_unix_input_stream_finalize;
  input_class->read_fn = lsock_unix_input_stream_read;
  input_class->read_async = lsock_unix_input_stream_read_async;
  input_class->read_finish = lsock_unix_input_stream_read_finish;
  _lsock_input_stream_class_set_close (input_class);
}

static void
lsock_unix_input_stream_pollable_iface_init (GPollableInputStreamInterface *iface)
{
  iface->can_poll = lsock_unix_input_stream_can_poll;
  iface->is_readable = lsock_unix_input_stream_is_readable;
  iface->create_source = lsock_unix_input_stream_create_source;
  iface->read_nonblocking = lsock_unix_input_stream_read_nonblocking;
}

static void
lsock_unix_input_stream_init (LsockUnixInputStream *self)
{
}

GInputStream *
_lsock_unix_input_stream_new (LsockConn *conn)
{
  LsockUnixInputStream *self = g_object_new (LSOCK_TYPE_UNIX_INPUT_STREAM, NULL);

  self->conn = _lsock_conn_own (conn);
  return G_INPUT_STREAM (self);
}

/* ---------------------------------------------------------------------- */

#define LSOCK_TYPE_UNIX_OUTPUT_STREAM (lsock_unix_output_stream_get_type ())
G_DECLARE_FINAL_TYPE (LsockUnixOutputStream, lsock_unix_output_stream,
                      LSOCK, UNIX_OUTPUT_STREAM, GOutputStream)

struct _LsockUnixOutputStream
{
  GOutputStream  parent_instance;
  LsockConn     *conn;
};

static void lsock_unix_output_stream_pollable_iface_init (GPollableOutputStreamInterface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE (LsockUnixOutputStream, lsock_unix_output_stream, G_TYPE_OUTPUT_STREAM,
                               G_IMPLEMENT_INTERFACE (G_TYPE_POLLABLE_OUTPUT_STREAM,
                                                      lsock_unix_output_stream_pollable_iface_init))

#define OUTPUT_CONN(stream) (((LsockUnixOutputStream *) (stream))->conn)

static gssize
lsock_unix_output_stream_write (GOutputStream  *stream,
                                const void     *buffer,
                                gsize           count,
                                GCancellable   *cancellable,
                                GError        **error)
{
  if (!_lsock_conn_check_not_busy (OUTPUT_CONN (stream), LSOCK_DIRECTION_WRITE, error))
    return -1;
  return _lsock_unix_conn_io (OUTPUT_CONN (stream), LSOCK_DIRECTION_WRITE,
                              (void *) buffer, count, TRUE, cancellable, error);
}

static void
lsock_unix_output_stream_write_async (GOutputStream       *stream,
                                      const void          *buffer,
                                      gsize                count,
                                      int                  io_priority,
                                      GCancellable        *cancellable,
                                      GAsyncReadyCallback  callback,
                                      gpointer             user_data)
{
  /* g_output_stream_write_async() wraps this in a GTask made in this main
   * loop iteration (GLib 2.74 and later), which would wait for the next
   * one through an idle source if we reported in this one: report from
   * the reactor's next dispatch, where it returns at once */
  _lsock_unix_conn_io_async_full (OUTPUT_CONN (stream), stream, LSOCK_DIRECTION_WRITE,
                                  LSOCK_IO_NEXT_DISPATCH, (void *) buffer, count, NULL,
                                  io_priority, cancellable, callback, user_data,
                                  lsock_unix_output_stream_write_async);
}

static gssize
lsock_unix_output_stream_write_finish (GOutputStream  *stream,
                                       GAsyncResult   *result,
                                       GError        **error)
{
  return _lsock_unix_conn_io_finish (stream, result, lsock_unix_output_stream_write_async, error);
}

static gboolean
lsock_unix_output_stream_can_poll (GPollableOutputStream *stream)
{
  return TRUE;
}

static gboolean
lsock_unix_output_stream_is_writable (GPollableOutputStream *stream)
{
  return _lsock_unix_conn_is_ready (OUTPUT_CONN (stream), LSOCK_DIRECTION_WRITE);
}

static GSource *
lsock_unix_output_stream_create_source (GPollableOutputStream *stream,
                                        GCancellable          *cancellable)
{
  return _lsock_unix_conn_create_source (OUTPUT_CONN (stream), G_OBJECT (stream),
                                         LSOCK_DIRECTION_WRITE, cancellable);
}

static gssize
lsock_unix_output_stream_write_nonblocking (GPollableOutputStream  *stream,
                                            const void             *buffer,
                                            gsize                   count,
                                            GError                **error)
{
  return _lsock_unix_conn_io (OUTPUT_CONN (stream), LSOCK_DIRECTION_WRITE,
                              (void *) buffer, count, FALSE, NULL, error);
}

/* ---- splice_async() ---------------------------------------------------- */

/* GOutputStream's own splice_async() reads 8 KiB at a time and writes each
 * piece with write_async(), which may write less: two operations per 8 KiB
 * at best. This one reads up to SPLICE_CHUNK and writes all of each piece
 * with one operation, still through the source's read_async() (whatever
 * stream it is) and with one GTask for the whole splice. */
#define SPLICE_CHUNK (64 * 1024)

typedef struct
{
  GInputStream *source;
  GOutputStreamSpliceFlags flags;
  char   *buffer;
  gssize  copied;
  GError *error;
} SpliceData;

static void
splice_data_free (gpointer data)
{
  SpliceData *splice = data;

  g_object_unref (splice->source);
  g_free (splice->buffer);
  g_clear_error (&splice->error);
  g_free (splice);
}

static void
splice_return (GTask *task)
{
  SpliceData *splice = g_task_get_task_data (task);

  if (splice->error != NULL)
    g_task_return_error (task, g_steal_pointer (&splice->error));
  else
    g_task_return_int (task, splice->copied);
  g_object_unref (task);
}

static void
splice_source_closed_cb (GObject      *source,
                         GAsyncResult *result,
                         gpointer      user_data)
{
  GTask *task = user_data;
  SpliceData *splice = g_task_get_task_data (task);

  /* The first error is the one to report */
  g_input_stream_close_finish (G_INPUT_STREAM (source), result,
                               splice->error == NULL ? &splice->error : NULL);
  splice_return (task);
}

/* At the end of the source, or at the first error */
static void
splice_done (GTask *task)
{
  SpliceData *splice = g_task_get_task_data (task);

  if (splice->flags & G_OUTPUT_STREAM_SPLICE_CLOSE_SOURCE)
    g_input_stream_close_async (splice->source, g_task_get_priority (task),
                                g_task_get_cancellable (task), splice_source_closed_cb, task);
  else
    splice_return (task);
}

static void splice_read (GTask *task);

static void
splice_written_cb (GObject      *stream,
                   GAsyncResult *result,
                   gpointer      user_data)
{
  GTask *task = user_data;
  SpliceData *splice = g_task_get_task_data (task);
  gssize n = _lsock_unix_conn_io_finish (stream, result, splice_written_cb, &splice->error);

  if (n < 0)
    {
      splice_done (task);
      return;
    }
  /* As GIO's: a count past G_MAXSSIZE stays there */
  splice->copied = (gsize) splice->copied + n > G_MAXSSIZE ? G_MAXSSIZE : splice->copied + n;
  splice_read (task);
}

static void
splice_read_cb (GObject      *source,
                GAsyncResult *result,
                gpointer      user_data)
{
  GTask *task = user_data;
  SpliceData *splice = g_task_get_task_data (task);
  GOutputStream *stream = g_task_get_source_object (task);
  gssize n = g_input_stream_read_finish (splice->source, result, &splice->error);

  if (n <= 0)
    {
      splice_done (task);
      return;
    }
  /* All of it, however many system calls that takes */
  _lsock_unix_conn_io_async_full (OUTPUT_CONN (stream), stream, LSOCK_DIRECTION_WRITE,
                                  LSOCK_IO_ALL, splice->buffer, n, NULL,
                                  g_task_get_priority (task), g_task_get_cancellable (task),
                                  splice_written_cb, task, splice_written_cb);
}

static void
splice_read (GTask *task)
{
  SpliceData *splice = g_task_get_task_data (task);

  g_input_stream_read_async (splice->source, splice->buffer, SPLICE_CHUNK,
                             g_task_get_priority (task), g_task_get_cancellable (task),
                             splice_read_cb, task);
}

static void
lsock_unix_output_stream_splice_async (GOutputStream            *stream,
                                       GInputStream             *source,
                                       GOutputStreamSpliceFlags  flags,
                                       int                       io_priority,
                                       GCancellable             *cancellable,
                                       GAsyncReadyCallback       callback,
                                       gpointer                  user_data)
{
  GTask *task;
  SpliceData *splice;

  /* Closing the target is GOutputStream's to do (it marks the stream
   * closed, which a subclass cannot), and only its own splice can */
  if (flags & G_OUTPUT_STREAM_SPLICE_CLOSE_TARGET)
    {
      G_OUTPUT_STREAM_CLASS (lsock_unix_output_stream_parent_class)->splice_async (
          stream, source, flags, io_priority, cancellable, callback, user_data);
      return;
    }

  task = g_task_new (stream, cancellable, callback, user_data);
  g_task_set_source_tag (task, lsock_unix_output_stream_splice_async);
  g_task_set_name (task, "[lsock] splice");
  g_task_set_priority (task, io_priority);
  splice = g_new0 (SpliceData, 1);
  splice->source = g_object_ref (source);
  splice->flags = flags;
  splice->buffer = g_malloc (SPLICE_CHUNK);
  g_task_set_task_data (task, splice, splice_data_free);

  /* Before anything is read that could not be written */
  if (!_lsock_conn_check_not_busy (OUTPUT_CONN (stream), LSOCK_DIRECTION_WRITE, &splice->error))
    {
      splice_return (task);
      return;
    }
  splice_read (task);
}

static gssize
lsock_unix_output_stream_splice_finish (GOutputStream  *stream,
                                        GAsyncResult   *result,
                                        GError        **error)
{
  if (!g_async_result_is_tagged (result, lsock_unix_output_stream_splice_async))
    return G_OUTPUT_STREAM_CLASS (lsock_unix_output_stream_parent_class)->splice_finish (
        stream, result, error);

  g_return_val_if_fail (g_task_is_valid (result, stream), -1);

  return g_task_propagate_int (G_TASK (result), error);
}

static void
lsock_unix_output_stream_finalize (GObject *object)
{
  g_clear_pointer (&OUTPUT_CONN (object), _lsock_conn_disown);

  G_OBJECT_CLASS (lsock_unix_output_stream_parent_class)->finalize (object);
}

static void
lsock_unix_output_stream_class_init (LsockUnixOutputStreamClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GOutputStreamClass *output_class = G_OUTPUT_STREAM_CLASS (klass);

  object_class->finalize = lsock_unix_output_stream_finalize;
  output_class->write_fn = lsock_unix_output_stream_write;
  output_class->write_async = lsock_unix_output_stream_write_async;
  output_class->write_finish = lsock_unix_output_stream_write_finish;
  output_class->splice_async = lsock_unix_output_stream_splice_async;
  output_class->splice_finish = lsock_unix_output_stream_splice_finish;
  _lsock_output_stream_class_set_close (output_class);
}

static void
lsock_unix_output_stream_pollable_iface_init (GPollableOutputStreamInterface *iface)
{
  iface->can_poll = lsock_unix_output_stream_can_poll;
  iface->is_writable = lsock_unix_output_stream_is_writable;
  iface->create_source = lsock_unix_output_stream_create_source;
  iface->write_nonblocking = lsock_unix_output_stream_write_nonblocking;
}

static void
lsock_unix_output_stream_init (LsockUnixOutputStream *self)
{
}

GOutputStream *
_lsock_unix_output_stream_new (LsockConn *conn)
{
  LsockUnixOutputStream *self = g_object_new (LSOCK_TYPE_UNIX_OUTPUT_STREAM, NULL);

  self->conn = _lsock_conn_own (conn);
  return G_OUTPUT_STREAM (self);
}
