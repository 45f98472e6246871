/* lwIP's heap (lwipopts.h: MEM_LIBC_MALLOC with mem_clib_malloc / mem_clib_free /
 * mem_clib_calloc, and MEMP_MEM_MALLOC, so pools come from the heap too).
 *
 * lwIP allocates and frees a pbuf for every packet in and a pbuf and a segment for every segment
 * out. A full-size pbuf (~1.6 KB) is above glibc's per-thread cache, so each one took glibc's
 * general path (_int_malloc and unlink_chunk were 3-5 % of the client's CPU in a transfer). Here
 * blocks up to 2 KiB are kept on per-size free lists of the calling thread (lwIP runs on one loop
 * thread), at most LWIP_MEM_KEEP per size, so what is kept stays bounded (about 1.2 MB); larger
 * ones go straight to malloc. Built with AddressSanitizer, every call goes to malloc/free, so
 * that use after free in lwIP's memory is still caught. */
#ifndef AWG_LWIP_PORT_LWIP_MEM_H
#define AWG_LWIP_PORT_LWIP_MEM_H

#include <stddef.h>

#define LWIP_MEM_KEEP 256 /* free blocks kept per size class */

void *lwip_mem_malloc(size_t size);
void *lwip_mem_calloc(size_t count, size_t size);
void lwip_mem_free(void *p);

/* Blocks kept on this thread's free lists, all sizes (for tests). */
size_t lwip_mem_kept(void);

#endif
