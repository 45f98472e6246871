#include "wg/keypair.h"

#include <string.h>

#include "wg/messages.h"

wg_result wg_keypair_setup(wg_keypair *kp, const wg_session_keys *keys, uint64_t now) {
  kp->send_aead = wg_aead_ctx_new(keys->send);
  kp->recv_aead = wg_aead_ctx_new(keys->recv);
  if (!kp->send_aead || !kp->recv_aead) {
    wg_keypair_wipe(kp);
    return WG_ERR_NO_MEMORY;
  }
  kp->remote_index = keys->remote_index;
  kp->initiator = keys->initiator;
  kp->send_counter = 0;
  wg_replay_init(&kp->replay);
  kp->birth = now;
  kp->live = true;
  return WG_OK;
}

void wg_keypair_wipe(wg_keypair *kp) {
  wg_aead_ctx_free(kp->send_aead);
  wg_aead_ctx_free(kp->recv_aead);
  kp->send_aead = NULL;
  kp->recv_aead = NULL;
  wg_replay_init(&kp->replay);
  kp->send_counter = 0;
  kp->remote_index = 0;
  kp->live = false;
}

bool wg_keypair_fresh(const wg_keypair *kp, const wg_tunables *t, uint64_t now) {
  return kp->live && (now < kp->birth || now - kp->birth < t->reject_after_time);
}

size_t wg_padded_len(size_t len, size_t mtu) {
  size_t unit = len, padded;
  if (mtu && unit > mtu) unit %= mtu;
  padded = (unit + 15) & ~(size_t)15;
  if (mtu && padded > mtu) padded = mtu;
  return len + (padded - unit);
}

size_t wg_transport_len(size_t padded_len) { return padded_len + WG_MSG_TRANSPORT_MIN_LEN; }

wg_result wg_keypair_encrypt_from(wg_keypair *kp, uint32_t type, uint8_t *msg, const uint8_t *pt,
                                  size_t pt_len, size_t padded_len, bool room, const wg_tunables *t,
                                  uint64_t now) {
  uint8_t *payload = msg + WG_DATA_PAYLOAD;
  if (padded_len < pt_len) return WG_ERR_BUFFER;
  if (!wg_keypair_fresh(kp, t, now) || kp->send_counter >= t->reject_after_messages)
    return WG_ERR_EXPIRED;
  le32_store(msg, type);
  le32_store(msg + WG_DATA_RECEIVER, kp->remote_index);
  le64_store(msg + WG_DATA_COUNTER, kp->send_counter);
  bool sealed = room ? wg_aead_ctx_seal_padded_room(kp->send_aead, kp->send_counter, payload, pt,
                                                    pt_len, padded_len)
                     : wg_aead_ctx_seal_padded(kp->send_aead, kp->send_counter, payload, pt, pt_len,
                                               padded_len);
  if (!sealed) return WG_ERR_BUFFER; /* padded_len beyond WG_AEAD_MAX_LEN; nothing was sent */
  kp->send_counter++;
  return WG_OK;
}

wg_result wg_keypair_encrypt(wg_keypair *kp, uint32_t type, uint8_t *msg, size_t pt_len,
                             size_t padded_len, const wg_tunables *t, uint64_t now) {
  return wg_keypair_encrypt_from(kp, type, msg, msg + WG_DATA_PAYLOAD, pt_len, padded_len, false, t,
                                 now);
}

wg_result wg_keypair_decrypt(wg_keypair *kp, uint8_t *msg, size_t len, const wg_tunables *t,
                             uint64_t now) {
  uint64_t counter;
  if (len < WG_MSG_TRANSPORT_MIN_LEN) return WG_ERR_SIZE;
  counter = le64_load(msg + WG_DATA_COUNTER);
  if (!wg_keypair_fresh(kp, t, now) || counter >= t->reject_after_messages) return WG_ERR_EXPIRED;
  /* Cheap check first, so replayed packets cost no decryption. */
  if (!wg_replay_check(&kp->replay, counter, t->reject_after_messages)) return WG_ERR_REPLAY;
  if (!wg_aead_ctx_open(kp->recv_aead, counter, msg + WG_DATA_PAYLOAD, msg + WG_DATA_PAYLOAD,
                        len - WG_DATA_PAYLOAD, NULL, 0))
    return WG_ERR_DECRYPT;
  if (!wg_replay_update(&kp->replay, counter, t->reject_after_messages)) return WG_ERR_REPLAY;
  return WG_OK;
}
