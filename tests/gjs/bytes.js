// SPDX-License-Identifier: LGPL-2.1-or-later
//
// The fast path from GJS: send_bytes_async() writes all of a large buffer
// in one operation (no short writes to loop on), receive_bytes_async()
// reads it back in pieces, every byte checked, and the end of the stream
// is an empty GLib.Bytes.
//
// Run: gjs -m bytes.js (GI_TYPELIB_PATH / LD_LIBRARY_PATH set by meson)

import {
    GLib, Lsock, assert, assertBytesEqual, assertEq, check, concat,
    pseudoRandomBytes, run,
} from './testlib.js';

function sendBytes(stream, bytes) {
    return new Promise((resolve, reject) => {
        stream.send_bytes_async(bytes, GLib.PRIORITY_DEFAULT, null, (s, res) => {
            try {
                resolve(s.send_bytes_finish(res));
            } catch (e) {
                reject(e);
            }
        });
    });
}

function receiveBytes(stream, max) {
    return new Promise((resolve, reject) => {
        stream.receive_bytes_async(max, GLib.PRIORITY_DEFAULT, null, (s, res) => {
            try {
                resolve(s.receive_bytes_finish(res).toArray());
            } catch (e) {
                reject(e);
            }
        });
    });
}

async function big() {
    const pair = Lsock.Stream.new_pair();
    // GJS 1.74 keeps the boolean return value
    const [a, b] = pair.length === 3 ? pair.slice(1) : pair;
    const data = pseudoRandomBytes(4 * 1024 * 1024, 3);

    const sent = sendBytes(a, new GLib.Bytes(data)).then(ok => {
        a.close(null);
        return ok;
    });
    const chunks = [];
    let n = 0;
    for (;;) {
        const chunk = await receiveBytes(b, 65536);
        if (chunk.length === 0)
            break;
        chunks.push(chunk);
        n++;
    }
    assert(await sent, 'send_bytes_finish() says all was sent');
    assert(n > 1, 'received in more than one piece');
    assertBytesEqual(concat(chunks), data, 'every byte, in order');
    assertEq((await receiveBytes(b, 10)).length, 0, 'the end of the stream again');
    b.close(null);
}

run(async () => {
    await check('4 MiB through send_bytes_async and receive_bytes_async', big);
});
