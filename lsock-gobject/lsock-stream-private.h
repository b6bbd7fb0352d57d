/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#if !defined (LSOCK_COMPILATION)
# error "private header"
#endif

#include "lsock-stream.h"
#include "lsock-name.h"

G_BEGIN_DECLS

/* The connection shared by an LsockStream and its input and output
 * streams, any of which may outlive the others.
 *
 * Two counts: the owners (the stream and its substreams) keep the
 * connection open, and the last of them to go closes it; references keep
 * the memory (owners hold one each; so do operations in flight and the
 * backend's watches, which must not keep the connection open). */
typedef struct _LsockConn LsockConn;
struct _LsockConn
{
  gatomicrefcount  ref_count;
  int              owners;      /* atomic */
  LsockName       *name;        /* for error messages */
  int              timeout_ms;  /* atomic; 0 = no timeout */
  /* Guards closed, and whatever of the backend's state it says */
  GMutex           lock;
  gboolean         closed;
  gpointer         backend;     /* the platform's connection */
  /* atomic: the peer closed with data of ours unread (a reset; Linux
   * reports it, see lsock_stream_get_peer_discarded()) */
  int              peer_discarded;
  /* By direction (LsockDirection): a call of the LsockStream's own (bytes,
   * descriptors) is in progress, which makes the substream busy as its own
   * pending flag would. Plain flags, like GIO's: one operation at a time
   * per direction is the caller's side of the contract, these only say
   * G_IO_ERROR_PENDING when it is broken. */
  gboolean         busy[2];
};

typedef enum
{
  LSOCK_DIRECTION_READ,
  LSOCK_DIRECTION_WRITE,
} LsockDirection;

/* A connection with one owner (the caller), taking @backend */
LsockConn    *_lsock_conn_new                     (LsockName     *name,
                                                   gpointer       backend);
LsockConn    *_lsock_conn_ref                     (LsockConn     *conn);
void          _lsock_conn_unref                   (LsockConn     *conn);
LsockConn    *_lsock_conn_own                     (LsockConn     *conn);
void          _lsock_conn_disown                  (LsockConn     *conn);
/* Closes the connection, once: FALSE if it was closed already. Operations
 * pending or running in any thread end with G_IO_ERROR_CLOSED (or what
 * they had done by then). */
gboolean      _lsock_conn_close                   (LsockConn     *conn);
gboolean      _lsock_conn_is_closed               (LsockConn     *conn);
void          _lsock_conn_set_closed_error        (LsockConn     *conn,
                                                   GError       **error);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (LsockConn, _lsock_conn_unref)

struct _LsockStream
{
  GIOStream      parent_instance;

  LsockConn     *conn;   /* we are one of its owners */
  /* Made on first use (_lsock_stream_get_input()), then there until
   * dispose: a stream that only uses the bytes calls, or hands its socket
   * over, never has them. Each owns conn too. */
  GInputStream  *input;
  GOutputStream *output;
  /* Disposed with an operation pending: the substreams keep the
   * connection open until they are done (as GSocketConnection does) */
  gboolean       keep_open;
};

/* Wraps a connection (taking @backend, the platform's) in a stream */
LsockStream  *_lsock_stream_new                   (LsockName     *name,
                                                   gpointer       backend);
/* (transfer none) the substreams, made on first use, from any thread */
GInputStream *_lsock_stream_get_input             (LsockStream   *self);
GOutputStream *_lsock_stream_get_output           (LsockStream   *self);

/* The pending flag of the stream's own calls in @direction (bytes,
 * descriptors): G_IO_ERROR_PENDING while one of them or an operation of
 * the substream is in progress there. The substreams' operations check it
 * in turn (_lsock_conn_check_not_busy()). */
gboolean      _lsock_stream_set_pending           (LsockStream   *self,
                                                   LsockDirection direction,
                                                   GError       **error);
void          _lsock_stream_clear_pending         (LsockStream   *self,
                                                   LsockDirection direction);
/* Whether one of those, or an operation of the substream, is in progress
 * in @direction */
gboolean      _lsock_stream_direction_busy        (LsockStream   *self,
                                                   LsockDirection direction);
/* For a substream's operation: G_IO_ERROR_PENDING while a call of the
 * stream's own holds @direction */
gboolean      _lsock_conn_check_not_busy          (LsockConn     *conn,
                                                   LsockDirection direction,
                                                   GError       **error);

/* Sets the close vfuncs of a backend's substream class: closing a substream
 * does nothing itself, since the connection belongs to the LsockStream (as
 * GSocketConnection's streams do), and the async close is immediate where
 * GIO's default would use a thread */
void          _lsock_input_stream_class_set_close  (GInputStreamClass  *klass);
void          _lsock_output_stream_class_set_close (GOutputStreamClass *klass);

/* Backend hooks (lsock-stream-unix.c / lsock-stream-win32.c) */
/* Keeps what async I/O on @context at the default priority needs (on
 * Unix, its reactor: an epoll fd and a source) until released, from any
 * thread. A listener serving a context holds it, so that connections
 * handed out one after the other do not each make it and destroy it.
 * NULL where nothing is kept. */
gpointer      _lsock_io_hold_context_impl         (GMainContext  *context);
void          _lsock_io_release_context_impl      (gpointer       hold);
/* Around the callbacks of a dispatch of the held context, in its thread:
 * an operation they start that completes at once is reported once they
 * have returned, in this dispatch, as from the callback of another lsock
 * operation, rather than in the next main loop iteration */
typedef struct
{
  gpointer reactor;
  gpointer outer;
} LsockIoDispatch;
void          _lsock_io_dispatch_begin_impl       (gpointer         hold,
                                                   LsockIoDispatch *dispatch);
void          _lsock_io_dispatch_end_impl         (LsockIoDispatch *dispatch);
/* A new input or output stream over self->conn, an owner of it */
GInputStream *_lsock_stream_new_input_impl        (LsockStream   *self);
GOutputStream *_lsock_stream_new_output_impl      (LsockStream   *self);
/* Releases the platform connection; called once, conn->closed already
 * set, no lock held. Wakes operations in flight in other threads. */
void          _lsock_conn_close_impl              (LsockConn     *conn);
/* Frees conn->backend (the connection is closed) */
void          _lsock_conn_free_impl               (LsockConn     *conn);
/* Connects, within @timeout_ms (0: no limit; G_IO_ERROR_TIMED_OUT after
 * it, whether the listener's backlog is full or its pipe busy) */
LsockStream  *_lsock_stream_connect_impl          (LsockName     *name,
                                                   guint          timeout_ms,
                                                   GCancellable  *cancellable,
                                                   GError       **error);
/* Returns @task (a GTask of the shared layer) once connected, with the
 * stream, or with an error. Consumes the reference. */
void          _lsock_stream_connect_async_impl    (GTask         *task,
                                                   LsockName     *name,
                                                   guint          timeout_ms);
/* Whether the server at the other end of a fresh connection runs as our
 * user (or root, LocalSystem): G_IO_ERROR_PERMISSION_DENIED otherwise */
gboolean      _lsock_stream_check_server_impl     (LsockStream   *self,
                                                   GError       **error);
int           _lsock_stream_get_peer_pidfd_impl   (LsockStream   *self,
                                                   GError       **error);
GCredentials *_lsock_stream_get_peer_credentials_impl (LsockStream *self,
                                                   GError       **error);
gboolean      _lsock_stream_shutdown_impl         (LsockStream   *self,
                                                   gboolean       shutdown_read,
                                                   gboolean       shutdown_write,
                                                   GError       **error);

/* Descriptors (lsock-stream-fd.c). Where the platform has no descriptors
 * these fail with G_IO_ERROR_NOT_SUPPORTED (get_fd: -1). */
/* close(): a descriptor of ours, >= 0; nothing where there are none */
void          _lsock_fd_close_impl                (int            fd);
/* A close-on-exec copy of @fd, 3 or above, or -1 and the errno in
 * @errsv; where there are no descriptors, @fd itself */
int           _lsock_fd_dup_impl                  (int            fd,
                                                   int           *errsv);
/* Adopts a connected stream socket, validated; the caller keeps @fd on
 * failure */
LsockStream  *_lsock_stream_new_from_fd_impl      (int            fd,
                                                   GError       **error);
gboolean      _lsock_stream_new_pair_impl         (LsockStream  **first,
                                                   LsockStream  **second,
                                                   GError       **error);
int           _lsock_stream_get_fd_impl           (LsockStream   *self);
int           _lsock_stream_steal_fd_impl         (LsockStream   *self,
                                                   GError       **error);
/* Not blocking: G_IO_ERROR_WOULD_BLOCK until the substream polls ready */
gboolean      _lsock_stream_send_fd_impl          (LsockStream   *self,
                                                   int            fd,
                                                   gboolean       blocking,
                                                   GCancellable  *cancellable,
                                                   GError       **error);
int           _lsock_stream_receive_fd_impl       (LsockStream   *self,
                                                   gboolean       blocking,
                                                   GCancellable  *cancellable,
                                                   GError       **error);
/* The bytes calls (lsock-stream-bytes.c), started with the stream's
 * pending flag set (_lsock_stream_set_pending()). The sync ones leave it
 * to the caller to clear; the async ones clear it before the callback, and
 * report with an LsockAsyncResult or a GTask whose source tag is the
 * public _async() function. */
gboolean      _lsock_stream_send_bytes_impl          (LsockStream         *self,
                                                      gconstpointer        data,
                                                      gsize                size,
                                                      GCancellable        *cancellable,
                                                      GError             **error);
GBytes       *_lsock_stream_receive_bytes_impl       (LsockStream         *self,
                                                      gsize                max_bytes,
                                                      GCancellable        *cancellable,
                                                      GError             **error);
void          _lsock_stream_send_bytes_async_impl    (LsockStream         *self,
                                                      GBytes              *bytes,
                                                      int                  io_priority,
                                                      GCancellable        *cancellable,
                                                      GAsyncReadyCallback  callback,
                                                      gpointer             user_data);
void          _lsock_stream_receive_bytes_async_impl (LsockStream         *self,
                                                      gsize                max_bytes,
                                                      int                  io_priority,
                                                      GCancellable        *cancellable,
                                                      GAsyncReadyCallback  callback,
                                                      gpointer             user_data);

/* G_IO_ERROR_PENDING while the stream or a substream has an operation
 * pending: before the socket is handed over */
gboolean      _lsock_stream_check_not_pending     (LsockStream   *self,
                                                   GError       **error);
/* What GDBus is given for the stream (lsock-stream-dbus.c): on Unix a
 * GUnixConnection that takes over the socket (the stream is closed); on
 * Windows the stream itself. The flags and the mechanisms to allow, as
 * the platform's authentication needs them. */
GIOStream    *_lsock_stream_dbus_stream_impl      (LsockStream   *self,
                                                   gboolean       server,
                                                   GDBusConnectionFlags *flags,
                                                   const char   **mechanism,
                                                   GError       **error);

/* Rewrites a G_IO_ERROR_CANCELLED from GLib ("Operation was cancelled") so
 * that it names the socket; other errors are left alone */
/* G_IO_ERROR_TIMED_OUT for a connect to @name that took too long */
void          _lsock_stream_set_connect_timed_out_error (LsockName  *name,
                                                         GError    **error);
void          _lsock_name_cancelled_error         (LsockName     *name,
                                                   GError        *error);

/* Shared error helpers, messages naming the stream's socket */
void          _lsock_stream_set_closed_error      (LsockStream   *self,
                                                   GError       **error);

G_END_DECLS
