// SPDX-License-Identifier: LGPL-2.1-or-later
//
// An asynchronous round trip through the typelib from GJS: a listener
// started with start() whose "incoming" handler echoes with async reads and
// writes, clients made with Lsock.Stream.connect_to_async, every byte checked;
// accept_async; and the failure paths NOT_FOUND and INVALID_ARGUMENT.
//
// Run: gjs -m roundtrip.js (GI_TYPELIB_PATH / LD_LIBRARY_PATH set by meson)

import {
    GLib, Gio, Lsock, acceptAsync, assert, assertBytesEqual, assertEq,
    assertIOError, assertThrowsIOError, check, connectAsync,
    privateDir, pseudoRandomBytes, readAsync, readToEofAsync, removeDir, run,
    uniqueNamespaced, writeAllAsync,
} from './testlib.js';

// Echoes everything read on @stream until EOF, then closes it
async function echo(stream) {
    const istream = stream.get_input_stream();
    const ostream = stream.get_output_stream();
    let total = 0;
    for (;;) {
        const chunk = await readAsync(istream, 65536);
        if (chunk.length === 0)
            break;
        total += chunk.length;
        await writeAllAsync(ostream, chunk);
    }
    stream.close(null);
    return total;
}

// Starts an echo service on @name; returns {listener, done(): promise of
// the byte counts of the first @n connections}
function startEchoServer(name, n) {
    const listener = Lsock.Listener.new(name);
    const echoes = [];
    let wake = null;
    const streams = [];  // keeps the accepted streams alive

    listener.connect('incoming', (self, stream) => {
        assert(self === listener, 'the signal comes from our listener');
        assert(stream instanceof Lsock.Stream, 'incoming gives an Lsock.Stream');
        assert(stream.get_name().equal(name), 'the stream has the listener name');
        streams.push(stream);
        echoes.push(echo(stream));
        if (echoes.length === n && wake)
            wake();
        return true;
    });
    assert(!listener.is_active(), 'not active before start()');
    listener.start();
    assert(listener.is_active(), 'active after start()');

    const allIncoming = new Promise(resolve => {
        wake = resolve;
        if (echoes.length === n)
            resolve();
    });
    return {
        listener,
        done: async () => {
            await allIncoming;
            return Promise.all(echoes);
        },
    };
}

async function echoClient(name, payload) {
    const stream = await connectAsync(name);
    assert(stream instanceof Lsock.Stream, 'connect_async gives an Lsock.Stream');
    assert(stream instanceof Gio.IOStream, 'an Lsock.Stream is a GIOStream');
    const creds = stream.get_peer_credentials();
    assertEq(creds.get_unix_pid(), Gio.Credentials.new().get_unix_pid(), 'peer pid');
    // Write and read at the same time, then half-close
    const reading = readToEofAsync(stream.get_input_stream());
    await writeAllAsync(stream.get_output_stream(), payload);
    assert(stream.shutdown(false, true), 'shutdown(write)');
    const got = await reading;
    stream.close(null);
    return got;
}

async function echoRoundTrip(name, label) {
    const N = 4;
    const server = startEchoServer(name, N);
    const payloads = [];
    for (let i = 0; i < N; i++)
        payloads.push(pseudoRandomBytes(100000 + 4099 * i, i + 1));
    // a small message too
    payloads[0] = new TextEncoder().encode(`hello from gjs over ${label}`);

    const results = await Promise.all(payloads.map(p => echoClient(name, p)));
    for (let i = 0; i < N; i++)
        assertBytesEqual(results[i], payloads[i], `${label} client ${i} echo`);

    const counts = (await server.done()).sort((a, b) => a - b);
    const want = payloads.map(p => p.length).sort((a, b) => a - b);
    assertEq(JSON.stringify(counts), JSON.stringify(want), 'bytes the server echoed');

    server.listener.stop();
    assert(!server.listener.is_active(), 'stopped');
    server.listener.close();
    assert(server.listener.is_closed(), 'closed');
}

async function acceptAsyncRoundTrip(name) {
    const listener = Lsock.Listener.new(name);
    const [server, client] = await Promise.all([acceptAsync(listener), connectAsync(name)]);
    const msg = new TextEncoder().encode('accept_async works');
    await writeAllAsync(client.get_output_stream(), msg);
    client.close(null);
    assertBytesEqual(await readToEofAsync(server.get_input_stream()), msg, 'accept_async data');
    server.close(null);
    listener.close();
}

async function failures(dir) {
    const missing = uniqueNamespaced('missing');
    let err = null;
    try {
        await connectAsync(missing);
    } catch (e) {
        err = e;
    }
    assertIOError(err, [Gio.IOErrorEnum.NOT_FOUND], 'connect_async to a missing name');
    assert(err.message.includes(missing.to_string()), `the name is in "${err.message}"`);

    assertThrowsIOError(() => Lsock.Stream.connect_to(missing, null),
        [Gio.IOErrorEnum.NOT_FOUND], 'connect to a missing name');
    assertThrowsIOError(() => Lsock.Stream.connect_to(Lsock.Name.parse(`${dir}/nothing`), null),
        [Gio.IOErrorEnum.NOT_FOUND], 'connect to a missing path');
    assertThrowsIOError(() => Lsock.Name.parse(''),
        [Gio.IOErrorEnum.INVALID_ARGUMENT], 'an empty name');
    assertThrowsIOError(() => Lsock.Name.parse(`@${'x'.repeat(108)}`),
        [Gio.IOErrorEnum.INVALID_ARGUMENT], 'a namespaced name that is too long');

    // A pending accept_async, cancelled
    const listener = Lsock.Listener.new(uniqueNamespaced('cancel'));
    const cancellable = new Gio.Cancellable();
    const pending = acceptAsync(listener, cancellable);
    GLib.idle_add(GLib.PRIORITY_DEFAULT, () => {
        cancellable.cancel();
        return GLib.SOURCE_REMOVE;
    });
    err = null;
    try {
        await pending;
    } catch (e) {
        err = e;
    }
    assertIOError(err, [Gio.IOErrorEnum.CANCELLED], 'cancelled accept_async');
    listener.close();
    assertThrowsIOError(() => listener.accept(null),
        [Gio.IOErrorEnum.CLOSED], 'accept on a closed listener');
}

run(async () => {
    const dir = privateDir();
    try {
        await check('echo over a namespaced name with incoming + connect_async',
            () => echoRoundTrip(uniqueNamespaced('echo'), 'a namespaced name'));
        await check('echo over a path name with incoming + connect_async',
            () => echoRoundTrip(Lsock.Name.parse(`${dir}/echo.sock`), 'a path'));
        assert(!GLib.file_test(`${dir}/echo.sock`, GLib.FileTest.EXISTS),
            'the listener removed its socket file');
        await check('accept_async + connect_async',
            () => acceptAsyncRoundTrip(uniqueNamespaced('accept')));
        await check('failure paths', () => failures(dir));
    } finally {
        removeDir(dir);
    }
});
