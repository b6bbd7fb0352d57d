/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#if !defined (LSOCK_INSIDE) && !defined (LSOCK_COMPILATION)
# error "Only <lsock-gobject/lsock.h> can be included directly."
#endif

#include <gio/gio.h>
#include <lsock-gobject/lsock-types.h>

G_BEGIN_DECLS

#define LSOCK_TYPE_LISTENER (lsock_listener_get_type ())
LSOCK_AVAILABLE_IN_ALL
G_DECLARE_FINAL_TYPE (LsockListener, lsock_listener, LSOCK, LISTENER, GObject)

LSOCK_AVAILABLE_IN_ALL
LsockListener *lsock_listener_new              (LsockName            *name,
                                                GError              **error);
LSOCK_AVAILABLE_IN_ALL
LsockListener *lsock_listener_new_full         (LsockName            *name,
                                                LsockAccess           access,
                                                GCancellable         *cancellable,
                                                GError              **error);

LSOCK_AVAILABLE_IN_ALL
LsockListener *lsock_listener_new_from_fd      (int                   fd,
                                                LsockAccess           access,
                                                GError              **error);
LSOCK_AVAILABLE_IN_ALL
LsockListener *lsock_listener_new_activated    (const char           *fd_name,
                                                LsockAccess           access,
                                                GError              **error);
LSOCK_AVAILABLE_IN_ALL
void           lsock_listener_set_keep_activation_environment (gboolean keep);
LSOCK_AVAILABLE_IN_ALL
gboolean       lsock_listener_is_adopted       (LsockListener        *self);
LSOCK_AVAILABLE_IN_ALL
LsockName     *lsock_listener_get_name         (LsockListener        *self);
LSOCK_AVAILABLE_IN_ALL
LsockAccess    lsock_listener_get_access       (LsockListener        *self);
LSOCK_AVAILABLE_IN_ALL
int            lsock_listener_get_backlog      (LsockListener        *self);
LSOCK_AVAILABLE_IN_ALL
gboolean       lsock_listener_get_reclaim_name (LsockListener        *self);
LSOCK_AVAILABLE_IN_ALL
void           lsock_listener_set_reclaim_name (LsockListener        *self,
                                                gboolean              reclaim_name);
LSOCK_AVAILABLE_IN_ALL
gboolean       lsock_listener_get_replace_stale (LsockListener       *self);

LSOCK_AVAILABLE_IN_ALL
LsockStream   *lsock_listener_accept           (LsockListener        *self,
                                                GCancellable         *cancellable,
                                                GError              **error);
LSOCK_AVAILABLE_IN_ALL
void           lsock_listener_accept_async     (LsockListener        *self,
                                                GCancellable         *cancellable,
                                                GAsyncReadyCallback   callback,
                                                gpointer              user_data);
LSOCK_AVAILABLE_IN_ALL
LsockStream   *lsock_listener_accept_finish    (LsockListener        *self,
                                                GAsyncResult         *result,
                                                GError              **error);

LSOCK_AVAILABLE_IN_ALL
void           lsock_listener_start            (LsockListener        *self);
LSOCK_AVAILABLE_IN_ALL
void           lsock_listener_stop             (LsockListener        *self);
LSOCK_AVAILABLE_IN_ALL
gboolean       lsock_listener_is_active        (LsockListener        *self);
LSOCK_AVAILABLE_IN_ALL
void           lsock_listener_close            (LsockListener        *self);
LSOCK_AVAILABLE_IN_ALL
gboolean       lsock_listener_is_closed        (LsockListener        *self);

G_END_DECLS
