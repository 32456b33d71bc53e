/* test_onion.c - ovl-chain-v1: setup headers and data layers, end to end. */
#include <check.h>
#include <stdbool.h>
#include <string.h>

#include "chain/onion.h"
#include "check_main.h"

#define N_SUITES 2
#define CANARY   0xa5

static const enum ovl_aead_suite suites[N_SUITES] = {OVL_AEAD_CHACHA20POLY1305, OVL_AEAD_AES256GCM};

/* A chain as the sender and the hops each see it. */
struct tchain {
    unsigned n;
    uint8_t pk[ONION_MAX_HOPS][OVL_X25519_LEN];
    uint8_t sk[ONION_MAX_HOPS][OVL_X25519_LEN];
    struct onion_hop_info info[ONION_MAX_HOPS];
    struct onion_keys snd[ONION_MAX_HOPS]; /* the sender's copies */
    struct onion_keys hop[ONION_MAX_HOPS]; /* what each hop got from peeling */
    uint8_t hdr[ONION_HDR_LEN];            /* as sent to hop 0 */
};

static bool suite_ok(enum ovl_aead_suite s)
{
    return (ovl_aead_available() & s) != 0;
}

static void make_info(struct onion_hop_info *in, unsigned i, unsigned n, enum ovl_aead_suite s)
{
    memset(in, 0, sizeof(*in));
    in->type = i + 1 == n ? ONION_HOP_EXIT : ONION_HOP_RELAY;
    in->suite = (uint8_t)s;
    in->lifetime_s = 600 + i;
    if (in->type == ONION_HOP_RELAY)
        ovl_random(in->next, sizeof(in->next));
}

static void assert_info_eq(const struct onion_hop_info *a, const struct onion_hop_info *b)
{
    ck_assert_uint_eq(a->type, b->type);
    ck_assert_uint_eq(a->suite, b->suite);
    ck_assert_uint_eq(a->flags, b->flags);
    ck_assert_uint_eq(a->lifetime_s, b->lifetime_s);
    ck_assert_mem_eq(a->next, b->next, sizeof(a->next));
}

/* Build a chain of n hops and let every hop peel its slot in turn. */
static void make_chain(struct tchain *c, unsigned n, enum ovl_aead_suite s)
{
    uint8_t hdr[ONION_HDR_LEN];
    struct onion_hop_info got;

    memset(c, 0, sizeof(*c));
    c->n = n;
    for (unsigned i = 0; i < n; i++) {
        ovl_x25519_keypair(c->pk[i], c->sk[i]);
        make_info(&c->info[i], i, n, s);
    }
    ck_assert_int_eq(
        onion_setup_build(c->hdr, (const uint8_t(*)[OVL_X25519_LEN])c->pk, c->info, n, c->snd), 0);
    memcpy(hdr, c->hdr, sizeof(hdr));
    for (unsigned i = 0; i < n; i++) {
        ck_assert_int_eq(onion_setup_peel(hdr, c->pk[i], c->sk[i], &got, &c->hop[i]), 0);
        assert_info_eq(&got, &c->info[i]);
        ck_assert_int_eq(c->hop[i].suite, s);
        ck_assert_mem_eq(c->hop[i].fwd_ks, c->snd[i].fwd_ks, 32);
        ck_assert_mem_eq(c->hop[i].back_ks, c->snd[i].back_ks, 32);
    }
}

/* Wipe both sides' keys (AES-256-GCM contexts may hold memory). */
static void drop_chain(struct tchain *c)
{
    for (unsigned i = 0; i < c->n; i++) {
        onion_keys_wipe(&c->snd[i]);
        onion_keys_wipe(&c->hop[i]);
    }
}

/* Wrap body with the same forward counter at every hop. */
static int wrap_at(uint8_t *cell, const struct onion_keys *keys, unsigned n, uint64_t ctr,
                   const uint8_t *body)
{
    uint64_t ctrs[ONION_MAX_HOPS + 1];

    for (unsigned i = 0; i < ONION_MAX_HOPS + 1; i++)
        ctrs[i] = ctr;
    return onion_fwd_wrap(cell, keys, n, ctrs, body);
}

/* Push one forward cell through every hop; returns the exit's cell. */
static void fwd_through(struct tchain *c, uint64_t ctr, uint64_t *next, uint8_t *cell,
                        const uint8_t *body)
{
    ck_assert_int_eq(wrap_at(cell, c->snd, c->n, ctr, body), 0);
    for (unsigned i = 0; i < c->n; i++) {
        ck_assert_int_eq(onion_fwd_peel(cell, &c->hop[i], &next[i]), 0);
        ck_assert_uint_eq(next[i], ctr + 1);
    }
    ck_assert_mem_eq(cell + ONION_BODY_OFF, body, ONION_BODY);
}

/* Originate a backward cell at hop j and relay it to hop 0. */
static void back_from(struct tchain *c, unsigned j, uint64_t *hctr, uint8_t *cell,
                      const uint8_t *body)
{
    ck_assert_int_eq(onion_back_originate(cell, &c->hop[j], &hctr[j], body), 0);
    for (unsigned i = j; i-- > 0;)
        ck_assert_int_eq(onion_back_add(cell, &c->hop[i], &hctr[i]), 0);
}

/* ---- setup ---- */

START_TEST(setup_roundtrip)
{
    unsigned n = (unsigned)_i % ONION_MAX_HOPS + 1;
    enum ovl_aead_suite s = suites[_i / ONION_MAX_HOPS];
    struct tchain c;
    uint8_t body[ONION_BODY], cell[OVL_CELL_PAYLOAD];
    uint64_t next[ONION_MAX_HOPS] = {0};

    if (!suite_ok(s))
        return;
    make_chain(&c, n, s);
    /* Same keys on both sides: data wrapped by the sender opens at the hops. */
    ovl_random(body, sizeof(body));
    fwd_through(&c, 0, next, cell, body);
    drop_chain(&c);
}
END_TEST

/* Flip one bit at every byte of the header hop `at` receives. */
static void tamper_setup_at(unsigned n, unsigned at)
{
    struct tchain c;
    struct onion_hop_info got;
    struct onion_keys k;
    uint8_t hdr[ONION_HDR_LEN], bad[ONION_HDR_LEN];

    make_chain(&c, n, OVL_AEAD_CHACHA20POLY1305);
    memcpy(hdr, c.hdr, sizeof(hdr));
    for (unsigned i = 0; i < at; i++)
        ck_assert_int_eq(onion_setup_peel(hdr, c.pk[i], c.sk[i], &got, &k), 0);
    for (size_t pos = 0; pos < ONION_HDR_LEN; pos++) {
        memcpy(bad, hdr, sizeof(bad));
        bad[pos] ^= (uint8_t)(1u << (pos % 8));
        uint8_t copy[ONION_HDR_LEN];
        memcpy(copy, bad, sizeof(copy));
        ck_assert_int_eq(onion_setup_peel(bad, c.pk[at], c.sk[at], &got, &k), OVL_ECRYPTO);
        ck_assert_mem_eq(bad, copy, sizeof(copy));
    }
    /* The untampered header still opens. */
    ck_assert_int_eq(onion_setup_peel(hdr, c.pk[at], c.sk[at], &got, &k), 0);
}

START_TEST(setup_tamper)
{
    static const struct {
        unsigned n, at;
    } cases[] = {{1, 0}, {2, 0}, {2, 1}, {3, 1}, {8, 0}, {8, 1}, {8, 7}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        tamper_setup_at(cases[i].n, cases[i].at);
}
END_TEST

START_TEST(setup_foreign_key)
{
    struct tchain c;
    struct onion_hop_info got;
    struct onion_keys k;
    uint8_t hdr[ONION_HDR_LEN], opk[32], osk[32];

    make_chain(&c, 3, OVL_AEAD_CHACHA20POLY1305);
    ovl_x25519_keypair(opk, osk);
    memcpy(hdr, c.hdr, sizeof(hdr));
    ck_assert_int_eq(onion_setup_peel(hdr, opk, osk, &got, &k), OVL_ECRYPTO);
    ck_assert_mem_eq(hdr, c.hdr, sizeof(hdr));
    /* Hop 1's key does not open hop 0's slot either. */
    ck_assert_int_eq(onion_setup_peel(hdr, c.pk[1], c.sk[1], &got, &k), OVL_ECRYPTO);
    ck_assert_mem_eq(hdr, c.hdr, sizeof(hdr));
    /* The right secret with the wrong public key: the KDF binds onion_pk. */
    ck_assert_int_eq(onion_setup_peel(hdr, opk, c.sk[0], &got, &k), OVL_ECRYPTO);
    ck_assert_mem_eq(hdr, c.hdr, sizeof(hdr));
    ck_assert_uint_eq(got.type, 0);
}
END_TEST

/* Seal a one-slot header by hand, following docs/PROTOCOL.md, so that the
 * documented key derivation is checked independently of onion.c. */
static void hand_header(uint8_t hdr[ONION_HDR_LEN], const uint8_t pk[32], const uint8_t info[40])
{
    uint8_t esk[32], s[32], ikm[96], ck[32], prk[32], k_info[32], nonce[12] = {0};
    unsigned long long tl;

    ovl_random(hdr, ONION_HDR_LEN);
    crypto_box_keypair(hdr, esk);
    ck_assert_int_eq(crypto_scalarmult(s, esk, pk), 0);
    crypto_generichash(ck, 32, (const uint8_t *)"ovl-chain-v1", 12, NULL, 0);
    memcpy(ikm, s, 32);
    memcpy(ikm + 32, hdr, 32);
    memcpy(ikm + 64, pk, 32);
    crypto_generichash(prk, 32, ikm, 96, ck, 32);
    crypto_generichash(k_info, 32, (const uint8_t *)"info", 4, prk, 32);
    ck_assert_int_eq(crypto_aead_chacha20poly1305_ietf_encrypt_detached(
                         hdr + 32, hdr + 72, &tl, info, 40, hdr + ONION_SLOT_LEN,
                         ONION_HDR_LEN - ONION_SLOT_LEN, NULL, nonce, k_info),
                     0);
}

START_TEST(setup_info_checks)
{
    static const struct {
        uint8_t type, suite, flags0;
        bool next;
        int want;
    } cases[] = {
        {ONION_HOP_EXIT, OVL_AEAD_CHACHA20POLY1305, 0, false, 0},
        {ONION_HOP_RELAY, OVL_AEAD_CHACHA20POLY1305, 0, true, 0},
        {0, OVL_AEAD_CHACHA20POLY1305, 0, false, OVL_EPROTO},
        {3, OVL_AEAD_CHACHA20POLY1305, 0, true, OVL_EPROTO},
        {ONION_HOP_EXIT, 0, 0, false, OVL_EPROTO},
        {ONION_HOP_EXIT, OVL_AEAD_ALL, 0, false, OVL_EPROTO},
        {ONION_HOP_EXIT, 4, 0, false, OVL_EPROTO},
        {ONION_HOP_EXIT, OVL_AEAD_CHACHA20POLY1305, 1, false, OVL_EPROTO},
        {ONION_HOP_EXIT, OVL_AEAD_CHACHA20POLY1305, 0, true, OVL_EPROTO},
        {ONION_HOP_RELAY, OVL_AEAD_CHACHA20POLY1305, 0, false, OVL_EPROTO},
    };
    uint8_t pk[32], sk[32], hdr[ONION_HDR_LEN], copy[ONION_HDR_LEN], info[40];
    struct onion_hop_info got;
    struct onion_keys k;

    ovl_x25519_keypair(pk, sk);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        memset(info, 0, sizeof(info));
        info[0] = cases[i].type;
        info[1] = cases[i].suite;
        info[2] = cases[i].flags0;
        info[4] = 0x10; /* lifetime 16 s, little-endian */
        if (cases[i].next)
            memset(info + 8, 0x42, 32);
        hand_header(hdr, pk, info);
        memcpy(copy, hdr, sizeof(hdr));
        ck_assert_int_eq(onion_setup_peel(hdr, pk, sk, &got, &k), cases[i].want);
        if (cases[i].want == 0) {
            ck_assert_uint_eq(got.type, cases[i].type);
            ck_assert_uint_eq(got.lifetime_s, 16);
        } else {
            ck_assert_mem_eq(hdr, copy, sizeof(hdr));
        }
    }
    /* The flags are 16 bits, little-endian: their high byte counts too. */
    memset(info, 0, sizeof(info));
    info[0] = ONION_HOP_EXIT;
    info[1] = OVL_AEAD_CHACHA20POLY1305;
    info[3] = 1;
    info[4] = 0x10;
    hand_header(hdr, pk, info);
    ck_assert_int_eq(onion_setup_peel(hdr, pk, sk, &got, &k), OVL_EPROTO);
}
END_TEST

START_TEST(setup_build_rejects)
{
    uint8_t pk[ONION_MAX_HOPS + 1][32], sk[32], hdr[ONION_HDR_LEN];
    struct onion_hop_info info[ONION_MAX_HOPS + 1];
    struct onion_keys keys[ONION_MAX_HOPS + 1];
    const uint8_t(*cpk)[32] = (const uint8_t(*)[32])pk;

    for (unsigned i = 0; i <= ONION_MAX_HOPS; i++) {
        ovl_x25519_keypair(pk[i], sk);
        make_info(&info[i], i, 3, OVL_AEAD_CHACHA20POLY1305);
    }
    ck_assert_int_eq(onion_setup_build(hdr, cpk, info, 0, keys), OVL_EINVAL);
    ck_assert_int_eq(onion_setup_build(hdr, cpk, info, ONION_MAX_HOPS + 1, keys), OVL_EINVAL);
    ck_assert_int_eq(onion_setup_build(hdr, cpk, info, 2, keys), OVL_EINVAL); /* no exit */
    ck_assert_int_eq(onion_setup_build(NULL, cpk, info, 3, keys), OVL_EINVAL);
    info[1].flags = 1;
    ck_assert_int_eq(onion_setup_build(hdr, cpk, info, 3, keys), OVL_EINVAL);
    info[1].flags = 0;
    info[0].suite = 0;
    ck_assert_int_eq(onion_setup_build(hdr, cpk, info, 3, keys), OVL_EINVAL);
    info[0].suite = OVL_AEAD_CHACHA20POLY1305;
    ck_assert_int_eq(onion_setup_build(hdr, cpk, info, 3, keys), 0);
    /* A low-order onion key fails and leaves no keys behind. */
    memset(pk[2], 0, 32);
    ck_assert_int_eq(onion_setup_build(hdr, cpk, info, 3, keys), OVL_ECRYPTO);
    ck_assert(sodium_is_zero((const uint8_t *)keys, 3 * sizeof(keys[0])));
}
END_TEST

/* ---- forward ---- */

START_TEST(fwd_roundtrip)
{
    static const uint64_t ctrs[] = {0, 1, 2, 1000, (uint64_t)1 << 40, UINT64_MAX - 2};
    unsigned n = (unsigned)_i % ONION_MAX_HOPS + 1;
    enum ovl_aead_suite s = suites[_i / ONION_MAX_HOPS];
    struct tchain c;
    uint8_t body[ONION_BODY], cell[OVL_CELL_PAYLOAD];
    uint64_t next[ONION_MAX_HOPS];

    if (!suite_ok(s))
        return;
    make_chain(&c, n, s);
    for (size_t t = 0; t < sizeof(ctrs) / sizeof(ctrs[0]); t++) {
        for (unsigned i = 0; i < n; i++)
            next[i] = ctrs[t];
        ovl_random(body, sizeof(body));
        fwd_through(&c, ctrs[t], next, cell, body);
    }
    /* The counter after the last one is never used. */
    ck_assert_int_eq(wrap_at(cell, c.snd, n, UINT64_MAX, body), OVL_EINVAL);
    drop_chain(&c);
}
END_TEST

/* Flip a bit at every byte of the cell hop `at` receives. */
static void tamper_fwd_at(struct tchain *c, unsigned at, uint64_t ctr)
{
    uint8_t body[ONION_BODY], cell[OVL_CELL_PAYLOAD], bad[OVL_CELL_PAYLOAD];
    uint64_t next[ONION_MAX_HOPS], nx;

    for (unsigned i = 0; i < c->n; i++)
        next[i] = ctr;
    ovl_random(body, sizeof(body));
    ck_assert_int_eq(wrap_at(cell, c->snd, c->n, ctr, body), 0);
    for (unsigned i = 0; i < at; i++)
        ck_assert_int_eq(onion_fwd_peel(cell, &c->hop[i], &next[i]), 0);
    for (size_t pos = 0; pos < OVL_CELL_PAYLOAD; pos++) {
        memcpy(bad, cell, sizeof(bad));
        bad[pos] ^= (uint8_t)(1u << (pos % 8));
        uint8_t copy[OVL_CELL_PAYLOAD];
        memcpy(copy, bad, sizeof(copy));
        nx = next[at];
        ck_assert_int_eq(onion_fwd_peel(bad, &c->hop[at], &nx), OVL_ECRYPTO);
        ck_assert_mem_eq(bad, copy, sizeof(copy));
        ck_assert_uint_eq(nx, next[at]);
    }
    ck_assert_int_eq(onion_fwd_peel(cell, &c->hop[at], &next[at]), 0);
}

START_TEST(fwd_tamper)
{
    enum ovl_aead_suite s = suites[_i];
    struct tchain c;

    if (!suite_ok(s))
        return;
    make_chain(&c, 1, s);
    tamper_fwd_at(&c, 0, 0);
    drop_chain(&c);
    make_chain(&c, 8, s);
    for (unsigned at = 0; at < 8; at++)
        tamper_fwd_at(&c, at, 5);
    drop_chain(&c);
}
END_TEST

START_TEST(fwd_replay_window_foreign)
{
    struct tchain c, other;
    uint8_t body[ONION_BODY], cell[OVL_CELL_PAYLOAD], copy[OVL_CELL_PAYLOAD];
    uint64_t next = 0, nx;

    make_chain(&c, 3, OVL_AEAD_CHACHA20POLY1305);
    make_chain(&other, 3, OVL_AEAD_CHACHA20POLY1305);
    ovl_random(body, sizeof(body));
    /* Replay: the same cell twice. */
    ck_assert_int_eq(wrap_at(cell, c.snd, 3, 0, body), 0);
    memcpy(copy, cell, sizeof(cell));
    ck_assert_int_eq(onion_fwd_peel(cell, &c.hop[0], &next), 0);
    ck_assert_int_eq(onion_fwd_peel(copy, &c.hop[0], &next), OVL_ECRYPTO);
    ck_assert_uint_eq(next, 1);
    /* Dropped cells: the last counter inside the window still opens. */
    ck_assert_int_eq(wrap_at(cell, c.snd, 3, next + ONION_WINDOW - 1, body), 0);
    ck_assert_int_eq(onion_fwd_peel(cell, &c.hop[0], &next), 0);
    ck_assert_uint_eq(next, 1 + ONION_WINDOW);
    /* ... the first one beyond it does not, nor does an older one. */
    ck_assert_int_eq(wrap_at(cell, c.snd, 3, next + ONION_WINDOW, body), 0);
    ck_assert_int_eq(onion_fwd_peel(cell, &c.hop[0], &next), OVL_ECRYPTO);
    ck_assert_int_eq(wrap_at(cell, c.snd, 3, next - 2, body), 0);
    ck_assert_int_eq(onion_fwd_peel(cell, &c.hop[0], &next), OVL_ECRYPTO);
    ck_assert_uint_eq(next, 1 + ONION_WINDOW);
    /* Wrong keys: another chain's, or the next hop's. */
    ck_assert_int_eq(wrap_at(cell, c.snd, 3, next, body), 0);
    nx = next;
    ck_assert_int_eq(onion_fwd_peel(cell, &other.hop[0], &nx), OVL_ECRYPTO);
    ck_assert_int_eq(onion_fwd_peel(cell, &c.hop[1], &nx), OVL_ECRYPTO);
    ck_assert_int_eq(onion_fwd_peel(cell, &c.hop[0], &nx), 0);
}
END_TEST

/* ---- backward ---- */

START_TEST(back_roundtrip)
{
    unsigned n = (unsigned)_i % ONION_MAX_HOPS + 1;
    enum ovl_aead_suite s = suites[_i / ONION_MAX_HOPS];
    struct tchain c;
    uint8_t body[ONION_BODY], got[ONION_BODY], cell[OVL_CELL_PAYLOAD];
    uint64_t hctr[ONION_MAX_HOPS] = {0}, next[ONION_MAX_HOPS] = {0};
    unsigned origin;

    if (!suite_ok(s))
        return;
    make_chain(&c, n, s);
    for (unsigned round = 0; round < 3; round++) {
        for (unsigned j = 0; j < n; j++) {
            ovl_random(body, sizeof(body));
            back_from(&c, j, hctr, cell, body);
            ck_assert_int_eq(onion_back_unwrap(got, &origin, c.snd, n, next, cell), 0);
            ck_assert_uint_eq(origin, j);
            ck_assert_mem_eq(got, body, sizeof(body));
            ck_assert_mem_eq(next, hctr, sizeof(next));
        }
    }
    drop_chain(&c);
}
END_TEST

/* Flip a bit at every byte of a backward cell from hop j. */
static void tamper_back(struct tchain *c, unsigned j)
{
    uint8_t body[ONION_BODY], got[ONION_BODY], cell[OVL_CELL_PAYLOAD];
    uint64_t hctr[ONION_MAX_HOPS] = {0}, next[ONION_MAX_HOPS] = {0};
    unsigned origin;

    ovl_random(body, sizeof(body));
    back_from(c, j, hctr, cell, body);
    for (size_t pos = 0; pos < OVL_CELL_PAYLOAD; pos++) {
        cell[pos] ^= (uint8_t)(1u << (pos % 8));
        ck_assert_int_eq(onion_back_unwrap(got, &origin, c->snd, c->n, next, cell), OVL_ECRYPTO);
        for (unsigned i = 0; i < c->n; i++)
            ck_assert_uint_eq(next[i], 0);
        cell[pos] ^= (uint8_t)(1u << (pos % 8));
    }
    ck_assert_int_eq(onion_back_unwrap(got, &origin, c->snd, c->n, next, cell), 0);
    ck_assert_uint_eq(origin, j);
}

START_TEST(back_tamper)
{
    enum ovl_aead_suite s = suites[_i];
    struct tchain c;

    if (!suite_ok(s))
        return;
    make_chain(&c, 1, s);
    tamper_back(&c, 0);
    drop_chain(&c);
    make_chain(&c, 8, s);
    tamper_back(&c, 0);
    tamper_back(&c, 1);
    tamper_back(&c, 7);
    drop_chain(&c);
}
END_TEST

START_TEST(back_replay_window_foreign)
{
    struct tchain c, other;
    uint8_t body[ONION_BODY], got[ONION_BODY], cell[OVL_CELL_PAYLOAD];
    uint64_t hctr[ONION_MAX_HOPS] = {0}, next[ONION_MAX_HOPS] = {0};
    unsigned origin;

    make_chain(&c, 3, OVL_AEAD_CHACHA20POLY1305);
    make_chain(&other, 3, OVL_AEAD_CHACHA20POLY1305);
    ovl_random(body, sizeof(body));
    back_from(&c, 2, hctr, cell, body);
    ck_assert_int_eq(onion_back_unwrap(got, &origin, c.snd, 3, next, cell), 0);
    ck_assert_int_eq(onion_back_unwrap(got, &origin, c.snd, 3, next, cell), OVL_ECRYPTO);
    ck_assert(sodium_is_zero(got, sizeof(got)));
    /* Hop 1 lost ONION_WINDOW - 1 cells: the next one still opens. */
    hctr[1] += ONION_WINDOW - 1;
    back_from(&c, 2, hctr, cell, body);
    ck_assert_int_eq(onion_back_unwrap(got, &origin, c.snd, 3, next, cell), 0);
    ck_assert_uint_eq(next[1], hctr[1]);
    /* One more beyond the window does not. */
    hctr[1] += ONION_WINDOW;
    back_from(&c, 1, hctr, cell, body);
    ck_assert_int_eq(onion_back_unwrap(got, &origin, c.snd, 3, next, cell), OVL_ECRYPTO);
    /* Another chain's cell does not open under these keys. */
    memset(hctr, 0, sizeof(hctr));
    back_from(&other, 0, hctr, cell, body);
    memset(next, 0, sizeof(next));
    ck_assert_int_eq(onion_back_unwrap(got, &origin, c.snd, 3, next, cell), OVL_ECRYPTO);
}
END_TEST

/* ---- unlinkability, sizes ---- */

/* True when a and b have a 16-byte run in common, at any offsets. */
static bool share_block(const uint8_t *a, const uint8_t *b)
{
    for (size_t i = 0; i + 16 <= OVL_CELL_PAYLOAD; i++) {
        for (size_t j = 0; j + 16 <= OVL_CELL_PAYLOAD; j++) {
            if (a[i] == b[j] && memcmp(a + i, b + j, 16) == 0)
                return true;
        }
    }
    return false;
}

static void assert_unlinked(uint8_t (*cells)[OVL_CELL_PAYLOAD], unsigned count)
{
    for (unsigned i = 0; i < count; i++) {
        for (unsigned j = i + 1; j < count; j++)
            ck_assert_msg(!share_block(cells[i], cells[j]), "cells %u and %u share a block", i, j);
    }
}

START_TEST(unlinkable)
{
    struct tchain c;
    uint8_t body[ONION_BODY], seen[ONION_MAX_HOPS + 1][OVL_CELL_PAYLOAD];
    uint64_t next[ONION_MAX_HOPS] = {0}, hctr[ONION_MAX_HOPS] = {0};

    make_chain(&c, ONION_MAX_HOPS, OVL_AEAD_CHACHA20POLY1305);
    ovl_random(body, sizeof(body));
    /* Forward: what each hop receives, and what the exit ends with. */
    ck_assert_int_eq(wrap_at(seen[0], c.snd, c.n, 0, body), 0);
    for (unsigned i = 0; i < c.n; i++) {
        memcpy(seen[i + 1], seen[i], OVL_CELL_PAYLOAD);
        ck_assert_int_eq(onion_fwd_peel(seen[i + 1], &c.hop[i], &next[i]), 0);
    }
    assert_unlinked(seen, ONION_MAX_HOPS + 1);
    /* Backward: what each hop sends toward the sender. */
    ck_assert_int_eq(onion_back_originate(seen[7], &c.hop[7], &hctr[7], body), 0);
    for (unsigned i = 7; i-- > 0;) {
        memcpy(seen[i], seen[i + 1], OVL_CELL_PAYLOAD);
        ck_assert_int_eq(onion_back_add(seen[i], &c.hop[i], &hctr[i]), 0);
    }
    memcpy(seen[8], body, ONION_BODY); /* the body appears in none of them */
    memset(seen[8] + ONION_BODY, 0, OVL_CELL_PAYLOAD - ONION_BODY);
    assert_unlinked(seen, ONION_MAX_HOPS + 1);
}
END_TEST

/* The junk the exit sees comes from a key only the sender holds: set for
 * every hop on the sender's side, never derived by a hop, and new for
 * every cell. */
START_TEST(fwd_junk_sender_only)
{
    struct tchain c;
    uint8_t body[ONION_BODY] = {0}, zero[32] = {0}, a[OVL_CELL_PAYLOAD], b[OVL_CELL_PAYLOAD];
    uint64_t next = 0;

    make_chain(&c, 1, OVL_AEAD_CHACHA20POLY1305);
    ck_assert(!ovl_equal(c.snd[0].junk_ks, zero, 32));
    ck_assert_mem_eq(c.hop[0].junk_ks, zero, 32);
    ck_assert_int_eq(wrap_at(a, c.snd, 1, 0, body), 0);
    ck_assert_int_eq(wrap_at(b, c.snd, 1, 1, body), 0);
    ck_assert_int_eq(onion_fwd_peel(a, &c.hop[0], &next), 0);
    ck_assert_int_eq(onion_fwd_peel(b, &c.hop[0], &next), 0);
    /* A one-hop chain's junk is all stream: different at every counter. */
    ck_assert(
        !ovl_equal(a + ONION_BODY_OFF + ONION_BODY, b + ONION_BODY_OFF + ONION_BODY, ONION_JUNK));
    ck_assert(!ovl_equal(a + ONION_BODY_OFF + ONION_BODY, zero, 32));
}
END_TEST

/* A repaired chain: hop 0 keeps its keys and counter, hops 1.. are new
 * and count from zero. A cell wrapped for hop 0 alone ends there (the
 * BODY_EXTEND of a repair); the per-hop counters then carry cells through
 * the whole spliced chain, and one counter for all hops no longer does. */
START_TEST(fwd_spliced)
{
    struct tchain c, tail;
    struct onion_keys snd[3], hop[3];
    uint8_t body[ONION_BODY], cell[OVL_CELL_PAYLOAD];
    uint64_t next[3] = {0}, ctr[3];

    make_chain(&c, 3, OVL_AEAD_CHACHA20POLY1305);
    make_chain(&tail, 2, OVL_AEAD_CHACHA20POLY1305);
    for (unsigned k = 0; k < 5; k++) {
        ovl_random(body, sizeof(body));
        fwd_through(&c, k, next, cell, body);
    }
    snd[0] = c.snd[0], hop[0] = c.hop[0];
    snd[1] = tail.snd[0], hop[1] = tail.hop[0];
    snd[2] = tail.snd[1], hop[2] = tail.hop[1];
    next[1] = next[2] = 0;
    ctr[0] = 5;
    ovl_random(body, sizeof(body));
    ck_assert_int_eq(onion_fwd_wrap(cell, snd, 1, ctr, body), 0);
    ck_assert_int_eq(onion_fwd_peel(cell, &hop[0], &next[0]), 0);
    ck_assert_mem_eq(cell + ONION_BODY_OFF, body, ONION_BODY);
    for (unsigned k = 0; k < 3; k++) {
        ctr[0] = 6 + k, ctr[1] = ctr[2] = k;
        ovl_random(body, sizeof(body));
        ck_assert_int_eq(onion_fwd_wrap(cell, snd, 3, ctr, body), 0);
        for (unsigned i = 0; i < 3; i++)
            ck_assert_int_eq(onion_fwd_peel(cell, &hop[i], &next[i]), 0);
        ck_assert_mem_eq(cell + ONION_BODY_OFF, body, ONION_BODY);
    }
    ck_assert_int_eq(wrap_at(cell, snd, 3, 9 + ONION_WINDOW / 2, body), 0);
    ck_assert_int_eq(onion_fwd_peel(cell, &hop[0], &next[0]), 0);
    ck_assert_int_eq(onion_fwd_peel(cell, &hop[1], &next[1]), OVL_ECRYPTO);
}
END_TEST

START_TEST(cell_bounds)
{
    struct tchain c;
    uint8_t body[ONION_BODY], got[ONION_BODY];
    uint8_t buf[OVL_CELL_PAYLOAD + 64], *cell = buf + 32;
    uint64_t next[ONION_MAX_HOPS] = {0}, hctr[ONION_MAX_HOPS] = {0}, bnext[ONION_MAX_HOPS] = {0};
    unsigned origin;

    make_chain(&c, 4, OVL_AEAD_CHACHA20POLY1305);
    ovl_random(body, sizeof(body));
    memset(buf, CANARY, sizeof(buf));
    ck_assert_int_eq(wrap_at(cell, c.snd, c.n, 0, body), 0);
    for (unsigned i = 0; i < c.n; i++)
        ck_assert_int_eq(onion_fwd_peel(cell, &c.hop[i], &next[i]), 0);
    ck_assert_int_eq(onion_back_originate(cell, &c.hop[3], &hctr[3], body), 0);
    for (unsigned i = 3; i-- > 0;)
        ck_assert_int_eq(onion_back_add(cell, &c.hop[i], &hctr[i]), 0);
    for (size_t i = 0; i < 32; i++) {
        ck_assert_uint_eq(buf[i], CANARY);
        ck_assert_uint_eq(buf[32 + OVL_CELL_PAYLOAD + i], CANARY);
    }
    ck_assert_int_eq(onion_back_unwrap(got, &origin, c.snd, c.n, bnext, cell), 0);
    ck_assert_uint_eq(origin, 3);
    ck_assert_uint_eq(OVL_CELL_PAYLOAD, ONION_TAG + ONION_BODY + ONION_JUNK);
}
END_TEST

START_TEST(bad_args)
{
    struct tchain c;
    uint8_t body[ONION_BODY] = {0}, cell[OVL_CELL_PAYLOAD];
    uint64_t ctr = 0, next[ONION_MAX_HOPS] = {0};
    unsigned origin;

    make_chain(&c, 2, OVL_AEAD_CHACHA20POLY1305);
    ck_assert_int_eq(wrap_at(cell, c.snd, 0, 0, body), OVL_EINVAL);
    ck_assert_int_eq(wrap_at(cell, c.snd, ONION_MAX_HOPS + 1, 0, body), OVL_EINVAL);
    ck_assert_int_eq(onion_fwd_peel(cell, &c.hop[0], NULL), OVL_EINVAL);
    ck_assert_int_eq(onion_back_unwrap(body, &origin, c.snd, 0, next, cell), OVL_EINVAL);
    ctr = UINT64_MAX;
    ck_assert_int_eq(onion_back_originate(cell, &c.hop[0], &ctr, body), OVL_EINVAL);
    ck_assert_int_eq(onion_back_add(cell, &c.hop[0], &ctr), OVL_EINVAL);
    onion_keys_wipe(NULL);
    onion_keys_wipe(&c.hop[0]);
    ck_assert(sodium_is_zero((const uint8_t *)&c.hop[0], sizeof(c.hop[0])));
}
END_TEST

/* A hop's contexts are made on first use and given back when idle; the
 * keys kept make them again, so cells keep opening in both directions. */
START_TEST(hop_keys_idle)
{
    enum ovl_aead_suite s = suites[_i];
    struct tchain c;
    uint8_t body[ONION_BODY], got[ONION_BODY], cell[OVL_CELL_PAYLOAD];
    uint64_t next[ONION_MAX_HOPS] = {0}, hctr[ONION_MAX_HOPS] = {0}, bnext[ONION_MAX_HOPS] = {0};
    unsigned origin;

    if (!suite_ok(s))
        return;
    make_chain(&c, 3, s);
    for (unsigned i = 0; i < 3; i++) {
        ck_assert_uint_eq(c.hop[i].fwd.suite | c.hop[i].back.suite | c.hop[i].orig.suite, 0);
        ck_assert_uint_eq(onion_keys_heap(&c.hop[i]), 0);
    }
    for (unsigned round = 0; round < 3; round++) {
        ovl_random(body, sizeof(body));
        fwd_through(&c, round, next, cell, body);
        back_from(&c, 2, hctr, cell, body);
        ck_assert_int_eq(onion_back_unwrap(got, &origin, c.snd, 3, bnext, cell), 0);
        ck_assert_uint_eq(origin, 2);
        ck_assert_mem_eq(got, body, sizeof(body));
        ck_assert_uint_ne(c.hop[2].fwd.suite, 0);
        for (unsigned i = 0; i < 3; i++)
            onion_keys_idle(&c.hop[i]);
        ck_assert_uint_eq(c.hop[2].fwd.suite | c.hop[2].orig.suite | c.hop[1].back.suite, 0);
        ck_assert_uint_eq(onion_keys_heap(&c.hop[2]), 0);
    }
    /* The sender's contexts are never given back: it keeps no layer keys. */
    onion_keys_idle(&c.snd[0]);
    ck_assert_uint_eq(c.snd[0].fwd.suite, s);
    drop_chain(&c);
}
END_TEST

static Suite *onion_suite(void)
{
    Suite *s = suite_create("onion");
    TCase *tc = tcase_create("setup");
    tcase_add_loop_test(tc, setup_roundtrip, 0, N_SUITES * ONION_MAX_HOPS);
    tcase_add_test(tc, setup_tamper);
    tcase_add_test(tc, setup_foreign_key);
    tcase_add_test(tc, setup_info_checks);
    tcase_add_test(tc, setup_build_rejects);
    suite_add_tcase(s, tc);

    tc = tcase_create("data");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, fwd_roundtrip, 0, N_SUITES * ONION_MAX_HOPS);
    tcase_add_loop_test(tc, fwd_tamper, 0, N_SUITES);
    tcase_add_test(tc, fwd_replay_window_foreign);
    tcase_add_test(tc, fwd_spliced);
    tcase_add_test(tc, fwd_junk_sender_only);
    tcase_add_loop_test(tc, back_roundtrip, 0, N_SUITES * ONION_MAX_HOPS);
    tcase_add_loop_test(tc, back_tamper, 0, N_SUITES);
    tcase_add_test(tc, back_replay_window_foreign);
    tcase_add_test(tc, unlinkable);
    tcase_add_test(tc, cell_bounds);
    tcase_add_test(tc, bad_args);
    tcase_add_loop_test(tc, hop_keys_idle, 0, N_SUITES);
    suite_add_tcase(s, tc);
    return s;
}

OVL_CHECK_MAIN(onion_suite)
