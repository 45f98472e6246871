/* The two-device world of the WireGuard receive-path fuzz targets (wg_world.h). */
#include "wg_world.h"

#include <string.h>

#include "util/bytes.h"
#include "wg/cookie.h"

/* Deterministic randomness (xorshift64*), so that a crash reproduces. */
void fz_fill(void *ctx, uint8_t *buf, size_t len) {
  fz_rng *r = ctx;
  for (size_t i = 0; i < len; i++) {
    r->s ^= r->s >> 12;
    r->s ^= r->s << 25;
    r->s ^= r->s >> 27;
    buf[i] = (uint8_t)((r->s * UINT64_C(2685821657736338717)) >> 56);
  }
}

static const uint8_t SRC[6] = {192, 0, 2, 1, 0xca, 0x6c};

static void fixed_key(uint8_t out[32], uint8_t seed) {
  for (int i = 0; i < 32; i++) out[i] = (uint8_t)(seed * 29 + i * 3 + 5);
}

/* A handshake A -> B confirmed by a keepalive, then a second initiation from B left pending. */
bool world_setup(world *w) {
  uint8_t ka[32], kb[32], init[WG_MSG_INIT_LEN], resp[WG_MSG_RESPONSE_LEN], ka_msg[64];
  wg_peer *got;
  size_t pt_len;
  memset(w, 0, sizeof *w);
  w->ra_state.s = 0x1234567;
  w->rb_state.s = 0x7654321;
  w->ra = (rng_source){fz_fill, &w->ra_state};
  w->rb = (rng_source){fz_fill, &w->rb_state};
  fixed_key(ka, 1);
  fixed_key(kb, 2);
  wg_device_init(&w->a, ka, NULL, &w->ra);
  wg_device_init(&w->b, kb, NULL, &w->rb);
  if (wg_peer_init(&w->a_b, &w->a, w->b.keys.pub, NULL, 0) != WG_OK) return false;
  if (wg_peer_init(&w->b_a, &w->b, w->a.keys.pub, NULL, 0) != WG_OK) return false;
  w->now = 1000 * WG_NS_PER_SEC;
  w->wall = UINT64_C(1700000000) * WG_NS_PER_SEC;
  if (wg_peer_create_initiation(&w->a_b, 1, w->now, w->wall, false, init) != WG_OK) return false;
  if (wg_device_consume_initiation(&w->b, init, sizeof init, SRC, 6, false, w->now, &got) != WG_OK)
    return false;
  if (wg_peer_create_response(&w->b_a, 2, w->now, resp) != WG_OK) return false;
  if (wg_device_consume_response(&w->a, resp, sizeof resp, SRC, 6, false, w->now, &got) != WG_OK)
    return false;
  if (wg_peer_encrypt(&w->a_b, 4, ka_msg, 0, 0, w->now) != WG_OK) return false;
  if (wg_device_decrypt(&w->b, ka_msg, 32, w->now, &got, &pt_len) != WG_OK) return false;
  memset(w->genuine_data + WG_DATA_PAYLOAD, 0x45, 32);
  if (wg_peer_encrypt(&w->a_b, 4, w->genuine_data, 32, 32, w->now) != WG_OK) return false;
  w->now += 6 * WG_NS_PER_SEC;
  w->wall += 6 * WG_NS_PER_SEC;
  if (wg_peer_create_initiation(&w->a_b, 1, w->now, w->wall, false, w->genuine_init) != WG_OK)
    return false;
  return wg_peer_create_initiation(&w->b_a, 1, w->now, w->wall, false, init) == WG_OK;
}

void world_free(world *w) {
  wg_peer_remove(&w->a_b);
  wg_peer_remove(&w->b_a);
  wg_device_wipe(&w->a);
  wg_device_wipe(&w->b);
}

/* A receiver index that device d would recognise for a message of length len. */
void patch_index(const world *w, const wg_device *d, uint8_t *m, size_t len) {
  const wg_peer *p = d == &w->a ? &w->a_b : &w->b_a;
  const wg_keypair *kp = p->current ? p->current : p->next;
  uint32_t hs = p->hs_entry.index;
  if (len == WG_MSG_RESPONSE_LEN) le32_store(m + WG_RESP_RECEIVER, hs);
  if (len == WG_MSG_COOKIE_LEN) le32_store(m + WG_COOKIE_RECEIVER, hs);
  if (len >= WG_MSG_TRANSPORT_MIN_LEN && len != WG_MSG_RESPONSE_LEN && kp)
    le32_store(m + WG_DATA_RECEIVER, kp->entry.index);
}

void fix_mac1(const wg_device *d, uint8_t *m, size_t len) {
  wg_cookie_maker maker;
  if (len != WG_MSG_INIT_LEN && len != WG_MSG_RESPONSE_LEN) return;
  wg_cookie_maker_init(&maker, d->keys.pub);
  wg_cookie_add_macs(&maker, m, len, 0);
}

/* After an accepted initiation, carry the exchange on to shake out state bugs. */
void follow_up(world *w, wg_peer *p) {
  uint8_t resp[WG_MSG_RESPONSE_LEN], msg[64];
  if (wg_peer_create_response(p, 2, w->now, resp) != WG_OK) return;
  (void)wg_peer_poll(p, w->now);
  memset(msg + WG_DATA_PAYLOAD, 0x45, 16);
  (void)wg_peer_encrypt(p, 4, msg, 16, 16, w->now);
  (void)wg_peer_poll(p, w->now + 600 * WG_NS_PER_SEC);
}

/* The datagram to try: the input, or the input XORed onto a genuine message (bit 4). */
void make_datagram(const world *w, uint8_t flags, const uint8_t *data, size_t len, uint8_t *m) {
  const uint8_t *base = NULL;
  memcpy(m, data, len);
  if (!(flags & 16)) return;
  if (len == sizeof w->genuine_init) base = w->genuine_init;
  if (len == sizeof w->genuine_data) base = w->genuine_data;
  for (size_t i = 0; base && i < len; i++) m[i] ^= base[i];
}

void feed(world *w, wg_device *d, uint8_t flags, const uint8_t *data, size_t len) {
  static uint8_t m[MAX_DATAGRAM];
  bool load = flags & 1;
  wg_peer *got;
  size_t pt_len;
  uint8_t reply[WG_MSG_COOKIE_LEN];
  make_datagram(w, flags, data, len, m);
  if (flags & 2) patch_index(w, d, m, len);
  if (flags & 4) fix_mac1(d, m, len);
  wg_result r = wg_device_consume_initiation(d, m, len, SRC, 6, load, w->now, &got);
  if (r == WG_ERR_NEED_COOKIE)
    (void)wg_device_create_cookie_reply(d, 3, m, len, SRC, 6, w->now, reply);
  if (r == WG_OK && (flags & 8)) follow_up(w, got);
  (void)wg_device_consume_response(d, m, len, SRC, 6, load, w->now, &got);
  (void)wg_device_consume_cookie_reply(d, m, len, w->now, &got);
  make_datagram(w, flags, data, len, m); /* decryption works in place */
  if (flags & 2) patch_index(w, d, m, len);
  (void)wg_device_decrypt(d, m, len, w->now, &got, &pt_len);
  (void)wg_result_str(r);
}
