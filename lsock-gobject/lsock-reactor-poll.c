/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include "lsock-reactor-private.h"

/* Watches the context polls itself: each is an fd of the reactor's source,
 * level-triggered, for the conditions wanted. That is every watch of the
 * portable reactor (where there is no epoll, and where epoll_create1()
 * fails), and those of an epoll one while it has only a few
 * (lsock-reactor-epoll.c).
 *
 * Each watch's GPollFD is its own, given to g_source_add_poll(), not one
 * GLib keeps (g_source_add_unix_fd()). The context reads its events afresh
 * in every iteration, so they change with a store. Adding or removing an
 * fd, and g_source_modify_unix_fd(), wake the context up, even from its
 * own dispatch: a write to its eventfd, and a read of it in the next
 * iteration, twice per message for a reader that waited for the next
 * message from a callback. A change made from anywhere but the reactor's
 * dispatch still wakes the context, which may be sleeping in poll() with
 * the old events.
 *
 * A watch that stops wanting anything keeps its events until it is
 * reported again: a reader that reads one message and waits for the next
 * changes nothing in the context. Reported while nothing is wanted, it
 * asks for nothing more. But poll() reports a hang-up or an error whatever
 * it is asked for, and a hung-up socket that nobody reads would wake the
 * context for ever: reported so, the fd leaves the source. */

void
_lsock_reactor_polled_add (LsockReactor *reactor,
                           LsockWatch   *watch)
{
  watch->polled = TRUE;
  watch->pollfd.fd = watch->fd;
  reactor->polled = g_list_concat (&watch->link, reactor->polled);
  reactor->n_polled++;
}

void
_lsock_reactor_polled_set_conditions (LsockReactor *reactor,
                                      LsockWatch   *watch)
{
  /* Nothing wanted: see above */
  if (watch->conditions == 0 || watch->conditions == watch->pollfd.events)
    return;
  watch->pollfd.events = watch->conditions;
  if (!watch->in_source)
    {
      /* Wakes the context itself */
      g_source_add_poll (&reactor->source, &watch->pollfd);
      watch->in_source = TRUE;
    }
  else if (!_lsock_reactor_is_dispatching (reactor))
    g_main_context_wakeup (reactor->context);
}

static void
polled_drop_fd (LsockReactor *reactor,
                LsockWatch   *watch)
{
  if (watch->in_source)
    g_source_remove_poll (&reactor->source, &watch->pollfd);
  watch->in_source = FALSE;
  watch->pollfd.events = 0;
  watch->pollfd.revents = 0;
}

void
_lsock_reactor_polled_remove (LsockReactor *reactor,
                              LsockWatch   *watch)
{
  polled_drop_fd (reactor, watch);
  reactor->polled = g_list_remove_link (reactor->polled, &watch->link);
  reactor->n_polled--;
}

gboolean
_lsock_reactor_polled_check (LsockReactor *reactor)
{
  for (GList *l = reactor->polled; l != NULL; l = l->next)
    {
      LsockWatch *watch = l->data;

      if (watch->in_source && watch->pollfd.revents != 0)
        return TRUE;
    }
  return FALSE;
}

guint
_lsock_reactor_polled_collect (LsockReactor    *reactor,
                               LsockReadyWatch *ready,
                               guint            max)
{
  guint n = 0;

  for (GList *l = reactor->polled; l != NULL && n < max; l = l->next)
    {
      LsockWatch *watch = l->data;
      GIOCondition condition;

      if (!watch->in_source || watch->pollfd.revents == 0)
        continue;
      condition = watch->pollfd.revents;
      /* The context's next check sets it again */
      watch->pollfd.revents = 0;
      /* Told once; not again until something is wanted */
      if (watch->conditions == 0)
        {
          if (condition & (G_IO_HUP | G_IO_ERR | G_IO_NVAL))
            polled_drop_fd (reactor, watch);
          else
            watch->pollfd.events = 0;
        }
      ready[n].watch = _lsock_watch_ref (watch);
      ready[n].condition = condition;
      n++;
    }
  return n;
}

static gboolean
poll_init (LsockReactor *reactor)
{
  return TRUE;
}

static void
poll_finalize (LsockReactor *reactor)
{
}

static gboolean
poll_add (LsockReactor  *reactor,
          LsockWatch    *watch,
          GError       **error)
{
  _lsock_reactor_polled_add (reactor, watch);
  return TRUE;
}

const LsockReactorImpl _lsock_reactor_poll_impl = {
  .kind = "poll",
  .init = poll_init,
  .finalize = poll_finalize,
  .add = poll_add,
  .set_conditions = _lsock_reactor_polled_set_conditions,
  .remove = _lsock_reactor_polled_remove,
  .check = _lsock_reactor_polled_check,
  .collect = _lsock_reactor_polled_collect,
};
