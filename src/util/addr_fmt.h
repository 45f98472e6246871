/* The one way addresses are printed in logs, replies and files: "192.0.2.1:443",
 * "[2001:db8::1]:443" (brackets keep an IPv6 address apart from its port), "host.example:443".
 * Every result fits ADDR_FMT_LEN for IP addresses; a buffer that is too small gets a prefix. */
#ifndef AWGPROXY_UTIL_ADDR_FMT_H
#define AWGPROXY_UTIL_ADDR_FMT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define ADDR_FMT_LEN 56 /* "[" + INET6_ADDRSTRLEN + "]:" + 5 digits, rounded up */

/* family AF_INET (4 bytes at ip) or AF_INET6 (16 bytes); anything else prints "?". */
void addr_format(int family, const void *ip, uint16_t port, char *buf, size_t len);
/* An AF_INET or AF_INET6 socket address with its port. */
void addr_format_sockaddr(const struct sockaddr_storage *ss, char *buf, size_t len);
/* A host given as text (a name, or an IP address as text) and a port. */
void addr_format_host(const char *host, uint16_t port, char *buf, size_t len);

#endif
