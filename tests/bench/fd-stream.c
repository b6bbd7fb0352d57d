/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The least a GIOStream over a socket can be: a GIOStream and its two
 * substreams, whose read and write are one recv()/send() each, and close
 * is close(). No name, no timeout, no async support beyond GIO's
 * defaults, no thread safety. lsock-bench's "gio-floor" variant runs the
 * raw system calls through it, to measure in the same run what any API
 * built of GIO streams pays per connection, and per read or write, before
 * it does anything. */

#include "config.h"

#include "fd-stream.h"

#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

#ifndef MSG_NOSIGNAL
# define MSG_NOSIGNAL 0
#endif

#define BENCH_TYPE_FD_INPUT (bench_fd_input_get_type ())
G_DECLARE_FINAL_TYPE (BenchFdInput, bench_fd_input, BENCH, FD_INPUT, GInputStream)
#define BENCH_TYPE_FD_OUTPUT (bench_fd_output_get_type ())
G_DECLARE_FINAL_TYPE (BenchFdOutput, bench_fd_output, BENCH, FD_OUTPUT, GOutputStream)

struct _BenchFdInput
{
  GInputStream parent_instance;
  int          fd;
};

struct _BenchFdOutput
{
  GOutputStream parent_instance;
  int           fd;
};

struct _BenchFdStream
{
  GIOStream      parent_instance;
  int            fd;
  GInputStream  *input;
  GOutputStream *output;
};

G_DEFINE_FINAL_TYPE (BenchFdInput, bench_fd_input, G_TYPE_INPUT_STREAM)
G_DEFINE_FINAL_TYPE (BenchFdOutput, bench_fd_output, G_TYPE_OUTPUT_STREAM)
G_DEFINE_FINAL_TYPE (BenchFdStream, bench_fd_stream, G_TYPE_IO_STREAM)

static gssize
set_errno_error (gssize   n,
                 GError **error)
{
  int errsv = errno;

  if (n < 0)
    g_set_error_literal (error, G_IO_ERROR, g_io_error_from_errno (errsv),
                         g_strerror (errsv));
  return n;
}

static gssize
bench_fd_input_read (GInputStream  *stream,
                     void          *buffer,
                     gsize          count,
                     GCancellable  *cancellable,
                     GError       **error)
{
  int fd = BENCH_FD_INPUT (stream)->fd;

  if (fd < 0)
    return count;  /* no socket (floors.c): no system call */
  return set_errno_error (recv (fd, buffer, count, 0), error);
}

static gboolean
bench_fd_input_close (GInputStream  *stream,
                      GCancellable  *cancellable,
                      GError       **error)
{
  return TRUE;  /* the GIOStream closes the fd */
}

static void
bench_fd_input_class_init (BenchFdInputClass *klass)
{
  G_INPUT_STREAM_CLASS (klass)->read_fn = bench_fd_input_read;
  G_INPUT_STREAM_CLASS (klass)->close_fn = bench_fd_input_close;
}

static void
bench_fd_input_init (BenchFdInput *self)
{
}

static gssize
bench_fd_output_write (GOutputStream  *stream,
                       const void     *buffer,
                       gsize           count,
                       GCancellable   *cancellable,
                       GError        **error)
{
  int fd = BENCH_FD_OUTPUT (stream)->fd;

  if (fd < 0)
    return count;  /* no socket (floors.c): no system call */
  return set_errno_error (send (fd, buffer, count, MSG_NOSIGNAL), error);
}

static gboolean
bench_fd_output_close (GOutputStream  *stream,
                       GCancellable   *cancellable,
                       GError        **error)
{
  return TRUE;
}

static void
bench_fd_output_class_init (BenchFdOutputClass *klass)
{
  G_OUTPUT_STREAM_CLASS (klass)->write_fn = bench_fd_output_write;
  G_OUTPUT_STREAM_CLASS (klass)->close_fn = bench_fd_output_close;
}

static void
bench_fd_output_init (BenchFdOutput *self)
{
}

static GInputStream *
bench_fd_stream_get_input_stream (GIOStream *stream)
{
  return BENCH_FD_STREAM (stream)->input;
}

static GOutputStream *
bench_fd_stream_get_output_stream (GIOStream *stream)
{
  return BENCH_FD_STREAM (stream)->output;
}

static gboolean
bench_fd_stream_close (GIOStream     *stream,
                       GCancellable  *cancellable,
                       GError       **error)
{
  BenchFdStream *self = BENCH_FD_STREAM (stream);

  /* GIOStream's own close: closes both substreams */
  G_IO_STREAM_CLASS (bench_fd_stream_parent_class)->close_fn (stream, cancellable, NULL);
  if (self->fd >= 0)
    close (g_steal_fd (&self->fd));
  return TRUE;
}

static void
bench_fd_stream_dispose (GObject *object)
{
  BenchFdStream *self = BENCH_FD_STREAM (object);

  /* GIOStream's dispose closes the stream, substreams included */
  G_OBJECT_CLASS (bench_fd_stream_parent_class)->dispose (object);
  g_clear_object (&self->input);
  g_clear_object (&self->output);
}

static void
bench_fd_stream_finalize (GObject *object)
{
  BenchFdStream *self = BENCH_FD_STREAM (object);

  if (self->fd >= 0)
    close (self->fd);
  G_OBJECT_CLASS (bench_fd_stream_parent_class)->finalize (object);
}

static void
bench_fd_stream_class_init (BenchFdStreamClass *klass)
{
  G_OBJECT_CLASS (klass)->dispose = bench_fd_stream_dispose;
  G_OBJECT_CLASS (klass)->finalize = bench_fd_stream_finalize;
  G_IO_STREAM_CLASS (klass)->get_input_stream = bench_fd_stream_get_input_stream;
  G_IO_STREAM_CLASS (klass)->get_output_stream = bench_fd_stream_get_output_stream;
  G_IO_STREAM_CLASS (klass)->close_fn = bench_fd_stream_close;
}

static void
bench_fd_stream_init (BenchFdStream *self)
{
  self->fd = -1;
}

GIOStream *
bench_fd_stream_new (int fd)
{
  BenchFdStream *self = g_object_new (BENCH_TYPE_FD_STREAM, NULL);
  BenchFdInput *input = g_object_new (BENCH_TYPE_FD_INPUT, NULL);
  BenchFdOutput *output = g_object_new (BENCH_TYPE_FD_OUTPUT, NULL);

  self->fd = input->fd = output->fd = fd;
  self->input = G_INPUT_STREAM (input);
  self->output = G_OUTPUT_STREAM (output);
  return G_IO_STREAM (self);
}

int
bench_fd_stream_get_fd (BenchFdStream *self)
{
  return self->fd;
}
