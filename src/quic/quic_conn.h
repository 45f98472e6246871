/* One QUIC connection (ngtcp2 + GnuTLS), driven without I/O of its own: packets come in through
 * quic_conn_input, packets go out through the send callback in batches (every packet one write
 * pass produced), and one libuv timer follows ngtcp2's expiry. The write pass runs at the end of
 * the loop turn (LOOP_TURN_STACK), after a whole received batch was read, so ACKs and window
 * updates are coalesced. Streams are `stream`s (stream/stream.h): the client opens them, the
 * server is told of new ones. DATAGRAM frames (RFC 9221) carry whole messages.
 *
 * Lifetime: the owner creates the connection and ends it with quic_conn_close (once; not after
 * its closed callback ran). The object stays alive internally until every stream the
 * application holds has been closed. */
#ifndef AWGPROXY_QUIC_QUIC_CONN_H
#define AWGPROXY_QUIC_QUIC_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include "quic/quic_tls.h"
#include "stream/dial_types.h"
#include "stream/stream.h"

typedef struct quic_conn quic_conn;

typedef struct {
  uint8_t *data; /* headroom bytes before data are free for the inner IP + UDP header */
  size_t len;
} quic_pkt;

typedef enum { QUIC_CC_BBR = 0, QUIC_CC_CUBIC, QUIC_CC_RENO } quic_cc;
/* "bbr", "cubic" or "reno", as [Peer] Congestion spells them. */
const char *quic_cc_name(quic_cc cc);

typedef struct {
  quic_cc cc;
  size_t max_payload;     /* QUIC packet size: tunnel MTU minus inner IP and UDP headers */
  size_t headroom;        /* bytes kept free in front of each packet */
  uint64_t stream_window; /* ceiling of a stream's auto-tuned receive window */
  uint64_t conn_window;   /* ceiling of the connection's */
  uint64_t max_streams;   /* concurrent streams the peer may open */
  uint64_t idle_timeout_ms;
  uint64_t keepalive_ms; /* PING interval, 0 = none */
  /* Server: stateless reset tokens derive from this secret and the connection ID, so that a
   * restarted server can still end its predecessor's connections (quic_stateless_reset). NULL:
   * random tokens. */
  const uint8_t *reset_secret;
  size_t reset_secret_len;
} quic_conn_opts;

void quic_conn_opts_default(quic_conn_opts *o);
/* Sets the window ceilings from the config (0 keeps the default); the connection's is raised to
 * the stream's when given smaller, since one stream could otherwise never fill its own. */
void quic_conn_opts_windows(quic_conn_opts *o, uint64_t stream_window, uint64_t conn_window);

typedef struct {
  /* Packets of one write pass, in order; valid during the call. */
  void (*send)(void *ctx, const quic_pkt *pkts, size_t n);
  void (*established)(void *ctx); /* handshake complete */
  /* The connection is dead (idle timeout, closed by the peer, handshake failure, protocol
   * error); every open stream got on_error. The owner then calls quic_conn_close. */
  void (*closed)(void *ctx, const char *reason);
  /* Server: a stream the peer opened; ownership of s to the callee (it must set its callbacks
   * and eventually close it). */
  void (*new_stream)(void *ctx, stream *s);
  void (*datagram)(void *ctx, const uint8_t *data, size_t len);
  void *ctx;
} quic_conn_cb;

/* Inner addresses of the connection's path (the tunnel addresses and ports). */
typedef struct {
  struct sockaddr_storage local, remote;
} quic_path_addrs;

quic_conn *quic_conn_client(uv_loop_t *loop, quic_tls *tls, const quic_conn_opts *o,
                            const quic_conn_cb *cb, const quic_path_addrs *path, char *err,
                            size_t errlen);
/* True if pkt can start a server connection (a client Initial of a version we speak). */
bool quic_conn_acceptable(const uint8_t *pkt, size_t len);
/* A server connection for the client whose first packet is pkt (quic_conn_acceptable); pkt is
 * read as part of creation. */
quic_conn *quic_conn_server(uv_loop_t *loop, quic_tls *tls, const quic_conn_opts *o,
                            const quic_conn_cb *cb, const quic_path_addrs *path, const uint8_t *pkt,
                            size_t len, char *err, size_t errlen);

/* A packet from the peer (the UDP payload). */
void quic_conn_input(quic_conn *c, const uint8_t *pkt, size_t len);
/* A Stateless Reset (RFC 9000 §10.3) answering pkt, a short-header packet for a connection this
 * endpoint does not know, with the token the secret gives its connection ID; written to out.
 * Returns its length, 0 when pkt gets none (not a short header, too short to answer). */
size_t quic_stateless_reset(const uint8_t *secret, size_t secret_len, const uint8_t *pkt,
                            size_t len, uint8_t *out, size_t cap);

/* A new bidirectional stream; NULL when the peer's stream limit is reached or the connection is
 * not usable. Data written before the handshake completes is sent when it does. */
stream *quic_conn_open_stream(quic_conn *c);
/* The next n (<= 8) bytes the stream receives come as one on_read of exactly n bytes, after
 * which reading stops; what followed stays for the next read_start (a reply header read off
 * the front of a stream). */
void quic_stream_want_header(stream *s, size_t n);
/* Client, fast open: the stream is handed out before the server's reply (quic_proto.h). The
 * reply header is taken off the front as soon as it arrives, whether the application reads or
 * not, and fn (if set) hears its code (GENERAL for a malformed or missing one); a refusal
 * becomes the stream's error (dial_error_to_uv) and the data after a success flows as usual.
 * ctx must outlive the stream's connection. */
typedef void (*quic_reply_fn)(void *ctx, dial_error code);
void quic_stream_gate_reply(stream *s, quic_reply_fn fn, void *ctx);
/* The next write stays in the stream, unsent, until another write, a shutdown, other data of
 * the connection leaving, or QUIC_HOLD_MS: a short reply that the application's first bytes
 * usually follow within that leaves in one packet with them, one wake-up less for the peer (the
 * server's success reply to a client that sent early data; such a client does not wait for
 * it). The connection's timer counts whole milliseconds, so a hold that runs out ends 1-2 ms
 * after the write (quic_send.c on_timer). */
#define QUIC_HOLD_MS 2
void quic_stream_hold_next_write(stream *s);
/* Queues one DATAGRAM frame made of hdr then data; -1 if it is too large for a packet or the
 * queue is full (dropped, as UDP would). */
int quic_conn_send_datagram(quic_conn *c, const uint8_t *hdr, size_t hlen, const uint8_t *data,
                            size_t len);
bool quic_conn_is_established(const quic_conn *c);
bool quic_conn_is_dead(const quic_conn *c);

typedef struct {
  uint64_t rtt_ns, min_rtt_ns, cwnd, bytes_in_flight;
  uint64_t pkts_sent, pkts_recv;
  uint64_t pkts_lost; /* packets carrying stream data declared lost (spurious ones included) */
  uint64_t streams_open;
  quic_cc cc;             /* the congestion controller of what this end sends */
  bool tunnel_protection; /* 1-RTT packets protected by the tunnel alone (awgproxy/3 agreed) */
  uint64_t dgrams_sent, dgrams_recv, dgrams_dropped;
} quic_conn_stats;
void quic_conn_get_stats(const quic_conn *c, quic_conn_stats *out);
/* Streams the application still holds on c. */
uint64_t quic_conn_streams_open(const quic_conn *c);

/* Ends the connection: a CONNECTION_CLOSE goes out (unless it is already dead), open streams get
 * on_error(UV_ECONNABORTED). No callback of cb runs afterwards. */
void quic_conn_close(quic_conn *c);

#endif
