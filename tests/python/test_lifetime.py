# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Objects are released: no reference cycles or leaked task references keep
# listeners, streams or names alive once Python lets go of them. Checked
# with GObject weak references, which fire when the C object is finalized.

import gc
import os

from conftest import GLib, Lsock, run_until, write_all


class Finalized:
    def __init__(self):
        self.names = []
        self._refs = []

    def watch(self, obj, label):
        self._refs.append(obj.weak_ref(self.names.append, label))

    def check(self, *labels):
        gc.collect()
        assert sorted(self.names) == sorted(labels), self.names


def test_sync_objects_are_finalized(any_name):
    fin = Finalized()
    listener = Lsock.Listener.new(any_name)
    client = Lsock.Stream.connect_to(any_name, None)
    server = listener.accept(None)
    for obj, label in ((listener, 'listener'), (client, 'client'),
                       (server, 'server'), (client.get_input_stream(), 'cin'),
                       (server.get_output_stream(), 'sout')):
        fin.watch(obj, label)
    write_all(client.get_output_stream(), b'x')
    assert server.get_input_stream().read_bytes(1, None).get_data() == b'x'
    del listener, client, server, obj
    fin.check('listener', 'client', 'server', 'cin', 'sout')


def test_dropping_a_stream_closes_it(any_name):
    fin = Finalized()
    listener = Lsock.Listener.new(any_name)
    client = Lsock.Stream.connect_to(any_name, None)
    server = listener.accept(None)
    fin.watch(client, 'client')
    del client                          # never closed explicitly
    fin.check('client')
    server.set_timeout(20_000)
    assert server.get_input_stream().read_bytes(10, None).get_size() == 0
    server.close(None)
    listener.close()


def test_dropping_a_listener_closes_it(tmpdir_private):
    fin = Finalized()
    path = os.path.join(tmpdir_private, 'sock')
    name = Lsock.Name.parse(path)
    listener = Lsock.Listener.new(name)
    fin.watch(listener, 'listener')
    assert os.path.exists(path)
    del listener                        # never closed explicitly
    fin.check('listener')
    assert not os.path.lexists(path)    # reclaimed on dispose
    # and the name is free again
    Lsock.Listener.new(name).close()


def test_async_objects_are_finalized(any_name, main_context):
    fin = Finalized()
    listener = Lsock.Listener.new(any_name)
    fin.watch(listener, 'listener')
    got = {}
    listener.accept_async(None, lambda l, r: got.__setitem__('s', l.accept_finish(r)))
    Lsock.Stream.connect_to_async(any_name, None,
                               lambda s, r: got.__setitem__('c', Lsock.Stream.connect_to_finish(r)))
    run_until(lambda: len(got) == 2, what='accept and connect')
    fin.watch(got['s'], 'server')
    fin.watch(got['c'], 'client')
    reads = []
    got['s'].get_input_stream().read_bytes_async(
        10, GLib.PRIORITY_DEFAULT, None,
        lambda i, r: reads.append(i.read_bytes_finish(r).get_data()))
    got['c'].get_output_stream().write_bytes(GLib.Bytes.new(b'abc'), None)
    run_until(lambda: reads, what='the read')
    assert reads == [b'abc']
    # Let GTask callbacks and sources finish
    while main_context.iteration(False):
        pass
    got.clear()
    del listener
    fin.check('listener', 'server', 'client')


def test_incoming_listener_is_finalized_after_close(any_name, main_context):
    fin = Finalized()
    listener = Lsock.Listener.new(any_name)
    fin.watch(listener, 'listener')
    seen = []
    listener.connect('incoming', lambda l, s: seen.append(s) or True)
    listener.start()
    client = Lsock.Stream.connect_to(any_name, None)
    run_until(lambda: seen, what='incoming')
    fin.watch(seen[0], 'server')
    listener.close()
    while main_context.iteration(False):
        pass
    seen.clear()
    client.close(None)
    del listener
    fin.check('listener', 'server')


def test_cancelled_accept_releases_listener(any_name, main_context):
    from gi.repository import Gio
    fin = Finalized()
    listener = Lsock.Listener.new(any_name)
    fin.watch(listener, 'listener')
    cancellable = Gio.Cancellable()
    results = []

    def done(lst, res):
        try:
            lst.accept_finish(res)
        except GLib.Error as e:
            results.append(e.code)

    listener.accept_async(cancellable, done)
    cancellable.cancel()
    run_until(lambda: results, what='the cancelled accept')
    while main_context.iteration(False):
        pass
    del listener, done
    fin.check('listener')


# ---- GIO's lifetimes, as bindings rely on them --------------------------

def test_started_listener_serves_without_a_wrapper(any_name, main_context):
    """As a Gio.SocketService: start() keeps the listener alive when the
    last Python reference goes, until stop()."""
    fin = Finalized()
    listener = Lsock.Listener.new(any_name)
    fin.watch(listener, 'listener')
    served = []

    def on_incoming(lst, stream):
        served.append(stream)
        if len(served) == 2:
            lst.stop()
        return True

    listener.connect('incoming', on_incoming)
    listener.start()
    assert listener.props.active
    del listener
    fin.check()                         # not finalized: it is serving

    clients = [Lsock.Stream.connect_to(any_name, None) for _ in range(2)]
    run_until(lambda: len(served) == 2, what='two incoming peers')
    write_all(served[0].get_output_stream(), b'hi')
    assert clients[0].get_input_stream().read_bytes(2, None).get_data() == b'hi'

    # stop() in the handler let go of it
    while main_context.iteration(False):
        pass
    served.clear()
    for c in clients:
        c.close(None)
    del on_incoming
    fin.check('listener')


def test_dropped_stream_finishes_its_pending_read(any_name, main_context):
    """As a Gio.SocketConnection: a stream dropped with a read pending
    stays open until the read is done."""
    fin = Finalized()
    listener = Lsock.Listener.new(any_name)
    client = Lsock.Stream.connect_to(any_name, None)
    server = listener.accept(None)
    fin.watch(server, 'server')
    reads = []
    server.get_input_stream().read_bytes_async(
        16, GLib.PRIORITY_DEFAULT, None,
        lambda i, r: reads.append(i.read_bytes_finish(r).get_data()))
    del server
    fin.check('server')                 # the GIOStream goes, the read stays

    write_all(client.get_output_stream(), b'late data')
    run_until(lambda: reads, what='the pending read')
    assert reads == [b'late data']
    while main_context.iteration(False):
        pass
    # Nothing holds the connection now: it is closed
    client.set_timeout(20_000)
    assert client.get_input_stream().read_bytes(16, None).get_size() == 0
    client.close(None)
    listener.close()
