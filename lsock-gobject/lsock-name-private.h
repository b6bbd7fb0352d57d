/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#if !defined (LSOCK_COMPILATION)
# error "private header"
#endif

#include "lsock-name.h"

G_BEGIN_DECLS

struct _LsockName
{
  GObject        parent_instance;

  LsockNameKind  kind;
  /* The path, or the namespaced name without its "@" */
  char          *name;
  /* What lsock_name_to_string() returns: "@name", or the path, exactly */
  char          *display;
  /* What error messages show, always UTF-8: display, with any byte that
   * is not UTF-8 as \xNN (NULL when display is UTF-8 already) */
  char          *shown;
  /* A generic name that became a path in the per-user private directory
   * (macOS, the BSDs): that directory is checked again at each use */
  gboolean       in_private_dir;
};

/* The string shown in error messages: "@foo" or the path, valid UTF-8
 * (bytes that are not are written \xNN); "(unnamed)" for NULL, the name
 * of an unnamed socket adopted by descriptor. (transfer none) */
const char           *_lsock_name_get_display                (LsockName   *self);

/* A namespaced name as error messages show it: "@name", with invalid
 * UTF-8 replaced. (transfer full) */
char                 *_lsock_name_dup_namespaced_display     (const char  *name);

/* Backend hooks (lsock-name-unix.c / lsock-name-win32.c). Each validates
 * @name for its kind on this platform and returns FALSE with
 * G_IO_ERROR_INVALID_ARGUMENT or G_IO_ERROR_NOT_SUPPORTED otherwise. */
LsockNameTypeSupport  _lsock_name_type_support_query_impl    (void);
gboolean              _lsock_name_check_path_impl            (const char  *path,
                                                              GError     **error);
gboolean              _lsock_name_check_namespaced_impl      (const char  *name,
                                                              GError     **error);
/* Resolves a generic name into its kind and the name of that kind. */
gboolean              _lsock_name_resolve_generic_impl       (const char     *name,
                                                              LsockNameKind  *out_kind,
                                                              char          **out_name,
                                                              GError        **error);

/* The path of @name in $XDG_RUNTIME_DIR/app/@app_id/, making and checking
 * the directories (both validated already) */
gboolean              _lsock_name_resolve_app_impl           (const char     *app_id,
                                                              const char     *name,
                                                              char          **out_path,
                                                              GError        **error);

#ifdef G_OS_WIN32
/* The full pipe path "\\.\pipe\NAME" of a namespaced name, in UTF-16 for
 * CreateNamedPipeW()/CreateFileW(). (transfer full), free with g_free() */
gunichar2            *_lsock_name_dup_pipe_path_utf16        (LsockName   *self);
#else
/* The per-user private directory for generic names where there is no
 * namespace (macOS, BSD): $XDG_RUNTIME_DIR if it is ours and 0700, else
 * /tmp/lsock-<uid>, created 0700 with its owner checked. Exposed for tests;
 * @runtime_dir and @tmp_dir override the environment when non-NULL. */
char                 *_lsock_name_ensure_private_dir         (const char  *runtime_dir,
                                                              const char  *tmp_dir,
                                                              GError     **error);

/* For a name in the private directory: that the directory is still ours
 * and private, as when the name was made (G_IO_ERROR_PERMISSION_DENIED if
 * not); TRUE for any other name */
gboolean              _lsock_name_check_private_dir          (LsockName   *self,
                                                              GError     **error);
/* Tests: a path name treated as one in the private directory */
LsockName            *_lsock_name_new_private_path_for_testing (const char *path);

# include <sys/socket.h>
# include <sys/un.h>
/* Fills @addr for connect()/bind(); returns the address length to pass. */
socklen_t             _lsock_name_to_sockaddr                (LsockName          *self,
                                                              struct sockaddr_un *addr);
/* The name of a socket address (getsockname(), getpeername()), or NULL if
 * it has none (unbound, a socketpair) or none that a name can hold */
LsockName            *_lsock_name_new_from_sockaddr          (const struct sockaddr_un *addr,
                                                              socklen_t           len);
/* Whether @addr is the address that @self binds to */
gboolean              _lsock_name_matches_sockaddr           (LsockName          *self,
                                                              const struct sockaddr_un *addr,
                                                              socklen_t           len);
#endif

G_END_DECLS
