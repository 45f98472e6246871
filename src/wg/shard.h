/* Sharding a server's peers across worker processes ([Server] Threads, docs/decisions.md "A
 * server on every core"). Each worker owns the peers whose public key maps to it and hands out
 * receiver indices that map to it, so that any worker can tell from a datagram alone where it
 * belongs: a handshake initiation by the initiator's static key (known once decrypted), every
 * other message by the receiver index it carries. Pure arithmetic, the same in every worker. */
#ifndef AWGPROXY_WG_SHARD_H
#define AWGPROXY_WG_SHARD_H

#include <stdint.h>

#include "util/bytes.h"

#define WG_SHARDS_MAX 64

/* Public keys are uniformly random: their first 32 bits spread peers evenly. */
static inline unsigned wg_shard_of_key(const uint8_t *pub, unsigned shards) {
  return shards > 1 ? le32_load(pub) % shards : 0;
}

static inline unsigned wg_shard_of_index(uint32_t index, unsigned shards) {
  return shards > 1 ? index % shards : 0;
}

#endif
