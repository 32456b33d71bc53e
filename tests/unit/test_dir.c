/* test_dir.c - the directory role: a bootstrap, relays and a client on one
 * loop over loopback TCP; hidden nodes' inbound descriptors passed on,
 * held and looked up. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "core/link.h"
#include "core/node_run.h"
#include "dir/dir.h"
#include "dir/dir_int.h" /* dir_answer, dir_reply_check: the lookup's bytes and checks */
#include "dir/dirmsg.h"
#include "check_main.h"
#include "loopfix.h"

enum { BOOT = 0, R1 = 1, R2 = 2, CLI = 3, NNODES = 4 };

struct res {
    unsigned calls;
    int err;
    struct dir_chain chain;
    struct desc d;
    struct idesc in; /* a lookup answered by an inbound descriptor */
    bool got_in;
    struct desc list[8];
    unsigned n;
};

struct net {
    uv_loop_t loop;
    struct node nodes[NNODES];
    struct dir *dirs[NNODES];
    unsigned count; /* nodes set up */
    uv_timer_t deadline, poll;
    bool (*done)(struct net *);
    void (*pump)(struct net *); /* loopfix.h: unused here */
    bool timed_out;
    struct res *want; /* for got_reply */
};

static const char listen_any[1][OVL_URI_MAX] = {"tcp://127.0.0.1:0"};

static void test_opts(struct dir_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->heartbeat_ms = 100;
    o->ttl_ms = 400;
    o->request_timeout_ms = 400;
    o->chain_cache_ttl_ms = 60000;
    o->onion_rotate_ms = 3600000;
    o->onion_overlap_ms = 600000;
    o->allow_private = true; /* every node is 127.0.0.1 */
}

LOOPFIX_DEFINE(struct net, 1)

static bool got_reply(struct net *w)
{
    return w->want->calls > 0;
}

/* Wait for the callback of a request whose result lands in r. */
static void wait_reply(struct net *w, struct res *r)
{
    w->want = r;
    ck_assert(run_until(w, got_reply, 5000));
    ck_assert_uint_eq(r->calls, 1);
}

static size_t boot_sendq; /* the bootstrap's per-link send queue; 0 = default */

/* Add node i with roles; with a bootstrap spec unless it is the bootstrap. */
static void add_node(struct net *w, unsigned i, unsigned roles, const struct dir_opts *o,
                     const struct dir_bootstrap_spec *bs)
{
    struct node *n = &w->nodes[i];
    struct ovl_identity id;
    struct node_opts no;
    struct peer_spec ps;

    node_opts_defaults(&no);
    if (i == BOOT && boot_sendq)
        no.sendq_max = boot_sendq;
    ck_assert_int_eq(ovl_identity_generate(&id), 0);
    memset(n, 0, sizeof(*n));
    log_init(&n->log, "test", OVL_LOG_WARN, false);
    ck_assert_int_eq(node_init(n, &w->loop, &no, &id, roles), 0);
    ovl_identity_wipe(&id);
    ck_assert_int_eq(dir_init(n, o, bs, bs ? 1 : 0, &w->dirs[i]), 0);
    ck_assert_ptr_eq(n->dir, w->dirs[i]);
    memset(&ps, 0, sizeof(ps));
    if (bs) {
        snprintf(ps.name, sizeof(ps.name), "%s", bs->name);
        snprintf(ps.uri, sizeof(ps.uri), "%s", bs->uri);
        memcpy(ps.pk, bs->pk, OVL_ED25519_PK);
    }
    ck_assert_int_eq(node_start(n, listen_any, 1, bs ? &ps : NULL, bs ? 1 : 0), 0);
    w->count = i + 1 > w->count ? i + 1 : w->count;
}

static void boot_spec(struct net *w, struct dir_bootstrap_spec *bs)
{
    memset(bs, 0, sizeof(*bs));
    snprintf(bs->name, sizeof(bs->name), "boot");
    snprintf(bs->uri, sizeof(bs->uri), "%s", w->nodes[BOOT].listen_uri[0]);
    memcpy(bs->pk, w->nodes[BOOT].id.pk, OVL_ED25519_PK);
}

static void count_cb(void *arg, const struct reg_node *n)
{
    unsigned *count = arg;

    ck_assert(n->d.flags & DESC_RELAY);
    (*count)++;
}

static unsigned boot_relays(struct net *w)
{
    unsigned count = 0;

    ck_assert_int_eq(dir_each_registered(w->dirs[BOOT], count_cb, &count), 0);
    return count;
}

static unsigned want_relays = 2;

static bool all_registered(struct net *w)
{
    for (unsigned i = R1; i < w->count; i++)
        if (!dir_registered(w->dirs[i]))
            return false;
    return boot_relays(w) == want_relays;
}

/* A bootstrap (with boot_roles), two relays and a client, all registered. */
static bool lists_held(struct net *w)
{
    return dir_has_list(w->dirs[R1]) && dir_has_list(w->dirs[R2]) && dir_has_list(w->dirs[CLI]);
}

static struct net *net_up_roles(const struct dir_opts *o, unsigned boot_roles)
{
    struct dir_bootstrap_spec bs;
    struct net *w = calloc(1, sizeof(*w));

    ck_assert_ptr_nonnull(w);
    ck_assert_int_eq(uv_loop_init(&w->loop), 0);
    loopfix_init(w);
    add_node(w, BOOT, boot_roles, o, NULL);
    want_relays = boot_roles & ROLE_RELAY ? 3 : 2;
    boot_spec(w, &bs);
    add_node(w, R1, ROLE_RELAY, o, &bs);
    add_node(w, R2, ROLE_RELAY, o, &bs);
    add_node(w, CLI, ROLE_CLIENT, o, &bs);
    ck_assert(run_until(w, all_registered, 5000));
    /* each asks for the relay list once registered: done before a test
     * counts the bootstrap's requests */
    ck_assert(run_until(w, lists_held, 5000));
    return w;
}

static struct net *net_up(const struct dir_opts *o)
{
    return net_up_roles(o, ROLE_BOOTSTRAP);
}

static void net_down(struct net *w)
{
    for (unsigned i = 0; i < w->count; i++)
        dir_stop(w->dirs[i]);
    for (unsigned i = 0; i < w->count; i++)
        node_stop(&w->nodes[i]);
    loopfix_close(w);
    uv_run(&w->loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(uv_loop_close(&w->loop), 0);
    for (unsigned i = 0; i < w->count; i++) {
        dir_free(w->dirs[i]);
        ck_assert_ptr_null(w->nodes[i].dir);
        node_free(&w->nodes[i]);
    }
    free(w);
}

static void chain_cb(void *arg, int err, const struct dir_chain *ch)
{
    struct res *r = arg;

    r->calls++;
    r->err = err;
    ck_assert(err ? ch == NULL : ch != NULL);
    if (ch)
        r->chain = *ch;
}

static void lookup_cb(void *arg, int err, const struct desc *d, const struct idesc *in)
{
    struct res *r = arg;

    r->calls++;
    r->err = err;
    ck_assert(err ? d == NULL && in == NULL : (d != NULL) != (in != NULL));
    if (d)
        r->d = *d;
    r->got_in = in != NULL;
    if (in)
        r->in = *in;
}

static void list_cb(void *arg, int err, const struct desc *relays, unsigned n)
{
    struct res *r = arg;

    r->calls++;
    r->err = err;
    r->n = n;
    for (unsigned i = 0; i < n && i < 8; i++)
        r->list[i] = relays[i];
}

static const uint8_t *pk_of(struct net *w, unsigned i)
{
    return w->nodes[i].id.pk;
}

START_TEST(test_register)
{
    struct dir_opts o;
    struct dir_stats st;
    struct net *w;
    unsigned count;

    test_opts(&o);
    w = net_up(&o);
    ck_assert(!dir_registered(w->dirs[BOOT])); /* a bare bootstrap publishes nothing */
    for (unsigned i = R1; i <= CLI; i++) {
        dir_stats(w->dirs[i], &st);
        ck_assert_uint_ge(st.registrations_ok, 1);
        ck_assert_uint_eq(st.registrations_failed, 0);
        ck_assert_int_eq(dir_each_registered(w->dirs[i], count_cb, &count), OVL_EUNSUPP);
    }
    dir_stats(w->dirs[BOOT], &st);
    ck_assert_uint_eq(st.reg.relays, 2);
    ck_assert_uint_eq(st.reg.endpoints, 1);
    ck_assert_uint_ge(st.requests_in, 3);
    net_down(w);
}
END_TEST

static bool heartbeats_flow(struct net *w)
{
    struct dir_stats st;

    dir_stats(w->dirs[R1], &st);
    return st.heartbeats_sent >= 3;
}

static bool never(struct net *w)
{
    (void)w;
    return false;
}

/* The bootstrap dropped no node, by silence or by a closed link. */
static void none_dropped(struct net *w)
{
    struct dir_stats st;

    dir_stats(w->dirs[BOOT], &st);
    ck_assert_uint_eq(st.reg.dropped, 0);
    ck_assert_uint_eq(st.dropped_link_closed, 0);
    ck_assert_uint_eq(boot_relays(w), 2);
}

START_TEST(test_heartbeat_keeps_alive)
{
    struct dir_opts o;
    struct net *w;

    test_opts(&o);
    w = net_up(&o);
    ck_assert(run_until(w, heartbeats_flow, 5000));
    /* Well past ttl (400 ms): heartbeats keep everyone registered. */
    ck_assert(!run_until(w, never, 1000));
    none_dropped(w);
    net_down(w);
}
END_TEST

static uint64_t hb_mark; /* R1's heartbeats sent when the pause ended */

static bool heartbeats_since_mark(struct net *w)
{
    struct dir_stats st;

    dir_stats(w->dirs[R1], &st);
    return st.heartbeats_sent >= hb_mark + 3;
}

/* The process held up for three ttl (a busy host, a stopped process):
 * when the loop runs again the bootstrap's expiry timer is due before it
 * has read the heartbeats sent meanwhile; it must not drop their nodes. */
START_TEST(test_pause_keeps_alive)
{
    struct dir_opts o;
    struct dir_stats st;
    struct net *w;

    test_opts(&o);
    w = net_up(&o);
    ck_assert(run_until(w, heartbeats_flow, 5000));
    uv_sleep(3 * o.ttl_ms);
    dir_stats(w->dirs[R1], &st);
    hb_mark = st.heartbeats_sent;
    ck_assert(run_until(w, heartbeats_since_mark, 5000)); /* several checks since */
    none_dropped(w);
    net_down(w);
}
END_TEST

static bool r2_dropped(struct net *w)
{
    return boot_relays(w) == 1;
}

START_TEST(test_silent_node_dropped)
{
    struct dir_opts o;
    struct res *r = calloc(1, sizeof(*r));
    struct net *w;
    uint64_t t0;

    test_opts(&o);
    w = net_up(&o);
    dir_stop(w->dirs[R2]); /* no more heartbeats; its link stays open */
    t0 = clock_now_ms();
    ck_assert(run_until(w, r2_dropped, 5000));
    ck_assert_uint_ge(clock_now_ms() - t0, o.ttl_ms - o.heartbeat_ms);
    ck_assert_int_eq(dir_lookup(w->dirs[R1], pk_of(w, R2), lookup_cb, r), 0);
    wait_reply(w, r);
    ck_assert_int_eq(r->err, OVL_ENOENT);
    free(r);
    net_down(w);
}
END_TEST

START_TEST(test_chain)
{
    struct dir_opts o;
    struct res *a = calloc(1, sizeof(*a)), *b = calloc(1, sizeof(*b));
    struct net *w;

    test_opts(&o);
    w = net_up(&o);
    ck_assert_int_eq(dir_request_chain(w->dirs[CLI], 2, 0, NULL, chain_cb, a), 0);
    ck_assert_uint_eq(a->calls, 0); /* never from inside the call */
    wait_reply(w, a);
    ck_assert_int_eq(a->err, 0);
    ck_assert_uint_eq(a->chain.length, 2);
    ck_assert_uint_eq(a->chain.backups, 0);
    ck_assert_uint_gt(a->chain.expires_ms, clock_wall_ms());
    ck_assert_mem_ne(a->chain.hops[0][0].id_pk, a->chain.hops[1][0].id_pk, OVL_ED25519_PK);
    for (unsigned i = 0; i < 2; i++) {
        const uint8_t *id = a->chain.hops[i][0].id_pk;

        ck_assert(memcmp(id, pk_of(w, R1), 32) == 0 || memcmp(id, pk_of(w, R2), 32) == 0);
        ck_assert(a->chain.hops[i][0].flags & DESC_RELAY);
    }
    /* Within the TTL the same request gets the same chain. */
    ck_assert_int_eq(dir_request_chain(w->dirs[CLI], 2, 0, NULL, chain_cb, b), 0);
    wait_reply(w, b);
    ck_assert_int_eq(b->err, 0);
    ck_assert_mem_eq(a->chain.ref, b->chain.ref, 16);
    ck_assert_mem_eq(a->chain.hops[0][0].id_pk, b->chain.hops[0][0].id_pk, 32);
    free(a);
    free(b);
    net_down(w);
}
END_TEST

START_TEST(test_chain_excludes)
{
    struct dir_opts o;
    struct res *r = calloc(1, sizeof(*r));
    struct net *w;

    test_opts(&o);
    w = net_up(&o);
    /* A relay asking never gets itself. */
    ck_assert_int_eq(dir_request_chain(w->dirs[R1], 1, 0, NULL, chain_cb, r), 0);
    wait_reply(w, r);
    ck_assert_int_eq(r->err, 0);
    ck_assert_mem_eq(r->chain.hops[0][0].id_pk, pk_of(w, R2), 32);
    /* Nor the excluded node. */
    memset(r, 0, sizeof(*r));
    ck_assert_int_eq(dir_request_chain(w->dirs[CLI], 1, 0, pk_of(w, R2), chain_cb, r), 0);
    wait_reply(w, r);
    ck_assert_int_eq(r->err, 0);
    ck_assert_mem_eq(r->chain.hops[0][0].id_pk, pk_of(w, R1), 32);
    /* Two distinct relays but the requester is one of them: not enough. */
    memset(r, 0, sizeof(*r));
    ck_assert_int_eq(dir_request_chain(w->dirs[R1], 2, 0, NULL, chain_cb, r), 0);
    wait_reply(w, r);
    ck_assert_int_eq(r->err, OVL_ENOENT);
    /* Backups when relays suffice, fewer when they do not. */
    memset(r, 0, sizeof(*r));
    ck_assert_int_eq(dir_request_chain(w->dirs[CLI], 1, 1, NULL, chain_cb, r), 0);
    wait_reply(w, r);
    ck_assert_int_eq(r->err, 0);
    ck_assert_uint_eq(r->chain.backups, 1);
    ck_assert_mem_ne(r->chain.hops[0][0].id_pk, r->chain.hops[0][1].id_pk, 32);
    memset(r, 0, sizeof(*r));
    ck_assert_int_eq(dir_request_chain(w->dirs[CLI], 2, 1, NULL, chain_cb, r), 0);
    wait_reply(w, r);
    ck_assert_int_eq(r->err, 0);
    ck_assert_uint_eq(r->chain.length, 2);
    ck_assert_uint_eq(r->chain.backups, 0);
    /* Bad shapes are refused at once, without a callback. */
    ck_assert_int_eq(dir_request_chain(w->dirs[CLI], 0, 0, NULL, chain_cb, r), OVL_EINVAL);
    ck_assert_int_eq(dir_request_chain(w->dirs[CLI], 9, 0, NULL, chain_cb, r), OVL_EINVAL);
    ck_assert_int_eq(dir_request_chain(w->dirs[CLI], 1, 5, NULL, chain_cb, r), OVL_EINVAL);
    free(r);
    net_down(w);
}
END_TEST

/* What a dir_request_chains callback got: its chains copied (heap). */
struct set_res {
    unsigned calls, n;
    int err;
    struct dir_chain *chains;
};

static void chains_cb(void *arg, int err, const struct dir_chain *chains, unsigned n)
{
    struct set_res *r = arg;

    r->calls++;
    r->err = err;
    r->n = n;
    ck_assert(err ? chains == NULL && n == 0 : chains != NULL && n > 0);
    free(r->chains);
    r->chains = NULL;
    if (n) {
        r->chains = malloc(n * sizeof(*chains));
        ck_assert_ptr_nonnull(r->chains);
        memcpy(r->chains, chains, n * sizeof(*chains));
    }
}

static struct set_res *set_waiting;

static bool set_called(struct net *w)
{
    (void)w;
    return set_waiting->calls > 0;
}

/* Ask node i for count chains of length 1 with flags; wait for the answer. */
static void ask_set(struct net *w, unsigned i, unsigned count, unsigned flags, struct set_res *r)
{
    free(r->chains);
    memset(r, 0, sizeof(*r));
    ck_assert_int_eq(dir_request_chains(w->dirs[i], 1, 0, count, flags, NULL, chains_cb, r), 0);
    ck_assert_uint_eq(r->calls, 0); /* never from inside the call */
    set_waiting = r;
    ck_assert(run_until(w, set_called, 5000));
    ck_assert_uint_eq(r->calls, 1);
}

/* A set of chains: count of them, each its own draw, refs told apart;
 * cached as one, FRESH draws anew (chain_refresh 0 here), the one-chain
 * request is another entry; bad arguments refused at once. */
START_TEST(test_chain_set)
{
    struct dir_opts o;
    struct set_res a = {0}, b = {0};
    struct dir_stats st;
    struct net *w;

    test_opts(&o);
    w = net_up(&o);
    ask_set(w, CLI, 5, 0, &a);
    ck_assert_int_eq(a.err, 0);
    ck_assert_uint_eq(a.n, 5);
    for (unsigned k = 0; k < 5; k++) {
        const uint8_t *id = a.chains[k].hops[0][0].id_pk;

        ck_assert_uint_eq(a.chains[k].length, 1);
        ck_assert(memcmp(id, pk_of(w, R1), 32) == 0 || memcmp(id, pk_of(w, R2), 32) == 0);
        ck_assert_mem_eq(a.chains[k].ref, a.chains[0].ref, 15);
        ck_assert_uint_eq(a.chains[k].ref[15], a.chains[0].ref[15] ^ k);
    }
    ask_set(w, CLI, 5, 0, &b); /* cached */
    ck_assert_int_eq(b.err, 0);
    ck_assert_mem_eq(b.chains[0].ref, a.chains[0].ref, 16);
    ask_set(w, CLI, 5, DIR_CHAIN_FRESH, &b); /* drawn anew */
    ck_assert_int_eq(b.err, 0);
    ck_assert_uint_eq(b.n, 5);
    ck_assert_mem_ne(b.chains[0].ref, a.chains[0].ref, 16);
    ask_set(w, CLI, 1, DIR_CHAIN_FRESH, &b); /* one chain, with flags: a DOC_CHAIN */
    ck_assert_int_eq(b.err, 0);
    ck_assert_uint_eq(b.n, 1);
    ask_set(w, BOOT, 3, 0, &b); /* a bootstrap answers itself */
    ck_assert_int_eq(b.err, 0);
    ck_assert_uint_eq(b.n, 3);
    dir_stats(w->dirs[BOOT], &st);
    ck_assert_uint_eq(st.reg.chains_refreshed, 1);
    ck_assert_uint_eq(st.chains_limited_block, 0); /* off in test_opts */
    ck_assert_int_eq(dir_request_chains(w->dirs[CLI], 1, 0, 0, 0, NULL, chains_cb, &b), OVL_EINVAL);
    ck_assert_int_eq(
        dir_request_chains(w->dirs[CLI], 1, 0, DIR_MAX_CHOICES + 1, 0, NULL, chains_cb, &b),
        OVL_EINVAL);
    ck_assert_int_eq(dir_request_chains(w->dirs[CLI], 1, 0, 2, 2, NULL, chains_cb, &b), OVL_EINVAL);
    ck_assert_int_eq(dir_request_chains(w->dirs[CLI], 1, 0, 2, 0, NULL, NULL, &b), OVL_EINVAL);
    free(a.chains);
    free(b.chains);
    net_down(w);
}
END_TEST

/* The request's bytes a bootstrap refuses: a count or flag out of range,
 * a length that is neither form. */
START_TEST(test_chain_request_bad)
{
    static const struct {
        size_t len;
        uint8_t count, flags, status;
    } cases[] = {
        {36, 1, 0, DIR_STATUS_OK},     {36, 8, 1, DIR_STATUS_OK},  {34, 0, 0, DIR_STATUS_OK},
        {36, 0, 0, DIR_STATUS_BAD},    {36, 9, 0, DIR_STATUS_BAD}, {36, 2, 2, DIR_STATUS_BAD},
        {36, 2, 0x81, DIR_STATUS_BAD}, {35, 2, 0, DIR_STATUS_BAD}, {37, 2, 0, DIR_STATUS_BAD},
    };
    uint8_t msg[1 + 36 + 1] = {DIR_CHAIN, 1, 0}, *rep;
    struct dir_opts o;
    size_t rep_len;
    struct net *w;

    test_opts(&o);
    w = net_up(&o);
    for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        msg[35] = cases[i].count;
        msg[36] = cases[i].flags;
        ck_assert_int_eq(dir_answer(w->dirs[BOOT], NULL, msg, 1 + cases[i].len, &rep, &rep_len), 0);
        ck_assert_msg(rep[1] == cases[i].status, "case %u: status %u", i, rep[1]);
        free(rep);
    }
    net_down(w);
}
END_TEST

/* Every node is in 127.0.0.0/24: with one chain draw per block at a time
 * (and a second's refill), the first set is drawn, a FRESH request past
 * chain_refresh gets the cached set back instead of a draw, and another
 * requester of the block, with nothing cached, gets busy; each counted. */
START_TEST(test_chain_block_bucket)
{
    struct dir_opts o;
    struct set_res a = {0}, b = {0};
    struct dir_stats st;
    struct net *w;

    test_opts(&o);
    o.block_chain_rate = 1;
    o.block_chain_burst = 1;
    w = net_up(&o);
    ask_set(w, CLI, 3, 0, &a);
    ck_assert_int_eq(a.err, 0);
    /* within the second: no token for the fresh draw */
    ask_set(w, CLI, 3, DIR_CHAIN_FRESH, &b);
    ck_assert_int_eq(b.err, 0);
    ck_assert_mem_eq(b.chains[0].ref, a.chains[0].ref, 16);
    ask_set(w, R1, 2, 0, &b);
    ck_assert_int_eq(b.err, OVL_EAGAIN);
    dir_stats(w->dirs[BOOT], &st);
    ck_assert_uint_eq(st.chains_limited_block, 2);
    ck_assert_uint_eq(st.chains_held_block, 1);
    ck_assert_uint_eq(st.reg.chains_generated, 1);
    ck_assert_uint_ge(st.blocks, 1);
    free(a.chains);
    free(b.chains);
    net_down(w);
}
END_TEST

START_TEST(test_list_and_lookup)
{
    struct dir_opts o;
    struct dir_stats st;
    struct res *r = calloc(1, sizeof(*r));
    const struct dir_onion *keys;
    unsigned nkeys;
    uint64_t before;
    struct net *w;
    uint8_t unknown[32];

    test_opts(&o);
    o.heartbeat_ms = 1000; /* keeps the list cache valid for this test */
    o.capacity_kib = 1234; /* [relay] capacity: in every node's descriptor */
    w = net_up(&o);
    ck_assert_int_eq(dir_request_list(w->dirs[CLI], list_cb, r), 0);
    wait_reply(w, r);
    ck_assert_int_eq(r->err, 0);
    ck_assert_uint_eq(r->n, 2);
    ck_assert(memcmp(r->list[0].id_pk, pk_of(w, R1), 32) == 0 ||
              memcmp(r->list[1].id_pk, pk_of(w, R1), 32) == 0);
    /* A second list within heartbeat_ms comes from the cache. */
    dir_stats(w->dirs[CLI], &st);
    before = st.requests_out;
    memset(r, 0, sizeof(*r));
    ck_assert_int_eq(dir_request_list(w->dirs[CLI], list_cb, r), 0);
    ck_assert_uint_eq(r->calls, 0);
    wait_reply(w, r);
    ck_assert_uint_eq(r->n, 2);
    dir_stats(w->dirs[CLI], &st);
    ck_assert_uint_eq(st.requests_out, before);

    /* Lookup of a relay: its descriptor with its current onion key. */
    memset(r, 0, sizeof(*r));
    ck_assert_int_eq(dir_lookup(w->dirs[CLI], pk_of(w, R2), lookup_cb, r), 0);
    wait_reply(w, r);
    ck_assert_int_eq(r->err, 0);
    ck_assert_mem_eq(r->d.id_pk, pk_of(w, R2), 32);
    keys = dir_onion_keys(w->dirs[R2], &nkeys);
    ck_assert_uint_eq(nkeys, 1);
    ck_assert_mem_eq(r->d.onion_pk, keys[0].pk, 32);
    ck_assert_uint_eq(r->d.capacity, 1234);
    ck_assert_str_eq(r->d.uris[0], w->nodes[R2].listen_uri[0]);
    /* Looked up again: from the cache; after dir_forget: asked again. */
    dir_stats(w->dirs[CLI], &st);
    before = st.requests_out;
    memset(r, 0, sizeof(*r));
    ck_assert_int_eq(dir_lookup(w->dirs[CLI], pk_of(w, R2), lookup_cb, r), 0);
    wait_reply(w, r);
    dir_stats(w->dirs[CLI], &st);
    ck_assert_uint_eq(st.requests_out, before);
    dir_forget(w->dirs[CLI], pk_of(w, R2));
    dir_forget(w->dirs[CLI], pk_of(w, R2)); /* forgetting twice is harmless */
    memset(r, 0, sizeof(*r));
    ck_assert_int_eq(dir_lookup(w->dirs[CLI], pk_of(w, R2), lookup_cb, r), 0);
    wait_reply(w, r);
    ck_assert_int_eq(r->err, 0);
    dir_stats(w->dirs[CLI], &st);
    ck_assert_uint_eq(st.requests_out, before + 1);
    /* Lookup of the client, an endpoint, from a relay. */
    memset(r, 0, sizeof(*r));
    ck_assert_int_eq(dir_lookup(w->dirs[R1], pk_of(w, CLI), lookup_cb, r), 0);
    wait_reply(w, r);
    ck_assert_int_eq(r->err, 0);
    ck_assert_uint_eq(r->d.flags, DESC_ENDPOINT);
    /* Unknown node. */
    memset(r, 0, sizeof(*r));
    ovl_random(unknown, sizeof(unknown));
    ck_assert_int_eq(dir_lookup(w->dirs[CLI], unknown, lookup_cb, r), 0);
    wait_reply(w, r);
    ck_assert_int_eq(r->err, OVL_ENOENT);
    free(r);
    net_down(w);
}
END_TEST

START_TEST(test_cancel)
{
    struct dir_opts o;
    struct res *a = calloc(1, sizeof(*a)), *b = calloc(1, sizeof(*b));
    struct net *w;

    test_opts(&o);
    w = net_up(&o);
    /* Cancelled while on the wire, and cancelled while already done
     * (a cache hit waiting for the loop): neither is called. */
    ck_assert_int_eq(dir_lookup(w->dirs[CLI], pk_of(w, R1), lookup_cb, a), 0);
    dir_cancel(w->dirs[CLI], a);
    ck_assert_int_eq(dir_lookup(w->dirs[CLI], pk_of(w, R2), lookup_cb, b), 0);
    wait_reply(w, b);
    ck_assert_int_eq(b->err, 0);
    memset(b, 0, sizeof(*b));
    ck_assert_int_eq(dir_lookup(w->dirs[CLI], pk_of(w, R2), lookup_cb, a), 0); /* cached */
    dir_cancel(w->dirs[CLI], a);
    ck_assert_int_eq(dir_request_chain(w->dirs[CLI], 1, 0, NULL, chain_cb, b), 0);
    wait_reply(w, b);
    ck_assert_uint_eq(a->calls, 0);
    free(a);
    free(b);
    net_down(w);
}
END_TEST

START_TEST(test_no_bootstrap_times_out)
{
    struct dir_bootstrap_spec bs;
    struct dir_opts o;
    struct ovl_identity nobody;
    struct res *r = calloc(1, sizeof(*r));
    struct net *w = calloc(1, sizeof(*w));
    uint64_t t0;

    test_opts(&o);
    ck_assert_int_eq(uv_loop_init(&w->loop), 0);
    loopfix_init(w);
    ck_assert_int_eq(ovl_identity_generate(&nobody), 0);
    memset(&bs, 0, sizeof(bs));
    snprintf(bs.name, sizeof(bs.name), "gone");
    snprintf(bs.uri, sizeof(bs.uri), "tcp://127.0.0.1:1"); /* nothing listens there */
    memcpy(bs.pk, nobody.pk, 32);
    ovl_identity_wipe(&nobody);
    add_node(w, CLI, ROLE_CLIENT, &o, &bs);
    w->count = CLI + 1;
    t0 = clock_now_ms();
    ck_assert_int_eq(dir_request_chain(w->dirs[CLI], 2, 0, NULL, chain_cb, r), 0);
    wait_reply(w, r);
    ck_assert_int_eq(r->err, OVL_ETIMEDOUT);
    ck_assert_uint_ge(clock_now_ms() - t0, o.request_timeout_ms - 10);
    ck_assert(!dir_registered(w->dirs[CLI]));
    /* Stopping fails what is pending with OVL_ECLOSED, from the loop. */
    memset(r, 0, sizeof(*r));
    ck_assert_int_eq(dir_request_list(w->dirs[CLI], list_cb, r), 0);
    dir_stop(w->dirs[CLI]);
    ck_assert_uint_eq(r->calls, 0);
    wait_reply(w, r);
    ck_assert_int_eq(r->err, OVL_ECLOSED);
    ck_assert_int_eq(dir_request_list(w->dirs[CLI], list_cb, r), OVL_ECLOSED);
    dir_stop(w->dirs[CLI]); /* twice is fine */
    node_stop(&w->nodes[CLI]);
    loopfix_close(w);
    uv_run(&w->loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(uv_loop_close(&w->loop), 0);
    dir_free(w->dirs[CLI]);
    node_free(&w->nodes[CLI]);
    free(w);
    free(r);
}
END_TEST

/* Stopped before the loop's first turn: the kick timer still runs once,
 * fires what is done (an answer from the bootstrap's own registry, a
 * request the stop failed) and closes itself, and the role never starts
 * (a bootstrap that relays does not register itself). */
START_TEST(test_stop_before_first_turn)
{
    struct dir_bootstrap_spec bs;
    struct dir_opts o;
    struct dir_stats st;
    struct res *a = calloc(1, sizeof(*a)), *b = calloc(1, sizeof(*b));
    struct net *w = calloc(1, sizeof(*w));

    test_opts(&o);
    ck_assert_int_eq(uv_loop_init(&w->loop), 0);
    loopfix_init(w);
    add_node(w, BOOT, ROLE_BOOTSTRAP | ROLE_RELAY, &o, NULL);
    boot_spec(w, &bs);
    add_node(w, CLI, ROLE_CLIENT, &o, &bs);
    /* done at once (no relays yet), and pending (no link yet) */
    ck_assert_int_eq(dir_request_chain(w->dirs[BOOT], 2, 0, NULL, chain_cb, a), 0);
    ck_assert_int_eq(dir_request_list(w->dirs[CLI], list_cb, b), 0);
    dir_stop(w->dirs[BOOT]);
    dir_stop(w->dirs[CLI]);
    ck_assert_uint_eq(a->calls + b->calls, 0);
    node_stop(&w->nodes[BOOT]);
    node_stop(&w->nodes[CLI]);
    loopfix_close(w);
    uv_run(&w->loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(uv_loop_close(&w->loop), 0); /* every timer closed */
    ck_assert_uint_eq(a->calls, 1);
    ck_assert_int_eq(a->err, OVL_ENOENT);
    ck_assert_uint_eq(b->calls, 1);
    ck_assert_int_eq(b->err, OVL_ECLOSED);
    dir_stats(w->dirs[BOOT], &st);
    ck_assert_uint_eq(st.registrations_ok, 0);
    ck_assert(!dir_registered(w->dirs[BOOT]));
    ck_assert_uint_eq(st.reg.relays, 0);
    for (unsigned i = BOOT; i <= CLI; i += CLI - BOOT) {
        dir_free(w->dirs[i]);
        node_free(&w->nodes[i]);
    }
    free(w);
    free(a);
    free(b);
}
END_TEST

static bool rotated(struct net *w)
{
    struct dir_stats st;
    unsigned n;
    const struct dir_onion *k = dir_onion_keys(w->dirs[R1], &n);

    dir_stats(w->dirs[R1], &st);
    /* Rotated, and the bootstrap accepted the new descriptor. */
    return n >= 2 && k[1].retire_ms != 0 && st.registrations_ok >= 2;
}

START_TEST(test_onion_rotation)
{
    struct dir_opts o;
    struct res *r = calloc(1, sizeof(*r));
    const struct dir_onion *k;
    uint8_t first[32];
    unsigned n;
    bool live = false;
    struct net *w;

    test_opts(&o);
    o.onion_rotate_ms = 300;
    o.onion_overlap_ms = 1000;
    w = net_up(&o);
    k = dir_onion_keys(w->dirs[R1], &n);
    ck_assert_uint_eq(n, 1);
    memcpy(first, k[0].pk, 32);
    ck_assert(run_until(w, rotated, 5000));
    k = dir_onion_keys(w->dirs[R1], &n);
    ck_assert_uint_le(n, DIR_MAX_ONION);
    ck_assert_uint_eq(k[0].retire_ms, 0);
    ck_assert_mem_ne(k[0].pk, k[1].pk, 32);
    /* The bootstrap now hands out a rotated key that R1 still holds. */
    ck_assert_int_eq(dir_lookup(w->dirs[R2], pk_of(w, R1), lookup_cb, r), 0);
    wait_reply(w, r);
    ck_assert_int_eq(r->err, 0);
    ck_assert_mem_ne(r->d.onion_pk, first, 32);
    k = dir_onion_keys(w->dirs[R1], &n);
    for (unsigned i = 0; i < n; i++)
        live = live || memcmp(r->d.onion_pk, k[i].pk, 32) == 0;
    ck_assert(live);
    free(r);
    net_down(w);
}
END_TEST

START_TEST(test_bootstrap_that_relays)
{
    struct dir_opts o;
    struct res *r = calloc(1, sizeof(*r));
    struct net *w;

    test_opts(&o);
    w = net_up_roles(&o, ROLE_BOOTSTRAP | ROLE_RELAY);
    /* It lists itself without a link to itself, and keeps itself alive. */
    ck_assert(dir_registered(w->dirs[BOOT]));
    ck_assert(!run_until(w, never, 1000));
    ck_assert_uint_eq(boot_relays(w), 3);
    /* Its own requests are answered from its registry, never with itself. */
    ck_assert_int_eq(dir_request_chain(w->dirs[BOOT], 2, 0, NULL, chain_cb, r), 0);
    ck_assert_uint_eq(r->calls, 0);
    wait_reply(w, r);
    ck_assert_int_eq(r->err, 0);
    for (unsigned i = 0; i < 2; i++)
        ck_assert_mem_ne(r->chain.hops[i][0].id_pk, pk_of(w, BOOT), 32);
    /* Others get it in chains: three relays, the client asks for three. */
    memset(r, 0, sizeof(*r));
    ck_assert_int_eq(dir_request_chain(w->dirs[CLI], 3, 0, NULL, chain_cb, r), 0);
    wait_reply(w, r);
    ck_assert_int_eq(r->err, 0);
    ck_assert_uint_eq(r->chain.length, 3);
    free(r);
    net_down(w);
}
END_TEST

/* ---- what one peer may cost a bootstrap --------------------------------- */

static struct res *waiting; /* all_called: every one of waiting[0 .. n_waiting) */
static unsigned n_waiting;

static bool all_called(struct net *w)
{
    (void)w;
    for (unsigned i = 0; i < n_waiting; i++)
        if (waiting[i].calls == 0)
            return false;
    return true;
}

static uint64_t want_requests_in; /* boot_heard: the bootstrap has read this many */

static bool boot_heard(struct net *w)
{
    struct dir_stats st;

    dir_stats(w->dirs[BOOT], &st);
    return st.requests_in >= want_requests_in;
}

/* Send count copies of request msg from node i's link to the bootstrap,
 * past its directory client (no cache, no pending list): what a hostile
 * peer sends. Their replies are nobody's and ignored. */
static void raw_requests(struct net *w, unsigned i, const uint8_t *msg, size_t len, unsigned count)
{
    struct link *l = link_find(&w->nodes[i], pk_of(w, BOOT));

    ck_assert_ptr_nonnull(l);
    for (unsigned k = 0; k < count; k++)
        ck_assert_int_eq(dirmsg_send(l, CELL_DIR_REQUEST, 0x7f000000u + k, msg, len), 0);
}

static uint64_t want_heartbeats; /* r1_heard: the bootstrap recorded this many of R1's */

static void r1_heartbeats_cb(void *arg, const struct reg_node *n)
{
    struct net *w = arg;

    if (memcmp(n->d.id_pk, pk_of(w, R1), OVL_ED25519_PK) == 0 && n->heartbeats >= want_heartbeats)
        want_heartbeats = 0;
}

static bool r1_heard(struct net *w)
{
    ck_assert_int_eq(dir_each_registered(w->dirs[BOOT], r1_heartbeats_cb, w), 0);
    return want_heartbeats == 0;
}

#define FLOOD_LISTS  40
#define FLOOD_CHAINS 20

/* R1's link floods the bootstrap with list and chain requests: past its
 * burst it is answered BUSY (OVL_EAGAIN for its chains), the list is
 * signed once, another node asking meanwhile is served, and R1's
 * heartbeats still count. */
START_TEST(test_request_flood)
{
    static const uint8_t list_req[1] = {DIR_LIST};
    struct dir_opts o;
    struct dir_stats st, st0;
    struct res *r = calloc(FLOOD_CHAINS + 2, sizeof(*r));
    unsigned ok = 0, busy = 0;
    uint64_t t0, allowed;
    struct net *w;

    test_opts(&o);
    o.ttl_ms = 60000; /* the list is rebuilt only when the registry changes */
    o.request_rate = 1;
    o.request_burst = 5;
    w = net_up(&o);
    dir_stats(w->dirs[BOOT], &st0);
    t0 = clock_now_ms();
    raw_requests(w, R1, list_req, sizeof(list_req), FLOOD_LISTS);
    for (unsigned k = 0; k < FLOOD_CHAINS; k++)
        ck_assert_int_eq(dir_request_chain(w->dirs[R1], 1, 0, NULL, chain_cb, &r[k]), 0);
    /* queued behind the flood at the bootstrap, on another link */
    ck_assert_int_eq(dir_request_list(w->dirs[CLI], list_cb, &r[FLOOD_CHAINS]), 0);
    ck_assert_int_eq(dir_request_chain(w->dirs[CLI], 1, 0, NULL, chain_cb, &r[FLOOD_CHAINS + 1]),
                     0);
    waiting = r;
    n_waiting = FLOOD_CHAINS + 2;
    ck_assert(run_until(w, all_called, 10000));
    want_requests_in = st0.requests_in + FLOOD_LISTS + FLOOD_CHAINS + 2;
    ck_assert(run_until(w, boot_heard, 10000));
    /* the burst (one token went to the registration) and what refilled since */
    allowed = o.request_burst + (clock_now_ms() - t0) / 1000 * o.request_rate + 1;
    for (unsigned k = 0; k < FLOOD_CHAINS; k++) {
        ck_assert_uint_eq(r[k].calls, 1);
        if (r[k].err == 0) {
            ok++;
        } else {
            ck_assert_int_eq(r[k].err, OVL_EAGAIN);
            busy++;
        }
    }
    ck_assert_uint_le(ok, allowed);
    ck_assert_uint_ge(busy, 1);
    ck_assert_int_eq(r[FLOOD_CHAINS].err, 0);
    ck_assert_uint_eq(r[FLOOD_CHAINS].n, 2);
    ck_assert_int_eq(r[FLOOD_CHAINS + 1].err, 0);
    dir_stats(w->dirs[BOOT], &st);
    ck_assert_uint_ge(st.requests_limited, FLOOD_LISTS + FLOOD_CHAINS - allowed);
    ck_assert_uint_eq(st.replies_no_room, 0);
    ck_assert_uint_eq(st.lists_built, 1); /* every list served was the same signed copy */
    /* a heartbeat is never refused, however empty the link's bucket: the
     * bootstrap records R1's next three, none of them BUSY */
    dir_stats(w->dirs[R1], &st0);
    want_heartbeats = st0.heartbeats_sent + 3;
    ck_assert(run_until(w, r1_heard, 10000));
    dir_stats(w->dirs[BOOT], &st0);
    ck_assert_uint_eq(st0.requests_limited, st.requests_limited);
    free(r);
    net_down(w);
}
END_TEST

static bool r1_alone(struct net *w)
{
    struct dir_stats st;

    dir_stats(w->dirs[BOOT], &st);
    return dir_registered(w->dirs[R1]) && st.reg.relays == 1;
}

static bool block_full(struct net *w)
{
    struct dir_stats st;

    dir_stats(w->dirs[BOOT], &st);
    return st.registrations_full_block >= 1 && st.reg.relays + st.reg.endpoints == 2;
}

/* At most two identities from one block: R1, then one of R2 and the
 * client; the other is refused full and counted. And a flood of lists
 * from R1 (within its link's bucket) runs into the block's request
 * bucket, counted apart from the link's. */
START_TEST(test_block_caps)
{
    static const uint8_t list_req[1] = {DIR_LIST};
    struct dir_bootstrap_spec bs;
    struct dir_stats st, st0;
    struct dir_opts o;
    struct net *w = calloc(1, sizeof(*w));
    uint64_t t0, allowed;

    test_opts(&o);
    o.max_nodes_per_block = 2;
    o.block_request_rate = 1;
    o.block_request_burst = 10;
    ck_assert_ptr_nonnull(w);
    ck_assert_int_eq(uv_loop_init(&w->loop), 0);
    loopfix_init(w);
    add_node(w, BOOT, ROLE_BOOTSTRAP, &o, NULL);
    boot_spec(w, &bs);
    add_node(w, R1, ROLE_RELAY, &o, &bs);
    ck_assert(run_until(w, r1_alone, 5000));
    add_node(w, R2, ROLE_RELAY, &o, &bs);
    add_node(w, CLI, ROLE_CLIENT, &o, &bs);
    ck_assert(run_until(w, block_full, 5000));
    dir_stats(w->dirs[BOOT], &st0);
    t0 = clock_now_ms();
    raw_requests(w, R1, list_req, sizeof(list_req), 30);
    want_requests_in = st0.requests_in + 30;
    ck_assert(run_until(w, boot_heard, 5000));
    dir_stats(w->dirs[BOOT], &st);
    /* the bucket's burst at most, and what refilled since */
    allowed = o.block_request_burst + (clock_now_ms() - t0) / 1000 + 1;
    ck_assert_uint_ge(st.requests_limited_block - st0.requests_limited_block, 30 - allowed);
    ck_assert_uint_eq(st.requests_limited, st0.requests_limited); /* the link had tokens */
    ck_assert_uint_eq(st.reg.relays + st.reg.endpoints, 2);
    net_down(w);
}
END_TEST

/* A reply the link cannot queue whole is not built: with room for three
 * cells on each of the bootstrap's links, a batch of chain requests read
 * at once gets BUSY (or nothing, when even that does not fit) past the
 * first few, the link stays open, and the other links are served. */
START_TEST(test_reply_room)
{
    uint8_t chain_req[3 + OVL_ED25519_PK] = {DIR_CHAIN, 1, 0};
    struct dir_opts o;
    struct dir_stats st, st0;
    struct res *r = calloc(1, sizeof(*r));
    struct net *w;

    test_opts(&o);
    o.request_rate = 1000; /* only the room decides here */
    o.request_burst = 1000;
    boot_sendq = 3 * (FRAME_CELL_LEN + OVL_FRAME_LENHDR);
    w = net_up(&o);
    boot_sendq = 0;
    dir_stats(w->dirs[BOOT], &st0);
    raw_requests(w, CLI, chain_req, sizeof(chain_req), 40);
    want_requests_in = st0.requests_in + 40;
    ck_assert(run_until(w, boot_heard, 10000));
    dir_stats(w->dirs[BOOT], &st);
    ck_assert_uint_ge(st.replies_no_room, 1);
    ck_assert_uint_eq(st.requests_limited, 0);
    ck_assert_ptr_nonnull(link_find(&w->nodes[CLI], pk_of(w, BOOT)));
    ck_assert_int_eq(dir_request_chain(w->dirs[R1], 1, 0, NULL, chain_cb, r), 0);
    wait_reply(w, r);
    ck_assert_int_eq(r->err, 0);
    free(r);
    net_down(w);
}
END_TEST

#define BUDGET_LISTS 150

/* Two links ask for the relay list at once, each well within its own
 * bucket: all links together get list_rate KiB a second (a quarter
 * second of it at once); past it the lists are answered BUSY and
 * counted, and the links stay open. */
START_TEST(test_list_budget)
{
    static const uint8_t list_req[1] = {DIR_LIST};
    struct dir_opts o;
    struct dir_stats st, st0;
    uint64_t t0, served, allowed;
    struct net *w;

    test_opts(&o);
    o.ttl_ms = 60000;
    o.request_rate = 1000; /* no link runs out of its own tokens */
    o.request_burst = 1000;
    o.list_rate = 64;
    w = net_up(&o);
    dir_stats(w->dirs[BOOT], &st0);
    t0 = clock_now_ms();
    raw_requests(w, R1, list_req, sizeof(list_req), BUDGET_LISTS);
    raw_requests(w, CLI, list_req, sizeof(list_req), BUDGET_LISTS);
    want_requests_in = st0.requests_in + 2 * BUDGET_LISTS;
    ck_assert(run_until(w, boot_heard, 10000));
    dir_stats(w->dirs[BOOT], &st);
    ck_assert_uint_eq(st.requests_limited, st0.requests_limited);
    ck_assert_uint_ge(st.lists_limited, 1);
    ck_assert_uint_gt(w->dirs[BOOT]->list_doc_len, 0);
    served = 2 * BUDGET_LISTS - (st.lists_limited - st0.lists_limited) -
             (st.replies_no_room - st0.replies_no_room);
    /* the bucket, what refilled since, and the list that found it full */
    allowed =
        64 * 1024 / 4 + (clock_now_ms() - t0 + 1) * 64 * 1024 / 1000 + w->dirs[BOOT]->list_doc_len;
    ck_assert_uint_le(served * w->dirs[BOOT]->list_doc_len, allowed);
    ck_assert_ptr_nonnull(link_find(&w->nodes[R1], pk_of(w, BOOT)));
    ck_assert_ptr_nonnull(link_find(&w->nodes[CLI], pk_of(w, BOOT)));
    net_down(w);
}
END_TEST

/* ---- addresses ---------------------------------------------------------- */

static bool r1_refused(struct net *w)
{
    struct dir_stats st, bst;

    dir_stats(w->dirs[R1], &st);
    dir_stats(w->dirs[BOOT], &bst);
    return st.registrations_failed >= 1 && bst.bad_addresses >= 1;
}

static bool boot_has_two(struct net *w)
{
    return boot_relays(w) == 2;
}

/* Every node is on 127.0.0.1. Without [dir] allow_private_addresses a
 * bootstrap refuses a relay's loopback descriptor (status ADDRESS), a node
 * publishes no loopback address, and a client uses no descriptor naming
 * one, whoever signed the reply. */
START_TEST(test_private_addresses)
{
    struct dir_bootstrap_spec bs;
    struct dir_opts allow, strict;
    struct dir_stats st;
    struct res *r = calloc(1, sizeof(*r));
    struct net *w = calloc(1, sizeof(*w));

    test_opts(&allow);
    strict = allow;
    strict.allow_private = false;
    ck_assert_int_eq(uv_loop_init(&w->loop), 0);
    loopfix_init(w);
    add_node(w, BOOT, ROLE_BOOTSTRAP, &strict, NULL);
    boot_spec(w, &bs);
    add_node(w, R1, ROLE_RELAY, &allow, &bs); /* publishes 127.0.0.1 */
    ck_assert(run_until(w, r1_refused, 5000));
    ck_assert(!dir_registered(w->dirs[R1]));
    ck_assert_uint_eq(boot_relays(w), 0);
    /* a strict node does not even publish it: nothing sent, nothing refused */
    add_node(w, CLI, ROLE_CLIENT, &strict, &bs);
    ck_assert_int_eq(dir_request_chain(w->dirs[CLI], 1, 0, NULL, chain_cb, r), 0);
    wait_reply(w, r);
    ck_assert_int_eq(r->err, OVL_ENOENT); /* no relay registered */
    dir_stats(w->dirs[CLI], &st);
    ck_assert_uint_eq(st.registrations_ok + st.registrations_failed, 0);
    ck_assert(!dir_registered(w->dirs[CLI]));
    net_down(w);

    /* A bootstrap that allows them, and a strict client asking it. */
    w = calloc(1, sizeof(*w));
    ck_assert_int_eq(uv_loop_init(&w->loop), 0);
    loopfix_init(w);
    add_node(w, BOOT, ROLE_BOOTSTRAP, &allow, NULL);
    boot_spec(w, &bs);
    add_node(w, R1, ROLE_RELAY, &allow, &bs);
    add_node(w, R2, ROLE_RELAY, &allow, &bs);
    add_node(w, CLI, ROLE_CLIENT, &strict, &bs);
    ck_assert(run_until(w, boot_has_two, 5000));
    memset(r, 0, sizeof(*r));
    ck_assert_int_eq(dir_request_list(w->dirs[CLI], list_cb, r), 0);
    wait_reply(w, r);
    ck_assert_int_eq(r->err, 0);
    ck_assert_uint_eq(r->n, 0); /* both left out */
    memset(r, 0, sizeof(*r));
    ck_assert_int_eq(dir_lookup(w->dirs[CLI], pk_of(w, R1), lookup_cb, r), 0);
    wait_reply(w, r);
    ck_assert_int_eq(r->err, OVL_EPROTO);
    memset(r, 0, sizeof(*r));
    ck_assert_int_eq(dir_request_chain(w->dirs[CLI], 1, 0, NULL, chain_cb, r), 0);
    wait_reply(w, r);
    ck_assert_int_eq(r->err, OVL_EPROTO);
    dir_stats(w->dirs[CLI], &st);
    ck_assert_uint_eq(st.bad_addresses, 4);
    /* the permissive relay looks the same relay up and gets it */
    memset(r, 0, sizeof(*r));
    ck_assert_int_eq(dir_lookup(w->dirs[R1], pk_of(w, R2), lookup_cb, r), 0);
    wait_reply(w, r);
    ck_assert_int_eq(r->err, 0);
    free(r);
    net_down(w);
}
END_TEST

/* ---- hidden nodes' inbound descriptors ---------------------------------- */

/* Sign an inbound descriptor of id (seq, published at pub, expiring at
 * exp, wall clock) naming relay as its introduction relay, into buf. */
static size_t idesc_of(const struct ovl_identity *id, const uint8_t relay[OVL_ED25519_PK],
                       uint64_t seq, uint64_t pub, uint64_t exp, uint8_t buf[IDESC_MAX_LEN])
{
    struct idesc in;
    size_t len = 0;

    memset(&in, 0, sizeof(in));
    in.suites = OVL_AEAD_ALL;
    in.n_intro = 1;
    in.seq = seq;
    in.published_ms = pub;
    in.expires_ms = exp;
    memcpy(in.id_pk, id->pk, OVL_ED25519_PK);
    memset(in.onion_pk, 0x42, sizeof(in.onion_pk));
    memcpy(in.intro[0].relay_pk, relay, OVL_ED25519_PK);
    memset(in.intro[0].cookie, (int)(0x80 + seq % 64), IDESC_COOKIE_LEN);
    ck_assert_int_eq(idesc_sign(&in, id, buf, IDESC_MAX_LEN, &len), 0);
    return len;
}

/* Every DIR_IDESC the bootstrap judged, whatever the outcome. */
static uint64_t idesc_judged(const struct dir_stats *st)
{
    uint64_t n =
        st->idesc_accepted + st->idesc_bad + st->idesc_bad_sig + st->idesc_relay + st->idesc_full;

    for (unsigned v = 0; v < IDESC_VERDICTS; v++)
        n += st->idesc_refused[v];
    return n;
}

static uint64_t want_judged; /* boot_judged: the bootstrap judged this many DIR_IDESCs */

static bool boot_judged(struct net *w)
{
    struct dir_stats st;

    dir_stats(w->dirs[BOOT], &st);
    return idesc_judged(&st) >= want_judged;
}

/* Publish len bytes of buf from node i to the bootstrap and wait until it
 * judged them. */
static void publish(struct net *w, unsigned i, const uint8_t *buf, size_t len)
{
    struct dir_stats st;

    dir_stats(w->dirs[BOOT], &st);
    want_judged = idesc_judged(&st) + 1;
    ck_assert_int_eq(dir_publish_idesc(w->dirs[i], buf, len), 1);
    ck_assert(run_until(w, boot_judged, 5000));
}

/* Look pk up from node i; return the result (the caller frees it). */
static struct res *look_up(struct net *w, unsigned i, const uint8_t *pk)
{
    struct res *r = calloc(1, sizeof(*r));

    ck_assert_ptr_nonnull(r);
    ck_assert_int_eq(dir_lookup(w->dirs[i], pk, lookup_cb, r), 0);
    wait_reply(w, r);
    return r;
}

/* Whether the bytes hold the text s. */
static bool holds(const uint8_t *p, size_t len, const char *s)
{
    size_t n = strlen(s);

    for (size_t k = 0; n && k + n <= len; k++)
        if (memcmp(p + k, s, n) == 0)
            return true;
    return false;
}

/* A relay passes a hidden node's inbound descriptor on; a client's lookup
 * of the node gets it, and nothing of where anyone is; the newer one
 * replaces it once the client forgot the old one, and the bootstrap
 * refuses, and counts, what must not replace it. */
START_TEST(test_idesc_publish)
{
    uint8_t buf[IDESC_MAX_LEN], bad[IDESC_MAX_LEN], msg[1 + OVL_ED25519_PK] = {DIR_LOOKUP};
    uint64_t wall = clock_wall_ms(), hour = IDESC_MAX_LIFE_MS;
    struct ovl_identity h;
    struct dir_stats st, cst;
    struct dir_opts o;
    struct res *r;
    struct net *w;
    uint8_t *rep;
    size_t len, rep_len;

    test_opts(&o);
    w = net_up(&o);
    ck_assert_int_eq(ovl_identity_generate(&h), 0);
    len = idesc_of(&h, pk_of(w, R1), 7, wall, wall + hour / 2, buf);
    ck_assert_int_eq(dir_publish_idesc(w->dirs[R1], buf, IDESC_MIN_LEN - 1), OVL_EINVAL);
    ck_assert_int_eq(dir_publish_idesc(w->dirs[R1], buf, IDESC_MAX_LEN + 1), OVL_EINVAL);
    r = look_up(w, CLI, h.pk); /* nothing held yet */
    ck_assert_int_eq(r->err, OVL_ENOENT);
    free(r);
    publish(w, R1, buf, len);
    dir_stats(w->dirs[BOOT], &st);
    ck_assert_uint_eq(st.idesc_accepted, 1);
    ck_assert_uint_eq(st.idescs, 1);
    dir_stats(w->dirs[R1], &st);
    ck_assert_uint_eq(st.idesc_published, 1);

    r = look_up(w, CLI, h.pk);
    ck_assert_int_eq(r->err, 0);
    ck_assert(r->got_in);
    ck_assert_uint_eq(r->in.seq, 7);
    ck_assert_mem_eq(r->in.id_pk, h.pk, OVL_ED25519_PK);
    ck_assert_uint_eq(r->in.expires_ms, wall + hour / 2);
    ck_assert_uint_eq(r->in.n_intro, 1);
    ck_assert_mem_eq(r->in.intro[0].relay_pk, pk_of(w, R1), OVL_ED25519_PK);
    free(r);
    dir_stats(w->dirs[CLI], &cst);
    ck_assert_uint_eq(cst.idesc_answers, 1);

    /* The lookup's reply is the descriptor's bytes as signed: no address. */
    memcpy(msg + 1, h.pk, OVL_ED25519_PK);
    ck_assert_int_eq(dir_answer(w->dirs[BOOT], NULL, msg, sizeof(msg), &rep, &rep_len), 0);
    ck_assert_uint_eq(rep_len, 2 + len);
    ck_assert_uint_eq(rep[1], DIR_STATUS_OK);
    ck_assert_uint_eq(rep[2], IDESC_VERSION);
    ck_assert_mem_eq(rep + 2, buf, len);
    ck_assert(!holds(rep, rep_len, "127.0.0.1"));
    for (unsigned i = 0; i < NNODES; i++)
        ck_assert(!holds(rep, rep_len, w->nodes[i].listen_uri[0]));
    free(rep);

    /* A newer one replaces it; the client asks again only once it forgot. */
    len = idesc_of(&h, pk_of(w, R2), 8, wall, wall + hour / 2, buf);
    publish(w, R2, buf, len);
    r = look_up(w, CLI, h.pk);
    ck_assert_uint_eq(r->in.seq, 7); /* from the cache */
    free(r);
    dir_stats(w->dirs[CLI], &st);
    ck_assert_uint_eq(st.requests_out, cst.requests_out);
    dir_forget(w->dirs[CLI], h.pk);
    r = look_up(w, CLI, h.pk);
    ck_assert_int_eq(r->err, 0);
    ck_assert_uint_eq(r->in.seq, 8);
    ck_assert_mem_eq(r->in.intro[0].relay_pk, pk_of(w, R2), OVL_ED25519_PK);
    free(r);
    dir_stats(w->dirs[CLI], &st);
    ck_assert_uint_eq(st.requests_out, cst.requests_out + 1);

    /* What the bootstrap refuses, each counted by its reason. */
    publish(w, R1, buf, len); /* seq 8 again */
    len = idesc_of(&h, pk_of(w, R1), 6, wall, wall + hour / 2, buf);
    publish(w, R1, buf, len);
    len = idesc_of(&h, pk_of(w, R1), 9, wall - hour - 1000, wall - 1000, buf);
    publish(w, R1, buf, len);
    len = idesc_of(&h, pk_of(w, R1), 9, wall + 2 * IDESC_SKEW_MS, wall + hour, buf);
    publish(w, R1, buf, len);
    len = idesc_of(&h, pk_of(w, R1), 9, wall, wall + hour / 2, buf);
    memcpy(bad, buf, len);
    bad[len - 1] ^= 0x01;
    publish(w, R1, bad, len);
    bad[len - 1] ^= 0x01;
    bad[3] = 2; /* n_intro: the length does not fit */
    publish(w, R1, bad, len);
    len = idesc_of(&w->nodes[R2].id, pk_of(w, R1), 9, wall, wall + hour / 2, buf);
    publish(w, R1, buf, len);
    len = idesc_of(&w->nodes[BOOT].id, pk_of(w, R1), 9, wall, wall + hour / 2, buf);
    ck_assert_int_eq(dir_publish_idesc(w->dirs[BOOT], buf, len), 1); /* held by itself */
    dir_stats(w->dirs[BOOT], &st);
    ck_assert_uint_eq(st.idesc_accepted, 2);
    ck_assert_uint_eq(st.idesc_refused[IDESC_REPLAY], 1);
    ck_assert_uint_eq(st.idesc_refused[IDESC_STALE], 1);
    ck_assert_uint_eq(st.idesc_refused[IDESC_EXPIRED], 1);
    ck_assert_uint_eq(st.idesc_refused[IDESC_FUTURE], 1);
    ck_assert_uint_eq(st.idesc_refused[IDESC_OTHER_KEY], 0);
    ck_assert_uint_eq(st.idesc_bad_sig, 1);
    ck_assert_uint_eq(st.idesc_bad, 1);
    ck_assert_uint_eq(st.idesc_relay, 2);
    ck_assert_uint_eq(st.idesc_full, 0);
    ck_assert_uint_eq(st.idescs, 1);
    dir_stats(w->dirs[R1], &st);
    ck_assert_uint_eq(st.bad_replies, 0); /* the bootstrap's answers match nothing: ignored */
    ck_assert_ptr_nonnull(link_find(&w->nodes[R1], pk_of(w, BOOT)));
    r = look_up(w, R1, pk_of(w, R2)); /* a relay is answered by its descriptor */
    ck_assert_int_eq(r->err, 0);
    ck_assert(!r->got_in);
    free(r);
    dir_forget(w->dirs[CLI], h.pk);
    r = look_up(w, CLI, h.pk);
    ck_assert_uint_eq(r->in.seq, 8);
    free(r);
    ovl_identity_wipe(&h);
    net_down(w);
}
END_TEST

/* A lookup's reply is checked by the node that asked: an inbound
 * descriptor of another node, a forged one, or one older than the one it
 * took is refused and counted; the one it took, fetched again, is not. */
START_TEST(test_idesc_reply_checked)
{
    uint8_t buf[IDESC_MAX_LEN];
    uint64_t wall = clock_wall_ms(), exp = wall + IDESC_MAX_LIFE_MS / 2;
    struct ovl_identity h, other;
    struct dir_req r;
    struct dir_stats st;
    struct dir_opts o;
    struct net *w;
    size_t len;

    test_opts(&o);
    w = net_up(&o);
    ck_assert_int_eq(ovl_identity_generate(&h), 0);
    ck_assert_int_eq(ovl_identity_generate(&other), 0);
    memset(&r, 0, sizeof(r));
    r.op = DIR_LOOKUP;
    memcpy(r.pk, h.pk, OVL_ED25519_PK);
    r.has_pk = true;
    len = idesc_of(&other, pk_of(w, R1), 5, wall, exp, buf);
    ck_assert_int_eq(dir_reply_check(w->dirs[CLI], &r, buf, len, pk_of(w, BOOT)), OVL_EPROTO);
    ck_assert_ptr_null(r.in);
    len = idesc_of(&h, pk_of(w, R1), 5, wall, exp, buf);
    buf[40] ^= 0x10; /* published_ms */
    ck_assert_int_eq(dir_reply_check(w->dirs[CLI], &r, buf, len, pk_of(w, BOOT)), OVL_ECRYPTO);
    buf[40] ^= 0x10;
    ck_assert_int_eq(dir_reply_check(w->dirs[CLI], &r, buf, len - 1, pk_of(w, BOOT)), OVL_EPROTO);
    ck_assert_int_eq(dir_reply_check(w->dirs[CLI], &r, buf, len, pk_of(w, BOOT)), 0);
    ck_assert_ptr_nonnull(r.in);
    ck_assert_uint_eq(r.in->seq, 5);
    free(r.in);
    r.in = NULL;
    ck_assert_int_eq(dir_reply_check(w->dirs[CLI], &r, buf, len, pk_of(w, BOOT)), 0);
    free(r.in);
    r.in = NULL;
    dir_forget(w->dirs[CLI], h.pk); /* the seq stays */
    len = idesc_of(&h, pk_of(w, R1), 4, wall, exp, buf);
    ck_assert_int_eq(dir_reply_check(w->dirs[CLI], &r, buf, len, pk_of(w, BOOT)), OVL_EPROTO);
    ck_assert_ptr_null(r.in);
    dir_stats(w->dirs[CLI], &st);
    ck_assert_uint_eq(st.idesc_answers, 2);
    ck_assert_uint_eq(st.idesc_answer_refused[IDESC_OTHER_KEY], 1);
    ck_assert_uint_eq(st.idesc_answer_refused[IDESC_STALE], 1);
    ck_assert_uint_eq(st.idesc_answer_refused[IDESC_REPLAY], 0);
    ck_assert_uint_eq(st.idesc_answer_bad_sig, 1);
    ck_assert_uint_eq(st.idesc_answer_bad, 1);
    ovl_identity_wipe(&h);
    ovl_identity_wipe(&other);
    net_down(w);
}
END_TEST

/* The hold's caps: [dir] max_nodes in all, half of it per passing peer;
 * past them FULL, counted. */
START_TEST(test_idesc_full)
{
    uint8_t buf[IDESC_MAX_LEN];
    uint64_t wall = clock_wall_ms(), exp = wall + IDESC_MAX_LIFE_MS / 2;
    struct ovl_identity h[4];
    struct dir_stats st;
    struct dir_opts o;
    struct net *w;
    size_t len;

    test_opts(&o);
    o.max_nodes = 3; /* the registry holds R1, R2 and the client: just */
    w = net_up(&o);
    for (unsigned i = 0; i < 4; i++)
        ck_assert_int_eq(ovl_identity_generate(&h[i]), 0);
    len = idesc_of(&h[0], pk_of(w, R1), 1, wall, exp, buf);
    publish(w, R1, buf, len);
    len = idesc_of(&h[1], pk_of(w, R1), 1, wall, exp, buf);
    publish(w, R1, buf, len); /* R1's share is 1 */
    publish(w, R2, buf, len);
    len = idesc_of(&h[2], pk_of(w, R1), 1, wall, exp, buf);
    publish(w, CLI, buf, len);
    len = idesc_of(&h[3], pk_of(w, R1), 1, wall, exp, buf);
    publish(w, R2, buf, len); /* all 3 held */
    len = idesc_of(&h[0], pk_of(w, R2), 2, wall, exp, buf);
    publish(w, R2, buf, len); /* a newer one of a held node: in place */
    dir_stats(w->dirs[BOOT], &st);
    ck_assert_uint_eq(st.idesc_accepted, 4);
    ck_assert_uint_eq(st.idesc_full, 2);
    ck_assert_uint_eq(st.idescs, 3);
    for (unsigned i = 0; i < 4; i++)
        ovl_identity_wipe(&h[i]);
    net_down(w);
}
END_TEST

static Suite *dir_suite(void)
{
    Suite *s = suite_create("dir");
    TCase *tc = tcase_create("dir");

    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_register);
    tcase_add_test(tc, test_heartbeat_keeps_alive);
    tcase_add_test(tc, test_pause_keeps_alive);
    tcase_add_test(tc, test_silent_node_dropped);
    tcase_add_test(tc, test_chain);
    tcase_add_test(tc, test_chain_excludes);
    tcase_add_test(tc, test_chain_set);
    tcase_add_test(tc, test_chain_request_bad);
    tcase_add_test(tc, test_chain_block_bucket);
    tcase_add_test(tc, test_list_and_lookup);
    tcase_add_test(tc, test_cancel);
    tcase_add_test(tc, test_no_bootstrap_times_out);
    tcase_add_test(tc, test_stop_before_first_turn);
    tcase_add_test(tc, test_onion_rotation);
    tcase_add_test(tc, test_bootstrap_that_relays);
    tcase_add_test(tc, test_request_flood);
    tcase_add_test(tc, test_block_caps);
    tcase_add_test(tc, test_reply_room);
    tcase_add_test(tc, test_list_budget);
    tcase_add_test(tc, test_private_addresses);
    tcase_add_test(tc, test_idesc_publish);
    tcase_add_test(tc, test_idesc_reply_checked);
    tcase_add_test(tc, test_idesc_full);
    suite_add_tcase(s, tc);
    return s;
}

OVL_CHECK_MAIN(dir_suite)
