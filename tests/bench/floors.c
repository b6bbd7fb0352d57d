/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * What GLib itself charges, per unit, to any library built on GIO streams,
 * measured alone, without I/O, on a hot cache: lower bounds. lsock-bench
 * turns each into a ceiling for a figure, the best ratio to the raw
 * baseline that any such library could reach in the same run.
 *
 * - bench_floor_stream_lifecycle(): a GIOStream and its two substreams
 *   (fd-stream.c, without a socket) created, both substreams fetched, the
 *   stream closed and destroyed. Every connection costs each side of a
 *   GIOStream API at least this.
 * - bench_floor_write_async_wrapper(): what g_output_stream_write_async()
 *   and g_output_stream_write_finish() add around a stream's own
 *   write_async and write_finish. GLib 2.74 wraps every call in a GTask,
 *   whatever the stream. Measured as the difference between the same
 *   loop through the public calls and through the class's virtual
 *   functions, on a stream whose write completes in the next main-loop
 *   iteration (as a socket write that succeeds at once does in lsock's
 *   reactor).
 */

#include "config.h"

#include "floors.h"
#include "fd-stream.h"

#include <gio/gio.h>

#include <math.h>

static double
now_s (void)
{
  return g_get_monotonic_time () / 1e6;
}

double
bench_floor_stream_lifecycle (guint n)
{
  double best = INFINITY;

  for (int batch = 0; batch < 5; batch++)
    {
      double t0 = now_s ();

      for (guint i = 0; i < n; i++)
        {
          GIOStream *stream = bench_fd_stream_new (-1);

          g_io_stream_get_input_stream (stream);
          g_io_stream_get_output_stream (stream);
          g_io_stream_close (stream, NULL, NULL);
          g_object_unref (stream);
        }
      best = MIN (best, (now_s () - t0) / n);
    }
  return best;
}

/* ---------------------------------------------------------------------- */
/* A GAsyncResult that is no GTask, and an output stream that completes
 * each write in the next iteration of the thread-default main context */

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

#define BENCH_TYPE_NULL_OUTPUT (bench_null_output_get_type ())
G_DECLARE_FINAL_TYPE (BenchNullOutput, bench_null_output, BENCH, NULL_OUTPUT, GOutputStream)

struct _BenchNullOutput
{
  GOutputStream        parent_instance;
  BenchResult         *result;
  GAsyncReadyCallback  callback;    /* the write in flight, if any */
  gpointer             user_data;
  gssize               count;
};

G_DEFINE_FINAL_TYPE (BenchNullOutput, bench_null_output, G_TYPE_OUTPUT_STREAM)

static gssize
bench_null_output_write (GOutputStream  *stream,
                         const void     *buffer,
                         gsize           count,
                         GCancellable   *cancellable,
                         GError        **error)
{
  return count;
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

  g_assert (self->callback == NULL);
  self->callback = callback;
  self->user_data = user_data;
  self->count = count;
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
  stream_class->write_fn = bench_null_output_write;
  stream_class->write_async = bench_null_output_write_async;
  stream_class->write_finish = bench_null_output_write_finish;
}

static void
bench_null_output_init (BenchNullOutput *self)
{
  self->result = g_object_new (BENCH_TYPE_RESULT, NULL);
  self->result->source_object = G_OBJECT (self);
}

/* Completes the write in flight: ready whenever there is one */
typedef struct
{
  GSource          source;
  BenchNullOutput *output;
} CompleteSource;

static gboolean
complete_prepare (GSource *source,
                  int     *timeout)
{
  *timeout = -1;
  return ((CompleteSource *) source)->output->callback != NULL;
}

static gboolean
complete_check (GSource *source)
{
  return ((CompleteSource *) source)->output->callback != NULL;
}

static gboolean
complete_dispatch (GSource     *source,
                   GSourceFunc  unused,
                   gpointer     unused_data)
{
  BenchNullOutput *output = ((CompleteSource *) source)->output;
  GAsyncReadyCallback callback = g_steal_pointer (&output->callback);

  callback (G_OBJECT (output), G_ASYNC_RESULT (output->result), output->user_data);
  return G_SOURCE_CONTINUE;
}

static GSourceFuncs complete_funcs = {
  complete_prepare, complete_check, complete_dispatch, NULL, NULL, NULL,
};

typedef struct
{
  GOutputStream *output;
  guint          left;
} WriteLoop;

static const char one_byte[1] = { 'x' };

static void
wrapped_cb (GObject      *object,
            GAsyncResult *result,
            gpointer      user_data)
{
  WriteLoop *loop = user_data;

  if (g_output_stream_write_finish (loop->output, result, NULL) != 1)
    g_error ("floors: write_finish");
  if (--loop->left > 0)
    g_output_stream_write_async (loop->output, one_byte, 1, G_PRIORITY_DEFAULT, NULL,
                                 wrapped_cb, loop);
}

static void
direct_cb (GObject      *object,
           GAsyncResult *result,
           gpointer      user_data)
{
  WriteLoop *loop = user_data;
  GOutputStreamClass *klass = G_OUTPUT_STREAM_GET_CLASS (loop->output);

  if (klass->write_finish (loop->output, result, NULL) != 1)
    g_error ("floors: write_finish");
  if (--loop->left > 0)
    klass->write_async (loop->output, one_byte, 1, G_PRIORITY_DEFAULT, NULL, direct_cb, loop);
}

static double
time_write_loop (GMainContext  *context,
                 GOutputStream *output,
                 guint          n,
                 gboolean       wrapped)
{
  WriteLoop loop = { output, n };
  double t0 = now_s ();

  if (wrapped)
    g_output_stream_write_async (output, one_byte, 1, G_PRIORITY_DEFAULT, NULL, wrapped_cb, &loop);
  else
    G_OUTPUT_STREAM_GET_CLASS (output)->write_async (output, one_byte, 1, G_PRIORITY_DEFAULT,
                                                     NULL, direct_cb, &loop);
  while (loop.left > 0)
    g_main_context_iteration (context, TRUE);
  return (now_s () - t0) / n;
}

double
bench_floor_write_async_wrapper (guint n)
{
  GMainContext *context = g_main_context_new ();
  GOutputStream *output;
  GSource *source;
  double wrapped = INFINITY, direct = INFINITY;

  g_main_context_push_thread_default (context);
  output = g_object_new (BENCH_TYPE_NULL_OUTPUT, NULL);
  source = g_source_new (&complete_funcs, sizeof (CompleteSource));
  ((CompleteSource *) source)->output = BENCH_NULL_OUTPUT (output);
  g_source_attach (source, context);

  for (int batch = 0; batch < 5; batch++)
    {
      wrapped = MIN (wrapped, time_write_loop (context, output, n, TRUE));
      direct = MIN (direct, time_write_loop (context, output, n, FALSE));
    }

  /* GTask may have deferred its last callback through an idle source */
  while (g_main_context_iteration (context, FALSE))
    ;
  g_source_destroy (source);
  g_source_unref (source);
  g_object_unref (output);
  g_main_context_pop_thread_default (context);
  g_main_context_unref (context);
  return MAX (wrapped - direct, 0);
}
