/* The long-running side of awgproxy: owns the libuv loop, the tunnel device and the front-ends
 * for one config, in the client or the server role. */
#ifndef AWGPROXY_DAEMON_DAEMON_H
#define AWGPROXY_DAEMON_DAEMON_H

#include "config/config.h"

typedef enum { DAEMON_CLIENT, DAEMON_SERVER } daemon_role;

/* Runs until SIGINT/SIGTERM; returns the exit status. */
int daemon_run(daemon_role role, awg_config *c);

#endif
