/* tnet.h - the network fixture shared by test_relay.c, test_xstream.c,
 * test_svc.c, test_intro.c and test_hidden_exit.c: nodes on one uv loop over
 * loopback TCP, a bootstrap the others register with, and a sender that
 * is the test itself: it builds chain setups and forward cells with
 * onion.h instead of running the client role.
 *
 * The functions work on a test's arrays of nodes and directory contexts
 * (struct node n[], struct dir *dir[]), indexed alike; index 0 is the
 * bootstrap. A test brings its net up with tnet_boot() and tnet_join() for
 * each other node (adding its roles' contexts before node_start), and takes
 * it down with tnet_stop(), a loop run and tnet_free().
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
#include "core/chanmap.h"
#include "core/link.h"
#include "core/node_run.h"
#include "dir/dir.h"

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
 * caller adds its roles' contexts, then starts it with node_start(...,
 * peer, 1). */
static inline void tnet_join(uv_loop_t *loop, struct node *n, struct dir **dir, unsigned i,
                             unsigned roles, const struct dir_opts *o,
                             const struct dir_bootstrap_spec *bs)
{
    tnet_node(loop, &n[i], roles);
    ck_assert_int_eq(dir_init(&n[i], o, bs, 1, &dir[i]), 0);
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

#endif
