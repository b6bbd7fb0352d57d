/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

/* Operations racing close() from another thread, many times over: every
 * one must end, in a way the documentation allows, and never on a
 * descriptor that was closed or reused under it. The races are narrow, so
 * each test runs thousands of rounds (fewer with LSOCK_TEST_QUICK, as
 * under valgrind), varying the moment of the close. */

#include "lsock-test-util.h"

#include <string.h>
#ifdef G_OS_UNIX
# include <sys/socket.h>
# include <unistd.h>
#endif

/* How long one round may take before the test calls it a hang */
#define HANG_MS 10000

static guint
n_rounds (guint full)
{
#ifdef G_OS_WIN32
  /* Threads and pipes cost ten times as much under Wine */
  full /= 10;
#endif
  return g_getenv ("LSOCK_TEST_QUICK") != NULL ? full / 10 : full;
}

/* A busy wait of a few hundred nanoseconds to a few microseconds, to move
 * the moment one side acts against the other's */
static void
spin (guint round)
{
  static volatile guint sink;

  for (guint i = 0; i < (round * 37) % 500; i++)
    sink += i;
}

/* Two threads leave a barrier together */
typedef struct
{
  int arrived;
  int go;
} Barrier;

static void
barrier_wait (Barrier *b)
{
  g_atomic_int_inc (&b->arrived);
  while (!g_atomic_int_get (&b->go))
    ;
}

static void
barrier_release (Barrier *b)
{
  while (g_atomic_int_get (&b->arrived) < 1)
    ;
  g_atomic_int_set (&b->go, 1);
}

/* ---- accept_async() against close() ----------------------------------- */

typedef struct
{
  Barrier        barrier;
  LsockListener *listener;
  GCancellable  *cancellable;
  gboolean       done;
  gboolean       hung;
  LsockStream   *stream;
  GError        *error;
} AcceptRace;

static void
accept_race_cb (GObject      *source,
                GAsyncResult *result,
                gpointer      user_data)
{
  AcceptRace *race = user_data;

  race->stream = lsock_listener_accept_finish (race->listener, result, &race->error);
  race->done = TRUE;
}

static gpointer
accept_race_thread (gpointer data)
{
  AcceptRace *race = data;
  GMainContext *context = g_main_context_new ();

  g_main_context_push_thread_default (context);
  barrier_wait (&race->barrier);
  lsock_listener_accept_async (race->listener, race->cancellable, accept_race_cb, race);
  race->hung = !lsock_test_wait_bounded (race->done, HANG_MS);
  g_main_context_pop_thread_default (context);
  g_main_context_unref (context);
  return NULL;
}

/* An accept started in another thread (with a cancellable, or without)
 * while this one closes the listener: it ends with CLOSED, never waits for
 * ever */
static void
test_accept_async_vs_close (gconstpointer data)
{
  gboolean with_cancellable = GPOINTER_TO_INT (data);
  guint rounds = n_rounds (2000);

  for (guint round = 0; round < rounds; round++)
    {
      g_autoptr(GError) error = NULL;
      LsockName *name = lsock_test_namespaced_name ();
      AcceptRace race = { 0 };
      GThread *thread;

      race.listener = lsock_listener_new (name, &error);
      g_assert_no_error (error);
      race.cancellable = with_cancellable ? g_cancellable_new () : NULL;
      thread = g_thread_new ("accept", accept_race_thread, &race);
      barrier_release (&race.barrier);
      spin (round);
      lsock_listener_close (race.listener);
      g_thread_join (thread);

      if (race.hung)
        g_error ("Round %u: accept_async() never ended after close()", round);
      g_assert_null (race.stream);
      g_assert_error (race.error, G_IO_ERROR, G_IO_ERROR_CLOSED);
      g_clear_error (&race.error);
      g_clear_object (&race.cancellable);
      g_assert_finalize_object (race.listener);
      g_assert_finalize_object (name);
    }
}

/* ---- read_async() against g_io_stream_close() ------------------------- */

typedef struct
{
  Barrier       barrier;
  LsockStream  *stream;
  GCancellable *cancellable;
  char          buf[8];
  gboolean      done;
  gboolean      hung;
  gssize        n;
  GError       *error;
} ReadRace;

static void
read_race_cb (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  ReadRace *race = user_data;

  race->n = g_input_stream_read_finish (G_INPUT_STREAM (source), result, &race->error);
  race->done = TRUE;
}

static gpointer
read_race_thread (gpointer data)
{
  ReadRace *race = data;
  GMainContext *context = g_main_context_new ();

  g_main_context_push_thread_default (context);
  barrier_wait (&race->barrier);
  g_input_stream_read_async (g_io_stream_get_input_stream (G_IO_STREAM (race->stream)),
                             race->buf, sizeof race->buf, G_PRIORITY_DEFAULT,
                             race->cancellable, read_race_cb, race);
  race->hung = !lsock_test_wait_bounded (race->done, HANG_MS);
  g_main_context_pop_thread_default (context);
  /* What the context still holds of the stream goes with it */
  while (g_main_context_iteration (context, FALSE));
  g_main_context_unref (context);
  return NULL;
}

/* A read started in another thread while this one closes the stream (and
 * sometimes cancels the read, or the peer writes): it ends with data, the
 * end of the stream, CLOSED or CANCELLED; never G_IO_ERROR_PENDING, which
 * GIO gives when a substream is closed while an operation starts */
static void
test_read_async_vs_close (void)
{
  g_autoptr(GError) error = NULL;
  LsockName *name = lsock_test_namespaced_name ();
  LsockListener *listener = lsock_listener_new (name, &error);
  guint rounds = n_rounds (5000);

  g_assert_no_error (error);
  for (guint round = 0; round < rounds; round++)
    {
      ReadRace race = { 0 };
      LsockStream *client;
      GThread *thread;

      client = lsock_stream_connect (name, NULL, &error);
      g_assert_no_error (error);
      race.stream = lsock_listener_accept (listener, NULL, &error);
      g_assert_no_error (error);
      race.cancellable = g_cancellable_new ();

      thread = g_thread_new ("read", read_race_thread, &race);
      barrier_release (&race.barrier);
      spin (round);
      if (round % 3 == 1)
        g_output_stream_write (g_io_stream_get_output_stream (G_IO_STREAM (client)),
                               "x", 1, NULL, NULL);
      if (round % 3 == 2)
        g_cancellable_cancel (race.cancellable);
      g_io_stream_close (G_IO_STREAM (race.stream), NULL, NULL);
      g_thread_join (thread);

      if (race.hung)
        g_error ("Round %u: read_async() never ended after close()", round);
      if (race.n < 0 &&
          !g_error_matches (race.error, G_IO_ERROR, G_IO_ERROR_CLOSED) &&
          !g_error_matches (race.error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        g_error ("Round %u: read_async() racing close() failed with: %s (%s %d)", round,
                 race.error->message, g_quark_to_string (race.error->domain), race.error->code);
      g_assert_cmpint (race.n, <=, 1);
      g_clear_error (&race.error);
      g_assert_finalize_object (race.stream);
      g_object_unref (race.cancellable);
      g_assert_finalize_object (client);
    }
  lsock_test_close_and_finalize_listener (&listener);
  g_assert_finalize_object (name);
}

/* ---- a non-blocking read against close() and a new socket ------------- */

#ifdef G_OS_UNIX
typedef struct
{
  Barrier      barrier;
  LsockStream *stream;
  gssize       n;
  char         buf[8];
  GError      *error;
} NonblockingRace;

static gpointer
nonblocking_race_thread (gpointer data)
{
  NonblockingRace *race = data;
  GPollableInputStream *input =
    G_POLLABLE_INPUT_STREAM (g_io_stream_get_input_stream (G_IO_STREAM (race->stream)));

  barrier_wait (&race->barrier);
  for (;;)
    {
      g_clear_error (&race->error);
      race->n = g_pollable_input_stream_read_nonblocking (input, race->buf, sizeof race->buf,
                                                          NULL, &race->error);
      if (race->n >= 0 || !g_error_matches (race->error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
        break;
    }
  return NULL;
}
#endif

/* A thread polls with non-blocking reads while another closes the stream
 * and at once makes new sockets with data queued, which may get the
 * closed descriptor's number: the read must end with CLOSED (or the end
 * of the stream), never with a byte from the new socket */
static void
test_nonblocking_read_vs_close (void)
{
#ifdef G_OS_UNIX
  g_autoptr(GError) error = NULL;
  LsockName *name = lsock_test_namespaced_name ();
  LsockListener *listener = lsock_listener_new (name, &error);
  guint rounds = n_rounds (2000);

  g_assert_no_error (error);
  for (guint round = 0; round < rounds; round++)
    {
      NonblockingRace race = { 0 };
      LsockStream *client;
      GThread *thread;
      int pairs[4][2];

      client = lsock_stream_connect (name, NULL, &error);
      g_assert_no_error (error);
      race.stream = lsock_listener_accept (listener, NULL, &error);
      g_assert_no_error (error);

      thread = g_thread_new ("read", nonblocking_race_thread, &race);
      barrier_release (&race.barrier);
      spin (round);
      g_io_stream_close (G_IO_STREAM (race.stream), NULL, NULL);
      for (int i = 0; i < 4; i++)
        {
          g_assert_no_errno (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pairs[i]));
          g_assert_cmpint (write (pairs[i][1], "!", 1), ==, 1);
        }
      g_thread_join (thread);

      if (race.n > 0)
        g_error ("Round %u: a read after close() got %c from another socket", round,
                 race.buf[0]);
      if (race.n < 0)
        g_assert_error (race.error, G_IO_ERROR, G_IO_ERROR_CLOSED);
      g_clear_error (&race.error);
      for (int i = 0; i < 4; i++)
        {
          close (pairs[i][0]);
          close (pairs[i][1]);
        }
      g_assert_finalize_object (race.stream);
      g_assert_finalize_object (client);
    }
  lsock_test_close_and_finalize_listener (&listener);
  g_assert_finalize_object (name);
#else
  g_test_skip ("Descriptor numbers are a Unix matter");
#endif
}

/* ---- the incoming service against stop() and unref() elsewhere -------- */

typedef struct
{
  GMutex         lock;
  GCond          cond;
  LsockListener *listener;
  gboolean       in_handler;
  gboolean       released;
  gboolean       alive_after_release;
  GWeakRef       weak;
  LsockStream   *stream;
} ServiceRace;

static gboolean
service_race_incoming_cb (LsockListener *listener,
                          LsockStream   *stream,
                          gpointer       user_data)
{
  ServiceRace *race = user_data;
  LsockListener *still;

  race->stream = g_object_ref (stream);
  g_mutex_lock (&race->lock);
  race->in_handler = TRUE;
  g_cond_broadcast (&race->cond);
  while (!race->released)
    g_cond_wait (&race->cond, &race->lock);
  g_mutex_unlock (&race->lock);

  /* Stopped and let go of in another thread: the dispatch that is
   * calling us still holds it */
  still = g_weak_ref_get (&race->weak);
  race->alive_after_release = still != NULL && still == listener;
  g_clear_object (&still);
  g_assert_cmpstr (lsock_name_get_name (lsock_listener_get_name (listener)), !=, NULL);
  return TRUE;
}

static gpointer
service_race_release_thread (gpointer data)
{
  ServiceRace *race = data;

  g_mutex_lock (&race->lock);
  while (!race->in_handler)
    g_cond_wait (&race->cond, &race->lock);
  g_mutex_unlock (&race->lock);

  lsock_listener_stop (race->listener);
  g_object_unref (g_steal_pointer (&race->listener));

  g_mutex_lock (&race->lock);
  race->released = TRUE;
  g_cond_broadcast (&race->cond);
  g_mutex_unlock (&race->lock);
  return NULL;
}

static void
test_service_vs_release (void)
{
  g_autoptr(GError) error = NULL;
  LsockName *name = lsock_test_namespaced_name ();
  ServiceRace race = { 0 };
  LsockStream *client;
  GThread *thread;
  LsockListener *gone;

  g_mutex_init (&race.lock);
  g_cond_init (&race.cond);
  race.listener = lsock_listener_new (name, &error);
  g_assert_no_error (error);
  g_weak_ref_init (&race.weak, race.listener);
  g_signal_connect (race.listener, "incoming", G_CALLBACK (service_race_incoming_cb), &race);
  lsock_listener_start (race.listener);

  thread = g_thread_new ("release", service_race_release_thread, &race);
  client = lsock_stream_connect (name, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (lsock_test_wait_bounded (race.stream != NULL, HANG_MS));
  g_thread_join (thread);
  g_assert_true (race.alive_after_release);

  /* Once the dispatch is over, nothing holds it */
  lsock_test_drain_main_context ();
  gone = g_weak_ref_get (&race.weak);
  g_assert_null (gone);
  g_weak_ref_clear (&race.weak);

  lsock_test_close_and_finalize_stream (&race.stream);
  lsock_test_close_and_finalize_stream (&client);
  g_mutex_clear (&race.lock);
  g_cond_clear (&race.cond);
  g_assert_finalize_object (name);
}

int
main (int   argc,
      char *argv[])
{
  int ret;

  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);
  lsock_test_reactor_from_env ();

  g_test_add_data_func ("/lsock/races/accept-async-vs-close/plain",
                        GINT_TO_POINTER (FALSE), test_accept_async_vs_close);
  g_test_add_data_func ("/lsock/races/accept-async-vs-close/cancellable",
                        GINT_TO_POINTER (TRUE), test_accept_async_vs_close);
  g_test_add_func ("/lsock/races/read-async-vs-close", test_read_async_vs_close);
  g_test_add_func ("/lsock/races/nonblocking-read-vs-close", test_nonblocking_read_vs_close);
  g_test_add_func ("/lsock/races/service-vs-release", test_service_vs_release);

  ret = g_test_run ();
  lsock_test_cleanup_dirs ();
  return ret;
}
