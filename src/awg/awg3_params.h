/* AmneziaWG 3.x parameters (amneziawg-go 1b86b2a, ../shared/spec/awg3-obfuscation.md): header
 * protection, content padding, random trailers, DisableCookies and the timing ranges. All are
 * opt-in: with every field zero (awg3_params_init) the wire is exactly AWG 2.0's (e796d47). */
#ifndef AWGPROXY_AWG_AWG3_PARAMS_H
#define AWGPROXY_AWG_AWG3_PARAMS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AWG3_HP_KEY_LEN 32
#define AWG3_HP_NONCE_LEN 12 /* the first 12 bytes of every datagram (spec R15) */
#define AWG3_UDP_WINDOW 500  /* the random-trailer window a peer starts with (spec R36) */

/* An inclusive range [lo, hi]; [0, 0] = not set, use the default (spec §2.2, R4). */
typedef struct {
  uint32_t lo, hi;
} awg3_range;

typedef struct {
  bool header_protection; /* hp_key is set and not all zero (spec R13) */
  uint8_t hp_key[AWG3_HP_KEY_LEN];
  awg3_range content_padding; /* ContentPaddingAddition, bytes */
  bool random_trailers;
  bool disable_cookies;
  /* Timing ranges in seconds (MaxHandshakeAttempts: a count of retries, spec R53). */
  awg3_range rekey_after_time, rekey_timeout, reject_after_time, keepalive_timeout;
  awg3_range max_handshake_attempts;
} awg3_params;

void awg3_params_init(awg3_params *p);
/* True when nothing of AWG 3.x is set: the wire and the timers are AWG 2.0's. */
bool awg3_params_is_off(const awg3_params *p);
bool awg3_range_is_set(awg3_range r);

/* "A" or "A-B" (A <= B), unsigned decimal up to max. "0" and "0-0" give the unset range.
 * Returns 0, or -1 with err filled (the caller names the key). */
int awg3_range_parse(const char *text, uint32_t max, awg3_range *out, char *err, size_t errlen);
int awg3_range_format(awg3_range r, char *buf, size_t len);
/* on/off (any case) or a decimal number, non-zero = on (amneziawg-tools' rule, spec R11). */
int awg3_bool_parse(const char *text, bool *out, char *err, size_t errlen);

/* Cross-key rules at load time: every S_k >= 12 while header protection is on (the receiver
 * takes the mask nonce from the first 12 bytes before it knows the class, spec R7/R15). s[] are
 * S1..S4. Returns 0, or -1 with a message that names the offending key. */
int awg3_params_validate(const awg3_params *p, const uint32_t s[4], char *err, size_t errlen);

#endif
