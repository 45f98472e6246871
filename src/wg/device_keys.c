#include "wg/device_keys.h"

#include <string.h>

static const char LABEL_MAC1[8] = "mac1----";
static const char LABEL_COOKIE[8] = "cookie--";

void wg_derive_mac1_key(uint8_t out[WG_KEY_LEN], const uint8_t pub[WG_KEY_LEN]) {
  wg_hash(out, LABEL_MAC1, sizeof LABEL_MAC1, pub, WG_KEY_LEN);
}

void wg_derive_cookie_key(uint8_t out[WG_KEY_LEN], const uint8_t pub[WG_KEY_LEN]) {
  wg_hash(out, LABEL_COOKIE, sizeof LABEL_COOKIE, pub, WG_KEY_LEN);
}

void wg_device_keys_init(wg_device_keys *k, const uint8_t priv[WG_KEY_LEN]) {
  memcpy(k->priv, priv, WG_KEY_LEN);
  wg_clamp(k->priv);
  wg_pubkey(k->pub, k->priv);
  wg_derive_mac1_key(k->mac1_key, k->pub);
  wg_derive_cookie_key(k->cookie_key, k->pub);
}

void wg_device_keys_wipe(wg_device_keys *k) { wg_wipe(k, sizeof *k); }
