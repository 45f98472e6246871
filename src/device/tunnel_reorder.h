/* Restores the order in which a peer's transport packets were sent before their inner packets
 * reach lwIP (QUIC's packets are taken before, as they come: QUIC copes with reordering itself,
 * and holding its packets only delays its loss recovery). Each transport packet carries its
 * keypair's counter; a packet that arrives ahead of a missing one is held (up to TUN_REORDER_SLOTS
 * behind the gap) until the gap fills or the peer's hold time runs out (about one round trip,
 * measured by the handshake: clamped to 1..25 ms, 10 ms while unknown). Then what is held goes out
 * in counter order and the gap is given up as lost. So reordering within a round trip never looks
 * like loss to lwIP's fast retransmit (lwIP 2.1 has no RACK), and a real loss is seen one hold time
 * later. A clean path costs one comparison per packet; memory for held packets is taken on the
 * first gap. Counters restart with each keypair: a packet of another keypair releases everything
 * held and starts over. Packets older than what was already released are delivered at once. */
#ifndef AWGPROXY_DEVICE_TUNNEL_REORDER_H
#define AWGPROXY_DEVICE_TUNNEL_REORDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TUN_REORDER_SLOTS 512

typedef void (*tun_reorder_fn)(void *ctx, const uint8_t *pkt, size_t len);

typedef struct {
  bool active;       /* next is valid for keypair */
  uint32_t keypair;  /* the receiver index the counters belong to */
  uint64_t next;     /* lowest counter neither delivered nor given up */
  uint64_t deadline; /* monotonic ns when held packets go out anyway; 0 = none held */
  size_t held;
  size_t slot_size;
  uint8_t *pool; /* TUN_REORDER_SLOTS * slot_size, allocated on the first gap */
  uint16_t len[TUN_REORDER_SLOTS];
  bool used[TUN_REORDER_SLOTS];
  uint64_t hold_ns;                   /* 0 = the default */
  uint64_t held_total, gaps_given_up; /* counters */
  tun_reorder_fn deliver;             /* where packets go, in order */
  void *ctx;
} tun_reorder;

/* slot_size: the largest packet that can be held (the MTU). */
void tun_reorder_init(tun_reorder *r, size_t slot_size, tun_reorder_fn deliver, void *ctx);
/* One authenticated transport packet: pkt (len may be 0: a keepalive, or a packet dropped or
 * taken elsewhere after authentication, still takes its counter) is delivered now or held. */
void tun_reorder_input(tun_reorder *r, uint32_t keypair, uint64_t counter, const uint8_t *pkt,
                       size_t len, uint64_t now);
/* Releases held packets whose hold time ran out (from the peer's timer). */
void tun_reorder_expire(tun_reorder *r, uint64_t now);
/* Releases everything held (in counter order). */
void tun_reorder_flush(tun_reorder *r);
/* Drops what is held and the memory. */
void tun_reorder_free(tun_reorder *r);
/* The round trip measured by a handshake, for the hold time. */
void tun_reorder_set_rtt(tun_reorder *r, uint64_t rtt_ns);

#endif
