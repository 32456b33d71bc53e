/* test_policy.c - exit policies (src/dir/policy.h): the text form and its
 * errors, matching, may_accept_port, the binary form and its strictness,
 * formatting back to text. */
#include <arpa/inet.h>
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dir/policy.h"
#include "check_main.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

static void parse_ok(struct exit_policy *p, const char *text)
{
    const char *why = NULL;
    unsigned bad = 99;

    memset(p, 0, sizeof(*p));
    ck_assert_msg(exit_policy_parse(p, text, &bad, &why) == 0, "'%s': rule %u: %s", text, bad,
                  why ? why : "?");
    ck_assert_ptr_null(why);
}

/* addr as 4 or 16 bytes into a; return the length. */
static size_t addr_bytes(const char *addr, uint8_t a[16])
{
    if (inet_pton(AF_INET, addr, a) == 1)
        return 4;
    ck_assert_int_eq(inet_pton(AF_INET6, addr, a), 1);
    return 16;
}

/* Matches: the first rule that covers the destination decides. */
static const struct {
    const char *policy, *addr;
    uint16_t port;
    bool accept;
} match_cases[] = {
    {"accept *:443, reject *:*", "192.0.2.1", 443, true},
    {"accept *:443, reject *:*", "192.0.2.1", 80, false},
    {"accept *:443, reject *:*", "2001:db8::1", 443, true},
    {"accept *:443, reject *:*", "2001:db8::1", 442, false},
    /* first match wins */
    {"reject 10.0.0.0/8:*, accept *:*", "10.1.2.3", 80, false},
    {"reject 10.0.0.0/8:*, accept *:*", "11.0.0.1", 80, true},
    {"accept 10.0.0.0/8:*, reject 10.1.0.0/16:*", "10.1.2.3", 80, true},
    {"reject *:*, accept *:80", "192.0.2.1", 80, false},
    /* prefix lengths */
    {"accept 0.0.0.0/0:80", "203.0.113.9", 80, true},
    {"accept 0.0.0.0/0:80", "::1", 80, false},
    {"accept 127.0.0.0/8:*", "127.255.255.255", 1, true},
    {"accept 127.0.0.0/8:*", "128.0.0.0", 1, false},
    {"accept 127.0.0.0/8:*", "126.255.255.255", 1, false},
    {"accept 10.0.0.0/9:*", "10.127.0.1", 5, true},
    {"accept 10.0.0.0/9:*", "10.128.0.0", 5, false},
    {"accept 10.1.2.3/8:*", "10.200.0.0", 5, true}, /* bits past the prefix are dropped */
    {"accept 192.0.2.7:22", "192.0.2.7", 22, true},
    {"accept 192.0.2.7/32:22", "192.0.2.8", 22, false},
    {"accept 192.0.2.7:22", "192.0.2.7", 23, false},
    {"accept [2001:db8::1]:80", "2001:db8::1", 80, true},
    {"accept [2001:db8::1]/128:80", "2001:db8::2", 80, false},
    {"accept [2001:db8::1]:80", "192.0.2.1", 80, false},
    {"reject [2001:db8::]/64:*, accept *6:*", "2001:db8::ffff", 80, false},
    {"reject [2001:db8::]/64:*, accept *6:*", "2001:db8:0:1::", 80, true},
    {"reject [2001:db8::]/64:*, accept *6:*", "192.0.2.1", 80, false},
    {"accept [::]/0:*", "2001:db8::1", 9, true},
    {"accept [::]/0:*", "192.0.2.1", 9, false},
    /* port ranges */
    {"accept *:1000-2000", "192.0.2.1", 999, false},
    {"accept *:1000-2000", "192.0.2.1", 1000, true},
    {"accept *:1000-2000", "192.0.2.1", 2000, true},
    {"accept *:1000-2000", "192.0.2.1", 2001, false},
    {"accept *:65535", "192.0.2.1", 65535, true},
    {"accept *:1-65535", "192.0.2.1", 1, true},
    {"accept *:*", "192.0.2.1", 0, false}, /* port 0: no rule covers it */
    /* *4 and *6 */
    {"accept *4:*", "192.0.2.1", 80, true},
    {"accept *4:*", "2001:db8::1", 80, false},
    {"accept *6:*", "2001:db8::1", 80, true},
    {"accept *6:*", "192.0.2.1", 80, false},
    {"reject *4:*, accept *:*", "2001:db8::1", 80, true},
    /* IPv4-mapped IPv6 is judged as the IPv4 address it maps */
    {"reject 127.0.0.0/8:*, accept *:*", "::ffff:127.0.0.1", 80, false},
    {"reject 127.0.0.0/8:*, accept *:*", "::ffff:192.0.2.1", 80, true},
    {"accept *6:*", "::ffff:192.0.2.1", 80, false},
    {"accept *4:*", "::ffff:192.0.2.1", 80, true},
    {"accept [::ffff:0:0]/96:*", "::ffff:192.0.2.1", 80, false},
    {"accept *4:*", "::192.0.2.1", 80, false}, /* IPv4-compatible is IPv6 */
    /* blanks, newlines, empty rules */
    {"  accept *:80 \n reject *:*\r\n", "192.0.2.1", 80, true},
    {"accept\t*:80,, ,\n", "192.0.2.1", 80, true},
    {"accept  10.0.0.0/8:80", "10.0.0.1", 80, true},
    {"", "192.0.2.1", 80, false},
    {" , \n", "2001:db8::1", 80, false},
};

START_TEST(policy_match)
{
    struct exit_policy p;
    uint8_t a[16];
    size_t len = addr_bytes(match_cases[_i].addr, a);

    parse_ok(&p, match_cases[_i].policy);
    ck_assert_msg(exit_policy_match(&p, a, len, match_cases[_i].port) == match_cases[_i].accept,
                  "'%s' on %s:%u", match_cases[_i].policy, match_cases[_i].addr,
                  match_cases[_i].port);
}
END_TEST

START_TEST(policy_match_args)
{
    struct exit_policy p;
    uint8_t a[16] = {192, 0, 2, 1};

    parse_ok(&p, "accept *:*");
    ck_assert(exit_policy_match(&p, a, 4, 80));
    ck_assert(!exit_policy_match(&p, a, 5, 80));
    ck_assert(!exit_policy_match(&p, a, 0, 80));
    ck_assert(!exit_policy_match(&p, NULL, 4, 80));
    ck_assert(!exit_policy_match(NULL, a, 4, 80));
}
END_TEST

/* Rejected text: the index of the bad rule (among non-empty ones) and why. */
static const struct {
    const char *text;
    unsigned index;
    const char *why;
} bad_cases[] = {
    {"accept *:443, reject 10.0.0.0/33:*", 1, "bad prefix length"},
    {"allow *:80", 0, "expected accept or reject"},
    {"accept*:80", 0, "expected accept or reject"},
    {"ACCEPT *:80", 0, "expected accept or reject"},
    {"accept", 0, "expected accept or reject"},
    {"acc", 0, "expected accept or reject"},
    {"accept *:80,, rejects *:*", 1, "expected accept or reject"},
    {"accept *:0", 0, "bad port"},
    {"accept *:65536", 0, "bad port"},
    {"accept *:100000", 0, "bad port"},
    {"accept *:80-79", 0, "bad port"},
    {"accept *:80-", 0, "bad port"},
    {"accept *:-80", 0, "bad port"},
    {"accept *:0-80", 0, "bad port"},
    {"accept *:80x", 0, "bad port"},
    {"accept *: 80", 0, "bad port"},
    {"accept *:", 0, "bad port"},
    {"accept *", 0, "bad port"},
    {"accept *:**", 0, "bad port"},
    {"accept 192.0.2.1", 0, "bad port"},
    {"accept 1.2.3:80", 0, "bad address"},
    {"accept 1.2.3.4.5:80", 0, "bad address"},
    {"accept 256.1.1.1:80", 0, "bad address"},
    {"accept 01.2.3.4:80", 0, "bad address"},
    {"accept ::1:80", 0, "bad address"},
    {"accept [::1:80", 0, "bad address"},
    {"accept [1.2.3.4]:80", 0, "bad address"},
    {"accept []:80", 0, "bad address"},
    {"accept example.org:80", 0, "bad address"},
    {"accept :80", 0, "bad address"},
    {"accept * :80", 0, "bad address"},
    {"accept **:80", 0, "bad address"},
    {"accept *5:80", 0, "bad address"},
    {"accept [::1]:80, accept [::1]/129:80", 1, "bad prefix length"},
    {"accept */8:80", 0, "bad prefix length"},
    {"accept *4/0:80", 0, "bad prefix length"},
    {"accept 1.2.3.4/:80", 0, "bad prefix length"},
    {"accept 1.2.3.4/-1:80", 0, "bad prefix length"},
    {"accept 1.2.3.4/8x:80", 0, "bad prefix length"},
    {"accept 1.2.3.4/8/8:80", 0, "bad prefix length"},
    {"accept [::]/1000:80", 0, "bad prefix length"},
    {"accept *:80, reject *:*, accept *:81, reject 1.2.3.4/ 8:*", 3, "bad prefix length"},
    {"accept 0000000000000000000000000000000000000000000000000000000000000000000000000000000000"
     "00000000000:80",
     0, "rule too long"},
};

START_TEST(policy_bad)
{
    struct exit_policy p;
    const char *why = NULL;
    unsigned bad = 99;

    memset(&p, 0, sizeof(p));
    ck_assert_int_eq(exit_policy_parse(&p, bad_cases[_i].text, &bad, &why), OVL_EINVAL);
    ck_assert_msg(bad == bad_cases[_i].index, "'%s': index %u", bad_cases[_i].text, bad);
    ck_assert_ptr_nonnull(why);
    ck_assert_str_eq(why, bad_cases[_i].why);
    ck_assert_uint_eq(p.n, 0);
    ck_assert_int_eq(exit_policy_parse(&p, bad_cases[_i].text, NULL, NULL), OVL_EINVAL);
}
END_TEST

START_TEST(policy_limits)
{
    struct exit_policy p;
    char text[32 * 16 + 64] = "";
    const char *why;
    unsigned bad;

    for (int i = 0; i < EXIT_POLICY_MAX_RULES; i++)
        snprintf(text + strlen(text), sizeof(text) - strlen(text), "accept *:%d,\n", i + 1);
    parse_ok(&p, text);
    ck_assert_uint_eq(p.n, EXIT_POLICY_MAX_RULES);
    strcat(text, "reject *:*");
    memset(&p, 0, sizeof(p));
    ck_assert_int_eq(exit_policy_parse(&p, text, &bad, &why), OVL_EINVAL);
    ck_assert_uint_eq(bad, EXIT_POLICY_MAX_RULES);
    ck_assert_str_eq(why, "more than 32 rules");
    ck_assert_int_eq(exit_policy_parse(NULL, "accept *:*", &bad, &why), OVL_EINVAL);
    ck_assert_int_eq(exit_policy_parse(&p, NULL, &bad, &why), OVL_EINVAL);
    p.n = EXIT_POLICY_MAX_RULES + 1;
    ck_assert_int_eq(exit_policy_parse(&p, "accept *:*", &bad, &why), OVL_EINVAL);
}
END_TEST

/* A second text adds its rules after the first's; a bad one adds none and
 * names its rule within itself. */
START_TEST(policy_append)
{
    struct exit_policy p, one;
    uint8_t a[4] = {192, 0, 2, 1};
    const char *why;
    unsigned bad;

    parse_ok(&p, "reject 192.0.2.0/24:22, accept *:22");
    ck_assert_int_eq(exit_policy_parse(&p, " , reject *:*", &bad, &why), 0);
    ck_assert_uint_eq(bad, 1);
    ck_assert_uint_eq(p.n, 3);
    parse_ok(&one, "reject 192.0.2.0/24:22, accept *:22, reject *:*");
    ck_assert_mem_eq(&p, &one, sizeof(p));
    ck_assert_int_eq(exit_policy_parse(&p, "accept *:80, accept *:0", &bad, &why), OVL_EINVAL);
    ck_assert_uint_eq(bad, 1);
    ck_assert_str_eq(why, "bad port");
    ck_assert_uint_eq(p.n, 3);
    ck_assert(!exit_policy_match(&p, a, 4, 22));
    ck_assert(!exit_policy_match(&p, a, 4, 80));
    for (int i = 3; i < EXIT_POLICY_MAX_RULES; i++)
        ck_assert_int_eq(exit_policy_parse(&p, "accept *:443", &bad, &why), 0);
    ck_assert_int_eq(exit_policy_parse(&p, "accept *:443", &bad, &why), OVL_EINVAL);
    ck_assert_uint_eq(bad, 0);
    ck_assert_str_eq(why, "more than 32 rules");
    ck_assert_uint_eq(p.n, EXIT_POLICY_MAX_RULES);
}
END_TEST

/* Text, its canonical text and its encoding. */
static const struct {
    const char *text, *canon;
    size_t len;
    uint8_t enc[24];
} enc_cases[] = {
    {"", "", 0, {0}},
    {"reject *:*", "reject *:*", 1, {0x00}},
    {"accept *:443", "accept *:443", 3, {0x84, 0xbb, 0x01}},
    {"accept *:1-65535", "accept *:*", 1, {0x80}},
    {"reject *:1-2", "reject *:1-2", 5, {0x08, 1, 0, 2, 0}},
    {"reject *:80-80", "reject *:80", 3, {0x04, 80, 0}},
    {"accept 10.0.0.0/8:80-88", "accept 10.0.0.0/8:80-88", 7, {0x89, 8, 10, 80, 0, 88, 0}},
    {"accept 10.1.2.3/9:*", "accept 10.0.0.0/9:*", 4, {0x81, 9, 10, 0}},
    {"accept 10.255.2.3/9:*", "accept 10.128.0.0/9:*", 4, {0x81, 9, 10, 0x80}},
    {"reject 192.0.2.7/32:22", "reject 192.0.2.7:22", 8, {0x05, 32, 192, 0, 2, 7, 22, 0}},
    {"accept 0.0.0.0/0:*", "accept *4:*", 2, {0x81, 0}},
    {"accept *4:*", "accept *4:*", 2, {0x81, 0}},
    {"reject *6:25", "reject *6:25", 4, {0x06, 0, 25, 0}},
    {"accept [::]/0:*", "accept *6:*", 2, {0x82, 0}},
    {"accept [2001:DB8::]/32:*", "accept [2001:db8::]/32:*", 6, {0x82, 32, 0x20, 0x01, 0x0d, 0xb8}},
    {"accept [2001:db8::1]:443",
     "accept [2001:db8::1]:443",
     20,
     {0x86, 128, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xbb, 0x01}},
    {"reject [::ffff:127.0.0.1]/104:*",
     "reject [::ffff:127.0.0.0]/104:*",
     15,
     {0x02, 104, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127}},
    {"accept 127.0.0.0/8:*,reject *:*", "accept 127.0.0.0/8:*, reject *:*", 4, {0x81, 8, 127, 0}},
};

START_TEST(policy_encode)
{
    struct exit_policy p, back, again;
    uint8_t out[EXIT_POLICY_ENC_MAX];
    char text[256];
    size_t len = 99;

    parse_ok(&p, enc_cases[_i].text);
    ck_assert_int_eq(exit_policy_encode(&p, out, sizeof(out), &len), 0);
    ck_assert_uint_eq(len, enc_cases[_i].len);
    ck_assert_mem_eq(out, enc_cases[_i].enc, len);
    ck_assert_int_eq(exit_policy_decode(&back, out, len), 0);
    ck_assert_mem_eq(&back, &p, sizeof(p));
    ck_assert_int_eq(exit_policy_format(&p, text, sizeof(text)), 0);
    ck_assert_str_eq(text, enc_cases[_i].canon);
    parse_ok(&again, text);
    ck_assert_mem_eq(&again, &p, sizeof(p));
    if (len) /* one byte short */
        ck_assert_int_eq(exit_policy_encode(&p, out, len - 1, &len), OVL_ETOOBIG);
    ck_assert_uint_eq(len, 0);
}
END_TEST

/* The longest encoding: 32 rules of IPv6 /128 with a port range. */
START_TEST(policy_encode_max)
{
    struct exit_policy p, back;
    uint8_t out[EXIT_POLICY_ENC_MAX];
    char text[2600];
    size_t len;

    memset(&p, 0, sizeof(p));
    for (unsigned i = 0; i < EXIT_POLICY_MAX_RULES; i++) {
        struct exit_rule *r = &p.rules[p.n++];

        r->family = EXIT_V6;
        r->bits = 128;
        memset(r->addr, 0xff, 16);
        r->addr[15] = (uint8_t)i;
        r->lo = 65534;
        r->hi = 65535;
    }
    ck_assert_int_eq(exit_policy_encode(&p, out, sizeof(out), &len), 0);
    ck_assert_uint_eq(len, EXIT_POLICY_ENC_MAX);
    ck_assert_int_eq(exit_policy_decode(&back, out, len), 0);
    ck_assert_mem_eq(&back, &p, sizeof(p));
    ck_assert_int_eq(exit_policy_format(&p, text, sizeof(text)), 0);
    parse_ok(&back, text);
    ck_assert_mem_eq(&back, &p, sizeof(p));
}
END_TEST

/* Rules the encoder refuses: each breaks one limit of policy.h. */
START_TEST(policy_encode_bad)
{
    struct exit_policy p;
    uint8_t out[EXIT_POLICY_ENC_MAX];
    size_t len = 99;

    for (int c = 0; c < 8; c++) {
        parse_ok(&p, "accept 10.0.0.0/8:80-90");
        struct exit_rule *r = &p.rules[0];
        switch (c) {
        case 0:
            r->family = 3;
            break;
        case 1:
            r->bits = 33;
            break;
        case 2:
            r->addr[1] = 1;
            break; /* past the prefix */
        case 3:
            r->addr[4] = 1;
            break; /* past an IPv4 address */
        case 4:
            r->lo = 0;
            break;
        case 5:
            r->lo = 91;
            break;
        case 6:
            r->accept = 2;
            break;
        case 7:
            p.n = EXIT_POLICY_MAX_RULES + 1;
            break;
        }
        ck_assert_msg(exit_policy_encode(&p, out, sizeof(out), &len) == OVL_EINVAL, "case %d", c);
        ck_assert_uint_eq(len, 0);
    }
    ck_assert_int_eq(exit_policy_encode(NULL, out, sizeof(out), &len), OVL_EINVAL);
    ck_assert_int_eq(exit_policy_encode(&p, NULL, sizeof(out), &len), OVL_EINVAL);
    ck_assert_int_eq(exit_policy_encode(&p, out, sizeof(out), NULL), OVL_EINVAL);
}
END_TEST

/* Encodings the decoder refuses. */
static const struct {
    const char *what;
    size_t len;
    uint8_t in[24];
} dec_bad[] = {
    {"family 3", 1, {0x03}},
    {"port form 3", 1, {0x0c}},
    {"reserved bit 4", 1, {0x10}},
    {"reserved bit 6", 1, {0x40}},
    {"IPv4 without bits", 1, {0x01}},
    {"IPv4 /33", 7, {0x01, 33, 1, 2, 3, 4, 5}},
    {"IPv6 /129", 19, {0x02, 129, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17}},
    {"IPv6 /255", 2, {0x02, 255}},
    {"prefix cut short", 2, {0x01, 8}},
    {"IPv6 prefix cut short", 17, {0x02, 128, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}},
    {"bit past the prefix", 4, {0x01, 9, 10, 0x40}},
    {"one port cut short", 2, {0x04, 80}},
    {"range cut short", 4, {0x08, 80, 0, 81}},
    {"second rule cut short", 4, {0x01, 8, 10, 0x04}},
    {"port 0", 3, {0x04, 0, 0}},
    {"range from 0", 5, {0x08, 0, 0, 5, 0}},
    {"range lo = hi", 5, {0x08, 80, 0, 80, 0}},
    {"range lo > hi", 5, {0x08, 81, 0, 80, 0}},
    {"range 1-65535", 5, {0x08, 1, 0, 0xff, 0xff}},
};

START_TEST(policy_decode_bad)
{
    struct exit_policy p;

    memset(&p, 0xa5, sizeof(p));
    ck_assert_msg(exit_policy_decode(&p, dec_bad[_i].in, dec_bad[_i].len) == OVL_EPROTO, "%s",
                  dec_bad[_i].what);
    ck_assert_uint_eq(p.n, 0);
}
END_TEST

/* Rule counts, truncation at every length, NULL input. */
START_TEST(policy_decode_cut)
{
    static const char text[] = "reject 10.0.0.0/8:*, reject [fc00::]/7:25, accept *:80-90, "
                               "accept 192.0.2.0/24:443, accept [2001:db8::1]:22, reject *:*";
    uint8_t in[EXIT_POLICY_ENC_MAX + 1], zeros[EXIT_POLICY_MAX_RULES + 1] = {0};
    struct exit_policy p, back;
    size_t len, ends[8], n_ends = 0, pos = 0;

    parse_ok(&p, text);
    ck_assert_int_eq(exit_policy_encode(&p, in, sizeof(in), &len), 0);
    /* Where each rule ends: decoding a prefix works exactly there. */
    for (unsigned i = 1; i <= p.n; i++) {
        struct exit_policy part = p;
        part.n = (uint8_t)i;
        ck_assert_int_eq(exit_policy_encode(&part, in, sizeof(in), &pos), 0);
        ends[n_ends++] = pos;
    }
    ck_assert_uint_eq(pos, len);
    for (size_t k = 0; k <= len; k++) {
        bool end = k == 0;
        unsigned rules = 0;
        for (size_t e = 0; e < n_ends; e++)
            if (ends[e] == k)
                end = true, rules = (unsigned)e + 1;
        ck_assert_msg((exit_policy_decode(&back, in, k) == 0) == end, "prefix %zu", k);
        ck_assert_uint_eq(back.n, rules);
    }
    /* 32 rules are the most. */
    ck_assert_int_eq(exit_policy_decode(&back, zeros, EXIT_POLICY_MAX_RULES), 0);
    ck_assert_uint_eq(back.n, EXIT_POLICY_MAX_RULES);
    ck_assert(!exit_policy_may_accept_port(&back, 80));
    ck_assert_int_eq(exit_policy_decode(&back, zeros, EXIT_POLICY_MAX_RULES + 1), OVL_EPROTO);
    ck_assert_int_eq(exit_policy_decode(&back, NULL, 0), 0);
    ck_assert_uint_eq(back.n, 0);
    ck_assert_int_eq(exit_policy_decode(&back, NULL, 1), OVL_EPROTO);
    ck_assert_int_eq(exit_policy_decode(NULL, zeros, 1), OVL_EINVAL);
}
END_TEST

/* Random bytes: refused, or a policy that encodes back to the same bytes. */
START_TEST(policy_decode_garbage)
{
    uint8_t in[40], out[EXIT_POLICY_ENC_MAX];
    struct exit_policy p;
    uint32_t x = 12345;
    unsigned ok = 0;
    size_t len;

    for (int round = 0; round < 100000; round++) {
        size_t n = (size_t)(round % (int)sizeof(in));
        for (size_t i = 0; i < n; i++) {
            x = x * 1103515245u + 12345u;
            in[i] = (uint8_t)(x >> 16);
            if (i % 3 == 0) /* often a valid head */
                in[i] &= 0x8f;
        }
        if (exit_policy_decode(&p, in, n) != 0) {
            ck_assert_uint_eq(p.n, 0);
            continue;
        }
        ok++;
        ck_assert_int_eq(exit_policy_encode(&p, out, sizeof(out), &len), 0);
        ck_assert_uint_eq(len, n);
        ck_assert_mem_eq(out, in, n);
    }
    ck_assert_uint_gt(ok, 100);
}
END_TEST

/* may_accept_port: could some address be accepted there? */
static const struct {
    const char *policy;
    uint16_t port;
    bool may;
} may_cases[] = {
    {"accept *:443, reject *:*", 443, true},
    {"accept *:443, reject *:*", 80, false},
    {"reject *:80, accept *:*", 80, false},
    {"reject *:80, accept *:*", 81, true},
    {"reject *:1-1000, accept *:*", 1000, false},
    {"reject 10.0.0.0/8:*, reject [fc00::]/7:*, accept *:*", 80, true},
    {"reject *4:*, accept 192.0.2.1:80, reject *:*", 80, false},
    {"reject *4:*, accept [2001:db8::1]:80", 80, true},
    {"reject *4:80, reject *6:80, accept *:*", 80, false},
    {"reject *4:80, reject *6:80, accept *:*", 81, true},
    {"reject *6:80, accept *:*", 80, true},
    {"accept 10.0.0.0/8:1000-2000, reject *:*", 1500, true},
    {"accept 10.0.0.0/8:1000-2000, reject *:*", 2001, false},
    {"reject 0.0.0.0/0:*, reject *6:*, accept *:*", 80, false},
    {"", 80, false},
    {"accept *:*", 0, false},
    /* shadowed whole by a narrower reject: might, though match says no */
    {"reject 10.0.0.0/8:*, accept 10.1.0.0/16:80", 80, true},
};

START_TEST(policy_may_accept)
{
    struct exit_policy p;

    parse_ok(&p, may_cases[_i].policy);
    ck_assert_msg(exit_policy_may_accept_port(&p, may_cases[_i].port) == may_cases[_i].may,
                  "'%s' port %u", may_cases[_i].policy, may_cases[_i].port);
}
END_TEST

START_TEST(policy_may_accept_null)
{
    ck_assert(!exit_policy_may_accept_port(NULL, 80));
}
END_TEST

/* A text that does not fit is cut after a whole rule, with " ...". */
START_TEST(policy_format_cut)
{
    struct exit_policy p;
    char out[64];

    parse_ok(&p, "accept *:443, reject *:*"); /* 24 characters */
    ck_assert_int_eq(exit_policy_format(&p, out, 25), 0);
    ck_assert_str_eq(out, "accept *:443, reject *:*");
    ck_assert_int_eq(exit_policy_format(&p, out, 24), OVL_ETOOBIG);
    ck_assert_str_eq(out, "accept *:443 ...");
    ck_assert_int_eq(exit_policy_format(&p, out, 17), OVL_ETOOBIG);
    ck_assert_str_eq(out, "accept *:443 ...");
    ck_assert_int_eq(exit_policy_format(&p, out, 16), OVL_ETOOBIG);
    ck_assert_str_eq(out, " ...");
    ck_assert_int_eq(exit_policy_format(&p, out, 5), OVL_ETOOBIG);
    ck_assert_str_eq(out, " ...");
    ck_assert_int_eq(exit_policy_format(&p, out, 4), OVL_EINVAL);
    ck_assert_int_eq(exit_policy_format(NULL, out, sizeof(out)), OVL_EINVAL);
    ck_assert_int_eq(exit_policy_format(&p, NULL, sizeof(out)), OVL_EINVAL);
}
END_TEST

static Suite *policy_suite(void)
{
    Suite *s = suite_create("policy");
    TCase *tc = tcase_create("policy");

    tcase_add_loop_test(tc, policy_match, 0, (int)ARRAY_LEN(match_cases));
    tcase_add_test(tc, policy_match_args);
    tcase_add_loop_test(tc, policy_bad, 0, (int)ARRAY_LEN(bad_cases));
    tcase_add_test(tc, policy_limits);
    tcase_add_test(tc, policy_append);
    tcase_add_loop_test(tc, policy_encode, 0, (int)ARRAY_LEN(enc_cases));
    tcase_add_test(tc, policy_encode_max);
    tcase_add_test(tc, policy_encode_bad);
    tcase_add_loop_test(tc, policy_decode_bad, 0, (int)ARRAY_LEN(dec_bad));
    tcase_add_test(tc, policy_decode_cut);
    tcase_add_test(tc, policy_decode_garbage);
    tcase_add_loop_test(tc, policy_may_accept, 0, (int)ARRAY_LEN(may_cases));
    tcase_add_test(tc, policy_may_accept_null);
    tcase_add_test(tc, policy_format_cut);
    suite_add_tcase(s, tc);
    return s;
}

OVL_CHECK_MAIN(policy_suite)
