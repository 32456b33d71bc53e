/* test_crypto.c - known-answer vectors and misuse cases for lib/crypto. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/crypto.h"
#include "check_main.h"

#define MAXBUF 256

/* Decode a hex literal of at most MAXBUF bytes; returns its length. */
static size_t hx(uint8_t *out, const char *hex)
{
    size_t n = strlen(hex);
    ck_assert_uint_eq(n % 2, 0);
    ck_assert_uint_le(n / 2, MAXBUF);
    for (size_t i = 0; i < n / 2; i++) {
        unsigned v;
        ck_assert_int_eq(sscanf(hex + 2 * i, "%2x", &v), 1);
        out[i] = (uint8_t)v;
    }
    return n / 2;
}

static bool all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i])
            return false;
    }
    return true;
}

static void setup(void)
{
    ck_assert_int_eq(ovl_crypto_init(), 0);
}

/* ---- X25519 (RFC 7748) ---- */

START_TEST(x25519_rfc7748_5_2)
{
    uint8_t k[32], u[32], want[32], out[32];
    hx(k, "a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4");
    hx(u, "e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c");
    hx(want, "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552");
    ck_assert_int_eq(ovl_x25519(out, k, u), 0);
    ck_assert_mem_eq(out, want, 32);
}
END_TEST

START_TEST(x25519_rfc7748_6_1)
{
    uint8_t a[32], b[32], apub[32], bpub[32], shared[32], nine[32] = {9};
    uint8_t out[32];
    hx(a, "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
    hx(apub, "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a");
    hx(b, "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb");
    hx(bpub, "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f");
    hx(shared, "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742");
    ck_assert_int_eq(ovl_x25519(out, a, nine), 0);
    ck_assert_mem_eq(out, apub, 32);
    ck_assert_int_eq(ovl_x25519(out, b, nine), 0);
    ck_assert_mem_eq(out, bpub, 32);
    ck_assert_int_eq(ovl_x25519(out, a, bpub), 0);
    ck_assert_mem_eq(out, shared, 32);
    ck_assert_int_eq(ovl_x25519(out, b, apub), 0);
    ck_assert_mem_eq(out, shared, 32);
}
END_TEST

START_TEST(x25519_low_order_rejected)
{
    uint8_t sk[32], pk[32], zero[32] = {0}, out[32];
    ovl_x25519_keypair(pk, sk);
    memset(out, 0xaa, sizeof(out));
    ck_assert_int_eq(ovl_x25519(out, sk, zero), OVL_ECRYPTO);
    ck_assert(all_zero(out, sizeof(out)));
}
END_TEST

START_TEST(x25519_keypair_agrees)
{
    uint8_t apk[32], ask[32], bpk[32], bsk[32], s1[32], s2[32];
    ovl_x25519_keypair(apk, ask);
    ovl_x25519_keypair(bpk, bsk);
    ck_assert_int_eq(ovl_x25519(s1, ask, bpk), 0);
    ck_assert_int_eq(ovl_x25519(s2, bsk, apk), 0);
    ck_assert_mem_eq(s1, s2, 32);
    ck_assert(!ovl_equal(apk, bpk, 32));
}
END_TEST

/* ---- Ed25519 (RFC 8032 section 7.1) ---- */

static const struct {
    const char *seed, *pk, *msg, *sig;
} ed_vectors[] = {
    {"9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
     "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", "",
     "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
     "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"},
    {"4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
     "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c", "72",
     "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da"
     "085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"},
};

START_TEST(ed25519_rfc8032)
{
    uint8_t seed[32], pk[32], msg[MAXBUF], sig[64], out[64];
    struct ovl_identity id;
    hx(seed, ed_vectors[_i].seed);
    hx(pk, ed_vectors[_i].pk);
    size_t mlen = hx(msg, ed_vectors[_i].msg);
    hx(sig, ed_vectors[_i].sig);
    ck_assert_int_eq(ovl_identity_from_seed(&id, seed), 0);
    ck_assert_mem_eq(id.pk, pk, 32);
    ck_assert_int_eq(ovl_sign(&id, msg, mlen, out), 0);
    ck_assert_mem_eq(out, sig, 64);
    ck_assert_int_eq(ovl_verify(pk, msg, mlen, sig), 0);
    ovl_identity_wipe(&id);
    ck_assert(all_zero(id.sk, sizeof(id.sk)));
}
END_TEST

START_TEST(ed25519_verify_rejects)
{
    struct ovl_identity a, b;
    uint8_t msg[] = "attack at dawn", sig[64];
    ck_assert_int_eq(ovl_identity_generate(&a), 0);
    ck_assert_int_eq(ovl_identity_generate(&b), 0);
    ck_assert_int_eq(ovl_sign(&a, msg, sizeof(msg), sig), 0);
    ck_assert_int_eq(ovl_verify(a.pk, msg, sizeof(msg), sig), 0);
    ck_assert_int_eq(ovl_verify(b.pk, msg, sizeof(msg), sig), OVL_ECRYPTO);
    msg[0] ^= 1;
    ck_assert_int_eq(ovl_verify(a.pk, msg, sizeof(msg), sig), OVL_ECRYPTO);
    msg[0] ^= 1;
    sig[63] ^= 0x10;
    ck_assert_int_eq(ovl_verify(a.pk, msg, sizeof(msg), sig), OVL_ECRYPTO);
}
END_TEST

START_TEST(ed_to_x25519_consistent)
{
    struct ovl_identity a, b;
    uint8_t ax[32], bx[32], apx[32], bpx[32], s1[32], s2[32];
    ck_assert_int_eq(ovl_identity_generate(&a), 0);
    ck_assert_int_eq(ovl_identity_generate(&b), 0);
    ck_assert_int_eq(ovl_ed_sk_to_x25519(ax, a.sk), 0);
    ck_assert_int_eq(ovl_ed_sk_to_x25519(bx, b.sk), 0);
    ck_assert_int_eq(ovl_ed_pk_to_x25519(apx, a.pk), 0);
    ck_assert_int_eq(ovl_ed_pk_to_x25519(bpx, b.pk), 0);
    ck_assert_int_eq(ovl_x25519(s1, ax, bpx), 0);
    ck_assert_int_eq(ovl_x25519(s2, bx, apx), 0);
    ck_assert_mem_eq(s1, s2, 32);
    /* The converted public key is the base-point multiple of the converted secret. */
    uint8_t nine[32] = {9}, derived[32];
    ck_assert_int_eq(ovl_x25519(derived, ax, nine), 0);
    ck_assert_mem_eq(derived, apx, 32);
}
END_TEST

/* ---- AEAD known answers ---- */

struct aead_kat {
    const char *name, *key, *nonce, *ad, *pt, *ct, *tag;
};

/* McGrew & Viega, "The Galois/Counter Mode of Operation", test cases 13, 14
 * and 16 (the 256-bit-key cases with a 96-bit IV). */
static const struct aead_kat gcm_vectors[] = {
    {"gcm13", "0000000000000000000000000000000000000000000000000000000000000000",
     "000000000000000000000000", "", "", "", "530f8afbc74536b9a963b4f1c4cb738b"},
    {"gcm14", "0000000000000000000000000000000000000000000000000000000000000000",
     "000000000000000000000000", "", "00000000000000000000000000000000",
     "cea7403d4d606b6e074ec5d3baf39d18", "d0d1c8a799996bf0265b98b5d48ab919"},
    {"gcm16", "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308",
     "cafebabefacedbaddecaf888", "feedfacedeadbeeffeedfacedeadbeefabaddad2",
     "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
     "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39",
     "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
     "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662",
     "76fc6ece0f4e1768cddf8853bb2d551b"},
};

/* RFC 8439 section 2.8.2. */
static const struct aead_kat chacha_vector = {
    "rfc8439",
    "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f",
    "070000004041424344454647",
    "50515253c0c1c2c3c4c5c6c7",
    "4c616469657320616e642047656e746c656d656e206f662074686520636c6173"
    "73206f66202739393a204966204920636f756c64206f6666657220796f75206f"
    "6e6c79206f6e652074697020666f7220746865206675747572652c2073756e73"
    "637265656e20776f756c642062652069742e",
    "d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d6"
    "3dbea45e8ca9671282fafb69da92728b1a71de0a9e060b2905d6a5b67ecd3b36"
    "92ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc"
    "3ff4def08e4b7a9de576d26586cec64b6116",
    "1ae10b594f09e26a7e902ecbd0600691",
};

static void check_kat(enum ovl_aead_suite suite, const struct aead_kat *v)
{
    uint8_t key[32], nonce[12], ad[MAXBUF], pt[MAXBUF], ct[MAXBUF], tag[16];
    uint8_t out[MAXBUF + 16], back[MAXBUF];
    struct ovl_aead a;
    hx(key, v->key);
    hx(nonce, v->nonce);
    size_t adlen = hx(ad, v->ad);
    size_t len = hx(pt, v->pt);
    ck_assert_uint_eq(hx(ct, v->ct), len);
    hx(tag, v->tag);

    ck_assert_int_eq(ovl_aead_init(&a, suite, key), 0);
    ck_assert_int_eq(ovl_aead_seal(&a, out, pt, len, ad, adlen, nonce), 0);
    ck_assert_msg(memcmp(out, ct, len) == 0, "%s: ciphertext", v->name);
    ck_assert_msg(memcmp(out + len, tag, 16) == 0, "%s: tag", v->name);
    ck_assert_int_eq(ovl_aead_open(&a, back, out, len + 16, ad, adlen, nonce), 0);
    ck_assert_mem_eq(back, pt, len);
    ovl_aead_wipe(&a);
}

START_TEST(aes256gcm_kat)
{
    check_kat(OVL_AEAD_AES256GCM, &gcm_vectors[_i]);
}
END_TEST

START_TEST(chacha_kat)
{
    check_kat(OVL_AEAD_CHACHA20POLY1305, &chacha_vector);
}
END_TEST

START_TEST(aes_unavailable_refused)
{
    struct ovl_aead a;
    uint8_t key[32] = {0};
    uint32_t mask = 99;
    ck_assert_int_eq(ovl_aead_init(&a, OVL_AEAD_AES256GCM, key), OVL_EUNSUPP);
    ck_assert_int_eq(ovl_aead_parse("aes256gcm", &mask), OVL_EUNSUPP);
    ck_assert_uint_eq(ovl_aead_pick(OVL_AEAD_ALL), OVL_AEAD_CHACHA20POLY1305);
}
END_TEST

/* ---- AEAD round trips and tampering, run for every available suite ---- */

static enum ovl_aead_suite suite_of(int i)
{
    return i == 0 ? OVL_AEAD_CHACHA20POLY1305 : OVL_AEAD_AES256GCM;
}

START_TEST(aead_round_trip)
{
    enum ovl_aead_suite s = suite_of(_i);
    struct ovl_aead a;
    uint8_t key[32], nonce[12], msg[100], buf[116], out[100];
    const uint8_t ad[] = "header";
    ovl_random(key, sizeof(key));
    ovl_random(msg, sizeof(msg));
    ovl_nonce(nonce, 7);
    ck_assert_int_eq(ovl_aead_init(&a, s, key), 0);
    ck_assert_int_eq(a.suite, s);
    ck_assert_int_eq(ovl_aead_seal(&a, buf, msg, sizeof(msg), ad, sizeof(ad), nonce), 0);
    ck_assert(memcmp(buf, msg, sizeof(msg)) != 0);
    ck_assert_int_eq(ovl_aead_open(&a, out, buf, sizeof(buf), ad, sizeof(ad), nonce), 0);
    ck_assert_mem_eq(out, msg, sizeof(msg));

    /* In place, both ways. */
    memcpy(buf, msg, sizeof(msg));
    ck_assert_int_eq(ovl_aead_seal(&a, buf, buf, sizeof(msg), ad, sizeof(ad), nonce), 0);
    ck_assert_int_eq(ovl_aead_open(&a, buf, buf, sizeof(buf), ad, sizeof(ad), nonce), 0);
    ck_assert_mem_eq(buf, msg, sizeof(msg));

    /* Empty plaintext and no AD. */
    ck_assert_int_eq(ovl_aead_seal(&a, buf, NULL, 0, NULL, 0, nonce), 0);
    ck_assert_int_eq(ovl_aead_open(&a, out, buf, 16, NULL, 0, nonce), 0);
    ovl_aead_wipe(&a);
    ck_assert(all_zero((const uint8_t *)&a, sizeof(a)));
}
END_TEST

/* Apart, in place, and with the tag apart, every layout gives the same
 * bytes: the AES path picks a different library call for each. */
START_TEST(aead_layouts)
{
    enum ovl_aead_suite s = suite_of(_i);
    struct ovl_aead a;
    uint8_t key[32], nonce[12], msg[200], ref[216], buf[216], out[200], tag[16];
    const uint8_t ad[] = "ad";
    ovl_random(key, sizeof(key));
    ovl_random(msg, sizeof(msg));
    ovl_nonce(nonce, 9);
    ck_assert_int_eq(ovl_aead_init(&a, s, key), 0);
    ck_assert_int_eq(ovl_aead_seal(&a, ref, msg, sizeof(msg), ad, sizeof(ad), nonce), 0);
    memcpy(buf, msg, sizeof(msg));
    ck_assert_int_eq(ovl_aead_seal(&a, buf, buf, sizeof(msg), ad, sizeof(ad), nonce), 0);
    ck_assert_mem_eq(buf, ref, sizeof(ref));
    ck_assert_int_eq(ovl_aead_open(&a, out, buf, sizeof(buf), ad, sizeof(ad), nonce), 0);
    ck_assert_mem_eq(out, msg, sizeof(msg));

    memcpy(buf, msg, sizeof(msg));
    ck_assert_int_eq(ovl_aead_seal_detached(&a, buf, tag, buf, sizeof(msg), ad, sizeof(ad), nonce),
                     0);
    ck_assert_mem_eq(buf, ref, sizeof(msg));
    ck_assert_mem_eq(tag, ref + sizeof(msg), sizeof(tag));
    ck_assert_int_eq(ovl_aead_open_detached(&a, out, buf, sizeof(msg), tag, ad, sizeof(ad), nonce),
                     0);
    ck_assert_mem_eq(out, msg, sizeof(msg));
    ck_assert_int_eq(ovl_aead_seal_detached(&a, out, tag, msg, sizeof(msg), ad, sizeof(ad), nonce),
                     0);
    ck_assert_mem_eq(out, ref, sizeof(msg));
    ck_assert_int_eq(ovl_aead_open_detached(&a, out, out, sizeof(msg), tag, ad, sizeof(ad), nonce),
                     0);
    ck_assert_mem_eq(out, msg, sizeof(msg));
    ovl_aead_wipe(&a);
}
END_TEST

enum tamper { T_CT, T_TAG, T_AD, T_NONCE, T_KEY, T_COUNT };

START_TEST(aead_tamper)
{
    enum ovl_aead_suite s = suite_of(_i / T_COUNT);
    enum tamper t = (enum tamper)(_i % T_COUNT);
    struct ovl_aead a, other;
    uint8_t key[32], nonce[12], msg[64], buf[80], out[64];
    uint8_t ad[8] = "adadadad";
    ovl_random(key, sizeof(key));
    ovl_random(msg, sizeof(msg));
    ovl_nonce(nonce, 1);
    ck_assert_int_eq(ovl_aead_init(&a, s, key), 0);
    ck_assert_int_eq(ovl_aead_seal(&a, buf, msg, sizeof(msg), ad, sizeof(ad), nonce), 0);
    const struct ovl_aead *opener = &a;
    switch (t) {
    case T_CT:
        buf[10] ^= 0x01;
        break;
    case T_TAG:
        buf[sizeof(buf) - 1] ^= 0x80;
        break;
    case T_AD:
        ad[3] ^= 0x04;
        break;
    case T_NONCE:
        ovl_nonce(nonce, 2);
        break;
    default:
        key[0] ^= 1;
        ck_assert_int_eq(ovl_aead_init(&other, s, key), 0);
        opener = &other;
        break;
    }
    memset(out, 0xaa, sizeof(out));
    ck_assert_int_eq(ovl_aead_open(opener, out, buf, sizeof(buf), ad, sizeof(ad), nonce),
                     OVL_ECRYPTO);
    ck_assert(all_zero(out, sizeof(out)));
    if (opener == &other)
        ovl_aead_wipe(&other);
    ovl_aead_wipe(&a);
}
END_TEST

START_TEST(aead_short_input)
{
    enum ovl_aead_suite s = suite_of(_i);
    struct ovl_aead a;
    uint8_t key[32] = {1}, nonce[12] = {0}, buf[16] = {0}, out[16];
    ck_assert_int_eq(ovl_aead_init(&a, s, key), 0);
    for (size_t len = 0; len < OVL_AEAD_TAG; len++)
        ck_assert_int_eq(ovl_aead_open(&a, out, buf, len, NULL, 0, nonce), OVL_EINVAL);
    /* A bare tag is a valid length that simply fails to authenticate. */
    ck_assert_int_eq(ovl_aead_open(&a, out, buf, 16, NULL, 0, nonce), OVL_ECRYPTO);
    ovl_aead_wipe(&a);
}
END_TEST

START_TEST(aead_init_bad_suite)
{
    struct ovl_aead a;
    uint8_t key[32] = {0};
    ck_assert_int_eq(ovl_aead_init(&a, (enum ovl_aead_suite)0, key), OVL_EUNSUPP);
    ck_assert_int_eq(ovl_aead_init(&a, (enum ovl_aead_suite)OVL_AEAD_ALL, key), OVL_EUNSUPP);
}
END_TEST

START_TEST(aead_names)
{
    uint32_t mask = 0;
    ck_assert_str_eq(ovl_aead_name(OVL_AEAD_AES256GCM), "aes256gcm");
    ck_assert_str_eq(ovl_aead_name(OVL_AEAD_CHACHA20POLY1305), "chacha20poly1305");
    ck_assert_str_eq(ovl_aead_name((enum ovl_aead_suite)0), "none");
    ck_assert_str_eq(ovl_aead_name((enum ovl_aead_suite)OVL_AEAD_ALL), "none");

    ck_assert_int_eq(ovl_aead_parse("chacha20poly1305", &mask), 0);
    ck_assert_uint_eq(mask, OVL_AEAD_CHACHA20POLY1305);
    ck_assert_int_eq(ovl_aead_parse("auto", &mask), 0);
    ck_assert_uint_eq(mask, ovl_aead_available());
    ck_assert(mask & OVL_AEAD_CHACHA20POLY1305);
    static const char *const bad[] = {"", "AES256GCM", "aes", "chacha20poly1305 ", "none", "all"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        mask = 99;
        ck_assert_int_eq(ovl_aead_parse(bad[i], &mask), OVL_EINVAL);
        ck_assert_uint_eq(mask, 0);
    }
    if (ovl_aead_available() & OVL_AEAD_AES256GCM) {
        ck_assert_int_eq(ovl_aead_parse("aes256gcm", &mask), 0);
        ck_assert_uint_eq(mask, OVL_AEAD_AES256GCM);
        ck_assert_uint_eq(ovl_aead_pick(OVL_AEAD_ALL), OVL_AEAD_AES256GCM);
    }
    ck_assert_uint_eq(ovl_aead_pick(OVL_AEAD_CHACHA20POLY1305), OVL_AEAD_CHACHA20POLY1305);
    ck_assert_uint_eq(ovl_aead_pick(0), 0);
}
END_TEST

START_TEST(nonce_layout)
{
    uint8_t n[12];
    const uint8_t want[12] = {0, 0, 0, 0, 8, 7, 6, 5, 4, 3, 2, 1};
    memset(n, 0xff, sizeof(n));
    ovl_nonce(n, 0x0102030405060708ull);
    ck_assert_mem_eq(n, want, 12);
}
END_TEST

/* ---- hashing and key derivation ---- */

START_TEST(hash2_known)
{
    uint8_t out[32], want[32], alt[32];
    hx(want, "0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8");
    ovl_hash2(out, NULL, 0, NULL, 0);
    ck_assert_mem_eq(out, want, 32);
    hx(want, "bddd813c634239723171ef3fee98579b94964e3bb1cb3e427262c8c068d52319");
    ovl_hash2(out, (const uint8_t *)"abc", 3, NULL, 0);
    ck_assert_mem_eq(out, want, 32);
    ovl_hash2(alt, (const uint8_t *)"a", 1, (const uint8_t *)"bc", 2);
    ck_assert_mem_eq(alt, want, 32);
}
END_TEST

/* Any lengths, and in place: the same as the one-shot hash of a || b. */
START_TEST(hash2_lengths_and_aliasing)
{
    uint8_t in[1000], out[32], want[32];

    for (size_t i = 0; i < sizeof(in); i++)
        in[i] = (uint8_t)i;
    crypto_generichash(want, 32, in, sizeof(in), NULL, 0);
    ovl_hash2(out, in, 32, in + 32, sizeof(in) - 32);
    ck_assert_mem_eq(out, want, 32);
    memcpy(out, in, 32);
    crypto_generichash(want, 32, in, 64, NULL, 0);
    ovl_hash2(out, out, 32, in + 32, 32); /* out aliases a */
    ck_assert_mem_eq(out, want, 32);
}
END_TEST

START_TEST(kdf2_known_and_aliasing)
{
    uint8_t ck[32], o1[32], o2[32], want1[32], want2[32], lab[32];
    const uint8_t ikm[] = "ovl kdf test";
    for (int i = 0; i < 32; i++)
        ck[i] = (uint8_t)i;
    /* Expected values computed independently with keyed BLAKE2b-256. */
    hx(want1, "7627964280b77cd687a1d8569d2d9acfac5e33a25f764fb5c8c7dedf584e2573");
    hx(want2, "778d45d88748224f4f7dfd01f953500bc8fae1ad82e5c7d78916179839bb8bdd");
    hx(lab, "db3fe237b65dcb6dfe38a27089aa829b015e9378e47f59c14f802024d5365473");
    ovl_kdf2(o1, o2, ck, ikm, sizeof(ikm) - 1);
    ck_assert_mem_eq(o1, want1, 32);
    ck_assert_mem_eq(o2, want2, 32);
    ck_assert(!ovl_equal(o1, o2, 32));

    memset(o1, 0, sizeof(o1));
    ovl_kdf2(o1, NULL, ck, ikm, sizeof(ikm) - 1);
    ck_assert_mem_eq(o1, want1, 32);

    uint8_t ck2[32];
    memcpy(ck2, ck, 32);
    ovl_kdf2(ck2, o2, ck2, ikm, sizeof(ikm) - 1); /* chaining key updated in place */
    ck_assert_mem_eq(ck2, want1, 32);
    ck_assert_mem_eq(o2, want2, 32);
    memcpy(ck2, ck, 32);
    ovl_kdf2(o1, ck2, ck2, ikm, sizeof(ikm) - 1);
    ck_assert_mem_eq(o1, want1, 32);
    ck_assert_mem_eq(ck2, want2, 32);

    ovl_kdf_label(o1, ck, "ratchet");
    ck_assert_mem_eq(o1, lab, 32);
    memcpy(ck2, ck, 32);
    ovl_kdf_label(ck2, ck2, "ratchet");
    ck_assert_mem_eq(ck2, lab, 32);
}
END_TEST

START_TEST(kdf2_depends_on_inputs)
{
    uint8_t ck[32] = {1}, ckb[32] = {2}, a1[32], a2[32], b1[32], b2[32], c1[32];
    ovl_kdf2(a1, a2, ck, (const uint8_t *)"x", 1);
    ovl_kdf2(b1, b2, ck, (const uint8_t *)"x", 1);
    ck_assert_mem_eq(a1, b1, 32);
    ck_assert_mem_eq(a2, b2, 32);
    ovl_kdf2(b1, b2, ckb, (const uint8_t *)"x", 1);
    ck_assert(!ovl_equal(a1, b1, 32));
    ck_assert(!ovl_equal(a2, b2, 32));
    ovl_kdf2(c1, NULL, ck, (const uint8_t *)"y", 1);
    ck_assert(!ovl_equal(a1, c1, 32));
    ovl_kdf2(c1, NULL, ck, NULL, 0);
    ck_assert(!ovl_equal(a1, c1, 32));
}
END_TEST

/* ovl_equal goes 16 bytes at a time, then byte by byte: every length up
 * to 80 and every bit of it counts. */
START_TEST(equal_every_bit)
{
    uint8_t a[80], b[80];

    ovl_random(a, sizeof(a));
    memcpy(b, a, sizeof(a));
    for (size_t n = 0; n <= sizeof(a); n++) {
        ck_assert(ovl_equal(a, b, n));
        for (size_t bit = 0; bit < 8 * n; bit++) {
            b[bit / 8] ^= (uint8_t)(1u << (bit % 8));
            ck_assert_msg(!ovl_equal(a, b, n), "len %zu, bit %zu", n, bit);
            b[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        }
    }
}
END_TEST

START_TEST(equal_wipe_random)
{
    uint8_t a[40], b[40];
    ovl_random(a, sizeof(a));
    memcpy(b, a, sizeof(a));
    ck_assert(ovl_equal(a, b, sizeof(a)));
    ck_assert(ovl_equal(a, b, 0));
    b[39] ^= 1;
    ck_assert(!ovl_equal(a, b, sizeof(a)));
    ck_assert(ovl_equal(a, b, 39));
    b[39] ^= 1;
    b[0] ^= 0x80;
    ck_assert(!ovl_equal(a, b, sizeof(a)));
    ovl_wipe(a, sizeof(a));
    ck_assert(all_zero(a, sizeof(a)));
    ovl_wipe(NULL, 0);

    ovl_random(a, sizeof(a));
    ovl_random(b, sizeof(b));
    ck_assert(!ovl_equal(a, b, sizeof(a)));
    ck_assert_uint_eq(ovl_random_uniform(0), 0);
    ck_assert_uint_eq(ovl_random_uniform(1), 0);
    for (int i = 0; i < 1000; i++)
        ck_assert_uint_lt(ovl_random_uniform(7), 7);
}
END_TEST

/* ---- identity files ---- */

static char tmpdir[64];
static char keypath[128];

static void id_setup(void)
{
    setup();
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/ovl-test-crypto-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
    snprintf(keypath, sizeof(keypath), "%s/identity.key", tmpdir);
}

static void id_teardown(void)
{
    char other[160];
    unlink(keypath);
    snprintf(other, sizeof(other), "%s/target.key", tmpdir);
    unlink(other);
    rmdir(tmpdir);
}

static void write_file(const char *path, const uint8_t *p, size_t n, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, p, n), (ssize_t)n);
    ck_assert_int_eq(fchmod(fd, mode), 0);
    close(fd);
}

START_TEST(identity_create_then_reload)
{
    struct ovl_identity a, b;
    struct stat st;
    ck_assert_int_eq(ovl_identity_load(&a, keypath, false), OVL_ENOENT);
    ck_assert_int_eq(ovl_identity_load(&a, keypath, true), 0);
    ck_assert_int_eq(stat(keypath, &st), 0);
    ck_assert_uint_eq(st.st_mode & 0777, 0600);
    ck_assert_int_eq(st.st_size, 32);
    ck_assert_int_eq(ovl_identity_load(&b, keypath, false), 0);
    ck_assert_mem_eq(a.pk, b.pk, 32);
    ck_assert_mem_eq(a.sk, b.sk, 64);
    ck_assert_int_eq(ovl_identity_load(&b, keypath, true), 0); /* no overwrite */
    ck_assert_mem_eq(a.pk, b.pk, 32);
}
END_TEST

START_TEST(identity_matches_seed)
{
    uint8_t seed[32];
    struct ovl_identity a, b;
    ovl_random(seed, sizeof(seed));
    write_file(keypath, seed, 32, 0600);
    ck_assert_int_eq(ovl_identity_load(&a, keypath, false), 0);
    ck_assert_int_eq(ovl_identity_from_seed(&b, seed), 0);
    ck_assert_mem_eq(a.pk, b.pk, 32);
}
END_TEST

static const struct {
    size_t len;
    mode_t mode;
    int want;
} id_bad[] = {
    {32, 0644, OVL_EPERM},  {32, 0640, OVL_EPERM},  {32, 0604, OVL_EPERM}, {32, 0620, OVL_EPERM},
    {31, 0600, OVL_EINVAL}, {33, 0600, OVL_EINVAL}, {0, 0600, OVL_EINVAL}, {64, 0400, OVL_EINVAL},
};

START_TEST(identity_rejects_file)
{
    uint8_t data[64];
    struct ovl_identity id;
    ovl_random(data, sizeof(data));
    write_file(keypath, data, id_bad[_i].len, id_bad[_i].mode);
    memset(&id, 0xaa, sizeof(id));
    ck_assert_int_eq(ovl_identity_load(&id, keypath, true), id_bad[_i].want);
    ck_assert(all_zero(id.sk, sizeof(id.sk)));
    /* The bad file is left alone, not replaced. */
    struct stat st;
    ck_assert_int_eq(stat(keypath, &st), 0);
    ck_assert_int_eq(st.st_size, (off_t)id_bad[_i].len);
}
END_TEST

START_TEST(identity_rejects_symlink)
{
    char target[160];
    uint8_t seed[32] = {7};
    struct ovl_identity id;
    snprintf(target, sizeof(target), "%s/target.key", tmpdir);
    write_file(target, seed, 32, 0600);
    ck_assert_int_eq(symlink(target, keypath), 0);
    ck_assert_int_eq(ovl_identity_load(&id, keypath, false), OVL_EPERM);
    ck_assert_int_eq(ovl_identity_load(&id, keypath, true), OVL_EPERM);
}
END_TEST

START_TEST(identity_rejects_directory)
{
    struct ovl_identity id;
    ck_assert_int_eq(mkdir(keypath, 0700), 0);
    ck_assert_int_eq(ovl_identity_load(&id, keypath, true), OVL_EPERM);
    ck_assert_int_eq(rmdir(keypath), 0);
}
END_TEST

static Suite *crypto_suite(void)
{
    Suite *s = suite_create("crypto");
    TCase *tc = tcase_create("primitives");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_add_test(tc, x25519_rfc7748_5_2);
    tcase_add_test(tc, x25519_rfc7748_6_1);
    tcase_add_test(tc, x25519_low_order_rejected);
    tcase_add_test(tc, x25519_keypair_agrees);
    tcase_add_loop_test(tc, ed25519_rfc8032, 0, sizeof(ed_vectors) / sizeof(ed_vectors[0]));
    tcase_add_test(tc, ed25519_verify_rejects);
    tcase_add_test(tc, ed_to_x25519_consistent);
    tcase_add_test(tc, chacha_kat);
    tcase_add_test(tc, aead_init_bad_suite);
    tcase_add_test(tc, aead_names);
    tcase_add_test(tc, nonce_layout);
    tcase_add_test(tc, hash2_known);
    tcase_add_test(tc, hash2_lengths_and_aliasing);
    tcase_add_test(tc, kdf2_known_and_aliasing);
    tcase_add_test(tc, kdf2_depends_on_inputs);
    tcase_add_test(tc, equal_every_bit);
    tcase_add_test(tc, equal_wipe_random);

    /* Suite 0 is ChaCha20-Poly1305 (always there), suite 1 AES-256-GCM. */
    int nsuites = 1;
    if (ovl_aead_available() & OVL_AEAD_AES256GCM) {
        nsuites = 2;
        tcase_add_loop_test(tc, aes256gcm_kat, 0, sizeof(gcm_vectors) / sizeof(gcm_vectors[0]));
    } else {
        printf("SKIP: AES-256-GCM known-answer tests (no AES-NI/PCLMUL on this CPU)\n");
        tcase_add_test(tc, aes_unavailable_refused);
    }
    tcase_add_loop_test(tc, aead_round_trip, 0, nsuites);
    tcase_add_loop_test(tc, aead_layouts, 0, nsuites);
    tcase_add_loop_test(tc, aead_tamper, 0, nsuites * T_COUNT);
    tcase_add_loop_test(tc, aead_short_input, 0, nsuites);
    suite_add_tcase(s, tc);

    TCase *files = tcase_create("identity");
    tcase_add_checked_fixture(files, id_setup, id_teardown);
    tcase_add_test(files, identity_create_then_reload);
    tcase_add_test(files, identity_matches_seed);
    tcase_add_loop_test(files, identity_rejects_file, 0, sizeof(id_bad) / sizeof(id_bad[0]));
    tcase_add_test(files, identity_rejects_symlink);
    tcase_add_test(files, identity_rejects_directory);
    suite_add_tcase(s, files);
    return s;
}

OVL_CHECK_MAIN(crypto_suite)
