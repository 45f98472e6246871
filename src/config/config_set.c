/* Loading a set of client configs, one server per file (config_set.h): the arguments expanded
 * (directories to their *.conf), each file loaded on its own, our sections merged into one
 * front-end and checked once, then the names that Select and User pins refer to. */
#include "config/config_set.h"

#include <dirent.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "config/config_internal.h"

/* ---- the report ------------------------------------------------------------------------- */

static cfg_set_file *report_add(cfg_set_report *r, const char *path) {
  cfg_set_file *f = realloc(r->files, (r->n + 1) * sizeof *f);
  if (!f) return NULL;
  r->files = f;
  f = &f[r->n++];
  memset(f, 0, sizeof *f);
  snprintf(f->path, sizeof f->path, "%s", path);
  return f;
}

void cfg_set_report_print(const cfg_set_report *r, FILE *out) {
  for (size_t i = 0; i < r->n; i++) diag_list_print(&r->files[i].diags, r->files[i].path, out);
  diag_list_print(&r->whole, r->label, out);
}

void cfg_set_report_free(cfg_set_report *r) {
  for (size_t i = 0; i < r->n; i++) diag_list_free(&r->files[i].diags);
  free(r->files);
  diag_list_free(&r->whole);
  memset(r, 0, sizeof *r);
}

static void report_count(cfg_set_report *r) {
  r->errors = r->whole.errors;
  r->warnings = r->whole.warnings;
  for (size_t i = 0; i < r->n; i++) {
    r->errors += r->files[i].diags.errors;
    r->warnings += r->files[i].diags.warnings;
  }
}

/* ---- expanding the arguments ------------------------------------------------------------ */

typedef struct {
  char **paths;
  size_t n;
} path_list;

static int path_add(path_list *l, const char *dir, const char *name) {
  size_t dl = dir ? strlen(dir) : 0;
  bool slash = dl && dir[dl - 1] != '/';
  char **a = realloc(l->paths, (l->n + 1) * sizeof *a);
  if (!a) return -1;
  l->paths = a;
  size_t len = dl + slash + strlen(name) + 1;
  char *p = malloc(len);
  if (!p) return -1;
  snprintf(p, len, "%s%s%s", dir ? dir : "", slash ? "/" : "", name);
  a[l->n++] = p;
  return 0;
}

static void path_list_free(path_list *l) {
  for (size_t i = 0; i < l->n; i++) free(l->paths[i]);
  free(l->paths);
}

static int by_name(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool conf_name(const char *name) {
  size_t n = strlen(name);
  return name[0] != '.' && n > 5 && strcmp(name + n - 5, ".conf") == 0;
}

/* A directory's *.conf files (regular files only), sorted by name. */
static int expand_dir(const char *dir, path_list *out, cfg_set_report *r) {
  DIR *d = opendir(dir);
  cfg_set_file *f = NULL;
  if (!d) {
    if ((f = report_add(r, dir))) diag_add(&f->diags, DIAG_ERROR, 0, "cannot read the directory");
    return -1;
  }
  path_list found = {0};
  int rc = 0;
  for (struct dirent *e; rc == 0 && (e = readdir(d));) {
    struct stat st;
    if (!conf_name(e->d_name)) continue;
    if (path_add(&found, dir, e->d_name) != 0) rc = -1;
    if (rc == 0 && (stat(found.paths[found.n - 1], &st) != 0 || !S_ISREG(st.st_mode)))
      free(found.paths[--found.n]);
  }
  closedir(d);
  if (rc == 0 && found.n == 0 && (f = report_add(r, dir)))
    diag_add(&f->diags, DIAG_ERROR, 0,
             "holds no *.conf file; put one client config per server in it (NAME.conf)");
  if (found.n > 1) qsort(found.paths, found.n, sizeof *found.paths, by_name); /* NULL when empty */
  for (size_t i = 0; rc == 0 && i < found.n; i++) rc = path_add(out, NULL, found.paths[i]);
  path_list_free(&found);
  return rc == 0 && found.n ? 0 : -1;
}

static int expand(const char *const *args, size_t n, path_list *out, cfg_set_report *r) {
  int rc = 0;
  for (size_t i = 0; i < n; i++) {
    struct stat st;
    if (stat(args[i], &st) == 0 && S_ISDIR(st.st_mode))
      rc |= expand_dir(args[i], out, r);
    else if (path_add(out, NULL, args[i]) != 0)
      rc = -1;
  }
  if (out->n > CFG_SET_MAX) {
    diag_add(&r->whole, DIAG_ERROR, 0, "%zu configs given; a client takes at most %d servers",
             out->n, CFG_SET_MAX);
    rc = -1;
  }
  return rc;
}

/* ---- one server ------------------------------------------------------------------------- */

/* The server's name is its file's: "/etc/awgproxy/fra.conf" is "fra". */
static int server_name(const char *path, char *name, size_t len, diag_list *d) {
  const char *base = strrchr(path, '/');
  base = base ? base + 1 : path;
  size_t n = strlen(base);
  if (n > 5 && strcmp(base + n - 5, ".conf") == 0) n -= 5;
  snprintf(name, len, "%.*s", (int)n, base);
  if (n < len && cfg_server_name_ok(name)) return 0;
  diag_add(d, DIAG_ERROR, 0,
           "the server is named after its file, and '%.80s' is not a usable name (1-%d of A-Z a-z "
           "0-9 . _ - @ +); rename the file",
           base, CFG_SERVER_NAME_MAX);
  return -1;
}

/* A server of a set is reached through the [Peer] it names an Endpoint for. */
static int require_endpoint(const app_config *c, diag_list *d) {
  for (size_t i = 0; i < c->n_peers; i++)
    if (c->peers[i].has_endpoint) return 0;
  diag_add(d, DIAG_ERROR, c->n_peers ? c->peers[0].line : 0,
           "no [Peer] has an Endpoint; each config of a set is one server's client config, with "
           "Endpoint = HOST:PORT of that server");
  return -1;
}

typedef struct {
  config_set *set;
  cfg_set_report *r;
  cfg_front_merge fm;
  const char *const *paths;               /* the expanded files; fm.file indexes them */
  size_t *file_of;                        /* report entry of each expanded file */
  char (*names)[CFG_SERVER_NAME_MAX + 1]; /* every file's name, usable or not ("" if none) */
  bool front_bad;
} set_loader;

static bool name_taken(const set_loader *S, size_t i, diag_list *d) {
  for (size_t j = 0; j < i; j++)
    if (strcasecmp(S->names[j], S->names[i]) == 0) {
      diag_add(d, DIAG_ERROR, 0,
               "the server name '%s' is taken by %s (names come from the file names and must "
               "differ, case aside); rename one of the files",
               S->names[i], S->paths[j]);
      return true;
    }
  return false;
}

/* Loads file i on its own and, when it is usable, reads our sections from it into the front. A
 * file that fails but holds our sections fails the set: its [Socks] User lines, say, would be
 * missing from the front. */
static void load_one(set_loader *S, size_t i) {
  cfg_set_file *f = &S->r->files[S->file_of[i]];
  cfg_set_server *s = &S->set->servers[S->set->n];
  char *buf = NULL;
  size_t len = 0;
  config_init(&s->cfg);
  cfg_load_opts own = {.set_member = true};
  int rc = server_name(S->paths[i], S->names[i], sizeof S->names[i], &f->diags);
  if (rc == 0 && name_taken(S, i, &f->diags)) rc = -1;
  if (cfg_read_file(S->paths[i], &buf, &len, &f->diags) != 0) rc = -1;
  if (buf && cfg_load_text(&s->cfg, buf, len, S->paths[i], &f->diags, &own) != 0) rc = -1;
  if (rc == 0) rc = require_endpoint(&s->cfg, &f->diags);
  if (rc == 0) {
    cfg_load_opts front = {.set_member = true, .front = &S->fm};
    S->fm.file = (int)i;
    if (cfg_load_text(&S->set->front, buf, len, S->paths[i], &f->diags, &front) != 0)
      S->front_bad = true;
    snprintf(s->name, sizeof s->name, "%s", S->names[i]);
    f->usable = true;
    S->set->n++;
  } else {
    S->set->n_broken++;
    config_free(&s->cfg);
    if (own.own_line) {
      diag_add(&f->diags, DIAG_ERROR, own.own_line,
               "this file holds sections that every server shares ([Socks], [Forward], [Http], "
               "[Control], [Metrics], [Log], [Client]); the client does not start without them: "
               "fix the errors above");
      S->front_bad = true;
    }
  }
  if (buf) sodium_memzero(buf, len);
  free(buf);
}

/* ---- the merged front-end --------------------------------------------------------------- */

/* Where [sec] key was set (line 0: nowhere). */
static cfg_key_where key_where(const set_loader *S, sec_id sec, const key_spec *keys,
                               const char *key) {
  for (size_t k = 0; keys[k].name; k++)
    if (strcasecmp(keys[k].name, key) == 0) return S->fm.keys[sec][k];
  return (cfg_key_where){0};
}

/* Which file set [sec] key (-1: none did). */
static int key_file(const set_loader *S, sec_id sec, const key_spec *keys, const char *key) {
  cfg_key_where w = key_where(S, sec, keys, key);
  return w.line ? w.file : -1;
}

/* The front's diagnostics go to the file that holds what they are about. */
static void route(set_loader *S, const diag_list *tmp, int file_lined, int file_whole) {
  for (size_t i = 0; i < tmp->n; i++) {
    const diag *it = &tmp->items[i];
    int file = it->line > 0 ? file_lined : file_whole;
    diag_list *d = file >= 0 ? &S->r->files[S->file_of[file]].diags : &S->r->whole;
    diag_add(d, it->kind, file >= 0 ? it->line : 0, "%s", it->msg);
  }
  if (tmp->errors) S->front_bad = true;
}

static int first_usable(const set_loader *S, size_t n_paths) {
  for (size_t i = 0; i < n_paths; i++)
    if (S->r->files[S->file_of[i]].usable) return (int)i;
  return -1;
}

static void validate_front(set_loader *S, size_t n_paths) {
  int whole = key_file(S, SEC_SOCKS, cfg_socks_keys, "Listen");
  if (whole < 0) whole = key_file(S, SEC_HTTP, cfg_http_keys, "Listen");
  if (whole < 0) whole = first_usable(S, n_paths);
  /* Every [Forward] is in one file: two files with one each would set Listen twice. */
  int fwd = key_file(S, SEC_FORWARD, cfg_forward_keys, "Listen");
  diag_list tmp = {0};
  config_validate_front(&S->set->front, &tmp);
  route(S, &tmp, fwd, whole);
  diag_list_free(&tmp);
  config_validate_mode(&S->set->front, &tmp);
  route(S, &tmp, key_file(S, SEC_SOCKS, cfg_socks_keys, "User"), whole);
  diag_list_free(&tmp);
}

/* Select and User pins name servers. A name of a file that did not load only warns: the set runs
 * without that server, as it runs without the file. */
static void check_name(set_loader *S, size_t n_paths, const char *name, int file, int line,
                       const char *what) {
  if (config_set_find(S->set, name) >= 0 || file < 0) return;
  diag_list *d = &S->r->files[S->file_of[file]].diags;
  for (size_t i = 0; i < n_paths; i++)
    if (strcasecmp(S->names[i], name) == 0) {
      diag_add(d, DIAG_WARNING, line, "%s '%s': %s did not load, so that server is left out", what,
               name, S->paths[i]);
      return;
    }
  char list[256] = "";
  for (size_t i = 0, at = 0; i < S->set->n && at < sizeof list; i++)
    at += (size_t)snprintf(list + at, sizeof list - at, "%s%s", i ? ", " : "",
                           S->set->servers[i].name);
  diag_add(d, DIAG_ERROR, line,
           "%s '%s': no config of the set is named so; the servers, named after their files, "
           "are: %s",
           what, name, list);
  S->front_bad = true;
}

static void check_names(set_loader *S, size_t n_paths) {
  const app_config *f = &S->set->front;
  cfg_key_where sel = key_where(S, SEC_CLIENT, cfg_client_keys, "Select");
  if (f->client_select[0]) check_name(S, n_paths, f->client_select, sel.file, sel.line, "Select");
  int users = key_file(S, SEC_SOCKS, cfg_socks_keys, "User");
  for (size_t i = 0; i < f->n_socks_users; i++)
    if (f->socks_users[i].server[0])
      check_name(S, n_paths, f->socks_users[i].server, users, f->socks_users[i].line,
                 "User pinned to");
}

/* ---- the set ---------------------------------------------------------------------------- */

int config_set_find(const config_set *set, const char *name) {
  for (size_t i = 0; i < set->n; i++)
    if (strcasecmp(set->servers[i].name, name) == 0) return (int)i;
  return -1;
}

void config_set_free(config_set *set) {
  for (size_t i = 0; i < set->n; i++) config_free(&set->servers[i].cfg);
  free(set->servers);
  config_free(&set->front);
  memset(set, 0, sizeof *set);
}

static int load_all(set_loader *S, size_t n_paths) {
  for (size_t i = 0; i < n_paths; i++) {
    cfg_set_file *f = report_add(S->r, S->paths[i]);
    if (!f) return -1;
    S->file_of[i] = S->r->n - 1;
  }
  for (size_t i = 0; i < n_paths; i++) load_one(S, i);
  if (S->set->n == 0) {
    diag_add(&S->r->whole, DIAG_ERROR, 0, "none of the %zu config(s) is usable (see above)",
             n_paths);
    return -1;
  }
  validate_front(S, n_paths);
  check_names(S, n_paths);
  return S->front_bad ? -1 : 0;
}

int config_set_load(config_set *set, const char *const *paths, size_t n, cfg_set_report *out) {
  memset(set, 0, sizeof *set);
  memset(out, 0, sizeof *out);
  config_init(&set->front);
  snprintf(out->label, sizeof out->label, "%s", n ? paths[0] : "awgproxy");
  path_list files = {0};
  int rc = expand(paths, n, &files, out);
  set_loader S = {.set = set, .r = out, .paths = (const char *const *)files.paths};
  S.fm.paths = S.paths;
  if (rc == 0 && files.n == 0) {
    diag_add(&out->whole, DIAG_ERROR, 0, "no config given");
    rc = -1;
  }
  if (rc == 0) {
    set->servers = calloc(files.n, sizeof *set->servers);
    S.file_of = calloc(files.n, sizeof *S.file_of);
    S.names = calloc(files.n, sizeof *S.names);
    rc = set->servers && S.file_of && S.names ? 0 : -1;
    if (rc != 0) diag_add(&out->whole, DIAG_ERROR, 0, "out of memory");
  }
  if (rc == 0) {
    snprintf(set->front.path, sizeof set->front.path, "%s", files.paths[0]);
    rc = load_all(&S, files.n);
  }
  free(S.file_of);
  free(S.names);
  path_list_free(&files);
  report_count(out);
  if (rc != 0) config_set_free(set);
  return rc;
}
