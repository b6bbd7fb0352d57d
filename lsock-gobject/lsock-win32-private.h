/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#if !defined (LSOCK_COMPILATION)
# error "private header"
#endif

#include <gio/gio.h>
#include "lsock-types.h"

#ifndef WIN32_LEAN_AND_MEAN
# define WIN32_LEAN_AND_MEAN
#endif
#include <windows.h>

G_BEGIN_DECLS

/* Size of each pipe instance's in and out buffers, and of a stream's
 * internal read and write buffers */
#define LSOCK_WIN32_BUFFER_SIZE (64 * 1024)

/* What a failed operation was doing, for the error code and message */
typedef enum
{
  LSOCK_WIN32_OP_CONNECT,
  LSOCK_WIN32_OP_LISTEN,
  LSOCK_WIN32_OP_ACCEPT,
  LSOCK_WIN32_OP_READ,
  LSOCK_WIN32_OP_WRITE,
  LSOCK_WIN32_OP_OTHER,
} LsockWin32Op;

/* Maps a Win32 error code to a G_IO_ERROR code, covering the pipe errors
 * that g_io_error_from_win32_error() leaves as G_IO_ERROR_FAILED, so that
 * each row of the error table gives the same code as on Unix. */
GIOErrorEnum  _lsock_win32_error_to_io_error     (DWORD          error_code,
                                                  LsockWin32Op   op);
/* Sets @error from @error_code with a translated message naming @display */
void          _lsock_win32_set_error             (GError       **error,
                                                  DWORD          error_code,
                                                  LsockWin32Op   op,
                                                  const char    *display);

/* Waits until one of @handles is signalled, @cancellable is cancelled or
 * @timeout_ms (0: no timeout) elapses. Returns the index of the signalled
 * handle, -1 with G_IO_ERROR_CANCELLED set, or -2 on timeout (nothing set).
 * At most 62 handles. */
int           _lsock_win32_wait                  (const HANDLE  *handles,
                                                  guint          n_handles,
                                                  int            timeout_ms,
                                                  GCancellable  *cancellable,
                                                  GError       **error);

/* A source that dispatches (as a GSourceFunc) when one of @handles
 * (events) is signalled. With @timeout_ms > 0 it also dispatches once that
 * time has passed, setting *@timed_out to 1 first. The handles must stay
 * valid while the source exists: @owner_free (@owner) runs when the source
 * is finalized, so @owner can keep them alive. */
GSource      *_lsock_win32_handle_source_new     (const HANDLE  *handles,
                                                  guint          n_handles,
                                                  int            timeout_ms,
                                                  int           *timed_out,
                                                  gpointer       owner,
                                                  GDestroyNotify owner_free);

/* A listener's presence marker: a named event "Local\\lsock-…" that a
 * listener holds while it is open. A pipe name outlives its listener while
 * accepted connections are open (their server ends are instances of it),
 * which to a client looks like a listener with every instance busy; the
 * marker tells the two apart, so connect() gives NOT_FOUND as on Unix. */
HANDLE        _lsock_win32_marker_create         (const char    *name);
gboolean      _lsock_win32_marker_exists         (const char    *name);

/* The user SID of process @pid (0: this one), from its token; NULL with
 * *@out_error if it cannot be opened. (transfer full) LocalFree() */
PSID          _lsock_win32_dup_process_user      (DWORD          pid,
                                                  DWORD         *out_error);
/* Tests: a string SID that _lsock_win32_dup_process_user (0) returns
 * instead of this process's user, so that the user checks of both ends can
 * be made to fail where only one user exists (Wine) */
extern const char *_lsock_win32_user_for_testing;
/* Whether this process runs elevated (an administrator's full token) */
gboolean      _lsock_win32_is_elevated           (void);

/* A stream over a connected pipe instance or client handle (taking it) */
LsockStream  *_lsock_stream_new_for_pipe         (HANDLE         pipe,
                                                  LsockName     *name);
/* The stream's pipe handle (INVALID_HANDLE_VALUE once closed): for tests */
HANDLE        _lsock_stream_get_pipe             (LsockStream   *stream);


G_END_DECLS
