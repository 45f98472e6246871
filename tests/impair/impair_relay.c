/* impair_relay: a userspace UDP impairment relay for tests and benchmarks (this machine has no
 * netem). One client, one upstream server; each direction impaired on its own (loss, duplication,
 * reordering, delay and jitter, rate limit with a bounded queue, blackhole, an MTU black hole) and
 * NAT rebinding on demand. Settings from the command line, changed at run time through a line
 * protocol (impair_control.c). Run with --help for everything.
 *
 * Design: one thread, one poll loop; recvmmsg/sendmmsg batches on Linux; held datagrams in a
 * fixed slot pool ordered by a min-heap (impair_engine.c); signals through a self-pipe. */
#define _GNU_SOURCE /* ppoll */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "impair_control.h"
#include "impair_relay.h"
#include "impair_settings.h"

#define PUMP_BATCHES                                                          \
  8 /* receive batches per socket per loop turn: the other side gets its turn \
     */

static int signal_pipe[2] = {-1, -1};

static void on_signal(int sig) {
  int saved = errno;
  unsigned char b = (unsigned char)sig;
  (void)!write(signal_pipe[1], &b, 1);
  errno = saved;
}

static uint64_t mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---- sending -----------------------------------------------------------------------------------
 */

static void relay_flush(struct relay *r, int dir) {
  unsigned n = r->tx_n[dir];
  if (n == 0) return;
  uint8_t sent[TX_BATCH] = {0};
  struct impair_counters *c = &r->eng.cnt[dir];
  bool no_client = dir == DIR_DOWN && !r->have_client;
  if (!no_client) {
    int fd = dir == DIR_UP ? r->upstream_fd : r->client_fd;
    net_send_batch(fd, dir == DIR_UP ? NULL : &r->client, r->tx[dir], n, sent);
  }
  for (unsigned i = 0; i < n; i++) {
    const struct tx_entry *e = &r->tx[dir][i];
    if (sent[i]) {
      c->forwarded++;
      c->bytes_forwarded += e->len;
    } else if (no_client) {
      c->dropped_noclient++;
    } else {
      c->dropped_send++;
    }
    engine_release(&r->eng, e->slot); /* the slot (if any) comes back to the pool here */
  }
  r->tx_n[dir] = 0;
}

static void flush_all(struct relay *r) {
  relay_flush(r, DIR_UP);
  relay_flush(r, DIR_DOWN);
}

/* The engine hands a datagram over for sending (and, with slot >= 0, the slot with it). */
static void on_emit(void *ctx, int dir, const uint8_t *data, uint32_t len, int32_t slot) {
  struct relay *r = ctx;
  if (r->tx_n[dir] == TX_BATCH) relay_flush(r, dir);
  r->tx[dir][r->tx_n[dir]++] = (struct tx_entry){.data = data, .len = len, .slot = slot};
}

/* ---- receiving ---------------------------------------------------------------------------------
 */

static void pump(struct relay *r, int dir) {
  int fd = dir == DIR_UP ? r->client_fd : r->upstream_fd;
  for (int k = 0; k < PUMP_BATCHES; k++) {
    int n = net_recv_batch(fd, &r->rx);
    if (n <= 0) return;
    uint64_t now = mono_ns();
    engine_run(&r->eng, now); /* what is due leaves before what just came */
    for (int i = 0; i < n; i++) {
      if (dir == DIR_UP && (!r->have_client || !net_addr_equal(&r->client, &r->rx.from[i]))) {
        r->client = r->rx.from[i]; /* answers go to the client's last source address */
        r->have_client = true;
      }
      engine_input(&r->eng, dir, r->rx.buf[i], r->rx.len[i], now);
    }
    flush_all(r); /* before the receive buffers are reused */
    if (n < RX_BATCH) return;
  }
}

/* Answers to the upstream socket a rebind left behind: like a NAT mapping that expired. */
static void drain_stale(struct relay *r) {
  struct impair_counters *c = &r->eng.cnt[DIR_DOWN];
  for (int k = 0; k < PUMP_BATCHES; k++) {
    int n = net_recv_batch(r->stale_fd, &r->rx);
    if (n <= 0) return;
    for (int i = 0; i < n; i++) {
      c->received++;
      c->bytes_received += r->rx.len[i];
      c->dropped_stale++;
    }
  }
}

/* ---- upstream sockets, stats -------------------------------------------------------------------
 */

static int open_upstream(struct relay *r) {
  return net_udp_socket(r->upstream.ss.ss_family, r->have_upstream_bind ? &r->upstream_bind : NULL,
                        &r->upstream);
}

int relay_rebind(struct relay *r, char *err, size_t errcap) {
  relay_flush(r, DIR_UP);
  int fd = open_upstream(r);
  if (fd < 0) {
    snprintf(err, errcap, "cannot open a new upstream socket: %s", strerror(errno));
    return -1;
  }
  if (r->stale_fd >= 0) close(r->stale_fd);
  r->stale_fd = r->upstream_fd;
  r->upstream_fd = fd;
  r->rebinds++;
  return 0;
}

int relay_upstream_port(struct relay *r) {
  struct net_addr local;
  return net_local_addr(r->upstream_fd, &local) == 0 ? net_addr_port(&local) : 0;
}

void relay_stats_json(struct relay *r, const char *event, char *out, size_t cap) {
  char client[80] = "none";
  if (r->have_client) net_format_addr(&r->client, client, sizeof client);
  size_t n = (size_t)snprintf(out, cap, "{\"event\":\"%s\",\"up\":", event);
  n += impair_counters_json(&r->eng.cnt[DIR_UP], r->eng.held[DIR_UP], out + n, cap - n);
  n += (size_t)snprintf(out + n, cap - n, ",\"down\":");
  n += impair_counters_json(&r->eng.cnt[DIR_DOWN], r->eng.held[DIR_DOWN], out + n, cap - n);
  if (n < cap)
    snprintf(out + n, cap - n, ",\"rebinds\":%" PRIu64 ",\"upstream_port\":%d,\"client\":\"%s\"}",
             r->rebinds, relay_upstream_port(r), client);
}

void relay_reset_counters(struct relay *r) {
  memset(r->eng.cnt, 0, sizeof r->eng.cnt);
  r->rebinds = 0;
}

static void print_stats(struct relay *r, const char *event) {
  char buf[RELAY_JSON_MAX];
  relay_stats_json(r, event, buf, sizeof buf);
  printf("%s\n", buf);
  fflush(stdout);
}

/* ---- command line ------------------------------------------------------------------------------
 */

static void usage(FILE *f) {
  fprintf(
      f,
      "usage: impair_relay --listen ADDR:PORT --upstream ADDR:PORT [options] [settings]\n"
      "\n"
      "A UDP relay that impairs traffic, for tests (no netem needed). Datagrams from any\n"
      "client to --listen go to --upstream from one ephemeral port (\"up\"); the server's\n"
      "answers go back to the client's last source address (\"down\").\n"
      "\n"
      "options:\n"
      "  -l, --listen ADDR:PORT    client side (port 0: ephemeral, see the ready line)\n"
      "  -u, --upstream ADDR:PORT  the server; IPv6 as [ADDR]:PORT\n"
      "  --upstream-bind IP        source address of the upstream sockets\n"
      "  --control PATH            control channel on a Unix stream socket\n"
      "  --stdin                   control channel on stdin, answers on stdout; the relay\n"
      "                            exits at end of input\n"
      "  --seed N                  seed of the random choices (default: from the clock);\n"
      "                            the same seed and input give the same choices\n"
      "  --max-held N              datagrams held at once (delay, reorder, rate queue),\n"
      "                            default 16384 (2 KiB slots) plus N/64 (min 16) slots\n"
      "                            for datagrams above 2 KiB; beyond: dropped_pool\n"
      "  -h, --help                this text\n"
      "\n"
      "settings, on the command line as --DIR.KEY VALUE, --DIR.KEY=VALUE or\n"
      "--set DIR.KEY=VALUE; DIR is up, down or both:\n%s"
      "\n"
      "control commands (one per line, one answer line: ok..., error ... or JSON):\n%s"
      "\n"
      "output on stdout, one JSON object per line:\n"
      "  {\"event\":\"ready\",\"listen\":...,\"upstream\":...,\"upstream_port\":...,\"seed\":...}\n"
      "  {\"event\":\"stats\",...}   on SIGUSR1 (and the answer to \"stats\")\n"
      "  {\"event\":\"final\",...}   at exit (SIGTERM, SIGINT, shutdown, end of --stdin)\n"
      "stats: per direction (up, down) received, forwarded, dropped (the sum of the\n"
      "dropped_* below), dropped_loss, dropped_blackhole, dropped_mtu, dropped_queue,\n"
      "dropped_pool, dropped_send (refused by the kernel), dropped_noclient (down before\n"
      "any client), dropped_stale (down, to the socket before the last rebind), duplicated,\n"
      "reordered, delayed, held (in the relay right now), bytes_received, bytes_forwarded;\n"
      "then rebinds, upstream_port, client. Always:\n"
      "  received + duplicated = forwarded + dropped + held\n",
      impair_setting_help, control_help);
}

struct options {
  const char *listen, *upstream, *upstream_bind, *control;
  bool use_stdin, have_seed;
  uint64_t seed;
  long max_held;
};

/* "--up.loss" style: a setting name after the dashes. */
static int is_setting_flag(const char *arg) {
  return strncmp(arg, "--up.", 5) == 0 || strncmp(arg, "--down.", 7) == 0 ||
         strncmp(arg, "--both.", 7) == 0;
}

static int apply_setting_arg(struct impair_settings *set, const char *name_value,
                             const char *value) {
  char name[64], err[128];
  const char *eq = strchr(name_value, '=');
  size_t len = eq ? (size_t)(eq - name_value) : strlen(name_value);
  if (len >= sizeof name) len = sizeof name - 1;
  memcpy(name, name_value, len);
  name[len] = 0;
  if (eq) value = eq + 1;
  if (impair_setting_apply(set, name, value, err, sizeof err) != 0) {
    fprintf(stderr, "impair_relay: %s: %s\n", name, err);
    return -1;
  }
  return 0;
}

/* Returns 0 to run, 1 to exit successfully (--help), -1 on a usage error. */
static int parse_args(int argc, char **argv, struct options *o, struct impair_settings *set) {
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *next = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
      usage(stdout);
      return 1;
    } else if (!strcmp(a, "--stdin")) {
      o->use_stdin = true;
    } else if (is_setting_flag(a)) {
      if (!strchr(a, '=') && !next) goto missing;
      if (apply_setting_arg(set, a + 2, next) != 0) return -1;
      if (!strchr(a, '=')) i++;
    } else if (!next) {
      goto missing;
    } else if (!strcmp(a, "-l") || !strcmp(a, "--listen")) {
      o->listen = argv[++i];
    } else if (!strcmp(a, "-u") || !strcmp(a, "--upstream")) {
      o->upstream = argv[++i];
    } else if (!strcmp(a, "--upstream-bind")) {
      o->upstream_bind = argv[++i];
    } else if (!strcmp(a, "--control")) {
      o->control = argv[++i];
    } else if (!strcmp(a, "--set")) {
      if (!strchr(next, '=')) goto missing;
      if (apply_setting_arg(set, argv[++i], NULL) != 0) return -1;
    } else if (!strcmp(a, "--seed")) {
      char *end;
      o->seed = strtoull(argv[++i], &end, 0);
      if (*end || !*argv[i]) goto bad;
      o->have_seed = true;
    } else if (!strcmp(a, "--max-held")) {
      char *end;
      o->max_held = strtol(argv[++i], &end, 10);
      if (*end || o->max_held < 1 || o->max_held > (1 << 22)) goto bad;
    } else {
      fprintf(stderr, "impair_relay: unknown option %s (see --help)\n", a);
      return -1;
    }
    continue;
  missing:
    fprintf(stderr, "impair_relay: %s needs a value (see --help)\n", a);
    return -1;
  bad:
    fprintf(stderr, "impair_relay: bad value for %s: %s\n", a, argv[i]);
    return -1;
  }
  if (!o->listen || !o->upstream) {
    fprintf(stderr, "impair_relay: --listen and --upstream are required (see --help)\n");
    return -1;
  }
  return 0;
}

/* ---- set-up and the loop -----------------------------------------------------------------------
 */

static int open_sockets(struct relay *r, const struct options *o) {
  if (net_parse_addr(o->listen, &r->listen) != 0) {
    fprintf(stderr, "impair_relay: bad --listen address %s\n", o->listen);
    return -1;
  }
  if (net_parse_addr(o->upstream, &r->upstream) != 0) {
    fprintf(stderr, "impair_relay: bad --upstream address %s\n", o->upstream);
    return -1;
  }
  if (o->upstream_bind) {
    char with_port[300];
    snprintf(with_port, sizeof with_port, strchr(o->upstream_bind, ':') ? "[%s]:0" : "%s:0",
             o->upstream_bind);
    if (net_parse_addr(with_port, &r->upstream_bind) != 0) {
      fprintf(stderr, "impair_relay: bad --upstream-bind address %s\n", o->upstream_bind);
      return -1;
    }
    r->have_upstream_bind = true;
  }
  r->client_fd = net_udp_socket(r->listen.ss.ss_family, &r->listen, NULL);
  if (r->client_fd < 0 || net_local_addr(r->client_fd, &r->listen) != 0) {
    fprintf(stderr, "impair_relay: cannot listen on %s: %s\n", o->listen, strerror(errno));
    return -1;
  }
  r->upstream_fd = open_upstream(r);
  if (r->upstream_fd < 0) {
    fprintf(stderr, "impair_relay: cannot open the upstream socket to %s: %s\n", o->upstream,
            strerror(errno));
    return -1;
  }
  return 0;
}

static int setup_signals(void) {
  if (pipe(signal_pipe) != 0) return -1;
  for (int i = 0; i < 2; i++) {
    fcntl(signal_pipe[i], F_SETFL, O_NONBLOCK);
    fcntl(signal_pipe[i], F_SETFD, FD_CLOEXEC);
  }
  struct sigaction sa = {.sa_handler = on_signal};
  sigemptyset(&sa.sa_mask);
  int sigs[] = {SIGTERM, SIGINT, SIGHUP, SIGUSR1};
  for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) sigaction(sigs[i], &sa, NULL);
  signal(SIGPIPE, SIG_IGN);
  return 0;
}

static void wait_events(struct pollfd *pfd, int n, uint64_t due, uint64_t now) {
  if (due == UINT64_MAX) {
    poll(pfd, (nfds_t)n, -1);
    return;
  }
  uint64_t wait = due > now ? due - now : 0;
#if defined(__linux__) && !defined(IMPAIR_PORTABLE)
  struct timespec ts = {.tv_sec = (time_t)(wait / 1000000000ull),
                        .tv_nsec = (long)(wait % 1000000000ull)};
  ppoll(pfd, (nfds_t)n, &ts, NULL);
#else
  poll(pfd, (nfds_t)n, (int)((wait + 999999) / 1000000));
#endif
}

/* Reads the self-pipe; returns 1 if the relay should stop. */
static int handle_signals(struct relay *r) {
  unsigned char sig[16];
  ssize_t n;
  int stop = 0;
  while ((n = read(signal_pipe[0], sig, sizeof sig)) > 0)
    for (ssize_t i = 0; i < n; i++) {
      if (sig[i] == SIGUSR1)
        print_stats(r, "stats");
      else
        stop = 1;
    }
  return stop;
}

enum { PFD_SIGNAL, PFD_CLIENT, PFD_UPSTREAM, PFD_STALE, PFD_CONTROL };

static void run(struct relay *r, struct control *ctl, bool use_stdin) {
  struct pollfd pfd[PFD_CONTROL + CONTROL_MAX_CLIENTS + 2];
  for (;;) {
    if (r->shutdown || (use_stdin && ctl->stdin_eof)) return;
    pfd[PFD_SIGNAL] = (struct pollfd){.fd = signal_pipe[0], .events = POLLIN};
    pfd[PFD_CLIENT] = (struct pollfd){.fd = r->client_fd, .events = POLLIN};
    pfd[PFD_UPSTREAM] = (struct pollfd){.fd = r->upstream_fd, .events = POLLIN};
    pfd[PFD_STALE] = (struct pollfd){.fd = r->stale_fd, .events = POLLIN};
    int nctl = control_fill_pollfds(ctl, pfd + PFD_CONTROL, CONTROL_MAX_CLIENTS + 2);
    wait_events(pfd, PFD_CONTROL + nctl, engine_next_due(&r->eng), mono_ns());
    if ((pfd[PFD_SIGNAL].revents & POLLIN) && handle_signals(r)) return;
    if (pfd[PFD_CLIENT].revents) pump(r, DIR_UP);
    if (pfd[PFD_UPSTREAM].revents) pump(r, DIR_DOWN);
    if (r->stale_fd >= 0 && pfd[PFD_STALE].revents) drain_stale(r);
    engine_run(&r->eng, mono_ns());
    flush_all(r);
    control_serve(ctl, pfd + PFD_CONTROL, nctl, r);
    engine_run(&r->eng, mono_ns()); /* e.g. a rate limit just lifted: its queue leaves now */
    flush_all(r);
  }
}

static void print_ready(struct relay *r, const struct options *o, uint64_t seed) {
  char listen[80], upstream[80];
  net_format_addr(&r->listen, listen, sizeof listen);
  net_format_addr(&r->upstream, upstream, sizeof upstream);
  printf(
      "{\"event\":\"ready\",\"listen\":\"%s\",\"listen_port\":%d,\"upstream\":\"%s\","
      "\"upstream_port\":%d,\"seed\":%" PRIu64 ",\"control\":\"%s\"}\n",
      listen, net_addr_port(&r->listen), upstream, relay_upstream_port(r), seed,
      o->control ? o->control : "");
  fflush(stdout);
}

int main(int argc, char **argv) {
  static struct relay r; /* large (transmit lists): not on the stack */
  struct options o = {.max_held = 16384};
  struct impair_settings set[DIR_COUNT];
  for (int d = 0; d < DIR_COUNT; d++) impair_settings_default(&set[d]);
  int pa = parse_args(argc, argv, &o, set);
  if (pa != 0) return pa > 0 ? 0 : 2;

  uint64_t seed = o.have_seed ? o.seed : (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
  int32_t n_big = (int32_t)(o.max_held / 64 < 16 ? 16 : o.max_held / 64);
  r.client_fd = r.upstream_fd = r.stale_fd = -1;
  if (engine_init(&r.eng, (int32_t)o.max_held, n_big, seed, on_emit, &r) != 0 ||
      rx_batch_init(&r.rx) != 0) {
    fprintf(stderr, "impair_relay: out of memory\n");
    return 1;
  }
  memcpy(r.eng.set, set, sizeof set);
  struct control ctl;
  control_init(&ctl);
  if (setup_signals() != 0 || open_sockets(&r, &o) != 0) return 1;
  if (o.control && control_listen(&ctl, o.control) != 0) {
    fprintf(stderr, "impair_relay: cannot listen on control socket %s: %s\n", o.control,
            strerror(errno));
    return 1;
  }
  if (o.use_stdin) control_use_stdin(&ctl);
  print_ready(&r, &o, seed);

  run(&r, &ctl, o.use_stdin);

  flush_all(&r);
  print_stats(&r, "final");
  control_close(&ctl);
  close(r.client_fd);
  close(r.upstream_fd);
  if (r.stale_fd >= 0) close(r.stale_fd);
  engine_free(&r.eng);
  rx_batch_free(&r.rx);
  return 0;
}
