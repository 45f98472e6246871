/* One TLS connection carrying AWG datagrams as frames (device/dgram_frames.h), for both ends of
 * the TLS carrier. Sending: datagrams queued during a loop turn are framed into one buffer and
 * written at the end of the turn (LOOP_TURN_SEND), or as soon as TLS_LINK_RECORD bytes are
 * waiting, so that several datagrams share a TLS record and record sizes do not mirror
 * WireGuard's packet sizes one to one. Receiving: whole frames go to the owner's callback.
 *
 * Ownership: the owner creates a link around a started tls_session and receives its events
 * through tls_link_events; tls_link_close ends it (the session's on_closed then arrives as
 * on_closed here, once). The link is freed by tls_link_free after on_closed, or by the owner's
 * on_closed returning (see below). */
#ifndef AWGPROXY_CARRIER_TLS_LINK_H
#define AWGPROXY_CARRIER_TLS_LINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "carrier/tls_session.h"
#include "device/dgram_carrier.h"
#include "device/dgram_frames.h"
#include "util/loop_turn.h"

#define TLS_LINK_RECORD 16000     /* plaintext bytes per write: about one TLS record */
#define TLS_LINK_RECORD_MAX 16384 /* TLS's largest record: a write never spills into a second */
#define TLS_LINK_MAX_FRAME 4096   /* the largest AWG datagram accepted over TLS */
#define TLS_LINK_PENDING TLS_LINK_RECORD_MAX /* a write is never more than one record */

typedef struct tls_link tls_link;

typedef struct {
  void (*on_ready)(tls_link *l, void *ctx);
  /* A whole frame; writable until this returns. Return false to stop reading this input. */
  bool (*on_frame)(tls_link *l, void *ctx, uint8_t *frame, size_t len);
  /* Raw plaintext instead of frames, while the owner has asked for it (tls_link_raw): the
   * server's gate and decoy read this way. */
  void (*on_raw)(tls_link *l, void *ctx, uint8_t *data, size_t len);
  /* The connection is over; the link is freed right after this returns. */
  void (*on_closed)(tls_link *l, void *ctx, const char *reason);
} tls_link_events;

struct tls_link {
  tls_session *s;
  const tls_link_events *ev;
  void *ctx;
  dgram_frame_reader reader;
  bool raw;     /* plaintext goes to on_raw, not through the frame reader */
  bool closing; /* tls_link_close was called */
  bool ready;
  uint8_t *pending; /* framed datagrams waiting for the end of the turn: TLS_LINK_PENDING bytes
                     * in pending_room, which also gives carrier_reserve's room around them */
  uint8_t pending_room[DGRAM_CARRIER_ROOM + TLS_LINK_PENDING + DGRAM_CARRIER_ROOM];
  size_t n_pending;
  turn_hook flush_hook;
  uint64_t frames_in, frames_out, dropped_out;
};

/* Takes the TCP handle (as tls_session_start). NULL on failure (the handle is closed). */
tls_link *tls_link_start(uv_tcp_t *tcp, tls_config *cfg, const tls_link_events *ev, void *ctx,
                         uint64_t handshake_timeout_ms);
/* Queues one datagram (1..TLS_LINK_MAX_FRAME bytes). Returns 0, or -1 when it was dropped (the
 * link is closing, or more is waiting for the socket than TLS_SESSION_MAX_QUEUED): datagrams
 * are allowed to be lost, as over UDP. */
int tls_link_send(tls_link *l, const uint8_t *data, size_t len);
/* The same in two steps, without a copy: room for a datagram of at most max_len bytes in the
 * link's pending buffer (NULL, and nothing counted, when tls_link_send would refuse it), then
 * tls_link_commit of the bytes written there. The room is valid until the next call on the
 * link. */
uint8_t *tls_link_reserve(tls_link *l, size_t max_len);
void tls_link_commit(tls_link *l, size_t len);
/* Writes plaintext as it is (the decoy's HTTP answer). */
int tls_link_write_raw(tls_link *l, const uint8_t *data, size_t len);
/* From now on, plaintext goes to on_raw (the server starts its links so, to look at the first
 * bytes before deciding what the client is). */
void tls_link_raw(tls_link *l);
/* From now on, plaintext is read as frames, starting with rest[0..n) (bytes the owner read raw
 * and did not use). */
void tls_link_frames(tls_link *l, uint8_t *rest, size_t n);
/* Sends what is queued, then close_notify, then closes (abort: at once). */
void tls_link_close(tls_link *l, bool abort);

#endif
