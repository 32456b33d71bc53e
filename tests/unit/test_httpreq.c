/* test_httpreq.c - the head of an HTTP/1.x request and the metrics
 * listener's route (src/control/httpreq.c). */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "control/httpreq.h"

#include "check_main.h"

#define OK  1 /* a complete head: its length is returned */
#define H11 "HTTP/1.1\r\nHost: x\r\n\r\n"

/* A head; what parsing it whole gives (OK, 0 for more, or the error);
 * for OK, the route's status and the bytes after the head. */
static const struct req_case {
    const char *in;
    int want;
    int route;
    size_t tail;
} cases[] = {
    {"GET /metrics " H11, OK, 200, 0},
    {"GET /metrics?name[]=x " H11, OK, 200, 0},
    {"GET /metrics HTTP/1.0\r\n\r\n", OK, 200, 0}, /* 1.0 needs no Host */
    {"GET /metrics HTTP/1.0\n\n", OK, 200, 0},     /* bare LFs */
    {"GET /metrics HTTP/1.1\nHost:x\n\n", OK, 200, 0},
    {"GET /metrics HTTP/1.1\r\nhOsT: x\r\nAccept: \x80\xff\t*/*\r\nX-Empty:\r\n\r\n", OK, 200, 0},
    {"GET /metrics " H11 "body", OK, 200, 4},
    {"GET /metricsx " H11, OK, 404, 0},
    {"GET /metric " H11, OK, 404, 0},
    {"GET / " H11, OK, 404, 0},
    {"GET http://x/metrics " H11, OK, 404, 0},
    {"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nab", OK, 405, 2},
    {"HEAD /metrics " H11, OK, 405, 0},
    {"get /metrics " H11, OK, 405, 0}, /* methods are case-sensitive */
    {"POST /nothing " H11, OK, 404, 0},
    {"GET /metrics HTTP/1.1\r\nHost: x\r\n", 0, 0, 0}, /* not ended yet */
    {"GET /metrics HTTP/1.1\r\nHost: x\r\n\r", 0, 0, 0},
    {"", 0, 0, 0},
    {"GET /metrics HTTP/2.0\r\nHost: x\r\n\r\n", OVL_EUNSUPP, 0, 0},
    {"GET /metrics HTTP/1.2\r\nHost: x\r\n\r\n", OVL_EUNSUPP, 0, 0},
    {"GET /metrics HTTP/0.9\r\n\r\n", OVL_EUNSUPP, 0, 0},
    {"GET /metrics HTTP/1.1\r\n\r\n", OVL_EPROTO, 0, 0}, /* 1.1 without Host */
    {"GET /metrics HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n", OVL_EPROTO, 0, 0},
    {"GET /metrics HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n", OVL_EPROTO, 0, 0},
    {"GET /metrics HTTX/1.1\r\nHost: x\r\n\r\n", OVL_EPROTO, 0, 0},
    {"GET /metrics HTTP/1.11\r\nHost: x\r\n\r\n", OVL_EPROTO, 0, 0},
    {"GET /metrics HTTP/1.\r\nHost: x\r\n\r\n", OVL_EPROTO, 0, 0},
    {"GET  /metrics " H11, OVL_EPROTO, 0, 0},
    {"GET /metrics  " H11, OVL_EPROTO, 0, 0},
    {" GET /metrics " H11, OVL_EPROTO, 0, 0},
    {"GET\t/metrics " H11, OVL_EPROTO, 0, 0},
    {"GET /metrics HTTP/1.1 \r\nHost: x\r\n\r\n", OVL_EPROTO, 0, 0},
    {"GET /metrics\r\nHost: x\r\n\r\n", OVL_EPROTO, 0, 0},
    {"GET /met\x01rics " H11, OVL_EPROTO, 0, 0},
    {"GET /met\x7frics " H11, OVL_EPROTO, 0, 0},
    {"GET /m\xe9trics " H11, OVL_EPROTO, 0, 0},
    {"G(T /metrics " H11, OVL_EPROTO, 0, 0},
    {"\r\nGET /metrics " H11, OVL_EPROTO, 0, 0},
    {"GET /metrics HTTP/1.1\r\nHost : x\r\n\r\n", OVL_EPROTO, 0, 0},
    {"GET /metrics HTTP/1.1\r\n: x\r\nHost: x\r\n\r\n", OVL_EPROTO, 0, 0},
    {"GET /metrics HTTP/1.1\r\nHost x\r\n\r\n", OVL_EPROTO, 0, 0},
    {"GET /metrics HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n", OVL_EPROTO, 0, 0},
    {"GET /metrics HTTP/1.1\r\nHost: x\rY\r\n\r\n", OVL_EPROTO, 0, 0},
    {"GET /metrics HTTP/1.1\r\nHost: x\r\r\n\r\n", OVL_EPROTO, 0, 0},
    {"GET /metrics HTTP/1.1\r\nHost: \x01\r\n\r\n", OVL_EPROTO, 0, 0},
    {"GET /metrics HTTP/1.1\r\nHost: x\x7f\r\n\r\n", OVL_EPROTO, 0, 0},
    {"GET /metrics HTTP/1.1\r\nHo\x80st: x\r\n\r\n", OVL_EPROTO, 0, 0},
    {"\n\n", OVL_EPROTO, 0, 0},
    {"\r\n\r\n", OVL_EPROTO, 0, 0},
};

/* Parse in whole and compare with the case. */
START_TEST(test_cases)
{
    const struct req_case *t = &cases[_i];
    size_t len = strlen(t->in);
    struct httpreq r;
    int rc;

    memset(&r, 0, sizeof(r));
    rc = httpreq_parse(&r, (const uint8_t *)t->in, len, 8192);
    if (t->want == OK) {
        ck_assert_msg(rc > 0, "case %d: got %d", _i, rc);
        ck_assert_uint_eq((size_t)rc, len - t->tail);
        ck_assert_int_eq(httpreq_route(&r, (const uint8_t *)t->in), t->route);
    } else {
        ck_assert_msg(rc == t->want, "case %d: got %d, want %d", _i, rc, t->want);
    }
}
END_TEST

/* Fed one byte more each time, the parse waits (0) until the head is
 * complete and then gives what parsing it whole gives. */
START_TEST(test_byte_by_byte)
{
    const struct req_case *t = &cases[_i];
    size_t len = strlen(t->in), n;
    struct httpreq whole, step;
    int want, rc = 0;

    memset(&whole, 0, sizeof(whole));
    memset(&step, 0, sizeof(step));
    want = httpreq_parse(&whole, (const uint8_t *)t->in, len, 8192);
    for (n = 0;; n++) {
        rc = httpreq_parse(&step, (const uint8_t *)t->in, n, 8192);
        if (rc != 0 || n == len)
            break;
    }
    ck_assert_int_eq(rc, want);
    if (rc > 0) {
        ck_assert_uint_eq(n, (size_t)rc); /* known as soon as its last byte is there */
        ck_assert_int_eq(step.method_len, whole.method_len);
        ck_assert_int_eq(step.target_off, whole.target_off);
        ck_assert_int_eq(step.target_len, whole.target_len);
        ck_assert_int_eq(step.minor, whole.minor);
    }
}
END_TEST

/* A head that has not ended by max bytes is too large, however it goes
 * on; one that ends exactly at max is taken. */
START_TEST(test_too_large)
{
    static uint8_t buf[9000];
    struct httpreq r;
    size_t n;

    memset(&r, 0, sizeof(r));
    n = (size_t)snprintf((char *)buf, sizeof(buf), "GET /metrics HTTP/1.1\r\nHost: x\r\nX: ");
    memset(buf + n, 'a', sizeof(buf) - n);
    ck_assert_int_eq(httpreq_parse(&r, buf, 8191, 8192), 0);
    ck_assert_int_eq(httpreq_parse(&r, buf, 8192, 8192), OVL_ETOOBIG);
    ck_assert_int_eq(httpreq_parse(&r, buf, sizeof(buf), 8192), OVL_ETOOBIG);
    /* The end at bytes 8189..8191 (0-based): a head of exactly 8192. */
    memcpy(buf + 8188, "\r\n\r\n", 4);
    memset(&r, 0, sizeof(r));
    ck_assert_int_eq(httpreq_parse(&r, buf, sizeof(buf), 8192), 8192);
    ck_assert_int_eq(httpreq_route(&r, buf), 200);
    /* ... and one byte later it is too large. */
    memcpy(buf + 8188, "a\r\n\r\n", 5);
    memset(&r, 0, sizeof(r));
    ck_assert_int_eq(httpreq_parse(&r, buf, sizeof(buf), 8192), OVL_ETOOBIG);
}
END_TEST

/* The limits of the method and the target. */
START_TEST(test_lengths)
{
    static char buf[2048];
    struct httpreq r;

    memset(&r, 0, sizeof(r));
    snprintf(buf, sizeof(buf), "%.*s /metrics " H11, HTTPREQ_METHOD_MAX,
             "ABCDEFGHIJKLMNOPQRSTUVWXYZ");
    ck_assert_int_gt(httpreq_parse(&r, (const uint8_t *)buf, strlen(buf), 8192), 0);
    ck_assert_int_eq(httpreq_route(&r, (const uint8_t *)buf), 405);
    memset(&r, 0, sizeof(r));
    snprintf(buf, sizeof(buf), "%.*s /metrics " H11, HTTPREQ_METHOD_MAX + 1,
             "ABCDEFGHIJKLMNOPQRSTUVWXYZ");
    ck_assert_int_eq(httpreq_parse(&r, (const uint8_t *)buf, strlen(buf), 8192), OVL_EPROTO);
    memset(&r, 0, sizeof(r));
    memcpy(buf, "GET /", 5);
    memset(buf + 5, 'a', HTTPREQ_TARGET_MAX - 1);
    snprintf(buf + 4 + HTTPREQ_TARGET_MAX, sizeof(buf) - 4 - HTTPREQ_TARGET_MAX, " " H11);
    ck_assert_int_gt(httpreq_parse(&r, (const uint8_t *)buf, strlen(buf), 8192), 0);
    ck_assert_int_eq(r.target_len, HTTPREQ_TARGET_MAX);
    ck_assert_int_eq(httpreq_route(&r, (const uint8_t *)buf), 404);
    memset(&r, 0, sizeof(r));
    memset(buf + 5, 'a', HTTPREQ_TARGET_MAX);
    snprintf(buf + 5 + HTTPREQ_TARGET_MAX, sizeof(buf) - 5 - HTTPREQ_TARGET_MAX, " " H11);
    ck_assert_int_eq(httpreq_parse(&r, (const uint8_t *)buf, strlen(buf), 8192), OVL_EPROTO);
}
END_TEST

static Suite *httpreq_suite(void)
{
    Suite *s = suite_create("httpreq");
    TCase *tc = tcase_create("core");
    int n = (int)(sizeof(cases) / sizeof(cases[0]));

    tcase_add_loop_test(tc, test_cases, 0, n);
    tcase_add_loop_test(tc, test_byte_by_byte, 0, n);
    tcase_add_test(tc, test_too_large);
    tcase_add_test(tc, test_lengths);
    suite_add_tcase(s, tc);
    return s;
}

OVL_CHECK_MAIN(httpreq_suite)
