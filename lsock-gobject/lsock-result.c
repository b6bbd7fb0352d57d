/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include "lsock-result-private.h"

static void lsock_result_async_result_iface_init (GAsyncResultIface *iface);

G_DEFINE_ABSTRACT_TYPE_WITH_CODE (LsockResult, lsock_result, G_TYPE_OBJECT,
                                  G_IMPLEMENT_INTERFACE (G_TYPE_ASYNC_RESULT,
                                                         lsock_result_async_result_iface_init))

static gpointer
lsock_result_get_user_data (GAsyncResult *result)
{
  return LSOCK_RESULT (result)->user_data;
}

static GObject *
lsock_result_get_source_object (GAsyncResult *result)
{
  LsockResult *self = LSOCK_RESULT (result);

  return self->source_object != NULL ? g_object_ref (self->source_object) : NULL;
}

static gboolean
lsock_result_is_tagged (GAsyncResult *result,
                        gpointer      source_tag)
{
  return LSOCK_RESULT (result)->source_tag == source_tag;
}

static void
lsock_result_async_result_iface_init (GAsyncResultIface *iface)
{
  iface->get_user_data = lsock_result_get_user_data;
  iface->get_source_object = lsock_result_get_source_object;
  iface->is_tagged = lsock_result_is_tagged;
}

static void
lsock_result_finalize (GObject *object)
{
  g_clear_object (&LSOCK_RESULT (object)->source_object);

  G_OBJECT_CLASS (lsock_result_parent_class)->finalize (object);
}

static void
lsock_result_class_init (LsockResultClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = lsock_result_finalize;
}

static void
lsock_result_init (LsockResult *self)
{
}
