/* Counts the workers of a sharded server add up across processes, so that server-wide caps
 * ([Server] MaxSessions, MaxConnections) hold for the server as a whole: one slot per worker in
 * a shared memory mapping the supervisor creates and hands every worker as a descriptor. Each
 * worker writes only its own slot and reads the others' (C11 atomics, lock-free on every target
 * we build for). Two workers admitting at the same instant may each pass a cap by one. */
#ifndef AWGPROXY_UTIL_SHARD_COUNTS_H
#define AWGPROXY_UTIL_SHARD_COUNTS_H

#include <stdint.h>

typedef enum { SHARD_COUNT_SESSIONS, SHARD_COUNT_EXIT_CONNS, SHARD_COUNT_KINDS } shard_count_kind;

typedef struct shard_counts shard_counts;

/* Supervisor: a zeroed region for n workers; returns its descriptor (close-on-exec), or -1. */
int shard_counts_create(unsigned n);
/* Worker `self` of n: maps the region behind fd (the descriptor stays the caller's). NULL on
 * failure. */
shard_counts *shard_counts_map(int fd, unsigned self, unsigned n);
void shard_counts_unmap(shard_counts *c);
/* Publishes this worker's own count. c may be NULL (not sharded): nothing happens. */
void shard_counts_set(shard_counts *c, shard_count_kind k, uint64_t own);
/* The sum of the other workers' counts (0 when c is NULL). */
uint64_t shard_counts_others(const shard_counts *c, shard_count_kind k);

#endif
