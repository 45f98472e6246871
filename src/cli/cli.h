/* Subcommands of the awgproxy binary. Each takes the arguments after its own name and returns the
 * process exit status: 0 success, 1 failure, 2 usage error. */
#ifndef AWGPROXY_CLI_CLI_H
#define AWGPROXY_CLI_CLI_H

#include <stdbool.h>

int cmd_genkey(int argc, char **argv);
int cmd_genpsk(int argc, char **argv);
int cmd_pubkey(int argc, char **argv);
int cmd_passwd(int argc, char **argv);
int cmd_check(int argc, char **argv);
int cmd_client(int argc, char **argv);
int cmd_server(int argc, char **argv);
int cmd_ctl(int argc, char **argv);

/* True if argv holds -h or --help; prints nothing. */
bool cli_wants_help(int argc, char **argv);
/* Parses `-c FILE` / `--config FILE` / `--config=FILE`; returns the path or NULL after printing
 * what is wrong (unknown option, missing file argument) with the given usage text. */
const char *cli_config_arg(const char *cmd, int argc, char **argv, const char *usage);

#endif
