/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include "lsock-win32-private.h"
#include "lsock-i18n-private.h"

#include <sddl.h>

/* Windows backend helpers shared by lsock-{name,listener,stream}-win32.c:
 * the error mapping, a cancellable wait on event handles, and an event
 * GSource. */

#define MAX_WAIT_HANDLES 62   /* MAXIMUM_WAIT_OBJECTS (64) minus cancellable and spare */

GIOErrorEnum
_lsock_win32_error_to_io_error (DWORD         error_code,
                                LsockWin32Op  op)
{
  switch (error_code)
    {
    case ERROR_FILE_NOT_FOUND:
    case ERROR_PATH_NOT_FOUND:
    case ERROR_BAD_PATHNAME:
      /* No pipe instance of that name: nobody listens */
      return G_IO_ERROR_NOT_FOUND;

    case ERROR_ACCESS_DENIED:
      /* CreateNamedPipeW with FILE_FLAG_FIRST_PIPE_INSTANCE when another
       * process (or a listener of ours) owns the name */
      if (op == LSOCK_WIN32_OP_LISTEN)
        return G_IO_ERROR_ADDRESS_IN_USE;
      return G_IO_ERROR_PERMISSION_DENIED;

    case ERROR_PIPE_BUSY:
      /* When listening: the name exists with its instance limit reached */
      if (op == LSOCK_WIN32_OP_LISTEN)
        return G_IO_ERROR_ADDRESS_IN_USE;
      return G_IO_ERROR_BUSY;

    case ERROR_BROKEN_PIPE:
    case ERROR_NO_DATA:            /* "the pipe is being closed" */
    case ERROR_PIPE_NOT_CONNECTED:
      return G_IO_ERROR_BROKEN_PIPE;

    case ERROR_SEM_TIMEOUT:
    case WAIT_TIMEOUT:
    case ERROR_TIMEOUT:
      return G_IO_ERROR_TIMED_OUT;

    case ERROR_OPERATION_ABORTED:
    case ERROR_CANCELLED:
      return G_IO_ERROR_CANCELLED;

    case ERROR_INVALID_HANDLE:
      return G_IO_ERROR_CLOSED;

    case ERROR_TOO_MANY_OPEN_FILES:
    case ERROR_NO_SYSTEM_RESOURCES:
      return G_IO_ERROR_TOO_MANY_OPEN_FILES;

    case ERROR_INVALID_NAME:
    case ERROR_FILENAME_EXCED_RANGE:
      return G_IO_ERROR_INVALID_ARGUMENT;

    default:
      return g_io_error_from_win32_error (error_code);
    }
}

void
_lsock_win32_set_error (GError       **error,
                        DWORD          error_code,
                        LsockWin32Op   op,
                        const char    *display)
{
  g_autofree char *text = g_win32_error_message (error_code);
  GIOErrorEnum code = _lsock_win32_error_to_io_error (error_code, op);

  switch (op)
    {
    case LSOCK_WIN32_OP_CONNECT:
      if (code == G_IO_ERROR_NOT_FOUND)
        g_set_error (error, G_IO_ERROR, code,
                     _("Could not connect to “%s”: nobody is listening there"), display);
      else
        g_set_error (error, G_IO_ERROR, code,
                     _("Could not connect to “%s”: %s"), display, text);
      break;

    case LSOCK_WIN32_OP_LISTEN:
      if (code == G_IO_ERROR_ADDRESS_IN_USE)
        g_set_error (error, G_IO_ERROR, code,
                     _("Could not listen on “%s”: another listener has that name"), display);
      else
        g_set_error (error, G_IO_ERROR, code,
                     _("Could not listen on “%s”: %s"), display, text);
      break;

    case LSOCK_WIN32_OP_ACCEPT:
      g_set_error (error, G_IO_ERROR, code,
                   _("Could not accept a connection on “%s”: %s"), display, text);
      break;

    case LSOCK_WIN32_OP_READ:
      g_set_error (error, G_IO_ERROR, code,
                   _("Error reading from “%s”: %s"), display, text);
      break;

    case LSOCK_WIN32_OP_WRITE:
      g_set_error (error, G_IO_ERROR, code,
                   _("Error writing to “%s”: %s"), display, text);
      break;

    case LSOCK_WIN32_OP_OTHER:
    default:
      g_set_error (error, G_IO_ERROR, code, "“%s”: %s", display, text);
      break;
    }
}

int
_lsock_win32_wait (const HANDLE  *handles,
                   guint          n_handles,
                   int            timeout_ms,
                   GCancellable  *cancellable,
                   GError       **error)
{
  HANDLE all[MAXIMUM_WAIT_OBJECTS];
  GPollFD cancel_fd = { 0, };
  gboolean have_cancel;
  DWORD n = 0;
  DWORD res;
  gint64 deadline = 0;

  g_return_val_if_fail (n_handles <= MAX_WAIT_HANDLES, -1);

  if (g_cancellable_set_error_if_cancelled (cancellable, error))
    return -1;

  for (guint i = 0; i < n_handles; i++)
    all[n++] = handles[i];
  have_cancel = g_cancellable_make_pollfd (cancellable, &cancel_fd);
  if (have_cancel)
    all[n++] = (HANDLE) cancel_fd.fd;

  if (timeout_ms > 0)
    deadline = g_get_monotonic_time () + (gint64) timeout_ms * 1000;

  for (;;)
    {
      DWORD wait_ms = INFINITE;

      if (timeout_ms > 0)
        {
          gint64 left = deadline - g_get_monotonic_time ();
          wait_ms = left <= 0 ? 0 : (DWORD) ((left + 999) / 1000);
        }

      res = WaitForMultipleObjectsEx (n, all, FALSE, wait_ms, TRUE);
      if (res != WAIT_IO_COMPLETION)
        break;
    }

  if (have_cancel)
    g_cancellable_release_fd (cancellable);

  if (res == WAIT_TIMEOUT)
    return -2;
  if (res < WAIT_OBJECT_0 + n_handles)  /* WAIT_OBJECT_0 is 0 */
    return (int) (res - WAIT_OBJECT_0);
  if (have_cancel && res == WAIT_OBJECT_0 + n_handles)
    {
      if (!g_cancellable_set_error_if_cancelled (cancellable, error))
        g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_CANCELLED,
                             _("Operation was cancelled"));
      return -1;
    }
  if (g_cancellable_set_error_if_cancelled (cancellable, error))
    return -1;

  /* WAIT_FAILED or an abandoned mutex: not for event handles */
  {
    DWORD errsv = GetLastError ();
    g_autofree char *text = g_win32_error_message (errsv);

    g_set_error (error, G_IO_ERROR, g_io_error_from_win32_error (errsv),
                 "WaitForMultipleObjects: %s", text);
  }
  return -1;
}

/* ---------------------------------------------------------------------- */

typedef struct
{
  GSource   source;
  guint     n_fds;
  int      *timed_out;
  gint64    timeout_us;
  gpointer  owner;
  GDestroyNotify owner_free;
  GPollFD   fds[MAX_WAIT_HANDLES];
} HandleSource;

static gboolean
handle_source_prepare (GSource *source,
                       int     *timeout)
{
  *timeout = -1;
  return FALSE;
}

static gboolean
handle_source_check (GSource *source)
{
  HandleSource *self = (HandleSource *) source;

  for (guint i = 0; i < self->n_fds; i++)
    {
      if (self->fds[i].revents != 0)
        return TRUE;
    }
  return FALSE;
}

static gboolean
handle_source_dispatch (GSource     *source,
                        GSourceFunc  callback,
                        gpointer     user_data)
{
  HandleSource *self = (HandleSource *) source;
  gboolean signalled = FALSE;

  for (guint i = 0; i < self->n_fds; i++)
    {
      if (self->fds[i].revents != 0)
        signalled = TRUE;
      self->fds[i].revents = 0;
    }

  if (self->timeout_us > 0)
    {
      if (!signalled && g_source_get_time (source) >= g_source_get_ready_time (source) &&
          self->timed_out != NULL)
        g_atomic_int_set (self->timed_out, 1);
      g_source_set_ready_time (source, g_source_get_time (source) + self->timeout_us);
    }

  if (callback == NULL)
    return G_SOURCE_REMOVE;
  return callback (user_data);
}

/* Only g_source_set_dummy_callback() sets a closure on these private
 * sources (g_pollable_source_new_full() does, on its child) */
static gboolean
handle_source_closure_callback (gpointer data)
{
  return G_SOURCE_CONTINUE;
}

static void
handle_source_finalize (GSource *source)
{
  HandleSource *self = (HandleSource *) source;

  if (self->owner_free != NULL)
    self->owner_free (g_steal_pointer (&self->owner));
}

static GSourceFuncs handle_source_funcs = {
  handle_source_prepare,
  handle_source_check,
  handle_source_dispatch,
  handle_source_finalize,
  handle_source_closure_callback,
  NULL,
};

GSource *
_lsock_win32_handle_source_new (const HANDLE *handles,
                                guint         n_handles,
                                int           timeout_ms,
                                int          *timed_out,
                                gpointer      owner,
                                GDestroyNotify owner_free)
{
  GSource *source;
  HandleSource *self;

  g_return_val_if_fail (n_handles <= MAX_WAIT_HANDLES, NULL);

  source = g_source_new (&handle_source_funcs, sizeof (HandleSource));
  self = (HandleSource *) source;
  g_source_set_static_name (source, "[lsock] event");
  self->n_fds = n_handles;
  self->timed_out = timed_out;
  self->owner = owner;
  self->owner_free = owner_free;
  for (guint i = 0; i < n_handles; i++)
    {
      self->fds[i].fd = (gintptr) handles[i];
      self->fds[i].events = G_IO_IN;
      g_source_add_poll (source, &self->fds[i]);
    }
  if (timeout_ms > 0)
    {
      self->timeout_us = (gint64) timeout_ms * 1000;
      g_source_set_ready_time (source, g_get_monotonic_time () + self->timeout_us);
    }

  return source;
}

/* "Local\\lsock-gobject-<sha256 of the case-folded name>": pipe names are
 * case-insensitive, object names are limited in length and may not
 * contain a backslash */
static gunichar2 *
marker_name (const char *name)
{
  g_autofree char *folded = g_utf8_casefold (name, -1);
  g_autofree char *sum = g_compute_checksum_for_string (G_CHECKSUM_SHA256, folded, -1);
  g_autofree char *object = g_strconcat ("Local\\lsock-gobject-", sum, NULL);

  return g_utf8_to_utf16 (object, -1, NULL, NULL, NULL);
}

HANDLE
_lsock_win32_marker_create (const char *name)
{
  g_autofree gunichar2 *object = marker_name (name);

  return CreateEventW (NULL, TRUE, FALSE, object);
}

gboolean
_lsock_win32_marker_exists (const char *name)
{
  g_autofree gunichar2 *object = marker_name (name);
  HANDLE event = OpenEventW (SYNCHRONIZE, FALSE, object);

  if (event != NULL)
    {
      CloseHandle (event);
      return TRUE;
    }
  /* Someone else's: a listener of another user */
  return GetLastError () == ERROR_ACCESS_DENIED;
}

const char *_lsock_win32_user_for_testing = NULL;

PSID
_lsock_win32_dup_process_user (DWORD  pid,
                               DWORD *out_error)
{
  HANDLE process;
  HANDLE token = NULL;
  TOKEN_USER *user = NULL;
  PSID sid = NULL;
  DWORD len = 0;

  if (pid == 0 && _lsock_win32_user_for_testing != NULL)
    {
      g_autofree gunichar2 *sid_w = g_utf8_to_utf16 (_lsock_win32_user_for_testing, -1,
                                                     NULL, NULL, NULL);

      if (!ConvertStringSidToSidW (sid_w, &sid))
        *out_error = GetLastError ();
      return sid;
    }

  process = pid == 0 ? GetCurrentProcess () :
                       OpenProcess (PROCESS_QUERY_LIMITED_INFORMATION, FALSE, pid);

  if (process == NULL || !OpenProcessToken (process, TOKEN_QUERY, &token))
    goto out;
  GetTokenInformation (token, TokenUser, NULL, 0, &len);
  user = g_malloc0 (MAX (len, sizeof (TOKEN_USER)));
  if (!GetTokenInformation (token, TokenUser, user, len, &len))
    goto out;
  len = GetLengthSid (user->User.Sid);
  sid = LocalAlloc (LPTR, len);
  if (sid != NULL)
    CopySid (len, sid, user->User.Sid);

out:
  if (sid == NULL)
    *out_error = GetLastError ();
  g_free (user);
  if (token != NULL)
    CloseHandle (token);
  if (process != NULL && pid != 0)
    CloseHandle (process);
  return sid;
}

gboolean
_lsock_win32_is_elevated (void)
{
  TOKEN_ELEVATION elevation = { 0 };
  HANDLE token = NULL;
  DWORD len = sizeof elevation;
  gboolean ret = FALSE;

  if (OpenProcessToken (GetCurrentProcess (), TOKEN_QUERY, &token))
    {
      ret = GetTokenInformation (token, TokenElevation, &elevation, sizeof elevation, &len) &&
            elevation.TokenIsElevated;
      CloseHandle (token);
    }
  return ret;
}
