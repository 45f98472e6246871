/* Result codes of the WireGuard protocol core. Every consume/produce function in src/wg/ returns
 * one of these so that the device layer can count and log why a datagram was dropped. */
#ifndef AWGPROXY_WG_RESULT_H
#define AWGPROXY_WG_RESULT_H

typedef enum {
  WG_OK = 0,
  WG_ERR_SIZE,            /* message length is wrong for its kind */
  WG_ERR_MAC1,            /* mac1 does not verify: not for us, or corrupted */
  WG_ERR_NEED_COOKIE,     /* under load and mac2 absent/invalid: answer with a cookie reply */
  WG_ERR_DECRYPT,         /* an AEAD tag did not verify */
  WG_ERR_UNKNOWN_PEER,    /* initiation from a static key that is not configured */
  WG_ERR_UNKNOWN_INDEX,   /* receiver index is not one of ours (or of the wrong kind) */
  WG_ERR_STALE_TIMESTAMP, /* initiation timestamp not newer than the last one: a replay */
  WG_ERR_FLOOD,           /* initiations from this peer arrive faster than allowed */
  WG_ERR_REPLAY,          /* transport counter already seen or behind the window */
  WG_ERR_EXPIRED,         /* keypair too old, or its message counter is exhausted */
  WG_ERR_STATE,           /* message does not fit the handshake state (e.g. no initiation sent) */
  WG_ERR_BAD_KEY,         /* a public key is of low order / yields an all-zero DH, or is our own */
  WG_ERR_NO_SESSION,      /* no usable keypair to send with: a handshake has been requested */
  WG_ERR_RATE_LIMITED,    /* handshake suppressed: one was sent under REKEY_TIMEOUT ago */
  WG_ERR_BUFFER,          /* caller's buffer too small / lengths inconsistent */
  WG_ERR_NO_COOKIE_STATE, /* cookie reply without a handshake message of ours awaiting it */
  WG_ERR_NO_MEMORY,       /* a new keypair's AEAD contexts could not be allocated */
  WG_ERR_OTHER_SHARD,     /* sharded server: the initiator belongs to another worker */
} wg_result;

/* A short, stable, lower-case name for logs ("ok", "bad-mac1", ...). */
const char *wg_result_str(wg_result r);

#endif
