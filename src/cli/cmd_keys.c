/* genkey / genpsk / pubkey, with the same input and output as wireguard-tools' `wg`. */
#include <ctype.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "util/keys.h"

static int print_key(const uint8_t key[AWG_KEY_LEN]) {
  char b64[AWG_KEY_B64_LEN + 1];
  key_to_base64(key, b64);
  int ok = puts(b64) >= 0 && fflush(stdout) == 0;
  sodium_memzero(b64, sizeof b64);
  if (!ok) {
    perror("awgproxy: writing the key");
    return 1;
  }
  return 0;
}

static void warn_if_world_readable_stdout(void) {
  struct stat st;
  if (fstat(STDOUT_FILENO, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 077))
    fputs("Warning: writing to a file readable by others; consider setting `umask 077`\n", stderr);
}

static int generate(int argc, char **argv, const char *cmd, void (*gen)(uint8_t *)) {
  if (cli_wants_help(argc, argv)) {
    printf("Usage: awgproxy %s\nPrints a new random %s in base64 to standard output.\n", cmd,
           gen == key_generate_psk ? "preshared key" : "private key");
    return 0;
  }
  if (argc) {
    fprintf(stderr, "awgproxy %s: takes no arguments (got '%s')\n", cmd, argv[0]);
    return 2;
  }
  warn_if_world_readable_stdout();
  uint8_t key[AWG_KEY_LEN];
  gen(key);
  int rc = print_key(key);
  sodium_memzero(key, sizeof key);
  return rc;
}

int cmd_genkey(int argc, char **argv) {
  return generate(argc, argv, "genkey", key_generate_private);
}
int cmd_genpsk(int argc, char **argv) { return generate(argc, argv, "genpsk", key_generate_psk); }

int cmd_pubkey(int argc, char **argv) {
  if (cli_wants_help(argc, argv)) {
    puts(
        "Usage: awgproxy pubkey < private.key\n"
        "Reads a base64 private key from standard input and prints its public key.");
    return 0;
  }
  if (argc) {
    fprintf(stderr, "awgproxy pubkey: takes no arguments; the private key comes on stdin\n");
    return 2;
  }
  char buf[AWG_KEY_B64_LEN + 64];
  size_t n = fread(buf, 1, sizeof buf - 1, stdin);
  buf[n] = '\0';
  /* Whatever did not fit in buf must be whitespace too, or the input is not a lone key. */
  bool trailing = false;
  for (int ch; (ch = getchar()) != EOF;) trailing |= !isspace(ch);
  /* Like `wg pubkey`: the key may be followed by whitespace/newlines and nothing else. */
  while (n && isspace((unsigned char)buf[n - 1])) buf[--n] = '\0';
  size_t start = 0;
  while (start < n && isspace((unsigned char)buf[start])) start++;
  uint8_t priv[AWG_KEY_LEN], pub[AWG_KEY_LEN];
  char why[160];
  int rc = 1;
  if (trailing) {
    fprintf(stderr, "awgproxy pubkey: the private key on stdin is followed by other text\n");
  } else if (key_from_base64(buf + start, priv, why, sizeof why) != 0) {
    fprintf(stderr, "awgproxy pubkey: the private key on stdin %s\n", why);
  } else if (key_public_from_private(priv, pub) != 0) {
    fprintf(stderr, "awgproxy pubkey: the private key on stdin is not usable\n");
  } else {
    rc = print_key(pub);
  }
  sodium_memzero(buf, sizeof buf);
  sodium_memzero(priv, sizeof priv);
  return rc;
}
