/* test_selection.c - relay selection, statistically (suite "anonymity").
 *
 * The bootstrap's generator draws 10,000 chains; how often each relay is
 * picked must pass a chi-square test of uniformity (p > 0.01), the subnet
 * rule must never be broken while it is on, and must visibly matter: with
 * it off, chains do put two relays of one /16 together. The client's local
 * choice runs the same select_relays(), tested the same way.
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dir/registry.h"
#include "dir/select.h"
#include "check_main.h"
#include "stats.h"

#define WALL    1700000000000ull
#define RELAYS  30
#define CHAINS  10000
#define LENGTH  3
#define BACKUPS 2

struct pool {
    struct registry *r;
    struct desc d[RELAYS];
};

/* Relay i at address ip(i); signed and registered. */
static void pool_make(struct pool *p, bool distinct, void (*ip)(unsigned i, char *out, size_t n))
{
    struct registry_opts o = {RELAYS + 1, CHAINS + 1, 3600000, 3600000, distinct};

    memset(p, 0, sizeof(*p));
    ck_assert_int_eq(registry_new(&o, &p->r), 0);
    for (unsigned i = 0; i < RELAYS; i++) {
        struct ovl_identity id;
        uint8_t raw[DESC_MAX_LEN], seed[OVL_ED25519_SEED] = {(uint8_t)i, 0x5e, 0x1e};
        char host[64];
        size_t len;
        struct desc *d = &p->d[i];

        ck_assert_int_eq(ovl_identity_from_seed(&id, seed), 0);
        d->flags = DESC_RELAY;
        d->suites = OVL_AEAD_ALL;
        d->n_uris = 1;
        d->published_ms = WALL;
        d->expires_ms = WALL + 3600000;
        memcpy(d->id_pk, id.pk, OVL_ED25519_PK);
        memset(d->onion_pk, 1, OVL_X25519_LEN);
        ip(i, host, sizeof(host));
        snprintf(d->uris[0], sizeof(d->uris[0]), "tcp://%s:7000", host);
        ck_assert_int_eq(desc_sign(d, &id, raw, sizeof(raw), &len), 0);
        ck_assert_int_eq(registry_register(p->r, id.pk, raw, len, 0, WALL), 0);
        ovl_identity_wipe(&id);
    }
}

static void ip_distinct(unsigned i, char *out, size_t n)
{
    snprintf(out, n, "10.%u.0.1", i); /* 30 different /16s */
}

static void ip_grouped(unsigned i, char *out, size_t n)
{
    snprintf(out, n, "10.%u.7.%u", i / 3, i); /* 10 /16s of 3 relays */
}

static void ip6_grouped(unsigned i, char *out, size_t n)
{
    snprintf(out, n, "[2001:%x::%x]", i / 3, i + 1); /* 10 /32s of 3 relays */
}

static unsigned index_of(const struct pool *p, const struct desc *d)
{
    for (unsigned i = 0; i < RELAYS; i++)
        if (memcmp(p->d[i].id_pk, d->id_pk, OVL_ED25519_PK) == 0)
            return i;
    ck_abort_msg("a chain names a relay not in the pool");
    return 0;
}

/* Draw CHAINS chains (each for another requester); count picks per relay
 * and chains that put two relays of one subnet together. Returns the
 * chi-square p-value of the picks against uniform. */
static double draw_once(struct pool *p, unsigned *clashes)
{
    uint64_t counts[RELAYS] = {0}, picks = 0;
    double chi2 = 0;

    *clashes = 0;
    for (unsigned c = 0; c < CHAINS; c++) {
        uint8_t req[OVL_ED25519_PK];
        const struct reg_chain *ch;
        unsigned n;

        ovl_random(req, sizeof(req));
        ck_assert_int_eq(registry_chain(p->r, req, LENGTH, BACKUPS, NULL, 0, &ch), 0);
        n = ch->length * (1 + ch->backups);
        for (unsigned i = 0; i < n; i++) {
            counts[index_of(p, &ch->nodes[i]->d)]++;
            picks++;
            for (unsigned j = 0; j < i; j++) {
                ck_assert_int_ne(memcmp(ch->nodes[i]->d.id_pk, ch->nodes[j]->d.id_pk, 32), 0);
                *clashes += select_same_subnet(&ch->nodes[i]->d, &ch->nodes[j]->d);
            }
        }
    }
    for (unsigned i = 0; i < RELAYS; i++) {
        double e = (double)picks / RELAYS, dlt = (double)counts[i] - e;

        chi2 += dlt * dlt / e;
    }
    return chi2_p(chi2, RELAYS - 1);
}

/* A fair draw fails p > 0.01 one time in a hundred: a second, independent
 * draw decides then (both failing by chance: one in ten thousand). */
static double draw(struct pool *p, unsigned *clashes)
{
    unsigned more = 0;
    double pv = draw_once(p, clashes);

    if (pv <= 0.01) {
        printf("p = %.4f: drawing again\n", pv);
        pv = draw_once(p, &more);
        *clashes += more;
    }
    return pv;
}

START_TEST(test_uniform_distinct_subnets)
{
    struct pool p;
    unsigned clashes;
    double pv;

    pool_make(&p, true, ip_distinct);
    pv = draw(&p, &clashes);
    printf("uniform, 30 subnets: p = %.3f\n", pv);
    ck_assert_msg(pv > 0.01, "relay picks are not uniform: p = %g", pv);
    ck_assert_uint_eq(clashes, 0);
    registry_free(p.r);
}
END_TEST

/* 10 subnets of 3: a 9-relay chain takes one relay from 9 of them, never
 * two from one; each relay still equally likely. IPv4 and IPv6 alike. */
START_TEST(test_subnet_rule)
{
    void (*ips[])(unsigned, char *, size_t) = {ip_grouped, ip6_grouped};
    struct pool p;
    unsigned clashes;
    double pv;

    pool_make(&p, true, ips[_i]);
    pv = draw(&p, &clashes);
    printf("subnet rule on (%s): p = %.3f, clashes %u\n", _i ? "IPv6 /32" : "IPv4 /16", pv,
           clashes);
    ck_assert_uint_eq(clashes, 0);
    ck_assert_msg(pv > 0.01, "picks under the subnet rule are not uniform: p = %g", pv);
    registry_free(p.r);
}
END_TEST

/* The same pool with the rule off: chains do pair relays of one subnet. */
START_TEST(test_subnet_rule_matters)
{
    struct pool p;
    unsigned clashes;

    pool_make(&p, false, ip_grouped);
    (void)draw(&p, &clashes);
    printf("subnet rule off: %u pairs from one /16\n", clashes);
    ck_assert_uint_gt(clashes, CHAINS / 10);
    registry_free(p.r);
}
END_TEST

/* The local path: select_relays over plain descriptors, same rule. */
START_TEST(test_select_relays_local)
{
    struct pool p;
    const struct desc *cand[RELAYS];
    uint64_t counts[RELAYS] = {0};
    double chi2 = 0;

    pool_make(&p, true, ip_grouped);
    for (unsigned c = 0; c < CHAINS; c++) {
        for (unsigned i = 0; i < RELAYS; i++)
            cand[i] = &p.d[i];
        ck_assert_uint_eq(select_relays(cand, RELAYS, LENGTH, true), LENGTH);
        for (unsigned i = 0; i < LENGTH; i++) {
            counts[index_of(&p, cand[i])]++;
            for (unsigned j = 0; j < i; j++)
                ck_assert(!select_same_subnet(cand[i], cand[j]));
        }
    }
    for (unsigned i = 0; i < RELAYS; i++) {
        double e = (double)CHAINS * LENGTH / RELAYS, dlt = (double)counts[i] - e;

        chi2 += dlt * dlt / e;
    }
    ck_assert_msg(chi2_p(chi2, RELAYS - 1) > 0.01, "local picks not uniform");
    /* Eleven positions cannot come from ten subnets. */
    for (unsigned i = 0; i < RELAYS; i++)
        cand[i] = &p.d[i];
    ck_assert_uint_eq(select_relays(cand, RELAYS, 11, true), 10);
    registry_free(p.r);
}
END_TEST

static Suite *selection_suite(void)
{
    Suite *s = suite_create("selection");
    TCase *tc = tcase_create("selection");

    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_uniform_distinct_subnets);
    tcase_add_loop_test(tc, test_subnet_rule, 0, 2);
    tcase_add_test(tc, test_subnet_rule_matters);
    tcase_add_test(tc, test_select_relays_local);
    suite_add_tcase(s, tc);
    return s;
}

OVL_CHECK_MAIN(selection_suite)
