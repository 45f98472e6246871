/* Work done once at the end of an event-loop turn, after all of the turn's I/O callbacks ran: a
 * whole recvmmsg batch has been opened and fed to the stacks before anything reacts to it. Several
 * users queue hooks; hooks run in phase order, and a hook queued while the turn's hooks run (a
 * delivery that makes a transport write, a write pass that seals datagrams) still runs in the
 * same turn:
 *   LOOP_TURN_DELIVER  received data goes to applications (one write per stream and turn);
 *   LOOP_TURN_STACK    transports write: lwIP's held pure ACKs, a QUIC write pass;
 *   LOOP_TURN_SEND     datagrams sealed during the turn leave in one batch.
 * One instance per thread (each event loop runs on its own thread). Without a started instance
 * (unit tests) a queued hook runs at once. */
#ifndef AWGPROXY_UTIL_LOOP_TURN_H
#define AWGPROXY_UTIL_LOOP_TURN_H

#include <stdbool.h>
#include <uv.h>

typedef enum {
  LOOP_TURN_DELIVER = 0,
  LOOP_TURN_STACK = 1,
  LOOP_TURN_SEND = 2,
  LOOP_TURN_PHASES
} loop_turn_phase;

typedef struct turn_hook turn_hook;
struct turn_hook {
  void (*run)(turn_hook *h); /* set by the owner; h is embedded in the owner's object */
  loop_turn_phase phase;
  /* internal */
  bool queued;
  turn_hook *next;
};

/* Starts end-of-turn processing on loop for this thread; idempotent. */
int loop_turn_start(uv_loop_t *loop);
/* Closes the handles (hooks still queued are dropped, not run). */
void loop_turn_stop(void);
/* Runs h at the end of this turn (once, however often it is queued). */
void loop_turn_want(turn_hook *h);
/* Removes h from the queue if it is there (call before freeing its owner). */
void loop_turn_cancel(turn_hook *h);

#endif
