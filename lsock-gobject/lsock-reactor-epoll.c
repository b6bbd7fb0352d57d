/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include "lsock-reactor-private.h"
#include "lsock-i18n-private.h"

#include <errno.h>
#include <sys/epoll.h>
#include <unistd.h>

/* The reactor on Linux: the context polls one epoll fd, whatever the
 * number of watches (but while there are only a few, which it polls
 * itself: see lsock-reactor-poll.c and move_all_to_epoll()). Each fd is
 * registered once, edge-triggered, for input (and urgent data and
 * hang-up, which epoll reports anyway), and
 * for output only while it is wanted: otherwise every read by the peer,
 * which makes room in the buffer, would wake us. Edges are reported
 * whether wanted or not (see lsock-reactor-private.h); changing the
 * registration with EPOLL_CTL_MOD reports the current state again, so
 * output that became possible meanwhile is not missed.
 *
 * Once input is wanted, the registration becomes level-triggered, and
 * stays so while the user keeps reading: a reader that is told of input
 * for as long as it is there may wait after a short read instead of
 * trying again for an EAGAIN (one recv() per message saved in a service
 * that reads again from its reply's callback), and a reader that answers
 * every request before the next one comes is not charged an
 * EPOLL_CTL_MOD per message. Reported twice while nobody wants input and
 * nothing was read in between (nobody reads; or a hang-up, which epoll
 * reports whatever it is asked for), it goes back to edges, which
 * reports what is there once more. */

#define BASE_EVENTS (EPOLLIN | EPOLLPRI | EPOLLRDHUP)

static guint32
watch_events (LsockWatch *watch)
{
  return BASE_EVENTS | (watch->level ? 0 : EPOLLET) |
         ((watch->conditions & G_IO_OUT) ? EPOLLOUT : 0);
}

/* EPOLL_CTL_MOD to what @watch wants now; cannot fail for a registered,
 * open fd */
static void
epoll_update (LsockReactor *reactor,
              LsockWatch   *watch)
{
  guint32 events = watch_events (watch);

  if (events == watch->events)
    return;
  if (epoll_ctl (reactor->epfd, EPOLL_CTL_MOD, watch->fd,
                 &(struct epoll_event) { .events = events, .data.ptr = watch }) == 0)
    watch->events = events;
}

static GIOCondition
condition_from_events (guint32 events)
{
  GIOCondition condition = 0;

  if (events & EPOLLIN)
    condition |= G_IO_IN;
  if (events & EPOLLPRI)
    condition |= G_IO_PRI;
  if (events & EPOLLOUT)
    condition |= G_IO_OUT;
  /* The peer shut down its side: reads give the end of the stream */
  if (events & EPOLLRDHUP)
    condition |= G_IO_IN | G_IO_HUP;
  if (events & EPOLLHUP)
    condition |= G_IO_HUP;
  if (events & EPOLLERR)
    condition |= G_IO_ERR;
  return condition;
}

static gboolean
epoll_init (LsockReactor *reactor)
{
  reactor->epfd = epoll_create1 (EPOLL_CLOEXEC);
  if (reactor->epfd < 0)
    return FALSE;
  reactor->epfd_tag = g_source_add_unix_fd (&reactor->source, reactor->epfd, G_IO_IN);
  return TRUE;
}

static void
epoll_finalize (LsockReactor *reactor)
{
  if (reactor->epfd >= 0)
    close (reactor->epfd);
  reactor->epfd = -1;
}

/* Registers @watch, which nothing watches now, with epoll */
static gboolean
epoll_register (LsockReactor  *reactor,
                LsockWatch    *watch,
                int           *errsv)
{
  struct epoll_event ev;

  watch->level = (watch->conditions & G_IO_IN) != 0;
  watch->unwanted = FALSE;
  ev = (struct epoll_event) { .events = watch_events (watch), .data.ptr = watch };
  if (epoll_ctl (reactor->epfd, EPOLL_CTL_ADD, watch->fd, &ev) != 0)
    {
      *errsv = errno;
      return FALSE;
    }
  watch->events = ev.events;
  watch->polled = FALSE;
  reactor->epolled = g_list_concat (&watch->link, reactor->epolled);
  return TRUE;
}

static void
epoll_unregister (LsockReactor *reactor,
                  LsockWatch   *watch)
{
  /* Under the reactor lock, like every epoll_wait(): no event for this
   * watch is returned from here on */
  epoll_ctl (reactor->epfd, EPOLL_CTL_DEL, watch->fd, NULL);
  reactor->epolled = g_list_remove_link (reactor->epolled, &watch->link);
  watch->events = 0;
}

/* Back to the context's poll(), asking for what it asked for before */
static void
poll_again (LsockReactor *reactor,
            LsockWatch   *watch)
{
  _lsock_reactor_polled_add (reactor, watch);
  _lsock_reactor_polled_set_conditions (reactor, watch);
}

/* Past polled_max watches: the context's poll() of their fds and the
 * epoll_wait() the others need cost more than an epoll_wait() for all.
 * Nothing is missed on the way: adding an fd to epoll reports what it is
 * ready for now, edge-triggered or not. One that epoll refuses stays
 * polled. */
static void
move_all_to_epoll (LsockReactor *reactor)
{
  GList *l = reactor->polled;

  reactor->all_on_epoll = TRUE;
  while (l != NULL)
    {
      LsockWatch *watch = l->data;
      int errsv;

      l = l->next;
      _lsock_reactor_polled_remove (reactor, watch);
      if (!epoll_register (reactor, watch, &errsv))
        poll_again (reactor, watch);
    }
}

/* Down to half of polled_max: back to the context's poll(), which reports
 * what is wanted and ready now (level-triggered), so an edge epoll had
 * queued for a watch is not lost either. The users ask for what they
 * wait for only once a system call said EAGAIN, and it stays asked. */
static void
move_all_to_polled (LsockReactor *reactor)
{
  reactor->all_on_epoll = FALSE;
  while (reactor->epolled != NULL)
    {
      LsockWatch *watch = reactor->epolled->data;

      epoll_unregister (reactor, watch);
      poll_again (reactor, watch);
    }
}

static gboolean
epoll_add (LsockReactor  *reactor,
           LsockWatch    *watch,
           GError       **error)
{
  int errsv;

  if (!reactor->all_on_epoll && reactor->n_polled < reactor->polled_max)
    {
      _lsock_reactor_polled_add (reactor, watch);
      return TRUE;
    }

  if (!epoll_register (reactor, watch, &errsv))
    {
      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errsv),
                   _("Could not watch a socket: %s"), g_strerror (errsv));
      return FALSE;
    }
  if (!reactor->all_on_epoll && reactor->polled != NULL)
    move_all_to_epoll (reactor);
  return TRUE;
}

static void
epoll_set_conditions (LsockReactor *reactor,
                      LsockWatch   *watch)
{
  if (watch->polled)
    {
      _lsock_reactor_polled_set_conditions (reactor, watch);
      return;
    }

  if (watch->conditions & G_IO_IN)
    {
      watch->level = TRUE;
      watch->unwanted = FALSE;
    }
  epoll_update (reactor, watch);
}

/* A level-triggered watch reported with input nobody wants: the second
 * time in a row with no read between, back to edges */
static void
epoll_unwanted (LsockReactor *reactor,
                LsockWatch   *watch)
{
  int reads = g_atomic_int_get (&watch->reads);

  if (!watch->unwanted || reads != watch->reads_seen)
    {
      watch->unwanted = TRUE;
      watch->reads_seen = reads;
      return;
    }
  watch->level = FALSE;
  watch->unwanted = FALSE;
  epoll_update (reactor, watch);
}

static void
epoll_remove (LsockReactor *reactor,
              LsockWatch   *watch)
{
  if (watch->polled)
    _lsock_reactor_polled_remove (reactor, watch);
  else
    epoll_unregister (reactor, watch);

  /* n_watches counts @watch still */
  if (reactor->all_on_epoll && reactor->n_watches - 1 <= reactor->polled_max / 2)
    move_all_to_polled (reactor);
}

static gboolean
epoll_check (LsockReactor *reactor)
{
  return g_source_query_unix_fd (&reactor->source, reactor->epfd_tag) != 0 ||
         (reactor->polled != NULL && _lsock_reactor_polled_check (reactor));
}

static guint
epoll_collect (LsockReactor    *reactor,
               LsockReadyWatch *ready,
               guint            max)
{
  struct epoll_event events[64];
  guint n_ready = 0;
  int n;

  if (reactor->polled != NULL)
    n_ready = _lsock_reactor_polled_collect (reactor, ready, max);
  /* Only when the context's poll() said so: no epoll_wait() for nothing */
  if (n_ready == max || g_source_query_unix_fd (&reactor->source, reactor->epfd_tag) == 0)
    return n_ready;

  do
    n = epoll_wait (reactor->epfd, events, MIN (max - n_ready, G_N_ELEMENTS (events)), 0);
  while (n < 0 && errno == EINTR);

  for (int i = 0; i < n; i++)
    {
      LsockWatch *watch = events[i].data.ptr;

      if (watch->level && !(watch->conditions & G_IO_IN) &&
          (events[i].events & (EPOLLIN | EPOLLPRI | EPOLLRDHUP | EPOLLHUP | EPOLLERR)))
        epoll_unwanted (reactor, watch);
      ready[n_ready].watch = _lsock_watch_ref (watch);
      ready[n_ready].condition = condition_from_events (events[i].events);
      n_ready++;
    }
  return n_ready;
}

const LsockReactorImpl _lsock_reactor_epoll_impl = {
  .kind = "epoll",
  .init = epoll_init,
  .finalize = epoll_finalize,
  .add = epoll_add,
  .set_conditions = epoll_set_conditions,
  .remove = epoll_remove,
  .check = epoll_check,
  .collect = epoll_collect,
};
