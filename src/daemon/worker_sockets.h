/* The UDP sockets a server's supervisor binds for its workers (see worker_sockets.c). */
#ifndef AWGPROXY_DAEMON_WORKER_SOCKETS_H
#define AWGPROXY_DAEMON_WORKER_SOCKETS_H

#include <stdbool.h>
#include <stdint.h>

#include "awg/awg_params.h"
#include "wg/shard.h"

typedef struct {
  int fd4[WG_SHARDS_MAX], fd6[WG_SHARDS_MAX]; /* socket i for worker i; -1 = family missing */
  unsigned n;
  bool steered; /* a BPF program sends data to the owner of its receiver index */
} worker_sockets;

/* Binds n sockets per family to port, each in the port's SO_REUSEPORT group, in worker order.
 * -1 with a message in err when neither family can bind. */
int worker_sockets_open(worker_sockets *s, uint16_t port, unsigned n, const awg_params *awg,
                        char *err, size_t errlen);
void worker_sockets_close(worker_sockets *s);

#endif
