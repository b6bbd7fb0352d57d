/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Runs a libFuzzer target over files, without libFuzzer:
 *
 *   fuzz-name FILE|DIRECTORY...
 *
 * Each file is one input; a directory stands for the files in it. Used by
 * `meson test` over the checked-in corpus (tests/fuzz/corpus), so that
 * every input found worth keeping is tried on every build. */
#include "config.h"

#include <stdint.h>
#include <stdio.h>

#include <glib.h>

int LLVMFuzzerTestOneInput (const uint8_t *data,
                            size_t         size);

static gboolean
run_file (const char *path,
          guint      *n_run)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *contents = NULL;
  gsize len = 0;

  if (!g_file_get_contents (path, &contents, &len, &error))
    {
      g_printerr ("%s\n", error->message);
      return FALSE;
    }
  LLVMFuzzerTestOneInput ((const uint8_t *) contents, len);
  (*n_run)++;
  return TRUE;
}

int
main (int   argc,
      char *argv[])
{
  guint n_run = 0;

  if (argc < 2)
    {
      g_printerr ("usage: %s FILE|DIRECTORY...\n", argv[0]);
      return 2;
    }

  for (int i = 1; i < argc; i++)
    {
      if (g_file_test (argv[i], G_FILE_TEST_IS_DIR))
        {
          g_autoptr(GError) error = NULL;
          g_autoptr(GDir) dir = g_dir_open (argv[i], 0, &error);
          g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
          const char *entry;

          if (dir == NULL)
            {
              g_printerr ("%s\n", error->message);
              return 1;
            }
          while ((entry = g_dir_read_name (dir)) != NULL)
            g_ptr_array_add (names, g_build_filename (argv[i], entry, NULL));
          for (guint j = 0; j < names->len; j++)
            if (!run_file (names->pdata[j], &n_run))
              return 1;
        }
      else if (!run_file (argv[i], &n_run))
        return 1;
    }

  printf ("%u inputs, no failure\n", n_run);
  /* An empty corpus would prove nothing */
  return n_run > 0 ? 0 : 1;
}
