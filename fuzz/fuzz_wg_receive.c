/* libFuzzer target for the WireGuard receive path (src/wg/): the input is one de-padded
 * datagram, fed to every consume function of two devices with an established session and a
 * pending initiation, so that each path (initiation, response, cookie reply, transport decrypt)
 * is reached with live state. The first input byte selects options:
 *   bit 0  under load (mac2 / cookie path)
 *   bit 1  patch the receiver index to a live one (reach AEAD / Noise instead of the lookup)
 *   bit 2  recompute mac1 for the receiving device (reach the Noise code behind mac1)
 *   bit 3  answer an accepted initiation and poll/encrypt afterwards
 *   bit 4  XOR the input onto a genuine message of the same length (initiation, or a 64-byte
 *          transport message), to explore near-valid messages
 * Must never crash, leak or trip a sanitizer. */
#include <stddef.h>
#include <stdint.h>

#include "wg_world.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static world w;
  if (size < 1 || size - 1 > MAX_DATAGRAM) return 0;
  if (!world_setup(&w)) __builtin_trap(); /* the fixture itself must always work */
  feed(&w, &w.b, data[0], data + 1, size - 1);
  feed(&w, &w.a, data[0], data + 1, size - 1);
  world_free(&w);
  return 0;
}
