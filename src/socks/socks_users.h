/* The check of a user name and password against the [Socks] User entries (Argon2id hashes from
 * `awgproxy passwd`), shared by the SOCKS5 login (socks_session.c) and the HTTP proxy's
 * Proxy-Authorization (src/http/). */
#ifndef AWGPROXY_SOCKS_SOCKS_USERS_H
#define AWGPROXY_SOCKS_SOCKS_USERS_H

#include <stdbool.h>
#include <stddef.h>

#include "config/config.h"

/* True when user/pass match one entry. user is a zero-filled buffer of sizeof users->user bytes
 * (the names are compared whole, in constant time) and every entry is checked the same way, so
 * the time does not tell whether a name exists. Slow by design (Argon2id, ~0.1 s per entry):
 * call it off the loop (uv_queue_work). */
bool socks_users_verify(const cfg_socks_user *users, size_t n, const char *user, const char *pass);
/* The same, telling which entry matched (its index), or -1. */
int socks_users_match(const cfg_socks_user *users, size_t n, const char *user, const char *pass);

#endif
