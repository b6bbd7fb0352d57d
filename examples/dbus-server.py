#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The peer-to-peer D-Bus server of dbus-server.c in Python (PyGObject): each
# client that connects to the name gets its own GDBusConnection, made with
# Lsock.Stream.new_dbus_connection_async(), and the object
# /org/example/LsockDemo with
#
#   Hello (s name) -> (s greeting)
#   ReadFd (h fd) -> (s contents)       Unix only: reads the descriptor
#
#   ./dbus-server.py lsock-dbus-example &
#   ./dbus-client.py lsock-dbus-example      # or the C client
#
# Run from a build tree with:
#   GI_TYPELIB_PATH=_build/lsock-gobject LD_LIBRARY_PATH=_build/lsock-gobject \
#     /usr/bin/python3 examples/dbus-server.py
#
# Runs until SIGINT or SIGTERM (Ctrl-C).

import signal
import sys

import gi
gi.require_version("Lsock", "1.0")
from gi.repository import Gio, GLib, Lsock  # noqa: E402

# GLib 2.80 moved the Unix-only API to GLibUnix and GioUnix; older
# versions have it in GLib and Gio (and Windows has none of it)
try:
    gi.require_version("GioUnix", "2.0")
    gi.require_version("GLibUnix", "2.0")
    from gi.repository import GioUnix, GLibUnix  # noqa: E402
    UnixInputStream = GioUnix.InputStream
    unix_signal_add = GLibUnix.signal_add
except (ImportError, ValueError):
    UnixInputStream = getattr(Gio, "UnixInputStream", None)
    unix_signal_add = getattr(GLib, "unix_signal_add", None)

OBJECT_PATH = "/org/example/LsockDemo"
INTERFACE = "org.example.LsockDemo"
READ_MAX = 4096  # what ReadFd reads at most

HAVE_FDS = UnixInputStream is not None and sys.platform != "win32"

INTROSPECTION_XML = f"""
<node>
  <interface name='{INTERFACE}'>
    <method name='Hello'>
      <arg type='s' name='name' direction='in'/>
      <arg type='s' name='greeting' direction='out'/>
    </method>
    {'''<method name='ReadFd'>
      <arg type='h' name='fd' direction='in'/>
      <arg type='s' name='contents' direction='out'/>
    </method>''' if HAVE_FDS else ''}
  </interface>
</node>
"""


class Peer:
    """One client: its connection and the object exported on it"""

    def __init__(self, server, connection, peer_id):
        self.server = server
        self.connection = connection
        self.id = peer_id
        self.registration = connection.register_object(
            OBJECT_PATH, server.info.interfaces[0], self.method_call, None, None)
        self.closed_handler = connection.connect("closed", self.closed)

    def method_call(self, connection, sender, object_path, interface_name,
                    method_name, parameters, invocation):
        # GDBus has checked the method and its signature
        if method_name == "Hello":
            (name,) = parameters.unpack()
            print(f"Client {self.id}: Hello (“{name}”)", flush=True)
            greeting = f"Hello, {name}! You are client {self.id}"
            invocation.return_value(GLib.Variant("(s)", (greeting,)))
        elif method_name == "ReadFd":
            self.read_fd(parameters, invocation)
        else:
            invocation.return_dbus_error("org.freedesktop.DBus.Error.UnknownMethod",
                                         f"No method {method_name}")

    def read_fd(self, parameters, invocation):
        # 'h' is an index into the message's descriptor list
        (handle,) = parameters.unpack()
        fd_list = invocation.get_message().get_unix_fd_list()
        if fd_list is None or not 0 <= handle < fd_list.get_length():
            invocation.return_dbus_error("org.freedesktop.DBus.Error.InvalidArgs",
                                         f"No file descriptor at index {handle}")
            return
        # A copy of ours, which the stream closes; read it asynchronously,
        # since nothing says the writer is done
        stream = UnixInputStream.new(fd_list.get(handle), True)
        chunks = []

        def read_cb(source, result):
            try:
                data = source.read_bytes_finish(result).get_data()
            except GLib.Error as e:
                source.close(None)
                invocation.return_gerror(e)
                return
            chunks.append(data)
            got = sum(len(c) for c in chunks)
            if data and got < READ_MAX:
                source.read_bytes_async(READ_MAX - got, GLib.PRIORITY_DEFAULT,
                                        self.server.cancellable, read_cb)
                return
            source.close(None)
            print(f"Client {self.id}: ReadFd read {got} bytes", flush=True)
            # A D-Bus string must be valid UTF-8
            contents = b"".join(chunks).decode("utf-8", errors="replace")
            invocation.return_value(GLib.Variant("(s)", (contents,)))

        stream.read_bytes_async(READ_MAX, GLib.PRIORITY_DEFAULT,
                                self.server.cancellable, read_cb)

    def closed(self, connection, remote_peer_vanished, error):
        print(f"Client {self.id} disconnected", flush=True)
        self.server.peers.pop(self.id).drop()

    def drop(self):
        self.connection.unregister_object(self.registration)
        self.connection.disconnect(self.closed_handler)


class Server:
    def __init__(self, name):
        # Binds and listens; only this user's processes may connect
        self.listener = Lsock.Listener.new(name)
        self.info = Gio.DBusNodeInfo.new_for_xml(INTROSPECTION_XML)
        self.guid = Gio.dbus_generate_guid()  # the server's, for all its connections
        self.cancellable = Gio.Cancellable()
        self.peers = {}
        self.next_id = 0
        self.listener.connect("incoming", self.incoming)
        self.listener.start()

    def incoming(self, listener, stream):
        # The listener admitted only this user's processes; say which one,
        # while the stream is still ours to ask
        try:
            who = stream.get_peer_credentials().to_string()
        except GLib.Error as e:
            who = e.message
        print("New client:", who, flush=True)
        # The stream is consumed: only the connection is used from now on.
        # Delay message processing until the object is exported, or a quick
        # client's first call would find nothing there.
        stream.new_dbus_connection_async(self.guid,
                                         Gio.DBusConnectionFlags.DELAY_MESSAGE_PROCESSING,
                                         None, self.cancellable, self.connection_ready)
        return True  # handled

    def connection_ready(self, stream, result):
        try:
            connection = stream.new_dbus_connection_finish(result)
        except GLib.Error as e:
            if not e.matches(Gio.io_error_quark(), Gio.IOErrorEnum.CANCELLED):
                print("A client failed to connect:", e.message, file=sys.stderr)
            return
        self.next_id += 1
        peer = Peer(self, connection, self.next_id)
        self.peers[peer.id] = peer
        can_pass = connection.get_capabilities() & Gio.DBusCapabilityFlags.UNIX_FD_PASSING
        print(f"Client {peer.id} connected"
              + (" (can pass file descriptors)" if can_pass else ""), flush=True)
        # The object is there: now handle the client's messages
        connection.start_message_processing()

    def stop(self):
        # Stop accepting (this removes a socket file), give up on what is
        # still pending, and close the connections
        self.listener.close()
        self.cancellable.cancel()
        for peer in list(self.peers.values()):
            peer.drop()
            peer.connection.close_sync(None)
        self.peers.clear()


def main(argv):
    # A generic name: an abstract socket on Linux, a named pipe on Windows
    name = Lsock.Name.parse(argv[1] if len(argv) > 1 else "lsock-dbus-example")
    server = Server(name)
    print(f"D-Bus server on {name.to_string()}; Ctrl-C to stop", file=sys.stderr, flush=True)

    loop = GLib.MainLoop()
    if unix_signal_add is not None:
        for signum in (signal.SIGINT, signal.SIGTERM):
            unix_signal_add(GLib.PRIORITY_DEFAULT, signum, loop.quit)
    loop.run()

    server.stop()
    # Let the cancelled operations report
    context = GLib.MainContext.default()
    while context.iteration(False):
        pass
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv))
    except GLib.Error as e:
        print("dbus-server.py:", e.message, file=sys.stderr)
        sys.exit(1)
