/* One TLS connection over a libuv TCP handle (tls_session.h). GnuTLS never touches the socket:
 * its pull function reads from `in` (filled by uv reads); its push function hands records to
 * uv_try_write when nothing waits, and appends what the socket does not take to `pend` (sent
 * with uv_write). Everything the peer sends is hostile: input is bounded by
 * `in` and by GnuTLS's own limits (one record, 128 KiB of handshake), output by
 * TLS_SESSION_MAX_QUEUED for our writes and OUT_HARD_LIMIT for what the peer makes us send.
 *
 * Lifetime: finish() is the only way out. It closes the timer and the TCP handle; the second
 * close callback calls on_closed once and frees everything, so a callback that closes or aborts
 * the session from inside on_ready / on_data leaves it valid until its caller unwinds. */
#include "carrier/tls_session.h"

#include <arpa/inet.h>
#include <errno.h>
#include <gnutls/gnutls.h>
#include <gnutls/crypto.h>
#include <gnutls/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/batch_clock.h"
#include "util/self_signed.h"

/* The client's hello is that of Debian's GnuTLS clients (git and other libcurl-gnutls users,
 * apt): GnuTLS's default priority (so the system's /etc/gnutls/config applies to us as to them),
 * minus the same legacy entries curl removes, with curl's ALPN. The server follows the client's
 * order (no %SERVER_PRECEDENCE), so AES-256-GCM runs; AES-128-GCM would be no faster with AES-NI
 * (docs/benchmarks.md). docs/dpi.md records the fingerprints. */
#define CLIENT_PRIORITY "NORMAL:-ARCFOUR-128:-CTYPE-ALL:+CTYPE-X509:-VERS-SSL3.0"
/* A web server's: TLS 1.3 and 1.2, AEAD ciphers only. */
#define SERVER_PRIORITY                         \
  "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:" \
  "-CIPHER-ALL:+AES-128-GCM:+AES-256-GCM:+CHACHA20-POLY1305"

#define IN_CAP (32 * 1024)   /* ciphertext read buffer (drained by every read) */
#define CLOSE_LINGER_MS 5000 /* close_notify and FIN must leave by then, else reset */
/* Our writes stop at TLS_SESSION_MAX_QUEUED (plus the last write); beyond this, the growth can
 * only be what the peer makes us answer (alerts, KeyUpdate) while it does not read. */
#define OUT_HARD_LIMIT (4 * TLS_SESSION_MAX_QUEUED)
#define BUF_KEEP (256 * 1024) /* an emptied buffer larger than this is given back */

struct tls_config {
  unsigned refs;
  bool server, verify;
  bool h2;           /* server: ALPN offers h2 before http/1.1 */
  char *server_name; /* client: SNI and the name verified; NULL: none */
  gnutls_certificate_credentials_t cred;
  gnutls_priority_t prio;
  gnutls_datum_t ticket_key; /* server: encrypts session tickets */
  gnutls_datum_t resume;     /* client: the latest session's resumption data (GnuTLS memory) */
};

typedef struct {
  uint8_t *p;
  size_t len, cap;
} byte_buf;

enum { ST_HANDSHAKE, ST_READY, ST_CLOSING, ST_DONE };

struct tls_session {
  uv_tcp_t *tcp;    /* owned (malloc'd by the caller); freed with the session */
  uv_timer_t timer; /* the handshake deadline, then the close linger */
  uv_write_t wreq;
  uv_shutdown_t sreq;
  tls_config *cfg; /* one reference */
  const tls_session_cbs *cbs;
  void *ctx;
  gnutls_session_t gs;
  int state;
  int open_handles; /* handles whose close callback has not run yet */
  bool writing;     /* wreq is in flight with fly */
  bool shutting;    /* sreq was issued */
  bool starved;     /* the last pull found no input: GnuTLS waits for the network */
  bool silent;      /* failed in tls_session_start: no on_closed */
  bool ticket_saved;
  bool hs_done; /* the handshake completed (resumption and ALPN are known) */
  uint64_t hs_timeout_ms;
  byte_buf pend;   /* ciphertext not yet handed to libuv */
  byte_buf fly;    /* ciphertext in the current uv_write, from fly_off */
  byte_buf plainq; /* our plaintext written before the handshake completed */
  size_t fly_off;
  size_t in_off, in_len;
  char alpn[32];
  char reason[192];
  uint8_t in[IN_CAP];
};

/* ---- small helpers ---- */

static int buf_append(byte_buf *b, const void *d, size_t n) {
  if (n > SIZE_MAX / 4 - b->len) return -1;
  if (b->cap - b->len < n) {
    size_t cap = b->cap ? b->cap : 16 * 1024;
    while (cap - b->len < n) cap *= 2;
    uint8_t *p = realloc(b->p, cap);
    if (!p) return -1;
    b->p = p;
    b->cap = cap;
  }
  memcpy(b->p + b->len, d, n);
  b->len += n;
  return 0;
}

static void buf_empty(byte_buf *b) {
  b->len = 0;
  if (b->cap > BUF_KEEP) {
    free(b->p);
    *b = (byte_buf){0};
  }
}

/* 4 or 16 (the address in ip) if name is an IPv4 / IPv6 literal, else 0. */
static size_t parse_ip(const char *name, uint8_t ip[16]) {
  if (inet_pton(AF_INET, name, ip) == 1) return 4;
  if (inet_pton(AF_INET6, name, ip) == 1) return 16;
  return 0;
}

/* ---- configurations ---- */

static tls_config *config_new(bool server, char *err, size_t errlen) {
  tls_config *c = calloc(1, sizeof *c);
  if (!c) {
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  c->refs = 1;
  c->server = server;
  int rc = gnutls_certificate_allocate_credentials(&c->cred);
  if (!rc) rc = gnutls_priority_init(&c->prio, server ? SERVER_PRIORITY : CLIENT_PRIORITY, NULL);
  if (rc) {
    snprintf(err, errlen, "TLS setup: %s", gnutls_strerror(rc));
    tls_config_free(c);
    return NULL;
  }
  return c;
}

/* Parses the certificate file alone, so that an error names the file that is wrong. */
static int check_cert_file(const char *path, char *err, size_t errlen) {
  gnutls_datum_t pem = {NULL, 0};
  gnutls_x509_crt_t *crts = NULL;
  unsigned n = 0;
  int rc = gnutls_load_file(path, &pem);
  if (rc < 0) {
    snprintf(err, errlen, "TLS certificate file %s: cannot read it: %s", path, strerror(errno));
    return -1;
  }
  rc = gnutls_x509_crt_list_import2(&crts, &n, &pem, GNUTLS_X509_FMT_PEM, 0);
  for (unsigned i = 0; rc >= 0 && i < n; i++) gnutls_x509_crt_deinit(crts[i]);
  gnutls_free(crts);
  gnutls_free(pem.data);
  if (rc < 0)
    snprintf(err, errlen, "TLS certificate file %s: no PEM certificate in it (%s)", path,
             gnutls_strerror(rc));
  return rc < 0 ? -1 : 0;
}

static int load_cert(tls_config *c, const char *cert_file, const char *key_file, char *err,
                     size_t errlen) {
  if (!key_file || !*key_file) key_file = cert_file; /* one PEM file with both */
  if (check_cert_file(cert_file, err, errlen) != 0) return -1;
  FILE *f = fopen(key_file, "r");
  if (!f) {
    snprintf(err, errlen, "TLS key file %s: cannot read it: %s", key_file, strerror(errno));
    return -1;
  }
  fclose(f);
  int rc = gnutls_certificate_set_x509_key_file2(c->cred, cert_file, key_file, GNUTLS_X509_FMT_PEM,
                                                 NULL, 0);
  if (rc == GNUTLS_E_CERTIFICATE_KEY_MISMATCH)
    snprintf(err, errlen, "TLS key file %s does not match the certificate in %s", key_file,
             cert_file);
  else if (rc < 0)
    snprintf(err, errlen, "TLS key file %s: no usable PEM private key in it (%s)", key_file,
             gnutls_strerror(rc));
  return rc < 0 ? -1 : 0;
}

tls_config *tls_config_server(const char *cert_file, const char *key_file, const char *name,
                              char *err, size_t errlen) {
  tls_config *c = config_new(true, err, errlen);
  if (!c) return NULL;
  int rc = cert_file && *cert_file ? load_cert(c, cert_file, key_file, err, errlen)
                                   : self_signed_cert(c->cred, name, 365, err, errlen);
  if (!rc && gnutls_session_ticket_key_generate(&c->ticket_key) != 0) {
    snprintf(err, errlen, "TLS session ticket key: cannot generate it");
    rc = -1;
  }
  if (rc) {
    tls_config_free(c);
    return NULL;
  }
  return c;
}

tls_config *tls_config_client(const char *server_name, bool verify, char *err, size_t errlen) {
  tls_config *c = config_new(false, err, errlen);
  if (!c) return NULL;
  c->verify = verify;
  if (server_name && *server_name && !(c->server_name = strdup(server_name))) {
    snprintf(err, errlen, "out of memory");
    tls_config_free(c);
    return NULL;
  }
  if (verify) {
    int n = gnutls_certificate_set_x509_system_trust(c->cred);
    if (n <= 0) {
      snprintf(err, errlen, "TLS verification: no CA certificates from the system store (%s)",
               n < 0 ? gnutls_strerror(n) : "none found");
      tls_config_free(c);
      return NULL;
    }
  }
  return c;
}

void tls_config_offer_h2(tls_config *c, bool on) { c->h2 = on; }

tls_config *tls_config_ref(tls_config *c) {
  c->refs++;
  return c;
}

void tls_config_free(tls_config *c) {
  if (!c || --c->refs) return;
  if (c->prio) gnutls_priority_deinit(c->prio);
  if (c->cred) gnutls_certificate_free_credentials(c->cred);
  if (c->ticket_key.data) {
    gnutls_memset(c->ticket_key.data, 0, c->ticket_key.size);
    gnutls_free(c->ticket_key.data);
  }
  gnutls_free(c->resume.data);
  free(c->server_name);
  free(c);
}

/* ---- the end of a session ---- */

static void on_handle_closed(uv_handle_t *h) {
  tls_session *s = h->data;
  if (--s->open_handles > 0) return;
  if (!s->silent && s->cbs->on_closed) s->cbs->on_closed(s, s->ctx, s->reason);
  if (s->gs) gnutls_deinit(s->gs);
  tls_config_free(s->cfg);
  free(s->tcp);
  free(s->pend.p);
  free(s->fly.p);
  free(s->plainq.p);
  free(s);
}

/* The only way out: on_closed (with the first reason given) follows from the close callbacks,
 * never from inside the caller. reset: RST instead of FIN. */
static void finish(tls_session *s, const char *reason, bool reset) {
  if (s->state == ST_DONE) return;
  s->state = ST_DONE;
  if (!s->reason[0]) snprintf(s->reason, sizeof s->reason, "%s", reason);
  uv_close((uv_handle_t *)&s->timer, on_handle_closed);
  /* uv_tcp_close_reset refuses while a shutdown is pending: then SO_LINGER 0 does the same. */
  if (reset && uv_tcp_close_reset(s->tcp, on_handle_closed) == 0) return;
  uv_os_fd_t fd;
  if (reset && uv_fileno((uv_handle_t *)s->tcp, &fd) == 0) {
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  }
  uv_close((uv_handle_t *)s->tcp, on_handle_closed);
}

static void fail_uv(tls_session *s, const char *what, int rc) {
  char r[128];
  snprintf(r, sizeof r, "%s: %s", what, uv_strerror(rc));
  finish(s, r, false);
}

static void flush(tls_session *s);

static void fail_tls(tls_session *s, const char *what, int rc) {
  char r[sizeof s->reason];
  if (rc == GNUTLS_E_FATAL_ALERT_RECEIVED) {
    snprintf(r, sizeof r, "%s: peer sent alert %s", what,
             gnutls_alert_get_name(gnutls_alert_get(s->gs)));
  } else if (rc == GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR) {
    gnutls_datum_t txt = {NULL, 0};
    unsigned st = gnutls_session_get_verify_cert_status(s->gs);
    gnutls_certificate_verification_status_print(st, GNUTLS_CRT_X509, &txt, 0);
    snprintf(r, sizeof r, "%s: %s", what, txt.data ? (char *)txt.data : gnutls_strerror(rc));
    gnutls_free(txt.data);
  } else {
    snprintf(r, sizeof r, "%s: %s", what, gnutls_strerror(rc));
  }
  /* Tell the peer why, as any TLS stack would, if the socket takes it right away. */
  if (rc != GNUTLS_E_FATAL_ALERT_RECEIVED && gnutls_alert_send_appropriate(s->gs, rc) == 0)
    flush(s);
  finish(s, r, false);
}

/* ---- output ---- */

static void maybe_shutdown(tls_session *s);

static void on_write(uv_write_t *req, int status) {
  tls_session *s = req->data;
  s->writing = false;
  buf_empty(&s->fly);
  s->fly_off = 0;
  if (status == UV_ECANCELED || s->state == ST_DONE) return; /* closing: nothing to do */
  if (status < 0) {
    fail_uv(s, "write", status);
    return;
  }
  flush(s);
}

/* Hands pend to the socket: uv_try_write first (most writes end there), the rest with one
 * uv_write; what is pushed meanwhile waits in pend for its completion, keeping the order. */
static void flush(tls_session *s) {
  if (s->state == ST_DONE || s->writing) return;
  if (s->pend.len == 0) {
    maybe_shutdown(s);
    return;
  }
  uv_buf_t b = uv_buf_init((char *)s->pend.p, (unsigned)s->pend.len);
  int n = uv_try_write((uv_stream_t *)s->tcp, &b, 1);
  if (n < 0 && n != UV_EAGAIN) {
    fail_uv(s, "write", n);
    return;
  }
  size_t done = n > 0 ? (size_t)n : 0;
  if (done == s->pend.len) {
    buf_empty(&s->pend);
    maybe_shutdown(s);
    return;
  }
  byte_buf t = s->fly; /* empty: swap the buffers */
  s->fly = s->pend;
  s->pend = t;
  s->fly_off = done;
  b = uv_buf_init((char *)s->fly.p + done, (unsigned)(s->fly.len - done));
  s->wreq.data = s;
  int rc = uv_write(&s->wreq, (uv_stream_t *)s->tcp, &b, 1, on_write);
  if (rc) {
    fail_uv(s, "write", rc);
    return;
  }
  s->writing = true;
}

static void on_shutdown(uv_shutdown_t *req, int status) {
  tls_session *s = req->data;
  /* After our FIN the peer's close (EOF) or the linger timer ends the session. */
  if (status < 0 && status != UV_ECANCELED) fail_uv(s, "shutdown", status);
}

static void maybe_shutdown(tls_session *s) {
  if (s->state != ST_CLOSING || s->shutting || s->writing || s->pend.len) return;
  s->sreq.data = s;
  int rc = uv_shutdown(&s->sreq, (uv_stream_t *)s->tcp, on_shutdown);
  if (rc) {
    fail_uv(s, "shutdown", rc);
    return;
  }
  s->shutting = true;
}

/* Encrypts into pend (GnuTLS cuts records of at most 16 KiB). */
static int encrypt(tls_session *s, const uint8_t *d, size_t len) {
  while (len > 0) {
    ssize_t n = gnutls_record_send(s->gs, d, len);
    if (n < 0) { /* our push never blocks, so even GNUTLS_E_AGAIN is a failure */
      fail_tls(s, "TLS write", (int)n);
      return -1;
    }
    d += n;
    len -= (size_t)n;
  }
  return 0;
}

/* ---- GnuTLS transport over memory ---- */

static ssize_t pull_fn(gnutls_transport_ptr_t p, void *data, size_t len) {
  tls_session *s = p;
  size_t have = s->in_len - s->in_off;
  if (have == 0) {
    s->starved = true;
    gnutls_transport_set_errno(s->gs, EAGAIN);
    return -1;
  }
  if (len > have) len = have;
  memcpy(data, s->in + s->in_off, len);
  s->in_off += len;
  return (ssize_t)len;
}

/* Only called with a GnuTLS timeout set (none is): answers without waiting. */
static int pull_timeout_fn(gnutls_transport_ptr_t p, unsigned ms) {
  tls_session *s = p;
  return s->in_len > s->in_off ? 1 : 0;
}

#define PUSH_IOV_MAX 16 /* iovecs written at once; GnuTLS passes one or two per record */

/* How much of iov the socket takes now, when nothing waits to go before it (the usual case: each
 * record leaves as GnuTLS makes it, without a copy into pend). 0 when something waits, the
 * socket is full or it failed: the bytes then join pend, and flush() meets the failure. */
static size_t push_direct(tls_session *s, const giovec_t *iov, int iovcnt) {
  uv_buf_t b[PUSH_IOV_MAX];
  unsigned n = iovcnt < PUSH_IOV_MAX ? (unsigned)iovcnt : PUSH_IOV_MAX;
  if (s->pend.len || s->writing || s->shutting || s->state == ST_DONE) return 0;
  for (unsigned i = 0; i < n; i++) b[i] = uv_buf_init(iov[i].iov_base, (unsigned)iov[i].iov_len);
  int w = uv_try_write((uv_stream_t *)s->tcp, b, n);
  return w > 0 ? (size_t)w : 0;
}

/* Takes every byte: what the socket does not take at once waits in pend, in order. */
static ssize_t vec_push_fn(gnutls_transport_ptr_t p, const giovec_t *iov, int iovcnt) {
  tls_session *s = p;
  size_t total = 0, skip = push_direct(s, iov, iovcnt);
  for (int i = 0; i < iovcnt; i++) {
    size_t len = iov[i].iov_len, from = skip < len ? skip : len;
    skip -= from;
    total += len;
    if (from < len && buf_append(&s->pend, (const uint8_t *)iov[i].iov_base + from, len - from)) {
      gnutls_transport_set_errno(s->gs, ENOMEM);
      return -1;
    }
  }
  return (ssize_t)total;
}

static ssize_t push_fn(gnutls_transport_ptr_t p, const void *data, size_t len) {
  giovec_t v = {(void *)data, len};
  return vec_push_fn(p, &v, 1);
}

/* ---- input ---- */

/* Client, TLS 1.3: the server's NewSessionTicket arrives after the handshake, among the first
 * records read; its resumption data is kept in the config for the next session. The flag is
 * checked first because gnutls_session_get_data2 would otherwise wait for a ticket (a pull with
 * a timeout). */
static void save_ticket(tls_session *s) {
  if (s->cfg->server || s->ticket_saved) return;
  if (!(gnutls_session_get_flags(s->gs) & GNUTLS_SFLAGS_SESSION_TICKET)) return;
  gnutls_datum_t d;
  if (gnutls_session_get_data2(s->gs, &d) != 0) return;
  s->ticket_saved = true;
  gnutls_free(s->cfg->resume.data);
  s->cfg->resume = d;
}

static void become_ready(tls_session *s) {
  s->state = ST_READY;
  s->hs_done = true;
  uv_timer_stop(&s->timer);
  gnutls_datum_t p;
  if (gnutls_alpn_get_selected_protocol(s->gs, &p) == 0 && p.size < sizeof s->alpn) {
    memcpy(s->alpn, p.data, p.size);
    s->alpn[p.size] = 0;
  }
  save_ticket(s);
  /* What was written during the handshake leaves first. */
  if (s->plainq.len && encrypt(s, s->plainq.p, s->plainq.len) != 0) return;
  buf_empty(&s->plainq);
  flush(s);
  if (s->state == ST_READY && s->cbs->on_ready) s->cbs->on_ready(s, s->ctx);
}

static void handshake_step(tls_session *s) {
  int rc;
  do rc = gnutls_handshake(s->gs);
  while (rc == GNUTLS_E_WARNING_ALERT_RECEIVED || rc == GNUTLS_E_INTERRUPTED);
  if (rc == GNUTLS_E_AGAIN) return;
  if (rc < 0) {
    fail_tls(s, "TLS handshake", rc);
    return;
  }
  become_ready(s);
}

/* Decrypts until GnuTLS needs more input. GNUTLS_E_AGAIN alone is not enough: TLS 1.3 returns
 * it after a post-handshake message (ticket, KeyUpdate) with more records still waiting, so the
 * loop ends only when the pull found nothing. Each call consumes input, so it ends. */
static void recv_records(tls_session *s) {
  while (s->state == ST_READY) {
    s->starved = false;
    /* The record's plaintext where GnuTLS decrypted it: no copy into a buffer of ours. */
    gnutls_packet_t pkt = NULL;
    ssize_t n = gnutls_record_recv_packet(s->gs, &pkt);
    save_ticket(s);
    if (n > 0 && pkt) {
      gnutls_datum_t d;
      gnutls_packet_get(pkt, &d, NULL);
      if (s->cbs->on_data) s->cbs->on_data(s, s->ctx, d.data, d.size); /* may close */
    }
    if (pkt) gnutls_packet_deinit(pkt); /* the session outlives on_data (finish() defers) */
    if (n > 0) {
      continue;
    } else if (n == 0) {
      finish(s, "peer closed", false);
    } else if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED) {
      if (s->starved) return;
    } else if (n != GNUTLS_E_WARNING_ALERT_RECEIVED) {
      /* renegotiation requests included: we never renegotiate */
      fail_tls(s, "TLS", (int)n);
    }
  }
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  tls_session *s = h->data;
  if (s->in_off == s->in_len) s->in_off = s->in_len = 0;
  buf->base = (char *)s->in + s->in_len;
  buf->len = IN_CAP - s->in_len; /* 0 (UV_ENOBUFS, fatal) only if GnuTLS stopped reading */
}

static void on_read_error(tls_session *s, ssize_t n) {
  if (n != UV_EOF) {
    fail_uv(s, "read", (int)n);
    return;
  }
  switch (s->state) {
    case ST_HANDSHAKE:
      finish(s, "peer closed during the TLS handshake", false);
      break;
    case ST_READY:
      finish(s, "peer closed without close_notify", false);
      break;
    default:
      finish(s, "closed", false); /* our close: its reason is already set */
  }
}

static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf) {
  tls_session *s = st->data;
  if (n < 0) {
    on_read_error(s, n);
    return;
  }
  if (s->state == ST_HANDSHAKE || s->state == ST_READY) {
    s->in_len += (size_t)n;
    if (s->state == ST_HANDSHAKE) handshake_step(s);
    if (s->state == ST_READY) {
      /* Everything this read brought arrived before it: one clock read for all the datagrams in
       * its records, as for a recvmmsg batch (util/batch_clock.h). */
      uint64_t clock = batch_clock_hold();
      recv_records(s);
      batch_clock_release(clock);
    }
  }
  /* Closing: whatever else the peer sends is not read. */
  if (s->state != ST_HANDSHAKE && s->state != ST_READY) s->in_off = s->in_len = 0;
  if (s->state != ST_DONE && tls_session_queued(s) > OUT_HARD_LIMIT)
    finish(s, "peer does not read what it asks for", true);
  flush(s);
}

static void on_timer(uv_timer_t *t) {
  tls_session *s = t->data;
  if (s->state == ST_HANDSHAKE) {
    char r[80];
    snprintf(r, sizeof r, "TLS handshake timed out after %llu ms",
             (unsigned long long)s->hs_timeout_ms);
    finish(s, r, false);
  } else if (s->state == ST_CLOSING) {
    finish(s, "closed", true); /* the peer took neither close_notify nor FIN in time */
  }
}

/* ---- sessions ---- */

static int client_setup(tls_session *s) {
  tls_config *c = s->cfg;
  uint8_t ip[16];
  int rc = 0;
  gnutls_datum_t alpn[2] = {{(unsigned char *)"h2", 2}, {(unsigned char *)"http/1.1", 8}};
  rc = gnutls_alpn_set_protocols(s->gs, alpn, 2, 0);
  /* SNI carries host names only (RFC 6066), never an address. */
  if (!rc && c->server_name && !parse_ip(c->server_name, ip))
    rc = gnutls_server_name_set(s->gs, GNUTLS_NAME_DNS, c->server_name, strlen(c->server_name));
  if (!rc && c->verify) gnutls_session_set_verify_cert(s->gs, c->server_name, 0);
  /* A stale or refused ticket just means a full handshake. */
  if (!rc && c->resume.size) (void)gnutls_session_set_data(s->gs, c->resume.data, c->resume.size);
  return rc;
}

static int server_setup(tls_session *s) {
  gnutls_datum_t alpn[2] = {{(unsigned char *)"h2", 2}, {(unsigned char *)"http/1.1", 8}};
  bool h2 = s->cfg->h2;
  int rc = gnutls_alpn_set_protocols(s->gs, alpn + !h2, h2 ? 2 : 1, GNUTLS_ALPN_SERVER_PRECEDENCE);
  if (!rc) rc = gnutls_session_ticket_enable_server(s->gs, &s->cfg->ticket_key);
  return rc;
}

static int gnutls_setup(tls_session *s) {
  tls_config *c = s->cfg;
  unsigned flags = (c->server ? GNUTLS_SERVER : GNUTLS_CLIENT) | GNUTLS_NONBLOCK | GNUTLS_NO_SIGNAL;
  if (gnutls_init(&s->gs, flags) != 0) {
    s->gs = NULL;
    return -1;
  }
  int rc = gnutls_priority_set(s->gs, c->prio);
  if (!rc) rc = gnutls_credentials_set(s->gs, GNUTLS_CRD_CERTIFICATE, c->cred);
  if (!rc) rc = c->server ? server_setup(s) : client_setup(s);
  gnutls_handshake_set_timeout(s->gs, 0); /* our timer keeps the time */
  gnutls_transport_set_ptr(s->gs, s);
  gnutls_transport_set_push_function(s->gs, push_fn);
  gnutls_transport_set_vec_push_function(s->gs, vec_push_fn);
  gnutls_transport_set_pull_function(s->gs, pull_fn);
  gnutls_transport_set_pull_timeout_function(s->gs, pull_timeout_fn);
  return rc;
}

static void free_lone_tcp(uv_handle_t *h) { free(h); }

tls_session *tls_session_start(uv_tcp_t *tcp, tls_config *cfg, const tls_session_cbs *cbs,
                               void *ctx, uint64_t handshake_timeout_ms) {
  tls_session *s = calloc(1, sizeof *s);
  if (!s) {
    tcp->data = NULL;
    uv_close((uv_handle_t *)tcp, free_lone_tcp);
    return NULL;
  }
  s->tcp = tcp;
  tcp->data = s;
  s->cfg = cfg;
  cfg->refs++;
  s->cbs = cbs;
  s->ctx = ctx;
  s->hs_timeout_ms = handshake_timeout_ms;
  uv_timer_init(tcp->loop, &s->timer);
  s->timer.data = s;
  s->open_handles = 2;
  int rc = gnutls_setup(s) ? UV_ENOMEM : uv_read_start((uv_stream_t *)tcp, on_alloc, on_read);
  if (rc) {
    s->silent = true; /* failed: no on_closed, NULL to the caller */
    finish(s, "", false);
    return NULL;
  }
  /* Whole records leave in one write each: Nagle would only add delay to datagrams. */
  uv_tcp_nodelay(tcp, 1);
  if (handshake_timeout_ms) uv_timer_start(&s->timer, on_timer, handshake_timeout_ms, 0);
  handshake_step(s); /* client: ClientHello; server: waits (needs input, nothing to call) */
  flush(s);
  return s;
}

int tls_session_write(tls_session *s, const uint8_t *data, size_t len) {
  if (s->state != ST_HANDSHAKE && s->state != ST_READY) return UV_ECANCELED;
  if (tls_session_queued(s) > TLS_SESSION_MAX_QUEUED) return UV_ENOBUFS;
  if (len == 0) return 0;
  if (s->state == ST_HANDSHAKE) return buf_append(&s->plainq, data, len) ? UV_ENOMEM : 0;
  if (encrypt(s, data, len) != 0) return UV_ECANCELED; /* finish() was called */
  flush(s);
  return 0;
}

size_t tls_session_queued(const tls_session *s) {
  size_t fly = s->writing ? s->fly.len - s->fly_off : 0;
  return s->pend.len + fly + s->plainq.len;
}

void tls_session_close(tls_session *s) {
  if (s->state != ST_HANDSHAKE && s->state != ST_READY) return;
  snprintf(s->reason, sizeof s->reason, "closed");
  if (s->state == ST_HANDSHAKE) { /* no keys yet, so no close_notify: close at once */
    finish(s, "closed", false);
    return;
  }
  s->state = ST_CLOSING;
  (void)gnutls_bye(s->gs, GNUTLS_SHUT_WR); /* close_notify joins pend, behind our records */
  uv_timer_start(&s->timer, on_timer, CLOSE_LINGER_MS, 0);
  flush(s); /* then uv_shutdown once pend has left */
}

void tls_session_abort(tls_session *s) { finish(s, "aborted", true); }

int tls_session_peer(const tls_session *s, struct sockaddr_storage *out, socklen_t *len) {
  int n = (int)sizeof *out;
  int rc = uv_tcp_getpeername(s->tcp, (struct sockaddr *)out, &n);
  if (!rc && len) *len = (socklen_t)n;
  return rc;
}

const char *tls_session_alpn(const tls_session *s) { return s->alpn; }

bool tls_session_resumed(const tls_session *s) {
  return s->hs_done && gnutls_session_is_resumed(s->gs) != 0;
}
