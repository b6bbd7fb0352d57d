/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#if !defined (LSOCK_COMPILATION)
# error "private header"
#endif

#include <gio/gio.h>
#include <sys/types.h>

G_BEGIN_DECLS

/* Helpers shared by the Unix backends of LsockListener and LsockStream. */

/* A new AF_UNIX stream socket: close-on-exec, SIGPIPE suppressed where the
 * platform needs a socket option for it, and blocking unless @nonblocking. */
int       _lsock_unix_socket            (gboolean       nonblocking,
                                         GError       **error);
gboolean  _lsock_unix_set_nonblocking   (int            fd,
                                         gboolean       nonblocking);

/* Waits until @fd polls @condition: for ever if @timeout_ms is 0, not at all
 * if it is negative. Returns 1 when ready, 0 when the timeout elapsed, -1
 * with @error set when @cancellable was cancelled. */
int       _lsock_unix_wait              (int            fd,
                                         GIOCondition   condition,
                                         int            timeout_ms,
                                         GCancellable  *cancellable,
                                         GError       **error);

/* As _lsock_unix_wait(), also returning 1 once @wake_fd (if >= 0) is
 * readable */
int       _lsock_unix_wait_full         (int            fd,
                                         GIOCondition   condition,
                                         int            wake_fd,
                                         int            timeout_ms,
                                         GCancellable  *cancellable,
                                         GError       **error);

/* A source that dispatches when @fd polls @condition, or with condition 0
 * once @timeout_ms (if > 0) has elapsed. The callback is a
 * LsockUnixFdSourceFunc. Cancellation is the caller's business (add a child
 * cancellable source or use g_pollable_source_new_full()). */
typedef gboolean (*LsockUnixFdSourceFunc) (int          fd,
                                           GIOCondition condition,
                                           gpointer     user_data);
GSource  *_lsock_unix_fd_source_new     (int            fd,
                                         GIOCondition   condition,
                                         int            timeout_ms);
/* Makes the source call a plain GSourceFunc instead */
void      _lsock_unix_fd_source_set_plain_callback (GSource *source);
/* When the source's timeout elapses, *@flag is set to 1 (atomically) before
 * the callback runs: for sources whose callback is not ours. */
void      _lsock_unix_fd_source_set_timeout_flag (GSource *source,
                                         int           *flag);
/* @owner_free (@owner) runs when the source is finalized: for what keeps
 * the fd open */
void      _lsock_unix_fd_source_set_owner (GSource       *source,
                                         gpointer       owner,
                                         GDestroyNotify owner_free);

/* Peer credentials of a connected socket. */
gboolean  _lsock_unix_get_peer_ids      (int            fd,
                                         uid_t         *out_uid,
                                         gid_t         *out_gid,
                                         pid_t         *out_pid,
                                         GError       **error);
GCredentials *_lsock_unix_get_peer_credentials (int     fd,
                                         GError       **error);

/* Whether @dir is a real directory (not a symbolic link), owned by us and
 * inaccessible to anyone else. On FALSE, *@why (translated; or NULL with
 * *@errsv) says what is wrong. */
gboolean  _lsock_unix_check_private_dir (const char    *dir,
                                         const char   **why,
                                         int           *errsv);

/* Whether @fd is an AF_UNIX SOCK_STREAM socket, listening or connected as
 * @listening says: G_IO_ERROR_INVALID_ARGUMENT saying what it is not */
gboolean  _lsock_unix_check_stream_socket (int          fd,
                                         gboolean       listening,
                                         GError       **error);

/* flags for send(): MSG_NOSIGNAL where it exists */
#ifdef MSG_NOSIGNAL
# define LSOCK_SEND_FLAGS MSG_NOSIGNAL
#else
# define LSOCK_SEND_FLAGS 0
#endif

G_END_DECLS
