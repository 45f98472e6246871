/* [Client]: how a client with several servers (config_set.h) watches and chooses them, and the
 * rule for those servers' names (docs/config-reference.md §8b). */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "config/config_internal.h"

bool cfg_server_name_ok(const char *s) {
  size_t n = strlen(s);
  if (n == 0 || n > CFG_SERVER_NAME_MAX) return false;
  for (size_t i = 0; i < n; i++) {
    char ch = s[i];
    bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              strchr("._-@+", ch);
    if (!ok) return false;
  }
  return true;
}

static int k_probe_interval(load_ctx *L, char *v, char *err, size_t n) {
  uint64_t s;
  if (cfg_parse_uint(v, 5, 3600, &s, err, n)) return -1;
  cfg_load_config(L)->client_probe_interval = (uint32_t)s;
  return 0;
}

static int k_probe_failures(load_ctx *L, char *v, char *err, size_t n) {
  uint64_t f;
  if (cfg_parse_uint(v, 1, 10, &f, err, n)) return -1;
  cfg_load_config(L)->client_probe_failures = (uint32_t)f;
  return 0;
}

static int k_failback(load_ctx *L, char *v, char *err, size_t n) {
  if (cfg_parse_bool(v, &cfg_load_config(L)->client_failback) != 0)
    return snprintf(err, n, "'%.32s' is not a boolean; use on or off", v), -1;
  return 0;
}

/* Whether NAME is one of the set's servers only config_set.c can tell, once every file is read. */
static int k_select(load_ctx *L, char *v, char *err, size_t n) {
  app_config *c = cfg_load_config(L);
  if (strcasecmp(v, "auto") == 0) return c->client_select[0] = '\0', 0;
  if (!cfg_server_name_ok(v))
    return snprintf(err, n,
                    "'%.64s' is not a server name; use auto or the name of one of the configs "
                    "(its file name without .conf: 1-63 of A-Z a-z 0-9 . _ - @ +)",
                    v),
           -1;
  if (!L->opts->set_member)
    return snprintf(
               err, n,
               "a server by name needs several configs (awgproxy client -c a.conf -c b.conf, or -c "
               "DIR/); with one there is nothing to choose: remove it or write auto"),
           -1;
  snprintf(c->client_select, sizeof c->client_select, "%s", v);
  return 0;
}

const key_spec cfg_client_keys[] = {
    {"ProbeInterval", k_probe_interval, 0}, {"Select", k_select, 0}, {"Failback", k_failback, 0},
    {"ProbeFailures", k_probe_failures, 0}, {NULL, NULL, 0},
};
