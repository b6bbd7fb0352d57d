/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * splice-bench: g_output_stream_splice_async() on one main context, the
 * heart of a proxy or of the README's echo service, against a thread
 * that copies with read() and write(), in one run.
 *
 * Each run connects a writer thread, the copy in the middle and a reader
 * thread with two socketpairs; the writer and the reader are the same raw
 * loops for every variant, 64 KiB per system call. The middle is
 *
 *   raw    a thread: read() and write() of up to 64 KiB until the end
 *   lsock  splice_async() from one LsockStream's input to another's
 *          output, both made with lsock_stream_new_from_fd()
 *   gio    the same splice_async() between GUnixInputStream and
 *          GUnixOutputStream: GOutputStream's own splice (8 KiB reads)
 *
 * Runs are interleaved (raw, lsock, gio, raw, ...); the table gives the
 * median rate of each and its ratio to raw's median. With --pin every
 * thread runs on CPU 0, as in lsock-bench --pin. --smoke moves a few
 * hundred KiB through each variant and checks the bytes, no timing.
 */

#include "config.h"

#include <lsock-gobject/lsock.h>
#include <gio/gunixinputstream.h>
#include <gio/gunixoutputstream.h>

#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define CHUNK (64 * 1024)

typedef enum
{
  V_RAW,
  V_LSOCK,
  V_GIO,
  N_VARIANTS
} Variant;

static const char *variant_names[N_VARIANTS] = { "raw", "lsock", "gio" };

static gsize total;
static gboolean smoke;

static G_NORETURN void
die (const char *what)
{
  fprintf (stderr, "splice-bench: %s: %s\n", what, g_strerror (errno));
  exit (1);
}

/* Byte i of the stream */
static inline guint8
pattern_at (gsize i)
{
  return (guint8) (i * 31 + (i >> 16));
}

static void
write_all_fd (int           fd,
              const guint8 *buf,
              gsize         n)
{
  gsize done = 0;

  while (done < n)
    {
      ssize_t w = write (fd, buf + done, n - done);

      if (w < 0 && errno != EINTR)
        die ("write");
      done += MAX (w, 0);
    }
}

/* Up to CHUNK bytes; 0 at the end */
static gsize
read_some_fd (int     fd,
              guint8 *buf)
{
  for (;;)
    {
      ssize_t n = read (fd, buf, CHUNK);

      if (n >= 0)
        return n;
      if (errno != EINTR)
        die ("read");
    }
}

static gpointer
writer_thread (gpointer data)
{
  int fd = GPOINTER_TO_INT (data);
  g_autofree guint8 *buf = g_malloc0 (CHUNK);
  gsize off = 0;

  while (off < total)
    {
      gsize n = MIN (CHUNK, total - off);

      if (smoke)
        for (gsize i = 0; i < n; i++)
          buf[i] = pattern_at (off + i);
      write_all_fd (fd, buf, n);
      off += n;
    }
  if (shutdown (fd, SHUT_WR) != 0)
    die ("shutdown");
  return NULL;
}

static gpointer
reader_thread (gpointer data)
{
  int fd = GPOINTER_TO_INT (data);
  g_autofree guint8 *buf = g_malloc (CHUNK);
  gsize got = 0;
  gsize n;

  while ((n = read_some_fd (fd, buf)) > 0)
    {
      if (smoke)
        for (gsize i = 0; i < n; i++)
          if (buf[i] != pattern_at (got + i))
            {
              fprintf (stderr, "splice-bench: byte %" G_GSIZE_FORMAT " is wrong\n", got + i);
              exit (1);
            }
      got += n;
    }
  return GSIZE_TO_POINTER (got);
}

/* raw: the copy thread */
typedef struct
{
  int in, out;
} Copy;

static gpointer
copy_thread (gpointer data)
{
  Copy *copy = data;
  g_autofree guint8 *buf = g_malloc (CHUNK);
  gsize n;

  while ((n = read_some_fd (copy->in, buf)) > 0)
    write_all_fd (copy->out, buf, n);
  return NULL;
}

static void
splice_done_cb (GObject      *source,
                GAsyncResult *result,
                gpointer      user_data)
{
  gssize *spliced = user_data;
  g_autoptr(GError) error = NULL;

  *spliced = g_output_stream_splice_finish (G_OUTPUT_STREAM (source), result, &error);
  if (*spliced < 0)
    {
      fprintf (stderr, "splice-bench: splice: %s\n", error->message);
      exit (1);
    }
}

static void
splice_and_wait (GOutputStream *out,
                 GInputStream  *in)
{
  gssize spliced = -2;

  g_output_stream_splice_async (out, in, G_OUTPUT_STREAM_SPLICE_NONE, G_PRIORITY_DEFAULT,
                                NULL, splice_done_cb, &spliced);
  while (spliced == -2)
    g_main_context_iteration (NULL, TRUE);
  if ((gsize) spliced != total)
    {
      fprintf (stderr, "splice-bench: spliced %" G_GSSIZE_FORMAT " bytes\n", spliced);
      exit (1);
    }
}

/* One run: MB/s */
static double
run (Variant variant)
{
  int src[2], dst[2];
  GThread *writer, *reader;
  gint64 t0;
  gsize got;

  if (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, src) != 0 ||
      socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, dst) != 0)
    die ("socketpair");

  t0 = g_get_monotonic_time ();
  writer = g_thread_new ("writer", writer_thread, GINT_TO_POINTER (src[0]));
  reader = g_thread_new ("reader", reader_thread, GINT_TO_POINTER (dst[1]));

  switch (variant)
    {
    case V_RAW:
      {
        Copy copy = { src[1], dst[0] };

        g_thread_join (g_thread_new ("copy", copy_thread, &copy));
        if (shutdown (dst[0], SHUT_WR) != 0)
          die ("shutdown");
        close (src[1]);
        close (dst[0]);
      }
      break;

    case V_LSOCK:
      {
        g_autoptr(GError) error = NULL;
        g_autoptr(LsockStream) in = lsock_stream_new_from_fd (src[1], &error);
        g_autoptr(LsockStream) out = in != NULL ? lsock_stream_new_from_fd (dst[0], &error) : NULL;

        if (out == NULL)
          {
            fprintf (stderr, "splice-bench: %s\n", error->message);
            exit (1);
          }
        splice_and_wait (g_io_stream_get_output_stream (G_IO_STREAM (out)),
                         g_io_stream_get_input_stream (G_IO_STREAM (in)));
        if (!lsock_stream_shutdown (out, FALSE, TRUE, &error))
          {
            fprintf (stderr, "splice-bench: %s\n", error->message);
            exit (1);
          }
        g_io_stream_close (G_IO_STREAM (in), NULL, NULL);
        g_io_stream_close (G_IO_STREAM (out), NULL, NULL);
      }
      break;

    case V_GIO:
      {
        g_autoptr(GInputStream) in = g_unix_input_stream_new (src[1], TRUE);
        g_autoptr(GOutputStream) out = g_unix_output_stream_new (dst[0], FALSE);

        splice_and_wait (out, in);
        if (shutdown (dst[0], SHUT_WR) != 0)
          die ("shutdown");
        close (dst[0]);
      }
      break;

    case N_VARIANTS:
    default:
      g_assert_not_reached ();
    }

  got = GPOINTER_TO_SIZE (g_thread_join (reader));
  g_thread_join (writer);
  close (src[0]);
  close (dst[1]);
  if (got != total)
    {
      fprintf (stderr, "splice-bench: %s: %" G_GSIZE_FORMAT " of %" G_GSIZE_FORMAT " bytes\n",
               variant_names[variant], got, total);
      exit (1);
    }
  return total / ((g_get_monotonic_time () - t0) / 1e6) / 1e6;
}

static int
cmp_double (const void *a,
            const void *b)
{
  double x = *(const double *) a, y = *(const double *) b;

  return (x > y) - (x < y);
}

static double
median (GArray *values)
{
  g_array_sort (values, cmp_double);
  return g_array_index (values, double, values->len / 2);
}

int
main (int    argc,
      char **argv)
{
  int reps = 5;
  gboolean pin = FALSE;
  GArray *rates[N_VARIANTS];
  double raw;

  for (int i = 1; i < argc; i++)
    {
      if (g_str_equal (argv[i], "--smoke"))
        smoke = TRUE;
      else if (g_str_equal (argv[i], "--pin"))
        pin = TRUE;
      else if (g_str_equal (argv[i], "--reps") && i + 1 < argc)
        reps = atoi (argv[++i]);
      else
        {
          fprintf (stderr, "usage: splice-bench [--smoke] [--pin] [--reps N]\n");
          return 2;
        }
    }
  reps = MAX (reps, 1);
  total = smoke ? 300 * 1024 + 17 : (gsize) 512 << 20;
  if (smoke)
    reps = 1;

  if (pin)
    {
      cpu_set_t set;

      /* Before any thread: they inherit it */
      CPU_ZERO (&set);
      CPU_SET (0, &set);
      if (sched_setaffinity (0, sizeof set, &set) != 0)
        die ("sched_setaffinity");
    }

  for (int v = 0; v < N_VARIANTS; v++)
    rates[v] = g_array_new (FALSE, FALSE, sizeof (double));
  for (int rep = 0; rep < reps; rep++)
    for (int v = 0; v < N_VARIANTS; v++)
      {
        double rate = run (v);

        g_array_append_val (rates[v], rate);
      }

  if (smoke)
    {
      printf ("splice-bench: every variant moved %" G_GSIZE_FORMAT " bytes intact\n", total);
      return 0;
    }

  raw = median (rates[V_RAW]);
  printf ("| splice %" G_GSIZE_FORMAT " MiB, one main context | MB/s | ratio to raw |\n",
          total >> 20);
  printf ("| --- | --- | --- |\n");
  for (int v = 0; v < N_VARIANTS; v++)
    {
      double m = median (rates[v]);

      printf ("| %s | %.0f [%.0f–%.0f] | %.3f |\n", variant_names[v], m,
              g_array_index (rates[v], double, 0),
              g_array_index (rates[v], double, rates[v]->len - 1), m / raw);
      g_array_unref (rates[v]);
    }
  return 0;
}
