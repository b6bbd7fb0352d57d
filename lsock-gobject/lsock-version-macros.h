/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#if !defined (LSOCK_INSIDE) && !defined (LSOCK_COMPILATION)
# error "Only <lsock-gobject/lsock.h> can be included directly."
#endif

#include <glib.h>

/* Symbol visibility: self-contained, so the header works without a generated
 * export header. On Windows the library is built with LSOCK_COMPILATION and
 * users get dllimport unless they link the static library (LSOCK_STATIC_COMPILATION). */
#if defined (_WIN32) || defined (__CYGWIN__)
# if defined (LSOCK_COMPILATION) && !defined (LSOCK_STATIC_COMPILATION)
#  define _LSOCK_EXPORT __declspec(dllexport) extern
# elif defined (LSOCK_STATIC_COMPILATION)
#  define _LSOCK_EXPORT extern
# else
#  define _LSOCK_EXPORT __declspec(dllimport) extern
# endif
#elif defined (__GNUC__) && __GNUC__ >= 4
# define _LSOCK_EXPORT __attribute__((visibility ("default"))) extern
#else
# define _LSOCK_EXPORT extern
#endif

#define LSOCK_AVAILABLE_IN_ALL _LSOCK_EXPORT
#define LSOCK_AVAILABLE_IN_1_0 _LSOCK_EXPORT
