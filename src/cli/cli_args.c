#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

bool cli_wants_help(int argc, char **argv) {
  for (int i = 0; i < argc; i++)
    if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) return true;
  return false;
}

const char *cli_config_arg(const char *cmd, int argc, char **argv, const char *usage) {
  const char *path = NULL;
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0) {
      if (i + 1 >= argc) {
        fprintf(stderr, "awgproxy %s: %s needs a file name\n%s", cmd, a, usage);
        return NULL;
      }
      path = argv[++i];
    } else if (strncmp(a, "--config=", 9) == 0) {
      path = a + 9;
    } else {
      fprintf(stderr, "awgproxy %s: unknown argument '%s'\n%s", cmd, a, usage);
      return NULL;
    }
  }
  if (!path || !*path) fprintf(stderr, "awgproxy %s: which config? pass -c FILE\n%s", cmd, usage);
  return path && *path ? path : NULL;
}
