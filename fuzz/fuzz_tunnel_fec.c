/* libFuzzer target for loss-repair parity (src/device/tunnel_fec.c). PARITY messages come from an
 * authenticated peer that may be hostile: the input is first taken as one, with packets after it
 * (never a crash, and anything "recovered" fits the buffer). Then the input shapes a real block:
 * packet sizes and bytes, which one is lost and the order the rest arrive in; what the receiver
 * rebuilds must be exactly the lost packet. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "device/tunnel_fec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)       \
  do {                    \
    if (!(cond)) abort(); \
  } while (0)

#define MTU 1420
#define K TUN_FEC_K

static void hostile(const uint8_t *data, size_t size) {
  tun_fec_rx rx = {0};
  tun_fec_recovered rec;
  uint64_t counter = size >= 12 ? 0 : 15;
  if (size >= 12)
    for (int i = 0; i < 8; i++) counter = counter << 8 | data[4 + i];
  counter += K - 1;
  int r = tun_fec_rx_parity(&rx, 1, counter, data, size, MTU, 1, &rec);
  CHECK(r >= -1 && r <= 1);
  if (r == 1) CHECK(rec.len <= MTU);
  uint8_t pkt[64] = {0x45, 0, 0, 64};
  for (unsigned i = 0; i < K - 1; i++)
    if (tun_fec_rx_add(&rx, 1, counter - (K - 1) + i, pkt, size % 3 ? 64 : -1, 1, &rec))
      CHECK(rec.len <= MTU - TUN_FEC_HEADER);
  tun_fec_rx_free(&rx);
}

static uint8_t take(const uint8_t **d, size_t *n) {
  if (!*n) return 0;
  (*n)--;
  return *(*d)++;
}

static void round_trip(const uint8_t *data, size_t size) {
  static uint8_t pt[K][MTU];
  size_t len[K];
  tun_fec_tx tx = {0};
  if (tun_fec_tx_init(&tx, MTU) != 0) return;
  uint64_t first = (uint64_t)take(&data, &size) * K;
  size_t parity_len = 0;
  static uint8_t parity[MTU];
  for (unsigned i = 0; i < K - 1; i++) {
    uint8_t kind = take(&data, &size);
    size_t n = 20 + ((size_t)kind << 3) % (MTU - TUN_FEC_HEADER - 19);
    if (kind % 7 == 0) n = 0; /* a keepalive */
    if (n) {
      memset(pt[i], 0, 20);
      pt[i][0] = 0x45;
      pt[i][2] = (uint8_t)(n >> 8), pt[i][3] = (uint8_t)n;
      for (size_t b = 20; b < n; b++) pt[i][b] = take(&data, &size);
    }
    len[i] = n;
    size_t out = tun_fec_tx_add(&tx, 9, first + i, pt[i], n, true);
    CHECK((out != 0) == (i == K - 2));
    if (out) memcpy(parity, tx.out, out), parity_len = out;
  }
  unsigned lost = take(&data, &size) % (K - 1);
  tun_fec_rx rx = {0};
  tun_fec_recovered rec;
  int got = 0;
  /* The K - 2 packets that arrive, with the parity put among them at parity_at. */
  unsigned events[K], n_ev = 0, parity_at = take(&data, &size) % (K - 1);
  for (unsigned i = 0; i < K - 1; i++)
    if (i != lost) events[n_ev++] = i;
  memmove(events + parity_at + 1, events + parity_at, (n_ev - parity_at) * sizeof events[0]);
  events[parity_at] = K - 1;
  n_ev++;
  for (unsigned e = 0; e < n_ev; e++) {
    unsigned i = events[e];
    int r = i == K - 1 ? tun_fec_rx_parity(&rx, 9, first + K - 1, parity, parity_len, MTU, 1, &rec)
                       : tun_fec_rx_add(&rx, 9, first + i, pt[i], (long)len[i], 1, &rec);
    CHECK(r == 0 || r == 1);
    if (r == 1) {
      got++;
      CHECK(rec.counter == first + lost && rec.len == len[lost] &&
            memcmp(rec.pkt, pt[lost], len[lost]) == 0);
    }
  }
  /* Collecting starts with the first parity: packets before it are not counted, so the block
   * recovers only when the parity came first. */
  CHECK(got <= 1);
  if (parity_at == 0) CHECK(got == 1);
  tun_fec_rx_free(&rx);
  tun_fec_tx_free(&tx);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  hostile(data, size);
  round_trip(data, size);
  return 0;
}
