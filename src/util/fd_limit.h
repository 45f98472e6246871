/* Room for the file descriptors a cap allows: every client connection (SOCKS, HTTP) and every
 * exit connection holds one. */
#ifndef AWGPROXY_UTIL_FD_LIMIT_H
#define AWGPROXY_UTIL_FD_LIMIT_H

#include <stdint.h>

/* Raises the soft RLIMIT_NOFILE towards `room` (within the hard limit); when even `need` does
 * not fit under the hard limit, logs a warning under component naming the cap (key, e.g.
 * "[Server] MaxConnections") and how to fix it. Never lowers the limit. room >= need: headroom
 * for bursts (connections past a cap still hold a descriptor until they are answered). */
void fd_limit_ensure(uint64_t need, uint64_t room, const char *component, const char *key);

#endif
