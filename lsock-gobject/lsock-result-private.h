/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#if !defined (LSOCK_COMPILATION)
# error "private header"
#endif

#include <gio/gio.h>

G_BEGIN_DECLS

/* A GAsyncResult for operations that report without a GTask: the source
 * object, the callback's data and the source tag, nothing else. A GTask
 * costs more than the system call it reports (a GObject with a notify
 * queue, a context reference, a copied name, qdata); subclasses add their
 * outcome, and their owners recycle them once the caller has let go. */
typedef struct
{
  GObject  parent_instance;
  GObject *source_object;  /* held while in flight */
  gpointer user_data;
  gpointer source_tag;
} LsockResult;

typedef struct
{
  GObjectClass parent_class;
} LsockResultClass;

#define LSOCK_TYPE_RESULT (lsock_result_get_type ())
#define LSOCK_RESULT(o)   (G_TYPE_CHECK_INSTANCE_CAST ((o), LSOCK_TYPE_RESULT, LsockResult))

GType lsock_result_get_type (void) G_GNUC_CONST;
G_DEFINE_AUTOPTR_CLEANUP_FUNC (LsockResult, g_object_unref)

/* Whether nobody but the caller holds @result, which can then be reused */
static inline gboolean
_lsock_result_is_unshared (gpointer result)
{
  return g_atomic_int_get (&G_OBJECT (result)->ref_count) == 1;
}

G_END_DECLS
