/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * What GLib itself charges, per unit, to any library built on GIO streams,
 * measured alone, without I/O, on a hot cache: lower bounds. lsock-bench
 * turns each into a ceiling for a figure, the best ratio to the raw
 * baseline that any such library could reach in the same run.
 *
 * - bench_floor_round_trip(): one side of a round trip of the round-trip
 *   figure, through the least GIOStream there is (fd-stream.c) without a
 *   socket: 64 bytes written with g_output_stream_write_all() and read
 *   with g_input_stream_read().
 * - bench_floor_connection(): one side of a connection of the connect
 *   figure, through the same: the stream and its two substreams created,
 *   64 bytes written and read as above, the stream closed and destroyed.
 *   Both are everything the "gio-floor" variant does but the system
 *   calls.
 * - bench_floor_checked_connection(): the system calls that a server and
 *   client on a main loop make per connection beyond raw's, when they
 *   keep lsock's contracts: each side asks the kernel who its peer is
 *   (SO_PEERCRED) and the client compares the answer with geteuid()
 *   (owner-only by default: GIO and libuv check nobody); the server
 *   waits in its context's poll() where raw sleeps in accept(), and an
 *   accept chained from a callback probes the queue with poll(0) so that
 *   peers already queued are reported in the same dispatch. Made on a
 *   socketpair, where each returns at once: a lower bound.
 * - bench_floor_async_message(): what g_input_stream_read_async() and
 *   g_output_stream_write_async(), with their _finish() calls, add around
 *   a stream's own virtual functions, per message of an echo server (one
 *   read and one write). GLib 2.74 wraps every write_async in a GTask,
 *   whatever the stream. Measured as the difference between the same
 *   loop through the public calls and through the class's virtual
 *   functions, on streams whose operations complete in the next main-loop
 *   iteration, as a socket read or write that succeeds at once does in
 *   lsock's reactor.
 * - bench_floor_results(): what any server that keeps GIO's contract on a
 *   GMainContext pays per message of an echo server beyond its two system
 *   calls, however fast its own machinery: a fresh GAsyncResult (a
 *   GObject, never reused) for the read and another for the write, made
 *   and dropped. libuv pays for no object. Nothing is counted for the
 *   context's wake-ups: several messages may share one, and even with a
 *   single client, which waits for each reply, a server that reads at
 *   once may find the next request there before its dispatch is over (the
 *   client runs while the reply is written): lsock's bytes calls do, and
 *   beat a ceiling that counted an iteration per message (0.784 of raw
 *   against 0.714). The same counts for a bulk reader, one result per
 *   read.
 * - bench_floor_iteration(): one iteration of a GMainContext whose one
 *   source is ready at once: a poll() and GLib's prepare, check and
 *   dispatch around it. Owed per message by read_async() and
 *   write_async() at one client, unlike the results above: GLib 2.74
 *   wraps every write_async() in a GTask, which reports in the iteration
 *   that made it only through an idle source (another iteration), and
 *   otherwise in a later one (gtask.c compares the iteration's time with
 *   its own); the client sends the next request only once it has the
 *   reply, and the next write_async() can start only once that write has
 *   reported. So each message's write reports at least one iteration
 *   after the last one's did.
 */

#include "config.h"

#include "floors.h"
#include "fd-stream.h"

#include <gio/gio.h>
#include <glib-unix.h>

#include <errno.h>
#include <math.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#define MESSAGE_SIZE 64

static double
now_s (void)
{
  return g_get_monotonic_time () / 1e6;
}

double
bench_floor_round_trip (guint n)
{
  GIOStream *stream = bench_fd_stream_new (-1);
  GInputStream *input = g_io_stream_get_input_stream (stream);
  GOutputStream *output = g_io_stream_get_output_stream (stream);
  double best = INFINITY;
  char buf[MESSAGE_SIZE] = { 0 };

  for (int batch = 0; batch < 5; batch++)
    {
      double t0 = now_s ();

      for (guint i = 0; i < n; i++)
        if (!g_output_stream_write_all (output, buf, sizeof buf, NULL, NULL, NULL) ||
            g_input_stream_read (input, buf, sizeof buf, NULL, NULL) != sizeof buf)
          g_error ("floors: the null stream failed");
      best = MIN (best, (now_s () - t0) / n);
    }
  g_object_unref (stream);
  return best;
}

double
bench_floor_connection (guint n)
{
  double best = INFINITY;
  char buf[MESSAGE_SIZE] = { 0 };

  for (int batch = 0; batch < 5; batch++)
    {
      double t0 = now_s ();

      for (guint i = 0; i < n; i++)
        {
          GIOStream *stream = bench_fd_stream_new (-1);

          if (!g_output_stream_write_all (g_io_stream_get_output_stream (stream), buf,
                                          sizeof buf, NULL, NULL, NULL) ||
              g_input_stream_read (g_io_stream_get_input_stream (stream), buf, sizeof buf,
                                   NULL, NULL) != sizeof buf)
            g_error ("floors: the null stream failed");
          g_io_stream_close (stream, NULL, NULL);
          g_object_unref (stream);
        }
      best = MIN (best, (now_s () - t0) / n);
    }
  return best;
}

double
bench_floor_checked_connection (guint n)
{
  double best = INFINITY;
  int fds[2];

  if (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0)
    g_error ("floors: socketpair: %s", g_strerror (errno));
  for (int batch = 0; batch < 5; batch++)
    {
      double t0 = now_s ();

      for (guint i = 0; i < n; i++)
        {
          struct ucred cred;
          socklen_t len = sizeof cred;
          struct pollfd pfd = { fds[0], POLLIN, 0 };

          for (int side = 0; side < 2; side++)
            if (getsockopt (fds[side], SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0)
              g_error ("floors: SO_PEERCRED: %s", g_strerror (errno));
          if (cred.uid != geteuid ())
            g_error ("floors: the peer is not ours");
          for (int wait = 0; wait < 2; wait++)
            if (poll (&pfd, 1, 0) != 0)
              g_error ("floors: the socketpair is readable");
        }
      best = MIN (best, (now_s () - t0) / n);
    }
  close (fds[0]);
  close (fds[1]);
  return best;
}

/* ---------------------------------------------------------------------- */
/* A GAsyncResult that is no GTask; input and output streams whose async
 * operations complete in the next iteration of the thread-default main
 * context, through one source, one operation at a time (they have no sync
 * read or write: nothing here calls one) */

#define BENCH_TYPE_RESULT (bench_result_get_type ())
G_DECLARE_FINAL_TYPE (BenchResult, bench_result, BENCH, RESULT, GObject)

struct _BenchResult
{
  GObject  parent_instance;
  GObject *source_object;  /* unowned */
};

static GObject *
bench_result_get_source_object (GAsyncResult *result)
{
  return g_object_ref (BENCH_RESULT (result)->source_object);
}

static gpointer
bench_result_get_user_data (GAsyncResult *result)
{
  return NULL;
}

static gboolean
bench_result_is_tagged (GAsyncResult *result,
                        gpointer      source_tag)
{
  return FALSE;
}

static void
bench_result_iface_init (GAsyncResultIface *iface)
{
  iface->get_source_object = bench_result_get_source_object;
  iface->get_user_data = bench_result_get_user_data;
  iface->is_tagged = bench_result_is_tagged;
}

G_DEFINE_FINAL_TYPE_WITH_CODE (BenchResult, bench_result, G_TYPE_OBJECT,
                               G_IMPLEMENT_INTERFACE (G_TYPE_ASYNC_RESULT, bench_result_iface_init))

static void
bench_result_class_init (BenchResultClass *klass)
{
}

static void
bench_result_init (BenchResult *self)
{
}

static BenchResult *
bench_result_new (gpointer source_object)
{
  BenchResult *self = g_object_new (BENCH_TYPE_RESULT, NULL);

  self->source_object = source_object;
  return self;
}

/* The operation in flight, completed by the source's next dispatch */
typedef struct
{
  GSource              source;
  GObject             *object;
  GAsyncResult        *result;
  GAsyncReadyCallback  callback;
  gpointer             user_data;
} Completer;

static void
completer_queue (Completer           *completer,
                 gpointer             object,
                 GAsyncResult        *result,
                 GAsyncReadyCallback  callback,
                 gpointer             user_data)
{
  g_assert (completer->callback == NULL);
  completer->object = object;
  completer->result = result;
  completer->callback = callback;
  completer->user_data = user_data;
}

static gboolean
completer_prepare (GSource *source,
                   int     *timeout)
{
  *timeout = -1;
  return ((Completer *) source)->callback != NULL;
}

static gboolean
completer_check (GSource *source)
{
  return ((Completer *) source)->callback != NULL;
}

static gboolean
completer_dispatch (GSource     *source,
                    GSourceFunc  unused,
                    gpointer     unused_data)
{
  Completer *completer = (Completer *) source;
  GAsyncReadyCallback callback = g_steal_pointer (&completer->callback);

  callback (completer->object, completer->result, completer->user_data);
  return G_SOURCE_CONTINUE;
}

static GSourceFuncs completer_funcs = {
  completer_prepare, completer_check, completer_dispatch, NULL, NULL, NULL,
};

#define BENCH_TYPE_NULL_INPUT (bench_null_input_get_type ())
G_DECLARE_FINAL_TYPE (BenchNullInput, bench_null_input, BENCH, NULL_INPUT, GInputStream)
#define BENCH_TYPE_NULL_OUTPUT (bench_null_output_get_type ())
G_DECLARE_FINAL_TYPE (BenchNullOutput, bench_null_output, BENCH, NULL_OUTPUT, GOutputStream)

struct _BenchNullInput
{
  GInputStream  parent_instance;
  Completer    *completer;  /* unowned */
  BenchResult  *result;
  gssize        count;
};

struct _BenchNullOutput
{
  GOutputStream  parent_instance;
  Completer     *completer;  /* unowned */
  BenchResult   *result;
  gssize         count;
};

G_DEFINE_FINAL_TYPE (BenchNullInput, bench_null_input, G_TYPE_INPUT_STREAM)
G_DEFINE_FINAL_TYPE (BenchNullOutput, bench_null_output, G_TYPE_OUTPUT_STREAM)

static void
bench_null_input_read_async (GInputStream        *stream,
                             void                *buffer,
                             gsize                count,
                             int                  io_priority,
                             GCancellable        *cancellable,
                             GAsyncReadyCallback  callback,
                             gpointer             user_data)
{
  BenchNullInput *self = BENCH_NULL_INPUT (stream);

  self->count = count;
  completer_queue (self->completer, self, G_ASYNC_RESULT (self->result), callback, user_data);
}

static gssize
bench_null_input_read_finish (GInputStream  *stream,
                              GAsyncResult  *result,
                              GError       **error)
{
  return BENCH_NULL_INPUT (stream)->count;
}

static void
bench_null_input_finalize (GObject *object)
{
  g_object_unref (BENCH_NULL_INPUT (object)->result);
  G_OBJECT_CLASS (bench_null_input_parent_class)->finalize (object);
}

static void
bench_null_input_class_init (BenchNullInputClass *klass)
{
  GInputStreamClass *stream_class = G_INPUT_STREAM_CLASS (klass);

  G_OBJECT_CLASS (klass)->finalize = bench_null_input_finalize;
  stream_class->read_async = bench_null_input_read_async;
  stream_class->read_finish = bench_null_input_read_finish;
}

static void
bench_null_input_init (BenchNullInput *self)
{
  self->result = bench_result_new (self);
}

static void
bench_null_output_write_async (GOutputStream       *stream,
                               const void          *buffer,
                               gsize                count,
                               int                  io_priority,
                               GCancellable        *cancellable,
                               GAsyncReadyCallback  callback,
                               gpointer             user_data)
{
  BenchNullOutput *self = BENCH_NULL_OUTPUT (stream);

  self->count = count;
  completer_queue (self->completer, self, G_ASYNC_RESULT (self->result), callback, user_data);
}

static gssize
bench_null_output_write_finish (GOutputStream  *stream,
                                GAsyncResult   *result,
                                GError        **error)
{
  return BENCH_NULL_OUTPUT (stream)->count;
}

static void
bench_null_output_finalize (GObject *object)
{
  g_object_unref (BENCH_NULL_OUTPUT (object)->result);
  G_OBJECT_CLASS (bench_null_output_parent_class)->finalize (object);
}

static void
bench_null_output_class_init (BenchNullOutputClass *klass)
{
  GOutputStreamClass *stream_class = G_OUTPUT_STREAM_CLASS (klass);

  G_OBJECT_CLASS (klass)->finalize = bench_null_output_finalize;
  stream_class->write_async = bench_null_output_write_async;
  stream_class->write_finish = bench_null_output_write_finish;
}

static void
bench_null_output_init (BenchNullOutput *self)
{
  self->result = bench_result_new (self);
}

/* ---------------------------------------------------------------------- */
/* An echo loop: read a message, write it back, read the next one */

typedef struct
{
  GInputStream  *input;
  GOutputStream *output;
  guint          left;
  char           buf[MESSAGE_SIZE];
} EchoLoop;

static void public_read_cb (GObject *object, GAsyncResult *result, gpointer user_data);
static void vfunc_read_cb (GObject *object, GAsyncResult *result, gpointer user_data);

static void
public_write_cb (GObject      *object,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  EchoLoop *loop = user_data;

  if (g_output_stream_write_finish (loop->output, result, NULL) != sizeof loop->buf)
    g_error ("floors: write_finish");
  if (--loop->left > 0)
    g_input_stream_read_async (loop->input, loop->buf, sizeof loop->buf, G_PRIORITY_DEFAULT,
                               NULL, public_read_cb, loop);
}

static void
public_read_cb (GObject      *object,
                GAsyncResult *result,
                gpointer      user_data)
{
  EchoLoop *loop = user_data;
  gssize n = g_input_stream_read_finish (loop->input, result, NULL);

  if (n != sizeof loop->buf)
    g_error ("floors: read_finish");
  g_output_stream_write_async (loop->output, loop->buf, n, G_PRIORITY_DEFAULT, NULL,
                               public_write_cb, loop);
}

static void
vfunc_write_cb (GObject      *object,
                GAsyncResult *result,
                gpointer      user_data)
{
  EchoLoop *loop = user_data;

  if (G_OUTPUT_STREAM_GET_CLASS (loop->output)->write_finish (loop->output, result, NULL) !=
      sizeof loop->buf)
    g_error ("floors: write_finish");
  if (--loop->left > 0)
    G_INPUT_STREAM_GET_CLASS (loop->input)->read_async (loop->input, loop->buf, sizeof loop->buf,
                                                        G_PRIORITY_DEFAULT, NULL,
                                                        vfunc_read_cb, loop);
}

static void
vfunc_read_cb (GObject      *object,
               GAsyncResult *result,
               gpointer      user_data)
{
  EchoLoop *loop = user_data;
  gssize n = G_INPUT_STREAM_GET_CLASS (loop->input)->read_finish (loop->input, result, NULL);

  if (n != sizeof loop->buf)
    g_error ("floors: read_finish");
  G_OUTPUT_STREAM_GET_CLASS (loop->output)->write_async (loop->output, loop->buf, n,
                                                         G_PRIORITY_DEFAULT, NULL,
                                                         vfunc_write_cb, loop);
}

static double
time_echo_loop (GMainContext  *context,
                GInputStream  *input,
                GOutputStream *output,
                guint          n,
                gboolean       public)
{
  EchoLoop loop = { input, output, n, { 0 } };
  double t0 = now_s ();

  if (public)
    g_input_stream_read_async (input, loop.buf, sizeof loop.buf, G_PRIORITY_DEFAULT, NULL,
                               public_read_cb, &loop);
  else
    G_INPUT_STREAM_GET_CLASS (input)->read_async (input, loop.buf, sizeof loop.buf,
                                                  G_PRIORITY_DEFAULT, NULL, vfunc_read_cb, &loop);
  while (loop.left > 0)
    g_main_context_iteration (context, TRUE);
  return (now_s () - t0) / n;
}

double
bench_floor_async_message (guint n)
{
  GMainContext *context = g_main_context_new ();
  GSource *source = g_source_new (&completer_funcs, sizeof (Completer));
  BenchNullInput *input;
  BenchNullOutput *output;
  double public = INFINITY, vfunc = INFINITY;

  g_main_context_push_thread_default (context);
  input = g_object_new (BENCH_TYPE_NULL_INPUT, NULL);
  output = g_object_new (BENCH_TYPE_NULL_OUTPUT, NULL);
  input->completer = output->completer = (Completer *) source;
  g_source_attach (source, context);

  for (int batch = 0; batch < 5; batch++)
    {
      public = MIN (public, time_echo_loop (context, G_INPUT_STREAM (input),
                                            G_OUTPUT_STREAM (output), n, TRUE));
      vfunc = MIN (vfunc, time_echo_loop (context, G_INPUT_STREAM (input),
                                          G_OUTPUT_STREAM (output), n, FALSE));
    }

  /* GTask may have deferred its last callback through an idle source */
  while (g_main_context_iteration (context, FALSE))
    ;
  g_source_destroy (source);
  g_source_unref (source);
  g_object_unref (input);
  g_object_unref (output);
  g_main_context_pop_thread_default (context);
  g_main_context_unref (context);
  return MAX (public - vfunc, 0);
}

/* ---------------------------------------------------------------------- */
/* One main-context iteration */

static gboolean
ready_cb (int          fd,
          GIOCondition condition,
          gpointer     user_data)
{
  guint *left = user_data;

  (*left)--;
  return G_SOURCE_CONTINUE;
}

double
bench_floor_iteration (guint n)
{
  GMainContext *context = g_main_context_new ();
  double best = INFINITY;
  GSource *source;
  guint left;
  int fds[2];

  /* A descriptor that stays readable: the context's poll() returns at
   * once. A source that may recurse, as lsock's reactor is: GLib blocks
   * any other while it dispatches, which costs two wake-ups of the
   * context per iteration, and no server has to pay that. */
  if (!g_unix_open_pipe (fds, FD_CLOEXEC, NULL) || write (fds[1], "x", 1) != 1)
    g_error ("floors: pipe");
  source = g_unix_fd_source_new (fds[0], G_IO_IN);
  g_source_set_callback (source, (GSourceFunc) (void (*) (void)) ready_cb, &left, NULL);
  g_source_set_can_recurse (source, TRUE);
  g_source_attach (source, context);

  for (int batch = 0; batch < 5; batch++)
    {
      double t0 = now_s ();

      left = n;
      while (left > 0)
        g_main_context_iteration (context, TRUE);
      best = MIN (best, (now_s () - t0) / n);
    }

  g_source_destroy (source);
  g_source_unref (source);
  close (fds[0]);
  close (fds[1]);
  g_main_context_unref (context);
  return best;
}

double
bench_floor_results (guint n,
                     guint n_results)
{
  GObject *object = g_object_new (G_TYPE_OBJECT, NULL);
  double best = INFINITY;

  for (int batch = 0; batch < 5; batch++)
    {
      double t0 = now_s ();

      for (guint i = 0; i < n * n_results; i++)
        g_object_unref (bench_result_new (object));
      best = MIN (best, (now_s () - t0) / n);
    }
  g_object_unref (object);
  return best;
}
