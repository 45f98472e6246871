/* The userspace IP stack (lwIP, NO_SYS) attached to the tunnel: one lwIP netif whose addresses
 * are the config's Address entries. Inner packets decrypted from the tunnel are fed in with
 * ipstack_input; packets lwIP emits go to the output callback (the device encrypts them).
 * lwIP's timers run from a libuv timer on the same loop, so lwIP is only ever touched from the
 * loop thread. */
#ifndef AWGPROXY_DEVICE_IPSTACK_H
#define AWGPROXY_DEVICE_IPSTACK_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "config/config.h"
#include "lwip/ip_addr.h"

/* Called with one complete inner IP packet (contiguous). */
typedef void (*ipstack_output_fn)(void *ctx, const uint8_t *pkt, size_t len);

typedef struct ipstack ipstack;

/* Inbound IP/TCP/UDP/ICMP checksums are not verified from now on (outbound ones are still
 * generated): for a stack whose every packet arrives AEAD-authenticated from the device that
 * built it, as on the server (the checks cost ~7 % of a bulk transfer's CPU). */
void ipstack_trust_inbound(ipstack *s);
/* The same while `on`, for a client whose every peer is an awgproxy server (the tunnel knows it
 * from the repair HELLO): such a server's packets are built by its own IP stack from data it
 * read from sockets, never forwarded from the Internet, so their checksums are its own and the
 * AEAD already vouches for them. Off again when a stock peer may be there. */
void ipstack_trust_peers(ipstack *s, bool on);
/* Whether ipstack_trust_inbound was called (the stack never verifies inbound checksums). */
bool ipstack_trusts_inbound(const ipstack *s);
/* While `on`, outbound IPv4 header, TCP and UDP checksums are left zero: for a client whose every
 * peer has said it does not verify them (an awgproxy server, whose stack trusts inbound packets
 * and whose exit checks none either). ICMP's are still written. Off again when a peer that may
 * check is there. */
void ipstack_omit_checksums(ipstack *s, bool on);

/* The tunnel's verdict for lwIP's senders (src/device/tcp_bw_floor.h): whether losses on the way
 * to the peer owning an inner address (v6: 16 bytes, else 4) were judged congestion within the
 * last window_ms. */
typedef bool (*ipstack_congestion_fn)(void *ctx, bool v6, const uint8_t *addr, uint32_t window_ms);
void ipstack_set_congestion_probe(ipstack *s, ipstack_congestion_fn fn, void *ctx);
/* Creates the stack on loop with addresses and mtu: one lwIP netif. Several may exist (a client
 * with several servers); lwIP itself is one per process, so they must share one loop, and PCBs
 * for a stack are bound to its netif (ipstack_netif). Returns NULL with a message in err. */
ipstack *ipstack_create(uv_loop_t *loop, const cfg_cidr *addrs, size_t n, uint32_t mtu,
                        ipstack_output_fn out, void *ctx, char *err, size_t errlen);
/* Hands an inner packet from the tunnel to lwIP (copied). Returns 0, or -1 if it was dropped. */
int ipstack_input(ipstack *s, const uint8_t *pkt, size_t len);
void ipstack_destroy(ipstack *s);
/* An lwIP address from raw bytes (family AF_INET: 4 bytes, AF_INET6: 16, no zone). */
void ipstack_ip_from_bytes(ip_addr_t *out, int family, const uint8_t *bytes);

/* Frees the PCBs of a TIME_WAIT list (newest first, as lwIP keeps tcp_tw_pcbs) past the first
 * `keep`, except those a stream still holds (callback_arg set). Run before lwIP's timers; public
 * for its unit test. */
struct tcp_pcb;
void ipstack_trim_time_wait(struct tcp_pcb **list, int keep);

/* The lwIP netif (for code that opens PCBs bound to it). */
struct netif *ipstack_netif(ipstack *s);

#endif
