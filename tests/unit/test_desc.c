/* test_desc.c - descriptors (sign, parse, every malformation, exit
 * policies) and the bootstrap's signed documents (lists and chains). */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "dir/desc.h"
#include "dir/dirmsg.h"
#include "lib/bytes.h"

#include "check_main.h"

#define NOW          1700000000000ull
#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

static void make_id(struct ovl_identity *id, uint8_t seed_byte)
{
    uint8_t seed[OVL_ED25519_SEED];

    memset(seed, seed_byte, sizeof(seed));
    ck_assert_int_eq(ovl_identity_from_seed(id, seed), 0);
}

/* A valid descriptor of id with the first n of uris. */
static void make_desc(struct desc *d, const struct ovl_identity *id, uint8_t flags,
                      const char *const *uris, unsigned n)
{
    memset(d, 0, sizeof(*d));
    d->flags = flags;
    d->suites = OVL_AEAD_ALL;
    d->n_uris = (uint8_t)n;
    d->published_ms = NOW;
    d->expires_ms = NOW + 3600000;
    memcpy(d->id_pk, id->pk, OVL_ED25519_PK);
    memset(d->onion_pk, 0x5a, sizeof(d->onion_pk));
    d->onion_pk[0] = id->pk[0];
    d->capacity = 0x01020304; /* distinct bytes: byte order shows */
    for (unsigned i = 0; i < n; i++)
        strcpy(d->uris[i], uris[i]);
}

/* Encode and sign d (as desc_sign would, but without its checks) so that
 * the parser can be shown bad values. */
static size_t raw_sign(const struct desc *d, const char *const *uris, unsigned n,
                       const struct ovl_identity *signer, uint8_t *out)
{
    size_t pos = DESC_FIXED_LEN;

    out[0] = DESC_VERSION;
    out[1] = d->flags;
    out[2] = d->suites;
    out[3] = d->n_uris;
    st_le64(out + 4, d->published_ms);
    st_le64(out + 12, d->expires_ms);
    memcpy(out + 20, d->id_pk, 32);
    memcpy(out + 52, d->onion_pk, 32);
    st_le32(out + 84, d->capacity);
    for (unsigned i = 0; i < n; i++) {
        size_t l = strlen(uris[i]);
        out[pos++] = (uint8_t)l;
        memcpy(out + pos, uris[i], l);
        pos += l;
    }
    ck_assert_int_eq(ovl_sign(signer, out, pos, out + pos), 0);
    return pos + OVL_SIG_LEN;
}

/* Re-sign the body of a descriptor or document after a test changed it. */
static void resign(uint8_t *buf, size_t len, const struct ovl_identity *id)
{
    ck_assert_int_eq(ovl_sign(id, buf, len - OVL_SIG_LEN, buf + len - OVL_SIG_LEN), 0);
}

static char long_uri[256]; /* 255 bytes: the longest a length byte allows */

static void fill_long_uri(void)
{
    /* tcp:// + 4 labels of 59 + 3 dots = 239... padded to 255 with the port */
    strcpy(long_uri, "tcp://");
    for (int l = 0; l < 4; l++) {
        if (l)
            strcat(long_uri, ".");
        size_t at = strlen(long_uri);
        memset(long_uri + at, 'a' + l, 60);
        long_uri[at + 60] = '\0';
    }
    strcat(long_uri, ":65535");
    size_t have = strlen(long_uri); /* 6 + 243 + 6 = 255 */
    ck_assert_uint_eq(have, 255);
}

static const char *const uri_sets[][DESC_MAX_URIS] = {
    {"tcp://127.0.0.1:7001"},
    {"tcp://[::1]:7001", "tcp://127.0.0.1:7002"},
    {"tcp://127.0.0.1:7001", "tcp://[::1]:7001", "quic://relay.example:443"},
    {"tcp://10.0.0.1:1", "tcp://[2001:db8::1]:65535", "quic://a.b:9", NULL /* long_uri */},
};

START_TEST(desc_roundtrip)
{
    struct ovl_identity id;
    struct desc d, back;
    uint8_t buf[DESC_MAX_LEN];
    const char *uris[DESC_MAX_URIS];
    unsigned n = (unsigned)_i + 1;
    size_t len = 0;

    fill_long_uri();
    for (unsigned i = 0; i < n; i++)
        uris[i] = uri_sets[_i][i] ? uri_sets[_i][i] : long_uri;
    make_id(&id, 1);
    make_desc(&d, &id, DESC_RELAY | DESC_ENDPOINT, uris, n);
    ck_assert_int_eq(desc_sign(&d, &id, buf, sizeof(buf), &len), 0);
    ck_assert_uint_gt(len, DESC_FIXED_LEN + OVL_SIG_LEN);
    ck_assert_int_eq(desc_parse(&back, buf, len), 0);
    ck_assert_int_eq(memcmp(&back, &d, sizeof(d)), 0);
    ck_assert_uint_eq(ld_le32(buf + 84), 0x01020304); /* LE, just before the URIs */
    ck_assert(!desc_expired(&back, NOW));
    ck_assert(desc_expired(&back, d.expires_ms));

    /* Exactly len bytes: one too few is ETOOBIG, one byte more is refused. */
    size_t l2 = 0;
    ck_assert_int_eq(desc_sign(&d, &id, buf, len - 1, &l2), OVL_ETOOBIG);
    ck_assert_uint_eq(l2, 0);
    ck_assert_int_eq(desc_sign(&d, &id, buf, sizeof(buf), &len), 0);
    buf[len] = 0;
    ck_assert_int_eq(desc_parse(&back, buf, len + 1), OVL_EPROTO);
}
END_TEST

static size_t good_desc(uint8_t *buf, struct ovl_identity *id)
{
    static const char *const uris[] = {"tcp://127.0.0.1:7001", "tcp://[::1]:7001"};
    struct desc d;
    size_t len = 0;

    make_id(id, 2);
    make_desc(&d, id, DESC_RELAY, uris, 2);
    ck_assert_int_eq(desc_sign(&d, id, buf, DESC_MAX_LEN, &len), 0);
    return len;
}

START_TEST(desc_truncated)
{
    struct ovl_identity id;
    uint8_t buf[DESC_MAX_LEN];
    struct desc d;
    size_t len = good_desc(buf, &id);

    for (size_t l = 0; l < len; l++) {
        uint8_t *copy = malloc(l ? l : 1); /* exact size: ASan/valgrind see overreads */
        memcpy(copy, buf, l);
        int rc = desc_parse(&d, copy, l);
        ck_assert_msg(rc == OVL_EPROTO || rc == OVL_ECRYPTO, "len %zu: %d", l, rc);
        ck_assert_uint_eq(d.n_uris, 0); /* zeroed on failure */
        free(copy);
    }
}
END_TEST

START_TEST(desc_bitflip)
{
    struct ovl_identity id;
    uint8_t buf[DESC_MAX_LEN];
    struct desc d;
    size_t len = good_desc(buf, &id);

    for (size_t i = 0; i < len; i++) {
        for (int bit = 0; bit < 8; bit++) {
            buf[i] ^= (uint8_t)(1u << bit);
            int rc = desc_parse(&d, buf, len);
            ck_assert_msg(rc == OVL_EPROTO || rc == OVL_ECRYPTO, "byte %zu bit %d: %d", i, bit, rc);
            buf[i] ^= (uint8_t)(1u << bit);
        }
    }
    ck_assert_int_eq(desc_parse(&d, buf, len), 0);
}
END_TEST

/* Field values both desc_sign (OVL_EINVAL) and desc_parse (OVL_EPROTO,
 * even with a valid signature) refuse. */
static const struct {
    const char *what;
    int flags, suites, n_uris; /* -1: keep */
    int64_t expires_delta;     /* added to published; 0: keep */
    bool zero_onion;
    const char *uri; /* replaces the only URI when set */
} bad_fields[] = {
    {"no flags", 0, -1, -1, 0, false, NULL},
    {"unknown flag", DESC_RELAY | 32, -1, -1, 0, false, NULL},
    {"dormant without relay", DESC_ENDPOINT | DESC_DORMANT, -1, -1, 0, false, NULL},
    {"family without a family", DESC_RELAY | DESC_FAMILY, -1, -1, 0, false, NULL},
    {"exit without a policy", DESC_RELAY | DESC_EXIT, -1, -1, 0, false, NULL},
    {"exit without relay", DESC_ENDPOINT | DESC_EXIT, -1, -1, 0, false, NULL},
    {"high flag", 0x80 | DESC_ENDPOINT, -1, -1, 0, false, NULL},
    {"no suites", -1, 0, -1, 0, false, NULL},
    {"unknown suite", -1, OVL_AEAD_ALL | 4, -1, 0, false, NULL},
    {"expires = published", -1, -1, -1, -1, false, NULL},
    {"expires < published", -1, -1, -1, -2, false, NULL},
    {"zero onion key", -1, -1, -1, 0, true, NULL},
    {"empty uri", -1, -1, -1, 0, false, ""},
    {"no port", -1, -1, -1, 0, false, "tcp://1.2.3.4"},
    {"port 0", -1, -1, -1, 0, false, "tcp://1.2.3.4:0"},
    {"space", -1, -1, -1, 0, false, "tcp://a b:1"},
    {"newline", -1, -1, -1, 0, false, "tcp://ab:1\n"},
    {"high byte", -1, -1, -1, 0, false, "tcp://\xc3\xa9:1"},
    {"del", -1, -1, -1, 0, false, "tcp://ab:1\x7f"},
    {"path", -1, -1, -1, 0, false, "tcp://ab:1/x"},
    {"no scheme", -1, -1, -1, 0, false, "127.0.0.1:1"},
    {"unbracketed v6", -1, -1, -1, 0, false, "tcp://::1:80"},
};

START_TEST(desc_bad_fields)
{
    static const char *const one[] = {"tcp://127.0.0.1:7001"};
    struct ovl_identity id;
    struct desc d, back;
    uint8_t buf[DESC_MAX_LEN];
    const char *uris[1] = {one[0]};
    size_t len = 0;

    make_id(&id, 3);
    make_desc(&d, &id, DESC_RELAY, one, 1);
    if (bad_fields[_i].flags >= 0)
        d.flags = (uint8_t)bad_fields[_i].flags;
    if (bad_fields[_i].suites >= 0)
        d.suites = (uint8_t)bad_fields[_i].suites;
    if (bad_fields[_i].expires_delta)
        d.expires_ms = d.published_ms + 1 + (uint64_t)bad_fields[_i].expires_delta;
    if (bad_fields[_i].zero_onion)
        memset(d.onion_pk, 0, sizeof(d.onion_pk));
    if (bad_fields[_i].uri) {
        uris[0] = bad_fields[_i].uri;
        strcpy(d.uris[0], bad_fields[_i].uri);
    }
    ck_assert_msg(desc_sign(&d, &id, buf, sizeof(buf), &len) == OVL_EINVAL, "signed: %s",
                  bad_fields[_i].what);
    len = raw_sign(&d, uris, 1, &id, buf);
    ck_assert_msg(desc_parse(&back, buf, len) == OVL_EPROTO, "parsed: %s", bad_fields[_i].what);
}
END_TEST

/* Structural damage with a valid signature: lengths that disagree. */
START_TEST(desc_bad_structure)
{
    static const char *const two[] = {"tcp://127.0.0.1:7001", "tcp://[::1]:7001"};
    struct ovl_identity id;
    struct desc d, back;
    uint8_t buf[DESC_MAX_LEN + 8];
    size_t len;

    make_id(&id, 4);
    make_desc(&d, &id, DESC_RELAY, two, 2);
    const struct {
        const char *what;
        int n_uris, version;
        int first_len_delta;
    } cases[] = {
        {"n_uris 0", 0, DESC_VERSION, 0},
        {"n_uris 1 of 2", 1, DESC_VERSION, 0},
        {"n_uris 3 of 2", 3, DESC_VERSION, 0},
        {"n_uris 5", 5, DESC_VERSION, 0},
        {"version 0", 2, 0, 0},
        {"version 1 (no capacity)", 2, 1, 0},
        {"version 3", 2, 3, 0},
        {"uri len past end", 2, DESC_VERSION, 80},
        {"uri len short", 2, DESC_VERSION, -1},
    };
    len = raw_sign(&d, two, 2, &id, buf);
    ck_assert_int_eq(desc_parse(&back, buf, len), 0); /* untouched, raw_sign's bytes are good */
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        d.n_uris = 2;
        len = raw_sign(&d, two, 2, &id, buf);
        buf[0] = (uint8_t)cases[i].version;
        buf[3] = (uint8_t)cases[i].n_uris;
        buf[DESC_FIXED_LEN] = (uint8_t)(buf[DESC_FIXED_LEN] + cases[i].first_len_delta);
        resign(buf, len, &id);
        ck_assert_msg(desc_parse(&back, buf, len) == OVL_EPROTO, "%s", cases[i].what);
    }
    /* A trailing byte between the URIs and the signature. */
    len = raw_sign(&d, two, 2, &id, buf);
    memmove(buf + len - OVL_SIG_LEN + 1, buf + len - OVL_SIG_LEN, OVL_SIG_LEN);
    buf[len - OVL_SIG_LEN] = 0;
    len++;
    resign(buf, len, &id);
    ck_assert_int_eq(desc_parse(&back, buf, len), OVL_EPROTO);
}
END_TEST

/* Any capacity is a valid claim (selection caps it); 0 is no claim. A
 * descriptor in the old layout (version 1, no capacity) is refused. */
START_TEST(desc_capacity)
{
    static const char *const one[] = {"tcp://127.0.0.1:7001"};
    static const uint32_t caps[] = {0, 1, 10000000, UINT32_MAX};
    struct ovl_identity id;
    struct desc d, back;
    uint8_t buf[DESC_MAX_LEN];
    size_t len = 0;

    make_id(&id, 7);
    make_desc(&d, &id, DESC_RELAY, one, 1);
    for (size_t i = 0; i < ARRAY_LEN(caps); i++) {
        d.capacity = caps[i];
        ck_assert_int_eq(desc_sign(&d, &id, buf, sizeof(buf), &len), 0);
        ck_assert_int_eq(desc_parse(&back, buf, len), 0);
        ck_assert_uint_eq(back.capacity, caps[i]);
    }
    memmove(buf + 84, buf + 88, len - 88);
    len -= 4;
    buf[0] = 1;
    resign(buf, len, &id);
    ck_assert_int_eq(desc_parse(&back, buf, len), OVL_EPROTO);
    ck_assert_uint_eq(back.capacity, 0);
}
END_TEST

/* Put n bytes between the URIs (or policy) and the signature; sign again. */
static size_t add_tail(uint8_t *buf, size_t len, const uint8_t *tail, size_t n,
                       const struct ovl_identity *id)
{
    memmove(buf + len - OVL_SIG_LEN + n, buf + len - OVL_SIG_LEN, OVL_SIG_LEN);
    memcpy(buf + len - OVL_SIG_LEN, tail, n);
    resign(buf, len + n, id);
    return len + n;
}

/* An exit's descriptor carries its policy after the URIs: it round-trips,
 * sits where PROTOCOL.md 15.1 says, and a changed policy byte is refused. */
START_TEST(desc_policy)
{
    static const char *const one[] = {"tcp://127.0.0.1:7001"};
    struct ovl_identity id;
    struct desc d, back;
    struct exit_policy ep, got;
    uint8_t buf[DESC_MAX_LEN];
    size_t len = 0, plen = 0, at;

    make_id(&id, 8);
    make_desc(&d, &id, DESC_RELAY | DESC_EXIT, one, 1);
    memset(&ep, 0, sizeof(ep));
    ck_assert_int_eq(
        exit_policy_parse(&ep, "reject 10.0.0.0/8:*, accept *:443, reject *:*", NULL, NULL), 0);
    ck_assert_int_eq(exit_policy_encode(&ep, d.policy, sizeof(d.policy), &plen), 0);
    ck_assert_uint_eq(plen, 7);
    d.policy_len = (uint8_t)plen;
    ck_assert_int_eq(desc_sign(&d, &id, buf, sizeof(buf), &len), 0);
    ck_assert_int_eq(desc_parse(&back, buf, len), 0);
    ck_assert_mem_eq(&back, &d, sizeof(d));
    ck_assert_int_eq(exit_policy_decode(&got, back.policy, back.policy_len), 0);
    ck_assert_mem_eq(&got, &ep, sizeof(ep));
    at = len - OVL_SIG_LEN - plen;
    ck_assert_uint_eq(at - 1, DESC_FIXED_LEN + 1 + strlen(one[0]));
    ck_assert_uint_eq(buf[at - 1], plen);
    ck_assert_mem_eq(buf + at, d.policy, plen);
    ck_assert_int_eq(desc_sign(&d, &id, buf, len - 1, &len), OVL_ETOOBIG);

    /* Without the policy's bytes in the signature, nothing stands. */
    ck_assert_int_eq(desc_sign(&d, &id, buf, sizeof(buf), &len), 0);
    for (size_t i = at - 1; i < at + plen; i++) {
        for (int bit = 0; bit < 8; bit++) {
            buf[i] ^= (uint8_t)(1u << bit);
            int rc = desc_parse(&back, buf, len);
            ck_assert_msg(rc == OVL_EPROTO || rc == OVL_ECRYPTO, "byte %zu bit %d", i, bit);
            buf[i] ^= (uint8_t)(1u << bit);
        }
    }
    /* 10.0.0.0/8 -> 11.0.0.0/8: a well-formed policy that is not the signed one. */
    buf[at + 2] = 11;
    ck_assert_int_eq(exit_policy_decode(&got, buf + at, plen), 0);
    ck_assert_int_eq(desc_parse(&back, buf, len), OVL_ECRYPTO);
    ck_assert_uint_eq(back.policy_len, 0);
}
END_TEST

/* Give d (an exit) the longest policy, 255 bytes. */
static void max_policy(struct desc *d)
{
    struct exit_policy ep;
    size_t plen = 0;

    /* 11 x 22 + 10 + 3 = 255 bytes */
    memset(&ep, 0, sizeof(ep));
    for (unsigned i = 0; i < 13; i++) {
        struct exit_rule *r = &ep.rules[ep.n++];

        r->family = i < 11 ? EXIT_V6 : i == 11 ? EXIT_V4 : EXIT_ANY;
        r->bits = i < 11 ? 128 : i == 11 ? 32 : 0;
        if (r->family)
            memset(r->addr, (int)i + 1, r->family == EXIT_V4 ? 4 : 16);
        r->lo = 80;
        r->hi = i == 12 ? 80 : 90;
    }
    ck_assert_int_eq(exit_policy_encode(&ep, d->policy, sizeof(d->policy), &plen), 0);
    ck_assert_uint_eq(plen, DESC_POLICY_MAX);
    d->policy_len = (uint8_t)plen;
}

/* The largest descriptor: four 255-byte URIs and a 255-byte policy. */
START_TEST(desc_policy_max)
{
    struct ovl_identity id;
    struct desc d, back;
    uint8_t buf[DESC_MAX_LEN];
    const char *uris[DESC_MAX_URIS];
    size_t len = 0;

    fill_long_uri();
    for (unsigned i = 0; i < DESC_MAX_URIS; i++)
        uris[i] = long_uri;
    make_id(&id, 9);
    make_desc(&d, &id, DESC_RELAY | DESC_EXIT, uris, DESC_MAX_URIS);
    max_policy(&d);
    ck_assert_int_eq(desc_sign(&d, &id, buf, sizeof(buf), &len), 0);
    ck_assert_uint_le(len, DESC_MAX_LEN);
    ck_assert_uint_eq(len, DESC_FIXED_LEN + 4 * 256 + 256 + OVL_SIG_LEN);
    ck_assert_int_eq(desc_parse(&back, buf, len), 0);
    ck_assert_mem_eq(&back, &d, sizeof(d));
}
END_TEST

/* Policy fields desc_sign refuses, and damage desc_parse refuses under a
 * valid signature. */
START_TEST(desc_policy_bad)
{
    static const char *const one[] = {"tcp://127.0.0.1:7001"};
    static const struct {
        const char *what;
        uint8_t flags;
        uint8_t tail[4];
        size_t n;
    } tails[] = {
        {"exit, no policy field", DESC_RELAY | DESC_EXIT, {0}, 0},
        {"exit, empty policy", DESC_RELAY | DESC_EXIT, {0}, 1},
        {"policy past the signature", DESC_RELAY | DESC_EXIT, {3, 0x84, 0xbb}, 3},
        {"malformed policy", DESC_RELAY | DESC_EXIT, {1, 0x03}, 2},
        {"policy cut short", DESC_RELAY | DESC_EXIT, {2, 0x84, 0xbb}, 3},
        {"byte after the policy", DESC_RELAY | DESC_EXIT, {1, 0x00, 0x00}, 3},
        {"policy without exit", DESC_RELAY, {1, 0x00}, 2},
        {"exit without relay", DESC_ENDPOINT | DESC_EXIT, {1, 0x00}, 2},
    };
    static const uint8_t reject_all[] = {1, 0x00}; /* "reject *:*" */
    struct ovl_identity id;
    struct desc d, back;
    uint8_t buf[DESC_MAX_LEN + 8];
    size_t len = 0;

    make_id(&id, 10);
    make_desc(&d, &id, DESC_RELAY | DESC_EXIT, one, 1);
    d.policy_len = 1;
    len = add_tail(buf, raw_sign(&d, one, 1, &id, buf), reject_all, 2, &id);
    ck_assert_int_eq(desc_parse(&back, buf, len), 0); /* the shape is right */
    for (size_t i = 0; i < ARRAY_LEN(tails); i++) {
        d.flags = tails[i].flags;
        len = add_tail(buf, raw_sign(&d, one, 1, &id, buf), tails[i].tail, tails[i].n, &id);
        ck_assert_msg(desc_parse(&back, buf, len) == OVL_EPROTO, "%s", tails[i].what);
    }

    d.flags = DESC_RELAY | DESC_EXIT;
    d.policy_len = 0;
    ck_assert_int_eq(desc_sign(&d, &id, buf, sizeof(buf), &len), OVL_EINVAL);
    d.flags = DESC_RELAY;
    d.policy_len = 1;
    ck_assert_int_eq(desc_sign(&d, &id, buf, sizeof(buf), &len), OVL_EINVAL);
    d.flags = DESC_ENDPOINT | DESC_EXIT;
    ck_assert_int_eq(desc_sign(&d, &id, buf, sizeof(buf), &len), OVL_EINVAL);
    d.flags = DESC_RELAY | DESC_EXIT;
    d.policy[0] = 0x03;
    ck_assert_int_eq(desc_sign(&d, &id, buf, sizeof(buf), &len), OVL_EINVAL);
    d.policy[0] = 0x00;
    ck_assert_int_eq(desc_sign(&d, &id, buf, sizeof(buf), &len), 0);
}
END_TEST

/* ---- families ------------------------------------------------------------ */

/* Give d a family of the identities seeded first .. first + n - 1. */
static void set_family(struct desc *d, uint8_t first, unsigned n)
{
    struct ovl_identity m;

    d->flags |= DESC_FAMILY;
    d->n_family = (uint8_t)n;
    for (unsigned i = 0; i < n; i++) {
        make_id(&m, (uint8_t)(first + i));
        memcpy(d->family[i], m.pk, OVL_ED25519_PK);
    }
}

/* A relay's family follows its policy, or its URIs without one: it
 * round-trips, sits where PROTOCOL.md 15.1 says, and no byte of it can be
 * changed unnoticed. */
START_TEST(desc_family)
{
    static const char *const one[] = {"tcp://127.0.0.1:7001"};
    struct ovl_identity id;
    struct desc d, back;
    uint8_t buf[DESC_MAX_LEN];
    size_t len = 0, at;

    make_id(&id, 11);
    make_desc(&d, &id, DESC_RELAY | DESC_EXIT, one, 1);
    d.policy_len = 1; /* reject *:* */
    set_family(&d, 12, 2);
    ck_assert_int_eq(desc_sign(&d, &id, buf, sizeof(buf), &len), 0);
    ck_assert_uint_eq(len, DESC_FIXED_LEN + 1 + strlen(one[0]) + 2 + 1 + 64 + OVL_SIG_LEN);
    ck_assert_int_eq(desc_parse(&back, buf, len), 0);
    ck_assert_mem_eq(&back, &d, sizeof(d));
    at = len - OVL_SIG_LEN - 64 - 1;
    ck_assert_uint_eq(buf[at - 2], 1); /* the policy's length and its one byte first */
    ck_assert_uint_eq(buf[at], 2);
    ck_assert_mem_eq(buf + at + 1, d.family, 64);
    ck_assert(desc_names_family(&back, d.family[1]));
    ck_assert(!desc_names_family(&back, id.pk));
    ck_assert_int_eq(desc_sign(&d, &id, buf, len - 1, &len), OVL_ETOOBIG);

    ck_assert_int_eq(desc_sign(&d, &id, buf, sizeof(buf), &len), 0);
    for (size_t i = at; i < at + 65; i++) {
        for (int bit = 0; bit < 8; bit++) {
            buf[i] ^= (uint8_t)(1u << bit);
            int rc = desc_parse(&back, buf, len);
            ck_assert_msg(rc == OVL_EPROTO || rc == OVL_ECRYPTO, "byte %zu bit %d", i, bit);
            buf[i] ^= (uint8_t)(1u << bit);
        }
    }

    /* Not an exit: right after the URIs. */
    d.flags = DESC_RELAY | DESC_ENDPOINT | DESC_FAMILY;
    d.policy_len = 0;
    ck_assert_int_eq(desc_sign(&d, &id, buf, sizeof(buf), &len), 0);
    ck_assert_uint_eq(buf[DESC_FIXED_LEN + 1 + strlen(one[0])], 2);
    ck_assert_int_eq(desc_parse(&back, buf, len), 0);
    ck_assert_mem_eq(&back, &d, sizeof(d));
}
END_TEST

/* The largest descriptor: four 255-byte URIs, a 255-byte policy and a
 * family of 8: 1,689 bytes, within DESC_MAX_LEN (1,869, PROTOCOL.md 15.1),
 * and a document takes it. */
START_TEST(desc_family_max)
{
    struct ovl_identity id;
    struct desc d, back;
    struct doc doc;
    struct doc_builder b;
    uint8_t buf[DESC_MAX_LEN + 1], *out;
    const char *uris[DESC_MAX_URIS];
    size_t len = 0, dlen = 0;

    ck_assert_uint_eq(DESC_MAX_LEN, 1869);
    fill_long_uri();
    for (unsigned i = 0; i < DESC_MAX_URIS; i++)
        uris[i] = long_uri;
    make_id(&id, 11);
    make_desc(&d, &id, DESC_RELAY | DESC_EXIT, uris, DESC_MAX_URIS);
    max_policy(&d);
    set_family(&d, 12, DESC_FAMILY_MAX);
    ck_assert_int_eq(desc_sign(&d, &id, buf, sizeof(buf), &len), 0);
    ck_assert_uint_eq(len, DESC_FIXED_LEN + 4 * 256 + 256 + 1 + 8 * 32 + OVL_SIG_LEN);
    ck_assert_uint_eq(len, 1689);
    ck_assert_int_eq(desc_parse(&back, buf, len), 0);
    ck_assert_mem_eq(&back, &d, sizeof(d));
    ck_assert_int_eq(doc_begin(&b, DOC_LIST, 0, 0, NULL, NOW, NOW + 1, DOC_MAX_LEN), 0);
    ck_assert_int_eq(doc_add(&b, buf, len), 0);
    ck_assert_int_eq(doc_finish(&b, &id, &out, &dlen), 0);
    ck_assert_int_eq(doc_parse(&doc, out, dlen, id.pk), 0);
    ck_assert_uint_eq(doc.count, 1);
    ck_assert_mem_eq(doc.descs[0].family, d.family, sizeof(d.family));
    doc_free(&doc);
    free(out);
    memset(buf, 0, sizeof(buf));
    ck_assert_int_eq(desc_parse(&back, buf, DESC_MAX_LEN + 1), OVL_EPROTO);
}
END_TEST

/* Family fields desc_sign refuses, and damage desc_parse refuses under a
 * valid signature. */
START_TEST(desc_family_bad)
{
    static const char *const one[] = {"tcp://127.0.0.1:7001"};
    enum { OTHER, SELF, NONE };
    static const struct {
        const char *what;
        uint8_t flags;
        int count;         /* the count byte; -1: no field */
        unsigned n, extra; /* ids after it (OTHER ones unless self/twice), then zero bytes */
        int kind;          /* the second id: OTHER, SELF, or NONE (the first again) */
    } tails[] = {
        {"family flag, no field", DESC_RELAY | DESC_FAMILY, -1, 0, 0, OTHER},
        {"family of 0", DESC_RELAY | DESC_FAMILY, 0, 0, 0, OTHER},
        {"family of 9", DESC_RELAY | DESC_FAMILY, 9, 9, 0, OTHER},
        {"family cut short", DESC_RELAY | DESC_FAMILY, 2, 1, 0, OTHER},
        {"id cut short", DESC_RELAY | DESC_FAMILY, 1, 0, 31, OTHER},
        {"byte after the family", DESC_RELAY | DESC_FAMILY, 1, 1, 1, OTHER},
        {"names itself", DESC_RELAY | DESC_FAMILY, 2, 2, 0, SELF},
        {"names one twice", DESC_RELAY | DESC_FAMILY, 2, 2, 0, NONE},
        {"family without the flag", DESC_RELAY, 1, 1, 0, OTHER},
        {"family without relay", DESC_ENDPOINT | DESC_FAMILY, 1, 1, 0, OTHER},
    };
    struct ovl_identity id, m;
    struct desc d, back;
    uint8_t buf[DESC_MAX_LEN], tail[1 + 9 * 32 + 32];
    size_t len = 0, n;

    make_id(&id, 11);
    make_desc(&d, &id, DESC_RELAY | DESC_FAMILY, one, 1);
    for (size_t i = 0; i < ARRAY_LEN(tails); i++) {
        n = 0;
        if (tails[i].count >= 0)
            tail[n++] = (uint8_t)tails[i].count;
        for (unsigned k = 0; k < tails[i].n; k++, n += 32) {
            make_id(&m, (uint8_t)(12 + (k == 1 && tails[i].kind == NONE ? 0 : k)));
            memcpy(tail + n, k == 1 && tails[i].kind == SELF ? id.pk : m.pk, 32);
        }
        memset(tail + n, 0, tails[i].extra);
        n += tails[i].extra;
        d.flags = tails[i].flags;
        len = add_tail(buf, raw_sign(&d, one, 1, &id, buf), tail, n, &id);
        ck_assert_msg(desc_parse(&back, buf, len) == OVL_EPROTO, "%s", tails[i].what);
        ck_assert_uint_eq(back.n_family, 0);
    }
    /* The shape is right: "names itself" with another id. */
    d.flags = DESC_RELAY | DESC_FAMILY;
    tail[0] = 2;
    make_id(&m, 12);
    memcpy(tail + 1, m.pk, 32);
    make_id(&m, 13);
    memcpy(tail + 33, m.pk, 32);
    len = add_tail(buf, raw_sign(&d, one, 1, &id, buf), tail, 1 + 64, &id);
    ck_assert_int_eq(desc_parse(&back, buf, len), 0);

    set_family(&d, 12, 2);
    ck_assert_int_eq(desc_sign(&d, &id, buf, sizeof(buf), &len), 0);
    d.n_family = 0;
    ck_assert_int_eq(desc_sign(&d, &id, buf, sizeof(buf), &len), OVL_EINVAL);
    d.n_family = DESC_FAMILY_MAX + 1;
    ck_assert_int_eq(desc_sign(&d, &id, buf, sizeof(buf), &len), OVL_EINVAL);
    d.n_family = 2;
    memcpy(d.family[1], id.pk, 32);
    ck_assert_int_eq(desc_sign(&d, &id, buf, sizeof(buf), &len), OVL_EINVAL);
    memcpy(d.family[1], d.family[0], 32);
    ck_assert_int_eq(desc_sign(&d, &id, buf, sizeof(buf), &len), OVL_EINVAL);
    set_family(&d, 12, 2);
    d.flags = DESC_RELAY;
    ck_assert_int_eq(desc_sign(&d, &id, buf, sizeof(buf), &len), OVL_EINVAL);
    d.flags = DESC_ENDPOINT | DESC_FAMILY;
    ck_assert_int_eq(desc_sign(&d, &id, buf, sizeof(buf), &len), OVL_EINVAL);
}
END_TEST

START_TEST(desc_wrong_signer)
{
    static const char *const one[] = {"tcp://127.0.0.1:7001"};
    struct ovl_identity id, other;
    struct desc d, back;
    uint8_t buf[DESC_MAX_LEN];
    size_t len = 0;

    make_id(&id, 5);
    make_id(&other, 6);
    make_desc(&d, &id, DESC_RELAY, one, 1);
    len = raw_sign(&d, one, 1, &other, buf);
    ck_assert_int_eq(desc_parse(&back, buf, len), OVL_ECRYPTO);
    ck_assert_int_eq(desc_sign(&d, &other, buf, sizeof(buf), &len), OVL_EINVAL);
    ck_assert_int_eq(desc_parse(NULL, buf, len), OVL_EINVAL);
}
END_TEST

/* ---- documents ---------------------------------------------------------- */

struct signed_desc {
    uint8_t buf[DESC_MAX_LEN];
    size_t len;
    struct ovl_identity id;
};

static void make_signed(struct signed_desc *s, uint8_t seed, uint8_t flags)
{
    static const char *const one[] = {"tcp://127.0.0.1:7001"};
    struct desc d;

    make_id(&s->id, seed);
    make_desc(&d, &s->id, flags, one, 1);
    ck_assert_int_eq(desc_sign(&d, &s->id, s->buf, sizeof(s->buf), &s->len), 0);
}

/* Build a document of kind from descriptors seeds[0..n) (by seed byte). */
static uint8_t *make_doc(const struct ovl_identity *bs, uint8_t kind, uint8_t length,
                         uint8_t backups, const uint8_t *seeds, unsigned n, size_t *len)
{
    struct doc_builder b;
    struct signed_desc s;
    uint8_t ref[16], *out = NULL;

    memset(ref, kind == DOC_CHAIN ? 0xab : 0, sizeof(ref));
    ck_assert_int_eq(doc_begin(&b, kind, length, backups, ref, NOW, NOW + 60000, DOC_MAX_LEN), 0);
    for (unsigned i = 0; i < n; i++) {
        make_signed(&s, seeds[i], seeds[i] >= 0xe0 ? DESC_ENDPOINT : DESC_RELAY);
        ck_assert_int_eq(doc_add(&b, s.buf, s.len), 0);
    }
    ck_assert_int_eq(doc_finish(&b, bs, &out, len), 0);
    ck_assert_ptr_null(b.buf);
    doc_builder_free(&b);
    return out;
}

static const uint8_t chain_seeds[] = {10, 11, 12, 13, 14, 15};

/* Field by field (padding is nobody's business). */
static void assert_same_desc(const struct desc *a, const struct desc *b)
{
    ck_assert_uint_eq(a->flags, b->flags);
    ck_assert_uint_eq(a->suites, b->suites);
    ck_assert_uint_eq(a->n_uris, b->n_uris);
    ck_assert_uint_eq(a->published_ms, b->published_ms);
    ck_assert_uint_eq(a->expires_ms, b->expires_ms);
    ck_assert_int_eq(memcmp(a->id_pk, b->id_pk, sizeof(a->id_pk)), 0);
    ck_assert_int_eq(memcmp(a->onion_pk, b->onion_pk, sizeof(a->onion_pk)), 0);
    ck_assert_uint_eq(a->capacity, b->capacity);
    for (unsigned i = 0; i < a->n_uris; i++)
        ck_assert_str_eq(a->uris[i], b->uris[i]);
}

START_TEST(doc_roundtrip_list)
{
    struct ovl_identity bs;
    struct doc doc;
    struct signed_desc s;
    size_t len;
    const uint8_t seeds[] = {20, 21, 0xe1}; /* a list may hold any descriptor */

    make_id(&bs, 0x77);
    uint8_t *buf = make_doc(&bs, DOC_LIST, 0, 0, seeds, 3, &len);
    ck_assert_int_eq(doc_parse(&doc, buf, len, bs.pk), 0);
    ck_assert_uint_eq(doc.kind, DOC_LIST);
    ck_assert_uint_eq(doc.count, 3);
    ck_assert_uint_eq(doc.published_ms, NOW);
    ck_assert_uint_eq(doc.expires_ms, NOW + 60000);
    for (unsigned i = 0; i < 3; i++) {
        make_signed(&s, seeds[i], seeds[i] >= 0xe0 ? DESC_ENDPOINT : DESC_RELAY);
        ck_assert_uint_eq(doc.entries[i].len, s.len);
        ck_assert_int_eq(memcmp(doc.entries[i].desc, s.buf, s.len), 0);
        ck_assert(doc.entries[i].desc > buf && doc.entries[i].desc < buf + len); /* not copied */
        /* decoded once, as desc_parse decodes the entry */
        struct desc d;
        ck_assert_int_eq(desc_parse(&d, s.buf, s.len), 0);
        assert_same_desc(&doc.descs[i], &d);
    }
    doc_free(&doc);
    ck_assert_ptr_null(doc.entries);
    ck_assert_ptr_null(doc.descs);
    doc_free(&doc); /* idempotent */
    free(buf);

    /* An empty list is valid. */
    buf = make_doc(&bs, DOC_LIST, 0, 0, NULL, 0, &len);
    ck_assert_uint_eq(len, DOC_HDR_LEN + OVL_SIG_LEN);
    ck_assert_int_eq(doc_parse(&doc, buf, len, bs.pk), 0);
    ck_assert_uint_eq(doc.count, 0);
    ck_assert_ptr_null(doc.entries);
    ck_assert_ptr_null(doc.descs);
    doc_free(&doc);
    free(buf);
}
END_TEST

START_TEST(doc_roundtrip_chain)
{
    struct ovl_identity bs;
    struct doc doc;
    size_t len;

    make_id(&bs, 0x77);
    uint8_t *buf = make_doc(&bs, DOC_CHAIN, 2, 2, chain_seeds, 6, &len);
    ck_assert_int_eq(doc_parse(&doc, buf, len, bs.pk), 0);
    ck_assert_uint_eq(doc.kind, DOC_CHAIN);
    ck_assert_uint_eq(doc.length, 2);
    ck_assert_uint_eq(doc.backups, 2);
    ck_assert_uint_eq(doc.count, 6);
    ck_assert_uint_eq(doc.ref[0], 0xab);
    for (unsigned i = 0; i < 6; i++) {
        struct desc d;
        struct ovl_identity id;
        make_id(&id, chain_seeds[i]);
        ck_assert_int_eq(desc_parse(&d, doc.entries[i].desc, doc.entries[i].len), 0);
        ck_assert_int_eq(memcmp(d.id_pk, id.pk, 32), 0); /* order kept */
        assert_same_desc(&doc.descs[i], &d);
    }
    /* the caller may take the decoded array */
    struct desc *taken = doc.descs;
    doc.descs = NULL;
    doc_free(&doc);
    ck_assert_uint_eq(taken[5].flags, DESC_RELAY);
    free(taken);
    free(buf);
}
END_TEST

START_TEST(doc_tampered)
{
    struct ovl_identity bs, other;
    struct doc doc;
    size_t len;

    make_id(&bs, 0x77);
    make_id(&other, 0x78);
    uint8_t *buf = make_doc(&bs, DOC_CHAIN, 3, 1, chain_seeds, 6, &len);
    for (size_t i = 0; i < len; i++) {
        buf[i] ^= (uint8_t)(1u << (i % 8));
        int rc = doc_parse(&doc, buf, len, bs.pk);
        ck_assert_msg(rc == OVL_ECRYPTO || rc == OVL_EPROTO, "byte %zu: %d", i, rc);
        ck_assert_ptr_null(doc.entries);
        buf[i] ^= (uint8_t)(1u << (i % 8));
    }
    ck_assert_int_eq(doc_parse(&doc, buf, len, other.pk), OVL_ECRYPTO);
    ck_assert_ptr_null(doc.entries);
    for (size_t l = 0; l < len; l++) {
        int rc = doc_parse(&doc, buf, l, bs.pk);
        ck_assert_msg(rc == OVL_ECRYPTO || rc == OVL_EPROTO, "len %zu: %d", l, rc);
    }
    ck_assert_int_eq(doc_parse(&doc, buf, len, bs.pk), 0);
    doc_free(&doc);
    free(buf);
}
END_TEST

/* Validly signed by the bootstrap, but wrong inside. */
static const struct {
    const char *what;
    int off, val;     /* header byte to overwrite, -1 none */
    int count;        /* new count, -1 keep */
    uint8_t seeds[6]; /* chain length 3 backups 1 */
} bad_docs[] = {
    {"backups 0: count mismatch", 3, 0, -1, {10, 11, 12, 13, 14, 15}},
    {"length 2: count mismatch", 2, 2, -1, {10, 11, 12, 13, 14, 15}},
    {"count 5", -1, 0, 5, {10, 11, 12, 13, 14, 15}},
    {"count 7", -1, 0, 7, {10, 11, 12, 13, 14, 15}},
    {"duplicate", -1, 0, -1, {10, 11, 12, 13, 14, 10}},
    {"duplicate adjacent", -1, 0, -1, {10, 10, 12, 13, 14, 15}},
    {"endpoint in chain", -1, 0, -1, {10, 11, 12, 0xe1, 14, 15}},
    {"version 2", 0, 2, -1, {10, 11, 12, 13, 14, 15}},
    {"kind 3", 1, 3, -1, {10, 11, 12, 13, 14, 15}},
    {"kind list with length", 1, DOC_LIST, -1, {10, 11, 12, 13, 14, 15}},
    {"length 0", 2, 0, -1, {10, 11, 12, 13, 14, 15}},
    {"length 9", 2, 9, -1, {10, 11, 12, 13, 14, 15}},
    {"backups 5", 3, 5, -1, {10, 11, 12, 13, 14, 15}},
    {"expires before published", 28, 0, -1, {10, 11, 12, 13, 14, 15}},
};

START_TEST(doc_bad)
{
    struct ovl_identity bs;
    struct doc doc;
    size_t len;

    make_id(&bs, 0x77);
    uint8_t *buf = make_doc(&bs, DOC_CHAIN, 3, 1, bad_docs[_i].seeds, 6, &len);
    if (bad_docs[_i].off >= 0)
        buf[bad_docs[_i].off] = (uint8_t)bad_docs[_i].val;
    if (bad_docs[_i].off == 28) /* expires_ms: make it 0 */
        memset(buf + 28, 0, 8);
    if (bad_docs[_i].count >= 0) {
        buf[36] = (uint8_t)bad_docs[_i].count;
        buf[37] = 0;
    }
    resign(buf, len, &bs);
    ck_assert_msg(doc_parse(&doc, buf, len, bs.pk) == OVL_EPROTO, "%s", bad_docs[_i].what);
    ck_assert_ptr_null(doc.entries);
    free(buf);
}
END_TEST

/* A set of three chains of length 2, no backups: one relay may be in
 * several chains, never twice in one; doc_chains counts them. */
START_TEST(doc_roundtrip_set)
{
    static const uint8_t seeds[] = {10, 11, 11, 12, 10, 12};
    struct ovl_identity bs;
    struct doc doc;
    size_t len;

    make_id(&bs, 0x77);
    uint8_t *buf = make_doc(&bs, DOC_CHAIN_SET, 2, 0, seeds, 6, &len);
    ck_assert_int_eq(doc_parse(&doc, buf, len, bs.pk), 0);
    ck_assert_uint_eq(doc.kind, DOC_CHAIN_SET);
    ck_assert_uint_eq(doc.count, 6);
    ck_assert_uint_eq(doc_chains(&doc), 3);
    for (unsigned i = 0; i < 6; i++) {
        struct ovl_identity id;
        make_id(&id, seeds[i]);
        ck_assert_int_eq(memcmp(doc.descs[i].id_pk, id.pk, 32), 0); /* chain-major, in order */
    }
    doc_free(&doc);
    free(buf);
    /* one chain is a set too, and a chain document counts one */
    buf = make_doc(&bs, DOC_CHAIN_SET, 3, 1, chain_seeds, 6, &len);
    ck_assert_int_eq(doc_parse(&doc, buf, len, bs.pk), 0);
    ck_assert_uint_eq(doc_chains(&doc), 1);
    doc_free(&doc);
    free(buf);
    buf = make_doc(&bs, DOC_CHAIN, 3, 1, chain_seeds, 6, &len);
    ck_assert_int_eq(doc_parse(&doc, buf, len, bs.pk), 0);
    ck_assert_uint_eq(doc_chains(&doc), 1);
    doc_free(&doc);
    free(buf);
    buf = make_doc(&bs, DOC_LIST, 0, 0, chain_seeds, 2, &len);
    ck_assert_int_eq(doc_parse(&doc, buf, len, bs.pk), 0);
    ck_assert_uint_eq(doc_chains(&doc), 0);
    doc_free(&doc);
    free(buf);
}
END_TEST

/* Sets signed by the bootstrap, but wrong inside (length 2, no backups,
 * six entries: three chains, before the change). */
static const struct {
    const char *what;
    int off, val, count;
    uint8_t seeds[6];
} bad_sets[] = {
    {"twice in one chain", -1, 0, -1, {10, 11, 12, 12, 13, 14}},
    {"twice in the last chain", -1, 0, -1, {10, 11, 12, 13, 14, 14}},
    {"endpoint in a set", -1, 0, -1, {10, 11, 12, 0xe1, 13, 14}},
    {"count not a multiple", -1, 0, 5, {10, 11, 12, 13, 14, 15}},
    {"length 4: count not a multiple", 2, 4, -1, {10, 11, 12, 13, 14, 15}},
    {"length 0", 2, 0, -1, {10, 11, 12, 13, 14, 15}},
    {"backups 5", 3, 5, -1, {10, 11, 12, 13, 14, 15}},
};

START_TEST(doc_bad_set)
{
    struct ovl_identity bs;
    struct doc doc;
    size_t len;

    make_id(&bs, 0x77);
    uint8_t *buf = make_doc(&bs, DOC_CHAIN_SET, 2, 0, bad_sets[_i].seeds, 6, &len);
    if (bad_sets[_i].off >= 0)
        buf[bad_sets[_i].off] = (uint8_t)bad_sets[_i].val;
    if (bad_sets[_i].count >= 0) {
        buf[36] = (uint8_t)bad_sets[_i].count;
        buf[37] = 0;
    }
    resign(buf, len, &bs);
    ck_assert_msg(doc_parse(&doc, buf, len, bs.pk) == OVL_EPROTO, "%s", bad_sets[_i].what);
    ck_assert_ptr_null(doc.entries);
    free(buf);
}
END_TEST

/* Nine chains are one too many; eight are fine. */
START_TEST(doc_set_max)
{
    uint8_t seeds[9];
    struct ovl_identity bs;
    struct doc_builder b;
    struct doc doc;
    size_t len;
    uint8_t *out = NULL;

    for (unsigned i = 0; i < 9; i++)
        seeds[i] = (uint8_t)(10 + i);
    make_id(&bs, 0x77);
    uint8_t *buf = make_doc(&bs, DOC_CHAIN_SET, 1, 0, seeds, DOC_MAX_SET, &len);
    ck_assert_int_eq(doc_parse(&doc, buf, len, bs.pk), 0);
    ck_assert_uint_eq(doc_chains(&doc), DOC_MAX_SET);
    doc_free(&doc);
    free(buf);
    /* the builder refuses nine, and an empty set */
    for (unsigned n = 0; n <= 9; n += 9) {
        ck_assert_int_eq(doc_begin(&b, DOC_CHAIN_SET, 1, 0, NULL, NOW, NOW + 1, DOC_MAX_LEN), 0);
        for (unsigned i = 0; i < n; i++) {
            struct signed_desc s;
            make_signed(&s, seeds[i], DESC_RELAY);
            ck_assert_int_eq(doc_add(&b, s.buf, s.len), 0);
        }
        ck_assert_int_eq(doc_finish(&b, &bs, &out, &len), OVL_EINVAL);
        doc_builder_free(&b);
    }
    /* and a parser refuses nine signed anyway: count 8 of length 1 made 9 */
    buf = make_doc(&bs, DOC_LIST, 0, 0, seeds, 9, &len);
    buf[1] = DOC_CHAIN_SET;
    buf[2] = 1;
    resign(buf, len, &bs);
    ck_assert_int_eq(doc_parse(&doc, buf, len, bs.pk), OVL_EPROTO);
    free(buf);
}
END_TEST

/* An entry whose own signature fails spoils the whole document. */
START_TEST(doc_bad_entry)
{
    struct ovl_identity bs;
    struct doc doc;
    size_t len;

    make_id(&bs, 0x77);
    uint8_t *buf = make_doc(&bs, DOC_LIST, 0, 0, chain_seeds, 3, &len);
    buf[DOC_HDR_LEN + 2 + 30] ^= 1; /* inside the first descriptor's id_pk */
    resign(buf, len, &bs);
    ck_assert_int_eq(doc_parse(&doc, buf, len, bs.pk), OVL_ECRYPTO);
    ck_assert_ptr_null(doc.entries);
    free(buf);
}
END_TEST

START_TEST(doc_builder_limits)
{
    struct ovl_identity bs;
    struct doc_builder b;
    struct signed_desc s;
    uint8_t *out = NULL;
    size_t len = 0;

    make_id(&bs, 0x77);
    make_signed(&s, 30, DESC_RELAY);
    /* shapes refused */
    ck_assert_int_eq(doc_begin(&b, DOC_LIST, 1, 0, NULL, NOW, NOW + 1, 4096), OVL_EINVAL);
    ck_assert_int_eq(doc_begin(&b, DOC_CHAIN, 0, 0, NULL, NOW, NOW + 1, 4096), OVL_EINVAL);
    ck_assert_int_eq(doc_begin(&b, DOC_CHAIN, 9, 0, NULL, NOW, NOW + 1, 4096), OVL_EINVAL);
    ck_assert_int_eq(doc_begin(&b, DOC_CHAIN, 1, 5, NULL, NOW, NOW + 1, 4096), OVL_EINVAL);
    ck_assert_int_eq(doc_begin(&b, 7, 0, 0, NULL, NOW, NOW + 1, 4096), OVL_EINVAL);
    ck_assert_int_eq(doc_begin(&b, DOC_LIST, 0, 0, NULL, NOW, NOW, 4096), OVL_EINVAL);
    ck_assert_int_eq(doc_begin(&b, DOC_LIST, 0, 0, NULL, NOW, NOW + 1, DOC_MAX_LEN + 1),
                     OVL_EINVAL);
    ck_assert_ptr_null(b.buf);

    /* room for exactly one descriptor */
    size_t cap = DOC_HDR_LEN + 2 + s.len + OVL_SIG_LEN;
    ck_assert_int_eq(doc_begin(&b, DOC_LIST, 0, 0, NULL, NOW, NOW + 1, cap), 0);
    ck_assert_int_eq(doc_add(&b, s.buf, s.len), 0);
    ck_assert_int_eq(doc_add(&b, s.buf, s.len), OVL_ETOOBIG);
    ck_assert_int_eq(doc_finish(&b, &bs, &out, &len), 0);
    ck_assert_uint_eq(len, cap);
    free(out);

    /* a chain needs length * (1 + backups) entries */
    ck_assert_int_eq(doc_begin(&b, DOC_CHAIN, 2, 0, NULL, NOW, NOW + 1, 4096), 0);
    ck_assert_int_eq(doc_add(&b, s.buf, s.len), 0);
    ck_assert_int_eq(doc_finish(&b, &bs, &out, &len), OVL_EINVAL);
    ck_assert_ptr_null(out);
    doc_builder_free(&b);
    doc_builder_free(&b);
    doc_builder_free(NULL);
    doc_free(NULL);
}
END_TEST

/* desc_uri_public: each refused range at and just past its edges, IPv6
 * and IPv4 mapped into it, DNS names. */
static const struct {
    const char *uri;
    bool pub;
} addr_cases[] = {
    /* IPv4: 0/8 (with the unspecified address) */
    {"tcp://0.0.0.0:1", false},
    {"tcp://0.255.255.255:1", false},
    {"tcp://1.0.0.0:1", true},
    /* 10/8 */
    {"tcp://9.255.255.255:1", true},
    {"tcp://10.0.0.0:1", false},
    {"tcp://10.255.255.255:1", false},
    {"tcp://11.0.0.0:1", true},
    /* 100.64/10 (shared, carrier-grade NAT) */
    {"tcp://100.63.255.255:1", true},
    {"tcp://100.64.0.0:1", false},
    {"tcp://100.127.255.255:1", false},
    {"tcp://100.128.0.0:1", true},
    /* 127/8 */
    {"tcp://126.255.255.255:1", true},
    {"tcp://127.0.0.1:1", false},
    {"tcp://127.255.255.254:1", false},
    {"tcp://128.0.0.0:1", true},
    /* 169.254/16 */
    {"tcp://169.253.255.255:1", true},
    {"tcp://169.254.0.0:1", false},
    {"tcp://169.254.255.255:1", false},
    {"tcp://169.255.0.0:1", true},
    /* 172.16/12 */
    {"tcp://172.15.255.255:1", true},
    {"tcp://172.16.0.0:1", false},
    {"tcp://172.31.255.255:1", false},
    {"tcp://172.32.0.0:1", true},
    /* 192.168/16 */
    {"tcp://192.167.255.255:1", true},
    {"tcp://192.168.0.0:1", false},
    {"tcp://192.168.255.255:1", false},
    {"tcp://192.169.0.0:1", true},
    /* 224/4 multicast, 240/4 reserved, broadcast */
    {"tcp://223.255.255.255:1", true},
    {"tcp://224.0.0.0:1", false},
    {"tcp://239.255.255.255:1", false},
    {"tcp://240.0.0.0:1", false},
    {"tcp://255.255.255.255:1", false},
    {"quic://8.8.8.8:443", true},
    /* IPv6: ::/96 (unspecified, loopback, IPv4-compatible) */
    {"tcp://[::]:1", false},
    {"tcp://[::1]:1", false},
    {"tcp://[::8.8.8.8]:1", false},
    {"tcp://[::1:0:0]:1", true}, /* just past ::/96 */
    /* IPv4 mapped: judged as the IPv4 address */
    {"tcp://[::ffff:127.0.0.1]:1", false},
    {"tcp://[::ffff:10.1.2.3]:1", false},
    {"tcp://[::ffff:8.8.8.8]:1", true},
    /* fc00::/7 unique local */
    {"tcp://[fbff:ffff::1]:1", true},
    {"tcp://[fc00::1]:1", false},
    {"tcp://[fdff:ffff::1]:1", false},
    {"tcp://[fe00::1]:1", true},
    /* fe80::/10 link-local, fec0::/10 site-local */
    {"tcp://[fe7f:ffff::1]:1", true},
    {"tcp://[fe80::1]:1", false},
    {"tcp://[febf::1]:1", false},
    {"tcp://[fec0::1]:1", false},
    {"tcp://[feff::1]:1", false},
    /* ff00::/8 multicast */
    {"tcp://[ff02::1]:1", false},
    {"tcp://[2001:db8::1]:7001", true},
    {"quic://[2a00:1450::200e]:443", true},
    /* names, whatever they resolve to, and what is not a URI */
    {"tcp://localhost:1", false},
    {"quic://relay.example:443", false},
    {"tcp://8.8.8.8.example:1", false},
    {"tcp://2130706433:1", false},
    {"tcp://0x7f.0.0.1:1", false},
    {"8.8.8.8:1", false},
    {"", false},
};

START_TEST(desc_public_addresses)
{
    ck_assert_msg(desc_uri_public(addr_cases[_i].uri) == addr_cases[_i].pub, "%s: expected %s",
                  addr_cases[_i].uri, addr_cases[_i].pub ? "public" : "refused");
}
END_TEST

/* desc_addresses_ok: every URI must pass, unless private ones are allowed. */
START_TEST(desc_addresses_all)
{
    static const char *const mixed[] = {"tcp://8.8.8.8:1", "tcp://[2001:db8::1]:2",
                                        "tcp://192.168.1.1:3"};
    struct ovl_identity id;
    struct desc d;

    make_id(&id, 9);
    make_desc(&d, &id, DESC_RELAY, mixed, 2);
    ck_assert(desc_addresses_ok(&d, false));
    make_desc(&d, &id, DESC_RELAY, mixed, 3);
    ck_assert(!desc_addresses_ok(&d, false));
    ck_assert(desc_addresses_ok(&d, true));
}
END_TEST

/* The relay list of a 1,000-relay network (docs/PROTOCOL.md: a list is
 * one document, at most DOC_MAX_LEN, carried as one directory message):
 * relays listening on an IPv4 and an IPv6 address with the longest ports
 * and a short exit policy fit, parse back whole, and fit the message. */
START_TEST(doc_list_1000)
{
    static const char *const uris[] = {"tcp://203.0.113.254:65535", "quic://[2001:db8::1]:65535"};
    enum { N = 1000 };
    struct ovl_identity bs, id;
    struct doc_builder b;
    struct doc doc;
    struct desc d;
    struct exit_policy ep;
    uint8_t raw[DESC_MAX_LEN], seed[OVL_ED25519_SEED] = {0}, *out = NULL, policy[DESC_POLICY_MAX];
    size_t len, dlen, plen;
    unsigned bad;

    make_id(&bs, 0x77);
    memset(&ep, 0, sizeof(ep));
    ck_assert_int_eq(exit_policy_parse(&ep, "accept *:80, accept *:443, reject *:*", &bad, NULL),
                     0);
    ck_assert_int_eq(exit_policy_encode(&ep, policy, sizeof(policy), &plen), 0);
    ck_assert_int_eq(doc_begin(&b, DOC_LIST, 0, 0, NULL, NOW, NOW + 60000, DOC_MAX_LEN), 0);
    for (unsigned i = 0; i < N; i++) {
        st_le32(seed, i + 1);
        ck_assert_int_eq(ovl_identity_from_seed(&id, seed), 0);
        make_desc(&d, &id, DESC_RELAY | DESC_ENDPOINT | DESC_EXIT, uris, 2);
        d.policy_len = (uint8_t)plen;
        memcpy(d.policy, policy, plen);
        ck_assert_int_eq(desc_sign(&d, &id, raw, sizeof(raw), &len), 0);
        ck_assert_int_eq(doc_add(&b, raw, len), 0);
    }
    ck_assert_int_eq(doc_finish(&b, &bs, &out, &dlen), 0);
    doc_builder_free(&b);
    ck_assert_uint_le(dlen, DOC_MAX_LEN);
    ck_assert_uint_le(2 + dlen, DIRMSG_MAX_LEN); /* op | status | document */
    ck_assert_int_eq(doc_parse(&doc, out, dlen, bs.pk), 0);
    ck_assert_uint_eq(doc.count, N);
    ck_assert_uint_eq(doc.descs[N - 1].policy_len, plen);
    ck_assert_str_eq(doc.descs[N - 1].uris[1], uris[1]);
    doc_free(&doc);
    free(out);
}
END_TEST

static Suite *desc_suite(void)
{
    Suite *s = suite_create("desc");
    TCase *tc = tcase_create("desc");
    tcase_add_loop_test(tc, desc_roundtrip, 0, (int)ARRAY_LEN(uri_sets));
    tcase_add_test(tc, desc_truncated);
    tcase_add_test(tc, desc_bitflip);
    tcase_add_test(tc, desc_capacity);
    tcase_add_loop_test(tc, desc_bad_fields, 0, (int)ARRAY_LEN(bad_fields));
    tcase_add_test(tc, desc_bad_structure);
    tcase_add_test(tc, desc_wrong_signer);
    tcase_add_test(tc, desc_policy);
    tcase_add_test(tc, desc_policy_max);
    tcase_add_test(tc, desc_policy_bad);
    tcase_add_test(tc, desc_family);
    tcase_add_test(tc, desc_family_max);
    tcase_add_test(tc, desc_family_bad);
    tcase_add_loop_test(tc, desc_public_addresses, 0, (int)ARRAY_LEN(addr_cases));
    tcase_add_test(tc, desc_addresses_all);
    suite_add_tcase(s, tc);

    tc = tcase_create("doc");
    tcase_add_test(tc, doc_roundtrip_list);
    tcase_add_test(tc, doc_roundtrip_chain);
    tcase_add_test(tc, doc_tampered);
    tcase_add_loop_test(tc, doc_bad, 0, (int)ARRAY_LEN(bad_docs));
    tcase_add_test(tc, doc_bad_entry);
    tcase_add_test(tc, doc_roundtrip_set);
    tcase_add_loop_test(tc, doc_bad_set, 0, (int)ARRAY_LEN(bad_sets));
    tcase_add_test(tc, doc_set_max);
    tcase_add_test(tc, doc_builder_limits);
    tcase_add_test(tc, doc_list_1000);
    suite_add_tcase(s, tc);
    return s;
}

OVL_CHECK_MAIN(desc_suite)
