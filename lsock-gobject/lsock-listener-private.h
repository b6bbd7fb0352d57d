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
  /* A descriptor to adopt at init instead of binding (-1: none), and its
   * index in the socket activation table if it came from there (-1) */
  int           adopt_fd;
  int           adopt_index;

  /* Guards everything below: sync accepts run in any thread, close() and
   * accept_async() may come from any thread */
  GMutex        lock;
  guint         reclaim_name : 1;
  guint         initialized : 1;  /* bound: GInitable.init succeeded */
  guint         closed : 1;
  /* The platform's listening socket or pipes (the backend's own struct,
   * made by _lsock_listener_bind_impl(), released by close_impl()) */
  gpointer      backend;

  /* accept_async() calls waiting for a peer, oldest first, and the sources
   * that serve them, one per main context they came from */
  GQueue        pending;          /* AcceptWait* */
  GSList       *accept_sources;   /* AcceptSource* */

  /* start() … stop(): the incoming service and its back-off timer. While
   * it runs, the listener holds a reference on itself, and what the
   * connections' async I/O will need in its context
   * (_lsock_io_hold_context_impl()). */
  GMainContext *incoming_context;
  gpointer      incoming_io_hold;
  GSource      *incoming_source;
  GSource      *backoff_source;
  guint         backoff_ms;
};

#ifndef G_OS_WIN32
/* Non-zero: bind socket files at a temporary name and rename them into
 * place, as on macOS and the BSDs, also on Linux (for tests) */
extern int _lsock_listener_publish_by_rename;
/* For tests: the listening socket (-1 once closed), and the inode of the
 * socket file it bound */
int           _lsock_listener_unix_peek_fd      (LsockListener  *self);
guint64       _lsock_listener_unix_peek_bound_ino (LsockListener *self);
#endif

void          _lsock_listener_set_closed_error  (LsockListener  *self,
                                                 GError        **error);
/* For tests: how many sources serve accept_async() calls now */
guint         _lsock_listener_count_accept_sources (LsockListener *self);

/* Backend hooks (lsock-listener-unix.c / lsock-listener-win32.c) */

/* Binds and listens, setting self->backend. Called with the lock held,
 * once at a time. */
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

/* Adoption: the name of a listening socket, validated
 * (G_IO_ERROR_INVALID_ARGUMENT; NOT_SUPPORTED on Windows) */
LsockName    *_lsock_listener_name_of_fd_impl   (int             fd,
                                                 GError        **error);
/* Socket activation (lsock-unix-activation-private.h on Unix;
 * G_IO_ERROR_NOT_SUPPORTED on Windows) */
int           _lsock_listener_borrow_activated_impl (const char *fd_name,
                                                 int            *out_index,
                                                 GError        **error);
void          _lsock_listener_give_back_activated_impl (int      index);
void          _lsock_listener_set_keep_activation_environment_impl (gboolean keep);
gboolean      _lsock_listener_is_adopted_impl   (LsockListener  *self);

/* One accept, without the lock. A peer that the access check refuses is
 * closed: then this returns NULL with no error and *@out_rejected set to
 * its credentials (a new GCredentials, or NULL if they could not be read),
 * and the caller may try again, counting it against its budget.
 * G_IO_ERROR_CLOSED once the listener is closed, also in another thread
 * meanwhile. */
LsockStream  *_lsock_listener_accept_impl       (LsockListener  *self,
                                                 LsockAcceptMode mode,
                                                 GCancellable   *cancellable,
                                                 GCredentials  **out_rejected,
                                                 GError        **error);
/* A source that dispatches when a peer may be waiting; its callback is a
 * GSourceFunc. With the lock held, listener open. */
GSource      *_lsock_listener_create_source_impl (LsockListener *self);
/* Removes the name (if reclaim-name and it is still ours) and releases the
 * socket/pipes, waking accepts blocked in other threads. Called once, with
 * the lock held. */
void          _lsock_listener_close_impl        (LsockListener  *self);

G_END_DECLS
