#include "wg/device.h"

#include <string.h>

#include "wg/messages.h"
#include "wg/noise.h"
#include "wg/peer.h"
#include "wg/shard.h"

void wg_device_init(wg_device *d, const uint8_t priv[WG_KEY_LEN], const wg_tunables *tunables,
                    const rng_source *rng) {
  memset(d, 0, sizeof *d);
  wg_device_keys_init(&d->keys, priv);
  if (tunables)
    d->tunables = *tunables;
  else
    wg_tunables_default(&d->tunables);
  d->rng = rng;
  /* Timer jitter is drawn whenever a data packet re-arms the handshake timer, once per packet
   * sent after one received in a download: a getrandom() syscall each from the system source.
   * Jitter is no secret; the buffered stream serves it (a test's own source is kept). */
  d->timer_rng = rng == rng_system() ? rng_fast() : rng;
  wg_cookie_checker_init(&d->checker, rng);
  wg_index_table_init(&d->index);
  d->shards = 1;
}

void wg_device_wipe(wg_device *d) {
  wg_device_keys_wipe(&d->keys);
  wg_cookie_checker_wipe(&d->checker);
}

void wg_device_set_shard(wg_device *d, unsigned shard, unsigned shards) {
  d->shards = shards > 1 ? shards : 1;
  d->shard = shard % d->shards;
  wg_index_table_set_shard(&d->index, d->shard, d->shards);
}

wg_peer *wg_device_find_peer(const wg_device *d, const uint8_t pub[WG_KEY_LEN]) {
  for (wg_peer *p = d->peers; p; p = p->next_peer)
    if (wg_equal(wg_peer_public_key(p), pub, WG_KEY_LEN)) return p;
  return NULL;
}

wg_index_entry *wg_device_lookup_index(const wg_device *d, uint32_t index, unsigned kinds) {
  return wg_index_lookup(&d->index, index, kinds);
}

wg_result wg_device_consume_initiation(wg_device *d, const uint8_t *msg, size_t len,
                                       const uint8_t *src, size_t srclen, bool under_load,
                                       uint64_t now, wg_peer **peer) {
  wg_initiation_scan scan;
  wg_peer *p;
  wg_result r;
  *peer = NULL;
  if (len != WG_MSG_INIT_LEN) return WG_ERR_SIZE;
  r = wg_cookie_check(&d->checker, &d->keys, msg, len, src, srclen, under_load, now);
  if (r == WG_OK) r = wg_noise_identify_initiation(&d->keys, msg, &scan);
  if (r != WG_OK) return r;
  unsigned owner = wg_shard_of_key(scan.remote_static, d->shards);
  if (owner != d->shard) {
    wg_initiation_scan_wipe(&scan);
    d->other_shard = owner;
    return WG_ERR_OTHER_SHARD;
  }
  p = wg_device_find_peer(d, scan.remote_static);
  if (!p) {
    wg_initiation_scan_wipe(&scan);
    return WG_ERR_UNKNOWN_PEER;
  }
  *peer = p;
  return wg_peer_accept_initiation(p, msg, &scan, now);
}

wg_result wg_device_consume_response(wg_device *d, const uint8_t *msg, size_t len,
                                     const uint8_t *src, size_t srclen, bool under_load,
                                     uint64_t now, wg_peer **peer) {
  wg_index_entry *e;
  wg_result r;
  *peer = NULL;
  if (len != WG_MSG_RESPONSE_LEN) return WG_ERR_SIZE;
  r = wg_cookie_check(&d->checker, &d->keys, msg, len, src, srclen, under_load, now);
  if (r != WG_OK) return r;
  e = wg_index_lookup(&d->index, le32_load(msg + WG_RESP_RECEIVER), WG_INDEX_HANDSHAKE);
  if (!e) return WG_ERR_UNKNOWN_INDEX;
  *peer = e->peer;
  return wg_peer_consume_response(e->peer, msg, now);
}

wg_result wg_device_create_cookie_reply(wg_device *d, uint32_t type, const uint8_t *msg, size_t len,
                                        const uint8_t *src, size_t srclen, uint64_t now,
                                        uint8_t out[64]) {
  return wg_cookie_create_reply(&d->checker, &d->keys, type, msg, len, src, srclen, now, out);
}

wg_result wg_device_consume_cookie_reply(wg_device *d, const uint8_t *msg, size_t len, uint64_t now,
                                         wg_peer **peer) {
  wg_index_entry *e;
  *peer = NULL;
  if (len != WG_MSG_COOKIE_LEN) return WG_ERR_SIZE;
  /* Our initiation's index names a handshake; our response's has become a keypair. */
  e = wg_index_lookup(&d->index, le32_load(msg + WG_COOKIE_RECEIVER),
                      WG_INDEX_HANDSHAKE | WG_INDEX_KEYPAIR);
  if (!e) return WG_ERR_UNKNOWN_INDEX;
  *peer = e->peer;
  return wg_cookie_consume_reply(&e->peer->cookie, msg, len, now);
}

bool wg_device_mark_received(wg_device *d, uint32_t index, uint64_t counter) {
  wg_index_entry *e = wg_index_lookup(&d->index, index, WG_INDEX_KEYPAIR);
  if (!e) return false;
  wg_keypair *kp = e->obj;
  return wg_replay_update(&kp->replay, counter, d->tunables.reject_after_messages);
}

wg_result wg_device_decrypt(wg_device *d, uint8_t *msg, size_t len, uint64_t now, wg_peer **peer,
                            size_t *pt_len) {
  wg_index_entry *e;
  wg_result r;
  *peer = NULL;
  *pt_len = 0;
  if (len < WG_MSG_TRANSPORT_MIN_LEN) return WG_ERR_SIZE;
  e = wg_index_lookup(&d->index, le32_load(msg + WG_DATA_RECEIVER), WG_INDEX_KEYPAIR);
  if (!e) return WG_ERR_UNKNOWN_INDEX;
  *peer = e->peer;
  r = wg_peer_decrypt(e->peer, e->obj, msg, len, now);
  if (r == WG_OK) *pt_len = len - WG_MSG_TRANSPORT_MIN_LEN;
  return r;
}
