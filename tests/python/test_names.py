# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Lsock.Name through GObject Introspection: the name syntax of DESIGN.md.

import os
import sys

import pytest

from conftest import Gio, GLib, Lsock, assert_io_error, unique

NS = Lsock.NameKind.NAMESPACED
PATH = Lsock.NameKind.PATH


def test_type_support_query():
    support = Lsock.name_type_support_query()
    assert isinstance(support, Lsock.NameTypeSupport)
    if sys.platform.startswith('linux'):
        assert support == Lsock.NameTypeSupport.BOTH
    elif sys.platform == 'win32':
        assert support == Lsock.NameTypeSupport.ONLY_NAMESPACED
    else:
        assert support == Lsock.NameTypeSupport.ONLY_PATHS


@pytest.mark.parametrize('string, kind, name, display', [
    ('@foo', NS, 'foo', '@foo'),
    ('@f o\u00e9', NS, 'f o\u00e9', '@f o\u00e9'),
    ('@@foo', NS, '@foo', '@@foo'),
    ('@a/b', NS, 'a/b', '@a/b'),
    ('\\\\.\\pipe\\foo', NS, 'foo', '@foo'),
    ('\\\\.\\PIPE\\foo', NS, 'foo', '@foo'),
    ('/run/x/sock', PATH, '/run/x/sock', '/run/x/sock'),
    ('a/b', PATH, 'a/b', 'a/b'),
    ('./foo', PATH, 'foo', './foo'),
    ('././foo', PATH, 'foo', './foo'),
    ('./a/b', PATH, 'a/b', 'a/b'),
    ('.hidden', PATH, '.hidden', '.hidden'),
    ('../up', PATH, '../up', '../up'),
])
def test_parse(string, kind, name, display):
    n = Lsock.Name.parse(string)
    assert n.get_kind() == kind
    assert n.get_name() == name
    assert n.props.kind == kind
    assert n.props.name == name
    assert n.to_string() == display


@pytest.mark.skipif(not sys.platform.startswith('linux'),
                    reason='generic names are namespaced on Linux only')
def test_parse_generic_is_namespaced_on_linux():
    s = unique('generic')
    n = Lsock.Name.parse(s)
    assert n.get_kind() == NS
    assert n.get_name() == s
    assert n.to_string() == '@' + s
    assert n.equal(Lsock.Name.new_generic(s))
    assert n.equal(Lsock.Name.new_namespaced(s))
    assert not n.equal(Lsock.Name.new_path(s))


def test_constructors():
    p = Lsock.Name.new_path('foo')
    assert p.get_kind() == PATH
    assert p.get_name() == 'foo'
    # A relative path that would read as a generic name gets "./"
    assert p.to_string() == './foo'

    p2 = Lsock.Name.new_path('./foo')
    assert p2.get_name() == 'foo'
    assert p2.equal(p)

    n = Lsock.Name.new_namespaced('@literal')
    assert n.get_kind() == NS
    assert n.get_name() == '@literal'   # taken literally
    assert n.to_string() == '@@literal'


@pytest.mark.parametrize('string', [
    '@foo', '@@foo', '@a b', '@a/b', '\\\\.\\pipe\\x', '/abs/path/sock',
    'rel/sock', './foo', '.hidden', '../x', 'generic', '@' + 'n' * 107,
    '/' + 'p' * 106, './' + 'q' * 106, 'q/' + 'r' * 105,
])
def test_to_string_round_trip(string):
    n = Lsock.Name.parse(string)
    s = n.to_string()
    back = Lsock.Name.parse(s)
    assert back.equal(n), (string, s)
    assert n.equal(back)
    assert back.hash() == n.hash()
    assert back.get_kind() == n.get_kind()
    assert back.get_name() == n.get_name()
    assert back.to_string() == s


def test_round_trip_of_constructed_names():
    for n in (Lsock.Name.new_path('foo'),
              Lsock.Name.new_path('@foo'),          # a file named "@foo"
              Lsock.Name.new_path('\\\\.\\pipe\\x'),  # a file with that name
              Lsock.Name.new_namespaced('./x'),
              Lsock.Name.new_namespaced('@x'),
              Lsock.Name.new_path('q' * 107)):     # "./" + 107 bytes
        back = Lsock.Name.parse(n.to_string())
        assert back.equal(n), n.to_string()
        assert back.get_kind() == n.get_kind()
        assert back.get_name() == n.get_name()


def test_equal_and_hash():
    a = Lsock.Name.parse('@same')
    b = Lsock.Name.parse('\\\\.\\pipe\\same')
    c = Lsock.Name.parse('@other')
    d = Lsock.Name.new_path('same')
    assert a is not b
    assert a.equal(b) and b.equal(a)
    assert a.hash() == b.hash()
    assert a.equal(a)
    assert not a.equal(c)
    assert not a.equal(d)       # same bytes, different kind
    assert not d.equal(a)
    # equal() makes no file-system lookup
    assert not Lsock.Name.parse('/tmp/x').equal(Lsock.Name.parse('/tmp//x'))
    # hash() is usable as a set key together with equal()
    hashes = {n.hash() for n in (a, b)}
    assert len(hashes) == 1


def test_name_is_read_only():
    n = Lsock.Name.parse('@ro')
    with pytest.raises(TypeError):
        n.props.name = 'other'
    with pytest.raises(TypeError):
        n.props.kind = PATH
    assert n.get_name() == 'ro'


def test_length_limits():
    # 107 bytes fit (sun_path has 108, one for the NUL of a path or the
    # leading NUL of an abstract name)
    p107 = '/' + 'p' * 106
    assert Lsock.Name.parse(p107).get_name() == p107
    n107 = 'n' * 107
    assert Lsock.Name.parse('@' + n107).get_name() == n107
    assert Lsock.Name.new_namespaced(n107).get_name() == n107
    assert Lsock.Name.new_generic(n107).get_name() == n107
    # Multi-byte characters count in bytes
    assert Lsock.Name.new_namespaced('\u00e9' * 53 + 'x').get_name() == '\u00e9' * 53 + 'x'


def _check_invalid(fn, arg, shown):
    with pytest.raises(GLib.Error) as exc:
        fn(arg)
    err = assert_io_error(exc, Gio.IOErrorEnum.INVALID_ARGUMENT)
    assert shown in err.message, err.message
    return err


@pytest.mark.parametrize('fn, arg, shown', [
    (Lsock.Name.parse, '', '\u201c\u201d'),
    (Lsock.Name.parse, '@', '@'),
    (Lsock.Name.parse, '\\\\.\\pipe\\', 'pipe'),
    (Lsock.Name.parse, '/' + 'p' * 107, 'p' * 107),
    (Lsock.Name.parse, './' + 'q' * 108, 'q' * 108),
    (Lsock.Name.parse, '@' + 'n' * 108, 'n' * 108),
    (Lsock.Name.parse, 'g' * 108, 'g' * 108),
    (Lsock.Name.new_path, '', '\u201c\u201d'),
    (Lsock.Name.new_path, 'x' * 108, 'x' * 108),
    (Lsock.Name.new_namespaced, '', '\u201c\u201d'),
    (Lsock.Name.new_namespaced, 'm' * 108, 'm' * 108),
    (Lsock.Name.new_namespaced, '\u00e9' * 54, '\u00e9' * 54),
    (Lsock.Name.new_generic, '', '\u201c\u201d'),
    (Lsock.Name.new_generic, 'a/b', 'a/b'),
    (Lsock.Name.new_generic, '.', '.'),
    (Lsock.Name.new_generic, '..', '..'),
])
def test_invalid(fn, arg, shown):
    _check_invalid(fn, arg, shown)


def test_invalid_utf8():
    # parse() takes a file name (bytes); a namespaced name must be UTF-8
    with pytest.raises(GLib.Error) as exc:
        Lsock.Name.parse(b'@bad\xffname')
    err = assert_io_error(exc, Gio.IOErrorEnum.INVALID_ARGUMENT)
    assert 'bad' in err.message and 'name' in err.message, err.message
    # Invalid UTF-8 in a path is fine: paths are bytes
    n = Lsock.Name.parse(b'/tmp/bad\xffpath')
    assert n.get_kind() == PATH


def test_names_usable_as_listener_names(tmpdir_private):
    # Every kind of name from parse() works end to end (a smoke test; the
    # round trips are in test_roundtrip.py)
    for s in ('@' + unique('ns'), unique('gen'),
              os.path.join(tmpdir_private, 's1'),
              '@' + unique('long').ljust(107, 'L')):
        name = Lsock.Name.parse(s)
        listener = Lsock.Listener.new(name)
        assert listener.get_name().equal(name)
        client = Lsock.Stream.connect_to(Lsock.Name.parse(name.to_string()), None)
        server = listener.accept(None)
        assert server.get_name().equal(name)
        assert client.get_name().equal(name)
        client.close(None)
        server.close(None)
        listener.close()


def test_non_utf8_path_name():
    """A path that is not UTF-8: get_name() gives its exact bytes (a file
    name), the name property a readable form, and neither raises."""
    raw = b'/tmp/lsock-\xff-dir/sock'
    name = Lsock.Name.new_path(os.fsdecode(raw))
    assert os.fsencode(name.get_name()) == raw
    shown = name.props.name
    assert isinstance(shown, str) and shown.endswith('-dir/sock')
    assert '\ufffd' in shown
    assert os.fsencode(Lsock.Name.parse(name.to_string()).get_name()) == raw
