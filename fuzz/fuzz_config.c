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
#include "config/config_internal.h"

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
  /* The same bytes as one file of a config set (config_set.c): Select and User pins accepted,
   * then our sections read into a merged front-end, as a second file of the set would be. */
  cfg_front_merge fm = {.file = 1, .paths = (const char *const[]){"a.conf", "fuzz.conf"}};
  cfg_load_opts member = {.set_member = true}, front = {.set_member = true, .front = &fm};
  app_config f;
  diag_list d2 = {0};
  config_init(&c);
  config_init(&f);
  rc = cfg_load_text(&c, (const char *)data, size, "fuzz.conf", &d2, &member);
  if ((rc == 0) != (d2.errors == 0)) abort();
  if (cfg_load_text(&f, (const char *)data, size, "fuzz.conf", &d2, &front) == 0) {
    config_validate_front(&f, &d2);
    config_validate_mode(&f, &d2);
    if (devnull) config_print_front_summary(&f, devnull);
  }
  config_free(&c);
  config_free(&f);
  diag_list_free(&d2);
  return 0;
}
