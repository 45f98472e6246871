/* The server's SOCKS service (exit_socks.c) as seen from outside the exit: its counters, for the
 * metrics and the control API (the same shape as the client's socks_server_get_stats). */
#ifndef AWGPROXY_EXIT_EXIT_SOCKS_H
#define AWGPROXY_EXIT_EXIT_SOCKS_H

#include <stdbool.h>

#include "exit/exit.h"
#include "socks/socks_session.h"

/* The tunnel listener's and LocalSocks' counters added together; false (out zeroed) when neither
 * runs. */
bool exit_socks_get_stats(const exit_ctx *x, socks_stats *out);

#endif
