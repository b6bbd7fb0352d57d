/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include "lsock-test-util.h"
#include "lsock-listener-private.h"
#include "lsock-stream-private.h"

#include <string.h>
#ifdef G_OS_UNIX
# include "lsock-unix-conn-private.h"
# include <errno.h>
# include <sys/socket.h>
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

/* ---- async I/O through the reactor ------------------------------------ */

/* One read_async(), run to completion. With @queued, its data (or the end
 * of the stream) is queued already: it must complete without the context
 * having to wait, so a read left waiting for an edge that will not come
 * fails here rather than hanging. */
static gssize
read_async_run (LsockStream  *stream,
                void         *buffer,
                gsize         count,
                gboolean      queued,
                GError      **error)
{
  GAsyncResult *result = NULL;
  gssize n;

  g_input_stream_read_async (in_of (stream), buffer, count, G_PRIORITY_DEFAULT, NULL,
                             lsock_test_store_result, &result);
  if (queued)
    {
      for (int i = 0; i < 100 && result == NULL; i++)
        g_main_context_iteration (NULL, FALSE);
      if (result == NULL)
        g_error ("read_async() waits although its data is queued");
    }
  lsock_test_wait_until (result != NULL);
  n = g_input_stream_read_finish (in_of (stream), result, error);
  g_object_unref (result);
  return n;
}

#define read_async_wait(stream, buffer, count, error) \
  read_async_run ((stream), (buffer), (count), FALSE, (error))
#define read_async_queued(stream, buffer, count, error) \
  read_async_run ((stream), (buffer), (count), TRUE, (error))

static gssize
write_async_wait (LsockStream  *stream,
                  const void   *buffer,
                  gsize         count,
                  GError      **error)
{
  GAsyncResult *result = NULL;
  gssize n;

  g_output_stream_write_async (out_of (stream), buffer, count, G_PRIORITY_DEFAULT, NULL,
                               lsock_test_store_result, &result);
  lsock_test_wait_until (result != NULL);
  n = g_output_stream_write_finish (out_of (stream), result, error);
  g_object_unref (result);
  return n;
}

/* A few messages each way, all asynchronous */
static void
assert_async_round_trips (LsockTestPair *pair,
                          guint          n_rounds)
{
  for (guint i = 0; i < n_rounds; i++)
    {
      g_autoptr(GError) error = NULL;
      g_autofree char *ping = g_strdup_printf ("ping %u", i);
      g_autofree char *pong = g_strdup_printf ("pong %u!", i);
      char buf[64];
      gssize n;

      n = write_async_wait (pair->client, ping, strlen (ping), &error);
      g_assert_no_error (error);
      g_assert_cmpint (n, ==, strlen (ping));
      n = read_async_wait (pair->server, buf, sizeof buf, &error);
      g_assert_no_error (error);
      g_assert_cmpmem (buf, n, ping, strlen (ping));

      n = write_async_wait (pair->server, pong, strlen (pong), &error);
      g_assert_no_error (error);
      g_assert_cmpint (n, ==, strlen (pong));
      n = read_async_wait (pair->client, buf, sizeof buf, &error);
      g_assert_no_error (error);
      g_assert_cmpmem (buf, n, pong, strlen (pong));
    }
}

/* Fills the send buffer of @stream with the pattern of @seed: the number of
 * bytes written */
static gsize
fill_send_buffer (LsockStream *stream,
                  guint8       seed)
{
  GPollableOutputStream *out = G_POLLABLE_OUTPUT_STREAM (out_of (stream));
  guint8 chunk[16 * 1024];
  gsize total = 0;

  for (;;)
    {
      g_autoptr(GError) error = NULL;
      gssize n;

      lsock_test_fill_pattern (chunk, total, sizeof chunk, seed);
      n = g_pollable_output_stream_write_nonblocking (out, chunk, sizeof chunk, NULL, &error);
      if (n < 0)
        {
          g_assert_error (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK);
          break;
        }
      g_assert_cmpint (n, >, 0);
      total += n;
      g_assert_cmpuint (total, <, 256 * 1024 * 1024);
    }
  g_assert_cmpuint (total, >, 0);
  return total;
}

typedef enum {
  SYNC_READ_PART,                /* the edge is still queued in epoll */
  SYNC_READ_PART_AFTER_DISPATCH, /* the reactor saw the edge with no read pending */
  SYNC_READ_ALL,                 /* the sync read drains the queue */
  SYNC_READ_ALL_AFTER_DISPATCH,
  NONBLOCKING_READ_PART,         /* the pollable API, as the sync one */
} SyncReadCase;

/* An async read that came up short leaves the stream marked drained; a
 * synchronous read in between must not leave the next async read waiting
 * for an edge that came already, nor make it return what it read */
static void
test_read_async_after_sync_read (gconstpointer data)
{
  SyncReadCase how = GPOINTER_TO_INT (data);
  g_autoptr(GError) error = NULL;
  int fds_before = lsock_test_settled_fd_count ();
  LsockTestPair pair = { 0 };
  guint8 sent[100];
  guint8 buf[256];
  gssize n;

  lsock_test_pair_open (&pair, lsock_test_namespaced_name ());
  lsock_test_fill_pattern (sent, 0, sizeof sent, 42);

  /* Short: 5 of 256 */
  send_all (pair.client, "hello", 5);
  n = read_async_wait (pair.server, buf, sizeof buf, &error);
  g_assert_no_error (error);
  g_assert_cmpmem (buf, n, "hello", 5);

  send_all (pair.client, sent, sizeof sent);
  if (how == SYNC_READ_PART_AFTER_DISPATCH || how == SYNC_READ_ALL_AFTER_DISPATCH)
    lsock_test_drain_main_context ();

  switch (how)
    {
    case SYNC_READ_PART:
    case SYNC_READ_PART_AFTER_DISPATCH:
    case NONBLOCKING_READ_PART:
      if (how == NONBLOCKING_READ_PART)
        n = g_pollable_input_stream_read_nonblocking (G_POLLABLE_INPUT_STREAM (in_of (pair.server)),
                                                      buf, 10, NULL, &error);
      else
        n = g_input_stream_read (in_of (pair.server), buf, 10, NULL, &error);
      g_assert_no_error (error);
      g_assert_cmpmem (buf, n, sent, 10);

      n = read_async_queued (pair.server, buf, sizeof buf, &error);
      g_assert_no_error (error);
      g_assert_cmpmem (buf, n, sent + 10, 90);
      break;

    case SYNC_READ_ALL:
    case SYNC_READ_ALL_AFTER_DISPATCH:
      {
        GAsyncResult *result = NULL;
        gsize got = 0;

        g_input_stream_read_all (in_of (pair.server), buf, sizeof sent, &got, NULL, &error);
        g_assert_no_error (error);
        g_assert_cmpmem (buf, got, sent, sizeof sent);

        /* Nothing left: the async read waits, then gets the next bytes */
        g_input_stream_read_async (in_of (pair.server), buf, sizeof buf, G_PRIORITY_DEFAULT,
                                   NULL, lsock_test_store_result, &result);
        lsock_test_drain_main_context ();
        g_assert_null (result);
        send_all (pair.client, "next", 4);
        for (int i = 0; i < 100 && result == NULL; i++)
          g_main_context_iteration (NULL, FALSE);
        g_assert_nonnull (result);
        n = g_input_stream_read_finish (in_of (pair.server), result, &error);
        g_assert_no_error (error);
        g_assert_cmpmem (buf, n, "next", 4);
        g_clear_object (&result);
      }
      break;

    default:
      g_assert_not_reached ();
    }

  assert_async_round_trips (&pair, 3);
  lsock_test_pair_close (&pair);
  lsock_test_assert_fd_count (fds_before);
}

/* Pumps a pattern through a stream with async writes, and checks it at
 * the other end with async reads, all in the thread-default context */
typedef struct
{
  LsockStream *stream;
  guint8      *data;       /* the whole pattern */
  gsize        offset;     /* written so far */
  gsize        end;
  guint        n_writes;
  gboolean     done;
} WritePump;

typedef struct
{
  LsockStream *stream;
  guint8       seed;
  guint8       buf[64 * 1024];
  gsize        count;      /* asked for per read */
  gsize        received;
  gsize        expected;
  guint        n_reads;
  gboolean     done;
} ReadPump;

static void write_pump_next (WritePump *pump);
static void read_pump_next (ReadPump *pump);

static void
write_pump_cb (GObject      *source,
               GAsyncResult *result,
               gpointer      user_data)
{
  WritePump *pump = user_data;
  g_autoptr(GError) error = NULL;
  gssize n;

  g_assert_true (source == G_OBJECT (out_of (pump->stream)));
  n = g_output_stream_write_finish (G_OUTPUT_STREAM (source), result, &error);
  g_assert_no_error (error);
  g_assert_cmpint (n, >, 0);
  g_assert_cmpuint (pump->offset + n, <=, pump->end);
  pump->offset += n;
  pump->n_writes++;
  if (pump->offset < pump->end)
    write_pump_next (pump);
  else
    pump->done = TRUE;
}

static void
write_pump_next (WritePump *pump)
{
  g_output_stream_write_async (out_of (pump->stream), pump->data + pump->offset,
                               pump->end - pump->offset, G_PRIORITY_DEFAULT, NULL,
                               write_pump_cb, pump);
}

static void
read_pump_cb (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  ReadPump *pump = user_data;
  g_autoptr(GError) error = NULL;
  gssize n;

  g_assert_true (source == G_OBJECT (in_of (pump->stream)));
  n = g_input_stream_read_finish (G_INPUT_STREAM (source), result, &error);
  g_assert_no_error (error);
  g_assert_cmpint (n, >, 0);
  g_assert_cmpuint (pump->received + n, <=, pump->expected);
  lsock_test_assert_pattern (pump->buf, pump->received, n, pump->seed);
  pump->received += n;
  pump->n_reads++;
  if (pump->received < pump->expected)
    read_pump_next (pump);
  else
    pump->done = TRUE;
}

static void
read_pump_next (ReadPump *pump)
{
  g_input_stream_read_async (in_of (pump->stream), pump->buf,
                             MIN (pump->count, pump->expected - pump->received),
                             G_PRIORITY_DEFAULT, NULL, read_pump_cb, pump);
}

/* A write that has to wait for room: the peer drains it from the same
 * context, every byte arrives, and the streams go on working */
static void
test_write_async_waits (void)
{
  int fds_before = lsock_test_settled_fd_count ();
  LsockTestPair pair = { 0 };
  enum { BIG = 1024 * 1024 };

  lsock_test_pair_open (&pair, lsock_test_namespaced_name ());

  /* Both directions, twice each: the second time, the stream is already
   * registered and its last write came up short */
  for (guint round = 0; round < 4; round++)
    {
      LsockStream *writer = round % 2 == 0 ? pair.client : pair.server;
      LsockStream *reader = round % 2 == 0 ? pair.server : pair.client;
      guint8 seed = (guint8) (round * 17 + 1);
      WritePump wp = { 0 };
      ReadPump *rp = g_new0 (ReadPump, 1);
      gsize filled = fill_send_buffer (writer, seed);

      wp.stream = writer;
      wp.offset = filled;
      wp.end = filled + BIG;
      wp.data = g_malloc (wp.end);
      lsock_test_fill_pattern (wp.data, 0, wp.end, seed);
      write_pump_next (&wp);

      /* Full: the write waits */
      lsock_test_drain_main_context ();
      g_assert_cmpuint (wp.n_writes, ==, 0);
      g_assert_false (wp.done);

      rp->stream = reader;
      rp->seed = seed;
      rp->count = sizeof rp->buf;
      rp->expected = wp.end;
      read_pump_next (rp);
      lsock_test_wait_until (wp.done && rp->done);
      lsock_test_drain_main_context ();

      g_assert_cmpuint (wp.offset, ==, wp.end);
      g_assert_cmpuint (rp->received, ==, wp.end);
      g_test_message ("round %u: %" G_GSIZE_FORMAT " bytes filled, %u writes, %u reads",
                      round, filled, wp.n_writes, rp->n_reads);
      g_free (wp.data);
      g_free (rp);

      assert_async_round_trips (&pair, 3);
    }

  lsock_test_pair_close (&pair);
  lsock_test_assert_fd_count (fds_before);
}

/* The peer's last data and its hang-up come while no read waits, so the
 * reactor takes their edge then. The read of the data comes up short; the
 * end of the stream must still be read without waiting for another edge
 * (there is none). */
static void
test_read_async_eof_after_short_read (gconstpointer data)
{
  gboolean peer_closes = GPOINTER_TO_INT (data);
  g_autoptr(GError) error = NULL;
  int fds_before = lsock_test_settled_fd_count ();
  LsockTestPair pair = { 0 };
  char buf[64];
  gssize n;

#ifdef G_OS_WIN32
  if (!peer_closes)
    {
      g_test_skip ("Named pipes have no half-close");
      return;
    }
#endif
  lsock_test_pair_open (&pair, lsock_test_namespaced_name ());

  /* Registered with the reactor */
  send_all (pair.client, "r", 1);
  n = read_async_wait (pair.server, buf, sizeof buf, &error);
  g_assert_no_error (error);
  g_assert_cmpmem (buf, n, "r", 1);

  send_all (pair.client, "last words", 10);
  if (peer_closes)
    lsock_test_close_and_finalize_stream (&pair.client);
  else
    {
      g_assert_true (lsock_stream_shutdown (pair.client, FALSE, TRUE, &error));
      g_assert_no_error (error);
    }
  lsock_test_drain_main_context ();

  n = read_async_queued (pair.server, buf, sizeof buf, &error);
  g_assert_no_error (error);
  g_assert_cmpmem (buf, n, "last words", 10);
  for (int i = 0; i < 2; i++)
    {
      n = read_async_queued (pair.server, buf, sizeof buf, &error);
      g_assert_no_error (error);
      g_assert_cmpint (n, ==, 0);
    }

  if (!peer_closes)
    {
      /* Half-closed: the answer still goes the other way */
      n = write_async_wait (pair.server, "bye", 3, &error);
      g_assert_no_error (error);
      g_assert_cmpint (n, ==, 3);
      expect (pair.client, "bye");
    }

  lsock_test_pair_close (&pair);
  lsock_test_assert_fd_count (fds_before);
}

/* A context's async I/O costs it one descriptor (the reactor's epoll fd)
 * however many streams use it, and that goes with the last of them */
static void
round_trip_in_context (LsockTestPair *pair,
                       GMainContext  *context)
{
  g_autoptr(GError) error = NULL;
  GAsyncResult *result = NULL;
  char buf[16];
  gssize n;

  g_assert_true (g_main_context_get_thread_default () == context);
  g_output_stream_write_async (out_of (pair->client), "ping", 4, G_PRIORITY_DEFAULT, NULL,
                               lsock_test_store_result, &result);
  lsock_test_wait_until (result != NULL);
  g_assert_cmpint (g_output_stream_write_finish (out_of (pair->client), result, &error), ==, 4);
  g_assert_no_error (error);
  g_clear_object (&result);

  g_input_stream_read_async (in_of (pair->server), buf, sizeof buf, G_PRIORITY_DEFAULT, NULL,
                             lsock_test_store_result, &result);
  lsock_test_wait_until (result != NULL);
  n = g_input_stream_read_finish (in_of (pair->server), result, &error);
  g_assert_no_error (error);
  g_assert_cmpmem (buf, n, "ping", 4);
  g_clear_object (&result);
}

static void
test_reactor_released (void)
{
  GMainContext *context = g_main_context_new ();
  LsockTestPair pairs[2] = { { 0 } };
  int fds_before, fds_open;

  fds_before = lsock_test_settled_fd_count ();
  g_main_context_push_thread_default (context);

  for (guint i = 0; i < G_N_ELEMENTS (pairs); i++)
    lsock_test_pair_open (&pairs[i], lsock_test_namespaced_name ());
  fds_open = lsock_test_count_fds ();
  for (guint i = 0; i < G_N_ELEMENTS (pairs); i++)
    round_trip_in_context (&pairs[i], context);
#ifdef G_OS_UNIX
  /* The poll reactor needs no descriptor of its own */
  if (g_strcmp0 (_lsock_unix_conn_peek_reactor_kind (pairs[0].server->conn), "epoll") != 0)
    fds_open--;
#endif
  if (fds_open >= 0)
    g_assert_cmpint (lsock_test_count_fds (), ==, fds_open + 1);

  for (guint i = 0; i < G_N_ELEMENTS (pairs); i++)
    lsock_test_pair_close (&pairs[i]);
  while (g_main_context_iteration (context, FALSE));
  /* Gone with the streams, not with the context */
  if (fds_before >= 0)
    g_assert_cmpint (lsock_test_count_fds (), ==, fds_before);

  g_main_context_pop_thread_default (context);
  g_main_context_unref (context);
}

static void
keep_incoming (LsockListener *listener,
               LsockStream   *stream,
               gpointer       user_data)
{
  LsockStream **accepted = user_data;

  g_assert_null (*accepted);
  *accepted = g_object_ref (stream);
}

/* A service that serves one connection after another keeps its context's
 * reactor (its epoll fd) from start() to stop(), rather than making and
 * destroying it for each connection */
static void
test_reactor_kept_by_service (void)
{
  GMainContext *context = g_main_context_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) ping = g_bytes_new_static ("ping", 4);
  LsockName *name = lsock_test_namespaced_name ();
  LsockListener *listener = lsock_listener_new (name, &error);
  int fds_before, fds_serving;

  g_assert_no_error (error);
  g_main_context_push_thread_default (context);
  fds_before = lsock_test_settled_fd_count ();
  lsock_listener_start (listener);
  g_signal_connect (listener, "incoming", G_CALLBACK (keep_incoming), NULL);
  fds_serving = lsock_test_count_fds ();

  for (int round = 0; round < 3; round++)
    {
      LsockStream *client = lsock_stream_connect (name, NULL, &error);
      LsockStream *accepted = NULL;
      GAsyncResult *result = NULL;
      g_autoptr(GBytes) got = NULL;

      g_assert_no_error (error);
      g_signal_handlers_disconnect_by_func (listener, keep_incoming, NULL);
      g_signal_connect (listener, "incoming", G_CALLBACK (keep_incoming), &accepted);
      lsock_test_wait_until (accepted != NULL);

      g_assert_true (lsock_stream_send_bytes (client, ping, NULL, &error));
      lsock_stream_receive_bytes_async (accepted, 16, G_PRIORITY_DEFAULT, NULL,
                                        lsock_test_store_result, &result);
      lsock_test_wait_until (result != NULL);
      got = lsock_stream_receive_bytes_finish (accepted, result, &error);
      g_assert_no_error (error);
      g_assert_true (g_bytes_equal (got, ping));
      g_clear_object (&result);
      /* The stream's async I/O found the reactor there */
      if (fds_serving >= 0)
        g_assert_cmpint (lsock_test_count_fds (), ==, fds_serving + 2);

      lsock_test_close_and_finalize_stream (&client);
      lsock_test_close_and_finalize_stream (&accepted);
      /* ... and leaves it */
      if (fds_serving >= 0)
        g_assert_cmpint (lsock_test_count_fds (), ==, fds_serving);
    }

  lsock_listener_stop (listener);
  lsock_test_drain_main_context ();
  if (fds_before >= 0)
    g_assert_cmpint (lsock_test_count_fds (), ==, fds_before);
  lsock_test_close_and_finalize_listener (&listener);
  g_assert_finalize_object (name);
  g_main_context_pop_thread_default (context);
  g_main_context_unref (context);
}

/* A read pending when the peer closes ends with 0 */
static void
test_read_async_pending_peer_close (void)
{
  g_autoptr(GError) error = NULL;
  int fds_before = lsock_test_settled_fd_count ();
  LsockTestPair pair = { 0 };
  GAsyncResult *result = NULL;
  char buf[16];
  gssize n;

  lsock_test_pair_open (&pair, lsock_test_namespaced_name ());
  g_input_stream_read_async (in_of (pair.server), buf, sizeof buf, G_PRIORITY_DEFAULT, NULL,
                             lsock_test_store_result, &result);
  lsock_test_drain_main_context ();
  g_assert_null (result);

  lsock_test_close_and_finalize_stream (&pair.client);
  lsock_test_wait_until (result != NULL);
  n = g_input_stream_read_finish (in_of (pair.server), result, &error);
  g_assert_no_error (error);
  g_assert_cmpint (n, ==, 0);
  g_clear_object (&result);

  /* Still the end */
  n = read_async_wait (pair.server, buf, sizeof buf, &error);
  g_assert_no_error (error);
  g_assert_cmpint (n, ==, 0);

  lsock_test_pair_close (&pair);
  lsock_test_assert_fd_count (fds_before);
}

/* A write waiting for room when the peer closes fails, without SIGPIPE */
static void
test_write_async_pending_peer_close (void)
{
  g_autoptr(GError) error = NULL;
  int fds_before = lsock_test_settled_fd_count ();
  LsockTestPair pair = { 0 };
  GAsyncResult *result = NULL;
  guint8 chunk[64 * 1024] = { 0 };
  gssize n;

  lsock_test_pair_open (&pair, lsock_test_namespaced_name ());
  fill_send_buffer (pair.server, 3);
  g_output_stream_write_async (out_of (pair.server), chunk, sizeof chunk, G_PRIORITY_DEFAULT,
                               NULL, lsock_test_store_result, &result);
  lsock_test_drain_main_context ();
  g_assert_null (result);

  lsock_test_close_and_finalize_stream (&pair.client);
  lsock_test_wait_until (result != NULL);
  n = g_output_stream_write_finish (out_of (pair.server), result, &error);
  g_assert_cmpint (n, ==, -1);
  if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_BROKEN_PIPE))
    g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED);
  g_clear_object (&result);

  lsock_test_pair_close (&pair);
  lsock_test_assert_fd_count (fds_before);
}

/* Our own stream closed while an operation waits: it fails with CLOSED,
 * and the stream finalizes and leaves no descriptor behind */
typedef enum {
  PENDING_READ_CLOSE_IN_CALLBACK,   /* closed from a write's callback */
  PENDING_WRITE_CLOSE_IN_CALLBACK,  /* closed from a read's callback */
  PENDING_READ_CLOSE_ASYNC,         /* g_io_stream_close_async() */
  PENDING_WRITE_CLOSE_ASYNC,
} PendingClose;

typedef struct
{
  LsockStream  *stream;
  GAsyncResult *result;
  gboolean      close_in_callback;
} CloseFromCallback;

static void
close_from_callback_cb (GObject      *source,
                        GAsyncResult *result,
                        gpointer      user_data)
{
  CloseFromCallback *cfc = user_data;
  g_autoptr(GError) error = NULL;

  g_assert_null (cfc->result);
  cfc->result = g_object_ref (result);
  if (cfc->close_in_callback)
    {
      g_assert_true (g_io_stream_close (G_IO_STREAM (cfc->stream), NULL, &error));
      g_assert_no_error (error);
      g_assert_true (g_io_stream_is_closed (G_IO_STREAM (cfc->stream)));
    }
}

static void
test_pending_own_close (gconstpointer data)
{
  PendingClose how = GPOINTER_TO_INT (data);
  gboolean pending_read = how == PENDING_READ_CLOSE_IN_CALLBACK || how == PENDING_READ_CLOSE_ASYNC;
  gboolean in_callback = how == PENDING_READ_CLOSE_IN_CALLBACK || how == PENDING_WRITE_CLOSE_IN_CALLBACK;
  g_autoptr(GError) error = NULL;
  int fds_before = lsock_test_settled_fd_count ();
  LsockTestPair pair = { 0 };
  GAsyncResult *pending = NULL;
  CloseFromCallback cfc = { 0 };
  guint8 *chunk = g_malloc0 (64 * 1024);
  char buf[16];
  gsize filled = 0;
  gssize n;

  lsock_test_pair_open (&pair, lsock_test_namespaced_name ());
  cfc.stream = pair.server;
  cfc.close_in_callback = in_callback;

  /* The operation that waits */
  if (pending_read)
    g_input_stream_read_async (in_of (pair.server), buf, sizeof buf, G_PRIORITY_DEFAULT, NULL,
                               lsock_test_store_result, &pending);
  else
    {
      filled = fill_send_buffer (pair.server, 5);
      g_output_stream_write_async (out_of (pair.server), chunk, 64 * 1024, G_PRIORITY_DEFAULT,
                                   NULL, lsock_test_store_result, &pending);
    }
  lsock_test_drain_main_context ();
  g_assert_null (pending);

  if (in_callback)
    {
      /* One the other way that completes at once, and closes */
      if (pending_read)
        g_output_stream_write_async (out_of (pair.server), "x", 1, G_PRIORITY_DEFAULT, NULL,
                                     close_from_callback_cb, &cfc);
      else
        {
          send_all (pair.client, "y", 1);
          g_input_stream_read_async (in_of (pair.server), buf, sizeof buf, G_PRIORITY_DEFAULT,
                                     NULL, close_from_callback_cb, &cfc);
        }
    }
  else
    g_io_stream_close_async (G_IO_STREAM (pair.server), G_PRIORITY_DEFAULT, NULL,
                             close_from_callback_cb, &cfc);

  lsock_test_wait_until (cfc.result != NULL && pending != NULL);

  if (in_callback && pending_read)
    {
      g_assert_cmpint (g_output_stream_write_finish (out_of (pair.server), cfc.result, &error), ==, 1);
      g_assert_no_error (error);
    }
  else if (in_callback)
    {
      n = g_input_stream_read_finish (in_of (pair.server), cfc.result, &error);
      g_assert_no_error (error);
      g_assert_cmpmem (buf, n, "y", 1);
    }
  else
    {
      g_assert_true (g_io_stream_close_finish (G_IO_STREAM (pair.server), cfc.result, &error));
      g_assert_no_error (error);
    }
  g_clear_object (&cfc.result);

  if (pending_read)
    n = g_input_stream_read_finish (in_of (pair.server), pending, &error);
  else
    n = g_output_stream_write_finish (out_of (pair.server), pending, &error);
  g_assert_cmpint (n, ==, -1);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CLOSED);
  g_clear_error (&error);
  g_clear_object (&pending);
  g_assert_true (g_io_stream_is_closed (G_IO_STREAM (pair.server)));

  /* The peer gets what was sent before, then the end */
  if (in_callback && pending_read)
    expect (pair.client, "x");
  else if (!pending_read)
    {
      g_autofree guint8 *sink = g_malloc (64 * 1024);
      gsize got = 0;

      for (;;)
        {
          n = g_input_stream_read (in_of (pair.client), sink, 64 * 1024, NULL, &error);
          g_assert_no_error (error);
          if (n == 0)
            break;
          g_assert_cmpuint (got + n, <=, filled);
          lsock_test_assert_pattern (sink, got, n, 5);
          got += n;
        }
      /* The waiting write wrote nothing */
      g_assert_cmpuint (got, ==, filled);
    }
  expect_eof (pair.client);

  /* Nothing holds the closed stream */
  lsock_test_drain_main_context ();
  g_assert_finalize_object (g_steal_pointer (&pair.server));
  g_free (chunk);
  lsock_test_pair_close (&pair);
  lsock_test_assert_fd_count (fds_before);
}

/* An operation that completes at once still calls back from the main
 * context, once */
typedef struct
{
  guint         n_calls;
  GAsyncResult *result;
} CallCount;

static void
count_calls_cb (GObject      *source,
                GAsyncResult *result,
                gpointer      user_data)
{
  CallCount *cc = user_data;

  cc->n_calls++;
  g_clear_object (&cc->result);
  cc->result = g_object_ref (result);
}

static void
test_async_never_synchronous (void)
{
  g_autoptr(GError) error = NULL;
  int fds_before = lsock_test_settled_fd_count ();
  LsockTestPair pair = { 0 };
  char buf[64];

  lsock_test_pair_open (&pair, lsock_test_namespaced_name ());

  /* The first operation (which registers the stream), the next ones, and
   * one after a short read */
  for (guint round = 0; round < 4; round++)
    {
      CallCount read_cc = { 0 };
      CallCount write_cc = { 0 };
      g_autofree char *message = g_strdup_printf ("message %u", round);
      gsize len = strlen (message);
      gssize n;

      send_all (pair.client, message, len);
      if (round == 3)
        lsock_test_drain_main_context ();

      g_input_stream_read_async (in_of (pair.server), buf, round == 2 ? len : sizeof buf,
                                 G_PRIORITY_DEFAULT, NULL, count_calls_cb, &read_cc);
      g_assert_cmpuint (read_cc.n_calls, ==, 0);
      g_output_stream_write_async (out_of (pair.server), message, len, G_PRIORITY_DEFAULT,
                                   NULL, count_calls_cb, &write_cc);
      g_assert_cmpuint (write_cc.n_calls, ==, 0);
      g_assert_cmpuint (read_cc.n_calls, ==, 0);

      lsock_test_wait_until (read_cc.n_calls > 0 && write_cc.n_calls > 0);
      lsock_test_drain_main_context ();
      g_assert_cmpuint (read_cc.n_calls, ==, 1);
      g_assert_cmpuint (write_cc.n_calls, ==, 1);

      n = g_input_stream_read_finish (in_of (pair.server), read_cc.result, &error);
      g_assert_no_error (error);
      g_assert_cmpmem (buf, n, message, len);
      n = g_output_stream_write_finish (out_of (pair.server), write_cc.result, &error);
      g_assert_no_error (error);
      g_assert_cmpint (n, ==, len);
      expect (pair.client, message);
      g_clear_object (&read_cc.result);
      g_clear_object (&write_cc.result);
    }

  lsock_test_pair_close (&pair);
  lsock_test_assert_fd_count (fds_before);
}

/* Reads from one thread's context, writes from another thread's context,
 * on the same stream: one of them goes to the reactor, the other takes
 * the other path */
#define CROSS_SIZE (4 * 1024 * 1024)

typedef struct
{
  LsockTestPair  pair;
  gboolean       writes_first;
  GMainContext  *writer_context;
  GMutex         lock;
  GCond          cond;
  gboolean       go;
  gboolean       started;
  WritePump      client_writer;   /* in the writer thread's context */
} CrossThread;

static gpointer
cross_writer_thread (gpointer user_data)
{
  CrossThread *ct = user_data;

  g_main_context_push_thread_default (ct->writer_context);

  g_mutex_lock (&ct->lock);
  while (!ct->go)
    g_cond_wait (&ct->cond, &ct->lock);
  g_mutex_unlock (&ct->lock);

  write_pump_next (&ct->client_writer);

  g_mutex_lock (&ct->lock);
  ct->started = TRUE;
  g_cond_signal (&ct->cond);
  g_mutex_unlock (&ct->lock);

  lsock_test_wait_until (ct->client_writer.done);

  g_main_context_pop_thread_default (ct->writer_context);
  return NULL;
}

static void
test_cross_thread_contexts (gconstpointer data)
{
  int fds_before = lsock_test_settled_fd_count ();
  CrossThread ct = { 0 };
  ReadPump *client_reader = g_new0 (ReadPump, 1);
  ReadPump *server_reader = g_new0 (ReadPump, 1);
  WritePump server_writer = { 0 };
  GThread *thread;

  ct.writes_first = GPOINTER_TO_INT (data);
  g_mutex_init (&ct.lock);
  g_cond_init (&ct.cond);
  ct.writer_context = g_main_context_new ();
  lsock_test_pair_open (&ct.pair, lsock_test_namespaced_name ());

  ct.client_writer.stream = ct.pair.client;
  ct.client_writer.end = CROSS_SIZE;
  ct.client_writer.data = g_malloc (CROSS_SIZE);
  lsock_test_fill_pattern (ct.client_writer.data, 0, CROSS_SIZE, 11);

  client_reader->stream = ct.pair.client;
  client_reader->seed = 22;
  client_reader->count = 4096;  /* many reads, many of them short */
  client_reader->expected = CROSS_SIZE;

  server_reader->stream = ct.pair.server;
  server_reader->seed = 11;
  server_reader->count = sizeof server_reader->buf;
  server_reader->expected = CROSS_SIZE;

  server_writer.stream = ct.pair.server;
  server_writer.end = CROSS_SIZE;
  server_writer.data = g_malloc (CROSS_SIZE);
  lsock_test_fill_pattern (server_writer.data, 0, CROSS_SIZE, 22);

  thread = g_thread_new ("writer", cross_writer_thread, &ct);
  if (!ct.writes_first)
    {
      /* The client's reads register it with this context's reactor */
      read_pump_next (client_reader);
      lsock_test_drain_main_context ();
      g_assert_cmpuint (client_reader->n_reads, ==, 0);
    }

  g_mutex_lock (&ct.lock);
  ct.go = TRUE;
  g_cond_signal (&ct.cond);
  while (!ct.started)
    g_cond_wait (&ct.cond, &ct.lock);
  g_mutex_unlock (&ct.lock);

  if (ct.writes_first)
    read_pump_next (client_reader);
  read_pump_next (server_reader);
  write_pump_next (&server_writer);

  lsock_test_wait_until (client_reader->done && server_reader->done && server_writer.done);
  g_thread_join (thread);
  g_assert_true (ct.client_writer.done);
  g_assert_cmpuint (ct.client_writer.offset, ==, CROSS_SIZE);
  g_assert_cmpuint (client_reader->received, ==, CROSS_SIZE);
  g_assert_cmpuint (server_reader->received, ==, CROSS_SIZE);
  g_test_message ("client: %u writes (other thread), %u reads; server: %u writes, %u reads",
                  ct.client_writer.n_writes, client_reader->n_reads,
                  server_writer.n_writes, server_reader->n_reads);

  /* And afterwards, from here alone */
  assert_async_round_trips (&ct.pair, 3);

  lsock_test_pair_close (&ct.pair);
  while (g_main_context_iteration (ct.writer_context, FALSE));
  g_main_context_unref (ct.writer_context);
  g_free (ct.client_writer.data);
  g_free (server_writer.data);
  g_free (client_reader);
  g_free (server_reader);
  g_mutex_clear (&ct.lock);
  g_cond_clear (&ct.cond);
  lsock_test_assert_fd_count (fds_before);
}

/* An operation started from a thread that does not run the context, and
 * that completes at once: the thread that runs it, blocked in poll(), must
 * be woken to call back */
#define N_WAKEUP_ROUNDS 200

typedef struct
{
  LsockStream *stream;
  GThread     *main_thread;
  GMutex       lock;
  GCond        cond;
  guint        round;        /* the round the worker may start */
  guint        done_round;   /* the last round called back */
  guint8       byte;
  gboolean     wrong_thread;
} Wakeup;

static void
wakeup_read_cb (GObject      *source,
                GAsyncResult *result,
                gpointer      user_data)
{
  Wakeup *w = user_data;
  g_autoptr(GError) error = NULL;
  gssize n;

  n = g_input_stream_read_finish (G_INPUT_STREAM (source), result, &error);
  g_assert_no_error (error);
  g_assert_cmpint (n, ==, 1);
  if (g_thread_self () != w->main_thread)
    w->wrong_thread = TRUE;

  g_mutex_lock (&w->lock);
  w->done_round++;
  g_cond_signal (&w->cond);
  g_mutex_unlock (&w->lock);
}

static gpointer
wakeup_worker (gpointer user_data)
{
  Wakeup *w = user_data;

  for (guint round = 1; round <= N_WAKEUP_ROUNDS; round++)
    {
      g_mutex_lock (&w->lock);
      while (w->round < round)
        g_cond_wait (&w->cond, &w->lock);
      g_mutex_unlock (&w->lock);

      /* No thread-default context here: the callback goes to the global
       * default context, which the main thread runs */
      g_input_stream_read_async (in_of (w->stream), &w->byte, 1, G_PRIORITY_DEFAULT, NULL,
                                 wakeup_read_cb, w);

      g_mutex_lock (&w->lock);
      while (w->done_round < round)
        g_cond_wait (&w->cond, &w->lock);
      g_mutex_unlock (&w->lock);
    }
  return NULL;
}

static gboolean
wakeup_round_done (Wakeup *w,
                   guint   round)
{
  gboolean done;

  g_mutex_lock (&w->lock);
  done = w->done_round == round;
  g_mutex_unlock (&w->lock);
  return done;
}

static void
test_wakeup_from_other_thread (void)
{
  g_autoptr(GError) error = NULL;
  int fds_before = lsock_test_settled_fd_count ();
  LsockTestPair pair = { 0 };
  Wakeup w = { 0 };
  GThread *thread;
  guint8 byte;
  gssize n;

  lsock_test_pair_open (&pair, lsock_test_namespaced_name ());
  w.stream = pair.server;
  w.main_thread = g_thread_self ();
  g_mutex_init (&w.lock);
  g_cond_init (&w.cond);

  /* Register the stream with the default context's reactor */
  send_all (pair.client, "r", 1);
  n = read_async_wait (pair.server, &byte, 1, &error);
  g_assert_no_error (error);
  g_assert_cmpint (n, ==, 1);

  thread = g_thread_new ("wakeup", wakeup_worker, &w);
  for (guint round = 1; round <= N_WAKEUP_ROUNDS; round++)
    {
      byte = (guint8) round;
      send_all (pair.client, &byte, 1);
      /* The reactor takes the edge now, with no read waiting, so nothing
       * will make its fd readable while the worker's read is done */
      lsock_test_drain_main_context ();

      g_mutex_lock (&w.lock);
      w.round = round;
      g_cond_broadcast (&w.cond);
      g_mutex_unlock (&w.lock);

      lsock_test_wait_until (wakeup_round_done (&w, round));
      g_assert_cmpuint (w.byte, ==, (guint8) round);
    }
  g_thread_join (thread);
  g_assert_false (w.wrong_thread);

  lsock_test_pair_close (&pair);
  g_mutex_clear (&w.lock);
  g_cond_clear (&w.cond);
  lsock_test_assert_fd_count (fds_before);
}

/* Many small echo round trips on several connections at once, in one
 * context, every byte checked. Each side keeps its own count of rounds. */
#define N_ECHO_PAIRS   4
#define N_ECHO_ROUNDS  1000
#define ECHO_MAX       200

typedef struct
{
  LsockTestPair pair;
  guint         index;
  /* client side */
  guint         client_round;
  guint8        message[ECHO_MAX];
  gsize         client_sent;
  guint8        client_buf[ECHO_MAX];
  gsize         client_got;
  gboolean      client_done;
  /* server side */
  guint         server_round;
  guint8        server_buf[ECHO_MAX];
  gsize         server_got;
  gsize         server_sent;
  gboolean      server_done;
} Echo;

static gsize
echo_len (Echo  *e,
          guint  round)
{
  return 1 + (round * 37 + e->index * 11) % ECHO_MAX;
}

static void
echo_expected (Echo   *e,
               guint   round,
               guint8 *buffer)
{
  lsock_test_fill_pattern (buffer, round * ECHO_MAX, echo_len (e, round), (guint8) e->index);
}

static void echo_client_write (Echo *e);
static void echo_server_read (Echo *e);

static void
echo_client_start_round (Echo *e)
{
  echo_expected (e, e->client_round, e->message);
  e->client_sent = e->client_got = 0;
  echo_client_write (e);
}

static void
echo_client_read_cb (GObject      *source,
                     GAsyncResult *result,
                     gpointer      user_data)
{
  Echo *e = user_data;
  g_autoptr(GError) error = NULL;
  gssize n = g_input_stream_read_finish (G_INPUT_STREAM (source), result, &error);
  gsize len = echo_len (e, e->client_round);

  g_assert_no_error (error);
  g_assert_cmpint (n, >, 0);
  e->client_got += n;
  g_assert_cmpuint (e->client_got, <=, len);
  if (e->client_got < len)
    {
      g_input_stream_read_async (in_of (e->pair.client), e->client_buf + e->client_got,
                                 len - e->client_got, G_PRIORITY_DEFAULT, NULL,
                                 echo_client_read_cb, e);
      return;
    }
  g_assert_cmpmem (e->client_buf, len, e->message, len);
  if (++e->client_round == N_ECHO_ROUNDS)
    e->client_done = TRUE;
  else
    echo_client_start_round (e);
}

static void
echo_client_write_cb (GObject      *source,
                      GAsyncResult *result,
                      gpointer      user_data)
{
  Echo *e = user_data;
  g_autoptr(GError) error = NULL;
  gssize n = g_output_stream_write_finish (G_OUTPUT_STREAM (source), result, &error);

  g_assert_no_error (error);
  g_assert_cmpint (n, >, 0);
  e->client_sent += n;
  if (e->client_sent < echo_len (e, e->client_round))
    {
      echo_client_write (e);
      return;
    }
  /* Read the echo into the whole buffer, larger than the message: any
   * extra byte would show */
  g_input_stream_read_async (in_of (e->pair.client), e->client_buf, ECHO_MAX,
                             G_PRIORITY_DEFAULT, NULL, echo_client_read_cb, e);
}

static void
echo_client_write (Echo *e)
{
  g_output_stream_write_async (out_of (e->pair.client), e->message + e->client_sent,
                               echo_len (e, e->client_round) - e->client_sent,
                               G_PRIORITY_DEFAULT, NULL, echo_client_write_cb, e);
}

static void
echo_server_write_cb (GObject      *source,
                      GAsyncResult *result,
                      gpointer      user_data)
{
  Echo *e = user_data;
  g_autoptr(GError) error = NULL;
  gssize n = g_output_stream_write_finish (G_OUTPUT_STREAM (source), result, &error);
  gsize len = echo_len (e, e->server_round);

  g_assert_no_error (error);
  g_assert_cmpint (n, >, 0);
  e->server_sent += n;
  g_assert_cmpuint (e->server_sent, <=, len);
  if (e->server_sent < len)
    {
      g_output_stream_write_async (out_of (e->pair.server), e->server_buf + e->server_sent,
                                   len - e->server_sent, G_PRIORITY_DEFAULT, NULL,
                                   echo_server_write_cb, e);
      return;
    }
  if (++e->server_round == N_ECHO_ROUNDS)
    e->server_done = TRUE;
  else
    echo_server_read (e);
}

static void
echo_server_read_cb (GObject      *source,
                     GAsyncResult *result,
                     gpointer      user_data)
{
  Echo *e = user_data;
  g_autoptr(GError) error = NULL;
  gssize n = g_input_stream_read_finish (G_INPUT_STREAM (source), result, &error);
  gsize len = echo_len (e, e->server_round);
  guint8 expected[ECHO_MAX];

  g_assert_no_error (error);
  g_assert_cmpint (n, >, 0);
  e->server_got += n;
  g_assert_cmpuint (e->server_got, <=, len);
  if (e->server_got < len)
    {
      g_input_stream_read_async (in_of (e->pair.server), e->server_buf + e->server_got,
                                 MIN (64, ECHO_MAX - e->server_got), G_PRIORITY_DEFAULT, NULL,
                                 echo_server_read_cb, e);
      return;
    }
  echo_expected (e, e->server_round, expected);
  g_assert_cmpmem (e->server_buf, len, expected, len);
  e->server_sent = 0;
  g_output_stream_write_async (out_of (e->pair.server), e->server_buf, len,
                               G_PRIORITY_DEFAULT, NULL, echo_server_write_cb, e);
}

static void
echo_server_read (Echo *e)
{
  /* Reads of 64 bytes: longer messages take several, full ones (the
   * stream stays ready) and then a short one (drained). The client sends
   * the next message only once it has this one back. */
  e->server_got = 0;
  g_input_stream_read_async (in_of (e->pair.server), e->server_buf, 64, G_PRIORITY_DEFAULT, NULL,
                             echo_server_read_cb, e);
}

static gboolean
echoes_done (const Echo *echoes)
{
  for (guint i = 0; i < N_ECHO_PAIRS; i++)
    {
      if (!echoes[i].client_done || !echoes[i].server_done)
        return FALSE;
    }
  return TRUE;
}

static void
test_echo_many_small (void)
{
  int fds_before = lsock_test_settled_fd_count ();
  Echo *echoes = g_new0 (Echo, N_ECHO_PAIRS);

  for (guint i = 0; i < N_ECHO_PAIRS; i++)
    {
      echoes[i].index = i;
      lsock_test_pair_open (&echoes[i].pair, lsock_test_namespaced_name ());
    }
  for (guint i = 0; i < N_ECHO_PAIRS; i++)
    {
      echo_server_read (&echoes[i]);
      echo_client_start_round (&echoes[i]);
    }

  lsock_test_wait_until (echoes_done (echoes));
  lsock_test_drain_main_context ();

  for (guint i = 0; i < N_ECHO_PAIRS; i++)
    {
      g_assert_cmpuint (echoes[i].client_round, ==, N_ECHO_ROUNDS);
      g_assert_cmpuint (echoes[i].server_round, ==, N_ECHO_ROUNDS);
      lsock_test_pair_close (&echoes[i].pair);
    }
  g_free (echoes);
  lsock_test_assert_fd_count (fds_before);
}

int
main (int   argc,
      char *argv[])
{
  int ret;

  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);
  lsock_test_reactor_from_env ();

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
  g_test_add_data_func ("/lsock/stream/async/read-after-sync-read/part",
                        GINT_TO_POINTER (SYNC_READ_PART), test_read_async_after_sync_read);
  g_test_add_data_func ("/lsock/stream/async/read-after-sync-read/part-after-dispatch",
                        GINT_TO_POINTER (SYNC_READ_PART_AFTER_DISPATCH), test_read_async_after_sync_read);
  g_test_add_data_func ("/lsock/stream/async/read-after-sync-read/all",
                        GINT_TO_POINTER (SYNC_READ_ALL), test_read_async_after_sync_read);
  g_test_add_data_func ("/lsock/stream/async/read-after-sync-read/all-after-dispatch",
                        GINT_TO_POINTER (SYNC_READ_ALL_AFTER_DISPATCH), test_read_async_after_sync_read);
  g_test_add_data_func ("/lsock/stream/async/read-after-sync-read/nonblocking-part",
                        GINT_TO_POINTER (NONBLOCKING_READ_PART), test_read_async_after_sync_read);
  g_test_add_data_func ("/lsock/stream/async/eof-after-short-read/peer-shutdown",
                        GINT_TO_POINTER (FALSE), test_read_async_eof_after_short_read);
  g_test_add_data_func ("/lsock/stream/async/eof-after-short-read/peer-close",
                        GINT_TO_POINTER (TRUE), test_read_async_eof_after_short_read);
  g_test_add_func ("/lsock/stream/async/write-waits", test_write_async_waits);
  g_test_add_func ("/lsock/stream/async/reactor-released", test_reactor_released);
  g_test_add_func ("/lsock/stream/async/reactor-kept-by-service", test_reactor_kept_by_service);
  g_test_add_func ("/lsock/stream/async/read-pending-peer-close", test_read_async_pending_peer_close);
  g_test_add_func ("/lsock/stream/async/write-pending-peer-close", test_write_async_pending_peer_close);
  g_test_add_data_func ("/lsock/stream/async/pending-own-close/read-close-in-callback",
                        GINT_TO_POINTER (PENDING_READ_CLOSE_IN_CALLBACK), test_pending_own_close);
  g_test_add_data_func ("/lsock/stream/async/pending-own-close/write-close-in-callback",
                        GINT_TO_POINTER (PENDING_WRITE_CLOSE_IN_CALLBACK), test_pending_own_close);
  g_test_add_data_func ("/lsock/stream/async/pending-own-close/read-close-async",
                        GINT_TO_POINTER (PENDING_READ_CLOSE_ASYNC), test_pending_own_close);
  g_test_add_data_func ("/lsock/stream/async/pending-own-close/write-close-async",
                        GINT_TO_POINTER (PENDING_WRITE_CLOSE_ASYNC), test_pending_own_close);
  g_test_add_func ("/lsock/stream/async/never-synchronous", test_async_never_synchronous);
  g_test_add_data_func ("/lsock/stream/async/cross-thread/reads-first",
                        GINT_TO_POINTER (FALSE), test_cross_thread_contexts);
  g_test_add_data_func ("/lsock/stream/async/cross-thread/writes-first",
                        GINT_TO_POINTER (TRUE), test_cross_thread_contexts);
  g_test_add_func ("/lsock/stream/async/wakeup-from-other-thread", test_wakeup_from_other_thread);
  g_test_add_func ("/lsock/stream/async/echo-many-small", test_echo_many_small);

  ret = g_test_run ();
  lsock_test_cleanup_dirs ();
  return ret;
}
