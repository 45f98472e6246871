/* The tunnel device: the WireGuard/AmneziaWG peer(s) of one config on a libuv loop. It joins the
 * UDP sockets (udp_io), the obfuscation layer (awg/obfs), the protocol core (wg/) and the
 * userspace IP stack (ipstack): datagrams in -> classify -> handshake or decrypt -> IP stack;
 * IP stack out -> cryptokey routing -> encrypt -> pad -> UDP. */
#ifndef AWGPROXY_DEVICE_TUNNEL_H
#define AWGPROXY_DEVICE_TUNNEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "device/dgram_carrier.h"

#include "config/config.h"
#include "device/ipstack.h"
#include "observe/hist.h"

typedef struct tunnel tunnel;

typedef struct {
  char fingerprint[9];
  char endpoint[64];               /* "" when none is known */
  const char *carrier;             /* what carries the datagrams to it: "udp" or "tls" */
  uint32_t unanswered_initiations; /* of the handshake round in progress, 0 = none pending */
  uint64_t silent_ms;              /* since its last authenticated datagram (UINT64_MAX: never) */
  bool has_session;
  uint64_t last_handshake_unix_ns; /* 0 = never */
  /* Whole UDP datagrams (AWG padding included): received = authenticated ones from this peer,
   * sent = everything sent to it (junk and I-packets included). */
  uint64_t rx_bytes, tx_bytes;
  uint64_t rx_packets, tx_packets;
  uint64_t handshakes_ok, handshakes_failed;
  bool repair; /* loss repair is on with this peer */
} tunnel_peer_status;

/* Why a received datagram was not used. */
typedef enum {
  TUN_DROP_UNKNOWN_CLASS,      /* matches no message class: junk, I-packets, probes */
  TUN_DROP_MAC1,               /* handshake message not for our key */
  TUN_DROP_DECRYPT,            /* transport packet that does not authenticate */
  TUN_DROP_REPLAY,             /* transport counter already seen */
  TUN_DROP_UNKNOWN_INDEX,      /* receiver index not ours (stale session, probe) */
  TUN_DROP_EXPIRED,            /* session too old */
  TUN_DROP_NOT_ALLOWED_SOURCE, /* inner source address outside the peer's AllowedIPs */
  TUN_DROP_NOT_IP,             /* decrypted payload is not an IP packet */
  TUN_DROP_BARE_NOT_KEEPALIVE, /* unpadded transport datagram carrying data */
  TUN_DROP_UNDER_LOAD,         /* handshake answered with a cookie reply instead */
  TUN_DROP_HANDSHAKE,          /* handshake message rejected (see tun_hs_failure) */
  TUN_DROP_COOKIE,             /* cookie reply that does not fit or authenticate */
  TUN_DROP_HANDOFF,            /* for a sibling worker whose inbox was full, or not its own */
  TUN_DROP_OTHER,
  TUN_DROP_COUNT
} tun_drop_reason;

/* Why a handshake failed. */
typedef enum {
  TUN_HS_TIMEOUT,         /* our initiations went unanswered until the attempt limit */
  TUN_HS_DECRYPT,         /* a handshake message did not decrypt (wrong key or PresharedKey) */
  TUN_HS_UNKNOWN_PEER,    /* initiation from a key that is not a [Peer] */
  TUN_HS_STALE_TIMESTAMP, /* replayed initiation */
  TUN_HS_FLOOD,           /* initiations faster than allowed */
  TUN_HS_STATE,           /* response without an initiation awaiting it */
  TUN_HS_BAD_KEY,         /* low-order or own public key */
  TUN_HS_MAX_SESSIONS,    /* [Server] MaxSessions peers already hold sessions */
  TUN_HS_OTHER,
  TUN_HS_FAILURE_COUNT
} tun_hs_failure;

#define TUN_HS_DURATION_BOUNDS 12

typedef struct {
  uint64_t handshakes_ok;
  uint64_t handshakes_failed[TUN_HS_FAILURE_COUNT];
  /* Sessions re-established after being lost (expired, or handshake rounds that failed);
   * routine rekeys of a live session are not counted. */
  uint64_t reconnects;
  uint64_t endpoint_hops; /* port hopping: moves of a peer's endpoint to another server port */
  uint64_t carrier_switches[DGRAM_CARRIERS]; /* a client's peer moved to that carrier */
  uint64_t junk_sent, signature_sent;        /* Jc junk and I1..I5 datagrams */
  uint64_t dropped[TUN_DROP_COUNT];
  /* Loss repair between awgproxy ends (tunnel_repair.h): NACK messages sent, counters asked for,
   * gaps filled after being asked for, gaps given up (with or without repair), datagrams resent
   * and resends refused (no longer kept, or over the resend budget); NACKs left unrepaired
   * because their losses came from a queue, and GIVEUPs heard from the peer. Datagrams kept for
   * a resend: none over a reliable carrier (TLS), whose TCP loses nothing. */
  uint64_t repair_kept;
  uint64_t repair_nacks_sent, repair_asked, repair_filled, gaps_given_up, gaps_abandoned;
  uint64_t repair_resent, repair_refused, repair_congestion, repair_giveups_heard;
  uint64_t fec_parity_sent, fec_recovered; /* tunnel_fec.h */
  /* Seconds from sending an initiation to consuming its response (our side initiating). */
  obs_hist handshake_duration;
  /* Sharded server: datagrams handed to the owning sibling worker, and taken from siblings. */
  uint64_t handed_off, handed_in;
} tunnel_stats;

/* A server worker's place among its siblings ([Server] Threads, wg/shard.h, tunnel_shard.c). */
typedef struct {
  unsigned shard, shards;      /* this worker and how many there are (2..WG_SHARDS_MAX) */
  int inbox_fd;                /* datagrams the siblings hand to this worker (unix SOCK_DGRAM) */
  const int *outbox_fds;       /* [shards]: where to hand datagrams to each worker */
  struct shard_counts *counts; /* shared with the siblings (util/shard_counts.h); borrowed, must
                                * outlive everything on the loop */
  int udp4_fd, udp6_fd;        /* this worker's sockets in the port's SO_REUSEPORT group (-1 = none;
                                * both -1: the tunnel binds its own), taken over by the tunnel */
  uint8_t cookie_seed[32];
} tunnel_shard;

/* Opens the UDP sockets, creates the IP stack with the config's Address(es) and starts
 * handshaking with peers that have an Endpoint. Returns NULL with a message in err. */
tunnel *tunnel_create(uv_loop_t *loop, const app_config *cfg, char *err, size_t errlen);
/* The same for one worker of a sharded server (sh NULL = tunnel_create): its socket shares the
 * port with the siblings' (SO_REUSEPORT), it hands out only its own receiver indices, and hands
 * datagrams for the siblings' peers over. cfg should hold only this worker's peers. The
 * descriptors in sh stay the caller's. */
tunnel *tunnel_create_shard(uv_loop_t *loop, const app_config *cfg, const tunnel_shard *sh,
                            char *err, size_t errlen);
void tunnel_destroy(tunnel *t);
ipstack *tunnel_ipstack(tunnel *t);
uint16_t tunnel_port(const tunnel *t);
/* True when at least one peer has a usable session. */
bool tunnel_is_up(const tunnel *t);
size_t tunnel_peer_count(const tunnel *t);
/* Monotonic ns (uv_hrtime) of the newest authenticated packet from any peer; 0 = none yet. */
uint64_t tunnel_last_rx(const tunnel *t);
/* Monotonic ns of the newest completed handshake with any peer; 0 = none yet. A handshake that
 * completed after a probe is fresher proof of life than any datagram read then, which a loop
 * that is behind may have been sent long before: its response answers the probe's initiation,
 * or one still unanswered when the probe came. */
uint64_t tunnel_last_handshake(const tunnel *t);
/* Liveness probe: a session can look valid for minutes after the server died (or restarted and
 * forgot it), so start a handshake with each peer unless one is already unanswered; a live
 * server answers within a round trip, and callers compare tunnel_last_rx() with the time they
 * started. Without even_if_recent, peers heard from within the last second are skipped. Dialers
 * call it only once a new stream has had no answer for tunnel_probe_delay_ms: a handshake per
 * connection would be a fingerprint stock clients do not have (issue 14). */
void tunnel_probe(tunnel *t, bool even_if_recent);
/* How long a new stream waits for any answer through the tunnel before a probe: one round trip
 * (the last handshake's, 300 ms while unknown) plus a second. */
uint64_t tunnel_probe_delay_ms(const tunnel *t);
void tunnel_peer_status_get(const tunnel *t, size_t i, tunnel_peer_status *out);
/* The [Peer] the i-th peer comes from (valid until the next tunnel_reload). */
const cfg_peer *tunnel_peer_cfg(const tunnel *t, size_t i);
/* Cryptokey routing read backwards: the [Peer] whose AllowedIPs hold addr (the one the tunnel
 * accepts packets from addr from), NULL when none does. Valid until the next tunnel_reload; the
 * exit maps sources to its per-peer state with it instead of keeping a second trie. */
const cfg_peer *tunnel_owner_of(const tunnel *t, int family, const uint8_t *addr);

typedef struct {
  size_t added, removed, changed, unchanged;
} tunnel_reload_stats;

/* Switches the tunnel to cfg's [Peer] list (peers matched by public key) and [Server]
 * MaxSessions. Keys that cannot change at run time (PrivateKey, ListenPort, Address, MTU, the
 * obfuscation parameters) must be the ones the tunnel runs with: config_keep_restart_only()
 * (config/config_diff.h) makes them so.
 *  - unchanged peers keep their sessions, timers, counters and learned endpoint;
 *  - changed AllowedIPs, Endpoint and PersistentKeepalive apply at once (an Endpoint change
 *    replaces the current endpoint; removing the Endpoint keeps the learned one);
 *  - a changed PresharedKey ends the peer's session: the next packet needs a new handshake;
 *  - new peers start handshaking if they have an Endpoint;
 *  - removed peers end their session, lose their keys and indices (a later handshake from them
 *    is an unknown peer) and their queued packets.
 * From then on the tunnel refers to cfg, which must stay alive until the next reload or
 * tunnel_destroy; the previous config is no longer referenced. Returns -1 with a message in err
 * (out of memory) and leaves everything as it was. */
int tunnel_reload(tunnel *t, const app_config *cfg, tunnel_reload_stats *st, char *err,
                  size_t errlen);
void tunnel_stats_get(const tunnel *t, tunnel_stats *out);
/* A sharded server's counts shared with the sibling workers (NULL otherwise), for the exit's
 * server-wide cap; valid for the whole process. */
struct shard_counts *tunnel_shard_counts(const tunnel *t);

/* Inner packets for a consumer other than lwIP (the QUIC endpoint): fn sees every inner packet
 * that passed the AllowedIPs check, before lwIP; returning true consumes it. One per tunnel;
 * NULL removes it. */
/* Other datagram carriers than the tunnel's own UDP (dgram_carrier.h; the TLS carrier,
 * carrier/): c (borrowed; NULL detaches it) carries every datagram sent to an endpoint of that
 * kind, and hands what it receives to tunnel_datagram_in, which treats it exactly as a UDP
 * datagram (roaming between carriers included). */
void tunnel_set_carrier(tunnel *t, dgram_carrier_kind kind, dgram_carrier *c);
void tunnel_datagram_in(tunnel *t, uint8_t *data, size_t len, const dgram_endpoint *from);
/* Whether data is an AWG handshake initiation whose mac1 says it is meant for this interface
 * (a configured peer, or someone who knows our public key): the TLS carrier's gate before it
 * hands anything to the tunnel or answers with a single AWG byte. data is not modified. */
bool tunnel_gate_initiation(tunnel *t, const uint8_t *data, size_t len, const dgram_endpoint *from);
/* Client: peer i is reached at ep (a copy is kept) from now on, whatever arrives from elsewhere
 * (soft: except an answer over UDP to a trial, below); NULL returns it to its Endpoint over UDP.
 * A move to another carrier is counted (carrier_switches) and logged with reason. */
void tunnel_peer_pin_endpoint(tunnel *t, size_t i, const dgram_endpoint *ep, bool soft,
                              const char *reason);
/* Carrier = auto, on another carrier: sends one initiation to the peer's UDP endpoint; if the
 * answer comes back over UDP (within 10 s) the peer returns to UDP. */
void tunnel_peer_try_udp(tunnel *t, size_t i);

typedef bool (*tunnel_inner_fn)(void *ctx, const uint8_t *pkt, size_t len);
void tunnel_set_inner_hook(tunnel *t, tunnel_inner_fn fn, void *ctx);
/* Sends one inner IP packet (routed by destination, sealed, padded) as lwIP's output would be. */
void tunnel_send_inner(tunnel *t, const uint8_t *pkt, size_t len);
/* True when the peer that dst routes to has a usable session now. */
bool tunnel_route_is_up(const tunnel *t, int family, const uint8_t *dst);
/* Short label values: "unknown-class", "mac1", … / "timeout", "decrypt", … */
const char *tunnel_drop_reason_name(tun_drop_reason r);
const char *tunnel_hs_failure_name(tun_hs_failure f);

#endif
