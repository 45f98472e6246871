#include "stream/dial_error.h"

#include <uv.h>

dial_error dial_error_from_uv(int uv_status) {
  switch (uv_status) {
    case UV_ECONNREFUSED:
      return DIAL_ERR_REFUSED;
    case UV_ENETUNREACH:
    case UV_EAFNOSUPPORT:
    case UV_EADDRNOTAVAIL:
      return DIAL_ERR_NET_UNREACHABLE;
    case UV_EHOSTUNREACH:
      return DIAL_ERR_HOST_UNREACHABLE;
    case UV_EACCES:
    case UV_EPERM:
      return DIAL_ERR_NOT_ALLOWED;
    case UV_ETIMEDOUT:
      return DIAL_ERR_TIMEOUT;
    case UV_EAI_NONAME:
      return DIAL_ERR_NAME_NOT_FOUND;
    case UV_ENOTCONN:
      return DIAL_ERR_TUNNEL_DOWN;
    default:
      return DIAL_ERR_GENERAL;
  }
}

int dial_error_to_uv(dial_error err) {
  switch (err) {
    case DIAL_ERR_REFUSED:
      return UV_ECONNREFUSED;
    case DIAL_ERR_NET_UNREACHABLE:
      return UV_ENETUNREACH;
    case DIAL_ERR_HOST_UNREACHABLE:
      return UV_EHOSTUNREACH;
    case DIAL_ERR_NOT_ALLOWED:
      return UV_EACCES;
    case DIAL_ERR_TIMEOUT:
      return UV_ETIMEDOUT;
    case DIAL_ERR_NAME_NOT_FOUND:
      return UV_EAI_NONAME;
    case DIAL_ERR_TUNNEL_DOWN:
      return UV_ENOTCONN;
    default:
      return UV_ECONNABORTED;
  }
}

/* Indexed by dial_error; the enum's values are fixed (wire values), so are these rows. */
static const struct {
  const char *name, *reason;
} info[DIAL_ERR_COUNT] = {
    [DIAL_OK] = {"ok", "connected"},
    [DIAL_ERR_GENERAL] = {"general-failure", "connection failed"},
    [DIAL_ERR_NOT_ALLOWED] = {"not-allowed", "administratively prohibited"},
    [DIAL_ERR_NET_UNREACHABLE] = {"network-unreachable", "network unreachable"},
    [DIAL_ERR_HOST_UNREACHABLE] = {"host-unreachable", "host unreachable"},
    [DIAL_ERR_REFUSED] = {"refused", "connection refused"},
    [DIAL_ERR_TIMEOUT] = {"timeout", "connection timed out"},
    [DIAL_ERR_NAME_NOT_FOUND] = {"name-not-found", "name resolution failed"},
    [DIAL_ERR_TUNNEL_DOWN] = {"tunnel-down", "tunnel down: no session with the server"},
};

const char *dial_error_name(dial_error err) {
  return (unsigned)err < DIAL_ERR_COUNT ? info[err].name : "unknown";
}

const char *dial_error_reason(dial_error err) {
  return (unsigned)err < DIAL_ERR_COUNT ? info[err].reason : "connection failed";
}
