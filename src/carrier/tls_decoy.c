/* The decoy web server (tls_decoy.h). It answers as nginx does with its defaults: the same
 * status lines, headers and error pages, so that a prober's fingerprint of the port matches one
 * of millions of ordinary servers. */
#include "carrier/tls_decoy.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char *const error_pages[][2] = {
    {"400", "400 Bad Request"},
    {"404", "404 Not Found"},
    {"405", "405 Not Allowed"},
};

static const char *status_text(int status) {
  for (size_t i = 0; i < sizeof error_pages / sizeof *error_pages; i++)
    if (atoi(error_pages[i][0]) == status) return error_pages[i][1];
  return "200 OK";
}

static void http_date(long long now, char *out, size_t cap) {
  time_t t = (time_t)now;
  struct tm tm;
  gmtime_r(&t, &tm);
  strftime(out, cap, "%a, %d %b %Y %H:%M:%S GMT", &tm);
}

/* Head and body in one buffer. body NULL: nginx's error page for status. */
static int build(tls_decoy_reply *r, int status, const char *type, const uint8_t *body,
                 size_t body_len, bool head_only, bool keep_alive, long long now) {
  char page[256];
  if (!body) {
    const char *s = status_text(status);
    body_len = (size_t)snprintf(page, sizeof page,
                                "<html>\r\n<head><title>%s</title></head>\r\n<body>\r\n<center>"
                                "<h1>%s</h1></center>\r\n<hr><center>nginx</center>\r\n"
                                "</body>\r\n</html>\r\n",
                                s, s);
    body = (const uint8_t *)page;
    type = "text/html";
  }
  char date[64], head[512];
  http_date(now, date, sizeof date);
  int hl = snprintf(head, sizeof head,
                    "HTTP/1.1 %s\r\nServer: nginx\r\nDate: %s\r\nContent-Type: %s\r\n"
                    "Content-Length: %zu\r\nConnection: %s\r\n%s\r\n",
                    status_text(status), date, type, body_len, keep_alive ? "keep-alive" : "close",
                    status == 200 ? "Accept-Ranges: bytes\r\n" : "");
  if (hl < 0 || (size_t)hl >= sizeof head) return -1;
  size_t total = (size_t)hl + (head_only ? 0 : body_len);
  r->data = malloc(total ? total : 1);
  if (!r->data) return -1;
  memcpy(r->data, head, (size_t)hl);
  if (!head_only && body_len) memcpy(r->data + hl, body, body_len);
  r->len = total;
  r->status = status;
  r->keep_alive = keep_alive;
  return 0;
}

static const char *content_type(const char *path) {
  static const char *const types[][2] = {
      {".html", "text/html"},    {".htm", "text/html"},
      {".css", "text/css"},      {".js", "application/javascript"},
      {".png", "image/png"},     {".jpg", "image/jpeg"},
      {".svg", "image/svg+xml"}, {".ico", "image/x-icon"},
      {".txt", "text/plain"},
  };
  const char *dot = strrchr(path, '.');
  for (size_t i = 0; dot && i < sizeof types / sizeof *types; i++)
    if (!strcmp(dot, types[i][0])) return types[i][1];
  return "application/octet-stream";
}

/* The file under root for a request target, or NULL: no "..", no hidden files, no query. */
static char *file_for(const char *root, const char *target, size_t tlen) {
  char rel[1024];
  size_t n = 0;
  for (size_t i = 0; i < tlen && target[i] != '?' && target[i] != '#'; i++) {
    if (n + 1 >= sizeof rel) return NULL;
    rel[n++] = target[i];
  }
  rel[n] = '\0';
  if (rel[0] != '/' || strstr(rel, "/.") || strchr(rel, '%') || strchr(rel, '\\')) return NULL;
  const char *index = rel[n - 1] == '/' ? "index.html" : "";
  size_t need = strlen(root) + n + strlen(index) + 1;
  char *path = malloc(need);
  if (path) snprintf(path, need, "%s%s%s", root, rel, index);
  return path;
}

/* Reads a regular file of at most TLS_DECOY_MAX_FILE bytes. */
static uint8_t *read_file(const char *path, size_t *len) {
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return NULL;
  struct stat st;
  uint8_t *buf = NULL;
  if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size <= TLS_DECOY_MAX_FILE) {
    buf = malloc(st.st_size ? (size_t)st.st_size : 1);
    size_t got = 0;
    while (buf && got < (size_t)st.st_size) {
      ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);
      if (r <= 0) break;
      got += (size_t)r;
    }
    if (buf && got != (size_t)st.st_size) free(buf), buf = NULL;
    *len = got;
  }
  close(fd);
  return buf;
}

static const uint8_t *find_head_end(const uint8_t *in, size_t n) {
  for (size_t i = 0; i + 3 < n; i++)
    if (in[i] == '\r' && in[i + 1] == '\n' && in[i + 2] == '\r' && in[i + 3] == '\n')
      return in + i + 4;
  return NULL;
}

static bool is_token_char(uint8_t c) { return c >= 'A' && c <= 'Z'; }

/* Whether "Connection: close" is among the headers (case-insensitive name and value). */
static bool asks_close(const uint8_t *head, size_t len) {
  static const char key[] = "\nconnection:";
  for (size_t i = 0; i + sizeof key - 1 < len; i++) {
    size_t k = 0;
    while (k < sizeof key - 1 && (head[i + k] | 0x20) == (key[k] | 0x20)) k++;
    if (k < sizeof key - 1) continue;
    size_t j = i + k;
    while (j < len && head[j] == ' ') j++;
    return len - j >= 5 && !strncasecmp((const char *)head + j, "close", 5);
  }
  return false;
}

tls_decoy_result tls_decoy_answer(const char *root, const uint8_t *in, size_t n, size_t *consumed,
                                  long long now, tls_decoy_reply *reply) {
  memset(reply, 0, sizeof *reply);
  *consumed = 0;
  /* The method: capital letters, then a space, as nginx parses it; anything else is 400 at
   * once, as soon as it is seen. */
  size_t m = 0;
  while (m < n && m < 16 && is_token_char(in[m])) m++;
  bool bad = (m < n && (m == 0 || in[m] != ' ')) || m == 16;
  const uint8_t *end = bad ? NULL : find_head_end(in, n);
  if (!bad && !end) {
    if (n < TLS_DECOY_MAX_HEAD) return DECOY_NEED_MORE;
    bad = true;
  }
  /* The request line: METHOD SP TARGET SP HTTP/1.x */
  const uint8_t *line_end = end ? memchr(in, '\r', (size_t)(end - in)) : NULL;
  const uint8_t *target = in + m + 1, *sp = NULL;
  if (!bad && line_end) sp = memchr(target, ' ', (size_t)(line_end - target));
  if (!bad && (!sp || line_end - sp != 9 || memcmp(sp + 1, "HTTP/1.", 7) != 0)) bad = true;
  if (bad) {
    if (build(reply, 400, NULL, NULL, 0, false, false, now) != 0) return DECOY_BAD;
    return DECOY_BAD;
  }
  *consumed = (size_t)(end - in); /* no request body is read: GET and HEAD have none */
  bool head_only = m == 4 && !memcmp(in, "HEAD", 4);
  bool keep = !asks_close(in, (size_t)(end - in)) && sp[8] == '1';
  if (!head_only && !(m == 3 && !memcmp(in, "GET", 3)))
    return build(reply, 405, NULL, NULL, 0, false, keep, now) ? DECOY_BAD : DECOY_ANSWER;
  char *path = root && root[0] ? file_for(root, (const char *)target, (size_t)(sp - target)) : NULL;
  size_t flen = 0;
  uint8_t *file = path ? read_file(path, &flen) : NULL;
  int rc = file ? build(reply, 200, content_type(path), file, flen, head_only, keep, now)
                : build(reply, 404, NULL, NULL, 0, head_only, keep, now);
  free(file);
  free(path);
  return rc ? DECOY_BAD : DECOY_ANSWER;
}
