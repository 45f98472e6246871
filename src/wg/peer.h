/* A remote peer: its static key and psk, its handshake, the cookie state for messages we send
 * it, its keypairs and timers. Key rotation follows WireGuard:
 *  - initiator: the session from a consumed response becomes current at once (the old current
 *    becomes previous, or an unconfirmed next does, being what the peer may still send with);
 *  - responder: the session from a response we create is "next" until the first transport packet
 *    arrives with it, which proves the initiator has it; then next -> current -> previous.
 * Replaced and expired keys are wiped; keypairs live in three embedded slots (each new session
 * only allocates its two keyed AEAD contexts, freed with the keypair). Outputs go into caller
 * buffers: pass a pointer S bytes into the datagram buffer to leave room for AWG prefix padding.
 * Actions requested by the protocol (handshake, keepalive, key zeroing) accumulate and are
 * collected by wg_peer_poll. */
#ifndef AWGPROXY_WG_PEER_H
#define AWGPROXY_WG_PEER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wg/cookie.h"
#include "wg/device.h"
#include "wg/index_table.h"
#include "wg/keypair.h"
#include "wg/noise.h"
#include "wg/timers.h"

#define WG_PEER_KEYPAIR_SLOTS 3

typedef struct wg_peer {
  struct wg_peer *next_peer; /* device list */
  wg_device *dev;
  wg_handshake hs;
  wg_index_entry hs_entry; /* the index of our pending initiation/response */
  wg_cookie_maker cookie;
  wg_keypair slots[WG_PEER_KEYPAIR_SLOTS];
  wg_keypair *current, *previous, *next;
  wg_timers timers;
  unsigned actions;        /* WG_ACT_* waiting for wg_peer_poll */
  uint64_t last_handshake; /* monotonic ns of the last confirmed session */
  bool has_handshake;
  void *user; /* for the device layer */
} wg_peer;

/* Binds p to d and adds it to d's peer list. psk NULL = none; persistent_keepalive in ns, 0 = off.
 * WG_ERR_BAD_KEY for a low-order key or our own. */
wg_result wg_peer_init(wg_peer *p, wg_device *d, const uint8_t pub[WG_KEY_LEN], const uint8_t *psk,
                       uint64_t persistent_keepalive);
/* Unlinks p from its device and wipes it. */
void wg_peer_remove(wg_peer *p);
const uint8_t *wg_peer_public_key(const wg_peer *p);

/* Writes a 148-byte initiation with MACs. retry = a retransmission (WG_ACT_RETRANSMIT), which
 * keeps the attempt count. WG_ERR_RATE_LIMITED within REKEY_TIMEOUT of the last handshake
 * message sent to this peer. wall_ns = Unix time in ns for the TAI64N timestamp. */
wg_result wg_peer_create_initiation(wg_peer *p, uint32_t type, uint64_t now, uint64_t wall_ns,
                                    bool retry, uint8_t out[148]);
/* Writes a 92-byte response with MACs to the initiation just consumed; installs the new session
 * as "next". */
wg_result wg_peer_create_response(wg_peer *p, uint32_t type, uint64_t now, uint8_t out[92]);

/* Encrypts in place with the current session: plaintext at msg + 16 (pt_len bytes; 0 makes a
 * keepalive), padded with zeros to padded_len (>= pt_len, see wg_padded_len); the message is
 * wg_transport_len(padded_len) bytes. WG_ERR_NO_SESSION (and WG_ACT_INITIATE requested) when no
 * usable session exists: queue the packet and handshake. */
wg_result wg_peer_encrypt(wg_peer *p, uint32_t type, uint8_t *msg, size_t pt_len, size_t padded_len,
                          uint64_t now);
/* The same with the plaintext read from pt instead of msg + 16 (no overlap with msg otherwise):
 * the send path seals the caller's packet straight into the send batch. room: as
 * wg_keypair_encrypt_from's (the send batch has it). */
wg_result wg_peer_encrypt_from(wg_peer *p, uint32_t type, uint8_t *msg, const uint8_t *pt,
                               size_t pt_len, size_t padded_len, bool room, uint64_t now);
/* True when wg_peer_encrypt can send now. */
bool wg_peer_can_send(const wg_peer *p, uint64_t now);

/* Runs due timers and returns (and clears) the pending WG_ACT_* actions. WG_ACT_ZERO_KEYS has
 * already been carried out when reported. */
unsigned wg_peer_poll(wg_peer *p, uint64_t now);
/* When wg_peer_poll should next run (0 when actions are already pending); false if nothing is
 * armed or pending. */
bool wg_peer_next_deadline(const wg_peer *p, uint64_t *deadline);
/* Wipes every keypair and the handshake (keeps static keys and replay timestamp). */
void wg_peer_zero_keys(wg_peer *p);
/* Replaces the preshared key (NULL = none). Sessions made with the old one are dropped (keys
 * zeroed), so the next packet needs a new handshake under the new key. */
void wg_peer_set_psk(wg_peer *p, const uint8_t *psk);

/* Receive steps used by device.c after it matched the message to this peer. */
wg_result wg_peer_accept_initiation(wg_peer *p, const uint8_t msg[148], wg_initiation_scan *scan,
                                    uint64_t now);
wg_result wg_peer_consume_response(wg_peer *p, const uint8_t msg[92], uint64_t now);
wg_result wg_peer_decrypt(wg_peer *p, wg_keypair *kp, uint8_t *msg, size_t len, uint64_t now);

#endif
