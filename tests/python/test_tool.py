# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The `lsock` command-line tool: `listen NAME --exec COMMAND`, the hint for
# generic names that look like file names, the messages and exit statuses
# of bad names, the bash completion of live abstract names, the man page.
# Clients are Python's socket module or `lsock connect`. Every case skips
# itself when the tool was not built.

import os
import re
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest

from conftest import TIMEOUT, unique

LSOCK_TOOL = os.environ.get('LSOCK_TOOL', '')
HAVE_TOOL = bool(LSOCK_TOOL) and os.access(LSOCK_TOOL, os.X_OK)
SRCDIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..')
COMPLETION = os.path.join(SRCDIR, 'data', 'lsock.bash-completion')
MANPAGE = os.path.join(SRCDIR, 'data', 'lsock.1')
LINUX = os.path.exists('/proc/net/unix')

pytestmark = pytest.mark.skipif(not HAVE_TOOL, reason='the lsock tool was not built')
needs_linux = pytest.mark.skipif(not LINUX, reason='needs abstract sockets and /proc')

# The child of each connection: says what its environment holds, lists
# its descriptors, then upper-cases the peer's data up to its end of stream
CHILD = r'''
echo "pid=$LSOCK_PEER_PID uid=$LSOCK_PEER_UID name=$LSOCK_NAME"
for f in /proc/$$/fd/*; do
  echo "fd ${f##*/} $(readlink "$f")"
done
echo end
tr a-z A-Z
'''


def run(*args, **kwargs):
    kwargs.setdefault('stdin', subprocess.DEVNULL)
    kwargs.setdefault('capture_output', True)
    kwargs.setdefault('timeout', 60)
    return subprocess.run([LSOCK_TOOL] + list(args), **kwargs)


class Listener:
    """`lsock listen ARGS…` in the background, ready once it says so."""

    def __init__(self, *args):
        self.proc = subprocess.Popen([LSOCK_TOOL, 'listen'] + list(args),
                                     stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE)
        self.stderr = b''
        self.wait_stderr(b'Listening on')

    def wait_stderr(self, needle, timeout=TIMEOUT):
        deadline = time.monotonic() + timeout
        while needle not in self.stderr:
            left = deadline - time.monotonic()
            assert left > 0, 'no %r on stderr: %r' % (needle, self.stderr)
            ready, _, _ = select.select([self.proc.stderr], [], [], left)
            if ready:
                chunk = os.read(self.proc.stderr.fileno(), 4096)
                assert chunk, 'lsock exited (%r): %r' % (self.proc.poll(), self.stderr)
                self.stderr += chunk

    def stop(self, signum=signal.SIGTERM):
        if self.proc.poll() is None:
            self.proc.send_signal(signum)
        try:
            _, err = self.proc.communicate(timeout=TIMEOUT)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
        self.stderr += err
        return self.proc.returncode

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc.stdout.close()
        self.proc.stderr.close()


def listening_inode(abstract):
    """The inode of the listening socket of @abstract, from /proc/net/unix"""
    with open('/proc/net/unix') as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            # Num RefCount Protocol Flags Type St Inode [Path]; St 01 = listening
            if len(fields) >= 8 and fields[7] == '@' + abstract and fields[5] == '01':
                return fields[6]
    raise AssertionError('@%s is not in /proc/net/unix' % abstract)


def read_until(sock, needle):
    data = b''
    sock.settimeout(TIMEOUT)
    while needle not in data:
        chunk = sock.recv(65536)
        assert chunk, 'EOF before %r: %r' % (needle, data)
        data += chunk
    return data


def parse_child_report(text):
    """(environment line, {fd: target}) from the child's report"""
    lines = text.splitlines()
    fds = {}
    for line in lines[1:]:
        if line == 'end':
            break
        _, fd, target = line.split(' ', 2)
        fds[int(fd)] = target
    return lines[0], fds


# -- listen --exec ---------------------------------------------------------

@needs_linux
def test_exec_one_child_per_connection():
    """Two clients at once: each gets its own child, which sees that
    client's pid and uid and the listener's name, has the connection (and
    only it) as standard input and output, and not the listening socket."""
    abstract = unique('exec')
    with Listener('--verbose', '@' + abstract, '--exec', 'sh', '-c', CHILD) as listener:
        inode = listening_inode(abstract)

        # Client 1: Python's socket module, held open while client 2 runs
        first = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        with first:
            first.connect(b'\0' + abstract.encode())
            report1 = read_until(first, b'\nend\n').decode()

            # Client 2: `lsock connect`, a process of its own
            second = subprocess.run([LSOCK_TOOL, 'connect', '@' + abstract],
                                    input=b'second client\n', capture_output=True,
                                    timeout=60)
            assert second.returncode == 0, second.stderr
            env2, fds2 = parse_child_report(second.stdout.decode())
            assert second.stdout.endswith(b'\nend\nSECOND CLIENT\n'), second.stdout

            first.sendall(b'first client\n')
            first.shutdown(socket.SHUT_WR)
            rest = b''
            while True:
                chunk = first.recv(65536)
                if not chunk:
                    break
                rest += chunk
            assert rest == b'FIRST CLIENT\n'

        env1, fds1 = parse_child_report(report1)
        assert env1 == 'pid=%d uid=%d name=@%s' % (os.getpid(), os.getuid(), abstract)
        # `lsock connect` is the peer of the second child, not this process
        pid2 = int(env2.split()[0].split('=')[1])
        assert pid2 != os.getpid()
        assert env2.endswith(' uid=%d name=@%s' % (os.getuid(), abstract)), env2

        for fds in (fds1, fds2):
            # Standard input and output: the same socket, the connection
            assert fds[0].startswith('socket:['), fds
            assert fds[1] == fds[0], fds
            sockets = {fd for fd, target in fds.items() if target.startswith('socket:')}
            # Not the listening socket, nor any other connection
            assert sockets == {0, 1} or (sockets == {0, 1, 2} and fds[2] == fds[0]), fds
            assert 'socket:[%s]' % inode not in fds.values()
        assert fds1[0] != fds2[0]

        listener.wait_stderr(b'Client 2: process')
        assert listener.stop() == 0, listener.stderr
    err = listener.stderr.decode()
    assert 'Client 1 connected (pid %d, uid %d): started process' % (os.getpid(), os.getuid()) in err
    assert 'Client 1: process' in err and 'exited with status 0' in err
    assert 'Client 2 connected (pid %d,' % pid2 in err


@pytest.mark.parametrize('signum', [signal.SIGTERM, signal.SIGINT], ids=['TERM', 'INT'])
def test_exec_stops_cleanly(signum):
    """SIGTERM or SIGINT: exit 0, the running child gets the signal (its
    client sees the end of stream), the socket file is removed."""
    tmpdir = tempfile.mkdtemp(prefix='lsock-tool-')
    path = os.path.join(tmpdir, 'exec.sock')
    try:
        with Listener(path, '--exec', 'sh', '-c', 'echo ready; exec sleep 600') as listener:
            client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            with client:
                client.connect(path)
                read_until(client, b'ready\n')
                start = time.monotonic()
                assert listener.stop(signum) == 0, listener.stderr
                # The child went with the signal, not after the grace period
                assert time.monotonic() - start < 4
                client.settimeout(TIMEOUT)
                assert client.recv(100) == b''
            assert not os.path.exists(path)
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)


@needs_linux
def test_exec_arguments_are_the_commands():
    """What follows --exec is the command's, even what looks like lsock's
    own options (--access, -v, --help, --)."""
    abstract = unique('args')
    with Listener('@' + abstract, '--exec', 'echo', '-v', '--access=nobody', '--help',
                  '--', '--exec') as listener:
        client = run('connect', '@' + abstract)
        assert client.returncode == 0, client.stderr
        assert client.stdout == b'-v --access=nobody --help -- --exec\n'
        assert listener.stop() == 0
    assert b'Try' not in listener.stderr


@needs_linux
@pytest.mark.parametrize('args,message', [
    (['--exec'], b'Missing socket name before --exec'),
    (['@x', '--exec'], b'Missing command after --exec'),
    (['--echo', '@x', '--exec', 'cat'], b'--echo and --exec cannot be used together'),
    (['--exec', '@x', 'cat'], b'Missing socket name before --exec'),
    (['@x', '--exec=cat'], b'--exec'),
], ids=['no-name', 'no-command', 'with-echo', 'before-name', 'with-value'])
def test_exec_usage_errors(args, message):
    result = run('listen', *args)
    assert result.returncode == 2, result
    assert message in result.stderr, result.stderr
    assert b'Try \xe2\x80\x9clsock listen --help\xe2\x80\x9d' in result.stderr


@needs_linux
def test_exec_command_not_found():
    """A command that cannot be found is an error before listening"""
    result = run('listen', '@' + unique('nocmd'), '--exec', 'lsock-no-such-command-here')
    assert result.returncode == 1, result
    assert b'lsock-no-such-command-here' in result.stderr
    assert b'Listening' not in result.stderr


# -- names -----------------------------------------------------------------

@needs_linux
@pytest.mark.parametrize('name,hint', [
    ('my.sock', True), ('my.socket', True), ('existing', True),
    ('plain', False), ('org.example.Service', False), ('./my.sock', False),
    ('@my.sock', False),
])
def test_hint_for_generic_file_names(name, hint):
    """A generic name ending in .sock/.socket, or naming a file here, is
    still the abstract name, but a hint says how to name the file."""
    tmpdir = tempfile.mkdtemp(prefix='lsock-tool-')
    try:
        open(os.path.join(tmpdir, 'existing'), 'w').close()
        result = run('connect', name, cwd=tmpdir)
        assert result.returncode == 1, result
        bare = name.lstrip('@./')
        expected = ('lsock: hint: \u201c%s\u201d is a generic name, here \u201c@%s\u201d: '
                    'did you mean the file \u201c./%s\u201d?' % (bare, bare, bare)).encode()
        if hint:
            assert expected in result.stderr, result.stderr
        else:
            assert b'hint' not in result.stderr, result.stderr
        # Unchanged behaviour: the generic name is used as it is
        if not name.startswith('.'):
            assert ('\u201c@%s\u201d' % bare).encode() in result.stderr.splitlines()[-1]
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)


@pytest.mark.parametrize('kind', ['file', 'directory'])
def test_connect_not_a_socket(kind):
    """connect() says ECONNREFUSED for a path that is no socket; the tool
    must not call it a socket file nobody listens on."""
    tmpdir = tempfile.mkdtemp(prefix='lsock-tool-')
    try:
        path = os.path.join(tmpdir, 'thing')
        if kind == 'file':
            open(path, 'w').close()
        else:
            os.mkdir(path)
        result = run('connect', path)
        assert result.returncode == 1, result
        assert b'not a socket' in result.stderr, result.stderr
        assert b'socket file' not in result.stderr, result.stderr
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)


def test_connect_stale_socket_file():
    """A real socket file whose listener has gone keeps the library's message"""
    tmpdir = tempfile.mkdtemp(prefix='lsock-tool-')
    try:
        path = os.path.join(tmpdir, 'stale.sock')
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(path)
        s.close()
        result = run('connect', path)
        assert result.returncode == 1, result
        assert b'socket file is there but nobody is listening' in result.stderr
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)


@pytest.mark.parametrize('command', ['connect', 'listen'])
@pytest.mark.parametrize('name', ['', '@' + 'x' * 200, '/' + 'p' * 200],
                         ids=['empty', 'long-namespaced', 'long-path'])
def test_invalid_name_is_usage_error(command, name):
    if name.startswith('@') and not LINUX:
        pytest.skip('namespaced names are not supported here')
    result = run(command, name)
    assert result.returncode == 2, result
    assert b'Invalid socket name' in result.stderr
    assert ('Try \u201clsock %s --help\u201d' % command).encode() in result.stderr


# -- bash completion --------------------------------------------------------

BASH = shutil.which('bash')


def complete(*words):
    """COMPREPLY for the command line @words (the last one being completed)"""
    script = ('source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); '
              'COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}; _lsock; '
              'printf "%s\\n" "${COMPREPLY[@]}"')
    result = subprocess.run([BASH, '--norc', '--noprofile', '-c', script, 'bash',
                             COMPLETION] + list(words),
                            capture_output=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return [w for w in result.stdout.decode().split('\n') if w]


@needs_linux
@pytest.mark.skipif(BASH is None, reason='bash is not installed')
def test_completion_offers_live_names():
    abstract = unique('compl')
    other = unique('other')
    sockets = []
    try:
        for n in (abstract, other):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.bind(b'\0' + n.encode())
            s.listen(1)
            sockets.append(s)
        assert complete('lsock', 'connect', '@' + abstract[:-2]) == ['@' + abstract]
        got = complete('lsock', 'connect', '@lsock-py-')
        assert '@' + abstract in got and '@' + other in got
        # After options too, and with no "@" typed yet
        assert '@' + abstract in complete('lsock', 'connect', '-v', '')
        # Names of connections (no listener) and of other programs' paths are
        # not offered; listen offers no live names (they are taken)
        assert complete('lsock', 'listen', '@' + abstract) == []
        assert '--exec' in complete('lsock', 'listen', '--e')
        assert '--timeout=' in complete('lsock', 'connect', '--t')
    finally:
        for s in sockets:
            s.close()


# -- man page ---------------------------------------------------------------

MAN = shutil.which('man')


@pytest.mark.skipif(MAN is None, reason='man is not installed')
def test_man_page_renders():
    env = dict(os.environ, MANWIDTH='80', LC_ALL='C.UTF-8')
    result = subprocess.run([MAN, '-l', '-P', 'cat', MANPAGE], capture_output=True,
                            env=env, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stderr == b'', result.stderr
    # Without a terminal, man still overstrikes bold and underline: drop it
    text = re.sub(r'.\x08', '', result.stdout.decode())
    for word in ('listen', 'connect', 'info', '--echo', '--exec', '--access',
                 '--verbose', '--timeout', '--version', 'LSOCK_PEER_PID',
                 'LSOCK_PEER_UID', 'LSOCK_NAME', 'EXIT STATUS'):
        assert word in text, word


@needs_linux
def test_info_notes_network_namespaces():
    """`lsock info` says that an abstract name is per network namespace,
    and points to the app directory form; a path gets no such note."""
    out = subprocess.run([LSOCK_TOOL, 'info', '@foo'], capture_output=True, text=True,
                         timeout=TIMEOUT)
    assert out.returncode == 0, out.stderr
    assert 'network namespace' in out.stdout
    assert 'lsock_name_new_for_app' in out.stdout
    out = subprocess.run([LSOCK_TOOL, 'info', './x.sock'], capture_output=True, text=True,
                         timeout=TIMEOUT)
    assert out.returncode == 0, out.stderr
    assert 'network namespace' not in out.stdout
