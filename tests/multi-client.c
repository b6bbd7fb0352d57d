/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

/* Many clients at once against one listener in incoming mode, everything
 * asynchronous on one main context: the server echoes, every client checks
 * every byte it gets back against what it sent. */

#include <string.h>

#include "lsock-test-util.h"

#define N_CLIENTS     128
#define PAYLOAD_SIZE  (64 * 1024)
#define N_WRITES      4            /* the payload goes out in this many writes */
#define READ_SIZE     (16 * 1024)

typedef struct _Test Test;

typedef struct
{
  Test         *test;
  guint         index;
  LsockStream  *stream;
  guint8       *payload;
  guint         n_written_chunks;
  gsize         received;
  gboolean      write_done;
  gboolean      eof;
  gboolean      finished;
  guint8        buffer[READ_SIZE];
} Client;

typedef struct
{
  Test         *test;
  LsockStream  *stream;
  GBytes       *pending;   /* being echoed */
  gsize         echoed;
  gboolean      finished;
} ServerConn;

struct _Test
{
  LsockName     *name;
  LsockListener *listener;
  Client         clients[N_CLIENTS];
  GPtrArray     *server_conns;   /* of ServerConn * */
  guint          n_incoming;
  guint          n_connected;
  guint          n_clients_finished;
  guint          n_servers_finished;
};

/* A payload of its own for every client: deterministic, and different from
 * every other client's */
static guint8 *
make_payload (guint index)
{
  guint8 *payload = g_malloc (PAYLOAD_SIZE);
  GRand *rand = g_rand_new_with_seed (0x15c0c + index);

  for (gsize i = 0; i < PAYLOAD_SIZE; i += 4)
    {
      guint32 v = g_rand_int (rand);

      memcpy (payload + i, &v, 4);
    }
  /* The client's index at the start, in case two seeds collide */
  memcpy (payload, &index, sizeof index);
  g_rand_free (rand);
  return payload;
}

/* Lists the open descriptors, to tell which one leaked */
static void
list_fds (const char *when)
{
#ifdef __linux__
  GDir *dir = g_dir_open ("/proc/self/fd", 0, NULL);
  const char *entry;

  if (dir == NULL)
    return;
  while ((entry = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *path = g_build_filename ("/proc/self/fd", entry, NULL);
      g_autofree char *target = g_file_read_link (path, NULL);

      g_test_message ("%s: fd %s -> %s", when, entry, target ? target : "?");
    }
  g_dir_close (dir);
#endif
}

/* ---- server side ------------------------------------------------------- */

static void server_read (ServerConn *conn);

static void
server_finish (ServerConn *conn)
{
  GError *error = NULL;

  /* The peer has sent everything and has had everything echoed: closing
   * gives it the end of the stream */
  g_io_stream_close (G_IO_STREAM (conn->stream), NULL, &error);
  g_assert_no_error (error);
  conn->finished = TRUE;
  conn->test->n_servers_finished++;
}

static void
server_write_cb (GObject      *source,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  ServerConn *conn = user_data;
  GError *error = NULL;
  gsize written = 0;

  g_output_stream_write_all_finish (G_OUTPUT_STREAM (source), result, &written, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (written, ==, g_bytes_get_size (conn->pending));
  conn->echoed += written;
  g_clear_pointer (&conn->pending, g_bytes_unref);

  server_read (conn);
}

static void
server_read_cb (GObject      *source,
                GAsyncResult *result,
                gpointer      user_data)
{
  ServerConn *conn = user_data;
  GError *error = NULL;
  GBytes *bytes;
  gsize size;

  bytes = g_input_stream_read_bytes_finish (G_INPUT_STREAM (source), result, &error);
  g_assert_no_error (error);
  g_assert_nonnull (bytes);

  size = g_bytes_get_size (bytes);
  if (size == 0)
    {
      g_bytes_unref (bytes);
      g_assert_cmpuint (conn->echoed, ==, PAYLOAD_SIZE);
      server_finish (conn);
      return;
    }

  conn->pending = bytes;
  g_output_stream_write_all_async (g_io_stream_get_output_stream (G_IO_STREAM (conn->stream)),
                                   g_bytes_get_data (bytes, NULL), size,
                                   G_PRIORITY_DEFAULT, NULL, server_write_cb, conn);
}

static void
server_read (ServerConn *conn)
{
  g_input_stream_read_bytes_async (g_io_stream_get_input_stream (G_IO_STREAM (conn->stream)),
                                   READ_SIZE, G_PRIORITY_DEFAULT, NULL,
                                   server_read_cb, conn);
}

static gboolean
incoming_cb (LsockListener *listener,
             LsockStream   *stream,
             gpointer       user_data)
{
  Test *test = user_data;
  ServerConn *conn = g_new0 (ServerConn, 1);

  g_assert_true (LSOCK_IS_STREAM (stream));
  g_assert_true (lsock_name_equal (lsock_stream_get_name (stream), test->name));

  conn->test = test;
  conn->stream = g_object_ref (stream);
  g_ptr_array_add (test->server_conns, conn);
  test->n_incoming++;

  server_read (conn);
  return TRUE;
}

/* ---- client side ------------------------------------------------------- */

static void client_read (Client *client);
static void client_write (Client *client);

static void
client_maybe_finish (Client *client)
{
  GError *error = NULL;

  if (!client->write_done || !client->eof || client->finished)
    return;

  g_assert_cmpuint (client->received, ==, PAYLOAD_SIZE);
  g_io_stream_close (G_IO_STREAM (client->stream), NULL, &error);
  g_assert_no_error (error);
  client->finished = TRUE;
  client->test->n_clients_finished++;
}

static void
client_read_cb (GObject      *source,
                GAsyncResult *result,
                gpointer      user_data)
{
  Client *client = user_data;
  GError *error = NULL;
  gssize n;

  n = g_input_stream_read_finish (G_INPUT_STREAM (source), result, &error);
  g_assert_no_error (error);
  g_assert_cmpint (n, >=, 0);

  if (n == 0)
    {
      client->eof = TRUE;
      client_maybe_finish (client);
      return;
    }

  /* Exactly our own bytes, in order */
  g_assert_cmpuint (client->received + n, <=, PAYLOAD_SIZE);
  if (memcmp (client->buffer, client->payload + client->received, n) != 0)
    g_error ("client %u: bytes %" G_GSIZE_FORMAT "..%" G_GSIZE_FORMAT " differ from its payload",
             client->index, client->received, client->received + n);
  client->received += n;

#ifdef G_OS_WIN32
  if (client->received == PAYLOAD_SIZE)
    {
      client->eof = TRUE;
      client_maybe_finish (client);
      return;
    }
#endif
  client_read (client);
}

static void
client_read (Client *client)
{
  g_input_stream_read_async (g_io_stream_get_input_stream (G_IO_STREAM (client->stream)),
                             client->buffer, sizeof client->buffer,
                             G_PRIORITY_DEFAULT, NULL, client_read_cb, client);
}

static void
client_write_cb (GObject      *source,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  Client *client = user_data;
  GError *error = NULL;
  gsize written = 0;

  g_output_stream_write_all_finish (G_OUTPUT_STREAM (source), result, &written, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (written, ==, PAYLOAD_SIZE / N_WRITES);

  client->n_written_chunks++;
  if (client->n_written_chunks < N_WRITES)
    {
      client_write (client);
      return;
    }

#ifndef G_OS_WIN32
  /* Everything is out: half-close, and keep reading the echo */
  lsock_stream_shutdown (client->stream, FALSE, TRUE, &error);
  g_assert_no_error (error);
#endif
  /* (Named pipes have no half-close: there the client stops reading at the
   * payload's size, and its close is what ends the server's echo) */
  client->write_done = TRUE;
  client_maybe_finish (client);
}

static void
client_write (Client *client)
{
  gsize chunk = PAYLOAD_SIZE / N_WRITES;

  g_output_stream_write_all_async (g_io_stream_get_output_stream (G_IO_STREAM (client->stream)),
                                   client->payload + client->n_written_chunks * chunk, chunk,
                                   G_PRIORITY_DEFAULT, NULL, client_write_cb, client);
}

static void
client_connect_cb (GObject      *source,
                   GAsyncResult *result,
                   gpointer      user_data)
{
  Client *client = user_data;
  GError *error = NULL;

  g_assert_null (source);
  client->stream = lsock_stream_connect_finish (result, &error);
  g_assert_no_error (error);
  g_assert_nonnull (client->stream);
  client->test->n_connected++;

  /* Read while writing, or both sides could stall on full buffers */
  client_read (client);
  client_write (client);
}

/* ---- the test ---------------------------------------------------------- */

static void
run_clients (LsockName *name)
{
  GError *error = NULL;
  Test *test = g_new0 (Test, 1);
  int fds_before;
  gulong handler;

  /* Let GLib make its own lasting descriptors before counting: the main
   * context's wakeup fd, and the worker context that GTask's class sets up */
  g_type_class_unref (g_type_class_ref (G_TYPE_TASK));
  lsock_test_drain_main_context ();
  fds_before = lsock_test_count_fds ();

  test->name = name;
  test->server_conns = g_ptr_array_new ();
  test->listener = lsock_listener_new (name, &error);
  g_assert_no_error (error);
  handler = g_signal_connect (test->listener, "incoming", G_CALLBACK (incoming_cb), test);
  lsock_listener_start (test->listener);
  g_assert_true (lsock_listener_is_active (test->listener));

  for (guint i = 0; i < N_CLIENTS; i++)
    {
      Client *client = &test->clients[i];

      client->test = test;
      client->index = i;
      client->payload = make_payload (i);
      lsock_stream_connect_async (name, NULL, client_connect_cb, client);
    }

  lsock_test_wait_until (test->n_clients_finished >= N_CLIENTS &&
                         test->n_servers_finished >= N_CLIENTS);

  g_assert_cmpuint (test->n_connected, ==, N_CLIENTS);
  g_assert_cmpuint (test->n_incoming, ==, N_CLIENTS);
  g_assert_cmpuint (test->server_conns->len, ==, N_CLIENTS);
  for (guint i = 0; i < N_CLIENTS; i++)
    {
      Client *client = &test->clients[i];

      g_assert_true (client->finished);
      g_assert_cmpuint (client->received, ==, PAYLOAD_SIZE);
    }

  lsock_listener_stop (test->listener);
  g_assert_false (lsock_listener_is_active (test->listener));
  g_signal_handler_disconnect (test->listener, handler);
  lsock_listener_close (test->listener);

  /* GTask results may hold references until the main context runs */
  lsock_test_drain_main_context ();

  for (guint i = 0; i < N_CLIENTS; i++)
    {
      Client *client = &test->clients[i];

      g_assert_finalize_object (g_steal_pointer (&client->stream));
      g_free (client->payload);
    }
  for (guint i = 0; i < test->server_conns->len; i++)
    {
      ServerConn *conn = g_ptr_array_index (test->server_conns, i);

      g_assert_true (conn->finished);
      g_assert_null (conn->pending);
      g_assert_cmpuint (conn->echoed, ==, PAYLOAD_SIZE);
      g_assert_finalize_object (g_steal_pointer (&conn->stream));
      g_free (conn);
    }
  g_ptr_array_unref (test->server_conns);
  g_assert_finalize_object (g_steal_pointer (&test->listener));
  g_free (test);

  if (fds_before >= 0 && lsock_test_count_fds () != fds_before)
    list_fds ("after");
  if (fds_before >= 0)
    g_assert_cmpint (lsock_test_count_fds (), ==, fds_before);
}

static void
test_namespaced (void)
{
  LsockName *name;

  if (lsock_name_type_support_query () == LSOCK_NAME_TYPE_SUPPORT_ONLY_PATHS)
    {
      g_test_skip ("Namespaced names are not supported on this platform");
      return;
    }

  name = lsock_test_namespaced_name ();
  run_clients (name);
  g_assert_finalize_object (name);
}

static void
test_path (void)
{
  LsockName *name;

  if (lsock_name_type_support_query () == LSOCK_NAME_TYPE_SUPPORT_ONLY_NAMESPACED)
    {
      g_test_skip ("Socket files are not supported on this platform");
      return;
    }

  name = lsock_test_path_name ();
  run_clients (name);
  /* Closing the listener reclaimed its socket file */
  g_assert_false (g_file_test (lsock_name_get_name (name), G_FILE_TEST_EXISTS));
  g_assert_finalize_object (name);
}

int
main (int   argc,
      char *argv[])
{
  int ret;

  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);
  lsock_test_reactor_from_env ();

  g_test_add_func ("/lsock/multi-client/echo/namespaced", test_namespaced);
  g_test_add_func ("/lsock/multi-client/echo/path", test_path);

  ret = g_test_run ();
  lsock_test_cleanup_dirs ();
  return ret;
}
