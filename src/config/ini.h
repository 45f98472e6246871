/* A line-oriented reader for wg-quick / AmneziaWG style INI files.
 * Our own instead of inih because configs need exact line numbers in every message, values of any
 * length (I1..I5 templates are often kilobytes of hex) and repeated keys (Address, AllowedIPs).
 * Syntax, as wg-quick reads it: `[Section]`, `Key = Value`, `#` starts a comment anywhere on a
 * line, `;` starts a comment at the start of a line, names are case-insensitive. */
#ifndef AWGPROXY_CONFIG_INI_H
#define AWGPROXY_CONFIG_INI_H

#include <stddef.h>

#define INI_MAX_FILE (1024 * 1024)

typedef enum { INI_SECTION, INI_KEYVAL } ini_kind;

typedef struct {
  ini_kind kind;
  int line;
  const char *name;  /* section name, or key */
  const char *value; /* for INI_KEYVAL: trimmed value, possibly empty */
} ini_item;

/* Called per item; return 0 to continue, anything else stops the parse with that value. */
typedef int (*ini_callback)(void *ud, const ini_item *item);

/* Parses buf in place (it is modified; buf[len] must exist and is overwritten with NUL). On a
 * syntax error returns -1 with *err_line set and a message in err. Otherwise returns what the last
 * callback returned (0 when all went well). */
int ini_parse(char *buf, size_t len, ini_callback cb, void *ud, int *err_line, char *err,
              size_t errlen);

#endif
