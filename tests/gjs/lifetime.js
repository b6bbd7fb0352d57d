// SPDX-License-Identifier: LGPL-2.1-or-later
//
// GIO's lifetimes and GInitable, from GJS: a started listener serves on
// after the script drops it (as a Gio.SocketService does) until it is
// stopped; a stream dropped with a read pending finishes the read; a
// listener made with properties but not initialised says so.
//
// Run: gjs -m lifetime.js (GI_TYPELIB_PATH / LD_LIBRARY_PATH set by meson)

import {
    GLib, Gio, Lsock, assert, assertEq, assertIOError, assertThrowsIOError, check,
    connectAsync, readAsync, run, uniqueNamespaced, writeAllAsync,
} from './testlib.js';
import System from 'system';

function waitFor(cond, what) {
    return new Promise((resolve, reject) => {
        const started = GLib.get_monotonic_time();
        GLib.timeout_add(GLib.PRIORITY_DEFAULT, 5, () => {
            System.gc();
            if (cond()) {
                resolve();
                return GLib.SOURCE_REMOVE;
            }
            if (GLib.get_monotonic_time() - started > 10_000_000) {
                reject(new Error(`timed out waiting for ${what}`));
                return GLib.SOURCE_REMOVE;
            }
            return GLib.SOURCE_CONTINUE;
        });
    });
}

async function startedListenerServes() {
    const name = uniqueNamespaced('service');
    const served = [];

    (function () {
        const listener = Lsock.Listener.new(name);
        listener.connect('incoming', (self, stream) => {
            served.push(stream);
            if (served.length === 2)
                self.stop();
            return true;
        });
        listener.start();
        assert(listener.active, 'active after start()');
    })();
    // Collected in a later job: a listener that did not keep itself alive
    // would be gone (closed) by the time the clients connect
    await waitFor(() => {
        System.gc();
        return true;
    }, 'a collection');
    const clients = [await connectAsync(name), await connectAsync(name)];
    await waitFor(() => served.length === 2, 'two incoming peers');
    await writeAllAsync(served[0].get_output_stream(), new TextEncoder().encode('hi'));
    const got = await readAsync(clients[0].get_input_stream(), 2);
    assertEq(new TextDecoder().decode(got), 'hi', 'the service answered');
    for (const c of clients)
        c.close(null);
    for (const s of served)
        s.close(null);
}

async function droppedStreamFinishesRead() {
    const name = uniqueNamespaced('dropped');
    const listener = Lsock.Listener.new(name);
    const client = Lsock.Stream.connect_to(name, null);
    let reads = [];

    (function () {
        const server = listener.accept(null);
        server.get_input_stream().read_bytes_async(16, GLib.PRIORITY_DEFAULT, null,
            (source, res) => reads.push(new TextDecoder().decode(source.read_bytes_finish(res).toArray())));
    })();
    await waitFor(() => {
        System.gc();
        return true;
    }, 'a collection');
    await writeAllAsync(client.get_output_stream(), new TextEncoder().encode('late'));
    await waitFor(() => reads.length === 1, 'the pending read');
    assertEq(reads[0], 'late', 'the read got the data');
    client.close(null);
    listener.close();
}

function uninitialisedListener() {
    const name = uniqueNamespaced('init');
    const listener = new Lsock.Listener({name, backlog: 3});
    const e = assertThrowsIOError(() => listener.accept(null),
        [Gio.IOErrorEnum.NOT_INITIALIZED], 'accept before init()');
    assert(e.message.includes('not initialised'), `says so: ${e.message}`);
    assert(listener.init(null), 'init() listens');
    assertEq(listener.get_backlog(), 3, 'with the backlog given');
    const client = Lsock.Stream.connect_to(name, null);
    listener.accept(null).close(null);
    client.close(null);
    listener.close();

    try {
        new Lsock.Listener().init(null);
        throw new Error('init() without a name succeeded');
    } catch (err) {
        assertIOError(err, [Gio.IOErrorEnum.INVALID_ARGUMENT], 'init() without a name');
    }
}

run(async () => {
    await check('a started listener serves without a reference', startedListenerServes);
    await check('a dropped stream finishes its pending read', droppedStreamFinishesRead);
    await check('a listener made without init() says so', uninitialisedListener);
});
