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

/* The fast path: whole GBytes, no GTask on Unix */
LSOCK_AVAILABLE_IN_ALL
gboolean       lsock_stream_send_bytes           (LsockStream          *self,
                                                  GBytes               *bytes,
                                                  GCancellable         *cancellable,
                                                  GError              **error);
LSOCK_AVAILABLE_IN_ALL
void           lsock_stream_send_bytes_async     (LsockStream          *self,
                                                  GBytes               *bytes,
                                                  int                   io_priority,
                                                  GCancellable         *cancellable,
                                                  GAsyncReadyCallback   callback,
                                                  gpointer              user_data);
LSOCK_AVAILABLE_IN_ALL
gboolean       lsock_stream_send_bytes_finish    (LsockStream          *self,
                                                  GAsyncResult         *result,
                                                  GError              **error);
LSOCK_AVAILABLE_IN_ALL
GBytes        *lsock_stream_receive_bytes        (LsockStream          *self,
                                                  gsize                 max_bytes,
                                                  GCancellable         *cancellable,
                                                  GError              **error);
LSOCK_AVAILABLE_IN_ALL
void           lsock_stream_receive_bytes_async  (LsockStream          *self,
                                                  gsize                 max_bytes,
                                                  int                   io_priority,
                                                  GCancellable         *cancellable,
                                                  GAsyncReadyCallback   callback,
                                                  gpointer              user_data);
LSOCK_AVAILABLE_IN_ALL
GBytes        *lsock_stream_receive_bytes_finish (LsockStream          *self,
                                                  GAsyncResult         *result,
                                                  GError              **error);

/* Descriptors (Unix; G_IO_ERROR_NOT_SUPPORTED on Windows, but new_pair) */
LSOCK_AVAILABLE_IN_ALL
LsockStream   *lsock_stream_new_from_fd          (int                   fd,
                                                  GError              **error);
LSOCK_AVAILABLE_IN_ALL
gboolean       lsock_stream_new_pair             (LsockStream         **first,
                                                  LsockStream         **second,
                                                  GError              **error);
LSOCK_AVAILABLE_IN_ALL
int            lsock_stream_get_fd               (LsockStream          *self);
LSOCK_AVAILABLE_IN_ALL
int            lsock_stream_steal_fd             (LsockStream          *self,
                                                  GError              **error);
LSOCK_AVAILABLE_IN_ALL
GSocketConnection *lsock_stream_steal_connection (LsockStream          *self,
                                                  GError              **error);

LSOCK_AVAILABLE_IN_ALL
gboolean       lsock_stream_send_fd              (LsockStream          *self,
                                                  int                   fd,
                                                  GCancellable         *cancellable,
                                                  GError              **error);
LSOCK_AVAILABLE_IN_ALL
void           lsock_stream_send_fd_async        (LsockStream          *self,
                                                  int                   fd,
                                                  GCancellable         *cancellable,
                                                  GAsyncReadyCallback   callback,
                                                  gpointer              user_data);
LSOCK_AVAILABLE_IN_ALL
gboolean       lsock_stream_send_fd_finish       (LsockStream          *self,
                                                  GAsyncResult         *result,
                                                  GError              **error);
LSOCK_AVAILABLE_IN_ALL
int            lsock_stream_receive_fd           (LsockStream          *self,
                                                  GCancellable         *cancellable,
                                                  GError              **error);
LSOCK_AVAILABLE_IN_ALL
void           lsock_stream_receive_fd_async     (LsockStream          *self,
                                                  GCancellable         *cancellable,
                                                  GAsyncReadyCallback   callback,
                                                  gpointer              user_data);
LSOCK_AVAILABLE_IN_ALL
int            lsock_stream_receive_fd_finish    (LsockStream          *self,
                                                  GAsyncResult         *result,
                                                  GError              **error);

/* D-Bus peer to peer */
LSOCK_AVAILABLE_IN_ALL
GDBusConnection *lsock_stream_new_dbus_connection (LsockStream         *self,
                                                  const char           *guid,
                                                  GDBusConnectionFlags  flags,
                                                  GDBusAuthObserver    *observer,
                                                  GCancellable         *cancellable,
                                                  GError              **error);
LSOCK_AVAILABLE_IN_ALL
void           lsock_stream_new_dbus_connection_async (LsockStream     *self,
                                                  const char           *guid,
                                                  GDBusConnectionFlags  flags,
                                                  GDBusAuthObserver    *observer,
                                                  GCancellable         *cancellable,
                                                  GAsyncReadyCallback   callback,
                                                  gpointer              user_data);
LSOCK_AVAILABLE_IN_ALL
GDBusConnection *lsock_stream_new_dbus_connection_finish (LsockStream  *self,
                                                  GAsyncResult         *result,
                                                  GError              **error);

G_END_DECLS
