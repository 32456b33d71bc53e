/* test_idesc.c - inbound descriptors of hidden destinations: sign, parse,
 * every field tampered with, what the signer refuses, and the acceptance
 * rules (expired, from the future, another key, stale, replayed), and the
 * bootstrap's hold of them (ihold.h): the newest per node, its caps. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "dir/idesc.h"
#include "dir/ihold.h"
#include "lib/bytes.h"

#include "check_main.h"

#define NOW          1700000000000ull
#define LIFE         (30 * 60 * 1000ull)
#define SEQ          0x0102030405060708ull /* distinct bytes: byte order shows */
#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Offsets of docs/PROTOCOL.md's table, written out so that a change of the
 * layout shows here. */
#define OFF_SEQ       4
#define OFF_PUB       12
#define OFF_EXP       20
#define OFF_ID        28
#define OFF_ONION     60
#define OFF_RELAY(i)  (92 + 48 * (i))
#define OFF_COOKIE(i) (92 + 48 * (i) + 32)
#define DOMAIN_LEN    (sizeof(IDESC_SIG_DOMAIN) - 1)

static void make_id(struct ovl_identity *id, uint8_t seed_byte)
{
    uint8_t seed[OVL_ED25519_SEED];

    memset(seed, seed_byte, sizeof(seed));
    ck_assert_int_eq(ovl_identity_from_seed(id, seed), 0);
}

/* A valid descriptor of id with n introduction relays. */
static void make_idesc(struct idesc *d, const struct ovl_identity *id, unsigned n)
{
    memset(d, 0, sizeof(*d));
    d->suites = OVL_AEAD_ALL;
    d->n_intro = (uint8_t)n;
    d->seq = SEQ;
    d->published_ms = NOW;
    d->expires_ms = NOW + LIFE;
    memcpy(d->id_pk, id->pk, OVL_ED25519_PK);
    memset(d->onion_pk, 0x5a, sizeof(d->onion_pk));
    for (unsigned i = 0; i < n; i++) {
        memset(d->intro[i].relay_pk, 0x10 + (int)i, OVL_ED25519_PK);
        memset(d->intro[i].cookie, 0xc0 + (int)i, IDESC_COOKIE_LEN);
    }
}

/* Sign the body of buf (len bytes with the signature) again, as
 * PROTOCOL.md says: domain string, then every byte before the signature. */
static void resign(uint8_t *buf, size_t len, const struct ovl_identity *id)
{
    uint8_t msg[DOMAIN_LEN + IDESC_MAX_LEN + 64];
    size_t body = len - OVL_SIG_LEN;

    ck_assert_uint_le(body, sizeof(msg) - DOMAIN_LEN);
    memcpy(msg, IDESC_SIG_DOMAIN, DOMAIN_LEN);
    memcpy(msg + DOMAIN_LEN, buf, body);
    ck_assert_int_eq(ovl_sign(id, msg, DOMAIN_LEN + body, buf + body), 0);
}

/* Encode d as idesc_sign would, but without its checks (at most
 * IDESC_MAX_INTRO entries, whatever n_intro says), and sign it with
 * signer, so that the parser can be shown bad values. */
static size_t raw_sign(const struct idesc *d, const struct ovl_identity *signer, uint8_t *out)
{
    unsigned n = d->n_intro < IDESC_MAX_INTRO ? d->n_intro : IDESC_MAX_INTRO;
    size_t len = IDESC_LEN(n);

    out[0] = IDESC_VERSION;
    out[1] = d->flags;
    out[2] = d->suites;
    out[3] = d->n_intro;
    st_le64(out + OFF_SEQ, d->seq);
    st_le64(out + OFF_PUB, d->published_ms);
    st_le64(out + OFF_EXP, d->expires_ms);
    memcpy(out + OFF_ID, d->id_pk, 32);
    memcpy(out + OFF_ONION, d->onion_pk, 32);
    for (unsigned i = 0; i < n; i++) {
        memcpy(out + OFF_RELAY(i), d->intro[i].relay_pk, 32);
        memcpy(out + OFF_COOKIE(i), d->intro[i].cookie, 16);
    }
    resign(out, len, signer);
    return len;
}

START_TEST(idesc_roundtrip)
{
    struct ovl_identity id;
    struct idesc d, back;
    uint8_t buf[IDESC_MAX_LEN + 1];
    unsigned n = (unsigned)_i;
    size_t len = 0, l2 = 7;

    make_id(&id, 1);
    make_idesc(&d, &id, n);
    ck_assert_int_eq(idesc_sign(&d, &id, buf, sizeof(buf), &len), 0);
    ck_assert_uint_eq(len, 92 + 48 * n + 64);
    ck_assert_uint_eq(len, IDESC_LEN(n));
    ck_assert_int_eq(idesc_parse(&back, buf, len), 0);
    ck_assert_mem_eq(&back, &d, sizeof(d));

    /* Where PROTOCOL.md puts each field. */
    ck_assert_uint_eq(buf[0], 1);
    ck_assert_uint_eq(buf[1], 0);
    ck_assert_uint_eq(buf[2], OVL_AEAD_ALL);
    ck_assert_uint_eq(buf[3], n);
    ck_assert_uint_eq(buf[OFF_SEQ], 0x08); /* LE */
    ck_assert_uint_eq(ld_le64(buf + OFF_SEQ), SEQ);
    ck_assert_uint_eq(ld_le64(buf + OFF_PUB), NOW);
    ck_assert_uint_eq(ld_le64(buf + OFF_EXP), NOW + LIFE);
    ck_assert_mem_eq(buf + OFF_ID, id.pk, 32);
    ck_assert_mem_eq(buf + OFF_ONION, d.onion_pk, 32);
    for (unsigned i = 0; i < n; i++) {
        ck_assert_mem_eq(buf + OFF_RELAY(i), d.intro[i].relay_pk, 32);
        ck_assert_mem_eq(buf + OFF_COOKIE(i), d.intro[i].cookie, 16);
    }
    for (unsigned i = n; i < IDESC_MAX_INTRO; i++) /* unused entries stay zero */
        ck_assert_mem_eq(&back.intro[i], &(struct idesc_intro){0}, sizeof(back.intro[i]));

    /* A buffer one byte short is OVL_ETOOBIG, and *len is 0. */
    ck_assert_int_eq(idesc_sign(&d, &id, buf, len - 1, &l2), OVL_ETOOBIG);
    ck_assert_uint_eq(l2, 0);
    ck_assert_int_eq(idesc_sign(&d, &id, buf, len, &l2), 0);
    ck_assert_uint_eq(l2, len);
}
END_TEST

/* The signature covers the domain string and then the body: the same body
 * signed without the domain (as a relay descriptor would be) is refused. */
START_TEST(idesc_domain)
{
    struct ovl_identity id;
    struct idesc d, back;
    uint8_t buf[IDESC_MAX_LEN], msg[DOMAIN_LEN + IDESC_MAX_LEN];
    size_t len = 0, body;

    ck_assert_str_eq(IDESC_SIG_DOMAIN, "ovl-idesc-v1");
    ck_assert_uint_eq(DOMAIN_LEN, 12);
    make_id(&id, 2);
    make_idesc(&d, &id, 2);
    ck_assert_int_eq(idesc_sign(&d, &id, buf, sizeof(buf), &len), 0);
    body = len - OVL_SIG_LEN;
    memcpy(msg, "ovl-idesc-v1", 12);
    memcpy(msg + 12, buf, body);
    ck_assert_int_eq(ovl_verify(id.pk, msg, 12 + body, buf + body), 0);
    ck_assert_int_eq(ovl_verify(id.pk, buf, body, buf + body), OVL_ECRYPTO);

    ck_assert_int_eq(ovl_sign(&id, buf, body, buf + body), 0);
    ck_assert_int_eq(idesc_parse(&back, buf, len), OVL_ECRYPTO);
    ck_assert_uint_eq(back.n_intro, 0);
}
END_TEST

/* One change to a valid four-relay descriptor. */
enum tamper_op {
    T_SET8,   /* buf[off] = val */
    T_SET64,  /* LE 64-bit val at off */
    T_XOR,    /* flip the low bit of buf[off] */
    T_ZERO,   /* n zero bytes at off */
    T_COPY,   /* n bytes from src to off */
    T_LENGTH, /* parse val bytes instead of the encoded length (buffer zero-padded) */
};

static const struct {
    const char *what;
    enum tamper_op op;
    size_t off, n, src;
    uint64_t val;
    bool resign; /* sign the changed body again (a malformed body, validly signed) */
    int want;
} tampers[] = {
    {"version 0", T_SET8, 0, 0, 0, 0, true, OVL_EPROTO},
    {"version 2", T_SET8, 0, 0, 0, 2, true, OVL_EPROTO},
    {"version 255", T_SET8, 0, 0, 0, 255, true, OVL_EPROTO},
    {"flags bit 0", T_SET8, 1, 0, 0, 1, true, OVL_EPROTO},
    {"flags bit 7", T_SET8, 1, 0, 0, 0x80, true, OVL_EPROTO},
    {"no suites", T_SET8, 2, 0, 0, 0, true, OVL_EPROTO},
    {"unknown suite", T_SET8, 2, 0, 0, OVL_AEAD_ALL | 4, true, OVL_EPROTO},
    {"suite bit 7", T_SET8, 2, 0, 0, 0x80 | OVL_AEAD_CHACHA20POLY1305, true, OVL_EPROTO},
    {"one suite", T_SET8, 2, 0, 0, OVL_AEAD_CHACHA20POLY1305, true, 0},
    {"n_intro 0", T_SET8, 3, 0, 0, 0, true, OVL_EPROTO},
    {"n_intro 3 of 4", T_SET8, 3, 0, 0, 3, true, OVL_EPROTO},
    {"n_intro 5", T_SET8, 3, 0, 0, 5, true, OVL_EPROTO},
    {"n_intro 255", T_SET8, 3, 0, 0, 255, true, OVL_EPROTO},
    {"seq, old signature", T_XOR, OFF_SEQ, 0, 0, 0, false, OVL_ECRYPTO},
    {"seq 0, signed", T_SET64, OFF_SEQ, 0, 0, 0, true, 0},
    {"seq max, signed", T_SET64, OFF_SEQ, 0, 0, UINT64_MAX, true, 0},
    {"published, old signature", T_XOR, OFF_PUB, 0, 0, 0, false, OVL_ECRYPTO},
    {"expires, old signature", T_XOR, OFF_EXP, 0, 0, 0, false, OVL_ECRYPTO},
    {"expires = published", T_SET64, OFF_EXP, 0, 0, NOW, true, OVL_EPROTO},
    {"expires < published", T_SET64, OFF_EXP, 0, 0, NOW - 1, true, OVL_EPROTO},
    {"expires 0", T_SET64, OFF_EXP, 0, 0, 0, true, OVL_EPROTO},
    {"life an hour and 1 ms", T_SET64, OFF_EXP, 0, 0, NOW + IDESC_MAX_LIFE_MS + 1, true,
     OVL_EPROTO},
    {"life max", T_SET64, OFF_EXP, 0, 0, UINT64_MAX, true, OVL_EPROTO},
    {"life exactly an hour", T_SET64, OFF_EXP, 0, 0, NOW + IDESC_MAX_LIFE_MS, true, 0},
    {"life 1 ms", T_SET64, OFF_EXP, 0, 0, NOW + 1, true, 0},
    {"id, old signature", T_XOR, OFF_ID, 0, 0, 0, false, OVL_ECRYPTO},
    {"id last byte", T_XOR, OFF_ID + 31, 0, 0, 0, false, OVL_ECRYPTO},
    {"onion key, old signature", T_XOR, OFF_ONION, 0, 0, 0, false, OVL_ECRYPTO},
    {"onion key zero", T_ZERO, OFF_ONION, 32, 0, 0, true, OVL_EPROTO},
    {"relay 0, old signature", T_XOR, OFF_RELAY(0), 0, 0, 0, false, OVL_ECRYPTO},
    {"relay 1, old signature", T_XOR, OFF_RELAY(1), 0, 0, 0, false, OVL_ECRYPTO},
    {"relay 2, old signature", T_XOR, OFF_RELAY(2), 0, 0, 0, false, OVL_ECRYPTO},
    {"relay 3, old signature", T_XOR, OFF_RELAY(3) + 31, 0, 0, 0, false, OVL_ECRYPTO},
    {"relay 0 zero", T_ZERO, OFF_RELAY(0), 32, 0, 0, true, OVL_EPROTO},
    {"relay 1 zero", T_ZERO, OFF_RELAY(1), 32, 0, 0, true, OVL_EPROTO},
    {"relay 2 zero", T_ZERO, OFF_RELAY(2), 32, 0, 0, true, OVL_EPROTO},
    {"relay 3 zero", T_ZERO, OFF_RELAY(3), 32, 0, 0, true, OVL_EPROTO},
    {"relay 0 is the node", T_COPY, OFF_RELAY(0), 32, OFF_ID, 0, true, OVL_EPROTO},
    {"relay 3 is the node", T_COPY, OFF_RELAY(3), 32, OFF_ID, 0, true, OVL_EPROTO},
    {"relay 1 = relay 0", T_COPY, OFF_RELAY(1), 32, OFF_RELAY(0), 0, true, OVL_EPROTO},
    {"relay 3 = relay 0", T_COPY, OFF_RELAY(3), 32, OFF_RELAY(0), 0, true, OVL_EPROTO},
    {"relay 3 = relay 2", T_COPY, OFF_RELAY(3), 32, OFF_RELAY(2), 0, true, OVL_EPROTO},
    {"relay 2 = relay 1", T_COPY, OFF_RELAY(2), 32, OFF_RELAY(1), 0, true, OVL_EPROTO},
    {"cookie 0, old signature", T_XOR, OFF_COOKIE(0), 0, 0, 0, false, OVL_ECRYPTO},
    {"cookie 1, old signature", T_XOR, OFF_COOKIE(1), 0, 0, 0, false, OVL_ECRYPTO},
    {"cookie 2, old signature", T_XOR, OFF_COOKIE(2), 0, 0, 0, false, OVL_ECRYPTO},
    {"cookie 3, old signature", T_XOR, OFF_COOKIE(3) + 15, 0, 0, 0, false, OVL_ECRYPTO},
    {"cookie 0 zero", T_ZERO, OFF_COOKIE(0), 16, 0, 0, true, OVL_EPROTO},
    {"cookie 1 zero", T_ZERO, OFF_COOKIE(1), 16, 0, 0, true, OVL_EPROTO},
    {"cookie 2 zero", T_ZERO, OFF_COOKIE(2), 16, 0, 0, true, OVL_EPROTO},
    {"cookie 3 zero", T_ZERO, OFF_COOKIE(3), 16, 0, 0, true, OVL_EPROTO},
    {"cookie 1 = cookie 0", T_COPY, OFF_COOKIE(1), 16, OFF_COOKIE(0), 0, true, OVL_EPROTO},
    {"cookie 3 = cookie 0", T_COPY, OFF_COOKIE(3), 16, OFF_COOKIE(0), 0, true, OVL_EPROTO},
    {"cookie 3 = cookie 2", T_COPY, OFF_COOKIE(3), 16, OFF_COOKIE(2), 0, true, OVL_EPROTO},
    {"cookie 2 = cookie 1", T_COPY, OFF_COOKIE(2), 16, OFF_COOKIE(1), 0, true, OVL_EPROTO},
    {"signature R", T_XOR, IDESC_MAX_LEN - 64, 0, 0, 0, false, OVL_ECRYPTO},
    {"signature S", T_XOR, IDESC_MAX_LEN - 1, 0, 0, 0, false, OVL_ECRYPTO},
    {"signature S low", T_XOR, IDESC_MAX_LEN - 32, 0, 0, 0, false, OVL_ECRYPTO},
    {"signature zero", T_ZERO, IDESC_MAX_LEN - 64, 64, 0, 0, false, OVL_ECRYPTO},
    {"truncated by 1", T_LENGTH, 0, 0, 0, IDESC_MAX_LEN - 1, false, OVL_EPROTO},
    {"truncated by an entry", T_LENGTH, 0, 0, 0, IDESC_LEN(3), false, OVL_EPROTO},
    {"signature missing", T_LENGTH, 0, 0, 0, IDESC_MAX_LEN - 64, false, OVL_EPROTO},
    {"empty", T_LENGTH, 0, 0, 0, 0, false, OVL_EPROTO},
    {"extended by 1", T_LENGTH, 0, 0, 0, IDESC_MAX_LEN + 1, false, OVL_EPROTO},
    {"extended by an entry", T_LENGTH, 0, 0, 0, IDESC_LEN(5), false, OVL_EPROTO},
};

START_TEST(idesc_tamper)
{
    struct ovl_identity id;
    struct idesc d, back;
    uint8_t buf[IDESC_LEN(5)] = {0};
    size_t len = 0;
    int rc;

    make_id(&id, 3);
    make_idesc(&d, &id, IDESC_MAX_INTRO);
    ck_assert_int_eq(idesc_sign(&d, &id, buf, sizeof(buf), &len), 0);
    ck_assert_uint_eq(len, IDESC_MAX_LEN);
    switch (tampers[_i].op) {
    case T_SET8:
        buf[tampers[_i].off] = (uint8_t)tampers[_i].val;
        break;
    case T_SET64:
        st_le64(buf + tampers[_i].off, tampers[_i].val);
        break;
    case T_XOR:
        buf[tampers[_i].off] ^= 1;
        break;
    case T_ZERO:
        memset(buf + tampers[_i].off, 0, tampers[_i].n);
        break;
    case T_COPY:
        memcpy(buf + tampers[_i].off, buf + tampers[_i].src, tampers[_i].n);
        break;
    case T_LENGTH:
        len = (size_t)tampers[_i].val;
        break;
    }
    if (tampers[_i].resign)
        resign(buf, len, &id);
    rc = idesc_parse(&back, buf, len);
    ck_assert_msg(rc == tampers[_i].want, "%s: %d, want %d", tampers[_i].what, rc,
                  tampers[_i].want);
    if (rc != 0)
        ck_assert_mem_eq(&back, &(struct idesc){0}, sizeof(back)); /* nothing of it kept */
}
END_TEST

/* Every bit of a two-relay descriptor matters. */
START_TEST(idesc_bitflip)
{
    struct ovl_identity id;
    struct idesc d;
    uint8_t buf[IDESC_MAX_LEN];
    size_t len = 0;

    make_id(&id, 4);
    make_idesc(&d, &id, 2);
    ck_assert_int_eq(idesc_sign(&d, &id, buf, sizeof(buf), &len), 0);
    for (size_t i = 0; i < len; i++) {
        for (int bit = 0; bit < 8; bit++) {
            buf[i] ^= (uint8_t)(1u << bit);
            int rc = idesc_parse(&d, buf, len);
            ck_assert_msg(rc == OVL_EPROTO || rc == OVL_ECRYPTO, "byte %zu bit %d: %d", i, bit, rc);
            ck_assert_uint_eq(d.n_intro, 0);
            buf[i] ^= (uint8_t)(1u << bit);
        }
    }
    ck_assert_int_eq(idesc_parse(&d, buf, len), 0);
}
END_TEST

/* Every shorter length, in a buffer of exactly that size (ASan sees any
 * read past it), and every longer one up to the largest descriptor. */
START_TEST(idesc_lengths)
{
    struct ovl_identity id;
    struct idesc d;
    uint8_t buf[IDESC_MAX_LEN + 64] = {0};
    unsigned n = (unsigned)_i;
    size_t len = 0;

    make_id(&id, 5);
    make_idesc(&d, &id, n);
    ck_assert_int_eq(idesc_sign(&d, &id, buf, sizeof(buf), &len), 0);
    for (size_t l = 0; l < len; l++) {
        uint8_t *copy = malloc(l ? l : 1);
        memcpy(copy, buf, l);
        ck_assert_msg(idesc_parse(&d, copy, l) == OVL_EPROTO, "n %u len %zu", n, l);
        free(copy);
    }
    for (size_t l = len + 1; l < sizeof(buf); l++)
        ck_assert_msg(idesc_parse(&d, buf, l) == OVL_EPROTO, "n %u len %zu", n, l);
    ck_assert_int_eq(idesc_parse(&d, NULL, len), OVL_EPROTO);
    ck_assert_int_eq(idesc_parse(NULL, buf, len), OVL_EINVAL);
    ck_assert_int_eq(idesc_parse(&d, buf, len), 0);
}
END_TEST

/* ---- what the signer refuses, and the parser too -------------------------- */

static void bad_flags(struct idesc *d)
{
    d->flags = 1;
}
static void bad_flags_high(struct idesc *d)
{
    d->flags = 0x80;
}
static void bad_no_suites(struct idesc *d)
{
    d->suites = 0;
}
static void bad_suite(struct idesc *d)
{
    d->suites = OVL_AEAD_ALL | 4;
}
static void bad_no_intro(struct idesc *d)
{
    d->n_intro = 0;
}
static void bad_five_intro(struct idesc *d)
{
    d->n_intro = IDESC_MAX_INTRO + 1;
}
static void bad_life_zero(struct idesc *d)
{
    d->expires_ms = d->published_ms;
}
static void bad_life_negative(struct idesc *d)
{
    d->expires_ms = d->published_ms - 1;
}
static void bad_life_long(struct idesc *d)
{
    d->expires_ms = d->published_ms + IDESC_MAX_LIFE_MS + 1;
}
static void bad_onion_zero(struct idesc *d)
{
    memset(d->onion_pk, 0, sizeof(d->onion_pk));
}
static void bad_relay_zero(struct idesc *d)
{
    memset(d->intro[2].relay_pk, 0, OVL_ED25519_PK);
}
static void bad_relay_self(struct idesc *d)
{
    memcpy(d->intro[1].relay_pk, d->id_pk, OVL_ED25519_PK);
}
static void bad_relay_twice(struct idesc *d)
{
    d->intro[3] = d->intro[0];
    d->intro[3].cookie[0] ^= 1; /* only the relay repeats */
}
static void bad_cookie_zero(struct idesc *d)
{
    memset(d->intro[3].cookie, 0, IDESC_COOKIE_LEN);
}
static void bad_cookie_twice(struct idesc *d)
{
    memcpy(d->intro[2].cookie, d->intro[1].cookie, IDESC_COOKIE_LEN);
}

static const struct {
    const char *what;
    void (*spoil)(struct idesc *d);
} bad_fields[] = {
    {"flags bit 0", bad_flags},
    {"flags bit 7", bad_flags_high},
    {"no suites", bad_no_suites},
    {"unknown suite", bad_suite},
    {"no relay", bad_no_intro},
    {"five relays", bad_five_intro},
    {"expires = published", bad_life_zero},
    {"expires < published", bad_life_negative},
    {"life over an hour", bad_life_long},
    {"zero onion key", bad_onion_zero},
    {"zero relay", bad_relay_zero},
    {"relay is the node", bad_relay_self},
    {"relay twice", bad_relay_twice},
    {"zero cookie", bad_cookie_zero},
    {"cookie twice", bad_cookie_twice},
};

/* Field values idesc_sign refuses (OVL_EINVAL) and idesc_parse refuses
 * too (OVL_EPROTO, even under a valid signature). */
START_TEST(idesc_bad_fields)
{
    struct ovl_identity id;
    struct idesc d, back;
    uint8_t buf[IDESC_MAX_LEN];
    size_t len = 1;

    make_id(&id, 6);
    make_idesc(&d, &id, IDESC_MAX_INTRO);
    bad_fields[_i].spoil(&d);
    ck_assert_msg(idesc_sign(&d, &id, buf, sizeof(buf), &len) == OVL_EINVAL, "signed: %s",
                  bad_fields[_i].what);
    ck_assert_uint_eq(len, 0);
    len = raw_sign(&d, &id, buf);
    ck_assert_msg(idesc_parse(&back, buf, len) == OVL_EPROTO, "parsed: %s", bad_fields[_i].what);
}
END_TEST

/* Only the node's own key signs; a descriptor signed by another key is
 * refused on its signature; missing arguments are refused. */
START_TEST(idesc_wrong_signer)
{
    struct ovl_identity id, other;
    struct idesc d, back;
    uint8_t buf[IDESC_MAX_LEN];
    size_t len = 0;

    make_id(&id, 7);
    make_id(&other, 8);
    make_idesc(&d, &id, 1);
    ck_assert_int_eq(idesc_sign(&d, &other, buf, sizeof(buf), &len), OVL_EINVAL);
    ck_assert_uint_eq(len, 0);
    len = raw_sign(&d, &other, buf);
    ck_assert_int_eq(idesc_parse(&back, buf, len), OVL_ECRYPTO);
    ck_assert_uint_eq(back.n_intro, 0);

    ck_assert_int_eq(idesc_sign(NULL, &id, buf, sizeof(buf), &len), OVL_EINVAL);
    ck_assert_int_eq(idesc_sign(&d, NULL, buf, sizeof(buf), &len), OVL_EINVAL);
    ck_assert_int_eq(idesc_sign(&d, &id, NULL, sizeof(buf), &len), OVL_EINVAL);
    ck_assert_int_eq(idesc_sign(&d, &id, buf, sizeof(buf), NULL), OVL_EINVAL);
    ck_assert_int_eq(idesc_sign(&d, &id, buf, sizeof(buf), &len), 0);
    ck_assert_int_eq(idesc_parse(&back, buf, len), 0);
}
END_TEST

/* ---- acceptance ----------------------------------------------------------- */

static const struct {
    const char *what;
    bool other_key;
    uint64_t now_ms, have_seq;
    bool have_any;
    enum idesc_verdict want;
} accepts[] = {
    {"first one, at publication", false, NOW, 0, false, IDESC_OK},
    {"first one, have_seq ignored", false, NOW, UINT64_MAX, false, IDESC_OK},
    {"newer seq", false, NOW, SEQ - 1, true, IDESC_OK},
    {"much newer seq", false, NOW, 0, true, IDESC_OK},
    {"equal seq: replay", false, NOW, SEQ, true, IDESC_REPLAY},
    {"older seq: stale", false, NOW, SEQ + 1, true, IDESC_STALE},
    {"much older seq", false, NOW, UINT64_MAX, true, IDESC_STALE},
    {"last ms before expiry", false, NOW + LIFE - 1, 0, false, IDESC_OK},
    {"at expiry", false, NOW + LIFE, 0, false, IDESC_EXPIRED},
    {"long expired", false, UINT64_MAX, 0, false, IDESC_EXPIRED},
    {"published at the skew allowance", false, NOW - IDESC_SKEW_MS, 0, false, IDESC_OK},
    {"published past the skew allowance", false, NOW - IDESC_SKEW_MS - 1, 0, false, IDESC_FUTURE},
    {"clock at zero", false, 0, 0, false, IDESC_FUTURE},
    {"another key", true, NOW, 0, false, IDESC_OTHER_KEY},
    {"another key, expired too", true, NOW + LIFE, 0, false, IDESC_OTHER_KEY},
    {"expired and stale", false, NOW + LIFE, SEQ + 1, true, IDESC_EXPIRED},
    {"future and replayed", false, 0, SEQ, true, IDESC_FUTURE},
};

START_TEST(idesc_accept_rules)
{
    struct ovl_identity id, other;
    struct idesc d, back;
    uint8_t buf[IDESC_MAX_LEN];
    size_t len = 0;
    enum idesc_verdict v;

    make_id(&id, 9);
    make_id(&other, 10);
    make_idesc(&d, &id, 3);
    ck_assert_int_eq(idesc_sign(&d, &id, buf, sizeof(buf), &len), 0);
    ck_assert_int_eq(idesc_parse(&back, buf, len), 0);
    v = idesc_accept(&back, accepts[_i].other_key ? other.pk : id.pk, accepts[_i].now_ms,
                     accepts[_i].have_seq, accepts[_i].have_any);
    ck_assert_msg(v == accepts[_i].want, "%s: %s, want %s", accepts[_i].what, idesc_verdict_name(v),
                  idesc_verdict_name(accepts[_i].want));
}
END_TEST

/* Extremes of the clock and the counter, and the verdicts' names. */
START_TEST(idesc_accept_edges)
{
    struct ovl_identity id;
    struct idesc d;
    const char *names[IDESC_VERDICTS];

    make_id(&id, 11);
    make_idesc(&d, &id, 1);
    d.seq = UINT64_MAX;
    ck_assert_int_eq(idesc_accept(&d, id.pk, NOW, UINT64_MAX, true), IDESC_REPLAY);
    ck_assert_int_eq(idesc_accept(&d, id.pk, NOW, UINT64_MAX - 1, true), IDESC_OK);
    d.seq = 0;
    ck_assert_int_eq(idesc_accept(&d, id.pk, NOW, 0, true), IDESC_REPLAY);
    ck_assert_int_eq(idesc_accept(&d, id.pk, NOW, 0, false), IDESC_OK);

    /* Published at the top of the clock: no sum wraps into acceptance. */
    d.published_ms = UINT64_MAX - 10;
    d.expires_ms = UINT64_MAX;
    ck_assert_int_eq(idesc_accept(&d, id.pk, NOW, 0, false), IDESC_FUTURE);
    ck_assert_int_eq(idesc_accept(&d, id.pk, UINT64_MAX - IDESC_SKEW_MS, 0, false), IDESC_OK);
    ck_assert_int_eq(idesc_accept(&d, id.pk, UINT64_MAX - 1, 0, false), IDESC_OK);

    ck_assert_int_eq(idesc_accept(NULL, id.pk, NOW, 0, false), IDESC_OTHER_KEY);
    ck_assert_int_eq(idesc_accept(&d, NULL, NOW, 0, false), IDESC_OTHER_KEY);

    for (int i = 0; i < IDESC_VERDICTS; i++) {
        names[i] = idesc_verdict_name((enum idesc_verdict)i);
        ck_assert_str_ne(names[i], "unknown");
        for (int j = 0; j < i; j++)
            ck_assert_str_ne(names[i], names[j]);
    }
    ck_assert_str_eq(idesc_verdict_name(IDESC_OK), "ok");
    ck_assert_str_eq(idesc_verdict_name(IDESC_VERDICTS), "unknown");
}
END_TEST

/* ---- the bootstrap's hold (ihold.h) ----------------------------------- */

static const uint8_t peer_a[OVL_ED25519_PK] = {0xa1}, peer_b[OVL_ED25519_PK] = {0xb2},
                     peer_c[OVL_ED25519_PK] = {0xc3};

/* A signed descriptor of the node seeded seed_byte with seq, published at
 * pub: parsed into *in, its bytes in buf (*len). */
static void hold_desc(uint8_t seed_byte, uint64_t seq, uint64_t pub, struct idesc *in, uint8_t *buf,
                      size_t *len)
{
    struct ovl_identity id;
    struct idesc d;

    make_id(&id, seed_byte);
    make_idesc(&d, &id, 2);
    d.seq = seq;
    d.published_ms = pub;
    d.expires_ms = pub + LIFE;
    ck_assert_int_eq(idesc_sign(&d, &id, buf, IDESC_MAX_LEN, len), 0);
    ck_assert_int_eq(idesc_parse(in, buf, *len), 0);
    ovl_identity_wipe(&id);
}

/* Put the descriptor of node seed_byte (seq, published at pub) from peer
 * by at wall; return ihold_put's result and its verdict in *v. */
static int hold_put(struct ihold *h, uint8_t seed_byte, uint64_t seq, uint64_t pub,
                    const uint8_t *by, uint64_t wall, enum idesc_verdict *v)
{
    uint8_t buf[IDESC_MAX_LEN];
    struct idesc in;
    size_t len;

    hold_desc(seed_byte, seq, pub, &in, buf, &len);
    return ihold_put(h, &in, buf, len, by, wall, v);
}

/* The newest per node is kept with its bytes; the same seq, an older one,
 * an expired one and one from the future are refused and change nothing. */
START_TEST(ihold_newest)
{
    uint8_t buf[IDESC_MAX_LEN];
    const struct ihold_ent *e;
    enum idesc_verdict v;
    struct ihold *h;
    struct idesc in;
    size_t len;

    ck_assert_int_eq(ihold_new(0, &h), OVL_EINVAL);
    ck_assert_ptr_null(h);
    ck_assert_int_eq(ihold_new(8, &h), 0);
    hold_desc(20, 5, NOW, &in, buf, &len);
    ck_assert_int_eq(ihold_put(h, &in, buf, len, peer_a, NOW, &v), 0);
    ck_assert_int_eq(v, IDESC_OK);
    ck_assert_uint_eq(ihold_count(h), 1);
    e = ihold_get(h, in.id_pk, NOW);
    ck_assert_ptr_nonnull(e);
    ck_assert_uint_eq(e->raw_len, len);
    ck_assert_mem_eq(e->raw, buf, len);
    ck_assert_uint_eq(e->seq, 5);
    ck_assert_ptr_null(ihold_get(h, peer_a, NOW));
    ck_assert_int_eq(ihold_put(h, &in, buf, len, peer_b, NOW, &v), OVL_EPERM);
    ck_assert_int_eq(v, IDESC_REPLAY);
    ck_assert_int_eq(hold_put(h, 20, 4, NOW, peer_a, NOW, &v), OVL_EPERM);
    ck_assert_int_eq(v, IDESC_STALE);
    ck_assert_int_eq(hold_put(h, 20, 9, NOW - LIFE, peer_a, NOW, &v), OVL_EPERM);
    ck_assert_int_eq(v, IDESC_EXPIRED);
    ck_assert_int_eq(hold_put(h, 20, 9, NOW + IDESC_SKEW_MS + 1, peer_a, NOW, &v), OVL_EPERM);
    ck_assert_int_eq(v, IDESC_FUTURE);
    ck_assert_mem_eq(ihold_get(h, in.id_pk, NOW)->raw, buf, len); /* unchanged */
    /* a newer one replaces it, from any peer */
    ck_assert_int_eq(hold_put(h, 20, 6, NOW + 1000, peer_b, NOW + 1000, &v), 0);
    ck_assert_uint_eq(ihold_get(h, in.id_pk, NOW + 1000)->seq, 6);
    ck_assert_uint_eq(ihold_count(h), 1);
    /* served until it expires, dropped then; an older one is taken again
     * once nothing is held (it is judged against nothing) */
    ck_assert_ptr_null(ihold_get(h, in.id_pk, NOW + 1000 + LIFE));
    ck_assert_uint_eq(ihold_expire(h, NOW + 1000 + LIFE - 1), 0);
    ck_assert_uint_eq(ihold_expire(h, NOW + 1000 + LIFE), 1);
    ck_assert_uint_eq(ihold_count(h), 0);
    ck_assert_int_eq(hold_put(h, 20, 1, NOW + LIFE, peer_a, NOW + LIFE, &v), 0);
    ck_assert_int_eq(ihold_put(NULL, &in, buf, len, peer_a, NOW, &v), OVL_EINVAL);
    ck_assert_int_eq(ihold_put(h, &in, buf, IDESC_MIN_LEN - 1, peer_a, NOW, &v), OVL_EINVAL);
    ck_assert_int_eq(ihold_put(h, &in, buf, len, NULL, NOW, &v), OVL_EINVAL);
    ihold_free(h);
    ihold_free(NULL);
}
END_TEST

/* At most max nodes, at most max / 2 made by one peer; newer descriptors
 * of a held node do not count; expired ones make room. */
START_TEST(ihold_caps)
{
    enum idesc_verdict v;
    struct ihold *h;

    ck_assert_int_eq(ihold_new(4, &h), 0);
    ck_assert_int_eq(hold_put(h, 30, 1, NOW, peer_a, NOW, &v), 0);
    ck_assert_int_eq(hold_put(h, 31, 1, NOW, peer_a, NOW, &v), 0);
    ck_assert_int_eq(hold_put(h, 32, 1, NOW, peer_a, NOW, &v), OVL_ENOMEM); /* a's share */
    ck_assert_int_eq(v, IDESC_OK);
    ck_assert_int_eq(hold_put(h, 30, 2, NOW, peer_a, NOW, &v), 0); /* a newer one: in place */
    ck_assert_int_eq(hold_put(h, 32, 1, NOW + 10, peer_b, NOW, &v), 0);
    ck_assert_int_eq(hold_put(h, 31, 2, NOW, peer_b, NOW, &v), 0); /* still a's */
    ck_assert_int_eq(hold_put(h, 33, 1, NOW + 10, peer_b, NOW, &v), 0);
    ck_assert_uint_eq(ihold_count(h), 4);
    ck_assert_int_eq(hold_put(h, 34, 1, NOW, peer_c, NOW, &v), OVL_ENOMEM); /* all */
    ck_assert_uint_eq(ihold_count(h), 4);
    /* a's two expire first (published earlier): a new node takes their room */
    ck_assert_int_eq(hold_put(h, 34, 1, NOW + LIFE, peer_a, NOW + LIFE, &v), 0);
    ck_assert_uint_eq(ihold_count(h), 3);
    ck_assert_ptr_null(ihold_get(h, peer_a, NOW + LIFE));
    ihold_free(h);
}
END_TEST

static Suite *idesc_suite(void)
{
    Suite *s = suite_create("idesc");
    TCase *tc = tcase_create("format");
    tcase_add_loop_test(tc, idesc_roundtrip, 1, IDESC_MAX_INTRO + 1);
    tcase_add_test(tc, idesc_domain);
    tcase_add_loop_test(tc, idesc_tamper, 0, (int)ARRAY_LEN(tampers));
    tcase_add_test(tc, idesc_bitflip);
    tcase_add_loop_test(tc, idesc_lengths, 1, IDESC_MAX_INTRO + 1);
    tcase_add_loop_test(tc, idesc_bad_fields, 0, (int)ARRAY_LEN(bad_fields));
    tcase_add_test(tc, idesc_wrong_signer);
    suite_add_tcase(s, tc);

    tc = tcase_create("accept");
    tcase_add_loop_test(tc, idesc_accept_rules, 0, (int)ARRAY_LEN(accepts));
    tcase_add_test(tc, idesc_accept_edges);
    suite_add_tcase(s, tc);

    tc = tcase_create("hold");
    tcase_add_test(tc, ihold_newest);
    tcase_add_test(tc, ihold_caps);
    suite_add_tcase(s, tc);
    return s;
}

OVL_CHECK_MAIN(idesc_suite)
