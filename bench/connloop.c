/* New-connection loop for bench/nft_bench.py (method of shared/reference/perf.md 2.1).
 *
 *   connloop server ADDR PORT CPU        accept and close, forever
 *   connloop client ADDR PORT SECONDS CPU connect/close (RST) in a loop; prints "ok failed"
 *
 * Pinned to one CPU each, so the client's softirq path (which includes the router's
 * netfilter walk on veth) is what the count measures. IPv4 only.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static void pin(const char *cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(atoi(cpu), &set);
    sched_setaffinity(0, sizeof(set), &set);
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    if (argc < 5) {
        fprintf(stderr, "usage: connloop server ADDR PORT CPU | client ADDR PORT SECONDS CPU\n");
        return 2;
    }
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof(addr));
    addr.sin_family = AF_INET;
    addr.sin_port = htons((unsigned short)atoi(argv[3]));
    if (inet_pton(AF_INET, argv[2], &addr.sin_addr) != 1) {
        fprintf(stderr, "bad address %s\n", argv[2]);
        return 2;
    }
    if (strcmp(argv[1], "server") == 0) {
        pin(argv[4]);
        int s = socket(AF_INET, SOCK_STREAM, 0), one = 1;
        setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(s, (struct sockaddr *)&addr, sizeof(addr)) || listen(s, 4096)) {
            perror("listen");
            return 1;
        }
        printf("ready\n");
        fflush(stdout);
        for (;;) {
            int c = accept(s, NULL, NULL);
            if (c >= 0) close(c);
        }
    }
    if (argc < 6) return 2;
    pin(argv[5]);
    double end = now() + atof(argv[4]);
    long ok = 0, failed = 0;
    struct linger reset = {1, 0};
    struct timeval patience = {1, 0}; /* a dropped SYN fails the connect after 1 s */
    while (now() < end) {
        int s = socket(AF_INET, SOCK_STREAM, 0);
        setsockopt(s, SOL_SOCKET, SO_LINGER, &reset, sizeof(reset));
        setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &patience, sizeof(patience));
        if (connect(s, (struct sockaddr *)&addr, sizeof(addr)) == 0)
            ok++;
        else
            failed++;
        close(s);
    }
    printf("%ld %ld\n", ok, failed);
    return 0;
}
