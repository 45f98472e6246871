/* WireGuard's DoS mitigation (whitepaper §5.4.7): mac1/mac2 on handshake messages and cookie
 * replies. Two halves:
 *  - the checker (one per interface) verifies mac1/mac2 of handshake messages sent to us and, when
 *    we are under load, seals cookie replies: cookie = MAC(secret, source address bytes), the
 *    secret being regenerated every 120 s;
 *  - the maker (one per peer) writes mac1/mac2 on the handshake messages we send to that peer and
 *    stores the cookie from the peer's cookie replies (valid 120 s).
 * MACs cover the message bytes as given, including the (AWG) type field; the caller passes the
 * unpadded 148/92-byte message. Time is injected (monotonic ns). */
#ifndef AWGPROXY_WG_COOKIE_H
#define AWGPROXY_WG_COOKIE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/rng.h"
#include "wg/device_keys.h"
#include "wg/result.h"
#include "wg/tunables.h"

#define WG_COOKIE_SECRET_MAX_AGE (120 * WG_NS_PER_SEC)
#define WG_COOKIE_LIFETIME (120 * WG_NS_PER_SEC)
#define WG_UNDER_LOAD_STICKY (1 * WG_NS_PER_SEC)

typedef struct {
  uint8_t secret[WG_KEY_LEN];
  uint64_t secret_birth;
  bool has_secret;
  const rng_source *rng;
  /* Shared secrets (several worker processes of one server): the secret of each 120 s epoch of
   * the monotonic clock is MAC(seed, epoch), the same in every process holding the seed, so a
   * cookie one worker handed out is honoured by all. */
  bool seeded;
  uint8_t seed[WG_KEY_LEN];
  uint64_t epoch;
} wg_cookie_checker;

void wg_cookie_checker_init(wg_cookie_checker *c, const rng_source *rng);
/* Derives the secrets from seed from now on, instead of drawing them at random. */
void wg_cookie_checker_set_seed(wg_cookie_checker *c, const uint8_t seed[WG_KEY_LEN]);
void wg_cookie_checker_wipe(wg_cookie_checker *c);

/* Verifies the MACs of an initiation (148 bytes) or response (92 bytes) addressed to keys.
 * WG_ERR_MAC1 when mac1 is wrong; when under_load, WG_ERR_NEED_COOKIE unless mac2 is a valid MAC
 * with the cookie for src; otherwise WG_OK. src is the sender's address as opaque bytes (any
 * stable encoding of IP and port chosen by the caller). */
wg_result wg_cookie_check(wg_cookie_checker *c, const wg_device_keys *keys, const uint8_t *msg,
                          size_t len, const uint8_t *src, size_t srclen, bool under_load,
                          uint64_t now);

/* Builds the 64-byte cookie reply to the handshake message msg (148 or 92 bytes) received from
 * src: type field = type, receiver = msg's sender index, fresh random nonce. */
wg_result wg_cookie_create_reply(wg_cookie_checker *c, const wg_device_keys *keys, uint32_t type,
                                 const uint8_t *msg, size_t len, const uint8_t *src, size_t srclen,
                                 uint64_t now, uint8_t out[64]);

typedef struct {
  uint8_t mac1_key[WG_KEY_LEN];   /* HASH("mac1----" || peer pub) */
  uint8_t cookie_key[WG_KEY_LEN]; /* HASH("cookie--" || peer pub): opens the peer's replies */
  uint8_t cookie[WG_MAC_LEN];
  uint64_t cookie_birth;
  bool has_cookie;
  uint8_t last_mac1[WG_MAC_LEN]; /* AAD of the cookie reply we may get for our last message */
  bool has_last_mac1;
} wg_cookie_maker;

void wg_cookie_maker_init(wg_cookie_maker *m, const uint8_t peer_pub[WG_KEY_LEN]);
void wg_cookie_maker_wipe(wg_cookie_maker *m);

/* Writes mac1 and mac2 (zeros without a fresh cookie) into the last 32 bytes of a 148/92-byte
 * message whose other fields are final. */
void wg_cookie_add_macs(wg_cookie_maker *m, uint8_t *msg, size_t len, uint64_t now);

/* Opens a 64-byte cookie reply (whose receiver index the caller already matched to this peer)
 * and stores the cookie. WG_ERR_NO_COOKIE_STATE if we sent nothing awaiting one (each mac1 is
 * usable once), WG_ERR_DECRYPT if it does not authenticate. */
wg_result wg_cookie_consume_reply(wg_cookie_maker *m, const uint8_t *msg, size_t len, uint64_t now);

/* The "under load" input: loaded while the handshake queue holds at least threshold messages,
 * and for 1 s after that was last seen (WireGuard's sticky rule). */
typedef struct {
  uint64_t until;
  bool active;
} wg_load_state;

bool wg_under_load(wg_load_state *l, size_t queued, size_t threshold, uint64_t now);

#endif
