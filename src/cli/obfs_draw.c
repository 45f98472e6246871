/* Drawing obfuscation parameters that are valid by construction (obfs_draw.h). The rules come
 * from ../shared/spec/awg-obfuscation.md: §7 (ranges, overlap), §4.4 (a transport datagram whose
 * length equals a padded handshake's can be misread as one) and §3.5/§6 (what stock peers do
 * with S4 and the I-packets). */
#include "cli/obfs_draw.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>

/* WireGuard message sizes without padding (init, response, cookie, empty transport). */
#define SZ_INIT 148u
#define SZ_RESPONSE 92u
#define SZ_COOKIE 64u
#define SZ_TRANSPORT 32u
/* Header ranges start above the plain WireGuard types 1..4. Without header protection the type
 * is in the clear: no range is narrower than H_MIN_WIDTH, so that it never becomes a constant a
 * classifier can match. With it (awg3) the type is masked on the wire, and with RandomTrailers a
 * receiver tests every long datagram against H1..H3 with a meaningless mask, dropping a transport
 * packet with probability sum(|H_k|) / 2^32 (awg3-obfuscation.md R26): there each range is
 * H3_MIN_WIDTH..H3_MAX_WIDTH wide, under 2^-22 in all. */
#define H_FLOOR 5u
#define H_MIN_WIDTH 65536u
#define H3_MIN_WIDTH 256u
#define H3_MAX_WIDTH 1024u

int obfs_profile_parse(const char *name, obfs_profile *out) {
  static const char *const names[] = {"awg2", "awg3", "wireguard"};
  for (int i = 0; i < 3; i++)
    if (!strcmp(name, names[i])) return *out = (obfs_profile)i, 0;
  return -1;
}

const char *obfs_profile_name(obfs_profile p) {
  return p == OBFS_PROFILE_AWG3 ? "awg3" : p == OBFS_PROFILE_WIREGUARD ? "wireguard" : "awg2";
}

static uint32_t uniform(uint32_t lo, uint32_t hi) { /* inclusive */
  return lo + randombytes_uniform(hi - lo + 1);
}

/* ---- I1: the first packet of a common protocol ------------------------------------------- */

static size_t hex_append(char *out, size_t at, size_t cap, const uint8_t *b, size_t n) {
  static const char digits[] = "0123456789abcdef";
  for (size_t i = 0; i < n && at + 2 < cap; i++) {
    out[at++] = digits[b[i] >> 4];
    out[at++] = digits[b[i] & 15];
  }
  out[at] = '\0';
  return at;
}

/* A DNS query (RD+AD set, one question, an EDNS0 OPT record, as dig and stub resolvers send
 * it) for a popular name: <r 2> is the random query ID, everything after it is fixed. */
static void draw_dns_query(obfs_drawn *d) {
  static const char *const names[] = {
      "www.google.com",    "www.youtube.com",    "www.microsoft.com",     "www.apple.com",
      "www.wikipedia.org", "www.cloudflare.com", "www.bing.com",          "www.amazon.com",
      "github.com",        "www.office.com",     "update.googleapis.com", "time.windows.com"};
  static const uint16_t qtypes[] = {1, 28, 65}; /* A, AAAA, HTTPS */
  const char *name = names[randombytes_uniform(sizeof names / sizeof *names)];
  uint8_t msg[300];
  size_t n = 0;
  static const uint8_t header[] = {0x01, 0x20, 0, 1, 0, 0, 0, 0, 0, 1};
  memcpy(msg, header, sizeof header);
  n = sizeof header;
  for (const char *p = name; *p;) {
    const char *dot = strchr(p, '.');
    size_t len = dot ? (size_t)(dot - p) : strlen(p);
    msg[n++] = (uint8_t)len;
    memcpy(msg + n, p, len);
    n += len;
    p += len + (dot != NULL);
  }
  msg[n++] = 0;
  uint16_t qtype = qtypes[randombytes_uniform(3)];
  const uint8_t tail[] = {(uint8_t)(qtype >> 8),
                          (uint8_t)qtype,
                          0,
                          1, /* class IN */
                          0,
                          0,
                          41,
                          0x04,
                          0xd0,
                          0,
                          0,
                          0,
                          0,
                          0,
                          0}; /* OPT, 1232-byte UDP */
  memcpy(msg + n, tail, sizeof tail);
  n += sizeof tail;
  size_t at = (size_t)snprintf(d->i1, sizeof d->i1, "<r 2><b 0x");
  at = hex_append(d->i1, at, sizeof d->i1, msg, n);
  snprintf(d->i1 + at, sizeof d->i1 - at, ">");
  d->i1_kind = "a DNS query";
}

/* A QUIC v1 Initial as browsers send it: long header, version 1, an 8-byte random destination
 * connection ID, a random source ID or none, no token, then the protected packet number and
 * payload (random to an observer) up to a browser's usual datagram size. */
static void draw_quic_initial(obfs_drawn *d) {
  static const unsigned sizes[] = {1200, 1250, 1252, 1280, 1357};
  unsigned total = sizes[randombytes_uniform(sizeof sizes / sizeof *sizes)];
  unsigned scid = randombytes_uniform(2) ? 8 : 0;
  unsigned header = 1 + 4 + 1 + 8 + 1 + scid + 1 + 2;
  unsigned rest = total - header; /* packet number + payload, the varint's value */
  unsigned first = 0xc0 | randombytes_uniform(16);
  if (scid)
    snprintf(d->i1, sizeof d->i1, "<b 0x%02x0000000108><r 8><b 0x08><r 8><b 0x00%04x><r %u>", first,
             0x4000 | rest, rest);
  else
    snprintf(d->i1, sizeof d->i1, "<b 0x%02x0000000108><r 8><b 0x0000%04x><r %u>", first,
             0x4000 | rest, rest);
  d->i1_kind = "a QUIC Initial";
}

/* ---- sizes and headers --------------------------------------------------------------------- */

static bool sizes_ok(const obfs_drawn *d, obfs_profile p) {
  const uint32_t *s = d->s;
  for (int a = 0; a < 4; a++)
    for (int b = a + 1; b < 4; b++)
      if (s[a] == s[b]) return false;
  uint32_t hs[3] = {s[0] + SZ_INIT, s[1] + SZ_RESPONSE, s[2] + SZ_COOKIE};
  if (hs[0] == hs[1] || hs[0] == hs[2] || hs[1] == hs[2]) return false;
  /* Transport datagrams are S4 + 32 + 16k bytes (§4.4): none may equal a padded handshake. */
  uint32_t t0 = s[3] + SZ_TRANSPORT;
  for (int k = 0; k < 3; k++)
    if (hs[k] >= t0 && (hs[k] - t0) % 16 == 0) return false;
  if (p == OBFS_PROFILE_AWG3)
    for (int k = 0; k < 4; k++)
      if (s[k] < 12) return false; /* header protection masks 12 bytes of padding */
  return true;
}

static bool headers_ok(const obfs_drawn *d, obfs_profile p) {
  uint32_t min = p == OBFS_PROFILE_AWG3 ? H3_MIN_WIDTH : H_MIN_WIDTH;
  for (int a = 0; a < 4; a++) {
    if (d->h_lo[a] < H_FLOOR || d->h_hi[a] < d->h_lo[a] || d->h_hi[a] - d->h_lo[a] < min - 1)
      return false;
    if (p == OBFS_PROFILE_AWG3 && d->h_hi[a] - d->h_lo[a] > H3_MAX_WIDTH - 1) return false;
    for (int b = a + 1; b < 4; b++)
      if (d->h_lo[a] <= d->h_hi[b] && d->h_lo[b] <= d->h_hi[a]) return false;
  }
  return true;
}

bool obfs_drawn_ok(const obfs_drawn *d, obfs_profile p) {
  if (p == OBFS_PROFILE_WIREGUARD) return true;
  return sizes_ok(d, p) && headers_ok(d, p) && d->jc >= 1 && d->jmin <= d->jmax && d->jmax <= 1280;
}

static void draw_sizes(obfs_drawn *d, obfs_profile p) {
  uint32_t floor = p == OBFS_PROFILE_AWG3 ? 12 : 15;
  /* S4 pads every transport datagram: at most 20 keeps a stock client's 1420-byte MTU packets
   * within a 1500-byte path (20 + 32 + 1420 = 1472). S4 = 0 would leave the transport header at
   * a fixed offset. */
  d->s[0] = uniform(floor, 150);
  d->s[1] = uniform(floor, 150);
  d->s[2] = uniform(floor, 100);
  d->s[3] = uniform(p == OBFS_PROFILE_AWG3 ? 12 : 1, 20);
}

/* Four disjoint ranges: eight distinct points in [H_FLOOR, 2^32), sorted and paired, assigned to
 * H1..H4 in a random order. */
static void draw_headers(obfs_drawn *d, obfs_profile p) {
  uint32_t v[8];
  for (int i = 0; i < 8; i++) {
    randombytes_buf(&v[i], sizeof v[i]);
    if (v[i] < H_FLOOR) v[i] = H_FLOOR + i;
  }
  for (int i = 1; i < 8; i++)
    for (int j = i; j > 0 && v[j - 1] > v[j]; j--) {
      uint32_t t = v[j];
      v[j] = v[j - 1];
      v[j - 1] = t;
    }
  int order[4] = {0, 1, 2, 3};
  for (int i = 3; i > 0; i--) {
    int j = (int)randombytes_uniform((uint32_t)i + 1);
    int t = order[i];
    order[i] = order[j];
    order[j] = t;
  }
  for (int k = 0; k < 4; k++) {
    d->h_lo[k] = v[2 * order[k]];
    d->h_hi[k] = v[2 * order[k] + 1];
    /* narrow, from the same start: still clear of the others unless the points were close, and
     * then headers_ok() asks for another draw */
    if (p == OBFS_PROFILE_AWG3 && d->h_lo[k] <= UINT32_MAX - H3_MAX_WIDTH)
      d->h_hi[k] = d->h_lo[k] + uniform(H3_MIN_WIDTH - 1, H3_MAX_WIDTH - 1);
  }
}

void obfs_draw(obfs_profile p, obfs_drawn *d) {
  memset(d, 0, sizeof *d);
  if (p == OBFS_PROFILE_WIREGUARD) return;
  d->jc = uniform(3, 8);
  d->jmin = uniform(40, 80);
  d->jmax = uniform(d->jmin + 50, 1000);
  do draw_sizes(d, p);
  while (!sizes_ok(d, p));
  do draw_headers(d, p);
  while (!headers_ok(d, p));
  if (randombytes_uniform(2))
    draw_dns_query(d);
  else
    draw_quic_initial(d);
  if (p == OBFS_PROFILE_AWG3) {
    d->header_protection = true;
    randombytes_buf(d->hp_key, sizeof d->hp_key);
  }
}

size_t obfs_format(const obfs_drawn *d, obfs_profile p, char *buf, size_t cap) {
  if (p == OBFS_PROFILE_WIREGUARD) {
    int n = snprintf(buf, cap,
                     "\n# No obfuscation (--profile wireguard): plain WireGuard, which stock "
                     "WireGuard apps speak\n# and which a DPI box recognises at once.\n");
    return n > 0 && (size_t)n < cap ? (size_t)n : 0;
  }
  char hp[256] = "";
  if (d->header_protection) {
    char b64[sodium_base64_ENCODED_LEN(32, sodium_base64_VARIANT_ORIGINAL)];
    sodium_bin2base64(b64, sizeof b64, d->hp_key, sizeof d->hp_key, sodium_base64_VARIANT_ORIGINAL);
    /* AWG 3.x timing ranges too: WireGuard's exact 120 s rekey and 10 s passive keepalive are
     * a rhythm a classifier can time (bench/dpi); each use draws anew from the range. */
    snprintf(hp, sizeof hp,
             "HeaderProtectionKey = %s\nRandomTrailers = on\n"
             "RekeyAfterTime = 100-140\nKeepaliveTimeout = 8-12\n",
             b64);
    sodium_memzero(b64, sizeof b64);
  }
  int n = snprintf(
      buf, cap,
      "\n# AmneziaWG obfuscation, drawn by awgproxy init-server (profile %s).\n"
      "# S1-S4, H1-H4%s must be identical on the server and every client: add-peer copies them.\n"
      "# Jc, Jmin, Jmax and I1 are sent by whichever side starts a handshake.\n"
      "Jc = %u\nJmin = %u\nJmax = %u\n"
      "S1 = %u\nS2 = %u\nS3 = %u\nS4 = %u\n"
      "H1 = %u-%u\nH2 = %u-%u\nH3 = %u-%u\nH4 = %u-%u\n"
      "# I1 imitates %s.\nI1 = %s\n%s",
      obfs_profile_name(p), d->header_protection ? ", HeaderProtectionKey and RandomTrailers" : "",
      d->jc, d->jmin, d->jmax, d->s[0], d->s[1], d->s[2], d->s[3], d->h_lo[0], d->h_hi[0],
      d->h_lo[1], d->h_hi[1], d->h_lo[2], d->h_hi[2], d->h_lo[3], d->h_hi[3], d->i1_kind, d->i1,
      hp);
  sodium_memzero(hp, sizeof hp);
  return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}
