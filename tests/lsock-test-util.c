/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include "lsock-test-util.h"

#include <glib/gstdio.h>
#include <string.h>
#ifndef G_OS_WIN32
# include "lsock-reactor-private.h"
# include <unistd.h>
#else
# include <process.h>
# define getpid _getpid
#endif

static GPtrArray *tmp_dirs;
static G_LOCK_DEFINE (tmp_dirs);

char *
lsock_test_unique_string (const char *what)
{
  static int counter;

  return g_strdup_printf ("lsock-test-%d-%d-%s", (int) getpid (),
                          g_atomic_int_add (&counter, 1), what ? what : "x");
}

LsockName *
lsock_test_namespaced_name (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *s = lsock_test_unique_string ("ns");
  LsockName *name = lsock_name_new_namespaced (s, &error);

  g_assert_no_error (error);
  return name;
}

const char *
lsock_test_tmp_dir (void)
{
  g_autoptr(GError) error = NULL;
  char *dir = g_dir_make_tmp ("lsock-test-XXXXXX", &error);

  g_assert_no_error (error);
  G_LOCK (tmp_dirs);
  if (tmp_dirs == NULL)
    tmp_dirs = g_ptr_array_new_with_free_func (g_free);
  g_ptr_array_add (tmp_dirs, dir);
  G_UNLOCK (tmp_dirs);
  return dir;
}

LsockName *
lsock_test_path_name (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *path = g_build_filename (lsock_test_tmp_dir (), "sock", NULL);
  LsockName *name = lsock_name_new_path (path, &error);

  g_assert_no_error (error);
  return name;
}

static void
remove_tree (const char *path)
{
  GDir *dir = g_dir_open (path, 0, NULL);
  const char *entry;

  if (dir != NULL)
    {
      while ((entry = g_dir_read_name (dir)) != NULL)
        {
          g_autofree char *child = g_build_filename (path, entry, NULL);

          if (g_file_test (child, G_FILE_TEST_IS_DIR) &&
              !g_file_test (child, G_FILE_TEST_IS_SYMLINK))
            remove_tree (child);
          else
            g_unlink (child);
        }
      g_dir_close (dir);
    }
  g_rmdir (path);
}

void
lsock_test_cleanup_dirs (void)
{
  G_LOCK (tmp_dirs);
  if (tmp_dirs != NULL)
    {
      for (guint i = 0; i < tmp_dirs->len; i++)
        remove_tree (g_ptr_array_index (tmp_dirs, i));
      g_clear_pointer (&tmp_dirs, g_ptr_array_unref);
    }
  G_UNLOCK (tmp_dirs);
}

struct _LsockTestWait
{
  GMainContext *context;
  GSource      *timeout;
  gboolean      expired;
};

guint
lsock_test_wait_seconds (void)
{
  static gsize seconds;

  if (g_once_init_enter (&seconds))
    {
      const char *env = g_getenv ("LSOCK_TEST_WAIT_SECONDS");
      guint64 value = env != NULL ? g_ascii_strtoull (env, NULL, 10) : 0;

      g_once_init_leave (&seconds, value > 0 && value < G_MAXUINT / 1000 ? (gsize) value : 60);
    }
  return (guint) seconds;
}

static gboolean
wait_expired_cb (gpointer data)
{
  LsockTestWait *wait = data;

  wait->expired = TRUE;
  return G_SOURCE_REMOVE;
}

LsockTestWait *
lsock_test_wait_begin (void)
{
  LsockTestWait *wait = g_new0 (LsockTestWait, 1);

  /* A timeout source on the context being iterated, so that a blocking
   * iteration returns when the time is up even if nothing else happens */
  wait->context = g_main_context_ref_thread_default ();
  wait->timeout = g_timeout_source_new_seconds (lsock_test_wait_seconds ());
  g_source_set_callback (wait->timeout, wait_expired_cb, wait, NULL);
  g_source_set_static_name (wait->timeout, "[lsock-test] wait bound");
  g_source_attach (wait->timeout, wait->context);
  return wait;
}

void
lsock_test_wait_iterate (LsockTestWait *wait,
                         const char    *what,
                         const char    *where)
{
  if (wait->expired)
    g_error ("%s: still waiting for “%s” after %u s", where, what, lsock_test_wait_seconds ());
  g_main_context_iteration (wait->context, TRUE);
}

void
lsock_test_wait_end (LsockTestWait *wait)
{
  g_source_destroy (wait->timeout);
  g_source_unref (wait->timeout);
  g_main_context_unref (wait->context);
  g_free (wait);
}

void
lsock_test_store_result (GObject      *source,
                         GAsyncResult *result,
                         gpointer      user_data)
{
  GAsyncResult **out = user_data;

  g_assert_null (*out);
  *out = g_object_ref (result);
  g_main_context_wakeup (NULL);
}

void
lsock_test_assert_connect_fails (LsockName  *name,
                                 int         code,
                                 const char *part)
{
  g_autofree char *shown = lsock_name_to_string (name);
  GAsyncResult *result = NULL;
  GError *error = NULL;

  for (int async = 0; async <= 1; async++)
    {
      if (async)
        {
          lsock_stream_connect_async (name, NULL, lsock_test_store_result, &result);
          lsock_test_wait_until (result);
          g_assert_null (lsock_stream_connect_finish (result, &error));
          g_clear_object (&result);
        }
      else
        g_assert_null (lsock_stream_connect (name, NULL, &error));
      g_assert_error (error, G_IO_ERROR, code);
      if (strstr (error->message, part != NULL ? part : shown) == NULL)
        g_error ("“%s” does not say “%s”", error->message, part != NULL ? part : shown);
      g_clear_error (&error);
    }
}

void
lsock_test_reactor_from_env (void)
{
#ifndef G_OS_WIN32
  const char *reactor = g_getenv ("LSOCK_TEST_REACTOR");

  /* "poll": the portable reactor; "epoll": epoll for every watch, none
   * polled by the context itself */
  if (g_strcmp0 (reactor, "poll") == 0)
    g_atomic_int_set (&_lsock_reactor_force_poll, 1);
  else if (g_strcmp0 (reactor, "epoll") == 0)
    g_atomic_int_set (&_lsock_reactor_polled_max, 0);
#endif
}

int
lsock_test_count_fds (void)
{
#ifdef G_OS_WIN32
  return -1;
#else
  GDir *dir = g_dir_open ("/proc/self/fd", 0, NULL);
  int n = 0;

  if (dir == NULL)
    return -1;
  while (g_dir_read_name (dir) != NULL)
    n++;
  g_dir_close (dir);
  return n - 1; /* the directory's own fd */
#endif
}

gboolean
lsock_test_set_flag (gpointer data)
{
  *(gboolean *) data = TRUE;
  return G_SOURCE_CONTINUE;
}

void
lsock_test_increment (gpointer data)
{
  (*(int *) data)++;
}

static gboolean
deadline_cb (gpointer data)
{
  return G_SOURCE_REMOVE;
}

void
lsock_test_iterate_until_deadline (GMainContext *context,
                                   gint64        deadline)
{
  gint64 left = deadline - g_get_monotonic_time ();
  GSource *timer = g_timeout_source_new (left > 0 ? (guint) ((left + 999) / 1000) : 0);

  if (context == NULL)
    context = g_main_context_get_thread_default ();
  g_source_set_callback (timer, deadline_cb, NULL, NULL);
  g_source_attach (timer, context);
  g_main_context_iteration (context, TRUE);
  g_source_destroy (timer);
  g_source_unref (timer);
}

void
lsock_test_drain_main_context (void)
{
  while (g_main_context_iteration (NULL, FALSE));
}

void
lsock_test_close_and_finalize_stream (LsockStream **stream)
{
  LsockStream *s = g_steal_pointer (stream);

  if (s == NULL)
    return;
  g_io_stream_close (G_IO_STREAM (s), NULL, NULL);
  lsock_test_drain_main_context ();
  g_assert_finalize_object (s);
}

void
lsock_test_close_and_finalize_listener (LsockListener **listener)
{
  LsockListener *l = g_steal_pointer (listener);

  if (l == NULL)
    return;
  lsock_listener_close (l);
  lsock_test_drain_main_context ();
  g_assert_finalize_object (l);
}

void
lsock_test_pair_open (LsockTestPair *pair,
                      LsockName     *name)
{
  GError *error = NULL;

  pair->name = name;
  pair->listener = lsock_listener_new (name, &error);
  g_assert_no_error (error);
  pair->client = lsock_stream_connect (name, NULL, &error);
  g_assert_no_error (error);
  pair->server = lsock_listener_accept (pair->listener, NULL, &error);
  g_assert_no_error (error);
}

void
lsock_test_pair_close (LsockTestPair *pair)
{
  lsock_test_close_and_finalize_stream (&pair->client);
  lsock_test_close_and_finalize_stream (&pair->server);
  lsock_test_close_and_finalize_listener (&pair->listener);
  if (pair->name != NULL)
    g_assert_finalize_object (g_steal_pointer (&pair->name));
}

int
lsock_test_settled_fd_count (void)
{
  g_type_class_unref (g_type_class_ref (G_TYPE_TASK));
  lsock_test_drain_main_context ();
  return lsock_test_count_fds ();
}

void
lsock_test_assert_fd_count (int before)
{
  lsock_test_drain_main_context ();
  if (before >= 0)
    g_assert_cmpint (lsock_test_count_fds (), ==, before);
}

void
lsock_test_fill_pattern (guint8 *buffer,
                         gsize   offset,
                         gsize   count,
                         guint8  seed)
{
  for (gsize j = 0; j < count; j++)
    {
      gsize i = offset + j;

      buffer[j] = (guint8) ((i * 31 + (i >> 8) * 7 + (i >> 16) * 13 + seed) & 0xff);
    }
}

void
lsock_test_assert_pattern (const guint8 *buffer,
                           gsize         offset,
                           gsize         count,
                           guint8        seed)
{
  g_autofree guint8 *expected = g_malloc (MAX (count, 1));

  lsock_test_fill_pattern (expected, offset, count, seed);
  if (memcmp (buffer, expected, count) != 0)
    g_error ("seed %u: bytes %" G_GSIZE_FORMAT "..%" G_GSIZE_FORMAT " are wrong",
             seed, offset, offset + count);
}
