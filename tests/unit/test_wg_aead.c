/* The transport AEAD context (src/wg/aead.c) of whichever backend this build uses, against
 * libsodium's crypto_aead_chacha20poly1305_ietf as the reference: what the context seals the
 * reference opens and vice versa, byte for byte, for sizes around the 16-byte Poly1305 block and
 * the 64-byte ChaCha20 block up to 65535; a flipped bit in the tag, the ciphertext or the AD, a
 * wrong counter or a truncated message is rejected and leaves no plaintext behind; sealing and
 * opening in place give the same bytes as out of place. With OpenSSL, no block OpenSSL frees
 * still holds the key once the context is freed. */
/* clang-format off */
#define _GNU_SOURCE /* memmem */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
/* clang-format on */

#include <sodium.h>

#include "wg/aead.h"

#ifdef AWG_AEAD_OPENSSL
#include <malloc.h>
#include <openssl/crypto.h>

/* OpenSSL's allocator, watched: every block it frees is searched for either half of watched_key. */
static uint8_t watched_key[WG_KEY_LEN];
static int freed_with_key;

static void *watch_malloc(size_t n, const char *file, int line) {
  (void)file, (void)line;
  return malloc(n);
}
static void *watch_realloc(void *p, size_t n, const char *file, int line) {
  (void)file, (void)line;
  return realloc(p, n);
}
static void watch_free(void *p, const char *file, int line) {
  (void)file, (void)line;
  if (p) {
    size_t n = malloc_usable_size(p);
    if (memmem(p, n, watched_key, 16) || memmem(p, n, watched_key + 16, 16)) freed_with_key++;
  }
  free(p);
}

static void test_key_wiped_on_free(void **state) {
  (void)state;
  uint8_t buf[64 + WG_AEAD_TAG_LEN] = {0};
  randombytes_buf(watched_key, sizeof watched_key);
  wg_aead_ctx *ctx = wg_aead_ctx_new(watched_key);
  assert_non_null(ctx);
  assert_true(wg_aead_ctx_seal(ctx, 1, buf, buf, 64, NULL, 0));
  freed_with_key = 0;
  wg_aead_ctx_free(ctx);
  assert_int_equal(freed_with_key, 0);
  /* The watch works: a block holding the key, freed unwiped, is seen. */
  void *control = OPENSSL_malloc(WG_KEY_LEN);
  assert_non_null(control);
  memcpy(control, watched_key, WG_KEY_LEN);
  OPENSSL_free(control);
  assert_int_equal(freed_with_key, 1);
}
#endif

#define MAX_SIZE 65535

static const size_t SIZES[] = {0, 1, 15, 16, 17, 63, 64, 65, 1420, MAX_SIZE};
static const uint8_t AD[] = "header bytes as associated data";

typedef struct {
  uint8_t key[WG_KEY_LEN];
  wg_aead_ctx *ctx;
  uint8_t *pt, *ours, *ref, *out; /* MAX_SIZE + tag each */
} fixture;

static void ref_nonce(uint8_t nonce[12], uint64_t counter) {
  memset(nonce, 0, 4);
  for (int i = 0; i < 8; i++) nonce[4 + i] = (uint8_t)(counter >> (8 * i));
}

static void ref_seal(const fixture *f, uint64_t counter, uint8_t *out, size_t len,
                     const uint8_t *ad, size_t adlen) {
  uint8_t nonce[12];
  ref_nonce(nonce, counter);
  assert_int_equal(crypto_aead_chacha20poly1305_ietf_encrypt(out, NULL, f->pt, len, ad, adlen, NULL,
                                                             nonce, f->key),
                   0);
}

static bool ref_open(const fixture *f, uint64_t counter, uint8_t *out, const uint8_t *ct,
                     size_t len, const uint8_t *ad, size_t adlen) {
  uint8_t nonce[12];
  ref_nonce(nonce, counter);
  return crypto_aead_chacha20poly1305_ietf_decrypt(out, NULL, NULL, ct, len, ad, adlen, nonce,
                                                   f->key) == 0;
}

static int setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  size_t cap = MAX_SIZE + WG_AEAD_TAG_LEN;
  if (!f || sodium_init() < 0) return -1;
  randombytes_buf(f->key, sizeof f->key);
  f->ctx = wg_aead_ctx_new(f->key);
  f->pt = malloc(cap);
  f->ours = malloc(cap);
  f->ref = malloc(cap);
  f->out = malloc(cap);
  if (!f->ctx || !f->pt || !f->ours || !f->ref || !f->out) return -1;
  randombytes_buf(f->pt, cap);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  wg_aead_ctx_free(f->ctx);
  free(f->pt);
  free(f->ours);
  free(f->ref);
  free(f->out);
  free(f);
  return 0;
}

static bool all_zero(const uint8_t *p, size_t len) {
  for (size_t i = 0; i < len; i++)
    if (p[i]) return false;
  return true;
}

/* Sealed by the context, opened by the reference, and the bytes are the reference's own. */
static void test_seal_matches_reference(void **state) {
  fixture *f = *state;
  for (size_t i = 0; i < sizeof SIZES / sizeof SIZES[0]; i++) {
    size_t len = SIZES[i];
    uint64_t counter = UINT64_C(0x0102030405060708) + i;
    for (int with_ad = 0; with_ad < 2; with_ad++) {
      const uint8_t *ad = with_ad ? AD : NULL;
      size_t adlen = with_ad ? sizeof AD : 0;
      assert_true(wg_aead_ctx_seal(f->ctx, counter, f->ours, f->pt, len, ad, adlen));
      ref_seal(f, counter, f->ref, len, ad, adlen);
      assert_memory_equal(f->ours, f->ref, len + WG_AEAD_TAG_LEN);
      assert_true(ref_open(f, counter, f->out, f->ours, len + WG_AEAD_TAG_LEN, ad, adlen));
      if (len) assert_memory_equal(f->out, f->pt, len);
    }
  }
}

/* Sealed by the reference, opened by the context. */
static void test_open_reference(void **state) {
  fixture *f = *state;
  for (size_t i = 0; i < sizeof SIZES / sizeof SIZES[0]; i++) {
    size_t len = SIZES[i];
    uint64_t counter = UINT64_MAX - i; /* the whole 64-bit counter reaches the nonce */
    ref_seal(f, counter, f->ref, len, AD, sizeof AD);
    memset(f->out, 0xee, len + 1);
    assert_true(
        wg_aead_ctx_open(f->ctx, counter, f->out, f->ref, len + WG_AEAD_TAG_LEN, AD, sizeof AD));
    if (len) assert_memory_equal(f->out, f->pt, len);
    assert_int_equal(f->out[len], 0xee); /* nothing written past the plaintext */
  }
}

/* One flipped bit anywhere (ciphertext, tag, AD), another counter, or a missing byte: rejected,
 * and the output holds no plaintext. */
static void test_tampering_rejected(void **state) {
  fixture *f = *state;
  const size_t sizes[] = {0, 17, 1420};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    size_t len = sizes[i], total = len + WG_AEAD_TAG_LEN;
    uint8_t ad[sizeof AD];
    ref_seal(f, 9, f->ref, len, AD, sizeof AD);
    for (size_t pos = 0; pos<total; pos += len> 64 ? 61 : 1) {
      f->ref[pos] ^= 0x10;
      memset(f->out, 0xee, total);
      assert_false(wg_aead_ctx_open(f->ctx, 9, f->out, f->ref, total, AD, sizeof AD));
      assert_true(all_zero(f->out, len));
      f->ref[pos] ^= 0x10;
    }
    f->ref[total - 1] ^= 0x80; /* the last tag bit */
    assert_false(wg_aead_ctx_open(f->ctx, 9, f->out, f->ref, total, AD, sizeof AD));
    f->ref[total - 1] ^= 0x80;
    memcpy(ad, AD, sizeof ad);
    ad[3] ^= 1;
    assert_false(wg_aead_ctx_open(f->ctx, 9, f->out, f->ref, total, ad, sizeof ad));
    assert_false(wg_aead_ctx_open(f->ctx, 9, f->out, f->ref, total, NULL, 0));
    assert_false(wg_aead_ctx_open(f->ctx, 10, f->out, f->ref, total, AD, sizeof AD));
    assert_false(wg_aead_ctx_open(f->ctx, 9, f->out, f->ref, total - 1, AD, sizeof AD));
    /* Untouched, it still opens: the failures above left the context usable. */
    assert_true(wg_aead_ctx_open(f->ctx, 9, f->out, f->ref, total, AD, sizeof AD));
  }
  /* Shorter than a tag. */
  assert_false(wg_aead_ctx_open(f->ctx, 9, f->out, f->ref, WG_AEAD_TAG_LEN - 1, NULL, 0));
  assert_false(wg_aead_ctx_open(f->ctx, 9, f->out, f->ref, 0, NULL, 0));
}

/* A context keyed with another key rejects what this one sealed. */
static void test_other_key_rejected(void **state) {
  fixture *f = *state;
  uint8_t key[WG_KEY_LEN];
  memcpy(key, f->key, sizeof key);
  key[31] ^= 1;
  wg_aead_ctx *other = wg_aead_ctx_new(key);
  assert_non_null(other);
  assert_true(wg_aead_ctx_seal(f->ctx, 5, f->ours, f->pt, 100, NULL, 0));
  assert_false(wg_aead_ctx_open(other, 5, f->out, f->ours, 100 + WG_AEAD_TAG_LEN, NULL, 0));
  assert_true(wg_aead_ctx_open(f->ctx, 5, f->out, f->ours, 100 + WG_AEAD_TAG_LEN, NULL, 0));
  wg_aead_ctx_free(other);
  wg_aead_ctx_free(NULL);
}

/* In place (out == input) both ways, as the transport uses it, gives the reference's bytes. */
static void test_in_place(void **state) {
  fixture *f = *state;
  for (size_t i = 0; i < sizeof SIZES / sizeof SIZES[0]; i++) {
    size_t len = SIZES[i];
    memcpy(f->ours, f->pt, len);
    assert_true(wg_aead_ctx_seal(f->ctx, 77, f->ours, f->ours, len, NULL, 0));
    ref_seal(f, 77, f->ref, len, NULL, 0);
    assert_memory_equal(f->ours, f->ref, len + WG_AEAD_TAG_LEN);
    assert_true(wg_aead_ctx_open(f->ctx, 77, f->ours, f->ours, len + WG_AEAD_TAG_LEN, NULL, 0));
    if (len) assert_memory_equal(f->ours, f->pt, len);
    /* A forged message opened in place is wiped, not left decrypted. */
    ref_seal(f, 77, f->ref, len, NULL, 0);
    f->ref[len] ^= 1;
    assert_false(wg_aead_ctx_open(f->ctx, 77, f->ref, f->ref, len + WG_AEAD_TAG_LEN, NULL, 0));
    assert_true(all_zero(f->ref, len));
  }
}

/* The reference's sealing of f->pt's first len bytes and padded - len zeros, into f->ref. */
static void ref_seal_padded(fixture *f, uint64_t counter, size_t len, size_t padded) {
  uint8_t nonce[12];
  memcpy(f->out, f->pt, len);
  memset(f->out + len, 0, padded - len);
  ref_nonce(nonce, counter);
  assert_int_equal(crypto_aead_chacha20poly1305_ietf_encrypt(f->ref, NULL, f->out, padded, NULL, 0,
                                                             NULL, nonce, f->key),
                   0);
}

/* Sealing a packet with its zero padding straight from a separate buffer (the send path) gives
 * the reference's bytes for the padded plaintext, at every split between bytes and padding;
 * so does the same call in place. */
static void test_seal_padded(void **state) {
  fixture *f = *state;
  static const size_t PT[] = {0, 1, 15, 16, 17, 63, 64, 65, 1380, 1420};
  static const size_t PAD[] = {0, 1, 3, 15, 16, 17, 47, 64};
  for (size_t i = 0; i < sizeof PT / sizeof PT[0]; i++) {
    for (size_t j = 0; j < sizeof PAD / sizeof PAD[0]; j++) {
      size_t len = PT[i], padded = PT[i] + PAD[j];
      uint64_t counter = 1000 + i * 16 + j;
      ref_seal_padded(f, counter, len, padded);
      memset(f->ours, 0xa5, padded + WG_AEAD_TAG_LEN); /* the padding must not come from here */
      assert_true(wg_aead_ctx_seal_padded(f->ctx, counter, f->ours, f->pt, len, padded));
      assert_memory_equal(f->ours, f->ref, padded + WG_AEAD_TAG_LEN);
      memset(f->ours, 0xa5, padded + WG_AEAD_TAG_LEN);
      memcpy(f->ours, f->pt, len);
      assert_true(wg_aead_ctx_seal_padded(f->ctx, counter, f->ours, f->ours, len, padded));
      assert_memory_equal(f->ours, f->ref, padded + WG_AEAD_TAG_LEN);
    }
  }
  assert_false(wg_aead_ctx_seal_padded(f->ctx, 1, f->ours, f->pt, 20, 19));
  assert_false(wg_aead_ctx_seal_padded(f->ctx, 1, f->ours, f->pt, 20, (size_t)WG_AEAD_MAX_LEN + 1));
}

/* The seal that borrows the room around its output: the reference's bytes, from a separate
 * buffer and in place, and the room exactly as it was before. Each buffer is allocated to the
 * byte (room, packet, tag, room), so that ASan sees any touch beyond the room; the lengths
 * cover every overrun of the last 64-byte block past the tag, and the longer packets that take
 * the other path. */
static void test_seal_padded_room(void **state) {
  fixture *f = *state;
  static const size_t PT[] = {0,  1,  15, 16,   17,   31,   32,   33,   47,   48,
                              63, 64, 65, 1380, 1392, 1420, 4000, 4096, 4100, 9000};
  static const size_t PAD[] = {0, 1, 15, 16, 47};
  const size_t room = WG_AEAD_ROOM;
  for (size_t i = 0; i < sizeof PT / sizeof PT[0]; i++) {
    for (size_t j = 0; j < sizeof PAD / sizeof PAD[0]; j++) {
      size_t len = PT[i], padded = PT[i] + PAD[j], total = room + padded + WG_AEAD_TAG_LEN + room;
      uint64_t counter = 5000 + i * 8 + j;
      uint8_t *buf = malloc(total), *pattern = malloc(total);
      assert_non_null(buf);
      assert_non_null(pattern);
      for (size_t k = 0; k < total; k++) pattern[k] = (uint8_t)(k * 7 + 3);
      ref_seal_padded(f, counter, len, padded);
      for (int in_place = 0; in_place < 2; in_place++) {
        memcpy(buf, pattern, total);
        if (in_place) memcpy(buf + room, f->pt, len);
        assert_true(wg_aead_ctx_seal_padded_room(f->ctx, counter, buf + room,
                                                 in_place ? buf + room : f->pt, len, padded));
        assert_memory_equal(buf + room, f->ref, padded + WG_AEAD_TAG_LEN);
        assert_memory_equal(buf, pattern, room);
        assert_memory_equal(buf + room + padded + WG_AEAD_TAG_LEN,
                            pattern + room + padded + WG_AEAD_TAG_LEN, room);
      }
      free(buf);
      free(pattern);
    }
  }
  uint8_t small[WG_AEAD_ROOM + 64 + WG_AEAD_TAG_LEN + WG_AEAD_ROOM];
  assert_false(wg_aead_ctx_seal_padded_room(f->ctx, 1, small + room, f->pt, 20, 19));
}

static void test_backend_name(void **state) {
  (void)state;
  const char *name = wg_aead_backend();
  assert_true(strcmp(name, "openssl") == 0 || strcmp(name, "sodium") == 0);
}

int main(void) {
#ifdef AWG_AEAD_OPENSSL
  /* Before anything makes OpenSSL allocate. */
  if (!CRYPTO_set_mem_functions(watch_malloc, watch_realloc, watch_free)) return 1;
#endif
  const struct CMUnitTest tests[] = {
#ifdef AWG_AEAD_OPENSSL
      cmocka_unit_test(test_key_wiped_on_free),
#endif
      cmocka_unit_test_setup_teardown(test_seal_matches_reference, setup, teardown),
      cmocka_unit_test_setup_teardown(test_open_reference, setup, teardown),
      cmocka_unit_test_setup_teardown(test_tampering_rejected, setup, teardown),
      cmocka_unit_test_setup_teardown(test_other_key_rejected, setup, teardown),
      cmocka_unit_test_setup_teardown(test_in_place, setup, teardown),
      cmocka_unit_test_setup_teardown(test_seal_padded, setup, teardown),
      cmocka_unit_test_setup_teardown(test_seal_padded_room, setup, teardown),
      cmocka_unit_test(test_backend_name),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
