#include "exit/exit_dns.h"

#include <string.h>

#include "util/bytes.h"

/* The question name: uncompressed labels only (a query has nothing to point back to). Returns
 * the offset after it, 0 if malformed, or sets *odd when a label holds bytes we will not resolve
 * (dots, spaces, control or non-ASCII characters). */
static size_t parse_name(const uint8_t *msg, size_t len, size_t off, char *out, int *odd) {
  size_t o = 0;
  for (;;) {
    if (off >= len) return 0;
    uint8_t l = msg[off++];
    if (!l) break;
    if (l > 63 || off + l > len) return 0; /* compression pointers and the reserved types too */
    if (o + (o ? 1 : 0) + l > EXIT_DNS_MAX_NAME) return 0;
    if (o) out[o++] = '.';
    for (uint8_t i = 0; i < l; i++) {
      uint8_t c = msg[off + i];
      if (c <= 0x20 || c >= 0x7F || c == '.') *odd = 1;
      out[o++] = (char)c;
    }
    off += l;
  }
  out[o] = 0;
  return off;
}

int exit_dns_parse_query(const uint8_t *msg, size_t len, exit_dns_query *q) {
  memset(q, 0, sizeof *q);
  if (len < 12) return -1;
  q->id = be16_load(msg);
  q->flags = be16_load(msg + 2);
  if (q->flags & 0x8000) return -1;                          /* a response: never answer those */
  if (((q->flags >> 11) & 0xF) != 0) return EXIT_DNS_NOTIMP; /* only standard queries */
  if (be16_load(msg + 4) != 1) return EXIT_DNS_FORMERR;
  int odd = 0;
  size_t off = parse_name(msg, len, 12, q->name, &odd);
  if (!off || off + 4 > len) return EXIT_DNS_FORMERR;
  q->qtype = be16_load(msg + off);
  q->qclass = be16_load(msg + off + 2);
  q->qend = off + 4;
  if (q->qclass != 1 || odd) return EXIT_DNS_REFUSED;
  return EXIT_DNS_NOERROR;
}

size_t exit_dns_build_response(const uint8_t *msg, const exit_dns_query *q, int rcode,
                               const uint8_t (*addrs)[16], size_t n_addrs, uint32_t ttl,
                               uint8_t *out, size_t cap) {
  if (cap < EXIT_DNS_MAX_MSG || q->qend > EXIT_DNS_MAX_MSG) return 0;
  memset(out, 0, 12);
  be16_store(out, q->id);
  be16_store(out + 2, (uint16_t)(0x8000 | (q->flags & 0x7800) | (q->flags & 0x0100) | 0x0080 |
                                 (rcode & 0xF)));
  size_t off = 12;
  if (q->qend) {
    be16_store(out + 4, 1);
    memcpy(out + 12, msg + 12, q->qend - 12);
    off = q->qend;
  }
  if (rcode != EXIT_DNS_NOERROR) return off;
  size_t rdlen = q->qtype == EXIT_DNS_TYPE_A ? 4 : q->qtype == EXIT_DNS_TYPE_AAAA ? 16 : 0;
  uint16_t an = 0;
  for (size_t i = 0; rdlen && i < n_addrs && off + 12 + rdlen <= EXIT_DNS_MAX_MSG; i++) {
    uint8_t *r = out + off;
    be16_store(r, 0xC00C); /* the name in the question */
    be16_store(r + 2, q->qtype);
    be16_store(r + 4, 1);
    be16_store(r + 6, (uint16_t)(ttl >> 16));
    be16_store(r + 8, (uint16_t)ttl);
    be16_store(r + 10, (uint16_t)rdlen);
    memcpy(r + 12, addrs[i], rdlen);
    off += 12 + rdlen;
    an++;
  }
  be16_store(out + 6, an);
  return off;
}
