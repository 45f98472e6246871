/* lwIP's heap with per-size free lists (lwip_port/lwip_mem.h). */
#include "lwip_mem.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/asan.h"

/* In front of every block: its size class. A whole max_align_t, so that what follows keeps
 * malloc's alignment (lwIP asserts MEM_ALIGNMENT on what it gets). */
typedef union {
  unsigned cls;
  max_align_t align;
} block_head;

#define CLASSES 4
#define CLASS_NONE CLASSES /* from malloc, back to free */

typedef struct free_block {
  struct free_block *next;
} free_block;

static _Thread_local struct {
  free_block *head;
  size_t n;
} kept[CLASSES];

#if !AWG_ASAN
static const size_t class_size[CLASSES] = {256, 512, 1024, 2048};

static unsigned class_of(size_t size) {
  for (unsigned c = 0; c < CLASSES; c++)
    if (size <= class_size[c]) return c;
  return CLASS_NONE;
}
#endif

void *lwip_mem_malloc(size_t size) {
#if AWG_ASAN
  return malloc(size);
#else
  unsigned c = class_of(size);
  if (c != CLASS_NONE && kept[c].head) {
    free_block *b = kept[c].head;
    kept[c].head = b->next;
    kept[c].n--;
    return b;
  }
  if (c != CLASS_NONE) size = class_size[c];
  if (size > SIZE_MAX - sizeof(block_head)) return NULL;
  block_head *h = malloc(sizeof *h + size);
  if (!h) return NULL;
  h->cls = c;
  return h + 1;
#endif
}

void *lwip_mem_calloc(size_t count, size_t size) {
  if (size && count > SIZE_MAX / size) return NULL;
  void *p = lwip_mem_malloc(count * size);
  if (p) memset(p, 0, count * size);
  return p;
}

void lwip_mem_free(void *p) {
#if AWG_ASAN
  free(p);
#else
  if (!p) return;
  block_head *h = (block_head *)p - 1;
  unsigned c = h->cls;
  if (c == CLASS_NONE || kept[c].n >= LWIP_MEM_KEEP) {
    free(h);
    return;
  }
  free_block *b = p;
  b->next = kept[c].head;
  kept[c].head = b;
  kept[c].n++;
#endif
}

size_t lwip_mem_kept(void) {
  size_t n = 0;
  for (unsigned c = 0; c < CLASSES; c++) n += kept[c].n;
  return n;
}
