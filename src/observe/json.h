/* A small JSON (RFC 8259) reader for `awgproxy ctl`: parses a whole document into a tree. Strict
 * (no comments, no trailing commas, no leading zeros), nesting limited to JSON_MAX_DEPTH, strings
 * decoded to UTF-8 (embedded NULs rejected). */
#ifndef AWGPROXY_OBSERVE_JSON_H
#define AWGPROXY_OBSERVE_JSON_H

#include <stdbool.h>
#include <stddef.h>

#define JSON_MAX_DEPTH 32

typedef enum { JSON_NULL, JSON_BOOL, JSON_NUMBER, JSON_STRING, JSON_ARRAY, JSON_OBJECT } json_type;

typedef struct json_value {
  json_type type;
  bool boolean;
  double number;
  char *string;             /* JSON_STRING */
  size_t n;                 /* JSON_ARRAY / JSON_OBJECT: element count */
  struct json_value *items; /* elements / member values */
  char **keys;              /* JSON_OBJECT: member names, parallel to items */
} json_value;

/* NULL with a message ("offset 12: expected ','") in err on malformed input or no memory. */
json_value *json_parse(const char *text, size_t len, char *err, size_t errlen);
void json_free(json_value *v);

/* Member of an object (first match), or NULL (also when v is NULL or not an object). */
const json_value *json_get(const json_value *v, const char *key);
/* Typed accessors with a fallback for absent members / other types. */
const char *json_get_string(const json_value *v, const char *key, const char *dflt);
double json_get_number(const json_value *v, const char *key, double dflt);
bool json_get_bool(const json_value *v, const char *key, bool dflt);

#endif
