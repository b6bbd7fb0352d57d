/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <glib/gi18n-lib.h>
/* ours, below, are the same but lazy */
#undef _
#undef N_

#include "lsock-i18n-private.h"

/* Bind the text domain lazily, the first time a message is translated, so an
 * application that never sees an error never pays for it (GLib's ggettext.c). */
static void
ensure_domain_bound (void)
{
  static gsize bound = 0;

  if (g_once_init_enter (&bound))
    {
      bindtextdomain (GETTEXT_PACKAGE, LOCALEDIR);
      /* GError messages are UTF-8 whatever the locale's charset */
      bind_textdomain_codeset (GETTEXT_PACKAGE, "UTF-8");
      g_once_init_leave (&bound, 1);
    }
}

const char *
_lsock_gettext (const char *msgid)
{
  ensure_domain_bound ();
  return g_dgettext (GETTEXT_PACKAGE, msgid);
}
