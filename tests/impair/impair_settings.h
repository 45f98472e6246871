/* Settings by name ("up.loss 0.02", "both.rate 1M", "down.blackhole on"), shared by the command
 * line and the control channel, and the JSON text of settings and counters. */
#ifndef IMPAIR_SETTINGS_H
#define IMPAIR_SETTINGS_H

#include <stddef.h>

#include "impair.h"

/* The names understood after "up.", "down." or "both.", for --help. */
extern const char *const impair_setting_help;

/* Parses "up|down|both" into a mask of directions (bit DIR_UP, bit DIR_DOWN). 0 if invalid. */
unsigned impair_parse_dirs(const char *text);

/* Applies value to setting "DIR.KEY" on set[DIR_COUNT]. Returns 0, or -1 with a reason in err.
 * Nothing changes on error. */
int impair_setting_apply(struct impair_settings *set, const char *name, const char *value,
                         char *err, size_t errcap);

/* A boolean word: on/off, 1/0, true/false, yes/no. -1 if none of those. */
int impair_parse_bool(const char *text);

/* {"up":{...},"down":{...}} */
void impair_settings_json(const struct impair_settings *set, char *out, size_t cap);
/* {"received":..., ...} for one direction; held = datagrams the relay still holds. */
size_t impair_counters_json(const struct impair_counters *c, uint64_t held, char *out, size_t cap);

#endif
