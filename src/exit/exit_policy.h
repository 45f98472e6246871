/* The exit policy: which destinations the server may connect to on a peer's behalf. Default
 * deny for everything that is not the public Internet: special-purpose IPv4 and IPv6 ranges,
 * the tunnel's own subnets and the host's own interface addresses (so a peer cannot reach
 * services bound to the server machine or its private networks). Pure code, no I/O. */
#ifndef AWGPROXY_EXIT_EXIT_POLICY_H
#define AWGPROXY_EXIT_EXIT_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"

typedef enum {
  EXIT_ALLOW = 0,
  EXIT_DENY_UNSPECIFIED, /* 0.0.0.0/8, :: */
  EXIT_DENY_LOOPBACK,    /* 127/8, ::1 */
  EXIT_DENY_LINKLOCAL,   /* 169.254/16, fe80::/10, fec0::/10 */
  EXIT_DENY_PRIVATE,     /* RFC 1918, fc00::/7 (lifted by AllowPrivate) */
  EXIT_DENY_SHARED,      /* 100.64/10 (carrier-grade NAT) */
  EXIT_DENY_MULTICAST,   /* 224/4, ff00::/8 */
  EXIT_DENY_RESERVED,    /* 240/4, 255.255.255.255, ::/96, 100::/64 */
  EXIT_DENY_OWN,         /* the tunnel's subnets, the host's interface addresses */
} exit_verdict;

#define EXIT_POLICY_MAX_OWN 256

typedef struct {
  int family;
  uint8_t addr[16];
  uint8_t prefix;
} exit_prefix;

typedef struct {
  bool allow_private;
  exit_prefix own[EXIT_POLICY_MAX_OWN]; /* tunnel subnets, then host addresses (/32, /128) */
  size_t n_own, n_tunnel;
} exit_policy;

/* Sets allow_private and the tunnel subnets (the config's Address entries, whole prefixes). */
void exit_policy_init(exit_policy *p, bool allow_private, const cfg_cidr *tunnel, size_t n);
/* Replaces the host addresses (exact addresses; extra ones beyond the capacity are ignored). */
void exit_policy_clear_host(exit_policy *p);
void exit_policy_add_host(exit_policy *p, int family, const uint8_t *addr);
/* The verdict for a destination (AF_INET: 4 bytes, AF_INET6: 16 bytes). IPv4-mapped, NAT64
 * (64:ff9b::/96) and 6to4 (2002::/16) addresses are judged by the IPv4 address they carry. */
exit_verdict exit_policy_check(const exit_policy *p, int family, const uint8_t *addr);
/* True when addr lies in net/prefix (byte strings of the same family, prefix in bits). */
bool exit_in_prefix(const uint8_t *addr, const uint8_t *net, unsigned prefix);
const char *exit_verdict_str(exit_verdict v);

#endif
