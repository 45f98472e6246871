/* A stream over a libuv TCP handle (the application side of SOCKS and forwards). */
#ifndef AWGPROXY_STREAM_UV_H
#define AWGPROXY_STREAM_UV_H

#include <uv.h>

#include "stream/stream.h"

typedef struct uv_stream_impl uv_stream_impl;

/* Takes an initialised, connected uv_tcp_t (allocated by the caller with malloc; ownership passes
 * to the stream, which frees it on close). Returns NULL on allocation failure (tcp untouched). */
stream *stream_uv_wrap(uv_tcp_t *tcp);

#endif
