/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#if !defined (LSOCK_COMPILATION)
# error "private header"
#endif

#include "lsock-listener.h"
#include "lsock-name.h"
#include "lsock-stream.h"

G_BEGIN_DECLS

#ifdef G_OS_WIN32
# define LSOCK_DEFAULT_BACKLOG 4
#else
# include <sys/socket.h>
# define LSOCK_DEFAULT_BACKLOG SOMAXCONN
#endif

struct _LsockListener
{
  GObject       parent_instance;

  /* Construct-only settings */
  LsockName    *name;
  int           backlog;
  LsockAccess   access;
  guint         replace_stale : 1;
  guint         reclaim_name : 1;   /* atomic through the accessors */

  /* Guards everything below, which other threads may touch: sync accepts
   * run in any thread while the owner closes */
  GMutex        lock;
  guint         closed : 1;
  guint         bound : 1;
  /* The platform's listening socket/pipe state */
  int           fd;
  /* Accepts running in any thread. close() only shuts the socket down
   * while there are some (which wakes them), and the last one out closes
   * it, so the fd number cannot be reused under them. */
  int           accepts_in_flight;
  int           zombie_fd;
  guint64       bound_dev;
  guint64       bound_ino;
  /* Unix: the uid that LSOCK_ACCESS_USER admits, and whether the socket
   * is non-blocking now (atomic; set once, for good) */
  guint         owner_uid;
  int           fd_nonblocking;
  gpointer      backend;

  /* Pending accept_async tasks, failed with G_IO_ERROR_CLOSED on close,
   * and the source most of them share (see accept_shared_cb()) */
  GQueue        pending;   /* GTask* or LsockAcceptOp* */
  GSource      *accept_source;
  gpointer      spare_accept_op;  /* atomic: an LsockAcceptOp to reuse */

  /* start()/stop(): the incoming source and its back-off timer */
  GMainContext *incoming_context;
  GSource      *incoming_source;
  GSource      *backoff_source;
  guint         backoff_ms;
};

#ifndef G_OS_WIN32
/* Non-zero: bind socket files at a temporary name and rename them into
 * place, as on macOS and the BSDs, also on Linux (for tests) */
extern int _lsock_listener_publish_by_rename;
#endif

/* Emits LsockListener::incoming for @stream */
void          _lsock_listener_emit_incoming     (LsockListener  *self,
                                                 LsockStream    *stream);
/* Emits LsockListener::accept-error */
void          _lsock_listener_emit_accept_error (LsockListener  *self,
                                                 const GError   *error);
void          _lsock_listener_set_closed_error  (LsockListener  *self,
                                                 GError        **error);

/* Backend hooks (lsock-listener-unix.c / lsock-listener-win32.c) */
gboolean      _lsock_listener_bind_impl         (LsockListener  *self,
                                                 GCancellable   *cancellable,
                                                 GError        **error);
typedef enum
{
  LSOCK_ACCEPT_BLOCKING,     /* wait for a peer, cancellably */
  LSOCK_ACCEPT_NONBLOCKING,  /* G_IO_ERROR_WOULD_BLOCK when none is waiting */
  LSOCK_ACCEPT_READY,        /* as NONBLOCKING, called because a source
                              * (_lsock_listener_create_source_impl())
                              * just said a peer may be waiting */
} LsockAcceptMode;

/* One accept. Peers refused by the access check are closed and skipped. */
LsockStream  *_lsock_listener_accept_impl       (LsockListener  *self,
                                                 LsockAcceptMode mode,
                                                 GCancellable   *cancellable,
                                                 GError        **error);
/* A source that dispatches when a peer may be waiting; its callback is a
 * GSourceFunc. */
GSource      *_lsock_listener_create_source_impl (LsockListener *self);
/* Removes the name (if reclaim-name and it is still ours) and releases the
 * socket/pipe. Called with the lock held. */
void          _lsock_listener_close_impl        (LsockListener  *self);

G_END_DECLS
