/* The long-running side of awgproxy: owns the libuv loop, the tunnel device and the front-ends
 * for one config, in the client or the server role. */
#ifndef AWGPROXY_DAEMON_DAEMON_H
#define AWGPROXY_DAEMON_DAEMON_H

#include "config/config.h"
#include "config/config_set.h"
#include "daemon/workers.h"

typedef enum { DAEMON_CLIENT, DAEMON_SERVER } daemon_role;

/* Runs until SIGINT/SIGTERM; returns the exit status. worker: this process is one worker of a
 * sharded server (c already trimmed with worker_shard_config), NULL otherwise. */
int daemon_run(daemon_role role, app_config *c, const worker_identity *worker);
/* A client with several servers (client/server_set.h): one per server of set, whose merged
 * front-end ([Socks], [Forward], [Http], [Control], [Metrics], [Log], [Client]) the front-ends
 * use. paths[n_paths] are what set was loaded from (-c arguments), for reloads. All borrowed
 * until it returns. */
int daemon_run_client_set(config_set *set, const char *const *paths, size_t n_paths);

#endif
