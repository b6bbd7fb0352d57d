/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#if !defined (LSOCK_INSIDE) && !defined (LSOCK_COMPILATION)
# error "Only <lsock-gobject/lsock.h> can be included directly."
#endif

#include <gio/gio.h>
#include <lsock-gobject/lsock-types.h>

G_BEGIN_DECLS

#define LSOCK_TYPE_ASYNC_RESULT (lsock_async_result_get_type ())
LSOCK_AVAILABLE_IN_ALL
G_DECLARE_FINAL_TYPE (LsockAsyncResult, lsock_async_result, LSOCK, ASYNC_RESULT, GObject)

G_END_DECLS
