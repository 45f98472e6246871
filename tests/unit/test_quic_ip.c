/* The inner IP + UDP headers of the QUIC transport (src/quic/quic_ip.c): quic_ip_wrap builds
 * them, quic_ip_parse_udp reads them back. Checksums are verified here with a separate one's
 * complement sum: over the pseudo-header and the UDP packet (and over the IPv4 header alone) a
 * correct checksum makes the folded sum 0xffff. Malformed, truncated and fragmented packets are
 * refused. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
/* clang-format on */

#include <arpa/inet.h>
#include <stdbool.h>
#include <netinet/in.h>

#include "device/tunnel_fec.h"
#include "quic/quic_ip.h"

static void addr(struct sockaddr_storage *ss, const char *ip, uint16_t port) {
  memset(ss, 0, sizeof *ss);
  if (strchr(ip, ':')) {
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(port);
    assert_int_equal(inet_pton(AF_INET6, ip, &a->sin6_addr), 1);
  } else {
    struct sockaddr_in *a = (struct sockaddr_in *)ss;
    a->sin_family = AF_INET;
    a->sin_port = htons(port);
    assert_int_equal(inet_pton(AF_INET, ip, &a->sin_addr), 1);
  }
}

/* Independent one's complement sum of 16-bit big-endian words, folded (not inverted). */
static uint32_t ocsum(uint32_t acc, const uint8_t *p, size_t n) {
  for (size_t i = 0; i + 1 < n; i += 2) acc += (uint32_t)(p[i] << 8 | p[i + 1]);
  if (n & 1) acc += (uint32_t)p[n - 1] << 8;
  return acc;
}
static uint16_t fold(uint32_t acc) {
  while (acc > 0xffff) acc = (acc & 0xffff) + (acc >> 16);
  return (uint16_t)acc;
}

/* Sum of the pseudo-header (RFC 768 / RFC 8200 §8.1) and the UDP packet: 0xffff when right. */
static uint16_t udp_sum(const uint8_t *pkt, bool v6) {
  const uint8_t *udp = pkt + (v6 ? 40 : (pkt[0] & 15) * 4);
  size_t ulen = (size_t)(udp[4] << 8 | udp[5]);
  uint32_t acc = v6 ? ocsum(0, pkt + 8, 32) : ocsum(0, pkt + 12, 8);
  acc += 17;
  acc += (uint32_t)ulen;
  return fold(ocsum(acc, udp, ulen));
}

static uint8_t buf[QUIC_IP_HEADROOM + 2000];

static void round_trip(const char *sip, const char *dip, size_t plen) {
  struct sockaddr_storage src, dst, psrc, pdst;
  addr(&src, sip, 40001);
  addr(&dst, dip, 443);
  bool v6 = src.ss_family == AF_INET6;
  uint8_t *payload = buf + QUIC_IP_HEADROOM;
  for (size_t i = 0; i < plen; i++) payload[i] = (uint8_t)(i * 7 + 3);
  size_t pkt_len = 0;
  uint8_t *pkt = quic_ip_wrap(payload, plen, &src, &dst, true, &pkt_len);
  size_t hdr = v6 ? 48 : 28;
  assert_ptr_equal(pkt, payload - hdr);
  assert_int_equal(pkt_len, plen + hdr);
  /* headers as the wire expects them */
  if (v6) {
    assert_int_equal(pkt[0] >> 4, 6);
    assert_int_equal(pkt[4] << 8 | pkt[5], plen + 8); /* payload length */
    assert_int_equal(pkt[6], 17);
  } else {
    assert_int_equal(pkt[0], 0x45);
    assert_int_equal(pkt[2] << 8 | pkt[3], pkt_len);
    assert_int_equal(pkt[9], 17);
    assert_int_equal(fold(ocsum(0, pkt, 20)), 0xffff); /* header checksum */
  }
  const uint8_t *udp = pkt + (v6 ? 40 : 20);
  assert_int_equal(udp[0] << 8 | udp[1], 40001);
  assert_int_equal(udp[2] << 8 | udp[3], 443);
  assert_int_equal(udp[4] << 8 | udp[5], plen + 8);
  assert_int_not_equal(udp[6] << 8 | udp[7], 0); /* computed when asked */
  assert_int_equal(udp_sum(pkt, v6), 0xffff);
  /* a flipped payload bit breaks it (the check can fail) */
  if (plen) {
    payload[0] ^= 1;
    assert_int_not_equal(udp_sum(pkt, v6), 0xffff);
    payload[0] ^= 1;
  }
  const uint8_t *pp = NULL;
  size_t pl = 0;
  assert_true(quic_ip_parse_udp(pkt, pkt_len, &psrc, &pdst, &pp, &pl));
  assert_ptr_equal(pp, payload);
  assert_int_equal(pl, plen);
  assert_int_equal(psrc.ss_family, src.ss_family);
  assert_true(quic_ip_same_host(&psrc, &src));
  assert_true(quic_ip_same_host(&pdst, &dst));
  assert_false(quic_ip_same_host(&psrc, &pdst));
  assert_int_equal(quic_ip_port(&psrc), 40001);
  assert_int_equal(quic_ip_port(&pdst), 443);
  /* every truncation is refused (the IP length then claims more than there is) */
  for (size_t cut = 0; cut < pkt_len; cut++)
    assert_false(quic_ip_parse_udp(pkt, cut, &psrc, &pdst, &pp, &pl));
  /* between awgproxy ends: the same headers with the UDP checksum left zero, still parsed */
  uint8_t with_sum[2048];
  memcpy(with_sum, pkt, pkt_len);
  size_t bare_len = 0;
  uint8_t *bare = quic_ip_wrap(payload, plen, &src, &dst, false, &bare_len);
  assert_int_equal(bare_len, pkt_len);
  const uint8_t *bare_udp = bare + (v6 ? 40 : 20);
  assert_int_equal(bare_udp[6] << 8 | bare_udp[7], 0);
  assert_memory_equal(bare + (v6 ? 0 : 12), with_sum + (v6 ? 0 : 12), v6 ? 46 : 14);
  if (!v6) assert_int_equal(fold(ocsum(0, bare, 20)), 0xffff); /* the IP header's still right */
  assert_true(quic_ip_parse_udp(bare, bare_len, &psrc, &pdst, &pp, &pl));
  assert_int_equal(pl, plen);
}

static void test_round_trip_v4(void **state) {
  (void)state;
  size_t sizes[] = {0, 1, 2, 3, 100, 1201, 1380};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
    round_trip("10.0.0.2", "10.0.0.1", sizes[i]);
  round_trip("192.168.255.254", "172.31.0.9", 1351); /* carries in the sums */
}

static void test_round_trip_v6(void **state) {
  (void)state;
  size_t sizes[] = {0, 1, 2, 3, 100, 1201, 1380};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
    round_trip("fd00::2", "fd00::1", sizes[i]);
  round_trip("ffff:ffff::ffff", "fe80::ffff:ffff:ffff:ffff", 777);
}

/* A valid v4 packet with a 100-byte payload in buf; returns its start. */
static uint8_t *v4_packet(size_t *len) {
  struct sockaddr_storage src, dst;
  addr(&src, "10.0.0.2", 1000);
  addr(&dst, "10.0.0.1", 2000);
  memset(buf + QUIC_IP_HEADROOM, 0xab, 100);
  return quic_ip_wrap(buf + QUIC_IP_HEADROOM, 100, &src, &dst, true, len);
}

static uint8_t *v6_packet(size_t *len) {
  struct sockaddr_storage src, dst;
  addr(&src, "fd00::2", 1000);
  addr(&dst, "fd00::1", 2000);
  memset(buf + QUIC_IP_HEADROOM, 0xab, 100);
  return quic_ip_wrap(buf + QUIC_IP_HEADROOM, 100, &src, &dst, true, len);
}

static bool parses(const uint8_t *pkt, size_t len) {
  struct sockaddr_storage s, d;
  const uint8_t *p;
  size_t pl;
  return quic_ip_parse_udp(pkt, len, &s, &d, &p, &pl);
}

static void test_malformed_v4(void **state) {
  (void)state;
  size_t len;
  uint8_t *pkt = v4_packet(&len);
  assert_true(parses(pkt, len));
  assert_true(parses(pkt, len + 5)); /* trailing bytes past the IP total length are ignored */
  pkt[9] = 6;                        /* TCP */
  assert_false(parses(pkt, len));
  pkt = v4_packet(&len);
  pkt[0] = 0x44; /* IHL 16 bytes */
  assert_false(parses(pkt, len));
  pkt = v4_packet(&len);
  pkt[0] = 0x4f; /* IHL 60: the UDP header would be past the total length's room for it */
  pkt[2] = 0, pkt[3] = 60 + 7;
  assert_false(parses(pkt, len));
  pkt = v4_packet(&len);
  pkt[2] = 0, pkt[3] = 27; /* total length too short for IP + UDP */
  assert_false(parses(pkt, len));
  pkt = v4_packet(&len);
  pkt[2] = (uint8_t)((len + 1) >> 8), pkt[3] = (uint8_t)(len + 1); /* claims one more byte */
  assert_false(parses(pkt, len));
  /* fragments: more-fragments set, or a non-zero offset; DF alone is fine */
  pkt = v4_packet(&len);
  pkt[6] = 0x20;
  assert_false(parses(pkt, len));
  pkt = v4_packet(&len);
  pkt[6] = 0x40, pkt[7] = 0x01;
  assert_false(parses(pkt, len));
  pkt = v4_packet(&len);
  pkt[6] = 0x00, pkt[7] = 0x00;
  assert_true(parses(pkt, len));
  /* UDP length: below 8, or more than the IP packet holds */
  pkt = v4_packet(&len);
  pkt[24] = 0, pkt[25] = 7;
  assert_false(parses(pkt, len));
  pkt = v4_packet(&len);
  pkt[24] = 0, pkt[25] = 109;
  assert_false(parses(pkt, len));
  pkt = v4_packet(&len);
  pkt[24] = 0, pkt[25] = 8; /* an empty datagram inside a longer packet is fine */
  assert_true(parses(pkt, len));
  /* neither version */
  pkt = v4_packet(&len);
  pkt[0] = 0x55;
  assert_false(parses(pkt, len));
  assert_false(parses(pkt, 0));
}

static void test_malformed_v6(void **state) {
  (void)state;
  size_t len;
  uint8_t *pkt = v6_packet(&len);
  assert_true(parses(pkt, len));
  pkt[6] = 44; /* a fragment header */
  assert_false(parses(pkt, len));
  pkt = v6_packet(&len);
  pkt[6] = 0; /* hop-by-hop options: extension headers are not ours */
  assert_false(parses(pkt, len));
  pkt = v6_packet(&len);
  pkt[4] = 0, pkt[5] = 7; /* payload length below a UDP header */
  assert_false(parses(pkt, len));
  pkt = v6_packet(&len);
  pkt[4] = 0, pkt[5] = 109; /* claims more than there is */
  assert_false(parses(pkt, len));
  pkt = v6_packet(&len);
  pkt[44] = 0, pkt[45] = 109; /* UDP length past the payload length */
  assert_false(parses(pkt, len));
  pkt = v6_packet(&len);
  assert_false(parses(pkt, 47)); /* shorter than the two headers */
}

/* The largest QUIC packet fills the MTU with its family's headers, less the room the tunnel's FEC
 * parity needs: a packet wrapped at that size is the largest inner packet a parity covers, for
 * IPv4 as for IPv6. A sender sizing for IPv6 on an IPv4 path (the server once did) split each
 * full packet it relayed in two; one sizing for the whole MTU (the client once did) had no
 * parity for its blocks. */
static void test_max_payload(void **state) {
  struct {
    const char *src, *dst;
    int family;
  } paths[] = {{"10.0.0.2", "10.0.0.1", AF_INET}, {"fd00::2", "fd00::1", AF_INET6}};
  for (size_t i = 0; i < 2; i++) {
    size_t n = quic_ip_max_payload(1420, paths[i].family);
    struct sockaddr_storage src, dst;
    addr(&src, paths[i].src, 4433);
    addr(&dst, paths[i].dst, 443);
    size_t len = 0;
    memset(buf, 0, sizeof buf);
    quic_ip_wrap(buf + QUIC_IP_HEADROOM, n, &src, &dst, false, &len);
    assert_int_equal(len, 1420 - TUN_FEC_HEADER);
  }
  assert_int_equal(quic_ip_max_payload(1420, AF_INET), 1380);
  /* QUIC's minimum whatever the MTU (the tunnel carries a larger inner packet) */
  assert_int_equal(quic_ip_max_payload(1232, AF_INET6), 1200);
  assert_int_equal(quic_ip_max_payload(576, AF_INET), 1200);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_round_trip_v4), cmocka_unit_test(test_round_trip_v6),
      cmocka_unit_test(test_malformed_v4),  cmocka_unit_test(test_malformed_v6),
      cmocka_unit_test(test_max_payload),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
