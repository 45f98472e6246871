/* One intrusive doubly-linked list for every "things of this kind still alive" set (sessions,
 * flows, connections, streams with data ready). The node lives inside the element; the list
 * head is a node of its own, so insertion and removal never branch on being first or last and
 * an element can unlink itself knowing nothing of who holds the list. Circular, as libuv's
 * queue.h; written here, not copied.
 *
 *   typedef struct conn { ...; list_node link; } conn;
 *   list_node conns;                 list_init(&conns);
 *   list_push_front(&conns, &c->link);
 *   list_remove(&c->link);           (idempotent: a removed node points at itself)
 *   list_node *n, *tmp;
 *   list_each_safe(n, tmp, &conns) { conn *c = list_entry(n, conn, link); ... }
 */
#ifndef AWGPROXY_UTIL_LIST_H
#define AWGPROXY_UTIL_LIST_H

#include <stdbool.h>
#include <stddef.h>

typedef struct list_node {
  struct list_node *prev, *next;
} list_node;

/* A head, or a node that is on no list. */
static inline void list_init(list_node *n) { n->prev = n->next = n; }

static inline bool list_empty(const list_node *head) { return head->next == head; }

/* Whether n (initialised with list_init, or removed) is on a list. */
static inline bool list_linked(const list_node *n) { return n->next && n->next != n; }

static inline void list_push_front(list_node *head, list_node *n) {
  n->next = head->next;
  n->prev = head;
  head->next->prev = n;
  head->next = n;
}

static inline void list_push_back(list_node *head, list_node *n) {
  n->prev = head->prev;
  n->next = head;
  head->prev->next = n;
  head->prev = n;
}

/* Unlinks n from whatever list holds it; a node on no list (self-linked) is left as it is. */
static inline void list_remove(list_node *n) {
  n->prev->next = n->next;
  n->next->prev = n->prev;
  list_init(n);
}

#define list_entry(node, type, member) ((type *)((char *)(node)-offsetof(type, member)))

/* Every node of head, in order; the current one may be removed (or freed) in the body. */
#define list_each_safe(n, tmp, head) \
  for ((n) = (head)->next, (tmp) = (n)->next; (n) != (head); (n) = (tmp), (tmp) = (n)->next)

#endif
