/* What a configuration reload may change while the daemon runs. Keys that shape sockets, the
 * tunnel device or the wire format (docs/config-reference.md §2.1 "What reload applies") keep
 * their running values: config_keep_restart_only() names each such key whose value differs in
 * the newly loaded file and copies the running value back into it, so the loaded config
 * describes exactly what is in effect afterwards. */
#ifndef AWGPROXY_CONFIG_CONFIG_DIFF_H
#define AWGPROXY_CONFIG_CONFIG_DIFF_H

#include <stddef.h>

#include "config/config.h"

#define CFG_RESTART_KEYS_MAX 96 /* more than there are restart-only keys */

/* Writes up to max names ("[Interface] ListenPort", …; static strings) of restart-only keys that
 * differ between loaded and running, and gives loaded the running values (deep copies: loaded
 * never shares memory with running). Returns the number of names, or -1 when out of memory
 * (loaded is then partly updated: free it and keep running). */
int config_keep_restart_only(app_config *loaded, const app_config *running, const char **names,
                             size_t max);

#endif
