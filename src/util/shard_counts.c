#define _GNU_SOURCE /* memfd_create */
#include "util/shard_counts.h"

#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#define SHARD_COUNTS_MAX_WORKERS 64

typedef struct {
  _Atomic uint64_t v[SHARD_COUNT_KINDS];
} slot;

struct shard_counts {
  slot *slots; /* [n], shared */
  unsigned self, n;
};

static size_t region_size(unsigned n) { return (size_t)n * sizeof(slot); }

int shard_counts_create(unsigned n) {
  if (n < 1 || n > SHARD_COUNTS_MAX_WORKERS) return -1;
  int fd = -1;
#if defined(__linux__) && defined(MFD_CLOEXEC)
  fd = memfd_create("awgproxy-shard-counts", MFD_CLOEXEC);
#endif
  if (fd < 0) {
    /* Elsewhere: an anonymous temporary file (unlinked at once, so only the descriptor names
     * it). */
    char path[] = "/tmp/awgproxy-counts-XXXXXX";
    fd = mkstemp(path);
    if (fd < 0) return -1;
    unlink(path);
    fcntl(fd, F_SETFD, FD_CLOEXEC);
  }
  if (ftruncate(fd, (off_t)region_size(n)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

shard_counts *shard_counts_map(int fd, unsigned self, unsigned n) {
  if (n < 1 || n > SHARD_COUNTS_MAX_WORKERS || self >= n) return NULL;
  shard_counts *c = calloc(1, sizeof *c);
  if (!c) return NULL;
  void *p = mmap(NULL, region_size(n), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) {
    free(c);
    return NULL;
  }
  c->slots = p;
  c->self = self;
  c->n = n;
  for (int k = 0; k < SHARD_COUNT_KINDS; k++) atomic_store(&c->slots[self].v[k], 0);
  return c;
}

void shard_counts_unmap(shard_counts *c) {
  if (!c) return;
  munmap(c->slots, region_size(c->n));
  free(c);
}

void shard_counts_set(shard_counts *c, shard_count_kind k, uint64_t own) {
  if (c) atomic_store_explicit(&c->slots[c->self].v[k], own, memory_order_relaxed);
}

uint64_t shard_counts_others(const shard_counts *c, shard_count_kind k) {
  if (!c) return 0;
  uint64_t sum = 0;
  for (unsigned i = 0; i < c->n; i++)
    if (i != c->self) sum += atomic_load_explicit(&c->slots[i].v[k], memory_order_relaxed);
  return sum;
}
