# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The rows of the error table (DESIGN.md) that can be reached from Python on
# this platform, through GObject Introspection.

import os
import shutil
import socket
import stat
import subprocess
import sys
import textwrap

import pytest

from conftest import (Gio, GLib, Lsock, TIMEOUT, assert_io_error, read_to_eof,
                      run_until, unique, write_all)

E = Gio.IOErrorEnum


# -- connect ------------------------------------------------------------------

def test_connect_not_found(tmpdir_private):
    for name in (Lsock.Name.parse('@' + unique('nobody')),
                 Lsock.Name.parse(os.path.join(tmpdir_private, 'missing')),
                 Lsock.Name.parse(os.path.join(tmpdir_private, 'no', 'dir'))):
        with pytest.raises(GLib.Error) as exc:
            Lsock.Stream.connect_to(name, None)
        err = assert_io_error(exc, E.NOT_FOUND)
        assert name.to_string() in err.message, err.message


def test_connect_non_utf8_path(tmpdir_private):
    """A path that is not UTF-8 is a fine path; the error about it must
    still be a GLib.Error with its code (PyGObject cannot convert a message
    that is not UTF-8, and raised RuntimeError instead): the bytes are
    shown as \\xNN."""
    path = os.fsencode(tmpdir_private) + b'/no-\xff\xfe-dir/sock'
    name = Lsock.Name.new_path(path)
    assert os.fsencode(name.to_string()) == path
    with pytest.raises(GLib.Error) as exc:
        Lsock.Stream.connect_to(name, None)
    err = assert_io_error(exc, E.NOT_FOUND)
    assert 'no-\\xff\\xfe-dir' in err.message, err.message
    with pytest.raises(GLib.Error) as exc:
        Lsock.Listener.new(name)
    assert_io_error(exc, E.NOT_FOUND)


def test_connect_not_found_after_listener_closed(any_name):
    listener = Lsock.Listener.new(any_name)
    Lsock.Stream.connect_to(any_name, None).close(None)
    listener.close()
    with pytest.raises(GLib.Error) as exc:
        Lsock.Stream.connect_to(any_name, None)
    # The path listener removed its file (reclaim-name): nobody there
    assert_io_error(exc, E.NOT_FOUND)


def test_connect_refused_on_stale_socket_file(tmpdir_private):
    path = os.path.join(tmpdir_private, 'stale')
    # A socket file that nobody listens on: bound, never listening, closed
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    s.close()
    assert stat.S_ISSOCK(os.lstat(path).st_mode)
    name = Lsock.Name.parse(path)
    with pytest.raises(GLib.Error) as exc:
        Lsock.Stream.connect_to(name, None)
    err = assert_io_error(exc, E.CONNECTION_REFUSED)
    assert path in err.message, err.message

    # A listener replaces a stale file of ours (replace-stale, the default)
    listener = Lsock.Listener.new(name)
    assert listener.get_replace_stale()
    client = Lsock.Stream.connect_to(name, None)
    server = listener.accept(None)
    client.close(None)
    server.close(None)
    listener.close()


def test_connect_refused_bound_but_not_listening(tmpdir_private):
    path = os.path.join(tmpdir_private, 'bound')
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.bind(path)
        with pytest.raises(GLib.Error) as exc:
            Lsock.Stream.connect_to(Lsock.Name.parse(path), None)
        assert_io_error(exc, E.CONNECTION_REFUSED)
    finally:
        s.close()


def test_connect_async_refused_on_stale_socket_file(tmpdir_private, main_context):
    path = os.path.join(tmpdir_private, 'stale')
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    s.close()
    results = []

    def done(source, result):
        try:
            results.append(Lsock.Stream.connect_to_finish(result))
        except GLib.Error as e:
            results.append(e)

    Lsock.Stream.connect_to_async(Lsock.Name.parse(path), None, done)
    run_until(lambda: results, what='connect_async')
    assert_io_error(results[0], E.CONNECTION_REFUSED)


def test_connect_to_a_regular_file(tmpdir_private):
    path = os.path.join(tmpdir_private, 'file')
    with open(path, 'w') as f:
        f.write('not a socket')
    with pytest.raises(GLib.Error) as exc:
        Lsock.Stream.connect_to(Lsock.Name.parse(path), None)
    # Nobody listens there: connect(2) says ECONNREFUSED for a non-socket
    assert_io_error(exc, E.CONNECTION_REFUSED, E.NOT_FOUND)


@pytest.mark.skipif(os.geteuid() == 0, reason='root ignores file modes')
def test_connect_permission_denied(tmpdir_private):
    path = os.path.join(tmpdir_private, 'sock')
    listener = Lsock.Listener.new(Lsock.Name.parse(path))
    os.chmod(tmpdir_private, 0o000)
    try:
        with pytest.raises(GLib.Error) as exc:
            Lsock.Stream.connect_to(Lsock.Name.parse(path), None)
        assert_io_error(exc, E.PERMISSION_DENIED)
    finally:
        os.chmod(tmpdir_private, 0o700)
        listener.close()


# -- listen -------------------------------------------------------------------

def test_listen_exists_on_regular_file(tmpdir_private):
    path = os.path.join(tmpdir_private, 'file')
    with open(path, 'wb') as f:
        f.write(b'precious')
    with pytest.raises(GLib.Error) as exc:
        Lsock.Listener.new(Lsock.Name.parse(path))
    err = assert_io_error(exc, E.EXISTS)
    assert path in err.message, err.message
    # Never removed, never changed
    with open(path, 'rb') as f:
        assert f.read() == b'precious'


def test_listen_exists_on_directory(tmpdir_private):
    path = os.path.join(tmpdir_private, 'dir')
    os.mkdir(path)
    with pytest.raises(GLib.Error) as exc:
        Lsock.Listener.new(Lsock.Name.parse(path))
    assert_io_error(exc, E.EXISTS, E.PERMISSION_DENIED)
    assert os.path.isdir(path)


def test_listen_address_in_use(any_name):
    first = Lsock.Listener.new(any_name)
    with pytest.raises(GLib.Error) as exc:
        Lsock.Listener.new(any_name)
    err = assert_io_error(exc, E.ADDRESS_IN_USE)
    assert any_name.to_string() in err.message, err.message
    # The live listener is untouched. (For a path, the second listener
    # probed the file with a connect, which the first one may see as a
    # peer that left at once: skip that one.)
    client = Lsock.Stream.connect_to(any_name, None)
    write_all(client.get_output_stream(), b'still mine')
    client.shutdown(False, True)
    got = []
    for _ in range(2):
        server = first.accept(None)
        got.append(read_to_eof(server.get_input_stream()))
        server.close(None)
        if got[-1]:
            break
    assert got[-1] == b'still mine', got
    if any_name.get_kind() == Lsock.NameKind.NAMESPACED:
        assert len(got) == 1, 'a peer that was not ours'
    client.close(None)
    first.close()
    # Free again once closed
    Lsock.Listener.new(any_name).close()


def test_listen_address_in_use_by_foreign_listener(tmpdir_private):
    """A live listener that lsock did not make (Python's socket module)."""
    for addr, name in ((os.path.join(tmpdir_private, 'py'), None),
                       (None, unique('pyabs'))):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            if addr is not None:
                s.bind(addr)
                lname = Lsock.Name.parse(addr)
            else:
                s.bind(b'\0' + name.encode())
                lname = Lsock.Name.parse('@' + name)
            s.listen(4)
            with pytest.raises(GLib.Error) as exc:
                Lsock.Listener.new(lname)
            assert_io_error(exc, E.ADDRESS_IN_USE)
            if addr is not None:
                assert stat.S_ISSOCK(os.lstat(addr).st_mode)
            # and the foreign listener still works
            c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            c.settimeout(TIMEOUT)
            c.connect(addr if addr is not None else b'\0' + name.encode())
            conn, _ = s.accept()
            conn.close()
            c.close()
        finally:
            s.close()


def test_listen_no_such_directory(tmpdir_private):
    path = os.path.join(tmpdir_private, 'missing-dir', 'sock')
    with pytest.raises(GLib.Error) as exc:
        Lsock.Listener.new(Lsock.Name.parse(path))
    assert_io_error(exc, E.NOT_FOUND)


@pytest.mark.skipif(os.geteuid() == 0, reason='root ignores file modes')
def test_listen_permission_denied(tmpdir_private):
    os.chmod(tmpdir_private, 0o500)
    try:
        with pytest.raises(GLib.Error) as exc:
            Lsock.Listener.new(Lsock.Name.parse(os.path.join(tmpdir_private, 's')))
        assert_io_error(exc, E.PERMISSION_DENIED)
    finally:
        os.chmod(tmpdir_private, 0o700)


# -- closed -------------------------------------------------------------------

def test_accept_on_closed_listener(any_name, main_context):
    listener = Lsock.Listener.new(any_name)
    listener.close()
    assert listener.is_closed()
    listener.close()                    # twice is fine
    with pytest.raises(GLib.Error) as exc:
        listener.accept(None)
    err = assert_io_error(exc, E.CLOSED)
    assert any_name.to_string() in err.message, err.message

    results = []

    def done(lst, result):
        try:
            results.append(lst.accept_finish(result))
        except GLib.Error as e:
            results.append(e)

    listener.accept_async(None, done)
    run_until(lambda: results, what='accept_async on a closed listener')
    assert_io_error(results[0], E.CLOSED)
    # start() on a closed listener does nothing
    listener.start()
    assert not listener.is_active()


def test_use_of_closed_stream(any_name):
    listener = Lsock.Listener.new(any_name)
    client = Lsock.Stream.connect_to(any_name, None)
    server = listener.accept(None)
    client.close(None)
    client.close(None)                  # twice is fine
    for fn in (lambda: client.get_input_stream().read_bytes(1, None),
               lambda: client.get_output_stream().write_bytes(GLib.Bytes.new(b'x'), None),
               lambda: client.get_peer_credentials(),
               lambda: client.shutdown(True, True)):
        with pytest.raises(GLib.Error) as exc:
            fn()
        assert_io_error(exc, E.CLOSED)
    server.close(None)
    listener.close()


# -- peer gone ----------------------------------------------------------------

def test_read_after_peer_closed_is_eof(any_name):
    listener = Lsock.Listener.new(any_name)
    client = Lsock.Stream.connect_to(any_name, None)
    server = listener.accept(None)
    write_all(client.get_output_stream(), b'last words')
    client.close(None)
    istream = server.get_input_stream()
    assert istream.read_bytes(100, None).get_data() == b'last words'
    assert istream.read_bytes(100, None).get_size() == 0
    server.close(None)
    listener.close()


def test_write_after_peer_closed(any_name):
    listener = Lsock.Listener.new(any_name)
    client = Lsock.Stream.connect_to(any_name, None)
    server = listener.accept(None)
    server.close(None)
    out = client.get_output_stream()
    chunk = GLib.Bytes.new(b'z' * 4096)
    with pytest.raises(GLib.Error) as exc:
        for _ in range(10000):
            out.write_bytes(chunk, None)
    err = assert_io_error(exc, E.BROKEN_PIPE, E.CONNECTION_CLOSED)
    assert any_name.to_string() in err.message, err.message
    client.close(None)
    listener.close()


# Run in a child with SIGPIPE at its default action (Python ignores it),
# so that a write that raised SIGPIPE would kill the child.
_NO_SIGPIPE_CHILD = textwrap.dedent('''
    import signal, sys
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    import gi
    gi.require_version('Lsock', '1.0')
    from gi.repository import GLib, Gio, Lsock
    name = Lsock.Name.parse(sys.argv[1])
    listener = Lsock.Listener.new(name)
    client = Lsock.Stream.connect_to(name, None)
    server = listener.accept(None)
    server.close(None)
    code = None
    try:
        for _ in range(10000):
            client.get_output_stream().write_bytes(GLib.Bytes.new(b'x' * 4096), None)
    except GLib.Error as e:
        code = e.code
    # and asynchronously
    loop = GLib.MainLoop()
    acode = []
    def done(out, res):
        try:
            out.write_bytes_finish(res)
            acode.append(None)
        except GLib.Error as e:
            acode.append(e.code)
        loop.quit()
    client.get_output_stream().write_bytes_async(
        GLib.Bytes.new(b'y' * 4096), GLib.PRIORITY_DEFAULT, None, done)
    GLib.timeout_add_seconds(20, loop.quit)
    loop.run()
    print(code, acode[0] if acode else 'timeout')
''')


def test_no_sigpipe(any_name):
    proc = subprocess.run([sys.executable, '-c', _NO_SIGPIPE_CHILD,
                           any_name.to_string()],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, (proc.returncode, proc.stderr)
    sync_code, async_code = proc.stdout.split()
    ok = {str(int(E.BROKEN_PIPE)), str(int(E.CONNECTION_CLOSED))}
    assert sync_code in ok, proc.stdout
    assert async_code in ok, proc.stdout


# As another user (root only): the PERMISSION_DENIED rows, where file modes
# apply. The child uses lsock through the typelib under uid nobody.
_AS_OTHER_USER = textwrap.dedent('''
    import sys
    import gi
    gi.require_version('Lsock', '1.0')
    from gi.repository import GLib, Lsock
    op, path = sys.argv[1], sys.argv[2]
    try:
        if op == 'connect':
            Lsock.Stream.connect_to(Lsock.Name.parse(path), None)
        elif op == 'serve':
            # A squatter: listens until its stdin closes
            listener = Lsock.Listener.new(Lsock.Name.parse(path))
            print('ready', flush=True)
            sys.stdin.read()
        else:
            Lsock.Listener.new(Lsock.Name.parse(path))
        print('OK')
    except GLib.Error as e:
        print(e.code)
''')


def run_as_other_user(env, op, path):
    setpriv = shutil.which('setpriv')
    proc = subprocess.run([setpriv, '--reuid=65534', '--regid=65534',
                           '--clear-groups', sys.executable, '-c',
                           _AS_OTHER_USER, op, path],
                          capture_output=True, text=True, timeout=60,
                          env=env, cwd='/')
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


needs_root_and_setpriv = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which('setpriv') is None,
    reason='needs root and setpriv to act as another user')


@needs_root_and_setpriv
def test_permission_denied_as_another_user(tmpdir_private, other_user_env):
    os.chmod(tmpdir_private, 0o755)     # others may look, not write
    path = os.path.join(tmpdir_private, 'sock')
    listener = Lsock.Listener.new(Lsock.Name.parse(path))
    try:
        # The socket file is 0600 (LSOCK_ACCESS_USER): connect is refused
        assert run_as_other_user(other_user_env, 'connect', path) == str(int(E.PERMISSION_DENIED))
        # The directory is not writable for that user: listen is refused
        assert run_as_other_user(other_user_env, 'listen', os.path.join(tmpdir_private, 'other')) \
            == str(int(E.PERMISSION_DENIED))
        # A live listener of another user at the path: ADDRESS_IN_USE, and
        # the file is untouched
        assert run_as_other_user(other_user_env, 'listen', path) in (
            str(int(E.ADDRESS_IN_USE)), str(int(E.PERMISSION_DENIED)))
        assert stat.S_ISSOCK(os.lstat(path).st_mode)
    finally:
        listener.close()


@needs_root_and_setpriv
def test_stale_socket_of_another_user_is_never_replaced(tmpdir_private, other_user_env):
    os.chmod(tmpdir_private, 0o777)     # the other user may create files
    for mode in (0o777, 0o700):
        path = os.path.join(tmpdir_private, 'stale-%o' % mode)
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(path)
        s.close()
        os.chmod(path, mode)
        ino = os.lstat(path).st_ino
        code = run_as_other_user(other_user_env, 'listen', path)
        # Somebody else's socket: not ours to remove, whether or not the
        # other user could tell that it is stale
        assert code in (str(int(E.ADDRESS_IN_USE)), str(int(E.PERMISSION_DENIED))), code
        assert os.lstat(path).st_ino == ino
        assert stat.S_ISSOCK(os.lstat(path).st_mode)


@needs_root_and_setpriv
def test_squatter_is_refused(other_user_env):
    """Another user listens on our name first: connect_to() refuses to
    talk to it (PERMISSION_DENIED); connect_full() with EVERYONE does."""
    name = Lsock.Name.parse('@' + unique('squat'))
    setpriv = shutil.which('setpriv')
    child = subprocess.Popen([setpriv, '--reuid=65534', '--regid=65534', '--clear-groups',
                              sys.executable, '-c', _AS_OTHER_USER, 'serve', name.to_string()],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                             env=other_user_env, cwd='/')
    try:
        assert child.stdout.readline().strip() == 'ready'
        with pytest.raises(GLib.Error) as exc:
            Lsock.Stream.connect_to(name, None)
        err = assert_io_error(exc, E.PERMISSION_DENIED)
        assert name.to_string() in err.message, err.message
        with pytest.raises(GLib.Error) as exc:
            Lsock.Stream.connect_full(name, Lsock.Access.USER, 5000, None)
        assert_io_error(exc, E.PERMISSION_DENIED)
        stream = Lsock.Stream.connect_full(name, Lsock.Access.EVERYONE, 5000, None)
        assert stream.get_peer_credentials().get_unix_user() == 65534
        stream.close(None)
    finally:
        child.stdin.close()
        child.wait(TIMEOUT)


@needs_root_and_setpriv
def test_peer_rejected_signal(main_context, other_user_env):
    """A peer of another user is refused and reported by peer-rejected,
    with its credentials, on the listener's context."""
    name = Lsock.Name.parse('@' + unique('rejected'))
    listener = Lsock.Listener.new(name)
    rejected = []
    incoming = []
    listener.connect('peer-rejected', lambda l, creds: rejected.append(creds))
    listener.connect('incoming', lambda l, s: incoming.append(s))
    listener.start()
    try:
        # Its check of the server passes (root is trusted): then ours refuses it
        assert run_as_other_user(other_user_env, 'connect', name.to_string()) == 'OK'
        run_until(lambda: rejected, what='peer-rejected')
        assert rejected[0] is not None
        assert rejected[0].get_unix_user() == 65534
        assert incoming == []
    finally:
        listener.close()


def test_connect_full_timeout():
    """A listener that never accepts: once its backlog is full,
    connect_full() with a timeout ends in TIMED_OUT, sync and async."""
    name = Lsock.Name.parse('@' + unique('full'))
    listener = Lsock.Listener(name=name, backlog=1)
    listener.init(None)
    queued = []
    try:
        with pytest.raises(GLib.Error) as exc:
            for _ in range(16):
                queued.append(Lsock.Stream.connect_full(name, Lsock.Access.USER, 100, None))
        err = assert_io_error(exc, E.TIMED_OUT)
        assert name.to_string() in err.message, err.message
        results = []
        Lsock.Stream.connect_full_async(name, Lsock.Access.USER, 100, None,
                                        lambda src, res: results.append(res))
        run_until(lambda: results, what='connect_full_async')
        with pytest.raises(GLib.Error) as exc:
            Lsock.Stream.connect_full_finish(results[0])
        assert_io_error(exc, E.TIMED_OUT)
    finally:
        for stream in queued:
            stream.close(None)
        listener.close()
