/* DNS messages (RFC 1035) for our stub resolver: building A/AAAA queries and parsing responses,
 * pure code over byte buffers (responses are hostile input: every length and pointer is
 * bounded; compression loops are rejected). */
#ifndef AWGPROXY_DNS_MSG_H
#define AWGPROXY_DNS_MSG_H

#include <stddef.h>
#include <stdint.h>

#define DNS_TYPE_A 1
#define DNS_TYPE_AAAA 28
#define DNS_MAX_ANSWERS 16
#define DNS_MAX_NAME 255

typedef enum {
  DNS_OK = 0,
  DNS_ERR_MALFORMED = -1, /* truncated, bad pointer, loop, wrong lengths */
  DNS_ERR_MISMATCH = -2,  /* not a response to this query (id, question) */
  DNS_ERR_NXDOMAIN = -3,  /* RCODE 3 */
  DNS_ERR_SERVFAIL = -4,  /* RCODE 2 or any other non-zero RCODE */
  DNS_ERR_NODATA = -5,    /* NOERROR but no record of the asked type */
  DNS_ERR_NAME = -6,      /* the name to query is not a valid DNS name */
  DNS_ERR_TRUNCATED = -7, /* TC bit set (retry over TCP) */
} dns_status;

typedef struct {
  int family; /* AF_INET or AF_INET6 */
  uint8_t addr[16];
  uint32_t ttl; /* seconds */
} dns_answer;

/* Nonzero when name can be queried: a dotted name (optional trailing dot) of 1..63-byte labels,
 * at most DNS_MAX_NAME bytes encoded, whose bytes are printable ASCII other than space and '.'
 * (wider than host-name LDH syntax on purpose: internal names use '_' and other odd characters).
 * "" and "." are rejected. dns_build_query accepts exactly these names. */
int dns_name_valid(const char *name);

/* Builds a query with RD=1 for name (a dotted name, optional trailing dot) into out; returns the
 * length or a negative dns_status. */
int dns_build_query(uint16_t id, const char *name, uint16_t qtype, uint8_t *out, size_t cap);

/* Parses a response to (id, name, qtype); fills up to DNS_MAX_ANSWERS addresses of that type
 * (CNAME chains are followed by accepting records of qtype for any owner reached through the
 * CNAMEs in the answer section). *min_ttl = smallest TTL seen (for negative caching: the SOA
 * minimum from the authority section when there is no answer, else 60). */
dns_status dns_parse_response(const uint8_t *msg, size_t len, uint16_t id, const char *name,
                              uint16_t qtype, dns_answer *answers, size_t *n_answers,
                              uint32_t *min_ttl);

#endif
