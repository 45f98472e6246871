/* The QUIC flow table (src/quic/dgram_quic.c) with the connection replaced by a capture of the
 * frames it would send and a fake clock: flow id allocation (unique, never reused while a late
 * answer could still come), the frame format, dispatch of frames from the server by flow id,
 * close, the limit (a slot waits out the server's idle timeout before it is used again), and
 * hostile input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "quic/dgram_quic.h"
#include "quic/quic_proto.h"

typedef struct {
  uint8_t frame[2048];
  size_t len;
  int sends;
  int verdict; /* what the "connection" answers */
  uint64_t now;
} fake_conn;

static uint64_t fake_clock(void *ctx) { return ((fake_conn *)ctx)->now; }

static int fake_send(void *ctx, const uint8_t *hdr, size_t hlen, const uint8_t *data, size_t len) {
  fake_conn *c = ctx;
  c->sends++;
  memcpy(c->frame, hdr, hlen);
  memcpy(c->frame + hlen, data, len);
  c->len = hlen + len;
  return c->verdict;
}

typedef struct {
  int calls;
  dial_dest from;
  uint8_t data[2048];
  size_t len;
} sink;

static void on_recv(void *ctx, const dial_dest *from, const uint8_t *data, size_t len) {
  sink *s = ctx;
  s->calls++;
  s->from = *from;
  memcpy(s->data, data, len);
  s->len = len;
}

static dial_dest v4(uint8_t a, uint8_t b, uint8_t c, uint8_t d, uint16_t port) {
  dial_dest x;
  memset(&x, 0, sizeof x);
  x.type = DIAL_DEST_IPV4;
  x.ip[0] = a, x.ip[1] = b, x.ip[2] = c, x.ip[3] = d;
  x.port = port;
  return x;
}

/* The flow id a flow put in its last frame. */
static uint64_t sent_id(fake_conn *c, dial_dest *to, size_t *hlen) {
  uint64_t id;
  assert_int_equal(qp_parse_dgram(c->frame, c->len, &id, to, hlen), QP_DONE);
  return id;
}

/* A frame from the server for flow id, from src. */
static size_t server_frame(uint64_t id, const dial_dest *src, const char *payload, uint8_t *out) {
  size_t h = qp_build_dgram_header(id, src, out, QP_DGRAM_HDR_MAX);
  assert_true(h > 0);
  memcpy(out + h, payload, strlen(payload));
  return h + strlen(payload);
}

static void test_send_builds_the_frame(void **st) {
  fake_conn c = {0};
  dgram_opener *o = dgram_quic_new(fake_send, fake_clock, &c);
  sink s = {0};
  dgram_flow *f = dgram_open(o, on_recv, &s);
  assert_non_null(f);
  assert_string_equal(dgram_flow_name(f), "quic");
  dial_dest to = v4(198, 51, 100, 53, 53), got;
  assert_int_equal(dgram_send(f, &to, (const uint8_t *)"hello", 5), 0);
  assert_int_equal(c.sends, 1);
  size_t hlen;
  sent_id(&c, &got, &hlen);
  assert_int_equal(got.type, DIAL_DEST_IPV4);
  assert_memory_equal(got.ip, to.ip, 4);
  assert_int_equal(got.port, 53);
  assert_int_equal(c.len - hlen, 5);
  assert_memory_equal(c.frame + hlen, "hello", 5);
  /* a dropped frame is reported as such */
  c.verdict = -1;
  assert_int_equal(dgram_send(f, &to, (const uint8_t *)"x", 1), -1);
  /* names never go to the server (it drops them): the caller resolves first */
  dial_dest name = {.type = DIAL_DEST_NAME, .name = "target.test", .port = 53};
  int before = c.sends;
  assert_int_equal(dgram_send(f, &name, (const uint8_t *)"x", 1), -1);
  assert_int_equal(c.sends, before);
  assert_int_equal(s.calls, 0); /* nothing comes back from inside send */
  dgram_close(f);
  dgram_opener_destroy(o);
}

static void test_ids_unique_and_dispatch_by_id(void **st) {
  fake_conn c = {0};
  dgram_opener *o = dgram_quic_new(fake_send, fake_clock, &c);
  sink s1 = {0}, s2 = {0};
  dgram_flow *f1 = dgram_open(o, on_recv, &s1), *f2 = dgram_open(o, on_recv, &s2);
  dial_dest to = v4(198, 51, 100, 80, 7), d;
  size_t h;
  dgram_send(f1, &to, (const uint8_t *)"a", 1);
  uint64_t id1 = sent_id(&c, &d, &h);
  dgram_send(f2, &to, (const uint8_t *)"b", 1);
  uint64_t id2 = sent_id(&c, &d, &h);
  assert_true(id1 != id2);
  assert_int_equal(dgram_quic_open_flows(o), 2);

  uint8_t fr[512];
  dial_dest src = v4(198, 51, 100, 80, 7);
  dgram_quic_input(o, fr, server_frame(id2, &src, "to-two", fr));
  assert_int_equal(s1.calls, 0);
  assert_int_equal(s2.calls, 1);
  assert_int_equal(s2.len, 6);
  assert_memory_equal(s2.data, "to-two", 6);
  assert_int_equal(s2.from.port, 7);
  assert_memory_equal(s2.from.ip, src.ip, 4);
  dgram_quic_input(o, fr, server_frame(id1, &src, "to-one", fr));
  assert_int_equal(s1.calls, 1);
  assert_memory_equal(s1.data, "to-one", 6);

  /* closed: its answers find no one, and a new flow in the same slot gets another id */
  dgram_close(f1);
  assert_int_equal(dgram_quic_open_flows(o), 1);
  dgram_quic_input(o, fr, server_frame(id1, &src, "late", fr));
  assert_int_equal(s1.calls, 1);
  uint64_t seen[3 * DGRAM_QUIC_FLOWS_MAX];
  size_t n_seen = 0;
  for (int round = 0; round < 3 * DGRAM_QUIC_FLOWS_MAX; round++) {
    sink s = {0};
    dgram_flow *f = dgram_open(o, on_recv, &s);
    assert_non_null(f);
    dgram_send(f, &to, (const uint8_t *)"c", 1);
    uint64_t id = sent_id(&c, &d, &h);
    assert_true(id != id1 && id != id2);
    for (size_t i = 0; i < n_seen; i++) assert_true(seen[i] != id);
    seen[n_seen++] = id;
    /* a stale id for the slot this flow took is not delivered to it */
    dgram_quic_input(o, fr, server_frame(id1, &src, "late", fr));
    assert_int_equal(s.calls, 0);
    dgram_close(f);
    c.now += DGRAM_QUIC_QUIET_MS;
  }
  dgram_close(f2);
  assert_int_equal(dgram_quic_open_flows(o), 0);
  dgram_opener_destroy(o);
}

static void test_flow_limit_and_quiet_time(void **st) {
  fake_conn c = {.now = 1000};
  dgram_opener *o = dgram_quic_new(fake_send, fake_clock, &c);
  sink s = {0};
  dgram_flow *flows[DGRAM_QUIC_FLOWS_MAX];
  for (int i = 0; i < DGRAM_QUIC_FLOWS_MAX; i++)
    assert_non_null(flows[i] = dgram_open(o, on_recv, &s));
  assert_null(dgram_open(o, on_recv, &s));
  /* a closed flow's slot waits until the server has surely forgotten the flow */
  dgram_close(flows[17]);
  flows[17] = NULL;
  c.now += DGRAM_QUIC_QUIET_MS - 1;
  assert_null(dgram_open(o, on_recv, &s));
  c.now += 1;
  assert_non_null(flows[17] = dgram_open(o, on_recv, &s));
  assert_null(dgram_open(o, on_recv, &s));
  /* the quiet time counts from the flow's last datagram, either way */
  dial_dest to = v4(10, 0, 0, 1, 9), d;
  size_t h;
  dgram_send(flows[3], &to, (const uint8_t *)"a", 1);
  uint64_t id3 = sent_id(&c, &d, &h);
  c.now += DGRAM_QUIC_QUIET_MS;
  uint8_t fr[512];
  dgram_quic_input(o, fr, server_frame(id3, &to, "late", fr));
  dgram_close(flows[3]);
  c.now += DGRAM_QUIC_QUIET_MS - 1;
  assert_null(dgram_open(o, on_recv, &s));
  c.now += 1;
  assert_non_null(flows[3] = dgram_open(o, on_recv, &s));
  for (int i = 0; i < DGRAM_QUIC_FLOWS_MAX; i++) dgram_close(flows[i]);
  assert_int_equal(dgram_quic_open_flows(o), 0);
  dgram_opener_destroy(o);
}

static void test_hostile_frames_dropped(void **st) {
  fake_conn c = {0};
  dgram_opener *o = dgram_quic_new(fake_send, fake_clock, &c);
  sink s = {0};
  dgram_flow *f = dgram_open(o, on_recv, &s);
  dial_dest to = v4(10, 0, 0, 1, 9), d;
  size_t h;
  dgram_send(f, &to, (const uint8_t *)"a", 1);
  uint64_t id = sent_id(&c, &d, &h);
  uint8_t fr[512];
  size_t n = server_frame(id, &to, "ok", fr);
  /* every truncation of a valid frame short of its header */
  for (size_t cut = 0; cut < n - 2; cut++) dgram_quic_input(o, fr, cut);
  assert_int_equal(s.calls, 0);
  /* a source given as a name */
  dial_dest name = {.type = DIAL_DEST_NAME, .name = "evil.test", .port = 9};
  dgram_quic_input(o, fr, server_frame(id, &name, "x", fr));
  /* unknown ids, the largest varint included */
  dgram_quic_input(o, fr, server_frame(id + 1, &to, "x", fr));
  dgram_quic_input(o, fr, server_frame((1ULL << 62) - 1, &to, "x", fr));
  assert_int_equal(s.calls, 0);
  /* an empty payload is a datagram */
  dgram_quic_input(o, fr, server_frame(id, &to, "", fr));
  assert_int_equal(s.calls, 1);
  assert_int_equal(s.len, 0);
  dgram_close(f);
  dgram_opener_destroy(o);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_send_builds_the_frame),
      cmocka_unit_test(test_ids_unique_and_dispatch_by_id),
      cmocka_unit_test(test_flow_limit_and_quiet_time),
      cmocka_unit_test(test_hostile_frames_dropped),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
