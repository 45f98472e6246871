/* `awgproxy passwd`: turns a SOCKS password into the salted hash stored in [Socks] User lines.
 * Argon2id via libsodium; the password itself is never stored. */
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "cli/cli.h"

static int read_line(const char *prompt, char *buf, size_t len) {
  bool tty = isatty(STDIN_FILENO);
  struct termios old, quiet;
  if (tty) {
    fputs(prompt, stderr);
    tcgetattr(STDIN_FILENO, &old);
    quiet = old;
    quiet.c_lflag &= (tcflag_t)~ECHO;
    tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
  }
  char *r = fgets(buf, (int)len, stdin);
  if (tty) {
    tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
    fputc('\n', stderr);
  }
  if (!r) return -1;
  buf[strcspn(buf, "\r\n")] = '\0';
  return 0;
}

int cmd_passwd(int argc, char **argv) {
  if (cli_wants_help(argc, argv) || argc) {
    puts(
        "Usage: awgproxy passwd\n"
        "Reads a password (twice on a terminal, once from a pipe) and prints its salted Argon2id\n"
        "hash. Put it in the config as:  [Socks]  User = NAME:HASH");
    return argc && !cli_wants_help(argc, argv) ? 2 : 0;
  }
  char pw[1024], again[1024];
  int rc = 1;
  if (read_line("Password: ", pw, sizeof pw) != 0 || !*pw) {
    fputs("awgproxy passwd: no password given\n", stderr);
  } else if (isatty(STDIN_FILENO) &&
             (read_line("Again: ", again, sizeof again) != 0 || strcmp(pw, again) != 0)) {
    fputs("awgproxy passwd: the passwords differ\n", stderr);
  } else {
    char hash[crypto_pwhash_STRBYTES];
    if (crypto_pwhash_str(hash, pw, strlen(pw), crypto_pwhash_OPSLIMIT_INTERACTIVE,
                          crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0) {
      fputs("awgproxy passwd: out of memory while hashing\n", stderr);
    } else {
      puts(hash);
      rc = 0;
    }
  }
  sodium_memzero(pw, sizeof pw);
  sodium_memzero(again, sizeof again);
  return rc;
}
