/* libFuzzer target for how add-peer, remove-peer and list-peers read a server config as text
 * (src/cli/conf_file.h, peer_book.h): the line and section view, the "# Key = value" notes, and
 * the mapping of each loaded [Peer] to its lines and name. The input is a config file.
 *
 * Checked with abort(): no crash, leak or read out of bounds; the lines cover the text in order
 * and each one's section header comes before it; every peer's lines start at a [Peer] header,
 * peers do not overlap, and looking a peer up by its own name or fingerprint finds it or an
 * earlier peer of the same name. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli/peer_book.h"
#include "util/keys.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)       \
  do {                    \
    if (!(cond)) abort(); \
  } while (0)

static void check_text(const char *text, size_t len) {
  conf_text t;
  if (conf_text_split(text, len, &t) != 0) return;
  const char *prev_end = text;
  for (size_t i = 0; i < t.n; i++) {
    const conf_line *l = &t.lines[i];
    CHECK(l->start >= prev_end && l->start + l->len <= text + len);
    prev_end = l->start + l->len;
    CHECK(l->section < (int)t.n_sections);
    if (l->section >= 0) CHECK(t.header_line[l->section] <= i);
    char k[64], v[256];
    if (conf_line_pair(l, k, sizeof k, v, sizeof v)) CHECK(k[0] && !strchr(k, '#'));
    conf_line_note(l, "Name", v, sizeof v);
  }
  conf_text_free(&t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > 65536) return 0;
  char *text = malloc(size + 1);
  if (!text) return 0;
  memcpy(text, data, size);
  text[size] = '\0';
  check_text(text, size);
  /* peer_book_load prints a broken config's errors: only hand it configs that load. */
  app_config c;
  diag_list d = {0};
  config_init(&c);
  int ok = config_load_buffer(&c, text, size, "fuzz.conf", &d) == 0;
  diag_list_free(&d);
  config_free(&c);
  if (ok) {
    conf_file f = {.path = "fuzz.conf", .lock_fd = -1, .text = text, .len = size};
    peer_book b;
    CHECK(peer_book_load(&b, &f) == 0);
    for (size_t i = 0; i < b.config.n_peers; i++) {
      CHECK(b.first_line[i] < b.end_line[i] && b.end_line[i] <= b.text.n);
      if (i) CHECK(b.end_line[i - 1] <= b.first_line[i]);
      const conf_line *h = &b.text.lines[b.first_line[i]];
      CHECK(memchr(h->start, '[', h->len) != NULL);
      char fp[9];
      key_fingerprint(b.config.peers[i].public_key, fp);
      int j = peer_book_find(&b, b.name[i][0] ? b.name[i] : fp);
      CHECK(j >= 0 && (size_t)j <= i);
      if ((size_t)j != i && b.name[i][0]) CHECK(!strcasecmp(b.name[j], b.name[i]));
    }
    char note[256];
    peer_book_interface_note(&b, "Endpoint", note, sizeof note);
    peer_book_free(&b);
  }
  free(text);
  return 0;
}
