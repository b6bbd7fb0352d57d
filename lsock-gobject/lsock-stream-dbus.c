/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include "lsock-stream-private.h"
#include "lsock-name-private.h"
#include "lsock-i18n-private.h"

/*
 * D-Bus peer to peer over an LsockStream.
 *
 * GDBus chooses what it can do by the type of the stream it is given: only
 * over a GUnixConnection does it exchange credentials (for EXTERNAL) and
 * negotiate descriptor passing. So on Unix the stream hands its socket to a
 * GUnixConnection, and the connection authenticates with EXTERNAL alone:
 * no DBUS_COOKIE_SHA1, which needs a keyring in a writable $HOME. On
 * Windows the stream itself is given, and the peer authenticates with
 * ANONYMOUS: nothing more can be proved over a pipe there (GDBus's EXTERNAL
 * on Windows takes the client's word for its SID), and it need not be,
 * since every LsockStream has passed lsock's access check (the listener's
 * per-accept SID check, the client's check of the server). An observer of
 * ours restricts the mechanisms to that one on both sides and hands every
 * other question to the caller's.
 */

typedef struct
{
  const char        *mechanism;   /* static */
  gboolean           anonymous;   /* also ANONYMOUS: the caller asked */
  GDBusAuthObserver *user;        /* nullable */
} ObserverData;

static void
observer_data_free (gpointer data,
                    GClosure *closure)
{
  ObserverData *od = data;

  g_clear_object (&od->user);
  g_free (od);
}

static gboolean
allow_mechanism_cb (GDBusAuthObserver *observer,
                    const char        *mechanism,
                    gpointer           user_data)
{
  ObserverData *od = user_data;

  if (g_strcmp0 (mechanism, od->mechanism) != 0 &&
      !(od->anonymous && g_strcmp0 (mechanism, "ANONYMOUS") == 0))
    return FALSE;
  return od->user == NULL || g_dbus_auth_observer_allow_mechanism (od->user, mechanism);
}

static gboolean
authorize_peer_cb (GDBusAuthObserver *observer,
                   GIOStream         *stream,
                   GCredentials      *credentials,
                   gpointer           user_data)
{
  ObserverData *od = user_data;

  return od->user == NULL ||
         g_dbus_auth_observer_authorize_authenticated_peer (od->user, stream, credentials);
}

/* The stream GDBus is to use, the flags and our observer, or NULL with
 * @error (the stream is then left as it was, unless it was closed) */
static GIOStream *
prepare (LsockStream           *self,
         const char            *guid,
         GDBusConnectionFlags  *flags,
         GDBusAuthObserver     *user_observer,
         GDBusAuthObserver    **out_observer,
         GError               **error)
{
  g_autoptr(GIOStream) stream = NULL;
  ObserverData *od;
  gboolean server = guid != NULL;
  const char *mechanism = NULL;

  if (!_lsock_stream_check_not_pending (self, error))
    return NULL;

  /* The side is the guid's */
  *flags &= ~(G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
              G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_SERVER);
  *flags |= server ? G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_SERVER :
                     G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT;

  od = g_new0 (ObserverData, 1);
  od->anonymous = (*flags & G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_ALLOW_ANONYMOUS) != 0;
  stream = _lsock_stream_dbus_stream_impl (self, server, flags, &mechanism, error);
  if (stream == NULL)
    {
      g_free (od);
      return NULL;
    }
  /* Handed over: this stream is done */
  if (stream != G_IO_STREAM (self))
    g_io_stream_close (G_IO_STREAM (self), NULL, NULL);

  od->mechanism = mechanism;
  od->user = user_observer != NULL ? g_object_ref (user_observer) : NULL;
  *out_observer = g_dbus_auth_observer_new ();
  g_signal_connect_data (*out_observer, "allow-mechanism",
                         G_CALLBACK (allow_mechanism_cb), od, observer_data_free, 0);
  g_signal_connect (*out_observer, "authorize-authenticated-peer",
                    G_CALLBACK (authorize_peer_cb), od);
  return g_steal_pointer (&stream);
}

/**
 * lsock_stream_new_dbus_connection:
 * @self: a connected #LsockStream
 * @guid: (nullable): the server's GUID (see g_dbus_generate_guid()) on the
 *   server side, %NULL on the client side
 * @flags: flags for the connection; the authentication side is set by @guid
 * @observer: (nullable): a #GDBusAuthObserver, or %NULL
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Makes a peer-to-peer D-Bus connection over the stream, blocking while it
 * authenticates. Both ends call this (or
 * [method@Lsock.Stream.new_dbus_connection_async]); the one with a @guid
 * is the server. There is no message bus: the two peers export objects and
 * call methods on each other, as with g_dbus_connection_new().
 *
 * On Unix the peer authenticates with `EXTERNAL`, from the credentials
 * the kernel gives (no keyring in `$HOME` is needed or touched), and
 * descriptor passing is negotiated (%G_DBUS_CAPABILITY_FLAGS_UNIX_FD_PASSING):
 * messages can carry a #GUnixFDList. On Windows it authenticates with
 * `ANONYMOUS`, which is safe only because the stream already passed
 * lsock's access check: the listener admitted the client's user, and the
 * client checked the server's (see [property@Lsock.Listener:access] and
 * [func@Lsock.Stream.connect_full]). Passing
 * %G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_ALLOW_ANONYMOUS also allows
 * `ANONYMOUS` on Unix. @observer is asked about everything else as usual.
 *
 * The stream is consumed: on Unix its socket is handed to GDBus and the
 * stream is closed; on Windows GDBus reads and writes it. Use the
 * connection from then on. Fails with %G_IO_ERROR_PENDING while an
 * operation on the stream is in progress.
 *
 * Returns: (transfer full): the connection, or %NULL with @error set
 *
 * Since: 1.0
 */
GDBusConnection *
lsock_stream_new_dbus_connection (LsockStream           *self,
                                  const char            *guid,
                                  GDBusConnectionFlags   flags,
                                  GDBusAuthObserver     *observer,
                                  GCancellable          *cancellable,
                                  GError               **error)
{
  g_autoptr(GIOStream) stream = NULL;
  g_autoptr(GDBusAuthObserver) ours = NULL;
  GDBusConnection *connection;

  g_return_val_if_fail (LSOCK_IS_STREAM (self), NULL);
  g_return_val_if_fail (guid == NULL || g_dbus_is_guid (guid), NULL);
  g_return_val_if_fail (observer == NULL || G_IS_DBUS_AUTH_OBSERVER (observer), NULL);
  g_return_val_if_fail (!cancellable || G_IS_CANCELLABLE (cancellable), NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  stream = prepare (self, guid, &flags, observer, &ours, error);
  if (stream == NULL)
    return NULL;
  connection = g_dbus_connection_new_sync (stream, guid, flags, ours, cancellable, error);
  if (connection == NULL)
    g_prefix_error (error, _("Could not make a D-Bus connection over “%s”: "),
                    _lsock_name_get_display (self->conn->name));
  return connection;
}

static void
new_dbus_connection_cb (GObject      *source,
                        GAsyncResult *result,
                        gpointer      user_data)
{
  GTask *task = user_data;
  LsockStream *self = g_task_get_source_object (task);
  GError *error = NULL;
  GDBusConnection *connection;

  connection = g_dbus_connection_new_finish (result, &error);
  if (connection == NULL)
    {
      g_prefix_error (&error, _("Could not make a D-Bus connection over “%s”: "),
                      _lsock_name_get_display (self->conn->name));
      g_task_return_error (task, error);
    }
  else
    g_task_return_pointer (task, connection, g_object_unref);
  g_object_unref (task);
}

/**
 * lsock_stream_new_dbus_connection_async:
 * @self: a connected #LsockStream
 * @guid: (nullable): the server's GUID on the server side, %NULL on the
 *   client side
 * @flags: flags for the connection; the authentication side is set by @guid
 * @observer: (nullable): a #GDBusAuthObserver, or %NULL
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): what to call when the connection is made
 * @user_data: data for @callback
 *
 * Makes a peer-to-peer D-Bus connection over the stream without blocking,
 * as [method@Lsock.Stream.new_dbus_connection] does; call
 * [method@Lsock.Stream.new_dbus_connection_finish] from @callback. The
 * stream is consumed at once.
 *
 * Since: 1.0
 */
void
lsock_stream_new_dbus_connection_async (LsockStream         *self,
                                        const char          *guid,
                                        GDBusConnectionFlags flags,
                                        GDBusAuthObserver   *observer,
                                        GCancellable        *cancellable,
                                        GAsyncReadyCallback  callback,
                                        gpointer             user_data)
{
  g_autoptr(GIOStream) stream = NULL;
  g_autoptr(GDBusAuthObserver) ours = NULL;
  GError *error = NULL;
  GTask *task;

  g_return_if_fail (LSOCK_IS_STREAM (self));
  g_return_if_fail (guid == NULL || g_dbus_is_guid (guid));
  g_return_if_fail (observer == NULL || G_IS_DBUS_AUTH_OBSERVER (observer));
  g_return_if_fail (!cancellable || G_IS_CANCELLABLE (cancellable));

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, lsock_stream_new_dbus_connection_async);
  g_task_set_name (task, "[lsock] D-Bus connection");

  stream = prepare (self, guid, &flags, observer, &ours, &error);
  if (stream == NULL)
    {
      g_task_return_error (task, error);
      g_object_unref (task);
      return;
    }
  g_dbus_connection_new (stream, guid, flags, ours, cancellable, new_dbus_connection_cb, task);
}

/**
 * lsock_stream_new_dbus_connection_finish:
 * @self: the #LsockStream given to the async call
 * @result: the #GAsyncResult given to the callback
 * @error: return location for a #GError
 *
 * Finishes [method@Lsock.Stream.new_dbus_connection_async].
 *
 * Returns: (transfer full): the connection, or %NULL with @error set
 *
 * Since: 1.0
 */
GDBusConnection *
lsock_stream_new_dbus_connection_finish (LsockStream   *self,
                                         GAsyncResult  *result,
                                         GError       **error)
{
  g_return_val_if_fail (LSOCK_IS_STREAM (self), NULL);
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) ==
                        lsock_stream_new_dbus_connection_async, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  return g_task_propagate_pointer (G_TASK (result), error);
}
