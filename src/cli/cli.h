/* Subcommands of the awgproxy binary. Each takes the arguments after its own name and returns the
 * process exit status: 0 success, 1 failure, 2 usage error. */
#ifndef AWGPROXY_CLI_CLI_H
#define AWGPROXY_CLI_CLI_H

#include <stdbool.h>
#include <stddef.h>

int cmd_genkey(int argc, char **argv);
int cmd_genpsk(int argc, char **argv);
int cmd_pubkey(int argc, char **argv);
int cmd_passwd(int argc, char **argv);
int cmd_check(int argc, char **argv);
int cmd_client(int argc, char **argv);
int cmd_server(int argc, char **argv);
int cmd_ctl(int argc, char **argv);
int cmd_init_server(int argc, char **argv);
int cmd_add_peer(int argc, char **argv);
int cmd_remove_peer(int argc, char **argv);
int cmd_list_peers(int argc, char **argv);

/* True if argv holds -h or --help; prints nothing. */
bool cli_wants_help(int argc, char **argv);
/* Parses `-c FILE` / `--config FILE` / `--config=FILE`; returns the path or NULL after printing
 * what is wrong (unknown option, missing file argument, a second -c) with the given usage text. */
const char *cli_config_arg(const char *cmd, int argc, char **argv, const char *usage);
/* The same for commands that take several configs (a client with several servers, check):
 * each -c FILE or -c DIR in order, into paths[max]. Returns the count, or 0 after printing what
 * is wrong (as above, or more than max). Directories are expanded by config_set_load. A single
 * FILE that is not a directory is today's single config (config_load_file); anything else is a
 * set (config_set.h), a directory holding one file too. */
size_t cli_config_args(const char *cmd, int argc, char **argv, const char *usage,
                       const char **paths, size_t max);
/* True when paths[n] is one config file rather than a set (n == 1 and not a directory). */
bool cli_single_config(const char *const *paths, size_t n);

/* One request to the control API named by config's [Control] Listen (cmd_ctl.c). Returns 0 with
 * the HTTP status and the body (NUL-terminated, the caller frees it), CTL_NOT_RUNNING when
 * nothing listens there, CTL_NO_CONTROL when the config has no [Control] Listen, or -1 with a
 * reason in err. */
#define CTL_NOT_RUNNING 1
#define CTL_NO_CONTROL 2
int ctl_config_request(const char *config, const char *method, const char *path, int *status,
                       char **body, char *err, size_t errlen);

#endif
