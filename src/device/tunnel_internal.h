/* State shared by the tunnel's files (tunnel.c setup, tunnel_peer.c peer lifetime and sessions,
 * tunnel_reload.c reload, tunnel_rx.c receive, tunnel_tx.c send and timers). Not part of the
 * public interface. */
#ifndef AWGPROXY_DEVICE_TUNNEL_INTERNAL_H
#define AWGPROXY_DEVICE_TUNNEL_INTERNAL_H

#include "awg/awg3_mask.h"
#include "awg/awg3_pad.h"
#include "awg/obfs.h"
#include "device/allowedips.h"
#include "device/ipstack.h"
#include "util/loop_turn.h"
#include "device/tunnel.h"
#include "device/tunnel_fec.h"
#include "device/tunnel_reorder.h"
#include "device/udp_io.h"
#include "wg/device.h"
#include "wg/peer.h"
#include "wg/shard.h"

#define TUN_STAGED_MAX 64       /* packets held per peer while its handshake runs */
#define TUN_BUF (65536 + 128)   /* one datagram: S4 + header + 64 KiB + tag + extra padding */
#define TUN_HANDSHAKE_BURST 128 /* handshake messages per second before "under load" */

typedef struct {
  uint8_t *data;
  size_t len;
} tun_staged;

typedef struct tun_peer {
  wg_peer wp;
  struct tunnel *t;
  const cfg_peer *cfg;
  char fp[9];
  dgram_endpoint endpoint;
  bool has_endpoint;
  /* Pinned by the client's carrier choice (tunnel_peer_pin_endpoint): the endpoint stays put,
   * neither roaming, nor re-resolved, nor hopping. A soft pin (Carrier = auto) gives way to an
   * answer over UDP to a UDP trial (tunnel_peer_try_udp) made within the last 10 s. */
  bool endpoint_pinned, pin_soft;
  dgram_endpoint udp_endpoint; /* where the peer was over UDP before it was pinned elsewhere */
  bool has_udp_endpoint;
  bool initiate_via_udp; /* the next initiation goes to udp_endpoint (a trial) */
  uint64_t udp_trial_at; /* monotonic ns of the last trial, 0 = none */
  uv_timer_t timer;
  uv_getaddrinfo_t resolve;
  bool resolving;
  tun_staged staged[TUN_STAGED_MAX];
  size_t staged_head, staged_count;
  uint64_t rx_bytes, tx_bytes;
  uint64_t last_rx; /* monotonic ns of the last authenticated packet from the peer, 0 = none */
  uint64_t rx_packets, tx_packets;
  uint64_t handshakes_ok, handshakes_failed;
  uint64_t last_handshake_unix_ns;
  uint64_t last_handshake_mono; /* monotonic ns of the last completed handshake */
  uint64_t handshake_started;   /* monotonic ns of the first attempt of this round, 0 = none */
  uint64_t initiation_sent;     /* monotonic ns of the latest initiation, 0 = none pending */
  uint64_t handshake_rtt;       /* ns from our last answered initiation to its response */
  uint8_t screen_left;          /* transport prefixes still screened (awg/first_bytes.h) */
  uint32_t attempts;
  uint32_t udp_window; /* AWG 3.x random-trailer window (spec R36), AWG3_UDP_WINDOW after rx */
  bool session_lost;   /* had a session and lost it: the next completed handshake is a reconnect */
  /* The session as the session_start / session_end log lines see it: from the first completed
   * handshake after having none, to expiry, removal or shutdown. */
  bool in_session;
  uint64_t session_started;          /* monotonic ns */
  uint64_t session_rx0, session_tx0; /* rx_bytes / tx_bytes when it started */
  /* Removed (reload or shutdown): unlinked and wiped, waiting for its handles to close. Peers are
   * allocated one by one so that the uv handles embedded in them never move. */
  bool removed;
  tun_reorder reorder; /* received packets back in the order they were sent */
  /* Loss repair (tunnel_repair.h): on once the peer has said HELLO; the ring holds what we sent. */
  bool repair_on;
  uint8_t hellos_unanswered;  /* HELLOs we sent that no HELLO answered */
  uint32_t repair_budget;     /* resends allowed now: one per 8 datagrams sent, at most 256 */
  uint8_t repair_budget_tick; /* datagrams sent towards the next unit of budget */
  tun_loss_delay loss_delay;  /* NACK delays: congestion is not repaired (tunnel_repair.h) */
  bool congested_seen;        /* a NACK's losses were judged congestion, at congested_ms */
  uint32_t congested_ms;      /* the loop's clock */
  uint64_t path_rtt_ns;       /* the last handshake's round trip, 0 = unknown */
  tun_repair_ring repair_ring;
  /* Parity for single losses (tunnel_fec.h): the peer said it takes them (HELLO), we send them
   * until fec_until_ms (the loop's clock) after the last NACK for random loss. */
  bool peer_fec;
  bool peer_unchecked; /* its HELLO said it does not verify inner checksums (tunnel_repair.h) */
  uint32_t fec_until_ms;
  tun_fec_tx fec_tx;
  tun_fec_rx fec_rx;
  uint64_t response_sent; /* monotonic ns our latest handshake response went out, 0 = none */
  uint64_t hop_at;        /* monotonic ns of the next port hop (tunnel_hop.h), 0 = none */
  unsigned handles_open;  /* the timer, plus a getaddrinfo still running */
  turn_hook service;      /* tun_service_peer once at the end of a loop turn (tun_service_later) */
} tun_peer;

struct tunnel {
  uv_loop_t *loop;
  const app_config *cfg;
  const awg_params *awg;
  wg_device dev;
  wg_tunables tunables;
  wg_load_state load;
  uint64_t load_window_start;
  size_t load_window_count;
  udp_io *udp;                             /* opened and closed here; sends go through: */
  dgram_carrier *carriers[DGRAM_CARRIERS]; /* by dgram_endpoint.carrier (NULL: not offered) */
  ipstack *ip;
  allowedips aip;
  tun_peer **peers; /* the configured peers, in config order */
  size_t n_peers;
  size_t peer_objs; /* allocated tun_peers, removed ones still closing included */
  bool destroying;  /* tunnel_destroy ran: the last peer to close frees the tunnel */
  uint32_t mtu;
  uint32_t packets_sent; /* for the <c> tag */
  uint8_t *buf;          /* TUN_BUF: handshake messages are built here (transport datagrams are
                          * sealed straight into the carrier's send batch) */
  uint8_t *prehs_arena;  /* I-packets and junk for one initiation */
  size_t prehs_arena_len;
  awg_datagram *prehs;
  size_t prehs_cap;
  size_t closing;
  tunnel_stats stats;
  tunnel_inner_fn inner_hook; /* sees inner packets before lwIP (tunnel_set_inner_hook) */
  void *inner_ctx;
  /* A server worker among siblings (tunnel_shard.c); shards == 1 otherwise. The outboxes and the
   * inbox are the supervisor's descriptors: never closed here. */
  unsigned shard, shards;
  int outbox[WG_SHARDS_MAX];
  int inbox_fd; /* -1 = none */
  uv_poll_t inbox;
  uint8_t *handoff_buf;
  struct shard_counts *counts; /* shared with the siblings: live sessions, exit connections
                                * (borrowed from the worker, lives as long as the process) */
};

uint64_t tun_now(void);
uint64_t tun_wall_ns(void);
void tun_addr_bytes(const dgram_endpoint *a, uint8_t out[18], size_t *len);

/* tunnel_rx.c: one classified datagram (handed = passed on by a sibling worker, never passed on
 * again). */
void tun_dispatch(tunnel *t, awg_msg_kind k, const uint8_t *msg, size_t len,
                  const dgram_endpoint *from, int bare, size_t wire_len, bool handed);

/* tunnel_shard.c */
int tun_shard_start(tunnel *t, const tunnel_shard *sh, char *err, size_t errlen);
void tun_shard_stop(tunnel *t);
/* True when the message's receiver index belongs to another worker (*owner). */
bool tun_shard_owner(const tunnel *t, awg_msg_kind k, const uint8_t *msg, size_t len,
                     unsigned *owner);
void tun_shard_hand_off(tunnel *t, unsigned owner, awg_msg_kind k, int bare, const uint8_t *msg,
                        size_t len, const dgram_endpoint *from, size_t wire_len);

/* tunnel_tx.c */
void tun_send_ip(void *ctx, const uint8_t *pkt, size_t len); /* ipstack output */
void tun_service_peer(tun_peer *p);                          /* run timers/actions, re-arm */
/* The same, once at the end of this loop turn: for the per-datagram paths (a packet sealed, a
 * transport datagram received), where it cost a poll and a timer re-arm per datagram. */
void tun_service_later(tun_peer *p);
/* t->buf holds a handshake message of `kind` at offset s: fills the S prefix, masks the message
 * (AWG 3.x header protection) and appends the random trailer drawn under `window`. Returns the
 * datagram length. */
size_t tun_protect_handshake(tunnel *t, awg_msg_kind kind, size_t s, uint32_t window);
/* The carrier that reaches `to` (one that drops everything when it is gone). */
static inline dgram_carrier *tun_carrier(tunnel *t, const dgram_endpoint *to) {
  dgram_carrier *c = to->carrier < DGRAM_CARRIERS ? t->carriers[to->carrier] : NULL;
  return c ? c : dgram_carrier_none();
}
/* Sends every carrier's batch now. */
void tun_flush_carriers(tunnel *t);
void tun_send_datagram(tunnel *t, const dgram_endpoint *to, const uint8_t *data, size_t len,
                       tun_peer *p);
void tun_flush_staged(tun_peer *p);
/* Seals a control message (tunnel_repair.h) to p, outside any IP routing. */
void tun_send_control(tun_peer *p, const uint8_t *msg, size_t len);

/* tunnel_repair_peer.c: loss repair between two awgproxy ends */
/* A control message from p (authenticated, any bytes). */
void tun_repair_on_control(tun_peer *p, const uint8_t *pt, size_t len);
/* Adds the counters p's reorder buffer keeps to st (tunnel-wide figures). */
void tun_repair_add_counts(tunnel_stats *st, const tun_peer *p);
/* p's session ended: repair is off until the next handshake, and its memory freed. */
void tun_repair_on_session_end(tun_peer *p);
/* The repair's congestion verdict for the peer owning an inner address, for lwIP's senders
 * (tcp_bw_congestion_fn). */
bool tun_congested_recently(void *ctx, bool v6, const uint8_t *addr, uint32_t window_ms);

/* Skips inbound checksums while every peer is awgproxy (ipstack_trust_peers), and outbound ones
 * while every peer has said it does not check them (ipstack_omit_checksums). */
void tun_update_inbound_trust(tunnel *t);
/* A handshake with p completed: say HELLO when it is ours to start. */
void tun_repair_on_handshake(tun_peer *p);
/* Whether the datagrams sealed now get parity (tunnel_fec.h): the peer takes it and lately lost
 * datagrams at random. */
bool tun_fec_wanted(const tun_peer *p);
/* The reorder buffer asks p for missing counters. */
void tun_repair_send_nack(void *peer, uint32_t keypair, const tun_nack_run *runs, size_t n);
/* A transport datagram (index and counter as in its header) is about to go into the send batch:
 * keep a copy of its wire bytes when repair is on. */
void tun_repair_keep(tun_peer *p, uint32_t index, uint64_t counter, const uint8_t *wire,
                     size_t wire_len);

/* tunnel_rx.c */
void tun_on_datagram(void *ctx, uint8_t *data, size_t len, const dgram_endpoint *from);
/* An inner packet from a peer, in order, to lwIP (the inner hook saw it first). */
void tun_deliver_inner(tunnel *t, const uint8_t *pkt, size_t len);

/* tunnel_peer.c */
/* A new peer for c, linked into the device; NULL with a message in err (bad key, no memory). */
tun_peer *tun_peer_new(tunnel *t, const cfg_peer *c, char *err, size_t errlen);
/* Ends the peer's session (logging session_end with reason), wipes its keys, unlinks its indices
 * and frees its staged packets; the object itself is freed once its handles have closed. The
 * caller drops it from t->peers and t->aip. */
void tun_peer_remove(tun_peer *p, const char *reason);
void tun_resolve_endpoint(tun_peer *p);
/* Resolves the configured Endpoint now: IP literals at once, names asynchronously. */
void tun_peer_apply_endpoint(tun_peer *p);
void tun_session_begin(tun_peer *p); /* a handshake completed */
void tun_session_end(tun_peer *p, const char *reason, uint64_t end);
/* Ends the session if it can no longer send; returns when it will expire (0 = no session). */
uint64_t tun_session_check(tun_peer *p, uint64_t now);
/* Peers holding a session now or about to (a response sent, awaiting confirmation). */
size_t tun_sessions_live(const tunnel *t);
void tun_free(tunnel *t);

/* tunnel.c */
/* A fresh trie mapping cps[i]'s AllowedIPs to peers[i] (NULL peers skipped); -1 out of memory. */
int tun_build_allowedips(allowedips *aip, tun_peer **peers, const cfg_peer *cps,
                         size_t n); /* the tunnel object itself, once every peer is gone */

#endif
