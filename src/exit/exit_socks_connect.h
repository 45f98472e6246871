/* How the server's SOCKS service reaches destinations: directly, with OS sockets, under the exit
 * policy of the peer the client belongs to (exit_peer.h). For one CONNECT request:
 *   peer = exit_peer_lookup(client's tunnel address)   (LocalSocks: none, the server-wide policy)
 *   a name: exit_permit_name, then a connection slot (exit_conn_acquire), then uv_getaddrinfo on
 *           the server (so /etc/hosts and the host's resolver apply);
 *   an address: exit_permit, then the slot;
 * every resolved address is checked with exit_permit before it is tried; the allowed ones are
 * tried in turn (uv_tcp_connect) until one connects, all within [Socks] ConnectTimeout. Nothing is
 * connected without that check. Failures are dial errors (the session answers with the SOCKS5
 * reply, socks5_rep_for_dial): denied by the policy not-allowed (0x02), refused (0x05), network
 * unreachable (0x03), host unreachable (0x04), locally prohibited (EACCES, EPERM) not-allowed
 * (0x02), timed out (0x06), a name that does not resolve name-not-found (0x04), no free slot
 * general (0x01).
 * The slot is held until the relay ends; both relayed streams are wrapped with
 * exit_peer_throttle. */
#ifndef AWGPROXY_EXIT_EXIT_SOCKS_CONNECT_H
#define AWGPROXY_EXIT_EXIT_SOCKS_CONNECT_H

#include <stdbool.h>

#include "exit/exit_internal.h"
#include "socks/socks_session.h"

typedef struct {
  exit_ctx *x;
  bool tunnel; /* clients inside the tunnel (their peer's rules), else local (server-wide) */
} exit_socks_env;

/* A connector for socks_service_cfg.conn; env must outlive the service's requests (they are all
 * cancelled or released by socks_service_stop). */
socks_connector exit_socks_connector(exit_socks_env *env);
/* For socks_service_end_matching: true when the request (in progress or relaying) was made for
 * peer (an exit_peer *). */
bool exit_socks_request_of(void *req, void *peer);

#endif
