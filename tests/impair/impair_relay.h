/* The relay's state, shared by its event loop (impair_relay.c) and the control channel
 * (impair_control.c). */
#ifndef IMPAIR_RELAY_H
#define IMPAIR_RELAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "impair_engine.h"
#include "impair_net.h"

struct relay {
  int client_fd;   /* bound to --listen; the client's datagrams arrive here */
  int upstream_fd; /* connected to --upstream from an ephemeral port */
  int stale_fd;    /* the upstream socket before the last rebind (what arrives is dropped) */
  struct net_addr listen, upstream, upstream_bind, client;
  bool have_upstream_bind, have_client;
  struct engine eng;
  struct rx_batch rx;
  struct tx_entry tx[DIR_COUNT][TX_BATCH]; /* datagrams on their way out, per direction */
  unsigned tx_n[DIR_COUNT];
  uint64_t rebinds;
  bool shutdown; /* the control channel asked the relay to exit */
};

/* Opens a new upstream socket (new ephemeral port) and sends from it from now on; the previous
 * one stays open (stale) until the next rebind so that late answers to it are counted, not
 * refused. 0, or -1 with a reason in err. */
int relay_rebind(struct relay *r, char *err, size_t errcap);
/* One JSON object of counters per direction, rebinds and the current upstream port. */
void relay_stats_json(struct relay *r, const char *event, char *out, size_t cap);
/* The local port of the current upstream socket. */
int relay_upstream_port(struct relay *r);
/* Zeroes the counters. */
void relay_reset_counters(struct relay *r);

#define RELAY_JSON_MAX 4096

#endif
