/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#if !defined (LSOCK_COMPILATION)
# error "private header"
#endif

#include "lsock-stream.h"
#include "lsock-name.h"

G_BEGIN_DECLS

/* The connection shared by an LsockStream and its input and output streams.
 * Reference-counted: the substreams may be kept alive after the GIOStream. */
typedef struct _LsockConn LsockConn;
struct _LsockConn
{
  gatomicrefcount  ref_count;
  LsockName       *name;        /* for error messages */
  int              timeout_ms;  /* atomic; 0 = no timeout */
  int              read_timed_out;  /* atomic flags set by timed-out sources */
  int              write_timed_out;
  int              fd;          /* Unix socket; -1 once closed */
  int              zombie_fd;   /* Unix: shut down while I/O was pending;
                                 * closed when the last user lets go */
  gpointer         handle;      /* Windows pipe */
  gpointer         backend;     /* anything else the backend needs */
};

LsockConn    *_lsock_conn_ref                     (LsockConn     *conn);
void          _lsock_conn_unref                   (LsockConn     *conn);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (LsockConn, _lsock_conn_unref)

struct _LsockStream
{
  GIOStream      parent_instance;

  LsockName     *name;
  GInputStream  *input;
  GOutputStream *output;

  /* Shared with the input and output streams, which outlive us if the
   * caller keeps them: the platform connection and the I/O timeout. */
  LsockConn     *conn;
};

/* Wraps a connected socket/pipe (taking ownership) in a stream named @name. */
LsockStream  *_lsock_stream_new_for_fd            (int            fd,
                                                   LsockName     *name);

/* Sets the close vfuncs of a backend's substream class: closing a substream
 * does nothing itself, since the connection belongs to the LsockStream (as
 * GSocketConnection's streams do), and the async close is immediate where
 * GIO's default would use a thread */
void          _lsock_input_stream_class_set_close  (GInputStreamClass  *klass);
void          _lsock_output_stream_class_set_close (GOutputStreamClass *klass);

/* Backend hooks (lsock-stream-unix.c / lsock-stream-win32.c) */
/* Creates the pollable input and output streams over self->conn */
void          _lsock_stream_init_streams_impl     (LsockStream   *self);
/* Releases the platform connection (fd/handle) of @conn */
void          _lsock_conn_close_impl              (LsockConn     *conn,
                                                   gboolean       pending_io);
gboolean      _lsock_stream_connect_impl          (LsockName     *name,
                                                   GCancellable  *cancellable,
                                                   int           *out_fd,
                                                   GError       **error);
void          _lsock_stream_connect_async_impl    (GTask         *task,
                                                   LsockName     *name);
GCredentials *_lsock_stream_get_peer_credentials_impl (LsockStream *self,
                                                   GError       **error);
gboolean      _lsock_stream_shutdown_impl         (LsockStream   *self,
                                                   gboolean       shutdown_read,
                                                   gboolean       shutdown_write,
                                                   GError       **error);

/* Rewrites a G_IO_ERROR_CANCELLED from GLib ("Operation was cancelled") so
 * that it names the socket; other errors are left alone */
void          _lsock_name_cancelled_error         (LsockName     *name,
                                                   GError        *error);

/* Shared error helpers, messages naming the stream's socket */
void          _lsock_stream_set_closed_error      (LsockStream   *self,
                                                   GError       **error);

G_END_DECLS
