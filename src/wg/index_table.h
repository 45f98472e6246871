/* The receiver-index table: maps the random 32-bit local indices we hand out in handshake
 * messages to what they name (a pending handshake or a transport keypair) and its peer. Entries
 * are embedded in the objects they describe (intrusive chaining), so the table never allocates;
 * buckets are a fixed array. Indices are random, so the low bits are a fine hash. */
#ifndef AWGPROXY_WG_INDEX_TABLE_H
#define AWGPROXY_WG_INDEX_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/rng.h"

#define WG_INDEX_BUCKETS 1024 /* power of two */

typedef enum {
  WG_INDEX_HANDSHAKE = 1, /* a handshake we initiated or answered, awaiting its next message */
  WG_INDEX_KEYPAIR = 2,   /* an established transport keypair */
} wg_index_kind;

struct wg_peer;

typedef struct wg_index_entry {
  struct wg_index_entry *chain;
  uint32_t index;
  wg_index_kind kind;
  bool linked;
  struct wg_peer *peer;
  void *obj; /* the wg_handshake or wg_keypair this entry belongs to */
} wg_index_entry;

typedef struct {
  wg_index_entry *buckets[WG_INDEX_BUCKETS];
  size_t count;
  /* Sharded server (wg/shard.h): every index handed out is ≡ shard (mod shards). 0 of 1 when
   * not sharded. */
  unsigned shard, shards;
} wg_index_table;

void wg_index_table_init(wg_index_table *t);
/* From now on, hand out indices that wg_shard_of_index maps to shard (< shards). */
void wg_index_table_set_shard(wg_index_table *t, unsigned shard, unsigned shards);

/* Links e under a fresh random index not in use (and in this table's shard); returns that index.
 * e must be unlinked. */
uint32_t wg_index_insert(wg_index_table *t, wg_index_entry *e, const rng_source *rng);
/* Links e under old's index in place of old (a handshake becoming a keypair keeps its index). */
void wg_index_replace(wg_index_table *t, wg_index_entry *old, wg_index_entry *e);
/* Unlinks e if linked. */
void wg_index_remove(wg_index_table *t, wg_index_entry *e);
/* The entry for index whose kind is in kinds (a mask of wg_index_kind), or NULL. */
wg_index_entry *wg_index_lookup(const wg_index_table *t, uint32_t index, unsigned kinds);

#endif
