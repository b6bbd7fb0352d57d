/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include "lsock-listener-private.h"
#include "lsock-name-private.h"
#include "lsock-stream-private.h"
#include "lsock-unix-private.h"
#include "lsock-unix-conn-private.h"
#include "lsock-i18n-private.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

/*
 * Binding a socket file, safely.
 *
 * On Linux, the socket is given its mode with fchmod() before bind(), and
 * Linux creates the file with the socket's mode less the umask: the file is
 * never wider than asked for, not even for a moment. It is then chmod()ed to
 * the exact mode (a umask could only have narrowed it) before listen(), so
 * nobody can connect before that.
 *
 * A socket refuses connections between bind() and listen(), which another
 * starter's probe would take for a stale file. So every bind of a path, and
 * every probe-and-replace, happens under an flock() on the directory, and
 * the bind-chmod-listen sequence completes before the lock is released: two
 * listeners racing for one name are serialised, the second finds the first
 * live, and nobody ever removes a live socket.
 *
 * If the path is taken, it is probed: lstat() says whether it is a socket and
 * whose, and a connect() says whether anybody listens. Only a stale socket of
 * our own is removed and bound again. The probe's connection reaches a live
 * listener as a peer that closes at once: the price of asking.
 *
 * Elsewhere (macOS, the BSDs) the socket's own mode does not carry over to
 * the file. There the socket is bound at a random temporary name next to the
 * final path, given its mode and made to listen, and only then published at
 * the final path with a rename that never replaces anything (link(), which
 * fails if the path exists). A stale file of ours is replaced by an atomic
 * rename over it, under the directory lock, after probing again. The
 * socket's own address (getpeername()) is then the temporary name.
 */

/* Tests set this on Linux to exercise the macOS/BSD route */
int _lsock_listener_publish_by_rename = 0;

/* self->backend: the listening socket. Under the listener's lock, but
 * fd_nonblocking (atomic). */
typedef struct
{
  int      fd;                 /* -1 once closed */
  /* Accepts running in any thread. close() only shuts the socket down
   * while there are some (which wakes them), and the last one out closes
   * it, so that the fd number cannot be reused under them. */
  int      accepts_in_flight;
  int      zombie_fd;
  /* The inode bound, for reclaim-name */
  guint64  bound_dev;
  guint64  bound_ino;
  /* The uid that LSOCK_ACCESS_USER admits: the listener's owner */
  uid_t    owner_uid;
  /* Whether the socket is non-blocking now: set once, for good */
  int      fd_nonblocking;
} ListenerUnix;

#define SUN_PATH_MAX (sizeof (((struct sockaddr_un *) 0)->sun_path) - 1)
#define TMP_NAME_RANDOM_MIN 6
#define TMP_NAME_RANDOM_MAX 12
#define LOCK_WAIT_MAX_MS 10000

typedef enum {
  PROBE_GONE,        /* nothing at the path */
  PROBE_LIVE,        /* somebody listens */
  PROBE_STALE,       /* our socket, nobody listens */
  PROBE_FOREIGN,     /* another user's socket that nobody answers */
  PROBE_NOT_SOCKET,  /* a file that is not a socket */
  PROBE_ERROR,       /* lstat/connect failed otherwise; errno in *out_errno */
} ProbeResult;

static void
set_listen_error (LsockListener  *self,
                  int             errsv,
                  GError        **error)
{
  int code = g_io_error_from_errno (errsv);

  if (errsv == EACCES || errsv == EPERM || errsv == EROFS)
    code = G_IO_ERROR_PERMISSION_DENIED;
  else if (errsv == EADDRINUSE)
    code = G_IO_ERROR_ADDRESS_IN_USE;

  g_set_error (error, G_IO_ERROR, code,
               _("Could not listen on “%s”: %s"),
               _lsock_name_get_display (self->name), g_strerror (errsv));
}

static void
set_probe_error (LsockListener  *self,
                 ProbeResult     result,
                 int             errsv,
                 GError        **error)
{
  const char *display = _lsock_name_get_display (self->name);

  switch (result)
    {
    case PROBE_LIVE:
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_ADDRESS_IN_USE,
                   _("Could not listen on “%s”: another listener is using this name"),
                   display);
      break;

    case PROBE_STALE:
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_ADDRESS_IN_USE,
                   _("Could not listen on “%s”: a stale socket file is in the way "
                     "and replacing stale files is turned off"),
                   display);
      break;

    case PROBE_FOREIGN:
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_ADDRESS_IN_USE,
                   _("Could not listen on “%s”: a socket file of another user is in the way"),
                   display);
      break;

    case PROBE_NOT_SOCKET:
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_EXISTS,
                   _("Could not listen on “%s”: a file that is not a socket is in the way"),
                   display);
      break;

    case PROBE_GONE:
    case PROBE_ERROR:
    default:
      set_listen_error (self, errsv, error);
      break;
    }
}

/* What is at @path? Connects to it without blocking, so a live listener
 * with a full backlog also counts as live. */
static ProbeResult
probe_path (const char *path,
            int        *out_errno)
{
  struct sockaddr_un addr = { .sun_family = AF_UNIX };
  struct stat st;
  int fd;
  int ret;
  int errsv;

  if (lstat (path, &st) != 0)
    {
      *out_errno = errno;
      return *out_errno == ENOENT ? PROBE_GONE : PROBE_ERROR;
    }
  if (!S_ISSOCK (st.st_mode))
    return PROBE_NOT_SOCKET;

  fd = _lsock_unix_socket (TRUE, NULL);
  if (fd < 0)
    {
      *out_errno = errno;
      return PROBE_ERROR;
    }
  memcpy (addr.sun_path, path, strlen (path) + 1);
  do
    ret = connect (fd, (struct sockaddr *) &addr, sizeof addr);
  while (ret != 0 && errno == EINTR);
  errsv = errno;
  close (fd);

  if (ret == 0)
    return PROBE_LIVE;

  switch (errsv)
    {
    case EAGAIN:       /* Linux: backlog full */
    case EINPROGRESS:  /* elsewhere */
      return PROBE_LIVE;
    case ENOENT:
      return PROBE_GONE;
    case ECONNREFUSED:
      return st.st_uid == geteuid () ? PROBE_STALE : PROBE_FOREIGN;
    case EACCES:
    case EPERM:
      if (st.st_uid != geteuid ())
        return PROBE_FOREIGN;
      G_GNUC_FALLTHROUGH;
    default:
      *out_errno = errsv;
      return PROBE_ERROR;
    }
}

/* Takes an exclusive flock() on @dir, waiting (cancellably, and at most
 * LOCK_WAIT_MAX_MS) for other listeners. Returns the locked fd or -1. */
static int
lock_directory (LsockListener  *self,
                const char     *dir,
                GCancellable   *cancellable,
                GError        **error)
{
  gint64 deadline = g_get_monotonic_time () + LOCK_WAIT_MAX_MS * G_TIME_SPAN_MILLISECOND;
  int pause_ms = 1;
  int fd;

  fd = open (dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    {
      set_listen_error (self, errno, error);
      return -1;
    }

  while (flock (fd, LOCK_EX | LOCK_NB) != 0)
    {
      int errsv = errno;

      if (errsv == EINTR)
        continue;
      if (errsv != EWOULDBLOCK)
        {
          close (fd);
          set_listen_error (self, errsv, error);
          return -1;
        }
      if (g_get_monotonic_time () >= deadline)
        {
          close (fd);
          g_set_error (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
                       _("Could not listen on “%s”: timed out waiting for another listener "
                         "to finish starting"),
                       _lsock_name_get_display (self->name));
          return -1;
        }
      /* Another starter holds the lock for the few system calls it takes
       * to publish its socket; wait with the cancellable beside us */
      if (cancellable != NULL)
        {
          GPollFD pollfd;

          if (g_cancellable_make_pollfd (cancellable, &pollfd))
            {
              g_poll (&pollfd, 1, pause_ms);
              g_cancellable_release_fd (cancellable);
            }
          if (g_cancellable_set_error_if_cancelled (cancellable, error))
            {
              close (fd);
              return -1;
            }
        }
      else
        g_usleep (pause_ms * 1000);
      pause_ms = MIN (pause_ms * 2, 50);
    }

  return fd;
}

static void
unlock_directory (int fd)
{
  if (fd >= 0)
    close (fd);  /* releases the flock */
}

static gboolean
publish_noreplace (const char *tmp_path,
                   const char *path,
                   int        *out_errno)
{
#ifdef HAVE_RENAMEAT2
  if (renameat2 (AT_FDCWD, tmp_path, AT_FDCWD, path, RENAME_NOREPLACE) == 0)
    return TRUE;
  *out_errno = errno;
  if (*out_errno != EINVAL && *out_errno != ENOSYS && *out_errno != ENOTSUP)
    return FALSE;
  /* The file system cannot do it: hard links can */
#endif
  if (link (tmp_path, path) != 0)
    {
      *out_errno = errno;
      return FALSE;
    }
  unlink (tmp_path);
  return TRUE;
}

static char *
make_tmp_path (const char *dir,
               gsize       n_random)
{
  static const char chars[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  GString *s = g_string_new (dir);

  if (s->len == 0 || s->str[s->len - 1] != '/')
    g_string_append_c (s, '/');
  g_string_append_c (s, '.');
  for (gsize i = 0; i < n_random; i++)
    g_string_append_c (s, chars[g_random_int_range (0, sizeof chars - 1)]);

  return g_string_free (s, FALSE);
}

static gboolean
bind_to (int         fd,
         const char *path,
         int        *out_errno)
{
  struct sockaddr_un addr = { .sun_family = AF_UNIX };
  gsize len = strlen (path);

  g_assert (len <= SUN_PATH_MAX);
  memcpy (addr.sun_path, path, len + 1);
  if (bind (fd, (struct sockaddr *) &addr, offsetof (struct sockaddr_un, sun_path) + len + 1) != 0)
    {
      *out_errno = errno;
      return FALSE;
    }
  return TRUE;
}

static gboolean
record_inode (ListenerUnix *backend,
              const char   *path)
{
  struct stat st;

  if (lstat (path, &st) != 0)
    return FALSE;
  backend->bound_dev = st.st_dev;
  backend->bound_ino = st.st_ino;
  return TRUE;
}

static mode_t
socket_mode (LsockListener *self)
{
  return self->access == LSOCK_ACCESS_EVERYONE ? 0666 : 0600;
}

/* Binds at a temporary name, listens, then publishes at @path. */
static gboolean
bind_path_via_tmp (LsockListener  *self,
                   ListenerUnix   *backend,
                   int             fd,
                   const char     *path,
                   const char     *dir,
                   gsize           n_random,
                   GCancellable   *cancellable,
                   GError        **error)
{
  g_autofree char *tmp_path = NULL;
  int errsv = 0;
  int lock_fd = -1;
  gboolean ok = FALSE;

  for (int attempt = 0; ; attempt++)
    {
      g_clear_pointer (&tmp_path, g_free);
      tmp_path = make_tmp_path (dir, n_random);
      if (bind_to (fd, tmp_path, &errsv))
        break;
      if (errsv != EADDRINUSE || attempt == 16)
        {
          set_listen_error (self, errsv, error);
          return FALSE;
        }
    }

  if (chmod (tmp_path, socket_mode (self)) != 0 ||
      listen (fd, self->backlog) != 0)
    {
      set_listen_error (self, errno, error);
      goto out;
    }

  for (int attempt = 0; attempt < 8; attempt++)
    {
      ProbeResult probe;

      if (publish_noreplace (tmp_path, path, &errsv))
        {
          ok = TRUE;
          goto out;
        }
      if (errsv != EEXIST)
        {
          set_listen_error (self, errsv, error);
          goto out;
        }

      probe = probe_path (path, &errsv);
      if (probe == PROBE_GONE)
        continue;  /* removed meanwhile: publish again */
      if (probe != PROBE_STALE || !self->replace_stale)
        {
          set_probe_error (self, probe, errsv, error);
          goto out;
        }

      /* Stale and ours: replace it, serialised with other starters */
      lock_fd = lock_directory (self, dir, cancellable, error);
      if (lock_fd < 0)
        goto out;
      probe = probe_path (path, &errsv);
      if (probe == PROBE_STALE)
        {
          if (rename (tmp_path, path) != 0)
            set_listen_error (self, errno, error);
          else
            ok = TRUE;
          goto out;
        }
      unlock_directory (g_steal_fd (&lock_fd));
      if (probe != PROBE_GONE)
        {
          set_probe_error (self, probe, errsv, error);
          goto out;
        }
    }
  set_listen_error (self, EADDRINUSE, error);

out:
  if (ok)
    {
      ok = record_inode (backend, path);
      if (!ok)
        set_listen_error (self, errno, error);
    }
  if (!ok)
    unlink (tmp_path);
  unlock_directory (lock_fd);
  return ok;
}

/* The fallback for paths too long for a temporary name beside them */
static gboolean
bind_path_direct (LsockListener  *self,
                  ListenerUnix   *backend,
                  int             fd,
                  const char     *path,
                  const char     *dir,
                  GCancellable   *cancellable,
                  GError        **error)
{
  int lock_fd;
  int errsv = 0;
  gboolean ok = FALSE;

  lock_fd = lock_directory (self, dir, cancellable, error);
  if (lock_fd < 0)
    return FALSE;

  /* Linux creates the socket file with the socket's own mode less the
   * umask: narrow it before bind, so the file is never wider */
  fchmod (fd, socket_mode (self));

  while (!bind_to (fd, path, &errsv))
    {
      ProbeResult probe;

      if (errsv != EADDRINUSE)
        {
          set_listen_error (self, errsv, error);
          goto out;
        }
      probe = probe_path (path, &errsv);
      if (probe == PROBE_GONE)
        continue;
      if (probe != PROBE_STALE || !self->replace_stale)
        {
          set_probe_error (self, probe, errsv, error);
          goto out;
        }
      if (unlink (path) != 0 && errno != ENOENT)
        {
          set_listen_error (self, errno, error);
          goto out;
        }
    }

  if (chmod (path, socket_mode (self)) != 0 ||
      listen (fd, self->backlog) != 0 ||
      !record_inode (backend, path))
    {
      set_listen_error (self, errno, error);
      unlink (path);
      goto out;
    }
  ok = TRUE;

out:
  unlock_directory (lock_fd);
  return ok;
}

static gboolean
bind_path (LsockListener  *self,
           ListenerUnix   *backend,
           int             fd,
           GCancellable   *cancellable,
           GError        **error)
{
  const char *path = lsock_name_get_name (self->name);
  g_autofree char *dir = g_path_get_dirname (path);
  gsize dir_len = strlen (dir);
  gsize room;

#ifdef __linux__
  /* Linux gives the new file the socket's own mode (less the umask), so
   * binding in place has no moment of wider permissions either, and keeps
   * the real path as the socket's address (getpeername(), ss -x) */
  if (!g_atomic_int_get (&_lsock_listener_publish_by_rename))
    return bind_path_direct (self, backend, fd, path, dir, cancellable, error);
#endif

  /* Room for "<dir>/.<random>" in sun_path */
  room = SUN_PATH_MAX > dir_len + 2 ? SUN_PATH_MAX - dir_len - 2 : 0;
  if (room >= TMP_NAME_RANDOM_MIN)
    return bind_path_via_tmp (self, backend, fd, path, dir, MIN (room, TMP_NAME_RANDOM_MAX),
                              cancellable, error);
  else
    return bind_path_direct (self, backend, fd, path, dir, cancellable, error);
}

static gboolean
bind_namespaced (LsockListener  *self,
                 int             fd,
                 GError        **error)
{
  struct sockaddr_un addr;
  socklen_t len = _lsock_name_to_sockaddr (self->name, &addr);

  if (bind (fd, (struct sockaddr *) &addr, len) != 0)
    {
      if (errno == EADDRINUSE)
        set_probe_error (self, PROBE_LIVE, 0, error);
      else
        set_listen_error (self, errno, error);
      return FALSE;
    }
  if (listen (fd, self->backlog) != 0)
    {
      set_listen_error (self, errno, error);
      return FALSE;
    }
  return TRUE;
}

gboolean
_lsock_listener_bind_impl (LsockListener  *self,
                           GCancellable   *cancellable,
                           GError        **error)
{
  ListenerUnix *backend;
  int fd;
  gboolean ok;

  if (g_cancellable_set_error_if_cancelled (cancellable, error))
    return FALSE;

  /* Blocking until something polls it: see accept_impl() */
  fd = _lsock_unix_socket (FALSE, error);
  if (fd < 0)
    return FALSE;

  backend = g_new0 (ListenerUnix, 1);
  backend->zombie_fd = -1;
  if (lsock_name_get_kind (self->name) == LSOCK_NAME_KIND_PATH)
    ok = bind_path (self, backend, fd, cancellable, error);
  else
    ok = bind_namespaced (self, fd, error);

  if (!ok)
    {
      close (fd);
      g_free (backend);
      return FALSE;
    }

  backend->fd = fd;
  /* USER admits this uid: the one that owns the listener (and its file) */
  backend->owner_uid = geteuid ();
  self->backend = backend;
  return TRUE;
}

/* Whether @access admits the peer on @fd */
static gboolean
peer_admitted (LsockListener *self,
               ListenerUnix  *backend,
               int            fd)
{
  uid_t uid;
  gid_t gid;
  pid_t pid;
  g_autoptr(GError) error = NULL;

  if (self->access == LSOCK_ACCESS_EVERYONE)
    return TRUE;

  if (!_lsock_unix_get_peer_ids (fd, &uid, &gid, &pid, &error))
    {
      g_debug ("Refusing a peer on “%s”: %s", _lsock_name_get_display (self->name),
               error->message);
      return FALSE;
    }
  if (uid != backend->owner_uid)
    {
      g_debug ("Refusing a peer on “%s”: uid %u (pid %d) is not ours",
               _lsock_name_get_display (self->name), (guint) uid, (int) pid);
      return FALSE;
    }
  return TRUE;
}

static int
accept_one (int listen_fd)
{
#ifdef HAVE_ACCEPT4
  return accept4 (listen_fd, NULL, NULL, SOCK_CLOEXEC);
#else
  int fd = accept (listen_fd, NULL, NULL);

  if (fd >= 0)
    {
      fcntl (fd, F_SETFD, FD_CLOEXEC);
      /* BSD: the accepted socket inherits O_NONBLOCK */
      _lsock_unix_set_nonblocking (fd, FALSE);
# if !defined (MSG_NOSIGNAL) && defined (SO_NOSIGPIPE)
      {
        int one = 1;
        setsockopt (fd, SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof one);
      }
# endif
    }
  return fd;
#endif
}

/* Makes the listening socket non-blocking, for good: once anything may
 * poll it (a source, a cancellable accept), an accept() must never block.
 * A blocking accept() already sleeping in another thread is not affected,
 * and a peer it takes makes the poller's accept() fail with EAGAIN, which
 * the loop below takes in its stride. */
static gboolean
listener_set_nonblocking (LsockListener  *self,
                          ListenerUnix   *backend,
                          int             listen_fd,
                          GError        **error)
{
  int errsv;

  if (g_atomic_int_get (&backend->fd_nonblocking))
    return TRUE;
  if (!_lsock_unix_set_nonblocking (listen_fd, TRUE))
    {
      errsv = errno;
      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errsv),
                   _("Could not accept a connection on “%s”: %s"),
                   _lsock_name_get_display (self->name), g_strerror (errsv));
      return FALSE;
    }
  g_atomic_int_set (&backend->fd_nonblocking, TRUE);
  return TRUE;
}

static LsockStream *accept_once (LsockListener  *self,
                                 ListenerUnix   *backend,
                                 int             listen_fd,
                                 LsockAcceptMode mode,
                                 GCancellable   *cancellable,
                                 GError        **error);

LsockStream *
_lsock_listener_accept_impl (LsockListener  *self,
                             LsockAcceptMode mode,
                             GCancellable   *cancellable,
                             GError        **error)
{
  ListenerUnix *backend;
  LsockStream *stream;
  int listen_fd = -1;

  g_mutex_lock (&self->lock);
  backend = self->backend;
  if (!self->closed && backend != NULL)
    {
      listen_fd = backend->fd;
      backend->accepts_in_flight++;
    }
  g_mutex_unlock (&self->lock);

  if (listen_fd < 0)
    {
      _lsock_listener_set_closed_error (self, error);
      return NULL;
    }

  stream = accept_once (self, backend, listen_fd, mode, cancellable, error);

  g_mutex_lock (&self->lock);
  if (--backend->accepts_in_flight == 0 && backend->zombie_fd >= 0)
    close (g_steal_fd (&backend->zombie_fd));
  if (self->closed && self->backend == NULL && backend->accepts_in_flight == 0)
    g_free (backend);
  g_mutex_unlock (&self->lock);

  return stream;
}

static gboolean
listener_closed (LsockListener *self)
{
  gboolean closed;

  g_mutex_lock (&self->lock);
  closed = self->closed;
  g_mutex_unlock (&self->lock);
  return closed;
}

/* Waits (as @mode says) for a peer and accepts it: a stream, NULL with no
 * error for a peer refused, or NULL with the error */
static LsockStream *
accept_once (LsockListener  *self,
             ListenerUnix   *backend,
             int             listen_fd,
             LsockAcceptMode mode,
             GCancellable   *cancellable,
             GError        **error)
{
  gboolean blocking = mode == LSOCK_ACCEPT_BLOCKING;
  /* A source just polled the socket for us: the first try needs no poll() */
  gboolean polled = mode == LSOCK_ACCEPT_READY;

  for (;;)
    {
      int fd;
      int errsv;
      int ready;

      /* A plain blocking accept (no cancellable) on a socket that nothing
       * watches from a main context: the socket is still blocking, so
       * this is one accept(), as in a classic accept loop. close() in
       * another thread wakes it (shutdown()). */
      if (polled ||
          (blocking && cancellable == NULL && !g_atomic_int_get (&backend->fd_nonblocking)))
        ready = 1;
      else
        {
          /* Otherwise the socket is non-blocking. accept() makes the new
           * socket (an inode) before it looks at the queue and frees it
           * again when nobody is waiting: that costs ten times a poll()
           * (6 µs against 0.5 µs here). So poll() first, and call
           * accept() only when a peer is queued; a blocking accept waits
           * in poll(), cancellably. */
          if (!listener_set_nonblocking (self, backend, listen_fd, error))
            return NULL;
          ready = _lsock_unix_wait (listen_fd, G_IO_IN, blocking ? 0 : -1, cancellable, error);
        }
      if (ready < 0)
        return NULL;
      if (ready == 0)
        {
          g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK,
                               g_strerror (EAGAIN));
          return NULL;
        }
      polled = FALSE;

      fd = accept_one (listen_fd);
      if (fd >= 0)
        {
          if (peer_admitted (self, backend, fd))
            return _lsock_stream_new (self->name, _lsock_unix_conn_new (fd));
          close (fd);
          return NULL;
        }

      errsv = errno;
      switch (errsv)
        {
        case EINTR:
        case ECONNABORTED:  /* the peer gave up while queued */
        case EPROTO:
          continue;

        case EAGAIN:
#if EWOULDBLOCK != EAGAIN
        case EWOULDBLOCK:
#endif
        case EINVAL:
          /* Another thread took the peer; or close() in another thread
           * shut the socket down, which makes poll() say readable and
           * accept() fail with EINVAL */
          if (listener_closed (self))
            {
              _lsock_listener_set_closed_error (self, error);
              return NULL;
            }
          if (errsv != EINVAL)
            {
              if (!blocking)
                {
                  g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK,
                                       g_strerror (EAGAIN));
                  return NULL;
                }
              continue;
            }
          G_GNUC_FALLTHROUGH;

        default:
          g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errsv),
                       _("Could not accept a connection on “%s”: %s"),
                       _lsock_name_get_display (self->name), g_strerror (errsv));
          return NULL;
        }
    }
}

int
_lsock_listener_unix_peek_fd (LsockListener *self)
{
  ListenerUnix *backend;
  int fd;

  g_mutex_lock (&self->lock);
  backend = self->backend;
  fd = backend != NULL ? backend->fd : -1;
  g_mutex_unlock (&self->lock);
  return fd;
}

guint64
_lsock_listener_unix_peek_bound_ino (LsockListener *self)
{
  ListenerUnix *backend;
  guint64 ino;

  g_mutex_lock (&self->lock);
  backend = self->backend;
  ino = backend != NULL ? backend->bound_ino : 0;
  g_mutex_unlock (&self->lock);
  return ino;
}

GSource *
_lsock_listener_create_source_impl (LsockListener *self)
{
  ListenerUnix *backend = self->backend;
  GSource *source;

  /* Cannot fail on a valid socket; if it did, accepts from the source
   * would report it */
  listener_set_nonblocking (self, backend, backend->fd, NULL);
  source = _lsock_unix_fd_source_new (backend->fd, G_IO_IN, 0);

  _lsock_unix_fd_source_set_plain_callback (source);
  return source;
}

void
_lsock_listener_close_impl (LsockListener *self)
{
  ListenerUnix *backend = g_steal_pointer (&self->backend);
  int fd = g_steal_fd (&backend->fd);

  /* Remove the file only if it is still the one we bound (a successor may
   * have replaced it), and before closing, so that nobody can see it stale
   * and replace it in between */
  if (self->reclaim_name && lsock_name_get_kind (self->name) == LSOCK_NAME_KIND_PATH)
    {
      const char *path = lsock_name_get_name (self->name);
      struct stat st;

      if (lstat (path, &st) == 0 && S_ISSOCK (st.st_mode) &&
          (guint64) st.st_dev == backend->bound_dev && (guint64) st.st_ino == backend->bound_ino)
        unlink (path);
    }

  /* Wake accepts blocked in other threads; the last of them closes the fd
   * and frees the backend */
  shutdown (fd, SHUT_RDWR);
  if (backend->accepts_in_flight > 0)
    backend->zombie_fd = fd;
  else
    {
      close (fd);
      g_free (backend);
    }
}
