#include "wg/cookie.h"

#include <string.h>

#include "util/bytes.h"
#include "wg/messages.h"

/* mac1 sits 32 bytes before the end of initiations and responses, mac2 16 bytes before. */
static bool is_handshake_len(size_t len) {
  return len == WG_MSG_INIT_LEN || len == WG_MSG_RESPONSE_LEN;
}

static size_t mac1_offset(size_t len) { return len - 2 * WG_MAC_LEN; }
static size_t mac2_offset(size_t len) { return len - WG_MAC_LEN; }

void wg_cookie_checker_init(wg_cookie_checker *c, const rng_source *rng) {
  memset(c, 0, sizeof *c);
  c->rng = rng;
}

void wg_cookie_checker_wipe(wg_cookie_checker *c) {
  wg_wipe(c->secret, sizeof c->secret);
  wg_wipe(c->seed, sizeof c->seed);
}

void wg_cookie_checker_set_seed(wg_cookie_checker *c, const uint8_t seed[WG_KEY_LEN]) {
  memcpy(c->seed, seed, sizeof c->seed);
  c->seeded = true;
  c->has_secret = false;
}

/* The seeded secret of now's epoch: a keyed hash of the epoch number, 32 bytes from two MACs. */
static void seeded_secret(wg_cookie_checker *c, uint64_t now) {
  uint64_t epoch = now / WG_COOKIE_SECRET_MAX_AGE;
  if (c->has_secret && c->epoch == epoch) return;
  uint8_t in[9];
  for (int half = 0; half < 2; half++) {
    le64_store(in, epoch);
    in[8] = (uint8_t)half;
    wg_mac(c->secret + half * WG_MAC_LEN, c->seed, sizeof c->seed, in, sizeof in);
  }
  c->epoch = epoch;
  c->has_secret = true;
}

/* The cookie for src under the current secret, regenerating a secret older than 120 s. */
static void current_cookie(wg_cookie_checker *c, const uint8_t *src, size_t srclen, uint64_t now,
                           uint8_t out[WG_MAC_LEN]) {
  if (c->seeded) {
    seeded_secret(c, now);
  } else if (!c->has_secret || now - c->secret_birth >= WG_COOKIE_SECRET_MAX_AGE) {
    rng_bytes(c->rng, c->secret, sizeof c->secret);
    c->secret_birth = now;
    c->has_secret = true;
  }
  wg_mac(out, c->secret, sizeof c->secret, src, srclen);
}

wg_result wg_cookie_check(wg_cookie_checker *c, const wg_device_keys *keys, const uint8_t *msg,
                          size_t len, const uint8_t *src, size_t srclen, bool under_load,
                          uint64_t now) {
  uint8_t mac[WG_MAC_LEN], cookie[WG_MAC_LEN];
  if (!is_handshake_len(len)) return WG_ERR_SIZE;
  wg_mac(mac, keys->mac1_key, WG_KEY_LEN, msg, mac1_offset(len));
  if (!wg_equal(mac, msg + mac1_offset(len), WG_MAC_LEN)) return WG_ERR_MAC1;
  if (!under_load) return WG_OK;
  current_cookie(c, src, srclen, now, cookie);
  wg_mac(mac, cookie, sizeof cookie, msg, mac2_offset(len));
  wg_wipe(cookie, sizeof cookie);
  return wg_equal(mac, msg + mac2_offset(len), WG_MAC_LEN) ? WG_OK : WG_ERR_NEED_COOKIE;
}

wg_result wg_cookie_create_reply(wg_cookie_checker *c, const wg_device_keys *keys, uint32_t type,
                                 const uint8_t *msg, size_t len, const uint8_t *src, size_t srclen,
                                 uint64_t now, uint8_t out[64]) {
  uint8_t cookie[WG_MAC_LEN];
  if (!is_handshake_len(len)) return WG_ERR_SIZE;
  le32_store(out, type);
  /* The sender index sits at offset 4 in both initiation and response. */
  memcpy(out + WG_COOKIE_RECEIVER, msg + WG_INIT_SENDER, 4);
  rng_bytes(c->rng, out + WG_COOKIE_NONCE, WG_XNONCE_LEN);
  current_cookie(c, src, srclen, now, cookie);
  wg_xaead_seal(out + WG_COOKIE_DATA, keys->cookie_key, out + WG_COOKIE_NONCE, cookie,
                sizeof cookie, msg + mac1_offset(len), WG_MAC_LEN);
  wg_wipe(cookie, sizeof cookie);
  return WG_OK;
}

void wg_cookie_maker_init(wg_cookie_maker *m, const uint8_t peer_pub[WG_KEY_LEN]) {
  memset(m, 0, sizeof *m);
  wg_derive_mac1_key(m->mac1_key, peer_pub);
  wg_derive_cookie_key(m->cookie_key, peer_pub);
}

void wg_cookie_maker_wipe(wg_cookie_maker *m) { wg_wipe(m, sizeof *m); }

void wg_cookie_add_macs(wg_cookie_maker *m, uint8_t *msg, size_t len, uint64_t now) {
  uint8_t *mac1 = msg + mac1_offset(len), *mac2 = msg + mac2_offset(len);
  wg_mac(mac1, m->mac1_key, WG_KEY_LEN, msg, mac1_offset(len));
  memcpy(m->last_mac1, mac1, WG_MAC_LEN);
  m->has_last_mac1 = true;
  if (m->has_cookie && now - m->cookie_birth < WG_COOKIE_LIFETIME) {
    wg_mac(mac2, m->cookie, WG_MAC_LEN, msg, mac2_offset(len));
  } else {
    memset(mac2, 0, WG_MAC_LEN);
  }
}

wg_result wg_cookie_consume_reply(wg_cookie_maker *m, const uint8_t *msg, size_t len,
                                  uint64_t now) {
  uint8_t cookie[WG_MAC_LEN];
  if (len != WG_MSG_COOKIE_LEN) return WG_ERR_SIZE;
  if (!m->has_last_mac1) return WG_ERR_NO_COOKIE_STATE;
  if (!wg_xaead_open(cookie, m->cookie_key, msg + WG_COOKIE_NONCE, msg + WG_COOKIE_DATA,
                     WG_MAC_LEN + WG_AEAD_TAG_LEN, m->last_mac1, WG_MAC_LEN))
    return WG_ERR_DECRYPT;
  memcpy(m->cookie, cookie, sizeof cookie);
  wg_wipe(cookie, sizeof cookie);
  m->cookie_birth = now;
  m->has_cookie = true;
  m->has_last_mac1 = false; /* one reply per message we sent */
  return WG_OK;
}

bool wg_under_load(wg_load_state *l, size_t queued, size_t threshold, uint64_t now) {
  if (queued >= threshold) {
    l->until = now + WG_UNDER_LOAD_STICKY;
    l->active = true;
  }
  if (l->active && now >= l->until) l->active = false;
  return l->active;
}
