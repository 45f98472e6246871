#include "util/fd_limit.h"

#include <stdio.h>
#include <sys/resource.h>

#include "util/log.h"

void fd_limit_ensure(uint64_t need, uint64_t room, const char *component, const char *key) {
  struct rlimit rl;
  uint64_t want = room > need ? room : need;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= (rlim_t)want) return;
  rl.rlim_cur =
      rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= (rlim_t)want ? (rlim_t)want : rl.rlim_max;
  setrlimit(RLIMIT_NOFILE, &rl);
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= (rlim_t)need) return;
  char have[24], wanted[24], msg[300];
  snprintf(have, sizeof have, "%llu", (unsigned long long)rl.rlim_cur);
  snprintf(wanted, sizeof wanted, "%llu", (unsigned long long)need);
  snprintf(msg, sizeof msg,
           "the open-file limit is below what %s needs: connections beyond it fail; raise the "
           "hard limit (ulimit -Hn, LimitNOFILE=) or lower %s",
           key, key);
  LOG_W(component, "fd_limit_low", "limit", have, "wanted", wanted, "msg", msg, NULL);
}
