/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include "lsock-test-util.h"
#include "lsock-listener-private.h"
#include "lsock-stream-private.h"

#include <errno.h>
#include <stdio.h>
#include <glib/gstdio.h>
#include <string.h>
#ifdef G_OS_UNIX
# include "lsock-unix-conn-private.h"
# include <fcntl.h>
# include <sys/resource.h>
# include <sys/socket.h>
# include <sys/stat.h>
# include <sys/un.h>
# include <unistd.h>
#endif
#ifdef HAVE_VALGRIND_VALGRIND_H
# include <valgrind/valgrind.h>
#endif

#ifdef G_OS_UNIX
static LsockName *
path_name_in (const char *dir,
              const char *base)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *path = g_build_filename (dir, base, NULL);
  LsockName *name = lsock_name_new_path (path, &error);

  g_assert_no_error (error);
  return name;
}

/* A socket file nobody listens on, as a crashed server leaves it */
static void
make_stale_socket (const char *path)
{
  struct sockaddr_un addr = { .sun_family = AF_UNIX };
  int fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

  g_assert_cmpint (fd, >=, 0);
  g_strlcpy (addr.sun_path, path, sizeof addr.sun_path);
  g_assert_cmpint (bind (fd, (struct sockaddr *) &addr, sizeof addr), ==, 0);
  close (fd);
}

static ino_t
inode_of (const char *path)
{
  struct stat st;

  g_assert_cmpint (lstat (path, &st), ==, 0);
  return st.st_ino;
}

/* Connects, sends "hello" and checks it arrives. Listeners that lost a race
 * for the name probed this one with a connection that closed at once: those
 * are accepted first and read end of stream. */
#endif /* G_OS_UNIX */

static void
assert_round_trip (LsockListener *listener)
{
  g_autoptr(GError) error = NULL;
  LsockStream *client;
  LsockStream *server = NULL;
  char buf[5];
  gsize n = 0;

  client = lsock_stream_connect (lsock_listener_get_name (listener), NULL, &error);
  g_assert_no_error (error);
  g_output_stream_write_all (g_io_stream_get_output_stream (G_IO_STREAM (client)),
                             "hello", 5, &n, NULL, &error);
  g_assert_no_error (error);

  for (int probes = 0; ; probes++)
    {
      g_assert_cmpint (probes, <, 16);
      server = lsock_listener_accept (listener, NULL, &error);
      g_assert_no_error (error);
      g_input_stream_read_all (g_io_stream_get_input_stream (G_IO_STREAM (server)),
                               buf, 5, &n, NULL, &error);
      g_assert_no_error (error);
      if (n > 0)
        break;
      g_assert_finalize_object (server);
    }
  g_assert_cmpmem (buf, n, "hello", 5);

  g_assert_finalize_object (client);
  g_assert_finalize_object (server);
}

static void
test_defaults (void)
{
  g_autoptr(GError) error = NULL;
  LsockName *name = lsock_test_namespaced_name ();
  LsockListener *listener = lsock_listener_new (name, &error);
  LsockName *prop_name = NULL;
  LsockAccess access;
  int backlog;
  gboolean reclaim, replace;

  g_assert_no_error (error);
  g_object_get (listener,
                "name", &prop_name,
                "access", &access,
                "backlog", &backlog,
                "reclaim-name", &reclaim,
                "replace-stale", &replace,
                NULL);
  g_assert_true (prop_name == name);
  g_assert_true (lsock_listener_get_name (listener) == name);
  g_assert_cmpint (access, ==, LSOCK_ACCESS_USER);
  g_assert_cmpint (backlog, ==, LSOCK_DEFAULT_BACKLOG);
  g_assert_true (reclaim);
  g_assert_true (replace);
  g_assert_false (lsock_listener_is_active (listener));
  g_assert_false (lsock_listener_is_closed (listener));
  g_object_unref (prop_name);

  assert_round_trip (listener);

  g_assert_finalize_object (listener);
  g_assert_finalize_object (name);
}

static void
test_generic (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *s = lsock_test_unique_string ("generic");
  LsockName *name = lsock_name_new_generic (s, &error);
  LsockListener *listener;

  g_assert_no_error (error);
  listener = lsock_listener_new (name, &error);
  g_assert_no_error (error);
  assert_round_trip (listener);
  g_assert_finalize_object (listener);
  g_assert_finalize_object (name);
}

#ifdef G_OS_UNIX
static void
test_path_mode (void)
{
  g_autoptr(GError) error = NULL;
  LsockName *name = lsock_test_path_name ();
  const char *path = lsock_name_get_name (name);
  LsockListener *listener;
  mode_t old_umask = umask (0);
  struct stat st;

  /* With no umask to narrow it, the file is still 0600 */
  listener = lsock_listener_new (name, &error);
  g_assert_no_error (error);
  g_assert_cmpint (lstat (path, &st), ==, 0);
  g_assert_true (S_ISSOCK (st.st_mode));
  g_assert_cmpint (st.st_mode & 07777, ==, 0600);
  g_assert_cmpint (st.st_uid, ==, geteuid ());
  g_assert_finalize_object (listener);
  g_assert_cmpint (access (path, F_OK), !=, 0);

  /* EVERYONE: 0666 whatever the umask */
  umask (077);
  listener = lsock_listener_new_full (name, LSOCK_ACCESS_EVERYONE, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (lstat (path, &st), ==, 0);
  g_assert_cmpint (st.st_mode & 07777, ==, 0666);
  assert_round_trip (listener);
  g_assert_finalize_object (listener);

  /* A restrictive umask does not lock the owner out */
  umask (0277);
  listener = lsock_listener_new (name, &error);
  g_assert_no_error (error);
  g_assert_cmpint (lstat (path, &st), ==, 0);
  g_assert_cmpint (st.st_mode & 07777, ==, 0600);
  g_assert_finalize_object (listener);

  umask (old_umask);
  g_assert_finalize_object (name);
}

/* Nothing but the socket is left in the directory: no temporary names */
static void
test_path_no_leftovers (void)
{
  g_autoptr(GError) error = NULL;
  const char *dir = lsock_test_tmp_dir ();
  LsockName *name = path_name_in (dir, "s");
  LsockListener *listener = lsock_listener_new (name, &error);
  LsockListener *second;
  GDir *d;
  const char *entry;
  int count = 0;

  g_assert_no_error (error);
  second = lsock_listener_new (name, &error);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_ADDRESS_IN_USE);
  g_assert_null (second);
  g_clear_error (&error);

  d = g_dir_open (dir, 0, &error);
  g_assert_no_error (error);
  while ((entry = g_dir_read_name (d)) != NULL)
    {
      g_assert_cmpstr (entry, ==, "s");
      count++;
    }
  g_dir_close (d);
  g_assert_cmpint (count, ==, 1);

  g_assert_finalize_object (listener);
  g_assert_finalize_object (name);
}

static void
test_path_stale_replaced (void)
{
  g_autoptr(GError) error = NULL;
  LsockName *name = lsock_test_path_name ();
  const char *path = lsock_name_get_name (name);
  LsockListener *listener;

  make_stale_socket (path);

  /* (the file system may well give the new file the old inode number) */
  listener = lsock_listener_new (name, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (inode_of (path), ==, _lsock_listener_unix_peek_bound_ino (listener));
  assert_round_trip (listener);

  g_assert_finalize_object (listener);
  g_assert_cmpint (access (path, F_OK), !=, 0);
  g_assert_finalize_object (name);
}

static void
test_path_stale_kept (void)
{
  g_autoptr(GError) error = NULL;
  LsockName *name = lsock_test_path_name ();
  const char *path = lsock_name_get_name (name);
  LsockListener *listener;
  ino_t stale_ino;

  make_stale_socket (path);
  stale_ino = inode_of (path);

  listener = g_initable_new (LSOCK_TYPE_LISTENER, NULL, &error,
                             "name", name,
                             "replace-stale", FALSE,
                             NULL);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_ADDRESS_IN_USE);
  g_assert_null (listener);
  g_assert_cmpuint (inode_of (path), ==, stale_ino);
  g_assert_finalize_object (name);
}

static void
test_path_live_kept (void)
{
  g_autoptr(GError) error = NULL;
  LsockName *name = lsock_test_path_name ();
  const char *path = lsock_name_get_name (name);
  LsockListener *first = lsock_listener_new (name, &error);
  LsockListener *second;
  ino_t ino;

  g_assert_no_error (error);
  ino = inode_of (path);

  second = lsock_listener_new (name, &error);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_ADDRESS_IN_USE);
  g_assert_null (second);
  g_clear_error (&error);

  /* The live one is untouched and still serves */
  g_assert_cmpuint (inode_of (path), ==, ino);
  assert_round_trip (first);

  g_assert_finalize_object (first);
  g_assert_finalize_object (name);
}

static void
test_path_foreign_stale_kept (void)
{
  g_autoptr(GError) error = NULL;
  LsockName *name;
  const char *path;
  LsockListener *listener;

  if (geteuid () != 0)
    {
      g_test_skip ("needs root to make a socket file of another user");
      return;
    }

  name = lsock_test_path_name ();
  path = lsock_name_get_name (name);
  make_stale_socket (path);
  g_assert_cmpint (chown (path, 65534, 65534), ==, 0);

  listener = lsock_listener_new (name, &error);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_ADDRESS_IN_USE);
  g_assert_null (listener);
  g_assert_cmpint (access (path, F_OK), ==, 0);
  g_assert_finalize_object (name);
}

/* Racing starters on one name: exactly one wins, nobody removes its socket */
typedef struct
{
  LsockName     *name;
  GMutex         lock;
  GCond          cond;
  gboolean       go;
  int            n_won;
  int            n_in_use;
  LsockListener *winner;
} Race;

static gpointer
race_thread (gpointer user_data)
{
  Race *race = user_data;
  g_autoptr(GError) error = NULL;
  LsockListener *listener;

  g_mutex_lock (&race->lock);
  while (!race->go)
    g_cond_wait (&race->cond, &race->lock);
  g_mutex_unlock (&race->lock);

  listener = lsock_listener_new (race->name, &error);

  g_mutex_lock (&race->lock);
  if (listener != NULL)
    {
      race->n_won++;
      race->winner = listener;
    }
  else if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_ADDRESS_IN_USE))
    race->n_in_use++;
  else
    g_error ("unexpected error: %s", error->message);
  g_mutex_unlock (&race->lock);

  return NULL;
}

static void
run_race (gboolean stale)
{
  enum { N_THREADS = 8, N_ROUNDS = 20 };

  for (int round = 0; round < N_ROUNDS; round++)
    {
      Race race = { 0 };
      GThread *threads[N_THREADS];
      const char *path;

      race.name = lsock_test_path_name ();
      path = lsock_name_get_name (race.name);
      g_mutex_init (&race.lock);
      g_cond_init (&race.cond);
      if (stale)
        make_stale_socket (path);

      for (int i = 0; i < N_THREADS; i++)
        threads[i] = g_thread_new ("race", race_thread, &race);
      g_mutex_lock (&race.lock);
      race.go = TRUE;
      g_cond_broadcast (&race.cond);
      g_mutex_unlock (&race.lock);
      for (int i = 0; i < N_THREADS; i++)
        g_thread_join (threads[i]);

      g_assert_cmpint (race.n_won, ==, 1);
      g_assert_cmpint (race.n_in_use, ==, N_THREADS - 1);
      /* The winner's socket is the one at the path, and it answers */
      g_assert_cmpuint (inode_of (path), ==, _lsock_listener_unix_peek_bound_ino (race.winner));
      assert_round_trip (race.winner);

      g_assert_finalize_object (race.winner);
      g_assert_cmpint (access (path, F_OK), !=, 0);
      g_assert_finalize_object (race.name);
      g_mutex_clear (&race.lock);
      g_cond_clear (&race.cond);
    }
}

static void
test_path_race_fresh (void)
{
  run_race (FALSE);
}

static void
test_path_race_stale (void)
{
  run_race (TRUE);
}

static void
test_path_reclaim (void)
{
  g_autoptr(GError) error = NULL;
  LsockName *name = lsock_test_path_name ();
  const char *path = lsock_name_get_name (name);
  LsockListener *listener;
  g_autofree char *other = g_strconcat (path, ".other", NULL);

  /* reclaim-name TRUE: the file goes on close */
  listener = lsock_listener_new (name, &error);
  g_assert_no_error (error);
  lsock_listener_close (listener);
  g_assert_true (lsock_listener_is_closed (listener));
  g_assert_cmpint (access (path, F_OK), !=, 0);
  lsock_listener_close (listener);  /* twice is fine */
  g_assert_finalize_object (listener);

  /* reclaim-name FALSE: it stays (stale) */
  listener = lsock_listener_new (name, &error);
  g_assert_no_error (error);
  lsock_listener_set_reclaim_name (listener, FALSE);
  g_assert_false (lsock_listener_get_reclaim_name (listener));
  g_assert_finalize_object (listener);
  g_assert_cmpint (access (path, F_OK), ==, 0);

  /* ...and the next listener replaces it */
  listener = lsock_listener_new (name, &error);
  g_assert_no_error (error);

  /* A file that took the name over since is not ours to remove */
  make_stale_socket (other);
  g_assert_cmpint (rename (other, path), ==, 0);
  lsock_listener_close (listener);
  g_assert_cmpint (access (path, F_OK), ==, 0);
  g_assert_finalize_object (listener);

  g_assert_finalize_object (name);
}

/* A path too long for a temporary name beside it takes the direct route */
static void
test_path_long (void)
{
  g_autoptr(GError) error = NULL;
  const char *dir = lsock_test_tmp_dir ();
  g_autofree char *sub = NULL;
  g_autofree char *path = NULL;
  LsockName *name;
  LsockListener *listener;
  LsockListener *second;
  struct stat st;

  /* A directory of 103 bytes leaves room for a 3-byte base name only */
  {
    g_autofree char *fill = g_strnfill (103 - strlen (dir) - 1, 'd');

    sub = g_strdup_printf ("%s/%s", dir, fill);
  }
  g_assert_cmpint (strlen (sub), ==, 103);
  g_assert_cmpint (g_mkdir (sub, 0700), ==, 0);
  path = g_strdup_printf ("%s/abc", sub);
  g_assert_cmpint (strlen (path), ==, 107);

  name = lsock_name_new_path (path, &error);
  g_assert_no_error (error);

  make_stale_socket (path);
  listener = lsock_listener_new (name, &error);
  g_assert_no_error (error);
  g_assert_cmpint (lstat (path, &st), ==, 0);
  g_assert_cmpint (st.st_mode & 07777, ==, 0600);
  second = lsock_listener_new (name, &error);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_ADDRESS_IN_USE);
  g_assert_null (second);
  g_clear_error (&error);
  assert_round_trip (listener);
  g_assert_finalize_object (listener);
  g_assert_cmpint (access (path, F_OK), !=, 0);
  g_assert_finalize_object (name);
}

#endif /* G_OS_UNIX: path tests */

static void
test_namespaced_in_use (void)
{
  g_autoptr(GError) error = NULL;
  LsockName *name = lsock_test_namespaced_name ();
  LsockListener *first = lsock_listener_new (name, &error);
  LsockListener *second;

  g_assert_no_error (error);
  second = lsock_listener_new (name, &error);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_ADDRESS_IN_USE);
  g_assert_null (second);
  g_clear_error (&error);

  /* Closing frees the name at once */
  lsock_listener_close (first);
  second = lsock_listener_new (name, &error);
  g_assert_no_error (error);

  g_assert_finalize_object (first);
  g_assert_finalize_object (second);
  g_assert_finalize_object (name);
}

#ifdef G_OS_UNIX
static void
assert_cloexec (int fd)
{
  int flags = fcntl (fd, F_GETFD);

  g_assert_cmpint (flags, >=, 0);
  g_assert_true (flags & FD_CLOEXEC);
}

static void
test_cloexec (void)
{
  g_autoptr(GError) error = NULL;
  LsockName *name = lsock_test_path_name ();
  LsockListener *listener = lsock_listener_new (name, &error);
  LsockStream *client;
  LsockStream *server;

  g_assert_no_error (error);
  client = lsock_stream_connect (name, NULL, &error);
  g_assert_no_error (error);
  server = lsock_listener_accept (listener, NULL, &error);
  g_assert_no_error (error);

  assert_cloexec (_lsock_listener_unix_peek_fd (listener));
  assert_cloexec (_lsock_unix_conn_peek_fd (client->conn));
  assert_cloexec (_lsock_unix_conn_peek_fd (server->conn));

  g_assert_finalize_object (client);
  g_assert_finalize_object (server);
  g_assert_finalize_object (listener);
  g_assert_finalize_object (name);
}

#endif /* G_OS_UNIX: cloexec */

static void
test_accept_async (void)
{
  g_autoptr(GError) error = NULL;
  LsockName *name = lsock_test_namespaced_name ();
  LsockListener *listener = lsock_listener_new (name, &error);
  GAsyncResult *result = NULL;
  LsockStream *client;
  LsockStream *server;

  g_assert_no_error (error);
  lsock_listener_accept_async (listener, NULL, lsock_test_store_result, &result);
  /* Nothing to accept yet: the main loop is idle, not spinning */
  g_assert_false (g_main_context_iteration (NULL, FALSE));
  g_assert_null (result);

  client = lsock_stream_connect (name, NULL, &error);
  g_assert_no_error (error);
  lsock_test_wait_until (result != NULL);
  server = lsock_listener_accept_finish (listener, result, &error);
  g_assert_no_error (error);
  g_assert_nonnull (server);
  g_assert_true (lsock_stream_get_name (server) == name);
  g_clear_object (&result);

  g_assert_finalize_object (client);
  g_assert_finalize_object (server);
  g_assert_finalize_object (listener);
  g_assert_finalize_object (name);
}

static void
test_accept_async_close (void)
{
  g_autoptr(GError) error = NULL;
  LsockName *name = lsock_test_namespaced_name ();
  LsockListener *listener = lsock_listener_new (name, &error);
  GAsyncResult *result = NULL;
  LsockStream *server;

  g_assert_no_error (error);
  lsock_listener_accept_async (listener, NULL, lsock_test_store_result, &result);
  lsock_listener_close (listener);
  lsock_test_wait_until (result != NULL);
  server = lsock_listener_accept_finish (listener, result, &error);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CLOSED);
  g_assert_null (server);
  g_clear_object (&result);

  g_assert_finalize_object (listener);
  g_assert_finalize_object (name);
}

typedef struct
{
  GPtrArray *streams;
  int        n_errors;
} Incoming;

static gboolean
on_incoming (LsockListener *listener,
             LsockStream   *stream,
             gpointer       user_data)
{
  Incoming *incoming = user_data;

  g_ptr_array_add (incoming->streams, g_object_ref (stream));
  return TRUE;
}

#ifdef G_OS_UNIX
static void
on_accept_error (LsockListener *listener,
                 GError        *error,
                 gpointer       user_data)
{
  Incoming *incoming = user_data;

  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_TOO_MANY_OPEN_FILES);
  incoming->n_errors++;
}

#endif /* G_OS_UNIX: on_accept_error */

static void
test_incoming (void)
{
  g_autoptr(GError) error = NULL;
  LsockName *name = lsock_test_namespaced_name ();
  LsockListener *listener = lsock_listener_new (name, &error);
  Incoming incoming = { g_ptr_array_new_with_free_func (g_object_unref), 0 };
  LsockStream *clients[3];

  g_assert_no_error (error);
  g_signal_connect (listener, "incoming", G_CALLBACK (on_incoming), &incoming);

  lsock_listener_start (listener);
  g_assert_true (lsock_listener_is_active (listener));
  lsock_listener_start (listener);  /* no-op */

  for (int i = 0; i < 3; i++)
    {
      clients[i] = lsock_stream_connect (name, NULL, &error);
      g_assert_no_error (error);
    }
  lsock_test_wait_until (incoming.streams->len == 3);

  /* Stopped: peers wait in the backlog */
  lsock_listener_stop (listener);
  g_assert_false (lsock_listener_is_active (listener));
  {
    LsockStream *late = lsock_stream_connect (name, NULL, &error);
    LsockStream *accepted;

    g_assert_no_error (error);
    while (g_main_context_iteration (NULL, FALSE));
    g_assert_cmpuint (incoming.streams->len, ==, 3);
    lsock_listener_start (listener);
    lsock_test_wait_until (incoming.streams->len == 4);
    accepted = g_ptr_array_index (incoming.streams, 3);
    g_assert_true (lsock_stream_get_name (accepted) == name);
    g_assert_finalize_object (late);
  }

  lsock_listener_close (listener);
  g_assert_false (lsock_listener_is_active (listener));
  for (int i = 0; i < 3; i++)
    g_assert_finalize_object (clients[i]);
  g_ptr_array_unref (incoming.streams);
  g_assert_finalize_object (listener);
  g_assert_finalize_object (name);
}

/* Out of descriptors: sync accept reports it, incoming backs off instead of
 * spinning, and both recover when descriptors are free again */
#ifdef G_OS_UNIX
static void
test_emfile (void)
{
  g_autoptr(GError) error = NULL;
  LsockName *name = lsock_test_namespaced_name ();
  LsockListener *listener = lsock_listener_new (name, &error);
  Incoming incoming = { g_ptr_array_new_with_free_func (g_object_unref), 0 };
  LsockStream *client1;
  LsockStream *client2;
  LsockStream *server;
  struct rlimit old_limit, limit;
  GArray *fillers = g_array_new (FALSE, FALSE, sizeof (int));
  int fd;

  g_assert_no_error (error);
#ifdef HAVE_VALGRIND_VALGRIND_H
  if (RUNNING_ON_VALGRIND)
    {
      /* valgrind emulates RLIMIT_NOFILE with descriptors of its own */
      g_test_skip ("valgrind does not keep to RLIMIT_NOFILE as the kernel does");
      g_array_unref (fillers);
      g_ptr_array_unref (incoming.streams);
      g_assert_finalize_object (listener);
      g_assert_finalize_object (name);
      return;
    }
#endif
  g_signal_connect (listener, "incoming", G_CALLBACK (on_incoming), &incoming);
  g_signal_connect (listener, "accept-error", G_CALLBACK (on_accept_error), &incoming);

  client1 = lsock_stream_connect (name, NULL, &error);
  g_assert_no_error (error);
  client2 = lsock_stream_connect (name, NULL, &error);
  g_assert_no_error (error);

  /* The main context's own wakeup fd must exist before descriptors run out */
  while (g_main_context_iteration (NULL, FALSE));

  /* Use up every descriptor below a low limit */
  g_assert_cmpint (getrlimit (RLIMIT_NOFILE, &old_limit), ==, 0);
  limit = old_limit;
  limit.rlim_cur = lsock_test_count_fds () + 16;
  g_assert_cmpint (setrlimit (RLIMIT_NOFILE, &limit), ==, 0);
  while ((fd = open ("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0)
    g_array_append_val (fillers, fd);
  g_assert_cmpint (errno, ==, EMFILE);

  server = lsock_listener_accept (listener, NULL, &error);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_TOO_MANY_OPEN_FILES);
  g_assert_null (server);
  g_clear_error (&error);

  lsock_listener_start (listener);
  lsock_test_wait_until (incoming.n_errors == 1);
  /* Backing off: the socket is no longer watched (it stays readable, so
   * watching it would spin); a timer will look again */
  g_assert_null (listener->incoming_source);
  g_assert_nonnull (listener->backoff_source);
  g_assert_cmpuint (listener->backoff_ms, ==, 10);
  g_assert_true (lsock_listener_is_active (listener));
  /* ...and the next failure waits twice as long */
  lsock_test_wait_until (incoming.n_errors == 2);
  g_assert_null (listener->incoming_source);
  g_assert_cmpuint (listener->backoff_ms, ==, 20);

  /* Free descriptors: both queued peers arrive */
  for (guint i = 0; i < fillers->len; i++)
    close (g_array_index (fillers, int, i));
  g_array_unref (fillers);
  lsock_test_wait_until (incoming.streams->len == 2);
  g_assert_cmpint (setrlimit (RLIMIT_NOFILE, &old_limit), ==, 0);

  lsock_listener_close (listener);
  g_ptr_array_unref (incoming.streams);
  g_assert_finalize_object (client1);
  g_assert_finalize_object (client2);
  g_assert_finalize_object (listener);
  g_assert_finalize_object (name);
}

#endif /* G_OS_UNIX: test_emfile */

static void
test_initable (void)
{
  g_autoptr(GError) error = NULL;
  LsockName *name = lsock_test_namespaced_name ();
  g_autofree char *shown = lsock_name_to_string (name);
  LsockListener *listener;

  /* Constructed without init: not listening, and says so plainly */
  listener = g_object_new (LSOCK_TYPE_LISTENER, "name", name, "backlog", 7, NULL);
  g_assert_cmpint (lsock_listener_get_backlog (listener), ==, 7);
  g_assert_null (lsock_listener_accept (listener, NULL, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_NOT_INITIALIZED);
  g_assert_nonnull (strstr (error->message, "not initialised"));
  g_assert_nonnull (strstr (error->message, shown));
  g_clear_error (&error);
  {
    GAsyncResult *result = NULL;

    lsock_listener_accept_async (listener, NULL, lsock_test_store_result, &result);
    lsock_test_wait_until (result != NULL);
    g_assert_null (lsock_listener_accept_finish (listener, result, &error));
    g_assert_error (error, G_IO_ERROR, G_IO_ERROR_NOT_INITIALIZED);
    g_clear_error (&error);
    g_clear_object (&result);
  }

  g_assert_true (g_initable_init (G_INITABLE (listener), NULL, &error));
  g_assert_no_error (error);
  g_assert_true (g_initable_init (G_INITABLE (listener), NULL, &error));
  assert_round_trip (listener);
  g_assert_finalize_object (listener);
  g_assert_finalize_object (name);
}


/* ---- accept_async: the shared source ----------------------------------- */


/* A client that says who it is: its first byte is @tag */
static LsockStream *
connect_tagged (LsockName *name,
                guint8     tag)
{
  g_autoptr(GError) error = NULL;
  LsockStream *client = lsock_stream_connect (name, NULL, &error);
  gsize n = 0;

  g_assert_no_error (error);
  g_output_stream_write_all (g_io_stream_get_output_stream (G_IO_STREAM (client)),
                             &tag, 1, &n, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (n, ==, 1);
  return client;
}

/* @server is the accepted end of @client: it reads @client's tag and
 * answers, and @client gets the answer */
static void
assert_peers (LsockStream *server,
              LsockStream *client,
              guint8       tag)
{
  g_autoptr(GError) error = NULL;
  guint8 byte = 0;
  guint8 answer = tag ^ 0xa5;
  gsize n = 0;

  g_assert_nonnull (server);
  g_input_stream_read_all (g_io_stream_get_input_stream (G_IO_STREAM (server)),
                           &byte, 1, &n, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (n, ==, 1);
  g_assert_cmpuint (byte, ==, tag);

  g_output_stream_write_all (g_io_stream_get_output_stream (G_IO_STREAM (server)),
                             &answer, 1, &n, NULL, &error);
  g_assert_no_error (error);
  byte = 0;
  g_input_stream_read_all (g_io_stream_get_input_stream (G_IO_STREAM (client)),
                           &byte, 1, &n, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (n, ==, 1);
  g_assert_cmpuint (byte, ==, answer);
}

/* Records the outcome of each accept_async and the order of the callbacks */
#define N_SLOTS 8

typedef struct _AcceptLog AcceptLog;

typedef struct
{
  AcceptLog *log;
  guint      index;
} AcceptSlot;

struct _AcceptLog
{
  LsockListener *listener;
  AcceptSlot     slots[N_SLOTS];
  LsockStream   *streams[N_SLOTS];
  GError        *errors[N_SLOTS];
  guint          n_calls[N_SLOTS];
  guint          order[N_SLOTS];
  guint          n_done;
  /* Called at the end of the callback of that slot, if set */
  void         (*then[N_SLOTS]) (AcceptLog *log);
};

static void
accept_log_cb (GObject      *source,
               GAsyncResult *result,
               gpointer      user_data)
{
  AcceptSlot *slot = user_data;
  AcceptLog *log = slot->log;
  guint i = slot->index;

  g_assert_true (source == G_OBJECT (log->listener));
  g_assert_cmpuint (log->n_calls[i], ==, 0);
  log->n_calls[i]++;
  g_assert_cmpuint (log->n_done, <, N_SLOTS);
  log->order[log->n_done++] = i;

  log->streams[i] = lsock_listener_accept_finish (log->listener, result, &log->errors[i]);
  g_assert_true ((log->streams[i] != NULL) != (log->errors[i] != NULL));

  if (log->then[i] != NULL)
    log->then[i] (log);
}

static void
accept_log_start (AcceptLog    *log,
                  guint         index,
                  GCancellable *cancellable)
{
  g_assert_cmpuint (index, <, N_SLOTS);
  log->slots[index].log = log;
  log->slots[index].index = index;
  lsock_listener_accept_async (log->listener, cancellable, accept_log_cb, &log->slots[index]);
}

static void
accept_log_clear (AcceptLog *log)
{
  for (guint i = 0; i < N_SLOTS; i++)
    {
      g_clear_error (&log->errors[i]);
      lsock_test_close_and_finalize_stream (&log->streams[i]);
    }
}

/* The end of a test: closes and finalizes what @log holds, its listener
 * and @name, and checks that no fd was left open */
static void
accept_log_finish (AcceptLog *log,
                   LsockName *name,
                   int        fds_before)
{
  accept_log_clear (log);
  lsock_test_close_and_finalize_listener (&log->listener);
  g_assert_finalize_object (name);
  lsock_test_assert_fd_count (fds_before);
}

/* Three accepts queued before anybody connects: each gets its own peer, in
 * the order the accepts were made */
static void
test_accept_async_queued (void)
{
  g_autoptr(GError) error = NULL;
  int fds_before = lsock_test_settled_fd_count ();
  LsockName *name = lsock_test_namespaced_name ();
  AcceptLog log = { 0 };
  LsockStream *clients[3];

  log.listener = lsock_listener_new (name, &error);
  g_assert_no_error (error);

  for (guint i = 0; i < 3; i++)
    accept_log_start (&log, i, NULL);
  /* They wait on one source */
  g_assert_cmpuint (_lsock_listener_count_accept_sources (log.listener), ==, 1);
  lsock_test_drain_main_context ();
  g_assert_cmpuint (log.n_done, ==, 0);

  for (guint i = 0; i < 3; i++)
    clients[i] = connect_tagged (name, 'a' + i);
  lsock_test_wait_until (log.n_done == 3);
  lsock_test_drain_main_context ();
  g_assert_cmpuint (log.n_done, ==, 3);

  for (guint i = 0; i < 3; i++)
    {
      g_assert_cmpuint (log.order[i], ==, i);
      g_assert_cmpuint (log.n_calls[i], ==, 1);
      g_assert_no_error (log.errors[i]);
      g_assert_true (lsock_stream_get_name (log.streams[i]) == name);
      for (guint j = 0; j < i; j++)
        g_assert_true (log.streams[i] != log.streams[j]);
      /* The backlog is FIFO too: the first accept has the first client */
      assert_peers (log.streams[i], clients[i], 'a' + i);
    }

  for (guint i = 0; i < 3; i++)
    lsock_test_close_and_finalize_stream (&clients[i]);
  accept_log_finish (&log, name, fds_before);
}

typedef struct
{
  LsockListener *listener;
  LsockStream   *streams[3];
  guint          n_done;
  gboolean       in_call;       /* inside accept_async() */
  guint          n_inside;      /* callbacks that ran inside it */
  guint          n_sourceless;  /* callbacks that found no accept source */
} ChainLog;

static void
chain_accept (ChainLog *log);

static void
chained_accept_cb (GObject      *source,
                   GAsyncResult *result,
                   gpointer      user_data)
{
  ChainLog *log = user_data;
  g_autoptr(GError) error = NULL;

  if (log->in_call)
    log->n_inside++;
  if (_lsock_listener_count_accept_sources (log->listener) != 1)
    log->n_sourceless++;
  log->streams[log->n_done] = lsock_listener_accept_finish (log->listener, result, &error);
  g_assert_no_error (error);
  if (++log->n_done < G_N_ELEMENTS (log->streams))
    chain_accept (log);
}

static void
chain_accept (ChainLog *log)
{
  log->in_call = TRUE;
  lsock_listener_accept_async (log->listener, NULL, chained_accept_cb, log);
  log->in_call = FALSE;
}

/* Accepts chained from the callback, with the peers already queued: each
 * is reported after its accept_async() returned, all of them in the one
 * dispatch that found the first (not a main loop iteration each), and the
 * shared source stays in place between them rather than being destroyed
 * and made again */
static void
test_accept_async_chained (void)
{
  g_autoptr(GError) error = NULL;
  int fds_before = lsock_test_settled_fd_count ();
  LsockName *name = lsock_test_namespaced_name ();
  ChainLog log = { 0 };
  LsockStream *clients[3];

  log.listener = lsock_listener_new (name, &error);
  g_assert_no_error (error);
  for (guint i = 0; i < 3; i++)
    clients[i] = connect_tagged (name, 'a' + i);

  chain_accept (&log);
  g_assert_cmpuint (log.n_done, ==, 0);
  /* The listening socket is readable: the first iteration serves all */
  g_main_context_iteration (NULL, TRUE);
  g_assert_cmpuint (log.n_done, ==, 3);
  g_assert_cmpuint (log.n_inside, ==, 0);
  g_assert_cmpuint (log.n_sourceless, ==, 0);

  for (guint i = 0; i < 3; i++)
    {
      assert_peers (log.streams[i], clients[i], 'a' + i);
      lsock_test_close_and_finalize_stream (&log.streams[i]);
      lsock_test_close_and_finalize_stream (&clients[i]);
    }
  /* Nothing waits: the source goes once the context runs */
  lsock_test_drain_main_context ();
  g_assert_cmpuint (_lsock_listener_count_accept_sources (log.listener), ==, 0);
  lsock_test_close_and_finalize_listener (&log.listener);
  g_assert_finalize_object (name);
  lsock_test_assert_fd_count (fds_before);
}

/* Accepts with a cancellable wait on a source of their own, beside the
 * shared one: cancelling one of them leaves the others waiting */
static void
test_accept_async_mixed_cancellable (void)
{
  g_autoptr(GError) error = NULL;
  int fds_before = lsock_test_settled_fd_count ();
  LsockName *name = lsock_test_namespaced_name ();
  GCancellable *cancellable = g_cancellable_new ();
  GCancellable *uncancelled = g_cancellable_new ();
  AcceptLog log = { 0 };
  LsockStream *clients[3];

  log.listener = lsock_listener_new (name, &error);
  g_assert_no_error (error);

  accept_log_start (&log, 0, NULL);
  accept_log_start (&log, 1, cancellable);
  accept_log_start (&log, 2, NULL);
  lsock_test_drain_main_context ();
  g_assert_cmpuint (log.n_done, ==, 0);

  g_cancellable_cancel (cancellable);
  lsock_test_wait_until (log.n_done == 1);
  g_assert_cmpuint (log.order[0], ==, 1);
  g_assert_error (log.errors[1], G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_assert_null (log.streams[1]);
  /* The others still wait */
  lsock_test_drain_main_context ();
  g_assert_cmpuint (log.n_done, ==, 1);

  clients[0] = connect_tagged (name, 'a');
  clients[1] = connect_tagged (name, 'b');
  lsock_test_wait_until (log.n_done == 3);
  g_assert_cmpuint (log.order[1], ==, 0);
  g_assert_cmpuint (log.order[2], ==, 2);
  g_assert_no_error (log.errors[0]);
  g_assert_no_error (log.errors[2]);
  assert_peers (log.streams[0], clients[0], 'a');
  assert_peers (log.streams[2], clients[1], 'b');

  /* An accept with a cancellable that stays uncancelled gets its peer */
  accept_log_start (&log, 3, uncancelled);
  clients[2] = connect_tagged (name, 'c');
  lsock_test_wait_until (log.n_done == 4);
  g_assert_no_error (log.errors[3]);
  assert_peers (log.streams[3], clients[2], 'c');

  lsock_test_drain_main_context ();
  for (guint i = 0; i < 4; i++)
    g_assert_cmpuint (log.n_calls[i], ==, 1);

  for (guint i = 0; i < 3; i++)
    lsock_test_close_and_finalize_stream (&clients[i]);
  accept_log_clear (&log);
  lsock_test_close_and_finalize_listener (&log.listener);
  g_assert_finalize_object (cancellable);
  g_assert_finalize_object (uncancelled);
  g_assert_finalize_object (name);
  lsock_test_assert_fd_count (fds_before);
}

/* An accept callback that accepts again and runs the main context until
 * that accept is done: the source that is calling it back must serve the
 * nested accept (it can recurse), and nobody is lost on the way */
typedef struct
{
  LsockName     *name;
  LsockListener *listener;
  gboolean       peer_first;  /* the second peer comes before the accept */
  LsockStream   *clients[3];
  LsockStream   *servers[3];
  guint          n_done;
  gboolean       outer_returned;
} Reentrant;

static void
reentrant_inner_cb (GObject      *source,
                    GAsyncResult *result,
                    gpointer      user_data)
{
  Reentrant *r = user_data;
  g_autoptr(GError) error = NULL;

  g_assert_cmpuint (r->n_done, ==, 1);
  g_assert_false (r->outer_returned);
  r->servers[1] = lsock_listener_accept_finish (r->listener, result, &error);
  g_assert_no_error (error);
  r->n_done++;
}

static void
reentrant_outer_cb (GObject      *source,
                    GAsyncResult *result,
                    gpointer      user_data)
{
  Reentrant *r = user_data;
  g_autoptr(GError) error = NULL;

  g_assert_cmpuint (r->n_done, ==, 0);
  r->servers[0] = lsock_listener_accept_finish (r->listener, result, &error);
  g_assert_no_error (error);
  r->n_done++;

  if (r->peer_first)
    {
      /* A peer while no accept is pending: the shared source sees it
       * (from inside its own dispatch), finds nobody to give it to and
       * goes; the peer stays queued */
      r->clients[1] = connect_tagged (r->name, 'b');
      lsock_test_drain_main_context ();
      g_assert_cmpuint (r->n_done, ==, 1);
      g_assert_cmpuint (_lsock_listener_count_accept_sources (r->listener), ==, 0);
      lsock_listener_accept_async (r->listener, NULL, reentrant_inner_cb, r);
    }
  else
    {
      lsock_listener_accept_async (r->listener, NULL, reentrant_inner_cb, r);
      r->clients[1] = connect_tagged (r->name, 'b');
    }

  lsock_test_wait_until (r->n_done >= 2);
}

static void
test_accept_async_reentrant (gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  int fds_before = lsock_test_settled_fd_count ();
  Reentrant r = { 0 };
  GAsyncResult *result = NULL;

  r.peer_first = GPOINTER_TO_INT (data);
  r.name = lsock_test_namespaced_name ();
  r.listener = lsock_listener_new (r.name, &error);
  g_assert_no_error (error);

  lsock_listener_accept_async (r.listener, NULL, reentrant_outer_cb, &r);
  r.clients[0] = connect_tagged (r.name, 'a');
  lsock_test_wait_until (r.n_done == 2);
  r.outer_returned = TRUE;
  lsock_test_drain_main_context ();
  g_assert_cmpuint (r.n_done, ==, 2);

  assert_peers (r.servers[0], r.clients[0], 'a');
  assert_peers (r.servers[1], r.clients[1], 'b');

  /* And the listener still accepts, asynchronously */
  lsock_listener_accept_async (r.listener, NULL, lsock_test_store_result, &result);
  r.clients[2] = connect_tagged (r.name, 'c');
  lsock_test_wait_until (result != NULL);
  r.servers[2] = lsock_listener_accept_finish (r.listener, result, &error);
  g_assert_no_error (error);
  g_clear_object (&result);
  assert_peers (r.servers[2], r.clients[2], 'c');

  for (guint i = 0; i < 3; i++)
    {
      lsock_test_close_and_finalize_stream (&r.clients[i]);
      lsock_test_close_and_finalize_stream (&r.servers[i]);
    }
  lsock_test_close_and_finalize_listener (&r.listener);
  g_assert_finalize_object (r.name);
  lsock_test_assert_fd_count (fds_before);
}

/* The chain of accepts stops; a peer comes while nothing is pending (the
 * shared source dispatches and goes); a later accept still gets it */
static void
test_accept_async_peer_while_idle (void)
{
  g_autoptr(GError) error = NULL;
  int fds_before = lsock_test_settled_fd_count ();
  LsockName *name = lsock_test_namespaced_name ();
  AcceptLog log = { 0 };
  LsockStream *clients[3];

  log.listener = lsock_listener_new (name, &error);
  g_assert_no_error (error);

  accept_log_start (&log, 0, NULL);
  clients[0] = connect_tagged (name, 'a');
  lsock_test_wait_until (log.n_done == 1);
  g_assert_no_error (log.errors[0]);
  assert_peers (log.streams[0], clients[0], 'a');

  for (guint round = 1; round < 3; round++)
    {
      clients[round] = connect_tagged (name, 'a' + round);
      lsock_test_drain_main_context ();
      /* Nobody accepted it; the source that found nobody waiting is gone */
      g_assert_cmpuint (log.n_done, ==, round);
      g_assert_cmpuint (_lsock_listener_count_accept_sources (log.listener), ==, 0);

      accept_log_start (&log, round, NULL);
      lsock_test_wait_until (log.n_done == round + 1);
      g_assert_no_error (log.errors[round]);
      assert_peers (log.streams[round], clients[round], 'a' + round);
    }

  for (guint i = 0; i < 3; i++)
    {
      g_assert_cmpuint (log.order[i], ==, i);
      lsock_test_close_and_finalize_stream (&clients[i]);
    }
  accept_log_finish (&log, name, fds_before);
}

/* close() fails every pending accept, shared source or not, and the
 * listener finalizes */
static void
test_accept_async_close_shared (void)
{
  g_autoptr(GError) error = NULL;
  int fds_before = lsock_test_settled_fd_count ();
  LsockName *name = lsock_test_namespaced_name ();
  GCancellable *cancellable = g_cancellable_new ();
  AcceptLog log = { 0 };

  log.listener = lsock_listener_new (name, &error);
  g_assert_no_error (error);

  accept_log_start (&log, 0, NULL);
  accept_log_start (&log, 1, NULL);
  accept_log_start (&log, 2, cancellable);
  accept_log_start (&log, 3, NULL);
  lsock_test_drain_main_context ();
  g_assert_cmpuint (log.n_done, ==, 0);

  lsock_listener_close (log.listener);
  g_assert_cmpuint (_lsock_listener_count_accept_sources (log.listener), ==, 0);
  lsock_test_wait_until (log.n_done == 4);
  lsock_test_drain_main_context ();
  for (guint i = 0; i < 4; i++)
    {
      g_assert_cmpuint (log.n_calls[i], ==, 1);
      g_assert_error (log.errors[i], G_IO_ERROR, G_IO_ERROR_CLOSED);
      g_assert_null (log.streams[i]);
    }

  /* Later accepts fail too, and nothing is left waiting */
  accept_log_start (&log, 4, NULL);
  lsock_test_wait_until (log.n_done == 5);
  g_assert_error (log.errors[4], G_IO_ERROR, G_IO_ERROR_CLOSED);
  g_assert_cmpuint (_lsock_listener_count_accept_sources (log.listener), ==, 0);

  accept_log_clear (&log);
  g_assert_finalize_object (log.listener);
  g_assert_finalize_object (cancellable);
  g_assert_finalize_object (name);
  lsock_test_assert_fd_count (fds_before);
}

static void
close_listener_then (AcceptLog *log)
{
  lsock_listener_close (log->listener);
}

/* close() from the callback of one accept, with the others still queued
 * on the source that is calling back */
static void
test_accept_async_close_in_callback (void)
{
  g_autoptr(GError) error = NULL;
  int fds_before = lsock_test_settled_fd_count ();
  LsockName *name = lsock_test_namespaced_name ();
  AcceptLog log = { 0 };
  LsockStream *client;

  log.listener = lsock_listener_new (name, &error);
  g_assert_no_error (error);

  log.then[0] = close_listener_then;
  for (guint i = 0; i < 3; i++)
    accept_log_start (&log, i, NULL);
  client = connect_tagged (name, 'a');
  lsock_test_wait_until (log.n_done == 3);
  lsock_test_drain_main_context ();

  g_assert_cmpuint (log.order[0], ==, 0);
  g_assert_no_error (log.errors[0]);
  assert_peers (log.streams[0], client, 'a');
  for (guint i = 1; i < 3; i++)
    {
      g_assert_cmpuint (log.n_calls[i], ==, 1);
      g_assert_error (log.errors[i], G_IO_ERROR, G_IO_ERROR_CLOSED);
    }
  g_assert_true (lsock_listener_is_closed (log.listener));
  g_assert_cmpuint (_lsock_listener_count_accept_sources (log.listener), ==, 0);

  lsock_test_close_and_finalize_stream (&client);
  accept_log_clear (&log);
  g_assert_finalize_object (log.listener);
  g_assert_finalize_object (name);
  lsock_test_assert_fd_count (fds_before);
}

/* The chain of accepts ends: the source goes as soon as nothing waits,
 * the last reference then finalizes the listener, and nothing calls into
 * it again */
static void
test_accept_async_finalize_idle (void)
{
  g_autoptr(GError) error = NULL;
  int fds_before = lsock_test_settled_fd_count ();
  LsockName *name = lsock_test_namespaced_name ();
  AcceptLog log = { 0 };
  LsockStream *client;
  LsockStream *late;

  log.listener = lsock_listener_new (name, &error);
  g_assert_no_error (error);

  accept_log_start (&log, 0, NULL);
  client = connect_tagged (name, 'a');
  lsock_test_wait_until (log.n_done == 1);
  assert_peers (log.streams[0], client, 'a');
  lsock_test_drain_main_context ();
  g_assert_cmpuint (_lsock_listener_count_accept_sources (log.listener), ==, 0);

  g_assert_finalize_object (g_steal_pointer (&log.listener));
  /* The name is free again, and nothing watches the old socket */
  late = lsock_stream_connect (name, NULL, &error);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND);
  g_assert_null (late);
  lsock_test_drain_main_context ();
  g_assert_cmpuint (log.n_done, ==, 1);

  lsock_test_close_and_finalize_stream (&client);
  accept_log_clear (&log);
  g_assert_finalize_object (name);
  lsock_test_assert_fd_count (fds_before);
}

/* A sync accept in another thread, possibly already asleep in a blocking
 * accept(), while this thread accepts asynchronously (which makes the
 * socket non-blocking): each gets one of two peers, none is lost */
typedef struct
{
  LsockListener *listener;
  LsockStream   *stream;
  GError        *error;
} SyncAccept;

static gpointer
sync_accept_thread (gpointer user_data)
{
  SyncAccept *sa = user_data;

  sa->stream = lsock_listener_accept (sa->listener, NULL, &sa->error);
  return NULL;
}

/* Reads the tag a client sent to @server, answers it, and returns it */
static guint8
answer_tag (LsockStream *server,
            LsockStream *clients[],
            guint8       first_tag)
{
  g_autoptr(GError) error = NULL;
  LsockStream *client;
  guint8 tag = 0;
  guint8 answer;
  guint8 got = 0;
  gsize n = 0;

  g_input_stream_read_all (g_io_stream_get_input_stream (G_IO_STREAM (server)),
                           &tag, 1, &n, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (n, ==, 1);
  g_assert_cmpuint (tag, >=, first_tag);
  g_assert_cmpuint (tag, <=, first_tag + 1);

  answer = tag ^ 0xa5;
  g_output_stream_write_all (g_io_stream_get_output_stream (G_IO_STREAM (server)),
                             &answer, 1, &n, NULL, &error);
  g_assert_no_error (error);
  client = clients[tag - first_tag];
  g_input_stream_read_all (g_io_stream_get_input_stream (G_IO_STREAM (client)),
                           &got, 1, &n, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (n, ==, 1);
  g_assert_cmpuint (got, ==, answer);
  return tag;
}

static void
test_accept_async_with_sync_accept (void)
{
  g_autoptr(GError) error = NULL;
  int fds_before = lsock_test_settled_fd_count ();
  LsockName *name = lsock_test_namespaced_name ();
  SyncAccept sa = { 0 };
  GAsyncResult *result = NULL;
  LsockStream *clients[2];
  LsockStream *server;
  GThread *thread;

  for (guint round = 0; round < 20; round++)
    {
      sa.listener = lsock_listener_new (name, &error);
      g_assert_no_error (error);

      thread = g_thread_new ("sync-accept", sync_accept_thread, &sa);
      lsock_listener_accept_async (sa.listener, NULL, lsock_test_store_result, &result);
      clients[0] = connect_tagged (name, 'a');
      clients[1] = connect_tagged (name, 'b');
      lsock_test_wait_until (result != NULL);
      g_thread_join (thread);

      server = lsock_listener_accept_finish (sa.listener, result, &error);
      g_assert_no_error (error);
      g_clear_object (&result);
      g_assert_no_error (sa.error);
      g_assert_nonnull (sa.stream);
      g_assert_true (server != sa.stream);
      g_assert_cmpuint (answer_tag (server, clients, 'a') + answer_tag (sa.stream, clients, 'a'),
                        ==, 'a' + 'b');

      lsock_test_close_and_finalize_stream (&server);
      lsock_test_close_and_finalize_stream (&sa.stream);
      for (guint i = 0; i < 2; i++)
        lsock_test_close_and_finalize_stream (&clients[i]);
      lsock_test_close_and_finalize_listener (&sa.listener);
    }

  g_assert_finalize_object (name);
  lsock_test_assert_fd_count (fds_before);
}

/* "incoming" handlers that run the main context: each peer is emitted
 * exactly once, none is lost */
typedef struct
{
  LsockName *name;
  GPtrArray *servers;   /* emitted, in order */
  GPtrArray *clients;   /* by tag */
  guint      depth;
  guint      max_depth;
  guint      n_nested;  /* handlers that connected and waited */
} NestedIncoming;

#define N_NESTED_WAITS 3

static gboolean
on_incoming_nested (LsockListener *listener,
                    LsockStream   *stream,
                    gpointer       user_data)
{
  NestedIncoming *ni = user_data;

  for (guint i = 0; i < ni->servers->len; i++)
    g_assert_true (g_ptr_array_index (ni->servers, i) != stream);
  g_ptr_array_add (ni->servers, g_object_ref (stream));

  ni->depth++;
  ni->max_depth = MAX (ni->max_depth, ni->depth);
  if (ni->depth == 1 && ni->n_nested < N_NESTED_WAITS)
    {
      guint want = ni->servers->len + 1;

      /* Connect one more and wait for it from in here */
      ni->n_nested++;
      g_ptr_array_add (ni->clients, connect_tagged (ni->name, ni->clients->len));
      lsock_test_wait_until (ni->servers->len >= want);
    }
  ni->depth--;

  return TRUE;
}

static void
test_incoming_nested (void)
{
  g_autoptr(GError) error = NULL;
  int fds_before = lsock_test_settled_fd_count ();
  NestedIncoming ni = { 0 };
  LsockListener *listener;
  guint n_clients;
  guint8 seen[16] = { 0 };

  ni.name = lsock_test_namespaced_name ();
  ni.servers = g_ptr_array_new ();
  ni.clients = g_ptr_array_new ();
  listener = lsock_listener_new (ni.name, &error);
  g_assert_no_error (error);
  g_signal_connect (listener, "incoming", G_CALLBACK (on_incoming_nested), &ni);

  /* Some already queued when it starts */
  for (guint i = 0; i < 3; i++)
    g_ptr_array_add (ni.clients, connect_tagged (ni.name, ni.clients->len));
  lsock_listener_start (listener);
  lsock_test_wait_until (ni.servers->len == ni.clients->len);
  g_assert_cmpuint (ni.n_nested, ==, 1);
  /* ...and some after, one at a time */
  for (guint i = 0; i < 3; i++)
    {
      g_ptr_array_add (ni.clients, connect_tagged (ni.name, ni.clients->len));
      lsock_test_wait_until (ni.servers->len == ni.clients->len);
    }
  lsock_test_drain_main_context ();

  n_clients = ni.clients->len;
  g_assert_cmpuint (ni.n_nested, ==, N_NESTED_WAITS);
  g_assert_cmpuint (n_clients, ==, 3 + 3 + N_NESTED_WAITS);
  g_assert_cmpuint (ni.servers->len, ==, n_clients);
  g_assert_cmpuint (ni.max_depth, ==, 2);
  g_assert_cmpuint (ni.depth, ==, 0);

  /* Each accepted stream is a different client, and each client is
   * answered */
  for (guint i = 0; i < n_clients; i++)
    {
      LsockStream *server = g_ptr_array_index (ni.servers, i);
      g_autoptr(GError) read_error = NULL;
      guint8 tag = 0xff;
      gsize n = 0;

      g_input_stream_read_all (g_io_stream_get_input_stream (G_IO_STREAM (server)),
                               &tag, 1, &n, NULL, &read_error);
      g_assert_no_error (read_error);
      g_assert_cmpuint (n, ==, 1);
      g_assert_cmpuint (tag, <, n_clients);
      g_assert_cmpuint (seen[tag], ==, 0);
      seen[tag] = 1;
      {
        guint8 answer = tag ^ 0xa5;
        guint8 got = 0;

        g_output_stream_write_all (g_io_stream_get_output_stream (G_IO_STREAM (server)),
                                   &answer, 1, &n, NULL, &read_error);
        g_assert_no_error (read_error);
        g_input_stream_read_all (g_io_stream_get_input_stream (G_IO_STREAM (g_ptr_array_index (ni.clients, tag))),
                                 &got, 1, &n, NULL, &read_error);
        g_assert_no_error (read_error);
        g_assert_cmpuint (got, ==, answer);
      }
    }

  lsock_listener_close (listener);
  for (guint i = 0; i < n_clients; i++)
    {
      LsockStream *s = g_ptr_array_index (ni.servers, i);
      LsockStream *c = g_ptr_array_index (ni.clients, i);

      lsock_test_close_and_finalize_stream (&s);
      lsock_test_close_and_finalize_stream (&c);
    }
  g_ptr_array_unref (ni.servers);
  g_ptr_array_unref (ni.clients);
  lsock_test_close_and_finalize_listener (&listener);
  g_assert_finalize_object (ni.name);
  lsock_test_assert_fd_count (fds_before);
}

#ifndef G_OS_UNIX
/* Socket files, fd flags and rlimits are Unix things: these tests are
 * registered everywhere and skip themselves elsewhere. */
# define UNIX_ONLY_TEST(fn) \
  static void fn (void) { g_test_skip ("Not on Windows: it needs socket files, fds or rlimits"); }
UNIX_ONLY_TEST (test_path_mode)
UNIX_ONLY_TEST (test_path_no_leftovers)
UNIX_ONLY_TEST (test_path_stale_replaced)
UNIX_ONLY_TEST (test_path_stale_kept)
UNIX_ONLY_TEST (test_path_live_kept)
UNIX_ONLY_TEST (test_path_foreign_stale_kept)
UNIX_ONLY_TEST (test_path_race_fresh)
UNIX_ONLY_TEST (test_path_race_stale)
UNIX_ONLY_TEST (test_path_reclaim)
UNIX_ONLY_TEST (test_path_long)
UNIX_ONLY_TEST (test_cloexec)
UNIX_ONLY_TEST (test_emfile)
#endif /* !G_OS_UNIX */

/* The same path tests through the rename route of macOS and the BSDs */
static void
run_via_rename (gconstpointer data)
{
  GTestFunc test = (GTestFunc) (void (*) (void)) data;

#ifdef G_OS_UNIX
  g_atomic_int_set (&_lsock_listener_publish_by_rename, 1);
#endif
  test ();
#ifdef G_OS_UNIX
  g_atomic_int_set (&_lsock_listener_publish_by_rename, 0);
#endif
}

/* ---- the contracts of accept_async() and start() ------------------------ */

typedef struct
{
  GAsyncResult *kept;
  guint         n_calls;
} KeptResult;

static void
keep_accept_result_cb (GObject      *source,
                       GAsyncResult *result,
                       gpointer      user_data)
{
  KeptResult *kept = user_data;

  kept->n_calls++;
  /* What an earlier callback set on its result is not here */
  g_assert_null (g_object_get_data (G_OBJECT (result), "lsock-test"));
  g_object_set_data (G_OBJECT (result), "lsock-test", kept);
  g_assert_null (kept->kept);
  kept->kept = g_object_ref (result);
}

static void
count_finalized_cb (gpointer  data,
                    GObject  *where_the_object_was)
{
  (*(int *) data)++;
}

/* Marks its result and lets go of it: the mark must not be seen again,
 * and the result must be finalized once the callback returns */
static void
mark_and_drop_cb (GObject      *source,
                  GAsyncResult *result,
                  gpointer      user_data)
{
  int *finalized = user_data;
  g_autoptr(GError) error = NULL;
  LsockStream *stream;

  g_assert_null (g_object_get_data (G_OBJECT (result), "lsock-test-mark"));
  g_object_set_data (G_OBJECT (result), "lsock-test-mark", finalized);
  g_object_weak_ref (G_OBJECT (result), count_finalized_cb, finalized);
  stream = lsock_listener_accept_finish (LSOCK_LISTENER (source), result, &error);
  g_assert_no_error (error);
  g_object_set_data_full (G_OBJECT (source), "lsock-test-stream", stream, g_object_unref);
}

/* Each accept gets a new result (an LsockAsyncResult, a public class, so
 * bindings see Lsock.AsyncResult): its data, source object and user data
 * are its own while the caller keeps it, it is finalized when let go, and
 * _finish() refuses another listener's result */
static void
test_accept_async_results_fresh (void)
{
  g_autoptr(GError) error = NULL;
  LsockName *name = lsock_test_namespaced_name ();
  LsockName *other_name = lsock_test_namespaced_name ();
  LsockListener *listener = lsock_listener_new (name, &error);
  LsockListener *other = lsock_listener_new (other_name, &error);
  KeptResult first = { 0 };
  KeptResult second = { 0 };
  LsockStream *clients[2];
  LsockStream *servers[2];
  GObject *source;
  int finalized = 0;

  g_assert_no_error (error);

  /* Results the callback does not keep are finalized, not reused */
  for (int round = 1; round <= 3; round++)
    {
      LsockStream *client;

      lsock_listener_accept_async (listener, NULL, mark_and_drop_cb, &finalized);
      client = connect_tagged (name, 'z');
      lsock_test_wait_until (g_object_get_data (G_OBJECT (listener), "lsock-test-stream") != NULL);
      lsock_test_drain_main_context ();
      g_assert_cmpint (finalized, ==, round);
      g_object_set_data (G_OBJECT (listener), "lsock-test-stream", NULL);
      lsock_test_close_and_finalize_stream (&client);
    }
  finalized = 0;

  lsock_listener_accept_async (listener, NULL, keep_accept_result_cb, &first);
  clients[0] = connect_tagged (name, 'a');
  lsock_test_wait_until (first.kept != NULL);
  lsock_listener_accept_async (listener, NULL, keep_accept_result_cb, &second);
  clients[1] = connect_tagged (name, 'b');
  lsock_test_wait_until (second.kept != NULL);

  g_assert_true (first.kept != second.kept);
  g_assert_true (LSOCK_IS_ASYNC_RESULT (first.kept));
  g_assert_true (LSOCK_IS_ASYNC_RESULT (second.kept));
  g_assert_true (g_object_get_data (G_OBJECT (first.kept), "lsock-test") == &first);
  g_assert_true (g_object_get_data (G_OBJECT (second.kept), "lsock-test") == &second);
  source = g_async_result_get_source_object (first.kept);
  g_assert_true (source == G_OBJECT (listener));
  g_object_unref (source);
  g_assert_true (g_async_result_get_user_data (first.kept) == &first);
  g_assert_true (g_async_result_is_tagged (first.kept, lsock_listener_accept_async));

  /* Finished late, in any order */
  servers[1] = lsock_listener_accept_finish (listener, second.kept, &error);
  g_assert_no_error (error);
  assert_peers (servers[1], clients[1], 'b');

  /* Another listener's result is a programmer error */
  g_test_expect_message ("Lsock", G_LOG_LEVEL_CRITICAL, "*assertion*failed*");
  g_assert_null (lsock_listener_accept_finish (other, first.kept, &error));
  g_test_assert_expected_messages ();
  g_assert_no_error (error);

  servers[0] = lsock_listener_accept_finish (listener, first.kept, &error);
  g_assert_no_error (error);
  assert_peers (servers[0], clients[0], 'a');

  g_object_weak_ref (G_OBJECT (first.kept), count_finalized_cb, &finalized);
  g_object_weak_ref (G_OBJECT (second.kept), count_finalized_cb, &finalized);
  g_clear_object (&first.kept);
  g_clear_object (&second.kept);
  g_assert_cmpint (finalized, ==, 2);
  g_assert_cmpuint (first.n_calls, ==, 1);
  g_assert_cmpuint (second.n_calls, ==, 1);

  for (guint i = 0; i < 2; i++)
    {
      lsock_test_close_and_finalize_stream (&clients[i]);
      lsock_test_close_and_finalize_stream (&servers[i]);
    }
  lsock_test_close_and_finalize_listener (&listener);
  lsock_test_close_and_finalize_listener (&other);
  g_assert_finalize_object (name);
  g_assert_finalize_object (other_name);
}

typedef struct
{
  GMainContext  *context;
  LsockListener *listener;
  guint          n_waits;
  guint          n_accepted;
  guint          n_closed;
  guint          n_done;
  GPtrArray     *streams;
} MoreThanPeers;

static void
more_than_peers_cb (GObject      *source,
                    GAsyncResult *result,
                    gpointer      user_data)
{
  MoreThanPeers *m = user_data;
  g_autoptr(GError) error = NULL;
  LsockStream *stream = lsock_listener_accept_finish (m->listener, result, &error);

  g_assert_true (g_main_context_get_thread_default () == m->context ||
                 (m->context == g_main_context_default () &&
                  g_main_context_get_thread_default () == NULL));
  if (stream != NULL)
    {
      g_ptr_array_add (m->streams, stream);
      g_atomic_int_inc (&m->n_accepted);
    }
  else
    {
      g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CLOSED);
      g_atomic_int_inc (&m->n_closed);
    }
  g_atomic_int_inc (&m->n_done);
}

static gpointer
more_than_peers_thread (gpointer data)
{
  MoreThanPeers *m = data;
  GCancellable *cancellable = g_cancellable_new ();

  g_main_context_push_thread_default (m->context);
  lsock_listener_accept_async (m->listener, NULL, more_than_peers_cb, m);
  lsock_listener_accept_async (m->listener, cancellable, more_than_peers_cb, m);
  while ((guint) g_atomic_int_get (&m->n_done) < m->n_waits)
    g_main_context_iteration (m->context, TRUE);
  g_main_context_pop_thread_default (m->context);
  g_object_unref (cancellable);
  return NULL;
}

/* More accepts waiting than peers (GLib's GSocketListener bug #3739): from
 * two contexts, with and without cancellables, none of them blocks its
 * thread, the peers that come are each taken once, and close() ends the
 * rest */
static void
test_accept_async_more_than_peers (void)
{
  g_autoptr(GError) error = NULL;
  LsockName *name = lsock_test_namespaced_name ();
  GCancellable *cancellable = g_cancellable_new ();
  MoreThanPeers here = { 0 };
  MoreThanPeers there = { 0 };
  LsockStream *clients[3];
  GThread *thread;
  gboolean ticked = FALSE;
  guint tick_id;

  here.listener = lsock_listener_new (name, &error);
  g_assert_no_error (error);
  here.context = g_main_context_default ();
  here.n_waits = 4;
  here.streams = g_ptr_array_new_with_free_func (g_object_unref);
  there.listener = here.listener;
  there.context = g_main_context_new ();
  there.n_waits = 2;
  there.streams = g_ptr_array_new_with_free_func (g_object_unref);

  for (guint i = 0; i < 4; i++)
    lsock_listener_accept_async (here.listener, i % 2 ? cancellable : NULL,
                                 more_than_peers_cb, &here);
  thread = g_thread_new ("accepts", more_than_peers_thread, &there);

  for (guint i = 0; i < 3; i++)
    clients[i] = connect_tagged (name, 'a' + i);
  g_assert_true (lsock_test_wait_bounded (g_atomic_int_get (&here.n_accepted) +
                                          g_atomic_int_get (&there.n_accepted) == 3, 10000));

  /* Nobody blocks: this thread's context still runs its timers, and the
   * other thread is still iterating (it would not be, stuck in accept()) */
  tick_id = g_timeout_add (1, lsock_test_set_flag, &ticked);
  g_assert_true (lsock_test_wait_bounded (ticked, 10000));
  g_source_remove (tick_id);
  g_main_context_wakeup (there.context);
  g_assert_cmpuint (g_atomic_int_get (&here.n_done) + g_atomic_int_get (&there.n_done), ==, 3);

  lsock_listener_close (here.listener);
  g_assert_true (lsock_test_wait_bounded (g_atomic_int_get (&here.n_done) == 4, 10000));
  g_thread_join (thread);
  g_assert_cmpuint (here.n_closed + there.n_closed, ==, 3);
  g_assert_cmpuint (here.streams->len + there.streams->len, ==, 3);

  g_ptr_array_unref (here.streams);
  g_ptr_array_unref (there.streams);
  for (guint i = 0; i < 3; i++)
    lsock_test_close_and_finalize_stream (&clients[i]);
  lsock_test_drain_main_context ();
  while (g_main_context_iteration (there.context, FALSE));
  g_main_context_unref (there.context);
  g_assert_finalize_object (here.listener);
  g_assert_finalize_object (cancellable);
  g_assert_finalize_object (name);
}

typedef struct
{
  GPtrArray     *streams;
  LsockListener *listener;  /* weak */
  gboolean       stop_now;
} Served;

static gboolean
serve_cb (LsockListener *listener,
          LsockStream   *stream,
          gpointer       user_data)
{
  Served *served = user_data;

  g_ptr_array_add (served->streams, g_object_ref (stream));
  if (served->stop_now)
    lsock_listener_stop (listener);
  return TRUE;
}

static void
count_notify_cb (GObject    *object,
                 GParamSpec *pspec,
                 gpointer    data)
{
  (*(int *) data)++;
}

/* A started listener keeps itself alive, as a GSocketService does (what
 * a binding's dropped wrapper relies on), until stop() */
static void
test_start_keeps_alive (void)
{
  g_autoptr(GError) error = NULL;
  LsockName *name = lsock_test_namespaced_name ();
  LsockListener *listener = lsock_listener_new (name, &error);
  Served served = { 0 };
  int n_notify = 0;
  LsockStream *clients[2];
  gboolean active;

  g_assert_no_error (error);
  served.streams = g_ptr_array_new_with_free_func (g_object_unref);
  g_signal_connect (listener, "incoming", G_CALLBACK (serve_cb), &served);
  g_signal_connect (listener, "notify::active", G_CALLBACK (count_notify_cb), &n_notify);

  g_assert_false (lsock_listener_is_active (listener));
  lsock_listener_start (listener);
  g_object_get (listener, "active", &active, NULL);
  g_assert_true (active);
  g_assert_cmpint (n_notify, ==, 1);

  served.listener = listener;
  g_object_add_weak_pointer (G_OBJECT (listener), (gpointer *) &served.listener);
  g_object_unref (listener);
  g_assert_nonnull (served.listener);

  clients[0] = connect_tagged (name, 'a');
  g_assert_true (lsock_test_wait_bounded (served.streams->len == 1, 10000));
  assert_peers (g_ptr_array_index (served.streams, 0), clients[0], 'a');

  /* The next peer's handler stops the service: the listener goes */
  served.stop_now = TRUE;
  clients[1] = connect_tagged (name, 'b');
  g_assert_true (lsock_test_wait_bounded (served.streams->len == 2, 10000));
  lsock_test_drain_main_context ();
  g_assert_null (served.listener);
  assert_peers (g_ptr_array_index (served.streams, 1), clients[1], 'b');

  g_ptr_array_unref (served.streams);
  for (guint i = 0; i < 2; i++)
    lsock_test_close_and_finalize_stream (&clients[i]);
  g_assert_finalize_object (name);
}

/* close() ends the service too, and drops what start() took */
static void
test_close_stops_service (void)
{
  g_autoptr(GError) error = NULL;
  LsockName *name = lsock_test_namespaced_name ();
  LsockListener *listener = lsock_listener_new (name, &error);
  int n_notify = 0;

  g_assert_no_error (error);
  g_signal_connect (listener, "notify::active", G_CALLBACK (count_notify_cb), &n_notify);
  lsock_listener_start (listener);
  lsock_listener_start (listener);
  g_assert_cmpint (n_notify, ==, 1);
  lsock_listener_close (listener);
  g_assert_false (lsock_listener_is_active (listener));
  g_assert_cmpint (n_notify, ==, 2);
  /* Closed: start() does nothing */
  lsock_listener_start (listener);
  g_assert_false (lsock_listener_is_active (listener));
  g_assert_finalize_object (listener);
  g_assert_finalize_object (name);
}

/* Made without a name and without init: clear errors, no criticals but
 * for start(), which cannot report one */
static void
test_initable_no_name (void)
{
  g_autoptr(GError) error = NULL;
  LsockListener *listener = g_object_new (LSOCK_TYPE_LISTENER, NULL);

  g_assert_false (g_initable_init (G_INITABLE (listener), NULL, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  g_assert_null (lsock_listener_accept (listener, NULL, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_NOT_INITIALIZED);
  g_clear_error (&error);

  g_test_expect_message ("Lsock", G_LOG_LEVEL_CRITICAL, "*not initialised*");
  lsock_listener_start (listener);
  g_test_assert_expected_messages ();
  g_assert_false (lsock_listener_is_active (listener));
  g_assert_finalize_object (listener);
}


int
main (int   argc,
      char *argv[])
{
  int ret;

  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);

  g_test_add_func ("/lsock/listener/defaults", test_defaults);
  g_test_add_func ("/lsock/listener/generic", test_generic);
  g_test_add_func ("/lsock/listener/initable", test_initable);
  g_test_add_func ("/lsock/listener/path/mode", test_path_mode);
  g_test_add_func ("/lsock/listener/path/no-leftovers", test_path_no_leftovers);
  g_test_add_func ("/lsock/listener/path/stale-replaced", test_path_stale_replaced);
  g_test_add_func ("/lsock/listener/path/stale-kept", test_path_stale_kept);
  g_test_add_func ("/lsock/listener/path/live-kept", test_path_live_kept);
  g_test_add_func ("/lsock/listener/path/foreign-stale-kept", test_path_foreign_stale_kept);
  g_test_add_func ("/lsock/listener/path/race-fresh", test_path_race_fresh);
  g_test_add_func ("/lsock/listener/path/race-stale", test_path_race_stale);
  g_test_add_func ("/lsock/listener/path/reclaim", test_path_reclaim);
  g_test_add_func ("/lsock/listener/path/long", test_path_long);
  {
    static const struct { const char *name; GTestFunc func; } rename_tests[] = {
      { "mode", test_path_mode },
      { "no-leftovers", test_path_no_leftovers },
      { "stale-replaced", test_path_stale_replaced },
      { "stale-kept", test_path_stale_kept },
      { "live-kept", test_path_live_kept },
      { "race-fresh", test_path_race_fresh },
      { "race-stale", test_path_race_stale },
      { "reclaim", test_path_reclaim },
      { "long", test_path_long },
    };

    for (gsize i = 0; i < G_N_ELEMENTS (rename_tests); i++)
      {
        g_autofree char *path = g_strdup_printf ("/lsock/listener/path-by-rename/%s",
                                                 rename_tests[i].name);

        g_test_add_data_func (path, (gconstpointer) (void (*) (void)) rename_tests[i].func,
                              run_via_rename);
      }
  }
  g_test_add_func ("/lsock/listener/namespaced/in-use", test_namespaced_in_use);
  g_test_add_func ("/lsock/listener/cloexec", test_cloexec);
  g_test_add_func ("/lsock/listener/accept-async", test_accept_async);
  g_test_add_func ("/lsock/listener/accept-async-close", test_accept_async_close);
  g_test_add_func ("/lsock/listener/incoming", test_incoming);
  g_test_add_func ("/lsock/listener/incoming/nested-main-loop", test_incoming_nested);
  g_test_add_func ("/lsock/listener/accept-async/queued-fifo", test_accept_async_queued);
  g_test_add_func ("/lsock/listener/accept-async/chained", test_accept_async_chained);
  g_test_add_func ("/lsock/listener/accept-async/mixed-cancellable", test_accept_async_mixed_cancellable);
  g_test_add_data_func ("/lsock/listener/accept-async/reentrant/chain",
                        GINT_TO_POINTER (FALSE), test_accept_async_reentrant);
  g_test_add_data_func ("/lsock/listener/accept-async/reentrant/peer-first",
                        GINT_TO_POINTER (TRUE), test_accept_async_reentrant);
  g_test_add_func ("/lsock/listener/accept-async/peer-while-idle", test_accept_async_peer_while_idle);
  g_test_add_func ("/lsock/listener/accept-async/close-shared", test_accept_async_close_shared);
  g_test_add_func ("/lsock/listener/accept-async/close-in-callback", test_accept_async_close_in_callback);
  g_test_add_func ("/lsock/listener/accept-async/finalize-idle", test_accept_async_finalize_idle);
  g_test_add_func ("/lsock/listener/accept-async/with-sync-accept", test_accept_async_with_sync_accept);
  g_test_add_func ("/lsock/listener/emfile", test_emfile);
  g_test_add_func ("/lsock/listener/initable/no-name", test_initable_no_name);
  g_test_add_func ("/lsock/listener/accept-async/results-fresh", test_accept_async_results_fresh);
  g_test_add_func ("/lsock/listener/accept-async/more-than-peers", test_accept_async_more_than_peers);
  g_test_add_func ("/lsock/listener/start/keeps-alive", test_start_keeps_alive);
  g_test_add_func ("/lsock/listener/start/close-stops", test_close_stops_service);

  ret = g_test_run ();
  lsock_test_cleanup_dirs ();
  return ret;
}
