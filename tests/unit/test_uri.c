/* test_uri.c - transport URI parsing, canonical formatting, socket addresses. */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/uri.h"
#include "check_main.h"

/* Accepted URIs: the parsed fields and the canonical text. The scheme is
 * lowercased; the host is kept exactly as written. */
static const struct {
    const char *in, *scheme, *host;
    uint16_t port;
    bool v6, literal;
    const char *canon;
} good[] = {
    {"tcp://127.0.0.1:7001", "tcp", "127.0.0.1", 7001, false, true, NULL},
    {"tcp://[::1]:7001", "tcp", "::1", 7001, true, true, NULL},
    {"quic://relay.example.org:443", "quic", "relay.example.org", 443, false, false, NULL},
    {"TCP://LOCALHOST:1", "tcp", "LOCALHOST", 1, false, false, "tcp://LOCALHOST:1"},
    {"tcp://0.0.0.0:0", "tcp", "0.0.0.0", 0, false, true, NULL},
    {"tcp://255.255.255.255:65535", "tcp", "255.255.255.255", 65535, false, true, NULL},
    {"tcp://[2001:db8::1:2]:80", "tcp", "2001:db8::1:2", 80, true, true, NULL},
    {"tcp://[::ffff:192.0.2.1]:80", "tcp", "::ffff:192.0.2.1", 80, true, true, NULL},
    {"tcp://[::]:9", "tcp", "::", 9, true, true, NULL},
    {"a+b-c.d://x:5", "a+b-c.d", "x", 5, false, false, NULL},
    {"tcp://a-b.c-d.e1:5", "tcp", "a-b.c-d.e1", 5, false, false, NULL},
    {"tcp://1host:5", "tcp", "1host", 5, false, false, NULL},
    {"abcdefghijklmno://h:1", "abcdefghijklmno", "h", 1, false, false, NULL}, /* 15-char scheme */
};

START_TEST(parse_good)
{
    struct ovl_uri u;
    char out[OVL_URI_MAX];
    ck_assert_int_eq(uri_parse(&u, good[_i].in), 0);
    ck_assert_str_eq(u.scheme, good[_i].scheme);
    ck_assert_str_eq(u.host, good[_i].host);
    ck_assert_uint_eq(u.port, good[_i].port);
    ck_assert(u.is_ipv6 == good[_i].v6);
    ck_assert(u.is_literal == good[_i].literal);
    ck_assert_int_eq(uri_format(out, sizeof(out), &u), 0);
    ck_assert_str_eq(out, good[_i].canon ? good[_i].canon : good[_i].in);

    /* The canonical form parses to the same fields. */
    struct ovl_uri again;
    ck_assert_int_eq(uri_parse(&again, out), 0);
    ck_assert_str_eq(again.scheme, u.scheme);
    ck_assert_str_eq(again.host, u.host);
    ck_assert_uint_eq(again.port, u.port);
}
END_TEST

static const char *const bad[] = {
    "",
    "127.0.0.1:7001",         /* no scheme */
    "://127.0.0.1:7001",      /* empty scheme */
    "tcp:/x:1",               /* one slash */
    "tcp//x:1",               /* no colon */
    "tcp://:1",               /* empty host */
    "tcp://1.2.3.4",          /* no port */
    "tcp://1.2.3.4:",         /* empty port */
    "tcp://1.2.3.4:65536",    /* port too big */
    "tcp://1.2.3.4:99999999", /* far too big */
    "tcp://1.2.3.4:-1",       /* sign */
    "tcp://1.2.3.4:+1",       /* sign */
    "tcp://1.2.3.4:0x10",     /* not decimal */
    "tcp://1.2.3.4:007",      /* leading zeros are not canonical */
    "tcp://::1:80",           /* unbracketed IPv6 */
    "tcp://[::1",             /* unclosed bracket */
    "tcp://[::1]",            /* bracket, no port */
    "tcp://[::1]80",          /* no colon after bracket */
    "tcp://[]:80",            /* empty brackets */
    "tcp://[zz::1]:1",        /* not hex */
    "tcp://[1.2.3.4]:1",      /* IPv4 in brackets */
    "tcp://[fe80::1%eth0]:1", /* zone id */
    "tcp://[fe80::1%25eth0]:1",
    "tcp://a:1/path",         /* path */
    "tcp://a:1?q",            /* query */
    "tcp://a:1#f",            /* fragment */
    "tcp://user@h:1",         /* user info */
    "tcp://h:1 ",             /* trailing space */
    " tcp://h:1",             /* leading space */
    "tcp://h :1",             /* space in host */
    "tcp://h\t:1",            /* control character */
    "tcp://h\x7f:1",          /* DEL */
    "tcp://h\x01x:1",         /* control character */
    "tcp://h:1\n",            /* newline */
    "tcp://h\xc3\xa9:1",      /* non-ASCII */
    "tcp://h_x:1",            /* underscore */
    "tcp://-h:1",             /* label starts with '-' */
    "tcp://h-:1",             /* label ends with '-' */
    "tcp://a..b:1",           /* empty label */
    "tcp://.a:1",             /* empty label */
    "tcp://a.:1",             /* trailing dot */
    "tcp://1.2.3:1",          /* numeric but not a dotted quad */
    "tcp://1.2.3.4.5:1",      /* numeric but not a dotted quad */
    "tcp://256.1.1.1:1",      /* octet too big */
    "tcp://1234:1",           /* a bare number is not a host */
    "1tcp://h:1",             /* scheme starts with a digit */
    "t_p://h:1",              /* bad scheme character */
    "t/p://h:1",              /* bad scheme character */
    "abcdefghijklmnop://h:1", /* 16-char scheme */
    "tcp://h:1:2",            /* two ports */
    "tcp://h:1://x:2",
};

START_TEST(parse_bad)
{
    struct ovl_uri u;
    memset(&u, 0x5a, sizeof(u));
    ck_assert_msg(uri_parse(&u, bad[_i]) == OVL_EINVAL, "accepted \"%s\"", bad[_i]);
    /* out is zeroed on failure. */
    const uint8_t *p = (const uint8_t *)&u;
    for (size_t i = 0; i < sizeof(u); i++)
        ck_assert_uint_eq(p[i], 0);
}
END_TEST

static void fill(char *buf, char c, size_t n)
{
    memset(buf, c, n);
    buf[n] = '\0';
}

START_TEST(length_limits)
{
    char s[OVL_URI_MAX + 64], label[70];
    struct ovl_uri u;

    /* A 63-character label is fine, 64 is not. */
    fill(label, 'a', 63);
    snprintf(s, sizeof(s), "tcp://%s.example:1", label);
    ck_assert_int_eq(uri_parse(&u, s), 0);
    fill(label, 'a', 64);
    snprintf(s, sizeof(s), "tcp://%s.example:1", label);
    ck_assert_int_eq(uri_parse(&u, s), OVL_EINVAL);

    /* 253-character name accepted, 254 refused (labels of 63 + dots). */
    char name[300];
    fill(label, 'b', 63);
    snprintf(name, sizeof(name), "%s.%s.%s.%s", label, label, label, label);
    name[253] = '\0'; /* 4*63+3 = 255: cut to 253, last label 61 chars */
    snprintf(s, sizeof(s), "tcp://%s:1", name);
    ck_assert_int_eq(uri_parse(&u, s), 0);
    ck_assert_uint_eq(strlen(u.host), 253);
    name[253] = 'b';
    name[254] = '\0';
    snprintf(s, sizeof(s), "tcp://%s:1", name);
    ck_assert_int_eq(uri_parse(&u, s), OVL_EINVAL);

    /* The whole text must be shorter than OVL_URI_MAX. */
    fill(s, 'x', OVL_URI_MAX + 10);
    memcpy(s, "tcp://", 6);
    ck_assert_int_eq(uri_parse(&u, s), OVL_EINVAL);
    ck_assert_int_eq(uri_parse(&u, NULL), OVL_EINVAL);
    ck_assert_int_eq(uri_parse(NULL, "tcp://h:1"), OVL_EINVAL);
}
END_TEST

START_TEST(format_too_small)
{
    struct ovl_uri u;
    char out[64];
    ck_assert_int_eq(uri_parse(&u, "tcp://[::1]:7001"), 0);
    ck_assert_int_eq(uri_format(out, 16, &u), OVL_ETOOBIG); /* needs 16 + NUL */
    ck_assert_int_eq(uri_format(out, 17, &u), 0);
    ck_assert_str_eq(out, "tcp://[::1]:7001");
}
END_TEST

START_TEST(sockaddr_v4)
{
    struct ovl_uri u;
    struct sockaddr_storage ss;
    char out[OVL_URI_MAX];
    ck_assert_int_eq(uri_parse(&u, "tcp://192.0.2.7:7001"), 0);
    ck_assert_int_eq(uri_sockaddr(&u, &ss), 0);
    const struct sockaddr_in *s4 = (const struct sockaddr_in *)&ss;
    ck_assert_int_eq(s4->sin_family, AF_INET);
    ck_assert_uint_eq(ntohs(s4->sin_port), 7001);
    ck_assert_uint_eq(ntohl(s4->sin_addr.s_addr), 0xc0000207u);
    ck_assert_int_eq(uri_from_sockaddr(out, sizeof(out), "tcp", (const struct sockaddr *)&ss), 0);
    ck_assert_str_eq(out, "tcp://192.0.2.7:7001");
}
END_TEST

START_TEST(sockaddr_v6)
{
    struct ovl_uri u;
    struct sockaddr_storage ss;
    char out[OVL_URI_MAX];
    const uint8_t want[16] = {0x20, 0x01, 0x0d, 0xb8, [15] = 1};
    ck_assert_int_eq(uri_parse(&u, "quic://[2001:db8::1]:443"), 0);
    ck_assert_int_eq(uri_sockaddr(&u, &ss), 0);
    const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&ss;
    ck_assert_int_eq(s6->sin6_family, AF_INET6);
    ck_assert_uint_eq(ntohs(s6->sin6_port), 443);
    ck_assert_mem_eq(&s6->sin6_addr, want, 16);
    ck_assert_int_eq(uri_from_sockaddr(out, sizeof(out), "quic", (const struct sockaddr *)&ss), 0);
    ck_assert_str_eq(out, "quic://[2001:db8::1]:443");
}
END_TEST

START_TEST(sockaddr_name_refused)
{
    struct ovl_uri u;
    struct sockaddr_storage ss;
    char out[OVL_URI_MAX];
    ck_assert_int_eq(uri_parse(&u, "tcp://localhost:80"), 0);
    ck_assert_int_eq(uri_sockaddr(&u, &ss), OVL_EINVAL);

    struct sockaddr_in s4;
    memset(&s4, 0, sizeof(s4));
    s4.sin_family = AF_INET;
    ck_assert_int_eq(uri_from_sockaddr(out, sizeof(out), "bad scheme", (struct sockaddr *)&s4),
                     OVL_EINVAL);
    s4.sin_family = AF_UNIX;
    ck_assert_int_eq(uri_from_sockaddr(out, sizeof(out), "tcp", (struct sockaddr *)&s4),
                     OVL_EUNSUPP);
}
END_TEST

static Suite *uri_suite(void)
{
    Suite *s = suite_create("uri");
    TCase *tc = tcase_create("uri");
    tcase_add_loop_test(tc, parse_good, 0, sizeof(good) / sizeof(good[0]));
    tcase_add_loop_test(tc, parse_bad, 0, sizeof(bad) / sizeof(bad[0]));
    tcase_add_test(tc, length_limits);
    tcase_add_test(tc, format_too_small);
    tcase_add_test(tc, sockaddr_v4);
    tcase_add_test(tc, sockaddr_v6);
    tcase_add_test(tc, sockaddr_name_refused);
    suite_add_tcase(s, tc);
    return s;
}

OVL_CHECK_MAIN(uri_suite)
