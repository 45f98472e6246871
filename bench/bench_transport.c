/* In-process throughput of the transport data path, both halves, for 1420-byte inner packets:
 * pad to 16, encrypt (ChaCha20-Poly1305), AWG prefix padding and header draw, then classify,
 * look up the keypair, check the replay window and decrypt. No I/O.
 * Usage: bench_transport [seconds] [packet_size]  -> one line of results. */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "awg/obfs.h"
#include "wg/device.h"
#include "wg/messages.h"
#include "wg/peer.h"

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, wg_result r) {
  fprintf(stderr, "bench_transport: %s: %s\n", what, wg_result_str(r));
  exit(1);
}

int main(int argc, char **argv) {
  double seconds = argc > 1 ? atof(argv[1]) : 3.0;
  size_t size = argc > 2 ? (size_t)atoi(argv[2]) : 1420;
  if (sodium_init() < 0 || size < 20 || size > 65000) return 1;
  uint8_t ka[32], kb[32], pa[32], pb[32];
  randombytes_buf(ka, 32);
  randombytes_buf(kb, 32);
  crypto_scalarmult_curve25519_base(pa, ka);
  crypto_scalarmult_curve25519_base(pb, kb);
  wg_device a, b;
  wg_device_init(&a, ka, NULL, awg_rng_fast());
  wg_device_init(&b, kb, NULL, awg_rng_fast());
  static wg_peer ab, ba;
  if (wg_peer_init(&ab, &a, pb, NULL, 0) || wg_peer_init(&ba, &b, pa, NULL, 0)) return 1;
  /* Handshake. */
  uint8_t init[148], resp[92], src[6] = {127, 0, 0, 1, 0, 1};
  uint64_t t = 1000000000;
  wg_peer *got;
  wg_result r;
  if ((r = wg_peer_create_initiation(&ab, 1, t, 1700000000ull * 1000000000ull, false, init))) die("init", r);
  if ((r = wg_device_consume_initiation(&b, init, 148, src, 6, false, t, &got))) die("consume init", r);
  if ((r = wg_peer_create_response(&ba, 2, t, resp))) die("response", r);
  if ((r = wg_device_consume_response(&a, resp, 92, src, 6, false, t, &got))) die("consume response", r);

  /* Obfuscated parameters, as in the demo configuration. */
  awg_params p;
  awg_params_init(&p);
  p.s[3] = 23;
  p.h[3] = (awg_hrange){400000, 400100};
  p.h[0] = (awg_hrange){100000, 100100};
  p.h[1] = (awg_hrange){200000, 200100};
  p.h[2] = (awg_hrange){300000, 300100};
  p.s[0] = 15, p.s[1] = 18, p.s[2] = 20;
  uint8_t *buf = malloc(size + 256), *pkt = malloc(size);
  randombytes_buf(pkt, size);
  pkt[0] = 0x45;
  size_t s4 = p.s[3];
  uint64_t packets = 0;
  double start = now_s(), end = start + seconds, now = start;
  while (now < end) {
    for (int i = 0; i < 256; i++) {
      memcpy(buf + s4 + WG_DATA_PAYLOAD, pkt, size);
      size_t padded = wg_padded_len(size, 1420);
      padded += awg_transport_extra_padding(&p, padded);
      uint32_t type = awg_draw_type(&p, AWG_MSG_TRANSPORT, awg_rng_fast());
      if ((r = wg_peer_encrypt(&ab, type, buf + s4, size, padded, t))) die("encrypt", r);
      awg_fill_padding(&p, AWG_MSG_TRANSPORT, awg_rng_fast(), buf);
      size_t dlen = s4 + wg_transport_len(padded);
      const uint8_t *msg;
      size_t mlen, pt;
      int bare;
      if (awg_classify(&p, buf, dlen, &msg, &mlen, &bare) != AWG_MSG_TRANSPORT) die("classify", WG_OK);
      if ((r = wg_device_decrypt(&b, (uint8_t *)msg, mlen, t, &got, &pt))) die("decrypt", r);
      packets++;
    }
    now = now_s();
  }
  double secs = now - start;
  double mbps = (double)packets * (double)size / secs / 1e6;
  printf("transport_path packet=%zu packets=%llu seconds=%.2f MB/s=%.1f (encrypt+decrypt, each byte "
         "sealed and opened once)\n",
         size, (unsigned long long)packets, secs, mbps);
  return 0;
}
