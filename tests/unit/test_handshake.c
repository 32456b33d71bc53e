/* test_handshake.c - the ovl-link-v1 handshake state machine. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cell.h"
#include "core/handshake.h"
#include "lib/bytes.h"
#include "check_main.h"

static bool aes_ok(void)
{
    return (ovl_aead_available() & OVL_AEAD_AES256GCM) != 0;
}

static void new_identity(struct ovl_identity *id)
{
    ck_assert_int_eq(ovl_identity_generate(id), 0);
}

static bool all_zero(const void *p, size_t n)
{
    const uint8_t *b = p;
    uint8_t acc = 0;

    for (size_t i = 0; i < n; i++)
        acc |= b[i];
    return acc == 0;
}

/* Two parties and the messages between them. */
struct pair {
    struct ovl_identity a, b; /* a initiates to b */
    struct handshake hi, hr;
    uint8_t m1[HS_INIT_LEN], m2[HS_RESP_LEN];
    struct hs_keys ki, kr;
};

static void pair_new(struct pair *p)
{
    memset(p, 0, sizeof(*p));
    new_identity(&p->a);
    new_identity(&p->b);
}

/* Run the handshake up to message 1 read; return hs_read_init's result. */
static int pair_run_init(struct pair *p, uint32_t si, uint32_t sr)
{
    ck_assert_int_eq(hs_start_initiator(&p->hi, &p->a, p->b.pk, si), 0);
    ck_assert_int_eq(hs_start_responder(&p->hr, &p->b, sr), 0);
    ck_assert_int_eq(p->hi.state, HS_START);
    ck_assert_int_eq(p->hr.state, HS_WAIT_INIT);
    ck_assert_int_eq(hs_write_init(&p->hi, p->m1), 0);
    ck_assert_int_eq(p->hi.state, HS_WAIT_RESP);
    ck_assert_uint_eq(p->m1[0], FRAME_HS_INIT);
    ck_assert_uint_eq(p->m1[1], OVL_PROTO_VERSION);
    return hs_read_init(&p->hr, p->m1, sizeof(p->m1));
}

/* Run a whole handshake that must succeed. */
static void pair_run(struct pair *p, uint32_t si, uint32_t sr)
{
    ck_assert_int_eq(pair_run_init(p, si, sr), 0);
    ck_assert_int_eq(p->hr.state, HS_READY_RESP);
    ck_assert_mem_eq(p->hr.rs_ed, p->a.pk, OVL_ED25519_PK);
    ck_assert_int_eq(hs_write_resp(&p->hr, p->m2, &p->kr), 0);
    ck_assert_uint_eq(p->m2[0], FRAME_HS_RESP);
    ck_assert_int_eq(hs_read_resp(&p->hi, p->m2, sizeof(p->m2), &p->ki), 0);
}

static void assert_keys_match(const struct pair *p)
{
    ck_assert_mem_eq(p->ki.tx, p->kr.rx, OVL_AEAD_KEY);
    ck_assert_mem_eq(p->ki.rx, p->kr.tx, OVL_AEAD_KEY);
    ck_assert(!ovl_equal(p->ki.tx, p->ki.rx, OVL_AEAD_KEY));
    ck_assert_mem_eq(p->ki.hash, p->kr.hash, OVL_HASH_LEN);
    ck_assert_mem_eq(p->ki.peer_pk, p->b.pk, OVL_ED25519_PK);
    ck_assert_mem_eq(p->kr.peer_pk, p->a.pk, OVL_ED25519_PK);
    ck_assert_int_eq(p->ki.suite, p->kr.suite);
}

START_TEST(test_full_both_ways)
{
    struct pair p;

    pair_new(&p);
    pair_run(&p, OVL_AEAD_ALL, OVL_AEAD_ALL);
    assert_keys_match(&p);
    ck_assert_int_eq(p.hi.state, HS_DONE);
    ck_assert_int_eq(p.hr.state, HS_DONE);
    /* Done means wiped. */
    ck_assert(all_zero(p.hi.s_sk, sizeof(p.hi.s_sk)) && all_zero(p.hi.ck, sizeof(p.hi.ck)));
    ck_assert(all_zero(p.hr.e_sk, sizeof(p.hr.e_sk)) && all_zero(p.hr.h, sizeof(p.hr.h)));

    /* The other direction between the same identities. */
    struct ovl_identity t = p.a;
    p.a = p.b;
    p.b = t;
    struct hs_keys first = p.ki;
    pair_run(&p, OVL_AEAD_ALL, OVL_AEAD_ALL);
    assert_keys_match(&p);
    ck_assert(!ovl_equal(first.tx, p.ki.tx, OVL_AEAD_KEY));
    hs_keys_wipe(&p.ki);
    ck_assert(all_zero(&p.ki, sizeof(p.ki)));
}
END_TEST

static const struct {
    uint32_t si, sr; /* initiator and responder masks */
    int rc;          /* from hs_read_init */
    uint32_t want;   /* chosen suite; 0 = AES when available, else ChaCha */
    bool needs_aes;
} suite_cases[] = {
    {OVL_AEAD_ALL, OVL_AEAD_ALL, 0, 0, false},
    {OVL_AEAD_ALL, OVL_AEAD_CHACHA20POLY1305, 0, OVL_AEAD_CHACHA20POLY1305, false},
    {OVL_AEAD_CHACHA20POLY1305, OVL_AEAD_ALL, 0, OVL_AEAD_CHACHA20POLY1305, false},
    {OVL_AEAD_AES256GCM, OVL_AEAD_ALL, 0, OVL_AEAD_AES256GCM, true},
    {OVL_AEAD_AES256GCM, OVL_AEAD_CHACHA20POLY1305, OVL_EUNSUPP, 0, true},
    {OVL_AEAD_CHACHA20POLY1305, OVL_AEAD_AES256GCM, OVL_EUNSUPP, 0, true},
};

START_TEST(test_suite_choice)
{
    struct pair p;
    int rc;

    if (suite_cases[_i].needs_aes && !aes_ok()) {
        printf("skipping suite case %d: AES-256-GCM not available on this CPU\n", _i);
        return;
    }
    pair_new(&p);
    rc = pair_run_init(&p, suite_cases[_i].si, suite_cases[_i].sr);
    ck_assert_int_eq(rc, suite_cases[_i].rc);
    if (rc != 0) {
        ck_assert_int_eq(p.hr.state, HS_FAILED);
        return;
    }
    ck_assert_int_eq(hs_write_resp(&p.hr, p.m2, &p.kr), 0);
    ck_assert_int_eq(hs_read_resp(&p.hi, p.m2, sizeof(p.m2), &p.ki), 0);
    assert_keys_match(&p);
    uint32_t want = suite_cases[_i].want;
    if (want == 0)
        want = aes_ok() ? OVL_AEAD_AES256GCM : OVL_AEAD_CHACHA20POLY1305;
    ck_assert_uint_eq(p.ki.suite, want);
}
END_TEST

START_TEST(test_start_errors)
{
    struct ovl_identity a, b;
    struct handshake hs;

    new_identity(&a);
    new_identity(&b);
    ck_assert_int_eq(hs_start_initiator(&hs, &a, b.pk, 0), OVL_EINVAL);
    ck_assert_int_eq(hs.state, HS_FAILED);
    ck_assert_int_eq(hs_start_initiator(&hs, &a, b.pk, 1u << 7), OVL_EINVAL);
    ck_assert_int_eq(hs_start_responder(&hs, &a, 0), OVL_EINVAL);
    ck_assert_int_eq(hs_start_initiator(&hs, NULL, b.pk, OVL_AEAD_ALL), OVL_EINVAL);
    ck_assert_int_eq(hs_start_initiator(&hs, &a, NULL, OVL_AEAD_ALL), OVL_EINVAL);
    ck_assert_int_eq(hs_start_responder(&hs, NULL, OVL_AEAD_ALL), OVL_EINVAL);
    ck_assert_int_eq(hs_start_initiator(NULL, &a, b.pk, OVL_AEAD_ALL), OVL_EINVAL);
    ck_assert_int_eq(hs_start_responder(NULL, &a, OVL_AEAD_ALL), OVL_EINVAL);
    hs_wipe(NULL);
    hs_keys_wipe(NULL);
}
END_TEST

/* Damage to a valid message: set byte off to val (if off >= 0) and pass len. */
struct mangle {
    const char *what;
    int off;
    uint8_t val;
    int dlen; /* added to the real length */
    int rc;
};

static const struct mangle bad_m1[] = {
    {"empty", -1, 0, -HS_INIT_LEN, OVL_EPROTO},
    {"one byte", -1, 0, 1 - HS_INIT_LEN, OVL_EPROTO},
    {"truncated", -1, 0, -1, OVL_EPROTO},
    {"oversized", -1, 0, 1, OVL_EPROTO},
    {"type resp", 0, FRAME_HS_RESP, 0, OVL_EPROTO},
    {"type cell", 0, FRAME_CELL, 0, OVL_EPROTO},
    {"version 0", 1, 0, 0, OVL_EPROTO},
    {"version 2", 1, 2, 0, OVL_EPROTO},
    {"reserved 2", 2, 1, 0, OVL_EPROTO},
    {"reserved 3", 3, 0x80, 0, OVL_EPROTO},
    {"zero ephemeral", 4, 0, 0, OVL_ECRYPTO}, /* with bytes 5..35 zeroed below */
};

static const struct mangle bad_m2[] = {
    {"empty", -1, 0, -HS_RESP_LEN, OVL_EPROTO},
    {"one byte", -1, 0, 1 - HS_RESP_LEN, OVL_EPROTO},
    {"truncated", -1, 0, -1, OVL_EPROTO},
    {"oversized", -1, 0, 1, OVL_EPROTO},
    {"message 1 length", -1, 0, HS_INIT_LEN - HS_RESP_LEN, OVL_EPROTO},
    {"type init", 0, FRAME_HS_INIT, 0, OVL_EPROTO},
    {"type cell", 0, FRAME_CELL, 0, OVL_EPROTO},
    {"version 0", 1, 0, 0, OVL_EPROTO},
    {"version 2", 1, 2, 0, OVL_EPROTO},
    {"reserved 2", 2, 1, 0, OVL_EPROTO},
    {"reserved 3", 3, 0x80, 0, OVL_EPROTO},
    {"zero ephemeral", 4, 0, 0, OVL_ECRYPTO},
};

/* Copy msg (len n) into buf with m applied; return the length to pass. */
static size_t apply_mangle(uint8_t *buf, size_t cap, const uint8_t *msg, size_t n,
                           const struct mangle *m)
{
    memset(buf, 0x5a, cap);
    memcpy(buf, msg, n);
    if (m->off >= 0)
        buf[m->off] = m->val;
    if (m->off == 4)
        memset(buf + 4, 0, OVL_X25519_LEN);
    return (size_t)((int)n + m->dlen);
}

START_TEST(test_bad_m1)
{
    struct pair p;
    uint8_t buf[HS_INIT_LEN * 2], out[HS_RESP_LEN];
    size_t len;

    pair_new(&p);
    ck_assert_int_eq(hs_start_initiator(&p.hi, &p.a, p.b.pk, OVL_AEAD_ALL), 0);
    ck_assert_int_eq(hs_start_responder(&p.hr, &p.b, OVL_AEAD_ALL), 0);
    ck_assert_int_eq(hs_write_init(&p.hi, p.m1), 0);
    len = apply_mangle(buf, sizeof(buf), p.m1, sizeof(p.m1), &bad_m1[_i]);
    ck_assert_msg(hs_read_init(&p.hr, buf, len) == bad_m1[_i].rc, "%s", bad_m1[_i].what);
    ck_assert_int_eq(p.hr.state, HS_FAILED);
    ck_assert(all_zero(p.hr.s_sk, sizeof(p.hr.s_sk)));
    /* A failed handshake stays failed, even for the valid message. */
    ck_assert_int_eq(hs_read_init(&p.hr, p.m1, sizeof(p.m1)), OVL_EINVAL);
    ck_assert_int_eq(hs_write_resp(&p.hr, out, &p.kr), OVL_EINVAL);
    ck_assert_int_eq(p.hr.state, HS_FAILED);
}
END_TEST

START_TEST(test_bad_m2)
{
    struct pair p;
    uint8_t buf[HS_INIT_LEN * 2];
    size_t len;

    pair_new(&p);
    ck_assert_int_eq(pair_run_init(&p, OVL_AEAD_ALL, OVL_AEAD_ALL), 0);
    ck_assert_int_eq(hs_write_resp(&p.hr, p.m2, &p.kr), 0);
    len = apply_mangle(buf, sizeof(buf), p.m2, sizeof(p.m2), &bad_m2[_i]);
    ck_assert_msg(hs_read_resp(&p.hi, buf, len, &p.ki) == bad_m2[_i].rc, "%s", bad_m2[_i].what);
    ck_assert_int_eq(p.hi.state, HS_FAILED);
    ck_assert(all_zero(&p.ki, sizeof(p.ki)));
    ck_assert(all_zero(p.hi.e_sk, sizeof(p.hi.e_sk)));
    ck_assert_int_eq(hs_read_resp(&p.hi, p.m2, sizeof(p.m2), &p.ki), OVL_EINVAL);
    ck_assert_int_eq(p.hi.state, HS_FAILED);
}
END_TEST

/* Every single flipped bit of message 1 must make the responder fail. The
 * responder state is copied so that one setup serves every flip. */
START_TEST(test_m1_bitflips)
{
    struct pair p;
    struct handshake fresh;
    uint8_t buf[HS_INIT_LEN];

    pair_new(&p);
    ck_assert_int_eq(hs_start_initiator(&p.hi, &p.a, p.b.pk, OVL_AEAD_ALL), 0);
    ck_assert_int_eq(hs_start_responder(&fresh, &p.b, OVL_AEAD_ALL), 0);
    ck_assert_int_eq(hs_write_init(&p.hi, p.m1), 0);
    for (size_t i = 0; i < HS_INIT_LEN * 8; i++) {
        int rc;

        memcpy(buf, p.m1, sizeof(buf));
        buf[i / 8] ^= (uint8_t)(1u << (i % 8));
        p.hr = fresh;
        rc = hs_read_init(&p.hr, buf, sizeof(buf));
        ck_assert_msg(rc == (i / 8 < HS_HDR_LEN ? OVL_EPROTO : OVL_ECRYPTO), "bit %zu: rc %d", i,
                      rc);
        ck_assert_int_eq(p.hr.state, HS_FAILED);
    }
    p.hr = fresh;
    ck_assert_int_eq(hs_read_init(&p.hr, p.m1, sizeof(p.m1)), 0);
}
END_TEST

START_TEST(test_m2_bitflips)
{
    struct pair p;
    struct handshake waiting;
    uint8_t buf[HS_RESP_LEN];

    pair_new(&p);
    ck_assert_int_eq(pair_run_init(&p, OVL_AEAD_ALL, OVL_AEAD_ALL), 0);
    ck_assert_int_eq(hs_write_resp(&p.hr, p.m2, &p.kr), 0);
    waiting = p.hi;
    for (size_t i = 0; i < HS_RESP_LEN * 8; i++) {
        int rc;

        memcpy(buf, p.m2, sizeof(buf));
        buf[i / 8] ^= (uint8_t)(1u << (i % 8));
        p.hi = waiting;
        rc = hs_read_resp(&p.hi, buf, sizeof(buf), &p.ki);
        ck_assert_msg(rc == (i / 8 < HS_HDR_LEN ? OVL_EPROTO : OVL_ECRYPTO), "bit %zu: rc %d", i,
                      rc);
        ck_assert_int_eq(p.hi.state, HS_FAILED);
    }
    p.hi = waiting;
    ck_assert_int_eq(hs_read_resp(&p.hi, p.m2, sizeof(p.m2), &p.ki), 0);
    assert_keys_match(&p);
}
END_TEST

/* Message 1 made for b does not open at c, even though c holds it whole. */
START_TEST(test_wrong_responder)
{
    struct pair p;
    struct ovl_identity c;
    struct handshake hc;

    pair_new(&p);
    new_identity(&c);
    ck_assert_int_eq(hs_start_initiator(&p.hi, &p.a, p.b.pk, OVL_AEAD_ALL), 0);
    ck_assert_int_eq(hs_write_init(&p.hi, p.m1), 0);
    ck_assert_int_eq(hs_start_responder(&hc, &c, OVL_AEAD_ALL), 0);
    ck_assert_int_eq(hs_read_init(&hc, p.m1, sizeof(p.m1)), OVL_ECRYPTO);
    ck_assert_int_eq(hc.state, HS_FAILED);
}
END_TEST

/* A replayed message 1 is accepted by hs_read_init (there is no clock or
 * replay cache), but the responder's fresh ephemeral makes new keys that
 * only the real initiator could compute. That is why a link treats the
 * peer as authenticated only after a valid CELL_HELLO under those keys. */
START_TEST(test_replay_m1)
{
    struct pair p;
    struct handshake hr2;
    struct hs_keys kr2;
    uint8_t m2b[HS_RESP_LEN];

    pair_new(&p);
    pair_run(&p, OVL_AEAD_ALL, OVL_AEAD_ALL);
    ck_assert_int_eq(hs_start_responder(&hr2, &p.b, OVL_AEAD_ALL), 0);
    ck_assert_int_eq(hs_read_init(&hr2, p.m1, sizeof(p.m1)), 0);
    ck_assert_mem_eq(hr2.rs_ed, p.a.pk, OVL_ED25519_PK);
    ck_assert_int_eq(hs_write_resp(&hr2, m2b, &kr2), 0);
    ck_assert(!ovl_equal(kr2.tx, p.kr.tx, OVL_AEAD_KEY));
    ck_assert(!ovl_equal(kr2.rx, p.kr.rx, OVL_AEAD_KEY));
    ck_assert(!ovl_equal(kr2.rx, p.ki.tx, OVL_AEAD_KEY));
    ck_assert(!ovl_equal(kr2.hash, p.kr.hash, OVL_HASH_LEN));
}
END_TEST

/* The responder's choice must be exactly one offered suite. The test forces
 * a bad choice by editing the responder's state between the two calls. */
START_TEST(test_bad_suite_choice)
{
    struct pair p;

    pair_new(&p);
    ck_assert_int_eq(pair_run_init(&p, OVL_AEAD_CHACHA20POLY1305, OVL_AEAD_ALL), 0);
    p.hr.peer_suites = 0; /* ovl_aead_pick(0) == 0: "no suite" */
    ck_assert_int_eq(hs_write_resp(&p.hr, p.m2, &p.kr), 0);
    ck_assert_int_eq(p.kr.suite, 0);
    ck_assert_int_eq(hs_read_resp(&p.hi, p.m2, sizeof(p.m2), &p.ki), OVL_EPROTO);
    ck_assert_int_eq(p.hi.state, HS_FAILED);

    if (!aes_ok()) {
        printf("skipping unoffered-suite case: AES-256-GCM not available on this CPU\n");
        return;
    }
    pair_new(&p);
    ck_assert_int_eq(pair_run_init(&p, OVL_AEAD_CHACHA20POLY1305, OVL_AEAD_ALL), 0);
    p.hr.peer_suites = OVL_AEAD_AES256GCM;
    ck_assert_int_eq(hs_write_resp(&p.hr, p.m2, &p.kr), 0);
    ck_assert_int_eq(p.kr.suite, OVL_AEAD_AES256GCM);
    ck_assert_int_eq(hs_read_resp(&p.hi, p.m2, sizeof(p.m2), &p.ki), OVL_EPROTO);
}
END_TEST

/* Each call made in a state that does not expect it. */
enum wrong_call { W_WRITE_INIT, W_READ_INIT, W_WRITE_RESP, W_READ_RESP };

static int do_call(struct pair *p, struct handshake *hs, enum wrong_call c)
{
    switch (c) {
    case W_WRITE_INIT:
        return hs_write_init(hs, p->m1);
    case W_READ_INIT:
        return hs_read_init(hs, p->m1, sizeof(p->m1));
    case W_WRITE_RESP:
        return hs_write_resp(hs, p->m2, &p->kr);
    case W_READ_RESP:
        return hs_read_resp(hs, p->m2, sizeof(p->m2), &p->ki);
    }
    return 0;
}

static const struct {
    bool responder; /* call on the responder, else the initiator */
    int steps;      /* 0: fresh; 1: after message 1; 2: done */
    enum wrong_call call;
    enum hs_state after;
} wrong_cases[] = {
    /* clang-format off */
    {false, 0, W_READ_INIT, HS_FAILED},
    {false, 0, W_WRITE_RESP, HS_FAILED},
    {false, 0, W_READ_RESP, HS_FAILED},
    {false, 1, W_WRITE_INIT, HS_FAILED},
    {false, 1, W_READ_INIT, HS_FAILED},
    {false, 2, W_READ_RESP, HS_DONE},
    {false, 2, W_WRITE_INIT, HS_DONE},
    {true, 0, W_WRITE_INIT, HS_FAILED},
    {true, 0, W_WRITE_RESP, HS_FAILED},
    {true, 0, W_READ_RESP, HS_FAILED},
    {true, 1, W_READ_INIT, HS_FAILED},
    {true, 1, W_READ_RESP, HS_FAILED},
    {true, 2, W_WRITE_RESP, HS_DONE},
    {true, 2, W_READ_INIT, HS_DONE},
    /* clang-format on */
};

START_TEST(test_wrong_state)
{
    struct pair p;
    struct handshake *hs;

    pair_new(&p);
    ck_assert_int_eq(hs_start_initiator(&p.hi, &p.a, p.b.pk, OVL_AEAD_ALL), 0);
    ck_assert_int_eq(hs_start_responder(&p.hr, &p.b, OVL_AEAD_ALL), 0);
    if (wrong_cases[_i].steps >= 1) {
        ck_assert_int_eq(hs_write_init(&p.hi, p.m1), 0);
        ck_assert_int_eq(hs_read_init(&p.hr, p.m1, sizeof(p.m1)), 0);
    }
    if (wrong_cases[_i].steps >= 2) {
        ck_assert_int_eq(hs_write_resp(&p.hr, p.m2, &p.kr), 0);
        ck_assert_int_eq(hs_read_resp(&p.hi, p.m2, sizeof(p.m2), &p.ki), 0);
    }
    hs = wrong_cases[_i].responder ? &p.hr : &p.hi;
    ck_assert_int_eq(do_call(&p, hs, wrong_cases[_i].call), OVL_EINVAL);
    ck_assert_int_eq(hs->state, wrong_cases[_i].after);
    /* Nothing works afterwards either. */
    for (int c = W_WRITE_INIT; c <= W_READ_RESP; c++)
        ck_assert_int_eq(do_call(&p, hs, (enum wrong_call)c), OVL_EINVAL);
    ck_assert_int_eq(do_call(&p, NULL, wrong_cases[_i].call), OVL_EINVAL);
}
END_TEST

/* --- An independent initiator built from the primitives (libsodium directly,
 * not the wrappers under test), following the steps in docs/PROTOCOL.md, so
 * that the document and the code agree. --- */

struct spec_state {
    uint8_t h[OVL_HASH_LEN], ck[OVL_HASH_LEN];
};

static void spec_mix(struct spec_state *st, const uint8_t *d, size_t n)
{
    ovl_hash2(st->h, st->h, OVL_HASH_LEN, d, n);
}

static void spec_enc(struct spec_state *st, uint8_t *out, const uint8_t k[32], const uint8_t *in,
                     size_t n)
{
    uint8_t nonce[OVL_AEAD_NONCE] = {0};

    ck_assert_int_eq(crypto_aead_chacha20poly1305_ietf_encrypt(out, NULL, in, n, st->h,
                                                               OVL_HASH_LEN, NULL, nonce, k),
                     0);
    spec_mix(st, out, n + OVL_AEAD_TAG);
}

static void spec_dh(struct spec_state *st, uint8_t *k, const uint8_t *sk, const uint8_t *pk)
{
    uint8_t dh[32];

    ck_assert_int_eq(crypto_scalarmult(dh, sk, pk), 0);
    ovl_kdf2(st->ck, k, st->ck, dh, sizeof(dh));
}

/* An initiator built from the primitives against the real responder;
 * _i = 1 binds both to a transport's value (h = H(h || binding) after the
 * responder's static key). */
START_TEST(test_matches_spec)
{
    struct pair p;
    struct spec_state st;
    uint8_t rs_x[32], s_x[32], e_sk[32], e_pk[32], k[32], k1[32], k2[32], confirm[32];
    uint8_t pl[HS_PAYLOAD_LEN], pl2[HS_PAYLOAD_LEN], m1[HS_INIT_LEN], binding[HS_BIND_LEN];
    const uint8_t prologue[4] = {'o', 'v', 'l', 1};

    pair_new(&p);
    memset(binding, 0xb1, sizeof(binding));
    ck_assert_int_eq(crypto_sign_ed25519_pk_to_curve25519(rs_x, p.b.pk), 0);
    ck_assert_int_eq(crypto_sign_ed25519_sk_to_curve25519(s_x, p.a.sk), 0);
    ovl_hash2(st.h, (const uint8_t *)"ovl-link-v1", 11, NULL, 0);
    memcpy(st.ck, st.h, 32);
    spec_mix(&st, prologue, 4);
    spec_mix(&st, rs_x, 32);
    if (_i)
        spec_mix(&st, binding, sizeof(binding));
    m1[0] = FRAME_HS_INIT;
    m1[1] = 1;
    m1[2] = 0;
    m1[3] = 0;
    spec_mix(&st, m1, 4);
    crypto_box_keypair(e_pk, e_sk);
    memcpy(m1 + 4, e_pk, 32);
    spec_mix(&st, e_pk, 32);
    spec_dh(&st, k, e_sk, rs_x);
    spec_enc(&st, m1 + 36, k, p.a.pk, 32);
    spec_dh(&st, k, s_x, rs_x);
    memset(pl, 0, sizeof(pl));
    st_le32(pl, OVL_AEAD_CHACHA20POLY1305);
    st_le32(pl + 4, 12); /* ratchet every 2^12 cells */
    st_le64(pl + 8, 1700000000000ull);
    spec_enc(&st, m1 + 84, k, pl, sizeof(pl));

    ck_assert_int_eq(hs_start_responder(&p.hr, &p.b, OVL_AEAD_ALL), 0);
    if (_i)
        ck_assert_int_eq(hs_bind(&p.hr, binding), 0);
    ck_assert_int_eq(hs_read_init(&p.hr, m1, sizeof(m1)), 0);
    ck_assert_int_eq(hs_write_resp(&p.hr, p.m2, &p.kr), 0);

    /* Message 2 from the initiator's side. */
    ck_assert_mem_eq(p.m2, "\x02\x01\x00\x00", 4);
    spec_mix(&st, p.m2, 4);
    spec_mix(&st, p.m2 + 4, 32);
    spec_dh(&st, NULL, e_sk, p.m2 + 4);
    spec_dh(&st, k, s_x, p.m2 + 4);
    uint8_t nonce[OVL_AEAD_NONCE] = {0};
    ck_assert_int_eq(crypto_aead_chacha20poly1305_ietf_decrypt(pl2, NULL, NULL, p.m2 + 36, 32, st.h,
                                                               32, nonce, k),
                     0);
    spec_mix(&st, p.m2 + 36, 32);
    ck_assert_uint_eq(ld_le32(pl2), OVL_AEAD_CHACHA20POLY1305);
    ck_assert_uint_eq(ld_le32(pl2 + 4), 12);
    ck_assert(all_zero(pl2 + 8, 8));
    ck_assert_uint_eq(p.kr.rekey_log2, 12);
    ovl_kdf2(k1, k2, st.ck, NULL, 0);
    ck_assert_mem_eq(p.kr.rx, k1, 32);
    ck_assert_mem_eq(p.kr.tx, k2, 32);
    ck_assert_mem_eq(p.kr.hash, st.h, 32);
    ck_assert_mem_eq(p.kr.peer_pk, p.a.pk, 32);
    ck_assert_uint_eq(p.kr.flags, _i ? HS_F_BOUND : 0);
    memset(confirm, 0, sizeof(confirm));
    if (_i)
        ovl_kdf_label(confirm, k1, "ovl-link confirm");
    ck_assert_mem_eq(p.kr.confirm, confirm, 32);
}
END_TEST

/* Both ends bind to a transport's value, or one, or neither; the values
 * are equal or differ (a middlebox holding two connections). */
static const struct {
    bool bind_i, bind_r, differ;
    int rc; /* from hs_read_init */
} bind_cases[] = {
    {false, false, false, 0},          {true, true, false, 0},
    {true, true, true, OVL_ECRYPTO}, /* two connections: two exporters */
    {true, false, false, OVL_ECRYPTO}, {false, true, false, OVL_ECRYPTO},
};

START_TEST(test_bound)
{
    struct pair p;
    uint8_t xi[HS_BIND_LEN], xr[HS_BIND_LEN], confirm[HS_CONFIRM_LEN];
    bool bound = bind_cases[_i].bind_i;

    pair_new(&p);
    randombytes_buf(xi, sizeof(xi));
    memcpy(xr, xi, sizeof(xr));
    if (bind_cases[_i].differ)
        xr[HS_BIND_LEN - 1] ^= 1;
    ck_assert_int_eq(hs_start_initiator(&p.hi, &p.a, p.b.pk, OVL_AEAD_ALL), 0);
    ck_assert_int_eq(hs_start_responder(&p.hr, &p.b, OVL_AEAD_ALL), 0);
    if (bind_cases[_i].bind_i) {
        ck_assert_int_eq(hs_bind(&p.hi, xi), 0);
        ck_assert_int_eq(hs_bind(&p.hi, xi), OVL_EINVAL); /* once */
    }
    if (bind_cases[_i].bind_r)
        ck_assert_int_eq(hs_bind(&p.hr, xr), 0);
    ck_assert_int_eq(hs_write_init(&p.hi, p.m1), 0);
    ck_assert_int_eq(hs_bind(&p.hi, xi), OVL_EINVAL); /* too late */
    ck_assert_int_eq(hs_read_init(&p.hr, p.m1, sizeof(p.m1)), bind_cases[_i].rc);
    if (bind_cases[_i].rc != 0) {
        ck_assert_int_eq(p.hr.state, HS_FAILED);
        return;
    }
    ck_assert_int_eq(hs_write_resp(&p.hr, p.m2, &p.kr), 0);
    ck_assert_int_eq(hs_read_resp(&p.hi, p.m2, sizeof(p.m2), &p.ki), 0);
    assert_keys_match(&p);
    ck_assert_uint_eq(p.ki.flags, bound ? HS_F_BOUND : 0);
    ck_assert_uint_eq(p.kr.flags, p.ki.flags);
    ck_assert_mem_eq(p.ki.confirm, p.kr.confirm, HS_CONFIRM_LEN);
    ck_assert(all_zero(p.ki.confirm, HS_CONFIRM_LEN) == !bound);
    if (bound) { /* from the initiator's sending key, and not that key */
        ovl_kdf_label(confirm, p.ki.tx, "ovl-link confirm");
        ck_assert_mem_eq(p.ki.confirm, confirm, HS_CONFIRM_LEN);
        ck_assert(!ovl_equal(p.ki.confirm, p.ki.tx, HS_CONFIRM_LEN));
    }
}
END_TEST

static void spec_dec(struct spec_state *st, uint8_t *out, const uint8_t k[32], const uint8_t *in,
                     size_t n)
{
    uint8_t nonce[OVL_AEAD_NONCE] = {0};

    ck_assert_int_eq(crypto_aead_chacha20poly1305_ietf_decrypt(out, NULL, NULL, in, n, st->h,
                                                               OVL_HASH_LEN, nonce, k),
                     0);
    spec_mix(st, in, n);
}

/* What the independent responder writes into message 2's suite field, and
 * what the real initiator (offering ChaCha20-Poly1305 only) must say. */
static const struct {
    uint32_t suite;
    uint32_t flags;
    int rc;
} spec_resp_cases[] = {
    {OVL_AEAD_CHACHA20POLY1305, 20, 0},
    {OVL_AEAD_CHACHA20POLY1305, 4, 0},           /* a smaller interval is fine */
    {OVL_AEAD_CHACHA20POLY1305, 0x7700 | 20, 0}, /* unassigned flag bits ignored */
    {OVL_AEAD_CHACHA20POLY1305, 21, OVL_EPROTO}, /* larger than we asked */
    {OVL_AEAD_CHACHA20POLY1305, 3, OVL_EPROTO},  /* below the minimum */
    {OVL_AEAD_CHACHA20POLY1305, 0, OVL_EPROTO},
    {0, 20, OVL_EPROTO},
    {OVL_AEAD_ALL, 20, OVL_EPROTO},       /* two bits */
    {OVL_AEAD_AES256GCM, 20, OVL_EPROTO}, /* not offered */
    {1u << 2, 20, OVL_EPROTO},
    {1u << 31, 20, OVL_EPROTO},
};

/* The real initiator against a responder built from the primitives. */
START_TEST(test_matches_spec_responder)
{
    struct pair p;
    struct spec_state st;
    uint8_t s_x[32], own_x[32], ipk[32], i_x[32], e_sk[32], e_pk[32], k[32], k1[32], k2[32];
    uint8_t pl[HS_PAYLOAD_LEN], m2[HS_RESP_LEN];
    const uint8_t prologue[4] = {'o', 'v', 'l', 1};

    pair_new(&p);
    ck_assert_int_eq(hs_start_initiator(&p.hi, &p.a, p.b.pk, OVL_AEAD_CHACHA20POLY1305), 0);
    ck_assert_int_eq(hs_write_init(&p.hi, p.m1), 0);
    ck_assert_int_eq(crypto_sign_ed25519_sk_to_curve25519(s_x, p.b.sk), 0);
    ck_assert_int_eq(crypto_sign_ed25519_pk_to_curve25519(own_x, p.b.pk), 0);
    ovl_hash2(st.h, (const uint8_t *)"ovl-link-v1", 11, NULL, 0);
    memcpy(st.ck, st.h, 32);
    spec_mix(&st, prologue, 4);
    spec_mix(&st, own_x, 32);
    spec_mix(&st, p.m1, 4);
    spec_mix(&st, p.m1 + 4, 32);
    spec_dh(&st, k, s_x, p.m1 + 4);
    spec_dec(&st, ipk, k, p.m1 + 36, 48);
    ck_assert_mem_eq(ipk, p.a.pk, 32);
    ck_assert_int_eq(crypto_sign_ed25519_pk_to_curve25519(i_x, ipk), 0);
    spec_dh(&st, k, s_x, i_x);
    spec_dec(&st, pl, k, p.m1 + 84, 32);
    ck_assert_uint_eq(ld_le32(pl), OVL_AEAD_CHACHA20POLY1305);
    ck_assert_uint_eq(ld_le32(pl + 4), HS_REKEY_LOG2_DEFAULT);
    ck_assert_uint_gt(ld_le64(pl + 8), 1600000000000ull); /* a plausible time in ms */

    memcpy(m2, "\x02\x01\x00\x00", 4);
    spec_mix(&st, m2, 4);
    crypto_box_keypair(e_pk, e_sk);
    memcpy(m2 + 4, e_pk, 32);
    spec_mix(&st, e_pk, 32);
    spec_dh(&st, NULL, e_sk, p.m1 + 4);
    spec_dh(&st, k, e_sk, i_x);
    memset(pl, 0, sizeof(pl));
    st_le32(pl, spec_resp_cases[_i].suite);
    st_le32(pl + 4, spec_resp_cases[_i].flags);
    spec_enc(&st, m2 + 36, k, pl, sizeof(pl));
    ovl_kdf2(k1, k2, st.ck, NULL, 0);

    ck_assert_int_eq(hs_read_resp(&p.hi, m2, sizeof(m2), &p.ki), spec_resp_cases[_i].rc);
    if (spec_resp_cases[_i].rc != 0) {
        ck_assert_int_eq(p.hi.state, HS_FAILED);
        return;
    }
    ck_assert_mem_eq(p.ki.tx, k1, 32);
    ck_assert_mem_eq(p.ki.rx, k2, 32);
    ck_assert_mem_eq(p.ki.hash, st.h, 32);
    ck_assert_mem_eq(p.ki.peer_pk, p.b.pk, 32);
    ck_assert_uint_eq(p.ki.rekey_log2, spec_resp_cases[_i].flags & 0xff);
}
END_TEST

/* Both ends use the smaller ratchet interval; out-of-range requests fail. */
static const struct {
    unsigned ri, rr; /* requested by initiator, responder (0 = default) */
    unsigned want;
} rekey_cases[] = {
    {0, 0, HS_REKEY_LOG2_DEFAULT}, {8, 30, 8}, {30, 8, 8}, {4, 4, 4}, {32, 32, 32}, {0, 10, 10},
};

START_TEST(test_rekey_agreed)
{
    struct pair p;

    pair_new(&p);
    ck_assert_int_eq(hs_start_initiator(&p.hi, &p.a, p.b.pk, OVL_AEAD_ALL), 0);
    ck_assert_int_eq(hs_start_responder(&p.hr, &p.b, OVL_AEAD_ALL), 0);
    ck_assert_int_eq(hs_set_rekey(&p.hi, 3), OVL_EINVAL);
    ck_assert_int_eq(hs_set_rekey(&p.hi, 33), OVL_EINVAL);
    if (rekey_cases[_i].ri)
        ck_assert_int_eq(hs_set_rekey(&p.hi, rekey_cases[_i].ri), 0);
    if (rekey_cases[_i].rr)
        ck_assert_int_eq(hs_set_rekey(&p.hr, rekey_cases[_i].rr), 0);
    ck_assert_int_eq(hs_write_init(&p.hi, p.m1), 0);
    ck_assert_int_eq(hs_set_rekey(&p.hi, 10), OVL_EINVAL); /* too late */
    ck_assert_int_eq(hs_read_init(&p.hr, p.m1, sizeof(p.m1)), 0);
    ck_assert_int_eq(hs_write_resp(&p.hr, p.m2, &p.kr), 0);
    ck_assert_int_eq(hs_read_resp(&p.hi, p.m2, sizeof(p.m2), &p.ki), 0);
    ck_assert_uint_eq(p.ki.rekey_log2, rekey_cases[_i].want);
    ck_assert_uint_eq(p.kr.rekey_log2, rekey_cases[_i].want);
}
END_TEST

static Suite *handshake_suite(void)
{
    Suite *s = suite_create("handshake");
    TCase *tc = tcase_create("good");

    tcase_add_test(tc, test_full_both_ways);
    tcase_add_loop_test(tc, test_suite_choice, 0, sizeof(suite_cases) / sizeof(suite_cases[0]));
    tcase_add_test(tc, test_start_errors);
    tcase_add_test(tc, test_replay_m1);
    tcase_add_loop_test(tc, test_rekey_agreed, 0, sizeof(rekey_cases) / sizeof(rekey_cases[0]));
    tcase_add_loop_test(tc, test_matches_spec, 0, 2);
    tcase_add_loop_test(tc, test_bound, 0, sizeof(bind_cases) / sizeof(bind_cases[0]));
    tcase_add_loop_test(tc, test_matches_spec_responder, 0,
                        sizeof(spec_resp_cases) / sizeof(spec_resp_cases[0]));
    suite_add_tcase(s, tc);

    tc = tcase_create("hostile");
    tcase_add_loop_test(tc, test_bad_m1, 0, sizeof(bad_m1) / sizeof(bad_m1[0]));
    tcase_add_loop_test(tc, test_bad_m2, 0, sizeof(bad_m2) / sizeof(bad_m2[0]));
    tcase_add_test(tc, test_m1_bitflips);
    tcase_add_test(tc, test_m2_bitflips);
    tcase_add_test(tc, test_wrong_responder);
    tcase_add_test(tc, test_bad_suite_choice);
    tcase_add_loop_test(tc, test_wrong_state, 0, sizeof(wrong_cases) / sizeof(wrong_cases[0]));
    suite_add_tcase(s, tc);
    return s;
}

OVL_CHECK_MAIN(handshake_suite)
