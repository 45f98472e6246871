/* SOCKS4, SOCKS4a and SOCKS5 wire formats (RFC 1928, RFC 1929, the SOCKS4 and 4a memos): pure
 * parsers and builders over byte buffers, no I/O. Parsers are incremental: given the bytes
 * received so far they answer NEED_MORE, DONE (with how many bytes were consumed) or an error,
 * so a slow client (one byte per second) and a pipelining client are both handled. */
#ifndef AWGPROXY_SOCKS_PROTO_H
#define AWGPROXY_SOCKS_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "stream/dial_types.h"

typedef enum {
  SOCKS_NEED_MORE = 0,
  SOCKS_DONE = 1,
  SOCKS_ERR_VERSION = -1,   /* first byte is neither 4 nor 5 (or wrong sub-negotiation version) */
  SOCKS_ERR_MALFORMED = -2, /* a field is invalid (zero-length name, nmethods 0, …) */
  SOCKS_ERR_TOO_LONG = -3,  /* a SOCKS4 user id / 4a host name beyond our bounds */
  SOCKS_ERR_ATYP = -4,      /* SOCKS5 address type not 1, 3 or 4: reply 0x08 */
  SOCKS_ERR_COMMAND = -5,   /* command not supported by the version: reply 0x07 / 0x5B */
} socks_status;

typedef enum { SOCKS_ADDR_IPV4 = 1, SOCKS_ADDR_DOMAIN = 3, SOCKS_ADDR_IPV6 = 4 } socks_atyp;

typedef struct {
  socks_atyp type;
  uint8_t ip[16];   /* IPV4: 4 bytes; IPV6: 16 */
  char domain[256]; /* DOMAIN: NUL-terminated, 1..255 bytes, no NUL inside */
  uint16_t port;
} socks_addr;

#define SOCKS_CMD_CONNECT 1
#define SOCKS_CMD_BIND 2
#define SOCKS_CMD_UDP_ASSOCIATE 3

/* SOCKS5 method selection: VER=5 NMETHODS METHODS… */
#define SOCKS5_METHOD_NONE 0x00
#define SOCKS5_METHOD_USERPASS 0x02
#define SOCKS5_METHOD_NO_ACCEPTABLE 0xFF
typedef struct {
  int offers_none;
  int offers_userpass;
} socks5_greeting;
socks_status socks5_parse_greeting(const uint8_t *buf, size_t len, socks5_greeting *out,
                                   size_t *consumed);

/* RFC 1929: VER=1 ULEN UNAME PLEN PASSWD. Strings are NUL-terminated copies (max 255). */
typedef struct {
  char user[256];
  char pass[256];
} socks5_userpass;
socks_status socks5_parse_userpass(const uint8_t *buf, size_t len, socks5_userpass *out,
                                   size_t *consumed);

/* VER=5 CMD RSV ATYP DST.ADDR DST.PORT. Any CMD value parses (the caller answers 0x07 for
 * unsupported ones); an unknown ATYP is SOCKS_ERR_ATYP once the first 4 bytes are there. */
typedef struct {
  uint8_t cmd;
  socks_addr addr;
} socks5_request;
socks_status socks5_parse_request(const uint8_t *buf, size_t len, socks5_request *out,
                                  size_t *consumed);

/* SOCKS4: VN=4 CD DSTPORT DSTIP USERID NUL; SOCKS4a when DSTIP is 0.0.0.x (x != 0), followed by
 * HOST NUL. addr.type is IPV4 or DOMAIN. */
typedef struct {
  uint8_t cmd;
  socks_addr addr;
  char user[256];
} socks4_request;
socks_status socks4_parse_request(const uint8_t *buf, size_t len, socks4_request *out,
                                  size_t *consumed);

/* UDP ASSOCIATE datagrams (RFC 1928 §7): RSV(2) FRAG ATYP DST.ADDR DST.PORT DATA. Returns DONE
 * with *hdr_len = header size, or an error (ERR_MALFORMED for short ones, ERR_ATYP). */
socks_status socks5_parse_udp(const uint8_t *buf, size_t len, uint8_t *frag, socks_addr *addr,
                              size_t *hdr_len);
/* Writes the UDP header for addr into out (cap >= 262); returns its length. */
size_t socks5_build_udp_header(const socks_addr *addr, uint8_t *out, size_t cap);

/* Replies. SOCKS5: VER=5 REP RSV ATYP BND.ADDR BND.PORT (bnd may be NULL = 0.0.0.0:0); returns the
 * length written (out must hold 262 bytes). SOCKS4: 8 bytes, VN=0 CD=0x5A granted / 0x5B. */
size_t socks5_build_reply(uint8_t rep, const socks_addr *bnd, uint8_t *out, size_t cap);
size_t socks4_build_reply(uint8_t cd, const socks_addr *bnd, uint8_t out[8]);

/* SOCKS5 reply codes. */
#define SOCKS5_REP_SUCCEEDED 0x00
#define SOCKS5_REP_GENERAL_FAILURE 0x01
#define SOCKS5_REP_NOT_ALLOWED 0x02
#define SOCKS5_REP_NET_UNREACHABLE 0x03
#define SOCKS5_REP_HOST_UNREACHABLE 0x04
#define SOCKS5_REP_REFUSED 0x05
#define SOCKS5_REP_TTL_EXPIRED 0x06
#define SOCKS5_REP_CMD_NOT_SUPPORTED 0x07
#define SOCKS5_REP_ATYP_NOT_SUPPORTED 0x08
#define SOCKS4_REP_GRANTED 0x5A
#define SOCKS4_REP_REJECTED 0x5B

/* A short name for logs and metrics ("refused", "host-unreachable", …). */
const char *socks5_rep_name(uint8_t rep);
/* The SOCKS5 reply for a dial result: ok 0x00, general 0x01, not allowed 0x02, network
 * unreachable 0x03, host unreachable 0x04, refused 0x05, timeout 0x06 ("TTL expired"), a name
 * that does not resolve 0x04 (the host cannot be reached), tunnel down 0x01; a value outside the
 * enum (e.g. from the wire) 0x01. */
uint8_t socks5_rep_for_dial(dial_error err);
/* SOCKS4 knows only granted (0x5A, DIAL_OK) and rejected or failed (0x5B, anything else). */
uint8_t socks4_rep_for_dial(dial_error err);
/* The destination of a request as the dialer's neutral destination, which is what connectors
 * get (the same three kinds; names are copied bounded and stay NUL-terminated). */
void socks_addr_to_dial_dest(const socks_addr *a, dial_dest *out);
/* Formats addr as host:port / [v6]:port. */
void socks_addr_format(const socks_addr *a, char *buf, size_t len);

#endif
