/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include "lsock-test-util.h"
#include "lsock-listener-private.h"

#include <string.h>
#ifdef G_OS_UNIX
# include <unistd.h>
#else
# include <windows.h>
# include <tlhelp32.h>
#endif

static gboolean
have_paths (void)
{
  return lsock_name_type_support_query () != LSOCK_NAME_TYPE_SUPPORT_ONLY_NAMESPACED;
}

static GInputStream *
in_of (LsockStream *stream)
{
  return g_io_stream_get_input_stream (G_IO_STREAM (stream));
}

static GOutputStream *
out_of (LsockStream *stream)
{
  return g_io_stream_get_output_stream (G_IO_STREAM (stream));
}

static void
send_all (LsockStream *stream,
          const void  *data,
          gsize        len)
{
  g_autoptr(GError) error = NULL;
  gsize n;

  g_assert_true (g_output_stream_write_all (out_of (stream), data, len, &n, NULL, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (n, ==, len);
}

static void
expect (LsockStream *stream,
        const char  *data)
{
  g_autoptr(GError) error = NULL;
  gsize len = strlen (data);
  g_autofree char *buf = g_malloc (len + 1);
  gsize n;

  g_assert_true (g_input_stream_read_all (in_of (stream), buf, len, &n, NULL, &error));
  g_assert_no_error (error);
  g_assert_cmpmem (buf, n, data, len);
}

static void
expect_eof (LsockStream *stream)
{
  g_autoptr(GError) error = NULL;
  char c;

  g_assert_cmpint (g_input_stream_read (in_of (stream), &c, 1, NULL, &error), ==, 0);
  g_assert_no_error (error);
}

static void
test_round_trip_kind (LsockName *name)
{
  LsockTestPair pair = { 0 };
  LsockName *prop = NULL;

  lsock_test_pair_open (&pair, name);
  g_assert_true (lsock_stream_get_name (pair.client) == name);
  g_object_get (pair.server, "name", &prop, NULL);
  g_assert_true (prop == name);
  g_object_unref (prop);
  g_assert_true (G_IS_POLLABLE_INPUT_STREAM (in_of (pair.client)));
  g_assert_true (G_IS_POLLABLE_OUTPUT_STREAM (out_of (pair.client)));
  g_assert_true (g_pollable_input_stream_can_poll (G_POLLABLE_INPUT_STREAM (in_of (pair.client))));

  send_all (pair.client, "ping", 4);
  expect (pair.server, "ping");
  send_all (pair.server, "pong", 4);
  expect (pair.client, "pong");

  g_assert_true (g_io_stream_close (G_IO_STREAM (pair.client), NULL, NULL));
  expect_eof (pair.server);
  lsock_test_pair_close (&pair);
}

static void
test_round_trip_namespaced (void)
{
  test_round_trip_kind (lsock_test_namespaced_name ());
}

static void
test_round_trip_path (void)
{
  if (!have_paths ())
    {
      g_test_skip ("Not on Windows: no socket files");
      return;
    }
  test_round_trip_kind (lsock_test_path_name ());
}

static void
test_connect_async (void)
{
  g_autoptr(GError) error = NULL;
  LsockName *name = lsock_test_namespaced_name ();
  LsockListener *listener = lsock_listener_new (name, &error);
  GAsyncResult *result = NULL;
  LsockStream *client;
  LsockStream *server;

  g_assert_no_error (error);
  lsock_stream_connect_async (name, NULL, lsock_test_store_result, &result);
  lsock_test_wait_until (result != NULL);
  client = lsock_stream_connect_finish (result, &error);
  g_assert_no_error (error);
  g_clear_object (&result);
  server = lsock_listener_accept (listener, NULL, &error);
  g_assert_no_error (error);

  send_all (client, "x", 1);
  expect (server, "x");

  /* Failure is reported through the callback too */
  lsock_listener_close (listener);
  lsock_stream_connect_async (name, NULL, lsock_test_store_result, &result);
  lsock_test_wait_until (result != NULL);
  g_assert_null (lsock_stream_connect_finish (result, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND);
  g_clear_object (&result);

  g_assert_finalize_object (client);
  g_assert_finalize_object (server);
  g_assert_finalize_object (listener);
  g_assert_finalize_object (name);
}

/* A full backlog: connect_async waits without blocking the loop, and
 * completes once the listener takes a peer; it can be cancelled meanwhile */
static void
test_connect_backlog_full (void)
{
  g_autoptr(GError) error = NULL;
  LsockName *name = lsock_test_namespaced_name ();
  LsockListener *listener;
  GPtrArray *queued = g_ptr_array_new_with_free_func (g_object_unref);
  GAsyncResult *result = NULL;
  GCancellable *cancellable = g_cancellable_new ();
  LsockStream *client;
  LsockStream *server;

  listener = g_initable_new (LSOCK_TYPE_LISTENER, NULL, &error,
                             "name", name, "backlog", 1, NULL);
  g_assert_no_error (error);

  /* Fill the queue: connect_async until one does not complete at once */
  for (;;)
    {
      g_assert_cmpuint (queued->len, <, 64);
      lsock_stream_connect_async (name, cancellable, lsock_test_store_result, &result);
      /* A connect that can complete does so within a few iterations */
      for (int i = 0; i < 10 && result == NULL; i++)
        g_main_context_iteration (NULL, FALSE);
      if (result == NULL)
        break;
      client = lsock_stream_connect_finish (result, &error);
      g_assert_no_error (error);
      g_ptr_array_add (queued, client);
      g_clear_object (&result);
    }

  /* Cancelled while waiting */
  g_cancellable_cancel (cancellable);
  lsock_test_wait_until (result != NULL);
  g_assert_null (lsock_stream_connect_finish (result, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_clear_error (&error);
  g_clear_object (&result);

  /* Waiting again, then let in */
  lsock_stream_connect_async (name, NULL, lsock_test_store_result, &result);
  for (int i = 0; i < 10 && result == NULL; i++)
    g_main_context_iteration (NULL, FALSE);
  g_assert_null (result);
  server = lsock_listener_accept (listener, NULL, &error);
  g_assert_no_error (error);
  lsock_test_wait_until (result != NULL);
  client = lsock_stream_connect_finish (result, &error);
  g_assert_no_error (error);
  g_clear_object (&result);

  g_assert_finalize_object (client);
  g_assert_finalize_object (server);
  g_ptr_array_unref (queued);
  g_assert_finalize_object (listener);
  g_assert_finalize_object (cancellable);
  g_assert_finalize_object (name);
}

static void
test_peer_credentials (void)
{
  g_autoptr(GError) error = NULL;
  LsockTestPair pair = { 0 };
  LsockStream *ends[2];

  lsock_test_pair_open (&pair, lsock_test_namespaced_name ());
  ends[0] = pair.client;
  ends[1] = pair.server;
  for (int i = 0; i < 2; i++)
    {
      GCredentials *credentials = lsock_stream_get_peer_credentials (ends[i], &error);

      g_assert_no_error (error);
      g_assert_nonnull (credentials);
#ifdef G_OS_WIN32
      /* Windows: the peer's process id only */
      {
        DWORD *pid = g_credentials_get_native (credentials, G_CREDENTIALS_TYPE_WIN32_PID);

        g_assert_nonnull (pid);
        g_assert_cmpuint (*pid, ==, GetCurrentProcessId ());
      }
#else
      g_assert_cmpint (g_credentials_get_unix_user (credentials, &error), ==, geteuid ());
      g_assert_no_error (error);
#endif
#ifdef __linux__
      g_assert_cmpint (g_credentials_get_unix_pid (credentials, &error), ==, getpid ());
      g_assert_no_error (error);
#endif
      g_assert_finalize_object (credentials);
    }
  lsock_test_pair_close (&pair);
}

static void
test_shutdown (void)
{
  g_autoptr(GError) error = NULL;
  LsockTestPair pair = { 0 };

  lsock_test_pair_open (&pair, lsock_test_namespaced_name ());
  g_assert_true (lsock_stream_shutdown (pair.client, FALSE, FALSE, &error));

#ifdef G_OS_WIN32
  /* Named pipes have no half-close: shutdown_write alone is refused, and
   * both directions close the pipe, after what was written is read */
  g_assert_false (lsock_stream_shutdown (pair.client, FALSE, TRUE, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED);
  g_clear_error (&error);
  send_all (pair.client, "request", 7);
  g_assert_true (lsock_stream_shutdown (pair.client, TRUE, TRUE, &error));
  g_assert_no_error (error);
  expect (pair.server, "request");
  expect_eof (pair.server);
  g_assert_cmpint (g_output_stream_write (out_of (pair.server), "x", 1, NULL, &error), ==, -1);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_BROKEN_PIPE);
  g_clear_error (&error);
#else
  /* Half-close: the server reads what came before, then EOF, and can still
   * answer */
  send_all (pair.client, "request", 7);
  g_assert_true (lsock_stream_shutdown (pair.client, FALSE, TRUE, &error));
  g_assert_no_error (error);
  expect (pair.server, "request");
  expect_eof (pair.server);
  send_all (pair.server, "reply", 5);
  g_assert_true (lsock_stream_shutdown (pair.server, FALSE, TRUE, &error));
  expect (pair.client, "reply");
  expect_eof (pair.client);

  /* A write after shutdown_write fails, without SIGPIPE */
  g_assert_cmpint (g_output_stream_write (out_of (pair.client), "x", 1, NULL, &error), ==, -1);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_BROKEN_PIPE);
  g_clear_error (&error);
#endif

  lsock_test_pair_close (&pair);

  /* shutdown_read: reads end */
  lsock_test_pair_open (&pair, lsock_test_namespaced_name ());
  g_assert_true (lsock_stream_shutdown (pair.server, TRUE, FALSE, &error));
  g_assert_no_error (error);
  expect_eof (pair.server);
  lsock_test_pair_close (&pair);
}

static gboolean
pollable_ready_cb (GObject  *pollable,
                   gpointer  user_data)
{
  *(gboolean *) user_data = TRUE;
  return G_SOURCE_CONTINUE;
}

static void
test_pollable (void)
{
  g_autoptr(GError) error = NULL;
  LsockTestPair pair = { 0 };
  GPollableInputStream *in;
  GSource *source;
  gboolean fired = FALSE;
  char buf[16];

  lsock_test_pair_open (&pair, lsock_test_namespaced_name ());
  in = G_POLLABLE_INPUT_STREAM (in_of (pair.server));

  g_assert_false (g_pollable_input_stream_is_readable (in));
  g_assert_cmpint (g_pollable_input_stream_read_nonblocking (in, buf, sizeof buf, NULL, &error), ==, -1);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK);
  g_clear_error (&error);
  g_assert_true (g_pollable_output_stream_is_writable (G_POLLABLE_OUTPUT_STREAM (out_of (pair.server))));

  source = g_pollable_input_stream_create_source (in, NULL);
  g_source_set_callback (source, G_SOURCE_FUNC (pollable_ready_cb), &fired, NULL);
  g_source_attach (source, NULL);
  g_assert_false (g_main_context_iteration (NULL, FALSE));
  g_assert_false (fired);

  send_all (pair.client, "abc", 3);
  lsock_test_wait_until (fired);
  g_assert_true (g_pollable_input_stream_is_readable (in));
  g_assert_cmpint (g_pollable_input_stream_read_nonblocking (in, buf, sizeof buf, NULL, &error), ==, 3);
  g_assert_no_error (error);
  g_source_destroy (source);
  g_source_unref (source);

  lsock_test_pair_close (&pair);
}

static int
count_threads (void)
{
#ifdef G_OS_WIN32
  /* The threads of this process, from a Toolhelp snapshot */
  HANDLE snapshot = CreateToolhelp32Snapshot (TH32CS_SNAPTHREAD, 0);
  THREADENTRY32 entry = { .dwSize = sizeof entry };
  int n = 0;

  if (snapshot == INVALID_HANDLE_VALUE)
    return -1;
  if (Thread32First (snapshot, &entry))
    do
      n += entry.th32OwnerProcessID == GetCurrentProcessId ();
    while (Thread32Next (snapshot, &entry));
  CloseHandle (snapshot);
  return n;
#else
  GDir *dir = g_dir_open ("/proc/self/task", 0, NULL);
  int n = 0;

  if (dir == NULL)
    return -1;
  while (g_dir_read_name (dir) != NULL)
    n++;
  g_dir_close (dir);
  return n;
#endif
}

/* Async reads and writes go through the main context: no worker thread */
static void
test_async_io_no_threads (void)
{
  g_autoptr(GError) error = NULL;
  LsockTestPair pair = { 0 };
  enum { SIZE = 4 * 1024 * 1024 };
  guint8 *out_data = g_malloc (SIZE);
  guint8 *in_data = g_malloc (SIZE);
  GAsyncResult *write_result = NULL;
  GAsyncResult *read_result = NULL;
  gsize written = 0, got = 0;
  int threads_before;

  for (gsize i = 0; i < SIZE; i++)
    out_data[i] = (guint8) (i * 7 + 3);

  lsock_test_pair_open (&pair, have_paths () ? lsock_test_path_name () : lsock_test_namespaced_name ());

  /* GLib may start its one shared worker thread ("gmain") on first use; what
   * must not happen is a thread per operation, or a pool of them. So count
   * after a first round, then run more rounds. */
  threads_before = -1;
  for (int round = 0; round < 3; round++)
    {
      if (round == 1)
        threads_before = count_threads ();

      /* More than the socket buffer, so both sides have to wait */
      g_output_stream_write_all_async (out_of (pair.client), out_data, SIZE, G_PRIORITY_DEFAULT,
                                       NULL, lsock_test_store_result, &write_result);
      g_input_stream_read_all_async (in_of (pair.server), in_data, SIZE, G_PRIORITY_DEFAULT,
                                     NULL, lsock_test_store_result, &read_result);
      lsock_test_wait_until (write_result != NULL && read_result != NULL);
      g_assert_true (g_output_stream_write_all_finish (out_of (pair.client), write_result, &written, &error));
      g_assert_no_error (error);
      g_assert_true (g_input_stream_read_all_finish (in_of (pair.server), read_result, &got, &error));
      g_assert_no_error (error);
      g_assert_cmpuint (written, ==, SIZE);
      g_assert_cmpmem (in_data, got, out_data, SIZE);
      g_clear_object (&write_result);
      g_clear_object (&read_result);
      memset (in_data, 0, SIZE);
    }

#ifdef G_OS_WIN32
  /* Closing with the last write still in flight hands the pipe to the
   * system thread pool's shared wait thread until that write is read (see
   * lsock-stream-win32.c); that is not a thread per operation, so count
   * before the close */
  if (threads_before > 0)
    g_assert_cmpint (count_threads (), ==, threads_before);
#endif

  /* And close_async */
  g_io_stream_close_async (G_IO_STREAM (pair.client), G_PRIORITY_DEFAULT, NULL,
                           lsock_test_store_result, &write_result);
  lsock_test_wait_until (write_result != NULL);
  g_assert_true (g_io_stream_close_finish (G_IO_STREAM (pair.client), write_result, &error));
  g_assert_no_error (error);
  g_clear_object (&write_result);

#ifndef G_OS_WIN32
  if (threads_before > 0)
    g_assert_cmpint (count_threads (), ==, threads_before);
#endif

  g_free (out_data);
  g_free (in_data);
  lsock_test_pair_close (&pair);
}

static void
test_read_async_timeout (void)
{
  g_autoptr(GError) error = NULL;
  LsockTestPair pair = { 0 };
  GAsyncResult *result = NULL;
  char buf[8];

  lsock_test_pair_open (&pair, lsock_test_namespaced_name ());
  lsock_stream_set_timeout (pair.server, 20);
  g_assert_cmpuint (lsock_stream_get_timeout (pair.server), ==, 20);

  g_input_stream_read_async (in_of (pair.server), buf, sizeof buf, G_PRIORITY_DEFAULT, NULL,
                             lsock_test_store_result, &result);
  lsock_test_wait_until (result != NULL);
  g_assert_cmpint (g_input_stream_read_finish (in_of (pair.server), result, &error), ==, -1);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
  g_clear_error (&error);
  g_clear_object (&result);

  /* Still usable afterwards */
  send_all (pair.client, "late", 4);
  g_input_stream_read_async (in_of (pair.server), buf, 4, G_PRIORITY_DEFAULT, NULL,
                             lsock_test_store_result, &result);
  lsock_test_wait_until (result != NULL);
  g_assert_cmpint (g_input_stream_read_finish (in_of (pair.server), result, &error), ==, 4);
  g_assert_no_error (error);
  g_assert_cmpmem (buf, 4, "late", 4);
  g_clear_object (&result);

  lsock_test_pair_close (&pair);
}

/* The substreams may outlive their GIOStream: they then report it closed */
static void
test_substream_outlives (void)
{
  g_autoptr(GError) error = NULL;
  LsockTestPair pair = { 0 };
  GInputStream *in;
  GOutputStream *out;
  char c;

  lsock_test_pair_open (&pair, lsock_test_namespaced_name ());
  in = g_object_ref (in_of (pair.client));
  out = g_object_ref (out_of (pair.client));
  if (pair.client != NULL) g_assert_finalize_object (g_steal_pointer (&pair.client));

  g_assert_cmpint (g_input_stream_read (in, &c, 1, NULL, &error), ==, -1);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CLOSED);
  g_clear_error (&error);
  g_assert_cmpint (g_output_stream_write (out, "x", 1, NULL, &error), ==, -1);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CLOSED);
  g_clear_error (&error);
  g_assert_true (g_pollable_input_stream_is_readable (G_POLLABLE_INPUT_STREAM (in)));

  expect_eof (pair.server);
  g_assert_finalize_object (in);
  g_assert_finalize_object (out);
  lsock_test_pair_close (&pair);
}

static void
test_timeout_property (void)
{
  LsockTestPair pair = { 0 };
  guint timeout = 1;
  int notified = 0;

  lsock_test_pair_open (&pair, lsock_test_namespaced_name ());
  g_signal_connect_swapped (pair.client, "notify::timeout", G_CALLBACK (lsock_test_increment), &notified);
  g_object_get (pair.client, "timeout", &timeout, NULL);
  g_assert_cmpuint (timeout, ==, 0);
  g_object_set (pair.client, "timeout", 1500, NULL);
  g_assert_cmpuint (lsock_stream_get_timeout (pair.client), ==, 1500);
  lsock_stream_set_timeout (pair.client, 1500);
  g_assert_cmpint (notified, ==, 1);
  lsock_test_pair_close (&pair);
}

int
main (int   argc,
      char *argv[])
{
  int ret;

  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);

  g_test_add_func ("/lsock/stream/round-trip/namespaced", test_round_trip_namespaced);
  g_test_add_func ("/lsock/stream/round-trip/path", test_round_trip_path);
  g_test_add_func ("/lsock/stream/connect-async", test_connect_async);
  g_test_add_func ("/lsock/stream/connect-backlog-full", test_connect_backlog_full);
  g_test_add_func ("/lsock/stream/peer-credentials", test_peer_credentials);
  g_test_add_func ("/lsock/stream/shutdown", test_shutdown);
  g_test_add_func ("/lsock/stream/pollable", test_pollable);
  g_test_add_func ("/lsock/stream/async-io-no-threads", test_async_io_no_threads);
  g_test_add_func ("/lsock/stream/read-async-timeout", test_read_async_timeout);
  g_test_add_func ("/lsock/stream/substream-outlives", test_substream_outlives);
  g_test_add_func ("/lsock/stream/timeout-property", test_timeout_property);

  ret = g_test_run ();
  lsock_test_cleanup_dirs ();
  return ret;
}
