#include "daemon/observe_servers.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "observe/prom.h"

void observe_servers_render(const server_set *s, obs_buf *b) {
  obs_buf_puts(b, "{\"servers\":[");
  for (size_t i = 0; i < server_set_count(s); i++) {
    server_status st;
    server_set_status(s, i, &st);
    tunnel_peer_status ps = {0};
    if (tunnel_peer_count(st.up->tun)) tunnel_peer_status_get(st.up->tun, 0, &ps);
    quic_client_status qs;
    quic_client_status_get(st.up->quic, &qs);
    obs_buf_puts(b, i ? ",{\"name\":" : "{\"name\":");
    obs_buf_json_string(b, st.name);
    obs_buf_puts(b, ",\"endpoint\":");
    if (ps.endpoint[0])
      obs_buf_json_string(b, ps.endpoint);
    else
      obs_buf_puts(b, "null");
    obs_buf_printf(b, ",\"state\":\"%s\",\"rtt_ms\":", srv_state_name(st.state));
    if (st.rtt_ms >= 0)
      obs_buf_printf(b, "%.1f", st.rtt_ms);
    else
      obs_buf_puts(b, "null");
    obs_buf_printf(b,
                   ",\"socks\":\"%s\",\"selected\":%s,\"has_session\":%s,\"transport\":\"%s\","
                   "\"probes_ok\":%" PRIu64 ",\"probes_failed\":%" PRIu64
                   ",\"failovers_from\":%" PRIu64 "}",
                   socks_class_name(st.socks), st.selected ? "true" : "false",
                   ps.has_session ? "true" : "false", qs.transport, st.probes_ok, st.probes_failed,
                   st.failovers_from);
  }
  obs_buf_printf(b, "],\"failovers\":%" PRIu64 "}\n", server_set_failovers(s));
}

static void per_server(obs_buf *b, const server_set *s, const char *name, const char *type,
                       const char *help, double (*get)(const server_status *)) {
  prom_header(b, name, type, help);
  for (size_t i = 0; i < server_set_count(s); i++) {
    server_status st;
    server_set_status(s, i, &st);
    prom_label l = {"server", st.name};
    prom_sample(b, name, &l, 1, get(&st));
  }
}

static double g_up(const server_status *st) { return st->state == SRV_UP; }
static double g_rtt(const server_status *st) { return st->rtt_ms < 0 ? 0 : st->rtt_ms / 1000; }
static double g_selected(const server_status *st) { return st->selected; }
static double g_socks(const server_status *st) { return st->socks; }
static double g_failovers(const server_status *st) { return (double)st->failovers_from; }

void observe_servers_metrics(const server_set *s, obs_buf *b) {
  per_server(b, s, "awgproxy_server_up", "gauge", "1 when the server's last probe was answered.",
             g_up);
  per_server(b, s, "awgproxy_server_rtt_seconds", "gauge",
             "Round trip of the server's last answered probe (0 = unknown).", g_rtt);
  per_server(b, s, "awgproxy_server_selected", "gauge", "1 for the server new streams go to.",
             g_selected);
  per_server(b, s, "awgproxy_server_socks_class", "gauge",
             "The server's SOCKS service on its tunnel address, port 1080: 0 unknown, "
             "1 Valid, 2 AuthenticationRequired, 3 NotAProxy, 4 NotListening.",
             g_socks);
  per_server(b, s, "awgproxy_server_failovers_total", "counter",
             "Times the client left this server for another (down, or silent in a race).",
             g_failovers);
}

int observe_servers_parse_connect(const char *body, size_t len, char *out, size_t outlen) {
  out[0] = 0;
  char buf[512];
  if (len >= sizeof buf) return -1;
  memcpy(buf, body, len);
  buf[len] = 0;
  const char *k = strstr(buf, "\"server\"");
  if (!k) return 0;
  const char *p = k + 8;
  while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') p++;
  if (*p++ != ':') return -1;
  while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') p++;
  if (!strncmp(p, "null", 4)) return 0;
  if (*p++ != '"') return -1;
  const char *e = strchr(p, '"');
  if (!e || (size_t)(e - p) >= outlen) return -1;
  memcpy(out, p, (size_t)(e - p));
  out[e - p] = 0;
  return 0;
}

static void answer(http_response *res, int status, const char *key, const char *msg) {
  res->status = status;
  res->content_type = "application/json";
  obs_buf_printf(&res->body, "{\"%s\":", key);
  obs_buf_json_string(&res->body, msg);
  obs_buf_puts(&res->body, "}\n");
}

bool observe_servers_route(server_set *s, const http_request *req, const char *body,
                           size_t body_len, http_response *res) {
  const char *want = !strcmp(req->path, "/servers")      ? "GET"
                     : !strcmp(req->path, "/connect")    ? "POST"
                     : !strcmp(req->path, "/disconnect") ? "POST"
                                                         : NULL;
  if (!want) return false;
  if (strcmp(req->method, want) != 0) {
    res->allow = want;
    answer(res, 405, "error", "method not allowed");
    return true;
  }
  res->content_type = "application/json";
  if (!strcmp(req->path, "/servers")) {
    observe_servers_render(s, &res->body);
  } else if (!strcmp(req->path, "/disconnect")) {
    server_set_disconnect(s);
    observe_servers_render(s, &res->body);
  } else {
    char name[64], err[128];
    if (observe_servers_parse_connect(body, body_len, name, sizeof name) != 0) {
      answer(res, 400, "error", "the body must be {\"server\":\"NAME\"} or empty (auto)");
    } else if (server_set_connect(s, name, err, sizeof err) != 0) {
      answer(res, 404, "error", err);
    } else {
      observe_servers_render(s, &res->body);
    }
  }
  return true;
}
