/* The impairment relay's shared types: per-direction settings and counters.
 *
 * The relay (impair_relay.c) carries UDP between one client and one upstream server and impairs
 * each direction on its own: "up" is client -> server, "down" is server -> client. A test tool,
 * not part of awgproxy: it lives under tests/ and is never installed. */
#ifndef IMPAIR_H
#define IMPAIR_H

#include <stdbool.h>
#include <stdint.h>

enum { DIR_UP = 0, DIR_DOWN = 1, DIR_COUNT = 2 };

#define DGRAM_MAX 65535u /* largest datagram the relay accepts and forwards */
#define MS_TO_NS(ms) ((uint64_t)(ms)*1000000ull)

/* What happens to one direction. Probabilities are in [0, 1]; times in ns; 0 = off. */
struct impair_settings {
  double loss;          /* drop probability */
  double dup;           /* probability that a datagram is sent twice */
  double reorder;       /* probability that a datagram is held back by reorder_ns */
  uint64_t reorder_ns;  /* how long a reordered datagram is held back (default 10 ms) */
  uint64_t delay_ns;    /* fixed delay */
  uint64_t jitter_ns;   /* the delay is uniform in [delay - jitter, delay + jitter], >= 0 */
  uint64_t rate_bps;    /* bytes per second, 0 = unlimited */
  uint64_t queue_bytes; /* bytes the rate limiter may queue; beyond: tail drop */
  uint32_t mtu;         /* drop datagrams longer than this (payload bytes), 0 = off */
  bool blackhole;       /* drop everything */
};

/* What the relay did with one direction's datagrams. Identity (once nothing is held):
 *   received + duplicated = forwarded + dropped (the sum of every dropped_* below) + held */
struct impair_counters {
  uint64_t received, bytes_received;
  uint64_t forwarded, bytes_forwarded;
  uint64_t dropped_loss, dropped_blackhole, dropped_mtu, dropped_queue;
  uint64_t dropped_pool;     /* no free slot to hold the datagram (--max-held) */
  uint64_t dropped_send;     /* the kernel refused to send it (EMSGSIZE, ECONNREFUSED, ...) */
  uint64_t dropped_noclient; /* down only: no client address known yet */
  uint64_t dropped_stale;    /* down only: arrived on the upstream socket left by a rebind */
  uint64_t duplicated, reordered, delayed;
};

void impair_settings_default(struct impair_settings *s);
uint64_t impair_dropped_total(const struct impair_counters *c);

#endif
