/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#if !defined (LSOCK_COMPILATION)
# error "private header"
#endif

#include <gio/gio.h>

G_BEGIN_DECLS

/* A socket file and the directory it is in (lsock-unix-socket-file.c).
 *
 * The directory is opened once, before anything else, and everything done
 * to the file afterwards (looking at it, changing its mode, removing it)
 * is done relative to that descriptor, on the file found there without
 * following a symbolic link, and only once it is known to be ours: a user
 * who can write the directory, or swap one of its ancestors, cannot make
 * us touch another file. Only bind() and connect() use the path (they
 * never follow a symbolic link in its last component either). */
typedef struct
{
  char    *path;    /* as given */
  char    *base;    /* its last component */
  int      dirfd;   /* the directory (O_PATH where there is one) */
  guint64  dev;     /* the file bound, once lsock_socket_file_adopt() */
  guint64  ino;     /* found it */
} LsockSocketFile;

gboolean  _lsock_socket_file_open         (LsockSocketFile  *file,
                                           const char       *path,
                                           GError          **error);
void      _lsock_socket_file_clear        (LsockSocketFile  *file);

typedef enum {
  LSOCK_PROBE_GONE,        /* nothing there */
  LSOCK_PROBE_LIVE,        /* somebody listens */
  LSOCK_PROBE_STALE,       /* our socket, nobody listens */
  LSOCK_PROBE_FOREIGN,     /* another user's socket that nobody answers */
  LSOCK_PROBE_NOT_SOCKET,  /* a file that is not a socket */
  LSOCK_PROBE_ERROR,       /* something else went wrong; errno in *out_errno */
} LsockProbeResult;

/* What is at the file's name now: looked up relative to the directory,
 * and connected to through the file found (so a swap in between cannot
 * make a live socket look stale). A live listener sees a peer that
 * closes at once. @name is the file name in the directory (NULL: the
 * file's own). */
LsockProbeResult _lsock_socket_file_probe (LsockSocketFile  *file,
                                           const char       *name,
                                           int              *out_errno);
/* Removes @name (NULL: the file's own) if it is still a socket of ours
 * that nobody answers: FALSE with *out_errno otherwise. Serialise with
 * _lsock_socket_file_lock(). */
gboolean  _lsock_socket_file_remove_stale (LsockSocketFile  *file,
                                           const char       *name,
                                           int              *out_errno);

/* After bind() of @fd at @name (NULL: the file's own): checks that the
 * file there now is the one @fd is bound to (the kernel says which, on
 * Linux; elsewhere a socket of ours), gives it @mode, and remembers it.
 * FALSE with *out_errno (EEXIST: another file is there). */
gboolean  _lsock_socket_file_adopt        (LsockSocketFile  *file,
                                           int               fd,
                                           const char       *name,
                                           mode_t            mode,
                                           int              *out_errno);
/* Renames @from (in the directory) to the file's own name, without
 * replacing anything unless @replace (then only a stale socket of ours,
 * as checked by the caller). FALSE with *out_errno. */
gboolean  _lsock_socket_file_publish      (LsockSocketFile  *file,
                                           const char       *from,
                                           gboolean          replace,
                                           int              *out_errno);
/* Removes the file if it is still the one adopted (a successor may have
 * replaced it) */
void      _lsock_socket_file_reclaim      (LsockSocketFile  *file);
/* Removes @name if it is still the socket @fd is bound to: for a file
 * that failed to become ours (a temporary name) */
void      _lsock_socket_file_discard      (LsockSocketFile  *file,
                                           int               fd,
                                           const char       *name);

/* Serialises the starters of this user that bind in this directory: an
 * flock() on a file in a directory of ours alone (so no other user can
 * hold it), waiting for another starter at most a few seconds, with
 * @cancellable. Returns the fd to close, or -1 with @error. */
int       _lsock_socket_file_lock         (LsockSocketFile  *file,
                                           const char       *display,
                                           GCancellable     *cancellable,
                                           GError          **error);

/* Tests: a lock directory to use instead of the user's own */
extern char *_lsock_socket_file_lock_dir_for_testing;
/* Tests: called as soon as bind() has made a socket file at @path, before
 * anything looks at it: where an attacker's swap is most harmful */
extern void (*_lsock_socket_file_after_bind_for_testing) (const char *path);

G_END_DECLS
