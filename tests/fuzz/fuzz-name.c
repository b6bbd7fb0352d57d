/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Fuzz target: every way to make an LsockName from a string, and the
 * promises a name keeps (DESIGN.md, "Names"):
 *
 * - bad input is a G_IO_ERROR (INVALID_ARGUMENT, or NOT_SUPPORTED where
 *   the platform lacks a kind) whose message is valid UTF-8, never a crash
 *   nor a name that quietly differs from the input (a truncated one);
 * - a name's lsock_name_to_string() parses back to an equal name, with
 *   the same string and hash;
 * - what the name displays in messages is valid UTF-8.
 *
 * Built twice (tests/fuzz/meson.build): with driver.c as a plain program
 * that `meson test` runs over the checked-in corpus, and, with clang and
 * -Dfuzzing=true, as a libFuzzer binary. */
#include "config.h"

#include <stdint.h>
#include <string.h>

#include "lsock-name-private.h"

int LLVMFuzzerTestOneInput (const uint8_t *data,
                            size_t         size);

static void
check_error (const char *what,
             const char *input,
             GError     *error)
{
  if (error == NULL)
    g_error ("%s (“%s”) failed without an error", what, input);
  if (error->domain != G_IO_ERROR ||
      (error->code != G_IO_ERROR_INVALID_ARGUMENT && error->code != G_IO_ERROR_NOT_SUPPORTED))
    g_error ("%s: unexpected error %s %d: %s", what, g_quark_to_string (error->domain),
             error->code, error->message);
  if (!g_utf8_validate (error->message, -1, NULL))
    g_error ("%s: the message is not UTF-8", what);
}

static void
check_name (const char *what,
            LsockName  *name)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(LsockName) again = NULL;
  g_autofree char *string = lsock_name_to_string (name);
  g_autofree char *string_again = NULL;
  const char *bare = lsock_name_get_name (name);
  LsockNameKind kind = lsock_name_get_kind (name);

  g_assert_nonnull (string);
  g_assert_nonnull (bare);
  g_assert_true (kind == LSOCK_NAME_KIND_PATH || kind == LSOCK_NAME_KIND_NAMESPACED);
  if (bare[0] == '\0')
    g_error ("%s made an empty name", what);
  if (kind == LSOCK_NAME_KIND_NAMESPACED && !g_utf8_validate (bare, -1, NULL))
    g_error ("%s made a namespaced name that is not UTF-8", what);
#ifdef __linux__
  /* sun_path: 108 bytes, with a NUL after a path or before a namespaced
   * name: 107 either way, never more (nothing cut off) */
  if (strlen (bare) > 107)
    g_error ("%s made a %zu-byte name", what, strlen (bare));
#endif
  if (!g_utf8_validate (_lsock_name_get_display (name), -1, NULL))
    g_error ("%s: the display form is not UTF-8", what);

  again = lsock_name_parse (string, &error);
  if (again == NULL)
    g_error ("%s: “%s” does not parse back: %s", what, string, error->message);
  if (!lsock_name_equal (name, again))
    g_error ("%s: “%s” parses back to another name", what, string);
  g_assert_cmpuint (lsock_name_hash (name), ==, lsock_name_hash (again));
  string_again = lsock_name_to_string (again);
  g_assert_cmpstr (string, ==, string_again);
}

static void
try_one (const char *what,
         LsockName * (*make) (const char *, GError **),
         const char *input)
{
  g_autoptr(GError) error = NULL;
  LsockName *name = make (input, &error);

  if (name == NULL)
    {
      check_error (what, input, error);
      return;
    }
  g_assert_no_error (error);
  check_name (what, name);
  g_object_unref (name);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data,
                        size_t         size)
{
  /* Up to the first NUL, as from C */
  g_autofree char *input = g_strndup ((const char *) data, size);
  g_autoptr(LsockName) parsed = NULL;
  g_autoptr(GError) error = NULL;

  try_one ("lsock_name_parse", lsock_name_parse, input);
  try_one ("lsock_name_new_path", lsock_name_new_path, input);
  try_one ("lsock_name_new_namespaced", lsock_name_new_namespaced, input);
#if defined (__linux__) || defined (G_OS_WIN32)
  /* Elsewhere a generic name makes a directory */
  try_one ("lsock_name_new_generic", lsock_name_new_generic, input);
#endif

  /* "@X" is exactly the namespaced name X, when it is one */
  parsed = lsock_name_parse (input, &error);
  if (parsed != NULL && input[0] == '@' &&
      lsock_name_get_kind (parsed) == LSOCK_NAME_KIND_NAMESPACED)
    g_assert_cmpstr (lsock_name_get_name (parsed), ==, input + 1);
  return 0;
}
