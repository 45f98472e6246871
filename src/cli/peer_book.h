/* A server config seen as a list of named peers, for add-peer, remove-peer and list-peers: the
 * loaded config (keys, addresses) side by side with its text (the "# Name = …" notes, where each
 * [Peer] section starts and ends). */
#ifndef AWGPROXY_CLI_PEER_BOOK_H
#define AWGPROXY_CLI_PEER_BOOK_H

#include <stdbool.h>
#include <stddef.h>

#include "cli/conf_file.h"
#include "config/config.h"

#define PEER_NAME_MAX 63

typedef struct {
  app_config config;
  conf_text text;
  /* per config.peers[i]: its name ("" if none) and its lines [first, end) in text */
  char (*name)[PEER_NAME_MAX + 1];
  size_t *first_line, *end_line;
} peer_book;

/* Loads f's text (errors in the config are printed with their line numbers). */
int peer_book_load(peer_book *b, const conf_file *f);
void peer_book_free(peer_book *b);
/* Index of the peer named or keyed by `who` (a name, a base64 public key or its fingerprint),
 * or -1. */
int peer_book_find(const peer_book *b, const char *who);
/* The value of "# KEY = value" in [Interface], or "" (e.g. Endpoint). */
void peer_book_interface_note(const peer_book *b, const char *key, char *out, size_t n);

/* The prefixes joined by sep, with or without their lengths ("10.8.0.2/32, fd00::2/128"). */
void peer_book_join_cidrs(const cfg_cidr *list, size_t n, bool with_prefix, const char *sep,
                          char *out, size_t len);

/* Names may be used in shells, file names and QR labels: 1-63 of A-Z a-z 0-9 . _ - @ +, not
 * starting with '-' or '.'. */
bool peer_name_ok(const char *name);

/* Replaces f's content with text once it loads exactly as the server will load it (what: "with
 * the new peer", for the messages). Returns 0, or -1 after saying on stderr why nothing changed. */
int peer_book_commit(conf_file *f, const char *cmd, const char *what, const char *text, size_t len);

/* Asks the running server (its [Control] Listen) to reload and says what happened on stderr.
 * Returns 0 when reloaded or when no server runs, 1 when the server refused or failed. */
int peer_book_reload_server(const char *cmd, const char *config_path);

/* Where --keep-client-keys keeps client configs: "<folder>/<stem>.clients/<name>.conf". */
int peer_book_client_file(const char *config_path, const char *name, char *out, size_t n);

#endif
