/* The control API and metrics of a client with several servers (client/server_set.h):
 * GET /servers, POST /connect (body {"server":"NAME"} or empty for auto), POST /disconnect, and
 * the awgproxy_server_* metrics. */
#ifndef AWGPROXY_DAEMON_OBSERVE_SERVERS_H
#define AWGPROXY_DAEMON_OBSERVE_SERVERS_H

#include <stdbool.h>

#include "client/server_set.h"
#include "observe/buf.h"
#include "observe/http.h"

/* True when req was one of the routes above (res filled). */
bool observe_servers_route(server_set *s, const http_request *req, const char *body,
                           size_t body_len, http_response *res);
void observe_servers_render(const server_set *s, obs_buf *b);
/* POST /connect's body: {"server":"NAME"} gives NAME in out, an empty body, {} or
 * {"server":null} gives "" (auto); -1 when malformed or the name does not fit outlen. (A fuzz
 * target feeds it request bodies: fuzz/fuzz_http.c.) */
int observe_servers_parse_connect(const char *body, size_t len, char *out, size_t outlen);
void observe_servers_metrics(const server_set *s, obs_buf *b);

#endif
