/* awgproxy: one binary, several subcommands. */
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "util/log.h"

typedef struct {
  const char *name;
  int (*fn)(int argc, char **argv);
  const char *help;
} command;

static const command commands[] = {
    {"client", cmd_client, "run the client: local SOCKS4/4a/5 and forwards through the tunnel"},
    {"server", cmd_server, "run the server: terminate tunnels and connect out for peers"},
    {"check", cmd_check, "validate a config file and print a summary"},
    {"ctl", cmd_ctl, "query a running daemon's control API (status, peers, streams)"},
    {"init-server", cmd_init_server, "write a new server config: keys, port, subnet, obfuscation"},
    {"add-peer", cmd_add_peer, "add a client to a server config; print its config or QR code"},
    {"remove-peer", cmd_remove_peer, "remove a client from a server config and end its sessions"},
    {"list-peers", cmd_list_peers, "list a server config's clients, live figures if it runs"},
    {"genkey", cmd_genkey, "print a new private key (like `wg genkey`)"},
    {"pubkey", cmd_pubkey, "read a private key on stdin, print its public key (like `wg pubkey`)"},
    {"genpsk", cmd_genpsk, "print a new preshared key (like `wg genpsk`)"},
    {"passwd", cmd_passwd, "hash a SOCKS password for a [Socks] User line"},
    {NULL, NULL, NULL},
};

static void usage(FILE *out) {
  fputs(
      "Usage: awgproxy COMMAND [ARGS]\n\nAn AmneziaWG 2.0 (obfuscated WireGuard) proxy that "
      "needs no root and no TUN device.\n\nCommands:\n",
      out);
  for (const command *c = commands; c->name; c++) fprintf(out, "  %-12s %s\n", c->name, c->help);
  fputs(
      "  version      print the version\n\n`awgproxy COMMAND --help` describes each command.\n"
      "Environment: LOG_LEVEL=error|warn|info|debug, LOG_FORMAT=logfmt|json\n",
      out);
}

int main(int argc, char **argv) {
  if (sodium_init() < 0) {
    fputs("awgproxy: libsodium failed to initialise\n", stderr);
    return 1;
  }
  if (log_init_from_env() != 0) return 2;
  if (argc < 2) {
    usage(stderr);
    return 2;
  }
  const char *cmd = argv[1];
  if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "help") == 0) {
    usage(stdout);
    return 0;
  }
  if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
    printf("awgproxy %s (AmneziaWG 2.0 wire format, amneziawg-go e796d47 compatible)\n",
           AWGPROXY_VERSION);
    return 0;
  }
  for (const command *c = commands; c->name; c++)
    if (strcmp(c->name, cmd) == 0) return c->fn(argc - 2, argv + 2);
  fprintf(stderr, "awgproxy: unknown command '%s'; `awgproxy --help` lists the commands\n", cmd);
  return 2;
}
