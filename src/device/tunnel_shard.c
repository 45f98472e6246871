/* A server worker among its siblings ([Server] Threads, wg/shard.h). Every worker binds the same
 * UDP port with SO_REUSEPORT, so the kernel spreads datagrams by source address; a datagram that
 * lands on a worker other than its peer's owner (a roamed peer, a hash that falls elsewhere) is
 * handed to the owner over a unix datagram socket, already classified (the record:
 * device/tunnel_handoff.h). The owner handles it exactly as if it had received it (tun_dispatch),
 * and answers from its own socket on the same port, so the peer sees one server. A handed datagram
 * is never handed on: if the owner disagrees (config changing under a reload), it is dropped. The
 * handoff sockets are the supervisor's (daemon/workers.c); the tunnel only reads its inbox and
 * writes the others'. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "device/tunnel_handoff.h"
#include "device/tunnel_internal.h"
#include "util/bytes.h"
#include "util/log.h"
#include "util/shard_counts.h"
#include "wg/messages.h"
#include "wg/shard.h"

#define HANDOFF_MAX (TUN_HANDOFF_HEADER + sizeof(struct sockaddr_storage) + TUN_BUF)
#define HANDOFF_READS 64 /* per wakeup, so a busy inbox cannot starve the loop */

/* Where the receiver index sits in each kind of message (initiations carry none: the owner of an
 * initiation is known only once its static key is decrypted, see on_initiation). */
static bool receiver_index(awg_msg_kind k, const uint8_t *msg, size_t len, uint32_t *out) {
  size_t off;
  switch (k) {
    case AWG_MSG_RESPONSE:
      off = WG_RESP_RECEIVER;
      break;
    case AWG_MSG_COOKIE:
      off = WG_COOKIE_RECEIVER;
      break;
    case AWG_MSG_TRANSPORT:
      off = WG_DATA_RECEIVER;
      break;
    default:
      return false;
  }
  if (len < off + 4) return false;
  *out = le32_load(msg + off);
  return true;
}

bool tun_shard_owner(const tunnel *t, awg_msg_kind k, const uint8_t *msg, size_t len,
                     unsigned *owner) {
  uint32_t index;
  if (t->shards <= 1 || !receiver_index(k, msg, len, &index)) return false;
  *owner = wg_shard_of_index(index, t->shards);
  return *owner != t->shard;
}

void tun_shard_hand_off(tunnel *t, unsigned owner, awg_msg_kind k, int bare, const uint8_t *msg,
                        size_t len, const dgram_endpoint *from, size_t wire_len) {
  if (owner >= t->shards || t->outbox[owner] < 0 || len > TUN_BUF) return;
  tun_handoff h = {k, bare != 0, *from, wire_len, msg, len};
  uint8_t hdr[TUN_HANDOFF_HEADER];
  tun_handoff_header(&h, hdr);
  struct iovec iov[3] = {{hdr, sizeof hdr}, {(void *)&from->ss, from->len}, {(void *)msg, len}};
  struct msghdr mh = {.msg_iov = iov, .msg_iovlen = 3};
  ssize_t n;
  do n = sendmsg(t->outbox[owner], &mh, MSG_DONTWAIT);
  while (n < 0 && errno == EINTR);
  if (n < 0) {
    /* A full inbox (the owner is busy or restarting): dropped like a datagram on a full socket. */
    t->stats.dropped[TUN_DROP_HANDOFF]++;
    return;
  }
  t->stats.handed_off++;
}

/* One handed datagram, checked, then dispatched as if received here. */
static void take_handed(tunnel *t, uint8_t *buf, size_t n) {
  tun_handoff h;
  if (tun_handoff_parse(buf, n, &h) != 0) {
    t->stats.dropped[TUN_DROP_HANDOFF]++;
    return;
  }
  t->stats.handed_in++;
  /* The message lies in buf, which is ours until the next read: decrypted in place there. */
  tun_dispatch(t, h.kind, buf + (h.msg - buf), h.len, &h.from, h.bare, h.wire_len, true);
}

static void on_inbox(uv_poll_t *h, int status, int events) {
  (void)events;
  tunnel *t = h->data;
  if (status < 0) return;
  for (int i = 0; i < HANDOFF_READS && !t->destroying; i++) {
    ssize_t n;
    do n = recv(t->inbox_fd, t->handoff_buf, HANDOFF_MAX, MSG_DONTWAIT | MSG_TRUNC);
    while (n < 0 && errno == EINTR);
    if (n < 0) return; /* EAGAIN: drained */
    if ((size_t)n > HANDOFF_MAX) continue;
    take_handed(t, t->handoff_buf, (size_t)n);
  }
}

int tun_shard_start(tunnel *t, const tunnel_shard *sh, char *err, size_t errlen) {
  for (unsigned i = 0; i < WG_SHARDS_MAX; i++) t->outbox[i] = -1;
  t->inbox_fd = -1;
  t->shards = 1;
  if (!sh || sh->shards <= 1) return 0;
  if (sh->shards > WG_SHARDS_MAX || sh->shard >= sh->shards)
    return snprintf(err, errlen, "worker %u of %u: out of range", sh->shard, sh->shards), -1;
  t->shard = sh->shard;
  t->shards = sh->shards;
  for (unsigned i = 0; i < sh->shards; i++) t->outbox[i] = sh->outbox_fds[i];
  wg_device_set_shard(&t->dev, t->shard, t->shards);
  wg_cookie_checker_set_seed(&t->dev.checker, sh->cookie_seed);
  t->counts = sh->counts;
  t->handoff_buf = malloc(HANDOFF_MAX);
  if (!t->handoff_buf) return snprintf(err, errlen, "out of memory"), -1;
  if (uv_poll_init_socket(t->loop, &t->inbox, sh->inbox_fd) != 0)
    return snprintf(err, errlen, "worker %u: cannot watch its handoff socket", t->shard), -1;
  t->inbox_fd = sh->inbox_fd;
  t->inbox.data = t;
  t->peer_objs++; /* the poll handle holds the tunnel like a peer does, until it has closed */
  uv_poll_start(&t->inbox, UV_READABLE, on_inbox);
  return 0;
}

static void on_inbox_closed(uv_handle_t *h) {
  tunnel *t = h->data;
  if (--t->peer_objs == 0 && t->destroying) tun_free(t);
}

struct shard_counts *tunnel_shard_counts(const tunnel *t) {
  return t->counts;
}

void tun_shard_stop(tunnel *t) {
  free(t->handoff_buf);
  t->handoff_buf = NULL;
  if (t->inbox_fd < 0) return;
  t->inbox_fd = -1;
  uv_close((uv_handle_t *)&t->inbox, on_inbox_closed);
}
