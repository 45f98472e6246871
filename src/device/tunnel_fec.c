#include "device/tunnel_fec.h"

#include <stdlib.h>
#include <string.h>

#include "util/bytes.h"

#define LAST (TUN_FEC_K - 1) /* the parity's place in a block */
#define ALL_COVERED ((uint32_t)((1u << LAST) - 1))

_Static_assert(TUN_FEC_K <= 32, "a block's arrivals are a 32-bit mask");

long tun_fec_cover_len(const uint8_t *pt, size_t len, bool exact) {
  if (!len || (pt[0] >> 4 != 4 && pt[0] >> 4 != 6)) return 0; /* keepalive, control, padding */
  size_t n;
  if (pt[0] >> 4 == 4) {
    if (len < 20) return -1;
    n = (size_t)pt[2] << 8 | pt[3];
  } else {
    if (len < 40) return -1;
    n = ((size_t)pt[4] << 8 | pt[5]) + 40;
  }
  if (n == 0 || n > len || (exact && n != len)) return -1;
  return (long)n;
}

static void xor_into(uint8_t *acc, const uint8_t *src, size_t n) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t a, b;
    memcpy(&a, acc + i, 8);
    memcpy(&b, src + i, 8);
    a ^= b;
    memcpy(acc + i, &a, 8);
  }
  for (; i < n; i++) acc[i] ^= src[i];
}

/* ---- sender -------------------------------------------------------------------------------- */

int tun_fec_tx_init(tun_fec_tx *f, size_t mtu) {
  if (f->acc) return 0;
  if (mtu <= TUN_FEC_HEADER) return -1;
  f->cap = mtu - TUN_FEC_HEADER;
  f->acc = calloc(1, f->cap);
  f->out = malloc(mtu);
  f->ok = false;
  if (f->acc && f->out) return 0;
  tun_fec_tx_free(f);
  return -1;
}

void tun_fec_tx_free(tun_fec_tx *f) {
  free(f->acc);
  free(f->out);
  memset(f, 0, sizeof *f);
}

static void tx_start(tun_fec_tx *f, uint32_t index, uint64_t first, bool ok) {
  memset(f->acc, 0, f->max_len);
  f->index = index;
  f->first = first;
  f->len_xor = 0;
  f->max_len = 0;
  f->count = 0;
  f->ok = ok;
}

size_t tun_fec_tx_add(tun_fec_tx *f, uint32_t index, uint64_t counter, const uint8_t *pt,
                      size_t pt_len, bool active) {
  if (!f->acc) return 0;
  uint8_t *out = f->out;
  uint64_t first = counter - counter % TUN_FEC_K;
  unsigned pos = (unsigned)(counter % TUN_FEC_K);
  if (index != f->index || first != f->first) tx_start(f, index, first, active && pos == 0);
  if (!f->ok || pos == LAST) return 0;
  if (pos != f->count || !active) { /* a counter skipped (a failed send), or parity not wanted */
    f->ok = false;
    return 0;
  }
  long n = tun_fec_cover_len(pt, pt_len, true);
  if (n < 0 || (size_t)n > f->cap) {
    f->ok = false;
    return 0;
  }
  xor_into(f->acc, pt, (size_t)n);
  f->len_xor ^= (uint16_t)n;
  if ((uint16_t)n > f->max_len) f->max_len = (uint16_t)n;
  if (++f->count < LAST) return 0;
  /* The block is complete: its parity takes the next counter, the block's last. */
  f->ok = false;
  out[0] = TUN_CTL_PARITY;
  out[1] = TUN_FEC_K;
  out[2] = (uint8_t)(f->len_xor >> 8);
  out[3] = (uint8_t)f->len_xor;
  be64_store(out + 4, f->first);
  memcpy(out + TUN_FEC_HEADER, f->acc, f->max_len);
  return TUN_FEC_HEADER + (size_t)f->max_len;
}

/* ---- receiver ------------------------------------------------------------------------------ */

void tun_fec_rx_free(tun_fec_rx *f) {
  free(f->acc);
  memset(f, 0, sizeof *f);
}

static int rx_start(tun_fec_rx *f, size_t mtu) {
  if (f->acc) return 0;
  if (mtu <= TUN_FEC_HEADER) return -1;
  f->cap = mtu - TUN_FEC_HEADER;
  f->acc = calloc(TUN_FEC_BLOCKS, f->cap);
  if (!f->acc) return -1;
  for (size_t i = 0; i < TUN_FEC_BLOCKS; i++) f->b[i].first = UINT64_MAX;
  return 0;
}

static uint8_t *acc_of(tun_fec_rx *f, const tun_fec_rx_block *b) {
  return f->acc + (size_t)(b - f->b) * f->cap;
}

/* The block for first, reset if its place held an older one; NULL for a block older than the one
 * in its place (too late to help). */
static tun_fec_rx_block *rx_block(tun_fec_rx *f, uint32_t index, uint64_t first) {
  if (index != f->index) {
    for (size_t i = 0; i < TUN_FEC_BLOCKS; i++) {
      memset(acc_of(f, &f->b[i]), 0, f->b[i].max_len);
      f->b[i] = (tun_fec_rx_block){.first = UINT64_MAX};
    }
    f->index = index;
  }
  tun_fec_rx_block *b = &f->b[(first / TUN_FEC_K) % TUN_FEC_BLOCKS];
  if (b->first == first) return b;
  if (b->first != UINT64_MAX && b->first > first) return NULL;
  memset(acc_of(f, b), 0, b->max_len);
  *b = (tun_fec_rx_block){.first = first};
  return b;
}

static void rx_xor(tun_fec_rx *f, tun_fec_rx_block *b, const uint8_t *src, size_t n) {
  xor_into(acc_of(f, b), src, n);
  if (n > b->max_len) b->max_len = (uint16_t)n;
}

/* With the parity and all covered packets but one: that one is what is left in the XOR. */
static bool try_recover(tun_fec_rx *f, tun_fec_rx_block *b, tun_fec_recovered *out) {
  if (b->done || b->bad || !(b->got & (1u << LAST))) return false;
  uint32_t missing = ~b->got & ALL_COVERED;
  if (!missing) {
    b->done = true;
    return false;
  }
  if (missing & (missing - 1)) return false; /* two or more: the NACKs' job */
  b->done = true;
  unsigned pos = 0;
  while (!(missing & (1u << pos))) pos++;
  const uint8_t *acc = acc_of(f, b);
  size_t len = b->len_xor;
  if (len > b->parity_len) return false;
  /* Behind the packet's end the XOR must cancel out: what does not is a block whose accounts do
   * not match (never expected: both ends count the same bytes), and nothing is recovered. */
  for (size_t i = len; i < b->max_len; i++)
    if (acc[i]) return false;
  out->counter = b->first + pos;
  out->pkt = acc;
  out->len = len;
  return true;
}

bool tun_fec_rx_add(tun_fec_rx *f, uint32_t index, uint64_t counter, const uint8_t *pt, long cover,
                    uint64_t now_ns, tun_fec_recovered *out) {
  if (!f->acc) return false;
  if (now_ns - f->last_parity_ns > TUN_FEC_IDLE_NS) { /* the peer stopped sending parity */
    tun_fec_rx_free(f);
    return false;
  }
  unsigned pos = (unsigned)(counter % TUN_FEC_K);
  if (pos == LAST) return false; /* the parity's place, taken by an ordinary packet */
  tun_fec_rx_block *b = rx_block(f, index, counter - pos);
  if (!b || b->done || (b->got & (1u << pos))) return false;
  b->got |= 1u << pos;
  if (cover < 0 || (size_t)cover > f->cap) {
    b->bad = true;
    return false;
  }
  rx_xor(f, b, pt, (size_t)cover);
  b->len_xor ^= (uint16_t)cover;
  return try_recover(f, b, out);
}

int tun_fec_rx_parity(tun_fec_rx *f, uint32_t index, uint64_t counter, const uint8_t *msg,
                      size_t len, size_t mtu, uint64_t now_ns, tun_fec_recovered *out) {
  /* The plaintext may carry zero padding behind the XOR bytes: zeros change no XOR, but they
   * must fit the buffer, so the length is bounded by the tunnel MTU, as the sender's is. */
  if (len < TUN_FEC_HEADER || msg[0] != TUN_CTL_PARITY || msg[1] != TUN_FEC_K) return -1;
  uint64_t first = be64_load(msg + 4);
  if (first % TUN_FEC_K || counter != first + LAST) return -1;
  if (rx_start(f, mtu) != 0) return -1;
  size_t n = len - TUN_FEC_HEADER;
  for (; n > f->cap; n--) /* padding behind the XOR bytes is zeros, anything else is malformed */
    if (msg[TUN_FEC_HEADER + n - 1]) return -1;
  f->last_parity_ns = now_ns;
  tun_fec_rx_block *b = rx_block(f, index, first);
  if (!b || b->done || (b->got & (1u << LAST))) return 0;
  b->got |= 1u << LAST;
  b->parity_len = (uint16_t)n;
  rx_xor(f, b, msg + TUN_FEC_HEADER, n);
  b->len_xor ^= (uint16_t)(msg[2] << 8 | msg[3]);
  return try_recover(f, b, out) ? 1 : 0;
}
