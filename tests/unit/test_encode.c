/* test_encode.c - hex, base32 (RFC 4648 vectors) and node IDs. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "lib/crypto.h"
#include "lib/encode.h"
#include "check_main.h"

static const struct {
    const char *plain, *b32;
} rfc4648[] = {
    {"", ""},
    {"f", "my"},
    {"fo", "mzxq"},
    {"foo", "mzxw6"},
    {"foob", "mzxw6yq"},
    {"fooba", "mzxw6ytb"},
    {"foobar", "mzxw6ytboi"},
};

START_TEST(base32_rfc4648)
{
    const char *plain = rfc4648[_i].plain, *b32 = rfc4648[_i].b32;
    size_t n = strlen(plain);
    char out[32];
    uint8_t back[16];
    ck_assert_int_eq(enc_base32(out, sizeof(out), (const uint8_t *)plain, n), 0);
    ck_assert_str_eq(out, b32);
    memset(back, 0xaa, sizeof(back));
    ck_assert_int_eq(dec_base32(back, n, b32), 0);
    ck_assert_mem_eq(back, plain, n);

    /* Upper case is accepted on input. */
    char upper[32];
    for (size_t i = 0; i <= strlen(b32); i++)
        upper[i] = (b32[i] >= 'a' && b32[i] <= 'z') ? (char)(b32[i] - 32) : b32[i];
    ck_assert_int_eq(dec_base32(back, n, upper), 0);
    ck_assert_mem_eq(back, plain, n);
}
END_TEST

START_TEST(base32_output_too_short)
{
    char out[11];
    const uint8_t *in = (const uint8_t *)"foobar";
    ck_assert_int_eq(enc_base32(out, 10, in, 6), OVL_ETOOBIG); /* needs 10 + NUL */
    ck_assert_int_eq(enc_base32(out, 11, in, 6), 0);
    ck_assert_str_eq(out, "mzxw6ytboi");
    ck_assert_int_eq(enc_base32(out, 0, in, 0), OVL_ETOOBIG);
}
END_TEST

/* Every entry must fail to decode into `n` bytes. */
static const struct {
    const char *in;
    size_t n;
} b32_bad[] = {
    {"mz", 1},          /* "mz" leaves non-zero trailing bits ("my" is canonical) */
    {"mzxr", 2},        /* trailing bits set */
    {"mzxw7", 3},       /* trailing bit set */
    {"mzxw6yr", 4},     /* trailing bits set */
    {"mzxw6ytbop", 6},  /* trailing bits set */
    {"m", 1},           /* too short */
    {"myy", 1},         /* too long */
    {"mzxw6", 4},       /* length for 3 bytes, asked for 4 */
    {"mzxw6", 2},       /* length for 3 bytes, asked for 2 */
    {"my======", 1},    /* padding is not accepted */
    {"m1", 1},          /* '1' is not in the alphabet */
    {"m8", 1},          /* nor '8' */
    {"m0", 1},          /* nor '0' */
    {"m-", 1},          /* nor punctuation */
    {"my ", 1},         /* trailing space */
    {" my", 1},         /* leading space */
    {"", 1},            /* empty for a non-empty result */
    {"a", 0},           /* non-empty for an empty result */
    {"mzx\xc3\xa9", 3}, /* non-ASCII */
};

START_TEST(base32_rejects)
{
    uint8_t out[8];
    memset(out, 0xaa, sizeof(out));
    ck_assert_msg(dec_base32(out, b32_bad[_i].n, b32_bad[_i].in) == OVL_EINVAL,
                  "accepted \"%s\" for %zu bytes", b32_bad[_i].in, b32_bad[_i].n);
    for (size_t i = 0; i < b32_bad[_i].n; i++)
        ck_assert_uint_eq(out[i], 0); /* no partial output left behind */
}
END_TEST

START_TEST(base32_random_round_trip)
{
    uint8_t in[64], back[64];
    char text[128];
    for (size_t n = 0; n <= sizeof(in); n++) {
        ovl_random(in, n);
        ck_assert_int_eq(enc_base32(text, sizeof(text), in, n), 0);
        ck_assert_uint_eq(strlen(text), (n * 8 + 4) / 5);
        ck_assert_int_eq(dec_base32(back, n, text), 0);
        ck_assert_mem_eq(back, in, n);
    }
}
END_TEST

START_TEST(hex_basics)
{
    const uint8_t in[] = {0x00, 0x01, 0xab, 0xcd, 0xef, 0xff};
    char out[13];
    uint8_t back[6];
    ck_assert_int_eq(enc_hex(out, sizeof(out), in, sizeof(in)), 0);
    ck_assert_str_eq(out, "0001abcdefff");
    ck_assert_int_eq(enc_hex(out, 12, in, sizeof(in)), OVL_ETOOBIG);
    ck_assert_int_eq(dec_hex(back, sizeof(back), "0001ABCDEFff"), 0);
    ck_assert_mem_eq(back, in, sizeof(in));
    ck_assert_int_eq(enc_hex(out, 1, in, 0), 0);
    ck_assert_str_eq(out, "");
    ck_assert_int_eq(dec_hex(back, 0, ""), 0);
}
END_TEST

static const struct {
    const char *in;
    size_t n;
} hex_bad[] = {
    {"0", 1},   {"000", 1},  {"0000", 1}, {"", 1},   {"0g", 1}, {"g0", 1},   {" 00", 1},
    {"00 ", 1}, {"0x00", 2}, {"0:00", 2}, {"-1", 1}, {"00", 0}, {"\xff", 1},
};

START_TEST(hex_rejects)
{
    uint8_t out[4];
    memset(out, 0xaa, sizeof(out));
    ck_assert_msg(dec_hex(out, hex_bad[_i].n, hex_bad[_i].in) == OVL_EINVAL,
                  "accepted \"%s\" for %zu bytes", hex_bad[_i].in, hex_bad[_i].n);
    for (size_t i = 0; i < hex_bad[_i].n; i++)
        ck_assert_uint_eq(out[i], 0);
}
END_TEST

START_TEST(hex_random_round_trip)
{
    uint8_t in[40], back[40];
    char text[81];
    for (size_t n = 0; n <= sizeof(in); n++) {
        ovl_random(in, n);
        ck_assert_int_eq(enc_hex(text, sizeof(text), in, n), 0);
        ck_assert_uint_eq(strlen(text), 2 * n);
        ck_assert_int_eq(dec_hex(back, n, text), 0);
        ck_assert_mem_eq(back, in, n);
    }
}
END_TEST

START_TEST(node_id)
{
    uint8_t pk[32], back[32];
    char id[OVL_NODE_ID_LEN + 1];
    for (int round = 0; round < 50; round++) {
        ovl_random(pk, sizeof(pk));
        memset(id, 'x', sizeof(id));
        node_id_format(id, pk);
        ck_assert_uint_eq(strlen(id), OVL_NODE_ID_LEN);
        for (size_t i = 0; i < OVL_NODE_ID_LEN; i++)
            ck_assert(strchr("abcdefghijklmnopqrstuvwxyz234567", id[i]) != NULL);
        ck_assert_int_eq(node_id_parse(back, id), 0);
        ck_assert_mem_eq(back, pk, 32);
    }

    memset(pk, 0, sizeof(pk));
    node_id_format(id, pk);
    ck_assert_str_eq(id, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
    memset(pk, 0xff, sizeof(pk));
    node_id_format(id, pk);
    /* 256 one-bits then 4 zero padding bits: the last character is 'q' (10000). */
    ck_assert_str_eq(id, "777777777777777777777777777777777777777777777777777q");
    ck_assert_int_eq(node_id_parse(back, id), 0);
    ck_assert_mem_eq(back, pk, 32);
}
END_TEST

static const char *const node_id_bad[] = {
    "",
    "aaaa",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",   /* 51 */
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", /* 53 */
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab",  /* trailing bit */
    "777777777777777777777777777777777777777777777777777r",  /* trailing bit */
    "aaaaaaaaaaaaaaaaaaaaaaaaa1aaaaaaaaaaaaaaaaaaaaaaaaaa",  /* bad char */
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa=",  /* padding */
};

START_TEST(node_id_rejects)
{
    uint8_t pk[32];
    ck_assert_int_eq(node_id_parse(pk, node_id_bad[_i]), OVL_EINVAL);
}
END_TEST

static Suite *encode_suite(void)
{
    Suite *s = suite_create("encode");
    TCase *tc = tcase_create("encode");
    tcase_add_loop_test(tc, base32_rfc4648, 0, sizeof(rfc4648) / sizeof(rfc4648[0]));
    tcase_add_test(tc, base32_output_too_short);
    tcase_add_loop_test(tc, base32_rejects, 0, sizeof(b32_bad) / sizeof(b32_bad[0]));
    tcase_add_test(tc, base32_random_round_trip);
    tcase_add_test(tc, hex_basics);
    tcase_add_loop_test(tc, hex_rejects, 0, sizeof(hex_bad) / sizeof(hex_bad[0]));
    tcase_add_test(tc, hex_random_round_trip);
    tcase_add_test(tc, node_id);
    tcase_add_loop_test(tc, node_id_rejects, 0, sizeof(node_id_bad) / sizeof(node_id_bad[0]));
    suite_add_tcase(s, tc);
    return s;
}

OVL_CHECK_MAIN(encode_suite)
