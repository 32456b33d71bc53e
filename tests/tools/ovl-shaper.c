/* ovl-shaper.c - one-way delay and loss for the packets of network namespaces.
 *
 *   ovl-shaper [--delay-us N] [--loss PCT] [--seed N] [--queue NUM] [--maxlen N]
 *              NETNS_FILE...
 *
 * The kernel of the machine this was written on has no sch_netem, so
 * tools/ovl-testnet's namespace mode sends every packet a node receives
 * from another node to NFQUEUE number NUM of that node's namespace (an
 * iptables rule in its PREROUTING chain), and this program gives the
 * verdicts: it enters each namespace named on the command line (a file
 * such as /run/netns/NAME), binds that namespace's queue, and returns. It
 * then holds each packet --delay-us microseconds after it read it and
 * accepts it, except a share --loss of them (percent, decided per packet
 * by a RNG seeded with --seed, so a run repeats), which it drops at once.
 *
 * Why these choices: the queue copies only the packet's metadata (the id),
 * so a packet costs a small netlink message however large it is; with
 * --loss 0 the queue also takes GSO packets whole (NFQA_CFG_F_GSO), so
 * bulk TCP costs one message per 64 KB, while with loss the kernel cuts
 * them to MTU-sized packets first and each one is lost on its own. Every
 * packet waits the same time, so packets leave each queue in the order
 * they came: a FIFO ring per queue is the timer wheel, and one batch
 * verdict (every id up to the last one due) releases all that are due.
 * Delaying at the receiver, not at the sender, means a held packet no
 * longer counts against the sending socket's memory (veth orphans it),
 * so TCP's small-queue limits do not cap a flow by the delay.
 *
 * Fail-open is off and the queue is long (--maxlen, default 200000): a
 * packet is dropped only when the queue is full. SIGTERM or SIGINT accept
 * every packet still held and exit 0; the counts go to stderr. It prints
 * "ready" on stdout once every queue is bound, so the caller can wait.
 * Exit status: 0, 1 on an error (said on stderr), 2 for a usage error.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/netfilter.h>
#include <libnetfilter_queue/libnetfilter_queue.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define SHAPER_MAX_NS     4096
#define SHAPER_RCVBUF     (64 * 1024 * 1024)
#define SHAPER_READS      256 /* messages read from one queue per turn */
#define SHAPER_BUF        (64 * 1024)
#define SHAPER_DEF_MAXLEN 200000u
#define SHAPER_RING_INIT  1024u
#define SHAPER_LOSS_SCALE 1000000u /* loss in millionths */

struct shaper;

struct held {
    uint32_t id;
    uint64_t due_ns;
};

struct queue {
    struct shaper *s;
    const char *ns;
    struct nfq_handle *h;
    struct nfq_q_handle *qh;
    int fd;
    struct held *ring; /* FIFO: packets wait in arrival order */
    size_t cap, head, len;
    uint64_t seen, dropped, accepted, overruns;
};

struct shaper {
    uint64_t delay_ns;
    uint32_t loss_ppm;
    uint64_t rng;
    uint32_t maxlen;
    uint16_t qnum;
    struct queue *q;
    size_t nq;
    uint64_t now_ns; /* when the current batch of reads began */
};

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* splitmix64: small, seedable, good enough to pick packets to drop. */
static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

static int ring_push(struct queue *q, uint32_t id, uint64_t due, uint32_t maxlen)
{
    if (q->len == q->cap) {
        size_t ncap = q->cap ? 2 * q->cap : SHAPER_RING_INIT;
        if (ncap > (size_t)maxlen + 1)
            ncap = (size_t)maxlen + 1;
        if (ncap <= q->cap)
            return -1;
        struct held *n = malloc(ncap * sizeof(*n));
        if (n == NULL)
            return -1;
        for (size_t i = 0; i < q->len; i++)
            n[i] = q->ring[(q->head + i) % q->cap];
        free(q->ring);
        q->ring = n;
        q->cap = ncap;
        q->head = 0;
    }
    q->ring[(q->head + q->len) % q->cap] = (struct held){id, due};
    q->len++;
    return 0;
}

static int on_packet(struct nfq_q_handle *qh, struct nfgenmsg *msg, struct nfq_data *nfa,
                     void *data)
{
    struct queue *q = data;
    struct shaper *s = q->s;
    (void)msg;
    struct nfqnl_msg_packet_hdr *ph = nfq_get_msg_packet_hdr(nfa);
    if (ph == NULL)
        return 0;
    uint32_t id = ntohl(ph->packet_id);
    q->seen++;
    if (s->loss_ppm && rng_next(&s->rng) % SHAPER_LOSS_SCALE < s->loss_ppm) {
        q->dropped++;
        return nfq_set_verdict(qh, id, NF_DROP, 0, NULL) < 0 ? -1 : 0;
    }
    if (s->delay_ns == 0 || ring_push(q, id, s->now_ns + s->delay_ns, s->maxlen) < 0) {
        q->accepted++;
        return nfq_set_verdict(qh, id, NF_ACCEPT, 0, NULL) < 0 ? -1 : 0;
    }
    return 0;
}

/* Accept every held packet of q due by t (all of them with t UINT64_MAX). */
static void release_due(struct queue *q, uint64_t t)
{
    size_t n = 0;
    while (n < q->len && q->ring[(q->head + n) % q->cap].due_ns <= t)
        n++;
    if (n == 0)
        return;
    uint32_t last = q->ring[(q->head + n - 1) % q->cap].id;
    if (nfq_set_verdict_batch(q->qh, last, NF_ACCEPT) < 0)
        fprintf(stderr, "ovl-shaper: %s: batch verdict: %s\n", q->ns, strerror(errno));
    q->head = (q->head + n) % q->cap;
    q->len -= n;
    q->accepted += n;
}

static int read_queue(struct shaper *s, struct queue *q)
{
    static char buf[SHAPER_BUF] __attribute__((aligned(8)));
    for (int i = 0; i < SHAPER_READS; i++) {
        ssize_t r = recv(q->fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (r < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
                return 0;
            if (errno == ENOBUFS) { /* the socket overran: those packets stay queued */
                q->overruns++;
                continue;
            }
            fprintf(stderr, "ovl-shaper: %s: recv: %s\n", q->ns, strerror(errno));
            return -1;
        }
        s->now_ns = now_ns();
        nfq_handle_packet(q->h, buf, (int)r);
    }
    return 0;
}

/* Enter the namespace of file ns, bind queue s->qnum there, and come back to
 * the namespace of fd home. */
static int bind_queue(struct shaper *s, struct queue *q, int home)
{
    int fd = open(q->ns, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || setns(fd, CLONE_NEWNET) < 0) {
        fprintf(stderr, "ovl-shaper: %s: %s\n", q->ns, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    close(fd);
    int rc = -1;
    q->h = nfq_open();
    if (q->h == NULL)
        goto out;
    q->qh = nfq_create_queue(q->h, s->qnum, on_packet, q);
    if (q->qh == NULL)
        goto out;
    uint32_t flags = s->loss_ppm ? 0 : NFQA_CFG_F_GSO;
    if (nfq_set_mode(q->qh, NFQNL_COPY_META, 0) < 0 || nfq_set_queue_maxlen(q->qh, s->maxlen) < 0 ||
        nfq_set_queue_flags(q->qh, NFQA_CFG_F_GSO | NFQA_CFG_F_FAIL_OPEN, flags) < 0)
        goto out;
    q->fd = nfq_fd(q->h);
    int size = SHAPER_RCVBUF;
    if (setsockopt(q->fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)) < 0)
        setsockopt(q->fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
    rc = 0;
out:
    if (rc < 0)
        fprintf(stderr, "ovl-shaper: %s: binding queue %u: %s\n", q->ns, s->qnum, strerror(errno));
    if (setns(home, CLONE_NEWNET) < 0) {
        fprintf(stderr, "ovl-shaper: back to our namespace: %s\n", strerror(errno));
        rc = -1;
    }
    return rc;
}

static int next_wait(const struct shaper *s, struct timespec *ts)
{
    uint64_t first = UINT64_MAX;
    for (size_t i = 0; i < s->nq; i++)
        if (s->q[i].len && s->q[i].ring[s->q[i].head].due_ns < first)
            first = s->q[i].ring[s->q[i].head].due_ns;
    if (first == UINT64_MAX)
        return 0;
    uint64_t t = now_ns();
    uint64_t d = first > t ? first - t : 0;
    ts->tv_sec = (time_t)(d / 1000000000u);
    ts->tv_nsec = (long)(d % 1000000000u);
    return 1;
}

static int run(struct shaper *s)
{
    struct pollfd *pfd = calloc(s->nq, sizeof(*pfd));
    if (pfd == NULL)
        return -1;
    for (size_t i = 0; i < s->nq; i++)
        pfd[i] = (struct pollfd){.fd = s->q[i].fd, .events = POLLIN};
    int rc = 0;
    while (!stop_flag) {
        struct timespec ts;
        int timed = next_wait(s, &ts);
        int n = ppoll(pfd, s->nq, timed ? &ts : NULL, NULL);
        if (n < 0 && errno != EINTR) {
            rc = -1;
            break;
        }
        for (size_t i = 0; n > 0 && i < s->nq; i++)
            if (pfd[i].revents && read_queue(s, &s->q[i]) < 0)
                rc = -1;
        uint64_t t = now_ns();
        for (size_t i = 0; i < s->nq; i++)
            release_due(&s->q[i], t);
        if (rc < 0)
            break;
    }
    free(pfd);
    return rc;
}

static int usage(void)
{
    fprintf(stderr, "usage: ovl-shaper [--delay-us N] [--loss PCT] [--seed N] [--queue NUM] "
                    "[--maxlen N] NETNS_FILE...\n");
    return 2;
}

static int parse(struct shaper *s, int argc, char **argv, int *first)
{
    int i = 1;
    for (; i < argc && strncmp(argv[i], "--", 2) == 0; i += 2) {
        if (i + 1 >= argc)
            return -1;
        char *end;
        const char *k = argv[i], *v = argv[i + 1];
        errno = 0;
        if (strcmp(k, "--loss") == 0) {
            double pct = strtod(v, &end);
            if (*end || pct < 0 || pct > 100)
                return -1;
            s->loss_ppm = (uint32_t)(pct * (SHAPER_LOSS_SCALE / 100) + 0.5);
            continue;
        }
        unsigned long long x = strtoull(v, &end, 10);
        if (*end || errno || *v == '-')
            return -1;
        if (strcmp(k, "--delay-us") == 0 && x <= 60000000u)
            s->delay_ns = x * 1000u;
        else if (strcmp(k, "--seed") == 0)
            s->rng = x;
        else if (strcmp(k, "--queue") == 0 && x <= 65535)
            s->qnum = (uint16_t)x;
        else if (strcmp(k, "--maxlen") == 0 && x >= 1 && x <= 10000000u)
            s->maxlen = (uint32_t)x;
        else
            return -1;
    }
    *first = i;
    return i < argc && argc - i <= SHAPER_MAX_NS ? 0 : -1;
}

static void finish(struct shaper *s)
{
    for (size_t i = 0; i < s->nq; i++) {
        struct queue *q = &s->q[i];
        if (q->qh != NULL)
            release_due(q, UINT64_MAX);
        fprintf(stderr,
                "ovl-shaper: %s: %" PRIu64 " packets, %" PRIu64 " accepted, %" PRIu64
                " dropped, %" PRIu64 " socket overruns\n",
                q->ns, q->seen, q->accepted, q->dropped, q->overruns);
        if (q->qh != NULL)
            nfq_destroy_queue(q->qh);
        if (q->h != NULL)
            nfq_close(q->h);
        free(q->ring);
    }
    free(s->q);
}

int main(int argc, char **argv)
{
    struct shaper s = {.maxlen = SHAPER_DEF_MAXLEN, .rng = 1};
    int first;
    if (parse(&s, argc, argv, &first) < 0)
        return usage();
    s.nq = (size_t)(argc - first);
    s.q = calloc(s.nq, sizeof(*s.q));
    int home = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
    if (s.q == NULL || home < 0) {
        fprintf(stderr, "ovl-shaper: %s\n", strerror(errno));
        return 1;
    }
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    int rc = 0;
    for (size_t i = 0; i < s.nq && rc == 0; i++) {
        s.q[i].s = &s;
        s.q[i].ns = argv[first + (int)i];
        s.q[i].fd = -1;
        rc = bind_queue(&s, &s.q[i], home);
    }
    close(home);
    if (rc == 0) {
        printf("ready\n");
        fflush(stdout);
        rc = run(&s);
    }
    finish(&s);
    return rc == 0 ? 0 : 1;
}
