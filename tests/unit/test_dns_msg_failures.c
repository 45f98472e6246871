/* DNS response parsing (src/dns/dns_msg.c), the failure paths: negative answers (NXDOMAIN,
 * SERVFAIL, NODATA with and without SOA, TC), responses to another query, bad arguments, and
 * hostile messages built by hand (bad pointers, names too long, wrong RDLENGTHs, lying counts,
 * every single-byte flip). Queries and ordinary answers: test_dns_msg.c; the message writer:
 * tests/unit/support/dns_msg_fixture.h. */
/* cmocka.h needs these standard headers first. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>
/* clang-format on */

#include "dns/dns_msg.h"
#include "dns_msg_fixture.h"

/* ---- negative answers and errors ---------------------------------------------------------- */

static void test_nxdomain(void **state) {
  dm_msgbuf m;
  dm_begin(&m, DM_FLAGS_OK | 3, DNS_TYPE_A);
  dm_soa_rr(&m, 900, 300);
  dm_set_counts(&m, 0, 1, 0);
  dm_result r;
  assert_int_equal(dm_parse(&m, DNS_TYPE_A, &r), DNS_ERR_NXDOMAIN);
  assert_int_equal(r.ttl, 300);
  dm_assert_prefixes_malformed(&m, "example.com", DNS_TYPE_A);

  /* Without the question an NXDOMAIN cannot be tied to our name. */
  dm_begin(&m, DM_FLAGS_OK | 3, DNS_TYPE_A);
  dm_set16(&m, 4, 0);
  m.n = 12;
  assert_int_equal(dm_parse(&m, DNS_TYPE_A, &r), DNS_ERR_MISMATCH);
}

static void test_servfail(void **state) {
  dm_msgbuf m;
  dm_result r;
  for (uint16_t rcode = 1; rcode < 16; rcode++) {
    if (rcode == 3) continue;
    dm_begin(&m, DM_FLAGS_OK | rcode, DNS_TYPE_A);
    assert_int_equal(dm_parse(&m, DNS_TYPE_A, &r), DNS_ERR_SERVFAIL);
    /* Some servers drop the question from failures. */
    dm_set16(&m, 4, 0);
    m.n = 12;
    assert_int_equal(dm_parse(&m, DNS_TYPE_A, &r), DNS_ERR_SERVFAIL);
  }
  /* A failure for someone else's question is not ours. */
  dm_begin_q(&m, DM_FLAGS_OK | 2, "example.net", DNS_TYPE_A);
  assert_int_equal(dm_parse(&m, DNS_TYPE_A, &r), DNS_ERR_MISMATCH);
}

static void test_nodata_with_soa(void **state) {
  dm_msgbuf m;
  dm_result r;
  dm_begin(&m, DM_FLAGS_OK, DNS_TYPE_AAAA);
  dm_soa_rr(&m, 3600, 300);
  dm_set_counts(&m, 0, 1, 0);
  assert_int_equal(dm_parse(&m, DNS_TYPE_AAAA, &r), DNS_ERR_NODATA);
  assert_int_equal(r.ttl, 300);
  dm_assert_prefixes_malformed(&m, "example.com", DNS_TYPE_AAAA);

  dm_begin(&m, DM_FLAGS_OK, DNS_TYPE_AAAA);
  dm_soa_rr(&m, 100, 300); /* the SOA's own TTL is smaller */
  dm_set_counts(&m, 0, 1, 0);
  assert_int_equal(dm_parse(&m, DNS_TYPE_AAAA, &r), DNS_ERR_NODATA);
  assert_int_equal(r.ttl, 100);

  /* Several SOAs: the smallest value wins, wherever it is. */
  dm_begin(&m, DM_FLAGS_OK, DNS_TYPE_AAAA);
  dm_soa_rr(&m, 3600, 30);
  dm_soa_rr(&m, 3600, 300);
  dm_set_counts(&m, 0, 2, 0);
  assert_int_equal(dm_parse(&m, DNS_TYPE_AAAA, &r), DNS_ERR_NODATA);
  assert_int_equal(r.ttl, 30);

  /* A CNAME to a name without AAAA: the negative TTL is capped by the CNAME. */
  dm_begin(&m, DM_FLAGS_OK, DNS_TYPE_AAAA);
  dm_put_ptr(&m, DM_QNAME_OFF);
  dm_cname_rr(&m, 45, "v4only.example.net");
  dm_soa_rr(&m, 3600, 300);
  dm_set_counts(&m, 1, 1, 0);
  assert_int_equal(dm_parse(&m, DNS_TYPE_AAAA, &r), DNS_ERR_NODATA);
  assert_int_equal(r.ttl, 45);
}

static void test_nodata_without_soa(void **state) {
  dm_msgbuf m;
  dm_result r;
  dm_begin(&m, DM_FLAGS_OK, DNS_TYPE_A);
  assert_int_equal(dm_parse(&m, DNS_TYPE_A, &r), DNS_ERR_NODATA);
  assert_int_equal(r.ttl, 60);
  /* Records of another type or class, or for another owner, are no answer. */
  dm_begin(&m, DM_FLAGS_OK, DNS_TYPE_A);
  dm_put_ptr(&m, DM_QNAME_OFF);
  size_t at = dm_rr_head(&m, 16 /* TXT */, 10);
  dm_put_bytes(&m, "\x02hi", 3);
  dm_rr_end(&m, at);
  dm_put_ptr(&m, DM_QNAME_OFF);
  dm_put16(&m, DNS_TYPE_A);
  dm_put16(&m, 3); /* CH: its A RDATA is not 4 bytes, and must not be judged as IN */
  dm_put32(&m, 10);
  dm_put16(&m, 6);
  dm_put_bytes(&m, "\x01x\xc0\x0c\x12\x34", 6);
  dm_put_name(&m, "example.org");
  dm_a_rr(&m, 10, 1, 2, 3, 4);
  dm_set_counts(&m, 3, 0, 0);
  assert_int_equal(dm_parse(&m, DNS_TYPE_A, &r), DNS_ERR_NODATA);
  assert_int_equal(r.ttl, 60);
}

static void test_truncated_bit(void **state) {
  dm_msgbuf m;
  dm_result r;
  dm_begin(&m, DM_FLAGS_OK | 0x0200, DNS_TYPE_A);
  assert_int_equal(dm_parse(&m, DNS_TYPE_A, &r), DNS_ERR_TRUNCATED);
  m.n = 12; /* even with the rest cut off */
  assert_int_equal(dm_parse(&m, DNS_TYPE_A, &r), DNS_ERR_TRUNCATED);
}

static void test_header_mismatch(void **state) {
  dm_msgbuf m;
  dm_result r;
  dm_begin(&m, DM_FLAGS_OK, DNS_TYPE_A);
  dm_put_ptr(&m, DM_QNAME_OFF);
  dm_a_rr(&m, 10, 1, 2, 3, 4);
  dm_set_counts(&m, 1, 0, 0);
  assert_int_equal(dm_parse(&m, DNS_TYPE_A, &r), DNS_OK);

  dm_set16(&m, 0, DM_ID + 1);
  assert_int_equal(dm_parse(&m, DNS_TYPE_A, &r), DNS_ERR_MISMATCH);
  dm_set16(&m, 0, DM_ID);
  dm_set16(&m, 2, 0x0100); /* QR=0: our own query reflected */
  assert_int_equal(dm_parse(&m, DNS_TYPE_A, &r), DNS_ERR_MISMATCH);
  dm_set16(&m, 2, DM_FLAGS_OK | 0x1000); /* OPCODE 2 */
  assert_int_equal(dm_parse(&m, DNS_TYPE_A, &r), DNS_ERR_MISMATCH);
  dm_set16(&m, 2, DM_FLAGS_OK);
  dm_set16(&m, 4, 2);
  assert_int_equal(dm_parse(&m, DNS_TYPE_A, &r), DNS_ERR_MISMATCH);
  dm_set16(&m, 4, 0);
  assert_int_equal(dm_parse(&m, DNS_TYPE_A, &r), DNS_ERR_MISMATCH);
}

static void test_question_mismatch(void **state) {
  dm_msgbuf m;
  dm_result r;
  dm_begin_q(&m, DM_FLAGS_OK, "example.org", DNS_TYPE_A);
  assert_int_equal(dm_parse(&m, DNS_TYPE_A, &r), DNS_ERR_MISMATCH);
  dm_begin_q(&m, DM_FLAGS_OK, "www.example.com", DNS_TYPE_A);
  assert_int_equal(dm_parse(&m, DNS_TYPE_A, &r), DNS_ERR_MISMATCH);
  dm_begin_q(&m, DM_FLAGS_OK, "example.com", DNS_TYPE_AAAA);
  assert_int_equal(dm_parse(&m, DNS_TYPE_A, &r), DNS_ERR_MISMATCH);
  dm_begin(&m, DM_FLAGS_OK, DNS_TYPE_A);
  dm_set16(&m, m.n - 2, 3); /* QCLASS CH */
  assert_int_equal(dm_parse(&m, DNS_TYPE_A, &r), DNS_ERR_MISMATCH);
}

static void test_bad_arguments(void **state) {
  dm_msgbuf m;
  dm_result r;
  dm_begin(&m, DM_FLAGS_OK, DNS_TYPE_A);
  assert_int_equal(dm_parse_len(&m, m.n, "bad..name", DNS_TYPE_A, &r), DNS_ERR_NAME);
  assert_int_equal(dm_parse_len(&m, m.n, "", DNS_TYPE_A, &r), DNS_ERR_NAME);
  assert_int_equal(dm_parse(&m, DM_T_CNAME, &r), DNS_ERR_MISMATCH);
  assert_int_equal(dns_parse_response(NULL, 0, DM_ID, "example.com", DNS_TYPE_A, r.a, &r.n, &r.ttl),
                   DNS_ERR_MALFORMED);
}

/* ---- malformed ---------------------------------------------------------------------------- */

/* A response whose single answer has owner bytes `owner` (n bytes) and an A record. */
static dns_status parse_owner(const void *owner, size_t n) {
  dm_msgbuf m;
  dm_begin(&m, DM_FLAGS_OK, DNS_TYPE_A);
  dm_put_bytes(&m, owner, n);
  dm_a_rr(&m, 10, 1, 2, 3, 4);
  dm_set_counts(&m, 1, 0, 0);
  dm_result r;
  return dm_parse(&m, DNS_TYPE_A, &r);
}

static void test_bad_pointers(void **state) {
  /* The answer owner starts at offset 29 (12 + 13 + 4). */
  assert_int_equal(parse_owner("\xc0\x0c", 2), DNS_OK);
  assert_int_equal(parse_owner("\xc0\x1d", 2), DNS_ERR_MALFORMED);      /* to itself */
  assert_int_equal(parse_owner("\x01x\xc0\x1d", 4), DNS_ERR_MALFORMED); /* loop via a label */
  assert_int_equal(parse_owner("\xc0\x1f", 2), DNS_ERR_MALFORMED);      /* forward */
  assert_int_equal(parse_owner("\xc0\xff", 2), DNS_ERR_MALFORMED);      /* far forward */
  assert_int_equal(parse_owner("\xff\xff", 2), DNS_ERR_MALFORMED);
  /* Into the header: offset 4 holds 00 01 (QDCOUNT), which would read as the root name. */
  assert_int_equal(parse_owner("\xc0\x04", 2), DNS_ERR_MALFORMED);
  /* Label types 01 and 10 (RFC 6891 §5, RFC 2673): not lengths 64 and 128, even when that many
   * bytes and a root label follow. */
  uint8_t odd[1 + 128 + 1] = {0};
  memset(odd + 1, 'q', 128);
  odd[0] = 0x40;
  assert_int_equal(parse_owner(odd, 1 + 64 + 1), DNS_ERR_MALFORMED);
  odd[0] = 0x80;
  assert_int_equal(parse_owner(odd, 1 + 128 + 1), DNS_ERR_MALFORMED);

  /* A real pointer cycle, stored in a TXT record's RDATA at R (offset 41): R holds a pointer to
   * R+2 and R+2 a pointer back to R. The next owner enters the cycle at R+2. */
  dm_msgbuf m;
  dm_begin(&m, DM_FLAGS_OK, DNS_TYPE_A);
  dm_put_ptr(&m, DM_QNAME_OFF);
  size_t at = dm_rr_head(&m, 16 /* TXT */, 10);
  size_t cycle = m.n;
  assert_int_equal(cycle, 41);
  dm_put_ptr(&m, cycle + 2);
  dm_put_ptr(&m, cycle);
  dm_rr_end(&m, at);
  dm_put_ptr(&m, cycle + 2);
  dm_a_rr(&m, 10, 1, 2, 3, 4);
  dm_set_counts(&m, 2, 0, 0);
  dm_result r;
  assert_int_equal(dm_parse(&m, DNS_TYPE_A, &r), DNS_ERR_MALFORMED);
}

/* Names stacked from labels on pointers: three 63-byte labels on example.com (13 bytes) make
 * 205 bytes; a fourth label of 49 bytes makes 255 (the limit), of 50 bytes 256. */
static dns_status parse_stacked(size_t last_label) {
  char label[64];
  dm_msgbuf m;
  dm_begin(&m, DM_FLAGS_OK, DNS_TYPE_A);
  size_t prev = DM_QNAME_OFF;
  for (int i = 0; i < 4; i++) {
    size_t n = i < 3 ? 63 : last_label;
    memset(label, 'z', n);
    label[n] = '\0';
    size_t at = dm_put_labels(&m, label);
    dm_put_ptr(&m, prev);
    prev = at;
    dm_a_rr(&m, 10, 1, 2, 3, 4);
  }
  dm_set_counts(&m, 0, 0, 4); /* additional records: only their framing matters */
  dm_result r;
  return dm_parse(&m, DNS_TYPE_A, &r);
}

static void test_name_too_long_via_pointers(void **state) {
  assert_int_equal(parse_stacked(49), DNS_ERR_NODATA);
  assert_int_equal(parse_stacked(50), DNS_ERR_MALFORMED);
  assert_int_equal(parse_stacked(63), DNS_ERR_MALFORMED);
}

static void test_bad_rdlength(void **state) {
  dm_msgbuf m;
  dm_result r;
  dm_begin(&m, DM_FLAGS_OK, DNS_TYPE_A);
  dm_put_ptr(&m, DM_QNAME_OFF);
  size_t at = dm_rr_head(&m, DNS_TYPE_A, 10);
  dm_put_bytes(&m, "\x01\x02\x03\x04\x05", 5);
  dm_rr_end(&m, at);
  dm_set_counts(&m, 1, 0, 0);
  assert_int_equal(dm_parse(&m, DNS_TYPE_A, &r), DNS_ERR_MALFORMED);

  dm_begin(&m, DM_FLAGS_OK, DNS_TYPE_AAAA);
  dm_put_ptr(&m, DM_QNAME_OFF);
  at = dm_rr_head(&m, DNS_TYPE_AAAA, 10);
  dm_put_bytes(&m, "\x01\x02\x03\x04", 4);
  dm_rr_end(&m, at);
  dm_set_counts(&m, 1, 0, 0);
  assert_int_equal(dm_parse(&m, DNS_TYPE_AAAA, &r), DNS_ERR_MALFORMED);

  /* RDLENGTH running past the end of the message. */
  dm_begin(&m, DM_FLAGS_OK, DNS_TYPE_A);
  dm_put_ptr(&m, DM_QNAME_OFF);
  dm_a_rr(&m, 10, 1, 2, 3, 4);
  dm_set16(&m, m.n - 6, 0xffff);
  dm_set_counts(&m, 1, 0, 0);
  assert_int_equal(dm_parse(&m, DNS_TYPE_A, &r), DNS_ERR_MALFORMED);

  /* A CNAME whose target does not fill its RDATA. */
  dm_begin(&m, DM_FLAGS_OK, DNS_TYPE_A);
  dm_put_ptr(&m, DM_QNAME_OFF);
  at = dm_rr_head(&m, DM_T_CNAME, 10);
  dm_put_name(&m, "x.test");
  dm_put8(&m, 0);
  dm_rr_end(&m, at);
  dm_set_counts(&m, 1, 0, 0);
  assert_int_equal(dm_parse(&m, DNS_TYPE_A, &r), DNS_ERR_MALFORMED);
}

static void test_bad_soa(void **state) {
  dm_msgbuf m;
  dm_result r;
  for (int delta = -1; delta <= 1; delta += 2) {
    dm_begin(&m, DM_FLAGS_OK, DNS_TYPE_A);
    size_t at = dm_soa_rr(&m, 3600, 300);
    size_t rdlen = m.n - at - 2;
    if (delta < 0) {
      m.n--; /* MINIMUM one byte short */
    } else {
      dm_put8(&m, 0); /* one byte too many */
    }
    dm_set16(&m, at, (uint16_t)(rdlen + (size_t)delta));
    dm_set_counts(&m, 0, 1, 0);
    assert_int_equal(dm_parse(&m, DNS_TYPE_A, &r), DNS_ERR_MALFORMED);
  }
}

static void test_lying_counts(void **state) {
  dm_msgbuf m;
  dm_result r;
  dm_begin(&m, DM_FLAGS_OK, DNS_TYPE_A);
  dm_put_ptr(&m, DM_QNAME_OFF);
  dm_a_rr(&m, 10, 1, 2, 3, 4);
  dm_set_counts(&m, 2, 0, 0);
  assert_int_equal(dm_parse(&m, DNS_TYPE_A, &r), DNS_ERR_MALFORMED);
  dm_set_counts(&m, 1, 1, 0);
  assert_int_equal(dm_parse(&m, DNS_TYPE_A, &r), DNS_ERR_MALFORMED);
  dm_set_counts(&m, 1, 0, 0xffff);
  assert_int_equal(dm_parse(&m, DNS_TYPE_A, &r), DNS_ERR_MALFORMED);
  dm_set_counts(&m, 0xffff, 0xffff, 0xffff);
  assert_int_equal(dm_parse(&m, DNS_TYPE_A, &r), DNS_ERR_MALFORMED);
}

/* Every single-byte change of a valid response: any status, no crash, answers consistent. */
static void test_byte_flips(void **state) {
  dm_msgbuf m;
  dm_begin(&m, DM_FLAGS_OK, DNS_TYPE_A);
  dm_put_ptr(&m, DM_QNAME_OFF);
  size_t at = dm_rr_head(&m, DM_T_CNAME, 600);
  size_t www = dm_put_labels(&m, "www");
  dm_put_ptr(&m, DM_QNAME_OFF);
  dm_rr_end(&m, at);
  dm_put_ptr(&m, www);
  dm_a_rr(&m, 300, 198, 51, 100, 1);
  dm_soa_rr(&m, 3600, 300);
  dm_set_counts(&m, 2, 1, 0);
  dm_result r;
  assert_int_equal(dm_parse(&m, DNS_TYPE_A, &r), DNS_OK);
  static const uint8_t values[] = {0x00, 0x01, 0x3f, 0x40, 0x80, 0xc0, 0xff};
  for (size_t i = 0; i < m.n; i++) {
    uint8_t saved = m.b[i];
    for (size_t v = 0; v < sizeof values; v++) {
      m.b[i] = values[v];
      dns_status st = dm_parse(&m, DNS_TYPE_A, &r);
      if (st == DNS_OK) {
        assert_true(r.n >= 1 && r.n <= DNS_MAX_ANSWERS);
        assert_true(r.ttl <= r.a[0].ttl);
      }
    }
    m.b[i] = saved;
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_nxdomain),          cmocka_unit_test(test_servfail),
      cmocka_unit_test(test_nodata_with_soa),   cmocka_unit_test(test_nodata_without_soa),
      cmocka_unit_test(test_truncated_bit),     cmocka_unit_test(test_header_mismatch),
      cmocka_unit_test(test_question_mismatch), cmocka_unit_test(test_bad_arguments),
      cmocka_unit_test(test_bad_pointers),      cmocka_unit_test(test_name_too_long_via_pointers),
      cmocka_unit_test(test_bad_rdlength),      cmocka_unit_test(test_bad_soa),
      cmocka_unit_test(test_lying_counts),      cmocka_unit_test(test_byte_flips),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
