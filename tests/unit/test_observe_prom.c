/* The Prometheus text writer (src/observe/prom.h) and the metrics page: name rules, label and
 * HELP escaping, number formatting, histogram buckets (cumulative, +Inf = count), _sum, _count,
 * and a rendered page whose every line is well-formed exposition format 0.0.4. */
/* cmocka.h needs these standard headers first. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
/* clang-format on */

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "observe/buf.h"
#include "observe/hist.h"
#include "daemon/observe.h"
#include "observe/prom.h"
#include "observe/streams.h"

static void test_valid_names(void **state) {
  assert_true(prom_valid_name("awgproxy_up", false));
  assert_true(prom_valid_name("a:b_c9", false));
  assert_true(prom_valid_name("_x", false));
  assert_false(prom_valid_name("", false));
  assert_false(prom_valid_name("9a", false));
  assert_false(prom_valid_name("a-b", false));
  assert_false(prom_valid_name("a b", false));
  assert_false(prom_valid_name(NULL, false));
  assert_true(prom_valid_name("peer", true));
  assert_false(prom_valid_name("a:b", true)); /* colons are for metric names only */
  assert_false(prom_valid_name("__name__", true));
}

static void test_label_escaping(void **state) {
  obs_buf b;
  obs_buf_init(&b);
  prom_label l[2] = {{"peer", "a\\b\"c\nd"}, {"reason", "plain+/="}};
  prom_sample_u64(&b, "m_total", l, 2, 7);
  assert_string_equal(b.data, "m_total{peer=\"a\\\\b\\\"c\\nd\",reason=\"plain+/=\"} 7\n");
  obs_buf_reset(&b);
  prom_sample_u64(&b, "m", NULL, 0, 18446744073709551615ull);
  assert_string_equal(b.data, "m 18446744073709551615\n");
  obs_buf_reset(&b);
  prom_label empty = {"k", NULL};
  prom_sample_u64(&b, "m", &empty, 1, 0);
  assert_string_equal(b.data, "m{k=\"\"} 0\n");
  obs_buf_free(&b);
}

static void test_help_escaping(void **state) {
  obs_buf b;
  obs_buf_init(&b);
  /* HELP escapes backslash and newline only; quotes stay. */
  prom_header(&b, "m_total", "counter", "line \"one\"\\two\nthree");
  assert_string_equal(b.data,
                      "# HELP m_total line \"one\"\\\\two\\nthree\n# TYPE m_total counter\n");
  obs_buf_free(&b);
}

static void test_numbers(void **state) {
  obs_buf b;
  obs_buf_init(&b);
  prom_sample(&b, "a", NULL, 0, 0.25);
  prom_sample(&b, "b", NULL, 0, 1700000000.123);
  prom_sample(&b, "c", NULL, 0, 0.1);
  prom_sample(&b, "d", NULL, 0, INFINITY);
  prom_sample(&b, "e", NULL, 0, -INFINITY);
  prom_sample(&b, "f", NULL, 0, NAN);
  prom_sample(&b, "g", NULL, 0, 3);
  assert_string_equal(b.data, "a 0.25\nb 1700000000.123\nc 0.1\nd +Inf\ne -Inf\nf NaN\ng 3\n");
  /* Every finite value reads back exactly. */
  double samples[] = {1.0 / 3, 1e-300, 123456789.987654321, 5e-324, 1.7976931348623157e308};
  for (size_t i = 0; i < sizeof samples / sizeof samples[0]; i++) {
    char s[40];
    obs_format_double(samples[i], s);
    assert_true(strtod(s, NULL) == samples[i]);
  }
  obs_buf_free(&b);
}

static void test_histogram(void **state) {
  static const double bounds[] = {0.01, 0.1, 1};
  obs_hist h;
  obs_hist_init(&h, bounds, 3);
  double vals[] = {0.005, 0.01, 0.05, 0.5, 0.5, 2, 100};
  for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) obs_hist_observe(&h, vals[i]);
  assert_int_equal(h.count, 7);
  assert_int_equal(obs_hist_cumulative(&h, 0), 2); /* le is inclusive: 0.01 counts */
  assert_int_equal(obs_hist_cumulative(&h, 1), 3);
  assert_int_equal(obs_hist_cumulative(&h, 2), 5);
  assert_int_equal(obs_hist_cumulative(&h, 3), 7);
  obs_buf b;
  obs_buf_init(&b);
  prom_label l = {"peer", "x\"y"};
  prom_histogram(&b, "hs_seconds", &l, 1, &h);
  assert_string_equal(b.data,
                      "hs_seconds_bucket{peer=\"x\\\"y\",le=\"0.01\"} 2\n"
                      "hs_seconds_bucket{peer=\"x\\\"y\",le=\"0.1\"} 3\n"
                      "hs_seconds_bucket{peer=\"x\\\"y\",le=\"1\"} 5\n"
                      "hs_seconds_bucket{peer=\"x\\\"y\",le=\"+Inf\"} 7\n"
                      "hs_seconds_sum{peer=\"x\\\"y\"} 103.065\n"
                      "hs_seconds_count{peer=\"x\\\"y\"} 7\n");
  obs_buf_reset(&b);
  obs_hist empty;
  obs_hist_init(&empty, bounds, 0);
  prom_histogram(&b, "e", NULL, 0, &empty);
  assert_string_equal(b.data, "e_bucket{le=\"+Inf\"} 0\ne_sum 0\ne_count 0\n");
  obs_buf_free(&b);
}

static void test_hist_bounds_capped(void **state) {
  double many[OBS_HIST_MAX_BOUNDS + 4];
  for (size_t i = 0; i < sizeof many / sizeof many[0]; i++) many[i] = (double)i;
  obs_hist h;
  obs_hist_init(&h, many, sizeof many / sizeof many[0]);
  assert_int_equal(h.n, OBS_HIST_MAX_BOUNDS);
  obs_hist_observe(&h, 1e9);
  assert_int_equal(obs_hist_cumulative(&h, OBS_HIST_MAX_BOUNDS - 1), 0);
  assert_int_equal(obs_hist_cumulative(&h, OBS_HIST_MAX_BOUNDS), 1);
}

/* A sample line: name{labels} value, with the label syntax checked by a small scanner. */
static void check_sample_line(const char *line) {
  const char *p = line;
  char name[128];
  size_t n = 0;
  while (*p && *p != '{' && *p != ' ' && n + 1 < sizeof name) name[n++] = *p++;
  name[n] = '\0';
  assert_true(prom_valid_name(name, false));
  if (*p == '{') {
    p++;
    while (*p != '}') {
      char lname[64];
      size_t k = 0;
      while (*p && *p != '=' && k + 1 < sizeof lname) lname[k++] = *p++;
      lname[k] = '\0';
      assert_true(prom_valid_name(lname, true));
      assert_true(p[0] == '=' && p[1] == '"');
      p += 2;
      while (*p != '"') {
        assert_true(*p != '\0' && *p != '\n');
        if (*p == '\\') {
          p++;
          assert_true(*p == '\\' || *p == '"' || *p == 'n');
        }
        p++;
      }
      p++;
      if (*p == ',')
        p++;
      else
        assert_true(*p == '}');
    }
    p++;
  }
  assert_true(*p == ' ');
  char *end;
  strtod(p + 1, &end);
  assert_true(end != p + 1 && *end == '\0');
}

static void test_metrics_page_without_tunnel(void **state) {
  app_config cfg;
  config_init(&cfg);
  obs_sources src = {.role = "client", .cfg = &cfg, .started_ns = 0};
  obs_stream_opened(OBS_STREAM_SOCKS_TCP);
  obs_buf b;
  obs_buf_init(&b);
  observe_render_metrics(&src, &b);
  assert_false(b.failed);
  assert_non_null(
      strstr(b.data, "awgproxy_build_info{version=\"" AWGPROXY_VERSION "\",role=\"client\"} 1\n"));
  assert_non_null(strstr(b.data, "awgproxy_streams_active{kind=\"socks_tcp\"} 1\n"));
  assert_non_null(strstr(b.data, "# TYPE awgproxy_sessions_active gauge\n"));
  /* Every line is a HELP, a TYPE (once per family, before its samples) or a sample. */
  char *copy = strdup(b.data);
  char *save = NULL, typed[64][96];
  size_t n_typed = 0;
  for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
    if (!strncmp(line, "# HELP ", 7)) continue;
    if (!strncmp(line, "# TYPE ", 7)) {
      assert_true(n_typed < 64);
      sscanf(line + 7, "%95s", typed[n_typed]);
      for (size_t i = 0; i < n_typed; i++) assert_string_not_equal(typed[i], typed[n_typed]);
      n_typed++;
      continue;
    }
    check_sample_line(line);
    assert_true(n_typed > 0);
    assert_int_equal(strncmp(line, typed[n_typed - 1], strlen(typed[n_typed - 1])), 0);
  }
  free(copy);
  obs_stream_closed(OBS_STREAM_SOCKS_TCP);
  obs_buf_free(&b);
  config_free(&cfg);
}

static void test_session_ids(void **state) {
  char a[OBS_SID_LEN + 1], b[OBS_SID_LEN + 1];
  obs_session_id(a);
  obs_session_id(b);
  assert_int_equal(strlen(a), OBS_SID_LEN);
  assert_int_equal(strspn(a, "0123456789abcdef"), OBS_SID_LEN);
  assert_string_not_equal(a, b);
}

static void test_stream_counters(void **state) {
  uint64_t before = obs_streams_total(OBS_STREAM_FORWARD_TCP);
  obs_stream_opened(OBS_STREAM_FORWARD_TCP);
  obs_stream_opened(OBS_STREAM_FORWARD_TCP);
  obs_stream_closed(OBS_STREAM_FORWARD_TCP);
  assert_int_equal(obs_streams_active(OBS_STREAM_FORWARD_TCP), 1);
  obs_stream_closed(OBS_STREAM_FORWARD_TCP);
  obs_stream_closed(OBS_STREAM_FORWARD_TCP); /* never below zero */
  assert_int_equal(obs_streams_active(OBS_STREAM_FORWARD_TCP), 0);
  assert_int_equal(obs_streams_total(OBS_STREAM_FORWARD_TCP), before + 2);
  assert_string_equal(obs_stream_kind_name(OBS_STREAM_SOCKS_UDP), "socks_udp");
}

static void test_json_strings(void **state) {
  obs_buf b;
  obs_buf_init(&b);
  obs_buf_json_string(&b, "a\"b\\c\nd\x01\x7f");
  assert_string_equal(b.data, "\"a\\\"b\\\\c\\nd\\u0001\\u007f\"");
  obs_buf_free(&b);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_valid_names),
      cmocka_unit_test(test_label_escaping),
      cmocka_unit_test(test_help_escaping),
      cmocka_unit_test(test_numbers),
      cmocka_unit_test(test_histogram),
      cmocka_unit_test(test_hist_bounds_capped),
      cmocka_unit_test(test_metrics_page_without_tunnel),
      cmocka_unit_test(test_session_ids),
      cmocka_unit_test(test_stream_counters),
      cmocka_unit_test(test_json_strings),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
