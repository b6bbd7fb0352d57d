/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <lsock-gobject/lsock.h>

G_BEGIN_DECLS

/* A name unique to this process and call: "lsock-test-<pid>-<n>-<what>" */
char      *lsock_test_unique_string  (const char *what);
/* A namespaced (abstract) name, unique to this process and call */
LsockName *lsock_test_namespaced_name (void);
/* A path name in a fresh private directory (removed by lsock_test_cleanup_dirs) */
LsockName *lsock_test_path_name      (void);
/* A fresh private directory (removed by lsock_test_cleanup_dirs) */
const char *lsock_test_tmp_dir       (void);
/* Removes the directories made by this process; call at the end of main() */
void       lsock_test_cleanup_dirs   (void);

/* The bound on every wait of a test: 60 s, or $LSOCK_TEST_WAIT_SECONDS */
guint      lsock_test_wait_seconds   (void);

/* Iterates the thread-default main context until @cond holds. The wait
 * is bounded: after lsock_test_wait_seconds() the test fails, naming
 * @cond, instead of hanging until the harness kills it. */
#define lsock_test_wait_until(cond) \
  G_STMT_START { \
    LsockTestWait *lsock_test_wait_ = lsock_test_wait_begin (); \
    while (!(cond)) \
      lsock_test_wait_iterate (lsock_test_wait_, #cond, G_STRLOC); \
    lsock_test_wait_end (lsock_test_wait_); \
  } G_STMT_END

/* For lsock_test_wait_until() */
typedef struct _LsockTestWait LsockTestWait;
LsockTestWait *lsock_test_wait_begin   (void);
/* One blocking iteration of the context; fails the test once the wait's
 * time is up */
void           lsock_test_wait_iterate (LsockTestWait *wait,
                                        const char    *what,
                                        const char    *where);
void           lsock_test_wait_end     (LsockTestWait *wait);

/* Iterates @context (NULL: the thread-default one) once, waiting at most
 * until @deadline (monotonic time) */
void       lsock_test_iterate_until_deadline (GMainContext *context,
                                              gint64        deadline);
/* Iterates the thread-default main context until @cond holds or @ms
 * milliseconds have passed; evaluates to whether @cond holds. For waits
 * whose failure mode would be a hang. */
#define lsock_test_wait_bounded(cond, ms) \
  ({ gint64 _lsock_deadline = g_get_monotonic_time () + (gint64) (ms) * G_TIME_SPAN_MILLISECOND; \
     while (!(cond) && g_get_monotonic_time () < _lsock_deadline) \
       lsock_test_iterate_until_deadline (NULL, _lsock_deadline); \
     (gboolean) (cond); })

/* Stores the GAsyncResult in *(GAsyncResult **) user_data, for tests that
 * iterate the main context until it arrives. */
void       lsock_test_store_result   (GObject      *source,
                                      GAsyncResult *result,
                                      gpointer      user_data);

/* With LSOCK_TEST_REACTOR=poll in the environment, async I/O uses the
 * portable reactor even where epoll works (Unix; nothing elsewhere) */
/* That connecting to @name fails with G_IO_ERROR @code, sync and async,
 * with a message that contains @part (NULL: the name) */
void       lsock_test_assert_connect_fails (LsockName  *name,
                                            int         code,
                                            const char *part);
void       lsock_test_reactor_from_env (void);

/* Counts the open file descriptors of this process (-1 where unknown). */
int        lsock_test_count_fds      (void);

G_END_DECLS

G_BEGIN_DECLS
/* Dispatches whatever the thread-default main context has ready */
void       lsock_test_drain_main_context       (void);
/* Closes *stream (if any), drains the main context, asserts it finalizes */
void       lsock_test_close_and_finalize_stream (LsockStream   **stream);
/* Closes *listener (if any), drains the main context, asserts it finalizes */
void       lsock_test_close_and_finalize_listener (LsockListener **listener);

/* A listener on a name and a connected pair of streams */
typedef struct
{
  LsockName     *name;
  LsockListener *listener;
  LsockStream   *client;
  LsockStream   *server;
} LsockTestPair;

/* Listens on @name (taking it), connects and accepts */
void       lsock_test_pair_open      (LsockTestPair *pair,
                                      LsockName     *name);
/* Closes and finalizes what is left of @pair */
void       lsock_test_pair_close     (LsockTestPair *pair);

/* Callbacks for sources and signals: set *(gboolean *) data, or ++*(int *) data */
gboolean   lsock_test_set_flag       (gpointer data);
void       lsock_test_increment      (gpointer data);

/* The fds open once GLib has made its lasting ones (the context's wakeup
 * fd, GTask's worker context); -1 where they cannot be counted */
int        lsock_test_settled_fd_count (void);
/* Drains the main context and asserts that @before fds are open (unless
 * @before is -1) */
void       lsock_test_assert_fd_count  (int before);

/* Test data: byte i of a stream is mostly (i * 31 + seed), with the higher
 * bits of i mixed in so that bytes lost or repeated in multiples of 256
 * show too. Fills @buffer with bytes @offset.. of that stream, or aborts
 * if @buffer does not hold them. */
void       lsock_test_fill_pattern   (guint8       *buffer,
                                      gsize         offset,
                                      gsize         count,
                                      guint8        seed);
void       lsock_test_assert_pattern (const guint8 *buffer,
                                      gsize         offset,
                                      gsize         count,
                                      guint8        seed);
G_END_DECLS
