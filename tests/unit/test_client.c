/* test_client.c - end-to-end messages (msg.h) without a network, then the
 * whole path (bootstrap, relays, two clients) on one loop. */
#include <check.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chain/relay.h"
#include "client/client.h"
#include "client/msg.h"
#include "lib/bytes.h"
#include "core/link.h"
#include "core/node_run.h"
#include "check_main.h"
#include "loopfix.h"

static const uint8_t msg_id[CLIENT_MSG_ID] = {1, 2,  3,  4,  5,  6,  7,  8,
                                              9, 10, 11, 12, 13, 14, 15, 16};

static void onion_key(struct dir_onion *k)
{
    memset(k, 0, sizeof(*k));
    ovl_x25519_keypair(k->pk, k->sk);
}

static uint8_t *pattern(size_t len, unsigned seed)
{
    uint8_t *p = malloc(len ? len : 1);

    ck_assert_ptr_nonnull(p);
    for (size_t i = 0; i < len; i++)
        p[i] = (uint8_t)(i * 31 + seed + (i >> 8));
    return p;
}

static void small_opts(struct client_opts *o)
{
    client_opts_defaults(o);
    o->inbox_messages = 4;
    o->max_message = 300 * 1024;
    o->inbox_bytes = 4 * 1024 * 1024;
    o->reassembly_timeout_ms = 1000;
}

/* ---- end-to-end encryption ---- */

START_TEST(e2e_round_trip)
{
    struct dir_onion keys[2];
    uint8_t reply[OVL_ED25519_PK];
    uint8_t *m = pattern(1000, 7), *blob;
    uint8_t ack_s[MSG_ACK_TAG], ack_r[MSG_ACK_TAG], ack_other[MSG_ACK_TAG];
    struct client_msg *out;
    size_t blob_len;

    onion_key(&keys[0]);
    onion_key(&keys[1]);
    memset(reply, 0xab, sizeof(reply));
    ck_assert_int_eq(msg_seal(&blob, &blob_len, keys[1].pk, msg_id, reply, m, 1000, ack_s), 0);
    ck_assert_uint_eq(blob_len, 1000 + MSG_OVERHEAD_MAX);
    /* The previous key opens it after the current one fails. */
    ck_assert_int_eq(msg_open(&out, blob, blob_len, msg_id, keys, 2, ack_r), 0);
    /* Both ends derive the same acknowledgement tag. */
    ck_assert_mem_eq(ack_s, ack_r, MSG_ACK_TAG);
    ck_assert_uint_eq(out->len, 1000);
    ck_assert_mem_eq(out->data, m, 1000);
    ck_assert(out->has_from);
    ck_assert_mem_eq(out->from, reply, OVL_ED25519_PK);
    ck_assert_mem_eq(out->id, msg_id, CLIENT_MSG_ID);
    free(out);
    /* Only the wrong key: rejected. */
    ck_assert_int_eq(msg_open(&out, blob, blob_len, msg_id, keys, 1, NULL), OVL_ECRYPTO);
    ck_assert_ptr_null(out);
    /* Another message ID (the associated data): rejected. */
    ck_assert_int_eq(msg_open(&out, blob, blob_len, keys[0].pk, &keys[1], 1, NULL), OVL_ECRYPTO);
    /* Any flipped byte: rejected. */
    blob[blob_len / 2] ^= 1;
    ck_assert_int_eq(msg_open(&out, blob, blob_len, msg_id, &keys[1], 1, NULL), OVL_ECRYPTO);
    free(blob);

    ck_assert_int_eq(msg_seal(&blob, &blob_len, keys[0].pk, msg_id, NULL, m, 1, ack_other), 0);
    ck_assert_uint_eq(blob_len, 1 + MSG_BLOB_MIN);
    ck_assert_int_eq(msg_open(&out, blob, blob_len, msg_id, keys, 1, NULL), 0);
    /* A fresh ephemeral key per message: another message, another tag. */
    ck_assert_int_ne(memcmp(ack_s, ack_other, MSG_ACK_TAG), 0);
    ck_assert(!out->has_from);
    ck_assert_uint_eq(out->len, 1);
    ck_assert_uint_eq(out->data[0], m[0]);
    free(out);
    free(blob);
    ck_assert_int_eq(msg_seal(&blob, &blob_len, keys[0].pk, msg_id, NULL, m, 0, NULL), OVL_EINVAL);
    ck_assert_ptr_null(blob);
    free(m);
}
END_TEST

/* ---- fragments and reassembly ---- */

struct rxt {
    struct client_opts o;
    struct client_stats st;
    struct msg_rx rx;
    struct dir_onion key;
    uint8_t *blob, *m;
    size_t blob_len, len, nfrags;
    uint8_t ack[MSG_ACK_TAG];     /* the sender's tag */
    uint8_t ack_rec[MSG_ACK_LEN]; /* the receiver's last acknowledgement */
};

static void rxt_init(struct rxt *t, size_t len)
{
    memset(t, 0, sizeof(*t));
    small_opts(&t->o);
    onion_key(&t->key);
    ck_assert_int_eq(msg_rx_init(&t->rx, &t->o, &t->st), 0);
    t->len = len;
    t->m = pattern(len, (unsigned)len);
    ck_assert_int_eq(msg_seal(&t->blob, &t->blob_len, t->key.pk, msg_id, NULL, t->m, len, t->ack),
                     0);
    t->nfrags = msg_frag_count(t->blob_len);
}

static void rxt_free(struct rxt *t)
{
    msg_rx_free(&t->rx);
    msg_rx_free(&t->rx); /* idempotent */
    free(t->blob);
    free(t->m);
}

static enum msg_rx_result feed(struct rxt *t, size_t idx, uint64_t now)
{
    uint8_t f[MSG_FRAG_MAX];
    size_t n = msg_frag_build(f, msg_id, t->blob, t->blob_len, idx);

    return msg_rx_fragment(&t->rx, f, n, &t->key, 1, now, 42, t->ack_rec);
}

static void expect_message(struct rxt *t)
{
    struct client_msg *out[2];

    ck_assert_uint_eq(msg_rx_recv(&t->rx, out, 2), 1);
    ck_assert_uint_eq(out[0]->len, t->len);
    ck_assert_mem_eq(out[0]->data, t->m, t->len);
    ck_assert_uint_eq(out[0]->received_ms, 42);
    free(out[0]);
}

static const size_t sizes[] = {1, 779, 780, 851, 852, 853, 5000, 200 * 1024};

START_TEST(frag_sizes_in_order)
{
    struct rxt t;

    rxt_init(&t, sizes[_i]);
    for (size_t i = 0; i < t.nfrags; i++)
        ck_assert_int_eq(feed(&t, i, 0), i + 1 < t.nfrags ? MSG_RX_PARTIAL : MSG_RX_DONE);
    ck_assert_uint_eq(t.st.fragments_in, t.nfrags);
    ck_assert_uint_eq(t.st.messages_received, 1);
    ck_assert_uint_eq(t.rx.part_bytes, 0);
    expect_message(&t);
    rxt_free(&t);
}
END_TEST

START_TEST(frag_sizes_reversed)
{
    struct rxt t;

    rxt_init(&t, sizes[_i]);
    for (size_t i = t.nfrags; i-- > 0;)
        ck_assert_int_eq(feed(&t, i, 0), i > 0 ? MSG_RX_PARTIAL : MSG_RX_DONE);
    expect_message(&t);
    rxt_free(&t);
}
END_TEST

START_TEST(frag_boundaries)
{
    /* 779 + 49 bytes of overhead fill exactly one fragment. */
    ck_assert_uint_eq(msg_frag_count(828), 1);
    ck_assert_uint_eq(msg_frag_count(829), 2);
    ck_assert_uint_eq(MSG_FRAG_MAX, BODY_DATA_MAX);
    ck_assert_uint_eq(MSG_FRAG_HDR + MSG_FRAG_DATA, BODY_DATA_MAX);
}
END_TEST

START_TEST(frag_duplicate_and_replay)
{
    struct rxt t;
    struct client_msg *out[1];

    rxt_init(&t, 5000);
    ck_assert_int_eq(feed(&t, 0, 0), MSG_RX_PARTIAL);
    ck_assert_int_eq(feed(&t, 0, 0), MSG_RX_IGNORED);
    for (size_t i = 1; i < t.nfrags; i++)
        ck_assert_int_ne(feed(&t, i, 0), MSG_RX_DROPPED);
    expect_message(&t);
    ck_assert_uint_eq(t.ack_rec[0], MSG_ACK_TYPE);
    ck_assert_mem_eq(t.ack_rec + 1, msg_id, CLIENT_MSG_ID);
    ck_assert_mem_eq(t.ack_rec + 1 + CLIENT_MSG_ID, t.ack, MSG_ACK_TAG);
    /* A replay of the whole message is not delivered twice; its last
     * fragment is acknowledged again (the first ack may have been lost). */
    memset(t.ack_rec, 0, sizeof(t.ack_rec));
    for (size_t i = 0; i + 1 < t.nfrags; i++)
        ck_assert_int_eq(feed(&t, i, 10), MSG_RX_IGNORED);
    ck_assert_int_eq(feed(&t, t.nfrags - 1, 10), MSG_RX_AGAIN);
    ck_assert_mem_eq(t.ack_rec + 1 + CLIENT_MSG_ID, t.ack, MSG_ACK_TAG);
    ck_assert_uint_eq(t.st.duplicates, 1);
    ck_assert_uint_eq(msg_rx_recv(&t.rx, out, 1), 0);
    ck_assert_uint_eq(t.st.messages_received, 1);
    ck_assert_uint_eq(t.st.dropped_reassembly + t.st.dropped_bad, 0);
    rxt_free(&t);
}
END_TEST

START_TEST(frag_inconsistent_overlap)
{
    struct rxt t;
    uint8_t f[MSG_FRAG_MAX];
    size_t n;

    rxt_init(&t, 5000);
    ck_assert_int_eq(feed(&t, 0, 0), MSG_RX_PARTIAL);
    ck_assert_int_eq(feed(&t, 1, 0), MSG_RX_PARTIAL);
    n = msg_frag_build(f, msg_id, t.blob, t.blob_len, 1);
    f[n - 1] ^= 0x55;
    ck_assert_int_eq(msg_rx_fragment(&t.rx, f, n, &t.key, 1, 0, 0, t.ack_rec), MSG_RX_DROPPED);
    ck_assert_uint_eq(t.st.dropped_reassembly, 1);
    ck_assert_uint_eq(t.rx.n_live, 0);
    ck_assert_uint_eq(t.rx.part_bytes, 0);
    /* The rest of that message is ignored, never delivered. */
    for (size_t i = 0; i < t.nfrags; i++)
        ck_assert_int_eq(feed(&t, i, 0), MSG_RX_IGNORED);
    ck_assert_uint_eq(t.st.messages_received, 0);
    rxt_free(&t);
}
END_TEST

/* Hand-made fragments that break one rule each. */
static const struct bad_frag {
    const char *what;
    uint32_t off, total;
    size_t data_len;
    bool reassembly; /* counted as dropped_reassembly (vs dropped_bad) */
} bad_frags[] = {
    {"total above max_message + overhead", 0, 300 * 1024 + MSG_OVERHEAD_MAX + 1, MSG_FRAG_DATA,
     false},
    {"total below the smallest blob", 0, MSG_BLOB_MIN - 1, MSG_BLOB_MIN - 1, false},
    {"offset off the grid", 100, 5049, MSG_FRAG_DATA, false},
    {"offset past total", 5796, 5049, 10, false},
    {"short middle fragment", 0, 5049, MSG_FRAG_DATA - 1, false},
    {"last fragment too long", 4968, 5049, 82, false},
    {"empty fragment", 0, 5049, 0, false},
    {"total differs from the first fragment", MSG_FRAG_DATA, 6000, MSG_FRAG_DATA, true},
};

START_TEST(frag_rejects)
{
    const struct bad_frag *b = &bad_frags[_i];
    struct rxt t;
    uint8_t f[MSG_FRAG_HDR + MSG_FRAG_DATA] = {0};

    rxt_init(&t, 5000); /* blob of 5049 bytes */
    ck_assert_int_eq(feed(&t, 0, 0), MSG_RX_PARTIAL);
    memcpy(f, msg_id, CLIENT_MSG_ID);
    st_le32(f + CLIENT_MSG_ID, b->off);
    st_le32(f + CLIENT_MSG_ID + 4, b->total);
    ck_assert_msg(msg_rx_fragment(&t.rx, f, MSG_FRAG_HDR + b->data_len, &t.key, 1, 0, 0,
                                  t.ack_rec) == MSG_RX_DROPPED,
                  "%s", b->what);
    ck_assert_uint_eq(b->reassembly ? t.st.dropped_reassembly : t.st.dropped_bad, 1);
    ck_assert_uint_eq(t.rx.n_live, 0);
    ck_assert_int_eq(feed(&t, 1, 0), MSG_RX_IGNORED);
    ck_assert_uint_eq(t.st.messages_received, 0);
    rxt_free(&t);
}
END_TEST

START_TEST(frag_wrong_key)
{
    struct rxt t;

    rxt_init(&t, 900);
    onion_key(&t.key); /* the receiver's key changed completely */
    ck_assert_int_eq(feed(&t, 0, 0), MSG_RX_PARTIAL);
    ck_assert_int_eq(feed(&t, 1, 0), MSG_RX_DROPPED);
    ck_assert_uint_eq(t.st.dropped_auth, 1);
    ck_assert_uint_eq(t.st.messages_received, 0);
    rxt_free(&t);
}
END_TEST

START_TEST(frag_timeout)
{
    struct rxt t;

    rxt_init(&t, 5000);
    ck_assert_int_eq(feed(&t, 0, 1000), MSG_RX_PARTIAL);
    msg_rx_expire(&t.rx, 1999);
    ck_assert_uint_eq(t.rx.n_live, 1);
    ck_assert_uint_eq(t.st.dropped_reassembly, 0);
    msg_rx_expire(&t.rx, 2000);
    ck_assert_uint_eq(t.rx.n_live, 0);
    ck_assert_uint_eq(t.rx.part_bytes, 0);
    ck_assert_uint_eq(t.st.dropped_reassembly, 1);
    ck_assert_int_eq(feed(&t, 1, 2001), MSG_RX_IGNORED);
    /* The tombstone ages out too; a fresh start is then possible. */
    msg_rx_expire(&t.rx, 3001);
    ck_assert_uint_eq(t.rx.n_dead, 0);
    ck_assert_int_eq(feed(&t, 0, 3002), MSG_RX_PARTIAL);
    rxt_free(&t);
}
END_TEST

/* Feed a whole fresh message (random ID) of len bytes encrypted to key. */
static enum msg_rx_result feed_new(struct msg_rx *rx, const struct dir_onion *key, size_t len)
{
    uint8_t id[CLIENT_MSG_ID], f[MSG_FRAG_MAX], ack[MSG_ACK_LEN], *blob, *m = pattern(len, 3);
    enum msg_rx_result r = MSG_RX_DROPPED;
    size_t blob_len, nf;

    ovl_random(id, sizeof(id));
    ck_assert_int_eq(msg_seal(&blob, &blob_len, key->pk, id, NULL, m, len, NULL), 0);
    nf = msg_frag_count(blob_len);
    for (size_t i = 0; i < nf; i++) {
        size_t n = msg_frag_build(f, id, blob, blob_len, i);

        r = msg_rx_fragment(rx, f, n, key, 1, 0, 0, ack);
        if (r == MSG_RX_DROPPED)
            break;
    }
    free(blob);
    free(m);
    return r;
}

START_TEST(inbox_message_cap)
{
    struct client_opts o;
    struct client_stats st = {0};
    struct msg_rx rx;
    struct dir_onion key;
    struct client_msg *out[8];
    size_t k;

    small_opts(&o);
    o.inbox_messages = 2;
    onion_key(&key);
    ck_assert_int_eq(msg_rx_init(&rx, &o, &st), 0);
    ck_assert_int_eq(feed_new(&rx, &key, 10), MSG_RX_DONE);
    ck_assert_int_eq(feed_new(&rx, &key, 20), MSG_RX_DONE);
    ck_assert_int_eq(feed_new(&rx, &key, 30), MSG_RX_DROPPED);
    ck_assert_uint_eq(st.dropped_inbox_full, 1);
    ck_assert_uint_eq(rx.in_bytes, 30);
    k = msg_rx_recv(&rx, out, 8);
    ck_assert_uint_eq(k, 2);
    ck_assert_uint_eq(out[0]->len, 10); /* oldest first */
    ck_assert_uint_eq(out[1]->len, 20);
    free(out[0]);
    free(out[1]);
    ck_assert_uint_eq(rx.in_bytes, 0);
    ck_assert_int_eq(feed_new(&rx, &key, 40), MSG_RX_DONE);
    msg_rx_free(&rx);
}
END_TEST

START_TEST(inbox_byte_cap)
{
    struct client_opts o;
    struct client_stats st = {0};
    struct msg_rx rx;
    struct dir_onion key;
    struct client_msg *out[4];

    small_opts(&o);
    o.inbox_bytes = 8000;
    onion_key(&key);
    ck_assert_int_eq(msg_rx_init(&rx, &o, &st), 0);
    /* Too big to even start reassembling. */
    ck_assert_int_eq(feed_new(&rx, &key, 9000), MSG_RX_DROPPED);
    ck_assert_uint_eq(st.dropped_inbox_full, 1);
    ck_assert_int_eq(feed_new(&rx, &key, 5000), MSG_RX_DONE);
    /* 5000 bytes in the inbox leave no room for 4000 more. */
    ck_assert_int_eq(feed_new(&rx, &key, 4000), MSG_RX_DROPPED);
    ck_assert_uint_eq(st.dropped_inbox_full, 2);
    ck_assert_uint_eq(msg_rx_recv(&rx, out, 4), 1);
    free(out[0]);
    ck_assert_int_eq(feed_new(&rx, &key, 4000), MSG_RX_DONE);
    msg_rx_free(&rx);
}
END_TEST

START_TEST(opts_defaults)
{
    struct client_opts o;

    client_opts_defaults(&o);
    ck_assert_uint_eq(o.length, 3);
    ck_assert_uint_eq(o.backups, 2);
    ck_assert_uint_eq(o.max_message, 1048576);
    ck_assert_uint_eq(o.send_queue, 1024);
}
END_TEST

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

static size_t net_sendq;       /* A's per-link send queue; 0 = default */
static bool net_relay_clients; /* R1..R3 are clients (endpoints) as well */

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

static Suite *client_suite(void)
{
    Suite *s = suite_create("client");
    TCase *tc = tcase_create("msg");

    tcase_add_test(tc, e2e_round_trip);
    tcase_add_loop_test(tc, frag_sizes_in_order, 0, sizeof(sizes) / sizeof(sizes[0]));
    tcase_add_loop_test(tc, frag_sizes_reversed, 0, sizeof(sizes) / sizeof(sizes[0]));
    tcase_add_test(tc, frag_boundaries);
    tcase_add_test(tc, frag_duplicate_and_replay);
    tcase_add_test(tc, frag_inconsistent_overlap);
    tcase_add_loop_test(tc, frag_rejects, 0, sizeof(bad_frags) / sizeof(bad_frags[0]));
    tcase_add_test(tc, frag_wrong_key);
    tcase_add_test(tc, frag_timeout);
    tcase_add_test(tc, inbox_message_cap);
    tcase_add_test(tc, inbox_byte_cap);
    tcase_add_test(tc, opts_defaults);
    suite_add_tcase(s, tc);

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
    suite_add_tcase(s, tc);
    return s;
}

OVL_CHECK_MAIN(client_suite)
