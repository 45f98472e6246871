#include "util/log.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>

static log_level g_level = LOG_INFO;
static log_format g_format = LOG_FORMAT_LOGFMT;
static FILE *g_stream;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

int log_level_parse(const char *s) {
  for (int i = 0; i < 4; i++)
    if (strcasecmp(s, level_names[i]) == 0) return i;
  if (strcasecmp(s, "warning") == 0) return LOG_WARN;
  return -1;
}

const char *log_level_name(log_level l) { return level_names[l]; }
void log_set_level(log_level l) { g_level = l; }
log_level log_get_level(void) { return g_level; }
void log_set_format(log_format f) { g_format = f; }
void log_set_stream(FILE *f) { g_stream = f; }

int log_init_from_env(void) {
  const char *lv = getenv("LOG_LEVEL");
  if (lv && *lv) {
    int l = log_level_parse(lv);
    if (l < 0) {
      fprintf(stderr, "awgproxy: LOG_LEVEL=%s is not a level; use error, warn, info or debug\n",
              lv);
      return -1;
    }
    g_level = (log_level)l;
  }
  const char *fmt = getenv("LOG_FORMAT");
  if (fmt && *fmt) {
    if (strcasecmp(fmt, "json") == 0) {
      g_format = LOG_FORMAT_JSON;
    } else if (strcasecmp(fmt, "logfmt") == 0) {
      g_format = LOG_FORMAT_LOGFMT;
    } else {
      fprintf(stderr, "awgproxy: LOG_FORMAT=%s is not a format; use logfmt or json\n", fmt);
      return -1;
    }
  }
  return 0;
}

static bool logfmt_needs_quotes(const char *v) {
  if (!*v) return true;
  for (const char *p = v; *p; p++)
    if (*p <= ' ' || *p == '"' || *p == '=' || *p == '\\' || (unsigned char)*p >= 0x7f) return true;
  return false;
}

/* One log line, built on the stack and written with one write: a server's workers share the
 * supervisor's stderr (unbuffered), so a line written piece by piece would interleave with
 * theirs; and no allocation per line. A line longer than the buffer is cut, marked "…". */
#define LINE_MAX_BYTES 16384
typedef struct {
  char buf[LINE_MAX_BYTES];
  size_t len;
  bool cut;
} line;

static void put_n(line *l, const char *s, size_t n) {
  size_t room = sizeof l->buf - 4 - l->len; /* room kept for the cut mark and the newline */
  if (n > room) n = room, l->cut = true;
  memcpy(l->buf + l->len, s, n);
  l->len += n;
}
static void put_s(line *l, const char *s) { put_n(l, s, strlen(s)); }
static void put_c(line *l, char c) { put_n(l, &c, 1); }

/* Writes v quoted and escaped; control bytes become \uXXXX so a hostile value cannot forge
 * lines. */
static void write_quoted(line *l, const char *v) {
  put_c(l, '"');
  for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
    if (*p == '"' || *p == '\\') {
      put_c(l, '\\');
      put_c(l, (char)*p);
    } else if (*p == '\n') {
      put_s(l, "\\n");
    } else if (*p < ' ' || *p == 0x7f) {
      char esc[8];
      snprintf(esc, sizeof esc, "\\u%04x", *p);
      put_s(l, esc);
    } else {
      put_c(l, (char)*p);
    }
  }
  put_c(l, '"');
}

static void write_field(line *l, bool first, const char *k, const char *v) {
  if (g_format == LOG_FORMAT_JSON) {
    put_s(l, first ? "{" : ",");
    write_quoted(l, k);
    put_c(l, ':');
    write_quoted(l, v);
  } else {
    if (!first) put_c(l, ' ');
    put_s(l, k);
    put_c(l, '=');
    if (logfmt_needs_quotes(v))
      write_quoted(l, v);
    else
      put_s(l, v);
  }
}

void log_event(log_level lv, const char *component, const char *event, ...) {
  if (lv > g_level) return;
  FILE *f = g_stream ? g_stream : stderr;
  struct timeval tv;
  gettimeofday(&tv, NULL);
  struct tm tm;
  gmtime_r(&tv.tv_sec, &tm);
  char ts[40];
  size_t n = strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(ts + n, sizeof ts - n, ".%03ldZ", (long)(tv.tv_usec / 1000));

  line l; /* on the stack: any thread may log */
  l.len = 0;
  l.cut = false;
  write_field(&l, true, "time", ts);
  write_field(&l, false, "level", level_names[lv]);
  write_field(&l, false, "component", component);
  write_field(&l, false, "event", event);
  va_list ap;
  va_start(ap, event);
  for (;;) {
    const char *k = va_arg(ap, const char *);
    if (!k) break;
    const char *v = va_arg(ap, const char *);
    write_field(&l, false, k, v ? v : "");
  }
  va_end(ap);
  if (l.cut) memcpy(l.buf + l.len, "\xe2\x80\xa6", 3), l.len += 3; /* … */
  if (g_format == LOG_FORMAT_JSON && !l.cut) l.buf[l.len++] = '}';
  l.buf[l.len++] = '\n';
  flockfile(f);
  fwrite(l.buf, 1, l.len, f);
  funlockfile(f);
  fflush(f);
}
