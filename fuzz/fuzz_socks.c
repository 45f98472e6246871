/* libFuzzer target for the SOCKS4/4a/5 parsers (src/socks/socks_proto.h): everything a client sends
 * before the tunnel is involved.
 *
 * Each incremental parser runs on every prefix of the input, each copied to the end of an
 * exact-size allocation so ASan flags any read past len. Checked with abort():
 *  - the answers for growing prefixes are NEED_MORE… then one final answer that the whole input
 *    repeats (DONE with the same consumed, or the same error);
 *  - DONE first appears at exactly len == consumed (the message length, nothing read ahead);
 *  - every parser has decided once MAX_MSG bytes are present;
 *  - parsed results are well-formed and survive a build/parse round trip.
 * The UDP parser and the log formatter also get the raw input. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "socks/socks_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)       \
  do {                    \
    if (!(cond)) abort(); \
  } while (0)

/* The longest message any parser accepts: SOCKS4a with a 255-byte user id and host name. */
#define MAX_MSG (8 + 256 + 256)

typedef struct {
  socks5_greeting greeting;
  socks5_userpass userpass;
  socks5_request req5;
  socks4_request req4;
} outputs;

typedef socks_status (*parse_fn)(const uint8_t *buf, size_t len, outputs *o, size_t *consumed);

static socks_status p_greeting(const uint8_t *b, size_t n, outputs *o, size_t *c) {
  return socks5_parse_greeting(b, n, &o->greeting, c);
}
static socks_status p_userpass(const uint8_t *b, size_t n, outputs *o, size_t *c) {
  return socks5_parse_userpass(b, n, &o->userpass, c);
}
static socks_status p_req5(const uint8_t *b, size_t n, outputs *o, size_t *c) {
  return socks5_parse_request(b, n, &o->req5, c);
}
static socks_status p_req4(const uint8_t *b, size_t n, outputs *o, size_t *c) {
  return socks4_parse_request(b, n, &o->req4, c);
}

static int is_valid_status(socks_status st) {
  return st == SOCKS_NEED_MORE || st == SOCKS_DONE || st == SOCKS_ERR_VERSION ||
         st == SOCKS_ERR_MALFORMED || st == SOCKS_ERR_TOO_LONG || st == SOCKS_ERR_ATYP ||
         st == SOCKS_ERR_COMMAND;
}

/* A NUL-terminated string of 0..255 bytes with at least min bytes. */
static void check_cstr(const char *s, size_t cap, size_t min) {
  const char *nul = memchr(s, 0, cap);
  CHECK(nul != NULL && (size_t)(nul - s) >= min);
}

static void check_addr(const socks_addr *a) {
  char text[1100];
  CHECK(a->type == SOCKS_ADDR_IPV4 || a->type == SOCKS_ADDR_IPV6 || a->type == SOCKS_ADDR_DOMAIN);
  if (a->type == SOCKS_ADDR_DOMAIN) check_cstr(a->domain, sizeof a->domain, 1);
  socks_addr_format(a, text, sizeof text);
  CHECK(memchr(text, 0, sizeof text) != NULL);
}

/* Parses data[0..len) from the end of scratch (size bytes long) so reads past len hit the redzone.
 */
static socks_status run_prefix(parse_fn f, uint8_t *scratch, size_t size, const uint8_t *data,
                               size_t len, outputs *o, size_t *consumed) {
  uint8_t *buf = scratch + (size - len);
  memcpy(buf, data, len);
  *consumed = (size_t)-1;
  socks_status st = f(buf, len, o, consumed);
  CHECK(is_valid_status(st));
  CHECK(st == SOCKS_DONE ? *consumed == len : *consumed == 0);
  return st;
}

/* The first prefix that is not NEED_MORE decides; the whole input must agree with it. */
static void check_incremental(parse_fn f, uint8_t *scratch, const uint8_t *data, size_t size,
                              outputs *o) {
  socks_status st = SOCKS_NEED_MORE;
  size_t len = 0, c = 0;
  for (; len <= size && len <= MAX_MSG; len++) {
    st = run_prefix(f, scratch, size, data, len, o, &c);
    if (st != SOCKS_NEED_MORE) break;
  }
  if (len > MAX_MSG) abort(); /* still undecided with MAX_MSG bytes present */
  if (st == SOCKS_NEED_MORE) return;

  size_t c_full;
  socks_status full = f(data, size, o, &c_full);
  CHECK(full == st);
  if (st == SOCKS_DONE) CHECK(c_full == c && c == len);
}

/* The reply layout equals the request layout, so a parsed request address must come back
 * unchanged through socks5_build_reply and the request parser; likewise for UDP headers. */
static void check_round_trips(const socks_addr *a) {
  uint8_t wire[262];
  size_t n = socks5_build_reply(SOCKS5_REP_SUCCEEDED, a, wire, sizeof wire);
  CHECK(n >= 8 && n <= sizeof wire); /* 8: one-byte domain */
  socks5_request back;
  size_t c;
  CHECK(socks5_parse_request(wire, n, &back, &c) == SOCKS_DONE && c == n);
  CHECK(back.addr.type == a->type && back.addr.port == a->port);
  if (a->type == SOCKS_ADDR_DOMAIN) CHECK(strcmp(back.addr.domain, a->domain) == 0);
  if (a->type != SOCKS_ADDR_DOMAIN) CHECK(memcmp(back.addr.ip, a->ip, sizeof a->ip) == 0);

  n = socks5_build_udp_header(a, wire, sizeof wire);
  CHECK(n >= 8 && n <= sizeof wire); /* 8: one-byte domain */
  uint8_t frag = 1;
  socks_addr udp;
  size_t hdr;
  CHECK(socks5_parse_udp(wire, n, &frag, &udp, &hdr) == SOCKS_DONE && hdr == n && frag == 0);
  CHECK(udp.type == a->type && udp.port == a->port);
  CHECK(memcmp(udp.ip, back.addr.ip, sizeof udp.ip) == 0);
  CHECK(strcmp(udp.domain, back.addr.domain) == 0);
}

/* Whatever a parser accepts must be well-formed and must build back into the same address. */
static void check_outputs(const uint8_t *data, size_t size) {
  size_t c;
  outputs fresh;
  if (socks5_parse_userpass(data, size, &fresh.userpass, &c) == SOCKS_DONE) {
    check_cstr(fresh.userpass.user, sizeof fresh.userpass.user, 1);
    check_cstr(fresh.userpass.pass, sizeof fresh.userpass.pass, 0);
  }
  if (socks5_parse_request(data, size, &fresh.req5, &c) == SOCKS_DONE) {
    check_addr(&fresh.req5.addr);
    check_round_trips(&fresh.req5.addr);
  }
  if (socks4_parse_request(data, size, &fresh.req4, &c) == SOCKS_DONE) {
    CHECK(fresh.req4.cmd == SOCKS_CMD_CONNECT || fresh.req4.cmd == SOCKS_CMD_BIND);
    CHECK(fresh.req4.addr.type == SOCKS_ADDR_IPV4 || fresh.req4.addr.type == SOCKS_ADDR_DOMAIN);
    check_cstr(fresh.req4.user, sizeof fresh.req4.user, 0);
    check_addr(&fresh.req4.addr);
    uint8_t reply[8];
    CHECK(socks4_build_reply(SOCKS4_REP_GRANTED, &fresh.req4.addr, reply) == 8);
    CHECK(reply[0] == 0 && reply[1] == SOCKS4_REP_GRANTED);
  }
}

/* Datagrams are parsed whole; a DONE header must lie within the datagram. */
static void check_udp(const uint8_t *dgram, size_t size) {
  uint8_t frag;
  socks_addr a;
  size_t hdr = (size_t)-1;
  socks_status st = socks5_parse_udp(dgram, size, &frag, &a, &hdr);
  CHECK(st == SOCKS_DONE || st == SOCKS_ERR_MALFORMED || st == SOCKS_ERR_ATYP);
  if (st != SOCKS_DONE) {
    CHECK(hdr == 0);
    return;
  }
  CHECK(hdr >= 8 && hdr <= size && hdr <= 262);
  check_addr(&a);
}

/* The formatter and builders also get arbitrary structures (unterminated domains, odd types). */
static void check_raw_struct(const uint8_t *data, size_t size) {
  socks_addr a;
  memset(&a, 0, sizeof a);
  memcpy(&a, data, size < sizeof a ? size : sizeof a);
  char small[17], big[1100];
  socks_addr_format(&a, small, sizeof small);
  CHECK(strlen(small) < sizeof small);
  socks_addr_format(&a, big, sizeof big);
  CHECK(strlen(big) < sizeof big);
  uint8_t wire[262], reply4[8];
  CHECK(socks5_build_udp_header(&a, wire, sizeof wire) <= sizeof wire);
  CHECK(socks5_build_reply(size ? data[0] : 0, &a, wire, sizeof wire) <= sizeof wire);
  CHECK(socks4_build_reply(0x5A, &a, reply4) == 8);
  CHECK(strlen(socks5_rep_name(size ? data[0] : 0)) > 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const parse_fn parsers[] = {p_greeting, p_userpass, p_req5, p_req4};
  uint8_t *scratch = malloc(size ? size : 1);
  CHECK(scratch != NULL);
  outputs o;
  for (size_t i = 0; i < sizeof parsers / sizeof parsers[0]; i++)
    check_incremental(parsers[i], scratch, data, size, &o);
  check_outputs(data, size);

  /* UDP from an exact-size copy, for the same over-read detection. */
  memcpy(scratch, data, size);
  check_udp(scratch, size);
  free(scratch);
  check_raw_struct(data, size);
  return 0;
}
