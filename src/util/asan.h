/* AWG_ASAN: 1 in an AddressSanitizer build (GCC's __SANITIZE_ADDRESS__, clang's
 * __has_feature), else 0. Our own allocation caches hand everything back to malloc then, so that
 * ASan still sees every use after free; tests that measure memory read it too. Header-only. */
#ifndef AWG_UTIL_ASAN_H
#define AWG_UTIL_ASAN_H

#if defined(__SANITIZE_ADDRESS__)
#define AWG_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define AWG_ASAN 1
#endif
#endif
#ifndef AWG_ASAN
#define AWG_ASAN 0
#endif

#endif
