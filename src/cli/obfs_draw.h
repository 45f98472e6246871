/* Fresh obfuscation parameters for `awgproxy init-server`: drawn at random, and valid by
 * construction under ../shared/spec/awg-obfuscation.md §7 and docs/spec/decisions.md, so that an
 * operator never has to invent them. */
#ifndef AWGPROXY_CLI_OBFS_DRAW_H
#define AWGPROXY_CLI_OBFS_DRAW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
  OBFS_PROFILE_AWG2 = 0, /* AmneziaWG 2.0: junk, S1-S4, H1-H4 ranges, an I1 that imitates */
  OBFS_PROFILE_AWG3,     /* 2.0 plus AWG 3.x header protection and random trailers */
  OBFS_PROFILE_WIREGUARD /* no obfuscation: plain WireGuard, for stock WireGuard apps */
} obfs_profile;

/* "awg2", "awg3" or "wireguard"; -1 for anything else. */
int obfs_profile_parse(const char *name, obfs_profile *out);
const char *obfs_profile_name(obfs_profile p);

typedef struct {
  uint32_t jc, jmin, jmax;
  uint32_t s[4];
  uint32_t h_lo[4], h_hi[4];
  char i1[4096];       /* tag template, "" = none */
  const char *i1_kind; /* what I1 imitates, for the comment above it */
  bool header_protection;
  uint8_t hp_key[32];
} obfs_drawn;

/* Draws a parameter set for profile p (libsodium's CSPRNG). */
void obfs_draw(obfs_profile p, obfs_drawn *out);

/* True when the draw obeys every rule init-server promises (distinct sizes, no transport length
 * that a receiver could mistake for a handshake, ranges disjoint and clear of 1..4). The draw
 * loops until this holds; the tests check it independently of awgproxy check. */
bool obfs_drawn_ok(const obfs_drawn *d, obfs_profile p);

/* Writes the [Interface] lines (with comments) for d into buf; returns the length, or 0 if buf
 * is too small. */
size_t obfs_format(const obfs_drawn *d, obfs_profile p, char *buf, size_t cap);

#endif
