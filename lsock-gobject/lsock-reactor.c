/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include "lsock-reactor-private.h"

/* The shared part of the reactor: one GSource per (context, priority),
 * found through a registry, and the dispatch. See lsock-reactor-private.h
 * for what it promises. */

int _lsock_reactor_force_poll = 0;
/* A context's poll() of a few fds costs less than a poll() of the epoll
 * fd and an epoll_wait() after it; many cost more (each is a wait queue
 * entry made and removed in every iteration) */
int _lsock_reactor_polled_max = 4;

/* Watches served per dispatch. More stay ready for the next one: epoll
 * keeps them on its ready list, poll reports them again. */
#define MAX_READY_PER_DISPATCH 64
/* Operations that the dispatch's own callbacks start and that complete at
 * once (a reply written to a socket with room) are reported in the same
 * dispatch, after the callback that started them has returned: up to this
 * many, so a peer that keeps us busy cannot starve the context; the rest
 * wait for the next dispatch. */
#define MAX_FOLLOWUPS_PER_DISPATCH 256

typedef struct
{
  GMainContext *context;
  int           priority;
} ReactorKey;

/* The reactor whose dispatch this thread is running (the innermost, if a
 * callback iterates a context itself), or NULL */
static GPrivate dispatching;

G_LOCK_DEFINE_STATIC (registry);
static GHashTable *registry;  /* ReactorKey* → LsockReactor*, each attached */

static guint
reactor_key_hash (gconstpointer key)
{
  const ReactorKey *k = key;

  return g_direct_hash (k->context) ^ (guint) k->priority;
}

static gboolean
reactor_key_equal (gconstpointer a,
                   gconstpointer b)
{
  const ReactorKey *ka = a;
  const ReactorKey *kb = b;

  return ka->context == kb->context && ka->priority == kb->priority;
}

void
_lsock_deferred_list_push (LsockDeferredList *list,
                           LsockDeferred     *deferred)
{
  deferred->next = NULL;
  if (list->tail != NULL)
    list->tail->next = deferred;
  else
    list->head = deferred;
  list->tail = deferred;
}

LsockDeferred *
_lsock_deferred_list_pop (LsockDeferredList *list)
{
  LsockDeferred *deferred = list->head;

  if (deferred != NULL)
    {
      list->head = deferred->next;
      if (list->head == NULL)
        list->tail = NULL;
      deferred->next = NULL;
    }
  return deferred;
}

static void
run_all (LsockDeferredList *list)
{
  LsockDeferred *deferred;

  while ((deferred = _lsock_deferred_list_pop (list)) != NULL)
    deferred->run (deferred);
}

/* What the callbacks of a dispatch queued: each runs after the call that
 * queued it returned, so nothing completes inside its _async() call, but
 * with no main loop iteration in between */
static void
run_followups (LsockReactor *reactor)
{
  for (guint n = 0; n < MAX_FOLLOWUPS_PER_DISPATCH; n++)
    {
      LsockDeferred *followup = _lsock_deferred_list_pop (&reactor->followups);

      if (followup == NULL)
        return;
      followup->run (followup);
    }
  /* Over budget: the rest wait for the next dispatch, which prepare()
   * asks for at once; both lists are this thread's alone */
  if (reactor->followups.head != NULL)
    {
      LsockDeferred *followup;

      while ((followup = _lsock_deferred_list_pop (&reactor->followups)) != NULL)
        _lsock_deferred_list_push (&reactor->next, followup);
    }
}

static gboolean
reactor_prepare (GSource *source,
                 int     *timeout)
{
  LsockReactor *reactor = (LsockReactor *) source;

  *timeout = -1;
  /* Follow-ups left by a callback that iterates the context itself (a
   * loop of its own, waiting for what it started): this iteration is
   * where they run, nested in that callback */
  return g_atomic_int_get (&reactor->n_deferred) > 0 || reactor->followups.head != NULL ||
         reactor->next.head != NULL;
}

static gboolean
reactor_check (GSource *source)
{
  LsockReactor *reactor = (LsockReactor *) source;
  gboolean ready;

  if (g_atomic_int_get (&reactor->n_deferred) > 0 || reactor->followups.head != NULL ||
      reactor->next.head != NULL)
    return TRUE;
  g_mutex_lock (&reactor->lock);
  ready = reactor->impl->check (reactor);
  g_mutex_unlock (&reactor->lock);
  return ready;
}

static gboolean
reactor_dispatch (GSource     *source,
                  GSourceFunc  callback,
                  gpointer     user_data)
{
  LsockReactor *reactor = (LsockReactor *) source;
  LsockDeferredList deferred;
  LsockDeferredList next = reactor->next;
  LsockDeferredList ready = { NULL, NULL };
  LsockReadyWatch ready_watches[MAX_READY_PER_DISPATCH];
  guint n_ready = 0;
  LsockReactor *outer = g_private_get (&dispatching);

  g_private_set (&dispatching, reactor);

  /* What was queued before this dispatch runs in it; what its callbacks
   * queue waits for the next one, so a peer that keeps us busy cannot
   * starve the rest of the context */
  reactor->next.head = reactor->next.tail = NULL;
  g_mutex_lock (&reactor->defer_lock);
  deferred = reactor->deferred;
  reactor->deferred.head = reactor->deferred.tail = NULL;
  g_atomic_int_set (&reactor->n_deferred, 0);
  g_mutex_unlock (&reactor->defer_lock);

  g_mutex_lock (&reactor->lock);
  if (reactor->impl->check (reactor))
    n_ready = reactor->impl->collect (reactor, ready_watches, G_N_ELEMENTS (ready_watches));
  g_mutex_unlock (&reactor->lock);

  for (guint i = 0; i < n_ready; i++)
    {
      LsockReadyWatch *rw = &ready_watches[i];
      LsockWatch *watch = rw->watch;
      gboolean destroyed;

      g_mutex_lock (&reactor->lock);
      destroyed = watch->destroyed;
      g_mutex_unlock (&reactor->lock);
      if (!destroyed)
        watch->func (watch, rw->condition, watch->user_data, &ready);
      _lsock_watch_unref (watch);
    }

  run_all (&next);
  run_all (&deferred);
  run_all (&ready);
  run_followups (reactor);

  g_private_set (&dispatching, outer);
  return G_SOURCE_CONTINUE;
}

LsockReactor *
_lsock_reactor_dispatch_begin (LsockReactor *reactor)
{
  LsockReactor *outer = g_private_get (&dispatching);

  /* Whatever the callbacks do to the listener that holds it */
  _lsock_reactor_ref (reactor);
  g_private_set (&dispatching, reactor);
  return outer;
}

void
_lsock_reactor_dispatch_end (LsockReactor *reactor,
                             LsockReactor *outer)
{
  run_followups (reactor);
  g_private_set (&dispatching, outer);
  _lsock_reactor_unref (reactor);
}

static void
reactor_finalize (GSource *source)
{
  LsockReactor *reactor = (LsockReactor *) source;

  g_assert (reactor->polled == NULL && reactor->epolled == NULL && reactor->n_watches == 0);
  reactor->impl->finalize (reactor);
  g_mutex_clear (&reactor->lock);
  g_mutex_clear (&reactor->defer_lock);
}

static GSourceFuncs reactor_funcs = {
  .prepare = reactor_prepare,
  .check = reactor_check,
  .dispatch = reactor_dispatch,
  .finalize = reactor_finalize,
};

static LsockReactor *
reactor_new (GMainContext *context,
             int           priority)
{
  LsockReactor *reactor = (LsockReactor *) g_source_new (&reactor_funcs, sizeof (LsockReactor));

  g_mutex_init (&reactor->lock);
  g_mutex_init (&reactor->defer_lock);
  /* As a GTask does, the context stays while operations may report there
   * (and its address cannot be a new context's, in the registry): until
   * the last user goes, see _lsock_reactor_unref() */
  reactor->context = g_main_context_ref (context);
  reactor->priority = priority;
  reactor->epfd = -1;

  reactor->impl = &_lsock_reactor_poll_impl;
  reactor->polled_max = G_MAXUINT;
#ifdef __linux__
  if (!g_atomic_int_get (&_lsock_reactor_force_poll) &&
      _lsock_reactor_epoll_impl.init (reactor))
    {
      reactor->impl = &_lsock_reactor_epoll_impl;
      reactor->polled_max = MAX (g_atomic_int_get (&_lsock_reactor_polled_max), 0);
    }
  else
#endif
    _lsock_reactor_poll_impl.init (reactor);

  g_source_set_static_name (&reactor->source, "[lsock] I/O");
  g_source_set_priority (&reactor->source, priority);
  /* GLib blocks a source that cannot recurse while it dispatches, which
   * removes its fds from the context and adds them back: two writes to
   * the context's eventfd and one more iteration per dispatch. The
   * dispatch is safe to re-enter: what it runs was taken off every list
   * before, and nothing of ours is locked while callbacks run. */
  g_source_set_can_recurse (&reactor->source, TRUE);

  return reactor;
}

LsockReactor *
_lsock_reactor_ref_for_context (GMainContext *context,
                                int           priority)
{
  ReactorKey key;
  LsockReactor *reactor;

  if (context == NULL)
    context = g_main_context_default ();
  key.context = context;
  key.priority = priority;

  G_LOCK (registry);
  if (registry == NULL)
    registry = g_hash_table_new_full (reactor_key_hash, reactor_key_equal, g_free, NULL);

  reactor = g_hash_table_lookup (registry, &key);
  /* A reactor whose context was destroyed (and whose address a new
   * context may now have) is not used again */
  if (reactor != NULL && !g_source_is_destroyed (&reactor->source))
    {
      g_atomic_int_inc (&reactor->users);
      G_UNLOCK (registry);
      return reactor;
    }

  reactor = reactor_new (context, priority);
  reactor->users = 1;
  g_hash_table_replace (registry, g_memdup2 (&key, sizeof key), reactor);
  /* The context holds the attached source; the users together hold the
   * reference g_source_new() gave, for the memory: see
   * _lsock_reactor_unref() */
  g_source_attach (&reactor->source, context);
  G_UNLOCK (registry);

  return reactor;
}

LsockReactor *
_lsock_reactor_ref (LsockReactor *reactor)
{
  g_atomic_int_inc (&reactor->users);
  return reactor;
}

/* The last user gone: the reactor leaves its context, so that a context
 * done with lsock keeps nothing of it (no epoll fd, no source), and lets
 * go of it.
 *
 * The users share one reference to the source, which the last of them
 * drops, and only then the context. A destroyed source still points at
 * its context, and its last unref locks the context (twice: before and
 * after finalize() runs, unlocked), so whoever drops the last reference
 * must hold the context. When each user held a reference of its own, a
 * user could count itself out, be preempted, and drop its reference after
 * the last user had let go of the context and the context's thread had
 * freed it: that unref locked freed memory (a hang, or a heap corrupted
 * under the read-vs-close race on the portable reactor). Now the other
 * users touch nothing once counted out, and the count reaches 0 only
 * under the registry lock, so nobody revives a reactor that is going; the
 * references GLib holds meanwhile (a dispatch in progress) are the context
 * thread's, which holds the context. Never from the source's finalize. */
void
_lsock_reactor_unref (LsockReactor *reactor)
{
  GMainContext *context = NULL;
  int users = g_atomic_int_get (&reactor->users);

  /* Not the last: counted out, and nothing more is touched */
  while (users > 1)
    {
      if (g_atomic_int_compare_and_exchange_full (&reactor->users, users, users - 1, &users))
        return;
    }

  /* Perhaps the last: the count goes to 0 only under the registry lock,
   * which a user reviving it from the registry holds too */
  G_LOCK (registry);
  if (g_atomic_int_dec_and_test (&reactor->users))
    {
      ReactorKey key = { reactor->context, reactor->priority };

      if (g_hash_table_lookup (registry, &key) == reactor)
        g_hash_table_remove (registry, &key);
      g_source_destroy (&reactor->source);
      context = g_steal_pointer (&reactor->context);
    }
  G_UNLOCK (registry);

  if (context != NULL)
    {
      g_source_unref (&reactor->source);
      g_main_context_unref (context);
    }
}

GMainContext *
_lsock_reactor_get_context (LsockReactor *reactor)
{
  return reactor->context;
}

int
_lsock_reactor_get_priority (LsockReactor *reactor)
{
  return reactor->priority;
}

const char *
_lsock_reactor_get_kind (LsockReactor *reactor)
{
  return reactor->impl->kind;
}

gboolean
_lsock_reactor_is_dispatching (LsockReactor *reactor)
{
  return g_private_get (&dispatching) == reactor;
}

void
_lsock_reactor_defer (LsockReactor  *reactor,
                      LsockDeferred *deferred)
{
  /* From this reactor's own dispatch (a callback starting its next
   * operation, the common case): the dispatch holds the reactor, runs
   * what is queued once the callback returns, and nothing else can run it
   * meanwhile, since only this thread dispatches the context now */
  if (_lsock_reactor_is_dispatching (reactor))
    {
      _lsock_deferred_list_push (&reactor->followups, deferred);
      return;
    }
  _lsock_reactor_defer_next (reactor, deferred);
}

void
_lsock_reactor_defer_next (LsockReactor  *reactor,
                           LsockDeferred *deferred)
{
  /* From a dispatch (the common case: a reply written from a read's
   * callback): the context's thread sees it in prepare(), with no lock,
   * no reference pair, no g_main_context_is_owner() */
  if (_lsock_reactor_is_dispatching (reactor))
    {
      _lsock_deferred_list_push (&reactor->next, deferred);
      return;
    }
  /* Once queued, @deferred may run in the context's thread and let go of
   * the reactor before we are done here */
  _lsock_reactor_ref (reactor);
  g_mutex_lock (&reactor->defer_lock);
  _lsock_deferred_list_push (&reactor->deferred, deferred);
  g_atomic_int_inc (&reactor->n_deferred);
  g_mutex_unlock (&reactor->defer_lock);

  /* The context's own thread sees it in prepare(); another one may be
   * sleeping in poll() */
  if (!g_main_context_is_owner (reactor->context))
    g_main_context_wakeup (reactor->context);
  _lsock_reactor_unref (reactor);
}

LsockWatch *
_lsock_reactor_add_watch (LsockReactor    *reactor,
                          int              fd,
                          LsockWatchFunc   func,
                          gpointer         user_data,
                          GDestroyNotify   notify,
                          GError         **error)
{
  LsockWatch *watch = g_new0 (LsockWatch, 1);

  g_atomic_ref_count_init (&watch->ref_count);
  watch->reactor = _lsock_reactor_ref (reactor);
  watch->fd = fd;
  watch->func = func;
  watch->user_data = user_data;
  watch->link.data = watch;

  g_mutex_lock (&reactor->lock);
  if (!reactor->impl->add (reactor, watch, error))
    {
      g_mutex_unlock (&reactor->lock);
      _lsock_reactor_unref (watch->reactor);
      g_free (watch);
      return NULL;
    }
  reactor->n_watches++;
  g_mutex_unlock (&reactor->lock);

  /* Only now: a failed watch leaves @user_data to the caller */
  watch->notify = notify;
  return watch;
}

void
_lsock_watch_set_conditions (LsockWatch   *watch,
                             GIOCondition  conditions)
{
  LsockReactor *reactor = watch->reactor;

  conditions &= G_IO_IN | G_IO_OUT;
  g_mutex_lock (&reactor->lock);
  if (!watch->destroyed && watch->conditions != conditions)
    {
      watch->conditions = conditions;
      reactor->impl->set_conditions (reactor, watch);
    }
  g_mutex_unlock (&reactor->lock);
}

void
_lsock_watch_destroy (LsockWatch *watch)
{
  LsockReactor *reactor = watch->reactor;

  g_mutex_lock (&reactor->lock);
  if (!watch->destroyed)
    {
      watch->destroyed = TRUE;
      reactor->impl->remove (reactor, watch);
      reactor->n_watches--;
    }
  g_mutex_unlock (&reactor->lock);

  _lsock_watch_unref (watch);
}

LsockWatch *
_lsock_watch_ref (LsockWatch *watch)
{
  g_atomic_ref_count_inc (&watch->ref_count);
  return watch;
}

void
_lsock_watch_unref (LsockWatch *watch)
{
  if (!g_atomic_ref_count_dec (&watch->ref_count))
    return;

  g_assert (watch->destroyed);
  if (watch->notify != NULL)
    watch->notify (watch->user_data);
  _lsock_reactor_unref (watch->reactor);
  g_free (watch);
}

gboolean
_lsock_watch_waits_after_short_read (LsockWatch *watch)
{
  LsockReactor *reactor = watch->reactor;
  gboolean wait;

  g_mutex_lock (&reactor->lock);
  wait = !watch->destroyed && !watch->polled && watch->level;
  g_mutex_unlock (&reactor->lock);
  return wait;
}

void
_lsock_watch_note_read (LsockWatch *watch)
{
  g_atomic_int_inc (&watch->reads);
}

gboolean
_lsock_watch_is_polled (LsockWatch *watch)
{
  LsockReactor *reactor = watch->reactor;
  gboolean polled;

  g_mutex_lock (&reactor->lock);
  polled = watch->polled;
  g_mutex_unlock (&reactor->lock);
  return polled;
}

LsockReactor *
_lsock_watch_get_reactor (LsockWatch *watch)
{
  return watch->reactor;
}

gpointer
_lsock_watch_get_user_data (LsockWatch *watch)
{
  return watch->user_data;
}
