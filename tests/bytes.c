/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

/* The fast path: lsock_stream_send_bytes*() and _receive_bytes*(). All of
 * the bytes, in order; a fresh result every time, never reported before
 * the call returns, and (on Unix) in the same main loop iteration when
 * started from another lsock operation's callback; the pending flags; the
 * stream alive while one is pending. */

#include "lsock-test-util.h"
#include "lsock-stream-private.h"

#include <string.h>

#define BIG (8 * 1024 * 1024)

typedef struct
{
  LsockStream  *stream;
  GBytes       *received;   /* concatenated */
  GByteArray   *buffer;
  gsize         want;
  gboolean      returned;   /* the _async() call has returned */
  gboolean      early;      /* a callback came before that */
  gboolean      done;
  GError       *error;
  guint         n_results;
  gpointer      last_result;
} Receiver;

static void receive_more (Receiver *r);

static void
received_cb (GObject      *source,
             GAsyncResult *result,
             gpointer      user_data)
{
  Receiver *r = user_data;
  g_autoptr(GBytes) bytes = NULL;

  if (!r->returned)
    r->early = TRUE;
  /* A fresh result every time */
  g_assert_true (result != r->last_result);
  g_assert_true (G_OBJECT (source) == G_OBJECT (r->stream));
  r->last_result = result;
  r->n_results++;

  bytes = lsock_stream_receive_bytes_finish (LSOCK_STREAM (source), result, &r->error);
  if (bytes == NULL || g_bytes_get_size (bytes) == 0)
    {
      r->done = TRUE;
      return;
    }
  g_byte_array_append (r->buffer, g_bytes_get_data (bytes, NULL), g_bytes_get_size (bytes));
  if (r->buffer->len >= r->want)
    {
      r->done = TRUE;
      return;
    }
  receive_more (r);
}

static void
receive_more (Receiver *r)
{
  r->returned = FALSE;
  lsock_stream_receive_bytes_async (r->stream, 65536, G_PRIORITY_DEFAULT, NULL, received_cb, r);
  r->returned = TRUE;
}

typedef struct
{
  gboolean returned;
  gboolean early;
  gboolean done;
  gboolean ok;
  GError  *error;
} Sent;

static void
sent_cb (GObject      *source,
         GAsyncResult *result,
         gpointer      user_data)
{
  Sent *s = user_data;

  if (!s->returned)
    s->early = TRUE;
  s->ok = lsock_stream_send_bytes_finish (LSOCK_STREAM (source), result, &s->error);
  s->done = TRUE;
}

/* 8 MiB in one send (PyGObject's write_bytes_async wrote 109,632 bytes of
 * that), read in pieces on the same context: all of it, in order */
static void
test_big (void)
{
  g_autoptr(LsockName) name = lsock_test_namespaced_name ();
  LsockTestPair pair = { 0 };
  g_autofree guint8 *data = g_malloc (BIG);
  g_autoptr(GBytes) bytes = NULL;
  Receiver r = { 0 };
  Sent s = { 0 };

  lsock_test_fill_pattern (data, 0, BIG, 7);
  bytes = g_bytes_new_static (data, BIG);
  lsock_test_pair_open (&pair, g_steal_pointer (&name));

  r.stream = pair.server;
  r.buffer = g_byte_array_new ();
  r.want = BIG;
  receive_more (&r);

  lsock_stream_send_bytes_async (pair.client, bytes, G_PRIORITY_DEFAULT, NULL, sent_cb, &s);
  s.returned = TRUE;
  lsock_test_wait_until (s.done && r.done);

  g_assert_no_error (s.error);
  g_assert_true (s.ok);
  g_assert_false (s.early);
  g_assert_no_error (r.error);
  g_assert_false (r.early);
  g_assert_cmpuint (r.buffer->len, ==, BIG);
  lsock_test_assert_pattern (r.buffer->data, 0, BIG, 7);
  g_assert_cmpuint (r.n_results, >, 1);

  g_byte_array_unref (r.buffer);
  lsock_test_pair_close (&pair);
}

/* The end of the stream is an empty GBytes; an empty send is done at once */
static void
test_eof_and_empty (void)
{
  LsockStream *a = NULL;
  LsockStream *b = NULL;
  g_autoptr(GBytes) empty = g_bytes_new (NULL, 0);
  GAsyncResult *result = NULL;
  GError *error = NULL;
  GBytes *got;

  g_assert_true (lsock_stream_new_pair (&a, &b, NULL));

  lsock_stream_send_bytes_async (a, empty, G_PRIORITY_DEFAULT, NULL, lsock_test_store_result, &result);
  lsock_test_wait_until (result != NULL);
  g_assert_true (lsock_stream_send_bytes_finish (a, result, &error));
  g_assert_no_error (error);
  g_clear_object (&result);

  /* Sync forms */
  {
    g_autoptr(GBytes) hello = g_bytes_new_static ("hello", 5);
    g_autoptr(GBytes) back = NULL;

    g_assert_true (lsock_stream_send_bytes (a, hello, NULL, &error));
    g_assert_no_error (error);
    back = lsock_stream_receive_bytes (b, 100, NULL, &error);
    g_assert_no_error (error);
    g_assert_true (g_bytes_equal (back, hello));
  }

  lsock_test_close_and_finalize_stream (&a);
  lsock_stream_receive_bytes_async (b, 10, G_PRIORITY_DEFAULT, NULL, lsock_test_store_result, &result);
  lsock_test_wait_until (result != NULL);
  got = lsock_stream_receive_bytes_finish (b, result, &error);
  g_assert_no_error (error);
  g_assert_nonnull (got);
  g_assert_cmpuint (g_bytes_get_size (got), ==, 0);
  g_bytes_unref (got);
  g_clear_object (&result);

  lsock_test_close_and_finalize_stream (&b);
}

/* The substream is busy meanwhile, both ways round; cancelling ends it */
static void
test_pending_and_cancel (void)
{
  LsockStream *a = NULL;
  LsockStream *b = NULL;
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  GAsyncResult *first = NULL;
  GAsyncResult *second = NULL;
  GError *error = NULL;
  char buffer[4];

  g_assert_true (lsock_stream_new_pair (&a, &b, NULL));

  lsock_stream_receive_bytes_async (b, 10, G_PRIORITY_DEFAULT, cancellable,
                                    lsock_test_store_result, &first);
  g_assert_cmpint (g_input_stream_read (g_io_stream_get_input_stream (G_IO_STREAM (b)),
                                        buffer, 1, NULL, &error), ==, -1);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_PENDING);
  g_clear_error (&error);
  lsock_stream_receive_bytes_async (b, 10, G_PRIORITY_DEFAULT, NULL,
                                    lsock_test_store_result, &second);
  lsock_test_wait_until (second != NULL);
  g_assert_null (lsock_stream_receive_bytes_finish (b, second, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_PENDING);
  g_clear_error (&error);
  g_clear_object (&second);

  g_cancellable_cancel (cancellable);
  lsock_test_wait_until (first != NULL);
  g_assert_null (lsock_stream_receive_bytes_finish (b, first, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_clear_error (&error);
  g_clear_object (&first);

  /* Free again */
  {
    g_autoptr(GBytes) x = g_bytes_new_static ("x", 1);
    g_autoptr(GBytes) got = NULL;

    g_assert_true (lsock_stream_send_bytes (a, x, NULL, NULL));
    got = lsock_stream_receive_bytes (b, 10, NULL, &error);
    g_assert_no_error (error);
    g_assert_true (g_bytes_equal (got, x));
  }

  lsock_test_close_and_finalize_stream (&a);
  lsock_test_close_and_finalize_stream (&b);

  /* A closed stream says so */
  g_assert_true (lsock_stream_new_pair (&a, &b, NULL));
  g_io_stream_close (G_IO_STREAM (a), NULL, NULL);
  lsock_stream_receive_bytes_async (a, 10, G_PRIORITY_DEFAULT, NULL, lsock_test_store_result, &first);
  lsock_test_wait_until (first != NULL);
  g_assert_null (lsock_stream_receive_bytes_finish (a, first, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CLOSED);
  g_clear_error (&error);
  g_clear_object (&first);
  lsock_test_close_and_finalize_stream (&a);
  lsock_test_close_and_finalize_stream (&b);
}

/* A stream whose last reference goes while a receive is pending stays open
 * until it completes */
static void
test_alive_while_pending (void)
{
  LsockStream *a = NULL;
  LsockStream *b = NULL;
  GAsyncResult *result = NULL;
  gpointer weak;
  GError *error = NULL;
  g_autoptr(GBytes) got = NULL;
  g_autoptr(GBytes) msg = g_bytes_new_static ("late", 4);

  g_assert_true (lsock_stream_new_pair (&a, &b, NULL));
  lsock_stream_receive_bytes_async (b, 10, G_PRIORITY_DEFAULT, NULL, lsock_test_store_result, &result);
  weak = b;
  g_object_add_weak_pointer (weak, &weak);
  g_object_unref (b);
  g_assert_nonnull (weak);

  g_assert_true (lsock_stream_send_bytes (a, msg, NULL, NULL));
  lsock_test_wait_until (result != NULL);
  got = lsock_stream_receive_bytes_finish (LSOCK_STREAM (weak), result, &error);
  g_assert_no_error (error);
  g_assert_true (g_bytes_equal (got, msg));
  g_clear_object (&result);
  lsock_test_wait_until (weak == NULL);
  lsock_test_close_and_finalize_stream (&a);
}

/* A connection served with the bytes calls alone never makes its
 * substreams (on Unix); asked for, they come once, the same ones every
 * time */
static void
test_lazy_substreams (void)
{
  LsockTestPair pair = { 0 };
  g_autoptr(GBytes) ping = g_bytes_new_static ("ping", 4);
  GAsyncResult *result = NULL;
  GError *error = NULL;
  GInputStream *input;
  GOutputStream *output;

  lsock_test_pair_open (&pair, lsock_test_namespaced_name ());
  for (int i = 0; i < 3; i++)
    {
      g_autoptr(GBytes) got = NULL;
      Sent sent = { 0 };

      g_assert_true (lsock_stream_send_bytes (pair.client, ping, NULL, &error));
      g_assert_no_error (error);
      lsock_stream_receive_bytes_async (pair.server, 16, G_PRIORITY_DEFAULT, NULL,
                                        lsock_test_store_result, &result);
      lsock_test_wait_until (result != NULL);
      got = lsock_stream_receive_bytes_finish (pair.server, result, &error);
      g_assert_no_error (error);
      g_assert_true (g_bytes_equal (got, ping));
      g_clear_object (&result);

      lsock_stream_send_bytes_async (pair.server, got, G_PRIORITY_DEFAULT, NULL,
                                     sent_cb, &sent);
      lsock_test_wait_until (sent.done);
      g_assert_no_error (sent.error);
      g_clear_pointer (&got, g_bytes_unref);
      got = lsock_stream_receive_bytes (pair.client, 16, NULL, &error);
      g_assert_no_error (error);
      g_assert_true (g_bytes_equal (got, ping));
    }
#ifdef G_OS_UNIX
  /* Sync or async; on Windows the bytes calls are the substreams' own */
  g_assert_null (pair.server->input);
  g_assert_null (pair.server->output);
  g_assert_null (pair.client->input);
  g_assert_null (pair.client->output);
#endif

  input = g_io_stream_get_input_stream (G_IO_STREAM (pair.server));
  output = g_io_stream_get_output_stream (G_IO_STREAM (pair.server));
  g_assert_nonnull (input);
  g_assert_nonnull (output);
  g_assert_true (g_io_stream_get_input_stream (G_IO_STREAM (pair.server)) == input);
  g_assert_true (g_io_stream_get_output_stream (G_IO_STREAM (pair.server)) == output);
  /* And they work: what the bytes calls left is theirs */
  g_assert_true (lsock_stream_send_bytes (pair.client, ping, NULL, NULL));
  {
    char buf[4];
    gsize n;

    g_assert_true (g_input_stream_read_all (input, buf, sizeof buf, &n, NULL, &error));
    g_assert_no_error (error);
    g_assert_cmpmem (buf, n, "ping", 4);
  }
  lsock_test_pair_close (&pair);
}

typedef struct
{
  LsockStream  *stream;
  int          *go;
  GInputStream *got;
} GetterRace;

static gpointer
getter_thread (gpointer data)
{
  GetterRace *race = data;

  while (!g_atomic_int_get (race->go))
    ;
  race->got = g_io_stream_get_input_stream (G_IO_STREAM (race->stream));
  return NULL;
}

/* Threads asking for the substream at once all get the same one; the
 * others' are dropped (ASan and valgrind see a leak otherwise) */
static void
test_lazy_substreams_race (void)
{
  for (int round = 0; round < 50; round++)
    {
      LsockStream *a = NULL;
      LsockStream *b = NULL;
      GetterRace races[4];
      GThread *threads[G_N_ELEMENTS (races)];
      int go = 0;

      g_assert_true (lsock_stream_new_pair (&a, &b, NULL));
      for (guint i = 0; i < G_N_ELEMENTS (races); i++)
        {
          races[i] = (GetterRace) { .stream = a, .go = &go };
          threads[i] = g_thread_new ("getter", getter_thread, &races[i]);
        }
      g_atomic_int_set (&go, 1);
      for (guint i = 0; i < G_N_ELEMENTS (races); i++)
        {
          g_thread_join (threads[i]);
          g_assert_nonnull (races[i].got);
          g_assert_true (races[i].got == races[0].got);
        }
      g_assert_true (g_io_stream_get_input_stream (G_IO_STREAM (a)) == races[0].got);
      lsock_test_close_and_finalize_stream (&a);
      lsock_test_close_and_finalize_stream (&b);
    }
}

/* The bytes calls hold their direction with no substream made: one made
 * meanwhile is busy too, for every kind of operation, until they are done;
 * and the other way round */
static void
test_pending_lazy_substream (void)
{
  LsockStream *a = NULL;
  LsockStream *b = NULL;
  g_autoptr(GBytes) big = NULL;
  g_autoptr(GInputStream) memory = g_memory_input_stream_new_from_data ("spliced", 7, NULL);
  GAsyncResult *result = NULL;
  g_autoptr(GBytes) r = g_bytes_new_static ("r", 1);
  GAsyncResult *second = NULL;
  Sent sent = { 0 };
  GError *error = NULL;
  char buf[16];
  gsize drained = 0;

  g_assert_true (lsock_stream_new_pair (&a, &b, NULL));

  /* Reading */
  lsock_stream_receive_bytes_async (b, 10, G_PRIORITY_DEFAULT, NULL, lsock_test_store_result, &result);
  g_input_stream_read_async (g_io_stream_get_input_stream (G_IO_STREAM (b)), buf, sizeof buf,
                             G_PRIORITY_DEFAULT, NULL, lsock_test_store_result, &second);
  lsock_test_wait_until (second != NULL);
  g_assert_cmpint (g_input_stream_read_finish (b->input, second, &error), ==, -1);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_PENDING);
  g_clear_error (&error);
  g_clear_object (&second);
  g_assert_true (lsock_stream_send_bytes (a, r, NULL, NULL));
  lsock_test_wait_until (result != NULL);
  {
    g_autoptr(GBytes) got = lsock_stream_receive_bytes_finish (b, result, &error);

    g_assert_no_error (error);
    g_assert_cmpmem (g_bytes_get_data (got, NULL), g_bytes_get_size (got), "r", 1);
  }
  g_clear_object (&result);

  /* The substream's read holds it against the bytes call */
  g_input_stream_read_async (b->input, buf, sizeof buf, G_PRIORITY_DEFAULT, NULL,
                             lsock_test_store_result, &result);
  lsock_stream_receive_bytes_async (b, 10, G_PRIORITY_DEFAULT, NULL, lsock_test_store_result, &second);
  lsock_test_wait_until (second != NULL);
  g_assert_null (lsock_stream_receive_bytes_finish (b, second, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_PENDING);
  g_clear_error (&error);
  g_clear_object (&second);
  g_assert_true (lsock_stream_send_bytes (a, r, NULL, NULL));
  lsock_test_wait_until (result != NULL);
  g_assert_cmpint (g_input_stream_read_finish (b->input, result, &error), ==, 1);
  g_assert_no_error (error);
  g_clear_object (&result);

  /* Writing: more than the socket holds, so that the send waits */
  big = g_bytes_new_take (g_malloc0 (BIG), BIG);
  lsock_stream_send_bytes_async (b, big, G_PRIORITY_DEFAULT, NULL, sent_cb, &sent);
  g_assert_cmpint (g_output_stream_write (g_io_stream_get_output_stream (G_IO_STREAM (b)),
                                          "w", 1, NULL, &error), ==, -1);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_PENDING);
  g_clear_error (&error);
  g_output_stream_write_async (b->output, "w", 1, G_PRIORITY_DEFAULT, NULL,
                               lsock_test_store_result, &second);
  lsock_test_wait_until (second != NULL);
  g_assert_cmpint (g_output_stream_write_finish (b->output, second, &error), ==, -1);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_PENDING);
  g_clear_error (&error);
  g_clear_object (&second);
  /* A splice fails before it reads anything it could not write */
  g_output_stream_splice_async (b->output, memory, G_OUTPUT_STREAM_SPLICE_NONE,
                                G_PRIORITY_DEFAULT, NULL, lsock_test_store_result, &second);
  lsock_test_wait_until (second != NULL);
  g_assert_cmpint (g_output_stream_splice_finish (b->output, second, &error), ==, -1);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_PENDING);
  g_clear_error (&error);
  g_clear_object (&second);
  g_assert_cmpint (g_seekable_tell (G_SEEKABLE (memory)), ==, 0);

  /* Drained, the send completes, and the substream may write. Read on the
   * context too: a blocking read here could wait for the next piece of
   * the send, which only the context writes (on Windows, each piece) */
  while (drained < BIG)
    {
      g_autoptr(GBytes) got = NULL;

      lsock_stream_receive_bytes_async (a, 1 << 20, G_PRIORITY_DEFAULT, NULL,
                                        lsock_test_store_result, &result);
      lsock_test_wait_until (result != NULL);
      got = lsock_stream_receive_bytes_finish (a, result, &error);
      g_assert_no_error (error);
      g_assert_cmpuint (g_bytes_get_size (got), >, 0);
      drained += g_bytes_get_size (got);
      g_clear_object (&result);
    }
  lsock_test_wait_until (sent.done);
  g_assert_cmpuint (drained, ==, BIG);
  g_assert_no_error (sent.error);
  g_assert_cmpint (g_output_stream_write (b->output, "w", 1, NULL, &error), ==, 1);
  g_assert_no_error (error);

  lsock_test_close_and_finalize_stream (&a);
  lsock_test_close_and_finalize_stream (&b);
}

#ifdef G_OS_UNIX
/* An echo started from a receive's callback completes in the same
 * iteration: before an idle of higher priority added at the time (which
 * would run first in the next one), and never inside the call */
typedef struct
{
  LsockStream *stream;
  GSList      *order;
  gboolean     in_call;
  gboolean     early;
} Echo;

static gboolean
idle_cb (gpointer data)
{
  Echo *e = data;

  e->order = g_slist_append (e->order, (gpointer) "idle");
  return G_SOURCE_REMOVE;
}

static void
echo_sent_cb (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  Echo *e = user_data;

  if (e->in_call)
    e->early = TRUE;
  g_assert_true (lsock_stream_send_bytes_finish (LSOCK_STREAM (source), result, NULL));
  e->order = g_slist_append (e->order, (gpointer) "sent");
}

static void
echo_received_cb (GObject      *source,
                  GAsyncResult *result,
                  gpointer      user_data)
{
  Echo *e = user_data;
  g_autoptr(GBytes) got = lsock_stream_receive_bytes_finish (LSOCK_STREAM (source), result, NULL);

  g_assert_nonnull (got);
  e->order = g_slist_append (e->order, (gpointer) "received");
  g_idle_add_full (G_PRIORITY_HIGH, idle_cb, e, NULL);
  e->in_call = TRUE;
  lsock_stream_send_bytes_async (e->stream, got, G_PRIORITY_DEFAULT, NULL, echo_sent_cb, e);
  e->in_call = FALSE;
}

static void
test_same_iteration (void)
{
  LsockStream *a = NULL;
  LsockStream *b = NULL;
  g_autoptr(GBytes) msg = g_bytes_new_static ("ping", 4);
  g_autoptr(GBytes) back = NULL;
  Echo e = { 0 };

  g_assert_true (lsock_stream_new_pair (&a, &b, NULL));
  e.stream = b;
  lsock_stream_receive_bytes_async (b, 10, G_PRIORITY_DEFAULT, NULL, echo_received_cb, &e);
  g_assert_true (lsock_stream_send_bytes (a, msg, NULL, NULL));
  lsock_test_wait_until (g_slist_length (e.order) == 3);

  g_assert_false (e.early);
  g_assert_cmpstr (g_slist_nth_data (e.order, 0), ==, "received");
  g_assert_cmpstr (g_slist_nth_data (e.order, 1), ==, "sent");
  g_assert_cmpstr (g_slist_nth_data (e.order, 2), ==, "idle");
  back = lsock_stream_receive_bytes (a, 10, NULL, NULL);
  g_assert_true (g_bytes_equal (back, msg));

  g_slist_free (e.order);
  lsock_test_close_and_finalize_stream (&a);
  lsock_test_close_and_finalize_stream (&b);
}

/* The same from an accept's callback, and from ::incoming: the request is
 * there, so it is read, the reply sent and both reported in the iteration
 * of the accept (the listener's dispatch runs them once the callback has
 * returned), before an idle of higher priority added meanwhile */
typedef struct
{
  LsockListener *listener;
  Echo           echo;
} AcceptEcho;

static void
accept_echo_start (AcceptEcho  *ae,
                   LsockStream *stream)
{
  ae->echo.stream = stream;
  ae->echo.order = g_slist_append (ae->echo.order, (gpointer) "accepted");
  g_idle_add_full (G_PRIORITY_HIGH, idle_cb, &ae->echo, NULL);
  ae->echo.in_call = TRUE;
  lsock_stream_receive_bytes_async (stream, 10, G_PRIORITY_DEFAULT, NULL, echo_received_cb,
                                    &ae->echo);
  ae->echo.in_call = FALSE;
}

static void
accept_echo_cb (GObject      *source,
                GAsyncResult *result,
                gpointer      user_data)
{
  AcceptEcho *ae = user_data;
  GError *error = NULL;
  LsockStream *stream = lsock_listener_accept_finish (ae->listener, result, &error);

  g_assert_no_error (error);
  accept_echo_start (ae, stream);
}

static void
incoming_echo_cb (LsockListener *listener,
                  LsockStream   *stream,
                  gpointer       user_data)
{
  accept_echo_start (user_data, g_object_ref (stream));
  lsock_listener_stop (listener);
}

static void
test_same_iteration_after_accept (gconstpointer data)
{
  gboolean incoming = GPOINTER_TO_INT (data);
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) msg = g_bytes_new_static ("ping", 4);
  g_autoptr(GBytes) back = NULL;
  LsockName *name = lsock_test_namespaced_name ();
  AcceptEcho ae = { lsock_listener_new (name, &error) };
  LsockStream *client;

  g_assert_no_error (error);
  /* The peer and its request are there before the accept is */
  client = lsock_stream_connect (name, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (lsock_stream_send_bytes (client, msg, NULL, NULL));
  if (incoming)
    {
      g_signal_connect (ae.listener, "incoming", G_CALLBACK (incoming_echo_cb), &ae);
      lsock_listener_start (ae.listener);
    }
  else
    lsock_listener_accept_async (ae.listener, NULL, accept_echo_cb, &ae);
  /* echo_received_cb() adds an idle too */
  lsock_test_wait_until (g_slist_length (ae.echo.order) == 5);

  /* The idle dispatches between the accept and the echo otherwise */
  g_assert_false (ae.echo.early);
  g_assert_cmpstr (g_slist_nth_data (ae.echo.order, 0), ==, "accepted");
  g_assert_cmpstr (g_slist_nth_data (ae.echo.order, 1), ==, "received");
  g_assert_cmpstr (g_slist_nth_data (ae.echo.order, 2), ==, "sent");
  g_assert_cmpstr (g_slist_nth_data (ae.echo.order, 3), ==, "idle");
  g_assert_cmpstr (g_slist_nth_data (ae.echo.order, 4), ==, "idle");
  back = lsock_stream_receive_bytes (client, 10, NULL, NULL);
  g_assert_true (g_bytes_equal (back, msg));

  g_slist_free (ae.echo.order);
  lsock_test_close_and_finalize_stream (&ae.echo.stream);
  lsock_test_close_and_finalize_stream (&client);
  lsock_test_close_and_finalize_listener (&ae.listener);
  g_assert_finalize_object (name);
}

/* A chain of operations that each complete at once, each started from the
 * callback of the one before (a byte at a time of what is already there),
 * cannot keep the context to itself: past the reactor's budget for one
 * dispatch, the rest wait for the next one, and an idle of higher
 * priority added by the first runs in between */
#define CHAIN_LENGTH 1000

typedef struct
{
  guint received;
  guint received_when_idle;  /* 0: the idle has not run */
} Chain;

static gboolean
chain_idle_cb (gpointer user_data)
{
  Chain *c = user_data;

  c->received_when_idle = c->received;
  return G_SOURCE_REMOVE;
}

static void
chain_received_cb (GObject      *source,
                   GAsyncResult *result,
                   gpointer      user_data)
{
  Chain *c = user_data;
  g_autoptr(GBytes) got = lsock_stream_receive_bytes_finish (LSOCK_STREAM (source), result, NULL);

  g_assert_nonnull (got);
  g_assert_cmpuint (g_bytes_get_size (got), ==, 1);
  if (c->received++ == 0)
    g_idle_add_full (G_PRIORITY_HIGH, chain_idle_cb, c, NULL);
  if (c->received < CHAIN_LENGTH)
    lsock_stream_receive_bytes_async (LSOCK_STREAM (source), 1, G_PRIORITY_DEFAULT, NULL,
                                      chain_received_cb, c);
}

static void
test_chain_budget (void)
{
  LsockStream *a = NULL;
  LsockStream *b = NULL;
  g_autoptr(GBytes) all = g_bytes_new_take (g_malloc0 (CHAIN_LENGTH), CHAIN_LENGTH);
  Chain c = { 0 };

  g_assert_true (lsock_stream_new_pair (&a, &b, NULL));
  g_assert_true (lsock_stream_send_bytes (a, all, NULL, NULL));
  lsock_stream_receive_bytes_async (b, 1, G_PRIORITY_DEFAULT, NULL, chain_received_cb, &c);
  lsock_test_wait_until (c.received == CHAIN_LENGTH);

  /* Not before the chain began, and not after it was over */
  g_assert_cmpuint (c.received_when_idle, >, 0);
  g_assert_cmpuint (c.received_when_idle, <, CHAIN_LENGTH);

  lsock_test_close_and_finalize_stream (&a);
  lsock_test_close_and_finalize_stream (&b);
}

/* A callback that runs a main loop of its own until an operation is done:
 * one that another source's callback starts in that loop, or one that the
 * callback itself started just before, and that completes at once. Either
 * is reported in that loop, not held back until the callback returns
 * (which would stall the loop) */
typedef enum
{
  NESTED_FROM_CALLBACK,
  NESTED_FROM_IDLE,
  NESTED_WRITE_ASYNC,  /* the callback's write_async(), reported from the
                        * reactor's next dispatch */
} NestedHow;

typedef struct
{
  LsockStream *stream;
  GBytes      *msg;
  NestedHow    how;
  gboolean     sent;
  gboolean     sent_in_loop;  /* before the loop gave up */
  gboolean     nested_done;
} Nested;

static void
nested_sent_cb (GObject      *source,
                GAsyncResult *result,
                gpointer      user_data)
{
  Nested *n = user_data;

  g_assert_true (lsock_stream_send_bytes_finish (LSOCK_STREAM (source), result, NULL));
  n->sent = TRUE;
}

static void
nested_written_cb (GObject      *source,
                   GAsyncResult *result,
                   gpointer      user_data)
{
  Nested *n = user_data;

  g_assert_cmpint (g_output_stream_write_finish (G_OUTPUT_STREAM (source), result, NULL), ==,
                   (gssize) g_bytes_get_size (n->msg));
  n->sent = TRUE;
}

static gboolean
nested_idle_cb (gpointer user_data)
{
  Nested *n = user_data;

  lsock_stream_send_bytes_async (n->stream, n->msg, G_PRIORITY_DEFAULT, NULL, nested_sent_cb, n);
  return G_SOURCE_REMOVE;
}

static void
nested_received_cb (GObject      *source,
                    GAsyncResult *result,
                    gpointer      user_data)
{
  Nested *n = user_data;
  g_autoptr(GBytes) got = lsock_stream_receive_bytes_finish (LSOCK_STREAM (source), result, NULL);
  gint64 deadline = g_get_monotonic_time () + 5 * G_TIME_SPAN_SECOND;

  g_assert_nonnull (got);
  if (n->how == NESTED_FROM_IDLE)
    g_idle_add (nested_idle_cb, n);
  else if (n->how == NESTED_FROM_CALLBACK)
    lsock_stream_send_bytes_async (n->stream, n->msg, G_PRIORITY_DEFAULT, NULL,
                                   nested_sent_cb, n);
  else
    g_output_stream_write_async (g_io_stream_get_output_stream (G_IO_STREAM (n->stream)),
                                 g_bytes_get_data (n->msg, NULL), g_bytes_get_size (n->msg),
                                 G_PRIORITY_DEFAULT, NULL, nested_written_cb, n);
  while (!n->sent && g_get_monotonic_time () < deadline)
    g_main_context_iteration (NULL, FALSE);
  n->sent_in_loop = n->sent;
  n->nested_done = TRUE;
}

static void
test_nested_loop (gconstpointer data)
{
  LsockStream *a = NULL;
  LsockStream *b = NULL;
  g_autoptr(GBytes) msg = g_bytes_new_static ("nest", 4);
  g_autoptr(GBytes) back = NULL;
  Nested n = { .msg = msg, .how = GPOINTER_TO_INT (data) };

  g_assert_true (lsock_stream_new_pair (&a, &b, NULL));
  n.stream = b;
  lsock_stream_receive_bytes_async (b, 10, G_PRIORITY_DEFAULT, NULL, nested_received_cb, &n);
  g_assert_true (lsock_stream_send_bytes (a, msg, NULL, NULL));
  lsock_test_wait_until (n.nested_done);
  g_assert_true (n.sent_in_loop);
  back = lsock_stream_receive_bytes (a, 10, NULL, NULL);
  g_assert_true (g_bytes_equal (back, msg));

  lsock_test_close_and_finalize_stream (&a);
  lsock_test_close_and_finalize_stream (&b);
}
#endif

int
main (int argc, char **argv)
{
  int ret;

  g_test_init (&argc, &argv, NULL);
  lsock_test_reactor_from_env ();

  g_test_add_func ("/lsock/bytes/big", test_big);
  g_test_add_func ("/lsock/bytes/eof-and-empty", test_eof_and_empty);
  g_test_add_func ("/lsock/bytes/pending-and-cancel", test_pending_and_cancel);
  g_test_add_func ("/lsock/bytes/alive-while-pending", test_alive_while_pending);
  g_test_add_func ("/lsock/bytes/lazy-substreams", test_lazy_substreams);
  g_test_add_func ("/lsock/bytes/lazy-substreams/race", test_lazy_substreams_race);
  g_test_add_func ("/lsock/bytes/lazy-substreams/pending", test_pending_lazy_substream);
#ifdef G_OS_UNIX
  g_test_add_func ("/lsock/bytes/same-iteration", test_same_iteration);
  g_test_add_func ("/lsock/bytes/chain-budget", test_chain_budget);
  g_test_add_data_func ("/lsock/bytes/nested-loop/from-callback",
                        GINT_TO_POINTER (NESTED_FROM_CALLBACK), test_nested_loop);
  g_test_add_data_func ("/lsock/bytes/nested-loop/from-idle",
                        GINT_TO_POINTER (NESTED_FROM_IDLE), test_nested_loop);
  g_test_add_data_func ("/lsock/bytes/nested-loop/write-async",
                        GINT_TO_POINTER (NESTED_WRITE_ASYNC), test_nested_loop);
  g_test_add_data_func ("/lsock/bytes/same-iteration/accept-async", GINT_TO_POINTER (FALSE),
                        test_same_iteration_after_accept);
  g_test_add_data_func ("/lsock/bytes/same-iteration/incoming", GINT_TO_POINTER (TRUE),
                        test_same_iteration_after_accept);
#endif

  ret = g_test_run ();
  lsock_test_cleanup_dirs ();
  return ret;
}
