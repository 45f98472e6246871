/* `awgproxy init-server`: writes a complete, valid server config (init_server.h). */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/conf_file.h"
#include "cli/init_server.h"
#include "config/config.h"
#include "util/keys.h"

#define INIT_TEXT_MAX 16384

static const char init_usage[] =
    "Usage: awgproxy init-server -o FILE [--endpoint HOST[:PORT]] [--port N] [--subnet CIDR]\n"
    "                            [--subnet6 CIDR|off] [--profile awg2|awg3|wireguard]\n"
    "                            [--control PATH|off] [--force]\n"
    "Writes a complete server config (mode 0600): a fresh private key, a random high UDP port,\n"
    "a tunnel subnet, [Server] defaults and AmneziaWG obfuscation parameters drawn at random\n"
    "and always valid. Then add clients with `awgproxy add-peer -c FILE NAME`.\n\n"
    "  -o, --output FILE   the config to write (refused if it exists, unless --force)\n"
    "  --endpoint HOST     the name or address clients reach this server at, optionally\n"
    "                      HOST:PORT; add-peer puts it in every client config. Default: this\n"
    "                      machine's outgoing address (check it: behind NAT it is not public)\n"
    "  --port N            UDP port to listen on (default: random in 20000-60999)\n"
    "  --subnet CIDR       IPv4 tunnel network, /8 to /30 (default: random 10.x.y.0/24);\n"
    "                      the server takes its first address\n"
    "  --subnet6 CIDR|off  IPv6 tunnel network, /64 to /120 (default: a random ULA fdXX::/64)\n"
    "  --profile NAME      awg2 (default): AmneziaWG 2.0, works with every AmneziaWG client;\n"
    "                      awg3: adds AmneziaWG 3.x header protection and random trailers\n"
    "                      (clients need AmneziaWG 3.x); wireguard: no obfuscation, for stock\n"
    "                      WireGuard apps (recognisable by DPI)\n"
    "  --control PATH|off  the control socket add-peer and remove-peer reload the server\n"
    "                      through (default: FILE's folder, FILE's name with .sock)\n"
    "  --force             overwrite FILE\n";

/* ---- networks ------------------------------------------------------------------------------ */

static int pick_subnet4(const char *arg, cfg_cidr *net, char *err, size_t errlen) {
  if (!arg) {
    net->family = AF_INET;
    net->prefix = 24;
    net->addr[0] = 10;
    randombytes_buf(net->addr + 1, 2);
    net->addr[3] = 0;
    return 0;
  }
  char why[160];
  if (cfg_parse_cidr(arg, net, why, sizeof why) != 0)
    return snprintf(err, errlen, "--subnet %s: %s", arg, why), -1;
  if (net->family != AF_INET || net->prefix < 8 || net->prefix > 30)
    return snprintf(err, errlen,
                    "--subnet %s: give an IPv4 network from /8 to /30, e.g. "
                    "10.66.0.0/24",
                    arg),
           -1;
  for (int bit = net->prefix; bit < 32; bit++) net->addr[bit / 8] &= (uint8_t) ~(0x80 >> (bit % 8));
  return 0;
}

static int pick_subnet6(const char *arg, cfg_cidr *net, char *err, size_t errlen) {
  if (arg && !strcmp(arg, "off")) return net->family = 0, 0;
  if (!arg) { /* RFC 4193: fd00::/8, a random 40-bit global ID and a random subnet ID */
    memset(net, 0, sizeof *net);
    net->family = AF_INET6;
    net->prefix = 64;
    net->addr[0] = 0xfd;
    randombytes_buf(net->addr + 1, 7);
    return 0;
  }
  char why[160];
  if (cfg_parse_cidr(arg, net, why, sizeof why) != 0)
    return snprintf(err, errlen, "--subnet6 %s: %s", arg, why), -1;
  if (net->family != AF_INET6 || net->prefix < 64 || net->prefix > 120)
    return snprintf(err, errlen, "--subnet6 %s: give an IPv6 network from /64 to /120, or off",
                    arg),
           -1;
  for (int bit = net->prefix; bit < 128; bit++)
    net->addr[bit / 8] &= (uint8_t) ~(0x80 >> (bit % 8));
  return 0;
}

/* The server's own address: the network's first host, with the network's prefix. */
static void first_host(const cfg_cidr *net, char *out, size_t n) {
  cfg_cidr host = *net;
  int last = net->family == AF_INET ? 3 : 15;
  host.addr[last] |= 1;
  cfg_format_cidr(&host, out, n);
}

/* ---- the endpoint clients use --------------------------------------------------------------- */

/* The source address this machine would use towards the Internet (no packet is sent). */
static bool outgoing_address(char *out, size_t n) {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(9)}, me;
  inet_pton(AF_INET, "192.0.2.1", &to.sin_addr); /* TEST-NET-1: routed like the Internet */
  socklen_t len = sizeof me;
  bool ok = connect(fd, (struct sockaddr *)&to, sizeof to) == 0 &&
            getsockname(fd, (struct sockaddr *)&me, &len) == 0 &&
            inet_ntop(AF_INET, &me.sin_addr, out, (socklen_t)n) != NULL;
  close(fd);
  return ok;
}

static int endpoint_line(const char *arg, uint16_t port, char *out, size_t n, char *err,
                         size_t errlen) {
  if (!arg) {
    char ip[INET_ADDRSTRLEN];
    if (!outgoing_address(ip, sizeof ip)) return out[0] = '\0', 0;
    return snprintf(out, n, "%s:%u", ip, port), 0;
  }
  cfg_hostport hp;
  char why[160];
  struct in6_addr a6;
  if (inet_pton(AF_INET6, arg, &a6) == 1) return snprintf(out, n, "[%s]:%u", arg, port), 0;
  if (!strchr(arg, ':') || arg[strlen(arg) - 1] == ']') {
    snprintf(out, n, "%s:%u", arg, port);
    if (cfg_parse_hostport(out, &hp, why, sizeof why) == 0) return 0;
  } else if (cfg_parse_hostport(arg, &hp, why, sizeof why) == 0) {
    return snprintf(out, n, "%s", arg), 0;
  }
  return snprintf(err, errlen, "--endpoint %s: %s", arg, why), -1;
}

/* ---- the text ------------------------------------------------------------------------------- */

size_t init_server_text(const init_server_opts *o, char *buf, size_t cap, char *err,
                        size_t errlen) {
  cfg_cidr net4, net6;
  if (pick_subnet4(o->subnet, &net4, err, errlen) || pick_subnet6(o->subnet6, &net6, err, errlen))
    return 0;
  /* A drawn port is never WireGuard's well-known 51820, which censors probe first; an explicit
   * --port is the operator's choice. */
  uint16_t port = o->port;
  while (!port) {
    port = (uint16_t)(20000 + randombytes_uniform(41000));
    if (port == 51820) port = 0;
  }
  char endpoint[320];
  if (endpoint_line(o->endpoint, port, endpoint, sizeof endpoint, err, errlen)) return 0;
  char addr4[64], addr6[64] = "";
  first_host(&net4, addr4, sizeof addr4);
  if (net6.family) first_host(&net6, addr6, sizeof addr6);

  uint8_t priv[AWG_KEY_LEN];
  char priv64[AWG_KEY_B64_LEN + 1];
  key_generate_private(priv);
  key_to_base64(priv, priv64);
  sodium_memzero(priv, sizeof priv);
  obfs_drawn d;
  obfs_draw(o->profile, &d);
  char obfs[INIT_TEXT_MAX / 2];
  size_t obfs_len = obfs_format(&d, o->profile, obfs, sizeof obfs);
  sodium_memzero(&d, sizeof d);

  char when[32];
  time_t now = time(NULL);
  struct tm tm;
  strftime(when, sizeof when, "%Y-%m-%d", gmtime_r(&now, &tm));
  char control[PATH_MAX + 64] = "";
  if (o->control && strcmp(o->control, "off"))
    snprintf(control, sizeof control,
             "\n[Control]\n# add-peer and remove-peer reload the running server through this "
             "socket (mode 0600).\nListen = %s\n",
             o->control);
  int n = snprintf(
      buf, cap,
      "# awgproxy server, written by `awgproxy init-server` on %s (profile %s).\n"
      "# Add a client: awgproxy add-peer -c THIS_FILE NAME --qr\n"
      "# Check: awgproxy check -c THIS_FILE   Run: awgproxy server -c THIS_FILE\n"
      "# The file holds the server's private key: keep it mode 0600 and back it up.\n\n"
      "[Interface]\nPrivateKey = %s\n"
      "# Clients send to this UDP port: open it in the firewall.\nListenPort = %u\n"
      "Address = %s%s%s\n"
      "# Where clients reach this server; add-peer writes it into every client config.\n"
      "# Endpoint = %s\n"
      "%s"
      "\n[Server]\n"
      "# SOCKS5 on the tunnel address (%.*s:1080), for clients that want the server to dial.\n"
      "Socks = 1080\n# One worker process per core.\nThreads = auto\n"
      "%s"
      "\n[Log]\nLevel = info\n\n"
      "# Peers follow, one [Peer] per client, written by add-peer.\n",
      when, obfs_profile_name(o->profile), priv64, port, addr4, addr6[0] ? ", " : "", addr6,
      endpoint, obfs_len ? obfs : "", (int)(strchr(addr4, '/') - addr4), addr4, control);
  sodium_memzero(priv64, sizeof priv64);
  sodium_memzero(obfs, sizeof obfs);
  if (n <= 0 || (size_t)n >= cap) return snprintf(err, errlen, "the config does not fit"), 0;
  return (size_t)n;
}

/* ---- the command ---------------------------------------------------------------------------- */

static int usage_error(const char *what, const char *arg) {
  fprintf(stderr, "awgproxy init-server: %s%s%s\n%s", what, arg ? " " : "", arg ? arg : "",
          init_usage);
  return 2;
}

/* The default control socket: next to the config, named after it (wg0.conf -> wg0.sock). */
static int default_control(const char *output, char *out, size_t n) {
  char abs[PATH_MAX];
  const char *slash = strrchr(output, '/');
  char dir[PATH_MAX];
  snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - output) : 1, slash ? output : ".");
  if (!dir[0]) strcpy(dir, "/");
  if (!realpath(dir, abs)) return -1;
  const char *base = slash ? slash + 1 : output;
  const char *dot = strrchr(base, '.');
  int stem = dot && dot != base ? (int)(dot - base) : (int)strlen(base);
  int len = snprintf(out, n, "%s/%.*s.sock", strcmp(abs, "/") ? abs : "", stem, base);
  return len > 0 && (size_t)len < 108 ? 0 : -1; /* sun_path holds 108 bytes */
}

int cmd_init_server(int argc, char **argv) {
  if (cli_wants_help(argc, argv)) return fputs(init_usage, stdout), 0;
  init_server_opts o = {0};
  const char *output = NULL, *profile = "awg2";
  bool force = false;
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i], **slot = NULL;
    if (!strcmp(a, "-o") || !strcmp(a, "--output"))
      slot = &output;
    else if (!strcmp(a, "--endpoint"))
      slot = &o.endpoint;
    else if (!strcmp(a, "--subnet"))
      slot = &o.subnet;
    else if (!strcmp(a, "--subnet6"))
      slot = &o.subnet6;
    else if (!strcmp(a, "--profile"))
      slot = &profile;
    else if (!strcmp(a, "--control"))
      slot = &o.control;
    else if (!strcmp(a, "--force")) {
      force = true;
      continue;
    } else if (!strcmp(a, "--port")) {
      char *end;
      long v = i + 1 < argc ? strtol(argv[i + 1], &end, 10) : -1;
      if (v < 1 || v > 65535 || *end) return usage_error("--port needs a port, 1-65535", NULL);
      o.port = (uint16_t)v;
      i++;
      continue;
    } else
      return usage_error("unknown argument", a);
    if (i + 1 >= argc) return usage_error(a, "needs a value");
    *slot = argv[++i];
  }
  if (!output) return usage_error("which file? give -o FILE", NULL);
  if (obfs_profile_parse(profile, &o.profile) != 0)
    return usage_error("--profile takes awg2, awg3 or wireguard, not", profile);
  char control[PATH_MAX];
  if (!o.control) {
    if (default_control(output, control, sizeof control) == 0)
      o.control = control;
    else
      fputs(
          "awgproxy init-server: no [Control] Listen (the path would be too long for a "
          "socket); add-peer will not reload the server by itself\n",
          stderr);
  } else if (strcmp(o.control, "off") && o.control[0] != '/') {
    return usage_error("--control takes an absolute socket path or off, not", o.control);
  }

  char err[512];
  char *text = malloc(INIT_TEXT_MAX);
  size_t len = text ? init_server_text(&o, text, INIT_TEXT_MAX, err, sizeof err) : 0;
  if (!len) {
    fprintf(stderr, "awgproxy init-server: %s\n", text ? err : "out of memory");
    free(text);
    return text ? 2 : 1;
  }
  /* What we write must load: check it exactly as the server will. */
  app_config c;
  diag_list d = {0};
  config_init(&c);
  int rc = config_load_buffer(&c, text, len, output, &d);
  if (rc != 0 || d.warnings) {
    diag_list_print(&d, output, stderr);
    fputs(
        "awgproxy init-server: the drawn config did not pass its own check (a bug: please "
        "report it)\n",
        stderr);
    rc = 1;
  } else if (conf_file_create(output, text, len, force, err, sizeof err) != 0) {
    fprintf(stderr, "awgproxy init-server: %s\n", err);
    rc = 1;
  } else {
    char pub[AWG_KEY_B64_LEN + 1];
    key_to_base64(c.public_key, pub);
    printf(
        "wrote %s (mode 0600)\n  public key: %s\n  listen port: %u/udp (open it in the "
        "firewall)\n  profile: %s\n",
        output, pub, c.listen_port, obfs_profile_name(o.profile));
    if (!o.endpoint)
      puts(
          "  endpoint: not given, so this machine's outgoing address (if it has one) was "
          "written as '# Endpoint'; behind NAT or with a DNS name, edit that line");
    printf("next: awgproxy add-peer -c %s NAME --qr\n", output);
  }
  sodium_memzero(text, len);
  free(text);
  diag_list_free(&d);
  config_free(&c);
  return rc;
}
