/* A minimal reader for classic libpcap files (not pcapng): both byte orders, micro- and
 * nanosecond timestamps, link types Ethernet (1, with 802.1Q tags), raw IP (101) and Linux
 * cooked capture v1/v2 (113/276). Yields the UDP datagrams over IPv4 (unfragmented) or IPv6
 * (no extension headers); other frames are skipped. For tests only. */
#ifndef AWGPROXY_TEST_PCAP_READER_H
#define AWGPROXY_TEST_PCAP_READER_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef struct {
  FILE *f;
  int swapped; /* file byte order differs from ours */
  int nanosec; /* timestamps in ns instead of us */
  uint32_t linktype;
  uint8_t *frame;
  size_t frame_cap;
  size_t frame_no; /* 1-based number of the last frame read */
} pcap_reader;

typedef struct {
  uint64_t ts_ns;
  size_t frame_no;
  uint8_t src_ip[16], dst_ip[16]; /* IPv4 in the first 4 bytes */
  int ip_version;
  uint16_t src_port, dst_port;
  const uint8_t *payload; /* valid until the next call */
  size_t len;
} pcap_udp;

/* 0 on success, -1 (with a message on stderr) if the file cannot be read as classic pcap. */
int pcap_open(pcap_reader *r, const char *path);
/* 1 = a datagram in *out, 0 = end of file, -1 = truncated/corrupt file. */
int pcap_next_udp(pcap_reader *r, pcap_udp *out);
void pcap_close(pcap_reader *r);

#endif
