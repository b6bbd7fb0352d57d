/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include "lsock-listener-private.h"
#include "lsock-name-private.h"
#include "lsock-stream-private.h"
#include "lsock-i18n-private.h"
#include "lsock-win32-private.h"

#include <sddl.h>

/* Windows backend of LsockListener: named pipe instances.
 *
 * A named pipe has no listening socket: each client connects to a server
 * instance of its own. The listener keeps `backlog` instances (at most
 * MAX_INSTANCES) waiting in an overlapped ConnectNamedPipe(), each in a
 * slot with its own manual-reset event. The first instance is created with
 * FILE_FLAG_FIRST_PIPE_INSTANCE, so a name that is already taken fails with
 * G_IO_ERROR_ADDRESS_IN_USE. Before a connected instance is handed out, its
 * replacement is created and armed in the same slot (reusing the slot's
 * event), so the name is never unowned and a burst of clients does not see
 * ERROR_PIPE_BUSY, and sources created earlier keep polling the right
 * events. The events are polled by a plain GSource on the caller's main
 * context (accept_async, start()), so no thread waits for clients.
 *
 * Every instance is overlapped, rejects remote clients and carries a DACL:
 * the current user only (LSOCK_ACCESS_USER), or also everyone else without
 * the right to create instances (FILE_CREATE_PIPE_INSTANCE, which is
 * FILE_APPEND_DATA) for LSOCK_ACCESS_EVERYONE, so that no other user can
 * plant a rogue instance under our name. */

#define MAX_INSTANCES 60   /* + the closed event + a cancellable: within 64 */

typedef struct
{
  HANDLE      pipe;        /* INVALID_HANDLE_VALUE: empty */
  HANDLE      event;       /* the slot's, for its lifetime */
  OVERLAPPED  overlapped;  /* hEvent: the event, tagged, see slot_arm() */
  guint       pending : 1; /* ConnectNamedPipe() in flight */
  guint       connected : 1;
} Slot;

typedef struct
{
  gatomicrefcount       ref_count;
  gunichar2            *path;
  PSECURITY_DESCRIPTOR  security;     /* LocalFree() */
  PSID                  owner;        /* this process's user, LocalFree() */
  HANDLE                closed_event; /* set by close(): wakes blocking accepts */
  HANDLE                marker;       /* see _lsock_win32_marker_create() */
  gboolean              closed;
  guint                 n_slots;
  HANDLE                events[MAX_INSTANCES];
  Slot                  slots[MAX_INSTANCES];
} Backend;

static Backend *
backend_ref (Backend *backend)
{
  g_atomic_ref_count_inc (&backend->ref_count);
  return backend;
}

static void
backend_unref (Backend *backend)
{
  if (!g_atomic_ref_count_dec (&backend->ref_count))
    return;

  for (guint i = 0; i < backend->n_slots; i++)
    {
      g_assert (backend->slots[i].pipe == INVALID_HANDLE_VALUE);
      CloseHandle (backend->events[i]);
    }
  if (backend->closed_event != NULL)
    CloseHandle (backend->closed_event);
  if (backend->marker != NULL)
    CloseHandle (backend->marker);
  if (backend->security != NULL)
    LocalFree (backend->security);
  if (backend->owner != NULL)
    LocalFree (backend->owner);
  g_free (backend->path);
  g_free (backend);
}

/* "S-1-5-21-…" of the user this process runs as */
static char *
dup_user_sid_string (DWORD *out_error)
{
  PSID user = _lsock_win32_dup_process_user (0, out_error);
  wchar_t *sid_w = NULL;
  char *sid;

  if (user == NULL)
    return NULL;
  if (!ConvertSidToStringSidW (user, &sid_w))
    {
      *out_error = GetLastError ();
      LocalFree (user);
      return NULL;
    }
  LocalFree (user);
  sid = g_utf16_to_utf8 (sid_w, -1, NULL, NULL, NULL);
  LocalFree (sid_w);
  return sid;
}

/* The DACL of every instance. FA (FILE_ALL_ACCESS) for the owner only;
 * with LSOCK_ACCESS_EVERYONE, Everyone (WD) may also read and write data,
 * but FILE_APPEND_DATA, which for pipes is FILE_CREATE_PIPE_INSTANCE, is
 * never granted. "P": not inherited. */
static gboolean
build_security (LsockListener  *self,
                Backend        *backend,
                GError        **error)
{
  g_autofree char *sid = NULL;
  g_autofree char *sddl = NULL;
  g_autofree gunichar2 *sddl_w = NULL;
  DWORD errsv = 0;

  sid = dup_user_sid_string (&errsv);
  if (sid == NULL)
    goto fail;

  if (self->access == LSOCK_ACCESS_EVERYONE)
    sddl = g_strdup_printf ("D:P(A;;FA;;;%s)(A;;0x%lx;;;WD)", sid,
                            (unsigned long) ((FILE_GENERIC_READ | FILE_GENERIC_WRITE) &
                                             ~(DWORD) FILE_APPEND_DATA));
  else if (_lsock_win32_is_elevated ())
    {
      /* An elevated listener: a process of the same user at medium
       * integrity (anything not run as administrator) may not write to it
       * either (no-write-up, at high integrity) */
      sddl = g_strdup_printf ("D:P(A;;FA;;;%s)S:(ML;;NW;;;HI)", sid);
    }
  else
    sddl = g_strdup_printf ("D:P(A;;FA;;;%s)", sid);

  sddl_w = g_utf8_to_utf16 (sddl, -1, NULL, NULL, NULL);
  if (!ConvertStringSecurityDescriptorToSecurityDescriptorW (sddl_w, SDDL_REVISION_1,
                                                             &backend->security, NULL))
    {
      errsv = GetLastError ();
      goto fail;
    }
  return TRUE;

fail:
  {
    g_autofree char *text = g_win32_error_message (errsv);

    g_set_error (error, G_IO_ERROR, _lsock_win32_error_to_io_error (errsv, LSOCK_WIN32_OP_OTHER),
                 _("Could not listen on “%s”: could not set up its access control: %s"),
                 _lsock_name_get_display (self->name), text);
  }
  return FALSE;
}

static HANDLE
create_instance (Backend  *backend,
                 gboolean  first)
{
  SECURITY_ATTRIBUTES sa = { sizeof sa, backend->security, FALSE };

  return CreateNamedPipeW (backend->path,
                           PIPE_ACCESS_DUPLEX | FILE_FLAG_OVERLAPPED |
                           (first ? FILE_FLAG_FIRST_PIPE_INSTANCE : 0),
                           PIPE_TYPE_BYTE | PIPE_READMODE_BYTE | PIPE_WAIT |
                           PIPE_REJECT_REMOTE_CLIENTS,
                           PIPE_UNLIMITED_INSTANCES,
                           LSOCK_WIN32_BUFFER_SIZE, LSOCK_WIN32_BUFFER_SIZE,
                           0, &sa);
}

static void
slot_clear (Slot *slot)
{
  if (slot->pipe != INVALID_HANDLE_VALUE)
    {
      if (slot->pending)
        {
          DWORD n;

          CancelIoEx (slot->pipe, &slot->overlapped);
          GetOverlappedResult (slot->pipe, &slot->overlapped, &n, TRUE);
        }
      CloseHandle (slot->pipe);
    }
  slot->pipe = INVALID_HANDLE_VALUE;
  slot->pending = FALSE;
  slot->connected = FALSE;
  ResetEvent (slot->event);
}

/* Starts waiting for a client on the slot's instance. FALSE (the slot is
 * emptied) on an error other than a client that came and went. */
static gboolean
slot_arm (Slot *slot)
{
  HANDLE event = slot->event;

  for (int attempt = 0; attempt < 16; attempt++)
    {
      DWORD errsv;

      ResetEvent (event);
      memset (&slot->overlapped, 0, sizeof slot->overlapped);
      /* The low-order bit: no completion packet for it, ever. A connected
       * instance becomes a stream, which binds it to a completion port;
       * should this wait's completion reach Wine's server only after
       * that, it would otherwise be posted there as one of the stream's. */
      slot->overlapped.hEvent = (HANDLE) ((ULONG_PTR) event | 1);
      slot->pending = FALSE;
      slot->connected = FALSE;

      if (ConnectNamedPipe (slot->pipe, &slot->overlapped))
        {
          slot->connected = TRUE;
          SetEvent (event);
          return TRUE;
        }

      errsv = GetLastError ();
      switch (errsv)
        {
        case ERROR_IO_PENDING:
          slot->pending = TRUE;
          return TRUE;

        case ERROR_PIPE_CONNECTED:
          /* A client connected between CreateNamedPipe and now */
          slot->connected = TRUE;
          SetEvent (event);
          return TRUE;

        case ERROR_NO_DATA:
          /* A client connected and already closed its end */
          DisconnectNamedPipe (slot->pipe);
          continue;

        default:
          g_debug ("ConnectNamedPipe failed: %lu", (gulong) errsv);
          slot_clear (slot);
          return FALSE;
        }
    }

  slot_clear (slot);
  return FALSE;
}

/* Checks, without waiting, whether the slot's instance got a client */
static void
slot_poll (Slot *slot)
{
  DWORD n, errsv;

  if (slot->pipe == INVALID_HANDLE_VALUE || !slot->pending)
    return;

  if (GetOverlappedResult (slot->pipe, &slot->overlapped, &n, FALSE))
    {
      slot->pending = FALSE;
      slot->connected = TRUE;
      return;
    }

  errsv = GetLastError ();
  if (errsv == ERROR_IO_INCOMPLETE)
    return;

  slot->pending = FALSE;
  /* ERROR_OPERATION_ABORTED: the thread that started the wait has exited,
   * which cancels its I/O (close() collects its own cancels), and a client
   * may have connected since: wait again on the instance as it is, which
   * takes such a client as connected. Otherwise the client gave up
   * (ERROR_NO_DATA, ERROR_BROKEN_PIPE) or the wait failed: start over on
   * the same instance. */
  if (errsv != ERROR_OPERATION_ABORTED)
    DisconnectNamedPipe (slot->pipe);
  slot_arm (slot);
}

/* Fills empty slots (a replacement that could not be made earlier) */
static void
refill (Backend *backend)
{
  for (guint i = 0; i < backend->n_slots; i++)
    {
      Slot *slot = &backend->slots[i];

      if (slot->pipe != INVALID_HANDLE_VALUE)
        continue;
      slot->pipe = create_instance (backend, FALSE);
      if (slot->pipe == INVALID_HANDLE_VALUE)
        {
          g_debug ("Could not create a pipe instance: %lu", (gulong) GetLastError ());
          return;
        }
      slot_arm (slot);
    }
}

/* A connected instance, its slot re-armed on a new instance first; or
 * INVALID_HANDLE_VALUE. Called with the listener's lock held. */
static HANDLE
take_connected (Backend *backend)
{
  refill (backend);

  for (guint i = 0; i < backend->n_slots; i++)
    {
      Slot *slot = &backend->slots[i];
      HANDLE connected;

      slot_poll (slot);
      if (!slot->connected)
        continue;

      connected = slot->pipe;
      slot->connected = FALSE;
      /* The replacement first, so the name always has a waiting instance */
      slot->pipe = create_instance (backend, FALSE);
      if (slot->pipe != INVALID_HANDLE_VALUE)
        slot_arm (slot);
      else
        {
          g_debug ("Could not create a pipe instance: %lu", (gulong) GetLastError ());
          slot_clear (slot);
        }
      return connected;
    }

  return INVALID_HANDLE_VALUE;
}

gboolean
_lsock_listener_bind_impl (LsockListener  *self,
                           GCancellable   *cancellable,
                           GError        **error)
{
  Backend *backend;
  const char *display = _lsock_name_get_display (self->name);
  DWORD errsv;

  if (lsock_name_get_kind (self->name) != LSOCK_NAME_KIND_NAMESPACED)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                   _("Could not listen on “%s”: socket files are not supported on Windows"),
                   display);
      return FALSE;
    }

  backend = g_new0 (Backend, 1);
  g_atomic_ref_count_init (&backend->ref_count);
  backend->path = _lsock_name_dup_pipe_path_utf16 (self->name);
  backend->n_slots = CLAMP (self->backlog, 1, MAX_INSTANCES);
  backend->closed_event = CreateEventW (NULL, TRUE, FALSE, NULL);
  for (guint i = 0; i < backend->n_slots; i++)
    {
      backend->events[i] = CreateEventW (NULL, TRUE, FALSE, NULL);
      backend->slots[i].pipe = INVALID_HANDLE_VALUE;
      backend->slots[i].event = backend->events[i];
    }

  if (!build_security (self, backend, error))
    goto fail;
  if (self->access == LSOCK_ACCESS_USER &&
      (backend->owner = _lsock_win32_dup_process_user (0, &errsv)) == NULL)
    {
      _lsock_win32_set_error (error, errsv, LSOCK_WIN32_OP_LISTEN, display);
      goto fail;
    }

  /* FILE_FLAG_FIRST_PIPE_INSTANCE is what guards the name. Check first that
   * nobody serves it (without connecting to it) as well: Wine ignores that
   * flag, and this gives a clear error in the common case there too. */
  if (WaitNamedPipeW (backend->path, 1) || GetLastError () == ERROR_SEM_TIMEOUT)
    {
      _lsock_win32_set_error (error, ERROR_ACCESS_DENIED, LSOCK_WIN32_OP_LISTEN, display);
      goto fail;
    }

  backend->slots[0].pipe = create_instance (backend, TRUE);
  if (backend->slots[0].pipe == INVALID_HANDLE_VALUE)
    {
      errsv = GetLastError ();
      _lsock_win32_set_error (error, errsv, LSOCK_WIN32_OP_LISTEN, display);
      goto fail;
    }

  for (guint i = 1; i < backend->n_slots; i++)
    {
      backend->slots[i].pipe = create_instance (backend, FALSE);
      if (backend->slots[i].pipe == INVALID_HANDLE_VALUE)
        {
          errsv = GetLastError ();
          _lsock_win32_set_error (error, errsv, LSOCK_WIN32_OP_LISTEN, display);
          goto fail;
        }
    }

  for (guint i = 0; i < backend->n_slots; i++)
    {
      if (!slot_arm (&backend->slots[i]))
        {
          errsv = GetLastError ();
          _lsock_win32_set_error (error, errsv, LSOCK_WIN32_OP_LISTEN, display);
          goto fail;
        }
    }

  backend->marker = _lsock_win32_marker_create (lsock_name_get_name (self->name));
  self->backend = backend;
  return TRUE;

fail:
  for (guint i = 0; i < backend->n_slots; i++)
    slot_clear (&backend->slots[i]);
  backend_unref (backend);
  return FALSE;
}

/* Whether @access admits the client on @pipe: under LSOCK_ACCESS_USER, its
 * process must run as our user. Sets *@out_rejected otherwise. */
static gboolean
client_admitted (LsockListener  *self,
                 Backend        *backend,
                 HANDLE          pipe,
                 GCredentials  **out_rejected)
{
  ULONG pid = 0;
  DWORD native_pid;
  DWORD errsv = 0;
  PSID user = NULL;
  gboolean ok;

  if (self->access == LSOCK_ACCESS_EVERYONE)
    return TRUE;

  ok = GetNamedPipeClientProcessId (pipe, &pid) &&
       (user = _lsock_win32_dup_process_user (pid, &errsv)) != NULL &&
       EqualSid (user, backend->owner);
  if (user != NULL)
    LocalFree (user);
  if (ok)
    return TRUE;

  g_debug ("Refusing a client of “%s” (pid %lu): %s", _lsock_name_get_display (self->name),
           (gulong) pid, errsv != 0 ? "its user is unknown" : "another user");
  native_pid = pid;
  if (pid != 0)
    {
      *out_rejected = g_credentials_new ();
      g_credentials_set_native (*out_rejected, G_CREDENTIALS_TYPE_WIN32_PID, &native_pid);
    }
  return FALSE;
}

LsockStream *
_lsock_listener_accept_impl (LsockListener  *self,
                             LsockAcceptMode mode,
                             GCancellable   *cancellable,
                             GCredentials  **out_rejected,
                             GError        **error)
{
  Backend *backend;
  HANDLE handles[MAX_INSTANCES + 1];
  guint n_handles;
  LsockStream *stream = NULL;

  g_mutex_lock (&self->lock);
  backend = self->closed || self->backend == NULL ? NULL : backend_ref (self->backend);
  g_mutex_unlock (&self->lock);

  if (backend == NULL)
    {
      _lsock_listener_set_closed_error (self, error);
      return NULL;
    }

  n_handles = backend->n_slots;
  memcpy (handles, backend->events, n_handles * sizeof (HANDLE));
  handles[n_handles++] = backend->closed_event;

  for (;;)
    {
      HANDLE pipe = INVALID_HANDLE_VALUE;
      gboolean closed;

      if (g_cancellable_set_error_if_cancelled (cancellable, error))
        break;

      g_mutex_lock (&self->lock);
      closed = backend->closed;
      if (!closed)
        pipe = take_connected (backend);
      g_mutex_unlock (&self->lock);

      if (closed)
        {
          _lsock_listener_set_closed_error (self, error);
          break;
        }

      if (pipe != INVALID_HANDLE_VALUE)
        {
          if (!client_admitted (self, backend, pipe, out_rejected))
            {
              /* Refused: closed, never returned (its DACL only lets this
               * user's processes open it, but one that got a handle some
               * other way would get here) */
              CloseHandle (pipe);
              break;
            }
          stream = _lsock_stream_new_for_pipe (pipe, self->name);
          break;
        }

      if (mode != LSOCK_ACCEPT_BLOCKING)
        {
          g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK,
                               _("No client is waiting"));
          break;
        }

      if (_lsock_win32_wait (handles, n_handles, 0, cancellable, error) == -1)
        break;
    }

  backend_unref (backend);
  return stream;
}

GSource *
_lsock_listener_create_source_impl (LsockListener *self)
{
  Backend *backend = self->backend;

  if (backend == NULL)
    return g_timeout_source_new (0);  /* closed: the callback finds out */

  return _lsock_win32_handle_source_new (backend->events, backend->n_slots, 0, NULL,
                                         backend_ref (backend),
                                         (GDestroyNotify) backend_unref);
}

void
_lsock_listener_close_impl (LsockListener *self)
{
  Backend *backend = g_steal_pointer (&self->backend);

  if (backend == NULL)
    return;

  /* The instances go now, which releases the name (reclaim-name has
   * nothing more to do: a pipe name exists only while it has instances).
   * Clients connected but not yet accepted see the pipe break. */
  backend->closed = TRUE;
  for (guint i = 0; i < backend->n_slots; i++)
    slot_clear (&backend->slots[i]);
  if (backend->marker != NULL)
    {
      CloseHandle (backend->marker);
      backend->marker = NULL;
    }
  SetEvent (backend->closed_event);

  backend_unref (backend);
}

/* ---------------------------------------------------------------------- */
/* Adoption and socket activation: Unix only */

LsockName *
_lsock_listener_name_of_fd_impl (int      fd,
                                 GError **error)
{
  g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                       _("lsock_listener_new_from_fd() is not supported on Windows: "
                         "named pipes have no file descriptors"));
  return NULL;
}

int
_lsock_listener_borrow_activated_impl (const char  *fd_name,
                                       int         *out_index,
                                       GError     **error)
{
  g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                       _("Socket activation is not supported on Windows"));
  return -1;
}

void
_lsock_listener_give_back_activated_impl (int index)
{
}

void
_lsock_listener_set_keep_activation_environment_impl (gboolean keep)
{
}

gboolean
_lsock_listener_is_adopted_impl (LsockListener *self)
{
  return FALSE;
}
