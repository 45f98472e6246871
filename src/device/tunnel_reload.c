/* tunnel_reload(): switching a running tunnel to a new [Peer] list without disturbing the peers
 * that stay. Everything that can fail (new peer objects, the new AllowedIPs trie) happens before
 * the first change, so a failure leaves the tunnel as it was. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "device/tunnel_internal.h"
#include "util/log.h"
#include "wg/wg_crypto.h"

static bool cidr_equal(const cfg_cidr *a, const cfg_cidr *b) {
  size_t len = a->family == AF_INET ? 4 : 16;
  return a->family == b->family && a->prefix == b->prefix && memcmp(a->addr, b->addr, len) == 0;
}

static bool allowed_ips_equal(const cfg_peer *a, const cfg_peer *b) {
  if (a->n_allowed_ips != b->n_allowed_ips) return false;
  for (size_t k = 0; k < a->n_allowed_ips; k++)
    if (!cidr_equal(&a->allowed_ips[k], &b->allowed_ips[k])) return false;
  return true;
}

static bool endpoint_equal(const cfg_peer *a, const cfg_peer *b) {
  if (a->has_endpoint != b->has_endpoint) return false;
  return !a->has_endpoint ||
         (a->endpoint.port == b->endpoint.port && strcmp(a->endpoint.host, b->endpoint.host) == 0);
}

static bool psk_equal(const cfg_peer *a, const cfg_peer *b) {
  if (a->has_psk != b->has_psk) return false;
  return !a->has_psk || wg_equal(a->psk, b->psk, sizeof a->psk);
}

/* The live peer with pub, or NULL. */
static size_t find_peer(const tunnel *t, const uint8_t *pub) {
  for (size_t i = 0; i < t->n_peers; i++)
    if (wg_equal(t->peers[i]->cfg->public_key, pub, AWG_KEY_LEN)) return i;
  return SIZE_MAX;
}

/* Applies nc to a peer that stays; true when anything changed. */
static bool apply_peer(tun_peer *p, const cfg_peer *nc) {
  const cfg_peer *old = p->cfg;
  char what[64] = "";
  p->cfg = nc;
  if (!allowed_ips_equal(old, nc)) strcat(what, "allowed_ips,");
  if (old->persistent_keepalive != nc->persistent_keepalive ||
      old->persistent_keepalive_max != nc->persistent_keepalive_max) {
    strcat(what, "keepalive,");
    wg_timers_set_persistent_max(&p->wp.timers,
                                 (uint64_t)nc->persistent_keepalive_max * WG_NS_PER_SEC);
    wg_timers_set_persistent(&p->wp.timers, (uint64_t)nc->persistent_keepalive * WG_NS_PER_SEC,
                             tun_now());
  }
  if (!endpoint_equal(old, nc)) {
    strcat(what, "endpoint,");
    tun_peer_apply_endpoint(p); /* no Endpoint any more: the learned one stays */
  }
  if (!psk_equal(old, nc)) {
    strcat(what, "preshared_key,");
    tun_session_end(p, "psk-changed", tun_now());
    wg_peer_set_psk(&p->wp, nc->has_psk ? nc->psk : NULL);
    /* Sessions under the old key are gone; with an endpoint, re-establish one at once. */
    if (p->has_endpoint) p->wp.actions |= WG_ACT_INITIATE;
  }
  if (!what[0]) return false;
  what[strlen(what) - 1] = '\0';
  LOG_I("tunnel", "peer_changed", "peer", p->fp, "changed", what, NULL);
  tun_service_peer(p);
  return true;
}

/* Undoes the peers created for a reload that cannot complete. */
static void discard_new(tun_peer **np, const bool *fresh, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (np[i] && fresh[i]) tun_peer_remove(np[i], "reload-failed");
}

int tunnel_reload(tunnel *t, const app_config *cfg, tunnel_reload_stats *st, char *err,
                  size_t errlen) {
  memset(st, 0, sizeof *st);
  size_t n = cfg->n_peers;
  tun_peer **np = calloc(n ? n : 1, sizeof *np);
  bool *fresh = calloc(n ? n : 1, sizeof *fresh);
  bool *kept = calloc(t->n_peers ? t->n_peers : 1, sizeof *kept);
  if (!np || !fresh || !kept) goto oom;
  for (size_t i = 0; i < n; i++) {
    size_t k = find_peer(t, cfg->peers[i].public_key);
    if (k != SIZE_MAX && !kept[k]) {
      np[i] = t->peers[k];
      kept[k] = true;
      continue;
    }
    char e[300];
    if (!(np[i] = tun_peer_new(t, &cfg->peers[i], e, sizeof e))) {
      if (strcmp(e, "out of memory") == 0) goto oom;
      /* A key the device refuses (our own, low order): leave that peer out, keep the rest. */
      LOG_E("tunnel", "peer_not_added", "error", e, NULL);
      continue;
    }
    fresh[i] = true;
  }
  allowedips aip;
  if (tun_build_allowedips(&aip, np, cfg->peers, n) != 0) goto oom;

  /* Commit: nothing below fails. */
  for (size_t k = 0; k < t->n_peers; k++)
    if (!kept[k]) {
      LOG_I("tunnel", "peer_removed", "peer", t->peers[k]->fp, NULL);
      tun_peer_remove(t->peers[k], "peer-removed");
      st->removed++;
    }
  size_t live = 0;
  for (size_t i = 0; i < n; i++) {
    if (!np[i]) continue;
    if (fresh[i])
      st->added++;
    else if (apply_peer(np[i], &cfg->peers[i]))
      st->changed++;
    else
      st->unchanged++;
    fresh[live] = fresh[i]; /* compacting in place: live <= i */
    np[live++] = np[i];
  }
  allowedips_free(&t->aip);
  t->aip = aip;
  free(t->peers);
  t->peers = np;
  t->n_peers = live;
  t->cfg = cfg;
  t->awg = &cfg->awg; /* equal to the running parameters (restart-only keys) */
  for (size_t i = 0; i < live; i++) {
    if (!fresh[i]) continue;
    tun_peer *p = np[i];
    LOG_I("tunnel", "peer_added", "peer", p->fp, NULL);
    if (p->has_endpoint) p->wp.actions |= WG_ACT_INITIATE;
    tun_service_peer(p);
  }
  tun_update_inbound_trust(t); /* a stock peer may have joined */
  free(fresh);
  free(kept);
  return 0;
oom:
  if (np && fresh) discard_new(np, fresh, n);
  free(np);
  free(fresh);
  free(kept);
  snprintf(err, errlen, "out of memory");
  return -1;
}
