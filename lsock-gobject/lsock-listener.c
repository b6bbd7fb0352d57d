/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include "lsock-listener-private.h"
#include "lsock-name-private.h"
#include "lsock-stream-private.h"
#include "lsock-async-result-private.h"
#include "lsock-enum-types.h"
#include "lsock-i18n-private.h"

/**
 * LsockListener:
 *
 * A server listening on an [class@Lsock.Name] for many clients, each of
 * which gets its own [class@Lsock.Stream].
 *
 * Making a listener binds the name and starts listening
 * ([iface@Gio.Initable]); it fails with %G_IO_ERROR_ADDRESS_IN_USE if a live
 * listener already holds the name. Peers are then taken in one of three
 * ways, which may be mixed:
 *
 * - [method@Lsock.Listener.accept], which blocks (cancellably);
 * - [method@Lsock.Listener.accept_async], driven by the caller's
 *   thread-default main context, with no helper thread;
 * - [method@Lsock.Listener.start], after which [signal@Lsock.Listener::incoming]
 *   is emitted in that main context for every peer, like
 *   [class@Gio.SocketService]; a started listener keeps itself alive until
 *   it is stopped or closed ([property@Lsock.Listener:active]).
 *
 * ## Making one with other settings
 *
 * [ctor@Lsock.Listener.new] and [ctor@Lsock.Listener.new_full] cover the
 * usual cases. For [property@Lsock.Listener:backlog] or
 * [property@Lsock.Listener:replace-stale], construct it with properties
 * and initialise it, as for any [iface@Gio.Initable]; until then it binds
 * nothing, and every call fails with %G_IO_ERROR_NOT_INITIALIZED:
 *
 * ```c
 * listener = g_initable_new (LSOCK_TYPE_LISTENER, cancellable, &error,
 *                            "name", name, "backlog", 16, NULL);
 * ```
 *
 * ```python
 * listener = Lsock.Listener(name=name, backlog=16)
 * listener.init(None)
 * ```
 *
 * ```js
 * const listener = new Lsock.Listener({name, backlog: 16});
 * listener.init(null);
 * ```
 *
 * ```vala
 * var listener = (Lsock.Listener) GLib.Initable.new (typeof (Lsock.Listener), null,
 *                                                    "name", name, "backlog", 16);
 * ```
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
  PROP_ACTIVE,
  N_PROPS
};

enum {
  SIGNAL_INCOMING,
  SIGNAL_ACCEPT_ERROR,
  SIGNAL_PEER_REJECTED,
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
/* Peers taken (accepted or refused) per dispatch of a source, so that one
 * busy listener cannot starve the rest of the main context */
#define MAX_ACCEPTS_PER_DISPATCH 64

/* An accept_async() waiting for a peer. Whoever takes it off the pending
 * queue (under the lock) reports its result: the source of its context,
 * its cancellable's source, or close(). */
typedef struct
{
  LsockAsyncResult *result;
  GMainContext     *context;        /* the caller's thread-default */
  GCancellable     *cancellable;
  GSource          *cancel_source;  /* holds a reference on the result */
} AcceptWait;

/* The source that serves the waits of one context */
typedef struct
{
  GSource      *source;
  /* A reference: a source may only be destroyed (from any thread) while
   * its context lives */
  GMainContext *context;
  /* What the connections' async I/O will need there, kept meanwhile */
  gpointer      io_hold;
} AcceptSource;

static const char *
listener_display (LsockListener *self)
{
  return self->name != NULL ? _lsock_name_get_display (self->name) : "";
}

void
_lsock_listener_set_closed_error (LsockListener  *self,
                                  GError        **error)
{
  g_set_error (error, G_IO_ERROR, G_IO_ERROR_CLOSED,
               _("The listener on “%s” is closed"), listener_display (self));
}

static void
set_not_initialized_error (LsockListener  *self,
                           GError        **error)
{
  if (self->name != NULL)
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_INITIALIZED,
                 _("The listener on “%s” was not initialised: make it with "
                   "lsock_listener_new(), or call g_initable_init() on it first"),
                 listener_display (self));
  else
    g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_NOT_INITIALIZED,
                         _("The listener was not initialised: make it with "
                           "lsock_listener_new(), or call g_initable_init() on it first"));
}

/* Whether the listener can take peers; the error says why not. With the
 * lock. */
static gboolean
check_usable_locked (LsockListener  *self,
                     GError        **error)
{
  if (self->closed)
    {
      _lsock_listener_set_closed_error (self, error);
      return FALSE;
    }
  if (!self->initialized)
    {
      set_not_initialized_error (self, error);
      return FALSE;
    }
  return TRUE;
}

static gboolean
check_usable (LsockListener  *self,
              GError        **error)
{
  gboolean ok;

  g_mutex_lock (&self->lock);
  ok = check_usable_locked (self, error);
  g_mutex_unlock (&self->lock);
  return ok;
}

static gboolean
lsock_listener_initable_init (GInitable     *initable,
                              GCancellable  *cancellable,
                              GError       **error)
{
  LsockListener *self = LSOCK_LISTENER (initable);
  gboolean ret;

  if (self->name == NULL)
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                           _("Could not listen: the listener has no name (set its “name” property)"));
      return FALSE;
    }

  g_mutex_lock (&self->lock);
  if (self->initialized)
    ret = TRUE;
  else if (self->closed)
    {
      _lsock_listener_set_closed_error (self, error);
      ret = FALSE;
    }
  else
    ret = self->initialized = _lsock_listener_bind_impl (self, cancellable, error);
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

  g_assert (g_queue_is_empty (&self->pending));
  g_assert (self->accept_sources == NULL);
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

    case PROP_ACTIVE:
      g_value_set_boolean (value, lsock_listener_is_active (self));
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
   * process. A listener on a socket it did not make
   * ([ctor@Lsock.Listener.new_from_fd], socket activation) never removes
   * the file, which is not its own: there it starts %FALSE, and setting it
   * changes nothing.
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

  /**
   * LsockListener:active:
   *
   * Whether the incoming service runs: %TRUE from
   * [method@Lsock.Listener.start] until [method@Lsock.Listener.stop] or
   * [method@Lsock.Listener.close]. Meanwhile the listener keeps itself
   * alive, as a [class@Gio.SocketService] does: a service started from
   * Python or JavaScript goes on serving when the last wrapper is gone.
   *
   * Since: 1.0
   */
  properties[PROP_ACTIVE] =
    g_param_spec_boolean ("active", NULL, NULL,
                          FALSE,
                          (G_PARAM_READABLE |
                           G_PARAM_EXPLICIT_NOTIFY |
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
   * when the last reference goes, unless an operation on its input or
   * output stream is still pending (see [class@Lsock.Stream]).
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

  /**
   * LsockListener::peer-rejected:
   * @self: the listener
   * @credentials: (nullable): the refused peer's credentials, as the
   *   system recorded them when it connected (%NULL if they could not be
   *   read)
   *
   * Emitted for every peer that [property@Lsock.Listener:access] refused;
   * the peer was closed. It is emitted where the peer was taken: in the
   * main context of the incoming service ([method@Lsock.Listener.start]),
   * in that of an [method@Lsock.Listener.accept_async], or in the thread of
   * a sync [method@Lsock.Listener.accept]. Refused peers count against the
   * same per-dispatch budget as admitted ones, so a flood of them cannot
   * starve the main context.
   *
   * Since: 1.0
   */
  signals[SIGNAL_PEER_REJECTED] =
    g_signal_new ("peer-rejected",
                  G_TYPE_FROM_CLASS (klass),
                  G_SIGNAL_RUN_LAST,
                  0,
                  NULL, NULL,
                  NULL,
                  G_TYPE_NONE, 1, G_TYPE_CREDENTIALS);
}

static void
lsock_listener_init (LsockListener *self)
{
  self->backlog = LSOCK_DEFAULT_BACKLOG;
  self->access = LSOCK_ACCESS_USER;
  self->replace_stale = TRUE;
  self->reclaim_name = TRUE;
  self->adopt_fd = -1;
  self->adopt_index = -1;
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

static LsockListener *
new_adopting (int           fd,
              int           activation_index,
              LsockAccess   access,
              GError      **error)
{
  g_autoptr(LsockName) name = NULL;
  LsockListener *self;

  name = _lsock_listener_name_of_fd_impl (fd, error);
  if (name == NULL)
    return NULL;

  self = g_object_new (LSOCK_TYPE_LISTENER, "name", name, "access", access, NULL);
  self->adopt_fd = fd;
  self->adopt_index = activation_index;
  self->reclaim_name = FALSE;  /* a file we did not bind is never removed */
  if (!g_initable_init (G_INITABLE (self), NULL, error))
    {
      g_object_unref (self);
      return NULL;
    }
  return self;
}

/**
 * lsock_listener_new_from_fd:
 * @fd: a listening `AF_UNIX` `SOCK_STREAM` socket
 * @access: who may connect
 * @error: return location for a #GError
 *
 * Makes a listener of a socket that is already bound and listening: one
 * passed by a parent process or a service manager (for socket activation
 * itself, [ctor@Lsock.Listener.new] and [ctor@Lsock.Listener.new_activated]
 * do this for you).
 *
 * The socket is validated: anything but a listening Unix-domain stream
 * socket fails with %G_IO_ERROR_INVALID_ARGUMENT, and then @fd stays the
 * caller's. On success the listener owns @fd and closes it when closed.
 * The listener's name is the address the socket is bound to. Since this
 * listener did not make the socket, it never shuts it down (others may
 * share it) and never removes its file
 * ([property@Lsock.Listener:reclaim-name] is %FALSE). @access is checked on
 * every accept as usual, but the file's permissions are whatever its
 * maker gave it.
 *
 * On Windows this fails with %G_IO_ERROR_NOT_SUPPORTED.
 *
 * Returns: (transfer full): a listening #LsockListener
 *
 * Since: 1.0
 */
LsockListener *
lsock_listener_new_from_fd (int           fd,
                            LsockAccess   access,
                            GError      **error)
{
  g_return_val_if_fail (fd >= 0, NULL);
  g_return_val_if_fail (access == LSOCK_ACCESS_USER || access == LSOCK_ACCESS_EVERYONE, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  return new_adopting (fd, -1, access, error);
}

/**
 * lsock_listener_new_activated:
 * @fd_name: (nullable): the socket's name in `$LISTEN_FDNAMES` (systemd's
 *   `FileDescriptorName=`), or %NULL for the only one
 * @access: who may connect
 * @error: return location for a #GError
 *
 * Takes a listening socket passed by socket activation, by its name.
 *
 * A process started by systemd (or `systemd-socket-activate`, or any
 * service manager that follows sd_listen_fds(3)) with `$LISTEN_FDS` and
 * `$LISTEN_PID` (and `$LISTEN_PIDFDID`, where the kernel can check it)
 * naming it gets its sockets from descriptor 3 on. lsock reads the
 * variables once, checks that every descriptor is open before using any
 * (otherwise it ignores them), and makes them close-on-exec. Usually there
 * is no need to call this: [ctor@Lsock.Listener.new] on the socket's name
 * (the path or abstract name in the `.socket` unit's `ListenStream=`)
 * adopts it by itself, so a service runs the same with and without
 * activation.
 *
 * The listener never shuts the socket down or removes its file; closing
 * it leaves the socket to the service manager, and a listener made later
 * in the same process can take it again. Once every passed socket has been
 * taken, the variables are unset so that child processes do not take them
 * for their own (see
 * [func@Lsock.Listener.set_keep_activation_environment]).
 *
 * Fails with %G_IO_ERROR_NOT_FOUND when the process was not activated or
 * no socket has that name, %G_IO_ERROR_INVALID_ARGUMENT when it is not a
 * listening Unix-domain stream socket (with `Accept=yes` each connection
 * comes as a connected socket: use [ctor@Lsock.Stream.new_from_fd]) or
 * when @fd_name is %NULL and there are several, %G_IO_ERROR_ADDRESS_IN_USE
 * when another listener has it, and %G_IO_ERROR_NOT_SUPPORTED on Windows.
 *
 * Returns: (transfer full): a listening #LsockListener
 *
 * Since: 1.0
 */
LsockListener *
lsock_listener_new_activated (const char   *fd_name,
                              LsockAccess   access,
                              GError      **error)
{
  LsockListener *self;
  int index = -1;
  int fd;

  g_return_val_if_fail (access == LSOCK_ACCESS_USER || access == LSOCK_ACCESS_EVERYONE, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  fd = _lsock_listener_borrow_activated_impl (fd_name, &index, error);
  if (fd < 0)
    return NULL;
  self = new_adopting (fd, index, access, error);
  if (self == NULL)
    {
      _lsock_fd_close_impl (fd);
      _lsock_listener_give_back_activated_impl (index);
    }
  return self;
}

/**
 * lsock_listener_set_keep_activation_environment:
 * @keep: whether to keep the variables
 *
 * Whether lsock leaves the socket activation variables (`$LISTEN_FDS`,
 * `$LISTEN_PID`, `$LISTEN_PIDFDID`, `$LISTEN_FDNAMES`) in the environment
 * once it has taken every socket they pass. By default it unsets them, as
 * sd_listen_fds() does when asked to, so that a child process does not
 * mistake them for its own. Call it before the first listener is made;
 * like any change to the environment, unsetting them is not safe while
 * other threads read the environment.
 *
 * Since: 1.0
 */
void
lsock_listener_set_keep_activation_environment (gboolean keep)
{
  _lsock_listener_set_keep_activation_environment_impl (keep);
}

/**
 * lsock_listener_is_adopted:
 * @self: a #LsockListener
 *
 * Whether the listener listens on a socket it did not make: one given to
 * [ctor@Lsock.Listener.new_from_fd], or passed by socket activation.
 *
 * Returns: %TRUE for an adopted socket
 *
 * Since: 1.0
 */
gboolean
lsock_listener_is_adopted (LsockListener *self)
{
  g_return_val_if_fail (LSOCK_IS_LISTENER (self), FALSE);

  return _lsock_listener_is_adopted_impl (self);
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


static void
emit_peer_rejected (LsockListener *self,
                    GCredentials  *credentials)
{
  g_debug ("Refused a peer on “%s”", listener_display (self));
  g_signal_emit (self, signals[SIGNAL_PEER_REJECTED], 0, credentials);
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
  g_return_val_if_fail (LSOCK_IS_LISTENER (self), NULL);
  g_return_val_if_fail (!cancellable || G_IS_CANCELLABLE (cancellable), NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (!check_usable (self, error))
    return NULL;

  for (;;)
    {
      GError *local_error = NULL;
      g_autoptr(GCredentials) rejected = NULL;
      LsockStream *stream;

      stream = _lsock_listener_accept_impl (self, LSOCK_ACCEPT_BLOCKING, cancellable,
                                            &rejected, &local_error);
      if (stream != NULL)
        return stream;
      if (local_error != NULL)
        {
          _lsock_name_cancelled_error (self->name, local_error);
          g_propagate_error (error, local_error);
          return NULL;
        }
      /* A refused peer: say so, and wait for the next one */
      emit_peer_rejected (self, rejected);
    }
}

/* Asynchronous accepts.
 *
 * Every accept_async() is a fresh LsockAsyncResult waiting in
 * self->pending until a source of its context finds a peer for it, its
 * cancellable fires, or close() fails it; whichever takes it off the queue
 * (under the lock) reports it, from a dispatch of its context, so never
 * from inside accept_async(). Not a GTask: a GTask made in this main loop
 * iteration is reported one iteration later, and an accept chained from
 * the callback is usually served in the same dispatch, whose source would
 * then run out of waits, be destroyed and be made again (two wake-ups of
 * the context per connection).
 * One source per context serves its waits in order, so accepts chained
 * from the callback (the usual way) keep one source, and more waits than
 * peers never make anyone block: the socket is non-blocking once a source
 * watches it, and an accept that finds nobody puts its wait back. */

static void
accept_wait_free (AcceptWait *wait)
{
  if (wait->cancel_source != NULL)
    {
      g_source_destroy (wait->cancel_source);
      g_source_unref (wait->cancel_source);
    }
  g_clear_object (&wait->cancellable);
  g_main_context_unref (wait->context);
  g_free (wait);
}

/* Calls back: from a dispatch of the wait's context */
static void
accept_wait_return (AcceptWait  *wait,
                    LsockStream *stream,
                    GError      *error)
{
  LsockAsyncResult *result = g_steal_pointer (&wait->result);

  accept_wait_free (wait);
  if (stream != NULL)
    result->object = G_OBJECT (stream);
  else
    {
      _lsock_name_cancelled_error (((LsockListener *) result->source_object)->name, error);
      result->count = -1;
      result->error = error;
    }
  _lsock_async_result_complete (result);
  g_object_unref (result);
}

guint
_lsock_listener_count_accept_sources (LsockListener *self)
{
  guint n;

  g_mutex_lock (&self->lock);
  n = g_slist_length (self->accept_sources);
  g_mutex_unlock (&self->lock);
  return n;
}

/* accept_wait_return() gives it its message */
static GError *
cancelled_error (void)
{
  return g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CANCELLED, "");
}

static gboolean
accept_wait_return_closed_cb (gpointer user_data)
{
  AcceptWait *wait = user_data;
  GError *error = NULL;

  _lsock_listener_set_closed_error ((LsockListener *) wait->result->source_object, &error);
  accept_wait_return (wait, NULL, error);
  return G_SOURCE_REMOVE;
}

/* close() fails the waits from their own contexts, never from inside
 * itself (it may run in any thread, or from a callback) */
static void
accept_wait_return_closed_later (AcceptWait *wait)
{
  GSource *source = g_idle_source_new ();

  g_source_set_static_name (source, "[lsock] accept");
  g_source_set_priority (source, G_PRIORITY_DEFAULT);
  g_source_set_callback (source, accept_wait_return_closed_cb, wait, NULL);
  g_source_attach (source, wait->context);
  g_source_unref (source);
}

static AcceptSource *
find_accept_source (LsockListener *self,
                    GMainContext  *context)
{
  for (GSList *l = self->accept_sources; l != NULL; l = l->next)
    if (((AcceptSource *) l->data)->context == context)
      return l->data;
  return NULL;
}

static gboolean
context_has_waits (LsockListener *self,
                   GMainContext  *context)
{
  for (GList *l = self->pending.head; l != NULL; l = l->next)
    if (((AcceptWait *) l->data)->context == context)
      return TRUE;
  return FALSE;
}

/* Takes @context's source off the list if nothing waits there any more;
 * the caller frees it once unlocked (its destroy notify drops a reference
 * on the listener). With the lock. */
static AcceptSource *
unlist_idle_accept_source (LsockListener *self,
                           GMainContext  *context)
{
  AcceptSource *as = find_accept_source (self, context);

  if (as == NULL || context_has_waits (self, context))
    return NULL;
  self->accept_sources = g_slist_remove (self->accept_sources, as);
  return as;
}

static void
destroy_source (GSource *source)
{
  if (source != NULL)
    {
      g_source_destroy (source);
      g_source_unref (source);
    }
}

static gboolean
source_release_cb (gpointer user_data)
{
  return G_SOURCE_REMOVE;  /* its destroy notify lets go of the source */
}

static void
accept_source_free (AcceptSource *as)
{
  if (as == NULL)
    return;

  /* Out of the context at once; but the thread that runs the context may
   * be between building its poll set and waiting on it, and the source's
   * last reference closes what it polls (on Windows, events that
   * WaitForMultipleObjectsEx() then calls invalid). So the source goes
   * now only if no other thread owns the context (then nobody polls it),
   * and otherwise from the context, once its poll is over. */
  g_source_destroy (as->source);
  if (g_main_context_acquire (as->context))
    {
      g_source_unref (as->source);
      g_main_context_release (as->context);
    }
  else
    {
      GSource *idle = g_idle_source_new ();

      g_source_set_static_name (idle, "[lsock] accept source release");
      g_source_set_priority (idle, G_PRIORITY_HIGH);
      g_source_set_callback (idle, source_release_cb, as->source, (GDestroyNotify) g_source_unref);
      g_source_attach (idle, as->context);
      g_source_unref (idle);
    }
  _lsock_io_release_context_impl (as->io_hold);
  g_main_context_unref (as->context);
  g_free (as);
}

typedef struct
{
  LsockListener *listener;   /* a reference */
  GMainContext  *context;
} AcceptSourceData;

static void
accept_source_data_free (AcceptSourceData *data)
{
  g_object_unref (data->listener);
  g_free (data);
}

static gboolean
accept_source_serve (AcceptSourceData *data)
{
  LsockListener *self = data->listener;

  for (int i = 0; i < MAX_ACCEPTS_PER_DISPATCH; i++)
    {
      GError *error = NULL;
      g_autoptr(GCredentials) rejected = NULL;
      LsockStream *stream;
      AcceptWait *wait = NULL;
      AcceptSource *idle = NULL;

      /* The oldest wait of this context is ours to serve */
      g_mutex_lock (&self->lock);
      for (GList *l = self->pending.head; l != NULL; l = l->next)
        if (((AcceptWait *) l->data)->context == data->context)
          {
            wait = l->data;
            g_queue_delete_link (&self->pending, l);
            break;
          }
      if (wait == NULL)
        idle = unlist_idle_accept_source (self, data->context);
      g_mutex_unlock (&self->lock);

      if (wait == NULL)
        {
          accept_source_free (idle);
          return G_SOURCE_REMOVE;
        }

      stream = _lsock_listener_accept_impl (self, i == 0 ? LSOCK_ACCEPT_READY :
                                                           LSOCK_ACCEPT_NONBLOCKING,
                                            NULL, &rejected, &error);
      if (stream != NULL || (error != NULL && !g_error_matches (error, G_IO_ERROR,
                                                                G_IO_ERROR_WOULD_BLOCK)))
        {
          accept_wait_return (wait, stream, error);
          continue;
        }

      /* Nobody (or a refused peer): the wait goes back in front, unless it
       * was cancelled or the listener closed meanwhile */
      g_mutex_lock (&self->lock);
      if (!self->closed && !g_cancellable_is_cancelled (wait->cancellable))
        {
          g_queue_push_head (&self->pending, wait);
          wait = NULL;
        }
      g_mutex_unlock (&self->lock);

      if (wait != NULL)
        {
          g_clear_error (&error);
          if (!check_usable (self, &error))
            accept_wait_return (wait, NULL, error);
          else
            accept_wait_return (wait, NULL, cancelled_error ());
          continue;
        }
      if (error != NULL)
        {
          /* Would block: wait for the source */
          g_error_free (error);
          return G_SOURCE_CONTINUE;
        }
      /* Refused: counted, try the next peer */
      emit_peer_rejected (self, rejected);
    }

  return G_SOURCE_CONTINUE;
}

/* An operation that a callback starts on the connection it was given and
 * that completes at once (the request is there) is reported in this
 * dispatch, once the callback returned, not an iteration later */
static gboolean
accept_source_cb (gpointer user_data)
{
  AcceptSourceData *data = user_data;
  LsockListener *self = data->listener;
  LsockIoDispatch dispatch = { NULL, NULL };
  AcceptSource *as;
  gboolean again;

  /* What the source holds, unless close() in another thread took the
   * source off the list and let go of it meanwhile: the dispatch takes
   * its own reference under the lock */
  g_mutex_lock (&self->lock);
  as = find_accept_source (self, data->context);
  if (as != NULL && as->source == g_main_current_source ())
    _lsock_io_dispatch_begin_impl (as->io_hold, &dispatch);
  g_mutex_unlock (&self->lock);
  again = accept_source_serve (data);
  _lsock_io_dispatch_end_impl (&dispatch);
  return again;
}

/* With the lock */
static void
ensure_accept_source (LsockListener *self,
                      GMainContext  *context)
{
  AcceptSource *as;
  AcceptSourceData *data;

  if (find_accept_source (self, context) != NULL)
    return;

  data = g_new0 (AcceptSourceData, 1);
  data->listener = g_object_ref (self);
  data->context = context;

  as = g_new0 (AcceptSource, 1);
  as->context = g_main_context_ref (context);
  as->io_hold = _lsock_io_hold_context_impl (context);
  as->source = _lsock_listener_create_source_impl (self);
  g_source_set_static_name (as->source, "[lsock] accept");
  g_source_set_callback (as->source, accept_source_cb, data,
                         (GDestroyNotify) accept_source_data_free);
  /* GLib blocks a source that cannot recurse while it dispatches: that
   * removes its fd from the context and adds it back, two writes to the
   * context's eventfd and one more iteration per dispatch. The callback is
   * safe to re-enter: each wait is taken off the queue before its callback
   * runs. */
  g_source_set_can_recurse (as->source, TRUE);
  g_source_attach (as->source, context);
  self->accept_sources = g_slist_prepend (self->accept_sources, as);
}

static gboolean
accept_cancelled_cb (GCancellable *cancellable,
                     gpointer      user_data)
{
  LsockAsyncResult *result = user_data;
  LsockListener *self = (LsockListener *) result->source_object;
  AcceptWait *wait = NULL;
  AcceptSource *idle = NULL;

  g_mutex_lock (&self->lock);
  for (GList *l = self->pending.head; l != NULL; l = l->next)
    if (((AcceptWait *) l->data)->result == result)
      {
        wait = l->data;
        g_queue_delete_link (&self->pending, l);
        idle = unlist_idle_accept_source (self, wait->context);
        break;
      }
  g_mutex_unlock (&self->lock);

  accept_source_free (idle);
  if (wait != NULL)
    accept_wait_return (wait, NULL, cancelled_error ());
  return G_SOURCE_REMOVE;
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
 * connection.
 *
 * Any number of accepts may wait at once, from any threads and contexts;
 * peers go to them in the order they were started (per context), and none
 * of them ever blocks its thread. Every one ends: with a connection, with
 * %G_IO_ERROR_CANCELLED when @cancellable is cancelled before a peer was
 * taken for it, with %G_IO_ERROR_CLOSED when the listener is closed, or
 * with the system's error (such as %G_IO_ERROR_TOO_MANY_OPEN_FILES).
 *
 * @callback is never called before this returns. A peer already waiting
 * for an accept started from the callback of another one is taken in the
 * same main loop iteration, and reported there, without the iteration
 * more that a #GTask would wait.
 *
 * Since: 1.0
 */
void
lsock_listener_accept_async (LsockListener       *self,
                             GCancellable        *cancellable,
                             GAsyncReadyCallback  callback,
                             gpointer             user_data)
{
  GError *error = NULL;

  g_return_if_fail (LSOCK_IS_LISTENER (self));
  g_return_if_fail (!cancellable || G_IS_CANCELLABLE (cancellable));

  g_mutex_lock (&self->lock);
  if (check_usable_locked (self, &error) &&
      !g_cancellable_set_error_if_cancelled (cancellable, &error))
    {
      AcceptWait *wait = g_new0 (AcceptWait, 1);

      /* A peer taken for this wait is returned even if it was cancelled
       * just after: otherwise the peer would be lost */
      wait->result = _lsock_async_result_new (self, lsock_listener_accept_async,
                                              callback, user_data);
      wait->context = g_main_context_ref_thread_default ();
      wait->cancellable = cancellable != NULL ? g_object_ref (cancellable) : NULL;
      if (cancellable != NULL)
        {
          wait->cancel_source = g_cancellable_source_new (cancellable);
          g_source_set_static_name (wait->cancel_source, "[lsock] accept cancelled");
          g_source_set_callback (wait->cancel_source,
                                 (GSourceFunc) (void (*) (void)) accept_cancelled_cb,
                                 g_object_ref (wait->result), g_object_unref);
          g_source_attach (wait->cancel_source, wait->context);
        }
      g_queue_push_tail (&self->pending, wait);
      ensure_accept_source (self, wait->context);
    }
  g_mutex_unlock (&self->lock);

  /* Reported from the next iteration */
  if (error != NULL)
    {
      _lsock_name_cancelled_error (self->name, error);
      g_task_report_error (self, callback, user_data, lsock_listener_accept_async, error);
    }
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
  g_return_val_if_fail (LSOCK_IS_LISTENER (self), NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  /* Ours, or a GTask for an error reported at once */
  if (_lsock_is_async_result (result))
    {
      LsockAsyncResult *r = (LsockAsyncResult *) result;

      g_return_val_if_fail (_lsock_async_result_is_valid (result, self,
                                                          lsock_listener_accept_async), NULL);
      if (_lsock_async_result_propagate (r, error) < 0)
        return NULL;
      /* Given once, like a GTask's */
      return (LsockStream *) g_steal_pointer (&r->object);
    }
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);
  g_return_val_if_fail (g_async_result_is_tagged (result, lsock_listener_accept_async), NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}

/* The incoming service */

static void
emit_incoming (LsockListener *self,
               LsockStream   *stream)
{
  gboolean handled = FALSE;

  g_signal_emit (self, signals[SIGNAL_INCOMING], 0, stream, &handled);
}

static gboolean incoming_cb (gpointer user_data);

/* With the lock */
static void
incoming_watch (LsockListener *self)
{
  GSource *source = _lsock_listener_create_source_impl (self);

  g_source_set_static_name (source, "[lsock] incoming");
  g_source_set_callback (source, incoming_cb, g_object_ref (self), g_object_unref);
  /* See ensure_accept_source() */
  g_source_set_can_recurse (source, TRUE);
  self->incoming_source = source;
  g_source_attach (source, self->incoming_context);
}

static gboolean
backoff_done_cb (gpointer user_data)
{
  LsockListener *self = user_data;

  g_mutex_lock (&self->lock);
  if (self->backoff_source == g_main_current_source ())
    {
      g_clear_pointer (&self->backoff_source, g_source_unref);
      if (self->incoming_context != NULL && !self->closed)
        incoming_watch (self);
    }
  g_mutex_unlock (&self->lock);

  return G_SOURCE_REMOVE;
}

/* Whether the incoming source now dispatching is still the service's:
 * a handler may have stopped it (and started another) */
static gboolean
incoming_current (LsockListener *self)
{
  gboolean current;

  g_mutex_lock (&self->lock);
  current = self->incoming_source != NULL && self->incoming_source == g_main_current_source ();
  g_mutex_unlock (&self->lock);
  return current;
}

static gboolean
incoming_serve (LsockListener *self)
{
  GSource *old = NULL;

  for (int i = 0; i < MAX_ACCEPTS_PER_DISPATCH; i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(LsockStream) stream = NULL;
      g_autoptr(GCredentials) rejected = NULL;

      if (!incoming_current (self))
        return G_SOURCE_REMOVE;

      /* The source fired for the first; the others may not be there.
       * Refused peers count as much as admitted ones: a flood of them
       * must not keep the rest of the context waiting */
      stream = _lsock_listener_accept_impl (self, i == 0 ? LSOCK_ACCEPT_READY :
                                                           LSOCK_ACCEPT_NONBLOCKING,
                                            NULL, &rejected, &error);
      if (stream != NULL)
        {
          self->backoff_ms = 0;
          emit_incoming (self, stream);
          continue;
        }
      if (error == NULL)
        {
          emit_peer_rejected (self, rejected);
          continue;
        }
      if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
        return G_SOURCE_CONTINUE;
      if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CLOSED))
        return G_SOURCE_REMOVE;

      /* Out of descriptors or memory: the peer stays queued and the socket
       * stays readable, so polling again now would spin. Back off. */
      g_debug ("Accepting on “%s” failed: %s; backing off",
               listener_display (self), error->message);
      g_signal_emit (self, signals[SIGNAL_ACCEPT_ERROR], 0, error);

      g_mutex_lock (&self->lock);
      if (self->incoming_source != NULL && self->incoming_source == g_main_current_source ())
        {
          old = g_steal_pointer (&self->incoming_source);
          self->backoff_ms = self->backoff_ms == 0 ? BACKOFF_MIN_MS :
                             MIN (self->backoff_ms * 2, BACKOFF_MAX_MS);
          self->backoff_source = g_timeout_source_new (self->backoff_ms);
          g_source_set_static_name (self->backoff_source, "[lsock] accept back-off");
          g_source_set_callback (self->backoff_source, backoff_done_cb,
                                 g_object_ref (self), g_object_unref);
          g_source_attach (self->backoff_source, self->incoming_context);
        }
      g_mutex_unlock (&self->lock);
      /* Returning REMOVE destroys it; this is the list's reference */
      g_clear_pointer (&old, g_source_unref);
      return G_SOURCE_REMOVE;
    }

  return G_SOURCE_CONTINUE;
}

/* As accept_source_cb() */
static gboolean
incoming_cb (gpointer user_data)
{
  LsockListener *self = user_data;
  LsockIoDispatch dispatch = { NULL, NULL };
  gboolean again;

  /* Only the service's own source, whose context is the one held */
  g_mutex_lock (&self->lock);
  if (self->incoming_source != NULL && self->incoming_source == g_main_current_source ())
    _lsock_io_dispatch_begin_impl (self->incoming_io_hold, &dispatch);
  g_mutex_unlock (&self->lock);
  again = incoming_serve (self);
  _lsock_io_dispatch_end_impl (&dispatch);
  return again;
}

/**
 * lsock_listener_start:
 * @self: a #LsockListener
 *
 * Starts accepting peers in the thread-default main context of the calling
 * thread, emitting [signal@Lsock.Listener::incoming] there for each one,
 * until [method@Lsock.Listener.stop] or [method@Lsock.Listener.close].
 * Meanwhile the listener keeps a reference on itself
 * ([property@Lsock.Listener:active]). Does nothing if already started or
 * closed.
 *
 * Since: 1.0
 */
void
lsock_listener_start (LsockListener *self)
{
  gboolean started = FALSE;

  g_return_if_fail (LSOCK_IS_LISTENER (self));

  g_mutex_lock (&self->lock);
  if (!self->initialized && !self->closed)
    {
      g_mutex_unlock (&self->lock);
      g_critical ("lsock_listener_start: the listener was not initialised "
                  "(make it with lsock_listener_new(), or call g_initable_init() first)");
      return;
    }
  if (self->incoming_context == NULL && !self->closed)
    {
      self->incoming_context = g_main_context_ref_thread_default ();
      self->incoming_io_hold = _lsock_io_hold_context_impl (self->incoming_context);
      self->backoff_ms = 0;
      incoming_watch (self);
      started = TRUE;
    }
  g_mutex_unlock (&self->lock);

  if (started)
    {
      /* Dropped by stop() or close() */
      g_object_ref (self);
      g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_ACTIVE]);
    }
}

/* What stop_locked() takes, to let go of once unlocked */
typedef struct
{
  gboolean      was_active;
  GSList       *sources;        /* to destroy */
  gpointer      io_hold;
  GMainContext *context;        /* theirs: after them */
} Stopped;

/* Stops the service, if it runs. With the lock. */
static void
stop_locked (LsockListener *self,
             Stopped       *stopped)
{
  if (self->incoming_context == NULL)
    return;

  stopped->was_active = TRUE;
  if (self->incoming_source != NULL)
    stopped->sources = g_slist_prepend (stopped->sources, g_steal_pointer (&self->incoming_source));
  if (self->backoff_source != NULL)
    stopped->sources = g_slist_prepend (stopped->sources, g_steal_pointer (&self->backoff_source));
  stopped->io_hold = g_steal_pointer (&self->incoming_io_hold);
  stopped->context = g_steal_pointer (&self->incoming_context);
}

/* After stop_locked(), unlocked: the sources go while their context
 * lives, and the reference start() took goes last */
static void
stopped_finish (LsockListener *self,
                Stopped       *stopped)
{
  g_slist_free_full (stopped->sources, (GDestroyNotify) destroy_source);
  _lsock_io_release_context_impl (stopped->io_hold);
  g_clear_pointer (&stopped->context, g_main_context_unref);
  if (stopped->was_active)
    {
      g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_ACTIVE]);
      g_object_unref (self);
    }
}

/**
 * lsock_listener_stop:
 * @self: a #LsockListener
 *
 * Stops emitting [signal@Lsock.Listener::incoming], and drops the reference
 * [method@Lsock.Listener.start] took. The listener keeps its name: peers
 * that connect meanwhile wait in the backlog until the next
 * [method@Lsock.Listener.start] or accept.
 *
 * Since: 1.0
 */
void
lsock_listener_stop (LsockListener *self)
{
  Stopped stopped = { 0 };

  g_return_if_fail (LSOCK_IS_LISTENER (self));

  g_mutex_lock (&self->lock);
  stop_locked (self, &stopped);
  g_mutex_unlock (&self->lock);

  stopped_finish (self, &stopped);
}

/**
 * lsock_listener_is_active:
 * @self: a #LsockListener
 *
 * Gets [property@Lsock.Listener:active].
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
 * [property@Lsock.Listener:reclaim-name]), releases the name, stops the
 * incoming service, and fails pending and later accepts with
 * %G_IO_ERROR_CLOSED (pending ones are called back from their main
 * contexts, never from inside this call). A sync accept blocked in another
 * thread returns. Streams already accepted stay open. Safe to call more
 * than once, and from any thread; the last reference going also closes
 * the listener.
 *
 * Since: 1.0
 */
void
lsock_listener_close (LsockListener *self)
{
  GQueue pending;
  GSList *accept_sources;
  Stopped stopped = { 0 };
  AcceptWait *wait;

  g_return_if_fail (LSOCK_IS_LISTENER (self));

  g_mutex_lock (&self->lock);
  if (self->closed)
    {
      g_mutex_unlock (&self->lock);
      return;
    }
  self->closed = TRUE;
  stop_locked (self, &stopped);
  pending = self->pending;
  g_queue_init (&self->pending);
  accept_sources = g_steal_pointer (&self->accept_sources);
  if (self->initialized)
    _lsock_listener_close_impl (self);
  g_mutex_unlock (&self->lock);

  while ((wait = g_queue_pop_head (&pending)) != NULL)
    accept_wait_return_closed_later (wait);
  g_slist_free_full (accept_sources, (GDestroyNotify) accept_source_free);
  stopped_finish (self, &stopped);
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
