/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

#define BENCH_TYPE_FD_STREAM (bench_fd_stream_get_type ())
G_DECLARE_FINAL_TYPE (BenchFdStream, bench_fd_stream, BENCH, FD_STREAM, GIOStream)

/* Takes @fd, a connected stream socket; or -1, and then every read and
 * write transfers all it is asked at once, with no system call */
GIOStream *bench_fd_stream_new    (int            fd);
int        bench_fd_stream_get_fd (BenchFdStream *self);

G_END_DECLS
