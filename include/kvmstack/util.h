/* Small utilities shared by mgmt and hostagent: allocation that aborts on
 * OOM (no OOM branches anywhere, as in OVS and Redis), UUIDs, strings. */
#ifndef KVMSTACK_UTIL_H
#define KVMSTACK_UTIL_H 1

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Defensive "cannot happen" checks that do not abort in production [sq]. */
#define ALWAYS(x) (x)
#define NEVER(x) (x)

void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
char *xvasprintf(const char *fmt, va_list ap);

/* Length of a UUID in ZStack's form: 32 lower-case hex digits, no dashes. */
#define UUID_LEN 32

/* Writes a random (v4) UUID in ZStack's form into 'out' (UUID_LEN + 1). */
void uuid_generate_hex(char out[UUID_LEN + 1]);

/* True if 's' is 32 hex digits (either case). */
bool uuid_is_valid(const char *s);

/* Fills 'buf' with 'n' bytes from the kernel's CSPRNG; aborts on failure. */
void random_bytes(void *buf, size_t n);

/* Overwrites 'n' bytes at 'p' in a way the compiler keeps. */
void secure_wipe(void *p, size_t n);

/* Wipes and frees a NUL-terminated secret; accepts NULL. */
void secret_free(char *s);

/* Milliseconds of CLOCK_MONOTONIC and of the wall clock. */
int64_t time_msec(void);
int64_t time_wall_msec(void);

/* Formats 'wall_msec' as ZStack's date form, "Nov 26, 2026 3:52:07 AM",
 * into 'buf'.  Returns 'buf'. */
char *time_format(int64_t wall_msec, char *buf, size_t size);

/* Growable string buffer. */
struct sbuf {
    char *s;                    /* NUL-terminated, never NULL after init. */
    size_t len;                 /* Bytes used, excluding the NUL. */
    size_t cap;                 /* Bytes allocated. */
};

void sbuf_init(struct sbuf *b);
void sbuf_destroy(struct sbuf *b);
void sbuf_add(struct sbuf *b, const void *data, size_t n);
void sbuf_addstr(struct sbuf *b, const char *s);
void sbuf_addf(struct sbuf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
char *sbuf_take(struct sbuf *b);

/* Lower-case hex SHA-512 / SHA-256 digests of 'n' bytes ('out' 129 / 65). */
void sha512_hex(const void *data, size_t n, char out[129]);
void sha256_hex(const void *data, size_t n, char out[65]);

/* Constant-time comparison of two NUL-terminated strings. */
bool str_equal_ct(const char *a, const char *b);

bool str_is_hex(const char *s, size_t len);

#endif
