// SPDX-License-Identifier: LGPL-2.1-or-later
//
// Lsock.Name from GJS: the name syntax, round trips, equality, errors, and
// a synchronous round trip with GObject properties and the timeout.
//
// Run: gjs -m names.js

import {
    GLib, Gio, Lsock, assert, assertBytesEqual, assertEq,
    assertThrowsIOError, check, privateDir, removeDir, run, uniqueNamespaced,
} from './testlib.js';

const NS = Lsock.NameKind.NAMESPACED;
const PATH = Lsock.NameKind.PATH;

function syntax() {
    const cases = [
        ['@foo', NS, 'foo', '@foo'],
        ['\\\\.\\pipe\\foo', NS, 'foo', '@foo'],
        ['/run/x/sock', PATH, '/run/x/sock', '/run/x/sock'],
        ['./foo', PATH, 'foo', './foo'],
        ['a/b', PATH, 'a/b', 'a/b'],
        ['.hidden', PATH, '.hidden', '.hidden'],
        ['generic', NS, 'generic', '@generic'],  // Linux: namespaced
    ];
    for (const [string, kind, name, display] of cases) {
        const n = Lsock.Name.parse(string);
        assertEq(n.get_kind(), kind, `kind of ${string}`);
        assertEq(n.kind, kind, `kind property of ${string}`);
        assertEq(n.get_name(), name, `name of ${string}`);
        assertEq(n.name, name, `name property of ${string}`);
        assertEq(n.to_string(), display, `to_string of ${string}`);
        const back = Lsock.Name.parse(n.to_string());
        assert(back.equal(n), `${string} round trip`);
        assertEq(back.hash(), n.hash(), `${string} hash`);
    }
    assert(!Lsock.Name.parse('@x').equal(Lsock.Name.new_path('x')), 'kinds differ');
    assert(!Lsock.Name.parse('@x').equal(Lsock.Name.parse('@y')), 'names differ');
    assertEq(Lsock.name_type_support_query(), Lsock.NameTypeSupport.BOTH, 'Linux supports both');
}

function invalid() {
    for (const s of ['', '@', `/${'p'.repeat(107)}`, `@${'n'.repeat(108)}`]) {
        const e = assertThrowsIOError(() => Lsock.Name.parse(s),
            [Gio.IOErrorEnum.INVALID_ARGUMENT], `parse("${s.slice(0, 10)}…")`);
        assert(e.message.includes(s.replace(/^@/, '')), `the name is in "${e.message}"`);
    }
    assertThrowsIOError(() => Lsock.Name.new_generic('a/b'),
        [Gio.IOErrorEnum.INVALID_ARGUMENT], 'a generic name with /');
}

function syncRoundTrip(name) {
    const listener = Lsock.Listener.new(name);
    assert(listener.name.equal(name), 'listener name property');
    const client = Lsock.Stream.connect_to(name, null);
    const server = listener.accept(null);
    const msg = new TextEncoder().encode('sync from gjs');
    client.get_output_stream().write_bytes(new GLib.Bytes(msg), null);
    const got = server.get_input_stream().read_bytes(100, null).toArray();
    assertBytesEqual(got, msg, 'sync bytes');

    // the timeout property: a read with nothing to read times out
    server.timeout = 50;
    assertEq(server.get_timeout(), 50, 'timeout');
    assertThrowsIOError(() => server.get_input_stream().read_bytes(10, null),
        [Gio.IOErrorEnum.TIMED_OUT], 'read with a timeout');

    client.close(null);
    assertEq(server.get_input_stream().read_bytes(10, null).get_size(), 0, 'EOF');
    server.close(null);
    listener.close();
    assertThrowsIOError(() => listener.accept(null), [Gio.IOErrorEnum.CLOSED],
        'accept after close');
}

run(async () => {
    const dir = privateDir();
    try {
        await check('name syntax', syntax);
        await check('invalid names', invalid);
        await check('sync round trip, namespaced', () => syncRoundTrip(uniqueNamespaced('sync')));
        await check('sync round trip, path', () => syncRoundTrip(Lsock.Name.parse(`${dir}/s`)));
        await check('address in use', () => {
            const name = uniqueNamespaced('inuse');
            const l = Lsock.Listener.new(name);
            assertThrowsIOError(() => Lsock.Listener.new(name),
                [Gio.IOErrorEnum.ADDRESS_IN_USE], 'second listener');
            l.close();
        });
    } finally {
        removeDir(dir);
    }
});
