/* test_stream.c - streams over a lossy, bounded, breakable path.
 *
 * Two stream ends talk through an in-process path: a bounded frame queue
 * each way, delivered from an idle callback (never inside send), which
 * can lose every k-th frame, lose a frame once, or go down and come back
 * (as a chain does when it is repaired). Each end writes a known byte
 * pattern and checks every byte it reads, in order.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "chain/stream.h"
#include "lib/bytes.h"
#include "lib/clock.h"
#include "check_main.h"

#define QCAP 64

struct frame {
    uint16_t len;
    uint8_t b[STREAM_FRAME_MAX];
};

struct net;

struct end {
    struct net *net;
    int side; /* 0 opens, 1 is the far end */
    struct stream *s;
    uint64_t to_send, sent, got;
    bool stalled;              /* the application does not read */
    bool split;                /* it takes what came in two steps, the last 100 bytes apart */
    uint32_t snd_cap, rcv_cap; /* the largest ring sizes seen */
    bool closed, opened, eof, want_pump;
    int reason, bad;
};

struct net {
    uv_loop_t loop;
    uv_idle_t idle;
    struct end e[2];
    struct frame q[2][QCAP]; /* q[d]: frames toward side d */
    unsigned head[2], n[2];
    unsigned lose_every, lose_nth[2]; /* lose_nth: lose that frame (1-based) once */
    uint64_t rng;                     /* lose_every's draws: a fixed sequence */
    unsigned sent_dir[2];
    bool down, take, refuse, lose_opened;
    bool block[2];                /* frames toward side d are refused (OVL_EAGAIN), for good */
    uint64_t rate;                /* bytes per second toward side 1 (0: as fast as the loop) */
    uint64_t tokens, tok_us;      /* what rate lets through now, and since when */
    struct stream_pool *far_pool; /* the far end's stream is charged to it */
};

static void end_caps(struct end *e)
{
    if (e->s && e->s->snd.cap > e->snd_cap)
        e->snd_cap = e->s->snd.cap;
    if (e->s && e->s->rcv.cap > e->rcv_cap)
        e->rcv_cap = e->s->rcv.cap;
}

static uint8_t pat(int side, uint64_t i)
{
    return (uint8_t)(i * 31u + (unsigned)side * 7u + (i >> 9));
}

static void end_write(struct end *e)
{
    uint8_t *p;
    size_t n;

    while (e->s && e->sent < e->to_send && (n = stream_wbuf(e->s, &p)) > 0) {
        if (n > e->to_send - e->sent)
            n = (size_t)(e->to_send - e->sent);
        for (size_t i = 0; i < n; i++)
            p[i] = pat(e->side, e->sent + i);
        e->sent += n;
        stream_wrote(e->s, n);
    }
    if (e->s && e->sent == e->to_send)
        stream_shutdown(e->s);
    end_caps(e);
}

static void end_read(struct end *e)
{
    const uint8_t *p;
    size_t n;

    while (e->s && !e->stalled && (n = stream_rbuf(e->s, &p)) > 0) {
        for (size_t i = 0; i < n; i++)
            if (p[i] != pat(!e->side, e->got + i))
                e->bad++;
        e->got += n;
        if (e->split && n > 100) {
            /* As a socket write that completes later: most of it first,
             * the rest at once after. */
            stream_consumed(e->s, n - 100);
            if (!e->s)
                break;
            n = 100;
        }
        stream_consumed(e->s, n);
    }
    if (e->s && stream_eof(e->s))
        e->eof = true;
    end_caps(e);
}

/* The next draw of a fixed pseudo-random sequence (a 64-bit LCG's high
 * bits): one frame in lose_every is lost, but never with a period. A
 * strict "every k-th frame" can line up with go-back-N: when a round of
 * resent frames and the acks it draws is k frames long, the same frame of
 * every round is lost, forever, which no real path does. */
static uint32_t net_draw(struct net *net)
{
    net->rng = net->rng * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(net->rng >> 33);
}

static int path_send(struct stream *s, const uint8_t *f, size_t len)
{
    struct end *e = s->ctx;
    struct net *net = e->net;
    int d = !e->side;
    struct frame *fr;

    ck_assert_uint_le(len, STREAM_FRAME_MAX);
    ck_assert_uint_ge(len, STREAM_HDR);
    if (net->down)
        return OVL_ECLOSED;
    if (net->block[d])
        return OVL_EAGAIN;
    if (net->n[d] == QCAP) {
        e->want_pump = true;
        return OVL_EAGAIN;
    }
    net->sent_dir[d]++;
    if (net->lose_every && net_draw(net) % net->lose_every == 0)
        return 0; /* lost on the way */
    if (net->lose_nth[d] && net->sent_dir[d] == net->lose_nth[d])
        return 0;
    if (net->lose_opened && f[0] == SF_OPENED) {
        net->lose_opened = false;
        return 0;
    }
    fr = &net->q[d][(net->head[d] + net->n[d]) % QCAP];
    fr->len = (uint16_t)len;
    memcpy(fr->b, f, len);
    net->n[d]++;
    uv_idle_start(&net->idle, NULL); /* set again by deliver below */
    return 0;
}

static void end_event(struct stream *s, enum stream_event ev)
{
    struct end *e = s->ctx;

    switch (ev) {
    case SE_OPENED:
        e->opened = true;
        break;
    case SE_READABLE:
        end_read(e);
        break;
    case SE_WRITABLE:
        end_write(e);
        break;
    case SE_CLOSED:
        e->closed = true;
        e->reason = s->reason;
        e->eof |= stream_eof(s);
        stream_free(s);
        e->s = NULL;
        break;
    }
}

static const struct stream_ops path_ops = {path_send, end_event};

/* The far end hears of a stream from its first frame, as an owner would. */
static void far_open(struct net *net, const struct frame *fr)
{
    struct end *e = &net->e[1];
    const uint8_t *sid, *args;
    size_t alen;
    uint8_t type;

    if (stream_frame_peek(fr->b, fr->len, &type, &sid, &args, &alen) != 0 || type != SF_OPEN)
        return;
    ck_assert_uint_eq(alen, 3);
    ck_assert(memcmp(args, "dst", 3) == 0);
    ck_assert_int_eq(
        stream_new(&net->loop, &path_ops, e, sid, NULL, 0, STREAM_FRAME_MAX, 60000, &e->s), 0);
    stream_set_pool(e->s, net->far_pool);
    if (net->refuse) {
        stream_reset(e->s, SR_REFUSED);
        return;
    }
    if (net->take) {
        stream_take(e->s);
        end_write(e);
    }
}

/* With a rate, true when a frame of len bytes may go toward side 1 now
 * (its tokens taken); 16 KiB may go at once. */
static bool net_paced(struct net *net, size_t len)
{
    uint64_t now = clock_now_us();

    if (!net->rate)
        return true;
    net->tokens += (now - net->tok_us) * net->rate / 1000000;
    net->tok_us = now;
    if (net->tokens > 16384)
        net->tokens = 16384;
    if (net->tokens < len)
        return false;
    net->tokens -= len;
    return true;
}

static void deliver_cb(uv_idle_t *h)
{
    struct net *net = h->data;
    bool any = false;

    for (int d = 0; d < 2; d++) {
        for (unsigned k = 0; k < 8 && net->n[d]; k++) {
            struct frame fr = net->q[d][net->head[d]];
            struct end *e = &net->e[d];

            any = true; /* the idle stays on while frames wait for the rate */
            if (d == 1 && !net_paced(net, fr.len))
                break;
            net->head[d] = (net->head[d] + 1) % QCAP;
            net->n[d]--;
            if (!e->s && d == 1 && !e->closed)
                far_open(net, &fr);
            else if (e->s)
                ck_assert_int_eq(stream_input(e->s, fr.b, fr.len), 0);
        }
        if (net->n[d] < QCAP / 2 && net->e[!d].want_pump && net->e[!d].s) {
            net->e[!d].want_pump = false;
            stream_pump(net->e[!d].s);
        }
    }
    if (!any)
        uv_idle_stop(h);
}

static void net_init(struct net *net, uint64_t a_sends, uint64_t b_sends)
{
    memset(net, 0, sizeof(*net));
    net->rng = 7; /* the same draws in every run */
    ck_assert_int_eq(uv_loop_init(&net->loop), 0);
    uv_idle_init(&net->loop, &net->idle);
    net->idle.data = net;
    net->take = true;
    for (int i = 0; i < 2; i++) {
        net->e[i].net = net;
        net->e[i].side = i;
    }
    net->e[0].to_send = a_sends;
    net->e[1].to_send = b_sends;
}

static void net_open(struct net *net)
{
    static const uint8_t sid[STREAM_SID] = {1, 2, 3, 4, 5, 6, 7, 8};

    ck_assert_int_eq(stream_new(&net->loop, &path_ops, &net->e[0], sid, (const uint8_t *)"dst", 3,
                                STREAM_FRAME_MAX, 60000, &net->e[0].s),
                     0);
    end_write(&net->e[0]);
    stream_pump(net->e[0].s);
}

static void stop_cb(uv_timer_t *t)
{
    *(bool *)t->data = true;
}

/* Run the loop until done(net) or 100 s: a deadline for a test gone wrong, never reached by one
 * that works, however busy the machine (Check gives each test 120 s). */
static bool net_run(struct net *net, bool (*done)(struct net *))
{
    uv_timer_t t;
    bool late = false;

    uv_timer_init(&net->loop, &t);
    t.data = &late;
    uv_timer_start(&t, stop_cb, 100000, 0);
    uv_idle_start(&net->idle, deliver_cb);
    while (!late && !done(net)) {
        uv_idle_start(&net->idle, deliver_cb);
        for (int i = 0; i < 2; i++)
            if (net->e[i].s && net->e[i].sent < net->e[i].to_send)
                end_write(&net->e[i]);
        uv_run(&net->loop, UV_RUN_ONCE);
    }
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&net->loop, UV_RUN_NOWAIT);
    if (!done(net))
        for (int i = 0; i < 2; i++) {
            struct stream *s = net->e[i].s;

            fprintf(stderr, "end %d: sent %llu got %llu closed %d reason %d", i,
                    (unsigned long long)net->e[i].sent, (unsigned long long)net->e[i].got,
                    net->e[i].closed, net->e[i].reason);
            if (s)
                fprintf(stderr,
                        " flags %#x una %llu nxt %llu max %llu lim %llu snd %llu+%u "
                        "rcv %llu+%u",
                        s->flags, (unsigned long long)s->una, (unsigned long long)s->nxt,
                        (unsigned long long)s->max, (unsigned long long)s->peer_lim,
                        (unsigned long long)s->snd.base, s->snd.len,
                        (unsigned long long)s->rcv.base, s->rcv.len);
            fprintf(stderr, "\n");
        }
    return done(net);
}

static void net_free(struct net *net)
{
    for (int i = 0; i < 2; i++)
        stream_free(net->e[i].s);
    uv_close((uv_handle_t *)&net->idle, NULL);
    while (uv_run(&net->loop, UV_RUN_NOWAIT))
        ;
    ck_assert_int_eq(uv_loop_close(&net->loop), 0);
}

static bool both_closed(struct net *net)
{
    return net->e[0].closed && net->e[1].closed;
}

static void check_clean(struct net *net)
{
    for (int i = 0; i < 2; i++) {
        ck_assert_int_eq(net->e[i].bad, 0);
        ck_assert_uint_eq(net->e[i].got, net->e[!i].to_send);
        ck_assert_int_eq(net->e[i].reason, SR_DONE);
        ck_assert(net->e[i].eof);
    }
    ck_assert(net->e[0].opened);
}

/* 1 MB each way, half-closed by each side when it is done writing. */
START_TEST(both_ways)
{
    struct net net;

    net_init(&net, 1u << 20, (1u << 20) + 12345);
    net_open(&net);
    ck_assert(net_run(&net, both_closed));
    check_clean(&net);
    net_free(&net);
}
END_TEST

/* One frame in 7 is lost (data, acks, the open alike): go-back-N on gaps
 * and on the timer gets every byte through once, in order. */
START_TEST(lossy_path)
{
    struct net net;

    net_init(&net, 150000, 100000);
    net.lose_every = 7;
    net_open(&net);
    ck_assert(net_run(&net, both_closed));
    check_clean(&net);
    net_free(&net);
}
END_TEST

/* The open frame itself is lost: it goes again on the timer. The
 * OPENED frame is lost: data from the far end settles the open. */
START_TEST(lost_open_and_opened)
{
    struct net net;

    net_init(&net, 5000, 70000);
    net.lose_nth[1] = 1;
    net.lose_opened = true;
    net_open(&net);
    ck_assert(net_run(&net, both_closed));
    check_clean(&net);
    ck_assert_uint_ge(net.sent_dir[1], 2);
    net_free(&net);
}
END_TEST

static bool half_sent(struct net *net)
{
    return net->e[1].got >= 100000;
}

/* The path breaks mid-transfer (a chain lost under the stream): frames
 * sent meanwhile are gone; when the owner says the path changed, the
 * stream sends again from its last ack and nothing is lost or repeated. */
START_TEST(path_breaks)
{
    struct net net;

    net_init(&net, 400000, 1000);
    net_open(&net);
    ck_assert(net_run(&net, half_sent));
    net.down = true;
    for (int i = 0; i < 50; i++)
        uv_run(&net.loop, UV_RUN_NOWAIT);
    net.n[0] = net.n[1] = 0; /* what was in flight is lost with the chain */
    net.down = false;
    stream_rewind(net.e[0].s);
    stream_rewind(net.e[1].s);
    ck_assert(net_run(&net, both_closed));
    check_clean(&net);
    net_free(&net);
}
END_TEST

static bool sender_blocked(struct net *net)
{
    uint8_t *p;

    return net->e[0].s && net->e[1].got == 0 && stream_wbuf(net->e[0].s, &p) == 0 && net->n[1] == 0;
}

/* A receiver that does not read: the sender stops at the window (its ring
 * full, nothing more in flight), the receiver holds at most one window;
 * once it reads, everything arrives. */
START_TEST(flow_control)
{
    struct net net;

    net_init(&net, 1u << 20, 0);
    net.e[1].stalled = true;
    net_open(&net);
    ck_assert(net_run(&net, sender_blocked));
    ck_assert(net.e[1].s != NULL);
    ck_assert_uint_le(net.e[1].s->rcv.len, STREAM_WINDOW);
    ck_assert_uint_le(net.e[0].s->max, 2 * STREAM_WINDOW + 1);
    ck_assert_uint_le(net.e[0].sent, 2 * STREAM_WINDOW);
    /* A reader that never read never opened its window. */
    ck_assert_uint_eq(net.e[1].s->rcv.cap, STREAM_WINDOW);
    ck_assert_uint_eq(net.e[0].s->snd.cap, STREAM_WINDOW);
    ck_assert_uint_eq(stream_grown_total(), 0);
    net.e[1].stalled = false;
    end_read(&net.e[1]);
    ck_assert(net_run(&net, both_closed));
    check_clean(&net);
    net_free(&net);
}
END_TEST

/* A reader that keeps up with a long transfer: its window doubles after
 * each window it consumed until at least STREAM_WINDOW_MAX, the sender's ring
 * follows the credit, every byte arrives in order, and the growth is
 * given back with the streams. */
START_TEST(window_grows)
{
    struct net net;

    net_init(&net, 1u << 20, 1000);
    net_open(&net);
    ck_assert(net_run(&net, both_closed));
    check_clean(&net);
    /* Past STREAM_WINDOW_MAX only the round trip opens it further: the
     * loop's turns, on a busy machine, may. A sender without a pool
     * (no round trips of its own) stops at STREAM_WINDOW_MAX. */
    ck_assert_uint_ge(net.e[1].rcv_cap, STREAM_WINDOW_MAX);
    ck_assert_uint_le(net.e[1].rcv_cap, STREAM_WINDOW_RTT_MAX);
    ck_assert_uint_eq(net.e[0].snd_cap, STREAM_WINDOW_MAX);
    ck_assert_uint_eq(net.e[0].rcv_cap, STREAM_WINDOW); /* 1000 bytes opened nothing */
    ck_assert_uint_eq(stream_grown_total(), 0);
    net_free(&net);
}
END_TEST

/* Past STREAM_WINDOW_MAX a window grows as the round trip asks, measured
 * with at least that much credit out: on a path whose round trip grows with
 * what is in flight (here the path's frame queue, as hops taking turns on
 * one busy host), the round trip of a 64 KiB window says nothing of a
 * 512 KiB one, and a reader that keeps up sees its window grow past it
 * (the sender's ring, with no pool, holds 512 KiB in flight: the window
 * stops at twice that). A reader that takes what came in two steps (a
 * socket's write completing in parts: the ring empty only after the
 * second) still caught up in the round, and its window grows too. */
START_TEST(window_grows_past_max)
{
    for (int split = 0; split < 2; split++) {
        struct net net;

        net_init(&net, 6u << 20, 0);
        net.rate = 10000000; /* 64 KiB take 6.5 ms to come, 512 KiB 52 ms */
        net.tok_us = clock_now_us();
        net.e[1].split = split;
        net_open(&net);
        ck_assert(net_run(&net, both_closed));
        check_clean(&net);
        ck_assert_msg(net.e[1].rcv_cap > STREAM_WINDOW_MAX, "split %d: window %u", split,
                      net.e[1].rcv_cap);
        ck_assert_uint_le(net.e[1].rcv_cap, 8 * STREAM_WINDOW_MAX);
        ck_assert_uint_eq(stream_grown_total(), 0);
        net_free(&net);
    }
}
END_TEST

static bool read_1m(struct net *net)
{
    return net->e[1].got >= (1u << 20);
}

/* Everything the far end was given is acked, and the sender wrote all
 * that the credit lets it write. */
static bool sender_settled(struct net *net)
{
    struct stream *s = net->e[0].s;
    uint8_t *p;

    return s && net->n[0] == 0 && net->n[1] == 0 && s->una == s->peer_lim &&
           stream_wbuf(s, &p) == 0;
}

/* A reader that kept up (its window and the sender's ring grew to
 * STREAM_WINDOW_MAX) and then stops: the sender writes only one window
 * past the credit and gives its ring's growth back, so it holds at most
 * its first two rings; the receiver holds no more than its window. When
 * the reader comes back, everything arrives. */
START_TEST(stalled_gives_back)
{
    struct net net;
    size_t held;

    net_init(&net, 4u << 20, 0);
    net_open(&net);
    ck_assert(net_run(&net, read_1m));
    ck_assert_uint_eq(net.e[0].snd_cap, STREAM_WINDOW_MAX);
    net.e[1].stalled = true;
    ck_assert(net_run(&net, sender_settled));
    ck_assert_uint_le(net.e[0].s->snd.len, STREAM_WINDOW);
    ck_assert_uint_le(net.e[0].s->snd.cap, 2 * STREAM_WINDOW);
    held = stream_held(net.e[0].s);
    ck_assert_uint_le(held, sizeof(struct stream) + 3 * STREAM_WINDOW);
    ck_assert_uint_le(net.e[1].s->rcv.len, net.e[1].s->rcv.cap);
    ck_assert_uint_le(stream_held(net.e[1].s), sizeof(struct stream) + STREAM_WINDOW_RTT_MAX);
    net.e[1].stalled = false;
    end_read(&net.e[1]);
    ck_assert(net_run(&net, both_closed));
    check_clean(&net);
    ck_assert_uint_eq(stream_grown_total(), 0);
    net_free(&net);
}
END_TEST

static bool rcv_full(struct net *net)
{
    return net->e[1].s && net->e[1].s->rcv.len == net->e[1].s->rcv.cap && net->n[1] == 0;
}

/* The far end read everything (the streams then linger 3 s before they
 * close: not waited for). */
static bool read_all(struct net *net)
{
    return net->e[1].got == net->e[0].to_send && net->e[1].eof;
}

/* Many readers that kept up and then stalled, each holding its grown window
 * of 512 KiB unread, spend the process's budget of unread bytes
 * (STREAM_UNREAD_MAX): then a new reader that keeps up stays at its first
 * window, and a stalled one that reads part of what it holds gives its
 * growth back (a window of 512 KiB with 212 KiB still given shrinks to
 * 256 KiB). Everything arrives once they read again, and the budget is
 * free once they are gone. */
START_TEST(unread_budget)
{
    enum { N = STREAM_UNREAD_MAX / (STREAM_WINDOW_MAX - STREAM_WINDOW) + 1 };
    struct net *nets = calloc(N + 1, sizeof(*nets));
    struct net *late = &nets[N];

    ck_assert_ptr_nonnull(nets);
    for (int i = 0; i < N; i++) {
        struct net *net = &nets[i];

        net_init(net, 2u << 20, 0);
        net_open(net);
        ck_assert(net_run(net, read_1m));
        net->e[1].stalled = true;
        ck_assert(net_run(net, rcv_full));
        ck_assert_uint_eq(net->e[1].s->rcv.cap, STREAM_WINDOW_MAX);
    }
    ck_assert_uint_gt(stream_unread_total(), STREAM_UNREAD_MAX);
    net_init(late, 2u << 20, 0);
    net_open(late);
    ck_assert(net_run(late, read_all));
    ck_assert_int_eq(late->e[1].bad, 0);
    ck_assert_uint_eq(late->e[1].rcv_cap, STREAM_WINDOW);
    net_free(late);
    /* The first reads 300 KiB: 212 KiB of its credit are still out. */
    {
        struct end *e = &nets[0].e[1];
        const uint8_t *q;
        uint64_t want = e->got + 300 * 1024;

        while (e->got < want) {
            size_t n = stream_rbuf(e->s, &q);

            if (n > want - e->got)
                n = (size_t)(want - e->got);
            for (size_t k = 0; k < n; k++)
                ck_assert_uint_eq(q[k], pat(0, e->got + k));
            e->got += n;
            stream_consumed(e->s, n);
        }
        ck_assert_uint_eq(e->s->rcv.cap, STREAM_WINDOW_MAX / 2);
    }
    for (int i = 0; i < N; i++) {
        nets[i].e[1].stalled = false;
        end_read(&nets[i].e[1]);
        ck_assert(net_run(&nets[i], read_all));
        ck_assert_int_eq(nets[i].e[1].bad, 0);
        net_free(&nets[i]);
    }
    ck_assert_uint_eq(stream_unread_total(), 0);
    ck_assert_uint_eq(stream_grown_total(), 0);
    free(nets);
}
END_TEST

/* The pool pays for growth: a pool with room for one step lets the window
 * double once; a full one keeps it at its first size. Both give it back. */
START_TEST(window_growth_capped)
{
    static const uint32_t start[] = {STREAM_POOL_GROWN - STREAM_WINDOW, STREAM_POOL_GROWN};
    static const uint32_t want[] = {2 * STREAM_WINDOW, STREAM_WINDOW};

    for (int i = 0; i < 2; i++) {
        struct stream_pool pool = {.grown = start[i]};
        struct net net;

        net_init(&net, 1u << 20, 0);
        net.far_pool = &pool;
        net_open(&net);
        ck_assert(net_run(&net, both_closed));
        check_clean(&net);
        ck_assert_uint_eq(net.e[1].rcv_cap, want[i]);
        ck_assert_uint_eq(net.e[0].snd_cap, want[i]);
        ck_assert_uint_eq(pool.grown, start[i]);
        ck_assert_uint_eq(stream_grown_total(), 0);
        net_free(&net);
    }
}
END_TEST

static bool a_closed(struct net *net)
{
    return net->e[0].closed;
}

/* A far end that refuses: the opener closes with the far end's reason
 * (the SOCKS reply depends on it). */
START_TEST(refused)
{
    struct net net;

    net_init(&net, 100, 0);
    net.refuse = true;
    net_open(&net);
    ck_assert(net_run(&net, a_closed));
    ck_assert_int_eq(net.e[0].reason, SR_REFUSED);
    ck_assert(!net.e[0].opened);
    net_free(&net);
}
END_TEST

/* Bad frames: too short or of an unknown type are refused; data beyond
 * the credit given resets the stream. */
START_TEST(bad_frames)
{
    struct net net;
    uint8_t f[STREAM_FRAME_MAX] = {0};
    const uint8_t *sid, *args;
    size_t alen;
    uint8_t type;

    net_init(&net, 0, 0);
    net_open(&net);
    ck_assert_int_eq(stream_input(net.e[0].s, f, STREAM_HDR - 1), OVL_EPROTO);
    f[0] = 9;
    ck_assert_int_eq(stream_input(net.e[0].s, f, STREAM_HDR), OVL_EPROTO);
    ck_assert_int_eq(stream_frame_peek(f, STREAM_HDR, &type, &sid, &args, &alen), OVL_EPROTO);
    f[0] = SF_OPEN;
    f[STREAM_HDR] = 200; /* args run past the frame */
    ck_assert_int_eq(stream_frame_peek(f, STREAM_HDR + 10, &type, &sid, &args, &alen), OVL_EPROTO);
    ck_assert_int_eq(stream_input(net.e[0].s, f, STREAM_HDR + 10), OVL_EPROTO); /* opener */
    /* In order but more than the window while nobody reads: reset. */
    net.e[0].stalled = true;
    f[0] = SF_DATA;
    f[1] = 0;
    for (uint64_t off = 0; !net.e[0].closed && off < 2 * STREAM_WINDOW; off += 854) {
        for (int k = 0; k < 8; k++)
            f[10 + k] = (uint8_t)(off >> (8 * k));
        ck_assert_int_eq(stream_input(net.e[0].s, f, STREAM_HDR + 854), 0);
        ck_assert_uint_le(off, STREAM_WINDOW);
    }
    ck_assert(net.e[0].closed);
    ck_assert_int_eq(net.e[0].reason, SR_PROTOCOL);
    net_free(&net);
}
END_TEST

/* An ack is owed while the path back stays full: the stream must not spin
 * on its timer (libuv would run it again before any I/O, and the path
 * never drains), so other handles still run: a 1.5 s timer fires. */
START_TEST(blocked_path_does_not_spin)
{
    struct net net;
    uv_timer_t t;
    bool late = false;

    net_init(&net, 3000, 0);
    net.block[0] = true; /* nothing from the far end ever leaves */
    net_open(&net);
    uv_timer_init(&net.loop, &t);
    t.data = &late;
    uv_timer_start(&t, stop_cb, 1500, 0); /* past the opener's first resend */
    while (!late) {
        uv_idle_start(&net.idle, deliver_cb);
        uv_run(&net.loop, UV_RUN_ONCE);
    }
    ck_assert(net.e[1].s != NULL);
    ck_assert(net.e[1].s->flags & STF_ACK_LATE); /* the ack it owes */
    uv_close((uv_handle_t *)&t, NULL);
    net_free(&net);
}
END_TEST

/* Targets round-trip; malformed open args are refused. */
START_TEST(targets)
{
    struct stream_target t = {.atyp = STA_NAME, .port = 443}, u;
    uint8_t b[300];
    int n;

    strcpy(t.name, "example.org");
    n = stream_target_put(b, &t);
    ck_assert_int_eq(n, 4 + 11);
    ck_assert_int_eq(stream_target_get(&u, b, (size_t)n), 0);
    ck_assert_str_eq(u.name, "example.org");
    ck_assert_uint_eq(u.port, 443);
    ck_assert_int_eq(stream_target_get(&u, b, (size_t)n - 1), OVL_EPROTO);
    ck_assert_int_eq(stream_target_get(&u, b, (size_t)n + 1), OVL_EPROTO);
    b[5] = 0; /* a NUL inside the name */
    ck_assert_int_eq(stream_target_get(&u, b, (size_t)n), OVL_EPROTO);
    t.atyp = STA_IPV6;
    memset(t.addr, 0xab, 16);
    ck_assert_int_eq(stream_target_put(b, &t), 19);
    ck_assert_int_eq(stream_target_get(&u, b, 19), 0);
    ck_assert(memcmp(u.addr, t.addr, 16) == 0 && u.atyp == STA_IPV6);
    ck_assert_int_eq(stream_target_get(&u, b, 7), OVL_EPROTO);
    t.atyp = STA_IPV4;
    ck_assert_int_eq(stream_target_put(b, &t), 7);
    ck_assert_int_eq(stream_target_get(&u, b, 7), 0);
    b[0] = 2; /* not an address type */
    ck_assert_int_eq(stream_target_get(&u, b, 7), OVL_EPROTO);
    t.atyp = 9;
    ck_assert_int_eq(stream_target_put(b, &t), OVL_EINVAL);
    t.atyp = STA_NAME;
    t.name[0] = 0;
    ck_assert_int_eq(stream_target_put(b, &t), OVL_EINVAL);
}
END_TEST

/* ---- the chain window: streams sharing one pool ---- */

#define PW_N    3
#define PW_QCAP 2048

/* Streams tx[i] (openers, on one pool) send to rx[i] through one FIFO of
 * frames each way, delivered from an idle callback; fwd counts the new
 * data bytes of each forward frame (past the highest offset seen) and the
 * acks each back frame carries, so the test sees what is in flight from
 * the frames alone. */
struct pw_end {
    struct pw *w;
    int i, side;
};

struct pw {
    uv_loop_t loop;
    uv_idle_t idle;
    struct stream_pool pool;
    struct stream *tx[PW_N], *rx[PW_N];
    struct pw_end te[PW_N], re[PW_N];
    struct frame *q; /* PW_QCAP frames, each tagged by its target below */
    uint8_t q_side[PW_QCAP], q_i[PW_QCAP];
    unsigned head, n;
    uint64_t top[PW_N], acked[PW_N], to_send, sent[PW_N], got[PW_N];
    uint64_t max_flight, resent, wakes;
    bool hold; /* keep frames: nothing is delivered */
};

static uint64_t pw_flight(const struct pw *w)
{
    uint64_t n = 0;

    for (int i = 0; i < PW_N; i++)
        n += w->top[i] - w->acked[i];
    return n;
}

static int pw_send(struct stream *s, const uint8_t *f, size_t len)
{
    struct pw_end *e = s->ctx;
    struct pw *w = e->w;
    unsigned at;

    if (w->n == PW_QCAP)
        return OVL_EAGAIN;
    if (e->side == 0 && (f[0] == SF_OPEN || f[0] == SF_DATA)) {
        size_t d = STREAM_HDR + (f[0] == SF_OPEN ? 1u + f[STREAM_HDR] : 0);
        uint64_t off = ld_le64(f + 10), end = off + (len - d);

        if (len > d && off < w->top[e->i])
            w->resent += (end < w->top[e->i] ? end : w->top[e->i]) - off;
        if (end > w->top[e->i])
            w->top[e->i] = end;
        if (pw_flight(w) > w->max_flight)
            w->max_flight = pw_flight(w);
    }
    at = (w->head + w->n++) % PW_QCAP;
    w->q[at].len = (uint16_t)len;
    memcpy(w->q[at].b, f, len);
    w->q_side[at] = (uint8_t)!e->side;
    w->q_i[at] = (uint8_t)e->i;
    uv_idle_start(&w->idle, NULL);
    return 0;
}

static void pw_write(struct pw *w, int i)
{
    uint8_t *p;
    size_t n;

    while (w->tx[i] && w->sent[i] < w->to_send && (n = stream_wbuf(w->tx[i], &p)) > 0) {
        if (n > w->to_send - w->sent[i])
            n = (size_t)(w->to_send - w->sent[i]);
        memset(p, i, n);
        w->sent[i] += n;
        stream_wrote(w->tx[i], n);
    }
}

static void pw_event(struct stream *s, enum stream_event ev)
{
    struct pw_end *e = s->ctx;
    struct pw *w = e->w;
    const uint8_t *p;
    size_t n;

    if (ev == SE_WRITABLE && e->side == 0)
        pw_write(w, e->i);
    while (ev == SE_READABLE && e->side == 1 && (n = stream_rbuf(s, &p)) > 0) {
        w->got[e->i] += n;
        stream_consumed(s, n);
    }
}

static const struct stream_ops pw_ops = {pw_send, pw_event};

static void pw_deliver_cb(uv_idle_t *h)
{
    struct pw *w = h->data;
    static struct frame fr;
    int side, i;

    if (!w->n || w->hold) {
        uv_idle_stop(h);
        return;
    }
    fr = w->q[w->head];
    side = w->q_side[w->head];
    i = w->q_i[w->head];
    w->head = (w->head + 1) % PW_QCAP;
    w->n--;
    if (side == 1 && !w->rx[i]) {
        ck_assert_int_eq(stream_new(&w->loop, &pw_ops, &w->re[i], fr.b + 2, NULL, 0,
                                    STREAM_FRAME_MAX, 60000, &w->rx[i]),
                         0);
        ck_assert_int_eq(stream_input(w->rx[i], fr.b, fr.len), 0);
        stream_take(w->rx[i]);
        return;
    }
    if (side == 1) {
        ck_assert_int_eq(stream_input(w->rx[i], fr.b, fr.len), 0);
        return;
    }
    if (ld_le64(fr.b + 18) > w->acked[i])
        w->acked[i] = ld_le64(fr.b + 18);
    ck_assert_int_eq(stream_input(w->tx[i], fr.b, fr.len), 0);
    if (stream_pool_wake(&w->pool)) {
        w->wakes++; /* the owner pumps every stream of the pool */
        for (int k = 0; k < PW_N; k++)
            stream_pump(w->tx[k]);
    }
}

/* Open PW_N streams on w's pool (cap bytes), each with to_send bytes. */
static void pw_init(struct pw *w, uint32_t cap, uint64_t to_send)
{
    memset(w, 0, sizeof(*w));
    ck_assert_int_eq(uv_loop_init(&w->loop), 0);
    uv_idle_init(&w->loop, &w->idle);
    w->idle.data = w;
    w->q = calloc(PW_QCAP, sizeof(*w->q));
    ck_assert_ptr_nonnull(w->q);
    w->pool.cap = cap;
    w->to_send = to_send;
    for (int i = 0; i < PW_N; i++) {
        uint8_t sid[STREAM_SID] = {9, 9, 9, 9, 9, 9, 9, (uint8_t)i};

        w->te[i] = (struct pw_end){w, i, 0};
        w->re[i] = (struct pw_end){w, i, 1};
        ck_assert_int_eq(stream_new(&w->loop, &pw_ops, &w->te[i], sid, (const uint8_t *)"dst", 3,
                                    STREAM_FRAME_MAX, 60000, &w->tx[i]),
                         0);
        stream_set_pool(w->tx[i], &w->pool);
    }
    for (int i = 0; i < PW_N; i++)
        pw_write(w, i);
}

static bool pw_done(const struct pw *w)
{
    for (int i = 0; i < PW_N; i++)
        if (w->got[i] < w->to_send)
            return false;
    return true;
}

/* Run until every byte arrived, or 100 s (as net_run). */
static bool pw_run(struct pw *w)
{
    uv_timer_t t;
    bool late = false;

    uv_timer_init(&w->loop, &t);
    t.data = &late;
    uv_timer_start(&t, stop_cb, 100000, 0);
    while (!late && !pw_done(w)) {
        uv_idle_start(&w->idle, pw_deliver_cb);
        uv_run(&w->loop, UV_RUN_ONCE);
    }
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&w->loop, UV_RUN_NOWAIT);
    return pw_done(w);
}

static void pw_free(struct pw *w)
{
    for (int i = 0; i < PW_N; i++) {
        stream_free(w->tx[i]);
        stream_free(w->rx[i]);
    }
    ck_assert_uint_eq(w->pool.used, 0);
    uv_close((uv_handle_t *)&w->idle, NULL);
    while (uv_run(&w->loop, UV_RUN_NOWAIT))
        ;
    ck_assert_int_eq(uv_loop_close(&w->loop), 0);
    free(w->q);
}

/* Three streams on one small pool never have more than its cap in flight
 * together, and all of their bytes arrive: a stream held back resumes when
 * another's ack frees room, through the wake. */
START_TEST(pool_caps_streams)
{
    static struct pw w;

    pw_init(&w, 10000, 150000);
    ck_assert_uint_eq(pw_flight(&w), 10000); /* the window filled at once, no more */
    ck_assert_uint_eq(w.pool.used, 10000);
    ck_assert(w.pool.flags & SPF_WAIT);
    ck_assert(pw_run(&w));
    ck_assert_uint_le(w.max_flight, 10000);
    ck_assert_uint_gt(w.wakes, 0);
    pw_free(&w);
}
END_TEST

/* A full pool holds back new data only: a rewind sends everything in
 * flight again. stream_set_pool moves a stream's charge, stream_free
 * releases it, and the room that makes wakes the pool once. */
START_TEST(pool_resend_free_move)
{
    static struct pw w;
    struct stream_pool other = {0};
    uint64_t top[PW_N], charge;

    pw_init(&w, 10000, 20000);
    w.hold = true;
    memcpy(top, w.top, sizeof(top));
    ck_assert_uint_eq(w.pool.used, 10000);
    for (int i = 0; i < PW_N; i++)
        stream_rewind(w.tx[i]);
    ck_assert_uint_eq(w.resent, 10000);              /* all of it again, */
    ck_assert(memcmp(top, w.top, sizeof(top)) == 0); /* and not a byte more */
    charge = w.tx[0]->max - w.tx[0]->una;
    ck_assert_uint_gt(charge, 0);
    stream_set_pool(w.tx[0], &other);
    ck_assert_uint_eq(other.cap, STREAM_POOL_CAP);
    ck_assert_uint_eq(other.used, charge);
    ck_assert_uint_eq(w.pool.used, 10000 - charge);
    ck_assert(stream_pool_wake(&w.pool)); /* tx[1] and tx[2] wait for room */
    ck_assert(!stream_pool_wake(&w.pool));
    stream_free(w.tx[1]);
    ck_assert_uint_eq(w.pool.used, 10000 - charge - top[1]);
    w.tx[1] = NULL;
    stream_pump(w.tx[2]); /* takes the room back, and waits again */
    ck_assert_uint_eq(w.pool.used, 10000);
    ck_assert_uint_eq(w.top[2], top[2] + top[1] + charge);
    ck_assert(w.pool.flags & SPF_WAIT);
    stream_free(w.tx[0]);
    ck_assert_uint_eq(other.used, 0);
    w.tx[0] = NULL;
    pw_free(&w);
}
END_TEST

/* A simulated path for the chain window's controller: a bottleneck of
 * rate bytes per second behind base_us of round trip, fed by a sender
 * that always fills its window (every round is SPF_FULL). What the window
 * holds beyond the path's bandwidth-delay product waits in the queues,
 * and adds queue / rate to the round trip; extra_us is delay from
 * elsewhere (another chain's queue). One sample every step_us. */
struct cc_path {
    uint64_t rate, base_us, extra_us, now_us;
    uint64_t max_queue; /* the most that queued after the first rounds */
    uint64_t spike_us;  /* delay added to every other round (a host that is busy now and then) */
    uint64_t round_end; /* the pool's round_end when the path last looked */
    bool spiked;        /* this round carries spike_us */
};

static uint64_t cc_queue(const struct cc_path *c, const struct stream_pool *p)
{
    uint64_t bdp = c->rate * c->base_us / 1000000;

    return p->cap > bdp ? p->cap - bdp : 0;
}

/* Run the path for secs seconds of samples; the queue is noted from
 * settle_s on. */
static void cc_run(struct cc_path *c, struct stream_pool *p, unsigned secs, unsigned settle_s)
{
    uint64_t end = c->now_us + secs * 1000000ull, settle = c->now_us + settle_s * 1000000ull;

    while (c->now_us < end) {
        uint64_t q = cc_queue(c, p), rtt = c->base_us + c->extra_us + q * 1000000 / c->rate;

        if (p->round_end != c->round_end) {
            c->round_end = p->round_end; /* a new round: spiked or not, in turn */
            c->spiked = !c->spiked;
        }
        if (c->spiked)
            rtt += c->spike_us;
        if (c->now_us >= settle && q > c->max_queue)
            c->max_queue = q;
        p->used = p->cap;     /* the sender fills its window ... */
        p->flags |= SPF_FULL; /* ... and new data waited for room: the window holds it back */
        stream_pool_sample(p, (uint32_t)rtt, c->now_us);
        c->now_us += 2000;
    }
}

/* A long clean path (80 ms, 60 MB/s: 4.8 MB in flight) opens the window
 * from STREAM_POOL_CAP to its bandwidth-delay product within a few
 * seconds and keeps it there, with little queued; a path that is wider
 * than the window can ever be opens it to STREAM_POOL_MAX. */
START_TEST(cc_grows_on_clean_path)
{
    struct cc_path c = {.rate = 60000000, .base_us = 80000};
    struct stream_pool p = {.cap = STREAM_POOL_CAP};
    uint64_t bdp = c.rate * c.base_us / 1000000;

    cc_run(&c, &p, 3, 2);
    ck_assert_uint_ge(p.cap, bdp);
    cc_run(&c, &p, 20, 0);
    /* What queues stays within STREAM_CC_BETA's share of the window (a
     * quarter) and a step (an eighth). */
    ck_assert_uint_ge(p.cap, bdp);
    ck_assert_uint_le(p.cap, bdp + p.cap / 4 + p.cap / 8);
    ck_assert_uint_le(c.max_queue, p.cap / 4 + p.cap / 8);

    struct cc_path wide = {.rate = 1000000000, .base_us = 80000};
    struct stream_pool q = {.cap = STREAM_POOL_CAP};

    cc_run(&wide, &q, 5, 0);
    ck_assert_uint_eq(q.cap, STREAM_POOL_MAX);
}
END_TEST

/* Delay that builds up while the window is open (another chain filled the
 * links' queues) closes it until what it would queue is within
 * STREAM_CC_BETA, never below STREAM_POOL_CAP;
 * once the delay is gone it opens again. A loss halves it. A pool its
 * owner set smaller than STREAM_POOL_CAP is left alone. */
START_TEST(cc_shrinks_on_delay)
{
    struct cc_path c = {.rate = 60000000, .base_us = 80000};
    struct stream_pool p = {.cap = STREAM_POOL_CAP}, small = {.cap = 10000};
    uint32_t open;

    cc_run(&c, &p, 5, 0);
    open = p.cap;
    c.extra_us = 40000;
    cc_run(&c, &p, 1, 0);
    ck_assert_uint_lt(p.cap, open * 3 / 4);
    cc_run(&c, &p, 30, 0);
    /* What it sees queued, a third of the window, is within STREAM_CC_BETA
     * (the larger of 192 KiB and a quarter of the window). */
    ck_assert_uint_le(p.cap, 3u * STREAM_CC_BETA);
    ck_assert_uint_ge(p.cap, STREAM_POOL_CAP);
    c.extra_us = 0;
    cc_run(&c, &p, 30, 0);
    ck_assert_uint_ge(p.cap, open - open / 8);
    open = p.cap;
    stream_pool_loss(&p);
    ck_assert_uint_eq(p.cap, open / 2);
    stream_pool_sample(&small, 1000, 1);
    stream_pool_sample(&small, 100000, 1000000);
    stream_pool_loss(&small);
    ck_assert_uint_eq(small.cap, 10000);
}
END_TEST

/* A host busy now and then delays a round without any queue of ours: a
 * path of 80 ms where every other round comes 35 % late (more than
 * STREAM_CC_BETA's quarter of the window would make of it) still opens
 * the window to its bandwidth-delay product, since a round is judged on
 * the least round trip of two; a delay that lasts (another chain's queue)
 * still closes it. */
START_TEST(cc_two_rounds)
{
    struct cc_path c = {.rate = 60000000, .base_us = 80000, .spike_us = 28000};
    struct stream_pool p = {.cap = STREAM_POOL_CAP};
    uint64_t bdp = c.rate * c.base_us / 1000000;
    uint32_t open;

    cc_run(&c, &p, 5, 0);
    ck_assert_uint_ge(p.cap, bdp);
    open = p.cap;
    c.extra_us = 40000;
    cc_run(&c, &p, 2, 0);
    ck_assert_uint_lt(p.cap, open * 3 / 4);
}
END_TEST

/* Where the hops take turns on one busy host the round trip grows with
 * what is in flight: rounds where a stream's own small credit held the
 * sender (no new data waited for the window) are short, and their round
 * trips do not stand for a full window's. A path of 4.3 ms at 200 MB/s
 * (860 KB in flight), seen at 1 ms before the window ever filled, opens
 * the window past STREAM_POOL_CAP to what it carries. */
START_TEST(cc_least_of_full_rounds)
{
    struct cc_path c = {.rate = 200000000, .base_us = 4300};
    struct stream_pool p = {.cap = STREAM_POOL_CAP};
    uint64_t bdp = c.rate * c.base_us / 1000000;

    for (uint64_t t = 0; t < 1000000; t += 500)
        stream_pool_sample(&p, 1000, t); /* not full: the credit held the sender */
    c.now_us = 1000000;
    cc_run(&c, &p, 5, 0);
    ck_assert_uint_ge(p.cap, bdp);
}
END_TEST

/* No round where new data waited for room (an application that sends
 * less than the window carries): the window does not grow. */
START_TEST(cc_idle_does_not_grow)
{
    struct stream_pool p = {.cap = STREAM_POOL_CAP};

    for (uint64_t t = 0; t < 10000000; t += 2000)
        stream_pool_sample(&p, 80000, t);
    ck_assert_uint_eq(p.cap, STREAM_POOL_CAP);
}
END_TEST

static Suite *stream_suite(void)
{
    Suite *s = suite_create("stream");
    TCase *tc = tcase_create("stream");

    tcase_add_test(tc, both_ways);
    tcase_add_test(tc, lossy_path);
    tcase_add_test(tc, lost_open_and_opened);
    tcase_add_test(tc, path_breaks);
    tcase_add_test(tc, flow_control);
    tcase_add_test(tc, window_grows);
    tcase_add_test(tc, window_growth_capped);
    tcase_add_test(tc, window_grows_past_max);
    tcase_add_test(tc, unread_budget);
    tcase_add_test(tc, stalled_gives_back);
    tcase_add_test(tc, refused);
    tcase_add_test(tc, bad_frames);
    tcase_add_test(tc, targets);
    tcase_add_test(tc, blocked_path_does_not_spin);
    tcase_add_test(tc, pool_caps_streams);
    tcase_add_test(tc, pool_resend_free_move);
    tcase_add_test(tc, cc_grows_on_clean_path);
    tcase_add_test(tc, cc_shrinks_on_delay);
    tcase_add_test(tc, cc_idle_does_not_grow);
    tcase_add_test(tc, cc_two_rounds);
    tcase_add_test(tc, cc_least_of_full_rounds);
    suite_add_tcase(s, tc);
    return s;
}

OVL_CHECK_MAIN(stream_suite)
