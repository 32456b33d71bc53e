/* test_hidden_exit.c - the exit's part of hidden destinations (src/chain/exit.c,
 * docs/PROTOCOL.md 22.3 and 22.4), on one loop over loopback TCP.
 *
 * Five nodes: a bootstrap, the introduction relay I, the exit X (both
 * relays), a hidden node H and a sender S. H and S are this file, without
 * listen addresses: H opens one-hop chains to I (INTRO_ESTABLISH,
 * PUBLISH, INTRO_BACK) and S one-hop chains to X (DELIVER to H), both
 * tnet.h's chains, and each reads the bodies that come back. Inbound
 * descriptors are signed here with idesc_sign.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "tnet.h"
#include "dir/idesc.h"
#include "lib/clock.h"

enum { BS = 0, IR, XR, HN, SN, N_NODES };
#define N_CHAINS 4

/* One dir_lookup's answer. */
struct lookup {
    unsigned calls;
    int err;
    bool hidden; /* answered an inbound descriptor */
    struct idesc in;
};

struct net {
    TNET_WORLD(struct net, N_NODES); /* relays IR and XR */
    struct tnet_chain ch[N_CHAINS];
    struct lookup lk;
    unsigned wait_n, wait_r; /* what the waits below look for */
};

TNET_DEFINE(struct net)

/* ---- chains ---- */

/* Send a forward body (cmd, args of alen bytes) on chain k. */
static void tc_send(struct net *t, unsigned k, uint8_t cmd, const uint8_t *args, size_t alen)
{
    ck_assert_int_eq(tnet_chain_send(&t->ch[k], cmd, args, alen), 0);
}

/* Wait for body n (0 upwards) on chain k and return it. */
static const struct tnet_body *tc_wait(struct net *t, unsigned k, unsigned n)
{
    return tnet_chain_wait(t, &t->ch[k], n, 10000);
}

/* Send DELIVER(dest, data of len bytes) on S's chain k. */
static void s_deliver(struct net *t, unsigned k, const uint8_t *dest, const uint8_t *data,
                      size_t len)
{
    uint8_t a[OVL_ED25519_PK + BODY_DATA_MAX];

    memcpy(a, dest, OVL_ED25519_PK);
    memcpy(a + OVL_ED25519_PK, data, len);
    tc_send(t, k, BODY_DELIVER, a, OVL_ED25519_PK + len);
}

static void assert_deliver_fail(const struct tnet_body *b, const uint8_t *dest, uint8_t reason)
{
    ck_assert_uint_eq(b->cmd, BODY_DELIVER_FAIL);
    ck_assert_uint_eq(b->len, OVL_ED25519_PK + 1);
    ck_assert_mem_eq(b->args, dest, OVL_ED25519_PK);
    ck_assert_uint_eq(b->args[OVL_ED25519_PK], reason);
}

/* ---- H: cookies and inbound descriptors ---- */

/* Establish cookie at I on H's chain k, good for ten minutes. */
static void h_establish(struct net *t, unsigned k, const uint8_t *cookie)
{
    uint8_t a[BODY_INTRO_EST_LEN];
    unsigned n = t->ch[k].n_bodies;
    const struct tnet_body *b;

    tnet_intro_est(a, &t->n[HN].id, cookie, t->n[IR].id.pk, clock_wall_ms() + 600000);
    tc_send(t, k, BODY_INTRO_ESTABLISH, a, sizeof(a));
    b = tc_wait(t, k, n);
    ck_assert_uint_eq(b->cmd, BODY_INTRO_OK);
}

/* Sign into out (IDESC_MAX_LEN bytes) an inbound descriptor of id, with
 * counter seq, naming the n relays and cookies given; return its length. */
static size_t idesc_make(const struct ovl_identity *id, uint64_t seq, const uint8_t (*relays)[32],
                         const uint8_t (*cookies)[BODY_COOKIE], unsigned n, uint8_t *out)
{
    struct idesc d;
    size_t len = 0;

    memset(&d, 0, sizeof(d));
    d.suites = 1;
    d.n_intro = (uint8_t)n;
    d.seq = seq;
    d.published_ms = clock_wall_ms();
    d.expires_ms = d.published_ms + 600000;
    memcpy(d.id_pk, id->pk, OVL_ED25519_PK);
    ovl_random(d.onion_pk, sizeof(d.onion_pk));
    for (unsigned i = 0; i < n; i++) {
        memcpy(d.intro[i].relay_pk, relays[i], OVL_ED25519_PK);
        memcpy(d.intro[i].cookie, cookies[i], BODY_COOKIE);
    }
    ck_assert_int_eq(idesc_sign(&d, id, out, IDESC_MAX_LEN, &len), 0);
    return len;
}

/* ---- lookups from S ---- */

static void on_lookup(void *arg, int err, const struct desc *d, const struct idesc *in)
{
    struct lookup *lk = arg;

    (void)d;
    lk->calls++;
    lk->err = err;
    lk->hidden = in != NULL;
    if (in)
        lk->in = *in;
}

static bool looked_up(struct net *t)
{
    return t->lk.calls > 0;
}

static bool never(struct net *t)
{
    (void)t;
    return false;
}

static bool lookup_holds(struct net *t, const uint8_t *pk, uint64_t seq)
{
    memset(&t->lk, 0, sizeof(t->lk));
    ck_assert_int_eq(dir_lookup(t->dir[SN], pk, on_lookup, &t->lk), 0);
    ck_assert(run_until(t, looked_up, 5000));
    return t->lk.hidden && t->lk.in.seq == seq;
}

/* Wait until the bootstrap answers S's lookup of pk with the inbound
 * descriptor of counter seq (it was handed over fire and forget); S's
 * cache of a miss is dropped between tries. */
static void wait_published(struct net *t, const uint8_t *pk, uint64_t seq)
{
    for (int i = 0; i < 200; i++) {
        if (lookup_holds(t, pk, seq))
            return;
        dir_forget(t->dir[SN], pk);
        (void)run_until(t, never, 20); /* a pause before the next try */
    }
    ck_abort_msg("the bootstrap never answered the inbound descriptor");
}

/* ---- the network ---- */

static bool relays_registered(struct net *t)
{
    return dir_registered(t->dir[IR]) && dir_registered(t->dir[XR]);
}

static bool linked(struct net *t)
{
    return tnet_link(t->n, HN, IR) && tnet_link(t->n, SN, XR) && tnet_link(t->n, HN, BS) &&
           tnet_link(t->n, SN, BS);
}

static void net_setup(struct net *t)
{
    struct dir_bootstrap_spec bs;
    struct peer_spec peer;
    struct dir_opts dopts;
    struct relay_opts ro;

    tnet_open(t);
    tnet_dir_opts(&dopts);
    relay_opts_defaults(&ro);
    tnet_boot(&t->loop, t->n, t->dir, &dopts, &bs, &peer);
    for (unsigned i = IR; i <= XR; i++)
        tnet_relay(t, i, &dopts, &bs, &peer, &ro);
    for (unsigned i = HN; i <= SN; i++) { /* no listen address: nothing to register */
        tnet_join(&t->loop, t->n, t->dir, i, ROLE_CLIENT, &dopts, &bs);
        ck_assert_int_eq(node_start(&t->n[i], NULL, 0, &peer, 1), 0);
    }
    ck_assert(run_until(t, relays_registered, 10000));
    tnet_dial(t->n, HN, IR);
    tnet_dial(t->n, SN, XR);
    ck_assert(run_until(t, linked, 5000));
}

static void net_teardown(struct net *t)
{
    tnet_down(t);
    tnet_release(t);
    tnet_chain_wipe(t->ch, N_CHAINS);
}

static struct relay_stats rstats(struct net *t, unsigned i)
{
    return tnet_rstats(t->relay[i]);
}

static bool bad_cells_are(struct net *t)
{
    return rstats(t, t->wait_r).dropped[RD_BAD_CELL] >= t->wait_n;
}

/* The exit's chains as relay-chains sees them: deliveries and the
 * introduction relays named. */
struct seen {
    unsigned exits, delivs, n_intros;
    uint8_t intro[OVL_ED25519_PK];
};

static void seen_chain(void *arg, const struct relay_chain_info *ci)
{
    struct seen *s = arg;

    s->exits += ci->exit;
    s->delivs += ci->delivs;
    s->n_intros += ci->n_intros;
    if (ci->n_intros)
        memcpy(s->intro, ci->intros[0], OVL_ED25519_PK);
}

static struct seen exit_seen(struct net *t)
{
    struct seen s;

    memset(&s, 0, sizeof(s));
    relay_each_chain(t->relay[XR], seen_chain, &s);
    return s;
}

/* ---- tests ---- */

/* PUBLISH of a length no inbound descriptor has is dropped; one in range
 * goes to the bootstrap and is answered PUBLISHED(1), which then answers
 * lookups of H with it; a second on the chain within the rate is
 * answered PUBLISHED(0). */
START_TEST(test_publish)
{
    struct net *t = calloc(1, sizeof(*t));
    uint8_t buf[IDESC_MAX_LEN + 1], cookie[1][BODY_COOKIE];
    const struct tnet_body *b;
    struct relay_stats st;
    size_t len;

    net_setup(t);
    tnet_chain_open(t, &t->ch[0], HN, IR);
    memset(buf, 0x33, sizeof(buf));
    tc_send(t, 0, BODY_PUBLISH, buf, IDESC_MIN_LEN - 1);
    t->wait_r = IR;
    t->wait_n = 1;
    ck_assert(run_until(t, bad_cells_are, 5000));
    tc_send(t, 0, BODY_PUBLISH, buf, IDESC_MAX_LEN + 1);
    t->wait_n = 2;
    ck_assert(run_until(t, bad_cells_are, 5000));
    ck_assert_uint_eq(t->ch[0].n_bodies, 0);

    ovl_random(cookie[0], BODY_COOKIE);
    len = idesc_make(&t->n[HN].id, 7, (const uint8_t(*)[32])t->n[IR].id.pk, cookie, 1, buf);
    tc_send(t, 0, BODY_PUBLISH, buf, len);
    b = tc_wait(t, 0, 0);
    ck_assert_uint_eq(b->cmd, BODY_PUBLISHED);
    ck_assert_uint_eq(b->len, 1);
    ck_assert_uint_eq(b->args[0], 1);
    wait_published(t, t->n[HN].id.pk, 7);
    ck_assert_mem_eq(t->lk.in.intro[0].relay_pk, t->n[IR].id.pk, OVL_ED25519_PK);
    ck_assert_mem_eq(t->lk.in.intro[0].cookie, cookie[0], BODY_COOKIE);

    tc_send(t, 0, BODY_PUBLISH, buf, len);
    b = tc_wait(t, 0, 1);
    ck_assert_uint_eq(b->cmd, BODY_PUBLISHED);
    ck_assert_uint_eq(b->args[0], 0);
    st = rstats(t, IR);
    ck_assert_uint_eq(st.publishes, 1);
    ck_assert_uint_eq(st.publishes_refused, 1);
    ck_assert_uint_eq(st.dropped[RD_BAD_CELL], 2);
    net_teardown(t);
    free(t);
}
END_TEST

/* S delivers to hidden H through X: X finds H's inbound descriptor, opens
 * a delivery at I with the cookie (past an introduction relay the
 * directory does not know, if it picks that one first), H reads the data
 * and answers, S gets DELIVER_BACK(H); relay-chains at X names I, never
 * H. H's chain ending tells S DELIVER_FAIL(H, gone). */
START_TEST(test_hidden_deliver)
{
    struct net *t = calloc(1, sizeof(*t));
    uint8_t buf[IDESC_MAX_LEN], relays[2][32], cookies[2][BODY_COOKIE], data[BODY_DATA_MAX + 1];
    uint8_t handle[BODY_HANDLE];
    const uint8_t *hpk;
    const struct tnet_body *b;
    struct relay_stats st;
    struct seen seen;
    size_t len;

    net_setup(t);
    hpk = t->n[HN].id.pk;
    for (unsigned i = 0; i < sizeof(data); i++)
        data[i] = (uint8_t)(i * 7 + 3);
    tnet_chain_open(t, &t->ch[0], HN, IR);
    ovl_random(cookies, sizeof(cookies));
    ovl_random(relays[0], 32); /* no such relay */
    memcpy(relays[1], t->n[IR].id.pk, 32);
    h_establish(t, 0, cookies[1]);
    len = idesc_make(&t->n[HN].id, 1, (const uint8_t(*)[32])relays,
                     (const uint8_t(*)[BODY_COOKIE])cookies, 2, buf);
    tc_send(t, 0, BODY_PUBLISH, buf, len);
    ck_assert_uint_eq(tc_wait(t, 0, 1)->args[0], 1);
    wait_published(t, hpk, 1);

    tnet_chain_open(t, &t->ch[1], SN, XR);
    s_deliver(t, 1, hpk, data, 100);
    b = tc_wait(t, 0, 2);
    ck_assert_uint_eq(b->cmd, BODY_INTRO_DELIVER);
    ck_assert_uint_eq(b->len, BODY_HANDLE + 100);
    ck_assert_mem_eq(b->args + BODY_HANDLE, data, 100);
    memcpy(handle, b->args, BODY_HANDLE);

    seen = exit_seen(t);
    ck_assert_uint_eq(seen.exits, 1);
    ck_assert_uint_eq(seen.delivs, 1);
    ck_assert_uint_eq(seen.n_intros, 1);
    ck_assert_mem_eq(seen.intro, t->n[IR].id.pk, OVL_ED25519_PK);

    /* H answers; S reads it as from H */
    {
        uint8_t a[BODY_HANDLE + 50];

        memcpy(a, handle, BODY_HANDLE);
        memcpy(a + BODY_HANDLE, data + 200, 50);
        tc_send(t, 0, BODY_INTRO_BACK, a, sizeof(a));
    }
    b = tc_wait(t, 1, 0);
    ck_assert_uint_eq(b->cmd, BODY_DELIVER_BACK);
    ck_assert_uint_eq(b->len, OVL_ED25519_PK + 50);
    ck_assert_mem_eq(b->args, hpk, OVL_ED25519_PK);
    ck_assert_mem_eq(b->args + OVL_ED25519_PK, data + 200, 50);

    /* the next cell takes the same delivery: the same handle at H */
    s_deliver(t, 1, hpk, data + 1, BODY_DATA_MAX);
    b = tc_wait(t, 0, 3);
    ck_assert_uint_eq(b->cmd, BODY_INTRO_DELIVER);
    ck_assert_uint_eq(b->len, BODY_HANDLE + BODY_DATA_MAX);
    ck_assert_mem_eq(b->args, handle, BODY_HANDLE);
    ck_assert_mem_eq(b->args + BODY_HANDLE, data + 1, BODY_DATA_MAX);
    st = rstats(t, XR);
    ck_assert_uint_eq(st.hidden_delivs, 1);
    ck_assert_uint_eq(st.hidden_gone, 0);
    ck_assert_uint_eq(st.delivered_back, 1);
    ck_assert_uint_eq(st.delivered_cells, 2);

    /* H gives its chain up: the introduction at I ends */
    tnet_chain_close(&t->ch[0]);
    assert_deliver_fail(tc_wait(t, 1, 1), hpk, BODY_R_GONE);
    st = rstats(t, XR);
    ck_assert_uint_eq(st.hidden_gone, 1);
    seen = exit_seen(t);
    ck_assert_uint_eq(seen.delivs, 0);
    ck_assert_uint_eq(seen.n_intros, 0);
    net_teardown(t);
    free(t);
}
END_TEST

/* Publish from H's directory an inbound descriptor of id naming the first
 * n of relays and cookies; S's DELIVER to id on its chain 1 gets, as its
 * body i back, DELIVER_FAIL(id, reason). */
static void deliver_fails(struct net *t, const struct ovl_identity *id, uint8_t (*relays)[32],
                          uint8_t (*cookies)[BODY_COOKIE], unsigned n, unsigned i, uint8_t reason)
{
    uint8_t buf[IDESC_MAX_LEN], data[8] = {1};
    size_t len = idesc_make(id, 1, (const uint8_t(*)[32])relays,
                            (const uint8_t(*)[BODY_COOKIE])cookies, n, buf);

    ck_assert_int_eq(dir_publish_idesc(t->dir[HN], buf, len), 1);
    wait_published(t, id->pk, 1);
    s_deliver(t, 1, id->pk, data, sizeof(data));
    assert_deliver_fail(tc_wait(t, 1, i), id->pk, reason);
}

/* Hidden nodes X cannot reach: introduced only by X itself (gone: such a
 * descriptor is most likely stale, and is forgotten), only by relays the
 * directory does not know (gone), and by I under a cookie I does not hold
 * (gone, once I answers chain_destroy). */
START_TEST(test_hidden_fail)
{
    struct net *t = calloc(1, sizeof(*t));
    struct ovl_identity f[3];
    uint8_t relays[2][32], cookies[2][BODY_COOKIE];

    net_setup(t);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(ovl_identity_generate(&f[i]), 0);
    ovl_random(cookies, sizeof(cookies));
    tnet_chain_open(t, &t->ch[1], SN, XR);

    memcpy(relays[0], t->n[XR].id.pk, 32);
    deliver_fails(t, &f[0], relays, cookies, 1, 0, BODY_R_GONE);
    ovl_random(relays, sizeof(relays));
    deliver_fails(t, &f[1], relays, cookies, 2, 1, BODY_R_GONE);
    memcpy(relays[0], t->n[IR].id.pk, 32);
    deliver_fails(t, &f[2], relays, cookies, 1, 2, BODY_R_GONE);
    ck_assert_uint_eq(rstats(t, IR).intro_unknown, 1);
    ck_assert_uint_eq(rstats(t, XR).hidden_delivs, 1);
    ck_assert_uint_eq(rstats(t, XR).hidden_gone, 3);
    for (int i = 0; i < 3; i++)
        ovl_identity_wipe(&f[i]);
    net_teardown(t);
    free(t);
}
END_TEST

static Suite *hidden_suite(void)
{
    TCase *tc;
    Suite *s = tnet_suite("hidden", 60, &tc);

    tcase_add_test(tc, test_publish);
    tcase_add_test(tc, test_hidden_deliver);
    tcase_add_test(tc, test_hidden_fail);
    return s;
}

OVL_CHECK_MAIN(hidden_suite)
