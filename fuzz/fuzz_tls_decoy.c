/* The TLS carrier's decoy web server (src/carrier/tls_decoy.c) reads whatever a prober sends:
 * any bytes give NEED_MORE, an answer that consumed at most what was there, or a 400. */
#include <stdlib.h>

#include "carrier/tls_decoy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  size_t used;
  tls_decoy_reply r;
  /* A site directory that does not exist: every path is looked up and fails. */
  tls_decoy_result res =
      tls_decoy_answer(size & 1 ? "/nonexistent-decoy" : NULL, data, size, &used, 1700000000, &r);
  if (used > size) abort();
  if (res != DECOY_NEED_MORE && r.data && r.len < 20) abort();
  if (res == DECOY_NEED_MORE && (r.data || size >= TLS_DECOY_MAX_HEAD)) abort();
  free(r.data);
  return 0;
}
