/* SOCKS4/4a/5 wire formats, written from RFC 1928, RFC 1929 and the SOCKS4 / SOCKS4a memos.
 *
 * Every parser checks fields in wire order and looks only at buf[0..len), so for any input the
 * answers for growing prefixes are NEED_MORE… followed by one final answer (DONE with the same
 * *consumed, or the same error) that longer prefixes keep. Errors are reported as soon as the
 * offending byte is present. *consumed is 0 and *out is left untouched unless the answer is DONE,
 * so a caller can keep one output structure across NEED_MORE rounds. */
#include "socks/socks_proto.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "util/bytes.h"
#include "util/addr_fmt.h"

#define SOCKS4_VERSION 4
#define SOCKS5_VERSION 5
#define USERPASS_VERSION 1
#define SOCKS4_HDR_LEN 8     /* VN CD DSTPORT(2) DSTIP(4) */
#define SOCKS5_REQ_HDR_LEN 4 /* VER CMD RSV ATYP */
#define UDP_HDR_FIXED_LEN 4  /* RSV(2) FRAG ATYP */
#define SOCKS4_STR_MAX 255   /* user id / host name bytes before the NUL, to fit char[256] */

static size_t min_size(size_t a, size_t b) { return a < b ? a : b; }

/* ---- length-prefixed strings (RFC 1929 UNAME/PASSWD, RFC 1928 domain names) ---- */

/* Checks LEN BYTES… at p[0..len); on DONE *size is 1 + LEN. Embedded NULs are refused because
 * the strings are handed on as C strings: a name that silently ends early is a different name. */
static socks_status check_lstring(const uint8_t *p, size_t len, int allow_empty, size_t *size) {
  if (len < 1) return SOCKS_NEED_MORE;
  size_t n = p[0];
  if (n == 0 && !allow_empty) return SOCKS_ERR_MALFORMED;
  if (memchr(p + 1, 0, min_size(len - 1, n)) != NULL) return SOCKS_ERR_MALFORMED;
  if (len - 1 < n) return SOCKS_NEED_MORE;
  *size = 1 + n;
  return SOCKS_DONE;
}

/* Copies a string checked by check_lstring into dst (256 bytes). */
static void copy_lstring(char *dst, const uint8_t *p) {
  memcpy(dst, p + 1, p[0]);
  dst[p[0]] = '\0';
}

/* ---- SOCKS5 addresses: ATYP-selected DST.ADDR followed by DST.PORT ---- */

/* Checks the address and port at p[0..len) (the bytes after ATYP); *size includes the port. */
static socks_status check_addr(uint8_t atyp, const uint8_t *p, size_t len, size_t *size) {
  size_t n;
  switch (atyp) {
    case SOCKS_ADDR_IPV4:
      n = 4;
      break;
    case SOCKS_ADDR_IPV6:
      n = 16;
      break;
    case SOCKS_ADDR_DOMAIN: {
      socks_status st = check_lstring(p, len, 0, &n);
      if (st != SOCKS_DONE) return st;
      break;
    }
    default:
      return SOCKS_ERR_ATYP;
  }
  if (len < n + 2) return SOCKS_NEED_MORE;
  *size = n + 2;
  return SOCKS_DONE;
}

/* Decodes an address that check_addr accepted. */
static void read_addr(uint8_t atyp, const uint8_t *p, socks_addr *a) {
  size_t n = atyp == SOCKS_ADDR_IPV4 ? 4 : atyp == SOCKS_ADDR_IPV6 ? 16 : 1u + p[0];
  memset(a, 0, sizeof *a);
  a->type = (socks_atyp)atyp;
  if (atyp == SOCKS_ADDR_DOMAIN) {
    copy_lstring(a->domain, p);
  } else {
    memcpy(a->ip, p, n);
  }
  a->port = be16_load(p + n);
}

/* Length of a's domain, or 0 if it is empty or not NUL-terminated within the array (such an
 * address cannot be put on the wire). */
static size_t domain_len(const socks_addr *a) {
  const char *nul = memchr(a->domain, 0, sizeof a->domain);
  return nul != NULL ? (size_t)(nul - a->domain) : 0;
}

/* Writes ATYP DST.ADDR DST.PORT; returns the length, or 0 if a is invalid or cap is too small. */
static size_t put_addr(const socks_addr *a, uint8_t *out, size_t cap) {
  size_t n;
  switch (a->type) {
    case SOCKS_ADDR_IPV4:
      n = 4;
      break;
    case SOCKS_ADDR_IPV6:
      n = 16;
      break;
    case SOCKS_ADDR_DOMAIN:
      n = domain_len(a);
      if (n == 0) return 0;
      break;
    default:
      return 0;
  }
  size_t total = (a->type == SOCKS_ADDR_DOMAIN ? 2u : 1u) + n + 2; /* ATYP [LEN] ADDR PORT */
  if (cap < total) return 0;
  uint8_t *p = out;
  *p++ = (uint8_t)a->type;
  if (a->type == SOCKS_ADDR_DOMAIN) {
    *p++ = (uint8_t)n;
    memcpy(p, a->domain, n);
  } else {
    memcpy(p, a->ip, n);
  }
  be16_store(p + n, a->port);
  return total;
}

/* ---- SOCKS5 ---- */

socks_status socks5_parse_greeting(const uint8_t *buf, size_t len, socks5_greeting *out,
                                   size_t *consumed) {
  *consumed = 0;
  if (len < 1) return SOCKS_NEED_MORE;
  if (buf[0] != SOCKS5_VERSION) return SOCKS_ERR_VERSION;
  if (len < 2) return SOCKS_NEED_MORE;
  size_t nmethods = buf[1];
  if (nmethods == 0) return SOCKS_ERR_MALFORMED; /* RFC 1928 §3: NMETHODS is 1..255 */
  if (len < 2 + nmethods) return SOCKS_NEED_MORE;
  out->offers_none = memchr(buf + 2, SOCKS5_METHOD_NONE, nmethods) != NULL;
  out->offers_userpass = memchr(buf + 2, SOCKS5_METHOD_USERPASS, nmethods) != NULL;
  *consumed = 2 + nmethods;
  return SOCKS_DONE;
}

socks_status socks5_parse_userpass(const uint8_t *buf, size_t len, socks5_userpass *out,
                                   size_t *consumed) {
  *consumed = 0;
  if (len < 1) return SOCKS_NEED_MORE;
  if (buf[0] != USERPASS_VERSION) return SOCKS_ERR_VERSION;
  /* RFC 1929 gives both lengths as 1..255; an empty password is still accepted because some
   * clients send one when only the user name matters. An empty user name is not. */
  size_t ulen, plen;
  socks_status st = check_lstring(buf + 1, len - 1, 0, &ulen);
  if (st != SOCKS_DONE) return st;
  st = check_lstring(buf + 1 + ulen, len - 1 - ulen, 1, &plen);
  if (st != SOCKS_DONE) return st;
  copy_lstring(out->user, buf + 1);
  copy_lstring(out->pass, buf + 1 + ulen);
  *consumed = 1 + ulen + plen;
  return SOCKS_DONE;
}

socks_status socks5_parse_request(const uint8_t *buf, size_t len, socks5_request *out,
                                  size_t *consumed) {
  *consumed = 0;
  if (len < 1) return SOCKS_NEED_MORE;
  if (buf[0] != SOCKS5_VERSION) return SOCKS_ERR_VERSION;
  /* CMD is judged by the caller; RSV is ignored to be lenient with sloppy clients. */
  if (len < SOCKS5_REQ_HDR_LEN) return SOCKS_NEED_MORE;
  size_t alen;
  socks_status st = check_addr(buf[3], buf + SOCKS5_REQ_HDR_LEN, len - SOCKS5_REQ_HDR_LEN, &alen);
  if (st != SOCKS_DONE) return st;
  out->cmd = buf[1];
  read_addr(buf[3], buf + SOCKS5_REQ_HDR_LEN, &out->addr);
  *consumed = SOCKS5_REQ_HDR_LEN + alen;
  return SOCKS_DONE;
}

socks_status socks5_parse_udp(const uint8_t *buf, size_t len, uint8_t *frag, socks_addr *addr,
                              size_t *hdr_len) {
  *hdr_len = 0;
  /* A datagram is complete as received, so "need more" means truncated. */
  if (len < UDP_HDR_FIXED_LEN) return SOCKS_ERR_MALFORMED;
  if (buf[0] != 0 || buf[1] != 0) return SOCKS_ERR_MALFORMED;
  size_t alen;
  socks_status st = check_addr(buf[3], buf + UDP_HDR_FIXED_LEN, len - UDP_HDR_FIXED_LEN, &alen);
  if (st == SOCKS_NEED_MORE) return SOCKS_ERR_MALFORMED;
  if (st != SOCKS_DONE) return st;
  *frag = buf[2];
  read_addr(buf[3], buf + UDP_HDR_FIXED_LEN, addr);
  *hdr_len = UDP_HDR_FIXED_LEN + alen;
  return SOCKS_DONE;
}

size_t socks5_build_udp_header(const socks_addr *addr, uint8_t *out, size_t cap) {
  if (cap < 3) return 0;
  size_t n = put_addr(addr, out + 3, cap - 3);
  if (n == 0) return 0;
  out[0] = 0; /* RSV */
  out[1] = 0;
  out[2] = 0; /* FRAG: we never fragment */
  return 3 + n;
}

size_t socks5_build_reply(uint8_t rep, const socks_addr *bnd, uint8_t *out, size_t cap) {
  static const socks_addr unspecified = {.type = SOCKS_ADDR_IPV4}; /* 0.0.0.0:0 */
  if (cap < 3) return 0;
  size_t n = put_addr(bnd != NULL ? bnd : &unspecified, out + 3, cap - 3);
  if (n == 0) return 0;
  out[0] = SOCKS5_VERSION;
  out[1] = rep;
  out[2] = 0; /* RSV */
  return 3 + n;
}

/* ---- SOCKS4 / 4a ---- */

/* Finds the NUL ending a SOCKS4 string at p[0..len): at most SOCKS4_STR_MAX bytes, then NUL.
 * On DONE *size includes the NUL. */
static socks_status check_cstring(const uint8_t *p, size_t len, size_t *size) {
  size_t have = min_size(len, SOCKS4_STR_MAX + 1);
  const uint8_t *nul = memchr(p, 0, have);
  if (nul == NULL) return have > SOCKS4_STR_MAX ? SOCKS_ERR_TOO_LONG : SOCKS_NEED_MORE;
  *size = (size_t)(nul - p) + 1;
  return SOCKS_DONE;
}

/* SOCKS4a marks "resolve the host name for me" with the invalid address 0.0.0.x, x != 0. */
static int is_socks4a(const uint8_t *ip) {
  return ip[0] == 0 && ip[1] == 0 && ip[2] == 0 && ip[3] != 0;
}

socks_status socks4_parse_request(const uint8_t *buf, size_t len, socks4_request *out,
                                  size_t *consumed) {
  *consumed = 0;
  if (len < 1) return SOCKS_NEED_MORE;
  if (buf[0] != SOCKS4_VERSION) return SOCKS_ERR_VERSION;
  if (len < 2) return SOCKS_NEED_MORE;
  if (buf[1] != SOCKS_CMD_CONNECT && buf[1] != SOCKS_CMD_BIND) return SOCKS_ERR_COMMAND;
  if (len < SOCKS4_HDR_LEN) return SOCKS_NEED_MORE;
  size_t ulen, hlen = 0;
  socks_status st = check_cstring(buf + SOCKS4_HDR_LEN, len - SOCKS4_HDR_LEN, &ulen);
  if (st != SOCKS_DONE) return st;
  size_t total = SOCKS4_HDR_LEN + ulen;
  int v4a = is_socks4a(buf + 4);
  if (v4a) {
    st = check_cstring(buf + total, len - total, &hlen);
    if (st != SOCKS_DONE) return st;
    if (hlen == 1) return SOCKS_ERR_MALFORMED; /* empty host name */
  }
  memset(out, 0, sizeof *out);
  out->cmd = buf[1];
  out->addr.port = be16_load(buf + 2);
  memcpy(out->user, buf + SOCKS4_HDR_LEN, ulen); /* includes the NUL */
  if (v4a) {
    out->addr.type = SOCKS_ADDR_DOMAIN;
    memcpy(out->addr.domain, buf + total, hlen);
  } else {
    out->addr.type = SOCKS_ADDR_IPV4;
    memcpy(out->addr.ip, buf + 4, 4);
  }
  *consumed = total + hlen;
  return SOCKS_DONE;
}

size_t socks4_build_reply(uint8_t cd, const socks_addr *bnd, uint8_t out[8]) {
  memset(out, 0, 8); /* VN = 0; port and address stay zero unless bnd is IPv4 */
  out[1] = cd;
  if (bnd != NULL && bnd->type == SOCKS_ADDR_IPV4) {
    be16_store(out + 2, bnd->port);
    memcpy(out + 4, bnd->ip, 4);
  }
  return 8;
}

/* ---- names and formatting for logs ---- */

const char *socks5_rep_name(uint8_t rep) {
  static const char *const names[] = {
      "succeeded",           "general-failure",       "not-allowed",
      "network-unreachable", "host-unreachable",      "connection-refused",
      "ttl-expired",         "command-not-supported", "address-type-not-supported",
  };
  return rep < sizeof names / sizeof names[0] ? names[rep] : "unknown";
}

/* Writes a domain name into buf[0..len) with every byte that could confuse a log reader (control
 * bytes, space, backslash, non-ASCII) as \xNN, so a client cannot forge log lines or fields.
 * Output that does not fit is cut between characters, never inside an escape. Returns the length
 * written (always < len) or len if the name was cut. */
static size_t put_escaped(char *buf, size_t len, const char *s, size_t n) {
  size_t o = 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char ch = (unsigned char)s[i];
    int plain = ch > 0x20 && ch < 0x7f && ch != '\\';
    if (o + (plain ? 1 : 4) >= len) {
      buf[o] = '\0';
      return len;
    }
    if (plain) {
      buf[o++] = (char)ch;
    } else {
      snprintf(buf + o, len - o, "\\x%02x", ch);
      o += 4;
    }
  }
  buf[o] = '\0';
  return o;
}

void socks_addr_format(const socks_addr *a, char *buf, size_t len) {
  if (buf == NULL || len == 0) return;
  switch (a != NULL ? (int)a->type : 0) {
    case SOCKS_ADDR_IPV4:
      addr_format(AF_INET, a->ip, a->port, buf, len);
      break;
    case SOCKS_ADDR_IPV6:
      addr_format(AF_INET6, a->ip, a->port, buf, len);
      break;
    case SOCKS_ADDR_DOMAIN: {
      /* Bounded: a domain without its NUL is shown up to the array's end, not beyond. */
      const char *nul = memchr(a->domain, 0, sizeof a->domain);
      size_t n = nul != NULL ? (size_t)(nul - a->domain) : sizeof a->domain;
      size_t o = put_escaped(buf, len, a->domain, n);
      /* Like snprintf, a cut result stays a prefix of the full text. */
      if (o < len) snprintf(buf + o, len - o, ":%u", a->port);
      break;
    }
    default:
      snprintf(buf, len, "?");
  }
}

/* ---- dial results and destinations ---- */

uint8_t socks5_rep_for_dial(dial_error err) {
  switch (err) {
    case DIAL_OK:
      return SOCKS5_REP_SUCCEEDED;
    case DIAL_ERR_NOT_ALLOWED:
      return SOCKS5_REP_NOT_ALLOWED;
    case DIAL_ERR_NET_UNREACHABLE:
      return SOCKS5_REP_NET_UNREACHABLE;
    case DIAL_ERR_HOST_UNREACHABLE:
    case DIAL_ERR_NAME_NOT_FOUND:
      return SOCKS5_REP_HOST_UNREACHABLE;
    case DIAL_ERR_REFUSED:
      return SOCKS5_REP_REFUSED;
    case DIAL_ERR_TIMEOUT:
      return SOCKS5_REP_TTL_EXPIRED;
    case DIAL_ERR_GENERAL:
    case DIAL_ERR_TUNNEL_DOWN:
    default:
      return SOCKS5_REP_GENERAL_FAILURE;
  }
}

uint8_t socks4_rep_for_dial(dial_error err) {
  return err == DIAL_OK ? SOCKS4_REP_GRANTED : SOCKS4_REP_REJECTED;
}

/* The two enums share their values (the SOCKS5 ATYP numbers), but each kind is spelled out so a
 * change on either side cannot silently mistranslate. */
void socks_addr_to_dial_dest(const socks_addr *a, dial_dest *out) {
  memset(out, 0, sizeof *out);
  out->port = a->port;
  switch (a->type) {
    case SOCKS_ADDR_IPV4:
      out->type = DIAL_DEST_IPV4;
      memcpy(out->ip, a->ip, 4);
      break;
    case SOCKS_ADDR_IPV6:
      out->type = DIAL_DEST_IPV6;
      memcpy(out->ip, a->ip, 16);
      break;
    case SOCKS_ADDR_DOMAIN:
    default:
      out->type = DIAL_DEST_NAME;
      snprintf(out->name, sizeof out->name, "%.*s", (int)(sizeof a->domain - 1), a->domain);
      break;
  }
}
