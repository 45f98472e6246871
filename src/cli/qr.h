/* A client config as a QR code, as the WireGuard and AmneziaWG mobile apps scan it: drawn in the
 * terminal, or written as a PNG. The code itself comes from libqrencode. */
#ifndef AWGPROXY_CLI_QR_H
#define AWGPROXY_CLI_QR_H

#include <stddef.h>
#include <stdio.h>

/* Each returns 0, or -1 with a reason in err (the text does not fit a QR code, I/O). */
int qr_print_terminal(const char *text, FILE *out, char *err, size_t errlen);
int qr_write_png(const char *text, const char *path, char *err, size_t errlen);

#endif
