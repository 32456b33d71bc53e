/* test_relay.c - chains through three relays, on one loop over loopback TCP.
 *
 * Six nodes: a bootstrap, three relays, a sender and a destination. There
 * is no client role yet, so the sender is this file: it builds setups and
 * data cells with onion.h, owns its chain ID through chanmap and unwraps
 * what comes back. The destination counts the CELL_CHAIN_DELIVER cells.
 * The world, setup headers and forward cells come from tnet.h.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "tnet.h"

enum { BS = 0, R1, R2, R3, SND, DST, N_NODES };
#define N_RELAYS  3
#define MAX_BACK  16
#define MAX_DELIV 64

/* One chain as its sender holds it. */
struct schain {
    struct onion_keys keys[ONION_MAX_HOPS];
    unsigned hops;
    uint64_t fwd_ctr, back_next[ONION_MAX_HOPS];
    uint32_t id;
};

struct net {
    TNET_WORLD(struct net, N_NODES); /* relays R1, R2 and R3 */

    /* the sender's chain */
    struct schain c;
    unsigned from; /* the node that sends setups: SND unless a test says */
    uint8_t back[MAX_BACK][OVL_CELL_PAYLOAD];
    unsigned n_back, n_destroy;
    uint8_t last_destroy;   /* reason byte of the last DESTROY received */
    const uint8_t *next0;   /* when set, hop 0 is told this next hop */
    struct cell last_setup; /* as sent, for the replay test */

    /* backpressure test */
    uint32_t sent, total;
    uint64_t blocked_since;

    /* the destination; DELIVER cells that reach the sender are counted apart */
    unsigned n_deliv, n_deliv_bad, n_deliv_snd;
    uint32_t deliv_id;

    /* the way back: while count_back, the sender opens every back cell
     * and counts the DELIVER_BACK bodies that open and the cells that do
     * not */
    bool count_back;
    unsigned n_back_ok, n_back_bad;
};

/* ---- sender chain owner ---- */

static void snd_cell(void *obj, struct link *l, const struct cell *c)
{
    struct net *t = obj;
    uint8_t body[ONION_BODY];
    unsigned origin;

    (void)l;
    if (c->cmd == CELL_CHAIN_BACK && t->count_back) {
        if (c->len == OVL_CELL_PAYLOAD &&
            onion_back_unwrap(body, &origin, t->c.keys, t->c.hops, t->c.back_next, c->payload) ==
                0 &&
            body[0] == BODY_DELIVER_BACK && origin == t->c.hops - 1)
            t->n_back_ok++;
        else
            t->n_back_bad++;
    } else if (c->cmd == CELL_CHAIN_BACK && c->len == OVL_CELL_PAYLOAD && t->n_back < MAX_BACK)
        memcpy(t->back[t->n_back++], c->payload, OVL_CELL_PAYLOAD);
    else if (c->cmd == CELL_CHAIN_DESTROY) {
        t->n_destroy++;
        t->last_destroy = c->len ? c->payload[0] : 0;
    }
}

static void snd_closed(void *obj, struct link *l, uint32_t id)
{
    (void)obj, (void)l, (void)id;
}

static const struct chain_owner snd_owner = {.cell = snd_cell, .link_closed = snd_closed};

/* ---- destination: data is seq(4, LE) then bytes seq + i ---- */

static void fill_data(uint8_t *p, uint16_t len, uint32_t seq)
{
    memcpy(p, &seq, 4);
    for (uint16_t i = 4; i < len; i++)
        p[i] = (uint8_t)(seq + i);
}

static uint16_t data_len(uint32_t seq)
{
    return (uint16_t)(4 + (seq * 97) % (BODY_DATA_MAX - 3));
}

static void on_deliver(void *ctx, struct link *l, const struct cell *c)
{
    struct net *t = ctx;
    uint8_t want[OVL_CELL_PAYLOAD];
    uint32_t seq;

    if (c->len < 4) {
        t->n_deliv_bad++;
        return;
    }
    memcpy(&seq, c->payload, 4);
    fill_data(want, data_len(seq), seq);
    if (c->len != data_len(seq) || memcmp(want, c->payload, c->len) != 0)
        t->n_deliv_bad++;
    else if (l->node == &t->n[SND])
        t->n_deliv_snd++;
    else if (t->deliv_id && c->chain_id != t->deliv_id)
        t->n_deliv_bad++;
    else
        t->n_deliv++;
    if (l->node != &t->n[SND])
        t->deliv_id = c->chain_id;
}

/* ---- the loop ---- */

TNET_DEFINE(struct net)

/* Every node listens on 127.0.0.1 but DST, which is in another address
 * block (127.0.1.0/24) for whoever dials it. */
static void net_setup(struct net *t, const struct relay_opts *ro)
{
    static const char listen_dst[1][OVL_URI_MAX] = {"tcp://127.0.1.1:0"};
    struct dir_bootstrap_spec bs;
    struct peer_spec peer;
    struct dir_opts dopts;

    tnet_open(t);
    t->from = SND;
    tnet_dir_opts(&dopts);
    dopts.request_timeout_ms = 2000;

    tnet_boot(&t->loop, t->n, t->dir, &dopts, &bs, &peer);
    for (unsigned i = R1; i <= R3; i++)
        tnet_relay(t, i, &dopts, &bs, &peer, ro);
    for (unsigned i = SND; i <= DST; i++) {
        tnet_join(&t->loop, t->n, t->dir, i, ROLE_CLIENT, &dopts, &bs);
        ck_assert_int_eq(chanmap_register_opener(&t->n[i], CELL_CHAIN_DELIVER, on_deliver, t), 0);
        ck_assert_int_eq(node_start(&t->n[i], i == DST ? listen_dst : tnet_listen, 1, &peer, 1), 0);
    }
    ck_assert(run_until(t, tnet_all_registered, 10000));
}

static void net_teardown(struct net *t)
{
    tnet_down(t);
    tnet_release(t);
    for (unsigned i = 0; i < ONION_MAX_HOPS; i++)
        onion_keys_wipe(&t->c.keys[i]);
}

static unsigned link_to; /* the node sender_linked() waits for */
static bool sender_linked(struct net *t)
{
    return tnet_link(t->n, t->from, link_to) != NULL;
}

static unsigned want_back = 1;
static bool got_back(struct net *t)
{
    return t->n_back >= want_back;
}

/* Open a chain from the sender (t->from) through path[0..hops-1]; the
 * last hop is the exit. */
static void chain_open(struct net *t, const unsigned *path, unsigned hops)
{
    struct cell c = {.cmd = CELL_CHAIN_SETUP, .len = ONION_HDR_LEN};
    struct link *l;

    t->c.hops = hops;
    t->c.fwd_ctr = 0;
    memset(t->c.back_next, 0, sizeof(t->c.back_next));
    t->n_back = 0;
    for (unsigned i = 0; i < ONION_MAX_HOPS; i++)
        onion_keys_wipe(&t->c.keys[i]); /* the chain opened before, if any */
    tnet_onion(c.payload, t->n, t->dir, path, hops, 60, t->next0, t->c.keys);
    l = tnet_link(t->n, t->from, path[0]);
    if (!l) {
        tnet_dial(t->n, t->from, path[0]);
        link_to = path[0];
        ck_assert(run_until(t, sender_linked, 5000));
        l = tnet_link(t->n, t->from, path[0]);
    }
    ck_assert_ptr_nonnull(l);
    ck_assert_int_eq(chanmap_alloc(&t->n[t->from], l, &snd_owner, t, &t->c.id), 0);
    c.chain_id = t->c.id;
    t->last_setup = c;
    ck_assert_int_eq(link_send(l, &c), 0);
}

/* Unwrap back cell i; return the body's command and the origin hop. */
static uint8_t back_cmd(struct net *t, unsigned i, unsigned *origin, uint8_t body[ONION_BODY])
{
    ck_assert_int_eq(
        onion_back_unwrap(body, origin, t->c.keys, t->c.hops, t->c.back_next, t->back[i]), 0);
    return body[0];
}

static struct link *sender_link(struct net *t)
{
    struct link *l = link_find(&t->n[SND], t->n[R1].id.pk);

    ck_assert_ptr_nonnull(l);
    return l;
}

/* Send one BODY_DELIVER of data seq to dest; flip flips one bit. */
static void send_deliver(struct net *t, const uint8_t *dest, uint32_t seq, bool flip)
{
    struct cell c;
    uint8_t args[OVL_ED25519_PK + BODY_DATA_MAX];
    uint16_t dl = data_len(seq);
    uint64_t ctr[ONION_MAX_HOPS];

    memcpy(args, dest, OVL_ED25519_PK);
    fill_data(args + OVL_ED25519_PK, dl, seq);
    for (unsigned i = 0; i < t->c.hops; i++)
        ctr[i] = t->c.fwd_ctr;
    t->c.fwd_ctr++;
    tnet_fwd(&c, t->c.id, t->c.keys, t->c.hops, ctr, BODY_DELIVER, args, OVL_ED25519_PK + dl);
    if (flip)
        c.payload[100 + seq % 800] ^= 0x10;
    ck_assert_int_eq(link_send(sender_link(t), &c), 0);
}

static struct relay_stats rstats(struct net *t, unsigned i)
{
    return tnet_rstats(t->relay[i]);
}

static unsigned want;
static bool delivered(struct net *t)
{
    return t->n_deliv + t->n_deliv_bad >= want;
}

static bool hop1_auth(struct net *t)
{
    return rstats(t, R1).dropped[RD_AUTH] >= 1;
}

static bool hop1_unknown(struct net *t)
{
    return rstats(t, R1).dropped[RD_UNKNOWN_CHAIN] >= 1;
}

static bool exit_no_route2(struct net *t)
{
    return rstats(t, R2).dropped[RD_NO_ROUTE] >= 2;
}

static bool no_chains(struct net *t)
{
    for (unsigned i = R1; i <= R3; i++)
        if (rstats(t, i).chains != 0)
            return false;
    return true;
}

static void relay_opts_test(struct relay_opts *o)
{
    relay_opts_defaults(o);
    o->setup_timeout_ms = 3000;
}

START_TEST(test_chain_end_to_end)
{
    static const unsigned path[] = {R1, R2, R3};
    struct relay_opts ro;
    struct net *t = calloc(1, sizeof(*t));
    uint8_t body[ONION_BODY];
    unsigned origin = 99;
    const unsigned k = 20;

    relay_opts_test(&ro);
    net_setup(t, &ro);
    chain_open(t, path, 3);
    ck_assert(run_until(t, got_back, 8000));
    ck_assert_uint_eq(back_cmd(t, 0, &origin, body), BODY_SETUP_OK);
    ck_assert_uint_eq(origin, 2);
    for (unsigned i = R1; i <= R3; i++) {
        ck_assert_uint_eq(rstats(t, i).chains, 1);
        ck_assert_uint_eq(rstats(t, i).setups_ok, 1);
    }

    for (uint32_t s = 0; s < k; s++)
        send_deliver(t, t->n[DST].id.pk, s, false);
    want = k;
    ck_assert(run_until(t, delivered, 5000));
    ck_assert_uint_eq(t->n_deliv, k);
    ck_assert_uint_eq(t->n_deliv_bad, 0);
    for (unsigned i = R1; i <= R3; i++) {
        struct relay_stats st = rstats(t, i);

        ck_assert_uint_eq(st.cells_fwd_in, k);
        ck_assert_uint_eq(st.cells_peeled, k);
        ck_assert_uint_eq(st.cells_forwarded, i == R3 ? 0 : k);
        ck_assert_uint_eq(st.dropped[RD_AUTH], 0);
    }
    ck_assert_uint_eq(rstats(t, R3).delivered, 1);
    ck_assert_uint_eq(rstats(t, R3).delivered_cells, k);

    /* One flipped bit: hop 1 drops it, the chain keeps working. */
    send_deliver(t, t->n[DST].id.pk, k, true);
    ck_assert(run_until(t, hop1_auth, 5000));
    ck_assert_uint_eq(rstats(t, R1).cells_peeled, k);
    send_deliver(t, t->n[DST].id.pk, k + 1, false);
    want = k + 1;
    ck_assert(run_until(t, delivered, 5000));
    ck_assert_uint_eq(t->n_deliv, k + 1);
    ck_assert_uint_eq(rstats(t, R1).dropped[RD_AUTH], 1);

    /* A chain ID nobody owns is counted and dropped. */
    {
        struct cell c = {
            .chain_id = t->c.id ^ 0x5a5a5a, .cmd = CELL_CHAIN_FWD, .len = OVL_CELL_PAYLOAD};

        ck_assert_int_eq(link_send(sender_link(t), &c), 0);
        ck_assert(run_until(t, hop1_unknown, 5000));
    }

    /* DESTROY tears down every hop. */
    {
        struct cell c = {.chain_id = t->c.id, .cmd = CELL_CHAIN_DESTROY};

        ck_assert_int_eq(link_send(sender_link(t), &c), 0);
        chanmap_del(&t->n[SND], sender_link(t), t->c.id);
        ck_assert(run_until(t, no_chains, 5000));
    }
    net_teardown(t);
    free(t);
}
END_TEST

/* A relay whose next hop the directory does not know answers SETUP_FAIL;
 * an exit asked to deliver to an unknown node answers DELIVER_FAIL once. */
START_TEST(test_failures)
{
    static const unsigned path[] = {R1, R2};
    struct relay_opts ro;
    struct net *t = calloc(1, sizeof(*t));
    uint8_t body[ONION_BODY], nobody[OVL_ED25519_PK];
    unsigned origin = 99;

    relay_opts_test(&ro);
    net_setup(t, &ro);

    /* Exit R2 delivering to a node nobody knows. */
    chain_open(t, path, 2);
    ck_assert(run_until(t, got_back, 8000));
    ck_assert_uint_eq(back_cmd(t, 0, &origin, body), BODY_SETUP_OK);
    ck_assert_uint_eq(origin, 1);
    ovl_random(nobody, sizeof(nobody));
    send_deliver(t, nobody, 1, false);
    send_deliver(t, nobody, 2, false);
    want_back = 2;
    ck_assert(run_until(t, got_back, 8000));
    ck_assert(run_until(t, exit_no_route2, 8000));
    want_back = 1;
    ck_assert_uint_eq(back_cmd(t, 1, &origin, body), BODY_DELIVER_FAIL);
    ck_assert_uint_eq(origin, 1);
    ck_assert_int_eq(body_hdr_len(body), OVL_ED25519_PK + 1);
    ck_assert_mem_eq(body + BODY_HDR, nobody, OVL_ED25519_PK);
    ck_assert_uint_eq(t->n_back, 2); /* once per destination per chain */
    ck_assert_uint_eq(rstats(t, R2).dropped[RD_NO_ROUTE], 2);
    ck_assert_uint_eq(t->n_deliv, 0);
    net_teardown(t);
    free(t);
}
END_TEST

static bool got_destroy(struct net *t)
{
    return t->n_destroy > 0;
}

/* A next hop nobody knows: hop 0 answers SETUP_FAIL(no_route) and forgets
 * the chain; a setup of the wrong length is answered with DESTROY. */
START_TEST(test_setup_fail)
{
    static const unsigned path[] = {R1, R2, R3};
    struct relay_opts ro;
    struct net *t = calloc(1, sizeof(*t));
    uint8_t body[ONION_BODY], nobody[OVL_ED25519_PK];
    unsigned origin = 99;

    relay_opts_test(&ro);
    net_setup(t, &ro);
    ovl_random(nobody, sizeof(nobody));
    t->next0 = nobody;
    chain_open(t, path, 3);
    ck_assert(run_until(t, got_back, 8000));
    ck_assert_uint_eq(back_cmd(t, 0, &origin, body), BODY_SETUP_FAIL);
    ck_assert_uint_eq(origin, 0);
    ck_assert_uint_eq(body[BODY_HDR], BODY_R_NO_ROUTE);
    ck_assert_uint_eq(rstats(t, R1).chains, 0);
    ck_assert_uint_eq(rstats(t, R1).setups_failed, 1);
    ck_assert_uint_eq(rstats(t, R1).dropped[RD_NO_ROUTE], 1);
    chanmap_del(&t->n[SND], sender_link(t), t->c.id);

    {
        struct cell c = {.cmd = CELL_CHAIN_SETUP, .len = 10};

        ck_assert_int_eq(chanmap_alloc(&t->n[SND], sender_link(t), &snd_owner, t, &c.chain_id), 0);
        ck_assert_int_eq(link_send(sender_link(t), &c), 0);
        ck_assert(run_until(t, got_destroy, 5000));
        ck_assert_uint_eq(t->last_destroy, DESTROY_R_PROTOCOL);
        ck_assert_uint_eq(rstats(t, R1).dropped[RD_BAD_CELL], 1);
        ck_assert_uint_eq(rstats(t, R1).chains, 0);
    }
    net_teardown(t);
    free(t);
}
END_TEST

/* Send a forward cell with body (cmd, args) that ends at hop hops - 1. */
static void send_body(struct net *t, unsigned hops, uint8_t cmd, const uint8_t *args, size_t alen)
{
    struct cell c;
    uint64_t ctr[ONION_MAX_HOPS] = {t->c.fwd_ctr++}; /* only hop 0 has seen cells before */

    tnet_fwd(&c, t->c.id, t->c.keys, hops, ctr, cmd, args, alen);
    ck_assert_int_eq(link_send(sender_link(t), &c), 0);
}

static bool r1_broken(struct net *t)
{
    return rstats(t, R1).broken > 0 && t->n_back >= 2;
}

static bool r1_bad(struct net *t)
{
    return rstats(t, R1).dropped[RD_BAD_CELL] > 0;
}

/* R1 loses its next hop: it sends BROKEN, keeps its part of the chain and
 * reads only BODY_EXTEND, which moves the chain on to R3 (one new hop set
 * up behind the old one); without an EXTEND it gives up after
 * setup_timeout and tells the sender. */
START_TEST(test_broken_reextend)
{
    static const unsigned path[] = {R1, R2}, next[] = {R3};
    struct relay_opts ro;
    struct net *t = calloc(1, sizeof(*t));
    uint8_t body[ONION_BODY], ext[BODY_EXTEND_LEN];
    unsigned origin = 99;

    relay_opts_test(&ro);
    net_setup(t, &ro);
    chain_open(t, path, 2);
    ck_assert(run_until(t, got_back, 8000));
    ck_assert_uint_eq(back_cmd(t, 0, &origin, body), BODY_SETUP_OK);
    link_close(link_find(&t->n[R1], t->n[R2].id.pk), LC_SHUTDOWN);
    ck_assert(run_until(t, r1_broken, 5000));
    ck_assert_uint_eq(back_cmd(t, 1, &origin, body), BODY_BROKEN);
    ck_assert_uint_eq(origin, 0);
    ck_assert_uint_eq(rstats(t, R1).chains, 1);
    ck_assert_uint_eq(t->n_destroy, 0);
    /* Any other body is dropped; the chain stays. */
    send_body(t, 1, BODY_DROP, NULL, 0);
    ck_assert(run_until(t, r1_bad, 5000));
    ck_assert_uint_eq(rstats(t, R1).chains, 1);
    /* EXTEND to R3 with a one-hop setup header. */
    onion_keys_wipe(&t->c.keys[1]);
    memcpy(ext, t->n[R3].id.pk, OVL_ED25519_PK);
    tnet_onion(ext + OVL_ED25519_PK, t->n, t->dir, next, 1, 60, NULL, &t->c.keys[1]);
    t->c.back_next[1] = 0;
    want_back = 3;
    send_body(t, 1, BODY_EXTEND, ext, sizeof(ext));
    ck_assert(run_until(t, got_back, 8000));
    ck_assert_uint_eq(back_cmd(t, 2, &origin, body), BODY_SETUP_OK);
    ck_assert_uint_eq(origin, 1);
    ck_assert_uint_eq(rstats(t, R1).reextended, 1);
    ck_assert_uint_eq(rstats(t, R3).chains, 1);
    /* Lost again, and no EXTEND this time: DESTROY(link_closed) back. */
    link_close(link_find(&t->n[R1], t->n[R3].id.pk), LC_SHUTDOWN);
    ck_assert(run_until(t, got_destroy, 3 * ro.setup_timeout_ms));
    ck_assert_uint_eq(t->last_destroy, DESTROY_R_LINK_CLOSED);
    ck_assert_uint_eq(rstats(t, R1).broken, 2);
    ck_assert(run_until(t, no_chains, 5000));
    want_back = 1;
    net_teardown(t);
    free(t);
}
END_TEST

/* A chain lives at most max_lifetime: every hop ends it and says why. */
START_TEST(test_expiry)
{
    static const unsigned path[] = {R1, R2};
    struct relay_opts ro;
    struct net *t = calloc(1, sizeof(*t));
    uint8_t body[ONION_BODY];
    unsigned origin = 99;

    relay_opts_test(&ro);
    ro.max_lifetime_s = 1;
    net_setup(t, &ro);
    chain_open(t, path, 2);
    ck_assert(run_until(t, got_back, 8000));
    ck_assert_uint_eq(back_cmd(t, 0, &origin, body), BODY_SETUP_OK);
    ck_assert_uint_eq(rstats(t, R1).chains, 1);
    ck_assert(run_until(t, got_destroy, 5000));
    ck_assert_uint_eq(t->last_destroy, DESTROY_R_EXPIRED);
    ck_assert(run_until(t, no_chains, 5000));
    ck_assert_uint_ge(rstats(t, R1).dropped[RD_EXPIRED], 1);
    net_teardown(t);
    free(t);
}
END_TEST

/* Cells the sender leaves free on its link, as a relay keeps
 * RELAY_HEADROOM: while the chain holds it back its neighbour still sends
 * PINGs, and a node whose PONG finds the queue full closes the link
 * (LC_QUEUE_FULL), which would end the test early. */
#define SND_SPARE 8

/* After a pump on l: since when l has had no room for the cells still to
 * send (0 while it has, or all were sent). */
static void note_blocked(struct net *t, struct link *l)
{
    if (t->sent < t->total && !link_can_send(l, 1 + SND_SPARE)) {
        if (!t->blocked_since)
            t->blocked_since = clock_now_ms();
    } else {
        t->blocked_since = 0;
    }
}

/* Send data cells while the sender's link has room. */
static void pump(struct net *t)
{
    struct link *l = sender_link(t);
    unsigned burst = 0;

    while (t->sent < t->total && burst++ < 256 && link_can_send(l, 1 + SND_SPARE))
        send_deliver(t, t->n[DST].id.pk, t->sent++, false);
    note_blocked(t, l);
}

static bool sender_stalled(struct net *t)
{
    return t->sent == t->total || (t->blocked_since && clock_now_ms() - t->blocked_since >= 200);
}

static uint64_t queue_drops(struct net *t)
{
    uint64_t drops = 0;

    for (unsigned i = R1; i <= R3; i++)
        drops += rstats(t, i).dropped[RD_QUEUE_FULL];
    return drops;
}

static bool all_sent_delivered(struct net *t)
{
    return t->sent == t->total && t->n_deliv + t->n_deliv_bad + queue_drops(t) >= t->total;
}

/* Node `reader` stops reading from node `writer`, the sender pumps until
 * it is held back, then `reader` reads again and every cell must arrive.
 * `first_held` is the first relay the stall keeps cells from. No timer
 * resumes anything: each paused link waits for the drained() of the full
 * link its cells go to, so the hold travels back hop by hop and is
 * undone the same way. */
static void backpressure_run(unsigned reader, unsigned writer, unsigned first_held)
{
    static const unsigned path[] = {R1, R2, R3};
    struct relay_opts ro;
    struct net *t = calloc(1, sizeof(*t));
    struct relay_stats held;
    struct link *stalled;

    relay_opts_test(&ro);
    ro.stall_timeout_ms = 600000; /* holding, not closing, is tested here (test_stall) */
    net_setup(t, &ro);
    chain_open(t, path, 3);
    ck_assert(run_until(t, got_back, 8000));
    /* Let the exit open its link to the destination first, so that no
     * cell waits in (or overflows) the exit queue. */
    send_deliver(t, t->n[DST].id.pk, 0, false);
    want = 1;
    ck_assert(run_until(t, delivered, 5000));
    t->sent = 1;
    stalled = link_find(&t->n[reader], t->n[writer].id.pk);
    ck_assert_ptr_nonnull(stalled);
    link_pause(stalled);

    t->total = 60000;
    t->pump = pump;
    ck_assert(run_until(t, sender_stalled, 20000));
    ck_assert_uint_lt(t->sent, t->total); /* the sender was held back */
    held = rstats(t, first_held);
    ck_assert_uint_lt(held.cells_fwd_in + held.dropped[RD_QUEUE_FULL], t->sent);
    link_resume(link_find(&t->n[reader], t->n[writer].id.pk));
    ck_assert(run_until(t, all_sent_delivered, 30000));
    t->pump = NULL;
    for (unsigned i = R1; i <= R3; i++)
        ck_assert_uint_eq(rstats(t, i).dropped[RD_AUTH], 0);
    /* Relays pause their incoming link before the outgoing one is full,
     * so nothing was dropped on the way. */
    ck_assert_uint_eq(queue_drops(t), 0);
    ck_assert_uint_eq(t->n_deliv_bad, 0);
    ck_assert_uint_eq(t->n_deliv, t->total);
    net_teardown(t);
    free(t);
}

/* R2 stops reading from R1: R1's queue toward R2 fills, R1 holds the
 * sender back, and once R2 reads again every cell arrives: backpressure
 * reaches the sender without breaking the chain. */
START_TEST(test_backpressure)
{
    backpressure_run(R2, R1, R2);
}
END_TEST

/* The destination stops reading from the exit: the exit's DELIVER cells
 * fill its link to the destination and it holds R2 back (the exit's own
 * path to relay_send), R2 holds R1, R1 the sender; once the destination
 * reads again the delivery link's drained() undoes it all. */
START_TEST(test_exit_backpressure)
{
    backpressure_run(DST, R3, R3);
}
END_TEST

static bool hop1_replay(struct net *t)
{
    return rstats(t, R1).dropped[RD_REPLAY] >= 1;
}

/* The same setup header on a fresh chain ID is refused: it would make a
 * second chain with the same keys and counters from zero. */
START_TEST(test_setup_replay)
{
    static const unsigned path[] = {R1};
    struct relay_opts ro;
    struct net *t = calloc(1, sizeof(*t));
    struct cell again;
    struct link *l;

    relay_opts_test(&ro);
    net_setup(t, &ro);
    chain_open(t, path, 1);
    ck_assert(run_until(t, got_back, 8000));
    again = t->last_setup;
    l = sender_link(t);
    ck_assert_int_eq(chanmap_alloc(&t->n[SND], l, &snd_owner, t, &again.chain_id), 0);
    ck_assert_int_eq(link_send(l, &again), 0);
    ck_assert(run_until(t, hop1_replay, 5000));
    ck_assert_uint_eq(rstats(t, R1).setups_ok, 1);
    ck_assert_uint_eq(rstats(t, R1).chains, 1);
    ck_assert_uint_eq(rstats(t, R1).dropped[RD_REPLAY], 1);
    net_teardown(t);
    free(t);
}
END_TEST

/* A burst to a destination the exit has no link to yet: the exit holds
 * its incoming link back while it dials instead of dropping what does not
 * fit its queue (more than ONION_WINDOW drops would break the chain). */
START_TEST(test_exit_burst)
{
    static const unsigned path[] = {R1, R2, R3};
    struct relay_opts ro;
    struct net *t = calloc(1, sizeof(*t));

    relay_opts_test(&ro);
    ck_assert_uint_eq(ro.exit_queue, 256); /* the default */
    net_setup(t, &ro);
    chain_open(t, path, 3);
    ck_assert(run_until(t, got_back, 8000));
    t->total = 1500;
    t->pump = pump;
    ck_assert(run_until(t, all_sent_delivered, 30000));
    t->pump = NULL;
    ck_assert_uint_eq(queue_drops(t), 0);
    ck_assert_uint_eq(t->n_deliv_bad, 0);
    ck_assert_uint_eq(t->n_deliv, t->total);
    ck_assert_uint_eq(rstats(t, R3).delivered_cells, t->total);
    net_teardown(t);
    free(t);
}
END_TEST

/* The destination's link to the exit, R3. */
static struct link *dst_link(struct net *t)
{
    struct link *l = link_find(&t->n[DST], t->n[R3].id.pk);

    ck_assert_ptr_nonnull(l);
    return l;
}

/* The destination sends full DELIVER cells back on its delivery ID while
 * its link to the exit has room. */
static void pump_back(struct net *t)
{
    struct cell c = {.chain_id = t->deliv_id, .cmd = CELL_CHAIN_DELIVER, .len = BODY_DATA_MAX};
    struct link *l = dst_link(t);
    unsigned burst = 0;

    while (t->sent < t->total && burst++ < 256 && link_can_send(l, 1 + SND_SPARE)) {
        fill_data(c.payload, BODY_DATA_MAX, t->sent++);
        ck_assert_int_eq(link_send(l, &c), 0);
    }
    note_blocked(t, l);
}

/* Every cell the destination sent back reached the sender or was dropped. */
static bool all_back(struct net *t)
{
    return t->sent == t->total && t->n_back_ok + t->n_back_bad + queue_drops(t) >= t->total;
}

/* The sender stops reading while the destination sends back: R1's queue
 * toward the sender fills and the hold travels up to the exit, which
 * holds the destination's link back before its queue toward R2 is full;
 * a cell the exit still finds no room for is dropped before it is sealed.
 * Once the sender reads again every cell that was not dropped opens, and
 * so does the next: a cell the exit sealed and then dropped would have
 * used up the sender's counter window (more than ONION_WINDOW of them in
 * a row and nothing more back on the chain opens). */
START_TEST(test_exit_back_backpressure)
{
    static const unsigned path[] = {R1, R2, R3};
    struct relay_opts ro;
    struct net *t = calloc(1, sizeof(*t));
    struct link *stalled;
    uint8_t body[ONION_BODY];
    unsigned origin = 99, ok;
    bool held;

    relay_opts_test(&ro);
    ro.stall_timeout_ms = 600000; /* holding, not closing, is tested here (test_stall) */
    net_setup(t, &ro);
    chain_open(t, path, 3);
    ck_assert(run_until(t, got_back, 8000));
    ck_assert_uint_eq(back_cmd(t, 0, &origin, body), BODY_SETUP_OK);
    send_deliver(t, t->n[DST].id.pk, 0, false); /* the exit's delivery ID to DST */
    want = 1;
    ck_assert(run_until(t, delivered, 5000));
    ck_assert_uint_ne(t->deliv_id, 0);
    t->count_back = true;
    stalled = sender_link(t);
    link_pause(stalled);

    t->total = 60000;
    t->pump = pump_back;
    ck_assert(run_until(t, sender_stalled, 20000));
    held = t->sent < t->total;
    link_resume(stalled);
    ck_assert(run_until(t, all_back, 30000));
    t->pump = NULL;
    ck_assert_uint_eq(t->n_back_bad, 0);
    /* the chain still carries cells back */
    ok = t->n_back_ok;
    t->total++;
    pump_back(t);
    ck_assert(run_until(t, all_back, 5000));
    ck_assert_uint_eq(t->n_back_bad, 0);
    ck_assert_uint_eq(t->n_back_ok, ok + 1);
    ck_assert(held); /* the destination was held back */
    ck_assert_uint_eq(t->n_back_ok + rstats(t, R3).dropped[RD_QUEUE_FULL], t->total);
    ck_assert_uint_eq(rstats(t, R1).dropped[RD_QUEUE_FULL] + rstats(t, R2).dropped[RD_QUEUE_FULL],
                      0);
    for (unsigned i = R1; i <= R3; i++)
        ck_assert_uint_eq(rstats(t, i).dropped[RD_AUTH], 0);
    net_teardown(t);
    free(t);
}
END_TEST

static bool answered(struct net *t)
{
    return t->n_back >= 1 || t->n_destroy > 0;
}

/* Open a chain from t->from and wait for its answer: the command of the
 * first backward body (*origin: the hop that sent it, *reason: its first
 * argument), or 0 for a DESTROY. A refused chain is forgotten. */
static uint8_t chain_try(struct net *t, const unsigned *path, unsigned hops, unsigned *origin,
                         uint8_t *reason)
{
    uint8_t body[ONION_BODY], cmd = 0;

    t->n_destroy = 0;
    chain_open(t, path, hops);
    ck_assert(run_until(t, answered, 8000));
    if (t->n_back > 0) {
        cmd = back_cmd(t, 0, origin, body);
        *reason = body[BODY_HDR];
    }
    if (cmd != BODY_SETUP_OK)
        chanmap_del(&t->n[t->from], tnet_link(t->n, t->from, path[0]), t->c.id);
    return cmd;
}

/* Make DST, in another address block (127.0.1.0/24 as R1 dialed it), the
 * sender of the next setups, over a link R1 dialed. */
static void send_from_dst(struct net *t)
{
    tnet_dial(t->n, R1, DST);
    t->from = DST;
    link_to = R1;
    ck_assert(run_until(t, sender_linked, 5000));
}

/* A link may hold max_chains_per_link chains and an address block
 * max_chains_per_block: setups over a share get SETUP_FAIL(limit),
 * counted share, while other links and blocks still open chains. */
START_TEST(test_chain_shares)
{
    static const unsigned one[] = {R1}, two[] = {R2, R1};
    struct relay_opts ro;
    struct net *t = calloc(1, sizeof(*t));
    unsigned origin = 99;
    uint8_t reason = 0;

    relay_opts_test(&ro);
    ro.max_chains = 64;
    ro.max_chains_per_link = 2;
    ro.max_chains_per_block = 3;
    net_setup(t, &ro);
    for (unsigned i = 0; i < 2; i++)
        ck_assert_uint_eq(chain_try(t, one, 1, &origin, &reason), BODY_SETUP_OK);
    /* The sender's link is at its share. */
    ck_assert_uint_eq(chain_try(t, one, 1, &origin, &reason), BODY_SETUP_FAIL);
    ck_assert_uint_eq(origin, 0);
    ck_assert_uint_eq(reason, BODY_R_LIMIT);
    ck_assert_uint_eq(rstats(t, R1).dropped[RD_SHARE], 1);
    /* Another link (R2's) of the same block takes the block's last chain. */
    ck_assert_uint_eq(chain_try(t, two, 2, &origin, &reason), BODY_SETUP_OK);
    ck_assert_uint_eq(chain_try(t, two, 2, &origin, &reason), BODY_SETUP_FAIL);
    ck_assert_uint_eq(origin, 1);
    ck_assert_uint_eq(reason, BODY_R_LIMIT);
    ck_assert_uint_eq(rstats(t, R1).dropped[RD_SHARE], 2);
    /* A peer in another block still gets a chain. */
    send_from_dst(t);
    ck_assert_uint_eq(chain_try(t, one, 1, &origin, &reason), BODY_SETUP_OK);
    ck_assert_uint_eq(rstats(t, R1).chains, 4);
    ck_assert_uint_eq(rstats(t, R1).dropped[RD_SHARE], 2);
    ck_assert_uint_eq(rstats(t, R1).dropped[RD_LIMIT], 0);
    net_teardown(t);
    free(t);
}
END_TEST

static bool r1_no_chains(struct net *t)
{
    return rstats(t, R1).chains == 0;
}

/* The replay filter is one table for every link, charged per address
 * block: a peer that makes and ends chains until its block holds twice
 * its chain share of remembered setups is refused from then on, and
 * only it; a peer in another block still sets up chains, and a header
 * replayed from there is still caught. */
START_TEST(test_replay_filter_share)
{
    static const unsigned one[] = {R1};
    struct relay_opts ro;
    struct net *t = calloc(1, sizeof(*t));
    struct cell first;
    struct link *l;
    unsigned origin = 99, ok = 0;
    uint8_t reason = 0;

    relay_opts_test(&ro);
    ro.max_chains = 4; /* the filter holds 8 */
    ro.max_chains_per_block = 2;
    net_setup(t, &ro);
    while (ok < 3 * ro.max_chains && chain_try(t, one, 1, &origin, &reason) == BODY_SETUP_OK) {
        struct cell d = {.chain_id = t->c.id, .cmd = CELL_CHAIN_DESTROY};

        if (ok++ == 0)
            first = t->last_setup;
        ck_assert_int_eq(link_send(sender_link(t), &d), 0);
        chanmap_del(&t->n[SND], sender_link(t), t->c.id);
        ck_assert(run_until(t, r1_no_chains, 5000));
    }
    ck_assert_uint_eq(t->last_destroy, DESTROY_R_PROTOCOL);
    /* Another block is not refused. */
    send_from_dst(t);
    ck_assert_uint_eq(chain_try(t, one, 1, &origin, &reason), BODY_SETUP_OK);
    ck_assert_uint_eq(ok, 2 * ro.max_chains_per_block);
    ck_assert_uint_eq(rstats(t, R1).dropped[RD_SHARE], 1);
    ck_assert_uint_eq(rstats(t, R1).dropped[RD_LIMIT], 0);
    /* The sender's first setup replayed by DST: still a replay. */
    l = link_find(&t->n[DST], t->n[R1].id.pk);
    ck_assert_int_eq(chanmap_alloc(&t->n[DST], l, &snd_owner, t, &first.chain_id), 0);
    ck_assert_int_eq(link_send(l, &first), 0);
    ck_assert(run_until(t, hop1_replay, 5000));
    ck_assert_uint_eq(rstats(t, R1).chains, 1);
    net_teardown(t);
    free(t);
}
END_TEST

static unsigned want_snd;
static bool snd_delivered(struct net *t)
{
    return t->n_deliv_snd >= want_snd;
}

static bool held_or_gone(struct net *t)
{
    return sender_stalled(t) || t->n_destroy > 0;
}

static bool chain_gone(struct net *t)
{
    return t->n_destroy > 0;
}

static bool r3_stall_closed(struct net *t)
{
    return t->n[R3].ctr.link_closed[LC_STALLED] > 0;
}

/* A destination that never reads: the exit's link to it fills and
 * backpressure holds every link back to the sender, so chain B, which
 * shares them with chain A, stalls too. After stall_timeout the exit
 * closes the destination's link (LC_STALLED) and ends chain A; the held
 * links drain and chain B delivers. The hops before the exit give their
 * links twice as long, and close nothing. */
START_TEST(test_stall)
{
    static const unsigned path[] = {R1, R2, R3};
    struct relay_opts ro;
    struct net *t = calloc(1, sizeof(*t));
    struct schain chain_b;
    const uint32_t k = 3;

    relay_opts_test(&ro);
    ro.stall_timeout_ms = 2000;
    net_setup(t, &ro);
    /* Chain B delivers to the sender itself. */
    chain_open(t, path, 3);
    ck_assert(run_until(t, got_back, 8000));
    send_deliver(t, t->n[SND].id.pk, 0, false);
    want_snd = 1;
    ck_assert(run_until(t, snd_delivered, 5000));
    chain_b = t->c; /* moved aside: its keys are chain_b's alone now */
    memset(t->c.keys, 0, sizeof(t->c.keys));
    /* Chain A delivers to DST, which then stops reading. */
    chain_open(t, path, 3);
    ck_assert(run_until(t, got_back, 8000));
    send_deliver(t, t->n[DST].id.pk, 0, false);
    want = 1;
    ck_assert(run_until(t, delivered, 5000));
    link_pause(link_find(&t->n[DST], t->n[R3].id.pk));
    t->sent = 1;
    t->total = 60000;
    t->pump = pump;
    ck_assert(run_until(t, held_or_gone, 20000));
    t->pump = NULL;
    /* Chain B's cells go in behind chain A's. */
    for (unsigned i = 0; i < ONION_MAX_HOPS; i++)
        onion_keys_wipe(&t->c.keys[i]);
    t->c = chain_b;
    ovl_wipe(&chain_b, sizeof(chain_b));
    for (uint32_t s = 1; s <= k; s++)
        send_deliver(t, t->n[SND].id.pk, s, false);
    want_snd = 1 + k;
    ck_assert(run_until(t, snd_delivered, 30000));
    ck_assert(run_until(t, r3_stall_closed, 10000));
    ck_assert(run_until(t, chain_gone, 10000));
    ck_assert_uint_eq(t->last_destroy, DESTROY_R_LINK_CLOSED);
    ck_assert_uint_eq(rstats(t, R3).stalled, 1);
    ck_assert_uint_eq(t->n[R3].ctr.link_closed[LC_STALLED], 1);
    for (unsigned i = R1; i <= R3; i++) {
        ck_assert_uint_eq(rstats(t, i).chains, 1); /* chain B */
        if (i != R3) {
            ck_assert_uint_eq(rstats(t, i).stalled, 0);
            ck_assert_uint_eq(t->n[i].ctr.link_closed[LC_STALLED], 0);
        }
    }
    ck_assert_uint_eq(t->n_deliv_bad, 0);
    net_teardown(t);
    free(t);
}
END_TEST

START_TEST(test_drop_names)
{
    static const struct {
        enum relay_drop d;
        const char *name;
    } cases[] = {
        {RD_UNKNOWN_CHAIN, "unknown_chain"},
        {RD_AUTH, "auth"},
        {RD_BAD_CELL, "bad_cell"},
        {RD_QUEUE_FULL, "queue_full"},
        {RD_NO_ROUTE, "no_route"},
        {RD_LIMIT, "limit"},
        {RD_EXPIRED, "expired"},
        {RD_REPLAY, "replay"},
        {RD_SHARE, "share"},
        {RD_DORMANT, "dormant"},
        {RD_COUNT, "unknown"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        ck_assert_str_eq(relay_drop_name(cases[i].d), cases[i].name);
}
END_TEST

START_TEST(test_init_checks)
{
    struct relay_opts ro;
    struct relay *r = (struct relay *)1;
    struct node n;
    struct ovl_identity id;
    struct node_opts o;
    uv_loop_t loop;

    ck_assert_int_eq(uv_loop_init(&loop), 0);
    node_opts_defaults(&o);
    ck_assert_int_eq(ovl_identity_generate(&id), 0);
    memset(&n, 0, sizeof(n));
    ck_assert_int_eq(node_init(&n, &loop, &o, &id, ROLE_RELAY), 0);
    relay_opts_defaults(&ro);
    ck_assert_uint_eq(ro.max_chains, 65536);
    ck_assert_uint_eq(ro.setup_timeout_ms, 10000);
    ck_assert_uint_eq(ro.max_lifetime_s, 3600);
    ck_assert_uint_eq(ro.exit_queue, 256);
    ck_assert_uint_eq(ro.max_chains_per_link, 0); /* derived from max_chains */
    ck_assert_uint_eq(ro.max_chains_per_block, 0);
    ck_assert_uint_eq(ro.stall_timeout_ms, 5000);
    /* No directory: refused, nothing registered. */
    ck_assert_int_eq(relay_init(&n, &ro, &r), OVL_EINVAL);
    ck_assert_ptr_null(r);
    ck_assert_ptr_null(n.chain_open.h[CELL_CHAIN_SETUP].fn);
    /* No room for its link observer: refused, and the opener it had
     * registered is gone again. */
    n.n_observers = NODE_MAX_OBSERVERS;
    n.dir = (struct dir *)&n; /* only checked for NULL before the observers */
    ck_assert_int_eq(relay_init(&n, &ro, &r), OVL_ENOMEM);
    ck_assert_ptr_null(r);
    ck_assert_ptr_null(n.chain_open.h[CELL_CHAIN_SETUP].fn);
    n.n_observers = 0;
    n.dir = NULL;
    relay_free(NULL);
    node_free(&n);
    uv_run(&loop, UV_RUN_DEFAULT); /* the refused init's timers close */
    ck_assert_int_eq(uv_loop_close(&loop), 0);
}
END_TEST

static Suite *relay_suite(void)
{
    TCase *tc;
    Suite *s = tnet_suite("relay", 30, &tc);

    tcase_add_test(tc, test_drop_names);
    tcase_add_test(tc, test_init_checks);
    tcase_add_test(tc, test_chain_end_to_end);
    tcase_add_test(tc, test_failures);
    tcase_add_test(tc, test_setup_fail);
    tcase_add_test(tc, test_expiry);
    tcase_add_test(tc, test_broken_reextend);
    tcase_add_test(tc, test_backpressure);
    tcase_add_test(tc, test_exit_backpressure);
    tcase_add_test(tc, test_exit_burst);
    tcase_add_test(tc, test_exit_back_backpressure);
    tcase_add_test(tc, test_setup_replay);
    tcase_add_test(tc, test_chain_shares);
    tcase_add_test(tc, test_replay_filter_share);
    tcase_add_test(tc, test_stall);
    return s;
}

OVL_CHECK_MAIN(relay_suite)
