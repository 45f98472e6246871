/* Two benchmarks of the transport data path, in process, no I/O.
 *
 * bench_transport [seconds] [packet_size]      (seconds of CPU time, as every figure here)
 *   The whole path, both halves: pad to 16, encrypt from the packet into the datagram with the
 *   send batch's room around it (ChaCha20-Poly1305 through the keypair's AEAD context), AWG
 *   prefix padding and header draw, then classify, look up the keypair, check the replay window
 *   and decrypt. One line of results.
 *
 * bench_transport aead [seconds] [size...]
 *   ChaCha20-Poly1305 alone, seal and open of one packet at a time with a per-packet nonce, as
 *   the transport uses it: libsodium (raw key per call), OpenSSL 3 EVP (a context keyed once, the
 *   classic EVP_CIPHER_CTX_ctrl tag API), nettle (a context keyed once), and awgproxy's own
 *   wg_aead_ctx (src/wg/aead.c, the backend this build uses): its seal from a separate buffer
 *   through the scratch ("awg/openssl") and with the room around the output ("+room", the send
 *   path's). seconds per measurement (default 0.5), sizes default 64 512 1420. One line per
 *   backend, operation and size. */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifdef BENCH_HAVE_OPENSSL
#include <openssl/evp.h>
#endif
#ifdef BENCH_HAVE_NETTLE
#include <nettle/chacha-poly1305.h>
#endif

#include "awg/obfs.h"
#include "wg/aead.h"
#include "wg/device.h"
#include "wg/messages.h"
#include "wg/peer.h"

/* CPU time of this process, not wall time: the machine is shared, and `openssl speed`, the anchor
 * bench/transport.sh prints next to these figures, divides by CPU (user) time too. */
static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, wg_result r) {
  fprintf(stderr, "bench_transport: %s: %s\n", what, wg_result_str(r));
  exit(1);
}

static int transport_path(double seconds, size_t size) {
  if (size < 20 || size > 65000) return 1;
  uint8_t ka[32], kb[32], pa[32], pb[32];
  randombytes_buf(ka, 32);
  randombytes_buf(kb, 32);
  crypto_scalarmult_curve25519_base(pa, ka);
  crypto_scalarmult_curve25519_base(pb, kb);
  wg_device a, b;
  wg_device_init(&a, ka, NULL, rng_fast());
  wg_device_init(&b, kb, NULL, rng_fast());
  static wg_peer ab, ba;
  if (wg_peer_init(&ab, &a, pb, NULL, 0) || wg_peer_init(&ba, &b, pa, NULL, 0)) return 1;
  /* Handshake. */
  uint8_t init[148], resp[92], src[6] = {127, 0, 0, 1, 0, 1};
  uint64_t t = 1000000000;
  wg_peer *got;
  wg_result r;
  if ((r = wg_peer_create_initiation(&ab, 1, t, 1700000000ull * 1000000000ull, false, init)))
    die("init", r);
  if ((r = wg_device_consume_initiation(&b, init, 148, src, 6, false, t, &got)))
    die("consume init", r);
  if ((r = wg_peer_create_response(&ba, 2, t, resp))) die("response", r);
  if ((r = wg_device_consume_response(&a, resp, 92, src, 6, false, t, &got)))
    die("consume response", r);

  /* Obfuscated parameters, as in the demo configuration. */
  awg_params p;
  awg_params_init(&p);
  p.s[3] = 23;
  p.h[3] = (awg_hrange){400000, 400100};
  p.h[0] = (awg_hrange){100000, 100100};
  p.h[1] = (awg_hrange){200000, 200100};
  p.h[2] = (awg_hrange){300000, 300100};
  p.s[0] = 15, p.s[1] = 18, p.s[2] = 20;
  /* The datagram's buffer has the room every carrier gives (dgram_carrier.h). */
  uint8_t *mem = malloc(WG_AEAD_ROOM + size + 256 + WG_AEAD_ROOM), *buf = mem + WG_AEAD_ROOM;
  uint8_t *pkt = malloc(size);
  randombytes_buf(pkt, size);
  pkt[0] = 0x45;
  size_t s4 = p.s[3];
  uint64_t packets = 0;
  double start = now_s(), end = start + seconds, now = start;
  while (now < end) {
    for (int i = 0; i < 256; i++) {
      size_t padded = wg_padded_len(size, 1420);
      padded += awg_transport_extra_padding(&p, padded);
      uint32_t type = awg_draw_type(&p, AWG_MSG_TRANSPORT, rng_fast());
      /* From the packet straight into the datagram, as the tunnel's send path does. */
      if ((r = wg_peer_encrypt_from(&ab, type, buf + s4, pkt, size, padded, true, t)))
        die("encrypt", r);
      awg_fill_padding(&p, AWG_MSG_TRANSPORT, rng_fast(), buf);
      size_t dlen = s4 + wg_transport_len(padded);
      const uint8_t *msg;
      size_t mlen, pt;
      int bare;
      if (awg_classify(&p, buf, dlen, &msg, &mlen, &bare) != AWG_MSG_TRANSPORT)
        die("classify", WG_OK);
      if ((r = wg_device_decrypt(&b, (uint8_t *)msg, mlen, t, &got, &pt))) die("decrypt", r);
      packets++;
    }
    now = now_s();
  }
  double secs = now - start;
  double mbps = (double)packets * (double)size / secs / 1e6;
  printf(
      "transport_path packet=%zu packets=%llu cpu-seconds=%.2f MB/s=%.1f ns/packet=%.0f "
      "aead=%s (encrypt+decrypt, each byte sealed and opened once)\n",
      size, (unsigned long long)packets, secs, mbps, secs * 1e9 / (double)packets,
      wg_aead_backend());
  free(mem);
  free(pkt);
  wg_peer_remove(&ab);
  wg_peer_remove(&ba);
  wg_device_wipe(&a);
  wg_device_wipe(&b);
  return 0;
}

/* ---- AEAD backends side by side ---- */

#define NONCE_LEN 12
#define TAG_LEN 16

/* One backend: a keyed state (or the raw key), seal in place, open out of place. */
typedef struct {
  const char *name;
  void *(*key)(const uint8_t key[32]);
  void (*seal)(void *st, const uint8_t nonce[NONCE_LEN], uint8_t *buf, size_t len);
  int (*open)(void *st, const uint8_t nonce[NONCE_LEN], uint8_t *out, const uint8_t *ct,
              size_t len);
  void (*unkey)(void *st);
} aead_backend;

static void *sodium_key(const uint8_t key[32]) {
  uint8_t *k = malloc(32);
  memcpy(k, key, 32);
  return k;
}
static void sodium_seal(void *st, const uint8_t nonce[NONCE_LEN], uint8_t *buf, size_t len) {
  crypto_aead_chacha20poly1305_ietf_encrypt(buf, NULL, buf, len, NULL, 0, NULL, nonce, st);
}
static int sodium_open(void *st, const uint8_t nonce[NONCE_LEN], uint8_t *out, const uint8_t *ct,
                       size_t len) {
  return crypto_aead_chacha20poly1305_ietf_decrypt(out, NULL, NULL, ct, len + TAG_LEN, NULL, 0,
                                                   nonce, st) == 0;
}

#ifdef BENCH_HAVE_OPENSSL
static void *ossl_key(const uint8_t key[32]) {
  EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
  EVP_EncryptInit_ex(c, EVP_chacha20_poly1305(), NULL, key, NULL);
  return c;
}
static void ossl_seal(void *st, const uint8_t nonce[NONCE_LEN], uint8_t *buf, size_t len) {
  int n, f;
  EVP_EncryptInit_ex(st, NULL, NULL, NULL, nonce);
  EVP_EncryptUpdate(st, buf, &n, buf, (int)len);
  EVP_EncryptFinal_ex(st, buf + n, &f);
  EVP_CIPHER_CTX_ctrl(st, EVP_CTRL_AEAD_GET_TAG, TAG_LEN, buf + len);
}
static int ossl_open(void *st, const uint8_t nonce[NONCE_LEN], uint8_t *out, const uint8_t *ct,
                     size_t len) {
  int n, f;
  EVP_DecryptInit_ex(st, NULL, NULL, NULL, nonce);
  EVP_DecryptUpdate(st, out, &n, ct, (int)len);
  EVP_CIPHER_CTX_ctrl(st, EVP_CTRL_AEAD_SET_TAG, TAG_LEN, (void *)(ct + len));
  return EVP_DecryptFinal_ex(st, out + n, &f) == 1;
}
static void ossl_unkey(void *st) { EVP_CIPHER_CTX_free(st); }
#endif

#ifdef BENCH_HAVE_NETTLE
static void *nettle_key(const uint8_t key[32]) {
  struct chacha_poly1305_ctx *c = malloc(sizeof *c);
  chacha_poly1305_set_key(c, key);
  return c;
}
static void nettle_seal(void *st, const uint8_t nonce[NONCE_LEN], uint8_t *buf, size_t len) {
  chacha_poly1305_set_nonce(st, nonce);
  chacha_poly1305_encrypt(st, len, buf, buf);
  chacha_poly1305_digest(st, TAG_LEN, buf + len);
}
static int nettle_open(void *st, const uint8_t nonce[NONCE_LEN], uint8_t *out, const uint8_t *ct,
                       size_t len) {
  uint8_t tag[TAG_LEN];
  chacha_poly1305_set_nonce(st, nonce);
  chacha_poly1305_decrypt(st, len, out, ct);
  chacha_poly1305_digest(st, TAG_LEN, tag);
  return sodium_memcmp(tag, ct + len, TAG_LEN) == 0;
}
#endif

/* awgproxy's wg_aead_ctx: the nonce comes from the counter inside, as in the transport. */
static uint64_t nonce_counter(const uint8_t nonce[NONCE_LEN]) {
  uint64_t c = 0;
  for (int i = 0; i < 8; i++) c |= (uint64_t)nonce[4 + i] << (8 * i);
  return c;
}
static void *awg_key(const uint8_t key[32]) { return wg_aead_ctx_new(key); }
/* awgproxy's two seals read the packet from elsewhere, as the send path does (the packet lies in
 * lwIP's or QUIC's buffer, the datagram goes to the send batch). */
static uint8_t awg_packet[65536];
static void awg_seal(void *st, const uint8_t nonce[NONCE_LEN], uint8_t *buf, size_t len) {
  wg_aead_ctx_seal_padded(st, nonce_counter(nonce), buf, awg_packet, len, len);
}
/* The send path's seal: buf has WG_AEAD_ROOM of room on either side (measure allocates it). */
static void awg_seal_room(void *st, const uint8_t nonce[NONCE_LEN], uint8_t *buf, size_t len) {
  wg_aead_ctx_seal_padded_room(st, nonce_counter(nonce), buf, awg_packet, len, len);
}
static int awg_open(void *st, const uint8_t nonce[NONCE_LEN], uint8_t *out, const uint8_t *ct,
                    size_t len) {
  return wg_aead_ctx_open(st, nonce_counter(nonce), out, ct, len + TAG_LEN, NULL, 0);
}
static void awg_unkey(void *st) { wg_aead_ctx_free(st); }

static void set_nonce(uint8_t nonce[NONCE_LEN], uint64_t counter) {
  memset(nonce, 0, 4);
  for (int i = 0; i < 8; i++) nonce[4 + i] = (uint8_t)(counter >> (8 * i));
}

static void report(const char *backend, const char *op, size_t size, uint64_t packets,
                   double secs) {
  printf("aead %-14s %-4s packet=%-5zu MB/s=%-7.1f ns/packet=%.0f\n", backend, op, size,
         (double)packets * (double)size / secs / 1e6, secs * 1e9 / (double)packets);
}

/* Seals in place with a fresh counter each packet, then opens one sealed packet again and again
 * (out of place, so that the ciphertext stays intact); every open must verify. */
static int measure(const aead_backend *b, double seconds, size_t size) {
  uint8_t key[32], nonce[NONCE_LEN], *mem = malloc(WG_AEAD_ROOM + size + TAG_LEN + WG_AEAD_ROOM);
  uint8_t *buf = mem + WG_AEAD_ROOM, *out = malloc(size + 1);
  uint64_t packets = 0, bad = 0;
  randombytes_buf(key, sizeof key);
  randombytes_buf(buf, size);
  randombytes_buf(awg_packet, size);
  void *st = b->key(key);
  double start = now_s(), now = start;
  while (now < start + seconds) {
    for (int i = 0; i < 64; i++, packets++) {
      set_nonce(nonce, packets);
      b->seal(st, nonce, buf, size);
    }
    now = now_s();
  }
  report(b->name, "seal", size, packets, now - start);
  set_nonce(nonce, 7);
  b->seal(st, nonce, buf, size);
  packets = 0;
  start = now = now_s();
  while (now < start + seconds) {
    for (int i = 0; i < 64; i++, packets++) bad += !b->open(st, nonce, out, buf, size);
    now = now_s();
  }
  report(b->name, "open", size, packets, now - start);
  b->unkey(st);
  free(mem);
  free(out);
  if (bad)
    fprintf(stderr, "bench_transport: %s: %llu opens failed\n", b->name, (unsigned long long)bad);
  return bad ? 1 : 0;
}

static int aead_compare(double seconds, const size_t *sizes, int nsizes) {
  static char awg_name[32], awg_room_name[32];
  snprintf(awg_name, sizeof awg_name, "awg/%s", wg_aead_backend());
  snprintf(awg_room_name, sizeof awg_room_name, "awg/%s+room", wg_aead_backend());
  const aead_backend backends[] = {
      {"libsodium", sodium_key, sodium_seal, sodium_open, free},
#ifdef BENCH_HAVE_OPENSSL
      {"openssl-evp", ossl_key, ossl_seal, ossl_open, ossl_unkey},
#endif
#ifdef BENCH_HAVE_NETTLE
      {"nettle", nettle_key, nettle_seal, nettle_open, free},
#endif
      {awg_name, awg_key, awg_seal, awg_open, awg_unkey},
      {awg_room_name, awg_key, awg_seal_room, awg_open, awg_unkey},
  };
  int rc = 0;
  for (int s = 0; s < nsizes; s++)
    for (size_t i = 0; i < sizeof backends / sizeof backends[0]; i++)
      rc |= measure(&backends[i], seconds, sizes[s]);
  return rc;
}

int main(int argc, char **argv) {
  if (sodium_init() < 0) return 1;
  if (argc > 1 && strcmp(argv[1], "aead") == 0) {
    size_t sizes[16] = {64, 512, 1420};
    int nsizes = 3;
    double seconds = argc > 2 ? atof(argv[2]) : 0.5;
    if (argc > 3) {
      nsizes = 0;
      for (int i = 3; i < argc && nsizes < 16; i++) {
        long v = atol(argv[i]);
        if (v < 1 || v > 65535) return 1;
        sizes[nsizes++] = (size_t)v;
      }
    }
    return aead_compare(seconds, sizes, nsizes);
  }
  return transport_path(argc > 1 ? atof(argv[1]) : 3.0, argc > 2 ? (size_t)atoi(argv[2]) : 1420);
}
