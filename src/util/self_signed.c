/* A self-signed certificate made at start (self_signed.h). */
#include "util/self_signed.h"

#include <arpa/inet.h>
#include <gnutls/crypto.h>
#include <gnutls/x509.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static size_t parse_ip(const char *name, uint8_t ip[16]) {
  if (inet_pton(AF_INET, name, ip) == 1) return 4;
  if (inet_pton(AF_INET6, name, ip) == 1) return 16;
  return 0;
}

static int cert_fields(gnutls_x509_crt_t crt, gnutls_x509_privkey_t key, const char *name,
                       unsigned days) {
  uint8_t serial[16], ip[16], keyid[64];
  gnutls_rnd(GNUTLS_RND_NONCE, serial, sizeof serial);
  serial[0] = (uint8_t)((serial[0] & 0x7f) | 0x40); /* positive, minimal DER: 16 bytes */
  size_t iplen = parse_ip(name, ip), keyidlen = sizeof keyid;
  time_t now = time(NULL);
  int rc = gnutls_x509_crt_set_version(crt, 3);
  if (!rc) rc = gnutls_x509_crt_set_serial(crt, serial, sizeof serial);
  if (!rc) rc = gnutls_x509_crt_set_activation_time(crt, now - 3600);
  if (!rc) rc = gnutls_x509_crt_set_expiration_time(crt, now + (time_t)days * 86400);
  if (!rc)
    rc = gnutls_x509_crt_set_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, name,
                                       (unsigned)strlen(name));
  if (!rc && iplen)
    rc = gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_IPADDRESS, ip, (unsigned)iplen,
                                              GNUTLS_FSAN_SET);
  if (!rc && !iplen)
    rc = gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_DNSNAME, name, (unsigned)strlen(name),
                                              GNUTLS_FSAN_SET);
  if (!rc) rc = gnutls_x509_crt_set_basic_constraints(crt, 0, -1);
  if (!rc) rc = gnutls_x509_crt_set_key_usage(crt, GNUTLS_KEY_DIGITAL_SIGNATURE);
  if (!rc) rc = gnutls_x509_crt_set_key_purpose_oid(crt, GNUTLS_KP_TLS_WWW_SERVER, 0);
  if (!rc) rc = gnutls_x509_crt_set_key(crt, key);
  if (!rc) rc = gnutls_x509_crt_get_key_id(crt, GNUTLS_KEYID_USE_SHA1, keyid, &keyidlen);
  if (!rc) rc = gnutls_x509_crt_set_subject_key_id(crt, keyid, keyidlen);
  return rc;
}

int self_signed_cert(gnutls_certificate_credentials_t cred, const char *name, unsigned days,
                     char *err, size_t errlen) {
  if (!name || !*name) name = "localhost";
  gnutls_x509_privkey_t key = NULL;
  gnutls_x509_crt_t crt = NULL;
  int rc = gnutls_x509_privkey_init(&key);
  if (!rc)
    rc = gnutls_x509_privkey_generate(key, GNUTLS_PK_ECDSA,
                                      GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0);
  if (!rc) rc = gnutls_x509_crt_init(&crt);
  if (!rc) rc = cert_fields(crt, key, name, days);
  if (!rc) rc = gnutls_x509_crt_sign2(crt, crt, key, GNUTLS_DIG_SHA256, 0);
  if (!rc) rc = gnutls_certificate_set_x509_key(cred, &crt, 1, key);
  if (crt) gnutls_x509_crt_deinit(crt);
  if (key) gnutls_x509_privkey_deinit(key);
  if (rc) snprintf(err, errlen, "self-signed certificate for %s: %s", name, gnutls_strerror(rc));
  return rc ? -1 : 0;
}
