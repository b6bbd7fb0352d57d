// SPDX-License-Identifier: LGPL-2.1-or-later
//
// Small helpers shared by the GJS tests: TAP-like output, a watchdog, unique
// names, and promise wrappers around the asynchronous calls.

import GLib from 'gi://GLib';
import Gio from 'gi://Gio';
import Lsock from 'gi://Lsock?version=1.0';
import System from 'system';

export {GLib, Gio, Lsock};

const PRIO = GLib.PRIORITY_DEFAULT;
let counter = 0;
let tests = 0;

export const pid = Gio.Credentials.new().get_unix_pid();

// A name no other process or test uses: pid + counter
export function uniqueNamespaced(tag) {
    counter++;
    return Lsock.Name.parse(`@lsock-gjs-${tag}-${pid}-${counter}`);
}

export function privateDir() {
    return GLib.Dir.make_tmp('lsock-gjs-XXXXXX');
}

export function removeDir(dir) {
    // Socket files are reclaimed by the listeners; remove what is left
    const d = Gio.File.new_for_path(dir);
    const e = d.enumerate_children('standard::name', Gio.FileQueryInfoFlags.NOFOLLOW_SYMLINKS, null);
    let info;
    while ((info = e.next_file(null)) !== null)
        d.get_child(info.get_name()).delete(null);
    e.close(null);
    d.delete(null);
}

export class AssertionError extends Error {}

export function assert(cond, message) {
    if (!cond)
        throw new AssertionError(`assertion failed: ${message}`);
}

export function assertEq(a, b, message) {
    if (a !== b)
        throw new AssertionError(`${message}: expected ${b}, got ${a}`);
}

export function assertBytesEqual(got, want, message) {
    assertEq(got.length, want.length, `${message}: length`);
    for (let i = 0; i < want.length; i++) {
        if (got[i] !== want[i])
            throw new AssertionError(`${message}: byte ${i} is ${got[i]}, expected ${want[i]}`);
    }
}

export function assertIOError(e, codes, message) {
    if (!(e instanceof GLib.Error))
        throw new AssertionError(`${message}: expected a GLib.Error, got ${e}`);
    if (!codes.some(c => e.matches(Gio.IOErrorEnum, c)))
        throw new AssertionError(`${message}: expected G_IO_ERROR ${codes}, got ${e.domain}/${e.code}: ${e.message}`);
    return e;
}

export function assertThrowsIOError(fn, codes, message) {
    try {
        fn();
    } catch (e) {
        return assertIOError(e, codes, message);
    }
    throw new AssertionError(`${message}: did not throw`);
}

// Deterministic pseudo-random bytes (xorshift32), so failures reproduce
export function pseudoRandomBytes(n, seed) {
    const out = new Uint8Array(n);
    let x = (seed * 2654435761) >>> 0 || 1;
    for (let i = 0; i < n; i++) {
        x ^= x << 13; x >>>= 0;
        x ^= x >>> 17;
        x ^= x << 5; x >>>= 0;
        out[i] = x & 0xff;
    }
    return out;
}

export function concat(chunks) {
    const total = chunks.reduce((n, c) => n + c.length, 0);
    const out = new Uint8Array(total);
    let off = 0;
    for (const c of chunks) {
        out.set(c, off);
        off += c.length;
    }
    return out;
}

export function connectAsync(name, cancellable = null) {
    return new Promise((resolve, reject) => {
        Lsock.Stream.connect_to_async(name, cancellable, (source, res) => {
            try {
                resolve(Lsock.Stream.connect_to_finish(res));
            } catch (e) {
                reject(e);
            }
        });
    });
}

export function acceptAsync(listener, cancellable = null) {
    return new Promise((resolve, reject) => {
        listener.accept_async(cancellable, (source, res) => {
            try {
                resolve(source.accept_finish(res));
            } catch (e) {
                reject(e);
            }
        });
    });
}

export function readAsync(istream, count) {
    return new Promise((resolve, reject) => {
        istream.read_bytes_async(count, PRIO, null, (source, res) => {
            try {
                resolve(source.read_bytes_finish(res).toArray());
            } catch (e) {
                reject(e);
            }
        });
    });
}

function writeSomeAsync(ostream, u8) {
    return new Promise((resolve, reject) => {
        ostream.write_bytes_async(new GLib.Bytes(u8), PRIO, null, (source, res) => {
            try {
                resolve(source.write_bytes_finish(res));
            } catch (e) {
                reject(e);
            }
        });
    });
}

export async function writeAllAsync(ostream, u8) {
    let off = 0;
    while (off < u8.length) {
        const n = await writeSomeAsync(ostream, u8.subarray(off, off + 65536));
        assert(n > 0, 'a write made progress');
        off += n;
    }
}

export async function readToEofAsync(istream) {
    const chunks = [];
    for (;;) {
        const chunk = await readAsync(istream, 65536);
        if (chunk.length === 0)
            return concat(chunks);
        chunks.push(chunk);
    }
}

// Runs the async function @main in a main loop with a watchdog, prints a
// TAP-like report and exits non-zero on failure or timeout.
export function run(main, timeoutSeconds = 30) {
    const loop = new GLib.MainLoop(null, false);
    let status = 1;

    GLib.timeout_add_seconds(GLib.PRIORITY_HIGH, timeoutSeconds, () => {
        printerr(`Bail out! watchdog: no result after ${timeoutSeconds} s`);
        System.exit(2);
        return GLib.SOURCE_REMOVE;
    });

    main().then(() => {
        print(`1..${tests}`);
        status = 0;
    }).catch(e => {
        printerr(`not ok - ${e}\n${e.stack ?? ''}`);
    }).finally(() => loop.quit());

    loop.run();
    System.exit(status);
}

export async function check(description, fn) {
    tests++;
    try {
        await fn();
    } catch (e) {
        print(`not ok ${tests} - ${description}`);
        throw e;
    }
    print(`ok ${tests} - ${description}`);
}
