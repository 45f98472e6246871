/* Structured logging: one event per line, logfmt by default (JSON on request).
 * Never pass keys, passwords or payload bytes to these functions. */
#ifndef AWGPROXY_UTIL_LOG_H
#define AWGPROXY_UTIL_LOG_H

#include <stdbool.h>
#include <stdio.h>

typedef enum { LOG_ERROR = 0, LOG_WARN = 1, LOG_INFO = 2, LOG_DEBUG = 3 } log_level;
typedef enum { LOG_FORMAT_LOGFMT = 0, LOG_FORMAT_JSON = 1 } log_format;

/* Parses "error|warn|info|debug" (case-insensitive); returns -1 on anything else. */
int log_level_parse(const char *s);
const char *log_level_name(log_level l);
void log_set_level(log_level l);
log_level log_get_level(void);
void log_set_format(log_format f);
void log_set_stream(FILE *f); /* default stderr */
/* Applies LOG_LEVEL / LOG_FORMAT from the environment; returns -1 (and complains) if invalid. */
int log_init_from_env(void);
static inline bool log_enabled(log_level l) { return l <= log_get_level(); }

/* Emits `time=… level=… component=… event=…` followed by the fields, which are given as
 * alternating key/value C strings terminated by NULL. Values are quoted when needed. */
void log_event(log_level l, const char *component, const char *event, ...);

#define LOG_E(comp, ev, ...) log_event(LOG_ERROR, comp, ev, __VA_ARGS__)
#define LOG_W(comp, ev, ...) log_event(LOG_WARN, comp, ev, __VA_ARGS__)
#define LOG_I(comp, ev, ...) log_event(LOG_INFO, comp, ev, __VA_ARGS__)
#define LOG_D(comp, ev, ...)                                                 \
  do {                                                                       \
    if (log_enabled(LOG_DEBUG)) log_event(LOG_DEBUG, comp, ev, __VA_ARGS__); \
  } while (0)

#endif
