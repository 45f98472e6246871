/* libFuzzer target for the DNS message code: responses come from the network (through the
 * tunnel), names come from SOCKS clients. Both are untrusted.
 *
 * 1. The input is parsed as a response to a fixed query, for A and for AAAA, as is.
 * 2. The same bytes are parsed again behind a header and question that already match the query
 *    (the input supplies the flags, the section counts and the body), so the fuzzer spends its
 *    time in the record sections instead of guessing the id and the question; and again with a
 *    valid CNAME + address pair, or a valid SOA, ahead of the input's records, so that the chain
 *    following, collecting and negative-TTL code always runs, with the input's records mixed in.
 * 3. The input, cut at the first NUL and capped, is used as a name: dns_build_query must agree
 *    with dns_name_valid, fit exactly the length it reports, and its output turned into a
 *    response (QR set) must parse back as NODATA for the same name.
 * Invariants are checked with abort() so that the fuzzer reports them as crashes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "dns/dns_msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)       \
  do {                    \
    if (!(cond)) abort(); \
  } while (0)

#define ID 0x5a17
#define NAME "example.com"
#define MAX_NAME_INPUT 300 /* longer than any valid name, so the length limit is exercised */
#define MAX_QUERY (12 + DNS_MAX_NAME + 4)

/* Parses and checks the invariants of the result; returns the status, *ttl the min_ttl. */
static dns_status check_parse(const uint8_t *msg, size_t len, uint16_t qtype, uint32_t *ttl) {
  dns_answer ans[DNS_MAX_ANSWERS];
  size_t n = 12345;
  *ttl = 12345;
  dns_status st = dns_parse_response(msg, len, ID, NAME, qtype, ans, &n, ttl);
  CHECK(st <= DNS_OK && st >= DNS_ERR_TRUNCATED && st != DNS_ERR_NAME);
  if (st != DNS_OK) {
    CHECK(n == 0);
    return st;
  }
  CHECK(n >= 1 && n <= DNS_MAX_ANSWERS);
  for (size_t i = 0; i < n; i++) {
    CHECK(ans[i].family == (qtype == DNS_TYPE_A ? AF_INET : AF_INET6));
    CHECK(ans[i].ttl <= 0x7fffffffu && *ttl <= ans[i].ttl);
  }
  return st;
}

/* What check_framed may put between the question and the input's records. */
typedef enum {
  PRIME_NONE,
  PRIME_ANSWER, /* example.com CNAME w.example.com, then w.example.com's address: ANCOUNT += 2 */
  PRIME_SOA,    /* example.com SOA, TTL 3600, MINIMUM 300; ANCOUNT = 0, NSCOUNT += 1 */
} prime;

/* The primer's records start at offset 29, after the 12-byte header and 17-byte question. */
static size_t put_primer(uint8_t *p, prime kind, uint16_t qtype) {
  static const uint8_t cname[] = {0xc0, 12, 0, 5, 0, 1, 0, 0, 0x0e, 0x10, 0, 4, 1, 'w', 0xc0, 12};
  static const uint8_t soa[] = {
      0xc0, 12, 0, 6, 0, 1, 0, 0, 0x0e, 0x10, 0, 27, 2, 'n', 's', 0xc0, 12, /* MNAME ns */
      0xc0, 12, 0, 0, 0, 1, 0, 0, 0,    2,    0, 0,  0, 3,   0,   0,    0,  4, 0, 0, 1, 0x2c};
  if (kind == PRIME_SOA) {
    memcpy(p, soa, sizeof soa);
    return sizeof soa;
  }
  if (kind == PRIME_NONE) return 0;
  size_t rdlen = qtype == DNS_TYPE_A ? 4 : 16;
  /* The CNAME target "w" sits at 29 + 12 = 41. */
  const uint8_t head[] = {0xc0, 41, 0, (uint8_t)qtype, 0, 1, 0, 0, 1, 0x2c, 0, (uint8_t)rdlen};
  memcpy(p, cname, sizeof cname);
  memcpy(p + sizeof cname, head, sizeof head);
  memset(p + sizeof cname + sizeof head, 0x42, rdlen);
  return sizeof cname + sizeof head + rdlen;
}

/* Flags and counts from the input, adjusted so that the parse reaches the sections and the
 * primer is counted. */
static void put_header(uint8_t *msg, const uint8_t *data, size_t hdr_in, prime kind) {
  msg[0] = ID >> 8;
  msg[1] = ID & 0xff;
  msg[5] = 1; /* QDCOUNT */
  if (hdr_in >= 2) memcpy(msg + 2, data, 2);
  if (hdr_in > 2) memcpy(msg + 6, data + 2, hdr_in - 2);
  msg[2] |= 0x80;           /* QR */
  msg[2] &= (uint8_t)~0x7a; /* OPCODE 0, TC 0: both end the parse before the sections */
  if (kind == PRIME_ANSWER) {
    msg[3] &= 0xf0; /* NOERROR */
    if (msg[7] < 0xfe) msg[7] += 2;
  } else if (kind == PRIME_SOA) {
    msg[6] = msg[7] = 0;
    if (msg[9] < 0xff) msg[9] += 1;
  }
}

/* Our header and question [+ a primer] + the rest of the input, in an exactly sized heap buffer
 * so that ASan sees any overread. Without this the fuzzer spends its time guessing the id and
 * the question, and seldom builds a record for our name or a whole SOA. */
static void check_framed(const uint8_t *data, size_t size, uint16_t qtype, prime kind) {
  static const uint8_t question[] = {7,   'e', 'x', 'a', 'm', 'p', 'l', 'e', 3,
                                     'c', 'o', 'm', 0,   0,   0,   0,   1};
  uint8_t primer[64];
  size_t primer_len = put_primer(primer, kind, qtype);
  size_t hdr_in = size < 8 ? size : 8;
  size_t body = 12 + sizeof question + primer_len;
  size_t len = body + (size - hdr_in);
  uint8_t *msg = calloc(1, len);
  CHECK(msg != NULL);
  put_header(msg, data, hdr_in, kind);
  memcpy(msg + 12, question, sizeof question);
  msg[12 + sizeof question - 3] = (uint8_t)qtype;
  memcpy(msg + 12 + sizeof question, primer, primer_len);
  memcpy(msg + body, data + hdr_in, size - hdr_in);
  uint32_t ttl;
  dns_status st = check_parse(msg, len, qtype, &ttl);
  /* Primed, the only way to fail is broken framing after the primer (or, for the SOA, an RCODE
   * that is not NXDOMAIN); a negative answer's TTL is bounded by the primer's SOA. */
  if (kind == PRIME_ANSWER) CHECK(st == DNS_OK || st == DNS_ERR_MALFORMED);
  if (kind == PRIME_SOA) CHECK(st != DNS_OK && st != DNS_ERR_MISMATCH);
  if (kind == PRIME_SOA && (st == DNS_ERR_NODATA || st == DNS_ERR_NXDOMAIN)) CHECK(ttl <= 300);
  free(msg);
}

static void check_name(const uint8_t *data, size_t size) {
  char name[MAX_NAME_INPUT + 1];
  size_t n = size < MAX_NAME_INPUT ? size : MAX_NAME_INPUT;
  memcpy(name, data, n);
  name[n] = '\0';
  uint8_t out[MAX_QUERY + 1];
  int len = dns_build_query(ID, name, DNS_TYPE_AAAA, out, sizeof out);
  int valid = dns_name_valid(name);
  CHECK(valid ? len > 12 + 4 && len <= MAX_QUERY : len == DNS_ERR_NAME);
  if (!valid) return;
  uint8_t *exact = malloc((size_t)len);
  CHECK(exact != NULL);
  CHECK(dns_build_query(ID, name, DNS_TYPE_AAAA, exact, (size_t)len) == len);
  CHECK(memcmp(exact, out, (size_t)len) == 0);
  CHECK(dns_build_query(ID, name, DNS_TYPE_AAAA, exact, (size_t)len - 1) < 0);
  exact[2] |= 0x80; /* the query, answered with nothing */
  dns_answer ans[DNS_MAX_ANSWERS];
  size_t n_ans;
  uint32_t ttl;
  CHECK(dns_parse_response(exact, (size_t)len, ID, name, DNS_TYPE_AAAA, ans, &n_ans, &ttl) ==
        DNS_ERR_NODATA);
  CHECK(n_ans == 0 && ttl == 60);
  free(exact);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  uint8_t *copy = malloc(size ? size : 1); /* exactly sized: the fuzzer's buffer may be larger */
  CHECK(copy != NULL);
  memcpy(copy, data, size);
  uint32_t ttl;
  (void)check_parse(copy, size, DNS_TYPE_A, &ttl);
  (void)check_parse(copy, size, DNS_TYPE_AAAA, &ttl);
  free(copy);
  for (prime kind = PRIME_NONE; kind <= PRIME_SOA; kind++) {
    check_framed(data, size, DNS_TYPE_A, kind);
    check_framed(data, size, DNS_TYPE_AAAA, kind);
  }
  check_name(data, size);
  return 0;
}
