# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Interoperability: peers that lsock did not write, each against lsock, over
# a path name and over an abstract name.
#
#   (a) Python's socket module as client  <->  lsock listener (typelib)
#   (b) Python's socket module as server  <->  lsock client
#   (c) socat as client                   <->  lsock listener
#   (d) socat as server (EXEC:cat echo)   <->  lsock client
#   (e) socat as client                   <->  `lsock listen --echo NAME`
#   (f) Python's socket module as server  <->  `lsock connect NAME`
#   (h) systemd-socket-activate          ->  `lsock listen --echo NAME`
#   (i) descriptor passing, Python server <-> lsock client, both ways
#   plus `lsock listen NAME` (one-peer relay) with socat, `lsock connect`
#   with socat, and (as root, through setpriv) a Python peer of another
#   user against LSOCK_ACCESS_USER / LSOCK_ACCESS_EVERYONE listeners.
#
# Abstract names must be unpadded: Python's b"\0name" and socat's ABSTRACT-*
# use the exact length, so they only meet lsock if lsock does too; the tests
# also check /proc/net/unix and that a padded peer does NOT meet lsock.

import hashlib
import itertools
import os
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import threading
import time

import gi

gi.require_version('GLib', '2.0')
gi.require_version('Gio', '2.0')
gi.require_version('Lsock', '1.0')
from gi.repository import GLib, Gio, Lsock  # noqa: E402

import pytest  # noqa: E402

TIMEOUT = 20.0          # any single wait
PROC_TIMEOUT = 60.0     # a whole subprocess run
SUN_PATH_SIZE = 108

_counter = itertools.count()

SOCAT = shutil.which('socat')
LSOCK_TOOL = os.environ.get('LSOCK_TOOL', '')
HAVE_TOOL = bool(LSOCK_TOOL) and os.path.isfile(LSOCK_TOOL) and os.access(LSOCK_TOOL, os.X_OK)

needs_socat = pytest.mark.skipif(SOCAT is None, reason='socat is not installed')
needs_tool = pytest.mark.skipif(
    not HAVE_TOOL,
    reason='the lsock tool was not built (LSOCK_TOOL=%r does not exist)' % LSOCK_TOOL)


def unique(tag):
    return 'lsock-interop-%s-%d-%d' % (tag, os.getpid(), next(_counter))


class Endpoint:
    """One name, written the way each program spells it."""

    def __init__(self, kind, tmpdir):
        self.kind = kind
        if kind == 'path':
            self.path = os.path.join(tmpdir, 'sock')
            self.lsock = self.path                        # lsock syntax
            self.py = self.path                           # socket module
            self.socat_connect = 'UNIX-CONNECT:' + self.path
            self.socat_listen = 'UNIX-LISTEN:' + self.path
            self.proc_net_unix = self.path
        else:
            self.abstract = unique('abs')
            self.lsock = '@' + self.abstract
            self.py = b'\0' + self.abstract.encode()       # unpadded
            self.socat_connect = 'ABSTRACT-CONNECT:' + self.abstract
            self.socat_listen = 'ABSTRACT-LISTEN:' + self.abstract
            self.proc_net_unix = '@' + self.abstract

    @property
    def name(self):
        return Lsock.Name.parse(self.lsock)


@pytest.fixture
def tmpdir_private():
    d = tempfile.mkdtemp(prefix='lsock-interop-')
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(params=['path', 'abstract'])
def endpoint(request, tmpdir_private):
    return Endpoint(request.param, tmpdir_private)


SMALL = b'a small message \x00\x01\xfe\xff\n'


@pytest.fixture(params=['small', '1MiB'])
def payload(request):
    if request.param == 'small':
        return SMALL
    # Enough to need many reads, plus a small tail
    return os.urandom(1 << 20) + SMALL


def sha(data):
    return hashlib.sha256(data).hexdigest()


class Worker(threading.Thread):
    def __init__(self, fn, *args):
        super().__init__(daemon=True)
        self.fn, self.args = fn, args
        self.result = self.error = None

    def run(self):
        try:
            self.result = self.fn(*self.args)
        except BaseException as e:  # noqa: B902 - re-raised by join_result
            self.error = e

    def join_result(self, timeout=TIMEOUT):
        self.join(timeout)
        if self.is_alive():
            raise AssertionError('%s did not finish in %.0f s' % (self.fn.__name__, timeout))
        if self.error is not None:
            raise self.error
        return self.result


# -- /proc/net/unix -----------------------------------------------------------

SO_ACCEPTCON = 0x10000


def listening_sockets():
    """Paths of the listening AF_UNIX sockets, as /proc/net/unix shows them
    (an abstract name as "@name", each NUL of a padded name as "@")."""
    found = set()
    with open('/proc/net/unix') as f:
        next(f)
        for line in f:
            fields = line.split()
            if len(fields) >= 8 and int(fields[3], 16) & SO_ACCEPTCON:
                found.add(' '.join(fields[7:]))
    return found


def assert_listening_exactly(endpoint):
    """For an abstract name: the listener has exactly that name, unpadded.
    (A path listener made by lsock is bound at a temporary name and renamed
    into place once it listens, so /proc/net/unix does not show its path.)"""
    if endpoint.kind != 'abstract':
        assert stat.S_ISSOCK(os.lstat(endpoint.path).st_mode)
        return
    socks = listening_sockets()
    assert endpoint.proc_net_unix in socks, 'not listening: %s' % endpoint.proc_net_unix
    # A padded name would show as "@name@@@@...": there is none
    padded = [s for s in socks if s.startswith(endpoint.proc_net_unix)
              and s != endpoint.proc_net_unix]
    assert padded == [], padded


def is_listening(endpoint, published_when_listening):
    if endpoint.proc_net_unix in listening_sockets():
        return True
    if endpoint.kind == 'path' and published_when_listening:
        # lsock publishes a socket file only once it listens
        try:
            return stat.S_ISSOCK(os.lstat(endpoint.path).st_mode)
        except FileNotFoundError:
            return False
    return False


def wait_listening(endpoint, proc, published_when_listening=False):
    """Waits (bounded) until a subprocess listens on @endpoint, without
    connecting to it: a probe connection could use up a one-shot server."""
    deadline = time.monotonic() + TIMEOUT
    while not is_listening(endpoint, published_when_listening):
        if proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError('%s exited with %d before listening: %s'
                                 % (proc.args[0], proc.returncode, err))
        if time.monotonic() > deadline:
            raise AssertionError('%s is not listening on %s after %.0f s'
                                 % (proc.args[0], endpoint.proc_net_unix, TIMEOUT))
        time.sleep(0.01)  # polling a readiness condition, not synchronising


# -- lsock helpers (through the typelib) ---------------------------------------

def lsock_write_all(ostream, data):
    view = memoryview(data)
    while len(view):
        n = ostream.write_bytes(GLib.Bytes.new(bytes(view[:262144])), None)
        assert n > 0
        view = view[n:]


def lsock_read_to_eof(istream, cancellable=None):
    chunks = []
    while True:
        data = istream.read_bytes(65536, cancellable).get_data() or b''
        if not data:
            return b''.join(chunks)
        chunks.append(data)


class LsockEchoServer:
    """An lsock listener in this process; a thread accepts @count peers one
    after the other and echoes each until EOF, then closes it."""

    def __init__(self, name, count=1):
        self.listener = Lsock.Listener.new(name)
        self.cancellable = Gio.Cancellable()
        self.count = count
        self.received = []
        self.creds = []
        self.worker = Worker(self._serve)
        self.worker.start()

    def _serve(self):
        for _ in range(self.count):
            stream = self.listener.accept(self.cancellable)
            self.creds.append(stream.get_peer_credentials())
            istream = stream.get_input_stream()
            ostream = stream.get_output_stream()
            got = []
            while True:
                data = istream.read_bytes(65536, self.cancellable).get_data() or b''
                if not data:
                    break
                got.append(data)
                lsock_write_all(ostream, data)
            stream.close(None)
            self.received.append(b''.join(got))

    def finish(self, timeout=TIMEOUT):
        try:
            self.worker.join_result(timeout)
        finally:
            self.cancellable.cancel()
            self.worker.join(TIMEOUT)
            self.listener.close()
        return self.received


def lsock_connect_retry(name, proc=None):
    """Connects to a server that may still be starting: retries while
    nobody listens, within a bounded time."""
    deadline = time.monotonic() + TIMEOUT
    while True:
        try:
            return Lsock.Stream.connect_to(name, None)
        except GLib.Error as e:
            if not (e.matches(Gio.io_error_quark(), Gio.IOErrorEnum.NOT_FOUND) or
                    e.matches(Gio.io_error_quark(), Gio.IOErrorEnum.CONNECTION_REFUSED)):
                raise
            if proc is not None and proc.poll() is not None:
                raise AssertionError('the server exited with %d: %s'
                                     % (proc.returncode, proc.communicate()[1]))
            if time.monotonic() > deadline:
                raise
            time.sleep(0.01)  # polling a readiness condition


def lsock_client_echo(name, data, proc=None):
    """Connects, sends @data from a thread while reading, half-closes,
    reads until EOF; returns what came back."""
    stream = lsock_connect_retry(name, proc)
    stream.set_timeout(int(TIMEOUT * 1000))

    def send():
        lsock_write_all(stream.get_output_stream(), data)
        assert stream.shutdown(False, True)

    sender = Worker(send)
    sender.start()
    got = lsock_read_to_eof(stream.get_input_stream())
    sender.join_result()
    stream.close(None)
    return got


# -- Python socket module helpers ----------------------------------------------

def py_client_echo(addr, data):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(TIMEOUT)
    try:
        s.connect(addr)

        def send():
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)

        sender = Worker(send)
        sender.start()
        chunks = []
        while True:
            b = s.recv(65536)
            if not b:
                break
            chunks.append(b)
        sender.join_result()
        return b''.join(chunks)
    finally:
        s.close()


class PyEchoServer:
    """A listener made with Python's socket module; a thread accepts one
    peer and echoes until EOF."""

    def __init__(self, addr):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(addr)
        self.sock.listen(8)
        self.sock.settimeout(TIMEOUT)
        self.received = None
        self.worker = Worker(self._serve)
        self.worker.start()

    def _serve(self):
        conn, _ = self.sock.accept()
        conn.settimeout(TIMEOUT)
        got = []
        with conn:
            while True:
                b = conn.recv(65536)
                if not b:
                    break
                got.append(b)
                conn.sendall(b)
            conn.shutdown(socket.SHUT_WR)
        self.received = b''.join(got)
        return self.received

    def finish(self):
        try:
            return self.worker.join_result()
        finally:
            self.sock.close()


def stop_process(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# -- (a) Python socket client -> lsock listener ----------------------------------

def test_python_client_to_lsock_listener(endpoint, payload):
    server = LsockEchoServer(endpoint.name)
    assert_listening_exactly(endpoint)
    try:
        got = py_client_echo(endpoint.py, payload)
    finally:
        received = server.finish()
    assert len(received) == 1
    assert sha(received[0]) == sha(payload)
    assert len(got) == len(payload)
    assert sha(got) == sha(payload)
    # The peer is us, as lsock sees it
    assert server.creds[0].get_unix_pid() == os.getpid()


def test_python_padded_abstract_does_not_reach_lsock():
    """A padded abstract address (GIO's old ..._PADDED style) is a different
    name: it must not reach an lsock listener, and an unpadded one must."""
    name = unique('pad')
    listener = Lsock.Listener.new(Lsock.Name.parse('@' + name))
    try:
        padded = b'\0' + name.encode()
        padded += b'\0' * (SUN_PATH_SIZE - len(padded))
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        with s, pytest.raises(ConnectionRefusedError):
            s.connect(padded)
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        with s:
            s.connect(b'\0' + name.encode())
            s.sendall(b'exact')
            server = listener.accept(None)
            assert server.get_input_stream().read_bytes(5, None).get_data() == b'exact'
            server.close(None)
    finally:
        listener.close()


# -- GIO's own sockets (GSocketClient, GSocketListener) <-> lsock ------------------

def gio_address(endpoint):
    if endpoint.kind == 'path':
        return Gio.UnixSocketAddress.new(endpoint.path)
    # GIO's unpadded abstract type (not the legacy ..._PADDED one)
    return Gio.UnixSocketAddress.new_with_type(
        endpoint.abstract.encode(), Gio.UnixSocketAddressType.ABSTRACT)


def test_gio_client_to_lsock_listener(endpoint, payload):
    server = LsockEchoServer(endpoint.name)
    try:
        conn = Gio.SocketClient().connect(gio_address(endpoint), None)

        def send():
            lsock_write_all(conn.get_output_stream(), payload)
            conn.get_socket().shutdown(False, True)

        sender = Worker(send)
        sender.start()
        got = lsock_read_to_eof(conn.get_input_stream())
        sender.join_result()
        conn.close(None)
    finally:
        received = server.finish()
    assert sha(received[0]) == sha(payload)
    assert sha(got) == sha(payload)


def test_lsock_client_to_gio_listener(endpoint, payload):
    gio_listener = Gio.SocketListener()
    gio_listener.add_address(gio_address(endpoint), Gio.SocketType.STREAM,
                             Gio.SocketProtocol.DEFAULT, None)
    received = []

    def serve():
        conn, _ = gio_listener.accept(None)
        data = lsock_read_to_eof(conn.get_input_stream())
        received.append(data)
        lsock_write_all(conn.get_output_stream(), data)
        conn.close(None)

    worker = Worker(serve)
    worker.start()
    try:
        got = lsock_client_echo(endpoint.name, payload)
        worker.join_result()
    finally:
        gio_listener.close()
    assert sha(received[0]) == sha(payload)
    assert sha(got) == sha(payload)


# -- (b) Python socket server <- lsock client ----------------------------------

def test_lsock_client_to_python_server(endpoint, payload):
    server = PyEchoServer(endpoint.py)
    if endpoint.kind == 'abstract':
        # Python bound exactly b"\0name"
        assert server.sock.getsockname() == endpoint.py
    try:
        got = lsock_client_echo(endpoint.name, payload)
    finally:
        received = server.finish()
    assert sha(received) == sha(payload)
    assert len(got) == len(payload)
    assert sha(got) == sha(payload)


def test_lsock_client_does_not_reach_padded_python_server():
    name = unique('padsrv')
    padded = b'\0' + name.encode()
    padded += b'\0' * (SUN_PATH_SIZE - len(padded))
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    with s:
        s.bind(padded)
        s.listen(1)
        with pytest.raises(GLib.Error) as exc:
            Lsock.Stream.connect_to(Lsock.Name.parse('@' + name), None)
        assert exc.value.matches(Gio.io_error_quark(), Gio.IOErrorEnum.NOT_FOUND), \
            exc.value.message


# -- (c) socat client -> lsock listener ----------------------------------------

@needs_socat
def test_socat_client_to_lsock_listener(endpoint, payload):
    server = LsockEchoServer(endpoint.name)
    try:
        proc = subprocess.run([SOCAT, '-t', '30', '-', endpoint.socat_connect],
                              input=payload, capture_output=True,
                              timeout=PROC_TIMEOUT)
    finally:
        received = server.finish()
    assert proc.returncode == 0, proc.stderr.decode(errors='replace')
    assert sha(received[0]) == sha(payload)
    assert len(proc.stdout) == len(payload)
    assert sha(proc.stdout) == sha(payload)
    # socat's pid, as lsock sees it
    assert server.creds[0].get_unix_user() == os.getuid()
    assert server.creds[0].get_unix_pid() != os.getpid()


# -- (d) socat server <- lsock client ------------------------------------------

@needs_socat
def test_lsock_client_to_socat_server(endpoint, payload):
    # A one-shot echo server: socat serves one peer with cat, then exits
    proc = subprocess.Popen([SOCAT, '-t', '30', endpoint.socat_listen, 'EXEC:cat'],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        wait_listening(endpoint, proc)
        if endpoint.kind == 'abstract':
            assert_listening_exactly(endpoint)
        got = lsock_client_echo(endpoint.name, payload, proc)
        _, err = proc.communicate(timeout=PROC_TIMEOUT)
    finally:
        stop_process(proc)
    assert proc.returncode == 0, err.decode(errors='replace')
    assert len(got) == len(payload)
    assert sha(got) == sha(payload)


@needs_socat
def test_lsock_client_to_socat_sink(endpoint, tmpdir_private):
    """One direction only: socat writes what it receives to a file; lsock
    half-closes and then sees socat's EOF."""
    out = os.path.join(tmpdir_private, 'sink.out')
    data = os.urandom(300000) + SMALL
    proc = subprocess.Popen([SOCAT, '-u', endpoint.socat_listen,
                             'CREATE:' + out],
                            stdin=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_listening(endpoint, proc)
        stream = lsock_connect_retry(endpoint.name, proc)
        lsock_write_all(stream.get_output_stream(), data)
        assert stream.shutdown(False, True)
        stream.set_timeout(int(TIMEOUT * 1000))
        assert lsock_read_to_eof(stream.get_input_stream()) == b''
        stream.close(None)
        _, err = proc.communicate(timeout=PROC_TIMEOUT)
        assert proc.returncode == 0, err
        with open(out, 'rb') as f:
            assert sha(f.read()) == sha(data)
    finally:
        stop_process(proc)


# -- (e) socat client -> `lsock listen --echo` -----------------------------------

@needs_tool
@needs_socat
def test_socat_client_to_lsock_tool_listener(endpoint, payload):
    proc = subprocess.Popen([LSOCK_TOOL, 'listen', '--echo', endpoint.lsock],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        wait_listening(endpoint, proc, published_when_listening=True)
        assert_listening_exactly(endpoint)
        run = subprocess.run([SOCAT, '-t', '30', '-', endpoint.socat_connect],
                             input=payload, capture_output=True,
                             timeout=PROC_TIMEOUT)
        assert run.returncode == 0, run.stderr.decode(errors='replace')
        assert len(run.stdout) == len(payload)
        assert sha(run.stdout) == sha(payload)
        # ... and again: the echo service serves more than one peer, also
        # at the same time
        a = Worker(py_client_echo, endpoint.py, SMALL * 1000)
        a.start()
        assert py_client_echo(endpoint.py, SMALL) == SMALL
        assert a.join_result() == SMALL * 1000
        # SIGTERM: exit status 0, socket file removed
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=PROC_TIMEOUT)
        assert proc.returncode == 0, err.decode(errors='replace')
        if endpoint.kind == 'path':
            assert not os.path.lexists(endpoint.path)
    finally:
        stop_process(proc)


@needs_tool
@needs_socat
def test_socat_client_to_lsock_tool_one_peer_relay(endpoint, payload):
    """`lsock listen NAME` relays one peer both ways: its stdin to socat,
    socat's stdin to its stdout, each direction half-closed on its own."""
    reply = os.urandom(len(payload) // 2 + 1)
    proc = subprocess.Popen([LSOCK_TOOL, 'listen', endpoint.lsock],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        wait_listening(endpoint, proc, published_when_listening=True)
        # The tool's stdin is fed (and closed) from a thread by communicate()
        tool = Worker(proc.communicate, reply, PROC_TIMEOUT)
        tool.start()
        run = subprocess.run([SOCAT, '-t', '30', '-', endpoint.socat_connect],
                             input=payload, capture_output=True,
                             timeout=PROC_TIMEOUT)
        out, err = tool.join_result(PROC_TIMEOUT)
        assert run.returncode == 0, run.stderr.decode(errors='replace')
        assert proc.returncode == 0, err.decode(errors='replace')
        assert sha(run.stdout) == sha(reply)    # tool stdin -> socat
        assert sha(out) == sha(payload)         # socat -> tool stdout
        if endpoint.kind == 'path':
            assert not os.path.lexists(endpoint.path)
    finally:
        stop_process(proc)


@needs_tool
@needs_socat
def test_lsock_tool_connect_to_socat_server(endpoint, payload):
    proc = subprocess.Popen([SOCAT, '-t', '30', endpoint.socat_listen, 'EXEC:cat'],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        wait_listening(endpoint, proc)
        run = subprocess.run([LSOCK_TOOL, 'connect', endpoint.lsock],
                             input=payload, capture_output=True,
                             timeout=PROC_TIMEOUT)
        assert run.returncode == 0, run.stderr.decode(errors='replace')
        assert sha(run.stdout) == sha(payload)
        _, err = proc.communicate(timeout=PROC_TIMEOUT)
        assert proc.returncode == 0, err.decode(errors='replace')
    finally:
        stop_process(proc)


# -- (f) `lsock connect` -> Python socket server ---------------------------------

@needs_tool
def test_lsock_tool_connect_to_python_server(endpoint, payload):
    server = PyEchoServer(endpoint.py)
    try:
        run = subprocess.run([LSOCK_TOOL, 'connect', endpoint.lsock],
                             input=payload, capture_output=True,
                             timeout=PROC_TIMEOUT)
    finally:
        received = server.finish()
    assert run.returncode == 0, run.stderr.decode(errors='replace')
    assert sha(received) == sha(payload)
    assert len(run.stdout) == len(payload)
    assert sha(run.stdout) == sha(payload)


@needs_tool
def test_lsock_tool_connect_not_found():
    run = subprocess.run([LSOCK_TOOL, 'connect', '@' + unique('nobody')],
                         stdin=subprocess.DEVNULL, capture_output=True,
                         timeout=PROC_TIMEOUT)
    assert run.returncode != 0
    assert run.stdout == b''
    assert run.stderr != b''


@needs_tool
@pytest.mark.parametrize('payload', [b'x', b'y' * 300000], ids=['small', 'large'])
def test_lsock_tool_connect_peer_closes_at_once(payload):
    """A listener that closes each connection at once, reading nothing (as
    one that refuses us does): `lsock connect` must not exit 0 as if the
    input had been delivered, and says what happened."""
    endpoint = Endpoint('abstract', None)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    with server:
        server.bind(endpoint.py)
        server.listen(4)
        closer = threading.Thread(target=lambda: server.accept()[0].close(), daemon=True)
        closer.start()
        run = subprocess.run([LSOCK_TOOL, 'connect', endpoint.lsock], input=payload,
                             capture_output=True, timeout=PROC_TIMEOUT)
        closer.join(TIMEOUT)
    assert run.returncode == 1, run
    assert b'closed the connection at once' in run.stderr, run.stderr


# -- (g) a peer of another user: LSOCK_ACCESS_USER vs EVERYONE -----------------

SETPRIV = shutil.which('setpriv')
OTHER_UID = 65534   # nobody
needs_other_user = pytest.mark.skipif(
    os.geteuid() != 0 or SETPRIV is None,
    reason='needs root and setpriv to run a peer as another user')

# A peer under another uid, made with Python's socket module: connects,
# sends a greeting, reports what happened on stdout.
_FOREIGN_PEER = '''
import socket, sys
addr = sys.argv[1]
addr = addr.encode().replace(b"@", b"\\0", 1) if addr.startswith("@") else addr
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(%r)
try:
    s.connect(addr)
except PermissionError:
    print("EACCES"); sys.exit(0)
try:
    s.sendall(b"foreign hello")
    data = s.recv(100)
    print("EOF" if data == b"" else "DATA " + data.decode())
except (ConnectionResetError, BrokenPipeError):
    print("RESET")
except socket.timeout:
    print("TIMEOUT")
''' % TIMEOUT


def run_foreign_peer(addr):
    return subprocess.Popen(
        [SETPRIV, '--reuid=%d' % OTHER_UID, '--regid=%d' % OTHER_UID,
         '--clear-groups', '/usr/bin/python3', '-c', _FOREIGN_PEER, addr],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@needs_other_user
def test_access_user_rejects_another_user(endpoint, tmpdir_private):
    # Let the other user reach a path at all: only the socket's own mode
    # (0600 with LSOCK_ACCESS_USER) stands in the way then
    os.chmod(tmpdir_private, 0o755)
    listener = Lsock.Listener.new(endpoint.name)
    assert listener.get_access() == Lsock.Access.USER
    addr = endpoint.lsock if endpoint.kind == 'abstract' else endpoint.path
    cancellable = Gio.Cancellable()
    # A blocking accept, waiting while the other user connects
    acceptor = Worker(listener.accept, cancellable)
    acceptor.start()
    try:
        child = run_foreign_peer(addr)
        out, err = child.communicate(timeout=PROC_TIMEOUT)
        assert child.returncode == 0, err
        if endpoint.kind == 'path':
            # The file mode already keeps the other user out
            assert out.strip() == 'EACCES', out
            assert stat.S_IMODE(os.lstat(endpoint.path).st_mode) & 0o077 == 0
        else:
            # No permissions on abstract names: the listener checked the
            # peer's credentials and closed it
            assert out.strip() in ('EOF', 'RESET'), out
        # ... and accept did not return it: it still waits, and the next
        # peer, ours, is the one it returns
        assert acceptor.is_alive(), 'accept returned the foreign peer'
        mine = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        with mine:
            mine.settimeout(TIMEOUT)
            mine.connect(endpoint.py)
            mine.sendall(b'mine')
            server = acceptor.join_result()
            creds = server.get_peer_credentials()
            assert creds.get_unix_user() == os.getuid()
            server.set_timeout(int(TIMEOUT * 1000))
            assert server.get_input_stream().read_bytes(4, None).get_data() == b'mine'
            server.close(None)
    finally:
        cancellable.cancel()
        acceptor.join(TIMEOUT)
        listener.close()


@needs_other_user
def test_access_everyone_admits_another_user(endpoint, tmpdir_private):
    os.chmod(tmpdir_private, 0o755)
    listener = Lsock.Listener.new_full(endpoint.name, Lsock.Access.EVERYONE, None)
    assert listener.get_access() == Lsock.Access.EVERYONE
    addr = endpoint.lsock if endpoint.kind == 'abstract' else endpoint.path
    try:
        child = run_foreign_peer(addr)
        acceptor = Worker(listener.accept, None)
        acceptor.start()
        server = acceptor.join_result(PROC_TIMEOUT)
        creds = server.get_peer_credentials()
        assert creds.get_unix_user() == OTHER_UID
        server.set_timeout(int(TIMEOUT * 1000))
        got = b''
        while len(got) < len(b'foreign hello'):
            chunk = server.get_input_stream().read_bytes(100, None).get_data() or b''
            assert chunk, 'EOF from the foreign peer'
            got += chunk
        assert got == b'foreign hello'
        lsock_write_all(server.get_output_stream(), b'welcome')
        server.close(None)
        out, err = child.communicate(timeout=PROC_TIMEOUT)
        assert child.returncode == 0, err
        assert out.strip() == 'DATA welcome', out
    finally:
        listener.close()


@needs_other_user
def test_access_user_rejects_another_user_incoming(endpoint, tmpdir_private):
    """The same with start() + "incoming" on a main loop: the signal is
    never emitted for the other user's peer."""
    os.chmod(tmpdir_private, 0o755)
    ctx = GLib.MainContext.new()
    ctx.push_thread_default()
    listener = Lsock.Listener.new(endpoint.name)
    try:
        seen = []
        listener.connect('incoming', lambda l, s: seen.append(s) or True)
        listener.start()
        addr = endpoint.lsock if endpoint.kind == 'abstract' else endpoint.path
        child = Gio.Subprocess.new(
            [SETPRIV, '--reuid=%d' % OTHER_UID, '--regid=%d' % OTHER_UID,
             '--clear-groups', '/usr/bin/python3', '-c', _FOREIGN_PEER, addr],
            Gio.SubprocessFlags.STDOUT_PIPE)
        result = []
        child.communicate_utf8_async(
            None, None, lambda c, r: result.append(c.communicate_utf8_finish(r)))
        main_loop_until(ctx, lambda: result, 'the foreign peer')
        ok, out, _ = result[0]
        assert ok and child.get_successful(), out
        assert out.strip() in ('EOF', 'RESET', 'EACCES'), out
        assert seen == [], 'incoming emitted for another user'

        mine = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        with mine:
            mine.settimeout(TIMEOUT)
            mine.connect(endpoint.py)
            main_loop_until(ctx, lambda: seen, 'our peer')
            assert len(seen) == 1
            assert seen[0].get_peer_credentials().get_unix_user() == os.getuid()
            seen[0].close(None)
    finally:
        listener.close()
        ctx.pop_thread_default()


def main_loop_until(ctx, cond, what):
    expired = []
    source = GLib.timeout_source_new(int(TIMEOUT * 1000))
    source.set_callback(lambda *a: expired.append(True) or False)
    source.attach(ctx)
    try:
        while not cond():
            assert not expired, 'timed out waiting for ' + what
            ctx.iteration(True)
    finally:
        source.destroy()


# -- (h) socket activation: systemd-socket-activate -> `lsock listen --echo` ---

SOCKET_ACTIVATE = shutil.which('systemd-socket-activate')
needs_socket_activate = pytest.mark.skipif(
    SOCKET_ACTIVATE is None, reason='systemd-socket-activate is not installed')


class LineReader:
    """Reads a pipe to its end in a thread, so that the writer never blocks
    on it nor gets SIGPIPE; wait_for() waits, bounded, for a line."""

    def __init__(self, pipe):
        self.pipe = pipe
        self.lines = []
        self.eof = False
        self.cond = threading.Condition()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        for raw in iter(self.pipe.readline, b''):
            with self.cond:
                self.lines.append(raw.decode(errors='replace').rstrip('\n'))
                self.cond.notify_all()
        with self.cond:
            self.eof = True
            self.cond.notify_all()

    def wait_for(self, pred, what):
        with self.cond:
            self.cond.wait_for(
                lambda: any(pred(line) for line in self.lines) or self.eof, TIMEOUT)
            match = [line for line in self.lines if pred(line)]
            assert match, 'no %s in %.0f s (eof: %s); stderr so far: %r' % (
                what, TIMEOUT, self.eof, self.lines)
            return match[0]

    def finish(self):
        self.thread.join(TIMEOUT)
        assert not self.thread.is_alive(), 'stderr did not reach EOF'
        return self.lines


def kill_group(proc):
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(TIMEOUT)


@needs_tool
@needs_socket_activate
def test_socket_activated_lsock_tool_echo(endpoint):
    """The activator binds and listens on the name, and on the first
    connection execs `lsock listen --echo NAME` with the socket as fd 3
    ($LISTEN_FDS): the tool's listener adopts it instead of making its own,
    and echoes."""
    proc = subprocess.Popen(
        [SOCKET_ACTIVATE, '-l', endpoint.lsock, LSOCK_TOOL, 'listen', '--echo', endpoint.lsock],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        start_new_session=True)
    stderr = LineReader(proc.stderr)
    try:
        stderr.wait_for(lambda line: line.startswith('Listening on'),
                        "the activator's 'Listening on'")
        assert_listening_exactly(endpoint)
        if endpoint.kind == 'path':
            before = os.lstat(endpoint.path)

        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        with s:
            s.settimeout(TIMEOUT)
            s.connect(endpoint.py)
            line = b'hello, activated lsock %d\n' % os.getpid()
            s.sendall(line)
            got = b''
            while not got.endswith(b'\n'):
                chunk = s.recv(4096)
                assert chunk, 'EOF after %r' % got
                got += chunk
            assert got == line
        # It was the tool that answered, on the passed socket
        stderr.wait_for(lambda line: 'socket passed by socket activation' in line,
                        "the tool's line about the passed socket")
        # ... which it serves for more than one peer
        assert py_client_echo(endpoint.py, SMALL * 100) == SMALL * 100
        if endpoint.kind == 'path':
            after = os.lstat(endpoint.path)
            assert (after.st_dev, after.st_ino) == (before.st_dev, before.st_ino), \
                'the tool replaced the socket file it was given'

        os.killpg(proc.pid, signal.SIGTERM)
        assert proc.wait(PROC_TIMEOUT) == 0, stderr.finish()
        stderr.finish()
        if endpoint.kind == 'path':
            # An adopted socket's file is not the tool's to remove
            assert stat.S_ISSOCK(os.lstat(endpoint.path).st_mode)
    finally:
        kill_group(proc)
        stderr.thread.join(TIMEOUT)
        proc.stderr.close()


# -- (i) descriptor passing: Python socket server <-> lsock client ---------------

def test_fd_passing_python_server_lsock_client(endpoint):
    """Both ways over one connection that lsock made to a Python listener:
    lsock send_fd -> socket.recv_fds, socket.send_fds -> lsock receive_fd.
    Each copy is the same open file as the original."""
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    r, w = os.pipe()
    fds = []
    try:
        server.bind(endpoint.py)
        server.listen(1)
        server.settimeout(TIMEOUT)
        stream = Lsock.Stream.connect_to(endpoint.name, None)
        stream.set_timeout(int(TIMEOUT * 1000))
        conn, _ = server.accept()
        with conn:
            conn.settimeout(TIMEOUT)
            assert stream.send_fd(r, None)
            msg, got, flags, _ = socket.recv_fds(conn, 16, 4)
            fds += got
            assert (msg, len(got), flags & socket.MSG_CTRUNC) == (b'\0', 1, 0)
            assert os.fstat(got[0]).st_ino == os.fstat(r).st_ino

            assert socket.send_fds(conn, [b'\0'], [w]) == 1
            fd = stream.receive_fd(None)
            fds.append(fd)
            assert os.fstat(fd).st_ino == os.fstat(w).st_ino
            assert not os.get_inheritable(fd)
            # The copies work: written through lsock's, read through Python's
            assert os.write(fd, b'passed') == 6
            assert os.read(got[0], 6) == b'passed'
        stream.close(None)
    finally:
        for fd in fds + [r, w]:
            os.close(fd)
        server.close()
