/* What every datagram carrier shares (dgram_carrier.h). */
#include "device/dgram_carrier.h"

#include <stdio.h>
#include <string.h>

#include "util/addr_fmt.h"

static const char *const carrier_names[DGRAM_CARRIERS] = {"udp", "tls"};

int carrier_send(dgram_carrier *c, const dgram_endpoint *to, const uint8_t *data, size_t len,
                 uint64_t *bytes, uint64_t *packets) {
  uint8_t *room = carrier_reserve(c, len);
  if (!room) return UV_EMSGSIZE;
  memcpy(room, data, len);
  carrier_commit(c, to, len, bytes, packets);
  return 0;
}

void dgram_endpoint_format(const dgram_endpoint *a, char *buf, size_t len) {
  if (a->carrier == DGRAM_CARRIER_UDP || a->carrier >= DGRAM_CARRIERS || len < 8)
    return addr_format_sockaddr(&a->ss, buf, len);
  int n = snprintf(buf, len, "%s:", carrier_names[a->carrier]);
  addr_format_sockaddr(&a->ss, buf + n, len - (size_t)n);
}

int dgram_endpoint_equal(const dgram_endpoint *a, const dgram_endpoint *b) {
  return a->carrier == b->carrier && a->len == b->len && a->sock == b->sock &&
         memcmp(&a->ss, &b->ss, a->len) == 0;
}
