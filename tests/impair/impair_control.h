/* The relay's control channel: a line protocol on a Unix stream socket (--control PATH, several
 * clients at once) and/or on stdin (--stdin, answers on stdout). One command per line, one
 * answer line per command: "ok", "error REASON" or a JSON object. */
#ifndef IMPAIR_CONTROL_H
#define IMPAIR_CONTROL_H

#include <poll.h>
#include <stdbool.h>
#include <stddef.h>

#include "impair_relay.h"

#define CONTROL_MAX_CLIENTS 8
#define CONTROL_LINE_MAX 512

extern const char *const control_help;

struct control_conn {
  int fd;       /* -1: unused */
  int out_fd;   /* where answers go (the socket itself, or stdout for stdin) */
  bool discard; /* the current line is too long: skip to its newline */
  size_t len;
  char line[CONTROL_LINE_MAX];
};

struct control {
  int listen_fd; /* -1: no socket */
  char path[108];
  struct control_conn conn[CONTROL_MAX_CLIENTS + 1]; /* the last one is stdin */
  bool stdin_eof;                                    /* --stdin reached its end */
};

void control_init(struct control *c);
/* Listens on a Unix socket at path (an existing socket file there is replaced). 0 or -1. */
int control_listen(struct control *c, const char *path);
void control_use_stdin(struct control *c);
/* Adds the channel's descriptors to pfd (at most max); returns how many. */
int control_fill_pollfds(const struct control *c, struct pollfd *pfd, int max);
/* Serves what poll reported on the descriptors control_fill_pollfds added. */
void control_serve(struct control *c, const struct pollfd *pfd, int n, struct relay *r);
void control_close(struct control *c);

/* Runs one command line; the answer (no newline) goes to out. Returns 1 if the connection should
 * close after answering ("quit"), else 0. */
int control_exec(struct relay *r, char *line, char *out, size_t cap);

#endif
