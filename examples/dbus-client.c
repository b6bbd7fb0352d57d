/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The client of dbus-server.c (or dbus-server.py): connects, makes a
 * peer-to-peer D-Bus connection over the stream and calls the server's
 * methods, all asynchronously on one main loop.
 *
 *   cc dbus-client.c $(pkg-config --cflags --libs lsock-gobject-1.0 gio-unix-2.0) \
 *      -o dbus-client
 *   ./dbus-server lsock-dbus-example &
 *   ./dbus-client lsock-dbus-example
 *
 * Calls Hello ("C client"), and on Unix sends the read end of a pipe to
 * ReadFd, which reads what this wrote into it. Exits with status 1 if
 * anything fails. */

#include <locale.h>
#include <string.h>
#include <lsock-gobject/lsock.h>
#ifdef G_OS_UNIX
# include <unistd.h>
# include <glib-unix.h>
# include <gio/gunixfdlist.h>
#endif

#define OBJECT_PATH "/org/example/LsockDemo"
#define INTERFACE   "org.example.LsockDemo"

/* What goes through the pipe */
#define PIPE_TEXT   "Written into a pipe by the C client"

typedef struct
{
  GMainLoop       *loop;
  GDBusConnection *connection;
  GError          *error;  /* the first failure */
} Client;

static void
client_fail (Client *client,
             GError *error)  /* (transfer full) */
{
  if (client->error == NULL)
    client->error = error;
  else
    g_error_free (error);
  g_main_loop_quit (client->loop);
}

static void
closed_cb (GObject      *source,
           GAsyncResult *result,
           gpointer      user_data)
{
  Client *client = user_data;
  GError *error = NULL;

  if (!g_dbus_connection_close_finish (G_DBUS_CONNECTION (source), result, &error))
    client_fail (client, error);
  else
    g_main_loop_quit (client->loop);
}

/* Done: close the connection; the server sees it go */
static void
client_finish (Client *client)
{
  g_dbus_connection_close (client->connection, NULL, closed_cb, client);
}

#ifdef G_OS_UNIX
static void
read_fd_cb (GObject      *source,
            GAsyncResult *result,
            gpointer      user_data)
{
  Client *client = user_data;
  GError *error = NULL;
  g_autoptr(GVariant) reply = NULL;
  const char *contents;

  reply = g_dbus_connection_call_with_unix_fd_list_finish (G_DBUS_CONNECTION (source),
                                                           NULL, result, &error);
  if (reply == NULL)
    {
      client_fail (client, error);
      return;
    }
  g_variant_get (reply, "(&s)", &contents);
  g_print ("ReadFd: the server read “%s”\n", contents);
  if (strcmp (contents, PIPE_TEXT) != 0)
    {
      client_fail (client, g_error_new (G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                                        "The server read something else"));
      return;
    }
  client_finish (client);
}

/* Sends the read end of a pipe with something in it */
static void
call_read_fd (Client *client)
{
  g_autoptr(GUnixFDList) list = g_unix_fd_list_new ();
  GError *error = NULL;
  int fds[2];
  int handle;

  if (!g_unix_open_pipe (fds, FD_CLOEXEC, &error))
    {
      client_fail (client, error);
      return;
    }
  /* Short enough for the pipe's buffer; closing the write end tells the
   * server where the data ends */
  if (write (fds[1], PIPE_TEXT, strlen (PIPE_TEXT)) != (gssize) strlen (PIPE_TEXT))
    g_warning ("Short write to a pipe");
  close (fds[1]);

  /* The list takes a copy; the 'h' argument is the index in it */
  handle = g_unix_fd_list_append (list, fds[0], &error);
  close (fds[0]);
  if (handle < 0)
    {
      client_fail (client, error);
      return;
    }

  g_dbus_connection_call_with_unix_fd_list (client->connection, NULL, OBJECT_PATH, INTERFACE,
                                            "ReadFd", g_variant_new ("(h)", handle),
                                            G_VARIANT_TYPE ("(s)"), G_DBUS_CALL_FLAGS_NONE,
                                            -1, list, NULL, read_fd_cb, client);
}
#endif

static void
hello_cb (GObject      *source,
          GAsyncResult *result,
          gpointer      user_data)
{
  Client *client = user_data;
  GError *error = NULL;
  g_autoptr(GVariant) reply = NULL;
  const char *greeting;

  reply = g_dbus_connection_call_finish (G_DBUS_CONNECTION (source), result, &error);
  if (reply == NULL)
    {
      client_fail (client, error);
      return;
    }
  g_variant_get (reply, "(&s)", &greeting);
  g_print ("Hello: %s\n", greeting);

#ifdef G_OS_UNIX
  /* EXTERNAL authentication over a GUnixConnection negotiated this */
  if (g_dbus_connection_get_capabilities (client->connection) &
      G_DBUS_CAPABILITY_FLAGS_UNIX_FD_PASSING)
    {
      call_read_fd (client);
      return;
    }
  g_print ("The connection cannot pass file descriptors\n");
#endif
  client_finish (client);
}

static void
dbus_ready_cb (GObject      *source,
               GAsyncResult *result,
               gpointer      user_data)
{
  Client *client = user_data;
  GError *error = NULL;

  client->connection = lsock_stream_new_dbus_connection_finish (LSOCK_STREAM (source),
                                                                result, &error);
  if (client->connection == NULL)
    {
      client_fail (client, error);
      return;
    }

  /* Peer to peer: no bus, so no destination name */
  g_dbus_connection_call (client->connection, NULL, OBJECT_PATH, INTERFACE, "Hello",
                          g_variant_new ("(s)", "C client"), G_VARIANT_TYPE ("(s)"),
                          G_DBUS_CALL_FLAGS_NONE, -1, NULL, hello_cb, client);
}

static void
connected_cb (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  Client *client = user_data;
  g_autoptr(LsockStream) stream = NULL;
  GError *error = NULL;

  stream = lsock_stream_connect_finish (result, &error);
  if (stream == NULL)
    {
      client_fail (client, error);
      return;
    }

  /* Client side: no GUID. The stream is consumed; the operation holds it
   * until it is done */
  lsock_stream_new_dbus_connection_async (stream, NULL, G_DBUS_CONNECTION_FLAGS_NONE,
                                          NULL, NULL, dbus_ready_cb, client);
}

int
main (int    argc,
      char **argv)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(LsockName) name = NULL;
  Client client = { 0, };
  int status = 0;

  /* For translated error messages, and their “quotes” in this locale */
  setlocale (LC_ALL, "");

  name = lsock_name_parse (argc > 1 ? argv[1] : "lsock-dbus-example", &error);
  if (name == NULL)
    {
      g_printerr ("dbus-client: %s\n", error->message);
      return 1;
    }

  client.loop = g_main_loop_new (NULL, FALSE);
  /* Checks that the server is this user's, as the server checks us */
  lsock_stream_connect_async (name, NULL, connected_cb, &client);
  g_main_loop_run (client.loop);

  if (client.error != NULL)
    {
      g_printerr ("dbus-client: %s\n", client.error->message);
      g_clear_error (&client.error);
      status = 1;
    }
  g_clear_object (&client.connection);
  g_clear_pointer (&client.loop, g_main_loop_unref);
  return status;
}
