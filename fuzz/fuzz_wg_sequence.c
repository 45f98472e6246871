/* Stateful libFuzzer target for the WireGuard receive path (src/wg/): the input is a sequence of
 * datagrams, each offered to one device of a world with a live session (fuzz/support/
 * wg_world.h), with the clock moving and genuine traffic between them, so that state built by one
 * datagram (handshake entries, keypairs, replay windows, timers, cookies) meets the next.
 *
 * Each record: flags (1 byte), a time step (1 byte, x 50 ms), a length (2 bytes, little endian,
 * at most MAX_DATAGRAM) and that many bytes. The flags' bits 0-4 are fuzz_wg_receive's (load,
 * patch the index, fix mac1, follow up, XOR onto a genuine message); bit 5: A sends B a genuine
 * transport packet first and both poll their timers; bit 6: the datagram goes to A instead of B;
 * bit 7: A starts a new handshake with B and B answers it (a rekey under way). At most 32
 * records. Must never crash, leak or trip a sanitizer. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "wg_world.h"

#define MAX_RECORDS 32

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void genuine_traffic(world *w) {
  uint8_t msg[64];
  wg_peer *got;
  size_t pt_len;
  memset(msg + WG_DATA_PAYLOAD, 0x5a, 32);
  if (wg_peer_encrypt(&w->a_b, 4, msg, 32, 32, w->now) == WG_OK)
    (void)wg_device_decrypt(&w->b, msg, sizeof msg, w->now, &got, &pt_len);
  (void)wg_peer_poll(&w->a_b, w->now);
  (void)wg_peer_poll(&w->b_a, w->now);
}

static void rekey(world *w) {
  static const uint8_t src[6] = {192, 0, 2, 1, 0xca, 0x6c};
  uint8_t init[WG_MSG_INIT_LEN], resp[WG_MSG_RESPONSE_LEN];
  wg_peer *got;
  if (wg_peer_create_initiation(&w->a_b, 1, w->now, w->wall, false, init) != WG_OK) return;
  if (wg_device_consume_initiation(&w->b, init, sizeof init, src, 6, false, w->now, &got) != WG_OK)
    return;
  if (wg_peer_create_response(got, 2, w->now, resp) == WG_OK)
    (void)wg_device_consume_response(&w->a, resp, sizeof resp, src, 6, false, w->now, &got);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static world w;
  if (!world_setup(&w)) __builtin_trap(); /* the fixture itself must always work */
  size_t at = 0;
  for (int n = 0; n < MAX_RECORDS && size - at >= 4; n++) {
    uint8_t flags = data[at], step = data[at + 1];
    size_t len = (size_t)(data[at + 2] | data[at + 3] << 8) % (MAX_DATAGRAM + 1);
    at += 4;
    if (len > size - at) len = size - at;
    w.now += (uint64_t)step * 50 * WG_NS_PER_SEC / 1000;
    w.wall += (uint64_t)step * 50 * WG_NS_PER_SEC / 1000;
    if (flags & 128) rekey(&w);
    if (flags & 32) genuine_traffic(&w);
    feed(&w, flags & 64 ? &w.a : &w.b, flags & 31, data + at, len);
    at += len;
  }
  w.now += 300 * WG_NS_PER_SEC;
  (void)wg_peer_poll(&w.a_b, w.now);
  (void)wg_peer_poll(&w.b_a, w.now);
  world_free(&w);
  return 0;
}
