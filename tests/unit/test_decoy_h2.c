/* The TLS decoy over HTTP/2 (src/carrier/decoy_h2.c) against nghttp2's own client session, in
 * memory: the site's pages with nginx's answers, HEAD, several requests on one connection, a
 * client that reads slowly, and garbage ending the session. */
#include <nghttp2/nghttp2.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
// clang-format off
#include <cmocka.h>
// clang-format on

#include "carrier/decoy_h2.h"

typedef struct {
  uint8_t *out; /* what the decoy wrote, not yet given to the client */
  size_t n_out;
  size_t queued; /* what the decoy's io.queued answers */
  int closes;
} server_side;

typedef struct {
  int status[8];
  char body[8][4096];
  size_t body_len[8];
  size_t content_length_seen[8];
  bool closed[8];
} client_side;

static void s_write(void *ctx, const uint8_t *data, size_t len) {
  server_side *s = ctx;
  s->out = realloc(s->out, s->n_out + len);
  memcpy(s->out + s->n_out, data, len);
  s->n_out += len;
}
static size_t s_queued(void *ctx) { return ((server_side *)ctx)->queued; }
static void s_close(void *ctx) { ((server_side *)ctx)->closes++; }
static const decoy_h2_io io = {s_write, s_queued, s_close};

/* Stream ids 1, 3, 5... map to slots 0, 1, 2... */
static int slot(int32_t id) { return (id - 1) / 2 % 8; }

static int c_header(nghttp2_session *ng, const nghttp2_frame *f, const uint8_t *name, size_t nl,
                    const uint8_t *value, size_t vl, uint8_t flags, void *user) {
  client_side *c = user;
  int k = slot(f->hd.stream_id);
  if (nl == 7 && !memcmp(name, ":status", 7)) c->status[k] = atoi((const char *)value);
  if (nl == 14 && !memcmp(name, "content-length", 14))
    c->content_length_seen[k] = (size_t)strtoul((const char *)value, NULL, 10);
  assert_false(nl == 10 && !memcmp(name, "connection", 10)); /* forbidden in HTTP/2 */
  (void)ng, (void)vl, (void)flags;
  return 0;
}

static int c_data(nghttp2_session *ng, uint8_t flags, int32_t id, const uint8_t *data, size_t len,
                  void *user) {
  client_side *c = user;
  int k = slot(id);
  size_t room = sizeof c->body[k] - c->body_len[k];
  size_t n = len < room ? len : room;
  memcpy(c->body[k] + c->body_len[k], data, n);
  c->body_len[k] += len;
  (void)ng, (void)flags;
  return 0;
}

static int c_close(nghttp2_session *ng, int32_t id, uint32_t code, void *user) {
  ((client_side *)user)->closed[slot(id)] = true;
  (void)ng, (void)code;
  return 0;
}

static nghttp2_session *client_new(client_side *c) {
  nghttp2_session_callbacks *cbs;
  nghttp2_session *ng;
  assert_int_equal(nghttp2_session_callbacks_new(&cbs), 0);
  nghttp2_session_callbacks_set_on_header_callback(cbs, c_header);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, c_data);
  nghttp2_session_callbacks_set_on_stream_close_callback(cbs, c_close);
  assert_int_equal(nghttp2_session_client_new(&ng, cbs, c), 0);
  nghttp2_session_callbacks_del(cbs);
  assert_int_equal(nghttp2_submit_settings(ng, NGHTTP2_FLAG_NONE, NULL, 0), 0);
  return ng;
}

static int32_t request(nghttp2_session *ng, const char *method, const char *path) {
  nghttp2_nv nv[] = {
      {(uint8_t *)":method", (uint8_t *)method, 7, strlen(method), 0},
      {(uint8_t *)":path", (uint8_t *)path, 5, strlen(path), 0},
      {(uint8_t *)":scheme", (uint8_t *)"https", 7, 5, 0},
      {(uint8_t *)":authority", (uint8_t *)"www.example.org", 10, 15, 0},
  };
  int32_t id = nghttp2_submit_request(ng, NULL, nv, 4, NULL, NULL);
  assert_true(id > 0);
  return id;
}

/* Client -> decoy -> client until neither has anything to say (at most `rounds`). */
static void exchange(nghttp2_session *ng, decoy_h2 *d, server_side *s, int rounds) {
  for (int i = 0; i < rounds; i++) {
    bool moved = false;
    const uint8_t *p;
    ssize_t n;
    while ((n = nghttp2_session_mem_send(ng, &p)) > 0) {
      decoy_h2_feed(d, p, (size_t)n);
      moved = true;
    }
    if (s->n_out) {
      assert_int_equal(nghttp2_session_mem_recv(ng, s->out, s->n_out), (ssize_t)s->n_out);
      s->n_out = 0;
      moved = true;
    }
    if (!moved) return;
  }
}

/* Frees the decoy and checks that its loop is left with nothing open. */
static void finish(uv_loop_t *loop, decoy_h2 *d, server_side *s) {
  decoy_h2_free(d);
  uv_run(loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(loop), 0);
  free(s->out);
}

static char site[64];

static int setup(void **state) {
  (void)state;
  snprintf(site, sizeof site, "/tmp/awg-decoy-h2-XXXXXX");
  assert_non_null(mkdtemp(site));
  char path[128];
  snprintf(path, sizeof path, "%s/index.html", site);
  FILE *f = fopen(path, "w");
  fputs("<h1>Welcome</h1>\n", f);
  fclose(f);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  char path[128];
  snprintf(path, sizeof path, "%s/index.html", site);
  unlink(path);
  rmdir(site);
  return 0;
}

static void test_pages_as_nginx_serves_them(void **state) {
  (void)state;
  uv_loop_t loop;
  uv_loop_init(&loop);
  server_side s = {0};
  client_side c = {0};
  decoy_h2 *d = decoy_h2_start(&loop, site, &io, &s);
  assert_non_null(d);
  nghttp2_session *ng = client_new(&c);
  int32_t a = request(ng, "GET", "/"), b = request(ng, "GET", "/wp-admin/"),
          h = request(ng, "HEAD", "/"), p = request(ng, "POST", "/");
  exchange(ng, d, &s, 50);
  assert_true(c.closed[slot(a)] && c.closed[slot(b)] && c.closed[slot(h)] && c.closed[slot(p)]);
  assert_int_equal(c.status[slot(a)], 200);
  assert_int_equal(c.body_len[slot(a)], 17);
  assert_memory_equal(c.body[slot(a)], "<h1>Welcome</h1>\n", 17);
  assert_int_equal(c.status[slot(b)], 404);
  assert_non_null(strstr(c.body[slot(b)], "<center>nginx</center>"));
  assert_int_equal(c.status[slot(h)], 200);
  assert_int_equal(c.body_len[slot(h)], 0);
  assert_int_equal(c.content_length_seen[slot(h)], 17);
  assert_int_equal(c.status[slot(p)], 405);
  assert_int_equal(s.closes, 0); /* the connection stays open, as nginx keeps it */
  nghttp2_session_del(ng);
  finish(&loop, d, &s);
}

/* While the client has not taken what was sent, nothing more is framed; once it has, the rest
 * follows on the decoy's timer. */
static void test_answers_wait_for_a_slow_client(void **state) {
  (void)state;
  uv_loop_t loop;
  uv_loop_init(&loop);
  server_side s = {0};
  client_side c = {0};
  decoy_h2 *d = decoy_h2_start(&loop, site, &io, &s);
  nghttp2_session *ng = client_new(&c);
  s.queued = DECOY_H2_PAUSE + 1; /* the client reads nothing */
  int32_t a = request(ng, "GET", "/");
  exchange(ng, d, &s, 50);
  assert_false(c.closed[slot(a)]);
  s.queued = 0; /* it has read everything: the timer lets the answer out */
  uv_run(&loop, UV_RUN_ONCE);
  exchange(ng, d, &s, 50);
  assert_true(c.closed[slot(a)]);
  assert_int_equal(c.status[slot(a)], 200);
  nghttp2_session_del(ng);
  finish(&loop, d, &s);
}

static void test_garbage_ends_the_session(void **state) {
  (void)state;
  uv_loop_t loop;
  uv_loop_init(&loop);
  server_side s = {0};
  decoy_h2 *d = decoy_h2_start(&loop, "", &io, &s);
  static const char junk[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n"; /* no HTTP/2 preface */
  decoy_h2_feed(d, (const uint8_t *)junk, sizeof junk - 1);
  assert_int_equal(s.closes, 1);
  assert_true(s.n_out > 0);                                 /* SETTINGS and a GOAWAY went first */
  decoy_h2_feed(d, (const uint8_t *)junk, sizeof junk - 1); /* after the end: ignored */
  assert_int_equal(s.closes, 1);
  finish(&loop, d, &s);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_pages_as_nginx_serves_them),
      cmocka_unit_test(test_answers_wait_for_a_slow_client),
      cmocka_unit_test(test_garbage_ends_the_session),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
