/* Stream chunks with a bounded per-thread free list for the bulk sizes (src/quic/qchunk.h). */
#include "quic/qchunk.h"

#include <stdlib.h>
#include <string.h>

#include "util/asan.h"

/* At most this many of each bulk size are kept: 1 MiB of receive chunks, 512 KiB of send
 * chunks. A transfer in steady state frees chunks about as fast as it takes them, so a few
 * cover it; the bound is what an idle process holds after a burst. */
#define KEEP_RCV 16
#define KEEP_SND 32

typedef struct {
  qchunk *head;
  size_t n;
} keep_list;

static _Thread_local keep_list keep_rcv, keep_snd;

static keep_list *list_for(size_t cap) {
#if AWG_ASAN
  (void)cap;
  return NULL; /* under ASan every chunk goes back to malloc, so misuse is caught */
#else
  if (cap == QCHUNK_RCV_BURST) return &keep_rcv;
  if (cap == QCHUNK_SIZE) return &keep_snd;
  return NULL;
#endif
}

static size_t keep_max(const keep_list *l) { return l == &keep_rcv ? KEEP_RCV : KEEP_SND; }

qchunk *qchunk_new(size_t cap) {
  keep_list *l = list_for(cap);
  qchunk *c;
  if (l && l->head) {
    c = l->head;
    l->head = c->next;
    l->n--;
  } else {
    c = malloc(sizeof *c + cap);
    if (!c) return NULL;
    c->cap = cap;
  }
  c->next = NULL;
  c->len = 0;
  return c;
}

void qchunk_free(qchunk *c) {
  if (!c) return;
  keep_list *l = list_for(c->cap);
  if (l && l->n < keep_max(l)) {
    c->next = l->head;
    l->head = c;
    l->n++;
    return;
  }
  free(c);
}

void qchunk_free_list(qchunk *c) {
  while (c) {
    qchunk *n = c->next;
    qchunk_free(c);
    c = n;
  }
}

size_t qchunk_append(qchunk **head, qchunk **tail, const uint8_t *data, size_t len, size_t min_cap,
                     size_t max_cap) {
  size_t done = 0;
  while (done < len) {
    qchunk *t = *tail;
    if (!t || t->len == t->cap) {
      size_t want = len - done;
      size_t cap = want < min_cap ? min_cap : want > max_cap ? max_cap : want;
      qchunk *n = qchunk_new(cap);
      if (!n) break;
      if (t)
        t->next = n;
      else
        *head = n;
      *tail = t = n;
    }
    size_t k = t->cap - t->len < len - done ? t->cap - t->len : len - done;
    memcpy(t->data + t->len, data + done, k);
    t->len += k;
    done += k;
  }
  return done;
}

size_t qchunk_kept(void) { return keep_rcv.n + keep_snd.n; }
