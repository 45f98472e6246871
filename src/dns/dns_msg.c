/* DNS messages, written from RFC 1035 (§3.1 names, §4.1 message format, §4.1.4 compression),
 * RFC 2181 (§8 TTL), RFC 2308 (negative caching), RFC 3596 (AAAA) and RFC 4343 (case).
 *
 * Responses are hostile input: every read is checked against the message length, the section
 * counts are believed only as far as the bytes back them up (a count that runs past the end is
 * MALFORMED), and compressed names are followed only backwards, so a walk always ends. Names are
 * kept in uncompressed wire form (length-prefixed labels ending with the root label) so that
 * comparing two names is one loop. */
#include "dns/dns_msg.h"

#include <string.h>
#include <sys/socket.h>

#include "util/bytes.h"

#define HDR_LEN 12
#define RR_FIXED 10      /* TYPE, CLASS, TTL, RDLENGTH after the owner name */
#define QUESTION_FIXED 4 /* QTYPE, QCLASS after QNAME */
#define MAX_LABEL 63
#define TYPE_CNAME 5
#define TYPE_SOA 6
#define CLASS_IN 1
#define SOA_FIXED 20 /* SERIAL, REFRESH, RETRY, EXPIRE, MINIMUM after MNAME and RNAME */

#define FLAG_QR 0x8000u
#define FLAG_OPCODE 0x7800u
#define FLAG_TC 0x0200u
#define FLAG_RD 0x0100u
#define FLAG_RCODE 0x000fu
#define RCODE_NXDOMAIN 3

/* Longest CNAME chain we follow; real chains are 1-3 links long. */
#define MAX_CNAMES 8
/* A name has at most 127 labels, so a legitimate chain of pointers is never longer; the
 * backwards-only rule already guarantees termination, this just keeps the work small. */
#define MAX_JUMPS 127
/* Negative-cache lifetime when the authority section carries no SOA. */
#define DEFAULT_NEG_TTL 60

typedef struct {
  uint16_t id, flags, qd, an, ns, ar;
} header;

/* One resource record; the owner is in uncompressed wire form, the TTL already sanitised. */
typedef struct {
  uint8_t owner[DNS_MAX_NAME];
  size_t owner_len;
  uint16_t type, cls;
  uint32_t ttl;
  size_t rdata, rdlen; /* offset and length of RDATA in the message */
} rr;

/* A cursor over one section: the records left to read, according to the header. */
typedef struct {
  const uint8_t *msg;
  size_t len, pos;
  unsigned left;
} section;

/* The query name and the names reached from it through CNAMEs. */
typedef struct {
  uint8_t name[MAX_CNAMES + 1][DNS_MAX_NAME];
  size_t len[MAX_CNAMES + 1];
  size_t n;
} name_set;

/* RFC 2181 §8: a TTL with the most significant bit set is treated as zero. */
static uint32_t ttl_value(uint32_t raw) { return (raw & 0x80000000u) ? 0 : raw; }

static uint32_t min_u32(uint32_t a, uint32_t b) { return a < b ? a : b; }

/* ---- names we send ------------------------------------------------------------------------ */

/* Label bytes we accept from callers: printable ASCII except space. The LDH rule (letters,
 * digits, hyphen) is host-name syntax, not DNS syntax, and internal names with '_' or other
 * odd characters exist; control bytes, space, DEL and non-ASCII are refused because they are
 * far likelier to be garbage or an injection attempt than a real name. No escapes ("\.") are
 * interpreted: SOCKS clients send raw names. */
static int label_byte_ok(unsigned char c) { return c > 0x20 && c < 0x7f && c != '.'; }

/* Encodes a dotted name (optional trailing dot) into wire, which holds DNS_MAX_NAME bytes;
 * returns the encoded length (root label included) or DNS_ERR_NAME. "" and "." are refused:
 * we never resolve the root. */
static int encode_name(const char *name, uint8_t *wire) {
  if (name == NULL || *name == '\0') return DNS_ERR_NAME;
  size_t out = 0;
  const char *p = name;
  while (*p != '\0') {
    size_t n = 0;
    while (n <= MAX_LABEL && label_byte_ok((unsigned char)p[n])) n++;
    if (n == 0 || n > MAX_LABEL || (p[n] != '.' && p[n] != '\0')) return DNS_ERR_NAME;
    /* + 1 for the length byte, + 1 for the root label still to come. */
    if (out + 1 + n + 1 > DNS_MAX_NAME) return DNS_ERR_NAME;
    wire[out++] = (uint8_t)n;
    memcpy(wire + out, p, n);
    out += n;
    p += n;
    if (*p == '.') p++; /* a following '.' or '\0' is caught at the top of the next label */
  }
  wire[out++] = 0;
  return (int)out;
}

int dns_name_valid(const char *name) {
  uint8_t wire[DNS_MAX_NAME];
  return encode_name(name, wire) > 0;
}

int dns_build_query(uint16_t id, const char *name, uint16_t qtype, uint8_t *out, size_t cap) {
  uint8_t wire[DNS_MAX_NAME];
  int wire_len = encode_name(name, wire);
  if (wire_len < 0) return wire_len;
  size_t total = HDR_LEN + (size_t)wire_len + QUESTION_FIXED;
  if (out == NULL || cap < total) return DNS_ERR_MALFORMED; /* would not fit */
  memset(out, 0, HDR_LEN);
  be16_store(out, id);
  be16_store(out + 2, FLAG_RD); /* QR=0, OPCODE=0 (QUERY), RD=1 */
  be16_store(out + 4, 1);       /* QDCOUNT; AN/NS/AR counts stay 0 */
  memcpy(out + HDR_LEN, wire, (size_t)wire_len);
  be16_store(out + HDR_LEN + wire_len, qtype);
  be16_store(out + HDR_LEN + wire_len + 2, CLASS_IN);
  return (int)total;
}

/* ---- names we receive --------------------------------------------------------------------- */

/* Reads the possibly compressed name at *pos into wire (uncompressed, DNS_MAX_NAME bytes) and
 * moves *pos past the name as stored there. No byte at or beyond limit is read. A pointer must
 * target an offset before the start of the run of labels that led to it (and after the header),
 * so the runs start at strictly decreasing offsets: loops are impossible, forward references are
 * refused. */
static int read_name(const uint8_t *msg, size_t limit, size_t *pos, uint8_t *wire,
                     size_t *wire_len) {
  size_t cur = *pos, run_start = *pos, out = 0, end = 0;
  int jumps = 0;
  for (;;) {
    if (cur >= limit) return -1;
    uint8_t b = msg[cur];
    if ((b & 0xc0) == 0xc0) {
      if (limit - cur < 2) return -1;
      size_t target = (size_t)(b & 0x3f) << 8 | msg[cur + 1];
      if (target < HDR_LEN || target >= run_start || ++jumps > MAX_JUMPS) return -1;
      if (end == 0) end = cur + 2;
      cur = run_start = target;
      continue;
    }
    if (b & 0xc0) return -1; /* 01 and 10: extended / obsolete label types, never sent to us */
    if (b > limit - cur - 1) return -1;
    /* Keeping every label (the root included) within DNS_MAX_NAME bounds the whole name. */
    if (out + 1 + b > DNS_MAX_NAME) return -1;
    memcpy(wire + out, msg + cur, 1 + (size_t)b);
    out += 1 + (size_t)b;
    cur += 1 + (size_t)b;
    if (b == 0) break;
  }
  *wire_len = out;
  *pos = end ? end : cur;
  return 0;
}

static uint8_t fold(uint8_t c) { return (c >= 'A' && c <= 'Z') ? (uint8_t)(c + 32) : c; }

/* RFC 4343: ASCII case-insensitive. Folding the length bytes too is harmless (they are at most
 * 63, below 'A'), and equal lengths plus equal bytes imply the same label structure. */
static int names_equal(const uint8_t *a, size_t a_len, const uint8_t *b, size_t b_len) {
  if (a_len != b_len) return 0;
  for (size_t i = 0; i < a_len; i++)
    if (fold(a[i]) != fold(b[i])) return 0;
  return 1;
}

static int set_has(const name_set *s, const uint8_t *wire, size_t wire_len) {
  for (size_t i = 0; i < s->n; i++)
    if (names_equal(s->name[i], s->len[i], wire, wire_len)) return 1;
  return 0;
}

/* ---- records and sections ----------------------------------------------------------------- */

/* 1: the next record is in *r; 0: the section is done; -1: malformed (the counts lied, a name
 * is bad, or RDATA runs past the end). */
static int next_rr(section *s, rr *r) {
  if (s->left == 0) return 0;
  if (read_name(s->msg, s->len, &s->pos, r->owner, &r->owner_len) < 0) return -1;
  if (s->len - s->pos < RR_FIXED) return -1;
  const uint8_t *p = s->msg + s->pos;
  r->type = be16_load(p);
  r->cls = be16_load(p + 2);
  r->ttl = ttl_value(be32_load(p + 4));
  r->rdlen = be16_load(p + 8);
  r->rdata = s->pos + RR_FIXED;
  if (r->rdlen > s->len - r->rdata) return -1;
  s->pos = r->rdata + r->rdlen;
  s->left--;
  return 1;
}

/* The CNAME target must fill RDATA exactly (RFC 1035 §3.3.1). */
static int cname_target(const uint8_t *msg, const rr *r, uint8_t *wire, size_t *wire_len) {
  size_t end = r->rdata + r->rdlen, pos = r->rdata;
  if (read_name(msg, end, &pos, wire, wire_len) < 0) return -1;
  return pos == end ? 0 : -1;
}

/* RFC 1035 §3.3.13: MNAME, RNAME, then five 32-bit fields, MINIMUM last. */
static int soa_minimum(const uint8_t *msg, const rr *r, uint32_t *minimum) {
  size_t end = r->rdata + r->rdlen, pos = r->rdata, wire_len;
  uint8_t wire[DNS_MAX_NAME];
  if (read_name(msg, end, &pos, wire, &wire_len) < 0) return -1;
  if (read_name(msg, end, &pos, wire, &wire_len) < 0) return -1;
  if (end - pos != SOA_FIXED) return -1;
  *minimum = ttl_value(be32_load(msg + pos + 16)); /* same sanitising as a TTL: it is used as one */
  return 0;
}

/* Checks the answer section's framing, the fixed address lengths and the CNAME RDATA, so that
 * later passes over it cannot fail. Leaves s at the authority section. */
static dns_status check_answers(section *s) {
  rr r;
  int rc;
  while ((rc = next_rr(s, &r)) > 0) {
    if (r.cls != CLASS_IN) continue;
    if (r.type == DNS_TYPE_A && r.rdlen != 4) return DNS_ERR_MALFORMED;
    if (r.type == DNS_TYPE_AAAA && r.rdlen != 16) return DNS_ERR_MALFORMED;
    uint8_t target[DNS_MAX_NAME];
    size_t target_len;
    if (r.type == TYPE_CNAME && cname_target(s->msg, &r, target, &target_len) < 0)
      return DNS_ERR_MALFORMED;
  }
  return rc < 0 ? DNS_ERR_MALFORMED : DNS_OK;
}

/* Walks the authority section; *neg_ttl = min(SOA TTL, SOA MINIMUM) over its SOA records
 * (RFC 2308 §5), DEFAULT_NEG_TTL without one. Leaves s at the additional section. */
static dns_status walk_authority(section *s, uint32_t *neg_ttl) {
  rr r;
  int rc, found = 0;
  uint32_t best = DEFAULT_NEG_TTL;
  while ((rc = next_rr(s, &r)) > 0) {
    if (r.type != TYPE_SOA || r.cls != CLASS_IN) continue;
    uint32_t minimum;
    if (soa_minimum(s->msg, &r, &minimum) < 0) return DNS_ERR_MALFORMED;
    uint32_t v = min_u32(r.ttl, minimum);
    best = found ? min_u32(best, v) : v;
    found = 1;
  }
  *neg_ttl = best;
  return rc < 0 ? DNS_ERR_MALFORMED : DNS_OK;
}

/* The additional section is not used, but a message whose counts promise records that are not
 * there is not a message we trust any part of. */
static dns_status walk_framing(section *s) {
  rr r;
  int rc;
  while ((rc = next_rr(s, &r)) > 0) continue;
  return rc < 0 ? DNS_ERR_MALFORMED : DNS_OK;
}

/* ---- the response ------------------------------------------------------------------------- */

static header read_header(const uint8_t *msg) {
  header h = {be16_load(msg),     be16_load(msg + 2), be16_load(msg + 4),
              be16_load(msg + 6), be16_load(msg + 8), be16_load(msg + 10)};
  return h;
}

static dns_status check_header(const header *h, uint16_t id) {
  if (!(h->flags & FLAG_QR) || h->id != id || (h->flags & FLAG_OPCODE) != 0)
    return DNS_ERR_MISMATCH;
  if (h->flags & FLAG_TC) return DNS_ERR_TRUNCATED;
  unsigned rcode = h->flags & FLAG_RCODE;
  /* Some servers drop the question from SERVFAIL / REFUSED / FORMERR replies. Believing such a
   * failure unchecked costs at most a retry; an NXDOMAIN gets cached, so it must match. */
  if (h->qd == 0 && rcode != 0 && rcode != RCODE_NXDOMAIN) return DNS_ERR_SERVFAIL;
  if (h->qd != 1) return DNS_ERR_MISMATCH;
  return DNS_OK;
}

static dns_status check_question(const uint8_t *msg, size_t len, size_t *pos, const name_set *set,
                                 uint16_t qtype) {
  uint8_t wire[DNS_MAX_NAME];
  size_t wire_len;
  if (read_name(msg, len, pos, wire, &wire_len) < 0) return DNS_ERR_MALFORMED;
  if (len - *pos < QUESTION_FIXED) return DNS_ERR_MALFORMED;
  uint16_t type = be16_load(msg + *pos), cls = be16_load(msg + *pos + 2);
  *pos += QUESTION_FIXED;
  if (!names_equal(wire, wire_len, set->name[0], set->len[0]) || type != qtype || cls != CLASS_IN)
    return DNS_ERR_MISMATCH;
  return DNS_OK;
}

/* Validates all three record sections; *an is left at the start of the answer section. */
static dns_status walk_sections(const header *h, section *an, uint32_t *neg_ttl) {
  section s = *an;
  dns_status st = check_answers(&s);
  if (st != DNS_OK) return st;
  s.left = h->ns;
  st = walk_authority(&s, neg_ttl);
  if (st != DNS_OK) return st;
  s.left = h->ar;
  return walk_framing(&s);
}

/* Adds to set every name reached through CNAME records of the answer section, whatever their
 * order (nothing requires a chain to be listed in order). Loops end because only new names are
 * added. Returns 1 when the chain is longer than MAX_CNAMES, else 0. */
static int follow_cnames(section an, name_set *set) {
  int grew = 1, cut = 0;
  while (grew) {
    grew = 0;
    section s = an;
    rr r;
    while (next_rr(&s, &r) > 0) {
      if (r.type != TYPE_CNAME || r.cls != CLASS_IN || !set_has(set, r.owner, r.owner_len))
        continue;
      uint8_t target[DNS_MAX_NAME];
      size_t target_len;
      if (cname_target(an.msg, &r, target, &target_len) < 0) continue; /* checked already */
      if (set_has(set, target, target_len)) continue;
      if (set->n == MAX_CNAMES + 1) {
        cut = 1;
        continue;
      }
      memcpy(set->name[set->n], target, target_len);
      set->len[set->n++] = target_len;
      grew = 1;
    }
  }
  return cut;
}

/* Collects the records of qtype owned by a name of the set (up to DNS_MAX_ANSWERS, the rest
 * ignored); *ttl = min over those and the CNAMEs of the chain. */
static void collect(section an, const name_set *set, uint16_t qtype, dns_answer *answers,
                    size_t *n_answers, uint32_t *ttl) {
  size_t addr_len = qtype == DNS_TYPE_A ? 4 : 16;
  rr r;
  while (next_rr(&an, &r) > 0) {
    if (r.cls != CLASS_IN || !set_has(set, r.owner, r.owner_len)) continue;
    if (r.type == TYPE_CNAME) {
      *ttl = min_u32(*ttl, r.ttl);
    } else if (r.type == qtype && *n_answers < DNS_MAX_ANSWERS) {
      dns_answer *a = &answers[(*n_answers)++];
      memset(a, 0, sizeof *a);
      a->family = qtype == DNS_TYPE_A ? AF_INET : AF_INET6;
      memcpy(a->addr, an.msg + r.rdata, addr_len); /* rdlen checked by check_answers */
      a->ttl = r.ttl;
      *ttl = min_u32(*ttl, r.ttl);
    }
  }
}

/* NOERROR: the addresses, or NODATA with the negative TTL (capped by the CNAMEs that led to the
 * empty name: the cached "no data" must not outlive them). A chain cut at MAX_CNAMES proves
 * nothing about the name, so it is a failure rather than a cacheable NODATA. */
static dns_status resolve(section an, name_set *set, uint16_t qtype, dns_answer *answers,
                          size_t *n_answers, uint32_t *min_ttl, uint32_t neg_ttl) {
  int cut = follow_cnames(an, set);
  uint32_t ttl = UINT32_MAX;
  collect(an, set, qtype, answers, n_answers, &ttl);
  if (*n_answers > 0) {
    *min_ttl = ttl;
    return DNS_OK;
  }
  if (cut) return DNS_ERR_SERVFAIL;
  *min_ttl = min_u32(ttl, neg_ttl);
  return DNS_ERR_NODATA;
}

dns_status dns_parse_response(const uint8_t *msg, size_t len, uint16_t id, const char *name,
                              uint16_t qtype, dns_answer *answers, size_t *n_answers,
                              uint32_t *min_ttl) {
  if (answers == NULL || n_answers == NULL || min_ttl == NULL) return DNS_ERR_MALFORMED;
  *n_answers = 0;
  *min_ttl = 0;
  name_set set;
  int qlen = encode_name(name, set.name[0]);
  if (qlen < 0) return DNS_ERR_NAME;
  set.len[0] = (size_t)qlen;
  set.n = 1;
  if (qtype != DNS_TYPE_A && qtype != DNS_TYPE_AAAA) return DNS_ERR_MISMATCH; /* never asked */
  if (msg == NULL || len < HDR_LEN) return DNS_ERR_MALFORMED;

  header h = read_header(msg);
  dns_status st = check_header(&h, id);
  if (st != DNS_OK) return st;
  size_t pos = HDR_LEN;
  st = check_question(msg, len, &pos, &set, qtype);
  if (st != DNS_OK) return st;
  section an = {msg, len, pos, h.an};
  uint32_t neg_ttl;
  st = walk_sections(&h, &an, &neg_ttl);
  if (st != DNS_OK) return st;

  unsigned rcode = h.flags & FLAG_RCODE;
  if (rcode == RCODE_NXDOMAIN) {
    *min_ttl = neg_ttl; /* RFC 2308 §5: same negative TTL as NODATA */
    return DNS_ERR_NXDOMAIN;
  }
  if (rcode != 0) return DNS_ERR_SERVFAIL;
  return resolve(an, &set, qtype, answers, n_answers, min_ttl, neg_ttl);
}
