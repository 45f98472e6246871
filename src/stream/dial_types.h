/* The transport-neutral vocabulary of dialing: where to connect (an IP literal or a name, plus a
 * port) and why a connect failed. Every dialer (lwIP TCP through the tunnel, QUIC streams to our
 * own server) speaks it; front-ends map the errors to their own replies (SOCKS reply codes in
 * src/socks/, HTTP status codes later), and the QUIC stream protocol carries them on the wire
 * with the values below (docs/spec/quic-transport.md), so the numbers are part of the protocol
 * and must never be renumbered. */
#ifndef AWGPROXY_STREAM_DIAL_TYPES_H
#define AWGPROXY_STREAM_DIAL_TYPES_H

#include <stddef.h>
#include <stdint.h>

typedef enum { DIAL_DEST_IPV4 = 1, DIAL_DEST_NAME = 3, DIAL_DEST_IPV6 = 4 } dial_dest_type;

#define DIAL_NAME_MAX 255

typedef struct {
  dial_dest_type type;
  uint8_t ip[16];               /* IPV4: 4 bytes; IPV6: 16 */
  char name[DIAL_NAME_MAX + 1]; /* NAME: NUL-terminated, 1..255 bytes, no NUL inside */
  uint16_t port;
  uint8_t flags; /* DIAL_EARLY; not part of the destination on the wire */
} dial_dest;

/* The caller takes the stream before the far end confirmed the connect, so that its first bytes
 * leave with the request ([Socks] FastOpen). A dialer that can do this hands out the stream at
 * once and reports a later refusal as a stream error (dial_error_to_uv); one that cannot ignores
 * the flag and answers as usual. */
#define DIAL_EARLY 0x01

/* "192.0.2.1:443", "[2001:db8::1]:443" or "name:443" (stream/dial_dest.c). */
void dial_dest_format(const dial_dest *d, char *buf, size_t len);

/* Why a connect failed. 0 is success. Wire values: do not renumber. */
typedef enum {
  DIAL_OK = 0,
  DIAL_ERR_GENERAL = 1,          /* anything not below */
  DIAL_ERR_NOT_ALLOWED = 2,      /* exit policy, a per-peer rule, a domain rule, a cap */
  DIAL_ERR_NET_UNREACHABLE = 3,  /* ICMP net unreachable, no route */
  DIAL_ERR_HOST_UNREACHABLE = 4, /* ICMP host unreachable */
  DIAL_ERR_REFUSED = 5,          /* RST / ICMP port unreachable */
  DIAL_ERR_TIMEOUT = 6,          /* no answer within the connect timeout, the tunnel up */
  DIAL_ERR_NAME_NOT_FOUND = 7,   /* NXDOMAIN or no address of a usable family */
  DIAL_ERR_TUNNEL_DOWN = 8,      /* no session with the server within the wait */
  DIAL_ERR_COUNT
} dial_error;

#endif
