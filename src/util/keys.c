#include "util/keys.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>

int key_from_base64(const char *text, uint8_t out[AWG_KEY_LEN], char *err, size_t errlen) {
  size_t n = strlen(text);
  if (n != AWG_KEY_B64_LEN) {
    snprintf(err, errlen, "is %zu characters long; a key is 44 base64 characters ending in '='", n);
    return -1;
  }
  size_t bin_len = 0;
  const char *end = NULL;
  if (sodium_base642bin(out, AWG_KEY_LEN, text, n, NULL, &bin_len, &end,
                        sodium_base64_VARIANT_ORIGINAL) != 0 ||
      bin_len != AWG_KEY_LEN || end != text + n) {
    snprintf(err, errlen, "is not valid base64 of 32 bytes (generate one with `awgproxy genkey`)");
    sodium_memzero(out, AWG_KEY_LEN);
    return -1;
  }
  return 0;
}

void key_to_base64(const uint8_t key[AWG_KEY_LEN], char out[AWG_KEY_B64_LEN + 1]) {
  sodium_bin2base64(out, AWG_KEY_B64_LEN + 1, key, AWG_KEY_LEN, sodium_base64_VARIANT_ORIGINAL);
}

void key_generate_private(uint8_t out[AWG_KEY_LEN]) {
  randombytes_buf(out, AWG_KEY_LEN);
  out[0] &= 248;
  out[31] = (uint8_t)((out[31] & 127) | 64);
}

void key_generate_psk(uint8_t out[AWG_KEY_LEN]) { randombytes_buf(out, AWG_KEY_LEN); }

int key_public_from_private(const uint8_t priv[AWG_KEY_LEN], uint8_t pub[AWG_KEY_LEN]) {
  /* libsodium clamps the scalar itself, as `wg pubkey` does. */
  return crypto_scalarmult_curve25519_base(pub, priv) == 0 ? 0 : -1;
}

void key_fingerprint(const uint8_t pub[AWG_KEY_LEN], char out[9]) {
  char b64[AWG_KEY_B64_LEN + 1];
  key_to_base64(pub, b64);
  memcpy(out, b64, 8);
  out[8] = '\0';
}
