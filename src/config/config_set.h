/* Several servers in one client: `awgproxy client -c a.conf -c b.conf …` or `-c DIR/` (every
 * *.conf in it, by name). Each file is a stock AmneziaWG/WireGuard client config for one server,
 * named after the file; our own sections ([Socks], [Forward], [Http], [Control], [Metrics],
 * [Log], [Client]) may sit in any of them and are merged into one front-end, each key from one
 * file only. A file that does not load is reported and left out; the others run.
 * docs/config-reference.md §14. A single -c FILE is config_load_file, as always. */
#ifndef AWGPROXY_CONFIG_CONFIG_SET_H
#define AWGPROXY_CONFIG_CONFIG_SET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "config/config.h"

#define CFG_SET_MAX 16

/* What loading a set found, per source: each file, and each directory that held nothing. */
typedef struct {
  char path[512];
  diag_list diags; /* lines are lines of this file */
  bool usable;     /* loaded and joined the set */
} cfg_set_file;

typedef struct {
  cfg_set_file *files; /* in path order */
  size_t n;
  diag_list whole; /* the set as a whole (too many files, none usable), printed with label */
  char label[512]; /* the first path given */
  size_t errors, warnings; /* over every list */
} cfg_set_report;

/* Prints every diagnostic as diag_list_print does: `PATH:LINE: error|warning: message`, file by
 * file, then the set's own as `LABEL: error: message`. */
void cfg_set_report_print(const cfg_set_report *r, FILE *out);
void cfg_set_report_free(cfg_set_report *r);

typedef struct {
  char name[CFG_SERVER_NAME_MAX + 1]; /* file name without directory and ".conf" */
  app_config cfg; /* that file loaded on its own: its [Interface] and [Peer] (and any of our
                     sections it holds, as written; the front-end rules are checked on front) */
} cfg_set_server;

typedef struct {
  app_config front; /* our sections merged from every usable file; no [Interface], no peers;
                       validated as a single client's would be ([Socks] Listen defaulted);
                       front.path = the first file's path */
  cfg_set_server *servers;
  size_t n;        /* usable servers only, in path order */
  size_t n_broken; /* files that did not load (reported in the diagnostics) */
} config_set;

/* Expands directories in paths[n] (their *.conf, sorted by name; names starting with '.' are
 * skipped), loads each file. Diagnostics go to out, per file. Returns 0 when at least one server
 * is usable and the merged front-end is valid, -1 otherwise (set is then empty). Call
 * config_set_free and cfg_set_report_free in both cases. */
int config_set_load(config_set *set, const char *const *paths, size_t n, cfg_set_report *out);
void config_set_free(config_set *set); /* wipes keys */
/* Index of the server named name (case-insensitive, as names are unique that way), or -1. */
int config_set_find(const config_set *set, const char *name);

#endif
