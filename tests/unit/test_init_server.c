/* `awgproxy init-server` draws (src/cli/init_server.h, obfs_draw.h): every config it writes loads
 * without an error or a warning, across many draws of every profile, and the drawn parameters obey
 * the rules of ../shared/spec/awg-obfuscation.md checked here independently of the drawing code:
 * disjoint header ranges clear of the plain WireGuard types, distinct paddings, no transport
 * length equal to a padded handshake (§4.4), and I-packets within one datagram of a 1500-byte
 * path. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
/* clang-format on */

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>

#include "awg/itag.h"
#include "cli/conf_file.h"
#include "cli/init_server.h"
#include "cli/peer_book.h"
#include "config/config.h"

static size_t draw_and_load(obfs_profile profile, app_config *c, const char *subnet) {
  init_server_opts o = {.endpoint = "vpn.example.com",
                        .profile = profile,
                        .subnet = subnet,
                        .control = "/run/awgproxy-test/wg0.sock"};
  static char text[16384];
  char err[256];
  size_t len = init_server_text(&o, text, sizeof text, err, sizeof err);
  assert_true(len > 0);
  diag_list d = {0};
  config_init(c);
  int rc = config_load_buffer(c, text, len, "draw.conf", &d);
  if (rc != 0 || d.warnings) {
    diag_list_print(&d, "draw.conf", stderr);
    fprintf(stderr, "%s", text);
  }
  assert_int_equal(rc, 0);
  assert_int_equal(d.warnings, 0);
  diag_list_free(&d);
  assert_non_null(strstr(text, "# Endpoint = vpn.example.com:"));
  return len;
}

/* The spec's rules, written out again on the loaded config. */
static void check_rules(const app_config *c, obfs_profile profile) {
  const awg_params *p = &c->awg;
  if (profile == OBFS_PROFILE_WIREGUARD) {
    for (int k = 0; k < 4; k++) {
      assert_int_equal(p->s[k], 0);
      assert_int_equal(p->h[k].start, (uint32_t)k + 1);
    }
    return;
  }
  for (int a = 0; a < 4; a++) {
    assert_true(p->h[a].start >= 5);
    assert_true(p->h[a].end > p->h[a].start);
    for (int b = a + 1; b < 4; b++) {
      assert_true(p->h[a].end < p->h[b].start || p->h[b].end < p->h[a].start);
      assert_int_not_equal(p->s[a], p->s[b]);
    }
  }
  uint32_t init = p->s[0] + 148, resp = p->s[1] + 92, cookie = p->s[2] + 64;
  assert_true(init != resp && init != cookie && resp != cookie);
  for (uint32_t len = p->s[3] + 32; len <= p->s[3] + 32 + 1420; len += 16)
    assert_true(len != init && len != resp && len != cookie);
  assert_true(p->s[3] >= 1 && p->s[3] <= 20); /* 20 + 32 + 1420 fits 1472 */
  assert_true(p->jc >= 1 && p->jmin <= p->jmax && p->jmax <= 1280);
  assert_non_null(p->i[0]);
  assert_true(awg_itemplate_size(p->i[0]) <= 1472);
  if (profile == OBFS_PROFILE_AWG3) {
    /* with RandomTrailers a transport packet is lost with probability sum(|H|) / 2^32 (awg3 R26) */
    uint64_t covered = 0;
    for (int k = 0; k < 4; k++) {
      assert_true(p->s[k] >= 12);
      covered += (uint64_t)p->h[k].end - p->h[k].start + 1;
    }
    assert_true(covered <= 4096);
  } else {
    for (int k = 0; k < 4; k++) assert_true(p->h[k].end - p->h[k].start >= 65535);
  }
}

static void run_draws(obfs_profile profile, int n) {
  for (int i = 0; i < n; i++) {
    app_config c;
    draw_and_load(profile, &c, NULL);
    check_rules(&c, profile);
    assert_true(c.has_listen_port && c.listen_port >= 20000 && c.listen_port != 51820);
    assert_int_equal(c.n_addresses, 2);
    assert_int_equal(c.addresses[0].addr[0], 10);
    assert_int_equal(c.addresses[0].addr[3], 1);
    assert_int_equal(c.addresses[1].addr[0], 0xfd);
    config_free(&c);
  }
}

static void test_thousand_awg2_draws(void **state) {
  (void)state;
  run_draws(OBFS_PROFILE_AWG2, 1000);
}

static void test_awg3_and_wireguard_draws(void **state) {
  (void)state;
  run_draws(OBFS_PROFILE_AWG3, 200);
  run_draws(OBFS_PROFILE_WIREGUARD, 50);
}

static void test_subnet_argument(void **state) {
  (void)state;
  app_config c;
  draw_and_load(OBFS_PROFILE_AWG2, &c, "172.20.5.77/20");
  char a[64];
  cfg_format_cidr(&c.addresses[0], a, sizeof a);
  assert_string_equal(a, "172.20.0.1/20");
  config_free(&c);
  init_server_opts o = {.subnet = "fd00::/64"};
  char text[16384], err[256];
  assert_int_equal(init_server_text(&o, text, sizeof text, err, sizeof err), 0);
  assert_non_null(strstr(err, "IPv4"));
}

static void test_peer_names(void **state) {
  (void)state;
  assert_true(peer_name_ok("alice"));
  assert_true(peer_name_ok("bob.phone-2@home+x_1"));
  assert_false(peer_name_ok(""));
  assert_false(peer_name_ok("-rf"));
  assert_false(peer_name_ok(".hidden"));
  assert_false(peer_name_ok("a b"));
  assert_false(peer_name_ok("a/b"));
  assert_false(peer_name_ok("x#y"));
  char long_name[70];
  memset(long_name, 'a', 64);
  long_name[64] = 0;
  assert_false(peer_name_ok(long_name));
  long_name[63] = 0;
  assert_true(peer_name_ok(long_name));
}

static void test_conf_text_notes(void **state) {
  (void)state;
  static const char text[] = "[Interface]\r\n# Endpoint = h:1\nKey = v # c\n[Peer]\n#Name=al\n";
  conf_text t;
  assert_int_equal(conf_text_split(text, sizeof text - 1, &t), 0);
  assert_int_equal(t.n, 5);
  assert_int_equal(t.n_sections, 2);
  assert_string_equal(t.section_name[1], "Peer");
  char k[32], v[32];
  assert_true(conf_line_note(&t.lines[1], "endpoint", v, sizeof v));
  assert_string_equal(v, "h:1");
  assert_true(conf_line_pair(&t.lines[2], k, sizeof k, v, sizeof v));
  assert_string_equal(k, "Key");
  assert_string_equal(v, "v");
  assert_false(conf_line_pair(&t.lines[1], k, sizeof k, v, sizeof v));
  assert_true(conf_line_note(&t.lines[4], "Name", v, sizeof v));
  assert_string_equal(v, "al");
  assert_int_equal(t.lines[4].section, 1);
  conf_text_free(&t);
}

int main(void) {
  if (sodium_init() < 0) return 1;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_thousand_awg2_draws), cmocka_unit_test(test_awg3_and_wireguard_draws),
      cmocka_unit_test(test_subnet_argument),     cmocka_unit_test(test_peer_names),
      cmocka_unit_test(test_conf_text_notes),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
