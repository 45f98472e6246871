/* A peer's own exit rules ([Peer] ExitAllow, ExitDeny, ExitAllowDomain, ExitDenyDomain), judged
 * after the server-wide policy (exit_policy.h) has allowed a destination. Pure code, no I/O.
 *
 *   1. A name the peer asked for (SOCKS5 domain request, DNS query) that matches ExitDenyDomain
 *      is refused.
 *   2. A destination matching an ExitDeny entry is refused: deny beats allow.
 *   3. A peer with no ExitAllow and no ExitAllowDomain entries may reach everything else.
 *      Otherwise (allow-list mode) the destination must match an ExitAllow entry, or the flow's
 *      name must match ExitAllowDomain, or the address must be one the server's DNS returned to
 *      this peer for an allowed name (the caller checks that last part: `learned`).
 *
 * Entries with ports match TCP and UDP to those ports only; entries without ports match every
 * port and ICMP (which has none: dport 0). Names match case-insensitively, a trailing dot
 * ignored; "*.example.com" matches every name below example.com, not example.com itself.
 * IPv6 addresses that carry an IPv4 address (IPv4-mapped, NAT64 64:ff9b::/96, 6to4 2002::/16)
 * are judged as that IPv4 address. */
#ifndef AWGPROXY_EXIT_EXIT_RULES_H
#define AWGPROXY_EXIT_EXIT_RULES_H

#include <stdbool.h>
#include <stdint.h>

#include "config/config.h"

typedef enum {
  EXIT_RULE_ALLOW = 0,
  EXIT_RULE_DENY_DOMAIN, /* the name matches ExitDenyDomain */
  EXIT_RULE_DENY,        /* an ExitDeny entry matches */
  EXIT_RULE_NOT_ALLOWED, /* allow-list mode and nothing allows it */
} exit_rule_verdict;

bool exit_rules_allow_list_mode(const cfg_peer *p);
/* The verdict for a destination (family AF_INET/AF_INET6, 4 or 16 bytes; dport 0 for ICMP), with
 * the name the flow asked for (NULL: none) and whether the address was learned from the server's
 * DNS answers for an allowed name. */
exit_rule_verdict exit_rules_check(const cfg_peer *p, int family, const uint8_t *addr,
                                   uint16_t dport, const char *name, bool learned);
/* The verdict for a name alone (a DNS query): DENY_DOMAIN, NOT_ALLOWED (the peer has
 * ExitAllowDomain entries and none matches) or ALLOW. */
exit_rule_verdict exit_rules_check_name(const cfg_peer *p, const char *name);
bool exit_domain_match(const cfg_domain_rule *r, const char *name);
const char *exit_rule_verdict_str(exit_rule_verdict v);

#endif
