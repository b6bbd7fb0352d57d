/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include "lsock-stream-private.h"
#include "lsock-name-private.h"
#include "lsock-unix-private.h"
#include "lsock-i18n-private.h"
#include "lsock-result-private.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#ifdef __linux__
# include <sys/epoll.h>
# define HAVE_EPOLL 1
#endif

/* The socket fd is blocking, so a blocking read or write with no timeout and
 * no cancellable is exactly one system call. Every other operation uses
 * MSG_DONTWAIT and waits in poll(), with the cancellable's fd beside it. */

#ifndef MSG_DONTWAIT
# error "MSG_DONTWAIT is required"
#endif

typedef enum {
  DIRECTION_READ,
  DIRECTION_WRITE,
} Direction;

static void
set_io_error (LsockConn  *conn,
              Direction   direction,
              int         errsv,
              GError    **error)
{
  const char *display = _lsock_name_get_display (conn->name);

  if (direction == DIRECTION_READ)
    g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errsv),
                 _("Error reading from “%s”: %s"), display, g_strerror (errsv));
  else
    g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errsv),
                 _("Error writing to “%s”: %s"), display, g_strerror (errsv));
}

static void
set_timed_out_error (LsockConn  *conn,
                     Direction   direction,
                     GError    **error)
{
  const char *display = _lsock_name_get_display (conn->name);

  if (direction == DIRECTION_READ)
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
                 _("Timed out reading from “%s”"), display);
  else
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
                 _("Timed out writing to “%s”"), display);
}

static void
set_conn_closed_error (LsockConn  *conn,
                       GError    **error)
{
  g_set_error (error, G_IO_ERROR, G_IO_ERROR_CLOSED,
               _("The connection to “%s” is closed"),
               _lsock_name_get_display (conn->name));
}

static inline gssize
do_io (int         fd,
       Direction   direction,
       void       *buffer,
       gsize       count,
       int         flags)
{
  if (direction == DIRECTION_READ)
    return recv (fd, buffer, count, flags);
  else
    return send (fd, buffer, count, flags | LSOCK_SEND_FLAGS);
}

/* One read or write: blocking (honouring the timeout and @cancellable) or
 * not (G_IO_ERROR_WOULD_BLOCK). */
static gssize
conn_io (LsockConn     *conn,
         Direction      direction,
         void          *buffer,
         gsize          count,
         gboolean       blocking,
         GCancellable  *cancellable,
         GError       **error)
{
  int fd = g_atomic_int_get (&conn->fd);
  int *timed_out = direction == DIRECTION_READ ? &conn->read_timed_out : &conn->write_timed_out;
  int timeout_ms;
  gssize n;
  int errsv;

  if (fd < 0)
    {
      set_conn_closed_error (conn, error);
      return -1;
    }

  timeout_ms = g_atomic_int_get (&conn->timeout_ms);

  /* The fast path: one blocking system call */
  if (blocking && timeout_ms == 0 && cancellable == NULL)
    {
      do
        n = do_io (fd, direction, buffer, count, 0);
      while (n < 0 && errno == EINTR);
      if (n >= 0)
        return n;
      errsv = errno;
      goto fail;
    }

  if (g_cancellable_set_error_if_cancelled (cancellable, error))
    return -1;

  for (;;)
    {
      n = do_io (fd, direction, buffer, count, MSG_DONTWAIT);
      if (n >= 0)
        {
          g_atomic_int_set (timed_out, 0);
          return n;
        }

      errsv = errno;
      if (errsv == EINTR)
        continue;
      if (errsv != EAGAIN && errsv != EWOULDBLOCK)
        goto fail;

      if (!blocking)
        {
          /* A pollable source whose timeout elapsed */
          if (g_atomic_int_compare_and_exchange (timed_out, 1, 0))
            {
              set_timed_out_error (conn, direction, error);
              return -1;
            }
          g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK,
                               g_strerror (errsv));
          return -1;
        }

      switch (_lsock_unix_wait (fd, direction == DIRECTION_READ ? G_IO_IN : G_IO_OUT,
                                timeout_ms, cancellable, error))
        {
        case -1:
          return -1;
        case 0:
          set_timed_out_error (conn, direction, error);
          return -1;
        default:
          break;
        }
    }

fail:
  /* Closed locally while we waited */
  if (g_atomic_int_get (&conn->fd) < 0)
    {
      set_conn_closed_error (conn, error);
      return -1;
    }
  /* A peer that closed with unread data makes the next read fail with
   * ECONNRESET on Linux: that is the end of the stream here. */
  if (direction == DIRECTION_READ && errsv == ECONNRESET)
    return 0;
  set_io_error (conn, direction, errsv, error);
  return -1;
}

static GSource *
conn_create_source (LsockConn    *conn,
                    GObject      *pollable,
                    Direction     direction,
                    GCancellable *cancellable)
{
  g_autoptr(GSource) child = NULL;
  int fd = g_atomic_int_get (&conn->fd);
  GIOCondition condition = direction == DIRECTION_READ ? G_IO_IN : G_IO_OUT;

  if (fd < 0)
    fd = conn->zombie_fd;
  if (fd < 0)
    {
      /* Closed: a source that is ready at once, so the caller's next
       * operation reports the closed stream */
      child = g_timeout_source_new (0);
    }
  else
    {
      child = _lsock_unix_fd_source_new (fd, condition | G_IO_HUP | G_IO_ERR,
                                         g_atomic_int_get (&conn->timeout_ms));
      _lsock_unix_fd_source_set_timeout_flag (child, direction == DIRECTION_READ ?
                                                     &conn->read_timed_out :
                                                     &conn->write_timed_out);
    }

  return g_pollable_source_new_full (pollable, child, cancellable);
}

static gboolean
conn_is_ready (LsockConn *conn,
               Direction  direction)
{
  int fd = g_atomic_int_get (&conn->fd);

  if (fd < 0)
    return TRUE;
  return _lsock_unix_wait (fd, direction == DIRECTION_READ ? G_IO_IN : G_IO_OUT,
                           -1 /* no wait */, NULL, NULL) != 0;
}

/* Async reads and writes.
 *
 * GInputStream's default read_async for a pollable stream makes a GError
 * for every G_IO_ERROR_WOULD_BLOCK, task data, and a pollable source
 * wrapping an fd source for every wait. Here an operation tries the system
 * call at once. On Linux, at the default priority, it then goes to the
 * context's reactor (below). Otherwise, only when it would block does it
 * make one source, which carries the operation itself and does the I/O
 * when the fd is ready; an operation that completes at once still reports
 * from the next main loop iteration (GTask does that). With a timeout or a
 * cancellable the streams use GIO's default pollable path, which handles
 * both. */

typedef struct
{
  GSource     source;
  gpointer    tag;
  GTask      *task;
  LsockConn  *conn;
  Direction   direction;
  void       *buffer;
  gsize       count;
} IoSource;

/* One non-blocking attempt: >= 0 bytes, or -1 with *out_errno set
 * (EAGAIN: try again when ready) */
static gssize
conn_try_io (LsockConn *conn,
             Direction  direction,
             void      *buffer,
             gsize      count,
             int       *out_errno)
{
  int fd = g_atomic_int_get (&conn->fd);
  gssize n;

  if (fd < 0)
    {
      *out_errno = EBADF;
      return -1;
    }
  do
    n = do_io (fd, direction, buffer, count, MSG_DONTWAIT);
  while (n < 0 && errno == EINTR);
  if (n < 0)
    *out_errno = errno == EWOULDBLOCK ? EAGAIN : errno;
  return n;
}

/* Returns the task's result for a finished attempt; FALSE if it would block */
static gboolean
io_task_complete (GTask     *task,
                  LsockConn *conn,
                  Direction  direction,
                  gssize     n,
                  int        errsv)
{
  GError *error = NULL;

  if (n >= 0)
    {
      g_task_return_int (task, n);
      return TRUE;
    }
  if (errsv == EAGAIN)
    return FALSE;

  if (g_atomic_int_get (&conn->fd) < 0)
    set_conn_closed_error (conn, &error);
  else if (direction == DIRECTION_READ && errsv == ECONNRESET)
    {
      /* As conn_io(): a reset is the end of the stream */
      g_task_return_int (task, 0);
      return TRUE;
    }
  else
    set_io_error (conn, direction, errsv, &error);
  g_task_return_error (task, error);
  return TRUE;
}

static gboolean
io_source_dispatch (GSource     *source,
                    GSourceFunc  callback,
                    gpointer     user_data)
{
  IoSource *io = (IoSource *) source;
  int errsv = 0;
  gssize n = conn_try_io (io->conn, io->direction, io->buffer, io->count, &errsv);

  if (!io_task_complete (io->task, io->conn, io->direction, n, errsv))
    return G_SOURCE_CONTINUE;

  g_clear_object (&io->task);
  return G_SOURCE_REMOVE;
}

static void
io_source_finalize (GSource *source)
{
  IoSource *io = (IoSource *) source;

  g_clear_object (&io->task);
  g_clear_pointer (&io->conn, _lsock_conn_unref);
}

static GSourceFuncs io_source_funcs = {
  .dispatch = io_source_dispatch,
  .finalize = io_source_finalize,
};

#ifdef HAVE_EPOLL
/* The reactor: one epoll fd per GMainContext, watched by one GSource.
 *
 * A GMainContext keeps its fds in a list sorted by number and polls them
 * all in every iteration; adding or removing an fd also writes to the
 * context's wakeup eventfd (and so does blocking a source for its
 * dispatch, and g_source_set_ready_time()). With a source per waiting
 * operation that is O(connections) work, and several more system calls,
 * per message. Here each connection is registered once with the context's
 * epoll fd, edge-triggered, for input (and for output only while a write
 * waits); the context polls that single fd, and one dispatch serves every
 * ready connection. Each connection remembers whether its last read or
 * write came up short: a short transfer on a stream socket means the
 * queue was drained (or the buffer filled) at that moment, and the next
 * edge will say when that changes, so the next operation waits for it
 * without trying a system call that would fail with EAGAIN. Operations
 * that complete at once are queued and reported from the reactor's next
 * dispatch (GIO never calls back from inside the _async call, and the
 * GTask that g_output_stream_write_async() wraps around us would return
 * through an idle source if we called back in the same iteration). */

typedef struct _Reactor Reactor;

/* An operation in flight, and its GAsyncResult. A GTask costs more than
 * the system call it reports (a GObject with a notify, a context
 * reference, qdata): this small result is recycled by its connection once
 * the caller has let go of it, so steady async I/O allocates nothing. */
#define LSOCK_TYPE_IO_OP (lsock_io_op_get_type ())
G_DECLARE_FINAL_TYPE (LsockIoOp, lsock_io_op, LSOCK, IO_OP, LsockResult)

/* The source object is the substream */
struct _LsockIoOp
{
  LsockResult          parent_instance;
  LsockConn           *conn;       /* held while in flight */
  Direction            direction;
  void                *buffer;
  gsize                count;
  gssize               n;
  int                  errsv;
  GError              *error;
  GAsyncReadyCallback  callback;
  LsockIoOp           *next;       /* in an OpList */
};

/* A FIFO of operations done, linked through the operations themselves
 * (a GQueue would allocate a node for each) */
typedef struct
{
  LsockIoOp *head;
  LsockIoOp *tail;
} OpList;

static void
op_list_push (OpList    *list,
              LsockIoOp *op)
{
  op->next = NULL;
  if (list->tail != NULL)
    list->tail->next = op;
  else
    list->head = op;
  list->tail = op;
}

static LsockIoOp *
op_list_pop (OpList *list)
{
  LsockIoOp *op = list->head;

  if (op != NULL)
    {
      list->head = op->next;
      if (list->head == NULL)
        list->tail = NULL;
      op->next = NULL;
    }
  return op;
}

G_DEFINE_FINAL_TYPE (LsockIoOp, lsock_io_op, LSOCK_TYPE_RESULT)

static void
lsock_io_op_finalize (GObject *object)
{
  LsockIoOp *op = LSOCK_IO_OP (object);

  g_clear_pointer (&op->conn, _lsock_conn_unref);
  g_clear_error (&op->error);

  G_OBJECT_CLASS (lsock_io_op_parent_class)->finalize (object);
}

static void
lsock_io_op_class_init (LsockIoOpClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = lsock_io_op_finalize;
}

static void
lsock_io_op_init (LsockIoOp *op)
{
}

/* conn->backend: the connection's registration with a reactor */
typedef struct
{
  Reactor   *reactor;   /* holds a reference on its source */
  int        fd;        /* the fd registered */
  guint32    events;    /* registered with epoll */
  gboolean   ready[2];  /* by Direction: may not fail with EAGAIN */
  gboolean   sticky[2]; /* by Direction: a short transfer does not mean
                         * drained or full (see watch_try_op()) */
  LsockIoOp *ops[2];    /* in flight, by Direction */
  LsockIoOp *spare[2];  /* finished and let go of: reused */
} ConnWatch;

struct _Reactor
{
  GSource       source;
  gpointer      tag;
  int           epfd;
  GMainContext *context;  /* not owned */
  /* Guards everything below and every ConnWatch registered here */
  GMutex        lock;
  GHashTable   *watches;  /* ConnWatch* set: epoll events may outlive one */
  OpList        done;     /* finished at once, to report */
  int           n_done;   /* atomic: how many are in done, for prepare/check */
};

#define WATCH_EVENTS (EPOLLIN | EPOLLPRI | EPOLLRDHUP | EPOLLET)

G_LOCK_DEFINE_STATIC (reactors);
static GHashTable *reactors;  /* GMainContext* → Reactor* */

/* Calls back, then keeps @op for the connection's next operation if
 * nobody else holds it */
static void
io_op_report (LsockIoOp *op)
{
  LsockResult *result = LSOCK_RESULT (op);
  LsockConn *conn = op->conn;
  ConnWatch *watch = conn->backend;
  Direction d = op->direction;

  if (op->n < 0)
    {
      if (g_atomic_int_get (&conn->fd) < 0)
        set_conn_closed_error (conn, &op->error);
      else if (d == DIRECTION_READ && op->errsv == ECONNRESET)
        op->n = 0;  /* as conn_io(): a reset is the end of the stream */
      else
        set_io_error (conn, d, op->errsv, &op->error);
    }

  op->callback (result->source_object, G_ASYNC_RESULT (op), result->user_data);

  op->conn = NULL;  /* our reference goes below */
  g_clear_object (&result->source_object);
  op->callback = NULL;
  result->user_data = NULL;
  if (_lsock_result_is_unshared (op) &&
      g_atomic_pointer_compare_and_exchange (&watch->spare[d], NULL, op))
    op = NULL;
  g_clear_object (&op);
  _lsock_conn_unref (conn);
}

/* Tries @op's system call; FALSE if it would block (and so must wait for
 * the next edge). Called with the reactor locked. */
static gboolean
watch_try_op (ConnWatch *watch,
              LsockIoOp *op)
{
  Direction d = op->direction;

  op->n = conn_try_io (op->conn, d, op->buffer, op->count, &op->errsv);
  if (op->n < 0 && op->errsv == EAGAIN)
    {
      watch->ready[d] = FALSE;
      return FALSE;
    }
  /* Short: drained or filled just now. (0 is the end of the stream, which
   * stays readable.) Except, for good, once the connection has seen a
   * hang-up or an error, whose edge has come and gone while the end of
   * the stream (or the error) is still to be read; or urgent data
   * (MSG_OOB), at whose mark recv() stops short with more queued. */
  if (op->n > 0 && (gsize) op->n < op->count && !watch->sticky[d])
    watch->ready[d] = FALSE;
  return TRUE;
}

/* Registers for output only while a write waits: otherwise every read by
 * the peer, which frees buffer space, would wake the reactor */
static void
watch_update_events (Reactor   *reactor,
                     ConnWatch *watch)
{
  guint32 events = WATCH_EVENTS | (watch->ops[DIRECTION_WRITE] != NULL ? EPOLLOUT : 0);
  struct epoll_event ev = { .events = events, .data.ptr = watch };

  if (events == watch->events || watch->fd < 0)
    return;
  if (epoll_ctl (reactor->epfd, EPOLL_CTL_MOD, watch->fd, &ev) == 0)
    watch->events = events;
}

static void
reactor_queue_done (Reactor   *reactor,
                    LsockIoOp *op)
{
  op_list_push (&reactor->done, op);
  g_atomic_int_inc (&reactor->n_done);
}

static gboolean
reactor_prepare (GSource *source,
                 int     *timeout)
{
  *timeout = -1;
  return g_atomic_int_get (&((Reactor *) source)->n_done) > 0;
}

static gboolean
reactor_check (GSource *source)
{
  Reactor *reactor = (Reactor *) source;

  return g_atomic_int_get (&reactor->n_done) > 0 ||
         g_source_query_unix_fd (source, reactor->tag) != 0;
}

static gboolean
reactor_dispatch (GSource     *source,
                  GSourceFunc  callback,
                  gpointer     user_data)
{
  Reactor *reactor = (Reactor *) source;
  struct epoll_event events[64];
  OpList done;
  LsockIoOp *op;
  int n_events = 0;

  g_mutex_lock (&reactor->lock);
  done = reactor->done;
  reactor->done.head = reactor->done.tail = NULL;
  g_atomic_int_set (&reactor->n_done, 0);

  /* Only when the epoll fd was readable: iterations that just report
   * operations done at once need no system call here */
  if (g_source_query_unix_fd (source, reactor->tag) != 0)
    {
      do
        n_events = epoll_wait (reactor->epfd, events, G_N_ELEMENTS (events), 0);
      while (n_events < 0 && errno == EINTR);
    }

  for (int i = 0; i < n_events; i++)
    {
      ConnWatch *watch = events[i].data.ptr;
      guint32 revents = events[i].events;

      /* Unregistered (closed) since epoll reported it */
      if (!g_hash_table_contains (reactor->watches, watch))
        continue;

      if (revents & (EPOLLIN | EPOLLPRI | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
        watch->ready[DIRECTION_READ] = TRUE;
      if (revents & (EPOLLOUT | EPOLLHUP | EPOLLERR))
        watch->ready[DIRECTION_WRITE] = TRUE;
      if (revents & (EPOLLRDHUP | EPOLLHUP | EPOLLERR | EPOLLPRI))
        watch->sticky[DIRECTION_READ] = TRUE;
      if (revents & (EPOLLHUP | EPOLLERR))
        watch->sticky[DIRECTION_WRITE] = TRUE;

      for (Direction d = DIRECTION_READ; d <= DIRECTION_WRITE; d++)
        {
          op = watch->ops[d];
          if (op == NULL || !watch->ready[d] || !watch_try_op (watch, op))
            continue;
          watch->ops[d] = NULL;
          op_list_push (&done, op);
        }
      watch_update_events (reactor, watch);
    }
  g_mutex_unlock (&reactor->lock);

  /* Report with the lock released: callbacks start the next operations */
  while ((op = op_list_pop (&done)) != NULL)
    io_op_report (op);

  return G_SOURCE_CONTINUE;
}

static void
reactor_finalize (GSource *source)
{
  Reactor *reactor = (Reactor *) source;

  G_LOCK (reactors);
  if (reactors != NULL && g_hash_table_lookup (reactors, reactor->context) == reactor)
    g_hash_table_remove (reactors, reactor->context);
  G_UNLOCK (reactors);

  close (reactor->epfd);
  g_hash_table_unref (reactor->watches);
  g_mutex_clear (&reactor->lock);
}

static GSourceFuncs reactor_funcs = {
  .prepare = reactor_prepare,
  .check = reactor_check,
  .dispatch = reactor_dispatch,
  .finalize = reactor_finalize,
};

/* The reactor of @context, made and attached on first use; a new
 * reference, or NULL if epoll is unavailable */
static Reactor *
reactor_get (GMainContext *context)
{
  Reactor *reactor;

  G_LOCK (reactors);
  if (reactors == NULL)
    reactors = g_hash_table_new (NULL, NULL);
  reactor = g_hash_table_lookup (reactors, context);
  if (reactor != NULL && !g_source_is_destroyed (&reactor->source))
    {
      g_source_ref (&reactor->source);
      G_UNLOCK (reactors);
      return reactor;
    }

  reactor = (Reactor *) g_source_new (&reactor_funcs, sizeof (Reactor));
  reactor->epfd = epoll_create1 (EPOLL_CLOEXEC);
  reactor->context = context;
  g_mutex_init (&reactor->lock);
  reactor->watches = g_hash_table_new (NULL, NULL);
  if (reactor->epfd < 0)
    {
      reactor->context = NULL;
      G_UNLOCK (reactors);
      g_source_unref (&reactor->source);
      return NULL;
    }
  reactor->tag = g_source_add_unix_fd (&reactor->source, reactor->epfd, G_IO_IN);
  g_source_set_static_name (&reactor->source, "[lsock] I/O");
  g_source_set_priority (&reactor->source, G_PRIORITY_DEFAULT);
  /* GLib blocks a source that cannot recurse for its dispatch, which
   * removes its fd from the context and adds it back: two writes to the
   * context's eventfd, and one more iteration, per dispatch. The dispatch
   * above is safe to re-enter (callbacks run with nothing held, every
   * operation is taken off its watch before it is reported). */
  g_source_set_can_recurse (&reactor->source, TRUE);
  g_hash_table_replace (reactors, context, reactor);
  /* The context owns the attached source; the caller gets a reference */
  g_source_attach (&reactor->source, context);
  G_UNLOCK (reactors);

  return reactor;
}

/* Removes @conn from its reactor, if any */
static void
conn_unwatch (LsockConn *conn)
{
  ConnWatch *watch = conn->backend;
  Reactor *reactor;

  if (watch == NULL || watch->reactor == NULL)
    return;
  reactor = watch->reactor;
  G_LOCK (reactors);
  g_mutex_lock (&reactor->lock);
  epoll_ctl (reactor->epfd, EPOLL_CTL_DEL, watch->fd, NULL);
  g_hash_table_remove (reactor->watches, watch);
  g_atomic_pointer_set (&watch->reactor, NULL);
  watch->fd = -1;
  /* The last connection gone: the reactor goes too, and with it the epoll
   * fd, so that a context that is done with lsock holds nothing of it */
  if (g_hash_table_size (reactor->watches) == 0 && reactor->done.head == NULL)
    {
      if (g_hash_table_lookup (reactors, reactor->context) == reactor)
        g_hash_table_remove (reactors, reactor->context);
      g_source_destroy (&reactor->source);
    }
  g_mutex_unlock (&reactor->lock);
  G_UNLOCK (reactors);
  g_source_unref (&reactor->source);
}

/* The fast path on Linux. FALSE if the operation must take another path.
 * A connection joins the reactor of the context of its first async
 * operation and stays there until it is closed; operations started from
 * another context take the other path. */
static gboolean
reactor_io_async (LsockConn           *conn,
                  gpointer             stream,
                  Direction            direction,
                  void                *buffer,
                  gsize                count,
                  GAsyncReadyCallback  callback,
                  gpointer             user_data,
                  gpointer             source_tag)
{
  GMainContext *context = g_main_context_get_thread_default ();
  ConnWatch *watch = conn->backend;
  Reactor *reactor;
  LsockIoOp *op;
  int fd = g_atomic_int_get (&conn->fd);

  if (fd < 0)
    return FALSE;  /* closed: the other path reports it */
  if (context == NULL)
    context = g_main_context_default ();

  if (watch == NULL)
    {
      /* Two threads may start the first read and write together */
      ConnWatch *fresh = g_new0 (ConnWatch, 1);

      fresh->fd = -1;
      if (!g_atomic_pointer_compare_and_exchange (&conn->backend, NULL, fresh))
        g_free (fresh);
      watch = conn->backend;
    }

  reactor = g_atomic_pointer_get (&watch->reactor);
  if (reactor == NULL)
    {
      struct epoll_event ev = { .events = WATCH_EVENTS, .data.ptr = watch };

      reactor = reactor_get (context);
      if (reactor == NULL)
        return FALSE;
      g_mutex_lock (&reactor->lock);
      if (g_source_is_destroyed (&reactor->source) ||
          !g_atomic_pointer_compare_and_exchange (&watch->reactor, NULL, reactor))
        {
          /* Its last connection closed just now, or another thread
           * registered this one first */
          g_mutex_unlock (&reactor->lock);
          g_source_unref (&reactor->source);
          return FALSE;
        }
      if (epoll_ctl (reactor->epfd, EPOLL_CTL_ADD, fd, &ev) != 0)
        {
          g_atomic_pointer_set (&watch->reactor, NULL);
          g_mutex_unlock (&reactor->lock);
          g_source_unref (&reactor->source);
          return FALSE;
        }
      /* The watch keeps the reference reactor_get() gave */
      watch->fd = fd;
      watch->events = WATCH_EVENTS;
      watch->ready[DIRECTION_READ] = watch->ready[DIRECTION_WRITE] = TRUE;
      g_hash_table_add (reactor->watches, watch);
    }
  else
    {
      if (reactor->context != context)
        return FALSE;
      g_mutex_lock (&reactor->lock);
      if (g_source_is_destroyed (&reactor->source) || watch->reactor != reactor)
        {
          g_mutex_unlock (&reactor->lock);
          return FALSE;
        }
    }

  /* watch->reactor == reactor, locked */
  op = g_atomic_pointer_exchange (&watch->spare[direction], NULL);
  if (op == NULL)
    op = g_object_new (LSOCK_TYPE_IO_OP, NULL);
  g_clear_error (&op->error);
  LSOCK_RESULT (op)->source_object = g_object_ref (stream);
  op->callback = callback;
  LSOCK_RESULT (op)->user_data = user_data;
  LSOCK_RESULT (op)->source_tag = source_tag;
  op->conn = _lsock_conn_ref (conn);
  op->direction = direction;
  op->buffer = buffer;
  op->count = count;

  if (watch->ready[direction] && watch_try_op (watch, op))
    {
      /* Done already: report from the next dispatch. The thread that runs
       * the context finds it in prepare(); any other must be woken. */
      reactor_queue_done (reactor, op);
      g_mutex_unlock (&reactor->lock);
      if (!g_main_context_is_owner (context))
        g_main_context_wakeup (context);
      return TRUE;
    }

  watch->ops[direction] = op;
  watch_update_events (reactor, watch);
  g_mutex_unlock (&reactor->lock);
  return TRUE;
}
#endif /* HAVE_EPOLL */

static gssize
conn_io_finish (gpointer       stream,
                GAsyncResult  *result,
                GError       **error)
{
#ifdef HAVE_EPOLL
  if (LSOCK_IS_IO_OP (result))
    {
      LsockIoOp *op = LSOCK_IO_OP (result);

      if (op->error != NULL)
        {
          g_propagate_error (error, g_steal_pointer (&op->error));
          return -1;
        }
      return op->n;
    }
#endif
  g_return_val_if_fail (g_task_is_valid (result, stream), -1);

  return g_task_propagate_int (G_TASK (result), error);
}

/* Whether this operation can take the fast path; if not, the caller chains
 * up to GIO's default pollable implementation */
static gboolean
conn_can_io_async (LsockConn    *conn,
                   GCancellable *cancellable)
{
  return cancellable == NULL && g_atomic_int_get (&conn->timeout_ms) == 0;
}

static void
conn_io_async (LsockConn           *conn,
               gpointer             stream,
               Direction            direction,
               void                *buffer,
               gsize                count,
               int                  io_priority,
               GAsyncReadyCallback  callback,
               gpointer             user_data,
               gpointer             source_tag)
{
  GTask *task;
  int fd = g_atomic_int_get (&conn->fd);
  int errsv = 0;
  gssize n;
  IoSource *io;

#ifdef HAVE_EPOLL
  if (io_priority == G_PRIORITY_DEFAULT &&
      reactor_io_async (conn, stream, direction, buffer, count,
                        callback, user_data, source_tag))
    return;
#endif

  task = g_task_new (stream, NULL, callback, user_data);
  /* No g_task_set_name(): it copies the string, on every operation */
  g_task_set_source_tag (task, source_tag);
  g_task_set_priority (task, io_priority);

  n = conn_try_io (conn, direction, buffer, count, &errsv);
  if (io_task_complete (task, conn, direction, n, errsv))
    {
      g_object_unref (task);
      return;
    }

  io = (IoSource *) g_source_new (&io_source_funcs, sizeof (IoSource));
  io->task = task;
  io->conn = _lsock_conn_ref (conn);
  io->direction = direction;
  io->buffer = buffer;
  io->count = count;
  io->tag = g_source_add_unix_fd (&io->source, fd,
                                  (direction == DIRECTION_READ ? G_IO_IN : G_IO_OUT) |
                                  G_IO_HUP | G_IO_ERR);
  g_source_set_static_name (&io->source, direction == DIRECTION_READ ? "[lsock] read" :
                                                                       "[lsock] write");
  g_source_set_priority (&io->source, io_priority);
  g_source_attach (&io->source, g_task_get_context (task));
  g_source_unref (&io->source);
}

/* ---------------------------------------------------------------------- */

#define LSOCK_TYPE_UNIX_INPUT_STREAM (lsock_unix_input_stream_get_type ())
G_DECLARE_FINAL_TYPE (LsockUnixInputStream, lsock_unix_input_stream,
                      LSOCK, UNIX_INPUT_STREAM, GInputStream)

struct _LsockUnixInputStream
{
  GInputStream  parent_instance;
  LsockConn    *conn;
};

static void lsock_unix_input_stream_pollable_iface_init (GPollableInputStreamInterface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE (LsockUnixInputStream, lsock_unix_input_stream, G_TYPE_INPUT_STREAM,
                               G_IMPLEMENT_INTERFACE (G_TYPE_POLLABLE_INPUT_STREAM,
                                                      lsock_unix_input_stream_pollable_iface_init))

static gssize
lsock_unix_input_stream_read (GInputStream  *stream,
                              void          *buffer,
                              gsize          count,
                              GCancellable  *cancellable,
                              GError       **error)
{
  /* GInputStream checked the type: no checked cast on the hot path */
  LsockUnixInputStream *self = (LsockUnixInputStream *) stream;

  return conn_io (self->conn, DIRECTION_READ, buffer, count, TRUE, cancellable, error);
}

static void
lsock_unix_input_stream_read_async (GInputStream        *stream,
                                    void                *buffer,
                                    gsize                count,
                                    int                  io_priority,
                                    GCancellable        *cancellable,
                                    GAsyncReadyCallback  callback,
                                    gpointer             user_data)
{
  LsockUnixInputStream *self = LSOCK_UNIX_INPUT_STREAM (stream);

  if (!conn_can_io_async (self->conn, cancellable))
    {
      G_INPUT_STREAM_CLASS (lsock_unix_input_stream_parent_class)->
        read_async (stream, buffer, count, io_priority, cancellable, callback, user_data);
      return;
    }
  conn_io_async (self->conn, stream, DIRECTION_READ, buffer, count, io_priority,
                 callback, user_data, lsock_unix_input_stream_read_async);
}

static gssize
lsock_unix_input_stream_read_finish (GInputStream  *stream,
                                     GAsyncResult  *result,
                                     GError       **error)
{
  return conn_io_finish (stream, result, error);
}

static gboolean
lsock_unix_input_stream_can_poll (GPollableInputStream *stream)
{
  return TRUE;
}

static gboolean
lsock_unix_input_stream_is_readable (GPollableInputStream *stream)
{
  return conn_is_ready (LSOCK_UNIX_INPUT_STREAM (stream)->conn, DIRECTION_READ);
}

static GSource *
lsock_unix_input_stream_create_source (GPollableInputStream *stream,
                                       GCancellable         *cancellable)
{
  return conn_create_source (LSOCK_UNIX_INPUT_STREAM (stream)->conn, G_OBJECT (stream),
                             DIRECTION_READ, cancellable);
}

static gssize
lsock_unix_input_stream_read_nonblocking (GPollableInputStream  *stream,
                                          void                  *buffer,
                                          gsize                  count,
                                          GError               **error)
{
  return conn_io (LSOCK_UNIX_INPUT_STREAM (stream)->conn, DIRECTION_READ,
                  buffer, count, FALSE, NULL, error);
}

static void
lsock_unix_input_stream_finalize (GObject *object)
{
  LsockUnixInputStream *self = LSOCK_UNIX_INPUT_STREAM (object);

  g_clear_pointer (&self->conn, _lsock_conn_unref);

  G_OBJECT_CLASS (lsock_unix_input_stream_parent_class)->finalize (object);
}

static void
lsock_unix_input_stream_class_init (LsockUnixInputStreamClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GInputStreamClass *input_class = G_INPUT_STREAM_CLASS (klass);

  object_class->finalize = lsock_unix_input_stream_finalize;
  input_class->read_fn = lsock_unix_input_stream_read;
  input_class->read_async = lsock_unix_input_stream_read_async;
  input_class->read_finish = lsock_unix_input_stream_read_finish;
  _lsock_input_stream_class_set_close (input_class);
}

static void
lsock_unix_input_stream_pollable_iface_init (GPollableInputStreamInterface *iface)
{
  iface->can_poll = lsock_unix_input_stream_can_poll;
  iface->is_readable = lsock_unix_input_stream_is_readable;
  iface->create_source = lsock_unix_input_stream_create_source;
  iface->read_nonblocking = lsock_unix_input_stream_read_nonblocking;
}

static void
lsock_unix_input_stream_init (LsockUnixInputStream *self)
{
}

/* ---------------------------------------------------------------------- */

#define LSOCK_TYPE_UNIX_OUTPUT_STREAM (lsock_unix_output_stream_get_type ())
G_DECLARE_FINAL_TYPE (LsockUnixOutputStream, lsock_unix_output_stream,
                      LSOCK, UNIX_OUTPUT_STREAM, GOutputStream)

struct _LsockUnixOutputStream
{
  GOutputStream  parent_instance;
  LsockConn     *conn;
};

static void lsock_unix_output_stream_pollable_iface_init (GPollableOutputStreamInterface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE (LsockUnixOutputStream, lsock_unix_output_stream, G_TYPE_OUTPUT_STREAM,
                               G_IMPLEMENT_INTERFACE (G_TYPE_POLLABLE_OUTPUT_STREAM,
                                                      lsock_unix_output_stream_pollable_iface_init))

static gssize
lsock_unix_output_stream_write (GOutputStream  *stream,
                                const void     *buffer,
                                gsize           count,
                                GCancellable   *cancellable,
                                GError        **error)
{
  LsockUnixOutputStream *self = (LsockUnixOutputStream *) stream;

  return conn_io (self->conn, DIRECTION_WRITE, (void *) buffer, count, TRUE, cancellable, error);
}

static void
lsock_unix_output_stream_write_async (GOutputStream       *stream,
                                      const void          *buffer,
                                      gsize                count,
                                      int                  io_priority,
                                      GCancellable        *cancellable,
                                      GAsyncReadyCallback  callback,
                                      gpointer             user_data)
{
  LsockUnixOutputStream *self = LSOCK_UNIX_OUTPUT_STREAM (stream);

  if (!conn_can_io_async (self->conn, cancellable))
    {
      G_OUTPUT_STREAM_CLASS (lsock_unix_output_stream_parent_class)->
        write_async (stream, buffer, count, io_priority, cancellable, callback, user_data);
      return;
    }
  conn_io_async (self->conn, stream, DIRECTION_WRITE, (void *) buffer, count, io_priority,
                 callback, user_data, lsock_unix_output_stream_write_async);
}

static gssize
lsock_unix_output_stream_write_finish (GOutputStream  *stream,
                                       GAsyncResult   *result,
                                       GError        **error)
{
  return conn_io_finish (stream, result, error);
}

static gboolean
lsock_unix_output_stream_can_poll (GPollableOutputStream *stream)
{
  return TRUE;
}

static gboolean
lsock_unix_output_stream_is_writable (GPollableOutputStream *stream)
{
  return conn_is_ready (LSOCK_UNIX_OUTPUT_STREAM (stream)->conn, DIRECTION_WRITE);
}

static GSource *
lsock_unix_output_stream_create_source (GPollableOutputStream *stream,
                                        GCancellable          *cancellable)
{
  return conn_create_source (LSOCK_UNIX_OUTPUT_STREAM (stream)->conn, G_OBJECT (stream),
                             DIRECTION_WRITE, cancellable);
}

static gssize
lsock_unix_output_stream_write_nonblocking (GPollableOutputStream  *stream,
                                            const void             *buffer,
                                            gsize                   count,
                                            GError                **error)
{
  return conn_io (LSOCK_UNIX_OUTPUT_STREAM (stream)->conn, DIRECTION_WRITE,
                  (void *) buffer, count, FALSE, NULL, error);
}

static void
lsock_unix_output_stream_finalize (GObject *object)
{
  LsockUnixOutputStream *self = LSOCK_UNIX_OUTPUT_STREAM (object);

  g_clear_pointer (&self->conn, _lsock_conn_unref);

  G_OBJECT_CLASS (lsock_unix_output_stream_parent_class)->finalize (object);
}

static void
lsock_unix_output_stream_class_init (LsockUnixOutputStreamClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GOutputStreamClass *output_class = G_OUTPUT_STREAM_CLASS (klass);

  object_class->finalize = lsock_unix_output_stream_finalize;
  output_class->write_fn = lsock_unix_output_stream_write;
  output_class->write_async = lsock_unix_output_stream_write_async;
  output_class->write_finish = lsock_unix_output_stream_write_finish;
  _lsock_output_stream_class_set_close (output_class);
}

static void
lsock_unix_output_stream_pollable_iface_init (GPollableOutputStreamInterface *iface)
{
  iface->can_poll = lsock_unix_output_stream_can_poll;
  iface->is_writable = lsock_unix_output_stream_is_writable;
  iface->create_source = lsock_unix_output_stream_create_source;
  iface->write_nonblocking = lsock_unix_output_stream_write_nonblocking;
}

static void
lsock_unix_output_stream_init (LsockUnixOutputStream *self)
{
}

/* ---------------------------------------------------------------------- */

void
_lsock_stream_init_streams_impl (LsockStream *self)
{
  LsockUnixInputStream *input = g_object_new (LSOCK_TYPE_UNIX_INPUT_STREAM, NULL);
  LsockUnixOutputStream *output = g_object_new (LSOCK_TYPE_UNIX_OUTPUT_STREAM, NULL);

  input->conn = _lsock_conn_ref (self->conn);
  output->conn = _lsock_conn_ref (self->conn);
  self->input = G_INPUT_STREAM (input);
  self->output = G_OUTPUT_STREAM (output);
}

void
_lsock_conn_close_impl (LsockConn *conn,
                        gboolean   pending_io)
{
  int fd;

#ifdef HAVE_EPOLL
  /* Leave the reactor before the fd goes (a copy of it in a child process
   * would keep the registration alive). Operations pending there see the
   * closed stream when shutdown() wakes them. */
  if (!pending_io)
    conn_unwatch (conn);
  if (g_atomic_ref_count_compare (&conn->ref_count, 0) && conn->backend != NULL)
    {
      ConnWatch *watch = conn->backend;

      conn_unwatch (conn);
      g_clear_object (&watch->spare[DIRECTION_READ]);
      g_clear_object (&watch->spare[DIRECTION_WRITE]);
      g_clear_pointer (&conn->backend, g_free);
    }
#endif

  fd = g_atomic_int_exchange (&conn->fd, -1);

  if (fd >= 0 && pending_io)
    {
      /* Wake the operation in flight; the fd number stays ours until it
       * has returned, so it cannot be reused under it */
      shutdown (fd, SHUT_RDWR);
      conn->zombie_fd = fd;
      return;
    }

  if (fd >= 0)
    close (fd);

  if (!pending_io && conn->zombie_fd >= 0 && g_atomic_ref_count_compare (&conn->ref_count, 0))
    {
      close (conn->zombie_fd);
      conn->zombie_fd = -1;
    }
}

/* ---------------------------------------------------------------------- */

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
        g_set_error (error, G_IO_ERROR, G_IO_ERROR_CONNECTION_REFUSED,
                     _("Could not connect to “%s”: the socket file is there but nobody is listening on it"),
                     display);
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

gboolean
_lsock_stream_connect_impl (LsockName     *name,
                            GCancellable  *cancellable,
                            int           *out_fd,
                            GError       **error)
{
  struct sockaddr_un addr;
  socklen_t addr_len = _lsock_name_to_sockaddr (name, &addr);
  int retry_ms = BACKLOG_RETRY_MIN_MS;
  int fd;
  int errsv = 0;

  if (g_cancellable_set_error_if_cancelled (cancellable, error))
    return FALSE;

  /* With nothing to cancel it, a blocking connect() is the whole job: on a
   * full backlog the kernel waits for room, and the stream needs a
   * blocking fd anyway, so no fcntl() either side of it */
  if (cancellable == NULL)
    {
      fd = _lsock_unix_socket (FALSE, error);
      if (fd < 0)
        return FALSE;
      if (try_connect (fd, &addr, addr_len, &errsv) == CONNECT_DONE)
        {
          *out_fd = fd;
          return TRUE;
        }
      set_connect_error (name, errsv, error);
      close (fd);
      return FALSE;
    }

  fd = _lsock_unix_socket (TRUE, error);
  if (fd < 0)
    return FALSE;

  for (;;)
    {
      switch (try_connect (fd, &addr, addr_len, &errsv))
        {
        case CONNECT_DONE:
          goto connected;

        case CONNECT_IN_PROGRESS:
          if (_lsock_unix_wait (fd, G_IO_OUT, 0, cancellable, error) < 0)
            goto fail;
          errsv = get_so_error (fd);
          if (errsv == 0)
            goto connected;
          set_connect_error (name, errsv, error);
          goto fail;

        case CONNECT_BACKLOG_FULL:
          /* Nothing becomes ready on fd: wait on the cancellable alone */
          if (cancellable != NULL)
            {
              GPollFD pollfd;

              if (g_cancellable_make_pollfd (cancellable, &pollfd))
                {
                  g_poll (&pollfd, 1, retry_ms);
                  g_cancellable_release_fd (cancellable);
                }
              if (g_cancellable_set_error_if_cancelled (cancellable, error))
                goto fail;
            }
          else
            g_usleep (retry_ms * 1000);
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
  *out_fd = fd;
  return TRUE;

fail:
  close (fd);
  return FALSE;
}

typedef struct
{
  LsockName          *name;
  struct sockaddr_un  addr;
  socklen_t           addr_len;
  int                 fd;
  int                 retry_ms;
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

  errsv = get_so_error (data->fd);
  if (errsv != 0)
    {
      GError *error = NULL;

      set_connect_error (data->name, errsv, &error);
      g_task_return_error (task, error);
      goto out;
    }

  _lsock_unix_set_nonblocking (data->fd, FALSE);
  g_task_return_pointer (task, _lsock_stream_new_for_fd (g_steal_fd (&data->fd), data->name),
                         g_object_unref);

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

  if (g_task_return_error_if_cancelled (task))
    {
      g_object_unref (task);
      return;
    }

  switch (try_connect (data->fd, &data->addr, data->addr_len, &errsv))
    {
    case CONNECT_DONE:
      _lsock_unix_set_nonblocking (data->fd, FALSE);
      g_task_return_pointer (task, _lsock_stream_new_for_fd (g_steal_fd (&data->fd), data->name),
                             g_object_unref);
      g_object_unref (task);
      return;

    case CONNECT_IN_PROGRESS:
      source = _lsock_unix_fd_source_new (data->fd, G_IO_OUT, 0);
      g_source_set_callback (source, (GSourceFunc) (void (*)(void)) connect_async_ready_cb,
                             task, NULL);
      watch (task, source);
      return;

    case CONNECT_BACKLOG_FULL:
      source = g_timeout_source_new (data->retry_ms);
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
                                  LsockName *name)
{
  ConnectData *data = g_new0 (ConnectData, 1);
  GError *error = NULL;

  data->name = g_object_ref (name);
  data->addr_len = _lsock_name_to_sockaddr (name, &data->addr);
  data->retry_ms = BACKLOG_RETRY_MIN_MS;
  data->fd = _lsock_unix_socket (TRUE, &error);
  g_task_set_task_data (task, data, (GDestroyNotify) connect_data_free);

  if (data->fd < 0)
    {
      g_task_return_error (task, error);
      g_object_unref (task);
      return;
    }

  connect_async_step (task);
}

GCredentials *
_lsock_stream_get_peer_credentials_impl (LsockStream  *self,
                                         GError      **error)
{
  GCredentials *credentials;
  int fd = g_atomic_int_get (&self->conn->fd);

  if (fd < 0)
    {
      _lsock_stream_set_closed_error (self, error);
      return NULL;
    }

  credentials = _lsock_unix_get_peer_credentials (fd, error);
  if (credentials == NULL)
    g_prefix_error (error, "“%s”: ", _lsock_name_get_display (self->name));
  return credentials;
}

gboolean
_lsock_stream_shutdown_impl (LsockStream  *self,
                             gboolean      shutdown_read,
                             gboolean      shutdown_write,
                             GError      **error)
{
  int fd = g_atomic_int_get (&self->conn->fd);
  int how;

  if (fd < 0)
    {
      _lsock_stream_set_closed_error (self, error);
      return FALSE;
    }

  if (shutdown_read && shutdown_write)
    how = SHUT_RDWR;
  else if (shutdown_read)
    how = SHUT_RD;
  else
    how = SHUT_WR;

  if (shutdown (fd, how) != 0)
    {
      int errsv = errno;

      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errsv),
                   _("Could not shut down the connection to “%s”: %s"),
                   _lsock_name_get_display (self->name), g_strerror (errsv));
      return FALSE;
    }

  return TRUE;
}
