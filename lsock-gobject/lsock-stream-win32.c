/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <string.h>

#include "lsock-stream-private.h"
#include "lsock-listener.h"
#include "lsock-name-private.h"
#include "lsock-i18n-private.h"
#include "lsock-win32-private.h"

#include <aclapi.h>
#include <sddl.h>

/* Windows backend of LsockStream: a named pipe handle opened overlapped.
 *
 * Each direction has its own OVERLAPPED, manual-reset event and lock, so a
 * read blocked in one thread never holds up a write in another (a handle
 * opened without FILE_FLAG_OVERLAPPED would serialise them).
 *
 * The input and output streams are pollable, and GIO's default async
 * reads and writes use that instead of a thread per operation:
 *
 * - Reads go through an internal buffer: an overlapped ReadFile() into it is
 *   kept outstanding, and its event is what the pollable source and blocking
 *   reads wait on. A blocking read that is cancelled or times out leaves
 *   that read outstanding, so no byte the peer sent is ever lost; the next
 *   read returns it.
 * - A non-blocking write copies what fits into an internal buffer and
 *   starts an overlapped WriteFile() from it; the stream is writable again
 *   when that completes. A blocking write waits for its own WriteFile(); if
 *   it is cancelled or times out, CancelIoEx() stops it and the bytes that
 *   did go through are reported.
 * - Closing never drops bytes a write accepted, and never blocks: a
 *   non-blocking write still in flight keeps the handle open until it
 *   completes ("lingers"), then its completion callback closes the handle.
 *   The handle is closed without DisconnectNamedPipe() (which would discard
 *   what the peer has not read yet) and without FlushFileBuffers() (which
 *   would block until the peer reads). Bytes in flight are lost only if
 *   the process exits before the peer reads them.
 *
 * Windows cancels the I/O a thread started when that thread exits, unless
 * the handle is bound to a completion port and the OVERLAPPED has no
 * event. A non-blocking write returns before its WriteFile() is done, and
 * the thread that made it may be gone by then (a worker that wrote and
 * returned, a thread that closed the stream and ended): so the pipe handle
 * is bound to a thread-pool I/O object, writes carry no event, and their
 * completion callback sets the write event instead. Reads need no such
 * care: a cancelled ReadFile() took nothing from the pipe, and whoever
 * waits on the read event sees it end and starts another. Their event has
 * its low-order bit set, which keeps them off the completion port.
 *
 * The pipe reports the end of the stream as ERROR_BROKEN_PIPE (or
 * ERROR_PIPE_NOT_CONNECTED): reads return 0 then. Named pipes have no
 * half-close, see lsock_stream_shutdown(). */

/* write.completion (atomic), while write.pending. The completion callback
 * and close() race to move it on from WRITE_IN_FLIGHT; whoever does
 * decides who closes a lingering handle. */
enum
{
  WRITE_IN_FLIGHT,
  WRITE_COMPLETED,  /* the callback took it: write.result_* are set */
  WRITE_DONE,       /* and it has set the write event */
  WRITE_LINGERING,  /* closed while in flight: the callback closes the handle */
};

typedef struct
{
  GMutex      lock;
  HANDLE      event;       /* manual-reset; read: the OVERLAPPED's hEvent */
  OVERLAPPED  overlapped;
  gboolean    pending;     /* an overlapped operation is in flight */
  int         completion;  /* write: see WRITE_IN_FLIGHT */
  DWORD       result_error; /* write: the result of the one in flight, */
  DWORD       result_bytes; /* once completed */
  gboolean    from_caller; /* write: from a blocking caller's buffer */
  int         timed_out;   /* atomic: set by a pollable source's timeout */
  guint8     *buffer;      /* LSOCK_WIN32_BUFFER_SIZE bytes */
  gsize       start;       /* read: unread bytes are buffer[start, end) */
  gsize       end;         /* write: bytes in flight */
  gboolean    eof;         /* read: the peer closed, or shutdown_read */
  DWORD       error;       /* a failure to report next, 0: none */
} Direction;

typedef struct
{
  HANDLE      pipe;        /* INVALID_HANDLE_VALUE once closed */
  gboolean    closed;      /* under both locks */
  HANDLE      closed_event;
  Direction   read;
  Direction   write;
  /* Writes complete through it, see above; NULL if it could not be made
   * (io_error says why, and writes fail with it) */
  PTP_IO      io;
  DWORD       io_error;
  gboolean    skip_on_success; /* FILE_SKIP_COMPLETION_PORT_ON_SUCCESS */
  /* The conn and each write in flight (its completion callback) own the
   * backend; the last one frees it */
  int         owners;
  HANDLE      linger_pipe;     /* for the callback of a lingering write */
} Backend;

static void backend_release (Backend *backend);

static void
direction_init (Direction *dir,
                gboolean   signalled)
{
  g_mutex_init (&dir->lock);
  /* The write event is set while no write is in flight: writable */
  dir->event = CreateEventW (NULL, TRUE, signalled, NULL);
}

/* The read OVERLAPPED's event: the low-order bit set means no completion
 * packet, see above */
static HANDLE
read_overlapped_event (Direction *dir)
{
  return (HANDLE) ((ULONG_PTR) dir->event | 1);
}

static void
direction_clear (Direction *dir)
{
  g_mutex_clear (&dir->lock);
  if (dir->event != NULL)
    CloseHandle (dir->event);
  g_free (dir->buffer);
}

static const char *
conn_display (LsockConn *conn)
{
  return _lsock_name_get_display (conn->name);
}

static void
set_closed_error (LsockConn  *conn,
                  GError    **error)
{
  g_set_error (error, G_IO_ERROR, G_IO_ERROR_CLOSED,
               _("The connection to “%s” is closed"), conn_display (conn));
}

static void
set_timed_out_error (LsockConn  *conn,
                     gboolean    reading,
                     GError    **error)
{
  if (reading)
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
                 _("Timed out reading from “%s”"), conn_display (conn));
  else
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
                 _("Timed out writing to “%s”"), conn_display (conn));
}

static gboolean
is_end_of_stream (DWORD errsv)
{
  return errsv == ERROR_BROKEN_PIPE || errsv == ERROR_PIPE_NOT_CONNECTED ||
         errsv == ERROR_HANDLE_EOF || errsv == ERROR_NO_DATA;
}

/* ---------------------------------------------------------------------- */
/* Reads (with backend->read.lock held) */

/* Collects a finished ReadFile(), without waiting */
static void
read_collect (Backend *backend)
{
  Direction *dir = &backend->read;
  DWORD n, errsv;

  if (!dir->pending)
    return;

  if (GetOverlappedResult (backend->pipe, &dir->overlapped, &n, FALSE))
    {
      dir->pending = FALSE;
      if (!dir->eof)  /* else shut down for reading: dropped */
        {
          dir->start = 0;
          dir->end = n;  /* 0 (a zero-length write): nothing, read again */
        }
      return;
    }

  errsv = GetLastError ();
  if (errsv == ERROR_IO_INCOMPLETE)
    return;

  dir->pending = FALSE;
  if (is_end_of_stream (errsv))
    dir->eof = TRUE;
  else if (errsv != ERROR_OPERATION_ABORTED)
    dir->error = errsv;
  SetEvent (dir->event);
}

static gboolean
read_ready (Direction *dir)
{
  return dir->start < dir->end || dir->eof || dir->error != 0;
}

/* Starts a ReadFile() into the buffer if none is outstanding */
static void
read_start (Backend *backend)
{
  Direction *dir = &backend->read;
  DWORD errsv;

  if (dir->pending || read_ready (dir))
    return;

  if (dir->buffer == NULL)
    dir->buffer = g_malloc (LSOCK_WIN32_BUFFER_SIZE);
  dir->start = dir->end = 0;
  ResetEvent (dir->event);
  memset (&dir->overlapped, 0, sizeof dir->overlapped);
  dir->overlapped.hEvent = read_overlapped_event (dir);

  /* Success or ERROR_IO_PENDING: either way the result is collected from
   * the OVERLAPPED, and the event is set when it is there */
  if (ReadFile (backend->pipe, dir->buffer, LSOCK_WIN32_BUFFER_SIZE, NULL, &dir->overlapped) ||
      (errsv = GetLastError ()) == ERROR_IO_PENDING)
    {
      dir->pending = TRUE;
      return;
    }

  if (is_end_of_stream (errsv))
    dir->eof = TRUE;
  else
    dir->error = errsv;
  SetEvent (dir->event);
}

/* Returns buffered bytes, EOF or the error; -2 when nothing is there yet */
static gssize
read_take (LsockConn  *conn,
           Backend    *backend,
           void       *buffer,
           gsize       count,
           GError    **error)
{
  Direction *dir = &backend->read;

  if (dir->start < dir->end)
    {
      gsize n = MIN (count, dir->end - dir->start);

      memcpy (buffer, dir->buffer + dir->start, n);
      dir->start += n;
      return (gssize) n;
    }
  if (dir->eof)
    return 0;
  if (dir->error != 0)
    {
      _lsock_win32_set_error (error, dir->error, LSOCK_WIN32_OP_READ, conn_display (conn));
      return -1;
    }
  return -2;
}

static gssize
conn_read (LsockConn     *conn,
           void          *buffer,
           gsize          count,
           gboolean       blocking,
           GCancellable  *cancellable,
           GError       **error)
{
  Backend *backend = conn->backend;
  Direction *dir = &backend->read;
  int timeout_ms = g_atomic_int_get (&conn->timeout_ms);
  gint64 deadline = timeout_ms > 0 ? g_get_monotonic_time () + (gint64) timeout_ms * 1000 : 0;

  if (g_cancellable_set_error_if_cancelled (cancellable, error))
    return -1;

  for (;;)
    {
      HANDLE handles[2];
      gssize n;
      int wait_ms = 0;

      g_mutex_lock (&dir->lock);
      if (backend->closed)
        {
          g_mutex_unlock (&dir->lock);
          set_closed_error (conn, error);
          return -1;
        }
      if (count == 0)
        {
          g_mutex_unlock (&dir->lock);
          return 0;
        }
      read_collect (backend);
      read_start (backend);
      read_collect (backend);
      n = read_take (conn, backend, buffer, count, error);
      g_mutex_unlock (&dir->lock);

      if (n != -2)
        {
          if (n >= 0)
            g_atomic_int_set (&dir->timed_out, 0);
          return n;
        }

      if (!blocking)
        {
          if (g_atomic_int_compare_and_exchange (&dir->timed_out, 1, 0))
            {
              set_timed_out_error (conn, TRUE, error);
              return -1;
            }
          g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK,
                               _("No data is available yet"));
          return -1;
        }

      if (deadline > 0)
        {
          gint64 left = deadline - g_get_monotonic_time ();

          if (left <= 0)
            {
              set_timed_out_error (conn, TRUE, error);
              return -1;
            }
          wait_ms = (int) MAX (1, left / 1000);
        }

      /* The outstanding read stays outstanding if we stop waiting */
      handles[0] = dir->event;
      handles[1] = backend->closed_event;
      switch (_lsock_win32_wait (handles, 2, wait_ms, cancellable, error))
        {
        case -1:
          return -1;
        case -2:
          set_timed_out_error (conn, TRUE, error);
          return -1;
        default:
          break;
        }
    }
}

static gboolean
conn_is_readable (LsockConn *conn)
{
  Backend *backend = conn->backend;
  gboolean ready;

  g_mutex_lock (&backend->read.lock);
  if (backend->closed)
    ready = TRUE;
  else
    {
      read_collect (backend);
      read_start (backend);
      read_collect (backend);
      ready = read_ready (&backend->read);
    }
  g_mutex_unlock (&backend->read.lock);

  return ready;
}

/* ---------------------------------------------------------------------- */
/* Writes (with backend->write.lock held) */

/* In a thread-pool thread: a WriteFile() is done. Its result is taken
 * from here, not from the OVERLAPPED: when the thread that started the
 * write has exited, Wine reports the completion but may never fill in the
 * OVERLAPPED (the bytes did go through). */
static void CALLBACK
write_done_cb (PTP_CALLBACK_INSTANCE  instance,
               void                  *user_data,
               void                  *overlapped,
               ULONG                  result,
               ULONG_PTR              n_bytes,
               PTP_IO                 io)
{
  Backend *backend = user_data;

  backend->write.result_error = result;
  backend->write.result_bytes = (DWORD) n_bytes;
  if (g_atomic_int_compare_and_exchange (&backend->write.completion,
                                         WRITE_IN_FLIGHT, WRITE_COMPLETED))
    {
      SetEvent (backend->write.event);
      /* Only now may the next write begin (and reset the event) */
      g_atomic_int_set (&backend->write.completion, WRITE_DONE);
    }
  else
    {
      CloseHandle (backend->linger_pipe);  /* WRITE_LINGERING */
    }
  backend_release (backend);
}

/* Whether the write in flight is done. Its event is set by then; it is
 * reset only when the next write begins. */
static gboolean
write_done (Direction *dir)
{
  return g_atomic_int_get (&dir->completion) == WRITE_DONE;
}

/* Waits for the write in flight to be done (the callback takes no lock) */
static void
write_wait_done (Direction *dir)
{
  while (!write_done (dir))
    WaitForSingleObject (dir->event, INFINITE);
}

/* Takes the result of the write in flight, which is done: returns the
 * bytes it wrote, and leaves a failure other than a cancel in dir->error */
static gssize
write_take_result (Backend *backend)
{
  Direction *dir = &backend->write;

  dir->pending = FALSE;
  if (dir->result_error != NO_ERROR && dir->result_error != ERROR_OPERATION_ABORTED)
    dir->error = dir->result_error;
  SetEvent (dir->event);  /* writable */
  return dir->result_bytes;
}

/* Collects a finished non-blocking WriteFile(), without waiting. Returns
 * the bytes it wrote, or -1 while a write is in flight (a blocking
 * caller's, whatever its state: that caller collects it). */
static gssize
write_collect (Backend *backend)
{
  Direction *dir = &backend->write;

  if (!dir->pending)
    return 0;
  if (dir->from_caller || !write_done (dir))
    return -1;
  return write_take_result (backend);
}

static gboolean
write_begin (Backend     *backend,
             const void  *buffer,
             gsize        count,
             DWORD       *out_error)
{
  Direction *dir = &backend->write;
  DWORD errsv;

  if (backend->io == NULL)
    {
      *out_error = backend->io_error;
      return FALSE;
    }

  ResetEvent (dir->event);
  memset (&dir->overlapped, 0, sizeof dir->overlapped);  /* no event, see above */
  g_atomic_int_set (&dir->completion, WRITE_IN_FLIGHT);
  g_atomic_int_inc (&backend->owners);  /* the completion callback's */
  StartThreadpoolIo (backend->io);

  if (WriteFile (backend->pipe, buffer, (DWORD) count, NULL, &dir->overlapped))
    {
      dir->pending = TRUE;
      if (backend->skip_on_success)
        {
          /* Done, and no completion packet comes for it */
          CancelThreadpoolIo (backend->io);
          g_atomic_int_add (&backend->owners, -1);  /* the conn still owns it */
          dir->result_error = NO_ERROR;
          dir->result_bytes = (DWORD) dir->overlapped.InternalHigh;
          SetEvent (dir->event);
          g_atomic_int_set (&dir->completion, WRITE_DONE);
        }
      return TRUE;
    }

  errsv = GetLastError ();
  if (errsv == ERROR_IO_PENDING)
    {
      dir->pending = TRUE;
      return TRUE;
    }

  CancelThreadpoolIo (backend->io);
  g_atomic_int_add (&backend->owners, -1);
  *out_error = errsv;
  SetEvent (dir->event);
  return FALSE;
}

static gssize
write_failed (LsockConn  *conn,
              DWORD       errsv,
              GError    **error)
{
  _lsock_win32_set_error (error, errsv, LSOCK_WIN32_OP_WRITE, conn_display (conn));
  return -1;
}

/* A non-blocking write: what fits is copied and its WriteFile() started */
static gssize
conn_write_nonblocking (LsockConn    *conn,
                        const void   *buffer,
                        gsize         count,
                        GError      **error)
{
  Backend *backend = conn->backend;
  Direction *dir = &backend->write;
  gsize n;
  DWORD errsv = 0;

  g_mutex_lock (&dir->lock);
  if (backend->closed)
    {
      g_mutex_unlock (&dir->lock);
      set_closed_error (conn, error);
      return -1;
    }

  if (write_collect (backend) < 0)
    {
      g_mutex_unlock (&dir->lock);
      if (g_atomic_int_compare_and_exchange (&dir->timed_out, 1, 0))
        {
          set_timed_out_error (conn, FALSE, error);
          return -1;
        }
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK,
                           _("The previous write is still in progress"));
      return -1;
    }

  if (dir->error != 0)
    {
      errsv = dir->error;
      dir->error = 0;
      g_mutex_unlock (&dir->lock);
      return write_failed (conn, errsv, error);
    }

  if (count == 0)
    {
      g_mutex_unlock (&dir->lock);
      return 0;
    }

  if (dir->buffer == NULL)
    dir->buffer = g_malloc (LSOCK_WIN32_BUFFER_SIZE);
  n = MIN (count, LSOCK_WIN32_BUFFER_SIZE);
  memcpy (dir->buffer, buffer, n);
  dir->end = n;
  if (!write_begin (backend, dir->buffer, n, &errsv))
    {
      g_mutex_unlock (&dir->lock);
      return write_failed (conn, errsv, error);
    }
  g_mutex_unlock (&dir->lock);

  g_atomic_int_set (&dir->timed_out, 0);
  return (gssize) n;
}

/* Waits for the write in flight; FALSE with @error on timeout, cancel or
 * close */
static gboolean
write_wait_idle (LsockConn     *conn,
                 gint64         deadline,
                 GCancellable  *cancellable,
                 GError       **error)
{
  Backend *backend = conn->backend;
  Direction *dir = &backend->write;

  for (;;)
    {
      HANDLE handles[2];
      int wait_ms = 0;
      gboolean busy;

      g_mutex_lock (&dir->lock);
      if (backend->closed)
        {
          g_mutex_unlock (&dir->lock);
          set_closed_error (conn, error);
          return FALSE;
        }
      busy = write_collect (backend) < 0;
      g_mutex_unlock (&dir->lock);
      if (!busy)
        return TRUE;

      if (deadline > 0)
        {
          gint64 left = deadline - g_get_monotonic_time ();

          if (left <= 0)
            {
              set_timed_out_error (conn, FALSE, error);
              return FALSE;
            }
          wait_ms = (int) MAX (1, left / 1000);
        }

      handles[0] = dir->event;
      handles[1] = backend->closed_event;
      switch (_lsock_win32_wait (handles, 2, wait_ms, cancellable, error))
        {
        case -1:
          return FALSE;
        case -2:
          set_timed_out_error (conn, FALSE, error);
          return FALSE;
        default:
          break;
        }
    }
}

static gssize
conn_write (LsockConn     *conn,
            const void    *buffer,
            gsize          count,
            GCancellable  *cancellable,
            GError       **error)
{
  Backend *backend = conn->backend;
  Direction *dir = &backend->write;
  int timeout_ms = g_atomic_int_get (&conn->timeout_ms);
  gint64 deadline = timeout_ms > 0 ? g_get_monotonic_time () + (gint64) timeout_ms * 1000 : 0;
  HANDLE handles[2];
  DWORD errsv = 0;
  gssize n;
  int res;

  if (g_cancellable_set_error_if_cancelled (cancellable, error))
    return -1;

  /* A non-blocking write may still be in flight */
  if (!write_wait_idle (conn, deadline, cancellable, error))
    return -1;

  g_mutex_lock (&dir->lock);
  if (backend->closed)
    {
      g_mutex_unlock (&dir->lock);
      set_closed_error (conn, error);
      return -1;
    }
  if (dir->error != 0)
    {
      errsv = dir->error;
      dir->error = 0;
      g_mutex_unlock (&dir->lock);
      return write_failed (conn, errsv, error);
    }
  if (count == 0)
    {
      g_mutex_unlock (&dir->lock);
      return 0;
    }
  /* Straight from the caller's buffer: we wait for it below, and cancel it
   * (waiting for that) before returning early; so does close() */
  if (!write_begin (backend, buffer, MIN (count, G_MAXINT32), &errsv))
    {
      g_mutex_unlock (&dir->lock);
      return write_failed (conn, errsv, error);
    }
  dir->from_caller = TRUE;
  g_mutex_unlock (&dir->lock);

  handles[0] = dir->event;
  handles[1] = backend->closed_event;
  for (;;)
    {
      int wait_ms = 0;

      if (deadline > 0)
        wait_ms = (int) MAX (1, (deadline - g_get_monotonic_time ()) / 1000);
      res = _lsock_win32_wait (handles, 2, wait_ms, cancellable, NULL);
      /* Woken between the callback's SetEvent() and its marking the
       * write done: wait on */
      if (res != 0 || write_done (dir))
        break;
    }

  g_mutex_lock (&dir->lock);
  dir->from_caller = FALSE;
  if (backend->closed)
    {
      /* close() cancelled and collected it */
      g_mutex_unlock (&dir->lock);
      set_closed_error (conn, error);
      return -1;
    }
  if (res != 0)
    {
      /* Cancelled or timed out: stop it; what went through went through */
      CancelIoEx (backend->pipe, &dir->overlapped);
      write_wait_done (dir);
      n = write_take_result (backend);
      g_mutex_unlock (&dir->lock);
      if (n > 0)
        return n;
      if (res == -2)
        set_timed_out_error (conn, FALSE, error);
      else if (!g_cancellable_set_error_if_cancelled (cancellable, error))
        g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_CANCELLED,
                             _("Operation was cancelled"));
      return -1;
    }

  n = write_take_result (backend);
  errsv = dir->error;
  dir->error = 0;
  g_mutex_unlock (&dir->lock);

  if (n > 0)
    return n;
  if (errsv != 0)
    return write_failed (conn, errsv, error);
  return n;
}

static gboolean
conn_is_writable (LsockConn *conn)
{
  Backend *backend = conn->backend;
  gboolean ready;

  g_mutex_lock (&backend->write.lock);
  ready = backend->closed || write_collect (backend) >= 0;
  g_mutex_unlock (&backend->write.lock);

  return ready;
}

static GSource *
conn_create_source (LsockConn    *conn,
                    GObject      *pollable,
                    gboolean      reading,
                    GCancellable *cancellable)
{
  Backend *backend = conn->backend;
  Direction *dir = reading ? &backend->read : &backend->write;
  g_autoptr(GSource) child = NULL;
  HANDLE handles[2];

  /* Make sure a read is outstanding, so its event means something */
  if (reading)
    conn_is_readable (conn);

  handles[0] = dir->event;
  handles[1] = backend->closed_event;
  child = _lsock_win32_handle_source_new (handles, 2, g_atomic_int_get (&conn->timeout_ms),
                                          &dir->timed_out,
                                          _lsock_conn_ref (conn),
                                          (GDestroyNotify) _lsock_conn_unref);
  return g_pollable_source_new_full (pollable, child, cancellable);
}

/* ---------------------------------------------------------------------- */

#define LSOCK_TYPE_WIN32_INPUT_STREAM (lsock_win32_input_stream_get_type ())
G_DECLARE_FINAL_TYPE (LsockWin32InputStream, lsock_win32_input_stream,
                      LSOCK, WIN32_INPUT_STREAM, GInputStream)

struct _LsockWin32InputStream
{
  GInputStream  parent_instance;
  LsockConn    *conn;
};

static void lsock_win32_input_stream_pollable_iface_init (GPollableInputStreamInterface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE (LsockWin32InputStream, lsock_win32_input_stream, G_TYPE_INPUT_STREAM,
                               G_IMPLEMENT_INTERFACE (G_TYPE_POLLABLE_INPUT_STREAM,
                                                      lsock_win32_input_stream_pollable_iface_init))

static gssize
lsock_win32_input_stream_read (GInputStream  *stream,
                               void          *buffer,
                               gsize          count,
                               GCancellable  *cancellable,
                               GError       **error)
{
  return conn_read (LSOCK_WIN32_INPUT_STREAM (stream)->conn, buffer, count, TRUE,
                    cancellable, error);
}

static gboolean
lsock_win32_input_stream_can_poll (GPollableInputStream *stream)
{
  return TRUE;
}

static gboolean
lsock_win32_input_stream_is_readable (GPollableInputStream *stream)
{
  return conn_is_readable (LSOCK_WIN32_INPUT_STREAM (stream)->conn);
}

static GSource *
lsock_win32_input_stream_create_source (GPollableInputStream *stream,
                                        GCancellable         *cancellable)
{
  return conn_create_source (LSOCK_WIN32_INPUT_STREAM (stream)->conn, G_OBJECT (stream),
                             TRUE, cancellable);
}

static gssize
lsock_win32_input_stream_read_nonblocking (GPollableInputStream  *stream,
                                           void                  *buffer,
                                           gsize                  count,
                                           GError               **error)
{
  return conn_read (LSOCK_WIN32_INPUT_STREAM (stream)->conn, buffer, count, FALSE,
                    NULL, error);
}

static void
lsock_win32_input_stream_finalize (GObject *object)
{
  LsockWin32InputStream *self = LSOCK_WIN32_INPUT_STREAM (object);

  g_clear_pointer (&self->conn, _lsock_conn_disown);

  G_OBJECT_CLASS (lsock_win32_input_stream_parent_class)->finalize (object);
}

static void
lsock_win32_input_stream_class_init (LsockWin32InputStreamClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GInputStreamClass *stream_class = G_INPUT_STREAM_CLASS (klass);

  object_class->finalize = lsock_win32_input_stream_finalize;
  stream_class->read_fn = lsock_win32_input_stream_read;
  _lsock_input_stream_class_set_close (stream_class);
}

static void
lsock_win32_input_stream_pollable_iface_init (GPollableInputStreamInterface *iface)
{
  iface->can_poll = lsock_win32_input_stream_can_poll;
  iface->is_readable = lsock_win32_input_stream_is_readable;
  iface->create_source = lsock_win32_input_stream_create_source;
  iface->read_nonblocking = lsock_win32_input_stream_read_nonblocking;
}

static void
lsock_win32_input_stream_init (LsockWin32InputStream *self)
{
}

/* ---------------------------------------------------------------------- */

#define LSOCK_TYPE_WIN32_OUTPUT_STREAM (lsock_win32_output_stream_get_type ())
G_DECLARE_FINAL_TYPE (LsockWin32OutputStream, lsock_win32_output_stream,
                      LSOCK, WIN32_OUTPUT_STREAM, GOutputStream)

struct _LsockWin32OutputStream
{
  GOutputStream  parent_instance;
  LsockConn     *conn;
};

static void lsock_win32_output_stream_pollable_iface_init (GPollableOutputStreamInterface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE (LsockWin32OutputStream, lsock_win32_output_stream, G_TYPE_OUTPUT_STREAM,
                               G_IMPLEMENT_INTERFACE (G_TYPE_POLLABLE_OUTPUT_STREAM,
                                                      lsock_win32_output_stream_pollable_iface_init))

static gssize
lsock_win32_output_stream_write (GOutputStream  *stream,
                                 const void     *buffer,
                                 gsize           count,
                                 GCancellable   *cancellable,
                                 GError        **error)
{
  return conn_write (LSOCK_WIN32_OUTPUT_STREAM (stream)->conn, buffer, count,
                     cancellable, error);
}

static gboolean
lsock_win32_output_stream_can_poll (GPollableOutputStream *stream)
{
  return TRUE;
}

static gboolean
lsock_win32_output_stream_is_writable (GPollableOutputStream *stream)
{
  return conn_is_writable (LSOCK_WIN32_OUTPUT_STREAM (stream)->conn);
}

static GSource *
lsock_win32_output_stream_create_source (GPollableOutputStream *stream,
                                         GCancellable          *cancellable)
{
  return conn_create_source (LSOCK_WIN32_OUTPUT_STREAM (stream)->conn, G_OBJECT (stream),
                             FALSE, cancellable);
}

static gssize
lsock_win32_output_stream_write_nonblocking (GPollableOutputStream  *stream,
                                             const void             *buffer,
                                             gsize                   count,
                                             GError                **error)
{
  return conn_write_nonblocking (LSOCK_WIN32_OUTPUT_STREAM (stream)->conn, buffer, count,
                                 error);
}

static void
lsock_win32_output_stream_finalize (GObject *object)
{
  LsockWin32OutputStream *self = LSOCK_WIN32_OUTPUT_STREAM (object);

  g_clear_pointer (&self->conn, _lsock_conn_disown);

  G_OBJECT_CLASS (lsock_win32_output_stream_parent_class)->finalize (object);
}

static void
lsock_win32_output_stream_class_init (LsockWin32OutputStreamClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GOutputStreamClass *stream_class = G_OUTPUT_STREAM_CLASS (klass);

  object_class->finalize = lsock_win32_output_stream_finalize;
  stream_class->write_fn = lsock_win32_output_stream_write;
  _lsock_output_stream_class_set_close (stream_class);
}

static void
lsock_win32_output_stream_pollable_iface_init (GPollableOutputStreamInterface *iface)
{
  iface->can_poll = lsock_win32_output_stream_can_poll;
  iface->is_writable = lsock_win32_output_stream_is_writable;
  iface->create_source = lsock_win32_output_stream_create_source;
  iface->write_nonblocking = lsock_win32_output_stream_write_nonblocking;
}

static void
lsock_win32_output_stream_init (LsockWin32OutputStream *self)
{
}

/* ---------------------------------------------------------------------- */

/* No descriptors: nothing of ours to close or copy */
void
_lsock_fd_close_impl (int fd)
{
}

int
_lsock_fd_dup_impl (int  fd,
                    int *errsv)
{
  return fd;
}

/* GIO's own async paths need nothing kept */
gpointer
_lsock_io_hold_context_impl (GMainContext *context)
{
  return NULL;
}

void
_lsock_io_release_context_impl (gpointer hold)
{
}

void
_lsock_io_dispatch_begin_impl (gpointer         hold,
                               LsockIoDispatch *dispatch)
{
}

void
_lsock_io_dispatch_end_impl (LsockIoDispatch *dispatch)
{
}

GInputStream *
_lsock_stream_new_input_impl (LsockStream *self)
{
  LsockWin32InputStream *input = g_object_new (LSOCK_TYPE_WIN32_INPUT_STREAM, NULL);

  input->conn = _lsock_conn_own (self->conn);
  return G_INPUT_STREAM (input);
}

GOutputStream *
_lsock_stream_new_output_impl (LsockStream *self)
{
  LsockWin32OutputStream *output = g_object_new (LSOCK_TYPE_WIN32_OUTPUT_STREAM, NULL);

  output->conn = _lsock_conn_own (self->conn);
  return G_OUTPUT_STREAM (output);
}

/* A backend for _lsock_stream_new() that takes @pipe */
static Backend *
backend_new (HANDLE pipe)
{
  Backend *backend = g_new0 (Backend, 1);

  backend->pipe = pipe;
  backend->closed_event = CreateEventW (NULL, TRUE, FALSE, NULL);
  backend->owners = 1;
  direction_init (&backend->read, FALSE);
  direction_init (&backend->write, TRUE);
  backend->io = CreateThreadpoolIo (backend->pipe, write_done_cb, backend, NULL);
  if (backend->io == NULL)
    backend->io_error = GetLastError ();
  else
    backend->skip_on_success =
      SetFileCompletionNotificationModes (backend->pipe, FILE_SKIP_COMPLETION_PORT_ON_SUCCESS);
  return backend;
}

LsockStream *
_lsock_stream_new_for_pipe (HANDLE     pipe,
                            LsockName *name)
{
  return _lsock_stream_new (name, backend_new (pipe));
}

HANDLE
_lsock_stream_get_pipe (LsockStream *stream)
{
  Backend *backend = stream->conn->backend;

  return backend->pipe;
}

/* Closed, with no write in flight; maybe in the completion callback of the
 * last one (CloseThreadpoolIo() then frees the object once it returns) */
static void
backend_free (Backend *backend)
{
  if (backend->io != NULL)
    CloseThreadpoolIo (backend->io);
  direction_clear (&backend->read);
  direction_clear (&backend->write);
  CloseHandle (backend->closed_event);
  g_free (backend);
}

static void
backend_release (Backend *backend)
{
  if (g_atomic_int_dec_and_test (&backend->owners))
    backend_free (backend);
}

/* Cancels what is in flight (but lets a write finish, see above), closes
 * the handle, and wakes blocking operations in other threads, which then
 * report CLOSED. */
static void
backend_close (Backend *backend)
{
  DWORD n;

  g_mutex_lock (&backend->read.lock);
  g_mutex_lock (&backend->write.lock);
  if (!backend->closed)
    {
      gboolean lingering = FALSE;

      backend->closed = TRUE;
      if (backend->read.pending)
        {
          CancelIoEx (backend->pipe, &backend->read.overlapped);
          GetOverlappedResult (backend->pipe, &backend->read.overlapped, &n, TRUE);
          backend->read.pending = FALSE;
        }
      if (backend->write.pending && backend->write.from_caller)
        {
          /* A blocking write in another thread, which returns CLOSED: its
           * buffer is the caller's, so it must stop now */
          CancelIoEx (backend->pipe, &backend->write.overlapped);
          write_wait_done (&backend->write);
          write_take_result (backend);
        }
      if (backend->write.pending)
        {
          /* A non-blocking write, from our buffer: let it finish, and its
           * callback close the handle; unless it has finished already
           * (WRITE_COMPLETED or WRITE_DONE: the result is there) */
          backend->linger_pipe = backend->pipe;
          lingering = g_atomic_int_compare_and_exchange (&backend->write.completion,
                                                         WRITE_IN_FLIGHT, WRITE_LINGERING);
          if (lingering)
            backend->write.pending = FALSE;
          else
            write_take_result (backend);
        }
      /* No DisconnectNamedPipe(): it would discard what the peer has not
       * read yet. Closing keeps it readable, then the peer sees EOF. */
      if (!lingering)
        CloseHandle (backend->pipe);
      backend->pipe = INVALID_HANDLE_VALUE;
      SetEvent (backend->closed_event);
      /* Sources report the closed stream at once (they also watch
       * closed_event) */
      SetEvent (backend->read.event);
      SetEvent (backend->write.event);
    }
  g_mutex_unlock (&backend->write.lock);
  g_mutex_unlock (&backend->read.lock);
}

void
_lsock_conn_close_impl (LsockConn *conn)
{
  backend_close (conn->backend);
}

void
_lsock_conn_free_impl (LsockConn *conn)
{
  backend_release (g_steal_pointer (&conn->backend));
}

/* ---------------------------------------------------------------------- */

#define BUSY_RETRY_MIN_MS 5
#define BUSY_RETRY_MAX_MS 100

/* One CreateFileW(). INVALID_HANDLE_VALUE with *out_error on failure */
static HANDLE
open_pipe (const gunichar2 *path,
           DWORD           *out_error)
{
  HANDLE pipe;

  /* SECURITY_IDENTIFICATION: the server may learn who we are, but not act
   * as us (the default would let it impersonate us) */
  pipe = CreateFileW (path, GENERIC_READ | GENERIC_WRITE, 0, NULL, OPEN_EXISTING,
                      FILE_FLAG_OVERLAPPED | SECURITY_SQOS_PRESENT | SECURITY_IDENTIFICATION,
                      NULL);
  if (pipe == INVALID_HANDLE_VALUE)
    *out_error = GetLastError ();
  return pipe;
}

LsockStream *
_lsock_stream_connect_impl (LsockName     *name,
                            guint          timeout_ms,
                            GCancellable  *cancellable,
                            GError       **error)
{
  g_autofree gunichar2 *path = NULL;
  const char *display = _lsock_name_get_display (name);
  gint64 deadline = timeout_ms > 0 ?
    g_get_monotonic_time () + (gint64) timeout_ms * G_TIME_SPAN_MILLISECOND : 0;

  if (lsock_name_get_kind (name) != LSOCK_NAME_KIND_NAMESPACED)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                   _("Could not connect to “%s”: socket files are not supported on Windows"),
                   display);
      return NULL;
    }

  path = _lsock_name_dup_pipe_path_utf16 (name);

  for (;;)
    {
      DWORD errsv = 0;
      HANDLE pipe;

      if (g_cancellable_set_error_if_cancelled (cancellable, error))
        return NULL;

      pipe = open_pipe (path, &errsv);
      if (pipe != INVALID_HANDLE_VALUE)
        return _lsock_stream_new_for_pipe (pipe, name);

      /* Busy, and no listener: what is left are the server ends of
       * connections its listener accepted before it closed */
      if (errsv == ERROR_PIPE_BUSY && !_lsock_win32_marker_exists (lsock_name_get_name (name)))
        errsv = ERROR_FILE_NOT_FOUND;
      if (errsv != ERROR_PIPE_BUSY)
        {
          _lsock_win32_set_error (error, errsv, LSOCK_WIN32_OP_CONNECT, display);
          return NULL;
        }

      /* Every instance is taken: wait for one, in slices so that
       * cancellation and the timeout are noticed (WaitNamedPipeW cannot be
       * cancelled). It returns early when an instance is free; another
       * client may still take it first, so try again either way. A
       * FILE_NOT_FOUND here means the listener went away; the next
       * CreateFileW says so. */
      if (deadline > 0 && g_get_monotonic_time () >= deadline)
        {
          _lsock_stream_set_connect_timed_out_error (name, error);
          return NULL;
        }
      if (!WaitNamedPipeW (path, deadline > 0 ?
                           (DWORD) CLAMP ((deadline - g_get_monotonic_time ()) / 1000, 1,
                                          BUSY_RETRY_MAX_MS) :
                           BUSY_RETRY_MAX_MS))
        {
          errsv = GetLastError ();
          if (errsv != ERROR_SEM_TIMEOUT && errsv != ERROR_FILE_NOT_FOUND &&
              errsv != ERROR_PIPE_BUSY)
            {
              _lsock_win32_set_error (error, errsv, LSOCK_WIN32_OP_CONNECT, display);
              return NULL;
            }
        }
    }
}

typedef struct
{
  LsockName  *name;
  gunichar2  *path;
  int         retry_ms;
  gint64      deadline;  /* 0: none */
  GSource    *source;
} ConnectData;

static void
connect_data_free (ConnectData *data)
{
  if (data->source != NULL)
    {
      g_source_destroy (data->source);
      g_source_unref (data->source);
    }
  g_clear_object (&data->name);
  g_free (data->path);
  g_free (data);
}

static void connect_async_step (GTask *task);

static gboolean
connect_async_retry_cb (gpointer user_data)
{
  GTask *task = user_data;
  ConnectData *data = g_task_get_task_data (task);

  g_clear_pointer (&data->source, g_source_unref);
  connect_async_step (task);
  return G_SOURCE_REMOVE;
}

/* Consumes a reference to @task. All instances busy: WaitNamedPipeW would
 * block, so poll again after a growing delay, on the task's context. */
static void
connect_async_step (GTask *task)
{
  ConnectData *data = g_task_get_task_data (task);
  GSource *cancel_source;
  DWORD errsv = 0;
  HANDLE pipe;

  if (g_task_return_error_if_cancelled (task))
    {
      g_object_unref (task);
      return;
    }

  pipe = open_pipe (data->path, &errsv);
  if (pipe != INVALID_HANDLE_VALUE)
    {
      g_task_return_pointer (task, _lsock_stream_new_for_pipe (pipe, data->name),
                             g_object_unref);
      g_object_unref (task);
      return;
    }

  if (errsv == ERROR_PIPE_BUSY && !_lsock_win32_marker_exists (lsock_name_get_name (data->name)))
    errsv = ERROR_FILE_NOT_FOUND;  /* see _lsock_stream_connect_impl() */
  if (errsv != ERROR_PIPE_BUSY)
    {
      GError *error = NULL;

      _lsock_win32_set_error (&error, errsv, LSOCK_WIN32_OP_CONNECT,
                              _lsock_name_get_display (data->name));
      g_task_return_error (task, error);
      g_object_unref (task);
      return;
    }

  if (data->deadline > 0 && g_get_monotonic_time () >= data->deadline)
    {
      GError *error = NULL;

      _lsock_stream_set_connect_timed_out_error (data->name, &error);
      g_task_return_error (task, error);
      g_object_unref (task);
      return;
    }
  data->source = g_timeout_source_new (data->deadline > 0 ?
                                       (guint) CLAMP ((data->deadline - g_get_monotonic_time ()) / 1000,
                                                      1, data->retry_ms) :
                                       (guint) data->retry_ms);
  data->retry_ms = MIN (data->retry_ms * 2, BUSY_RETRY_MAX_MS);
  g_source_set_callback (data->source, connect_async_retry_cb, task, NULL);
  cancel_source = g_cancellable_source_new (g_task_get_cancellable (task));
  g_source_set_dummy_callback (cancel_source);
  g_source_add_child_source (data->source, cancel_source);
  g_source_unref (cancel_source);
  g_source_set_static_name (data->source, "[lsock] connect");
  g_source_set_priority (data->source, g_task_get_priority (task));
  g_source_attach (data->source, g_task_get_context (task));
}

void
_lsock_stream_connect_async_impl (GTask     *task,
                                  LsockName *name,
                                  guint      timeout_ms)
{
  ConnectData *data = g_new0 (ConnectData, 1);

  data->name = g_object_ref (name);
  data->retry_ms = BUSY_RETRY_MIN_MS;
  if (timeout_ms > 0)
    data->deadline = g_get_monotonic_time () + (gint64) timeout_ms * G_TIME_SPAN_MILLISECOND;
  g_task_set_task_data (task, data, (GDestroyNotify) connect_data_free);

  if (lsock_name_get_kind (name) != LSOCK_NAME_KIND_NAMESPACED)
    {
      g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                               _("Could not connect to “%s”: socket files are not supported on Windows"),
                               _lsock_name_get_display (name));
      g_object_unref (task);
      return;
    }

  data->path = _lsock_name_dup_pipe_path_utf16 (name);
  connect_async_step (task);
}

/* The user of the process at the other end of @pipe (a client handle):
 * through the server's process token; where that process cannot be
 * opened, the pipe's owner. (transfer full), LocalFree() */
static PSID
dup_server_user (HANDLE  pipe,
                 DWORD  *out_error)
{
  PSECURITY_DESCRIPTOR sd = NULL;
  PSID owner = NULL;
  ULONG pid = 0;
  PSID sid = NULL;
  DWORD res;

  if (GetNamedPipeServerProcessId (pipe, &pid) &&
      (sid = _lsock_win32_dup_process_user (pid, out_error)) != NULL)
    return sid;

  res = GetSecurityInfo (pipe, SE_KERNEL_OBJECT, OWNER_SECURITY_INFORMATION,
                         &owner, NULL, NULL, NULL, &sd);
  if (res != ERROR_SUCCESS)
    {
      *out_error = res;
      return NULL;
    }
  sid = LocalAlloc (LPTR, GetLengthSid (owner));
  if (sid != NULL)
    CopySid (GetLengthSid (owner), sid, owner);
  LocalFree (sd);
  return sid;
}

gboolean
_lsock_stream_check_server_impl (LsockStream  *self,
                                 GError      **error)
{
  Backend *backend = self->conn->backend;
  const char *display = _lsock_name_get_display (self->conn->name);
  DWORD errsv = 0;
  PSID me = _lsock_win32_dup_process_user (0, &errsv);
  PSID server = NULL;
  gboolean ok;

  if (me != NULL)
    {
      g_mutex_lock (&backend->read.lock);
      server = dup_server_user (backend->pipe, &errsv);
      g_mutex_unlock (&backend->read.lock);
    }

  if (server == NULL)
    {
      g_autofree char *text = g_win32_error_message (errsv);

      g_set_error (error, G_IO_ERROR, G_IO_ERROR_PERMISSION_DENIED,
                   _("Refusing the listener on “%s”: could not tell who it is (%s)"),
                   display, text);
      if (me != NULL)
        LocalFree (me);
      return FALSE;
    }

  /* Ours, or LocalSystem's (a system service we may want to reach) */
  ok = EqualSid (server, me) || IsWellKnownSid (server, WinLocalSystemSid);
  if (!ok)
    {
      wchar_t *sid_w = NULL;
      g_autofree char *sid = NULL;

      if (ConvertSidToStringSidW (server, &sid_w))
        {
          sid = g_utf16_to_utf8 (sid_w, -1, NULL, NULL, NULL);
          LocalFree (sid_w);
        }
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_PERMISSION_DENIED,
                   _("Refusing the listener on “%s”: it runs as another user (%s); "
                     "connect with LSOCK_ACCESS_EVERYONE to talk to it anyway"),
                   display, sid != NULL ? sid : "?");
    }
  LocalFree (server);
  LocalFree (me);
  return ok;
}

int
_lsock_stream_get_peer_pidfd_impl (LsockStream  *self,
                                   GError      **error)
{
  g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
               _("Could not get a pidfd for the peer of “%s”: this platform has no pidfds"),
               _lsock_name_get_display (self->conn->name));
  return -1;
}

GCredentials *
_lsock_stream_get_peer_credentials_impl (LsockStream  *self,
                                         GError      **error)
{
  Backend *backend = self->conn->backend;
  GCredentials *credentials;
  DWORD flags = 0;
  ULONG pid = 0;
  DWORD native_pid;
  BOOL ok;

  g_mutex_lock (&backend->read.lock);
  if (backend->closed)
    {
      g_mutex_unlock (&backend->read.lock);
      _lsock_stream_set_closed_error (self, error);
      return NULL;
    }
  /* Which end are we? The peer is the other one. */
  ok = GetNamedPipeInfo (backend->pipe, &flags, NULL, NULL, NULL);
  if (ok)
    ok = (flags & PIPE_SERVER_END) ?
         GetNamedPipeClientProcessId (backend->pipe, &pid) :
         GetNamedPipeServerProcessId (backend->pipe, &pid);
  if (!ok)
    {
      DWORD errsv = GetLastError ();
      g_autofree char *text = g_win32_error_message (errsv);

      g_mutex_unlock (&backend->read.lock);
      g_set_error (error, G_IO_ERROR, _lsock_win32_error_to_io_error (errsv, LSOCK_WIN32_OP_OTHER),
                   _("Could not get the credentials of the peer of “%s”: %s"),
                   _lsock_name_get_display (self->conn->name), text);
      return NULL;
    }
  g_mutex_unlock (&backend->read.lock);

  native_pid = pid;
  credentials = g_credentials_new ();
  g_credentials_set_native (credentials, G_CREDENTIALS_TYPE_WIN32_PID, &native_pid);
  return credentials;
}

gboolean
_lsock_stream_shutdown_impl (LsockStream  *self,
                             gboolean      shutdown_read,
                             gboolean      shutdown_write,
                             GError      **error)
{
  Backend *backend = self->conn->backend;

  if (shutdown_write && !shutdown_read)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                   _("Could not shut down writing to “%s”: named pipes have no half-close"),
                   _lsock_name_get_display (self->conn->name));
      return FALSE;
    }

  if (shutdown_write)
    {
      /* Both directions: the only way to tell the peer is to close */
      backend_close (backend);
      return TRUE;
    }

  /* Reading only: later reads return end of stream. What is in flight
   * stays in flight (it is cancelled when the stream closes). */
  g_mutex_lock (&backend->read.lock);
  backend->read.start = backend->read.end = 0;
  backend->read.eof = TRUE;
  SetEvent (backend->read.event);
  g_mutex_unlock (&backend->read.lock);
  return TRUE;
}

/* ---------------------------------------------------------------------- */
/* Descriptors: named pipes carry none */

static void
set_no_descriptors_error (const char  *what,
                          GError     **error)
{
  g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
               /* Translators: %s is a function name */
               _("%s is not supported on Windows: named pipes have no file descriptors"),
               what);
}

LsockStream *
_lsock_stream_new_from_fd_impl (int      fd,
                                GError **error)
{
  set_no_descriptors_error ("lsock_stream_new_from_fd()", error);
  return NULL;
}

/* Two ends of a pipe of our own, under a random name: the listener's
 * first instance is ours (the client checks), and the client is us (the
 * listener checks) */
gboolean
_lsock_stream_new_pair_impl (LsockStream **first,
                             LsockStream **second,
                             GError      **error)
{
  g_autoptr(LsockName) name = NULL;
  g_autoptr(LsockListener) listener = NULL;
  g_autoptr(LsockStream) client = NULL;
  g_autofree char *pipe_name = NULL;
  LsockStream *server;

  pipe_name = g_strdup_printf ("lsock-pair-%lu-%08x%08x", (gulong) GetCurrentProcessId (),
                               g_random_int (), g_random_int ());
  name = lsock_name_new_namespaced (pipe_name, error);
  if (name == NULL)
    return FALSE;
  listener = lsock_listener_new (name, error);
  if (listener == NULL)
    return FALSE;
  client = lsock_stream_connect (name, NULL, error);
  if (client == NULL)
    return FALSE;
  server = lsock_listener_accept (listener, NULL, error);
  if (server == NULL)
    return FALSE;
  lsock_listener_close (listener);

  *first = g_steal_pointer (&client);
  *second = server;
  return TRUE;
}

int
_lsock_stream_get_fd_impl (LsockStream *self)
{
  return -1;
}

int
_lsock_stream_steal_fd_impl (LsockStream  *self,
                             GError      **error)
{
  set_no_descriptors_error ("lsock_stream_steal_fd()", error);
  return -1;
}

gboolean
_lsock_stream_send_fd_impl (LsockStream   *self,
                            int            fd,
                            gboolean       blocking,
                            GCancellable  *cancellable,
                            GError       **error)
{
  set_no_descriptors_error ("lsock_stream_send_fd()", error);
  return FALSE;
}

int
_lsock_stream_receive_fd_impl (LsockStream   *self,
                               gboolean       blocking,
                               GCancellable  *cancellable,
                               GError       **error)
{
  set_no_descriptors_error ("lsock_stream_receive_fd()", error);
  return -1;
}

/* GDBus reads and writes the pipe itself. Over it, GDBus can prove
 * nothing (its EXTERNAL on Windows takes the client's word for its SID,
 * and DBUS_COOKIE_SHA1 wants a keyring in a home directory); lsock has
 * checked the peer already, on accept and on connect: ANONYMOUS, allowed. */
GIOStream *
_lsock_stream_dbus_stream_impl (LsockStream           *self,
                                gboolean               server,
                                GDBusConnectionFlags  *flags,
                                const char           **mechanism,
                                GError               **error)
{
  if (server)
    *flags |= G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_ALLOW_ANONYMOUS;
  *mechanism = "ANONYMOUS";
  return g_object_ref (G_IO_STREAM (self));
}

/* ---------------------------------------------------------------------- */
/* The bytes calls: the usual GIO calls on the substreams */

gboolean
_lsock_stream_send_bytes_impl (LsockStream   *self,
                               gconstpointer  data,
                               gsize          size,
                               GCancellable  *cancellable,
                               GError       **error)
{
  return g_output_stream_write_all (_lsock_stream_get_output (self), data, size, NULL,
                                    cancellable, error);
}

GBytes *
_lsock_stream_receive_bytes_impl (LsockStream   *self,
                                  gsize          max_bytes,
                                  GCancellable  *cancellable,
                                  GError       **error)
{
  return g_input_stream_read_bytes (_lsock_stream_get_input (self), max_bytes, cancellable,
                                    error);
}

static void
send_bytes_win32_cb (GObject      *source,
                     GAsyncResult *result,
                     gpointer      user_data)
{
  GTask *task = user_data;
  GError *error = NULL;

  /* Before the callback, which may start the next one */
  _lsock_stream_clear_pending (g_task_get_source_object (task), LSOCK_DIRECTION_WRITE);
  if (g_output_stream_write_all_finish (G_OUTPUT_STREAM (source), result, NULL, &error))
    g_task_return_boolean (task, TRUE);
  else
    g_task_return_error (task, error);
  g_object_unref (task);
}

static void
receive_bytes_win32_cb (GObject      *source,
                        GAsyncResult *result,
                        gpointer      user_data)
{
  GTask *task = user_data;
  GError *error = NULL;
  GBytes *bytes = g_input_stream_read_bytes_finish (G_INPUT_STREAM (source), result, &error);

  _lsock_stream_clear_pending (g_task_get_source_object (task), LSOCK_DIRECTION_READ);
  if (bytes != NULL)
    g_task_return_pointer (task, bytes, (GDestroyNotify) g_bytes_unref);
  else
    g_task_return_error (task, error);
  g_object_unref (task);
}

void
_lsock_stream_send_bytes_async_impl (LsockStream         *self,
                                     GBytes              *bytes,
                                     int                  io_priority,
                                     GCancellable        *cancellable,
                                     GAsyncReadyCallback  callback,
                                     gpointer             user_data)
{
  GTask *task = g_task_new (self, cancellable, callback, user_data);
  gsize size;
  gconstpointer data = g_bytes_get_data (bytes, &size);

  g_task_set_source_tag (task, lsock_stream_send_bytes_async);
  g_task_set_task_data (task, g_bytes_ref (bytes), (GDestroyNotify) g_bytes_unref);
  /* The stream's own pending flag is held; the substream's is
   * write_all_async()'s */
  g_output_stream_write_all_async (_lsock_stream_get_output (self), data, size, io_priority,
                                   cancellable, send_bytes_win32_cb, task);
}

void
_lsock_stream_receive_bytes_async_impl (LsockStream         *self,
                                        gsize                max_bytes,
                                        int                  io_priority,
                                        GCancellable        *cancellable,
                                        GAsyncReadyCallback  callback,
                                        gpointer             user_data)
{
  GTask *task = g_task_new (self, cancellable, callback, user_data);

  g_task_set_source_tag (task, lsock_stream_receive_bytes_async);
  g_input_stream_read_bytes_async (_lsock_stream_get_input (self), max_bytes, io_priority,
                                   cancellable, receive_bytes_win32_cb, task);
}
