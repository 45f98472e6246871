/* Test fixture for src/wg/: two in-process WireGuard devices A and B with fixed keys, each
 * configured with the other as peer, deterministic randomness and injected clocks, plus helpers
 * to run a handshake and move transport packets between them. Helpers fail the running cmocka
 * test on unexpected results. */
#ifndef AWGPROXY_TEST_WG_PAIR_H
#define AWGPROXY_TEST_WG_PAIR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "det_rng.h"
#include "wg/device.h"
#include "wg/peer.h"

#define WG_PAIR_TYPE_INIT 123456u
#define WG_PAIR_TYPE_RESP 654321u
#define WG_PAIR_TYPE_COOKIE 0xdeadbeefu
#define WG_PAIR_TYPE_DATA 400042u

typedef struct {
  det_rng rng_a, rng_b;
  wg_device a, b;
  wg_peer a_b;                /* A's peer object for B */
  wg_peer b_a;                /* B's peer object for A */
  uint64_t now;               /* monotonic ns, shared */
  uint64_t wall;              /* Unix ns for timestamps */
  uint8_t src_a[6], src_b[6]; /* the address bytes each side appears from */
} wg_pair;

/* psk NULL = none; tun NULL = defaults. */
void wg_pair_init(wg_pair *p, const uint8_t *psk, const wg_tunables *tun);
void wg_pair_free(wg_pair *p);
/* A fixed private key for seed (clamped by the device). */
void wg_pair_key(uint8_t out[32], uint8_t seed);

/* Initiator's peer object, its device, and the responder's view. */
typedef struct {
  wg_peer *ip, *rp;
  wg_device *idev, *rdev;
  const uint8_t *isrc, *rsrc;
} wg_pair_dir;
wg_pair_dir wg_pair_direction(wg_pair *p, bool a_initiates);

/* Full handshake (initiation, response, keepalive confirming the responder's session); asserts
 * every step succeeds. */
void wg_pair_handshake(wg_pair *p, bool a_initiates);

/* Encrypts pt with from's current session into buf (type given) and returns the message length,
 * asserting success. */
size_t wg_pair_seal(wg_peer *from, uint32_t type, const void *pt, size_t len, uint64_t now,
                    uint8_t *buf, size_t cap);
/* seal + wg_device_decrypt on to; returns the decrypt result; on WG_OK checks the plaintext and
 * that the receiving peer is expected. */
wg_result wg_pair_transfer(wg_peer *from, wg_device *to, wg_peer *expected, uint32_t type,
                           const void *pt, size_t len, uint64_t now);

#endif
