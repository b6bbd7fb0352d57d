# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Synchronous use through GObject Introspection: listen, connect, accept,
# bytes both ways, EOF, half-close, peer credentials, timeouts.

import hashlib
import os
import stat
import time

import pytest

from conftest import (Gio, GLib, GObject, Lsock, Worker, assert_io_error, read_exactly,
                      read_to_eof, unique, write_all)


def connect_pair(name):
    listener = Lsock.Listener.new(name)
    client = Lsock.Stream.connect_to(name, None)
    server = listener.accept(None)
    return listener, client, server


def test_round_trip(any_name):
    listener, client, server = connect_pair(any_name)
    assert isinstance(client, Lsock.Stream) and isinstance(server, Lsock.Stream)
    assert isinstance(client, Gio.IOStream)
    assert client.get_name().equal(any_name)
    assert server.get_name().equal(any_name)

    cin, cout = client.get_input_stream(), client.get_output_stream()
    sin, sout = server.get_input_stream(), server.get_output_stream()
    assert isinstance(cin, Gio.PollableInputStream) and cin.can_poll()
    assert isinstance(cout, Gio.PollableOutputStream) and cout.can_poll()

    msg = b'ping\x00\xff from client'
    write_all(cout, msg)
    assert read_exactly(sin, len(msg)) == msg
    msg = b'pong from server'
    write_all(sout, msg)
    assert read_exactly(cin, len(msg)) == msg

    # Nothing extra: no framing, no metadata
    assert not sin.is_readable()

    # EOF after the client closes; reads then return 0 bytes, repeatedly
    client.close(None)
    assert client.is_closed()
    assert sin.read_bytes(100, None).get_size() == 0
    assert sin.read_bytes(100, None).get_size() == 0
    server.close(None)
    listener.close()


def test_several_sequential_clients(any_name):
    listener = Lsock.Listener.new(any_name)
    for i in range(5):
        client = Lsock.Stream.connect_to(any_name, None)
        server = listener.accept(None)
        msg = ('client %d' % i).encode()
        write_all(client.get_output_stream(), msg)
        assert read_exactly(server.get_input_stream(), len(msg)) == msg
        client.close(None)
        server.close(None)
    listener.close()


def test_big_transfer_both_ways_at_once(any_name):
    """1 MiB each way at the same time: each side writes in one thread and
    reads in another, which needs several reads and would deadlock if the
    stream did not support a concurrent read and write."""
    listener, client, server = connect_pair(any_name)
    a = os.urandom(1 << 20)
    b = os.urandom(1 << 20)

    def send_then_half_close(stream, data):
        write_all(stream.get_output_stream(), data)
        assert stream.shutdown(False, True)

    writers = [Worker(send_then_half_close, client, a),
               Worker(send_then_half_close, server, b)]
    reader = Worker(read_to_eof, server.get_input_stream())
    for w in writers + [reader]:
        w.start()
    got_b = read_to_eof(client.get_input_stream())
    got_a = reader.join_result()
    for w in writers:
        w.join_result()
    assert hashlib.sha256(got_a).digest() == hashlib.sha256(a).digest()
    assert hashlib.sha256(got_b).digest() == hashlib.sha256(b).digest()
    client.close(None)
    server.close(None)
    listener.close()


def test_half_close(any_name):
    listener, client, server = connect_pair(any_name)
    write_all(client.get_output_stream(), b'request')
    assert client.shutdown(False, True)
    # The server sees the request, then EOF, and can still answer
    assert read_to_eof(server.get_input_stream()) == b'request'
    write_all(server.get_output_stream(), b'reply')
    server.close(None)
    assert read_to_eof(client.get_input_stream()) == b'reply'
    # Writing after shutting down the write side fails
    with pytest.raises(GLib.Error) as exc:
        client.get_output_stream().write_bytes(GLib.Bytes.new(b'x'), None)
    assert_io_error(exc, Gio.IOErrorEnum.BROKEN_PIPE,
                    Gio.IOErrorEnum.CONNECTION_CLOSED,
                    Gio.IOErrorEnum.CLOSED)
    client.close(None)
    listener.close()


def test_shutdown_nothing_is_noop(any_name):
    listener, client, server = connect_pair(any_name)
    assert client.shutdown(False, False)
    write_all(client.get_output_stream(), b'still open')
    assert read_exactly(server.get_input_stream(), 10) == b'still open'
    client.close(None)
    with pytest.raises(GLib.Error) as exc:
        client.shutdown(False, True)
    assert_io_error(exc, Gio.IOErrorEnum.CLOSED)
    server.close(None)
    listener.close()


def test_peer_credentials(any_name):
    listener, client, server = connect_pair(any_name)
    for stream in (client, server):
        creds = stream.get_peer_credentials()
        assert isinstance(creds, Gio.Credentials)
        assert creds.get_unix_pid() == os.getpid()
        assert creds.get_unix_user() == os.getuid()
        assert creds.is_same_user(Gio.Credentials.new())
    client.close(None)
    with pytest.raises(GLib.Error) as exc:
        client.get_peer_credentials()
    assert_io_error(exc, Gio.IOErrorEnum.CLOSED)
    server.close(None)
    listener.close()


def test_timeout_on_blocking_read(any_name):
    listener, client, server = connect_pair(any_name)
    assert server.get_timeout() == 0
    notified = []
    # The static constructor is connect_to() for bindings: connect() is
    # GObject's, on streams too
    assert Lsock.Stream.connect is GObject.Object.connect
    server.connect('notify::timeout', lambda *a: notified.append(True))
    server.set_timeout(50)
    assert server.get_timeout() == 50
    assert server.props.timeout == 50
    assert notified == [True]

    start = time.monotonic()
    with pytest.raises(GLib.Error) as exc:
        server.get_input_stream().read_bytes(10, None)
    elapsed = time.monotonic() - start
    err = assert_io_error(exc, Gio.IOErrorEnum.TIMED_OUT)
    assert any_name.to_string() in err.message, err.message
    assert 0.04 <= elapsed < 10, elapsed

    # The stream stays usable after a timeout
    write_all(client.get_output_stream(), b'late')
    assert read_exactly(server.get_input_stream(), 4) == b'late'

    # 0 means no timeout again: a read that waits for data in another
    # thread succeeds after the old timeout has passed
    server.set_timeout(0)
    reader = Worker(read_exactly, server.get_input_stream(), 5)
    reader.start()
    reader.join(0.2)                 # far longer than 50 ms
    assert reader.is_alive(), 'read returned without data'
    write_all(client.get_output_stream(), b'later')
    assert reader.join_result() == b'later'
    client.close(None)
    server.close(None)
    listener.close()


def test_timeout_on_blocking_write(any_name):
    listener, client, server = connect_pair(any_name)
    client.set_timeout(50)
    out = client.get_output_stream()
    chunk = GLib.Bytes.new(b'w' * 65536)
    sent = 0
    with pytest.raises(GLib.Error) as exc:
        # Nobody reads: the socket buffer fills, then a write times out
        while sent < (256 << 20):
            sent += out.write_bytes(chunk, None)
    assert_io_error(exc, Gio.IOErrorEnum.TIMED_OUT)
    assert sent > 0
    # Still usable: the server reads everything sent so far
    got = read_exactly(server.get_input_stream(), sent)
    assert got == b'w' * sent
    client.close(None)
    server.close(None)
    listener.close()


def test_blocking_accept_in_thread(any_name):
    listener = Lsock.Listener.new(any_name)
    acceptor = Worker(listener.accept, None)
    acceptor.start()
    client = Lsock.Stream.connect_to(any_name, None)
    server = acceptor.join_result()
    write_all(server.get_output_stream(), b'hi')
    assert read_exactly(client.get_input_stream(), 2) == b'hi'
    client.close(None)
    server.close(None)
    listener.close()


def test_cancel_blocking_accept(any_name):
    listener = Lsock.Listener.new(any_name)
    cancellable = Gio.Cancellable()
    acceptor = Worker(listener.accept, cancellable)
    acceptor.start()
    acceptor.join(0.1)
    assert acceptor.is_alive(), 'accept returned with nobody connecting'
    cancellable.cancel()
    with pytest.raises(GLib.Error) as exc:
        acceptor.join_result()
    assert_io_error(exc, Gio.IOErrorEnum.CANCELLED)
    # The listener still works
    client = Lsock.Stream.connect_to(any_name, None)
    server = listener.accept(None)
    assert server is not None
    client.close(None)
    server.close(None)
    listener.close()


def test_cancel_blocking_read(any_name):
    listener, client, server = connect_pair(any_name)
    cancellable = Gio.Cancellable()
    reader = Worker(server.get_input_stream().read_bytes, 10, cancellable)
    reader.start()
    reader.join(0.1)
    assert reader.is_alive(), 'read returned with nothing to read'
    cancellable.cancel()
    with pytest.raises(GLib.Error) as exc:
        reader.join_result()
    assert_io_error(exc, Gio.IOErrorEnum.CANCELLED)
    client.close(None)
    server.close(None)
    listener.close()


def test_close_from_another_thread_wakes_a_blocked_read(any_name):
    listener, client, server = connect_pair(any_name)
    reader = Worker(server.get_input_stream().read_bytes, 10, None)
    reader.start()
    reader.join(0.1)
    assert reader.is_alive()
    # GIOStream.close while a read is pending: the read must end (an
    # error or EOF), never hang
    try:
        server.close(None)
    except GLib.Error as e:
        assert_io_error(e, Gio.IOErrorEnum.PENDING)
    try:
        b = reader.join_result()
        assert b.get_size() == 0
    except GLib.Error as e:
        assert_io_error(e, Gio.IOErrorEnum.CLOSED, Gio.IOErrorEnum.CANCELLED,
                        Gio.IOErrorEnum.CONNECTION_CLOSED)
    client.close(None)
    listener.close()


def test_path_listener_removes_its_file(tmpdir_private):
    path = os.path.join(tmpdir_private, 'sock')
    listener = Lsock.Listener.new(Lsock.Name.parse(path))
    st = os.lstat(path)
    assert stat.S_ISSOCK(st.st_mode)
    # LSOCK_ACCESS_USER (the default): only the owner may connect
    assert stat.S_IMODE(st.st_mode) & 0o077 == 0, oct(st.st_mode)
    assert listener.get_access() == Lsock.Access.USER
    assert listener.get_reclaim_name()
    listener.close()
    assert listener.is_closed()
    assert not os.path.lexists(path)


def test_generic_name_round_trip():
    name = Lsock.Name.parse(unique('generic'))
    listener, client, server = connect_pair(name)
    write_all(client.get_output_stream(), b'generic')
    assert read_exactly(server.get_input_stream(), 7) == b'generic'
    client.close(None)
    server.close(None)
    listener.close()
