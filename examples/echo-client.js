#!/usr/bin/gjs -m
// SPDX-License-Identifier: LGPL-2.1-or-later
//
// The echo client in GJS, asynchronous: connects, sends a few lines,
// half-closes, reads the echo back and checks it, all on the main loop.
//
//   lsock listen --echo lsock-demo &
//   gjs -m echo-client.js lsock-demo
//
// Run from a build tree with:
//   GI_TYPELIB_PATH=_build/lsock-gobject LD_LIBRARY_PATH=_build/lsock-gobject \
//     gjs -m examples/echo-client.js

import GLib from 'gi://GLib';
import Gio from 'gi://Gio';
import Lsock from 'gi://Lsock?version=1.0';
import System from 'system';

// Promise-returning versions of the *_async/*_finish pairs
Gio._promisify(Lsock.Stream, 'connect_to_async', 'connect_to_finish');
Gio._promisify(Gio.OutputStream.prototype, 'write_bytes_async');
Gio._promisify(Gio.OutputStream.prototype, 'splice_async');

const LINES = ['Hello from GJS', 'Local sockets, one API'];

async function run(nameString) {
    // "lsock-demo" is a generic name: an abstract socket on Linux
    const name = Lsock.Name.parse(nameString);
    const stream = await Lsock.Stream.connect_to_async(name, null);

    // Read up to the end of stream into memory, while we write: the echo
    // comes back as we send, and must be read for the service to go on
    const memory = Gio.MemoryOutputStream.new_resizable();
    const received = memory.splice_async(stream.get_input_stream(),
        Gio.OutputStreamSpliceFlags.CLOSE_TARGET, GLib.PRIORITY_DEFAULT, null);

    const sent = LINES.map(line => `${line}\n`).join('');
    const bytes = new TextEncoder().encode(sent);
    let written = 0;
    while (written < bytes.length) {
        written += await stream.get_output_stream().write_bytes_async(
            new GLib.Bytes(bytes.subarray(written)), GLib.PRIORITY_DEFAULT, null);
    }
    LINES.forEach(line => print(`sent: ${line}`));

    // Half-close: the service echoes everything, then closes its end
    stream.shutdown(false, true);

    await received;
    stream.close(null);

    const got = new TextDecoder().decode(memory.steal_as_bytes().toArray());

    got.split('\n').filter(line => line !== '').forEach(line => print(`got: ${line}`));
    return got === sent;
}

const loop = new GLib.MainLoop(null, false);
let status = 1;
run(ARGV[0] ?? 'lsock-demo').then(same => {
    if (same)
        status = 0;
    else
        printerr('echo-client.js: the echo differs from what was sent');
}).catch(e => {
    printerr(`echo-client.js: ${e.message}`);
}).finally(() => loop.quit());
loop.run();
System.exit(status);
