/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* lsock: netcat for local sockets.
 *
 *   lsock listen [--access=user|everyone] NAME     one peer, relayed to stdin/stdout
 *   lsock listen --echo [--access=…] NAME          an echo service for many peers
 *   lsock listen [--access=…] NAME --exec COMMAND [ARG…]
 *                                                  COMMAND per peer, on its connection
 *   lsock connect [--access=user|everyone] [--timeout=MS] NAME
 *                                                  relayed to stdin/stdout
 *   lsock info [NAME…]                             how names map to addresses here
 *
 * Everything runs on one main loop with asynchronous I/O: no thread per
 * connection, no busy loop. Only the public lsock-gobject API is used. */

#include "config.h"

#include <locale.h>
#include <stdlib.h>
#include <string.h>

#include <glib/gi18n.h>
#include <glib/gstdio.h>
#include <gio/gio.h>
#include <lsock-gobject/lsock.h>

#ifdef G_OS_UNIX
# include <signal.h>
# include <errno.h>
# include <fcntl.h>
# include <unistd.h>
# include <sys/stat.h>
# include <glib-unix.h>
# include <gio/gunixinputstream.h>
# include <gio/gunixoutputstream.h>
#endif

#ifdef G_OS_WIN32
# include <windows.h>
# include <errno.h>
# include <fcntl.h>
# include <io.h>
# include <gio/gwin32inputstream.h>
# include <gio/gwin32outputstream.h>
#endif

/* Exit statuses */
#define EXIT_OK    0
#define EXIT_ERROR 1
#define EXIT_USAGE 2
/* Exit status of a relay stopped by signal @signum, as a shell reports it */
#define EXIT_SIGNAL(signum) (128 + (signum))

#define BUFFER_SIZE (64 * 1024)

/* ---------------------------------------------------------------------- */
/* Messages */

static void
print_error (const GError *error)
{
  g_printerr ("lsock: %s\n", error->message);
}

static int
usage_error (const char *command,
             const char *message)
{
  g_printerr ("lsock: %s\n", message);
  if (command != NULL)
    g_printerr (_("Try “lsock %s --help” for more information.\n"), command);
  else
    g_printerr (_("Try “lsock --help” for more information.\n"));
  return EXIT_USAGE;
}

/* ---------------------------------------------------------------------- */
/* Standard input and output as GIO streams */

#ifdef G_OS_WIN32
/* GWin32InputStream and GWin32OutputStream pass a zeroed OVERLAPPED to
 * every ReadFile()/WriteFile(), which for a disk file means offset 0 each
 * time: standard input or output redirected from or to a file would repeat
 * or overwrite its first block. For files, these streams use the C
 * runtime's descriptors (and their file position) instead. They block; the
 * async calls run in GIO's thread pool, which is fine for this tool. */
# define LSOCK_TYPE_FD_INPUT_STREAM (lsock_fd_input_stream_get_type ())
G_DECLARE_FINAL_TYPE (LsockFdInputStream, lsock_fd_input_stream, LSOCK, FD_INPUT_STREAM, GInputStream)
struct _LsockFdInputStream
{
  GInputStream parent_instance;
  int          fd;
};
G_DEFINE_FINAL_TYPE (LsockFdInputStream, lsock_fd_input_stream, G_TYPE_INPUT_STREAM)

static gssize
lsock_fd_input_stream_read (GInputStream  *stream,
                            void          *buffer,
                            gsize          count,
                            GCancellable  *cancellable,
                            GError       **error)
{
  int n = _read (LSOCK_FD_INPUT_STREAM (stream)->fd, buffer, (unsigned int) MIN (count, G_MAXINT));

  if (n < 0)
    {
      int errsv = errno;

      g_set_error_literal (error, G_IO_ERROR, g_io_error_from_errno (errsv), g_strerror (errsv));
      return -1;
    }
  return n;
}

static void
lsock_fd_input_stream_class_init (LsockFdInputStreamClass *klass)
{
  G_INPUT_STREAM_CLASS (klass)->read_fn = lsock_fd_input_stream_read;
}

static void
lsock_fd_input_stream_init (LsockFdInputStream *self)
{
}

# define LSOCK_TYPE_FD_OUTPUT_STREAM (lsock_fd_output_stream_get_type ())
G_DECLARE_FINAL_TYPE (LsockFdOutputStream, lsock_fd_output_stream, LSOCK, FD_OUTPUT_STREAM, GOutputStream)
struct _LsockFdOutputStream
{
  GOutputStream parent_instance;
  int           fd;
};
G_DEFINE_FINAL_TYPE (LsockFdOutputStream, lsock_fd_output_stream, G_TYPE_OUTPUT_STREAM)

static gssize
lsock_fd_output_stream_write (GOutputStream  *stream,
                              const void     *buffer,
                              gsize           count,
                              GCancellable   *cancellable,
                              GError        **error)
{
  int n = _write (LSOCK_FD_OUTPUT_STREAM (stream)->fd, buffer, (unsigned int) MIN (count, G_MAXINT));

  if (n < 0)
    {
      int errsv = errno;

      g_set_error_literal (error, G_IO_ERROR, g_io_error_from_errno (errsv), g_strerror (errsv));
      return -1;
    }
  return n;
}

static void
lsock_fd_output_stream_class_init (LsockFdOutputStreamClass *klass)
{
  G_OUTPUT_STREAM_CLASS (klass)->write_fn = lsock_fd_output_stream_write;
}

static void
lsock_fd_output_stream_init (LsockFdOutputStream *self)
{
}

static gboolean
fd_is_disk_file (int fd)
{
  return GetFileType ((HANDLE) _get_osfhandle (fd)) == FILE_TYPE_DISK;
}
#endif

static GInputStream *
stdin_stream_new (void)
{
#if defined (G_OS_UNIX)
  return g_unix_input_stream_new (0, FALSE);
#elif defined (G_OS_WIN32)
  if (fd_is_disk_file (0))
    {
      LsockFdInputStream *stream = g_object_new (LSOCK_TYPE_FD_INPUT_STREAM, NULL);

      _setmode (0, _O_BINARY);
      stream->fd = 0;
      return G_INPUT_STREAM (stream);
    }
  return g_win32_input_stream_new ((void *) _get_osfhandle (0), FALSE);
#else
# error "No stream type for standard input on this platform"
#endif
}

static GOutputStream *
stdout_stream_new (void)
{
#if defined (G_OS_UNIX)
  return g_unix_output_stream_new (1, FALSE);
#elif defined (G_OS_WIN32)
  if (fd_is_disk_file (1))
    {
      LsockFdOutputStream *stream = g_object_new (LSOCK_TYPE_FD_OUTPUT_STREAM, NULL);

      _setmode (1, _O_BINARY);
      stream->fd = 1;
      return G_OUTPUT_STREAM (stream);
    }
  return g_win32_output_stream_new ((void *) _get_osfhandle (1), FALSE);
#else
# error "No stream type for standard output on this platform"
#endif
}

/* ---------------------------------------------------------------------- */
/* Stopping on SIGINT and SIGTERM */

typedef void (*StopFunc) (int      signum,
                          gpointer user_data);

typedef struct
{
  StopFunc func;
  gpointer user_data;
  guint    sigint_id;
  guint    sigterm_id;
} StopWatch;

#ifdef G_OS_UNIX
static gboolean
on_sigint (gpointer user_data)
{
  StopWatch *watch = user_data;

  watch->func (SIGINT, watch->user_data);
  return G_SOURCE_CONTINUE;
}

static gboolean
on_sigterm (gpointer user_data)
{
  StopWatch *watch = user_data;

  watch->func (SIGTERM, watch->user_data);
  return G_SOURCE_CONTINUE;
}
#endif

/* Calls @func in the main context on SIGINT or SIGTERM, so that the program
 * stops through a clean close (which removes the socket file). */
static void
stop_watch_init (StopWatch *watch,
                 StopFunc   func,
                 gpointer   user_data)
{
  watch->func = func;
  watch->user_data = user_data;
#ifdef G_OS_UNIX
  watch->sigint_id = g_unix_signal_add (SIGINT, on_sigint, watch);
  watch->sigterm_id = g_unix_signal_add (SIGTERM, on_sigterm, watch);
#else
  /* Windows: Ctrl-C ends the process. That is clean enough there, since a
   * named pipe disappears with the last handle and leaves no file behind. */
  watch->sigint_id = 0;
  watch->sigterm_id = 0;
#endif
}

static void
stop_watch_clear (StopWatch *watch)
{
  g_clear_handle_id (&watch->sigint_id, g_source_remove);
  g_clear_handle_id (&watch->sigterm_id, g_source_remove);
}

/* ---------------------------------------------------------------------- */
/* Pump: copies one input stream to one output stream, asynchronously */

typedef enum
{
  PUMP_END_EOF,
  PUMP_END_READ_ERROR,
  PUMP_END_WRITE_ERROR,
} PumpEnd;

typedef struct _Pump Pump;

/* Called once, when the input ends or an operation fails. @pump must not
 * be freed before this is called (pending operations use its buffer). */
typedef void (*PumpDoneFunc) (Pump         *pump,
                              PumpEnd       end,
                              const GError *error,
                              gpointer      user_data);

struct _Pump
{
  GInputStream  *input;
  GOutputStream *output;
  /* Both ends are this stream's (an echo): the fast path, whole GBytes
   * with no GTask and no short writes */
  LsockStream   *echo_stream;
  GCancellable  *cancellable;
  guint8        *buffer;
  guint64        total;     /* bytes copied so far */
  gboolean       running;
  PumpDoneFunc   done;
  gpointer       user_data;
};

static Pump *
pump_new (GInputStream  *input,
          GOutputStream *output,
          GCancellable  *cancellable,
          PumpDoneFunc   done,
          gpointer       user_data)
{
  Pump *pump = g_new0 (Pump, 1);

  pump->input = g_object_ref (input);
  pump->output = g_object_ref (output);
  pump->cancellable = g_object_ref (cancellable);
  pump->buffer = g_malloc (BUFFER_SIZE);
  pump->done = done;
  pump->user_data = user_data;

  return pump;
}

static void
pump_free (Pump *pump)
{
  g_assert (!pump->running);

  g_clear_object (&pump->input);
  g_clear_object (&pump->output);
  g_clear_object (&pump->echo_stream);
  g_clear_object (&pump->cancellable);
  g_free (pump->buffer);
  g_free (pump);
}

static void
pump_end (Pump         *pump,
          PumpEnd       end,
          const GError *error)
{
  pump->running = FALSE;
  /* May free the pump */
  pump->done (pump, end, error, pump->user_data);
}

static void pump_read (Pump *pump);

static void
pump_write_cb (GObject      *source,
               GAsyncResult *result,
               gpointer      user_data)
{
  Pump *pump = user_data;
  g_autoptr(GError) error = NULL;
  gsize written = 0;

  if (!g_output_stream_write_all_finish (G_OUTPUT_STREAM (source), result, &written, &error))
    {
      pump_end (pump, PUMP_END_WRITE_ERROR, error);
      return;
    }

  pump->total += written;
  pump_read (pump);
}

static void
pump_read_cb (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  Pump *pump = user_data;
  g_autoptr(GError) error = NULL;
  gssize n;

  n = g_input_stream_read_finish (G_INPUT_STREAM (source), result, &error);
  if (n < 0)
    pump_end (pump, PUMP_END_READ_ERROR, error);
  else if (n == 0)
    pump_end (pump, PUMP_END_EOF, NULL);
  else
    g_output_stream_write_all_async (pump->output, pump->buffer, n,
                                     G_PRIORITY_DEFAULT, pump->cancellable,
                                     pump_write_cb, pump);
}

static void
pump_sent_cb (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  Pump *pump = user_data;
  g_autoptr(GError) error = NULL;

  if (!lsock_stream_send_bytes_finish (LSOCK_STREAM (source), result, &error))
    {
      pump_end (pump, PUMP_END_WRITE_ERROR, error);
      return;
    }
  pump_read (pump);
}

static void
pump_received_cb (GObject      *source,
                  GAsyncResult *result,
                  gpointer      user_data)
{
  Pump *pump = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) bytes = NULL;

  bytes = lsock_stream_receive_bytes_finish (LSOCK_STREAM (source), result, &error);
  if (bytes == NULL)
    pump_end (pump, PUMP_END_READ_ERROR, error);
  else if (g_bytes_get_size (bytes) == 0)
    pump_end (pump, PUMP_END_EOF, NULL);
  else
    {
      pump->total += g_bytes_get_size (bytes);
      lsock_stream_send_bytes_async (pump->echo_stream, bytes, G_PRIORITY_DEFAULT,
                                     pump->cancellable, pump_sent_cb, pump);
    }
}

static void
pump_read (Pump *pump)
{
  if (pump->echo_stream != NULL)
    lsock_stream_receive_bytes_async (pump->echo_stream, BUFFER_SIZE, G_PRIORITY_DEFAULT,
                                      pump->cancellable, pump_received_cb, pump);
  else
    g_input_stream_read_async (pump->input, pump->buffer, BUFFER_SIZE,
                               G_PRIORITY_DEFAULT, pump->cancellable,
                               pump_read_cb, pump);
}

static void
pump_start (Pump *pump)
{
  g_assert (!pump->running);

  pump->running = TRUE;
  pump_read (pump);
}

/* ---------------------------------------------------------------------- */
/* Relay: stdin → peer and peer → stdout, for `listen` and `connect` */

typedef struct
{
  GMainLoop     *loop;
  GCancellable  *cancellable;
  StopWatch      stop_watch;
  LsockListener *listener;     /* `listen` only, until a peer is accepted */
  LsockStream   *stream;
  Pump          *up;           /* stdin → peer */
  Pump          *down;         /* peer → stdout */
  gboolean       accepting;
  gboolean       verbose;
  gboolean       up_ended;
  gboolean       down_ended;
  gboolean       finished;
  GError        *error;        /* the first error, reported at the end */
  int            signum;       /* the signal that stopped us, or 0 */
  guint          linger_id;    /* no half-close: see relay_linger_cb() */
  guint64        linger_total;
  gboolean       closed_at_once; /* the peer took nothing and went */
  gboolean       refused_server; /* connect: PERMISSION_DENIED */
  LsockName     *name;         /* connect: where to (not owned) */
} Relay;

/* How long the peer may stay silent after our standard input ended, where
 * the connection has no half-close (Windows named pipes) */
#define LINGER_MS 1000

static void
relay_finish (Relay *relay)
{
  if (relay->finished)
    return;

  relay->finished = TRUE;
  g_clear_handle_id (&relay->linger_id, g_source_remove);
  g_cancellable_cancel (relay->cancellable);
  g_main_loop_quit (relay->loop);
}

static void
relay_fail (Relay        *relay,
            const GError *error,
            const char   *prefix)
{
  if (relay->error == NULL && !g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    {
      relay->error = g_error_copy (error);
      if (prefix != NULL)
        g_prefix_error (&relay->error, "%s", prefix);
    }
  relay_finish (relay);
}

/* Whether standard input is a terminal, where nobody may ever type again */
static gboolean
stdin_is_terminal (void)
{
#if defined (G_OS_UNIX)
  return isatty (0);
#elif defined (G_OS_WIN32)
  return _isatty (0);
#else
  return FALSE;
#endif
}

/* The relay ends when both directions have: the peer's data is all on
 * stdout, and stdin is all sent (or the peer cannot take more). A peer's
 * end of stream alone does not end it, since the peer may only have
 * half-closed and still be reading; unless stdin is a terminal, where
 * waiting for the user to type would look like a hang. */
static void
relay_check_done (Relay *relay)
{
  if (!relay->finished && relay->down_ended &&
      (relay->up_ended || stdin_is_terminal ()))
    relay_finish (relay);
}

/* Standard input ended but the peer cannot be told (no half-close), so it
 * may be waiting for our end of stream as we wait for its: go on copying
 * what it sends, and end once it has sent nothing for LINGER_MS. */
static gboolean
relay_linger_cb (gpointer user_data)
{
  Relay *relay = user_data;

  if (relay->down != NULL && relay->down->total != relay->linger_total)
    {
      relay->linger_total = relay->down->total;
      return G_SOURCE_CONTINUE;
    }

  relay->linger_id = 0;
  relay_finish (relay);
  return G_SOURCE_REMOVE;
}

static void
relay_up_done (Pump         *pump,
               PumpEnd       end,
               const GError *error,
               gpointer      user_data)
{
  Relay *relay = user_data;
  g_autoptr(GError) local_error = NULL;

  relay->up_ended = TRUE;
  if (relay->finished)
    return;

  switch (end)
    {
    case PUMP_END_EOF:
      /* Half-close: the peer reads the end of the stream once it has read
       * everything, and can still answer. Named pipes (Windows) have no
       * half-close: the peer then sees the end when we exit. */
      if (!lsock_stream_shutdown (relay->stream, FALSE, TRUE, &local_error))
        {
          if (!g_error_matches (local_error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED))
            {
              if (!relay->down_ended)
                {
                  relay_fail (relay, local_error, NULL);
                  return;
                }
            }
          else if (!relay->down_ended && relay->linger_id == 0)
            {
              relay->linger_total = relay->down != NULL ? relay->down->total : 0;
              relay->linger_id = g_timeout_add (LINGER_MS, relay_linger_cb, relay);
            }
        }
      break;

    case PUMP_END_READ_ERROR:
      relay_fail (relay, error, _("Could not read standard input: "));
      return;

    case PUMP_END_WRITE_ERROR:
    default:
      /* The peer went before it took any of standard input: say so (a
       * listener that refuses a peer closes it at once, and may admit only
       * its own user) */
      if (pump->total == 0 && relay->error == NULL)
        {
          relay->error = g_error_new (G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED,
                                      _("The peer closed the connection before it took any "
                                        "of standard input (%s)"),
                                      error->message);
          relay->closed_at_once = relay->down == NULL || relay->down->total == 0;
        }
      /* After the peer's end of stream, a failed write only means that the
       * peer has gone. Before it, report the error, but first copy what the
       * peer still sends, up to its end of stream. */
      else if (!relay->down_ended && relay->error == NULL)
        relay->error = g_error_copy (error);
      break;
    }

  relay_check_done (relay);
}

static void
relay_down_done (Pump         *pump,
                 PumpEnd       end,
                 const GError *error,
                 gpointer      user_data)
{
  Relay *relay = user_data;

  relay->down_ended = TRUE;
  if (relay->finished)
    return;

  switch (end)
    {
    case PUMP_END_EOF:
      /* Everything the peer sent has been written to stdout. But if it
       * threw away some of standard input, the relay failed; before it
       * sent us anything, that is how a listener that refuses us looks */
      if (lsock_stream_get_peer_discarded (relay->stream) && relay->error == NULL)
        {
          relay->error = g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED,
                                              _("The peer closed the connection without "
                                                "reading all of standard input"));
          relay->closed_at_once = pump->total == 0;
          relay_finish (relay);
          break;
        }
      relay_check_done (relay);
      break;

    case PUMP_END_READ_ERROR:
      relay_fail (relay, error, NULL);
      break;

    case PUMP_END_WRITE_ERROR:
    default:
      /* Whoever read our output went away (`lsock connect x | head`): not
       * an error, but nothing more to do either */
      if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_BROKEN_PIPE))
        relay_finish (relay);
      else
        relay_fail (relay, error, _("Could not write standard output: "));
      break;
    }
}

static void
relay_start (Relay       *relay,
             LsockStream *stream)
{
  g_autoptr(GInputStream) in = stdin_stream_new ();
  g_autoptr(GOutputStream) out = stdout_stream_new ();
  GIOStream *io = G_IO_STREAM (stream);

  relay->stream = g_object_ref (stream);
  relay->up = pump_new (in, g_io_stream_get_output_stream (io),
                        relay->cancellable, relay_up_done, relay);
  relay->down = pump_new (g_io_stream_get_input_stream (io), out,
                          relay->cancellable, relay_down_done, relay);
  pump_start (relay->down);
  pump_start (relay->up);
}

static void
relay_stop (int      signum,
            gpointer user_data)
{
  Relay *relay = user_data;

  if (relay->signum == 0)
    relay->signum = signum;
  relay_finish (relay);
}

/* Who is at the other end of @stream, for --verbose */
static char *
describe_peer (LsockStream *stream)
{
  g_autoptr(GCredentials) credentials = NULL;

  credentials = lsock_stream_get_peer_credentials (stream, NULL);
#ifdef G_OS_UNIX
  if (credentials != NULL)
    /* Translators: describes the process at the other end of a connection */
    return g_strdup_printf (_("pid %ld, uid %lu"),
                            (long) g_credentials_get_unix_pid (credentials, NULL),
                            (gulong) g_credentials_get_unix_user (credentials, NULL));
#elif defined (G_OS_WIN32)
  if (credentials != NULL)
    {
      DWORD *pid = g_credentials_get_native (credentials, G_CREDENTIALS_TYPE_WIN32_PID);

      if (pid != NULL)
        /* Translators: describes the process at the other end of a connection */
        return g_strdup_printf (_("pid %lu"), (gulong) *pid);
    }
#endif
  return g_strdup (_("unknown peer"));
}

/* A peer that the access check refused, for --verbose */
static void
peer_rejected_cb (LsockListener *listener,
                  GCredentials  *credentials,
                  gpointer       user_data)
{
  g_autofree char *peer = NULL;

#ifdef G_OS_UNIX
  if (credentials != NULL)
    /* Translators: describes the process at the other end of a connection */
    peer = g_strdup_printf (_("pid %ld, uid %lu"),
                            (long) g_credentials_get_unix_pid (credentials, NULL),
                            (gulong) g_credentials_get_unix_user (credentials, NULL));
#endif
  /* Translators: %s describes the peer, such as “pid 42, uid 1000” */
  g_printerr (_("Refused a connection from another user (%s): “--access=everyone” admits it\n"),
              peer != NULL ? peer : _("unknown peer"));
}

static void
relay_accept_cb (GObject      *source,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  Relay *relay = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(LsockStream) stream = NULL;

  relay->accepting = FALSE;
  stream = lsock_listener_accept_finish (LSOCK_LISTENER (source), result, &error);
  if (stream == NULL)
    {
      relay_fail (relay, error, NULL);
      return;
    }

  /* One peer only: give the name back at once */
  lsock_listener_close (relay->listener);

  if (relay->verbose)
    {
      g_autofree char *display = lsock_name_to_string (lsock_stream_get_name (stream));
      g_autofree char *peer = describe_peer (stream);

      /* Translators: the first %s is a socket name, the second describes the peer, such as “pid 42, uid 1000” */
      g_printerr (_("Accepted a connection on “%s” (%s)\n"), display, peer);
    }

  relay_start (relay, stream);
}

/* connect() refuses a path that is not a socket with ECONNREFUSED, as it
 * does a socket file whose listener has gone, and the library's message
 * says the latter: for a regular file, a directory or a FIFO, say what is
 * really there. */
static void
not_a_socket_error (LsockName  *name,
                    GError    **error)
{
#ifdef G_OS_UNIX
  GStatBuf buf;
  g_autofree char *display = NULL;

  if (name == NULL || lsock_name_get_kind (name) != LSOCK_NAME_KIND_PATH ||
      !g_error_matches (*error, G_IO_ERROR, G_IO_ERROR_CONNECTION_REFUSED) ||
      g_stat (lsock_name_get_name (name), &buf) != 0 || S_ISSOCK (buf.st_mode))
    return;

  display = lsock_name_to_string (name);
  g_clear_error (error);
  g_set_error (error, G_IO_ERROR, G_IO_ERROR_CONNECTION_REFUSED,
               S_ISDIR (buf.st_mode)
               /* Translators: %s is a file name */
               ? _("Could not connect to “%s”: it is a directory, not a socket")
               /* Translators: %s is a file name */
               : _("Could not connect to “%s”: it is a file that is not a socket"),
               display);
#endif
}

static void
relay_connect_cb (GObject      *source,
                  GAsyncResult *result,
                  gpointer      user_data)
{
  Relay *relay = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(LsockStream) stream = NULL;

  relay->accepting = FALSE;
  stream = lsock_stream_connect_full_finish (result, &error);
  if (stream == NULL)
    {
      not_a_socket_error (relay->name, &error);
      relay->refused_server = g_error_matches (error, G_IO_ERROR, G_IO_ERROR_PERMISSION_DENIED);
      relay_fail (relay, error, NULL);
      return;
    }

  if (relay->verbose)
    {
      g_autofree char *display = lsock_name_to_string (lsock_stream_get_name (stream));
      g_autofree char *peer = describe_peer (stream);

      /* Translators: the first %s is a socket name, the second describes the peer, such as “pid 42, uid 1000” */
      g_printerr (_("Connected to “%s” (%s)\n"), display, peer);
    }

  relay_start (relay, stream);
}

/* Runs the relay set up by `listen` or `connect` until it ends, and cleans
 * up: the listener is closed (removing its socket file) on every path. */
static int
relay_run (Relay *relay)
{
  int status;

  stop_watch_init (&relay->stop_watch, relay_stop, relay);
  if (!relay->finished)
    g_main_loop_run (relay->loop);
  stop_watch_clear (&relay->stop_watch);

  if (relay->listener != NULL)
    lsock_listener_close (relay->listener);

  /* Let the cancelled operations return before their buffers go */
  while (relay->accepting ||
         (relay->up != NULL && relay->up->running) ||
         (relay->down != NULL && relay->down->running))
    g_main_context_iteration (NULL, TRUE);

  if (relay->stream != NULL)
    g_io_stream_close (G_IO_STREAM (relay->stream), NULL, NULL);

  if (relay->signum != 0)
    status = EXIT_SIGNAL (relay->signum);
  else if (relay->error != NULL)
    {
      print_error (relay->error);
      if (relay->refused_server)
        g_printerr (_("lsock: if the listener is another user’s, “lsock connect --access=everyone” "
                      "talks to it anyway\n"));
      if (relay->closed_at_once)
        g_printerr (_("lsock: the listener closed the connection at once: it may admit only "
                      "its own user (“lsock listen --access=everyone” admits others)\n"));
      status = EXIT_ERROR;
    }
  else
    status = EXIT_OK;

  g_clear_pointer (&relay->up, pump_free);
  g_clear_pointer (&relay->down, pump_free);
  g_clear_object (&relay->stream);
  g_clear_object (&relay->listener);
  g_clear_object (&relay->cancellable);
  g_clear_pointer (&relay->loop, g_main_loop_unref);
  g_clear_error (&relay->error);

  return status;
}

static void
relay_init (Relay    *relay,
            gboolean  verbose)
{
  memset (relay, 0, sizeof *relay);
  relay->loop = g_main_loop_new (NULL, FALSE);
  relay->cancellable = g_cancellable_new ();
  relay->verbose = verbose;
}

/* ---------------------------------------------------------------------- */
/* Echo service: `listen --echo` */

typedef struct
{
  GMainLoop     *loop;
  GCancellable  *cancellable;
  StopWatch      stop_watch;
  LsockListener *listener;
  GHashTable    *clients;      /* EchoClient set */
  guint          next_id;
  gboolean       verbose;
} Echo;

typedef struct
{
  Echo        *echo;
  guint        id;
  LsockStream *stream;
  Pump        *pump;
} EchoClient;

static void
echo_client_free (EchoClient *client)
{
  g_clear_pointer (&client->pump, pump_free);
  g_clear_object (&client->stream);
  g_free (client);
}

/* The pump echoes the client's input to its output; it ends at the
 * client's end of stream, once everything read has been written back. */
static void
echo_client_done (Pump         *pump,
                  PumpEnd       end,
                  const GError *error,
                  gpointer      user_data)
{
  EchoClient *client = user_data;
  Echo *echo = client->echo;

  if (echo->verbose)
    {
      if (end == PUMP_END_EOF)
        {
          g_autofree char *total = g_strdup_printf ("%" G_GUINT64_FORMAT, pump->total);

          g_printerr (g_dngettext (GETTEXT_PACKAGE,
                                   /* Translators: %u is a client number, %s a number of bytes */
                                   "Client %u disconnected after echoing %s byte\n",
                                   "Client %u disconnected after echoing %s bytes\n",
                                   (gulong) MIN (pump->total, G_MAXULONG)),
                      client->id, total);
        }
      else if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        g_printerr (_("Client %u failed: %s\n"), client->id, error->message);
    }

  /* Immediate: closing never waits for the peer */
  g_io_stream_close (G_IO_STREAM (client->stream), NULL, NULL);
  g_hash_table_remove (echo->clients, client);
}

static gboolean
echo_incoming_cb (LsockListener *listener,
                  LsockStream   *stream,
                  gpointer       user_data)
{
  Echo *echo = user_data;
  EchoClient *client = g_new0 (EchoClient, 1);
  GIOStream *io = G_IO_STREAM (stream);

  client->echo = echo;
  client->id = ++echo->next_id;
  client->stream = g_object_ref (stream);
  client->pump = pump_new (g_io_stream_get_input_stream (io),
                           g_io_stream_get_output_stream (io),
                           echo->cancellable, echo_client_done, client);
  client->pump->echo_stream = g_object_ref (stream);
  g_hash_table_add (echo->clients, client);

  if (echo->verbose)
    {
      g_autofree char *peer = describe_peer (stream);

      /* Translators: %u is a client number, %s describes the peer, such as “pid 42, uid 1000” */
      g_printerr (_("Client %u connected (%s)\n"), client->id, peer);
    }

  pump_start (client->pump);
  return TRUE;
}

static void
echo_accept_error_cb (LsockListener *listener,
                      const GError  *error,
                      gpointer       user_data)
{
  /* The listener backs off and tries again by itself */
  g_printerr ("lsock: %s\n", error->message);
}

static void
echo_stop (int      signum,
           gpointer user_data)
{
  Echo *echo = user_data;

  g_main_loop_quit (echo->loop);
}

/* On standard error, where the tests and scripts wait for it */
static void
print_listening (LsockListener *listener)
{
  g_autofree char *display = lsock_name_to_string (lsock_listener_get_name (listener));

  /* Under socket activation, lsock_listener_new() adopts the passed socket */
  if (lsock_listener_is_adopted (listener))
    g_printerr (_("Listening on “%s” (the socket passed by socket activation)\n"), display);
  else
    g_printerr (_("Listening on “%s”\n"), display);
}

/* A service of many peers (--echo, --exec): @incoming for each, errors
 * and refused peers reported, and "Listening on" once it runs */
static void
start_service (LsockListener *listener,
               GCallback      incoming,
               gpointer       user_data,
               gboolean       verbose)
{
  g_signal_connect (listener, "incoming", incoming, user_data);
  g_signal_connect (listener, "accept-error", G_CALLBACK (echo_accept_error_cb), user_data);
  if (verbose)
    g_signal_connect (listener, "peer-rejected", G_CALLBACK (peer_rejected_cb), user_data);
  lsock_listener_start (listener);
  print_listening (listener);
}

static int
run_echo (LsockName   *name,
          LsockAccess  access,
          gboolean     verbose)
{
  g_autoptr(GError) error = NULL;
  Echo echo = { 0, };

  echo.listener = lsock_listener_new_full (name, access, NULL, &error);
  if (echo.listener == NULL)
    {
      print_error (error);
      return EXIT_ERROR;
    }

  echo.loop = g_main_loop_new (NULL, FALSE);
  echo.cancellable = g_cancellable_new ();
  echo.clients = g_hash_table_new_full (NULL, NULL, (GDestroyNotify) echo_client_free, NULL);
  echo.verbose = verbose;

  start_service (echo.listener, G_CALLBACK (echo_incoming_cb), &echo, verbose);

  stop_watch_init (&echo.stop_watch, echo_stop, &echo);
  g_main_loop_run (echo.loop);
  stop_watch_clear (&echo.stop_watch);

  /* Give the name back first, then end the clients' pending operations,
   * which removes every client */
  lsock_listener_close (echo.listener);
  g_cancellable_cancel (echo.cancellable);
  while (g_hash_table_size (echo.clients) > 0)
    g_main_context_iteration (NULL, TRUE);

  g_signal_handlers_disconnect_by_data (echo.listener, &echo);
  g_clear_object (&echo.listener);
  g_clear_pointer (&echo.clients, g_hash_table_unref);
  g_clear_object (&echo.cancellable);
  g_clear_pointer (&echo.loop, g_main_loop_unref);

  return EXIT_OK;
}

/* ---------------------------------------------------------------------- */
/* One process per peer: `listen NAME --exec COMMAND [ARG…]` */

#ifdef G_OS_UNIX
typedef struct
{
  GMainLoop     *loop;
  StopWatch      stop_watch;
  LsockListener *listener;
  char         **argv;         /* COMMAND [ARG…] */
  char          *name_string;  /* for LSOCK_NAME */
  GHashTable    *children;     /* ExecChild set */
  guint          next_id;
  gboolean       verbose;
  gboolean       stopping;
  guint          grace_id;
} Exec;

typedef struct
{
  Exec        *exec;
  guint        id;
  GSubprocess *process;
  char        *pid;            /* the child's, for messages */
} ExecChild;

/* How long the children may take to exit after SIGINT or SIGTERM */
#define EXEC_GRACE_MS 5000

static void
exec_child_free (ExecChild *child)
{
  g_clear_object (&child->process);
  g_free (child->pid);
  g_free (child);
}

static void
exec_quit_if_done (Exec *exec)
{
  if (exec->stopping && g_hash_table_size (exec->children) == 0)
    g_main_loop_quit (exec->loop);
}

static void
exec_child_exited_cb (GObject      *source,
                      GAsyncResult *result,
                      gpointer      user_data)
{
  ExecChild *child = user_data;
  Exec *exec = child->exec;
  GSubprocess *process = G_SUBPROCESS (source);

  g_subprocess_wait_finish (process, result, NULL);
  if (exec->verbose)
    {
      if (g_subprocess_get_if_exited (process))
        /* Translators: %u is a client number, %s a process id, %d an exit status */
        g_printerr (_("Client %u: process %s exited with status %d\n"),
                    child->id, child->pid, g_subprocess_get_exit_status (process));
      else if (g_subprocess_get_if_signaled (process))
        /* Translators: %u is a client number, %s a process id, %d a signal number */
        g_printerr (_("Client %u: process %s was killed by signal %d\n"),
                    child->id, child->pid, g_subprocess_get_term_sig (process));
    }

  g_hash_table_remove (exec->children, child);
  exec_quit_if_done (exec);
}

static void
setenv_number (GSubprocessLauncher *launcher,
               const char          *variable,
               gint64               value)
{
  g_autofree char *string = g_strdup_printf ("%" G_GINT64_FORMAT, value);

  g_subprocess_launcher_setenv (launcher, variable, string, TRUE);
}

static gboolean
exec_incoming_cb (LsockListener *listener,
                  LsockStream   *stream,
                  gpointer       user_data)
{
  Exec *exec = user_data;
  g_autoptr(GCredentials) credentials = NULL;
  g_autoptr(GSubprocessLauncher) launcher = NULL;
  g_autoptr(GSubprocess) process = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *peer = NULL;
  guint id = ++exec->next_id;
  ExecChild *child;
  int fd, out_fd;

  credentials = lsock_stream_get_peer_credentials (stream, NULL);
  if (exec->verbose)
    peer = describe_peer (stream);

  /* The child gets the connection itself, as standard input and output,
   * and nothing else of ours: every other descriptor is close-on-exec */
  fd = lsock_stream_steal_fd (stream, &error);
  if (fd < 0)
    {
      /* Translators: %u is a client number, %s an error message */
      g_printerr (_("lsock: client %u: %s\n"), id, error->message);
      return TRUE;
    }
  out_fd = fcntl (fd, F_DUPFD_CLOEXEC, 3);
  if (out_fd < 0)
    {
      int errsv = errno;

      g_printerr (_("lsock: client %u: %s\n"), id, g_strerror (errsv));
      close (fd);
      return TRUE;
    }

  launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_NONE);
  g_subprocess_launcher_take_stdin_fd (launcher, fd);
  g_subprocess_launcher_take_stdout_fd (launcher, out_fd);
  g_subprocess_launcher_setenv (launcher, "LSOCK_NAME", exec->name_string, TRUE);
  g_subprocess_launcher_unsetenv (launcher, "LSOCK_PEER_PID");
  g_subprocess_launcher_unsetenv (launcher, "LSOCK_PEER_UID");
  if (credentials != NULL)
    {
      pid_t pid = g_credentials_get_unix_pid (credentials, NULL);
      uid_t uid = g_credentials_get_unix_user (credentials, NULL);

      if (pid > 0)
        setenv_number (launcher, "LSOCK_PEER_PID", pid);
      if (uid != (uid_t) -1)
        setenv_number (launcher, "LSOCK_PEER_UID", uid);
    }

  /* Our copies of the connection close with the launcher: the peer sees
   * the end of stream when the child exits */
  process = g_subprocess_launcher_spawnv (launcher, (const char * const *) exec->argv, &error);
  g_clear_object (&launcher);
  if (process == NULL)
    {
      g_printerr (_("lsock: client %u: %s\n"), id, error->message);
      return TRUE;
    }

  child = g_new0 (ExecChild, 1);
  child->exec = exec;
  child->id = id;
  child->process = g_steal_pointer (&process);
  child->pid = g_strdup (g_subprocess_get_identifier (child->process));
  g_hash_table_add (exec->children, child);

  if (exec->verbose)
    /* Translators: %u is a client number, the first %s describes the peer, such as “pid 42, uid 1000”, the second is a process id */
    g_printerr (_("Client %u connected (%s): started process %s\n"), id, peer, child->pid);

  g_subprocess_wait_async (child->process, NULL, exec_child_exited_cb, child);
  return TRUE;
}

static gboolean
exec_grace_cb (gpointer user_data)
{
  Exec *exec = user_data;

  exec->grace_id = 0;
  g_main_loop_quit (exec->loop);
  return G_SOURCE_REMOVE;
}

/* Gives the name back, passes the signal on to the children and waits a
 * while for them; a second signal stops at once */
static void
exec_stop (int      signum,
           gpointer user_data)
{
  Exec *exec = user_data;
  GHashTableIter iter;
  gpointer key;

  if (exec->stopping)
    {
      g_main_loop_quit (exec->loop);
      return;
    }

  exec->stopping = TRUE;
  lsock_listener_close (exec->listener);
  g_hash_table_iter_init (&iter, exec->children);
  while (g_hash_table_iter_next (&iter, &key, NULL))
    g_subprocess_send_signal (((ExecChild *) key)->process, signum);
  exec->grace_id = g_timeout_add (EXEC_GRACE_MS, exec_grace_cb, exec);
  exec_quit_if_done (exec);
}

static int
run_exec (LsockName   *name,
          LsockAccess  access,
          gboolean     verbose,
          char       **argv)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *program = NULL;
  Exec exec = { 0, };

  /* A command that cannot run would fail for every peer */
  program = g_find_program_in_path (argv[0]);
  if (program == NULL)
    {
      g_autofree char *shown = g_filename_display_name (argv[0]);

      g_printerr (_("lsock: Command “%s” not found\n"), shown);
      return EXIT_ERROR;
    }

  exec.listener = lsock_listener_new_full (name, access, NULL, &error);
  if (exec.listener == NULL)
    {
      print_error (error);
      return EXIT_ERROR;
    }

  exec.loop = g_main_loop_new (NULL, FALSE);
  exec.argv = argv;
  exec.name_string = lsock_name_to_string (lsock_listener_get_name (exec.listener));
  exec.children = g_hash_table_new_full (NULL, NULL, (GDestroyNotify) exec_child_free, NULL);
  exec.verbose = verbose;

  start_service (exec.listener, G_CALLBACK (exec_incoming_cb), &exec, verbose);

  stop_watch_init (&exec.stop_watch, exec_stop, &exec);
  g_main_loop_run (exec.loop);
  stop_watch_clear (&exec.stop_watch);
  g_clear_handle_id (&exec.grace_id, g_source_remove);

  lsock_listener_close (exec.listener);
  g_signal_handlers_disconnect_by_data (exec.listener, &exec);
  g_clear_object (&exec.listener);
  /* Children still running after the grace period are left to finish */
  g_clear_pointer (&exec.children, g_hash_table_unref);
  g_clear_pointer (&exec.name_string, g_free);
  g_clear_pointer (&exec.loop, g_main_loop_unref);

  return EXIT_OK;
}
#endif /* G_OS_UNIX */

/* ---------------------------------------------------------------------- */
/* Commands */

typedef struct
{
  const char *name;
  int       (*run) (char **args);
  const char *summary;
} Command;

/* Whether lsock_name_parse() reads @string as a generic name (neither
 * “@foo”, “\\.\pipe\foo” nor a path) */
static gboolean
is_generic_syntax (const char *string)
{
  if (string[0] == '@' || string[0] == '.' ||
      g_ascii_strncasecmp (string, "\\\\.\\pipe\\", 9) == 0)
    return FALSE;
  for (const char *p = string; *p != '\0'; p++)
    {
      if (G_IS_DIR_SEPARATOR (*p))
        return FALSE;
    }
#ifdef G_OS_WIN32
  if (g_ascii_isalpha (string[0]) && string[1] == ':')
    return FALSE;
#endif
  return TRUE;
}

/* “lsock listen my.sock” is the generic name “my.sock”, which on Linux is
 * the abstract “@my.sock”, not a file: when the name looks like a file
 * name, or a file of that name is here, say how to name the file. Only a
 * hint: the name is used as it is. */
static void
hint_generic_file_name (const char *string,
                        LsockName  *name)
{
  g_autofree char *display = NULL;
  g_autofree char *resolved = NULL;
  g_autofree char *path = NULL;

  if (!is_generic_syntax (string))
    return;
  if (!g_str_has_suffix (string, ".sock") && !g_str_has_suffix (string, ".socket") &&
      !g_file_test (string, G_FILE_TEST_EXISTS))
    return;

  display = g_filename_display_name (string);
  resolved = lsock_name_to_string (name);
  path = g_strconcat (".", G_DIR_SEPARATOR_S, display, NULL);
  /* Translators: the first %s is a name as given, such as “my.sock”, the
   * second what it means here, such as “@my.sock”, the third a path,
   * such as “./my.sock” */
  g_printerr (_("lsock: hint: “%s” is a generic name, here “%s”: did you mean the file “%s”?\n"),
              display, resolved, path);
}

static LsockName *
parse_name_arg (const char *command,
                char      **args,
                int        *status)
{
  g_autoptr(GError) error = NULL;
  LsockName *name;

  if (args[1] == NULL)
    {
      *status = usage_error (command, _("Missing socket name"));
      return NULL;
    }
  if (args[2] != NULL)
    {
      g_autofree char *message = g_strdup_printf (_("Unexpected argument “%s”"), args[2]);

      *status = usage_error (command, message);
      return NULL;
    }

  name = lsock_name_parse (args[1], &error);
  if (name == NULL)
    {
      /* An invalid name is a usage error; one of a kind this platform
       * lacks is not */
      if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT))
        *status = usage_error (command, error->message);
      else
        {
          print_error (error);
          *status = EXIT_ERROR;
        }
      return NULL;
    }

  hint_generic_file_name (args[1], name);
  return name;
}

/* Parses the options of @command; args[0] is the command name. */
static gboolean
parse_options (const char    *command,
               const char    *parameter,
               const char    *summary,
               const char    *description,
               GOptionEntry  *entries,
               char        ***args,
               int           *status)
{
  g_autoptr(GOptionContext) context = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *prgname = g_strdup_printf ("lsock %s", command);

  g_set_prgname (prgname);
  /* The strings come marked with N_(); the entries are translated through
   * their group's domain */
  context = g_option_context_new (_(parameter));
  g_option_context_set_summary (context, _(summary));
  if (description != NULL)
    g_option_context_set_description (context, _(description));
  g_option_context_add_main_entries (context, entries, GETTEXT_PACKAGE);

  if (!g_option_context_parse_strv (context, args, &error))
    {
      *status = usage_error (command, error->message);
      return FALSE;
    }

  return TRUE;
}

static gboolean
parse_access (const char  *command,
              const char  *value,
              LsockAccess *access,
              int         *status)
{
  if (value == NULL || g_str_equal (value, "user"))
    *access = LSOCK_ACCESS_USER;
  else if (g_str_equal (value, "everyone"))
    *access = LSOCK_ACCESS_EVERYONE;
  else
    {
      g_autofree char *message =
        g_strdup_printf (_("Invalid value “%s” for --access: use “user” or “everyone”"), value);

      *status = usage_error (command, message);
      return FALSE;
    }
  return TRUE;
}

static int
cmd_listen (char **args)
{
  gboolean echo = FALSE;
  gboolean exec_option = FALSE;
  gboolean verbose = FALSE;
  g_autofree char *access_arg = NULL;
  GOptionEntry entries[] = {
    { "echo", 'e', 0, G_OPTION_ARG_NONE, &echo,
      N_("Run an echo service for any number of peers, until SIGINT or SIGTERM"), NULL },
    { "exec", 0, 0, G_OPTION_ARG_NONE, &exec_option,
      N_("After NAME: run COMMAND [ARG…] for each peer, on its connection, until SIGINT or SIGTERM"),
      NULL },
    { "access", 'a', 0, G_OPTION_ARG_STRING, &access_arg,
      N_("Who may connect: “user” (the default: the same user only) or “everyone”"), N_("WHO") },
    { "verbose", 'v', 0, G_OPTION_ARG_NONE, &verbose,
      N_("Report connections on standard error"), NULL },
    G_OPTION_ENTRY_NULL
  };
  g_autoptr(LsockName) name = NULL;
  g_autoptr(GError) error = NULL;
  g_auto(GStrv) own_args = NULL;
  g_auto(GStrv) command = NULL;
  LsockAccess access;
  Relay relay;
  int status = EXIT_OK;

  /* “NAME --exec COMMAND [ARG…]”: everything after --exec is the
   * command's, never our options */
  for (gsize i = 1; args[i] != NULL; i++)
    {
      if (g_str_equal (args[i], "--"))
        break;
      if (g_str_equal (args[i], "--exec"))
        {
          command = g_strdupv (args + i + 1);
          own_args = g_new0 (char *, i + 1);
          for (gsize j = 0; j < i; j++)
            own_args[j] = g_strdup (args[j]);
          args = own_args;
          break;
        }
    }

  if (!parse_options ("listen", N_("NAME [--exec COMMAND [ARG…]]"),
                      N_("Listen on NAME. Without --echo or --exec, accept one peer, copy standard\n"
                         "input to it and its data to standard output, and exit when both\n"
                         "directions have ended: at the end of standard input, shut down the\n"
                         "sending side and go on reading until the peer's end of stream (after\n"
                         "which the rest of standard input is still sent, unless it is a terminal).\n"
                         "With --echo, send every peer's data back to it, until SIGINT or SIGTERM.\n"
                         "With --exec, run COMMAND for every peer, with the connection as its\n"
                         "standard input and output and LSOCK_NAME, LSOCK_PEER_PID and\n"
                         "LSOCK_PEER_UID in its environment, until SIGINT or SIGTERM (which\n"
                         "is passed on to the running commands).\n"
                         "The socket file, if any, is removed on exit."),
                      N_("NAME is “@foo” (namespaced: an abstract socket on Linux), a path\n"
                         "(contains “/” or starts with “.”), or a bare generic name such as\n"
                         "“foo”, which becomes the best kind this platform offers.\n"
                         "\n"
                         "Exit status: 0 on success (for --echo and --exec, also after SIGINT or\n"
                         "SIGTERM), 1 on errors, 2 on usage errors, 128 + N when stopped by signal N."),
                      entries, &args, &status))
    return status;
  if (command != NULL && args[1] == NULL)
    return usage_error ("listen", _("Missing socket name before --exec"));
  if (exec_option)
    return usage_error ("listen", _("--exec comes after NAME, and is followed by the command"));
  if (command != NULL && command[0] == NULL)
    return usage_error ("listen", _("Missing command after --exec"));
  if (command != NULL && echo)
    return usage_error ("listen", _("--echo and --exec cannot be used together"));
  if (!parse_access ("listen", access_arg, &access, &status))
    return status;
  name = parse_name_arg ("listen", args, &status);
  if (name == NULL)
    return status;

  if (command != NULL)
    {
#ifdef G_OS_UNIX
      return run_exec (name, access, verbose, command);
#else
      g_printerr (_("lsock: --exec is not supported on this platform\n"));
      return EXIT_ERROR;
#endif
    }

  if (echo)
    return run_echo (name, access, verbose);

  relay_init (&relay, verbose);
  relay.listener = lsock_listener_new_full (name, access, NULL, &error);
  if (relay.listener == NULL)
    {
      relay_fail (&relay, error, NULL);
      return relay_run (&relay);
    }

  print_listening (relay.listener);
  if (verbose)
    g_signal_connect (relay.listener, "peer-rejected", G_CALLBACK (peer_rejected_cb), NULL);

  relay.accepting = TRUE;
  lsock_listener_accept_async (relay.listener, relay.cancellable, relay_accept_cb, &relay);
  return relay_run (&relay);
}

static int
cmd_connect (char **args)
{
  gboolean verbose = FALSE;
  g_autofree char *access_arg = NULL;
  int timeout_ms = 0;
  GOptionEntry entries[] = {
    { "access", 'a', 0, G_OPTION_ARG_STRING, &access_arg,
      N_("Which listeners to talk to: “user” (the default: one of this user, or root) or “everyone”"),
      N_("WHO") },
    { "timeout", 't', 0, G_OPTION_ARG_INT, &timeout_ms,
      N_("Give up connecting after MS milliseconds (0, the default: never)"), N_("MS") },
    { "verbose", 'v', 0, G_OPTION_ARG_NONE, &verbose,
      N_("Report the connection on standard error"), NULL },
    G_OPTION_ENTRY_NULL
  };
  g_autoptr(LsockName) name = NULL;
  LsockAccess server_access;
  Relay relay;
  int status = EXIT_OK;

  if (!parse_options ("connect", N_("NAME"),
                      N_("Connect to NAME, copy standard input to it and its data to standard\n"
                         "output, and exit when both directions have ended: at the end of\n"
                         "standard input, shut down the sending side and go on reading until\n"
                         "the listener's end of stream (after which the rest of standard input\n"
                         "is still sent, unless it is a terminal)."),
                      N_("NAME has the syntax of “lsock listen”. The listener must run as this\n"
                         "user (or root) unless --access=everyone: anyone can take a free name\n"
                         "first, and must not get what you send.\n"
                         "\n"
                         "Exit status: 0 on success, 1 on errors, 2 on usage errors,\n"
                         "128 + N when stopped by signal N."),
                      entries, &args, &status))
    return status;
  if (!parse_access ("connect", access_arg, &server_access, &status))
    return status;
  if (timeout_ms < 0)
    return usage_error ("connect", _("--timeout must not be negative"));
  name = parse_name_arg ("connect", args, &status);
  if (name == NULL)
    return status;

  relay_init (&relay, verbose);
  relay.name = name;
  relay.accepting = TRUE;
  lsock_stream_connect_full_async (name, server_access, (guint) timeout_ms, relay.cancellable,
                                   relay_connect_cb, &relay);
  return relay_run (&relay);
}

static const char *
kind_to_string (LsockNameKind kind)
{
  switch (kind)
    {
    case LSOCK_NAME_KIND_PATH:
      return _("path");
    case LSOCK_NAME_KIND_NAMESPACED:
      return _("namespaced");
    default:
      return "?";
    }
}

static const char *
support_to_string (LsockNameTypeSupport support)
{
  switch (support)
    {
    case LSOCK_NAME_TYPE_SUPPORT_ONLY_PATHS:
      return _("paths only");
    case LSOCK_NAME_TYPE_SUPPORT_ONLY_NAMESPACED:
      return _("namespaced names only");
    case LSOCK_NAME_TYPE_SUPPORT_BOTH:
      return _("paths and namespaced names");
    default:
      return "?";
    }
}

/* The operating system's address for @name, for `lsock info` */
static char *
describe_address (LsockName *name)
{
  const char *str = lsock_name_get_name (name);

  if (lsock_name_get_kind (name) == LSOCK_NAME_KIND_PATH)
    {
      g_autofree char *shown = g_filename_display_name (str);
      g_autofree char *cwd = NULL;
      g_autofree char *absolute = NULL;
      g_autofree char *absolute_shown = NULL;

      if (g_path_is_absolute (str))
        /* Translators: %s is a file name */
        return g_strdup_printf (_("socket file %s"), shown);

      cwd = g_get_current_dir ();
      absolute = g_build_filename (cwd, str, NULL);
      absolute_shown = g_filename_display_name (absolute);
      /* Translators: the first %s is a relative file name, the second the absolute one */
      return g_strdup_printf (_("socket file %s, relative to the current directory (now %s)"),
                              shown, absolute_shown);
    }

#if defined (G_OS_WIN32)
  /* Translators: %s is a Windows pipe name, such as \\.\pipe\foo */
  return g_strdup_printf (_("named pipe \\\\.\\pipe\\%s"), str);
#else
  {
    /* The Linux abstract namespace: a NUL, then exactly the name's bytes */
    g_autoptr(GString) escaped = g_string_new ("\"\\0");
    gsize len = strlen (str);

    for (const char *p = str; *p != '\0'; p++)
      {
        guchar c = (guchar) *p;

        if (c == '"' || c == '\\')
          g_string_append_printf (escaped, "\\%c", c);
        else if (c < 0x20 || c == 0x7f)
          g_string_append_printf (escaped, "\\x%02x", c);
        else
          g_string_append_c (escaped, c);
      }
    g_string_append_c (escaped, '"');

    return g_strdup_printf (g_dngettext (GETTEXT_PACKAGE,
                                         /* Translators: %s is an abstract socket address such as "\0foo"; %u counts its bytes, with the leading NUL */
                                         "abstract %s (unpadded, %u byte)",
                                         "abstract %s (unpadded, %u bytes)",
                                         len + 1),
                            escaped->str, (guint) (len + 1));
  }
#endif
}

static int
cmd_info (char **args)
{
  GOptionEntry entries[] = {
    G_OPTION_ENTRY_NULL
  };
  const char * const examples[] = {
    "foo", "@foo", "./foo.sock", "/tmp/foo.sock", "\\\\.\\pipe\\foo", NULL
  };
  const char * const *names;
  int status = EXIT_OK;

  if (!parse_options ("info", N_("[NAME…]"),
                      N_("Show which kinds of names this platform supports and how each NAME\n"
                         "(or a few examples) maps to an address of the operating system."),
                      NULL,
                      entries, &args, &status))
    return status;

  names = args[1] != NULL ? (const char * const *) args + 1 : examples;

  g_print (_("Supported name types: %s\n"),
           support_to_string (lsock_name_type_support_query ()));

  for (gsize i = 0; names[i] != NULL; i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(LsockName) name = NULL;
      g_autofree char *shown = g_filename_display_name (names[i]);
      g_autofree char *string = NULL;
      g_autofree char *name_shown = NULL;
      g_autofree char *address = NULL;

      g_print ("\n%s\n", shown);

      name = lsock_name_parse (names[i], &error);
      if (name == NULL)
        {
          /* Translators: keep the labels of `lsock info` aligned */
          g_print (_("  error:      %s\n"), error->message);
          status = EXIT_ERROR;
          continue;
        }

      string = lsock_name_to_string (name);
      name_shown = g_filename_display_name (lsock_name_get_name (name));
      address = describe_address (name);
      g_print (_("  kind:       %s\n"), kind_to_string (lsock_name_get_kind (name)));
      g_print (_("  name:       %s\n"), name_shown);
      g_print (_("  to_string:  %s\n"), string);
      g_print (_("  address:    %s\n"), address);
#ifdef __linux__
      if (lsock_name_get_kind (name) == LSOCK_NAME_KIND_NAMESPACED)
        g_print (_("  note:       abstract sockets exist per network namespace: a sandbox or\n"
                   "              container without the host's network (Flatpak without\n"
                   "              --share=network, PrivateNetwork=, unshare -n) cannot reach\n"
                   "              it; use a path, such as one made by lsock_name_new_for_app()\n"
                   "              in $XDG_RUNTIME_DIR/app/APP_ID/\n"));
#endif
    }

  return status;
}

static const Command commands[] = {
  { "listen", cmd_listen, N_("Listen on a name: relay one peer, run an echo service, or a command per peer") },
  { "connect", cmd_connect, N_("Connect to a name and relay standard input and output") },
  { "info", cmd_info, N_("Show the name types this platform supports and how names map") },
};

static char *
main_summary (void)
{
  GString *summary = g_string_new (_("Netcat for local sockets: Unix-domain sockets and Windows named pipes."));

  g_string_append (summary, "\n\n");
  g_string_append (summary, _("Commands:"));
  for (gsize i = 0; i < G_N_ELEMENTS (commands); i++)
    g_string_append_printf (summary, "\n  %-10s %s", commands[i].name, _(commands[i].summary));

  return g_string_free (summary, FALSE);
}

int
main (int    argc,
      char **argv)
{
  g_autoptr(GOptionContext) context = NULL;
  g_autoptr(GError) error = NULL;
  g_auto(GStrv) args = NULL;
  g_auto(GStrv) command_args = NULL;
  g_autofree char *summary = NULL;
  gboolean version = FALSE;
  GOptionEntry entries[] = {
    { "version", 0, 0, G_OPTION_ARG_NONE, &version,
      N_("Show the version and exit"), NULL },
    G_OPTION_ENTRY_NULL
  };

  setlocale (LC_ALL, "");
  bindtextdomain (GETTEXT_PACKAGE, LOCALEDIR);
  bind_textdomain_codeset (GETTEXT_PACKAGE, "UTF-8");
  textdomain (GETTEXT_PACKAGE);

#ifdef G_OS_UNIX
  /* Writing to a closed standard output must fail with EPIPE, not kill us
   * before the socket file is removed (sockets never raise SIGPIPE). */
  signal (SIGPIPE, SIG_IGN);
#endif

#ifdef G_OS_WIN32
  args = g_win32_get_command_line ();
#else
  args = g_strdupv (argv);
#endif

  g_set_prgname ("lsock");
  summary = main_summary ();
  context = g_option_context_new (_("COMMAND [OPTION…]"));
  /* Stop at the command: what follows is the command's */
  g_option_context_set_strict_posix (context, TRUE);
  g_option_context_set_summary (context, summary);
  g_option_context_set_description (context, _("Run “lsock COMMAND --help” for the options of a command."));
  g_option_context_add_main_entries (context, entries, GETTEXT_PACKAGE);

  if (!g_option_context_parse_strv (context, &args, &error))
    return usage_error (NULL, error->message);

  if (version)
    {
      g_print ("lsock (lsock-gobject) %s\n", PACKAGE_VERSION);
      return EXIT_OK;
    }

  if (args[1] == NULL)
    {
      g_autofree char *help = g_option_context_get_help (context, TRUE, NULL);

      g_printerr ("%s", help);
      return EXIT_USAGE;
    }

  for (gsize i = 0; i < G_N_ELEMENTS (commands); i++)
    {
      if (g_str_equal (args[1], commands[i].name))
        {
          command_args = g_strdupv (args + 1);
          return commands[i].run (command_args);
        }
    }

  {
    g_autofree char *message = g_strdup_printf (_("Unknown command “%s”"), args[1]);

    return usage_error (NULL, message);
  }
}
