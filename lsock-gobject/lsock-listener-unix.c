/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include "lsock-listener-private.h"
#include "lsock-name-private.h"
#include "lsock-stream-private.h"
#include "lsock-unix-private.h"
#include "lsock-unix-conn-private.h"
#include "lsock-unix-socket-file-private.h"
#include "lsock-unix-activation-private.h"
#include "lsock-i18n-private.h"

#include <errno.h>
#include <fcntl.h>
#include <glib-unix.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

/*
 * Binding a socket file, safely.
 *
 * The directory is opened first, and the file is only ever touched
 * relative to it, once known to be ours (lsock-unix-socket-file.c): no
 * symbolic link or file swapped in by someone who can write the directory
 * is ever followed, changed or removed.
 *
 * On Linux, the socket is given its mode with fchmod() before bind(), and
 * Linux creates the file with the socket's mode less the umask: the file is
 * never wider than asked for, not even for a moment. It is then given the
 * exact mode (a umask could only have narrowed it), through the file the
 * kernel says the socket is bound to, before listen(), so nobody can
 * connect before that.
 *
 * A socket refuses connections between bind() and listen(), which another
 * starter's probe would take for a stale file. So every bind of a path,
 * and every probe-and-replace, happens under a lock, and the
 * bind-chmod-listen sequence completes before it is released: two
 * listeners racing for one name are serialised, the second finds the
 * first live, and nobody ever removes a live socket. The lock is a file
 * in a directory of this user's alone: no other user can take it, and a
 * starter waits only for starters of its own user, for a few system
 * calls.
 *
 * If the path is taken, it is probed: whether it is a socket and whose, and
 * whether anybody listens on that very file. Only a stale socket of our own
 * is removed and bound again. The probe's connection reaches a live
 * listener as a peer that closes at once: the price of asking.
 *
 * Elsewhere (macOS, the BSDs) the socket's own mode does not carry over to
 * the file. There the socket is bound at a random temporary name next to the
 * final path, given its mode and made to listen, and only then published at
 * the final path with a rename that never replaces anything. A stale file
 * of ours is replaced by an atomic rename over it, under the lock, after
 * probing again. The socket's own address (getpeername()) is then the
 * temporary name.
 */

/* Tests set this on Linux to exercise the macOS/BSD route */
int _lsock_listener_publish_by_rename = 0;

/* self->backend: the listening socket. Under the listener's lock, but
 * fd_nonblocking (atomic). */
typedef struct
{
  int              fd;                 /* -1 once closed */
  /* Accepts running in any thread. close() only shuts the socket down
   * while there are some (which wakes them), and the last one out closes
   * it, so that the fd number cannot be reused under them. */
  int              accepts_in_flight;
  int              zombie_fd;
  /* A path name's file and its directory, for reclaim-name */
  gboolean         has_file;
  LsockSocketFile  file;
  /* The uid that LSOCK_ACCESS_USER admits: the listener's owner */
  uid_t            owner_uid;
  /* Whether the socket is non-blocking now: set once, for good */
  int              fd_nonblocking;
  /* A socket this listener did not make (lsock_listener_new_from_fd(),
   * socket activation): never shut down, since others may share it, so
   * close() wakes accepts in other threads with a pipe instead */
  gboolean         adopted;
  int              activation_index;  /* borrowed from the table, or -1 */
  int              wake_fds[2];
} ListenerUnix;

#define SUN_PATH_MAX (sizeof (((struct sockaddr_un *) 0)->sun_path) - 1)
#define TMP_NAME_RANDOM_MIN 6
#define TMP_NAME_RANDOM_MAX 12

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
set_probe_error (LsockListener    *self,
                 LsockProbeResult  result,
                 int               errsv,
                 GError          **error)
{
  const char *display = _lsock_name_get_display (self->name);

  switch (result)
    {
    case LSOCK_PROBE_LIVE:
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_ADDRESS_IN_USE,
                   _("Could not listen on “%s”: another listener is using this name"),
                   display);
      break;

    case LSOCK_PROBE_STALE:
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_ADDRESS_IN_USE,
                   _("Could not listen on “%s”: a stale socket file is in the way "
                     "and replacing stale files is turned off"),
                   display);
      break;

    case LSOCK_PROBE_FOREIGN:
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_ADDRESS_IN_USE,
                   _("Could not listen on “%s”: a socket file of another user is in the way"),
                   display);
      break;

    case LSOCK_PROBE_NOT_SOCKET:
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_EXISTS,
                   _("Could not listen on “%s”: a file that is not a socket is in the way"),
                   display);
      break;

    case LSOCK_PROBE_GONE:
    case LSOCK_PROBE_ERROR:
    default:
      set_listen_error (self, errsv, error);
      break;
    }
}

/* After bind(), the file at the name was not the one bound */
static void
set_adopt_error (LsockListener  *self,
                 int             errsv,
                 GError        **error)
{
  if (errsv == EEXIST)
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_EXISTS,
                 _("Could not listen on “%s”: the socket file was replaced while it was being made"),
                 _lsock_name_get_display (self->name));
  else
    set_listen_error (self, errsv, error);
}

static char *
make_tmp_name (gsize n_random)
{
  static const char chars[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  GString *s = g_string_new (".");

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
  if (G_UNLIKELY (_lsock_socket_file_after_bind_for_testing != NULL))
    _lsock_socket_file_after_bind_for_testing (path);
  return TRUE;
}

static mode_t
socket_mode (LsockListener *self)
{
  return self->access == LSOCK_ACCESS_EVERYONE ? 0666 : 0600;
}

static void
unlock (int lock_fd)
{
  if (lock_fd >= 0)
    close (lock_fd);  /* releases the flock */
}

/* Binds at a temporary name, listens, then publishes at the file's name */
static gboolean
bind_path_via_tmp (LsockListener  *self,
                   ListenerUnix   *backend,
                   int             fd,
                   gsize           n_random,
                   GCancellable   *cancellable,
                   GError        **error)
{
  LsockSocketFile *file = &backend->file;
  g_autofree char *dir = g_path_get_dirname (file->path);
  g_autofree char *tmp_name = NULL;
  int errsv = 0;
  int lock_fd = -1;
  gboolean ok = FALSE;

  for (int attempt = 0; ; attempt++)
    {
      g_autofree char *tmp_path = NULL;

      g_clear_pointer (&tmp_name, g_free);
      tmp_name = make_tmp_name (n_random);
      tmp_path = g_build_filename (dir, tmp_name, NULL);
      if (bind_to (fd, tmp_path, &errsv))
        break;
      if (errsv != EADDRINUSE || attempt == 16)
        {
          set_listen_error (self, errsv, error);
          return FALSE;
        }
    }

  if (!_lsock_socket_file_adopt (file, fd, tmp_name, socket_mode (self), &errsv))
    {
      set_adopt_error (self, errsv, error);
      goto out;
    }
  if (listen (fd, self->backlog) != 0)
    {
      set_listen_error (self, errno, error);
      goto out;
    }

  for (int attempt = 0; attempt < 8; attempt++)
    {
      LsockProbeResult probe;

      if (_lsock_socket_file_publish (file, tmp_name, FALSE, &errsv))
        {
          ok = TRUE;
          goto out;
        }
      if (errsv != EEXIST)
        {
          set_listen_error (self, errsv, error);
          goto out;
        }

      probe = _lsock_socket_file_probe (file, NULL, &errsv);
      if (probe == LSOCK_PROBE_GONE)
        continue;  /* removed meanwhile: publish again */
      if (probe != LSOCK_PROBE_STALE || !self->replace_stale)
        {
          set_probe_error (self, probe, errsv, error);
          goto out;
        }

      /* Stale and ours: replace it, serialised with other starters */
      lock_fd = _lsock_socket_file_lock (file, _lsock_name_get_display (self->name),
                                         cancellable, error);
      if (lock_fd < 0)
        goto out;
      probe = _lsock_socket_file_probe (file, NULL, &errsv);
      if (probe == LSOCK_PROBE_STALE)
        {
          if (_lsock_socket_file_publish (file, tmp_name, TRUE, &errsv))
            ok = TRUE;
          else
            set_listen_error (self, errsv, error);
          goto out;
        }
      unlock (g_steal_fd (&lock_fd));
      if (probe != LSOCK_PROBE_GONE)
        {
          set_probe_error (self, probe, errsv, error);
          goto out;
        }
    }
  set_listen_error (self, EADDRINUSE, error);

out:
  if (!ok)
    _lsock_socket_file_discard (file, fd, tmp_name);
  unlock (lock_fd);
  return ok;
}

/* Binds in place: Linux, and the fallback for paths too long for a
 * temporary name beside them */
static gboolean
bind_path_direct (LsockListener  *self,
                  ListenerUnix   *backend,
                  int             fd,
                  GCancellable   *cancellable,
                  GError        **error)
{
  LsockSocketFile *file = &backend->file;
  int lock_fd;
  int errsv = 0;
  gboolean ok = FALSE;

  lock_fd = _lsock_socket_file_lock (file, _lsock_name_get_display (self->name),
                                     cancellable, error);
  if (lock_fd < 0)
    return FALSE;

  /* Linux creates the socket file with the socket's own mode less the
   * umask: narrow it before bind, so the file is never wider */
  fchmod (fd, socket_mode (self));

  while (!bind_to (fd, file->path, &errsv))
    {
      LsockProbeResult probe;

      if (errsv != EADDRINUSE)
        {
          set_listen_error (self, errsv, error);
          goto out;
        }
      probe = _lsock_socket_file_probe (file, NULL, &errsv);
      if (probe == LSOCK_PROBE_GONE)
        continue;
      if (probe != LSOCK_PROBE_STALE || !self->replace_stale)
        {
          set_probe_error (self, probe, errsv, error);
          goto out;
        }
      if (!_lsock_socket_file_remove_stale (file, NULL, &errsv))
        {
          if (errsv == EADDRINUSE)
            continue;  /* not stale any more: probe again */
          set_listen_error (self, errsv, error);
          goto out;
        }
    }

  if (!_lsock_socket_file_adopt (file, fd, NULL, socket_mode (self), &errsv))
    {
      /* Where our socket went is anyone's guess: nothing to remove */
      set_adopt_error (self, errsv, error);
      goto out;
    }
  if (listen (fd, self->backlog) != 0)
    {
      set_listen_error (self, errno, error);
      _lsock_socket_file_discard (file, fd, file->base);
      goto out;
    }
  ok = TRUE;

out:
  unlock (lock_fd);
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
  g_autoptr(GError) local_error = NULL;
  gsize dir_len = strlen (dir);
  gsize room;

  if (!_lsock_socket_file_open (&backend->file, path, &local_error))
    {
      g_set_error (error, G_IO_ERROR, local_error->code,
                   _("Could not listen on “%s”: %s"),
                   _lsock_name_get_display (self->name), local_error->message);
      return FALSE;
    }
  backend->has_file = TRUE;

#ifdef __linux__
  /* Linux gives the new file the socket's own mode (less the umask), so
   * binding in place has no moment of wider permissions either, and keeps
   * the real path as the socket's address (getpeername(), ss -x) */
  if (!g_atomic_int_get (&_lsock_listener_publish_by_rename))
    return bind_path_direct (self, backend, fd, cancellable, error);
#endif

  /* Room for "<dir>/.<random>" in sun_path */
  room = SUN_PATH_MAX > dir_len + 2 ? SUN_PATH_MAX - dir_len - 2 : 0;
  if (room >= TMP_NAME_RANDOM_MIN)
    return bind_path_via_tmp (self, backend, fd, MIN (room, TMP_NAME_RANDOM_MAX),
                              cancellable, error);
  else
    return bind_path_direct (self, backend, fd, cancellable, error);
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
        set_probe_error (self, LSOCK_PROBE_LIVE, 0, error);
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

static ListenerUnix *
backend_new (void)
{
  ListenerUnix *backend = g_new0 (ListenerUnix, 1);

  backend->fd = -1;
  backend->zombie_fd = -1;
  backend->activation_index = -1;
  backend->wake_fds[0] = backend->wake_fds[1] = -1;
  return backend;
}

static void
backend_free (ListenerUnix *backend)
{
  if (backend->has_file)
    _lsock_socket_file_clear (&backend->file);
  if (backend->wake_fds[0] >= 0)
    close (backend->wake_fds[0]);
  if (backend->wake_fds[1] >= 0)
    close (backend->wake_fds[1]);
  if (backend->activation_index >= 0)
    _lsock_activation_give_back (backend->activation_index);
  g_free (backend);
}

static gboolean listener_set_nonblocking (LsockListener  *self,
                                          ListenerUnix   *backend,
                                          int             listen_fd,
                                          GError        **error);

/* Takes @fd, a listening socket validated already */
static gboolean
adopt (LsockListener  *self,
       int             fd,
       int             activation_index,
       GError        **error)
{
  ListenerUnix *backend = backend_new ();
  GError *local_error = NULL;

  /* Close-on-exec, as every descriptor of ours */
  {
    int flags = fcntl (fd, F_GETFD);

    if (flags >= 0 && !(flags & FD_CLOEXEC))
      fcntl (fd, F_SETFD, flags | FD_CLOEXEC);
  }
  backend->fd = fd;
  backend->adopted = TRUE;
  backend->activation_index = activation_index;
  backend->owner_uid = geteuid ();
  /* Non-blocking from the start: nothing shuts it down to wake a blocking
   * accept(), so every accept polls, with the wake pipe beside it */
  if (!g_unix_open_pipe (backend->wake_fds, FD_CLOEXEC, &local_error) ||
      !g_unix_set_fd_nonblocking (backend->wake_fds[1], TRUE, &local_error) ||
      !listener_set_nonblocking (self, backend, fd, error))
    {
      if (local_error != NULL)
        g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED,
                     _("Could not listen on “%s”: %s"),
                     _lsock_name_get_display (self->name), local_error->message);
      g_clear_error (&local_error);
      backend->fd = -1;
      backend->activation_index = -1;
      backend_free (backend);
      return FALSE;
    }
  self->backend = backend;
  return TRUE;
}

LsockName *
_lsock_listener_name_of_fd_impl (int      fd,
                                 GError **error)
{
  struct sockaddr_un addr;
  socklen_t len = sizeof addr;
  LsockName *name;

  if (!_lsock_unix_check_stream_socket (fd, TRUE, error))
    return NULL;
  memset (&addr, 0, sizeof addr);
  getsockname (fd, (struct sockaddr *) &addr, &len);
  name = _lsock_name_new_from_sockaddr (&addr, len);
  if (name == NULL)
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                 _("Cannot adopt file descriptor %d: it is bound to an address that is "
                   "not a valid name"), fd);
  return name;
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
    {
      if (self->adopt_fd >= 0)
        self->adopt_fd = -1;  /* the caller's again */
      return FALSE;
    }

  /* A socket given to us, or passed by socket activation for this name */
  if (self->adopt_fd >= 0)
    {
      int activation_index = self->adopt_index;

      fd = g_steal_fd (&self->adopt_fd);
      self->adopt_index = -1;
      /* On failure fd is the caller's again */
      return adopt (self, fd, activation_index, error);
    }
  {
    int activation_index = -1;

    fd = _lsock_activation_borrow_bound (self->name, &activation_index);
    if (fd >= 0)
      {
        if (adopt (self, fd, activation_index, error))
          {
            self->reclaim_name = FALSE;  /* the service manager's */
            return TRUE;
          }
        close (fd);
        _lsock_activation_give_back (activation_index);
        return FALSE;
      }
  }

  if (!_lsock_name_check_private_dir (self->name, error))
    return FALSE;

  /* Blocking until something polls it: see accept_once() */
  fd = _lsock_unix_socket (FALSE, error);
  if (fd < 0)
    return FALSE;

  backend = backend_new ();
  if (lsock_name_get_kind (self->name) == LSOCK_NAME_KIND_PATH)
    ok = bind_path (self, backend, fd, cancellable, error);
  else
    ok = bind_namespaced (self, fd, error);

  if (!ok)
    {
      close (fd);
      backend_free (backend);
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
                                 GCredentials  **out_rejected,
                                 GError        **error);

LsockStream *
_lsock_listener_accept_impl (LsockListener  *self,
                             LsockAcceptMode mode,
                             GCancellable   *cancellable,
                             GCredentials  **out_rejected,
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

  stream = accept_once (self, backend, listen_fd, mode, cancellable, out_rejected, error);

  g_mutex_lock (&self->lock);
  if (--backend->accepts_in_flight == 0 && backend->zombie_fd >= 0)
    close (g_steal_fd (&backend->zombie_fd));
  if (self->closed && self->backend == NULL && backend->accepts_in_flight == 0)
    backend_free (backend);
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
             GCredentials  **out_rejected,
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
          ready = _lsock_unix_wait_full (listen_fd, G_IO_IN, backend->wake_fds[0],
                                         blocking ? 0 : -1, cancellable, error);
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
          *out_rejected = _lsock_unix_get_peer_credentials (fd, NULL);
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

gboolean
_lsock_listener_is_adopted_impl (LsockListener *self)
{
  ListenerUnix *backend;
  gboolean adopted;

  g_mutex_lock (&self->lock);
  backend = self->backend;
  adopted = backend != NULL && backend->adopted;
  g_mutex_unlock (&self->lock);
  return adopted;
}

guint64
_lsock_listener_unix_peek_bound_ino (LsockListener *self)
{
  ListenerUnix *backend;
  guint64 ino;

  g_mutex_lock (&self->lock);
  backend = self->backend;
  ino = backend != NULL ? backend->file.ino : 0;
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
  if (self->reclaim_name && backend->has_file)
    _lsock_socket_file_reclaim (&backend->file);
  if (backend->has_file)
    {
      _lsock_socket_file_clear (&backend->file);
      backend->has_file = FALSE;
    }

  /* Wake accepts blocked in other threads; the last of them closes the fd
   * and frees the backend. An adopted socket may be shared (the service
   * manager keeps its own): never shut it down, wake them by the pipe */
  if (!backend->adopted)
    shutdown (fd, SHUT_RDWR);
  else if (backend->accepts_in_flight > 0)
    {
      char byte = 0;

      if (write (backend->wake_fds[1], &byte, 1) < 0)
        g_debug ("Could not wake the accepts on “%s”: %s",
                 _lsock_name_get_display (self->name), g_strerror (errno));
    }
  if (backend->accepts_in_flight > 0)
    backend->zombie_fd = fd;
  else
    {
      close (fd);
      backend_free (backend);
    }
}

int
_lsock_listener_borrow_activated_impl (const char  *fd_name,
                                       int         *out_index,
                                       GError     **error)
{
  return _lsock_activation_borrow_named (fd_name, out_index, error);
}

void
_lsock_listener_give_back_activated_impl (int index)
{
  _lsock_activation_give_back (index);
}

void
_lsock_listener_set_keep_activation_environment_impl (gboolean keep)
{
  _lsock_activation_set_keep_environment (keep);
}
