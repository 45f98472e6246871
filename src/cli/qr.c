/* QR codes for add-peer (qr.h). */
#include "cli/qr.h"

#include <errno.h>
#include <fcntl.h>
#include <png.h>
#include <qrencode.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define QR_QUIET 4  /* modules of light border the standard asks for */
#define PNG_SCALE 8 /* pixels per module */

/* Level L (7 % recovery) keeps a full config with I1 within a size phones read easily; a
 * screen does not get dirty. */
static QRcode *encode(const char *text, char *err, size_t errlen) {
  QRcode *qr = QRcode_encodeString8bit(text, 0, QR_ECLEVEL_L);
  if (!qr)
    snprintf(err, errlen, "the config (%zu bytes) does not fit a QR code: %s", strlen(text),
             errno == ERANGE ? "too long (a QR code holds at most 2953 bytes)" : strerror(errno));
  return qr;
}

static int dark(const QRcode *qr, int x, int y) {
  if (x < 0 || y < 0 || x >= qr->width || y >= qr->width) return 0;
  return qr->data[y * qr->width + x] & 1;
}

/* Two rows of modules per line of text with half blocks. Light modules are drawn, dark ones left
 * as the terminal's (usually dark) background, which is what scanners see on a dark terminal. */
int qr_print_terminal(const char *text, FILE *out, char *err, size_t errlen) {
  QRcode *qr = encode(text, err, errlen);
  if (!qr) return -1;
  int lo = -QR_QUIET, hi = qr->width + QR_QUIET;
  for (int y = lo; y < hi; y += 2) {
    for (int x = lo; x < hi; x++) {
      int top = !dark(qr, x, y), bottom = y + 1 < hi && !dark(qr, x, y + 1);
      fputs(top && bottom ? "\u2588" : top ? "\u2580" : bottom ? "\u2584" : " ", out);
    }
    fputc('\n', out);
  }
  QRcode_free(qr);
  return ferror(out) ? snprintf(err, errlen, "cannot write the QR code"), -1 : 0;
}

int qr_write_png(const char *text, const char *path, char *err, size_t errlen) {
  QRcode *qr = encode(text, err, errlen);
  if (!qr) return -1;
  /* The picture holds the client's private key: readable by its owner only. */
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  FILE *f = fd >= 0 ? fdopen(fd, "wb") : NULL;
  if (!f) {
    snprintf(err, errlen, "cannot create %s: %s", path, strerror(errno));
    if (fd >= 0) close(fd);
    QRcode_free(qr);
    return -1;
  }
  int side = (qr->width + 2 * QR_QUIET) * PNG_SCALE;
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
  png_infop info = png ? png_create_info_struct(png) : NULL;
  png_bytep row = malloc((size_t)side);
  volatile int rc = -1; /* set after the last call that can longjmp */
  if (png && info && row && !setjmp(png_jmpbuf(png))) {
    png_init_io(png, f);
    png_set_IHDR(png, info, (png_uint_32)side, (png_uint_32)side, 8, PNG_COLOR_TYPE_GRAY,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (int py = 0; py < side; py++) {
      int y = py / PNG_SCALE - QR_QUIET;
      for (int px = 0; px < side; px++) row[px] = dark(qr, px / PNG_SCALE - QR_QUIET, y) ? 0 : 255;
      png_write_row(png, row);
    }
    png_write_end(png, NULL);
    rc = 0;
  }
  if (rc) snprintf(err, errlen, "cannot write the PNG %s", path);
  png_destroy_write_struct(png ? &png : NULL, info ? &info : NULL);
  free(row);
  if (fclose(f) != 0 && rc == 0)
    rc = -1, snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
  QRcode_free(qr);
  return rc;
}
