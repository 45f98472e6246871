/* Socket addresses (struct sockaddr_in / sockaddr_in6 in a sockaddr_storage) built and read in
 * one place, so that no module casts between the two families by hand. Only AF_INET and
 * AF_INET6 are handled; anything else reads as port 0 and no address. */
#ifndef AWGPROXY_UTIL_SOCKADDR_H
#define AWGPROXY_UTIL_SOCKADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <netinet/in.h>
#include <sys/socket.h>

/* Fills ss (zeroed first) with family's address: 4 or 16 bytes at ip, or the wildcard address
 * when ip is NULL, and port (host order). Returns the length to pass to bind/connect/sendto. */
socklen_t sockaddr_make(struct sockaddr_storage *ss, int family, const void *ip, uint16_t port);
/* The port in host order (0 for other families). */
uint16_t sockaddr_port(const struct sockaddr *sa);
void sockaddr_set_port(struct sockaddr *sa, uint16_t port);
/* The raw address bytes (4 or 16) and their count; NULL and 0 for other families. */
const uint8_t *sockaddr_ip(const struct sockaddr *sa, size_t *len);
/* Same family and address, ports aside. */
bool sockaddr_same_host(const struct sockaddr *a, const struct sockaddr *b);
/* sizeof the family's structure (0 for other families); inline: the receive path asks per
 * datagram. */
static inline socklen_t sockaddr_len(const struct sockaddr *sa) {
  return sa->sa_family == AF_INET6  ? sizeof(struct sockaddr_in6)
         : sa->sa_family == AF_INET ? sizeof(struct sockaddr_in)
                                    : 0;
}

#endif
