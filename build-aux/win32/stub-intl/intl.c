/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* See libintl.h: a do-nothing gettext for the cross-build sysroot. */
#include "libintl.h"

static char *current_domain = "messages";

char *
gettext (const char *msgid)
{
  return (char *) msgid;
}

char *
dgettext (const char *domain, const char *msgid)
{
  return (char *) msgid;
}

char *
dcgettext (const char *domain, const char *msgid, int category)
{
  return (char *) msgid;
}

char *
ngettext (const char *msgid, const char *msgid_plural, unsigned long n)
{
  return (char *) (n == 1 ? msgid : msgid_plural);
}

char *
dngettext (const char *domain, const char *msgid, const char *msgid_plural, unsigned long n)
{
  return (char *) (n == 1 ? msgid : msgid_plural);
}

char *
dcngettext (const char *domain, const char *msgid, const char *msgid_plural, unsigned long n, int category)
{
  return (char *) (n == 1 ? msgid : msgid_plural);
}

char *
textdomain (const char *domain)
{
  if (domain != 0)
    current_domain = (char *) domain;
  return current_domain;
}

char *
bindtextdomain (const char *domain, const char *dirname)
{
  return (char *) dirname;
}

char *
bind_textdomain_codeset (const char *domain, const char *codeset)
{
  return (char *) codeset;
}
