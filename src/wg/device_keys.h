/* The local static identity of a WireGuard interface: its Curve25519 key pair and the two keys
 * derived from the public key that every incoming handshake needs (mac1 verification, cookie
 * encryption). Computed once when the private key is set. */
#ifndef AWGPROXY_WG_DEVICE_KEYS_H
#define AWGPROXY_WG_DEVICE_KEYS_H

#include <stdint.h>

#include "wg/wg_crypto.h"

typedef struct {
  uint8_t priv[WG_KEY_LEN]; /* clamped */
  uint8_t pub[WG_KEY_LEN];
  uint8_t mac1_key[WG_KEY_LEN];   /* HASH("mac1----" || pub): verifies mac1 of messages to us */
  uint8_t cookie_key[WG_KEY_LEN]; /* HASH("cookie--" || pub): seals cookie replies we send */
} wg_device_keys;

void wg_device_keys_init(wg_device_keys *k, const uint8_t priv[WG_KEY_LEN]);
void wg_device_keys_wipe(wg_device_keys *k);

/* The per-public-key derivations, shared with the peer side (cookie.c). */
void wg_derive_mac1_key(uint8_t out[WG_KEY_LEN], const uint8_t pub[WG_KEY_LEN]);
void wg_derive_cookie_key(uint8_t out[WG_KEY_LEN], const uint8_t pub[WG_KEY_LEN]);

#endif
