/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

/* "Safe by default", tried from the attacker's side: another local user
 * who can write the directory of our socket file, or who holds a lock we
 * would wait for. These tests need root (to be root and the other user,
 * 65534, through setpriv) and skip otherwise. */

#include "lsock-test-util.h"
#ifdef G_OS_UNIX
# include "lsock-unix-socket-file-private.h"
#endif

#include <string.h>
#ifdef G_OS_UNIX
# include <errno.h>
# include <fcntl.h>
# include <glib/gstdio.h>
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

/* A program run as the other user, with a pipe on its stdin (closing it
 * ends the program) and one on its stdout */
typedef struct
{
  GSubprocess      *process;
  GDataInputStream *out;
} Other;

static void
other_start (Other       *other,
             const char  *first,
             ...)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) argv = g_ptr_array_new ();
  const char *arg;
  va_list ap;

  g_ptr_array_add (argv, (char *) "setpriv");
  g_ptr_array_add (argv, (char *) "--reuid=65534");
  g_ptr_array_add (argv, (char *) "--regid=65534");
  g_ptr_array_add (argv, (char *) "--clear-groups");
  va_start (ap, first);
  for (arg = first; arg != NULL; arg = va_arg (ap, const char *))
    g_ptr_array_add (argv, (char *) arg);
  va_end (ap);
  g_ptr_array_add (argv, NULL);

  other->process = g_subprocess_newv ((const char * const *) argv->pdata,
                                      G_SUBPROCESS_FLAGS_STDIN_PIPE | G_SUBPROCESS_FLAGS_STDOUT_PIPE,
                                      &error);
  g_assert_no_error (error);
  other->out = g_data_input_stream_new (g_subprocess_get_stdout_pipe (other->process));
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
  const char *attacker = g_getenv ("LSOCK_TEST_ATTACKER");
  g_autofree char *dir = NULL;
  g_autofree char *victim = NULL;
  guint n_listened = 0, n_refused = 0;
  Other other = { 0 };

  if (skip_unless_root ())
    return;
  if (attacker == NULL)
    {
      g_test_skip ("LSOCK_TEST_ATTACKER is not set");
      return;
    }

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

  ret = g_test_run ();
  lsock_test_cleanup_dirs ();
  return ret;
}
