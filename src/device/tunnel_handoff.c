#include "device/tunnel_handoff.h"

#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

#include "util/bytes.h"

void tun_handoff_header(const tun_handoff *h, uint8_t out[TUN_HANDOFF_HEADER]) {
  out[0] = (uint8_t)h->kind;
  out[1] = (uint8_t)(h->bare != 0);
  be16_store(out + 2, (uint16_t)h->from.len);
  be32_store(out + 4, (uint32_t)h->wire_len);
  be16_store(out + 8, h->from.sock);
}

static bool address_ok(const dgram_endpoint *a) {
  int fam = a->ss.ss_family;
  return (fam == AF_INET && a->len == sizeof(struct sockaddr_in)) ||
         (fam == AF_INET6 && a->len == sizeof(struct sockaddr_in6));
}

int tun_handoff_parse(const uint8_t *buf, size_t n, tun_handoff *out) {
  memset(out, 0, sizeof *out);
  if (n < TUN_HANDOFF_HEADER || buf[1] > 1) return -1;
  size_t alen = be16_load(buf + 2);
  if (buf[0] < AWG_MSG_INIT || buf[0] > AWG_MSG_TRANSPORT ||
      alen > sizeof(struct sockaddr_storage) || n - TUN_HANDOFF_HEADER < alen)
    return -1;
  out->kind = (awg_msg_kind)buf[0];
  out->bare = buf[1] != 0;
  out->wire_len = be32_load(buf + 4);
  memcpy(&out->from.ss, buf + TUN_HANDOFF_HEADER, alen);
  out->from.len = (socklen_t)alen;
  out->from.sock = be16_load(buf + 8); /* checked where it is used (udp_sock_for) */
  if (!address_ok(&out->from)) return -1;
  out->msg = buf + TUN_HANDOFF_HEADER + alen;
  out->len = n - TUN_HANDOFF_HEADER - alen;
  return 0;
}
