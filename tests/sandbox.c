/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

/* Names a sandbox can reach: lsock_name_new_for_app() makes a socket file
 * in $XDG_RUNTIME_DIR/app/APP_ID/, the directory Flatpak shares with the
 * app. Across a network namespace (unshare -n, as root) a client reaches
 * it, also when it sees nothing of the runtime directory but that one
 * directory (a mount namespace), where a generic name (an abstract socket
 * on Linux) is out of reach. */

#include "lsock-test-util.h"

#include <string.h>
#ifdef G_OS_UNIX
# include <errno.h>
# include <glib/gstdio.h>
# include <sys/stat.h>
# include <unistd.h>
#endif

#define APP_ID "org.example.LsockTest"

#ifdef G_OS_UNIX

/* A private $XDG_RUNTIME_DIR for the test, set in the environment */
static char *
fake_runtime_dir (void)
{
  g_autofree char *base = lsock_test_unique_string ("runtime");
  char *dir = g_build_filename (lsock_test_tmp_dir (), base, NULL);

  g_assert_cmpint (g_mkdir (dir, 0700), ==, 0);
  g_setenv ("XDG_RUNTIME_DIR", dir, TRUE);
  return dir;
}

static guint
mode_of (const char *path)
{
  GStatBuf st;

  g_assert_cmpint (g_lstat (path, &st), ==, 0);
  return st.st_mode & 0777;
}

static void
test_app_name (void)
{
  g_autofree char *runtime = fake_runtime_dir ();
  g_autofree char *dir = g_build_filename (runtime, "app", APP_ID, NULL);
  g_autofree char *expected = g_build_filename (dir, "control", NULL);
  g_autoptr(LsockName) name = NULL;
  g_autofree char *apps = g_build_filename (runtime, "app", NULL);
  GError *error = NULL;
  LsockListener *listener;
  LsockStream *client;

  name = lsock_name_new_for_app (APP_ID, "control", &error);
  g_assert_no_error (error);
  g_assert_cmpint (lsock_name_get_kind (name), ==, LSOCK_NAME_KIND_PATH);
  g_assert_cmpstr (lsock_name_get_name (name), ==, expected);
  g_assert_cmpuint (mode_of (apps), ==, 0700);
  g_assert_cmpuint (mode_of (dir), ==, 0700);

  /* It works as a name */
  listener = lsock_listener_new (name, &error);
  g_assert_no_error (error);
  client = lsock_stream_connect (name, NULL, &error);
  g_assert_no_error (error);
  lsock_test_close_and_finalize_stream (&client);
  lsock_test_close_and_finalize_listener (&listener);
  g_assert_false (g_file_test (expected, G_FILE_TEST_EXISTS));

  /* Made again: the directories are there already */
  g_clear_object (&name);
  name = lsock_name_new_for_app (APP_ID, "control", &error);
  g_assert_no_error (error);

  g_rmdir (dir);
  g_rmdir (apps);
  g_rmdir (runtime);
  g_unsetenv ("XDG_RUNTIME_DIR");
}

static void
assert_app_name_fails (const char *app_id,
                       const char *name,
                       int         code,
                       const char *part)
{
  GError *error = NULL;

  g_assert_null (lsock_name_new_for_app (app_id, name, &error));
  g_assert_error (error, G_IO_ERROR, code);
  g_test_message ("%s", error->message);
  g_assert_nonnull (strstr (error->message, part));
  g_clear_error (&error);
}

static void
test_app_name_invalid (void)
{
  g_autofree char *runtime = NULL;
  g_autofree char *apps = NULL;
  g_autofree char *target = NULL;

  g_unsetenv ("XDG_RUNTIME_DIR");
  assert_app_name_fails (APP_ID, "x", G_IO_ERROR_NOT_FOUND, "XDG_RUNTIME_DIR");

  runtime = fake_runtime_dir ();
  assert_app_name_fails ("not an id", "x", G_IO_ERROR_INVALID_ARGUMENT, "application id");
  assert_app_name_fails ("..", "x", G_IO_ERROR_INVALID_ARGUMENT, "application id");
  assert_app_name_fails (APP_ID, "a/b", G_IO_ERROR_INVALID_ARGUMENT, "“/”");
  assert_app_name_fails (APP_ID, "..", G_IO_ERROR_INVALID_ARGUMENT, "“..”");
  assert_app_name_fails (APP_ID, "", G_IO_ERROR_INVALID_ARGUMENT, "empty");

  /* A runtime directory others can enter */
  g_chmod (runtime, 0755);
  assert_app_name_fails (APP_ID, "x", G_IO_ERROR_PERMISSION_DENIED, "0700");
  g_chmod (runtime, 0700);

  /* An app directory that is a symbolic link is never followed */
  apps = g_build_filename (runtime, "app", NULL);
  target = g_build_filename (runtime, "elsewhere", NULL);
  g_assert_cmpint (g_mkdir (target, 0700), ==, 0);
  g_assert_cmpint (symlink (target, apps), ==, 0);
  assert_app_name_fails (APP_ID, "x", G_IO_ERROR_PERMISSION_DENIED, "symbolic link");
  g_unlink (apps);

  /* One that became wider after the name was made is refused at use */
  {
    g_autoptr(LsockName) name = lsock_name_new_for_app (APP_ID, "x", NULL);
    g_autofree char *dir = g_build_filename (apps, APP_ID, NULL);
    GError *error = NULL;

    g_assert_nonnull (name);
    g_chmod (dir, 0777);
    g_assert_null (lsock_listener_new (name, &error));
    g_assert_error (error, G_IO_ERROR, G_IO_ERROR_PERMISSION_DENIED);
    g_clear_error (&error);
    g_rmdir (dir);
  }

  g_rmdir (apps);
  g_rmdir (target);
  g_rmdir (runtime);
  g_unsetenv ("XDG_RUNTIME_DIR");
}

/* Starts `lsock connect NAME` inside new namespaces (network, and mount if
 * @only_app_dir: the runtime directory then shows nothing but the app's
 * directory), sending "hello" and then waiting for our end of stream */
static GSubprocess *
connect_from_sandbox (const char *name,
                      const char *runtime,
                      const char *app_dir,
                      const char *keep,
                      gboolean    only_app_dir)
{
  const char *tool = g_getenv ("LSOCK_TOOL");
  g_autofree char *script = NULL;
  GSubprocess *process;
  GError *error = NULL;

  if (only_app_dir)
    script = g_strdup_printf ("set -e; mkdir -p '%s'; mount --bind '%s' '%s'; "
                              "mount -t tmpfs tmpfs '%s'; mkdir -p '%s'; "
                              "mount --bind '%s' '%s'; "
                              "test \"$(ls '%s')\" = app; "
                              "echo hello | '%s' connect '%s'",
                              keep, app_dir, keep, runtime, app_dir, keep, app_dir,
                              runtime, tool, name);
  else
    script = g_strdup_printf ("echo hello | '%s' connect '%s'", tool, name);

  process = g_subprocess_new (G_SUBPROCESS_FLAGS_STDERR_MERGE | G_SUBPROCESS_FLAGS_STDOUT_PIPE,
                              &error, "unshare", only_app_dir ? "--mount" : "--net",
                              only_app_dir ? "--net" : "--", "sh", "-c", script, NULL);
  g_assert_no_error (error);
  return process;
}

static int
wait_status (GSubprocess *process)
{
  g_autofree char *out = NULL;
  GError *error = NULL;

  g_subprocess_communicate_utf8 (process, NULL, NULL, &out, NULL, &error);
  g_assert_no_error (error);
  g_test_message ("sandboxed client said: %s", out);
  return g_subprocess_get_exit_status (process);
}

static gboolean
skip_unless_namespaces (void)
{
  g_autofree char *unshare = g_find_program_in_path ("unshare");

  if (geteuid () != 0)
    {
      g_test_skip ("Needs root, for network and mount namespaces");
      return TRUE;
    }
  if (unshare == NULL || g_getenv ("LSOCK_TOOL") == NULL)
    {
      g_test_skip ("Needs unshare (util-linux) and the lsock tool");
      return TRUE;
    }
  return FALSE;
}

/* Accepts a client and reads its "hello", then ends the stream */
static void
assert_hello (LsockListener *listener)
{
  GError *error = NULL;
  LsockStream *server = lsock_listener_accept (listener, NULL, &error);
  char buffer[16] = { 0 };
  gsize n = 0;

  g_assert_no_error (error);
  g_input_stream_read_all (g_io_stream_get_input_stream (G_IO_STREAM (server)),
                           buffer, 6, &n, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (buffer, ==, "hello\n");
  lsock_test_close_and_finalize_stream (&server);
}

static void
test_across_network_namespace (void)
{
  g_autofree char *runtime = NULL;
  g_autofree char *app_dir = NULL;
  g_autofree char *keep = NULL;
  g_autoptr(LsockName) app_name = NULL;
  g_autoptr(LsockName) generic = NULL;
  g_autofree char *app_string = NULL;
  g_autofree char *generic_string = NULL;
  LsockListener *app_listener;
  LsockListener *generic_listener;
  GError *error = NULL;

  if (skip_unless_namespaces ())
    return;

  runtime = fake_runtime_dir ();
  app_dir = g_build_filename (runtime, "app", APP_ID, NULL);
  keep = g_build_filename (lsock_test_tmp_dir (), "keep", NULL);
  app_name = lsock_name_new_for_app (APP_ID, "svc", &error);
  g_assert_no_error (error);
  app_string = lsock_name_to_string (app_name);
  generic = lsock_test_namespaced_name ();
  generic_string = lsock_name_to_string (generic);

  app_listener = lsock_listener_new (app_name, &error);
  g_assert_no_error (error);
  generic_listener = lsock_listener_new (generic, &error);
  g_assert_no_error (error);

  /* The abstract name does not exist in another network namespace */
  {
    g_autoptr(GSubprocess) p = connect_from_sandbox (generic_string, runtime, app_dir, keep, FALSE);

    g_assert_cmpint (wait_status (p), !=, 0);
  }

  /* The app's socket file does, also seeing only the app's directory */
  for (int only_app_dir = 0; only_app_dir <= 1; only_app_dir++)
    {
      g_autoptr(GSubprocess) p = connect_from_sandbox (app_string, runtime, app_dir, keep,
                                                       only_app_dir);

      /* The client ends once we end the stream */
      assert_hello (app_listener);
      g_assert_cmpint (wait_status (p), ==, 0);
    }
  g_rmdir (keep);

  lsock_test_close_and_finalize_listener (&generic_listener);
  lsock_test_close_and_finalize_listener (&app_listener);
  g_rmdir (app_dir);
  {
    g_autofree char *apps = g_build_filename (runtime, "app", NULL);

    g_rmdir (apps);
  }
  g_rmdir (runtime);
  g_unsetenv ("XDG_RUNTIME_DIR");
}

#else

static void
test_not_supported (void)
{
  GError *error = NULL;

  g_assert_null (lsock_name_new_for_app (APP_ID, "x", &error));
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
  g_test_add_func ("/lsock/sandbox/app-name", test_app_name);
  g_test_add_func ("/lsock/sandbox/app-name/invalid", test_app_name_invalid);
  g_test_add_func ("/lsock/sandbox/across-network-namespace", test_across_network_namespace);
#else
  g_test_add_func ("/lsock/sandbox/not-supported", test_not_supported);
#endif

  ret = g_test_run ();
  lsock_test_cleanup_dirs ();
  return ret;
}
