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
 * The floor is for random loss, not for congestion: while the lowest RTT of a whole round stays
 * above the path's minimum by more than that minimum again (and at least BW_QUEUE_MIN_MS), a
 * queue is standing in front of a bottleneck that the floor's own window may be filling (a
 * throttling ISP's 50 ms queue shared by four connections: each floor, taken from delivery rates
 * that ACK bursts overstate, kept the queue full and overflowing). The floor is then off until a
 * round drains below that mark, and lwIP's Reno answers the queue's losses as TCP should.
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

#include <stdint.h>

#define BW_ROUNDS 10
#define BW_MIN_RTT_WINDOW_MS 10000
#define BW_QUEUE_MIN_MS 15

/* The model of one connection (pure: tcp_bw_floor_update is testable without lwIP). */
typedef struct {
  uint32_t min_rtt_ms, min_rtt_at;   /* lowest RTT sample, and when it was taken (us) */
  uint32_t round_start, round_bytes; /* the round's start (us) and bytes acked in it */
  uint32_t bw[BW_ROUNDS];            /* delivery rate of each of the last rounds, bytes per ms */
  uint32_t round_min_rtt;            /* lowest RTT sample in this round, UINT32_MAX for none */
  uint8_t bw_next;
  uint8_t have_rtt;
  uint8_t queued; /* the last round with samples saw a standing queue: no floor */
} tcp_bw_model;

/* One ACK: acked new bytes, an RTT sample in ms (or UINT32_MAX for none), now in microseconds
 * (a monotonic clock, wrapping). Returns the window floor in bytes (0 while nothing is known).
 * mss bounds it from below (4 segments). */
uint32_t tcp_bw_floor_update(tcp_bw_model *m, uint32_t acked, uint32_t rtt_ms, uint32_t now_us,
                             uint32_t mss);

/* The send buffer a connection with this window floor should have: twice the floor (the floor
 * is in flight; as much again covers bytes that loss repair holds unacknowledged for a round
 * trip or two, and the unsent bytes that keep the window full), never below start nor above
 * max. Grown, never shrunk: lwIP fills it only as the application writes. */
uint32_t tcp_bw_send_buffer(uint32_t floor, uint32_t start, uint32_t max);

/* Allocates the PCB ext arg id; once, after lwip_init. */
void tcp_bw_floor_init(void);

#endif
