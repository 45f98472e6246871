/* libFuzzer target for the AWG obfuscation layer's untrusted inputs: I-packet template text
 * (config files) and received datagrams (the network).
 *
 * The input is compiled as a template; if it compiles, it is rendered (deterministic RNG) and used
 * as I1 of a pre-handshake batch. The raw bytes are also classified with several parameter sets.
 * Invariants are checked with abort() so that the fuzzer reports them as crashes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "awg/itag.h"
#include "awg/obfs.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)       \
  do {                    \
    if (!(cond)) abort(); \
  } while (0)

/* splitmix64: reproducible bytes, so every crash replays exactly. */
static void det_fill(void *ctx, uint8_t *buf, size_t n) {
  uint64_t *x = ctx;
  for (size_t i = 0; i < n; i++) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    buf[i] = (uint8_t)(z ^ (z >> 31));
  }
}

static void check_render(const awg_itemplate *t, const rng_source *rng) {
  size_t n = awg_itemplate_size(t);
  CHECK(n <= AWG_MAX_DATAGRAM);
  uint8_t *buf = malloc(n ? n : 1); /* exact size: ASan catches any overrun */
  CHECK(buf != NULL);
  awg_render_ctx ctx = {rng, 1700000000u, 42};
  CHECK(awg_itemplate_render(t, &ctx, buf, n) == n);
  if (n > 0) CHECK(awg_itemplate_render(t, &ctx, buf, n - 1) == 0);
  free(buf);
}

/* Uses the template as I1 with a little junk; the arena is exactly the advertised bound. */
static void check_prehandshake(awg_itemplate *t, const rng_source *rng, uint8_t knob) {
  awg_params p;
  awg_params_init(&p);
  p.i[0] = t;
  p.jc = knob % 4;
  p.jmin = knob % 7;
  p.jmax = p.jmin + knob % 13;
  char err[256];
  CHECK(awg_params_validate(&p, err, sizeof err) == 0);
  size_t max = awg_prehandshake_max_bytes(&p), count = awg_prehandshake_count(&p);
  uint8_t *arena = malloc(max ? max : 1);
  awg_datagram out[8];
  CHECK(arena != NULL && count <= 8);
  awg_render_ctx ctx = {rng, 0, 0};
  CHECK(awg_build_prehandshake(&p, &ctx, arena, max, out, count) == (int)count);
  CHECK(out[0].len == awg_itemplate_size(t));
  free(arena);
  p.i[0] = NULL; /* owned by the caller */
  awg_params_free(&p);
}

static void fuzz_template(const uint8_t *data, size_t size) {
  char *text = malloc(size + 1);
  CHECK(text != NULL);
  memcpy(text, data, size);
  text[size] = '\0';

  awg_itemplate *t = NULL;
  char err[512];
  int rc = awg_itemplate_compile(text, &t, err, sizeof err);
  if (rc == 0 && t != NULL) {
    CHECK(strcmp(awg_itemplate_text(t), text) == 0);
    uint64_t seed = size;
    rng_source rng = {det_fill, &seed};
    check_render(t, &rng);
    check_prehandshake(t, &rng, size ? data[0] : 0);
    awg_itemplate_free(t);
  } else if (rc != 0) {
    CHECK(t == NULL && err[0] != '\0' && strlen(err) < sizeof err);
    /* A tiny buffer must truncate, never overflow. */
    char small[7];
    CHECK(awg_itemplate_compile(text, &t, small, sizeof small) == -1);
    CHECK(strlen(small) < sizeof small);
  } else {
    CHECK(strchr(text, '<') == NULL); /* unset slot: only for tagless text */
  }
  free(text);
}

static void check_classify(const awg_params *p, const uint8_t *d, size_t len) {
  const uint8_t *msg = NULL;
  size_t msg_len = 0;
  int bare = -1;
  awg_msg_kind k = awg_classify(p, d, len, &msg, &msg_len, &bare);
  if (k == AWG_MSG_UNKNOWN) {
    CHECK(msg == NULL && msg_len == 0 && bare == 0);
    return;
  }
  CHECK(msg >= d && msg + msg_len == d + len);
  static const size_t kSize[3] = {WG_INIT_SIZE, WG_RESPONSE_SIZE, WG_COOKIE_SIZE};
  if (k == AWG_MSG_TRANSPORT) {
    CHECK(msg_len >= WG_TRANSPORT_MIN);
    CHECK(bare == 0 || (msg == d && msg_len == WG_TRANSPORT_MIN && p->s[3] > 0));
  } else {
    CHECK(k >= AWG_MSG_INIT && k <= AWG_MSG_COOKIE && bare == 0);
    CHECK(msg_len == kSize[k - 1] && (size_t)(msg - d) == p->s[k - 1]);
  }
}

static void fuzz_classify(const uint8_t *data, size_t size) {
  awg_params p[4];
  for (int i = 0; i < 4; i++) awg_params_init(&p[i]);
  /* 1: the TestAWGDevicePing set. */
  p[1].s[0] = 15, p[1].s[1] = 18, p[1].s[2] = 20, p[1].s[3] = 25;
  p[1].h[0] = (awg_hrange){123456, 123500};
  p[1].h[1] = (awg_hrange){67543, 67550};
  p[1].h[2] = (awg_hrange){123123, 123200};
  p[1].h[3] = (awg_hrange){32345, 32350};
  /* 2: small S4 with a wide H4 (bare keepalive vs. short transport). */
  p[2].s[3] = 8;
  p[2].h[0] = (awg_hrange){200, 200};
  p[2].h[1] = (awg_hrange){201, 201};
  p[2].h[2] = (awg_hrange){202, 202};
  p[2].h[3] = (awg_hrange){0, 100};
  /* 3: the largest paddings validation allows, and near-full header ranges. */
  p[3].s[0] = 65387, p[3].s[1] = 65443, p[3].s[2] = 65471, p[3].s[3] = 65503;
  p[3].h[0] = (awg_hrange){0, 0x3fffffff};
  p[3].h[1] = (awg_hrange){0x40000000, 0x7fffffff};
  p[3].h[2] = (awg_hrange){0x80000000, 0xbfffffff};
  p[3].h[3] = (awg_hrange){0xc0000000, 0xffffffff};
  for (int i = 0; i < 4; i++) {
    CHECK(awg_params_validate(&p[i], NULL, 0) == 0);
    check_classify(&p[i], data, size);
    size_t extra = awg_transport_extra_padding(&p[i], size);
    CHECK(extra % 16 == 0 && extra <= 48);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_template(data, size);
  fuzz_classify(data, size);
  return 0;
}
