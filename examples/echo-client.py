#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The echo client in Python (PyGObject): connects, sends a few lines,
# half-closes, reads the echo back and checks it.
#
#   lsock listen --echo lsock-demo &
#   ./echo-client.py lsock-demo
#
# Run from a build tree with:
#   GI_TYPELIB_PATH=_build/lsock-gobject LD_LIBRARY_PATH=_build/lsock-gobject \
#     /usr/bin/python3 examples/echo-client.py

import sys

import gi
gi.require_version("Lsock", "1.0")
from gi.repository import GLib, Lsock  # noqa: E402

LINES = [
    "Hello from Python",
    "Local sockets, one API",
]


def main(argv):
    # "lsock-demo" is a generic name: an abstract socket on Linux
    name = Lsock.Name.parse(argv[1] if len(argv) > 1 else "lsock-demo")
    stream = Lsock.Stream.connect_to(name, None)

    sent = "".join(line + "\n" for line in LINES).encode()
    # All of it: a plain write_bytes() may write only part and return the
    # count. (Sending everything before reading suits a small message: past
    # what the socket buffers hold, some 100 KiB, read while you write.)
    stream.send_bytes(GLib.Bytes.new(sent), None)
    for line in LINES:
        print("sent:", line)

    # Half-close: the service echoes everything, then closes its end
    stream.shutdown(False, True)

    got = b""
    while True:
        chunk = stream.get_input_stream().read_bytes(4096, None).get_data()
        if not chunk:  # end of stream
            break
        got += chunk
    stream.close(None)

    for line in got.decode().splitlines():
        print("got:", line)

    if got != sent:
        print("echo-client.py: the echo differs from what was sent", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv))
    except GLib.Error as e:
        print("echo-client.py:", e.message, file=sys.stderr)
        sys.exit(1)
