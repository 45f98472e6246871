/* The two functions lwIP needs from a NO_SYS host: a millisecond clock and randomness. */
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include "lwip/sys.h"

uint32_t lwip_port_rand(void);

u32_t sys_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (u32_t)((uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u);
}

/* Used for TCP initial sequence numbers and ephemeral ports: must not be predictable. */
uint32_t lwip_port_rand(void) { return arc4random(); }
