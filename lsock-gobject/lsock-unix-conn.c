/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include "lsock-unix-conn-private.h"
#include "lsock-name-private.h"
#include "lsock-reactor-private.h"
#include "lsock-async-result-private.h"
#include "lsock-unix-private.h"
#include "lsock-i18n-private.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#ifndef MSG_DONTWAIT
# error "MSG_DONTWAIT is required"
#endif

/*
 * Reading and writing a connected Unix socket.
 *
 * The socket is blocking, so a blocking read or write with no timeout and
 * no cancellable is exactly one system call. Every other sync operation
 * uses MSG_DONTWAIT and waits in poll(), with the cancellable's fd beside
 * it.
 *
 * Async operations are driven by the reactor of the caller's
 * thread-default main context (lsock-reactor-private.h): the connection is
 * registered with it once, on its first async operation there, and each
 * registration remembers per direction whether the socket may be ready.
 * An operation tries its system call at once while that is so, and waits
 * for the reactor otherwise. Readiness is forgotten when a system call
 * fails with EAGAIN, and after a short read only where the reactor
 * reports input for as long as it is there
 * (_lsock_watch_waits_after_short_read()): a short read does not mean
 * the queue is empty (recv() stops at a message carrying descriptors, at
 * urgent data, and where the peer's credentials change), so elsewhere
 * only trying again can tell. An operation that completes at once is
 * reported from the reactor's next dispatch, never from inside the
 * _async() call.
 *
 * Closing: conn->lock guards the operations waiting and the
 * registrations, and the fd for whoever uses it under the lock having
 * checked conn->closed (the async path). Whoever uses the fd outside the
 * lock (a sync operation, a pollable source) holds it with
 * _lsock_unix_conn_acquire_fd(), an atomic count (fd_state) rather than
 * the lock, which a sync read or write would otherwise take twice; close()
 * holds it too while it removes the registrations, shuts the socket down
 * to wake the others, and the last holder closes the fd, so its number is
 * never reused while anything, epoll included, may still use it.
 * Operations waiting are taken off and reported closed in their own
 * contexts.
 */

typedef struct _IoOp IoOp;

typedef struct
{
  int      fd;               /* -1 once closed and released */
  int      fd_state;         /* atomic: FD_USER per holder, | FD_CLOSED */
  int      read_timed_out;   /* atomic: set by a pollable source's timeout */
  int      write_timed_out;
  GSList  *watches;          /* LsockWatch*: one per reactor it was used on */
  IoOp    *ops[2];           /* waiting for readiness, by direction */
  GMutex   watch_lock;       /* serialises making registrations */
} UnixConn;

/* A registration's own state (its watch's user data) */
typedef struct
{
  LsockConn *conn;      /* a reference, for the memory */
  gboolean   ready[2];  /* by direction: may not fail with EAGAIN, or a
                         * report is not sure to come (see above) */
} WatchState;

/* UnixConn.fd_state: the holders of the fd outside conn->lock, counted
 * without a lock (a sync read or write takes and drops it every time), and
 * whether close() is done with it; whoever leaves it at FD_CLOSED with no
 * holder closes the fd */
#define FD_CLOSED 1
#define FD_USER   2

typedef enum
{
  IO_DONE,         /* n, errsv */
  IO_FAILED,       /* error */
  IO_CLOSED,
  IO_CANCELLED,
  IO_TIMED_OUT,
  IO_WOULD_BLOCK,
} IoOutcome;

struct _IoOp
{
  LsockDeferred   deferred;       /* first: the reactor hands it back */
  LsockAsyncResult *result;       /* the caller's, reported once */
  LsockConn      *conn;           /* held by the result's source object */
  LsockWatch     *watch;          /* where it waits: a reference, dropped
                                   * before the callback */
  LsockReactor   *reactor;        /* where it is reported: the watch's,
                                   * or, with no watch, a reference */
  GCancellable   *cancellable;
  GSource        *cancel_source;
  GSource        *timeout_source;
  LsockDirection  direction;
  LsockIoFlags    flags;
  void           *buffer;
  gsize           count;
  gsize           done;           /* LSOCK_IO_ALL: written so far */
  GBytes         *held;           /* what the buffer belongs to */
  GBytes         *received;       /* LSOCK_IO_RECEIVE_BYTES with no buffer */
  IoOutcome       outcome;
  gssize          n;
  int             errsv;
  GError         *error;
};

/* ---------------------------------------------------------------------- */
/* The one error mapping, for every path */

static gssize
io_outcome (LsockConn       *conn,
            LsockDirection   direction,
            IoOutcome        outcome,
            gssize           n,
            int              errsv,
            GError          *failure,
            GError         **error)
{
  gboolean reading = direction == LSOCK_DIRECTION_READ;
  const char *display;

  /* The common case first: nothing to say */
  if (G_LIKELY (outcome == IO_DONE && n >= 0))
    return n;

  display = _lsock_name_get_display (conn->name);
  switch (outcome)
    {
    case IO_DONE:
      /* A peer that closed with data of ours unread makes the next read,
       * once all it sent has been read, fail with ECONNRESET on Linux:
       * for the reader that is the end of the stream (nothing it was sent
       * is missing), but what we sent was thrown away, which
       * lsock_stream_get_peer_discarded() tells */
      if (errsv == ECONNRESET)
        {
          g_atomic_int_set (&conn->peer_discarded, TRUE);
          if (reading)
            return 0;
          g_set_error (error, G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED,
                       _("The peer of “%s” closed the connection without reading all that "
                         "was sent to it"), display);
        }
      else if (reading)
        g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errsv),
                     _("Error reading from “%s”: %s"), display, g_strerror (errsv));
      else
        g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errsv),
                     _("Error writing to “%s”: %s"), display, g_strerror (errsv));
      return -1;

    case IO_FAILED:
      g_propagate_error (error, failure);
      return -1;

    case IO_CLOSED:
      _lsock_conn_set_closed_error (conn, error);
      return -1;

    case IO_CANCELLED:
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED,
                   _("The operation on “%s” was cancelled"), display);
      return -1;

    case IO_TIMED_OUT:
      if (reading)
        g_set_error (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
                     _("Timed out reading from “%s”"), display);
      else
        g_set_error (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
                     _("Timed out writing to “%s”"), display);
      return -1;

    case IO_WOULD_BLOCK:
    default:
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK, g_strerror (EAGAIN));
      return -1;
    }
}

/* One system call, restarted after a signal */
static inline gssize
do_io (int             fd,
       LsockDirection  direction,
       void           *buffer,
       gsize           count,
       int             flags,
       int            *out_errno)
{
  gssize n;

  do
    {
      if (direction == LSOCK_DIRECTION_READ)
        n = recv (fd, buffer, count, flags);
      else
        n = send (fd, buffer, count, flags | LSOCK_SEND_FLAGS);
    }
  while (n < 0 && errno == EINTR);

  if (n < 0)
    *out_errno = errno == EWOULDBLOCK ? EAGAIN : errno;
  return n;
}

/* A descriptor passed with the data (SCM_RIGHTS), as GUnixConnection and
 * Python's socket.send_fds() pass them */
typedef struct
{
  int      fd;         /* to send; received (-1: none) */
  int      n_fds;      /* received: how many came */
  gboolean truncated;  /* received: MSG_CTRUNC, some were lost */
} FdPass;

/* Room for this many received at once: more is an error anyway, but they
 * must be taken to be closed rather than left to the kernel's truncation */
#define FD_PASS_MAX 8

static gssize
do_msg_io (int             fd,
           LsockDirection  direction,
           void           *buffer,
           gsize           count,
           int             flags,
           FdPass         *pass,
           int            *out_errno)
{
  union {
    struct cmsghdr align;
    char           buf[CMSG_SPACE (sizeof (int) * FD_PASS_MAX)];
  } control;
  struct iovec iov = { .iov_base = buffer, .iov_len = count };
  struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf };
  gssize n;

  memset (&control, 0, sizeof control);
  if (direction == LSOCK_DIRECTION_WRITE)
    {
      struct cmsghdr *cmsg;

      msg.msg_controllen = CMSG_SPACE (sizeof (int));
      cmsg = CMSG_FIRSTHDR (&msg);
      cmsg->cmsg_level = SOL_SOCKET;
      cmsg->cmsg_type = SCM_RIGHTS;
      cmsg->cmsg_len = CMSG_LEN (sizeof (int));
      memcpy (CMSG_DATA (cmsg), &pass->fd, sizeof (int));
      do
        n = sendmsg (fd, &msg, flags | LSOCK_SEND_FLAGS);
      while (n < 0 && errno == EINTR);
    }
  else
    {
#ifdef MSG_CMSG_CLOEXEC
      flags |= MSG_CMSG_CLOEXEC;
#endif
      msg.msg_controllen = sizeof control.buf;
      do
        n = recvmsg (fd, &msg, flags);
      while (n < 0 && errno == EINTR);

      if (n >= 0)
        {
          /* Keep the first, close the rest at once: whatever happens next,
           * no descriptor is leaked */
          for (struct cmsghdr *cmsg = CMSG_FIRSTHDR (&msg);
               cmsg != NULL;
               cmsg = CMSG_NXTHDR (&msg, cmsg))
            {
              gsize n_fds;

              if (cmsg->cmsg_level != SOL_SOCKET || cmsg->cmsg_type != SCM_RIGHTS)
                continue;
              n_fds = (cmsg->cmsg_len - CMSG_LEN (0)) / sizeof (int);
              for (gsize i = 0; i < n_fds; i++)
                {
                  int received;

                  memcpy (&received, CMSG_DATA (cmsg) + i * sizeof (int), sizeof (int));
                  if (pass->n_fds++ == 0)
                    {
                      pass->fd = received;
#ifndef MSG_CMSG_CLOEXEC
                      fcntl (received, F_SETFD, FD_CLOEXEC);
#endif
                    }
                  else
                    close (received);
                }
            }
          pass->truncated = (msg.msg_flags & MSG_CTRUNC) != 0;
        }
    }

  if (n < 0)
    *out_errno = errno == EWOULDBLOCK ? EAGAIN : errno;
  return n;
}

/* ---------------------------------------------------------------------- */

static gboolean release_fd (LsockConn *conn);

gpointer
_lsock_unix_conn_new (int fd)
{
  UnixConn *unix_conn = g_new0 (UnixConn, 1);

  unix_conn->fd = fd;
  g_mutex_init (&unix_conn->watch_lock);
  return unix_conn;
}

int
_lsock_unix_conn_acquire_fd (LsockConn  *conn,
                             GError    **error)
{
  UnixConn *unix_conn = conn->backend;
  int state = g_atomic_int_get (&unix_conn->fd_state);

  /* Held from here on, unless close() is done with it... */
  do
    {
      if (state & FD_CLOSED)
        {
          _lsock_conn_set_closed_error (conn, error);
          return -1;
        }
    }
  while (!g_atomic_int_compare_and_exchange_full (&unix_conn->fd_state, state,
                                                  state + FD_USER, &state));

  /* ... or has begun: an operation that starts after close() must fail.
   * One that got in before is woken by close()'s shutdown() */
  if (g_atomic_int_get (&conn->closed))
    {
      release_fd (conn);
      _lsock_conn_set_closed_error (conn, error);
      return -1;
    }
  return unix_conn->fd;
}

/* Returns whether the connection was closed meanwhile */
static gboolean
release_fd (LsockConn *conn)
{
  UnixConn *unix_conn = conn->backend;

  if (g_atomic_int_add (&unix_conn->fd_state, -FD_USER) == FD_CLOSED + FD_USER)
    close (g_steal_fd (&unix_conn->fd));
  return g_atomic_int_get (&conn->closed);
}

void
_lsock_unix_conn_release_fd (LsockConn *conn)
{
  release_fd (conn);
}

int
_lsock_unix_conn_peek_fd (LsockConn *conn)
{
  UnixConn *unix_conn = conn->backend;
  int fd;

  g_mutex_lock (&conn->lock);
  fd = conn->closed ? -1 : unix_conn->fd;
  g_mutex_unlock (&conn->lock);
  return fd;
}

const char *
_lsock_unix_conn_peek_reactor_kind (LsockConn *conn)
{
  UnixConn *unix_conn = conn->backend;
  const char *kind = NULL;

  g_mutex_lock (&conn->lock);
  if (unix_conn->watches != NULL)
    kind = _lsock_reactor_get_kind (_lsock_watch_get_reactor (unix_conn->watches->data));
  g_mutex_unlock (&conn->lock);
  return kind;
}

gboolean
_lsock_unix_conn_peek_polled (LsockConn *conn)
{
  UnixConn *unix_conn = conn->backend;
  gboolean polled = FALSE;

  /* The reactor's lock inside the connection's, as update_conditions()
   * takes them */
  g_mutex_lock (&conn->lock);
  if (unix_conn->watches != NULL)
    polled = _lsock_watch_is_polled (unix_conn->watches->data);
  g_mutex_unlock (&conn->lock);
  return polled;
}

/* ---------------------------------------------------------------------- */
/* Sync and non-blocking */

/* One read or write, of data alone or (@pass non-NULL) with a descriptor */
static inline G_ALWAYS_INLINE gssize
conn_io (LsockConn       *conn,
         LsockDirection   direction,
         void            *buffer,
         gsize            count,
         FdPass          *pass,
         gboolean         blocking,
         GCancellable    *cancellable,
         GError         **error)
{
  UnixConn *unix_conn = conn->backend;
  int *timed_out = direction == LSOCK_DIRECTION_READ ? &unix_conn->read_timed_out :
                                                       &unix_conn->write_timed_out;
  IoOutcome outcome = IO_DONE;
  gint64 deadline = 0;
  int timeout_ms;
  int errsv = 0;
  gssize n = -1;
  int fd;

  fd = _lsock_unix_conn_acquire_fd (conn, error);
  if (fd < 0)
    return -1;

  timeout_ms = g_atomic_int_get (&conn->timeout_ms);
  if (direction == LSOCK_DIRECTION_READ && count == 0)
    n = 0;  /* not the end of the stream: recv() could not tell */
  else if (blocking && timeout_ms == 0 && cancellable == NULL)
    {
      /* The fast path: one blocking system call */
      if (pass == NULL)
        n = do_io (fd, direction, buffer, count, 0, &errsv);
      else
        n = do_msg_io (fd, direction, buffer, count, 0, pass, &errsv);
    }
  else if (g_cancellable_is_cancelled (cancellable))
    outcome = IO_CANCELLED;
  else
    {
      if (timeout_ms > 0)
        deadline = g_get_monotonic_time () + (gint64) timeout_ms * G_TIME_SPAN_MILLISECOND;

      for (;;)
        {
          int wait_ms = 0;

          if (pass == NULL)
            n = do_io (fd, direction, buffer, count, MSG_DONTWAIT, &errsv);
          else
            n = do_msg_io (fd, direction, buffer, count, MSG_DONTWAIT, pass, &errsv);
          if (n >= 0)
            {
              g_atomic_int_set (timed_out, 0);
              break;
            }
          if (errsv != EAGAIN)
            break;

          if (!blocking)
            {
              /* A pollable source whose timeout elapsed said so */
              outcome = g_atomic_int_compare_and_exchange (timed_out, 1, 0) ? IO_TIMED_OUT :
                                                                              IO_WOULD_BLOCK;
              break;
            }

          if (deadline > 0)
            {
              gint64 left = deadline - g_get_monotonic_time ();

              if (left <= 0)
                {
                  outcome = IO_TIMED_OUT;
                  break;
                }
              wait_ms = (int) MAX (1, (left + 999) / 1000);
            }
          switch (_lsock_unix_wait (fd, direction == LSOCK_DIRECTION_READ ? G_IO_IN : G_IO_OUT,
                                    wait_ms, cancellable, NULL))
            {
            case -1:
              outcome = IO_CANCELLED;
              break;
            case 0:
              outcome = IO_TIMED_OUT;
              break;
            default:
              continue;
            }
          break;
        }
    }

  /* Closed in another thread while we were at it: shut down under us */
  if (release_fd (conn) && outcome == IO_DONE && n <= 0 && count > 0)
    outcome = IO_CLOSED;

  return io_outcome (conn, direction, outcome, n, errsv, NULL, error);
}

gssize
_lsock_unix_conn_io (LsockConn       *conn,
                     LsockDirection   direction,
                     void            *buffer,
                     gsize            count,
                     gboolean         blocking,
                     GCancellable    *cancellable,
                     GError         **error)
{
  return conn_io (conn, direction, buffer, count, NULL, blocking, cancellable, error);
}

/* One byte, 0, carries the descriptor: what g_unix_connection_send_fd()
 * sends and _receive_fd() expects */
gboolean
_lsock_unix_conn_send_fd (LsockConn     *conn,
                          int            fd,
                          gboolean       blocking,
                          GCancellable  *cancellable,
                          GError       **error)
{
  char byte = 0;
  FdPass pass = { .fd = fd };
  gssize n;

  /* sendmsg() would say EBADF as if of the socket itself */
  if (fcntl (fd, F_GETFD) < 0)
    {
      int errsv = errno;

      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                   _("Could not send file descriptor %d on “%s”: %s"),
                   fd, _lsock_name_get_display (conn->name), g_strerror (errsv));
      return FALSE;
    }

  n = conn_io (conn, LSOCK_DIRECTION_WRITE, &byte, 1, &pass, blocking, cancellable, error);
  if (n < 0)
    return FALSE;
  g_assert (n == 1);  /* a stream socket takes a whole byte or nothing */
  return TRUE;
}

int
_lsock_unix_conn_receive_fd (LsockConn     *conn,
                             gboolean       blocking,
                             GCancellable  *cancellable,
                             GError       **error)
{
  const char *display;
  char byte;
  FdPass pass = { .fd = -1 };
  gssize n;

  n = conn_io (conn, LSOCK_DIRECTION_READ, &byte, 1, &pass, blocking, cancellable, error);
  if (n < 0)
    return -1;

  if (n == 1 && pass.n_fds == 1 && !pass.truncated)
    return pass.fd;

  if (pass.fd >= 0)
    close (pass.fd);
  display = _lsock_name_get_display (conn->name);
  if (n == 0)
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED,
                 _("Could not receive a file descriptor on “%s”: the peer closed the connection"),
                 display);
  else if (pass.truncated)
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                 _("Could not receive a file descriptor on “%s”: the peer sent more than "
                   "%d at once, and they were closed"), display, FD_PASS_MAX);
  else if (pass.n_fds == 0)
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                 _("Could not receive a file descriptor on “%s”: a byte of data came "
                   "without one"), display);
  else
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                 /* Translators: %d is 2 or more */
                 _("Could not receive a file descriptor on “%s”: the peer sent %d at once, "
                   "not one, and they were closed"),
                 display, pass.n_fds);
  return -1;
}

int
_lsock_unix_conn_steal_fd (LsockConn  *conn,
                           GError    **error)
{
  UnixConn *unix_conn = conn->backend;
  GSList *watches;
  int fd;

  g_mutex_lock (&conn->lock);
  if (conn->closed)
    {
      g_mutex_unlock (&conn->lock);
      _lsock_conn_set_closed_error (conn, error);
      return -1;
    }
  /* Nothing may use it meanwhile: no operation waiting, nobody holding it
   * (a sync operation in another thread, a pollable source) */
  if (unix_conn->ops[0] != NULL || unix_conn->ops[1] != NULL ||
      !g_atomic_int_compare_and_exchange (&unix_conn->fd_state, 0, FD_USER))
    {
      g_mutex_unlock (&conn->lock);
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_PENDING,
                   _("Could not take the socket of “%s”: an operation on it is still "
                     "in progress"), _lsock_name_get_display (conn->name));
      return -1;
    }
  /* Closed from here on, for everyone but us; the socket is not shut
   * down, and it is the caller's to close */
  g_atomic_int_set (&conn->closed, TRUE);
  watches = g_steal_pointer (&unix_conn->watches);
  g_mutex_unlock (&conn->lock);

  g_slist_free_full (watches, (GDestroyNotify) _lsock_watch_destroy);
  fd = g_steal_fd (&unix_conn->fd);
  g_atomic_int_add (&unix_conn->fd_state, FD_CLOSED - FD_USER);
  return fd;
}

gboolean
_lsock_unix_conn_is_ready (LsockConn      *conn,
                           LsockDirection  direction)
{
  int fd = _lsock_unix_conn_acquire_fd (conn, NULL);
  gboolean ready;

  if (fd < 0)
    return TRUE;  /* the next operation reports the closed stream */
  ready = _lsock_unix_wait (fd, direction == LSOCK_DIRECTION_READ ? G_IO_IN : G_IO_OUT,
                            -1 /* no wait */, NULL, NULL) != 0;
  _lsock_unix_conn_release_fd (conn);
  return ready;
}

static void
source_release_conn (gpointer data)
{
  LsockConn *conn = data;

  _lsock_unix_conn_release_fd (conn);
  _lsock_conn_unref (conn);
}

GSource *
_lsock_unix_conn_create_source (LsockConn      *conn,
                                GObject        *pollable,
                                LsockDirection  direction,
                                GCancellable   *cancellable)
{
  UnixConn *unix_conn = conn->backend;
  g_autoptr(GSource) child = NULL;
  int fd = _lsock_unix_conn_acquire_fd (conn, NULL);

  if (fd < 0)
    {
      /* Closed: a source that is ready at once, so the caller's next
       * operation reports the closed stream */
      child = g_timeout_source_new (0);
    }
  else
    {
      /* The source holds the fd until it is finalized */
      child = _lsock_unix_fd_source_new (fd, (direction == LSOCK_DIRECTION_READ ? G_IO_IN : G_IO_OUT) |
                                             G_IO_HUP | G_IO_ERR,
                                         g_atomic_int_get (&conn->timeout_ms));
      _lsock_unix_fd_source_set_timeout_flag (child, direction == LSOCK_DIRECTION_READ ?
                                                     &unix_conn->read_timed_out :
                                                     &unix_conn->write_timed_out);
      _lsock_unix_fd_source_set_owner (child, _lsock_conn_ref (conn), source_release_conn);
    }

  return g_pollable_source_new_full (pollable, child, cancellable);
}

/* ---------------------------------------------------------------------- */
/* Async */

static void io_op_report (IoOp *op);

static void
io_op_report_deferred (LsockDeferred *deferred)
{
  io_op_report ((IoOp *) deferred);
}

static void
watch_state_free (gpointer data)
{
  WatchState *state = data;

  _lsock_conn_unref (state->conn);
  g_free (state);
}

/* Asks @watch for what the operations waiting on it need. With the lock. */
static void
update_conditions (UnixConn   *unix_conn,
                   LsockWatch *watch)
{
  GIOCondition conditions = 0;
  IoOp *reading = unix_conn->ops[LSOCK_DIRECTION_READ];
  IoOp *writing = unix_conn->ops[LSOCK_DIRECTION_WRITE];

  if (reading != NULL && reading->watch == watch)
    conditions |= G_IO_IN;
  if (writing != NULL && writing->watch == watch)
    conditions |= G_IO_OUT;
  _lsock_watch_set_conditions (watch, conditions);
}

/* Tries @op's system call; FALSE if it would block. With the lock. */
static gboolean
io_op_try (IoOp       *op,
           WatchState *state)
{
  UnixConn *unix_conn = op->conn->backend;
  LsockDirection d = op->direction;

  if ((op->flags & LSOCK_IO_RECEIVE_BYTES) && op->buffer == NULL)
    {
      /* LSOCK_IO_RECEIVE_BYTES of a little: read here, then keep exactly
       * what came, rather than allocate the most that could and shrink it
       * after (a large malloc() and a realloc() per message) */
      char scratch[LSOCK_RECEIVE_SCRATCH];

      op->n = do_io (unix_conn->fd, d, scratch, op->count, MSG_DONTWAIT, &op->errsv);
      if (op->n >= 0)
        op->received = g_bytes_new (scratch, op->n);
    }
  else if (!(op->flags & LSOCK_IO_ALL))
    op->n = do_io (unix_conn->fd, d, op->buffer, op->count, MSG_DONTWAIT, &op->errsv);
  else
    {
      /* All of it: a short write is retried at once, since only EAGAIN
       * says the socket is full */
      for (;;)
        {
          gssize n = do_io (unix_conn->fd, d, (char *) op->buffer + op->done,
                            op->count - op->done, MSG_DONTWAIT, &op->errsv);

          if (n < 0)
            {
              op->n = -1;
              break;
            }
          op->done += n;
          if (op->done == op->count || n == 0)
            {
              op->n = op->done;
              break;
            }
        }
    }
  if (op->n < 0 && op->errsv == EAGAIN)
    {
      state->ready[d] = FALSE;
      return FALSE;
    }
  if (d == LSOCK_DIRECTION_READ && op->n >= 0)
    {
      _lsock_watch_note_read (op->watch);
      /* Less than asked for: the queue is most likely empty now. Where
       * input is reported for as long as it is there, wait for that
       * rather than try again: if the read stopped short of queued data,
       * the report comes anyway */
      if (op->n > 0 && (gsize) op->n < op->count &&
          _lsock_watch_waits_after_short_read (op->watch))
        state->ready[d] = FALSE;
    }
  op->outcome = IO_DONE;
  return TRUE;
}

/* The reactor says what became ready: serve the operations waiting here */
static void
watch_ready_cb (LsockWatch        *watch,
                GIOCondition       condition,
                gpointer           user_data,
                LsockDeferredList *ready)
{
  WatchState *state = user_data;
  LsockConn *conn = state->conn;
  UnixConn *unix_conn = conn->backend;

  g_mutex_lock (&conn->lock);
  if (conn->closed)
    {
      g_mutex_unlock (&conn->lock);
      return;
    }

  if (condition & (G_IO_IN | G_IO_PRI | G_IO_HUP | G_IO_ERR))
    state->ready[LSOCK_DIRECTION_READ] = TRUE;
  if (condition & (G_IO_OUT | G_IO_HUP | G_IO_ERR))
    state->ready[LSOCK_DIRECTION_WRITE] = TRUE;

  for (LsockDirection d = LSOCK_DIRECTION_READ; d <= LSOCK_DIRECTION_WRITE; d++)
    {
      IoOp *op = unix_conn->ops[d];

      if (op == NULL || op->watch != watch || !state->ready[d] || !io_op_try (op, state))
        continue;
      unix_conn->ops[d] = NULL;
      _lsock_deferred_list_push (ready, &op->deferred);
    }
  update_conditions (unix_conn, watch);
  g_mutex_unlock (&conn->lock);
}

static LsockWatch *
find_watch (UnixConn     *unix_conn,
            GMainContext *context,
            int           priority)
{
  for (GSList *l = unix_conn->watches; l != NULL; l = l->next)
    {
      LsockReactor *reactor = _lsock_watch_get_reactor (l->data);

      if (_lsock_reactor_get_context (reactor) == context &&
          _lsock_reactor_get_priority (reactor) == priority)
        return _lsock_watch_ref (l->data);
    }
  return NULL;
}

/* The connection's registration with the reactor of (@context, @priority),
 * made on first use (the caller looked with find_watch() first); a new
 * reference. NULL if the connection is closed, or with @error if the
 * system refuses. */
static LsockWatch *
conn_get_watch (LsockConn     *conn,
                GMainContext  *context,
                int            priority,
                GError       **error)
{
  UnixConn *unix_conn = conn->backend;
  g_autoptr(LsockReactor) reactor = NULL;
  LsockWatch *watch;
  WatchState *state;
  int fd;

  /* Two threads may make the first registration here at once: epoll
   * would refuse the second */
  g_mutex_lock (&unix_conn->watch_lock);
  g_mutex_lock (&conn->lock);
  watch = conn->closed ? NULL : find_watch (unix_conn, context, priority);
  g_mutex_unlock (&conn->lock);
  if (watch != NULL)
    goto out;

  fd = _lsock_unix_conn_acquire_fd (conn, NULL);
  if (fd < 0)
    goto out;

  reactor = _lsock_reactor_ref_for_context (context, priority);
  state = g_new0 (WatchState, 1);
  state->conn = _lsock_conn_ref (conn);
  /* Nothing is known yet: try first */
  state->ready[LSOCK_DIRECTION_READ] = state->ready[LSOCK_DIRECTION_WRITE] = TRUE;
  watch = _lsock_reactor_add_watch (reactor, fd, watch_ready_cb, state, watch_state_free, error);
  if (watch == NULL)
    {
      g_prefix_error (error, "“%s”: ", _lsock_name_get_display (conn->name));
      watch_state_free (state);
    }
  else
    {
      g_mutex_lock (&conn->lock);
      if (!conn->closed)
        {
          unix_conn->watches = g_slist_prepend (unix_conn->watches, _lsock_watch_ref (watch));
          g_mutex_unlock (&conn->lock);
        }
      else
        {
          g_mutex_unlock (&conn->lock);
          _lsock_watch_destroy (g_steal_pointer (&watch));
        }
    }
  /* After the watch is gone if it had to go: the fd stays open until here */
  _lsock_unix_conn_release_fd (conn);

out:
  g_mutex_unlock (&unix_conn->watch_lock);
  return watch;
}

/* Cancelled or timed out while waiting: report that, unless the reactor or
 * close() took the operation first */
static void
io_op_abort (IoOp      *op,
             IoOutcome  outcome)
{
  LsockConn *conn = op->conn;
  UnixConn *unix_conn = conn->backend;
  LsockDirection d = op->direction;
  gboolean taken = FALSE;

  g_mutex_lock (&conn->lock);
  if (unix_conn->ops[d] == op)
    {
      WatchState *state = _lsock_watch_get_user_data (op->watch);

      unix_conn->ops[d] = NULL;
      /* What made the reactor report readiness may have come and gone
       * meanwhile: try again next time */
      state->ready[d] = TRUE;
      update_conditions (unix_conn, op->watch);
      op->outcome = outcome;
      taken = TRUE;
    }
  g_mutex_unlock (&conn->lock);

  if (taken)
    io_op_report (op);
}

static gboolean
io_op_cancelled_cb (GCancellable *cancellable,
                    gpointer      user_data)
{
  io_op_abort (user_data, IO_CANCELLED);
  return G_SOURCE_REMOVE;
}

static gboolean
io_op_timed_out_cb (gpointer user_data)
{
  io_op_abort (user_data, IO_TIMED_OUT);
  return G_SOURCE_REMOVE;
}

static GSource *
io_op_attach (IoOp        *op,
              GSource     *source,
              GSourceFunc  func)
{
  g_source_set_static_name (source, "[lsock] I/O");
  g_source_set_priority (source, _lsock_reactor_get_priority (op->reactor));
  g_source_set_callback (source, func, op, NULL);
  g_source_attach (source, _lsock_reactor_get_context (op->reactor));
  return source;
}

/* Waits for readiness. With the lock. */
static void
io_op_park (IoOp *op)
{
  UnixConn *unix_conn = op->conn->backend;
  int timeout_ms = g_atomic_int_get (&op->conn->timeout_ms);

  unix_conn->ops[op->direction] = op;
  update_conditions (unix_conn, op->watch);

  /* Both report in the reactor's context, like the operation */
  if (op->cancellable != NULL)
    op->cancel_source = io_op_attach (op, g_cancellable_source_new (op->cancellable),
                                      (GSourceFunc) (void (*) (void)) io_op_cancelled_cb);
  if (timeout_ms > 0)
    op->timeout_source = io_op_attach (op, g_timeout_source_new (timeout_ms), io_op_timed_out_cb);
}

/* Calls back, in the reactor's context, once */
static void
io_op_report (IoOp *op)
{
  LsockAsyncResult *result = op->result;

  if (op->cancel_source != NULL)
    {
      g_source_destroy (op->cancel_source);
      g_clear_pointer (&op->cancel_source, g_source_unref);
    }
  if (op->timeout_source != NULL)
    {
      g_source_destroy (op->timeout_source);
      g_clear_pointer (&op->timeout_source, g_source_unref);
    }

  result->count = io_outcome (op->conn, op->direction, op->outcome, op->n, op->errsv,
                              g_steal_pointer (&op->error), &result->error);
  result->op = NULL;
  if (op->flags & LSOCK_IO_RECEIVE_BYTES)
    {
      if (op->received != NULL)
        {
          result->bytes = result->count >= 0 ? g_steal_pointer (&op->received) : NULL;
          g_clear_pointer (&op->received, g_bytes_unref);
        }
      else if (result->count > 0)
        {
          /* The buffer becomes the result, no larger than what came */
          result->bytes = g_bytes_new_take ((gsize) result->count < op->count ?
                                              g_realloc (op->buffer, result->count) :
                                              op->buffer,
                                            result->count);
        }
      else
        {
          g_free (op->buffer);
          if (result->count == 0)
            result->bytes = g_bytes_new (NULL, 0);
        }
    }
  g_clear_pointer (&op->held, g_bytes_unref);

  /* Nothing of the connection is held by the time the caller hears back */
  if (op->watch == NULL)
    _lsock_reactor_unref (op->reactor);
  g_clear_pointer (&op->watch, _lsock_watch_unref);
  g_clear_object (&op->cancellable);

  /* The operation is over before its callback hears of it, which may
   * start the next one */
  if (op->flags & LSOCK_IO_CLEAR_PENDING)
    op->conn->busy[op->direction] = FALSE;
  g_free (op);

  _lsock_async_result_complete (result);
  g_object_unref (result);
}

void
_lsock_unix_conn_io_async (LsockConn          *conn,
                           gpointer            stream,
                           LsockDirection      direction,
                           void               *buffer,
                           gsize               count,
                           int                 io_priority,
                           GCancellable       *cancellable,
                           GAsyncReadyCallback callback,
                           gpointer            user_data,
                           gpointer            source_tag)
{
  _lsock_unix_conn_io_async_full (conn, stream, direction, 0, buffer, count, NULL,
                                  io_priority, cancellable, callback, user_data, source_tag);
}

void
_lsock_unix_conn_io_async_full (LsockConn          *conn,
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
                                gpointer            source_tag)
{
  UnixConn *unix_conn = conn->backend;
  GMainContext *context = g_main_context_get_thread_default ();
  IoOp *op;
  gboolean waiting = FALSE;

  g_assert (buffer != NULL || count == 0 ||
            ((flags & LSOCK_IO_RECEIVE_BYTES) && count <= LSOCK_RECEIVE_SCRATCH));

  if (context == NULL)
    context = g_main_context_default ();

  op = g_new (IoOp, 1);

  /* malloc() and a compound literal rather than calloc(), which glibc
   * serves past its per-thread cache */
  *op = (IoOp) {
    .deferred.run = io_op_report_deferred,
    .result = _lsock_async_result_new (stream, source_tag, callback, user_data),
    .conn = conn,
    .direction = direction,
    .flags = flags,
    .buffer = buffer,
    .count = count,
    .held = held != NULL ? g_bytes_ref (held) : NULL,
    .cancellable = cancellable != NULL ? g_object_ref (cancellable) : NULL,
  };
  op->result->op = op;

  /* The registration for this context, under the one lock the operation
   * takes anyway; the first operation here makes it, outside it */
  g_mutex_lock (&conn->lock);
  if (!conn->closed)
    op->watch = find_watch (unix_conn, context, io_priority);
  if (op->watch == NULL && !conn->closed)
    {
      g_mutex_unlock (&conn->lock);
      op->watch = conn_get_watch (conn, context, io_priority, &op->error);
      g_mutex_lock (&conn->lock);
    }
  /* The watch holds its reactor for as long as we hold the watch */
  if (op->watch != NULL)
    op->reactor = _lsock_watch_get_reactor (op->watch);

  if (conn->closed)
    op->outcome = IO_CLOSED;
  else if (op->watch == NULL)
    op->outcome = op->error != NULL ? IO_FAILED : IO_CLOSED;
  else if (!(flags & LSOCK_IO_CLEAR_PENDING) &&
           !_lsock_conn_check_not_busy (conn, direction, &op->error))
    op->outcome = IO_FAILED;
  else if (g_cancellable_is_cancelled (cancellable))
    op->outcome = IO_CANCELLED;
  else if (count == 0 && (direction == LSOCK_DIRECTION_READ || (flags & LSOCK_IO_ALL)))
    op->outcome = IO_DONE;  /* n = 0: nothing to do */
  else
    {
      WatchState *state = _lsock_watch_get_user_data (op->watch);

      if (!state->ready[direction] || !io_op_try (op, state))
        {
          io_op_park (op);
          waiting = TRUE;
        }
    }
  g_mutex_unlock (&conn->lock);

  if (waiting)
    return;
  if (op->reactor == NULL)
    op->reactor = _lsock_reactor_ref_for_context (context, io_priority);
  if (flags & LSOCK_IO_NEXT_DISPATCH)
    _lsock_reactor_defer_next (op->reactor, &op->deferred);
  else
    _lsock_reactor_defer (op->reactor, &op->deferred);
}

gssize
_lsock_unix_conn_io_finish (gpointer       stream,
                            GAsyncResult  *result,
                            gpointer       source_tag,
                            GError       **error)
{
  g_return_val_if_fail (_lsock_async_result_is_valid (result, stream, source_tag), -1);

  return _lsock_async_result_propagate ((LsockAsyncResult *) result, error);
}

/* ---------------------------------------------------------------------- */

void
_lsock_conn_close_impl (LsockConn *conn)
{
  UnixConn *unix_conn = conn->backend;
  IoOp *ops[2];
  GSList *watches;

  /* Take what waits, and hold the fd while the registrations go: epoll
   * must forget it before its number can be reused */
  g_mutex_lock (&conn->lock);
  ops[0] = g_steal_pointer (&unix_conn->ops[0]);
  ops[1] = g_steal_pointer (&unix_conn->ops[1]);
  watches = g_steal_pointer (&unix_conn->watches);
  g_mutex_unlock (&conn->lock);
  /* conn->closed is set: nobody new may hold it, nor close it before we
   * say we are done */
  g_atomic_int_add (&unix_conn->fd_state, FD_USER);

  g_slist_free_full (watches, (GDestroyNotify) _lsock_watch_destroy);

  for (int d = 0; d < 2; d++)
    {
      if (ops[d] == NULL)
        continue;
      ops[d]->outcome = IO_CLOSED;
      _lsock_reactor_defer (ops[d]->reactor, &ops[d]->deferred);
    }

  /* Wake whoever still uses it (while we hold it, so it is still ours);
   * the last of them closes it */
  if (g_atomic_int_get (&unix_conn->fd_state) > FD_USER)
    shutdown (unix_conn->fd, SHUT_RDWR);
  if (g_atomic_int_add (&unix_conn->fd_state, FD_CLOSED - FD_USER) == FD_USER)
    close (g_steal_fd (&unix_conn->fd));
}

void
_lsock_conn_free_impl (LsockConn *conn)
{
  UnixConn *unix_conn = conn->backend;

  g_assert (g_atomic_int_get (&unix_conn->fd_state) == FD_CLOSED && unix_conn->fd < 0);
  g_assert (unix_conn->watches == NULL);
  g_mutex_clear (&unix_conn->watch_lock);
  g_free (unix_conn);
}
