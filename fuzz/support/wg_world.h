/* Two WireGuard devices with a confirmed session and pending initiations, and the ways the
 * receive-path fuzz targets feed them a datagram (fuzz_wg_receive, fuzz_wg_sequence). Fixed
 * keys and deterministic randomness, so that every crash reproduces. */
#ifndef AWGPROXY_FUZZ_WG_WORLD_H
#define AWGPROXY_FUZZ_WG_WORLD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/rng.h"
#include "wg/device.h"
#include "wg/messages.h"
#include "wg/peer.h"

#define MAX_DATAGRAM 2048

typedef struct {
  uint64_t s;
} fz_rng;
/* Deterministic randomness (xorshift64*) for an rng_source: ctx is an fz_rng. */
void fz_fill(void *ctx, uint8_t *buf, size_t len);

typedef struct {
  fz_rng ra_state, rb_state;
  rng_source ra, rb;
  wg_device a, b;
  wg_peer a_b, b_a;
  uint64_t now, wall;
  uint8_t genuine_init[WG_MSG_INIT_LEN]; /* A -> B, not consumed yet */
  uint8_t genuine_data[64];              /* A -> B transport, 32-byte payload */
} world;

/* A handshake A -> B confirmed by a keepalive, then a second initiation from B left pending. */
bool world_setup(world *w);
void world_free(world *w);
/* A receiver index that device d would recognise for a message of length len. */
void patch_index(const world *w, const wg_device *d, uint8_t *m, size_t len);
/* mac1 recomputed for the receiving device d (initiations and responses). */
void fix_mac1(const wg_device *d, uint8_t *m, size_t len);
/* After an accepted initiation, carry the exchange on to shake out state bugs. */
void follow_up(world *w, wg_peer *p);
/* The datagram to try: the input, or the input XORed onto a genuine message (flags bit 4). */
void make_datagram(const world *w, uint8_t flags, const uint8_t *data, size_t len, uint8_t *m);
/* Offers one datagram to every consume function of d (flags: bit 0 under load, bit 1 patch the
 * receiver index, bit 2 recompute mac1, bit 3 follow an accepted initiation up, bit 4 XOR onto
 * a genuine message). */
void feed(world *w, wg_device *d, uint8_t flags, const uint8_t *data, size_t len);

#endif
