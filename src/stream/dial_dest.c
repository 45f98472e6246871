/* The printed form of a dial destination: "192.0.2.1:443", "[2001:db8::1]:443", "name:443". */
#include <sys/socket.h>

#include "stream/dial_types.h"
#include "util/addr_fmt.h"

void dial_dest_format(const dial_dest *d, char *buf, size_t len) {
  switch (d->type) {
    case DIAL_DEST_IPV4:
      return addr_format(AF_INET, d->ip, d->port, buf, len);
    case DIAL_DEST_IPV6:
      return addr_format(AF_INET6, d->ip, d->port, buf, len);
    default:
      return addr_format_host(d->name, d->port, buf, len);
  }
}
