/* The server's SOCKS5 service ([Server] Socks on the tunnel address, LocalSocks): not built yet. */
#include "exit/exit_internal.h"

int exit_socks_start(exit_ctx *x, char *err, size_t errlen) {
  (void)x, (void)err, (void)errlen;
  return 0;
}

void exit_socks_stop(exit_ctx *x) { (void)x; }
