/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A socket-activated service for the tests (tests/activation.c), run under
 * systemd-socket-activate or spawned with a socket at fd 3.
 *
 *   lsock-test-activated listen NAME     lsock_listener_new (NAME)
 *   lsock-test-activated named FDNAME    lsock_listener_new_activated (FDNAME)
 *   lsock-test-activated only            lsock_listener_new_activated (NULL)
 *   lsock-test-activated accept          lsock_stream_new_from_fd (3)
 *
 * A listener accepts one peer and writes it one line: "adopted=0|1
 * env=<$LISTEN_FDS or unset> reclaim=0|1\n", then closes the listener and
 * exits 0; a failure is printed to stderr as "error: <domain>:<code>:
 * <message>", exit 2. In accept mode the line is "accepted name=<name>\n".
 *
 * Like an activator, it first sets $LISTEN_PID to its own pid when
 * $TEST_SET_LISTEN_PID is set (for tests that pass the socket themselves,
 * without knowing the pid in advance), and $LISTEN_PIDFDID to
 * $TEST_SET_LISTEN_PIDFDID when that is set.
 */
#include <lsock-gobject/lsock.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int
fail (GError *error)
{
  fprintf (stderr, "error: %s:%d: %s\n", g_quark_to_string (error->domain), error->code,
           error->message);
  g_error_free (error);
  return 2;
}

int
main (int argc, char **argv)
{
  g_autoptr(LsockListener) listener = NULL;
  g_autoptr(LsockStream) stream = NULL;
  g_autofree char *line = NULL;
  GError *error = NULL;
  const char *mode = argc > 1 ? argv[1] : "";
  const char *env;

  if (g_getenv ("TEST_SET_LISTEN_PID") != NULL)
    {
      char pid[32];

      g_snprintf (pid, sizeof pid, "%d", (int) getpid ());
      g_setenv ("LISTEN_PID", pid, TRUE);
    }
  if (g_getenv ("TEST_SET_LISTEN_PIDFDID") != NULL)
    g_setenv ("LISTEN_PIDFDID", g_getenv ("TEST_SET_LISTEN_PIDFDID"), TRUE);

  if (strcmp (mode, "accept") == 0)
    {
      LsockName *name;
      g_autofree char *shown = NULL;

      stream = lsock_stream_new_from_fd (3, &error);
      if (stream == NULL)
        return fail (error);
      name = lsock_stream_get_name (stream);
      shown = name != NULL ? lsock_name_to_string (name) : g_strdup ("(none)");
      line = g_strdup_printf ("accepted name=%s\n", shown);
    }
  else
    {
      if (strcmp (mode, "listen") == 0 && argc > 2)
        {
          g_autoptr(LsockName) name = lsock_name_parse (argv[2], &error);

          if (name == NULL)
            return fail (error);
          listener = lsock_listener_new (name, &error);
        }
      else if (strcmp (mode, "named") == 0 && argc > 2)
        listener = lsock_listener_new_activated (argv[2], LSOCK_ACCESS_USER, &error);
      else if (strcmp (mode, "only") == 0)
        listener = lsock_listener_new_activated (NULL, LSOCK_ACCESS_USER, &error);
      else
        {
          fprintf (stderr, "usage: %s listen NAME | named FDNAME | only | accept\n", argv[0]);
          return 2;
        }
      if (listener == NULL)
        return fail (error);

      stream = lsock_listener_accept (listener, NULL, &error);
      if (stream == NULL)
        return fail (error);
      env = g_getenv ("LISTEN_FDS");
      line = g_strdup_printf ("adopted=%d env=%s reclaim=%d\n",
                              lsock_listener_is_adopted (listener),
                              env != NULL ? env : "unset",
                              lsock_listener_get_reclaim_name (listener));
    }

  if (!g_output_stream_write_all (g_io_stream_get_output_stream (G_IO_STREAM (stream)),
                                  line, strlen (line), NULL, NULL, &error) ||
      !g_io_stream_close (G_IO_STREAM (stream), NULL, &error))
    return fail (error);
  if (listener != NULL)
    lsock_listener_close (listener);
  return 0;
}
