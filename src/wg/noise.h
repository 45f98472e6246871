/* The Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s handshake as WireGuard uses it (whitepaper §5.4):
 * one wg_handshake per peer, an explicit state machine
 *
 *   ZEROED --create_initiation--> CREATED_INITIATION --consume_response--> CONSUMED_RESPONSE
 *   ZEROED/any --accept_initiation--> CONSUMED_INITIATION --create_response--> CREATED_RESPONSE
 *   CONSUMED_RESPONSE / CREATED_RESPONSE --derive_keys--> ZEROED (+ transport keys)
 *
 * Pure computation on 148/92-byte messages: the type field is written from the caller's value
 * and never read, mac1/mac2 are left to cookie.h, indices to the caller. A consumed initiation
 * must carry a TAI64N timestamp newer than the last one accepted from that peer (replay
 * protection) and arrive no sooner than initiation_min_interval after it (flood protection).
 * Functions leave the state untouched when they fail. */
#ifndef AWGPROXY_WG_NOISE_H
#define AWGPROXY_WG_NOISE_H

#include <stdbool.h>
#include <stdint.h>

#include "util/rng.h"
#include "wg/device_keys.h"
#include "wg/result.h"

typedef enum {
  WG_HS_ZEROED = 0,
  WG_HS_CREATED_INITIATION,
  WG_HS_CONSUMED_INITIATION,
  WG_HS_CREATED_RESPONSE,
  WG_HS_CONSUMED_RESPONSE,
} wg_hs_state;

typedef struct {
  wg_hs_state state;
  uint8_t remote_static[WG_KEY_LEN];
  uint8_t psk[WG_KEY_LEN];           /* zeros without a preshared key */
  uint8_t static_static[WG_KEY_LEN]; /* DH(our static, remote static), computed once */
  uint8_t ephemeral_priv[WG_KEY_LEN];
  uint8_t remote_ephemeral[WG_KEY_LEN];
  uint8_t hash[WG_HASH_LEN];
  uint8_t chaining_key[WG_HASH_LEN];
  uint32_t local_index, remote_index;
  uint8_t latest_timestamp[WG_TIMESTAMP_LEN];
  uint64_t last_initiation_consumed; /* monotonic ns */
  bool has_consumed_initiation;
} wg_handshake;

/* Binds a handshake to the peer's static key and optional psk (NULL = none). WG_ERR_BAD_KEY when
 * the key is our own or of low order. */
wg_result wg_handshake_init(wg_handshake *hs, const wg_device_keys *keys,
                            const uint8_t remote_static[WG_KEY_LEN], const uint8_t *psk);
/* Forgets the ephemeral state (back to ZEROED); the replay-protection timestamp is kept. */
void wg_handshake_clear(wg_handshake *hs);
/* Wipes everything, including the static binding. */
void wg_handshake_wipe(wg_handshake *hs);

/* Writes a 148-byte initiation (mac1/mac2 zeroed) with the given type value, our sender index
 * and a TAI64N timestamp of wall_ns (Unix ns). */
wg_result wg_noise_create_initiation(wg_handshake *hs, const wg_device_keys *keys, uint32_t type,
                                     uint32_t local_index, uint64_t wall_ns, const rng_source *rng,
                                     uint8_t msg[148]);

/* First half of consuming an initiation, before the peer is known: decrypts the initiator's
 * static key. The result holds secrets; pass it to wg_noise_accept_initiation (which wipes it)
 * or wipe it with wg_initiation_scan_wipe. */
typedef struct {
  uint8_t remote_static[WG_KEY_LEN];
  uint8_t remote_ephemeral[WG_KEY_LEN];
  uint8_t hash[WG_HASH_LEN];
  uint8_t chaining_key[WG_HASH_LEN];
  uint32_t sender_index;
} wg_initiation_scan;

wg_result wg_noise_identify_initiation(const wg_device_keys *keys, const uint8_t msg[148],
                                       wg_initiation_scan *scan);
void wg_initiation_scan_wipe(wg_initiation_scan *scan);

/* Second half, on the handshake of the peer owning scan->remote_static: decrypts and checks the
 * timestamp (WG_ERR_STALE_TIMESTAMP, WG_ERR_FLOOD) and moves to CONSUMED_INITIATION. */
wg_result wg_noise_accept_initiation(wg_handshake *hs, const uint8_t msg[148],
                                     wg_initiation_scan *scan, uint64_t min_interval, uint64_t now);

/* Writes a 92-byte response (mac1/mac2 zeroed) to the consumed initiation. */
wg_result wg_noise_create_response(wg_handshake *hs, uint32_t type, uint32_t local_index,
                                   const rng_source *rng, uint8_t msg[92]);

/* Consumes a 92-byte response to our initiation (the caller matched its receiver index). */
wg_result wg_noise_consume_response(wg_handshake *hs, const wg_device_keys *keys,
                                    const uint8_t msg[92]);

typedef struct {
  uint8_t send[WG_KEY_LEN], recv[WG_KEY_LEN];
  uint32_t local_index, remote_index;
  bool initiator;
} wg_session_keys;

/* After CREATED_RESPONSE or CONSUMED_RESPONSE: the transport keys; the handshake is cleared. */
wg_result wg_noise_derive_keys(wg_handshake *hs, wg_session_keys *out);

#endif
