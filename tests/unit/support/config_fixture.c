#include "config_fixture.h"

/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
/* clang-format on */

void cfx_print_diags(const diag_list *d) {
  for (size_t i = 0; i < d->n; i++)
    print_message("  line %d %s: %s\n", d->items[i].line,
                  d->items[i].kind == DIAG_ERROR ? "error" : "warning", d->items[i].msg);
}

void cfx_load_len(cfx_loaded *L, const char *text, size_t len) {
  memset(&L->d, 0, sizeof L->d);
  config_init(&L->c);
  L->rc = config_load_buffer(&L->c, text, len, "test.conf", &L->d);
}

void cfx_load(cfx_loaded *L, const char *text) { cfx_load_len(L, text, strlen(text)); }

void cfx_load_ok(cfx_loaded *L, const char *text) {
  cfx_load(L, text);
  if (L->rc != 0 || L->d.errors != 0) {
    cfx_print_diags(&L->d);
    fail_msg("config rejected (%zu errors)", L->d.errors);
  }
}

void cfx_unload(cfx_loaded *L) {
  config_free(&L->c);
  diag_list_free(&L->d);
}

void cfx_expect_diag(const cfx_loaded *L, diag_kind kind, int line, const char *part) {
  for (size_t i = 0; i < L->d.n; i++) {
    const diag *it = &L->d.items[i];
    if (it->kind == kind && it->line == line && strstr(it->msg, part)) return;
  }
  cfx_print_diags(&L->d);
  fail_msg("no %s at line %d containing \"%s\"", kind == DIAG_ERROR ? "error" : "warning", line,
           part);
}

void cfx_key(const char *b64, uint8_t out[AWG_KEY_LEN]) {
  char why[160];
  if (key_from_base64(b64, out, why, sizeof why) != 0) fail_msg("test key %s: %s", b64, why);
}

void cfx_assert_key(const uint8_t got[AWG_KEY_LEN], const char *b64) {
  uint8_t want[AWG_KEY_LEN];
  cfx_key(b64, want);
  assert_memory_equal(got, want, AWG_KEY_LEN);
}

void cfx_assert_cidr(const cfg_cidr *c, const char *text) {
  char buf[64];
  cfg_format_cidr(c, buf, sizeof buf);
  assert_string_equal(buf, text);
}

void cfx_assert_hostport(const cfg_hostport *h, const char *host, uint16_t port, bool is_ip) {
  assert_string_equal(h->host, host);
  assert_int_equal(h->port, port);
  assert_int_equal(h->host_is_ip, is_ip);
}
