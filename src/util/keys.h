/* Curve25519 keys in WireGuard's textual form (standard base64 of 32 bytes, 44 characters). */
#ifndef AWGPROXY_UTIL_KEYS_H
#define AWGPROXY_UTIL_KEYS_H

#include <stddef.h>
#include <stdint.h>

#define AWG_KEY_LEN 32
#define AWG_KEY_B64_LEN 44 /* without the terminating NUL */

/* Decodes exactly one key; surrounding whitespace is not accepted here (callers trim).
 * Returns 0, or -1 with a reason ("is 43 characters, a key is 44", …) in err. */
int key_from_base64(const char *text, uint8_t out[AWG_KEY_LEN], char *err, size_t errlen);
void key_to_base64(const uint8_t key[AWG_KEY_LEN], char out[AWG_KEY_B64_LEN + 1]);
/* A fresh private key, clamped like `wg genkey`. */
void key_generate_private(uint8_t out[AWG_KEY_LEN]);
/* A fresh preshared key (random, unclamped, like `wg genpsk`). */
void key_generate_psk(uint8_t out[AWG_KEY_LEN]);
/* public = X25519(private, 9); returns -1 if the result is all zero. */
int key_public_from_private(const uint8_t priv[AWG_KEY_LEN], uint8_t pub[AWG_KEY_LEN]);
/* Short, log-safe fingerprint of a public key: the first 8 base64 characters + "…" omitted. */
void key_fingerprint(const uint8_t pub[AWG_KEY_LEN], char out[9]);

#endif
