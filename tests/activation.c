/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

/* Socket activation: a real systemd-socket-activate (Debian's systemd
 * package) running the service in tests/helpers/activated.c, over a path
 * and an abstract name, with Accept=yes-style connections, and the `lsock
 * listen` tool; and the variables' edge cases, with the socket passed at
 * fd 3 by the test itself. */

#include "lsock-test-util.h"

#include <string.h>
#ifdef G_OS_UNIX
# include <errno.h>
# include <glib/gstdio.h>
# include <signal.h>
# include <sys/socket.h>
# include <sys/un.h>
# include <unistd.h>
#endif
#ifdef __linux__
# include <sys/syscall.h>
# include <sys/vfs.h>
#endif

#ifdef G_OS_UNIX

static const char *
helper (void)
{
  const char *path = g_getenv ("LSOCK_TEST_ACTIVATED");

  g_assert_nonnull (path);
  return path;
}

static char *
find_activate (void)
{
  char *path = g_find_program_in_path ("systemd-socket-activate");

  if (path == NULL)
    g_test_skip ("systemd-socket-activate is not installed (Debian package systemd)");
  return path;
}

/* Starts systemd-socket-activate with @argv after its own options, and
 * waits until it listens (it says so on stderr) */
static GSubprocess *
spawn_activate (const char * const *argv)
{
  g_autoptr(GSubprocessLauncher) launcher =
    g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDERR_PIPE);
  g_autoptr(GDataInputStream) err = NULL;
  GSubprocess *process;
  GError *error = NULL;

  /* What a service manager would not pass on */
  g_subprocess_launcher_unsetenv (launcher, "LISTEN_FDS");
  g_subprocess_launcher_unsetenv (launcher, "LISTEN_PID");
  process = g_subprocess_launcher_spawnv (launcher, argv, &error);
  g_assert_no_error (error);

  /* The pipe stays open (the activator writes more to it) until the
   * process object goes */
  err = g_data_input_stream_new (g_subprocess_get_stderr_pipe (process));
  g_filter_input_stream_set_close_base_stream (G_FILTER_INPUT_STREAM (err), FALSE);
  for (;;)
    {
      g_autofree char *line = g_data_input_stream_read_line_utf8 (err, NULL, NULL, &error);

      g_assert_no_error (error);
      g_assert_nonnull (line);  /* it died before it listened */
      if (g_str_has_prefix (line, "Listening on"))
        break;
    }
  return process;
}

static char *
read_line (LsockStream *stream)
{
  g_autoptr(GDataInputStream) in =
    g_data_input_stream_new (g_io_stream_get_input_stream (G_IO_STREAM (stream)));
  GError *error = NULL;
  char *line;

  g_filter_input_stream_set_close_base_stream (G_FILTER_INPUT_STREAM (in), FALSE);
  line = g_data_input_stream_read_line_utf8 (in, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_nonnull (line);
  return line;
}

static void
wait_exit_ok (GSubprocess *process)
{
  GError *error = NULL;

  g_subprocess_wait (process, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (g_subprocess_get_if_exited (process));
  g_assert_cmpint (g_subprocess_get_exit_status (process), ==, 0);
}

/* The service calls plain lsock_listener_new() on its name and gets the
 * socket systemd-socket-activate made, with no code for activation; the
 * variables are gone once it took it; the socket file stays */
static void
test_systemd_listen (gconstpointer data)
{
  gboolean path = GPOINTER_TO_INT (data);
  g_autofree char *activate = find_activate ();
  g_autoptr(LsockName) name = NULL;
  g_autoptr(GSubprocess) process = NULL;
  g_autofree char *string = NULL;
  g_autofree char *line = NULL;
  LsockStream *stream;
  GError *error = NULL;

  if (activate == NULL)
    return;
  name = path ? lsock_test_path_name () : lsock_test_namespaced_name ();
  string = lsock_name_to_string (name);
  {
    const char *argv[] = { activate, "-l", string, helper (), "listen", string, NULL };

    process = spawn_activate (argv);
  }

  stream = lsock_stream_connect (name, NULL, &error);
  g_assert_no_error (error);
  line = read_line (stream);
  g_assert_cmpstr (line, ==, "adopted=1 env=unset reclaim=0");
  lsock_test_close_and_finalize_stream (&stream);
  wait_exit_ok (process);
  if (path)
    {
      /* The service manager's file, not the service's to remove */
      g_assert_true (g_file_test (lsock_name_get_name (name), G_FILE_TEST_EXISTS));
      g_unlink (lsock_name_get_name (name));
    }
}

/* By $LISTEN_FDNAMES name, and the only one */
static void
test_systemd_named (gconstpointer data)
{
  const char *mode = data;
  g_autofree char *activate = find_activate ();
  g_autoptr(LsockName) name = NULL;
  g_autoptr(GSubprocess) process = NULL;
  g_autofree char *string = NULL;
  g_autofree char *line = NULL;
  LsockStream *stream;
  GError *error = NULL;

  if (activate == NULL)
    return;
  name = lsock_test_namespaced_name ();
  string = lsock_name_to_string (name);
  {
    const char *argv[] = { activate, "-l", string, "--fdname=control", helper (), mode,
                           "control", NULL };

    process = spawn_activate (argv);
  }

  stream = lsock_stream_connect (name, NULL, &error);
  g_assert_no_error (error);
  line = read_line (stream);
  g_assert_cmpstr (line, ==, "adopted=1 env=unset reclaim=0");
  lsock_test_close_and_finalize_stream (&stream);
  wait_exit_ok (process);
}

/* Accept=yes: one service per connection, given the connected socket */
static void
test_systemd_accept (void)
{
  g_autofree char *activate = find_activate ();
  g_autoptr(LsockName) name = NULL;
  g_autoptr(GSubprocess) process = NULL;
  g_autofree char *string = NULL;

  if (activate == NULL)
    return;
  name = lsock_test_namespaced_name ();
  string = lsock_name_to_string (name);
  {
    const char *argv[] = { activate, "--accept", "-l", string, helper (), "accept", NULL };

    process = spawn_activate (argv);
  }

  for (int i = 0; i < 2; i++)
    {
      g_autofree char *line = NULL;
      g_autofree char *expected = g_strdup_printf ("accepted name=%s", string);
      GError *error = NULL;
      LsockStream *stream = lsock_stream_connect (name, NULL, &error);

      g_assert_no_error (error);
      line = read_line (stream);
      g_assert_cmpstr (line, ==, expected);
      lsock_test_close_and_finalize_stream (&stream);
    }

  g_subprocess_send_signal (process, SIGTERM);
  g_subprocess_wait (process, NULL, NULL);
}

/* `lsock listen NAME` serves under activation too */
static void
test_systemd_tool (void)
{
  g_autofree char *activate = find_activate ();
  const char *tool = g_getenv ("LSOCK_TOOL");
  g_autoptr(LsockName) name = NULL;
  g_autoptr(GSubprocess) process = NULL;
  g_autofree char *string = NULL;
  GError *error = NULL;
  LsockStream *stream;

  if (activate == NULL)
    return;
  if (tool == NULL)
    {
      g_test_skip ("LSOCK_TOOL is not set");
      return;
    }
  name = lsock_test_path_name ();
  string = lsock_name_to_string (name);
  {
    const char *argv[] = { activate, "-l", string, tool, "listen", "--verbose",
                           string, NULL };
    g_autoptr(GSubprocessLauncher) launcher =
      g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDERR_PIPE | G_SUBPROCESS_FLAGS_STDOUT_PIPE);
    g_autoptr(GDataInputStream) err = NULL;
    g_autofree char *out = NULL;
    g_autofree char *adopted_line = NULL;

    process = g_subprocess_launcher_spawnv (launcher, argv, &error);
    g_assert_no_error (error);
    err = g_data_input_stream_new (g_subprocess_get_stderr_pipe (process));
    for (;;)
      {
        g_autofree char *line = g_data_input_stream_read_line_utf8 (err, NULL, NULL, &error);

        g_assert_no_error (error);
        g_assert_nonnull (line);
        if (g_str_has_prefix (line, "Listening on"))
          break;
      }

    stream = lsock_stream_connect (name, NULL, &error);
    g_assert_no_error (error);
    g_output_stream_write_all (g_io_stream_get_output_stream (G_IO_STREAM (stream)),
                               "activated\n", 10, NULL, NULL, &error);
    g_assert_no_error (error);
    lsock_test_close_and_finalize_stream (&stream);

    /* The tool says it took the activated socket, and prints what came */
    for (;;)
      {
        g_autofree char *line = g_data_input_stream_read_line_utf8 (err, NULL, NULL, &error);

        g_assert_no_error (error);
        if (line == NULL)
          break;
        if (strstr (line, "socket activation") != NULL)
          adopted_line = g_steal_pointer (&line);
      }
    g_assert_nonnull (adopted_line);
    g_subprocess_communicate_utf8 (process, NULL, NULL, &out, NULL, &error);
    g_assert_no_error (error);
    g_assert_cmpstr (out, ==, "activated\n");
    wait_exit_ok (process);
  }
  g_unlink (lsock_name_get_name (name));
}

/* ---------------------------------------------------------------------- */
/* The variables, with the socket passed by us */

static int
raw_listener (LsockName *name)
{
  struct sockaddr_un addr;
  socklen_t len;
  const char *n = lsock_name_get_name (name);
  int fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

  memset (&addr, 0, sizeof addr);
  addr.sun_family = AF_UNIX;
  memcpy (addr.sun_path + 1, n, strlen (n));
  len = offsetof (struct sockaddr_un, sun_path) + 1 + strlen (n);
  g_assert_cmpint (bind (fd, (struct sockaddr *) &addr, len), ==, 0);
  g_assert_cmpint (listen (fd, 8), ==, 0);
  return fd;
}

typedef struct
{
  const char *listen_fds;       /* NULL: unset */
  gboolean    fix_pid;          /* $LISTEN_PID = the service's */
  const char *listen_pid;       /* else this */
  const char *pidfdid;          /* $LISTEN_PIDFDID, or NULL */
  const char *fdnames;
  const char *mode;
  const char *arg;
  /* Expected: the service's first line (it adopted), or its error */
  const char *line;
  const char *error;
} EnvCase;

/* Spawns the helper with a listening socket at fd 3 and the case's
 * variables, then either connects, or reads the error it fails with */
static void
test_env_case (gconstpointer data)
{
  const EnvCase *c = data;
  g_autoptr(LsockName) name = lsock_test_namespaced_name ();
  g_autoptr(GSubprocessLauncher) launcher =
    g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDERR_PIPE);
  g_autoptr(GSubprocess) process = NULL;
  g_autofree char *string = lsock_name_to_string (name);
  g_autofree char *err = NULL;
  const char *argv[] = { helper (), c->mode, c->arg != NULL ? c->arg : string, NULL };
  GError *error = NULL;

  g_subprocess_launcher_take_fd (launcher, raw_listener (name), 3);
  g_subprocess_launcher_unsetenv (launcher, "LISTEN_FDS");
  g_subprocess_launcher_unsetenv (launcher, "LISTEN_PID");
  g_subprocess_launcher_unsetenv (launcher, "LISTEN_PIDFDID");
  g_subprocess_launcher_unsetenv (launcher, "LISTEN_FDNAMES");
  if (c->listen_fds != NULL)
    g_subprocess_launcher_setenv (launcher, "LISTEN_FDS", c->listen_fds, TRUE);
  if (c->fix_pid)
    g_subprocess_launcher_setenv (launcher, "TEST_SET_LISTEN_PID", "1", TRUE);
  else if (c->listen_pid != NULL)
    g_subprocess_launcher_setenv (launcher, "LISTEN_PID", c->listen_pid, TRUE);
  if (c->pidfdid != NULL)
    g_subprocess_launcher_setenv (launcher, "TEST_SET_LISTEN_PIDFDID", c->pidfdid, TRUE);
  if (c->fdnames != NULL)
    g_subprocess_launcher_setenv (launcher, "LISTEN_FDNAMES", c->fdnames, TRUE);

  process = g_subprocess_launcher_spawnv (launcher, argv, &error);
  g_assert_no_error (error);

  if (c->line != NULL)
    {
      g_autofree char *line = NULL;
      LsockStream *stream = lsock_stream_connect (name, NULL, &error);

      g_assert_no_error (error);
      line = read_line (stream);
      g_assert_cmpstr (line, ==, c->line);
      lsock_test_close_and_finalize_stream (&stream);
      wait_exit_ok (process);
      return;
    }

  g_subprocess_communicate_utf8 (process, NULL, NULL, NULL, &err, &error);
  g_assert_no_error (error);
  g_assert_cmpint (g_subprocess_get_exit_status (process), ==, 2);
  g_test_message ("service said: %s", err);
  g_assert_nonnull (strstr (err, c->error));
}

static const EnvCase env_cases[] = {
  /* Adopted by name, the variables consumed */
  { .listen_fds = "1", .fix_pid = TRUE, .mode = "listen",
    .line = "adopted=1 env=unset reclaim=0" },
  /* Another process's variables: ignored, so the service binds the name
   * itself, which our socket at fd 3 holds */
  { .listen_fds = "1", .listen_pid = "1", .mode = "listen",
    .error = "another listener is using this name" },
  { .listen_fds = "1", .listen_pid = "1", .mode = "only",
    .error = "$LISTEN_PID names another" },
  { .listen_fds = NULL, .mode = "only", .error = "$LISTEN_FDS is not set" },
  /* Not all of them are open: none is taken */
  { .listen_fds = "3", .fix_pid = TRUE, .mode = "only", .error = "not open" },
  { .listen_fds = "1", .fix_pid = TRUE, .fdnames = "ctl", .mode = "named", .arg = "ctl",
    .line = "adopted=1 env=unset reclaim=0" },
  { .listen_fds = "1", .fix_pid = TRUE, .fdnames = "ctl", .mode = "named", .arg = "other",
    .error = "No activated socket is named “other”" },
};

/* $LISTEN_PIDFDID, where the kernel's pidfds have an identity (pidfs,
 * Linux 6.9): another process's is refused */
static void
test_env_pidfdid (void)
{
  EnvCase c = { .listen_fds = "1", .fix_pid = TRUE, .pidfdid = "1", .mode = "only",
                .error = "$LISTEN_PIDFDID names another" };
#ifdef __linux__
  {
    struct statfs sfs;
    int pidfd = (int) syscall (SYS_pidfd_open, getpid (), 0);
    gboolean pidfs = pidfd >= 0 && fstatfs (pidfd, &sfs) == 0 &&
                     (unsigned long) sfs.f_type == 0x50494446;

    if (pidfd >= 0)
      close (pidfd);
    if (!pidfs)
      {
        g_test_skip ("pidfds have no identity on this kernel (no pidfs): "
                     "$LISTEN_PIDFDID cannot be checked");
        return;
      }
  }
#else
  g_test_skip ("Linux only");
  return;
#endif
  test_env_case (&c);
}

#else /* G_OS_WIN32 */

static void
test_not_supported (void)
{
  GError *error = NULL;

  g_assert_null (lsock_listener_new_activated ("x", LSOCK_ACCESS_USER, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED);
  g_clear_error (&error);
}

#endif

int
main (int argc, char **argv)
{
  int ret;

  g_test_init (&argc, &argv, NULL);

#ifdef G_OS_UNIX
  g_test_add_data_func ("/lsock/activation/systemd/listen/path", GINT_TO_POINTER (TRUE),
                        test_systemd_listen);
  g_test_add_data_func ("/lsock/activation/systemd/listen/abstract", GINT_TO_POINTER (FALSE),
                        test_systemd_listen);
  g_test_add_data_func ("/lsock/activation/systemd/named", "named", test_systemd_named);
  g_test_add_data_func ("/lsock/activation/systemd/only", "only", test_systemd_named);
  g_test_add_func ("/lsock/activation/systemd/accept", test_systemd_accept);
  g_test_add_func ("/lsock/activation/systemd/tool", test_systemd_tool);
  for (gsize i = 0; i < G_N_ELEMENTS (env_cases); i++)
    {
      g_autofree char *path = g_strdup_printf ("/lsock/activation/env/%" G_GSIZE_FORMAT, i);

      g_test_add_data_func (path, &env_cases[i], test_env_case);
    }
  g_test_add_func ("/lsock/activation/env/pidfdid", test_env_pidfdid);
#else
  g_test_add_func ("/lsock/activation/not-supported", test_not_supported);
#endif

  ret = g_test_run ();
  lsock_test_cleanup_dirs ();
  return ret;
}
