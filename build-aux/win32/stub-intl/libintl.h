/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A stub libintl for the Windows cross-build sysroot (build-aux/win32):
 * every call returns the message id (or the plural form when n != 1).
 * GLib only needs the symbols; lsock-gobject's tests run untranslated. */
#pragma once

#include <locale.h>

#ifndef LC_MESSAGES
# define LC_MESSAGES 1729
#endif

#ifdef __cplusplus
extern "C" {
#endif

char *gettext (const char *msgid) __attribute__ ((format_arg (1)));
char *dgettext (const char *domain, const char *msgid) __attribute__ ((format_arg (2)));
char *dcgettext (const char *domain, const char *msgid, int category) __attribute__ ((format_arg (2)));
char *ngettext (const char *msgid, const char *msgid_plural, unsigned long n)
  __attribute__ ((format_arg (1))) __attribute__ ((format_arg (2)));
char *dngettext (const char *domain, const char *msgid, const char *msgid_plural, unsigned long n)
  __attribute__ ((format_arg (2))) __attribute__ ((format_arg (3)));
char *dcngettext (const char *domain, const char *msgid, const char *msgid_plural, unsigned long n, int category)
  __attribute__ ((format_arg (2))) __attribute__ ((format_arg (3)));
char *textdomain (const char *domain);
char *bindtextdomain (const char *domain, const char *dirname);
char *bind_textdomain_codeset (const char *domain, const char *codeset);

#ifdef __cplusplus
}
#endif
