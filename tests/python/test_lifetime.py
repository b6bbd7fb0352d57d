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
    client = Lsock.Stream.connect(any_name, None)
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
    client = Lsock.Stream.connect(any_name, None)
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
    Lsock.Stream.connect_async(any_name, None,
                               lambda s, r: got.__setitem__('c', Lsock.Stream.connect_finish(r)))
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
    client = Lsock.Stream.connect(any_name, None)
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
