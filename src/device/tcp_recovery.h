/* Loss recovery help for lwIP 2.1.3 as a sender, applied to inbound ACKs before and after lwIP
 * sees them (lwIP is configured, never patched). Two gaps in lwIP's own recovery made every loss
 * inside the tunnel cost a retransmission timeout:
 *  1. lwIP counts an ACK as a duplicate only if the advertised window is unchanged, but Linux
 *     receivers grow their window on every duplicate ACK while autotuning; so three duplicate
 *     ACKs never came together and fast retransmit never happened. Duplicate ACKs that carry
 *     SACK blocks get the window lwIP already knows (the growth arrives with the next new ACK).
 *  2. lwIP ends fast recovery on the first partial ACK and has no SACK scoreboard, so a second
 *     loss in the same window waited for the timeout. An ACK that advances but still reports
 *     SACKed data above it shows the receiver is missing the segment at the ACK: that segment is
 *     retransmitted at once (NewReno-style, one hole per ACK).
 * Only ACKs carrying SACK blocks are inspected, i.e. only while the receiver has out-of-order
 * data: the common path costs one header check. */
#ifndef AWGPROXY_DEVICE_TCP_RECOVERY_H
#define AWGPROXY_DEVICE_TCP_RECOVERY_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
  uint8_t v6;               /* nonzero: IPv6 */
  uint8_t src[16], dst[16]; /* the connection, as the packet names it */
  uint16_t sport, dport;
  uint32_t ack;
} tcp_recovery;

/* Before lwIP: pkt is the inbound IP packet (writable, checksum kept valid). Returns nonzero when
 * tcp_recovery_after must be called once lwIP has processed the packet. */
int tcp_recovery_before(tcp_recovery *r, uint8_t *pkt, size_t len);
void tcp_recovery_after(tcp_recovery *r);

struct tcp_pcb;
/* A retransmission (ours above, or lwIP's fast retransmit) puts the lost segment back on the
 * unsent queue, ahead of what is still unacknowledged. If the window did not let it leave at
 * once and a retransmission timeout comes first, lwIP 2.1 appends that unsent queue behind the
 * unacked one: the segment at SND.UNA ends up behind later ones, nothing before it fits the
 * collapsed window, no timer is left running, and the connection stalls for good (seen after a
 * NAT rebinding mid-transfer). Moves such segments back to the front of the unacked queue, where
 * the timeout finds them in order; called after each retransmission and before lwIP's timers. */
void tcp_recovery_fix_queues(struct tcp_pcb *pcb);

/* A timeout puts segments already sent back on the unsent queue, and the receiver may have
 * acknowledged the head of that queue in part (it took what its window allowed). lwIP 2.1's
 * persist timer then splits the head to the peer's window counted from the segment's start, not
 * from lastack: the first piece can lie wholly below lastack. tcp_output's window test for it
 * (seqno - lastack + len <= window) wraps below zero and never passes, nothing is in flight, no
 * ACK will come to free it, and the persist timer's next splits change nothing: the connection
 * stalls for good (seen after a NAT rebinding mid-transfer: 256 and 384-byte pieces, the window
 * just as large). Frees wholly acknowledged segments at the heads of both queues and credits
 * their bytes to the send buffer, as lwIP's ACK processing would have; returns how many bytes
 * were freed (0: nothing found). Called before lwIP's timers, so the stall lasts one tick. */
size_t tcp_recovery_drop_acked(struct tcp_pcb *pcb);

#endif
