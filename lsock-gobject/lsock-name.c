/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <string.h>

#include "lsock-name-private.h"
#include "lsock-enum-types.h"
#include "lsock-i18n-private.h"

/**
 * LsockName:
 *
 * The name of a local socket: what a [class@Lsock.Listener] listens on and
 * what [func@Lsock.Stream.connect] connects to.
 *
 * A name is one of two kinds ([enum@Lsock.NameKind]):
 *
 * - a *path*: a socket file in the file system, such as `/run/user/1000/foo`
 *   or `./foo`;
 * - a *namespaced* name: a name in a namespace that has no files, the Linux
 *   abstract socket namespace (`\0foo`, unpadded, the same name as socat's
 *   `ABSTRACT-CONNECT:foo`) or `\\.\pipe\foo` on Windows.
 *
 * A *generic* name, made with [ctor@Lsock.Name.new_generic], becomes the
 * best kind this platform offers when the name is made: a namespaced name on
 * Linux and Windows, and a socket file in a private per-user directory
 * elsewhere. [method@Lsock.Name.get_kind] tells which kind it became.
 *
 * [ctor@Lsock.Name.parse] understands one syntax everywhere:
 *
 * | string | kind |
 * | --- | --- |
 * | <code>&#64;foo</code> | namespaced `foo` |
 * | `\\.\pipe\foo` | namespaced `foo` |
 * | contains `/`, or starts with `.` | path |
 * | anything else, such as `foo` | generic |
 *
 * and [method@Lsock.Name.to_string] gives a string in that syntax that
 * parses back to an equal name.
 *
 * Names are checked when they are made and never truncated: an empty name,
 * a path too long for `sun_path` with its terminating NUL, or a namespaced
 * name that is too long or not valid UTF-8 is rejected with
 * %G_IO_ERROR_INVALID_ARGUMENT. A kind of name that this platform lacks
 * gives %G_IO_ERROR_NOT_SUPPORTED; [func@Lsock.NameTypeSupport.query]
 * tells which kinds work.
 *
 * An `LsockName` is immutable, so it can be shared between threads.
 *
 * Since: 1.0
 */

G_DEFINE_FINAL_TYPE (LsockName, lsock_name, G_TYPE_OBJECT)

enum {
  PROP_0,
  PROP_KIND,
  PROP_NAME,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

/* The "\\.\pipe\" prefix of Windows pipe names */
#define PIPE_PREFIX     "\\\\.\\pipe\\"
#define PIPE_PREFIX_LEN (sizeof (PIPE_PREFIX) - 1)

typedef enum
{
  SYNTAX_NAMESPACED_AT,
  SYNTAX_NAMESPACED_PIPE,
  SYNTAX_PATH,
  SYNTAX_GENERIC,
} Syntax;

static gboolean
looks_like_path (const char *string)
{
  if (string[0] == '.')
    return TRUE;
  for (const char *p = string; *p != '\0'; p++)
    {
      if (G_IS_DIR_SEPARATOR (*p))
        return TRUE;
    }
#ifdef G_OS_WIN32
  if (g_ascii_isalpha (string[0]) && string[1] == ':')
    return TRUE;
#endif
  return FALSE;
}

/* How lsock_name_parse() reads @string */
static Syntax
classify (const char *string)
{
  if (string[0] == '@')
    return SYNTAX_NAMESPACED_AT;
  if (g_ascii_strncasecmp (string, PIPE_PREFIX, PIPE_PREFIX_LEN) == 0)
    return SYNTAX_NAMESPACED_PIPE;
  if (looks_like_path (string))
    return SYNTAX_PATH;
  return SYNTAX_GENERIC;
}

/* "./foo", ".//foo" and "././foo" name the same file as "foo"; dropping the
 * leading "./" lets lsock_name_to_string() add one where it is needed and
 * lsock_name_parse() map the result back to an equal name. */
static const char *
skip_dot_slash (const char *path)
{
  const char *p = path;

  while (p[0] == '.' && G_IS_DIR_SEPARATOR (p[1]))
    {
      p += 2;
      while (G_IS_DIR_SEPARATOR (*p))
        p++;
    }

  /* "./" itself stays as it is */
  return *p != '\0' ? p : path;
}

/* @string with each byte that is not part of valid UTF-8 as \xNN, and
 * backslashes doubled so that the two cannot be confused; NULL if it is
 * valid UTF-8 */
static char *
escape_invalid_utf8 (const char *string)
{
  const char *p = string;
  const char *end;
  GString *s;

  if (g_utf8_validate (string, -1, NULL))
    return NULL;

  s = g_string_new (NULL);
  while (*p != '\0')
    {
      if (g_utf8_validate (p, -1, &end))
        end = p + strlen (p);
      for (const char *q = p; q < end; q++)
        {
          if (*q == '\\')
            g_string_append_c (s, '\\');
          g_string_append_c (s, *q);
        }
      p = end;
      if (*p != '\0')
        g_string_append_printf (s, "\\x%02x", (guchar) *p++);
    }
  return g_string_free (s, FALSE);
}

static LsockName *
lsock_name_new_take (LsockNameKind  kind,
                     char          *name)
{
  LsockName *self = g_object_new (LSOCK_TYPE_NAME, NULL);

  self->kind = kind;
  self->name = name;

  if (kind == LSOCK_NAME_KIND_NAMESPACED)
    self->display = g_strconcat ("@", name, NULL);
  else if (classify (name) != SYNTAX_PATH)
    self->display = g_strconcat ("." G_DIR_SEPARATOR_S, name, NULL);
  else
    self->display = g_strdup (name);
  self->shown = escape_invalid_utf8 (self->display);

  return self;
}

static void
lsock_name_finalize (GObject *object)
{
  LsockName *self = LSOCK_NAME (object);

  g_clear_pointer (&self->name, g_free);
  g_clear_pointer (&self->display, g_free);
  g_clear_pointer (&self->shown, g_free);

  G_OBJECT_CLASS (lsock_name_parent_class)->finalize (object);
}

static void
lsock_name_get_property (GObject    *object,
                         guint       prop_id,
                         GValue     *value,
                         GParamSpec *pspec)
{
  LsockName *self = LSOCK_NAME (object);

  switch (prop_id)
    {
    case PROP_KIND:
      g_value_set_enum (value, self->kind);
      break;

    case PROP_NAME:
      if (g_utf8_validate (self->name, -1, NULL))
        g_value_set_string (value, self->name);
      else
        g_value_take_string (value, g_utf8_make_valid (self->name, -1));
      break;

    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
lsock_name_class_init (LsockNameClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->finalize = lsock_name_finalize;
  object_class->get_property = lsock_name_get_property;

  /**
   * LsockName:kind:
   *
   * The kind of the name. A generic name has the kind it became when it
   * was made.
   *
   * Since: 1.0
   */
  properties[PROP_KIND] =
    g_param_spec_enum ("kind", NULL, NULL,
                       LSOCK_TYPE_NAME_KIND,
                       LSOCK_NAME_KIND_PATH,
                       (G_PARAM_READABLE |
                        G_PARAM_EXPLICIT_NOTIFY |
                        G_PARAM_STATIC_STRINGS));

  /**
   * LsockName:name:
   *
   * The path of a path name, or a namespaced name without its leading
   * at sign, as UTF-8. A path need not be UTF-8: then its bytes that are
   * not are replaced here by U+FFFD, so that bindings can always read the
   * property. [method@Lsock.Name.get_name] gives the exact bytes (a file
   * name in bindings: in Python a `str` that round-trips them, as
   * `os.fsdecode()` does).
   *
   * Since: 1.0
   */
  properties[PROP_NAME] =
    g_param_spec_string ("name", NULL, NULL,
                         NULL,
                         (G_PARAM_READABLE |
                          G_PARAM_EXPLICIT_NOTIFY |
                          G_PARAM_STATIC_STRINGS));

  g_object_class_install_properties (object_class, N_PROPS, properties);
}

static void
lsock_name_init (LsockName *self)
{
  self->kind = LSOCK_NAME_KIND_PATH;
}

/**
 * lsock_name_type_support_query:
 *
 * Tells which kinds of [class@Lsock.Name] work on this platform: both on
 * Linux, only paths on macOS and BSD, only namespaced names on Windows.
 *
 * Generic names ([ctor@Lsock.Name.new_generic]) work everywhere.
 *
 * Returns: the kinds of names this platform supports
 *
 * Since: 1.0
 */
LsockNameTypeSupport
lsock_name_type_support_query (void)
{
  return _lsock_name_type_support_query_impl ();
}

/**
 * lsock_name_new_path:
 * @path: (type filename): the path of the socket file
 * @error: return location for a [struct@GLib.Error]
 *
 * Makes a name for the socket file at @path, which may be absolute or
 * relative to the current directory when it is used.
 *
 * The path must not be empty and must fit `sun_path` with its terminating
 * NUL: at most 107 bytes on Linux, 103 on macOS and BSD. A longer path is
 * rejected with %G_IO_ERROR_INVALID_ARGUMENT, never truncated. Where socket
 * files are not supported (Windows), this fails with
 * %G_IO_ERROR_NOT_SUPPORTED.
 *
 * A leading `./` is dropped, since `./foo` and `foo` name the same file.
 *
 * Returns: (transfer full): a new name, or %NULL on error
 *
 * Since: 1.0
 */
LsockName *
lsock_name_new_path (const char  *path,
                     GError     **error)
{
  const char *normalized;

  g_return_val_if_fail (path != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (path[0] == '\0')
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                   _("Invalid socket name “%s”: a path must not be empty"),
                   path);
      return NULL;
    }

  normalized = skip_dot_slash (path);
  if (!_lsock_name_check_path_impl (normalized, error))
    return NULL;

  return lsock_name_new_take (LSOCK_NAME_KIND_PATH, g_strdup (normalized));
}

/* For an error message about a string that is not valid UTF-8 */
static char *
dup_for_display (const char *string)
{
  return g_utf8_make_valid (string, -1);
}

char *
_lsock_name_dup_namespaced_display (const char *name)
{
  g_autofree char *valid = dup_for_display (name);

  return g_strconcat ("@", valid, NULL);
}

/**
 * lsock_name_new_namespaced:
 * @name: the name, without `@` or `\\.\pipe\`
 * @error: return location for a [struct@GLib.Error]
 *
 * Makes a name in the namespace that has no files: the Linux abstract
 * socket namespace, or `\\.\pipe\` on Windows.
 *
 * @name is taken literally: a leading `@` is part of the name. The name must
 * not be empty, must be valid UTF-8 and must not be longer than 107 bytes on
 * Linux (the abstract address is `\0` followed by exactly these bytes,
 * unpadded), or give a full `\\.\pipe\NAME` of more than 256 UTF-16 units on
 * Windows; otherwise this fails with %G_IO_ERROR_INVALID_ARGUMENT. Where
 * there is no such namespace (macOS, BSD), this fails with
 * %G_IO_ERROR_NOT_SUPPORTED.
 *
 * Returns: (transfer full): a new name, or %NULL on error
 *
 * Since: 1.0
 */
LsockName *
lsock_name_new_namespaced (const char  *name,
                           GError     **error)
{
  g_return_val_if_fail (name != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (name[0] == '\0')
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                   _("Invalid socket name “%s”: a namespaced name must not be empty"),
                   name);
      return NULL;
    }

  if (!g_utf8_validate (name, -1, NULL))
    {
      g_autofree char *shown = _lsock_name_dup_namespaced_display (name);

      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                   _("Invalid socket name “%s”: a namespaced name must be valid UTF-8"),
                   shown);
      return NULL;
    }

  if (!_lsock_name_check_namespaced_impl (name, error))
    return NULL;

  return lsock_name_new_take (LSOCK_NAME_KIND_NAMESPACED, g_strdup (name));
}

/* A generic name, or an app name's last part: one file name component */
static gboolean
check_component (const char  *name,
                 GError     **error)
{
  if (name[0] == '\0')
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                   _("Invalid socket name “%s”: a generic name must not be empty"),
                   name);
      return FALSE;
    }

  if (!g_utf8_validate (name, -1, NULL))
    {
      g_autofree char *shown = dup_for_display (name);

      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                   _("Invalid socket name “%s”: a generic name must be valid UTF-8"),
                   shown);
      return FALSE;
    }

  if (strchr (name, '/') != NULL)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                   _("Invalid socket name “%s”: a generic name must not contain “/”"),
                   name);
      return FALSE;
    }

  if (strcmp (name, ".") == 0 || strcmp (name, "..") == 0)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                   _("Invalid socket name “%s”: a generic name must not be “.” or “..”"),
                   name);
      return FALSE;
    }

  return TRUE;
}

/**
 * lsock_name_new_generic:
 * @name: a name without `/`
 * @error: return location for a [struct@GLib.Error]
 *
 * Makes a name that works on every platform, in the best place this platform
 * offers: on Linux and Windows the namespaced name @name, as
 * [ctor@Lsock.Name.new_namespaced] makes it; on macOS and BSD the socket
 * file @name in a private per-user directory, `$XDG_RUNTIME_DIR` if that
 * directory is ours and accessible to nobody else, otherwise
 * `/tmp/lsock-UID`, which is created with mode 0700 if it is missing.
 *
 * The name is resolved now; [method@Lsock.Name.get_kind] tells which kind it
 * became.
 *
 * @name must not be empty, must be valid UTF-8, must not contain `/` and
 * must not be `.` or `..`; otherwise this fails with
 * %G_IO_ERROR_INVALID_ARGUMENT. If the private directory is not safe to use
 * (another user owns it, others may access it, or it is a symbolic link),
 * this fails with %G_IO_ERROR_PERMISSION_DENIED.
 *
 * Returns: (transfer full): a new name, or %NULL on error
 *
 * Since: 1.0
 */
LsockName *
lsock_name_new_generic (const char  *name,
                        GError     **error)
{
  LsockName *self;
  LsockNameKind kind;
  char *resolved = NULL;

  g_return_val_if_fail (name != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (!check_component (name, error))
    return NULL;

  if (!_lsock_name_resolve_generic_impl (name, &kind, &resolved, error))
    return NULL;

  self = lsock_name_new_take (kind, resolved);
  /* A path in the private directory: checked again when used */
  self->in_private_dir = kind == LSOCK_NAME_KIND_PATH;
  return self;
}

/**
 * lsock_name_new_for_app:
 * @app_id: an application id, such as `org.example.App` (see
 *   g_application_id_is_valid())
 * @name: the socket's name in the application's directory: one file name
 *   component, as for [ctor@Lsock.Name.new_generic]
 * @error: return location for a #GError
 *
 * Makes the name of a socket file in the per-application directory
 * `$XDG_RUNTIME_DIR/app/APP_ID/`, the one place that both a service on the
 * host and a Flatpak sandbox of that application can reach: Flatpak
 * shares exactly that directory with the app, at the same path, and a
 * socket file there works across network namespaces, unlike a generic or
 * namespaced name, which on Linux is an abstract socket and exists only in
 * its own network namespace (a sandbox without `--share=network`, a
 * container, a unit with `PrivateNetwork=`).
 *
 * The directories are created 0700 if they are missing, and must be real
 * directories of this user's that nobody else can access, as for the
 * private directory of generic names; they are checked again whenever a
 * listener binds or a client connects. Fails with
 * %G_IO_ERROR_INVALID_ARGUMENT for an invalid @app_id or @name,
 * %G_IO_ERROR_NOT_FOUND when `$XDG_RUNTIME_DIR` is not set,
 * %G_IO_ERROR_PERMISSION_DENIED when a directory is not safe to use, and
 * %G_IO_ERROR_NOT_SUPPORTED on Windows.
 *
 * Returns: (transfer full): a new path name, or %NULL on error
 *
 * Since: 1.0
 */
LsockName *
lsock_name_new_for_app (const char  *app_id,
                        const char  *name,
                        GError     **error)
{
  LsockName *self;
  char *path = NULL;

  g_return_val_if_fail (app_id != NULL, NULL);
  g_return_val_if_fail (name != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (!g_application_id_is_valid (app_id))
    {
      g_autofree char *shown = dup_for_display (app_id);

      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                   _("Invalid application id “%s” (see g_application_id_is_valid())"),
                   shown);
      return NULL;
    }
  if (!check_component (name, error))
    return NULL;
  if (!_lsock_name_resolve_app_impl (app_id, name, &path, error))
    return NULL;

  self = lsock_name_new_take (LSOCK_NAME_KIND_PATH, path);
  /* Checked again when used, like the private directory */
  self->in_private_dir = TRUE;
  return self;
}

#ifndef G_OS_WIN32
LsockName *
_lsock_name_new_private_path_for_testing (const char *path)
{
  LsockName *self = lsock_name_new_take (LSOCK_NAME_KIND_PATH, g_strdup (path));

  self->in_private_dir = TRUE;
  return self;
}
#endif

/**
 * lsock_name_parse: (constructor)
 * @string: (type filename): a name in the syntax shared by every lsock
 *   program
 * @error: return location for a [struct@GLib.Error]
 *
 * Reads a name written the way users write it, in the `lsock` tool and
 * elsewhere:
 *
 * - <code>&#64;foo</code> is the namespaced name `foo`, as
 *   [ctor@Lsock.Name.new_namespaced] makes it;
 * - `\\.\pipe\foo` is also the namespaced name `foo`;
 * - a string that contains `/` (on Windows also `\` or a drive letter such
 *   as `C:`) or starts with `.` is a path, as [ctor@Lsock.Name.new_path]
 *   makes it;
 * - anything else, such as `foo`, is a generic name, as
 *   [ctor@Lsock.Name.new_generic] makes it.
 *
 * The string that [method@Lsock.Name.to_string] returns parses back to an
 * equal name.
 *
 * Returns: (transfer full): a new name, or %NULL on error
 *
 * Since: 1.0
 */
LsockName *
lsock_name_parse (const char  *string,
                  GError     **error)
{
  const char *rest = NULL;

  g_return_val_if_fail (string != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (string[0] == '\0')
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                   _("Invalid socket name “%s”: a name must not be empty"),
                   string);
      return NULL;
    }

  switch (classify (string))
    {
    case SYNTAX_NAMESPACED_AT:
      rest = string + 1;
      break;

    case SYNTAX_NAMESPACED_PIPE:
      rest = string + PIPE_PREFIX_LEN;
      break;

    case SYNTAX_PATH:
      return lsock_name_new_path (string, error);

    case SYNTAX_GENERIC:
    default:
      return lsock_name_new_generic (string, error);
    }

  if (rest[0] == '\0')
    {
      g_autofree char *shown = dup_for_display (string);

      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                   _("Invalid socket name “%s”: a namespaced name must not be empty"),
                   shown);
      return NULL;
    }

  return lsock_name_new_namespaced (rest, error);
}

/**
 * lsock_name_get_kind:
 * @self: a name
 *
 * Gets the kind of @self. A generic name has the kind it became when it was
 * made.
 *
 * Returns: the kind of the name
 *
 * Since: 1.0
 */
LsockNameKind
lsock_name_get_kind (LsockName *self)
{
  g_return_val_if_fail (LSOCK_IS_NAME (self), LSOCK_NAME_KIND_PATH);

  return self->kind;
}

/**
 * lsock_name_get_name:
 * @self: a name
 *
 * Gets the path of a path name, or a namespaced name without its `@`.
 *
 * Returns: (type filename) (transfer none): the name
 *
 * Since: 1.0
 */
const char *
lsock_name_get_name (LsockName *self)
{
  g_return_val_if_fail (LSOCK_IS_NAME (self), NULL);

  return self->name;
}

/**
 * lsock_name_to_string:
 * @self: a name
 *
 * Writes @self in the syntax that [ctor@Lsock.Name.parse] reads:
 * <code>&#64;foo</code> for a namespaced name, and the path for a path name,
 * with `./` in front of a relative path that would not otherwise read as a
 * path (`./foo` for the path `foo`). [ctor@Lsock.Name.parse] maps the result
 * back to an equal name.
 *
 * Returns: (type filename) (transfer full): the name as a string
 *
 * Since: 1.0
 */
char *
lsock_name_to_string (LsockName *self)
{
  g_return_val_if_fail (LSOCK_IS_NAME (self), NULL);

  return g_strdup (self->display);
}

const char *
_lsock_name_get_display (LsockName *self)
{
  /* A socket adopted by descriptor may have no name (a socketpair) */
  if (self == NULL)
    return _("(unnamed)");
  g_return_val_if_fail (LSOCK_IS_NAME (self), NULL);

  return self->shown != NULL ? self->shown : self->display;
}

/**
 * lsock_name_equal:
 * @a: a name
 * @b: another name
 *
 * Compares two names: they are equal when they have the same kind and the
 * same bytes. No file system lookup is made, so two different paths to the
 * same file are different names.
 *
 * Returns: %TRUE if @a and @b are equal
 *
 * Since: 1.0
 */
gboolean
lsock_name_equal (LsockName *a,
                  LsockName *b)
{
  g_return_val_if_fail (LSOCK_IS_NAME (a), FALSE);
  g_return_val_if_fail (LSOCK_IS_NAME (b), FALSE);

  if (a == b)
    return TRUE;

  return a->kind == b->kind && g_strcmp0 (a->name, b->name) == 0;
}

/**
 * lsock_name_hash:
 * @self: a name
 *
 * Computes a hash of @self for a [struct@GLib.HashTable]; equal names (see
 * [method@Lsock.Name.equal]) have the same hash.
 *
 * Returns: the hash
 *
 * Since: 1.0
 */
guint
lsock_name_hash (LsockName *self)
{
  guint hash;

  g_return_val_if_fail (LSOCK_IS_NAME (self), 0);

  hash = self->name != NULL ? g_str_hash (self->name) : 0;
  return hash * 31 + (guint) self->kind;
}
