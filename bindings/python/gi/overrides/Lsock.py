# SPDX-License-Identifier: LGPL-2.1-or-later
#
# PyGObject overrides for Lsock 1.0, loaded by `from gi.repository import
# Lsock` when this file is in a gi/overrides directory on the Python path
# (installed by meson with -Dpython_overrides, see bindings/python/).
#
# They only make the introspected API more Pythonic; nothing here is needed
# to use the library:
#
# - Lsock.Name compares with == and != by value (Lsock.Name.equal) and
#   hashes like its value (Lsock.Name.hash), so names work as dict keys and
#   in sets; str() is to_string() and repr() reads back as Python.
# - Lsock.Stream.send_bytes() and send_bytes_async() take any bytes-like
#   object (bytes, bytearray, memoryview, ...) as well as a GLib.Bytes, and
#   still send all of it: a copy goes into a GLib.Bytes, which the library
#   holds until the send is done.

from ..overrides import override
from ..module import get_introspection_module

from gi.repository import GLib

Lsock = get_introspection_module('Lsock')

__all__ = []


class Name(Lsock.Name):
    """A socket name; equal names (same kind, same bytes) are == and hash
    alike. No file system lookup is made: two paths to one file differ."""

    def __eq__(self, other):
        if not isinstance(other, Lsock.Name):
            return NotImplemented
        return Lsock.Name.equal(self, other)

    # Needed although Python derives != from ==: GObject.Object has its own
    # (identity) __ne__, which a subclass would otherwise inherit.
    def __ne__(self, other):
        if not isinstance(other, Lsock.Name):
            return NotImplemented
        return not Lsock.Name.equal(self, other)

    def __hash__(self):
        return Lsock.Name.hash(self)

    def __str__(self):
        string = self.to_string()
        return string if string is not None else repr(self)

    def __repr__(self):
        string = self.to_string()
        if string is None:  # a Name() made without a name
            return super().__repr__()
        return 'Lsock.Name.parse(%r)' % (string,)


Name = override(Name)
__all__.append('Name')


def _to_glib_bytes(data):
    """@data as a GLib.Bytes: itself if it is one, else a copy of its
    buffer (PyGObject would turn a bytearray or a memoryview into a
    sequence of ints, slowly, and an array('i') into wrong bytes)."""
    if isinstance(data, GLib.Bytes):
        return data
    if not isinstance(data, bytes):
        data = memoryview(data).tobytes()  # TypeError if not bytes-like
    return GLib.Bytes.new(data)


class Stream(Lsock.Stream):

    def send_bytes(self, data, cancellable=None):
        """Sends all of @data (a GLib.Bytes or any bytes-like object),
        blocking until it is written; raises GLib.Error on error, when some
        of it may have been sent. Returns True."""
        return Lsock.Stream.send_bytes(self, _to_glib_bytes(data), cancellable)

    def send_bytes_async(self, data, io_priority=GLib.PRIORITY_DEFAULT,
                         cancellable=None, callback=None, *user_data):
        """Sends all of @data (a GLib.Bytes or any bytes-like object)
        without blocking, as one operation with no short writes; @data may
        be changed or dropped as soon as this returns. Call
        send_bytes_finish() from @callback(stream, result, *user_data)."""
        Lsock.Stream.send_bytes_async(self, _to_glib_bytes(data), io_priority,
                                      cancellable, callback, *user_data)


Stream = override(Stream)
__all__.append('Stream')
