#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Bulk throughput through PyGObject (Lsock.Stream: read_bytes/write_bytes on
# its substreams, and its own receive_bytes/send_bytes, "lsock-bytes")
# against Python's own socket module (recv/send), 64 KiB and 4 KiB chunks,
# interleaved repetitions. Server and client are separate processes.
#
# A third variant, "gio-unix", runs the same read_bytes/write_bytes calls
# through GIO's own Gio.UnixInputStream/UnixOutputStream on the sockets of
# the socket variant: the cheapest stream PyGObject can call. The gap
# between it and Python's socket module is what a call through PyGObject
# costs, whatever library is behind it.
#
#   GI_TYPELIB_PATH=BUILDDIR/lsock-gobject LD_LIBRARY_PATH=BUILDDIR/lsock-gobject \
#     /usr/bin/python3 tests/bench/py-bulk.py [--reps N] [--bytes N] [--pin-server CPU --pin-client CPU]
#
# After each repetition it also measures, in one process, what the calls a
# chunk takes through PyGObject (write_bytes, read_bytes, get_size) cost
# beyond the socket module's (send, recv) on 1-byte messages, and turns it
# into a ceiling: the socket module's rate slowed down by that much per
# chunk, the best any stream behind PyGObject could reach while sender and
# receiver share one CPU.
#
# Prints one "REP <figure> <socket MB/s> <lsock MB/s> <gio-unix MB/s> <ceiling MB/s>
# <lsock-bytes MB/s> <ceiling for the bytes calls MB/s>" line per repetition
# (lsock-bench reads these) and a summary.

import argparse
import os
import socket
import statistics
import sys
import time

import gi
gi.require_version('Lsock', '1.0')
gi.require_version('GLib', '2.0')
from gi.repository import Gio, GLib, Lsock  # noqa: E402

counter = 0


def unique_name():
    global counter
    counter += 1
    return 'lsock-pybench-%d-%d' % (os.getpid(), counter)


def pin(cpu):
    if cpu is not None and cpu >= 0:
        os.sched_setaffinity(0, {cpu})


def socket_accept_one(name, ready_w):
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind('\0' + name)
    srv.listen()
    os.write(ready_w, b'R')
    conn, _ = srv.accept()
    srv.close()
    return conn


def drain(read, chunk):
    """Bytes read with @read (a read_bytes()-like call) until end of stream"""
    total = 0
    while True:
        n = read(chunk, None).get_size()
        if n == 0:
            return total
        total += n


def server_socket(name, chunk, ready_w):
    conn = socket_accept_one(name, ready_w)
    total = 0
    recv = conn.recv
    while True:
        data = recv(chunk)
        if not data:
            break
        total += len(data)
    conn.sendall(b'k')
    conn.close()
    return total


def server_lsock(name, chunk, ready_w):
    listener = Lsock.Listener.new(Lsock.Name.parse('@' + name))
    os.write(ready_w, b'R')
    stream = listener.accept(None)
    inp = stream.get_input_stream()
    total = drain(inp.read_bytes, chunk)
    stream.get_output_stream().write_bytes(GLib.Bytes.new(b'k'), None)
    return total


def server_lsock_bytes(name, chunk, ready_w):
    listener = Lsock.Listener.new(Lsock.Name.parse('@' + name))
    os.write(ready_w, b'R')
    stream = listener.accept(None)
    total = drain(stream.receive_bytes, chunk)
    stream.send_bytes(GLib.Bytes.new(b'k'), None)
    return total


def server_gio_unix(name, chunk, ready_w):
    conn = socket_accept_one(name, ready_w)
    total = drain(Gio.UnixInputStream.new(conn.fileno(), False).read_bytes, chunk)
    conn.sendall(b'k')
    conn.close()
    return total


def client_socket(name, chunk, total):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect('\0' + name)
    buf = b'x' * chunk
    send = sock.send
    sent = 0
    t0 = time.perf_counter()
    while sent < total:
        n = send(buf if total - sent >= chunk else buf[:total - sent])
        sent += n
    sock.shutdown(socket.SHUT_WR)
    ack = sock.recv(1)
    t1 = time.perf_counter()
    assert ack == b'k'
    sock.close()
    return total / (t1 - t0) / 1e6


def client_lsock(name, chunk, total):
    stream = Lsock.Stream.connect_to(Lsock.Name.parse('@' + name), None)
    out = stream.get_output_stream()
    buf = GLib.Bytes.new(b'x' * chunk)
    write_bytes = out.write_bytes
    sent = 0
    t0 = time.perf_counter()
    while sent < total:
        if total - sent >= chunk:
            n = write_bytes(buf, None)
        else:
            n = write_bytes(GLib.Bytes.new(b'x' * (total - sent)), None)
        if n < chunk and sent + n < total:
            # a short write: send the rest of this chunk
            rest = GLib.Bytes.new(b'x' * (chunk - n))
            n += write_bytes(rest, None)
        sent += n
    stream.shutdown(False, True)
    ack = stream.get_input_stream().read_bytes(1, None).get_data()
    t1 = time.perf_counter()
    assert ack == b'k'
    return total / (t1 - t0) / 1e6


def client_lsock_bytes(name, chunk, total):
    stream = Lsock.Stream.connect_to(Lsock.Name.parse('@' + name), None)
    buf = GLib.Bytes.new(b'x' * chunk)
    send_bytes = stream.send_bytes
    sent = 0
    t0 = time.perf_counter()
    # send_bytes() sends all of it: no short writes to handle
    while total - sent >= chunk:
        send_bytes(buf, None)
        sent += chunk
    if sent < total:
        send_bytes(GLib.Bytes.new(b'x' * (total - sent)), None)
        sent = total
    stream.shutdown(False, True)
    ack = stream.receive_bytes(1, None).get_data()
    t1 = time.perf_counter()
    assert ack == b'k'
    return total / (t1 - t0) / 1e6


def client_gio_unix(name, chunk, total):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect('\0' + name)
    write_bytes = Gio.UnixOutputStream.new(sock.fileno(), False).write_bytes
    buf = GLib.Bytes.new(b'x' * chunk)
    sent = 0
    t0 = time.perf_counter()
    while sent < total:
        if total - sent >= chunk:
            n = write_bytes(buf, None)
        else:
            n = write_bytes(GLib.Bytes.new(b'x' * (total - sent)), None)
        sent += n
    sock.shutdown(socket.SHUT_WR)
    ack = sock.recv(1)
    t1 = time.perf_counter()
    assert ack == b'k'
    sock.close()
    return total / (t1 - t0) / 1e6


def call_overhead(pin_cpu, bytes_calls=False, n=20000):
    """Seconds per chunk that PyGObject's calls cost beyond the socket
    module's: write_bytes() and read_bytes() on the substreams, or with
    @bytes_calls the stream's own send_bytes() and receive_bytes()"""
    pin(pin_cpu)
    name = unique_name()
    listener = Lsock.Listener.new(Lsock.Name.parse('@' + name))
    client = Lsock.Stream.connect_to(Lsock.Name.parse('@' + name), None)
    server = listener.accept(None)
    if bytes_calls:
        write_bytes = client.send_bytes
        read_bytes = server.receive_bytes
    else:
        write_bytes = client.get_output_stream().write_bytes
        read_bytes = server.get_input_stream().read_bytes
    one = GLib.Bytes.new(b'x')
    a, b = socket.socketpair()
    send, recv = a.send, b.recv

    def through_pygobject():
        for _ in range(n):
            write_bytes(one, None)
            read_bytes(1, None).get_size()

    def through_socket():
        for _ in range(n):
            send(b'x')
            len(recv(1))

    best = {}
    for _ in range(5):
        for fn in (through_pygobject, through_socket):
            t0 = time.perf_counter()
            fn()
            best[fn] = min(best.get(fn, 1e9), (time.perf_counter() - t0) / n)
    client.close(None)
    server.close(None)
    listener.close()
    a.close()
    b.close()
    return max(best[through_pygobject] - best[through_socket], 0)


SERVERS = {'socket': server_socket, 'lsock': server_lsock, 'gio-unix': server_gio_unix,
           'lsock-bytes': server_lsock_bytes}
CLIENTS = {'socket': client_socket, 'lsock': client_lsock, 'gio-unix': client_gio_unix,
           'lsock-bytes': client_lsock_bytes}


def run_once(kind, chunk, total, pin_server, pin_client):
    name = unique_name()
    ready_r, ready_w = os.pipe()
    res_r, res_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(ready_r)
            pin(pin_server)
            fn = SERVERS[kind]
            got = fn(name, chunk, ready_w)
            os.write(res_w, str(got).encode())
            os._exit(0)
        except BaseException as e:  # noqa: B036
            sys.stderr.write('py-bulk server: %r\n' % (e,))
            os._exit(1)
    os.close(ready_w)
    os.close(res_w)
    pin(pin_client)
    assert os.read(ready_r, 1) == b'R'
    os.close(ready_r)
    fn = CLIENTS[kind]
    mbps = fn(name, chunk, total)
    got = int(os.read(res_r, 64) or b'-1')
    os.close(res_r)
    _, status = os.waitpid(pid, 0)
    if status != 0 or got != total:
        raise SystemExit('py-bulk: %s server failed (received %d of %d bytes)' % (kind, got, total))
    return mbps


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--reps', type=int, default=5)
    ap.add_argument('--bytes', type=int, default=128 << 20)
    ap.add_argument('--pin-server', type=int, default=None)
    ap.add_argument('--pin-client', type=int, default=None)
    args = ap.parse_args()

    all_cpus = os.sched_getaffinity(0)
    for label, chunk, total in (('py-bulk-64k', 65536, args.bytes),
                                ('py-bulk-4k', 4096, args.bytes // 4)):
        results = {kind: [] for kind in SERVERS}
        ceiling = []
        for _ in range(args.reps):
            for kind in SERVERS:
                results[kind].append(run_once(kind, chunk, total, args.pin_server, args.pin_client))
                os.sched_setaffinity(0, all_cpus)
            socket_per_chunk = chunk / (results['socket'][-1] * 1e6)
            per_chunk = socket_per_chunk + call_overhead(args.pin_client)
            per_chunk_bytes = socket_per_chunk + call_overhead(args.pin_client, bytes_calls=True)
            os.sched_setaffinity(0, all_cpus)
            ceiling.append(chunk / per_chunk / 1e6)
            print('REP %s %.1f %.1f %.1f %.1f %.1f %.1f'
                  % (label, results['socket'][-1], results['lsock'][-1],
                     results['gio-unix'][-1], ceiling[-1], results['lsock-bytes'][-1],
                     chunk / per_chunk_bytes / 1e6),
                  flush=True)
        s = statistics.median(results['socket'])
        v = statistics.median(results['lsock'])
        g = statistics.median(results['gio-unix'])
        b = statistics.median(results['lsock-bytes'])
        print('# %s: socket %.1f MB/s, lsock %.1f MB/s (ratio %.3f), gio-unix %.1f MB/s '
              '(ratio %.3f), lsock-bytes %.1f MB/s (ratio %.3f)'
              % (label, s, v, v / s, g, g / s, b, b / s),
              flush=True)


if __name__ == '__main__':
    main()
