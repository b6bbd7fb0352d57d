#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The client of dbus-server.py (or dbus-server.c) in Python (PyGObject):
# connects, makes a peer-to-peer D-Bus connection over the stream and calls
# the server's methods, asynchronously on one main loop.
#
#   ./dbus-server.py lsock-dbus-example &
#   ./dbus-client.py lsock-dbus-example
#
# Run from a build tree with:
#   GI_TYPELIB_PATH=_build/lsock-gobject LD_LIBRARY_PATH=_build/lsock-gobject \
#     /usr/bin/python3 examples/dbus-client.py
#
# Calls Hello ("Python client"), and on Unix sends ReadFd a memfd (a pipe
# where there are none) with some text in it. Exits with status 1 if
# anything fails.

import os
import sys

import gi
gi.require_version("Lsock", "1.0")
from gi.repository import Gio, GLib, Lsock  # noqa: E402

OBJECT_PATH = "/org/example/LsockDemo"
INTERFACE = "org.example.LsockDemo"
FD_TEXT = "Written into a descriptor by the Python client"

HAVE_FDS = hasattr(Gio, "UnixFDList") and sys.platform != "win32"


def descriptor_with_text(text):
    """A descriptor to read @text from: a memfd, or a pipe's read end"""
    data = text.encode()
    if hasattr(os, "memfd_create"):
        fd = os.memfd_create("lsock-dbus-example", os.MFD_CLOEXEC)
        os.write(fd, data)
        # The server shares the file offset: rewind it
        os.lseek(fd, 0, os.SEEK_SET)
        return fd
    # Short enough for the pipe's buffer; closing the write end tells
    # the server where the data ends
    read_end, write_end = os.pipe()
    os.write(write_end, data)
    os.close(write_end)
    return read_end


class Client:
    def __init__(self, name):
        self.loop = GLib.MainLoop()
        self.connection = None
        self.error = None
        # Checks that the server is this user's, as the server checks us
        Lsock.Stream.connect_to_async(name, None, self.connected)

    def fail(self, error):
        if self.error is None:
            self.error = error
        self.loop.quit()

    def connected(self, source, result):
        try:
            stream = Lsock.Stream.connect_to_finish(result)
        except GLib.Error as e:
            return self.fail(e)
        # Client side: no GUID. The stream is consumed: use the connection
        stream.new_dbus_connection_async(None, Gio.DBusConnectionFlags.NONE,
                                         None, None, self.dbus_ready)

    def dbus_ready(self, stream, result):
        try:
            self.connection = stream.new_dbus_connection_finish(result)
        except GLib.Error as e:
            return self.fail(e)
        # Peer to peer: no bus, so no destination name
        self.connection.call(None, OBJECT_PATH, INTERFACE, "Hello",
                             GLib.Variant("(s)", ("Python client",)),
                             GLib.VariantType("(s)"), Gio.DBusCallFlags.NONE, -1,
                             None, self.hello_done)

    def hello_done(self, connection, result):
        try:
            (greeting,) = connection.call_finish(result).unpack()
        except GLib.Error as e:
            return self.fail(e)
        print("Hello:", greeting)

        # EXTERNAL authentication over a GUnixConnection negotiated this
        if HAVE_FDS and (connection.get_capabilities()
                         & Gio.DBusCapabilityFlags.UNIX_FD_PASSING):
            fd = descriptor_with_text(FD_TEXT)
            fd_list = Gio.UnixFDList.new()
            handle = fd_list.append(fd)  # takes a copy
            os.close(fd)
            # The 'h' argument is the index in the list
            connection.call_with_unix_fd_list(None, OBJECT_PATH, INTERFACE, "ReadFd",
                                              GLib.Variant("(h)", (handle,)),
                                              GLib.VariantType("(s)"),
                                              Gio.DBusCallFlags.NONE, -1, fd_list,
                                              None, self.read_fd_done)
        else:
            self.finish()

    def read_fd_done(self, connection, result):
        try:
            reply, _ = connection.call_with_unix_fd_list_finish(result)
        except GLib.Error as e:
            return self.fail(e)
        (contents,) = reply.unpack()
        print(f"ReadFd: the server read “{contents}”")
        if contents != FD_TEXT:
            self.error = GLib.Error("the server read something else")
        self.finish()

    def finish(self):
        # Done: close the connection; the server sees it go
        self.connection.close(None, self.closed)

    def closed(self, connection, result):
        try:
            connection.close_finish(result)
        except GLib.Error as e:
            return self.fail(e)
        self.loop.quit()


def main(argv):
    name = Lsock.Name.parse(argv[1] if len(argv) > 1 else "lsock-dbus-example")
    client = Client(name)
    client.loop.run()
    if client.error is not None:
        print("dbus-client.py:", client.error.message, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv))
    except GLib.Error as e:
        print("dbus-client.py:", e.message, file=sys.stderr)
        sys.exit(1)
