/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include "lsock-reactor-private.h"

/* Watches the context polls itself: each is an fd of the reactor's source,
 * level-triggered, for the conditions wanted. That is every watch of the
 * portable reactor (where there is no epoll, and where epoll_create1()
 * fails), and the first few of an epoll one (lsock-reactor-epoll.c).
 *
 * A watch that stops wanting anything keeps its fd in the source until it
 * is reported again: a reader that reads one message and waits for the
 * next changes nothing in the context. Reported while nothing is wanted,
 * the fd leaves the source: poll() reports a hang-up whatever it is asked
 * for, and a hung-up socket that nobody reads would wake the context for
 * ever. */

void
_lsock_reactor_polled_add (LsockReactor *reactor,
                           LsockWatch   *watch)
{
  watch->polled = TRUE;
  reactor->polled = g_list_concat (&watch->link, reactor->polled);
  reactor->n_polled++;
}

void
_lsock_reactor_polled_set_conditions (LsockReactor *reactor,
                                      LsockWatch   *watch)
{
  /* Nothing wanted: see above */
  if (watch->conditions == 0 || watch->conditions == watch->events)
    return;
  if (watch->tag == NULL)
    watch->tag = g_source_add_unix_fd (&reactor->source, watch->fd, watch->conditions);
  else
    g_source_modify_unix_fd (&reactor->source, watch->tag, watch->conditions);
  watch->events = watch->conditions;
}

static void
polled_drop_fd (LsockReactor *reactor,
                LsockWatch   *watch)
{
  if (watch->tag != NULL)
    g_source_remove_unix_fd (&reactor->source, g_steal_pointer (&watch->tag));
  watch->events = 0;
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

      if (watch->tag != NULL && g_source_query_unix_fd (&reactor->source, watch->tag) != 0)
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

      if (watch->tag == NULL)
        continue;
      condition = g_source_query_unix_fd (&reactor->source, watch->tag);
      if (condition == 0)
        continue;
      /* Told once; not again until something is wanted */
      if (watch->conditions == 0)
        polled_drop_fd (reactor, watch);
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
