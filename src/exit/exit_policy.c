#include "exit/exit_policy.h"

#include <string.h>
#include <sys/socket.h>

bool exit_in_prefix(const uint8_t *addr, const uint8_t *net, unsigned prefix) {
  unsigned full = prefix / 8, rest = prefix % 8;
  if (memcmp(addr, net, full) != 0) return false;
  if (!rest) return true;
  uint8_t mask = (uint8_t)(0xFF << (8 - rest));
  return (addr[full] & mask) == (net[full] & mask);
}

static bool own_match(const exit_policy *p, int family, const uint8_t *addr) {
  for (size_t i = 0; i < p->n_own; i++)
    if (p->own[i].family == family && exit_in_prefix(addr, p->own[i].addr, p->own[i].prefix))
      return true;
  return false;
}

void exit_policy_init(exit_policy *p, bool allow_private, const cfg_cidr *tunnel, size_t n) {
  memset(p, 0, sizeof *p);
  p->allow_private = allow_private;
  for (size_t i = 0; i < n && p->n_own < EXIT_POLICY_MAX_OWN; i++) {
    exit_prefix *e = &p->own[p->n_own++];
    e->family = tunnel[i].family;
    memcpy(e->addr, tunnel[i].addr, tunnel[i].family == AF_INET6 ? 16 : 4);
    e->prefix = tunnel[i].prefix;
  }
  p->n_tunnel = p->n_own;
}

void exit_policy_clear_host(exit_policy *p) { p->n_own = p->n_tunnel; }

void exit_policy_add_host(exit_policy *p, int family, const uint8_t *addr) {
  if (p->n_own >= EXIT_POLICY_MAX_OWN || own_match(p, family, addr)) return;
  exit_prefix *e = &p->own[p->n_own++];
  memset(e, 0, sizeof *e);
  e->family = family;
  memcpy(e->addr, addr, family == AF_INET6 ? 16 : 4);
  e->prefix = family == AF_INET6 ? 128 : 32;
}

static exit_verdict check4(const exit_policy *p, const uint8_t *a) {
  if (a[0] == 0) return EXIT_DENY_UNSPECIFIED;
  if (a[0] == 127) return EXIT_DENY_LOOPBACK;
  if (a[0] == 169 && a[1] == 254) return EXIT_DENY_LINKLOCAL;
  if (a[0] >= 224 && a[0] <= 239) return EXIT_DENY_MULTICAST;
  if (a[0] >= 240) return EXIT_DENY_RESERVED; /* includes 255.255.255.255 */
  if (a[0] == 100 && (a[1] & 0xC0) == 64) return EXIT_DENY_SHARED;
  bool priv = a[0] == 10 || (a[0] == 172 && (a[1] & 0xF0) == 16) || (a[0] == 192 && a[1] == 168);
  if (own_match(p, AF_INET, a)) return EXIT_DENY_OWN;
  if (priv && !p->allow_private) return EXIT_DENY_PRIVATE;
  return EXIT_ALLOW;
}

exit_verdict exit_policy_check(const exit_policy *p, int family, const uint8_t *a) {
  if (family == AF_INET) return check4(p, a);
  static const uint8_t zero[16], mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF},
                                 nat64[12] = {0, 0x64, 0xFF, 0x9B}, discard[8] = {0x01, 0x00};
  if (!memcmp(a, zero, 16)) return EXIT_DENY_UNSPECIFIED;
  if (!memcmp(a, zero, 15) && a[15] == 1) return EXIT_DENY_LOOPBACK;
  if (!memcmp(a, mapped, 12)) return check4(p, a + 12);
  if (!memcmp(a, zero, 12)) return EXIT_DENY_RESERVED; /* IPv4-compatible (deprecated) */
  if (!memcmp(a, nat64, 12)) return check4(p, a + 12);
  if (a[0] == 0x20 && a[1] == 0x02) return check4(p, a + 2);
  if (!memcmp(a, discard, 8)) return EXIT_DENY_RESERVED;
  if (a[0] == 0xFF) return EXIT_DENY_MULTICAST;
  if (a[0] == 0xFE && (a[1] & 0x80) == 0x80) return EXIT_DENY_LINKLOCAL; /* fe80::/10, fec0::/10 */
  if (own_match(p, AF_INET6, a)) return EXIT_DENY_OWN;
  if ((a[0] & 0xFE) == 0xFC && !p->allow_private) return EXIT_DENY_PRIVATE;
  return EXIT_ALLOW;
}

const char *exit_verdict_str(exit_verdict v) {
  switch (v) {
    case EXIT_ALLOW:
      return "allowed";
    case EXIT_DENY_UNSPECIFIED:
      return "unspecified address";
    case EXIT_DENY_LOOPBACK:
      return "loopback";
    case EXIT_DENY_LINKLOCAL:
      return "link-local";
    case EXIT_DENY_PRIVATE:
      return "private network (AllowPrivate = no)";
    case EXIT_DENY_SHARED:
      return "shared address space (100.64/10)";
    case EXIT_DENY_MULTICAST:
      return "multicast";
    case EXIT_DENY_RESERVED:
      return "reserved";
    case EXIT_DENY_OWN:
      return "the server's own address or tunnel subnet";
  }
  return "?";
}
