/* libFuzzer target for the record a server worker takes from its siblings
 * (src/device/tunnel_handoff.c): any bytes go to tun_handoff_parse. Checks, besides "no crash, no
 * sanitizer report": an accepted record's message lies inside the input, its kind is a message
 * kind, its address is IPv4 or IPv6 of the exact size, and encoding it again gives the input's
 * header and address bytes back. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "device/tunnel_handoff.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  tun_handoff h;
  if (tun_handoff_parse(data, size, &h) != 0) return 0;
  if (h.kind < AWG_MSG_INIT || h.kind > AWG_MSG_TRANSPORT) abort();
  if (h.msg < data || h.msg + h.len != data + size) abort();
  if (h.from.ss.ss_family == AF_INET ? h.from.len != sizeof(struct sockaddr_in)
                                     : h.from.len != sizeof(struct sockaddr_in6))
    abort();
  uint8_t hdr[TUN_HANDOFF_HEADER];
  tun_handoff_header(&h, hdr);
  if (memcmp(hdr, data, sizeof hdr) != 0) abort();
  if (memcmp(&h.from.ss, data + TUN_HANDOFF_HEADER, h.from.len) != 0) abort();
  return 0;
}
