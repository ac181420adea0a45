/* vr_connect.c: TCP connect latency for tests/bench/vr-bench.sh.
 *
 *   vr-connect serve ADDR PORT
 *       accepts connections on ADDR:PORT and closes each at once
 *   vr-connect connect ADDR PORT COUNT [SRC-ADDR [raw]]
 *       COUNT times: socket, (bind SRC-ADDR), blocking connect, close with
 *       a reset (SO_LINGER 0: no TIME_WAIT, no port exhaustion); prints
 *       "n=COUNT fail=F p50=US p90=US p99=US max=US" (microseconds, time
 *       of connect() only, i.e. SYN -> SYN/ACK through the router); with
 *       "raw", every latency on a line of its own instead
 *
 * Run inside network namespaces with `ip netns exec`. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double
now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int
cmp_double(const void *a, const void *b)
{
    double x = *(const double *) a;
    double y = *(const double *) b;

    return x < y ? -1 : x > y;
}

static int
addr_of(const char *ip, int port, struct sockaddr_in *sa)
{
    memset(sa, 0, sizeof *sa);
    sa->sin_family = AF_INET;
    sa->sin_port = htons((unsigned short) port);
    return inet_pton(AF_INET, ip, &sa->sin_addr) == 1 ? 0 : -1;
}

static int
serve(const char *ip, int port)
{
    struct sockaddr_in sa;
    int one = 1;
    int s = socket(AF_INET, SOCK_STREAM, 0);

    if (s < 0 || addr_of(ip, port, &sa) < 0) {
        perror("serve");
        return 1;
    }
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(s, (struct sockaddr *) &sa, sizeof sa) < 0
        || listen(s, 4096) < 0) {
        perror("bind/listen");
        return 1;
    }
    printf("listening\n");
    fflush(stdout);
    for (;;) {
        int c = accept(s, NULL, NULL);

        if (c >= 0) {
            close(c);
        }
    }
}

static int
connect_many(const char *ip, int port, int count, const char *src, bool raw)
{
    struct sockaddr_in sa;
    struct sockaddr_in from;
    struct linger lin = { 1, 0 };
    double *lat = calloc((size_t) count, sizeof *lat);
    int n = 0;
    int fail = 0;

    if (!lat || addr_of(ip, port, &sa) < 0
        || (src && addr_of(src, 0, &from) < 0)) {
        fprintf(stderr, "bad arguments\n");
        return 2;
    }
    for (int i = 0; i < count; i++) {
        int s = socket(AF_INET, SOCK_STREAM, 0);
        double t0;
        double t1;

        if (s < 0) {
            perror("socket");
            return 1;
        }
        if (src && bind(s, (struct sockaddr *) &from, sizeof from) < 0) {
            perror("bind");
            return 1;
        }
        t0 = now_us();
        if (connect(s, (struct sockaddr *) &sa, sizeof sa) < 0) {
            fail++;
        } else {
            t1 = now_us();
            lat[n++] = t1 - t0;
        }
        setsockopt(s, SOL_SOCKET, SO_LINGER, &lin, sizeof lin);
        close(s);
    }
    if (n == 0) {
        printf("n=0 fail=%d\n", fail);
        return 1;
    }
    if (raw) {
        for (int i = 0; i < n; i++) {
            printf("%.1f\n", lat[i]);
        }
        free(lat);
        return fail ? 1 : 0;
    }
    qsort(lat, (size_t) n, sizeof *lat, cmp_double);
    printf("n=%d fail=%d p50=%.1f p90=%.1f p99=%.1f max=%.1f\n", n, fail,
           lat[n / 2], lat[(int) (n * 0.90)], lat[(int) (n * 0.99)],
           lat[n - 1]);
    free(lat);
    return fail ? 1 : 0;
}

int
main(int argc, char **argv)
{
    if (argc == 4 && !strcmp(argv[1], "serve")) {
        return serve(argv[2], atoi(argv[3]));
    }
    if (argc >= 5 && argc <= 7 && !strcmp(argv[1], "connect")) {
        return connect_many(argv[2], atoi(argv[3]), atoi(argv[4]),
                            argc >= 6 ? argv[5] : NULL,
                            argc == 7 && !strcmp(argv[6], "raw"));
    }
    fprintf(stderr, "usage: vr-connect serve ADDR PORT | "
            "connect ADDR PORT COUNT [SRC [raw]]\n");
    return 2;
}
