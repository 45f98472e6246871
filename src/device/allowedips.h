/* Cryptokey routing: which peer an outgoing inner packet goes to (longest matching prefix of its
 * destination) and whether an incoming packet's source is allowed for the peer it came from.
 * A binary trie per address family; lookups walk at most 32/128 levels and never allocate. */
#ifndef AWGPROXY_DEVICE_ALLOWEDIPS_H
#define AWGPROXY_DEVICE_ALLOWEDIPS_H

#include <stddef.h>
#include <stdint.h>

typedef struct aip_node aip_node;

typedef struct {
  aip_node *root4, *root6;
  size_t count;
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

#endif
