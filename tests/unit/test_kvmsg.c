/* test_kvmsg.c - the control message codec: framing, parsing, building. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/kvmsg.h"
#include "check_main.h"

/* Parse a copy of text (whose length is measured with kv_message_len). */
static int parse_copy(struct kvmsg *m, char *copy, const char *text, size_t len, size_t max)
{
    memcpy(copy, text, len);
    return kvmsg_parse(m, copy, len, max);
}

START_TEST(round_trip)
{
    struct kvbuf b = {0};
    kv_adds(&b, "cmd", "status");
    kv_addu(&b, "links", 18446744073709551615ull);
    kv_addf(&b, "node-id_2", "%s-%d", "x", 7);
    kv_adds(&b, "empty", "");
    kv_end(&b);
    ck_assert_int_eq(b.err, 0);
    const char *want = "cmd=status\nlinks=18446744073709551615\nnode-id_2=x-7\nempty=\n\n";
    ck_assert_uint_eq(b.len, strlen(want));
    ck_assert_mem_eq(b.data, want, b.len);
    ck_assert_uint_eq(kv_message_len(b.data, b.len), b.len);

    struct kvmsg m;
    ck_assert_int_eq(kvmsg_parse(&m, b.data, b.len, 16), 0);
    ck_assert_uint_eq(m.n, 4);
    ck_assert_str_eq(kvmsg_get(&m, "cmd"), "status");
    ck_assert_str_eq(kvmsg_get(&m, "links"), "18446744073709551615");
    ck_assert_str_eq(kvmsg_get(&m, "node-id_2"), "x-7");
    ck_assert_str_eq(kvmsg_get(&m, "empty"), "");
    ck_assert_ptr_null(kvmsg_get(&m, "missing"));
    ck_assert_ptr_null(kvmsg_get(&m, "cm"));
    ck_assert_str_eq(m.pairs[0].key, "cmd");
    kvmsg_free(&m);
    ck_assert_ptr_null(m.pairs);
    ck_assert_uint_eq(m.n, 0);
    kvmsg_free(&m); /* twice is fine */
    kvmsg_free(NULL);
    kvbuf_free(&b);
    ck_assert_ptr_null(b.data);
    kvbuf_free(NULL);
}
END_TEST

START_TEST(empty_message)
{
    char buf[] = "\n";
    struct kvmsg m;
    ck_assert_uint_eq(kv_message_len(buf, 1), 1);
    ck_assert_int_eq(kvmsg_parse(&m, buf, 1, 0), 0);
    ck_assert_uint_eq(m.n, 0);
    ck_assert_ptr_null(kvmsg_get(&m, "x"));
    kvmsg_free(&m);

    struct kvbuf b = {0};
    kv_end(&b);
    ck_assert_int_eq(b.err, 0);
    ck_assert_uint_eq(b.len, 1);
    ck_assert_str_eq(b.data, "\n");
    kvbuf_free(&b);
}
END_TEST

START_TEST(value_with_equals_and_duplicates)
{
    char buf[] = "expr=a=b=c\nk=1\nk=2\nutf8=h\xc3\xa9llo w\xc3\xb6rld!\n\n";
    struct kvmsg m;
    ck_assert_int_eq(kvmsg_parse(&m, buf, strlen(buf), 8), 0);
    ck_assert_uint_eq(m.n, 4);
    ck_assert_str_eq(kvmsg_get(&m, "expr"), "a=b=c");
    ck_assert_str_eq(kvmsg_get(&m, "k"), "1"); /* the first one wins */
    ck_assert_str_eq(m.pairs[2].value, "2");
    ck_assert_str_eq(kvmsg_get(&m, "utf8"), "h\xc3\xa9llo w\xc3\xb6rld!");
    kvmsg_free(&m);
}
END_TEST

static const struct {
    const char *in;
    size_t want;
} lens[] = {
    {"", 0},           {"\n", 1},           {"\n\n", 1}, /* the first message is the empty one */
    {"a=1", 0},        {"a=1\n", 0},        {"a=1\n\n", 5},     {"a=1\n\nb=2\n\n", 5},
    {"a=1\nb=2\n", 0}, {"a=1\nb=2\n\n", 9}, {"a=1\r\n\r\n", 0}, /* CRLF never frames a message */
};

START_TEST(message_len)
{
    ck_assert_uint_eq(kv_message_len(lens[_i].in, strlen(lens[_i].in)), lens[_i].want);
}
END_TEST

START_TEST(message_len_partial)
{
    const char *msg = "cmd=peers\nverbose=1\n\n";
    size_t full = strlen(msg);
    for (size_t i = 0; i < full; i++)
        ck_assert_uint_eq(kv_message_len(msg, i), 0);
    ck_assert_uint_eq(kv_message_len(msg, full), full);
    ck_assert_uint_eq(kv_message_len(NULL, 0), 0);
}
END_TEST

/* Every entry is a framed message that kvmsg_parse must refuse. */
static const struct {
    const char *in;
    int want;
} rejects[] = {
    {"noequals\n\n", OVL_EINVAL},
    {"=value\n\n", OVL_EINVAL},
    {"Key=v\n\n", OVL_EINVAL},
    {"k.e=v\n\n", OVL_EINVAL},
    {"k e=v\n\n", OVL_EINVAL},
    {"k/e=v\n\n", OVL_EINVAL},
    {" k=v\n\n", OVL_EINVAL},
    {"k\xc3\xa9=v\n\n", OVL_EINVAL},
    {"k=v\r\n\n", OVL_EINVAL},
    {"k=v\r\n\r\n", OVL_EINVAL},
    {"k=a\tb\n\n", OVL_EINVAL},
    {"k=a\x7f\n\n", OVL_EINVAL},
    {"k=a\x1b[31m\n\n", OVL_EINVAL},
    {"k=1\n", OVL_EINVAL},          /* no blank line */
    {"k=1", OVL_EINVAL},            /* no newline at all */
    {"k=1\n\nk=2\n\n", OVL_EINVAL}, /* blank line inside: two messages */
    {"\nk=1\n\n", OVL_EINVAL},
    {"a=1\nb=2\nc=3\nd=4\ne=5\n\n", OVL_ETOOBIG}, /* cap below is 4 */
};

START_TEST(parse_rejects)
{
    char buf[64];
    struct kvmsg m;
    size_t len = strlen(rejects[_i].in);
    ck_assert_int_eq(parse_copy(&m, buf, rejects[_i].in, len, 4), rejects[_i].want);
    ck_assert_ptr_null(m.pairs);
    ck_assert_uint_eq(m.n, 0);
    /* A refused message is left as it was, for logging. */
    ck_assert_mem_eq(buf, rejects[_i].in, len);
}
END_TEST

START_TEST(parse_rejects_nul)
{
    char buf[] = "k=a\0b\n\n";
    struct kvmsg m;
    ck_assert_int_eq(kvmsg_parse(&m, buf, sizeof(buf) - 1, 4), OVL_EINVAL);
    char buf2[] = "k\0=ab\n\n";
    ck_assert_int_eq(kvmsg_parse(&m, buf2, sizeof(buf2) - 1, 4), OVL_EINVAL);
}
END_TEST

START_TEST(key_and_line_limits)
{
    static char buf[4096];
    struct kvmsg m;
    char key[70];

    memset(key, 'k', 63);
    key[63] = '\0';
    int n = snprintf(buf, sizeof(buf), "%s=v\n\n", key);
    ck_assert_int_eq(kvmsg_parse(&m, buf, (size_t)n, 4), 0);
    ck_assert_uint_eq(strlen(m.pairs[0].key), 63);
    kvmsg_free(&m);
    key[63] = 'k';
    key[64] = '\0';
    n = snprintf(buf, sizeof(buf), "%s=v\n\n", key);
    ck_assert_int_eq(kvmsg_parse(&m, buf, (size_t)n, 4), OVL_EINVAL);

    /* A line of exactly KV_LINE_MAX bytes (newline included) is accepted. */
    memcpy(buf, "k=", 2);
    memset(buf + 2, 'v', KV_LINE_MAX - 3);
    memcpy(buf + KV_LINE_MAX - 1, "\n\n", 2);
    ck_assert_int_eq(kvmsg_parse(&m, buf, KV_LINE_MAX + 1, 4), 0);
    ck_assert_uint_eq(strlen(kvmsg_get(&m, "k")), KV_LINE_MAX - 3);
    kvmsg_free(&m);
    memcpy(buf, "k=", 2);
    memset(buf + 2, 'v', KV_LINE_MAX - 2);
    memcpy(buf + KV_LINE_MAX, "\n\n", 2);
    ck_assert_int_eq(kvmsg_parse(&m, buf, KV_LINE_MAX + 2, 4), OVL_EINVAL);
}
END_TEST

START_TEST(pair_caps)
{
    static char buf[8192];
    struct kvmsg m;
    size_t len = 0;
    for (int i = 0; i < 100; i++)
        len += (size_t)snprintf(buf + len, sizeof(buf) - len, "k%d=%d\n", i, i);
    buf[len++] = '\n';
    ck_assert_uint_eq(kv_message_len(buf, len), len);

    static char copy[8192];
    ck_assert_int_eq(parse_copy(&m, copy, buf, len, 100), 0);
    ck_assert_uint_eq(m.n, 100);
    ck_assert_uint_le(m.cap, 100);
    ck_assert_str_eq(kvmsg_get(&m, "k99"), "99");
    ck_assert_str_eq(kvmsg_get(&m, "k0"), "0");
    kvmsg_free(&m);

    ck_assert_int_eq(parse_copy(&m, copy, buf, len, 99), OVL_ETOOBIG);
    ck_assert_ptr_null(m.pairs);
    ck_assert_int_eq(parse_copy(&m, copy, buf, len, 0), OVL_ETOOBIG);
    ck_assert_int_eq(parse_copy(&m, copy, "\n", 1, 0), 0);
    kvmsg_free(&m);
}
END_TEST

START_TEST(builder_rejects)
{
    static const char *const bad_keys[] = {
        "",    "Key", "a b",
        "a=b", "a\n", "0123456789012345678901234567890123456789012345678901234567890123"};
    for (size_t i = 0; i < sizeof(bad_keys) / sizeof(bad_keys[0]); i++) {
        struct kvbuf b = {0};
        kv_adds(&b, bad_keys[i], "v");
        ck_assert_int_eq(b.err, OVL_EINVAL);
        kvbuf_free(&b);
    }

    struct kvbuf b = {0};
    kv_addf(&b, "k", "a%sb", "\n");
    ck_assert_int_eq(b.err, OVL_EINVAL);
    ck_assert_uint_eq(b.len, 0);
    kv_adds(&b, "ok", "v"); /* sticky: later appends do nothing */
    kv_end(&b);
    ck_assert_int_eq(b.err, OVL_EINVAL);
    ck_assert_uint_eq(b.len, 0);
    kvbuf_free(&b);

    char big[KV_LINE_MAX + 8];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    struct kvbuf c = {0};
    kv_addf(&c, "k", "%s", big);
    ck_assert_int_eq(c.err, OVL_EINVAL);
    kvbuf_free(&c);
    struct kvbuf d = {0};
    kv_adds(&d, "k", big);
    ck_assert_int_eq(d.err, OVL_EINVAL);
    kvbuf_free(&d);

    /* Exactly KV_LINE_MAX bytes with the newline is fine. */
    struct kvbuf e = {0};
    big[KV_LINE_MAX - 3] = '\0';
    kv_adds(&e, "k", big);
    kv_addf(&e, "j", "%s", big);
    ck_assert_int_eq(e.err, 0);
    ck_assert_uint_eq(e.len, 2 * KV_LINE_MAX);
    kvbuf_free(&e);
}
END_TEST

START_TEST(builder_sanitizes_strings)
{
    struct kvbuf b = {0};
    kv_adds(&b, "name",
            "a\nb\rc\td\x7f"
            "e");
    kv_adds(&b, "null", NULL);
    kv_end(&b);
    ck_assert_int_eq(b.err, 0);
    ck_assert_str_eq(b.data, "name=a?b?c?d?e\nnull=\n\n");

    struct kvmsg m;
    ck_assert_int_eq(kvmsg_parse(&m, b.data, b.len, 4), 0);
    ck_assert_str_eq(kvmsg_get(&m, "name"), "a?b?c?d?e");
    kvmsg_free(&m);
    kvbuf_free(&b);
}
END_TEST

START_TEST(builder_grows)
{
    struct kvbuf b = {0};
    for (int i = 0; i < 5000; i++)
        kv_addu(&b, "n", (uint64_t)i);
    kv_end(&b);
    ck_assert_int_eq(b.err, 0);
    ck_assert_uint_ge(b.cap, b.len + 1);
    ck_assert_uint_eq(kv_message_len(b.data, b.len), b.len);
    struct kvmsg m;
    ck_assert_int_eq(kvmsg_parse(&m, b.data, b.len, 5000), 0);
    ck_assert_uint_eq(m.n, 5000);
    ck_assert_str_eq(m.pairs[4999].value, "4999");
    kvmsg_free(&m);
    kvbuf_free(&b);
}
END_TEST

static Suite *kvmsg_suite(void)
{
    Suite *s = suite_create("kvmsg");
    TCase *tc = tcase_create("kvmsg");
    tcase_add_test(tc, round_trip);
    tcase_add_test(tc, empty_message);
    tcase_add_test(tc, value_with_equals_and_duplicates);
    tcase_add_loop_test(tc, message_len, 0, sizeof(lens) / sizeof(lens[0]));
    tcase_add_test(tc, message_len_partial);
    tcase_add_loop_test(tc, parse_rejects, 0, sizeof(rejects) / sizeof(rejects[0]));
    tcase_add_test(tc, parse_rejects_nul);
    tcase_add_test(tc, key_and_line_limits);
    tcase_add_test(tc, pair_caps);
    tcase_add_test(tc, builder_rejects);
    tcase_add_test(tc, builder_sanitizes_strings);
    tcase_add_test(tc, builder_grows);
    suite_add_tcase(s, tc);
    return s;
}

OVL_CHECK_MAIN(kvmsg_suite)
