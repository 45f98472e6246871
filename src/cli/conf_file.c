/* Locked, atomic edits of a config file, and a line view of its text (conf_file.h). */
#include "cli/conf_file.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "config/ini.h"

static int fail(char *err, size_t n, const char *what, const char *path) {
  snprintf(err, n, "%s %s: %s", what, path, strerror(errno));
  return -1;
}

static int read_all(int fd, const char *path, char **out, size_t *len, char *err, size_t n) {
  struct stat st;
  if (fstat(fd, &st) != 0) return fail(err, n, "cannot stat", path);
  if (!S_ISREG(st.st_mode)) return snprintf(err, n, "%s is not a regular file", path), -1;
  if (st.st_size > INI_MAX_FILE)
    return snprintf(err, n, "%s is %lld bytes; a config is at most %d", path, (long long)st.st_size,
                    INI_MAX_FILE),
           -1;
  char *buf = malloc((size_t)st.st_size + 1);
  if (!buf) return snprintf(err, n, "out of memory"), -1;
  size_t got = 0;
  while (got < (size_t)st.st_size) {
    ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    got += (size_t)r;
  }
  buf[got] = '\0';
  *out = buf;
  *len = got;
  return 0;
}

int conf_file_open_locked(conf_file *f, const char *path, char *err, size_t errlen) {
  memset(f, 0, sizeof *f);
  f->path = path;
  f->lock_fd = -1;
  char lock[4096];
  if ((size_t)snprintf(lock, sizeof lock, "%s.lock", path) >= sizeof lock)
    return snprintf(err, errlen, "path too long: %s", path), -1;
  /* A separate lock file: the config itself is replaced by rename, so a lock on its inode would
   * not exclude a second writer that opened the new one. */
  f->lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (f->lock_fd < 0) return fail(err, errlen, "cannot create the lock file", lock);
  while (flock(f->lock_fd, LOCK_EX) != 0)
    if (errno != EINTR) return fail(err, errlen, "cannot lock", lock);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return fail(err, errlen, "cannot open", path);
  int rc = fstat(fd, &f->st) != 0 ? fail(err, errlen, "cannot stat", path)
                                  : read_all(fd, path, &f->text, &f->len, err, errlen);
  close(fd);
  return rc;
}

void conf_file_close(conf_file *f) {
  if (f->text) sodium_memzero(f->text, f->len); /* it holds the private key */
  free(f->text);
  f->text = NULL;
  if (f->lock_fd >= 0) close(f->lock_fd); /* releases the lock */
  f->lock_fd = -1;
}

static int write_all(int fd, const char *p, size_t n) {
  while (n) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return -1;
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

static int fsync_dir_of(const char *path) {
  char copy[4096];
  snprintf(copy, sizeof copy, "%s", path);
  int dfd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return -1;
  int rc = fsync(dfd);
  close(dfd);
  return rc;
}

/* Writes a temporary file next to path with the given owner and mode, then renames it over path
 * (or links it, when path must not exist yet). */
static int replace(const char *path, const char *text, size_t len, const struct stat *keep,
                   bool exclusive, char *err, size_t errlen) {
  char tmp[4096];
  if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp.XXXXXX", path) >= sizeof tmp)
    return snprintf(err, errlen, "path too long: %s", path), -1;
  int fd = mkstemp(tmp);
  if (fd < 0) return fail(err, errlen, "cannot create a temporary file next to", path);
  int rc = -1;
  if (fchmod(fd, keep ? keep->st_mode & 07777 : 0600) != 0)
    fail(err, errlen, "cannot set the mode of", tmp);
  /* As root, keep the owner: a service reading the file as its own user must still read it. */
  else if (keep && geteuid() == 0 && fchown(fd, keep->st_uid, keep->st_gid) != 0)
    fail(err, errlen, "cannot set the owner of", tmp);
  else if (write_all(fd, text, len) != 0 || fsync(fd) != 0)
    fail(err, errlen, "cannot write", tmp);
  else if (exclusive ? link(tmp, path) != 0 : rename(tmp, path) != 0)
    errno == EEXIST ? (void)snprintf(err, errlen, "%s exists; give --force to overwrite it", path)
                    : (void)fail(err, errlen, "cannot replace", path);
  else
    rc = 0;
  close(fd);
  if (rc != 0 || exclusive) unlink(tmp);
  if (rc == 0 && fsync_dir_of(path) != 0) rc = fail(err, errlen, "cannot sync the folder of", path);
  return rc;
}

int conf_file_replace(conf_file *f, const char *text, size_t len, char *err, size_t errlen) {
  return replace(f->path, text, len, &f->st, false, err, errlen);
}

int conf_file_create(const char *path, const char *text, size_t len, bool overwrite, char *err,
                     size_t errlen) {
  /* Overwriting keeps the old file's owner and mode (a service user must still read it), but
   * never leaves it readable by others: the new file holds a fresh private key. */
  struct stat st;
  if (overwrite && stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
    st.st_mode &= ~(mode_t)077;
    return replace(path, text, len, &st, false, err, errlen);
  }
  return replace(path, text, len, NULL, !overwrite, err, errlen);
}

/* ---- the text as lines and sections --------------------------------------------------------- */

int conf_text_split(const char *text, size_t len, conf_text *t) {
  memset(t, 0, sizeof *t);
  size_t cap = 1;
  for (size_t i = 0; i < len; i++) cap += text[i] == '\n';
  t->lines = calloc(cap, sizeof *t->lines);
  t->header_line = calloc(cap, sizeof *t->header_line);
  t->section_name = calloc(cap, sizeof *t->section_name);
  if (!t->lines || !t->header_line || !t->section_name) return conf_text_free(t), -1;
  int section = -1;
  for (size_t at = 0; at < len;) {
    const char *nl = memchr(text + at, '\n', len - at);
    size_t end = nl ? (size_t)(nl - text) : len;
    conf_line *l = &t->lines[t->n];
    l->start = text + at;
    l->len = end - at;
    if (l->len && l->start[l->len - 1] == '\r') l->len--;
    size_t i = 0;
    while (i < l->len && isspace((unsigned char)l->start[i])) i++;
    if (i < l->len && l->start[i] == '[') {
      const char *close = memchr(l->start + i, ']', l->len - i);
      size_t n = close ? (size_t)(close - l->start - i - 1) : 0;
      if (n >= sizeof t->section_name[0]) n = sizeof t->section_name[0] - 1;
      memcpy(t->section_name[t->n_sections], l->start + i + 1, n);
      t->header_line[t->n_sections] = t->n;
      section = (int)t->n_sections++;
    }
    l->section = section;
    t->n++;
    at = nl ? end + 1 : len;
  }
  return 0;
}

void conf_text_free(conf_text *t) {
  free(t->lines);
  free(t->header_line);
  free(t->section_name);
  memset(t, 0, sizeof *t);
}

static void trim_copy(const char *s, size_t n, char *out, size_t cap) {
  while (n && isspace((unsigned char)*s)) s++, n--;
  while (n && isspace((unsigned char)s[n - 1])) n--;
  if (n >= cap) n = cap - 1;
  memcpy(out, s, n);
  out[n] = '\0';
}

static bool split_pair(const char *s, size_t n, char *key, size_t keylen, char *val,
                       size_t vallen) {
  const char *eq = memchr(s, '=', n);
  if (!eq) return false;
  trim_copy(s, (size_t)(eq - s), key, keylen);
  trim_copy(eq + 1, n - (size_t)(eq - s) - 1, val, vallen);
  return key[0] != '\0';
}

bool conf_line_pair(const conf_line *l, char *key, size_t keylen, char *val, size_t vallen) {
  const char *hash = memchr(l->start, '#', l->len);
  size_t n = hash ? (size_t)(hash - l->start) : l->len;
  return split_pair(l->start, n, key, keylen, val, vallen);
}

bool conf_line_note(const conf_line *l, const char *key, char *val, size_t vallen) {
  size_t i = 0;
  while (i < l->len && isspace((unsigned char)l->start[i])) i++;
  if (i >= l->len || l->start[i] != '#') return false;
  char k[64];
  if (!split_pair(l->start + i + 1, l->len - i - 1, k, sizeof k, val, vallen)) return false;
  return strcasecmp(k, key) == 0;
}
