/* The exit's DNS responder, message part: parsing a query that arrived at the server's tunnel
 * address and building the answer. Pure code over byte buffers; queries are hostile input. */
#ifndef AWGPROXY_EXIT_EXIT_DNS_H
#define AWGPROXY_EXIT_EXIT_DNS_H

#include <stddef.h>
#include <stdint.h>

#define EXIT_DNS_MAX_NAME 253 /* dotted, without the trailing dot */
#define EXIT_DNS_MAX_MSG 512  /* we never answer with more than plain DNS allows */
#define EXIT_DNS_TYPE_A 1
#define EXIT_DNS_TYPE_AAAA 28

#define EXIT_DNS_NOERROR 0
#define EXIT_DNS_FORMERR 1
#define EXIT_DNS_SERVFAIL 2
#define EXIT_DNS_NXDOMAIN 3
#define EXIT_DNS_NOTIMP 4
#define EXIT_DNS_REFUSED 5

typedef struct {
  uint16_t id, flags;
  uint16_t qtype, qclass;
  size_t qend;                      /* end of the question (0: no usable question) */
  char name[EXIT_DNS_MAX_NAME + 1]; /* dotted, "" for the root */
} exit_dns_query;

/* Parses msg. Returns -1 when nothing should be sent back (a response, or too short to carry an
 * ID), otherwise the RCODE to answer with: EXIT_DNS_NOERROR when q holds a question worth
 * resolving (class IN, a name of printable characters), or FORMERR / NOTIMP / REFUSED. */
int exit_dns_parse_query(const uint8_t *msg, size_t len, exit_dns_query *q);

/* Builds the response to msg (parsed into q) with rcode and, for NOERROR, the addresses of
 * q->qtype (4 or 16 bytes each, as many as fit in EXIT_DNS_MAX_MSG). Returns the length written
 * to out (cap >= EXIT_DNS_MAX_MSG), or 0 on error. */
size_t exit_dns_build_response(const uint8_t *msg, const exit_dns_query *q, int rcode,
                               const uint8_t (*addrs)[16], size_t n_addrs, uint32_t ttl,
                               uint8_t *out, size_t cap);

#endif
