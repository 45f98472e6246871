#include "wg/result.h"

const char *wg_result_str(wg_result r) {
  switch (r) {
    case WG_OK:
      return "ok";
    case WG_ERR_SIZE:
      return "bad-size";
    case WG_ERR_MAC1:
      return "bad-mac1";
    case WG_ERR_NEED_COOKIE:
      return "need-cookie";
    case WG_ERR_DECRYPT:
      return "decrypt-failed";
    case WG_ERR_UNKNOWN_PEER:
      return "unknown-peer";
    case WG_ERR_UNKNOWN_INDEX:
      return "unknown-index";
    case WG_ERR_STALE_TIMESTAMP:
      return "stale-timestamp";
    case WG_ERR_FLOOD:
      return "initiation-flood";
    case WG_ERR_REPLAY:
      return "replay";
    case WG_ERR_EXPIRED:
      return "keypair-expired";
    case WG_ERR_STATE:
      return "unexpected-state";
    case WG_ERR_BAD_KEY:
      return "bad-public-key";
    case WG_ERR_NO_SESSION:
      return "no-session";
    case WG_ERR_RATE_LIMITED:
      return "rate-limited";
    case WG_ERR_BUFFER:
      return "buffer-too-small";
    case WG_ERR_NO_COOKIE_STATE:
      return "unexpected-cookie";
    case WG_ERR_NO_MEMORY:
      return "out-of-memory";
    case WG_ERR_OTHER_SHARD:
      return "other-shard";
  }
  return "unknown-result";
}
