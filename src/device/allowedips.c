#include "device/allowedips.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* An uncompressed binary trie: simple to get right, and at most prefix-length nodes per entry
 * (a /32 costs 32 small nodes; thousands of peers stay within a few MB). */
struct aip_node {
  aip_node *child[2];
  void *value;
  bool has_value;
};

static void cache_clear(allowedips *t) { memset(t->cache, 0, sizeof t->cache); }

void allowedips_init(allowedips *t) {
  t->root4 = t->root6 = NULL, t->count = 0;
  cache_clear(t);
}

static void free_node(aip_node *n) {
  if (!n) return;
  free_node(n->child[0]);
  free_node(n->child[1]);
  free(n);
}

void allowedips_free(allowedips *t) {
  free_node(t->root4);
  free_node(t->root6);
  allowedips_init(t);
}

static inline int bit_at(const uint8_t *addr, unsigned i) {
  return (addr[i / 8] >> (7 - i % 8)) & 1;
}

static aip_node **root_for(allowedips *t, int family) {
  return family == AF_INET ? &t->root4 : &t->root6;
}

int allowedips_insert(allowedips *t, int family, const uint8_t *addr, uint8_t prefix, void *value) {
  unsigned maxbits = family == AF_INET ? 32 : 128;
  if (prefix > maxbits) return -1;
  aip_node **slot = root_for(t, family);
  for (unsigned i = 0;; i++) {
    if (!*slot && !(*slot = calloc(1, sizeof **slot))) return -1;
    if (i == prefix) break;
    slot = &(*slot)->child[bit_at(addr, i)];
  }
  cache_clear(t);
  if (!(*slot)->has_value) t->count++;
  (*slot)->value = value;
  (*slot)->has_value = true;
  return 0;
}

/* Clears matching values and prunes nodes left with neither a value nor children. */
static aip_node *remove_rec(aip_node *n, void *value, size_t *count) {
  if (!n) return NULL;
  n->child[0] = remove_rec(n->child[0], value, count);
  n->child[1] = remove_rec(n->child[1], value, count);
  if (n->has_value && n->value == value) {
    n->has_value = false;
    n->value = NULL;
    (*count)--;
  }
  if (!n->has_value && !n->child[0] && !n->child[1]) {
    free(n);
    return NULL;
  }
  return n;
}

void allowedips_remove_value(allowedips *t, void *value) {
  cache_clear(t);
  t->root4 = remove_rec(t->root4, value, &t->count);
  t->root6 = remove_rec(t->root6, value, &t->count);
}

void *allowedips_lookup(const allowedips *t, int family, const uint8_t *addr) {
  const aip_node *n = family == AF_INET ? t->root4 : t->root6;
  unsigned maxbits = family == AF_INET ? 32 : 128;
  void *best = NULL;
  for (unsigned i = 0; n; i++) {
    if (n->has_value) best = n->value;
    if (i == maxbits) break;
    n = n->child[bit_at(addr, i)];
  }
  return best;
}

/* Fibonacci hashing of the address's words; an IPv6 address folds its four. */
static unsigned cache_index(int family, const uint8_t *addr) {
  uint32_t h, w;
  memcpy(&h, addr, 4);
  if (family != AF_INET)
    for (int i = 1; i < 4; i++) {
      memcpy(&w, addr + 4 * i, 4);
      h ^= w;
    }
  _Static_assert(AIP_CACHE_SLOTS == 64, "the hash keeps 6 bits");
  return (unsigned)((h * 2654435769u) >> 26);
}

void *allowedips_lookup_cached(allowedips *t, int family, const uint8_t *addr) {
  size_t alen = family == AF_INET ? 4 : 16;
  aip_cache_slot *s = &t->cache[cache_index(family, addr)];
  if (s->family == (uint8_t)family && memcmp(s->addr, addr, alen) == 0) return s->value;
  void *v = allowedips_lookup(t, family, addr);
  memset(s->addr, 0, sizeof s->addr);
  memcpy(s->addr, addr, alen);
  s->family = (uint8_t)family;
  s->value = v;
  return v;
}
