/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A local attacker for tests/security.c, run as another user (setpriv):
 *
 *   lsock-test-attacker swap DIR VICTIM
 *     Watches DIR (inotify). Whenever a socket file appears there, renames
 *     it to "x-moved-N" and puts a symbolic link to VICTIM in its place, as
 *     fast as it can: the race a listener that chmod()s its socket by name
 *     loses.
 *
 * It prints "ready" once it watches, and exits when its standard input
 * closes. Plain C, no GLib: as fast as the kernel lets it be. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

static int
swap (const char *dir,
      const char *victim)
{
  char buf[4096] __attribute__ ((aligned (__alignof__ (struct inotify_event))));
  struct pollfd fds[2];
  unsigned long n = 0;
  int in = inotify_init1 (IN_CLOEXEC);

  if (in < 0 || inotify_add_watch (in, dir, IN_CREATE) < 0)
    {
      perror ("inotify");
      return 1;
    }
  printf ("ready\n");
  fflush (stdout);

  fds[0].fd = in;
  fds[0].events = POLLIN;
  fds[1].fd = 0;
  fds[1].events = POLLIN;
  for (;;)
    {
      ssize_t len;

      if (poll (fds, 2, -1) < 0 && errno != EINTR)
        return 1;
      if (fds[1].revents != 0)
        return 0;  /* stdin closed: done */
      len = read (in, buf, sizeof buf);
      for (char *p = buf; len > 0 && p < buf + len; )
        {
          struct inotify_event *ev = (struct inotify_event *) p;

          p += sizeof *ev + ev->len;
          if (ev->len == 0 || strncmp (ev->name, "x-", 2) == 0)
            continue;
          {
            char from[4096], to[4096];
            struct stat st;

            snprintf (from, sizeof from, "%s/%s", dir, ev->name);
            /* Only sockets: not our own links, nor anything else */
            if (lstat (from, &st) != 0 || !S_ISSOCK (st.st_mode))
              continue;
            snprintf (to, sizeof to, "%s/x-moved-%lu", dir, n++);
            if (rename (from, to) == 0)
              (void) !symlink (victim, from);
          }
        }
    }
}

int
main (int   argc,
      char *argv[])
{
  if (argc == 4 && strcmp (argv[1], "swap") == 0)
    return swap (argv[2], argv[3]);
  fprintf (stderr, "usage: %s swap DIR VICTIM\n", argv[0]);
  return 2;
}
