/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#if !defined (LSOCK_INSIDE) && !defined (LSOCK_COMPILATION)
# error "Only <lsock-gobject/lsock.h> can be included directly."
#endif

#include <gio/gio.h>
#include <lsock-gobject/lsock-types.h>

G_BEGIN_DECLS

#define LSOCK_TYPE_NAME (lsock_name_get_type ())
LSOCK_AVAILABLE_IN_ALL
G_DECLARE_FINAL_TYPE (LsockName, lsock_name, LSOCK, NAME, GObject)

LSOCK_AVAILABLE_IN_ALL
LsockNameTypeSupport lsock_name_type_support_query (void);

LSOCK_AVAILABLE_IN_ALL
LsockName     *lsock_name_new_path        (const char   *path,
                                           GError      **error);
LSOCK_AVAILABLE_IN_ALL
LsockName     *lsock_name_new_namespaced  (const char   *name,
                                           GError      **error);
LSOCK_AVAILABLE_IN_ALL
LsockName     *lsock_name_new_generic     (const char   *name,
                                           GError      **error);
LSOCK_AVAILABLE_IN_ALL
LsockName     *lsock_name_new_for_app     (const char   *app_id,
                                           const char   *name,
                                           GError      **error);
LSOCK_AVAILABLE_IN_ALL
LsockName     *lsock_name_parse           (const char   *string,
                                           GError      **error);

LSOCK_AVAILABLE_IN_ALL
LsockNameKind  lsock_name_get_kind        (LsockName    *self);
LSOCK_AVAILABLE_IN_ALL
const char    *lsock_name_get_name        (LsockName    *self);
LSOCK_AVAILABLE_IN_ALL
char          *lsock_name_to_string       (LsockName    *self);

LSOCK_AVAILABLE_IN_ALL
gboolean       lsock_name_equal           (LsockName    *a,
                                           LsockName    *b);
LSOCK_AVAILABLE_IN_ALL
guint          lsock_name_hash            (LsockName    *self);

G_END_DECLS
