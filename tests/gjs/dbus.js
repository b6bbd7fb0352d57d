// SPDX-License-Identifier: LGPL-2.1-or-later
//
// Peer-to-peer D-Bus from GJS over lsock streams, all asynchronous: a
// listener's accept_async and Lsock.Stream.connect_to_async (over a
// namespaced name and a path), and the two ends of Lsock.Stream.new_pair,
// each made into a GDBusConnection with new_dbus_connection_async (the
// server end with a GUID); the server exports an object, the client calls
// its methods with Gio.DBusConnection.call and checks the replies, the
// credentials EXTERNAL gave and the descriptor-passing capability.
//
// Run: gjs -m dbus.js (GI_TYPELIB_PATH / LD_LIBRARY_PATH set by meson)

import {
    GLib, Gio, Lsock, acceptAsync, assert, assertEq, assertIOError, check,
    connectAsync, pid, privateDir, removeDir, run, uniqueNamespaced,
} from './testlib.js';

const IFACE = 'org.gnome.LsockTest';
const PATH = '/org/gnome/LsockTest';
const XML = `
<node>
  <interface name="${IFACE}">
    <method name="Echo">
      <arg type="s" name="text" direction="in"/>
      <arg type="s" name="reply" direction="out"/>
    </method>
    <method name="Add">
      <arg type="i" name="a" direction="in"/>
      <arg type="i" name="b" direction="in"/>
      <arg type="i" name="sum" direction="out"/>
    </method>
    <method name="Fail"/>
  </interface>
</node>`;
const TIMEOUT_MS = 20000;
const uid = Gio.Credentials.new().get_unix_user();

function dbusConnectionAsync(stream, guid) {
    return new Promise((resolve, reject) => {
        stream.new_dbus_connection_async(guid, Gio.DBusConnectionFlags.NONE, null, null,
            (source, res) => {
                try {
                    resolve(source.new_dbus_connection_finish(res));
                } catch (e) {
                    reject(e);
                }
            });
    });
}

function callAsync(connection, method, params, replyType) {
    return new Promise((resolve, reject) => {
        connection.call(null, PATH, IFACE, method, params,
            replyType ? new GLib.VariantType(replyType) : null,
            Gio.DBusCallFlags.NONE, TIMEOUT_MS, null, (source, res) => {
                try {
                    resolve(source.call_finish(res));
                } catch (e) {
                    reject(e);
                }
            });
    });
}

function closeAsync(connection) {
    return new Promise((resolve, reject) => {
        connection.close(null, (source, res) => {
            try {
                resolve(source.close_finish(res));
            } catch (e) {
                reject(e);
            }
        });
    });
}

// Exports the test object on @connection; returns {id, calls}
function exportObject(connection) {
    const info = Gio.DBusNodeInfo.new_for_xml(XML).lookup_interface(IFACE);
    const calls = [];
    const id = connection.register_object(PATH, info,
        (conn, sender, path, iface, method, params, invocation) => {
            calls.push(method);
            switch (method) {
            case 'Echo': {
                const [text] = params.deepUnpack();
                invocation.return_value(new GLib.Variant('(s)', [`echo: ${text}`]));
                break;
            }
            case 'Add': {
                const [a, b] = params.deepUnpack();
                invocation.return_value(new GLib.Variant('(i)', [a + b]));
                break;
            }
            default:
                invocation.return_dbus_error(`${IFACE}.Error.Failed`, `${method} failed on purpose`);
            }
        }, null, null);
    assert(id > 0, 'register_object gave an id');
    return {id, calls};
}

// Both ends of a connected pair of streams, made into D-Bus peers at once;
// the server exports an object, the client calls it
async function dbusSession(serverStream, clientStream, label) {
    const guid = Gio.dbus_generate_guid();
    assert(Gio.dbus_is_guid(guid), 'a valid GUID');
    const making = Promise.all([
        dbusConnectionAsync(serverStream, guid),
        dbusConnectionAsync(clientStream, null),
    ]);
    assert(serverStream.is_closed() && clientStream.is_closed(),
        `${label}: the streams are consumed`);
    const [server, client] = await making;

    for (const c of [server, client]) {
        assert(c instanceof Gio.DBusConnection, `${label}: a GDBusConnection`);
        assert(!c.is_closed(), `${label}: open`);
        assertEq(c.get_unique_name(), null, `${label}: no message bus, no unique name`);
        assertEq(c.get_guid(), guid, `${label}: the server's GUID`);
        assert(c.get_capabilities() & Gio.DBusCapabilityFlags.UNIX_FD_PASSING,
            `${label}: descriptor passing negotiated`);
    }
    const creds = server.get_peer_credentials();
    assert(creds !== null, `${label}: EXTERNAL gave the server credentials`);
    assertEq(creds.get_unix_user(), uid, `${label}: peer uid`);
    assertEq(creds.get_unix_pid(), pid, `${label}: peer pid`);

    const {id, calls} = exportObject(server);

    const [echo, sum] = await Promise.all([
        callAsync(client, 'Echo', new GLib.Variant('(s)', [`hello over ${label}`]), '(s)'),
        callAsync(client, 'Add', new GLib.Variant('(ii)', [40, 2]), '(i)'),
    ]);
    assertEq(echo.deepUnpack()[0], `echo: hello over ${label}`, `${label}: Echo reply`);
    assertEq(sum.deepUnpack()[0], 42, `${label}: Add reply`);

    let err = null;
    try {
        await callAsync(client, 'Fail', null, null);
    } catch (e) {
        err = e;
    }
    assert(err instanceof GLib.Error, `${label}: Fail gives an error`);
    assertEq(Gio.DBusError.get_remote_error(err), `${IFACE}.Error.Failed`, `${label}: remote error name`);

    // The other way: the client exports too, the server calls it
    const back = exportObject(client);
    const reply = await callAsync(server, 'Echo', new GLib.Variant('(s)', ['from the server']), '(s)');
    assertEq(reply.deepUnpack()[0], 'echo: from the server', `${label}: call to the client`);
    assertEq(JSON.stringify(back.calls), '["Echo"]', `${label}: the client's object was called`);
    assert(client.unregister_object(back.id), `${label}: unregister on the client`);

    assertEq(JSON.stringify(calls.sort()), '["Add","Echo","Fail"]', `${label}: methods called`);
    assert(server.unregister_object(id), `${label}: unregister`);

    // The client hangs up; the server sees its peer vanish
    const vanished = new Promise(resolve => {
        server.connect('closed', (conn, remotePeerVanished) => resolve(remotePeerVanished));
    });
    await closeAsync(client);
    assert(client.is_closed(), `${label}: client closed`);
    assertEq(await vanished, true, `${label}: remote peer vanished`);
    assert(server.is_closed(), `${label}: server closed`);
}

async function overListener(name, label) {
    const listener = Lsock.Listener.new(name);
    const [accepted, connected] = await Promise.all([acceptAsync(listener), connectAsync(name)]);
    await dbusSession(accepted, connected, label);
    listener.close();
}

// The two ends of Lsock.Stream.new_pair(). Its boolean return is (skip),
// which older GJS still returns first
function newPair() {
    const ret = Lsock.Stream.new_pair();
    const ends = ret.length === 3 ? ret.slice(1) : ret;
    assertEq(ends.length, 2, 'new_pair gives two ends');
    assert(ends.every(s => s instanceof Lsock.Stream), 'both ends are Lsock.Streams');
    return ends;
}

async function overPair() {
    const [first, second] = newPair();
    assertEq(first.get_name(), null, 'a pair has no name');
    await dbusSession(first, second, 'a pair');
}

async function closedStream() {
    const [first, second] = newPair();
    first.close(null);
    let err = null;
    try {
        await dbusConnectionAsync(first, null);
    } catch (e) {
        err = e;
    }
    assertIOError(err, [Gio.IOErrorEnum.CLOSED], 'new_dbus_connection_async on a closed stream');
    second.close(null);
}

run(async () => {
    const dir = privateDir();
    try {
        await check('D-Bus over a namespaced name (accept_async + connect_async)',
            () => overListener(uniqueNamespaced('dbus'), 'a namespaced name'));
        await check('D-Bus over a path name (accept_async + connect_async)',
            () => overListener(Lsock.Name.parse(`${dir}/dbus.sock`), 'a path'));
        await check('D-Bus over new_pair', overPair);
        await check('new_dbus_connection_async on a closed stream', closedStream);
    } finally {
        removeDir(dir);
    }
});
