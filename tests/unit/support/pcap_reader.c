#include "pcap_reader.h"

#include <stdlib.h>
#include <string.h>

#define LINK_ETHERNET 1
#define LINK_RAW 101
#define LINK_SLL 113
#define LINK_SLL2 276
#define ETHERTYPE_IPV4 0x0800
#define ETHERTYPE_IPV6 0x86dd
#define ETHERTYPE_VLAN 0x8100
#define IPPROTO_UDP_NUM 17

static uint32_t rd32(const pcap_reader *r, const uint8_t *p) {
  uint32_t v;
  memcpy(&v, p, 4);
  return r->swapped ? __builtin_bswap32(v) : v;
}

static uint16_t be16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }

int pcap_open(pcap_reader *r, const char *path) {
  uint8_t h[24];
  uint32_t magic;
  memset(r, 0, sizeof *r);
  r->f = fopen(path, "rb");
  if (!r->f || fread(h, 1, sizeof h, r->f) != sizeof h) {
    fprintf(stderr, "pcap: cannot read %s\n", path);
    if (r->f) fclose(r->f);
    r->f = NULL;
    return -1;
  }
  memcpy(&magic, h, 4);
  if (magic == 0xa1b2c3d4 || magic == 0xa1b23c4d) {
    r->nanosec = magic == 0xa1b23c4d;
  } else if (magic == 0xd4c3b2a1 || magic == 0x4d3cb2a1) {
    r->swapped = 1;
    r->nanosec = magic == 0x4d3cb2a1;
  } else {
    fprintf(stderr, "pcap: %s is not a classic pcap file (magic %08x)\n", path, magic);
    pcap_close(r);
    return -1;
  }
  r->linktype = rd32(r, h + 20) & 0x0fffffff; /* upper bits may hold FCS info */
  r->frame_cap = rd32(r, h + 16);
  if (r->frame_cap == 0 || r->frame_cap > (1u << 24)) r->frame_cap = 1u << 18;
  r->frame = malloc(r->frame_cap);
  return r->frame ? 0 : -1;
}

void pcap_close(pcap_reader *r) {
  if (r->f) fclose(r->f);
  free(r->frame);
  memset(r, 0, sizeof *r);
}

/* Finds the network-layer packet in a frame: sets *ip/*iplen, returns the ethertype or -1. */
static int network_layer(const pcap_reader *r, const uint8_t *f, size_t n, const uint8_t **ip,
                         size_t *iplen) {
  size_t off;
  int type;
  switch (r->linktype) {
    case LINK_ETHERNET:
      if (n < 14) return -1;
      off = 14;
      type = be16(f + 12);
      while (type == ETHERTYPE_VLAN && n >= off + 4) {
        type = be16(f + off + 2);
        off += 4;
      }
      break;
    case LINK_RAW:
      if (n < 1) return -1;
      off = 0;
      type = (f[0] >> 4) == 6 ? ETHERTYPE_IPV6 : ETHERTYPE_IPV4;
      break;
    case LINK_SLL:
      if (n < 16) return -1;
      off = 16;
      type = be16(f + 14);
      break;
    case LINK_SLL2:
      if (n < 20) return -1;
      off = 20;
      type = be16(f);
      break;
    default:
      return -1;
  }
  *ip = f + off;
  *iplen = n - off;
  return type;
}

/* Fills the addresses and returns the UDP header inside an IP packet, or NULL. */
static const uint8_t *udp_header(int type, const uint8_t *ip, size_t n, pcap_udp *out,
                                 size_t *udplen) {
  if (type == ETHERTYPE_IPV4) {
    size_t ihl = (size_t)(ip[0] & 15) * 4, total;
    if (n < 20 || (ip[0] >> 4) != 4 || ihl < 20 || n < ihl) return NULL;
    if (ip[9] != IPPROTO_UDP_NUM || (be16(ip + 6) & 0x3fff)) return NULL; /* not UDP/fragment */
    total = be16(ip + 2);
    if (total < ihl || total > n) return NULL;
    out->ip_version = 4;
    memcpy(out->src_ip, ip + 12, 4);
    memcpy(out->dst_ip, ip + 16, 4);
    *udplen = total - ihl;
    return ip + ihl;
  }
  if (type == ETHERTYPE_IPV6) {
    if (n < 40 || (ip[0] >> 4) != 6 || ip[6] != IPPROTO_UDP_NUM) return NULL;
    if ((size_t)be16(ip + 4) > n - 40) return NULL;
    out->ip_version = 6;
    memcpy(out->src_ip, ip + 8, 16);
    memcpy(out->dst_ip, ip + 24, 16);
    *udplen = be16(ip + 4);
    return ip + 40;
  }
  return NULL;
}

static int parse_udp(const pcap_reader *r, size_t caplen, pcap_udp *out) {
  const uint8_t *ip, *udp;
  size_t iplen, udplen, len;
  int type = network_layer(r, r->frame, caplen, &ip, &iplen);
  if (type < 0) return 0;
  udp = udp_header(type, ip, iplen, out, &udplen);
  if (!udp || udplen < 8) return 0;
  len = be16(udp + 4);
  if (len < 8 || len > udplen) return 0;
  out->src_port = be16(udp);
  out->dst_port = be16(udp + 2);
  out->payload = udp + 8;
  out->len = len - 8;
  return 1;
}

int pcap_next_udp(pcap_reader *r, pcap_udp *out) {
  uint8_t h[16];
  for (;;) {
    size_t got = fread(h, 1, sizeof h, r->f);
    uint32_t caplen;
    if (got == 0) return 0;
    if (got != sizeof h) return -1;
    caplen = rd32(r, h + 8);
    if (caplen > r->frame_cap || fread(r->frame, 1, caplen, r->f) != caplen) return -1;
    r->frame_no++;
    memset(out, 0, sizeof *out);
    out->frame_no = r->frame_no;
    out->ts_ns =
        (uint64_t)rd32(r, h) * 1000000000u + (uint64_t)rd32(r, h + 4) * (r->nanosec ? 1u : 1000u);
    if (parse_udp(r, caplen, out)) return 1;
  }
}
