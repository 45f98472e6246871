#include "socks/socks_users.h"

#include <sodium.h>
#include <string.h>

int socks_users_match(const cfg_socks_user *users, size_t n, const char *user, const char *pass) {
  int found = -1;
  for (size_t i = 0; i < n; i++) {
    bool name = sodium_memcmp(users[i].user, user, sizeof users[i].user) == 0;
    bool pw = crypto_pwhash_str_verify(users[i].hash, pass, strlen(pass)) == 0;
    if (name && pw && found < 0) found = (int)i;
  }
  return found;
}

bool socks_users_verify(const cfg_socks_user *users, size_t n, const char *user, const char *pass) {
  return socks_users_match(users, n, user, pass) >= 0;
}
