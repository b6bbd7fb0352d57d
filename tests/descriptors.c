/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

/* In and out by descriptor: adopting sockets, handing them over, passing
 * descriptors (wire-compatible with GUnixConnection), and D-Bus peer to
 * peer over a stream. On Windows, what named pipes cannot do fails with
 * G_IO_ERROR_NOT_SUPPORTED; pairs and D-Bus work. */

#include "lsock-test-util.h"

#include <string.h>
#ifdef G_OS_UNIX
# include <errno.h>
# include <glib/gstdio.h>
# include <fcntl.h>
# include <gio/gunixconnection.h>
# include <gio/gunixfdlist.h>
# include <gio/gunixsocketaddress.h>
# include <glib-unix.h>
# include <sys/socket.h>
# include <sys/stat.h>
# include <sys/un.h>
# include <unistd.h>
#endif

static void
write_all (LsockStream *stream,
           const char  *text)
{
  GError *error = NULL;

  g_output_stream_write_all (g_io_stream_get_output_stream (G_IO_STREAM (stream)),
                             text, strlen (text), NULL, NULL, &error);
  g_assert_no_error (error);
}

static void
assert_reads (LsockStream *stream,
              const char  *expected)
{
  char buffer[256] = { 0 };
  gsize n = 0;
  GError *error = NULL;

  g_assert_cmpuint (strlen (expected), <, sizeof buffer);
  g_input_stream_read_all (g_io_stream_get_input_stream (G_IO_STREAM (stream)),
                           buffer, strlen (expected), &n, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (buffer, ==, expected);
}

/* Both ends of a pair talk, in both directions, and finalize */
static void
test_pair (void)
{
  LsockStream *a = NULL;
  LsockStream *b = NULL;
  GError *error = NULL;

  g_assert_true (lsock_stream_new_pair (&a, &b, &error));
  g_assert_no_error (error);
  g_assert_true (LSOCK_IS_STREAM (a));
  g_assert_true (LSOCK_IS_STREAM (b));
#ifdef G_OS_UNIX
  g_assert_null (lsock_stream_get_name (a));
  g_assert_cmpint (lsock_stream_get_fd (a), >=, 0);
#endif

  write_all (a, "ping");
  assert_reads (b, "ping");
  write_all (b, "pong");
  assert_reads (a, "pong");

  lsock_test_close_and_finalize_stream (&a);
  lsock_test_close_and_finalize_stream (&b);
}

#ifdef G_OS_UNIX

static gboolean
is_cloexec (int fd)
{
  return (fcntl (fd, F_GETFD) & FD_CLOEXEC) != 0;
}

/* A raw socketpair, adopted: the stream owns the fd, makes it close-on-exec
 * and blocking, and has no name */
static void
test_new_from_fd (void)
{
  int fds[2];
  int before = lsock_test_settled_fd_count ();
  LsockStream *stream;
  GError *error = NULL;
  char byte = 0;

  g_assert_cmpint (socketpair (AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds), ==, 0);
  g_assert_false (is_cloexec (fds[0]));

  stream = lsock_stream_new_from_fd (fds[0], &error);
  g_assert_no_error (error);
  g_assert_nonnull (stream);
  g_assert_null (lsock_stream_get_name (stream));
  g_assert_true (is_cloexec (fds[0]));
  g_assert_cmpint (fcntl (fds[0], F_GETFL) & O_NONBLOCK, ==, 0);
  g_assert_cmpint (lsock_stream_get_fd (stream), ==, fds[0]);

  write_all (stream, "x");
  g_assert_cmpint (read (fds[1], &byte, 1), ==, 1);
  g_assert_cmpint (byte, ==, 'x');
  g_assert_cmpint (write (fds[1], "yz", 2), ==, 2);
  assert_reads (stream, "yz");

  /* The stream closes the fd it took */
  lsock_test_close_and_finalize_stream (&stream);
  close (fds[1]);
  lsock_test_assert_fd_count (before);
}

/* An accepted connection and a client socket made by hand both take the
 * listener's name */
static void
test_new_from_fd_named (void)
{
  g_autoptr(LsockName) name = lsock_test_path_name ();
  LsockListener *listener;
  LsockStream *server = NULL;
  LsockStream *client = NULL;
  struct sockaddr_un addr = { .sun_family = AF_UNIX };
  GError *error = NULL;
  int fd;

  listener = lsock_listener_new (name, &error);
  g_assert_no_error (error);

  fd = socket (AF_UNIX, SOCK_STREAM, 0);
  g_assert_cmpint (fd, >=, 0);
  g_strlcpy (addr.sun_path, lsock_name_get_name (name), sizeof addr.sun_path);
  g_assert_cmpint (connect (fd, (struct sockaddr *) &addr, sizeof addr), ==, 0);
  client = lsock_stream_new_from_fd (fd, &error);
  g_assert_no_error (error);
  g_assert_true (lsock_name_equal (lsock_stream_get_name (client), name));

  server = lsock_listener_accept (listener, NULL, &error);
  g_assert_no_error (error);
  write_all (client, "hello");
  assert_reads (server, "hello");

  lsock_test_close_and_finalize_stream (&client);
  lsock_test_close_and_finalize_stream (&server);
  lsock_test_close_and_finalize_listener (&listener);
}

static void
assert_adopt_refused (int         fd,
                      const char *why)
{
  GError *error = NULL;
  LsockStream *stream = lsock_stream_new_from_fd (fd, &error);

  g_assert_null (stream);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
  g_assert_nonnull (strstr (error->message, why));
  g_clear_error (&error);
  /* Still the caller's */
  g_assert_cmpint (fcntl (fd, F_GETFD), >=, 0);
  close (fd);
}

/* Anything but a connected AF_UNIX stream socket is refused, and left open */
static void
test_new_from_fd_invalid (void)
{
  g_autoptr(LsockName) name = lsock_test_namespaced_name ();
  struct sockaddr_un addr;
  socklen_t len;
  int fds[2];
  int fd;

  g_assert_true (g_unix_open_pipe (fds, FD_CLOEXEC, NULL));
  assert_adopt_refused (fds[0], "not a socket");
  close (fds[1]);

  g_assert_cmpint (socketpair (AF_UNIX, SOCK_DGRAM, 0, fds), ==, 0);
  assert_adopt_refused (fds[0], "not a stream socket");
  close (fds[1]);

  fd = socket (AF_INET, SOCK_STREAM, 0);
  g_assert_cmpint (fd, >=, 0);
  assert_adopt_refused (fd, "not a Unix-domain socket");

  fd = socket (AF_UNIX, SOCK_STREAM, 0);
  assert_adopt_refused (fd, "not connected");

  /* A listening socket is a listener's business */
  fd = socket (AF_UNIX, SOCK_STREAM, 0);
  memset (&addr, 0, sizeof addr);
  addr.sun_family = AF_UNIX;
  len = offsetof (struct sockaddr_un, sun_path) + 1 + strlen (lsock_name_get_name (name));
  memcpy (addr.sun_path + 1, lsock_name_get_name (name), len - offsetof (struct sockaddr_un, sun_path) - 1);
  g_assert_cmpint (bind (fd, (struct sockaddr *) &addr, len), ==, 0);
  g_assert_cmpint (listen (fd, 4), ==, 0);
  assert_adopt_refused (fd, "listening");
}

/* The socket taken out works as it was; the stream is closed, and the peer
 * saw nothing (no shutdown) */
static void
test_steal_fd (void)
{
  LsockStream *a = NULL;
  LsockStream *b = NULL;
  GError *error = NULL;
  char buffer[4] = { 0 };
  int fd;

  g_assert_true (lsock_stream_new_pair (&a, &b, NULL));
  write_all (b, "abc");

  fd = lsock_stream_steal_fd (a, &error);
  g_assert_no_error (error);
  g_assert_cmpint (fd, >=, 0);
  g_assert_true (is_cloexec (fd));
  g_assert_true (g_io_stream_is_closed (G_IO_STREAM (a)));
  g_assert_cmpint (lsock_stream_get_fd (a), ==, -1);
  g_assert_cmpint (lsock_stream_steal_fd (a, &error), ==, -1);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CLOSED);
  g_clear_error (&error);

  g_assert_cmpint (read (fd, buffer, 3), ==, 3);
  g_assert_cmpstr (buffer, ==, "abc");
  g_assert_cmpint (write (fd, "de", 2), ==, 2);
  assert_reads (b, "de");

  lsock_test_close_and_finalize_stream (&a);
  close (fd);
  /* Now the peer sees the end */
  g_assert_cmpint (g_input_stream_read (g_io_stream_get_input_stream (G_IO_STREAM (b)),
                                        buffer, 1, NULL, &error), ==, 0);
  g_assert_no_error (error);
  lsock_test_close_and_finalize_stream (&b);
}

/* Not while a read is pending: the socket would go with it */
static void
test_steal_fd_pending (void)
{
  LsockStream *a = NULL;
  LsockStream *b = NULL;
  GAsyncResult *result = NULL;
  GError *error = NULL;
  char buffer[4];
  GSocketConnection *connection;

  g_assert_true (lsock_stream_new_pair (&a, &b, NULL));
  g_input_stream_read_async (g_io_stream_get_input_stream (G_IO_STREAM (a)), buffer, 1,
                             G_PRIORITY_DEFAULT, NULL, lsock_test_store_result, &result);
  g_assert_cmpint (lsock_stream_steal_fd (a, &error), ==, -1);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_PENDING);
  g_clear_error (&error);

  write_all (b, "x");
  lsock_test_wait_until (result != NULL);
  g_assert_cmpint (g_input_stream_read_finish (g_io_stream_get_input_stream (G_IO_STREAM (a)),
                                               result, &error), ==, 1);
  g_assert_no_error (error);
  g_clear_object (&result);

  /* Done: now it may go, as a GUnixConnection */
  connection = lsock_stream_steal_connection (a, &error);
  g_assert_no_error (error);
  g_assert_true (G_IS_UNIX_CONNECTION (connection));
  g_assert_true (g_io_stream_is_closed (G_IO_STREAM (a)));
  g_output_stream_write_all (g_io_stream_get_output_stream (G_IO_STREAM (connection)),
                             "gio", 3, NULL, NULL, &error);
  g_assert_no_error (error);
  assert_reads (b, "gio");

  g_io_stream_close (G_IO_STREAM (connection), NULL, NULL);
  g_assert_finalize_object (connection);
  lsock_test_close_and_finalize_stream (&a);
  lsock_test_close_and_finalize_stream (&b);
}

static ino_t
inode_of (int fd)
{
  struct stat st;

  g_assert_cmpint (fstat (fd, &st), ==, 0);
  return st.st_ino;
}

/* Sent and received in order with the data around it */
static void
test_send_receive_fd (void)
{
  LsockStream *a = NULL;
  LsockStream *b = NULL;
  GError *error = NULL;
  int before = lsock_test_settled_fd_count ();
  int pipe_fds[2];
  int received;
  char byte = 0;

  g_assert_true (lsock_stream_new_pair (&a, &b, NULL));
  g_assert_true (g_unix_open_pipe (pipe_fds, FD_CLOEXEC, NULL));

  write_all (a, "before");
  g_assert_true (lsock_stream_send_fd (a, pipe_fds[1], NULL, &error));
  g_assert_no_error (error);
  write_all (a, "after");

  assert_reads (b, "before");
  received = lsock_stream_receive_fd (b, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (received, >=, 0);
  g_assert_cmpint (received, !=, pipe_fds[1]);
  g_assert_true (is_cloexec (received));
  g_assert_cmpuint (inode_of (received), ==, inode_of (pipe_fds[1]));
  assert_reads (b, "after");

  /* It is the same pipe */
  g_assert_cmpint (write (received, "!", 1), ==, 1);
  g_assert_cmpint (read (pipe_fds[0], &byte, 1), ==, 1);
  g_assert_cmpint (byte, ==, '!');

  /* A descriptor that is not open: said so, and the stream goes on */
  g_assert_false (lsock_stream_send_fd (a, 9999, NULL, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
  g_assert_nonnull (strstr (error->message, "file descriptor 9999"));
  g_clear_error (&error);
  write_all (a, "still");
  assert_reads (b, "still");

  close (received);
  close (pipe_fds[0]);
  close (pipe_fds[1]);
  lsock_test_close_and_finalize_stream (&a);
  lsock_test_close_and_finalize_stream (&b);
  lsock_test_assert_fd_count (before);
}

/* Sends @n_fds copies of fd 0 with one byte, by hand */
static void
raw_send_fds (int      fd,
              guint    n_fds,
              gboolean with_fds)
{
  union {
    struct cmsghdr align;
    char           buf[CMSG_SPACE (sizeof (int) * 32)];
  } control;
  char byte = 'z';
  struct iovec iov = { &byte, 1 };
  struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
  int fds[32];

  g_assert_cmpuint (n_fds, <=, 32);
  memset (&control, 0, sizeof control);
  for (guint i = 0; i < n_fds; i++)
    fds[i] = 0;
  if (with_fds)
    {
      struct cmsghdr *cmsg;

      msg.msg_control = control.buf;
      msg.msg_controllen = CMSG_SPACE (sizeof (int) * n_fds);
      cmsg = CMSG_FIRSTHDR (&msg);
      cmsg->cmsg_level = SOL_SOCKET;
      cmsg->cmsg_type = SCM_RIGHTS;
      cmsg->cmsg_len = CMSG_LEN (sizeof (int) * n_fds);
      memcpy (CMSG_DATA (cmsg), fds, sizeof (int) * n_fds);
    }
  g_assert_cmpint (sendmsg (fd, &msg, 0), ==, 1);
}

/* Anything but one descriptor with the byte is an error, and leaks none:
 * none, two, more than the control buffer holds (MSG_CTRUNC), the end */
static void
test_receive_fd_invalid (void)
{
  static const struct {
    guint       n_fds;
    gboolean    with_fds;
    const char *message;
  } cases[] = {
    { 0, FALSE, "without one" },
    { 2, TRUE, "sent 2 at once" },
    { 20, TRUE, "more than" },
  };
  int before = lsock_test_settled_fd_count ();

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      LsockStream *a = NULL;
      LsockStream *b = NULL;
      GError *error = NULL;
      int fd;

      g_assert_true (lsock_stream_new_pair (&a, &b, NULL));
      raw_send_fds (lsock_stream_get_fd (a), cases[i].n_fds, cases[i].with_fds);
      write_all (a, "next");

      fd = lsock_stream_receive_fd (b, NULL, &error);
      g_assert_cmpint (fd, ==, -1);
      g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA);
      g_assert_nonnull (strstr (error->message, cases[i].message));
      g_clear_error (&error);
      /* The stream goes on after the byte */
      assert_reads (b, "next");

      lsock_test_close_and_finalize_stream (&a);
      lsock_test_close_and_finalize_stream (&b);
      lsock_test_assert_fd_count (before);
    }

  /* The end of the stream */
  {
    LsockStream *a = NULL;
    LsockStream *b = NULL;
    GError *error = NULL;

    g_assert_true (lsock_stream_new_pair (&a, &b, NULL));
    lsock_test_close_and_finalize_stream (&a);
    g_assert_cmpint (lsock_stream_receive_fd (b, NULL, &error), ==, -1);
    g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED);
    g_clear_error (&error);
    lsock_test_close_and_finalize_stream (&b);
  }
  lsock_test_assert_fd_count (before);
}

/* The async forms: a receive waits for the descriptor, a read pending on
 * the same stream is refused meanwhile, and data around it flows */
static void
test_fd_async (void)
{
  LsockStream *a = NULL;
  LsockStream *b = NULL;
  GAsyncResult *received_result = NULL;
  GAsyncResult *sent_result = NULL;
  GError *error = NULL;
  int before = lsock_test_settled_fd_count ();
  int pipe_fds[2];
  char buffer[1];
  int fd;

  g_assert_true (lsock_stream_new_pair (&a, &b, NULL));
  g_assert_true (g_unix_open_pipe (pipe_fds, FD_CLOEXEC, NULL));

  lsock_stream_receive_fd_async (b, NULL, lsock_test_store_result, &received_result);
  /* The input stream is busy */
  g_assert_cmpint (g_input_stream_read (g_io_stream_get_input_stream (G_IO_STREAM (b)),
                                        buffer, 1, NULL, &error), ==, -1);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_PENDING);
  g_clear_error (&error);
  lsock_test_drain_main_context ();
  g_assert_null (received_result);

  lsock_stream_send_fd_async (a, pipe_fds[1], NULL, lsock_test_store_result, &sent_result);
  /* A copy was taken: ours may go at once */
  close (pipe_fds[1]);
  lsock_test_wait_until (sent_result != NULL && received_result != NULL);
  g_assert_true (lsock_stream_send_fd_finish (a, sent_result, &error));
  g_assert_no_error (error);
  fd = lsock_stream_receive_fd_finish (b, received_result, &error);
  g_assert_no_error (error);
  g_assert_cmpint (fd, >=, 0);
  g_assert_true (is_cloexec (fd));
  g_assert_cmpint (write (fd, "q", 1), ==, 1);
  g_assert_cmpint (read (pipe_fds[0], buffer, 1), ==, 1);
  g_clear_object (&sent_result);
  g_clear_object (&received_result);
  close (fd);

  /* Cancelled while waiting */
  {
    g_autoptr(GCancellable) cancellable = g_cancellable_new ();

    lsock_stream_receive_fd_async (b, cancellable, lsock_test_store_result, &received_result);
    g_cancellable_cancel (cancellable);
    lsock_test_wait_until (received_result != NULL);
    g_assert_cmpint (lsock_stream_receive_fd_finish (b, received_result, &error), ==, -1);
    g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
    g_clear_error (&error);
    g_clear_object (&received_result);
  }

  /* The stream is usable again */
  write_all (a, "ok");
  assert_reads (b, "ok");

  close (pipe_fds[0]);
  lsock_test_close_and_finalize_stream (&a);
  lsock_test_close_and_finalize_stream (&b);
  lsock_test_assert_fd_count (before);
}

/* A descriptor and data from a peer must not stall the reactor: the bytes
 * after it are read by read_async() too */
static void
test_fd_then_data_async (void)
{
  LsockStream *a = NULL;
  LsockStream *b = NULL;
  GInputStream *input;
  GAsyncResult *result = NULL;
  GError *error = NULL;
  char buffer[8] = { 0 };
  int fd;

  g_assert_true (lsock_stream_new_pair (&a, &b, NULL));
  input = g_io_stream_get_input_stream (G_IO_STREAM (b));

  write_all (a, "AAAA");
  g_assert_true (lsock_stream_send_fd (a, 0, NULL, NULL));
  write_all (a, "BBBB");

  g_input_stream_read_async (input, buffer, 4, G_PRIORITY_DEFAULT, NULL,
                             lsock_test_store_result, &result);
  lsock_test_wait_until (result != NULL);
  g_assert_cmpint (g_input_stream_read_finish (input, result, &error), ==, 4);
  g_assert_cmpstr (buffer, ==, "AAAA");
  g_clear_object (&result);

  lsock_stream_receive_fd_async (b, NULL, lsock_test_store_result, &result);
  lsock_test_wait_until (result != NULL);
  fd = lsock_stream_receive_fd_finish (b, result, &error);
  g_assert_no_error (error);
  close (fd);
  g_clear_object (&result);

  memset (buffer, 0, sizeof buffer);
  g_input_stream_read_async (input, buffer, 4, G_PRIORITY_DEFAULT, NULL,
                             lsock_test_store_result, &result);
  lsock_test_wait_until (result != NULL);
  g_assert_cmpint (g_input_stream_read_finish (input, result, &error), ==, 4);
  g_assert_cmpstr (buffer, ==, "BBBB");
  g_clear_object (&result);

  lsock_test_close_and_finalize_stream (&a);
  lsock_test_close_and_finalize_stream (&b);
}

/* GIO's own GUnixConnection at the other end of a listener, both ways */
static void
test_gunixconnection_interop (void)
{
  g_autoptr(LsockName) name = lsock_test_namespaced_name ();
  g_autoptr(GSocketClient) client = g_socket_client_new ();
  g_autoptr(GSocketAddress) address = NULL;
  GSocketConnection *connection;
  LsockListener *listener;
  LsockStream *server;
  GError *error = NULL;
  int pipe_fds[2];
  int fd;
  char byte;

  listener = lsock_listener_new (name, &error);
  g_assert_no_error (error);
  address = g_unix_socket_address_new_with_type (lsock_name_get_name (name), -1,
                                                 G_UNIX_SOCKET_ADDRESS_ABSTRACT);
  connection = g_socket_client_connect (client, G_SOCKET_CONNECTABLE (address), NULL, &error);
  g_assert_no_error (error);
  g_assert_true (G_IS_UNIX_CONNECTION (connection));
  server = lsock_listener_accept (listener, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (g_unix_open_pipe (pipe_fds, FD_CLOEXEC, NULL));

  /* GIO sends, lsock receives */
  g_assert_true (g_unix_connection_send_fd (G_UNIX_CONNECTION (connection), pipe_fds[1],
                                            NULL, &error));
  g_assert_no_error (error);
  fd = lsock_stream_receive_fd (server, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (inode_of (fd), ==, inode_of (pipe_fds[1]));
  close (fd);

  /* lsock sends, GIO receives */
  g_assert_true (lsock_stream_send_fd (server, pipe_fds[1], NULL, &error));
  g_assert_no_error (error);
  fd = g_unix_connection_receive_fd (G_UNIX_CONNECTION (connection), NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (inode_of (fd), ==, inode_of (pipe_fds[1]));
  g_assert_cmpint (write (fd, "g", 1), ==, 1);
  g_assert_cmpint (read (pipe_fds[0], &byte, 1), ==, 1);
  close (fd);

  close (pipe_fds[0]);
  close (pipe_fds[1]);
  g_io_stream_close (G_IO_STREAM (connection), NULL, NULL);
  g_assert_finalize_object (connection);
  lsock_test_close_and_finalize_stream (&server);
  lsock_test_close_and_finalize_listener (&listener);
}

/* A socket bound and listening by hand */
static int
raw_listener (LsockName *name)
{
  struct sockaddr_un addr;
  socklen_t len = 0;
  int fd = socket (AF_UNIX, SOCK_STREAM, 0);
  const char *n = lsock_name_get_name (name);

  memset (&addr, 0, sizeof addr);
  addr.sun_family = AF_UNIX;
  if (lsock_name_get_kind (name) == LSOCK_NAME_KIND_NAMESPACED)
    {
      memcpy (addr.sun_path + 1, n, strlen (n));
      len = offsetof (struct sockaddr_un, sun_path) + 1 + strlen (n);
    }
  else
    {
      g_strlcpy (addr.sun_path, n, sizeof addr.sun_path);
      len = sizeof addr;
    }
  g_assert_cmpint (bind (fd, (struct sockaddr *) &addr, len), ==, 0);
  g_assert_cmpint (listen (fd, 8), ==, 0);
  return fd;
}

/* Adopted listeners serve as usual, and on close neither shut the socket
 * down (a copy elsewhere still listens) nor remove its file */
static void
test_listener_new_from_fd (gconstpointer data)
{
  gboolean path = GPOINTER_TO_INT (data);
  g_autoptr(LsockName) name = path ? lsock_test_path_name () : lsock_test_namespaced_name ();
  LsockListener *listener;
  LsockStream *client;
  LsockStream *server;
  GError *error = NULL;
  int fd = raw_listener (name);
  int copy = dup (fd);

  listener = lsock_listener_new_from_fd (fd, LSOCK_ACCESS_USER, &error);
  g_assert_no_error (error);
  g_assert_true (lsock_listener_is_adopted (listener));
  g_assert_false (lsock_listener_get_reclaim_name (listener));
  g_assert_true (lsock_name_equal (lsock_listener_get_name (listener), name));
  g_assert_true (is_cloexec (fd));

  client = lsock_stream_connect (name, NULL, &error);
  g_assert_no_error (error);
  server = lsock_listener_accept (listener, NULL, &error);
  g_assert_no_error (error);
  write_all (client, "adopted");
  assert_reads (server, "adopted");
  lsock_test_close_and_finalize_stream (&client);
  lsock_test_close_and_finalize_stream (&server);

  lsock_test_close_and_finalize_listener (&listener);
  g_assert_cmpint (fcntl (fd, F_GETFD), ==, -1);  /* it closed its own */
  if (path)
    g_assert_true (g_file_test (lsock_name_get_name (name), G_FILE_TEST_EXISTS));

  /* The copy still listens: nobody shut it down */
  client = lsock_stream_connect (name, NULL, &error);
  g_assert_no_error (error);
  {
    int accepted = accept (copy, NULL, NULL);

    g_assert_cmpint (accepted, >=, 0);
    close (accepted);
  }
  lsock_test_close_and_finalize_stream (&client);
  close (copy);
  if (path)
    g_unlink (lsock_name_get_name (name));
}

static void
test_listener_new_from_fd_invalid (void)
{
  LsockStream *a = NULL;
  LsockStream *b = NULL;
  GError *error = NULL;
  int fd;

  /* A connection is not a listener */
  g_assert_true (lsock_stream_new_pair (&a, &b, NULL));
  fd = lsock_stream_steal_fd (a, NULL);
  g_assert_null (lsock_listener_new_from_fd (fd, LSOCK_ACCESS_USER, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
  g_assert_nonnull (strstr (error->message, "not listening"));
  g_clear_error (&error);
  g_assert_cmpint (fcntl (fd, F_GETFD), >=, 0);
  close (fd);

  /* Neither is a file */
  fd = open ("/dev/null", O_RDONLY | O_CLOEXEC);
  g_assert_null (lsock_listener_new_from_fd (fd, LSOCK_ACCESS_USER, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  close (fd);

  lsock_test_close_and_finalize_stream (&a);
  lsock_test_close_and_finalize_stream (&b);
}

/* close() in another thread wakes a blocking accept on an adopted socket,
 * which it may not shut down */
static gpointer
accept_thread (gpointer data)
{
  LsockListener *listener = data;
  GError *error = NULL;
  LsockStream *stream = lsock_listener_accept (listener, NULL, &error);

  g_assert_null (stream);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CLOSED);
  g_clear_error (&error);
  return GINT_TO_POINTER (1);
}

static void
test_listener_new_from_fd_close_wakes (void)
{
  g_autoptr(LsockName) name = lsock_test_namespaced_name ();
  LsockListener *listener;
  GThread *thread;
  GError *error = NULL;
  int fd = raw_listener (name);

  listener = lsock_listener_new_from_fd (fd, LSOCK_ACCESS_USER, &error);
  g_assert_no_error (error);
  thread = g_thread_new ("accept", accept_thread, listener);
  /* Whether it is blocked yet or not, it must end CLOSED */
  lsock_listener_close (listener);
  g_assert_cmpint (GPOINTER_TO_INT (g_thread_join (thread)), ==, 1);
  g_assert_finalize_object (listener);
}

#else /* G_OS_WIN32 */

static void
test_not_supported (void)
{
  LsockStream *a = NULL;
  LsockStream *b = NULL;
  GError *error = NULL;

  g_assert_null (lsock_stream_new_from_fd (3, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED);
  g_clear_error (&error);
  g_assert_null (lsock_listener_new_from_fd (3, LSOCK_ACCESS_USER, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED);
  g_clear_error (&error);
  g_assert_null (lsock_listener_new_activated (NULL, LSOCK_ACCESS_USER, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED);
  g_clear_error (&error);

  g_assert_true (lsock_stream_new_pair (&a, &b, &error));
  g_assert_no_error (error);
  g_assert_cmpint (lsock_stream_get_fd (a), ==, -1);
  g_assert_cmpint (lsock_stream_steal_fd (a, &error), ==, -1);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED);
  g_clear_error (&error);
  g_assert_false (lsock_stream_send_fd (a, 0, NULL, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED);
  g_clear_error (&error);
  g_assert_cmpint (lsock_stream_receive_fd (b, NULL, &error), ==, -1);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED);
  g_clear_error (&error);
  /* Still usable */
  write_all (a, "win");
  assert_reads (b, "win");

  lsock_test_close_and_finalize_stream (&a);
  lsock_test_close_and_finalize_stream (&b);
}

#endif

/* ---------------------------------------------------------------------- */
/* D-Bus peer to peer */

static const char introspection_xml[] =
  "<node>"
  "  <interface name='org.example.Lsock'>"
  "    <method name='Echo'>"
  "      <arg type='s' name='text' direction='in'/>"
  "      <arg type='s' name='text' direction='out'/>"
  "    </method>"
#ifdef G_OS_UNIX
  "    <method name='ReadFd'>"
  "      <arg type='h' name='fd' direction='in'/>"
  "      <arg type='s' name='contents' direction='out'/>"
  "    </method>"
#endif
  "  </interface>"
  "</node>";

static void
method_call_cb (GDBusConnection       *connection,
                const char            *sender,
                const char            *object_path,
                const char            *interface_name,
                const char            *method_name,
                GVariant              *parameters,
                GDBusMethodInvocation *invocation,
                gpointer               user_data)
{
  if (g_strcmp0 (method_name, "Echo") == 0)
    {
      const char *text;

      g_variant_get (parameters, "(&s)", &text);
      g_dbus_method_invocation_return_value (invocation, g_variant_new ("(s)", text));
    }
#ifdef G_OS_UNIX
  else if (g_strcmp0 (method_name, "ReadFd") == 0)
    {
      GDBusMessage *message = g_dbus_method_invocation_get_message (invocation);
      GUnixFDList *list = g_dbus_message_get_unix_fd_list (message);
      GError *error = NULL;
      char buffer[64] = { 0 };
      gint32 handle;
      int fd;

      g_variant_get (parameters, "(h)", &handle);
      fd = g_unix_fd_list_get (list, handle, &error);
      g_assert_no_error (error);
      g_assert_cmpint (read (fd, buffer, sizeof buffer - 1), >, 0);
      close (fd);
      g_dbus_method_invocation_return_value (invocation, g_variant_new ("(s)", buffer));
    }
#endif
}

static const GDBusInterfaceVTable vtable = { method_call_cb, NULL, NULL, { 0 } };

/* A server and a client over @server_stream and @client_stream, made
 * async, and a call or two between them */
static void
run_dbus (LsockStream *server_stream,
          LsockStream *client_stream)
{
  g_autofree char *guid = g_dbus_generate_guid ();
  g_autoptr(GDBusNodeInfo) info = g_dbus_node_info_new_for_xml (introspection_xml, NULL);
  GAsyncResult *server_result = NULL;
  GAsyncResult *client_result = NULL;
  GDBusConnection *server;
  GDBusConnection *client;
  GError *error = NULL;
  GVariant *reply;
  const char *text;
  guint id;

  lsock_stream_new_dbus_connection_async (server_stream, guid, G_DBUS_CONNECTION_FLAGS_NONE,
                                          NULL, NULL, lsock_test_store_result, &server_result);
  lsock_stream_new_dbus_connection_async (client_stream, NULL, G_DBUS_CONNECTION_FLAGS_NONE,
                                          NULL, NULL, lsock_test_store_result, &client_result);
  lsock_test_wait_until (server_result != NULL && client_result != NULL);
  server = lsock_stream_new_dbus_connection_finish (server_stream, server_result, &error);
  g_assert_no_error (error);
  client = lsock_stream_new_dbus_connection_finish (client_stream, client_result, &error);
  g_assert_no_error (error);
  g_clear_object (&server_result);
  g_clear_object (&client_result);

#ifdef G_OS_UNIX
  /* EXTERNAL: the server knows who the client is, and descriptors pass */
  {
    GCredentials *credentials = g_dbus_connection_get_peer_credentials (server);

    g_assert_nonnull (credentials);
    g_assert_cmpuint (g_credentials_get_unix_user (credentials, NULL), ==, geteuid ());
    g_assert_true (g_dbus_connection_get_capabilities (server) &
                   G_DBUS_CAPABILITY_FLAGS_UNIX_FD_PASSING);
    g_assert_true (g_dbus_connection_get_capabilities (client) &
                   G_DBUS_CAPABILITY_FLAGS_UNIX_FD_PASSING);
    /* The streams were handed over */
    g_assert_true (g_io_stream_is_closed (G_IO_STREAM (server_stream)));
  }
#endif

  id = g_dbus_connection_register_object (server, "/org/example/Lsock", info->interfaces[0],
                                          &vtable, NULL, NULL, &error);
  g_assert_no_error (error);

  g_dbus_connection_call (client, NULL, "/org/example/Lsock", "org.example.Lsock", "Echo",
                          g_variant_new ("(s)", "over lsock"), G_VARIANT_TYPE ("(s)"),
                          G_DBUS_CALL_FLAGS_NONE, -1, NULL, lsock_test_store_result,
                          &client_result);
  lsock_test_wait_until (client_result != NULL);
  reply = g_dbus_connection_call_finish (client, client_result, &error);
  g_assert_no_error (error);
  g_variant_get (reply, "(&s)", &text);
  g_assert_cmpstr (text, ==, "over lsock");
  g_variant_unref (reply);
  g_clear_object (&client_result);

#ifdef G_OS_UNIX
  {
    g_autoptr(GUnixFDList) list = g_unix_fd_list_new ();
    int pipe_fds[2];

    g_assert_true (g_unix_open_pipe (pipe_fds, FD_CLOEXEC, NULL));
    g_assert_cmpint (write (pipe_fds[1], "through D-Bus", 13), ==, 13);
    close (pipe_fds[1]);
    g_assert_cmpint (g_unix_fd_list_append (list, pipe_fds[0], NULL), ==, 0);
    close (pipe_fds[0]);
    g_dbus_connection_call_with_unix_fd_list (client, NULL, "/org/example/Lsock",
                                              "org.example.Lsock", "ReadFd",
                                              g_variant_new ("(h)", 0), G_VARIANT_TYPE ("(s)"),
                                              G_DBUS_CALL_FLAGS_NONE, -1, list, NULL,
                                              lsock_test_store_result, &client_result);
    lsock_test_wait_until (client_result != NULL);
    reply = g_dbus_connection_call_with_unix_fd_list_finish (client, NULL, client_result,
                                                             &error);
    g_assert_no_error (error);
    g_variant_get (reply, "(&s)", &text);
    g_assert_cmpstr (text, ==, "through D-Bus");
    g_variant_unref (reply);
    g_clear_object (&client_result);
  }
#endif

  g_dbus_connection_unregister_object (server, id);
  g_dbus_connection_close_sync (client, NULL, NULL);
  g_dbus_connection_close_sync (server, NULL, NULL);
  g_object_unref (client);
  g_object_unref (server);
}

/* GDBus's worker thread lets go of a stream it used (on Windows, the
 * LsockStream itself) a moment after the connection is closed: wait for
 * the stream to be finalized */
static void
finalized_cb (gpointer  data,
              GObject  *where_the_object_was)
{
  g_atomic_int_set ((int *) data, TRUE);
  /* Maybe in GDBus's thread: wake the waiting one */
  g_main_context_wakeup (NULL);
}

static void
unref_and_wait_finalized (LsockStream **stream)
{
  int finalized = FALSE;

  g_object_weak_ref (G_OBJECT (*stream), finalized_cb, &finalized);
  g_clear_object (stream);
  lsock_test_wait_until (g_atomic_int_get (&finalized));
}

static void
test_dbus_pair (void)
{
  LsockStream *a = NULL;
  LsockStream *b = NULL;

  g_assert_true (lsock_stream_new_pair (&a, &b, NULL));
  run_dbus (a, b);
  unref_and_wait_finalized (&a);
  unref_and_wait_finalized (&b);
}

static void
test_dbus_listener (void)
{
  g_autoptr(LsockName) name = lsock_test_namespaced_name ();
  LsockTestPair pair = { 0 };

  lsock_test_pair_open (&pair, g_steal_pointer (&name));
  run_dbus (pair.server, pair.client);
  unref_and_wait_finalized (&pair.server);
  unref_and_wait_finalized (&pair.client);
  lsock_test_pair_close (&pair);
}

/* Not while a read is pending; the stream stays usable */
static void
test_dbus_pending (void)
{
  LsockStream *a = NULL;
  LsockStream *b = NULL;
  GAsyncResult *result = NULL;
  GError *error = NULL;
  char buffer[1];

  g_assert_true (lsock_stream_new_pair (&a, &b, NULL));
  g_input_stream_read_async (g_io_stream_get_input_stream (G_IO_STREAM (a)), buffer, 1,
                             G_PRIORITY_DEFAULT, NULL, lsock_test_store_result, &result);
  g_assert_null (lsock_stream_new_dbus_connection (a, NULL, G_DBUS_CONNECTION_FLAGS_NONE,
                                                   NULL, NULL, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_PENDING);
  g_clear_error (&error);
  g_assert_false (g_io_stream_is_closed (G_IO_STREAM (a)));
  write_all (b, "x");
  lsock_test_wait_until (result != NULL);
  g_assert_cmpint (g_input_stream_read_finish (g_io_stream_get_input_stream (G_IO_STREAM (a)),
                                               result, &error), ==, 1);
  g_clear_object (&result);
  lsock_test_close_and_finalize_stream (&a);
  lsock_test_close_and_finalize_stream (&b);
}

int
main (int argc, char **argv)
{
  int ret;

  g_test_init (&argc, &argv, NULL);
  lsock_test_reactor_from_env ();

  g_test_add_func ("/lsock/descriptors/pair", test_pair);
#ifdef G_OS_UNIX
  g_test_add_func ("/lsock/descriptors/new-from-fd", test_new_from_fd);
  g_test_add_func ("/lsock/descriptors/new-from-fd/named", test_new_from_fd_named);
  g_test_add_func ("/lsock/descriptors/new-from-fd/invalid", test_new_from_fd_invalid);
  g_test_add_func ("/lsock/descriptors/steal-fd", test_steal_fd);
  g_test_add_func ("/lsock/descriptors/steal-fd/pending", test_steal_fd_pending);
  g_test_add_func ("/lsock/descriptors/send-receive-fd", test_send_receive_fd);
  g_test_add_func ("/lsock/descriptors/receive-fd/invalid", test_receive_fd_invalid);
  g_test_add_func ("/lsock/descriptors/fd/async", test_fd_async);
  g_test_add_func ("/lsock/descriptors/fd/then-data-async", test_fd_then_data_async);
  g_test_add_func ("/lsock/descriptors/fd/gunixconnection", test_gunixconnection_interop);
  g_test_add_data_func ("/lsock/descriptors/listener-from-fd/abstract", GINT_TO_POINTER (FALSE),
                        test_listener_new_from_fd);
  g_test_add_data_func ("/lsock/descriptors/listener-from-fd/path", GINT_TO_POINTER (TRUE),
                        test_listener_new_from_fd);
  g_test_add_func ("/lsock/descriptors/listener-from-fd/invalid",
                   test_listener_new_from_fd_invalid);
  g_test_add_func ("/lsock/descriptors/listener-from-fd/close-wakes",
                   test_listener_new_from_fd_close_wakes);
#else
  g_test_add_func ("/lsock/descriptors/not-supported", test_not_supported);
#endif
  g_test_add_func ("/lsock/descriptors/dbus/pair", test_dbus_pair);
  g_test_add_func ("/lsock/descriptors/dbus/listener", test_dbus_listener);
  g_test_add_func ("/lsock/descriptors/dbus/pending", test_dbus_pending);

  ret = g_test_run ();
  lsock_test_cleanup_dirs ();
  return ret;
}
