/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Built by build-aux/install-check.sh against an installed lsock-gobject,
 * through pkg-config only, to prove the installed headers and library work. */

#include <stdio.h>
#include <stdlib.h>

#include <lsock-gobject/lsock.h>

int
main (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(LsockName) name = NULL;
  g_autofree char *str = NULL;
  LsockNameTypeSupport support;

#if !LSOCK_CHECK_VERSION (1, 0, 0)
# error "LSOCK_CHECK_VERSION (1, 0, 0) failed"
#endif

  support = lsock_name_type_support_query ();
  if (support != LSOCK_NAME_TYPE_SUPPORT_ONLY_PATHS &&
      support != LSOCK_NAME_TYPE_SUPPORT_ONLY_NAMESPACED &&
      support != LSOCK_NAME_TYPE_SUPPORT_BOTH)
    {
      fprintf (stderr, "install-check: bad lsock_name_type_support_query () result %d\n",
               (int) support);
      return EXIT_FAILURE;
    }

  name = lsock_name_parse ("@x", &error);
  if (name == NULL)
    {
      /* Namespaced names are unsupported on macOS/BSD; that is a valid answer. */
      if (support == LSOCK_NAME_TYPE_SUPPORT_ONLY_PATHS &&
          g_error_matches (error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED))
        {
          printf ("lsock-gobject %s: @x not supported here (only paths)\n", LSOCK_VERSION_S);
          return EXIT_SUCCESS;
        }
      fprintf (stderr, "install-check: lsock_name_parse (\"@x\") failed: %s\n",
               error->message);
      return EXIT_FAILURE;
    }

  if (lsock_name_get_kind (name) != LSOCK_NAME_KIND_NAMESPACED)
    {
      fprintf (stderr, "install-check: \"@x\" did not parse as a namespaced name\n");
      return EXIT_FAILURE;
    }

  str = lsock_name_to_string (name);
  printf ("lsock-gobject %s: parsed \"@x\" as \"%s\" (%s)\n",
          LSOCK_VERSION_S, str,
          g_type_name (G_TYPE_FROM_INSTANCE (name)));
  return EXIT_SUCCESS;
}
