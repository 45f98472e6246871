/* Test harness for the QUIC connection core (src/quic/quic_conn.c, stream_quic.c): a client and a
 * server connection on one libuv loop, their packets handed over through an in-memory wire that
 * can lose, delay, reorder or hold back packets, or capture one client packet. The server side is
 * built in: it accepts the client's first packet, echoes every stream the client opens (or only
 * counts the bytes, qch_server_sink) and echoes every datagram behind a 0xAA byte. Client streams
 * are the test's: qch_bind_stream and qch_client_read check them against qch_pattern.
 * Test code: the helpers fail the running cmocka test on unexpected results.
 *
 * Use (one wire at a time per process: part of the state below is process-wide):
 *     uv_loop_t loop; uv_loop_init(&loop);
 *     qch_wire w; qch_wire_init(&w, &loop);   set w.loss_pct, w.opts, ... here
 *     qch_wire_connect(&w); qch_run_until(&w, qch_both_established, 5000);
 *     ...  close the client streams the test opened
 *     qch_wire_end(&w); uv_loop_close(&loop);
 *
 * Ownership: the qch_wire is the caller's storage (usually on the stack); between qch_wire_init
 * and qch_wire_end it owns its loop timer, both TLS contexts, both connections, the packets on
 * the wire (and the held one) and the server's qch_peer records (qch_server_streams), all freed
 * or closed by qch_wire_end, which also runs the loop until every handle is closed. A test that
 * closes a connection itself (quic_conn_close) sets w.client / w.server to NULL. */
#ifndef AWGPROXY_TEST_QUIC_CONN_HARNESS_H
#define AWGPROXY_TEST_QUIC_CONN_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "quic/quic_conn.h"
#include "stream/stream.h"

/* ---- the wire ----------------------------------------------------------------------------- */

/* One packet on the wire, in a list sorted by due time (loop ms). */
typedef struct qch_pkt {
  struct qch_pkt *next;
  int to_server;
  uint64_t due;
  size_t len;
  uint8_t data[];
} qch_pkt;

typedef struct {
  uv_loop_t *loop;
  uv_timer_t timer;
  qch_pkt *head;
  uint32_t rng;
  unsigned loss_pct, reorder_pct; /* per packet, both ways; a reordered one is 3 ms later */
  uint64_t delay_ms;              /* every packet's (1 after qch_wire_init) */
  quic_tls *ctls, *stls;
  quic_conn *client, *server; /* the server: made from the client's first acceptable packet */
  quic_conn_opts opts;        /* both ends' (max_payload 1360 after qch_wire_init) */
  quic_path_addrs cpath, spath;
  int client_established, server_established, client_closed; /* callback counts */
  size_t sent_to_server, dropped;
  int capture; /* the next client packet goes to cap instead of the server */
  uint8_t cap[1500];
  size_t cap_len;
  /* One late packet: the server's hold_nth short-header packet waits until hold_for more
   * packets went to the client. */
  size_t hold_nth, hold_for, short_to_client, held_since;
  struct qch_pkt *held;
  int held_released;
} qch_wire;

/* Short-header (1-RTT) packets on the wire, and those with the tunnel's tag (quic_protect.h)
 * instead of AES-GCM's: the 12-byte nonce, then 4 zero bytes (AES-GCM's tag ends so once in
 * 2^32). Reset by qch_wire_init. */
extern uint64_t qch_short_pkts, qch_short_tunnel_tag;
/* The client offers awgproxy/3 (QuicProtection = tunnel, the client's default); read by
 * qch_wire_init, which does not reset it: the test that sets it clears it. */
extern bool qch_client_tunnel_protection;

/* Sets up w on loop (see above: the wire's timer, both TLS contexts, the paths 10.0.0.2:40000 ->
 * 10.0.0.1:443) and resets the process-wide state (server streams, counters; not
 * qch_client_tunnel_protection). No connection yet. */
void qch_wire_init(qch_wire *w, uv_loop_t *loop);
/* Creates the client connection (w->client); its first packets leave on the next loop turns. */
void qch_wire_connect(qch_wire *w);
/* Runs the loop once at a time until done(w) or limit_ms of loop time passed. */
void qch_run_until(qch_wire *w, int (*done)(qch_wire *), uint64_t limit_ms);
/* Closes both connections and the server's streams still open, frees what the wire holds. */
void qch_wire_end(qch_wire *w);
int qch_both_established(qch_wire *w);

/* Seeds for fuzz/fuzz_quic_endpoint.c: with QUIC_SEED_DIR set, qch_seed_open makes the wire write
 * the client's first packet (its Initial) to initial.bin there, and all the client's packets until
 * qch_seed_close to handshake.bin, as datagram sequences (2-byte big-endian length, then the
 * bytes). Without QUIC_SEED_DIR both do nothing. */
void qch_seed_open(void);
void qch_seed_close(void);

/* ---- streams: an echo server and a checking client ---------------------------------------- */

/* One end of a stream, its stream's user pointer. */
typedef struct {
  stream *s;
  qch_wire *w;
  uint64_t received, sent;
  int eof, shutdown_done, closed, error; /* error: the on_error code */
  uint32_t seed;                         /* qch_pattern's, for a client stream */
  int sink;                              /* server: count instead of echo */
} qch_peer;

/* The server's streams in the order they arrived, their records owned by the harness (freed by
 * qch_wire_end). A new server stream is read at once unless qch_server_paused, and echoed unless
 * qch_server_sink (both set between qch_wire_init and qch_wire_connect; reset by qch_wire_init).
 * The server shuts its side down on the client's EOF. */
#define QCH_MAX_SERVER_STREAMS (10000 + 64)
extern qch_peer *qch_server_streams[QCH_MAX_SERVER_STREAMS];
extern size_t qch_n_server_streams;
extern int qch_server_sink, qch_server_paused;
/* Datagrams the client got back from the server's echo (101 bytes, 0xAA first): the test's
 * datagrams are 100 bytes. Reset by qch_wire_init. */
extern size_t qch_dgrams_back;

/* Byte i of the stream seeded with seed. */
uint8_t qch_pattern(uint32_t seed, uint64_t i);
/* Gives s its owner (a qch_peer, or the test's own record) and callbacks: the reader on_read, the
 * harness's for the rest (they set the qch_peer's shutdown_done, closed, error). */
void qch_bind_stream(stream *s, void *user, void (*on_read)(stream *, const uint8_t *, size_t));
/* A client stream's reader: checks every byte against qch_pattern(seed), counts them, notes EOF.
 */
void qch_client_read(stream *s, const uint8_t *d, size_t n);
/* Writes qch_pattern(p->seed) up to total bytes on p->s, then shuts it down. */
void qch_feed(qch_peer *p, uint64_t total);

#endif
