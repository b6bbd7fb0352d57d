/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include "lsock-unix-activation-private.h"
#include "lsock-name-private.h"
#include "lsock-unix-private.h"
#include "lsock-i18n-private.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#ifdef __linux__
# include <sys/syscall.h>
# include <sys/vfs.h>
#endif

/*
 * Socket activation, as systemd documents it (sd_listen_fds(3)).
 *
 * The variables are read once, the first time a listener asks: with
 * $LISTEN_PID (and $LISTEN_PIDFDID where the kernel can tell) naming this
 * process, $LISTEN_FDS descriptors from 3 are ours, named by
 * $LISTEN_FDNAMES. Every one is checked to be open before any is used
 * (otherwise the variables are ignored: they were not meant for us), and
 * made close-on-exec.
 *
 * The table keeps them for the life of the process: a listener borrows a
 * copy (dup) and gives it back when closed, so the socket is never shut
 * down or closed under the service manager, and a listener made again later
 * on the same name finds it again. One borrower at a time. Once every
 * descriptor has been borrowed, the variables are unset (unless the
 * program asked to keep them), so that child processes do not take them
 * for theirs.
 */

#define SD_LISTEN_FDS_START 3

typedef struct
{
  int                 fd;
  char               *fd_name;
  gboolean            usable;     /* a listening AF_UNIX stream socket */
  struct sockaddr_un  addr;
  socklen_t           addr_len;
  gboolean            borrowed;   /* by a listener now */
  gboolean            ever_borrowed;
} Passed;

static GMutex lock;
static gboolean parsed;
static gboolean keep_environment;
static gboolean environment_unset;
static Passed *passed;
static guint n_passed;
/* Why there is nothing, for NOT_FOUND (translated, static) */
static const char *why_none;

#ifdef __linux__
# ifndef PID_FS_MAGIC
#  define PID_FS_MAGIC 0x50494446
# endif
/* The inode of a pidfd of this process, where pidfds live in pidfs
 * (Linux 6.9 and later) and so have an identity: 0 where they do not */
static guint64
self_pidfd_id (void)
{
# ifdef SYS_pidfd_open
  struct statfs sfs;
  struct stat st;
  guint64 id = 0;
  int pidfd = (int) syscall (SYS_pidfd_open, getpid (), 0);

  if (pidfd < 0)
    return 0;
  if (fstatfs (pidfd, &sfs) == 0 && (unsigned long) sfs.f_type == PID_FS_MAGIC &&
      fstat (pidfd, &st) == 0)
    id = (guint64) st.st_ino;
  close (pidfd);
  return id;
# else
  return 0;
# endif
}
#endif

static gboolean
parse_uint (const char *s,
            guint64     max,
            guint64    *out)
{
  return s != NULL && g_ascii_string_to_unsigned (s, 10, 0, max, out, NULL);
}

/* Whether the variables are for this process */
static gboolean
environment_is_ours (void)
{
  const char *pid_s = g_getenv ("LISTEN_PID");
  const char *pidfd_s = g_getenv ("LISTEN_PIDFDID");
  guint64 pid;

  if (g_getenv ("LISTEN_FDS") == NULL)
    {
      why_none = N_("this process was not started by socket activation ($LISTEN_FDS is not set)");
      return FALSE;
    }
  if (!parse_uint (pid_s, G_MAXINT, &pid) || (pid_t) pid != getpid ())
    {
      why_none = N_("the socket activation variables are not for this process "
                    "($LISTEN_PID names another)");
      return FALSE;
    }
#ifdef __linux__
  if (pidfd_s != NULL)
    {
      guint64 want;
      guint64 have = self_pidfd_id ();

      /* Only a kernel whose pidfds have an identity can tell */
      if (!parse_uint (pidfd_s, G_MAXUINT64, &want) || (have != 0 && want != have))
        {
          why_none = N_("the socket activation variables are not for this process "
                        "($LISTEN_PIDFDID names another)");
          return FALSE;
        }
    }
#endif
  return TRUE;
}

static void
parse (void)
{
  guint64 n = 0;
  g_auto(GStrv) names = NULL;
  const char *names_s;

  parsed = TRUE;
  if (!environment_is_ours ())
    return;
  if (!parse_uint (g_getenv ("LISTEN_FDS"), G_MAXINT - SD_LISTEN_FDS_START, &n) || n == 0)
    {
      why_none = N_("$LISTEN_FDS passes no descriptors");
      return;
    }

  /* All or nothing: a closed one means the variables are not ours */
  for (guint i = 0; i < n; i++)
    if (fcntl (SD_LISTEN_FDS_START + (int) i, F_GETFD) < 0)
      {
        g_warning ("Ignoring the socket activation variables: $LISTEN_FDS says %u "
                   "descriptors, but descriptor %u is not open",
                   (guint) n, SD_LISTEN_FDS_START + i);
        why_none = N_("$LISTEN_FDS names descriptors that are not open");
        return;
      }

  names_s = g_getenv ("LISTEN_FDNAMES");
  if (names_s != NULL)
    {
      names = g_strsplit (names_s, ":", -1);
      if (g_strv_length (names) != n)
        {
          g_warning ("Ignoring $LISTEN_FDNAMES: it names %u descriptors, $LISTEN_FDS passes %u",
                     g_strv_length (names), (guint) n);
          g_clear_pointer (&names, g_strfreev);
        }
    }

  passed = g_new0 (Passed, n);
  n_passed = (guint) n;
  for (guint i = 0; i < n_passed; i++)
    {
      Passed *p = &passed[i];
      int flags;

      p->fd = SD_LISTEN_FDS_START + (int) i;
      p->fd_name = g_strdup (names != NULL ? names[i] : "unknown");
      flags = fcntl (p->fd, F_GETFD);
      if (flags >= 0 && !(flags & FD_CLOEXEC))
        fcntl (p->fd, F_SETFD, flags | FD_CLOEXEC);
      p->usable = _lsock_unix_check_stream_socket (p->fd, TRUE, NULL);
      if (p->usable)
        {
          p->addr_len = sizeof p->addr;
          memset (&p->addr, 0, sizeof p->addr);
          if (getsockname (p->fd, (struct sockaddr *) &p->addr, &p->addr_len) != 0)
            p->usable = FALSE;
        }
    }
}

static void
ensure_parsed (void)
{
  if (!parsed)
    parse ();
}

/* With the lock */
static void
maybe_unset_environment (void)
{
  if (keep_environment || environment_unset)
    return;
  for (guint i = 0; i < n_passed; i++)
    if (!passed[i].ever_borrowed)
      return;
  g_unsetenv ("LISTEN_PID");
  g_unsetenv ("LISTEN_PIDFDID");
  g_unsetenv ("LISTEN_FDS");
  g_unsetenv ("LISTEN_FDNAMES");
  environment_unset = TRUE;
}

/* With the lock: a copy of @p's socket, marked borrowed, or -1 */
static int
borrow (Passed  *p,
        GError **error)
{
  int fd = fcntl (p->fd, F_DUPFD_CLOEXEC, SD_LISTEN_FDS_START);

  if (fd < 0)
    {
      int errsv = errno;

      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errsv),
                   _("Could not use the activated socket “%s”: %s"),
                   p->fd_name, g_strerror (errsv));
      return -1;
    }
  p->borrowed = TRUE;
  p->ever_borrowed = TRUE;
  maybe_unset_environment ();
  return fd;
}

int
_lsock_activation_borrow_bound (LsockName *name,
                                int       *out_index)
{
  int fd = -1;

  g_mutex_lock (&lock);
  ensure_parsed ();
  for (guint i = 0; i < n_passed; i++)
    {
      Passed *p = &passed[i];

      if (p->usable && !p->borrowed &&
          _lsock_name_matches_sockaddr (name, &p->addr, p->addr_len))
        {
          fd = borrow (p, NULL);
          if (fd >= 0)
            *out_index = (int) i;
          break;
        }
    }
  g_mutex_unlock (&lock);
  return fd;
}

int
_lsock_activation_borrow_named (const char  *fd_name,
                                int         *out_index,
                                GError     **error)
{
  Passed *found = NULL;
  guint n_found = 0;
  int fd = -1;

  g_mutex_lock (&lock);
  ensure_parsed ();

  if (n_passed == 0)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND,
                   _("No activated socket: %s"), _(why_none));
      goto out;
    }

  for (guint i = 0; i < n_passed; i++)
    {
      Passed *p = &passed[i];

      /* By name; or the only one; or the only one lsock can use */
      if (fd_name != NULL ? strcmp (p->fd_name, fd_name) == 0 : (n_passed == 1 || p->usable))
        {
          if (found == NULL)
            found = p;
          n_found++;
        }
    }

  if (found == NULL && fd_name != NULL)
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND,
                 _("No activated socket is named “%s” (see $LISTEN_FDNAMES)"), fd_name);
  else if (found == NULL)
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND,
                 _("None of the %u activated sockets is a listening Unix-domain stream socket"),
                 n_passed);
  else if (fd_name == NULL && n_found > 1)
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                 _("There are %u activated sockets: ask for one by its name "
                   "(see $LISTEN_FDNAMES)"), n_found);
  else if (!found->usable)
    {
      GError *local_error = NULL;

      _lsock_unix_check_stream_socket (found->fd, TRUE, &local_error);
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                   _("The activated socket “%s” is not a listening Unix-domain stream "
                     "socket: %s"), found->fd_name,
                   local_error != NULL ? local_error->message : "");
      g_clear_error (&local_error);
    }
  else if (found->borrowed)
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_ADDRESS_IN_USE,
                 _("The activated socket “%s” is in use by another listener"), found->fd_name);
  else
    {
      fd = borrow (found, error);
      if (fd >= 0)
        *out_index = (int) (found - passed);
    }

out:
  g_mutex_unlock (&lock);
  return fd;
}

void
_lsock_activation_give_back (int index)
{
  g_mutex_lock (&lock);
  g_assert (index >= 0 && (guint) index < n_passed);
  passed[index].borrowed = FALSE;
  g_mutex_unlock (&lock);
}

void
_lsock_activation_set_keep_environment (gboolean keep)
{
  g_mutex_lock (&lock);
  keep_environment = keep;
  g_mutex_unlock (&lock);
}
