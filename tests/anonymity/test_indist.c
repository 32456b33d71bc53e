/* test_indist.c - cover cells look like real ones (suite "anonymity").
 *
 * A cover cell and a data cell are wrapped by the same onion code; on the
 * wire, and at every hop but the exit, both are 1016-byte cells of
 * ciphertext. This test wraps 4,000 real bodies (DELIVER with a fragment
 * of a message) and 4,000 cover bodies (DROP and LOOP in turn, all zero
 * past the command: a client's drop and loop cover, and a relay's loops,
 * which the client's code sends in its cover-only mode) for a 3-hop
 * chain, and checks that their sizes are equal and that the
 * distributions of their bytes cannot be told apart (chi-square two-sample
 * test over the 256 byte values, p > 0.01). The same test on the bodies
 * themselves (before wrapping) tells them apart at once: it can fail.
 * The same holds one layer down for link padding: a sealed PADDING frame
 * and a sealed chain cell have one size and one byte law.
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "chain/body.h"
#include "chain/onion.h"
#include "core/cell.h"
#include "check_main.h"
#include "stats.h"

#define CELLS 4000
#define HOPS  3

/* Two-sample chi-square over byte values: p that a and b share one law. */
static double same_law(const uint64_t a[256], const uint64_t b[256])
{
    double na = 0, nb = 0, x = 0;
    unsigned df = 0;

    for (int v = 0; v < 256; v++) {
        na += a[v];
        nb += b[v];
    }
    for (int v = 0; v < 256; v++) {
        double t = a[v] + b[v], ea = t * na / (na + nb), eb = t * nb / (na + nb);

        if (t == 0)
            continue;
        x += (a[v] - ea) * (a[v] - ea) / ea + (b[v] - eb) * (b[v] - eb) / eb;
        df++;
    }
    return chi2_p(x, df > 1 ? df - 1 : 1);
}

static void make_keys(struct onion_keys keys[HOPS])
{
    uint8_t pk[HOPS][OVL_X25519_LEN], sk[OVL_X25519_LEN], hdr[ONION_HDR_LEN];
    struct onion_hop_info info[HOPS];
    enum ovl_aead_suite s = (ovl_aead_available() & OVL_AEAD_AES256GCM) ? OVL_AEAD_AES256GCM
                                                                        : OVL_AEAD_CHACHA20POLY1305;

    memset(info, 0, sizeof(info));
    for (unsigned i = 0; i < HOPS; i++) {
        ovl_x25519_keypair(pk[i], sk);
        info[i].type = i + 1 == HOPS ? ONION_HOP_EXIT : ONION_HOP_RELAY;
        info[i].suite = (uint8_t)s;
        info[i].lifetime_s = 600;
        if (info[i].type == ONION_HOP_RELAY)
            ovl_random(info[i].next, sizeof(info[i].next));
    }
    ck_assert_int_eq(onion_setup_build(hdr, (const uint8_t(*)[OVL_X25519_LEN])pk, info, HOPS, keys),
                     0);
}

/* A real body: DELIVER to a random node, a random-length fragment of
 * message bytes that are themselves end-to-end ciphertext. */
static void real_body(uint8_t body[ONION_BODY])
{
    unsigned len = OVL_ED25519_PK + 24 + ovl_random_uniform(BODY_DATA_MAX - 24);

    memset(body, 0, ONION_BODY);
    body[0] = BODY_DELIVER;
    body[2] = (uint8_t)len;
    body[3] = (uint8_t)(len >> 8);
    ovl_random(body + BODY_HDR, len);
}

static void cover_body(uint8_t body[ONION_BODY], uint8_t cmd)
{
    memset(body, 0, ONION_BODY);
    body[0] = cmd;
}

static void count(uint64_t h[256], const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        h[p[i]]++;
}

/* Wrap CELLS real and CELLS cover bodies; p-values of the byte laws of
 * the cells (*p) and of the bodies before wrapping (*p_pt). */
static void draw(struct onion_keys keys[HOPS], double *p, double *p_pt)
{
    uint8_t body[ONION_BODY], cell[OVL_CELL_PAYLOAD];
    uint64_t real[256] = {0}, cover[256] = {0}, real_pt[256] = {0}, cover_pt[256] = {0};

    for (uint64_t i = 0; i < 2 * CELLS; i++) {
        bool is_cover = i % 2;

        if (is_cover)
            cover_body(body, i % 4 == 1 ? BODY_DROP : BODY_LOOP);
        else
            real_body(body);
        count(is_cover ? cover_pt : real_pt, body, ONION_BODY);
        uint64_t ctr[HOPS];

        for (unsigned h = 0; h < HOPS; h++)
            ctr[h] = i;
        ck_assert_int_eq(onion_fwd_wrap(cell, keys, HOPS, ctr, body), 0);
        count(is_cover ? cover : real, cell, sizeof(cell));
    }
    *p = same_law(real, cover);
    *p_pt = same_law(real_pt, cover_pt);
    printf("cells of %d bytes: byte laws real vs cover p = %.3f (bodies before wrapping: p = %g)\n",
           OVL_CELL_PAYLOAD, *p, *p_pt);
}

START_TEST(test_cover_looks_real)
{
    struct onion_keys keys[HOPS];
    double p = 0, p_pt = 1;

    make_keys(keys);
    /* A fair draw fails p > 0.01 one time in a hundred: a second decides. */
    for (int attempt = 0; attempt < 2 && p <= 0.01; attempt++)
        draw(keys, &p, &p_pt);
    ck_assert_msg(p > 0.01, "wrapped cover and real cells differ: p = %g", p);
    ck_assert_msg(p_pt < 1e-6, "the test cannot tell even plaintext bodies apart");
    for (unsigned i = 0; i < HOPS; i++)
        onion_keys_wipe(&keys[i]);
}
END_TEST

/* Seal CELLS padding cells and CELLS real ones (chain_fwd carrying a
 * wrapped onion cell) on one link key; p-values of the byte laws of the
 * sealed frames past the counter (*p) and of the cells before sealing. */
static void draw_link(struct onion_keys keys[HOPS], const struct ovl_aead *link, double *p,
                      double *p_pt)
{
    uint8_t body[ONION_BODY], raw[OVL_CELL_LEN], frame[FRAME_CELL_LEN];
    uint64_t real[256] = {0}, pad[256] = {0}, real_pt[256] = {0}, pad_pt[256] = {0};

    for (uint64_t i = 0; i < 2 * CELLS; i++) {
        bool is_pad = i % 2;
        struct cell c = {.cmd = CELL_PADDING};

        if (!is_pad) {
            uint64_t ctr[HOPS] = {i, i, i};

            real_body(body);
            c.cmd = CELL_CHAIN_FWD;
            c.chain_id = 1 + ovl_random_uniform(UINT32_MAX);
            c.len = OVL_CELL_PAYLOAD;
            ck_assert_int_eq(onion_fwd_wrap(c.payload, keys, HOPS, ctr, body), 0);
        }
        ck_assert_int_eq(cell_encode(raw, &c), 0);
        ck_assert_int_eq(frame_seal(frame, link, i, raw), 0);
        count(is_pad ? pad_pt : real_pt, raw, sizeof(raw));
        count(is_pad ? pad : real, frame + FRAME_CELL_AD, sizeof(frame) - FRAME_CELL_AD);
    }
    *p = same_law(real, pad);
    *p_pt = same_law(real_pt, pad_pt);
    printf("sealed frames of %d bytes: byte laws real vs padding p = %.3f (cells before "
           "sealing: p = %g)\n",
           FRAME_CELL_LEN, *p, *p_pt);
}

/* Link padding is a sealed frame like any other: same size (FRAME_CELL_LEN
 * whatever the command), same byte law past the clear counter. */
START_TEST(test_padding_looks_real)
{
    struct onion_keys keys[HOPS];
    struct ovl_aead link;
    uint8_t key[OVL_AEAD_KEY];
    double p = 0, p_pt = 1;

    make_keys(keys);
    ovl_random(key, sizeof(key));
    ck_assert_int_eq(ovl_aead_init(&link, OVL_AEAD_CHACHA20POLY1305, key), 0);
    for (int attempt = 0; attempt < 2 && p <= 0.01; attempt++)
        draw_link(keys, &link, &p, &p_pt);
    ck_assert_msg(p > 0.01, "sealed padding and real cells differ: p = %g", p);
    ck_assert_msg(p_pt < 1e-6, "the test cannot tell even cells before sealing apart");
    ovl_aead_wipe(&link);
    for (unsigned i = 0; i < HOPS; i++)
        onion_keys_wipe(&keys[i]);
}
END_TEST

static Suite *indist_suite(void)
{
    Suite *s = suite_create("indist");
    TCase *tc = tcase_create("indist");

    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_cover_looks_real);
    tcase_add_test(tc, test_padding_looks_real);
    suite_add_tcase(s, tc);
    return s;
}

OVL_CHECK_MAIN(indist_suite)
