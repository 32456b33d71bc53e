/* test_intro.c - the introduction relay (src/chain/intro.c), on one loop
 * over loopback TCP.
 *
 * Five nodes: a bootstrap, the introduction relay I, a hidden node H, an
 * exit X and a node Y that plays a second exit or a second hidden node,
 * on a link of its own. H, X and Y are this file. H (and Y) open one-hop
 * chains to I with onion.h, send INTRO_ESTABLISH and INTRO_BACK bodies on
 * them and read what comes back; X (and Y) own delivery IDs on their own
 * links to I, send chain_intro and chain_deliver on them and record what
 * I sends there. The world, the chains and the bodies they read come from
 * tnet.h.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "tnet.h"
#include "dir/idesc.h"
#include "lib/clock.h"

enum { BS = 0, IR, HN, XN, YN, N_NODES };
#define N_CHAINS 4
#define MAX_XIDS (RELAY_MAX_INTRO_DELIVS + 4)

/* One delivery ID of X's (or Y's) on its link to I. */
struct xdeliv {
    struct net *t;
    unsigned node; /* XN or YN */
    uint32_t id;
    unsigned n_cells, n_destroy;
    uint8_t destroy_reason;
    uint16_t len; /* of the last chain_deliver */
    uint8_t data[OVL_CELL_PAYLOAD];
};

struct net {
    TNET_WORLD(struct net, N_NODES);
    struct tnet_chain ch[N_CHAINS]; /* H's one-hop chains to I */
    struct xdeliv xd[MAX_XIDS];
    unsigned wait_k, wait_n; /* what the waits below look for */
    /* The pause tests: cells each node sent while it could, the two nodes
     * whose links to I are to be held, INTRO_DELIVER bodies H took. */
    uint64_t sent[N_NODES];
    bool blocked[N_NODES]; /* its link to I was full as a poll began */
    unsigned held[2];
    uint8_t handle[2][BODY_HANDLE]; /* of deliveries 0 and 1 */
    uint64_t h_got;
    uint64_t base_cells, base_full; /* I's cells passed and queue_full drops before */
};

TNET_DEFINE(struct net)

/* ---- H: the hidden node's chains ---- */

static struct link *h_link(struct net *t)
{
    return tnet_link(t->n, HN, IR);
}

/* Open a one-hop chain from H to I as H's chain k. */
static void chain_open(struct net *t, unsigned k)
{
    tnet_chain_open(t, &t->ch[k], HN, IR);
}

/* Open chain k from Y to I instead: Y plays a second hidden node. */
static void chain_open_y(struct net *t, unsigned k)
{
    tnet_chain_open(t, &t->ch[k], YN, IR);
}

/* End H's chain k (DESTROY), as a hidden node that gives it up. */
static void chain_close(struct net *t, unsigned k)
{
    tnet_chain_close(&t->ch[k]);
}

/* Send a forward body (cmd, args of alen bytes) on H's chain k. */
static void h_send(struct net *t, unsigned k, uint8_t cmd, const uint8_t *args, size_t alen)
{
    ck_assert_int_eq(tnet_chain_send(&t->ch[k], cmd, args, alen), 0);
}

/* Wait for the next body on H's chain k (after n bodies) and return it. */
static const struct tnet_body *h_wait(struct net *t, unsigned k, unsigned n)
{
    return tnet_chain_wait(t, &t->ch[k], n, 5000);
}

/* The arguments of an INTRO_ESTABLISH for cookie, expiring at exp, signed
 * by H for relay_pk. */
static void est_args(struct net *t, uint8_t a[BODY_INTRO_EST_LEN], const uint8_t *cookie,
                     const uint8_t *relay_pk, uint64_t exp)
{
    tnet_intro_est(a, &t->n[HN].id, cookie, relay_pk, exp);
}

/* Send INTRO_ESTABLISH args on chain k and return I's answer. */
static const struct tnet_body *establish_raw(struct net *t, unsigned k, const uint8_t *a)
{
    unsigned n = t->ch[k].n_bodies;

    h_send(t, k, BODY_INTRO_ESTABLISH, a, BODY_INTRO_EST_LEN);
    return h_wait(t, k, n);
}

/* Establish cookie on chain k for I, good for ten minutes, signed by node
 * (the one whose chain k is); I's answer. */
static const struct tnet_body *establish_as(struct net *t, unsigned k, unsigned node,
                                            const uint8_t *cookie)
{
    uint8_t a[BODY_INTRO_EST_LEN];

    tnet_intro_est(a, &t->n[node].id, cookie, t->n[IR].id.pk, clock_wall_ms() + 600000);
    return establish_raw(t, k, a);
}

/* Establish cookie on H's chain k, as establish_as. */
static const struct tnet_body *establish(struct net *t, unsigned k, const uint8_t *cookie)
{
    return establish_as(t, k, HN, cookie);
}

static void assert_ok(const struct tnet_body *b, const uint8_t *cookie)
{
    ck_assert_uint_eq(b->cmd, BODY_INTRO_OK);
    ck_assert_uint_eq(b->len, BODY_COOKIE);
    ck_assert_mem_eq(b->args, cookie, BODY_COOKIE);
}

static void assert_fail(const struct tnet_body *b, const uint8_t *cookie, uint8_t reason)
{
    ck_assert_uint_eq(b->cmd, BODY_INTRO_FAIL);
    ck_assert_uint_eq(b->len, BODY_COOKIE + 1);
    ck_assert_mem_eq(b->args, cookie, BODY_COOKIE);
    ck_assert_uint_eq(b->args[BODY_COOKIE], reason);
}

/* Send INTRO_BACK(handle, data of len bytes) on chain k. */
static void h_back(struct net *t, unsigned k, const uint8_t *handle, const uint8_t *data,
                   size_t len)
{
    uint8_t a[BODY_HANDLE + BODY_DATA_MAX + 1];

    ck_assert_uint_le(len, sizeof(a) - BODY_HANDLE);
    memcpy(a, handle, BODY_HANDLE);
    memcpy(a + BODY_HANDLE, data, len);
    h_send(t, k, BODY_INTRO_BACK, a, BODY_HANDLE + len);
}

/* ---- X: an exit's delivery IDs on its link to I ---- */

static void x_cell(void *obj, struct link *l, const struct cell *c)
{
    struct xdeliv *xd = obj;

    if (c->cmd == CELL_CHAIN_DELIVER) {
        xd->n_cells++;
        xd->len = c->len;
        memcpy(xd->data, c->payload, c->len);
    } else if (c->cmd == CELL_CHAIN_DESTROY) {
        xd->n_destroy++;
        xd->destroy_reason = c->len ? c->payload[0] : 0;
        chanmap_del(&xd->t->n[xd->node], l, xd->id); /* I forgot it */
    }
}

static void x_closed(void *obj, struct link *l, uint32_t id)
{
    (void)l, (void)id;
    ((struct xdeliv *)obj)->id = 0;
}

static const struct chain_owner x_owner = {.cell = x_cell, .link_closed = x_closed};

static struct link *x_link(struct net *t)
{
    return tnet_link(t->n, XN, IR);
}

/* Open delivery j from node (XN or YN): a fresh ID on its link to I and
 * chain_intro with the first len bytes of cookie. */
static void d_open(struct net *t, unsigned node, unsigned j, const uint8_t *cookie, uint16_t len)
{
    struct xdeliv *xd = &t->xd[j];
    struct link *l = tnet_link(t->n, node, IR);
    struct cell c = {.cmd = CELL_CHAIN_INTRO, .len = len};

    memset(xd, 0, sizeof(*xd));
    xd->t = t;
    xd->node = node;
    ck_assert_int_eq(chanmap_alloc(&t->n[node], l, &x_owner, xd, &xd->id), 0);
    c.chain_id = xd->id;
    memcpy(c.payload, cookie, len);
    ck_assert_int_eq(link_send(l, &c), 0);
}

/* Open X's delivery j, as d_open. */
static void x_open(struct net *t, unsigned j, const uint8_t *cookie, uint16_t len)
{
    d_open(t, XN, j, cookie, len);
}

/* Send a cell of cmd with len bytes of data on delivery j, from its node. */
static void x_send(struct net *t, unsigned j, uint8_t cmd, const uint8_t *data, uint16_t len)
{
    struct cell c = {.chain_id = t->xd[j].id, .cmd = cmd, .len = len};

    if (len)
        memcpy(c.payload, data, len);
    ck_assert_int_eq(link_send(tnet_link(t->n, t->xd[j].node, IR), &c), 0);
}

static bool x_got_cells(struct net *t)
{
    return t->xd[t->wait_k].n_cells >= t->wait_n;
}

static bool x_got_destroy(struct net *t)
{
    return t->xd[t->wait_k].n_destroy >= 1;
}

static void x_wait_destroy(struct net *t, unsigned j)
{
    t->wait_k = j;
    ck_assert(run_until(t, x_got_destroy, 5000));
}

/* ---- the network ---- */

static bool linked(struct net *t)
{
    return h_link(t) && x_link(t) && tnet_link(t->n, YN, IR);
}

/* Make I a relay with relay options ro whose links queue at most
 * sendq_max bytes each (0: the default), and start it. */
static void ir_start(struct net *t, const struct dir_opts *dopts,
                     const struct dir_bootstrap_spec *bs, const struct peer_spec *peer,
                     const struct relay_opts *ro, size_t sendq_max)
{
    struct node_opts o;
    struct ovl_identity id;

    node_opts_defaults(&o);
    if (sendq_max)
        o.sendq_max = sendq_max;
    ck_assert_int_eq(ovl_identity_generate(&id), 0);
    log_init(&t->n[IR].log, "test", OVL_LOG_ERROR, false);
    ck_assert_int_eq(node_init(&t->n[IR], &t->loop, &o, &id, ROLE_RELAY), 0);
    ovl_identity_wipe(&id);
    ck_assert_int_eq(dir_init(&t->n[IR], dopts, bs, 1, &t->dir[IR]), 0);
    ck_assert_int_eq(relay_init(&t->n[IR], ro, &t->relay[IR]), 0);
    tnet_start(t->n, IR, peer);
}

/* Bring the world up with I on relay options ro (NULL: the defaults) and
 * I's send queues of sendq_max bytes (0: the default); link H, X and Y
 * to I. */
static void net_setup_with(struct net *t, const struct relay_opts *ro, size_t sendq_max)
{
    struct dir_bootstrap_spec bs;
    struct peer_spec peer;
    struct dir_opts dopts;
    struct relay_opts defaults;

    tnet_open(t);
    tnet_dir_opts(&dopts);
    relay_opts_defaults(&defaults);
    tnet_boot(&t->loop, t->n, t->dir, &dopts, &bs, &peer);
    ir_start(t, &dopts, &bs, &peer, ro ? ro : &defaults, sendq_max);
    for (unsigned i = HN; i <= YN; i++)
        tnet_client(t, i, &dopts, &bs, &peer);
    ck_assert(run_until(t, tnet_all_registered, 10000));
    for (unsigned i = HN; i <= YN; i++)
        tnet_dial(t->n, i, IR);
    ck_assert(run_until(t, linked, 5000));
}

static void net_setup(struct net *t)
{
    net_setup_with(t, NULL, 0);
}

static void net_teardown(struct net *t)
{
    tnet_down(t);
    tnet_release(t);
    tnet_chain_wipe(t->ch, N_CHAINS);
}

static struct relay_stats rstats(struct net *t)
{
    return tnet_rstats(t->relay[IR]);
}

static bool no_intros(struct net *t)
{
    struct relay_stats st = rstats(t);

    return st.intros_active == 0 && st.intro_delivs_active == 0;
}

static bool delivs_are(struct net *t)
{
    return rstats(t).intro_delivs_active == t->wait_n;
}

static bool unknown_is(struct net *t)
{
    return rstats(t).intro_unknown >= t->wait_n;
}

static bool bad_cells_are(struct net *t)
{
    return rstats(t).dropped[RD_BAD_CELL] >= t->wait_n;
}

/* Wait until I counted n bad cells in all. */
static void wait_bad(struct net *t, uint64_t n)
{
    t->wait_n = (unsigned)n;
    ck_assert(run_until(t, bad_cells_are, 5000));
}

static void wait_delivs(struct net *t, unsigned n)
{
    t->wait_n = n;
    ck_assert(run_until(t, delivs_are, 5000));
}

static void cookie_of(uint8_t cookie[BODY_COOKIE], uint8_t v)
{
    memset(cookie, v, BODY_COOKIE);
}

/* ---- tests ---- */

/* INTRO_OK comes back with the cookie; the chain's end forgets it. */
START_TEST(test_establish)
{
    struct net *t = calloc(1, sizeof(*t));
    uint8_t cookie[BODY_COOKIE];
    struct relay_stats st;

    net_setup(t);
    chain_open(t, 0);
    ovl_random(cookie, sizeof(cookie));
    assert_ok(establish(t, 0, cookie), cookie);
    st = rstats(t);
    ck_assert_uint_eq(st.intros_active, 1);
    ck_assert_uint_eq(st.intros_established, 1);
    ck_assert_uint_eq(st.intro_delivs_active, 0);
    ck_assert_uint_gt(st.bytes_held, 0);
    chain_close(t, 0);
    ck_assert(run_until(t, no_intros, 5000));
    ck_assert_uint_eq(rstats(t).chains, 0);
    net_teardown(t);
    free(t);
}
END_TEST

/* Each refusal with its reason and its counter. */
START_TEST(test_refusals)
{
    struct net *t = calloc(1, sizeof(*t));
    uint8_t a[BODY_INTRO_EST_LEN], ca[BODY_COOKIE], cb[BODY_COOKIE], zero[BODY_COOKIE];
    uint64_t now = clock_wall_ms();
    struct relay_stats st;

    net_setup(t);
    for (unsigned k = 0; k < N_CHAINS; k++)
        chain_open(t, k);
    cookie_of(ca, 0xa1);
    cookie_of(cb, 0xb2);
    memset(zero, 0, sizeof(zero));

    /* protocol: a signature that does not verify, one made for another
     * relay, a zero cookie */
    est_args(t, a, ca, t->n[IR].id.pk, now + 600000);
    a[BODY_INTRO_SIG + 5] ^= 1;
    assert_fail(establish_raw(t, 0, a), ca, INTRO_R_PROTOCOL);
    est_args(t, a, ca, t->n[XN].id.pk, now + 600000);
    assert_fail(establish_raw(t, 0, a), ca, INTRO_R_PROTOCOL);
    assert_fail(establish(t, 0, zero), zero, INTRO_R_PROTOCOL);
    /* expired: in the past, or further ahead than an inbound descriptor lives */
    est_args(t, a, ca, t->n[IR].id.pk, now - 1000);
    assert_fail(establish_raw(t, 0, a), ca, INTRO_R_EXPIRED);
    est_args(t, a, ca, t->n[IR].id.pk, now + IDESC_MAX_LIFE_MS + 60000);
    assert_fail(establish_raw(t, 0, a), ca, INTRO_R_EXPIRED);
    /* taken on chain 0; busy on chain 1 and on chain 0 again; a second
     * cookie on chain 0 is over its one */
    assert_ok(establish(t, 0, ca), ca);
    assert_fail(establish(t, 1, ca), ca, INTRO_R_BUSY);
    assert_fail(establish(t, 0, ca), ca, INTRO_R_BUSY);
    assert_fail(establish(t, 0, cb), cb, INTRO_R_LIMIT);
    st = rstats(t);
    ck_assert_uint_eq(st.intros_refused_protocol, 3);
    ck_assert_uint_eq(st.intros_refused_expired, 2);
    ck_assert_uint_eq(st.intros_refused_busy, 2);
    ck_assert_uint_eq(st.intros_refused_limit, 1);
    ck_assert_uint_eq(st.intros_established, 1);
    ck_assert_uint_eq(st.intros_active, 1);

    /* chain 2: four bad signatures use up its checks; a good one is then
     * refused without being checked */
    est_args(t, a, cb, t->n[IR].id.pk, now + 600000);
    a[BODY_INTRO_SIG] ^= 0x80;
    for (int i = 0; i < 4; i++)
        assert_fail(establish_raw(t, 2, a), cb, INTRO_R_PROTOCOL);
    assert_fail(establish(t, 2, cb), cb, INTRO_R_LIMIT);
    st = rstats(t);
    ck_assert_uint_eq(st.intros_refused_protocol, 7);
    ck_assert_uint_eq(st.intros_refused_limit, 2);
    ck_assert_uint_eq(st.intros_active, 1);
    /* chain 1 may still take a cookie of its own */
    assert_ok(establish(t, 1, cb), cb);
    ck_assert_uint_eq(rstats(t).intros_active, 2);
    net_teardown(t);
    free(t);
}
END_TEST

/* Cells both ways between X's deliveries and H's chain, named by their
 * handles; a wrong handle is dropped; X's DESTROY forgets a delivery,
 * H's chain ending ends the rest. */
START_TEST(test_deliver)
{
    struct net *t = calloc(1, sizeof(*t));
    uint8_t cookie[BODY_COOKIE], data[BODY_DATA_MAX], h0[BODY_HANDLE], h1[BODY_HANDLE];
    const struct tnet_body *b;
    struct relay_stats st;

    net_setup(t);
    chain_open(t, 0);
    chain_open(t, 1);
    ovl_random(cookie, sizeof(cookie));
    assert_ok(establish(t, 0, cookie), cookie);
    for (unsigned i = 0; i < sizeof(data); i++)
        data[i] = (uint8_t)(i * 13 + 7);

    /* X -> H: a full cell and an empty one on delivery 0, one on delivery 1 */
    x_open(t, 0, cookie, BODY_COOKIE);
    x_send(t, 0, CELL_CHAIN_DELIVER, data, BODY_DATA_MAX);
    b = h_wait(t, 0, 1);
    ck_assert_uint_eq(b->cmd, BODY_INTRO_DELIVER);
    ck_assert_uint_eq(b->len, BODY_HANDLE + BODY_DATA_MAX);
    ck_assert_mem_eq(b->args + BODY_HANDLE, data, BODY_DATA_MAX);
    memcpy(h0, b->args, BODY_HANDLE);
    x_send(t, 0, CELL_CHAIN_DELIVER, data, 0);
    b = h_wait(t, 0, 2);
    ck_assert_uint_eq(b->cmd, BODY_INTRO_DELIVER);
    ck_assert_uint_eq(b->len, BODY_HANDLE);
    ck_assert_mem_eq(b->args, h0, BODY_HANDLE);
    x_open(t, 1, cookie, BODY_COOKIE);
    x_send(t, 1, CELL_CHAIN_DELIVER, data + 1, 100);
    b = h_wait(t, 0, 3);
    ck_assert_uint_eq(b->cmd, BODY_INTRO_DELIVER);
    ck_assert_uint_eq(b->len, BODY_HANDLE + 100);
    ck_assert_mem_eq(b->args + BODY_HANDLE, data + 1, 100);
    memcpy(h1, b->args, BODY_HANDLE);
    ck_assert(memcmp(h0, h1, BODY_HANDLE) != 0);

    /* H -> X: each handle to its own delivery, on the same ID */
    h_back(t, 0, h0, data + 2, BODY_DATA_MAX - 2);
    t->wait_k = 0;
    t->wait_n = 1;
    ck_assert(run_until(t, x_got_cells, 5000));
    ck_assert_uint_eq(t->xd[0].len, BODY_DATA_MAX - 2);
    ck_assert_mem_eq(t->xd[0].data, data + 2, BODY_DATA_MAX - 2);
    h_back(t, 0, h1, data + 3, 5);
    t->wait_k = 1;
    ck_assert(run_until(t, x_got_cells, 5000));
    ck_assert_uint_eq(t->xd[1].len, 5);
    ck_assert_mem_eq(t->xd[1].data, data + 3, 5);

    /* a handle I never gave out, and one on a chain without a cookie */
    h0[0] ^= 1;
    h_back(t, 0, h0, data, 10);
    t->wait_n = 1;
    ck_assert(run_until(t, unknown_is, 5000));
    h0[0] ^= 1;
    h_back(t, 1, h0, data, 10);
    t->wait_n = 2;
    ck_assert(run_until(t, unknown_is, 5000));
    st = rstats(t);
    ck_assert_uint_eq(st.intro_cells_down, 3);
    ck_assert_uint_eq(st.intro_cells_up, 2);
    ck_assert_uint_eq(st.intro_delivs_active, 2);
    ck_assert_uint_eq(t->xd[0].n_cells, 1);
    ck_assert_uint_eq(t->xd[1].n_cells, 1);

    /* X is done with delivery 1; its handle no longer leads anywhere */
    x_send(t, 1, CELL_CHAIN_DESTROY, NULL, 0);
    chanmap_del(&t->n[XN], x_link(t), t->xd[1].id);
    wait_delivs(t, 1);
    h_back(t, 0, h1, data, 10);
    t->wait_n = 3;
    ck_assert(run_until(t, unknown_is, 5000));

    /* H's chain ends: delivery 0 gets DESTROY, and nothing is left */
    chain_close(t, 0);
    x_wait_destroy(t, 0);
    ck_assert(run_until(t, no_intros, 5000));
    ck_assert_uint_eq(rstats(t).dropped[RD_BAD_CELL], 0);
    net_teardown(t);
    free(t);
}
END_TEST

/* chain_intro for a cookie I does not hold, and past the cap of
 * deliveries per cookie: DESTROY on that ID. */
START_TEST(test_unknown_and_cap)
{
    struct net *t = calloc(1, sizeof(*t));
    uint8_t cookie[BODY_COOKIE], other[BODY_COOKIE];
    uint64_t limit0;

    net_setup(t);
    ovl_random(cookie, sizeof(cookie));
    ovl_random(other, sizeof(other));
    x_open(t, 0, cookie, BODY_COOKIE);
    x_wait_destroy(t, 0);
    ck_assert_uint_eq(t->xd[0].destroy_reason, DESTROY_R_NONE);
    ck_assert_uint_eq(rstats(t).intro_unknown, 1);

    chain_open(t, 0);
    assert_ok(establish(t, 0, cookie), cookie);
    x_open(t, 1, other, BODY_COOKIE); /* held nowhere still */
    x_wait_destroy(t, 1);
    ck_assert_uint_eq(rstats(t).intro_unknown, 2);
    limit0 = rstats(t).dropped[RD_LIMIT];
    for (unsigned j = 0; j < RELAY_MAX_INTRO_DELIVS; j++)
        x_open(t, 2 + j, cookie, BODY_COOKIE);
    wait_delivs(t, RELAY_MAX_INTRO_DELIVS);
    x_open(t, 2 + RELAY_MAX_INTRO_DELIVS, cookie, BODY_COOKIE);
    x_wait_destroy(t, 2 + RELAY_MAX_INTRO_DELIVS);
    ck_assert_uint_eq(t->xd[2 + RELAY_MAX_INTRO_DELIVS].destroy_reason, DESTROY_R_NONE);
    ck_assert_uint_eq(rstats(t).dropped[RD_LIMIT], limit0 + 1);
    ck_assert_uint_eq(rstats(t).intro_delivs_active, RELAY_MAX_INTRO_DELIVS);
    for (unsigned j = 0; j < RELAY_MAX_INTRO_DELIVS; j++)
        ck_assert_uint_eq(t->xd[2 + j].n_destroy, 0);

    /* the chain ends: every delivery hears of it */
    chain_close(t, 0);
    ck_assert(run_until(t, no_intros, 5000));
    for (unsigned j = 0; j < RELAY_MAX_INTRO_DELIVS; j++) {
        x_wait_destroy(t, 2 + j);
        ck_assert_uint_eq(t->xd[2 + j].n_destroy, 1);
    }
    net_teardown(t);
    free(t);
}
END_TEST

/* Malformed bodies and cells are dropped and counted; nothing breaks. */
START_TEST(test_malformed)
{
    struct net *t = calloc(1, sizeof(*t));
    uint8_t cookie[BODY_COOKIE], a[BODY_INTRO_EST_LEN + 1], data[BODY_HANDLE + BODY_DATA_MAX + 1];
    uint8_t handle[BODY_HANDLE];
    struct cell c;
    uint64_t bad = 0;

    net_setup(t);
    chain_open(t, 0);
    ovl_random(cookie, sizeof(cookie));
    memset(data, 0x5a, sizeof(data));
    est_args(t, a, cookie, t->n[IR].id.pk, clock_wall_ms() + 600000);
    a[BODY_INTRO_EST_LEN] = 0;

    /* INTRO_ESTABLISH a byte short and a byte long, INTRO_BACK without a
     * whole handle and with more data than a chain_deliver takes */
    h_send(t, 0, BODY_INTRO_ESTABLISH, a, BODY_INTRO_EST_LEN - 1);
    wait_bad(t, ++bad);
    h_send(t, 0, BODY_INTRO_ESTABLISH, a, BODY_INTRO_EST_LEN + 1);
    wait_bad(t, ++bad);
    h_send(t, 0, BODY_INTRO_BACK, data, BODY_HANDLE - 1);
    wait_bad(t, ++bad);
    h_send(t, 0, BODY_INTRO_BACK, data, BODY_HANDLE + BODY_DATA_MAX + 1);
    wait_bad(t, ++bad);
    /* backward commands sent forward */
    h_send(t, 0, BODY_INTRO_DELIVER, data, 20);
    wait_bad(t, ++bad);
    ck_assert_uint_eq(t->ch[0].n_bodies, 0);
    ck_assert_uint_eq(rstats(t).intros_active, 0);

    /* chain_intro a byte short: DESTROY(protocol) */
    x_open(t, 0, cookie, BODY_COOKIE - 1);
    x_wait_destroy(t, 0);
    ck_assert_uint_eq(t->xd[0].destroy_reason, DESTROY_R_PROTOCOL);
    wait_bad(t, ++bad);
    /* chain_intro on an ID that is I's to pick: dropped, no answer */
    memset(&c, 0, sizeof(c));
    c.chain_id = 0x1234; /* X dialed: its IDs have the top bit set */
    c.cmd = CELL_CHAIN_INTRO;
    c.len = BODY_COOKIE;
    memcpy(c.payload, cookie, BODY_COOKIE);
    ck_assert_int_eq(link_send(x_link(t), &c), 0);
    wait_bad(t, ++bad);

    /* on a live delivery: chain_intro again, a chain_deliver too long, a
     * chain_fwd; each dropped, the delivery goes on */
    assert_ok(establish(t, 0, cookie), cookie);
    x_open(t, 1, cookie, BODY_COOKIE);
    wait_delivs(t, 1);
    x_send(t, 1, CELL_CHAIN_INTRO, cookie, BODY_COOKIE);
    wait_bad(t, ++bad);
    x_send(t, 1, CELL_CHAIN_DELIVER, data, BODY_DATA_MAX + 1);
    wait_bad(t, ++bad);
    x_send(t, 1, CELL_CHAIN_FWD, data, 100);
    wait_bad(t, ++bad);
    ck_assert_uint_eq(t->xd[1].n_destroy, 0);
    ck_assert_uint_eq(rstats(t).intro_delivs_active, 1);
    x_send(t, 1, CELL_CHAIN_DELIVER, data, 3);
    ck_assert_uint_eq(h_wait(t, 0, 1)->cmd, BODY_INTRO_DELIVER);
    memcpy(handle, t->ch[0].bodies[1].args, BODY_HANDLE);
    h_back(t, 0, handle, data, 4);
    t->wait_k = 1;
    t->wait_n = 1;
    ck_assert(run_until(t, x_got_cells, 5000));
    ck_assert_uint_eq(rstats(t).dropped[RD_BAD_CELL], bad);
    net_teardown(t);
    free(t);
}
END_TEST

/* A cookie whose expires_ms passes is forgotten by the tick; its
 * deliveries get DESTROY, and the chain may take another. */
START_TEST(test_expiry)
{
    struct net *t = calloc(1, sizeof(*t));
    uint8_t a[BODY_INTRO_EST_LEN], cookie[BODY_COOKIE], next[BODY_COOKIE];

    net_setup(t);
    chain_open(t, 0);
    ovl_random(cookie, sizeof(cookie));
    ovl_random(next, sizeof(next));
    est_args(t, a, cookie, t->n[IR].id.pk, clock_wall_ms() + 1500);
    assert_ok(establish_raw(t, 0, a), cookie);
    x_open(t, 0, cookie, BODY_COOKIE);
    wait_delivs(t, 1);
    t->wait_k = 0;
    ck_assert(run_until(t, x_got_destroy, 10000));
    ck_assert(run_until(t, no_intros, 5000));
    ck_assert_uint_eq(rstats(t).chains, 1);
    assert_ok(establish(t, 0, next), next);
    net_teardown(t);
    free(t);
}
END_TEST

static bool x_unlinked(struct net *t)
{
    return x_link(t) == NULL;
}

static bool x_linked(struct net *t)
{
    return x_link(t) != NULL;
}

/* X's link closing takes its deliveries; H's link closing ends the chain,
 * and with it the cookie and the deliveries bound to it. */
START_TEST(test_links_closed)
{
    struct net *t = calloc(1, sizeof(*t));
    uint8_t cookie[BODY_COOKIE];

    net_setup(t);
    chain_open(t, 0);
    ovl_random(cookie, sizeof(cookie));
    assert_ok(establish(t, 0, cookie), cookie);
    x_open(t, 0, cookie, BODY_COOKIE);
    x_open(t, 1, cookie, BODY_COOKIE);
    wait_delivs(t, 2);
    link_close(x_link(t), LC_SHUTDOWN);
    ck_assert(run_until(t, x_unlinked, 5000));
    wait_delivs(t, 0);
    ck_assert_uint_eq(rstats(t).intros_active, 1);

    tnet_dial(t->n, XN, IR);
    ck_assert(run_until(t, x_linked, 5000));
    x_open(t, 2, cookie, BODY_COOKIE);
    wait_delivs(t, 1);
    link_close(h_link(t), LC_SHUTDOWN);
    x_wait_destroy(t, 2);
    ck_assert(run_until(t, no_intros, 5000));
    ck_assert_uint_eq(rstats(t).chains, 0);
    net_teardown(t);
    free(t);
}
END_TEST

/* [relay] max_chains_per_link bounds the deliveries of one link: X's
 * third is refused and counted while Y's link still takes two of its own,
 * and X opens another once one of its own ended. */
START_TEST(test_link_cap)
{
    struct net *t = calloc(1, sizeof(*t));
    uint8_t cookie[BODY_COOKIE], data[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    struct relay_opts ro;
    uint64_t limit0;
    const struct tnet_body *b;

    relay_opts_defaults(&ro);
    ro.max_chains_per_link = 2;
    net_setup_with(t, &ro, 0);
    chain_open(t, 0);
    ovl_random(cookie, sizeof(cookie));
    assert_ok(establish(t, 0, cookie), cookie);
    limit0 = rstats(t).dropped[RD_LIMIT];
    x_open(t, 0, cookie, BODY_COOKIE);
    x_open(t, 1, cookie, BODY_COOKIE);
    wait_delivs(t, 2);
    x_open(t, 2, cookie, BODY_COOKIE);
    x_wait_destroy(t, 2);
    ck_assert_uint_eq(t->xd[2].destroy_reason, DESTROY_R_NONE);
    ck_assert_uint_eq(rstats(t).dropped[RD_LIMIT], limit0 + 1);

    /* Y's link holds a share of its own, and it too is bounded */
    d_open(t, YN, 3, cookie, BODY_COOKIE);
    d_open(t, YN, 4, cookie, BODY_COOKIE);
    wait_delivs(t, 4);
    d_open(t, YN, 5, cookie, BODY_COOKIE);
    x_wait_destroy(t, 5);
    ck_assert_uint_eq(t->xd[5].destroy_reason, DESTROY_R_NONE);
    ck_assert_uint_eq(rstats(t).dropped[RD_LIMIT], limit0 + 2);

    /* X ends delivery 0: its link has room for one more */
    x_send(t, 0, CELL_CHAIN_DESTROY, NULL, 0);
    chanmap_del(&t->n[XN], x_link(t), t->xd[0].id);
    wait_delivs(t, 3);
    x_open(t, 6, cookie, BODY_COOKIE);
    wait_delivs(t, 4);
    ck_assert_uint_eq(rstats(t).dropped[RD_LIMIT], limit0 + 2);
    x_send(t, 6, CELL_CHAIN_DELIVER, data, sizeof(data));
    b = h_wait(t, 0, 1);
    ck_assert_uint_eq(b->cmd, BODY_INTRO_DELIVER);
    ck_assert_mem_eq(b->args + BODY_HANDLE, data, sizeof(data));
    ck_assert_uint_eq(t->xd[1].n_destroy + t->xd[3].n_destroy + t->xd[4].n_destroy, 0);
    ck_assert_uint_eq(t->xd[6].n_destroy, 0);
    net_teardown(t);
    free(t);
}
END_TEST

static bool intros_are(struct net *t)
{
    return rstats(t).intros_active == t->wait_n;
}

/* The node's cap of cookies (max_intros, RELAY_MAX_INTROS by default,
 * lowered to 3 here) refuses a fourth with INTRO_FAIL(limit) before the
 * signature is checked, so the refusals use none of the chain's checks;
 * a chain's end makes room. */
START_TEST(test_intro_cap)
{
    struct net *t = calloc(1, sizeof(*t));
    uint8_t a[BODY_INTRO_EST_LEN], cookie[N_CHAINS][BODY_COOKIE];
    struct relay_opts ro;
    struct relay_stats st;

    relay_opts_defaults(&ro);
    ck_assert_uint_eq(ro.max_intros, RELAY_MAX_INTROS);
    ro.max_intros = 3;
    net_setup_with(t, &ro, 0);
    for (unsigned k = 0; k < N_CHAINS; k++) {
        chain_open(t, k);
        cookie_of(cookie[k], (uint8_t)(0x10 + k));
    }
    for (unsigned k = 0; k < 3; k++)
        assert_ok(establish(t, k, cookie[k]), cookie[k]);
    assert_fail(establish(t, 3, cookie[3]), cookie[3], INTRO_R_LIMIT);
    /* a forged body gets the same answer: nothing was verified */
    est_args(t, a, cookie[3], t->n[IR].id.pk, clock_wall_ms() + 600000);
    a[BODY_INTRO_SIG] ^= 1;
    assert_fail(establish_raw(t, 3, a), cookie[3], INTRO_R_LIMIT);
    /* a cookie held already is busy first */
    assert_fail(establish(t, 3, cookie[0]), cookie[0], INTRO_R_BUSY);
    st = rstats(t);
    ck_assert_uint_eq(st.intros_active, 3);
    ck_assert_uint_eq(st.intros_refused_limit, 2);
    ck_assert_uint_eq(st.intros_refused_busy, 1);
    ck_assert_uint_eq(st.intros_refused_protocol, 0);

    /* chain 0 ends; chain 3 still has all four checks: three forged
     * bodies and then a good one */
    chain_close(t, 0);
    t->wait_n = 2;
    ck_assert(run_until(t, intros_are, 5000));
    for (int i = 0; i < 3; i++)
        assert_fail(establish_raw(t, 3, a), cookie[3], INTRO_R_PROTOCOL);
    assert_ok(establish(t, 3, cookie[3]), cookie[3]);
    st = rstats(t);
    ck_assert_uint_eq(st.intros_active, 3);
    ck_assert_uint_eq(st.intros_established, 4);
    ck_assert_uint_eq(st.intros_refused_protocol, 3);
    ck_assert_uint_eq(st.intros_refused_limit, 2);
    net_teardown(t);
    free(t);
}
END_TEST

/* ---- the pause path (docs/PROTOCOL.md 22.2, "Backpressure") ----
 *
 * One node stops reading from I and two others send toward it through I,
 * each while its own link has room. I's links queue three cells each, far
 * less than a read batch (64 KiB, which the default queue's headroom
 * covers): every cell of a batch is handled even once its link is paused,
 * so the cells behind the one that filled the queue find no room and are
 * dropped (queue_full). Whenever the queue drains (its drained()), I reads
 * both links again; once the kernel's buffers toward the node that does
 * not read are full too, nothing drains any more, I holds both links for
 * good, and the two senders' own links fill. Only then, seen at the start
 * of a poll (after the loop had its turn to write), does the test look at
 * I: a queue found full within one loop turn would not tell anything.
 * Nothing but the drained() of the full link resumes the held ones
 * (stall_timeout is out of the way). */

#define PAUSE_SENDQ (3 * (FRAME_CELL_LEN + OVL_FRAME_LENHDR))
#define SPARE       8   /* cells a pumping node leaves for its heartbeat and PONGs */
#define BURST       256 /* cells a pumping node sends per poll at most */

/* I's link to node, or NULL. */
static struct link *ir_link(struct net *t, unsigned node)
{
    return tnet_link(t->n, IR, node);
}

/* True while I holds back (does not read) its link from node. */
static bool ir_holds(struct net *t, unsigned node)
{
    struct link *l = ir_link(t, node);

    return l && (l->flags & LINK_F_PAUSED);
}

/* True when node's link to I has room for a cell and the spare. */
static bool x_room(struct net *t, unsigned node)
{
    struct link *l = tnet_link(t->n, node, IR);

    return l && link_can_send(l, 1 + SPARE);
}

/* Both senders' links were full at the start of the last poll, I holds
 * both back, and it dropped cells for the full queue. */
static bool held_for_good(struct net *t)
{
    return t->blocked[t->held[0]] && t->blocked[t->held[1]] && ir_holds(t, t->held[0]) &&
           ir_holds(t, t->held[1]) && rstats(t).dropped[RD_QUEUE_FULL] > t->base_full;
}

/* Cells I dropped for a full queue since the base. */
static uint64_t full_since(struct net *t)
{
    return rstats(t).dropped[RD_QUEUE_FULL] - t->base_full;
}

/* Cells the two senders sent since the base. */
static uint64_t sent_by_held(struct net *t)
{
    return t->sent[t->held[0]] + t->sent[t->held[1]];
}

/* H takes the INTRO_DELIVER bodies of deliveries 0 and 1 and counts them. */
static void h_count(struct tnet_chain *c, uint8_t cmd, const uint8_t *args, size_t len)
{
    struct net *t = c->ctx;

    ck_assert_uint_eq(cmd, BODY_INTRO_DELIVER);
    ck_assert_uint_eq(len, BODY_HANDLE + BODY_DATA_MAX);
    ck_assert(memcmp(args, t->handle[0], BODY_HANDLE) == 0 ||
              memcmp(args, t->handle[1], BODY_HANDLE) == 0);
    t->h_got++;
}

/* Send full chain_deliver cells on delivery j from node while its link
 * to I has room, at most max. */
static void pump_deliv(struct net *t, unsigned node, unsigned j, unsigned max)
{
    uint8_t data[BODY_DATA_MAX];

    memset(data, (int)(0x40 + j), sizeof(data));
    for (unsigned b = 0; b < max && x_room(t, node); b++) {
        x_send(t, j, CELL_CHAIN_DELIVER, data, BODY_DATA_MAX);
        t->sent[node]++;
    }
}

static void pump_down(struct net *t)
{
    t->blocked[XN] = !x_room(t, XN);
    t->blocked[YN] = !x_room(t, YN);
    pump_deliv(t, XN, 0, BURST);
    pump_deliv(t, YN, 1, BURST);
}

/* Every cell X and Y sent was passed to H or dropped, H took those
 * passed, and I reads both links again. */
static bool down_drained(struct net *t)
{
    uint64_t passed = rstats(t).intro_cells_down - t->base_cells;

    return !ir_holds(t, XN) && !ir_holds(t, YN) && passed + full_since(t) == sent_by_held(t) &&
           t->h_got == passed;
}

/* One round of a pause test: `stopped`, the link of node `full` (H or X)
 * to I, stops reading while the two other nodes pump cells toward it
 * (pump): I must hold both back for good, with the link toward `full`
 * the one that is full and not itself held; once `stopped` reads again
 * everything drains (drained) and I dropped at least one cell. */
static void pause_round(struct net *t, struct link *stopped, unsigned full, unsigned held0,
                        void (*pump)(struct net *), bool (*drained)(struct net *))
{
    link_pause(stopped);
    t->held[0] = held0;
    t->held[1] = YN;
    t->pump = pump;
    ck_assert(run_until(t, held_for_good, 30000));
    t->pump = NULL;
    ck_assert(!link_can_send(ir_link(t, full), 1));
    ck_assert(!ir_holds(t, full));
    link_resume(stopped);
    ck_assert(run_until(t, drained, 30000));
    ck_assert_uint_ge(full_since(t), 1);
}

/* X and Y deliver to H's cookie while H does not read: I's link toward H
 * fills, a chain_deliver that finds no room is dropped and counted, and
 * the links of both are held until H reads again; then every cell that
 * was not dropped reaches H, and cells flow as before. */
START_TEST(test_pause_down)
{
    struct net *t = calloc(1, sizeof(*t));
    uint8_t cookie[BODY_COOKIE], one = 1;
    struct relay_opts ro;
    struct relay_stats st;
    uint64_t got, full;

    relay_opts_defaults(&ro);
    ro.stall_timeout_ms = 600000; /* holding, not closing, is tested here */
    net_setup_with(t, &ro, PAUSE_SENDQ);
    chain_open(t, 0);
    ovl_random(cookie, sizeof(cookie));
    assert_ok(establish(t, 0, cookie), cookie);
    x_open(t, 0, cookie, BODY_COOKIE);
    d_open(t, YN, 1, cookie, BODY_COOKIE);
    wait_delivs(t, 2);
    for (unsigned j = 0; j < 2; j++) {
        x_send(t, j, CELL_CHAIN_DELIVER, &one, 1);
        memcpy(t->handle[j], h_wait(t, 0, 1 + j)->args, BODY_HANDLE);
    }
    t->ch[0].ctx = t;
    t->ch[0].on_body = h_count;
    st = rstats(t);
    t->base_cells = st.intro_cells_down;
    t->base_full = st.dropped[RD_QUEUE_FULL];

    pause_round(t, h_link(t), HN, XN, pump_down, down_drained);
    ck_assert_uint_gt(t->h_got, 0);
    /* X's next cell reaches H */
    got = t->h_got;
    full = full_since(t);
    pump_deliv(t, XN, 0, 1);
    ck_assert(run_until(t, down_drained, 5000));
    ck_assert_uint_eq(t->h_got, got + 1);
    ck_assert_uint_eq(full_since(t), full);
    st = rstats(t);
    ck_assert_uint_eq(st.dropped[RD_BAD_CELL] + st.dropped[RD_NO_ROUTE], 0);
    ck_assert_uint_eq(st.intro_delivs_active, 2);
    net_teardown(t);
    free(t);
}
END_TEST

/* Send full INTRO_BACK bodies for handle j on chain k from node while
 * its link to I has room, at most max. */
static void pump_back(struct net *t, unsigned k, unsigned node, unsigned j, unsigned max)
{
    struct tnet_chain *c = &t->ch[k];
    uint8_t a[BODY_HANDLE + BODY_DATA_MAX];

    memcpy(a, t->handle[j], BODY_HANDLE);
    memset(a + BODY_HANDLE, (int)(0x60 + j), BODY_DATA_MAX);
    for (unsigned b = 0; b < max && x_room(t, node); b++) {
        ck_assert_int_eq(tnet_chain_send(c, BODY_INTRO_BACK, a, sizeof(a)), 0);
        t->sent[node]++;
    }
}

static void pump_up(struct net *t)
{
    t->blocked[HN] = !x_room(t, HN);
    t->blocked[YN] = !x_room(t, YN);
    pump_back(t, 0, HN, 0, BURST);
    pump_back(t, N_CHAINS - 1, YN, 1, BURST);
}

/* Every INTRO_BACK H and Y sent was passed to X or dropped, X took those
 * passed, and I reads both links again. */
static bool up_drained(struct net *t)
{
    uint64_t passed = rstats(t).intro_cells_up - t->base_cells;

    return !ir_holds(t, HN) && !ir_holds(t, YN) && passed + full_since(t) == sent_by_held(t) &&
           t->xd[0].n_cells + t->xd[1].n_cells == passed;
}

/* H and Y, two hidden nodes on links of their own, answer X's deliveries
 * while X does not read: I's link toward X fills, an INTRO_BACK that
 * finds no room is dropped and counted, and the links of H's and Y's
 * chains are held until X reads again; then the rest reaches X. */
START_TEST(test_pause_up)
{
    struct net *t = calloc(1, sizeof(*t));
    uint8_t ch_cookie[BODY_COOKIE], cy_cookie[BODY_COOKIE], one = 1;
    struct relay_opts ro;
    struct relay_stats st;
    const unsigned ky = N_CHAINS - 1; /* Y's chain */
    uint64_t got, full;

    relay_opts_defaults(&ro);
    ro.stall_timeout_ms = 600000;
    net_setup_with(t, &ro, PAUSE_SENDQ);
    chain_open(t, 0);
    chain_open_y(t, ky);
    ovl_random(ch_cookie, sizeof(ch_cookie));
    ovl_random(cy_cookie, sizeof(cy_cookie));
    assert_ok(establish(t, 0, ch_cookie), ch_cookie);
    assert_ok(establish_as(t, ky, YN, cy_cookie), cy_cookie);
    x_open(t, 0, ch_cookie, BODY_COOKIE);
    x_open(t, 1, cy_cookie, BODY_COOKIE);
    wait_delivs(t, 2);
    x_send(t, 0, CELL_CHAIN_DELIVER, &one, 1);
    memcpy(t->handle[0], h_wait(t, 0, 1)->args, BODY_HANDLE);
    x_send(t, 1, CELL_CHAIN_DELIVER, &one, 1);
    memcpy(t->handle[1], h_wait(t, ky, 1)->args, BODY_HANDLE);
    st = rstats(t);
    t->base_cells = st.intro_cells_up;
    t->base_full = st.dropped[RD_QUEUE_FULL];

    pause_round(t, x_link(t), XN, HN, pump_up, up_drained);
    ck_assert_uint_gt(t->xd[0].n_cells + t->xd[1].n_cells, 0);
    /* H's next answer reaches X */
    got = t->xd[0].n_cells;
    full = full_since(t);
    pump_back(t, 0, HN, 0, 1);
    ck_assert(run_until(t, up_drained, 5000));
    ck_assert_uint_eq(t->xd[0].n_cells, got + 1);
    ck_assert_uint_eq(full_since(t), full);
    st = rstats(t);
    ck_assert_uint_eq(st.dropped[RD_BAD_CELL] + st.dropped[RD_NO_ROUTE] + st.dropped[RD_AUTH], 0);
    ck_assert_uint_eq(st.intro_unknown, 0);
    ck_assert_uint_eq(t->xd[0].n_destroy + t->xd[1].n_destroy, 0);
    net_teardown(t);
    free(t);
}
END_TEST

static Suite *intro_suite(void)
{
    TCase *tc;
    Suite *s = tnet_suite("intro", 60, &tc);

    tcase_add_test(tc, test_establish);
    tcase_add_test(tc, test_refusals);
    tcase_add_test(tc, test_deliver);
    tcase_add_test(tc, test_unknown_and_cap);
    tcase_add_test(tc, test_malformed);
    tcase_add_test(tc, test_expiry);
    tcase_add_test(tc, test_links_closed);
    tcase_add_test(tc, test_link_cap);
    tcase_add_test(tc, test_intro_cap);
    tcase_add_test(tc, test_pause_down);
    tcase_add_test(tc, test_pause_up);
    return s;
}

OVL_CHECK_MAIN(intro_suite)
