/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* An echo client: sends a few lines to an echo service, reads them back and
 * checks that they came back unchanged.
 *
 *   lsock listen --echo lsock-demo &      # or: ./echo-server lsock-demo &
 *   ./echo-client lsock-demo
 *
 * Blocking calls keep it short; see echo-client.js for the asynchronous
 * style. Exits with status 1 if anything fails or differs. */

#include <string.h>
#include <locale.h>
#include <lsock-gobject/lsock.h>

static const char * const lines[] = {
  "Hello from C",
  "Local sockets, one API",
  "Abstract names, socket files and named pipes",
};

int
main (int    argc,
      char **argv)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(LsockName) name = NULL;
  g_autoptr(LsockStream) stream = NULL;
  g_autoptr(GString) sent = g_string_new (NULL);
  g_autoptr(GString) got = g_string_new (NULL);
  GInputStream *in;
  GOutputStream *out;
  char buffer[4096];
  gssize n;

  /* For translated error messages, and their “quotes” in this locale */
  setlocale (LC_ALL, "");

  name = lsock_name_parse (argc > 1 ? argv[1] : "lsock-demo", &error);
  if (name == NULL)
    goto fail;

  stream = lsock_stream_connect (name, NULL, &error);
  if (stream == NULL)
    goto fail;

  in = g_io_stream_get_input_stream (G_IO_STREAM (stream));
  out = g_io_stream_get_output_stream (G_IO_STREAM (stream));

  for (gsize i = 0; i < G_N_ELEMENTS (lines); i++)
    {
      g_autofree char *line = g_strconcat (lines[i], "\n", NULL);

      if (!g_output_stream_write_all (out, line, strlen (line), NULL, NULL, &error))
        goto fail;
      g_string_append (sent, line);
      g_print ("sent: %s\n", lines[i]);
    }

  /* Half-close: the service sees the end of our data, echoes the rest and
   * then closes, which ends the loop below */
  if (!lsock_stream_shutdown (stream, FALSE, TRUE, &error))
    goto fail;

  while ((n = g_input_stream_read (in, buffer, sizeof buffer, NULL, &error)) > 0)
    g_string_append_len (got, buffer, n);
  if (n < 0)
    goto fail;

  {
    g_auto(GStrv) got_lines = g_strsplit (got->str, "\n", -1);

    for (gsize i = 0; got_lines[i] != NULL && got_lines[i + 1] != NULL; i++)
      g_print ("got: %s\n", got_lines[i]);
  }

  if (!g_string_equal (sent, got))
    {
      g_printerr ("echo-client: the echo differs from what was sent\n");
      return 1;
    }

  if (!g_io_stream_close (G_IO_STREAM (stream), NULL, &error))
    goto fail;
  return 0;

fail:
  g_printerr ("echo-client: %s\n", error->message);
  return 1;
}
