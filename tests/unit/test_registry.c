/* test_registry.c - the bootstrap's registry: nodes, heartbeats, expiry,
 * chain generation and its cache, sets of chains and fresh draws, nodes per
 * address block; and the buckets per address block (dblock.h). Time is
 * injected. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dir/dblock.h"
#include "dir/registry.h"

#include "check_main.h"

#define WALL         1700000000000ull
#define TTL          1000
#define CHAIN_TTL    5000
#define MAX_NODES    64
#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

struct tnode {
    struct ovl_identity id;
    uint8_t raw[DESC_MAX_LEN];
    size_t len;
};

/* Node seed (distinct per test node), with flags and a descriptor that
 * expires lifetime ms after WALL, naming uri (NULL: 127.0.0.1, port from the
 * seed). onion varies so that re-registrations differ. */
static void tnode_make_at(struct tnode *t, unsigned seed, uint8_t flags, uint64_t lifetime,
                          uint8_t onion, const char *uri)
{
    uint8_t s[OVL_ED25519_SEED] = {0};
    struct desc d;

    s[0] = (uint8_t)seed;
    s[1] = (uint8_t)(seed >> 8);
    s[2] = 0xd1;
    ck_assert_int_eq(ovl_identity_from_seed(&t->id, s), 0);
    memset(&d, 0, sizeof(d));
    d.flags = flags;
    d.suites = OVL_AEAD_ALL;
    d.n_uris = 1;
    d.published_ms = WALL;
    d.expires_ms = WALL + lifetime;
    memcpy(d.id_pk, t->id.pk, 32);
    memset(d.onion_pk, onion ? onion : 1, 32);
    snprintf(d.uris[0], sizeof(d.uris[0]), "tcp://127.0.0.1:%u", 7000 + seed);
    if (uri)
        snprintf(d.uris[0], sizeof(d.uris[0]), "%s", uri);
    ck_assert_int_eq(desc_sign(&d, &t->id, t->raw, sizeof(t->raw), &t->len), 0);
}

static void tnode_make(struct tnode *t, unsigned seed, uint8_t flags, uint64_t lifetime,
                       uint8_t onion)
{
    tnode_make_at(t, seed, flags, lifetime, onion, NULL);
}

static struct registry *reg_make(uint32_t max_nodes, uint32_t max_chains, uint32_t chain_ttl)
{
    struct registry_opts o = {.max_nodes = max_nodes,
                              .max_chains = max_chains,
                              .ttl_ms = TTL,
                              .chain_ttl_ms = chain_ttl,
                              .allow_private = true};
    struct registry *r = NULL;

    ck_assert_int_eq(registry_new(&o, &r), 0);
    ck_assert_ptr_nonnull(r);
    return r;
}

static void reg_add(struct registry *r, struct tnode *t, uint64_t now)
{
    ck_assert_int_eq(registry_register(r, t->id.pk, t->raw, t->len, now, WALL), 0);
}

START_TEST(register_heartbeat_expire)
{
    struct registry *r = reg_make(MAX_NODES, 16, CHAIN_TTL);
    struct registry_stats st;
    struct tnode a, b, e;

    tnode_make(&a, 1, DESC_RELAY, 3600000, 1);
    tnode_make(&b, 2, DESC_RELAY | DESC_ENDPOINT, 3600000, 1);
    tnode_make(&e, 3, DESC_ENDPOINT, 3600000, 1);
    reg_add(r, &a, 0);
    reg_add(r, &b, 0);
    reg_add(r, &e, 0);
    registry_stats(r, &st);
    ck_assert_uint_eq(st.relays, 2);
    ck_assert_uint_eq(st.endpoints, 1);
    ck_assert_uint_eq(st.registered, 3);

    const struct reg_node *n = registry_lookup(r, a.id.pk);
    ck_assert_ptr_nonnull(n);
    ck_assert_uint_eq(n->raw_len, a.len);
    ck_assert_int_eq(memcmp(n->raw, a.raw, a.len), 0);
    ck_assert_int_eq(memcmp(n->d.id_pk, a.id.pk, 32), 0);

    ck_assert_int_eq(registry_heartbeat(r, a.id.pk, 800), 0);
    ck_assert_int_eq(registry_heartbeat(r, e.id.pk, 900), 0);
    ck_assert_uint_eq(registry_lookup(r, a.id.pk)->heartbeats, 1);
    ck_assert_uint_eq(registry_expire(r, 999, WALL), 0);
    ck_assert_uint_eq(registry_expire(r, 1000, WALL), 1); /* b: silent for TTL */
    ck_assert_ptr_null(registry_lookup(r, b.id.pk));
    ck_assert_int_eq(registry_heartbeat(r, b.id.pk, 1000), OVL_ENOENT);
    ck_assert_uint_eq(registry_expire(r, 1799, WALL), 0);
    ck_assert_uint_eq(registry_expire(r, 1800, WALL), 1); /* a */
    ck_assert_uint_eq(registry_expire(r, 1900, WALL), 1); /* e */
    registry_stats(r, &st);
    ck_assert_uint_eq(st.relays + st.endpoints, 0);
    ck_assert_uint_eq(st.dropped, 3);

    /* A descriptor that expires on the wall clock goes even if heartbeating. */
    tnode_make(&a, 1, DESC_RELAY, 500, 1);
    reg_add(r, &a, 2000);
    ck_assert_uint_eq(registry_expire(r, 2001, WALL + 499), 0);
    ck_assert_uint_eq(registry_expire(r, 2002, WALL + 500), 1);
    registry_free(r);
}
END_TEST

START_TEST(register_refused)
{
    struct registry *r = reg_make(MAX_NODES, 16, CHAIN_TTL);
    struct tnode a, b;

    tnode_make(&a, 1, DESC_RELAY, 3600000, 1);
    tnode_make(&b, 2, DESC_RELAY, 3600000, 1);
    /* b's link presenting a's descriptor */
    ck_assert_int_eq(registry_register(r, b.id.pk, a.raw, a.len, 0, WALL), OVL_EPERM);
    /* expired at registration */
    ck_assert_int_eq(registry_register(r, a.id.pk, a.raw, a.len, 0, WALL + 3600000), OVL_ETIMEDOUT);
    /* malformed, forged */
    ck_assert_int_eq(registry_register(r, a.id.pk, a.raw, a.len - 1, 0, WALL), OVL_EPROTO);
    a.raw[a.len - 1] ^= 1;
    ck_assert_int_eq(registry_register(r, a.id.pk, a.raw, a.len, 0, WALL), OVL_ECRYPTO);
    ck_assert_ptr_null(registry_lookup(r, a.id.pk));

    struct registry_stats st;
    registry_stats(r, &st);
    ck_assert_uint_eq(st.registered, 0);
    ck_assert_uint_eq(st.relays, 0);
    registry_free(r);
}
END_TEST

/* Without allow_private only public IP literals are registered. */
START_TEST(register_private)
{
    static const char *const refused[] = {"tcp://127.0.0.1:7000", "tcp://10.1.2.3:7000",
                                          "quic://[fe80::1]:7000", "tcp://relay.example:7000",
                                          "tcp://[::ffff:192.168.0.1]:7000"};
    struct registry_opts o = {
        .max_nodes = MAX_NODES, .max_chains = 16, .ttl_ms = TTL, .chain_ttl_ms = CHAIN_TTL};
    struct registry *r = NULL;
    struct registry_stats st;
    struct tnode a;

    ck_assert_int_eq(registry_new(&o, &r), 0);
    for (unsigned i = 0; i < ARRAY_LEN(refused); i++) {
        tnode_make_at(&a, 1, DESC_RELAY, 3600000, 1, refused[i]);
        ck_assert_int_eq(registry_register(r, a.id.pk, a.raw, a.len, 0, WALL), OVL_EUNSUPP);
    }
    ck_assert_ptr_null(registry_lookup(r, a.id.pk));
    ck_assert_uint_eq(registry_version(r), 0);
    tnode_make_at(&a, 1, DESC_RELAY, 3600000, 1, "tcp://198.51.100.7:7000");
    reg_add(r, &a, 0);
    tnode_make_at(&a, 2, DESC_ENDPOINT, 3600000, 1, "quic://[2001:db8::7]:443");
    reg_add(r, &a, 0);
    registry_stats(r, &st);
    ck_assert_uint_eq(st.relays, 1);
    ck_assert_uint_eq(st.endpoints, 1);
    /* the version moves with every registration and drop, not heartbeats */
    ck_assert_uint_eq(registry_version(r), 2);
    ck_assert_int_eq(registry_heartbeat(r, a.id.pk, 10), 0);
    ck_assert_uint_eq(registry_version(r), 2);
    ck_assert_uint_eq(registry_drop(r, a.id.pk, 10), 1);
    ck_assert_uint_eq(registry_version(r), 3);
    registry_free(r);
}
END_TEST

START_TEST(node_cap)
{
    struct registry *r = reg_make(3, 16, CHAIN_TTL);
    struct tnode t[4];

    for (unsigned i = 0; i < 4; i++)
        tnode_make(&t[i], 10 + i, DESC_RELAY, 3600000, 1);
    for (unsigned i = 0; i < 3; i++)
        reg_add(r, &t[i], 0);
    ck_assert_int_eq(registry_register(r, t[3].id.pk, t[3].raw, t[3].len, 0, WALL), OVL_ENOMEM);
    /* replacing an existing node is not a new node */
    tnode_make(&t[0], 10, DESC_RELAY, 3600000, 2);
    reg_add(r, &t[0], 10);
    ck_assert_uint_eq(registry_lookup(r, t[0].id.pk)->d.onion_pk[0], 2);
    /* room again once one is dropped */
    ck_assert_int_eq(registry_heartbeat(r, t[0].id.pk, 500), 0);
    ck_assert_int_eq(registry_heartbeat(r, t[1].id.pk, 500), 0);
    ck_assert_uint_eq(registry_expire(r, 1000, WALL), 1);
    reg_add(r, &t[3], 1000);
    registry_free(r);
}
END_TEST

/* A registry of n relays (seeds 100..), one endpoint-only requester (seed 1).
 */
static struct registry *relays_make(unsigned n, uint32_t max_chains, uint32_t chain_ttl,
                                    struct tnode *t, struct tnode *req)
{
    struct registry *r = reg_make(MAX_NODES, max_chains, chain_ttl);

    tnode_make(req, 1, DESC_ENDPOINT, 3600000, 1);
    reg_add(r, req, 0);
    for (unsigned i = 0; i < n; i++) {
        tnode_make(&t[i], 100 + i, DESC_RELAY, 3600000, 1);
        reg_add(r, &t[i], 0);
    }
    return r;
}

static bool in_chain(const struct reg_chain *c, const uint8_t pk[32])
{
    for (unsigned i = 0; i < c->length * (1u + c->backups); i++) {
        if (memcmp(c->nodes[i]->d.id_pk, pk, 32) == 0)
            return true;
    }
    return false;
}

static void check_chain(const struct reg_chain *c, const uint8_t *req, const uint8_t *excl)
{
    unsigned total = c->length * (1u + c->backups);

    for (unsigned i = 0; i < total; i++) {
        ck_assert(c->nodes[i]->d.flags & DESC_RELAY);
        ck_assert_int_ne(memcmp(c->nodes[i]->d.id_pk, req, 32), 0);
        if (excl)
            ck_assert_int_ne(memcmp(c->nodes[i]->d.id_pk, excl, 32), 0);
        for (unsigned j = 0; j < i; j++)
            ck_assert_ptr_ne(c->nodes[i], c->nodes[j]);
    }
}

/* 10 relays; the requester is relay 0 itself when req_is_relay, the
 * exclude is relay 1 when excl. */
static const struct {
    bool req_is_relay, excl;
    unsigned length, backups;
    int rc;
    unsigned eff_backups;
} chain_cases[] = {
    {false, false, 3, 0, 0, 0},
    {false, false, 3, 2, 0, 2},
    {false, false, 3, 4, 0, 2},
    {false, false, 5, 1, 0, 1},
    {false, false, 8, 0, 0, 0},
    {false, false, 8, 4, 0, 0},
    {false, false, 1, 4, 0, 4},
    {false, false, 2, 4, 0, 4},
    {false, false, 10, 0, OVL_EINVAL, 0},
    {true, true, 3, 1, 0, 1},
    {true, true, 3, 2, 0, 1},
    {true, true, 2, 4, 0, 3},
    {true, true, 8, 0, 0, 0},
    {true, false, 9, 0, OVL_EINVAL, 0},
    {true, true, 1, 4, 0, 4},
    {false, false, 0, 0, OVL_EINVAL, 0},
    {false, false, 1, 5, OVL_EINVAL, 0},
};

START_TEST(chain_shape)
{
    struct tnode t[10], req;
    struct registry *r = relays_make(10, 16, CHAIN_TTL, t, &req);
    const uint8_t *rq = chain_cases[_i].req_is_relay ? t[0].id.pk : req.id.pk;
    const uint8_t *ex = chain_cases[_i].excl ? t[1].id.pk : NULL;
    const struct reg_chain *c = (const void *)1;

    for (int round = 0; round < 20; round++) {
        int rc = registry_chain(r, rq, chain_cases[_i].length, chain_cases[_i].backups, ex,
                                (uint64_t)round * CHAIN_TTL, &c);
        ck_assert_int_eq(rc, chain_cases[_i].rc);
        if (rc != 0) {
            ck_assert_ptr_null(c);
            break;
        }
        ck_assert_uint_eq(c->length, chain_cases[_i].length);
        ck_assert_uint_eq(c->backups, chain_cases[_i].eff_backups);
        check_chain(c, rq, ex);
    }
    registry_free(r);
}
END_TEST

START_TEST(chain_not_enough)
{
    struct tnode t[3], req;
    struct registry *r = relays_make(3, 16, CHAIN_TTL, t, &req);
    const struct reg_chain *c;

    ck_assert_int_eq(registry_chain(r, req.id.pk, 3, 0, NULL, 0, &c), 0);
    ck_assert_int_eq(registry_chain(r, req.id.pk, 3, 0, t[0].id.pk, 0, &c), OVL_ENOENT);
    ck_assert_int_eq(registry_chain(r, t[0].id.pk, 3, 0, NULL, 0, &c), OVL_ENOENT);
    ck_assert_ptr_null(c);
    ck_assert_int_eq(registry_chain(r, t[0].id.pk, 2, 0, NULL, 0, &c), 0);
    registry_free(r);
}
END_TEST

START_TEST(chain_cache)
{
    struct tnode t[10], req;
    struct registry *r = relays_make(10, 16, CHAIN_TTL, t, &req);
    const struct reg_chain *c;
    struct registry_stats st;
    uint8_t ref[16], ref2[16];

    ck_assert_int_eq(registry_chain(r, req.id.pk, 3, 1, NULL, 100, &c), 0);
    memcpy(ref, c->ref, 16);
    ck_assert_uint_eq(c->created_ms, 100);
    ck_assert_uint_eq(c->expires_ms, 100 + CHAIN_TTL);
    ck_assert_int_eq(registry_chain(r, req.id.pk, 3, 1, NULL, 100 + CHAIN_TTL - 1, &c), 0);
    ck_assert_int_eq(memcmp(c->ref, ref, 16), 0);
    /* exclude of zero bytes is the same request as no exclude */
    uint8_t zero[32] = {0};
    ck_assert_int_eq(registry_chain(r, req.id.pk, 3, 1, zero, 200, &c), 0);
    ck_assert_int_eq(memcmp(c->ref, ref, 16), 0);
    /* any other parameter is another chain */
    ck_assert_int_eq(registry_chain(r, req.id.pk, 3, 2, NULL, 200, &c), 0);
    ck_assert_int_ne(memcmp(c->ref, ref, 16), 0);
    ck_assert_int_eq(registry_chain(r, t[5].id.pk, 3, 1, NULL, 200, &c), 0);
    ck_assert_int_ne(memcmp(c->ref, ref, 16), 0);
    /* re-registering a member keeps the chain */
    ck_assert_int_eq(registry_chain(r, req.id.pk, 3, 1, NULL, 300, &c), 0);
    const struct reg_node *member = c->nodes[0];
    for (unsigned i = 0; i < 10; i++) {
        if (registry_lookup(r, t[i].id.pk) == member) {
            tnode_make(&t[i], 100 + i, DESC_RELAY, 3600000, 9);
            reg_add(r, &t[i], 300);
        }
    }
    ck_assert_int_eq(registry_chain(r, req.id.pk, 3, 1, NULL, 300, &c), 0);
    ck_assert_int_eq(memcmp(c->ref, ref, 16), 0);
    ck_assert_uint_eq(c->nodes[0]->d.onion_pk[0], 9);
    /* after the TTL a fresh chain */
    ck_assert_int_eq(registry_chain(r, req.id.pk, 3, 1, NULL, 100 + CHAIN_TTL, &c), 0);
    memcpy(ref2, c->ref, 16);
    ck_assert_int_ne(memcmp(ref2, ref, 16), 0);
    ck_assert_uint_eq(c->created_ms, 100 + CHAIN_TTL);
    registry_stats(r, &st);
    ck_assert_uint_eq(st.chains, 3);
    ck_assert_uint_eq(st.chains_generated, 4);
    ck_assert_uint_eq(st.chains_cached, 4);
    ck_assert_uint_eq(st.chains_evicted, 1);
    registry_free(r);
}
END_TEST

START_TEST(chain_evicted_on_drop)
{
    struct tnode t[10], req;
    struct registry *r = relays_make(10, 16, 1000000, t, &req);
    const struct reg_chain *c;
    struct registry_stats st;
    uint8_t ref[16], gone[32];

    ck_assert_int_eq(registry_chain(r, req.id.pk, 2, 0, NULL, 0, &c), 0);
    memcpy(ref, c->ref, 16);
    memcpy(gone, c->nodes[1]->d.id_pk, 32);
    /* everyone but the second hop keeps heartbeating */
    ck_assert_int_eq(registry_heartbeat(r, req.id.pk, 900), 0);
    for (unsigned i = 0; i < 10; i++) {
        if (memcmp(t[i].id.pk, gone, 32) != 0)
            ck_assert_int_eq(registry_heartbeat(r, t[i].id.pk, 900), 0);
    }
    ck_assert_uint_eq(registry_expire(r, 1000, WALL), 1);
    registry_stats(r, &st);
    ck_assert_uint_eq(st.chains, 0);
    ck_assert_uint_eq(st.chains_evicted, 1);
    ck_assert_int_eq(registry_chain(r, req.id.pk, 2, 0, NULL, 1000, &c), 0);
    ck_assert_int_ne(memcmp(c->ref, ref, 16), 0);
    ck_assert(!in_chain(c, gone));

    /* a member that stops being a relay also spoils the chain */
    const struct reg_node *first = c->nodes[0]; /* c goes with the re-registration */
    for (unsigned i = 0; i < 10; i++) {
        if (registry_lookup(r, t[i].id.pk) == first) {
            tnode_make(&t[i], 100 + i, DESC_ENDPOINT, 3600000, 1);
            reg_add(r, &t[i], 1000);
        }
    }
    registry_stats(r, &st);
    ck_assert_uint_eq(st.chains, 0);
    registry_free(r);
}
END_TEST

/* Register t (seed 100 + i, a relay) again naming fam as its family. */
static void reg_family(struct registry *r, struct tnode *t, unsigned i, const struct tnode *fam,
                       uint64_t now)
{
    struct desc d;

    ck_assert_int_eq(desc_parse(&d, t->raw, t->len), 0);
    d.flags |= DESC_FAMILY;
    d.n_family = 1;
    memcpy(d.family[0], fam->id.pk, 32);
    d.onion_pk[0] ^= (uint8_t)(1 + i); /* a new descriptor */
    ck_assert_int_eq(desc_sign(&d, &t->id, t->raw, sizeof(t->raw), &t->len), 0);
    reg_add(r, t, now);
}

/* A relay that names a new family member spoils the cached chains it is
 * in (a chain may now hold two of one family); a chain drawn after both
 * name each other never holds the two. */
START_TEST(chain_evicted_on_family)
{
    struct tnode t[3], req;
    struct registry *r = relays_make(3, 16, 1000000, t, &req);
    const struct reg_chain *c;
    struct registry_stats st;

    ck_assert_int_eq(registry_chain(r, req.id.pk, 3, 0, NULL, 0, &c), 0);
    reg_family(r, &t[0], 0, &t[1], 10); /* one-sided: no family yet */
    registry_stats(r, &st);
    ck_assert_uint_eq(st.chains, 0);
    ck_assert_uint_eq(st.chains_evicted, 1);
    ck_assert_int_eq(registry_chain(r, req.id.pk, 3, 0, NULL, 20, &c), 0);
    reg_family(r, &t[0], 0, &t[1], 30); /* the same family again: the chain stays */
    registry_stats(r, &st);
    ck_assert_uint_eq(st.chains, 1);
    reg_family(r, &t[1], 1, &t[0], 40);
    registry_stats(r, &st);
    ck_assert_uint_eq(st.chains, 0);
    ck_assert_int_eq(registry_chain(r, req.id.pk, 3, 0, NULL, 50, &c), OVL_ENOENT);
    ck_assert_int_eq(registry_chain(r, req.id.pk, 2, 0, NULL, 50, &c), 0);
    ck_assert(in_chain(c, t[2].id.pk));
    registry_free(r);
}
END_TEST

static void count_relay(void *arg, const struct reg_node *n);

/* Re-sign t with its flags changed (a new descriptor) and register it. */
static void reg_flags(struct registry *r, struct tnode *t, uint8_t flags, uint64_t now)
{
    struct desc d;

    ck_assert_int_eq(desc_parse(&d, t->raw, t->len), 0);
    d.flags = flags;
    d.onion_pk[1] ^= 0x5a;
    ck_assert_int_eq(desc_sign(&d, &t->id, t->raw, sizeof(t->raw), &t->len), 0);
    reg_add(r, t, now);
}

static void count_listed(void *arg, const struct reg_node *n)
{
    unsigned *k = arg;

    ck_assert(desc_takes_chains(&n->d));
    (*k)++;
}

/* A dormant relay (its accounting spent) stays registered and counted,
 * but spoils the cached chains it is in, is in no list and no chain, and
 * takes chains again once its descriptor drops the flag. */
START_TEST(chain_dormant)
{
    struct tnode t[3], req;
    struct registry *r = relays_make(3, 16, 1000000, t, &req);
    const struct reg_chain *c;
    struct registry_stats st;
    unsigned all = 0, listed = 0;

    ck_assert_int_eq(registry_chain(r, req.id.pk, 3, 0, NULL, 0, &c), 0);
    reg_flags(r, &t[0], DESC_RELAY | DESC_DORMANT, 10);
    registry_stats(r, &st);
    ck_assert_uint_eq(st.relays, 3);
    ck_assert_uint_eq(st.dormant, 1);
    ck_assert_uint_eq(st.chains, 0);
    registry_each_relay(r, count_relay, &all);
    registry_each_listed(r, count_listed, &listed);
    ck_assert_uint_eq(all, 3);
    ck_assert_uint_eq(listed, 2);
    ck_assert_int_eq(registry_chain(r, req.id.pk, 3, 0, NULL, 20, &c), OVL_ENOENT);
    ck_assert_int_eq(registry_chain(r, req.id.pk, 2, 0, NULL, 20, &c), 0);
    ck_assert(!in_chain(c, t[0].id.pk));
    /* Excluding it changes nothing: the same cached chain. */
    {
        const struct reg_chain *c2;

        ck_assert_int_eq(registry_chain(r, req.id.pk, 2, 0, t[0].id.pk, 20, &c2), 0);
        ck_assert_ptr_eq(c2, c);
    }
    reg_flags(r, &t[0], DESC_RELAY, 30);
    registry_stats(r, &st);
    ck_assert_uint_eq(st.dormant, 0);
    ck_assert_int_eq(registry_chain(r, req.id.pk, 3, 0, NULL, 40, &c), 0);
    ck_assert(in_chain(c, t[0].id.pk));
    registry_free(r);
}
END_TEST

/* A node whose link closed is dropped at once, with the chains naming it. */
START_TEST(drop_now)
{
    struct tnode t[10], req;
    struct registry *r = relays_make(10, 16, 1000000, t, &req);
    const struct reg_chain *c;
    struct registry_stats st;
    uint8_t gone[32];

    ck_assert_int_eq(registry_chain(r, req.id.pk, 3, 0, NULL, 0, &c), 0);
    memcpy(gone, c->nodes[2]->d.id_pk, 32);
    ck_assert_uint_eq(registry_drop(r, gone, 10), 1);
    ck_assert_ptr_null(registry_lookup(r, gone));
    ck_assert_uint_eq(registry_drop(r, gone, 10), 0);
    ck_assert_uint_eq(registry_drop(NULL, gone, 10), 0);
    registry_stats(r, &st);
    ck_assert_uint_eq(st.chains, 0);
    ck_assert_uint_eq(st.chains_evicted, 1);
    ck_assert_uint_eq(st.dropped, 1);
    ck_assert_uint_eq(st.relays, 9);
    ck_assert_int_eq(registry_chain(r, req.id.pk, 3, 0, NULL, 10, &c), 0);
    ck_assert(!in_chain(c, gone));
    registry_free(r);
}
END_TEST

START_TEST(chain_cap)
{
    struct tnode t[10], req;
    struct registry *r = relays_make(10, 2, CHAIN_TTL, t, &req);
    const struct reg_chain *c;
    struct registry_stats st;
    uint8_t ref[3][16];

    for (unsigned i = 0; i < 3; i++) {
        ck_assert_int_eq(registry_chain(r, req.id.pk, 1 + i, 0, NULL, i, &c), 0);
        memcpy(ref[i], c->ref, 16);
    }
    registry_stats(r, &st);
    ck_assert_uint_eq(st.chains, 2);
    ck_assert_uint_eq(st.chains_evicted, 1);
    /* the oldest (length 1) went; length 3 is still cached */
    ck_assert_int_eq(registry_chain(r, req.id.pk, 3, 0, NULL, 10, &c), 0);
    ck_assert_int_eq(memcmp(c->ref, ref[2], 16), 0);
    ck_assert_int_eq(registry_chain(r, req.id.pk, 1, 0, NULL, 10, &c), 0);
    ck_assert_int_ne(memcmp(c->ref, ref[0], 16), 0);
    registry_stats(r, &st);
    ck_assert_uint_eq(st.chains, 2);
    registry_free(r);
}
END_TEST

/* An exclude naming no registered relay (a random key, the requester, an
 * endpoint) is the same request as none: no new chain for each. */
START_TEST(chain_exclude_unknown)
{
    struct tnode t[10], req;
    struct registry *r = relays_make(10, 64, CHAIN_TTL, t, &req);
    const struct reg_chain *c;
    struct registry_stats st;
    uint8_t ref[16], junk[32];

    ck_assert_int_eq(registry_chain(r, req.id.pk, 2, 0, NULL, 0, &c), 0);
    memcpy(ref, c->ref, 16);
    for (unsigned i = 0; i < 20; i++) {
        ovl_random(junk, sizeof(junk));
        ck_assert_int_eq(registry_chain(r, req.id.pk, 2, 0, junk, 1, &c), 0);
        ck_assert_int_eq(memcmp(c->ref, ref, 16), 0);
    }
    ck_assert_int_eq(registry_chain(r, req.id.pk, 2, 0, req.id.pk, 1, &c), 0);
    ck_assert_int_eq(memcmp(c->ref, ref, 16), 0);
    /* a relay's exclude of itself: it is never drawn anyway */
    ck_assert_int_eq(registry_chain(r, t[0].id.pk, 2, 0, NULL, 1, &c), 0);
    memcpy(ref, c->ref, 16);
    ck_assert_int_eq(registry_chain(r, t[0].id.pk, 2, 0, t[0].id.pk, 1, &c), 0);
    ck_assert_int_eq(memcmp(c->ref, ref, 16), 0);
    registry_stats(r, &st);
    ck_assert_uint_eq(st.chains, 2);
    ck_assert_uint_eq(st.chains_generated, 2);
    registry_free(r);
}
END_TEST

/* One requester cycling excludes over every relay holds at most
 * REGISTRY_CHAINS_PER_REQUESTER chains, its oldest replaced, and pushes
 * out nobody else's, though the table's cap would allow it to. */
START_TEST(chain_per_requester)
{
    struct tnode t[10], req, other;
    struct registry *r = relays_make(10, 6, CHAIN_TTL, t, &req);
    const struct reg_chain *c;
    struct registry_stats st;
    uint8_t ref_other[16], refs[10][16];

    tnode_make(&other, 2, DESC_ENDPOINT, 3600000, 1);
    reg_add(r, &other, 0);
    ck_assert_int_eq(registry_chain(r, other.id.pk, 3, 0, NULL, 0, &c), 0);
    memcpy(ref_other, c->ref, 16);
    for (unsigned round = 0; round < 2; round++) {
        for (unsigned i = 0; i < 10; i++) {
            ck_assert_int_eq(registry_chain(r, req.id.pk, 3, 0, t[i].id.pk, 1 + i, &c), 0);
            check_chain(c, req.id.pk, t[i].id.pk);
            memcpy(refs[i], c->ref, 16);
            registry_stats(r, &st);
            ck_assert_uint_le(st.chains, 1 + REGISTRY_CHAINS_PER_REQUESTER);
        }
    }
    /* the last ones are still cached, the first was replaced */
    for (unsigned i = 10 - REGISTRY_CHAINS_PER_REQUESTER; i < 10; i++) {
        ck_assert_int_eq(registry_chain(r, req.id.pk, 3, 0, t[i].id.pk, 20, &c), 0);
        ck_assert_int_eq(memcmp(c->ref, refs[i], 16), 0);
    }
    ck_assert_int_eq(registry_chain(r, req.id.pk, 3, 0, t[0].id.pk, 20, &c), 0);
    ck_assert_int_ne(memcmp(c->ref, refs[0], 16), 0);
    /* the other requester's chain survived all of it */
    ck_assert_int_eq(registry_chain(r, other.id.pk, 3, 0, NULL, 21, &c), 0);
    ck_assert_int_eq(memcmp(c->ref, ref_other, 16), 0);
    registry_stats(r, &st);
    ck_assert_uint_eq(st.chains, 1 + REGISTRY_CHAINS_PER_REQUESTER);
    registry_free(r);
}
END_TEST

/* At max_chains a requester that holds a chain replaces its own; one that
 * holds none evicts the table's oldest, once; a request that draws no
 * chain evicts nothing. */
START_TEST(chain_cap_fair)
{
    struct tnode t[5], req, o[3];
    struct registry *r = relays_make(5, 3, CHAIN_TTL, t, &req);
    const struct reg_chain *c;
    struct registry_stats st;
    uint8_t ref[3][16];

    for (unsigned i = 0; i < 3; i++) {
        tnode_make(&o[i], 10 + i, DESC_ENDPOINT, 3600000, 1);
        reg_add(r, &o[i], 0);
        ck_assert_int_eq(registry_chain(r, o[i].id.pk, 2, 0, NULL, i, &c), 0);
        memcpy(ref[i], c->ref, 16);
    }
    /* more relays than exist: no chain, and nobody's is evicted for it */
    ck_assert_int_eq(registry_chain(r, req.id.pk, 8, 0, NULL, 10, &c), OVL_ENOENT);
    registry_stats(r, &st);
    ck_assert_uint_eq(st.chains, 3);
    ck_assert_uint_eq(st.chains_evicted, 0);
    /* the first chain of req takes the oldest's place (o[0]'s) ... */
    ck_assert_int_eq(registry_chain(r, req.id.pk, 2, 0, NULL, 11, &c), 0);
    /* ... and every further one replaces its own */
    for (unsigned i = 0; i < 5; i++)
        ck_assert_int_eq(registry_chain(r, req.id.pk, 2, 0, t[i].id.pk, 12 + i, &c), 0);
    for (unsigned i = 1; i < 3; i++) {
        ck_assert_int_eq(registry_chain(r, o[i].id.pk, 2, 0, NULL, 20, &c), 0);
        ck_assert_int_eq(memcmp(c->ref, ref[i], 16), 0);
    }
    registry_stats(r, &st);
    ck_assert_uint_eq(st.chains, 3);
    ck_assert_uint_eq(st.chains_evicted, 6);
    registry_free(r);
}
END_TEST

/* Loose uniformity: 2000 chains of 3 from 10 relays, 600 expected each. */
START_TEST(chain_uniform)
{
    struct tnode t[10], req;
    struct registry *r = relays_make(10, 16, 0, t, &req); /* TTL 0: no caching */
    const struct reg_chain *c;
    unsigned hits[10] = {0}, pos_hits[3][10] = {{0}};

    for (unsigned k = 0; k < 2000; k++) {
        ck_assert_int_eq(registry_chain(r, req.id.pk, 3, 0, NULL, k, &c), 0);
        for (unsigned p = 0; p < 3; p++) {
            for (unsigned i = 0; i < 10; i++) {
                if (registry_lookup(r, t[i].id.pk) == c->nodes[p]) {
                    hits[i]++;
                    pos_hits[p][i]++;
                }
            }
        }
    }
    for (unsigned i = 0; i < 10; i++) {
        ck_assert_msg(hits[i] >= 450 && hits[i] <= 750, "relay %u: %u", i, hits[i]);
        for (unsigned p = 0; p < 3; p++) /* 200 expected per position */
            ck_assert_msg(pos_hits[p][i] >= 120 && pos_hits[p][i] <= 280, "relay %u pos %u: %u", i,
                          p, pos_hits[p][i]);
    }
    registry_free(r);
}
END_TEST

static void count_relay(void *arg, const struct reg_node *n)
{
    unsigned *k = arg;

    ck_assert(n->d.flags & DESC_RELAY);
    (*k)++;
}

START_TEST(each_relay_and_args)
{
    struct tnode t[4], req;
    struct registry *r = relays_make(4, 16, CHAIN_TTL, t, &req);
    struct registry_opts bad = {.max_nodes = 0, .max_chains = 1, .ttl_ms = 1, .chain_ttl_ms = 1};
    struct registry *r2 = (void *)1;
    unsigned k = 0;

    registry_each_relay(r, count_relay, &k);
    ck_assert_uint_eq(k, 4);
    ck_assert_int_eq(registry_new(&bad, &r2), OVL_EINVAL);
    ck_assert_ptr_null(r2);
    registry_free(r);
    registry_free(NULL);
}
END_TEST

/* A set: count chains of one shape, each valid on its own (distinct within
 * itself, never the requester or the exclude), cached as one under its
 * count; relays may repeat across chains. */
START_TEST(chain_set)
{
    struct tnode t[10], req;
    struct registry *r = relays_make(10, 16, CHAIN_TTL, t, &req);
    const struct reg_chain *c, *c1;
    struct registry_stats st;
    uint8_t ref[16];
    bool across = false;

    ck_assert_int_eq(registry_chains(r, req.id.pk, 3, 1, t[1].id.pk, 8, 0, 100, &c), 0);
    ck_assert_uint_eq(c->count, 8);
    ck_assert_uint_eq(c->length, 3);
    ck_assert_uint_eq(c->backups, 1);
    for (unsigned k = 0; k < 8; k++) {
        struct reg_chain one = *c;

        one.nodes = c->nodes + k * 6;
        check_chain(&one, req.id.pk, t[1].id.pk);
        for (unsigned i = 0; k && i < 6; i++)
            across |= in_chain(&one, c->nodes[i]->d.id_pk);
    }
    ck_assert(across); /* 8 chains of 6 among 9 relays must share some */
    memcpy(ref, c->ref, 16);
    /* the same request is the same set; another count another entry */
    ck_assert_int_eq(registry_chains(r, req.id.pk, 3, 1, t[1].id.pk, 8, 0, 200, &c), 0);
    ck_assert_int_eq(memcmp(c->ref, ref, 16), 0);
    ck_assert_int_eq(registry_chains(r, req.id.pk, 3, 1, t[1].id.pk, 2, 0, 200, &c1), 0);
    ck_assert_int_ne(memcmp(c1->ref, ref, 16), 0);
    ck_assert_uint_eq(c1->count, 2);
    /* registry_chain is the set of one */
    ck_assert_int_eq(registry_chain(r, req.id.pk, 3, 1, t[1].id.pk, 200, &c1), 0);
    ck_assert_uint_eq(c1->count, 1);
    registry_stats(r, &st);
    ck_assert_uint_eq(st.chains, 3);
    ck_assert_uint_eq(st.chains_generated, 3);
    /* backups as the poorest draw allows: 4 relays, length 2, 1 backup */
    registry_free(r);
    r = relays_make(4, 16, CHAIN_TTL, t, &req);
    ck_assert_int_eq(registry_chains(r, req.id.pk, 2, 4, NULL, 3, 0, 0, &c), 0);
    ck_assert_uint_eq(c->backups, 1);
    ck_assert_int_eq(registry_chains(r, req.id.pk, 5, 0, NULL, 3, 0, 0, &c), OVL_ENOENT);
    /* arguments */
    ck_assert_int_eq(registry_chains(r, req.id.pk, 2, 0, NULL, 0, 0, 0, &c), OVL_EINVAL);
    ck_assert_ptr_null(c);
    ck_assert_int_eq(registry_chains(r, req.id.pk, 2, 0, NULL, 9, 0, 0, &c), OVL_EINVAL);
    ck_assert_int_eq(registry_chains(r, req.id.pk, 2, 0, NULL, 1, 4, 0, &c), OVL_EINVAL);
    registry_free(r);
}
END_TEST

/* A dropped member drops the whole set. */
START_TEST(chain_set_drop)
{
    struct tnode t[10], req;
    struct registry *r = relays_make(10, 16, CHAIN_TTL, t, &req);
    const struct reg_chain *c;
    uint8_t ref[16], pk[32];

    ck_assert_int_eq(registry_chains(r, req.id.pk, 2, 0, NULL, 4, 0, 0, &c), 0);
    memcpy(ref, c->ref, 16);
    memcpy(pk, c->nodes[7]->d.id_pk, 32); /* the last chain's exit */
    ck_assert_uint_eq(registry_drop(r, pk, 10), 1);
    ck_assert_int_eq(registry_chains(r, req.id.pk, 2, 0, NULL, 4, REG_NO_DRAW, 20, &c), OVL_EAGAIN);
    ck_assert_int_eq(registry_chains(r, req.id.pk, 2, 0, NULL, 4, 0, 20, &c), 0);
    ck_assert_int_ne(memcmp(c->ref, ref, 16), 0);
    for (unsigned i = 0; i < 8; i++)
        ck_assert_int_ne(memcmp(c->nodes[i]->d.id_pk, pk, 32), 0);
    registry_free(r);
}
END_TEST

/* FRESH draws anew only once the cached set is chain_refresh_ms old;
 * REG_NO_DRAW never draws. */
START_TEST(chain_fresh)
{
    struct registry_opts o = {.max_nodes = MAX_NODES,
                              .max_chains = 16,
                              .ttl_ms = 1000000,
                              .chain_ttl_ms = CHAIN_TTL,
                              .allow_private = true,
                              .chain_refresh_ms = 1000};
    struct registry *r = NULL;
    struct registry_stats st;
    const struct reg_chain *c;
    struct tnode t[6], req;
    uint8_t ref[16];

    ck_assert_int_eq(registry_new(&o, &r), 0);
    tnode_make(&req, 1, DESC_ENDPOINT, 3600000, 1);
    reg_add(r, &req, 0);
    for (unsigned i = 0; i < 6; i++) {
        tnode_make(&t[i], 100 + i, DESC_RELAY, 3600000, 1);
        reg_add(r, &t[i], 0);
    }
    /* nothing cached: REG_NO_DRAW draws nothing */
    ck_assert_int_eq(registry_chains(r, req.id.pk, 2, 0, NULL, 3, REG_NO_DRAW, 100, &c),
                     OVL_EAGAIN);
    ck_assert_ptr_null(c);
    ck_assert_int_eq(registry_chains(r, req.id.pk, 2, 0, NULL, 3, REG_FRESH, 100, &c), 0);
    memcpy(ref, c->ref, 16);
    /* too young: the cached set, with or without REG_NO_DRAW */
    ck_assert_int_eq(registry_chains(r, req.id.pk, 2, 0, NULL, 3, REG_FRESH, 1099, &c), 0);
    ck_assert_int_eq(memcmp(c->ref, ref, 16), 0);
    ck_assert_int_eq(
        registry_chains(r, req.id.pk, 2, 0, NULL, 3, REG_FRESH | REG_NO_DRAW, 1099, &c), 0);
    ck_assert_int_eq(memcmp(c->ref, ref, 16), 0);
    /* old enough: REG_NO_DRAW says a draw is due, without FRESH the cached set stays */
    ck_assert_int_eq(
        registry_chains(r, req.id.pk, 2, 0, NULL, 3, REG_FRESH | REG_NO_DRAW, 1100, &c),
        OVL_EAGAIN);
    ck_assert_int_eq(registry_chains(r, req.id.pk, 2, 0, NULL, 3, REG_NO_DRAW, 1100, &c), 0);
    ck_assert_int_eq(memcmp(c->ref, ref, 16), 0);
    ck_assert_int_eq(registry_chains(r, req.id.pk, 2, 0, NULL, 3, 0, 1100, &c), 0);
    ck_assert_int_eq(memcmp(c->ref, ref, 16), 0);
    /* FRESH: a new set in the same slot, counted refreshed, not evicted */
    ck_assert_int_eq(registry_chains(r, req.id.pk, 2, 0, NULL, 3, REG_FRESH, 1100, &c), 0);
    ck_assert_int_ne(memcmp(c->ref, ref, 16), 0);
    ck_assert_uint_eq(c->created_ms, 1100);
    registry_stats(r, &st);
    ck_assert_uint_eq(st.chains, 1);
    ck_assert_uint_eq(st.chains_generated, 2);
    ck_assert_uint_eq(st.chains_refreshed, 1);
    ck_assert_uint_eq(st.chains_evicted, 0);
    registry_free(r);
    /* chain_refresh 0: every FRESH draws */
    o.chain_refresh_ms = 0;
    ck_assert_int_eq(registry_new(&o, &r), 0);
    reg_add(r, &req, 0);
    for (unsigned i = 0; i < 6; i++)
        reg_add(r, &t[i], 0);
    ck_assert_int_eq(registry_chains(r, req.id.pk, 2, 0, NULL, 1, REG_FRESH, 5, &c), 0);
    memcpy(ref, c->ref, 16);
    ck_assert_int_eq(registry_chains(r, req.id.pk, 2, 0, NULL, 1, REG_FRESH, 5, &c), 0);
    ck_assert_int_ne(memcmp(c->ref, ref, 16), 0);
    registry_free(r);
}
END_TEST

/* Nodes count against the block they were tagged with until dropped. */
START_TEST(nodes_per_block)
{
    struct registry *r = reg_make(MAX_NODES, 16, CHAIN_TTL);
    struct tnode t[3];

    for (unsigned i = 0; i < 3; i++) {
        tnode_make(&t[i], 10 + i, DESC_RELAY, 3600000, 1);
        reg_add(r, &t[i], 0);
    }
    ck_assert_int_eq(registry_set_block(r, t[0].id.pk, 7), 0);
    ck_assert_int_eq(registry_set_block(r, t[1].id.pk, 7), 0);
    ck_assert_int_eq(registry_set_block(r, t[1].id.pk, 7), 0); /* again: no change */
    ck_assert_int_eq(registry_set_block(r, t[2].id.pk, 8), 0);
    ck_assert_uint_eq(registry_block_nodes(r, 7), 2);
    ck_assert_uint_eq(registry_block_nodes(r, 8), 1);
    ck_assert_uint_eq(registry_block_nodes(r, 9), 0);
    ck_assert_uint_eq(registry_block_nodes(r, 0), 0);
    /* re-registering keeps the tag; dropping frees it */
    reg_add(r, &t[0], 100);
    ck_assert_uint_eq(registry_block_nodes(r, 7), 2);
    ck_assert_uint_eq(registry_drop(r, t[0].id.pk, 100), 1);
    ck_assert_uint_eq(registry_block_nodes(r, 7), 1);
    ck_assert_uint_eq(registry_expire(r, 100 + TTL, WALL), 2);
    ck_assert_uint_eq(registry_block_nodes(r, 7), 0);
    ck_assert_uint_eq(registry_block_nodes(r, 8), 0);
    /* moved to block 0: counts nowhere */
    reg_add(r, &t[0], 5000);
    ck_assert_int_eq(registry_set_block(r, t[0].id.pk, 7), 0);
    ck_assert_int_eq(registry_set_block(r, t[0].id.pk, 0), 0);
    ck_assert_uint_eq(registry_block_nodes(r, 7), 0);
    ck_assert_int_eq(registry_set_block(r, t[1].id.pk, 7), OVL_ENOENT);
    registry_free(r); /* frees the block table with the nodes */
}
END_TEST

/* Buckets per block: a burst, then one token per 1000 / rate ms; blocks
 * apart; block 0 and rate 0 unlimited; a full table of live blocks
 * refuses a new one until they refill. */
START_TEST(block_buckets)
{
    struct dblocks *t = NULL;

    ck_assert_int_eq(dblocks_new(0, &t), OVL_EINVAL);
    ck_assert_int_eq(dblocks_new(DBLOCK_MAX + 1, &t), OVL_EINVAL);
    ck_assert_int_eq(dblocks_new(2, &t), 0);
    for (unsigned i = 0; i < 3; i++)
        ck_assert(dblocks_take(t, 1, DBLOCK_CHAINS, 2, 3, 1000));
    ck_assert(!dblocks_take(t, 1, DBLOCK_CHAINS, 2, 3, 1000));
    ck_assert(!dblocks_take(t, 1, DBLOCK_CHAINS, 2, 3, 1499));
    ck_assert(dblocks_take(t, 1, DBLOCK_CHAINS, 2, 3, 1500)); /* 500 ms a token */
    ck_assert(!dblocks_take(t, 1, DBLOCK_CHAINS, 2, 3, 1500));
    /* the other bucket of the block, and another block, are their own */
    ck_assert(dblocks_take(t, 1, DBLOCK_REQUESTS, 2, 1, 1500));
    ck_assert(!dblocks_take(t, 1, DBLOCK_REQUESTS, 2, 1, 1500));
    ck_assert(dblocks_take(t, 2, DBLOCK_CHAINS, 2, 3, 1500));
    ck_assert_uint_eq(dblocks_count(t), 2);
    for (unsigned i = 0; i < 10; i++) {
        ck_assert(dblocks_take(t, 0, DBLOCK_CHAINS, 2, 1, 1500));
        ck_assert(dblocks_take(t, 1, DBLOCK_CHAINS, 0, 1, 1500));
    }
    /* full of live blocks: a third is refused */
    ck_assert(!dblocks_take(t, 3, DBLOCK_CHAINS, 2, 3, 1500));
    ck_assert_uint_eq(dblocks_count(t), 2);
    /* once both are full again they are forgotten and 3 gets a bucket */
    ck_assert(dblocks_take(t, 3, DBLOCK_CHAINS, 2, 3, 4000));
    ck_assert_uint_eq(dblocks_count(t), 1);
    dblocks_free(t);
    dblocks_free(NULL);
}
END_TEST

static Suite *registry_suite(void)
{
    Suite *s = suite_create("registry");
    TCase *tc = tcase_create("nodes");
    tcase_add_test(tc, register_heartbeat_expire);
    tcase_add_test(tc, register_refused);
    tcase_add_test(tc, register_private);
    tcase_add_test(tc, node_cap);
    tcase_add_test(tc, each_relay_and_args);
    suite_add_tcase(s, tc);

    tc = tcase_create("chains");
    tcase_add_loop_test(tc, chain_shape, 0, (int)ARRAY_LEN(chain_cases));
    tcase_add_test(tc, chain_not_enough);
    tcase_add_test(tc, chain_cache);
    tcase_add_test(tc, chain_evicted_on_drop);
    tcase_add_test(tc, chain_evicted_on_family);
    tcase_add_test(tc, chain_cap);
    tcase_add_test(tc, chain_exclude_unknown);
    tcase_add_test(tc, chain_per_requester);
    tcase_add_test(tc, chain_cap_fair);
    tcase_add_test(tc, chain_dormant);
    tcase_add_test(tc, drop_now);
    tcase_add_test(tc, chain_uniform);
    tcase_add_test(tc, chain_set);
    tcase_add_test(tc, chain_set_drop);
    tcase_add_test(tc, chain_fresh);
    suite_add_tcase(s, tc);

    tc = tcase_create("blocks");
    tcase_add_test(tc, nodes_per_block);
    tcase_add_test(tc, block_buckets);
    suite_add_tcase(s, tc);
    return s;
}

OVL_CHECK_MAIN(registry_suite)
