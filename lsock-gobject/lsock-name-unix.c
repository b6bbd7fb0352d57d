/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "lsock-name-private.h"
#include "lsock-unix-private.h"
#include "lsock-i18n-private.h"

/* sun_path is 108 bytes on Linux and 104 on macOS and BSD. A path keeps its
 * terminating NUL (Linux would take 108 bytes without one, but nothing else
 * would, and the name must mean the same thing to every program). */
#define SUN_PATH_SIZE   (sizeof (((struct sockaddr_un *) NULL)->sun_path))
#define PATH_MAX_LEN    (SUN_PATH_SIZE - 1)
/* An abstract name is a NUL followed by the name, with no terminator */
#define ABSTRACT_MAX_LEN (SUN_PATH_SIZE - 1)

/* The directory for generic names, where there is no namespace */
#define TMP_DIR         "/tmp"

LsockNameTypeSupport
_lsock_name_type_support_query_impl (void)
{
#ifdef __linux__
  return LSOCK_NAME_TYPE_SUPPORT_BOTH;
#else
  return LSOCK_NAME_TYPE_SUPPORT_ONLY_PATHS;
#endif
}

gboolean
_lsock_name_check_path_impl (const char  *path,
                             GError     **error)
{
  gsize len = strlen (path);

  if (len == 0)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                   _("Invalid socket name “%s”: a path must not be empty"),
                   path);
      return FALSE;
    }

  if (len > PATH_MAX_LEN)
    {
      g_autofree char *shown = g_filename_display_name (path);

      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                   _("Invalid socket name “%s”: a path must be at most %u bytes long"),
                   shown, (guint) PATH_MAX_LEN);
      return FALSE;
    }

  return TRUE;
}

gboolean
_lsock_name_check_namespaced_impl (const char  *name,
                                   GError     **error)
{
#ifdef __linux__
  if (strlen (name) > ABSTRACT_MAX_LEN)
    {
      g_autofree char *shown = _lsock_name_dup_namespaced_display (name);

      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                   _("Invalid socket name “%s”: a namespaced name must be at most %u bytes long"),
                   shown, (guint) ABSTRACT_MAX_LEN);
      return FALSE;
    }

  return TRUE;
#else
  g_autofree char *shown = _lsock_name_dup_namespaced_display (name);

  g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
               _("Cannot use the namespaced socket name “%s”: this platform has no socket namespace"),
               shown);
  return FALSE;
#endif
}

gboolean
_lsock_name_resolve_generic_impl (const char     *name,
                                  LsockNameKind  *out_kind,
                                  char          **out_name,
                                  GError        **error)
{
#ifdef __linux__
  if (!_lsock_name_check_namespaced_impl (name, error))
    return FALSE;

  *out_kind = LSOCK_NAME_KIND_NAMESPACED;
  *out_name = g_strdup (name);
  return TRUE;
#else
  g_autofree char *dir = NULL;
  g_autofree char *path = NULL;

  dir = _lsock_name_ensure_private_dir (NULL, NULL, error);
  if (dir == NULL)
    return FALSE;

  path = g_build_filename (dir, name, NULL);
  if (!_lsock_name_check_path_impl (path, error))
    return FALSE;

  *out_kind = LSOCK_NAME_KIND_PATH;
  *out_name = g_steal_pointer (&path);
  return TRUE;
#endif
}

char *
_lsock_name_ensure_private_dir (const char  *runtime_dir,
                                const char  *tmp_dir,
                                GError     **error)
{
  g_autofree char *base = NULL;
  g_autofree char *dir = NULL;
  const char *why = NULL;
  int errsv = 0;

  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (runtime_dir == NULL)
    runtime_dir = g_getenv ("XDG_RUNTIME_DIR");

  /* $XDG_RUNTIME_DIR, if it is set, absolute, ours and private */
  if (runtime_dir != NULL && runtime_dir[0] != '\0')
    {
      if (g_path_is_absolute (runtime_dir) &&
          _lsock_unix_check_private_dir (runtime_dir, &why, &errsv))
        return g_strdup (runtime_dir);

      g_debug ("Not using “%s” for generic socket names: %s",
               runtime_dir,
               why != NULL ? why :
               errsv != 0 ? g_strerror (errsv) : "not an absolute path");
    }

  /* Otherwise /tmp/lsock-<euid>, which we create, or else check: it is
   * never changed, since someone else may have made it. */
  base = g_strdup_printf ("lsock-%lu", (gulong) geteuid ());
  dir = g_build_filename (tmp_dir != NULL ? tmp_dir : TMP_DIR, base, NULL);

  if (g_mkdir (dir, 0700) != 0)
    {
      errsv = errno;

      if (errsv != EEXIST)
        {
          g_autofree char *shown = g_filename_display_name (dir);

          g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errsv),
                       _("Could not create the private socket directory “%s”: %s"),
                       shown, g_strerror (errsv));
          return NULL;
        }
    }

  if (!_lsock_unix_check_private_dir (dir, &why, &errsv))
    {
      g_autofree char *shown = g_filename_display_name (dir);

      if (why == NULL)
        g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errsv),
                     _("Could not use the private socket directory “%s”: %s"),
                     shown, g_strerror (errsv));
      else
        g_set_error (error, G_IO_ERROR, G_IO_ERROR_PERMISSION_DENIED,
                     _("Refusing to use “%s” as the private socket directory: %s"),
                     shown, why);
      return NULL;
    }

  return g_steal_pointer (&dir);
}

gboolean
_lsock_name_check_private_dir (LsockName  *self,
                               GError    **error)
{
  g_autofree char *dir = NULL;
  const char *why = NULL;
  int errsv = 0;

  if (!self->in_private_dir)
    return TRUE;

  dir = g_path_get_dirname (self->name);
  if (_lsock_unix_check_private_dir (dir, &why, &errsv))
    return TRUE;

  {
    g_autofree char *shown = g_filename_display_name (dir);

    g_set_error (error, G_IO_ERROR, G_IO_ERROR_PERMISSION_DENIED,
                 _("Refusing to use “%s”: its private directory “%s” is not private any more: %s"),
                 _lsock_name_get_display (self), shown,
                 why != NULL ? why : g_strerror (errsv));
  }
  return FALSE;
}

socklen_t
_lsock_name_to_sockaddr (LsockName          *self,
                         struct sockaddr_un *addr)
{
  gsize len;

  g_return_val_if_fail (LSOCK_IS_NAME (self), 0);
  g_return_val_if_fail (addr != NULL, 0);

  len = strlen (self->name);
  memset (addr, 0, sizeof *addr);
  addr->sun_family = AF_UNIX;

  if (self->kind == LSOCK_NAME_KIND_PATH)
    {
      /* Checked when the name was made */
      g_assert (len <= PATH_MAX_LEN);
      memcpy (addr->sun_path, self->name, len + 1);
      return (socklen_t) (offsetof (struct sockaddr_un, sun_path) + len + 1);
    }

#ifdef __linux__
  /* Abstract: a NUL and exactly the name's bytes, unpadded */
  g_assert (len <= ABSTRACT_MAX_LEN);
  addr->sun_path[0] = '\0';
  memcpy (addr->sun_path + 1, self->name, len);
  return (socklen_t) (offsetof (struct sockaddr_un, sun_path) + 1 + len);
#else
  /* Namespaced names cannot be made here */
  g_return_val_if_reached (0);
#endif
}

LsockName *
_lsock_name_new_from_sockaddr (const struct sockaddr_un *addr,
                               socklen_t                 len)
{
  gsize offset = offsetof (struct sockaddr_un, sun_path);
  gsize path_len;

  if (len <= offset || addr->sun_family != AF_UNIX)
    return NULL;  /* unnamed */
  path_len = MIN ((gsize) len - offset, sizeof addr->sun_path);

  if (addr->sun_path[0] != '\0')
    {
      g_autofree char *path = g_strndup (addr->sun_path, path_len);

      return lsock_name_new_path (path, NULL);
    }

#ifdef __linux__
  /* Abstract: exactly the bytes after the NUL. One with a NUL of its own
   * (as autobind() never makes, but anyone may bind) has no LsockName. */
  if (path_len > 1 && memchr (addr->sun_path + 1, '\0', path_len - 1) == NULL)
    {
      g_autofree char *name = g_strndup (addr->sun_path + 1, path_len - 1);

      return lsock_name_new_namespaced (name, NULL);
    }
#endif
  return NULL;
}

gboolean
_lsock_name_matches_sockaddr (LsockName                *self,
                              const struct sockaddr_un *addr,
                              socklen_t                 len)
{
  struct sockaddr_un ours;
  socklen_t our_len;
  gsize offset = offsetof (struct sockaddr_un, sun_path);

  g_return_val_if_fail (LSOCK_IS_NAME (self), FALSE);

  if (len <= offset || addr->sun_family != AF_UNIX)
    return FALSE;
  our_len = _lsock_name_to_sockaddr (self, &ours);

  if (self->kind == LSOCK_NAME_KIND_NAMESPACED)
    return len == our_len && memcmp (addr->sun_path, ours.sun_path, len - offset) == 0;

  /* A path: the same string, or the same file by another spelling of it
   * (a relative name, "..", a doubled "/"); not by following links, which
   * could make two different names one */
  {
    g_autofree char *theirs = g_strndup (addr->sun_path,
                                         MIN ((gsize) len - offset, sizeof addr->sun_path));
    g_autofree char *a = NULL;
    g_autofree char *b = NULL;

    if (theirs[0] == '\0')
      return FALSE;
    if (strcmp (theirs, self->name) == 0)
      return TRUE;
    a = g_canonicalize_filename (theirs, NULL);
    b = g_canonicalize_filename (self->name, NULL);
    return strcmp (a, b) == 0;
  }
}

/* Makes @dir 0700 if it is missing, and checks it is ours and private */
static gboolean
ensure_app_dir (const char  *dir,
                GError     **error)
{
  g_autofree char *shown = g_filename_display_name (dir);
  const char *why = NULL;
  int errsv = 0;

  if (g_mkdir (dir, 0700) != 0 && errno != EEXIST)
    {
      errsv = errno;
      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errsv),
                   _("Could not make the application directory “%s”: %s"),
                   shown, g_strerror (errsv));
      return FALSE;
    }
  if (!_lsock_unix_check_private_dir (dir, &why, &errsv))
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_PERMISSION_DENIED,
                   _("Refusing to use the application directory “%s”: %s"),
                   shown, why != NULL ? why : g_strerror (errsv));
      return FALSE;
    }
  return TRUE;
}

gboolean
_lsock_name_resolve_app_impl (const char  *app_id,
                              const char  *name,
                              char       **out_path,
                              GError     **error)
{
  const char *runtime_dir = g_getenv ("XDG_RUNTIME_DIR");
  g_autofree char *apps = NULL;
  g_autofree char *dir = NULL;
  g_autofree char *path = NULL;
  const char *why = NULL;
  int errsv = 0;

  if (runtime_dir == NULL || !g_path_is_absolute (runtime_dir))
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND,
                   _("No application directory for “%s”: $XDG_RUNTIME_DIR is not set"),
                   app_id);
      return FALSE;
    }
  if (!_lsock_unix_check_private_dir (runtime_dir, &why, &errsv))
    {
      g_autofree char *shown = g_filename_display_name (runtime_dir);

      g_set_error (error, G_IO_ERROR, G_IO_ERROR_PERMISSION_DENIED,
                   _("Refusing to use $XDG_RUNTIME_DIR “%s”: %s"),
                   shown, why != NULL ? why : g_strerror (errsv));
      return FALSE;
    }

  apps = g_build_filename (runtime_dir, "app", NULL);
  dir = g_build_filename (apps, app_id, NULL);
  if (!ensure_app_dir (apps, error) || !ensure_app_dir (dir, error))
    return FALSE;

  path = g_build_filename (dir, name, NULL);
  if (!_lsock_name_check_path_impl (path, error))
    return FALSE;
  *out_path = g_steal_pointer (&path);
  return TRUE;
}
