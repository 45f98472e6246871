/* A transport keypair: the symmetric session one handshake produced, with its send counter and
 * receive replay window, and the transport message format
 *
 *   type (4, caller's value) | receiver index LE32 | counter LE64 | AEAD(padded plaintext)
 *
 * sealed with ChaCha20-Poly1305, nonce = 4 zero bytes || LE64 counter, no AAD (the header is not
 * authenticated). Both directions work in place in the caller's buffer. The session keys live only
 * in two keyed AEAD contexts (wg/aead.h), allocated by wg_keypair_setup and freed (wiped) by
 * wg_keypair_wipe: one key schedule per keypair, none per packet. */
#ifndef AWGPROXY_WG_KEYPAIR_H
#define AWGPROXY_WG_KEYPAIR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wg/aead.h"
#include "wg/index_table.h"
#include "wg/noise.h"
#include "wg/replay.h"
#include "wg/result.h"
#include "wg/tunables.h"

typedef struct wg_keypair {
  wg_index_entry entry; /* our index = the receiver index the peer writes on its packets */
  uint32_t remote_index;
  wg_aead_ctx *send_aead; /* keyed with the session's send key; owned, NULL when not live */
  wg_aead_ctx *recv_aead; /* keyed with the session's receive key; owned, NULL when not live */
  uint64_t send_counter;  /* next counter to send */
  wg_replay replay;
  uint64_t birth; /* monotonic ns */
  bool initiator; /* we sent the initiation of the handshake that made it */
  bool live;
} wg_keypair;

/* Installs fresh session keys (the index entry is left to the caller): keys the two AEAD contexts.
 * kp must not be live (fresh from wg_peer_init's zeroing, or wiped). WG_ERR_NO_MEMORY when a
 * context cannot be allocated; kp is then left wiped and not live. */
wg_result wg_keypair_setup(wg_keypair *kp, const wg_session_keys *keys, uint64_t now);
/* Frees (and so wipes) the AEAD contexts, clears counters. The caller unlinks kp->entry first. */
void wg_keypair_wipe(wg_keypair *kp);

/* True when the keypair may still send/receive at now: live, younger than REJECT_AFTER_TIME. */
bool wg_keypair_fresh(const wg_keypair *kp, const wg_tunables *t, uint64_t now);

/* Length of the plaintext once zero-padded: up to a multiple of 16, but not beyond mtu (for a
 * packet longer than mtu only its len % mtu tail is rounded). mtu 0 = no cap. Callers may pad
 * further (AWG collision avoidance) and pass the larger value to wg_keypair_encrypt. */
size_t wg_padded_len(size_t len, size_t mtu);
/* Transport message length for a padded plaintext length: 16 + padded + 16. */
size_t wg_transport_len(size_t padded_len);

/* Encrypts in place. The plaintext (pt_len bytes) is at msg + 16; msg must have room for
 * wg_transport_len(padded_len) bytes. Writes zero padding, the header with type, and the tag.
 * WG_ERR_EXPIRED when the keypair is too old or its counter is exhausted. */
wg_result wg_keypair_encrypt(wg_keypair *kp, uint32_t type, uint8_t *msg, size_t pt_len,
                             size_t padded_len, const wg_tunables *t, uint64_t now);
/* The same with the plaintext read from pt (not overlapping msg unless pt == msg + 16). With
 * room, msg + 16 has WG_AEAD_ROOM bytes of room in front and the message as many behind, which
 * the seal borrows to save a copy (wg_aead_ctx_seal_padded_room). */
wg_result wg_keypair_encrypt_from(wg_keypair *kp, uint32_t type, uint8_t *msg, const uint8_t *pt,
                                  size_t pt_len, size_t padded_len, bool room, const wg_tunables *t,
                                  uint64_t now);

/* Decrypts a transport message of len bytes in place: on WG_OK the plaintext (padding included)
 * is at msg + 16, len - 32 bytes long. The receiver index is not checked here (the caller looked
 * the keypair up by it). On failure the message bytes may have been overwritten. */
wg_result wg_keypair_decrypt(wg_keypair *kp, uint8_t *msg, size_t len, const wg_tunables *t,
                             uint64_t now);

#endif
