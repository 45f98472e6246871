/* Shared by the HTTP proxy's files: http_proxy.c (listeners, the service, the PAC file),
 * http_conn.c (one client connection: request heads, authentication, CONNECT, replies) and
 * http_fwd.c (forwarding absolute-URI requests and their responses). */
#ifndef AWGPROXY_HTTP_HTTP_INTERNAL_H
#define AWGPROXY_HTTP_HTTP_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include "config/config.h"
#include "http/http_msg.h"
#include "http/http_proxy.h"
#include "observe/streams.h"
#include "stream/dialer.h"
#include "stream/relay.h"
#include "util/list.h"

#define HP_CRED_MAX 700 /* a Proxy-Authorization value we remember per connection */

typedef struct hp_conn hp_conn;

/* How this connection's destinations are opened: its pinned user's server, or the proxy's. */
#define HP_DIALER(c) ((c)->user_dl ? (c)->user_dl : (c)->px->dl)

struct http_proxy {
  uv_loop_t *loop;
  dialer *dl;
  http_pin_fn pin; /* NULL: nobody is pinned */
  void *pin_ctx;
  cfg_socks_user *users; /* own copy, wiped on free */
  size_t n_users;
  uint64_t header_timeout_ms, idle_ms;
  size_t max_conns;
  cfg_hostport *socks; /* [Socks] Listen, for the PAC file */
  size_t n_socks;
  list_node conns; /* hp_conn.link: every connection, relays included */
  size_t n_conns;
  bool stopping;
  void *listeners[16];
  size_t n_listeners;
};

typedef enum {
  HC_HEAD,    /* reading a request head */
  HC_AUTH,    /* the password check runs off the loop */
  HC_DIAL,    /* opening the upstream stream */
  HC_FWD,     /* the request goes up, its response comes back */
  HC_REPLY,   /* our own final answer is flushing; then the connection closes */
  HC_RELAY,   /* CONNECT: the relay owns both streams */
  HC_CLOSING, /* closing from the loop */
} hc_state;

struct hp_conn {
  list_node link; /* on px->conns */
  http_proxy *px;
  stream *client, *up; /* owned while not NULL */
  stream *retiring;    /* an idle upstream given up: shut down, closed on its EOF (owned) */
  dial_req *req;
  relay *relay;
  uv_timer_t timer; /* header timeout, idle timeout, linger after a reply */
  uv_timer_t defer; /* work that must not run inside a stream's callback */
  int open;         /* handles and streams still to close before the free */
  bool work_pending;
  hc_state st;
  bool c_reading, u_reading, client_eof;
  bool head_timing;              /* HeaderTimeout runs for the head being read */
  struct sockaddr_storage local; /* the address the client reached us on (PAC) */
  /* client bytes not yet consumed */
  uint8_t *in;
  size_t in_len, in_cap;
  hmsg_scanner scan;
  size_t head_end;
  hreq rq;
  /* authentication */
  uv_work_t work;
  bool auth_ok;
  int user_index;  /* the matched [Socks] User, set off the loop by the check */
  dialer *user_dl; /* the logged-in user's pinned server, NULL: the proxy's dialer */
  char user[256], pass[256];
  uint8_t cred[HP_CRED_MAX];
  size_t cred_len;
  /* forwarding */
  char up_host[256];
  uint16_t up_port;
  bool up_usable; /* idle and reusable for the next request to up_host:up_port */
  uint8_t *out;   /* the rewritten request head, until the upstream takes it */
  size_t out_len;
  hbody reqb, respb;
  bool req_done, resp_done, resp_head_done, resp_started, resp_close, head_request, keep_alive;
  bool reused;  /* the request went up a stream kept from an earlier one */
  bool retried; /* … which had closed: sent once more on a new stream */
  bool redial;  /* that new stream is to be dialed from the loop */
  int client_minor;
  uint8_t *rbuf; /* the response head being read */
  size_t rlen, rcap;
  hmsg_scanner rscan;
  uint64_t last_activity;
  char sid[OBS_SID_LEN + 1];
};

#define HP_COMP "http"

/* http_conn.c */
void hp_conn_start(http_proxy *px, stream *client, const struct sockaddr_storage *local);
/* Our own answer, then the connection closes: status, a one-line text/plain body (why) and
 * optional extra header lines (each ending in CRLF). */
void hp_reply(hp_conn *c, int status, const char *why, const char *extra_headers);
/* Ends the connection from the loop (never inside a stream callback). */
void hp_end(hp_conn *c);
/* Ends it now (service stop, or from the loop). */
void hp_close_now(hp_conn *c);
/* Closes the upstream stream (not from inside one of its own callbacks). */
void hp_close_up(hp_conn *c);
/* The last answer is written: half-close, close once the client has (or after a second). */
void hp_linger(hp_conn *c);
/* Runs hp_process (or a pending redial, or the close) from the loop on its next turn. */
void hp_defer(hp_conn *c);
/* Works through the buffered client bytes in the current state. */
void hp_process(hp_conn *c);
/* Starts or stops reading each stream according to the state and the write queues. */
void hp_update_reading(hp_conn *c);
void hp_consume(hp_conn *c, size_t n);
/* Waits for the next request head (keep-alive). */
void hp_next_request(hp_conn *c);
void hp_stream_closed(stream *s);
int hp_status_for_dial(dial_error err);
/* A destination from a request's host and port. */
void hp_dial_dest(const hreq *r, dial_dest *out);

/* http_fwd.c */
void hp_fwd_begin(hp_conn *c);
void hp_fwd_pump_client(hp_conn *c);
/* Dials a new upstream for the request already sent up a stale one (from the loop). */
void hp_fwd_redial(hp_conn *c);

/* http_proxy.c */
size_t hp_pac(const http_proxy *px, const struct sockaddr_storage *local, char *out, size_t cap);
void hp_conn_freed(http_proxy *px);

#endif
