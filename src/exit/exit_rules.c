#include "exit/exit_rules.h"

#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "exit/exit_policy.h"

static bool rule_match(const cfg_exit_rule *r, int family, const uint8_t *addr, uint16_t dport) {
  if (r->port_lo && (dport < r->port_lo || dport > r->port_hi)) return false;
  if (r->any) return true;
  return r->net.family == family && exit_in_prefix(addr, r->net.addr, r->net.prefix);
}

static bool any_rule(const cfg_exit_rule *r, size_t n, int family, const uint8_t *addr,
                     uint16_t dport) {
  for (size_t i = 0; i < n; i++)
    if (rule_match(&r[i], family, addr, dport)) return true;
  return false;
}

bool exit_domain_match(const cfg_domain_rule *r, const char *name) {
  size_t n = strlen(name);
  if (n && name[n - 1] == '.') n--;
  size_t rl = strlen(r->name);
  if (!r->suffix) return n == rl && strncasecmp(name, r->name, n) == 0;
  /* "*.example.com": at least one more label, then ".example.com" */
  return n > rl + 1 && name[n - rl - 1] == '.' && strncasecmp(name + n - rl, r->name, rl) == 0;
}

static bool any_domain(const cfg_domain_rule *r, size_t n, const char *name) {
  for (size_t i = 0; i < n; i++)
    if (exit_domain_match(&r[i], name)) return true;
  return false;
}

bool exit_rules_allow_list_mode(const cfg_peer *p) {
  return p->n_exit_allow > 0 || p->n_allow_domains > 0;
}

exit_rule_verdict exit_rules_check_name(const cfg_peer *p, const char *name) {
  if (any_domain(p->deny_domains, p->n_deny_domains, name)) return EXIT_RULE_DENY_DOMAIN;
  if (p->n_allow_domains && !any_domain(p->allow_domains, p->n_allow_domains, name))
    return EXIT_RULE_NOT_ALLOWED;
  return EXIT_RULE_ALLOW;
}

/* IPv4-mapped, NAT64 (64:ff9b::/96) and 6to4 (2002::/16) addresses reach an IPv4 host: they
 * are judged as that host, as the server-wide policy does, so ::ffff:203.0.113.5 cannot slip
 * past ExitDeny = 203.0.113.0/24. Returns the IPv4 address inside, or NULL. */
static const uint8_t *embedded_v4(const uint8_t *a) {
  static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF},
                       nat64[12] = {0, 0x64, 0xFF, 0x9B};
  if (!memcmp(a, mapped, 12) || !memcmp(a, nat64, 12)) return a + 12;
  if (a[0] == 0x20 && a[1] == 0x02) return a + 2;
  return NULL;
}

exit_rule_verdict exit_rules_check(const cfg_peer *p, int family, const uint8_t *addr,
                                   uint16_t dport, const char *name, bool learned) {
  const uint8_t *v4 = family == AF_INET6 ? embedded_v4(addr) : NULL;
  if (v4) family = AF_INET, addr = v4;
  if (name && any_domain(p->deny_domains, p->n_deny_domains, name)) return EXIT_RULE_DENY_DOMAIN;
  if (any_rule(p->exit_deny, p->n_exit_deny, family, addr, dport)) return EXIT_RULE_DENY;
  if (!exit_rules_allow_list_mode(p)) return EXIT_RULE_ALLOW;
  if (any_rule(p->exit_allow, p->n_exit_allow, family, addr, dport)) return EXIT_RULE_ALLOW;
  if (name && any_domain(p->allow_domains, p->n_allow_domains, name)) return EXIT_RULE_ALLOW;
  if (learned && p->n_allow_domains) return EXIT_RULE_ALLOW;
  return EXIT_RULE_NOT_ALLOWED;
}

const char *exit_rule_verdict_str(exit_rule_verdict v) {
  switch (v) {
    case EXIT_RULE_ALLOW:
      return "allowed";
    case EXIT_RULE_DENY_DOMAIN:
      return "the peer's ExitDenyDomain";
    case EXIT_RULE_DENY:
      return "the peer's ExitDeny";
    case EXIT_RULE_NOT_ALLOWED:
      return "not in the peer's ExitAllow / ExitAllowDomain";
  }
  return "?";
}
