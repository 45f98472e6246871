/* Compiler/platform glue for lwIP on POSIX hosts (Linux, macOS). */
#ifndef AWGPROXY_LWIP_ARCH_CC_H
#define AWGPROXY_LWIP_ARCH_CC_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/time.h>

#define LWIP_TIMEVAL_PRIVATE 0
#define LWIP_NO_CTYPE_H 0
#define LWIP_ERRNO_STDINCLUDE 1

uint32_t lwip_port_rand(void);
#define LWIP_RAND() lwip_port_rand()

#define LWIP_PLATFORM_DIAG(x) \
  do {                        \
    printf x;                 \
  } while (0)
#define LWIP_PLATFORM_ASSERT(x)                                                        \
  do {                                                                                 \
    fprintf(stderr, "lwIP assertion \"%s\" failed at %s:%d\n", x, __FILE__, __LINE__); \
    abort();                                                                           \
  } while (0)

#endif
