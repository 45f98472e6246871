/* One TLS 1.3 connection over a libuv TCP handle, driven by the loop: GnuTLS reads and writes
 * through memory (its push/pull functions), libuv moves the bytes. Both ends of the TLS datagram
 * carrier (issue 12) use it: the client connects out to [Peer] TlsEndpoint, the server accepts
 * on [Server] TlsListen. No certificate authority is checked unless asked (tls_config_client's
 * verify): the WireGuard handshake inside authenticates the server (docs/decisions.md).
 *
 * Ownership: a tls_session owns its TCP handle from tls_session_start until it is closed. Every
 * session ends with exactly one on_closed call (after tls_session_close, tls_session_abort, an
 * error, or the peer's close), after which it makes no more calls; its memory is freed once
 * libuv has closed the handle. Nothing is called back from inside tls_session_start,
 * tls_session_write or tls_session_close/abort. */
#ifndef AWGPROXY_CARRIER_TLS_SESSION_H
#define AWGPROXY_CARRIER_TLS_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

/* Credentials, priorities and ALPN, shared by many sessions (reference counted: each session
 * holds one reference). */
typedef struct tls_config tls_config;

/* A server's: the certificate and key from PEM files when cert_file is set, else a self-signed
 * certificate generated now (ECDSA P-256) for `name` (CN and subjectAltName, DNS or IP as the
 * name reads). Offers ALPN http/1.1 (see tls_config_offer_h2). NULL with err on failure,
 * naming the file and what is wrong with it. */
tls_config *tls_config_server(const char *cert_file, const char *key_file, const char *name,
                              char *err, size_t errlen);
/* A client's: SNI server_name (NULL or empty: none, as for an IP address), ALPN h2 and
 * http/1.1 offered, as a browser would; verify: the system's CA store and the name are checked
 * (off: any certificate is accepted). */
tls_config *tls_config_client(const char *server_name, bool verify, char *err, size_t errlen);
/* A server's: ALPN offers h2 and http/1.1 (on) or http/1.1 only (off, the default) to the
 * sessions started from now on. */
void tls_config_offer_h2(tls_config *c, bool on);
/* One more reference on c (each holder frees its own). */
tls_config *tls_config_ref(tls_config *c);
void tls_config_free(tls_config *c);

typedef struct tls_session tls_session;

typedef struct {
  /* The handshake completed: data may flow. */
  void (*on_ready)(tls_session *s, void *ctx);
  /* Application data in; data is the session's, writable until this returns. */
  void (*on_data)(tls_session *s, void *ctx, uint8_t *data, size_t len);
  /* The session is over (reason: what happened, for a log line); no further calls. */
  void (*on_closed)(tls_session *s, void *ctx, const char *reason);
} tls_session_cbs;

/* Starts the handshake on tcp (allocated with malloc, initialised on the loop; connected, or
 * accepted), as client or server per cfg. Takes ownership of tcp (its data pointer is the
 * session's from now on, and the session frees it once closed) whether it succeeds or not; on
 * failure the handle is closed and NULL returned. cbs must outlive the
 * session. handshake_timeout_ms: the handshake must complete within it (0: no limit). */
tls_session *tls_session_start(uv_tcp_t *tcp, tls_config *cfg, const tls_session_cbs *cbs,
                               void *ctx, uint64_t handshake_timeout_ms);
/* Queues len bytes of application data, encrypted at once; they leave in order. Before the
 * handshake completes they wait for it. Returns 0, or UV_ENOBUFS when more than
 * TLS_SESSION_MAX_QUEUED bytes are already waiting for the socket (the caller drops, as a full
 * UDP socket buffer would), or UV_ECANCELED once the session is closing. */
#define TLS_SESSION_MAX_QUEUED (1024 * 1024)
int tls_session_write(tls_session *s, const uint8_t *data, size_t len);
/* Bytes waiting for the socket (encrypted, or plaintext before the handshake). */
size_t tls_session_queued(const tls_session *s);
/* Sends close_notify after what is queued, then closes; on_closed follows. Before the handshake
 * has completed there are no keys for a close_notify: it closes at once. */
void tls_session_close(tls_session *s);
/* Closes at once (TCP reset); on_closed follows. */
void tls_session_abort(tls_session *s);
/* The TCP peer's address. */
int tls_session_peer(const tls_session *s, struct sockaddr_storage *out, socklen_t *len);
/* The ALPN protocol agreed ("" if none), valid while the session lives. */
const char *tls_session_alpn(const tls_session *s);
bool tls_session_resumed(const tls_session *s);

#endif
