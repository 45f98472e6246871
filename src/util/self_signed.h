/* A self-signed certificate made in memory at start: ECDSA P-256, CN and subjectAltName `name`
 * (an IP address or a DNS name, as it reads; "localhost" when empty), a web server's key usage,
 * valid from an hour ago for `days`. For the QUIC endpoint (quic/quic_tls.c) and the TLS carrier
 * (carrier/tls_session.c), whose peers authenticate each other by their WireGuard keys. */
#ifndef AWGPROXY_UTIL_SELF_SIGNED_H
#define AWGPROXY_UTIL_SELF_SIGNED_H

#include <gnutls/gnutls.h>
#include <stddef.h>

/* Adds the certificate and its key to cred. Returns 0, or -1 with err. */
int self_signed_cert(gnutls_certificate_credentials_t cred, const char *name, unsigned days,
                     char *err, size_t errlen);

#endif
