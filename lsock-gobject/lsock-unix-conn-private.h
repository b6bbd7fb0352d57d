/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#if !defined (LSOCK_COMPILATION)
# error "private header"
#endif

#include "lsock-stream-private.h"

G_BEGIN_DECLS

/* The Unix connection (LsockConn's backend): one connected socket, read
 * and written by the substreams in lsock-unix-streams.c, with one sync and
 * one async path per direction and one error mapping. */

/* A backend for _lsock_stream_new() that takes @fd */
gpointer      _lsock_unix_conn_new            (int             fd);

/* The socket while the connection is open, for a use that must not race
 * its close: returns -1 with G_IO_ERROR_CLOSED once closed; otherwise the
 * fd stays open (though maybe shut down by close()) until the matching
 * _lsock_unix_conn_release_fd(). */
int           _lsock_unix_conn_acquire_fd     (LsockConn      *conn,
                                               GError        **error);
void          _lsock_unix_conn_release_fd     (LsockConn      *conn);
/* The fd, or -1 once closed, with no guarantee: for tests */
int           _lsock_unix_conn_peek_fd        (LsockConn      *conn);
/* For tests: the kind of reactor ("epoll", "poll") the connection's async
 * operations last registered with, or NULL */
const char   *_lsock_unix_conn_peek_reactor_kind (LsockConn   *conn);
/* Tests: whether the context polls the fd of @conn's first registration
 * itself (every watch of the poll reactor, those of an epoll one while it
 * has only a few), rather than epoll */
gboolean      _lsock_unix_conn_peek_polled       (LsockConn   *conn);

/* One read or write: blocking (honouring the connection's timeout and
 * @cancellable), or not (G_IO_ERROR_WOULD_BLOCK) */
gssize        _lsock_unix_conn_io             (LsockConn      *conn,
                                               LsockDirection  direction,
                                               void           *buffer,
                                               gsize           count,
                                               gboolean        blocking,
                                               GCancellable   *cancellable,
                                               GError        **error);
/* A descriptor with one byte (SCM_RIGHTS), blocking or not, as
 * _lsock_unix_conn_io(). The received one is close-on-exec; anything but
 * exactly one is an error, and whatever came is closed. */
gboolean      _lsock_unix_conn_send_fd        (LsockConn      *conn,
                                               int             fd,
                                               gboolean        blocking,
                                               GCancellable   *cancellable,
                                               GError        **error);
int           _lsock_unix_conn_receive_fd     (LsockConn      *conn,
                                               gboolean        blocking,
                                               GCancellable   *cancellable,
                                               GError        **error);
/* Takes the socket: the connection is closed from then on, without the
 * socket being shut down or closed. G_IO_ERROR_PENDING while anything
 * uses it. */
int           _lsock_unix_conn_steal_fd       (LsockConn      *conn,
                                               GError        **error);

/* Pollable: readiness now, and a source for it */
gboolean      _lsock_unix_conn_is_ready       (LsockConn      *conn,
                                               LsockDirection  direction);
GSource      *_lsock_unix_conn_create_source  (LsockConn      *conn,
                                               GObject        *pollable,
                                               LsockDirection  direction,
                                               GCancellable   *cancellable);

/* One read or write without blocking the thread: driven by the reactor of
 * the thread-default main context (lsock-reactor-private.h), and reported
 * there, never before this returns, with a fresh LsockAsyncResult whose
 * source object is @stream. */
void          _lsock_unix_conn_io_async       (LsockConn          *conn,
                                               gpointer            stream,
                                               LsockDirection      direction,
                                               void               *buffer,
                                               gsize               count,
                                               int                 io_priority,
                                               GCancellable       *cancellable,
                                               GAsyncReadyCallback callback,
                                               gpointer            user_data,
                                               gpointer            source_tag);
typedef enum
{
  LSOCK_IO_ALL           = 1 << 0,  /* write all of it, however many calls */
  LSOCK_IO_RECEIVE_BYTES = 1 << 1,  /* the buffer (g_malloc()ed, ours from
                                     * now) becomes the result's GBytes; with
                                     * no buffer, up to LSOCK_RECEIVE_SCRATCH
                                     * is read onto the stack and copied */
  LSOCK_IO_NEXT_DISPATCH = 1 << 2,  /* done at once: reported from the next
                                     * dispatch, not later in this one */
  LSOCK_IO_CLEAR_PENDING = 1 << 3,  /* a call of the LsockStream's own, which
                                     * holds conn->busy[direction] (see
                                     * _lsock_stream_set_pending()): cleared
                                     * before the callback. Without it, an
                                     * operation fails while that is held. */
} LsockIoFlags;

/* Below this, a copy of what came costs less than allocating for the most
 * that could come and shrinking it after */
#define LSOCK_RECEIVE_SCRATCH 4096

/* As _lsock_unix_conn_io_async(), with @flags, holding @held (the owner of
 * @buffer, or NULL) until the operation is done */
void          _lsock_unix_conn_io_async_full  (LsockConn          *conn,
                                               gpointer            stream,
                                               LsockDirection      direction,
                                               LsockIoFlags        flags,
                                               void               *buffer,
                                               gsize               count,
                                               GBytes             *held,
                                               int                 io_priority,
                                               GCancellable       *cancellable,
                                               GAsyncReadyCallback callback,
                                               gpointer            user_data,
                                               gpointer            source_tag);
gssize        _lsock_unix_conn_io_finish      (gpointer            stream,
                                               GAsyncResult       *result,
                                               gpointer            source_tag,
                                               GError            **error);

/* The substream classes (lsock-unix-streams.c): each owns @conn */
GInputStream  *_lsock_unix_input_stream_new   (LsockConn      *conn);
GOutputStream *_lsock_unix_output_stream_new  (LsockConn      *conn);

G_END_DECLS
