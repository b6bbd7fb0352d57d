/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

/* Streams and listeners used from several threads at once. */

#include <string.h>

#include "lsock-test-util.h"

/* Bytes each way in the duplex tests; LSOCK_TEST_QUICK makes it smaller */
#define DUPLEX_SIZE        (16 * 1024 * 1024)
#define DUPLEX_SIZE_QUICK  (2 * 1024 * 1024)
#define MAX_CHUNK          (64 * 1024)

#define N_ACCEPT_THREADS   8
#define N_ACCEPT_CLIENTS   64

static gsize
duplex_size (void)
{
  return g_getenv ("LSOCK_TEST_QUICK") != NULL ? DUPLEX_SIZE_QUICK : DUPLEX_SIZE;
}

static LsockName *
any_name (gboolean prefer_path)
{
  LsockNameTypeSupport support = lsock_name_type_support_query ();

  if (support == LSOCK_NAME_TYPE_SUPPORT_ONLY_PATHS ||
      (prefer_path && support != LSOCK_NAME_TYPE_SUPPORT_ONLY_NAMESPACED))
    return lsock_test_path_name ();
  return lsock_test_namespaced_name ();
}

/* Lets GLib make its own lasting descriptors before the tests count them:
 * the main context's wakeup fd, and the worker context that GTask's class
 * sets up */
static void
warm_up_glib (void)
{
  g_type_class_unref (g_type_class_ref (G_TYPE_TASK));
  lsock_test_drain_main_context ();
}

/* ---- one stream, both directions, both ends, four threads ------------- */

typedef struct
{
  LsockStream  *stream;
  GCancellable *cancellable;  /* NULL for the fast path */
  guint8        seed;
  gsize         size;
  gsize         done;         /* out */
} DuplexJob;

static gpointer
writer_thread (gpointer user_data)
{
  DuplexJob *job = user_data;
  GOutputStream *output = g_io_stream_get_output_stream (G_IO_STREAM (job->stream));
  g_autofree guint8 *buffer = g_malloc (MAX_CHUNK);
  GError *error = NULL;
  guint k = 0;

  while (job->done < job->size)
    {
      /* Chunks of many sizes, so the boundaries fall everywhere */
      gsize chunk = 1 + (k * 7919) % MAX_CHUNK;
      gsize written = 0;

      k++;
      chunk = MIN (chunk, job->size - job->done);
      lsock_test_fill_pattern (buffer, job->done, chunk, job->seed);
      g_output_stream_write_all (output, buffer, chunk, &written, job->cancellable, &error);
      g_assert_no_error (error);
      g_assert_cmpuint (written, ==, chunk);
      job->done += written;
    }

#ifndef G_OS_WIN32
  /* Half-close: the peer's reader sees EOF, this end's reader goes on */
  lsock_stream_shutdown (job->stream, FALSE, TRUE, &error);
  g_assert_no_error (error);
#endif
  /* (Named pipes have no half-close: there the reader stops at the size) */
  return NULL;
}

static gpointer
reader_thread (gpointer user_data)
{
  DuplexJob *job = user_data;
  GInputStream *input = g_io_stream_get_input_stream (G_IO_STREAM (job->stream));
  g_autofree guint8 *buffer = g_malloc (MAX_CHUNK);
  GError *error = NULL;

  for (;;)
    {
      gssize n;

#ifdef G_OS_WIN32
      if (job->done == job->size)
        break;  /* no half-close, so no EOF to wait for */
#endif
      n = g_input_stream_read (input, buffer, MAX_CHUNK, job->cancellable, &error);

      g_assert_no_error (error);
      g_assert_cmpint (n, >=, 0);
      if (n == 0)
        break;
      g_assert_cmpuint (job->done + n, <=, job->size);
      lsock_test_assert_pattern (buffer, job->done, n, job->seed);
      job->done += n;
    }
  return NULL;
}

static void
run_duplex (gboolean poll_path)
{
  LsockTestPair pair = { 0 };
  g_autoptr(GCancellable) cancellable = poll_path ? g_cancellable_new () : NULL;
  gsize size = duplex_size ();
  DuplexJob jobs[4] = {
    { .seed = 1 },  /* client writes, seed 1 */
    { .seed = 1 },  /* server reads seed 1 */
    { .seed = 2 },  /* server writes, seed 2 */
    { .seed = 2 },  /* client reads seed 2 */
  };
  GThread *threads[4];
  int fds_before;

  warm_up_glib ();
  fds_before = lsock_test_count_fds ();

  lsock_test_pair_open (&pair, any_name (poll_path));
  if (poll_path)
    {
      /* A timeout that never elapses here, but makes every operation poll */
      lsock_stream_set_timeout (pair.client, 60000);
      lsock_stream_set_timeout (pair.server, 60000);
    }

  jobs[0].stream = pair.client;
  jobs[1].stream = pair.server;
  jobs[2].stream = pair.server;
  jobs[3].stream = pair.client;
  for (guint i = 0; i < G_N_ELEMENTS (jobs); i++)
    {
      jobs[i].cancellable = cancellable;
      jobs[i].size = size;
    }

  threads[0] = g_thread_new ("client-writer", writer_thread, &jobs[0]);
  threads[1] = g_thread_new ("server-reader", reader_thread, &jobs[1]);
  threads[2] = g_thread_new ("server-writer", writer_thread, &jobs[2]);
  threads[3] = g_thread_new ("client-reader", reader_thread, &jobs[3]);
  for (guint i = 0; i < G_N_ELEMENTS (threads); i++)
    g_thread_join (threads[i]);

  for (guint i = 0; i < G_N_ELEMENTS (jobs); i++)
    g_assert_cmpuint (jobs[i].done, ==, size);
  if (cancellable != NULL)
    g_assert_false (g_cancellable_is_cancelled (cancellable));

  lsock_test_pair_close (&pair);
  if (fds_before >= 0)
    g_assert_cmpint (lsock_test_count_fds (), ==, fds_before);
}

static void
test_duplex_fast (void)
{
  run_duplex (FALSE);
}

static void
test_duplex_poll (void)
{
  run_duplex (TRUE);
}

/* ---- many threads accepting on one listener --------------------------- */

typedef struct
{
  LsockListener *listener;
  GMutex         mutex;
  GCond          cond;
  guint          n_accepted;
  guint          counts[N_ACCEPT_CLIENTS];
  GPtrArray     *streams;     /* accepted, closed at the end */
} AcceptTest;

static gpointer
accept_thread (gpointer user_data)
{
  AcceptTest *test = user_data;

  for (;;)
    {
      GError *error = NULL;
      LsockStream *stream;
      guint32 index = G_MAXUINT32;
      gsize n_read = 0;

      stream = lsock_listener_accept (test->listener, NULL, &error);
      if (stream == NULL)
        {
          /* The listener was closed once everybody was in */
          g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CLOSED);
          g_clear_error (&error);
          break;
        }
      g_assert_no_error (error);

      /* Each client sends its index */
      g_input_stream_read_all (g_io_stream_get_input_stream (G_IO_STREAM (stream)),
                               &index, sizeof index, &n_read, NULL, &error);
      g_assert_no_error (error);
      g_assert_cmpuint (n_read, ==, sizeof index);
      g_assert_cmpuint (index, <, N_ACCEPT_CLIENTS);

      g_mutex_lock (&test->mutex);
      test->counts[index]++;
      test->n_accepted++;
      g_ptr_array_add (test->streams, stream);
      g_cond_signal (&test->cond);
      g_mutex_unlock (&test->mutex);
    }

  return NULL;
}

static void
test_accept_many_threads (void)
{
  GError *error = NULL;
  AcceptTest test = { 0 };
  GThread *threads[N_ACCEPT_THREADS];
  LsockStream *clients[N_ACCEPT_CLIENTS];
  LsockName *name = any_name (FALSE);
  int fds_before;

  warm_up_glib ();
  fds_before = lsock_test_count_fds ();

  g_mutex_init (&test.mutex);
  g_cond_init (&test.cond);
  test.streams = g_ptr_array_new ();
  test.listener = lsock_listener_new (name, &error);
  g_assert_no_error (error);

  for (guint i = 0; i < N_ACCEPT_THREADS; i++)
    threads[i] = g_thread_new ("accept", accept_thread, &test);

  for (guint32 i = 0; i < N_ACCEPT_CLIENTS; i++)
    {
      gsize written = 0;

      clients[i] = lsock_stream_connect (name, NULL, &error);
      g_assert_no_error (error);
      g_output_stream_write_all (g_io_stream_get_output_stream (G_IO_STREAM (clients[i])),
                                 &i, sizeof i, &written, NULL, &error);
      g_assert_no_error (error);
    }

  g_mutex_lock (&test.mutex);
  while (test.n_accepted < N_ACCEPT_CLIENTS)
    g_cond_wait (&test.cond, &test.mutex);
  g_mutex_unlock (&test.mutex);

  /* Wakes every thread blocked in accept */
  lsock_listener_close (test.listener);
  for (guint i = 0; i < N_ACCEPT_THREADS; i++)
    g_thread_join (threads[i]);

  /* Every client was accepted exactly once */
  g_assert_cmpuint (test.n_accepted, ==, N_ACCEPT_CLIENTS);
  g_assert_cmpuint (test.streams->len, ==, N_ACCEPT_CLIENTS);
  for (guint i = 0; i < N_ACCEPT_CLIENTS; i++)
    g_assert_cmpuint (test.counts[i], ==, 1);

  for (guint i = 0; i < N_ACCEPT_CLIENTS; i++)
    {
      LsockStream *stream = g_ptr_array_index (test.streams, i);

      lsock_test_close_and_finalize_stream (&stream);
      lsock_test_close_and_finalize_stream (&clients[i]);
    }
  g_ptr_array_unref (test.streams);
  lsock_test_drain_main_context ();
  g_assert_finalize_object (test.listener);
  g_assert_finalize_object (name);
  g_cond_clear (&test.cond);
  g_mutex_clear (&test.mutex);

  if (fds_before >= 0)
    g_assert_cmpint (lsock_test_count_fds (), ==, fds_before);
}

/* ---- closing from one thread while another is blocked ----------------- */

typedef enum {
  BLOCKED_READ,
  BLOCKED_READ_CANCELLABLE,
  BLOCKED_READ_TIMEOUT,
  BLOCKED_WRITE,
  BLOCKED_WRITE_CANCELLABLE,
} BlockedOp;

typedef struct
{
  LsockStream  *stream;
  BlockedOp     op;
  GCancellable *cancellable;
  GMutex        mutex;
  GCond         cond;
  gboolean      about_to_block;
  gssize        result;     /* out: of the read, or of the failed write */
  GError       *error;      /* out */
} BlockedJob;

static void
blocked_job_signal (BlockedJob *job)
{
  g_mutex_lock (&job->mutex);
  job->about_to_block = TRUE;
  g_cond_signal (&job->cond);
  g_mutex_unlock (&job->mutex);
}

static gpointer
blocked_thread (gpointer user_data)
{
  BlockedJob *job = user_data;
  GInputStream *input = g_io_stream_get_input_stream (G_IO_STREAM (job->stream));
  GOutputStream *output = g_io_stream_get_output_stream (G_IO_STREAM (job->stream));

  if (job->op == BLOCKED_WRITE || job->op == BLOCKED_WRITE_CANCELLABLE)
    {
      g_autofree guint8 *chunk = g_malloc0 (MAX_CHUNK);
      gboolean signalled = FALSE;

      /* Nobody reads: this fills the socket buffer and then blocks, until
       * the close makes the write fail */
      for (;;)
        {
          gssize n;

          if (!signalled)
            {
              blocked_job_signal (job);
              signalled = TRUE;
            }
          n = g_output_stream_write (output, chunk, MAX_CHUNK, job->cancellable, &job->error);
          if (n < 0)
            {
              job->result = n;
              break;
            }
        }
    }
  else
    {
      char buffer[64];

      blocked_job_signal (job);
      job->result = g_input_stream_read (input, buffer, sizeof buffer,
                                         job->cancellable, &job->error);
    }

  return NULL;
}

static void
run_close_while_blocked (BlockedOp op)
{
  LsockTestPair pair = { 0 };
  BlockedJob job = { 0 };
  GThread *thread;
  GError *error = NULL;
  char buffer[16];
  int fds_before;

  warm_up_glib ();
  fds_before = lsock_test_count_fds ();

  lsock_test_pair_open (&pair, any_name (op == BLOCKED_READ_CANCELLABLE || op == BLOCKED_WRITE));
  job.stream = pair.client;
  job.op = op;
  if (op == BLOCKED_READ_CANCELLABLE || op == BLOCKED_WRITE_CANCELLABLE)
    job.cancellable = g_cancellable_new ();
  if (op == BLOCKED_READ_TIMEOUT)
    lsock_stream_set_timeout (pair.client, 60000);
  g_mutex_init (&job.mutex);
  g_cond_init (&job.cond);

  thread = g_thread_new ("blocked", blocked_thread, &job);

  g_mutex_lock (&job.mutex);
  while (!job.about_to_block)
    g_cond_wait (&job.cond, &job.mutex);
  g_mutex_unlock (&job.mutex);

  /* The thread is in (or about to enter) its read or write. Closing must
   * make it return: whether close() reports the pending operation does
   * not matter here. */
  if (!g_io_stream_close (G_IO_STREAM (pair.client), NULL, &error))
    {
      g_test_message ("close: %s", error->message);
      g_clear_error (&error);
    }
  g_assert_true (g_io_stream_is_closed (G_IO_STREAM (pair.client)));
  g_thread_join (thread);

  switch (op)
    {
    case BLOCKED_READ:
    case BLOCKED_READ_CANCELLABLE:
    case BLOCKED_READ_TIMEOUT:
      /* EOF, or an error such as CLOSED; never data that nobody sent */
      if (job.error != NULL)
        {
          g_test_message ("blocked read: %s", job.error->message);
          g_assert_cmpint (job.result, ==, -1);
          g_assert_false (g_error_matches (job.error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT));
        }
      else
        g_assert_cmpint (job.result, ==, 0);
      break;

    case BLOCKED_WRITE:
    case BLOCKED_WRITE_CANCELLABLE:
      g_assert_cmpint (job.result, ==, -1);
      g_assert_nonnull (job.error);
      g_test_message ("blocked write: %s", job.error->message);
      g_assert_false (g_error_matches (job.error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT));
      break;

    default:
      g_assert_not_reached ();
    }
  g_clear_error (&job.error);

  /* The peer sees the end of the stream, after whatever was written */
  for (;;)
    {
      gssize n = g_input_stream_read (g_io_stream_get_input_stream (G_IO_STREAM (pair.server)),
                                      buffer, sizeof buffer, NULL, &error);

      g_assert_no_error (error);
      if (n == 0)
        break;
    }

  /* Further use of the closed stream fails cleanly */
  g_assert_cmpint (g_input_stream_read (g_io_stream_get_input_stream (G_IO_STREAM (pair.client)),
                                        buffer, sizeof buffer, NULL, &error), ==, -1);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CLOSED);
  g_clear_error (&error);

  g_clear_object (&job.cancellable);
  g_cond_clear (&job.cond);
  g_mutex_clear (&job.mutex);
  lsock_test_pair_close (&pair);

  if (fds_before >= 0)
    g_assert_cmpint (lsock_test_count_fds (), ==, fds_before);
}

static void
test_close_blocked_read (void)
{
  run_close_while_blocked (BLOCKED_READ);
}

static void
test_close_blocked_read_cancellable (void)
{
  run_close_while_blocked (BLOCKED_READ_CANCELLABLE);
}

static void
test_close_blocked_read_timeout (void)
{
  run_close_while_blocked (BLOCKED_READ_TIMEOUT);
}

static void
test_close_blocked_write (void)
{
  run_close_while_blocked (BLOCKED_WRITE);
}

static void
test_close_blocked_write_cancellable (void)
{
  run_close_while_blocked (BLOCKED_WRITE_CANCELLABLE);
}

int
main (int   argc,
      char *argv[])
{
  int ret;

  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);

  g_test_add_func ("/lsock/threads/duplex/fast", test_duplex_fast);
  g_test_add_func ("/lsock/threads/duplex/poll", test_duplex_poll);
  g_test_add_func ("/lsock/threads/accept/many-threads", test_accept_many_threads);
  g_test_add_func ("/lsock/threads/close/blocked-read", test_close_blocked_read);
  g_test_add_func ("/lsock/threads/close/blocked-read-cancellable", test_close_blocked_read_cancellable);
  g_test_add_func ("/lsock/threads/close/blocked-read-timeout", test_close_blocked_read_timeout);
  g_test_add_func ("/lsock/threads/close/blocked-write", test_close_blocked_write);
  g_test_add_func ("/lsock/threads/close/blocked-write-cancellable", test_close_blocked_write_cancellable);

  ret = g_test_run ();
  lsock_test_cleanup_dirs ();
  return ret;
}
