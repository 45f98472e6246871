/* The TLS session of the stream carrier (carrier/tls_session.c) on loopback, one uv loop per test:
 * a client and a server (self-signed for 127.0.0.1) agree on ALPN http/1.1 and carry 1 MiB each
 * way, in random-size writes (some before the handshake), intact and in order, then close with
 * exactly one on_closed each; garbage from a plain TCP client, and silence past the handshake
 * timeout, end the server session with a reason and no on_ready; garbage records inside an
 * established session end both sessions (the client hears the server's alert); writes beyond
 * TLS_SESSION_MAX_QUEUED to a peer that does not read are refused with UV_ENOBUFS (before and
 * after the handshake); certificate and key file errors name the file; a second session with
 * the same client config resumes; closing or aborting from inside on_ready / on_data is safe; a
 * verifying client refuses the self-signed certificate. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <signal.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "carrier/tls_session.h"

#define MIB (1024 * 1024)
#define BIG_CHUNK 70000

enum { ACT_NONE, ACT_CLOSE_ON_READY, ACT_ABORT_ON_READY, ACT_CLOSE_ON_DATA, ACT_ABORT_ON_DATA };

typedef struct rig rig;

/* A plain TCP client (no TLS): sends junk, or nothing. */
typedef struct {
  uv_tcp_t tcp;
  uv_connect_t creq;
  uv_write_t wreq;
  uv_shutdown_t sreq;
  uint8_t *junk;
  size_t junk_len;
  bool read, open, closed;
} raw_client;

/* One end of a connection, as the application sees it. */
typedef struct {
  rig *r;
  int dir; /* the pattern this side sends (the peer checks it) */
  tls_session *s;
  uv_tcp_t *tcp; /* given to the session, which owns it */
  int action;    /* what to do from inside a callback */
  int ready, closed, data_calls, calls_after_close, connect_err;
  int write_err, write_after_close;
  bool close_requested, rx_bad, resumed;
  char reason[256], alpn[16];
  uint64_t tx, rx, tx_target, prewrite;
} side;

struct rig {
  uv_loop_t loop;
  uv_tcp_t listener;
  uv_timer_t tick;
  uint16_t port;
  tls_config *scfg, *ccfg;
  uint64_t hs_timeout;
  side srv, cli;
  raw_client raw;
  uint32_t rng;
  uint8_t chunk[BIG_CHUNK];
};

static uint32_t next_rand(rig *r) {
  r->rng ^= r->rng << 13;
  r->rng ^= r->rng >> 17;
  r->rng ^= r->rng << 5;
  return r->rng;
}

/* Byte i of direction dir: not periodic over the sizes used, so a lost, repeated or swapped
 * piece shows. */
static uint8_t pat(int dir, uint64_t i) {
  uint32_t x = (uint32_t)i * 0x9E3779B1u;
  return (uint8_t)((x >> 24) ^ (uint8_t)(i >> 20) ^ (dir ? 0x5a : 0));
}

/* Writes random-size pieces of the pattern until the target or until queued reaches limit. */
static void pump(side *d, size_t limit) {
  rig *r = d->r;
  while (d->s && !d->close_requested && d->tx < d->tx_target && tls_session_queued(d->s) < limit) {
    uint32_t x = next_rand(r);
    size_t n = x % 8 == 0 ? 1 + x % (BIG_CHUNK - 1) : 1 + x % 4000;
    if (n > d->tx_target - d->tx) n = (size_t)(d->tx_target - d->tx);
    for (size_t i = 0; i < n; i++) r->chunk[i] = pat(d->dir, d->tx + i);
    int rc = tls_session_write(d->s, r->chunk, n);
    if (rc) {
      d->write_err = rc;
      return;
    }
    d->tx += n;
  }
}

static void act(side *d, tls_session *s, int close_act, int abort_act) {
  if (d->action != close_act && d->action != abort_act) return;
  d->close_requested = true;
  if (d->action == close_act)
    tls_session_close(s);
  else
    tls_session_abort(s);
  d->write_after_close = tls_session_write(s, (const uint8_t *)"x", 1);
  if (d->action == close_act) /* a second call is harmless */
    tls_session_close(s);
  else
    tls_session_abort(s);
}

static void cb_ready(tls_session *s, void *ctx) {
  side *d = ctx;
  d->ready++;
  snprintf(d->alpn, sizeof d->alpn, "%s", tls_session_alpn(s));
  d->resumed = tls_session_resumed(s);
  act(d, s, ACT_CLOSE_ON_READY, ACT_ABORT_ON_READY);
  pump(d, 256 * 1024);
}

static void cb_data(tls_session *s, void *ctx, uint8_t *data, size_t len) {
  side *d = ctx;
  d->data_calls++;
  if (d->close_requested) d->calls_after_close++;
  for (size_t i = 0; i < len; i++)
    if (data[i] != pat(!d->dir, d->rx + i)) d->rx_bad = true;
  memset(data, 0xee, len); /* the buffer is ours until we return */
  d->rx += len;
  act(d, s, ACT_CLOSE_ON_DATA, ACT_ABORT_ON_DATA);
}

static void cb_closed(tls_session *s, void *ctx, const char *reason) {
  side *d = ctx;
  d->closed++;
  snprintf(d->reason, sizeof d->reason, "%s", reason);
  d->s = NULL;
  d->tcp = NULL;
}

static const tls_session_cbs cbs = {cb_ready, cb_data, cb_closed};

static void on_tick(uv_timer_t *t) {
  rig *r = t->data;
  if (r->srv.ready) pump(&r->srv, 256 * 1024);
  if (r->cli.ready) pump(&r->cli, 256 * 1024);
}

static void free_handle(uv_handle_t *h) { free(h); }

static void on_accept(uv_stream_t *l, int status) {
  rig *r = l->data;
  uv_tcp_t *t = malloc(sizeof *t);
  uv_tcp_init(&r->loop, t);
  if (status || uv_accept(l, (uv_stream_t *)t) != 0) {
    uv_close((uv_handle_t *)t, free_handle);
    return;
  }
  r->srv.tcp = t;
  r->srv.s = tls_session_start(t, r->scfg, &cbs, &r->srv, r->hs_timeout);
}

static struct sockaddr_in server_addr(rig *r) {
  struct sockaddr_in a;
  uv_ip4_addr("127.0.0.1", r->port, &a);
  return a;
}

static void on_connected(uv_connect_t *req, int status) {
  side *d = req->data;
  free(req);
  if (status) {
    d->connect_err = status;
    uv_close((uv_handle_t *)d->tcp, free_handle);
    return;
  }
  d->s = tls_session_start(d->tcp, d->r->ccfg, &cbs, d, 0);
  pump(d, d->prewrite); /* these wait for the handshake */
}

static void connect_client(rig *r) {
  side *d = &r->cli;
  d->tcp = malloc(sizeof *d->tcp);
  uv_tcp_init(&r->loop, d->tcp);
  uv_connect_t *req = malloc(sizeof *req);
  req->data = d;
  struct sockaddr_in a = server_addr(r);
  assert_int_equal(uv_tcp_connect(req, d->tcp, (const struct sockaddr *)&a, on_connected), 0);
}

static void side_reset(rig *r, side *d, int dir) {
  memset(d, 0, sizeof *d);
  d->r = r;
  d->dir = dir;
}

static bool run_until(rig *r, bool (*done)(rig *), uint64_t ms) {
  uint64_t deadline = uv_hrtime() + ms * 1000000ull;
  while (!done(r) && uv_hrtime() < deadline) uv_run(&r->loop, UV_RUN_ONCE);
  return done(r);
}

static bool both_ready(rig *r) { return r->srv.ready && r->cli.ready; }
static bool both_closed(rig *r) { return r->srv.closed && r->cli.closed; }
static bool srv_closed(rig *r) { return r->srv.closed > 0; }
static bool srv_started(rig *r) { return r->srv.s != NULL; }

static int rig_setup(void **state) {
  char err[256];
  rig *r = calloc(1, sizeof *r);
  const char *seed = getenv("TLS_TEST_SEED"); /* to replay a run */
  r->rng = (seed ? (uint32_t)strtoul(seed, NULL, 10) : (uint32_t)time(NULL)) | 1u;
  print_message("seed %u (TLS_TEST_SEED)\n", r->rng);
  assert_int_equal(uv_loop_init(&r->loop), 0);
  uv_tcp_init(&r->loop, &r->listener);
  r->listener.data = r;
  struct sockaddr_in a;
  uv_ip4_addr("127.0.0.1", 0, &a);
  assert_int_equal(uv_tcp_bind(&r->listener, (const struct sockaddr *)&a, 0), 0);
  assert_int_equal(uv_listen((uv_stream_t *)&r->listener, 16, on_accept), 0);
  int len = sizeof a;
  uv_tcp_getsockname(&r->listener, (struct sockaddr *)&a, &len);
  r->port = ntohs(a.sin_port);
  uv_timer_init(&r->loop, &r->tick);
  r->tick.data = r;
  uv_timer_start(&r->tick, on_tick, 1, 1); /* feeds the writers; wakes run_until */
  r->scfg = tls_config_server(NULL, NULL, "127.0.0.1", err, sizeof err);
  assert_non_null(r->scfg);
  r->ccfg = tls_config_client(NULL, false, err, sizeof err);
  assert_non_null(r->ccfg);
  r->hs_timeout = 5000;
  side_reset(r, &r->cli, 0);
  side_reset(r, &r->srv, 1);
  *state = r;
  return 0;
}

static void raw_close(rig *r);

/* Whatever a test left open is aborted; the loop must then close cleanly (every handle gone,
 * so every session freed). */
static int rig_teardown(void **state) {
  rig *r = *state;
  if (r->srv.s) tls_session_abort(r->srv.s);
  if (r->cli.s) tls_session_abort(r->cli.s);
  raw_close(r);
  uv_close((uv_handle_t *)&r->listener, NULL);
  uv_close((uv_handle_t *)&r->tick, NULL);
  uv_run(&r->loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&r->loop), 0);
  tls_config_free(r->scfg);
  tls_config_free(r->ccfg);
  free(r);
  return 0;
}

/* ---- 1: a session carries 1 MiB each way and closes ---- */

static bool both_got_all(rig *r) {
  return (r->srv.rx >= MIB && r->cli.rx >= MIB) || r->srv.closed || r->cli.closed;
}

static void test_transfer_and_close(void **state) {
  rig *r = *state;
  r->cli.tx_target = r->srv.tx_target = MIB;
  r->cli.prewrite = 40000;
  connect_client(r);
  assert_true(run_until(r, both_got_all, 20000));
  assert_int_equal(r->srv.ready, 1);
  assert_int_equal(r->cli.ready, 1);
  assert_string_equal(r->srv.alpn, "http/1.1");
  assert_string_equal(r->cli.alpn, "http/1.1");
  assert_false(r->cli.resumed);
  assert_int_equal(r->srv.rx, MIB);
  assert_int_equal(r->cli.rx, MIB);
  assert_false(r->srv.rx_bad);
  assert_false(r->cli.rx_bad);
  assert_int_equal(r->srv.write_err, 0);
  assert_int_equal(r->cli.write_err, 0);
  struct sockaddr_storage peer;
  socklen_t plen = 0;
  assert_int_equal(tls_session_peer(r->srv.s, &peer, &plen), 0);
  assert_int_equal(peer.ss_family, AF_INET);
  assert_int_equal(plen, sizeof(struct sockaddr_in));

  tls_session_close(r->cli.s);
  assert_true(run_until(r, both_closed, 10000));
  uv_run(&r->loop, UV_RUN_NOWAIT);
  assert_int_equal(r->srv.closed, 1);
  assert_int_equal(r->cli.closed, 1);
  assert_string_equal(r->cli.reason, "closed");
  assert_string_equal(r->srv.reason, "peer closed");
}

/* ---- raw TCP clients ---- */

static void raw_alloc(uv_handle_t *h, size_t n, uv_buf_t *b) {
  static char sink[65536];
  *b = uv_buf_init(sink, sizeof sink);
}

static void raw_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b) {
  if (n < 0) uv_read_stop(st);
}

static void raw_wrote(uv_write_t *w, int status) {}
static void raw_shut(uv_shutdown_t *s, int status) {}

static void raw_connected(uv_connect_t *req, int status) {
  raw_client *c = req->data;
  if (status) return;
  if (c->read) uv_read_start((uv_stream_t *)&c->tcp, raw_alloc, raw_read);
  if (!c->junk_len) return;
  uv_buf_t b = uv_buf_init((char *)c->junk, (unsigned)c->junk_len);
  uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, raw_wrote);
  uv_shutdown(&c->sreq, (uv_stream_t *)&c->tcp, raw_shut); /* EOF ends a half record */
}

static void raw_connect(rig *r, const uint8_t *junk, size_t len, bool read) {
  raw_client *c = &r->raw;
  memset(c, 0, sizeof *c);
  c->open = true;
  c->junk = malloc(len + 1);
  if (len) memcpy(c->junk, junk, len);
  c->junk_len = len;
  c->read = read;
  uv_tcp_init(&r->loop, &c->tcp);
  c->creq.data = c;
  struct sockaddr_in a = server_addr(r);
  assert_int_equal(uv_tcp_connect(&c->creq, &c->tcp, (const struct sockaddr *)&a, raw_connected),
                   0);
}

static void raw_closed(uv_handle_t *h) { ((raw_client *)h->data)->closed = true; }

static void raw_close(rig *r) {
  raw_client *c = &r->raw;
  if (!c->open) return;
  c->open = false;
  c->tcp.data = c;
  uv_close((uv_handle_t *)&c->tcp, raw_closed);
  while (!c->closed) uv_run(&r->loop, UV_RUN_ONCE);
  free(c->junk);
}

/* ---- 2: garbage instead of a ClientHello ---- */

static void garbage_round(rig *r, const uint8_t *junk, size_t len, bool must_be_tls_error) {
  side_reset(r, &r->srv, 1);
  raw_connect(r, junk, len, true);
  assert_true(run_until(r, srv_closed, 10000));
  assert_int_equal(r->srv.ready, 0);
  assert_int_equal(r->srv.closed, 1);
  assert_true(r->srv.reason[0] != 0);
  if (must_be_tls_error) assert_non_null(strstr(r->srv.reason, "TLS handshake: "));
  raw_close(r);
}

static void test_garbage_closes(void **state) {
  rig *r = *state;
  static const char http[] = "GET / HTTP/1.1\r\nHost: example.com\r\n\r\n";
  garbage_round(r, (const uint8_t *)http, sizeof http - 1, true);
  /* A handshake record holding a garbage message. */
  uint8_t junk[8192];
  junk[0] = 0x16, junk[1] = 3, junk[2] = 1, junk[3] = 0, junk[4] = 200;
  for (size_t i = 5; i < 205; i++) junk[i] = (uint8_t)next_rand(r);
  junk[5] = 1, junk[6] = 0, junk[7] = 0, junk[8] = 196; /* a ClientHello of the right length */
  garbage_round(r, junk, 205, true);
  for (int round = 0; round < 40; round++) {
    size_t len = 1 + next_rand(r) % sizeof junk;
    for (size_t i = 0; i < len; i++) junk[i] = (uint8_t)next_rand(r);
    if (round % 2) junk[0] = 0x16, junk[1] = 3, junk[2] = (uint8_t)(round % 4);
    garbage_round(r, junk, len, false);
  }
}

/* Garbage inside an established session (bytes written under the client's TLS): the server
 * fails on the record, the client hears of it; each closes once. */
static void test_garbage_after_handshake(void **state) {
  rig *r = *state;
  connect_client(r);
  assert_true(run_until(r, both_ready, 5000));
  uint8_t junk[3000];
  for (size_t i = 0; i < sizeof junk; i++) junk[i] = (uint8_t)next_rand(r);
  junk[0] = 0x17, junk[1] = 3, junk[2] = 3, junk[3] = 0x0b, junk[4] = 0xb3; /* application data */
  uv_buf_t b = uv_buf_init((char *)junk, sizeof junk);
  assert_int_equal(uv_try_write((uv_stream_t *)r->cli.tcp, &b, 1), (int)sizeof junk);
  assert_true(run_until(r, both_closed, 5000));
  uv_run(&r->loop, UV_RUN_NOWAIT);
  print_message("server: %s; client: %s\n", r->srv.reason, r->cli.reason);
  assert_int_equal(r->srv.closed, 1);
  assert_int_equal(r->cli.closed, 1);
  assert_int_equal(r->srv.data_calls, 0);
  assert_non_null(strstr(r->srv.reason, "TLS: "));
}

/* ---- 3: a client that says nothing ---- */

static void test_handshake_timeout(void **state) {
  rig *r = *state;
  r->hs_timeout = 200;
  uint64_t t0 = uv_hrtime();
  raw_connect(r, NULL, 0, true);
  assert_true(run_until(r, srv_closed, 5000));
  uint64_t ms = (uv_hrtime() - t0) / 1000000;
  print_message("closed after %llu ms: %s\n", (unsigned long long)ms, r->srv.reason);
  assert_true(ms >= 180);
  assert_int_equal(r->srv.ready, 0);
  assert_non_null(strstr(r->srv.reason, "timed out after 200 ms"));
  raw_close(r);
}

/* ---- 4: the write bound ---- */

/* Writes 16 KiB pieces until refused; returns how much was taken. */
static uint64_t fill_until_refused(tls_session *s, uint8_t *buf, int *rc) {
  uint64_t total = 0;
  while (total < 512ull * MIB) {
    *rc = tls_session_write(s, buf, 16384);
    if (*rc) break;
    total += 16384;
  }
  return total;
}

static void test_write_bound_before_handshake(void **state) {
  rig *r = *state;
  raw_connect(r, NULL, 0, false); /* connects, never sends nor reads */
  assert_true(run_until(r, srv_started, 5000));
  int rc = 0;
  uint64_t took = fill_until_refused(r->srv.s, r->chunk, &rc);
  assert_int_equal(rc, UV_ENOBUFS);
  assert_true(took > TLS_SESSION_MAX_QUEUED && took <= TLS_SESSION_MAX_QUEUED + 16384);
  assert_int_equal(tls_session_queued(r->srv.s), took);
  tls_session_abort(r->srv.s);
  assert_true(run_until(r, srv_closed, 5000));
  assert_int_equal(r->srv.closed, 1);
  assert_string_equal(r->srv.reason, "aborted");
  raw_close(r);
}

static void test_write_bound_after_handshake(void **state) {
  rig *r = *state;
  connect_client(r);
  assert_true(run_until(r, both_ready, 5000));
  uv_read_stop((uv_stream_t *)r->cli.tcp); /* the client stops reading, as a stalled peer */
  uv_run(&r->loop, UV_RUN_NOWAIT);
  int rc = 0;
  uint64_t took = fill_until_refused(r->srv.s, r->chunk, &rc);
  print_message("taken before UV_ENOBUFS: %llu bytes\n", (unsigned long long)took);
  assert_int_equal(rc, UV_ENOBUFS);
  size_t q = tls_session_queued(r->srv.s);
  assert_true(q > TLS_SESSION_MAX_QUEUED && q < TLS_SESSION_MAX_QUEUED + 16384 + 1024);
  /* The socket takes more as the loop runs, never what was refused: still bounded. */
  uv_run(&r->loop, UV_RUN_NOWAIT);
  assert_true(tls_session_queued(r->srv.s) <= q);
  tls_session_abort(r->srv.s);
  tls_session_abort(r->cli.s); /* it does not read, so it would not notice the reset */
  assert_true(run_until(r, both_closed, 5000));
  assert_int_equal(r->srv.closed, 1);
  assert_int_equal(r->cli.closed, 1);
}

/* ---- 5: certificate and key files ---- */

static void write_file(const char *path, const void *d, size_t len) {
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(d, 1, len, f), len);
  fclose(f);
}

/* A self-signed certificate and its key in PEM files, and a second, unrelated key. */
static void make_pem_files(const char *cert, const char *key, const char *other_key) {
  gnutls_x509_privkey_t k[2];
  gnutls_x509_crt_t crt;
  uint8_t out[8192];
  for (int i = 0; i < 2; i++) {
    assert_int_equal(gnutls_x509_privkey_init(&k[i]), 0);
    assert_int_equal(
        gnutls_x509_privkey_generate(k[i], GNUTLS_PK_ECDSA,
                                     GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0),
        0);
    size_t n = sizeof out;
    assert_int_equal(gnutls_x509_privkey_export(k[i], GNUTLS_X509_FMT_PEM, out, &n), 0);
    write_file(i ? other_key : key, out, n);
  }
  assert_int_equal(gnutls_x509_crt_init(&crt), 0);
  uint8_t serial[1] = {7};
  gnutls_x509_crt_set_version(crt, 3);
  gnutls_x509_crt_set_serial(crt, serial, 1);
  gnutls_x509_crt_set_activation_time(crt, time(NULL) - 60);
  gnutls_x509_crt_set_expiration_time(crt, time(NULL) + 86400);
  gnutls_x509_crt_set_dn(crt, "CN=test", NULL);
  gnutls_x509_crt_set_key(crt, k[0]);
  assert_int_equal(gnutls_x509_crt_sign2(crt, crt, k[0], GNUTLS_DIG_SHA256, 0), 0);
  size_t n = sizeof out;
  assert_int_equal(gnutls_x509_crt_export(crt, GNUTLS_X509_FMT_PEM, out, &n), 0);
  write_file(cert, out, n);
  gnutls_x509_crt_deinit(crt);
  gnutls_x509_privkey_deinit(k[0]);
  gnutls_x509_privkey_deinit(k[1]);
}

static void expect_refused(const char *cert, const char *key, const char *want1,
                           const char *want2) {
  char err[512] = "";
  assert_null(tls_config_server(cert, key, "x", err, sizeof err));
  print_message("%s\n", err);
  assert_non_null(strstr(err, want1));
  if (want2) assert_non_null(strstr(err, want2));
}

static void test_cert_files(void **state) {
  char dir[] = "/tmp/tls_session_test.XXXXXX";
  assert_non_null(mkdtemp(dir));
  char cert[128], key[128], other[128], junk[128], missing[128];
  snprintf(cert, sizeof cert, "%s/cert.pem", dir);
  snprintf(key, sizeof key, "%s/key.pem", dir);
  snprintf(other, sizeof other, "%s/other.pem", dir);
  snprintf(junk, sizeof junk, "%s/junk.pem", dir);
  snprintf(missing, sizeof missing, "%s/missing.pem", dir);
  make_pem_files(cert, key, other);
  write_file(junk, "not a certificate\n", 18);

  expect_refused(missing, key, missing, "No such file");
  expect_refused(junk, key, junk, "certificate");
  expect_refused(cert, missing, missing, "key");
  expect_refused(cert, junk, junk, "key");
  expect_refused(cert, other, other, "does not match");
  char err[256];
  tls_config *ok = tls_config_server(cert, key, "x", err, sizeof err);
  assert_non_null(ok);
  tls_config_free(ok);

  unlink(cert), unlink(key), unlink(other), unlink(junk);
  rmdir(dir);
}

/* ---- 6: resumption ---- */

static bool cli_got_data(rig *r) { return r->cli.rx >= 100 || r->cli.closed; }

static void test_resumption(void **state) {
  rig *r = *state;
  for (int round = 0; round < 3; round++) {
    side_reset(r, &r->cli, 0);
    side_reset(r, &r->srv, 1);
    r->srv.tx_target = 100;
    connect_client(r);
    /* The server's tickets precede its data: once data is in, the client config has one. */
    assert_true(run_until(r, cli_got_data, 5000));
    assert_int_equal(r->cli.ready, 1);
    assert_int_equal(r->cli.resumed, round > 0);
    assert_int_equal(r->srv.resumed, round > 0);
    tls_session_close(r->cli.s);
    assert_true(run_until(r, both_closed, 5000));
    assert_int_equal(r->srv.closed, 1);
    assert_int_equal(r->cli.closed, 1);
  }
}

/* ---- 7: closing from inside the callbacks ---- */

static void close_inside(rig *r, side *who, int action, uint64_t cli_target) {
  side_reset(r, &r->cli, 0);
  side_reset(r, &r->srv, 1);
  who->action = action;
  r->cli.tx_target = cli_target;
  r->cli.prewrite = 30000;
  r->srv.tx_target = 200000;
  connect_client(r);
  assert_true(run_until(r, both_closed, 10000));
  uv_run(&r->loop, UV_RUN_NOWAIT);
  print_message("action %d by %s: srv '%s', cli '%s'\n", action, who == &r->srv ? "srv" : "cli",
                r->srv.reason, r->cli.reason);
  assert_int_equal(r->srv.closed, 1);
  assert_int_equal(r->cli.closed, 1);
  assert_true(who->close_requested);
  assert_int_equal(who->calls_after_close, 0);
  assert_int_equal(who->write_after_close, UV_ECANCELED);
  assert_false(r->srv.rx_bad);
  assert_false(r->cli.rx_bad);
  bool abort = action == ACT_ABORT_ON_READY || action == ACT_ABORT_ON_DATA;
  assert_string_equal(who->reason, abort ? "aborted" : "closed");
}

static void test_close_inside_callbacks(void **state) {
  rig *r = *state;
  close_inside(r, &r->srv, ACT_CLOSE_ON_READY, MIB);
  close_inside(r, &r->srv, ACT_ABORT_ON_READY, MIB);
  close_inside(r, &r->cli, ACT_CLOSE_ON_READY, MIB);
  close_inside(r, &r->cli, ACT_ABORT_ON_READY, MIB);
  close_inside(r, &r->srv, ACT_CLOSE_ON_DATA, MIB);
  close_inside(r, &r->srv, ACT_ABORT_ON_DATA, MIB);
  close_inside(r, &r->cli, ACT_CLOSE_ON_DATA, MIB);
  close_inside(r, &r->cli, ACT_ABORT_ON_DATA, MIB);
}

/* ---- 8: a verifying client ---- */

static void test_verify_refuses_self_signed(void **state) {
  rig *r = *state;
  char err[256];
  tls_config *v = tls_config_client("127.0.0.1", true, err, sizeof err);
  if (!v) {
    print_message("no system CA store here, skipped: %s\n", err);
    skip();
  }
  tls_config_free(r->ccfg);
  r->ccfg = v;
  connect_client(r);
  assert_true(run_until(r, both_closed, 5000));
  assert_int_equal(r->cli.ready, 0);
  assert_int_equal(r->srv.ready, 0);
  print_message("client: %s; server: %s\n", r->cli.reason, r->srv.reason);
  assert_non_null(strstr(r->cli.reason, "TLS handshake: "));
}

int main(void) {
  signal(SIGPIPE, SIG_IGN); /* writes to a reset socket: an error, as in the daemon */
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_transfer_and_close, rig_setup, rig_teardown),
      cmocka_unit_test_setup_teardown(test_garbage_closes, rig_setup, rig_teardown),
      cmocka_unit_test_setup_teardown(test_garbage_after_handshake, rig_setup, rig_teardown),
      cmocka_unit_test_setup_teardown(test_handshake_timeout, rig_setup, rig_teardown),
      cmocka_unit_test_setup_teardown(test_write_bound_before_handshake, rig_setup, rig_teardown),
      cmocka_unit_test_setup_teardown(test_write_bound_after_handshake, rig_setup, rig_teardown),
      cmocka_unit_test(test_cert_files),
      cmocka_unit_test_setup_teardown(test_resumption, rig_setup, rig_teardown),
      cmocka_unit_test_setup_teardown(test_close_inside_callbacks, rig_setup, rig_teardown),
      cmocka_unit_test_setup_teardown(test_verify_refuses_self_signed, rig_setup, rig_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
