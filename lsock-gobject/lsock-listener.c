/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include "lsock-listener-private.h"
#include "lsock-name-private.h"
#include "lsock-stream-private.h"
#include "lsock-enum-types.h"
#include "lsock-i18n-private.h"
#include "lsock-result-private.h"

/**
 * LsockListener:
 *
 * A server listening on an [class@Lsock.Name] for many clients, each of
 * which gets its own [class@Lsock.Stream].
 *
 * Making a listener binds the name and starts listening
 * ([iface@Gio.Initable]); it fails with %G_IO_ERROR_ADDRESS_IN_USE if a live
 * listener already holds the name. Peers are then taken in one of three
 * ways:
 *
 * - [method@Lsock.Listener.accept], which blocks (cancellably);
 * - [method@Lsock.Listener.accept_async], driven by the caller's
 *   thread-default main context, with no helper thread;
 * - [method@Lsock.Listener.start], after which [signal@Lsock.Listener::incoming]
 *   is emitted in that main context for every peer, like
 *   [class@Gio.SocketService].
 *
 * ## Safe by default
 *
 * - Only peers of the same user may connect
 *   ([property@Lsock.Listener:access] is %LSOCK_ACCESS_USER): socket files are
 *   created 0600 with no moment of wider permissions, and every peer's
 *   credentials are checked on accept, which also guards Linux abstract
 *   names. A refused peer is closed and never returned.
 * - A socket file left behind by a listener that died is detected (nobody
 *   answers a connection to it) and replaced
 *   ([property@Lsock.Listener:replace-stale]); a live listener's socket, a
 *   socket of another user and a file that is not a socket are never
 *   removed. Listeners starting at the same time are serialised: exactly one
 *   wins. The check connects to the socket, so a live listener sees each
 *   failed attempt to take its name as a peer that closes at once (its
 *   first read returns end of stream).
 * - On close the socket file is removed, but only if it is still the one
 *   this listener made ([property@Lsock.Listener:reclaim-name]).
 * - Every descriptor is close-on-exec, and running out of file descriptors
 *   makes the incoming service back off instead of spinning.
 *
 * Since: 1.0
 */

enum {
  PROP_0,
  PROP_NAME,
  PROP_BACKLOG,
  PROP_ACCESS,
  PROP_RECLAIM_NAME,
  PROP_REPLACE_STALE,
  N_PROPS
};

enum {
  SIGNAL_INCOMING,
  SIGNAL_ACCEPT_ERROR,
  N_SIGNALS
};

static GParamSpec *properties[N_PROPS];
static guint signals[N_SIGNALS];

static void lsock_listener_initable_iface_init (GInitableIface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE (LsockListener, lsock_listener, G_TYPE_OBJECT,
                               G_IMPLEMENT_INTERFACE (G_TYPE_INITABLE,
                                                      lsock_listener_initable_iface_init))

/* The back-off after an accept error in incoming mode (EMFILE and friends):
 * from 10 ms doubling to 1 s, reset by the next successful accept */
#define BACKOFF_MIN_MS 10
#define BACKOFF_MAX_MS 1000
/* Peers accepted per dispatch of the incoming source, so one busy listener
 * cannot starve the rest of the main context */
#define MAX_ACCEPTS_PER_DISPATCH 64

void
_lsock_listener_set_closed_error (LsockListener  *self,
                                  GError        **error)
{
  g_set_error (error, G_IO_ERROR, G_IO_ERROR_CLOSED,
               _("The listener on “%s” is closed"),
               _lsock_name_get_display (self->name));
}

static gboolean
lsock_listener_initable_init (GInitable     *initable,
                              GCancellable  *cancellable,
                              GError       **error)
{
  LsockListener *self = LSOCK_LISTENER (initable);
  gboolean ret;

  g_return_val_if_fail (LSOCK_IS_NAME (self->name), FALSE);

  g_mutex_lock (&self->lock);
  if (self->bound)
    ret = TRUE;
  else if (self->closed)
    {
      _lsock_listener_set_closed_error (self, error);
      ret = FALSE;
    }
  else
    ret = self->bound = _lsock_listener_bind_impl (self, cancellable, error);
  g_mutex_unlock (&self->lock);

  return ret;
}

static void
lsock_listener_initable_iface_init (GInitableIface *iface)
{
  iface->init = lsock_listener_initable_init;
}

static void
lsock_listener_dispose (GObject *object)
{
  LsockListener *self = LSOCK_LISTENER (object);

  lsock_listener_close (self);

  G_OBJECT_CLASS (lsock_listener_parent_class)->dispose (object);
}

static void
lsock_listener_finalize (GObject *object)
{
  LsockListener *self = LSOCK_LISTENER (object);

  g_clear_object (&self->spare_accept_op);
  g_clear_object (&self->name);
  g_mutex_clear (&self->lock);

  G_OBJECT_CLASS (lsock_listener_parent_class)->finalize (object);
}

static void
lsock_listener_get_property (GObject    *object,
                             guint       prop_id,
                             GValue     *value,
                             GParamSpec *pspec)
{
  LsockListener *self = LSOCK_LISTENER (object);

  switch (prop_id)
    {
    case PROP_NAME:
      g_value_set_object (value, self->name);
      break;

    case PROP_BACKLOG:
      g_value_set_int (value, self->backlog);
      break;

    case PROP_ACCESS:
      g_value_set_enum (value, self->access);
      break;

    case PROP_RECLAIM_NAME:
      g_value_set_boolean (value, lsock_listener_get_reclaim_name (self));
      break;

    case PROP_REPLACE_STALE:
      g_value_set_boolean (value, self->replace_stale);
      break;

    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
lsock_listener_set_property (GObject      *object,
                             guint         prop_id,
                             const GValue *value,
                             GParamSpec   *pspec)
{
  LsockListener *self = LSOCK_LISTENER (object);

  switch (prop_id)
    {
    case PROP_NAME:
      self->name = g_value_dup_object (value);
      break;

    case PROP_BACKLOG:
      self->backlog = g_value_get_int (value);
      break;

    case PROP_ACCESS:
      self->access = g_value_get_enum (value);
      break;

    case PROP_RECLAIM_NAME:
      lsock_listener_set_reclaim_name (self, g_value_get_boolean (value));
      break;

    case PROP_REPLACE_STALE:
      self->replace_stale = g_value_get_boolean (value);
      break;

    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
lsock_listener_class_init (LsockListenerClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = lsock_listener_dispose;
  object_class->finalize = lsock_listener_finalize;
  object_class->get_property = lsock_listener_get_property;
  object_class->set_property = lsock_listener_set_property;

  /**
   * LsockListener:name:
   *
   * The name this listener listens on. Required at construction.
   *
   * Since: 1.0
   */
  properties[PROP_NAME] =
    g_param_spec_object ("name", NULL, NULL,
                         LSOCK_TYPE_NAME,
                         (G_PARAM_READWRITE |
                          G_PARAM_CONSTRUCT_ONLY |
                          G_PARAM_STATIC_STRINGS));

  /**
   * LsockListener:backlog:
   *
   * How many connections the system may queue before they are accepted.
   * The default is the system's maximum (`SOMAXCONN`) on Unix. On Windows
   * it is the number of pipe instances kept waiting for clients: 4 by
   * default, at most 60 (larger values are capped).
   *
   * Since: 1.0
   */
  properties[PROP_BACKLOG] =
    g_param_spec_int ("backlog", NULL, NULL,
                      1, G_MAXINT, LSOCK_DEFAULT_BACKLOG,
                      (G_PARAM_READWRITE |
                       G_PARAM_CONSTRUCT_ONLY |
                       G_PARAM_STATIC_STRINGS));

  /**
   * LsockListener:access:
   *
   * Who may connect: see [enum@Lsock.Access]. The default,
   * %LSOCK_ACCESS_USER, admits only the listener's own user.
   *
   * Since: 1.0
   */
  properties[PROP_ACCESS] =
    g_param_spec_enum ("access", NULL, NULL,
                       LSOCK_TYPE_ACCESS, LSOCK_ACCESS_USER,
                       (G_PARAM_READWRITE |
                        G_PARAM_CONSTRUCT_ONLY |
                        G_PARAM_STATIC_STRINGS));

  /**
   * LsockListener:reclaim-name:
   *
   * Whether closing the listener removes its socket file. The file is only
   * removed if it is still the one this listener made, and before the
   * socket is closed, so a listener that has taken the name over since is
   * never disturbed. Has no effect on namespaced names, which vanish with
   * their socket. Set it to %FALSE to hand the name over to another
   * process.
   *
   * Since: 1.0
   */
  properties[PROP_RECLAIM_NAME] =
    g_param_spec_boolean ("reclaim-name", NULL, NULL,
                          TRUE,
                          (G_PARAM_READWRITE |
                           G_PARAM_CONSTRUCT |
                           G_PARAM_EXPLICIT_NOTIFY |
                           G_PARAM_STATIC_STRINGS));

  /**
   * LsockListener:replace-stale:
   *
   * Whether a stale socket file at the listener's path is replaced. A socket
   * file is stale when nobody answers a connection to it; it is replaced
   * only if it belongs to this user. A live listener's socket and files
   * that are not sockets are never removed.
   *
   * Since: 1.0
   */
  properties[PROP_REPLACE_STALE] =
    g_param_spec_boolean ("replace-stale", NULL, NULL,
                          TRUE,
                          (G_PARAM_READWRITE |
                           G_PARAM_CONSTRUCT_ONLY |
                           G_PARAM_STATIC_STRINGS));

  g_object_class_install_properties (object_class, N_PROPS, properties);

  /**
   * LsockListener::incoming:
   * @self: the listener
   * @stream: the new connection
   *
   * Emitted after [method@Lsock.Listener.start], in the thread-default main
   * context of the thread that called it, once for every accepted peer.
   * Keep a reference to @stream to keep the connection open: it is closed
   * when the last reference goes.
   *
   * Returns: %TRUE if the peer was handled, which stops other handlers
   *
   * Since: 1.0
   */
  signals[SIGNAL_INCOMING] =
    g_signal_new ("incoming",
                  G_TYPE_FROM_CLASS (klass),
                  G_SIGNAL_RUN_LAST,
                  0,
                  g_signal_accumulator_true_handled, NULL,
                  NULL,
                  G_TYPE_BOOLEAN, 1, LSOCK_TYPE_STREAM);

  /**
   * LsockListener::accept-error:
   * @self: the listener
   * @error: what went wrong
   *
   * Emitted after [method@Lsock.Listener.start] when accepting a peer fails
   * for a reason other than a peer that gave up, typically
   * %G_IO_ERROR_TOO_MANY_OPEN_FILES. The listener stays active: it waits
   * (10 ms, doubling up to 1 s) and tries again, instead of spinning.
   *
   * Since: 1.0
   */
  signals[SIGNAL_ACCEPT_ERROR] =
    g_signal_new ("accept-error",
                  G_TYPE_FROM_CLASS (klass),
                  G_SIGNAL_RUN_LAST,
                  0,
                  NULL, NULL,
                  NULL,
                  G_TYPE_NONE, 1, G_TYPE_ERROR);
}

static void
lsock_listener_init (LsockListener *self)
{
  self->backlog = LSOCK_DEFAULT_BACKLOG;
  self->access = LSOCK_ACCESS_USER;
  self->replace_stale = TRUE;
  self->reclaim_name = TRUE;
  self->fd = -1;
  self->zombie_fd = -1;
  g_mutex_init (&self->lock);
  g_queue_init (&self->pending);
}

/**
 * lsock_listener_new:
 * @name: the name to listen on
 * @error: return location for a #GError
 *
 * Listens on @name, admitting only peers of the same user.
 *
 * See [ctor@Lsock.Listener.new_full] for the errors.
 *
 * Returns: (transfer full): a listening #LsockListener
 *
 * Since: 1.0
 */
LsockListener *
lsock_listener_new (LsockName  *name,
                    GError    **error)
{
  g_return_val_if_fail (LSOCK_IS_NAME (name), NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  return g_initable_new (LSOCK_TYPE_LISTENER, NULL, error,
                         "name", name,
                         NULL);
}

/**
 * lsock_listener_new_full:
 * @name: the name to listen on
 * @access: who may connect
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Listens on @name, admitting the peers that @access allows.
 *
 * Fails with %G_IO_ERROR_ADDRESS_IN_USE when a live listener holds the name
 * (or a socket file of another user, or a stale one while
 * [property@Lsock.Listener:replace-stale] is off), %G_IO_ERROR_EXISTS when a
 * file that is not a socket is at the path, %G_IO_ERROR_PERMISSION_DENIED
 * when the operating system forbids it, and %G_IO_ERROR_NOT_SUPPORTED for a
 * kind of name this platform lacks.
 *
 * Returns: (transfer full): a listening #LsockListener
 *
 * Since: 1.0
 */
LsockListener *
lsock_listener_new_full (LsockName     *name,
                         LsockAccess    access,
                         GCancellable  *cancellable,
                         GError       **error)
{
  g_return_val_if_fail (LSOCK_IS_NAME (name), NULL);
  g_return_val_if_fail (access == LSOCK_ACCESS_USER || access == LSOCK_ACCESS_EVERYONE, NULL);
  g_return_val_if_fail (!cancellable || G_IS_CANCELLABLE (cancellable), NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  return g_initable_new (LSOCK_TYPE_LISTENER, cancellable, error,
                         "name", name,
                         "access", access,
                         NULL);
}

/**
 * lsock_listener_get_name:
 * @self: a #LsockListener
 *
 * Gets the name this listener listens on.
 *
 * Returns: (transfer none): the name
 *
 * Since: 1.0
 */
LsockName *
lsock_listener_get_name (LsockListener *self)
{
  g_return_val_if_fail (LSOCK_IS_LISTENER (self), NULL);

  return self->name;
}

/**
 * lsock_listener_get_access:
 * @self: a #LsockListener
 *
 * Gets [property@Lsock.Listener:access].
 *
 * Returns: who may connect
 *
 * Since: 1.0
 */
LsockAccess
lsock_listener_get_access (LsockListener *self)
{
  g_return_val_if_fail (LSOCK_IS_LISTENER (self), LSOCK_ACCESS_USER);

  return self->access;
}

/**
 * lsock_listener_get_backlog:
 * @self: a #LsockListener
 *
 * Gets [property@Lsock.Listener:backlog].
 *
 * Returns: the backlog
 *
 * Since: 1.0
 */
int
lsock_listener_get_backlog (LsockListener *self)
{
  g_return_val_if_fail (LSOCK_IS_LISTENER (self), 0);

  return self->backlog;
}

/**
 * lsock_listener_get_reclaim_name:
 * @self: a #LsockListener
 *
 * Gets [property@Lsock.Listener:reclaim-name].
 *
 * Returns: whether closing removes the socket file
 *
 * Since: 1.0
 */
gboolean
lsock_listener_get_reclaim_name (LsockListener *self)
{
  gboolean ret;

  g_return_val_if_fail (LSOCK_IS_LISTENER (self), FALSE);

  g_mutex_lock (&self->lock);
  ret = self->reclaim_name;
  g_mutex_unlock (&self->lock);

  return ret;
}

/**
 * lsock_listener_set_reclaim_name:
 * @self: a #LsockListener
 * @reclaim_name: whether closing removes the socket file
 *
 * Sets [property@Lsock.Listener:reclaim-name].
 *
 * Since: 1.0
 */
void
lsock_listener_set_reclaim_name (LsockListener *self,
                                 gboolean       reclaim_name)
{
  gboolean changed;

  g_return_if_fail (LSOCK_IS_LISTENER (self));

  reclaim_name = !!reclaim_name;
  g_mutex_lock (&self->lock);
  changed = self->reclaim_name != (guint) reclaim_name;
  self->reclaim_name = reclaim_name;
  g_mutex_unlock (&self->lock);

  if (changed)
    g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_RECLAIM_NAME]);
}

/**
 * lsock_listener_get_replace_stale:
 * @self: a #LsockListener
 *
 * Gets [property@Lsock.Listener:replace-stale].
 *
 * Returns: whether a stale socket file was to be replaced
 *
 * Since: 1.0
 */
gboolean
lsock_listener_get_replace_stale (LsockListener *self)
{
  g_return_val_if_fail (LSOCK_IS_LISTENER (self), FALSE);

  return self->replace_stale;
}

static gboolean
check_open (LsockListener  *self,
            GError        **error)
{
  gboolean ok;

  g_mutex_lock (&self->lock);
  ok = self->bound && !self->closed;
  g_mutex_unlock (&self->lock);

  if (!ok)
    _lsock_listener_set_closed_error (self, error);
  return ok;
}

/**
 * lsock_listener_accept:
 * @self: a #LsockListener
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Waits for a peer and returns its connection. Peers that
 * [property@Lsock.Listener:access] does not admit are closed and skipped.
 *
 * Fails with %G_IO_ERROR_CANCELLED when @cancellable is cancelled,
 * %G_IO_ERROR_CLOSED when the listener is (or gets) closed, and with the
 * system's error otherwise, such as %G_IO_ERROR_TOO_MANY_OPEN_FILES.
 *
 * Returns: (transfer full): the new connection
 *
 * Since: 1.0
 */
LsockStream *
lsock_listener_accept (LsockListener  *self,
                       GCancellable   *cancellable,
                       GError        **error)
{
  LsockStream *stream;

  g_return_val_if_fail (LSOCK_IS_LISTENER (self), NULL);
  g_return_val_if_fail (!cancellable || G_IS_CANCELLABLE (cancellable), NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (!check_open (self, error))
    return NULL;

  stream = _lsock_listener_accept_impl (self, LSOCK_ACCEPT_BLOCKING, cancellable, error);
  if (stream == NULL && error != NULL)
    _lsock_name_cancelled_error (self->name, *error);
  return stream;
}

/* The result of an accept served by the shared source (below), recycled
 * by the listener (see LsockResult). Tasks with a cancellable, or from
 * another context, are GTasks. The source object is the listener. */
#define LSOCK_TYPE_ACCEPT_OP (lsock_accept_op_get_type ())
G_DECLARE_FINAL_TYPE (LsockAcceptOp, lsock_accept_op, LSOCK, ACCEPT_OP, LsockResult)

struct _LsockAcceptOp
{
  LsockResult          parent_instance;
  GMainContext        *context;   /* held while in flight */
  LsockStream         *stream;
  GError              *error;
  GAsyncReadyCallback  callback;
};

G_DEFINE_FINAL_TYPE (LsockAcceptOp, lsock_accept_op, LSOCK_TYPE_RESULT)

static void
lsock_accept_op_finalize (GObject *object)
{
  LsockAcceptOp *op = LSOCK_ACCEPT_OP (object);

  g_clear_pointer (&op->context, g_main_context_unref);
  g_clear_object (&op->stream);
  g_clear_error (&op->error);

  G_OBJECT_CLASS (lsock_accept_op_parent_class)->finalize (object);
}

static void
lsock_accept_op_class_init (LsockAcceptOpClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = lsock_accept_op_finalize;
}

static void
lsock_accept_op_init (LsockAcceptOp *op)
{
  LSOCK_RESULT (op)->source_tag = lsock_listener_accept_async;
}

/* Calls back with the stream or error set on @op, then keeps @op for the
 * listener's next accept if nobody else holds it */
static void
accept_op_report (LsockAcceptOp *op)
{
  LsockResult *result = LSOCK_RESULT (op);
  LsockListener *self = g_object_ref (LSOCK_LISTENER (result->source_object));

  if (op->callback != NULL)
    op->callback (result->source_object, G_ASYNC_RESULT (op), result->user_data);

  /* Nobody else holds it: clear what the callback did not take, and keep
   * it. A caller that holds on to it may finish it later. */
  if (_lsock_result_is_unshared (op))
    {
      g_clear_object (&result->source_object);
      g_clear_object (&op->stream);
      g_clear_error (&op->error);
      g_clear_pointer (&op->context, g_main_context_unref);
      op->callback = NULL;
      result->user_data = NULL;
      if (g_atomic_pointer_compare_and_exchange (&self->spare_accept_op, NULL, op))
        op = NULL;
    }
  g_clear_object (&op);
  g_object_unref (self);
}

static gboolean
accept_op_report_cb (gpointer user_data)
{
  accept_op_report (user_data);
  return G_SOURCE_REMOVE;
}

/* Reports @op (failed by close()) from an idle source in its context: never
 * from inside close(), which may run in any thread */
static void
accept_op_report_later (LsockAcceptOp *op)
{
  GSource *source = g_idle_source_new ();

  g_source_set_static_name (source, "[lsock] accept");
  g_source_set_callback (source, accept_op_report_cb, op, NULL);
  g_source_attach (source, op->context);
  g_source_unref (source);
}

/* The data of an accept_async() GTask: one with a cancellable, or from
 * another context than the shared source's (accepts on the shared source
 * are LsockAcceptOps). It waits on a source of its own. */
typedef struct
{
  GSource *source;
} AcceptData;

static void
accept_data_free (AcceptData *data)
{
  if (data->source != NULL)
    {
      g_source_destroy (data->source);
      g_source_unref (data->source);
    }
  g_free (data);
}

/* Takes @task (a GTask or an LsockAcceptOp) off the pending queue; FALSE
 * if close() already did */
static gboolean
accept_task_unqueue (LsockListener *self,
                     gpointer       task)
{
  gboolean found;

  g_mutex_lock (&self->lock);
  found = g_queue_remove (&self->pending, task);
  g_mutex_unlock (&self->lock);

  return found;
}

static gboolean
accept_async_ready_cb (gpointer user_data)
{
  GTask *task = user_data;
  AcceptData *data = g_task_get_task_data (task);
  LsockListener *self = g_task_get_source_object (task);
  g_autoptr(GError) error = NULL;
  LsockStream *stream;

  if (g_cancellable_is_cancelled (g_task_get_cancellable (task)))
    {
      if (accept_task_unqueue (self, task))
        {
          g_clear_pointer (&data->source, g_source_unref);
          g_task_return_error_if_cancelled (task);
          g_object_unref (task);
        }
      return G_SOURCE_REMOVE;
    }

  stream = _lsock_listener_accept_impl (self, LSOCK_ACCEPT_READY, NULL, &error);
  if (stream == NULL && g_error_matches (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
    return G_SOURCE_CONTINUE;

  if (!accept_task_unqueue (self, task))
    {
      /* close() failed the task meanwhile (another thread) */
      g_clear_object (&stream);
      return G_SOURCE_REMOVE;
    }

  g_clear_pointer (&data->source, g_source_unref);
  if (stream != NULL)
    g_task_return_pointer (task, stream, g_object_unref);
  else
    g_task_return_error (task, g_steal_pointer (&error));
  g_object_unref (task);  /* the queue's */

  return G_SOURCE_REMOVE;
}

/* The shared source: serves the oldest task waiting on it. Attaching and
 * destroying a source adds and removes an fd of the GMainContext, and each
 * of those wakes the context up with a write to its eventfd; accepts
 * chained from the callback (the usual way) keep this one source instead.
 * It goes when it finds a peer and no task waiting for it. */
static gboolean
accept_shared_cb (gpointer user_data)
{
  LsockListener *self = user_data;
  g_autoptr(LsockListener) keep = g_object_ref (self);
  g_autoptr(GError) error = NULL;
  LsockAcceptOp *op = NULL;
  LsockStream *stream;

  g_mutex_lock (&self->lock);
  for (GList *l = self->pending.head; l != NULL; l = l->next)
    if (LSOCK_IS_ACCEPT_OP (l->data))
      {
        op = l->data;
        break;
      }
  if (op == NULL)
    {
      if (self->accept_source != NULL)
        {
          g_source_destroy (self->accept_source);
          g_clear_pointer (&self->accept_source, g_source_unref);
        }
      g_mutex_unlock (&self->lock);
      return G_SOURCE_REMOVE;
    }
  g_mutex_unlock (&self->lock);

  stream = _lsock_listener_accept_impl (self, LSOCK_ACCEPT_READY, NULL, &error);
  if (stream == NULL && g_error_matches (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
    return G_SOURCE_CONTINUE;

  /* The queue's reference is ours now, unless close() (in another
   * thread) took the op meanwhile: it reports it */
  if (!accept_task_unqueue (self, op))
    {
      g_clear_object (&stream);
      return G_SOURCE_CONTINUE;
    }
  op->stream = stream;
  op->error = g_steal_pointer (&error);
  accept_op_report (op);

  return G_SOURCE_CONTINUE;
}

/**
 * lsock_listener_accept_async:
 * @self: a #LsockListener
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async) (closure user_data): called when a peer is accepted or accepting failed
 * @user_data: data for @callback
 *
 * Waits for a peer without blocking: the listening socket is watched from
 * the thread-default main context of the calling thread, where @callback is
 * called. Call [method@Lsock.Listener.accept_finish] there to get the
 * connection. Closing the listener fails pending accepts with
 * %G_IO_ERROR_CLOSED.
 *
 * Since: 1.0
 */
void
lsock_listener_accept_async (LsockListener       *self,
                             GCancellable        *cancellable,
                             GAsyncReadyCallback  callback,
                             gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;
  g_autoptr(GError) error = NULL;
  GMainContext *context;
  AcceptData *data;
  GSource *cancel_source;

  g_return_if_fail (LSOCK_IS_LISTENER (self));
  g_return_if_fail (!cancellable || G_IS_CANCELLABLE (cancellable));

  context = g_main_context_get_thread_default ();
  if (context == NULL)
    context = g_main_context_default ();

  /* Without a cancellable, from the context of the shared source (if
   * there is one yet): wait on it, with a recycled result */
  g_mutex_lock (&self->lock);
  if (cancellable == NULL && self->bound && !self->closed &&
      (self->accept_source == NULL ||
       g_source_get_context (self->accept_source) == context))
    {
      LsockAcceptOp *op = g_atomic_pointer_exchange (&self->spare_accept_op, NULL);

      if (op == NULL)
        op = g_object_new (LSOCK_TYPE_ACCEPT_OP, NULL);
      LSOCK_RESULT (op)->source_object = g_object_ref (G_OBJECT (self));
      LSOCK_RESULT (op)->user_data = user_data;
      op->context = g_main_context_ref (context);
      op->callback = callback;
      /* The queue holds the only reference */
      g_queue_push_tail (&self->pending, op);
      if (self->accept_source == NULL)
        {
          self->accept_source = _lsock_listener_create_source_impl (self);
          g_source_set_static_name (self->accept_source, "[lsock] accept");
          g_source_set_callback (self->accept_source, accept_shared_cb, self, NULL);
          /* GLib blocks a source that cannot recurse while it dispatches:
           * that removes its fd from the context and adds it back, two
           * writes to the context's eventfd and one more iteration per
           * dispatch. Both callbacks here are safe to re-enter: each
           * takes its op (or emits its peer) before calling out. */
          g_source_set_can_recurse (self->accept_source, TRUE);
          g_source_attach (self->accept_source, context);
        }
      g_mutex_unlock (&self->lock);
      return;
    }
  g_mutex_unlock (&self->lock);

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, lsock_listener_accept_async);
  g_task_set_name (task, "[lsock] accept");

  if (g_task_return_error_if_cancelled (task))
    return;
  if (!check_open (self, &error))
    {
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }

  data = g_new0 (AcceptData, 1);
  g_task_set_task_data (task, data, (GDestroyNotify) accept_data_free);
  data->source = _lsock_listener_create_source_impl (self);
  if (cancellable != NULL)
    {
      cancel_source = g_cancellable_source_new (cancellable);
      g_source_set_dummy_callback (cancel_source);
      g_source_add_child_source (data->source, cancel_source);
      g_source_unref (cancel_source);
    }
  g_source_set_static_name (data->source, "[lsock] accept");
  g_source_set_priority (data->source, g_task_get_priority (task));
  /* The queue and the source each hold a reference on the task: the
   * source's goes when it is destroyed, on completion or on close */
  g_source_set_callback (data->source, accept_async_ready_cb,
                         g_object_ref (task), g_object_unref);

  g_mutex_lock (&self->lock);
  g_queue_push_tail (&self->pending, g_object_ref (task));
  g_mutex_unlock (&self->lock);

  g_source_attach (data->source, context);
}

/**
 * lsock_listener_accept_finish:
 * @self: a #LsockListener
 * @result: the result passed to the callback
 * @error: return location for a #GError
 *
 * Finishes [method@Lsock.Listener.accept_async].
 *
 * Returns: (transfer full): the new connection
 *
 * Since: 1.0
 */
LsockStream *
lsock_listener_accept_finish (LsockListener  *self,
                              GAsyncResult   *result,
                              GError        **error)
{
  LsockStream *stream;

  g_return_val_if_fail (LSOCK_IS_LISTENER (self), NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (LSOCK_IS_ACCEPT_OP (result))
    {
      LsockAcceptOp *op = LSOCK_ACCEPT_OP (result);

      if (op->error != NULL)
        {
          _lsock_name_cancelled_error (self->name, op->error);
          g_propagate_error (error, g_steal_pointer (&op->error));
          return NULL;
        }
      g_return_val_if_fail (op->stream != NULL, NULL);  /* finished twice */
      return g_steal_pointer (&op->stream);
    }

  g_return_val_if_fail (g_task_is_valid (result, self), NULL);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == lsock_listener_accept_async, NULL);

  stream = g_task_propagate_pointer (G_TASK (result), error);
  if (stream == NULL && error != NULL)
    _lsock_name_cancelled_error (self->name, *error);
  return stream;
}

void
_lsock_listener_emit_incoming (LsockListener *self,
                               LsockStream   *stream)
{
  gboolean handled = FALSE;

  g_signal_emit (self, signals[SIGNAL_INCOMING], 0, stream, &handled);
}

void
_lsock_listener_emit_accept_error (LsockListener *self,
                                   const GError  *error)
{
  g_signal_emit (self, signals[SIGNAL_ACCEPT_ERROR], 0, error);
}

static gboolean incoming_cb (gpointer user_data);

static void
incoming_watch (LsockListener *self)
{
  GSource *source = _lsock_listener_create_source_impl (self);

  g_source_set_static_name (source, "[lsock] incoming");
  g_source_set_callback (source, incoming_cb, self, NULL);
  /* See lsock_listener_accept_async() */
  g_source_set_can_recurse (source, TRUE);
  self->incoming_source = source;
  g_source_attach (source, self->incoming_context);
}

static gboolean
backoff_done_cb (gpointer user_data)
{
  LsockListener *self = user_data;

  g_mutex_lock (&self->lock);
  g_clear_pointer (&self->backoff_source, g_source_unref);
  if (self->incoming_context != NULL && !self->closed)
    incoming_watch (self);
  g_mutex_unlock (&self->lock);

  return G_SOURCE_REMOVE;
}

static gboolean
incoming_cb (gpointer user_data)
{
  LsockListener *self = user_data;
  g_autoptr(LsockListener) keep = g_object_ref (self);

  for (int i = 0; i < MAX_ACCEPTS_PER_DISPATCH; i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(LsockStream) stream = NULL;

      if (!check_open (self, NULL))
        return G_SOURCE_REMOVE;

      /* The source fired for the first; the others may not be there */
      stream = _lsock_listener_accept_impl (self, i == 0 ? LSOCK_ACCEPT_READY : LSOCK_ACCEPT_NONBLOCKING,
                                            NULL, &error);
      if (stream != NULL)
        {
          self->backoff_ms = 0;
          _lsock_listener_emit_incoming (self, stream);
          if (self->incoming_source == NULL)
            return G_SOURCE_REMOVE;  /* a handler stopped or closed us */
          continue;
        }

      if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
        return G_SOURCE_CONTINUE;

      /* Out of descriptors or memory: the peer stays queued and the socket
       * stays readable, so polling again now would spin. Back off. */
      g_debug ("Accepting on “%s” failed: %s; backing off",
               _lsock_name_get_display (self->name), error->message);
      _lsock_listener_emit_accept_error (self, error);

      g_mutex_lock (&self->lock);
      if (self->incoming_source != NULL && self->backoff_source == NULL)
        {
          self->backoff_ms = self->backoff_ms == 0 ? BACKOFF_MIN_MS :
                             MIN (self->backoff_ms * 2, BACKOFF_MAX_MS);
          g_source_destroy (self->incoming_source);
          g_clear_pointer (&self->incoming_source, g_source_unref);
          self->backoff_source = g_timeout_source_new (self->backoff_ms);
          g_source_set_static_name (self->backoff_source, "[lsock] accept back-off");
          g_source_set_callback (self->backoff_source, backoff_done_cb, self, NULL);
          g_source_attach (self->backoff_source, self->incoming_context);
        }
      g_mutex_unlock (&self->lock);
      return G_SOURCE_REMOVE;
    }

  return G_SOURCE_CONTINUE;
}

/**
 * lsock_listener_start:
 * @self: a #LsockListener
 *
 * Starts accepting peers in the thread-default main context of the calling
 * thread, emitting [signal@Lsock.Listener::incoming] there for each one,
 * until [method@Lsock.Listener.stop] or [method@Lsock.Listener.close].
 * Does nothing if already started.
 *
 * Since: 1.0
 */
void
lsock_listener_start (LsockListener *self)
{
  g_return_if_fail (LSOCK_IS_LISTENER (self));

  g_mutex_lock (&self->lock);
  if (self->incoming_context == NULL && self->bound && !self->closed)
    {
      self->incoming_context = g_main_context_ref_thread_default ();
      self->backoff_ms = 0;
      incoming_watch (self);
    }
  g_mutex_unlock (&self->lock);
}

static void
stop_locked (LsockListener *self)
{
  if (self->incoming_source != NULL)
    {
      g_source_destroy (self->incoming_source);
      g_clear_pointer (&self->incoming_source, g_source_unref);
    }
  if (self->backoff_source != NULL)
    {
      g_source_destroy (self->backoff_source);
      g_clear_pointer (&self->backoff_source, g_source_unref);
    }
  g_clear_pointer (&self->incoming_context, g_main_context_unref);
}

/**
 * lsock_listener_stop:
 * @self: a #LsockListener
 *
 * Stops emitting [signal@Lsock.Listener::incoming]. The listener keeps its
 * name: peers that connect meanwhile wait in the backlog until the next
 * [method@Lsock.Listener.start] or accept.
 *
 * Since: 1.0
 */
void
lsock_listener_stop (LsockListener *self)
{
  g_return_if_fail (LSOCK_IS_LISTENER (self));

  g_mutex_lock (&self->lock);
  stop_locked (self);
  g_mutex_unlock (&self->lock);
}

/**
 * lsock_listener_is_active:
 * @self: a #LsockListener
 *
 * Whether [method@Lsock.Listener.start] is in effect.
 *
 * Returns: %TRUE between start and stop or close
 *
 * Since: 1.0
 */
gboolean
lsock_listener_is_active (LsockListener *self)
{
  gboolean ret;

  g_return_val_if_fail (LSOCK_IS_LISTENER (self), FALSE);

  g_mutex_lock (&self->lock);
  ret = self->incoming_context != NULL;
  g_mutex_unlock (&self->lock);

  return ret;
}

/**
 * lsock_listener_close:
 * @self: a #LsockListener
 *
 * Stops listening: removes the socket file (see
 * [property@Lsock.Listener:reclaim-name]), releases the name, and fails
 * pending and later accepts with %G_IO_ERROR_CLOSED. Streams already
 * accepted stay open. Safe to call more than once; the last reference
 * going also closes the listener.
 *
 * Since: 1.0
 */
void
lsock_listener_close (LsockListener *self)
{
  GQueue pending = G_QUEUE_INIT;
  GTask *task;

  g_return_if_fail (LSOCK_IS_LISTENER (self));

  g_mutex_lock (&self->lock);
  if (self->closed)
    {
      g_mutex_unlock (&self->lock);
      return;
    }
  self->closed = TRUE;
  stop_locked (self);
  if (self->accept_source != NULL)
    {
      g_source_destroy (self->accept_source);
      g_clear_pointer (&self->accept_source, g_source_unref);
    }
  pending = self->pending;
  g_queue_init (&self->pending);
  if (self->bound)
    _lsock_listener_close_impl (self);
  g_mutex_unlock (&self->lock);

  while ((task = g_queue_pop_head (&pending)) != NULL)
    {
      AcceptData *data;
      GError *error = NULL;

      if (LSOCK_IS_ACCEPT_OP (task))
        {
          LsockAcceptOp *op = (LsockAcceptOp *) task;

          _lsock_listener_set_closed_error (self, &op->error);
          accept_op_report_later (op);
          continue;
        }

      data = g_task_get_task_data (task);
      if (data->source != NULL)
        {
          g_source_destroy (data->source);
          g_clear_pointer (&data->source, g_source_unref);
        }
      _lsock_listener_set_closed_error (self, &error);
      g_task_return_error (task, error);
      g_object_unref (task);
    }
}

/**
 * lsock_listener_is_closed:
 * @self: a #LsockListener
 *
 * Whether [method@Lsock.Listener.close] was called.
 *
 * Returns: %TRUE if the listener is closed
 *
 * Since: 1.0
 */
gboolean
lsock_listener_is_closed (LsockListener *self)
{
  gboolean ret;

  g_return_val_if_fail (LSOCK_IS_LISTENER (self), TRUE);

  g_mutex_lock (&self->lock);
  ret = self->closed;
  g_mutex_unlock (&self->lock);

  return ret;
}
