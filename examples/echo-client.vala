/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The echo client in Vala, asynchronous: connects, sends a few lines,
 * half-closes, reads the echo and compares.
 *
 *   valac --pkg lsock-gobject-1.0 echo-client.vala
 *   ./echo-client lsock-demo
 */

const string[] LINES = {
  "Hello from Vala",
  "Local sockets, one API",
};

async bool run (string name_string) throws Error {
  var name = new Lsock.Name.parse (name_string);
  var stream = yield Lsock.Stream.connect_to_async (name, null);

  var sent = new StringBuilder ();
  foreach (unowned string line in LINES) {
    sent.append (line + "\n");
    print ("sent: %s\n", line);
  }
  size_t written;
  yield stream.output_stream.write_all_async (sent.data, Priority.DEFAULT, null, out written);

  /* Half-close: the service echoes everything, then closes */
  stream.shutdown (false, true);

  var got = new StringBuilder ();
  var buffer = new uint8[4096];
  ssize_t n;
  while ((n = yield stream.input_stream.read_async (buffer)) > 0)
    got.append_len ((string) buffer, n);

  foreach (unowned string line in got.str.split ("\n"))
    if (line != "")
      print ("got: %s\n", line);

  yield stream.close_async ();
  return got.str == sent.str;
}

int main (string[] args) {
  /* For translated error messages, and their “quotes” in this locale */
  Intl.setlocale (LocaleCategory.ALL, "");

  var loop = new MainLoop ();
  int status = 1;

  run.begin (args.length > 1 ? args[1] : "lsock-demo", (obj, res) => {
    try {
      if (run.end (res))
        status = 0;
      else
        printerr ("echo-client: the echo differs from what was sent\n");
    } catch (Error e) {
      printerr ("echo-client: %s\n", e.message);
    }
    loop.quit ();
  });
  loop.run ();
  return status;
}
