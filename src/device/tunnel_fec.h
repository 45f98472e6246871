/* Forward error correction for loss repair between two awgproxy ends (tunnel_repair.h): one
 * parity datagram per block of transport counters lets the receiver rebuild a single lost inner
 * packet without waiting a round trip for its resend.
 *
 * Why: with repair on, every inner packet waits in counter order behind a missing one until the
 * resend arrives, about one round trip plus the NACK's grace later. At 2 % random loss and tens of
 * thousands of datagrams per second a gap is almost always open, so TCP and QUIC see their round
 * trip more than double (measured: QUIC's smoothed RTT 25 ms on a 10.7 ms path) and a window-bound
 * sender moves half as much. Reordering alone does not do this (it fills its gaps within the
 * reorder delay); loss does. A parity arrives a few datagrams after the loss instead.
 *
 * Blocks. The counters of a keypair are cut into blocks of TUN_FEC_K: the first K-1 counters of
 * a block are covered, the last one carries their parity (a control message, so it takes its
 * counter as any transport packet). What a packet contributes is its inner IP packet (the
 * plaintext up to the IP header's length); keepalives and control messages contribute nothing
 * (length 0). The parity is the XOR of the covered packets, each zero-extended to the longest,
 * and the XOR of their lengths:
 *
 *   PARITY  F3 | K (1) | length XOR (2, BE) | first counter of the block (8, BE) | XOR bytes
 *
 * With K-1 of the K datagrams of a block received, the missing covered packet is the XOR of the
 * parity and the others, and its length the XOR of the lengths. Two losses in one block are left
 * to the NACKs, as before. The sender only builds a parity when it saw the whole block from its
 * first counter and every covered packet fits TUN_FEC_COVER_MAX (so that the parity datagram is
 * never longer than a data datagram); otherwise the block's last counter goes to an ordinary
 * packet and the receiver, finding no parity, recovers nothing.
 *
 * Parity is sent only while the peer's NACKs show random loss (not congestion: more datagrams into
 * a full queue would not help), and only to a peer that announced FEC in its HELLO; the receiver
 * collects blocks only while parities arrive. Pure code, no I/O: tunnel_repair_peer.c and the
 * send and receive paths call it. */
#ifndef AWGPROXY_DEVICE_TUNNEL_FEC_H
#define AWGPROXY_DEVICE_TUNNEL_FEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TUN_CTL_PARITY 0xF3
/* Counters per block: 31 covered + the parity (3.2 % more datagrams). Measured against 16, 8 and
 * 4 (docs/benchmarks.md): fewer parities cost less than the extra blocks with two gaps. */
#define TUN_FEC_K 32
#define TUN_FEC_HEADER 12      /* the PARITY message before its XOR bytes */
#define TUN_FEC_BLOCKS 32      /* blocks a receiver collects at once */
#define TUN_FEC_ACTIVE_MS 5000 /* parity keeps going this long after the last repaired loss */
#define TUN_FEC_IDLE_NS 10000000000ull /* a receiver with no parity this long stops collecting */

/* The length a plaintext contributes to its block: its inner IP packet's, 0 for a keepalive or a
 * control message, or -1 for an IP packet whose header says another length than the plaintext
 * holds (the receiver would count it differently: the block gets no parity). exact: the sender's
 * plaintext, which is the packet itself; the receiver's carries padding behind it. */
long tun_fec_cover_len(const uint8_t *pt, size_t len, bool exact);

/* The sender's block under construction. */
typedef struct {
  uint8_t *acc;     /* cap bytes: the XOR so far; NULL until the first use */
  uint8_t *out;     /* TUN_FEC_HEADER + cap bytes: the PARITY message of a completed block */
  size_t cap;       /* the longest packet a block may cover: MTU - TUN_FEC_HEADER */
  uint32_t index;   /* the receiver index (keypair) the block's counters belong to */
  uint64_t first;   /* the block's first counter */
  uint16_t len_xor; /* XOR of the covered lengths */
  uint16_t max_len; /* the longest covered packet */
  uint8_t count;    /* covered packets added, in counter order from the first */
  bool ok;          /* the block can still get a parity */
} tun_fec_tx;

/* Sets the largest plaintext a parity may have (the tunnel MTU); allocates on first use. */
int tun_fec_tx_init(tun_fec_tx *f, size_t mtu);
void tun_fec_tx_free(tun_fec_tx *f);
/* One datagram sealed with (index, counter) carrying plaintext pt. active: parity is wanted now
 * (a block starting while inactive gets none). Returns the length of the PARITY message in
 * f->out when this datagram completed a block whose parity must be sealed next, with the next
 * counter; else 0. Nothing while not initialised. */
size_t tun_fec_tx_add(tun_fec_tx *f, uint32_t index, uint64_t counter, const uint8_t *pt,
                      size_t pt_len, bool active);

/* A block being collected by the receiver. */
typedef struct {
  uint64_t first;      /* UINT64_MAX: empty */
  uint32_t got;        /* bit i: counter first + i arrived (bit K-1: the parity) */
  uint16_t len_xor;    /* of what arrived, the parity's included */
  uint16_t max_len;    /* bytes of acc in use */
  uint16_t parity_len; /* the parity's XOR bytes: no covered packet was longer */
  bool bad;            /* something arrived that the XOR cannot account for */
  bool done;           /* recovered, or nothing is missing */
} tun_fec_rx_block;

typedef struct {
  uint8_t *acc; /* TUN_FEC_BLOCKS * cap; NULL while not collecting */
  size_t cap;
  uint32_t index;
  uint64_t last_parity_ns;
  tun_fec_rx_block b[TUN_FEC_BLOCKS];
} tun_fec_rx;

/* A packet rebuilt from a parity: counter, and len bytes at pkt (valid until the next call). */
typedef struct {
  uint64_t counter;
  const uint8_t *pkt;
  size_t len;
} tun_fec_recovered;

static inline bool tun_fec_rx_on(const tun_fec_rx *f) { return f->acc != NULL; }
void tun_fec_rx_free(tun_fec_rx *f);
/* One authenticated datagram (index, counter) whose plaintext contributes cover bytes of pt
 * (tun_fec_cover_len; -1 spoils the block). True when it completed a block with one packet
 * missing: *out is that packet. Ignored while not collecting. */
bool tun_fec_rx_add(tun_fec_rx *f, uint32_t index, uint64_t counter, const uint8_t *pt, long cover,
                    uint64_t now_ns, tun_fec_recovered *out);
/* A PARITY message (hostile bytes) carried by datagram (index, counter); starts collecting
 * (mtu bounds the buffers). Returns -1 when malformed or out of memory, 1 when a packet was
 * recovered (*out), else 0. */
int tun_fec_rx_parity(tun_fec_rx *f, uint32_t index, uint64_t counter, const uint8_t *msg,
                      size_t len, size_t mtu, uint64_t now_ns, tun_fec_recovered *out);

#endif
