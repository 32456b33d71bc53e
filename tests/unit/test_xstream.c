/* test_xstream.c - the exit's end of streams (src/chain/xstream.c), on one
 * loop over loopback TCP.
 *
 * Three nodes: a bootstrap, an exit and a sender. The sender is this file:
 * it opens one-hop chains to the exit with onion.h, runs the client's end
 * of each stream with the real stream engine (its frames wrapped in
 * BODY_STREAM bodies, BODY_STREAM_BACK bodies fed back to it), and runs
 * the targets: an echo server on 127.0.0.1, which shuts its side down
 * once the exit's FIN came. The world, the sender's chains, the streams'
 * ends and the echo server come from tnet.h. test_wake_turns reaches into the exit's chains
 * (relay_int.h) to size their windows by hand.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "chain/relay_int.h"
#include "chain/stream.h"
#include "check_main.h"
#include "tnet.h"
#include "lib/clock.h"

enum { BS = 0, EX, SND, N_NODES };
#define MAX_RESET 8

struct net {
    TNET_WORLD(struct net, N_NODES); /* the exit EX is the one relay */
    struct tnet_chain chain[2];      /* the sender's chains to the exit; most tests use the first */

    struct tnet_ends ends; /* the client's ends of streams; way is the chain */
    struct {
        uint8_t sid[STREAM_SID], reason;
    } resets[MAX_RESET]; /* for sids without a stream */
    unsigned n_resets;

    struct tnet_echo echo; /* the target */
};

TNET_DEFINE(struct net)

/* ---- the target ---- */

/* A port on 127.0.0.1 where nothing listens. */
static uint16_t closed_port(struct net *t)
{
    struct sockaddr_in sa;
    uv_tcp_t h;
    uint16_t port;

    uv_ip4_addr("127.0.0.1", 0, &sa);
    uv_tcp_init(&t->loop, &h);
    ck_assert_int_eq(uv_tcp_bind(&h, (struct sockaddr *)&sa, 0), 0);
    port = tnet_tcp_port(&h);
    uv_close((uv_handle_t *)&h, NULL);
    uv_run(&t->loop, UV_RUN_NOWAIT);
    return port;
}

/* ---- the sender: chain and stream ends ---- */

/* Carry one frame to the exit on chain k in a body of command cmd. */
static int snd_frame_on(struct net *t, unsigned k, uint8_t cmd, const uint8_t *f, size_t len)
{
    return tnet_chain_send(&t->chain[k], cmd, f, len);
}

static int snd_frame(struct net *t, uint8_t cmd, const uint8_t *f, size_t len)
{
    return snd_frame_on(t, 0, cmd, f, len);
}

/* tnet_ends' put: a stream's frame in a BODY_STREAM body on its chain. */
static int snd_put(struct tnet_ends *ends, struct tnet_end *e, const uint8_t *f, size_t len)
{
    return snd_frame_on(ends->ctx, e->way, BODY_STREAM, f, len);
}

/* Open stream i with sid to target on the sender's chain t->chain[k]
 * (writing total bytes, then FIN unless t->ends.no_fin). */
static void cs_open_on(struct net *t, unsigned k, unsigned i, const struct stream_target *tg,
                       uint32_t total, const uint8_t sid_in[STREAM_SID])
{
    uint8_t args[4 + 255];
    int alen = stream_target_put(args, tg);

    ck_assert_int_gt(alen, 0);
    tnet_end_open(&t->ends, &t->loop, i, k, total, sid_in, args, (size_t)alen,
                  ONION_BODY - BODY_HDR);
}

static void cs_open_sid(struct net *t, unsigned i, const struct stream_target *tg, uint32_t total,
                        const uint8_t sid_in[STREAM_SID])
{
    cs_open_on(t, 0, i, tg, total, sid_in);
}

/* Open stream i, with a fresh sid, to target. */
static void cs_open(struct net *t, unsigned i, const struct stream_target *tg, uint32_t total)
{
    uint8_t sid[STREAM_SID];

    ovl_random(sid, sizeof(sid));
    cs_open_sid(t, i, tg, total, sid);
}

static struct stream_target target4(const char *ip, uint16_t port)
{
    struct stream_target tg = {.atyp = STA_IPV4, .port = port};

    ck_assert_int_eq(uv_inet_pton(AF_INET, ip, tg.addr), 0);
    return tg;
}

/* A BODY_STREAM_BACK frame: to its stream, or recorded. */
static void snd_stream_back(struct net *t, const uint8_t *f, size_t len)
{
    int i;

    ck_assert_uint_ge(len, STREAM_HDR);
    i = tnet_end_find(&t->ends, f + 2);
    if (i >= 0) {
        tnet_end_input(&t->ends, (unsigned)i, f, len); /* or a late frame, let go of */
        return;
    }
    ck_assert_uint_eq(f[0], SF_RESET);
    ck_assert_uint_lt(t->n_resets, MAX_RESET);
    memcpy(t->resets[t->n_resets].sid, f + 2, STREAM_SID);
    t->resets[t->n_resets++].reason = f[STREAM_HDR];
}

/* A backward body on one of the sender's chains: frames to their streams. */
static void snd_body(struct tnet_chain *c, uint8_t cmd, const uint8_t *args, size_t len)
{
    if (cmd == BODY_STREAM_BACK)
        snd_stream_back(c->ctx, args, len);
}

/* ---- the network ---- */

static bool linked(struct net *t)
{
    return tnet_link(t->n, SND, EX) != NULL;
}

/* policy NULL: the exit has none. */
static void net_setup(struct net *t, const char *policy, const struct relay_opts *ro)
{
    struct dir_bootstrap_spec bs;
    struct peer_spec peer;
    struct dir_opts dopts, xopts;

    tnet_open(t);
    tnet_dir_opts(&dopts);
    xopts = dopts;
    if (policy)
        ck_assert_int_eq(exit_policy_parse(&xopts.exit_policy, policy, NULL, NULL), 0);

    tnet_boot(&t->loop, t->n, t->dir, &dopts, &bs, &peer);
    tnet_relay(t, EX, &xopts, &bs, &peer, ro);
    tnet_client(t, SND, &dopts, &bs, &peer);
    ck_assert(run_until(t, tnet_all_registered, 10000));
    tnet_dial(t->n, SND, EX);
    ck_assert(run_until(t, linked, 5000));
    tnet_echo_start(&t->loop, &t->echo);
    t->ends.ctx = t;
    t->ends.put = snd_put;
    for (unsigned k = 0; k < 2; k++) {
        t->chain[k].ctx = t;
        t->chain[k].on_body = snd_body;
    }
}

/* Open a one-hop chain to the exit as the sender's chain k (again, after
 * the one before ended). */
static void chain_open_on(struct net *t, unsigned k)
{
    tnet_chain_open(t, &t->chain[k], SND, EX);
}

/* Open the sender's first chain (the one most tests use). */
static void chain_open(struct net *t)
{
    chain_open_on(t, 0);
}

/* End the sender's first chain (DESTROY), as a client whose chain failed. */
static void chain_close(struct net *t)
{
    tnet_chain_close(&t->chain[0]);
}

static void net_teardown(struct net *t)
{
    tnet_ends_free(&t->ends);
    tnet_echo_close(&t->echo);
    tnet_down(t);
    tnet_release(t);
    tnet_chain_wipe(t->chain, 2);
}

static struct relay_stats xstats(struct net *t)
{
    return tnet_rstats(t->relay[EX]);
}

static unsigned want;
static bool n_closed(struct net *t)
{
    return tnet_ends_closed(&t->ends) >= want;
}

static bool n_resets(struct net *t)
{
    return t->n_resets >= want;
}

static bool n_opened(struct net *t)
{
    return tnet_ends_opened(&t->ends) >= want;
}

static bool none_active(struct net *t)
{
    return xstats(t).streams_active == 0;
}

#define POLICY "accept 127.0.0.1:*, reject *:*"

/* Open, 200 KB both ways (three windows' worth: credit and backpressure
 * on both sockets), FIN both ways, done. */
START_TEST(test_echo)
{
    struct net *t = calloc(1, sizeof(*t));
    struct relay_opts ro;
    struct stream_target tg;
    struct relay_stats st;
    const uint32_t total = 200000;

    relay_opts_defaults(&ro);
    net_setup(t, POLICY, &ro);
    chain_open(t);
    tg = target4("127.0.0.1", t->echo.port);
    cs_open(t, 0, &tg, total);
    want = 1;
    ck_assert(run_until(t, n_closed, 20000));
    ck_assert_uint_eq(t->ends.end[0].reason, SR_DONE);
    ck_assert(t->ends.end[0].opened);
    ck_assert(t->ends.end[0].eof);
    ck_assert(!t->ends.end[0].bad);
    ck_assert_uint_eq(t->ends.end[0].got, total);
    ck_assert_uint_eq(t->echo.bytes, total);
    ck_assert_uint_eq(t->echo.eofs, 1);
    ck_assert(run_until(t, none_active, 10000)); /* the exit's linger ends too */
    st = xstats(t);
    ck_assert_uint_eq(st.streams_opened, 1);
    ck_assert_uint_eq(st.stream_bytes_in, total);
    ck_assert_uint_eq(st.stream_bytes_out, total);
    ck_assert_uint_eq(st.streams_failed_connect, 0);
    ck_assert_uint_eq(st.dropped[RD_BAD_CELL], 0);
    net_teardown(t);
    free(t);
}
END_TEST

/* A name resolved by the exit: the first address the policy takes. */
START_TEST(test_name)
{
    struct net *t = calloc(1, sizeof(*t));
    struct relay_opts ro;
    struct stream_target tg = {.atyp = STA_NAME};

    relay_opts_defaults(&ro);
    net_setup(t, POLICY, &ro);
    chain_open(t);
    tg.port = t->echo.port;
    strcpy(tg.name, "localhost");
    cs_open(t, 0, &tg, 1000);
    tg.port = 1;
    strcpy(tg.name, "name.invalid");
    cs_open(t, 1, &tg, 10);
    want = 2;
    ck_assert(run_until(t, n_closed, 30000));
    ck_assert_uint_eq(t->ends.end[0].reason, SR_DONE);
    ck_assert_uint_eq(t->ends.end[0].got, 1000);
    ck_assert(t->ends.end[1].reason == SR_HOST_UNREACH || t->ends.end[1].reason == SR_TIMEOUT);
    ck_assert_uint_eq(xstats(t).streams_opened, 1);
    ck_assert_uint_eq(xstats(t).streams_failed_connect, 1);
    net_teardown(t);
    free(t);
}
END_TEST

/* Refusals: the policy, a closed port, an unknown sid, a bad frame. */
START_TEST(test_refused)
{
    struct net *t = calloc(1, sizeof(*t));
    struct relay_opts ro;
    struct stream_target tg;
    struct relay_stats st;
    uint8_t f[STREAM_HDR + 8];

    relay_opts_defaults(&ro);
    net_setup(t, POLICY, &ro);
    chain_open(t);
    tg = target4("127.0.0.2", t->echo.port); /* the policy takes 127.0.0.1 only */
    cs_open(t, 0, &tg, 10);
    tg = target4("127.0.0.1", closed_port(t));
    cs_open(t, 1, &tg, 10);
    want = 2;
    ck_assert(run_until(t, n_closed, 10000));
    ck_assert_uint_eq(t->ends.end[0].reason, SR_POLICY);
    ck_assert_uint_eq(t->ends.end[1].reason, SR_REFUSED);

    /* DATA for a sid the exit does not have; a RESET is never answered. */
    memset(f, 0, sizeof(f));
    f[0] = SF_DATA;
    memset(f + 2, 0xab, STREAM_SID);
    ck_assert_int_eq(snd_frame(t, BODY_STREAM, f, STREAM_HDR), 0);
    f[0] = SF_RESET;
    ck_assert_int_eq(snd_frame(t, BODY_STREAM, f, STREAM_HDR + 1), 0);
    f[0] = 9; /* no such type: dropped */
    ck_assert_int_eq(snd_frame(t, BODY_STREAM, f, STREAM_HDR), 0);
    ck_assert_int_eq(snd_frame(t, BODY_STREAM, f, 5), 0); /* too short */
    want = 1;
    ck_assert(run_until(t, n_resets, 5000));
    ck_assert_uint_eq(t->resets[0].reason, SR_UNKNOWN);
    ck_assert_mem_eq(t->resets[0].sid, f + 2, STREAM_SID);
    st = xstats(t);
    ck_assert_uint_eq(st.streams_refused_policy, 1);
    ck_assert_uint_eq(st.streams_failed_connect, 1);
    ck_assert_uint_ge(st.streams_unknown, 1); /* and late frames of the refused streams */
    ck_assert_uint_eq(st.dropped[RD_BAD_CELL], 2);
    ck_assert_uint_eq(st.streams_active, 0);
    ck_assert_uint_eq(t->n_resets, 1);
    net_teardown(t);
    free(t);
}
END_TEST

/* No policy: no exit. */
START_TEST(test_not_exit)
{
    struct net *t = calloc(1, sizeof(*t));
    struct relay_opts ro;
    struct stream_target tg;

    relay_opts_defaults(&ro);
    net_setup(t, NULL, &ro);
    chain_open(t);
    tg = target4("127.0.0.1", t->echo.port);
    cs_open(t, 0, &tg, 10);
    want = 1;
    ck_assert(run_until(t, n_closed, 10000));
    ck_assert_uint_eq(t->ends.end[0].reason, SR_POLICY);
    ck_assert_uint_eq(xstats(t).streams_refused_policy, 1);
    net_teardown(t);
    free(t);
}
END_TEST

/* max_streams_per_chain, then max_streams node-wide. */
START_TEST(test_limits)
{
    struct net *t = calloc(1, sizeof(*t));
    struct relay_opts ro;
    struct stream_target tg;
    uint8_t sid[STREAM_SID];

    relay_opts_defaults(&ro);
    ro.max_streams_per_chain = 2;
    ro.max_streams = 3;
    net_setup(t, POLICY, &ro);
    chain_open(t);
    tg = target4("127.0.0.1", t->echo.port);
    for (unsigned i = 0; i < 3; i++)
        cs_open(t, i, &tg, 0x7fffffff); /* they stay open */
    want = 2;
    ck_assert(run_until(t, n_opened, 10000));
    want = 1;
    ck_assert(run_until(t, n_closed, 10000));
    ck_assert(t->ends.end[2].closed);
    ck_assert_uint_eq(t->ends.end[2].reason, SR_LIMIT);
    /* A new chain: one more stream fits node-wide, the next does not. The
     * first chain ended: its two streams wait for a client that is gone. */
    for (unsigned i = 0; i < 2; i++) {
        stream_free(t->ends.end[i].s);
        t->ends.end[i].s = NULL;
    }
    chain_close(t);
    chain_open(t);
    /* A copy of the refused open (its RESET lost) finds room now, but gets
     * the first answer: it must not open a second connection. */
    memcpy(sid, t->ends.end[2].sid, STREAM_SID);
    memset(t->ends.end[2].sid, 0, STREAM_SID); /* answers to that sid go to the copy */
    cs_open_sid(t, 5, &tg, 10, sid);
    want = 2;
    ck_assert(run_until(t, n_closed, 10000));
    ck_assert(t->ends.end[5].closed);
    ck_assert_uint_eq(t->ends.end[5].reason, SR_LIMIT);
    ck_assert_uint_eq(xstats(t).streams_refused_limit, 1);
    cs_open(t, 3, &tg, 10);
    cs_open(t, 4, &tg, 10);
    want = 3;
    ck_assert(run_until(t, n_closed, 10000));
    ck_assert_uint_eq(t->ends.end[4].reason, SR_LIMIT);
    ck_assert_uint_eq(xstats(t).streams_refused_limit, 2);
    net_teardown(t);
    free(t);
}
END_TEST

static bool echo_got(struct net *t)
{
    return t->echo.bytes >= want;
}

/* The chain ends mid-stream; the client comes back on a new chain and the
 * stream goes on: nothing lost, nothing twice. */
START_TEST(test_new_chain)
{
    struct net *t = calloc(1, sizeof(*t));
    struct relay_opts ro;
    struct stream_target tg;
    struct tnet_end *c = &t->ends.end[0];
    const uint32_t total = 300000;

    relay_opts_defaults(&ro);
    net_setup(t, POLICY, &ro);
    chain_open(t);
    tg = target4("127.0.0.1", t->echo.port);
    cs_open(t, 0, &tg, total);
    want = 50000;
    ck_assert(run_until(t, echo_got, 10000));
    chain_close(t);
    chain_open(t);
    stream_rewind(c->s); /* the client's side of a new way */
    want = 1;
    ck_assert(run_until(t, n_closed, 30000));
    ck_assert_uint_eq(c->reason, SR_DONE);
    ck_assert(!c->bad);
    ck_assert_uint_eq(c->got, total);
    ck_assert_uint_eq(t->echo.bytes, total);
    ck_assert_uint_eq(xstats(t).streams_opened, 1);
    net_teardown(t);
    free(t);
}
END_TEST

/* Stopping with streams resolving, connecting and open: reset, freed. */
START_TEST(test_stop)
{
    struct net *t = calloc(1, sizeof(*t));
    struct relay_opts ro;
    struct stream_target tg;

    relay_opts_defaults(&ro);
    net_setup(t, "accept *:*", &ro);
    chain_open(t);
    tg = target4("127.0.0.1", t->echo.port);
    cs_open(t, 0, &tg, 0x7fffffff);
    want = 1;
    ck_assert(run_until(t, n_opened, 10000));
    tg.atyp = STA_NAME;
    strcpy(tg.name, "localhost");
    cs_open(t, 1, &tg, 10);
    tg = target4("192.0.2.1", 80); /* TEST-NET-1: the connect hangs */
    cs_open(t, 2, &tg, 10);
    uv_run(&t->loop, UV_RUN_NOWAIT);
    net_teardown(t); /* ASan: nothing leaks, nothing used after free */
    free(t);
}
END_TEST

/* A chain window's wakes. Streams A, B and C on one chain (with an idle
 * fourth) and D on another have data from their targets held back by
 * windows with no room (set by hand through relay_int.h); the sender
 * takes nothing more from them, so only room the test makes frees any.
 * Each round makes room for one frame and wakes the first chain with an
 * ack of its idle stream, given to xstream_input directly: one stream
 * takes the room, and the next round's goes to another, A, B and C in
 * turn. The other chain's window has room meanwhile, but its stream is
 * not pumped until its own chain wakes. */
#define WAKE_ROOM   100
#define WAKE_DATA   1000
#define WAKE_ROUNDS 6
enum { W_A, W_B, W_C, W_IDLE, W_OTHER, W_N };

static struct relay_chain *exit_chain(struct net *t, unsigned n_streams)
{
    struct relay_chain *ch, *tmp;

    HASH_ITER(hh, t->relay[EX]->chains, ch, tmp)
    {
        if (ch->n_streams == n_streams)
            return ch;
    }
    return NULL;
}

/* The echoes wait in the exit's rings; the exit acked what the sender wrote. */
static bool wake_ready(struct net *t)
{
    if (xstats(t).stream_bytes_in < 4 * WAKE_DATA)
        return false;
    for (unsigned i = 0; i < W_N; i++)
        if (i != W_IDLE && t->ends.end[i].s->una < WAKE_DATA)
            return false;
    return true;
}

static bool captured(struct net *t)
{
    return t->ends.captured >= want;
}

START_TEST(test_wake_turns)
{
    struct net *t = calloc(1, sizeof(*t));
    struct relay_opts ro;
    struct stream_target tg;
    struct relay_chain *x, *y;
    unsigned served[WAKE_ROUNDS];
    uint8_t sid[STREAM_SID];

    relay_opts_defaults(&ro);
    net_setup(t, POLICY, &ro);
    chain_open_on(t, 0);
    chain_open_on(t, 1);
    tg = target4("127.0.0.1", t->echo.port);
    t->ends.no_fin = true;
    for (unsigned i = 0; i < W_N; i++) {
        ovl_random(sid, sizeof(sid));
        cs_open_on(t, i == W_OTHER, i, &tg, 0, sid);
    }
    want = W_N;
    ck_assert(run_until(t, n_opened, 10000));
    x = exit_chain(t, 4);
    y = exit_chain(t, 1);
    ck_assert_ptr_nonnull(x);
    ck_assert_ptr_nonnull(y);
    ck_assert_uint_eq(x->pool.used, 0);
    ck_assert_uint_eq(y->pool.used, 0);
    x->pool.cap = y->pool.cap = 0; /* no room: what the targets send waits */
    for (unsigned i = 0; i < W_N; i++) {
        if (i != W_IDLE) {
            t->ends.end[i].total = WAKE_DATA;
            tnet_end_write(&t->ends.end[i]);
        }
    }
    ck_assert(run_until(t, wake_ready, 10000));
    ck_assert(x->pool.flags & SPF_WAIT);
    ck_assert(y->pool.flags & SPF_WAIT);
    ck_assert_uint_eq(x->pool.used + y->pool.used, 0);

    t->ends.grab = &t->ends.end[W_IDLE]; /* the ack each round gives the exit */
    stream_rewind(t->ends.end[W_IDLE].s);
    ck_assert_ptr_null(t->ends.grab);
    for (unsigned i = 0; i < W_N; i++)
        t->ends.end[i].seen = t->ends.end[i].got;
    t->ends.capture = true;
    for (unsigned k = 0; k < WAKE_ROUNDS; k++) {
        x->pool.cap += WAKE_ROOM;
        y->pool.cap = WAKE_ROOM; /* room only a wake of y may hand out */
        xstream_input(x, t->ends.grabbed, t->ends.grabbed_len);
        ck_assert_uint_eq(x->pool.used, x->pool.cap); /* one stream took it all */
        ck_assert_uint_eq(y->pool.used, 0);
        y->pool.cap = 0;
        want = (k + 1) * WAKE_ROOM;
        ck_assert(run_until(t, captured, 10000));
        ck_assert_uint_eq(t->ends.n_log, k + 1); /* in one frame */
        served[k] = t->ends.log[k];
        ck_assert_uint_le(served[k], W_C);
        ck_assert(k < 3 || served[k] == served[k - 3]);
    }
    ck_assert(served[0] != served[1] && served[1] != served[2] && served[0] != served[2]);
    ck_assert_uint_eq(x->pool.used, WAKE_ROUNDS * WAKE_ROOM);

    /* y's stream was waiting all along: its own chain's wake serves it. */
    y->pool.cap = WAKE_ROOM;
    xstream_tick(t->relay[EX], clock_now_ms());
    ck_assert_uint_eq(y->pool.used, WAKE_ROOM);
    ck_assert_uint_eq(x->pool.used, WAKE_ROUNDS * WAKE_ROOM);
    want = (WAKE_ROUNDS + 1) * WAKE_ROOM;
    ck_assert(run_until(t, captured, 10000));
    ck_assert_uint_eq(t->ends.log[WAKE_ROUNDS], W_OTHER);
    t->ends.capture = false;
    net_teardown(t);
    free(t);
}
END_TEST

START_TEST(test_defaults)
{
    struct relay_opts ro;

    relay_opts_defaults(&ro);
    ck_assert_uint_eq(ro.max_streams, 1024);
    ck_assert_uint_eq(ro.max_streams_per_chain, 256);
    ck_assert_uint_eq(ro.stream_idle_ms, 300000);
}
END_TEST

static Suite *xstream_suite(void)
{
    TCase *tc;
    Suite *s = tnet_suite("xstream", 60, &tc);

    tcase_add_test(tc, test_defaults);
    tcase_add_test(tc, test_echo);
    tcase_add_test(tc, test_name);
    tcase_add_test(tc, test_refused);
    tcase_add_test(tc, test_not_exit);
    tcase_add_test(tc, test_limits);
    tcase_add_test(tc, test_new_chain);
    tcase_add_test(tc, test_stop);
    tcase_add_test(tc, test_wake_turns);
    return s;
}

OVL_CHECK_MAIN(xstream_suite)
