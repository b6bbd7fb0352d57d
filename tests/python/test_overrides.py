# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The PyGObject overrides, bindings/python/gi/overrides/Lsock.py, loaded
# uninstalled (tests/meson.build puts bindings/python on PYTHONPATH): names
# compare and hash by value; send_bytes() and send_bytes_async() take Python
# bytes-like objects and send all of them.

import array
import gc
import hashlib
import os
import sys

import pytest

from conftest import GLib, GObject, Lsock, TIMEOUT, Worker, read_exactly

BIG = 8 << 20  # 8 MiB: far more than a socket buffer holds


def big_data():
    return bytes(i * 7 % 251 for i in range(256)) * (BIG // 256)


def run_loop(loop, cond):
    """Runs @loop until it quits; fails if that takes more than TIMEOUT or
    cond() is then false."""
    timed_out = []

    def on_timeout():
        timed_out.append(True)
        loop.quit()
        return GLib.SOURCE_REMOVE

    source = GLib.timeout_source_new(int(TIMEOUT * 1000))
    source.set_callback(on_timeout)
    source.attach(loop.get_context())
    try:
        loop.run()
    finally:
        source.destroy()
    assert not timed_out, 'timed out after %.0f s' % TIMEOUT
    assert cond()


# --- the override is the one of this source tree, and is in effect ---------

def test_override_is_loaded_uninstalled():
    expected = os.environ.get('LSOCK_TEST_PYTHON_OVERRIDES')
    if not expected:
        pytest.skip('LSOCK_TEST_PYTHON_OVERRIDES is not set (run through meson test)')
    module = sys.modules.get('gi.overrides.Lsock')
    assert module is not None, 'gi.overrides.Lsock was not imported'
    # An installed Lsock.py in PyGObject's own directory would come first
    assert os.path.realpath(module.__file__) == os.path.realpath(expected), \
        'loaded %s, not the uninstalled %s (a stale installed copy?)' % (
            module.__file__, expected)
    assert Lsock.Name is module.Name
    assert Lsock.Stream is module.Stream


def test_override_is_in_effect():
    assert Lsock.Name.__eq__ is not GObject.Object.__eq__
    assert Lsock.Name.__ne__ is not GObject.Object.__ne__
    assert Lsock.Name.__hash__ is not GObject.Object.__hash__
    # Objects the library makes get the override class
    assert type(Lsock.Name.parse('@x')) is Lsock.Name
    assert type(Lsock.Name.new_path('/x')) is Lsock.Name
    a, b = Lsock.Stream.new_pair()
    assert type(a) is Lsock.Stream and type(b) is Lsock.Stream
    a.close(None)
    b.close(None)


# --- Lsock.Name: ==, !=, hash, str, repr ------------------------------------

# (a, b): equal pairs, each a distinct object
EQUAL = [
    pytest.param(lambda: Lsock.Name.parse('@x'), lambda: Lsock.Name.parse('@x'),
                 id='namespaced'),
    pytest.param(lambda: Lsock.Name.parse('@x'), lambda: Lsock.Name.parse('\\\\.\\pipe\\x'),
                 id='namespaced-pipe-syntax'),
    pytest.param(lambda: Lsock.Name.parse('@x'), lambda: Lsock.Name.new_namespaced('x'),
                 id='namespaced-ctor'),
    pytest.param(lambda: Lsock.Name.parse('/run/x/sock'),
                 lambda: Lsock.Name.parse('/run/x/sock'), id='path'),
    pytest.param(lambda: Lsock.Name.parse('./foo'), lambda: Lsock.Name.new_path('foo'),
                 id='relative-path'),
]

# (a, b): different names
DIFFERENT = [
    pytest.param(lambda: Lsock.Name.parse('@x'), lambda: Lsock.Name.parse('@y'),
                 id='namespaced'),
    pytest.param(lambda: Lsock.Name.parse('/run/x'), lambda: Lsock.Name.parse('/run/y'),
                 id='path'),
    pytest.param(lambda: Lsock.Name.parse('@same'), lambda: Lsock.Name.new_path('same'),
                 id='same-bytes-other-kind'),
    # No file system lookup: two spellings of one path are different names
    pytest.param(lambda: Lsock.Name.parse('/tmp/x'), lambda: Lsock.Name.parse('/tmp//x'),
                 id='path-spelling'),
]


@pytest.mark.parametrize('make_a, make_b', EQUAL)
def test_equal_names(make_a, make_b):
    a, b = make_a(), make_b()
    assert a is not b
    assert a == b and b == a
    assert not (a != b) and not (b != a)
    assert hash(a) == hash(b) == a.hash()
    assert a == a and not (a != a)


@pytest.mark.parametrize('make_a, make_b', DIFFERENT)
def test_different_names(make_a, make_b):
    a, b = make_a(), make_b()
    assert a != b and b != a
    assert not (a == b) and not (b == a)


def test_names_as_dict_keys_and_in_sets():
    table = {Lsock.Name.parse('@x'): 'ns', Lsock.Name.parse('/run/x'): 'path'}
    assert table[Lsock.Name.parse('@x')] == 'ns'
    assert table[Lsock.Name.new_namespaced('x')] == 'ns'
    assert table[Lsock.Name.new_path('/run/x')] == 'path'
    assert Lsock.Name.parse('@y') not in table
    assert Lsock.Name.new_path('x') not in table     # a path, not '@x'

    names = {Lsock.Name.parse(s) for s in
             ('@x', '@x', '\\\\.\\pipe\\x', '@y', '/run/x', '/run/x', './x', 'x/y')}
    assert len(names) == 5
    assert Lsock.Name.parse('./x') in names
    assert Lsock.Name.parse('@z') not in names


def test_compare_with_other_types():
    # Not equal, and no failed precondition (the autouse fixture would see it)
    n = Lsock.Name.parse('@x')
    for other in ('@x', None, 1, Lsock.Stream.new_pair()[0]):
        assert not (n == other)
        assert n != other
        assert not (other == n)


@pytest.mark.parametrize('string', ['@foo', '@f o\u00e9', '@it\'s', '/run/x/sock', './foo'])
def test_str_and_repr(string):
    n = Lsock.Name.parse(string)
    assert str(n) == n.to_string() == string
    assert '%s' % n == string
    assert repr(n) == 'Lsock.Name.parse(%r)' % string
    # repr() reads back as an equal name
    assert eval(repr(n), {'Lsock': Lsock}) == n


def test_str_and_repr_of_a_name_without_one():
    n = Lsock.Name()  # no name: to_string() is None
    assert n.to_string() is None
    assert isinstance(repr(n), str) and isinstance(str(n), str)


# --- send_bytes_async() and send_bytes() with Python buffers ----------------

@pytest.mark.parametrize('kind', ['bytes', 'bytearray', 'memoryview'])
def test_send_bytes_async_sends_all_of_a_python_buffer(main_context, kind):
    data = big_data()
    digest = hashlib.sha256(data).digest()
    buf = {'bytes': lambda: data,
           'bytearray': lambda: bytearray(data),
           'memoryview': lambda: memoryview(bytearray(data))}[kind]()
    a, b = Lsock.Stream.new_pair()
    loop = GLib.MainLoop.new(main_context, False)
    got = bytearray()
    state = {}

    def sent(stream, result, tag):
        state['sent'] = stream.send_bytes_finish(result)
        state['tag'] = tag
        stream.close(None)

    def received(stream, result):
        chunk = stream.receive_bytes_finish(result)
        if chunk.get_size() == 0:
            loop.quit()
            return
        state['pieces'] = state.get('pieces', 0) + 1
        got.extend(chunk.get_data())
        stream.receive_bytes_async(65536, GLib.PRIORITY_DEFAULT, None, received)

    b.receive_bytes_async(65536, GLib.PRIORITY_DEFAULT, None, received)
    a.send_bytes_async(buf, GLib.PRIORITY_DEFAULT, None, sent, 'tag')
    # The send does not need the buffer any more: change it and drop it
    if kind != 'bytes':
        buf[:4096] = b'\xff' * 4096
    del buf
    gc.collect()
    run_loop(loop, lambda: 'sent' in state)

    assert state['sent'] is True
    assert state['tag'] == 'tag'
    assert state['pieces'] > 1     # it did have to wait for the reader
    assert len(got) == BIG
    assert hashlib.sha256(got).digest() == digest
    b.close(None)


def test_send_bytes_async_defaults(main_context):
    a, b = Lsock.Stream.new_pair()
    loop = GLib.MainLoop.new(main_context, False)
    results = []

    def sent(stream, result):
        results.append(stream.send_bytes_finish(result))
        loop.quit()

    a.send_bytes_async(b'hello', callback=sent)
    run_loop(loop, lambda: results == [True])
    assert b.receive_bytes(100, None).get_data() == b'hello'
    # A GLib.Bytes still goes as it is
    a.send_bytes_async(GLib.Bytes.new(b'again'), GLib.PRIORITY_DEFAULT, None, sent)
    run_loop(loop, lambda: results == [True, True])
    assert b.receive_bytes(100, None).get_data() == b'again'
    a.close(None)
    b.close(None)


def test_send_bytes_sync_sends_all():
    data = big_data()
    a, b = Lsock.Stream.new_pair()
    reader = Worker(read_exactly, b.get_input_stream(), BIG)
    reader.start()
    assert a.send_bytes(data) is True       # blocks until the reader took it
    assert hashlib.sha256(reader.join_result()).digest() == hashlib.sha256(data).digest()
    a.close(None)
    b.close(None)


@pytest.mark.parametrize('value, expected', [
    (b'abc', b'abc'),
    (bytearray(b'abc'), b'abc'),
    (memoryview(b'abcdef')[::2], b'ace'),       # not contiguous
    (array.array('H', [0x0102, 0x0304]), array.array('H', [0x0102, 0x0304]).tobytes()),
    (GLib.Bytes.new(b'abc'), b'abc'),
])
def test_send_bytes_sync_forms(value, expected):
    a, b = Lsock.Stream.new_pair()
    assert a.send_bytes(value, None) is True
    a.close(None)
    assert read_exactly(b.get_input_stream(), len(expected)) == expected
    assert b.receive_bytes(100, None).get_size() == 0
    b.close(None)


def test_send_bytes_rejects_str():
    a, b = Lsock.Stream.new_pair()
    with pytest.raises(TypeError):
        a.send_bytes('text')
    with pytest.raises(TypeError):
        a.send_bytes_async('text', GLib.PRIORITY_DEFAULT, None, None)
    a.close(None)
    b.close(None)
