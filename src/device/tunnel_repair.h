/* Loss repair between two awgproxy ends (decisions.md, "Tunnel loss repair"). Random loss on a
 * bad path (2 % here means one datagram in fifty, not congestion) makes every loss-based
 * congestion controller inside the tunnel, lwIP's and QUIC's alike, collapse to a few segments
 * per round trip. Between two awgproxy ends the tunnel repairs such losses below them: the sender
 * keeps its recent transport datagrams, the receiver asks for the ones missing from the counter
 * sequence (a NACK), the sender sends the very same bytes again, and the receiver's reorder
 * buffer (tunnel_reorder.h) hands the inner packets on in order. TCP or QUIC then see a round trip
 * of delay instead of a loss.
 *
 * The control messages ride inside ordinary transport packets: a plaintext whose first byte's high
 * nibble is 0xF, a version no IP packet has (stock WireGuard and AmneziaWG receivers drop it as
 * "not IP"; AWG 3.x keepalives start with 0). They are never sent to a peer that has not shown it
 * speaks them: the end with an Endpoint says HELLO after a handshake (at most a few times while
 * unanswered), the other end answers HELLO(reply) when its config allows repair, and each end
 * turns repair on when it hears the other.
 *
 *   HELLO  F0 | version (1) | flags (bit 0: reply, 2: takes parity, 3: checksums unchecked) | 0
 *   NACK   F1 | version (1) | runs n (1..TUN_NACK_MAX_RUNS) | 0 | receiver index (4, LE, as in
 *          the transport header) | n x (first counter: 8 bytes BE, count: 2 bytes BE, 1..256)
 *   GIVEUP F2 | the NACK's layout: the sender will not resend these (no longer kept, over its
 *          budget, or lost to congestion, below), so the receiver stops waiting for them at once.
 *          Older peers ignore it (an unknown type), and then wait out their hold as before.
 *
 * Congestion is not repaired. Losses at a full queue (a throttling ISP, a saturated link) are the
 * signal the congestion control inside the tunnel needs; resending them hides it, keeps the queue
 * full and spends the link on resends (measured: 2 MB/s through a 50 ms queue, QUIC moved 69 % of
 * the limit with repair and 86 % without). The sender tells the two apart by the delay of the
 * NACK: it keeps when each datagram left, and a NACK that comes back much later than the path's
 * round trip (tun_loss_delay_congested) means the datagram sat behind a queue, so it answers
 * GIVEUP instead of resending. Random loss on an uncongested path comes back in about one round
 * trip and is repaired as before. */
#ifndef AWGPROXY_DEVICE_TUNNEL_REPAIR_H
#define AWGPROXY_DEVICE_TUNNEL_REPAIR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TUN_CTL_HELLO 0xF0
#define TUN_CTL_NACK 0xF1
#define TUN_CTL_GIVEUP 0xF2
#define TUN_CTL_VERSION 1
#define TUN_CTL_HELLO_REPLY 0x01
/* The sender takes PARITY messages with blocks of TUN_FEC_K = 32 (tunnel_fec.h). 0x02 said blocks
 * of 16 (4e10726 to 5e1a2ee): such a peer gets no parity, and its parities are refused here. */
#define TUN_CTL_HELLO_FEC 0x04
/* The sender does not verify the checksums of the inner packets it receives (an awgproxy server:
 * ipstack_trust_inbound, and its exit checks none), so the other end may leave its IPv4 header,
 * TCP and UDP checksums out (the TCP sum was 6 % of an upload's client CPU over the ip path).
 * Older peers ignore the bit; older servers never set it. */
#define TUN_CTL_HELLO_UNCHECKED 0x08
#define TUN_NACK_MAX_RUNS 64
#define TUN_NACK_MAX_RUN_LEN 256
#define TUN_CTL_MAX (8 + TUN_NACK_MAX_RUNS * 10)

/* Sent datagrams kept per peer: TUN_REPAIR_RING (~1.5 MB at full size) to start with, doubled up
 * to TUN_REPAIR_RING_MAX while they cover less than tun_repair_cover_ms of sending: a resend
 * asked for twice (a lost resend) comes about three round trips after the datagram left, and a
 * ring that has moved on by then turns a random loss into one the congestion control sees. The
 * receiver's hold (tunnel_reorder.h) covers the same time. */
#define TUN_REPAIR_RING 1024
#define TUN_REPAIR_RING_MAX 8192
#define TUN_REPAIR_RING_COVER_MS 80 /* the least, and all while the round trip is unknown */
#define TUN_REPAIR_COVER_MAX_MS 2000

/* The time a repair window must cover on a path with this round trip (0 = unknown): three round
 * trips and 20 ms, at least TUN_REPAIR_RING_COVER_MS and at most TUN_REPAIR_COVER_MAX_MS. A fixed
 * 80 ms covered a 25 ms path; 150 ms to a server abroad needs 470. */
uint32_t tun_repair_cover_ms(uint64_t rtt_ns);
#define TUN_REPAIR_MAX_RESENDS 3

typedef struct {
  uint64_t first;
  uint16_t count;
} tun_nack_run;

typedef struct {
  uint8_t type; /* TUN_CTL_HELLO, TUN_CTL_NACK or TUN_CTL_GIVEUP */
  uint8_t flags;
  uint32_t index;
  size_t n_runs;
  tun_nack_run runs[TUN_NACK_MAX_RUNS];
} tun_ctl_msg;

/* True when an inner plaintext is a control message rather than an IP packet. */
static inline bool tun_ctl_is(const uint8_t *pt, size_t len) {
  return len > 0 && (pt[0] >> 4) == 0xF;
}
size_t tun_ctl_hello(uint8_t out[4], bool reply, bool unchecked);
/* Encodes up to TUN_NACK_MAX_RUNS runs into out (TUN_CTL_MAX bytes); returns the length. type:
 * TUN_CTL_NACK or TUN_CTL_GIVEUP. */
size_t tun_ctl_runs(uint8_t *out, uint8_t type, uint32_t index, const tun_nack_run *runs, size_t n);
/* Appends counter c to runs (n so far): extends the last run when c follows it, else starts a new
 * one. False when that needs a run beyond TUN_NACK_MAX_RUNS: send what is there and start over. */
bool tun_nack_runs_add(tun_nack_run *runs, size_t *n, uint64_t c);
/* Parses a control message (hostile input: any bytes). Returns 0, or -1 when it is malformed or
 * of an unknown type or version (ignored: a later version may add messages). */
int tun_ctl_parse(const uint8_t *pt, size_t len, tun_ctl_msg *out);

/* The sender's copies of its recent transport datagrams, by (receiver index, counter). */
typedef struct {
  uint64_t counter;
  uint32_t index;
  uint32_t sent_ms; /* the loop's clock when it left (wrapping) */
  uint16_t len;     /* 0 = empty */
  uint8_t resends;
} tun_repair_slot;

typedef struct {
  uint8_t *pool; /* n * slot_size, NULL while repair is off */
  tun_repair_slot *slots;
  size_t slot_size;
  size_t n;              /* slots: TUN_REPAIR_RING .. TUN_REPAIR_RING_MAX */
  uint64_t mark_counter; /* the counter n datagrams ago, and when it left: the ring's cover */
  uint32_t mark_ms;
  uint32_t cover_ms; /* tun_repair_cover_ms of the path; 0 = TUN_REPAIR_RING_COVER_MS */
} tun_repair_ring;

/* Allocates the ring for datagrams of up to slot_size bytes; -1 out of memory. Idempotent. */
int tun_repair_ring_enable(tun_repair_ring *r, size_t slot_size);
void tun_repair_ring_free(tun_repair_ring *r);
static inline bool tun_repair_ring_on(const tun_repair_ring *r) { return r->pool != NULL; }
/* Keeps a copy of a datagram as it went on the wire; false when it was not kept (the ring is
 * off, or the datagram is longer than a slot). */
bool tun_repair_ring_store(tun_repair_ring *r, uint32_t index, uint64_t counter,
                           const uint8_t *wire, size_t len, uint32_t now_ms);
/* The slot of (index, counter) while the datagram is kept, else NULL. */
const tun_repair_slot *tun_repair_ring_find(const tun_repair_ring *r, uint32_t index,
                                            uint64_t counter);
/* The datagram sent with (index, counter), or NULL when it is no longer kept or was resent
 * TUN_REPAIR_MAX_RESENDS times already; counts the resend. */
const uint8_t *tun_repair_ring_take(tun_repair_ring *r, uint32_t index, uint64_t counter,
                                    size_t *len);

/* The delay from sending a datagram to the first NACK for it, as the sender sees it. */
typedef struct {
  uint32_t min_ms;    /* lowest delay seen in the last TUN_LOSS_DELAY_WINDOW_MS; 0 = none yet */
  uint32_t min_at;    /* when (ms) */
  uint32_t smooth_ms; /* the delays smoothed (1/4 per sample); 0 = none yet */
} tun_loss_delay;

#define TUN_LOSS_DELAY_WINDOW_MS 10000
#define TUN_LOSS_QUEUE_MIN_MS 30 /* queueing below this is jitter, not a standing queue */
/* A NACK later than this is about a datagram sent before an outage (a blackhole, a suspended
 * laptop), not a measure of any queue: it is left out, or the average would take dozens of NACKs
 * to forget it and refuse repairs on a path that works. */
#define TUN_LOSS_DELAY_MAX_MS 2000

/* One first NACK, sample_ms after its datagram left; rtt_ms: the path's round trip measured by a
 * handshake (0: unknown). True when the losses come from a queue: the smoothed delay exceeds the
 * quietest delay seen lately (or the handshake's round trip, whichever is lower) by more than
 * that delay again and at least TUN_LOSS_QUEUE_MIN_MS. Smoothed, because one late NACK (a busy
 * loop on either end, a reordered datagram) is not a queue: measured at 2 % random loss, 3 % of
 * single samples crossed the mark, their average never. Pure, for the unit tests. */
bool tun_loss_delay_congested(tun_loss_delay *d, uint32_t sample_ms, uint32_t now_ms,
                              uint32_t rtt_ms);

#endif
