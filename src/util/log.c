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

/* Writes v quoted and escaped; control bytes become \xNN so a hostile value cannot forge lines. */
static void write_quoted(FILE *f, const char *v) {
  fputc('"', f);
  for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
    if (*p == '"' || *p == '\\') {
      fputc('\\', f);
      fputc(*p, f);
    } else if (*p == '\n') {
      fputs("\\n", f);
    } else if (*p < ' ' || *p == 0x7f) {
      fprintf(f, "\\u%04x", *p);
    } else {
      fputc(*p, f);
    }
  }
  fputc('"', f);
}

static void write_field(FILE *f, bool first, const char *k, const char *v) {
  if (g_format == LOG_FORMAT_JSON) {
    fputs(first ? "{" : ",", f);
    write_quoted(f, k);
    fputc(':', f);
    write_quoted(f, v);
  } else {
    if (!first) fputc(' ', f);
    fputs(k, f);
    fputc('=', f);
    if (logfmt_needs_quotes(v))
      write_quoted(f, v);
    else
      fputs(v, f);
  }
}

void log_event(log_level l, const char *component, const char *event, ...) {
  if (l > g_level) return;
  FILE *f = g_stream ? g_stream : stderr;
  struct timeval tv;
  gettimeofday(&tv, NULL);
  struct tm tm;
  gmtime_r(&tv.tv_sec, &tm);
  char ts[40];
  size_t n = strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(ts + n, sizeof ts - n, ".%03ldZ", (long)(tv.tv_usec / 1000));

  /* One write per line: a server's workers share the supervisor's stderr, and stderr is
   * unbuffered, so a line written piece by piece would interleave with theirs. */
  char *line = NULL;
  size_t len = 0;
  FILE *m = open_memstream(&line, &len);
  FILE *out = m ? m : f;
  if (!m) flockfile(f);
  write_field(out, true, "time", ts);
  write_field(out, false, "level", level_names[l]);
  write_field(out, false, "component", component);
  write_field(out, false, "event", event);
  va_list ap;
  va_start(ap, event);
  for (;;) {
    const char *k = va_arg(ap, const char *);
    if (!k) break;
    const char *v = va_arg(ap, const char *);
    write_field(out, false, k, v ? v : "");
  }
  va_end(ap);
  if (g_format == LOG_FORMAT_JSON) fputc('}', out);
  fputc('\n', out);
  if (m) {
    fclose(m);
    flockfile(f);
    fwrite(line, 1, len, f);
    free(line);
  }
  funlockfile(f);
  fflush(f);
}
