/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include "lsock-async-result-private.h"

/**
 * LsockAsyncResult:
 *
 * The [iface@Gio.AsyncResult] with which lsock reports accepts
 * ([method@Lsock.Listener.accept_async]), and reads and writes on an
 * [class@Lsock.Stream] and its input and output streams (on Unix). It is
 * lighter than a [class@Gio.Task] and has no API of its own: pass it to the
 * matching `_finish()` function, such as
 * [method@Lsock.Listener.accept_finish] or
 * [method@Gio.InputStream.read_finish].
 *
 * Like a [class@Gio.Task], every operation gets a new one, which keeps its
 * source object and user data until it is finalized, whatever the caller
 * keeps it for.
 *
 * Since: 1.0
 */

static void lsock_async_result_iface_init (GAsyncResultIface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE (LsockAsyncResult, lsock_async_result, G_TYPE_OBJECT,
                               G_IMPLEMENT_INTERFACE (G_TYPE_ASYNC_RESULT,
                                                      lsock_async_result_iface_init))

static gpointer
lsock_async_result_get_user_data (GAsyncResult *result)
{
  return LSOCK_ASYNC_RESULT (result)->user_data;
}

static GObject *
lsock_async_result_get_source_object (GAsyncResult *result)
{
  LsockAsyncResult *self = LSOCK_ASYNC_RESULT (result);

  return self->source_object != NULL ? g_object_ref (self->source_object) : NULL;
}

static gboolean
lsock_async_result_is_tagged (GAsyncResult *result,
                              gpointer      source_tag)
{
  return LSOCK_ASYNC_RESULT (result)->source_tag == source_tag;
}

static void
lsock_async_result_iface_init (GAsyncResultIface *iface)
{
  iface->get_user_data = lsock_async_result_get_user_data;
  iface->get_source_object = lsock_async_result_get_source_object;
  iface->is_tagged = lsock_async_result_is_tagged;
}

static void
lsock_async_result_finalize (GObject *object)
{
  LsockAsyncResult *self = (LsockAsyncResult *) object;

  g_assert (self->op == NULL);
  g_clear_object (&self->source_object);
  g_clear_error (&self->error);
  g_clear_pointer (&self->bytes, g_bytes_unref);
  g_clear_object (&self->object);

  G_OBJECT_CLASS (lsock_async_result_parent_class)->finalize (object);
}

static void
lsock_async_result_class_init (LsockAsyncResultClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = lsock_async_result_finalize;
}

static void
lsock_async_result_init (LsockAsyncResult *self)
{
}

LsockAsyncResult *
_lsock_async_result_new (gpointer            source_object,
                         gpointer            source_tag,
                         GAsyncReadyCallback callback,
                         gpointer            user_data)
{
  LsockAsyncResult *self = g_object_new (LSOCK_TYPE_ASYNC_RESULT, NULL);

  self->source_object = source_object != NULL ? g_object_ref (source_object) : NULL;
  self->source_tag = source_tag;
  self->callback = callback;
  self->user_data = user_data;
  return self;
}

void
_lsock_async_result_complete (LsockAsyncResult *self)
{
  GAsyncReadyCallback callback = g_steal_pointer (&self->callback);

  if (callback != NULL)
    callback (self->source_object, (GAsyncResult *) self, self->user_data);
}

gssize
_lsock_async_result_propagate (LsockAsyncResult  *self,
                               GError           **error)
{
  if (self->count >= 0)
    return self->count;
  /* The error goes to the first caller, as with a GTask */
  g_return_val_if_fail (self->error != NULL, -1);
  g_propagate_error (error, g_steal_pointer (&self->error));
  return -1;
}
