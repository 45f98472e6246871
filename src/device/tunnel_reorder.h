/* Restores the order in which a peer's transport packets were sent before their inner packets
 * are handed on, and, between two awgproxy ends, asks the sender for the missing ones
 * (tunnel_repair.h).
 *
 * Each transport packet carries its keypair's counter; a packet that arrives ahead of a missing
 * one is held (up to the slot count behind the oldest gap) until the gap fills or the gap's own
 * hold time runs out. Then the gap is given up as lost and what follows it goes on in counter
 * order. Without repair the hold is about one round trip (measured by the handshake: clamped to
 * 1..25 ms, 10 ms while unknown), so reordering within a round trip never looks like loss to
 * lwIP's fast retransmit (lwIP 2.1 has no RACK), and a real loss is seen one hold later; QUIC's
 * packets are taken before the buffer, as they come. With repair every inner packet goes through
 * the buffer: a missing counter is asked for (NACK) a short grace after it is noticed, asked again
 * each 1.5 round trips up to TUN_REORDER_TRIES times, and given up only after that.
 *
 * A clean path costs one comparison per packet; memory for held packets is taken on the first
 * gap. Counters restart with each keypair: a packet of another keypair releases everything held
 * and starts over. Packets older than what was already released are delivered at once. */
#ifndef AWGPROXY_DEVICE_TUNNEL_REORDER_H
#define AWGPROXY_DEVICE_TUNNEL_REORDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "device/tunnel_repair.h"

#define TUN_REORDER_SLOTS 512         /* without repair */
#define TUN_REORDER_SLOTS_REPAIR 1024 /* with repair: a longer hold at the same rate, */
#define TUN_REORDER_SLOTS_MAX 8192    /* doubled up to this while the slots cover less than */
/* ...this much of the peer's sending (a lost resend's wait): tun_repair_cover_ms of the round
 * trip (tun_reorder_set_rtt), at least 80 ms */
#define TUN_REORDER_TRIES 3 /* NACKs per missing counter */

typedef void (*tun_reorder_fn)(void *ctx, const uint8_t *pkt, size_t len);
/* Asks the peer for the missing counters of keypair (its receiver index as in the header). */
typedef void (*tun_nack_fn)(void *ctx, uint32_t keypair, const tun_nack_run *runs, size_t n);

typedef struct {
  uint16_t len;
  bool held;
  uint8_t tries;  /* missing: NACKs sent for it */
  uint64_t since; /* missing: monotonic ns it was noticed missing */
  uint64_t due;   /* missing: when to ask (again); 0 = not */
  uint64_t asked; /* missing: when it was last asked for */
} tun_reorder_slot;

typedef struct {
  bool active;       /* next is valid for keypair */
  uint32_t keypair;  /* the receiver index the counters belong to */
  uint64_t next;     /* lowest counter neither delivered nor given up */
  uint64_t top;      /* one past the highest counter seen (next when nothing is held) */
  uint64_t deadline; /* monotonic ns of the next give-up or NACK; 0 = none */
  size_t held;
  size_t slot_size;
  size_t nslots;                        /* of the allocated pool */
  size_t repair_slots;                  /* wanted with repair: grows with the rate */
  uint64_t mark_counter, mark_ns;       /* where the window stood one window ago, and when */
  uint8_t *pool;                        /* nslots * slot_size, allocated on the first gap */
  tun_reorder_slot *slots;              /* nslots */
  uint64_t rtt_ns;                      /* 0 = unknown */
  bool repair;                          /* ask the peer for missing counters */
  uint64_t held_total, gaps_given_up;   /* counters */
  uint64_t gaps_abandoned;              /* of those given up: on the sender's GIVEUP */
  uint64_t nacks_sent, asked, repaired; /* NACK messages, counters asked for, gaps filled after
                                         * being asked for */
  tun_reorder_fn deliver;               /* where packets go, in order */
  tun_nack_fn nack;
  void *ctx;
} tun_reorder;

/* slot_size: the largest packet that can be held (the MTU). nack may be NULL (no repair). */
void tun_reorder_init(tun_reorder *r, size_t slot_size, tun_reorder_fn deliver, tun_nack_fn nack,
                      void *ctx);
/* One authenticated transport packet: pkt (len may be 0: a keepalive, or a packet dropped or
 * taken elsewhere after authentication, still takes its counter) is delivered now or held. */
void tun_reorder_input(tun_reorder *r, uint32_t keypair, uint64_t counter, const uint8_t *pkt,
                       size_t len, uint64_t now);
/* Whether counter of keypair is still wanted: neither delivered, held nor given up (a counter
 * beyond everything seen so far is). */
bool tun_reorder_missing(const tun_reorder *r, uint32_t keypair, uint64_t counter);
/* Gives up gaps whose hold ran out and sends the NACKs that are due (from the peer's timer). */
void tun_reorder_expire(tun_reorder *r, uint64_t now);
/* The peer will not resend these counters of keypair (a GIVEUP): each one still missing is given
 * up now, and what was held behind it goes on, instead of waiting out the hold. */
void tun_reorder_abandon(tun_reorder *r, uint32_t keypair, const tun_nack_run *runs, size_t n);
/* Releases everything held (in counter order). */
void tun_reorder_flush(tun_reorder *r);
/* Drops what is held and the memory. */
void tun_reorder_free(tun_reorder *r);
/* A round trip measured by a handshake or a repair, for the hold and NACK times. */
void tun_reorder_set_rtt(tun_reorder *r, uint64_t rtt_ns);
/* Turns asking for missing counters on or off (the peer keeps a repair ring). */
void tun_reorder_set_repair(tun_reorder *r, bool on);

#endif
