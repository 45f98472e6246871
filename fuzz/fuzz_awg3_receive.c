/* libFuzzer target for the AmneziaWG 3.x receive path (src/awg/awg3_mask.c, awg3_pad.c): header
 * protection, classification with random trailers, and the message handed on to the WireGuard
 * device. Input layout:
 *   byte 0      flags: bit 0 header protection, bit 1 RandomTrailers, bit 2 content padding,
 *               bits 4-5 the kind of the round-trip message (init, response, cookie, transport)
 *   bytes 1-4   S1..S4 (+12 each with header protection, as validation demands)
 *   bytes 5-36  the header-protection key
 *   the rest    one received datagram (also the material of the round-trip message)
 * Checks, besides "no crash, no sanitizer report":
 *   - a classified message lies inside the datagram and its type is in the class's H range;
 *   - round trip: a message built by our send rules (prefix, type in H_k, mask, trailer) is
 *     classified as k with the original bytes back, unless an earlier class's test hits first
 *     (the order of spec R23), never as a later one;
 *   - the transport padding stays within its bounds (content padding, MTU cap, window). */
#include <sodium.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "awg/awg3_mask.h"
#include "awg/awg3_pad.h"
#include "wg/device.h"
#include "wg/messages.h"
#include "wg/peer.h"
#include "wg_world.h" /* fz_rng */

#define MAX_DATAGRAM 2048
#define HEADER 37

static const size_t kBase[4] = {WG_INIT_SIZE, WG_RESPONSE_SIZE, WG_COOKIE_SIZE, WG_TRANSPORT_MIN};
static const uint8_t SRC[6] = {192, 0, 2, 1, 0xca, 0x6c};

static void make_params(awg_params *p, const uint8_t *in) {
  awg_params_init(p);
  uint8_t flags = in[0];
  p->v3.header_protection = flags & 1;
  p->v3.random_trailers = flags & 2;
  if (flags & 4) p->v3.content_padding = (awg3_range){in[1] % 50, in[1] % 50 + in[2]};
  for (int k = 0; k < 4; k++) p->s[k] = in[1 + k] + (p->v3.header_protection ? 12 : 0);
  /* The H ranges of the tests/vectors/awg3-* captures, so that seeds from them classify. */
  for (uint32_t k = 0; k < 4; k++) p->h[k] = (awg_hrange){(k + 1) * 100000, (k + 1) * 100000 + 100};
  memcpy(p->v3.hp_key, in + 5, AWG3_HP_KEY_LEN);
}

/* The WireGuard device behind the classifier: consumes what was classified. */
static void hand_on(awg_msg_kind kind, const uint8_t *msg, size_t len, const rng_source *rng) {
  static const uint8_t priv[32] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
  static const uint8_t peer_priv[32] = {9, 8, 7, 6, 5, 4, 3, 2, 1};
  uint8_t buf[MAX_DATAGRAM], peer_pub[32];
  wg_device dev;
  wg_peer peer, *got;
  size_t pt_len;
  crypto_scalarmult_base(peer_pub, peer_priv);
  wg_device_init(&dev, priv, NULL, rng);
  if (wg_peer_init(&peer, &dev, peer_pub, NULL, 0) != WG_OK) abort();
  memcpy(buf, msg, len);
  uint64_t now = 1000 * WG_NS_PER_SEC;
  if (kind == AWG_MSG_INIT)
    (void)wg_device_consume_initiation(&dev, buf, len, SRC, 6, false, now, &got);
  if (kind == AWG_MSG_RESPONSE)
    (void)wg_device_consume_response(&dev, buf, len, SRC, 6, true, now, &got);
  if (kind == AWG_MSG_COOKIE) (void)wg_device_consume_cookie_reply(&dev, buf, len, now, &got);
  if (kind == AWG_MSG_TRANSPORT) (void)wg_device_decrypt(&dev, buf, len, now, &got, &pt_len);
  wg_peer_remove(&peer);
  wg_device_wipe(&dev);
}

static void receive(const awg_params *p, const uint8_t *data, size_t len, const rng_source *rng) {
  static uint8_t d[MAX_DATAGRAM];
  const uint8_t *msg;
  size_t msg_len;
  int bare;
  memcpy(d, data, len);
  awg_msg_kind kind = awg3_classify(p, d, len, &msg, &msg_len, &bare);
  if (kind == AWG_MSG_UNKNOWN) {
    if (msg || msg_len) __builtin_trap();
    return;
  }
  if (msg < d || msg_len > len || (size_t)(msg - d) > len - msg_len) __builtin_trap();
  if (!awg_hrange_contains(p->h[kind - 1], le32_load(msg))) __builtin_trap();
  hand_on(kind, msg, msg_len, rng);
}

/* Builds a datagram of kind k from the input by our send rules and classifies it back. */
static void round_trip(const awg_params *p, int k, const uint8_t *data, size_t len,
                       const rng_source *rng) {
  static uint8_t d[MAX_DATAGRAM], orig[MAX_DATAGRAM];
  size_t s = p->s[k], base = kBase[k];
  size_t body = k == 3 ? (len > base ? len : base) : base;
  if (s + body + 600 > MAX_DATAGRAM) return;
  memset(d, 0, sizeof d);
  memcpy(d, data, len < s + body ? len : s + body); /* prefix and message from the input */
  le32_store(d + s, rng_range(rng, p->h[k].start, p->h[k].end));
  memcpy(orig, d + s, body);
  size_t masked = k == 3 ? WG_TRANSPORT_HEADER : base;
  awg3_mask(&p->v3, d, s, masked);
  size_t total = s + body;
  if (k < 3) total += awg3_trailer_len(&p->v3, total, 600 + (uint32_t)total, 600, rng);
  const uint8_t *msg;
  size_t msg_len;
  awg_msg_kind got = awg3_classify(p, d, total, &msg, &msg_len, NULL);
  if (got == (awg_msg_kind)(k + 1)) {
    if (msg != d + s || memcmp(msg, orig, k == 3 ? WG_TRANSPORT_HEADER : base) != 0)
      __builtin_trap(); /* unmasking did not give the message back */
  } else if (got > (awg_msg_kind)(k + 1) || got == AWG_MSG_UNKNOWN) {
    /* Only an earlier class may win; unknown happens only for a transport below S4 + 32 that
     * the AWG 2.0 rules classify differently, which our size choice avoids. */
    if (p->v3.header_protection || p->v3.random_trailers) __builtin_trap();
  }
}

static void padding_bounds(const awg_params *p, const uint8_t *in, size_t pt_len,
                           const rng_source *rng) {
  uint32_t mtu = 576 + in[3] * 4u, window = 500 + in[4] * 8u;
  size_t padded;
  if (!awg3_transport_padded_len(p, pt_len, mtu, window, rng, &padded)) return;
  if (padded < pt_len) __builtin_trap();
  if (awg3_range_is_set(p->v3.content_padding)) {
    if (pt_len <= mtu && padded > mtu) __builtin_trap();
    if (padded - pt_len > p->v3.content_padding.hi + 1) __builtin_trap();
  } else if (p->s[3] + 32 + pt_len < window && p->s[3] + 32 + padded >= window) {
    __builtin_trap();
  }
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  if (sodium_init() < 0) abort();
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < HEADER || size - HEADER > MAX_DATAGRAM) return 0;
  fz_rng state = {0x9e3779b97f4a7c15u ^ size};
  rng_source rng = {fz_fill, &state};
  awg_params p;
  make_params(&p, data);
  const uint8_t *dgram = data + HEADER;
  size_t len = size - HEADER;
  receive(&p, dgram, len, &rng);
  round_trip(&p, (data[0] >> 4) & 3, dgram, len, &rng);
  padding_bounds(&p, data, len, &rng);
  awg_params_free(&p);
  return 0;
}
