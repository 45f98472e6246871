#include "wg/index_table.h"

#include <string.h>

static wg_index_entry **bucket(wg_index_table *t, uint32_t index) {
  return &t->buckets[index & (WG_INDEX_BUCKETS - 1)];
}

void wg_index_table_init(wg_index_table *t) {
  memset(t, 0, sizeof *t);
  t->shards = 1;
}

void wg_index_table_set_shard(wg_index_table *t, unsigned shard, unsigned shards) {
  t->shard = shards > 1 ? shard % shards : 0;
  t->shards = shards > 1 ? shards : 1;
}

/* A random index moved into this table's shard: the nearest one at or below that is ≡ shard
 * (mod shards); indices near the top that would wrap are drawn again by the caller. */
static bool shard_index(const wg_index_table *t, uint32_t r, uint32_t *out) {
  if (t->shards <= 1) return *out = r, true;
  uint64_t v = (uint64_t)(r - r % t->shards) + t->shard;
  if (v > UINT32_MAX) return false;
  *out = (uint32_t)v;
  return true;
}

static bool in_use(const wg_index_table *t, uint32_t index) {
  for (const wg_index_entry *e = t->buckets[index & (WG_INDEX_BUCKETS - 1)]; e; e = e->chain)
    if (e->index == index) return true;
  return false;
}

static void link_entry(wg_index_table *t, wg_index_entry *e, uint32_t index) {
  wg_index_entry **head = bucket(t, index);
  e->index = index;
  e->chain = *head;
  *head = e;
  e->linked = true;
  t->count++;
}

uint32_t wg_index_insert(wg_index_table *t, wg_index_entry *e, const rng_source *rng) {
  uint32_t index;
  /* With at most a few entries per peer the table is nearly empty: this ends quickly. */
  uint32_t r;
  do {
    rng_bytes(rng, &r, sizeof r);
  } while (!shard_index(t, r, &index) || in_use(t, index));
  link_entry(t, e, index);
  return index;
}

void wg_index_remove(wg_index_table *t, wg_index_entry *e) {
  if (!e->linked) return;
  for (wg_index_entry **p = bucket(t, e->index); *p; p = &(*p)->chain) {
    if (*p == e) {
      *p = e->chain;
      break;
    }
  }
  e->chain = NULL;
  e->linked = false;
  t->count--;
}

void wg_index_replace(wg_index_table *t, wg_index_entry *old, wg_index_entry *e) {
  uint32_t index = old->index;
  wg_index_remove(t, old);
  link_entry(t, e, index);
}

wg_index_entry *wg_index_lookup(const wg_index_table *t, uint32_t index, unsigned kinds) {
  for (wg_index_entry *e = t->buckets[index & (WG_INDEX_BUCKETS - 1)]; e; e = e->chain)
    if (e->index == index && (e->kind & kinds)) return e;
  return NULL;
}
