/* `awgproxy remove-peer` and `awgproxy list-peers`: the other two operator commands on a server
 * config's peers (add-peer is in cmd_add_peer.c). */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/peer_book.h"
#include "observe/json.h"
#include "util/keys.h"

static const char remove_usage[] =
    "Usage: awgproxy remove-peer -c FILE NAME|PUBKEY [--no-reload]\n"
    "Removes a client's [Peer] from a server config (atomically, under the same lock as add-peer)\n"
    "and reloads the running server, which ends that client's sessions and connections at once.\n"
    "The client is named by its '# Name', its public key or its key fingerprint (list-peers).\n";

static const char list_usage[] =
    "Usage: awgproxy list-peers -c FILE [--json]\n"
    "Lists a server config's peers: name, tunnel addresses and key fingerprint, and, when the\n"
    "server runs (its [Control] Listen answers), each peer's endpoint, latest handshake and\n"
    "transfer.\n";

/* -c FILE, one optional positional, and the given flag. */
static int parse(const char *cmd, const char *usage, int argc, char **argv, const char **config,
                 const char **who, const char *flag, bool *flag_set) {
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "-c") || !strcmp(a, "--config")) {
      if (i + 1 >= argc) break;
      *config = argv[++i];
    } else if (!strcmp(a, flag)) {
      *flag_set = true;
    } else if (a[0] != '-' && who && !*who) {
      *who = a;
    } else {
      fprintf(stderr, "awgproxy %s: unexpected argument '%s'\n%s", cmd, a, usage);
      return 2;
    }
  }
  if (!*config || (who && !*who)) {
    fprintf(stderr, "awgproxy %s: %s\n%s", cmd,
            *config ? "which peer? give its NAME or public key" : "give the server config: -c FILE",
            usage);
    return 2;
  }
  return 0;
}

/* ---- remove-peer ---------------------------------------------------------------------------- */

static char *without_lines(const peer_book *b, size_t first, size_t end, size_t *len) {
  const conf_text *t = &b->text;
  /* add-peer put a blank line before the section: take it too */
  if (first > 0 && t->lines[first - 1].len == 0) first--;
  size_t cap = 1;
  for (size_t l = 0; l < t->n; l++) cap += t->lines[l].len + 1;
  char *out = malloc(cap);
  if (!out) return NULL;
  size_t n = 0;
  for (size_t l = 0; l < t->n; l++) {
    if (l >= first && l < end) continue;
    memcpy(out + n, t->lines[l].start, t->lines[l].len);
    n += t->lines[l].len;
    out[n++] = '\n';
  }
  out[n] = '\0';
  *len = n;
  return out;
}

static int remove_locked(conf_file *f, const char *who, char *name, size_t name_len) {
  peer_book b;
  int rc = 1;
  if (peer_book_load(&b, f) != 0) goto out;
  int i = peer_book_find(&b, who);
  if (i < 0) {
    fprintf(stderr,
            "awgproxy remove-peer: no peer named or keyed '%s' in %s (awgproxy "
            "list-peers -c %s lists them)\n",
            who, f->path, f->path);
    goto out;
  }
  size_t len;
  char *text = without_lines(&b, b.first_line[i], b.end_line[i], &len);
  if (!text) {
    fputs("awgproxy remove-peer: out of memory\n", stderr);
  } else if (peer_book_commit(f, "remove-peer", "without the peer", text, len) == 0) {
    char fp[9];
    key_fingerprint(b.config.peers[i].public_key, fp);
    snprintf(name, name_len, "%s", b.name[i][0] ? b.name[i] : fp);
    fprintf(stderr, "awgproxy remove-peer: removed %s (key %s) from %s\n", name, fp, f->path);
    rc = 0;
  }
  if (text) explicit_bzero(text, len);
  free(text);
out:
  peer_book_free(&b);
  return rc;
}

int cmd_remove_peer(int argc, char **argv) {
  if (cli_wants_help(argc, argv)) return fputs(remove_usage, stdout), 0;
  const char *config = NULL, *who = NULL;
  bool no_reload = false;
  int rc = parse("remove-peer", remove_usage, argc, argv, &config, &who, "--no-reload", &no_reload);
  if (rc) return rc;
  conf_file f;
  char err[512], name[PEER_NAME_MAX + 1] = "";
  if (conf_file_open_locked(&f, config, err, sizeof err) != 0) {
    fprintf(stderr, "awgproxy remove-peer: %s\n", err);
    conf_file_close(&f);
    return 1;
  }
  rc = remove_locked(&f, who, name, sizeof name);
  if (!rc && !no_reload) rc = peer_book_reload_server("remove-peer", config);
  conf_file_close(&f);
  char kept[PATH_MAX];
  if (name[0] && peer_book_client_file(config, name, kept, sizeof kept) == 0 && unlink(kept) == 0)
    fprintf(stderr, "awgproxy remove-peer: deleted the kept client config %s\n", kept);
  return rc;
}

/* ---- list-peers ----------------------------------------------------------------------------- */

/* The running server's view of each peer, by fingerprint; NULL when it does not answer. */
static json_value *live_peers(const char *config) {
  int status = 0;
  char *body = NULL, err[512];
  if (ctl_config_request(config, "GET", "/peers", &status, &body, err, sizeof err) != 0)
    return NULL;
  json_value *doc = status == 200 ? json_parse(body, strlen(body), err, sizeof err) : NULL;
  free(body);
  return doc;
}

static const json_value *live_peer(const json_value *doc, const char *fp) {
  const json_value *peers = json_get(doc, "peers");
  if (!peers || peers->type != JSON_ARRAY) return NULL;
  for (size_t i = 0; i < peers->n; i++)
    if (!strcmp(json_get_string(&peers->items[i], "peer", ""), fp)) return &peers->items[i];
  return NULL;
}

static void addresses_of(const cfg_peer *p, char *out, size_t n) {
  peer_book_join_cidrs(p->allowed_ips, p->n_allowed_ips, true, ",", out, n);
}

static void ago(const json_value *live, char *out, size_t n) {
  const json_value *hs = json_get(live, "last_handshake");
  if (!live) return (void)snprintf(out, n, "-");
  if (!hs || hs->type != JSON_NUMBER) return (void)snprintf(out, n, "never");
  double d = difftime(time(NULL), (time_t)hs->number);
  if (d < 0) d = 0;
  if (d < 120)
    snprintf(out, n, "%.0fs ago", d);
  else if (d < 7200)
    snprintf(out, n, "%.0fm ago", d / 60);
  else if (d < 172800)
    snprintf(out, n, "%.0fh ago", d / 3600);
  else
    snprintf(out, n, "%.0fd ago", d / 86400);
}

static void bytes(double v, char *out, size_t n) {
  static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (v >= 1024 && u < 4) v /= 1024, u++;
  snprintf(out, n, u ? "%.1f %s" : "%.0f %s", v, units[u]);
}

/* A JSON string: names come from comments a person may have written, so anything is escaped. */
static void json_str(const char *s) {
  putchar('"');
  for (; *s; s++) {
    unsigned char ch = (unsigned char)*s;
    if (ch == '"' || ch == '\\')
      printf("\\%c", ch);
    else if (ch < 0x20)
      printf("\\u%04x", ch);
    else
      putchar(ch);
  }
  putchar('"');
}

static void print_json(const peer_book *b, const json_value *doc) {
  fputs("{\"peers\":[", stdout);
  for (size_t i = 0; i < b->config.n_peers; i++) {
    const cfg_peer *p = &b->config.peers[i];
    char fp[9], key[AWG_KEY_B64_LEN + 1], addrs[512];
    key_fingerprint(p->public_key, fp);
    key_to_base64(p->public_key, key);
    addresses_of(p, addrs, sizeof addrs);
    fputs(i ? ",{\"name\":" : "{\"name\":", stdout);
    json_str(b->name[i]); /* keys, fingerprints and addresses need no escaping */
    printf(",\"public_key\":\"%s\",\"fingerprint\":\"%s\",\"allowed_ips\":\"%s\"", key, fp, addrs);
    const json_value *live = live_peer(doc, fp);
    if (live) {
      const json_value *hs = json_get(live, "last_handshake");
      const char *ep = json_get_string(live, "endpoint", NULL);
      fputs(",\"endpoint\":", stdout);
      if (ep)
        json_str(ep);
      else
        fputs("null", stdout);
      if (hs && hs->type == JSON_NUMBER)
        printf(",\"last_handshake\":%.3f", hs->number);
      else
        fputs(",\"last_handshake\":null", stdout);
      printf(",\"rx_bytes\":%.0f,\"tx_bytes\":%.0f", json_get_number(live, "rx_bytes", 0),
             json_get_number(live, "tx_bytes", 0));
    }
    putchar('}');
  }
  printf("],\"server_running\":%s}\n", doc ? "true" : "false");
}

int cmd_list_peers(int argc, char **argv) {
  if (cli_wants_help(argc, argv)) return fputs(list_usage, stdout), 0;
  const char *config = NULL;
  bool json = false;
  int rc = parse("list-peers", list_usage, argc, argv, &config, NULL, "--json", &json);
  if (rc) return rc;
  conf_file f;
  char err[512];
  /* The lock makes the listing consistent with a concurrent add-peer. */
  if (conf_file_open_locked(&f, config, err, sizeof err) != 0) {
    fprintf(stderr, "awgproxy list-peers: %s\n", err);
    conf_file_close(&f);
    return 1;
  }
  peer_book b;
  rc = peer_book_load(&b, &f);
  conf_file_close(&f);
  if (rc) return peer_book_free(&b), 1;
  json_value *doc = live_peers(config);
  if (json) {
    print_json(&b, doc);
  } else {
    printf("%-20s %-44s %-9s", "NAME", "ADDRESSES", "KEY");
    if (doc) printf(" %-22s %-14s %-10s %-10s", "ENDPOINT", "HANDSHAKE", "RECEIVED", "SENT");
    putchar('\n');
    for (size_t i = 0; i < b.config.n_peers; i++) {
      const cfg_peer *p = &b.config.peers[i];
      char fp[9], addrs[512];
      key_fingerprint(p->public_key, fp);
      addresses_of(p, addrs, sizeof addrs);
      printf("%-20s %-44s %-9s", b.name[i][0] ? b.name[i] : "(unnamed)", addrs, fp);
      if (doc) {
        const json_value *live = live_peer(doc, fp);
        char when[32], rx[24], tx[24];
        ago(live, when, sizeof when);
        bytes(json_get_number(live, "rx_bytes", 0), rx, sizeof rx);
        bytes(json_get_number(live, "tx_bytes", 0), tx, sizeof tx);
        const char *ep = json_get_string(live, "endpoint", NULL);
        printf(" %-22s %-14s %-10s %-10s", ep ? ep : "-", when, rx, tx);
      }
      putchar('\n');
    }
    if (!doc) puts("(the server is not running or has no [Control] Listen: no live figures)");
  }
  json_free(doc);
  peer_book_free(&b);
  return 0;
}
