/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

/* The fast path: lsock_stream_send_bytes*() and _receive_bytes*(). All of
 * the bytes, in order; a fresh result every time, never reported before
 * the call returns, and (on Unix) in the same main loop iteration when
 * started from another lsock operation's callback; the pending flags; the
 * stream alive while one is pending. */

#include "lsock-test-util.h"

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
#ifdef G_OS_UNIX
  g_test_add_func ("/lsock/bytes/same-iteration", test_same_iteration);
#endif

  ret = g_test_run ();
  lsock_test_cleanup_dirs ();
  return ret;
}
