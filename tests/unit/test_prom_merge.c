/* Merging of worker expositions (src/observe/prom_merge.h): pages rendered by prom.c itself, merged
 * into one whose exact text is checked: counters summed, per-peer series concatenated within their
 * family, histograms summed bucket by bucket, max families, a family only one worker has, uint64
 * saturation, doubles and integers mixed, garbage lines skipped and counted, escaped label values,
 * families kept contiguous whatever order the workers list them in, and the series limit. */
/* cmocka.h needs these standard headers first. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
/* clang-format on */

#include <stdio.h>
#include <stdlib.h>

#include "observe/buf.h"
#include "observe/hist.h"
#include "observe/prom.h"
#include "observe/prom_merge.h"

static const char *const max_families[] = {"awgproxy_uptime_seconds", "awgproxy_build_info",
                                           "awgproxy_tunnel_up", NULL};

static const double bounds[] = {0.1, 1};

static void render_worker(obs_buf *b, int worker) {
  static const uint64_t ok[] = {3, 4}, timeout[] = {1, 1}, escaped[] = {10, 1};
  prom_header(b, "awgproxy_handshakes_total", "counter", "Handshakes by result.");
  prom_label l_ok = {"result", "ok"}, l_to[2] = {{"result", "failed"}, {"reason", "timeout"}};
  prom_label l_mac[2] = {{"result", "failed"}, {"reason", "mac"}};
  prom_sample_u64(b, "awgproxy_handshakes_total", &l_ok, 1, ok[worker]);
  if (worker == 1) prom_sample_u64(b, "awgproxy_handshakes_total", l_mac, 2, 2);
  prom_sample_u64(b, "awgproxy_handshakes_total", l_to, 2, timeout[worker]);

  prom_header(b, "awgproxy_peer_rx_bytes_total", "counter", "Bytes received, by peer.");
  prom_label l_esc = {"peer", "a b\"c"}, l_p1 = {"peer", "p1"}, l_p2 = {"peer", "p2"};
  if (worker == 0) prom_sample_u64(b, "awgproxy_peer_rx_bytes_total", &l_p1, 1, 5);
  if (worker == 1) prom_sample_u64(b, "awgproxy_peer_rx_bytes_total", &l_p2, 1, 7);
  prom_sample_u64(b, "awgproxy_peer_rx_bytes_total", &l_esc, 1, escaped[worker]);

  obs_hist h;
  obs_hist_init(&h, bounds, 2);
  static const double obs0[] = {0.0625, 0.5}, obs1[] = {0.5, 2, 3.5};
  for (size_t i = 0; i < (worker ? 3 : 2); i++) obs_hist_observe(&h, worker ? obs1[i] : obs0[i]);
  prom_header(b, "awgproxy_handshake_duration_seconds", "histogram", "Handshake time.");
  prom_histogram(b, "awgproxy_handshake_duration_seconds", NULL, 0, &h);

  prom_header(b, "awgproxy_uptime_seconds", "gauge", "Seconds since the daemon started.");
  prom_sample(b, "awgproxy_uptime_seconds", NULL, 0, worker ? 30.25 : 12.5);
  prom_header(b, "awgproxy_tunnel_up", "gauge", "1 when a session is up.");
  prom_sample_u64(b, "awgproxy_tunnel_up", NULL, 0, (uint64_t)worker);
  prom_header(b, "awgproxy_build_info", "gauge", "Always 1.");
  prom_label info[2] = {{"version", "0.1.0"}, {"role", "server"}};
  prom_sample_u64(b, "awgproxy_build_info", info, 2, 1);
  prom_header(b, "awgproxy_bytes_total", "counter", "Saturates.");
  prom_sample_u64(b, "awgproxy_bytes_total", NULL, 0, worker ? 5 : UINT64_MAX - 1);
  prom_header(b, "awgproxy_load_ratio", "gauge", "A double.");
  prom_sample(b, "awgproxy_load_ratio", NULL, 0, worker ? 0.2 : 0.1);
  if (worker == 0) return;
  prom_header(b, "awgproxy_worker_restarts_total", "counter", "Only in worker 1.");
  prom_sample_u64(b, "awgproxy_worker_restarts_total", NULL, 0, 2);
}

static void append_garbage(obs_buf *b) {
  obs_buf_puts(b, "awgproxy_worker_restarts_total{a=\"b} 1\n"); /* unterminated label value */
  obs_buf_puts(b, "awgproxy_load_ratio\n");                     /* no value */
  obs_buf_puts(b, "awgproxy_worker_restarts_total 12x\n");      /* bad number */
  obs_buf_puts(b, "# TYPE awgproxy_rtt summary\n");             /* type we cannot merge */
  obs_buf_puts(b, "awgproxy_rtt{quantile=\"0.5\"} 1\n");        /* so no family for this */
  for (int i = 0; i < 5000; i++) obs_buf_append(b, "x", 1);     /* too long */
  obs_buf_puts(b, "\n# a comment, dropped\n\n");                /* not counted */
}

static const char worker2[] =
    "awgproxy_orphan 1\r\n" /* before any TYPE */
    "# TYPE awgproxy_handshakes_total counter\r\n"
    "awgproxy_handshakes_total{result=\"ok\"} 1\r\n"
    "# TYPE awgproxy_uptime_seconds gauge\r\n"
    "awgproxy_uptime_seconds 20\r\n"
    "# TYPE awgproxy_handshakes_total gauge\n"       /* differs from the first TYPE */
    "awgproxy_handshakes_total{result=\"ok\"} 100\n" /* so this has no family */
    "# TYPE awgproxy_handshake_duration_seconds histogram\n"
    "awgproxy_handshake_duration_seconds_sum 25e-2\n"
    "awgproxy_handshake_duration_seconds_count 1 1700000000000\n"; /* timestamp */

static const char expected[] =
    "# HELP awgproxy_handshakes_total Handshakes by result.\n"
    "# TYPE awgproxy_handshakes_total counter\n"
    "awgproxy_handshakes_total{result=\"ok\"} 8\n"
    "awgproxy_handshakes_total{result=\"failed\",reason=\"timeout\"} 2\n"
    "awgproxy_handshakes_total{result=\"failed\",reason=\"mac\"} 2\n"
    "# HELP awgproxy_peer_rx_bytes_total Bytes received, by peer.\n"
    "# TYPE awgproxy_peer_rx_bytes_total counter\n"
    "awgproxy_peer_rx_bytes_total{peer=\"p1\"} 5\n"
    "awgproxy_peer_rx_bytes_total{peer=\"a b\\\"c\"} 11\n"
    "awgproxy_peer_rx_bytes_total{peer=\"p2\"} 7\n"
    "# HELP awgproxy_handshake_duration_seconds Handshake time.\n"
    "# TYPE awgproxy_handshake_duration_seconds histogram\n"
    "awgproxy_handshake_duration_seconds_bucket{le=\"0.1\"} 1\n"
    "awgproxy_handshake_duration_seconds_bucket{le=\"1\"} 3\n"
    "awgproxy_handshake_duration_seconds_bucket{le=\"+Inf\"} 5\n"
    "awgproxy_handshake_duration_seconds_sum 6.8125\n" /* 0.5625 + 6 (an integer) + 25e-2 */
    "awgproxy_handshake_duration_seconds_count 5\n"
    "# HELP awgproxy_uptime_seconds Seconds since the daemon started.\n"
    "# TYPE awgproxy_uptime_seconds gauge\n"
    "awgproxy_uptime_seconds 30.25\n"
    "# HELP awgproxy_tunnel_up 1 when a session is up.\n"
    "# TYPE awgproxy_tunnel_up gauge\n"
    "awgproxy_tunnel_up 1\n"
    "# HELP awgproxy_build_info Always 1.\n"
    "# TYPE awgproxy_build_info gauge\n"
    "awgproxy_build_info{version=\"0.1.0\",role=\"server\"} 1\n"
    "# HELP awgproxy_bytes_total Saturates.\n"
    "# TYPE awgproxy_bytes_total counter\n"
    "awgproxy_bytes_total 18446744073709551615\n"
    "# HELP awgproxy_load_ratio A double.\n"
    "# TYPE awgproxy_load_ratio gauge\n"
    "awgproxy_load_ratio 0.30000000000000004\n"
    "# HELP awgproxy_worker_restarts_total Only in worker 1.\n"
    "# TYPE awgproxy_worker_restarts_total counter\n"
    "awgproxy_worker_restarts_total 2\n";

static int merge(const char *const *texts, size_t n, const char *const *max, obs_buf *out) {
  size_t lens[8];
  for (size_t i = 0; i < n; i++) lens[i] = texts[i] ? strlen(texts[i]) : 0;
  return prom_merge(texts, lens, n, max, out);
}

static void test_workers(void **state) {
  obs_buf w0, w1, out;
  obs_buf_init(&w0);
  obs_buf_init(&w1);
  obs_buf_init(&out);
  render_worker(&w0, 0);
  render_worker(&w1, 1);
  append_garbage(&w1);
  assert_false(w0.failed || w1.failed);
  const char *texts[] = {w0.data, w1.data, worker2};
  /* Skipped: 6 garbage lines in worker 1; orphan, conflicting TYPE, its sample, timestamp in 2. */
  assert_int_equal(merge(texts, 3, max_families, &out), 10);
  assert_string_equal(out.data, expected);
  /* The merged page merges into itself unchanged. */
  obs_buf again;
  obs_buf_init(&again);
  const char *self[] = {out.data};
  assert_int_equal(merge(self, 1, max_families, &again), 0);
  assert_string_equal(again.data, out.data);
  obs_buf_free(&again);
  obs_buf_free(&w0);
  obs_buf_free(&w1);
  obs_buf_free(&out);
}

/* Workers list families in different orders: each family's samples still come out together, in
 * the order first seen, and a histogram listed as a max family is still summed. */
static void test_families_contiguous(void **state) {
  const char *texts[] = {"# TYPE a counter\na 1\n# TYPE b gauge\nb 1\n",
                         "# HELP c C.\n# TYPE c counter\nc 1\n"
                         "# TYPE a counter\n# HELP a Late help.\na{x=\"y z\"} 1\na 5\n"
                         "# TYPE b gauge\nb 2\n# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\n",
                         "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 3\n# TYPE b gauge\nb 0.5\n"};
  const char *const max[] = {"b", "h", NULL};
  obs_buf out;
  obs_buf_init(&out);
  obs_buf_puts(&out, "# before\n"); /* the page is appended */
  assert_int_equal(merge(texts, 3, max, &out), 0);
  assert_string_equal(out.data,
                      "# before\n"
                      "# HELP a Late help.\n# TYPE a counter\na 6\na{x=\"y z\"} 1\n"
                      "# TYPE b gauge\nb 2\n"
                      "# HELP c C.\n# TYPE c counter\nc 1\n"
                      "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 5\n");
  obs_buf_free(&out);
}

static void test_values(void **state) {
  const char *texts[] = {
      "# TYPE n gauge\nn NaN\ni +Inf\nd -1.5\nz 000\nbig 99999999999999999999\n"
      "e 1e400\nhex 0x10\nneg -2\n",
      "# TYPE n gauge\nn 1\ni 1\nd 0.5\nz 0\nbig 1\ne 1\nhex 1\nneg 2\n"
      "bad1 1.5.2\nbad2 \nbad3 -\nbad4 1e\n"};
  obs_buf out;
  obs_buf_init(&out);
  assert_int_equal(merge(texts, 2, NULL, &out), 4);
  assert_string_equal(out.data,
                      "# TYPE n gauge\nn NaN\ni +Inf\nd -1\nz 0\nbig 18446744073709551615\n"
                      "e +Inf\nhex 17\nneg 0\n");
  obs_buf_free(&out);
}

static void test_empty_inputs(void **state) {
  obs_buf out;
  obs_buf_init(&out);
  assert_int_equal(prom_merge(NULL, NULL, 0, NULL, &out), 0);
  assert_int_equal(out.len, 0);
  const char *texts[] = {NULL, "", "\n\r\n"};
  assert_int_equal(merge(texts, 3, NULL, &out), 0);
  assert_int_equal(out.len, 0);
  const char nul[] = "# TYPE a counter\na 1\0junk\na 2\n";
  const char *t[] = {nul};
  size_t len = sizeof nul - 1;
  assert_int_equal(prom_merge(t, &len, 1, NULL, &out), 1); /* the line with a NUL byte */
  assert_string_equal(out.data, "# TYPE a counter\na 2\n");
  obs_buf_free(&out);
}

static void test_series_limit(void **state) {
  obs_buf in, out;
  obs_buf_init(&in);
  obs_buf_init(&out);
  obs_buf_puts(&in, "# TYPE s counter\n");
  for (int i = 0; i < PROM_MERGE_MAX_SERIES + 5; i++) obs_buf_printf(&in, "s{i=\"%d\"} 1\n", i);
  obs_buf_puts(&in, "s{i=\"0\"} 1\n"); /* an existing series still merges */
  const char *texts[] = {in.data};
  assert_int_equal(merge(texts, 1, NULL, &out), 5);
  size_t lines = 0;
  for (size_t i = 0; i < out.len; i++) lines += out.data[i] == '\n';
  assert_int_equal(lines, PROM_MERGE_MAX_SERIES + 1);
  assert_non_null(strstr(out.data, "\ns{i=\"0\"} 2\ns{i=\"1\"} 1\n"));
  obs_buf_free(&in);
  obs_buf_free(&out);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_workers),      cmocka_unit_test(test_families_contiguous),
      cmocka_unit_test(test_values),       cmocka_unit_test(test_empty_inputs),
      cmocka_unit_test(test_series_limit),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
