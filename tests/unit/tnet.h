/* tnet.h - the network fixture shared by test_relay.c, test_xstream.c,
 * test_svc.c, test_intro.c and test_hidden_exit.c: nodes on one uv loop over
 * loopback TCP, a bootstrap the others register with, and a sender that
 * is the test itself: it builds chain setups and forward cells with
 * onion.h instead of running the client role.
 *
 * A test's world is its own struct T that begins with TNET_WORLD(T, N)
 * (the loop, loopfix.h's timers, N nodes and their directory contexts,
 * indexed alike; index 0 is the bootstrap) and is followed by
 * TNET_DEFINE(T) once, which defines loopfix.h's functions for T and:
 *     tnet_open(t)           zero *t, start its loop and loopfix's timers
 *     tnet_down(t)           stop the nodes, run the loop out, close it
 *     tnet_all_registered(t) condition: every node but 0 registered
 *     tnet_chain_open(t, c, from, to)    open tnet_chain c, wait SETUP_OK
 *     tnet_chain_wait(t, c, i, ms)       wait for c's backward body i
 * A test brings its net up with tnet_open(), tnet_boot() and tnet_join()
 * for each other node (adding its roles' contexts before tnet_start), and
 * takes it down by stopping its roles' contexts, tnet_down(), freeing the
 * contexts and tnet_free(). The roles' contexts are the test's: tnet.h
 * never stops or frees them.
 *
 * The functions that take (n, dir) work on those arrays directly, so a
 * test may use them on any nodes it holds.
 */
#ifndef OVL_TESTS_TNET_H
#define OVL_TESTS_TNET_H

#include <check.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "chain/body.h"
#include "chain/onion.h"
#include "chain/relay.h"
#include "core/chanmap.h"
#include "core/link.h"
#include "core/node_run.h"
#include "dir/dir.h"
#include "lib/bytes.h"
#include "loopfix.h"

/* Every node listens here, but for a test that wants another block. */
static const char tnet_listen[1][OVL_URI_MAX] = {"tcp://127.0.0.1:0"};

/* Directory options for loopback: private addresses allowed (every node
 * is 127.0.0.1), a heartbeat of a second. */
static inline void tnet_dir_opts(struct dir_opts *o)
{
    dir_opts_defaults(o);
    o->allow_private = true;
    o->heartbeat_ms = 1000;
}

/* Initialise *n on loop with a fresh identity and roles, logging errors only. */
static inline void tnet_node(uv_loop_t *loop, struct node *n, unsigned roles)
{
    struct node_opts o;
    struct ovl_identity id;

    node_opts_defaults(&o);
    ck_assert_int_eq(ovl_identity_generate(&id), 0);
    log_init(&n->log, "test", OVL_LOG_ERROR, false);
    ck_assert_int_eq(node_init(n, loop, &o, &id, roles), 0);
    ovl_identity_wipe(&id);
}

/* Make n[0] the bootstrap and start it; *bs and *peer name it for the
 * nodes that join. */
static inline void tnet_boot(uv_loop_t *loop, struct node *n, struct dir **dir,
                             const struct dir_opts *o, struct dir_bootstrap_spec *bs,
                             struct peer_spec *peer)
{
    tnet_node(loop, &n[0], ROLE_BOOTSTRAP);
    ck_assert_int_eq(dir_init(&n[0], o, NULL, 0, &dir[0]), 0);
    ck_assert_int_eq(node_start(&n[0], tnet_listen, 1, NULL, 0), 0);
    memset(bs, 0, sizeof(*bs));
    snprintf(bs->name, sizeof(bs->name), "bs");
    snprintf(bs->uri, sizeof(bs->uri), "%s", n[0].listen_uri[0]);
    memcpy(bs->pk, n[0].id.pk, OVL_ED25519_PK);
    memset(peer, 0, sizeof(*peer));
    memcpy(peer->name, bs->name, sizeof(peer->name));
    memcpy(peer->uri, bs->uri, sizeof(peer->uri));
    memcpy(peer->pk, bs->pk, sizeof(peer->pk));
}

/* Make n[i] a node with roles whose directory registers with bs; the
 * caller adds its roles' contexts, then starts it with tnet_start() (or
 * node_start(..., peer, 1) for other listen addresses). */
static inline void tnet_join(uv_loop_t *loop, struct node *n, struct dir **dir, unsigned i,
                             unsigned roles, const struct dir_opts *o,
                             const struct dir_bootstrap_spec *bs)
{
    tnet_node(loop, &n[i], roles);
    ck_assert_int_eq(dir_init(&n[i], o, bs, 1, &dir[i]), 0);
}

/* Start n[i], joined before, listening on tnet_listen and knowing the
 * bootstrap as peer. */
static inline void tnet_start(struct node *n, unsigned i, const struct peer_spec *peer)
{
    ck_assert_int_eq(node_start(&n[i], tnet_listen, 1, peer, 1), 0);
}

/* The link from n[from] to n[to], or NULL while there is none. */
static inline struct link *tnet_link(struct node *n, unsigned from, unsigned to)
{
    return link_find(&n[from], n[to].id.pk);
}

/* Dial n[to]'s first listen address from n[from]; wait for the link with
 * tnet_link(). */
static inline void tnet_dial(struct node *n, unsigned from, unsigned to)
{
    struct link *l;

    ck_assert_int_eq(link_dial(&n[from], n[to].listen_uri[0], n[to].id.pk, NULL, &l), 0);
}

/* True when nodes 1 .. count - 1 are registered with the bootstrap. */
static inline bool tnet_registered(struct dir *const *dir, unsigned count)
{
    for (unsigned i = 1; i < count; i++)
        if (!dir_registered(dir[i]))
            return false;
    return true;
}

/* Stop the directory and the node of each of the count nodes (their roles'
 * contexts are the caller's, stopped before); run the loop afterwards. */
static inline void tnet_stop(struct node *n, struct dir **dir, unsigned count)
{
    for (unsigned i = 0; i < count; i++) {
        dir_stop(dir[i]);
        node_stop(&n[i]);
    }
}

/* Free what tnet_stop stopped, once the loop has ended. */
static inline void tnet_free(struct node *n, struct dir **dir, unsigned count)
{
    for (unsigned i = 0; i < count; i++) {
        dir_free(dir[i]);
        node_free(&n[i]);
    }
}

/* Build into hdr (ONION_HDR_LEN bytes) the setup header of a chain through
 * nodes path[0 .. hops - 1] (relays, the last one the exit), each keeping
 * it lifetime_s; keys[0 .. hops - 1] receive the hops' keys. With next0,
 * hop 0 is told that identity as its next hop instead of path[1]'s. */
static inline void tnet_onion(uint8_t *hdr, const struct node *n, struct dir *const *dir,
                              const unsigned *path, unsigned hops, uint32_t lifetime_s,
                              const uint8_t *next0, struct onion_keys *keys)
{
    uint8_t onion_pk[ONION_MAX_HOPS][OVL_X25519_LEN];
    struct onion_hop_info info[ONION_MAX_HOPS];

    ck_assert_uint_le(hops, ONION_MAX_HOPS);
    memset(info, 0, sizeof(info));
    for (unsigned i = 0; i < hops; i++) {
        unsigned count = 0;
        const struct dir_onion *ok = dir_onion_keys(dir[path[i]], &count);

        ck_assert_uint_ge(count, 1);
        memcpy(onion_pk[i], ok[0].pk, OVL_X25519_LEN);
        info[i].type = i + 1 < hops ? ONION_HOP_RELAY : ONION_HOP_EXIT;
        info[i].suite = (uint8_t)ovl_aead_pick(ovl_aead_available());
        info[i].lifetime_s = lifetime_s;
        if (i + 1 < hops)
            memcpy(info[i].next, n[path[i + 1]].id.pk, OVL_ED25519_PK);
    }
    if (next0 && hops > 1)
        memcpy(info[0].next, next0, OVL_ED25519_PK);
    ck_assert_int_eq(
        onion_setup_build(hdr, (const uint8_t(*)[OVL_X25519_LEN])onion_pk, info, hops, keys), 0);
}

/* From node n[from], send on l the setup of a chain through path (as
 * tnet_onion, lifetime_s each, keys receiving the hops' keys) under a new
 * chain ID owned by owner/obj there; *id receives the ID. */
static inline void tnet_setup(struct node *n, struct dir *const *dir, unsigned from, struct link *l,
                              const unsigned *path, unsigned hops, uint32_t lifetime_s,
                              struct onion_keys *keys, const struct chain_owner *owner, void *obj,
                              uint32_t *id)
{
    struct cell c = {.cmd = CELL_CHAIN_SETUP, .len = ONION_HDR_LEN};

    tnet_onion(c.payload, n, dir, path, hops, lifetime_s, NULL, keys);
    ck_assert_int_eq(chanmap_alloc(&n[from], l, owner, obj, id), 0);
    c.chain_id = *id;
    ck_assert_int_eq(link_send(l, &c), 0);
}

/* Fill c with a CELL_CHAIN_FWD on chain_id whose body (cmd, args of alen
 * bytes) is wrapped for hops 0 .. hops - 1, hop i under counter ctr[i]. */
static inline void tnet_fwd(struct cell *c, uint32_t chain_id, const struct onion_keys *keys,
                            unsigned hops, const uint64_t *ctr, uint8_t cmd, const uint8_t *args,
                            size_t alen)
{
    uint8_t body[ONION_BODY];

    memset(c, 0, sizeof(*c));
    c->chain_id = chain_id;
    c->cmd = CELL_CHAIN_FWD;
    c->len = OVL_CELL_PAYLOAD;
    memset(body, 0, sizeof(body));
    body_hdr_put(body, cmd, (uint16_t)alen);
    if (alen)
        memcpy(body + BODY_HDR, args, alen);
    ck_assert_int_eq(onion_fwd_wrap(c->payload, keys, hops, ctr, body), 0);
}

/* ---- a one-hop chain the test opens as its sender ---- */

#define TNET_MAX_BODIES 16

/* A backward body as its chain's sender read it. */
struct tnet_body {
    uint8_t cmd;
    uint16_t len;
    uint8_t args[ONION_BODY - BODY_HDR];
};

struct tnet_chain;

/* Takes a backward body (not SETUP_OK) of chain c: cmd, args of len bytes. */
typedef void tnet_body_fn(struct tnet_chain *c, uint8_t cmd, const uint8_t *args, size_t len);

/* One one-hop chain from the test's node `from` to the relay `to`, whose
 * chain ID the test owns through chanmap. The struct is the test's (in its
 * world, which must not move); tnet_chain_open fills all but ctx and
 * on_body, which the test may set first. Backward bodies go to on_body, or
 * are kept in bodies[] when it is NULL. tnet_chain_wipe wipes the keys. */
struct tnet_chain {
    void *ctx;             /* the test's, for on_body */
    tnet_body_fn *on_body; /* NULL: keep bodies in bodies[] */
    struct node *from;
    const struct node *to;
    struct onion_keys keys[1];
    uint64_t fwd_ctr, back_next[1];
    uint32_t id; /* 0 once the chain ended */
    bool setup_ok;
    struct tnet_body bodies[TNET_MAX_BODIES];
    unsigned n_bodies;
};

/* The link chain c goes on, or NULL while there is none. */
static inline struct link *tnet_chain_link(const struct tnet_chain *c)
{
    return link_find(c->from, c->to->id.pk);
}

/* chanmap's owner callback: unwrap a backward cell of c with its one hop's
 * keys; SETUP_OK sets setup_ok, other bodies go to on_body or bodies[]. */
static inline void tnet_chain_cell(void *obj, struct link *l, const struct cell *c)
{
    struct tnet_chain *tc = obj;
    uint8_t body[ONION_BODY];
    unsigned origin;
    struct tnet_body *b;
    int blen;

    (void)l;
    if (c->cmd != CELL_CHAIN_BACK)
        return;
    ck_assert_int_eq(onion_back_unwrap(body, &origin, tc->keys, 1, tc->back_next, c->payload), 0);
    ck_assert_uint_eq(origin, 0);
    blen = body_hdr_len(body);
    ck_assert_int_ge(blen, 0);
    if (body[0] == BODY_SETUP_OK) {
        tc->setup_ok = true;
        return;
    }
    if (tc->on_body) {
        tc->on_body(tc, body[0], body + BODY_HDR, (size_t)blen);
        return;
    }
    ck_assert_uint_lt(tc->n_bodies, TNET_MAX_BODIES);
    b = &tc->bodies[tc->n_bodies++];
    b->cmd = body[0];
    b->len = (uint16_t)blen;
    memcpy(b->args, body + BODY_HDR, (size_t)blen);
}

/* chanmap's owner callback: the link went, and the chain ID with it. */
static inline void tnet_chain_closed(void *obj, struct link *l, uint32_t id)
{
    (void)l, (void)id;
    ((struct tnet_chain *)obj)->id = 0;
}

static const struct chain_owner tnet_chain_owner = {.cell = tnet_chain_cell,
                                                    .link_closed = tnet_chain_closed};

/* Make c ready to be opened again from node from to relay to: counters,
 * bodies and setup_ok cleared, the keys of the chain before wiped. */
static inline void tnet_chain_reset(struct tnet_chain *c, struct node *from, const struct node *to)
{
    onion_keys_wipe(&c->keys[0]);
    c->from = from;
    c->to = to;
    c->fwd_ctr = c->back_next[0] = 0;
    c->id = 0;
    c->setup_ok = false;
    c->n_bodies = 0;
}

/* Send a forward body (cmd, args of alen bytes) on chain c; 0, the error
 * of link_send, or OVL_ECLOSED when the chain or its link is gone. */
static inline int tnet_chain_send(struct tnet_chain *c, uint8_t cmd, const uint8_t *args,
                                  size_t alen)
{
    struct link *l = tnet_chain_link(c);
    uint64_t ctr[1] = {c->fwd_ctr};
    struct cell cell;
    int rc;

    if (!l || !c->id)
        return OVL_ECLOSED;
    tnet_fwd(&cell, c->id, c->keys, 1, ctr, cmd, args, alen);
    rc = link_send(l, &cell);
    if (rc == 0)
        c->fwd_ctr++;
    return rc;
}

/* End chain c (DESTROY) as its sender, and forget its ID. */
static inline void tnet_chain_close(struct tnet_chain *c)
{
    struct cell cell = {.chain_id = c->id, .cmd = CELL_CHAIN_DESTROY};

    ck_assert_int_eq(link_send(tnet_chain_link(c), &cell), 0);
    chanmap_del(c->from, tnet_chain_link(c), c->id);
    c->id = 0;
}

/* Wipe the keys of the count chains at c. */
static inline void tnet_chain_wipe(struct tnet_chain *c, unsigned count)
{
    for (unsigned k = 0; k < count; k++)
        onion_keys_wipe(&c[k].keys[0]);
}

/* ---- relays and bodies ---- */

/* Relay r's counters, by value, for one check. */
static inline struct relay_stats tnet_rstats(const struct relay *r)
{
    struct relay_stats st;

    relay_stats(r, &st);
    return st;
}

/* Write into a the arguments of an INTRO_ESTABLISH for cookie, expiring at
 * exp (wall ms), signed by the hidden node id for the introduction relay
 * relay_pk. */
static inline void tnet_intro_est(uint8_t a[BODY_INTRO_EST_LEN], const struct ovl_identity *id,
                                  const uint8_t *cookie, const uint8_t *relay_pk, uint64_t exp)
{
    uint8_t msg[INTRO_SIG_MSG_LEN];

    memcpy(a, cookie, BODY_COOKIE);
    memcpy(a + BODY_COOKIE, id->pk, OVL_ED25519_PK);
    st_le64(a + BODY_INTRO_EXP, exp);
    intro_sig_msg(msg, relay_pk, cookie, exp);
    ck_assert_int_eq(ovl_sign(id, msg, sizeof(msg), a + BODY_INTRO_SIG), 0);
}

/* A suite called name of one test case, also called name, whose tests may
 * each take timeout_s; the caller adds its tests to *tc. */
static inline Suite *tnet_suite(const char *name, unsigned timeout_s, TCase **tc)
{
    Suite *s = suite_create(name);

    *tc = tcase_create(name);
    tcase_set_timeout(*tc, (double)timeout_s);
    suite_add_tcase(s, *tc);
    return s;
}

/* ---- the world ---- */

/* The fields a test's world struct T begins with, for N nodes (see the
 * top of this file): loopfix.h's, the nodes, their directory contexts, and
 * what tnet_chain_open and tnet_chain_wait wait for. */
#define TNET_WORLD(T, N)                                                                           \
    uv_loop_t loop;                                                                                \
    uv_timer_t deadline, poll;                                                                     \
    bool (*done)(T * t);                                                                           \
    void (*pump)(T * t); /* called every poll, before done() */                                    \
    bool timed_out;                                                                                \
    struct node n[N];                                                                              \
    struct dir *dir[N];                                                                            \
    struct tnet_chain *tnet_wait_chain;                                                            \
    unsigned tnet_wait_bodies

/* The number of nodes in world t. */
#define TNET_NODES(t) ((unsigned)(sizeof((t)->n) / sizeof((t)->n[0])))

/* Define, once after the world struct T, loopfix.h's functions for T and
 * the ones the top of this file lists. Chains wait for SETUP_OK 5 s. */
#define TNET_DEFINE(T)                                                                             \
    LOOPFIX_DEFINE(T, 2)                                                                           \
                                                                                                   \
    static inline void tnet_open(T *t)                                                             \
    {                                                                                              \
        memset(t, 0, sizeof(*t));                                                                  \
        ck_assert_int_eq(uv_loop_init(&t->loop), 0);                                               \
        t->loop.data = t;                                                                          \
        loopfix_init(t);                                                                           \
    }                                                                                              \
                                                                                                   \
    static inline void tnet_down(T *t)                                                             \
    {                                                                                              \
        tnet_stop(t->n, t->dir, TNET_NODES(t));                                                    \
        loopfix_close(t);                                                                          \
        uv_run(&t->loop, UV_RUN_DEFAULT);                                                          \
        ck_assert_int_eq(uv_loop_close(&t->loop), 0);                                              \
    }                                                                                              \
                                                                                                   \
    static inline bool tnet_all_registered(T *t)                                                   \
    {                                                                                              \
        return tnet_registered(t->dir, TNET_NODES(t));                                             \
    }                                                                                              \
                                                                                                   \
    static inline bool tnet_got_setup_ok(T *t)                                                     \
    {                                                                                              \
        return t->tnet_wait_chain->setup_ok;                                                       \
    }                                                                                              \
                                                                                                   \
    static inline bool tnet_got_bodies(T *t)                                                       \
    {                                                                                              \
        return t->tnet_wait_chain->n_bodies >= t->tnet_wait_bodies;                                \
    }                                                                                              \
                                                                                                   \
    static inline void tnet_chain_open(T *t, struct tnet_chain *c, unsigned from, unsigned to)     \
    {                                                                                              \
        const unsigned path[1] = {to};                                                             \
                                                                                                   \
        tnet_chain_reset(c, &t->n[from], &t->n[to]);                                               \
        tnet_setup(t->n, t->dir, from, tnet_chain_link(c), path, 1, 600, c->keys,                  \
                   &tnet_chain_owner, c, &c->id);                                                  \
        t->tnet_wait_chain = c;                                                                    \
        ck_assert(run_until(t, tnet_got_setup_ok, 5000));                                          \
    }                                                                                              \
                                                                                                   \
    static inline const struct tnet_body *tnet_chain_wait(T *t, struct tnet_chain *c, unsigned i,  \
                                                          uint64_t ms)                             \
    {                                                                                              \
        t->tnet_wait_chain = c;                                                                    \
        t->tnet_wait_bodies = i + 1;                                                               \
        ck_assert(run_until(t, tnet_got_bodies, ms));                                              \
        return &c->bodies[i];                                                                      \
    }

#endif
