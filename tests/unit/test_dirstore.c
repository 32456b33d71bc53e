/* test_dirstore.c - the last good relay list on disk (dir/dirstore.c and
 * the fallback in dirreply.c): written when a bootstrap's list arrives,
 * read and verified again at start, answering dir_request_list when no
 * bootstrap does while its document lasts; refused when expired, signed
 * by a key not configured, or changed on disk. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/link.h"
#include "core/node_run.h"
#include "dir/dir.h"
#include "dir/dir_int.h" /* d->store: the file's writes */
#include "check_main.h"
#include "loopfix.h"

enum { BOOT = 0, R1 = 1, CLI = 2, R2 = 3, NNODES = 4 };

struct res {
    unsigned calls;
    int err;
    unsigned n;
    uint8_t first[OVL_ED25519_PK];
};

struct net {
    uv_loop_t loop;
    struct node nodes[NNODES];
    struct dir *dirs[NNODES];
    bool used[NNODES];
    uv_timer_t deadline, poll;
    bool (*done)(struct net *);
    void (*pump)(struct net *);
    bool timed_out;
    struct res *want;
};

LOOPFIX_DEFINE(struct net, 1)

static const char listen_any[1][OVL_URI_MAX] = {"tcp://127.0.0.1:0"};
static char dir_path[64];

static void test_opts(struct dir_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->heartbeat_ms = 100;
    o->ttl_ms = 60000; /* the list lives a minute: long enough to be read back */
    o->request_timeout_ms = 300;
    o->allow_private = true;
}

static void mkdir_tmp(void)
{
    snprintf(dir_path, sizeof(dir_path), "/tmp/ovl-ds-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir_path));
}

static void file_path(char *out, size_t len, const char *name)
{
    snprintf(out, len, "%s/%s", dir_path, name);
}

static void rm_tmp(void)
{
    char path[128];

    file_path(path, sizeof(path), "relays");
    unlink(path);
    file_path(path, sizeof(path), "relays.tmp");
    unlink(path);
    rmdir(dir_path);
}

static struct net *net_new(void)
{
    struct net *w = calloc(1, sizeof(*w));

    ck_assert_ptr_nonnull(w);
    ck_assert_int_eq(uv_loop_init(&w->loop), 0);
    loopfix_init(w);
    return w;
}

/* Node i with roles and identity id (generated when NULL), keeping its
 * state in state_dir (NULL: none), with bootstrap bs if given. */
static void add_node(struct net *w, unsigned i, unsigned roles, const struct ovl_identity *id,
                     const char *state_dir, const struct dir_bootstrap_spec *bs)
{
    struct node *n = &w->nodes[i];
    struct ovl_identity gen;
    struct node_opts no;
    struct dir_opts o;
    struct peer_spec ps;

    node_opts_defaults(&no);
    no.state_dir = state_dir;
    if (!id) {
        ck_assert_int_eq(ovl_identity_generate(&gen), 0);
        id = &gen;
    }
    test_opts(&o);
    log_init(&n->log, "test", OVL_LOG_WARN, false);
    ck_assert_int_eq(node_init(n, &w->loop, &no, id, roles), 0);
    ck_assert_int_eq(dir_init(n, &o, bs, bs ? 1 : 0, &w->dirs[i]), 0);
    memset(&ps, 0, sizeof(ps));
    if (bs) {
        snprintf(ps.name, sizeof(ps.name), "%s", bs->name);
        snprintf(ps.uri, sizeof(ps.uri), "%s", bs->uri);
        memcpy(ps.pk, bs->pk, OVL_ED25519_PK);
    }
    ck_assert_int_eq(node_start(n, listen_any, 1, bs ? &ps : NULL, bs ? 1 : 0), 0);
    w->used[i] = true;
}

static void net_free(struct net *w)
{
    for (unsigned i = 0; i < NNODES; i++)
        if (w->used[i])
            dir_stop(w->dirs[i]);
    for (unsigned i = 0; i < NNODES; i++)
        if (w->used[i])
            node_stop(&w->nodes[i]);
    loopfix_close(w);
    uv_run(&w->loop, UV_RUN_DEFAULT); /* the last file writes end here too */
    ck_assert_int_eq(uv_loop_close(&w->loop), 0);
    for (unsigned i = 0; i < NNODES; i++) {
        if (!w->used[i])
            continue;
        dir_free(w->dirs[i]);
        node_free(&w->nodes[i]);
    }
    free(w);
}

static void list_cb(void *arg, int err, const struct desc *relays, unsigned n)
{
    struct res *r = arg;

    r->calls++;
    r->err = err;
    r->n = n;
    if (n)
        memcpy(r->first, relays[0].id_pk, OVL_ED25519_PK);
}

static bool got_reply(struct net *w)
{
    return w->want->calls > 0;
}

static void ask_list(struct net *w, unsigned i, struct res *r)
{
    memset(r, 0, sizeof(*r));
    ck_assert_int_eq(dir_request_list(w->dirs[i], list_cb, r), 0);
    w->want = r;
    ck_assert(run_until(w, got_reply, 10000));
    ck_assert_uint_eq(r->calls, 1);
}

/* A bootstrap named boot at an address where nothing listens. */
static void dead_spec(struct dir_bootstrap_spec *bs, const uint8_t pk[OVL_ED25519_PK])
{
    memset(bs, 0, sizeof(*bs));
    snprintf(bs->name, sizeof(bs->name), "boot");
    snprintf(bs->uri, sizeof(bs->uri), "tcp://127.0.0.1:1");
    memcpy(bs->pk, pk, OVL_ED25519_PK);
}

/* Write a relay list signed by boot, naming one relay, expiring at
 * expires (wall clock), into dir_path/relays; *relay receives its key. */
static void write_list(const struct ovl_identity *boot, uint64_t expires, uint8_t *relay, int flip)
{
    struct ovl_identity rid;
    struct doc_builder b;
    struct desc d;
    uint8_t raw[DESC_MAX_LEN], *doc = NULL;
    size_t raw_len, doc_len;
    uint64_t now = clock_wall_ms();
    char path[128];
    FILE *f;

    ck_assert_int_eq(ovl_identity_generate(&rid), 0);
    memset(&d, 0, sizeof(d));
    d.flags = DESC_RELAY;
    d.suites = 1;
    d.n_uris = 1;
    snprintf(d.uris[0], sizeof(d.uris[0]), "tcp://127.0.0.1:9");
    d.published_ms = now - 1000;
    d.expires_ms = now + 3600000;
    memcpy(d.id_pk, rid.pk, OVL_ED25519_PK);
    ovl_random(d.onion_pk, sizeof(d.onion_pk));
    ck_assert_int_eq(desc_sign(&d, &rid, raw, sizeof(raw), &raw_len), 0);
    memcpy(relay, rid.pk, OVL_ED25519_PK);
    ck_assert_int_eq(doc_begin(&b, DOC_LIST, 0, 0, NULL, now - 2000, expires, 4096), 0);
    ck_assert_int_eq(doc_add(&b, raw, raw_len), 0);
    ck_assert_int_eq(doc_finish(&b, boot, &doc, &doc_len), 0);
    if (flip >= 0)
        doc[(size_t)flip % doc_len] ^= 1;
    file_path(path, sizeof(path), "relays");
    f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(doc, 1, doc_len, f), doc_len);
    fclose(f);
    free(doc);
    ovl_identity_wipe(&rid);
}

/* A client alone whose bootstrap (key boot_pk) is down, its state in
 * dir_path: asks for the list; returns its counters. */
static void lone_client(const uint8_t boot_pk[OVL_ED25519_PK], struct res *r, struct dir_stats *st)
{
    struct dir_bootstrap_spec bs;
    struct net *w = net_new();

    dead_spec(&bs, boot_pk);
    add_node(w, CLI, ROLE_CLIENT, NULL, dir_path, &bs);
    ask_list(w, CLI, r);
    dir_stats(w->dirs[CLI], st);
    net_free(w);
}

static void count_relay(void *arg, const struct reg_node *n)
{
    *(unsigned *)arg += (n->d.flags & DESC_RELAY) != 0;
}

/* Relays registered with the bootstrap. */
static unsigned relays_registered(struct net *w)
{
    unsigned k = 0;

    ck_assert_int_eq(dir_each_registered(w->dirs[BOOT], count_relay, &k), 0);
    return k;
}

static bool relay_listed(struct net *w)
{
    return relays_registered(w) == 1 && dir_registered(w->dirs[CLI]);
}

static bool two_relays_listed(struct net *w)
{
    return relays_registered(w) == 2;
}

static bool list_written(struct net *w)
{
    return w->dirs[CLI]->store.writes >= 1;
}

/* A bootstrap (boot, named in *bs), relay R1 and a client keeping its
 * list in dir_path: up once the client wrote the list it asked for, which
 * names R1 alone. */
static struct net *net_list_written(struct ovl_identity *boot, struct dir_bootstrap_spec *bs)
{
    struct net *w;
    struct res r;

    ck_assert_int_eq(ovl_identity_generate(boot), 0);
    w = net_new();
    add_node(w, BOOT, ROLE_BOOTSTRAP, boot, NULL, NULL);
    memset(bs, 0, sizeof(*bs));
    snprintf(bs->name, sizeof(bs->name), "boot");
    snprintf(bs->uri, sizeof(bs->uri), "%s", w->nodes[BOOT].listen_uri[0]);
    memcpy(bs->pk, boot->pk, OVL_ED25519_PK);
    add_node(w, R1, ROLE_RELAY, NULL, NULL, bs);
    add_node(w, CLI, ROLE_CLIENT, NULL, dir_path, bs);
    ck_assert(run_until(w, relay_listed, 5000));
    ask_list(w, CLI, &r);
    ck_assert_int_eq(r.err, 0);
    ck_assert_uint_eq(r.n, 1);
    ck_assert(run_until(w, list_written, 5000));
    return w;
}

/* A list from a live bootstrap reaches the disk; a client restarted with
 * the bootstrap gone gets it back from there. */
START_TEST(test_round_trip)
{
    struct ovl_identity boot;
    struct dir_bootstrap_spec bs;
    struct dir_stats st;
    struct res r;
    struct net *w;

    mkdir_tmp();
    w = net_list_written(&boot, &bs);
    dir_stats(w->dirs[CLI], &st);
    ck_assert_uint_eq(st.lists_saved, 1);
    ck_assert_uint_eq(st.list_fallbacks, 0);
    net_free(w);

    lone_client(boot.pk, &r, &st);
    ck_assert_int_eq(r.err, 0);
    ck_assert_uint_eq(r.n, 1);
    ck_assert_uint_eq(st.list_restored, 1);
    ck_assert_uint_eq(st.list_fallbacks, 1);
    ck_assert_uint_eq(st.lists_saved, 0); /* what was read is not written again */
    ovl_identity_wipe(&boot);
    rm_tmp();
}
END_TEST

static bool never(struct net *w)
{
    (void)w;
    return false;
}

/* A list naming more relays than the one on disk is written at once, not a
 * minute later: a client's first list may be thinner than the network,
 * and a restart with the bootstrap gone would find too few relays. */
START_TEST(test_longer_list_written_at_once)
{
    struct ovl_identity boot;
    struct dir_bootstrap_spec bs;
    struct dir_stats st;
    struct res r;
    struct net *w;

    mkdir_tmp();
    w = net_list_written(&boot, &bs);
    add_node(w, R2, ROLE_RELAY, NULL, NULL, &bs);
    ck_assert(run_until(w, two_relays_listed, 5000));
    /* The bootstrap signs the longer list half a heartbeat (50 ms) after
     * its last one: ask until it names both, for up to 10 s. */
    for (int tries = 0; tries < 200; tries++) {
        ask_list(w, CLI, &r);
        if (r.n == 2)
            break;
        (void)run_until(w, never, 50);
    }
    ck_assert_uint_eq(r.n, 2);
    dir_stats(w->dirs[CLI], &st);
    ck_assert_uint_eq(st.lists_saved, 2);
    net_free(w);

    lone_client(boot.pk, &r, &st);
    ck_assert_int_eq(r.err, 0);
    ck_assert_uint_eq(r.n, 2);
    ovl_identity_wipe(&boot);
    rm_tmp();
}
END_TEST

struct look {
    unsigned calls;
    int err;
    uint8_t id[OVL_ED25519_PK];
};

static void look_cb(void *arg, int err, const struct desc *d, const struct idesc *in)
{
    struct look *r = arg;

    (void)in;
    r->calls++;
    r->err = err;
    if (d)
        memcpy(r->id, d->id_pk, OVL_ED25519_PK);
}

static bool looked(struct net *w)
{
    return ((struct look *)w->want)->calls > 0;
}

static void ask_lookup(struct net *w, unsigned i, const uint8_t pk[OVL_ED25519_PK],
                       struct look *r)
{
    memset(r, 0, sizeof(*r));
    ck_assert_int_eq(dir_lookup(w->dirs[i], pk, look_cb, r), 0);
    w->want = (struct res *)r;
    ck_assert(run_until(w, looked, 10000));
    ck_assert_uint_eq(r->calls, 1);
}

static bool endpoint_known(struct net *w)
{
    return dir_registered(w->dirs[R1]) && dir_registered(w->dirs[CLI]);
}

/* A node's last answer for another node outlives its 60 s in the lookup
 * cache: asked again then, it answers when no bootstrap does, while the
 * descriptor lasts. */
START_TEST(test_stale_lookup)
{
    struct ovl_identity boot;
    struct dir_bootstrap_spec bs;
    struct dir_stats st;
    struct look r;
    struct net *w;

    ck_assert_int_eq(ovl_identity_generate(&boot), 0);
    w = net_new();
    add_node(w, BOOT, ROLE_BOOTSTRAP, &boot, NULL, NULL);
    memset(&bs, 0, sizeof(bs));
    snprintf(bs.name, sizeof(bs.name), "boot");
    snprintf(bs.uri, sizeof(bs.uri), "%s", w->nodes[BOOT].listen_uri[0]);
    memcpy(bs.pk, boot.pk, OVL_ED25519_PK);
    add_node(w, R1, ROLE_CLIENT, NULL, NULL, &bs); /* an endpoint: in no relay list */
    add_node(w, CLI, ROLE_CLIENT, NULL, NULL, &bs);
    ck_assert(run_until(w, endpoint_known, 5000));
    ask_lookup(w, CLI, w->nodes[R1].id.pk, &r);
    ck_assert_int_eq(r.err, 0);

    /* Its 60 s over, with the bootstrap gone. */
    w->dirs[CLI]->lookups->until_ms = 0;
    dir_stop(w->dirs[BOOT]);
    node_stop(&w->nodes[BOOT]);
    ask_lookup(w, CLI, w->nodes[R1].id.pk, &r);
    ck_assert_int_eq(r.err, 0);
    ck_assert_mem_eq(r.id, w->nodes[R1].id.pk, OVL_ED25519_PK);
    dir_stats(w->dirs[CLI], &st);
    ck_assert_uint_eq(st.lookup_fallbacks, 1);

    /* Forgotten (its addresses did not answer): nothing to fall back on. */
    dir_forget(w->dirs[CLI], w->nodes[R1].id.pk);
    ask_lookup(w, CLI, w->nodes[R1].id.pk, &r);
    ck_assert_int_ne(r.err, 0);
    net_free(w);
    ovl_identity_wipe(&boot);
}
END_TEST

/* The file is believed only when a configured bootstrap signed it, it is
 * whole and it has not expired. */
START_TEST(test_restore_rules)
{
    struct ovl_identity boot, other;
    struct dir_stats st;
    uint8_t relay[OVL_ED25519_PK];
    uint64_t now = clock_wall_ms();
    struct res r;

    mkdir_tmp();
    ck_assert_int_eq(ovl_identity_generate(&boot), 0);
    ck_assert_int_eq(ovl_identity_generate(&other), 0);

    write_list(&boot, now + 600000, relay, -1);
    lone_client(boot.pk, &r, &st);
    ck_assert_int_eq(r.err, 0);
    ck_assert_uint_eq(r.n, 1);
    ck_assert_mem_eq(r.first, relay, OVL_ED25519_PK);
    ck_assert_uint_eq(st.list_restored, 1);
    ck_assert_uint_eq(st.list_fallbacks, 1);

    /* Another bootstrap configured: its key did not sign the file. */
    lone_client(other.pk, &r, &st);
    ck_assert_int_eq(r.err, OVL_ETIMEDOUT);
    ck_assert_uint_eq(st.list_restored, 0);
    ck_assert_uint_eq(st.list_fallbacks, 0);

    /* Expired. */
    write_list(&boot, now - 1, relay, -1);
    lone_client(boot.pk, &r, &st);
    ck_assert_int_eq(r.err, OVL_ETIMEDOUT);
    ck_assert_uint_eq(st.list_restored, 0);

    /* One bit changed on disk, wherever it is. */
    for (int at = 0; at < 400; at += 97) {
        write_list(&boot, now + 600000, relay, at);
        lone_client(boot.pk, &r, &st);
        ck_assert_int_eq(r.err, OVL_ETIMEDOUT);
        ck_assert_uint_eq(st.list_restored, 0);
    }
    ovl_identity_wipe(&boot);
    ovl_identity_wipe(&other);
    rm_tmp();
}
END_TEST

/* Without a data_dir nothing is kept and nothing answers for the
 * bootstrap. */
START_TEST(test_no_state_dir)
{
    struct dir_bootstrap_spec bs;
    struct ovl_identity boot;
    struct dir_stats st;
    struct res r;
    struct net *w = net_new();

    ck_assert_int_eq(ovl_identity_generate(&boot), 0);
    dead_spec(&bs, boot.pk);
    add_node(w, CLI, ROLE_CLIENT, NULL, NULL, &bs);
    ask_list(w, CLI, &r);
    ck_assert_int_eq(r.err, OVL_ETIMEDOUT);
    dir_stats(w->dirs[CLI], &st);
    ck_assert_uint_eq(st.list_restored + st.list_fallbacks + st.lists_saved, 0);
    net_free(w);
    ovl_identity_wipe(&boot);
}
END_TEST

static Suite *dirstore_suite(void)
{
    Suite *s = suite_create("dirstore");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, test_round_trip);
    tcase_add_test(tc, test_longer_list_written_at_once);
    tcase_add_test(tc, test_stale_lookup);
    tcase_add_test(tc, test_restore_rules);
    tcase_add_test(tc, test_no_state_dir);
    suite_add_tcase(s, tc);
    return s;
}

OVL_CHECK_MAIN(dirstore_suite)
