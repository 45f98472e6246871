/* libFuzzer target for the merging of worker metrics pages (src/observe/prom_merge.h). The input
 * is split at form feeds into up to 4 texts (the last one keeps any further form feeds), each
 * copied to a buffer of its exact size so that ASan sees a read past any of them.
 *
 * Checked with abort(): no crash, no leak, no read out of bounds; the merged page never holds a
 * NUL byte and ends with a newline; it merges into itself unchanged with nothing skipped (so every
 * line is well-formed and every family is contiguous and listed once), unless a sample line grew
 * past PROM_MERGE_MAX_LINE when its number was rewritten; and merging adds nothing for an empty
 * text. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "observe/buf.h"
#include "observe/prom_merge.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)       \
  do {                    \
    if (!(cond)) abort(); \
  } while (0)

#define MAX_TEXTS 4
#define SEPARATOR '\f'

static const char *const max_families[] = {"g", "up", "awgproxy_uptime_seconds", NULL};

static size_t split(const uint8_t *data, size_t size, char *texts[MAX_TEXTS],
                    size_t lens[MAX_TEXTS]) {
  size_t n = 0, start = 0;
  for (size_t i = 0; i <= size && n < MAX_TEXTS; i++) {
    if (i < size && (data[i] != SEPARATOR || n == MAX_TEXTS - 1)) continue;
    lens[n] = i - start;
    texts[n] = malloc(lens[n] ? lens[n] : 1);
    CHECK(texts[n] != NULL);
    memcpy(texts[n], data + start, lens[n]);
    n++;
    start = i + 1;
  }
  return n;
}

static size_t longest_line(const obs_buf *b) {
  size_t longest = 0, start = 0;
  for (size_t i = 0; i < b->len; i++) {
    if (b->data[i] != '\n') continue;
    if (i - start > longest) longest = i - start;
    start = i + 1;
  }
  return longest;
}

static void check_page(const obs_buf *page) {
  CHECK(!page->failed);
  if (!page->len) return;
  CHECK(memchr(page->data, '\0', page->len) == NULL);
  CHECK(page->data[page->len - 1] == '\n');
  if (longest_line(page) > PROM_MERGE_MAX_LINE) return;
  obs_buf again;
  obs_buf_init(&again);
  const char *self[2] = {page->data, ""};
  size_t lens[2] = {page->len, 0};
  CHECK(prom_merge(self, lens, 2, max_families, &again) == 0);
  CHECK(again.len == page->len && !memcmp(again.data, page->data, page->len));
  obs_buf_free(&again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *texts[MAX_TEXTS];
  size_t lens[MAX_TEXTS];
  size_t n = split(data, size, texts, lens);
  obs_buf page;
  obs_buf_init(&page);
  int skipped = prom_merge((const char *const *)texts, lens, n, max_families, &page);
  CHECK(skipped >= 0);
  check_page(&page);
  obs_buf_free(&page);
  for (size_t i = 0; i < n; i++) free(texts[i]);
  return 0;
}
