/* Test fixture for src/dns/dns_msg.c: a tiny writer of DNS messages built by hand (responses to
 * the query for DM_ID, example.com unless told otherwise, hostile ones included) and helpers that
 * parse them with dns_parse_response. Helpers fail the running cmocka test on unexpected
 * results. */
#ifndef AWGPROXY_TEST_DNS_MSG_FIXTURE_H
#define AWGPROXY_TEST_DNS_MSG_FIXTURE_H

#include <stddef.h>
#include <stdint.h>

#include "dns/dns_msg.h"

#define DM_ID 0x1234
#define DM_FLAGS_OK 0x8180 /* QR, RD, RA; NOERROR */
#define DM_QNAME_OFF 12    /* where the question name starts in every response built here */
#define DM_T_CNAME 5
#define DM_T_SOA 6

/* ---- the message writer ------------------------------------------------------------------- */

typedef struct {
  uint8_t b[4096];
  size_t n;
} dm_msgbuf;

void dm_put8(dm_msgbuf *m, uint8_t v);
void dm_put16(dm_msgbuf *m, uint16_t v);
void dm_put32(dm_msgbuf *m, uint32_t v);
void dm_put_bytes(dm_msgbuf *m, const void *p, size_t n);
/* The labels of a dotted name, without the root: follow with dm_put8(m, 0) or dm_put_ptr. Returns
 * their offset. */
size_t dm_put_labels(dm_msgbuf *m, const char *dotted);
/* A whole uncompressed name; returns its offset (a target for later pointers). */
size_t dm_put_name(dm_msgbuf *m, const char *dotted);
void dm_put_ptr(dm_msgbuf *m, size_t target);
/* Overwrites the 16-bit value at offset at. */
void dm_set16(dm_msgbuf *m, size_t at, uint16_t v);
/* ANCOUNT, NSCOUNT, ARCOUNT. */
void dm_set_counts(dm_msgbuf *m, uint16_t an, uint16_t ns, uint16_t ar);

/* Header (ID DM_ID) and question for (qname, qtype); the section counts start at 0. */
void dm_begin_q(dm_msgbuf *m, uint16_t flags, const char *qname, uint16_t qtype);
/* dm_begin_q for example.com. */
void dm_begin(dm_msgbuf *m, uint16_t flags, uint16_t qtype);

/* TYPE, CLASS IN, TTL and a placeholder RDLENGTH (after the owner); returns where RDLENGTH is. */
size_t dm_rr_head(dm_msgbuf *m, uint16_t type, uint32_t ttl);
/* Sets the RDLENGTH at rdlen_at to what was written since. */
void dm_rr_end(dm_msgbuf *m, size_t rdlen_at);
/* An A record a.b.c.d (after the owner). */
void dm_a_rr(dm_msgbuf *m, uint32_t ttl, uint8_t a, uint8_t b, uint8_t c, uint8_t d);
/* A CNAME whose target is written uncompressed (after the owner); returns the target's offset. */
size_t dm_cname_rr(dm_msgbuf *m, uint32_t ttl, const char *target);
/* example.com SOA ns1.example.com hostmaster.example.com, with the given TTL and MINIMUM (owner
 * included); returns where its RDLENGTH is. */
size_t dm_soa_rr(dm_msgbuf *m, uint32_t ttl, uint32_t minimum);

/* ---- parsing helpers ---------------------------------------------------------------------- */

typedef struct {
  dns_answer a[DNS_MAX_ANSWERS];
  size_t n;
  uint32_t ttl;
} dm_result;

/* Parses exactly len bytes of m (as the response to DM_ID, name, qtype) from a heap copy of that
 * size, so ASan sees any overread. Asserts that a failure reports no answers. */
dns_status dm_parse_len(const dm_msgbuf *m, size_t len, const char *name, uint16_t qtype,
                        dm_result *r);
/* dm_parse_len of the whole message, for example.com. */
dns_status dm_parse(const dm_msgbuf *m, uint16_t qtype, dm_result *r);

/* Asserts that a is the IPv4 address w.x.y.z with that TTL. */
void dm_assert_a(const dns_answer *a, uint8_t w, uint8_t x, uint8_t y, uint8_t z, uint32_t ttl);
/* Every proper prefix of a valid message is malformed (the counts promise more), never a crash. */
void dm_assert_prefixes_malformed(const dm_msgbuf *m, const char *name, uint16_t qtype);

#endif
