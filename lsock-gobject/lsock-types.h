/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#if !defined (LSOCK_INSIDE) && !defined (LSOCK_COMPILATION)
# error "Only <lsock-gobject/lsock.h> can be included directly."
#endif

#include <glib-object.h>
#include <lsock-gobject/lsock-version-macros.h>

G_BEGIN_DECLS

typedef struct _LsockName     LsockName;
typedef struct _LsockListener LsockListener;
typedef struct _LsockStream   LsockStream;

/**
 * LsockNameKind:
 * @LSOCK_NAME_KIND_PATH: a socket file in the file system
 * @LSOCK_NAME_KIND_NAMESPACED: a name in a namespace that has no files: the
 *   Linux abstract socket namespace, or `\\.\pipe\` on Windows
 *
 * What kind of name an [class@Lsock.Name] is. A generic name becomes one of
 * these when it is made.
 *
 * Since: 1.0
 */
typedef enum
{
  LSOCK_NAME_KIND_PATH,
  LSOCK_NAME_KIND_NAMESPACED,
} LsockNameKind;

/**
 * LsockNameTypeSupport:
 * @LSOCK_NAME_TYPE_SUPPORT_ONLY_PATHS: only path names work (macOS, BSD)
 * @LSOCK_NAME_TYPE_SUPPORT_ONLY_NAMESPACED: only namespaced names work (Windows)
 * @LSOCK_NAME_TYPE_SUPPORT_BOTH: both kinds work (Linux)
 *
 * Which kinds of [class@Lsock.Name] this platform supports, as returned by
 * [func@Lsock.NameTypeSupport.query].
 *
 * Since: 1.0
 */
typedef enum
{
  LSOCK_NAME_TYPE_SUPPORT_ONLY_PATHS,
  LSOCK_NAME_TYPE_SUPPORT_ONLY_NAMESPACED,
  LSOCK_NAME_TYPE_SUPPORT_BOTH,
} LsockNameTypeSupport;

/**
 * LsockAccess:
 * @LSOCK_ACCESS_USER: only peers running as the listener's effective user
 *   may connect (the default)
 * @LSOCK_ACCESS_EVERYONE: any local user may connect
 *
 * Who may connect to an [class@Lsock.Listener].
 *
 * With %LSOCK_ACCESS_USER, socket files are created with mode 0600 (with no
 * moment of wider permissions), and every accepted peer's credentials are
 * checked, which also guards abstract names that have no permissions. A peer
 * of another user is closed and never returned by accept. On Windows the pipe
 * gets a DACL that grants access to the current user only.
 *
 * Since: 1.0
 */
typedef enum
{
  LSOCK_ACCESS_USER,
  LSOCK_ACCESS_EVERYONE,
} LsockAccess;

G_END_DECLS
