/* Editing a server config file in place for add-peer / remove-peer: under an exclusive lock, and
 * replaced atomically (temporary file, fsync, rename, fsync of the directory), so that two runs
 * at once cannot lose a peer and a crash leaves either the old file or the new one. The text is
 * edited as text: comments, order and layout the operator wrote stay as they are. */
#ifndef AWGPROXY_CLI_CONF_FILE_H
#define AWGPROXY_CLI_CONF_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>

#define CONF_MAX_BYTES (4u << 20) /* a server config above 4 MiB is refused */

typedef struct {
  const char *path;
  int lock_fd; /* flock()ed "<path>.lock", held until conf_file_close */
  char *text;  /* the file, NUL-terminated; owned */
  size_t len;
  struct stat st; /* owner and mode, kept by conf_file_replace */
} conf_file;

/* Takes the lock (waiting for another add-peer/remove-peer) and reads the file. */
int conf_file_open_locked(conf_file *f, const char *path, char *err, size_t errlen);
/* Replaces the file's content with text[0..len), keeping its owner, group and mode. */
int conf_file_replace(conf_file *f, const char *text, size_t len, char *err, size_t errlen);
void conf_file_close(conf_file *f);

/* Creates path with mode 0600 and writes text, failing if it exists unless overwrite (then the
 * old file's owner and mode are kept, less any access for others). Same atomic replace. */
int conf_file_create(const char *path, const char *text, size_t len, bool overwrite, char *err,
                     size_t errlen);

/* ---- reading the text -------------------------------------------------------------------- */

/* One line of a config, as the loader sees it: which section it belongs to. */
typedef struct {
  const char *start; /* into the text; not NUL-terminated */
  size_t len;        /* without the newline */
  int section;       /* index of the section header above it (0-based), -1 before any */
} conf_line;

typedef struct {
  conf_line *lines;
  size_t n;
  /* per section: the line of its header and its name ("Interface", "Peer", …) */
  size_t *header_line;
  char (*section_name)[32];
  size_t n_sections;
} conf_text;

int conf_text_split(const char *text, size_t len, conf_text *out);
void conf_text_free(conf_text *t);
/* "Key = value" on a line, comments stripped, both trimmed; false when the line is not one. */
bool conf_line_pair(const conf_line *l, char *key, size_t keylen, char *val, size_t vallen);
/* "# Key = value" (an awgproxy note in a comment, e.g. "# Name = alice"); key matched without
 * case. */
bool conf_line_note(const conf_line *l, const char *key, char *val, size_t vallen);

#endif
