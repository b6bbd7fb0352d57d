/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* A peer-to-peer D-Bus server over lsock: no message bus, each client talks
 * to this process directly, over its own connection.
 *
 *   cc dbus-server.c $(pkg-config --cflags --libs lsock-gobject-1.0 gio-unix-2.0) \
 *      -o dbus-server
 *   ./dbus-server lsock-dbus-example     # then: ./dbus-client lsock-dbus-example
 *
 * (On Windows, where there is no descriptor passing, lsock-gobject-1.0 alone.)
 *
 * Every incoming LsockStream becomes a GDBusConnection with
 * lsock_stream_new_dbus_connection_async(), server side (with a GUID). On
 * Unix the client authenticates with EXTERNAL and messages can carry file
 * descriptors; on Windows it authenticates with ANONYMOUS, which is safe
 * because the listener has already checked that the client is this user.
 *
 * The object /org/example/LsockDemo has two methods:
 *
 *   Hello (s name) -> (s greeting)
 *   ReadFd (h fd) -> (s contents)       Unix only: reads what the client
 *                                       sent through the descriptor
 *
 * Runs until SIGINT or SIGTERM (Ctrl-C). */

#include <locale.h>
#include <lsock-gobject/lsock.h>
#ifdef G_OS_UNIX
# include <glib-unix.h>
# include <gio/gunixfdlist.h>
# include <gio/gunixinputstream.h>
#endif

#define OBJECT_PATH "/org/example/LsockDemo"
#define INTERFACE   "org.example.LsockDemo"
/* What ReadFd reads at most */
#define READ_MAX    4096

static const char introspection_xml[] =
  "<node>"
  "  <interface name='" INTERFACE "'>"
  "    <method name='Hello'>"
  "      <arg type='s' name='name' direction='in'/>"
  "      <arg type='s' name='greeting' direction='out'/>"
  "    </method>"
#ifdef G_OS_UNIX
  "    <method name='ReadFd'>"
  "      <arg type='h' name='fd' direction='in'/>"
  "      <arg type='s' name='contents' direction='out'/>"
  "    </method>"
#endif
  "  </interface>"
  "</node>";

typedef struct
{
  GMainLoop     *loop;
  LsockListener *listener;
  GCancellable  *cancellable;   /* connections still authenticating */
  GDBusNodeInfo *info;
  char          *guid;          /* the server's, one for all its connections */
  GHashTable    *peers;         /* GDBusConnection → Peer */
  guint          next_id;
} Server;

typedef struct
{
  Server          *server;
  GDBusConnection *connection;
  guint            id;
  guint            registration;
  gulong           closed_handler;
} Peer;

static void
peer_free (Peer *peer)
{
  g_dbus_connection_unregister_object (peer->connection, peer->registration);
  g_clear_signal_handler (&peer->closed_handler, peer->connection);
  g_object_unref (peer->connection);
  g_free (peer);
}

/* Hello */

static void
handle_hello (Peer                  *peer,
              GVariant              *parameters,
              GDBusMethodInvocation *invocation)
{
  g_autofree char *greeting = NULL;
  const char *name;

  g_variant_get (parameters, "(&s)", &name);
  g_print ("Client %u: Hello (“%s”)\n", peer->id, name);
  greeting = g_strdup_printf ("Hello, %s! You are client %u", name, peer->id);
  g_dbus_method_invocation_return_value (invocation, g_variant_new ("(s)", greeting));
}

/* ReadFd: the client sends a descriptor (a pipe, a memfd, a file) and this
 * reads from it, asynchronously, since nothing says the writer is done */

#ifdef G_OS_UNIX
typedef struct
{
  GDBusMethodInvocation *invocation;
  guint                  peer_id;
  char                   buffer[READ_MAX];
} ReadFd;

static void
read_fd_done_cb (GObject      *source,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  ReadFd *op = user_data;
  g_autoptr(GError) error = NULL;
  g_autofree char *contents = NULL;
  gsize n = 0;

  if (!g_input_stream_read_all_finish (G_INPUT_STREAM (source), result, &n, &error))
    {
      g_dbus_method_invocation_return_gerror (op->invocation, error);
    }
  else
    {
      /* A D-Bus string must be valid UTF-8 */
      contents = g_utf8_make_valid (op->buffer, n);
      g_print ("Client %u: ReadFd read %" G_GSIZE_FORMAT " bytes\n", op->peer_id, n);
      g_dbus_method_invocation_return_value (op->invocation,
                                             g_variant_new ("(s)", contents));
    }
  /* The stream closes the descriptor when it goes */
  g_object_unref (source);
  g_free (op);
}

static void
handle_read_fd (Peer                  *peer,
                GVariant              *parameters,
                GDBusMethodInvocation *invocation)
{
  GDBusMessage *message = g_dbus_method_invocation_get_message (invocation);
  GUnixFDList *list = g_dbus_message_get_unix_fd_list (message);
  g_autoptr(GError) error = NULL;
  GInputStream *in;
  ReadFd *op;
  gint32 handle;
  int fd;

  /* 'h' is an index into the message's descriptor list */
  g_variant_get (parameters, "(h)", &handle);
  if (list == NULL || handle < 0 || handle >= g_unix_fd_list_get_length (list))
    {
      g_dbus_method_invocation_return_error (invocation, G_DBUS_ERROR,
                                             G_DBUS_ERROR_INVALID_ARGS,
                                             "No file descriptor at index %d", handle);
      return;
    }
  /* A copy of ours, which the input stream closes */
  fd = g_unix_fd_list_get (list, handle, &error);
  if (fd < 0)
    {
      g_dbus_method_invocation_return_gerror (invocation, error);
      return;
    }

  in = g_unix_input_stream_new (fd, TRUE);
  op = g_new0 (ReadFd, 1);
  op->invocation = invocation;  /* its reference, until we return a value */
  op->peer_id = peer->id;
  g_input_stream_read_all_async (in, op->buffer, sizeof op->buffer, G_PRIORITY_DEFAULT,
                                 peer->server->cancellable, read_fd_done_cb, op);
}
#endif

static void
method_call_cb (GDBusConnection       *connection,
                const char            *sender,
                const char            *object_path,
                const char            *interface_name,
                const char            *method_name,
                GVariant              *parameters,
                GDBusMethodInvocation *invocation,
                gpointer               user_data)
{
  Peer *peer = user_data;

  /* GDBus has checked the method and its signature against the
   * introspection data */
  if (g_strcmp0 (method_name, "Hello") == 0)
    handle_hello (peer, parameters, invocation);
#ifdef G_OS_UNIX
  else if (g_strcmp0 (method_name, "ReadFd") == 0)
    handle_read_fd (peer, parameters, invocation);
#endif
  else
    g_dbus_method_invocation_return_error (invocation, G_DBUS_ERROR,
                                           G_DBUS_ERROR_UNKNOWN_METHOD,
                                           "No method %s", method_name);
}

static const GDBusInterfaceVTable vtable = { method_call_cb, NULL, NULL, { 0 } };

/* Connections */

static void
connection_closed_cb (GDBusConnection *connection,
                      gboolean         remote_peer_vanished,
                      GError          *error,
                      gpointer         user_data)
{
  Peer *peer = user_data;

  g_print ("Client %u disconnected\n", peer->id);
  g_hash_table_remove (peer->server->peers, connection);  /* frees peer */
}

static void
connection_ready_cb (GObject      *source,
                     GAsyncResult *result,
                     gpointer      user_data)
{
  Server *server = user_data;
  g_autoptr(GError) error = NULL;
  GDBusConnection *connection;
  Peer *peer;

  connection = lsock_stream_new_dbus_connection_finish (LSOCK_STREAM (source), result, &error);
  if (connection == NULL)
    {
      if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        g_printerr ("A client failed to connect: %s\n", error->message);
      return;
    }

  peer = g_new0 (Peer, 1);
  peer->server = server;
  peer->connection = connection;  /* ours */
  peer->id = ++server->next_id;
  peer->registration = g_dbus_connection_register_object (connection, OBJECT_PATH,
                                                          server->info->interfaces[0],
                                                          &vtable, peer, NULL, &error);
  if (peer->registration == 0)
    {
      g_printerr ("Could not export %s: %s\n", OBJECT_PATH, error->message);
      g_dbus_connection_close (connection, NULL, NULL, NULL);
      g_object_unref (connection);
      g_free (peer);
      return;
    }
  peer->closed_handler = g_signal_connect (connection, "closed",
                                           G_CALLBACK (connection_closed_cb), peer);
  g_hash_table_insert (server->peers, connection, peer);

  g_print ("Client %u connected%s\n", peer->id,
           (g_dbus_connection_get_capabilities (connection) &
            G_DBUS_CAPABILITY_FLAGS_UNIX_FD_PASSING) ? " (can pass file descriptors)" : "");

  /* The object is there: now handle the client's messages, which may
   * already be waiting */
  g_dbus_connection_start_message_processing (connection);
}

static gboolean
incoming_cb (LsockListener *listener,
             LsockStream   *stream,
             gpointer       user_data)
{
  Server *server = user_data;
  g_autoptr(GCredentials) credentials = NULL;
  g_autofree char *who = NULL;

  /* The listener admitted only this user's processes; say which one it is,
   * while the stream is still ours to ask */
  credentials = lsock_stream_get_peer_credentials (stream, NULL);
  if (credentials != NULL)
    who = g_credentials_to_string (credentials);
  g_print ("New client: %s\n", who != NULL ? who : "(no credentials)");

  /* The stream is consumed: use only the connection from now on. Delay
   * message processing until the object is registered, or a quick client's
   * first call would find nothing there. */
  lsock_stream_new_dbus_connection_async (stream, server->guid,
                                          G_DBUS_CONNECTION_FLAGS_DELAY_MESSAGE_PROCESSING,
                                          NULL, server->cancellable,
                                          connection_ready_cb, server);
  return TRUE;  /* handled */
}

#ifdef G_OS_UNIX
static gboolean
quit_cb (gpointer user_data)
{
  g_main_loop_quit (user_data);
  return G_SOURCE_REMOVE;
}
#endif

int
main (int    argc,
      char **argv)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(LsockName) name = NULL;
  g_autofree char *display = NULL;
  Server server = { 0, };
  GHashTableIter iter;
  gpointer value;

  /* For translated error messages, and their “quotes” in this locale */
  setlocale (LC_ALL, "");

  /* A generic name: an abstract socket on Linux, a socket file in the
   * runtime directory on macOS, a named pipe on Windows */
  name = lsock_name_parse (argc > 1 ? argv[1] : "lsock-dbus-example", &error);
  if (name == NULL)
    goto fail;

  /* Binds and listens; only this user's processes may connect */
  server.listener = lsock_listener_new (name, &error);
  if (server.listener == NULL)
    goto fail;

  server.loop = g_main_loop_new (NULL, FALSE);
  server.cancellable = g_cancellable_new ();
  server.info = g_dbus_node_info_new_for_xml (introspection_xml, NULL);
  server.guid = g_dbus_generate_guid ();
  server.peers = g_hash_table_new_full (NULL, NULL, NULL, (GDestroyNotify) peer_free);

  g_signal_connect (server.listener, "incoming", G_CALLBACK (incoming_cb), &server);
  lsock_listener_start (server.listener);

  display = lsock_name_to_string (name);
  g_printerr ("D-Bus server on %s; Ctrl-C to stop\n", display);

#ifdef G_OS_UNIX
  g_unix_signal_add (SIGINT, quit_cb, server.loop);
  g_unix_signal_add (SIGTERM, quit_cb, server.loop);
#endif
  g_main_loop_run (server.loop);

  /* Stop accepting (this removes a socket file), give up on clients still
   * authenticating and on reads still waiting, and close the connections */
  g_signal_handlers_disconnect_by_data (server.listener, &server);
  lsock_listener_close (server.listener);
  g_cancellable_cancel (server.cancellable);
  g_hash_table_iter_init (&iter, server.peers);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    {
      Peer *peer = value;

      g_clear_signal_handler (&peer->closed_handler, peer->connection);
      g_dbus_connection_close_sync (peer->connection, NULL, NULL);
    }
  g_hash_table_remove_all (server.peers);
  /* Let the cancelled operations report */
  while (g_main_context_iteration (NULL, FALSE))
    ;

  g_clear_object (&server.listener);
  g_clear_object (&server.cancellable);
  g_clear_pointer (&server.peers, g_hash_table_unref);
  g_clear_pointer (&server.info, g_dbus_node_info_unref);
  g_clear_pointer (&server.guid, g_free);
  g_clear_pointer (&server.loop, g_main_loop_unref);
  return 0;

fail:
  g_printerr ("dbus-server: %s\n", error->message);
  return 1;
}
