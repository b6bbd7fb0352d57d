/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include "lsock-unix-socket-file-private.h"
#include "lsock-unix-private.h"
#include "lsock-i18n-private.h"

#include <glib/gstdio.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#ifdef __linux__
# include <linux/netlink.h>
# include <linux/rtnetlink.h>
# include <linux/sock_diag.h>
# include <linux/unix_diag.h>
# include <sys/sysmacros.h>
#endif

/* Socket files, safely: see lsock-unix-socket-file-private.h. */

char *_lsock_socket_file_lock_dir_for_testing = NULL;
void (*_lsock_socket_file_after_bind_for_testing) (const char *path) = NULL;

/* How long a starter waits for another of the same user */
#define LOCK_WAIT_MAX_MS 10000

#ifdef O_PATH
# define DIR_OPEN_FLAGS  (O_PATH | O_DIRECTORY | O_CLOEXEC)
# define FILE_OPEN_FLAGS (O_PATH | O_NOFOLLOW | O_CLOEXEC)
#else
# define DIR_OPEN_FLAGS  (O_RDONLY | O_DIRECTORY | O_CLOEXEC)
#endif

gboolean
_lsock_socket_file_open (LsockSocketFile  *file,
                         const char       *path,
                         GError          **error)
{
  g_autofree char *dir = g_path_get_dirname (path);
  int errsv;

  memset (file, 0, sizeof *file);
  file->dirfd = open (dir, DIR_OPEN_FLAGS);
  if (file->dirfd < 0)
    {
      errsv = errno;
      g_set_error (error, G_IO_ERROR,
                   errsv == EACCES || errsv == EPERM ? G_IO_ERROR_PERMISSION_DENIED :
                                                       g_io_error_from_errno (errsv),
                   "%s", g_strerror (errsv));
      return FALSE;
    }
  file->path = g_strdup (path);
  file->base = g_path_get_basename (path);
  return TRUE;
}

void
_lsock_socket_file_clear (LsockSocketFile *file)
{
  if (file->dirfd >= 0)
    close (file->dirfd);
  file->dirfd = -1;
  g_clear_pointer (&file->path, g_free);
  g_clear_pointer (&file->base, g_free);
}

/* A descriptor of what is at @name in the directory (not following a
 * symbolic link), and its status; -1 with errno. Where there is no O_PATH
 * (macOS), only the status: returns 0 for found. */
static int
open_entry (LsockSocketFile *file,
            const char      *name,
            struct stat     *st)
{
#ifdef O_PATH
  int fd = openat (file->dirfd, name, FILE_OPEN_FLAGS);

  if (fd < 0)
    return -1;
  if (fstat (fd, st) != 0)
    {
      int errsv = errno;

      close (fd);
      errno = errsv;
      return -1;
    }
  return fd;
#else
  return fstatat (file->dirfd, name, st, AT_SYMLINK_NOFOLLOW) == 0 ? 0 : -1;
#endif
}

static void
close_entry (int fd)
{
#ifdef O_PATH
  if (fd >= 0)
    close (fd);
#endif
}

/* The address of the file behind @entry_fd, so that connect() reaches that
 * very socket: /proc/self/fd/N on Linux; elsewhere (or without /proc) the
 * path, which can race */
static void
entry_address (LsockSocketFile    *file,
               const char         *name,
               int                 entry_fd,
               struct sockaddr_un *addr)
{
  memset (addr, 0, sizeof *addr);
  addr->sun_family = AF_UNIX;
#ifdef __linux__
  g_snprintf (addr->sun_path, sizeof addr->sun_path, "/proc/self/fd/%d", entry_fd);
  if (access (addr->sun_path, F_OK) == 0)
    return;
#endif
  if (name == NULL || g_str_equal (name, file->base))
    g_strlcpy (addr->sun_path, file->path, sizeof addr->sun_path);
  else
    {
      g_autofree char *dir = g_path_get_dirname (file->path);
      g_autofree char *path = g_build_filename (dir, name, NULL);

      g_strlcpy (addr->sun_path, path, sizeof addr->sun_path);
    }
}

LsockProbeResult
_lsock_socket_file_probe (LsockSocketFile *file,
                          const char      *name,
                          int             *out_errno)
{
  struct sockaddr_un addr;
  struct stat st;
  int entry;
  int fd;
  int ret;
  int errsv;

  if (name == NULL)
    name = file->base;

  entry = open_entry (file, name, &st);
  if (entry < 0)
    {
      *out_errno = errno;
      return *out_errno == ENOENT ? LSOCK_PROBE_GONE : LSOCK_PROBE_ERROR;
    }
  if (!S_ISSOCK (st.st_mode))
    {
      close_entry (entry);
      return LSOCK_PROBE_NOT_SOCKET;
    }

  fd = _lsock_unix_socket (TRUE, NULL);
  if (fd < 0)
    {
      *out_errno = errno;
      close_entry (entry);
      return LSOCK_PROBE_ERROR;
    }
  entry_address (file, name, entry, &addr);
  do
    ret = connect (fd, (struct sockaddr *) &addr, sizeof addr);
  while (ret != 0 && errno == EINTR);
  errsv = errno;
  close (fd);
  close_entry (entry);

  if (ret == 0)
    return LSOCK_PROBE_LIVE;

  switch (errsv)
    {
    case EAGAIN:       /* Linux: backlog full */
    case EINPROGRESS:  /* elsewhere */
      return LSOCK_PROBE_LIVE;
    case ENOENT:
      return LSOCK_PROBE_GONE;
    case ECONNREFUSED:
      return st.st_uid == geteuid () ? LSOCK_PROBE_STALE : LSOCK_PROBE_FOREIGN;
    case EACCES:
    case EPERM:
      if (st.st_uid != geteuid ())
        return LSOCK_PROBE_FOREIGN;
      G_GNUC_FALLTHROUGH;
    default:
      *out_errno = errsv;
      return LSOCK_PROBE_ERROR;
    }
}

gboolean
_lsock_socket_file_remove_stale (LsockSocketFile *file,
                                 const char      *name,
                                 int             *out_errno)
{
  LsockProbeResult probe = _lsock_socket_file_probe (file, name, out_errno);

  if (probe == LSOCK_PROBE_GONE)
    return TRUE;
  if (probe != LSOCK_PROBE_STALE)
    {
      if (probe != LSOCK_PROBE_ERROR)
        *out_errno = EADDRINUSE;
      return FALSE;
    }
  /* Between the probe and this, only a starter of ours (which the lock
   * keeps out) could put a socket of ours here; anyone else only a file
   * of theirs, which removing costs nobody but them */
  if (unlinkat (file->dirfd, name != NULL ? name : file->base, 0) != 0 && errno != ENOENT)
    {
      *out_errno = errno;
      return FALSE;
    }
  return TRUE;
}

#ifdef __linux__
/* Which file the bound socket @fd is, as the kernel knows it (sock_diag,
 * what ss -x shows): FALSE where it cannot say (no unix_diag) */
static gboolean
bound_file_identity (int      fd,
                     guint64 *out_dev,
                     guint64 *out_ino)
{
  struct
  {
    struct nlmsghdr      nlh;
    struct unix_diag_req req;
  } request = { 0 };
  struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
  union
  {
    struct nlmsghdr nlh;
    char            buf[1024];
  } reply;
  struct stat st;
  gboolean found = FALSE;
  gssize n;
  int nl;

  if (fstat (fd, &st) != 0)
    return FALSE;

  nl = socket (AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
  if (nl < 0)
    return FALSE;

  request.nlh.nlmsg_len = sizeof request;
  request.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
  request.nlh.nlmsg_flags = NLM_F_REQUEST;
  request.req.sdiag_family = AF_UNIX;
  request.req.udiag_states = ~0u;
  request.req.udiag_ino = (guint32) st.st_ino;
  request.req.udiag_show = UDIAG_SHOW_VFS;
  request.req.udiag_cookie[0] = ~0u;  /* INET_DIAG_NOCOOKIE */
  request.req.udiag_cookie[1] = ~0u;

  if (sendto (nl, &request, sizeof request, 0, (struct sockaddr *) &kernel, sizeof kernel) < 0)
    goto out;
  do
    n = recv (nl, &reply, sizeof reply, 0);
  while (n < 0 && errno == EINTR);
  if (n < (gssize) sizeof (struct nlmsghdr) || !NLMSG_OK (&reply.nlh, (guint) n) ||
      reply.nlh.nlmsg_type != SOCK_DIAG_BY_FAMILY)
    goto out;

  {
    struct unix_diag_msg *msg = NLMSG_DATA (&reply.nlh);
    int len = (int) reply.nlh.nlmsg_len - (int) NLMSG_LENGTH (sizeof *msg);
    struct rtattr *attr = (struct rtattr *) (msg + 1);

    if (msg->udiag_ino != (guint32) st.st_ino)
      goto out;
    for (; RTA_OK (attr, len); attr = RTA_NEXT (attr, len))
      {
        struct unix_diag_vfs *vfs = RTA_DATA (attr);

        if (attr->rta_type != UNIX_DIAG_VFS || RTA_PAYLOAD (attr) < (int) sizeof *vfs)
          continue;
        /* The kernel's dev_t: major in the top 12 bits, minor below */
        *out_dev = makedev (vfs->udiag_vfs_dev >> 20, vfs->udiag_vfs_dev & 0xfffff);
        *out_ino = vfs->udiag_vfs_ino;
        found = TRUE;
      }
  }

out:
  close (nl);
  return found;
}
#endif

/* Whether the entry with status @st is the file @fd (a bound socket) was
 * bound to. The kernel says on Linux (it gives 32 bits of the inode);
 * elsewhere a socket of ours is as close as one can tell. */
static gboolean
is_bound_file (int                fd,
               const struct stat *st)
{
  if (!S_ISSOCK (st->st_mode) || st->st_uid != geteuid ())
    return FALSE;
#ifdef __linux__
  {
    guint64 dev, ino;

    if (bound_file_identity (fd, &dev, &ino))
      return dev == (guint64) st->st_dev && ino == ((guint64) st->st_ino & 0xffffffffu);
  }
#endif
  return TRUE;
}

gboolean
_lsock_socket_file_adopt (LsockSocketFile *file,
                          int              fd,
                          const char      *name,
                          mode_t           mode,
                          int             *out_errno)
{
  struct stat st;
  int entry;
  int ret;

  if (name == NULL)
    name = file->base;

  entry = open_entry (file, name, &st);
  if (entry < 0)
    {
      *out_errno = errno == ENOENT ? EEXIST : errno;
      return FALSE;
    }
  if (!is_bound_file (fd, &st))
    {
      /* Not what we bound: the directory changed under us */
      close_entry (entry);
      *out_errno = EEXIST;
      return FALSE;
    }

  ret = 0;
  if ((st.st_mode & 07777) != mode)
    {
#ifdef O_PATH
      char proc[64];

      /* The very file found, through its descriptor */
      g_snprintf (proc, sizeof proc, "/proc/self/fd/%d", entry);
      ret = chmod (proc, mode);
#else
      ret = fchmodat (file->dirfd, name, mode, AT_SYMLINK_NOFOLLOW);
#endif
    }
  close_entry (entry);
  if (ret != 0)
    {
      *out_errno = errno;
      return FALSE;
    }

  file->dev = st.st_dev;
  file->ino = st.st_ino;
  return TRUE;
}

gboolean
_lsock_socket_file_publish (LsockSocketFile *file,
                            const char      *from,
                            gboolean         replace,
                            int             *out_errno)
{
  if (replace)
    {
      if (renameat (file->dirfd, from, file->dirfd, file->base) == 0)
        return TRUE;
      *out_errno = errno;
      return FALSE;
    }

#ifdef HAVE_RENAMEAT2
  if (renameat2 (file->dirfd, from, file->dirfd, file->base, RENAME_NOREPLACE) == 0)
    return TRUE;
  *out_errno = errno;
  if (*out_errno != EINVAL && *out_errno != ENOSYS && *out_errno != ENOTSUP)
    return FALSE;
  /* The file system cannot do it: hard links can */
#endif
  if (linkat (file->dirfd, from, file->dirfd, file->base, 0) != 0)
    {
      *out_errno = errno;
      return FALSE;
    }
  unlinkat (file->dirfd, from, 0);
  return TRUE;
}

void
_lsock_socket_file_reclaim (LsockSocketFile *file)
{
  struct stat st;
  int entry;

  if (file->ino == 0)
    return;
  entry = open_entry (file, file->base, &st);
  if (entry < 0)
    return;
  close_entry (entry);
  if (S_ISSOCK (st.st_mode) &&
      (guint64) st.st_dev == file->dev && (guint64) st.st_ino == file->ino)
    unlinkat (file->dirfd, file->base, 0);
}

void
_lsock_socket_file_discard (LsockSocketFile *file,
                            int              fd,
                            const char      *name)
{
  struct stat st;
  int entry = open_entry (file, name, &st);

  if (entry < 0)
    return;
  close_entry (entry);
  if (is_bound_file (fd, &st))
    unlinkat (file->dirfd, name, 0);
}

/* ---------------------------------------------------------------------- */
/* The start-up lock */

/* A directory of ours alone for lock files, made if need be:
 * $XDG_RUNTIME_DIR (systemd's /run/user/UID), /run/lsock for root, the
 * user's cache directory, then /tmp/lsock-UID. A directory another user
 * made in our place (in /tmp) is skipped, never used. */
static char *
lock_dir (void)
{
  g_autofree char *cache = g_build_filename (g_get_user_cache_dir (), "lsock-gobject", NULL);
  g_autofree char *tmp = g_strdup_printf ("/tmp/lsock-%lu", (gulong) geteuid ());
  const char *runtime = g_getenv ("XDG_RUNTIME_DIR");
  const char *candidates[4];
  guint n = 0;

  if (_lsock_socket_file_lock_dir_for_testing != NULL)
    return g_strdup (_lsock_socket_file_lock_dir_for_testing);

  if (runtime != NULL && g_path_is_absolute (runtime))
    candidates[n++] = runtime;
  if (geteuid () == 0)
    candidates[n++] = "/run/lsock-gobject";
  candidates[n++] = cache;
  candidates[n++] = tmp;

  for (guint i = 0; i < n; i++)
    {
      const char *why = NULL;
      int errsv = 0;

      /* The runtime directory is made by the system, the others by us */
      if (candidates[i] != runtime)
        {
          if (candidates[i] == cache)
            g_mkdir_with_parents (g_get_user_cache_dir (), 0700);
          if (g_mkdir (candidates[i], 0700) != 0 && errno != EEXIST)
            continue;
        }
      if (_lsock_unix_check_private_dir (candidates[i], &why, &errsv))
        return g_strdup (candidates[i]);
      g_debug ("Not using “%s” for the start-up lock: %s", candidates[i],
               why != NULL ? why : g_strerror (errsv));
    }
  return NULL;
}

int
_lsock_socket_file_lock (LsockSocketFile  *file,
                         const char       *display,
                         GCancellable     *cancellable,
                         GError          **error)
{
  gint64 deadline = g_get_monotonic_time () + LOCK_WAIT_MAX_MS * G_TIME_SPAN_MILLISECOND;
  g_autofree char *dir = lock_dir ();
  g_autofree char *lock_path = NULL;
  struct stat st;
  int pause_ms = 1;
  int fd;
  int errsv;

  if (dir == NULL)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_PERMISSION_DENIED,
                   _("Could not listen on “%s”: there is no private directory for the start-up lock "
                     "(set XDG_RUNTIME_DIR to a directory of yours with mode 0700)"),
                   display);
      return -1;
    }
  if (fstat (file->dirfd, &st) != 0)
    {
      errsv = errno;
      goto fail;
    }
  /* One lock per directory of socket files */
  lock_path = g_strdup_printf ("%s/lsock-bind-%" G_GUINT64_FORMAT "-%" G_GUINT64_FORMAT ".lock",
                               dir, (guint64) st.st_dev, (guint64) st.st_ino);
  fd = open (lock_path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0)
    {
      errsv = errno;
      goto fail;
    }

  /* Only starters of ours take it, for the few system calls it takes to
   * bind and listen: wait for them, cancellably, a bounded time */
  while (flock (fd, LOCK_EX | LOCK_NB) != 0)
    {
      errsv = errno;
      if (errsv == EINTR)
        continue;
      if (errsv != EWOULDBLOCK)
        {
          close (fd);
          goto fail;
        }
      if (g_get_monotonic_time () >= deadline)
        {
          close (fd);
          g_set_error (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
                       _("Could not listen on “%s”: timed out waiting for another listener "
                         "to finish starting"),
                       display);
          return -1;
        }
      if (_lsock_unix_wait (-1, 0, pause_ms, cancellable, error) < 0)
        {
          close (fd);
          return -1;
        }
      pause_ms = MIN (pause_ms * 2, 50);
    }

  return fd;

fail:
  g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errsv),
               _("Could not listen on “%s”: could not take the start-up lock: %s"),
               display, g_strerror (errsv));
  return -1;
}
