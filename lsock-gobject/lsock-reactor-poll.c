/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include "lsock-reactor-private.h"

/* The portable reactor: each watch is an fd of the reactor's source, polled
 * by the context itself, level-triggered, for the conditions wanted. While
 * nothing is wanted the fd leaves the source: poll() reports a hang-up
 * whatever it is asked for, and a hung-up socket that nobody reads would
 * wake the context for ever. Used where there is no epoll, and where
 * epoll_create1() fails. */

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
  return TRUE;
}

static void
poll_set_conditions (LsockReactor *reactor,
                     LsockWatch   *watch)
{
  if (watch->conditions == 0)
    {
      if (watch->tag != NULL)
        g_source_remove_unix_fd (&reactor->source, g_steal_pointer (&watch->tag));
    }
  else if (watch->tag == NULL)
    watch->tag = g_source_add_unix_fd (&reactor->source, watch->fd, watch->conditions);
  else
    g_source_modify_unix_fd (&reactor->source, watch->tag, watch->conditions);
}

static void
poll_remove (LsockReactor *reactor,
             LsockWatch   *watch)
{
  if (watch->tag != NULL)
    g_source_remove_unix_fd (&reactor->source, g_steal_pointer (&watch->tag));
}

static gboolean
poll_check (LsockReactor *reactor)
{
  for (GList *l = reactor->watches; l != NULL; l = l->next)
    {
      LsockWatch *watch = l->data;

      if (watch->tag != NULL && g_source_query_unix_fd (&reactor->source, watch->tag) != 0)
        return TRUE;
    }
  return FALSE;
}

static guint
poll_collect (LsockReactor    *reactor,
              LsockReadyWatch *ready,
              guint            max)
{
  guint n = 0;

  for (GList *l = reactor->watches; l != NULL && n < max; l = l->next)
    {
      LsockWatch *watch = l->data;
      GIOCondition condition;

      if (watch->tag == NULL)
        continue;
      condition = g_source_query_unix_fd (&reactor->source, watch->tag);
      if (condition == 0)
        continue;
      ready[n].watch = _lsock_watch_ref (watch);
      ready[n].condition = condition;
      n++;
    }
  return n;
}

const LsockReactorImpl _lsock_reactor_poll_impl = {
  .kind = "poll",
  .init = poll_init,
  .finalize = poll_finalize,
  .add = poll_add,
  .set_conditions = poll_set_conditions,
  .remove = poll_remove,
  .check = poll_check,
  .collect = poll_collect,
};
