/* Watches ICMP/ICMPv6 "destination unreachable" messages arriving through the tunnel and fails
 * the matching TCP connection attempt at once with the real cause (lwIP does not pass ICMP errors
 * to TCP). Implemented with lwIP raw PCBs that observe without consuming. */
#ifndef AWGPROXY_STREAM_ICMP_WATCH_H
#define AWGPROXY_STREAM_ICMP_WATCH_H

/* Installs the watchers (once per process, after the IP stack exists). Returns 0 or -1. */
int icmp_watch_start(void);
void icmp_watch_stop(void);

#endif
