# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Streams and listeners by descriptor through GObject Introspection:
# Stream.new_pair, Stream.new_from_fd (and what it refuses), get_fd,
# steal_fd, steal_connection; descriptor passing (send_fd / receive_fd, sync
# and async) against Python's own socket.send_fds / recv_fds and GIO's
# GUnixConnection; a peer-to-peer D-Bus connection made with
# new_dbus_connection_async on both ends; Listener.new_from_fd of a socket
# made by Python.

import os
import select
import socket
import stat
import threading

import pytest

from conftest import (TIMEOUT, Gio, GLib, Lsock, Worker, assert_io_error,
                      read_exactly, unique, write_all)

TIMEOUT_MS = int(TIMEOUT * 1000)


# -- helpers -------------------------------------------------------------------

def same_file(fd_a, fd_b):
    a, b = os.fstat(fd_a), os.fstat(fd_b)
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def assert_fd_open(fd):
    os.fstat(fd)  # raises EBADF if it is not


def recv_exactly(sock, n):
    chunks = []
    while n > 0:
        b = sock.recv(n)
        assert b, 'EOF with %d bytes to go' % n
        chunks.append(b)
        n -= len(b)
    return b''.join(chunks)


def assert_pipe_carries(write_fd, read_fd, data):
    """@write_fd and @read_fd are the two ends of one working pipe."""
    assert os.write(write_fd, data) == len(data)
    ready, _, _ = select.select([read_fd], [], [], TIMEOUT)
    assert ready, 'nothing to read from the pipe'
    assert os.read(read_fd, len(data)) == data


def wait_eof(read_fd):
    """Whether the pipe read end @read_fd reaches EOF (every write end
    closed) within the bounded wait."""
    ready, _, _ = select.select([read_fd], [], [], TIMEOUT)
    return bool(ready) and os.read(read_fd, 1) == b''


def stream_read(stream, n):
    return read_exactly(stream.get_input_stream(), n)


def stream_write(stream, data):
    write_all(stream.get_output_stream(), data)


def stream_read_eof(stream):
    data = stream.get_input_stream().read_bytes(1, None).get_data() or b''
    return data == b''


@pytest.fixture
def pipe():
    """A pipe (read end, write end); both closed afterwards if still open."""
    r, w = os.pipe()
    fds = [r, w]
    try:
        yield r, w
    finally:
        for fd in fds:
            try:
                os.close(fd)
            except OSError:
                pass


@pytest.fixture
def pair():
    a, b = Lsock.Stream.new_pair()
    for s in (a, b):
        s.set_timeout(TIMEOUT_MS)
    try:
        yield a, b
    finally:
        a.close(None)
        b.close(None)


@pytest.fixture(params=['abstract', 'path'])
def address(request, tmpdir_private):
    """(lsock name, Python socket address) for the same socket."""
    if request.param == 'abstract':
        n = unique('fd')
        return Lsock.Name.parse('@' + n), b'\0' + n.encode()    # unpadded
    path = os.path.join(tmpdir_private, 'sock')
    return Lsock.Name.parse(path), path


@pytest.fixture
def py_client(address):
    """An lsock listener and a Python socket.socket(AF_UNIX) connected to it:
    yields (lsock stream accepted, Python socket)."""
    name, addr = address
    listener = Lsock.Listener.new(name)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(TIMEOUT)
    stream = None
    try:
        sock.connect(addr)                    # queued in the backlog
        stream = listener.accept(None)
        stream.set_timeout(TIMEOUT_MS)
        assert stream.get_name().equal(name)
        yield stream, sock
    finally:
        sock.close()
        if stream is not None:
            stream.close(None)
        listener.close()


class Loop:
    """A GLib.MainLoop on @ctx whose callbacks (wrapped with wrap()) wake it:
    run_until() runs it until a condition holds, bounded. Exceptions raised in
    the callbacks, which PyGObject would only print, are re-raised."""

    def __init__(self, ctx):
        self.ctx = ctx
        self.loop = GLib.MainLoop.new(ctx, False)
        self.errors = []

    def wrap(self, fn):
        def wrapper(*args):
            try:
                return fn(*args)
            except BaseException as e:  # noqa: B902
                self.errors.append(e)
                return False
            finally:
                self.loop.quit()
        return wrapper

    def run_until(self, cond, what):
        expired = []

        def on_timeout(*unused):
            expired.append(True)
            self.loop.quit()
            return GLib.SOURCE_REMOVE

        timeout = GLib.timeout_source_new(TIMEOUT_MS)
        timeout.set_callback(on_timeout)
        timeout.attach(self.ctx)
        try:
            while not cond() and not self.errors and not expired:
                self.loop.run()
        finally:
            timeout.destroy()
        if self.errors:
            raise self.errors[0]
        assert cond(), 'timed out after %.0f s waiting for %s' % (TIMEOUT, what)


# -- pairs, adoption, handing over ------------------------------------------------

def test_pair_round_trip(pair):
    a, b = pair
    assert isinstance(a, Lsock.Stream) and isinstance(b, Lsock.Stream)
    assert a.get_name() is None and b.get_name() is None
    fa, fb = a.get_fd(), b.get_fd()
    assert fa >= 0 and fb >= 0 and fa != fb
    # Two ends of one connected socketpair: each is the other's peer
    assert stat.S_ISSOCK(os.fstat(fa).st_mode)
    assert os.get_inheritable(fa) is False and os.get_inheritable(fb) is False
    for s in (a, b):
        creds = s.get_peer_credentials()
        assert creds.get_unix_pid() == os.getpid()
        assert creds.get_unix_user() == os.geteuid()

    big = os.urandom(300000)
    writer = Worker(stream_write, a, big)
    writer.start()
    assert stream_read(b, len(big)) == big
    writer.join_result()
    stream_write(b, b'and back')
    assert stream_read(a, 8) == b'and back'

    # Half-close one way, the other way still works
    assert a.shutdown(False, True)
    assert stream_read_eof(b)
    stream_write(b, b'still open')
    assert stream_read(a, 10) == b'still open'
    a.close(None)
    assert a.is_closed()
    assert a.get_fd() == -1


def test_new_from_fd_socketpair_end():
    mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    theirs.settimeout(TIMEOUT)
    try:
        # Deliberately inheritable and non-blocking: adoption makes it
        # close-on-exec and blocking
        mine.set_inheritable(True)
        mine.setblocking(False)
        fd = mine.detach()
        stream = Lsock.Stream.new_from_fd(fd)
        try:
            stream.set_timeout(TIMEOUT_MS)
            assert stream.get_fd() == fd
            assert stream.get_name() is None
            assert os.get_inheritable(fd) is False
            assert os.get_blocking(fd) is True
            assert stream.get_peer_credentials().get_unix_pid() == os.getpid()

            theirs.sendall(b'from python')
            assert stream_read(stream, 11) == b'from python'
            stream_write(stream, b'from lsock')
            assert recv_exactly(theirs, 10) == b'from lsock'
        finally:
            stream.close(None)
        # The stream owned the socket: closing it closed the socket
        assert theirs.recv(1) == b''
    finally:
        mine.close()
        theirs.close()


def test_new_from_fd_refuses_a_pipe(pipe):
    r, w = pipe
    for fd in (r, w):
        with pytest.raises(GLib.Error) as excinfo:
            Lsock.Stream.new_from_fd(fd)
        assert_io_error(excinfo, Gio.IOErrorEnum.INVALID_ARGUMENT)
    # Both stay the caller's, open and working
    assert_fd_open(r)
    assert_fd_open(w)
    assert_pipe_carries(w, r, b'still a pipe')


def test_new_from_fd_refuses_sockets_that_are_not_connected_unix_streams():
    listening = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listening.bind(b'\0' + unique('refuse').encode())
    listening.listen(1)
    unconnected = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dgram_a, dgram_b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        for s in (listening, unconnected, dgram_a):
            fd = s.fileno()
            with pytest.raises(GLib.Error) as excinfo:
                Lsock.Stream.new_from_fd(fd)
            assert_io_error(excinfo, Gio.IOErrorEnum.INVALID_ARGUMENT)
            assert_fd_open(fd)
            assert s.fileno() == fd
        # The listening socket still listens: a client gets through
        client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        with client:
            client.settimeout(TIMEOUT)
            client.connect(listening.getsockname())
            listening.settimeout(TIMEOUT)
            conn, _ = listening.accept()
            conn.close()
        # The datagram pair still works
        dgram_b.send(b'dgram')
        dgram_a.settimeout(TIMEOUT)
        assert dgram_a.recv(16) == b'dgram'
    finally:
        for s in (listening, unconnected, dgram_a, dgram_b):
            s.close()


def test_steal_fd_then_python_uses_it(pair):
    a, b = pair
    stream_write(a, b'before')
    fd = a.steal_fd()
    assert fd >= 0
    assert a.is_closed()
    assert a.get_fd() == -1
    assert os.get_inheritable(fd) is False
    assert os.get_blocking(fd) is True
    with pytest.raises(GLib.Error) as excinfo:
        a.steal_fd()
    assert_io_error(excinfo, Gio.IOErrorEnum.CLOSED)

    sock = socket.socket(fileno=fd)
    with sock:
        sock.settimeout(TIMEOUT)
        assert sock.family == socket.AF_UNIX and sock.type == socket.SOCK_STREAM
        # Closing the stream did not shut the socket down: the peer sees the
        # byte written before and nothing else, and both ways still work
        assert stream_read(b, 6) == b'before'
        sock.sendall(b'after steal')
        assert stream_read(b, 11) == b'after steal'
        stream_write(b, b'to python')
        assert recv_exactly(sock, 9) == b'to python'
    # Python closed it: now the lsock end sees EOF
    assert stream_read_eof(b)


def test_steal_connection_and_gio_fd_passing(pair, pipe):
    r, w = pipe
    a, b = pair
    conn = a.steal_connection()
    assert isinstance(conn, Gio.UnixConnection)
    assert a.is_closed()
    # GUnixConnection.send_fd -> lsock receive_fd
    assert conn.send_fd(w, None)
    got = b.receive_fd(None)
    try:
        assert got not in (r, w)
        assert same_file(got, w)
        assert os.get_inheritable(got) is False
        assert_pipe_carries(got, r, b'via gio')
    finally:
        os.close(got)
    # lsock send_fd -> GUnixConnection.receive_fd
    assert b.send_fd(r, None)
    got = conn.receive_fd(None)
    try:
        assert same_file(got, r)
        assert_pipe_carries(w, got, b'to gio')
    finally:
        os.close(got)
    conn.close(None)


# -- descriptor passing with Python's socket module ------------------------------

def test_python_send_fds_to_lsock_receive_fd(py_client, pipe):
    stream, sock = py_client
    r, w = pipe
    # In order with the stream's data: bytes, the descriptor's byte, bytes
    sock.sendall(b'hello')
    assert socket.send_fds(sock, [b'\0'], [w]) == 1
    sock.sendall(b'bye')
    assert stream_read(stream, 5) == b'hello'
    got = stream.receive_fd(None)
    try:
        assert got >= 0 and got != w
        assert same_file(got, w)
        assert os.get_inheritable(got) is False
        assert stream_read(stream, 3) == b'bye'
        # A working copy: what this process writes to it comes out of r
        assert_pipe_carries(got, r, b'python passed me')
    finally:
        os.close(got)


def test_lsock_send_fd_to_python_recv_fds(py_client, pipe):
    stream, sock = py_client
    r, w = pipe
    stream_write(stream, b'hello')
    assert stream.send_fd(r, None)
    stream_write(stream, b'bye')
    assert recv_exactly(sock, 5) == b'hello'
    msg, fds, flags, _ = socket.recv_fds(sock, 1, 1)
    try:
        assert msg == b'\0'                # the wire format of GUnixConnection
        assert len(fds) == 1
        assert flags & socket.MSG_CTRUNC == 0
        assert same_file(fds[0], r)
        assert recv_exactly(sock, 3) == b'bye'
        assert_pipe_carries(w, fds[0], b'lsock passed me')
    finally:
        for fd in fds:
            os.close(fd)
    # send_fd took a copy: r is still ours and open
    assert_pipe_carries(w, r, b'still mine')


def test_receive_fd_byte_without_descriptor_is_invalid_data(py_client):
    stream, sock = py_client
    sock.sendall(b'\0after')
    with pytest.raises(GLib.Error) as excinfo:
        stream.receive_fd(None)
    assert_io_error(excinfo, Gio.IOErrorEnum.INVALID_DATA)
    # The byte was consumed; the stream goes on with the next ones
    assert stream_read(stream, 5) == b'after'


def test_receive_fd_several_descriptors_is_invalid_data_and_closes_them(py_client):
    stream, sock = py_client
    r, w = os.pipe()
    try:
        w2 = os.dup(w)
        assert socket.send_fds(sock, [b'\0'], [w, w2]) == 1
        os.close(w2)
        os.close(w)
        w = -1
        with pytest.raises(GLib.Error) as excinfo:
            stream.receive_fd(None)
        assert_io_error(excinfo, Gio.IOErrorEnum.INVALID_DATA)
        # Both copies that came were closed: the pipe has no writer left
        assert wait_eof(r), 'a received descriptor was leaked'
        sock.sendall(b'next')
        assert stream_read(stream, 4) == b'next'
    finally:
        os.close(r)
        if w >= 0:
            os.close(w)


def test_receive_fd_at_eof_is_connection_closed(py_client):
    stream, sock = py_client
    sock.shutdown(socket.SHUT_WR)
    with pytest.raises(GLib.Error) as excinfo:
        stream.receive_fd(None)
    assert_io_error(excinfo, Gio.IOErrorEnum.CONNECTION_CLOSED)


# -- asynchronously ------------------------------------------------------------------

def test_async_send_and_receive_fd(main_context, pair, pipe):
    a, b = pair
    r, w = pipe
    loop = Loop(main_context)
    received = []
    sent = []

    def on_received(source, res, *unused):
        assert source is b
        received.append(source.receive_fd_finish(res))

    def on_sent(source, res, *unused):
        assert source is a
        sent.append(source.send_fd_finish(res))

    # The receive waits: nothing has been sent yet
    b.receive_fd_async(None, loop.wrap(on_received), None)
    main_context.iteration(False)
    assert received == []
    a.send_fd_async(w, None, loop.wrap(on_sent), None)

    loop.run_until(lambda: received and sent, 'receive_fd_async and send_fd_async')
    assert sent == [True]
    got = received[0]
    try:
        assert same_file(got, w)
        assert os.get_inheritable(got) is False
        assert_pipe_carries(got, r, b'async')
    finally:
        os.close(got)

    # And the failure: EOF while a receive waits
    errors = []

    def on_eof(source, res, *unused):
        try:
            source.receive_fd_finish(res)
        except GLib.Error as e:
            errors.append(e)
        else:
            errors.append(None)

    b.receive_fd_async(None, loop.wrap(on_eof), None)
    a.close(None)
    loop.run_until(lambda: errors, 'receive_fd_async at EOF')
    assert errors[0] is not None
    assert_io_error(errors[0], Gio.IOErrorEnum.CONNECTION_CLOSED)


# -- D-Bus peer to peer --------------------------------------------------------------

DBUS_XML = '''
<node>
  <interface name="org.gnome.LsockTest">
    <method name="Echo">
      <arg type="s" name="text" direction="in"/>
      <arg type="s" name="reply" direction="out"/>
    </method>
    <method name="Inode">
      <arg type="h" name="fd" direction="in"/>
      <arg type="t" name="dev" direction="out"/>
      <arg type="t" name="ino" direction="out"/>
    </method>
  </interface>
</node>
'''
DBUS_PATH = '/org/gnome/LsockTest'
DBUS_IFACE = 'org.gnome.LsockTest'


def test_dbus_peer_to_peer_over_a_pair(main_context, pipe):
    r, _ = pipe
    a, b = Lsock.Stream.new_pair()
    loop = Loop(main_context)
    conns = {}
    guid = Gio.dbus_generate_guid()
    assert Gio.dbus_is_guid(guid)

    def on_conn(source, res, side):
        conns[side] = source.new_dbus_connection_finish(res)

    flags = Gio.DBusConnectionFlags.NONE
    a.new_dbus_connection_async(guid, flags, None, None,
                                loop.wrap(on_conn), 'server')
    b.new_dbus_connection_async(None, flags, None, None,
                                loop.wrap(on_conn), 'client')
    # Consumed at once, before either connection is made
    assert a.is_closed() and b.is_closed()
    loop.run_until(lambda: len(conns) == 2, 'both D-Bus connections')
    server, client = conns['server'], conns['client']
    try:
        for c in (server, client):
            assert isinstance(c, Gio.DBusConnection)
            assert not c.is_closed()
            assert c.get_unique_name() is None          # no message bus
            assert c.get_capabilities() & Gio.DBusCapabilityFlags.UNIX_FD_PASSING
        assert server.get_guid() == guid
        assert client.get_guid() == guid
        # EXTERNAL: the server knows its peer from the kernel's credentials
        creds = server.get_peer_credentials()
        assert creds is not None
        assert creds.get_unix_user() == os.geteuid()
        assert creds.get_unix_pid() == os.getpid()

        calls = []

        def on_method(conn, sender, path, iface, method, params, invocation):
            calls.append(method)
            if method == 'Echo':
                (text,) = params.unpack()
                invocation.return_value(GLib.Variant('(s)', ('echo: ' + text,)))
            elif method == 'Inode':
                (index,) = params.unpack()
                fd_list = invocation.get_message().get_unix_fd_list()
                fd = fd_list.get(index)
                try:
                    st = os.fstat(fd)
                finally:
                    os.close(fd)
                invocation.return_value(GLib.Variant('(tt)', (st.st_dev, st.st_ino)))
            else:
                invocation.return_dbus_error('org.gnome.LsockTest.Error', method)

        node = Gio.DBusNodeInfo.new_for_xml(DBUS_XML)
        reg = server.register_object(DBUS_PATH, node.lookup_interface(DBUS_IFACE),
                                     loop.wrap(on_method), None, None)
        assert reg > 0

        replies = {}

        def on_reply(conn, res, what):
            if what == 'inode':
                value, _ = conn.call_with_unix_fd_list_finish(res)
            else:
                value = conn.call_finish(res)
            replies[what] = value.unpack()

        client.call(None, DBUS_PATH, DBUS_IFACE, 'Echo',
                    GLib.Variant('(s)', ('hello over lsock',)),
                    GLib.VariantType.new('(s)'), Gio.DBusCallFlags.NONE,
                    TIMEOUT_MS, None, loop.wrap(on_reply), 'echo')
        fd_list = Gio.UnixFDList.new()
        index = fd_list.append(r)
        client.call_with_unix_fd_list(
            None, DBUS_PATH, DBUS_IFACE, 'Inode', GLib.Variant('(h)', (index,)),
            GLib.VariantType.new('(tt)'), Gio.DBusCallFlags.NONE, TIMEOUT_MS,
            fd_list, None, loop.wrap(on_reply), 'inode')
        loop.run_until(lambda: len(replies) == 2, 'the method replies')
        assert replies['echo'] == ('echo: hello over lsock',)
        st = os.fstat(r)
        assert replies['inode'] == (st.st_dev, st.st_ino)
        assert sorted(calls) == ['Echo', 'Inode']
        assert server.unregister_object(reg)

        # The client hangs up: the server sees its peer vanish
        vanished = []
        server.connect('closed', loop.wrap(
            lambda conn, remote_peer_vanished, error: vanished.append(remote_peer_vanished)))
        client.close_sync(None)
        assert client.is_closed()
        loop.run_until(lambda: vanished, "the server's closed signal")
        assert vanished == [True]
        assert server.is_closed()
    finally:
        for c in conns.values():
            if not c.is_closed():
                try:
                    c.close_sync(None)
                except GLib.Error as e:
                    # the peer's close may have got there first
                    assert_io_error(e, Gio.IOErrorEnum.CLOSED)


def test_dbus_blocking_both_ends_and_a_closed_stream():
    a, b = Lsock.Stream.new_pair()
    guid = Gio.dbus_generate_guid()
    # Each end blocks while it authenticates: the server in a thread. A
    # watchdog cancels both if the handshake never ends
    cancellable = Gio.Cancellable()
    watchdog = threading.Timer(TIMEOUT, cancellable.cancel)
    watchdog.start()
    try:
        serving = Worker(a.new_dbus_connection, guid, Gio.DBusConnectionFlags.NONE,
                         None, cancellable)
        serving.start()
        client = b.new_dbus_connection(None, Gio.DBusConnectionFlags.NONE, None,
                                       cancellable)
        server = serving.join_result()
    finally:
        watchdog.cancel()
    assert not cancellable.is_cancelled()
    try:
        assert a.is_closed() and b.is_closed()
        assert client.get_guid() == guid
        assert client.get_capabilities() & Gio.DBusCapabilityFlags.UNIX_FD_PASSING
        assert server.get_peer_credentials().get_unix_user() == os.geteuid()
        # A standard interface GDBus answers itself, called from the server
        reply = server.call_sync(None, '/', 'org.freedesktop.DBus.Peer', 'Ping',
                                 None, None, Gio.DBusCallFlags.NONE, TIMEOUT_MS, None)
        assert reply.unpack() == ()
    finally:
        client.close_sync(None)

    # A closed stream is refused, and stays closed
    c, d = Lsock.Stream.new_pair()
    c.close(None)
    with pytest.raises(GLib.Error) as excinfo:
        c.new_dbus_connection(None, Gio.DBusConnectionFlags.NONE, None, None)
    assert_io_error(excinfo, Gio.IOErrorEnum.CLOSED)
    d.close(None)


# -- Listener.new_from_fd -----------------------------------------------------------

def test_listener_new_from_fd_of_a_python_socket(address):
    name, addr = address
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(addr)
    sock.listen(8)
    fd = sock.detach()
    listener = Lsock.Listener.new_from_fd(fd, Lsock.Access.USER)
    try:
        assert listener.is_adopted() is True
        assert listener.get_name().equal(name), listener.get_name().to_string()
        assert listener.get_access() == Lsock.Access.USER
        assert listener.get_reclaim_name() is False
        assert os.get_inheritable(fd) is False

        # A Python client ...
        client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        with client:
            client.settimeout(TIMEOUT)
            client.connect(addr)
            server = listener.accept(None)
            server.set_timeout(TIMEOUT_MS)
            assert server.get_peer_credentials().get_unix_user() == os.geteuid()
            client.sendall(b'ping')
            assert stream_read(server, 4) == b'ping'
            stream_write(server, b'pong')
            assert recv_exactly(client, 4) == b'pong'
            server.close(None)
            assert client.recv(1) == b''

        # ... and an lsock one, while a thread accepts (cancelled if the
        # connection never comes)
        cancellable = Gio.Cancellable()
        accepting = Worker(listener.accept, cancellable)
        accepting.start()
        try:
            client = Lsock.Stream.connect_to(name, None)
            server = accepting.join_result()
        finally:
            cancellable.cancel()
            accepting.join(TIMEOUT)
        client.set_timeout(TIMEOUT_MS)
        server.set_timeout(TIMEOUT_MS)
        stream_write(client, b'lsock')
        assert stream_read(server, 5) == b'lsock'
        client.close(None)
        server.close(None)
    finally:
        listener.close()
    assert listener.is_closed()
    if isinstance(addr, str):
        # Not made by this listener: its file is left in place
        assert stat.S_ISSOCK(os.lstat(addr).st_mode)


def test_listener_made_by_lsock_is_not_adopted():
    listener = Lsock.Listener.new(Lsock.Name.parse('@' + unique('own')))
    try:
        assert listener.is_adopted() is False
    finally:
        listener.close()


def test_listener_new_from_fd_refuses_what_does_not_listen(pipe):
    r, _ = pipe
    connected, other = socket.socketpair()
    bound = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    bound.bind(b'\0' + unique('bound').encode())
    try:
        for fd in (r, connected.fileno(), bound.fileno()):
            with pytest.raises(GLib.Error) as excinfo:
                Lsock.Listener.new_from_fd(fd, Lsock.Access.USER)
            assert_io_error(excinfo, Gio.IOErrorEnum.INVALID_ARGUMENT)
            assert_fd_open(fd)
        # The connected one still is
        connected.sendall(b'x')
        other.settimeout(TIMEOUT)
        assert other.recv(1) == b'x'
    finally:
        for s in (connected, other, bound):
            s.close()
