/* One WireGuard interface's protocol state: static identity, cookie checker, receiver-index
 * table and the list of peers, plus the receive side of every message kind. Pure code with
 * injected time (monotonic ns) and randomness; the libuv device layer does the I/O:
 *
 *   datagram --awg_classify--> kind + unpadded WG message --> one of the wg_device_consume_* /
 *   wg_device_decrypt calls below, which return a wg_result to count/log and name the peer;
 *   sends are produced by wg_peer_* (peer.h) into caller buffers.
 *
 * Single-threaded: the caller serialises all calls on one device. */
#ifndef AWGPROXY_WG_DEVICE_H
#define AWGPROXY_WG_DEVICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/rng.h"
#include "wg/cookie.h"
#include "wg/device_keys.h"
#include "wg/index_table.h"
#include "wg/result.h"
#include "wg/tunables.h"

struct wg_peer;

typedef struct wg_device {
  wg_device_keys keys;
  wg_cookie_checker checker;
  wg_index_table index;
  wg_tunables tunables;
  const rng_source *rng;       /* keys, indices, cookies */
  const rng_source *timer_rng; /* timer jitter: rng_fast() when rng is the system's */
  struct wg_peer *peers;       /* singly linked through wg_peer.next_peer */
  /* Sharded server (wg/shard.h): this device is shard `shard` of `shards` (0 of 1 otherwise).
   * other_shard: where the last initiation refused with WG_ERR_OTHER_SHARD belongs. */
  unsigned shard, shards, other_shard;
} wg_device;

/* tunables NULL = wg_tunables_default(). rng must outlive the device. */
void wg_device_init(wg_device *d, const uint8_t priv[WG_KEY_LEN], const wg_tunables *tunables,
                    const rng_source *rng);
/* Wipes the device's secrets. Remove the peers first (wg_peer_remove). */
void wg_device_wipe(wg_device *d);

/* Makes the device shard `shard` of `shards`: its receiver indices map to it, and initiations
 * from keys that map elsewhere are refused with WG_ERR_OTHER_SHARD (before any state changes;
 * d->other_shard names the owner). */
void wg_device_set_shard(wg_device *d, unsigned shard, unsigned shards);

struct wg_peer *wg_device_find_peer(const wg_device *d, const uint8_t pub[WG_KEY_LEN]);
/* The peer (and, for keypairs, wg_keypair via entry->obj) behind one of our receiver indices. */
wg_index_entry *wg_device_lookup_index(const wg_device *d, uint32_t index, unsigned kinds);

/* A 148-byte initiation from src: checks mac1/mac2 (WG_ERR_NEED_COOKIE: answer with
 * wg_device_create_cookie_reply), identifies and authenticates the initiator, applies the
 * timestamp replay and flood rules. On WG_OK *peer is set and the caller should answer with
 * wg_peer_create_response. *peer is also set for WG_ERR_STALE_TIMESTAMP / WG_ERR_FLOOD. */
wg_result wg_device_consume_initiation(wg_device *d, const uint8_t *msg, size_t len,
                                       const uint8_t *src, size_t srclen, bool under_load,
                                       uint64_t now, struct wg_peer **peer);

/* A 92-byte response to one of our initiations: on WG_OK the new session is current and the
 * peer has WG_ACT_SEND_KEEPALIVE pending (key confirmation; pending data serves as well). */
wg_result wg_device_consume_response(wg_device *d, const uint8_t *msg, size_t len,
                                     const uint8_t *src, size_t srclen, bool under_load,
                                     uint64_t now, struct wg_peer **peer);

/* Builds a 64-byte cookie reply (type field = type) to a handshake message from src. */
wg_result wg_device_create_cookie_reply(wg_device *d, uint32_t type, const uint8_t *msg, size_t len,
                                        const uint8_t *src, size_t srclen, uint64_t now,
                                        uint8_t out[64]);

/* A 64-byte cookie reply to one of our handshake messages: stores the cookie for the peer. */
wg_result wg_device_consume_cookie_reply(wg_device *d, const uint8_t *msg, size_t len, uint64_t now,
                                         struct wg_peer **peer);

/* A transport packet of keypair index with counter was rebuilt from others (tunnel_fec.h) rather
 * than decrypted: marks the counter seen, so that the datagram itself is dropped as a replay if it
 * comes after all. False when the counter was seen already, is too old, or the index unknown. */
bool wg_device_mark_received(wg_device *d, uint32_t index, uint64_t counter);

/* A transport message (>= 32 bytes), decrypted in place: on WG_OK the padded plaintext is at
 * msg + 16, *pt_len bytes (0 = keepalive; the caller trims the padding using the inner IP
 * header). Confirms a responder's new session on its first packet. */
wg_result wg_device_decrypt(wg_device *d, uint8_t *msg, size_t len, uint64_t now,
                            struct wg_peer **peer, size_t *pt_len);

#endif
