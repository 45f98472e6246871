#include "socks/socks_users.h"

#include <sodium.h>
#include <string.h>

bool socks_users_verify(const cfg_socks_user *users, size_t n, const char *user, const char *pass) {
  bool ok = false;
  for (size_t i = 0; i < n; i++) {
    bool name = sodium_memcmp(users[i].user, user, sizeof users[i].user) == 0;
    bool pw = crypto_pwhash_str_verify(users[i].hash, pass, strlen(pass)) == 0;
    if (name && pw) ok = true;
  }
  return ok;
}
