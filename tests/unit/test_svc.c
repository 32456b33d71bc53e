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
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <utlist.h>

#include "chain/stream.h"
#include "check_main.h"
#include "client/client.h"
#include "client/client_int.h"
#include "client/srec.h"
#include "tnet.h"
#include "lib/clock.h"

enum { BS = 0, B, EX, N_NODES };
#define MAX_VS   8
#define MAX_ECHO 8
#define MAX_LOG  64
#define N_WAYS   2
#define SVC_PORT 80

struct net;

/* One stream as its opener (this file) holds it. */
struct vstream {
    struct net *t;
    struct stream *s;
    struct srec rec;
    unsigned way;          /* t->way it goes on */
    uint32_t total;        /* bytes to write, then FIN unless t->no_fin */
    uint32_t written, got; /* written into the stream; echoed bytes read back */
    uint64_t seen;         /* while t->capture: the end of the new bytes B sent */
    uint8_t sid[STREAM_SID];
    bool opened, eof, closed, bad;
    uint8_t reason;
};

/* A delivery ID this file opened on its link to B. */
struct way {
    struct net *t;
    uint32_t id;
};

struct echo_conn {
    uv_tcp_t tcp;
    uv_shutdown_t sh;
    bool used;
};

struct net {
    TNET_WORLD(struct net, N_NODES);
    struct client *cl; /* B's */
    struct way way[N_WAYS];
    struct vstream vs[MAX_VS];
    bool no_fin;           /* streams do not end once they wrote their total */
    bool capture;          /* records back are logged (vs[].seen), not taken */
    unsigned log[MAX_LOG]; /* while capture: the stream of each frame with new bytes */
    unsigned n_log;
    uint64_t captured;    /* new bytes logged */
    struct vstream *grab; /* its next frame goes to grabbed, not to B */
    uint8_t grabbed[STREAM_FRAME_MAX];
    size_t grabbed_len;

    uv_tcp_t srv; /* the service's target */
    uint16_t port;
    struct echo_conn echo[MAX_ECHO];
};

TNET_DEFINE(struct net)

/* ---- the target: an echo server ---- */

struct echo_wr {
    uv_write_t req;
    char *buf;
};

static void echo_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
    (void)h, (void)hint;
    b->base = malloc(65536);
    b->len = b->base ? 65536 : 0;
}

static void echo_wrote(uv_write_t *req, int status)
{
    struct echo_wr *w = (struct echo_wr *)req;

    (void)status;
    free(w->buf);
    free(w);
}

static void echo_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
    struct echo_conn *e = st->data;
    struct echo_wr *w;

    if (n > 0 && (w = malloc(sizeof(*w)))) {
        uv_buf_t ob = uv_buf_init(b->base, (unsigned)n);

        w->buf = b->base;
        ck_assert_int_eq(uv_write(&w->req, st, &ob, 1, echo_wrote), 0);
        return;
    }
    free(b->base);
    if (n == UV_EOF)
        (void)uv_shutdown(&e->sh, st, NULL); /* after the echoes queued before it */
}

static void echo_conn_cb(uv_stream_t *srv, int status)
{
    struct net *t = srv->loop->data;

    ck_assert_int_eq(status, 0);
    for (unsigned i = 0; i < MAX_ECHO; i++) {
        struct echo_conn *e = &t->echo[i];

        if (e->used)
            continue;
        e->used = true;
        uv_tcp_init(&t->loop, &e->tcp);
        e->tcp.data = e;
        ck_assert_int_eq(uv_accept(srv, (uv_stream_t *)&e->tcp), 0);
        ck_assert_int_eq(uv_read_start((uv_stream_t *)&e->tcp, echo_alloc, echo_read), 0);
        return;
    }
    ck_abort_msg("too many connections to the target");
}

static void echo_start(struct net *t)
{
    struct sockaddr_storage ss;
    struct sockaddr_in sa;
    int len = sizeof(ss);

    uv_ip4_addr("127.0.0.1", 0, &sa);
    uv_tcp_init(&t->loop, &t->srv);
    ck_assert_int_eq(uv_tcp_bind(&t->srv, (struct sockaddr *)&sa, 0), 0);
    ck_assert_int_eq(uv_listen((uv_stream_t *)&t->srv, 8, echo_conn_cb), 0);
    ck_assert_int_eq(uv_tcp_getsockname(&t->srv, (struct sockaddr *)&ss, &len), 0);
    t->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

/* ---- the exit's side: ways and the openers' ends ---- */

static struct link *ex_link(struct net *t)
{
    return tnet_link(t->n, EX, B);
}

static void vs_write(struct vstream *v)
{
    uint8_t *p;
    size_t n;

    while (v->written < v->total && (n = stream_wbuf(v->s, &p)) > 0) {
        if (n > v->total - v->written)
            n = v->total - v->written;
        for (size_t i = 0; i < n; i++)
            p[i] = (uint8_t)((v->written + i) * 7 + 1);
        v->written += (uint32_t)n;
        stream_wrote(v->s, n);
        if (!v->s)
            return;
    }
    if (v->written == v->total && !v->t->no_fin)
        stream_shutdown(v->s);
}

/* Seal frame f of v as a record and send it on way k. */
static int vs_put(struct vstream *v, unsigned k, const uint8_t *f, size_t len)
{
    struct net *t = v->t;
    struct cell c = {.chain_id = t->way[k].id, .cmd = CELL_CHAIN_DELIVER};
    struct link *l = ex_link(t);

    if (!l || !c.chain_id)
        return OVL_ECLOSED;
    c.len = (uint16_t)srec_seal(&v->rec, SREC_FWD, c.payload, f, len);
    return link_send(l, &c);
}

static int vs_send(struct stream *s, const uint8_t *f, size_t len)
{
    struct vstream *v = s->ctx;

    if (v->t->grab == v) {
        memcpy(v->t->grabbed, f, len);
        v->t->grabbed_len = len;
        v->t->grab = NULL;
        return 0;
    }
    return vs_put(v, v->way, f, len);
}

static void vs_event(struct stream *s, enum stream_event ev)
{
    struct vstream *v = s->ctx;
    const uint8_t *p;
    size_t n;

    switch (ev) {
    case SE_OPENED:
        v->opened = true;
        break;
    case SE_READABLE:
        while ((n = stream_rbuf(s, &p)) > 0) {
            for (size_t i = 0; i < n; i++)
                if (p[i] != (uint8_t)((v->got + i) * 7 + 1))
                    v->bad = true;
            v->got += (uint32_t)n;
            stream_consumed(s, n);
            if (v->closed)
                return;
        }
        v->eof = stream_eof(s);
        break;
    case SE_WRITABLE:
        vs_write(v);
        break;
    case SE_CLOSED:
        v->closed = true;
        v->reason = s->reason;
        stream_free(s);
        v->s = NULL;
        break;
    }
}

static const struct stream_ops vs_ops = {.send = vs_send, .event = vs_event};

/* Open stream i to B's service on way k, writing total bytes. */
static void vs_open(struct net *t, unsigned k, unsigned i, uint32_t total)
{
    struct vstream *v = &t->vs[i];
    const struct dir_onion *keys;
    unsigned n_keys = 0;
    uint8_t args[2];

    keys = dir_onion_keys(t->dir[B], &n_keys);
    ck_assert_uint_ge(n_keys, 1);
    memset(v, 0, sizeof(*v));
    v->t = t;
    v->way = k;
    v->total = total;
    ovl_random(v->sid, sizeof(v->sid));
    ck_assert_int_eq(srec_init(&v->rec, keys[0].pk, v->sid, clock_wall_ms()), 0);
    st_be16(args, SVC_PORT);
    ck_assert_int_eq(
        stream_new(&t->loop, &vs_ops, v, v->sid, args, sizeof(args), SREC_FWD_MTU, 30000, &v->s),
        0);
    vs_write(v);
    stream_pump(v->s);
}

/* While t->capture: log a frame of stream i that carries bytes past those
 * seen before; true when the frame is not to be taken (no ack goes back). */
static bool vs_capture(struct net *t, unsigned i, const uint8_t *f, size_t len)
{
    struct vstream *v = &t->vs[i];
    uint64_t end = ld_le64(f + 10) + (len - STREAM_HDR);

    if (!t->capture || (f[0] != SF_DATA && f[0] != SF_OPENED))
        return false;
    if (end > v->seen) {
        ck_assert_uint_lt(t->n_log, MAX_LOG);
        t->log[t->n_log++] = i;
        t->captured += end - v->seen;
        v->seen = end;
    }
    return true;
}

/* A record from B on a way: to its stream. */
static void way_cell(void *obj, struct link *l, const struct cell *c)
{
    struct net *t = ((struct way *)obj)->t;
    uint8_t buf[SREC_MAX];
    const uint8_t *sid, *f;
    size_t flen;
    bool open;

    (void)l;
    if (c->cmd != CELL_CHAIN_DELIVER)
        return;
    ck_assert_int_eq(srec_peek(c->payload, c->len, &sid, &open), 0);
    for (unsigned i = 0; i < MAX_VS; i++) {
        struct vstream *v = &t->vs[i];

        if (!v->t || memcmp(v->sid, sid, STREAM_SID) != 0)
            continue;
        ck_assert_int_eq(srec_open(&v->rec, SREC_BACK, c->payload, c->len, buf, &f, &flen, NULL),
                         0);
        ck_assert_uint_ge(flen, STREAM_HDR);
        if (v->s && !vs_capture(t, i, f, flen))
            ck_assert_int_eq(stream_input(v->s, f, flen), 0);
        return;
    }
    ck_abort_msg("a record for a stream this end never opened");
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
    echo_start(t);
    tnet_dir_opts(&dopts);
    tnet_boot(&t->loop, t->n, t->dir, &dopts, &bs, &peer);

    client_opts_defaults(&co);
    co.distinct_subnets = false; /* every node is 127.0.0.1 */
    sv = &co.services[co.n_services++];
    strcpy(sv->name, "echo");
    sv->port = SVC_PORT;
    sv->target.atyp = STA_NAME;
    sv->target.port = t->port;
    strcpy(sv->target.name, "127.0.0.1");
    tnet_join(&t->loop, t->n, t->dir, B, ROLE_CLIENT, &dopts, &bs);
    ck_assert_int_eq(client_init(&t->n[B], &co, &t->cl), 0);
    tnet_start(t->n, B, &peer);

    tnet_join(&t->loop, t->n, t->dir, EX, ROLE_CLIENT, &dopts, &bs);
    tnet_start(t->n, EX, &peer);
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
    for (unsigned i = 0; i < MAX_VS; i++) {
        stream_free(t->vs[i].s);
        srec_wipe(&t->vs[i].rec);
    }
    client_stop(t->cl);
    for (unsigned i = 0; i < MAX_ECHO; i++)
        if (t->echo[i].used)
            uv_close((uv_handle_t *)&t->echo[i].tcp, NULL);
    uv_close((uv_handle_t *)&t->srv, NULL);
    tnet_down(t);
    client_free(t->cl);
    tnet_free(t->n, t->dir, N_NODES);
}

static unsigned want;

static bool n_closed(struct net *t)
{
    unsigned n = 0;

    for (unsigned i = 0; i < MAX_VS; i++)
        n += t->vs[i].closed;
    return n >= want;
}

static bool n_opened(struct net *t)
{
    unsigned n = 0;

    for (unsigned i = 0; i < MAX_VS; i++)
        n += t->vs[i].opened;
    return n >= want;
}

static bool got_want(struct net *t)
{
    return t->vs[0].got >= want;
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
    struct vstream *v = &t->vs[0];
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
        if (i != W_IDLE && t->vs[i].s->una < WAKE_DATA)
            return false;
    return (b_deliv(t, 0)->pool.flags & SPF_WAIT) && (b_deliv(t, 1)->pool.flags & SPF_WAIT) &&
           svc_bytes_held(t->cl) == wake_base + 4 * STREAM_WINDOW;
}

static bool captured(struct net *t)
{
    return t->captured >= want;
}

/* Round k: room for one frame on x, a wake of x; returns who took it. */
static unsigned wake_round(struct net *t, struct deliv *x, struct deliv *y, unsigned k)
{
    struct vstream *idle = &t->vs[W_IDLE];
    uint8_t rec[SREC_MAX];
    size_t len;

    x->pool.cap += WAKE_ROOM;
    y->pool.cap = WAKE_ROOM; /* room only a wake of y may hand out */
    len = srec_seal(&idle->rec, SREC_FWD, rec, t->grabbed, t->grabbed_len);
    svc_input(t->cl, x, rec, len);
    ck_assert_uint_eq(x->pool.used, x->pool.cap); /* one stream took it all */
    ck_assert_uint_eq(y->pool.used, 0);
    y->pool.cap = 0;
    want = (k + 1) * WAKE_ROOM;
    ck_assert(run_until(t, captured, 10000));
    ck_assert_uint_eq(t->n_log, k + 1); /* in one frame */
    return t->log[k];
}

START_TEST(test_wake_turns)
{
    struct net *t = calloc(1, sizeof(*t));
    unsigned served[WAKE_ROUNDS];
    struct deliv *x, *y;

    net_setup(t);
    t->no_fin = true;
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
            t->vs[i].total = WAKE_DATA;
            vs_write(&t->vs[i]);
        }
    }
    ck_assert(run_until(t, wake_ready, 10000));
    ck_assert_uint_eq(x->pool.used + y->pool.used, 0);

    t->grab = &t->vs[W_IDLE]; /* the frame each round gives B */
    stream_rewind(t->vs[W_IDLE].s);
    ck_assert_ptr_null(t->grab);
    for (unsigned i = 0; i < W_N; i++)
        t->vs[i].seen = t->vs[i].got;
    t->capture = true;
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
    ck_assert_uint_eq(t->log[WAKE_ROUNDS], W_OTHER);
    t->capture = false;
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
