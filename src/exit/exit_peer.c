/* Per-peer exit state: the table from [Peer] to exit_peer (sources are mapped to their [Peer] by
 * the tunnel's own cryptokey routing, tunnel_owner_of), each
 * peer's rules (exit_rules.c over its cfg_peer), connection slots against the peer's and the
 * global cap, token buckets for its bandwidth limits and the addresses the server's DNS gave it
 * for allowed names. exit_peer objects are reference counted so that flows can outlive a reload
 * that removed their peer; the table itself is too, so that a late release after exit_stop
 * still finds its counters. */
#include "exit/exit_peer.h"
#include "exit/exit_quic.h"

#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "device/tunnel.h"
#include "exit/exit_rules.h"
#include "stream/stream_throttle.h"
#include "util/keys.h"
#include "util/log.h"
#include "util/shard_counts.h"
#include "util/tbucket.h"

typedef struct {
  exit_addr a;
  uint64_t expires; /* uv_now ms */
} learned_addr;

struct exit_peer {
  exit_peer *next; /* in the table's list of live peers */
  struct exit_peer_table *tab;
  int refs; /* the table's (while live), slots, throttled streams, holds */
  bool gone;
  uint8_t key[AWG_KEY_LEN];
  char fp[9];
  const cfg_peer *cfg; /* into the exit's current config; NULL once gone */
  uint32_t n_conns;
  tbucket up, down;
  learned_addr *learned; /* EXIT_MAX_LEARNED, allocated on first use */
};

struct exit_peer_table {
  int refs; /* the exit's, and one per exit_peer object */
  exit_peer *list;
  /* by_index[i] is the state of indexed->peers[i] (NULL: left out, out of memory); indexed is
   * the config the table was last built from, the one the tunnel routes with. */
  const app_config *indexed;
  exit_peer **by_index;
  uint32_t n_conns;            /* all slots, peers' and local ones */
  exit_stats st;               /* only the per-peer counters are used */
  struct shard_counts *shared; /* a sharded server's: n_conns published to the siblings */
};

typedef struct exit_peer_table peer_table;

static uint64_t now_us(void) { return uv_hrtime() / 1000; }

static void table_put(peer_table *t) {
  if (--t->refs > 0) return;
  free(t->by_index);
  free(t);
}

void exit_peer_hold(exit_peer *p) { p->refs++; }

void exit_peer_put(exit_peer *p) {
  if (--p->refs > 0) return;
  peer_table *t = p->tab;
  free(p->learned);
  free(p);
  table_put(t);
}

static void put_cb(void *p) { exit_peer_put(p); }

bool exit_peer_gone(const exit_peer *p) { return p->gone; }
cfg_congestion exit_peer_congestion(const exit_peer *p) {
  return p->cfg ? p->cfg->congestion : CFG_CC_BBR;
}
const char *exit_peer_name(const exit_peer *p) { return p->fp; }
bool exit_peer_learns(const exit_peer *p) { return p->cfg && p->cfg->n_allow_domains > 0; }

exit_peer *exit_peer_lookup(exit_ctx *x, const exit_addr *src) {
  peer_table *t = x->peers;
  if (!t || !x->tun) return NULL;
  const cfg_peer *c = tunnel_owner_of(x->tun, src->family, src->a);
  if (!c) return NULL;
  if (t->by_index && c >= t->indexed->peers && c < t->indexed->peers + t->indexed->n_peers)
    return t->by_index[c - t->indexed->peers];
  /* The tunnel routes with a config this table was not built from (a rebuild ran out of
   * memory): find the peer by key. */
  for (exit_peer *p = t->list; p; p = p->next)
    if (!memcmp(p->key, c->public_key, AWG_KEY_LEN)) return p;
  return NULL;
}

/* ---- rules ------------------------------------------------------------------------------ */

static bool is_learned(exit_ctx *x, const exit_peer *p, const exit_addr *a) {
  if (!p->learned) return false;
  uint64_t now = uv_now(x->loop);
  for (size_t i = 0; i < EXIT_MAX_LEARNED; i++)
    if (p->learned[i].expires > now && exit_addr_equal(&p->learned[i].a, a)) return true;
  return false;
}

void exit_peer_learn(exit_ctx *x, exit_peer *p, const exit_addr *a) {
  if (!exit_peer_learns(p)) return;
  if (!p->learned && !(p->learned = calloc(EXIT_MAX_LEARNED, sizeof *p->learned))) return;
  uint64_t now = uv_now(x->loop);
  learned_addr *slot = &p->learned[0];
  for (size_t i = 0; i < EXIT_MAX_LEARNED; i++) {
    learned_addr *e = &p->learned[i];
    if (e->expires > now && exit_addr_equal(&e->a, a)) {
      slot = e;
      break;
    }
    if (e->expires < slot->expires) slot = e; /* an empty or expired slot, or the oldest */
  }
  slot->a = *a;
  slot->expires = now + EXIT_LEARNED_MS;
}

static void log_denied(const exit_peer *p, const char *proto, const exit_addr *dst, uint16_t dport,
                       const char *name, const char *why) {
  if (!log_enabled(LOG_DEBUG)) return;
  char d[64] = "-";
  if (dst) exit_addr_format(dst, dport, d, sizeof d);
  LOG_D("exit", "denied", "peer", p->fp, "proto", proto, "dst", d, "name", name ? name : "-",
        "reason", why, NULL);
}

bool exit_permit(exit_ctx *x, exit_peer *p, const char *proto, const exit_addr *dst, uint16_t dport,
                 const char *name) {
  exit_tuple t = {.dst = *dst, .dport = dport};
  if (!exit_allowed(x, proto, &t)) return false; /* the server-wide policy comes first */
  if (!p) return true;
  exit_rule_verdict v = EXIT_RULE_NOT_ALLOWED;
  if (p->cfg) {
    bool learned = exit_rules_allow_list_mode(p->cfg) && is_learned(x, p, dst);
    v = exit_rules_check(p->cfg, dst->family, dst->a, dport, name, learned);
  }
  if (v == EXIT_RULE_ALLOW) return true;
  x->peers->st.denied_rule++;
  log_denied(p, proto, dst, dport, name, p->cfg ? exit_rule_verdict_str(v) : "peer removed");
  return false;
}

bool exit_permit_name(exit_ctx *x, exit_peer *p, const char *name) {
  if (!p) return true;
  exit_rule_verdict v = p->cfg ? exit_rules_check_name(p->cfg, name) : EXIT_RULE_NOT_ALLOWED;
  if (v == EXIT_RULE_ALLOW) return true;
  x->peers->st.denied_rule++;
  log_denied(p, "name", NULL, 0, name, p->cfg ? exit_rule_verdict_str(v) : "peer removed");
  return false;
}

/* ---- caps ------------------------------------------------------------------------------- */

bool exit_conn_acquire(exit_ctx *x, exit_peer *p) {
  peer_table *t = x->peers;
  /* A sharded server's cap holds for all its workers together. */
  if (t->n_conns + shard_counts_others(t->shared, SHARD_COUNT_EXIT_CONNS) >=
      x->cfg->server_max_connections) {
    t->st.cap_global++;
    LOG_D("exit", "cap_reached", "peer", p ? p->fp : "local", "cap", "MaxConnections (server)",
          NULL);
    return false;
  }
  if (p) {
    uint32_t cap = !p->cfg                   ? 0
                   : p->cfg->max_connections ? p->cfg->max_connections
                                             : x->cfg->server_peer_max_connections;
    if (p->n_conns >= cap) {
      t->st.cap_peer++;
      LOG_D("exit", "cap_reached", "peer", p->fp, "cap", "MaxConnections (peer)", NULL);
      return false;
    }
    p->n_conns++;
    p->refs++;
  }
  t->n_conns++;
  shard_counts_set(t->shared, SHARD_COUNT_EXIT_CONNS, t->n_conns);
  return true;
}

void exit_conn_release(exit_ctx *x, exit_peer *p) {
  if (p) {
    p->n_conns--;
    p->tab->n_conns--;
    shard_counts_set(p->tab->shared, SHARD_COUNT_EXIT_CONNS, p->tab->n_conns);
    exit_peer_put(p);
  } else if (x && x->peers) {
    x->peers->n_conns--;
    shard_counts_set(x->peers->shared, SHARD_COUNT_EXIT_CONNS, x->peers->n_conns);
  }
}

/* ---- bandwidth -------------------------------------------------------------------------- */

stream *exit_peer_throttle(exit_ctx *x, exit_peer *p, stream *s, bool from_peer) {
  if (!p) return s;
  p->refs++;
  stream_throttle_cfg c = {.bucket = from_peer ? &p->up : &p->down,
                           .release = put_cb,
                           .ctx = p,
                           .waits = &p->tab->st.throttle_waits,
                           .wait_ms = &p->tab->st.throttle_wait_ms};
  stream *w = stream_throttle_wrap(x->loop, s, &c);
  if (w) return w;
  /* Out of memory: the connection goes on without the limit rather than failing. */
  exit_peer_put(p);
  LOG_W("exit", "throttle_failed", "peer", p->fp, "error", "out of memory", NULL);
  return s;
}

bool exit_peer_udp_budget(exit_ctx *x, exit_peer *p, bool up, size_t len) {
  if (!p) return true;
  if (tbucket_try_take(up ? &p->up : &p->down, len, now_us())) return true;
  p->tab->st.udp_throttled++;
  p->tab->st.udp_throttled_bytes += len;
  return false;
}

static void apply_limits(exit_peer *p, const cfg_peer *c) {
  uint64_t now = now_us();
  tbucket_set(&p->up, c->upload_limit, tbucket_default_burst(c->upload_limit), now);
  tbucket_set(&p->down, c->download_limit, tbucket_default_burst(c->download_limit), now);
}

/* ---- the table -------------------------------------------------------------------------- */

static exit_peer *peer_new(peer_table *t, const cfg_peer *c) {
  exit_peer *p = calloc(1, sizeof *p);
  if (!p) return NULL;
  p->tab = t;
  t->refs++;
  p->refs = 1;
  memcpy(p->key, c->public_key, AWG_KEY_LEN);
  key_fingerprint(c->public_key, p->fp);
  uint64_t now = now_us();
  tbucket_init(&p->up, c->upload_limit, tbucket_default_burst(c->upload_limit), now);
  tbucket_init(&p->down, c->download_limit, tbucket_default_burst(c->download_limit), now);
  return p;
}

static exit_peer *take_by_key(exit_peer **list, const uint8_t *key) {
  for (exit_peer **pp = list; *pp; pp = &(*pp)->next)
    if (!memcmp((*pp)->key, key, AWG_KEY_LEN)) {
      exit_peer *p = *pp;
      *pp = p->next;
      p->next = NULL;
      return p;
    }
  return NULL;
}

exit_peer *exit_peer_next_removed(exit_peer *p) {
  exit_peer *next = p->next;
  p->next = NULL;
  return next;
}

int exit_peers_build(exit_ctx *x, exit_peer **removed) {
  peer_table *t = x->peers;
  if (!t) {
    if (!(t = calloc(1, sizeof *t))) return -1;
    t->refs = 1;
    t->shared = x->tun ? tunnel_shard_counts(x->tun) : NULL;
    x->peers = t;
  }
  const app_config *cfg = x->cfg;
  exit_peer *old = t->list, *live = NULL;
  exit_peer **by_index = calloc(cfg->n_peers ? cfg->n_peers : 1, sizeof *by_index);
  int rc = by_index ? 0 : -1; /* without the index, lookups fall back to a search by key */
  for (size_t i = 0; i < cfg->n_peers; i++) {
    const cfg_peer *c = &cfg->peers[i];
    exit_peer *p = take_by_key(&old, c->public_key);
    if (p)
      apply_limits(p, c);
    else if (!(p = peer_new(t, c))) {
      rc = -1; /* this peer's flows are refused: lookups find no peer for it */
      continue;
    }
    p->cfg = c;
    p->next = live;
    live = p;
    if (by_index) by_index[i] = p;
  }
  free(t->by_index);
  t->by_index = by_index;
  t->indexed = cfg;
  t->list = live;
  /* Peers that are gone: refused from now on; the caller ends their flows. */
  for (exit_peer *p = old; p; p = p->next) {
    p->gone = true;
    p->cfg = NULL;
    LOG_I("exit", "peer_removed", "peer", p->fp, NULL);
  }
  *removed = old;
  return rc;
}

void exit_peers_free(exit_ctx *x) {
  peer_table *t = x->peers;
  if (!t) return;
  x->peers = NULL;
  while (t->list) {
    exit_peer *p = t->list;
    t->list = p->next;
    p->gone = true;
    p->cfg = NULL;
    exit_peer_put(p);
  }
  free(t->by_index);
  t->by_index = NULL;
  table_put(t);
}

void exit_peers_stats(const exit_ctx *x, exit_stats *st) {
  const peer_table *t = x->peers;
  if (!t) return;
  st->denied_rule = t->st.denied_rule;
  st->connections = t->n_conns;
  st->cap_peer = t->st.cap_peer;
  st->cap_global = t->st.cap_global;
  st->throttle_waits = t->st.throttle_waits;
  st->throttle_wait_ms = t->st.throttle_wait_ms;
  st->udp_throttled = t->st.udp_throttled;
  st->udp_throttled_bytes = t->st.udp_throttled_bytes;
}
