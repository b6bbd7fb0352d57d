# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Shared helpers for the Python tests of lsock-gobject, which use the library
# through GObject Introspection (GI_TYPELIB_PATH and LD_LIBRARY_PATH point to
# the uninstalled build; see tests/meson.build).

import itertools
import os
import shutil
import tempfile
import threading
import time

import gi

gi.require_version('GLib', '2.0')
gi.require_version('Gio', '2.0')
gi.require_version('Lsock', '1.0')
from gi.repository import GLib, GObject, Gio, Lsock  # noqa: E402,F401

import pytest  # noqa: E402

# The longest any single wait may take before the test fails
TIMEOUT = 20.0

_counter = itertools.count()


def unique(tag='t'):
    """A name that no other process or test uses: pid + counter."""
    return 'lsock-py-%s-%d-%d' % (tag, os.getpid(), next(_counter))


@pytest.fixture
def tmpdir_private():
    """A private temporary directory, removed afterwards."""
    d = tempfile.mkdtemp(prefix='lsock-py-')
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(params=['namespaced', 'path'])
def any_name(request, tmpdir_private):
    """An Lsock.Name of each kind, unique to this test."""
    if request.param == 'namespaced':
        return Lsock.Name.parse('@' + unique('ns'))
    return Lsock.Name.parse(os.path.join(tmpdir_private, 'sock'))


def assert_io_error(excinfo_or_error, *codes):
    """Checks that a GLib.Error is a G_IO_ERROR with one of @codes."""
    err = getattr(excinfo_or_error, 'value', excinfo_or_error)
    assert isinstance(err, GLib.Error), repr(err)
    assert err.domain == GLib.quark_to_string(Gio.io_error_quark()), err
    names = [Gio.IOErrorEnum(c).value_nick for c in codes]
    assert any(err.matches(Gio.io_error_quark(), c) for c in codes), \
        'expected %s, got %s (%d): %s' % (
            '/'.join(names), Gio.IOErrorEnum(err.code).value_nick,
            err.code, err.message)
    return err


def run_until(cond, timeout=TIMEOUT, context=None, what='condition'):
    """Iterates @context (the thread-default one) until cond() is true.

    Fails the test if that takes more than @timeout seconds: a timeout
    source wakes the blocking iteration, so nothing ever hangs."""
    if context is None:
        context = GLib.MainContext.ref_thread_default()
    expired = []
    source = GLib.timeout_source_new(int(timeout * 1000))
    source.set_callback(lambda *a: expired.append(True) or GLib.SOURCE_REMOVE)
    source.attach(context)
    try:
        while not cond():
            if expired:
                raise AssertionError('timed out after %.0f s waiting for %s'
                                     % (timeout, what))
            context.iteration(True)
    finally:
        source.destroy()


def read_exactly(istream, count, cancellable=None):
    """Reads exactly @count bytes with blocking reads."""
    chunks = []
    got = 0
    while got < count:
        b = istream.read_bytes(min(count - got, 65536), cancellable)
        data = b.get_data() or b''
        if not data:
            raise AssertionError('EOF after %d of %d bytes' % (got, count))
        chunks.append(data)
        got += len(data)
    return b''.join(chunks)


def read_to_eof(istream, cancellable=None, limit=64 << 20):
    chunks = []
    total = 0
    while True:
        b = istream.read_bytes(65536, cancellable)
        data = b.get_data() or b''
        if not data:
            return b''.join(chunks)
        chunks.append(data)
        total += len(data)
        assert total <= limit, 'peer sent more than %d bytes' % limit


def write_all(ostream, data, cancellable=None):
    """Writes all of @data with write_bytes (not write_all: PyGObject 3.42
    mishandles Python buffers in some output paths)."""
    view = memoryview(data)
    while len(view):
        n = ostream.write_bytes(GLib.Bytes.new(bytes(view[:262144])), cancellable)
        assert n > 0
        view = view[n:]


class Worker(threading.Thread):
    """A thread that runs @fn and keeps its result or exception."""

    def __init__(self, fn, *args):
        super().__init__(daemon=True)
        self.fn = fn
        self.args = args
        self.result = None
        self.error = None

    def run(self):
        try:
            self.result = self.fn(*self.args)
        except BaseException as e:  # noqa: B902 - reported by join_result
            self.error = e

    def join_result(self, timeout=TIMEOUT):
        self.join(timeout)
        if self.is_alive():
            raise AssertionError('worker %r did not finish in %.0f s'
                                 % (self.fn.__name__, timeout))
        if self.error is not None:
            raise self.error
        return self.result


class LogCatcher:
    """Records GLib warnings and criticals (g_return_if_fail and friends),
    which would otherwise only be printed."""

    DOMAINS = ('Lsock', 'GLib', 'GLib-GObject', 'GLib-GIO')
    LEVELS = (GLib.LogLevelFlags.LEVEL_WARNING |
              GLib.LogLevelFlags.LEVEL_CRITICAL |
              GLib.LogLevelFlags.FLAG_FATAL |
              GLib.LogLevelFlags.FLAG_RECURSION)

    def __init__(self):
        self.messages = []
        self.lock = threading.Lock()
        self.ids = []

    def _handler(self, domain, level, message, *unused):
        with self.lock:
            self.messages.append('%s: %s' % (domain, message))

    def install(self):
        for d in self.DOMAINS:
            self.ids.append((d, GLib.log_set_handler(d, self.LEVELS,
                                                     self._handler, None)))

    def remove(self):
        for d, i in self.ids:
            GLib.log_remove_handler(d, i)
        self.ids = []


@pytest.fixture(autouse=True)
def no_glib_warnings():
    """Fails a test that made GLib or the library log a warning or a
    critical (a failed precondition, a leaked source, ...)."""
    catcher = LogCatcher()
    catcher.install()
    try:
        yield catcher
    finally:
        catcher.remove()
    assert catcher.messages == [], catcher.messages


@pytest.fixture
def main_context():
    """A fresh thread-default main context for the test, so that sources a
    failed test leaves behind do not leak into the next one."""
    ctx = GLib.MainContext.new()
    ctx.push_thread_default()
    try:
        yield ctx
    finally:
        # Let pending callbacks (cancellations, closes) run, bounded
        deadline = time.monotonic() + 2
        while ctx.pending() and time.monotonic() < deadline:
            ctx.iteration(False)
        ctx.pop_thread_default()


@pytest.fixture(scope='session')
def other_user_env():
    """The environment for a child that runs as another user (setpriv) and
    loads lsock through the typelib: a world-readable copy of the uninstalled
    typelib and library, since the build may be in a directory that only we
    can read (a checkout in /root, or in a home made 0700). Skips the test
    when no such copy can be made."""
    typelib_dir = os.environ.get('GI_TYPELIB_PATH', '').split(os.pathsep)[0]
    lib_dir = os.environ.get('LD_LIBRARY_PATH', '').split(os.pathsep)[0]
    typelib = os.path.join(typelib_dir, 'Lsock-1.0.typelib')
    if not os.path.isfile(typelib) or not os.path.isdir(lib_dir):
        pytest.skip('the uninstalled typelib and library were not found')
    copy = tempfile.mkdtemp(prefix='lsock-py-other-')
    try:
        shutil.copy(typelib, copy)
        for entry in os.listdir(lib_dir):
            source = os.path.join(lib_dir, entry)
            if entry.startswith('liblsock-gobject-1.0.so') and os.path.isfile(source):
                shutil.copy(source, copy)
        for entry in os.listdir(copy):
            os.chmod(os.path.join(copy, entry), 0o644)
        os.chmod(copy, 0o755)
    except OSError as e:
        shutil.rmtree(copy, ignore_errors=True)
        pytest.skip('could not make a copy of the build another user can read: %s' % e)
    env = dict(os.environ, GI_TYPELIB_PATH=copy, LD_LIBRARY_PATH=copy)
    try:
        yield env
    finally:
        shutil.rmtree(copy, ignore_errors=True)
