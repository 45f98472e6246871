/* Shared between the config loader's files; not part of the public interface. */
#ifndef AWGPROXY_CONFIG_INTERNAL_H
#define AWGPROXY_CONFIG_INTERNAL_H

#include "config/config.h"

#if defined(__GNUC__)
#define CFG_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define CFG_PRINTF(a, b)
#endif

void diag_add(diag_list *d, diag_kind kind, int line, const char *fmt, ...) CFG_PRINTF(4, 5);

/* Case-insensitive edit distance, for "did you mean" suggestions. */
size_t cfg_edit_distance(const char *a, const char *b);

/* Parses an unsigned decimal in [min, max]; no sign, no spaces. */
int cfg_parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out, char *err,
                   size_t errlen);
/* yes/no/true/false/on/off/1/0 */
int cfg_parse_bool(const char *s, bool *out);

/* Splits a comma-separated list in place; empty items are skipped. Returns the count, or -1 if
 * more than max items. */
int cfg_split_list(char *s, char **items, int max);

/* Interface Address: keeps the host part (the prefix only describes the on-link net). */
int cfg_parse_address(const char *s, cfg_cidr *out, char *err, size_t errlen);

/* The line where an [Interface] key was set (0 if it was not), from the loader's record. */
int cfg_interface_line(const int *iface_lines, const char *key);

/* config_quic.c: the QUIC transport's keys */
int cfg_parse_transport(const char *v, cfg_transport *out, char *err, size_t errlen);
int cfg_parse_congestion(const char *v, cfg_congestion *out, char *err, size_t errlen);
int cfg_parse_window(const char *v, uint64_t *out, char *err, size_t errlen);
int cfg_parse_port(const char *v, uint16_t *out, char *err, size_t errlen);
int cfg_parse_quic_protection(const char *v, bool *tunnel, char *err, size_t errlen);

/* The loader's state and its tables of sections and keys (config.c reads a file with them;
 * config_sections.c holds the keys of our own sections). */
typedef struct load_ctx load_ctx;
typedef enum {
  SEC_NONE,
  SEC_INTERFACE,
  SEC_PEER,
  SEC_SOCKS,
  SEC_FORWARD,
  SEC_SERVER,
  SEC_LOG,
  SEC_METRICS,
  SEC_CONTROL,
  SEC_HTTP,
  SEC_CLIENT,
  SEC_COUNT
} sec_id;

typedef int (*key_fn)(load_ctx *L, char *value, char *err, size_t errlen);

enum { KEY_LIST = 1, KEY_WGQUICK_ONLY = 2 };

typedef struct {
  const char *name;
  key_fn fn;
  unsigned flags;
} key_spec;

typedef struct {
  const char *name;
  sec_id id;
  const key_spec *keys;
  bool repeatable;
} section_spec;

#define MAX_KEYS_PER_SECTION 48

/* Reading one file of a config set (config_set.c). Our own sections are shared by the whole set,
 * so each key of them may be set in one file only: the front-end merge remembers where. */
typedef struct {
  int file, line; /* line 0: not set yet */
} cfg_key_where;
typedef struct {
  int file;                 /* index in paths of the file being read */
  const char *const *paths; /* the set's files, for messages naming the other file */
  cfg_key_where keys[SEC_COUNT][MAX_KEYS_PER_SECTION];
} cfg_front_merge;

/* How a text is read. All zero: a single config, exactly as config_load_buffer always did. */
typedef struct {
  /* One file of several: Select and User pins are allowed (config_set.c checks the names), and
   * the front-end rules ([Socks], [Forward], [Http]) wait for the merged front. */
  bool set_member;
  /* Front mode: only our own sections are read, into c, each key checked against the other
   * files; no whole-file validation. */
  cfg_front_merge *front;
  int own_line; /* out: line of the file's first own section ([Socks] … [Client]), 0 = none */
} cfg_load_opts;

int cfg_load_text(app_config *c, const char *text, size_t len, const char *path, diag_list *d,
                  cfg_load_opts *o);
/* The checks config_load_file makes on the file itself, then its bytes (the caller wipes and frees
 * *buf). Returns -1 with the reason in d. */
int cfg_read_file(const char *path, char **buf, size_t *len, diag_list *d);

struct load_ctx {
  app_config *c;
  diag_list *d;
  const section_spec *sec;
  int sec_line;
  int key_line;
  int seen[MAX_KEYS_PER_SECTION]; /* line where each key of this section instance was set */
  int section_seen[SEC_COUNT];    /* line of the first instance of a non-repeatable section */
  int iface_lines[MAX_KEYS_PER_SECTION]; /* the [Interface] keys' lines, for validation */
  cfg_peer *peer;
  cfg_forward *fwd;
  bool fwd_has_listen, fwd_has_target;
  cfg_load_opts *opts; /* never NULL while loading */
};

app_config *cfg_load_config(load_ctx *L);
cfg_peer *cfg_load_peer(load_ctx *L); /* the [Peer] being read */
/* A list grown by one element (NULL past a sane bound or when out of memory). */
void *cfg_grow(void *arr, size_t n, size_t size);

/* config_client.c: [Client] */
extern const key_spec cfg_client_keys[];

/* config_sections.c: [Socks], [Forward], [Server], [Metrics], [Control], [Log], [Http] */
extern const key_spec cfg_socks_keys[], cfg_forward_keys[], cfg_server_keys[], cfg_metrics_keys[],
    cfg_control_keys[], cfg_log_keys[], cfg_http_keys[];

/* config_hop.c: port hopping */
int cfg_parse_port_ranges(char *v, cfg_port_ranges *out, char *err, size_t n);
int cfg_k_extra_ports(load_ctx *L, char *v, char *err, size_t n);
int cfg_k_endpoint_ports(load_ctx *L, char *v, char *err, size_t n);
int cfg_k_hop_interval(load_ctx *L, char *v, char *err, size_t n);
void cfg_validate_hop(const app_config *c, diag_list *d);

/* config_tls.c: the TLS carrier */
int cfg_k_tls_endpoint(load_ctx *L, char *v, char *err, size_t n);
int cfg_k_tls_server_name(load_ctx *L, char *v, char *err, size_t n);
int cfg_k_carrier(load_ctx *L, char *v, char *err, size_t n);
int cfg_k_tls_verify(load_ctx *L, char *v, char *err, size_t n);
int cfg_k_udp_retry(load_ctx *L, char *v, char *err, size_t n);
int cfg_k_tls_listen(load_ctx *L, char *v, char *err, size_t n);
int cfg_k_tls_cert(load_ctx *L, char *v, char *err, size_t n);
int cfg_k_tls_key(load_ctx *L, char *v, char *err, size_t n);
int cfg_k_tls_name(load_ctx *L, char *v, char *err, size_t n);
int cfg_k_tls_decoy(load_ctx *L, char *v, char *err, size_t n);
int cfg_k_tls_decoy_upstream(load_ctx *L, char *v, char *err, size_t n);
void cfg_validate_tls(const app_config *c, diag_list *d);

/* config_awg3.c: the AmneziaWG 3.x keys */
int cfg_k_header_protection_key(load_ctx *L, char *v, char *err, size_t n);
int cfg_k_content_padding(load_ctx *L, char *v, char *err, size_t n);
int cfg_k_random_trailers(load_ctx *L, char *v, char *err, size_t n);
int cfg_k_disable_cookies(load_ctx *L, char *v, char *err, size_t n);
int cfg_k_rekey_after_time(load_ctx *L, char *v, char *err, size_t n);
int cfg_k_rekey_timeout(load_ctx *L, char *v, char *err, size_t n);
int cfg_k_reject_after_time(load_ctx *L, char *v, char *err, size_t n);
int cfg_k_keepalive_timeout(load_ctx *L, char *v, char *err, size_t n);
int cfg_k_max_handshake_attempts(load_ctx *L, char *v, char *err, size_t n);
int cfg_k_persistent_keepalive(load_ctx *L, char *v, char *err, size_t n);

/* Whole-file checks after every key parsed: required keys, cross-key rules, size warnings. The
 * front-end's (config_validate_front) are left out for one file of a set. */
void config_validate(app_config *c, diag_list *d, const int *iface_lines, bool set_member);
/* The rules of the client's front-end: [Socks] (Listen defaulted here), [Forward], [Http],
 * Mode = forward without User. On a set's merged front, line > 0 is a [Forward]'s line
 * (config_set.c knows the file); the Mode/User rule is config_validate_mode. */
void config_validate_front(app_config *c, diag_list *d);
void config_validate_mode(const app_config *c, diag_list *d);

#endif
