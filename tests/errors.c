/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

/* Every row of the error table in DESIGN.md: the G_IO_ERROR code, and a
 * message that names the socket (lsock_name_to_string()). */

#include <errno.h>
#include <string.h>

#include <glib/gstdio.h>

#include "lsock-test-util.h"

#ifndef G_OS_WIN32
# include <grp.h>
# include <signal.h>
# include <sys/socket.h>
# include <sys/stat.h>
# include <sys/types.h>
# include <sys/un.h>
# include <unistd.h>
#endif

/* The uid and gid the subprocesses of the permission tests drop to */
#define OTHER_ID 65534

#define CHILD_NAME_ENV "LSOCK_TEST_CHILD_NAME"

static gboolean
have_namespaced (void)
{
  return lsock_name_type_support_query () != LSOCK_NAME_TYPE_SUPPORT_ONLY_PATHS;
}

static gboolean
have_paths (void)
{
  return lsock_name_type_support_query () != LSOCK_NAME_TYPE_SUPPORT_ONLY_NAMESPACED;
}

static gboolean
skip_unless_paths (void)
{
  if (have_paths ())
    return FALSE;
  g_test_skip ("Socket files are not supported on this platform");
  return TRUE;
}

static gboolean
skip_unless_namespaced (void)
{
  if (have_namespaced ())
    return FALSE;
  g_test_skip ("Namespaced names are not supported on this platform");
  return TRUE;
}

/* Used only off Unix, where the raw-socket tests cannot run */
G_GNUC_UNUSED static gboolean
skip_unless_unix (void)
{
#ifdef G_OS_WIN32
  g_test_skip ("Needs Unix sockets");
  return TRUE;
#else
  return FALSE;
#endif
}

#ifndef G_OS_WIN32
static gboolean
is_root (void)
{
  return geteuid () == 0;
}
#endif

/* A name of the kind this platform has, preferring namespaced names */
static LsockName *
any_name (void)
{
  return have_namespaced () ? lsock_test_namespaced_name () : lsock_test_path_name ();
}

/* The error is @code in G_IO_ERROR and its message names @name */
#define assert_error_names(err, code, name)                                   \
  G_STMT_START {                                                              \
    g_autofree char *display__ = lsock_name_to_string (name);                 \
    g_assert_error ((err), G_IO_ERROR, (code));                               \
    if (strstr ((err)->message, display__) == NULL)                           \
      g_test_message ("“%s” does not name “%s”", (err)->message, display__);  \
    g_assert_nonnull (strstr ((err)->message, display__));                    \
  } G_STMT_END

/* The error message contains @string */
#define assert_message_contains(err, string)                                  \
  G_STMT_START {                                                              \
    if (strstr ((err)->message, (string)) == NULL)                            \
      g_test_message ("“%s” does not contain “%s”", (err)->message, (string)); \
    g_assert_nonnull (strstr ((err)->message, (string)));                     \
  } G_STMT_END

static gssize
read_sync (LsockStream  *stream,
           void         *buffer,
           gsize         count,
           GCancellable *cancellable,
           GError      **error)
{
  return g_input_stream_read (g_io_stream_get_input_stream (G_IO_STREAM (stream)),
                              buffer, count, cancellable, error);
}

static void
write_all_sync (LsockStream *stream,
                const void  *buffer,
                gsize        count)
{
  GError *error = NULL;
  gsize written = 0;

  g_output_stream_write_all (g_io_stream_get_output_stream (G_IO_STREAM (stream)),
                             buffer, count, &written, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (written, ==, count);
}

static void
read_exactly (LsockStream *stream,
              void        *buffer,
              gsize        count)
{
  GError *error = NULL;
  gsize n_read = 0;

  g_input_stream_read_all (g_io_stream_get_input_stream (G_IO_STREAM (stream)),
                           buffer, count, &n_read, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (n_read, ==, count);
}

#ifndef G_OS_WIN32
/* A socket file that nobody listens on: bound, never listening, closed */
static void
make_stale_socket (const char *path)
{
  struct sockaddr_un addr = { .sun_family = AF_UNIX };
  int fd;

  g_assert_cmpuint (strlen (path), <, sizeof addr.sun_path);
  strcpy (addr.sun_path, path);
  fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  g_assert_cmpint (fd, >=, 0);
  g_assert_cmpint (bind (fd, (struct sockaddr *) &addr, sizeof addr), ==, 0);
  g_assert_cmpint (close (fd), ==, 0);
}

/* In a subprocess running as root: become another user */
static void
become_other_user (void)
{
  if (geteuid () != 0)
    return;
  g_assert_cmpint (setgroups (0, NULL), ==, 0);
  g_assert_cmpint (setgid (OTHER_ID), ==, 0);
  g_assert_cmpint (setuid (OTHER_ID), ==, 0);
  g_assert_cmpint (geteuid (), ==, OTHER_ID);
  g_assert_cmpint (getegid (), ==, OTHER_ID);
}
#endif

#ifndef G_OS_WIN32
/* Runs the current test again in a subprocess (which takes the
 * g_test_subprocess() branch) and checks that it passed. The subprocess
 * finds the name in the environment (set_child_name(): call it before any
 * thread starts, setenv() is not thread-safe). */
static void
run_child (void)
{
  g_test_trap_subprocess (NULL, 60 * G_USEC_PER_SEC, G_TEST_SUBPROCESS_INHERIT_STDERR);
  g_test_trap_assert_passed ();
}

static LsockName *
child_name (void)
{
  GError *error = NULL;
  const char *s = g_getenv (CHILD_NAME_ENV);
  LsockName *name;

  g_assert_nonnull (s);
  name = lsock_name_parse (s, &error);
  g_assert_no_error (error);
  return name;
}

static void
set_child_name (LsockName *name)
{
  g_autofree char *s = lsock_name_to_string (name);

  g_setenv (CHILD_NAME_ENV, s, TRUE);
}
#endif

/* ------------------------------------------------------------------------ */
/* INVALID_ARGUMENT */

static void
test_invalid_empty (void)
{
  GError *error = NULL;

  g_assert_null (lsock_name_new_path ("", &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
  assert_message_contains (error, "“”");
  g_clear_error (&error);

  g_assert_null (lsock_name_new_namespaced ("", &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
  assert_message_contains (error, "“”");
  g_clear_error (&error);

  g_assert_null (lsock_name_new_generic ("", &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
  assert_message_contains (error, "“”");
  g_clear_error (&error);

  g_assert_null (lsock_name_parse ("", &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
  assert_message_contains (error, "“”");
  g_clear_error (&error);

  g_assert_null (lsock_name_parse ("@", &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
  assert_message_contains (error, "“@”");
  g_clear_error (&error);
}

static void
test_invalid_path_too_long (void)
{
  GError *error = NULL;
  g_autofree char *path = NULL;
  g_autoptr(LsockName) ok = NULL;

  if (skip_unless_paths ())
    return;

  /* 108 bytes does not fit sun_path with its NUL on Linux; 104 on BSD */
#ifdef __linux__
  path = g_strnfill (108, 'p');
#else
  path = g_strnfill (104, 'p');
#endif
  path[0] = '/';

  g_assert_null (lsock_name_new_path (path, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
  assert_message_contains (error, path);
  g_clear_error (&error);

  g_assert_null (lsock_name_parse (path, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
  assert_message_contains (error, path);
  g_clear_error (&error);

  /* One byte less fits */
  path[strlen (path) - 1] = '\0';
  ok = lsock_name_new_path (path, &error);
  g_assert_no_error (error);
  g_assert_nonnull (ok);
  g_assert_finalize_object (g_steal_pointer (&ok));
}

static void
test_invalid_namespaced_too_long (void)
{
  GError *error = NULL;
  g_autofree char *name = NULL;
  g_autofree char *at_name = NULL;
  g_autoptr(LsockName) ok = NULL;

  if (skip_unless_namespaced ())
    return;
#ifndef __linux__
  g_test_skip ("The 107-byte limit is Linux's");
  return;
#endif

  name = g_strnfill (108, 'n');
  g_assert_null (lsock_name_new_namespaced (name, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
  assert_message_contains (error, name);
  g_clear_error (&error);

  at_name = g_strconcat ("@", name, NULL);
  g_assert_null (lsock_name_parse (at_name, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
  assert_message_contains (error, name);
  g_clear_error (&error);

  g_assert_null (lsock_name_new_generic (name, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
  assert_message_contains (error, name);
  g_clear_error (&error);

  /* 107 bytes fit */
  name[107] = '\0';
  ok = lsock_name_new_namespaced (name, &error);
  g_assert_no_error (error);
  g_assert_finalize_object (g_steal_pointer (&ok));
}

static void
test_invalid_utf8 (void)
{
  const char *bad = "bad\xff\xfename";
  g_autofree char *shown = g_utf8_make_valid (bad, -1);
  g_autofree char *at_bad = g_strconcat ("@", bad, NULL);
  GError *error = NULL;

  if (skip_unless_namespaced ())
    return;

  g_assert_null (lsock_name_new_namespaced (bad, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
  g_assert_true (g_utf8_validate (error->message, -1, NULL));
  assert_message_contains (error, shown);
  g_clear_error (&error);

  g_assert_null (lsock_name_parse (at_bad, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
  g_assert_true (g_utf8_validate (error->message, -1, NULL));
  assert_message_contains (error, shown);
  g_clear_error (&error);

  g_assert_null (lsock_name_new_generic (bad, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
  g_assert_true (g_utf8_validate (error->message, -1, NULL));
  assert_message_contains (error, shown);
  g_clear_error (&error);
}

/* ------------------------------------------------------------------------ */
/* NOT_SUPPORTED */

static void
test_not_supported (void)
{
  GError *error = NULL;

  switch (lsock_name_type_support_query ())
    {
    case LSOCK_NAME_TYPE_SUPPORT_BOTH:
#ifdef __linux__
      g_assert_cmpint (lsock_name_type_support_query (), ==, LSOCK_NAME_TYPE_SUPPORT_BOTH);
#endif
      g_test_skip ("Both kinds of names are supported on this platform");
      return;

    case LSOCK_NAME_TYPE_SUPPORT_ONLY_PATHS:
#ifdef __linux__
      g_assert_not_reached ();
#endif
      g_assert_null (lsock_name_new_namespaced ("lsock-test-unsupported", &error));
      g_assert_error (error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED);
      assert_message_contains (error, "lsock-test-unsupported");
      g_clear_error (&error);
      g_assert_null (lsock_name_parse ("@lsock-test-unsupported", &error));
      g_assert_error (error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED);
      assert_message_contains (error, "lsock-test-unsupported");
      g_clear_error (&error);
      break;

    case LSOCK_NAME_TYPE_SUPPORT_ONLY_NAMESPACED:
#ifdef __linux__
      g_assert_not_reached ();
#endif
      g_assert_null (lsock_name_new_path ("C:\\lsock-test-unsupported", &error));
      g_assert_error (error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED);
      assert_message_contains (error, "lsock-test-unsupported");
      g_clear_error (&error);
      break;

    default:
      g_assert_not_reached ();
    }
}

/* ------------------------------------------------------------------------ */
/* NOT_FOUND */

static void
assert_connect_fails (LsockName *name,
                      int        code)
{
  GError *error = NULL;
  GAsyncResult *result = NULL;
  LsockStream *stream;

  stream = lsock_stream_connect (name, NULL, &error);
  g_assert_null (stream);
  assert_error_names (error, code, name);
  g_clear_error (&error);

  lsock_stream_connect_async (name, NULL, lsock_test_store_result, &result);
  lsock_test_wait_until (result);
  stream = lsock_stream_connect_finish (result, &error);
  g_assert_null (stream);
  assert_error_names (error, code, name);
  g_clear_error (&error);
  g_clear_object (&result);
  lsock_test_drain_main_context ();
}

static void
test_not_found_path (void)
{
  LsockName *name;

  if (skip_unless_paths ())
    return;

  name = lsock_test_path_name ();
  assert_connect_fails (name, G_IO_ERROR_NOT_FOUND);
  g_assert_finalize_object (name);
}

static void
test_not_found_missing_directory (void)
{
  GError *error = NULL;
  g_autofree char *path = NULL;
  LsockName *name;

  if (skip_unless_paths ())
    return;

  path = g_build_filename (lsock_test_tmp_dir (), "missing", "sock", NULL);
  name = lsock_name_new_path (path, &error);
  g_assert_no_error (error);
  assert_connect_fails (name, G_IO_ERROR_NOT_FOUND);
  g_assert_finalize_object (name);
}

static void
test_not_found_namespaced (void)
{
  LsockName *name;

  if (skip_unless_namespaced ())
    return;

  name = lsock_test_namespaced_name ();
  assert_connect_fails (name, G_IO_ERROR_NOT_FOUND);
  g_assert_finalize_object (name);
}

/* ------------------------------------------------------------------------ */
/* CONNECTION_REFUSED */

static void
test_refused_raw_socket (void)
{
#ifndef G_OS_WIN32
  LsockName *name;

  if (skip_unless_paths ())
    return;

  name = lsock_test_path_name ();
  make_stale_socket (lsock_name_get_name (name));
  assert_connect_fails (name, G_IO_ERROR_CONNECTION_REFUSED);
  /* Connecting never removes anything */
  g_assert_true (g_file_test (lsock_name_get_name (name), G_FILE_TEST_EXISTS));
  g_assert_finalize_object (name);
#else
  skip_unless_unix ();
#endif
}

/* A file that is not a socket: still refused, but not called a socket */
static void
test_refused_not_a_socket (void)
{
#ifndef G_OS_WIN32
  GError *error = NULL;
  LsockName *name;
  LsockStream *stream;

  if (skip_unless_paths ())
    return;

  name = lsock_test_path_name ();
  g_assert_true (g_file_set_contents (lsock_name_get_name (name), "x", 1, NULL));
  stream = lsock_stream_connect (name, NULL, &error);
  g_assert_null (stream);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CONNECTION_REFUSED);
  g_assert_nonnull (strstr (error->message, "is a file that is not a socket"));
  g_assert_null (strstr (error->message, "socket file"));
  g_clear_error (&error);
  g_unlink (lsock_name_get_name (name));
  g_assert_finalize_object (name);
#else
  skip_unless_unix ();
#endif
}

static void
test_refused_no_reclaim (void)
{
  GError *error = NULL;
  LsockListener *listener;
  LsockName *name;

  if (skip_unless_paths ())
    return;

  name = lsock_test_path_name ();
  listener = lsock_listener_new (name, &error);
  g_assert_no_error (error);
  lsock_listener_set_reclaim_name (listener, FALSE);
  lsock_test_close_and_finalize_listener (&listener);

  g_assert_true (g_file_test (lsock_name_get_name (name), G_FILE_TEST_EXISTS));
  assert_connect_fails (name, G_IO_ERROR_CONNECTION_REFUSED);
  g_assert_finalize_object (name);
}

/* ------------------------------------------------------------------------ */
/* PERMISSION_DENIED */

static void
test_permission_connect_file_mode (void)
{
#ifndef G_OS_WIN32
  GError *error = NULL;
  LsockListener *listener;
  LsockName *name;
  g_autofree char *dir = NULL;

  if (g_test_subprocess ())
    {
      struct stat st;

      become_other_user ();
      name = child_name ();
      /* The directory lets us in: the file's own mode refuses */
      g_assert_cmpint (lstat (lsock_name_get_name (name), &st), ==, 0);
      g_assert_true (S_ISSOCK (st.st_mode));
      assert_connect_fails (name, G_IO_ERROR_PERMISSION_DENIED);
      g_assert_finalize_object (name);
      return;
    }

  if (skip_unless_paths ())
    return;

  name = lsock_test_path_name ();
  dir = g_path_get_dirname (lsock_name_get_name (name));
  listener = lsock_listener_new_full (name, LSOCK_ACCESS_EVERYONE, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (g_chmod (dir, 0755), ==, 0);
  g_assert_cmpint (g_chmod (lsock_name_get_name (name), 0000), ==, 0);

  set_child_name (name);
  run_child ();

  lsock_test_close_and_finalize_listener (&listener);
  g_assert_finalize_object (name);
#else
  skip_unless_unix ();
#endif
}

static void
test_permission_connect_directory_mode (void)
{
#ifndef G_OS_WIN32
  GError *error = NULL;
  LsockListener *listener;
  LsockName *name;
  g_autofree char *dir = NULL;

  if (g_test_subprocess ())
    {
      become_other_user ();
      name = child_name ();
      assert_connect_fails (name, G_IO_ERROR_PERMISSION_DENIED);
      g_assert_finalize_object (name);
      return;
    }

  if (skip_unless_paths ())
    return;

  name = lsock_test_path_name ();
  dir = g_path_get_dirname (lsock_name_get_name (name));
  listener = lsock_listener_new_full (name, LSOCK_ACCESS_EVERYONE, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (g_chmod (dir, 0000), ==, 0);

  set_child_name (name);
  run_child ();

  g_assert_cmpint (g_chmod (dir, 0700), ==, 0);
  lsock_test_close_and_finalize_listener (&listener);
  /* The listener could reach its file again to reclaim it */
  g_assert_false (g_file_test (lsock_name_get_name (name), G_FILE_TEST_EXISTS));
  g_assert_finalize_object (name);
#else
  skip_unless_unix ();
#endif
}

static void
test_permission_listen_directory (void)
{
#ifndef G_OS_WIN32
  GError *error = NULL;
  LsockListener *listener;
  LsockName *name;
  g_autofree char *dir = NULL;

  if (g_test_subprocess ())
    {
      become_other_user ();
      name = child_name ();
      listener = lsock_listener_new (name, &error);
      g_assert_null (listener);
      assert_error_names (error, G_IO_ERROR_PERMISSION_DENIED, name);
      g_clear_error (&error);
      g_assert_finalize_object (name);
      return;
    }

  if (skip_unless_paths ())
    return;

  name = lsock_test_path_name ();
  dir = g_path_get_dirname (lsock_name_get_name (name));
  /* Others may enter but not write; when not root the owner cannot write
   * either */
  g_assert_cmpint (g_chmod (dir, 0555), ==, 0);

  set_child_name (name);
  run_child ();

  g_assert_cmpint (g_chmod (dir, 0700), ==, 0);
  /* Nothing was left behind, not even a temporary name */
  {
    GDir *d = g_dir_open (dir, 0, &error);

    g_assert_no_error (error);
    g_assert_null (g_dir_read_name (d));
    g_dir_close (d);
  }
  g_assert_finalize_object (name);
#else
  skip_unless_unix ();
#endif
}

/* ------------------------------------------------------------------------ */
/* ADDRESS_IN_USE */

static void
assert_second_listener_fails (LsockName *name)
{
  GError *error = NULL;
  LsockListener *listener;
  LsockListener *second;
  LsockStream *client;
  LsockStream *server;
  gboolean is_path = lsock_name_get_kind (name) == LSOCK_NAME_KIND_PATH;
#ifndef G_OS_WIN32
  struct stat before, after;
#endif

  listener = lsock_listener_new (name, &error);
  g_assert_no_error (error);

#ifndef G_OS_WIN32
  if (is_path)
    g_assert_cmpint (lstat (lsock_name_get_name (name), &before), ==, 0);
#endif

  second = lsock_listener_new (name, &error);
  g_assert_null (second);
  assert_error_names (error, G_IO_ERROR_ADDRESS_IN_USE, name);
  g_clear_error (&error);

  second = lsock_listener_new_full (name, LSOCK_ACCESS_EVERYONE, NULL, &error);
  g_assert_null (second);
  assert_error_names (error, G_IO_ERROR_ADDRESS_IN_USE, name);
  g_clear_error (&error);

#ifndef G_OS_WIN32
  /* The live listener's socket file is the same file as before */
  if (is_path)
    {
      g_assert_cmpint (lstat (lsock_name_get_name (name), &after), ==, 0);
      g_assert_true (S_ISSOCK (after.st_mode));
      g_assert_cmpuint (before.st_dev, ==, after.st_dev);
      g_assert_cmpuint (before.st_ino, ==, after.st_ino);
    }
#endif

  /* ...and the first listener still works. For a path, each failed
   * attempt probed the live listener with a connection that it now accepts
   * and that reads EOF at once: skip those. */
  client = lsock_stream_connect (name, NULL, &error);
  g_assert_no_error (error);
  write_all_sync (client, "x", 1);
  for (guint i = 0; ; i++)
    {
      char c = 0;
      gssize n;

      g_assert_cmpuint (i, <, 3);
      server = lsock_listener_accept (listener, NULL, &error);
      g_assert_no_error (error);
      n = read_sync (server, &c, 1, NULL, &error);
      g_assert_no_error (error);
      if (n == 1)
        {
          g_assert_cmpint (c, ==, 'x');
          break;
        }
      g_assert_cmpint (n, ==, 0);
      g_assert_true (is_path);
      g_test_message ("accepted the probe of a failed listener");
      lsock_test_close_and_finalize_stream (&server);
    }

  lsock_test_close_and_finalize_stream (&client);
  lsock_test_close_and_finalize_stream (&server);
  lsock_test_close_and_finalize_listener (&listener);
  if (is_path)
    g_assert_false (g_file_test (lsock_name_get_name (name), G_FILE_TEST_EXISTS));
}

static void
test_in_use_path (void)
{
  LsockName *name;

  if (skip_unless_paths ())
    return;

  name = lsock_test_path_name ();
  assert_second_listener_fails (name);
  g_assert_finalize_object (name);
}

static void
test_in_use_namespaced (void)
{
  LsockName *name;

  if (skip_unless_namespaced ())
    return;

  name = lsock_test_namespaced_name ();
  assert_second_listener_fails (name);
  g_assert_finalize_object (name);
}

static void
test_in_use_stale_no_replace (void)
{
#ifndef G_OS_WIN32
  GError *error = NULL;
  LsockListener *listener;
  LsockName *name;
  struct stat before, after;

  if (skip_unless_paths ())
    return;

  name = lsock_test_path_name ();
  make_stale_socket (lsock_name_get_name (name));
  g_assert_cmpint (lstat (lsock_name_get_name (name), &before), ==, 0);

  listener = g_initable_new (LSOCK_TYPE_LISTENER, NULL, &error,
                             "name", name,
                             "replace-stale", FALSE,
                             NULL);
  g_assert_null (listener);
  assert_error_names (error, G_IO_ERROR_ADDRESS_IN_USE, name);
  g_clear_error (&error);

  /* The stale file is still there, untouched */
  g_assert_cmpint (lstat (lsock_name_get_name (name), &after), ==, 0);
  g_assert_true (S_ISSOCK (after.st_mode));
  g_assert_cmpuint (before.st_ino, ==, after.st_ino);

  g_assert_finalize_object (name);
#else
  skip_unless_unix ();
#endif
}

/* ------------------------------------------------------------------------ */
/* EXISTS */

typedef enum {
  NOT_SOCKET_FILE,
  NOT_SOCKET_DIRECTORY,
  NOT_SOCKET_FIFO,
} NotSocket;

static void
assert_listen_exists (NotSocket what)
{
#ifndef G_OS_WIN32
  GError *error = NULL;
  LsockListener *listener;
  LsockName *name;
  const char *path;
  struct stat before, after;
  g_autofree char *dir = NULL;

  if (skip_unless_paths ())
    return;

  name = lsock_test_path_name ();
  path = lsock_name_get_name (name);
  dir = g_path_get_dirname (path);

  switch (what)
    {
    case NOT_SOCKET_FILE:
      g_file_set_contents (path, "precious", -1, &error);
      g_assert_no_error (error);
      break;
    case NOT_SOCKET_DIRECTORY:
      g_assert_cmpint (g_mkdir (path, 0700), ==, 0);
      break;
    case NOT_SOCKET_FIFO:
      g_assert_cmpint (mkfifo (path, 0600), ==, 0);
      break;
    default:
      g_assert_not_reached ();
    }
  g_assert_cmpint (lstat (path, &before), ==, 0);

  listener = lsock_listener_new (name, &error);
  g_assert_null (listener);
  assert_error_names (error, G_IO_ERROR_EXISTS, name);
  g_clear_error (&error);

  /* Also with replace-stale off and with access for everyone */
  listener = g_initable_new (LSOCK_TYPE_LISTENER, NULL, &error,
                             "name", name,
                             "replace-stale", FALSE,
                             "access", LSOCK_ACCESS_EVERYONE,
                             NULL);
  g_assert_null (listener);
  assert_error_names (error, G_IO_ERROR_EXISTS, name);
  g_clear_error (&error);

  /* Still there, the same file, unchanged */
  g_assert_cmpint (lstat (path, &after), ==, 0);
  g_assert_cmpuint (before.st_dev, ==, after.st_dev);
  g_assert_cmpuint (before.st_ino, ==, after.st_ino);
  g_assert_cmpuint (before.st_mode, ==, after.st_mode);
  g_assert_cmpint (before.st_size, ==, after.st_size);
  if (what == NOT_SOCKET_FILE)
    {
      g_autofree char *contents = NULL;

      g_file_get_contents (path, &contents, NULL, &error);
      g_assert_no_error (error);
      g_assert_cmpstr (contents, ==, "precious");
    }
  else if (what == NOT_SOCKET_DIRECTORY)
    {
      GDir *d = g_dir_open (path, 0, &error);

      g_assert_no_error (error);
      g_assert_null (g_dir_read_name (d));
      g_dir_close (d);
    }

  /* No temporary socket was left beside it */
  {
    GDir *d = g_dir_open (dir, 0, &error);
    const char *entry;
    guint n = 0;

    g_assert_no_error (error);
    while ((entry = g_dir_read_name (d)) != NULL)
      {
        g_assert_cmpstr (entry, ==, "sock");
        n++;
      }
    g_assert_cmpuint (n, ==, 1);
    g_dir_close (d);
  }

  g_assert_finalize_object (name);
#else
  skip_unless_unix ();
#endif
}

static void
test_exists_file (void)
{
  assert_listen_exists (NOT_SOCKET_FILE);
}

static void
test_exists_directory (void)
{
  assert_listen_exists (NOT_SOCKET_DIRECTORY);
}

static void
test_exists_fifo (void)
{
  assert_listen_exists (NOT_SOCKET_FIFO);
}

/* ------------------------------------------------------------------------ */
/* TIMED_OUT */

static void
test_timed_out_read (void)
{
  GError *error = NULL;
  LsockTestPair pair = { 0 };
  char buffer[16];
  gssize n;
  gint64 start;

  lsock_test_pair_open (&pair, any_name ());
  lsock_stream_set_timeout (pair.client, 50);
  g_assert_cmpuint (lsock_stream_get_timeout (pair.client), ==, 50);

  start = g_get_monotonic_time ();
  n = read_sync (pair.client, buffer, sizeof buffer, NULL, &error);
  g_assert_cmpint (n, ==, -1);
  assert_error_names (error, G_IO_ERROR_TIMED_OUT, pair.name);
  g_clear_error (&error);
  g_assert_cmpint (g_get_monotonic_time () - start, >=, 40 * G_TIME_SPAN_MILLISECOND);

  /* Again, with a cancellable */
  {
    g_autoptr(GCancellable) cancellable = g_cancellable_new ();

    n = read_sync (pair.client, buffer, sizeof buffer, cancellable, &error);
    g_assert_cmpint (n, ==, -1);
    assert_error_names (error, G_IO_ERROR_TIMED_OUT, pair.name);
    g_clear_error (&error);
  }

  /* The stream still works */
  write_all_sync (pair.server, "hello", 5);
  read_exactly (pair.client, buffer, 5);
  g_assert_cmpmem (buffer, 5, "hello", 5);

  lsock_test_pair_close (&pair);
}

static void
test_timed_out_read_async (void)
{
  GError *error = NULL;
  GAsyncResult *result = NULL;
  GInputStream *input;
  LsockTestPair pair = { 0 };
  char buffer[16];
  gssize n;

  lsock_test_pair_open (&pair, any_name ());
  input = g_io_stream_get_input_stream (G_IO_STREAM (pair.client));
  lsock_stream_set_timeout (pair.client, 50);

  g_input_stream_read_async (input, buffer, sizeof buffer, G_PRIORITY_DEFAULT, NULL,
                             lsock_test_store_result, &result);
  lsock_test_wait_until (result);
  n = g_input_stream_read_finish (input, result, &error);
  g_assert_cmpint (n, ==, -1);
  assert_error_names (error, G_IO_ERROR_TIMED_OUT, pair.name);
  g_clear_error (&error);
  g_clear_object (&result);

  /* The stream still works, asynchronously too */
  write_all_sync (pair.server, "hello", 5);
  g_input_stream_read_async (input, buffer, sizeof buffer, G_PRIORITY_DEFAULT, NULL,
                             lsock_test_store_result, &result);
  lsock_test_wait_until (result);
  n = g_input_stream_read_finish (input, result, &error);
  g_assert_no_error (error);
  g_assert_cmpint (n, ==, 5);
  g_assert_cmpmem (buffer, 5, "hello", 5);
  g_clear_object (&result);

  lsock_test_pair_close (&pair);
}

static void
test_timed_out_write (void)
{
  GError *error = NULL;
  GOutputStream *output;
  LsockTestPair pair = { 0 };
  g_autofree guint8 *chunk = g_malloc0 (65536);
  g_autofree guint8 *sink = g_malloc (65536);
  gsize total = 0;
  gsize drained = 0;
  guint i;

  lsock_test_pair_open (&pair, any_name ());
  output = g_io_stream_get_output_stream (G_IO_STREAM (pair.client));
  lsock_stream_set_timeout (pair.client, 50);

  /* The server never reads: the socket buffer fills up */
  for (i = 0; i < 10000; i++)
    {
      gssize n = g_output_stream_write (output, chunk, 65536, NULL, &error);

      if (n < 0)
        break;
      g_assert_cmpint (n, >, 0);
      total += n;
    }
  g_assert_cmpuint (i, <, 10000);
  assert_error_names (error, G_IO_ERROR_TIMED_OUT, pair.name);
  g_clear_error (&error);
  g_assert_cmpuint (total, >, 0);

  /* The peer drains what was written; then writing works again */
  while (drained < total)
    {
      gsize want = MIN (total - drained, 65536);

      read_exactly (pair.server, sink, want);
      drained += want;
    }
  write_all_sync (pair.client, "after", 5);
  read_exactly (pair.server, sink, 5);
  g_assert_cmpmem (sink, 5, "after", 5);

  lsock_test_pair_close (&pair);
}

static void
test_timed_out_write_async (void)
{
  GError *error = NULL;
  GOutputStream *output;
  LsockTestPair pair = { 0 };
  g_autofree guint8 *chunk = g_malloc0 (65536);
  g_autofree guint8 *sink = g_malloc (65536);
  gsize total = 0;
  gsize drained = 0;
  guint i;

  lsock_test_pair_open (&pair, any_name ());
  output = g_io_stream_get_output_stream (G_IO_STREAM (pair.client));
  lsock_stream_set_timeout (pair.client, 50);

  for (i = 0; i < 10000; i++)
    {
      GAsyncResult *result = NULL;
      gssize n;

      g_output_stream_write_async (output, chunk, 65536, G_PRIORITY_DEFAULT, NULL,
                                   lsock_test_store_result, &result);
      lsock_test_wait_until (result);
      n = g_output_stream_write_finish (output, result, &error);
      g_object_unref (result);
      if (n < 0)
        break;
      g_assert_cmpint (n, >, 0);
      total += n;
    }
  g_assert_cmpuint (i, <, 10000);
  assert_error_names (error, G_IO_ERROR_TIMED_OUT, pair.name);
  g_clear_error (&error);

  while (drained < total)
    {
      gsize want = MIN (total - drained, 65536);

      read_exactly (pair.server, sink, want);
      drained += want;
    }
  write_all_sync (pair.client, "after", 5);
  read_exactly (pair.server, sink, 5);
  g_assert_cmpmem (sink, 5, "after", 5);

  lsock_test_pair_close (&pair);
}

/* ------------------------------------------------------------------------ */
/* Peer gone: BROKEN_PIPE or CONNECTION_CLOSED on write, EOF on read */

#ifndef G_OS_WIN32
static void
default_sigpipe (void)
{
  /* A SIGPIPE would kill the test */
  signal (SIGPIPE, SIG_DFL);
}
#else
static void
default_sigpipe (void)
{
}
#endif

static void
assert_peer_gone_write_error (const GError *error,
                              LsockName    *name)
{
  g_autofree char *display = lsock_name_to_string (name);

  g_assert_nonnull (error);
  if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_BROKEN_PIPE))
    g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED);
  assert_message_contains (error, display);
}

typedef enum {
  IO_FAST,         /* blocking, no cancellable, no timeout: one system call */
  IO_CANCELLABLE,  /* blocking with a cancellable: the poll path */
  IO_TIMEOUT,      /* blocking with a timeout: the poll path */
  IO_ASYNC,        /* asynchronous */
  N_IO_MODES
} IoMode;

static gssize
write_in_mode (LsockStream  *stream,
               IoMode        mode,
               const void   *buffer,
               gsize         count,
               GError      **error)
{
  GOutputStream *output = g_io_stream_get_output_stream (G_IO_STREAM (stream));
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  GAsyncResult *result = NULL;
  gssize n;

  lsock_stream_set_timeout (stream, mode == IO_TIMEOUT ? 10000 : 0);
  switch (mode)
    {
    case IO_FAST:
    case IO_TIMEOUT:
      return g_output_stream_write (output, buffer, count, NULL, error);
    case IO_CANCELLABLE:
      return g_output_stream_write (output, buffer, count, cancellable, error);
    case IO_ASYNC:
      g_output_stream_write_async (output, buffer, count, G_PRIORITY_DEFAULT, NULL,
                                   lsock_test_store_result, &result);
      lsock_test_wait_until (result);
      n = g_output_stream_write_finish (output, result, error);
      g_object_unref (result);
      return n;
    case N_IO_MODES:
    default:
      g_assert_not_reached ();
    }
}

static gssize
read_in_mode (LsockStream  *stream,
              IoMode        mode,
              void         *buffer,
              gsize         count,
              GError      **error)
{
  GInputStream *input = g_io_stream_get_input_stream (G_IO_STREAM (stream));
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  GAsyncResult *result = NULL;
  gssize n;

  lsock_stream_set_timeout (stream, mode == IO_TIMEOUT ? 10000 : 0);
  switch (mode)
    {
    case IO_FAST:
    case IO_TIMEOUT:
      return g_input_stream_read (input, buffer, count, NULL, error);
    case IO_CANCELLABLE:
      return g_input_stream_read (input, buffer, count, cancellable, error);
    case IO_ASYNC:
      g_input_stream_read_async (input, buffer, count, G_PRIORITY_DEFAULT, NULL,
                                 lsock_test_store_result, &result);
      lsock_test_wait_until (result);
      n = g_input_stream_read_finish (input, result, error);
      g_object_unref (result);
      return n;
    case N_IO_MODES:
    default:
      g_assert_not_reached ();
    }
}

static void
test_peer_gone_write (void)
{
  default_sigpipe ();

  for (IoMode mode = 0; mode < N_IO_MODES; mode++)
    {
      for (int unread = 0; unread <= 1; unread++)
        {
          GError *error = NULL;
          LsockTestPair pair = { 0 };
          gssize n;

          g_test_message ("mode %d, unread data %d", mode, unread);
          lsock_test_pair_open (&pair, mode % 2 == 0 && have_paths () ? lsock_test_path_name () : any_name ());
          /* With unread data in the peer's queue Linux reports
           * ECONNRESET rather than EPIPE */
          if (unread)
            write_all_sync (pair.client, "unread", 6);
          lsock_test_close_and_finalize_stream (&pair.server);

          n = write_in_mode (pair.client, mode, "data", 4, &error);
          g_assert_cmpint (n, ==, -1);
          assert_peer_gone_write_error (error, pair.name);
          g_clear_error (&error);

          /* Again: still an error, still no SIGPIPE */
          n = write_in_mode (pair.client, mode, "data", 4, &error);
          g_assert_cmpint (n, ==, -1);
          assert_peer_gone_write_error (error, pair.name);
          g_clear_error (&error);

          lsock_test_pair_close (&pair);
        }
    }
}

static void
test_peer_gone_read (void)
{
  for (IoMode mode = 0; mode < N_IO_MODES; mode++)
    {
      for (int unread = 0; unread <= 2; unread++)
        {
          GError *error = NULL;
          LsockTestPair pair = { 0 };
          char buffer[64];
          gssize n;

          g_test_message ("mode %d, unread data %d", mode, unread);
          lsock_test_pair_open (&pair, mode % 2 == 1 && have_paths () ? lsock_test_path_name () : any_name ());
          /* 1: the peer closes with our data unread in its receive queue
           * (Linux gives ECONNRESET: EOF here, and the stream says the
           * peer discarded data); 2: also with data for us, which we read
           * first */
          if (unread >= 1)
            write_all_sync (pair.client, "unread", 6);
          if (unread == 2)
            write_all_sync (pair.server, "last", 4);
          lsock_test_close_and_finalize_stream (&pair.server);

          if (unread == 2)
            {
              /* What was sent before the close still arrives... */
              n = read_in_mode (pair.client, mode, buffer, sizeof buffer, &error);
              g_assert_no_error (error);
#ifdef __linux__
              g_assert_cmpmem (buffer, n, "last", 4);
#else
              /* ...unless the reset discards it; either way no error */
              if (n > 0)
                g_assert_cmpmem (buffer, n, "last", 4);
#endif
            }

          n = read_in_mode (pair.client, mode, buffer, sizeof buffer, &error);
          g_assert_no_error (error);
          g_assert_cmpint (n, ==, 0);

          /* And EOF again */
          n = read_in_mode (pair.client, mode, buffer, sizeof buffer, &error);
          g_assert_no_error (error);
          g_assert_cmpint (n, ==, 0);
#ifdef __linux__
          /* What we sent the peer, it threw away (Linux says so) */
          g_assert_cmpint (lsock_stream_get_peer_discarded (pair.client), ==, unread >= 1);
#else
          if (unread == 0)
            g_assert_false (lsock_stream_get_peer_discarded (pair.client));
#endif

          lsock_test_pair_close (&pair);
        }
    }
}

/* ------------------------------------------------------------------------ */
/* CLOSED */

static void
test_closed_accept (void)
{
  GError *error = NULL;
  LsockListener *listener;
  LsockName *name = any_name ();

  listener = lsock_listener_new (name, &error);
  g_assert_no_error (error);
  lsock_listener_close (listener);
  g_assert_true (lsock_listener_is_closed (listener));

  g_assert_null (lsock_listener_accept (listener, NULL, &error));
  assert_error_names (error, G_IO_ERROR_CLOSED, name);
  g_clear_error (&error);

  /* With a cancellable too */
  {
    g_autoptr(GCancellable) cancellable = g_cancellable_new ();

    g_assert_null (lsock_listener_accept (listener, cancellable, &error));
    assert_error_names (error, G_IO_ERROR_CLOSED, name);
    g_clear_error (&error);
  }

  lsock_test_close_and_finalize_listener (&listener);
  g_assert_finalize_object (name);
}

static void
test_closed_accept_async (void)
{
  GError *error = NULL;
  GAsyncResult *result = NULL;
  LsockListener *listener;
  LsockName *name = any_name ();

  listener = lsock_listener_new (name, &error);
  g_assert_no_error (error);
  lsock_listener_close (listener);

  lsock_listener_accept_async (listener, NULL, lsock_test_store_result, &result);
  lsock_test_wait_until (result);
  g_assert_null (lsock_listener_accept_finish (listener, result, &error));
  assert_error_names (error, G_IO_ERROR_CLOSED, name);
  g_clear_error (&error);
  g_clear_object (&result);

  lsock_test_close_and_finalize_listener (&listener);
  g_assert_finalize_object (name);
}

static void
test_closed_accept_async_pending (void)
{
  GError *error = NULL;
  GAsyncResult *result = NULL;
  LsockListener *listener;
  LsockName *name = any_name ();

  listener = lsock_listener_new (name, &error);
  g_assert_no_error (error);

  lsock_listener_accept_async (listener, NULL, lsock_test_store_result, &result);
  lsock_test_drain_main_context ();
  g_assert_null (result);

  lsock_listener_close (listener);
  lsock_test_wait_until (result);
  g_assert_null (lsock_listener_accept_finish (listener, result, &error));
  assert_error_names (error, G_IO_ERROR_CLOSED, name);
  g_clear_error (&error);
  g_clear_object (&result);

  lsock_test_close_and_finalize_listener (&listener);
  g_assert_finalize_object (name);
}

static void
test_closed_stream_io (void)
{
  GError *error = NULL;
  GAsyncResult *result = NULL;
  GInputStream *input;
  GOutputStream *output;
  LsockTestPair pair = { 0 };
  char buffer[16];

  lsock_test_pair_open (&pair, any_name ());
  input = g_object_ref (g_io_stream_get_input_stream (G_IO_STREAM (pair.client)));
  output = g_object_ref (g_io_stream_get_output_stream (G_IO_STREAM (pair.client)));

  g_io_stream_close (G_IO_STREAM (pair.client), NULL, &error);
  g_assert_no_error (error);

  /* GLib's own messages are fine for the substreams */
  g_assert_cmpint (g_input_stream_read (input, buffer, sizeof buffer, NULL, &error), ==, -1);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CLOSED);
  g_clear_error (&error);

  g_assert_cmpint (g_output_stream_write (output, "x", 1, NULL, &error), ==, -1);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CLOSED);
  g_clear_error (&error);

  g_input_stream_read_async (input, buffer, sizeof buffer, G_PRIORITY_DEFAULT, NULL,
                             lsock_test_store_result, &result);
  lsock_test_wait_until (result);
  g_assert_cmpint (g_input_stream_read_finish (input, result, &error), ==, -1);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CLOSED);
  g_clear_error (&error);
  g_clear_object (&result);

  g_output_stream_write_async (output, "x", 1, G_PRIORITY_DEFAULT, NULL,
                               lsock_test_store_result, &result);
  lsock_test_wait_until (result);
  g_assert_cmpint (g_output_stream_write_finish (output, result, &error), ==, -1);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CLOSED);
  g_clear_error (&error);
  g_clear_object (&result);

  /* The peer sees the end of the stream */
  g_assert_cmpint (read_sync (pair.server, buffer, sizeof buffer, NULL, &error), ==, 0);
  g_assert_no_error (error);

  /* The substreams outlive their GIOStream */
  lsock_test_close_and_finalize_stream (&pair.client);
  g_assert_finalize_object (input);
  g_assert_finalize_object (output);
  lsock_test_pair_close (&pair);
}

static void
test_closed_stream_shutdown_credentials (void)
{
  GError *error = NULL;
  LsockTestPair pair = { 0 };

  lsock_test_pair_open (&pair, any_name ());
  g_io_stream_close (G_IO_STREAM (pair.client), NULL, &error);
  g_assert_no_error (error);

  g_assert_false (lsock_stream_shutdown (pair.client, FALSE, TRUE, &error));
  assert_error_names (error, G_IO_ERROR_CLOSED, pair.name);
  g_clear_error (&error);

  g_assert_false (lsock_stream_shutdown (pair.client, TRUE, TRUE, &error));
  assert_error_names (error, G_IO_ERROR_CLOSED, pair.name);
  g_clear_error (&error);

  g_assert_null (lsock_stream_get_peer_credentials (pair.client, &error));
  assert_error_names (error, G_IO_ERROR_CLOSED, pair.name);
  g_clear_error (&error);

  /* The accepted side too */
  g_io_stream_close (G_IO_STREAM (pair.server), NULL, &error);
  g_assert_no_error (error);
  g_assert_false (lsock_stream_shutdown (pair.server, TRUE, FALSE, &error));
  assert_error_names (error, G_IO_ERROR_CLOSED, pair.name);
  g_clear_error (&error);
  g_assert_null (lsock_stream_get_peer_credentials (pair.server, &error));
  assert_error_names (error, G_IO_ERROR_CLOSED, pair.name);
  g_clear_error (&error);

  lsock_test_pair_close (&pair);
}

/* ------------------------------------------------------------------------ */
/* CANCELLED */

/* Cancels a cancellable from another thread once the main thread says it is
 * about to block */
typedef struct
{
  GMutex        mutex;
  GCond         cond;
  gboolean      about_to_block;
  GCancellable *cancellable;
  GThread      *thread;
} CancelLater;

static gpointer
cancel_later_thread (gpointer user_data)
{
  CancelLater *cl = user_data;

  g_mutex_lock (&cl->mutex);
  while (!cl->about_to_block)
    g_cond_wait (&cl->cond, &cl->mutex);
  g_mutex_unlock (&cl->mutex);

  /* The main thread may not be blocked yet: then it finds the cancellable
   * cancelled before it blocks, which also gives CANCELLED */
  g_cancellable_cancel (cl->cancellable);
  return NULL;
}

static void
cancel_later_start (CancelLater *cl)
{
  g_mutex_init (&cl->mutex);
  g_cond_init (&cl->cond);
  cl->about_to_block = FALSE;
  cl->cancellable = g_cancellable_new ();
  cl->thread = g_thread_new ("cancel-later", cancel_later_thread, cl);
}

static void
cancel_later_about_to_block (CancelLater *cl)
{
  g_mutex_lock (&cl->mutex);
  cl->about_to_block = TRUE;
  g_cond_signal (&cl->cond);
  g_mutex_unlock (&cl->mutex);
}

static void
cancel_later_finish (CancelLater *cl)
{
  g_thread_join (cl->thread);
  g_assert_finalize_object (cl->cancellable);
  g_cond_clear (&cl->cond);
  g_mutex_clear (&cl->mutex);
}

static void
assert_listener_still_works (LsockListener *listener)
{
  GError *error = NULL;
  LsockStream *client;
  LsockStream *server;

  client = lsock_stream_connect (lsock_listener_get_name (listener), NULL, &error);
  g_assert_no_error (error);
  server = lsock_listener_accept (listener, NULL, &error);
  g_assert_no_error (error);
  lsock_test_close_and_finalize_stream (&client);
  lsock_test_close_and_finalize_stream (&server);
}

static void
test_cancelled_accept (void)
{
  GError *error = NULL;
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  LsockListener *listener;
  LsockName *name = any_name ();
  LsockStream *client;

  listener = lsock_listener_new (name, &error);
  g_assert_no_error (error);

  g_cancellable_cancel (cancellable);
  g_assert_null (lsock_listener_accept (listener, cancellable, &error));
  assert_error_names (error, G_IO_ERROR_CANCELLED, name);
  g_clear_error (&error);

  /* Even with a peer waiting */
  client = lsock_stream_connect (name, NULL, &error);
  g_assert_no_error (error);
  g_assert_null (lsock_listener_accept (listener, cancellable, &error));
  assert_error_names (error, G_IO_ERROR_CANCELLED, name);
  g_clear_error (&error);

  /* The waiting peer is still there to accept */
  {
    LsockStream *server = lsock_listener_accept (listener, NULL, &error);

    g_assert_no_error (error);
    lsock_test_close_and_finalize_stream (&server);
  }
  lsock_test_close_and_finalize_stream (&client);

  lsock_test_close_and_finalize_listener (&listener);
  g_assert_finalize_object (name);
}

static void
test_cancelled_accept_blocked (void)
{
  GError *error = NULL;
  CancelLater cl;
  LsockListener *listener;
  LsockName *name = any_name ();

  listener = lsock_listener_new (name, &error);
  g_assert_no_error (error);

  cancel_later_start (&cl);
  cancel_later_about_to_block (&cl);
  g_assert_null (lsock_listener_accept (listener, cl.cancellable, &error));
  assert_error_names (error, G_IO_ERROR_CANCELLED, name);
  g_clear_error (&error);
  cancel_later_finish (&cl);

  assert_listener_still_works (listener);
  lsock_test_close_and_finalize_listener (&listener);
  g_assert_finalize_object (name);
}

static void
test_cancelled_accept_async (void)
{
  GError *error = NULL;
  GAsyncResult *result = NULL;
  LsockListener *listener;
  LsockName *name = any_name ();

  listener = lsock_listener_new (name, &error);
  g_assert_no_error (error);

  /* Cancelled while waiting */
  {
    g_autoptr(GCancellable) cancellable = g_cancellable_new ();

    lsock_listener_accept_async (listener, cancellable, lsock_test_store_result, &result);
    lsock_test_drain_main_context ();
    g_assert_null (result);
    g_cancellable_cancel (cancellable);
    lsock_test_wait_until (result);
    g_assert_null (lsock_listener_accept_finish (listener, result, &error));
    assert_error_names (error, G_IO_ERROR_CANCELLED, name);
    g_clear_error (&error);
    g_clear_object (&result);
  }

  /* Cancelled before it starts */
  {
    g_autoptr(GCancellable) cancellable = g_cancellable_new ();

    g_cancellable_cancel (cancellable);
    lsock_listener_accept_async (listener, cancellable, lsock_test_store_result, &result);
    lsock_test_wait_until (result);
    g_assert_null (lsock_listener_accept_finish (listener, result, &error));
    assert_error_names (error, G_IO_ERROR_CANCELLED, name);
    g_clear_error (&error);
    g_clear_object (&result);
  }

  lsock_test_drain_main_context ();
  assert_listener_still_works (listener);
  lsock_test_close_and_finalize_listener (&listener);
  g_assert_finalize_object (name);
}

static void
test_cancelled_connect_async (void)
{
  GError *error = NULL;
  GAsyncResult *result = NULL;
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  LsockListener *listener;
  LsockName *name = any_name ();

  listener = lsock_listener_new (name, &error);
  g_assert_no_error (error);

  g_cancellable_cancel (cancellable);
  lsock_stream_connect_async (name, cancellable, lsock_test_store_result, &result);
  lsock_test_wait_until (result);
  g_assert_null (lsock_stream_connect_finish (result, &error));
  assert_error_names (error, G_IO_ERROR_CANCELLED, name);
  g_clear_error (&error);
  g_clear_object (&result);

  /* The sync connect too */
  g_assert_null (lsock_stream_connect (name, cancellable, &error));
  assert_error_names (error, G_IO_ERROR_CANCELLED, name);
  g_clear_error (&error);

  lsock_test_drain_main_context ();
  lsock_test_close_and_finalize_listener (&listener);
  g_assert_finalize_object (name);
}

static void
test_cancelled_read_blocked (void)
{
  GError *error = NULL;
  CancelLater cl;
  LsockTestPair pair = { 0 };
  char buffer[16];

  lsock_test_pair_open (&pair, any_name ());

  cancel_later_start (&cl);
  cancel_later_about_to_block (&cl);
  g_assert_cmpint (read_sync (pair.client, buffer, sizeof buffer, cl.cancellable, &error), ==, -1);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_clear_error (&error);
  cancel_later_finish (&cl);

  /* The stream still works */
  write_all_sync (pair.server, "hello", 5);
  read_exactly (pair.client, buffer, 5);
  g_assert_cmpmem (buffer, 5, "hello", 5);

  lsock_test_pair_close (&pair);
}

static void
test_cancelled_read_async (void)
{
  GError *error = NULL;
  GAsyncResult *result = NULL;
  GInputStream *input;
  LsockTestPair pair = { 0 };
  char buffer[16];

  lsock_test_pair_open (&pair, any_name ());
  input = g_io_stream_get_input_stream (G_IO_STREAM (pair.client));

  /* Cancelled while waiting */
  {
    g_autoptr(GCancellable) cancellable = g_cancellable_new ();

    g_input_stream_read_async (input, buffer, sizeof buffer, G_PRIORITY_DEFAULT, cancellable,
                               lsock_test_store_result, &result);
    lsock_test_drain_main_context ();
    g_assert_null (result);
    g_cancellable_cancel (cancellable);
    lsock_test_wait_until (result);
    g_assert_cmpint (g_input_stream_read_finish (input, result, &error), ==, -1);
    g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
    g_clear_error (&error);
    g_clear_object (&result);
  }

  /* Cancelled before it starts */
  {
    g_autoptr(GCancellable) cancellable = g_cancellable_new ();

    g_cancellable_cancel (cancellable);
    g_input_stream_read_async (input, buffer, sizeof buffer, G_PRIORITY_DEFAULT, cancellable,
                               lsock_test_store_result, &result);
    lsock_test_wait_until (result);
    g_assert_cmpint (g_input_stream_read_finish (input, result, &error), ==, -1);
    g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
    g_clear_error (&error);
    g_clear_object (&result);
  }

  /* The stream still works */
  write_all_sync (pair.server, "hello", 5);
  g_input_stream_read_async (input, buffer, sizeof buffer, G_PRIORITY_DEFAULT, NULL,
                             lsock_test_store_result, &result);
  lsock_test_wait_until (result);
  g_assert_cmpint (g_input_stream_read_finish (input, result, &error), ==, 5);
  g_assert_no_error (error);
  g_assert_cmpmem (buffer, 5, "hello", 5);
  g_clear_object (&result);

  lsock_test_pair_close (&pair);
}

/* ------------------------------------------------------------------------ */
/* Access: peers of another user */

#ifndef G_OS_WIN32
typedef struct
{
  LsockListener *listener;
  LsockStream   *stream;  /* out */
  GError        *error;   /* out */
  gboolean       greet;   /* write "welcome" and close the accepted stream */
  guint          peer_uid;
} AcceptThread;

static gpointer
accept_thread (gpointer user_data)
{
  AcceptThread *at = user_data;

  at->stream = lsock_listener_accept (at->listener, NULL, &at->error);
  if (at->stream != NULL && at->greet)
    {
      GError *error = NULL;
      GCredentials *credentials;

      credentials = lsock_stream_get_peer_credentials (at->stream, &error);
      g_assert_no_error (error);
      at->peer_uid = g_credentials_get_unix_user (credentials, &error);
      g_assert_no_error (error);
      g_object_unref (credentials);

      write_all_sync (at->stream, "welcome", 7);
      g_io_stream_close (G_IO_STREAM (at->stream), NULL, &error);
      g_assert_no_error (error);
    }
  return NULL;
}
#endif

static void
test_access_user_namespaced (void)
{
#ifndef G_OS_WIN32
  GError *error = NULL;
  AcceptThread at = { 0 };
  GThread *thread;
  LsockName *name;
  LsockStream *client;
  GCredentials *credentials;

  if (g_test_subprocess ())
    {
      LsockStream *stream;
      char buffer[16];
      gssize n;

      become_other_user ();
      name = child_name ();
      /* Abstract names have no permissions: the connection is made... */
      stream = lsock_stream_connect (name, NULL, &error);
      g_assert_no_error (error);
      /* ...and the listener closes it without a word */
      n = read_sync (stream, buffer, sizeof buffer, NULL, &error);
      g_assert_no_error (error);
      g_assert_cmpint (n, ==, 0);
      lsock_test_close_and_finalize_stream (&stream);
      g_assert_finalize_object (name);
      return;
    }

  if (skip_unless_namespaced ())
    return;
  if (!is_root ())
    {
      g_test_skip ("Needs root to run a peer as another user");
      return;
    }

  name = lsock_test_namespaced_name ();
  at.listener = lsock_listener_new (name, &error);
  g_assert_no_error (error);
  g_assert_cmpint (lsock_listener_get_access (at.listener), ==, LSOCK_ACCESS_USER);

  set_child_name (name);
  thread = g_thread_new ("accept", accept_thread, &at);

  /* The child of another user connects and reads EOF: the concurrent
   * accept refused it */
  run_child ();

  /* The accept has not returned that peer: it returns the next one */
  client = lsock_stream_connect (name, NULL, &error);
  g_assert_no_error (error);
  g_thread_join (thread);
  g_assert_no_error (at.error);
  g_assert_nonnull (at.stream);

  credentials = lsock_stream_get_peer_credentials (at.stream, &error);
  g_assert_no_error (error);
  g_assert_cmpint (g_credentials_get_unix_pid (credentials, &error), ==, getpid ());
  g_assert_no_error (error);
  g_assert_cmpuint (g_credentials_get_unix_user (credentials, &error), ==, geteuid ());
  g_assert_no_error (error);
  g_object_unref (credentials);

  lsock_test_close_and_finalize_stream (&at.stream);
  lsock_test_close_and_finalize_stream (&client);
  lsock_test_close_and_finalize_listener (&at.listener);
  g_assert_finalize_object (name);
#else
  skip_unless_unix ();
#endif
}

static void
test_access_everyone_namespaced (void)
{
#ifndef G_OS_WIN32
  GError *error = NULL;
  AcceptThread at = { 0 };
  GThread *thread;
  LsockName *name;

  if (g_test_subprocess ())
    {
      LsockStream *stream;
      char buffer[16];

      become_other_user ();
      name = child_name ();
      stream = lsock_stream_connect (name, NULL, &error);
      g_assert_no_error (error);
      read_exactly (stream, buffer, 7);
      g_assert_cmpmem (buffer, 7, "welcome", 7);
      g_assert_cmpint (read_sync (stream, buffer, sizeof buffer, NULL, &error), ==, 0);
      g_assert_no_error (error);
      lsock_test_close_and_finalize_stream (&stream);
      g_assert_finalize_object (name);
      return;
    }

  if (skip_unless_namespaced ())
    return;
  if (!is_root ())
    {
      g_test_skip ("Needs root to run a peer as another user");
      return;
    }

  name = lsock_test_namespaced_name ();
  at.listener = lsock_listener_new_full (name, LSOCK_ACCESS_EVERYONE, NULL, &error);
  g_assert_no_error (error);
  at.greet = TRUE;

  set_child_name (name);
  thread = g_thread_new ("accept", accept_thread, &at);
  run_child ();
  g_thread_join (thread);

  g_assert_no_error (at.error);
  g_assert_nonnull (at.stream);
  g_assert_cmpuint (at.peer_uid, ==, OTHER_ID);

  lsock_test_close_and_finalize_stream (&at.stream);
  lsock_test_close_and_finalize_listener (&at.listener);
  g_assert_finalize_object (name);
#else
  skip_unless_unix ();
#endif
}

static void
test_access_user_path (void)
{
#ifndef G_OS_WIN32
  GError *error = NULL;
  LsockListener *listener;
  LsockName *name;
  g_autofree char *dir = NULL;
  struct stat st;

  if (g_test_subprocess ())
    {
      become_other_user ();
      name = child_name ();
      g_assert_cmpint (lstat (lsock_name_get_name (name), &st), ==, 0);
      assert_connect_fails (name, G_IO_ERROR_PERMISSION_DENIED);
      g_assert_finalize_object (name);
      return;
    }

  if (skip_unless_paths ())
    return;
  if (!is_root ())
    {
      g_test_skip ("Needs root to run a peer as another user");
      return;
    }

  name = lsock_test_path_name ();
  dir = g_path_get_dirname (lsock_name_get_name (name));
  g_assert_cmpint (g_chmod (dir, 0755), ==, 0);
  listener = lsock_listener_new (name, &error);
  g_assert_no_error (error);

  g_assert_cmpint (lstat (lsock_name_get_name (name), &st), ==, 0);
  g_assert_true (S_ISSOCK (st.st_mode));
  g_assert_cmpint (st.st_mode & 07777, ==, 0600);
  g_assert_cmpuint (st.st_uid, ==, geteuid ());

  set_child_name (name);
  run_child ();

  /* Nobody got through: nothing is waiting */
  assert_listener_still_works (listener);

  lsock_test_close_and_finalize_listener (&listener);
  g_assert_finalize_object (name);
#else
  skip_unless_unix ();
#endif
}

/* A path that is not UTF-8 is a valid name, but a GError message must be
 * UTF-8 (bindings cannot convert it otherwise, and lose the code): the
 * bytes are shown as \xNN, a backslash of the path as "\\" */
static void
test_non_utf8_message (void)
{
#ifdef G_OS_UNIX
  g_autoptr(GAsyncResult) result = NULL;
  g_autofree char *path = g_build_filename (lsock_test_tmp_dir (), "no-\xff\xfe-dir\\", "sock",
                                            NULL);
  GError *error = NULL;
  LsockName *name = lsock_name_new_path (path, &error);
  g_autofree char *round_trip = NULL;

  g_assert_no_error (error);
  /* The name itself keeps its bytes */
  round_trip = lsock_name_to_string (name);
  g_assert_cmpstr (round_trip, ==, path);

  g_assert_null (lsock_stream_connect (name, NULL, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND);
  g_assert_true (g_utf8_validate (error->message, -1, NULL));
  assert_message_contains (error, "no-\\xff\\xfe-dir\\\\");
  g_clear_error (&error);

  lsock_stream_connect_async (name, NULL, lsock_test_store_result, &result);
  lsock_test_wait_until (result);
  g_assert_null (lsock_stream_connect_finish (result, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND);
  g_assert_true (g_utf8_validate (error->message, -1, NULL));
  g_clear_error (&error);
  g_clear_object (&result);

  g_assert_null (lsock_listener_new (name, &error));
  g_assert_nonnull (error);
  g_assert_true (g_utf8_validate (error->message, -1, NULL));
  assert_message_contains (error, "no-\\xff\\xfe-dir");
  g_clear_error (&error);
  g_assert_finalize_object (name);
#else
  g_test_skip ("Paths are UTF-8 on Windows");
#endif
}

int
main (int   argc,
      char *argv[])
{
  int ret;

  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);

  g_test_add_func ("/lsock/errors/invalid-argument/empty", test_invalid_empty);
  g_test_add_func ("/lsock/errors/invalid-argument/path-too-long", test_invalid_path_too_long);
  g_test_add_func ("/lsock/errors/invalid-argument/namespaced-too-long", test_invalid_namespaced_too_long);
  g_test_add_func ("/lsock/errors/invalid-argument/invalid-utf8", test_invalid_utf8);
  g_test_add_func ("/lsock/errors/not-supported", test_not_supported);
  g_test_add_func ("/lsock/errors/not-found/path", test_not_found_path);
  g_test_add_func ("/lsock/errors/not-found/missing-directory", test_not_found_missing_directory);
  g_test_add_func ("/lsock/errors/not-found/namespaced", test_not_found_namespaced);
  g_test_add_func ("/lsock/errors/connection-refused/stale-socket", test_refused_raw_socket);
  g_test_add_func ("/lsock/errors/connection-refused/no-reclaim", test_refused_no_reclaim);
  g_test_add_func ("/lsock/errors/connection-refused/not-a-socket", test_refused_not_a_socket);
  g_test_add_func ("/lsock/errors/permission-denied/connect-file-mode", test_permission_connect_file_mode);
  g_test_add_func ("/lsock/errors/permission-denied/connect-directory-mode", test_permission_connect_directory_mode);
  g_test_add_func ("/lsock/errors/permission-denied/listen-directory", test_permission_listen_directory);
  g_test_add_func ("/lsock/errors/address-in-use/path", test_in_use_path);
  g_test_add_func ("/lsock/errors/address-in-use/namespaced", test_in_use_namespaced);
  g_test_add_func ("/lsock/errors/address-in-use/stale-no-replace", test_in_use_stale_no_replace);
  g_test_add_func ("/lsock/errors/exists/regular-file", test_exists_file);
  g_test_add_func ("/lsock/errors/exists/directory", test_exists_directory);
  g_test_add_func ("/lsock/errors/exists/fifo", test_exists_fifo);
  g_test_add_func ("/lsock/errors/timed-out/read", test_timed_out_read);
  g_test_add_func ("/lsock/errors/timed-out/read-async", test_timed_out_read_async);
  g_test_add_func ("/lsock/errors/timed-out/write", test_timed_out_write);
  g_test_add_func ("/lsock/errors/timed-out/write-async", test_timed_out_write_async);
  g_test_add_func ("/lsock/errors/peer-gone/write", test_peer_gone_write);
  g_test_add_func ("/lsock/errors/peer-gone/read", test_peer_gone_read);
  g_test_add_func ("/lsock/errors/closed/accept", test_closed_accept);
  g_test_add_func ("/lsock/errors/closed/accept-async", test_closed_accept_async);
  g_test_add_func ("/lsock/errors/closed/accept-async-pending", test_closed_accept_async_pending);
  g_test_add_func ("/lsock/errors/closed/stream-io", test_closed_stream_io);
  g_test_add_func ("/lsock/errors/closed/stream-shutdown-credentials", test_closed_stream_shutdown_credentials);
  g_test_add_func ("/lsock/errors/cancelled/accept", test_cancelled_accept);
  g_test_add_func ("/lsock/errors/cancelled/accept-blocked", test_cancelled_accept_blocked);
  g_test_add_func ("/lsock/errors/cancelled/accept-async", test_cancelled_accept_async);
  g_test_add_func ("/lsock/errors/cancelled/connect-async", test_cancelled_connect_async);
  g_test_add_func ("/lsock/errors/cancelled/read-blocked", test_cancelled_read_blocked);
  g_test_add_func ("/lsock/errors/cancelled/read-async", test_cancelled_read_async);
  g_test_add_func ("/lsock/errors/access/user-namespaced-other-uid", test_access_user_namespaced);
  g_test_add_func ("/lsock/errors/access/everyone-namespaced-other-uid", test_access_everyone_namespaced);
  g_test_add_func ("/lsock/errors/access/user-path-other-uid", test_access_user_path);
  g_test_add_func ("/lsock/errors/non-utf8-message", test_non_utf8_message);

  ret = g_test_run ();
  lsock_test_cleanup_dirs ();
  return ret;
}
