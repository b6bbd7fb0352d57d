# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The D-Bus peer-to-peer examples (examples/dbus-*.c, examples/dbus-*.py)
# against each other, C and Python on either side: the client calls Hello
# and (on Unix) ReadFd with a descriptor, and exits 0; the server stops
# cleanly on SIGTERM.

import os
import signal
import subprocess
import sys

import pytest

from conftest import TIMEOUT, unique

SRC = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'examples')
BUILT = os.environ.get('LSOCK_EXAMPLES_DIR', '')


def command(side, lang):
    if lang == 'py':
        return ['/usr/bin/python3', os.path.join(SRC, 'dbus-%s.py' % side)]
    path = os.path.join(BUILT, 'dbus-' + side)
    if not (BUILT and os.access(path, os.X_OK)):
        pytest.skip('the C examples were not built (LSOCK_EXAMPLES_DIR=%r)' % BUILT)
    return [path]


@pytest.mark.parametrize('server_lang,client_lang',
                         [('c', 'c'), ('c', 'py'), ('py', 'c'), ('py', 'py')])
def test_dbus_examples(server_lang, client_lang):
    name = '@' + unique('dbus-example')
    server = subprocess.Popen(command('server', server_lang) + [name],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # It says on stderr once it listens
        line = server.stderr.readline()
        assert line.startswith('D-Bus server on'), line
        client = subprocess.run(command('client', client_lang) + [name],
                                capture_output=True, text=True, timeout=TIMEOUT)
        assert client.returncode == 0, client.stderr
        assert 'Hello' in client.stdout, client.stdout
        assert 'ReadFd' in client.stdout, client.stdout
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            out, err = server.communicate(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            server.kill()
            raise
    assert server.returncode == 0, err
    # The server saw the client's credentials and the descriptor
    assert 'ReadFd read' in out, out


if __name__ == '__main__':
    sys.exit(pytest.main([__file__]))
