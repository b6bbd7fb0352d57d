# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The fast path from Python: send_bytes_async() writes all of a large
# buffer, which PyGObject 3.42's write_all_async() (bytes freed too early)
# and write_bytes_async() (short writes) do not; receive_bytes_async()
# reads it back; the end of the stream is empty; the pending flags hold.

import hashlib

from conftest import GLib, Gio, Lsock, TIMEOUT, assert_io_error


def run_until(loop, cond):
    """Runs @loop until cond() holds, or fails after TIMEOUT."""
    timed_out = []

    def on_timeout():
        timed_out.append(True)
        loop.quit()
        return GLib.SOURCE_REMOVE

    source = GLib.timeout_add(int(TIMEOUT * 1000), on_timeout)
    while not cond() and not timed_out:
        loop.get_context().iteration(True)
    if not timed_out:
        GLib.source_remove(source)
    assert cond(), 'timed out'


def test_big_send_all_and_receive():
    a, b = Lsock.Stream.new_pair()
    data = bytes(i * 7 % 251 for i in range(256)) * (32 * 1024)  # 8 MiB
    loop = GLib.MainLoop()
    got = bytearray()
    state = {}

    def sent(stream, result):
        state['sent'] = stream.send_bytes_finish(result)
        a.close(None)

    def received(stream, result):
        chunk = stream.receive_bytes_finish(result)
        if chunk.get_size() == 0:
            state['eof'] = True
            return
        state['pieces'] = state.get('pieces', 0) + 1
        got.extend(chunk.get_data())
        stream.receive_bytes_async(65536, GLib.PRIORITY_DEFAULT, None, received)

    b.receive_bytes_async(65536, GLib.PRIORITY_DEFAULT, None, received)
    # A temporary buffer: the call holds it until done
    a.send_bytes_async(GLib.Bytes.new(bytes(data)), GLib.PRIORITY_DEFAULT, None, sent)
    run_until(loop, lambda: 'eof' in state)

    assert state['sent'] is True
    assert state['pieces'] > 1
    assert len(got) == len(data)
    assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest()
    b.close(None)


def test_sync_forms_and_eof():
    a, b = Lsock.Stream.new_pair()
    assert a.send_bytes(GLib.Bytes.new(b'hello'), None)
    assert b.receive_bytes(100, None).get_data() == b'hello'
    a.close(None)
    assert b.receive_bytes(100, None).get_size() == 0


def test_pending():
    a, b = Lsock.Stream.new_pair()
    loop = GLib.MainLoop()
    results = []

    b.receive_bytes_async(10, GLib.PRIORITY_DEFAULT, None,
                          lambda s, r: results.append(('first', r)))
    b.receive_bytes_async(10, GLib.PRIORITY_DEFAULT, None,
                          lambda s, r: results.append(('second', r)))
    run_until(loop, lambda: len(results) == 1)
    assert results[0][0] == 'second'
    try:
        b.receive_bytes_finish(results[0][1])
        raise AssertionError('a second receive while one is pending must fail')
    except GLib.Error as e:
        assert_io_error(e, Gio.IOErrorEnum.PENDING)

    a.send_bytes(GLib.Bytes.new(b'x'), None)
    run_until(loop, lambda: len(results) == 2)
    assert b.receive_bytes_finish(results[1][1]).get_data() == b'x'
    a.close(None)
    b.close(None)


def test_pending_substream_made_meanwhile():
    # The substreams are made on first use: asked for while a receive is
    # pending, the input stream is busy all the same, and free once it is
    # done; the same stream every time
    a, b = Lsock.Stream.new_pair()
    loop = GLib.MainLoop()
    results = []

    b.receive_bytes_async(10, GLib.PRIORITY_DEFAULT, None,
                          lambda s, r: results.append(r))
    try:
        b.get_input_stream().read_bytes(1, None)
        raise AssertionError('a read while a receive is pending must fail')
    except GLib.Error as e:
        assert_io_error(e, Gio.IOErrorEnum.PENDING)
    assert b.get_input_stream() is b.get_input_stream()

    a.send_bytes(GLib.Bytes.new(b'yz'), None)
    run_until(loop, lambda: len(results) == 1)
    assert b.receive_bytes_finish(results[0]).get_data() == b'yz'
    a.send_bytes(GLib.Bytes.new(b'w'), None)
    assert b.get_input_stream().read_bytes(1, None).get_data() == b'w'
    a.close(None)
    b.close(None)
