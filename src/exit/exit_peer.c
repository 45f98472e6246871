/* Interim implementation: no per-peer rules or limits yet, only the server-wide policy. */
#include "exit/exit_peer.h"

exit_peer *exit_peer_lookup(exit_ctx *x, const exit_addr *src) {
  (void)x, (void)src;
  return NULL;
}

bool exit_permit(exit_ctx *x, exit_peer *p, const char *proto, const exit_addr *dst,
                 uint16_t dport, const char *name) {
  (void)p, (void)name;
  exit_tuple t = {.dst = *dst, .dport = dport};
  return exit_allowed(x, proto, &t);
}

bool exit_permit_name(exit_ctx *x, exit_peer *p, const char *name) {
  (void)x, (void)p, (void)name;
  return true;
}

bool exit_conn_acquire(exit_ctx *x, exit_peer *p) {
  (void)x, (void)p;
  return true;
}

void exit_conn_release(exit_ctx *x, exit_peer *p) { (void)x, (void)p; }

stream *exit_peer_throttle(exit_ctx *x, exit_peer *p, stream *s) {
  (void)x, (void)p;
  return s;
}

int exit_peers_build(exit_ctx *x) {
  (void)x;
  return 0;
}

void exit_peers_free(exit_ctx *x) { (void)x; }
