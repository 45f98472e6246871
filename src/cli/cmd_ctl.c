/* `awgproxy ctl`: asks a running daemon's control API ([Control] Listen) and prints the answer,
 * readable by people or (--json) as the raw JSON document. */
#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "config/config.h"
#include "observe/json.h"

#define CTL_DEFAULT_SOCKET "/run/awgproxy.sock"
#define CTL_TIMEOUT_S 5
#define CTL_MAX_RESPONSE (4u << 20)

static const char ctl_usage[] =
    "Usage: awgproxy ctl [-s SOCKET | --connect HOST:PORT | -c FILE] [--json] COMMAND\n"
    "Asks a running awgproxy through its control API ([Control] Listen).\n\n"
    "Commands:\n"
    "  status   tunnel state, peers (last handshake, endpoint, transfer), active streams\n"
    "  peers    per-peer detail: packets, handshakes, allowed IPs\n"
    "  streams  active streams by kind, SOCKS failures by reply\n"
    "  reload   reload the config file (like SIGHUP): peers added, removed, changed; keys that\n"
    "           need a restart; the file's errors if it was refused (nothing changed then)\n"
    "A client with several servers (several -c):\n"
    "  servers         each server: endpoint, state, RTT, SOCKS service, which is selected\n"
    "  connect [NAME]  send new streams to NAME, or (no NAME) to the best server (auto)\n"
    "  disconnect      end every stream; new ones fail (SOCKS 0x01) until `connect`\n\n"
    "Where to connect (default " CTL_DEFAULT_SOCKET
    "):\n"
    "  -s, --socket PATH     a unix socket\n"
    "  --connect HOST:PORT   a loopback TCP address\n"
    "  -c, --config FILE     whatever FILE's [Control] Listen says\n"
    "  --json                print the daemon's JSON answer as it is\n"
    "Exit status: 0 success, 1 the daemon refused or could not be reached, 2 usage error.\n";

typedef struct {
  const char *socket_path;
  const char *connect;
  const char *config;
  const char *command;
  const char *arg; /* connect's server name */
  bool json;
} ctl_opts;

static int usage_error(const char *fmt, const char *arg) {
  fputs("awgproxy ctl: ", stderr);
  fprintf(stderr, fmt, arg);
  fputc('\n', stderr);
  fputs(ctl_usage, stderr);
  return 2;
}

static int parse_args(int argc, char **argv, ctl_opts *o) {
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i];
    const char **slot = NULL;
    if (!strcmp(a, "-s") || !strcmp(a, "--socket"))
      slot = &o->socket_path;
    else if (!strcmp(a, "--connect"))
      slot = &o->connect;
    else if (!strcmp(a, "-c") || !strcmp(a, "--config"))
      slot = &o->config;
    if (slot) {
      if (i + 1 >= argc) return usage_error("%s needs an argument", a);
      *slot = argv[++i];
    } else if (!strncmp(a, "--socket=", 9)) {
      o->socket_path = a + 9;
    } else if (!strncmp(a, "--connect=", 10)) {
      o->connect = a + 10;
    } else if (!strncmp(a, "--config=", 9)) {
      o->config = a + 9;
    } else if (!strcmp(a, "--json")) {
      o->json = true;
    } else if (a[0] == '-') {
      return usage_error("unknown option '%s'", a);
    } else if (o->command && !strcmp(o->command, "connect") && !o->arg) {
      o->arg = a;
    } else if (o->command) {
      return usage_error("one command at a time ('%s' is extra)", a);
    } else {
      o->command = a;
    }
  }
  if (!o->command)
    return usage_error("%s",
                       "which command? status, peers, streams, reload, servers, connect or "
                       "disconnect");
  if (!!o->socket_path + !!o->connect + !!o->config > 1)
    return usage_error("%s", "-s, --connect and -c are alternatives; give one");
  return 0;
}

/* ---- connecting --------------------------------------------------------------------------- */

static void set_timeouts(int fd) {
  struct timeval tv = {CTL_TIMEOUT_S, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

static int connect_unix(const char *path, char *err, size_t errlen) {
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  if (strlen(path) >= sizeof sa.sun_path)
    return snprintf(err, errlen, "socket path too long: %s", path), -1;
  strcpy(sa.sun_path, path);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return snprintf(err, errlen, "socket: %s", strerror(errno)), -1;
  set_timeouts(fd);
  if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
    int e = errno;
    close(fd);
    snprintf(err, errlen, "cannot connect to %s: %s%s", path, strerror(e),
             e == ENOENT || e == ECONNREFUSED ? " (is awgproxy running with [Control] Listen?)"
             : e == EACCES                    ? " (the socket is mode 0600: run as its owner)"
                                              : "");
    errno = e; /* ctl_config_request tells "not running" from other failures */
    return -1;
  }
  return fd;
}

static int connect_tcp(const cfg_hostport *hp, char *err, size_t errlen) {
  errno = 0;
  struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICHOST}, *ai = NULL;
  char port[8];
  snprintf(port, sizeof port, "%u", hp->port);
  int rc = getaddrinfo(hp->host, port, &hints, &ai);
  if (rc) return snprintf(err, errlen, "%s: %s", hp->host, gai_strerror(rc)), -1;
  int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd >= 0) {
    set_timeouts(fd);
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
      char a[300];
      cfg_format_hostport(hp, a, sizeof a);
      int e = errno;
      snprintf(err, errlen, "cannot connect to %s: %s", a, strerror(e));
      close(fd);
      errno = e;
      fd = -1;
    }
  } else {
    snprintf(err, errlen, "socket: %s", strerror(errno));
  }
  freeaddrinfo(ai);
  return fd;
}

/* Where to connect: -s, --connect, -c FILE's [Control] Listen, or the default socket. */
static int open_control(const ctl_opts *o, char *err, size_t errlen) {
  if (o->connect) {
    cfg_hostport hp;
    if (cfg_parse_hostport(o->connect, &hp, err, errlen) != 0) return -1;
    if (!hp.host_is_ip) return snprintf(err, errlen, "--connect needs an IP address and port"), -1;
    return connect_tcp(&hp, err, errlen);
  }
  if (!o->config)
    return connect_unix(o->socket_path ? o->socket_path : CTL_DEFAULT_SOCKET, err, errlen);
  app_config c;
  diag_list d = {0};
  config_init(&c);
  int fd = -1;
  if (config_load_file(&c, o->config, &d) != 0) {
    diag_list_print(&d, o->config, stderr);
    snprintf(err, errlen, "%s is not usable; `awgproxy check -c %s` explains", o->config,
             o->config);
  } else if (c.control_path[0]) {
    fd = connect_unix(c.control_path, err, errlen);
  } else if (c.has_control_tcp) {
    fd = connect_tcp(&c.control_listen, err, errlen);
  } else {
    snprintf(err, errlen, "%s has no [Control] Listen; the daemon has no control API", o->config);
    errno = ENOTSUP;
  }
  int e = errno;
  diag_list_free(&d);
  config_free(&c);
  errno = e;
  return fd;
}

/* ---- one request -------------------------------------------------------------------------- */

typedef struct {
  int status;
  char *data; /* the whole response, NUL-terminated */
  const char *body;
  size_t body_len;
} ctl_response;

static int send_all(int fd, const char *p, size_t n) {
  while (n) {
    ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return -1;
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

static int request(int fd, const char *method, const char *path, const char *body,
                   ctl_response *res, char *err, size_t errlen) {
  char req[512], clen[48] = "";
  if (!strcmp(method, "POST")) snprintf(clen, sizeof clen, "Content-Length: %zu\r\n", strlen(body));
  int n = snprintf(req, sizeof req,
                   "%s %s HTTP/1.1\r\nHost: awgproxy\r\nAccept: application/json\r\n"
                   "Connection: close\r\n%s\r\n%s",
                   method, path, clen, body);
  if (n < 0 || (size_t)n >= sizeof req) return snprintf(err, errlen, "request too long"), -1;
  if (send_all(fd, req, (size_t)n) != 0)
    return snprintf(err, errlen, "cannot send the request: %s", strerror(errno)), -1;
  size_t len = 0, cap = 16384;
  char *buf = malloc(cap);
  for (;;) {
    if (!buf) return snprintf(err, errlen, "out of memory"), -1;
    if (len + 1 >= cap) {
      if (cap >= CTL_MAX_RESPONSE)
        return free(buf), snprintf(err, errlen, "response too large"), -1;
      char *nb = realloc(buf, cap *= 2);
      if (!nb) free(buf);
      buf = nb;
      continue;
    }
    ssize_t r = recv(fd, buf + len, cap - len - 1, 0);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      free(buf);
      return snprintf(err, errlen, "no answer from the daemon: %s",
                      errno == EAGAIN ? "timed out" : strerror(errno)),
             -1;
    }
    if (r == 0) break;
    len += (size_t)r;
  }
  buf[len] = '\0';
  int status = 0;
  char *head_end = strstr(buf, "\r\n\r\n");
  if (sscanf(buf, "HTTP/1.%*d %d", &status) != 1 || !head_end || status < 100 || status > 599) {
    free(buf);
    return snprintf(err, errlen, "the daemon's answer is not HTTP"), -1;
  }
  res->status = status;
  res->data = buf;
  res->body = head_end + 4;
  res->body_len = len - (size_t)(res->body - buf);
  return 0;
}

int ctl_config_request(const char *config, const char *method, const char *path, int *status,
                       char **body, char *err, size_t errlen) {
  ctl_opts o = {.config = config};
  errno = 0;
  int fd = open_control(&o, err, errlen);
  if (fd < 0)
    return errno == ENOENT || errno == ECONNREFUSED ? CTL_NOT_RUNNING
           : errno == ENOTSUP                       ? CTL_NO_CONTROL
                                                    : -1;
  ctl_response res = {0};
  int rc = request(fd, method, path, "", &res, err, errlen);
  close(fd);
  if (rc) return -1;
  *status = res.status;
  *body = malloc(res.body_len + 1);
  if (*body) {
    memcpy(*body, res.body, res.body_len);
    (*body)[res.body_len] = '\0';
  }
  free(res.data);
  return *body ? 0 : (snprintf(err, errlen, "out of memory"), -1);
}

/* ---- printing ----------------------------------------------------------------------------- */

static void human_bytes(double v, char *out, size_t n) {
  static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  int u = 0;
  while (v >= 1024 && u < 5) v /= 1024, u++;
  if (u == 0)
    snprintf(out, n, "%.0f B", v);
  else
    snprintf(out, n, "%.2f %s", v, units[u]);
}

static void human_duration(double s, char *out, size_t n) {
  if (s < 60) return (void)snprintf(out, n, "%.1f s", s);
  uint64_t t = (uint64_t)s;
  if (t < 3600) return (void)snprintf(out, n, "%um%02us", (unsigned)(t / 60), (unsigned)(t % 60));
  if (t < 86400)
    return (void)snprintf(out, n, "%uh%02um%02us", (unsigned)(t / 3600), (unsigned)(t / 60 % 60),
                          (unsigned)(t % 60));
  snprintf(out, n, "%ud%02uh%02um", (unsigned)(t / 86400), (unsigned)(t / 3600 % 24),
           (unsigned)(t / 60 % 60));
}

static void print_handshake(const json_value *peer) {
  const json_value *hs = json_get(peer, "last_handshake");
  if (!hs || hs->type != JSON_NUMBER) {
    puts("  latest handshake: never");
    return;
  }
  time_t sec = (time_t)hs->number;
  int ms = (int)((hs->number - (double)sec) * 1000 + 0.5);
  if (ms >= 1000) sec++, ms -= 1000;
  struct tm tm;
  gmtime_r(&sec, &tm);
  char when[40], ago[40];
  strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &tm);
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  double d = (double)now.tv_sec + now.tv_nsec / 1e9 - hs->number;
  human_duration(d < 0 ? 0 : d, ago, sizeof ago);
  printf("  latest handshake: %s.%03d UTC (%s ago)\n", when, ms, ago);
}

static void print_peer(const json_value *p, bool detail) {
  const char *ep = json_get_string(p, "endpoint", NULL);
  printf("peer %s: session %s, endpoint %s, carrier %s\n", json_get_string(p, "peer", "?"),
         json_get_bool(p, "has_session", false) ? "up" : "none", ep ? ep : "(not known yet)",
         json_get_string(p, "carrier", "udp"));
  print_handshake(p);
  const char *transport = json_get_string(p, "transport", NULL);
  const json_value *q = json_get(p, "quic");
  if (transport && q) {
    char cwnd[32];
    human_bytes(json_get_number(q, "cwnd", 0), cwnd, sizeof cwnd);
    printf("  transport: quic (%s, rtt %.1f ms, cwnd %s, %.0f packets sent, %.0f lost)\n",
           json_get_string(q, "congestion", "?"), json_get_number(q, "rtt_ms", 0), cwnd,
           json_get_number(q, "packets_sent", 0), json_get_number(q, "packets_lost", 0));
  } else if (transport) {
    printf("  transport: %s\n", transport);
  }
  char rx[32], tx[32];
  human_bytes(json_get_number(p, "rx_bytes", 0), rx, sizeof rx);
  human_bytes(json_get_number(p, "tx_bytes", 0), tx, sizeof tx);
  printf("  transfer: %s received, %s sent", rx, tx);
  if (detail)
    printf(" (%.0f / %.0f datagrams)", json_get_number(p, "rx_packets", 0),
           json_get_number(p, "tx_packets", 0));
  putchar('\n');
  if (!detail) return;
  printf("  handshakes: %.0f completed, %.0f rounds failed\n",
         json_get_number(p, "handshakes_ok", 0), json_get_number(p, "handshakes_failed", 0));
  const json_value *aips = json_get(p, "allowed_ips");
  if (aips && aips->type == JSON_ARRAY) {
    fputs("  allowed ips:", stdout);
    for (size_t i = 0; i < aips->n; i++)
      if (aips->items[i].type == JSON_STRING) printf("%s %s", i ? "," : "", aips->items[i].string);
    if (!aips->n) fputs(" (none)", stdout);
    putchar('\n');
  }
  double ka = json_get_number(p, "persistent_keepalive", 0);
  if (ka > 0) printf("  persistent keepalive: every %.0f s\n", ka);
}

static void print_peers(const json_value *doc, bool detail) {
  const json_value *peers = json_get(doc, "peers");
  if (!peers || peers->type != JSON_ARRAY || !peers->n) {
    puts("no peers");
    return;
  }
  for (size_t i = 0; i < peers->n; i++) print_peer(&peers->items[i], detail);
}

static void print_streams(const json_value *st, bool detail) {
  const json_value *kinds = json_get(st, "by_kind");
  printf("streams: %.0f active", json_get_number(st, "active", 0));
  if (kinds && kinds->type == JSON_OBJECT) {
    fputs(" (", stdout);
    for (size_t i = 0; i < kinds->n; i++)
      printf("%s%s %.0f", i ? ", " : "", kinds->keys[i],
             kinds->items[i].type == JSON_NUMBER ? kinds->items[i].number : 0);
    putchar(')');
  }
  putchar('\n');
  if (!detail) return;
  const json_value *opened = json_get(st, "opened_total");
  if (opened && opened->type == JSON_OBJECT) {
    fputs("opened since start:", stdout);
    for (size_t i = 0; i < opened->n; i++)
      printf("%s %s %.0f", i ? "," : "", opened->keys[i],
             opened->items[i].type == JSON_NUMBER ? opened->items[i].number : 0);
    putchar('\n');
  }
  const json_value *socks = json_get(st, "socks");
  if (!socks) return;
  printf("socks: %.0f connections accepted, %.0f in handshake, %.0f handshake failures\n",
         json_get_number(socks, "accepted", 0), json_get_number(socks, "in_handshake", 0),
         json_get_number(socks, "handshake_failures", 0));
  const json_value *fails = json_get(socks, "failures_by_reply");
  if (!fails || fails->type != JSON_OBJECT) return;
  bool any = false;
  for (size_t i = 0; i < fails->n; i++) {
    if (fails->items[i].type != JSON_NUMBER || fails->items[i].number <= 0) continue;
    printf("%s %s %.0f", any ? "," : "  failed requests:", fails->keys[i], fails->items[i].number);
    any = true;
  }
  puts(any ? "" : "  failed requests: none");
}

static void print_status(const json_value *doc) {
  char up[40];
  human_duration(json_get_number(doc, "uptime_seconds", 0), up, sizeof up);
  printf("awgproxy %s (%s), running for %s\n", json_get_string(doc, "version", "?"),
         json_get_string(doc, "role", "?"), up);
  printf("tunnel: %s\n", json_get_string(doc, "state", "?"));
  double workers = json_get_number(doc, "workers", 0);
  if (workers > 1) printf("workers: %.0f processes ([Server] Threads)\n", workers);
  print_peers(doc, false);
  const json_value *st = json_get(doc, "streams");
  if (st) print_streams(st, false);
}

static void print_list(FILE *out, const json_value *doc, const char *key, const char *prefix) {
  const json_value *a = json_get(doc, key);
  if (!a || a->type != JSON_ARRAY) return;
  for (size_t i = 0; i < a->n; i++)
    if (a->items[i].type == JSON_STRING) fprintf(out, "%s%s\n", prefix, a->items[i].string);
}

static void print_reload(const json_value *doc) {
  const json_value *p = json_get(doc, "peers");
  printf("reloaded: %.0f peer(s) added, %.0f removed, %.0f changed, %.0f unchanged\n",
         json_get_number(p, "added", 0), json_get_number(p, "removed", 0),
         json_get_number(p, "changed", 0), json_get_number(p, "unchanged", 0));
  print_list(stdout, doc, "restart_required", "needs a restart (running value kept): ");
  print_list(stdout, doc, "warnings", "");
}

static void print_servers(const json_value *doc) {
  const json_value *a = json_get(doc, "servers");
  if (!a || a->type != JSON_ARRAY || !a->n) {
    puts("no servers (this daemon runs one config)");
    return;
  }
  printf("%-2s %-16s %-28s %-8s %-9s %s\n", "", "NAME", "ENDPOINT", "STATE", "RTT", "SOCKS");
  for (size_t i = 0; i < a->n; i++) {
    const json_value *s = &a->items[i];
    const json_value *sel = json_get(s, "selected");
    char rtt[24] = "-";
    const json_value *r = json_get(s, "rtt_ms");
    if (r && r->type == JSON_NUMBER) snprintf(rtt, sizeof rtt, "%.1f ms", r->number);
    printf("%-2s %-16s %-28s %-8s %-9s %s\n",
           sel && sel->type == JSON_BOOL && sel->boolean ? "*" : "",
           json_get_string(s, "name", "?"), json_get_string(s, "endpoint", "-"),
           json_get_string(s, "state", "?"), rtt, json_get_string(s, "socks", "?"));
  }
  printf("failovers: %.0f\n", json_get_number(doc, "failovers", 0));
}

int cmd_ctl(int argc, char **argv) {
  if (cli_wants_help(argc, argv)) return fputs(ctl_usage, stdout), 0;
  ctl_opts o = {0};
  int rc = parse_args(argc, argv, &o);
  if (rc) return rc;
  static const struct {
    const char *name, *method, *path;
  } cmds[] = {
      {"status", "GET", "/status"},          {"peers", "GET", "/peers"},
      {"streams", "GET", "/streams"},        {"reload", "POST", "/reload"},
      {"servers", "GET", "/servers"},        {"connect", "POST", "/connect"},
      {"disconnect", "POST", "/disconnect"},
  };
  size_t k = 0;
  while (k < sizeof cmds / sizeof cmds[0] && strcmp(cmds[k].name, o.command)) k++;
  if (k == sizeof cmds / sizeof cmds[0])
    return usage_error(
        "unknown command '%s'; use status, peers, streams, reload, servers, "
        "connect or disconnect",
        o.command);
  char body[160] = "";
  if (o.arg) {
    if (!cfg_server_name_ok(o.arg)) /* the rule for config file names: it goes into JSON as is */
      return usage_error("'%s' is not a server name (1-63 of A-Z a-z 0-9 . _ - @ +)", o.arg);
    snprintf(body, sizeof body, "{\"server\":\"%s\"}", o.arg);
  }

  char err[512] = "";
  int fd = open_control(&o, err, sizeof err);
  if (fd < 0) return fprintf(stderr, "awgproxy ctl: %s\n", err), 1;
  ctl_response res = {0};
  rc = request(fd, cmds[k].method, cmds[k].path, body, &res, err, sizeof err);
  close(fd);
  if (rc) return fprintf(stderr, "awgproxy ctl: %s\n", err), 1;

  json_value *doc = json_parse(res.body, res.body_len, err, sizeof err);
  if (o.json) {
    fwrite(res.body, 1, res.body_len, stdout);
    if (res.body_len && res.body[res.body_len - 1] != '\n') putchar('\n');
  } else if (res.status != 200) {
    fprintf(stderr, "awgproxy ctl: %s: %s (HTTP %d)\n", o.command,
            json_get_string(doc, "error", "request failed"), res.status);
    print_list(stderr, doc, "errors", "  ");
  } else if (!doc) {
    fprintf(stderr, "awgproxy ctl: the daemon's answer is not JSON: %s\n", err);
    res.status = 0;
  } else if (k == 0) {
    print_status(doc);
  } else if (k == 1) {
    print_peers(doc, true);
  } else if (k == 3) {
    print_reload(doc);
  } else if (k >= 4) {
    print_servers(doc);
  } else {
    print_streams(doc, true);
  }
  json_free(doc);
  free(res.data);
  return res.status == 200 ? 0 : 1;
}
