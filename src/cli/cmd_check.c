/* `awgproxy check -c FILE`: load, validate, print the summary and every diagnostic. */
#include <stdio.h>

#include "cli/cli.h"
#include "config/config.h"

static const char check_usage[] =
    "Usage: awgproxy check -c FILE\n"
    "Validates an AmneziaWG/WireGuard config (plus awgproxy's own sections) and prints a summary.\n"
    "Exit status: 0 valid (warnings may be printed), 1 invalid, 2 usage error.\n";

int cmd_check(int argc, char **argv) {
  if (cli_wants_help(argc, argv)) return fputs(check_usage, stdout), 0;
  const char *path = cli_config_arg("check", argc, argv, check_usage);
  if (!path) return 2;
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
