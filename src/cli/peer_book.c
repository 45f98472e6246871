/* A server config as named peers (peer_book.h). */
#include "cli/peer_book.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli/cli.h"
#include "observe/json.h"
#include "util/keys.h"

bool peer_name_ok(const char *name) {
  size_t n = strlen(name);
  if (n == 0 || n > PEER_NAME_MAX || name[0] == '-' || name[0] == '.') return false;
  for (size_t i = 0; i < n; i++) {
    char ch = name[i];
    bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              strchr("._-@+", ch);
    if (!ok) return false;
  }
  return true;
}

static int section_of_line(const conf_text *t, size_t line) {
  for (size_t s = 0; s < t->n_sections; s++)
    if (t->header_line[s] == line) return (int)s;
  return -1;
}

int peer_book_load(peer_book *b, const conf_file *f) {
  memset(b, 0, sizeof *b);
  config_init(&b->config);
  diag_list d = {0};
  int rc = config_load_buffer(&b->config, f->text, f->len, f->path, &d);
  if (rc != 0) {
    diag_list_print(&d, f->path, stderr);
    fprintf(stderr, "%s has errors: fix them first (`awgproxy check -c %s`)\n", f->path, f->path);
  }
  diag_list_free(&d);
  if (rc != 0) return -1;
  size_t np = b->config.n_peers ? b->config.n_peers : 1;
  b->name = calloc(np, sizeof *b->name);
  b->first_line = calloc(np, sizeof *b->first_line);
  b->end_line = calloc(np, sizeof *b->end_line);
  if (!b->name || !b->first_line || !b->end_line || conf_text_split(f->text, f->len, &b->text))
    return fputs("out of memory\n", stderr), -1;
  const conf_text *t = &b->text;
  for (size_t i = 0; i < b->config.n_peers; i++) {
    /* the loader numbers lines from 1 */
    int s = section_of_line(t, (size_t)b->config.peers[i].line - 1);
    if (s < 0) return fprintf(stderr, "%s: cannot find [Peer] %zu in the text\n", f->path, i), -1;
    b->first_line[i] = t->header_line[s];
    b->end_line[i] = (size_t)s + 1 < t->n_sections ? t->header_line[s + 1] : t->n;
    for (size_t l = b->first_line[i]; l < b->end_line[i]; l++)
      if (conf_line_note(&t->lines[l], "Name", b->name[i], sizeof b->name[i])) break;
  }
  return 0;
}

void peer_book_free(peer_book *b) {
  config_free(&b->config);
  conf_text_free(&b->text);
  free(b->name);
  free(b->first_line);
  free(b->end_line);
  memset(b, 0, sizeof *b);
}

int peer_book_find(const peer_book *b, const char *who) {
  uint8_t key[AWG_KEY_LEN];
  char why[128];
  bool is_key = key_from_base64(who, key, why, sizeof why) == 0;
  for (size_t i = 0; i < b->config.n_peers; i++) {
    const cfg_peer *p = &b->config.peers[i];
    char fp[9];
    key_fingerprint(p->public_key, fp);
    if ((b->name[i][0] && !strcasecmp(b->name[i], who)) ||
        (is_key && !memcmp(key, p->public_key, AWG_KEY_LEN)) || !strcmp(fp, who))
      return (int)i;
  }
  return -1;
}

void peer_book_interface_note(const peer_book *b, const char *key, char *out, size_t n) {
  out[0] = '\0';
  const conf_text *t = &b->text;
  for (size_t l = 0; l < t->n; l++) {
    int s = t->lines[l].section;
    if (s >= 0 && strcasecmp(t->section_name[s], "Interface") == 0 &&
        conf_line_note(&t->lines[l], key, out, n))
      return;
  }
}

int peer_book_commit(conf_file *f, const char *cmd, const char *what, const char *text,
                     size_t len) {
  app_config check;
  diag_list d = {0};
  char err[512];
  int rc = -1;
  config_init(&check);
  if (config_load_buffer(&check, text, len, f->path, &d) != 0) {
    diag_list_print(&d, f->path, stderr);
    fprintf(stderr, "awgproxy %s: the config %s does not load; nothing changed\n", cmd, what);
  } else if (conf_file_replace(f, text, len, err, sizeof err) != 0) {
    fprintf(stderr, "awgproxy %s: %s; nothing changed\n", cmd, err);
  } else {
    rc = 0;
  }
  diag_list_free(&d);
  config_free(&check);
  return rc;
}

int peer_book_reload_server(const char *cmd, const char *config_path) {
  int status = 0;
  char *body = NULL, err[512] = "";
  int rc = ctl_config_request(config_path, "POST", "/reload", &status, &body, err, sizeof err);
  if (rc == CTL_NO_CONTROL) {
    fprintf(stderr,
            "awgproxy %s: %s has no [Control] Listen: reload the server yourself "
            "(systemctl reload, or kill -HUP its pid)\n",
            cmd, config_path);
    return 0;
  }
  if (rc == CTL_NOT_RUNNING) {
    fprintf(stderr, "awgproxy %s: the server is not running; the change applies when it starts\n",
            cmd);
    return 0;
  }
  if (rc != 0) {
    fprintf(stderr,
            "awgproxy %s: the file is written, but the server could not be asked to "
            "reload: %s\n",
            cmd, err);
    return 1;
  }
  json_value *doc = json_parse(body, strlen(body), err, sizeof err);
  const json_value *p = json_get(doc, "peers");
  if (status == 200)
    fprintf(stderr, "awgproxy %s: the server reloaded (%.0f peer(s) added, %.0f removed)\n", cmd,
            json_get_number(p, "added", 0), json_get_number(p, "removed", 0));
  else
    fprintf(stderr, "awgproxy %s: the file is written, but the server refused to reload: %s\n", cmd,
            json_get_string(doc, "error", "(no reason given)"));
  json_free(doc);
  free(body);
  return status == 200 ? 0 : 1;
}

void peer_book_join_cidrs(const cfg_cidr *list, size_t n, bool with_prefix, const char *sep,
                          char *out, size_t len) {
  out[0] = '\0';
  for (size_t i = 0; i < n; i++) {
    char a[64];
    cfg_format_cidr(&list[i], a, sizeof a);
    if (!with_prefix) *strchr(a, '/') = '\0';
    size_t used = strlen(out);
    snprintf(out + used, len - used, "%s%s", used ? sep : "", a);
  }
}

int peer_book_client_file(const char *config_path, const char *name, char *out, size_t n) {
  const char *slash = strrchr(config_path, '/');
  const char *base = slash ? slash + 1 : config_path;
  const char *dot = strrchr(base, '.');
  int dir_len = slash ? (int)(slash - config_path) : 0;
  int stem = dot && dot != base ? (int)(dot - base) : (int)strlen(base);
  int len = snprintf(out, n, "%.*s%s%.*s.clients/%s.conf", dir_len, config_path, slash ? "/" : "",
                     stem, base, name);
  return len > 0 && (size_t)len < n ? 0 : -1;
}
