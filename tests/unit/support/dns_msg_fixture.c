#include "dns_msg_fixture.h"

/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>
/* clang-format on */

#include <stdlib.h>
#include <sys/socket.h>

/* ---- the message writer ------------------------------------------------------------------- */

void dm_put8(dm_msgbuf *m, uint8_t v) {
  assert_true(m->n < sizeof m->b);
  m->b[m->n++] = v;
}

void dm_put16(dm_msgbuf *m, uint16_t v) {
  dm_put8(m, (uint8_t)(v >> 8));
  dm_put8(m, (uint8_t)v);
}

void dm_put32(dm_msgbuf *m, uint32_t v) {
  dm_put16(m, (uint16_t)(v >> 16));
  dm_put16(m, (uint16_t)v);
}

void dm_put_bytes(dm_msgbuf *m, const void *p, size_t n) {
  for (size_t i = 0; i < n; i++) dm_put8(m, ((const uint8_t *)p)[i]);
}

size_t dm_put_labels(dm_msgbuf *m, const char *dotted) {
  size_t at = m->n;
  while (*dotted) {
    size_t n = strcspn(dotted, ".");
    dm_put8(m, (uint8_t)n);
    dm_put_bytes(m, dotted, n);
    dotted += n;
    if (*dotted == '.') dotted++;
  }
  return at;
}

size_t dm_put_name(dm_msgbuf *m, const char *dotted) {
  size_t at = dm_put_labels(m, dotted);
  dm_put8(m, 0);
  return at;
}

void dm_put_ptr(dm_msgbuf *m, size_t target) { dm_put16(m, (uint16_t)(0xc000 | target)); }

void dm_set16(dm_msgbuf *m, size_t at, uint16_t v) {
  m->b[at] = (uint8_t)(v >> 8);
  m->b[at + 1] = (uint8_t)v;
}

void dm_set_counts(dm_msgbuf *m, uint16_t an, uint16_t ns, uint16_t ar) {
  dm_set16(m, 6, an);
  dm_set16(m, 8, ns);
  dm_set16(m, 10, ar);
}

void dm_begin_q(dm_msgbuf *m, uint16_t flags, const char *qname, uint16_t qtype) {
  m->n = 0;
  dm_put16(m, DM_ID);
  dm_put16(m, flags);
  dm_put16(m, 1);
  dm_put16(m, 0);
  dm_put16(m, 0);
  dm_put16(m, 0);
  dm_put_name(m, qname);
  dm_put16(m, qtype);
  dm_put16(m, 1);
}

void dm_begin(dm_msgbuf *m, uint16_t flags, uint16_t qtype) {
  dm_begin_q(m, flags, "example.com", qtype);
}

size_t dm_rr_head(dm_msgbuf *m, uint16_t type, uint32_t ttl) {
  dm_put16(m, type);
  dm_put16(m, 1);
  dm_put32(m, ttl);
  size_t at = m->n;
  dm_put16(m, 0);
  return at;
}

void dm_rr_end(dm_msgbuf *m, size_t rdlen_at) {
  dm_set16(m, rdlen_at, (uint16_t)(m->n - rdlen_at - 2));
}

void dm_a_rr(dm_msgbuf *m, uint32_t ttl, uint8_t a, uint8_t b, uint8_t c, uint8_t d) {
  size_t at = dm_rr_head(m, DNS_TYPE_A, ttl);
  const uint8_t ip[4] = {a, b, c, d};
  dm_put_bytes(m, ip, 4);
  dm_rr_end(m, at);
}

size_t dm_cname_rr(dm_msgbuf *m, uint32_t ttl, const char *target) {
  size_t at = dm_rr_head(m, DM_T_CNAME, ttl);
  size_t name_at = dm_put_name(m, target);
  dm_rr_end(m, at);
  return name_at;
}

size_t dm_soa_rr(dm_msgbuf *m, uint32_t ttl, uint32_t minimum) {
  dm_put_ptr(m, DM_QNAME_OFF);
  size_t at = dm_rr_head(m, DM_T_SOA, ttl);
  dm_put_labels(m, "ns1");
  dm_put_ptr(m, DM_QNAME_OFF);
  dm_put_labels(m, "hostmaster");
  dm_put_ptr(m, DM_QNAME_OFF);
  dm_put32(m, 2024010101);
  dm_put32(m, 7200);
  dm_put32(m, 900);
  dm_put32(m, 1209600);
  dm_put32(m, minimum);
  dm_rr_end(m, at);
  return at;
}

/* ---- parsing helpers ---------------------------------------------------------------------- */

dns_status dm_parse_len(const dm_msgbuf *m, size_t len, const char *name, uint16_t qtype,
                        dm_result *r) {
  uint8_t *copy = malloc(len ? len : 1);
  assert_non_null(copy);
  memcpy(copy, m->b, len);
  memset(r, 0xa5, sizeof *r);
  dns_status st = dns_parse_response(copy, len, DM_ID, name, qtype, r->a, &r->n, &r->ttl);
  free(copy);
  if (st != DNS_OK) assert_int_equal(r->n, 0);
  return st;
}

dns_status dm_parse(const dm_msgbuf *m, uint16_t qtype, dm_result *r) {
  return dm_parse_len(m, m->n, "example.com", qtype, r);
}

void dm_assert_a(const dns_answer *a, uint8_t w, uint8_t x, uint8_t y, uint8_t z, uint32_t ttl) {
  const uint8_t ip[4] = {w, x, y, z};
  assert_int_equal(a->family, AF_INET);
  assert_memory_equal(a->addr, ip, 4);
  assert_int_equal(a->ttl, ttl);
}

void dm_assert_prefixes_malformed(const dm_msgbuf *m, const char *name, uint16_t qtype) {
  dm_result r;
  for (size_t len = 0; len < m->n; len++) {
    dns_status st = dm_parse_len(m, len, name, qtype, &r);
    if (st != DNS_ERR_MALFORMED) fail_msg("prefix of %zu/%zu bytes gave %d", len, m->n, st);
  }
}
