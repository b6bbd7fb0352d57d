/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#if !defined (LSOCK_INSIDE) && !defined (LSOCK_COMPILATION)
# error "Only <lsock-gobject/lsock.h> can be included directly."
#endif

#include <gio/gio.h>
#include <lsock-gobject/lsock-types.h>

G_BEGIN_DECLS

#define LSOCK_TYPE_STREAM (lsock_stream_get_type ())
LSOCK_AVAILABLE_IN_ALL
G_DECLARE_FINAL_TYPE (LsockStream, lsock_stream, LSOCK, STREAM, GIOStream)

LSOCK_AVAILABLE_IN_ALL
LsockStream   *lsock_stream_connect              (LsockName            *name,
                                                  GCancellable         *cancellable,
                                                  GError              **error);
LSOCK_AVAILABLE_IN_ALL
void           lsock_stream_connect_async        (LsockName            *name,
                                                  GCancellable         *cancellable,
                                                  GAsyncReadyCallback   callback,
                                                  gpointer              user_data);
LSOCK_AVAILABLE_IN_ALL
LsockStream   *lsock_stream_connect_finish       (GAsyncResult         *result,
                                                  GError              **error);
LSOCK_AVAILABLE_IN_ALL
LsockStream   *lsock_stream_connect_full         (LsockName            *name,
                                                  LsockAccess           server_access,
                                                  guint                 timeout_ms,
                                                  GCancellable         *cancellable,
                                                  GError              **error);
LSOCK_AVAILABLE_IN_ALL
void           lsock_stream_connect_full_async   (LsockName            *name,
                                                  LsockAccess           server_access,
                                                  guint                 timeout_ms,
                                                  GCancellable         *cancellable,
                                                  GAsyncReadyCallback   callback,
                                                  gpointer              user_data);
LSOCK_AVAILABLE_IN_ALL
LsockStream   *lsock_stream_connect_full_finish  (GAsyncResult         *result,
                                                  GError              **error);

/* What bindings see as connect_to*(): use the names above in C */
LSOCK_AVAILABLE_IN_ALL
LsockStream   *lsock_stream_connect_to           (LsockName            *name,
                                                  GCancellable         *cancellable,
                                                  GError              **error);
LSOCK_AVAILABLE_IN_ALL
void           lsock_stream_connect_to_async     (LsockName            *name,
                                                  GCancellable         *cancellable,
                                                  GAsyncReadyCallback   callback,
                                                  gpointer              user_data);
LSOCK_AVAILABLE_IN_ALL
LsockStream   *lsock_stream_connect_to_finish    (GAsyncResult         *result,
                                                  GError              **error);

LSOCK_AVAILABLE_IN_ALL
LsockName     *lsock_stream_get_name             (LsockStream          *self);
LSOCK_AVAILABLE_IN_ALL
GCredentials  *lsock_stream_get_peer_credentials (LsockStream          *self,
                                                  GError              **error);
LSOCK_AVAILABLE_IN_ALL
int            lsock_stream_get_peer_pidfd       (LsockStream          *self,
                                                  GError              **error);
LSOCK_AVAILABLE_IN_ALL
gboolean       lsock_stream_get_peer_discarded   (LsockStream          *self);
LSOCK_AVAILABLE_IN_ALL
gboolean       lsock_stream_shutdown             (LsockStream          *self,
                                                  gboolean              shutdown_read,
                                                  gboolean              shutdown_write,
                                                  GError              **error);

LSOCK_AVAILABLE_IN_ALL
guint          lsock_stream_get_timeout          (LsockStream          *self);
LSOCK_AVAILABLE_IN_ALL
void           lsock_stream_set_timeout          (LsockStream          *self,
                                                  guint                 timeout_ms);

G_END_DECLS
