/* Process-wide counts of the streams the front-ends relay, by kind, and short session ids that
 * tie a stream's log events together. One loop thread: plain counters. */
#ifndef AWGPROXY_OBSERVE_STREAMS_H
#define AWGPROXY_OBSERVE_STREAMS_H

#include <stdint.h>

typedef enum {
  OBS_STREAM_SOCKS_TCP,   /* SOCKS CONNECT, relaying */
  OBS_STREAM_SOCKS_UDP,   /* SOCKS5 UDP ASSOCIATE, alive */
  OBS_STREAM_FORWARD_TCP, /* [Forward] TCP connection, relaying */
  OBS_STREAM_EXIT_TCP,    /* server: a peer's TCP connection relayed by the exit */
  OBS_STREAM_EXIT_UDP,    /* server: a peer's UDP flow through the exit, alive */
  OBS_STREAM_HTTP_TCP,    /* [Http]: a CONNECT relay or a forwarded request's upstream stream */
  OBS_STREAM_KINDS
} obs_stream_kind;

void obs_stream_opened(obs_stream_kind k);
void obs_stream_closed(obs_stream_kind k);
uint64_t obs_streams_active(obs_stream_kind k);
uint64_t obs_streams_total(obs_stream_kind k); /* opened since start */
/* "socks_tcp", "socks_udp", "forward_tcp", "exit_tcp", "exit_udp", "http_tcp". */
const char *obs_stream_kind_name(obs_stream_kind k);

#define OBS_SID_LEN 8
/* A fresh random session id: OBS_SID_LEN lower-case hex digits and a NUL. Ephemeral, only for
 * correlating log lines; it carries no information about the client or the destination. */
void obs_session_id(char out[OBS_SID_LEN + 1]);

#endif
