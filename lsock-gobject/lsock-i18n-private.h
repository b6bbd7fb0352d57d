/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#if !defined (LSOCK_COMPILATION)
# error "private header"
#endif

#include <glib.h>

G_BEGIN_DECLS

const char *_lsock_gettext (const char *msgid) G_GNUC_FORMAT (1);

#define _(String) _lsock_gettext (String)
#define N_(String) (String)

G_END_DECLS
