/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#if !defined (LSOCK_COMPILATION)
# error "private header"
#endif

#include "lsock-async-result.h"

G_BEGIN_DECLS

struct _LsockAsyncResult
{
  GObject              parent_instance;
  GObject             *source_object;  /* a reference, until finalized */
  gpointer             user_data;
  gpointer             source_tag;
  GAsyncReadyCallback  callback;       /* cleared once called */
  /* The outcome: a count, or -1 and the error */
  gssize               count;
  GError              *error;
  GBytes              *bytes;          /* what was received, for the bytes calls */
  GObject             *object;         /* what was made, for accepts */
  /* The backend's state while the operation is in flight */
  gpointer             op;
};

LsockAsyncResult *_lsock_async_result_new       (gpointer             source_object,
                                                 gpointer             source_tag,
                                                 GAsyncReadyCallback  callback,
                                                 gpointer             user_data);
/* Calls the callback (once) */
void              _lsock_async_result_complete  (LsockAsyncResult    *result);

/* Whether @result is one of ours: the type is final, so an exact match,
 * without the walk up the type tree that LSOCK_IS_ASYNC_RESULT() makes */
static inline gboolean
_lsock_is_async_result (gpointer result)
{
  return result != NULL && G_TYPE_FROM_INSTANCE (result) == LSOCK_TYPE_ASYNC_RESULT;
}

/* Whether @result is one of ours made by @source_object for @source_tag:
 * what a _finish() function checks */
static inline gboolean
_lsock_async_result_is_valid (gpointer result,
                              gpointer source_object,
                              gpointer source_tag)
{
  return _lsock_is_async_result (result) &&
         ((LsockAsyncResult *) result)->source_object == source_object &&
         ((LsockAsyncResult *) result)->source_tag == source_tag;
}
/* The count, or -1 with the error (given to the first caller only) */
gssize            _lsock_async_result_propagate (LsockAsyncResult    *result,
                                                 GError             **error);

G_END_DECLS
