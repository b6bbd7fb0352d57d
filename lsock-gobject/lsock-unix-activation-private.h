/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#if !defined (LSOCK_COMPILATION)
# error "private header"
#endif

#include "lsock-name.h"

G_BEGIN_DECLS

/* Sockets passed by socket activation ($LISTEN_FDS), read once
 * (lsock-unix-activation.c). A listener borrows a copy of one (close-on-
 * exec, a new descriptor that it closes itself) and gives it back by its
 * index when it closes; one borrower at a time. */

/* The listening socket bound to @name, or -1 if none was passed (or it is
 * borrowed) */
int       _lsock_activation_borrow_bound   (LsockName   *name,
                                            int         *out_index);
/* The one named @fd_name in $LISTEN_FDNAMES, or with NULL the only one:
 * -1 with G_IO_ERROR_NOT_FOUND, INVALID_ARGUMENT (not a listening Unix
 * stream socket; several and no name) or ADDRESS_IN_USE (borrowed) */
int       _lsock_activation_borrow_named   (const char  *fd_name,
                                            int         *out_index,
                                            GError     **error);
void      _lsock_activation_give_back      (int          index);
void      _lsock_activation_set_keep_environment (gboolean keep);

G_END_DECLS
