/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Built by build-aux/subproject-check.sh in a parent project that has
 * lsock-gobject as a Meson subproject, found by dependency('lsock-gobject-1.0')
 * alone: a round trip through a connected pair of streams. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lsock-gobject/lsock.h>

int
main (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(LsockStream) first = NULL;
  g_autoptr(LsockStream) second = NULL;
  g_autoptr(GBytes) sent = g_bytes_new_static ("hello, parent", 13);
  g_autoptr(GBytes) received = NULL;

#if !LSOCK_CHECK_VERSION (1, 0, 0)
# error "LSOCK_CHECK_VERSION (1, 0, 0) failed"
#endif

  if (!lsock_stream_new_pair (&first, &second, &error) ||
      !lsock_stream_send_bytes (first, sent, NULL, &error) ||
      (received = lsock_stream_receive_bytes (second, 4096, NULL, &error)) == NULL)
    {
      fprintf (stderr, "subproject-check: %s\n", error->message);
      return EXIT_FAILURE;
    }
  if (!g_bytes_equal (sent, received))
    {
      fprintf (stderr, "subproject-check: received %zu bytes, not what was sent\n",
               g_bytes_get_size (received));
      return EXIT_FAILURE;
    }
  printf ("lsock-gobject %s as a subproject: a stream pair carried %zu bytes\n",
          LSOCK_VERSION_S, g_bytes_get_size (received));
  return EXIT_SUCCESS;
}
