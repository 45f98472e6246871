/* The inner IP + UDP headers of QUIC packets carried through the tunnel, built and parsed here
 * without lwIP: a QUIC packet is written with headroom in front, the headers go into it, and the
 * tunnel seals the whole. Inbound, the packets have been authenticated by the tunnel's AEAD, so
 * the UDP checksum is not verified. Outbound it is computed until the QUIC handshake has shown
 * that the other end is awgproxy (a client's first Initial may reach a stock server, whose kernel
 * checks it); after that it is left zero (docs/decisions.md, "QUIC's inner UDP checksum"). */
#ifndef AWGPROXY_QUIC_QUIC_IP_H
#define AWGPROXY_QUIC_QUIC_IP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define QUIC_IP_HEADROOM 48 /* IPv6 (40) + UDP (8); IPv4 needs 28 */

/* Writes the headers in front of payload (the bytes before it must be writable) for src -> dst
 * (both AF_INET or both AF_INET6, with ports), with the UDP checksum if `checksum`, else zero.
 * Returns the packet start; *pkt_len its length. */
uint8_t *quic_ip_wrap(uint8_t *payload, size_t len, const struct sockaddr_storage *src,
                      const struct sockaddr_storage *dst, bool checksum, size_t *pkt_len);

/* An unfragmented UDP packet: its addresses and payload. False for anything else or a
 * malformed one. */
bool quic_ip_parse_udp(const uint8_t *pkt, size_t len, struct sockaddr_storage *src,
                       struct sockaddr_storage *dst, const uint8_t **payload, size_t *plen);

/* An ICMP destination unreachable (IPv4 type 3, IPv6 type 1) quoting a UDP packet: the quoted
 * packet's addresses (its source is ours). False for anything else. */
bool quic_ip_parse_unreachable(const uint8_t *pkt, size_t len, struct sockaddr_storage *qsrc,
                               struct sockaddr_storage *qdst);

/* The largest QUIC packet whose inner packet (family's IP + UDP headers) fits the tunnel's MTU
 * less TUN_FEC_HEADER: the tunnel's forward error correction covers only packets that leave room
 * for its parity header (device/tunnel_fec.h), and a full-MTU packet would take its block's
 * parity away. Never under 1200, QUIC's minimum. Per connection: an IPv4 path carries 20 bytes
 * more than an IPv6 one, and a sender assuming IPv6 splits a full packet of an IPv4 peer's in
 * two. */
size_t quic_ip_max_payload(uint32_t mtu, int family);

/* Port of an AF_INET/AF_INET6 address (host order). */
uint16_t quic_ip_port(const struct sockaddr_storage *a);
/* Same address (ignoring the port). */
bool quic_ip_same_host(const struct sockaddr_storage *a, const struct sockaddr_storage *b);

#endif
