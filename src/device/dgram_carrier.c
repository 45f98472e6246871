/* What every datagram carrier shares (dgram_carrier.h). */
#include "device/dgram_carrier.h"

#include <stdio.h>
#include <string.h>

#include "util/addr_fmt.h"

static const char *const carrier_names[DGRAM_CARRIERS] = {"udp", "tls"};

const char *dgram_carrier_kind_name(unsigned kind) {
  return kind < DGRAM_CARRIERS ? carrier_names[kind] : "?";
}

int carrier_send(dgram_carrier *c, const dgram_endpoint *to, const uint8_t *data, size_t len,
                 uint64_t *bytes, uint64_t *packets) {
  uint8_t *room = carrier_reserve(c, to, len);
  if (!room) return UV_EMSGSIZE;
  memcpy(room, data, len);
  carrier_commit(c, to, len, bytes, packets);
  return 0;
}

void dgram_endpoint_format(const dgram_endpoint *a, char *buf, size_t len) {
  if (a->carrier == DGRAM_CARRIER_UDP || a->carrier >= DGRAM_CARRIERS || len < 8)
    return addr_format_sockaddr(&a->ss, buf, len);
  int n = snprintf(buf, len, "%s:", carrier_names[a->carrier]);
  if (a->len == 0) /* the carrier's address is not known yet */
    snprintf(buf + n, len - (size_t)n, "unresolved");
  else
    addr_format_sockaddr(&a->ss, buf + n, len - (size_t)n);
}

int dgram_endpoint_equal(const dgram_endpoint *a, const dgram_endpoint *b) {
  return a->carrier == b->carrier && a->len == b->len && a->sock == b->sock &&
         memcmp(&a->ss, &b->ss, a->len) == 0;
}

/* A carrier that is gone: every datagram is dropped, none leaves another way. */
static uint8_t *none_reserve(dgram_carrier *c, const dgram_endpoint *to, size_t max_len) {
  (void)c, (void)to, (void)max_len;
  return NULL;
}
static void none_commit(dgram_carrier *c, const dgram_endpoint *to, size_t len, uint64_t *bytes,
                        uint64_t *packets) {
  (void)c, (void)to, (void)len, (void)bytes, (void)packets;
}
static void none_flush(dgram_carrier *c) { (void)c; }
static size_t none_send_batch(dgram_carrier *c, const dgram_endpoint *to,
                              const uint8_t *const *data, const size_t *len, size_t n) {
  (void)c, (void)to, (void)data, (void)len, (void)n;
  return 0;
}
static const dgram_carrier_ops none_ops = {none_reserve, none_commit, none_flush, none_send_batch};
static dgram_carrier none_carrier = {&none_ops, "none", false};

dgram_carrier *dgram_carrier_none(void) { return &none_carrier; }
