/* probe_hold.c - ovl-probe hold: idle links and chains held open at a relay.
 *
 *   ovl-probe hold HOST PORT RELAY_ID BS_HOST BS_PORT BS_ID [--links N]
 *                  [--chains M] [--steps S] [--timeout-ms T]
 *
 * What a relay holds per idle link and per idle chain is read off its
 * memory while this holds them (tools/bench perf). In S steps it opens
 * links to the relay at HOST:PORT (N in all, each under a fresh identity)
 * and one-hop chains through it on the first link (M in all, the relay
 * their exit; its onion key is looked up at the bootstrap); after each step
 * it prints "step K links L chains C" and waits for a line on stdin before
 * the next. Meanwhile every link answers the relay's heartbeat PINGs, so
 * nothing is closed as dead, and carries nothing else. It exits 0 when
 * stdin closes after the last step, 1 when a link or chain fails (each
 * operation bounded by --timeout-ms).
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "chain/onion.h"
#include "dir/desc.h"
#include "lib/clock.h"
#include "probe.h"

#define HOLD_MAX_LINKS    4096
#define HOLD_LIFETIME_S   3600
#define HOLD_CHAIN_ID_TOP UINT32_C(0x80000000) /* we dial: our IDs have the top bit */

struct hold {
    struct probe *links;
    unsigned n;
    struct pollfd *pfd; /* [0]: stdin, [1 + i]: link i */
};

/* Answer what link p sent: a PING gets its PONG, the rest is dropped. */
static int hold_serve(struct probe *p)
{
    struct cell c;
    int rc;

    p->deadline = clock_now_ms() + p->timeout_ms;
    rc = recv_cell(p, &c);
    if (rc == 0 && c.cmd == CELL_PING && c.chain_id == 0)
        rc = send_chain_cell(p, 0, CELL_PONG, c.payload, c.len);
    return rc;
}

/* Serve the links until a line or the end of stdin: 1 for a line, 0 at
 * the end, negative when a link fails. */
static int hold_wait(struct hold *h)
{
    char line[64];

    for (;;) {
        int rc = poll(h->pfd, 1 + h->n, -1);

        if (rc < 0 && errno == EINTR)
            continue;
        if (rc < 0)
            return -errno;
        for (unsigned i = 0; i < h->n; i++)
            if (h->pfd[1 + i].revents && (rc = hold_serve(&h->links[i])) != 0)
                return rc;
        if (h->pfd[0].revents) {
            ssize_t got = read(0, line, sizeof(line));

            return got > 0 ? 1 : 0;
        }
    }
}

/* Open link i, under a fresh identity. */
static int hold_link(struct hold *h, const struct probe *p, unsigned i)
{
    struct probe *l = &h->links[i];
    int rc;

    *l = *p;
    l->fd = -1;
    l->deadline = clock_now_ms() + p->timeout_ms;
    rc = ovl_identity_generate(&l->id);
    if (rc == 0)
        rc = probe_open(l, p->host, p->port, p->peer_pk);
    if (rc != 0)
        return rc;
    h->n = i + 1;
    h->pfd[1 + i] = (struct pollfd){.fd = l->fd, .events = POLLIN};
    return 0;
}

/* Links and chains up to what step k of s asks. */
static int hold_step(struct hold *h, const struct probe *p, const struct desc *d, uint64_t k,
                     uint64_t *chains)
{
    unsigned links = (unsigned)(p->links * k / p->steps);
    uint64_t want = p->flood_chains * k / p->steps;
    int rc = 0;

    if (want > 0 && links == 0)
        links = 1; /* chains need a link */
    while (rc == 0 && h->n < links)
        rc = hold_link(h, p, h->n);
    while (rc == 0 && *chains < want) {
        struct onion_keys keys;

        memset(&keys, 0, sizeof(keys));
        h->links[0].deadline = clock_now_ms() + p->timeout_ms;
        rc = open_chain(&h->links[0], d, HOLD_CHAIN_ID_TOP | (uint32_t)(*chains + 1),
                        HOLD_LIFETIME_S, &keys);
        onion_keys_wipe(&keys); /* the relay keeps its half; we send nothing */
        if (rc == 0)
            (*chains)++;
    }
    return rc;
}

/* hold: open, report and wait, step by step; then wait for stdin's end. */
int mode_hold(struct probe *p)
{
    struct hold h = {0};
    struct desc d;
    uint64_t chains = 0;
    int rc = 0, status = 1;

    if (p->links > HOLD_MAX_LINKS || p->flood_chains >= HOLD_CHAIN_ID_TOP ||
        p->steps > p->links + p->flood_chains + 1) {
        printf("hold: at most %d links, and no more steps than links and chains\n", HOLD_MAX_LINKS);
        return 1;
    }
    h.links = calloc(p->links + 1, sizeof(*h.links));
    h.pfd = calloc(p->links + 2, sizeof(*h.pfd));
    if (!h.links || !h.pfd)
        goto done;
    h.pfd[0] = (struct pollfd){.fd = 0, .events = POLLIN};
    if (p->flood_chains > 0) {
        struct probe bs = *p;

        bs.fd = -1;
        bs.deadline = clock_now_ms() + p->timeout_ms;
        rc = lookup_relay(&bs, p->peer_pk, &d);
        probe_close(&bs);
        if (rc != 0)
            goto done;
    }
    for (uint64_t k = 1; k <= p->steps; k++) {
        if ((rc = hold_step(&h, p, &d, k, &chains)) != 0)
            break;
        printf("step %llu links %u chains %llu\n", (unsigned long long)k, h.n,
               (unsigned long long)chains);
        fflush(stdout);
        if ((rc = hold_wait(&h)) <= 0)
            break;
    }
    if (rc == 1)
        while ((rc = hold_wait(&h)) == 1)
            ; /* lines past the last step change nothing */
    if (rc == 0)
        status = 0;
    else
        printf("hold failed: %s\n", ovl_strerror(rc));
done:
    for (unsigned i = 0; h.links && i < h.n; i++) {
        probe_close(&h.links[i]);
        ovl_identity_wipe(&h.links[i].id);
    }
    free(h.links);
    free(h.pfd);
    return status;
}
