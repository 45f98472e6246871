#include "util/addr_fmt.h"

#include <arpa/inet.h>
#include <stdbool.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

void addr_format_host(const char *host, uint16_t port, char *buf, size_t len) {
  if (!buf || !len) return;
  bool v6 = strchr(host, ':') != NULL;
  snprintf(buf, len, "%s%s%s:%u", v6 ? "[" : "", host, v6 ? "]" : "", port);
}

void addr_format(int family, const void *ip, uint16_t port, char *buf, size_t len) {
  char text[INET6_ADDRSTRLEN] = "?";
  if ((family == AF_INET || family == AF_INET6) && !inet_ntop(family, ip, text, sizeof text))
    snprintf(text, sizeof text, "?");
  addr_format_host(text, port, buf, len);
}

void addr_format_sockaddr(const struct sockaddr_storage *ss, char *buf, size_t len) {
  if (ss->ss_family == AF_INET) {
    const struct sockaddr_in *s = (const struct sockaddr_in *)ss;
    addr_format(AF_INET, &s->sin_addr, ntohs(s->sin_port), buf, len);
  } else if (ss->ss_family == AF_INET6) {
    const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)ss;
    addr_format(AF_INET6, &s->sin6_addr, ntohs(s->sin6_port), buf, len);
  } else {
    addr_format(0, NULL, 0, buf, len);
  }
}
