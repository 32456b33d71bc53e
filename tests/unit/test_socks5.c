/* test_socks5.c - the SOCKS5 parser (RFC 1928/1929) and reply encoder:
 * good requests fed whole and in pieces, every malformed input with its
 * reply, truncation at every byte, and .ovl names. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "client/socks5.h"
#include "lib/encode.h"
#include "check_main.h"

/* A string literal and its length, NULs included. */
#define S(x) x, sizeof(x) - 1

/* Pieces of inputs. A hex escape swallows every hex digit after it, so a
 * length byte before "example.org" is written in octal (\013). */
#define NOAUTH   "\x05\x01\x00"
#define USERPASS "\x05\x01\x02"
#define CREDS    "\x01\x04user\x04pass"
#define REQ4     "\x05\x01\x00\x01\x7f\x00\x00\x01\x1f\x90" /* 127.0.0.1:8080 */
#define REQ6     "\x05\x01\x00\x04" IP6 "\x01\xbb"          /* [::1]:443 */
#define IP6      "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\x01"
#define REQN     "\x05\x01\x00\x03\013example.org\0\x50" /* example.org:80 */
#define HTTP     "GET / HTTP/1.1\r\nHost: example.org\r\n\r\n"

/* What feeding an input did: the result, the bytes consumed, everything
 * the parser asked to send (SOCKS5_SEND replies, then a failure's out). */
struct run {
    int res;
    size_t used;
    uint8_t sent[64];
    size_t sent_len;
    struct socks5 s;
};

static void sent_add(struct run *r)
{
    ck_assert_uint_le(r->s.out_len, SOCKS5_REPLY_LEN);
    ck_assert_uint_le(r->sent_len + r->s.out_len, sizeof(r->sent));
    memcpy(r->sent + r->sent_len, r->s.out, r->s.out_len);
    r->sent_len += r->s.out_len;
}

/* Feed in[0..len) as the application would: chunk bytes become available
 * at a time (0: all at once), each SEND is "sent" and the parser is fed
 * the rest, until it waits with nothing left, is ready or fails. */
static void drive(struct run *r, const uint8_t *in, size_t len, size_t chunk)
{
    size_t avail = chunk && chunk < len ? chunk : len, used;

    memset(r, 0xa5, sizeof(*r));
    socks5_init(&r->s);
    r->used = r->sent_len = 0;
    for (;;) {
        r->res = socks5_feed(&r->s, in + r->used, avail - r->used, &used);
        ck_assert_uint_le(used, avail - r->used);
        r->used += used;
        if (r->res == SOCKS5_SEND) {
            sent_add(r);
            continue;
        }
        if (r->res != SOCKS5_MORE)
            break;
        ck_assert_uint_eq(r->used, avail);
        if (avail == len)
            break;
        avail = len - avail > chunk ? avail + chunk : len;
    }
    if (r->res < 0)
        sent_add(r);
}

/* Good requests, each followed by tail bytes that must stay unconsumed. */
static const struct {
    const char *in;
    size_t len, tail;
    const char *sent; /* method reply [+ auth status] */
    size_t sent_len;
    uint8_t method, atyp;
    const char *addr, *host, *user, *pass; /* NULL when not applicable */
    uint16_t port;
} good[] = {
    {S(NOAUTH REQ4 HTTP), sizeof(HTTP) - 1, S("\x05\x00"), 0, 1, "\x7f\0\0\x01", NULL, NULL, NULL,
     8080},
    {S(NOAUTH REQ6), 0, S("\x05\x00"), 0, 4, IP6, NULL, NULL, NULL, 443},
    {S(NOAUTH REQN HTTP), sizeof(HTTP) - 1, S("\x05\x00"), 0, 3, NULL, "example.org", NULL, NULL,
     80},
    /* 0x02 is preferred whenever offered. */
    {S("\x05\x02\x00\x02" CREDS REQN HTTP), sizeof(HTTP) - 1, S("\x05\x02\x01\x00"), 2, 3, NULL,
     "example.org", "user", "pass", 80},
    {S(USERPASS CREDS REQ4 "\x05"), 1, S("\x05\x02\x01\x00"), 2, 1, "\x7f\0\0\x01", NULL, "user",
     "pass", 8080},
    {S(USERPASS "\x01\x00\x00" REQ6 "x"), 1, S("\x05\x02\x01\x00"), 2, 4, IP6, NULL, "", "", 443},
    {S("\x05\x04\x01\x02\x00\xff\x01\x01u\0" REQN), 0, S("\x05\x02\x01\x00"), 2, 3, NULL,
     "example.org", "u", "", 80},
    /* Unknown methods are skipped; names are bytes (only NUL is refused). */
    {S("\x05\x03\x80\x00\xfe\x05\x01\x00\x03\x03z\xffZ\xff\xffz"), 1, S("\x05\x00"), 0, 3, NULL,
     "z\xffZ", NULL, NULL, 65535},
    /* The length byte bounds the name: "xy" then the port 0x7a77 ("zw"). */
    {S(NOAUTH "\x05\x01\x00\x03\x02xyzwuv"), 2, S("\x05\x00"), 0, 3, NULL, "xy", NULL, NULL,
     0x7a77},
    {S(NOAUTH "\x05\x01\x00\x01\xff\xff\xff\xff\x00\x00"), 0, S("\x05\x00"), 0, 1,
     "\xff\xff\xff\xff", NULL, NULL, NULL, 0},
};

static void check_good(const struct run *r, size_t i)
{
    const struct socks5_req *q = &r->s.req;

    ck_assert_int_eq(r->res, SOCKS5_READY);
    ck_assert_uint_eq(r->used, good[i].len - good[i].tail);
    ck_assert_uint_eq(r->sent_len, good[i].sent_len);
    ck_assert_mem_eq(r->sent, good[i].sent, r->sent_len);
    ck_assert_uint_eq(q->method, good[i].method);
    ck_assert_uint_eq(q->atyp, good[i].atyp);
    ck_assert_uint_eq(q->port, good[i].port);
    if (good[i].addr)
        ck_assert_mem_eq(q->addr, good[i].addr, q->atyp == SOCKS5_ATYP_IPV4 ? 4 : 16);
    ck_assert_str_eq(q->host, good[i].host ? good[i].host : "");
    ck_assert_uint_eq(q->user_len, good[i].user ? strlen(good[i].user) : 0);
    ck_assert_uint_eq(q->pass_len, good[i].pass ? strlen(good[i].pass) : 0);
    ck_assert_str_eq((const char *)q->user, good[i].user ? good[i].user : "");
    ck_assert_str_eq((const char *)q->pass, good[i].pass ? good[i].pass : "");
}

/* Whole, one byte at a time and in other chunk sizes: the same result. */
START_TEST(good_any_split)
{
    static const size_t chunks[] = {0, 1, 2, 3, 5, 7, 64};
    struct run r;

    for (size_t c = 0; c < sizeof(chunks) / sizeof(chunks[0]); c++) {
        drive(&r, (const uint8_t *)good[_i].in, good[_i].len, chunks[c]);
        check_good(&r, (size_t)_i);
    }
}
END_TEST

/* Every strict prefix of a good request waits for more, having sent a
 * prefix of the replies. */
START_TEST(good_truncated)
{
    size_t req = good[_i].len - good[_i].tail;
    struct run r;

    for (size_t n = 0; n < req; n++) {
        drive(&r, (const uint8_t *)good[_i].in, n, 0);
        ck_assert_int_eq(r.res, SOCKS5_MORE);
        ck_assert_uint_eq(r.used, n);
        ck_assert_uint_le(r.sent_len, good[_i].sent_len);
        ck_assert_mem_eq(r.sent, good[_i].sent, r.sent_len);
    }
}
END_TEST

/* Malformed or refused inputs: at is how many bytes the parser takes
 * (the deciding byte is the last), err and rep the failure, out what it
 * sends before closing (after the replies in sent). */
static const struct {
    const char *in;
    size_t len, at;
    int err;
    uint8_t rep;
    const char *sent;
    size_t sent_len;
    const char *out;
    size_t out_len;
} bad[] = {
    /* Not SOCKS5 at all: nothing meaningful to send. */
    {S("\x04\x01\x00\x50\x7f\0\0\x01user\0"), 1, OVL_EUNSUPP, 1, S(""), S("")},
    {S("\x04\x01\x00\x50\0\0\0\x01\0example.org\0"), 1, OVL_EUNSUPP, 1, S(""), S("")},
    {S(HTTP), 1, OVL_EUNSUPP, 1, S(""), S("")},
    {S("CONNECT example.org:443 HTTP/1.1\r\n\r\n"), 1, OVL_EUNSUPP, 1, S(""), S("")},
    {S("\x00"), 1, OVL_EUNSUPP, 1, S(""), S("")},
    {S("\xff"), 1, OVL_EUNSUPP, 1, S(""), S("")},
    /* Greeting: zero methods, no acceptable method. */
    {S("\x05\x00" REQ4), 2, OVL_EPROTO, 1, S(""), S("\x05\xff")},
    {S("\x05\x01\x01"), 3, OVL_EUNSUPP, 1, S(""), S("\x05\xff")},
    {S("\x05\x03\x01\x03\xff"), 5, OVL_EUNSUPP, 1, S(""), S("\x05\xff")},
    {S("\x05\x01\xff" REQ4), 3, OVL_EUNSUPP, 1, S(""), S("\x05\xff")},
    /* Subnegotiation version other than 1. */
    {S(USERPASS "\x05\x04user\x04pass"), 4, OVL_EPROTO, 1, S("\x05\x02"), S("\x01\x01")},
    {S(USERPASS "\x00\x00\x00"), 4, OVL_EPROTO, 1, S("\x05\x02"), S("\x01\x01")},
    /* Request version. */
    {S(NOAUTH "\x04\x01\x00\x01\x7f\0\0\x01\0\x50"), 4, OVL_EPROTO, 1, S("\x05\x00"),
     S("\x05\x01\0\x01\0\0\0\0\0\0")},
    {S(USERPASS CREDS "\x01\x01\x00\x01"), 15, OVL_EPROTO, 1, S("\x05\x02\x01\x00"),
     S("\x05\x01\0\x01\0\0\0\0\0\0")},
    /* Commands: BIND, UDP ASSOCIATE, unknown. */
    {S(NOAUTH "\x05\x02\x00\x01\x7f\0\0\x01\0\x50"), 5, OVL_EUNSUPP, 7, S("\x05\x00"),
     S("\x05\x07\0\x01\0\0\0\0\0\0")},
    {S(NOAUTH "\x05\x03\x00\x01\0\0\0\0\0\0"), 5, OVL_EUNSUPP, 7, S("\x05\x00"),
     S("\x05\x07\0\x01\0\0\0\0\0\0")},
    {S(USERPASS CREDS "\x05\x02\x00\x03\x01z\0\x50"), 16, OVL_EUNSUPP, 7, S("\x05\x02\x01\x00"),
     S("\x05\x07\0\x01\0\0\0\0\0\0")},
    {S(NOAUTH "\x05\x00"), 5, OVL_EUNSUPP, 7, S("\x05\x00"), S("\x05\x07\0\x01\0\0\0\0\0\0")},
    {S(NOAUTH "\x05\xff"), 5, OVL_EUNSUPP, 7, S("\x05\x00"), S("\x05\x07\0\x01\0\0\0\0\0\0")},
    /* Reserved byte. */
    {S(NOAUTH "\x05\x01\x01\x01\x7f\0\0\x01\0\x50"), 6, OVL_EPROTO, 1, S("\x05\x00"),
     S("\x05\x01\0\x01\0\0\0\0\0\0")},
    {S(NOAUTH "\x05\x02\x01"), 5, OVL_EUNSUPP, 7, S("\x05\x00"), S("\x05\x07\0\x01\0\0\0\0\0\0")},
    /* Address types. */
    {S(NOAUTH "\x05\x01\x00\x02\x7f\0\0\x01\0\x50"), 7, OVL_EUNSUPP, 8, S("\x05\x00"),
     S("\x05\x08\0\x01\0\0\0\0\0\0")},
    {S(NOAUTH "\x05\x01\x00\x00"), 7, OVL_EUNSUPP, 8, S("\x05\x00"),
     S("\x05\x08\0\x01\0\0\0\0\0\0")},
    {S(NOAUTH "\x05\x01\x00\x05"), 7, OVL_EUNSUPP, 8, S("\x05\x00"),
     S("\x05\x08\0\x01\0\0\0\0\0\0")},
    {S(NOAUTH "\x05\x01\x00\xff"), 7, OVL_EUNSUPP, 8, S("\x05\x00"),
     S("\x05\x08\0\x01\0\0\0\0\0\0")},
    /* Names: length 0, a NUL inside, a NUL first. */
    {S(NOAUTH "\x05\x01\x00\x03\x00\x00\x50"), 8, OVL_EPROTO, 1, S("\x05\x00"),
     S("\x05\x01\0\x01\0\0\0\0\0\0")},
    {S(NOAUTH "\x05\x01\x00\x03\x05xy\0zw\0\x50"), 11, OVL_EPROTO, 1, S("\x05\x00"),
     S("\x05\x01\0\x01\0\0\0\0\0\0")},
    {S(NOAUTH "\x05\x01\x00\x03\x01\0\0\x50"), 9, OVL_EPROTO, 1, S("\x05\x00"),
     S("\x05\x01\0\x01\0\0\0\0\0\0")},
};

/* Fails at the deciding byte, whole and byte by byte, and sends the
 * expected bytes; any shorter input waits for more. */
START_TEST(bad_input)
{
    const uint8_t *in = (const uint8_t *)bad[_i].in;
    size_t pre = bad[_i].sent_len;
    struct run r;

    for (size_t chunk = 0; chunk < 3; chunk++) {
        drive(&r, in, bad[_i].len, chunk);
        ck_assert_int_eq(r.res, bad[_i].err);
        ck_assert_uint_eq(r.used, bad[_i].at);
        ck_assert_uint_eq(r.s.rep, bad[_i].rep);
        ck_assert_uint_eq(r.s.out_len, bad[_i].out_len);
        ck_assert_uint_eq(r.sent_len, pre + bad[_i].out_len);
        ck_assert_mem_eq(r.sent, bad[_i].sent, pre);
        ck_assert_mem_eq(r.sent + pre, bad[_i].out, bad[_i].out_len);
    }
    for (size_t n = 0; n < bad[_i].at; n++) {
        drive(&r, in, n, 0);
        ck_assert_int_eq(r.res, SOCKS5_MORE);
        ck_assert_uint_eq(r.used, n);
    }
}
END_TEST

/* Greeting, credentials and request in one write: one step per call,
 * each reporting only what it used. */
START_TEST(pipelined_steps)
{
    static const uint8_t in[] = USERPASS CREDS REQ4 "data";
    struct socks5 s;
    size_t used, off = 0;

    socks5_init(&s);
    ck_assert_int_eq(socks5_feed(&s, in, sizeof(in) - 1, &used), SOCKS5_SEND);
    ck_assert_uint_eq(used, 3);
    ck_assert_uint_eq(s.out_len, 2);
    ck_assert_mem_eq(s.out, "\x05\x02", 2);
    off += used;
    ck_assert_int_eq(socks5_feed(&s, in + off, sizeof(in) - 1 - off, &used), SOCKS5_SEND);
    ck_assert_uint_eq(used, 11);
    ck_assert_mem_eq(s.out, "\x01\x00", 2);
    off += used;
    ck_assert_int_eq(socks5_feed(&s, in + off, sizeof(in) - 1 - off, &used), SOCKS5_READY);
    ck_assert_uint_eq(used, 10);
    ck_assert_uint_eq(s.out_len, 0);
    off += used;
    ck_assert_mem_eq(in + off, "data", 4);
    /* Finished: the same answer again, nothing used. */
    ck_assert_int_eq(socks5_feed(&s, in + off, 4, &used), SOCKS5_READY);
    ck_assert_uint_eq(used, 0);
    ck_assert_int_eq(socks5_feed(&s, NULL, 0, &used), SOCKS5_READY);
    ck_assert_uint_eq(used, 0);
}
END_TEST

START_TEST(failure_is_final)
{
    static const uint8_t in[] = NOAUTH "\x05\x02\x00\x01";
    struct socks5 s;
    size_t used;

    socks5_init(&s);
    ck_assert_int_eq(socks5_feed(&s, in, 3, &used), SOCKS5_SEND);
    ck_assert_int_eq(socks5_feed(&s, in + 3, 4, &used), OVL_EUNSUPP);
    ck_assert_uint_eq(used, 2);
    for (int k = 0; k < 2; k++) {
        ck_assert_int_eq(socks5_feed(&s, in + 5, 2, &used), OVL_EUNSUPP);
        ck_assert_uint_eq(used, 0);
        ck_assert_uint_eq(s.out_len, SOCKS5_REPLY_LEN);
        ck_assert_uint_eq(s.out[1], SOCKS5_REP_CMD_UNSUPP);
    }
}
END_TEST

/* Lengths at their 255-byte maximum, a NUL inside the user name, byte
 * by byte and whole; the byte after the port stays. */
START_TEST(longest_fields)
{
    uint8_t in[3 + 2 + 255 + 1 + 255 + 5 + 255 + 2 + 1], *p = in;
    struct run r;

    memcpy(p, USERPASS "\x01\xff", 5);
    p += 5;
    memset(p, 'u', 255);
    p[7] = '\0';
    p += 255;
    *p++ = 0xff;
    memset(p, 'p', 255);
    p += 255;
    memcpy(p, "\x05\x01\x00\x03\xff", 5);
    p += 5;
    memset(p, 'n', 255);
    p += 255;
    memcpy(p, "\x01\x02\x05", 3);
    ck_assert_uint_eq((size_t)(p + 3 - in), sizeof(in));
    drive(&r, in, sizeof(in) - 4, 0); /* the name one byte short */
    ck_assert_int_eq(r.res, SOCKS5_MORE);
    ck_assert_uint_eq(r.used, sizeof(in) - 4);
    for (size_t chunk = 0; chunk < 2; chunk++) {
        drive(&r, in, sizeof(in), chunk);
        ck_assert_int_eq(r.res, SOCKS5_READY);
        ck_assert_uint_eq(r.used, sizeof(in) - 1);
        ck_assert_uint_eq(r.s.req.user_len, 255);
        ck_assert_mem_eq(r.s.req.user, in + 5, 255);
        ck_assert_uint_eq(r.s.req.user[255], 0);
        ck_assert_uint_eq(r.s.req.pass_len, 255);
        ck_assert_uint_eq(r.s.req.pass[255], 0);
        ck_assert_uint_eq(strlen(r.s.req.host), 255);
        ck_assert_uint_eq(r.s.req.port, 0x0102);
    }
}
END_TEST

START_TEST(reply_encoder)
{
    static const uint8_t bnd[4] = {10, 1, 2, 3};
    uint8_t out[12];

    memset(out, 0xee, sizeof(out));
    ck_assert_int_eq(socks5_reply(out, sizeof(out), SOCKS5_REP_OK, NULL, 0), SOCKS5_REPLY_LEN);
    ck_assert_mem_eq(out, "\x05\x00\x00\x01\0\0\0\0\0\0\xee", 11);
    ck_assert_int_eq(socks5_reply(out, 10, SOCKS5_REP_HOST_UNREACH, bnd, 9050), 10);
    ck_assert_mem_eq(out, "\x05\x04\x00\x01\x0a\x01\x02\x03\x23\x5a", 10);
    ck_assert_int_eq(socks5_reply(out, 10, SOCKS5_REP_ATYP_UNSUPP, NULL, 0), 10);
    ck_assert_uint_eq(out[1], 8);
    ck_assert_int_eq(socks5_reply(out, 9, SOCKS5_REP_OK, NULL, 0), OVL_ETOOBIG);
    ck_assert_int_eq(socks5_reply(out, sizeof(out), 9, NULL, 0), OVL_EINVAL);
    ck_assert_int_eq(socks5_reply(NULL, 10, SOCKS5_REP_OK, NULL, 0), OVL_EINVAL);
    ck_assert_uint_eq(SOCKS5_REP_FAIL, 1);
    ck_assert_uint_eq(SOCKS5_REP_NOT_ALLOWED, 2);
    ck_assert_uint_eq(SOCKS5_REP_NET_UNREACH, 3);
    ck_assert_uint_eq(SOCKS5_REP_REFUSED, 5);
    ck_assert_uint_eq(SOCKS5_REP_TTL_EXPIRED, 6);
    ck_assert_uint_eq(SOCKS5_REP_CMD_UNSUPP, 7);
}
END_TEST

/* .ovl names: {prefix, suffix, expected}; the prefix "ID" stands for a
 * real node ID, "UP" for it in upper case. */
static const struct {
    const char *pre, *suf;
    int want;
} ovl_names[] = {
    {"ID", ".ovl", 1},
    {"UP", ".OVL", 1},
    {"ID", ".oVl", 1},
    {"ID", ".ovl.", 1}, /* a fully qualified name */
    {"", "example.org", 0},
    {"", "", 0},
    {"", "ovl", 0},
    {"", ".", 0},
    {"ID", "", 0},
    {"ID", ".onion", 0},
    {"ID", ".ovlx", 0},
    {"ID", "ovl", 0},
    {"ID", ".ovl..", 0},
    {"", ".ovl", OVL_EINVAL},
    {"", "x.ovl", OVL_EINVAL},
    {"", "example.ovl", OVL_EINVAL},
    {"www.ID", ".ovl", OVL_EINVAL}, /* subdomains are not node IDs */
    {"ID", "a.ovl", OVL_EINVAL},    /* 53 characters */
    {"", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.ovl", OVL_EINVAL}, /* 51 */
    {"", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab.ovl",
     OVL_EINVAL}, /* trailing bits */
    {"", "1aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.ovl", OVL_EINVAL}, /* not base32 */
    {"", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.ovl", 1},          /* all zero */
};

START_TEST(ovl_name)
{
    uint8_t pk[32], id[32];
    char text[OVL_NODE_ID_LEN + 1], host[256];
    const char *pre = ovl_names[_i].pre;

    for (size_t k = 0; k < 32; k++)
        pk[k] = (uint8_t)(k * 37 + 11);
    node_id_format(text, pk);
    if (strstr(pre, "UP"))
        for (char *c = text; *c; c++)
            *c = (*c >= 'a' && *c <= 'z') ? (char)(*c - 32) : *c;
    if (strcmp(pre, "ID") == 0 || strcmp(pre, "UP") == 0)
        snprintf(host, sizeof(host), "%s%s", text, ovl_names[_i].suf);
    else if (strcmp(pre, "www.ID") == 0)
        snprintf(host, sizeof(host), "www.%s%s", text, ovl_names[_i].suf);
    else
        snprintf(host, sizeof(host), "%s", ovl_names[_i].suf);
    memset(id, 0x5a, sizeof(id));
    ck_assert_int_eq(socks5_is_ovl_name(host, id), ovl_names[_i].want);
    if (ovl_names[_i].want == 1 && *pre)
        ck_assert_mem_eq(id, pk, 32);
    else if (ovl_names[_i].want != 1)
        for (size_t k = 0; k < 32; k++)
            ck_assert_uint_eq(id[k], 0);
}
END_TEST

/* A request for a name goes straight to the .ovl check. */
START_TEST(ovl_name_from_request)
{
    uint8_t pk[32], id[32], in[3 + 5 + 56 + 2], *p = in;
    char text[OVL_NODE_ID_LEN + 1];
    struct run r;

    memset(pk, 0x42, sizeof(pk));
    node_id_format(text, pk);
    memcpy(p, NOAUTH "\x05\x01\x00\x03\x38", 8);
    memcpy(p + 8, text, OVL_NODE_ID_LEN);
    memcpy(p + 8 + OVL_NODE_ID_LEN, ".Ovl\x01\xbb", 6);
    drive(&r, in, sizeof(in), 1);
    ck_assert_int_eq(r.res, SOCKS5_READY);
    ck_assert_int_eq(socks5_is_ovl_name(r.s.req.host, id), 1);
    ck_assert_mem_eq(id, pk, 32);
    ck_assert_uint_eq(r.s.req.port, 443);
}
END_TEST

static Suite *socks5_suite(void)
{
    Suite *s = suite_create("socks5");
    TCase *tc = tcase_create("core");

    tcase_add_loop_test(tc, good_any_split, 0, sizeof(good) / sizeof(good[0]));
    tcase_add_loop_test(tc, good_truncated, 0, sizeof(good) / sizeof(good[0]));
    tcase_add_loop_test(tc, bad_input, 0, sizeof(bad) / sizeof(bad[0]));
    tcase_add_test(tc, pipelined_steps);
    tcase_add_test(tc, failure_is_final);
    tcase_add_test(tc, longest_fields);
    tcase_add_test(tc, reply_encoder);
    tcase_add_loop_test(tc, ovl_name, 0, sizeof(ovl_names) / sizeof(ovl_names[0]));
    tcase_add_test(tc, ovl_name_from_request);
    suite_add_tcase(s, tc);
    return s;
}

OVL_CHECK_MAIN(socks5_suite)
