/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

/* The async engine of a stream against what GIO promises: every
 * operation ends, readiness is never guessed (descriptors, urgent data,
 * hang-ups, zero-length reads), results are fresh objects, and a pending
 * operation keeps its stream open. On Unix each test runs on both
 * reactors (epoll and poll); on Windows once, over named pipes. */

#include "lsock-test-util.h"
#include "lsock-listener-private.h"
#include "lsock-stream-private.h"

#include <string.h>
#ifdef G_OS_UNIX
# include "lsock-reactor-private.h"
# include "lsock-unix-conn-private.h"
# include <errno.h>
# include <sys/socket.h>
# include <unistd.h>
#endif

/* How long a wait may take before the test calls it a hang */
#define HANG_MS 10000

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

/* One read_async(), waited for (a hang fails the test) */
static gssize
read_async_wait (LsockStream   *stream,
                 void          *buffer,
                 gsize          count,
                 GCancellable  *cancellable,
                 GError       **error)
{
  GAsyncResult *result = NULL;
  gssize n;

  g_input_stream_read_async (in_of (stream), buffer, count, G_PRIORITY_DEFAULT, cancellable,
                             lsock_test_store_result, &result);
  if (!lsock_test_wait_bounded (result != NULL, HANG_MS))
    g_error ("read_async() did not complete in %d ms", HANG_MS);
  n = g_input_stream_read_finish (in_of (stream), result, error);
  g_object_unref (result);
  return n;
}

/* Reads @len bytes with read_async(), however they come */
static void
read_async_exactly (LsockStream *stream,
                    const char  *expected,
                    gsize        len)
{
  g_autoptr(GString) got = g_string_new (NULL);

  while (got->len < len)
    {
      g_autoptr(GError) error = NULL;
      char buf[256];
      gssize n = read_async_wait (stream, buf, MIN (sizeof buf, len - got->len), NULL, &error);

      g_assert_no_error (error);
      g_assert_cmpint (n, >, 0);
      g_string_append_len (got, buf, n);
    }
  g_assert_cmpmem (got->str, got->len, expected, len);
}

/* ---- the reactors ----------------------------------------------------- */

/* "epoll": every watch on epoll; "polled": an epoll reactor, whose first
 * watches the context polls itself (the default); "poll": the portable
 * reactor */
#ifdef G_OS_UNIX
static int default_polled_max = -1;
#endif

static void
use_reactor (const char *kind)
{
#ifdef G_OS_UNIX
  if (default_polled_max < 0)
    default_polled_max = g_atomic_int_get (&_lsock_reactor_polled_max);
  g_atomic_int_set (&_lsock_reactor_force_poll, g_str_equal (kind, "poll"));
  g_atomic_int_set (&_lsock_reactor_polled_max,
                    g_str_equal (kind, "epoll") ? 0 : default_polled_max);
#endif
}

static gboolean
skip_unless_reactor (const char *kind)
{
#ifdef G_OS_UNIX
# ifndef __linux__
  if (!g_str_equal (kind, "poll"))
    {
      g_test_skip ("No epoll here");
      return TRUE;
    }
# endif
  use_reactor (kind);
#endif
  return FALSE;
}

/* Checks that the stream's async operations ran where the test meant */
static void
assert_reactor (LsockStream *stream,
                const char  *kind)
{
#ifdef G_OS_UNIX
  g_assert_cmpstr (_lsock_unix_conn_peek_reactor_kind (stream->conn), ==,
                   g_str_equal (kind, "polled") ? "epoll" : kind);
#endif
}

static void
pair_open (LsockTestPair *pair)
{
  lsock_test_pair_open (pair, lsock_test_namespaced_name ());
}

static void
pair_close (LsockTestPair *pair)
{
  lsock_test_pair_close (pair);
  use_reactor ("polled");
}

/* ---- readiness -------------------------------------------------------- */

#ifdef G_OS_UNIX
/* Sends @data with @fd attached (SCM_RIGHTS) on the raw socket of @stream */
static void
send_with_fd (LsockStream *stream,
              const char  *data,
              gsize        len,
              int          fd)
{
  char control[CMSG_SPACE (sizeof (int))] = { 0 };
  struct iovec iov = { (void *) data, len };
  struct msghdr msg = {
    .msg_iov = &iov,
    .msg_iovlen = 1,
    .msg_control = control,
    .msg_controllen = sizeof control,
  };
  struct cmsghdr *cmsg = CMSG_FIRSTHDR (&msg);

  cmsg->cmsg_level = SOL_SOCKET;
  cmsg->cmsg_type = SCM_RIGHTS;
  cmsg->cmsg_len = CMSG_LEN (sizeof (int));
  memcpy (CMSG_DATA (cmsg), &fd, sizeof fd);
  g_assert_cmpint (sendmsg (_lsock_unix_conn_peek_fd (stream->conn), &msg, MSG_NOSIGNAL),
                   ==, (gssize) len);
}
#endif

/* A message carrying a descriptor ends a recv() short, with the next bytes
 * already queued: the next read_async() must find them, not wait for an
 * edge that has come and gone. With @waiting, the first read waits before
 * they come: the reactor then reports input level-triggered, and lsock
 * waits for its report after a short read rather than try again; the
 * report must come for the bytes behind the descriptor, which came with
 * the same edge. */
static void
after_fd_message (const char *kind,
                  gboolean    waiting)
{
#ifdef G_OS_UNIX
  int fds_before = lsock_test_settled_fd_count ();
  g_autoptr(GError) error = NULL;
  LsockTestPair pair = { 0 };
  char buf[64];
  int pipe_fds[2];
  gssize n;

  if (skip_unless_reactor (kind))
    return;
  pair_open (&pair);
  g_assert_no_errno (pipe (pipe_fds));

  for (int round = 0; round < 20; round++)
    {
      GAsyncResult *result = NULL;

      if (waiting)
        {
          g_input_stream_read_async (in_of (pair.server), buf, sizeof buf, G_PRIORITY_DEFAULT,
                                     NULL, lsock_test_store_result, &result);
          lsock_test_drain_main_context ();
          g_assert_null (result);
        }
      send_with_fd (pair.client, "AAAA", 4, pipe_fds[0]);
      send_all (pair.client, "BBBB", 4);

      if (waiting)
        {
          if (!lsock_test_wait_bounded (result != NULL, HANG_MS))
            g_error ("read_async() did not complete in %d ms", HANG_MS);
          n = g_input_stream_read_finish (in_of (pair.server), result, &error);
          g_clear_object (&result);
        }
      else
        n = read_async_wait (pair.server, buf, sizeof buf, NULL, &error);
      g_assert_no_error (error);
      g_assert_cmpmem (buf, n, "AAAA", 4);
      /* Short, with "BBBB" queued behind the descriptor, which the kernel
       * dropped (nobody asked for it) */
      n = read_async_wait (pair.server, buf, sizeof buf, NULL, &error);
      g_assert_no_error (error);
      g_assert_cmpmem (buf, n, "BBBB", 4);
    }
  assert_reactor (pair.server, kind);

  close (pipe_fds[0]);
  close (pipe_fds[1]);
  pair_close (&pair);
  lsock_test_assert_fd_count (fds_before);
#else
  g_test_skip ("Descriptor passing is Unix-only");
#endif
}

static void
test_after_fd_message (gconstpointer data)
{
  after_fd_message (data, FALSE);
}

static void
test_after_fd_message_waiting (gconstpointer data)
{
  after_fd_message (data, TRUE);
}

/* ---- a reactor that grows and shrinks ------------------------------------ */

#ifdef G_OS_UNIX
#define N_SPREAD 6

typedef struct
{
  LsockTestPair  pairs[N_SPREAD];
  GAsyncResult  *results[N_SPREAD];
  char           bufs[N_SPREAD][16];
} Spread;

static void
spread_start_read (Spread *spread,
                   guint   i)
{
  g_assert_null (spread->results[i]);
  g_input_stream_read_async (in_of (spread->pairs[i].server), spread->bufs[i],
                             sizeof spread->bufs[i], G_PRIORITY_DEFAULT, NULL,
                             lsock_test_store_result, &spread->results[i]);
}

/* Waits for the reads of @first to @last, each of which must bring what
 * spread_send() sent */
static void
spread_finish_reads (Spread *spread,
                     guint   first,
                     guint   last)
{
  for (guint i = first; i <= last; i++)
    {
      g_autoptr(GError) error = NULL;
      g_autofree char *expected = g_strdup_printf ("to %u", i);
      gssize n;

      if (!lsock_test_wait_bounded (spread->results[i] != NULL, HANG_MS))
        g_error ("the read of connection %u did not complete in %d ms", i, HANG_MS);
      n = g_input_stream_read_finish (in_of (spread->pairs[i].server), spread->results[i], &error);
      g_assert_no_error (error);
      g_assert_cmpmem (spread->bufs[i], n, expected, strlen (expected));
      g_clear_object (&spread->results[i]);
    }
}

static void
spread_send (Spread *spread,
             guint   i)
{
  g_autofree char *data = g_strdup_printf ("to %u", i);

  send_all (spread->pairs[i].client, data, strlen (data));
}

/* Whether the context polls connection @i itself, as it should on the
 * reactor @kind, with few watches or not */
static void
spread_assert_polled (Spread     *spread,
                      guint       i,
                      const char *kind,
                      gboolean    polled_if_few)
{
  gboolean expected = g_str_equal (kind, "poll") ||
                      (g_str_equal (kind, "polled") && polled_if_few);

  g_assert_cmpint (_lsock_unix_conn_peek_polled (spread->pairs[i].server->conn), ==, expected);
}
#endif

/* An epoll reactor whose context polls its first few watches puts them
 * all on epoll once it has more, and back once it is down to half: with
 * reads waiting, and with input that came before the move and was not
 * reported yet, nothing may be lost either way */
static void
test_spread (gconstpointer data)
{
#ifdef G_OS_UNIX
  const char *kind = data;
  int fds_before = lsock_test_settled_fd_count ();
  Spread spread = { 0 };

  if (skip_unless_reactor (kind))
    return;
  /* What the numbers below are for */
  if (g_str_equal (kind, "polled"))
    g_assert_cmpint (g_atomic_int_get (&_lsock_reactor_polled_max), ==, 4);
  for (guint i = 0; i < N_SPREAD; i++)
    pair_open (&spread.pairs[i]);

  /* The first four, polled: two wait with nothing to read, two have
   * input the context has not reported yet when the fifth comes */
  for (guint i = 0; i < 4; i++)
    spread_start_read (&spread, i);
  for (guint i = 0; i < 4; i++)
    spread_assert_polled (&spread, i, kind, TRUE);
  spread_send (&spread, 2);
  spread_send (&spread, 3);

  /* The fifth: all on epoll */
  spread_start_read (&spread, 4);
  for (guint i = 0; i < 5; i++)
    spread_assert_polled (&spread, i, kind, FALSE);
  spread_finish_reads (&spread, 2, 3);
  for (guint i = 0; i < 5; i++)
    if (i != 2 && i != 3)
      spread_send (&spread, i);
  spread_finish_reads (&spread, 0, 1);
  spread_finish_reads (&spread, 4, 4);

  /* A sixth joins epoll at once */
  spread_start_read (&spread, 5);
  spread_assert_polled (&spread, 5, kind, FALSE);
  spread_send (&spread, 5);
  spread_finish_reads (&spread, 5, 5);

  /* Down to three: still on epoll */
  for (guint i = N_SPREAD - 1; i >= 3; i--)
    lsock_test_pair_close (&spread.pairs[i]);
  for (guint i = 0; i < 3; i++)
    spread_assert_polled (&spread, i, kind, FALSE);

  /* Then to two, with a read waiting on each, one of which has input
   * that epoll has not reported yet: back to polled */
  for (guint i = 0; i < 2; i++)
    spread_start_read (&spread, i);
  spread_send (&spread, 1);
  g_assert_true (g_io_stream_close (G_IO_STREAM (spread.pairs[2].server), NULL, NULL));
  for (guint i = 0; i < 2; i++)
    spread_assert_polled (&spread, i, kind, TRUE);
  spread_finish_reads (&spread, 1, 1);
  spread_send (&spread, 0);
  spread_finish_reads (&spread, 0, 0);
  lsock_test_pair_close (&spread.pairs[2]);

  /* And it goes on working there */
  for (guint i = 0; i < 2; i++)
    {
      spread_start_read (&spread, i);
      spread_send (&spread, i);
    }
  spread_finish_reads (&spread, 0, 1);

  for (guint i = 0; i < 2; i++)
    lsock_test_pair_close (&spread.pairs[i]);
  use_reactor ("polled");
  lsock_test_assert_fd_count (fds_before);
#else
  g_test_skip ("No reactor of lsock's own here");
#endif
}

static void
splice_done_cb (GObject      *source,
                GAsyncResult *result,
                gpointer      user_data)
{
  g_autoptr(GError) error = NULL;
  gssize *spliced = user_data;

  *spliced = g_output_stream_splice_finish (G_OUTPUT_STREAM (source), result, &error);
  g_assert_no_error (error);
}

/* examples/echo-server.c: splicing a stream to itself echoes everything,
 * messages with descriptors included */
static void
test_splice_after_fd_message (gconstpointer data)
{
#ifdef G_OS_UNIX
  const char *kind = data;
  LsockTestPair pair = { 0 };
  gssize spliced = -2;
  char buf[64];
  int pipe_fds[2];
  gsize got = 0;

  if (skip_unless_reactor (kind))
    return;
  pair_open (&pair);
  g_assert_no_errno (pipe (pipe_fds));

  g_output_stream_splice_async (out_of (pair.server), in_of (pair.server),
                                G_OUTPUT_STREAM_SPLICE_NONE, G_PRIORITY_DEFAULT, NULL,
                                splice_done_cb, &spliced);
  for (int round = 0; round < 10; round++)
    {
      send_with_fd (pair.client, "AAAA", 4, pipe_fds[0]);
      send_all (pair.client, "BBBB", 4);
      got = 0;
      while (got < 8)
        {
          GAsyncResult *result = NULL;
          g_autoptr(GError) error = NULL;
          gssize n;

          /* The client's read is async too, so the server side can run */
          g_input_stream_read_async (in_of (pair.client), buf + got, sizeof buf - got,
                                     G_PRIORITY_DEFAULT, NULL, lsock_test_store_result, &result);
          if (!lsock_test_wait_bounded (result != NULL, HANG_MS))
            g_error ("The echo stalled after %" G_GSIZE_FORMAT " bytes of round %d", got, round);
          n = g_input_stream_read_finish (in_of (pair.client), result, &error);
          g_object_unref (result);
          g_assert_no_error (error);
          g_assert_cmpint (n, >, 0);
          got += n;
        }
      g_assert_cmpmem (buf, got, "AAAABBBB", 8);
    }
  assert_reactor (pair.server, kind);

  g_assert_true (lsock_stream_shutdown (pair.client, FALSE, TRUE, NULL));
  g_assert_true (lsock_test_wait_bounded (spliced != -2, HANG_MS));
  g_assert_cmpint (spliced, ==, 80);

  close (pipe_fds[0]);
  close (pipe_fds[1]);
  pair_close (&pair);
#else
  g_test_skip ("Descriptor passing is Unix-only");
#endif
}

/* Urgent data: recv() stops at its mark with more queued behind it */
static void
test_urgent_data (gconstpointer data)
{
#ifdef G_OS_UNIX
  const char *kind = data;
  LsockTestPair pair = { 0 };

  if (skip_unless_reactor (kind))
    return;
  pair_open (&pair);

  send_all (pair.client, "r", 1);
  read_async_exactly (pair.server, "r", 1);
  for (int round = 0; round < 10; round++)
    {
      send_all (pair.client, "abc", 3);
      if (send (_lsock_unix_conn_peek_fd (pair.client->conn), "X", 1, MSG_OOB) != 1)
        {
          g_test_skip_printf ("No urgent data on Unix sockets here: %s", g_strerror (errno));
          pair_close (&pair);
          return;
        }
      send_all (pair.client, "def", 3);
      /* The urgent byte is not part of the stream */
      read_async_exactly (pair.server, "abcdef", 6);
    }
  assert_reactor (pair.server, kind);
  pair_close (&pair);
#else
  g_test_skip ("MSG_OOB is Unix-only");
#endif
}

/* After the peer's data and hang-up, every read says end of stream, at
 * once */
static void
test_hang_up (gconstpointer data)
{
  const char *kind = data;
  g_autoptr(GError) error = NULL;
  LsockTestPair pair = { 0 };
  char buf[16];

  if (skip_unless_reactor (kind))
    return;
  pair_open (&pair);

  send_all (pair.client, "x", 1);
  read_async_exactly (pair.server, "x", 1);
  /* A read waits, then the peer writes and goes */
  send_all (pair.client, "yz", 2);
  lsock_test_close_and_finalize_stream (&pair.client);
  read_async_exactly (pair.server, "yz", 2);
  for (int i = 0; i < 3; i++)
    {
      g_assert_cmpint (read_async_wait (pair.server, buf, sizeof buf, NULL, &error), ==, 0);
      g_assert_no_error (error);
    }
  assert_reactor (pair.server, kind);
  pair_close (&pair);
}

/* Iterates the thread-default context until an iteration dispatches
 * nothing; fails if that takes more than a few (a watch that wakes the
 * context in every iteration) */
static void
assert_goes_quiet (const char *what)
{
  for (int i = 0; i < 4; i++)
    if (!g_main_context_iteration (NULL, FALSE))
      return;
  g_error ("The context keeps waking up %s", what);
}

/* Input that nobody waits for, then a hang-up nobody reads, are told at
 * most once: the context goes quiet (poll() reports a hang-up whatever it
 * is asked for), and a later read finds both */
static void
test_quiet_when_unwanted (gconstpointer data)
{
  const char *kind = data;
  g_autoptr(GError) error = NULL;
  LsockTestPair pair = { 0 };
  char buf[16];

  if (skip_unless_reactor (kind))
    return;
  pair_open (&pair);

  send_all (pair.client, "a", 1);
  read_async_exactly (pair.server, "a", 1);
  for (int round = 0; round < 3; round++)
    {
      GAsyncResult *result = NULL;

      /* Nothing wanted since the last read: told once at most */
      send_all (pair.client, "b", 1);
      assert_goes_quiet ("for input nobody waits for");
      read_async_exactly (pair.server, "b", 1);

      /* A read that has to wait wakes for the next input */
      g_input_stream_read_async (in_of (pair.server), buf, sizeof buf, G_PRIORITY_DEFAULT,
                                 NULL, lsock_test_store_result, &result);
      lsock_test_drain_main_context ();
      g_assert_null (result);
      send_all (pair.client, "e", 1);
      g_assert_true (lsock_test_wait_bounded (result != NULL, HANG_MS));
      g_assert_cmpint (g_input_stream_read_finish (in_of (pair.server), result, &error), ==, 1);
      g_assert_no_error (error);
      g_assert_cmpint (buf[0], ==, 'e');
      g_clear_object (&result);
    }

  send_all (pair.client, "cd", 2);
  /* Not lsock_test_close_and_finalize_stream(): its drain would spin */
  g_io_stream_close (G_IO_STREAM (pair.client), NULL, NULL);
  g_object_add_weak_pointer (G_OBJECT (pair.client), (gpointer *) &pair.client);
  g_object_unref (pair.client);
  assert_goes_quiet ("for a hang-up nobody reads");
  g_assert_null (pair.client);
  read_async_exactly (pair.server, "cd", 2);
  g_assert_cmpint (read_async_wait (pair.server, buf, sizeof buf, NULL, &error), ==, 0);
  g_assert_no_error (error);

  assert_reactor (pair.server, kind);
  pair_close (&pair);
}

/* A zero-length read returns 0 at once and takes nothing; a peer's
 * zero-length write is nothing at all (no false end of stream) */
static void
test_zero_length (gconstpointer data)
{
  const char *kind = data;
  g_autoptr(GError) error = NULL;
  GAsyncResult *result = NULL;
  LsockTestPair pair = { 0 };
  char buf[16];
  gsize written;

  if (skip_unless_reactor (kind))
    return;
  pair_open (&pair);

  send_all (pair.client, "q", 1);
  g_assert_cmpint (read_async_wait (pair.server, buf, 0, NULL, &error), ==, 0);
  g_assert_no_error (error);
  read_async_exactly (pair.server, "q", 1);

  g_input_stream_read_async (in_of (pair.server), buf, sizeof buf, G_PRIORITY_DEFAULT, NULL,
                             lsock_test_store_result, &result);
  g_assert_true (g_output_stream_write_all (out_of (pair.client), "", 0, &written, NULL, &error));
  g_assert_no_error (error);
  lsock_test_drain_main_context ();
  g_assert_null (result);
  send_all (pair.client, "w", 1);
  g_assert_true (lsock_test_wait_bounded (result != NULL, HANG_MS));
  g_assert_cmpint (g_input_stream_read_finish (in_of (pair.server), result, &error), ==, 1);
  g_assert_no_error (error);
  g_assert_cmpint (buf[0], ==, 'w');
  g_clear_object (&result);

  assert_reactor (pair.server, kind);
  pair_close (&pair);
}

typedef struct
{
  LsockStream *server;
  char         buf[8];
  gboolean     in_read_cb;
  gboolean     in_write_call;
  guint        n_inside;   /* write callbacks that ran inside either */
  gssize       written;
  gboolean     done;
} ReplyLog;

static void
reply_written_cb (GObject      *source,
                  GAsyncResult *result,
                  gpointer      user_data)
{
  ReplyLog *log = user_data;
  g_autoptr(GError) error = NULL;

  if (log->in_read_cb || log->in_write_call)
    log->n_inside++;
  log->written = g_output_stream_write_finish (G_OUTPUT_STREAM (source), result, &error);
  g_assert_no_error (error);
  log->done = TRUE;
}

static void
reply_write (ReplyLog *log,
             gsize     count)
{
  log->in_write_call = TRUE;
  g_output_stream_write_async (out_of (log->server), log->buf, count, G_PRIORITY_DEFAULT, NULL,
                               reply_written_cb, log);
  log->in_write_call = FALSE;
}

static void
request_read_cb (GObject      *source,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  ReplyLog *log = user_data;
  g_autoptr(GError) error = NULL;
  gssize n;

  log->in_read_cb = TRUE;
  n = g_input_stream_read_finish (G_INPUT_STREAM (source), result, &error);
  g_assert_no_error (error);
  g_assert_cmpint (n, ==, 4);
  /* The socket has room: the write is done at once, and reported later
   * (from the reactor's next dispatch), never inside this callback */
  reply_write (log, n);
  log->in_read_cb = FALSE;
}

/* write_async() that completes at once, started from a read's callback
 * (the echo server's reply) and from outside any callback: reported once,
 * whole, after the call and the callback around it returned */
static void
test_write_async_at_once (gconstpointer data)
{
  const char *kind = data;
  LsockTestPair pair = { 0 };
  ReplyLog log = { 0 };

  if (skip_unless_reactor (kind))
    return;
  pair_open (&pair);
  log.server = pair.server;

  g_input_stream_read_async (in_of (pair.server), log.buf, 4, G_PRIORITY_DEFAULT, NULL,
                             request_read_cb, &log);
  send_all (pair.client, "ping", 4);
  g_assert_true (lsock_test_wait_bounded (log.done, HANG_MS));
  g_assert_cmpint (log.written, ==, 4);
  read_async_exactly (pair.client, "ping", 4);

  memcpy (log.buf, "pong", 4);
  log.done = FALSE;
  reply_write (&log, 4);
  g_assert_false (log.done);
  g_assert_true (lsock_test_wait_bounded (log.done, HANG_MS));
  g_assert_cmpint (log.written, ==, 4);
  read_async_exactly (pair.client, "pong", 4);
  g_assert_cmpuint (log.n_inside, ==, 0);

  assert_reactor (pair.server, kind);
  pair_close (&pair);
}

/* A read that waited and was cancelled (or timed out) leaves the stream
 * as it was: data that comes after, while nothing waits, is found */
static void
test_abort_then_data (gconstpointer data)
{
  const char *kind = data;
  g_autoptr(GError) error = NULL;
  LsockTestPair pair = { 0 };
  char buf[16];

  if (skip_unless_reactor (kind))
    return;
  pair_open (&pair);

  for (int round = 0; round < 3; round++)
    {
      GCancellable *cancellable = g_cancellable_new ();
      GAsyncResult *result = NULL;

      g_input_stream_read_async (in_of (pair.server), buf, sizeof buf, G_PRIORITY_DEFAULT,
                                 cancellable, lsock_test_store_result, &result);
      lsock_test_drain_main_context ();
      g_cancellable_cancel (cancellable);
      g_assert_true (lsock_test_wait_bounded (result != NULL, HANG_MS));
      g_assert_cmpint (g_input_stream_read_finish (in_of (pair.server), result, &error), ==, -1);
      g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
      g_clear_error (&error);
      g_clear_object (&result);
      g_object_unref (cancellable);

      /* The data's edge is seen while no operation waits */
      send_all (pair.client, "c", 1);
      lsock_test_drain_main_context ();
      read_async_exactly (pair.server, "c", 1);
    }

  lsock_stream_set_timeout (pair.server, 20);
  g_assert_cmpint (read_async_wait (pair.server, buf, sizeof buf, NULL, &error), ==, -1);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
  g_clear_error (&error);
  lsock_stream_set_timeout (pair.server, 0);
  send_all (pair.client, "t", 1);
  lsock_test_drain_main_context ();
  read_async_exactly (pair.server, "t", 1);

  assert_reactor (pair.server, kind);
  pair_close (&pair);
}

/* Operations at another priority go to a reactor of their own, beside
 * the default one, on the same connection */
static void
test_priorities (gconstpointer data)
{
  const char *kind = data;
  g_autoptr(GError) error = NULL;
  GAsyncResult *high = NULL;
  GAsyncResult *low = NULL;
  LsockTestPair pair = { 0 };
  char buf[16];

  if (skip_unless_reactor (kind))
    return;
  pair_open (&pair);

  g_input_stream_read_async (in_of (pair.server), buf, sizeof buf, G_PRIORITY_HIGH, NULL,
                             lsock_test_store_result, &high);
  g_output_stream_write_async (out_of (pair.server), "low", 3, G_PRIORITY_LOW, NULL,
                               lsock_test_store_result, &low);
  send_all (pair.client, "hi", 2);
  g_assert_true (lsock_test_wait_bounded (high != NULL && low != NULL, HANG_MS));
  g_assert_cmpint (g_input_stream_read_finish (in_of (pair.server), high, &error), ==, 2);
  g_assert_no_error (error);
  g_assert_cmpint (g_output_stream_write_finish (out_of (pair.server), low, &error), ==, 3);
  g_assert_no_error (error);
  g_clear_object (&high);
  g_clear_object (&low);
  read_async_exactly (pair.client, "low", 3);

  assert_reactor (pair.server, kind);
  pair_close (&pair);
}

/* ---- results ---------------------------------------------------------- */

typedef struct
{
  GAsyncResult *kept;
  GObject      *source;
  gpointer      user_data;
  gboolean      had_tag;
  guint         n_calls;
} ResultLog;

static void
keep_result_cb (GObject      *source,
                GAsyncResult *result,
                gpointer      user_data)
{
  ResultLog *log = user_data;

  log->n_calls++;
  /* Data set by an earlier callback on its result is not here */
  g_assert_null (g_object_get_data (G_OBJECT (result), "lsock-test"));
  g_object_set_data (G_OBJECT (result), "lsock-test", log);
  g_assert_null (log->kept);
  log->kept = g_object_ref (result);
}


static void
weak_notify_cb (gpointer  data,
                GObject  *where_the_object_was)
{
  (*(int *) data)++;
}

typedef struct
{
  int      finalized;
  gboolean done;
} MarkLog;

/* Marks its result and lets go of it: the mark must not be seen again,
 * and the result must be finalized once the callback returns */
static void
mark_and_drop_cb (GObject      *source,
                  GAsyncResult *result,
                  gpointer      user_data)
{
  MarkLog *log = user_data;
  g_autoptr(GError) error = NULL;

  g_assert_null (g_object_get_data (G_OBJECT (result), "lsock-test-mark"));
  g_object_set_data (G_OBJECT (result), "lsock-test-mark", log);
  g_object_weak_ref (G_OBJECT (result), weak_notify_cb, &log->finalized);
  g_assert_cmpint (g_input_stream_read_finish (G_INPUT_STREAM (source), result, &error), ==, 1);
  g_assert_no_error (error);
  log->done = TRUE;
}

/* Each read gets a new result, whose source object and user data stay
 * with it while the caller keeps it, and nobody else ever sees it again;
 * a result the caller lets go of is finalized */
static void
test_results_fresh (gconstpointer data)
{
  const char *kind = data;
  g_autoptr(GError) error = NULL;
  LsockTestPair pair = { 0 };
  ResultLog first = { 0 };
  ResultLog second = { 0 };
  GAsyncResult *third = NULL;
  int finalized = 0;
  char buf[16];

  if (skip_unless_reactor (kind))
    return;
  pair_open (&pair);

  /* Results the callback does not keep are finalized, not reused */
  for (int round = 1; round <= 3; round++)
    {
      MarkLog mark = { 0 };

      g_input_stream_read_async (in_of (pair.server), buf, sizeof buf, G_PRIORITY_DEFAULT, NULL,
                                 mark_and_drop_cb, &mark);
      send_all (pair.client, "m", 1);
      g_assert_true (lsock_test_wait_bounded (mark.done, HANG_MS));
      lsock_test_drain_main_context ();
      g_assert_cmpint (mark.finalized, ==, 1);
    }

  g_input_stream_read_async (in_of (pair.server), buf, sizeof buf, G_PRIORITY_DEFAULT, NULL,
                             keep_result_cb, &first);
  send_all (pair.client, "1", 1);
  g_assert_true (lsock_test_wait_bounded (first.kept != NULL, HANG_MS));
  g_assert_cmpint (g_input_stream_read_finish (in_of (pair.server), first.kept, &error), ==, 1);
  g_assert_no_error (error);

  g_input_stream_read_async (in_of (pair.server), buf, sizeof buf, G_PRIORITY_DEFAULT, NULL,
                             keep_result_cb, &second);
  send_all (pair.client, "2", 1);
  g_assert_true (lsock_test_wait_bounded (second.kept != NULL, HANG_MS));
  g_assert_true (second.kept != first.kept);
  g_assert_true (g_object_get_data (G_OBJECT (second.kept), "lsock-test") == &second);
  g_assert_true (g_object_get_data (G_OBJECT (first.kept), "lsock-test") == &first);
  g_assert_cmpint (g_input_stream_read_finish (in_of (pair.server), second.kept, &error), ==, 1);
  g_assert_no_error (error);

  /* Kept results still know where they came from */
  first.source = g_async_result_get_source_object (first.kept);
  g_assert_true (first.source == G_OBJECT (in_of (pair.server)));
  g_clear_object (&first.source);
  g_assert_true (g_async_result_get_user_data (first.kept) == &first);
  g_assert_true (G_IS_ASYNC_RESULT (first.kept));
#ifdef G_OS_UNIX
  g_assert_true (LSOCK_IS_ASYNC_RESULT (first.kept));
#endif

  /* A result let go of is finalized */
  g_object_weak_ref (G_OBJECT (first.kept), weak_notify_cb, &finalized);
  g_clear_object (&first.kept);
  g_assert_cmpint (finalized, ==, 1);

  /* Finishing with another stream's result is a programmer error */
  g_input_stream_read_async (in_of (pair.client), buf, sizeof buf, G_PRIORITY_DEFAULT, NULL,
                             lsock_test_store_result, &third);
  send_all (pair.server, "3", 1);
  g_assert_true (lsock_test_wait_bounded (third != NULL, HANG_MS));
#ifdef G_OS_UNIX
  g_test_expect_message ("Lsock", G_LOG_LEVEL_CRITICAL, "*assertion*failed*");
  g_assert_cmpint (g_input_stream_read_finish (in_of (pair.server), third, &error), ==, -1);
  g_test_assert_expected_messages ();
  g_assert_no_error (error);
#endif
  g_assert_cmpint (g_input_stream_read_finish (in_of (pair.client), third, &error), ==, 1);
  g_assert_no_error (error);
  g_clear_object (&third);

  g_assert_cmpuint (first.n_calls, ==, 1);
  g_assert_cmpuint (second.n_calls, ==, 1);
  g_clear_object (&second.kept);
  assert_reactor (pair.server, kind);
  pair_close (&pair);
}

/* ---- lifetimes -------------------------------------------------------- */

typedef struct
{
  char      buf[16];
  gssize    n;
  GError   *error;
  gboolean  done;
} ReadLog;

static void
read_log_cb (GObject      *source,
             GAsyncResult *result,
             gpointer      user_data)
{
  ReadLog *log = user_data;

  log->n = g_input_stream_read_finish (G_INPUT_STREAM (source), result, &log->error);
  log->done = TRUE;
}

/* The caller drops the stream while a read is pending: as with a
 * GSocketConnection, the read completes with the data, and the connection
 * closes once nothing holds it */
static void
test_pending_read_keeps_open (gconstpointer data)
{
  const char *kind = data;
  int fds_before = lsock_test_settled_fd_count ();
  g_autoptr(GError) error = NULL;
  LsockTestPair pair = { 0 };
  ReadLog log = { 0 };
  GInputStream *input;
  GWeakRef weak;
  char buf[4];

  if (skip_unless_reactor (kind))
    return;
  pair_open (&pair);

  input = in_of (pair.server);
  g_weak_ref_init (&weak, pair.server);
  g_input_stream_read_async (input, log.buf, sizeof log.buf, G_PRIORITY_DEFAULT, NULL,
                             read_log_cb, &log);
  lsock_test_drain_main_context ();
  g_assert_false (log.done);
  /* The last reference to the GIOStream goes */
  g_clear_object (&pair.server);

  send_all (pair.client, "late", 4);
  g_assert_true (lsock_test_wait_bounded (log.done, HANG_MS));
  g_assert_no_error (log.error);
  g_assert_cmpmem (log.buf, log.n, "late", 4);

  /* Nothing holds it now: the client sees it closed */
  lsock_test_drain_main_context ();
  g_assert_null (g_weak_ref_get (&weak));
  g_weak_ref_clear (&weak);
  g_assert_cmpint (g_input_stream_read (in_of (pair.client), buf, sizeof buf, NULL, &error), ==, 0);
  g_assert_no_error (error);

  pair_close (&pair);
  lsock_test_assert_fd_count (fds_before);
}

/* The echo server of the README: splice, and drop the stream at once */
static void
test_pending_splice_keeps_open (gconstpointer data)
{
  const char *kind = data;
  int fds_before = lsock_test_settled_fd_count ();
  g_autoptr(GError) error = NULL;
  LsockTestPair pair = { 0 };
  gssize spliced = -2;
  char buf[4];

  if (skip_unless_reactor (kind))
    return;
  pair_open (&pair);

  g_output_stream_splice_async (out_of (pair.server), in_of (pair.server),
                                G_OUTPUT_STREAM_SPLICE_NONE, G_PRIORITY_DEFAULT, NULL,
                                splice_done_cb, &spliced);
  g_clear_object (&pair.server);
  lsock_test_drain_main_context ();

  for (int round = 0; round < 5; round++)
    {
      send_all (pair.client, "echo", 4);
      read_async_exactly (pair.client, "echo", 4);
    }
#ifdef G_OS_UNIX
  g_assert_true (lsock_stream_shutdown (pair.client, FALSE, TRUE, NULL));
  g_assert_true (lsock_test_wait_bounded (spliced != -2, HANG_MS));
  g_assert_cmpint (spliced, ==, 20);
  lsock_test_drain_main_context ();
  g_assert_cmpint (g_input_stream_read (in_of (pair.client), buf, sizeof buf, NULL, &error), ==, 0);
  g_assert_no_error (error);
#else
  /* Named pipes have no half-close: the splice ends with the client */
  (void) buf;
  lsock_test_close_and_finalize_stream (&pair.client);
  g_assert_true (lsock_test_wait_bounded (spliced != -2, HANG_MS));
  g_assert_cmpint (spliced, ==, 20);
#endif

  pair_close (&pair);
  lsock_test_assert_fd_count (fds_before);
}

/* Closing the stream while a read waits ends the read (CLOSED), in its
 * context, never from inside close() */
static void
test_close_ends_pending (gconstpointer data)
{
  const char *kind = data;
  LsockTestPair pair = { 0 };
  ReadLog log = { 0 };

  if (skip_unless_reactor (kind))
    return;
  pair_open (&pair);

  g_input_stream_read_async (in_of (pair.server), log.buf, sizeof log.buf, G_PRIORITY_DEFAULT,
                             NULL, read_log_cb, &log);
  lsock_test_drain_main_context ();
  g_assert_true (g_io_stream_close (G_IO_STREAM (pair.server), NULL, NULL));
  g_assert_false (log.done);
  g_assert_true (lsock_test_wait_bounded (log.done, HANG_MS));
  g_assert_error (log.error, G_IO_ERROR, G_IO_ERROR_CLOSED);
  g_clear_error (&log.error);

  /* And later operations say so too */
  log.done = FALSE;
  g_input_stream_read_async (in_of (pair.server), log.buf, sizeof log.buf, G_PRIORITY_DEFAULT,
                             NULL, read_log_cb, &log);
  g_assert_true (lsock_test_wait_bounded (log.done, HANG_MS));
  g_assert_error (log.error, G_IO_ERROR, G_IO_ERROR_CLOSED);
  g_clear_error (&log.error);

  pair_close (&pair);
}

/* ---- splice ----------------------------------------------------------- */

#define SPLICE_SIZE (3 * 1024 * 1024 + 13)

typedef struct
{
  gboolean done;
  gssize   n;
  GError  *error;
} SpliceLog;

static void
splice_log_cb (GObject      *source,
               GAsyncResult *result,
               gpointer      user_data)
{
  SpliceLog *log = user_data;

  log->n = g_output_stream_splice_finish (G_OUTPUT_STREAM (source), result, &log->error);
  log->done = TRUE;
}

/* Writes SPLICE_SIZE bytes of the pattern in uneven pieces, then closes */
static gpointer
splice_writer (gpointer data)
{
  LsockStream *stream = data;
  g_autofree guint8 *buf = g_malloc (SPLICE_SIZE);
  gsize off = 0;

  lsock_test_fill_pattern (buf, 0, SPLICE_SIZE, 7);
  while (off < SPLICE_SIZE)
    {
      g_autoptr(GError) error = NULL;
      gsize n = MIN (100 * 1024 + 7, SPLICE_SIZE - off);

      g_assert_true (g_output_stream_write_all (out_of (stream), buf + off, n, NULL, NULL, &error));
      g_assert_no_error (error);
      off += n;
    }
  g_assert_true (g_io_stream_close (G_IO_STREAM (stream), NULL, NULL));
  return NULL;
}

/* Reads exactly SPLICE_SIZE bytes and checks them */
static gpointer
splice_reader (gpointer data)
{
  LsockStream *stream = data;
  g_autofree guint8 *buf = g_malloc (SPLICE_SIZE);
  g_autoptr(GError) error = NULL;
  gsize n = 0;

  g_assert_true (g_input_stream_read_all (in_of (stream), buf, SPLICE_SIZE, &n, NULL, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (n, ==, SPLICE_SIZE);
  lsock_test_assert_pattern (buf, 0, SPLICE_SIZE, 7);
  return NULL;
}

/* From one connection to another, with each flag: every byte arrives, in
 * order, the count is right, and only what the flags say is closed */
static void
test_splice_between (gconstpointer data)
{
  const char *kind = data;
  GOutputStreamSpliceFlags flags[] = {
    G_OUTPUT_STREAM_SPLICE_NONE,
    G_OUTPUT_STREAM_SPLICE_CLOSE_SOURCE,
    G_OUTPUT_STREAM_SPLICE_CLOSE_TARGET,
    G_OUTPUT_STREAM_SPLICE_CLOSE_SOURCE | G_OUTPUT_STREAM_SPLICE_CLOSE_TARGET,
  };

  if (skip_unless_reactor (kind))
    return;

  for (guint i = 0; i < G_N_ELEMENTS (flags); i++)
    {
      LsockTestPair from = { 0 }, to = { 0 };
      SpliceLog log = { 0 };
      GThread *writer, *reader;

      pair_open (&from);
      pair_open (&to);
      g_output_stream_splice_async (out_of (to.server), in_of (from.server), flags[i],
                                    G_PRIORITY_DEFAULT, NULL, splice_log_cb, &log);
      writer = g_thread_new ("splice-writer", splice_writer, from.client);
      reader = g_thread_new ("splice-reader", splice_reader, to.client);
      if (!lsock_test_wait_bounded (log.done, HANG_MS))
        g_error ("The splice with flags %d stalled", flags[i]);
      g_thread_join (writer);
      g_thread_join (reader);
      g_assert_no_error (log.error);
      g_assert_cmpint (log.n, ==, SPLICE_SIZE);

      g_assert_false (g_output_stream_has_pending (out_of (to.server)));
      g_assert_false (g_input_stream_has_pending (in_of (from.server)));
      g_assert_cmpint (g_input_stream_is_closed (in_of (from.server)), ==,
                       !!(flags[i] & G_OUTPUT_STREAM_SPLICE_CLOSE_SOURCE));
      g_assert_cmpint (g_output_stream_is_closed (out_of (to.server)), ==,
                       !!(flags[i] & G_OUTPUT_STREAM_SPLICE_CLOSE_TARGET));
      if (!(flags[i] & G_OUTPUT_STREAM_SPLICE_CLOSE_TARGET))
        {
          /* The target is free for the next write */
          send_all (to.server, "more", 4);
          read_async_exactly (to.client, "more", 4);
        }
      pair_close (&from);
      pair_close (&to);
      use_reactor (kind);
    }
}

/* From a stream that is not a socket */
static void
test_splice_from_memory (gconstpointer data)
{
  const char *kind = data;
  g_autofree guint8 *buf = g_malloc (SPLICE_SIZE);
  g_autoptr(GInputStream) memory = NULL;
  LsockTestPair pair = { 0 };
  SpliceLog log = { 0 };
  GThread *reader;

  if (skip_unless_reactor (kind))
    return;
  pair_open (&pair);
  lsock_test_fill_pattern (buf, 0, SPLICE_SIZE, 7);
  memory = g_memory_input_stream_new_from_data (g_steal_pointer (&buf), SPLICE_SIZE, g_free);

  g_output_stream_splice_async (out_of (pair.server), memory, G_OUTPUT_STREAM_SPLICE_CLOSE_SOURCE,
                                G_PRIORITY_DEFAULT, NULL, splice_log_cb, &log);
  reader = g_thread_new ("splice-reader", splice_reader, pair.client);
  if (!lsock_test_wait_bounded (log.done, HANG_MS))
    g_error ("The splice stalled");
  g_thread_join (reader);
  g_assert_no_error (log.error);
  g_assert_cmpint (log.n, ==, SPLICE_SIZE);
  g_assert_true (g_input_stream_is_closed (memory));

  pair_close (&pair);
  g_assert_finalize_object (g_steal_pointer (&memory));
}

/* Cancelled while it waits: the splice says so, in a later iteration, and
 * leaves both streams usable */
static void
test_splice_cancel (gconstpointer data)
{
  const char *kind = data;
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  LsockTestPair pair = { 0 };
  SpliceLog log = { 0 };

  if (skip_unless_reactor (kind))
    return;
  pair_open (&pair);

  g_output_stream_splice_async (out_of (pair.server), in_of (pair.server),
                                G_OUTPUT_STREAM_SPLICE_NONE, G_PRIORITY_DEFAULT, cancellable,
                                splice_log_cb, &log);
  send_all (pair.client, "ping", 4);
  read_async_exactly (pair.client, "ping", 4);
  g_cancellable_cancel (cancellable);
  g_assert_false (log.done);
  g_assert_true (lsock_test_wait_bounded (log.done, HANG_MS));
  g_assert_error (log.error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_clear_error (&log.error);

  /* Nothing was read past the cancellation, and nothing is pending */
  send_all (pair.client, "pong", 4);
  read_async_exactly (pair.server, "pong", 4);
  send_all (pair.server, "back", 4);
  read_async_exactly (pair.client, "back", 4);

  pair_close (&pair);
}

static void
add_on_each_reactor (const char *path,
                     GTestDataFunc func)
{
#ifdef G_OS_UNIX
  static const char *kinds[] = { "epoll", "polled", "poll" };
#else
  /* Named pipes: GIO's own async paths over the pollable streams */
  static const char *kinds[] = { "pipe" };
#endif

  for (guint i = 0; i < G_N_ELEMENTS (kinds); i++)
    {
      g_autofree char *full = g_strdup_printf ("/lsock/stream-async/%s/%s", kinds[i], path);

      g_test_add_data_func (full, kinds[i], func);
    }
}

int
main (int   argc,
      char *argv[])
{
  int ret;

  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);

  add_on_each_reactor ("readiness/after-fd-message", test_after_fd_message);
  add_on_each_reactor ("readiness/after-fd-message-waiting", test_after_fd_message_waiting);
  add_on_each_reactor ("readiness/splice-after-fd-message", test_splice_after_fd_message);
  add_on_each_reactor ("readiness/urgent-data", test_urgent_data);
  add_on_each_reactor ("readiness/hang-up", test_hang_up);
  add_on_each_reactor ("readiness/quiet-when-unwanted", test_quiet_when_unwanted);
  add_on_each_reactor ("readiness/zero-length", test_zero_length);
  add_on_each_reactor ("write-async/at-once", test_write_async_at_once);
  add_on_each_reactor ("readiness/abort-then-data", test_abort_then_data);
  add_on_each_reactor ("readiness/spread", test_spread);
  add_on_each_reactor ("splice/between-connections", test_splice_between);
  add_on_each_reactor ("splice/from-memory", test_splice_from_memory);
  add_on_each_reactor ("splice/cancel", test_splice_cancel);
  add_on_each_reactor ("priorities", test_priorities);
  add_on_each_reactor ("results/fresh", test_results_fresh);
  add_on_each_reactor ("lifetime/pending-read-keeps-open", test_pending_read_keeps_open);
  add_on_each_reactor ("lifetime/pending-splice-keeps-open", test_pending_splice_keeps_open);
  add_on_each_reactor ("lifetime/close-ends-pending", test_close_ends_pending);

  ret = g_test_run ();
  lsock_test_cleanup_dirs ();
  return ret;
}
