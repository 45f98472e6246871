/* Several client configs, one server per file (config_set.h), and the keys that go with them:
 * [Client], [Socks] Mode, User pins. Files are written to a fresh directory under TMPDIR. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/config.h"
#include "config/config_set.h"

#define PRIV "8JvmiZZht1aqnTIYo1qLT32mEW9no5/71WVx5oCTIm4="
#define PUB "vameuq1G3A/VgRXmv6boolzOzoadpgtEj1JKzG+WkDw="
#define HASH "$argon2id$v=19$m=65536,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2g"

/* One server's client config: 7 lines, so our sections start at line 8. */
#define SERVER(addr, ep)                                                             \
  "[Interface]\nPrivateKey = " PRIV "\nAddress = " addr "\n[Peer]\nPublicKey = " PUB \
  "\nEndpoint = " ep "\nAllowedIPs = 0.0.0.0/0\n"

static char dir[256];

static int make_dir(void **state) {
  const char *t = getenv("TMPDIR");
  snprintf(dir, sizeof dir, "%s/cfgset.XXXXXX", t && *t ? t : "/tmp");
  return mkdtemp(dir) ? 0 : -1;
}

static int remove_dir(void **state) {
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  return system(cmd) == 0 ? 0 : -1;
}

/* Writes dir/name (mode 600) and returns its path in a static ring of buffers. */
static const char *put(const char *name, const char *text) {
  static char paths[8][300];
  static int next;
  char *p = paths[next++ % 8];
  snprintf(p, 300, "%s/%s", dir, name);
  FILE *f = fopen(p, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
  chmod(p, 0600);
  return p;
}

typedef struct {
  config_set set;
  cfg_set_report r;
  int rc;
} loaded;

static void print_report(const cfg_set_report *r) {
  char *buf = NULL;
  size_t len = 0;
  FILE *m = open_memstream(&buf, &len);
  cfg_set_report_print(r, m);
  fclose(m);
  print_message("%s", buf);
  free(buf);
}

static void load(loaded *L, const char *const *paths, size_t n) {
  L->rc = config_set_load(&L->set, paths, n, &L->r);
}

static void unload(loaded *L) {
  config_set_free(&L->set);
  cfg_set_report_free(&L->r);
}

/* Requires a diagnostic in the report entry for path, at line, containing part. */
static void expect_diag(const loaded *L, const char *path, diag_kind kind, int line,
                        const char *part) {
  for (size_t i = 0; i < L->r.n; i++) {
    if (strcmp(L->r.files[i].path, path) != 0) continue;
    const diag_list *d = &L->r.files[i].diags;
    for (size_t k = 0; k < d->n; k++)
      if (d->items[k].kind == kind && d->items[k].line == line && strstr(d->items[k].msg, part))
        return;
  }
  print_report(&L->r);
  fail_msg("no %s at %s:%d containing \"%s\"", kind == DIAG_ERROR ? "error" : "warning", path, line,
           part);
}

static void test_two_files_merge(void **state) {
  const char *a = put("fra.conf", SERVER("10.66.0.2/32", "192.0.2.1:51820") "[Socks]\n"
                                                                            "Listen = "
                                                                            "127.0.0.1:1090\n");
  const char *b = put("ams.conf", SERVER("10.67.0.2/32", "192.0.2.2:51820") "[Client]\n"
                                                                            "ProbeInterval = 30\n"
                                                                            "Select = fra\n"
                                                                            "Failback = off\n"
                                                                            "ProbeFailures = 3\n"
                                                                            "[Log]\n"
                                                                            "Level = debug\n");
  const char *paths[] = {a, b};
  loaded L;
  load(&L, paths, 2);
  if (L.rc != 0) print_report(&L.r);
  assert_int_equal(L.rc, 0);
  assert_int_equal(L.set.n, 2);
  assert_int_equal(L.set.n_broken, 0);
  assert_string_equal(L.set.servers[0].name, "fra");
  assert_string_equal(L.set.servers[1].name, "ams");
  assert_int_equal(config_set_find(&L.set, "ams"), 1);
  assert_int_equal(config_set_find(&L.set, "FRA"), 0);
  assert_int_equal(config_set_find(&L.set, "x"), -1);
  const app_config *f = &L.set.front;
  assert_string_equal(f->path, a);
  assert_int_equal(f->n_peers, 0);
  assert_int_equal(f->n_addresses, 0);
  assert_int_equal(f->n_socks_listen, 1);
  assert_int_equal(f->socks_listen[0].port, 1090);
  assert_int_equal(f->client_probe_interval, 30);
  assert_int_equal(f->client_probe_failures, 3);
  assert_false(f->client_failback);
  assert_string_equal(f->client_select, "fra");
  assert_int_equal(f->log_level >= 0, 1);
  /* each server keeps its own tunnel; the per-file [Socks] is as written, not defaulted */
  assert_int_equal(L.set.servers[0].cfg.n_peers, 1);
  assert_int_equal(L.set.servers[1].cfg.addresses[0].addr[1], 67);
  assert_int_equal(L.set.servers[1].cfg.n_socks_listen, 0);
  assert_int_equal(L.r.errors, 0);
  unload(&L);
}

static void test_directory(void **state) {
  put("b.conf", SERVER("10.66.0.2/32", "192.0.2.1:51820"));
  put("a.conf", SERVER("10.67.0.2/32", "192.0.2.2:51820"));
  put(".hidden.conf", "not a config\n");
  put("notes.txt", "not a config either\n");
  const char *paths[] = {dir};
  loaded L;
  load(&L, paths, 1);
  if (L.rc != 0) print_report(&L.r);
  assert_int_equal(L.rc, 0);
  assert_int_equal(L.set.n, 2);
  assert_string_equal(L.set.servers[0].name, "a");
  assert_string_equal(L.set.servers[1].name, "b");
  /* the merged front is a client's: the default SOCKS listener */
  assert_int_equal(L.set.front.n_socks_listen, 1);
  assert_int_equal(L.set.front.socks_listen[0].port, 1080);
  unload(&L);
}

static void test_empty_directory(void **state) {
  char sub[300];
  snprintf(sub, sizeof sub, "%s/empty", dir);
  assert_int_equal(mkdir(sub, 0700), 0);
  const char *paths[] = {sub};
  loaded L;
  load(&L, paths, 1);
  assert_int_equal(L.rc, -1);
  expect_diag(&L, sub, DIAG_ERROR, 0, "holds no *.conf");
  unload(&L);
}

static void test_duplicate_key_names_both(void **state) {
  const char *a = put("a.conf", SERVER("10.66.0.2/32", "192.0.2.1:51820") "[Socks]\n"
                                                                          "ConnectTimeout = 5\n");
  const char *b = put("b.conf", SERVER("10.67.0.2/32", "192.0.2.2:51820") "\n[socks]\n"
                                                                          "connecttimeout = 7\n");
  const char *paths[] = {a, b};
  loaded L;
  load(&L, paths, 2);
  assert_int_equal(L.rc, -1);
  char want[400];
  snprintf(want, sizeof want, "[Socks] ConnectTimeout is also set in %s:9", a);
  expect_diag(&L, b, DIAG_ERROR, 10, want);
  assert_int_equal(L.set.n, 0); /* emptied on failure */
  unload(&L);
}

static void test_broken_file_left_out(void **state) {
  const char *a = put("a.conf", SERVER("10.66.0.2/32", "192.0.2.1:51820"));
  const char *b = put("b.conf", "[Interface]\nPrivateKey = " PRIV "\nAdress = 10.0.0.2/32\n");
  const char *paths[] = {a, b};
  loaded L;
  load(&L, paths, 2);
  assert_int_equal(L.rc, 0);
  assert_int_equal(L.set.n, 1);
  assert_int_equal(L.set.n_broken, 1);
  assert_string_equal(L.set.servers[0].name, "a");
  expect_diag(&L, b, DIAG_ERROR, 3, "unknown key 'Adress'");
  assert_false(L.r.files[1].usable);
  /* printed as diag_list_print prints a single file */
  char *buf = NULL;
  size_t len = 0;
  FILE *m = open_memstream(&buf, &len);
  cfg_set_report_print(&L.r, m);
  fclose(m);
  char want[400];
  snprintf(want, sizeof want, "%s:3: error: unknown key 'Adress'", b);
  assert_non_null(strstr(buf, want));
  free(buf);
  unload(&L);
}

static void test_broken_file_with_shared_sections(void **state) {
  const char *a = put("a.conf", SERVER("10.66.0.2/32", "192.0.2.1:51820"));
  const char *b =
      put("b.conf", "[Interface]\nPrivateKey = " PRIV "\n[Socks]\nUser = alice:" HASH "\n");
  const char *paths[] = {a, b};
  loaded L;
  load(&L, paths, 2);
  assert_int_equal(L.rc, -1); /* the front would lose alice's login */
  expect_diag(&L, b, DIAG_ERROR, 3, "sections that every server shares");
  unload(&L);
}

static void test_none_usable(void **state) {
  const char *a = put("a.conf", "[Interface]\n");
  const char *paths[] = {a};
  loaded L;
  load(&L, paths, 1);
  assert_int_equal(L.rc, -1);
  assert_true(L.r.whole.errors > 0);
  unload(&L);
}

static void test_select_unknown_server(void **state) {
  const char *a = put("a.conf", SERVER("10.66.0.2/32", "192.0.2.1:51820") "[Client]\n"
                                                                          "Select = zrh\n");
  const char *b = put("b.conf", SERVER("10.67.0.2/32", "192.0.2.2:51820"));
  const char *paths[] = {a, b};
  loaded L;
  load(&L, paths, 2);
  assert_int_equal(L.rc, -1);
  expect_diag(&L, a, DIAG_ERROR, 9, "Select 'zrh': no config of the set is named so");
  expect_diag(&L, a, DIAG_ERROR, 9, "are: a, b");
  unload(&L);
}

static void test_user_pins(void **state) {
  const char *a = put("a.conf", SERVER("10.66.0.2/32", "192.0.2.1:51820") "[Socks]\n"
                                                                          "User = alice:" HASH
                                                                          ":b\n"
                                                                          "User = bob:" HASH "\n");
  const char *b = put("b.conf", SERVER("10.67.0.2/32", "192.0.2.2:51820"));
  const char *paths[] = {a, b};
  loaded L;
  load(&L, paths, 2);
  if (L.rc != 0) print_report(&L.r);
  assert_int_equal(L.rc, 0);
  const app_config *f = &L.set.front;
  assert_int_equal(f->n_socks_users, 2);
  assert_string_equal(f->socks_users[0].user, "alice");
  assert_string_equal(f->socks_users[0].hash, HASH);
  assert_string_equal(f->socks_users[0].server, "b");
  assert_string_equal(f->socks_users[1].server, "");
  unload(&L);

  a = put("a.conf", SERVER("10.66.0.2/32", "192.0.2.1:51820") "[Socks]\n"
                                                              "User = alice:" HASH ":zrh\n");
  const char *paths2[] = {a, b};
  load(&L, paths2, 2);
  assert_int_equal(L.rc, -1);
  expect_diag(&L, a, DIAG_ERROR, 9, "User pinned to 'zrh'");
  unload(&L);
}

static void test_pin_to_broken_server_warns(void **state) {
  const char *a = put("a.conf", SERVER("10.66.0.2/32", "192.0.2.1:51820") "[Socks]\n"
                                                                          "User = alice:" HASH
                                                                          ":b\n");
  const char *b = put("b.conf", "[Interface]\n");
  const char *paths[] = {a, b};
  loaded L;
  load(&L, paths, 2);
  assert_int_equal(L.rc, 0);
  assert_int_equal(L.set.n_broken, 1);
  expect_diag(&L, a, DIAG_WARNING, 9, "did not load");
  unload(&L);
}

static void test_forward_mode_refuses_users(void **state) {
  const char *a = put("a.conf", SERVER("10.66.0.2/32", "192.0.2.1:51820") "[Socks]\n"
                                                                          "Mode = forward\n");
  const char *b = put("b.conf", SERVER("10.67.0.2/32", "192.0.2.2:51820") "[Socks]\n"
                                                                          "User = alice:" HASH
                                                                          "\n");
  const char *paths[] = {a, b};
  loaded L;
  load(&L, paths, 2);
  assert_int_equal(L.rc, -1);
  expect_diag(&L, b, DIAG_ERROR, 9, "not allowed with [Socks] Mode = forward");
  unload(&L);
}

static void test_server_without_endpoint(void **state) {
  const char *a = put("a.conf", SERVER("10.66.0.2/32", "192.0.2.1:51820"));
  const char *b = put("b.conf", "[Interface]\nPrivateKey = " PRIV
                                "\nAddress = 10.0.0.2/32\n"
                                "[Peer]\nPublicKey = " PUB "\n");
  const char *paths[] = {a, b};
  loaded L;
  load(&L, paths, 2);
  assert_int_equal(L.rc, 0);
  assert_int_equal(L.set.n_broken, 1);
  expect_diag(&L, b, DIAG_ERROR, 4, "no [Peer] has an Endpoint");
  unload(&L);
}

static void test_bad_file_name(void **state) {
  const char *a = put("a.conf", SERVER("10.66.0.2/32", "192.0.2.1:51820"));
  const char *b = put("my server.conf", SERVER("10.67.0.2/32", "192.0.2.2:51820"));
  const char *paths[] = {a, b};
  loaded L;
  load(&L, paths, 2);
  assert_int_equal(L.rc, 0);
  assert_int_equal(L.set.n, 1);
  expect_diag(&L, b, DIAG_ERROR, 0, "is not a usable name");
  unload(&L);
}

/* ---- the keys in a single config (config_load_buffer, as `awgproxy client -c FILE`) ------- */

static int single(const char *text, diag_list *d, app_config *c) {
  memset(d, 0, sizeof *d);
  config_init(c);
  return config_load_buffer(c, text, strlen(text), "one.conf", d);
}

static bool has_error(const diag_list *d, int line, const char *part) {
  for (size_t i = 0; i < d->n; i++)
    if (d->items[i].kind == DIAG_ERROR && d->items[i].line == line && strstr(d->items[i].msg, part))
      return true;
  for (size_t i = 0; i < d->n; i++) print_message("  %d: %s\n", d->items[i].line, d->items[i].msg);
  return false;
}

static void test_single_config_keys(void **state) {
  app_config c;
  diag_list d;
  assert_int_equal(single(SERVER("10.66.0.2/32", "192.0.2.1:51820"), &d, &c), 0);
  assert_int_equal(c.client_probe_interval, 60);
  assert_int_equal(c.client_probe_failures, 2);
  assert_true(c.client_failback);
  assert_string_equal(c.client_select, "");
  assert_int_equal(c.socks_mode, SOCKS_MODE_CONNECT);
  config_free(&c);
  diag_list_free(&d);

  assert_int_equal(single(SERVER("10.66.0.2/32", "192.0.2.1:51820") "[Client]\n"
                                                                    "Select = AUTO\n"
                                                                    "ProbeInterval = 3600\n"
                                                                    "ProbeFailures = 10\n"
                                                                    "[Socks]\nMode = Forward\n",
                          &d, &c),
                   0);
  assert_int_equal(c.client_probe_interval, 3600);
  assert_int_equal(c.socks_mode, SOCKS_MODE_FORWARD);
  assert_int_equal(c.client_line, 8);
  config_free(&c);
  diag_list_free(&d);

  static const struct {
    const char *text;
    int line;
    const char *part;
  } bad[] = {
      {"[Client]\nSelect = fra\n", 9, "needs several configs"},
      {"[Client]\nSelect = a/b\n", 9, "is not a server name"},
      {"[Client]\nProbeInterval = 4\n", 9, "out of range"},
      {"[Client]\nProbeFailures = 11\n", 9, "out of range"},
      {"[Client]\nFailback = maybe\n", 9, "not a boolean"},
      {"[Socks]\nMode = direct\n", 9, "use connect or forward"},
      {"[Socks]\nUser = alice:" HASH ":fra\n", 9, "needs several configs"},
      {"[Socks]\nUser = alice:" HASH ":\n", 9, "is not a server name"},
      {"[Socks]\nMode = forward\nUser = alice:" HASH "\n", 10, "Mode = forward"},
      {"[Server]\n[Client]\n", 9, "a file is for one of them"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    char text[1024];
    snprintf(text, sizeof text, "%s%s", SERVER("10.66.0.2/32", "192.0.2.1:51820"), bad[i].text);
    assert_int_equal(single(text, &d, &c), -1);
    if (!has_error(&d, bad[i].line, bad[i].part)) fail_msg("case %zu: %s", i, bad[i].text);
    config_free(&c);
    diag_list_free(&d);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_two_files_merge, make_dir, remove_dir),
      cmocka_unit_test_setup_teardown(test_directory, make_dir, remove_dir),
      cmocka_unit_test_setup_teardown(test_empty_directory, make_dir, remove_dir),
      cmocka_unit_test_setup_teardown(test_duplicate_key_names_both, make_dir, remove_dir),
      cmocka_unit_test_setup_teardown(test_broken_file_left_out, make_dir, remove_dir),
      cmocka_unit_test_setup_teardown(test_broken_file_with_shared_sections, make_dir, remove_dir),
      cmocka_unit_test_setup_teardown(test_none_usable, make_dir, remove_dir),
      cmocka_unit_test_setup_teardown(test_select_unknown_server, make_dir, remove_dir),
      cmocka_unit_test_setup_teardown(test_user_pins, make_dir, remove_dir),
      cmocka_unit_test_setup_teardown(test_pin_to_broken_server_warns, make_dir, remove_dir),
      cmocka_unit_test_setup_teardown(test_forward_mode_refuses_users, make_dir, remove_dir),
      cmocka_unit_test_setup_teardown(test_server_without_endpoint, make_dir, remove_dir),
      cmocka_unit_test_setup_teardown(test_bad_file_name, make_dir, remove_dir),
      cmocka_unit_test(test_single_config_keys),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
