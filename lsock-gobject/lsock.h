/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#define LSOCK_INSIDE

#include <gio/gio.h>

#include <lsock-gobject/lsock-version.h>
#include <lsock-gobject/lsock-version-macros.h>
#include <lsock-gobject/lsock-types.h>
#include <lsock-gobject/lsock-enum-types.h>
#include <lsock-gobject/lsock-name.h>
#include <lsock-gobject/lsock-listener.h>
#include <lsock-gobject/lsock-stream.h>
#include <lsock-gobject/lsock-async-result.h>

#undef LSOCK_INSIDE
