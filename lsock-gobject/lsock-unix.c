/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include "lsock-unix-private.h"
#include "lsock-i18n-private.h"

#include <glib/gstdio.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#ifdef HAVE_SYS_UCRED_H
# include <sys/ucred.h>
#endif

gboolean
_lsock_unix_set_nonblocking (int      fd,
                             gboolean nonblocking)
{
  int flags = fcntl (fd, F_GETFL);

  if (flags < 0)
    return FALSE;
  if (!!(flags & O_NONBLOCK) == !!nonblocking)
    return TRUE;
  flags = nonblocking ? (flags | O_NONBLOCK) : (flags & ~O_NONBLOCK);
  return fcntl (fd, F_SETFL, flags) == 0;
}

int
_lsock_unix_socket (gboolean   nonblocking,
                    GError   **error)
{
  int fd;
  int errsv;

#ifdef SOCK_CLOEXEC
  fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | (nonblocking ? SOCK_NONBLOCK : 0), 0);
#else
  /* macOS: no atomic close-on-exec; set it at once (a concurrent fork can
   * still leak it, which is the best this platform offers) */
  fd = socket (AF_UNIX, SOCK_STREAM, 0);
  if (fd >= 0)
    {
      fcntl (fd, F_SETFD, FD_CLOEXEC);
      if (nonblocking)
        _lsock_unix_set_nonblocking (fd, TRUE);
    }
#endif
  if (fd < 0)
    {
      errsv = errno;
      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errsv),
                   _("Could not create a socket: %s"), g_strerror (errsv));
      return -1;
    }

#if !defined (MSG_NOSIGNAL) && defined (SO_NOSIGPIPE)
  {
    int one = 1;
    setsockopt (fd, SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof one);
  }
#endif

  return fd;
}

int
_lsock_unix_wait (int            fd,
                  GIOCondition   condition,
                  int            timeout_ms,
                  GCancellable  *cancellable,
                  GError       **error)
{
  return _lsock_unix_wait_full (fd, condition, -1, timeout_ms, cancellable, error);
}

int
_lsock_unix_wait_full (int            fd,
                       GIOCondition   condition,
                       int            wake_fd,
                       int            timeout_ms,
                       GCancellable  *cancellable,
                       GError       **error)
{
  struct pollfd fds[3];
  GPollFD cancel_fd;
  gboolean have_cancel_fd;
  gint64 deadline = 0;
  int nfds = 1;
  int ret;

  if (g_cancellable_set_error_if_cancelled (cancellable, error))
    return -1;

  have_cancel_fd = g_cancellable_make_pollfd (cancellable, &cancel_fd);
  fds[0].fd = fd;
  fds[0].events = condition;
  fds[0].revents = 0;
  if (have_cancel_fd)
    {
      fds[1].fd = cancel_fd.fd;
      fds[1].events = POLLIN;
      fds[1].revents = 0;
      nfds = 2;
    }

  if (wake_fd >= 0)
    {
      fds[nfds].fd = wake_fd;
      fds[nfds].events = POLLIN;
      fds[nfds].revents = 0;
      nfds++;
    }

  if (timeout_ms > 0)
    deadline = g_get_monotonic_time () + (gint64) timeout_ms * 1000;

  for (;;)
    {
      int wait_ms = timeout_ms < 0 ? 0 : -1;

      if (timeout_ms > 0)
        {
          gint64 left = deadline - g_get_monotonic_time ();

          wait_ms = left <= 0 ? 0 : (int) ((left + 999) / 1000);
        }
      ret = poll (fds, nfds, wait_ms);
      if (ret < 0 && errno == EINTR)
        continue;
      break;
    }

  if (have_cancel_fd)
    g_cancellable_release_fd (cancellable);

  if (g_cancellable_set_error_if_cancelled (cancellable, error))
    return -1;
  if (ret == 0)
    return 0;
  /* ret < 0 (cannot happen with valid fds): let the caller's syscall report */
  return 1;
}

/* A source on one fd with an optional timeout. */
typedef struct
{
  GSource  source;
  gpointer tag;
  int      fd;
  int     *timeout_flag;
  gboolean plain_callback;
  gpointer owner;
  GDestroyNotify owner_free;
} LsockUnixFdSource;

static gboolean
fd_source_dispatch (GSource     *source,
                    GSourceFunc  callback,
                    gpointer     user_data)
{
  LsockUnixFdSource *fd_source = (LsockUnixFdSource *) source;
  LsockUnixFdSourceFunc func = (LsockUnixFdSourceFunc) (void (*) (void)) callback;
  GIOCondition condition = g_source_query_unix_fd (source, fd_source->tag);
  gint64 ready_time = g_source_get_ready_time (source);

  if (condition == 0 && ready_time >= 0 && g_source_get_time (source) < ready_time)
    return G_SOURCE_CONTINUE;  /* woken by something else */

  if (condition == 0 && ready_time >= 0 && fd_source->timeout_flag != NULL)
    g_atomic_int_set (fd_source->timeout_flag, 1);
  g_source_set_ready_time (source, -1);
  if (func == NULL)
    return G_SOURCE_REMOVE;
  if (fd_source->plain_callback)
    return callback (user_data);
  return func (fd_source->fd, condition, user_data);
}

/* Only g_source_set_dummy_callback() sets a closure on these private
 * sources (g_pollable_source_new_full() does, on its child) */
static gboolean
fd_source_closure_callback (int          fd,
                            GIOCondition condition,
                            gpointer     data)
{
  return G_SOURCE_CONTINUE;
}

static void
fd_source_finalize (GSource *source)
{
  LsockUnixFdSource *fd_source = (LsockUnixFdSource *) source;

  if (fd_source->owner_free != NULL)
    fd_source->owner_free (g_steal_pointer (&fd_source->owner));
}

static GSourceFuncs fd_source_funcs = {
  .dispatch = fd_source_dispatch,
  .finalize = fd_source_finalize,
  .closure_callback = (GSourceFunc) (void (*) (void)) fd_source_closure_callback,
};

GSource *
_lsock_unix_fd_source_new (int          fd,
                           GIOCondition condition,
                           int          timeout_ms)
{
  GSource *source = g_source_new (&fd_source_funcs, sizeof (LsockUnixFdSource));
  LsockUnixFdSource *fd_source = (LsockUnixFdSource *) source;

  g_source_set_static_name (source, "[lsock] fd source");
  fd_source->fd = fd;
  fd_source->tag = g_source_add_unix_fd (source, fd, condition);
  if (timeout_ms > 0)
    g_source_set_ready_time (source, g_get_monotonic_time () + (gint64) timeout_ms * 1000);

  return source;
}

void
_lsock_unix_fd_source_set_plain_callback (GSource *source)
{
  ((LsockUnixFdSource *) source)->plain_callback = TRUE;
}

void
_lsock_unix_fd_source_set_owner (GSource        *source,
                                 gpointer        owner,
                                 GDestroyNotify  owner_free)
{
  LsockUnixFdSource *fd_source = (LsockUnixFdSource *) source;

  fd_source->owner = owner;
  fd_source->owner_free = owner_free;
}

void
_lsock_unix_fd_source_set_timeout_flag (GSource *source,
                                        int     *flag)
{
  ((LsockUnixFdSource *) source)->timeout_flag = flag;
}

gboolean
_lsock_unix_get_peer_ids (int      fd,
                          uid_t   *out_uid,
                          gid_t   *out_gid,
                          pid_t   *out_pid,
                          GError **error)
{
  int errsv;

#if defined (SO_PEERCRED) && defined (__linux__)
  struct ucred cred;
  socklen_t len = sizeof cred;

  if (getsockopt (fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0)
    {
      *out_uid = cred.uid;
      *out_gid = cred.gid;
      *out_pid = cred.pid;
      return TRUE;
    }
#elif defined (SO_PEERCRED) && defined (__OpenBSD__)
  struct sockpeercred cred;
  socklen_t len = sizeof cred;

  if (getsockopt (fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0)
    {
      *out_uid = cred.uid;
      *out_gid = cred.gid;
      *out_pid = cred.pid;
      return TRUE;
    }
#elif defined (LOCAL_PEEREID)
  /* NetBSD */
  struct unpcbid cred;
  socklen_t len = sizeof cred;

  if (getsockopt (fd, 0, LOCAL_PEEREID, &cred, &len) == 0)
    {
      *out_uid = cred.unp_euid;
      *out_gid = cred.unp_egid;
      *out_pid = cred.unp_pid;
      return TRUE;
    }
#elif defined (LOCAL_PEERCRED)
  /* macOS, FreeBSD */
  struct xucred cred;
  socklen_t len = sizeof cred;

  if (getsockopt (fd, 0, LOCAL_PEERCRED, &cred, &len) == 0 &&
      cred.cr_version == XUCRED_VERSION)
    {
      *out_uid = cred.cr_uid;
      *out_gid = cred.cr_ngroups > 0 ? cred.cr_groups[0] : (gid_t) -1;
      *out_pid = 0;
# if defined (__FreeBSD__) && defined (XUCRED_HAS_PID)
      *out_pid = cred.cr_pid;
# elif defined (LOCAL_PEERPID)
      {
        pid_t pid;
        socklen_t pid_len = sizeof pid;

        if (getsockopt (fd, 0, LOCAL_PEERPID, &pid, &pid_len) == 0)
          *out_pid = pid;
      }
# endif
      return TRUE;
    }
#else
  if (getpeereid (fd, out_uid, out_gid) == 0)
    {
      *out_pid = 0;
      return TRUE;
    }
#endif

  errsv = errno;
  g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errsv),
               _("Could not read the peer’s credentials: %s"), g_strerror (errsv));
  return FALSE;
}

GCredentials *
_lsock_unix_get_peer_credentials (int      fd,
                                  GError **error)
{
  g_autoptr(GCredentials) credentials = g_credentials_new ();

#if defined (SO_PEERCRED) && defined (__linux__)
  struct ucred cred;
  socklen_t len = sizeof cred;

  if (getsockopt (fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0)
    {
      int errsv = errno;

      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errsv),
                   _("Could not read the peer’s credentials: %s"), g_strerror (errsv));
      return NULL;
    }
  g_credentials_set_native (credentials, G_CREDENTIALS_TYPE_LINUX_UCRED, &cred);
#else
  uid_t uid;
  gid_t gid;
  pid_t pid;

  if (!_lsock_unix_get_peer_ids (fd, &uid, &gid, &pid, error))
    return NULL;
  /* GCredentials has no portable setter for the pid and gid here */
  if (!g_credentials_set_unix_user (credentials, uid, error))
    return NULL;
#endif

  return g_steal_pointer (&credentials);
}

/* Whether @dir is a real directory (not a symbolic link), owned by us and
 * inaccessible to anyone else. On FALSE, @why says what is wrong, for an
 * error message. */
gboolean
_lsock_unix_check_private_dir (const char   *dir,
                               const char  **why,
                               int          *errsv)
{
  GStatBuf st;

  *errsv = 0;
  if (g_lstat (dir, &st) != 0)
    {
      *errsv = errno;
      *why = NULL;
      return FALSE;
    }

  if (S_ISLNK (st.st_mode))
    {
      *why = _("it is a symbolic link");
      return FALSE;
    }

  if (!S_ISDIR (st.st_mode))
    {
      *why = _("it is not a directory");
      return FALSE;
    }

  if (st.st_uid != geteuid ())
    {
      *why = _("it is owned by another user");
      return FALSE;
    }

  if ((st.st_mode & 077) != 0)
    {
      *why = _("other users can access it (its mode must be 0700)");
      return FALSE;
    }

  return TRUE;
}
