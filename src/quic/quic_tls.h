/* TLS 1.3 for the QUIC transport (GnuTLS through ngtcp2's crypto helper). The server's
 * certificate is a self-signed ECDSA P-256 certificate made in memory at start; the client does
 * not verify it, because the WireGuard handshake has already authenticated both ends (the QUIC
 * endpoint is reachable only through the tunnel; docs/decisions.md). ALPN "awgproxy/1",
 * AES-128-GCM preferred. */
#ifndef AWGPROXY_QUIC_QUIC_TLS_H
#define AWGPROXY_QUIC_QUIC_TLS_H

#include <gnutls/gnutls.h>
#include <ngtcp2/ngtcp2_crypto.h>
#include <stdbool.h>
#include <stddef.h>

/* awgproxy/1: QUIC's own packet protection throughout. awgproxy/3: the same handshake, then
 * 1-RTT packets protected by the tunnel alone (quic_protect.h, docs/spec/quic-transport.md). A
 * server accepts both and prefers /3; a client offers /3 unless [Peer] QuicProtection = quic
 * (/3 is the default). awgproxy/2 was the first version of the tunnel's protection, with an
 * all-zero tag that let a late packet in under a wrongly rebuilt packet number (quic_protect.c): no
 * longer spoken, so a peer still offering it falls back to /1 instead of failing on the
 * different tag. */
#define QUIC_ALPN "awgproxy/1"
#define QUIC_ALPN_TUNNEL "awgproxy/3"

typedef struct quic_tls quic_tls;

/* Credentials for one role (server: with the generated certificate). NULL with err on failure.
 * tunnel_protection: a client offers awgproxy/3 (a server always accepts it). */
quic_tls *quic_tls_new(bool server, bool tunnel_protection, char *err, size_t errlen);
/* 1 when the session agreed on awgproxy/3, 0 on another protocol, -1 while nothing is agreed
 * yet (known once the server's EncryptedExtensions were read, before any 1-RTT packet). */
int quic_tls_tunnel_protected(gnutls_session_t s);
/* Drops the owner's reference; the credentials go when the last session is done too. */
void quic_tls_free(quic_tls *t);

/* A session for one connection, configured for QUIC; conn_ref must outlive it (ngtcp2's crypto
 * helper finds the connection through it). Returns NULL on failure. */
gnutls_session_t quic_tls_session(quic_tls *t, ngtcp2_crypto_conn_ref *conn_ref);
/* Ends a session made by quic_tls_session. */
void quic_tls_session_done(quic_tls *t, gnutls_session_t s);

#endif
