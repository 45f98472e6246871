/* `awgproxy check -c FILE`: load, validate, print the summary and every diagnostic. With several
 * -c, or a directory: the set a client would run (config_set.h), with a verdict per file. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "config/config.h"
#include "config/config_set.h"

static const char check_usage[] =
    "Usage: awgproxy check -c FILE [-c FILE ...]\n"
    "       awgproxy check -c DIR/\n"
    "Validates an AmneziaWG/WireGuard config (plus awgproxy's own sections) and prints a summary.\n"
    "Several -c, or a directory (its *.conf files, by name), are checked as the set of servers of\n"
    "one client: each file on its own, then the sections they share (docs/config-reference.md\n"
    "14), with a verdict per file.\n"
    "Exit status: 0 valid (warnings may be printed; for a set: every file usable), 1 invalid,\n"
    "2 usage error.\n";

static int check_one(const char *path) {
  app_config c;
  diag_list d = {0};
  config_init(&c);
  int rc = config_load_file(&c, path, &d);
  diag_list_print(&d, path, stderr);
  if (rc == 0)
    config_print_summary(&c, stdout);
  else
    fprintf(stderr, "%s: %zu error(s); the config is not usable\n", path, d.errors);
  diag_list_free(&d);
  config_free(&c);
  return rc == 0 ? 0 : 1;
}

static void print_client(const app_config *f, FILE *out) {
  fprintf(out,
          "  servers: select %s; probe every %us, down after %u failed probe(s); failback %s\n",
          f->client_select[0] ? f->client_select : "auto", f->client_probe_interval,
          f->client_probe_failures, f->client_failback ? "on" : "off");
}

/* A file's verdict: usable files get their tunnel summary, the set its front-end once. */
static void print_set(const config_set *set, const cfg_set_report *r, int rc) {
  for (size_t i = 0; i < r->n; i++) {
    const cfg_set_file *f = &r->files[i];
    int k = -1;
    for (size_t j = 0; f->usable && j < set->n; j++)
      if (strcmp(set->servers[j].cfg.path, f->path) == 0) k = (int)j;
    if (k >= 0) {
      fprintf(stdout, "%s: OK, server '%s'\n", f->path, set->servers[k].name);
      config_print_tunnel_summary(&set->servers[k].cfg, stdout);
    } else if (!f->usable) {
      fprintf(stderr, "%s: %zu error(s); left out of the set\n", f->path, f->diags.errors);
    }
  }
  if (rc == 0) {
    fprintf(stdout, "shared sections (%zu server(s), %zu left out):\n", set->n, set->n_broken);
    config_print_front_summary(&set->front, stdout);
    print_client(&set->front, stdout);
  } else {
    fprintf(stderr, "%s: %zu error(s); the set is not usable\n", r->label, r->errors);
  }
}

static int check_set(const char *const *paths, size_t n) {
  config_set set;
  cfg_set_report r;
  int rc = config_set_load(&set, paths, n, &r);
  cfg_set_report_print(&r, stderr);
  print_set(&set, &r, rc);
  /* A left-out file is a problem `check` must report in its exit status: the client would run
   * without that server. */
  int status = rc == 0 && set.n_broken == 0 ? 0 : 1;
  config_set_free(&set);
  cfg_set_report_free(&r);
  return status;
}

int cmd_check(int argc, char **argv) {
  if (cli_wants_help(argc, argv)) return fputs(check_usage, stdout), 0;
  const char *paths[CFG_SET_MAX];
  size_t n = cli_config_args("check", argc, argv, check_usage, paths, CFG_SET_MAX);
  if (n == 0) return 2;
  return cli_single_config(paths, n) ? check_one(paths[0]) : check_set(paths, n);
}
