/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Seconds per unit; each the least of a few batches of @n, so a lower
 * bound of what the same code costs inside a real program */
double bench_floor_round_trip    (guint n);
double bench_floor_connection    (guint n);
double bench_floor_checked_connection (guint n);
double bench_floor_async_message (guint n);
double bench_floor_iteration     (guint n);
double bench_floor_results           (guint n,
                                      guint n_results);

G_END_DECLS
