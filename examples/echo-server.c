/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* A minimal echo server: every client gets back exactly the bytes it sends.
 *
 *   cc echo-server.c $(pkg-config --cflags --libs lsock-gobject-1.0) -o echo-server
 *   ./echo-server my-echo        # then: lsock connect my-echo
 *
 * One main loop serves every client: LsockListener::incoming hands over each
 * new connection, and GIO's pollable streams splice input to output. */

#include <locale.h>
#include <lsock-gobject/lsock.h>
#ifdef G_OS_UNIX
# include <glib-unix.h>
#endif

static void
splice_done_cb (GObject      *source,
                GAsyncResult *result,
                gpointer      user_data)
{
  LsockStream *stream = user_data;  /* the reference taken in incoming_cb() */
  g_autoptr(GError) error = NULL;

  /* The splice ends at the client's end of stream (or on an error), once
   * everything read has been written back */
  if (g_output_stream_splice_finish (G_OUTPUT_STREAM (source), result, &error) < 0)
    g_printerr ("Client failed: %s\n", error->message);

  /* The last reference: closes the connection */
  g_object_unref (stream);
}

static gboolean
incoming_cb (LsockListener *listener,
             LsockStream   *stream,
             gpointer       user_data)
{
  GIOStream *io = G_IO_STREAM (stream);

  /* Echo everything up to the client's end of stream; the reference
   * keeps the connection open until then */
  g_output_stream_splice_async (g_io_stream_get_output_stream (io),
                                g_io_stream_get_input_stream (io),
                                G_OUTPUT_STREAM_SPLICE_NONE,
                                G_PRIORITY_DEFAULT, NULL,
                                splice_done_cb, g_object_ref (stream));
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
  g_autoptr(LsockListener) listener = NULL;
  g_autoptr(GMainLoop) loop = g_main_loop_new (NULL, FALSE);
  g_autofree char *display = NULL;

  /* For translated error messages, and their “quotes” in this locale */
  setlocale (LC_ALL, "");

  /* "lsock-demo" is a generic name: an abstract socket on Linux */
  name = lsock_name_parse (argc > 1 ? argv[1] : "lsock-demo", &error);
  if (name == NULL)
    goto fail;

  /* Binds and listens; only this user's processes may connect */
  listener = lsock_listener_new (name, &error);
  if (listener == NULL)
    goto fail;

  g_signal_connect (listener, "incoming", G_CALLBACK (incoming_cb), NULL);
  lsock_listener_start (listener);

  display = lsock_name_to_string (name);
  g_printerr ("Listening on %s; Ctrl-C to stop\n", display);

#ifdef G_OS_UNIX
  /* Stop cleanly on Ctrl-C: unreffing the listener removes a socket file */
  g_unix_signal_add (SIGINT, quit_cb, loop);
  g_unix_signal_add (SIGTERM, quit_cb, loop);
#endif
  g_main_loop_run (loop);
  return 0;

fail:
  g_printerr ("echo-server: %s\n", error->message);
  return 1;
}
