/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include "lsock-stream-private.h"
#include "lsock-name-private.h"
#include "lsock-unix-conn-private.h"
#include "lsock-unix-private.h"
#include "lsock-reactor-private.h"
#include "lsock-i18n-private.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

/* The Unix backend of LsockStream: connecting, and what the stream asks
 * of its socket. Reading and writing are in lsock-unix-conn.c, the
 * substream classes in lsock-unix-streams.c. */

void
_lsock_fd_close_impl (int fd)
{
  close (fd);
}

int
_lsock_fd_dup_impl (int  fd,
                    int *errsv)
{
  int copy = fcntl (fd, F_DUPFD_CLOEXEC, 3);

  if (copy < 0)
    *errsv = errno;
  return copy;
}

gpointer
_lsock_io_hold_context_impl (GMainContext *context)
{
  return _lsock_reactor_ref_for_context (context, G_PRIORITY_DEFAULT);
}

void
_lsock_io_release_context_impl (gpointer hold)
{
  if (hold != NULL)
    _lsock_reactor_unref (hold);
}

void
_lsock_io_dispatch_begin_impl (gpointer         hold,
                               LsockIoDispatch *dispatch)
{
  dispatch->reactor = hold;
  dispatch->outer = hold != NULL ? _lsock_reactor_dispatch_begin (hold) : NULL;
}

void
_lsock_io_dispatch_end_impl (LsockIoDispatch *dispatch)
{
  if (dispatch->reactor != NULL)
    _lsock_reactor_dispatch_end (dispatch->reactor, dispatch->outer);
}

GInputStream *
_lsock_stream_new_input_impl (LsockStream *self)
{
  return _lsock_unix_input_stream_new (self->conn);
}

GOutputStream *
_lsock_stream_new_output_impl (LsockStream *self)
{
  return _lsock_unix_output_stream_new (self->conn);
}

static LsockStream *
stream_new (LsockName *name,
            int        fd)
{
  return _lsock_stream_new (name, _lsock_unix_conn_new (fd));
}

static void
set_connect_error (LsockName  *name,
                   int         errsv,
                   GError    **error)
{
  const char *display = _lsock_name_get_display (name);

  switch (errsv)
    {
    case ENOENT:
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND,
                   _("Could not connect to “%s”: nobody is listening there"), display);
      break;

    case ECONNREFUSED:
      /* An abstract name refuses when nobody has it; a socket file refuses
       * when its listener has gone and left it behind */
      if (lsock_name_get_kind (name) == LSOCK_NAME_KIND_NAMESPACED)
        g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND,
                     _("Could not connect to “%s”: nobody is listening there"), display);
      else
        {
          struct stat st;

          /* Linux refuses a connection to a file that is not a socket
           * alike: say which it is (looked at after the fact, only to
           * word the message) */
          if (lstat (lsock_name_get_name (name), &st) == 0 && S_ISDIR (st.st_mode))
            g_set_error (error, G_IO_ERROR, G_IO_ERROR_CONNECTION_REFUSED,
                         _("Could not connect to “%s”: it is a directory, not a socket"),
                         display);
          else if (lstat (lsock_name_get_name (name), &st) == 0 && !S_ISSOCK (st.st_mode))
            g_set_error (error, G_IO_ERROR, G_IO_ERROR_CONNECTION_REFUSED,
                         _("Could not connect to “%s”: it is a file that is not a socket"),
                         display);
          else
            g_set_error (error, G_IO_ERROR, G_IO_ERROR_CONNECTION_REFUSED,
                         _("Could not connect to “%s”: the socket file is there but nobody is listening on it"),
                         display);
        }
      break;

    case EACCES:
    case EPERM:
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_PERMISSION_DENIED,
                   _("Could not connect to “%s”: %s"), display, g_strerror (errsv));
      break;

    default:
      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errsv),
                   _("Could not connect to “%s”: %s"), display, g_strerror (errsv));
      break;
    }
}

typedef enum {
  CONNECT_DONE,
  CONNECT_IN_PROGRESS,  /* EINPROGRESS: wait for POLLOUT, then SO_ERROR */
  CONNECT_BACKLOG_FULL, /* Linux EAGAIN: try again later */
  CONNECT_FAILED,
} ConnectState;

static ConnectState
try_connect (int                       fd,
             const struct sockaddr_un *addr,
             socklen_t                 addr_len,
             int                      *out_errno)
{
  for (;;)
    {
      if (connect (fd, (const struct sockaddr *) addr, addr_len) == 0)
        return CONNECT_DONE;

      *out_errno = errno;
      switch (*out_errno)
        {
        case EINTR:
          continue;
        case EISCONN:
          return CONNECT_DONE;
        case EINPROGRESS:
        case EALREADY:
          return CONNECT_IN_PROGRESS;
        case EAGAIN:
          return CONNECT_BACKLOG_FULL;
        default:
          return CONNECT_FAILED;
        }
    }
}

static int
get_so_error (int fd)
{
  int value = 0;
  socklen_t len = sizeof value;

  if (getsockopt (fd, SOL_SOCKET, SO_ERROR, &value, &len) != 0)
    return errno;
  return value;
}

/* A full backlog on Linux gives EAGAIN and nothing to poll for: retry after
 * a pause that grows from 1 ms to 64 ms */
#define BACKLOG_RETRY_MIN_MS 1
#define BACKLOG_RETRY_MAX_MS 64

/* Milliseconds left until @deadline (0: none), at least 1; 0 if no
 * deadline; -1 once past it */
static int
ms_left (gint64 deadline)
{
  gint64 left;

  if (deadline == 0)
    return 0;
  left = deadline - g_get_monotonic_time ();
  if (left <= 0)
    return -1;
  return (int) MAX (1, (left + 999) / 1000);
}

LsockStream *
_lsock_stream_connect_impl (LsockName     *name,
                            guint          timeout_ms,
                            GCancellable  *cancellable,
                            GError       **error)
{
  struct sockaddr_un addr;
  socklen_t addr_len = _lsock_name_to_sockaddr (name, &addr);
  gint64 deadline = 0;
  int retry_ms = BACKLOG_RETRY_MIN_MS;
  int fd;
  int errsv = 0;

  if (g_cancellable_set_error_if_cancelled (cancellable, error))
    return NULL;
  if (!_lsock_name_check_private_dir (name, error))
    return NULL;

  /* With nothing to cancel it and no time limit, a blocking connect() is
   * the whole job: on a full backlog the kernel waits for room, and the
   * stream needs a blocking fd anyway, so no fcntl() either side of it */
  if (cancellable == NULL && timeout_ms == 0)
    {
      fd = _lsock_unix_socket (FALSE, error);
      if (fd < 0)
        return NULL;
      if (try_connect (fd, &addr, addr_len, &errsv) == CONNECT_DONE)
        return stream_new (name, fd);
      set_connect_error (name, errsv, error);
      close (fd);
      return NULL;
    }

  if (timeout_ms > 0)
    deadline = g_get_monotonic_time () + (gint64) timeout_ms * G_TIME_SPAN_MILLISECOND;
  fd = _lsock_unix_socket (TRUE, error);
  if (fd < 0)
    return NULL;

  for (;;)
    {
      int wait_ms;

      switch (try_connect (fd, &addr, addr_len, &errsv))
        {
        case CONNECT_DONE:
          goto connected;

        case CONNECT_IN_PROGRESS:
          wait_ms = ms_left (deadline);
          if (wait_ms < 0)
            goto timed_out;
          switch (_lsock_unix_wait (fd, G_IO_OUT, wait_ms, cancellable, error))
            {
            case -1:
              goto fail;
            case 0:
              goto timed_out;
            default:
              break;
            }
          errsv = get_so_error (fd);
          if (errsv == 0)
            goto connected;
          set_connect_error (name, errsv, error);
          goto fail;

        case CONNECT_BACKLOG_FULL:
          /* Nothing becomes ready on fd: wait on the cancellable alone, a
           * pause that grows, within the time left */
          wait_ms = ms_left (deadline);
          if (wait_ms < 0)
            goto timed_out;
          if (wait_ms == 0 || wait_ms > retry_ms)
            wait_ms = retry_ms;
          if (_lsock_unix_wait (-1, 0, wait_ms, cancellable, error) < 0)
            goto fail;
          retry_ms = MIN (retry_ms * 2, BACKLOG_RETRY_MAX_MS);
          break;

        case CONNECT_FAILED:
        default:
          set_connect_error (name, errsv, error);
          goto fail;
        }
    }

connected:
  _lsock_unix_set_nonblocking (fd, FALSE);
  return stream_new (name, fd);

timed_out:
  _lsock_stream_set_connect_timed_out_error (name, error);
fail:
  close (fd);
  return NULL;
}

typedef struct
{
  LsockName          *name;
  struct sockaddr_un  addr;
  socklen_t           addr_len;
  int                 fd;
  int                 retry_ms;
  gint64              deadline;  /* 0: none */
  GSource            *source;
} ConnectData;

static void
connect_data_free (ConnectData *data)
{
  if (data->source != NULL)
    {
      g_source_destroy (data->source);
      g_source_unref (data->source);
    }
  if (data->fd >= 0)
    close (data->fd);
  g_clear_object (&data->name);
  g_free (data);
}

static void connect_async_step (GTask *task);

static gboolean
connect_async_ready_cb (int          fd,
                        GIOCondition condition,
                        gpointer     user_data)
{
  GTask *task = user_data;
  ConnectData *data = g_task_get_task_data (task);
  int errsv;

  g_clear_pointer (&data->source, g_source_unref);

  if (g_task_return_error_if_cancelled (task))
    goto out;

  /* The source's timeout (the time left) elapsed */
  if (condition == 0)
    {
      GError *error = NULL;

      _lsock_stream_set_connect_timed_out_error (data->name, &error);
      g_task_return_error (task, error);
      goto out;
    }

  errsv = get_so_error (data->fd);
  if (errsv != 0)
    {
      GError *error = NULL;

      set_connect_error (data->name, errsv, &error);
      g_task_return_error (task, error);
      goto out;
    }

  _lsock_unix_set_nonblocking (data->fd, FALSE);
  g_task_return_pointer (task, stream_new (data->name, g_steal_fd (&data->fd)), g_object_unref);

out:
  g_object_unref (task);
  return G_SOURCE_REMOVE;
}

static gboolean
connect_async_retry_cb (gpointer user_data)
{
  GTask *task = user_data;
  ConnectData *data = g_task_get_task_data (task);

  g_clear_pointer (&data->source, g_source_unref);
  connect_async_step (task);
  return G_SOURCE_REMOVE;
}

static void
watch (GTask   *task,
       GSource *source)
{
  ConnectData *data = g_task_get_task_data (task);
  GSource *cancel_source = g_cancellable_source_new (g_task_get_cancellable (task));

  /* Dispatch early when cancelled; the callbacks check */
  g_source_set_dummy_callback (cancel_source);
  g_source_add_child_source (source, cancel_source);
  g_source_unref (cancel_source);

  g_source_set_static_name (source, "[lsock] connect");
  g_source_set_priority (source, g_task_get_priority (task));
  data->source = source;
  g_source_attach (source, g_task_get_context (task));
}

/* Consumes a reference to @task */
static void
connect_async_step (GTask *task)
{
  ConnectData *data = g_task_get_task_data (task);
  GSource *source;
  int errsv = 0;
  int wait_ms;

  if (g_task_return_error_if_cancelled (task))
    {
      g_object_unref (task);
      return;
    }

  wait_ms = ms_left (data->deadline);
  if (wait_ms < 0)
    {
      GError *error = NULL;

      _lsock_stream_set_connect_timed_out_error (data->name, &error);
      g_task_return_error (task, error);
      g_object_unref (task);
      return;
    }

  switch (try_connect (data->fd, &data->addr, data->addr_len, &errsv))
    {
    case CONNECT_DONE:
      _lsock_unix_set_nonblocking (data->fd, FALSE);
      g_task_return_pointer (task, stream_new (data->name, g_steal_fd (&data->fd)),
                             g_object_unref);
      g_object_unref (task);
      return;

    case CONNECT_IN_PROGRESS:
      /* Dispatches with no condition once the time left is up */
      source = _lsock_unix_fd_source_new (data->fd, G_IO_OUT, wait_ms);
      g_source_set_callback (source, (GSourceFunc) (void (*)(void)) connect_async_ready_cb,
                             task, NULL);
      watch (task, source);
      return;

    case CONNECT_BACKLOG_FULL:
      source = g_timeout_source_new (wait_ms == 0 || wait_ms > data->retry_ms ? data->retry_ms :
                                                                                wait_ms);
      data->retry_ms = MIN (data->retry_ms * 2, BACKLOG_RETRY_MAX_MS);
      g_source_set_callback (source, connect_async_retry_cb, task, NULL);
      watch (task, source);
      return;

    case CONNECT_FAILED:
    default:
      {
        GError *error = NULL;

        set_connect_error (data->name, errsv, &error);
        g_task_return_error (task, error);
        g_object_unref (task);
      }
      return;
    }
}

void
_lsock_stream_connect_async_impl (GTask     *task,
                                  LsockName *name,
                                  guint      timeout_ms)
{
  ConnectData *data = g_new0 (ConnectData, 1);
  GError *error = NULL;

  data->name = g_object_ref (name);
  g_task_set_task_data (task, data, (GDestroyNotify) connect_data_free);
  data->fd = -1;
  if (!_lsock_name_check_private_dir (name, &error))
    {
      g_task_return_error (task, error);
      g_object_unref (task);
      return;
    }
  data->addr_len = _lsock_name_to_sockaddr (name, &data->addr);
  data->retry_ms = BACKLOG_RETRY_MIN_MS;
  if (timeout_ms > 0)
    data->deadline = g_get_monotonic_time () + (gint64) timeout_ms * G_TIME_SPAN_MILLISECOND;
  data->fd = _lsock_unix_socket (TRUE, &error);

  if (data->fd < 0)
    {
      g_task_return_error (task, error);
      g_object_unref (task);
      return;
    }

  connect_async_step (task);
}

gboolean
_lsock_stream_check_server_impl (LsockStream  *self,
                                 GError      **error)
{
  g_autoptr(GError) local_error = NULL;
  uid_t uid;
  gid_t gid;
  pid_t pid;
  int fd = _lsock_unix_conn_acquire_fd (self->conn, error);
  gboolean ok;

  if (fd < 0)
    return FALSE;
  ok = _lsock_unix_get_peer_ids (fd, &uid, &gid, &pid, &local_error);
  _lsock_unix_conn_release_fd (self->conn);

  if (!ok)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_PERMISSION_DENIED,
                   _("Refusing the listener on “%s”: could not tell who it is (%s)"),
                   _lsock_name_get_display (self->conn->name), local_error->message);
      return FALSE;
    }
  /* Ours, or root's (a system service we may want to reach) */
  if (uid != geteuid () && uid != 0)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_PERMISSION_DENIED,
                   _("Refusing the listener on “%s”: it runs as another user (uid %lu); "
                     "connect with LSOCK_ACCESS_EVERYONE to talk to it anyway"),
                   _lsock_name_get_display (self->conn->name), (gulong) uid);
      return FALSE;
    }
  return TRUE;
}

#if defined (__linux__) && !defined (SO_PEERPIDFD)
# define SO_PEERPIDFD 77
#endif

int
_lsock_stream_get_peer_pidfd_impl (LsockStream  *self,
                                   GError      **error)
{
#ifdef SO_PEERPIDFD
  int pidfd = -1;
  socklen_t len = sizeof pidfd;
  int fd = _lsock_unix_conn_acquire_fd (self->conn, error);
  int errsv;
  int ret;

  if (fd < 0)
    return -1;
  ret = getsockopt (fd, SOL_SOCKET, SO_PEERPIDFD, &pidfd, &len);
  errsv = errno;
  _lsock_unix_conn_release_fd (self->conn);
  if (ret == 0)
    return pidfd;

  if (errsv == ENOPROTOOPT || errsv == EINVAL)
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                 _("Could not get a pidfd for the peer of “%s”: the kernel has no SO_PEERPIDFD "
                   "(Linux 6.5 and later)"),
                 _lsock_name_get_display (self->conn->name));
  else
    g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errsv),
                 _("Could not get a pidfd for the peer of “%s”: %s"),
                 _lsock_name_get_display (self->conn->name), g_strerror (errsv));
  return -1;
#else
  g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
               _("Could not get a pidfd for the peer of “%s”: this platform has no pidfds"),
               _lsock_name_get_display (self->conn->name));
  return -1;
#endif
}

GCredentials *
_lsock_stream_get_peer_credentials_impl (LsockStream  *self,
                                         GError      **error)
{
  GCredentials *credentials;
  int fd = _lsock_unix_conn_acquire_fd (self->conn, error);

  if (fd < 0)
    return NULL;

  credentials = _lsock_unix_get_peer_credentials (fd, error);
  _lsock_unix_conn_release_fd (self->conn);
  if (credentials == NULL)
    g_prefix_error (error, "“%s”: ", _lsock_name_get_display (self->conn->name));
  return credentials;
}

gboolean
_lsock_stream_shutdown_impl (LsockStream  *self,
                             gboolean      shutdown_read,
                             gboolean      shutdown_write,
                             GError      **error)
{
  int fd = _lsock_unix_conn_acquire_fd (self->conn, error);
  int how;
  int ret;
  int errsv;

  if (fd < 0)
    return FALSE;

  if (shutdown_read && shutdown_write)
    how = SHUT_RDWR;
  else if (shutdown_read)
    how = SHUT_RD;
  else
    how = SHUT_WR;

  ret = shutdown (fd, how);
  errsv = errno;
  _lsock_unix_conn_release_fd (self->conn);
  if (ret != 0)
    {
      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errsv),
                   _("Could not shut down the connection to “%s”: %s"),
                   _lsock_name_get_display (self->conn->name), g_strerror (errsv));
      return FALSE;
    }

  return TRUE;
}

/* ---------------------------------------------------------------------- */
/* Descriptors */

static void
set_not_stream_socket_error (int          fd,
                             const char  *why,
                             GError     **error)
{
  g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
               _("Cannot adopt file descriptor %d: %s"), fd, why);
}

gboolean
_lsock_unix_check_stream_socket (int           fd,
                                 gboolean      listening,
                                 GError      **error)
{
  struct stat st;
  struct sockaddr_un addr;
  socklen_t len = sizeof addr;
  int type = 0;
  int accepting = 0;
  socklen_t opt_len = sizeof type;

  if (fstat (fd, &st) != 0)
    {
      int errsv = errno;

      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                   _("Cannot adopt file descriptor %d: %s"), fd, g_strerror (errsv));
      return FALSE;
    }
  if (!S_ISSOCK (st.st_mode))
    {
      set_not_stream_socket_error (fd, _("it is not a socket"), error);
      return FALSE;
    }
  memset (&addr, 0, sizeof addr);
  if (getsockname (fd, (struct sockaddr *) &addr, &len) != 0 || addr.sun_family != AF_UNIX)
    {
      set_not_stream_socket_error (fd, _("it is not a Unix-domain socket"), error);
      return FALSE;
    }
  if (getsockopt (fd, SOL_SOCKET, SO_TYPE, &type, &opt_len) != 0 || type != SOCK_STREAM)
    {
      set_not_stream_socket_error (fd, _("it is not a stream socket (SOCK_STREAM)"), error);
      return FALSE;
    }
#ifdef SO_ACCEPTCONN
  opt_len = sizeof accepting;
  if (getsockopt (fd, SOL_SOCKET, SO_ACCEPTCONN, &accepting, &opt_len) != 0)
    accepting = -1;  /* cannot tell: let the next check decide */
#else
  accepting = -1;
#endif
  if (listening)
    {
      if (accepting == 0)
        {
          set_not_stream_socket_error (fd, _("it is not listening"), error);
          return FALSE;
        }
    }
  else
    {
      struct sockaddr_un peer;

      len = sizeof peer;
      if (accepting == 1)
        {
          set_not_stream_socket_error (fd, _("it is a listening socket, not a connection "
                                             "(see lsock_listener_new_from_fd())"), error);
          return FALSE;
        }
      if (getpeername (fd, (struct sockaddr *) &peer, &len) != 0)
        {
          set_not_stream_socket_error (fd, _("it is not connected"), error);
          return FALSE;
        }
    }
  return TRUE;
}

/* The name of a connected socket: the listener's, whichever end this is */
static LsockName *
name_of_connection (int fd)
{
  struct sockaddr_un addr;
  socklen_t len = sizeof addr;
  LsockName *name = NULL;

  /* A client: the server's address; an accepted socket: the listener's */
  memset (&addr, 0, sizeof addr);
  if (getpeername (fd, (struct sockaddr *) &addr, &len) == 0)
    name = _lsock_name_new_from_sockaddr (&addr, len);
  if (name == NULL)
    {
      len = sizeof addr;
      memset (&addr, 0, sizeof addr);
      if (getsockname (fd, (struct sockaddr *) &addr, &len) == 0)
        name = _lsock_name_new_from_sockaddr (&addr, len);
    }
  return name;
}

/* Makes an adopted connection what lsock's own are: close-on-exec,
 * blocking (MSG_DONTWAIT is used where an operation must not block), no
 * SIGPIPE */
static void
prepare_adopted (int fd)
{
  int flags = fcntl (fd, F_GETFD);

  if (flags >= 0 && !(flags & FD_CLOEXEC))
    fcntl (fd, F_SETFD, flags | FD_CLOEXEC);
  _lsock_unix_set_nonblocking (fd, FALSE);
#if !defined (MSG_NOSIGNAL) && defined (SO_NOSIGPIPE)
  {
    int one = 1;
    setsockopt (fd, SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof one);
  }
#endif
}

LsockStream *
_lsock_stream_new_from_fd_impl (int      fd,
                                GError **error)
{
  g_autoptr(LsockName) name = NULL;

  if (!_lsock_unix_check_stream_socket (fd, FALSE, error))
    return NULL;
  name = name_of_connection (fd);
  prepare_adopted (fd);
  return stream_new (name, fd);
}

gboolean
_lsock_stream_new_pair_impl (LsockStream **first,
                             LsockStream **second,
                             GError      **error)
{
  int fds[2];
  int errsv;

#ifdef SOCK_CLOEXEC
  if (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0)
#else
  if (socketpair (AF_UNIX, SOCK_STREAM, 0, fds) != 0)
#endif
    {
      errsv = errno;
      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errsv),
                   _("Could not make a pair of connected sockets: %s"), g_strerror (errsv));
      return FALSE;
    }
  prepare_adopted (fds[0]);
  prepare_adopted (fds[1]);
  *first = stream_new (NULL, fds[0]);
  *second = stream_new (NULL, fds[1]);
  return TRUE;
}

int
_lsock_stream_get_fd_impl (LsockStream *self)
{
  return _lsock_unix_conn_peek_fd (self->conn);
}

int
_lsock_stream_steal_fd_impl (LsockStream  *self,
                             GError      **error)
{
  return _lsock_unix_conn_steal_fd (self->conn, error);
}

gboolean
_lsock_stream_send_fd_impl (LsockStream   *self,
                            int            fd,
                            gboolean       blocking,
                            GCancellable  *cancellable,
                            GError       **error)
{
  return _lsock_unix_conn_send_fd (self->conn, fd, blocking, cancellable, error);
}

int
_lsock_stream_receive_fd_impl (LsockStream   *self,
                               gboolean       blocking,
                               GCancellable  *cancellable,
                               GError       **error)
{
  return _lsock_unix_conn_receive_fd (self->conn, blocking, cancellable, error);
}

GIOStream *
_lsock_stream_dbus_stream_impl (LsockStream           *self,
                                gboolean               server,
                                GDBusConnectionFlags  *flags,
                                const char           **mechanism,
                                GError               **error)
{
  g_autoptr(GSocket) socket = NULL;
  int fd;

  /* GDBus authenticates with EXTERNAL (the peer's credentials) and passes
   * descriptors only over a GUnixConnection: hand it the socket */
  fd = _lsock_unix_conn_steal_fd (self->conn, error);
  if (fd < 0)
    return NULL;
  socket = g_socket_new_from_fd (fd, error);
  if (socket == NULL)
    {
      close (fd);
      return NULL;
    }
  *mechanism = "EXTERNAL";
  return G_IO_STREAM (g_socket_connection_factory_create_connection (socket));
}

/* ---------------------------------------------------------------------- */
/* The bytes calls: straight to the connection, no substream; the async
 * ones through its engine, no GTask */

gboolean
_lsock_stream_send_bytes_impl (LsockStream   *self,
                               gconstpointer  data,
                               gsize          size,
                               GCancellable  *cancellable,
                               GError       **error)
{
  gsize done = 0;

  /* A blocking send() writes it all but when a signal or the timeout
   * interrupts it */
  while (done < size)
    {
      gssize n = _lsock_unix_conn_io (self->conn, LSOCK_DIRECTION_WRITE,
                                      (char *) data + done, size - done, TRUE,
                                      cancellable, error);

      if (n < 0)
        return FALSE;
      done += n;
    }
  return TRUE;
}

GBytes *
_lsock_stream_receive_bytes_impl (LsockStream   *self,
                                  gsize          max_bytes,
                                  GCancellable  *cancellable,
                                  GError       **error)
{
  char scratch[LSOCK_RECEIVE_SCRATCH];
  char *buffer = max_bytes > sizeof scratch ? g_malloc (max_bytes) : scratch;
  gssize n = _lsock_unix_conn_io (self->conn, LSOCK_DIRECTION_READ, buffer, max_bytes, TRUE,
                                  cancellable, error);

  if (buffer == scratch)
    return n >= 0 ? g_bytes_new (scratch, n) : NULL;
  if (n <= 0)
    {
      g_free (buffer);
      return n == 0 ? g_bytes_new (NULL, 0) : NULL;
    }
  /* No larger than what came */
  return g_bytes_new_take ((gsize) n < max_bytes ? g_realloc (buffer, n) : buffer, n);
}

void
_lsock_stream_send_bytes_async_impl (LsockStream         *self,
                                     GBytes              *bytes,
                                     int                  io_priority,
                                     GCancellable        *cancellable,
                                     GAsyncReadyCallback  callback,
                                     gpointer             user_data)
{
  gsize size;
  gconstpointer data = g_bytes_get_data (bytes, &size);

  _lsock_unix_conn_io_async_full (self->conn, self, LSOCK_DIRECTION_WRITE,
                                  LSOCK_IO_ALL | LSOCK_IO_CLEAR_PENDING,
                                  (gpointer) data, size, bytes,
                                  io_priority, cancellable, callback, user_data,
                                  lsock_stream_send_bytes_async);
}

void
_lsock_stream_receive_bytes_async_impl (LsockStream         *self,
                                        gsize                max_bytes,
                                        int                  io_priority,
                                        GCancellable        *cancellable,
                                        GAsyncReadyCallback  callback,
                                        gpointer             user_data)
{
  _lsock_unix_conn_io_async_full (self->conn, self, LSOCK_DIRECTION_READ,
                                  LSOCK_IO_RECEIVE_BYTES | LSOCK_IO_CLEAR_PENDING,
                                  max_bytes > LSOCK_RECEIVE_SCRATCH ? g_malloc (max_bytes) : NULL,
                                  max_bytes, NULL,
                                  io_priority, cancellable, callback, user_data,
                                  lsock_stream_receive_bytes_async);
}
