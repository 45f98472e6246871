/* Names and conversions for dial_error (dial_types.h): the one place where OS / libuv connect
 * errors become transport-neutral dial errors. Front-ends turn dial errors into their own replies
 * (SOCKS: socks5_rep_for_dial in src/socks/socks_proto.h). */
#ifndef AWGPROXY_STREAM_DIAL_ERROR_H
#define AWGPROXY_STREAM_DIAL_ERROR_H

#include "stream/dial_types.h"

/* A failed connect (a negative UV_* code) as a dial error: UV_ECONNREFUSED refused;
 * UV_ENETUNREACH, UV_EAFNOSUPPORT, UV_EADDRNOTAVAIL network unreachable; UV_EHOSTUNREACH host
 * unreachable; UV_EACCES, UV_EPERM not allowed; UV_ETIMEDOUT timeout; UV_EAI_NONAME name not
 * found; UV_ENOTCONN tunnel down (dial_error_to_uv's choices, so the two round-trip); anything
 * else general. */
dial_error dial_error_from_uv(int uv_status);
/* The other way, for a stream that carries a refusal as an error (a fast-open connect refused
 * after the stream was handed out): refused UV_ECONNREFUSED, network unreachable
 * UV_ENETUNREACH, host unreachable UV_EHOSTUNREACH, not allowed UV_EACCES, timeout
 * UV_ETIMEDOUT, name not found UV_EAI_NONAME, tunnel down UV_ENOTCONN, else UV_ECONNABORTED. */
int dial_error_to_uv(dial_error err);
/* A short token for logs and metrics: "ok", "general-failure", "not-allowed",
 * "network-unreachable", "host-unreachable", "refused", "timeout", "name-not-found",
 * "tunnel-down"; "unknown" for a value outside the enum (e.g. from the wire). */
const char *dial_error_name(dial_error err);
/* The default human reason for logs ("connection refused", "connection timed out", …), used
 * when the dialer has nothing more precise to say. */
const char *dial_error_reason(dial_error err);

#endif
