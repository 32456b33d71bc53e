/* test_tp_tcp.c - the TCP transport and the transport registry on loopback:
 * the shared contract tests of tpfix.h, then what only a byte stream has
 * (a raw peer writing bad length prefixes). */
#include "ovl_config.h"

#include "core/tp_tcp.h"
#include "check_main.h"
#include "tpfix.h"

START_TEST(test_exchange_ipv4)
{
    ck_assert(run_exchange("tcp://127.0.0.1:0", "tcp://127.0.0.1:"));
}
END_TEST

START_TEST(test_exchange_ipv6)
{
    (void)run_exchange("tcp://[::1]:0", "tcp://[::1]:");
}
END_TEST

/* ---- hostile raw peer ------------------------------------------------- */

/* A plain libuv client that writes fixed bytes, then waits for the server
 * to hang up (optionally half-closing its side first). */
struct raw {
    uv_tcp_t h;
    uv_connect_t creq;
    uv_write_t wreq;
    uv_shutdown_t sreq;
    const uint8_t *data;
    size_t len;
    bool eof;
    int closed;
    struct fx *fx;
    char sink[4096];
};

static void raw_on_close(uv_handle_t *h)
{
    struct raw *r = h->data;

    r->closed++;
    fx_check(r->fx);
}

static void raw_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct raw *r = h->data;

    (void)suggested;
    *buf = uv_buf_init(r->sink, sizeof(r->sink));
}

static void raw_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    (void)buf;
    if (nread < 0 && !uv_is_closing((uv_handle_t *)s))
        uv_close((uv_handle_t *)s, raw_on_close);
}

static void raw_shut(uv_shutdown_t *req, int status)
{
    (void)req;
    (void)status;
}

static void raw_written(uv_write_t *req, int status)
{
    struct raw *r = req->data;

    if (status == 0 && r->eof)
        ck_assert_int_eq(uv_shutdown(&r->sreq, (uv_stream_t *)&r->h, raw_shut), 0);
}

static void raw_connected(uv_connect_t *req, int status)
{
    struct raw *r = req->data;
    uv_buf_t b = uv_buf_init((char *)r->data, (unsigned int)r->len);

    ck_assert_int_eq(status, 0);
    ck_assert_int_eq(uv_write(&r->wreq, (uv_stream_t *)&r->h, &b, 1, raw_written), 0);
    ck_assert_int_eq(uv_read_start((uv_stream_t *)&r->h, raw_alloc, raw_read), 0);
}

/* Start fixture *fx listening on loopback and dial it with raw peer *r,
 * zeroed first; on_connected runs once the dial completes. */
static void raw_dial(struct fx *fx, struct raw *r, uv_connect_cb on_connected)
{
    struct ovl_uri u;
    struct sockaddr_storage ss;

    fx_init(fx, 64 * 1024);
    ck_assert_int_eq(fx_listen(fx, "tcp://127.0.0.1:0"), 0);
    memset(r, 0, sizeof(*r));
    r->fx = fx;
    fx->raw = r;
    ck_assert_int_eq(uri_parse(&u, fx->lst_uri), 0);
    ck_assert_int_eq(uri_sockaddr(&u, &ss), 0);
    ck_assert_int_eq(uv_tcp_init(&fx->loop, &r->h), 0);
    r->h.data = r;
    r->creq.data = r;
    r->wreq.data = r;
    ck_assert_int_eq(uv_tcp_connect(&r->creq, &r->h, (struct sockaddr *)&ss, on_connected), 0);
}

static bool done_raw(struct fx *fx)
{
    return fx->srv.closed == 1 && fx->raw->closed == 1;
}

struct raw_case {
    const char *name;
    uint8_t bytes[8];
    size_t len;
    bool eof;        /* half-close after writing */
    uint32_t frames; /* valid frames before the bad prefix */
    int err;         /* what the server's closed() must report */
};

static const struct raw_case raw_cases[] = {
    {"prefix max+1", {0x05, 0x01, 0xaa}, 3, false, 0, OVL_ETOOBIG},
    {"prefix 0xffff", {0xff, 0xff}, 2, false, 0, OVL_ETOOBIG},
    {"prefix zero", {0x00, 0x00, 0x01}, 3, false, 0, OVL_EPROTO},
    {"good then max+1", {0x00, 0x01, 0x42, 0x05, 0x01}, 5, false, 1, OVL_ETOOBIG},
    {"good then zero", {0x00, 0x01, 0x42, 0x00, 0x00}, 5, false, 1, OVL_EPROTO},
    {"eof mid-frame", {0x00, 0x09, 0x01}, 3, true, 0, OVL_ECLOSED},
    {"eof mid-prefix", {0x00, 0x01, 0x42, 0x00}, 4, true, 1, OVL_ECLOSED},
};

START_TEST(test_raw_peer)
{
    const struct raw_case *rc = &raw_cases[_i];
    struct fx fx;
    struct raw r;

    /* raw_connected reads these only once the loop runs. */
    raw_dial(&fx, &r, raw_connected);
    r.data = rc->bytes;
    r.len = rc->len;
    r.eof = rc->eof;
    fx.done = done_raw;
    fx_run(&fx);
    ck_assert_msg(fx.srv.closed == 1, "%s: server not closed", rc->name);
    ck_assert_msg(fx.srv.closed_err == rc->err, "%s: closed with %s", rc->name,
                  ovl_strerror(fx.srv.closed_err));
    ck_assert_uint_eq(fx.srv.rx, rc->frames);
    ck_assert_int_eq(fx.srv.connected, 0);
    ck_assert_int_eq(r.closed, 1);
    fx_finish(&fx);
}
END_TEST

/* ---- buffers lent and given back -------------------------------------- */

/* A raw peer that writes each frame in two parts, the second only once the
 * server has read the first: the server keeps the partial frame in a buffer
 * made for it, delivers the frame whole and intact once the rest comes, and
 * then holds no receive buffer. Sending, a write of a few frames gives its
 * buffer back at once, a burst's buffer stays until tp_trim. */
static void dribble_connected(uv_connect_t *req, int status)
{
    struct raw *r = req->data;

    ck_assert_int_eq(status, 0);
    r->len = 1; /* connected */
    ck_assert_int_eq(uv_read_start((uv_stream_t *)&r->h, raw_alloc, raw_read), 0);
    fx_check(r->fx);
}

static bool done_dribble_up(struct fx *fx)
{
    return fx->srv.t && fx->raw->len == 1;
}

static size_t dribble_want;

static bool done_partial_read(struct fx *fx)
{
    return tp_tcp_held(fx->srv.t) > 0;
}

static bool done_frames(struct fx *fx)
{
    return fx->srv.rx == dribble_want;
}

static bool done_idle(struct fx *fx)
{
    return tp_queued(fx->srv.t) == 0;
}

static void raw_put(struct raw *r, const uint8_t *b, size_t len)
{
    uv_buf_t buf = uv_buf_init((char *)b, (unsigned int)len);

    ck_assert_int_eq(uv_try_write((uv_stream_t *)&r->h, &buf, 1), (int)len);
}

START_TEST(test_partial_frames_lent)
{
    uint8_t wire[OVL_FRAME_MAX + OVL_FRAME_LENHDR];
    struct fx fx;
    struct raw r;

    raw_dial(&fx, &r, dribble_connected);
    fx.done = done_dribble_up;
    fx_run(&fx);
    ck_assert_uint_eq(tp_tcp_held(fx.srv.t), 0);
    for (uint32_t i = 0; i < 40; i++) {
        size_t len = pat_len(fx.srv.peer_seed, i), cut = 1 + (i * 37u) % (len + 1);

        st_be16(wire, (uint16_t)len);
        pat_fill(wire + OVL_FRAME_LENHDR, len, fx.srv.peer_seed, i);
        raw_put(&r, wire, cut); /* the prefix alone, or part of it, or more */
        fx.done = done_partial_read;
        fx_run(&fx);
        raw_put(&r, wire + cut, len + OVL_FRAME_LENHDR - cut);
        dribble_want = i + 1;
        fx.done = done_frames;
        fx_run(&fx);
        ck_assert_uint_eq(tp_tcp_held(fx.srv.t), 0);
    }
    ck_assert_uint_eq(fx.srv.bad, 0);
    /* One small frame: its buffer goes once written. */
    memset(wire, 0x5a, 64);
    ck_assert_int_eq(tp_send(fx.srv.t, wire, 64), 0);
    ck_assert_uint_gt(tp_tcp_held(fx.srv.t), 0);
    fx.done = done_idle;
    fx_run(&fx);
    ck_assert_uint_eq(tp_tcp_held(fx.srv.t), 0);
    /* A burst keeps its buffer for the next one, until trimmed. */
    for (unsigned i = 0; i < 16; i++)
        ck_assert_int_eq(tp_send(fx.srv.t, wire, OVL_FRAME_MAX), 0);
    fx_run(&fx);
    ck_assert_uint_gt(tp_tcp_held(fx.srv.t), 0);
    tp_trim(fx.srv.t);
    ck_assert_uint_eq(tp_tcp_held(fx.srv.t), 0);
    uv_close((uv_handle_t *)&r.h, NULL);
    fx_finish(&fx);
}
END_TEST

#define ANY_ERR 1 /* the exact code is the kernel's business */

struct bad_case {
    const char *uri;
    int err; /* expected code, or ANY_ERR */
};

static const struct bad_case bad_dials[] = {
    {"", OVL_EINVAL},
    {"nonsense", OVL_EINVAL},
    {"tcp://127.0.0.1", OVL_EINVAL},
    {"tcp://127.0.0.1:0", OVL_EINVAL},
    {"tcp://localhost:0", OVL_EINVAL},
    {"tcp://::1:7001", OVL_EINVAL},
    {"tcp://127.0.0.1:7001/path", OVL_EINVAL},
    {"udp://127.0.0.1:7001", OVL_EUNSUPP},
    {"quix://127.0.0.1:7001", OVL_EUNSUPP},
    /* Linux refuses TCP to broadcast at connect(): a failure after the
     * handle exists, which must still fire no callback. */
    {"tcp://255.255.255.255:7001", ANY_ERR},
};

START_TEST(test_dial_bad)
{
    const struct bad_case *bc = &bad_dials[_i];
    struct fx fx;
    struct transport *t = (struct transport *)&fx; /* must be reset to NULL */
    int err;

    fx_init(&fx, 64 * 1024);
    err = tp_dial(&fx.env, bc->uri, &end_cb, &fx.cli, &t);
    if (bc->err == ANY_ERR)
        ck_assert_msg(err < 0, "%s: dial returned %d", bc->uri, err);
    else
        ck_assert_msg(err == bc->err, "%s: dial returned %s", bc->uri, ovl_strerror(err));
    ck_assert_ptr_null(t);
    fx_finish(&fx);
    ck_assert_int_eq(fx.cli.connected, 0);
    ck_assert_int_eq(fx.cli.closed, 0);
}
END_TEST

START_TEST(test_listen_bad)
{
    static const struct bad_case cases[] = {
        {"tcp://localhost:0", OVL_EINVAL},
        {"udp://127.0.0.1:0", OVL_EUNSUPP},
        {"tcp://[::1", OVL_EINVAL},
    };
    struct fx fx;
    struct tp_listener *l;
    char uri[OVL_URI_MAX];

    fx_init(&fx, 64 * 1024);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        l = (struct tp_listener *)&fx;
        ck_assert_int_eq(tp_listen(&fx.env, cases[i].uri, &lst_cb, &fx, &l), cases[i].err);
        ck_assert_ptr_null(l);
    }
    ck_assert_int_eq(tp_dial(&fx.env, "tcp://127.0.0.1:7001", NULL, NULL, &fx.cli.t), OVL_EINVAL);
    ck_assert_ptr_null(fx.cli.t);
    /* A port in use fails after the handle exists: it must still be freed. */
    ck_assert_int_eq(fx_listen(&fx, "tcp://127.0.0.1:0"), 0);
    memcpy(uri, fx.lst_uri, sizeof(uri));
    l = (struct tp_listener *)&fx;
    ck_assert_int_eq(tp_listen(&fx.env, uri, &lst_cb, &fx, &l), UV_EADDRINUSE);
    ck_assert_ptr_null(l);
    ck_assert_str_eq(tp_names(), OVL_HAVE_QUIC ? "tcp,quic" : "tcp");
    ck_assert_ptr_eq(tp_lookup("tcp"), &tp_tcp_ops);
    ck_assert_ptr_null(tp_lookup("quix"));
    ck_assert_ptr_null(tp_lookup(NULL));
    fx_finish(&fx);
    ck_assert_int_eq(fx.accepts, 0);
}
END_TEST

/* ---- the shared contract --------------------------------------------- */

START_TEST(test_frame_limits)
{
    tpt_frame_limits("tcp");
}
END_TEST

START_TEST(test_backpressure)
{
    tpt_backpressure("tcp");
}
END_TEST

START_TEST(test_dial_refused)
{
    tpt_dial_refused("tcp");
}
END_TEST

START_TEST(test_close_in_frame)
{
    tpt_close_in_frame("tcp");
}
END_TEST

START_TEST(test_peer_eof)
{
    tpt_local_close("tcp");
}
END_TEST

START_TEST(test_binding)
{
    tpt_binding("tcp", false);
}
END_TEST

START_TEST(test_accept_ignored)
{
    tpt_accept_ignored("tcp");
}
END_TEST

START_TEST(test_dns_localhost)
{
    tpt_dns_localhost("tcp", SOCK_STREAM);
}
END_TEST

START_TEST(test_dns_close_while_resolving)
{
    tpt_dns_close_while_resolving("tcp");
}
END_TEST

START_TEST(test_meter_rate)
{
    tpt_meter_rate("tcp");
}
END_TEST

START_TEST(test_meter_pause)
{
    tpt_meter_pause("tcp");
}
END_TEST

START_TEST(test_meter_close_held)
{
    tpt_meter_close_held("tcp");
}
END_TEST

START_TEST(test_meter_may_send)
{
    tpt_meter_may_send("tcp");
}
END_TEST

START_TEST(test_meter_lifted)
{
    tpt_meter_lifted("tcp");
}
END_TEST

static Suite *tp_tcp_suite(void)
{
    Suite *s = suite_create("tp_tcp");
    TCase *tc = tcase_create("tcp");

    tcase_add_test(tc, test_exchange_ipv4);
    tcase_add_test(tc, test_exchange_ipv6);
    tcase_add_test(tc, test_frame_limits);
    tcase_add_loop_test(tc, test_raw_peer, 0, (int)(sizeof(raw_cases) / sizeof(raw_cases[0])));
    tcase_add_test(tc, test_backpressure);
    tcase_add_test(tc, test_partial_frames_lent);
    tcase_add_test(tc, test_dial_refused);
    tcase_add_loop_test(tc, test_dial_bad, 0, (int)(sizeof(bad_dials) / sizeof(bad_dials[0])));
    tcase_add_test(tc, test_listen_bad);
    tcase_add_test(tc, test_close_in_frame);
    tcase_add_test(tc, test_peer_eof);
    tcase_add_test(tc, test_accept_ignored);
    tcase_add_test(tc, test_binding);
    tcase_add_test(tc, test_dns_localhost);
    tcase_add_test(tc, test_dns_close_while_resolving);
    tcase_add_test(tc, test_meter_rate);
    tcase_add_test(tc, test_meter_pause);
    tcase_add_test(tc, test_meter_close_held);
    tcase_add_test(tc, test_meter_may_send);
    tcase_add_test(tc, test_meter_lifted);
    suite_add_tcase(s, tc);
    return s;
}

OVL_CHECK_MAIN(tp_tcp_suite)
