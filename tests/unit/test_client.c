/* test_client.c - the client on the whole path (bootstrap, relays, two
 * clients) on one loop. Messages without a network: test_msg.c. */
#include <check.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chain/relay.h"
#include "client/client.h"
#include "client/msg.h"
#include "core/chanmap.h"
#include "core/link.h"
#include "core/node_run.h"
#include "check_main.h"
#include "loopfix.h"

static uint8_t *pattern(size_t len, unsigned seed)
{
    uint8_t *p = malloc(len ? len : 1);

    ck_assert_ptr_nonnull(p);
    for (size_t i = 0; i < len; i++)
        p[i] = (uint8_t)(i * 31 + seed + (i >> 8));
    return p;
}

/* ---- the whole path: bootstrap, three relays, clients A and B ---- */

enum { BS = 0, R1, R2, R3, CA, CB, N_NODES };

struct net {
    uv_loop_t loop;
    struct node n[N_NODES];
    struct dir *dir[N_NODES];
    struct relay *relay[N_NODES];
    struct client *cl[N_NODES];
    uv_timer_t deadline, poll;
    bool (*done)(struct net *);
    void (*pump)(struct net *); /* loopfix.h: unused here */
    bool timed_out;
    struct client_msg *got[16];
    size_t n_got;
};

LOOPFIX_DEFINE(struct net, 5)

static void net_dir_opts(struct dir_opts *o)
{
    dir_opts_defaults(o);
    o->distinct_subnets = false; /* every node is 127.0.0.1 */
    o->allow_private = true;
    o->heartbeat_ms = 200;
    o->request_timeout_ms = 2000;
}

static bool net_registered(struct net *w)
{
    for (unsigned i = R1; i < N_NODES; i++)
        if (!dir_registered(w->dir[i]))
            return false;
    return true;
}

static size_t net_sendq;                       /* A's per-link send queue; 0 = default */
static bool net_relay_clients;                 /* R1..R3 are clients (endpoints) as well */
static const struct client_opts *net_r1_cover; /* R1 runs a relay's loop cover with these */

static void net_up(struct net *w, const struct client_opts *co)
{
    static const char listen[1][OVL_URI_MAX] = {"tcp://127.0.0.1:0"};
    struct dir_bootstrap_spec bs;
    struct peer_spec peer;
    struct dir_opts dopts;
    struct relay_opts ro;

    memset(w, 0, sizeof(*w));
    ck_assert_int_eq(uv_loop_init(&w->loop), 0);
    loopfix_init(w);
    net_dir_opts(&dopts);
    relay_opts_defaults(&ro);
    /* The exit holds cells while it dials B and drops past exit_queue;
     * version 1 has no end-to-end flow control, and 200 KiB is 254 cells. */
    ro.exit_queue = 1024;
    for (unsigned i = 0; i < N_NODES; i++) {
        unsigned roles = i == BS ? ROLE_BOOTSTRAP : i <= R3 ? ROLE_RELAY : ROLE_CLIENT;

        if (i >= R1 && i <= R3 && net_relay_clients)
            roles |= ROLE_CLIENT;
        struct node_opts no;
        struct ovl_identity id;

        node_opts_defaults(&no);
        if (i == CA && net_sendq)
            no.sendq_max = net_sendq;
        ck_assert_int_eq(ovl_identity_generate(&id), 0);
        log_init(&w->n[i].log, "test", OVL_LOG_ERROR, false);
        ck_assert_int_eq(node_init(&w->n[i], &w->loop, &no, &id, roles), 0);
        ovl_identity_wipe(&id);
        ck_assert_int_eq(
            dir_init(&w->n[i], &dopts, i == BS ? NULL : &bs, i == BS ? 0 : 1, &w->dir[i]), 0);
        if (roles & ROLE_RELAY)
            ck_assert_int_eq(relay_init(&w->n[i], &ro, &w->relay[i]), 0);
        if (i == R1 && net_r1_cover)
            ck_assert_int_eq(client_init(&w->n[i], net_r1_cover, &w->cl[i]), 0);
        if (roles & ROLE_CLIENT) {
            struct client_opts loop_co = *co;

            loop_co.distinct_subnets = false; /* every node is 127.0.0.1 */
            ck_assert_int_eq(client_init(&w->n[i], &loop_co, &w->cl[i]), 0);
            ck_assert_ptr_eq(w->n[i].client, w->cl[i]);
        }
        ck_assert_int_eq(node_start(&w->n[i], listen, 1, i == BS ? NULL : &peer, i == BS ? 0 : 1),
                         0);
        if (i == BS) {
            memset(&bs, 0, sizeof(bs));
            snprintf(bs.name, sizeof(bs.name), "bs");
            snprintf(bs.uri, sizeof(bs.uri), "%s", w->n[BS].listen_uri[0]);
            memcpy(bs.pk, w->n[BS].id.pk, OVL_ED25519_PK);
            memset(&peer, 0, sizeof(peer));
            memcpy(peer.name, bs.name, sizeof(peer.name));
            memcpy(peer.uri, bs.uri, sizeof(peer.uri));
            memcpy(peer.pk, bs.pk, sizeof(peer.pk));
        }
    }
    ck_assert(run_until(w, net_registered, 10000));
}

static void net_down(struct net *w)
{
    for (size_t i = 0; i < w->n_got; i++)
        free(w->got[i]);
    for (unsigned i = 0; i < N_NODES; i++) {
        client_stop(w->cl[i]);
        client_stop(w->cl[i]); /* twice is fine */
        relay_stop(w->relay[i]);
        dir_stop(w->dir[i]);
        node_stop(&w->n[i]);
    }
    loopfix_close(w);
    uv_run(&w->loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(uv_loop_close(&w->loop), 0);
    for (unsigned i = 0; i < N_NODES; i++) {
        client_free(w->cl[i]);
        relay_free(w->relay[i]);
        dir_free(w->dir[i]);
        node_free(&w->n[i]);
    }
}

static void count_ready(void *arg, const struct client_chain_info *ci)
{
    unsigned *n = arg;

    if (strcmp(ci->state, "ready") == 0) {
        ck_assert_uint_eq(ci->length, 3);
        ck_assert_uint_gt(ci->expires_in_ms, 0);
        (*n)++;
    }
}

static void count_any_ready(void *arg, const struct client_chain_info *ci)
{
    *(unsigned *)arg += strcmp(ci->state, "ready") == 0;
}

static bool a_ready(struct net *w)
{
    unsigned n = 0;

    client_each_chain(w->cl[CA], count_ready, &n);
    return n == 1;
}

static size_t want_got;

static bool b_got(struct net *w)
{
    if (w->n_got < 16)
        w->n_got += client_recv(w->cl[CB], w->got + w->n_got, 16 - w->n_got);
    return w->n_got >= want_got;
}

static const size_t net_sizes[] = {1, 851, 852, 853, 5000, 200 * 1024};
#define N_NET (sizeof(net_sizes) / sizeof(net_sizes[0]))

/* Print where cells went, to tell a lost message's story on failure. */
static void net_dump(struct net *w)
{
    struct client_stats a, b;

    client_stats(w->cl[CA], &a);
    client_stats(w->cl[CB], &b);
    fprintf(stderr, "A: sent %" PRIu64 " failed %" PRIu64 " cells_out %" PRIu64 "\n",
            a.messages_sent, a.messages_failed, a.cells_out);
    fprintf(stderr,
            "B: fragments %" PRIu64 " received %" PRIu64 " auth %" PRIu64 " bad %" PRIu64
            " reassembly %" PRIu64 " full %" PRIu64 "\n",
            b.fragments_in, b.messages_received, b.dropped_auth, b.dropped_bad,
            b.dropped_reassembly, b.dropped_inbox_full);
    for (unsigned r = R1; r <= R3; r++) {
        struct relay_stats rs;

        relay_stats(w->relay[r], &rs);
        fprintf(stderr, "R%u: in %" PRIu64 " forwarded %" PRIu64 " delivered %" PRIu64, r,
                rs.cells_fwd_in, rs.cells_forwarded, rs.delivered_cells);
        for (unsigned d = 0; d < RD_COUNT; d++)
            fprintf(stderr, " %s %" PRIu64, relay_drop_name(d), rs.dropped[d]);
        fprintf(stderr, "\n");
    }
}

static bool a_all_acked(struct net *w)
{
    struct client_stats st;

    client_stats(w->cl[CA], &st);
    return st.send_queued == 0;
}

/* Send every size (reply on odd ones) from A to B and check what B gets. */
static void send_all(struct net *w)
{
    uint8_t ids[N_NET][CLIENT_MSG_ID];
    uint8_t *m[N_NET];
    struct client_stats st;

    for (size_t i = 0; i < N_NET; i++) {
        m[i] = pattern(net_sizes[i], (unsigned)i);
        ck_assert_int_eq(
            client_send(w->cl[CA], w->n[CB].id.pk, m[i], net_sizes[i], i % 2 == 1, ids[i]), 0);
    }
    want_got = w->n_got + N_NET;
    if (!run_until(w, b_got, 20000)) {
        net_dump(w);
        ck_abort_msg("B did not receive every message");
    }
    for (size_t i = 0; i < N_NET; i++) {
        const struct client_msg *g = NULL;

        for (size_t j = 0; j < w->n_got; j++)
            if (memcmp(w->got[j]->id, ids[i], CLIENT_MSG_ID) == 0)
                g = w->got[j];
        ck_assert_ptr_nonnull(g);
        ck_assert_uint_eq(g->len, net_sizes[i]);
        ck_assert_mem_eq(g->data, m[i], net_sizes[i]);
        ck_assert(g->has_from == (i % 2 == 1));
        if (g->has_from)
            ck_assert_mem_eq(g->from, w->n[CA].id.pk, OVL_ED25519_PK);
        ck_assert_uint_gt(g->received_ms, 0);
        free(m[i]);
    }
    /* Every message comes back acknowledged, and only then leaves A. */
    ck_assert_msg(run_until(w, a_all_acked, 10000), "A was not acknowledged");
    client_stats(w->cl[CA], &st);
    ck_assert_uint_ge(st.messages_sent, N_NET);
    ck_assert_uint_eq(st.messages_failed, 0);
    ck_assert_uint_eq(st.send_queued, 0);
    ck_assert_uint_eq(st.acks_in, want_got);
    /* Measured: each chain's setup, and the round trip of messages sent once. */
    ck_assert_uint_ge(st.setup_samples, 1);
    ck_assert_uint_gt(st.setup_us_p50, 0);
    ck_assert_uint_le(st.setup_us_p50, st.setup_us_p90);
    ck_assert_uint_ge(st.rtt_samples, 1);
    ck_assert_uint_le(st.rtt_samples, st.acks_in);
    ck_assert_uint_ge(st.rtt_samples + st.retransmits, st.acks_in); /* under SAMPLES_MAX acks */
    ck_assert_uint_le(st.rtt_us_p50, st.rtt_us_p90);
    ck_assert_uint_gt(st.busy_us, 0);
    {
        uint64_t sum = 0;

        for (size_t i = 0; i < N_NET; i++)
            sum += net_sizes[i];
        ck_assert_uint_ge(st.bytes_acked, sum);
        ck_assert_uint_eq(st.bytes_acked % sum, 0); /* send_all's messages only, whole */
    }
    client_stats(w->cl[CB], &st);
    ck_assert_uint_eq(st.dropped_auth + st.dropped_bad + st.dropped_reassembly, 0);
    ck_assert_uint_eq(st.inbox_messages, 0);
}

START_TEST(net_messages)
{
    struct net w;
    struct client_opts co;

    client_opts_defaults(&co); /* 2 backups asked, none to spare among 3 relays */
    co.source = _i == 0 ? CHAIN_SOURCE_BOOTSTRAP : CHAIN_SOURCE_LOCAL;
    net_up(&w, &co);
    ck_assert(run_until(&w, a_ready, 15000));
    send_all(&w);
    net_down(&w);
}
END_TEST

static bool a_covered(struct net *w)
{
    struct client_stats st;

    client_stats(w->cl[CA], &st);
    return st.loops_in > 0 && st.cover_out > st.loops_out;
}

/* Drop cover, loop cover and a constant rate, all on: a message still
 * arrives whole and is acknowledged, drop cover leaves, loop cover comes
 * home, and client_stop closes every handle (net_down's uv_loop_close
 * fails on one left open). */
START_TEST(net_cover_and_rate)
{
    struct net w;
    struct client_opts co;
    struct client_stats st;
    uint8_t id[CLIENT_MSG_ID];
    uint8_t *m = pattern(5000, 7);

    client_opts_defaults(&co);
    co.cover_interval_ms = 20;
    co.loop_interval_ms = 20;
    co.constant_rate = 200;
    net_up(&w, &co);
    ck_assert(run_until(&w, a_ready, 15000));
    ck_assert_int_eq(client_send(w.cl[CA], w.n[CB].id.pk, m, 5000, false, id), 0);
    want_got = 1;
    ck_assert_msg(run_until(&w, b_got, 20000), "B did not receive the message");
    ck_assert_mem_eq(w.got[0]->id, id, CLIENT_MSG_ID);
    ck_assert_uint_eq(w.got[0]->len, 5000);
    ck_assert_mem_eq(w.got[0]->data, m, 5000);
    ck_assert_msg(run_until(&w, a_all_acked, 10000), "A was not acknowledged");
    ck_assert_msg(run_until(&w, a_covered, 10000), "no cover left A, or no loop came home");
    client_stats(w.cl[CA], &st);
    ck_assert_uint_eq(st.messages_failed, 0);
    ck_assert_uint_ge(st.cells_out, st.cover_out + msg_frag_count(5000 + MSG_BLOB_MIN));
    free(m);
    net_down(&w);
}
END_TEST

/* ---- acknowledgements ---- */

struct sent_result {
    unsigned calls;
    int err;
};

static void on_sent(void *arg, const uint8_t id[CLIENT_MSG_ID], int err)
{
    struct sent_result *r = arg;

    (void)id;
    r->calls++;
    r->err = err;
}

static struct sent_result sent[4];

static bool all_sent_back(struct net *w)
{
    (void)w;
    for (size_t i = 0; i < 4; i++)
        if (sent[i].calls == 0)
            return false;
    return true;
}

static bool a_retransmitted(struct net *w)
{
    struct client_stats st;

    client_stats(w->cl[CA], &st);
    return st.retransmits >= 2;
}

/* A network whose clients hold inbox messages and retransmit after rto_ms,
 * with A's chain ready; then A sends four 100-byte messages to B. */
static void ack_net(struct net *w, uint32_t inbox, uint32_t rto_ms, uint32_t deadline_ms,
                    uint8_t ids[4][CLIENT_MSG_ID])
{
    struct client_opts co;
    uint8_t body[100];

    client_opts_defaults(&co);
    co.backups = 0;
    co.inbox_messages = inbox;
    co.retransmit_ms = rto_ms;
    co.deadline_ms = deadline_ms;
    net_up(w, &co);
    ck_assert(run_until(w, a_ready, 15000));
    memset(sent, 0, sizeof(sent));
    for (size_t i = 0; i < 4; i++) {
        memset(body, (int)i, sizeof(body));
        ck_assert_int_eq(client_send_cb(w->cl[CA], w->n[CB].id.pk, body, sizeof(body), false,
                                        ids[i], on_sent, &sent[i]),
                         0);
    }
}

/* B's inbox holds 2 messages and drops the rest unacknowledged: A sends
 * them again until B has room, and B sees each message exactly once. */
START_TEST(net_retransmit)
{
    struct net w;
    struct client_stats st;
    uint8_t ids[4][CLIENT_MSG_ID];

    ack_net(&w, 2, 200, 30000, ids);
    ck_assert(run_until(&w, a_retransmitted, 10000));
    client_stats(w.cl[CB], &st);
    ck_assert_uint_eq(st.inbox_messages, 2);
    ck_assert_uint_ge(st.dropped_inbox_full, 2);
    want_got = 4; /* b_got drains the inbox: room for the copies */
    ck_assert(run_until(&w, b_got, 10000));
    ck_assert(run_until(&w, all_sent_back, 10000));
    for (size_t i = 0; i < 4; i++) {
        ck_assert_uint_eq(sent[i].calls, 1);
        ck_assert_int_eq(sent[i].err, 0);
        for (size_t j = 0; j < i; j++) /* four different messages */
            ck_assert_int_ne(memcmp(w.got[i]->id, w.got[j]->id, CLIENT_MSG_ID), 0);
    }
    ck_assert_uint_eq(w.n_got, 4);
    client_stats(w.cl[CA], &st);
    ck_assert_uint_eq(st.acks_in, 4);
    ck_assert_uint_eq(st.messages_failed, 0);
    net_down(&w);
}
END_TEST

/* Never acknowledged (B's inbox stays full): the messages fail at their deadline. */
START_TEST(net_deadline)
{
    struct net w;
    uint8_t ids[4][CLIENT_MSG_ID];
    unsigned ok = 0, timed_out = 0;

    ack_net(&w, 1, 100, 1500, ids);
    ck_assert(run_until(&w, all_sent_back, 10000));
    for (size_t i = 0; i < 4; i++) {
        ok += sent[i].err == 0;
        timed_out += sent[i].err == OVL_ETIMEDOUT;
    }
    /* One fits B's inbox; three time out. */
    ck_assert_uint_eq(ok, 1);
    ck_assert_uint_eq(timed_out, 3);
    net_down(&w);
}
END_TEST

/* Messages queued before any chain exists go once one is ready. */
START_TEST(net_send_early)
{
    struct net w;
    struct client_opts co;

    client_opts_defaults(&co);
    co.backups = 0;
    net_up(&w, &co);
    send_all(&w);
    net_down(&w);
}
END_TEST

/* A small send queue on A: 200 KiB must wait for the link to drain many
 * times; a stall would show as a timeout. */
START_TEST(net_backpressure)
{
    struct net w;
    struct client_opts co;
    uint64_t t0;

    client_opts_defaults(&co);
    co.backups = 0;
    net_sendq = 16 * 1024;
    net_up(&w, &co);
    ck_assert(run_until(&w, a_ready, 15000));
    t0 = uv_now(&w.loop);
    send_all(&w);
    ck_assert_uint_lt(uv_now(&w.loop) - t0, 1000); /* the tick alone would take ~1.7 s */
    net_down(&w);
    net_sendq = 0;
}
END_TEST

static void first_hop(void *arg, const struct client_chain_info *ci)
{
    if (strcmp(ci->state, "ready") == 0)
        memcpy(arg, ci->hops[0], OVL_ED25519_PK);
}

static bool a_rebuilt(struct net *w)
{
    struct client_stats st;

    client_stats(w->cl[CA], &st);
    return st.chains_failed >= 1 && st.chains_built >= 2 && a_ready(w);
}

/* The link to the first hop breaks: the chain fails, a new one is built
 * and carries the next messages. */
START_TEST(net_first_hop_lost)
{
    struct net w;
    struct client_opts co;
    uint8_t hop0[OVL_ED25519_PK];
    struct link *l;

    client_opts_defaults(&co);
    co.backups = 0;
    net_up(&w, &co);
    ck_assert(run_until(&w, a_ready, 15000));
    client_each_chain(w.cl[CA], first_hop, hop0);
    l = link_find(&w.n[CA], hop0);
    ck_assert_ptr_nonnull(l);
    link_close(l, LC_SHUTDOWN);
    ck_assert(run_until(&w, a_rebuilt, 15000));
    send_all(&w);
    net_down(&w);
}
END_TEST

static bool a_replaced(struct net *w)
{
    struct client_stats st;

    client_stats(w->cl[CA], &st);
    return st.chains_replaced >= 1 && a_ready(w);
}

START_TEST(net_replace)
{
    struct net w;
    struct client_opts co;
    struct client_stats st;

    client_opts_defaults(&co);
    co.backups = 0;
    co.lifetime_ms = 1500; /* replaced after 1.2 s */
    net_up(&w, &co);
    ck_assert(run_until(&w, a_ready, 15000));
    send_all(&w);
    ck_assert(run_until(&w, a_replaced, 15000));
    send_all(&w);
    client_stats(w.cl[CA], &st);
    ck_assert_uint_ge(st.chains_built, 2);
    net_down(&w);
}
END_TEST

static bool a_failed_two(struct net *w)
{
    struct client_stats st;

    client_stats(w->cl[CA], &st);
    return st.messages_failed == 2 && st.send_queued == 0;
}

START_TEST(net_send_errors)
{
    struct net w;
    struct client_opts co;
    uint8_t id[CLIENT_MSG_ID], nobody[OVL_ED25519_PK], *big;

    client_opts_defaults(&co);
    co.backups = 0;
    co.send_queue = 2;
    co.max_message = 1000;
    net_up(&w, &co);
    big = pattern(1001, 1);
    ck_assert_int_eq(client_send(w.cl[CA], w.n[CB].id.pk, big, 1001, false, id), OVL_ETOOBIG);
    ck_assert_int_eq(client_send(w.cl[CA], w.n[CB].id.pk, big, 0, false, id), OVL_EINVAL);
    ck_assert_int_eq(client_send(w.cl[CA], w.n[CA].id.pk, big, 10, false, id), OVL_EINVAL);
    ovl_random(nobody, sizeof(nobody));
    ck_assert_int_eq(client_send(w.cl[CA], nobody, big, 10, false, id), 0);
    ck_assert_int_eq(client_send(w.cl[CA], nobody, big, 10, false, id), 0);
    ck_assert_int_eq(client_send(w.cl[CA], nobody, big, 10, false, id), OVL_ENOMEM);
    /* Unknown destinations fail (their lookups fail). */
    free(big);
    ck_assert(run_until(&w, a_failed_two, 15000));
    net_down(&w);
}
END_TEST

/* client_new_chain: a fresh chain replaces the ready one; one build at a
 * time. */
START_TEST(net_new_chain)
{
    struct net w;
    struct client_opts co;
    struct client_stats st;

    client_opts_defaults(&co);
    co.backups = 0;
    net_up(&w, &co);
    ck_assert(run_until(&w, a_ready, 15000));
    ck_assert_int_eq(client_new_chain(w.cl[CA]), 0);
    ck_assert_int_eq(client_new_chain(w.cl[CA]), OVL_EAGAIN);
    ck_assert(run_until(&w, a_replaced, 15000));
    client_stats(w.cl[CA], &st);
    ck_assert_uint_ge(st.chains_built, 2);
    ck_assert_uint_ge(st.setup_samples, 2);
    send_all(&w);
    net_down(&w);
}
END_TEST

/* ---- never the receiver ---- */

static bool a_any_ready(struct net *w)
{
    unsigned n = 0;

    client_each_chain(w->cl[CA], count_any_ready, &n);
    return n > 0;
}

static bool relays_got_one(struct net *w)
{
    for (unsigned r = R1; r <= R3; r++) {
        struct client_stats st;

        client_stats(w->cl[r], &st);
        if (st.messages_received < 1)
            return false;
    }
    return a_all_acked(w);
}

/* Relays that are endpoints too, and chains of 2 of the 3: A sends one
 * message to each relay. At least two of them are on A's first chain, so
 * at least one message must wait for a chain without its destination;
 * every one arrives. */
START_TEST(net_never_the_receiver)
{
    struct net w;
    struct client_opts co;
    struct client_stats st;
    uint8_t id[CLIENT_MSG_ID], body[64] = {7};

    client_opts_defaults(&co);
    co.source = CHAIN_SOURCE_LOCAL;
    co.length = 2;
    net_relay_clients = true;
    net_up(&w, &co);
    net_relay_clients = false;
    ck_assert(run_until(&w, a_any_ready, 15000));
    for (unsigned r = R1; r <= R3; r++)
        ck_assert_int_eq(client_send(w.cl[CA], w.n[r].id.pk, body, sizeof(body), false, id), 0);
    ck_assert_msg(run_until(&w, relays_got_one, 20000), "a relay did not get its message");
    client_stats(w.cl[CA], &st);
    ck_assert_uint_ge(st.avoid_builds, 1);
    ck_assert_uint_eq(st.messages_failed, 0);
    net_down(&w);
}
END_TEST

static bool r2_failed_b_got(struct net *w)
{
    return sent[0].calls == 1 && sent[1].calls == 1 && b_got(w);
}

/* Chains of all 3 relays: a message to R2 has no route that leaves R2 out.
 * It fails with that reason and R2 never gets it; the message to B behind
 * it still goes. */
START_TEST(net_receiver_on_every_route)
{
    struct net w;
    struct client_opts co;
    struct client_stats st;
    uint8_t id[CLIENT_MSG_ID], body[64] = {7};

    client_opts_defaults(&co);
    co.backups = 0;
    net_relay_clients = true;
    net_up(&w, &co);
    net_relay_clients = false;
    ck_assert(run_until(&w, a_ready, 15000));
    memset(sent, 0, sizeof(sent));
    ck_assert_int_eq(
        client_send_cb(w.cl[CA], w.n[R2].id.pk, body, sizeof(body), false, id, on_sent, &sent[0]),
        0);
    ck_assert_int_eq(
        client_send_cb(w.cl[CA], w.n[CB].id.pk, body, sizeof(body), false, id, on_sent, &sent[1]),
        0);
    want_got = 1;
    ck_assert(run_until(&w, r2_failed_b_got, 20000));
    ck_assert_int_eq(sent[0].err, OVL_EPROTO);
    ck_assert_int_eq(sent[1].err, 0);
    client_stats(w.cl[R2], &st);
    ck_assert_uint_eq(st.messages_received, 0);
    client_stats(w.cl[CA], &st);
    ck_assert_uint_ge(st.avoid_builds, 1);
    net_down(&w);
}
END_TEST

/* ---- delivery IDs at the destination ---- */

static void last_hop(void *arg, const struct client_chain_info *ci)
{
    if (strcmp(ci->state, "ready") == 0)
        memcpy(arg, ci->hops[ci->length - 1], OVL_ED25519_PK);
}

/* The relay that is A's current chain's exit. */
static unsigned exit_of_a(struct net *w)
{
    uint8_t pk[OVL_ED25519_PK] = {0};

    client_each_chain(w->cl[CA], last_hop, pk);
    for (unsigned r = R1; r <= R3; r++)
        if (memcmp(w->n[r].id.pk, pk, OVL_ED25519_PK) == 0)
            return r;
    ck_abort_msg("A has no ready chain");
    return 0;
}

static struct client_stats b_st;
static uint32_t want_deliveries;
static uint64_t want_refused;

static bool b_deliveries(struct net *w)
{
    client_stats(w->cl[CB], &b_st);
    return b_st.deliveries == want_deliveries && b_st.refused_ids == want_refused;
}

/* A sends one message to B; B gets it and A its acknowledgement. */
static void a_to_b(struct net *w)
{
    uint8_t id[CLIENT_MSG_ID], body[300];

    memset(body, 0x42, sizeof(body));
    ck_assert_int_eq(client_send(w->cl[CA], w->n[CB].id.pk, body, sizeof(body), false, id), 0);
    want_got = w->n_got + 1;
    ck_assert_msg(run_until(w, b_got, 20000), "B did not receive the message");
    ck_assert_mem_eq(w->got[w->n_got - 1]->id, id, CLIENT_MSG_ID);
    ck_assert_msg(run_until(w, a_all_acked, 10000), "A was not acknowledged");
}

/* Send a CHAIN_DELIVER of junk on l under id. */
static void deliver_junk(struct link *l, uint32_t id)
{
    struct cell c = {.chain_id = id, .cmd = CELL_CHAIN_DELIVER, .len = 100};

    ovl_random(c.payload, c.len);
    ck_assert_int_eq(link_send(l, &c), 0);
}

/* B takes delivery cells only under IDs the exit may open, registers
 * each (the exit's own ID goes on working), holds at most
 * CLIENT_DELIV_PER_LINK per link, and forgets an ID the exit destroys. */
START_TEST(net_delivery_ids)
{
    struct net w;
    struct client_opts co;
    struct link *l;
    unsigned ex;
    uint32_t id;

    client_opts_defaults(&co);
    co.backups = 0;
    net_up(&w, &co);
    ck_assert(run_until(&w, a_ready, 15000));
    a_to_b(&w);
    want_deliveries = 1;
    want_refused = 0;
    ck_assert(run_until(&w, b_deliveries, 5000));
    /* A new chain: the old one's exit ends its delivery ID (well before
     * reassembly_timeout, 60 s, could). */
    ck_assert_int_eq(client_new_chain(w.cl[CA]), 0);
    want_deliveries = 0;
    ck_assert_msg(run_until(&w, b_deliveries, 15000), "B kept a destroyed delivery ID");
    ck_assert(run_until(&w, a_ready, 15000));
    a_to_b(&w);
    ex = exit_of_a(&w);
    l = link_find(&w.n[ex], w.n[CB].id.pk);
    ck_assert_ptr_nonnull(l);
    /* An ID of B's side of the link: the exit could not have opened it. */
    do
        ovl_random(&id, sizeof(id));
    while (id == 0 || !chanmap_id_is_remote(l, id));
    deliver_junk(l, id);
    /* 100 made-up IDs of the exit's side: B takes 63 more, refuses 37. */
    for (unsigned i = 0; i < 100; i++) {
        do
            ovl_random(&id, sizeof(id));
        while (id == 0 || chanmap_id_is_remote(l, id) || chanmap_find(&w.n[ex], l, id));
        deliver_junk(l, id);
    }
    want_deliveries = CLIENT_DELIV_PER_LINK;
    want_refused = 1 + 100 - (CLIENT_DELIV_PER_LINK - 1);
    ck_assert_msg(run_until(&w, b_deliveries, 10000), "B: %u delivery IDs, %" PRIu64 " refused",
                  b_st.deliveries, b_st.refused_ids);
    /* The exit's registered ID still carries messages. */
    a_to_b(&w);
    ck_assert(b_deliveries(&w));
    net_down(&w);
}
END_TEST

/* An idle delivery ID is forgotten after reassembly_timeout, or after
 * replay_window once it delivered a message (which may be answered on
 * it); the exit's next cell on it opens it again. */
START_TEST(net_delivery_idle)
{
    struct net w;
    struct client_opts co;

    client_opts_defaults(&co);
    co.backups = 0;
    co.reassembly_timeout_ms = 2000;
    co.replay_window_ms = 4000;
    co.deadline_ms = 1500;
    net_up(&w, &co);
    ck_assert(run_until(&w, a_ready, 15000));
    a_to_b(&w);
    want_deliveries = 1;
    want_refused = 0;
    ck_assert(run_until(&w, b_deliveries, 5000));
    want_deliveries = 0;
    ck_assert_msg(run_until(&w, b_deliveries, 15000), "B kept an idle delivery ID");
    a_to_b(&w);
    want_deliveries = 1;
    ck_assert(run_until(&w, b_deliveries, 5000));
    net_down(&w);
}
END_TEST

/* ---- a relay's loop cover ---- */

static bool r1_looped(struct net *w)
{
    struct client_stats st;

    client_stats(w->cl[R1], &st);
    return st.loops_in >= 20;
}

static void hop_not_r1(void *arg, const struct client_chain_info *ci)
{
    const struct net *w = arg;

    for (unsigned i = 0; i < ci->length; i++)
        ck_assert_mem_ne(ci->hops[i], w->n[R1].id.pk, OVL_ED25519_PK);
}

/* CLIENT_O_COVER_ONLY, as ovld runs it for [relay] loop_interval: R1, a
 * relay without the client role, builds chains of the other relays as soon
 * as it is registered (it has no message to send) and its loops come home
 * on them; it sends and answers nothing else and takes no delivery ID, and
 * A's messages still cross the relays. */
START_TEST(net_relay_loops)
{
    struct net w;
    struct client_opts co, rco, bad;
    struct client_stats st;
    struct client *x;
    uint8_t id[CLIENT_MSG_ID] = {0}, rid[CLIENT_MSG_ID];

    client_opts_defaults(&co);
    co.length = 2; /* the relays but R1 */
    co.backups = 0;
    rco = co;
    rco.flags = CLIENT_O_COVER_ONLY;
    rco.loop_interval_ms = 10;
    rco.distinct_subnets = false;
    net_r1_cover = &rco;
    net_up(&w, &co);
    net_r1_cover = NULL;
    ck_assert_uint_eq(w.n[R1].roles, ROLE_RELAY);
    ck_assert_ptr_null(w.n[R1].chain_open.h[CELL_CHAIN_DELIVER].fn);
    /* Cover only means loop cover and nothing else. */
    bad = rco;
    bad.loop_interval_ms = 0;
    ck_assert_int_eq(client_init(&w.n[R2], &bad, &x), OVL_EINVAL);
    bad = rco;
    bad.cover_interval_ms = 20;
    ck_assert_int_eq(client_init(&w.n[R2], &bad, &x), OVL_EINVAL);
    bad = rco;
    bad.flags = 1u << 5;
    ck_assert_int_eq(client_init(&w.n[R2], &bad, &x), OVL_EINVAL);
    ck_assert_msg(run_until(&w, r1_looped, 15000), "R1's loops did not come home");
    client_each_chain(w.cl[R1], hop_not_r1, &w);
    ck_assert_int_eq(client_send(w.cl[R1], w.n[CB].id.pk, id, 1, false, id), OVL_EPERM);
    ck_assert_int_eq(client_reply(w.cl[R1], id, id, 1, rid), OVL_EPERM);
    ck_assert(run_until(&w, a_any_ready, 15000));
    a_to_b(&w);
    client_stats(w.cl[R1], &st);
    ck_assert_uint_le(st.loops_in, st.loops_out);
    ck_assert_uint_eq(st.cover_out, st.loops_out);
    ck_assert_uint_eq(st.messages_sent + st.fragments_in + st.deliveries, 0);
    ck_assert_uint_eq(st.dropped_auth + st.dropped_bad, 0);
    net_down(&w);
}
END_TEST

static Suite *client_suite(void)
{
    Suite *s = suite_create("client");
    TCase *tc;

    tc = tcase_create("net");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, net_messages, 0, 2);
    tcase_add_test(tc, net_cover_and_rate);
    tcase_add_test(tc, net_send_early);
    tcase_add_test(tc, net_retransmit);
    tcase_add_test(tc, net_deadline);
    tcase_add_test(tc, net_backpressure);
    tcase_add_test(tc, net_first_hop_lost);
    tcase_add_test(tc, net_replace);
    tcase_add_test(tc, net_send_errors);
    tcase_add_test(tc, net_new_chain);
    tcase_add_test(tc, net_never_the_receiver);
    tcase_add_test(tc, net_receiver_on_every_route);
    tcase_add_test(tc, net_delivery_ids);
    tcase_add_test(tc, net_delivery_idle);
    tcase_add_test(tc, net_relay_loops);
    suite_add_tcase(s, tc);
    return s;
}

OVL_CHECK_MAIN(client_suite)
