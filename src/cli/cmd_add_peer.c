/* `awgproxy add-peer`: a new client in one command. Allocates its tunnel address, makes its keys,
 * appends its [Peer] to the server config (locked, atomic), reloads the running server and prints
 * a stock AmneziaWG client config, optionally as a QR code. */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>

#include "cli/cli.h"
#include "cli/peer_book.h"
#include "cli/qr.h"
#include "util/keys.h"

static const char add_usage[] =
    "Usage: awgproxy add-peer -c FILE NAME [--dns IP[,IP]] [--allowed-ips LIST]\n"
    "                         [--endpoint HOST:PORT] [--out FILE] [--qr] [--qr-png FILE]\n"
    "                         [--keep-client-keys] [--no-reload]\n"
    "Adds a client to a server config: the next free tunnel address, a new key pair and preshared\n"
    "key, a [Peer] with '# Name = NAME' (written atomically, under a lock), a reload of the\n"
    "running server, and the client's config on standard output: a stock AmneziaWG file for the\n"
    "AmneziaVPN / AmneziaWG apps, amneziawg-tools or `awgproxy client`.\n\n"
    "  -c, --config FILE     the server config (written by `awgproxy init-server`)\n"
    "  NAME                  the client's name: 1-63 of A-Z a-z 0-9 . _ - @ +\n"
    "  --dns IP[,IP]         the client's DNS (default: the server's tunnel address, which\n"
    "                        answers DNS through the tunnel)\n"
    "  --allowed-ips LIST    what the client sends through the tunnel (default 0.0.0.0/0, ::/0)\n"
    "  --endpoint HOST:PORT  where the client reaches the server (default: the server config's\n"
    "                        '# Endpoint' line)\n"
    "  --out FILE            write the client config to FILE (mode 0600) instead of stdout\n"
    "  --qr                  also draw it as a QR code in the terminal, for the mobile apps\n"
    "  --qr-png FILE         also write the QR code as a PNG (mode 0600)\n"
    "  --keep-client-keys    keep a copy of the client config next to the server config\n"
    "                        (FOLDER/STEM.clients/NAME.conf); by default the server keeps no\n"
    "                        client private key\n"
    "  --no-reload           do not ask the running server to reload\n";

typedef struct {
  const char *config, *name, *dns, *allowed_ips, *endpoint, *out, *qr_png;
  bool qr, keep_keys, no_reload;
} add_opts;

static int usage_error(const char *what, const char *arg) {
  fprintf(stderr, "awgproxy add-peer: %s%s%s\n%s", what, arg ? " " : "", arg ? arg : "", add_usage);
  return 2;
}

static int parse_args(int argc, char **argv, add_opts *o) {
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i], **slot = NULL;
    if (!strcmp(a, "-c") || !strcmp(a, "--config"))
      slot = &o->config;
    else if (!strcmp(a, "--dns"))
      slot = &o->dns;
    else if (!strcmp(a, "--allowed-ips"))
      slot = &o->allowed_ips;
    else if (!strcmp(a, "--endpoint"))
      slot = &o->endpoint;
    else if (!strcmp(a, "--out"))
      slot = &o->out;
    else if (!strcmp(a, "--qr-png"))
      slot = &o->qr_png;
    else if (!strcmp(a, "--qr")) {
      o->qr = true;
      continue;
    } else if (!strcmp(a, "--keep-client-keys")) {
      o->keep_keys = true;
      continue;
    } else if (!strcmp(a, "--no-reload")) {
      o->no_reload = true;
      continue;
    } else if (a[0] == '-')
      return usage_error("unknown option", a);
    else if (o->name)
      return usage_error("one NAME at a time; extra:", a);
    else {
      o->name = a;
      continue;
    }
    if (i + 1 >= argc) return usage_error(a, "needs a value");
    *slot = argv[++i];
  }
  if (!o->config) return usage_error("which server config? give -c FILE", NULL);
  if (!o->name) return usage_error("give the new client a NAME", NULL);
  if (!peer_name_ok(o->name))
    return usage_error("NAME must be 1-63 of A-Z a-z 0-9 . _ - @ + (not starting with - or .):",
                       o->name);
  return 0;
}

/* ---- the tunnel address ---------------------------------------------------------------------- */

static bool cidr_contains(const cfg_cidr *net, const uint8_t *addr, int family) {
  if (net->family != family) return false;
  for (int bit = 0; bit < net->prefix; bit++) {
    uint8_t m = (uint8_t)(0x80 >> (bit % 8));
    if ((net->addr[bit / 8] & m) != (addr[bit / 8] & m)) return false;
  }
  return true;
}

static bool address_taken(const app_config *c, const uint8_t *addr, int family) {
  for (size_t i = 0; i < c->n_addresses; i++)
    if (c->addresses[i].family == family &&
        !memcmp(c->addresses[i].addr, addr, family == AF_INET ? 4 : 16))
      return true;
  for (size_t p = 0; p < c->n_peers; p++)
    for (size_t k = 0; k < c->peers[p].n_allowed_ips; k++)
      if (cidr_contains(&c->peers[p].allowed_ips[k], addr, family)) return true;
  return false;
}

/* net + offset, or false when that leaves the network (or is its last address). */
static bool host_at(const cfg_cidr *net, uint64_t offset, uint8_t *out) {
  int len = net->family == AF_INET ? 4 : 16, host_bits = len * 8 - net->prefix;
  if (host_bits < 64 && offset + 1 >= (1ULL << host_bits)) return false;
  memcpy(out, net->addr, 16);
  unsigned carry = 0;
  for (int i = len - 1; i >= 0; i--, offset >>= 8) {
    unsigned sum = out[i] + (unsigned)(offset & 0xff) + carry;
    out[i] = (uint8_t)sum;
    carry = sum >> 8;
  }
  return true;
}

static const cfg_cidr *server_net(const app_config *c, int family) {
  for (size_t i = 0; i < c->n_addresses; i++)
    if (c->addresses[i].family == family && c->addresses[i].prefix < (family == AF_INET ? 31 : 127))
      return &c->addresses[i];
  return NULL;
}

/* The first host number n >= 2 free in every tunnel network the server has; the same n in both
 * families keeps the addresses easy to read (10.8.0.5 and fd..::5). */
static int allocate(const app_config *c, cfg_cidr *v4, cfg_cidr *v6, char *err, size_t errlen) {
  const cfg_cidr *n4 = server_net(c, AF_INET), *n6 = server_net(c, AF_INET6);
  if (!n4 && !n6)
    return snprintf(err, errlen,
                    "the server's [Interface] Address has no network to give "
                    "addresses from (e.g. Address = 10.8.0.1/24)"),
           -1;
  cfg_cidr net4 = n4 ? *n4 : (cfg_cidr){0}, net6 = n6 ? *n6 : (cfg_cidr){0};
  for (int bit = net4.prefix; n4 && bit < 32; bit++)
    net4.addr[bit / 8] &= (uint8_t) ~(0x80 >> (bit % 8));
  for (int bit = net6.prefix; n6 && bit < 128; bit++)
    net6.addr[bit / 8] &= (uint8_t) ~(0x80 >> (bit % 8));
  for (uint64_t n = 2; n < (1u << 24); n++) {
    uint8_t a4[16], a6[16];
    bool ok4 = !n4 || host_at(&net4, n, a4), ok6 = !n6 || host_at(&net6, n, a6);
    if (!ok4 || !ok6) break;
    if ((n4 && address_taken(c, a4, AF_INET)) || (n6 && address_taken(c, a6, AF_INET6))) continue;
    *v4 = (cfg_cidr){.family = n4 ? AF_INET : 0, .prefix = 32};
    *v6 = (cfg_cidr){.family = n6 ? AF_INET6 : 0, .prefix = 128};
    if (n4) memcpy(v4->addr, a4, 4);
    if (n6) memcpy(v6->addr, a6, 16);
    return 0;
  }
  return snprintf(err, errlen, "the tunnel network is full: widen [Interface] Address's prefix"),
         -1;
}

/* ---- texts ----------------------------------------------------------------------------------- */

/* The [Interface] keys a client must share with the server (S, H, AWG 3.x) or should send like
 * it (J, I), copied as the server config writes them. */
static bool copied_key(const char *key) {
  for (size_t i = 0; i < CFG_N_OBFUSCATION_KEYS; i++)
    if (!strcasecmp(cfg_obfuscation_keys[i], key)) return true;
  /* AWG 3.x keys outside the layer's parameters that the client should share or send alike */
  static const char *const more[] = {
      "ContentPaddingAddition", "RandomTrailers",   "RekeyAfterTime",      "RekeyTimeout",
      "RejectAfterTime",        "KeepaliveTimeout", "MaxHandshakeAttempts"};
  for (size_t i = 0; i < sizeof more / sizeof more[0]; i++)
    if (!strcasecmp(more[i], key)) return true;
  return false;
}

static void append(char **buf, size_t *len, size_t *cap, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void append(char **buf, size_t *len, size_t *cap, const char *fmt, ...) {
  for (;;) {
    va_list ap;
    va_start(ap, fmt);
    int n = *buf ? vsnprintf(*buf + *len, *cap - *len, fmt, ap) : -1;
    va_end(ap);
    if (n >= 0 && *len + (size_t)n < *cap) return (void)(*len += (size_t)n);
    size_t ncap = (*cap ? *cap * 2 : 4096) + (n > 0 ? (size_t)n : 0);
    char *nb = realloc(*buf, ncap);
    if (!nb) abort(); /* a few KiB; nothing sensible is left to do */
    *buf = nb;
    *cap = ncap;
  }
}

typedef struct {
  char priv[AWG_KEY_B64_LEN + 1], pub[AWG_KEY_B64_LEN + 1], psk[AWG_KEY_B64_LEN + 1];
  char addresses[128];
} client_keys;

static void make_keys(client_keys *k) {
  uint8_t priv[AWG_KEY_LEN], pub[AWG_KEY_LEN], psk[AWG_KEY_LEN];
  do key_generate_private(priv);
  while (key_public_from_private(priv, pub) != 0);
  key_generate_psk(psk);
  key_to_base64(priv, k->priv);
  key_to_base64(pub, k->pub);
  key_to_base64(psk, k->psk);
  sodium_memzero(priv, sizeof priv);
  sodium_memzero(psk, sizeof psk);
}

static void format_addresses(const cfg_cidr *v4, const cfg_cidr *v6, char *out, size_t n) {
  char a[64] = "", b[64] = "";
  if (v4->family) cfg_format_cidr(v4, a, sizeof a);
  if (v6->family) cfg_format_cidr(v6, b, sizeof b);
  snprintf(out, n, "%s%s%s", a, a[0] && b[0] ? ", " : "", b);
}

/* The server's tunnel addresses without prefixes: the default DNS. */
static void server_dns(const app_config *c, char *out, size_t n) {
  peer_book_join_cidrs(c->addresses, c->n_addresses, false, ", ", out, n);
}

static char *client_config(const peer_book *b, const add_opts *o, const client_keys *k,
                           const char *endpoint, size_t *len_out) {
  char *t = NULL;
  size_t len = 0, cap = 0;
  char dns[256], server_pub[AWG_KEY_B64_LEN + 1];
  server_dns(&b->config, dns, sizeof dns);
  key_to_base64(b->config.public_key, server_pub);
  append(&t, &len, &cap,
         "# %s: AmneziaWG client config, made by awgproxy add-peer\n[Interface]\n"
         "PrivateKey = %s\nAddress = %s\nDNS = %s\n",
         o->name, k->priv, k->addresses, o->dns ? o->dns : dns);
  for (size_t l = 0; l < b->text.n; l++) {
    const conf_line *line = &b->text.lines[l];
    char key[64];
    char *val = malloc(line->len + 1); /* an I-packet template can be long: never cut it */
    if (!val) abort();
    if (line->section >= 0 && !strcasecmp(b->text.section_name[line->section], "Interface") &&
        conf_line_pair(line, key, sizeof key, val, line->len + 1) && copied_key(key))
      append(&t, &len, &cap, "%s = %s\n", key, val);
    free(val);
  }
  append(&t, &len, &cap,
         "\n[Peer]\nPublicKey = %s\nPresharedKey = %s\nEndpoint = %s\n"
         "AllowedIPs = %s\nPersistentKeepalive = %s\n",
         server_pub, k->psk, endpoint, o->allowed_ips ? o->allowed_ips : "0.0.0.0/0, ::/0",
         /* an AWG 3.x server's clients keep NAT open at drawn intervals, not every 25 s */
         b->config.awg.v3.header_protection ? "20-30" : "25");
  *len_out = len;
  return t;
}

static char *server_text(const conf_file *f, const add_opts *o, const client_keys *k,
                         size_t *len_out) {
  char *t = NULL;
  size_t len = 0, cap = 0;
  append(&t, &len, &cap, "%s%s", f->text, f->len && f->text[f->len - 1] != '\n' ? "\n" : "");
  time_t now = time(NULL);
  struct tm tm;
  char when[32];
  strftime(when, sizeof when, "%Y-%m-%d", gmtime_r(&now, &tm));
  append(&t, &len, &cap,
         "\n[Peer]\n# Name = %s\n# Added = %s by awgproxy add-peer\n"
         "PublicKey = %s\nPresharedKey = %s\nAllowedIPs = %s\n",
         o->name, when, k->pub, k->psk, k->addresses);
  *len_out = len;
  return t;
}

/* ---- checks on what the client gets ------------------------------------------------------- */

static int check_client_inputs(const add_opts *o, const char *endpoint, char *err, size_t n) {
  cfg_hostport hp;
  char why[160];
  if (!endpoint[0])
    return snprintf(err, n,
                    "no endpoint for the client: give --endpoint HOST:PORT, or write "
                    "'# Endpoint = HOST:PORT' in the server config's [Interface]"),
           -1;
  if (cfg_parse_hostport(endpoint, &hp, why, sizeof why) != 0)
    return snprintf(err, n, "endpoint %s: %s", endpoint, why), -1;
  if (o->dns) {
    char list[512];
    snprintf(list, sizeof list, "%s", o->dns);
    for (char *save = NULL, *p = strtok_r(list, ", ", &save); p; p = strtok_r(NULL, ", ", &save)) {
      cfg_ip ip;
      if (cfg_parse_ip(p, &ip) != 0)
        return snprintf(err, n, "--dns %s: '%s' is not an IP", o->dns, p), -1;
    }
  }
  if (o->allowed_ips) {
    char list[1024];
    snprintf(list, sizeof list, "%s", o->allowed_ips);
    for (char *save = NULL, *p = strtok_r(list, ", ", &save); p; p = strtok_r(NULL, ", ", &save)) {
      cfg_cidr c;
      if (cfg_parse_cidr(p, &c, why, sizeof why) != 0)
        return snprintf(err, n, "--allowed-ips: '%s': %s", p, why), -1;
    }
  }
  return 0;
}

/* ---- output --------------------------------------------------------------------------------- */

static int write_private(const char *path, const char *text, size_t len, bool overwrite) {
  char err[512];
  if (conf_file_create(path, text, len, overwrite, err, sizeof err) == 0) return 0;
  fprintf(stderr, "awgproxy add-peer: %s\n", err);
  return 1;
}

static int keep_copy(const add_opts *o, const char *text, size_t len) {
  char path[PATH_MAX];
  if (peer_book_client_file(o->config, o->name, path, sizeof path) != 0) return 1;
  char *slash = strrchr(path, '/');
  *slash = '\0';
  if (mkdir(path, 0700) != 0 && errno != EEXIST) {
    fprintf(stderr, "awgproxy add-peer: cannot create %s: %s\n", path, strerror(errno));
    return 1;
  }
  *slash = '/';
  int rc = write_private(path, text, len, true);
  if (!rc) fprintf(stderr, "awgproxy add-peer: kept a copy in %s\n", path);
  return rc;
}

static int emit(const add_opts *o, const char *text, size_t len) {
  char err[512];
  int rc = 0;
  if (o->out) {
    rc |= write_private(o->out, text, len, true);
    if (!rc) fprintf(stderr, "awgproxy add-peer: client config written to %s\n", o->out);
  } else {
    fwrite(text, 1, len, stdout);
  }
  if (o->qr && qr_print_terminal(text, stdout, err, sizeof err) != 0)
    rc = 1, fprintf(stderr, "awgproxy add-peer: %s\n", err);
  if (o->qr_png && qr_write_png(text, o->qr_png, err, sizeof err) != 0)
    rc = 1, fprintf(stderr, "awgproxy add-peer: %s\n", err);
  if (fflush(stdout) != 0) rc = 1;
  return rc;
}

/* ---- the command -------------------------------------------------------------------------- */

static int add_locked(conf_file *f, const add_opts *o, char **client, size_t *client_len) {
  peer_book b;
  char err[512];
  int rc = 1;
  if (peer_book_load(&b, f) != 0) goto out;
  for (size_t i = 0; i < b.config.n_peers; i++)
    if (!strcasecmp(b.name[i], o->name)) {
      fprintf(stderr,
              "awgproxy add-peer: %s already has a peer named %s; pick another name or "
              "remove it first (awgproxy remove-peer)\n",
              f->path, o->name);
      goto out;
    }
  char endpoint[320];
  if (o->endpoint)
    snprintf(endpoint, sizeof endpoint, "%s", o->endpoint);
  else
    peer_book_interface_note(&b, "Endpoint", endpoint, sizeof endpoint);
  cfg_cidr v4, v6;
  if (check_client_inputs(o, endpoint, err, sizeof err) != 0 ||
      allocate(&b.config, &v4, &v6, err, sizeof err) != 0) {
    fprintf(stderr, "awgproxy add-peer: %s\n", err);
    goto out;
  }
  client_keys k;
  make_keys(&k);
  format_addresses(&v4, &v6, k.addresses, sizeof k.addresses);
  size_t len;
  char *text = server_text(f, o, &k, &len);
  /* The new file must load as the server will load it before it replaces the old one. */
  if (peer_book_commit(f, "add-peer", "with the new peer", text, len) == 0) {
    fprintf(stderr, "awgproxy add-peer: added %s (%s) to %s\n", o->name, k.addresses, f->path);
    *client = client_config(&b, o, &k, endpoint, client_len);
    rc = 0;
  }
  sodium_memzero(text, len);
  free(text);
  sodium_memzero(&k, sizeof k);
out:
  peer_book_free(&b);
  return rc;
}

int cmd_add_peer(int argc, char **argv) {
  if (cli_wants_help(argc, argv)) return fputs(add_usage, stdout), 0;
  add_opts o = {0};
  int rc = parse_args(argc, argv, &o);
  if (rc) return rc;
  conf_file f;
  char err[512];
  if (conf_file_open_locked(&f, o.config, err, sizeof err) != 0) {
    fprintf(stderr, "awgproxy add-peer: %s\n", err);
    conf_file_close(&f);
    return 1;
  }
  char *client = NULL;
  size_t client_len = 0;
  rc = add_locked(&f, &o, &client, &client_len);
  /* Reload while still holding the lock, so that reloads follow the writes in order. */
  if (!rc && !o.no_reload) rc = peer_book_reload_server("add-peer", o.config);
  conf_file_close(&f);
  if (client) {
    if (o.keep_keys) rc |= keep_copy(&o, client, client_len);
    rc |= emit(&o, client, client_len);
    sodium_memzero(client, client_len);
    free(client);
  }
  return rc;
}
