/* Arguments every subcommand shares: -h, and the config(s) to load. */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"

bool cli_wants_help(int argc, char **argv) {
  for (int i = 0; i < argc; i++)
    if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) return true;
  return false;
}

/* Collects every -c / --config value; -1 after printing the first problem. */
static int config_values(const char *cmd, int argc, char **argv, const char *usage,
                         const char **paths, size_t max, size_t *n) {
  *n = 0;
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i], *v;
    if (strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0) {
      if (i + 1 >= argc) {
        fprintf(stderr, "awgproxy %s: %s needs a file name\n%s", cmd, a, usage);
        return -1;
      }
      v = argv[++i];
    } else if (strncmp(a, "--config=", 9) == 0) {
      v = a + 9;
    } else {
      fprintf(stderr, "awgproxy %s: unknown argument '%s'\n%s", cmd, a, usage);
      return -1;
    }
    if (!*v) {
      fprintf(stderr, "awgproxy %s: %s needs a file name\n%s", cmd, a, usage);
      return -1;
    }
    if (*n == max) {
      fprintf(stderr, "awgproxy %s: at most %zu configs (-c) at once\n%s", cmd, max, usage);
      return -1;
    }
    paths[(*n)++] = v;
  }
  if (*n == 0) {
    fprintf(stderr, "awgproxy %s: which config? pass -c FILE\n%s", cmd, usage);
    return -1;
  }
  return 0;
}

const char *cli_config_arg(const char *cmd, int argc, char **argv, const char *usage) {
  const char *paths[64];
  size_t n;
  if (config_values(cmd, argc, argv, usage, paths, 64, &n) != 0) return NULL;
  if (n > 1) {
    /* The last -c used to win silently; a server has one config, so say so. */
    fprintf(stderr, "awgproxy %s: takes one config, and -c was given more than once (%s, %s)\n%s",
            cmd, paths[0], paths[1], usage);
    return NULL;
  }
  return paths[0];
}

size_t cli_config_args(const char *cmd, int argc, char **argv, const char *usage,
                       const char **paths, size_t max) {
  size_t n;
  return config_values(cmd, argc, argv, usage, paths, max, &n) == 0 ? n : 0;
}

bool cli_single_config(const char *const *paths, size_t n) {
  struct stat st;
  return n == 1 && !(stat(paths[0], &st) == 0 && S_ISDIR(st.st_mode));
}
