#include "util/sockaddr.h"

#include <netinet/in.h>
#include <string.h>

socklen_t sockaddr_make(struct sockaddr_storage *ss, int family, const void *ip, uint16_t port) {
  memset(ss, 0, sizeof *ss);
  if (family == AF_INET6) {
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(port);
    if (ip) memcpy(&a->sin6_addr, ip, 16);
    return sizeof *a;
  }
  struct sockaddr_in *a = (struct sockaddr_in *)ss;
  a->sin_family = AF_INET;
  a->sin_port = htons(port);
  if (ip) memcpy(&a->sin_addr, ip, 4);
  return sizeof *a;
}

uint16_t sockaddr_port(const struct sockaddr *sa) {
  if (sa->sa_family == AF_INET6) return ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
  if (sa->sa_family == AF_INET) return ntohs(((const struct sockaddr_in *)sa)->sin_port);
  return 0;
}

void sockaddr_set_port(struct sockaddr *sa, uint16_t port) {
  if (sa->sa_family == AF_INET6)
    ((struct sockaddr_in6 *)sa)->sin6_port = htons(port);
  else if (sa->sa_family == AF_INET)
    ((struct sockaddr_in *)sa)->sin_port = htons(port);
}

const uint8_t *sockaddr_ip(const struct sockaddr *sa, size_t *len) {
  if (sa->sa_family == AF_INET6) {
    *len = 16;
    return (const uint8_t *)&((const struct sockaddr_in6 *)sa)->sin6_addr;
  }
  if (sa->sa_family == AF_INET) {
    *len = 4;
    return (const uint8_t *)&((const struct sockaddr_in *)sa)->sin_addr;
  }
  *len = 0;
  return NULL;
}

bool sockaddr_same_host(const struct sockaddr *a, const struct sockaddr *b) {
  size_t na, nb;
  const uint8_t *x = sockaddr_ip(a, &na), *y = sockaddr_ip(b, &nb);
  return x && y && a->sa_family == b->sa_family && na == nb && memcmp(x, y, na) == 0;
}
