/* udp-echo.c: a UDP echo service for the test guest, so that tests can
 * check that a UDP port-forwarding rule carries datagrams both ways:
 * every datagram to port PORT is answered with "<hostname> <payload>".
 * Built static into the guest image (busybox's nc has no UDP mode). */
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int
main(int argc, char **argv)
{
    struct sockaddr_in sa;
    int fd = socket(AF_INET, SOCK_DGRAM, 0);

    if (argc != 2 || fd < 0) {
        fprintf(stderr, "usage: udp-echo PORT\n");
        return 2;
    }
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((unsigned short) atoi(argv[1]));
    if (bind(fd, (struct sockaddr *) &sa, sizeof sa) < 0) {
        perror("udp-echo: bind");
        return 1;
    }
    for (;;) {
        char in[1500];
        char out[1800];
        char host[256] = "";
        struct sockaddr_in from;
        socklen_t len = sizeof from;
        ssize_t n = recvfrom(fd, in, sizeof in - 1, 0,
                             (struct sockaddr *) &from, &len);
        int m;

        if (n < 0) {
            continue;
        }
        in[n] = '\0';
        gethostname(host, sizeof host - 1);
        m = snprintf(out, sizeof out, "%s %s", host, in);
        sendto(fd, out, (size_t) (m < (int) sizeof out ? m : (int) sizeof out
                                  - 1), 0, (struct sockaddr *) &from, len);
    }
}
