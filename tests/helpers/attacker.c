/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A local attacker for tests/security.c, run as another user (setpriv):
 *
 *   lsock-test-attacker swap DIR VICTIM
 *     Watches DIR (inotify). Whenever a socket file appears there, renames
 *     it to "x-moved-N" and puts a symbolic link to VICTIM in its place, as
 *     fast as it can: the race a listener that chmod()s its socket by name
 *     loses.
 *   lsock-test-attacker squat ADDRESS
 *     Listens on ADDRESS first ("@name" is an abstract name, anything
 *     else a path), then for each client prints "got N" with the number
 *     of bytes it sent before closing: what a squatter would steal.
 *   lsock-test-attacker flood ADDRESS COUNT
 *     Connects COUNT times to ADDRESS and keeps the connections: a queue
 *     of peers the listener must refuse one by one. For each line on its
 *     standard input it prints "closed N": how many the listener closed.
 *
 * Each prints "ready" once set, and exits when its standard input closes.
 * Plain C, no GLib: as fast as the kernel lets it be, and nothing of the
 * library under test. */
#include <errno.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
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

static socklen_t
make_address (const char         *address,
              struct sockaddr_un *addr)
{
  size_t len = strlen (address);

  memset (addr, 0, sizeof *addr);
  addr->sun_family = AF_UNIX;
  if (len >= sizeof addr->sun_path)
    {
      fprintf (stderr, "address too long\n");
      exit (2);
    }
  memcpy (addr->sun_path, address, len);
  if (address[0] == '@')
    {
      addr->sun_path[0] = '\0';
      return offsetof (struct sockaddr_un, sun_path) + len;
    }
  return sizeof *addr;
}

/* Lines on stdout as they happen */
static void
say (const char *line)
{
  printf ("%s\n", line);
  fflush (stdout);
}

static int
squat (const char *address)
{
  struct sockaddr_un addr;
  socklen_t addr_len = make_address (address, &addr);
  struct pollfd fds[2];
  int fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

  if (fd < 0 || bind (fd, (struct sockaddr *) &addr, addr_len) != 0 || listen (fd, 16) != 0)
    {
      perror ("squat");
      return 1;
    }
  say ("ready");

  fds[0].fd = fd;
  fds[0].events = POLLIN;
  fds[1].fd = 0;
  fds[1].events = POLLIN;
  for (;;)
    {
      char buf[4096], line[64];
      unsigned long got = 0;
      ssize_t n;
      int client;

      if (poll (fds, 2, -1) < 0 && errno != EINTR)
        return 1;
      if (fds[1].revents != 0)
        return 0;
      if (fds[0].revents == 0)
        continue;
      client = accept4 (fd, NULL, NULL, SOCK_CLOEXEC);
      if (client < 0)
        continue;
      /* Until the client closes (or resets): all it gave away */
      while ((n = read (client, buf, sizeof buf)) > 0)
        got += (unsigned long) n;
      close (client);
      snprintf (line, sizeof line, "got %lu", got);
      say (line);
    }
}

static int
flood (const char *address,
       int         count)
{
  struct sockaddr_un addr;
  socklen_t addr_len = make_address (address, &addr);
  struct pollfd *fds = calloc ((size_t) count, sizeof *fds);
  char line[64];

  if (fds == NULL)
    return 1;
  for (int i = 0; i < count; i++)
    {
      fds[i].fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
      fds[i].events = POLLIN;
      if (fds[i].fd < 0 || connect (fds[i].fd, (struct sockaddr *) &addr, addr_len) != 0)
        {
          perror ("flood");
          return 1;
        }
    }
  say ("ready");

  /* "count": how many of our connections the listener has closed by now
   * (its close() is seen here at once: the peer's end shuts down) */
  while (fgets (line, sizeof line, stdin) != NULL)
    {
      int closed = 0;

      if (poll (fds, (nfds_t) count, 0) < 0)
        return 1;
      for (int i = 0; i < count; i++)
        if (fds[i].revents & (POLLIN | POLLHUP))
          closed++;
      snprintf (line, sizeof line, "closed %d", closed);
      say (line);
    }
  return 0;
}

int
main (int   argc,
      char *argv[])
{
  if (argc == 4 && strcmp (argv[1], "swap") == 0)
    return swap (argv[2], argv[3]);
  if (argc == 3 && strcmp (argv[1], "squat") == 0)
    return squat (argv[2]);
  if (argc == 4 && strcmp (argv[1], "flood") == 0)
    return flood (argv[2], atoi (argv[3]));
  fprintf (stderr, "usage: %s swap DIR VICTIM | squat ADDRESS | flood ADDRESS COUNT\n",
           argv[0]);
  return 2;
}
