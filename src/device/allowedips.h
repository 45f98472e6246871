/* Cryptokey routing: which peer an outgoing inner packet goes to (longest matching prefix of its
 * destination) and whether an incoming packet's source is allowed for the peer it came from.
 * A binary trie per address family; lookups walk at most 32/128 levels and never allocate. */
#ifndef AWGPROXY_DEVICE_ALLOWEDIPS_H
#define AWGPROXY_DEVICE_ALLOWEDIPS_H

#include <stddef.h>
#include <stdint.h>

typedef struct aip_node aip_node;

/* Recent answers of allowedips_lookup_cached, direct-mapped by address. Every change to the trie
 * clears it. */
#define AIP_CACHE_SLOTS 64
typedef struct {
  uint8_t addr[16]; /* an IPv4 address in the first 4 bytes */
  uint8_t family;   /* 0: empty */
  void *value;
} aip_cache_slot;

typedef struct {
  aip_node *root4, *root6;
  size_t count;
  aip_cache_slot cache[AIP_CACHE_SLOTS];
} allowedips;

void allowedips_init(allowedips *t);
void allowedips_free(allowedips *t);
/* Maps addr/prefix (family AF_INET or AF_INET6; host bits ignored) to value, replacing an
 * existing entry of the same prefix. Returns -1 on allocation failure. */
int allowedips_insert(allowedips *t, int family, const uint8_t *addr, uint8_t prefix, void *value);
/* Removes every entry whose value is value (a peer being deleted). */
void allowedips_remove_value(allowedips *t, void *value);
/* Longest-prefix match; NULL when nothing matches. */
void *allowedips_lookup(const allowedips *t, int family, const uint8_t *addr);
/* The same answer, remembered for the next packet of the same address: the per-packet checks of
 * the data path (the walk is up to 32/128 dependent loads; a cached answer one compare). */
void *allowedips_lookup_cached(allowedips *t, int family, const uint8_t *addr);

#endif
