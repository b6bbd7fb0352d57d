/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

/* "Safe by default", tried from the attacker's side: another local user
 * who can write the directory of our socket file, or who holds a lock we
 * would wait for. These tests need root (to be root and the other user,
 * 65534, through setpriv) and skip otherwise. */

#include "lsock-test-util.h"
#ifdef G_OS_UNIX
# include "lsock-name-private.h"
# include "lsock-unix-socket-file-private.h"
#endif

#include <string.h>
#ifdef G_OS_UNIX
# include <errno.h>
# include <fcntl.h>
# include <glib/gstdio.h>
# include <signal.h>
# include <stdio.h>
# include <sys/stat.h>
# include <unistd.h>
#endif

#define OTHER_UID 65534

#ifdef G_OS_UNIX
static gboolean
skip_unless_root (void)
{
  g_autofree char *setpriv = g_find_program_in_path ("setpriv");

  if (geteuid () != 0)
    {
      g_test_skip ("Needs root, to act as another user too");
      return TRUE;
    }
  if (setpriv == NULL)
    {
      g_test_skip ("Needs setpriv");
      return TRUE;
    }
  return FALSE;
}

/* A directory the other user can read, with copies of the programs it
 * runs: the build may be in a directory only we can enter (a checkout in
 * /root, a CI clone made 0700). Made once per process. */
static const char *
readable_dir (void)
{
  static const char *dir = NULL;
  const char *copies[][2] = {
    { "LSOCK_TEST_ATTACKER", NULL },
    { "LSOCK_TOOL", NULL },
    { "LSOCK_TEST_LIBDIR", "liblsock-gobject-1.0.so.0" },
  };

  if (dir != NULL)
    return dir;
  dir = lsock_test_tmp_dir ();
  g_assert_no_errno (chmod (dir, 0755));
  for (gsize i = 0; i < G_N_ELEMENTS (copies); i++)
    {
      g_autoptr(GError) error = NULL;
      g_autofree char *from = NULL;
      g_autofree char *to = NULL;
      g_autofree char *base = NULL;
      g_autoptr(GFile) from_file = NULL;
      g_autoptr(GFile) to_file = NULL;
      const char *value = g_getenv (copies[i][0]);

      if (value == NULL)
        continue;
      from = copies[i][1] != NULL ? g_build_filename (value, copies[i][1], NULL) :
                                    g_strdup (value);
      base = copies[i][1] != NULL ? g_strdup (copies[i][1]) : g_path_get_basename (value);
      to = g_build_filename (dir, base, NULL);
      from_file = g_file_new_for_path (from);
      to_file = g_file_new_for_path (to);
      g_assert_true (g_file_copy (from_file, to_file, G_FILE_COPY_OVERWRITE, NULL, NULL, NULL,
                                  &error));
      g_assert_no_error (error);
      g_assert_no_errno (chmod (to, 0755));
    }
  return dir;
}

/* The copy of the program @env_var names, or NULL (the test then skips) */
static char *
other_program (const char *env_var)
{
  const char *value = g_getenv (env_var);
  g_autofree char *base = NULL;

  if (value == NULL)
    {
      g_autofree char *why = g_strdup_printf ("%s is not set", env_var);

      g_test_skip (why);
      return NULL;
    }
  base = g_path_get_basename (value);
  return g_build_filename (readable_dir (), base, NULL);
}

/* A program run as the other user (or, with @as_other FALSE, as us), with
 * a pipe on its stdin (closing it ends the program), one on its stdout and
 * one on its stderr */
typedef struct
{
  GSubprocess      *process;
  GDataInputStream *out;
} Other;

/* With @stdin_path, the program reads its standard input from that file */
static GSubprocess *
spawn (gboolean            as_other,
       GSubprocessFlags    flags,
       const char         *stdin_path,
       const char * const *args)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GSubprocessLauncher) launcher = g_subprocess_launcher_new (flags);
  g_autoptr(GPtrArray) argv = g_ptr_array_new ();
  GSubprocess *process;

  if (as_other)
    {
      g_ptr_array_add (argv, (char *) "setpriv");
      g_ptr_array_add (argv, (char *) "--reuid=65534");
      g_ptr_array_add (argv, (char *) "--regid=65534");
      g_ptr_array_add (argv, (char *) "--clear-groups");
    }
  for (gsize i = 0; args[i] != NULL; i++)
    g_ptr_array_add (argv, (char *) args[i]);
  g_ptr_array_add (argv, NULL);

  /* The tool finds its library in the readable copy */
  g_subprocess_launcher_setenv (launcher, "LD_LIBRARY_PATH", readable_dir (), TRUE);
  if (stdin_path != NULL)
    g_subprocess_launcher_set_stdin_file_path (launcher, stdin_path);
  process = g_subprocess_launcher_spawnv (launcher, (const char * const *) argv->pdata, &error);
  g_assert_no_error (error);
  return process;
}

static void
other_start (Other       *other,
             const char  *first,
             ...)
{
  g_autoptr(GPtrArray) argv = g_ptr_array_new ();
  const char *arg;
  va_list ap;

  va_start (ap, first);
  for (arg = first; arg != NULL; arg = va_arg (ap, const char *))
    g_ptr_array_add (argv, (char *) arg);
  va_end (ap);
  g_ptr_array_add (argv, NULL);

  other->process = spawn (TRUE, G_SUBPROCESS_FLAGS_STDIN_PIPE | G_SUBPROCESS_FLAGS_STDOUT_PIPE, NULL,
                          (const char * const *) argv->pdata);
  other->out = g_data_input_stream_new (g_subprocess_get_stdout_pipe (other->process));
}

/* Writes a line to its standard input */
static void
other_say (Other      *other,
           const char *line)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *text = g_strconcat (line, "\n", NULL);

  g_assert_true (g_output_stream_write_all (g_subprocess_get_stdin_pipe (other->process),
                                            text, strlen (text), NULL, NULL, &error));
  g_assert_no_error (error);
}

/* Waits for the line the other user's program prints once it is set */
static void
other_wait_ready (Other      *other,
                  const char *expected)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *line = g_data_input_stream_read_line_utf8 (other->out, NULL, NULL, &error);

  g_assert_no_error (error);
  g_assert_cmpstr (line, ==, expected);
}

static void
other_stop (Other *other)
{
  g_autoptr(GError) error = NULL;

  g_output_stream_close (g_subprocess_get_stdin_pipe (other->process), NULL, NULL);
  g_assert_true (g_subprocess_wait (other->process, NULL, &error));
  g_assert_no_error (error);
  g_clear_object (&other->out);
  g_clear_object (&other->process);
}

static char *
shared_dir (mode_t mode)
{
  char *dir = g_strdup (lsock_test_tmp_dir ());

  g_assert_no_errno (chmod (dir, mode));
  return dir;
}

/* A file the attacker wants us to change: root's, 0640, in a directory
 * the attacker cannot enter */
static char *
make_victim (void)
{
  g_autoptr(GError) error = NULL;
  char *victim = g_build_filename (lsock_test_tmp_dir (), "victim", NULL);

  g_assert_true (g_file_set_contents (victim, "secret", -1, &error));
  g_assert_no_error (error);
  g_assert_no_errno (chmod (victim, 0640));
  /* Its directory is 0700, but the link is followed by root */
  return victim;
}

static void
assert_victim_untouched (const char *victim)
{
  g_autofree char *contents = NULL;
  struct stat st;

  g_assert_no_errno (stat (victim, &st));
  g_assert_cmpint (st.st_mode & 07777, ==, 0640);
  g_assert_cmpuint (st.st_uid, ==, 0);
  g_assert_true (g_file_get_contents (victim, &contents, NULL, NULL));
  g_assert_cmpstr (contents, ==, "secret");
}
#endif

#ifdef G_OS_UNIX
/* The attacker at its best: waits (boundedly) after each bind() until the
 * file has been swapped */
static void
wait_for_swap (const char *path)
{
  gint64 deadline = g_get_monotonic_time () + 2 * G_USEC_PER_SEC;
  struct stat st;

  while (g_get_monotonic_time () < deadline &&
         !(lstat (path, &st) == 0 && S_ISLNK (st.st_mode)))
    g_thread_yield ();
}
#endif

/* The attacker can write the socket's directory and swaps a symbolic link
 * to a file of root's in for each socket file the moment it appears (with
 * inotify): a listener that set the mode by name, or removed the file by
 * name, would change or remove that file. Ours fails to listen (the file
 * was replaced), or listens on its own socket; the file stays as it was. */
static void
test_symlink_swap (void)
{
#ifdef G_OS_UNIX
  g_autofree char *attacker = NULL;
  g_autofree char *dir = NULL;
  g_autofree char *victim = NULL;
  guint n_listened = 0, n_refused = 0;
  Other other = { 0 };

  if (skip_unless_root ())
    return;
  attacker = other_program ("LSOCK_TEST_ATTACKER");
  if (attacker == NULL)
    return;

  dir = shared_dir (0777);
  victim = make_victim ();
  other_start (&other, attacker, "swap", dir, victim, NULL);
  other_wait_ready (&other, "ready");

  for (guint round = 0; round < 300; round++)
    {
      g_autoptr(GError) error = NULL;
      /* Half the rounds give the attacker all the time it needs */
      _lsock_socket_file_after_bind_for_testing = round % 4 < 2 ? wait_for_swap : NULL;
      g_autofree char *base = g_strdup_printf ("sock-%u", round);
      g_autofree char *path = g_build_filename (dir, base, NULL);
      LsockName *name = lsock_name_new_path (path, &error);
      LsockListener *listener;

      g_assert_no_error (error);
      listener = lsock_listener_new_full (name, round % 2 ? LSOCK_ACCESS_EVERYONE :
                                                             LSOCK_ACCESS_USER,
                                          NULL, &error);
      if (listener != NULL)
        {
          n_listened++;
          /* Closing removes only our own socket, whatever is there now */
          g_assert_finalize_object (listener);
        }
      else
        {
          n_refused++;
          if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_EXISTS) &&
              !g_error_matches (error, G_IO_ERROR, G_IO_ERROR_ADDRESS_IN_USE))
            g_error ("Round %u: %s", round, error->message);
        }
      assert_victim_untouched (victim);
      g_assert_finalize_object (name);
    }
  _lsock_socket_file_after_bind_for_testing = NULL;
  other_stop (&other);
  assert_victim_untouched (victim);
  g_test_message ("listened %u times, refused (the file was swapped) %u times",
                  n_listened, n_refused);
  g_assert_cmpuint (n_refused, >=, 150);
#else
  g_test_skip ("Socket files are Unix-only here");
#endif
}

/* The socket file is swapped for the attacker's own file while we listen:
 * closing must not remove it (it is not ours), nor our socket elsewhere */
static void
test_swap_before_reclaim (void)
{
#ifdef G_OS_UNIX
  g_autoptr(GError) error = NULL;
  g_autofree char *dir = NULL;
  g_autofree char *path = NULL;
  g_autofree char *moved = NULL;
  LsockName *name;
  LsockListener *listener;
  struct stat st;

  if (skip_unless_root ())
    return;
  dir = shared_dir (0777);
  path = g_build_filename (dir, "sock", NULL);
  moved = g_build_filename (dir, "moved", NULL);
  name = lsock_name_new_path (path, &error);
  g_assert_no_error (error);
  listener = lsock_listener_new (name, &error);
  g_assert_no_error (error);

  /* What the other user can do in a directory they can write */
  g_assert_no_errno (rename (path, moved));
  g_assert_true (g_file_set_contents (path, "theirs", -1, &error));
  g_assert_no_errno (chown (path, OTHER_UID, OTHER_UID));

  g_assert_finalize_object (listener);
  g_assert_no_errno (lstat (path, &st));
  g_assert_true (S_ISREG (st.st_mode));
  g_assert_no_errno (lstat (moved, &st));
  g_assert_true (S_ISSOCK (st.st_mode));
  g_assert_finalize_object (name);
#else
  g_test_skip ("Socket files are Unix-only here");
#endif
}

/* Another user holds an flock() on the directory of our socket (anyone who
 * can read /tmp can): we listen at once, without waiting for them */
static void
test_lock_held_by_another_user (void)
{
#ifdef G_OS_UNIX
  g_autoptr(GError) error = NULL;
  g_autofree char *dir = NULL;
  g_autofree char *path = NULL;
  LsockName *name;
  LsockListener *listener;
  Other other = { 0 };

  if (skip_unless_root ())
    return;
  if (!g_file_test ("/usr/bin/flock", G_FILE_TEST_IS_EXECUTABLE))
    {
      g_test_skip ("Needs flock(1)");
      return;
    }
  dir = shared_dir (01777);
  other_start (&other, "flock", "-x", dir, "sh", "-c", "echo held; cat", NULL);
  other_wait_ready (&other, "held");

  for (int i = 0; i < 3; i++)
    {
      g_autofree char *base = g_strdup_printf ("sock-%d", i);

      g_clear_pointer (&path, g_free);
      path = g_build_filename (dir, base, NULL);
      name = lsock_name_new_path (path, &error);
      g_assert_no_error (error);
      listener = lsock_listener_new (name, &error);
      g_assert_no_error (error);
      g_assert_finalize_object (listener);
      g_assert_finalize_object (name);
    }
  other_stop (&other);
#else
  g_test_skip ("flock() is Unix-only");
#endif
}

/* A directory the user may write and search but not read: bind() works
 * there, so listening must too (as the other user, in a subprocess) */
static void
test_write_only_directory (void)
{
#ifdef G_OS_UNIX
  if (g_test_subprocess ())
    {
      g_autoptr(GError) error = NULL;
      g_autofree char *path = g_build_filename (g_getenv ("LSOCK_TEST_DIR"), "sock", NULL);
      LsockName *name;
      LsockListener *listener;
      LsockStream *client;

      g_assert_no_errno (setresgid (OTHER_UID, OTHER_UID, OTHER_UID));
      g_assert_no_errno (setresuid (OTHER_UID, OTHER_UID, OTHER_UID));
      name = lsock_name_new_path (path, &error);
      g_assert_no_error (error);
      listener = lsock_listener_new (name, &error);
      g_assert_no_error (error);
      client = lsock_stream_connect (name, NULL, &error);
      g_assert_no_error (error);
      g_assert_finalize_object (client);
      g_assert_finalize_object (listener);
      /* Reclaimed */
      g_assert_cmpint (access (path, F_OK), !=, 0);
      g_assert_finalize_object (name);
      return;
    }

  if (skip_unless_root ())
    return;
  {
    const char *parent = lsock_test_tmp_dir ();
    g_autofree char *dir = g_build_filename (parent, "write-only", NULL);

    g_assert_no_errno (chmod (parent, 0755));
    g_assert_no_errno (mkdir (dir, 0333));
    g_assert_no_errno (chown (dir, OTHER_UID, OTHER_UID));
    g_setenv ("LSOCK_TEST_DIR", dir, TRUE);
    g_test_trap_subprocess (NULL, 30 * G_USEC_PER_SEC, G_TEST_SUBPROCESS_INHERIT_STDERR);
    g_test_trap_assert_passed ();
  }
#else
  g_test_skip ("Directory modes are Unix-only");
#endif
}


#ifdef G_OS_UNIX
/* Runs a program (as the other user, or as us) to its end with @input on
 * its stdin, iterating the default main context meanwhile (where a
 * listener may be serving it); returns its exit status. The input comes
 * from a file, not a pipe: a program that fails may exit before it reads
 * its input, and a write to its pipe would then raise SIGPIPE here. */
static int
run_to_end (gboolean     as_other,
            const char  *input,
            char       **out_stderr,
            const char  *first,
            ...)
{
  g_autoptr(GPtrArray) argv = g_ptr_array_new ();
  g_autoptr(GSubprocess) process = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GAsyncResult) result = NULL;
  g_autofree char *out = NULL;
  g_autofree char *input_path = NULL;
  static guint n_inputs;
  const char *arg;
  va_list ap;

  input_path = g_strdup_printf ("%s/input-%u", readable_dir (), ++n_inputs);
  g_assert_true (g_file_set_contents (input_path, input, -1, &error));
  g_assert_no_error (error);
  g_assert_no_errno (chmod (input_path, 0644));

  va_start (ap, first);
  for (arg = first; arg != NULL; arg = va_arg (ap, const char *))
    g_ptr_array_add (argv, (char *) arg);
  va_end (ap);
  g_ptr_array_add (argv, NULL);

  process = spawn (as_other, G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE,
                   input_path, (const char * const *) argv->pdata);
  g_subprocess_communicate_utf8_async (process, NULL, NULL, lsock_test_store_result, &result);
  lsock_test_wait_until (result);
  g_assert_true (g_subprocess_communicate_utf8_finish (process, result, &out, out_stderr, &error));
  g_assert_no_error (error);
  g_assert_no_errno (g_unlink (input_path));
  g_test_message ("%s: exit %d, stderr: %s", first, g_subprocess_get_exit_status (process),
                  *out_stderr);
  return g_subprocess_get_exit_status (process);
}

#endif

static void
assert_names (const GError *error,
              LsockName    *name)
{
  g_autofree char *shown = lsock_name_to_string (name);

  g_assert_nonnull (error);
  if (strstr (error->message, shown) == NULL)
    g_error ("“%s” does not name “%s”", error->message, shown);
}

/* Another user took our name first (the default generic name on Linux is
 * an abstract one: anyone may bind it; a path in a directory others can
 * write, the same): we cannot listen, and our clients refuse to talk to
 * the squatter, who gets nothing. LSOCK_ACCESS_EVERYONE talks to it. */
static void
test_squatter (gconstpointer data)
{
#ifdef G_OS_UNIX
  gboolean abstract = GPOINTER_TO_INT (data);
  g_autoptr(GError) error = NULL;
  g_autofree char *attacker = NULL;
  g_autofree char *tool = NULL;
  g_autofree char *address = NULL;
  g_autofree char *err = NULL;
  LsockName *name;
  LsockStream *stream;
  Other other = { 0 };

  if (skip_unless_root ())
    return;
  attacker = other_program ("LSOCK_TEST_ATTACKER");
  if (attacker == NULL)
    return;
  tool = g_strdup (g_getenv ("LSOCK_TOOL"));

  if (abstract)
    name = lsock_test_namespaced_name ();
  else
    {
      g_autofree char *dir = shared_dir (01777);
      g_autofree char *path = g_build_filename (dir, "sock", NULL);

      name = lsock_name_new_path (path, &error);
      g_assert_no_error (error);
    }
  address = lsock_name_to_string (name);
  other_start (&other, attacker, "squat", address, NULL);
  other_wait_ready (&other, "ready");

  /* We cannot listen there... */
  g_assert_null (lsock_listener_new (name, &error));
  g_assert_true (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_ADDRESS_IN_USE) ||
                 g_error_matches (error, G_IO_ERROR, G_IO_ERROR_EXISTS));
  g_clear_error (&error);
  /* (A socket file is probed, to tell a live one from a stale one: the
   * squatter saw that connection, which sent nothing) */
  if (!abstract)
    other_wait_ready (&other, "got 0");

  /* ... and our clients do not talk to the squatter, sync or async */
  lsock_test_assert_connect_fails (name, G_IO_ERROR_PERMISSION_DENIED, NULL);
  lsock_test_assert_connect_fails (name, G_IO_ERROR_PERMISSION_DENIED, "another user");
  for (int i = 0; i < 4; i++)
    other_wait_ready (&other, "got 0");

  g_assert_null (lsock_stream_connect_full (name, LSOCK_ACCESS_USER, 5000, NULL, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_PERMISSION_DENIED);
  g_clear_error (&error);
  other_wait_ready (&other, "got 0");

  /* Unless we want to */
  stream = lsock_stream_connect_full (name, LSOCK_ACCESS_EVERYONE, 0, NULL, &error);
  g_assert_no_error (error);
  {
    g_autoptr(GCredentials) credentials = lsock_stream_get_peer_credentials (stream, &error);

    g_assert_no_error (error);
    g_assert_cmpuint (g_credentials_get_unix_user (credentials, NULL), ==, OTHER_UID);
  }
  g_assert_true (g_output_stream_write_all (g_io_stream_get_output_stream (G_IO_STREAM (stream)),
                                            "secret", 6, NULL, NULL, &error));
  g_assert_no_error (error);
  lsock_test_close_and_finalize_stream (&stream);
  other_wait_ready (&other, "got 6");

  /* The tool: refuses, says why, exits 1; --access=everyone talks */
  if (tool != NULL)
    {
      g_assert_cmpint (run_to_end (FALSE, "secret", &err, tool, "connect", address, NULL), ==, 1);
      g_assert_nonnull (strstr (err, "another user"));
      g_assert_nonnull (strstr (err, "--access=everyone"));
      g_clear_pointer (&err, g_free);
      other_wait_ready (&other, "got 0");

      g_assert_cmpint (run_to_end (FALSE, "secret", &err, tool, "connect", "--access=everyone",
                                   address, NULL), ==, 0);
      g_clear_pointer (&err, g_free);
      other_wait_ready (&other, "got 6");
    }

  other_stop (&other);
  g_assert_finalize_object (name);
#else
  g_test_skip ("Unix sockets here");
#endif
}

/* A client of another user may reach a root service with the default
 * check (root is trusted as the system), and sees root as its peer */
static void
test_client_trusts_root (void)
{
#ifdef G_OS_UNIX
  if (g_test_subprocess ())
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(LsockName) name = lsock_name_parse (g_getenv ("LSOCK_TEST_NAME"), &error);
      LsockStream *stream;

      g_assert_no_error (error);
      g_assert_no_errno (setresgid (OTHER_UID, OTHER_UID, OTHER_UID));
      g_assert_no_errno (setresuid (OTHER_UID, OTHER_UID, OTHER_UID));
      stream = lsock_stream_connect (name, NULL, &error);
      g_assert_no_error (error);
      g_assert_true (g_output_stream_write_all (g_io_stream_get_output_stream (G_IO_STREAM (stream)),
                                                "hi", 2, NULL, NULL, &error));
      g_assert_no_error (error);
      g_assert_finalize_object (stream);
      return;
    }

  if (skip_unless_root ())
    return;
  {
    g_autoptr(GError) error = NULL;
    LsockName *name = lsock_test_namespaced_name ();
    g_autofree char *shown = lsock_name_to_string (name);
    LsockListener *listener = lsock_listener_new_full (name, LSOCK_ACCESS_EVERYONE, NULL, &error);
    LsockStream *server;
    char buf[2];

    g_assert_no_error (error);
    g_setenv ("LSOCK_TEST_NAME", shown, TRUE);
    g_test_trap_subprocess (NULL, 30 * G_USEC_PER_SEC, G_TEST_SUBPROCESS_INHERIT_STDERR);
    g_test_trap_assert_passed ();

    /* Queued while we did not accept: it is there */
    server = lsock_listener_accept (listener, NULL, &error);
    g_assert_no_error (error);
    g_assert_true (g_input_stream_read_all (g_io_stream_get_input_stream (G_IO_STREAM (server)),
                                            buf, 2, NULL, NULL, &error));
    g_assert_no_error (error);
    g_assert_cmpmem (buf, 2, "hi", 2);
    g_assert_finalize_object (server);
    g_assert_finalize_object (listener);
    g_assert_finalize_object (name);
  }
#else
  g_test_skip ("Unix uids");
#endif
}

#ifdef G_OS_UNIX
#define N_FLOOD 500
/* What the listener may take in one dispatch (lsock-listener.c) */
#define MAX_PER_DISPATCH 64

typedef struct
{
  Other   *flood;
  guint    n_rejected;
  guint    n_rejected_at_timer;
  int      closed_at_timer;
  gint64   timer_due;
  gint64   timer_late_us;
  gboolean timer_fired;
  gboolean other_uids_only;
} Flood;

static void
flood_rejected_cb (LsockListener *listener,
                   GCredentials  *credentials,
                   Flood         *flood)
{
  flood->n_rejected++;
  if (credentials == NULL || g_credentials_get_unix_user (credentials, NULL) != OTHER_UID)
    flood->other_uids_only = FALSE;
}

static int
flood_count_closed (Other *other)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *line = NULL;
  int closed = -1;

  other_say (other, "count");
  line = g_data_input_stream_read_line_utf8 (other->out, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_nonnull (line);
  g_assert_cmpint (sscanf (line, "closed %d", &closed), ==, 1);
  return closed;
}

/* A timer on the listener's context, due as soon as the flood is queued */
static gboolean
flood_timer_cb (gpointer user_data)
{
  Flood *flood = user_data;

  flood->timer_late_us = g_get_monotonic_time () - flood->timer_due;
  /* The flooder sees every close we have made, at once */
  flood->closed_at_timer = flood_count_closed (flood->flood);
  flood->n_rejected_at_timer = flood->n_rejected;
  flood->timer_fired = TRUE;
  return G_SOURCE_REMOVE;
}

static void
flood_incoming_cb (LsockListener *listener,
                   LsockStream   *stream,
                   LsockStream  **out)
{
  g_assert_null (*out);
  *out = g_object_ref (stream);
}
#endif

/* Another user queues hundreds of connections to our abstract name (no
 * file mode keeps them out): each is refused and closed, but no more of
 * them per dispatch than of admitted peers, so a timer on the same context
 * runs on time; each is reported by peer-rejected with its credentials */
static void
test_refused_flood (gconstpointer data)
{
#ifdef G_OS_UNIX
  gboolean incoming = GPOINTER_TO_INT (data);
  g_autoptr(GError) error = NULL;
  g_autofree char *attacker = NULL;
  g_autofree char *address = NULL;
  g_autofree char *count = g_strdup_printf ("%d", N_FLOOD);
  g_autoptr(GAsyncResult) result = NULL;
  LsockName *name;
  LsockListener *listener;
  LsockStream *mine, *accepted = NULL;
  Other other = { 0 };
  Flood flood = { &other, 0, 0, -1, 0, 0, FALSE, TRUE };

  if (skip_unless_root ())
    return;
  attacker = other_program ("LSOCK_TEST_ATTACKER");
  if (attacker == NULL)
    return;

  name = lsock_test_namespaced_name ();
  address = lsock_name_to_string (name);
  listener = g_initable_new (LSOCK_TYPE_LISTENER, NULL, &error,
                             "name", name, "backlog", 2 * N_FLOOD, NULL);
  g_assert_no_error (error);
  g_signal_connect (listener, "peer-rejected", G_CALLBACK (flood_rejected_cb), &flood);

  other_start (&other, attacker, "flood", address, count, NULL);
  other_wait_ready (&other, "ready");
  g_assert_cmpint (flood_count_closed (&other), ==, 0);
  /* Ours, queued behind the flood */
  mine = lsock_stream_connect (name, NULL, &error);
  g_assert_no_error (error);

  if (incoming)
    {
      g_signal_connect (listener, "incoming", G_CALLBACK (flood_incoming_cb), &accepted);
      lsock_listener_start (listener);
    }
  else
    lsock_listener_accept_async (listener, NULL, lsock_test_store_result, &result);
  flood.timer_due = g_get_monotonic_time ();
  g_timeout_add (0, flood_timer_cb, &flood);

  lsock_test_wait_until (flood.timer_fired);
  g_test_message ("the timer ran %" G_GINT64_FORMAT " µs late, after %d refused peers",
                  flood.timer_late_us, flood.closed_at_timer);
  /* One dispatch at most went by, with at most its budget of peers */
  g_assert_cmpint (flood.closed_at_timer, <=, MAX_PER_DISPATCH);
  g_assert_cmpuint (flood.n_rejected_at_timer, ==, (guint) flood.closed_at_timer);

  /* All of them go, in the end; then ours is accepted */
  if (incoming)
    lsock_test_wait_until (accepted != NULL);
  else
    {
      lsock_test_wait_until (result != NULL);
      accepted = lsock_listener_accept_finish (listener, result, &error);
      g_assert_no_error (error);
      g_clear_object (&result);
    }
  g_assert_cmpuint (flood.n_rejected, ==, N_FLOOD);
  g_assert_true (flood.other_uids_only);
  g_assert_cmpint (flood_count_closed (&other), ==, N_FLOOD);
  {
    g_autoptr(GCredentials) credentials = lsock_stream_get_peer_credentials (accepted, &error);

    g_assert_no_error (error);
    g_assert_cmpuint (g_credentials_get_unix_user (credentials, NULL), ==, getuid ());
  }

  other_stop (&other);
  lsock_test_close_and_finalize_stream (&accepted);
  lsock_test_close_and_finalize_stream (&mine);
  lsock_test_close_and_finalize_listener (&listener);
  g_assert_finalize_object (name);
#else
  g_test_skip ("Unix uids");
#endif
}

/* The tool as a client of another user: a listener that refuses it closes
 * the connection at once; `lsock connect` says so and fails, and
 * `lsock listen --verbose` logs the refused peer */
static void
test_tool_refused (void)
{
#ifdef G_OS_UNIX
  g_autoptr(GError) error = NULL;
  g_autofree char *tool = NULL;
  g_autofree char *address = NULL;
  g_autofree char *err = NULL;
  LsockName *name;
  LsockListener *listener;
  Flood flood = { NULL, 0, 0, -1, 0, 0, FALSE, TRUE };

  if (skip_unless_root ())
    return;
  tool = other_program ("LSOCK_TOOL");
  if (tool == NULL)
    return;

  name = lsock_test_namespaced_name ();
  address = lsock_name_to_string (name);
  listener = lsock_listener_new (name, &error);
  g_assert_no_error (error);
  g_signal_connect (listener, "peer-rejected", G_CALLBACK (flood_rejected_cb), &flood);
  lsock_listener_start (listener);

  /* Its check of us passes (we are root): ours refuses it */
  g_assert_cmpint (run_to_end (TRUE, "hello", &err, tool, "connect", address, NULL), ==, 1);
  g_assert_nonnull (strstr (err, "closed the connection at once"));
  g_assert_cmpuint (flood.n_rejected, ==, 1);
  g_assert_true (flood.other_uids_only);
  g_clear_pointer (&err, g_free);
  lsock_test_close_and_finalize_listener (&listener);
  g_assert_finalize_object (name);

  /* lsock listen --verbose, refusing the other user's client */
  {
    g_autofree char *attacker = other_program ("LSOCK_TEST_ATTACKER");
    const char *argv[] = { tool, "listen", "--echo", "--verbose", NULL, NULL };
    g_autoptr(GSubprocess) listen = NULL;
    g_autoptr(GDataInputStream) listen_err = NULL;
    gboolean logged = FALSE;
    Other other = { 0 };

    if (attacker == NULL)
      return;
    name = lsock_test_namespaced_name ();
    g_clear_pointer (&address, g_free);
    address = lsock_name_to_string (name);
    argv[4] = address;
    listen = spawn (FALSE, G_SUBPROCESS_FLAGS_STDERR_PIPE, NULL, argv);
    listen_err = g_data_input_stream_new (g_subprocess_get_stderr_pipe (listen));
    /* "Listening on …" first: then it is there */
    {
      g_autofree char *line = g_data_input_stream_read_line_utf8 (listen_err, NULL, NULL, &error);

      g_assert_no_error (error);
      g_assert_nonnull (line);
      g_assert_nonnull (strstr (line, address));
    }
    other_start (&other, attacker, "flood", address, "1", NULL);
    other_wait_ready (&other, "ready");
    while (!logged)
      {
        g_autofree char *line = g_data_input_stream_read_line_utf8 (listen_err, NULL, NULL, &error);

        g_assert_no_error (error);
        g_assert_nonnull (line);
        g_test_message ("lsock listen: %s", line);
        logged = strstr (line, "Refused a connection from another user") != NULL &&
                 strstr (line, "uid 65534") != NULL;
      }
    other_stop (&other);
    g_subprocess_send_signal (listen, SIGTERM);
    g_assert_true (g_subprocess_wait (listen, NULL, &error));
    g_assert_no_error (error);
    g_assert_finalize_object (name);
  }
#else
  g_test_skip ("Unix uids");
#endif
}

/* A listener that never accepts cannot hang a client that set a timeout:
 * the backlog fills, and the next connect ends in TIMED_OUT, sync, async
 * and in the tool */
static void
test_connect_timeout (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) queued = g_ptr_array_new_with_free_func (g_object_unref);
  g_autoptr(GAsyncResult) result = NULL;
  LsockName *name = lsock_test_namespaced_name ();
  LsockListener *listener = g_initable_new (LSOCK_TYPE_LISTENER, NULL, &error,
                                            "name", name, "backlog", 1, NULL);
  LsockStream *stream;

  g_assert_no_error (error);
  /* Fill the backlog (the kernel admits backlog + 1, or so) */
  for (;;)
    {
      stream = lsock_stream_connect_full (name, LSOCK_ACCESS_USER, 100, NULL, &error);
      if (stream == NULL)
        break;
      g_ptr_array_add (queued, stream);
      g_assert_cmpuint (queued->len, <, 16);
    }
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
  assert_names (error, name);
  g_clear_error (&error);

  lsock_stream_connect_full_async (name, LSOCK_ACCESS_USER, 100, NULL,
                                   lsock_test_store_result, &result);
  lsock_test_wait_until (result);
  g_assert_null (lsock_stream_connect_full_finish (result, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
  g_clear_error (&error);
  g_clear_object (&result);

#ifdef G_OS_UNIX
  if (g_getenv ("LSOCK_TOOL") != NULL)
    {
      g_autofree char *address = lsock_name_to_string (name);
      g_autofree char *err = NULL;

      g_assert_cmpint (run_to_end (FALSE, "", &err, g_getenv ("LSOCK_TOOL"), "connect",
                                   "--timeout=100", address, NULL), ==, 1);
      g_assert_nonnull (strstr (err, "timed out"));
    }
#endif

  /* Once the listener accepts, there is room again */
  stream = lsock_listener_accept (listener, NULL, &error);
  g_assert_no_error (error);
  g_object_unref (stream);
  g_ptr_array_set_size (queued, 0);
  lsock_test_close_and_finalize_listener (&listener);
  g_assert_finalize_object (name);
}

/* The peer as a pidfd: it names the process for good (not a pid that may
 * be reused), and is close-on-exec */
static void
test_peer_pidfd (void)
{
#ifdef G_OS_UNIX
  g_autoptr(GError) error = NULL;
  LsockTestPair pair;
  int pidfd;

  lsock_test_pair_open (&pair, lsock_test_namespaced_name ());
  pidfd = lsock_stream_get_peer_pidfd (pair.server, &error);
  if (pidfd < 0)
    {
      g_assert_error (error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED);
      g_test_skip (error->message);
      lsock_test_pair_close (&pair);
      return;
    }
  g_assert_no_error (error);
  g_assert_cmpint (fcntl (pidfd, F_GETFD) & FD_CLOEXEC, !=, 0);
  {
    g_autofree char *fdinfo = g_strdup_printf ("/proc/self/fdinfo/%d", pidfd);
    g_autofree char *contents = NULL;
    g_autofree char *expected = g_strdup_printf ("\nPid:\t%d\n", (int) getpid ());

    g_assert_true (g_file_get_contents (fdinfo, &contents, NULL, &error));
    g_assert_no_error (error);
    g_assert_nonnull (strstr (contents, expected));
  }
  close (pidfd);

  /* Each call gives a new fd; the client side works the same */
  pidfd = lsock_stream_get_peer_pidfd (pair.client, &error);
  g_assert_no_error (error);
  g_assert_cmpint (pidfd, >=, 0);
  close (pidfd);

  /* Closed: an error, no fd */
  g_assert_true (g_io_stream_close (G_IO_STREAM (pair.client), NULL, NULL));
  g_assert_cmpint (lsock_stream_get_peer_pidfd (pair.client, &error), ==, -1);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CLOSED);
  lsock_test_pair_close (&pair);
#else
  g_test_skip ("pidfds are Linux-only");
#endif
}

/* Where names resolve in a private directory (macOS/BSD generic names),
 * the directory is checked again at bind and connect: one that became a
 * symbolic link, another user's, or open to others is refused */
static void
test_private_dir_recheck (void)
{
#ifdef G_OS_UNIX
  g_autoptr(GError) error = NULL;
  g_autofree char *parent = g_strdup (lsock_test_tmp_dir ());
  g_autofree char *dir = g_build_filename (parent, "private", NULL);
  g_autofree char *moved = g_build_filename (parent, "moved", NULL);
  g_autofree char *path = g_build_filename (dir, "sock", NULL);
  LsockName *name;
  LsockListener *listener;
  LsockStream *stream;

  g_assert_no_errno (mkdir (dir, 0700));
  name = _lsock_name_new_private_path_for_testing (path);
  listener = lsock_listener_new (name, &error);
  g_assert_no_error (error);
  stream = lsock_stream_connect (name, NULL, &error);
  g_assert_no_error (error);
  g_assert_finalize_object (stream);

  for (int what = 0; what < 3; what++)
    {
      const char *expect[] = { "0700", "another user", "symbolic link" };

      if (what == 0)
        g_assert_no_errno (chmod (dir, 0755));
      else if (what == 1)
        {
          if (geteuid () != 0)
            continue;
          g_assert_no_errno (chmod (dir, 0700));
          g_assert_no_errno (chown (dir, OTHER_UID, OTHER_UID));
        }
      else
        {
          g_assert_no_errno (chown (dir, geteuid (), getegid ()));
          g_assert_no_errno (rename (dir, moved));
          g_assert_no_errno (symlink (moved, dir));
        }

      lsock_test_assert_connect_fails (name, G_IO_ERROR_PERMISSION_DENIED, expect[what]);
    }

  lsock_test_close_and_finalize_listener (&listener);
  /* Nor can one listen there */
  listener = lsock_listener_new (name, &error);
  g_assert_null (listener);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_PERMISSION_DENIED);
  g_assert_finalize_object (name);
#else
  g_test_skip ("No private directories on Windows");
#endif
}

int
main (int   argc,
      char *argv[])
{
  int ret;

  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);

  g_test_add_func ("/lsock/security/path/symlink-swap", test_symlink_swap);
  g_test_add_func ("/lsock/security/path/swap-before-reclaim", test_swap_before_reclaim);
  g_test_add_func ("/lsock/security/path/lock-held-by-another-user", test_lock_held_by_another_user);
  g_test_add_func ("/lsock/security/path/write-only-directory", test_write_only_directory);
  g_test_add_data_func ("/lsock/security/squatter/abstract", GINT_TO_POINTER (TRUE), test_squatter);
  g_test_add_data_func ("/lsock/security/squatter/path", GINT_TO_POINTER (FALSE), test_squatter);
  g_test_add_func ("/lsock/security/client-trusts-root", test_client_trusts_root);
  g_test_add_data_func ("/lsock/security/refused-flood/incoming", GINT_TO_POINTER (TRUE),
                        test_refused_flood);
  g_test_add_data_func ("/lsock/security/refused-flood/accept-async", GINT_TO_POINTER (FALSE),
                        test_refused_flood);
  g_test_add_func ("/lsock/security/tool-refused", test_tool_refused);
  g_test_add_func ("/lsock/security/connect-timeout", test_connect_timeout);
  g_test_add_func ("/lsock/security/peer-pidfd", test_peer_pidfd);
  g_test_add_func ("/lsock/security/private-dir-recheck", test_private_dir_recheck);

  ret = g_test_run ();
  lsock_test_cleanup_dirs ();
  return ret;
}
