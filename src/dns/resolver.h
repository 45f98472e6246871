/* A stub resolver that asks the configured DNS servers *through the tunnel* (lwIP UDP), never
 * the local system resolver: A and AAAA in parallel, a cache honouring TTLs (and negative
 * answers), retries across servers with a bounded total time. */
#ifndef AWGPROXY_DNS_RESOLVER_H
#define AWGPROXY_DNS_RESOLVER_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "config/config.h"
#include "dns/dns_msg.h"

#define RESOLVER_MAX_ADDRS 16

typedef struct resolver resolver;
typedef struct resolver_query resolver_query;

typedef struct {
  size_t n;
  dns_answer addrs[RESOLVER_MAX_ADDRS]; /* IPv6 and IPv4 interleaved, IPv6 first (RFC 8305) */
} resolver_result;

/* status: DNS_OK with res filled, DNS_ERR_NXDOMAIN / DNS_ERR_NODATA (no such name / no address),
 * DNS_ERR_SERVFAIL (servers failed or did not answer in time), DNS_ERR_NAME (invalid name). */
typedef void (*resolver_cb)(void *ctx, int status, const resolver_result *res);

/* servers: the config's DNS entries (may be empty: see docs, the public fallbacks are used).
 * Queries leave through nif, the tunnel's netif (NULL: lwIP's routing). */
struct netif;
resolver *resolver_create(uv_loop_t *loop, struct netif *nif, const cfg_ip *servers,
                          size_t n_servers);
void resolver_destroy(resolver *r);
/* From now on queries leave through nif to servers (a client that moved to another server of
 * several: client/server_set.h). The cache is emptied, since another server's DNS may answer
 * differently (a CDN's nearest address); queries under way finish where they started. */
void resolver_retarget(resolver *r, struct netif *nif, const cfg_ip *servers, size_t n_servers);
/* Resolves name; cb may run before this returns (cache hit). Returns a handle for cancel, or NULL
 * when cb already ran. */
resolver_query *resolver_lookup(resolver *r, const char *name, resolver_cb cb, void *ctx);
void resolver_cancel(resolver_query *q);

typedef struct {
  uint64_t queries, cache_hits, failures;
} resolver_stats;
void resolver_get_stats(const resolver *r, resolver_stats *out);

#endif
