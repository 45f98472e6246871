/* How large an lwIP connection's receive window is: pure arithmetic, no lwIP.
 *
 * lwIP gives every connection the same window, TCP_WND, and keeps it there as the application
 * reads. A window is also how much a connection may hold unread when its application stops
 * reading, so it is a memory bound as much as a speed bound: 2 MiB kept a stalled connection
 * small, but held one download from a server 150 ms away to 2 MiB per round trip (13 MB/s),
 * whatever the path could carry.
 *
 * So each connection starts at AWG_TCP_WND_START and its window follows what its application
 * reads per round trip, as Linux's receive buffer autotuning does: twice what it read in the last
 * one, up to TCP_WND, from the second round trip on (the first reads fill the application's
 * socket buffers, however slowly it reads). The round trip is the connection's own handshake
 * where this end dialed (SYN to SYN-ACK), and the least of the receiving side's samples, timed as
 * Linux does: from the arrival of data, whose acknowledgement announces the window beyond it, to
 * the arrival of the byte at that window's edge (a sender that fills the window takes one round
 * trip for it; one that does not, or an application that does not read it all, takes longer).
 *
 * A connection whose application reads slowly may grow once, by what the sockets between it and
 * us took in a round trip at first (to 2.5 MB in the test), not with the path; one whose path
 * carries less than half its window per round trip does not grow; an accepted connection, which
 * knows no handshake time, may reach twice its start on a slow path before a full window times the
 * round trip. What all connections grew beyond their start is bounded (AWG_TCP_WND_GROWN_MAX per
 * lwIP instance), so many fast connections that stall at once hold no more than that beyond what
 * they held before. */
#ifndef AWGPROXY_STREAM_RCV_WINDOW_H
#define AWGPROXY_STREAM_RCV_WINDOW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
  uint32_t target;   /* the window the connection has now; 0 = not managed (no window scaling) */
  uint32_t rtt_ms;   /* the least round trip measured; 0 = none yet */
  uint32_t edge;     /* the right edge being timed, while `timing` */
  uint32_t edge_ms;  /* when the data it lies a window beyond came */
  bool timing;       /* a round trip is being measured */
  bool counting;     /* a round of reading is counted (from the first read after a round trip
                        is known, which itself ends the reads before) */
  uint32_t mark_ms;  /* start of the current round of reading */
  uint64_t consumed; /* bytes the application read since mark_ms */
  uint32_t rounds;   /* rounds of reading counted */
} rcv_window;

/* rtt_ms: the connection's handshake round trip where known, else 0. */
void rcv_window_init(rcv_window *w, uint32_t start, uint32_t rtt_ms);

/* Data arrived in order, up to rcv_nxt (the next sequence number expected). Times the round
 * trip. */
void rcv_window_on_data(rcv_window *w, uint32_t rcv_nxt, uint32_t now_ms);

/* The application read n bytes. Returns how many bytes the window grows by now (0 most of the
 * time): never beyond max, nor beyond budget (what the instance may still grant). */
uint32_t rcv_window_on_read(rcv_window *w, size_t n, uint32_t max, uint64_t budget,
                            uint32_t now_ms);

#endif
