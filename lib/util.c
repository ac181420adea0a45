/* util.c: allocation, UUIDs, string buffers, digests and clocks shared by
 * every kvmstack binary.  Allocation failures abort: there are no OOM
 * branches in the project [ovs] [rd]. */
#include "kvmstack/util.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

static void
out_of_memory(void)
{
    fputs("kvmstack: out of memory\n", stderr);
    abort();
}

void *
xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);

    if (!p) {
        out_of_memory();
    }
    return p;
}

void *
xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);

    if (!p) {
        out_of_memory();
    }
    return p;
}

void *
xrealloc(void *p, size_t n)
{
    p = realloc(p, n ? n : 1);
    if (!p) {
        out_of_memory();
    }
    return p;
}

char *
xstrdup(const char *s)
{
    return xstrndup(s, strlen(s));
}

char *
xstrndup(const char *s, size_t n)
{
    char *p = xmalloc(n + 1);

    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *
xvasprintf(const char *fmt, va_list ap)
{
    char *s;

    if (vasprintf(&s, fmt, ap) < 0) {
        out_of_memory();
    }
    return s;
}

char *
xasprintf(const char *fmt, ...)
{
    va_list ap;
    char *s;

    va_start(ap, fmt);
    s = xvasprintf(fmt, ap);
    va_end(ap);
    return s;
}

void
random_bytes(void *buf, size_t n)
{
    unsigned char *p = buf;

    while (n > 0) {
        ssize_t r = getrandom(p, n, 0);

        if (r < 0) {
            if (errno == EINTR) {
                continue;
            }
            fputs("kvmstack: getrandom failed\n", stderr);
            abort();
        }
        p += r;
        n -= (size_t) r;
    }
}

void
uuid_generate_hex(char out[UUID_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char b[16];

    random_bytes(b, sizeof b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    for (int i = 0; i < 16; i++) {
        out[2 * i] = hex[b[i] >> 4];
        out[2 * i + 1] = hex[b[i] & 0xf];
    }
    out[UUID_LEN] = '\0';
}

bool
str_is_hex(const char *s, size_t len)
{
    size_t i;

    for (i = 0; s[i]; i++) {
        char c = s[i];

        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')
              || (c >= 'A' && c <= 'F'))) {
            return false;
        }
    }
    return i == len;
}

bool
uuid_is_valid(const char *s)
{
    return s && str_is_hex(s, UUID_LEN);
}

void
secure_wipe(void *p, size_t n)
{
    if (p) {
        explicit_bzero(p, n);
    }
}

void
secret_free(char *s)
{
    if (s) {
        secure_wipe(s, strlen(s));
        free(s);
    }
}

int64_t
time_msec(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t
time_wall_msec(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

char *
time_format(int64_t wall_msec, char *buf, size_t size)
{
    time_t t = (time_t) (wall_msec / 1000);
    struct tm tm;

    static const char *const months[] = {
        "Jan", "Feb", "Mar", "Apr", "May", "Jun",
        "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    };
    int hour;

    gmtime_r(&t, &tm);
    hour = tm.tm_hour % 12 ? tm.tm_hour % 12 : 12;
    snprintf(buf, size, "%s %d, %d %d:%02d:%02d %s", months[tm.tm_mon],
             tm.tm_mday, tm.tm_year + 1900, hour, tm.tm_min, tm.tm_sec,
             tm.tm_hour < 12 ? "AM" : "PM");
    return buf;
}

void
sbuf_init(struct sbuf *b)
{
    b->cap = 64;
    b->len = 0;
    b->s = xmalloc(b->cap);
    b->s[0] = '\0';
}

void
sbuf_destroy(struct sbuf *b)
{
    free(b->s);
    b->s = NULL;
    b->len = b->cap = 0;
}

void
sbuf_add(struct sbuf *b, const void *data, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        while (b->len + n + 1 > b->cap) {
            b->cap *= 2;
        }
        b->s = xrealloc(b->s, b->cap);
    }
    memcpy(b->s + b->len, data, n);
    b->len += n;
    b->s[b->len] = '\0';
}

void
sbuf_addstr(struct sbuf *b, const char *s)
{
    sbuf_add(b, s, strlen(s));
}

void
sbuf_addf(struct sbuf *b, const char *fmt, ...)
{
    va_list ap;
    char *s;

    va_start(ap, fmt);
    s = xvasprintf(fmt, ap);
    va_end(ap);
    sbuf_addstr(b, s);
    free(s);
}

char *
sbuf_take(struct sbuf *b)
{
    char *s = b->s;

    b->s = NULL;
    b->len = b->cap = 0;
    return s;
}

static void
digest_hex(const EVP_MD *md, const void *data, size_t n, char *out)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned int len = 0;

    if (!EVP_Digest(data, n, d, &len, md, NULL)) {
        abort();
    }
    for (unsigned int i = 0; i < len; i++) {
        out[2 * i] = hex[d[i] >> 4];
        out[2 * i + 1] = hex[d[i] & 0xf];
    }
    out[2 * len] = '\0';
    secure_wipe(d, sizeof d);
}

void
sha512_hex(const void *data, size_t n, char out[129])
{
    digest_hex(EVP_sha512(), data, n, out);
}

void
sha256_hex(const void *data, size_t n, char out[65])
{
    digest_hex(EVP_sha256(), data, n, out);
}

bool
str_equal_ct(const char *a, const char *b)
{
    size_t la = strlen(a);
    size_t lb = strlen(b);
    unsigned char diff = la != lb;

    for (size_t i = 0; i < la && i < lb; i++) {
        diff |= (unsigned char) (a[i] ^ b[i]);
    }
    return diff == 0;
}
