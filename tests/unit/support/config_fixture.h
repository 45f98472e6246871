/* Test fixture for src/config/: loads a config text with config_load_buffer (as "test.conf") and
 * checks the result: required validity, expected diagnostics by kind, line and message part, and
 * keys, CIDRs and host:port values against their text forms. Helpers fail the running cmocka test
 * on unexpected results, printing the diagnostics. cfx_ = config fixture. */
#ifndef AWGPROXY_TEST_CONFIG_FIXTURE_H
#define AWGPROXY_TEST_CONFIG_FIXTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "util/keys.h"

/* A loaded config, its diagnostics and config_load_buffer's result. */
typedef struct {
  app_config c;
  diag_list d;
  int rc;
} cfx_loaded;

/* Prints every diagnostic (through cmocka's print_message). */
void cfx_print_diags(const diag_list *d);

/* Loads text (len bytes, or up to its NUL) into a fresh L; any result is accepted. */
void cfx_load_len(cfx_loaded *L, const char *text, size_t len);
void cfx_load(cfx_loaded *L, const char *text);
/* Loads text and requires it to be valid (warnings allowed). */
void cfx_load_ok(cfx_loaded *L, const char *text);
/* Frees what a load gave L. */
void cfx_unload(cfx_loaded *L);

/* Requires a diagnostic of this kind at this line whose message contains `part`. */
void cfx_expect_diag(const cfx_loaded *L, diag_kind kind, int line, const char *part);

/* Decodes a base64 test key. */
void cfx_key(const char *b64, uint8_t out[AWG_KEY_LEN]);
void cfx_assert_key(const uint8_t got[AWG_KEY_LEN], const char *b64);
/* c formats (cfg_format_cidr) as text. */
void cfx_assert_cidr(const cfg_cidr *c, const char *text);
void cfx_assert_hostport(const cfg_hostport *h, const char *host, uint16_t port, bool is_ip);

#endif
