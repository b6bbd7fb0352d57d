/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * lsock-bench: what lsock-gobject costs on top of the kernel.
 *
 * Every figure runs the same client and server code against a raw-syscall
 * baseline written here, against lsock through its public API and, where
 * it is the natural comparison, against plain GIO. Server and client are
 * separate processes (fork), so --pin places both sides alike. Variants are
 * interleaved (raw, lsock, gio, raw, lsock, gio, …) and each figure is the
 * median of the repetitions, with min–max. With server and client on one
 * CPU, the round-trip, connect, echo and PyGObject figures also get a
 * ceiling row: the raw figure of each repetition slowed down by what GLib
 * (or PyGObject) alone charges per unit, measured without I/O right after
 * it (floors.c, py-bulk.py), the best any GIO-based library could do.
 * The echo figures have one more, libuv's figure slowed down the same way
 * by two GAsyncResults per message: what a server built like libuv that
 * still reports each operation with a fresh result could do, the ceiling
 * for "as fast as libuv" through result-returning calls.
 *
 * The main-loop figures (connect, echo) also run two servers of other
 * libraries on one loop, with the same clients, as baselines next to raw:
 * gio-service (GIO's own GSocketService::incoming on a GMainContext: in
 * echo the lsock server's read_async/write_async calls, in connect what
 * lsock-async does once accepted) and, when built with libuv (HAVE_LIBUV),
 * libuv (one uv loop, uv_pipe_t on the same abstract name, uv_read_start()
 * and uv_write()). Their rows have no targets; a client they leave without
 * a reply in the window is a MISS in their row (not a failed run), and in
 * --smoke they must serve every client like the others.
 *
 * The echo-sync figures serve the same clients the sync way, a thread per
 * connection, raw against lsock's sync accept and blocking stream calls:
 * the sync path's echo target.
 *
 *   lsock-bench [--quick|--full|--smoke] [--reps N] [--pin]
 *               [--pin-server=CPU] [--pin-client=CPU] [--only NAME[,NAME…]]
 *               [--iters N]
 *
 * --smoke runs every figure once at tiny sizes and only checks correctness
 * (bytes counted, echoes verified, every client served): that is what the
 * test suite runs. Timings are never asserted.
 *
 * LSOCK_BENCH_PY (and LSOCK_BENCH_PYTHON) name py-bulk.py and its
 * interpreter; LSOCK_BENCH_VARIANTS=lsock,… runs only those variants (to
 * profile one side); LSOCK_BENCH_DEBUG=1 prints every run's raw results.
 * docs/performance.md has the method and the numbers.
 */
#include "config.h"

#include "fd-stream.h"
#include "floors.h"
#include "lsock-test-util.h"

#include <lsock-gobject/lsock.h>
#include <gio/gunixsocketaddress.h>
#include <glib-unix.h>
#ifdef HAVE_LIBUV
#include <uv.h>
#endif

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <locale.h>
#include <malloc.h>
#include <math.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MSG_SIZE 64

typedef enum {
  V_RAW,
  V_LSOCK,
  V_LSOCK_ASYNC,
  V_GIO,
  V_GSOCKET,
  V_GIO_FLOOR,
  V_LSOCK_NB,
  V_GIO_SERVICE,  /* main-loop baseline: GSocketService::incoming on a GMainContext */
  V_LIBUV,        /* main-loop baseline: one uv loop (only with HAVE_LIBUV) */
  V_LSOCK_BYTES,  /* lsock's fast path: receive_bytes_async + send_bytes_async */
  V_LSOCK_SRC,    /* one pollable source per connection, non-blocking calls */
  N_VARIANTS
} Variant;

static const char *variant_names[N_VARIANTS] = {
  "raw", "lsock", "lsock-async", "gio", "gsocket", "gio-floor", "lsock-nb",
  "gio-service", "libuv", "lsock-bytes", "lsock-src",
};

typedef struct
{
  char    name[80];      /* abstract socket name, without the leading NUL/@ */
  Variant variant;
  gsize   total_bytes;   /* bulk */
  gsize   chunk;         /* bulk */
  guint   iters;         /* ping-pong round trips, connections */
  guint   n_clients;     /* echo, memory */
  double  duration;      /* echo: measured window, seconds */
  gboolean raw_client;   /* bulk-loop: every variant's client is the raw one */
} Params;

/* What a child reports to the parent */
typedef struct
{
  gboolean ok;
  double   v[4];
  guint    unserved;     /* echo: clients without a reply in the window (then !ok) */
  char     message[160];
} Result;

static struct
{
  int      smoke;
  guint    floor_iters;  /* units per batch of the floors.c measurements */
  int      reps;
  int      pin_server;
  int      pin_client;
  char    *only;
} opt = { 0, 20000, 0, -1, -1, NULL };

/* ---------------------------------------------------------------------- */
/* Helpers */

static double
now_s (void)
{
  struct timespec ts;

  clock_gettime (CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void
pin_self (int cpu)
{
  cpu_set_t set;

  if (cpu < 0)
    return;
  CPU_ZERO (&set);
  CPU_SET (cpu, &set);
  if (sched_setaffinity (0, sizeof set, &set) != 0)
    fprintf (stderr, "lsock-bench: cannot pin to CPU %d: %s\n", cpu, strerror (errno));
}

static void
raise_nofile (void)
{
  struct rlimit rl;

  if (getrlimit (RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max)
    {
      rl.rlim_cur = rl.rlim_max;
      setrlimit (RLIMIT_NOFILE, &rl);
    }
}

static void G_GNUC_NORETURN G_GNUC_PRINTF (1, 2)
die (const char *format, ...)
{
  va_list ap;

  va_start (ap, format);
  fprintf (stderr, "lsock-bench[%d]: ", (int) getpid ());
  vfprintf (stderr, format, ap);
  fputc ('\n', stderr);
  va_end (ap);
  _exit (2);
}

static socklen_t
raw_addr (const char         *name,
          struct sockaddr_un *addr)
{
  gsize len = strlen (name);

  memset (addr, 0, sizeof *addr);
  addr->sun_family = AF_UNIX;
  addr->sun_path[0] = '\0';
  memcpy (addr->sun_path + 1, name, len);
  return offsetof (struct sockaddr_un, sun_path) + 1 + len;
}

static int
raw_listen (const char *name,
            gboolean    nonblocking)
{
  struct sockaddr_un addr;
  socklen_t len = raw_addr (name, &addr);
  int fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | (nonblocking ? SOCK_NONBLOCK : 0), 0);

  if (fd < 0 || bind (fd, (struct sockaddr *) &addr, len) != 0 || listen (fd, SOMAXCONN) != 0)
    die ("raw listen: %s", strerror (errno));
  return fd;
}

static int
raw_connect (const char *name)
{
  struct sockaddr_un addr;
  socklen_t len = raw_addr (name, &addr);
  int fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

  if (fd < 0)
    die ("socket: %s", strerror (errno));
  while (connect (fd, (struct sockaddr *) &addr, len) != 0)
    {
      if (errno == EINTR)
        continue;
      if (errno == EAGAIN)
        {
          g_usleep (100);
          continue;
        }
      die ("raw connect: %s", strerror (errno));
    }
  return fd;
}

static void
raw_write_all (int         fd,
               const void *buf,
               gsize       len)
{
  const char *p = buf;

  while (len > 0)
    {
      ssize_t n = send (fd, p, len, MSG_NOSIGNAL);

      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        die ("raw write: %s", strerror (errno));
      p += n;
      len -= n;
    }
}

/* Returns FALSE on EOF at a message boundary */
static gboolean
raw_read_full (int   fd,
               void *buf,
               gsize len)
{
  char *p = buf;
  gsize got = 0;

  while (got < len)
    {
      ssize_t n = recv (fd, p + got, len - got, 0);

      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        die ("raw read: %s", strerror (errno));
      if (n == 0)
        {
          if (got == 0)
            return FALSE;
          die ("raw read: short message");
        }
      got += n;
    }
  return TRUE;
}

static void
ctl_send (int  fd,
          char c)
{
  while (write (fd, &c, 1) != 1)
    if (errno != EINTR)
      die ("control write: %s", strerror (errno));
}

static char
ctl_wait (int fd)
{
  char c;
  ssize_t n;

  do
    n = read (fd, &c, 1);
  while (n < 0 && errno == EINTR);
  if (n != 1)
    die ("control read: %s", n == 0 ? "EOF" : strerror (errno));
  return c;
}

static LsockName *
lsock_name_for (const Params *p)
{
  g_autofree char *s = g_strdup_printf ("@%s", p->name);
  GError *error = NULL;
  LsockName *name = lsock_name_parse (s, &error);

  if (name == NULL)
    die ("lsock name: %s", error->message);
  return name;
}

static GSocketAddress *
gio_address_for (const Params *p)
{
  return g_unix_socket_address_new_with_type (p->name, -1, G_UNIX_SOCKET_ADDRESS_ABSTRACT);
}

static LsockListener *
lsock_listen (const Params *p)
{
  g_autoptr(LsockName) name = lsock_name_for (p);
  GError *error = NULL;
  LsockListener *listener = lsock_listener_new (name, &error);

  if (listener == NULL)
    die ("lsock listen: %s", error->message);
  return listener;
}

static LsockStream *
lsock_connect (const Params *p)
{
  g_autoptr(LsockName) name = lsock_name_for (p);
  GError *error = NULL;
  LsockStream *stream;

  for (;;)
    {
      stream = lsock_stream_connect (name, NULL, &error);
      if (stream != NULL)
        return stream;
      die ("lsock connect: %s", error->message);
    }
}

static GSocketListener *
gio_listen (const Params *p)
{
  GSocketListener *listener = g_socket_listener_new ();
  g_autoptr(GSocketAddress) address = gio_address_for (p);
  GError *error = NULL;

  if (!g_socket_listener_add_address (listener, address, G_SOCKET_TYPE_STREAM,
                                      G_SOCKET_PROTOCOL_DEFAULT, NULL, NULL, &error))
    die ("gio listen: %s", error->message);
  return listener;
}

/* A GSocketService on the thread-default context (it accepts there from
 * now on; its ::incoming runs in that context's loop) */
static GSocketService *
gio_service_listen (const Params *p)
{
  GSocketService *service = g_socket_service_new ();
  g_autoptr(GSocketAddress) address = gio_address_for (p);
  GError *error = NULL;

  /* The backlog of the raw and lsock listeners (GIO's default is 10) */
  g_socket_listener_set_backlog (G_SOCKET_LISTENER (service), SOMAXCONN);
  if (!g_socket_listener_add_address (G_SOCKET_LISTENER (service), address,
                                      G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_DEFAULT,
                                      NULL, NULL, &error))
    die ("gio listen: %s", error->message);
  return service;
}

static void
gio_service_close (GSocketService *service,
                   GMainContext   *context)
{
  g_socket_service_stop (service);
  g_socket_listener_close (G_SOCKET_LISTENER (service));
  g_object_unref (service);
  /* The cancelled accept reports in the context */
  while (g_main_context_iteration (context, FALSE))
    ;
}

static GSocketConnection *
gio_connect (GSocketClient *client,
             const Params  *p)
{
  g_autoptr(GSocketAddress) address = gio_address_for (p);
  GError *error = NULL;
  GSocketConnection *connection;

  connection = g_socket_client_connect (client, G_SOCKET_CONNECTABLE (address), NULL, &error);
  if (connection == NULL)
    die ("gio connect: %s", error->message);
  return connection;
}

/* GIO stream helpers (lsock and GIO alike) */
static void
stream_write_all (GOutputStream *out,
                  const void    *buf,
                  gsize          len)
{
  GError *error = NULL;

  if (!g_output_stream_write_all (out, buf, len, NULL, NULL, &error))
    die ("write: %s", error->message);
}

static gboolean
stream_read_full (GInputStream *in,
                  void         *buf,
                  gsize         len)
{
  char *p = buf;
  gsize got = 0;
  GError *error = NULL;

  while (got < len)
    {
      gssize n = g_input_stream_read (in, p + got, len - got, NULL, &error);

      if (n < 0)
        die ("read: %s", error->message);
      if (n == 0)
        {
          if (got == 0)
            return FALSE;
          die ("read: short message");
        }
      got += n;
    }
  return TRUE;
}

static gsize
mem_in_use (void)
{
  struct mallinfo2 mi = mallinfo2 ();

  return mi.uordblks + mi.hblkhd;
}

static int
count_fds (void)
{
  DIR *dir = opendir ("/proc/self/fd");
  struct dirent *de;
  int n = 0;

  if (dir == NULL)
    return -1;
  while ((de = readdir (dir)) != NULL)
    if (de->d_name[0] != '.')
      n++;
  closedir (dir);
  return n - 1;  /* the directory's own fd */
}

/* ---------------------------------------------------------------------- */
/* Running a server and a client */

typedef void (*SideFunc) (const Params *p, int ctl, Result *result);

static int name_counter;

static pid_t
spawn_side (SideFunc      func,
            const Params *p,
            int           ctl,
            int           other_ctl,
            int           cpu,
            int          *out_result_fd)
{
  int pipefd[2];
  pid_t pid;

  if (pipe2 (pipefd, O_CLOEXEC) != 0)
    die ("pipe: %s", strerror (errno));
  fflush (stdout);
  fflush (stderr);
  pid = fork ();
  if (pid < 0)
    die ("fork: %s", strerror (errno));
  if (pid == 0)
    {
      Result result = { .ok = TRUE };

      close (pipefd[0]);
      if (other_ctl >= 0)
        close (other_ctl);
      pin_self (cpu);
      raise_nofile ();
      func (p, ctl, &result);
      if (write (pipefd[1], &result, sizeof result) != sizeof result)
        _exit (3);
      _exit (0);
    }
  close (pipefd[1]);
  *out_result_fd = pipefd[0];
  return pid;
}

static gboolean
collect (pid_t   pid,
         int     fd,
         Result *result)
{
  int status;
  ssize_t n;

  memset (result, 0, sizeof *result);
  do
    n = read (fd, result, sizeof *result);
  while (n < 0 && errno == EINTR);
  close (fd);
  while (waitpid (pid, &status, 0) < 0 && errno == EINTR)
    ;
  if (n != sizeof *result)
    {
      result->ok = FALSE;
      g_snprintf (result->message, sizeof result->message, "child %s",
                  WIFSIGNALED (status) ? g_strsignal (WTERMSIG (status)) : "failed");
    }
  return result->ok;
}

/* Runs @server and @client with a fresh name; returns FALSE if either failed */
static gboolean
run_pair (SideFunc  server,
          SideFunc  client,
          Params   *p,
          Result   *server_result,
          Result   *client_result)
{
  int ctl[2];
  int sfd, cfd;
  pid_t spid, cpid;
  gboolean ok;

  g_snprintf (p->name, sizeof p->name, "lsock-bench-%d-%d", (int) getpid (), ++name_counter);
  if (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ctl) != 0)
    die ("socketpair: %s", strerror (errno));
  spid = spawn_side (server, p, ctl[0], ctl[1], opt.pin_server, &sfd);
  cpid = spawn_side (client, p, ctl[1], ctl[0], opt.pin_client, &cfd);
  close (ctl[0]);
  close (ctl[1]);
  ok = collect (cpid, cfd, client_result);
  ok = collect (spid, sfd, server_result) && ok;
  return ok;
}

/* Runs @func alone, on the server's CPU */
static gboolean
run_alone (SideFunc  func,
           Params   *p,
           Result   *result)
{
  int fd;
  pid_t pid = spawn_side (func, p, -1, -1, opt.pin_server, &fd);

  return collect (pid, fd, result);
}

/* ---------------------------------------------------------------------- */
/* Bulk throughput: the client writes total_bytes in chunks, the server
 * reads them in chunks and acknowledges the end with one byte. */

/* Listens, tells the client we are ready, and accepts the one peer */
static int
raw_accept_one (const Params *p,
                int           ctl)
{
  int lfd = raw_listen (p->name, FALSE);
  int fd;

  ctl_send (ctl, 'R');
  fd = accept4 (lfd, NULL, NULL, SOCK_CLOEXEC);
  if (fd < 0)
    die ("accept: %s", strerror (errno));
  close (lfd);
  return fd;
}

/* The one peer of a gio, gio-floor or lsock server (gio-floor: the raw
 * socket in the least GIOStream, fd-stream.c); the listener goes, the
 * stream stays */
static GIOStream *
subject_accept_one (const Params *p,
                    int           ctl)
{
  g_autoptr(GObject) listener = NULL;
  GIOStream *stream;
  GError *error = NULL;

  if (p->variant == V_GIO_FLOOR)
    return bench_fd_stream_new (raw_accept_one (p, ctl));

  if (p->variant == V_GIO)
    {
      listener = G_OBJECT (gio_listen (p));
      ctl_send (ctl, 'R');
      stream = G_IO_STREAM (g_socket_listener_accept (G_SOCKET_LISTENER (listener),
                                                      NULL, NULL, &error));
    }
  else
    {
      listener = G_OBJECT (lsock_listen (p));
      ctl_send (ctl, 'R');
      stream = G_IO_STREAM (lsock_listener_accept (LSOCK_LISTENER (listener), NULL, &error));
    }
  if (stream == NULL)
    die ("accept: %s", error->message);
  return stream;
}

/* A gio, gio-floor or lsock client's connection */
static GIOStream *
subject_connect (const Params *p)
{
  g_autoptr(GSocketClient) client = NULL;

  if (p->variant == V_GIO_FLOOR)
    return bench_fd_stream_new (raw_connect (p->name));
  if (p->variant == V_GIO)
    {
      client = g_socket_client_new ();
      return G_IO_STREAM (gio_connect (client, p));
    }
  return G_IO_STREAM (lsock_connect (p));
}

static void
bulk_server (const Params *p,
             int           ctl,
             Result       *r)
{
  g_autofree char *buf = g_malloc (p->chunk);
  gsize total = 0;

  if (p->variant == V_RAW)
    {
      int fd = raw_accept_one (p, ctl);
      ssize_t n;

      while ((n = recv (fd, buf, p->chunk, 0)) != 0)
        {
          if (n < 0 && errno == EINTR)
            continue;
          if (n < 0)
            die ("read: %s", strerror (errno));
          total += n;
        }
      raw_write_all (fd, "k", 1);
      close (fd);
    }
  else
    {
      g_autoptr(GIOStream) stream = NULL;
      GInputStream *in;
      GError *error = NULL;
      gssize n;

      stream = subject_accept_one (p, ctl);
      in = g_io_stream_get_input_stream (stream);
      while ((n = g_input_stream_read (in, buf, p->chunk, NULL, &error)) != 0)
        {
          if (n < 0)
            die ("read: %s", error->message);
          total += n;
        }
      stream_write_all (g_io_stream_get_output_stream (stream), "k", 1);
    }

  if (total != p->total_bytes)
    {
      r->ok = FALSE;
      g_snprintf (r->message, sizeof r->message, "bulk: received %" G_GSIZE_FORMAT
                  " of %" G_GSIZE_FORMAT " bytes", total, p->total_bytes);
    }
}

static void
bulk_client (const Params *p,
             int           ctl,
             Result       *r)
{
  g_autofree char *buf = g_malloc (p->chunk);
  gsize sent = 0;
  double t0, t1;
  char ack = 0;

  memset (buf, 'x', p->chunk);
  ctl_wait (ctl);

  if (p->variant == V_RAW || p->raw_client)
    {
      int fd = raw_connect (p->name);

      t0 = now_s ();
      while (sent < p->total_bytes)
        {
          gsize len = MIN (p->chunk, p->total_bytes - sent);
          ssize_t n = send (fd, buf, len, MSG_NOSIGNAL);

          if (n < 0 && errno == EINTR)
            continue;
          if (n <= 0)
            die ("write: %s", strerror (errno));
          sent += n;
        }
      shutdown (fd, SHUT_WR);
      if (!raw_read_full (fd, &ack, 1))
        die ("bulk: no acknowledgement");
      t1 = now_s ();
      close (fd);
    }
  else
    {
      g_autoptr(GIOStream) stream = NULL;
      GOutputStream *out;
      GError *error = NULL;

      stream = subject_connect (p);
      out = g_io_stream_get_output_stream (stream);

      t0 = now_s ();
      while (sent < p->total_bytes)
        {
          gsize len = MIN (p->chunk, p->total_bytes - sent);
          gssize n = g_output_stream_write (out, buf, len, NULL, &error);

          if (n <= 0)
            die ("write: %s", error ? error->message : "0 bytes");
          sent += n;
        }
      if (p->variant == V_GIO)
        {
          if (!g_socket_shutdown (g_socket_connection_get_socket (G_SOCKET_CONNECTION (stream)),
                                  FALSE, TRUE, &error))
            die ("shutdown: %s", error->message);
        }
      else if (p->variant == V_GIO_FLOOR)
        shutdown (bench_fd_stream_get_fd (BENCH_FD_STREAM (stream)), SHUT_WR);
      else if (!lsock_stream_shutdown (LSOCK_STREAM (stream), FALSE, TRUE, &error))
        die ("shutdown: %s", error->message);
      if (!stream_read_full (g_io_stream_get_input_stream (stream), &ack, 1))
        die ("bulk: no acknowledgement");
      t1 = now_s ();
    }

  if (ack != 'k')
    {
      r->ok = FALSE;
      g_strlcpy (r->message, "bulk: bad acknowledgement", sizeof r->message);
    }
  r->v[0] = p->total_bytes / (t1 - t0) / 1e6;  /* MB/s */
}

/* ---------------------------------------------------------------------- */
/* 64-byte ping-pong */

static void
pingpong_server (const Params *p,
                 int           ctl,
                 Result       *r)
{
  char buf[MSG_SIZE];

  if (p->variant == V_RAW)
    {
      int fd = raw_accept_one (p, ctl);

      while (raw_read_full (fd, buf, sizeof buf))
        raw_write_all (fd, buf, sizeof buf);
      close (fd);
    }
  else
    {
      g_autoptr(GIOStream) stream = NULL;
      GInputStream *in;
      GOutputStream *out;

      stream = subject_accept_one (p, ctl);
      in = g_io_stream_get_input_stream (stream);
      out = g_io_stream_get_output_stream (stream);
      while (stream_read_full (in, buf, sizeof buf))
        stream_write_all (out, buf, sizeof buf);
    }
}

static void
pingpong_client (const Params *p,
                 int           ctl,
                 Result       *r)
{
  char buf[MSG_SIZE];
  char reply[MSG_SIZE];
  double t0, t1;

  memset (buf, 'p', sizeof buf);
  ctl_wait (ctl);

  if (p->variant == V_RAW || p->raw_client)
    {
      int fd = raw_connect (p->name);

      t0 = now_s ();
      for (guint i = 0; i < p->iters; i++)
        {
          buf[0] = (char) i;
          raw_write_all (fd, buf, sizeof buf);
          if (!raw_read_full (fd, reply, sizeof reply) || memcmp (buf, reply, sizeof buf) != 0)
            die ("ping-pong: bad reply");
        }
      t1 = now_s ();
      close (fd);
    }
  else
    {
      g_autoptr(GIOStream) stream = NULL;
      GInputStream *in;
      GOutputStream *out;

      stream = subject_connect (p);
      in = g_io_stream_get_input_stream (stream);
      out = g_io_stream_get_output_stream (stream);

      t0 = now_s ();
      for (guint i = 0; i < p->iters; i++)
        {
          buf[0] = (char) i;
          stream_write_all (out, buf, sizeof buf);
          if (!stream_read_full (in, reply, sizeof reply) || memcmp (buf, reply, sizeof buf) != 0)
            die ("ping-pong: bad reply");
        }
      t1 = now_s ();
    }

  r->v[0] = (t1 - t0) / p->iters * 1e6;  /* µs per round trip */
}

/* ---------------------------------------------------------------------- */
/* connect + accept + one 64-byte round trip, one connection at a time.
 * The raw server is a single-thread blocking accept loop. */

typedef struct
{
  LsockListener *listener;
  GMainLoop     *loop;
  guint          left;
} AsyncAcceptState;

static void async_accept_cb (GObject *source, GAsyncResult *result, gpointer user_data);

static void
async_accept_cb (GObject      *source,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  AsyncAcceptState *st = user_data;
  GError *error = NULL;
  g_autoptr(LsockStream) stream = lsock_listener_accept_finish (st->listener, result, &error);
  char buf[MSG_SIZE];

  if (stream == NULL)
    die ("accept_async: %s", error->message);
  /* The peer writes at once: a blocking read here costs no more than
   * another trip round the main loop would */
  if (!stream_read_full (g_io_stream_get_input_stream (G_IO_STREAM (stream)), buf, sizeof buf))
    die ("connect: no request");
  stream_write_all (g_io_stream_get_output_stream (G_IO_STREAM (stream)), buf, sizeof buf);
  g_io_stream_close (G_IO_STREAM (stream), NULL, NULL);

  if (--st->left == 0)
    g_main_loop_quit (st->loop);
  else
    lsock_listener_accept_async (st->listener, NULL, async_accept_cb, st);
}

/* lsock-bytes: the fast path end to end: accept_async(), chained from its
 * callback as the documentation has it, then the request read with
 * receive_bytes_async() and the reply written with send_bytes_async() on
 * the context, no substream made. st->left counts the accepts to start,
 * bytes_connect_to_serve the replies to send. */
static guint bytes_connect_to_serve;

typedef struct
{
  AsyncAcceptState *st;
  LsockStream      *stream;
  gsize             got;
  char              buf[MSG_SIZE];
} BytesConnectConn;

static void bytes_accept_cb (GObject *source, GAsyncResult *result, gpointer user_data);

static void
bytes_connect_sent_cb (GObject      *source,
                       GAsyncResult *result,
                       gpointer      user_data)
{
  BytesConnectConn *c = user_data;
  AsyncAcceptState *st = c->st;
  GError *error = NULL;

  if (!lsock_stream_send_bytes_finish (c->stream, result, &error))
    die ("send_bytes_async: %s", error->message);
  g_io_stream_close (G_IO_STREAM (c->stream), NULL, NULL);
  g_object_unref (c->stream);
  g_free (c);
  if (--bytes_connect_to_serve == 0)
    g_main_loop_quit (st->loop);
}

static void
bytes_connect_received_cb (GObject      *source,
                           GAsyncResult *result,
                           gpointer      user_data)
{
  BytesConnectConn *c = user_data;
  GError *error = NULL;
  g_autoptr(GBytes) got = lsock_stream_receive_bytes_finish (c->stream, result, &error);

  if (got == NULL)
    die ("receive_bytes_async: %s", error->message);
  if (g_bytes_get_size (got) == 0)
    die ("connect: no request");
  if (g_bytes_get_size (got) == MSG_SIZE)
    {
      /* The request came whole, as it nearly always does */
      lsock_stream_send_bytes_async (c->stream, got, G_PRIORITY_DEFAULT, NULL,
                                     bytes_connect_sent_cb, c);
      return;
    }
  memcpy (c->buf + c->got, g_bytes_get_data (got, NULL), g_bytes_get_size (got));
  c->got += g_bytes_get_size (got);
  if (c->got < MSG_SIZE)
    lsock_stream_receive_bytes_async (c->stream, MSG_SIZE - c->got, G_PRIORITY_DEFAULT, NULL,
                                      bytes_connect_received_cb, c);
  else
    {
      g_autoptr(GBytes) reply = g_bytes_new (c->buf, MSG_SIZE);

      lsock_stream_send_bytes_async (c->stream, reply, G_PRIORITY_DEFAULT, NULL,
                                     bytes_connect_sent_cb, c);
    }
}

static void
bytes_accept_cb (GObject      *source,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  AsyncAcceptState *st = user_data;
  GError *error = NULL;
  BytesConnectConn *c = g_new0 (BytesConnectConn, 1);

  c->st = st;
  c->stream = lsock_listener_accept_finish (st->listener, result, &error);
  if (c->stream == NULL)
    die ("accept_async: %s", error->message);
  lsock_stream_receive_bytes_async (c->stream, MSG_SIZE, G_PRIORITY_DEFAULT, NULL,
                                    bytes_connect_received_cb, c);
  if (--st->left > 0)
    lsock_listener_accept_async (st->listener, NULL, bytes_accept_cb, st);
}

/* gio-service: GIO's own main-loop accept (GSocketService chains
 * g_socket_listener_accept_async()), then what lsock-async's callback does */
static gboolean
connect_incoming_cb (GSocketService    *service,
                     GSocketConnection *connection,
                     GObject           *source_object,
                     gpointer           user_data)
{
  AsyncAcceptState *st = user_data;
  char buf[MSG_SIZE];

  if (!stream_read_full (g_io_stream_get_input_stream (G_IO_STREAM (connection)), buf, sizeof buf))
    die ("connect: no request");
  stream_write_all (g_io_stream_get_output_stream (G_IO_STREAM (connection)), buf, sizeof buf);
  g_io_stream_close (G_IO_STREAM (connection), NULL, NULL);
  if (--st->left == 0)
    g_main_loop_quit (st->loop);
  return TRUE;
}

#ifdef HAVE_LIBUV
/* libuv: the listening socket is made here and handed to uv_pipe_open(),
 * because libuv 1.44's uv_pipe_bind() takes a path and cannot bind an
 * abstract name (uv_pipe_bind2() is 1.46). Each connection is a uv_pipe_t
 * that reads the request with uv_read_start(), answers with uv_write() and
 * is closed with uv_close(). */

typedef struct
{
  uv_pipe_t  pipe;         /* first: the handle is the connection */
  uv_write_t req;
  gsize      got;
  char       buf[MSG_SIZE];
} UvConnectConn;

static struct
{
  uv_pipe_t listener;
  guint     left;
} libuv_connect;

static void
libuv_connect_close_cb (uv_handle_t *handle)
{
  g_free (handle);
  if (--libuv_connect.left == 0)
    uv_close ((uv_handle_t *) &libuv_connect.listener, NULL);
}

static void
libuv_connect_write_cb (uv_write_t *req,
                        int         status)
{
  if (status < 0)
    die ("libuv write: %s", uv_strerror (status));
  uv_close ((uv_handle_t *) req->handle, libuv_connect_close_cb);
}

static void
libuv_connect_alloc_cb (uv_handle_t *handle,
                        size_t       suggested_size,
                        uv_buf_t    *buf)
{
  UvConnectConn *c = (UvConnectConn *) handle;

  *buf = uv_buf_init (c->buf + c->got, sizeof c->buf - c->got);
}

static void
libuv_connect_read_cb (uv_stream_t    *stream,
                       ssize_t         nread,
                       const uv_buf_t *buf)
{
  UvConnectConn *c = (UvConnectConn *) stream;
  uv_buf_t reply;
  int err;

  if (nread == 0)
    return;
  if (nread < 0)
    die ("connect: no request (%s)", uv_strerror (nread));
  c->got += nread;
  if (c->got < sizeof c->buf)
    return;
  uv_read_stop (stream);
  reply = uv_buf_init (c->buf, sizeof c->buf);
  if ((err = uv_write (&c->req, stream, &reply, 1, libuv_connect_write_cb)) != 0)
    die ("libuv write: %s", uv_strerror (err));
}

static void
libuv_connect_connection_cb (uv_stream_t *server,
                             int          status)
{
  UvConnectConn *c;
  int err;

  if (status < 0)
    die ("libuv accept: %s", uv_strerror (status));
  c = g_new (UvConnectConn, 1);
  c->got = 0;
  uv_pipe_init (server->loop, &c->pipe, 0);
  if ((err = uv_accept (server, (uv_stream_t *) &c->pipe)) != 0)
    die ("libuv accept: %s", uv_strerror (err));
  uv_read_start ((uv_stream_t *) &c->pipe, libuv_connect_alloc_cb, libuv_connect_read_cb);
}

/* A listening uv_pipe_t on the abstract name, as raw_listen() binds it */
static void
libuv_listen_abstract (uv_loop_t        *loop,
                       uv_pipe_t        *listener,
                       const Params     *p,
                       uv_connection_cb  cb)
{
  int err;

  uv_pipe_init (loop, listener, 0);
  if ((err = uv_pipe_open (listener, raw_listen (p->name, TRUE))) != 0 ||
      (err = uv_listen ((uv_stream_t *) listener, SOMAXCONN, cb)) != 0)
    die ("libuv listen: %s", uv_strerror (err));
}

static void
connect_server_libuv (const Params *p,
                      int           ctl)
{
  uv_loop_t loop;

  uv_loop_init (&loop);
  libuv_connect.left = p->iters;
  libuv_listen_abstract (&loop, &libuv_connect.listener, p, libuv_connect_connection_cb);
  ctl_send (ctl, 'R');
  uv_run (&loop, UV_RUN_DEFAULT);
  if (uv_loop_close (&loop) != 0)
    die ("libuv: handles left open");
}
#endif

static void
connect_server (const Params *p,
                int           ctl,
                Result       *r)
{
  char buf[MSG_SIZE];
  GError *error = NULL;

  if (p->variant == V_RAW)
    {
      int lfd = raw_listen (p->name, FALSE);

      ctl_send (ctl, 'R');
      for (guint i = 0; i < p->iters; i++)
        {
          int fd = accept4 (lfd, NULL, NULL, SOCK_CLOEXEC);

          if (fd < 0)
            die ("accept: %s", strerror (errno));
          if (!raw_read_full (fd, buf, sizeof buf))
            die ("connect: no request");
          raw_write_all (fd, buf, sizeof buf);
          close (fd);
        }
      close (lfd);
    }
  else if (p->variant == V_LSOCK)
    {
      g_autoptr(LsockListener) listener = lsock_listen (p);

      ctl_send (ctl, 'R');
      for (guint i = 0; i < p->iters; i++)
        {
          g_autoptr(LsockStream) stream = lsock_listener_accept (listener, NULL, &error);

          if (stream == NULL)
            die ("accept: %s", error->message);
          if (!stream_read_full (g_io_stream_get_input_stream (G_IO_STREAM (stream)), buf, sizeof buf))
            die ("connect: no request");
          stream_write_all (g_io_stream_get_output_stream (G_IO_STREAM (stream)), buf, sizeof buf);
          g_io_stream_close (G_IO_STREAM (stream), NULL, NULL);
        }
    }
  else if (p->variant == V_GIO_FLOOR)
    {
      /* The raw loop, each connection wrapped in the least GIOStream */
      int lfd = raw_listen (p->name, FALSE);

      ctl_send (ctl, 'R');
      for (guint i = 0; i < p->iters; i++)
        {
          int fd = accept4 (lfd, NULL, NULL, SOCK_CLOEXEC);
          g_autoptr(GIOStream) stream = NULL;

          if (fd < 0)
            die ("accept: %s", strerror (errno));
          stream = bench_fd_stream_new (fd);
          if (!stream_read_full (g_io_stream_get_input_stream (stream), buf, sizeof buf))
            die ("connect: no request");
          stream_write_all (g_io_stream_get_output_stream (stream), buf, sizeof buf);
          g_io_stream_close (stream, NULL, NULL);
        }
      close (lfd);
    }
  else if (p->variant == V_LSOCK_ASYNC || p->variant == V_LSOCK_BYTES)
    {
      GMainContext *context = g_main_context_new ();
      AsyncAcceptState st = { 0 };

      g_main_context_push_thread_default (context);
      st.listener = lsock_listen (p);
      st.loop = g_main_loop_new (context, FALSE);
      st.left = bytes_connect_to_serve = p->iters;
      ctl_send (ctl, 'R');
      lsock_listener_accept_async (st.listener, NULL,
                                   p->variant == V_LSOCK_BYTES ? bytes_accept_cb : async_accept_cb,
                                   &st);
      g_main_loop_run (st.loop);
      g_main_loop_unref (st.loop);
      g_object_unref (st.listener);
      g_main_context_pop_thread_default (context);
      g_main_context_unref (context);
    }
  else if (p->variant == V_GIO_SERVICE)
    {
      GMainContext *context = g_main_context_new ();
      AsyncAcceptState st = { 0 };
      GSocketService *service;

      g_main_context_push_thread_default (context);
      service = gio_service_listen (p);
      g_signal_connect (service, "incoming", G_CALLBACK (connect_incoming_cb), &st);
      st.loop = g_main_loop_new (context, FALSE);
      st.left = p->iters;
      ctl_send (ctl, 'R');
      g_main_loop_run (st.loop);
      g_main_loop_unref (st.loop);
      gio_service_close (service, context);
      g_main_context_pop_thread_default (context);
      g_main_context_unref (context);
    }
#ifdef HAVE_LIBUV
  else if (p->variant == V_LIBUV)
    connect_server_libuv (p, ctl);
#endif
  else
    {
      g_autoptr(GSocketListener) listener = gio_listen (p);

      ctl_send (ctl, 'R');
      for (guint i = 0; i < p->iters; i++)
        {
          g_autoptr(GSocketConnection) stream = g_socket_listener_accept (listener, NULL, NULL, &error);

          if (stream == NULL)
            die ("accept: %s", error->message);
          if (!stream_read_full (g_io_stream_get_input_stream (G_IO_STREAM (stream)), buf, sizeof buf))
            die ("connect: no request");
          stream_write_all (g_io_stream_get_output_stream (G_IO_STREAM (stream)), buf, sizeof buf);
          g_io_stream_close (G_IO_STREAM (stream), NULL, NULL);
        }
    }
}

static void
connect_client (const Params *p,
                int           ctl,
                Result       *r)
{
  char buf[MSG_SIZE];
  g_autoptr(GSocketClient) client = NULL;
  g_autoptr(LsockName) name = NULL;
  GError *error = NULL;
  double t0, t1;

  /* The raw client for raw, gio-floor and libuv; GSocketClient for gio and
   * gio-service; lsock_stream_connect() for the lsock servers */
  memset (buf, 'c', sizeof buf);
  if (p->variant == V_GIO || p->variant == V_GIO_SERVICE)
    client = g_socket_client_new ();
  else if (p->variant != V_RAW && p->variant != V_GIO_FLOOR && p->variant != V_LIBUV)
    name = lsock_name_for (p);
  ctl_wait (ctl);

  t0 = now_s ();
  for (guint i = 0; i < p->iters; i++)
    {
      if (p->variant == V_RAW || p->variant == V_LIBUV)
        {
          int fd = raw_connect (p->name);

          raw_write_all (fd, buf, sizeof buf);
          if (!raw_read_full (fd, buf, sizeof buf))
            die ("connect: no reply");
          close (fd);
        }
      else if (p->variant == V_LSOCK_BYTES)
        {
          g_autoptr(LsockStream) stream = lsock_stream_connect (name, NULL, &error);
          g_autoptr(GBytes) request = g_bytes_new_static (buf, sizeof buf);
          gsize got = 0;

          if (stream == NULL)
            die ("connect: %s", error->message);
          if (!lsock_stream_send_bytes (stream, request, NULL, &error))
            die ("send_bytes: %s", error->message);
          while (got < sizeof buf)
            {
              g_autoptr(GBytes) reply = lsock_stream_receive_bytes (stream, sizeof buf - got,
                                                                    NULL, &error);

              if (reply == NULL)
                die ("receive_bytes: %s", error->message);
              if (g_bytes_get_size (reply) == 0)
                die ("connect: no reply");
              memcpy (buf + got, g_bytes_get_data (reply, NULL), g_bytes_get_size (reply));
              got += g_bytes_get_size (reply);
            }
          g_io_stream_close (G_IO_STREAM (stream), NULL, NULL);
        }
      else
        {
          g_autoptr(GIOStream) stream = NULL;

          if (client != NULL)
            stream = G_IO_STREAM (gio_connect (client, p));
          else if (p->variant == V_GIO_FLOOR)
            stream = bench_fd_stream_new (raw_connect (p->name));
          else
            stream = G_IO_STREAM (lsock_stream_connect (name, NULL, &error));
          if (stream == NULL)
            die ("connect: %s", error->message);
          stream_write_all (g_io_stream_get_output_stream (stream), buf, sizeof buf);
          if (!stream_read_full (g_io_stream_get_input_stream (stream), buf, sizeof buf))
            die ("connect: no reply");
          g_io_stream_close (stream, NULL, NULL);
        }
    }
  t1 = now_s ();

  if (buf[0] != 'c')
    {
      r->ok = FALSE;
      g_strlcpy (r->message, "connect: bad reply", sizeof r->message);
    }
  r->v[0] = p->iters / (t1 - t0);  /* connections per second */
}

/* ---------------------------------------------------------------------- */
/* Echo service on one thread: the raw baseline is an epoll server; lsock's
 * is LsockListener::incoming plus async reads and writes on a GMainContext.
 * Two more main-loop baselines: gio-service makes the same reads and writes
 * on the connections of GIO's own GSocketService, and libuv is one uv loop
 * (uv_read_start() and uv_write()). The client process keeps n_clients
 * connections in a closed loop (one 64-byte message in flight on each),
 * multiplexed with epoll. */

#define ECHO_BUF 4096

typedef struct
{
  int    fd;
  gsize  pending_len;   /* bytes read but not yet written back */
  gsize  pending_off;
  char   buf[ECHO_BUF];
} RawEchoConn;

static void
raw_echo_conn_free (gpointer data)
{
  RawEchoConn *c = data;

  close (c->fd);
  g_free (c);
}

static void
echo_server_raw (const Params *p,
                 int           ctl)
{
  int lfd = raw_listen (p->name, TRUE);
  int ep = epoll_create1 (EPOLL_CLOEXEC);
  struct epoll_event ev, events[256];
  gboolean running = TRUE;
  GHashTable *live = g_hash_table_new_full (NULL, NULL, NULL, raw_echo_conn_free);

  ev.events = EPOLLIN;
  ev.data.ptr = NULL;
  epoll_ctl (ep, EPOLL_CTL_ADD, lfd, &ev);
  ev.events = EPOLLIN;
  ev.data.ptr = &ctl;
  epoll_ctl (ep, EPOLL_CTL_ADD, ctl, &ev);
  ctl_send (ctl, 'R');

  /* After the client's 'Q', only until its connections have all ended */
  while (running || g_hash_table_size (live) > 0)
    {
      int n = epoll_wait (ep, events, G_N_ELEMENTS (events), running ? -1 : 2000);

      if (n == 0)
        break;

      for (int i = 0; i < n; i++)
        {
          RawEchoConn *c = events[i].data.ptr;

          if (c == NULL)
            {
              for (int k = 0; k < 64; k++)
                {
                  int fd = accept4 (lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

                  if (fd < 0)
                    break;
                  c = g_new (RawEchoConn, 1);
                  g_hash_table_add (live, c);
                  c->fd = fd;
                  c->pending_len = c->pending_off = 0;
                  ev.events = EPOLLIN;
                  ev.data.ptr = c;
                  epoll_ctl (ep, EPOLL_CTL_ADD, fd, &ev);
                }
              continue;
            }
          if ((gpointer) c == (gpointer) &ctl)
            {
              running = FALSE;
              epoll_ctl (ep, EPOLL_CTL_DEL, ctl, NULL);
              continue;
            }

          if (c->pending_len == 0)
            {
              ssize_t r = recv (c->fd, c->buf, sizeof c->buf, 0);

              if (r <= 0)
                {
                  if (r < 0 && (errno == EAGAIN || errno == EINTR))
                    continue;
                  epoll_ctl (ep, EPOLL_CTL_DEL, c->fd, NULL);
                  g_hash_table_remove (live, c);
                  continue;
                }
              c->pending_len = r;
              c->pending_off = 0;
            }
          while (c->pending_off < c->pending_len)
            {
              ssize_t w = send (c->fd, c->buf + c->pending_off,
                                c->pending_len - c->pending_off, MSG_NOSIGNAL);

              if (w < 0 && errno == EINTR)
                continue;
              if (w < 0)
                break;
              c->pending_off += w;
            }
          if (c->pending_off == c->pending_len)
            {
              c->pending_len = 0;
              if (events[i].events & EPOLLOUT)
                {
                  ev.events = EPOLLIN;
                  ev.data.ptr = c;
                  epoll_ctl (ep, EPOLL_CTL_MOD, c->fd, &ev);
                }
            }
          else
            {
              ev.events = EPOLLOUT;
              ev.data.ptr = c;
              epoll_ctl (ep, EPOLL_CTL_MOD, c->fd, &ev);
            }
        }
    }
  g_hash_table_unref (live);
  close (ep);
  close (lfd);
}

/* The same echo service the sync way, for the sync path's echo target: the
 * raw baseline accepts with accept() and serves each connection on a
 * thread of its own with blocking recv() and send(); lsock accepts with
 * lsock_listener_accept() and each thread reads with g_input_stream_read()
 * and writes with g_output_stream_write_all(). Both accept the figure's
 * clients, which all connect before the first message, then end once
 * every connection has. */
static gpointer
echo_sync_raw_thread (gpointer data)
{
  int fd = GPOINTER_TO_INT (data);
  char buf[ECHO_BUF];

  for (;;)
    {
      ssize_t n = recv (fd, buf, sizeof buf, 0);
      ssize_t off = 0;

      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        break;
      while (off < n)
        {
          ssize_t w = send (fd, buf + off, n - off, MSG_NOSIGNAL);

          if (w < 0 && errno == EINTR)
            continue;
          if (w < 0)
            break;
          off += w;
        }
      if (off < n)
        break;
    }
  close (fd);
  return NULL;
}

static gpointer
echo_sync_lsock_thread (gpointer data)
{
  LsockStream *stream = data;
  GInputStream *in = g_io_stream_get_input_stream (G_IO_STREAM (stream));
  GOutputStream *out = g_io_stream_get_output_stream (G_IO_STREAM (stream));
  char buf[ECHO_BUF];

  for (;;)
    {
      gssize n = g_input_stream_read (in, buf, sizeof buf, NULL, NULL);

      if (n <= 0 || !g_output_stream_write_all (out, buf, n, NULL, NULL, NULL))
        break;
    }
  g_object_unref (stream);
  return NULL;
}

static void
echo_sync_server (const Params *p,
                  int           ctl,
                  Result       *r)
{
  GPtrArray *threads = g_ptr_array_new ();
  LsockListener *listener = NULL;
  int lfd = -1;

  if (p->variant == V_RAW)
    lfd = raw_listen (p->name, FALSE);
  else
    listener = lsock_listen (p);
  ctl_send (ctl, 'R');

  for (guint i = 0; i < p->n_clients; i++)
    {
      GThread *thread;

      if (p->variant == V_RAW)
        {
          int fd;

          do
            fd = accept4 (lfd, NULL, NULL, SOCK_CLOEXEC);
          while (fd < 0 && errno == EINTR);
          if (fd < 0)
            die ("echo-sync accept: %s", strerror (errno));
          thread = g_thread_new ("echo", echo_sync_raw_thread, GINT_TO_POINTER (fd));
        }
      else
        {
          GError *error = NULL;
          LsockStream *stream = lsock_listener_accept (listener, NULL, &error);

          if (stream == NULL)
            die ("echo-sync accept: %s", error->message);
          thread = g_thread_new ("echo", echo_sync_lsock_thread, stream);
        }
      g_ptr_array_add (threads, thread);
    }
  /* Each ends with its connection, which the client closes before 'Q' */
  for (guint i = 0; i < threads->len; i++)
    g_thread_join (threads->pdata[i]);
  g_ptr_array_unref (threads);

  if (listener != NULL)
    {
      lsock_listener_close (listener);
      g_object_unref (listener);
    }
  if (lfd >= 0)
    close (lfd);
}

typedef struct
{
  GIOStream     *stream;        /* an LsockStream, or gio-service's GSocketConnection */
  GInputStream  *in;
  GOutputStream *out;
  gsize          len;
  gsize          off;
  char           buf[ECHO_BUF];
} LsockEchoConn;

static void echo_read_cb (GObject *source, GAsyncResult *result, gpointer user_data);

static guint echo_live;          /* connections open in the lsock or gio-service server */
static gboolean echo_nb;         /* lsock-nb: reply with write_nonblocking() */
static GMainLoop *echo_loop;
static gboolean echo_quitting;

static void
echo_conn_free (LsockEchoConn *c)
{
  g_object_unref (c->stream);
  g_free (c);
  if (--echo_live == 0 && echo_quitting)
    g_main_loop_quit (echo_loop);
}

static void
echo_write_cb (GObject      *source,
               GAsyncResult *result,
               gpointer      user_data)
{
  LsockEchoConn *c = user_data;
  gssize n = g_output_stream_write_finish (c->out, result, NULL);

  if (n <= 0)
    {
      echo_conn_free (c);
      return;
    }
  c->off += n;
  if (c->off < c->len)
    {
      g_output_stream_write_async (c->out, c->buf + c->off, c->len - c->off,
                                   G_PRIORITY_DEFAULT, NULL, echo_write_cb, c);
      return;
    }
  g_input_stream_read_async (c->in, c->buf, sizeof c->buf, G_PRIORITY_DEFAULT, NULL,
                             echo_read_cb, c);
}

static void
echo_read_cb (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  LsockEchoConn *c = user_data;
  gssize n = g_input_stream_read_finish (c->in, result, NULL);

  if (n <= 0)
    {
      echo_conn_free (c);
      return;
    }
  c->len = n;
  c->off = 0;
  if (echo_nb)
    {
      /* The reply fits the socket buffer nearly always: write it now, and
       * wait (write_async) only for what does not */
      gssize w = g_pollable_output_stream_write_nonblocking (G_POLLABLE_OUTPUT_STREAM (c->out),
                                                             c->buf, n, NULL, NULL);
      if (w == n)
        {
          g_input_stream_read_async (c->in, c->buf, sizeof c->buf, G_PRIORITY_DEFAULT, NULL,
                                     echo_read_cb, c);
          return;
        }
      c->off = MAX (w, 0);
    }
  g_output_stream_write_async (c->out, c->buf + c->off, n - c->off, G_PRIORITY_DEFAULT, NULL,
                               echo_write_cb, c);
}

static void
echo_conn_start (GIOStream *stream)
{
  LsockEchoConn *c = g_new (LsockEchoConn, 1);

  echo_live++;
  c->stream = g_object_ref (stream);
  c->in = g_io_stream_get_input_stream (stream);
  c->out = g_io_stream_get_output_stream (stream);
  g_input_stream_read_async (c->in, c->buf, sizeof c->buf, G_PRIORITY_DEFAULT, NULL,
                             echo_read_cb, c);
}

/* lsock-bytes: the fast path, whole GBytes, no GTask */
static void echo_bytes_received_cb (GObject *source, GAsyncResult *result, gpointer user_data);

static void
echo_bytes_conn_free (LsockStream *stream)
{
  g_object_unref (stream);
  if (--echo_live == 0 && echo_quitting)
    g_main_loop_quit (echo_loop);
}

static void
echo_bytes_sent_cb (GObject      *source,
                    GAsyncResult *result,
                    gpointer      user_data)
{
  LsockStream *stream = LSOCK_STREAM (source);

  if (!lsock_stream_send_bytes_finish (stream, result, NULL))
    {
      echo_bytes_conn_free (stream);
      return;
    }
  lsock_stream_receive_bytes_async (stream, ECHO_BUF, G_PRIORITY_DEFAULT, NULL,
                                    echo_bytes_received_cb, NULL);
}

static void
echo_bytes_received_cb (GObject      *source,
                        GAsyncResult *result,
                        gpointer      user_data)
{
  LsockStream *stream = LSOCK_STREAM (source);
  GBytes *bytes = lsock_stream_receive_bytes_finish (stream, result, NULL);

  if (bytes == NULL || g_bytes_get_size (bytes) == 0)
    {
      g_clear_pointer (&bytes, g_bytes_unref);
      echo_bytes_conn_free (stream);
      return;
    }
  lsock_stream_send_bytes_async (stream, bytes, G_PRIORITY_DEFAULT, NULL,
                                 echo_bytes_sent_cb, NULL);
  g_bytes_unref (bytes);
}

/* lsock-src: GIO's own pattern for a non-blocking server, with no object
 * per operation: one pollable source per connection for its whole life
 * (G_SOURCE_CONTINUE), one read_nonblocking() per readiness (a read that
 * did not fill the buffer emptied the socket; one that did is followed by
 * another, as libuv does) and each piece written back with
 * write_nonblocking(). A 64-byte reply into the socket buffer of a client
 * that reads every reply always fits: a short write is a failed run. */
typedef struct
{
  LsockStream   *stream;
  GInputStream  *in;
  GOutputStream *out;
  GSource       *source;
  char           buf[ECHO_BUF];
} EchoSrcConn;

static gboolean
echo_src_readable_cb (GObject  *pollable,
                      gpointer  user_data)
{
  EchoSrcConn *c = user_data;

  for (int i = 0; i < 32; i++)
    {
      GError *error = NULL;
      gssize n = g_pollable_input_stream_read_nonblocking (G_POLLABLE_INPUT_STREAM (c->in),
                                                           c->buf, sizeof c->buf, NULL, &error);
      gssize w;

      if (n < 0 && g_error_matches (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
        {
          g_error_free (error);
          return G_SOURCE_CONTINUE;
        }
      if (n <= 0)
        {
          g_clear_error (&error);
          g_source_unref (c->source);
          echo_bytes_conn_free (c->stream);
          g_free (c);
          return G_SOURCE_REMOVE;
        }
      w = g_pollable_output_stream_write_nonblocking (G_POLLABLE_OUTPUT_STREAM (c->out),
                                                      c->buf, n, NULL, &error);
      if (w != n)
        die ("lsock-src: short write (%" G_GSSIZE_FORMAT " of %" G_GSSIZE_FORMAT "): %s",
             w, n, error != NULL ? error->message : "partial");
      if ((gsize) n < sizeof c->buf)
        break;
    }
  return G_SOURCE_CONTINUE;
}

static void
echo_src_conn_start (LsockStream *stream)
{
  EchoSrcConn *c = g_new (EchoSrcConn, 1);

  echo_live++;
  c->stream = g_object_ref (stream);
  c->in = g_io_stream_get_input_stream (G_IO_STREAM (stream));
  c->out = g_io_stream_get_output_stream (G_IO_STREAM (stream));
  c->source = g_pollable_input_stream_create_source (G_POLLABLE_INPUT_STREAM (c->in), NULL);
  g_source_set_callback (c->source, (GSourceFunc) (void (*) (void)) echo_src_readable_cb, c,
                         NULL);
  g_source_attach (c->source, g_main_context_get_thread_default ());
}

static gboolean
echo_incoming_cb (LsockListener *listener,
                  LsockStream   *stream,
                  gpointer       user_data)
{
  if (GPOINTER_TO_INT (user_data) == V_LSOCK_SRC)
    {
      echo_src_conn_start (stream);
      return TRUE;
    }
  if (GPOINTER_TO_INT (user_data) == V_LSOCK_BYTES)
    {
      echo_live++;
      lsock_stream_receive_bytes_async (g_object_ref (stream), ECHO_BUF, G_PRIORITY_DEFAULT,
                                        NULL, echo_bytes_received_cb, NULL);
      return TRUE;
    }
  echo_conn_start (G_IO_STREAM (stream));
  return TRUE;
}

static gboolean
echo_gio_incoming_cb (GSocketService    *service,
                      GSocketConnection *connection,
                      GObject           *source_object,
                      gpointer           user_data)
{
  echo_conn_start (G_IO_STREAM (connection));
  return TRUE;
}

static gboolean
echo_quit_cb (int          fd,
              GIOCondition condition,
              gpointer     user_data)
{
  /* The client closed its connections first: quit once they have ended */
  echo_quitting = TRUE;
  if (echo_live == 0)
    g_main_loop_quit (echo_loop);
  return G_SOURCE_REMOVE;
}

static void
echo_server_lsock (const Params *p,
                   int           ctl)
{
  GMainContext *context = g_main_context_new ();
  GMainLoop *loop = g_main_loop_new (context, FALSE);
  LsockListener *listener;
  GSource *source;

  echo_loop = loop;
  g_main_context_push_thread_default (context);
  listener = lsock_listen (p);
  g_signal_connect (listener, "incoming", G_CALLBACK (echo_incoming_cb),
                    GINT_TO_POINTER (p->variant));
  lsock_listener_start (listener);
  source = g_unix_fd_source_new (ctl, G_IO_IN);
  g_source_set_callback (source, (GSourceFunc) (void (*) (void)) echo_quit_cb, loop, NULL);
  g_source_attach (source, context);
  g_source_unref (source);
  ctl_send (ctl, 'R');
  g_main_loop_run (loop);
  lsock_listener_close (listener);
  g_object_unref (listener);
  g_main_context_pop_thread_default (context);
  g_main_loop_unref (loop);
  g_main_context_unref (context);
}

/* The lsock server's loop and callbacks on GIO's own listener */
static void
echo_server_gio (const Params *p,
                 int           ctl)
{
  GMainContext *context = g_main_context_new ();
  GMainLoop *loop = g_main_loop_new (context, FALSE);
  GSocketService *service;
  GSource *source;

  echo_loop = loop;
  g_main_context_push_thread_default (context);
  service = gio_service_listen (p);
  g_signal_connect (service, "incoming", G_CALLBACK (echo_gio_incoming_cb), NULL);
  source = g_unix_fd_source_new (ctl, G_IO_IN);
  g_source_set_callback (source, (GSourceFunc) (void (*) (void)) echo_quit_cb, loop, NULL);
  g_source_attach (source, context);
  g_source_unref (source);
  ctl_send (ctl, 'R');
  g_main_loop_run (loop);
  gio_service_close (service, context);
  g_main_context_pop_thread_default (context);
  g_main_loop_unref (loop);
  g_main_context_unref (context);
}

#ifdef HAVE_LIBUV
/* libuv: each connection reads into its own buffer (uv_read_start()) and
 * writes each read back with uv_write() (a request allocated per write, as
 * in libuv's own echo server), which writes at once when it can and
 * reports in the next iteration; only if it could not write it all
 * does the connection stop reading until the write is done, as the buffer
 * is still the write's. */

typedef struct
{
  uv_pipe_t pipe;          /* first: the handle is the connection */
  gboolean  stopped;       /* reading stopped until the write is done */
  char      buf[ECHO_BUF];
} UvEchoConn;

static struct
{
  uv_pipe_t listener;
  uv_poll_t ctl;
  guint     live;
  gboolean  quitting;
} libuv_echo;

static void libuv_echo_read_cb (uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);

static void
libuv_echo_maybe_quit (void)
{
  if (libuv_echo.quitting && libuv_echo.live == 0 &&
      !uv_is_closing ((uv_handle_t *) &libuv_echo.listener))
    uv_close ((uv_handle_t *) &libuv_echo.listener, NULL);
}

static void
libuv_echo_close_cb (uv_handle_t *handle)
{
  g_free (handle);
  libuv_echo.live--;
  libuv_echo_maybe_quit ();
}

static void
libuv_echo_conn_close (uv_stream_t *stream)
{
  if (!uv_is_closing ((uv_handle_t *) stream))
    uv_close ((uv_handle_t *) stream, libuv_echo_close_cb);
}

static void
libuv_echo_alloc_cb (uv_handle_t *handle,
                     size_t       suggested_size,
                     uv_buf_t    *buf)
{
  UvEchoConn *c = (UvEchoConn *) handle;

  *buf = uv_buf_init (c->buf, sizeof c->buf);
}

static void
libuv_echo_write_cb (uv_write_t *req,
                     int         status)
{
  UvEchoConn *c = (UvEchoConn *) req->handle;

  g_free (req);
  if (status < 0)
    {
      libuv_echo_conn_close ((uv_stream_t *) c);
      return;
    }
  if (c->stopped && !uv_is_closing ((uv_handle_t *) c))
    {
      c->stopped = FALSE;
      uv_read_start ((uv_stream_t *) c, libuv_echo_alloc_cb, libuv_echo_read_cb);
    }
}

static void
libuv_echo_read_cb (uv_stream_t    *stream,
                    ssize_t         nread,
                    const uv_buf_t *buf)
{
  UvEchoConn *c = (UvEchoConn *) stream;
  uv_write_t *req;
  uv_buf_t reply;

  if (nread == 0)
    return;
  if (nread < 0)
    {
      libuv_echo_conn_close (stream);
      return;
    }
  req = g_new (uv_write_t, 1);
  reply = uv_buf_init (c->buf, nread);
  if (uv_write (req, stream, &reply, 1, libuv_echo_write_cb) != 0)
    {
      g_free (req);
      libuv_echo_conn_close (stream);
      return;
    }
  if (uv_stream_get_write_queue_size (stream) > 0)
    {
      uv_read_stop (stream);
      c->stopped = TRUE;
    }
}

static void
libuv_echo_connection_cb (uv_stream_t *server,
                          int          status)
{
  UvEchoConn *c;
  int err;

  if (status < 0)
    die ("libuv accept: %s", uv_strerror (status));
  c = g_new (UvEchoConn, 1);
  c->stopped = FALSE;
  uv_pipe_init (server->loop, &c->pipe, 0);
  if ((err = uv_accept (server, (uv_stream_t *) &c->pipe)) != 0)
    die ("libuv accept: %s", uv_strerror (err));
  libuv_echo.live++;
  uv_read_start ((uv_stream_t *) &c->pipe, libuv_echo_alloc_cb, libuv_echo_read_cb);
}

static void
libuv_echo_quit_cb (uv_poll_t *handle,
                    int        status,
                    int        events)
{
  /* The client closed its connections first: quit once they have ended */
  uv_close ((uv_handle_t *) handle, NULL);
  libuv_echo.quitting = TRUE;
  libuv_echo_maybe_quit ();
}

static void
echo_server_libuv (const Params *p,
                   int           ctl)
{
  uv_loop_t loop;

  uv_loop_init (&loop);
  memset (&libuv_echo, 0, sizeof libuv_echo);
  libuv_listen_abstract (&loop, &libuv_echo.listener, p, libuv_echo_connection_cb);
  ctl_send (ctl, 'R');
  uv_poll_init (&loop, &libuv_echo.ctl, ctl);
  uv_poll_start (&libuv_echo.ctl, UV_READABLE, libuv_echo_quit_cb);
  uv_run (&loop, UV_RUN_DEFAULT);
  if (uv_loop_close (&loop) != 0)
    die ("libuv: handles left open");
}
#endif

static void
echo_server (const Params *p,
             int           ctl,
             Result       *r)
{
  struct rusage ru;

  echo_nb = p->variant == V_LSOCK_NB;
  if (p->variant == V_RAW)
    echo_server_raw (p, ctl);
  else if (p->variant == V_GIO_SERVICE)
    echo_server_gio (p, ctl);
#ifdef HAVE_LIBUV
  else if (p->variant == V_LIBUV)
    echo_server_libuv (p, ctl);
#endif
  else
    echo_server_lsock (p, ctl);
  /* CPU time of the server, for LSOCK_BENCH_DEBUG */
  getrusage (RUSAGE_SELF, &ru);
  r->v[0] = ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6;
  r->v[1] = ru.ru_stime.tv_sec + ru.ru_stime.tv_usec * 1e-6;
}

typedef struct
{
  int     fd;
  guint   got;
  guint   served;
  guint32 seq;
  double  sent_at;
  char    msg[MSG_SIZE];
  char    reply[MSG_SIZE];
} EchoClient;

static int
cmp_double (const void *a,
            const void *b)
{
  double x = *(const double *) a, y = *(const double *) b;

  return x < y ? -1 : x > y;
}

static int
cmp_float (const void *a,
           const void *b)
{
  float x = *(const float *) a, y = *(const float *) b;

  return x < y ? -1 : x > y;
}

static void
echo_client_send (EchoClient *c)
{
  c->seq++;
  memcpy (c->msg + 4, &c->seq, sizeof c->seq);
  c->got = 0;
  c->sent_at = now_s ();
  /* 64 bytes into an empty socket buffer: never partial */
  if (send (c->fd, c->msg, sizeof c->msg, MSG_NOSIGNAL) != sizeof c->msg)
    die ("echo send: %s", strerror (errno));
}

static void
echo_client (const Params *p,
             int           ctl,
             Result       *r)
{
  guint n = p->n_clients;
  EchoClient *clients = g_new0 (EchoClient, n);
  int ep = epoll_create1 (EPOLL_CLOEXEC);
  struct epoll_event ev, events[512];
  GArray *rtts = g_array_sized_new (FALSE, FALSE, sizeof (float), 1 << 20);
  /* duration 0 (--smoke): no time window, every client does p->iters round
   * trips however long that takes (under valgrind, say) */
  gboolean count_mode = p->duration <= 0;
  double warmup = count_mode ? 0 : MIN (0.25, p->duration / 4);
  double start, measure_from, measure_to;
  guint64 count = 0;
  guint served = 0, done = 0;

  ctl_wait (ctl);
  for (guint i = 0; i < n; i++)
    {
      clients[i].fd = raw_connect (p->name);
      memset (clients[i].msg, 'e', sizeof clients[i].msg);
      memcpy (clients[i].msg, &i, sizeof i);
    }
  for (guint i = 0; i < n; i++)
    {
      fcntl (clients[i].fd, F_SETFL, O_NONBLOCK | O_RDWR);
      ev.events = EPOLLIN;
      ev.data.ptr = &clients[i];
      epoll_ctl (ep, EPOLL_CTL_ADD, clients[i].fd, &ev);
    }

  start = now_s ();
  measure_from = start + warmup;
  measure_to = count_mode ? INFINITY : measure_from + p->duration;
  for (guint i = 0; i < n; i++)
    echo_client_send (&clients[i]);

  while (done < n)
    {
      int k = epoll_wait (ep, events, G_N_ELEMENTS (events), 10000);

      if (k == 0)
        die ("echo: no reply for 10 s (%u of %u clients finished)", done, n);
      for (int i = 0; i < k; i++)
        {
          EchoClient *c = events[i].data.ptr;
          ssize_t got = recv (c->fd, c->reply + c->got, sizeof c->reply - c->got, 0);
          double t;

          if (got < 0 && (errno == EAGAIN || errno == EINTR))
            continue;
          if (got <= 0)
            die ("echo recv: %s", got == 0 ? "EOF" : strerror (errno));
          c->got += got;
          if (c->got < sizeof c->reply)
            continue;
          if (memcmp (c->reply, c->msg, sizeof c->msg) != 0)
            die ("echo: reply differs from the message");

          t = now_s ();
          if (c->sent_at >= measure_from && t <= measure_to)
            {
              float us = (t - c->sent_at) * 1e6;

              g_array_append_val (rtts, us);
              count++;
              if (c->served++ == 0)
                served++;
            }
          if (count_mode ? c->served < p->iters : t < measure_to)
            echo_client_send (c);
          else
            {
              epoll_ctl (ep, EPOLL_CTL_DEL, c->fd, NULL);
              done++;
            }
        }
    }
  /* Close first, so that the server sees every connection end before it
   * is told to quit */
  for (guint i = 0; i < n; i++)
    close (clients[i].fd);
  ctl_send (ctl, 'Q');

  qsort (rtts->data, rtts->len, sizeof (float), cmp_float);
  r->v[0] = count / (count_mode ? now_s () - start : p->duration);  /* messages per second */
  r->v[1] = rtts->len ? g_array_index (rtts, float, (gsize) ((rtts->len - 1) * 0.99)) : 0;
  r->v[2] = served;
  {
    double sum = 0;

    for (guint i = 0; i < rtts->len; i++)
      sum += g_array_index (rtts, float, i);
    r->v[3] = rtts->len ? sum / rtts->len : 0;
  }
  if (served < n)
    {
      r->ok = FALSE;
      r->unserved = n - served;
      g_snprintf (r->message, sizeof r->message, "echo: only %u of %u clients served", served, n);
    }
  close (ep);
  g_array_unref (rtts);
  g_free (clients);
}

/* ---------------------------------------------------------------------- */
/* Bulk into a main-loop server: the raw client of bulk-64k writes to a
 * server that reads on one GMainContext (lsock: incoming + read_async;
 * lsock-bytes: receive_bytes_async; gio-service: GSocketService and the
 * same read_async calls; libuv: uv_read_start()), or to the raw blocking
 * one, the baseline. Each reads p->chunk at a time and acknowledges the
 * end of the stream with one byte. */

static struct
{
  GMainLoop *loop;
  GIOStream *stream;     /* the one connection */
  GInputStream *in;
  char      *buf;
  gsize      chunk;
  gsize      total;
} bulk_loop;

static void
bulk_loop_done (void)
{
  stream_write_all (g_io_stream_get_output_stream (bulk_loop.stream), "k", 1);
  g_main_loop_quit (bulk_loop.loop);
}

static void
bulk_loop_read_cb (GObject      *source,
                   GAsyncResult *result,
                   gpointer      user_data)
{
  GError *error = NULL;
  gssize n = g_input_stream_read_finish (bulk_loop.in, result, &error);

  if (n < 0)
    die ("bulk-loop read: %s", error->message);
  if (n == 0)
    {
      bulk_loop_done ();
      return;
    }
  bulk_loop.total += n;
  g_input_stream_read_async (bulk_loop.in, bulk_loop.buf, bulk_loop.chunk, G_PRIORITY_DEFAULT,
                             NULL, bulk_loop_read_cb, NULL);
}

static void
bulk_loop_bytes_cb (GObject      *source,
                    GAsyncResult *result,
                    gpointer      user_data)
{
  GError *error = NULL;
  GBytes *bytes = lsock_stream_receive_bytes_finish (LSOCK_STREAM (source), result, &error);
  gsize n;

  if (bytes == NULL)
    die ("bulk-loop receive: %s", error->message);
  n = g_bytes_get_size (bytes);
  g_bytes_unref (bytes);
  if (n == 0)
    {
      bulk_loop_done ();
      return;
    }
  bulk_loop.total += n;
  lsock_stream_receive_bytes_async (LSOCK_STREAM (source), bulk_loop.chunk, G_PRIORITY_DEFAULT,
                                    NULL, bulk_loop_bytes_cb, NULL);
}

static void
bulk_loop_start (GIOStream *stream,
                 Variant    variant)
{
  if (bulk_loop.stream != NULL)
    die ("bulk-loop: a second connection");
  bulk_loop.stream = g_object_ref (stream);
  bulk_loop.in = g_io_stream_get_input_stream (stream);
  if (variant == V_LSOCK_BYTES)
    lsock_stream_receive_bytes_async (LSOCK_STREAM (stream), bulk_loop.chunk, G_PRIORITY_DEFAULT,
                                      NULL, bulk_loop_bytes_cb, NULL);
  else
    g_input_stream_read_async (bulk_loop.in, bulk_loop.buf, bulk_loop.chunk, G_PRIORITY_DEFAULT,
                               NULL, bulk_loop_read_cb, NULL);
}

static gboolean
bulk_loop_incoming_cb (LsockListener *listener,
                       LsockStream   *stream,
                       gpointer       user_data)
{
  bulk_loop_start (G_IO_STREAM (stream), GPOINTER_TO_INT (user_data));
  return TRUE;
}

static gboolean
bulk_loop_gio_incoming_cb (GSocketService    *service,
                           GSocketConnection *connection,
                           GObject           *source_object,
                           gpointer           user_data)
{
  bulk_loop_start (G_IO_STREAM (connection), V_GIO_SERVICE);
  return TRUE;
}

#ifdef HAVE_LIBUV
static struct
{
  uv_pipe_t listener;
  uv_pipe_t conn;
} libuv_bulk;

static void
libuv_bulk_alloc_cb (uv_handle_t *handle,
                     size_t       suggested_size,
                     uv_buf_t    *buf)
{
  *buf = uv_buf_init (bulk_loop.buf, bulk_loop.chunk);
}

static void
libuv_bulk_read_cb (uv_stream_t    *stream,
                    ssize_t         nread,
                    const uv_buf_t *buf)
{
  uv_buf_t ack = uv_buf_init ((char *) "k", 1);

  if (nread >= 0)
    {
      bulk_loop.total += nread;
      return;
    }
  if (nread != UV_EOF)
    die ("libuv bulk read: %s", uv_strerror (nread));
  /* One byte into an empty buffer */
  if (uv_try_write (stream, &ack, 1) != 1)
    die ("libuv bulk: could not acknowledge");
  uv_close ((uv_handle_t *) stream, NULL);
  uv_close ((uv_handle_t *) &libuv_bulk.listener, NULL);
}

static void
libuv_bulk_connection_cb (uv_stream_t *server,
                          int          status)
{
  int err;

  if (status < 0)
    die ("libuv accept: %s", uv_strerror (status));
  uv_pipe_init (server->loop, &libuv_bulk.conn, 0);
  if ((err = uv_accept (server, (uv_stream_t *) &libuv_bulk.conn)) != 0)
    die ("libuv accept: %s", uv_strerror (err));
  uv_read_start ((uv_stream_t *) &libuv_bulk.conn, libuv_bulk_alloc_cb, libuv_bulk_read_cb);
}
#endif

static void
bulk_loop_server (const Params *p,
                  int           ctl,
                  Result       *r)
{
  g_autoptr(GMainContext) context = NULL;
  g_autoptr(GObject) listener = NULL;

  if (p->variant == V_RAW)
    {
      bulk_server (p, ctl, r);
      return;
    }

  memset (&bulk_loop, 0, sizeof bulk_loop);
  bulk_loop.chunk = p->chunk;
  bulk_loop.buf = g_malloc (p->chunk);

#ifdef HAVE_LIBUV
  if (p->variant == V_LIBUV)
    {
      uv_loop_t loop;

      uv_loop_init (&loop);
      libuv_listen_abstract (&loop, &libuv_bulk.listener, p, libuv_bulk_connection_cb);
      ctl_send (ctl, 'R');
      uv_run (&loop, UV_RUN_DEFAULT);
      if (uv_loop_close (&loop) != 0)
        die ("libuv: handles left open");
    }
  else
#endif
    {
      context = g_main_context_new ();
      bulk_loop.loop = g_main_loop_new (context, FALSE);
      g_main_context_push_thread_default (context);
      if (p->variant == V_GIO_SERVICE)
        {
          listener = G_OBJECT (gio_service_listen (p));
          g_signal_connect (listener, "incoming", G_CALLBACK (bulk_loop_gio_incoming_cb), NULL);
        }
      else
        {
          listener = G_OBJECT (lsock_listen (p));
          g_signal_connect (listener, "incoming", G_CALLBACK (bulk_loop_incoming_cb),
                            GINT_TO_POINTER (p->variant));
          lsock_listener_start (LSOCK_LISTENER (listener));
        }
      ctl_send (ctl, 'R');
      g_main_loop_run (bulk_loop.loop);
      g_clear_object (&bulk_loop.stream);
      if (p->variant == V_GIO_SERVICE)
        gio_service_close (G_SOCKET_SERVICE (g_steal_pointer (&listener)), context);
      else
        lsock_listener_close (LSOCK_LISTENER (listener));
      g_clear_object (&listener);
      g_main_context_pop_thread_default (context);
      g_main_loop_unref (bulk_loop.loop);
    }
  g_free (bulk_loop.buf);

  if (bulk_loop.total != p->total_bytes)
    {
      r->ok = FALSE;
      g_snprintf (r->message, sizeof r->message, "bulk-loop: received %" G_GSIZE_FORMAT
                  " of %" G_GSIZE_FORMAT " bytes", bulk_loop.total, p->total_bytes);
    }
}

/* ---------------------------------------------------------------------- */
/* Memory per idle connection: the server process keeps n_clients accepted
 * connections and reports the heap in use (mallinfo2) and fds, per
 * connection, after a warm-up. */

#define MEM_WARMUP 32

typedef struct
{
  GPtrArray *objects;
} MemState;

static gboolean
mem_incoming_cb (LsockListener *listener,
                 LsockStream   *stream,
                 gpointer       user_data)
{
  g_ptr_array_add (((MemState *) user_data)->objects, g_object_ref (stream));
  return TRUE;
}

static gboolean
mem_gio_incoming_cb (GSocketService    *service,
                     GSocketConnection *connection,
                     GObject           *source_object,
                     gpointer           user_data)
{
  g_ptr_array_add (((MemState *) user_data)->objects, g_object_ref (connection));
  return TRUE;
}

static void
mem_wait_for (MemState     *st,
              GMainContext *context,
              int           lfd,
              guint         n)
{
  while (st->objects->len < n)
    {
      if (context != NULL)
        g_main_context_iteration (context, TRUE);
      else
        {
          GError *error = NULL;
          int fd = accept4 (lfd, NULL, NULL, SOCK_CLOEXEC);
          GSocket *socket;

          if (fd < 0)
            die ("accept: %s", strerror (errno));
          socket = g_socket_new_from_fd (fd, &error);
          if (socket == NULL)
            die ("g_socket_new_from_fd: %s", error->message);
          g_ptr_array_add (st->objects, socket);
        }
    }
}

static void
mem_server (const Params *p,
            int           ctl,
            Result       *r)
{
  GMainContext *context = NULL;
  MemState st;
  g_autoptr(GObject) listener = NULL;
  int lfd = -1;
  gsize heap0, heap1;
  int fds0, fds1;

  /* Room for the array up front, so it does not count */
  st.objects = g_ptr_array_new_full (p->n_clients + MEM_WARMUP + 1, g_object_unref);

  if (p->variant == V_LSOCK || p->variant == V_GIO)
    {
      context = g_main_context_new ();
      g_main_context_push_thread_default (context);
    }
  if (p->variant == V_LSOCK)
    {
      listener = G_OBJECT (lsock_listen (p));
      g_signal_connect (listener, "incoming", G_CALLBACK (mem_incoming_cb), &st);
      lsock_listener_start (LSOCK_LISTENER (listener));
    }
  else if (p->variant == V_GIO)
    {
      g_autoptr(GSocketAddress) address = gio_address_for (p);
      GError *error = NULL;

      listener = G_OBJECT (g_socket_service_new ());
      if (!g_socket_listener_add_address (G_SOCKET_LISTENER (listener), address,
                                          G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_DEFAULT,
                                          NULL, NULL, &error))
        die ("gio listen: %s", error->message);
      g_signal_connect (listener, "incoming", G_CALLBACK (mem_gio_incoming_cb), &st);
      g_socket_service_start (G_SOCKET_SERVICE (listener));
    }
  else
    lfd = raw_listen (p->name, FALSE);

  ctl_send (ctl, 'R');
  mem_wait_for (&st, context, lfd, MEM_WARMUP);
  malloc_trim (0);
  heap0 = mem_in_use ();
  fds0 = count_fds ();
  ctl_send (ctl, 'G');
  mem_wait_for (&st, context, lfd, MEM_WARMUP + p->n_clients);
  heap1 = mem_in_use ();
  fds1 = count_fds ();

  r->v[0] = ((double) heap1 - (double) heap0) / p->n_clients;
  r->v[1] = (double) (fds1 - fds0) / p->n_clients;
  ctl_send (ctl, 'D');
  ctl_wait (ctl);

  g_ptr_array_unref (st.objects);
  if (lfd >= 0)
    close (lfd);
  if (p->variant == V_GIO)
    g_socket_service_stop (G_SOCKET_SERVICE (listener));
  g_clear_object (&listener);
  if (context != NULL)
    {
      while (g_main_context_iteration (context, FALSE))
        ;
      g_main_context_pop_thread_default (context);
      g_main_context_unref (context);
    }
}

static void
mem_client (const Params *p,
            int           ctl,
            Result       *r)
{
  guint total = p->n_clients + MEM_WARMUP;
  int *fds = g_new (int, total);

  ctl_wait (ctl);
  for (guint i = 0; i < MEM_WARMUP; i++)
    fds[i] = raw_connect (p->name);
  ctl_wait (ctl);
  for (guint i = MEM_WARMUP; i < total; i++)
    fds[i] = raw_connect (p->name);
  ctl_wait (ctl);
  for (guint i = 0; i < total; i++)
    close (fds[i]);
  ctl_send (ctl, 'Q');
  g_free (fds);
}

/* ---------------------------------------------------------------------- */
/* The floors (floors.c), run alone on the server's CPU */

/* Both sides of a round trip write and read through a GIOStream */
static void
floor_rtt (const Params *p,
           int           ctl,
           Result       *r)
{
  r->v[0] = 2 * bench_floor_round_trip (opt.floor_iters * 10);
}

/* Both sides of a connection have a GIOStream */
static void
floor_connect (const Params *p,
               int           ctl,
               Result       *r)
{
  r->v[0] = 2 * bench_floor_connection (opt.floor_iters);
}

/* The same, the system calls lsock's contracts add to a main-loop server
 * and its client (floors.c), and the fresh result of each accept_async() */
static void
floor_connect_checked (const Params *p,
                       int           ctl,
                       Result       *r)
{
  r->v[0] = 2 * bench_floor_connection (opt.floor_iters) +
            bench_floor_checked_connection (opt.floor_iters) +
            bench_floor_results (opt.floor_iters, 1);
}

/* Any GIO-style server on a main context: a new result for each read and
 * each write (see floors.c for why no wake-up is counted) */
static double
main_loop_floor (const Params *p)
{
  return bench_floor_results (opt.floor_iters * 10, 2);
}

static void
floor_main_loop (const Params *p,
                 int           ctl,
                 Result       *r)
{
  r->v[0] = main_loop_floor (p);
}

/* A main-context server that only reads: a result per read, in seconds
 * per MB at the figure's chunk (every read a whole chunk, the next one
 * often in the same dispatch: the least any such server pays) */
static void
floor_bulk_loop (const Params *p,
                 int           ctl,
                 Result       *r)
{
  r->v[0] = bench_floor_results (opt.floor_iters * 10, 1) / (p->chunk / 1e6);
}

/* The echo server of the lsock and gio variants reads each message with
 * g_input_stream_read_async() and writes it back with
 * g_output_stream_write_async(): what those public calls add around the
 * stream's virtual functions, on top of what the virtual functions
 * themselves cannot avoid (floor_main_loop); at one client, also the
 * context iteration that the write's GTask owes per message (floors.c) */
static void
floor_echo (const Params *p,
            int           ctl,
            Result       *r)
{
  r->v[0] = bench_floor_async_message (opt.floor_iters) + main_loop_floor (p);
  if (p->n_clients <= 1)
    r->v[0] += bench_floor_iteration (opt.floor_iters * 10);
}

/* ---------------------------------------------------------------------- */
/* Figures and the table */

typedef enum {
  HIGHER_IS_BETTER,
  LOWER_IS_BETTER,
} Sense;

typedef struct
{
  const char *name;        /* for --only */
  const char *label;
  const char *unit;
  Sense       sense;
  double      target;      /* ratio to raw; 0 = none */
  const char *target_text;
} FigureInfo;

typedef struct
{
  GArray *values[N_VARIANTS];
} Samples;

static gboolean all_ok = TRUE;
static GString *table;

static double
median_of (GArray *a,
           double *out_min,
           double *out_max)
{
  g_autofree double *v = NULL;
  double m;

  if (a == NULL || a->len == 0)
    return NAN;
  v = g_memdup2 (a->data, a->len * sizeof (double));
  qsort (v, a->len, sizeof (double), cmp_double);
  if (out_min)
    *out_min = v[0];
  if (out_max)
    *out_max = v[a->len - 1];
  m = a->len % 2 ? v[a->len / 2] : (v[a->len / 2 - 1] + v[a->len / 2]) / 2;
  return m;
}

typedef struct
{
  int         index;        /* into Result.v */
  const char *label;
  const char *unit;
  Sense       sense;
  double      target;       /* ratio to raw for the lsock variants; 0 = none */
  const char *target_text;
} Metric;

/* A target set against another server of the same figure rather than
 * raw: @subject's median over @baseline's, on the first metric. Where it
 * is missed, the ceiling row @ceiling (an index into the figure's three,
 * or -1) over @baseline says whether any server of @subject's kind could
 * meet it on this machine. */
typedef struct
{
  Variant     subject;
  Variant     baseline;
  double      target;       /* ratio subject/baseline, HIGHER_IS_BETTER */
  const char *target_text;
  int         ceiling;
} Versus;

typedef struct
{
  const char *name;
  const char *label;
  SideFunc    server;
  SideFunc    client;
  gboolean    from_server;
  Variant     baseline;
  Variant     variants[N_VARIANTS];
  int         n_variants;
  Metric      metrics[2];
  int         n_metrics;
  gboolean    must_serve_all;  /* echo at 4,096: a target of its own */
  /* What GLib alone charges per unit of the first metric (a rate, or for
   * LOWER_IS_BETTER a time in µs per unit), in Result.v[0] seconds,
   * measured alone (floors.c) after each repetition; the table shows the
   * raw figure slowed down by that much: the ceiling. A figure may have
   * two, each with its own row */
  SideFunc    floor;
  const char *ceiling_name;
  SideFunc    floor2;
  const char *ceiling2_name;
  /* A third row from floor2's cost per unit on libuv's figure instead of
   * raw's: libuv's own loop, plus what a GIO-style API adds to it. raw is
   * a blocking thread per connection and pays no event loop, so a ceiling
   * over raw says nothing about a target set against libuv. */
  const char *ceiling_libuv_name;
  /* The issue's targets against the other libraries' servers, on the
   * first metric: rows of their own, each with its verdict */
  Versus      versus[2];
  int         n_versus;
} Figure;

/* The ceilings add CPU time per unit to the raw baseline's time per unit,
 * which is the cost model only while server and client share one CPU */
static gboolean
ceilings_apply (void)
{
  return opt.smoke || (opt.pin_server >= 0 && opt.pin_server == opt.pin_client);
}

/* gio-service and libuv: servers of other libraries, measured like raw */
static gboolean
is_main_loop_baseline (Variant variant)
{
  return variant == V_GIO_SERVICE || variant == V_LIBUV;
}

static gboolean
figure_selected (const char *name)
{
  g_auto(GStrv) names = NULL;

  if (opt.only == NULL)
    return TRUE;
  names = g_strsplit (opt.only, ",", -1);
  for (int i = 0; names[i] != NULL; i++)
    if (g_str_has_prefix (name, names[i]))
      return TRUE;
  return FALSE;
}

static char *
format_value (double v)
{
  if (isnan (v))
    return g_strdup ("—");
  if (fabs (v) >= 10000)
    return g_strdup_printf ("%.0f", v);
  if (fabs (v) >= 100)
    return g_strdup_printf ("%.1f", v);
  if (fabs (v) >= 10)
    return g_strdup_printf ("%.2f", v);
  return g_strdup_printf ("%.3f", v);
}

static char *
format_cell (GArray *a)
{
  double lo = NAN, hi = NAN;
  double m = median_of (a, &lo, &hi);
  g_autofree char *ms = format_value (m);
  g_autofree char *los = format_value (lo);
  g_autofree char *his = format_value (hi);

  if (isnan (m))
    return g_strdup ("—");
  if (a->len == 1)
    return g_strdup (ms);
  return g_strdup_printf ("%s [%s–%s]", ms, los, his);
}

/* Ratio of medians, and the min–max of the per-repetition ratios */
static double
ratio_of (GArray *subject,
          GArray *baseline,
          double *out_lo,
          double *out_hi)
{
  double lo = INFINITY, hi = -INFINITY;
  guint n = MIN (subject->len, baseline->len);

  for (guint i = 0; i < n; i++)
    {
      double r = g_array_index (subject, double, i) / g_array_index (baseline, double, i);

      lo = MIN (lo, r);
      hi = MAX (hi, r);
    }
  *out_lo = lo;
  *out_hi = hi;
  return median_of (subject, NULL, NULL) / median_of (baseline, NULL, NULL);
}

static void
table_row (const char *figure,
           const char *unit,
           const char *baseline_name,
           GArray     *baseline,
           const char *subject_name,
           GArray     *subject,
           Sense       sense,
           double      target,
           const char *target_text,
           gboolean    extra_ok)
{
  g_autofree char *bcell = format_cell (baseline);
  g_autofree char *scell = format_cell (subject);
  g_autofree char *ratio = NULL;
  const char *verdict = "—";

  if (baseline != NULL && baseline->len > 0 && subject->len > 0)
    {
      double lo, hi;
      double r = ratio_of (subject, baseline, &lo, &hi);

      ratio = subject->len > 1 ? g_strdup_printf ("%.3f [%.3f–%.3f]", r, lo, hi)
                               : g_strdup_printf ("%.3f", r);
      if (target > 0)
        verdict = (sense == HIGHER_IS_BETTER ? r >= target : r <= target) && extra_ok ? "PASS" : "MISS";
    }
  else
    ratio = g_strdup ("—");
  if (target <= 0 && target_text != NULL && subject->len > 0)
    verdict = extra_ok ? "PASS" : "MISS";

  g_string_append_printf (table, "| %s | %s | %s: %s | %s: %s | %s | %s | %s |\n",
                          figure, unit, baseline_name, bcell, subject_name, scell, ratio,
                          target_text ? target_text : "—", verdict);
}

/* A Versus target's row: the ratio of the two medians, as in every other
 * row, with its verdict; a miss says whether the ceiling rules it out */
static void
versus_row (const char      *figure,
            const Versus    *vs,
            GArray * const  *values,
            GArray * const  *ceilings,
            const gboolean  *served)
{
  GArray *subject = values[vs->subject];
  GArray *baseline = values[vs->baseline];
  g_autofree char *bcell = format_cell (baseline);
  g_autofree char *scell = format_cell (subject);
  g_autofree char *ratio = NULL;
  g_autofree char *verdict = NULL;
  g_autofree char *unit = g_strdup_printf ("× %s", variant_names[vs->baseline]);
  double r, lo, hi;

  if (subject->len == 0 || baseline->len == 0 || !served[vs->baseline])
    return;
  r = ratio_of (subject, baseline, &lo, &hi);
  ratio = subject->len > 1 ? g_strdup_printf ("%.3f [%.3f–%.3f]", r, lo, hi)
                           : g_strdup_printf ("%.3f", r);
  if (r >= vs->target)
    verdict = g_strdup ("PASS");
  else if (vs->ceiling >= 0 && ceilings[vs->ceiling]->len > 0)
    {
      double c = ratio_of (ceilings[vs->ceiling], baseline, &lo, &hi);

      /* The ceiling over the same baseline, by the same statistic */
      verdict = g_strdup_printf (c < vs->target ? "MISS, out of reach: its ceiling is %.3f" :
                                                  "MISS (its ceiling: %.3f)", c);
    }
  else
    verdict = g_strdup ("MISS");

  g_string_append_printf (table, "| %s, %s against %s | %s | %s: %s | %s: %s | %s | %s | %s |\n",
                          figure, variant_names[vs->subject], variant_names[vs->baseline], unit,
                          variant_names[vs->baseline], bcell, variant_names[vs->subject], scell,
                          ratio, vs->target_text, verdict);
}

static void
table_header (void)
{
  g_string_append (table,
                   "| figure | unit | baseline: median [min–max] | subject: median [min–max] "
                   "| ratio subject/baseline [per-rep min–max] | target | result |\n"
                   "| --- | --- | --- | --- | --- | --- | --- |\n");
}

static void
run_figure (const Figure *fig,
            Params       *params,
            int           reps)
{
  Samples samples[2] = { 0 };
  GArray *ceilings[3] = { g_array_new (FALSE, FALSE, sizeof (double)),
                          g_array_new (FALSE, FALSE, sizeof (double)),
                          g_array_new (FALSE, FALSE, sizeof (double)) };
  SideFunc floors[2] = { fig->floor, fig->floor2 };
  const char *ceiling_names[3] = { fig->ceiling_name, fig->ceiling2_name,
                                   fig->ceiling_libuv_name };
  gboolean served_all = TRUE;
  gboolean served[N_VARIANTS];  /* the main-loop baselines' own "serves every client" */

  if (!figure_selected (fig->name))
    return;
  for (int v = 0; v < N_VARIANTS; v++)
    served[v] = TRUE;

  fprintf (stderr, "%s:", fig->name);
  for (int m = 0; m < fig->n_metrics; m++)
    for (int v = 0; v < N_VARIANTS; v++)
      samples[m].values[v] = g_array_new (FALSE, FALSE, sizeof (double));

  for (int rep = 0; rep < reps; rep++)
    {
      double raw_value = NAN;
      double libuv_value = NAN;

      for (int i = 0; i < fig->n_variants; i++)
        {
          Variant variant = fig->variants[i];
          Result sr, cr;
          const Result *r;
          gboolean ok;

          /* For profiling one side: LSOCK_BENCH_VARIANTS=lsock */
          if (g_getenv ("LSOCK_BENCH_VARIANTS") != NULL &&
              !strstr (g_getenv ("LSOCK_BENCH_VARIANTS"), variant_names[variant]))
            continue;
          params->variant = variant;
          ok = run_pair (fig->server, fig->client, params, &sr, &cr);
          /* A main-loop baseline that leaves echo clients without a reply in
           * the window has a result, which its row shows (MISS against
           * "serves every client"), not a failure; in --smoke every client
           * must be served all the same */
          if (!ok && !opt.smoke && is_main_loop_baseline (variant) && sr.ok && cr.unserved > 0)
            {
              fprintf (stderr, "\n  %s %s: %s\n", fig->name, variant_names[variant], cr.message);
              served[variant] = FALSE;
              ok = TRUE;
            }
          if (!ok)
            {
              const char *message = !cr.ok ? cr.message : sr.message;

              fprintf (stderr, "\n  %s %s: FAILED: %s\n", fig->name, variant_names[variant], message);
              all_ok = FALSE;
              if (fig->must_serve_all)
                served_all = FALSE;
              continue;
            }
          r = fig->from_server ? &sr : &cr;
          if (g_getenv ("LSOCK_BENCH_DEBUG") != NULL)
            fprintf (stderr, "\n  %s %s: server %.3f/%.3f/%.3f/%.3f client %.3f/%.3f/%.3f/%.3f\n",
                     fig->name, variant_names[variant], sr.v[0], sr.v[1], sr.v[2], sr.v[3],
                     cr.v[0], cr.v[1], cr.v[2], cr.v[3]);
          for (int m = 0; m < fig->n_metrics; m++)
            g_array_append_val (samples[m].values[variant], r->v[fig->metrics[m].index]);
          if (variant == fig->baseline)
            raw_value = r->v[fig->metrics[0].index];
          if (variant == V_LIBUV && served[V_LIBUV])
            libuv_value = r->v[fig->metrics[0].index];
          fprintf (stderr, " %s", variant_names[variant]);
        }

      for (int f = 0; f < 2; f++)
        {
          Result fr;
          double c;

          if (floors[f] == NULL || !ceilings_apply () || isnan (raw_value))
            continue;
          if (!run_alone (floors[f], params, &fr))
            die ("%s: the floor measurement failed: %s", fig->name, fr.message);
          if (fig->metrics[0].sense == LOWER_IS_BETTER)
            c = raw_value + fr.v[0] * 1e6;
          else
            c = 1 / (1 / raw_value + fr.v[0]);
          g_array_append_val (ceilings[f], c);
          if (f == 1 && fig->ceiling_libuv_name != NULL && !isnan (libuv_value))
            {
              if (fig->metrics[0].sense == LOWER_IS_BETTER)
                c = libuv_value + fr.v[0] * 1e6;
              else
                c = 1 / (1 / libuv_value + fr.v[0]);
              g_array_append_val (ceilings[2], c);
            }
          if (g_getenv ("LSOCK_BENCH_DEBUG") != NULL)
            fprintf (stderr, "\n  %s floor %d: %.3f µs per unit\n", fig->name, f, fr.v[0] * 1e6);
          fprintf (stderr, " ceiling");
        }
    }
  fprintf (stderr, "\n");

  for (int m = 0; m < fig->n_metrics; m++)
    {
      const Metric *metric = &fig->metrics[m];
      g_autofree char *label = g_strdup_printf ("%s%s%s", fig->label,
                                                metric->label ? ", " : "",
                                                metric->label ? metric->label : "");

      for (int i = 0; i < fig->n_variants; i++)
        {
          Variant variant = fig->variants[i];
          gboolean is_lsock = variant == V_LSOCK || variant == V_LSOCK_ASYNC ||
                              variant == V_LSOCK_NB || variant == V_LSOCK_BYTES ||
                              variant == V_LSOCK_SRC;
          gboolean is_base = is_main_loop_baseline (variant);
          g_autofree char *target_text = NULL;

          if (variant == fig->baseline)
            continue;
          if (is_lsock && metric->target_text != NULL)
            target_text = g_strdup (metric->target_text);
          if (m == 0 && ((is_lsock && fig->must_serve_all) ||
                         (is_base && (fig->must_serve_all || !served[variant]))))
            target_text = g_strdup ("serves every client");
          table_row (label, metric->unit,
                     variant_names[fig->baseline], samples[m].values[fig->baseline],
                     variant_names[variant], samples[m].values[variant],
                     metric->sense, is_lsock ? metric->target : 0, target_text,
                     is_base ? served[variant] : served_all);
        }
      for (int f = 0; f < 3 && m == 0; f++)
        if (ceilings[f]->len > 0)
          table_row (label, metric->unit,
                     variant_names[fig->baseline], samples[m].values[fig->baseline],
                     ceiling_names[f], ceilings[f], metric->sense, 0, NULL, TRUE);
      for (int i = 0; i < fig->n_versus && m == 0; i++)
        versus_row (label, &fig->versus[i], samples[0].values, ceilings, served);
    }

  for (int m = 0; m < fig->n_metrics; m++)
    for (int v = 0; v < N_VARIANTS; v++)
      g_array_unref (samples[m].values[v]);
  for (int f = 0; f < 3; f++)
    g_array_unref (ceilings[f]);
}

/* Memory has no raw baseline: it is lsock (and GIO's GSocketService)
 * against bare GSockets, as absolute bytes beyond them */
static void
run_memory (Params *params,
            int     reps)
{
  Variant variants[] = { V_GSOCKET, V_LSOCK, V_GIO };
  GArray *heap[N_VARIANTS] = { 0 }, *fds[N_VARIANTS] = { 0 };
  g_autofree char *label = NULL;

  if (!figure_selected ("memory"))
    return;
  fprintf (stderr, "memory:");
  for (guint i = 0; i < G_N_ELEMENTS (variants); i++)
    {
      heap[variants[i]] = g_array_new (FALSE, FALSE, sizeof (double));
      fds[variants[i]] = g_array_new (FALSE, FALSE, sizeof (double));
    }
  for (int rep = 0; rep < reps; rep++)
    for (guint i = 0; i < G_N_ELEMENTS (variants); i++)
      {
        Result sr, cr;

        params->variant = variants[i];
        if (!run_pair (mem_server, mem_client, params, &sr, &cr))
          {
            fprintf (stderr, "\n  memory %s: FAILED: %s\n", variant_names[variants[i]],
                     !sr.ok ? sr.message : cr.message);
            all_ok = FALSE;
            continue;
          }
        g_array_append_val (heap[variants[i]], sr.v[0]);
        g_array_append_val (fds[variants[i]], sr.v[1]);
        fprintf (stderr, " %s", variant_names[variants[i]]);
      }
  fprintf (stderr, "\n");

  label = g_strdup_printf ("idle connection, %u open on one listener", params->n_clients);
  for (guint i = 1; i < G_N_ELEMENTS (variants); i++)
    {
      Variant v = variants[i];
      double beyond = median_of (heap[v], NULL, NULL) - median_of (heap[V_GSOCKET], NULL, NULL);
      g_autofree char *gcell = format_cell (heap[V_GSOCKET]);
      g_autofree char *scell = format_cell (heap[v]);
      g_autofree char *fcell = format_cell (fds[v]);
      gboolean is_lsock = v == V_LSOCK;

      g_string_append_printf (table, "| %s, heap | bytes/conn | gsocket: %s | %s: %s | "
                              "%+.0f B beyond GSocket (%s fds/conn) | %s | %s |\n",
                              label, gcell, variant_names[v], scell, beyond, fcell,
                              is_lsock ? "≤ +1024 B beyond GSocket" : "—",
                              !is_lsock || heap[v]->len == 0 ? "—" :
                              beyond <= 1024 ? "PASS" : "MISS");
    }
  for (guint i = 0; i < G_N_ELEMENTS (variants); i++)
    {
      g_array_unref (heap[variants[i]]);
      g_array_unref (fds[variants[i]]);
    }
}

/* PyGObject against Python's socket module, by py-bulk.py; its REP lines
 * carry one repetition each:
 * "REP <name> <socket MB/s> <lsock MB/s> <gio-unix MB/s> <ceiling MB/s>
 *  <lsock-bytes MB/s> <bytes ceiling MB/s>"
 * (lsock: read_bytes()/write_bytes() on the substreams; gio-unix: GIO's
 * own Gio.UnixInputStream/UnixOutputStream; lsock-bytes: the stream's
 * receive_bytes()/send_bytes(); each ceiling: the socket module slowed
 * down by what the PyGObject calls of its row cost per chunk) */
static void
run_python (int    reps,
            gsize  total_bytes)
{
  const char *script = g_getenv ("LSOCK_BENCH_PY");
  const char *python = g_getenv ("LSOCK_BENCH_PYTHON");
  g_autofree char *reps_s = g_strdup_printf ("%d", reps);
  g_autofree char *bytes_s = g_strdup_printf ("%" G_GSIZE_FORMAT, total_bytes);
  g_autofree char *out = NULL;
  g_autofree char *err = NULL;
  g_autoptr(GError) error = NULL;
  g_auto(GStrv) lines = NULL;
  const char *names[] = { "py-bulk-64k", "py-bulk-4k" };
  GArray *raw[2], *ls[2], *gu[2], *ceiling[2], *lb[2], *lb_ceiling[2];
  int status;

  if (!figure_selected ("py-bulk"))
    return;
  if (script == NULL)
    {
      fprintf (stderr, "py-bulk: skipped (LSOCK_BENCH_PY is not set)\n");
      return;
    }
  if (python == NULL)
    python = "/usr/bin/python3";

  {
    const char *argv[] = { python, script, "--reps", reps_s, "--bytes", bytes_s,
                           opt.pin_server >= 0 ? "--pin-server" : NULL,
                           NULL, NULL, NULL, NULL };
    g_autofree char *ps = g_strdup_printf ("%d", opt.pin_server);
    g_autofree char *pc = g_strdup_printf ("%d", opt.pin_client);

    if (opt.pin_server >= 0)
      {
        argv[7] = ps;
        argv[8] = "--pin-client";
        argv[9] = pc;
      }
    fprintf (stderr, "py-bulk: running %s\n", script);
    if (!g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_DEFAULT, NULL, NULL,
                       &out, &err, &status, &error) ||
        !g_spawn_check_wait_status (status, &error))
      {
        fprintf (stderr, "py-bulk: FAILED: %s\n%s", error->message, err ? err : "");
        all_ok = FALSE;
        return;
      }
  }

  for (int i = 0; i < 2; i++)
    {
      raw[i] = g_array_new (FALSE, FALSE, sizeof (double));
      ls[i] = g_array_new (FALSE, FALSE, sizeof (double));
      gu[i] = g_array_new (FALSE, FALSE, sizeof (double));
      ceiling[i] = g_array_new (FALSE, FALSE, sizeof (double));
      lb[i] = g_array_new (FALSE, FALSE, sizeof (double));
      lb_ceiling[i] = g_array_new (FALSE, FALSE, sizeof (double));
    }
  lines = g_strsplit (out, "\n", -1);
  for (int l = 0; lines[l] != NULL; l++)
    {
      char name[64];
      double a, b, c, d, e, f;

      if (sscanf (lines[l], "REP %63s %lf %lf %lf %lf %lf %lf", name, &a, &b, &c, &d, &e, &f) != 7)
        continue;
      for (int i = 0; i < 2; i++)
        if (strcmp (name, names[i]) == 0)
          {
            g_array_append_val (raw[i], a);
            g_array_append_val (ls[i], b);
            g_array_append_val (gu[i], c);
            g_array_append_val (ceiling[i], d);
            g_array_append_val (lb[i], e);
            g_array_append_val (lb_ceiling[i], f);
          }
    }
  for (int i = 0; i < 2; i++)
    {
      const char *label = i == 0 ? "PyGObject bulk, 64 KiB chunks" : "PyGObject bulk, 4 KiB chunks";

      if (raw[i]->len == 0)
        {
          fprintf (stderr, "py-bulk: no results for %s\n%s", names[i], err ? err : "");
          all_ok = FALSE;
        }
      table_row (label, "MB/s", "python socket", raw[i], "lsock (PyGObject)", ls[i],
                 HIGHER_IS_BETTER, 0.9, "≥ 0.9", TRUE);
      table_row (label, "MB/s", "python socket", raw[i],
                 "lsock receive_bytes/send_bytes (PyGObject)", lb[i],
                 HIGHER_IS_BETTER, 0.9, "≥ 0.9", TRUE);
      table_row (label, "MB/s", "python socket", raw[i], "Gio.UnixInputStream (PyGObject)", gu[i],
                 HIGHER_IS_BETTER, 0, NULL, TRUE);
      if (ceilings_apply ())
        {
          table_row (label, "MB/s", "python socket", raw[i],
                     "ceiling: python socket + PyGObject's calls per chunk", ceiling[i],
                     HIGHER_IS_BETTER, 0, NULL, TRUE);
          table_row (label, "MB/s", "python socket", raw[i],
                     "ceiling for receive_bytes/send_bytes: python socket + their calls per chunk",
                     lb_ceiling[i], HIGHER_IS_BETTER, 0, NULL, TRUE);
        }
      g_array_unref (raw[i]);
      g_array_unref (ls[i]);
      g_array_unref (gu[i]);
      g_array_unref (ceiling[i]);
      g_array_unref (lb[i]);
      g_array_unref (lb_ceiling[i]);
    }
}

static void
print_machine (void)
{
  g_autofree char *cpuinfo = NULL;
  g_autofree char *model = NULL;
  g_autofree char *kernel = NULL;

  if (g_file_get_contents ("/proc/cpuinfo", &cpuinfo, NULL, NULL))
    {
      char *line = strstr (cpuinfo, "model name");

      if (line != NULL)
        {
          char *colon = strchr (line, ':');
          char *nl = strchr (line, '\n');

          if (colon != NULL && nl != NULL && colon < nl)
            model = g_strstrip (g_strndup (colon + 1, nl - colon - 1));
        }
    }
  g_file_get_contents ("/proc/sys/kernel/osrelease", &kernel, NULL, NULL);
  printf ("machine: %d CPUs online, %s, Linux %s, GLib %u.%u.%u\n",
          (int) sysconf (_SC_NPROCESSORS_ONLN), model ? model : "unknown CPU",
          kernel ? g_strstrip (kernel) : "?", glib_major_version, glib_minor_version,
          glib_micro_version);
  printf ("pinning: server %s, client %s\n\n",
          opt.pin_server >= 0 ? g_strdup_printf ("CPU %d", opt.pin_server) : "not pinned",
          opt.pin_client >= 0 ? g_strdup_printf ("CPU %d", opt.pin_client) : "not pinned");
}

int
main (int    argc,
      char **argv)
{
  gboolean quick = FALSE, full = FALSE, smoke = FALSE, pin = FALSE;
  int reps = 0, iters = 0;
  g_autoptr(GOptionContext) context = NULL;
  g_autoptr(GError) error = NULL;
  GOptionEntry entries[] = {
    { "quick", 0, 0, G_OPTION_ARG_NONE, &quick, "A few seconds per figure (the default)", NULL },
    { "full", 0, 0, G_OPTION_ARG_NONE, &full, "The sizes behind docs/performance.md", NULL },
    { "smoke", 0, 0, G_OPTION_ARG_NONE, &smoke, "Tiny sizes, correctness only", NULL },
    { "reps", 0, 0, G_OPTION_ARG_INT, &reps, "Interleaved repetitions per figure", "N" },
    { "pin", 0, 0, G_OPTION_ARG_NONE, &pin, "Pin the server and the client to CPU 0 (both on one CPU, as in the issue)", NULL },
    { "pin-server", 0, 0, G_OPTION_ARG_INT, &opt.pin_server, "Pin the server to CPU", "CPU" },
    { "pin-client", 0, 0, G_OPTION_ARG_INT, &opt.pin_client, "Pin the client to CPU", "CPU" },
    { "iters", 0, 0, G_OPTION_ARG_INT, &iters, "Round trips and connections per run (for profiling)", "N" },
    { "only", 0, 0, G_OPTION_ARG_STRING, &opt.only, "Run only the figures whose names start with NAME (comma-separated): bulk, rtt, connect, echo, memory, py-bulk", "NAME" },
    { NULL }
  };
  Params p = { 0 };
  guint echo_clients[] = { 1, 8, 256, 4096 };
  double echo_duration;
  guint connect_iters, rtt_iters, mem_conns;
  gsize bulk_bytes, py_bytes;

  setlocale (LC_ALL, "");
  /* LSOCK_TEST_REACTOR=poll: lsock's portable reactor instead of epoll */
  lsock_test_reactor_from_env ();
  context = g_option_context_new ("— measure lsock-gobject against raw syscalls and GIO");
  g_option_context_add_main_entries (context, entries, NULL);
  if (!g_option_context_parse (context, &argc, &argv, &error))
    {
      fprintf (stderr, "%s\n", error->message);
      return 2;
    }
  if (pin)
    {
      if (opt.pin_server < 0)
        opt.pin_server = 0;
      if (opt.pin_client < 0)
        opt.pin_client = 0;
    }
  signal (SIGPIPE, SIG_IGN);
  raise_nofile ();
  table = g_string_new (NULL);

  opt.smoke = smoke;
  if (smoke)
    {
      reps = 1;
      opt.floor_iters = 200;
      bulk_bytes = 1 << 20;
      rtt_iters = 200;
      connect_iters = 50;
      echo_duration = 0;  /* count mode: 3 round trips per client */
      echo_clients[3] = 512;
      mem_conns = 100;
      py_bytes = 0;
    }
  else if (full)
    {
      reps = reps > 0 ? reps : 9;
      bulk_bytes = (gsize) 2 << 30;
      rtt_iters = 200000;
      connect_iters = 20000;
      echo_duration = 3.0;
      mem_conns = 10000;
      py_bytes = (gsize) 1 << 30;
    }
  else
    {
      reps = reps > 0 ? reps : 5;
      bulk_bytes = (gsize) 256 << 20;
      rtt_iters = 30000;
      connect_iters = 3000;
      echo_duration = 0.5;
      mem_conns = 10000;
      py_bytes = (gsize) 128 << 20;
    }
  (void) quick;
  if (iters > 0)
    rtt_iters = connect_iters = iters;

  if (!smoke)
    print_machine ();
  table_header ();

  {
    Figure bulk = {
      .name = "bulk-64k", .label = "bulk throughput, sync API, 64 KiB chunks",
      .server = bulk_server, .client = bulk_client, .baseline = V_RAW,
      .variants = { V_RAW, V_LSOCK, V_GIO, V_GIO_FLOOR }, .n_variants = 4,
      .metrics = { { 0, NULL, "MB/s", HIGHER_IS_BETTER, 0.97, "≥ 0.97" } }, .n_metrics = 1,
    };

    p.total_bytes = bulk_bytes;
    p.chunk = 64 * 1024;
    run_figure (&bulk, &p, reps);
    bulk.name = "bulk-4k";
    bulk.label = "bulk throughput, sync API, 4 KiB chunks";
    bulk.metrics[0].target = 0;
    bulk.metrics[0].target_text = NULL;
    p.total_bytes = bulk_bytes / 4;
    p.chunk = 4 * 1024;
    run_figure (&bulk, &p, reps);
  }

  {
    Figure bulk = {
      .name = "bulk-loop", .label = "bulk throughput into one main context, 64 KiB reads",
      .server = bulk_loop_server, .client = bulk_client, .baseline = V_RAW,
      .variants = { V_RAW, V_LSOCK, V_LSOCK_BYTES, V_GIO_SERVICE }, .n_variants = 4,
      .metrics = { { 0, NULL, "MB/s", HIGHER_IS_BETTER, 0, NULL } }, .n_metrics = 1,
      .floor = floor_bulk_loop,
      .ceiling_name = "ceiling for any GIO-style server: raw + 1 GAsyncResult per 64 KiB",
      .versus = { { V_LSOCK_BYTES, V_LIBUV, 1.0, "fast path ≥ libuv", 0 } }, .n_versus = 1,
    };

#ifdef HAVE_LIBUV
    bulk.variants[bulk.n_variants++] = V_LIBUV;
#endif
    p.total_bytes = bulk_bytes;
    p.chunk = 64 * 1024;
    p.raw_client = TRUE;
    run_figure (&bulk, &p, reps);
    p.raw_client = FALSE;
  }

  {
    Figure rtt = {
      .name = "rtt", .label = "64-byte round trip, sync API",
      .server = pingpong_server, .client = pingpong_client, .baseline = V_RAW,
      .variants = { V_RAW, V_LSOCK, V_GIO, V_GIO_FLOOR }, .n_variants = 4,
      .metrics = { { 0, NULL, "µs", LOWER_IS_BETTER, 1.03, "≤ 1.03×" } }, .n_metrics = 1,
      .floor = floor_rtt,
      .ceiling_name = "ceiling: raw + GIO's write_all and read on both sides",
    };

    p.iters = rtt_iters;
    run_figure (&rtt, &p, reps);
  }

  {
    Figure conn = {
      .name = "connect", .label = "connect + accept + 1 round trip",
      .server = connect_server, .client = connect_client, .baseline = V_RAW,
      .variants = { V_RAW, V_LSOCK, V_LSOCK_ASYNC, V_GIO, V_GIO_FLOOR }, .n_variants = 5,
      .metrics = { { 0, NULL, "conn/s", HIGHER_IS_BETTER, 0.95, "≥ 0.95" } }, .n_metrics = 1,
      .floor = floor_connect,
      .ceiling_name = "ceiling: raw + what 2 GIOStreams cost without I/O",
      .floor2 = floor_connect_checked,
      .ceiling2_name = "ceiling for lsock on a main loop: the row above + peer checks, "
                       "the loop's polls and an accept result",
      .versus = {
        { V_LSOCK_BYTES, V_LIBUV, 0.85, "fast path ≥ 0.85 × libuv", 1 },
        { V_LSOCK_ASYNC, V_GIO_SERVICE, 1.3, "accept_async ≥ 1.3 × gio-service", 1 },
      },
      .n_versus = 2,
    };

    /* The fast path, and the main-loop baselines, next to lsock-async */
    conn.variants[conn.n_variants++] = V_LSOCK_BYTES;
    conn.variants[conn.n_variants++] = V_GIO_SERVICE;
#ifdef HAVE_LIBUV
    conn.variants[conn.n_variants++] = V_LIBUV;
#endif
    p.iters = connect_iters;
    run_figure (&conn, &p, reps);
  }

  for (guint i = 0; i < G_N_ELEMENTS (echo_clients); i++)
    {
      g_autofree char *name = g_strdup_printf ("echo-%u", echo_clients[i]);
      gboolean one = echo_clients[i] == 1;
      g_autofree char *label = one ?
        g_strdup ("64-byte round trip, one main context (echo service, 1 client)") :
        g_strdup_printf ("echo service, one main context, %u clients", echo_clients[i]);
      gboolean big = i == G_N_ELEMENTS (echo_clients) - 1;
      Figure echo = {
        .name = name, .label = label,
        .server = echo_server, .client = echo_client, .baseline = V_RAW,
        .variants = { V_RAW, V_LSOCK, V_LSOCK_NB, V_LSOCK_BYTES }, .n_variants = 4,
        .metrics = {
          { 0, "throughput", "msg/s", HIGHER_IS_BETTER, big || one ? 0 : 0.9,
            big || one ? NULL : "≥ 0.9" },
          /* One client: the mean is the round trip; more: the tail */
          { one ? 3 : 1, one ? "mean round trip" : "p99 round trip", "µs", LOWER_IS_BETTER,
            0, NULL },
        },
        .n_metrics = 2,
        .must_serve_all = big,
        .floor = floor_echo,
        .ceiling_name = one ? "ceiling for read_async + write_async: the row below + GIO's wrappers "
                              "+ the context iteration each write's GTask owes" :
                              "ceiling for read_async + write_async: the row below + GIO's wrappers",
        .floor2 = floor_main_loop,
        .ceiling2_name = "ceiling for any GIO-style server: raw + 2 GAsyncResults per message",
        .ceiling_libuv_name = "ceiling for a GIO-style main-loop server: libuv + 2 GAsyncResults "
                              "per message",
        /* The issue's targets; with one client, a round trip is the
         * inverse of the rate: "≤ 0.8 × GIO's time" is 1.25 × its rate */
        .versus = {
          { V_LSOCK_BYTES, V_LIBUV, 1.0,
            one ? "fast path: round trip ≤ libuv's (rate ≥ libuv's)" : "fast path ≥ libuv", 2 },
          { V_LSOCK, V_GIO_SERVICE, one ? 1.25 : 1.4,
            one ? "read_async: round trip ≤ 0.8 × gio-service's (rate ≥ 1.25 ×)" :
                  "read_async ≥ 1.4 × gio-service", 0 },
        },
        .n_versus = big ? 0 : 2,
      };

      /* GIO's source-per-connection pattern, for comparison: at 4,096 its
       * context walks 8,192 sources per iteration, and some clients wait
       * longer than the window; it is no way of serving that many */
      if (!big)
        echo.variants[echo.n_variants++] = V_LSOCK_SRC;
      /* The main-loop baselines, next to lsock and lsock-nb */
      echo.variants[echo.n_variants++] = V_GIO_SERVICE;
#ifdef HAVE_LIBUV
      echo.variants[echo.n_variants++] = V_LIBUV;
#endif

      p.n_clients = echo_clients[i];
      p.iters = iters > 0 ? iters : 3;  /* round trips per client in --smoke */
      /* Every one of 4,096 clients must get replies within the window */
      p.duration = big && !smoke ? MAX (echo_duration, 2.0) : echo_duration;
      run_figure (&echo, &p, reps);
    }

  /* The sync path's echo: a thread per connection, raw and lsock */
  for (guint i = 1; i < G_N_ELEMENTS (echo_clients) - 1; i++)
    {
      g_autofree char *name = g_strdup_printf ("echo-sync-%u", echo_clients[i]);
      g_autofree char *label =
        g_strdup_printf ("echo service, sync accept + a thread per connection, %u clients",
                         echo_clients[i]);
      Figure echo = {
        .name = name, .label = label,
        .server = echo_sync_server, .client = echo_client, .baseline = V_RAW,
        .variants = { V_RAW, V_LSOCK }, .n_variants = 2,
        .metrics = {
          { 0, "throughput", "msg/s", HIGHER_IS_BETTER, 0.95, "≥ 0.95" },
          { 1, "p99 round trip", "µs", LOWER_IS_BETTER, 0, NULL },
        },
        .n_metrics = 2,
      };

      p.n_clients = echo_clients[i];
      p.iters = iters > 0 ? iters : 3;
      p.duration = echo_duration;
      run_figure (&echo, &p, reps);
    }

  p.n_clients = mem_conns;
  run_memory (&p, smoke ? 1 : MIN (reps, 3));

  if (py_bytes > 0)
    run_python (reps, py_bytes);

  printf ("%s", table->str);
  if (!all_ok)
    {
      fprintf (stderr, "lsock-bench: some runs FAILED\n");
      return 1;
    }
  return 0;
}
