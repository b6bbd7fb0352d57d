/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Built by build-aux/install-check.sh against the installed VAPI. */

int main () {
    var support = Lsock.NameTypeSupport.query ();
    try {
        var name = new Lsock.Name.parse ("@x");
        stdout.printf ("vala: parsed \"@x\" as \"%s\" (kind %s)\n",
                       name.to_string (), name.kind.to_string ());
        if (name.kind != Lsock.NameKind.NAMESPACED) {
            stderr.printf ("vala: \"@x\" is not namespaced\n");
            return 1;
        }
    } catch (GLib.Error e) {
        if (support == Lsock.NameTypeSupport.ONLY_PATHS
            && e is GLib.IOError.NOT_SUPPORTED) {
            stdout.printf ("vala: @x not supported here (only paths)\n");
            return 0;
        }
        stderr.printf ("vala: Lsock.Name.parse (\"@x\") failed: %s\n", e.message);
        return 1;
    }
    return 0;
}
