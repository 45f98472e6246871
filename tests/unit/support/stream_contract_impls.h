/* The stream implementations that the stream-contract suite (tests/unit/test_stream_contract.c)
 * runs against, each a factory of two connected streams, and the loop helpers that the factories
 * and the tests share. Test code: the factories assert with cmocka.
 *
 * ADDING AN IMPLEMENTATION (e.g. a new transport's streams): write one factory
 *     int sc_make_x(uv_loop_t *loop, stream **a, stream **b);
 * that returns two connected streams (running `loop` as long as it needs, e.g. with
 * sc_run_until), and one
 *     void sc_abort_x(stream *s);
 * that ends s so that its peer sees a failure (a reset: TCP RST, QUIC RESET_STREAM) and s's
 * on_closed still runs; then add {"x", sc_make_x, sc_abort_x} to IMPLS in the suite's main().
 * Every contract test runs against it. A factory may keep process-wide state (lwIP: one stack
 * per process; QUIC: one connection), which its teardown frees. */
#ifndef AWG_TEST_STREAM_CONTRACT_IMPLS_H
#define AWG_TEST_STREAM_CONTRACT_IMPLS_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "stream/stream.h"

struct tcp_pcb;

typedef struct {
  const char *name;
  int (*make)(uv_loop_t *loop, stream **a, stream **b);
  void (*abort_)(stream *s);
  bool own_wire; /* its packets cross the test's own wire, which can be made to go quiet */
} stream_impl;

extern uv_loop_t *sc_loop; /* the loop every stream runs on (the suite's main sets it) */
extern bool sc_wire_quiet; /* the lwIP and QUIC test wires drop everything while set */

/* Runs sc_loop until cond(arg) holds or timeout_ms pass (a 2 ms tick keeps uv_run returning
 * while sockets are idle). Returns cond's final answer. */
bool sc_run_until(bool (*cond)(void *), void *arg, uint64_t timeout_ms);
/* Lets sc_loop run for ms without waiting for anything in particular. */
void sc_run_for(uint64_t ms);

/* In memory (stream_pair). A close without shutdown is a reset. */
int sc_make_pair(uv_loop_t *l, stream **a, stream **b);
void sc_abort_close(stream *s);
/* libuv TCP over 127.0.0.1 (stream_uv). */
int sc_make_uv(uv_loop_t *l, stream **a, stream **b);
/* lwIP TCP (stream_lwip): two endpoints on one stack whose output is fed back into its input. */
int sc_make_lwip(uv_loop_t *l, stream **a, stream **b);
/* The accepting end's PCB of the latest sc_make_lwip pair (for lwIP-only tests). */
struct tcp_pcb *sc_lwip_accepted_pcb(void);
void sc_lwip_teardown(void);
/* stream_throttle around both ends of a pair, one shared 64 MiB/s bucket. */
int sc_make_throttled(uv_loop_t *l, stream **a, stream **b);
/* QUIC streams (stream_quic) between a client and a server connection over an in-memory wire. */
int sc_make_quic(uv_loop_t *l, stream **a, stream **b);
void sc_quic_teardown(void);

#endif
