/* test_dsync.c - several bootstraps, one directory: replicated nodes in the
 * registry (merge rules, never exported, the per-origin share), the
 * registry on disk (save, restore, stale entries skipped), the DOC_SYNC
 * document, and bootstraps on one loop syncing and reloading their
 * registry across a restart. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/link.h"
#include "core/node_run.h"
#include "dir/dir.h"
#include "dir/dir_int.h" /* dir_answer: DIR_SYNC from ourselves; the registry file */
#include "dir/registry.h"
#include "check_main.h"
#include "loopfix.h"

#define WALL 1700000000000ull
#define TTL  1000

struct tnode {
    struct ovl_identity id;
    uint8_t raw[DESC_MAX_LEN];
    size_t len;
};

/* Node seed with flags, its descriptor published at WALL + pub and
 * expiring lifetime ms after WALL. */
static void tnode_make(struct tnode *t, unsigned seed, uint8_t flags, uint64_t lifetime,
                       uint64_t pub)
{
    uint8_t s[OVL_ED25519_SEED] = {0};
    struct desc d;

    s[0] = (uint8_t)seed;
    s[1] = (uint8_t)(seed >> 8);
    s[2] = 0x5c;
    ck_assert_int_eq(ovl_identity_from_seed(&t->id, s), 0);
    memset(&d, 0, sizeof(d));
    d.flags = flags;
    d.suites = OVL_AEAD_ALL;
    d.n_uris = 1;
    d.published_ms = WALL + pub;
    d.expires_ms = WALL + lifetime;
    memcpy(d.id_pk, t->id.pk, 32);
    memset(d.onion_pk, (int)(1 + pub % 200), 32);
    snprintf(d.uris[0], sizeof(d.uris[0]), "tcp://127.0.0.1:%u", 7000 + seed);
    ck_assert_int_eq(desc_sign(&d, &t->id, t->raw, sizeof(t->raw), &t->len), 0);
}

static struct registry *reg_make(uint32_t max_nodes)
{
    struct registry_opts o = {.max_nodes = max_nodes,
                              .max_chains = 16,
                              .ttl_ms = TTL,
                              .chain_ttl_ms = 5000,
                              .allow_private = true};
    struct registry *r = NULL;

    ck_assert_int_eq(registry_new(&o, &r), 0);
    return r;
}

static const uint8_t origin_a[32] = {0xa1}, origin_b[32] = {0xb2};

static void count_direct(void *arg, const struct reg_node *n)
{
    unsigned *c = arg;

    ck_assert(!(n->flags & REG_NODE_REPLICATED));
    (*c)++;
}

static unsigned n_direct(const struct registry *r)
{
    unsigned c = 0;

    registry_each_direct(r, count_direct, &c);
    return c;
}

START_TEST(replicate_merge)
{
    struct registry *r = reg_make(64);
    struct tnode a, a2, b;
    const struct reg_node *rn;
    struct registry_stats st;
    uint8_t bad[DESC_MAX_LEN];

    tnode_make(&a, 1, DESC_RELAY, 3600000, 0);
    tnode_make(&a2, 1, DESC_RELAY, 3600000, 10); /* a, published later */
    tnode_make(&b, 2, DESC_ENDPOINT, 3600000, 0);
    ck_assert_int_eq(registry_replicate(r, origin_a, a.raw, a.len, 100, WALL), REG_SYNC_ADDED);
    ck_assert_int_eq(registry_replicate(r, origin_a, b.raw, b.len, 100, WALL), REG_SYNC_ADDED);
    rn = registry_lookup(r, a.id.pk);
    ck_assert_ptr_nonnull(rn);
    ck_assert(rn->flags & REG_NODE_REPLICATED);
    ck_assert_mem_eq(rn->origin, origin_a, 32);
    registry_stats(r, &st);
    ck_assert_uint_eq(st.relays, 1);
    ck_assert_uint_eq(st.replicated_relays, 1);
    ck_assert_uint_eq(st.replicated_endpoints, 1);
    /* never exported, never kept on disk */
    ck_assert_uint_eq(n_direct(r), 0);
    /* the same bytes again, from another origin: alive again */
    ck_assert_int_eq(registry_replicate(r, origin_b, a.raw, a.len, 700, WALL), REG_SYNC_REFRESHED);
    ck_assert_uint_eq(registry_lookup(r, a.id.pk)->last_seen_ms, 700);
    /* other bytes are verified: a broken signature is refused */
    memcpy(bad, a2.raw, a2.len);
    bad[a2.len - 1] ^= 1;
    ck_assert_int_eq(registry_replicate(r, origin_a, bad, a2.len, 800, WALL), OVL_ECRYPTO);
    /* newer bytes are taken, older ones only keep it alive */
    ck_assert_int_eq(registry_replicate(r, origin_a, a2.raw, a2.len, 800, WALL),
                     REG_SYNC_REFRESHED);
    ck_assert_uint_eq(registry_lookup(r, a.id.pk)->d.published_ms, WALL + 10);
    ck_assert_int_eq(registry_replicate(r, origin_a, a.raw, a.len, 900, WALL), REG_SYNC_REFRESHED);
    ck_assert_uint_eq(registry_lookup(r, a.id.pk)->d.published_ms, WALL + 10);
    /* a heartbeat of a copy: the node must register here itself */
    ck_assert_int_eq(registry_heartbeat(r, a.id.pk, 950), OVL_ENOENT);
    /* dropping a copy (a link closed, a report) keeps it, counted */
    ck_assert_uint_eq(registry_drop(r, a.id.pk, 950), 0);
    ck_assert_ptr_nonnull(registry_lookup(r, a.id.pk));
    registry_stats(r, &st);
    ck_assert_uint_eq(st.replicated_kept, 1);
    /* a direct registration supersedes the copy */
    ck_assert_int_eq(registry_register(r, a.id.pk, a2.raw, a2.len, 1000, WALL), 0);
    rn = registry_lookup(r, a.id.pk);
    ck_assert(!(rn->flags & REG_NODE_REPLICATED));
    ck_assert_uint_eq(n_direct(r), 1);
    ck_assert_int_eq(registry_replicate(r, origin_a, a2.raw, a2.len, 1000, WALL), REG_SYNC_DIRECT);
    /* copies live ttl after the last sync naming them: b was named at 100 */
    ck_assert_uint_eq(registry_expire(r, 100 + TTL, WALL), 1);
    ck_assert_ptr_null(registry_lookup(r, b.id.pk));
    ck_assert_ptr_nonnull(registry_lookup(r, a.id.pk));
    registry_free(r);
}
END_TEST

START_TEST(replicate_refused)
{
    struct registry_opts o = {.max_nodes = 8, .max_chains = 4, .ttl_ms = TTL, .chain_ttl_ms = 1};
    struct registry *r = NULL;
    struct tnode old, pub;
    uint8_t junk[200] = {0};

    ck_assert_int_eq(registry_new(&o, &r), 0); /* allow_private off */
    tnode_make(&old, 1, DESC_RELAY, 10, 0);
    tnode_make(&pub, 2, DESC_RELAY, 3600000, 0); /* names 127.0.0.1 */
    ck_assert_int_eq(registry_replicate(r, origin_a, old.raw, old.len, 1, WALL + 10),
                     OVL_ETIMEDOUT);
    ck_assert_int_eq(registry_replicate(r, origin_a, pub.raw, pub.len, 1, WALL), OVL_EUNSUPP);
    ck_assert_int_eq(registry_replicate(r, origin_a, junk, 10, 1, WALL), OVL_EPROTO);
    ck_assert_int_eq(registry_replicate(r, origin_a, junk, sizeof(junk), 1, WALL), OVL_EPROTO);
    ck_assert_ptr_null(registry_lookup(r, old.id.pk));
    registry_free(r);
}
END_TEST

/* At most half of max_nodes per origin; a direct node at max_nodes takes
 * a copy's place; only direct ones are then refused (counted). */
START_TEST(replicate_caps)
{
    struct registry *r = reg_make(6);
    struct tnode t[10];
    struct registry_stats st;
    unsigned i;

    for (i = 0; i < 10; i++)
        tnode_make(&t[i], 10 + i, DESC_RELAY, 3600000, 0);
    for (i = 0; i < 3; i++)
        ck_assert_int_eq(registry_replicate(r, origin_a, t[i].raw, t[i].len, 1, WALL),
                         REG_SYNC_ADDED);
    ck_assert_int_eq(registry_replicate(r, origin_a, t[3].raw, t[3].len, 1, WALL), OVL_ENOMEM);
    for (i = 3; i < 6; i++)
        ck_assert_int_eq(registry_replicate(r, origin_b, t[i].raw, t[i].len, 1, WALL),
                         REG_SYNC_ADDED);
    /* full: a third origin gets nothing, a direct node takes a copy's place */
    ck_assert_int_eq(registry_replicate(r, origin_a, t[6].raw, t[6].len, 1, WALL), OVL_ENOMEM);
    for (i = 6; i < 9; i++)
        ck_assert_int_eq(registry_register(r, t[i].id.pk, t[i].raw, t[i].len, 2, WALL), 0);
    registry_stats(r, &st);
    ck_assert_uint_eq(st.relays, 6);
    ck_assert_uint_eq(st.replicated_relays, 3);
    ck_assert_uint_eq(st.replicated_ceded, 3);
    /* an origin's share freed by a drop can be taken again */
    ck_assert_uint_eq(registry_expire(r, 2 + TTL, WALL), 6);
    ck_assert_int_eq(registry_replicate(r, origin_a, t[0].raw, t[0].len, 3, WALL), REG_SYNC_ADDED);
    for (i = 1; i < 6; i++)
        ck_assert_int_eq(registry_register(r, t[i].id.pk, t[i].raw, t[i].len, 3, WALL), 0);
    ck_assert_int_eq(registry_register(r, t[9].id.pk, t[9].raw, t[9].len, 3, WALL), 0);
    ck_assert_int_eq(registry_register(r, t[6].id.pk, t[6].raw, t[6].len, 3, WALL), OVL_ENOMEM);
    registry_stats(r, &st);
    ck_assert_uint_eq(st.full, 1);
    ck_assert_uint_eq(st.replicated_relays, 0);
    registry_free(r);
}
END_TEST

/* A second registry loads what the first saved: direct nodes only, those
 * still valid, live from the load on. */
START_TEST(save_restore)
{
    struct registry *r = reg_make(64), *r2 = reg_make(64);
    struct tnode a, b, e, c;
    unsigned loaded, skipped;
    uint8_t *buf;
    size_t len;
    uint64_t v;

    tnode_make(&a, 1, DESC_RELAY, 3600000, 0);
    tnode_make(&b, 2, DESC_RELAY, 5000, 0); /* expires at WALL + 5 s */
    tnode_make(&e, 3, DESC_ENDPOINT, 3600000, 0);
    tnode_make(&c, 4, DESC_RELAY, 3600000, 0);
    v = registry_direct_version(r);
    ck_assert_int_eq(registry_register(r, a.id.pk, a.raw, a.len, 1, WALL), 0);
    ck_assert_int_eq(registry_register(r, b.id.pk, b.raw, b.len, 1, WALL), 0);
    ck_assert_int_eq(registry_register(r, e.id.pk, e.raw, e.len, 1, WALL), 0);
    ck_assert_int_eq(registry_replicate(r, origin_a, c.raw, c.len, 1, WALL), REG_SYNC_ADDED);
    ck_assert_uint_ne(registry_direct_version(r), v);
    v = registry_direct_version(r);
    ck_assert_int_eq(registry_heartbeat(r, a.id.pk, 2), 0);
    ck_assert_uint_eq(registry_direct_version(r), v); /* heartbeats change nothing to save */
    ck_assert_int_eq(registry_save(r, &buf, &len), 0);
    /* ten seconds later b has expired; the copy c was never saved */
    ck_assert_int_eq(registry_restore(r2, buf, len, 500, WALL + 10000, &loaded, &skipped), 0);
    ck_assert_uint_eq(loaded, 2);
    ck_assert_uint_eq(skipped, 1);
    ck_assert_ptr_nonnull(registry_lookup(r2, a.id.pk));
    ck_assert_ptr_nonnull(registry_lookup(r2, e.id.pk));
    ck_assert_ptr_null(registry_lookup(r2, b.id.pk));
    ck_assert_ptr_null(registry_lookup(r2, c.id.pk));
    ck_assert_uint_eq(registry_lookup(r2, a.id.pk)->last_seen_ms, 500);
    ck_assert_uint_eq(registry_expire(r2, 500 + TTL - 1, WALL + 10000), 0);
    ck_assert_uint_eq(registry_expire(r2, 500 + TTL, WALL + 10000), 2);
    /* a truncated or foreign file */
    registry_free(r2);
    r2 = reg_make(64);
    ck_assert_int_eq(registry_restore(r2, buf, len - 1, 1, WALL, &loaded, &skipped), OVL_EPROTO);
    ck_assert_uint_eq(loaded, 2); /* what came before the fault */
    buf[0] = 9;
    ck_assert_int_eq(registry_restore(r2, buf, len, 1, WALL, &loaded, &skipped), OVL_EPROTO);
    ck_assert_uint_eq(loaded, 0);
    free(buf);
    registry_free(r);
    registry_free(r2);
}
END_TEST

/* DOC_SYNC: shaped like a list; entries walked, left to the reader. */
START_TEST(sync_doc)
{
    struct ovl_identity bs;
    struct doc_builder b;
    struct tnode a;
    struct doc doc;
    uint8_t *out, ref[16] = {1};
    size_t len;

    ck_assert_int_eq(ovl_identity_generate(&bs), 0);
    tnode_make(&a, 1, DESC_RELAY, 3600000, 0);
    a.raw[a.len - 1] ^= 1; /* the reader's to find */
    ck_assert_int_eq(doc_begin(&b, DOC_SYNC, 1, 0, NULL, WALL, WALL + 1, 4096), OVL_EINVAL);
    ck_assert_int_eq(doc_begin(&b, DOC_SYNC, 0, 0, ref, WALL, WALL + 1, 4096), OVL_EINVAL);
    ck_assert_int_eq(doc_begin(&b, DOC_SYNC, 0, 0, NULL, WALL, WALL + 1, 4096), 0);
    ck_assert_int_eq(doc_add(&b, a.raw, a.len), 0);
    ck_assert_int_eq(doc_finish(&b, &bs, &out, &len), 0);
    ck_assert_int_eq(doc_parse(&doc, out, len, bs.pk), 0);
    ck_assert_uint_eq(doc.kind, DOC_SYNC);
    ck_assert_uint_eq(doc.count, 1);
    ck_assert_ptr_null(doc.descs);
    ck_assert_uint_eq(doc.entries[0].len, a.len);
    doc_free(&doc);
    out[len - 1] ^= 1;
    ck_assert_int_eq(doc_parse(&doc, out, len, bs.pk), OVL_ECRYPTO);
    free(out);
    ovl_identity_wipe(&bs);
}
END_TEST

/* ---- bootstraps on one loop ---------------------------------------------- */

/* Slots: B2R and B1R are B2 and B1 started again (same identity, a new
 * port); a stopped node stays in its slot until the end, when the loop
 * has closed everything of it. */
enum { B1 = 0, B2 = 1, REL = 2, B2R = 3, B1R = 4, NN = 5 };

struct net {
    uv_loop_t loop;
    struct node nodes[NN];
    struct dir *dirs[NN];
    bool up[NN];
    uv_timer_t deadline, poll;
    bool (*done)(struct net *);
    void (*pump)(struct net *);
    bool timed_out;
    unsigned watch; /* the slot a condition looks at */
    char state[64]; /* B1's data_dir */
};

LOOPFIX_DEFINE(struct net, 5)

static void test_opts(struct dir_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->heartbeat_ms = 100;
    o->ttl_ms = 2000;
    o->request_timeout_ms = 400;
    o->allow_private = true;
}

/* Start slot i as identity seed (1 = B1, 2 = B2, 3 = the relay) with the
 * bootstraps of slots bs (n_bs of them; a slot naming itself is ignored,
 * as B1 does); B1's identity keeps its registry in w->state. */
static void node_up(struct net *w, unsigned i, uint8_t seed, unsigned roles, const unsigned *bs,
                    unsigned n_bs)
{
    static const char listen[1][OVL_URI_MAX] = {"tcp://127.0.0.1:0"};
    struct dir_bootstrap_spec spec[2];
    struct peer_spec ps[2];
    struct node *n = &w->nodes[i];
    uint8_t sd[OVL_ED25519_SEED] = {seed, 0xd5};
    struct ovl_identity id;
    struct node_opts no;
    struct dir_opts o;

    test_opts(&o);
    node_opts_defaults(&no);
    no.reconnect_min_ms = 100;
    no.reconnect_max_ms = 200;
    if (seed == 1)
        no.state_dir = w->state;
    ck_assert_int_eq(ovl_identity_from_seed(&id, sd), 0);
    memset(n, 0, sizeof(*n));
    log_init(&n->log, "test", OVL_LOG_ERROR, false);
    ck_assert_int_eq(node_init(n, &w->loop, &no, &id, roles), 0);
    ovl_identity_wipe(&id);
    for (unsigned k = 0; k < n_bs; k++) {
        const struct node *b = bs[k] == i ? n : &w->nodes[bs[k]];

        memset(&spec[k], 0, sizeof(spec[k]));
        snprintf(spec[k].name, sizeof(spec[k].name), "b%u", bs[k]);
        /* our own slot has no address yet: never dialled anyway */
        snprintf(spec[k].uri, sizeof(spec[k].uri), "%s",
                 bs[k] == i ? "tcp://127.0.0.1:9" : b->listen_uri[0]);
        memcpy(spec[k].pk, b->id.pk, OVL_ED25519_PK);
        memset(&ps[k], 0, sizeof(ps[k]));
        memcpy(ps[k].name, spec[k].name, sizeof(ps[k].name));
        memcpy(ps[k].uri, spec[k].uri, sizeof(ps[k].uri));
        memcpy(ps[k].pk, spec[k].pk, OVL_ED25519_PK);
    }
    ck_assert_int_eq(dir_init(n, &o, spec, n_bs, &w->dirs[i]), 0);
    ck_assert_int_eq(node_start(n, listen, 1, ps, n_bs), 0);
    w->up[i] = true;
}

static bool links_gone(struct net *w)
{
    return w->nodes[w->watch].n_links == 0;
}

/* Stop slot i and wait until its links are closed. */
static void node_down(struct net *w, unsigned i)
{
    dir_stop(w->dirs[i]);
    node_stop(&w->nodes[i]);
    w->up[i] = false;
    w->watch = i;
    ck_assert(run_until(w, links_gone, 10000));
}

static struct dir_stats stats_of(struct net *w, unsigned i)
{
    struct dir_stats st;

    dir_stats(w->dirs[i], &st);
    return st;
}

static bool has_relay(struct net *w)
{
    struct dir_stats st = stats_of(w, w->watch);

    return st.reg.relays == 1 && st.reg.replicated_relays == 0;
}

static bool relay_saved(struct net *w)
{
    /* written, not only asked for: the next start reads the file */
    return has_relay(w) && stats_of(w, w->watch).registry_saves > 0 &&
           w->dirs[w->watch]->regfile.writes > 0;
}

/* The watched slot holds the relay, registered elsewhere, as a copy. */
static bool has_copy(struct net *w)
{
    struct dir_stats st = stats_of(w, w->watch);

    return st.reg.relays == 1 && st.reg.replicated_relays == 1 && st.syncs_ok > 0;
}

static bool synced_both_ways(struct net *w)
{
    return stats_of(w, B1R).syncs_ok > 0 && stats_of(w, B2R).syncs_served > 0 &&
           stats_of(w, B2R).syncs_ok > 0;
}

START_TEST(two_bootstraps)
{
    static const unsigned b1_b2[] = {B1, B2}, b1[] = {B1}, b1r_b2r[] = {B1R, B2R};
    struct net *w = calloc(1, sizeof(*w));
    uint8_t req = DIR_SYNC, *rep = NULL;
    struct dir_stats st;
    size_t rep_len;
    char path[128];

    ck_assert_ptr_nonnull(w);
    snprintf(w->state, sizeof(w->state), "/tmp/ovl-dsync-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(w->state));
    ck_assert_int_eq(uv_loop_init(&w->loop), 0);
    loopfix_init(w);
    /* B2 knows no other bootstrap; B1 names both (itself too); the relay B1. */
    node_up(w, B2, 2, ROLE_BOOTSTRAP, NULL, 0);
    node_up(w, B1, 1, ROLE_BOOTSTRAP, b1_b2, 2);
    node_up(w, REL, 3, ROLE_RELAY, b1, 1);
    w->watch = B1;
    ck_assert(run_until(w, relay_saved, 10000));
    /* B2 refuses B1's sync: B1 is not one of its bootstraps */
    st = stats_of(w, B2);
    ck_assert_uint_eq(st.reg.relays, 0);
    ck_assert_uint_gt(st.syncs_refused, 0);
    ck_assert_uint_gt(stats_of(w, B1).syncs_failed, 0);
    /* DIR_SYNC from ourselves is refused too */
    ck_assert_int_eq(dir_answer(w->dirs[B1], NULL, &req, 1, &rep, &rep_len), 0);
    ck_assert_uint_eq(rep[1], DIR_STATUS_REFUSED);
    free(rep);
    /* B2 again, naming B1: it pulls the relay as a copy */
    node_down(w, B2);
    node_up(w, B2R, 2, ROLE_BOOTSTRAP, b1, 1);
    w->watch = B2R;
    ck_assert(run_until(w, has_copy, 10000));
    ck_assert_uint_gt(stats_of(w, B1).syncs_served, 0);
    /* B1 again from its data dir: the relay is listed at once, and B2
     * never sends the copy back to it */
    node_down(w, B1);
    node_up(w, B1R, 1, ROLE_BOOTSTRAP, b1r_b2r, 2);
    st = stats_of(w, B1R);
    ck_assert_uint_eq(st.registry_loaded, 1);
    ck_assert_uint_eq(st.reg.relays, 1);
    ck_assert(run_until(w, synced_both_ways, 10000));
    w->watch = B1R;
    ck_assert(has_relay(w));
    ck_assert_uint_eq(stats_of(w, B1R).sync_added, 0);
    for (unsigned i = 0; i < NN; i++)
        if (w->up[i]) {
            dir_stop(w->dirs[i]);
            node_stop(&w->nodes[i]);
        }
    loopfix_close(w);
    uv_run(&w->loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(uv_loop_close(&w->loop), 0);
    for (unsigned i = 0; i < NN; i++) {
        dir_free(w->dirs[i]);
        node_free(&w->nodes[i]);
    }
    snprintf(path, sizeof(path), "%s/registry", w->state);
    unlink(path);
    rmdir(w->state);
    free(w);
}
END_TEST

static Suite *dsync_suite(void)
{
    Suite *s = suite_create("dsync");
    TCase *tc = tcase_create("registry");

    tcase_add_test(tc, replicate_merge);
    tcase_add_test(tc, replicate_refused);
    tcase_add_test(tc, replicate_caps);
    tcase_add_test(tc, save_restore);
    tcase_add_test(tc, sync_doc);
    suite_add_tcase(s, tc);
    tc = tcase_create("net");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, two_bootstraps);
    suite_add_tcase(s, tc);
    return s;
}

OVL_CHECK_MAIN(dsync_suite)
