/* The SOCKS4/4a/5 protocol machine for one client connection, independent of how the client is
 * carried and of how destinations are reached. A socks_service describes both once:
 *   - the client side is any stream (libuv TCP on the client's listeners and LocalSocks, lwIP TCP
 *     for the server's listener inside the tunnel) plus the two addresses of that connection;
 *   - the far side is a socks_connector: the client dials through the tunnel (stream/dialer.h),
 *     the server connects out directly under its exit policy (exit/exit_socks_connect.c).
 * The service runs the handshake (optional RFC 1929 login checked against Argon2id hashes off the
 * loop), answers every failure with the precise reply code, relays once connected, keeps the
 * per-service counters and, when stopped, ends every session and relay it still has. */
#ifndef AWGPROXY_SOCKS_SOCKS_SESSION_H
#define AWGPROXY_SOCKS_SOCKS_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include "config/config.h"
#include "socks/socks_proto.h"
#include "stream/dial_types.h"
#include "stream/stream.h"

typedef struct {
  uint64_t accepted, active, handshake_failures;
  uint64_t over_cap;   /* requests refused past MaxConnections (also in replies[1]) */
  uint64_t replies[9]; /* by SOCKS5 reply code 0..8 (SOCKS4 failures counted as their cause) */
} socks_stats;

/* Where a client connection comes from: the address it reached us on and its own address. */
typedef struct {
  struct sockaddr_storage local, peer;
  /* The [Socks] User entry the client logged in as (index into the service's users), -1 for
   * none; set by the session after the login, whatever the caller passed. */
  int user;
} socks_origin;

/* On success s is a connected stream (ownership to the callee) and err = DIAL_OK. On failure s is
 * NULL, err the precise cause (the session turns it into the SOCKS reply) and reason a short text
 * for logs. The same shape as dial_cb, so a dialer's requests can serve as connector requests. */
typedef void (*socks_connect_cb)(void *ctx, stream *s, dial_error err, const char *reason);

typedef struct {
  void *env;
  /* Starts opening dst for a client from origin; cb always runs later, never inside this call.
   * Returns the request, or NULL when out of memory. */
  void *(*connect)(void *env, const socks_origin *origin, const dial_dest *dst, socks_connect_cb cb,
                   void *ctx);
  /* Abandons a request whose cb has not run; cb is then never called. */
  void (*cancel)(void *req);
  /* Optional. When set, a request that succeeded stays allocated: wrap (optional) may replace
   * the two streams before they are relayed (rate limiting), and release runs exactly once when
   * that relay is over or could not start (gives back what the request held, e.g. a slot). When
   * release is NULL a request is gone once its cb has run. */
  void (*wrap)(void *req, stream **client, stream **remote);
  void (*release)(void *req);
  /* Optional; NULL answers UDP ASSOCIATE with 0x07. Opens a UDP relay for the client (hint is the
   * request's DST.ADDR/PORT) and fills bnd with the address to send to; NULL with a message. */
  void *(*udp_start)(void *env, const socks_origin *origin, const socks_addr *hint, socks_addr *bnd,
                     char *err, size_t errlen);
  void (*udp_stop)(void *assoc);
} socks_connector;

typedef struct {
  uv_loop_t *loop;
  const char *log_component;   /* the component= of its log lines; a string literal */
  const cfg_socks_user *users; /* RFC 1929 logins (copied); none = no authentication */
  size_t n_users;
  uint64_t handshake_timeout_ms;
  uint64_t idle_timeout_ms; /* relays; 0 = never */
  /* [Socks] FastOpen: CONNECT is answered with success at once and the client's first bytes
   * are kept (up to STREAM_HIGH_WATER) and sent right behind the request; a connect that then
   * fails closes the client's connection instead of answering with a reply code. The connector
   * should pass DIAL_EARLY on so that those bytes need not wait for the far end's answer. */
  bool fast_open;
  /* Client connections at once (sessions and relays); past it a request is answered with a
   * general failure (SOCKS4: rejected) without being dialled. 0 = no cap. */
  uint32_t max_connections;
  socks_connector conn;
} socks_service_cfg;

typedef struct socks_service socks_service;

/* NULL when out of memory. */
socks_service *socks_service_create(const socks_service_cfg *cfg);
/* Runs the handshake on a new client stream (ownership passes; it is closed on any failure). */
void socks_session_start(socks_service *svc, stream *client, const socks_origin *origin);
/* Ends every session and relay now: requests in progress are cancelled and finished requests
 * released before this returns. The service frees itself once the last one has closed. */
void socks_service_stop(socks_service *svc);
/* Ends the sessions and relays whose connector request match() says yes to (e.g. the server's:
 * "its peer was removed by a reload"): a request in progress is answered with err and its
 * connector request cancelled, a relay is reset (its request released once it has closed).
 * Sessions still in the handshake have no request and are left alone. Each ended one is logged
 * at debug with reason. Returns how many ended. */
size_t socks_service_end_matching(socks_service *svc, bool (*match)(void *req, void *arg),
                                  void *arg, dial_error err, const char *reason);
void socks_service_get_stats(const socks_service *svc, socks_stats *out);

#endif
