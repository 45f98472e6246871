/* The tunnel's batched UDP I/O (device/udp_batch.c, udp_recv.c) on real loopback sockets: a
 * batch mixing destinations and sizes (GSO runs cut by a shorter last segment, by another
 * destination, by the segment limit) arrives with every datagram's exact bytes and in order per
 * destination; the kernel's GSO and GRO really carry it where Linux has them; a refused GSO send
 * (forced EIO) falls back to plain datagrams without losing any; AWG_UDP_NO_GSO / AWG_UDP_NO_GRO
 * force the portable paths; a udp_io on several ports (port hopping) answers from the port a
 * datagram came in on. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "device/udp_io_internal.h"

#define MAX_RECORDS 1024
#define MAX_LEN 2000

typedef struct {
  size_t n;
  uint16_t len[MAX_RECORDS];
  uint8_t data[MAX_RECORDS][MAX_LEN];
} sink;

typedef struct {
  uint8_t dest; /* index of the receiver */
  uint16_t len;
} plan_entry;

static void on_datagram(void *ctx, uint8_t *data, size_t len, const dgram_endpoint *from) {
  sink *s = ctx;
  if (s->n >= MAX_RECORDS || len > MAX_LEN) {
    s->n = MAX_RECORDS + 1; /* overflow: fails the comparison */
    return;
  }
  s->len[s->n] = (uint16_t)len;
  memcpy(s->data[s->n], data, len);
  s->n++;
}

/* Datagram `seq` for a destination: its number, then a pattern that depends on it. */
static void fill(uint8_t *d, size_t len, uint8_t dest, uint32_t seq) {
  for (size_t i = 0; i < len; i++) d[i] = (uint8_t)(seq * 131u + dest * 17u + i * 7u);
  if (len >= 5) d[0] = dest, memcpy(d + 1, &seq, 4);
}

static dgram_endpoint loopback(uint16_t port) {
  dgram_endpoint a;
  memset(&a, 0, sizeof a);
  struct sockaddr_in *in = (struct sockaddr_in *)&a.ss;
  in->sin_family = AF_INET;
  in->sin_port = htons(port);
  in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.len = sizeof *in;
  return a;
}

typedef struct {
  uv_loop_t loop;
  udp_io *tx, *rx[2];
  sink *got[2];
  dgram_endpoint to[2];
  uint64_t bytes[2], packets[2];
} rig;

static void rig_open(rig *r) {
  char err[128];
  memset(r, 0, sizeof *r);
  assert_int_equal(uv_loop_init(&r->loop), 0);
  assert_int_equal(loop_turn_start(&r->loop), 0);
  for (int i = 0; i < 2; i++) {
    r->got[i] = calloc(1, sizeof *r->got[i]);
    r->rx[i] = udp_io_open(&r->loop, 0, on_datagram, r->got[i], err, sizeof err);
    assert_non_null(r->rx[i]);
    r->to[i] = loopback(udp_io_port(r->rx[i]));
  }
  r->tx = udp_io_open(&r->loop, 0, on_datagram, r->got[0], err, sizeof err);
  assert_non_null(r->tx);
}

static void rig_close(rig *r) {
  udp_io_close(r->tx);
  udp_io_close(r->rx[0]);
  udp_io_close(r->rx[1]);
  loop_turn_stop();
  uv_run(&r->loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&r->loop), 0);
  free(r->got[0]);
  free(r->got[1]);
}

/* Queues the plan through reserve/commit in one loop turn (a timer callback, so the batch leaves
 * in the end-of-turn flush), then runs the loop until everything arrived or 5 s passed. */
typedef struct {
  rig *r;
  const plan_entry *plan;
  size_t n;
} queue_job;

static void on_queue_timer(uv_timer_t *t) {
  queue_job *j = t->data;
  rig *r = j->r;
  uint32_t seq[2] = {0, 0};
  for (size_t i = 0; i < j->n; i++) {
    uint8_t d = j->plan[i].dest;
    /* Through the carrier interface, as the tunnel sends. */
    dgram_carrier *c = udp_io_carrier(r->tx);
    uint8_t *room = carrier_reserve(c, &r->to[d], j->plan[i].len);
    assert_non_null(room);
    fill(room, j->plan[i].len, d, seq[d]++);
    carrier_commit(c, &r->to[d], j->plan[i].len, &r->bytes[d], &r->packets[d]);
  }
  uv_close((uv_handle_t *)t, NULL);
}

static void run_plan(rig *r, const plan_entry *plan, size_t n) {
  uv_timer_t t;
  queue_job j = {r, plan, n};
  uv_timer_init(&r->loop, &t);
  t.data = &j;
  uv_timer_start(&t, on_queue_timer, 0, 0);
  size_t want[2] = {0, 0};
  for (size_t i = 0; i < n; i++) want[plan[i].dest]++;
  uint64_t deadline = uv_hrtime() + 5000000000ull;
  while ((r->got[0]->n < want[0] || r->got[1]->n < want[1]) && uv_hrtime() < deadline)
    uv_run(&r->loop, UV_RUN_NOWAIT);
  uv_run(&r->loop, UV_RUN_NOWAIT);
}

/* Every datagram arrived once, byte-exact, in the order queued for its destination. */
static void check_arrivals(rig *r, const plan_entry *plan, size_t n) {
  uint8_t want[MAX_LEN];
  size_t idx[2] = {0, 0};
  uint64_t bytes[2] = {0, 0};
  for (size_t i = 0; i < n; i++) {
    uint8_t d = plan[i].dest;
    sink *s = r->got[d];
    size_t k = idx[d]++;
    assert_true(k < s->n);
    fill(want, plan[i].len, d, (uint32_t)k);
    assert_int_equal(s->len[k], plan[i].len);
    assert_memory_equal(s->data[k], want, plan[i].len);
    bytes[d] += plan[i].len;
  }
  for (int d = 0; d < 2; d++) {
    assert_int_equal(r->got[d]->n, idx[d]); /* nothing extra */
    assert_int_equal(r->packets[d], idx[d]);
    assert_int_equal(r->bytes[d], bytes[d]);
  }
}

/* Destinations and sizes mixed the way a busy server's turn mixes them: full-size runs with a
 * short tail, runs cut by the other destination, a size that grows (a new run), a run longer
 * than a GSO send may be, tiny keepalive-sized datagrams. */
static size_t build_plan(plan_entry *p) {
  size_t n = 0;
#define ADD(dest, count, len) \
  for (int _i = 0; _i < (count); _i++) p[n++] = (plan_entry){dest, len};
  ADD(0, 10, 1200) ADD(0, 1, 700) ADD(0, 4, 1200);
  ADD(1, 3, 500) ADD(1, 1, 1500) ADD(1, 2, 64);
  ADD(0, 2, 1200) ADD(1, 2, 1200) ADD(0, 2, 1200);
  ADD(0, 80, 1000) ADD(0, 1, 999);
  ADD(1, 70, 1452) ADD(1, 1, 32) ADD(0, 1, 32);
  for (int i = 0; i < 40; i++) ADD((uint8_t)(i & 1), 1, (uint16_t)(100 + (i % 3) * 400));
#undef ADD
  return n;
}

/* Fixtures (teardown runs even when a test fails, so one failure does not leak into the next). */
static int setup_offload(void **state) {
  unsetenv("AWG_UDP_NO_GSO");
  unsetenv("AWG_UDP_NO_GRO");
  rig *r = malloc(sizeof *r);
  rig_open(r);
  *state = r;
  return 0;
}

static int setup_portable(void **state) {
  setenv("AWG_UDP_NO_GSO", "1", 1);
  setenv("AWG_UDP_NO_GRO", "1", 1);
  rig *r = malloc(sizeof *r);
  rig_open(r);
  unsetenv("AWG_UDP_NO_GSO");
  unsetenv("AWG_UDP_NO_GRO");
  *state = r;
  return 0;
}

static int teardown(void **state) {
  rig_close(*state);
  free(*state);
  return 0;
}

static void test_mixed_batch_arrives_in_order(void **state) {
  rig *rp = *state;
  plan_entry plan[512];
  size_t n = build_plan(plan);
  run_plan(rp, plan, n);
  check_arrivals(rp, plan, n);
#ifdef UDP_IO_HAVE_GSO
  /* The kernel's GSO took runs, and the receivers got some of them as GRO aggregates. */
  assert_true(rp->tx->ports[0].s4.gso);
  assert_true(rp->tx->gso_sends > 0);
#ifdef UDP_IO_HAVE_GRO
  assert_true(rp->rx[0]->ports[0].s4.gro);
  assert_true(rp->rx[0]->gro_aggregates + rp->rx[1]->gro_aggregates > 0);
#endif
#endif
}

static void test_refused_gso_falls_back(void **state) {
  rig *rp = *state;
  rp->tx->test_gso_fail = EIO; /* as from a device without checksum offload */
  plan_entry plan[512];
  size_t n = build_plan(plan);
  run_plan(rp, plan, n);
  check_arrivals(rp, plan, n);
  assert_false(rp->tx->ports[0].s4.gso); /* off for this socket from now on */
  assert_int_equal(rp->tx->gso_sends, 0);
}

static void test_portable_paths_forced(void **state) {
  rig *rp = *state;
  plan_entry plan[512];
  size_t n = build_plan(plan);
  run_plan(rp, plan, n);
  check_arrivals(rp, plan, n);
  assert_false(rp->tx->ports[0].s4.gso);
  assert_false(rp->rx[0]->ports[0].s4.gro);
  assert_int_equal(rp->tx->gso_sends, 0);
  assert_int_equal(rp->rx[0]->gro_aggregates + rp->rx[1]->gro_aggregates, 0);
}

/* A handshake burst goes out after the datagrams sealed before it (per-peer order). */
static void test_burst_after_batch(void **state) {
  rig *rp = *state;
  uint8_t a[300], b[40];
  fill(a, sizeof a, 0, 0);
  fill(b, sizeof b, 0, 1);
  uint8_t *room = udp_io_reserve(rp->tx, sizeof a);
  memcpy(room, a, sizeof a);
  udp_io_commit(rp->tx, &rp->to[0], sizeof a, NULL, NULL);
  const uint8_t *data[1] = {b};
  size_t len[1] = {sizeof b};
  assert_int_equal(carrier_send_batch(udp_io_carrier(rp->tx), &rp->to[0], data, len, 1), 1);
  uint64_t deadline = uv_hrtime() + 5000000000ull;
  while (rp->got[0]->n < 2 && uv_hrtime() < deadline) uv_run(&rp->loop, UV_RUN_NOWAIT);
  assert_int_equal(rp->got[0]->n, 2);
  assert_int_equal(rp->got[0]->len[0], sizeof a);
  assert_memory_equal(rp->got[0]->data[0], a, sizeof a);
  assert_memory_equal(rp->got[0]->data[1], b, sizeof b);
}

/* Endpoints: the carrier and the local port are part of who a peer is (roaming compares them);
 * a UDP endpoint prints as plain ip:port, as logs always showed it. */
static void test_endpoint_identity(void **state) {
  (void)state;
  dgram_endpoint a = loopback(4000), b = loopback(4000);
  assert_true(dgram_endpoint_equal(&a, &b));
  b.sock = 1;
  assert_false(dgram_endpoint_equal(&a, &b));
  b = a;
  b.carrier = DGRAM_CARRIER_UDP + 1;
  assert_false(dgram_endpoint_equal(&a, &b));
  char buf[64];
  dgram_endpoint_format(&a, buf, sizeof buf);
  assert_string_equal(buf, "127.0.0.1:4000");
  char tiny[4];
  dgram_endpoint_format(&b, tiny, sizeof tiny); /* bounded, whatever the carrier */
  assert_true(strlen(tiny) < sizeof tiny);
  /* dgram_send copies; one larger than any datagram is refused, not truncated. */
  uv_loop_t loop;
  char err[128];
  assert_int_equal(uv_loop_init(&loop), 0);
  assert_int_equal(loop_turn_start(&loop), 0);
  udp_io *u = udp_io_open(&loop, 0, on_datagram, NULL, err, sizeof err);
  assert_non_null(u);
  static uint8_t big[UDP_IO_MAX_DATAGRAM + 1];
  assert_int_equal(carrier_send(udp_io_carrier(u), &a, big, sizeof big, NULL, NULL), UV_EMSGSIZE);
  assert_string_equal(udp_io_carrier(u)->name, "udp");
  udp_io_close(u);
  loop_turn_stop();
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&loop), 0);
}

/* Port hopping's server side: one udp_io on three local ports. Each datagram says which port it
 * came in on (dgram_endpoint.sock), and an answer to that address leaves from that same port, as
 * the sender's NAT expects; one batch mixing the ports sends each share from its own socket. */
typedef struct {
  udp_io *io;
  size_t n;
  uint16_t sock[16];
} port_echo;

static void on_port_datagram(void *ctx, uint8_t *data, size_t len, const dgram_endpoint *from) {
  port_echo *e = ctx;
  if (e->n < 16) e->sock[e->n++] = from->sock;
  if (e->io) carrier_send(udp_io_carrier(e->io), from, data, len, NULL, NULL); /* batched */
}

typedef struct {
  size_t n;
  uint16_t from_port[16];
  uint8_t first[16];
} reply_log;

static void on_reply(void *ctx, uint8_t *data, size_t len, const dgram_endpoint *from) {
  reply_log *l = ctx;
  if (l->n < 16 && len > 0) {
    l->from_port[l->n] = ntohs(((const struct sockaddr_in *)&from->ss)->sin_port);
    l->first[l->n++] = data[0];
  }
}

static void test_extra_ports(void **state) {
  rig *rp = *state;
  char err[128];
  port_echo echo = {0};
  uint16_t want[3] = {0, 0, 0};
  udp_io *srv =
      udp_io_open_ports(&rp->loop, want, 3, false, on_port_datagram, &echo, err, sizeof err);
  assert_non_null(srv);
  echo.io = srv;
  assert_int_equal(srv->n_ports, 3);
  reply_log replies = {0};
  udp_io *cli = udp_io_open(&rp->loop, 0, on_reply, &replies, err, sizeof err);
  assert_non_null(cli);
  /* two datagrams per port, ports interleaved, all in one turn */
  for (uint8_t i = 0; i < 6; i++) {
    dgram_endpoint to = loopback(srv->ports[i % 3].port);
    uint8_t d[2] = {i, (uint8_t)(i % 3)};
    assert_int_equal(carrier_send(udp_io_carrier(cli), &to, d, sizeof d, NULL, NULL), 0);
  }
  uint64_t deadline = uv_hrtime() + 5000000000ull;
  while (replies.n < 6 && uv_hrtime() < deadline) uv_run(&rp->loop, UV_RUN_NOWAIT);
  assert_int_equal(echo.n, 6);
  assert_int_equal(replies.n, 6);
  for (size_t k = 0; k < 6; k++) {
    uint8_t i = replies.first[k];
    assert_true(i < 6);
    assert_int_equal(replies.from_port[k], srv->ports[i % 3].port); /* answered from its port */
  }
  size_t per_sock[3] = {0, 0, 0};
  for (size_t k = 0; k < 6; k++) per_sock[echo.sock[k]]++;
  assert_int_equal(per_sock[0], 2);
  assert_int_equal(per_sock[1], 2);
  assert_int_equal(per_sock[2], 2);
  /* A port that cannot be bound fails the whole call and names the port. */
  uint16_t taken[2] = {0, srv->ports[1].port};
  assert_null(udp_io_open_ports(&rp->loop, taken, 2, false, on_reply, &replies, err, sizeof err));
  assert_non_null(strstr(err, "cannot bind UDP port"));
  udp_io_close(cli);
  udp_io_close(srv);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_endpoint_identity),
      cmocka_unit_test_setup_teardown(test_extra_ports, setup_offload, teardown),
      cmocka_unit_test_setup_teardown(test_mixed_batch_arrives_in_order, setup_offload, teardown),
      cmocka_unit_test_setup_teardown(test_refused_gso_falls_back, setup_offload, teardown),
      cmocka_unit_test_setup_teardown(test_portable_paths_forced, setup_portable, teardown),
      cmocka_unit_test_setup_teardown(test_burst_after_batch, setup_offload, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
