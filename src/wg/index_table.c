#include "wg/index_table.h"

#include <string.h>

static wg_index_entry **bucket(wg_index_table *t, uint32_t index) {
  return &t->buckets[index & (WG_INDEX_BUCKETS - 1)];
}

void wg_index_table_init(wg_index_table *t) { memset(t, 0, sizeof *t); }

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

uint32_t wg_index_insert(wg_index_table *t, wg_index_entry *e, const awg_rng *rng) {
  uint32_t index;
  /* With at most a few entries per peer the table is nearly empty: this ends quickly. */
  do {
    awg_rng_bytes(rng, &index, sizeof index);
  } while (in_use(t, index));
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
