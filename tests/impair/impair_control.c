/* The relay's control channel (see impair_control.h). Every byte here comes from outside:
 * lines are bounded, over-long ones are answered with an error and skipped, nothing crashes. */
#include "impair_control.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "impair_settings.h"

const char *const control_help =
    "  set DIR.KEY VALUE     change a setting (DIR: up, down, both; KEY as in --help)\n"
    "  blackhole DIR on|off  the same as set DIR.blackhole on|off\n"
    "  rebind                new upstream socket, new source port (NAT rebinding)\n"
    "  stats                 counters as one JSON line\n"
    "  get                   settings as one JSON line\n"
    "  reset                 zero the counters\n"
    "  help                  this list, on one line\n"
    "  quit                  close this control connection\n"
    "  shutdown              stop the relay (it prints the final stats)\n";

void control_init(struct control *c) {
  memset(c, 0, sizeof *c);
  c->listen_fd = -1;
  for (int i = 0; i <= CONTROL_MAX_CLIENTS; i++) c->conn[i].fd = c->conn[i].out_fd = -1;
}

int control_listen(struct control *c, const char *path) {
  struct sockaddr_un sun = {.sun_family = AF_UNIX};
  if (strlen(path) >= sizeof sun.sun_path || strlen(path) >= sizeof c->path) {
    errno = ENAMETOOLONG;
    return -1;
  }
  strcpy(sun.sun_path, path);
  struct stat st;
  if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode)) unlink(path); /* a previous run's */
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  if (fcntl(fd, F_SETFL, O_NONBLOCK) != 0 || fcntl(fd, F_SETFD, FD_CLOEXEC) != 0 ||
      bind(fd, (struct sockaddr *)&sun, sizeof sun) != 0 || listen(fd, 8) != 0) {
    int saved = errno;
    close(fd);
    errno = saved;
    return -1;
  }
  c->listen_fd = fd;
  strcpy(c->path, path);
  return 0;
}

void control_use_stdin(struct control *c) {
  struct control_conn *in = &c->conn[CONTROL_MAX_CLIENTS];
  in->fd = 0;
  in->out_fd = 1;
}

int control_fill_pollfds(const struct control *c, struct pollfd *pfd, int max) {
  int n = 0;
  if (n < max) pfd[n++] = (struct pollfd){.fd = c->listen_fd, .events = POLLIN};
  for (int i = 0; i <= CONTROL_MAX_CLIENTS && n < max; i++)
    pfd[n++] = (struct pollfd){.fd = c->conn[i].fd, .events = POLLIN};
  return n;
}

static void conn_close(struct control_conn *conn) {
  if (conn->fd > 0) close(conn->fd); /* never fd 0: stdin stays */
  conn->fd = conn->out_fd = -1;
  conn->len = 0;
  conn->discard = false;
}

static void accept_one(struct control *c) {
  int fd = accept(c->listen_fd, NULL, NULL);
  if (fd < 0) return;
  for (int i = 0; i < CONTROL_MAX_CLIENTS; i++) {
    if (c->conn[i].fd < 0) {
      fcntl(fd, F_SETFL, O_NONBLOCK);
      fcntl(fd, F_SETFD, FD_CLOEXEC);
      c->conn[i] = (struct control_conn){.fd = fd, .out_fd = fd};
      return;
    }
  }
  static const char busy[] = "error too many control connections\n";
  (void)!write(fd, busy, sizeof busy - 1);
  close(fd);
}

/* Writes the whole answer plus a newline; a client that does not read loses its connection. */
static int answer(struct control_conn *conn, const char *text) {
  char buf[RELAY_JSON_MAX + 2];
  int n = snprintf(buf, sizeof buf, "%s\n", text);
  if (n < 0) return -1;
  size_t len = (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1;
  size_t off = 0;
  while (off < len) {
    ssize_t w = conn->out_fd == 1 ? write(1, buf + off, len - off)
                                  : send(conn->out_fd, buf + off, len - off, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return -1;
    off += (size_t)w;
  }
  return 0;
}

/* Handles the complete lines in conn's buffer; returns -1 when the connection must close. */
static int serve_lines(struct control_conn *conn, struct relay *r, const char *data, size_t n) {
  char out[RELAY_JSON_MAX];
  for (size_t i = 0; i < n; i++) {
    char ch = data[i];
    if (ch != '\n') {
      if (conn->discard) continue;
      if (conn->len + 1 >= sizeof conn->line) {
        conn->discard = true;
        conn->len = 0;
        if (answer(conn, "error line too long") != 0) return -1;
        continue;
      }
      conn->line[conn->len++] = ch;
      continue;
    }
    if (conn->discard) {
      conn->discard = false;
      continue;
    }
    conn->line[conn->len] = 0;
    size_t len = conn->len;
    conn->len = 0;
    if (strlen(conn->line) != len) {
      if (answer(conn, "error NUL byte in line") != 0) return -1;
      continue;
    }
    int quit = control_exec(r, conn->line, out, sizeof out);
    if (out[0] && answer(conn, out) != 0) return -1;
    if (quit) return -1;
  }
  return 0;
}

static void serve_conn(struct control *c, struct control_conn *conn, struct relay *r) {
  char buf[4096];
  ssize_t n = read(conn->fd, buf, sizeof buf);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
  if (n <= 0) {
    if (conn->fd == 0) c->stdin_eof = true;
    conn_close(conn);
    return;
  }
  if (serve_lines(conn, r, buf, (size_t)n) != 0) {
    if (conn->fd == 0) c->stdin_eof = true;
    conn_close(conn);
  }
}

void control_serve(struct control *c, const struct pollfd *pfd, int n, struct relay *r) {
  for (int i = 0; i < n; i++) {
    if (pfd[i].fd < 0 || !(pfd[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
    if (pfd[i].fd == c->listen_fd) {
      accept_one(c);
      continue;
    }
    for (int k = 0; k <= CONTROL_MAX_CLIENTS; k++)
      if (c->conn[k].fd == pfd[i].fd) serve_conn(c, &c->conn[k], r);
  }
}

void control_close(struct control *c) {
  for (int i = 0; i <= CONTROL_MAX_CLIENTS; i++)
    if (c->conn[i].fd >= 0) conn_close(&c->conn[i]);
  if (c->listen_fd >= 0) {
    close(c->listen_fd);
    unlink(c->path);
    c->listen_fd = -1;
  }
}

/* ---- commands ----------------------------------------------------------------------------------
 */

/* Splits line into at most max whitespace-separated words; returns the count, or max + 1 if
 * there are more. */
static int split_words(char *line, char **word, int max) {
  int n = 0;
  char *save = NULL;
  for (char *w = strtok_r(line, " \t\r", &save); w; w = strtok_r(NULL, " \t\r", &save)) {
    if (n == max) return max + 1;
    word[n++] = w;
  }
  return n;
}

static void one_line_help(char *out, size_t cap) {
  snprintf(out, cap,
           "ok commands: set DIR.KEY VALUE | blackhole DIR on|off | rebind | stats | get | reset "
           "| help | quit | shutdown; DIR: up down both; KEY: loss dup reorder reorder_ms "
           "delay_ms jitter_ms rate queue mtu blackhole");
}

static void exec_set(struct relay *r, const char *name, const char *value, char *out, size_t cap) {
  char err[128];
  if (impair_setting_apply(r->eng.set, name, value, err, sizeof err) != 0)
    snprintf(out, cap, "error %s", err);
  else
    snprintf(out, cap, "ok");
}

int control_exec(struct relay *r, char *line, char *out, size_t cap) {
  char *w[4];
  int n = split_words(line, w, 3);
  out[0] = 0;
  if (n == 0) return 0; /* blank lines get no answer */
  if (n > 3) {
    snprintf(out, cap, "error too many words");
  } else if (strcmp(w[0], "set") == 0 && n == 3) {
    exec_set(r, w[1], w[2], out, cap);
  } else if (strcmp(w[0], "blackhole") == 0 && n == 3) {
    char name[32];
    snprintf(name, sizeof name, "%.8s.blackhole", w[1]);
    exec_set(r, name, w[2], out, cap);
  } else if (strcmp(w[0], "rebind") == 0 && n == 1) {
    char err[128];
    if (relay_rebind(r, err, sizeof err) != 0)
      snprintf(out, cap, "error %s", err);
    else
      snprintf(out, cap, "ok upstream_port %d", relay_upstream_port(r));
  } else if (strcmp(w[0], "stats") == 0 && n == 1) {
    relay_stats_json(r, "stats", out, cap);
  } else if (strcmp(w[0], "get") == 0 && n == 1) {
    impair_settings_json(r->eng.set, out, cap);
  } else if (strcmp(w[0], "reset") == 0 && n == 1) {
    relay_reset_counters(r);
    snprintf(out, cap, "ok");
  } else if (strcmp(w[0], "help") == 0 && n == 1) {
    one_line_help(out, cap);
  } else if (strcmp(w[0], "quit") == 0 && n == 1) {
    snprintf(out, cap, "ok bye");
    return 1;
  } else if (strcmp(w[0], "shutdown") == 0 && n == 1) {
    r->shutdown = true;
    snprintf(out, cap, "ok shutting down");
  } else {
    snprintf(out, cap, "error unknown command or wrong number of arguments (try help)");
  }
  return 0;
}
