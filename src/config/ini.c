#include "config/ini.h"

#include <stdio.h>
#include <string.h>

static char *trim(char *s) {
  while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\f' || *s == '\v') s++;
  char *e = s + strlen(s);
  while (e > s &&
         (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' || e[-1] == '\f' || e[-1] == '\v'))
    *--e = '\0';
  return s;
}

static int parse_section(char *s, int line, ini_callback cb, void *ud, int *err_line, char *err,
                         size_t errlen) {
  char *close = strchr(s, ']');
  if (!close) {
    *err_line = line;
    snprintf(err, errlen, "section header is missing its closing ']'; write it as [Name]");
    return -1;
  }
  *close = '\0';
  if (*trim(close + 1) != '\0') {
    *err_line = line;
    snprintf(err, errlen, "unexpected text after ']' in a section header");
    return -1;
  }
  char *name = trim(s + 1);
  if (!*name) {
    *err_line = line;
    snprintf(err, errlen, "empty section name '[]'");
    return -1;
  }
  ini_item it = {INI_SECTION, line, name, NULL};
  return cb(ud, &it);
}

static int parse_keyval(char *s, int line, ini_callback cb, void *ud, int *err_line, char *err,
                        size_t errlen) {
  char *eq = strchr(s, '=');
  if (!eq) {
    *err_line = line;
    snprintf(err, errlen, "expected 'Key = Value' or '[Section]', found '%.40s'", s);
    return -1;
  }
  *eq = '\0';
  char *key = trim(s);
  if (!*key) {
    *err_line = line;
    snprintf(err, errlen, "a value without a key (nothing before '=')");
    return -1;
  }
  ini_item it = {INI_KEYVAL, line, key, trim(eq + 1)};
  return cb(ud, &it);
}

int ini_parse(char *buf, size_t len, ini_callback cb, void *ud, int *err_line, char *err,
              size_t errlen) {
  if (memchr(buf, '\0', len)) {
    size_t off = (size_t)((char *)memchr(buf, '\0', len) - buf);
    int line = 1;
    for (size_t i = 0; i < off; i++) line += buf[i] == '\n';
    *err_line = line;
    snprintf(err, errlen, "the file contains a NUL byte; is it a text file?");
    return -1;
  }
  char *p = buf, *end = buf + len;
  int line = 0;
  /* A UTF-8 byte order mark, as some editors on Windows write, is skipped. */
  if (len >= 3 && (unsigned char)p[0] == 0xEF && (unsigned char)p[1] == 0xBB &&
      (unsigned char)p[2] == 0xBF)
    p += 3;
  while (p < end) {
    line++;
    char *nl = memchr(p, '\n', (size_t)(end - p));
    char *next = nl ? nl + 1 : end;
    if (nl)
      *nl = '\0';
    else
      *end = '\0'; /* the caller's buffer has one spare byte (see ini.h) */
    char *hash = strchr(p, '#');
    if (hash) *hash = '\0';
    char *s = trim(p);
    int rc = 0;
    if (*s == '\0' || *s == ';')
      rc = 0;
    else if (*s == '[')
      rc = parse_section(s, line, cb, ud, err_line, err, errlen);
    else
      rc = parse_keyval(s, line, cb, ud, err_line, err, errlen);
    if (rc) return rc;
    p = next;
  }
  return 0;
}
