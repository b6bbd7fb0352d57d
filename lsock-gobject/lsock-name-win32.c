/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <string.h>

#include "lsock-name-private.h"
#include "lsock-i18n-private.h"
#include "lsock-win32-private.h"

/* Windows: namespaced and generic names are named pipes "\\.\pipe\NAME";
 * there are no socket files (no AF_UNIX backend yet).
 *
 * A pipe name is one path component: a "\" or "/" in it would reach out of
 * the pipe namespace ("..\C:\file" is a file, "..\UNC\host\share\x"
 * another machine), since Win32 normalises "\\.\" paths. The pipe is
 * opened as "\\?\pipe\NAME", which Win32 passes on as it is. */

#define PIPE_PREFIX     "\\\\?\\pipe\\"
#define PIPE_PREFIX_LEN 9
/* The whole "\\.\pipe\NAME", in UTF-16 units */
#define PIPE_PATH_MAX   256

LsockNameTypeSupport
_lsock_name_type_support_query_impl (void)
{
  return LSOCK_NAME_TYPE_SUPPORT_ONLY_NAMESPACED;
}

gboolean
_lsock_name_check_path_impl (const char  *path,
                             GError     **error)
{
  g_autofree char *shown = g_filename_display_name (path);

  g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
               _("Cannot use the socket file “%s”: socket files are not supported on Windows; use a namespaced name such as “@name”"),
               shown);
  return FALSE;
}

gboolean
_lsock_name_check_namespaced_impl (const char  *name,
                                   GError     **error)
{
  glong n_units = 0;
  g_autofree gunichar2 *utf16 = NULL;

  utf16 = g_utf8_to_utf16 (name, -1, NULL, &n_units, NULL);
  if (utf16 == NULL)
    {
      g_autofree char *shown = _lsock_name_dup_namespaced_display (name);

      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                   _("Invalid socket name “%s”: a namespaced name must be valid UTF-8"),
                   shown);
      return FALSE;
    }

  if (strpbrk (name, "\\/") != NULL)
    {
      g_autofree char *shown = _lsock_name_dup_namespaced_display (name);

      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                   _("Invalid socket name “%s”: a pipe name must not contain “\\” or “/”"),
                   shown);
      return FALSE;
    }

  if (PIPE_PREFIX_LEN + n_units > PIPE_PATH_MAX)
    {
      g_autofree char *shown = _lsock_name_dup_namespaced_display (name);

      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                   _("Invalid socket name “%s”: a pipe name must be at most %u UTF-16 units long"),
                   shown, (guint) (PIPE_PATH_MAX - PIPE_PREFIX_LEN));
      return FALSE;
    }

  return TRUE;
}

gboolean
_lsock_name_resolve_generic_impl (const char     *name,
                                  LsockNameKind  *out_kind,
                                  char          **out_name,
                                  GError        **error)
{
  if (!_lsock_name_check_namespaced_impl (name, error))
    return FALSE;

  *out_kind = LSOCK_NAME_KIND_NAMESPACED;
  *out_name = g_strdup (name);
  return TRUE;
}

gunichar2 *
_lsock_name_dup_pipe_path_utf16 (LsockName *self)
{
  g_autofree char *path = NULL;

  g_return_val_if_fail (LSOCK_IS_NAME (self), NULL);
  g_return_val_if_fail (self->kind == LSOCK_NAME_KIND_NAMESPACED, NULL);

  path = g_strconcat (PIPE_PREFIX, self->name, NULL);
  /* Checked when the name was made */
  return g_utf8_to_utf16 (path, -1, NULL, NULL, NULL);
}

gboolean
_lsock_name_resolve_app_impl (const char  *app_id,
                              const char  *name,
                              char       **out_path,
                              GError     **error)
{
  g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
               _("Application directories (“%s”) are not supported on Windows"), app_id);
  return FALSE;
}
