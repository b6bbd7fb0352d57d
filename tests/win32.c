/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

/* Windows-specific behaviour of the named-pipe backend. Registered on every
 * platform; skipped off Windows. Where Wine does not behave as Windows does,
 * the test says so with g_test_incomplete(). */

#include <string.h>

#include "lsock-test-util.h"

#ifdef G_OS_WIN32
# include <windows.h>
# include <aclapi.h>
# include <sddl.h>
# include "lsock-listener-private.h"
# include "lsock-stream-private.h"
# include "lsock-win32-private.h"

static gboolean
running_on_wine (void)
{
  HMODULE ntdll = GetModuleHandleW (L"ntdll.dll");

  return ntdll != NULL && GetProcAddress (ntdll, "wine_get_version") != NULL;
}

static gunichar2 *
pipe_path (LsockName *name)
{
  g_autofree char *path = g_strconcat ("\\\\.\\pipe\\", lsock_name_get_name (name), NULL);

  return g_utf8_to_utf16 (path, -1, NULL, NULL, NULL);
}

static HANDLE
raw_connect (LsockName *name,
             DWORD     *out_error)
{
  g_autofree gunichar2 *path = pipe_path (name);
  HANDLE h = CreateFileW (path, GENERIC_READ | GENERIC_WRITE, 0, NULL, OPEN_EXISTING,
                          FILE_FLAG_OVERLAPPED, NULL);

  *out_error = h == INVALID_HANDLE_VALUE ? GetLastError () : 0;
  return h;
}

static LsockListener *
listener_with_backlog (LsockName *name,
                       int        backlog)
{
  g_autoptr(GError) error = NULL;
  LsockListener *listener = g_initable_new (LSOCK_TYPE_LISTENER, NULL, &error,
                                            "name", name, "backlog", backlog, NULL);

  g_assert_no_error (error);
  return listener;
}

static void
send_all (LsockStream *stream,
          const void  *data,
          gsize        len)
{
  g_autoptr(GError) error = NULL;
  gsize n = 0;

  g_output_stream_write_all (g_io_stream_get_output_stream (G_IO_STREAM (stream)),
                             data, len, &n, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (n, ==, len);
}

static void
expect (LsockStream *stream,
        const char  *data)
{
  g_autoptr(GError) error = NULL;
  gsize len = strlen (data);
  g_autofree char *buf = g_malloc0 (len + 1);
  gsize n = 0;

  g_input_stream_read_all (g_io_stream_get_input_stream (G_IO_STREAM (stream)),
                           buf, len, &n, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpmem (buf, n, data, len);
}

/* ---------------------------------------------------------------------- */

static PSID
current_user_sid (void)
{
  HANDLE token;
  DWORD len = 0;
  TOKEN_USER *user;
  PSID sid;

  g_assert_true (OpenProcessToken (GetCurrentProcess (), TOKEN_QUERY, &token));
  GetTokenInformation (token, TokenUser, NULL, 0, &len);
  user = g_malloc0 (len);
  g_assert_true (GetTokenInformation (token, TokenUser, user, len, &len));
  CloseHandle (token);
  sid = g_memdup2 (user->User.Sid, GetLengthSid (user->User.Sid));
  g_free (user);
  return sid;
}

static void
check_dacl (LsockAccess access)
{
  g_autoptr(GError) error = NULL;
  LsockName *name = lsock_test_namespaced_name ();
  LsockListener *listener = lsock_listener_new_full (name, access, NULL, &error);
  LsockStream *client;
  PACL dacl = NULL;
  PSECURITY_DESCRIPTOR sd = NULL;
  ACL_SIZE_INFORMATION info = { 0, };
  g_autofree PSID user = current_user_sid ();
  PSID everyone = NULL;
  SID_IDENTIFIER_AUTHORITY world = SECURITY_WORLD_SID_AUTHORITY;
  DWORD res;

  g_assert_no_error (error);
  client = lsock_stream_connect (name, NULL, &error);
  g_assert_no_error (error);

  /* The client handle was opened with GENERIC_READ, which includes
   * READ_CONTROL: read the pipe's DACL back through it */
  res = GetSecurityInfo (_lsock_stream_get_pipe (client), SE_KERNEL_OBJECT, DACL_SECURITY_INFORMATION,
                         NULL, NULL, &dacl, NULL, &sd);
  g_assert_cmpuint (res, ==, ERROR_SUCCESS);
  g_assert_nonnull (dacl);
  g_assert_true (GetAclInformation (dacl, &info, sizeof info, AclSizeInformation));
  g_assert_true (AllocateAndInitializeSid (&world, 1, SECURITY_WORLD_RID, 0, 0, 0, 0, 0, 0, 0,
                                           &everyone));

  if (running_on_wine () && info.AceCount == 0)
    {
      g_test_incomplete ("Wine does not return the DACL of a named pipe");
      goto out;
    }

  g_assert_cmpuint (info.AceCount, ==, access == LSOCK_ACCESS_USER ? 1 : 2);
  for (DWORD i = 0; i < info.AceCount; i++)
    {
      ACCESS_ALLOWED_ACE *ace = NULL;
      PSID sid;

      g_assert_true (GetAce (dacl, i, (void **) &ace));
      g_assert_cmpuint (ace->Header.AceType, ==, ACCESS_ALLOWED_ACE_TYPE);
      sid = (PSID) &ace->SidStart;
      if (EqualSid (sid, user))
        {
          g_assert_cmphex (ace->Mask & FILE_ALL_ACCESS, ==, FILE_ALL_ACCESS);
        }
      else
        {
          /* Everyone: read and write data, never create instances */
          g_assert_true (access == LSOCK_ACCESS_EVERYONE);
          g_assert_true (EqualSid (sid, everyone));
          g_assert_cmphex (ace->Mask & (FILE_READ_DATA | FILE_WRITE_DATA), ==,
                           FILE_READ_DATA | FILE_WRITE_DATA);
          g_assert_cmphex (ace->Mask & FILE_CREATE_PIPE_INSTANCE, ==, 0);
          g_assert_cmphex (ace->Mask & (GENERIC_ALL | GENERIC_WRITE | WRITE_DAC | WRITE_OWNER), ==, 0);
        }
    }

out:
  FreeSid (everyone);
  LocalFree (sd);
  g_assert_finalize_object (client);
  g_assert_finalize_object (listener);
  g_assert_finalize_object (name);
}

static void
test_dacl_user (void)
{
  check_dacl (LSOCK_ACCESS_USER);
}

static void
test_dacl_everyone (void)
{
  check_dacl (LSOCK_ACCESS_EVERYONE);
}

/* FILE_FLAG_FIRST_PIPE_INSTANCE is what makes a taken name fail: another
 * process's (or a rogue) CreateNamedPipeW with it must fail */
static void
test_first_instance (void)
{
  g_autoptr(GError) error = NULL;
  LsockName *name = lsock_test_namespaced_name ();
  LsockListener *listener = lsock_listener_new (name, &error);
  g_autofree gunichar2 *path = pipe_path (name);
  HANDLE h;
  DWORD errsv;

  g_assert_no_error (error);
  h = CreateNamedPipeW (path, PIPE_ACCESS_DUPLEX | FILE_FLAG_FIRST_PIPE_INSTANCE,
                        PIPE_TYPE_BYTE, PIPE_UNLIMITED_INSTANCES, 512, 512, 0, NULL);
  errsv = GetLastError ();
  if (h != INVALID_HANDLE_VALUE && running_on_wine ())
    {
      g_test_incomplete ("Wine ignores FILE_FLAG_FIRST_PIPE_INSTANCE");
      CloseHandle (h);
    }
  else
    {
      g_assert_true (h == INVALID_HANDLE_VALUE);
      g_assert_cmpuint (errsv, ==, ERROR_ACCESS_DENIED);
    }

  g_assert_finalize_object (listener);
  g_assert_finalize_object (name);
}

/* ---------------------------------------------------------------------- */

typedef struct
{
  LsockName    *name;
  GCancellable *cancellable;
  LsockStream  *stream;
  GError       *error;
  int           done;
} ConnectThread;

static gpointer
connect_thread (gpointer user_data)
{
  ConnectThread *ct = user_data;

  ct->stream = lsock_stream_connect (ct->name, ct->cancellable, &ct->error);
  g_atomic_int_set (&ct->done, 1);
  return NULL;
}

/* One instance, taken: a second client sees ERROR_PIPE_BUSY, waits in
 * WaitNamedPipeW and gets in once accept() makes the replacement */
static void
test_busy_wait (void)
{
  g_autoptr(GError) error = NULL;
  LsockName *name = lsock_test_namespaced_name ();
  LsockListener *listener = listener_with_backlog (name, 1);
  ConnectThread ct = { name, NULL, NULL, NULL, 0 };
  LsockStream *first, *server1, *server2;
  GThread *thread;
  HANDLE h;
  DWORD errsv;

  first = lsock_stream_connect (name, NULL, &error);
  g_assert_no_error (error);

  h = raw_connect (name, &errsv);
  g_assert_true (h == INVALID_HANDLE_VALUE);
  g_assert_cmpuint (errsv, ==, ERROR_PIPE_BUSY);

  /* No instance is free until accept() makes one, so the thread's connect
   * cannot finish before that, however it is scheduled */
  thread = g_thread_new ("connect", connect_thread, &ct);
  g_assert_cmpint (g_atomic_int_get (&ct.done), ==, 0);

  server1 = lsock_listener_accept (listener, NULL, &error);
  g_assert_no_error (error);
  g_thread_join (thread);
  g_assert_no_error (ct.error);
  g_assert_nonnull (ct.stream);

  server2 = lsock_listener_accept (listener, NULL, &error);
  g_assert_no_error (error);
  send_all (ct.stream, "second", 6);
  expect (server2, "second");
  send_all (first, "first", 5);
  expect (server1, "first");

  g_assert_finalize_object (ct.stream);
  g_assert_finalize_object (first);
  g_assert_finalize_object (server1);
  g_assert_finalize_object (server2);
  g_assert_finalize_object (listener);
  g_assert_finalize_object (name);
}

/* Up to the backlog, simultaneous clients never see ERROR_PIPE_BUSY, even
 * before anyone accepts; beyond it, a burst of 64 clients all get in */
#define N_BURST 64

typedef struct
{
  LsockName *name;
  int        index;
  gboolean   ok;
} BurstClient;

static gpointer
burst_thread (gpointer user_data)
{
  BurstClient *bc = user_data;
  g_autoptr(GError) error = NULL;
  LsockStream *stream = lsock_stream_connect (bc->name, NULL, &error);
  char reply = 0;
  gsize n = 0;

  if (stream == NULL)
    return NULL;
  g_output_stream_write_all (g_io_stream_get_output_stream (G_IO_STREAM (stream)),
                             &bc->index, sizeof bc->index, &n, NULL, &error);
  if (error == NULL)
    g_input_stream_read_all (g_io_stream_get_input_stream (G_IO_STREAM (stream)),
                             &reply, 1, &n, NULL, &error);
  bc->ok = error == NULL && n == 1 && reply == (char) bc->index;
  g_object_unref (stream);
  return NULL;
}

static gboolean
burst_incoming (LsockListener *listener,
                LsockStream   *stream,
                gpointer       user_data)
{
  int *seen = user_data;
  g_autoptr(GError) error = NULL;
  int index = -1;
  char reply;
  gsize n = 0;

  g_input_stream_read_all (g_io_stream_get_input_stream (G_IO_STREAM (stream)),
                           &index, sizeof index, &n, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (index, >=, 0);
  g_assert_cmpint (index, <, N_BURST);
  reply = (char) index;
  send_all (stream, &reply, 1);
  seen[index]++;
  seen[N_BURST]++;
  return TRUE;
}

static void
test_burst (void)
{
  g_autoptr(GError) error = NULL;
  LsockName *name = lsock_test_namespaced_name ();
  LsockListener *listener = listener_with_backlog (name, 8);
  BurstClient clients[N_BURST];
  GThread *threads[N_BURST];
  int seen[N_BURST + 1] = { 0, };
  HANDLE raw[8];

  /* As many raw clients as the backlog, at once, nobody accepting */
  for (int i = 0; i < 8; i++)
    {
      DWORD errsv;

      raw[i] = raw_connect (name, &errsv);
      g_assert_cmpuint (errsv, ==, 0);
    }
  for (int i = 0; i < 8; i++)
    {
      LsockStream *server = lsock_listener_accept (listener, NULL, &error);

      g_assert_no_error (error);
      g_object_unref (server);
      CloseHandle (raw[i]);
    }

  g_signal_connect (listener, "incoming", G_CALLBACK (burst_incoming), seen);
  lsock_listener_start (listener);
  for (int i = 0; i < N_BURST; i++)
    {
      clients[i] = (BurstClient) { name, i, FALSE };
      threads[i] = g_thread_new ("burst", burst_thread, &clients[i]);
    }
  lsock_test_wait_until (seen[N_BURST] == N_BURST);
  for (int i = 0; i < N_BURST; i++)
    {
      g_thread_join (threads[i]);
      g_assert_true (clients[i].ok);
      g_assert_cmpint (seen[i], ==, 1);
    }

  lsock_listener_close (listener);
  g_assert_finalize_object (listener);
  g_assert_finalize_object (name);
}

/* ---------------------------------------------------------------------- */

typedef struct
{
  LsockStream *stream;
  gsize        got;
  GError      *error;
  int          done;
} ReadThread;

static gpointer
blocked_read_thread (gpointer user_data)
{
  ReadThread *rt = user_data;
  char buf[16];
  gssize n;

  n = g_input_stream_read (g_io_stream_get_input_stream (G_IO_STREAM (rt->stream)),
                           buf, sizeof buf, NULL, &rt->error);
  rt->got = n > 0 ? (gsize) n : 0;
  g_atomic_int_set (&rt->done, 1);
  return NULL;
}

typedef struct
{
  LsockStream  *stream;
  const guint8 *data;
  gsize         size;
  GError       *error;
} WriteThread;

static gpointer
writer_thread (gpointer user_data)
{
  WriteThread *wt = user_data;
  gsize n = 0;

  g_output_stream_write_all (g_io_stream_get_output_stream (G_IO_STREAM (wt->stream)),
                             wt->data, wt->size, &n, NULL, &wt->error);
  return NULL;
}

/* A read blocked in one thread does not hold up writes in another, on the
 * same stream (a pipe opened without FILE_FLAG_OVERLAPPED would deadlock) */
static void
test_duplex_threads (void)
{
  g_autoptr(GError) error = NULL;
  LsockName *name = lsock_test_namespaced_name ();
  LsockListener *listener = lsock_listener_new (name, &error);
  LsockStream *client, *server;
  ReadThread rt = { NULL, 0, NULL, 0 };
  WriteThread wt = { NULL, NULL, 0, NULL };
  GThread *reader, *writer;
  enum { SIZE = 1024 * 1024 };
  g_autofree guint8 *data = g_malloc (SIZE);
  g_autofree guint8 *back = g_malloc (SIZE);
  gsize n = 0;

  g_assert_no_error (error);
  client = lsock_stream_connect (name, NULL, &error);
  g_assert_no_error (error);
  server = lsock_listener_accept (listener, NULL, &error);
  g_assert_no_error (error);
  for (gsize i = 0; i < SIZE; i++)
    data[i] = (guint8) (i * 13);

  rt.stream = client;
  /* Nothing is sent to the client until the end, so its read stays
   * pending throughout */
  reader = g_thread_new ("reader", blocked_read_thread, &rt);
  g_assert_cmpint (g_atomic_int_get (&rt.done), ==, 0);

  /* More than the pipe buffers: the write completes only as the server
   * reads, all while the client's read stays blocked */
  wt = (WriteThread) { client, data, SIZE, NULL };
  writer = g_thread_new ("writer", writer_thread, &wt);
  g_input_stream_read_all (g_io_stream_get_input_stream (G_IO_STREAM (server)),
                           back, SIZE, &n, NULL, &error);
  g_assert_no_error (error);
  g_thread_join (writer);
  g_assert_no_error (wt.error);
  g_assert_cmpmem (back, n, data, SIZE);
  g_assert_cmpint (g_atomic_int_get (&rt.done), ==, 0);

  send_all (server, "done", 4);
  g_thread_join (reader);
  g_assert_no_error (rt.error);
  g_assert_cmpuint (rt.got, ==, 4);

  g_assert_finalize_object (client);
  g_assert_finalize_object (server);
  g_assert_finalize_object (listener);
  g_assert_finalize_object (name);
}

/* ---------------------------------------------------------------------- */

/* Cancels once the test says it is about to block: whether the operation
 * is already waiting or not, it must fail with G_IO_ERROR_CANCELLED */
typedef struct
{
  GCancellable *cancellable;
  GMutex        lock;
  GCond         cond;
  gboolean      about_to_block;
} CancelLater;

static gpointer
cancel_later_thread (gpointer user_data)
{
  CancelLater *cl = user_data;

  g_mutex_lock (&cl->lock);
  while (!cl->about_to_block)
    g_cond_wait (&cl->cond, &cl->lock);
  g_mutex_unlock (&cl->lock);
  g_cancellable_cancel (cl->cancellable);
  return NULL;
}

static GThread *
cancel_later_start (CancelLater  *cl,
                    GCancellable *cancellable)
{
  cl->cancellable = cancellable;
  cl->about_to_block = FALSE;
  g_mutex_init (&cl->lock);
  g_cond_init (&cl->cond);
  return g_thread_new ("cancel", cancel_later_thread, cl);
}

static void
cancel_later_about_to_block (CancelLater *cl)
{
  g_mutex_lock (&cl->lock);
  cl->about_to_block = TRUE;
  g_cond_signal (&cl->cond);
  g_mutex_unlock (&cl->lock);
}

static void
cancel_later_finish (CancelLater *cl,
                     GThread     *thread)
{
  g_thread_join (thread);
  g_mutex_clear (&cl->lock);
  g_cond_clear (&cl->cond);
}

static void
test_cancel_accept (void)
{
  g_autoptr(GError) error = NULL;
  LsockName *name = lsock_test_namespaced_name ();
  LsockListener *listener = lsock_listener_new (name, &error);
  GCancellable *cancellable = g_cancellable_new ();
  GAsyncResult *result = NULL;
  LsockStream *client, *server;
  GThread *thread;
  CancelLater cl;

  g_assert_no_error (error);

  /* Blocking */
  thread = cancel_later_start (&cl, cancellable);
  cancel_later_about_to_block (&cl);
  g_assert_null (lsock_listener_accept (listener, cancellable, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_clear_error (&error);
  cancel_later_finish (&cl, thread);
  g_cancellable_reset (cancellable);

  /* Async, pending in ConnectNamedPipe */
  lsock_listener_accept_async (listener, cancellable, lsock_test_store_result, &result);
  g_assert_false (g_main_context_iteration (NULL, FALSE));
  g_cancellable_cancel (cancellable);
  lsock_test_wait_until (result != NULL);
  g_assert_null (lsock_listener_accept_finish (listener, result, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_clear_error (&error);
  g_clear_object (&result);

  /* The listener still works */
  client = lsock_stream_connect (name, NULL, &error);
  g_assert_no_error (error);
  server = lsock_listener_accept (listener, NULL, &error);
  g_assert_no_error (error);
  send_all (client, "ok", 2);
  expect (server, "ok");

  g_assert_finalize_object (client);
  g_assert_finalize_object (server);
  g_assert_finalize_object (cancellable);
  g_assert_finalize_object (listener);
  g_assert_finalize_object (name);
}

/* Waiting for a busy pipe is cancellable */
static void
test_cancel_connect (void)
{
  g_autoptr(GError) error = NULL;
  LsockName *name = lsock_test_namespaced_name ();
  LsockListener *listener = listener_with_backlog (name, 1);
  GCancellable *cancellable = g_cancellable_new ();
  LsockStream *first;
  GThread *thread;
  CancelLater cl;

  first = lsock_stream_connect (name, NULL, &error);
  g_assert_no_error (error);

  /* The only instance is taken for good: only the cancel ends the wait */
  thread = cancel_later_start (&cl, cancellable);
  cancel_later_about_to_block (&cl);
  g_assert_null (lsock_stream_connect (name, cancellable, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_clear_error (&error);
  cancel_later_finish (&cl, thread);

  g_assert_finalize_object (first);
  g_assert_finalize_object (cancellable);
  g_assert_finalize_object (listener);
  g_assert_finalize_object (name);
}

/* A cancelled (or timed-out) blocking read loses nothing: the bytes that
 * arrive later are read next */
static void
test_cancel_read (void)
{
  g_autoptr(GError) error = NULL;
  LsockName *name = lsock_test_namespaced_name ();
  LsockListener *listener = lsock_listener_new (name, &error);
  GCancellable *cancellable = g_cancellable_new ();
  LsockStream *client, *server;
  GInputStream *in;
  GThread *thread;
  CancelLater cl;
  char buf[8];

  g_assert_no_error (error);
  client = lsock_stream_connect (name, NULL, &error);
  g_assert_no_error (error);
  server = lsock_listener_accept (listener, NULL, &error);
  g_assert_no_error (error);
  in = g_io_stream_get_input_stream (G_IO_STREAM (server));

  thread = cancel_later_start (&cl, cancellable);
  cancel_later_about_to_block (&cl);
  g_assert_cmpint (g_input_stream_read (in, buf, sizeof buf, cancellable, &error), ==, -1);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_clear_error (&error);
  cancel_later_finish (&cl, thread);

  lsock_stream_set_timeout (server, 50);
  g_assert_cmpint (g_input_stream_read (in, buf, sizeof buf, NULL, &error), ==, -1);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
  g_clear_error (&error);
  lsock_stream_set_timeout (server, 0);

  send_all (client, "abc", 3);
  expect (server, "abc");

  g_assert_finalize_object (client);
  g_assert_finalize_object (server);
  g_assert_finalize_object (cancellable);
  g_assert_finalize_object (listener);
  g_assert_finalize_object (name);
}

/* Closing does not lose bytes already written, from either end */
static void
test_close_keeps_data (void)
{
  g_autoptr(GError) error = NULL;
  LsockName *name = lsock_test_namespaced_name ();
  LsockListener *listener = lsock_listener_new (name, &error);
  LsockStream *client, *server;
  GPollableOutputStream *out;
  char buf[4];
  gsize n = 0;

  g_assert_no_error (error);
  client = lsock_stream_connect (name, NULL, &error);
  g_assert_no_error (error);
  server = lsock_listener_accept (listener, NULL, &error);
  g_assert_no_error (error);

  /* Server end: closed without DisconnectNamedPipe */
  send_all (server, "srv", 3);
  g_assert_finalize_object (server);
  expect (client, "srv");
  g_assert_cmpint (g_input_stream_read (g_io_stream_get_input_stream (G_IO_STREAM (client)),
                                        buf, sizeof buf, NULL, &error), ==, 0);
  g_assert_no_error (error);
  g_assert_finalize_object (client);

  /* Client end, written without blocking */
  client = lsock_stream_connect (name, NULL, &error);
  g_assert_no_error (error);
  server = lsock_listener_accept (listener, NULL, &error);
  g_assert_no_error (error);
  out = G_POLLABLE_OUTPUT_STREAM (g_io_stream_get_output_stream (G_IO_STREAM (client)));
  g_assert_cmpint (g_pollable_output_stream_write_nonblocking (out, "cli", 3, NULL, &error), ==, 3);
  g_assert_no_error (error);
  g_assert_true (g_io_stream_close (G_IO_STREAM (client), NULL, &error));
  g_assert_no_error (error);
  g_input_stream_read_all (g_io_stream_get_input_stream (G_IO_STREAM (server)),
                           buf, sizeof buf, &n, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpmem (buf, n, "cli", 3);

  g_assert_finalize_object (client);
  g_assert_finalize_object (server);
  g_assert_finalize_object (listener);
  g_assert_finalize_object (name);
}

/* Writes @data without blocking while the stream takes it, which fills
 * the pipe (the peer is not reading) and leaves a write in flight. Returns
 * how much was accepted. */
static gsize
fill_nonblocking (LsockStream  *stream,
                  const guint8 *data,
                  gsize         size)
{
  GPollableOutputStream *out =
    G_POLLABLE_OUTPUT_STREAM (g_io_stream_get_output_stream (G_IO_STREAM (stream)));
  gsize queued = 0;

  while (queued < size)
    {
      g_autoptr(GError) error = NULL;
      gssize w = g_pollable_output_stream_write_nonblocking (out, data + queued, size - queued,
                                                             NULL, &error);
      if (w < 0)
        {
          g_assert_error (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK);
          break;
        }
      queued += w;
    }
  g_assert_cmpuint (queued, <, size);
  return queued;
}

/* Closing with a non-blocking write still in flight (the peer is not
 * reading) neither blocks nor loses it: the pipe lingers until it is read */
static void
test_close_lingers (void)
{
  g_autoptr(GError) error = NULL;
  LsockName *name = lsock_test_namespaced_name ();
  LsockListener *listener = lsock_listener_new (name, &error);
  LsockStream *client, *server;
  GPollableOutputStream *out;
  enum { SIZE = 256 * 1024 };
  g_autofree guint8 *data = g_malloc (SIZE);
  g_autofree guint8 *back = g_malloc (SIZE + 1);
  gsize queued, n = 0;

  g_assert_no_error (error);
  client = lsock_stream_connect (name, NULL, &error);
  g_assert_no_error (error);
  server = lsock_listener_accept (listener, NULL, &error);
  g_assert_no_error (error);
  for (gsize i = 0; i < SIZE; i++)
    data[i] = (guint8) (i * 7 + i / 251);

  out = G_POLLABLE_OUTPUT_STREAM (g_io_stream_get_output_stream (G_IO_STREAM (client)));
  queued = fill_nonblocking (client, data, SIZE);
  g_assert_false (g_pollable_output_stream_is_writable (out));

  /* A close that waited for the peer to read would never return here: the
   * peer reads only after it */
  g_assert_true (g_io_stream_close (G_IO_STREAM (client), NULL, &error));
  g_assert_no_error (error);
  g_assert_finalize_object (client);

  g_input_stream_read_all (g_io_stream_get_input_stream (G_IO_STREAM (server)),
                           back, SIZE + 1, &n, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpmem (back, n, data, queued);

  g_assert_finalize_object (server);
  g_assert_finalize_object (listener);
  g_assert_finalize_object (name);
}

/* ---------------------------------------------------------------------- */

/* Windows cancels the overlapped I/O a thread started when that thread
 * exits, unless the handle is bound to a completion port and the I/O has
 * no event. A stream or listener used from a short-lived thread must not
 * lose anything to that: not a write in flight, not a lingering close, not
 * a client connecting to an instance whose wait the thread had started. */

typedef struct
{
  LsockStream  *stream;
  const guint8 *data;
  gsize         size;
  gboolean      then_close;
  gsize         queued;
} FillThread;

static gpointer
fill_thread (gpointer user_data)
{
  FillThread *ft = user_data;

  ft->queued = fill_nonblocking (ft->stream, ft->data, ft->size);
  if (ft->then_close)
    g_io_stream_close (G_IO_STREAM (ft->stream), NULL, NULL);
  return NULL;
}

static void
check_thread_exit_write (gboolean then_close)
{
  g_autoptr(GError) error = NULL;
  LsockTestPair pair = { 0 };
  enum { SIZE = 256 * 1024 };
  g_autofree guint8 *data = g_malloc (SIZE);
  g_autofree guint8 *back = g_malloc (SIZE + 1);
  FillThread ft;
  gsize n = 0;

  lsock_test_pair_open (&pair, lsock_test_namespaced_name ());
  for (gsize i = 0; i < SIZE; i++)
    data[i] = (guint8) (i * 11 + i / 253);

  ft = (FillThread) { pair.client, data, SIZE, then_close, 0 };
  g_thread_join (g_thread_new ("fill", fill_thread, &ft));

  /* The thread is gone, its last write still in flight. Bounded: bytes
   * lost would otherwise leave this read waiting for ever. */
  lsock_stream_set_timeout (pair.server, lsock_test_wait_seconds () * 1000);
  g_input_stream_read_all (g_io_stream_get_input_stream (G_IO_STREAM (pair.server)),
                           back, then_close ? SIZE + 1 : ft.queued, &n, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpmem (back, n, data, ft.queued);

  if (!then_close)
    {
      /* And the stream goes on working */
      send_all (pair.client, "more", 4);
      expect (pair.server, "more");
    }
  lsock_test_pair_close (&pair);
}

static void
test_thread_exit_write (void)
{
  check_thread_exit_write (FALSE);
}

static void
test_thread_exit_close (void)
{
  check_thread_exit_write (TRUE);
}

static gpointer
listen_thread (gpointer user_data)
{
  g_autoptr(GError) error = NULL;
  LsockListener *listener = lsock_listener_new (user_data, &error);

  g_assert_no_error (error);
  return listener;
}

static void
test_thread_exit_listener (void)
{
  g_autoptr(GError) error = NULL;
  LsockName *name = lsock_test_namespaced_name ();
  LsockListener *listener;
  GAsyncResult *result = NULL;
  LsockStream *client, *server;

  /* Its instances' ConnectNamedPipe() were started there */
  listener = g_thread_join (g_thread_new ("listen", listen_thread, name));

  client = lsock_stream_connect (name, NULL, &error);
  g_assert_no_error (error);
  lsock_listener_accept_async (listener, NULL, lsock_test_store_result, &result);
  lsock_test_wait_until (result != NULL);
  server = lsock_listener_accept_finish (listener, result, &error);
  g_assert_no_error (error);
  g_clear_object (&result);

  send_all (client, "hi", 2);
  expect (server, "hi");
  send_all (server, "ho", 2);
  expect (client, "ho");

  g_assert_finalize_object (client);
  g_assert_finalize_object (server);
  lsock_listener_close (listener);
  g_assert_finalize_object (listener);
  g_assert_finalize_object (name);
}

/* A pending async read (pollable, no thread) ends with EOF when the peer
 * closes, at either end */
static void
test_async_eof (void)
{
  g_autoptr(GError) error = NULL;
  LsockName *name = lsock_test_namespaced_name ();
  LsockListener *listener = lsock_listener_new (name, &error);

  g_assert_no_error (error);
  for (int closing_end = 0; closing_end < 2; closing_end++)
    {
      LsockStream *client, *server, *reader;
      GAsyncResult *result = NULL;
      char buf[8];

      client = lsock_stream_connect (name, NULL, &error);
      g_assert_no_error (error);
      server = lsock_listener_accept (listener, NULL, &error);
      g_assert_no_error (error);
      reader = closing_end == 0 ? client : server;

      g_input_stream_read_async (g_io_stream_get_input_stream (G_IO_STREAM (reader)),
                                 buf, sizeof buf, G_PRIORITY_DEFAULT, NULL,
                                 lsock_test_store_result, &result);
      while (g_main_context_iteration (NULL, FALSE));
      g_assert_null (result);
      if (closing_end == 0)
        g_clear_object (&server);
      else
        g_clear_object (&client);
      lsock_test_wait_until (result != NULL);
      g_assert_cmpint (g_input_stream_read_finish (g_io_stream_get_input_stream (G_IO_STREAM (reader)),
                                                   result, &error), ==, 0);
      g_assert_no_error (error);
      g_clear_object (&result);
      g_clear_object (&client);
      g_clear_object (&server);
    }

  g_assert_finalize_object (listener);
  g_assert_finalize_object (name);
}

/* Listeners, streams and their async operations leave no handles behind */
static void
handle_round (void)
{
  g_autoptr(GError) error = NULL;
  LsockName *name = lsock_test_namespaced_name ();
  LsockListener *listener = lsock_listener_new (name, &error);
  GAsyncResult *result = NULL;
  LsockStream *client, *server;
  char buf[4];

  g_assert_no_error (error);
  lsock_listener_accept_async (listener, NULL, lsock_test_store_result, &result);
  client = lsock_stream_connect (name, NULL, &error);
  g_assert_no_error (error);
  lsock_test_wait_until (result != NULL);
  server = lsock_listener_accept_finish (listener, result, &error);
  g_assert_no_error (error);
  g_clear_object (&result);

  g_input_stream_read_async (g_io_stream_get_input_stream (G_IO_STREAM (server)), buf, 4,
                             G_PRIORITY_DEFAULT, NULL, lsock_test_store_result, &result);
  send_all (client, "ping", 4);
  lsock_test_wait_until (result != NULL);
  g_assert_cmpint (g_input_stream_read_finish (g_io_stream_get_input_stream (G_IO_STREAM (server)),
                                               result, &error), ==, 4);
  g_clear_object (&result);

  g_assert_finalize_object (client);
  g_assert_finalize_object (server);
  g_assert_finalize_object (listener);
  g_assert_finalize_object (name);
  while (g_main_context_iteration (NULL, FALSE));
}

static void
test_no_handle_leaks (void)
{
  DWORD before = 0, after = 0;

  handle_round ();  /* GLib's own lasting handles */
  g_assert_true (GetProcessHandleCount (GetCurrentProcess (), &before));
  for (int i = 0; i < 20; i++)
    handle_round ();
  g_assert_true (GetProcessHandleCount (GetCurrentProcess (), &after));
  g_test_message ("handles: %lu before, %lu after", (gulong) before, (gulong) after);
  if (before == 0 && running_on_wine ())
    {
      g_test_incomplete ("Wine's GetProcessHandleCount() always says 0");
      return;
    }
  g_assert_cmpuint (after, <=, before + 2);
}

/* ---------------------------------------------------------------------- */
/* Names that would step out of the pipe namespace. "\\.\pipe\..\C:\file"
 * is normalised by Win32 to the file C:\file: a client would read and
 * write it, a listener create it. Refused, however written. */
static void
test_name_escape (void)
{
  g_autofree char *victim = g_build_filename (lsock_test_tmp_dir (), "victim", NULL);
  g_autofree char *contents = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *to_victim = g_strconcat ("..\\", victim, NULL);
  const char *bad[] = {
    to_victim,                    /* the file itself */
    "..\\UNC\\host\\share\\x",    /* another machine */
    "a/b", "a\\b", "\\", "/",
  };

  g_assert_true (g_file_set_contents (victim, "secret", -1, &error));
  g_assert_no_error (error);

  for (gsize i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      const char *raw = bad[i];
      g_autofree char *at = g_strconcat ("@", raw, NULL);
      g_autofree char *pipe = g_strconcat ("\\\\.\\pipe\\", raw, NULL);
      const char *forms[] = { at, pipe };

      g_test_message ("name %s", raw);
      g_assert_null (lsock_name_new_namespaced (raw, &error));
      g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
      g_clear_error (&error);
      for (gsize j = 0; j < G_N_ELEMENTS (forms); j++)
        {
          LsockName *name = lsock_name_parse (forms[j], &error);

          if (name != NULL)
            {
              /* Accepted: show what it would do (the old bug) */
              LsockStream *stream = lsock_stream_connect_full (name, LSOCK_ACCESS_EVERYONE,
                                                               1000, NULL, NULL);
              g_clear_object (&stream);
              g_object_unref (name);
              g_error ("“%s” was taken as the pipe name “%s”", forms[j], raw);
            }
          g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
          g_clear_error (&error);
        }
    }

  /* "." and ".." alone are plain pipe names: one component, opened
   * without normalisation */
  for (gsize i = 0; i < 2; i++)
    {
      LsockName *name = lsock_name_new_namespaced (i == 0 ? "." : "..", &error);
      LsockListener *listener;
      LsockStream *client, *server;

      g_assert_no_error (error);
      listener = lsock_listener_new (name, &error);
      if (listener == NULL && running_on_wine ())
        {
          g_test_message ("Wine: %s", error->message);
          g_clear_error (&error);
          g_object_unref (name);
          continue;
        }
      g_assert_no_error (error);
      client = lsock_stream_connect (name, NULL, &error);
      g_assert_no_error (error);
      server = lsock_listener_accept (listener, NULL, &error);
      g_assert_no_error (error);
      send_all (client, "dot", 3);
      expect (server, "dot");
      g_assert_finalize_object (client);
      g_assert_finalize_object (server);
      g_assert_finalize_object (listener);
      g_assert_finalize_object (name);
    }

  g_assert_true (g_file_get_contents (victim, &contents, NULL, &error));
  g_assert_no_error (error);
  g_assert_cmpstr (contents, ==, "secret");
}

/* Wine has one user: the checks of both ends are made to see another by
 * giving this process, for the moment, a different user SID (Everyone's)
 * through _lsock_win32_user_for_testing. */
#define OTHER_SID "S-1-1-0"

typedef struct
{
  guint         n_rejected;
  GCredentials *credentials;
} Rejected;

static void
peer_rejected_cb (LsockListener *listener,
                  GCredentials  *credentials,
                  Rejected      *rejected)
{
  rejected->n_rejected++;
  g_clear_object (&rejected->credentials);
  if (credentials != NULL)
    rejected->credentials = g_object_ref (credentials);
}

/* A listener under LSOCK_ACCESS_USER checks each client's user (its
 * process token), not only the DACL: a client of another user is closed,
 * and peer-rejected says who it was */
static void
test_user_check_listener (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  LsockName *name = lsock_test_namespaced_name ();
  LsockListener *listener;
  LsockStream *client;
  GAsyncResult *result = NULL;
  Rejected rejected = { 0 };
  char buf[8];
  gssize n;
  DWORD pid = 0;

  _lsock_win32_user_for_testing = OTHER_SID;
  listener = lsock_listener_new (name, &error);
  _lsock_win32_user_for_testing = NULL;
  g_assert_no_error (error);
  g_signal_connect (listener, "peer-rejected", G_CALLBACK (peer_rejected_cb), &rejected);

  /* The DACL lets the pipe open: the per-client check refuses it */
  client = lsock_stream_connect (name, NULL, &error);
  g_assert_no_error (error);
  lsock_listener_accept_async (listener, cancellable, lsock_test_store_result, &result);
  while (rejected.n_rejected == 0)
    g_main_context_iteration (NULL, TRUE);
  g_assert_null (result);
  g_assert_nonnull (rejected.credentials);
  g_assert_true (g_credentials_get_native (rejected.credentials, G_CREDENTIALS_TYPE_WIN32_PID) != NULL);
  pid = *(DWORD *) g_credentials_get_native (rejected.credentials, G_CREDENTIALS_TYPE_WIN32_PID);
  g_assert_cmpuint (pid, ==, GetCurrentProcessId ());

  /* The client sees its connection end, nothing more */
  n = g_input_stream_read (g_io_stream_get_input_stream (G_IO_STREAM (client)),
                           buf, sizeof buf, NULL, &error);
  if (n < 0)
    g_assert_error (error, G_IO_ERROR, G_IO_ERROR_BROKEN_PIPE);
  else
    g_assert_cmpint (n, ==, 0);
  g_clear_error (&error);

  g_cancellable_cancel (cancellable);
  lsock_test_wait_until (result);
  g_assert_null (lsock_listener_accept_finish (listener, result, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_clear_object (&result);
  g_clear_object (&rejected.credentials);
  g_assert_finalize_object (client);
  g_assert_finalize_object (listener);
  g_assert_finalize_object (name);
}

/* A client checks the server's user: a pipe served by another user (a
 * squatter who made the first instance) gets PERMISSION_DENIED and
 * nothing; LSOCK_ACCESS_EVERYONE talks to it anyway */
static void
test_user_check_client (void)
{
  g_autoptr(GError) error = NULL;
  LsockName *name = lsock_test_namespaced_name ();
  LsockListener *listener = lsock_listener_new (name, &error);
  LsockStream *client, *server;
  char buf[8];

  g_assert_no_error (error);
  _lsock_win32_user_for_testing = OTHER_SID;
  lsock_test_assert_connect_fails (name, G_IO_ERROR_PERMISSION_DENIED, "another user");

  client = lsock_stream_connect_full (name, LSOCK_ACCESS_EVERYONE, 0, NULL, &error);
  _lsock_win32_user_for_testing = NULL;
  g_assert_no_error (error);

  /* The two refused clients closed before sending anything */
  for (int i = 0; i < 2; i++)
    {
      server = lsock_listener_accept (listener, NULL, &error);
      g_assert_no_error (error);
      g_assert_cmpint (g_input_stream_read (g_io_stream_get_input_stream (G_IO_STREAM (server)),
                                            buf, sizeof buf, NULL, NULL), <=, 0);
      g_assert_finalize_object (server);
    }
  server = lsock_listener_accept (listener, NULL, &error);
  g_assert_no_error (error);
  send_all (client, "anyway", 6);
  expect (server, "anyway");

  g_assert_finalize_object (client);
  g_assert_finalize_object (server);
  g_assert_finalize_object (listener);
  g_assert_finalize_object (name);
}

/* An elevated listener under LSOCK_ACCESS_USER carries a high mandatory
 * label: the user's processes that are not elevated cannot write to it */
static void
test_elevated_label (void)
{
  g_autoptr(GError) error = NULL;
  LsockName *name;
  LsockListener *listener;
  LsockStream *client;
  PSECURITY_DESCRIPTOR sd = NULL;
  PACL sacl = NULL;
  ACL_SIZE_INFORMATION info = { 0, };
  gboolean found = FALSE;
  DWORD res;

  if (!_lsock_win32_is_elevated ())
    {
      g_test_skip ("Not elevated");
      return;
    }
  name = lsock_test_namespaced_name ();
  listener = lsock_listener_new (name, &error);
  g_assert_no_error (error);
  client = lsock_stream_connect (name, NULL, &error);
  g_assert_no_error (error);

  res = GetSecurityInfo (_lsock_stream_get_pipe (client), SE_KERNEL_OBJECT,
                         LABEL_SECURITY_INFORMATION, NULL, NULL, NULL, &sacl, &sd);
  if (res == ERROR_SUCCESS && sacl != NULL &&
      GetAclInformation (sacl, &info, sizeof info, AclSizeInformation))
    {
      for (DWORD i = 0; i < info.AceCount; i++)
        {
          ACE_HEADER *ace = NULL;

          if (GetAce (sacl, i, (void **) &ace) && ace->AceType == SYSTEM_MANDATORY_LABEL_ACE_TYPE)
            {
              SYSTEM_MANDATORY_LABEL_ACE *label = (SYSTEM_MANDATORY_LABEL_ACE *) ace;
              PSID sid = &label->SidStart;

              g_assert_cmpuint (*GetSidSubAuthority (sid, 0), ==, SECURITY_MANDATORY_HIGH_RID);
              g_assert_true (label->Mask & SYSTEM_MANDATORY_LABEL_NO_WRITE_UP);
              found = TRUE;
            }
        }
    }
  if (sd != NULL)
    LocalFree (sd);
  if (!found && running_on_wine ())
    g_test_incomplete ("Wine does not return the mandatory label of a named pipe");
  else
    g_assert_true (found);

  g_assert_finalize_object (client);
  g_assert_finalize_object (listener);
  g_assert_finalize_object (name);
}

#else /* !G_OS_WIN32 */

# define WIN32_ONLY_TEST(fn) \
  static void fn (void) { g_test_skip ("Windows only: named pipes"); }
WIN32_ONLY_TEST (test_dacl_user)
WIN32_ONLY_TEST (test_dacl_everyone)
WIN32_ONLY_TEST (test_first_instance)
WIN32_ONLY_TEST (test_busy_wait)
WIN32_ONLY_TEST (test_burst)
WIN32_ONLY_TEST (test_duplex_threads)
WIN32_ONLY_TEST (test_cancel_accept)
WIN32_ONLY_TEST (test_cancel_connect)
WIN32_ONLY_TEST (test_cancel_read)
WIN32_ONLY_TEST (test_close_keeps_data)
WIN32_ONLY_TEST (test_async_eof)
WIN32_ONLY_TEST (test_close_lingers)
WIN32_ONLY_TEST (test_thread_exit_write)
WIN32_ONLY_TEST (test_thread_exit_close)
WIN32_ONLY_TEST (test_thread_exit_listener)
WIN32_ONLY_TEST (test_no_handle_leaks)
WIN32_ONLY_TEST (test_name_escape)
WIN32_ONLY_TEST (test_user_check_listener)
WIN32_ONLY_TEST (test_user_check_client)
WIN32_ONLY_TEST (test_elevated_label)

#endif /* G_OS_WIN32 */

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);

  g_test_add_func ("/lsock/win32/dacl/user", test_dacl_user);
  g_test_add_func ("/lsock/win32/dacl/everyone", test_dacl_everyone);
  g_test_add_func ("/lsock/win32/first-instance", test_first_instance);
  g_test_add_func ("/lsock/win32/busy-wait", test_busy_wait);
  g_test_add_func ("/lsock/win32/burst", test_burst);
  g_test_add_func ("/lsock/win32/duplex-threads", test_duplex_threads);
  g_test_add_func ("/lsock/win32/cancel/accept", test_cancel_accept);
  g_test_add_func ("/lsock/win32/cancel/connect", test_cancel_connect);
  g_test_add_func ("/lsock/win32/cancel/read", test_cancel_read);
  g_test_add_func ("/lsock/win32/close-keeps-data", test_close_keeps_data);
  g_test_add_func ("/lsock/win32/async-eof", test_async_eof);
  g_test_add_func ("/lsock/win32/close-lingers", test_close_lingers);
  g_test_add_func ("/lsock/win32/thread-exit/write", test_thread_exit_write);
  g_test_add_func ("/lsock/win32/thread-exit/close", test_thread_exit_close);
  g_test_add_func ("/lsock/win32/thread-exit/listener", test_thread_exit_listener);
  g_test_add_func ("/lsock/win32/no-handle-leaks", test_no_handle_leaks);
  g_test_add_func ("/lsock/win32/security/name-escape", test_name_escape);
  g_test_add_func ("/lsock/win32/security/user-check/listener", test_user_check_listener);
  g_test_add_func ("/lsock/win32/security/user-check/client", test_user_check_client);
  g_test_add_func ("/lsock/win32/security/elevated-label", test_elevated_label);

  return g_test_run ();
}
