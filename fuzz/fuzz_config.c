// libFuzzer target: arbitrary bytes as a config file.
//
//   clang -fsanitize=fuzzer,address,undefined -Isrc -Ilwip_port fuzz/fuzz_config.c \
//         src/config/*.c src/awg/*.c src/util/*.c -lsodium -lb2 -o /tmp/fuzz_config
//   /tmp/fuzz_config -max_total_time=60 [corpus-dir] [tests/vectors seeds…]
//
// Loading must never crash, leak or read out of bounds whatever the input; on success the summary
// printer and the formatters must cope with every value the loader accepted.
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "config/config.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static FILE *devnull;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  if (sodium_init() < 0) abort();
  devnull = fopen("/dev/null", "w");
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  /* config_load_file refuses files over 1 MiB; keep the fuzzer in the same range. */
  if (size > 1024 * 1024) return 0;
  app_config c;
  diag_list d = {0};
  config_init(&c);
  int rc = config_load_buffer(&c, (const char *)data, size, "fuzz.conf", &d);
  if (devnull) {
    diag_list_print(&d, "fuzz.conf", devnull);
    if (rc == 0) config_print_summary(&c, devnull);
  }
  /* The loader's contract: rc 0 exactly when no error was reported. */
  if ((rc == 0) != (d.errors == 0)) abort();
  config_free(&c);
  diag_list_free(&d);
  return 0;
}
