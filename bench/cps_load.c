/* cps_load: connections per second through a SOCKS5 proxy, driven from C (a bench tool, never
 * installed; bench/socks_bench.sh runs it for the rows "... (C load)").
 *
 * Why not only Python: with the two cores saturated (20 connections at once), bench/socks_load.py's
 * client and its asyncio target, with the kernel's share of their sockets, took about 300 µs of
 * CPU per connection, more than ss-local and ss-server together (240 µs). That share is the same
 * on every path and dilutes what the proxies cost: a proxy much cheaper per connection shows up as
 * a far smaller gain in connections/s. This tool and the C echo target (tests/echo/echo_server)
 * bring it down to about 180 µs (docs/benchmarks.md, "Connections/s from a C load client").
 *
 * What one connection does, as socks_load.py's does: connect to the proxy, SOCKS5 greeting (no
 * authentication), CONNECT to an IPv4 literal, one byte out, one byte back (the echo of it),
 * close. Without --proxy the same exchange goes straight to the target (the direct row). Each of
 * --threads threads runs one connection at a time on blocking sockets, so --threads 1 is the
 * sequential figure.
 *
 * Usage: cps_load --target IP:PORT [--proxy IP:PORT] --seconds S [--threads K]
 * Prints one JSON line: connections, errors, seconds, per_s, p50_ms, p99_ms, threads, first_error
 * (the keys of socks_load.py cps). Exit status 2 on a usage error. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_THREADS 256
#define MAX_SAMPLES_PER_THREAD (1u << 22) /* latencies kept per thread: 16 MB of floats at most */
#define IO_TIMEOUT_S 10

typedef struct {
  struct sockaddr_in proxy, target;
  int use_proxy;
  double stop_at; /* CLOCK_MONOTONIC seconds */
} plan;

typedef struct {
  pthread_t th;
  const plan *p;
  uint64_t done, errors;
  float *lat; /* seconds per connection, in the order they completed */
  size_t nlat, cap;
  char first_error[200];
} worker;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int parse_addr(const char *s, struct sockaddr_in *out) {
  char host[64];
  const char *colon = strrchr(s, ':');
  if (!colon || (size_t)(colon - s) >= sizeof host) return -1;
  memcpy(host, s, (size_t)(colon - s));
  host[colon - s] = 0;
  char *end;
  long port = strtol(colon + 1, &end, 10);
  if (*end || port < 1 || port > 65535) return -1;
  memset(out, 0, sizeof *out);
  out->sin_family = AF_INET;
  out->sin_port = htons((uint16_t)port);
  return inet_pton(AF_INET, host, &out->sin_addr) == 1 ? 0 : -1;
}

static int send_all(int fd, const void *buf, size_t len) {
  const char *b = buf;
  while (len) {
    ssize_t k = send(fd, b, len, MSG_NOSIGNAL);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) return -1;
    b += k, len -= (size_t)k;
  }
  return 0;
}

/* Reads exactly len bytes; -1 on an error or an early end (errno 0 then). */
static int recv_exact(int fd, void *buf, size_t len) {
  char *b = buf;
  while (len) {
    ssize_t k = recv(fd, b, len, 0);
    if (k < 0 && errno == EINTR) continue;
    if (k == 0) errno = 0;
    if (k <= 0) return -1;
    b += k, len -= (size_t)k;
  }
  return 0;
}

/* The SOCKS5 exchange up to the CONNECT's success; NULL, or what failed. */
static const char *socks_connect(int fd, const struct sockaddr_in *target) {
  static const uint8_t greeting[3] = {5, 1, 0};
  uint8_t r[262];
  if (send_all(fd, greeting, sizeof greeting)) return "sending the greeting";
  if (recv_exact(fd, r, 2)) return "reading the method reply";
  if (r[0] != 5 || r[1] != 0) return "the proxy refused 'no authentication'";
  uint8_t req[10] = {5, 1, 0, 1};
  memcpy(req + 4, &target->sin_addr, 4);
  memcpy(req + 8, &target->sin_port, 2);
  if (send_all(fd, req, sizeof req)) return "sending the CONNECT";
  if (recv_exact(fd, r, 4)) return "reading the CONNECT reply";
  if (r[1] != 0) return "the CONNECT failed (SOCKS reply code not 0)";
  size_t rest = r[3] == 1 ? 4 + 2 : r[3] == 4 ? 16 + 2 : 0;
  if (r[3] == 3) {
    if (recv_exact(fd, r, 1)) return "reading the CONNECT reply";
    rest = (size_t)r[0] + 2;
  }
  if (!rest) return "the CONNECT reply has an unknown address type";
  if (recv_exact(fd, r, rest)) return "reading the CONNECT reply";
  return NULL;
}

/* One connection, start to close; NULL, or what failed. */
static const char *one_exchange(const plan *p) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return "socket";
  const char *what = NULL;
  int one = 1;
  struct timeval tv = {IO_TIMEOUT_S, 0};
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  const struct sockaddr_in *to = p->use_proxy ? &p->proxy : &p->target;
  if (connect(fd, (const struct sockaddr *)to, sizeof *to))
    what = p->use_proxy ? "connecting to the proxy" : "connecting to the target";
  if (!what && p->use_proxy) what = socks_connect(fd, &p->target);
  uint8_t b = 'P';
  if (!what && send_all(fd, &b, 1)) what = "sending the byte";
  if (!what && recv_exact(fd, &b, 1)) what = "reading the answer byte";
  close(fd);
  return what;
}

static void note_error(worker *w, const char *what) {
  w->errors++;
  if (!w->first_error[0])
    snprintf(w->first_error, sizeof w->first_error, "%s: %s", what,
             errno ? strerror(errno) : "connection closed");
}

static void keep_latency(worker *w, double seconds) {
  if (w->nlat == w->cap) {
    if (w->cap >= MAX_SAMPLES_PER_THREAD) return;
    size_t cap = w->cap ? w->cap * 2 : 4096;
    float *lat = realloc(w->lat, cap * sizeof *lat);
    if (!lat) return;
    w->lat = lat, w->cap = cap;
  }
  w->lat[w->nlat++] = (float)seconds;
}

static void *run_worker(void *arg) {
  worker *w = arg;
  for (;;) {
    double t = now_s();
    if (t >= w->p->stop_at) return NULL;
    errno = 0;
    const char *what = one_exchange(w->p);
    if (what) {
      note_error(w, what);
      struct timespec pause = {0, 10 * 1000 * 1000}; /* as socks_load.py: 10 ms after a failure */
      nanosleep(&pause, NULL);
      continue;
    }
    w->done++;
    keep_latency(w, now_s() - t);
  }
}

static int cmp_float(const void *a, const void *b) {
  float x = *(const float *)a, y = *(const float *)b;
  return (x > y) - (x < y);
}

static void print_json_string(const char *s) {
  putchar('"');
  for (; *s; s++) {
    if (*s == '"' || *s == '\\') putchar('\\');
    putchar((unsigned char)*s < 0x20 ? ' ' : *s);
  }
  putchar('"');
}

static int usage(void) {
  fprintf(stderr,
          "usage: cps_load --target IP:PORT [--proxy IP:PORT] --seconds S "
          "[--threads K (1-%d)]\n",
          MAX_THREADS);
  return 2;
}

int main(int argc, char **argv) {
  plan p;
  memset(&p, 0, sizeof p);
  double seconds = 0;
  long threads = 1;
  int have_target = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    const char *k = argv[i], *v = argv[i + 1];
    if (!strcmp(k, "--target")) {
      if (parse_addr(v, &p.target)) return fprintf(stderr, "bad --target %s\n", v), usage();
      have_target = 1;
    } else if (!strcmp(k, "--proxy")) {
      if (parse_addr(v, &p.proxy)) return fprintf(stderr, "bad --proxy %s\n", v), usage();
      p.use_proxy = 1;
    } else if (!strcmp(k, "--seconds")) {
      seconds = strtod(v, NULL);
    } else if (!strcmp(k, "--threads")) {
      threads = strtol(v, NULL, 10);
    } else {
      return fprintf(stderr, "unknown option %s\n", k), usage();
    }
  }
  if (argc % 2 == 0 || !have_target || seconds <= 0 || seconds > 3600 || threads < 1 ||
      threads > MAX_THREADS)
    return usage();

  worker *w = calloc((size_t)threads, sizeof *w);
  if (!w) return fprintf(stderr, "out of memory\n"), 1;
  double t0 = now_s();
  p.stop_at = t0 + seconds;
  for (long i = 0; i < threads; i++) {
    w[i].p = &p;
    if (pthread_create(&w[i].th, NULL, run_worker, &w[i]))
      return fprintf(stderr, "cannot start thread %ld\n", i), 1;
  }
  uint64_t done = 0, errors = 0;
  size_t nlat = 0;
  const char *first_error = "";
  for (long i = 0; i < threads; i++) {
    pthread_join(w[i].th, NULL);
    done += w[i].done, errors += w[i].errors, nlat += w[i].nlat;
    if (!first_error[0] && w[i].first_error[0]) first_error = w[i].first_error;
  }
  double dt = now_s() - t0;
  float *all = malloc((nlat ? nlat : 1) * sizeof *all);
  if (!all) return fprintf(stderr, "out of memory\n"), 1;
  size_t n = 0;
  for (long i = 0; i < threads; i++) {
    memcpy(all + n, w[i].lat, w[i].nlat * sizeof *all);
    n += w[i].nlat;
  }
  qsort(all, n, sizeof *all, cmp_float);
  printf("{\"connections\": %llu, \"errors\": %llu, \"seconds\": %.6f, \"per_s\": %.3f, ",
         (unsigned long long)done, (unsigned long long)errors, dt, (double)done / dt);
  if (n)
    printf("\"p50_ms\": %.4f, \"p99_ms\": %.4f, ", all[n / 2] * 1e3, all[(size_t)(n * 0.99)] * 1e3);
  else
    printf("\"p50_ms\": null, \"p99_ms\": null, ");
  printf("\"threads\": %ld, \"first_error\": ", threads);
  if (first_error[0])
    print_json_string(first_error);
  else
    printf("null");
  printf("}\n");
  for (long i = 0; i < threads; i++) free(w[i].lat);
  free(w), free(all);
  return 0;
}
