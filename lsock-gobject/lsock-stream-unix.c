/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include "lsock-stream-private.h"
#include "lsock-name-private.h"
#include "lsock-unix-private.h"
#include "lsock-i18n-private.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* The socket fd is blocking, so a blocking read or write with no timeout and
 * no cancellable is exactly one system call. Every other operation uses
 * MSG_DONTWAIT and waits in poll(), with the cancellable's fd beside it. */

#ifndef MSG_DONTWAIT
# error "MSG_DONTWAIT is required"
#endif

typedef enum {
  DIRECTION_READ,
  DIRECTION_WRITE,
} Direction;

static void
set_io_error (LsockConn  *conn,
              Direction   direction,
              int         errsv,
              GError    **error)
{
  const char *display = _lsock_name_get_display (conn->name);

  if (direction == DIRECTION_READ)
    g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errsv),
                 _("Error reading from “%s”: %s"), display, g_strerror (errsv));
  else
    g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errsv),
                 _("Error writing to “%s”: %s"), display, g_strerror (errsv));
}

static void
set_timed_out_error (LsockConn  *conn,
                     Direction   direction,
                     GError    **error)
{
  const char *display = _lsock_name_get_display (conn->name);

  if (direction == DIRECTION_READ)
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
                 _("Timed out reading from “%s”"), display);
  else
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
                 _("Timed out writing to “%s”"), display);
}

static void
set_conn_closed_error (LsockConn  *conn,
                       GError    **error)
{
  g_set_error (error, G_IO_ERROR, G_IO_ERROR_CLOSED,
               _("The connection to “%s” is closed"),
               _lsock_name_get_display (conn->name));
}

static inline gssize
do_io (int         fd,
       Direction   direction,
       void       *buffer,
       gsize       count,
       int         flags)
{
  if (direction == DIRECTION_READ)
    return recv (fd, buffer, count, flags);
  else
    return send (fd, buffer, count, flags | LSOCK_SEND_FLAGS);
}

/* One read or write: blocking (honouring the timeout and @cancellable) or
 * not (G_IO_ERROR_WOULD_BLOCK). */
static gssize
conn_io (LsockConn     *conn,
         Direction      direction,
         void          *buffer,
         gsize          count,
         gboolean       blocking,
         GCancellable  *cancellable,
         GError       **error)
{
  int fd = g_atomic_int_get (&conn->fd);
  int *timed_out = direction == DIRECTION_READ ? &conn->read_timed_out : &conn->write_timed_out;
  int timeout_ms;
  gssize n;
  int errsv;

  if (fd < 0)
    {
      set_conn_closed_error (conn, error);
      return -1;
    }

  timeout_ms = g_atomic_int_get (&conn->timeout_ms);

  /* The fast path: one blocking system call */
  if (blocking && timeout_ms == 0 && cancellable == NULL)
    {
      do
        n = do_io (fd, direction, buffer, count, 0);
      while (n < 0 && errno == EINTR);
      if (n >= 0)
        return n;
      errsv = errno;
      goto fail;
    }

  if (g_cancellable_set_error_if_cancelled (cancellable, error))
    return -1;

  for (;;)
    {
      n = do_io (fd, direction, buffer, count, MSG_DONTWAIT);
      if (n >= 0)
        {
          g_atomic_int_set (timed_out, 0);
          return n;
        }

      errsv = errno;
      if (errsv == EINTR)
        continue;
      if (errsv != EAGAIN && errsv != EWOULDBLOCK)
        goto fail;

      if (!blocking)
        {
          /* A pollable source whose timeout elapsed */
          if (g_atomic_int_compare_and_exchange (timed_out, 1, 0))
            {
              set_timed_out_error (conn, direction, error);
              return -1;
            }
          g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK,
                               g_strerror (errsv));
          return -1;
        }

      switch (_lsock_unix_wait (fd, direction == DIRECTION_READ ? G_IO_IN : G_IO_OUT,
                                timeout_ms, cancellable, error))
        {
        case -1:
          return -1;
        case 0:
          set_timed_out_error (conn, direction, error);
          return -1;
        default:
          break;
        }
    }

fail:
  /* Closed locally while we waited */
  if (g_atomic_int_get (&conn->fd) < 0)
    {
      set_conn_closed_error (conn, error);
      return -1;
    }
  /* A peer that closed with unread data makes the next read fail with
   * ECONNRESET on Linux: that is the end of the stream here. */
  if (direction == DIRECTION_READ && errsv == ECONNRESET)
    return 0;
  set_io_error (conn, direction, errsv, error);
  return -1;
}

static GSource *
conn_create_source (LsockConn    *conn,
                    GObject      *pollable,
                    Direction     direction,
                    GCancellable *cancellable)
{
  g_autoptr(GSource) child = NULL;
  int fd = g_atomic_int_get (&conn->fd);
  GIOCondition condition = direction == DIRECTION_READ ? G_IO_IN : G_IO_OUT;

  if (fd < 0)
    fd = conn->zombie_fd;
  if (fd < 0)
    {
      /* Closed: a source that is ready at once, so the caller's next
       * operation reports the closed stream */
      child = g_timeout_source_new (0);
    }
  else
    {
      child = _lsock_unix_fd_source_new (fd, condition | G_IO_HUP | G_IO_ERR,
                                         g_atomic_int_get (&conn->timeout_ms));
      _lsock_unix_fd_source_set_timeout_flag (child, direction == DIRECTION_READ ?
                                                     &conn->read_timed_out :
                                                     &conn->write_timed_out);
    }

  return g_pollable_source_new_full (pollable, child, cancellable);
}

static gboolean
conn_is_ready (LsockConn *conn,
               Direction  direction)
{
  int fd = g_atomic_int_get (&conn->fd);

  if (fd < 0)
    return TRUE;
  return _lsock_unix_wait (fd, direction == DIRECTION_READ ? G_IO_IN : G_IO_OUT,
                           -1 /* no wait */, NULL, NULL) != 0;
}

/* Closing the substreams themselves does nothing: the fd belongs to the
 * LsockStream (as GSocketConnection's streams do). Their async close is
 * immediate, where GInputStream's default would use a thread. */
static void
close_async_immediately (gpointer             stream,
                         int                  io_priority,
                         GCancellable        *cancellable,
                         GAsyncReadyCallback  callback,
                         gpointer             user_data,
                         gpointer             source_tag)
{
  g_autoptr(GTask) task = g_task_new (stream, cancellable, callback, user_data);

  g_task_set_source_tag (task, source_tag);
  g_task_set_name (task, "[lsock] close");
  g_task_return_boolean (task, TRUE);
}

/* ---------------------------------------------------------------------- */

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

static gssize
lsock_unix_input_stream_read (GInputStream  *stream,
                              void          *buffer,
                              gsize          count,
                              GCancellable  *cancellable,
                              GError       **error)
{
  LsockUnixInputStream *self = LSOCK_UNIX_INPUT_STREAM (stream);

  return conn_io (self->conn, DIRECTION_READ, buffer, count, TRUE, cancellable, error);
}

static gboolean
lsock_unix_input_stream_close (GInputStream  *stream,
                               GCancellable  *cancellable,
                               GError       **error)
{
  return TRUE;
}

static void
lsock_unix_input_stream_close_async (GInputStream        *stream,
                                     int                  io_priority,
                                     GCancellable        *cancellable,
                                     GAsyncReadyCallback  callback,
                                     gpointer             user_data)
{
  close_async_immediately (stream, io_priority, cancellable, callback, user_data,
                           lsock_unix_input_stream_close_async);
}

static gboolean
lsock_unix_input_stream_close_finish (GInputStream  *stream,
                                      GAsyncResult  *result,
                                      GError       **error)
{
  return g_task_propagate_boolean (G_TASK (result), error);
}

static gboolean
lsock_unix_input_stream_can_poll (GPollableInputStream *stream)
{
  return TRUE;
}

static gboolean
lsock_unix_input_stream_is_readable (GPollableInputStream *stream)
{
  return conn_is_ready (LSOCK_UNIX_INPUT_STREAM (stream)->conn, DIRECTION_READ);
}

static GSource *
lsock_unix_input_stream_create_source (GPollableInputStream *stream,
                                       GCancellable         *cancellable)
{
  return conn_create_source (LSOCK_UNIX_INPUT_STREAM (stream)->conn, G_OBJECT (stream),
                             DIRECTION_READ, cancellable);
}

static gssize
lsock_unix_input_stream_read_nonblocking (GPollableInputStream  *stream,
                                          void                  *buffer,
                                          gsize                  count,
                                          GError               **error)
{
  return conn_io (LSOCK_UNIX_INPUT_STREAM (stream)->conn, DIRECTION_READ,
                  buffer, count, FALSE, NULL, error);
}

static void
lsock_unix_input_stream_finalize (GObject *object)
{
  LsockUnixInputStream *self = LSOCK_UNIX_INPUT_STREAM (object);

  g_clear_pointer (&self->conn, _lsock_conn_unref);

  G_OBJECT_CLASS (lsock_unix_input_stream_parent_class)->finalize (object);
}

static void
lsock_unix_input_stream_class_init (LsockUnixInputStreamClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GInputStreamClass *input_class = G_INPUT_STREAM_CLASS (klass);

  object_class->finalize = lsock_unix_input_stream_finalize;
  input_class->read_fn = lsock_unix_input_stream_read;
  input_class->close_fn = lsock_unix_input_stream_close;
  input_class->close_async = lsock_unix_input_stream_close_async;
  input_class->close_finish = lsock_unix_input_stream_close_finish;
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

static gssize
lsock_unix_output_stream_write (GOutputStream  *stream,
                                const void     *buffer,
                                gsize           count,
                                GCancellable   *cancellable,
                                GError        **error)
{
  LsockUnixOutputStream *self = LSOCK_UNIX_OUTPUT_STREAM (stream);

  return conn_io (self->conn, DIRECTION_WRITE, (void *) buffer, count, TRUE, cancellable, error);
}

static gboolean
lsock_unix_output_stream_close (GOutputStream  *stream,
                                GCancellable   *cancellable,
                                GError        **error)
{
  return TRUE;
}

static void
lsock_unix_output_stream_close_async (GOutputStream       *stream,
                                      int                  io_priority,
                                      GCancellable        *cancellable,
                                      GAsyncReadyCallback  callback,
                                      gpointer             user_data)
{
  close_async_immediately (stream, io_priority, cancellable, callback, user_data,
                           lsock_unix_output_stream_close_async);
}

static gboolean
lsock_unix_output_stream_close_finish (GOutputStream  *stream,
                                       GAsyncResult   *result,
                                       GError        **error)
{
  return g_task_propagate_boolean (G_TASK (result), error);
}

static gboolean
lsock_unix_output_stream_can_poll (GPollableOutputStream *stream)
{
  return TRUE;
}

static gboolean
lsock_unix_output_stream_is_writable (GPollableOutputStream *stream)
{
  return conn_is_ready (LSOCK_UNIX_OUTPUT_STREAM (stream)->conn, DIRECTION_WRITE);
}

static GSource *
lsock_unix_output_stream_create_source (GPollableOutputStream *stream,
                                        GCancellable          *cancellable)
{
  return conn_create_source (LSOCK_UNIX_OUTPUT_STREAM (stream)->conn, G_OBJECT (stream),
                             DIRECTION_WRITE, cancellable);
}

static gssize
lsock_unix_output_stream_write_nonblocking (GPollableOutputStream  *stream,
                                            const void             *buffer,
                                            gsize                   count,
                                            GError                **error)
{
  return conn_io (LSOCK_UNIX_OUTPUT_STREAM (stream)->conn, DIRECTION_WRITE,
                  (void *) buffer, count, FALSE, NULL, error);
}

static void
lsock_unix_output_stream_finalize (GObject *object)
{
  LsockUnixOutputStream *self = LSOCK_UNIX_OUTPUT_STREAM (object);

  g_clear_pointer (&self->conn, _lsock_conn_unref);

  G_OBJECT_CLASS (lsock_unix_output_stream_parent_class)->finalize (object);
}

static void
lsock_unix_output_stream_class_init (LsockUnixOutputStreamClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GOutputStreamClass *output_class = G_OUTPUT_STREAM_CLASS (klass);

  object_class->finalize = lsock_unix_output_stream_finalize;
  output_class->write_fn = lsock_unix_output_stream_write;
  output_class->close_fn = lsock_unix_output_stream_close;
  output_class->close_async = lsock_unix_output_stream_close_async;
  output_class->close_finish = lsock_unix_output_stream_close_finish;
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

/* ---------------------------------------------------------------------- */

void
_lsock_stream_init_streams_impl (LsockStream *self)
{
  LsockUnixInputStream *input = g_object_new (LSOCK_TYPE_UNIX_INPUT_STREAM, NULL);
  LsockUnixOutputStream *output = g_object_new (LSOCK_TYPE_UNIX_OUTPUT_STREAM, NULL);

  input->conn = _lsock_conn_ref (self->conn);
  output->conn = _lsock_conn_ref (self->conn);
  self->input = G_INPUT_STREAM (input);
  self->output = G_OUTPUT_STREAM (output);
}

void
_lsock_conn_close_impl (LsockConn *conn,
                        gboolean   pending_io)
{
  int fd = g_atomic_int_exchange (&conn->fd, -1);

  if (fd >= 0 && pending_io)
    {
      /* Wake the operation in flight; the fd number stays ours until it
       * has returned, so it cannot be reused under it */
      shutdown (fd, SHUT_RDWR);
      conn->zombie_fd = fd;
      return;
    }

  if (fd >= 0)
    close (fd);

  if (!pending_io && conn->zombie_fd >= 0 && g_atomic_ref_count_compare (&conn->ref_count, 0))
    {
      close (conn->zombie_fd);
      conn->zombie_fd = -1;
    }
}

/* ---------------------------------------------------------------------- */

static void
set_connect_error (LsockName  *name,
                   int         errsv,
                   GError    **error)
{
  const char *display = _lsock_name_get_display (name);

  switch (errsv)
    {
    case ENOENT:
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND,
                   _("Could not connect to “%s”: nobody is listening there"), display);
      break;

    case ECONNREFUSED:
      /* An abstract name refuses when nobody has it; a socket file refuses
       * when its listener has gone and left it behind */
      if (lsock_name_get_kind (name) == LSOCK_NAME_KIND_NAMESPACED)
        g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND,
                     _("Could not connect to “%s”: nobody is listening there"), display);
      else
        g_set_error (error, G_IO_ERROR, G_IO_ERROR_CONNECTION_REFUSED,
                     _("Could not connect to “%s”: the socket file is there but nobody is listening on it"),
                     display);
      break;

    case EACCES:
    case EPERM:
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_PERMISSION_DENIED,
                   _("Could not connect to “%s”: %s"), display, g_strerror (errsv));
      break;

    default:
      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errsv),
                   _("Could not connect to “%s”: %s"), display, g_strerror (errsv));
      break;
    }
}

typedef enum {
  CONNECT_DONE,
  CONNECT_IN_PROGRESS,  /* EINPROGRESS: wait for POLLOUT, then SO_ERROR */
  CONNECT_BACKLOG_FULL, /* Linux EAGAIN: try again later */
  CONNECT_FAILED,
} ConnectState;

static ConnectState
try_connect (int                       fd,
             const struct sockaddr_un *addr,
             socklen_t                 addr_len,
             int                      *out_errno)
{
  for (;;)
    {
      if (connect (fd, (const struct sockaddr *) addr, addr_len) == 0)
        return CONNECT_DONE;

      *out_errno = errno;
      switch (*out_errno)
        {
        case EINTR:
          continue;
        case EISCONN:
          return CONNECT_DONE;
        case EINPROGRESS:
        case EALREADY:
          return CONNECT_IN_PROGRESS;
        case EAGAIN:
          return CONNECT_BACKLOG_FULL;
        default:
          return CONNECT_FAILED;
        }
    }
}

static int
get_so_error (int fd)
{
  int value = 0;
  socklen_t len = sizeof value;

  if (getsockopt (fd, SOL_SOCKET, SO_ERROR, &value, &len) != 0)
    return errno;
  return value;
}

/* A full backlog on Linux gives EAGAIN and nothing to poll for: retry after
 * a pause that grows from 1 ms to 64 ms */
#define BACKLOG_RETRY_MIN_MS 1
#define BACKLOG_RETRY_MAX_MS 64

gboolean
_lsock_stream_connect_impl (LsockName     *name,
                            GCancellable  *cancellable,
                            int           *out_fd,
                            GError       **error)
{
  struct sockaddr_un addr;
  socklen_t addr_len = _lsock_name_to_sockaddr (name, &addr);
  int retry_ms = BACKLOG_RETRY_MIN_MS;
  int fd;
  int errsv = 0;

  if (g_cancellable_set_error_if_cancelled (cancellable, error))
    return FALSE;

  fd = _lsock_unix_socket (TRUE, error);
  if (fd < 0)
    return FALSE;

  for (;;)
    {
      switch (try_connect (fd, &addr, addr_len, &errsv))
        {
        case CONNECT_DONE:
          goto connected;

        case CONNECT_IN_PROGRESS:
          if (_lsock_unix_wait (fd, G_IO_OUT, 0, cancellable, error) < 0)
            goto fail;
          errsv = get_so_error (fd);
          if (errsv == 0)
            goto connected;
          set_connect_error (name, errsv, error);
          goto fail;

        case CONNECT_BACKLOG_FULL:
          /* Nothing becomes ready on fd: wait on the cancellable alone */
          if (cancellable != NULL)
            {
              GPollFD pollfd;

              if (g_cancellable_make_pollfd (cancellable, &pollfd))
                {
                  g_poll (&pollfd, 1, retry_ms);
                  g_cancellable_release_fd (cancellable);
                }
              if (g_cancellable_set_error_if_cancelled (cancellable, error))
                goto fail;
            }
          else
            g_usleep (retry_ms * 1000);
          retry_ms = MIN (retry_ms * 2, BACKLOG_RETRY_MAX_MS);
          break;

        case CONNECT_FAILED:
        default:
          set_connect_error (name, errsv, error);
          goto fail;
        }
    }

connected:
  _lsock_unix_set_nonblocking (fd, FALSE);
  *out_fd = fd;
  return TRUE;

fail:
  close (fd);
  return FALSE;
}

typedef struct
{
  LsockName          *name;
  struct sockaddr_un  addr;
  socklen_t           addr_len;
  int                 fd;
  int                 retry_ms;
  GSource            *source;
} ConnectData;

static void
connect_data_free (ConnectData *data)
{
  if (data->source != NULL)
    {
      g_source_destroy (data->source);
      g_source_unref (data->source);
    }
  if (data->fd >= 0)
    close (data->fd);
  g_clear_object (&data->name);
  g_free (data);
}

static void connect_async_step (GTask *task);

static gboolean
connect_async_ready_cb (int          fd,
                        GIOCondition condition,
                        gpointer     user_data)
{
  GTask *task = user_data;
  ConnectData *data = g_task_get_task_data (task);
  int errsv;

  g_clear_pointer (&data->source, g_source_unref);

  if (g_task_return_error_if_cancelled (task))
    goto out;

  errsv = get_so_error (data->fd);
  if (errsv != 0)
    {
      GError *error = NULL;

      set_connect_error (data->name, errsv, &error);
      g_task_return_error (task, error);
      goto out;
    }

  _lsock_unix_set_nonblocking (data->fd, FALSE);
  g_task_return_pointer (task, _lsock_stream_new_for_fd (g_steal_fd (&data->fd), data->name),
                         g_object_unref);

out:
  g_object_unref (task);
  return G_SOURCE_REMOVE;
}

static gboolean
connect_async_retry_cb (gpointer user_data)
{
  GTask *task = user_data;
  ConnectData *data = g_task_get_task_data (task);

  g_clear_pointer (&data->source, g_source_unref);
  connect_async_step (task);
  return G_SOURCE_REMOVE;
}

static void
watch (GTask   *task,
       GSource *source)
{
  ConnectData *data = g_task_get_task_data (task);
  GSource *cancel_source = g_cancellable_source_new (g_task_get_cancellable (task));

  /* Dispatch early when cancelled; the callbacks check */
  g_source_set_dummy_callback (cancel_source);
  g_source_add_child_source (source, cancel_source);
  g_source_unref (cancel_source);

  g_source_set_static_name (source, "[lsock] connect");
  g_source_set_priority (source, g_task_get_priority (task));
  data->source = source;
  g_source_attach (source, g_task_get_context (task));
}

/* Consumes a reference to @task */
static void
connect_async_step (GTask *task)
{
  ConnectData *data = g_task_get_task_data (task);
  GSource *source;
  int errsv = 0;

  if (g_task_return_error_if_cancelled (task))
    {
      g_object_unref (task);
      return;
    }

  switch (try_connect (data->fd, &data->addr, data->addr_len, &errsv))
    {
    case CONNECT_DONE:
      _lsock_unix_set_nonblocking (data->fd, FALSE);
      g_task_return_pointer (task, _lsock_stream_new_for_fd (g_steal_fd (&data->fd), data->name),
                             g_object_unref);
      g_object_unref (task);
      return;

    case CONNECT_IN_PROGRESS:
      source = _lsock_unix_fd_source_new (data->fd, G_IO_OUT, 0);
      g_source_set_callback (source, (GSourceFunc) (void (*)(void)) connect_async_ready_cb,
                             task, NULL);
      watch (task, source);
      return;

    case CONNECT_BACKLOG_FULL:
      source = g_timeout_source_new (data->retry_ms);
      data->retry_ms = MIN (data->retry_ms * 2, BACKLOG_RETRY_MAX_MS);
      g_source_set_callback (source, connect_async_retry_cb, task, NULL);
      watch (task, source);
      return;

    case CONNECT_FAILED:
    default:
      {
        GError *error = NULL;

        set_connect_error (data->name, errsv, &error);
        g_task_return_error (task, error);
        g_object_unref (task);
      }
      return;
    }
}

void
_lsock_stream_connect_async_impl (GTask     *task,
                                  LsockName *name)
{
  ConnectData *data = g_new0 (ConnectData, 1);
  GError *error = NULL;

  data->name = g_object_ref (name);
  data->addr_len = _lsock_name_to_sockaddr (name, &data->addr);
  data->retry_ms = BACKLOG_RETRY_MIN_MS;
  data->fd = _lsock_unix_socket (TRUE, &error);
  g_task_set_task_data (task, data, (GDestroyNotify) connect_data_free);

  if (data->fd < 0)
    {
      g_task_return_error (task, error);
      g_object_unref (task);
      return;
    }

  connect_async_step (task);
}

GCredentials *
_lsock_stream_get_peer_credentials_impl (LsockStream  *self,
                                         GError      **error)
{
  GCredentials *credentials;
  int fd = g_atomic_int_get (&self->conn->fd);

  if (fd < 0)
    {
      _lsock_stream_set_closed_error (self, error);
      return NULL;
    }

  credentials = _lsock_unix_get_peer_credentials (fd, error);
  if (credentials == NULL)
    g_prefix_error (error, "“%s”: ", _lsock_name_get_display (self->name));
  return credentials;
}

gboolean
_lsock_stream_shutdown_impl (LsockStream  *self,
                             gboolean      shutdown_read,
                             gboolean      shutdown_write,
                             GError      **error)
{
  int fd = g_atomic_int_get (&self->conn->fd);
  int how;

  if (fd < 0)
    {
      _lsock_stream_set_closed_error (self, error);
      return FALSE;
    }

  if (shutdown_read && shutdown_write)
    how = SHUT_RDWR;
  else if (shutdown_read)
    how = SHUT_RD;
  else
    how = SHUT_WR;

  if (shutdown (fd, how) != 0)
    {
      int errsv = errno;

      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errsv),
                   _("Could not shut down the connection to “%s”: %s"),
                   _lsock_name_get_display (self->name), g_strerror (errsv));
      return FALSE;
    }

  return TRUE;
}
