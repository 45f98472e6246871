/* config_keep_restart_only (config/config_diff.h): which keys a reload may not change, that each
 * changed one is named once, that the loaded config gets the running values (as independent
 * copies) and that reloadable keys are left alone. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "awg/itag.h"
#include "config/config.h"
#include "config/config_diff.h"

#define PRIV_A "8JvmiZZht1aqnTIYo1qLT32mEW9no5/71WVx5oCTIm4="
#define PRIV_B "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk="
#define PUB_B "vameuq1G3A/VgRXmv6boolzOzoadpgtEj1JKzG+WkDw="
#define PUB_C "Oc0QUC+UmfrEGX7aIy1VRgKI6f7J0IhSrNfAOLZCKwI="

static const char base[] =
    "[Interface]\nPrivateKey = " PRIV_A
    "\nListenPort = 51820\nAddress = 10.0.0.1/24\n"
    "Jc = 3\nJmin = 40\nJmax = 70\nS1 = 15\nH1 = 100-200\nI1 = <b 0x0102><r 8>\n"
    "DNS = 10.0.0.53\n\n"
    "[Socks]\nListen = 127.0.0.1:1080\nIdleTimeout = 60\n\n"
    "[Forward]\nListen = 127.0.0.1:2000\nTarget = example.com:80\n\n"
    "[Server]\nAllowPrivate = no\n\n"
    "[Peer]\nPublicKey = " PUB_B "\nAllowedIPs = 10.0.0.2/32\n";

static app_config *load(const char *text) {
  app_config *c = calloc(1, sizeof *c);
  diag_list d = {0};
  config_init(c);
  int rc = config_load_buffer(c, text, strlen(text), "test.conf", &d);
  for (size_t i = 0; i < d.n; i++)
    if (d.items[i].kind == DIAG_ERROR)
      print_message("line %d: %s\n", d.items[i].line, d.items[i].msg);
  assert_int_equal(rc, 0);
  diag_list_free(&d);
  return c;
}

static void drop(app_config *c) {
  config_free(c);
  free(c);
}

/* Replaces the first occurrence of from in base with to. */
static char *edit(const char *from, const char *to) {
  const char *at = strstr(base, from);
  assert_non_null(at);
  size_t n = strlen(base) - strlen(from) + strlen(to) + 1;
  char *out = malloc(n);
  snprintf(out, n, "%.*s%s%s", (int)(at - base), base, to, at + strlen(from));
  return out;
}

static int diff(const char *loaded_text, const char **names, size_t max, app_config **out) {
  app_config *running = load(base), *loaded = load(loaded_text);
  int n = config_keep_restart_only(loaded, running, names, max);
  drop(running);
  *out = loaded;
  return n;
}

static void test_identical_file_changes_nothing(void **state) {
  (void)state;
  const char *names[CFG_RESTART_KEYS_MAX];
  app_config *l;
  assert_int_equal(diff(base, names, CFG_RESTART_KEYS_MAX, &l), 0);
  drop(l);
}

static void test_each_restart_only_key_is_named_and_kept(void **state) {
  (void)state;
  static const struct {
    const char *from, *to, *name;
  } cases[] = {
      {"PrivateKey = " PRIV_A, "PrivateKey = " PRIV_B, "[Interface] PrivateKey"},
      {"ListenPort = 51820", "ListenPort = 51821", "[Interface] ListenPort"},
      {"Address = 10.0.0.1/24", "Address = 10.0.0.1/24, fd00::1/64", "[Interface] Address"},
      {"DNS = 10.0.0.53", "DNS = 10.0.0.54", "[Interface] DNS"},
      {"Jc = 3", "Jc = 4", "[Interface] Jc"},
      {"Jmax = 70", "Jmax = 90", "[Interface] Jmax"},
      {"S1 = 15", "S1 = 16", "[Interface] S1"},
      {"H1 = 100-200", "H1 = 100-201", "[Interface] H1"},
      {"I1 = <b 0x0102><r 8>", "I1 = <b 0x0102><r 9>", "[Interface] I1"},
      {"[Socks]\n",
       "[Socks]\nUser = "
       "bob:$argon2id$v=19$m=65536,t=2,p=1$c2FsdHNhbHQ$"
       "aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g\n",
       "[Socks] User"},
      {"Listen = 127.0.0.1:1080", "Listen = 127.0.0.1:1081", "[Socks] Listen"},
      {"IdleTimeout = 60", "IdleTimeout = 61", "[Socks] IdleTimeout"},
      {"Target = example.com:80", "Target = example.com:81", "[Forward]"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char *text = edit(cases[i].from, cases[i].to);
    const char *names[CFG_RESTART_KEYS_MAX];
    app_config *l, *running = load(base);
    int n = diff(text, names, CFG_RESTART_KEYS_MAX, &l);
    if (n != 1) print_message("case %zu (%s): %d names\n", i, cases[i].name, n);
    assert_int_equal(n, 1);
    assert_string_equal(names[0], cases[i].name);
    /* Now equal to the running config: a second comparison finds nothing. */
    assert_int_equal(config_keep_restart_only(l, running, names, CFG_RESTART_KEYS_MAX), 0);
    drop(running);
    drop(l); /* frees its own copies: ASan would see a double free if memory were shared */
    free(text);
  }
}

static void test_reloadable_keys_are_left_alone(void **state) {
  (void)state;
  char *t1 = edit("AllowPrivate = no", "AllowPrivate = yes");
  char *t2 =
      edit("AllowedIPs = 10.0.0.2/32",
           "AllowedIPs = 10.0.0.3/32\n\n[Peer]\nPublicKey = " PUB_C "\nAllowedIPs = 10.0.0.4/32");
  const char *names[CFG_RESTART_KEYS_MAX];
  app_config *l;
  assert_int_equal(diff(t1, names, CFG_RESTART_KEYS_MAX, &l), 0);
  assert_true(l->server_allow_private);
  drop(l);
  assert_int_equal(diff(t2, names, CFG_RESTART_KEYS_MAX, &l), 0);
  assert_int_equal(l->n_peers, 2);
  assert_int_equal(l->peers[0].allowed_ips[0].addr[3], 3);
  drop(l);
  free(t1);
  free(t2);
}

static void test_values_are_copied_back(void **state) {
  (void)state;
  char *text =
      edit("Jc = 3\nJmin = 40\nJmax = 70\nS1 = 15\nH1 = 100-200\nI1 = <b 0x0102><r 8>\n", "");
  const char *names[CFG_RESTART_KEYS_MAX];
  app_config *l;
  int n = diff(text, names, CFG_RESTART_KEYS_MAX, &l);
  assert_int_equal(n, 6); /* Jc Jmin Jmax S1 H1 I1 */
  assert_int_equal(l->awg.jc, 3);
  assert_int_equal(l->awg.s[0], 15);
  assert_int_equal(l->awg.h[0].start, 100);
  assert_non_null(l->awg.i[0]);
  assert_string_equal(awg_itemplate_text(l->awg.i[0]), "<b 0x0102><r 8>");
  drop(l);
  free(text);
}

static void test_names_bounded_by_max(void **state) {
  (void)state;
  char *text = edit("ListenPort = 51820", "ListenPort = 1\nMTU = 1300");
  const char *names[1];
  app_config *l;
  assert_int_equal(diff(text, names, 1, &l), 1);
  assert_string_equal(names[0], "[Interface] ListenPort");
  /* Both are kept even though only one name fit. */
  assert_int_equal(l->listen_port, 51820);
  assert_int_not_equal(l->mtu, 1300);
  drop(l);
  free(text);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_identical_file_changes_nothing),
      cmocka_unit_test(test_each_restart_only_key_is_named_and_kept),
      cmocka_unit_test(test_reloadable_keys_are_left_alone),
      cmocka_unit_test(test_values_are_copied_back),
      cmocka_unit_test(test_names_bounded_by_max),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
