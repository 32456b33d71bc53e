/* ovl-link.c - one transport connection carrying frames as fast as it
 * takes them, for `tools/bench link`: what a single link gives, without the
 * link handshake, chains or windows above it.
 *
 *   ovl-link server URI                   listen; print what arrives each second
 *   ovl-link client URI SECONDS [QUEUE]   dial; send for SECONDS, print each second
 *
 * URI is tcp://HOST:PORT or quic://HOST:PORT (the transports of src/core,
 * the node's own code). The client queues frames of OVL_FRAME_MAX bytes
 * whenever the transport admits them (QUEUE bytes, by default the node's
 * [link] send_queue) and prints, each second, the megabytes the transport
 * took, and over QUIC what ngtcp2 says of the path (tp_quic_info): the
 * congestion window, the bytes in flight, the smoothed and the least round
 * trip and the packets of the stream declared lost so far. The server
 * prints the megabytes that arrived in each second until it is killed.
 * Exit status: 0, 1 when the connection fails or closes early, 2 for a
 * usage error.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cell.h"
#include "core/transport.h"
#include "lib/log.h"
#include "ovl_config.h"
#if OVL_HAVE_QUIC
#include "core/tp_quic.h"
#endif

struct lk {
    uv_loop_t loop;
    uv_timer_t tick;
    struct tp_env env;
    struct ovl_log log;
    struct transport *t;
    uint64_t bytes, last; /* sent (client) or received (server), and at the last tick */
    unsigned secs, ticks;
    bool client, failed;
    uint8_t frame[OVL_FRAME_MAX];
};

static void lk_pump(struct lk *k)
{
    while (k->t && tp_send(k->t, k->frame, sizeof(k->frame)) == 0)
        k->bytes += sizeof(k->frame);
}

static void lk_connected(struct transport *t)
{
    lk_pump(t->udata);
}

static void lk_frame(struct transport *t, const uint8_t *frame, size_t len)
{
    struct lk *k = t->udata;

    (void)frame;
    k->bytes += len;
}

static void lk_drain(struct transport *t)
{
    struct lk *k = t->udata;

    if (k->client)
        lk_pump(k);
}

static void lk_closed(struct transport *t, int err)
{
    struct lk *k = t->udata;

    fprintf(stderr, "ovl-link: closed: %s\n", ovl_strerror(err));
    if (k->t == t)
        k->t = NULL;
    if (k->client) {
        k->failed = true;
        uv_stop(&k->loop);
    }
}

static const struct tp_cb lk_cb = {
    .connected = lk_connected, .frame = lk_frame, .drain = lk_drain, .closed = lk_closed};

static void lk_accept(struct tp_listener *l, struct transport *t)
{
    struct lk *k = l->udata;

    tp_set_cb(t, &lk_cb, k);
    k->t = t;
}

static const struct tp_listen_cb lk_lcb = {.accept = lk_accept};

/* One line a second: the rate, and over QUIC the path as ngtcp2 sees it. */
static void lk_tick(uv_timer_t *h)
{
    struct lk *k = h->data;
    double mb = (double)(k->bytes - k->last) / 1e6;

    k->last = k->bytes;
    k->ticks++;
    printf("t=%u %s %.2f MB/s", k->ticks, k->client ? "sent" : "recv", mb);
#if OVL_HAVE_QUIC
    struct tp_quic_info qi;

    if (k->t && tp_quic_info(k->t, &qi) == 0)
        printf(" cwnd %" PRIu64 " in_flight %" PRIu64 " srtt %.1f ms min_rtt %.1f ms lost %" PRIu64,
               qi.cwnd, qi.in_flight, (double)qi.srtt_us / 1000, (double)qi.min_rtt_us / 1000,
               qi.lost);
#endif
    printf("\n");
    fflush(stdout);
    if (k->client && k->ticks >= k->secs) {
        printf("sent %.2f MB/s over %u s\n", (double)k->bytes / 1e6 / k->secs, k->secs);
        uv_stop(&k->loop);
    }
}

static int usage(void)
{
    fprintf(stderr, "usage: ovl-link server URI | ovl-link client URI SECONDS [QUEUE]\n");
    return 2;
}

int main(int argc, char **argv)
{
    static struct lk k;
    struct tp_listener *l = NULL;
    int rc;

    if (argc < 3 || (strcmp(argv[1], "server") && strcmp(argv[1], "client")))
        return usage();
    k.client = strcmp(argv[1], "client") == 0;
    if (k.client && (argc < 4 || (k.secs = (unsigned)atoi(argv[3])) == 0))
        return usage();
    uv_loop_init(&k.loop);
    log_init(&k.log, "ovl-link", OVL_LOG_WARN, false);
    k.env.loop = &k.loop;
    k.env.log = &k.log;
    k.env.sendq_max = argc > 4 ? (size_t)strtoull(argv[4], NULL, 10) : 1048576;
    uv_timer_init(&k.loop, &k.tick);
    k.tick.data = &k;
    rc = k.client ? tp_dial(&k.env, argv[2], &lk_cb, &k, &k.t)
                  : tp_listen(&k.env, argv[2], &lk_lcb, &k, &l);
    if (rc) {
        fprintf(stderr, "ovl-link: %s: %s\n", argv[2], ovl_strerror(rc));
        return 1;
    }
    if (!k.client)
        printf("listening\n");
    fflush(stdout);
    uv_timer_start(&k.tick, lk_tick, 1000, 1000);
    uv_run(&k.loop, UV_RUN_DEFAULT);
    return k.failed ? 1 : 0;
}
