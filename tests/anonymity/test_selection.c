/* test_selection.c - relay selection, statistically (suite "anonymity").
 *
 * The bootstrap's generator draws 10,000 chains; how often each relay is
 * picked must pass a chi-square test of uniformity (p > 0.01), the subnet
 * rule must never be broken while it is on, and must visibly matter: with
 * it off, chains do put two relays of one /16 together. The client's local
 * choice runs the same select_relays(), tested the same way.
 *
 * With weighting = capacity, a pool of 8 relays (one advertising nothing,
 * one lying far above the cap) is small enough to enumerate every ordered
 * draw without replacement: the exact chance of each relay at each
 * position, from the capped weights, is what 10,000 chains are tested
 * against (chi-square, p > 0.01), and the liar's share must stay within
 * what the cap allows. The same test with weighting off must fail.
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

#define SMALL 8 /* the weighted pool: 8! / 2! ordered draws of 6 */

struct pool {
    struct registry *r;
    unsigned n;
    struct desc d[RELAYS];
};

typedef void (*ip_fn)(unsigned i, char *out, size_t n);

/* n relays, relay i at address ip(i) advertising caps[i] (caps NULL: 0)
 * and naming as its family relay j for each bit j of names[i] (names NULL:
 * none), signed and registered with a generator weighting by capacity or
 * not. */
static void pool_make_fam(struct pool *p, unsigned n, bool distinct, ip_fn ip, const uint32_t *caps,
                          bool weighted, const uint32_t *names)
{
    struct registry_opts o = {.max_nodes = RELAYS + 1,
                              .max_chains = CHAINS + 1,
                              .ttl_ms = 3600000,
                              .chain_ttl_ms = 3600000,
                              .distinct_subnets = distinct,
                              .by_capacity = weighted,
                              .allow_private = true};
    struct ovl_identity ids[RELAYS];

    memset(p, 0, sizeof(*p));
    p->n = n;
    ck_assert_int_eq(registry_new(&o, &p->r), 0);
    for (unsigned i = 0; i < n; i++) {
        uint8_t seed[OVL_ED25519_SEED] = {(uint8_t)i, 0x5e, 0x1e};

        ck_assert_int_eq(ovl_identity_from_seed(&ids[i], seed), 0);
    }
    for (unsigned i = 0; i < n; i++) {
        struct ovl_identity *id = &ids[i];
        uint8_t raw[DESC_MAX_LEN];
        char host[64];
        size_t len;
        struct desc *d = &p->d[i];

        for (unsigned j = 0; names && j < n; j++)
            if (names[i] >> j & 1)
                memcpy(d->family[d->n_family++], ids[j].pk, OVL_ED25519_PK);
        d->flags = DESC_RELAY | (d->n_family ? DESC_FAMILY : 0);
        d->suites = OVL_AEAD_ALL;
        d->n_uris = 1;
        d->published_ms = WALL;
        d->expires_ms = WALL + 3600000;
        memcpy(d->id_pk, id->pk, OVL_ED25519_PK);
        memset(d->onion_pk, 1, OVL_X25519_LEN);
        d->capacity = caps ? caps[i] : 0;
        ip(i, host, sizeof(host));
        snprintf(d->uris[0], sizeof(d->uris[0]), "tcp://%s:7000", host);
        ck_assert_int_eq(desc_sign(d, id, raw, sizeof(raw), &len), 0);
        ck_assert_int_eq(registry_register(p->r, id->pk, raw, len, 0, WALL), 0);
    }
    for (unsigned i = 0; i < n; i++)
        ovl_identity_wipe(&ids[i]);
}

static void pool_make_n(struct pool *p, unsigned n, bool distinct, ip_fn ip, const uint32_t *caps,
                        bool weighted)
{
    pool_make_fam(p, n, distinct, ip, caps, weighted, NULL);
}

static void pool_make(struct pool *p, bool distinct, ip_fn ip)
{
    pool_make_n(p, RELAYS, distinct, ip, NULL, false);
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
    for (unsigned i = 0; i < p->n; i++)
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

/* One round of the local path's picks: their chi-square p-value. */
static double local_once(struct pool *p)
{
    const struct desc *cand[RELAYS];
    uint64_t counts[RELAYS] = {0};
    double chi2 = 0;

    for (unsigned c = 0; c < CHAINS; c++) {
        for (unsigned i = 0; i < RELAYS; i++)
            cand[i] = &p->d[i];
        ck_assert_uint_eq(select_relays(cand, RELAYS, LENGTH, true, false), LENGTH);
        for (unsigned i = 0; i < LENGTH; i++) {
            counts[index_of(p, cand[i])]++;
            for (unsigned j = 0; j < i; j++)
                ck_assert(!select_same_subnet(cand[i], cand[j]));
        }
    }
    for (unsigned i = 0; i < RELAYS; i++) {
        double e = (double)CHAINS * LENGTH / RELAYS, dlt = (double)counts[i] - e;

        chi2 += dlt * dlt / e;
    }
    return chi2_p(chi2, RELAYS - 1);
}

/* The local path: select_relays over plain descriptors, same rule (and,
 * as draw() does, a second independent round when the first fails). */
START_TEST(test_select_relays_local)
{
    struct pool p;
    const struct desc *cand[RELAYS];
    double pv;

    pool_make(&p, true, ip_grouped);
    pv = local_once(&p);
    if (pv <= 0.01) {
        printf("p = %.4f: drawing again\n", pv);
        pv = local_once(&p);
    }
    ck_assert_msg(pv > 0.01, "local picks not uniform: p = %g", pv);
    /* Eleven positions cannot come from ten subnets. */
    for (unsigned i = 0; i < RELAYS; i++)
        cand[i] = &p.d[i];
    ck_assert_uint_eq(select_relays(cand, RELAYS, 11, true, false), 10);
    registry_free(p.r);
}
END_TEST

/* ---- weighting = capacity ------------------------------------------------ */

#define POS_MAX 6 /* positions of a chain from SMALL relays: 3 x (1 + 1) */

/* Odd count of advertisers: M = 300 (the 4th of 7), 0 counts as 300, the
 * liar's 10^9 as 2,400. */
static const uint32_t caps_odd[SMALL] = {100, 200, 300, 400, 500, 0, 50, 1000000000};
/* Even count: M = 200 (the 3rd of 6, not 250 or 300), the liar 1,600. */
static const uint32_t caps_even[SMALL] = {0, 0, 100, 200, 300, 400, 4000000000u, 50};
/* Nobody advertises: M = 1, every weight 1, uniform. */
static const uint32_t caps_none[SMALL];
/* Claims near 2^32, none capped (M = 2 x 10^9): weight sums pass 2^32. */
static const uint32_t caps_huge[SMALL] = {4000000000u, 3000000000u, 2000000000u, 1000000000u,
                                          0,           500000000u,  UINT32_MAX,  100000000u};
#define LIAR 7 /* in caps_odd */
#define MID  2 /* in caps_odd: advertises exactly M */

static void ip_pairs(unsigned i, char *out, size_t n)
{
    snprintf(out, n, "10.%u.7.%u", i / 2, i); /* 4 /16s of 2 relays: the liar shares one */
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

    return (x > y) - (x < y);
}

/* The weights select.h defines, computed here by sorting; returns M. */
static double capped_weights(const uint32_t *caps, double *w)
{
    uint32_t nz[SMALL];
    unsigned m = 0;
    double med;

    for (unsigned i = 0; i < SMALL; i++)
        if (caps[i])
            nz[m++] = caps[i];
    qsort(nz, m, sizeof(nz[0]), cmp_u32);
    med = m ? nz[(m + 1) / 2 - 1] : 1;
    for (unsigned i = 0; i < SMALL; i++) {
        double c = caps[i] ? caps[i] : med;

        w[i] = c < 8 * med ? c : 8 * med;
    }
    return med;
}

struct exact {
    const struct pool *p;
    double w[SMALL];
    bool subnets;
    unsigned positions;
    double e[POS_MAX][SMALL]; /* chance of relay i at position pos */
};

/* Walk every ordered draw that starts with picked[0..depth) (chance pr):
 * the next pick is each still-allowed relay in proportion to its weight. */
static void enumerate(struct exact *x, unsigned *picked, unsigned depth, double pr)
{
    bool ok[SMALL];
    double sum = 0;

    /* positions <= POS_MAX, but gcc 12 inlining the recursion at -O3 does
     * not know it and warns of e[] and picked[] past their end
     * (-Warray-bounds): the second bound, never the one that ends the walk,
     * shows it the arrays' size. */
    if (depth >= x->positions || depth >= POS_MAX)
        return;
    for (unsigned i = 0; i < SMALL; i++) {
        ok[i] = true;
        for (unsigned j = 0; j < depth && ok[i]; j++)
            ok[i] = picked[j] != i && !select_related(&x->p->d[i], &x->p->d[picked[j]], x->subnets);
        sum += ok[i] ? x->w[i] : 0;
    }
    ck_assert(sum > 0); /* both layouts always fill every position */
    for (unsigned i = 0; i < SMALL; i++) {
        if (!ok[i])
            continue;
        x->e[depth][i] += pr * x->w[i] / sum;
        picked[depth] = i;
        enumerate(x, picked, depth + 1, pr * x->w[i] / sum);
    }
}

static void exact_make(struct exact *x, const struct pool *p, const uint32_t *caps, bool subnets,
                       unsigned positions)
{
    unsigned picked[POS_MAX];

    memset(x, 0, sizeof(*x));
    x->p = p;
    x->subnets = subnets;
    x->positions = positions;
    capped_weights(caps, x->w);
    enumerate(x, picked, 0, 1);
}

/* Chi-square p of counts[pos][relay] against the exact chances. */
static double exact_p(const struct exact *x, uint64_t counts[POS_MAX][SMALL])
{
    double chi2 = 0;
    unsigned cells = 0;

    for (unsigned pos = 0; pos < x->positions; pos++)
        for (unsigned i = 0; i < SMALL; i++) {
            double e = x->e[pos][i] * CHAINS, dlt = (double)counts[pos][i] - e;

            if (e == 0) {
                ck_assert_uint_eq(counts[pos][i], 0);
                continue;
            }
            chi2 += dlt * dlt / e;
            cells++;
        }
    return chi2_p(chi2, cells - x->positions); /* each position's counts sum to CHAINS */
}

/* Count CHAINS chains from the generator by position and relay. */
static void draw_generator(struct pool *p, const struct exact *x, uint64_t counts[POS_MAX][SMALL])
{
    for (unsigned c = 0; c < CHAINS; c++) {
        uint8_t req[OVL_ED25519_PK];
        const struct reg_chain *ch;

        ovl_random(req, sizeof(req));
        ck_assert_int_eq(registry_chain(p->r, req, LENGTH, BACKUPS, NULL, 0, &ch), 0);
        ck_assert_uint_eq(ch->length * (1u + ch->backups), x->positions);
        for (unsigned pos = 0; pos < x->positions; pos++)
            counts[pos][index_of(p, &ch->nodes[pos]->d)]++;
    }
}

/* Count CHAINS local choices of x->positions relays by position and relay. */
static void draw_local(struct pool *p, const struct exact *x, uint64_t counts[POS_MAX][SMALL])
{
    const struct desc *cand[SMALL];

    for (unsigned c = 0; c < CHAINS; c++) {
        for (unsigned i = 0; i < SMALL; i++)
            cand[i] = &p->d[i];
        ck_assert_uint_eq(select_relays(cand, SMALL, x->positions, x->subnets, true), x->positions);
        for (unsigned pos = 0; pos < x->positions; pos++)
            counts[pos][index_of(p, cand[pos])]++;
    }
}

typedef void (*draw_fn)(struct pool *p, const struct exact *x, uint64_t counts[POS_MAX][SMALL]);

/* As draw(): a second independent draw decides when the first fails. */
static double draw_exact(struct pool *p, const struct exact *x, draw_fn fn,
                         uint64_t counts[POS_MAX][SMALL])
{
    double pv = 0;

    for (int round = 0; round < 2 && pv <= 0.01; round++) {
        if (round)
            printf("p = %.4f: drawing again\n", pv);
        memset(counts, 0, sizeof(uint64_t) * POS_MAX * SMALL);
        fn(p, x, counts);
        pv = exact_p(x, counts);
    }
    return pv;
}

/* The generator with weighting = capacity, without and with the subnet
 * rule at work (4 /16s of 2: 4 picks, so 3 positions and no backups). */
START_TEST(test_weighted_generator)
{
    static const ip_fn ips[] = {ip_distinct, ip_pairs};
    static const unsigned positions[] = {POS_MAX, LENGTH};
    uint64_t counts[POS_MAX][SMALL];
    struct pool p;
    struct exact x;
    double pv, w[SMALL], med = capped_weights(caps_odd, w), sum = 0, liar;

    pool_make_n(&p, SMALL, true, ips[_i], caps_odd, true);
    exact_make(&x, &p, caps_odd, true, positions[_i]);
    pv = draw_exact(&p, &x, draw_generator, counts);
    for (unsigned i = 0; i < SMALL; i++)
        sum += w[i];
    liar = (double)counts[0][LIAR] / CHAINS;
    printf("weighted generator (%s): p = %.3f, liar first in %.3f of chains (cap allows %.3f)\n",
           _i ? "4 subnets of 2" : "8 subnets", pv, liar, 8 * med / sum);
    ck_assert_msg(pv > 0.01, "weighted picks do not follow the capped weights: p = %g", pv);
    /* Uncapped, the liar would come first in 99.9998 % of chains. */
    ck_assert_double_le(liar, 8 * med / sum + 0.02);
    ck_assert_double_le((double)counts[0][LIAR], 8 * 1.25 * (double)counts[0][MID]);
    registry_free(p.r);
}
END_TEST

/* The same test has power: uniform picks from that pool fail it. */
START_TEST(test_weighting_matters)
{
    uint64_t counts[POS_MAX][SMALL] = {{0}};
    struct pool p;
    struct exact x;
    double pv;

    pool_make_n(&p, SMALL, true, ip_distinct, caps_odd, false);
    exact_make(&x, &p, caps_odd, false, POS_MAX);
    draw_generator(&p, &x, counts);
    pv = exact_p(&x, counts);
    printf("uniform generator against the capped weights: p = %.3g\n", pv);
    ck_assert_msg(pv < 1e-6, "uniform picks pass as weighted: p = %g", pv);
    registry_free(p.r);
}
END_TEST

/* The local choice: an even count of advertisers (the lower median),
 * nobody advertising (uniform), and weights whose sum needs 64 bits. */
START_TEST(test_weighted_local)
{
    static const uint32_t *const caps[] = {caps_even, caps_none, caps_huge};
    static const char *const what[] = {"even count", "nobody advertises", "sum > 2^32"};
    uint64_t counts[POS_MAX][SMALL];
    struct pool p;
    struct exact x;
    double pv;

    pool_make_n(&p, SMALL, true, ip_distinct, caps[_i], true);
    exact_make(&x, &p, caps[_i], true, POS_MAX);
    pv = draw_exact(&p, &x, draw_local, counts);
    printf("weighted local (%s): p = %.3f, relay 6 first in %.3f\n", what[_i], pv,
           (double)counts[0][6] / CHAINS);
    ck_assert_msg(pv > 0.01, "local weighted picks do not follow the weights: p = %g", pv);
    registry_free(p.r);
}
END_TEST

/* ---- families ------------------------------------------------------------ */

/* Bit j of fam_*[i]: relay i names relay j as its family. Mixed: 0, 1 and
 * 2 name each other (one family of three), so do 3 and 4; 5 names 6 and 7
 * names 0, neither named back. One-sided: each relay names the next and
 * none is named back, so there is no family at all. */
static const uint32_t fam_mixed[SMALL] = {0x06, 0x05, 0x03, 0x10, 0x08, 0x40, 0, 0x01};
static const uint32_t fam_one_sided[SMALL] = {0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80, 0x01};

/* Draw CHAINS chains of positions picks (the generator's, or local ones)
 * and check that none holds two relays of one family; return how many
 * hold both a and b. */
static unsigned family_draws(struct pool *p, bool local, unsigned positions, unsigned a, unsigned b)
{
    const struct desc *pick[SMALL]; /* local: every candidate, the picks first */
    unsigned together = 0;

    for (unsigned c = 0; c < CHAINS; c++) {
        unsigned has = 0;

        if (local) {
            for (unsigned i = 0; i < SMALL; i++)
                pick[i] = &p->d[i];
            ck_assert_uint_eq(select_relays(pick, SMALL, positions, true, false), positions);
        } else {
            uint8_t req[OVL_ED25519_PK];
            const struct reg_chain *ch;

            ovl_random(req, sizeof(req));
            ck_assert_int_eq(registry_chain(p->r, req, LENGTH, BACKUPS, NULL, 0, &ch), 0);
            ck_assert_uint_eq(ch->length * (1u + ch->backups), positions);
            for (unsigned i = 0; i < positions; i++)
                pick[i] = &ch->nodes[i]->d;
        }
        for (unsigned i = 0; i < positions; i++) {
            unsigned k = index_of(p, pick[i]);

            has |= (k == a) | (k == b) << 1;
            for (unsigned j = 0; j < i; j++)
                ck_assert_msg(!select_same_family(pick[i], pick[j]),
                              "relays %u and %u share a chain", k, index_of(p, pick[j]));
        }
        together += has == 3;
    }
    return together;
}

/* No chain holds two relays of one family, from the generator (_i even)
 * or the local choice (odd); a declaration not made back changes nothing:
 * each relay's chance at each position is exactly that of uniform picks
 * among the relays neither rule sets aside (chi-square, p > 0.01), and the
 * one-sided pair shares chains. Mixed layout: at most 5 picks (a relay of
 * 0-2, one of 3-4, 5, 6, 7), so 3 positions; one-sided: 8, so 6. */
START_TEST(test_families)
{
    static const uint32_t *const names[] = {fam_mixed, fam_one_sided};
    static const unsigned positions[] = {LENGTH, POS_MAX}, pair[][2] = {{5, 6}, {0, 1}};
    const uint32_t *fam = names[_i / 2];
    unsigned pos = positions[_i / 2], together;
    bool local = _i % 2;
    uint64_t counts[POS_MAX][SMALL];
    struct pool p;
    struct exact x;
    double pv;

    pool_make_fam(&p, SMALL, true, ip_distinct, NULL, false, fam);
    exact_make(&x, &p, caps_none, true, pos);
    pv = draw_exact(&p, &x, local ? draw_local : draw_generator, counts);
    together = family_draws(&p, local, pos, pair[_i / 2][0], pair[_i / 2][1]);
    printf("families (%s, %s): p = %.3f, one-sided pair together in %u chains\n",
           _i / 2 ? "one-sided only" : "mixed", local ? "local" : "generator", pv, together);
    ck_assert_msg(pv > 0.01, "picks with families do not follow the law: p = %g", pv);
    ck_assert_uint_gt(together, CHAINS / 20);
    for (unsigned i = 0; i < SMALL; i++)
        for (unsigned j = 0; j < SMALL; j++) /* one family: each names the other */
            ck_assert(select_same_family(&p.d[i], &p.d[j]) ==
                      ((fam[i] >> j & 1) && (fam[j] >> i & 1)));
    ck_assert(select_same_family(&p.d[1], &p.d[2]) == (_i < 2));
    ck_assert(!select_same_family(&p.d[5], &p.d[6]) && !select_same_family(&p.d[7], &p.d[0]));
    ck_assert(select_related(&p.d[3], &p.d[4], false) == (_i < 2));
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
    tcase_add_loop_test(tc, test_weighted_generator, 0, 2);
    tcase_add_test(tc, test_weighting_matters);
    tcase_add_loop_test(tc, test_weighted_local, 0, 3);
    tcase_add_loop_test(tc, test_families, 0, 4);
    suite_add_tcase(s, tc);
    return s;
}

OVL_CHECK_MAIN(selection_suite)
