/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#if !defined (LSOCK_COMPILATION)
# error "private header"
#endif

#include <gio/gio.h>

G_BEGIN_DECLS

/*
 * The reactor: readiness of many descriptors for one GMainContext.
 *
 * A GMainContext polls every fd of every source in every iteration, and
 * adding or removing one wakes the context up (a write to its eventfd). A
 * reactor is one GSource per (context, priority) that watches any number
 * of descriptors: on Linux through one epoll fd (lsock-reactor-epoll.c),
 * elsewhere, or when epoll is unavailable, through the context's own poll
 * (lsock-reactor-poll.c).
 *
 * The first few watches of a reactor on epoll (_lsock_reactor_polled_max)
 * are polled by the context itself, beside the epoll fd: a service with a
 * handful of connections then learns of input from the context's one
 * poll(), with no epoll_wait() behind it. One with more has all of them
 * on epoll, until it is down to half that many: a poll() of several fds
 * and an epoll_wait() behind it cost more than either alone.
 *
 * It only says what became ready: what to do about it is its users'
 * business. A watch's function is called from the reactor's dispatch with
 * the conditions that became ready: on epoll every edge of input, urgent
 * data, hang-up and error (whether wanted or not: users remember
 * readiness), and of output while it is wanted; on a watch the context
 * polls, what is wanted and ready now (level-triggered), and, once, what
 * was ready when it stopped being wanted. A user must therefore treat a
 * condition as ready until a system call fails with EAGAIN, and only then
 * ask for it with _lsock_watch_set_conditions().
 *
 * Input, though, may be reported level-triggered on epoll too: once a
 * user has asked for G_IO_IN, epoll reports input for as long as it is
 * there, until the watch is reported twice while nobody asked for it with
 * no read in between (_lsock_watch_note_read()), when it goes back to
 * edges (which reports what is there once more). While
 * _lsock_watch_waits_after_short_read() says so, a user may stop treating
 * input as ready after a read that returned less than it asked for, and
 * wait: if that read stopped short of queued data (a message carrying
 * descriptors, urgent data), the report comes all the same. It says so
 * only on epoll: a watch the context polls is reported level-triggered
 * too, but there are only a few, and a wait that another try would have
 * spared (the peer answered meanwhile) costs an iteration of the context
 * of its own, where on epoll the others' input shares it.
 *
 * Watch functions run in the context's thread, with no reactor lock held,
 * and must not call out to user code: they put what is to be reported on
 * @ready, which the dispatch runs once every watch has been seen.
 * _lsock_reactor_defer() queues work from any thread: for the next
 * dispatch, or, when it is called from a dispatch's own callbacks, for
 * later in that dispatch (up to a budget), once the callback returned.
 *
 * Locking: a user may hold its own lock while calling any function here;
 * the reactor never calls a watch function with its own locks held.
 */

typedef struct _LsockReactor  LsockReactor;
typedef struct _LsockWatch    LsockWatch;
typedef struct _LsockDeferred LsockDeferred;

/* Work for a dispatch, linked through itself (no allocation to queue it) */
struct _LsockDeferred
{
  LsockDeferred  *next;
  void          (*run) (LsockDeferred *deferred);
};

typedef struct
{
  LsockDeferred *head;
  LsockDeferred *tail;
} LsockDeferredList;

void          _lsock_deferred_list_push          (LsockDeferredList *list,
                                                  LsockDeferred     *deferred);
LsockDeferred *_lsock_deferred_list_pop          (LsockDeferredList *list);

typedef void (*LsockWatchFunc) (LsockWatch        *watch,
                                GIOCondition       condition,
                                gpointer           user_data,
                                LsockDeferredList *ready);

/* The reactor of @context (NULL: the global default context) at @priority,
 * made and attached on first use. Never NULL. */
LsockReactor *_lsock_reactor_ref_for_context     (GMainContext      *context,
                                                  int                priority);
LsockReactor *_lsock_reactor_ref                 (LsockReactor      *reactor);
void          _lsock_reactor_unref               (LsockReactor      *reactor);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (LsockReactor, _lsock_reactor_unref)

GMainContext *_lsock_reactor_get_context         (LsockReactor      *reactor);
int           _lsock_reactor_get_priority        (LsockReactor      *reactor);
/* "epoll" or "poll" */
const char   *_lsock_reactor_get_kind            (LsockReactor      *reactor);

/* Runs @deferred in the reactor's next dispatch, in its context's thread.
 * Safe from any thread, and from a dispatch: then it runs later in the
 * same one, after the caller returned (at most MAX_FOLLOWUPS_PER_DISPATCH
 * such; the rest in the next dispatch). Never from inside this call. */
void          _lsock_reactor_defer               (LsockReactor      *reactor,
                                                  LsockDeferred     *deferred);
/* The same, but always for the next dispatch */
void          _lsock_reactor_defer_next          (LsockReactor      *reactor,
                                                  LsockDeferred     *deferred);

/* Around the callbacks of another source's dispatch in the reactor's
 * context (a listener's accepts): what they queue with
 * _lsock_reactor_defer() runs at _end(), as it would after a callback of
 * the reactor's own dispatch, not in the reactor's next one. _begin()
 * returns what _end() restores, and holds the reactor until then. */
LsockReactor *_lsock_reactor_dispatch_begin      (LsockReactor      *reactor);
void          _lsock_reactor_dispatch_end        (LsockReactor      *reactor,
                                                  LsockReactor      *outer);

/* Watches @fd, which must stay open until the watch is destroyed. The
 * watch starts with no conditions wanted; @notify frees @user_data once
 * the watch is gone and its function is not running. NULL with @error if
 * the system refuses (e.g. out of epoll watches). */
LsockWatch   *_lsock_reactor_add_watch           (LsockReactor      *reactor,
                                                  int                fd,
                                                  LsockWatchFunc     func,
                                                  gpointer           user_data,
                                                  GDestroyNotify     notify,
                                                  GError           **error);
/* G_IO_IN and/or G_IO_OUT: the conditions a user waits for now */
void          _lsock_watch_set_conditions        (LsockWatch        *watch,
                                                  GIOCondition       conditions);
/* Stops watching, and drops the reference the watch was made with. A
 * dispatch already under way in the context's thread may still call the
 * function once; no later one does. The user data stays until then. */
void          _lsock_watch_destroy               (LsockWatch        *watch);
LsockWatch   *_lsock_watch_ref                   (LsockWatch        *watch);
void          _lsock_watch_unref                 (LsockWatch        *watch);
/* Whether a user may wait for a report after a short read (see above) */
gboolean      _lsock_watch_waits_after_short_read (LsockWatch       *watch);
/* A read on the watch's fd took something (or said end of stream) */
void          _lsock_watch_note_read             (LsockWatch        *watch);
/* Tests: whether the context polls @watch itself, rather than epoll */
gboolean      _lsock_watch_is_polled             (LsockWatch        *watch);
/* (transfer none) valid while the caller holds the watch */
LsockReactor *_lsock_watch_get_reactor           (LsockWatch        *watch);
gpointer      _lsock_watch_get_user_data         (LsockWatch        *watch);

/* Tests: non-zero makes new reactors use poll even where epoll works */
extern int _lsock_reactor_force_poll;
/* How many watches of a new epoll reactor the context polls directly;
 * tests set 0 to put every watch on epoll */
extern int _lsock_reactor_polled_max;

/* ------------------------------------------------------------------------
 * For the implementations (lsock-reactor-epoll.c, lsock-reactor-poll.c)
 */

typedef struct
{
  LsockWatch   *watch;     /* a reference */
  GIOCondition  condition;
} LsockReadyWatch;

typedef struct
{
  const char *kind;
  /* Sets up the implementation's state and fds on the (unattached)
   * source; FALSE if it cannot work here */
  gboolean (*init)           (LsockReactor *reactor);
  void     (*finalize)       (LsockReactor *reactor);
  /* The rest are called with reactor->lock held */
  gboolean (*add)            (LsockReactor *reactor,
                              LsockWatch   *watch,
                              GError      **error);
  void     (*set_conditions) (LsockReactor *reactor,
                              LsockWatch   *watch);
  void     (*remove)         (LsockReactor *reactor,
                              LsockWatch   *watch);
  /* Whether the context's poll said anything for us */
  gboolean (*check)          (LsockReactor *reactor);
  /* Fills @ready with up to @max watches that are ready, each with a new
   * reference; returns how many */
  guint    (*collect)        (LsockReactor    *reactor,
                              LsockReadyWatch *ready,
                              guint            max);
} LsockReactorImpl;

extern const LsockReactorImpl _lsock_reactor_epoll_impl;
extern const LsockReactorImpl _lsock_reactor_poll_impl;

struct _LsockReactor
{
  GSource                 source;
  const LsockReactorImpl *impl;
  GMainContext           *context;   /* a reference */
  int                     priority;
  int                     users;     /* atomic; see _lsock_reactor_unref() */

  /* Guards the watches and the implementation's state */
  GMutex                  lock;
  GList                  *polled;    /* LsockWatch*: those the context polls */
  guint                   n_polled;
  guint                   polled_max;
  guint                   n_watches;
  /* epoll: the other watches, and whether none is to be polled now (the
   * reactor had more than polled_max, and not yet fewer than half) */
  GList                  *epolled;
  gboolean                all_on_epoll;

  /* Guards deferred; taken with nothing else of ours inside it */
  GMutex                  defer_lock;
  LsockDeferredList       deferred;
  int                     n_deferred;  /* atomic: for prepare() and check() */
  /* Queued from the dispatch's own callbacks: only the thread running the
   * dispatch touches it, without a lock; empty between dispatches */
  LsockDeferredList       followups;
  /* Queued from a dispatch for the next one (_lsock_reactor_defer_next()):
   * only the thread running the context touches it, without a lock */
  LsockDeferredList       next;

  /* epoll */
  int                     epfd;
  gpointer                epfd_tag;
};

struct _LsockWatch
{
  gatomicrefcount  ref_count;
  LsockReactor    *reactor;      /* a reference */
  int              fd;
  LsockWatchFunc   func;
  gpointer         user_data;
  GDestroyNotify   notify;
  /* Under reactor->lock */
  gboolean         destroyed;
  gboolean         polled;       /* by the context, not on epoll */
  GIOCondition     conditions;   /* wanted */
  guint32          events;       /* registered: epoll events */
  /* epoll: input registered level-triggered (since G_IO_IN was wanted);
   * reported once while unwanted, and what reads had counted then */
  gboolean         level;
  gboolean         unwanted;
  int              reads_seen;
  GList            link;         /* in reactor->polled or ->epolled */
  /* polled: what the context polls, while in_source (ours, so that its
   * events change without a wake-up: see lsock-reactor-poll.c) */
  GPollFD          pollfd;
  gboolean         in_source;
  /* Atomic: the user's reads, for telling a reader that is slow from one
   * that is gone (see above) */
  int              reads;
};

/* Watches the context polls (lsock-reactor-poll.c): all of a poll reactor,
 * the first few of an epoll one. Called with reactor->lock held. */
void     _lsock_reactor_polled_add            (LsockReactor    *reactor,
                                               LsockWatch      *watch);
void     _lsock_reactor_polled_set_conditions (LsockReactor    *reactor,
                                               LsockWatch      *watch);
void     _lsock_reactor_polled_remove         (LsockReactor    *reactor,
                                               LsockWatch      *watch);
gboolean _lsock_reactor_polled_check          (LsockReactor    *reactor);
guint    _lsock_reactor_polled_collect        (LsockReactor    *reactor,
                                               LsockReadyWatch *ready,
                                               guint            max);
/* Whether this thread is running @reactor's dispatch now */
gboolean _lsock_reactor_is_dispatching        (LsockReactor    *reactor);

G_END_DECLS
