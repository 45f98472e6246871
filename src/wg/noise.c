#include "wg/noise.h"

#include <string.h>

#include "wg/messages.h"

static const char CONSTRUCTION[] = "Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s";
static const char IDENTIFIER[] = "WireGuard v1 zx2c4 Jason@zx2c4.com";

/* Symmetric state of one handshake attempt, worked on in a local copy and committed to the
 * wg_handshake only on success. */
typedef struct {
  uint8_t ck[WG_HASH_LEN];
  uint8_t h[WG_HASH_LEN];
  uint8_t key[WG_KEY_LEN];
} chain;

static void mix_hash(chain *c, const uint8_t *data, size_t len) {
  wg_hash(c->h, c->h, WG_HASH_LEN, data, len);
}

static void mix_key(chain *c, const uint8_t *data, size_t len) {
  wg_kdf(c->ck, NULL, NULL, c->ck, data, len);
}

/* (ck, key) = KDF2(ck, DH(priv, pub)); false on an all-zero DH. */
static bool mix_dh_key(chain *c, const uint8_t priv[WG_KEY_LEN], const uint8_t pub[WG_KEY_LEN]) {
  uint8_t dh[WG_KEY_LEN];
  bool ok = wg_dh(dh, priv, pub);
  if (ok) wg_kdf(c->ck, c->key, NULL, c->ck, dh, sizeof dh);
  wg_wipe(dh, sizeof dh);
  return ok;
}

/* ck = HASH(CONSTRUCTION), h = HASH(HASH(ck || IDENTIFIER) || responder static). */
static void chain_start(chain *c, const uint8_t responder_static[WG_KEY_LEN]) {
  wg_hash(c->ck, CONSTRUCTION, sizeof CONSTRUCTION - 1, NULL, 0);
  wg_hash(c->h, c->ck, WG_HASH_LEN, IDENTIFIER, sizeof IDENTIFIER - 1);
  mix_hash(c, responder_static, WG_KEY_LEN);
}

/* ck = KDF1(ck, e); h = HASH(h || e): both sides do this on each ephemeral public key. */
static void mix_ephemeral(chain *c, const uint8_t e[WG_KEY_LEN]) {
  mix_key(c, e, WG_KEY_LEN);
  mix_hash(c, e, WG_KEY_LEN);
}

/* out = AEAD(key, 0, pt, h); h = HASH(h || out). */
static void seal_and_hash(chain *c, uint8_t *out, const uint8_t *pt, size_t len) {
  wg_aead_seal(out, c->key, 0, pt, len, c->h, WG_HASH_LEN);
  mix_hash(c, out, len + WG_AEAD_TAG_LEN);
}

static bool open_and_hash(chain *c, uint8_t *out, const uint8_t *ct, size_t len) {
  if (!wg_aead_open(out, c->key, 0, ct, len, c->h, WG_HASH_LEN)) return false;
  mix_hash(c, ct, len);
  return true;
}

/* psk2: (ck, tau, key) = KDF3(ck, psk); h = HASH(h || tau). */
static void mix_psk(chain *c, const uint8_t psk[WG_KEY_LEN]) {
  uint8_t tau[WG_HASH_LEN];
  wg_kdf(c->ck, tau, c->key, c->ck, psk, WG_KEY_LEN);
  mix_hash(c, tau, sizeof tau);
  wg_wipe(tau, sizeof tau);
}

static void chain_wipe(chain *c) { wg_wipe(c, sizeof *c); }

wg_result wg_handshake_init(wg_handshake *hs, const wg_device_keys *keys,
                            const uint8_t remote_static[WG_KEY_LEN], const uint8_t *psk) {
  memset(hs, 0, sizeof *hs);
  if (wg_equal(remote_static, keys->pub, WG_KEY_LEN)) return WG_ERR_BAD_KEY;
  if (!wg_dh(hs->static_static, keys->priv, remote_static)) return WG_ERR_BAD_KEY;
  memcpy(hs->remote_static, remote_static, WG_KEY_LEN);
  if (psk) memcpy(hs->psk, psk, WG_KEY_LEN);
  return WG_OK;
}

void wg_handshake_clear(wg_handshake *hs) {
  wg_wipe(hs->ephemeral_priv, sizeof hs->ephemeral_priv);
  wg_wipe(hs->remote_ephemeral, sizeof hs->remote_ephemeral);
  wg_wipe(hs->hash, sizeof hs->hash);
  wg_wipe(hs->chaining_key, sizeof hs->chaining_key);
  hs->local_index = hs->remote_index = 0;
  hs->state = WG_HS_ZEROED;
}

void wg_handshake_wipe(wg_handshake *hs) { wg_wipe(hs, sizeof *hs); }

static void commit(wg_handshake *hs, const chain *c, wg_hs_state state) {
  memcpy(hs->chaining_key, c->ck, WG_HASH_LEN);
  memcpy(hs->hash, c->h, WG_HASH_LEN);
  hs->state = state;
}

wg_result wg_noise_create_initiation(wg_handshake *hs, const wg_device_keys *keys, uint32_t type,
                                     uint32_t local_index, uint64_t wall_ns, const rng_source *rng,
                                     uint8_t msg[148]) {
  chain c;
  uint8_t eph[WG_KEY_LEN], ts[WG_TIMESTAMP_LEN];
  memset(msg, 0, WG_MSG_INIT_LEN);
  le32_store(msg, type);
  le32_store(msg + WG_INIT_SENDER, local_index);
  chain_start(&c, hs->remote_static);
  wg_keygen(eph, msg + WG_INIT_EPHEMERAL, rng);
  mix_ephemeral(&c, msg + WG_INIT_EPHEMERAL);
  if (!mix_dh_key(&c, eph, hs->remote_static)) {
    chain_wipe(&c);
    wg_wipe(eph, sizeof eph);
    return WG_ERR_BAD_KEY;
  }
  seal_and_hash(&c, msg + WG_INIT_STATIC, keys->pub, WG_KEY_LEN);
  wg_kdf(c.ck, c.key, NULL, c.ck, hs->static_static, WG_KEY_LEN);
  wg_tai64n(ts, wall_ns);
  seal_and_hash(&c, msg + WG_INIT_TIMESTAMP, ts, sizeof ts);
  wg_handshake_clear(hs);
  memcpy(hs->ephemeral_priv, eph, WG_KEY_LEN);
  hs->local_index = local_index;
  commit(hs, &c, WG_HS_CREATED_INITIATION);
  chain_wipe(&c);
  wg_wipe(eph, sizeof eph);
  return WG_OK;
}

wg_result wg_noise_identify_initiation(const wg_device_keys *keys, const uint8_t msg[148],
                                       wg_initiation_scan *scan) {
  chain c;
  wg_result r = WG_OK;
  const uint8_t *eph = msg + WG_INIT_EPHEMERAL;
  chain_start(&c, keys->pub);
  mix_ephemeral(&c, eph);
  if (!mix_dh_key(&c, keys->priv, eph)) {
    r = WG_ERR_BAD_KEY;
  } else if (!open_and_hash(&c, scan->remote_static, msg + WG_INIT_STATIC,
                            WG_KEY_LEN + WG_AEAD_TAG_LEN)) {
    r = WG_ERR_DECRYPT;
  } else {
    memcpy(scan->remote_ephemeral, eph, WG_KEY_LEN);
    memcpy(scan->hash, c.h, WG_HASH_LEN);
    memcpy(scan->chaining_key, c.ck, WG_HASH_LEN);
    scan->sender_index = le32_load(msg + WG_INIT_SENDER);
  }
  chain_wipe(&c);
  if (r != WG_OK) wg_initiation_scan_wipe(scan);
  return r;
}

void wg_initiation_scan_wipe(wg_initiation_scan *scan) { wg_wipe(scan, sizeof *scan); }

/* Timestamps are big-endian, so byte order is time order. */
static wg_result check_timestamp(const wg_handshake *hs, const uint8_t ts[WG_TIMESTAMP_LEN],
                                 uint64_t min_interval, uint64_t now) {
  if (memcmp(ts, hs->latest_timestamp, WG_TIMESTAMP_LEN) <= 0) return WG_ERR_STALE_TIMESTAMP;
  if (hs->has_consumed_initiation && now - hs->last_initiation_consumed < min_interval)
    return WG_ERR_FLOOD;
  return WG_OK;
}

wg_result wg_noise_accept_initiation(wg_handshake *hs, const uint8_t msg[148],
                                     wg_initiation_scan *scan, uint64_t min_interval,
                                     uint64_t now) {
  chain c;
  uint8_t ts[WG_TIMESTAMP_LEN];
  wg_result r = WG_OK;
  memcpy(c.ck, scan->chaining_key, WG_HASH_LEN);
  memcpy(c.h, scan->hash, WG_HASH_LEN);
  wg_kdf(c.ck, c.key, NULL, c.ck, hs->static_static, WG_KEY_LEN);
  if (!wg_equal(scan->remote_static, hs->remote_static, WG_KEY_LEN))
    r = WG_ERR_UNKNOWN_PEER;
  else if (!open_and_hash(&c, ts, msg + WG_INIT_TIMESTAMP, sizeof ts + WG_AEAD_TAG_LEN))
    r = WG_ERR_DECRYPT;
  else
    r = check_timestamp(hs, ts, min_interval, now);
  if (r == WG_OK) {
    wg_handshake_clear(hs);
    memcpy(hs->remote_ephemeral, scan->remote_ephemeral, WG_KEY_LEN);
    memcpy(hs->latest_timestamp, ts, sizeof ts);
    hs->remote_index = scan->sender_index;
    hs->last_initiation_consumed = now;
    hs->has_consumed_initiation = true;
    commit(hs, &c, WG_HS_CONSUMED_INITIATION);
  }
  chain_wipe(&c);
  wg_initiation_scan_wipe(scan);
  return r;
}

/* ck = KDF1(ck, DH(priv, pub)): the second message's DH steps (ee, then se), which both sides
 * compute from their own end. */
static bool mix_dh(chain *c, const uint8_t priv[WG_KEY_LEN], const uint8_t pub[WG_KEY_LEN]) {
  uint8_t dh[WG_KEY_LEN];
  bool ok = wg_dh(dh, priv, pub);
  if (ok) mix_key(c, dh, sizeof dh);
  wg_wipe(dh, sizeof dh);
  return ok;
}

static void load_chain(chain *c, const wg_handshake *hs) {
  memcpy(c->ck, hs->chaining_key, WG_HASH_LEN);
  memcpy(c->h, hs->hash, WG_HASH_LEN);
}

wg_result wg_noise_create_response(wg_handshake *hs, uint32_t type, uint32_t local_index,
                                   const rng_source *rng, uint8_t msg[92]) {
  chain c;
  uint8_t eph[WG_KEY_LEN];
  wg_result r = WG_OK;
  if (hs->state != WG_HS_CONSUMED_INITIATION) return WG_ERR_STATE;
  memset(msg, 0, WG_MSG_RESPONSE_LEN);
  le32_store(msg, type);
  le32_store(msg + WG_RESP_SENDER, local_index);
  le32_store(msg + WG_RESP_RECEIVER, hs->remote_index);
  load_chain(&c, hs);
  wg_keygen(eph, msg + WG_RESP_EPHEMERAL, rng);
  mix_ephemeral(&c, msg + WG_RESP_EPHEMERAL);
  if (!mix_dh(&c, eph, hs->remote_ephemeral) || !mix_dh(&c, eph, hs->remote_static)) {
    r = WG_ERR_BAD_KEY;
  } else {
    mix_psk(&c, hs->psk);
    seal_and_hash(&c, msg + WG_RESP_EMPTY, NULL, 0);
    memcpy(hs->ephemeral_priv, eph, WG_KEY_LEN);
    hs->local_index = local_index;
    commit(hs, &c, WG_HS_CREATED_RESPONSE);
  }
  chain_wipe(&c);
  wg_wipe(eph, sizeof eph);
  return r;
}

wg_result wg_noise_consume_response(wg_handshake *hs, const wg_device_keys *keys,
                                    const uint8_t msg[92]) {
  chain c;
  wg_result r = WG_OK;
  const uint8_t *eph = msg + WG_RESP_EPHEMERAL;
  if (hs->state != WG_HS_CREATED_INITIATION) return WG_ERR_STATE;
  if (le32_load(msg + WG_RESP_RECEIVER) != hs->local_index) return WG_ERR_UNKNOWN_INDEX;
  load_chain(&c, hs);
  mix_ephemeral(&c, eph);
  if (!mix_dh(&c, hs->ephemeral_priv, eph) || !mix_dh(&c, keys->priv, eph)) {
    r = WG_ERR_BAD_KEY;
  } else {
    mix_psk(&c, hs->psk);
    if (!open_and_hash(&c, NULL, msg + WG_RESP_EMPTY, WG_AEAD_TAG_LEN)) r = WG_ERR_DECRYPT;
  }
  if (r == WG_OK) {
    memcpy(hs->remote_ephemeral, eph, WG_KEY_LEN);
    hs->remote_index = le32_load(msg + WG_RESP_SENDER);
    commit(hs, &c, WG_HS_CONSUMED_RESPONSE);
  }
  chain_wipe(&c);
  return r;
}

wg_result wg_noise_derive_keys(wg_handshake *hs, wg_session_keys *out) {
  uint8_t t1[WG_KEY_LEN], t2[WG_KEY_LEN];
  bool initiator = hs->state == WG_HS_CONSUMED_RESPONSE;
  if (!initiator && hs->state != WG_HS_CREATED_RESPONSE) return WG_ERR_STATE;
  /* (T_i->r, T_r->i) = KDF2(ck, empty). */
  wg_kdf(t1, t2, NULL, hs->chaining_key, NULL, 0);
  memcpy(out->send, initiator ? t1 : t2, WG_KEY_LEN);
  memcpy(out->recv, initiator ? t2 : t1, WG_KEY_LEN);
  out->local_index = hs->local_index;
  out->remote_index = hs->remote_index;
  out->initiator = initiator;
  wg_wipe(t1, sizeof t1);
  wg_wipe(t2, sizeof t2);
  wg_handshake_clear(hs);
  return WG_OK;
}
