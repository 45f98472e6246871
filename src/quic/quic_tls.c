#include "quic/quic_tls.h"

#include <gnutls/crypto.h>
#include <gnutls/x509.h>
#include <ngtcp2/ngtcp2_crypto_gnutls.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/self_signed.h"

/* TLS 1.3 only (QUIC requires it); AES-128-GCM first because it runs on AES-NI, the others for
 * peers without it. */
#define QUIC_PRIORITY                                                                       \
  "NORMAL:-VERS-ALL:+VERS-TLS1.3:-CIPHER-ALL:+AES-128-GCM:+AES-256-GCM:+CHACHA20-POLY1305:" \
  "-GROUP-ALL:+GROUP-X25519:+GROUP-SECP256R1"

struct quic_tls {
  bool server, tunnel_protection;
  unsigned refs; /* the owner's, plus one per session (quic_tls_session_done) */
  gnutls_certificate_credentials_t cred;
  gnutls_priority_t prio;
};

quic_tls *quic_tls_new(bool server, bool tunnel_protection, char *err, size_t errlen) {
  quic_tls *t = calloc(1, sizeof *t);
  if (!t) {
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  t->server = server;
  t->tunnel_protection = server || tunnel_protection;
  t->refs = 1;
  int rc = gnutls_certificate_allocate_credentials(&t->cred);
  if (rc) {
    snprintf(err, errlen, "QUIC TLS credentials: %s", gnutls_strerror(rc));
    free(t);
    return NULL;
  }
  rc = gnutls_priority_init(&t->prio, QUIC_PRIORITY, NULL);
  if (rc) {
    snprintf(err, errlen, "QUIC TLS priority: %s", gnutls_strerror(rc));
    gnutls_certificate_free_credentials(t->cred);
    free(t);
    return NULL;
  }
  if (server && self_signed_cert(t->cred, "awgproxy", 3650, err, errlen) != 0) {
    quic_tls_free(t);
    return NULL;
  }
  return t;
}

void quic_tls_free(quic_tls *t) {
  if (!t || --t->refs) return;
  gnutls_priority_deinit(t->prio);
  gnutls_certificate_free_credentials(t->cred);
  free(t);
}

gnutls_session_t quic_tls_session(quic_tls *t, ngtcp2_crypto_conn_ref *conn_ref) {
  gnutls_session_t s;
  unsigned flags = (t->server ? GNUTLS_SERVER : GNUTLS_CLIENT) | GNUTLS_NO_END_OF_EARLY_DATA;
  if (gnutls_init(&s, flags) != 0) return NULL;
  int rc = t->server ? ngtcp2_crypto_gnutls_configure_server_session(s)
                     : ngtcp2_crypto_gnutls_configure_client_session(s);
  if (!rc) rc = gnutls_priority_set(s, t->prio);
  if (!rc) rc = gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, t->cred);
  if (!rc) {
    gnutls_datum_t alpn[2] = {
        {(unsigned char *)QUIC_ALPN_TUNNEL, sizeof QUIC_ALPN_TUNNEL - 1},
        {(unsigned char *)QUIC_ALPN, sizeof QUIC_ALPN - 1},
    };
    unsigned first = t->tunnel_protection ? 0 : 1;
    unsigned alpn_flags = t->server ? GNUTLS_ALPN_MANDATORY | GNUTLS_ALPN_SERVER_PRECEDENCE : 0;
    rc = gnutls_alpn_set_protocols(s, alpn + first, 2 - first, alpn_flags);
  }
  if (rc) {
    gnutls_deinit(s);
    return NULL;
  }
  gnutls_session_set_ptr(s, conn_ref);
  t->refs++;
  return s;
}

int quic_tls_tunnel_protected(gnutls_session_t s) {
  gnutls_datum_t d;
  if (gnutls_alpn_get_selected_protocol(s, &d) != 0) return -1;
  return d.size == sizeof QUIC_ALPN_TUNNEL - 1 && memcmp(d.data, QUIC_ALPN_TUNNEL, d.size) == 0;
}

void quic_tls_session_done(quic_tls *t, gnutls_session_t s) {
  gnutls_deinit(s);
  quic_tls_free(t);
}
