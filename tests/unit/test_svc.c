/* test_svc.c - a node's end of streams to its services (src/client/svc.c),
 * on one loop over loopback TCP.
 *
 * Three nodes: a bootstrap, B (a client with one service, an echo server
 * on 127.0.0.1) and an exit, which is this file: it opens delivery IDs on
 * its link to B as an exit does (its ways), and runs the opener's end of
 * each stream with the real stream engine, its frames sealed as stream
 * records (srec.h) in CHAIN_DELIVER cells on a way; B's records come back
 * on the way they answer. The tests reach into B's delivery IDs
 * (client_int.h) to see their streams and size their windows by hand.
 * The world, the openers' ends and the echo server come from tnet.h.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <utlist.h>

#include "check_main.h"
#include "client/client.h"
#include "client/client_int.h"
#include "client/srec.h"
#include "tnet.h"
#include "lib/clock.h"

enum { BS = 0, B, EX, N_NODES };
#define N_WAYS   2
#define SVC_PORT 80

/* A delivery ID this file opened on its link to B. */
struct way {
    struct net *t;
    uint32_t id;
};

struct net {
    TNET_WORLD(struct net, N_NODES);
    struct client *cl; /* B's */
    struct way way[N_WAYS];
    struct tnet_ends ends;          /* the openers' ends of streams; end[].way indexes way[] */
    struct srec rec[TNET_MAX_ENDS]; /* each end's records */
    struct tnet_echo echo;          /* the service's target */
};

TNET_DEFINE(struct net)

/* ---- the exit's side: ways and the openers' ends ---- */

static struct link *ex_link(struct net *t)
{
    return tnet_link(t->n, EX, B);
}

/* tnet_ends' put: seal frame f of end e as a record and send it on its way. */
static int vs_put(struct tnet_ends *ends, struct tnet_end *e, const uint8_t *f, size_t len)
{
    struct net *t = ends->ctx;
    struct cell c = {.chain_id = t->way[e->way].id, .cmd = CELL_CHAIN_DELIVER};
    struct link *l = ex_link(t);

    if (!l || !c.chain_id)
        return OVL_ECLOSED;
    c.len = (uint16_t)srec_seal(&t->rec[e - ends->end], SREC_FWD, c.payload, f, len);
    return link_send(l, &c);
}

/* Open stream i to B's service on way k, writing total bytes. */
static void vs_open(struct net *t, unsigned k, unsigned i, uint32_t total)
{
    const struct dir_onion *keys;
    unsigned n_keys = 0;
    uint8_t sid[STREAM_SID], args[2];

    keys = dir_onion_keys(t->dir[B], &n_keys);
    ck_assert_uint_ge(n_keys, 1);
    ovl_random(sid, sizeof(sid));
    ck_assert_int_eq(srec_init(&t->rec[i], keys[0].pk, sid, clock_wall_ms()), 0);
    st_be16(args, SVC_PORT);
    tnet_end_open(&t->ends, &t->loop, i, k, total, sid, args, sizeof(args), SREC_FWD_MTU);
}

/* A record from B on a way: to its stream. */
static void way_cell(void *obj, struct link *l, const struct cell *c)
{
    struct net *t = ((struct way *)obj)->t;
    uint8_t buf[SREC_MAX];
    const uint8_t *sid, *f;
    size_t flen;
    bool open;
    int i;

    (void)l;
    if (c->cmd != CELL_CHAIN_DELIVER)
        return;
    ck_assert_int_eq(srec_peek(c->payload, c->len, &sid, &open), 0);
    i = tnet_end_find(&t->ends, sid);
    if (i < 0)
        ck_abort_msg("a record for a stream this end never opened");
    ck_assert_int_eq(srec_open(&t->rec[i], SREC_BACK, c->payload, c->len, buf, &f, &flen, NULL), 0);
    tnet_end_input(&t->ends, (unsigned)i, f, flen);
}

static void way_closed(void *obj, struct link *l, uint32_t id)
{
    (void)l, (void)id;
    ((struct way *)obj)->id = 0;
}

static const struct chain_owner way_owner = {.cell = way_cell, .link_closed = way_closed};

/* B's record of way k, once a cell on it reached B. */
static struct deliv *b_deliv(struct net *t, unsigned k)
{
    struct deliv *d;

    DL_FOREACH(t->cl->delivs, d)
    {
        if (d->id == t->way[k].id)
            return d;
    }
    return NULL;
}

/* ---- the network ---- */

static bool linked(struct net *t)
{
    return ex_link(t) != NULL;
}

static void net_setup(struct net *t)
{
    struct dir_bootstrap_spec bs;
    struct peer_spec peer;
    struct dir_opts dopts;
    struct client_opts co;
    struct client_service *sv;

    tnet_open(t);
    tnet_echo_start(&t->loop, &t->echo);
    t->ends.ctx = t;
    t->ends.put = vs_put;
    tnet_dir_opts(&dopts);
    tnet_boot(&t->loop, t->n, t->dir, &dopts, &bs, &peer);

    client_opts_defaults(&co);
    co.distinct_subnets = false; /* every node is 127.0.0.1 */
    sv = &co.services[co.n_services++];
    strcpy(sv->name, "echo");
    sv->port = SVC_PORT;
    sv->target.atyp = STA_NAME;
    sv->target.port = t->echo.port;
    strcpy(sv->target.name, "127.0.0.1");
    tnet_join(&t->loop, t->n, t->dir, B, ROLE_CLIENT, &dopts, &bs);
    ck_assert_int_eq(client_init(&t->n[B], &co, &t->cl), 0);
    tnet_start(t->n, B, &peer);

    tnet_client(t, EX, &dopts, &bs, &peer);
    ck_assert(run_until(t, tnet_all_registered, 10000));
    tnet_dial(t->n, EX, B);
    ck_assert(run_until(t, linked, 5000));
    for (unsigned k = 0; k < N_WAYS; k++) {
        t->way[k].t = t;
        ck_assert_int_eq(
            chanmap_alloc(&t->n[EX], ex_link(t), &way_owner, &t->way[k], &t->way[k].id), 0);
    }
}

static void net_teardown(struct net *t)
{
    tnet_ends_free(&t->ends);
    for (unsigned i = 0; i < TNET_MAX_ENDS; i++)
        srec_wipe(&t->rec[i]);
    client_stop(t->cl);
    tnet_echo_close(&t->echo);
    tnet_down(t);
    client_free(t->cl);
    tnet_release(t);
}

static unsigned want;

static bool n_closed(struct net *t)
{
    return tnet_ends_closed(&t->ends) >= want;
}

static bool n_opened(struct net *t)
{
    return tnet_ends_opened(&t->ends) >= want;
}

static bool got_want(struct net *t)
{
    return t->ends.end[0].got >= want;
}

/* The stream's records came on way 1 since: B moved it there. */
static bool moved(struct net *t)
{
    struct deliv *d0 = b_deliv(t, 0), *d1 = b_deliv(t, 1);

    return d1 && d1->n_streams == 1 && d1->svcs && d0->n_streams == 0 && !d0->svcs;
}

static bool none_active(struct net *t)
{
    return t->cl->st.service_streams_active == 0;
}

/* One stream, 100 KB both ways; a third of the way its records move to
 * another delivery ID, which becomes its way back: B's lists follow, and
 * nothing is lost or repeated. */
START_TEST(test_echo_moves)
{
    struct net *t = calloc(1, sizeof(*t));
    struct tnet_end *v = &t->ends.end[0];
    const uint32_t total = 100000;
    struct deliv *d0;

    net_setup(t);
    vs_open(t, 0, 0, total);
    want = total / 3;
    ck_assert(run_until(t, got_want, 20000));
    d0 = b_deliv(t, 0);
    ck_assert_ptr_nonnull(d0);
    ck_assert_ptr_null(b_deliv(t, 1));
    ck_assert_uint_eq(d0->n_streams, 1);
    ck_assert_ptr_nonnull(d0->svcs);

    v->way = 1; /* a new chain: the opener goes on from the last ack */
    stream_rewind(v->s);
    ck_assert(run_until(t, moved, 10000));
    want = 1;
    ck_assert(run_until(t, n_closed, 20000));
    ck_assert_uint_eq(v->reason, SR_DONE);
    ck_assert(v->opened && v->eof && !v->bad);
    ck_assert_uint_eq(v->got, total);
    ck_assert(run_until(t, none_active, 20000)); /* B's linger ends too */
    ck_assert_uint_eq(b_deliv(t, 1)->n_streams, 0);
    ck_assert_ptr_null(b_deliv(t, 1)->svcs);
    ck_assert_uint_eq(t->cl->st.service_streams_opened, 1);
    ck_assert_uint_eq(t->cl->st.service_records_bad, 0);
    net_teardown(t);
    free(t);
}
END_TEST

/* A way's window's wakes, as test_xstream's test_wake_turns for the exit.
 * Streams A, B and C on one way (with an idle fourth) and D on another
 * have echoes held back by windows with no room (set by hand); the exit
 * takes nothing more from them, so only room the test makes frees any.
 * Each round makes room for one frame and wakes the first way with a
 * record of its idle stream, given to svc_input directly: one stream
 * takes the room, and the next round's goes to another, A, B and C in
 * turn. The other way's window has room meanwhile, but its stream is not
 * pumped until its own way wakes. */
#define WAKE_ROOM   100
#define WAKE_DATA   1000
#define WAKE_ROUNDS 6
enum { W_A, W_B, W_C, W_IDLE, W_OTHER, W_N };

static size_t wake_base; /* what B's streams hold with no ring */

/* B took what the exit wrote, and holds the echoes in four send rings. */
static bool wake_ready(struct net *t)
{
    for (unsigned i = 0; i < W_N; i++)
        if (i != W_IDLE && t->ends.end[i].s->una < WAKE_DATA)
            return false;
    return (b_deliv(t, 0)->pool.flags & SPF_WAIT) && (b_deliv(t, 1)->pool.flags & SPF_WAIT) &&
           svc_bytes_held(t->cl) == wake_base + 4 * STREAM_WINDOW;
}

static bool captured(struct net *t)
{
    return t->ends.captured >= want;
}

/* Round k: room for one frame on x, a wake of x; returns who took it. */
static unsigned wake_round(struct net *t, struct deliv *x, struct deliv *y, unsigned k)
{
    uint8_t rec[SREC_MAX];
    size_t len;

    x->pool.cap += WAKE_ROOM;
    y->pool.cap = WAKE_ROOM; /* room only a wake of y may hand out */
    len = srec_seal(&t->rec[W_IDLE], SREC_FWD, rec, t->ends.grabbed, t->ends.grabbed_len);
    svc_input(t->cl, x, rec, len);
    ck_assert_uint_eq(x->pool.used, x->pool.cap); /* one stream took it all */
    ck_assert_uint_eq(y->pool.used, 0);
    y->pool.cap = 0;
    want = (k + 1) * WAKE_ROOM;
    ck_assert(run_until(t, captured, 10000));
    ck_assert_uint_eq(t->ends.n_log, k + 1); /* in one frame */
    return t->ends.log[k];
}

START_TEST(test_wake_turns)
{
    struct net *t = calloc(1, sizeof(*t));
    unsigned served[WAKE_ROUNDS];
    struct deliv *x, *y;

    net_setup(t);
    t->ends.no_fin = true;
    for (unsigned i = 0; i < W_N; i++)
        vs_open(t, i == W_OTHER, i, 0);
    want = W_N;
    ck_assert(run_until(t, n_opened, 10000));
    x = b_deliv(t, 0);
    y = b_deliv(t, 1);
    ck_assert_ptr_nonnull(x);
    ck_assert_ptr_nonnull(y);
    ck_assert_uint_eq(x->n_streams, 4);
    ck_assert_uint_eq(y->n_streams, 1);
    ck_assert_uint_eq(x->pool.used + y->pool.used, 0);
    x->pool.cap = y->pool.cap = 0; /* no room: what the target sends waits */
    wake_base = svc_bytes_held(t->cl);
    for (unsigned i = 0; i < W_N; i++) {
        if (i != W_IDLE) {
            t->ends.end[i].total = WAKE_DATA;
            tnet_end_write(&t->ends.end[i]);
        }
    }
    ck_assert(run_until(t, wake_ready, 10000));
    ck_assert_uint_eq(x->pool.used + y->pool.used, 0);

    t->ends.grab = &t->ends.end[W_IDLE]; /* the frame each round gives B */
    stream_rewind(t->ends.end[W_IDLE].s);
    ck_assert_ptr_null(t->ends.grab);
    for (unsigned i = 0; i < W_N; i++)
        t->ends.end[i].seen = t->ends.end[i].got;
    t->ends.capture = true;
    for (unsigned k = 0; k < WAKE_ROUNDS; k++) {
        served[k] = wake_round(t, x, y, k);
        ck_assert_uint_le(served[k], W_C);
        ck_assert(k < 3 || served[k] == served[k - 3]);
    }
    ck_assert(served[0] != served[1] && served[1] != served[2] && served[0] != served[2]);

    /* y's stream was waiting all along: its own way's wake serves it. */
    y->pool.cap = WAKE_ROOM;
    svc_tick(t->cl, clock_now_ms());
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

static Suite *svc_suite(void)
{
    TCase *tc;
    Suite *s = tnet_suite("svc", 60, &tc);

    tcase_add_test(tc, test_echo_moves);
    tcase_add_test(tc, test_wake_turns);
    return s;
}

OVL_CHECK_MAIN(svc_suite)
