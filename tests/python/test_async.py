# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Asynchronous use on a GLib main loop through GObject Introspection: the
# "incoming" signal, accept_async, connect_async, cancellation, timeouts.

import gc
import hashlib
import os
import threading


import pytest

from conftest import (Gio, GLib, Lsock, Worker, assert_io_error,
                      read_exactly, run_until, unique, write_all)

PRIO = GLib.PRIORITY_DEFAULT
CHUNK = 65536


def idle_add(context, fn):
    source = GLib.idle_source_new()
    source.set_callback(lambda *a: fn() and False)
    source.attach(context)


class Failures:
    """Exceptions raised in main-loop callbacks, which PyGObject would only
    print: they are kept and re-raised by the test."""

    def __init__(self):
        self.errors = []

    def wrap(self, fn):
        def wrapper(*args):
            try:
                return fn(*args)
            except BaseException as e:  # noqa: B902
                self.errors.append(e)
                return False
        return wrapper

    def check(self):
        if self.errors:
            raise self.errors[0]


class EchoConn:
    """Server side of one connection: reads and writes back what it read,
    asynchronously, until EOF; then closes."""

    def __init__(self, stream, failures):
        self.stream = stream
        self.f = failures
        self.received = 0
        self.closed = False
        self.istream = stream.get_input_stream()
        self.ostream = stream.get_output_stream()

    def read(self):
        self.istream.read_bytes_async(CHUNK, PRIO, None, self.f.wrap(self._read_done))

    def _read_done(self, istream, result):
        data = istream.read_bytes_finish(result).get_data() or b''
        if not data:
            self.stream.close(None)
            self.closed = True
            return
        self.received += len(data)
        self._write(memoryview(data))

    def _write(self, view):
        self.ostream.write_bytes_async(GLib.Bytes.new(bytes(view)), PRIO, None,
                                       self.f.wrap(self._write_done), view)

    def _write_done(self, ostream, result, view):
        n = ostream.write_bytes_finish(result)
        assert 0 < n <= len(view)
        if n < len(view):
            self._write(view[n:])
        else:
            self.read()


class EchoClient:
    """Connects with connect_async, writes @payload asynchronously while
    reading the echo, half-closes after the last byte, reads until EOF."""

    def __init__(self, name, payload, failures):
        self.name = name
        self.payload = payload
        self.f = failures
        self.received = []
        self.stream = None
        self.done = False
        self.written = 0
        Lsock.Stream.connect_to_async(name, None, self.f.wrap(self._connected))

    def _connected(self, source, result):
        assert source is None
        self.stream = Lsock.Stream.connect_to_finish(result)
        assert self.stream.get_name().equal(self.name)
        self._write()
        self.stream.get_input_stream().read_bytes_async(
            CHUNK, PRIO, None, self.f.wrap(self._read_done))

    def _write(self):
        chunk = self.payload[self.written:self.written + CHUNK]
        self.stream.get_output_stream().write_bytes_async(
            GLib.Bytes.new(chunk), PRIO, None, self.f.wrap(self._write_done))

    def _write_done(self, ostream, result):
        n = ostream.write_bytes_finish(result)
        assert n > 0
        self.written += n
        if self.written < len(self.payload):
            self._write()
        else:
            assert self.stream.shutdown(False, True)

    def _read_done(self, istream, result):
        data = istream.read_bytes_finish(result).get_data() or b''
        if not data:
            assert self.written == len(self.payload)
            self.done = True
            self.stream.close(None)
            return
        self.received.append(data)
        istream.read_bytes_async(CHUNK, PRIO, None, self.f.wrap(self._read_done))


def test_incoming_echo_server_many_clients(any_name, main_context):
    failures = Failures()
    listener = Lsock.Listener.new(any_name)
    conns = []

    def on_incoming(lst, stream):
        assert lst is listener
        assert isinstance(stream, Lsock.Stream)
        assert stream.get_name().equal(any_name)
        creds = stream.get_peer_credentials()
        assert creds.get_unix_pid() == os.getpid()
        conn = EchoConn(stream, failures)
        conns.append(conn)
        conn.read()
        return True

    listener.connect('incoming', failures.wrap(on_incoming))
    assert not listener.is_active()
    listener.start()
    assert listener.is_active()

    payloads = [('client %d:' % i).encode() + os.urandom(200_000 + i * 7919)
                for i in range(8)]
    clients = [EchoClient(any_name, p, failures) for p in payloads]
    run_until(lambda: failures.errors or all(c.done for c in clients),
              what='all echo clients')
    failures.check()
    run_until(lambda: failures.errors or (len(conns) == len(clients) and
                                          all(c.closed for c in conns)),
              what='the server to close every connection')
    failures.check()

    assert len(conns) == len(clients)
    for c, p in zip(clients, payloads):
        got = b''.join(c.received)
        assert len(got) == len(p)
        assert hashlib.sha256(got).digest() == hashlib.sha256(p).digest()
        assert got == p
    assert sorted(c.received for c in conns) == sorted(len(p) for p in payloads)

    listener.stop()
    assert not listener.is_active()
    listener.close()


def test_incoming_in_the_context_of_the_thread_that_started(any_name):
    """start() in a thread with its own main context: the signal is emitted
    there, never in the main thread."""
    listener = Lsock.Listener.new(any_name)
    started = threading.Event()
    seen = []
    stop = threading.Event()

    def thread_main():
        ctx = GLib.MainContext.new()
        ctx.push_thread_default()
        try:
            def on_incoming(lst, stream):
                seen.append((threading.get_ident(), stream))
                return True
            listener.connect('incoming', on_incoming)
            listener.start()
            started.set()
            run_until(lambda: len(seen) == 2 or stop.is_set(), context=ctx,
                      what='two incoming peers')
            listener.stop()
        finally:
            ctx.pop_thread_default()
        return threading.get_ident()

    worker = Worker(thread_main)
    worker.start()
    assert started.wait(20)
    try:
        c1 = Lsock.Stream.connect_to(any_name, None)
        c2 = Lsock.Stream.connect_to(any_name, None)
        tid = worker.join_result()
    finally:
        stop.set()
    assert [t for t, _ in seen] == [tid, tid]
    assert tid != threading.get_ident()
    # The accepted streams are connected to our clients
    for (_, s), c in zip(seen, (c1, c2)):
        c.get_output_stream().write_bytes(GLib.Bytes.new(b'x'), None)
        assert s.get_input_stream().read_bytes(1, None).get_data() == b'x'
        s.close(None)
        c.close(None)
    listener.close()


def test_incoming_unhandled_stream_is_closed(any_name, main_context):
    """A handler that keeps no reference: the peer sees EOF."""
    listener = Lsock.Listener.new(any_name)
    calls = []
    listener.connect('incoming', lambda lst, s: calls.append(True) or False)
    listener.start()
    client = Lsock.Stream.connect_to(any_name, None)
    run_until(lambda: calls, what='incoming')
    gc.collect()
    client.set_timeout(20_000)
    assert client.get_input_stream().read_bytes(10, None).get_size() == 0
    client.close(None)
    listener.close()


def test_stop_and_restart(any_name, main_context):
    listener = Lsock.Listener.new(any_name)
    incoming = []
    listener.connect('incoming', lambda lst, s: incoming.append(s) or True)
    listener.start()
    c1 = Lsock.Stream.connect_to(any_name, None)
    run_until(lambda: len(incoming) == 1, what='first incoming')
    listener.stop()
    assert not listener.is_active()
    # While stopped, a peer waits in the backlog and is not emitted
    c2 = Lsock.Stream.connect_to(any_name, None)
    while main_context.iteration(False):
        pass
    assert len(incoming) == 1
    # A synchronous accept gets it
    s2 = listener.accept(None)
    c2.get_output_stream().write_bytes(GLib.Bytes.new(b'2'), None)
    assert s2.get_input_stream().read_bytes(1, None).get_data() == b'2'
    # start() again: emitted again
    listener.start()
    c3 = Lsock.Stream.connect_to(any_name, None)
    run_until(lambda: len(incoming) == 2, what='incoming after restart')
    for s in (c1, c2, c3, s2, *incoming):
        s.close(None)
    listener.close()
    assert not listener.is_active()


def test_accept_async_and_connect_async(any_name, main_context):
    failures = Failures()
    listener = Lsock.Listener.new(any_name)
    res = {}

    def accepted(lst, result):
        assert lst is listener
        res['server'] = lst.accept_finish(result)

    def connected(source, result):
        res['client'] = Lsock.Stream.connect_to_finish(result)

    listener.accept_async(None, failures.wrap(accepted))
    Lsock.Stream.connect_to_async(any_name, None, failures.wrap(connected))
    run_until(lambda: failures.errors or len(res) == 2, what='accept and connect')
    failures.check()
    server, client = res['server'], res['client']
    assert isinstance(server, Lsock.Stream) and isinstance(client, Lsock.Stream)

    # Bytes both ways, asynchronously
    def wrote(ostream, result):
        res.setdefault('wrote', []).append(ostream.write_bytes_finish(result))

    def read(istream, result, key):
        res[key] = istream.read_bytes_finish(result).get_data()

    client.get_output_stream().write_bytes_async(
        GLib.Bytes.new(b'async hello'), PRIO, None, failures.wrap(wrote))
    server.get_output_stream().write_bytes_async(
        GLib.Bytes.new(b'async reply'), PRIO, None, failures.wrap(wrote))
    server.get_input_stream().read_bytes_async(
        100, PRIO, None, failures.wrap(read), 'server-got')
    client.get_input_stream().read_bytes_async(
        100, PRIO, None, failures.wrap(read), 'client-got')
    run_until(lambda: failures.errors or ('server-got' in res and 'client-got' in res),
              what='async reads')
    failures.check()
    assert res['server-got'] == b'async hello'
    assert res['client-got'] == b'async reply'
    assert res['wrote'] == [11, 11]

    # Peer close: an async read gets EOF
    client.close(None)
    server.get_input_stream().read_bytes_async(
        100, PRIO, None, failures.wrap(read), 'eof')
    run_until(lambda: failures.errors or 'eof' in res, what='EOF')
    failures.check()
    assert res['eof'] in (b'', None)
    server.close(None)
    listener.close()


def test_accept_async_queued_peer(any_name, main_context):
    """A peer that connected before accept_async is accepted at once."""
    listener = Lsock.Listener.new(any_name)
    client = Lsock.Stream.connect_to(any_name, None)
    res = []
    listener.accept_async(None, lambda lst, r: res.append(lst.accept_finish(r)))
    run_until(lambda: res, what='accept_async')
    assert isinstance(res[0], Lsock.Stream)
    res[0].close(None)
    client.close(None)
    listener.close()


def test_cancel_pending_accept_async(any_name, main_context):
    listener = Lsock.Listener.new(any_name)
    cancellable = Gio.Cancellable()
    results = []

    def done(lst, result):
        try:
            results.append(lst.accept_finish(result))
        except GLib.Error as e:
            results.append(e)

    listener.accept_async(cancellable, done)
    # Let the accept become pending in the loop, then cancel it from an idle
    idle_add(main_context, cancellable.cancel)
    run_until(lambda: results, what='the cancelled accept')
    assert len(results) == 1
    assert_io_error(results[0], Gio.IOErrorEnum.CANCELLED)
    # Exactly once, even after more iterations
    while main_context.iteration(False):
        pass
    assert len(results) == 1

    # The listener is still usable; the cancelled accept took no peer
    listener.accept_async(None, done)
    client = Lsock.Stream.connect_to(any_name, None)
    run_until(lambda: len(results) == 2, what='the second accept')
    assert isinstance(results[1], Lsock.Stream)
    results[1].close(None)
    client.close(None)
    listener.close()


def test_accept_async_already_cancelled(any_name, main_context):
    listener = Lsock.Listener.new(any_name)
    cancellable = Gio.Cancellable()
    cancellable.cancel()
    results = []

    def done(lst, result):
        try:
            results.append(lst.accept_finish(result))
        except GLib.Error as e:
            results.append(e)

    listener.accept_async(cancellable, done)
    run_until(lambda: results, what='the cancelled accept')
    assert_io_error(results[0], Gio.IOErrorEnum.CANCELLED)
    listener.close()


def test_close_fails_pending_accept_async(any_name, main_context):
    listener = Lsock.Listener.new(any_name)
    results = []

    def done(lst, result):
        try:
            results.append(lst.accept_finish(result))
        except GLib.Error as e:
            results.append(e)

    listener.accept_async(None, done)
    listener.accept_async(None, done)
    listener.close()
    run_until(lambda: len(results) == 2, what='the failed accepts')
    for r in results:
        assert_io_error(r, Gio.IOErrorEnum.CLOSED)
    while main_context.iteration(False):
        pass
    assert len(results) == 2


def test_connect_async_errors(tmpdir_private, main_context):
    results = []

    def done(source, result):
        try:
            results.append(Lsock.Stream.connect_to_finish(result))
        except GLib.Error as e:
            results.append(e)

    Lsock.Stream.connect_to_async(Lsock.Name.parse('@' + unique('missing')), None, done)
    Lsock.Stream.connect_to_async(Lsock.Name.parse(os.path.join(tmpdir_private, 'no')),
                               None, done)
    cancellable = Gio.Cancellable()
    cancellable.cancel()
    listener = Lsock.Listener.new(Lsock.Name.parse('@' + unique('live')))
    Lsock.Stream.connect_to_async(listener.get_name(), cancellable, done)
    run_until(lambda: len(results) == 3, what='three connects')
    assert_io_error(results[0], Gio.IOErrorEnum.NOT_FOUND)
    assert_io_error(results[1], Gio.IOErrorEnum.NOT_FOUND)
    assert_io_error(results[2], Gio.IOErrorEnum.CANCELLED)
    listener.close()


def test_async_read_timeout(any_name, main_context):
    listener = Lsock.Listener.new(any_name)
    client = Lsock.Stream.connect_to(any_name, None)
    server = listener.accept(None)
    server.set_timeout(50)
    results = []

    def done(istream, result):
        try:
            results.append(istream.read_bytes_finish(result))
        except GLib.Error as e:
            results.append(e)

    server.get_input_stream().read_bytes_async(10, PRIO, None, done)
    run_until(lambda: results, what='the timed-out read')
    assert_io_error(results[0], Gio.IOErrorEnum.TIMED_OUT)
    # Usable afterwards
    client.get_output_stream().write_bytes(GLib.Bytes.new(b'ok'), None)
    server.get_input_stream().read_bytes_async(10, PRIO, None, done)
    run_until(lambda: len(results) == 2, what='the read')
    assert results[1].get_data() == b'ok'
    client.close(None)
    server.close(None)
    listener.close()


def test_cancel_async_read(any_name, main_context):
    listener = Lsock.Listener.new(any_name)
    client = Lsock.Stream.connect_to(any_name, None)
    server = listener.accept(None)
    cancellable = Gio.Cancellable()
    results = []

    def done(istream, result):
        try:
            results.append(istream.read_bytes_finish(result))
        except GLib.Error as e:
            results.append(e)

    server.get_input_stream().read_bytes_async(10, PRIO, cancellable, done)
    idle_add(main_context, cancellable.cancel)
    run_until(lambda: results, what='the cancelled read')
    assert_io_error(results[0], Gio.IOErrorEnum.CANCELLED)
    client.close(None)
    server.close(None)
    listener.close()


def test_pollable_source(any_name, main_context):
    listener = Lsock.Listener.new(any_name)
    client = Lsock.Stream.connect_to(any_name, None)
    server = listener.accept(None)
    istream = server.get_input_stream()
    assert not istream.is_readable()
    got = []

    def readable(*args):
        # (read_nonblocking() is not usable from PyGObject: its buffer is
        # caller-allocated; the source only fires when a read won't block)
        assert istream.is_readable()
        got.append(istream.read_bytes(100, None).get_data())
        return GLib.SOURCE_REMOVE

    source = istream.create_source(None)
    source.set_callback(readable)
    source.attach(main_context)
    client.get_output_stream().write_bytes(GLib.Bytes.new(b'poll me'), None)
    run_until(lambda: got, what='the pollable source')
    assert got == [b'poll me']
    source.destroy()
    assert not istream.is_readable()
    # Writable until the buffer is full
    assert client.get_output_stream().is_writable()
    client.close(None)
    server.close(None)
    listener.close()


def test_accept_results_are_fresh(any_name, main_context):
    """Each accept reports with a new Lsock.AsyncResult (a public class,
    no private one shows), which keeps its source object while Python
    keeps it."""
    listener = Lsock.Listener.new(any_name)
    results = []
    for i in range(2):
        listener.accept_async(None, lambda l, r: results.append(r))
        client = Lsock.Stream.connect_to(any_name, None)
        run_until(lambda: len(results) == i + 1, what='accept %d' % i)
        client.close(None)
    first, second = results
    assert first is not second
    assert type(first) is Lsock.AsyncResult and type(second) is Lsock.AsyncResult
    assert isinstance(first, Gio.AsyncResult)
    assert first.get_source_object() == listener
    assert listener.accept_finish(second) is not None
    assert listener.accept_finish(first) is not None
    listener.close()


def test_uninitialised_listener_says_so(any_name):
    """Made with properties but not initialised: not "closed", but plainly
    not initialised; init() then listens, with the properties given."""
    listener = Lsock.Listener(name=any_name, backlog=3, replace_stale=False)
    with pytest.raises(GLib.Error) as exc:
        listener.accept(None)
    assert_io_error(exc, Gio.IOErrorEnum.NOT_INITIALIZED)
    assert 'not initialised' in exc.value.message
    assert listener.init(None)
    assert listener.get_backlog() == 3
    assert not listener.get_replace_stale()
    client = Lsock.Stream.connect_to(any_name, None)
    server = listener.accept(None)
    write_all(client.get_output_stream(), b'ok')
    assert server.get_input_stream().read_bytes(2, None).get_data() == b'ok'
    client.close(None)
    server.close(None)
    listener.close()


def test_listener_without_a_name(no_glib_warnings):
    """No name: init() fails with INVALID_ARGUMENT, and nothing logs a
    critical."""
    listener = Lsock.Listener()
    with pytest.raises(GLib.Error) as exc:
        listener.init(None)
    assert_io_error(exc, Gio.IOErrorEnum.INVALID_ARGUMENT)


@pytest.mark.parametrize('flags', [Gio.OutputStreamSpliceFlags.NONE,
                                   Gio.OutputStreamSpliceFlags.CLOSE_SOURCE |
                                   Gio.OutputStreamSpliceFlags.CLOSE_TARGET])
def test_splice_from_memory_into_stream(flags):
    """splice_async() into an lsock stream from another kind of stream:
    every byte arrives, the count is right, the flags are honoured."""
    a, b = Lsock.Stream.new_pair()
    data = bytes(i * 13 % 251 for i in range(256)) * 4099  # ~1 MiB, odd size
    source = Gio.MemoryInputStream.new_from_bytes(GLib.Bytes.new(data))
    reader = Worker(read_exactly, b.get_input_stream(), len(data))
    reader.start()
    state = {}

    def done(stream, result):
        state['n'] = stream.splice_finish(result)

    a.get_output_stream().splice_async(source, flags, PRIO, None, done)
    run_until(lambda: 'n' in state, what='the splice')
    got = reader.join_result()

    assert state['n'] == len(data)
    assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest()
    closing = bool(flags & Gio.OutputStreamSpliceFlags.CLOSE_SOURCE)
    assert source.is_closed() == closing
    assert a.get_output_stream().is_closed() == closing
    a.close(None)
    b.close(None)

