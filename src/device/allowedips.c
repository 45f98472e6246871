#include "device/allowedips.h"

#include <stdbool.h>
#include <stdlib.h>
#include <sys/socket.h>

/* An uncompressed binary trie: simple to get right, and at most prefix-length nodes per entry
 * (a /32 costs 32 small nodes; thousands of peers stay within a few MB). */
struct aip_node {
  aip_node *child[2];
  void *value;
  bool has_value;
};

void allowedips_init(allowedips *t) { t->root4 = t->root6 = NULL, t->count = 0; }

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
