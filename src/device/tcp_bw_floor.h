/* A congestion-window floor for lwIP's TCP senders, from the delivery rate each connection has
 * measured (lwIP is configured, never patched: this runs in LWIP_HOOK_TCP_INPACKET_PCB and keeps
 * its state in a PCB ext arg).
 *
 * Why: lwIP 2.1 is a Reno sender. Inside a tunnel, random loss (a lossy radio link, a policer)
 * halves its window for every lost segment, so at 2 % loss and a 10 ms round trip one stream
 * crawls at ~0.6 MB/s, held at Reno's equilibrium of a few segments; the kernel's BBR through
 * the same relay keeps ~25 MB/s (docs/benchmarks.md). BBR's model is what this borrows: the
 * path's bandwidth is the highest delivery rate seen over the last BW_ROUNDS round trips, its
 * delay the lowest round trip time over the last 10 s, and a window of twice their product
 * keeps the path full through one round trip of loss recovery. lwIP's own window may grow above
 * the floor (slow start, congestion avoidance) and still reacts to loss, but never falls below
 * it; a real bottleneck caps the delivery rate, so the floor follows it down within BW_ROUNDS
 * round trips, and a retransmission timeout still restarts lwIP from one segment until the next
 * ACK.
 *
 * The floor is for random loss, not for congestion. The queueing delay in front of this
 * connection's bottleneck is the RTT's rise above the path's minimum less the rise of the
 * reverse one-way delay (from the peer's TSval: the ACKs' own way back may queue behind a
 * download, which this window cannot drain and must not answer). While the lowest such delay of
 * a whole round stays above the path's minimum RTT (and at least BW_QUEUE_MIN_MS), a queue is
 * standing: no floor, and slow start ends. Whether that queue is a bottleneck that overflows
 * (a throttling ISP) rather than the tunnel's own loss repair holding packets back comes from
 * the tunnel, whose repair tells a queue's losses from random ones (tcp_bw_congestion_fn): on
 * such a path the floor stays off (delivery rates that ACK bursts overstate made four
 * connections' floors refill a 50 ms queue each time it drained) and the window shrinks by a
 * segment per round while the queue stands instead of growing into its tail
 * (tcp_bw_queue_window). 2 MB/s through a 50 ms queue, four connections each way: 55-62 % of
 * the limit on the wire before (tail losses, lwIP's retransmission timeouts), 93-98 % after.
 *
 * The same model sizes the send buffer (tcp_bw_send_buffer): a connection starts with lwIP's
 * TCP_SND_BUF (1 MB), which at 2 % loss and a 10 ms round trip held one stream at ~37 MB/s (every
 * repaired loss keeps the whole window unacknowledged for a round trip more), and grows up to
 * AWG_TCP_SND_BUF_MAX only while its floor says the path holds that much. Local paths (no
 * floor below 2 ms) and connections held back by a slow receiver or a standing queue keep 1 MB.
 *
 * Round trip times come from TCP timestamps (lwIP's TSval is sys_now() in ms, echoed back);
 * a connection without them gets no floor. State is allocated for a connection only once it
 * has sent data that was acknowledged, so receivers and idle connections cost nothing. */
#ifndef AWGPROXY_DEVICE_TCP_BW_FLOOR_H
#define AWGPROXY_DEVICE_TCP_BW_FLOOR_H

#include <stdbool.h>
#include <stdint.h>

#define BW_ROUNDS 10
#define BW_MIN_RTT_WINDOW_MS 10000
#define BW_QUEUE_MIN_MS 15
#define BW_QUEUE_HOLD_MS 10000

/* A running minimum over a time window (Kathleen Nichols' three-sample filter): when the best
 * sample ages out, the best one taken since a quarter (then half) of the window replaces it,
 * not whatever the next sample is. */
typedef struct {
  int32_t v[3];
  uint32_t t[3];
  uint8_t have;
} tcp_bw_win_min;

/* The model of one connection (pure: tcp_bw_floor_update is testable without lwIP). */
typedef struct {
  tcp_bw_win_min rtt;                /* lowest RTT (ms) of the last BW_MIN_RTT_WINDOW_MS */
  tcp_bw_win_min rev;                /* lowest reverse one-way delay (ms, peer's clock offset) */
  uint32_t min_rtt_ms;               /* rtt's current minimum */
  uint32_t rev_base;                 /* first raw reverse delay: rev holds differences to it */
  int32_t rev_ms;                    /* this ACK's reverse delay, INT32_MIN for none */
  uint32_t round_start, round_bytes; /* the round's start (us) and bytes acked in it */
  uint32_t bw[BW_ROUNDS];            /* delivery rate of each of the last rounds, bytes per ms */
  uint32_t round_min_queue;          /* lowest forward queueing delay (ms) seen in this round */
  uint8_t bw_next;
  uint8_t have_rtt;
  uint8_t have_rev;
  uint8_t queued;        /* the last round with samples saw a standing queue */
  uint8_t round_ended;   /* the last update ended a round */
  uint8_t congested;     /* the path's queue overflows (tcp_bw_congestion_update) */
  uint32_t congested_at; /* when that was last confirmed (us) */
} tcp_bw_model;

/* The ACK about to be given to tcp_bw_floor_update carried the peer's timestamp: raw is our
 * clock minus the peer's TSval (ms, any offset). Its rise above the lowest is queueing on the
 * way back, which the round trip includes but which this connection's window cannot drain: a
 * download's queue in front of our ACKs made four uploads shrink to nothing. */
void tcp_bw_reverse_delay(tcp_bw_model *m, uint32_t raw, uint32_t now_us);

/* One ACK: acked new bytes, an RTT sample in ms (or UINT32_MAX for none), now in microseconds
 * (a monotonic clock, wrapping). Returns the window floor in bytes (0 while nothing is known).
 * mss bounds it from below (4 segments). */
uint32_t tcp_bw_floor_update(tcp_bw_model *m, uint32_t acked, uint32_t rtt_ms, uint32_t now_us,
                             uint32_t mss);

/* Once per round, with the tunnel's verdict (tcp_bw_congestion_fn): the path's bottleneck queue
 * has overflowed lately. A round that sees the queue standing again keeps that state; it ends
 * BW_QUEUE_HOLD_MS after neither was seen (with the floor back, the next overflow would come
 * within seconds on a throttled path: 2 % of the datagrams lost each time). */
void tcp_bw_congestion_update(tcp_bw_model *m, bool verdict, uint32_t now_us);

/* While a standing queue is in front of a bottleneck the window shrinks by one segment per round
 * (never below 4 segments) instead of growing until the queue overflows: a throttling ISP's
 * 50 ms queue, four connections' bursts, losses at the tail and lwIP's retransmission timeouts
 * left the link idle a third of the time. flight is what stays in flight after this ACK.
 * Returns the window to use. */
uint32_t tcp_bw_queue_window(const tcp_bw_model *m, uint32_t cwnd, uint32_t flight, uint32_t mss);

/* The send buffer a connection with this window floor should have: twice the floor (the floor
 * is in flight; as much again covers bytes that loss repair holds unacknowledged for a round
 * trip or two, and the unsent bytes that keep the window full), never below start nor above
 * max. Grown, never shrunk: lwIP fills it only as the application writes. */
uint32_t tcp_bw_send_buffer(uint32_t floor, uint32_t start, uint32_t max);

/* Whether the tunnel behind netif judged a loss on its way to the peer that owns this inner
 * address (v6: 16 bytes, else 4) to be congestion within the last window_ms: its loss repair
 * tells a queue's losses from random ones by the NACKs' delay (tunnel_repair.h). A stock peer
 * gives no verdict. */
struct netif;
typedef bool (*tcp_bw_congestion_fn)(struct netif *nif, bool v6, const uint8_t *addr,
                                     uint32_t window_ms);
/* Registers the verdict (ipstack does, for all its stacks); NULL: none. */
void tcp_bw_floor_set_congestion_probe(tcp_bw_congestion_fn fn);

/* Allocates the PCB ext arg id; once, after lwip_init. */
void tcp_bw_floor_init(void);

#endif
