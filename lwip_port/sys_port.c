/* The two functions lwIP needs from a NO_SYS host: a millisecond clock and randomness. */
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include "lwip/sys.h"
#include "util/batch_clock.h"
#include "util/inet_sum.h"

_Thread_local uint64_t batch_clock_held_ns;

uint32_t lwip_port_rand(void);

/* Held during a received batch (util/batch_clock.h), like the tunnel's clock. */
u32_t sys_now(void) { return (u32_t)(batch_clock_ns() / 1000000u); }

/* LWIP_CHKSUM: the folded sum in host order, not inverted, as lwIP's own returns it. */
unsigned short lwip_port_chksum(const void *data, int len) {
  return len > 0 ? inet_sum_fold(inet_sum_add(0, data, (size_t)len)) : 0;
}

/* Used for TCP initial sequence numbers and ephemeral ports: must not be predictable. */
uint32_t lwip_port_rand(void) { return arc4random(); }
