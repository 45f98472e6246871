#include "wg/peer.h"

#include <string.h>

#include "wg/messages.h"

wg_result wg_peer_init(wg_peer *p, wg_device *d, const uint8_t pub[WG_KEY_LEN], const uint8_t *psk,
                       uint64_t persistent_keepalive) {
  wg_result r;
  memset(p, 0, sizeof *p);
  r = wg_handshake_init(&p->hs, &d->keys, pub, psk);
  if (r != WG_OK) return r;
  p->dev = d;
  p->hs_entry.kind = WG_INDEX_HANDSHAKE;
  p->hs_entry.peer = p;
  p->hs_entry.obj = &p->hs;
  for (int i = 0; i < WG_PEER_KEYPAIR_SLOTS; i++) {
    p->slots[i].entry.kind = WG_INDEX_KEYPAIR;
    p->slots[i].entry.peer = p;
    p->slots[i].entry.obj = &p->slots[i];
  }
  wg_cookie_maker_init(&p->cookie, pub);
  wg_timers_init(&p->timers, &d->tunables, d->timer_rng, persistent_keepalive);
  p->next_peer = d->peers;
  d->peers = p;
  return WG_OK;
}

void wg_peer_remove(wg_peer *p) {
  wg_device *d = p->dev;
  if (!d) return;
  for (wg_peer **it = &d->peers; *it; it = &(*it)->next_peer) {
    if (*it == p) {
      *it = p->next_peer;
      break;
    }
  }
  wg_peer_zero_keys(p);
  wg_handshake_wipe(&p->hs);
  wg_cookie_maker_wipe(&p->cookie);
  memset(p, 0, sizeof *p);
}

const uint8_t *wg_peer_public_key(const wg_peer *p) { return p->hs.remote_static; }

static void drop_keypair(wg_peer *p, wg_keypair **slot) {
  if (!*slot) return;
  wg_index_remove(&p->dev->index, &(*slot)->entry);
  wg_keypair_wipe(*slot);
  *slot = NULL;
}

static void drop_handshake(wg_peer *p) {
  wg_index_remove(&p->dev->index, &p->hs_entry);
  wg_handshake_clear(&p->hs);
}

void wg_peer_zero_keys(wg_peer *p) {
  drop_keypair(p, &p->current);
  drop_keypair(p, &p->previous);
  drop_keypair(p, &p->next);
  drop_handshake(p);
}

void wg_peer_set_psk(wg_peer *p, const uint8_t *psk) {
  wg_peer_zero_keys(p);
  if (psk)
    memcpy(p->hs.psk, psk, WG_KEY_LEN);
  else
    wg_wipe(p->hs.psk, WG_KEY_LEN);
}

/* Makes room for a new session per the rotation rules in peer.h. */
static void rotate_out(wg_peer *p, bool initiator) {
  if (!initiator) {
    drop_keypair(p, &p->next);
    drop_keypair(p, &p->previous);
    return;
  }
  drop_keypair(p, &p->previous);
  if (p->next) {
    p->previous = p->next;
    p->next = NULL;
    drop_keypair(p, &p->current);
  } else {
    p->previous = p->current;
    p->current = NULL;
  }
}

static wg_keypair *free_slot(wg_peer *p) {
  for (int i = 0; i < WG_PEER_KEYPAIR_SLOTS; i++)
    if (&p->slots[i] != p->current && &p->slots[i] != p->previous && &p->slots[i] != p->next)
      return &p->slots[i];
  return NULL; /* unreachable: rotate_out leaves at most two slots in use */
}

/* Derives the transport keys of the finished handshake into a new keypair, which takes over the
 * handshake's index. */
static wg_result install_session(wg_peer *p, uint64_t now) {
  wg_session_keys keys;
  wg_keypair *kp;
  bool initiator;
  wg_result r = wg_noise_derive_keys(&p->hs, &keys);
  if (r != WG_OK) return r;
  initiator = keys.initiator;
  rotate_out(p, initiator);
  kp = free_slot(p);
  r = wg_keypair_setup(kp, &keys, now);
  wg_wipe(&keys, sizeof keys);
  if (r != WG_OK) {
    drop_handshake(p); /* its keys are gone: a later handshake starts over */
    return r;
  }
  wg_index_replace(&p->dev->index, &p->hs_entry, &kp->entry);
  if (initiator)
    p->current = kp;
  else
    p->next = kp;
  wg_timers_session_derived(&p->timers, now);
  return WG_OK;
}

static void sent_handshake_message(wg_peer *p, uint64_t now) {
  wg_timers_handshake_sent(&p->timers, now);
  wg_timers_authenticated_sent(&p->timers, now);
  wg_timers_traversal(&p->timers, now);
}

static void received_authenticated(wg_peer *p, uint64_t now) {
  wg_timers_authenticated_received(&p->timers, now);
  wg_timers_traversal(&p->timers, now);
}

static void session_confirmed(wg_peer *p, uint64_t now) {
  wg_timers_handshake_complete(&p->timers, now);
  p->last_handshake = now;
  p->has_handshake = true;
}

/* A fresh index for the handshake message about to be written. */
static uint32_t new_handshake_index(wg_peer *p) {
  wg_index_remove(&p->dev->index, &p->hs_entry);
  return wg_index_insert(&p->dev->index, &p->hs_entry, p->dev->rng);
}

wg_result wg_peer_create_initiation(wg_peer *p, uint32_t type, uint64_t now, uint64_t wall_ns,
                                    bool retry, uint8_t out[148]) {
  wg_device *d = p->dev;
  wg_result r;
  if (!wg_timers_may_send_handshake(&p->timers, now)) return WG_ERR_RATE_LIMITED;
  r = wg_noise_create_initiation(&p->hs, &d->keys, type, new_handshake_index(p), wall_ns, d->rng,
                                 out);
  if (r != WG_OK) {
    drop_handshake(p);
    return r;
  }
  wg_cookie_add_macs(&p->cookie, out, WG_MSG_INIT_LEN, now);
  wg_timers_handshake_initiated(&p->timers, now, retry);
  sent_handshake_message(p, now);
  return WG_OK;
}

wg_result wg_peer_create_response(wg_peer *p, uint32_t type, uint64_t now, uint8_t out[92]) {
  wg_result r;
  if (p->hs.state != WG_HS_CONSUMED_INITIATION) return WG_ERR_STATE;
  r = wg_noise_create_response(&p->hs, type, new_handshake_index(p), p->dev->rng, out);
  if (r == WG_OK) r = install_session(p, now);
  if (r != WG_OK) {
    drop_handshake(p);
    return r;
  }
  wg_cookie_add_macs(&p->cookie, out, WG_MSG_RESPONSE_LEN, now);
  sent_handshake_message(p, now);
  return WG_OK;
}

wg_result wg_peer_accept_initiation(wg_peer *p, const uint8_t msg[148], wg_initiation_scan *scan,
                                    uint64_t now) {
  wg_result r;
  r = wg_noise_accept_initiation(&p->hs, msg, scan, p->dev->tunables.initiation_min_interval, now);
  if (r != WG_OK) return r;
  /* Our own pending initiation, if any, was superseded: its index is void. */
  wg_index_remove(&p->dev->index, &p->hs_entry);
  received_authenticated(p, now);
  return WG_OK;
}

wg_result wg_peer_consume_response(wg_peer *p, const uint8_t msg[92], uint64_t now) {
  wg_result r = wg_noise_consume_response(&p->hs, &p->dev->keys, msg);
  if (r == WG_OK) r = install_session(p, now);
  if (r != WG_OK) return r;
  received_authenticated(p, now);
  session_confirmed(p, now);
  /* The responder needs a packet under the new keys to start using them. */
  p->actions |= WG_ACT_SEND_KEEPALIVE;
  return WG_OK;
}

/* The responder's next keypair proved itself: promote it. */
static void confirm_next(wg_peer *p, uint64_t now) {
  drop_keypair(p, &p->previous);
  p->previous = p->current;
  p->current = p->next;
  p->next = NULL;
  session_confirmed(p, now);
}

wg_result wg_peer_decrypt(wg_peer *p, wg_keypair *kp, uint8_t *msg, size_t len, uint64_t now) {
  wg_result r = wg_keypair_decrypt(kp, msg, len, &p->dev->tunables, now);
  if (r != WG_OK) return r;
  if (kp == p->next) confirm_next(p, now);
  received_authenticated(p, now);
  /* A plaintext starting with a zero byte is an AWG 3.x padded keepalive, not data (spec R33). */
  if (len > WG_MSG_TRANSPORT_MIN_LEN && msg[WG_DATA_PAYLOAD] != 0)
    wg_timers_data_received(&p->timers, now);
  if (kp == p->current && wg_timers_rekey_on_receive(&p->timers, kp->birth, kp->initiator, now))
    p->actions |= WG_ACT_INITIATE;
  return WG_OK;
}

bool wg_peer_can_send(const wg_peer *p, uint64_t now) {
  const wg_keypair *kp = p->current;
  return kp && wg_keypair_fresh(kp, &p->dev->tunables, now) &&
         kp->send_counter < p->dev->tunables.reject_after_messages;
}

wg_result wg_peer_encrypt(wg_peer *p, uint32_t type, uint8_t *msg, size_t pt_len, size_t padded_len,
                          uint64_t now) {
  return wg_peer_encrypt_from(p, type, msg, msg + WG_DATA_PAYLOAD, pt_len, padded_len, false, now);
}

wg_result wg_peer_encrypt_from(wg_peer *p, uint32_t type, uint8_t *msg, const uint8_t *pt,
                               size_t pt_len, size_t padded_len, bool room, uint64_t now) {
  wg_keypair *kp = p->current;
  wg_result r;
  if (!wg_peer_can_send(p, now)) {
    p->actions |= WG_ACT_INITIATE;
    return WG_ERR_NO_SESSION;
  }
  r = wg_keypair_encrypt_from(kp, type, msg, pt, pt_len, padded_len, room, &p->dev->tunables, now);
  if (r != WG_OK) return r;
  wg_timers_authenticated_sent(&p->timers, now);
  wg_timers_traversal(&p->timers, now);
  if (pt_len) wg_timers_data_sent(&p->timers, now);
  if (wg_timers_rekey_on_send(&p->timers, kp->birth, kp->initiator, kp->send_counter, now))
    p->actions |= WG_ACT_INITIATE;
  return WG_OK;
}

unsigned wg_peer_poll(wg_peer *p, uint64_t now) {
  unsigned actions = p->actions | wg_timers_expire(&p->timers, now);
  p->actions = 0;
  if (actions & WG_ACT_ZERO_KEYS) wg_peer_zero_keys(p);
  return actions;
}

bool wg_peer_next_deadline(const wg_peer *p, uint64_t *deadline) {
  if (p->actions) {
    *deadline = 0;
    return true;
  }
  return wg_timers_next_deadline(&p->timers, deadline);
}
