#include "observe/streams.h"

#include "util/rng.h"

static uint64_t active[OBS_STREAM_KINDS], total[OBS_STREAM_KINDS];

void obs_stream_opened(obs_stream_kind k) {
  active[k]++;
  total[k]++;
}

void obs_stream_closed(obs_stream_kind k) {
  if (active[k]) active[k]--;
}

uint64_t obs_streams_active(obs_stream_kind k) { return active[k]; }
uint64_t obs_streams_total(obs_stream_kind k) { return total[k]; }

const char *obs_stream_kind_name(obs_stream_kind k) {
  static const char *const names[] = {"socks_tcp", "socks_udp", "forward_tcp",
                                      "exit_tcp",  "exit_udp",  "http_tcp"};
  return k < OBS_STREAM_KINDS ? names[k] : "unknown";
}

void obs_session_id(char out[OBS_SID_LEN + 1]) {
  static const char hex[] = "0123456789abcdef";
  uint8_t b[OBS_SID_LEN / 2];
  rng_bytes(rng_fast(), b, sizeof b);
  for (size_t i = 0; i < sizeof b; i++) {
    out[2 * i] = hex[b[i] >> 4];
    out[2 * i + 1] = hex[b[i] & 15];
  }
  out[OBS_SID_LEN] = '\0';
}
