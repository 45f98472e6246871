/* Parity for loss repair (src/device/tunnel_fec.c): a sender's blocks and a receiver's recovery
 * agree byte for byte; any single loss of a block (a data packet, a keepalive, a control message)
 * comes back exactly, in whatever order the rest arrives; two losses, a spoiled block, a block
 * begun while parity was off, an oversized packet, a new keypair and hostile PARITY messages
 * recover nothing; a receiver stops collecting when parities stop. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "device/tunnel_fec.h"

#define MTU 1420
#define K TUN_FEC_K
#define NOW 1000000000ull

typedef struct {
  uint8_t pt[K][MTU];
  size_t len[K];
  uint8_t parity[MTU];
  size_t parity_len;
} block;

/* An IPv4 packet of n bytes (header length field n), payload from seed. */
static void ip4(uint8_t *p, size_t n, unsigned seed) {
  memset(p, 0, 20);
  p[0] = 0x45;
  p[2] = (uint8_t)(n >> 8);
  p[3] = (uint8_t)n;
  for (size_t i = 20; i < n; i++) p[i] = (uint8_t)(seed * 131 + i * 7);
}

/* Block b of keypair 7: packets of mixed sizes, a keepalive at 3 and a control message at 9 when
 * mixed; returns the parity the sender made. */
static void make_block(tun_fec_tx *tx, block *bl, uint64_t first, bool mixed) {
  for (unsigned i = 0; i < K - 1; i++) {
    size_t n = 40 + (i * 97 + first) % (MTU - TUN_FEC_HEADER - 40);
    if (mixed && i == 3) {
      bl->len[i] = 0;
    } else if (mixed && i == 9) {
      memcpy(bl->pt[i], "\xF1\x01\x01\x00\x07\x00\x00\x00", 8);
      bl->len[i] = 8;
    } else {
      ip4(bl->pt[i], n, (unsigned)(first + i));
      bl->len[i] = n;
    }
    size_t out = tun_fec_tx_add(tx, 7, first + i, bl->pt[i], bl->len[i], true);
    if (i < K - 2) assert_int_equal(out, 0);
    if (i == K - 2) {
      assert_true(out > TUN_FEC_HEADER && out <= MTU);
      memcpy(bl->parity, tx->out, out);
      bl->parity_len = out;
    }
  }
  /* The parity's own seal adds nothing. */
  assert_int_equal(tun_fec_tx_add(tx, 7, first + K - 1, bl->parity, bl->parity_len, true), 0);
}

static long cover(const block *bl, unsigned i) {
  return tun_fec_cover_len(bl->pt[i], bl->len[i], false);
}

static void test_every_single_loss_comes_back(void **state) {
  (void)state;
  tun_fec_tx tx = {0};
  assert_int_equal(tun_fec_tx_init(&tx, MTU), 0);
  static block bl;
  for (unsigned lost = 0; lost < K - 1; lost++) {
    uint64_t first = (uint64_t)K * (100 + lost);
    make_block(&tx, &bl, first, true);
    tun_fec_rx rx = {0};
    tun_fec_recovered rec;
    /* The parity first (it starts the collecting), then the rest: the last one completes. */
    assert_int_equal(
        tun_fec_rx_parity(&rx, 7, first + K - 1, bl.parity, bl.parity_len, MTU, NOW, &rec), 0);
    int recovered = 0;
    for (unsigned i = 0; i < K - 1; i++) {
      if (i == lost) continue;
      if (tun_fec_rx_add(&rx, 7, first + i, bl.pt[i], cover(&bl, i), NOW, &rec)) {
        recovered++;
        assert_int_equal(rec.counter, first + lost);
        long want = tun_fec_cover_len(bl.pt[lost], bl.len[lost], true);
        assert_int_equal(rec.len, (size_t)want);
        if (want) assert_memory_equal(rec.pkt, bl.pt[lost], (size_t)want);
      }
    }
    assert_int_equal(recovered, 1);
    /* The lost one arriving late changes nothing. */
    assert_false(tun_fec_rx_add(&rx, 7, first + lost, bl.pt[lost], cover(&bl, lost), NOW, &rec));
    tun_fec_rx_free(&rx);
  }
  tun_fec_tx_free(&tx);
}

static void test_parity_last_and_padding(void **state) {
  (void)state;
  tun_fec_tx tx = {0};
  assert_int_equal(tun_fec_tx_init(&tx, MTU), 0);
  static block bl, warm;
  tun_fec_rx rx = {0};
  tun_fec_recovered rec;
  /* An earlier block's parity starts the collecting. */
  make_block(&tx, &warm, 0, false);
  assert_int_equal(tun_fec_rx_parity(&rx, 7, K - 1, warm.parity, warm.parity_len, MTU, NOW, &rec),
                   0);
  make_block(&tx, &bl, K, false);
  for (unsigned i = 0; i < K - 1; i++) {
    if (i == 5) continue;
    /* the receiver's plaintexts carry zero padding behind the packet */
    uint8_t padded[MTU + 16] = {0};
    memcpy(padded, bl.pt[i], bl.len[i]);
    assert_false(tun_fec_rx_add(&rx, 7, K + i, padded,
                                tun_fec_cover_len(padded, bl.len[i] + 16, false), NOW, &rec));
  }
  uint8_t parity[MTU + 16] = {0};
  memcpy(parity, bl.parity, bl.parity_len);
  size_t plen = bl.parity_len + 16 < MTU ? bl.parity_len + 16 : MTU;
  assert_int_equal(tun_fec_rx_parity(&rx, 7, 2 * K - 1, parity, plen, MTU, NOW, &rec), 1);
  assert_int_equal(rec.counter, K + 5);
  assert_int_equal(rec.len, bl.len[5]);
  assert_memory_equal(rec.pkt, bl.pt[5], bl.len[5]);
  tun_fec_rx_free(&rx);
  tun_fec_tx_free(&tx);
}

static void test_what_recovers_nothing(void **state) {
  (void)state;
  tun_fec_tx tx = {0};
  assert_int_equal(tun_fec_tx_init(&tx, MTU), 0);
  static block bl;
  tun_fec_recovered rec;
  /* Two losses in one block. */
  make_block(&tx, &bl, 0, false);
  tun_fec_rx rx = {0};
  assert_int_equal(tun_fec_rx_parity(&rx, 7, K - 1, bl.parity, bl.parity_len, MTU, NOW, &rec), 0);
  for (unsigned i = 2; i < K - 1; i++)
    assert_false(tun_fec_rx_add(&rx, 7, i, bl.pt[i], cover(&bl, i), NOW, &rec));
  /* A block the receiver cannot account for (an IP header that lies about its length). */
  make_block(&tx, &bl, K, false);
  assert_int_equal(tun_fec_rx_parity(&rx, 7, 2 * K - 1, bl.parity, bl.parity_len, MTU, NOW, &rec),
                   0);
  assert_false(tun_fec_rx_add(&rx, 7, K, bl.pt[0], -1, NOW, &rec));
  for (unsigned i = 2; i < K - 1; i++)
    assert_false(tun_fec_rx_add(&rx, 7, K + i, bl.pt[i], cover(&bl, i), NOW, &rec));
  /* A parity for another keypair's block of the same counters. */
  make_block(&tx, &bl, 2 * K, false);
  assert_int_equal(tun_fec_rx_parity(&rx, 8, 3 * K - 1, bl.parity, bl.parity_len, MTU, NOW, &rec),
                   0);
  for (unsigned i = 1; i < K - 1; i++)
    assert_false(tun_fec_rx_add(&rx, 7, 2 * K + i, bl.pt[i], cover(&bl, i), NOW, &rec));
  tun_fec_rx_free(&rx);

  /* The sender: no parity for a block begun while parity was off, one with an oversized packet,
   * one with a counter skipped, or an IP packet whose length field disagrees. */
  uint8_t big[MTU], pkt[MTU];
  ip4(big, MTU - TUN_FEC_HEADER + 1, 1);
  ip4(pkt, 100, 2);
  uint64_t c = 10 * K;
  assert_int_equal(tun_fec_tx_add(&tx, 7, c, pkt, 100, false), 0);
  for (unsigned i = 1; i < K - 1; i++)
    assert_int_equal(tun_fec_tx_add(&tx, 7, c + i, pkt, 100, true), 0);
  c += K;
  assert_int_equal(tun_fec_tx_add(&tx, 7, c, big, MTU - TUN_FEC_HEADER + 1, true), 0);
  for (unsigned i = 1; i < K - 1; i++)
    assert_int_equal(tun_fec_tx_add(&tx, 7, c + i, pkt, 100, true), 0);
  c += K;
  for (unsigned i = 0; i < K - 1; i++)
    if (i != 4) assert_int_equal(tun_fec_tx_add(&tx, 7, c + i, pkt, 100, true), 0);
  c += K;
  for (unsigned i = 0; i < K - 1; i++)
    assert_int_equal(tun_fec_tx_add(&tx, 7, c + i, pkt, i == 6 ? 99 : 100, true), 0);
  /* and one that is whole gets its parity */
  c += K;
  for (unsigned i = 0; i < K - 1; i++)
    assert_int_equal(tun_fec_tx_add(&tx, 7, c + i, pkt, 100, true) != 0, i == K - 2);
  tun_fec_tx_free(&tx);
}

static void test_hostile_parity_and_idle(void **state) {
  (void)state;
  tun_fec_rx rx = {0};
  tun_fec_recovered rec;
  uint8_t m[MTU + 64] = {TUN_CTL_PARITY, K};
  /* first counter not a block start, carrier counter not the block's last, wrong K, too short,
   * XOR bytes longer than a parity can be (non-zero) */
  m[11] = 1;
  assert_int_equal(tun_fec_rx_parity(&rx, 7, K, m, 40, MTU, NOW, &rec), -1);
  m[11] = (uint8_t)K;
  assert_int_equal(tun_fec_rx_parity(&rx, 7, K, m, 40, MTU, NOW, &rec), -1);
  m[1] = 3;
  assert_int_equal(tun_fec_rx_parity(&rx, 7, 2 * K - 1, m, 40, MTU, NOW, &rec), -1);
  m[1] = K;
  assert_int_equal(tun_fec_rx_parity(&rx, 7, 2 * K - 1, m, TUN_FEC_HEADER - 1, MTU, NOW, &rec), -1);
  m[MTU + 10] = 1;
  assert_int_equal(tun_fec_rx_parity(&rx, 7, 2 * K - 1, m, MTU + 11, MTU, NOW, &rec), -1);
  /* A valid one whose length XOR claims more than its XOR bytes: nothing comes out of it. */
  m[MTU + 10] = 0;
  m[2] = 0x05, m[3] = 0x00;
  assert_int_equal(tun_fec_rx_parity(&rx, 7, 2 * K - 1, m, TUN_FEC_HEADER + 20, MTU, NOW, &rec), 0);
  uint8_t pkt[100];
  ip4(pkt, 100, 3);
  for (unsigned i = 1; i < K - 1; i++)
    assert_false(tun_fec_rx_add(&rx, 7, K + i, pkt, 100, NOW, &rec));
  assert_true(tun_fec_rx_on(&rx));
  /* No parity for longer than TUN_FEC_IDLE_NS: collecting stops and the memory goes. */
  assert_false(tun_fec_rx_add(&rx, 7, 5 * K, pkt, 100, NOW + TUN_FEC_IDLE_NS + 1, &rec));
  assert_false(tun_fec_rx_on(&rx));
  tun_fec_rx_free(&rx);
}

static void test_cover_len(void **state) {
  (void)state;
  uint8_t p[200] = {0};
  assert_int_equal(tun_fec_cover_len(p, 0, true), 0);
  assert_int_equal(tun_fec_cover_len(p, 10, true), 0); /* AWG 3.x padded keepalive */
  p[0] = 0xF1;
  assert_int_equal(tun_fec_cover_len(p, 10, true), 0); /* control */
  ip4(p, 120, 1);
  assert_int_equal(tun_fec_cover_len(p, 120, true), 120);
  assert_int_equal(tun_fec_cover_len(p, 136, false), 120);
  assert_int_equal(tun_fec_cover_len(p, 136, true), -1);
  assert_int_equal(tun_fec_cover_len(p, 100, false), -1);
  memset(p, 0, 60);
  p[0] = 0x60;
  p[5] = 20;
  assert_int_equal(tun_fec_cover_len(p, 60, true), 60);
  assert_int_equal(tun_fec_cover_len(p, 30, false), -1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_every_single_loss_comes_back),
      cmocka_unit_test(test_parity_last_and_padding),
      cmocka_unit_test(test_what_recovers_nothing),
      cmocka_unit_test(test_hostile_parity_and_idle),
      cmocka_unit_test(test_cover_len),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
