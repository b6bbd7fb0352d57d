/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <stddef.h>
#include <string.h>

#include <glib/gstdio.h>

#include "lsock-test-util.h"
#include "lsock-name-private.h"

#ifndef G_OS_WIN32
# include <sys/stat.h>
# include <unistd.h>
#endif

/* The longest names that fit: 107 bytes on Linux */
#ifndef G_OS_WIN32
# define SUN_PATH_SIZE (sizeof (((struct sockaddr_un *) NULL)->sun_path))
#else
# define SUN_PATH_SIZE 108
#endif

/* The longest namespaced name: 107 bytes on Linux; on Windows the whole
 * "\\.\pipe\NAME" may have 256 UTF-16 units */
#ifndef G_OS_WIN32
# define NAMESPACED_MAX (SUN_PATH_SIZE - 1)
#else
# define NAMESPACED_MAX (256 - 9)
#endif

static gboolean
have_namespaced (void)
{
  return lsock_name_type_support_query () != LSOCK_NAME_TYPE_SUPPORT_ONLY_PATHS;
}

static gboolean
have_paths (void)
{
  return lsock_name_type_support_query () != LSOCK_NAME_TYPE_SUPPORT_ONLY_NAMESPACED;
}

/* An absolute path of exactly @len bytes */
static char *
make_path_of_length (gsize len)
{
  char *path = g_malloc (len + 1);

  memset (path, 'p', len);
  path[0] = '/';
  path[len] = '\0';
  return path;
}

static char *
make_name_of_length (gsize len)
{
  char *name = g_malloc (len + 1);

  memset (name, 'n', len);
  name[len] = '\0';
  return name;
}

static void
assert_message_names (const GError *error,
                      const char   *string)
{
  g_assert_nonnull (error);
  g_assert_nonnull (strstr (error->message, string));
}

static void
test_parse_namespaced (void)
{
  g_autoptr(GError) error = NULL;
  LsockName *name;

  if (!have_namespaced ())
    {
      g_test_skip ("Namespaced names are not supported on this platform");
      return;
    }

  name = lsock_name_parse ("@foo", &error);
  g_assert_no_error (error);
  g_assert_cmpint (lsock_name_get_kind (name), ==, LSOCK_NAME_KIND_NAMESPACED);
  g_assert_cmpstr (lsock_name_get_name (name), ==, "foo");
  g_assert_finalize_object (name);

  /* "@" only marks the name once */
  name = lsock_name_parse ("@@foo", &error);
  g_assert_no_error (error);
  g_assert_cmpint (lsock_name_get_kind (name), ==, LSOCK_NAME_KIND_NAMESPACED);
  g_assert_cmpstr (lsock_name_get_name (name), ==, "@foo");
  g_assert_finalize_object (name);

#ifdef G_OS_WIN32
  /* On Windows "\" and "/" would step out of the pipe namespace (see
   * tests/win32.c): refused */
  g_assert_null (lsock_name_parse ("@a/b", &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
#else
  /* Anything goes after "@", "/" included */
  name = lsock_name_parse ("@a/b", &error);
  g_assert_no_error (error);
  g_assert_cmpint (lsock_name_get_kind (name), ==, LSOCK_NAME_KIND_NAMESPACED);
  g_assert_cmpstr (lsock_name_get_name (name), ==, "a/b");
  g_assert_finalize_object (name);
#endif
}

static void
test_parse_pipe (void)
{
  g_autoptr(GError) error = NULL;
  LsockName *name;

  if (!have_namespaced ())
    {
      g_test_skip ("Namespaced names are not supported on this platform");
      return;
    }

  name = lsock_name_parse ("\\\\.\\pipe\\foo", &error);
  g_assert_no_error (error);
  g_assert_cmpint (lsock_name_get_kind (name), ==, LSOCK_NAME_KIND_NAMESPACED);
  g_assert_cmpstr (lsock_name_get_name (name), ==, "foo");
  g_assert_finalize_object (name);
}

static void
test_parse_path (void)
{
  const char *paths[] = { "/run/x", "./x", "x/y", ".x", "../x", "/" };
  g_autoptr(GError) error = NULL;

  if (!have_paths ())
    {
      g_test_skip ("Path names are not supported on this platform");
      return;
    }

  for (gsize i = 0; i < G_N_ELEMENTS (paths); i++)
    {
      LsockName *name = lsock_name_parse (paths[i], &error);

      g_assert_no_error (error);
      g_assert_cmpint (lsock_name_get_kind (name), ==, LSOCK_NAME_KIND_PATH);
      if (strcmp (paths[i], "./x") == 0)
        g_assert_cmpstr (lsock_name_get_name (name), ==, "x");
      else
        g_assert_cmpstr (lsock_name_get_name (name), ==, paths[i]);
      g_assert_finalize_object (name);
    }
}

static void
test_parse_generic (void)
{
  g_autoptr(GError) error = NULL;
  LsockName *name;
  LsockName *generic;

  name = lsock_name_parse ("foo", &error);
  g_assert_no_error (error);
  generic = lsock_name_new_generic ("foo", &error);
  g_assert_no_error (error);
  g_assert_true (lsock_name_equal (name, generic));

#ifdef __linux__
  g_assert_cmpint (lsock_name_get_kind (name), ==, LSOCK_NAME_KIND_NAMESPACED);
  g_assert_cmpstr (lsock_name_get_name (name), ==, "foo");
#endif

  g_assert_finalize_object (name);
  g_assert_finalize_object (generic);
}

static void
test_parse_invalid (void)
{
  const char *strings[] = { "", "@", "\\\\.\\pipe\\" };

  for (gsize i = 0; i < G_N_ELEMENTS (strings); i++)
    {
      g_autoptr(GError) error = NULL;
      LsockName *name = lsock_name_parse (strings[i], &error);

      g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
      g_assert_null (name);
      assert_message_names (error, strings[i]);
    }
}

static void
assert_round_trip (LsockName  *name,
                   const char *expected)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *string = lsock_name_to_string (name);
  LsockName *parsed;

  g_assert_cmpstr (string, ==, expected);
  g_assert_cmpstr (_lsock_name_get_display (name), ==, expected);

  parsed = lsock_name_parse (string, &error);
  g_assert_no_error (error);
  g_assert_true (lsock_name_equal (parsed, name));
  g_assert_cmpuint (lsock_name_hash (parsed), ==, lsock_name_hash (name));
  g_assert_finalize_object (parsed);
}

static void
test_to_string_path (void)
{
  struct { const char *path, *string, *name; } cases[] = {
    { "/run/x", "/run/x", "/run/x" },
    { "foo", "./foo", "foo" },
    { "./x", "./x", "x" },
    { ".//x", "./x", "x" },
    { "./.x", ".x", ".x" },
    { "x/y", "x/y", "x/y" },
    { ".x", ".x", ".x" },
    { "..", "..", ".." },
    { "./", "./", "./" },
    { "@foo", "./@foo", "@foo" },
    { "@a/b", "./@a/b", "@a/b" },
    { "\\\\.\\pipe\\x", "./\\\\.\\pipe\\x", "\\\\.\\pipe\\x" },
  };

  if (!have_paths ())
    {
      g_test_skip ("Path names are not supported on this platform");
      return;
    }

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(GError) error = NULL;
      LsockName *name = lsock_name_new_path (cases[i].path, &error);

      g_assert_no_error (error);
      g_assert_cmpstr (lsock_name_get_name (name), ==, cases[i].name);
      assert_round_trip (name, cases[i].string);
      g_assert_finalize_object (name);
    }
}

static void
test_to_string_path_long (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *bare = make_name_of_length (SUN_PATH_SIZE - 1);
  g_autofree char *expected = g_strconcat ("./", bare, NULL);
  LsockName *name;

  if (!have_paths ())
    {
      g_test_skip ("Path names are not supported on this platform");
      return;
    }

  /* The longest relative name still reads back, "./" and all */
  name = lsock_name_new_path (bare, &error);
  g_assert_no_error (error);
  assert_round_trip (name, expected);
  g_assert_finalize_object (name);
}

static void
test_to_string_namespaced (void)
{
#ifdef G_OS_WIN32
  /* No "\\" nor "/" in pipe names (see test_parse_namespaced) */
  const char *names[] = { "foo", "@foo", ".x", "..", "ünï" };
#else
  const char *names[] = { "foo", "@foo", "a/b", ".x", "\\\\.\\pipe\\x", "ünï" };
#endif

  if (!have_namespaced ())
    {
      g_test_skip ("Namespaced names are not supported on this platform");
      return;
    }

  for (gsize i = 0; i < G_N_ELEMENTS (names); i++)
    {
      g_autoptr(GError) error = NULL;
      g_autofree char *expected = g_strconcat ("@", names[i], NULL);
      LsockName *name = lsock_name_new_namespaced (names[i], &error);

      g_assert_no_error (error);
      g_assert_cmpstr (lsock_name_get_name (name), ==, names[i]);
      assert_round_trip (name, expected);
      g_assert_finalize_object (name);
    }
}

static void
test_to_string_generic (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *s = lsock_test_unique_string ("generic");
  g_autofree char *string = NULL;
  LsockName *name;

  name = lsock_name_new_generic (s, &error);
  g_assert_no_error (error);
  string = lsock_name_to_string (name);
  assert_round_trip (name, string);
#ifdef __linux__
  {
    g_autofree char *expected = g_strconcat ("@", s, NULL);
    g_assert_cmpstr (string, ==, expected);
  }
#endif
  g_assert_finalize_object (name);
}

static void
test_equal_hash (void)
{
  g_autoptr(GError) error = NULL;
  LsockName *path1, *path2, *path3, *ns1, *ns2;

  if (lsock_name_type_support_query () != LSOCK_NAME_TYPE_SUPPORT_BOTH)
    {
      g_test_skip ("Needs both kinds of names");
      return;
    }

  path1 = lsock_name_new_path ("/x", &error);
  g_assert_no_error (error);
  path2 = lsock_name_parse ("/x", &error);
  g_assert_no_error (error);
  path3 = lsock_name_new_path ("/y", &error);
  g_assert_no_error (error);
  ns1 = lsock_name_new_namespaced ("x", &error);
  g_assert_no_error (error);
  ns2 = lsock_name_parse ("@x", &error);
  g_assert_no_error (error);

  g_assert_true (lsock_name_equal (path1, path1));
  g_assert_true (lsock_name_equal (path1, path2));
  g_assert_true (lsock_name_equal (path2, path1));
  g_assert_cmpuint (lsock_name_hash (path1), ==, lsock_name_hash (path2));
  g_assert_true (lsock_name_equal (ns1, ns2));
  g_assert_cmpuint (lsock_name_hash (ns1), ==, lsock_name_hash (ns2));

  g_assert_false (lsock_name_equal (path1, path3));
  g_assert_false (lsock_name_equal (path1, ns1));
  g_assert_false (lsock_name_equal (ns1, path1));

  /* The same bytes, different kinds */
  {
    LsockName *a = lsock_name_new_path ("/x", &error);
    LsockName *b = lsock_name_new_namespaced ("/x", &error);

    g_assert_no_error (error);
    g_assert_false (lsock_name_equal (a, b));
    g_assert_finalize_object (a);
    g_assert_finalize_object (b);
  }

  /* Usable as hash table keys */
  {
    GHashTable *table = g_hash_table_new ((GHashFunc) lsock_name_hash,
                                          (GEqualFunc) lsock_name_equal);

    g_hash_table_add (table, path1);
    g_hash_table_add (table, ns1);
    g_assert_true (g_hash_table_contains (table, path2));
    g_assert_true (g_hash_table_contains (table, ns2));
    g_assert_false (g_hash_table_contains (table, path3));
    g_hash_table_unref (table);
  }

  g_assert_finalize_object (path1);
  g_assert_finalize_object (path2);
  g_assert_finalize_object (path3);
  g_assert_finalize_object (ns1);
  g_assert_finalize_object (ns2);
}

static void
test_invalid_empty (void)
{
  g_autoptr(GError) error = NULL;

  g_assert_null (lsock_name_new_path ("", &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);

  g_assert_null (lsock_name_new_namespaced ("", &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);

  g_assert_null (lsock_name_new_generic ("", &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);

  g_assert_null (lsock_name_parse ("", &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);

  g_assert_null (lsock_name_parse ("@", &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
  assert_message_names (error, "“@”");
}

static void
test_invalid_generic (void)
{
  const char *names[] = { "a/b", "/abs", ".", "..", "\xff\xfe" };

  for (gsize i = 0; i < G_N_ELEMENTS (names); i++)
    {
      g_autoptr(GError) error = NULL;

      g_assert_null (lsock_name_new_generic (names[i], &error));
      g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
      if (g_utf8_validate (names[i], -1, NULL))
        assert_message_names (error, names[i]);
      g_assert_true (g_utf8_validate (error->message, -1, NULL));
    }
}

static void
test_invalid_utf8 (void)
{
  g_autoptr(GError) error = NULL;

  g_assert_null (lsock_name_new_namespaced ("ab\xff" "cd", &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
  g_assert_true (g_utf8_validate (error->message, -1, NULL));
  assert_message_names (error, "ab");
  g_clear_error (&error);

  g_assert_null (lsock_name_parse ("@\xc3", &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
  g_assert_true (g_utf8_validate (error->message, -1, NULL));
}

static void
test_path_length (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *longest = make_path_of_length (SUN_PATH_SIZE - 1);
  g_autofree char *too_long = make_path_of_length (SUN_PATH_SIZE);
  LsockName *name;

  if (!have_paths ())
    {
      g_test_skip ("Path names are not supported on this platform");
      return;
    }

#ifdef __linux__
  g_assert_cmpuint (strlen (longest), ==, 107);
#endif

  name = lsock_name_new_path (longest, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (lsock_name_get_name (name), ==, longest);
  g_assert_finalize_object (name);

  name = lsock_name_parse (longest, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (lsock_name_get_name (name), ==, longest);
  g_assert_finalize_object (name);

  /* Rejected, never truncated */
  name = lsock_name_new_path (too_long, &error);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
  g_assert_null (name);
  assert_message_names (error, too_long);
  g_clear_error (&error);

  name = lsock_name_parse (too_long, &error);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
  g_assert_null (name);
}

static void
test_namespaced_length (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *longest = make_name_of_length (NAMESPACED_MAX);
  g_autofree char *too_long = make_name_of_length (NAMESPACED_MAX + 1);
  g_autofree char *too_long_at = g_strconcat ("@", too_long, NULL);
  LsockName *name;

  if (!have_namespaced ())
    {
      g_test_skip ("Namespaced names are not supported on this platform");
      return;
    }

#ifdef __linux__
  g_assert_cmpuint (strlen (longest), ==, 107);
#endif

  name = lsock_name_new_namespaced (longest, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (lsock_name_get_name (name), ==, longest);
  g_assert_finalize_object (name);

  name = lsock_name_new_generic (longest, &error);
  g_assert_no_error (error);
  g_assert_finalize_object (name);

  name = lsock_name_new_namespaced (too_long, &error);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
  g_assert_null (name);
  assert_message_names (error, too_long);
  g_clear_error (&error);

  name = lsock_name_parse (too_long_at, &error);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
  g_assert_null (name);
  assert_message_names (error, too_long);
  g_clear_error (&error);

  name = lsock_name_new_generic (too_long, &error);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
  g_assert_null (name);
}

static void
test_namespaced_unsupported (void)
{
  g_autoptr(GError) error = NULL;
  LsockName *name;

  if (have_namespaced ())
    {
      g_test_skip ("Namespaced names are supported on this platform");
      return;
    }

  name = lsock_name_new_namespaced ("foo", &error);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED);
  g_assert_null (name);
  assert_message_names (error, "foo");
}

static void
test_sockaddr (void)
{
#ifndef G_OS_WIN32
  g_autoptr(GError) error = NULL;
  g_autofree char *longest = make_name_of_length (SUN_PATH_SIZE - 1);
  struct sockaddr_un addr;
  LsockName *name;
  socklen_t len;

  if (!have_paths ())
    {
      g_test_skip ("Path names are not supported on this platform");
      return;
    }

  name = lsock_name_new_path ("/tmp/x", &error);
  g_assert_no_error (error);
  memset (&addr, 0xaa, sizeof addr);
  len = _lsock_name_to_sockaddr (name, &addr);
  g_assert_cmpint (addr.sun_family, ==, AF_UNIX);
  g_assert_cmpuint (len, ==, offsetof (struct sockaddr_un, sun_path) + strlen ("/tmp/x") + 1);
  g_assert_cmpstr (addr.sun_path, ==, "/tmp/x");
  g_assert_finalize_object (name);

  if (!have_namespaced ())
    {
      g_test_skip ("Namespaced names are not supported on this platform");
      return;
    }

  name = lsock_name_new_namespaced ("foo", &error);
  g_assert_no_error (error);
  memset (&addr, 0xaa, sizeof addr);
  len = _lsock_name_to_sockaddr (name, &addr);
  g_assert_cmpint (addr.sun_family, ==, AF_UNIX);
  /* Unpadded: exactly a NUL and the three bytes */
  g_assert_cmpuint (len, ==, offsetof (struct sockaddr_un, sun_path) + 1 + 3);
  g_assert_cmpint (addr.sun_path[0], ==, '\0');
  g_assert_cmpmem (addr.sun_path + 1, 3, "foo", 3);
  g_assert_cmpint (addr.sun_path[4], ==, '\0');
  g_assert_finalize_object (name);

  /* The longest abstract name fills sun_path exactly */
  name = lsock_name_new_namespaced (longest, &error);
  g_assert_no_error (error);
  len = _lsock_name_to_sockaddr (name, &addr);
  g_assert_cmpuint (len, ==, sizeof addr);
  g_assert_cmpuint (len, ==, offsetof (struct sockaddr_un, sun_path) + 1 + strlen (longest));
  g_assert_cmpmem (addr.sun_path + 1, sizeof addr.sun_path - 1, longest, strlen (longest));
  g_assert_finalize_object (name);
#else
  g_test_skip ("No sockaddr_un on this platform");
#endif
}

static void
test_properties (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *string = NULL;
  LsockNameKind kind = LSOCK_NAME_KIND_NAMESPACED;
  LsockName *name;

  if (!have_paths ())
    {
      g_test_skip ("Path names are not supported on this platform");
      return;
    }

  name = lsock_name_new_path ("/run/x", &error);
  g_assert_no_error (error);
  g_object_get (name, "kind", &kind, "name", &string, NULL);
  g_assert_cmpint (kind, ==, LSOCK_NAME_KIND_PATH);
  g_assert_cmpstr (string, ==, "/run/x");
  g_clear_pointer (&string, g_free);
  g_assert_finalize_object (name);

  if (!have_namespaced ())
    return;

  name = lsock_name_new_namespaced ("foo", &error);
  g_assert_no_error (error);
  g_object_get (name, "kind", &kind, "name", &string, NULL);
  g_assert_cmpint (kind, ==, LSOCK_NAME_KIND_NAMESPACED);
  g_assert_cmpstr (string, ==, "foo");
  g_assert_finalize_object (name);
}

static void
test_properties_read_only (void)
{
  GObjectClass *klass = g_type_class_ref (LSOCK_TYPE_NAME);
  GParamSpec *kind = g_object_class_find_property (klass, "kind");
  GParamSpec *pname = g_object_class_find_property (klass, "name");

  g_assert_nonnull (kind);
  g_assert_nonnull (pname);
  g_assert_cmpint (kind->flags & G_PARAM_WRITABLE, ==, 0);
  g_assert_cmpint (pname->flags & G_PARAM_WRITABLE, ==, 0);
  g_assert_true (G_IS_PARAM_SPEC_ENUM (kind));
  g_assert_cmpuint (G_PARAM_SPEC_VALUE_TYPE (kind), ==, LSOCK_TYPE_NAME_KIND);
  g_type_class_unref (klass);
}

static void
test_type_support (void)
{
#ifdef __linux__
  g_assert_cmpint (lsock_name_type_support_query (), ==, LSOCK_NAME_TYPE_SUPPORT_BOTH);
#elif defined (G_OS_WIN32)
  g_assert_cmpint (lsock_name_type_support_query (), ==, LSOCK_NAME_TYPE_SUPPORT_ONLY_NAMESPACED);
#else
  g_test_skip ("Only Linux supports both kinds of names");
#endif
}

static void
test_error_messages (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *long_path = make_path_of_length (SUN_PATH_SIZE + 5);

  g_assert_null (lsock_name_new_generic ("has/slash", &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
  assert_message_names (error, "“has/slash”");
  g_clear_error (&error);

  if (have_paths ())
    {
      g_assert_null (lsock_name_parse (long_path, &error));
      g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
      assert_message_names (error, long_path);
      g_clear_error (&error);
    }

  g_assert_null (lsock_name_parse ("\\\\.\\pipe\\", &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
  assert_message_names (error, "\\\\.\\pipe\\");
  g_clear_error (&error);
}

#ifndef G_OS_WIN32
static char *
fallback_dir_for (const char *tmp_dir)
{
  g_autofree char *base = g_strdup_printf ("lsock-%lu", (gulong) geteuid ());

  return g_build_filename (tmp_dir, base, NULL);
}

static guint
mode_of (const char *path)
{
  GStatBuf st;

  g_assert_cmpint (g_lstat (path, &st), ==, 0);
  return st.st_mode;
}
#endif

static void
test_private_dir_runtime (void)
{
#ifndef G_OS_WIN32
  g_autoptr(GError) error = NULL;
  g_autofree char *runtime = g_build_filename (lsock_test_tmp_dir (), "runtime", NULL);
  const char *tmp = lsock_test_tmp_dir ();
  g_autofree char *fallback = fallback_dir_for (tmp);
  g_autofree char *dir = NULL;

  g_assert_cmpint (g_mkdir (runtime, 0700), ==, 0);
  g_assert_cmpint (g_chmod (runtime, 0700), ==, 0);

  dir = _lsock_name_ensure_private_dir (runtime, tmp, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (dir, ==, runtime);
  /* The fallback is not made when it is not needed */
  g_assert_false (g_file_test (fallback, G_FILE_TEST_EXISTS));
#else
  g_test_skip ("Not used on this platform");
#endif
}

static void
test_private_dir_runtime_unsafe (void)
{
#ifndef G_OS_WIN32
  g_autoptr(GError) error = NULL;
  g_autofree char *runtime = g_build_filename (lsock_test_tmp_dir (), "runtime", NULL);
  g_autofree char *link_path = g_build_filename (lsock_test_tmp_dir (), "link", NULL);
  const char *tmp = lsock_test_tmp_dir ();
  g_autofree char *fallback = fallback_dir_for (tmp);
  g_autofree char *dir = NULL;

  /* A runtime dir others can read is not used, nor changed */
  g_assert_cmpint (g_mkdir (runtime, 0755), ==, 0);
  g_assert_cmpint (g_chmod (runtime, 0755), ==, 0);

  dir = _lsock_name_ensure_private_dir (runtime, tmp, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (dir, ==, fallback);
  g_assert_cmpuint (mode_of (fallback), ==, S_IFDIR | 0700);
  g_assert_cmpuint (mode_of (runtime), ==, S_IFDIR | 0755);
  g_clear_pointer (&dir, g_free);

  /* Made once, then reused */
  dir = _lsock_name_ensure_private_dir (runtime, tmp, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (dir, ==, fallback);
  g_clear_pointer (&dir, g_free);

  /* A symbolic link to a good directory is not used either */
  g_assert_cmpint (g_chmod (runtime, 0700), ==, 0);
  g_assert_cmpint (symlink (runtime, link_path), ==, 0);
  dir = _lsock_name_ensure_private_dir (link_path, tmp, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (dir, ==, fallback);
  g_clear_pointer (&dir, g_free);

  /* Nor a runtime dir that does not exist, nor an empty one ("unset") */
  dir = _lsock_name_ensure_private_dir ("/nonexistent/lsock-test", tmp, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (dir, ==, fallback);
  g_clear_pointer (&dir, g_free);

  dir = _lsock_name_ensure_private_dir ("", tmp, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (dir, ==, fallback);
#else
  g_test_skip ("Not used on this platform");
#endif
}

static void
test_private_dir_fallback_symlink (void)
{
#ifndef G_OS_WIN32
  g_autoptr(GError) error = NULL;
  const char *target = lsock_test_tmp_dir ();
  const char *tmp = lsock_test_tmp_dir ();
  g_autofree char *fallback = fallback_dir_for (tmp);
  g_autofree char *dir = NULL;
  g_autofree char *read_back = NULL;

  g_assert_cmpint (g_chmod (target, 0700), ==, 0);
  g_assert_cmpint (symlink (target, fallback), ==, 0);

  dir = _lsock_name_ensure_private_dir ("", tmp, &error);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_PERMISSION_DENIED);
  g_assert_null (dir);
  assert_message_names (error, fallback);

  /* Left as it was */
  read_back = g_file_read_link (fallback, NULL);
  g_assert_cmpstr (read_back, ==, target);
  g_assert_cmpuint (mode_of (target), ==, S_IFDIR | 0700);
#else
  g_test_skip ("Not used on this platform");
#endif
}

static void
test_private_dir_fallback_wide (void)
{
#ifndef G_OS_WIN32
  g_autoptr(GError) error = NULL;
  const char *tmp = lsock_test_tmp_dir ();
  g_autofree char *fallback = fallback_dir_for (tmp);
  g_autofree char *dir = NULL;

  g_assert_cmpint (g_mkdir (fallback, 0700), ==, 0);
  g_assert_cmpint (g_chmod (fallback, 0777), ==, 0);

  dir = _lsock_name_ensure_private_dir ("", tmp, &error);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_PERMISSION_DENIED);
  g_assert_null (dir);
  assert_message_names (error, fallback);

  /* Never chmod()ed: it may not be ours to change */
  g_assert_cmpuint (mode_of (fallback), ==, S_IFDIR | 0777);
#else
  g_test_skip ("Not used on this platform");
#endif
}

static void
test_private_dir_fallback_not_dir (void)
{
#ifndef G_OS_WIN32
  g_autoptr(GError) error = NULL;
  const char *tmp = lsock_test_tmp_dir ();
  g_autofree char *fallback = fallback_dir_for (tmp);
  g_autofree char *dir = NULL;

  g_assert_true (g_file_set_contents (fallback, "", 0, NULL));

  dir = _lsock_name_ensure_private_dir ("", tmp, &error);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_PERMISSION_DENIED);
  g_assert_null (dir);
  assert_message_names (error, fallback);
  g_assert_true (g_file_test (fallback, G_FILE_TEST_IS_REGULAR));
#else
  g_test_skip ("Not used on this platform");
#endif
}

int
main (int   argc,
      char *argv[])
{
  int ret;

  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);

  g_test_add_func ("/lsock/name/parse/namespaced", test_parse_namespaced);
  g_test_add_func ("/lsock/name/parse/pipe", test_parse_pipe);
  g_test_add_func ("/lsock/name/parse/path", test_parse_path);
  g_test_add_func ("/lsock/name/parse/generic", test_parse_generic);
  g_test_add_func ("/lsock/name/parse/invalid", test_parse_invalid);
  g_test_add_func ("/lsock/name/to-string/path", test_to_string_path);
  g_test_add_func ("/lsock/name/to-string/path-long", test_to_string_path_long);
  g_test_add_func ("/lsock/name/to-string/namespaced", test_to_string_namespaced);
  g_test_add_func ("/lsock/name/to-string/generic", test_to_string_generic);
  g_test_add_func ("/lsock/name/equal-hash", test_equal_hash);
  g_test_add_func ("/lsock/name/invalid/empty", test_invalid_empty);
  g_test_add_func ("/lsock/name/invalid/generic", test_invalid_generic);
  g_test_add_func ("/lsock/name/invalid/utf8", test_invalid_utf8);
  g_test_add_func ("/lsock/name/invalid/path-length", test_path_length);
  g_test_add_func ("/lsock/name/invalid/namespaced-length", test_namespaced_length);
  g_test_add_func ("/lsock/name/invalid/namespaced-unsupported", test_namespaced_unsupported);
  g_test_add_func ("/lsock/name/sockaddr", test_sockaddr);
  g_test_add_func ("/lsock/name/properties", test_properties);
  g_test_add_func ("/lsock/name/properties/read-only", test_properties_read_only);
  g_test_add_func ("/lsock/name/type-support", test_type_support);
  g_test_add_func ("/lsock/name/error-messages", test_error_messages);
  g_test_add_func ("/lsock/name/private-dir/runtime", test_private_dir_runtime);
  g_test_add_func ("/lsock/name/private-dir/runtime-unsafe", test_private_dir_runtime_unsafe);
  g_test_add_func ("/lsock/name/private-dir/fallback-symlink", test_private_dir_fallback_symlink);
  g_test_add_func ("/lsock/name/private-dir/fallback-wide", test_private_dir_fallback_wide);
  g_test_add_func ("/lsock/name/private-dir/fallback-not-dir", test_private_dir_fallback_not_dir);

  ret = g_test_run ();
  lsock_test_cleanup_dirs ();
  return ret;
}
