/* Stream bytes in a list of chunks (a QUIC stream's send and receive buffers), and where the
 * chunks come from. Internal to src/quic. */
#ifndef AWGPROXY_QUIC_QCHUNK_H
#define AWGPROXY_QUIC_QCHUNK_H

#include <stddef.h>
#include <stdint.h>

/* Small writes take small chunks (at least QCHUNK_MIN); bulk sends fill QCHUNK_SIZE ones and
 * bulk receives QCHUNK_RCV_BURST ones. */
#define QCHUNK_SIZE 16384
#define QCHUNK_MIN 512
#define QCHUNK_RCV_BURST 65536

typedef struct qchunk {
  struct qchunk *next;
  size_t len; /* bytes used in data */
  size_t cap;
  uint8_t data[];
} qchunk;

/* A chunk with room for cap bytes, len 0, or NULL when out of memory. The caller owns it until
 * qchunk_free. */
qchunk *qchunk_new(size_t cap);

/* Gives a chunk back. Chunks of the two bulk sizes are kept for reuse, a bounded number per
 * thread: bulk moves one such chunk per 16 or 64 KB, and handing them back to malloc made glibc
 * return the top of the heap to the kernel and fault it in again, page by page. */
void qchunk_free(qchunk *c);

/* Frees a whole list. */
void qchunk_free_list(qchunk *c);

/* Appends data to the list head..tail; returns the bytes appended (fewer only when out of
 * memory). A new chunk holds at least min_cap bytes (up to max_cap), so a burst of small appends
 * fills few chunks. */
size_t qchunk_append(qchunk **head, qchunk **tail, const uint8_t *data, size_t len, size_t min_cap,
                     size_t max_cap);

/* Chunks kept for reuse by this thread (tests). */
size_t qchunk_kept(void);

#endif
