/* Exit addresses and flow tuples: conversions to lwIP and socket addresses, comparison, hashing
 * and the one printed form. */
#include <arpa/inet.h>
#include <string.h>

#include "device/ipstack.h"
#include "exit/exit_internal.h"
#include "util/addr_fmt.h"
#include "util/sockaddr.h"

size_t exit_addr_len(int family) { return family == AF_INET6 ? 16 : 4; }

void exit_addr_to_ip(const exit_addr *a, ip_addr_t *out) {
  ipstack_ip_from_bytes(out, a->family, a->a);
}

void exit_addr_from_ip(const ip_addr_t *ip, exit_addr *out) {
  memset(out, 0, sizeof *out);
  if (IP_IS_V6(ip)) {
    out->family = AF_INET6;
    memcpy(out->a, ip_2_ip6(ip)->addr, 16);
  } else {
    out->family = AF_INET;
    memcpy(out->a, &ip_2_ip4(ip)->addr, 4);
  }
}

void exit_addr_to_sockaddr(const exit_addr *a, uint16_t port, struct sockaddr_storage *ss) {
  sockaddr_make(ss, a->family == AF_INET6 ? AF_INET6 : AF_INET, a->a, port);
}

bool exit_addr_equal(const exit_addr *a, const exit_addr *b) {
  return a->family == b->family && !memcmp(a->a, b->a, exit_addr_len(a->family));
}

void exit_addr_format(const exit_addr *a, uint16_t port, char *buf, size_t len) {
  addr_format(a->family, a->a, port, buf, len);
}

uint32_t exit_tuple_hash(const exit_tuple *t) {
  uint32_t h = 2166136261u;
  size_t n = exit_addr_len(t->src.family);
  for (size_t i = 0; i < n; i++) h = (h ^ t->src.a[i]) * 16777619u;
  for (size_t i = 0; i < n; i++) h = (h ^ t->dst.a[i]) * 16777619u;
  h = (h ^ t->sport) * 16777619u;
  h = (h ^ t->dport) * 16777619u;
  return h;
}

bool exit_tuple_equal(const exit_tuple *a, const exit_tuple *b) {
  return a->sport == b->sport && a->dport == b->dport && exit_addr_equal(&a->src, &b->src) &&
         exit_addr_equal(&a->dst, &b->dst);
}
