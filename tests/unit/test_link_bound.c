/* test_link_bound.c - links bound to a transport that protects their
 * frames (QUIC): the handshake mixes the transport's binding in (its TLS
 * exporter), cells travel unsealed, and anything that holds two
 * connections in between, a middlebox, makes the handshake fail.
 *
 * The middlebox is real: a listener of this test that dials B for every
 * connection it accepts and copies frames both ways, unchanged, so each
 * side of it has a TLS session (and an exporter) of its own. Over TCP the
 * same middlebox is only a forwarder of sealed frames, and the link opens
 * through it: that case shows the middlebox itself works.
 */
#include <check.h>
#include <inttypes.h>
#include <string.h>

#include "core/link.h"
#include "core/node_run.h"
#include "check_main.h"
#include "loopfix.h"

#define TEST_CMD 200 /* an unassigned command the test registers */
#define N_CELLS  300

struct mbox;

struct world {
    uv_loop_t loop;
    uv_timer_t deadline, poll;
    bool timed_out;
    bool (*done)(struct world *w);
    void (*pump)(struct world *w);
    struct node a, b;
    uint32_t got_a, got_b; /* TEST_CMD cells, each carrying its sequence number */
    bool order_ok;
    struct tp_env env; /* the middlebox's and the raw initiator's */
    struct ovl_log log;
};

LOOPFIX_DEFINE(struct world, 2)

static void on_test_cell(void *ctx, struct link *l, const struct cell *c)
{
    struct world *w = ctx;
    uint32_t *got = l->node == &w->a ? &w->got_a : &w->got_b, seq;

    memcpy(&seq, c->payload, sizeof(seq));
    if (seq != *got || c->len != 4 + seq % 1000)
        w->order_ok = false;
    (*got)++;
}

static void make_node(struct world *w, struct node *n)
{
    struct ovl_identity id;
    struct node_opts o;

    node_opts_defaults(&o);
    o.rekey_cells = 16; /* a sealed link ratchets often; a bound one never */
    ck_assert_int_eq(ovl_identity_generate(&id), 0);
    memset(n, 0, sizeof(*n));
    log_init(&n->log, "test", OVL_LOG_ERROR, false);
    ck_assert_int_eq(node_init(n, &w->loop, &o, &id, ROLE_RELAY), 0);
    ovl_identity_wipe(&id);
    ck_assert_int_eq(dispatch_register(&n->disp, TEST_CMD, on_test_cell, w), 0);
}

/* A and B, B listening on TCP ([0]) and QUIC ([1]). */
static void world_setup(struct world *w)
{
    static const char listen[2][OVL_URI_MAX] = {"tcp://127.0.0.1:0", "quic://127.0.0.1:0"};

    memset(w, 0, sizeof(*w));
    w->order_ok = true;
    ck_assert_int_eq(uv_loop_init(&w->loop), 0);
    loopfix_init(w);
    make_node(w, &w->a);
    make_node(w, &w->b);
    ck_assert_int_eq(node_start(&w->b, listen, 2, NULL, 0), 0);
    ck_assert_int_eq(node_start(&w->a, NULL, 0, NULL, 0), 0);
    log_init(&w->log, "mbox", OVL_LOG_ERROR, false);
    w->env.loop = &w->loop;
    w->env.log = &w->log;
    w->env.sendq_max = 1 << 20;
}

static void world_teardown(struct world *w)
{
    node_stop(&w->a);
    node_stop(&w->b);
    loopfix_close(w);
    uv_run(&w->loop, UV_RUN_DEFAULT);
    ck_assert_uint_eq(w->a.n_links + w->b.n_links, 0);
    ck_assert_int_eq(uv_loop_close(&w->loop), 0);
    node_free(&w->a);
    node_free(&w->b);
}

static struct link *open_link(struct node *n)
{
    for (struct link *l = n->links; l; l = l->next)
        if (l->state == LINK_OPEN)
            return l;
    return NULL;
}

static bool both_open(struct world *w)
{
    return open_link(&w->a) && open_link(&w->b);
}

static void send_seq(struct link *l, uint32_t count)
{
    for (uint32_t i = 0; i < count; i++) {
        struct cell c = {.cmd = TEST_CMD, .len = (uint16_t)(4 + i % 1000)};

        memcpy(c.payload, &i, 4);
        memset(c.payload + 4, (int)(i & 0xff), c.len - 4);
        ck_assert_int_eq(link_send(l, &c), 0);
    }
}

static bool all_cells(struct world *w)
{
    return w->got_a >= N_CELLS && w->got_b >= N_CELLS;
}

/* ---- the middlebox ------------------------------------------------------- */

struct mbox {
    struct world *w;
    struct tp_listener *lst;
    char uri[OVL_URI_MAX];    /* where A dials it */
    char target[OVL_URI_MAX]; /* B's listener it dials */
    struct transport *in, *out;
    uint64_t copied; /* frames copied either way */
};

static void mb_frame(struct transport *t, const uint8_t *frame, size_t len)
{
    struct mbox *m = t->udata;
    struct transport *to = t == m->in ? m->out : m->in;

    if (to && !tp_is_closing(to) && tp_send(to, frame, len) == 0)
        m->copied++;
}

static void mb_closed(struct transport *t, int err)
{
    struct mbox *m = t->udata;
    struct transport *other = t == m->in ? m->out : m->in;

    (void)err;
    if (t == m->in)
        m->in = NULL;
    else
        m->out = NULL;
    if (other && !tp_is_closing(other))
        tp_close(other);
}

static const struct tp_cb mb_cb = {.frame = mb_frame, .closed = mb_closed};

static void mb_accept(struct tp_listener *l, struct transport *t)
{
    struct mbox *m = l->udata;

    if (m->in) { /* one connection at a time is all this test needs */
        tp_close(t);
        return;
    }
    tp_set_cb(t, &mb_cb, m);
    m->in = t;
    ck_assert_int_eq(tp_dial(&m->w->env, m->target, &mb_cb, m, &m->out), 0);
}

static const struct tp_listen_cb mb_lcb = {.accept = mb_accept};

/* Listen on scheme in_sch; dial B's listener of scheme out_sch. */
static void mbox_start(struct mbox *m, struct world *w, const char *in_sch, const char *out_sch)
{
    char uri[OVL_URI_MAX];

    memset(m, 0, sizeof(*m));
    m->w = w;
    snprintf(uri, sizeof(uri), "%s://127.0.0.1:0", in_sch);
    ck_assert_int_eq(tp_listen(&w->env, uri, &mb_lcb, m, &m->lst), 0);
    ck_assert_int_eq(tp_listener_uri(m->lst, m->uri, sizeof(m->uri)), 0);
    snprintf(m->target, sizeof(m->target), "%s", w->b.listen_uri[strcmp(out_sch, "quic") == 0]);
    ck_assert_int_eq(strncmp(m->target, out_sch, strlen(out_sch)), 0);
}

static void mbox_stop(struct mbox *m)
{
    if (m->in)
        tp_close(m->in);
    if (m->out)
        tp_close(m->out);
    tp_listener_close(m->lst);
}

/* ---- links through a middlebox, or not ------------------------------------ */

static const struct {
    const char *name;
    const char *in, *out; /* the middlebox's schemes, or NULL: A dials B's out */
    bool opens, bound;
} path_cases[] = {
    {"quic", NULL, "quic", true, true},
    {"tcp", NULL, "tcp", true, false},
    {"tcp through a forwarder", "tcp", "tcp", true, false},
    {"quic through a middlebox", "quic", "quic", false, false},
    {"quic to a middlebox, tcp on", "quic", "tcp", false, false},
    {"tcp to a middlebox, quic on", "tcp", "quic", false, false},
};

static bool refused(struct world *w)
{
    return w->b.ctr.link_closed[LC_HS_AUTH] > 0 && w->a.n_links == 0 && w->b.n_links == 0;
}

/* A dials B's identity: straight to B, or through the middlebox. A
 * middlebox that holds two connections, at least one of them bound, makes
 * B's handshake fail (hs_auth: message 1 was made under another binding);
 * a bound link carries its cells in order, unsealed, never ratcheting. */
START_TEST(test_paths)
{
    const char *in = path_cases[_i].in, *out = path_cases[_i].out;
    struct world w;
    struct mbox m;
    struct link *l;

    world_setup(&w);
    if (in)
        mbox_start(&m, &w, in, out);
    ck_assert_int_eq(
        link_dial(&w.a, in ? m.uri : w.b.listen_uri[strcmp(out, "quic") == 0], w.b.id.pk, NULL, &l),
        0);
    if (!path_cases[_i].opens) {
        ck_assert_msg(run_until(&w, refused, 10000), "%s: not refused", path_cases[_i].name);
        ck_assert_uint_ge(m.copied, 1); /* message 1 went through */
        ck_assert_uint_eq(w.a.ctr.handshakes_ok + w.b.ctr.handshakes_ok, 0);
        ck_assert_uint_ge(w.a.ctr.handshakes_failed, 1);
        ck_assert_uint_ge(w.b.ctr.handshakes_failed, 1);
        goto out;
    }
    ck_assert_msg(run_until(&w, both_open, 10000), "%s: not open", path_cases[_i].name);
    for (int side = 0; side < 2; side++) {
        l = open_link(side ? &w.b : &w.a);
        ck_assert_uint_eq((l->flags & LINK_F_BOUND) != 0, path_cases[_i].bound);
        ck_assert_str_eq(link_cipher_name(l),
                         path_cases[_i].bound ? "bound" : ovl_aead_name(l->suite));
    }
    send_seq(open_link(&w.a), N_CELLS);
    send_seq(open_link(&w.b), N_CELLS);
    ck_assert(run_until(&w, all_cells, 10000));
    ck_assert(w.order_ok);
    l = open_link(&w.a);
    if (path_cases[_i].bound) {
        /* Every cell frame FRAME_BOUND_LEN: message 1 and the rest. */
        ck_assert_uint_eq(l->tp->stats.bytes_out, HS_INIT_LEN + l->cells_out * FRAME_BOUND_LEN);
        ck_assert_uint_eq(w.a.ctr.rekeys + w.b.ctr.rekeys, 0);
    } else {
        ck_assert_uint_eq(l->tp->stats.bytes_out, HS_INIT_LEN + l->cells_out * FRAME_CELL_LEN);
        ck_assert_uint_gt(w.a.ctr.rekeys, 0);
    }
out:
    if (in)
        mbox_stop(&m);
    world_teardown(&w);
}
END_TEST

/* ---- an initiator written by hand ----------------------------------------- */

/* What the hand-made initiator sends after message 2. */
enum raw_hello {
    HELLO_GOOD = 0,     /* HELLO carrying the confirmation */
    HELLO_FLIPPED,      /* one bit of it changed */
    HELLO_EMPTY,        /* HELLO with an empty payload, as a sealed link's */
    HELLO_PING,         /* a PING instead */
    HELLO_SEALED,       /* a sealed FRAME_CELL HELLO under the keys */
    HELLO_GOOD_UNBOUND, /* never bound: message 1 cannot be read */
};

static const struct {
    enum raw_hello hello;
    enum link_close_reason reason; /* B's, or LC_NONE: B opens the link */
} raw_cases[] = {
    {HELLO_GOOD, LC_NONE},           {HELLO_FLIPPED, LC_HS_AUTH},  {HELLO_EMPTY, LC_HS_AUTH},
    {HELLO_PING, LC_HS_UNCONFIRMED}, {HELLO_SEALED, LC_BAD_FRAME}, {HELLO_GOOD_UNBOUND, LC_HS_AUTH},
};

struct raw_ini {
    struct world *w;
    struct transport *t;
    struct handshake hs;
    struct ovl_identity id;
    enum raw_hello hello;
    bool closed;
};

static void raw_connected(struct transport *t)
{
    struct raw_ini *r = t->udata;
    uint8_t x[TP_BINDING_LEN], m1[HS_INIT_LEN];

    ck_assert_int_eq(hs_start_initiator(&r->hs, &r->id, r->w->b.id.pk, OVL_AEAD_ALL), 0);
    if (r->hello != HELLO_GOOD_UNBOUND) {
        ck_assert_int_eq(tp_binding(t, x), 0);
        ck_assert_int_eq(hs_bind(&r->hs, x), 0);
    }
    ck_assert_int_eq(hs_write_init(&r->hs, m1), 0);
    ck_assert_int_eq(tp_send(t, m1, sizeof(m1)), 0);
}

/* Message 2 arrived: send the first cell as the case says. */
static void raw_frame(struct transport *t, const uint8_t *frame, size_t len)
{
    struct raw_ini *r = t->udata;
    struct cell c = {.cmd = CELL_HELLO};
    uint8_t f[FRAME_CELL_LEN];
    struct ovl_aead a;
    struct hs_keys k;

    if (r->hs.state != HS_WAIT_RESP)
        return; /* B said something after opening: nothing to check */
    ck_assert_int_eq(hs_read_resp(&r->hs, frame, len, &k), 0);
    ck_assert_uint_eq(k.flags, HS_F_BOUND);
    if (r->hello == HELLO_GOOD || r->hello == HELLO_FLIPPED) {
        c.len = HS_CONFIRM_LEN;
        memcpy(c.payload, k.confirm, HS_CONFIRM_LEN);
        c.payload[7] ^= r->hello == HELLO_FLIPPED ? 0x10 : 0;
    } else if (r->hello == HELLO_PING) {
        c.cmd = CELL_PING;
    }
    if (r->hello == HELLO_SEALED) {
        ck_assert_int_eq(ovl_aead_init(&a, k.suite, k.tx), 0);
        ck_assert_int_eq(cell_encode(f + FRAME_CELL_AD, &c), 0);
        ck_assert_int_eq(frame_seal(f, &a, 0, f + FRAME_CELL_AD), 0);
        ovl_aead_wipe(&a);
        ck_assert_int_eq(tp_send(t, f, FRAME_CELL_LEN), 0);
    } else {
        f[0] = FRAME_CELL_BOUND;
        ck_assert_int_eq(cell_encode(f + 1, &c), 0);
        ck_assert_int_eq(tp_send(t, f, FRAME_BOUND_LEN), 0);
    }
    hs_keys_wipe(&k);
}

static void raw_closed(struct transport *t, int err)
{
    struct raw_ini *r = t->udata;

    (void)err;
    r->closed = true;
    r->t = NULL;
}

static const struct tp_cb raw_cb = {
    .connected = raw_connected, .frame = raw_frame, .closed = raw_closed};

static struct raw_ini *raw_now;
static enum link_close_reason raw_want;

static bool raw_settled(struct world *w)
{
    if (raw_want == LC_NONE)
        return open_link(&w->b) != NULL;
    return w->b.ctr.link_closed[raw_want] > 0 && raw_now->closed;
}

/* A bound responder opens only on a HELLO that carries the confirmation
 * of the initiator's keys, unsealed: the binding alone proves nothing
 * about who holds them (someone with B's key could write message 1). */
START_TEST(test_confirm)
{
    struct world w;
    struct raw_ini r;

    world_setup(&w);
    memset(&r, 0, sizeof(r));
    r.w = &w;
    r.hello = raw_cases[_i].hello;
    raw_now = &r;
    raw_want = raw_cases[_i].reason;
    ck_assert_int_eq(ovl_identity_generate(&r.id), 0);
    ck_assert_int_eq(tp_dial(&w.env, w.b.listen_uri[1], &raw_cb, &r, &r.t), 0);
    ck_assert_msg(run_until(&w, raw_settled, 10000), "case %d: B neither opened nor closed", _i);
    if (raw_want == LC_NONE) {
        struct link *l = open_link(&w.b);

        ck_assert(l->flags & LINK_F_BOUND);
        ck_assert_mem_eq(l->peer_pk, r.id.pk, OVL_ED25519_PK);
        ck_assert_uint_eq(w.b.ctr.handshakes_ok, 1);
    } else {
        ck_assert_uint_eq(w.b.ctr.handshakes_ok, 0);
        ck_assert_uint_eq(w.b.ctr.handshakes_failed, 1);
    }
    if (r.t)
        tp_close(r.t);
    hs_wipe(&r.hs);
    ovl_identity_wipe(&r.id);
    world_teardown(&w);
}
END_TEST

static Suite *link_bound_suite(void)
{
    Suite *s = suite_create("link_bound");
    TCase *tc = tcase_create("core");

    tcase_set_timeout(tc, 30);
    tcase_add_loop_test(tc, test_paths, 0, (int)(sizeof(path_cases) / sizeof(path_cases[0])));
    tcase_add_loop_test(tc, test_confirm, 0, (int)(sizeof(raw_cases) / sizeof(raw_cases[0])));
    suite_add_tcase(s, tc);
    return s;
}

OVL_CHECK_MAIN(link_bound_suite)
