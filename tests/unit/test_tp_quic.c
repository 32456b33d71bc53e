/* test_tp_quic.c - the QUIC transport on loopback: the shared contract of
 * tpfix.h, then what only QUIC has: Retry, a reconnect to the same
 * listener, loss recovery and a vanished peer (through a UDP relay that
 * drops on demand), garbage datagrams that must leave no state, and one
 * address block's flood of handshakes that must not shut out another.
 */
#include <inttypes.h>

#include <sodium.h>

#include "core/tp_quic.h"
#include "core/tp_tcp.h"
#include "check_main.h"
#include "tpfix.h"

/* ---- a UDP relay between the client and the listener ------------------- */

#define RELAY_HELD 8 /* datagrams a holding relay keeps back */

struct relay {
    uv_udp_t sock;
    struct sockaddr_storage srv, cli;
    bool have_cli;
    bool blackhole;    /* drop everything */
    bool hold;         /* pass back the listener's Retry, keep the rest */
    unsigned drop_pct; /* else drop this share at random */
    uint32_t rng;
    uint64_t passed, dropped;
    unsigned retries;              /* Retry packets passed back */
    const struct tp_listener *lst; /* when set: its connections ... */
    unsigned conns_at_retry;       /* ... as the last Retry passed */
    unsigned n_held;
    size_t held_len[RELAY_HELD];
    uint8_t held[RELAY_HELD][1500];
    char uri[OVL_URI_MAX];
    uint8_t buf[65536];
};

static bool addr_eq(const struct sockaddr *a, const struct sockaddr_storage *b)
{
    const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;

    return a->sa_family == AF_INET && b->ss_family == AF_INET && x->sin_port == y->sin_port &&
           x->sin_addr.s_addr == y->sin_addr.s_addr;
}

static void relay_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct relay *r = h->data;

    (void)suggested;
    *buf = uv_buf_init((char *)r->buf, sizeof(r->buf));
}

static void relay_read(uv_udp_t *u, ssize_t n, const uv_buf_t *buf, const struct sockaddr *from,
                       unsigned flags)
{
    struct relay *r = u->data;
    const struct sockaddr *to;
    uv_buf_t out;

    (void)flags;
    if (n <= 0 || !from)
        return;
    if (addr_eq(from, &r->srv)) {
        bool retry = (buf->base[0] & 0xf0) == 0xf0; /* long header, type Retry */

        if (!r->have_cli)
            return;
        if (r->hold && !retry) {
            if (r->n_held < RELAY_HELD && n <= (ssize_t)sizeof(r->held[0])) {
                memcpy(r->held[r->n_held], buf->base, (size_t)n);
                r->held_len[r->n_held++] = (size_t)n;
            }
            return;
        }
        if (retry) {
            struct tp_quic_stats st;

            r->retries++;
            if (r->lst && tp_quic_listener_stats(r->lst, &st) == 0)
                r->conns_at_retry = st.conns;
        }
        to = (const struct sockaddr *)&r->cli;
    } else {
        memcpy(&r->cli, from, sizeof(struct sockaddr_in));
        r->have_cli = true;
        to = (const struct sockaddr *)&r->srv;
    }
    r->rng ^= r->rng << 13;
    r->rng ^= r->rng >> 17;
    r->rng ^= r->rng << 5;
    if (r->blackhole || r->rng % 100 < r->drop_pct) {
        r->dropped++;
        return;
    }
    out = uv_buf_init(buf->base, (unsigned int)n);
    if (uv_udp_try_send(u, &out, 1, to) >= 0)
        r->passed++;
}

/* Start a relay on host (its address, as the listener sees it) in front of
 * the listener at lst_uri. */
static void relay_start(struct relay *r, uv_loop_t *loop, const char *lst_uri, const char *host)
{
    struct ovl_uri u;
    struct sockaddr_in any;
    struct sockaddr_storage me;
    int len = sizeof(me);

    memset(r, 0, sizeof(*r));
    r->rng = 0x9e3779b9u;
    ck_assert_int_eq(uri_parse(&u, lst_uri), 0);
    ck_assert_int_eq(uri_sockaddr(&u, &r->srv), 0);
    ck_assert_int_eq(uv_ip4_addr(host, 0, &any), 0);
    ck_assert_int_eq(uv_udp_init(loop, &r->sock), 0);
    r->sock.data = r;
    ck_assert_int_eq(uv_udp_bind(&r->sock, (const struct sockaddr *)&any, 0), 0);
    ck_assert_int_eq(uv_udp_getsockname(&r->sock, (struct sockaddr *)&me, &len), 0);
    ck_assert_int_eq(uri_from_sockaddr(r->uri, sizeof(r->uri), "quic", (struct sockaddr *)&me), 0);
    ck_assert_int_eq(uv_udp_recv_start(&r->sock, relay_alloc, relay_read), 0);
}

/* Pass on what a holding relay kept back, and everything from now on. */
static void relay_release(struct relay *r)
{
    for (unsigned i = 0; i < r->n_held; i++) {
        uv_buf_t b = uv_buf_init((char *)r->held[i], (unsigned int)r->held_len[i]);

        ck_assert_int_ge(uv_udp_try_send(&r->sock, &b, 1, (struct sockaddr *)&r->cli), 0);
    }
    r->n_held = 0;
    r->hold = false;
}

/* Forward to another listener from now on. */
static void relay_retarget(struct relay *r, const char *lst_uri)
{
    struct ovl_uri u;

    ck_assert_int_eq(uri_parse(&u, lst_uri), 0);
    ck_assert_int_eq(uri_sockaddr(&u, &r->srv), 0);
}

static struct tp_quic_stats lst_stats(struct fx *fx)
{
    struct tp_quic_stats st;

    ck_assert_int_eq(tp_quic_listener_stats(fx->lst, &st), 0);
    return st;
}

/* ---- the shared contract ----------------------------------------------- */

START_TEST(test_exchange_ipv4)
{
    ck_assert(run_exchange("quic://127.0.0.1:0", "quic://127.0.0.1:"));
}
END_TEST

START_TEST(test_exchange_ipv6)
{
    run_exchange("quic://[::1]:0", "quic://[::1]:");
}
END_TEST

START_TEST(test_frame_limits)
{
    tpt_frame_limits("quic");
}
END_TEST

START_TEST(test_backpressure)
{
    tpt_backpressure("quic");
}
END_TEST

START_TEST(test_dial_refused)
{
    tpt_dial_refused("quic");
}
END_TEST

START_TEST(test_close_in_frame)
{
    tpt_close_in_frame("quic");
}
END_TEST

START_TEST(test_local_close)
{
    tpt_local_close("quic");
}
END_TEST

START_TEST(test_binding)
{
    tpt_binding("quic", true);
}
END_TEST

START_TEST(test_accept_ignored)
{
    tpt_accept_ignored("quic");
}
END_TEST

START_TEST(test_dns_localhost)
{
    tpt_dns_localhost("quic", SOCK_DGRAM);
}
END_TEST

START_TEST(test_dns_close_while_resolving)
{
    tpt_dns_close_while_resolving("quic");
}
END_TEST

START_TEST(test_meter_rate)
{
    tpt_meter_rate("quic");
}
END_TEST

START_TEST(test_meter_pause)
{
    tpt_meter_pause("quic");
}
END_TEST

START_TEST(test_meter_close_held)
{
    tpt_meter_close_held("quic");
}
END_TEST

START_TEST(test_meter_may_send)
{
    tpt_meter_may_send("quic");
}
END_TEST

START_TEST(test_meter_lifted)
{
    tpt_meter_lifted("quic");
}
END_TEST

/* ---- QUIC only --------------------------------------------------------- */

static bool done_n_each(struct fx *fx)
{
    return fx->srv.rx == fx->cli.tx_total && fx->cli.rx == fx->srv.tx_total;
}

/* Dial target and swap tx_total frames each way; the server end is new. */
static void exchange_once(struct fx *fx, const char *target, uint32_t n)
{
    memset(&fx->srv, 0, sizeof(fx->srv));
    memset(&fx->cli, 0, sizeof(fx->cli));
    fx->srv.fx = fx->cli.fx = fx;
    fx->srv.seed = fx->cli.peer_seed = 0x5eed0001u;
    fx->cli.seed = fx->srv.peer_seed = 0x5eed0002u;
    fx->srv.tx_total = fx->cli.tx_total = n;
    fx->cli.pump_on_connect = true;
    fx->done = done_n_each;
    fx_dial(fx, target);
    fx_run(fx);
    ck_assert_uint_eq(fx->srv.rx, n);
    ck_assert_uint_eq(fx->cli.rx, n);
    ck_assert_uint_eq(fx->srv.bad + fx->cli.bad, 0);
}

START_TEST(test_reconnect)
{
    struct fx fx;
    struct tp_quic_stats st;

    fx_init(&fx, 256 * 1024);
    ck_assert_int_eq(fx_listen(&fx, "quic://127.0.0.1:0"), 0);
    exchange_once(&fx, fx.lst_uri, 100);
    tp_close(fx.cli.t);
    fx.done = done_both_closed;
    fx_run(&fx);
    ck_assert_int_eq(fx.srv.closed_err, OVL_ECLOSED);
    st = lst_stats(&fx);
    ck_assert_uint_eq(st.conns, 0);
    exchange_once(&fx, fx.lst_uri, 100);
    st = lst_stats(&fx);
    /* Every new connection is sent through a Retry first. */
    ck_assert_uint_eq(st.handshakes, 2);
    ck_assert_uint_eq(st.retries, 2);
    ck_assert_uint_eq(st.conns, 1);
    ck_assert_uint_eq(fx.accepts, 2);
    fx_finish(&fx);
}
END_TEST

START_TEST(test_lossy)
{
    struct fx fx;
    struct relay r;

    fx_init(&fx, 256 * 1024);
    ck_assert_int_eq(fx_listen(&fx, "quic://127.0.0.1:0"), 0);
    relay_start(&r, &fx.loop, fx.lst_uri, "127.0.0.1");
    r.drop_pct = 5;
    exchange_once(&fx, r.uri, 3000);
    ck_assert_uint_gt(r.dropped, 0);
    uv_close((uv_handle_t *)&r.sock, NULL);
    fx_finish(&fx);
}
END_TEST

/* ---- lanes: one chain's cells in order, several chains on several streams */

#define LANE_CHAINS 16   /* chain IDs 0 (link-level cells: stream 0) to 15 */
#define LANE_CELLS  3000 /* cells the dialer sends, chain i % LANE_CHAINS */

/* Both ends of a link whose cells are bound (FRAME_CELL_BOUND), the way
 * a link drives them: the dialer calls tp_lanes after its first cell (the
 * HELLO), the listener's end when that first cell comes. */
struct lanes {
    struct fx fx;
    uint32_t next, sent[LANE_CHAINS], got[LANE_CHAINS];
    uint32_t rx, disorder, bad, first_chain;
    bool early; /* the dialer opens its lanes at once and sends chains' cells first, */
    bool acked; /* and the rest once those were acknowledged */
};

static void lane_pump(struct transport *t)
{
    struct lanes *ln = t->udata;

    while (ln->next < LANE_CELLS && !tp_is_closing(t) &&
           !(ln->early && !ln->acked && ln->next == LANE_CHAINS - 1)) {
        uint8_t f[FRAME_BOUND_LEN] = {FRAME_CELL_BOUND};
        uint32_t id = (ln->next + ln->early) % LANE_CHAINS;
        int err;

        st_be32(f + 1, id);                          /* the cell's chain_id */
        f[5] = id ? CELL_CHAIN_FWD : CELL_PING;      /* cmd */
        st_be16(f + 7, 4);                           /* len */
        st_be32(f + 1 + OVL_CELL_HDR, ln->sent[id]); /* this chain's sequence */
        err = tp_send(t, f, sizeof(f));
        if (err == OVL_EAGAIN)
            return;
        ck_assert_int_eq(err, 0);
        ln->sent[id]++;
        if (ln->next++ == 0)
            tp_lanes(t); /* after the HELLO */
    }
}

static void lane_connected(struct transport *t)
{
    if (((struct lanes *)t->udata)->early)
        tp_lanes(t);
    lane_pump(t);
}

static void lane_frame(struct transport *t, const uint8_t *frame, size_t len)
{
    struct lanes *ln = t->udata;
    const uint8_t *cell = frame_bound_cell(frame, len);
    uint32_t id = cell ? ld_be32(cell) : LANE_CHAINS;

    if (id >= LANE_CHAINS) {
        ln->bad++;
        return;
    }
    if (ln->rx++ == 0) {
        ln->first_chain = id;
        tp_lanes(t); /* the responder, at the HELLO */
    }
    if (ld_be32(cell + OVL_CELL_HDR) != ln->got[id])
        ln->disorder++;
    ln->got[id] = ld_be32(cell + OVL_CELL_HDR) + 1;
    fx_check(&ln->fx);
}

static void lane_closed(struct transport *t, int err)
{
    struct lanes *ln = t->udata;
    struct end *e = tp_is_inbound(t) ? &ln->fx.srv : &ln->fx.cli;

    e->closed++;
    e->closed_err = err;
    fx_check(&ln->fx);
}

static const struct tp_cb lane_cb = {
    .connected = lane_connected,
    .frame = lane_frame,
    .drain = lane_pump,
    .closed = lane_closed,
};

static void lane_accept(struct tp_listener *l, struct transport *t)
{
    struct lanes *ln = l->udata;

    ln->fx.srv.t = t;
    tp_set_cb(t, &lane_cb, ln);
}

static const struct tp_listen_cb lane_lst_cb = {.accept = lane_accept};

static void lanes_start(struct lanes *ln, struct relay *r, unsigned drop_pct, unsigned lanes_max)
{
    memset(ln, 0, sizeof(*ln));
    fx_init(&ln->fx, 256 * 1024);
    ln->fx.env.quic_lanes_max = lanes_max;
    ck_assert_int_eq(tp_listen(&ln->fx.env, "quic://127.0.0.1:0", &lane_lst_cb, ln, &ln->fx.lst),
                     0);
    ck_assert_int_eq(tp_listener_uri(ln->fx.lst, ln->fx.lst_uri, sizeof(ln->fx.lst_uri)), 0);
    relay_start(r, &ln->fx.loop, ln->fx.lst_uri, "127.0.0.1");
    r->drop_pct = drop_pct;
    ck_assert_int_eq(tp_dial(&ln->fx.env, r->uri, &lane_cb, ln, &ln->fx.cli.t), 0);
}

static bool done_lanes(struct fx *fx)
{
    struct lanes *ln = (struct lanes *)fx;

    return ln->rx == LANE_CELLS || fx->cli.closed;
}

/* Through a relay that drops 5 % of the datagrams, so that the streams'
 * data arrive out of order: every cell arrives, each chain's in order, the
 * link-level cells (chain 0) and the first one on stream 0 before any
 * lane's; the dialer spread the chains over all four lanes, and the
 * listener's end got bytes on each. */
START_TEST(test_lanes_order)
{
    struct lanes ln;
    struct relay r;
    struct tp_quic_info ci, si;

    lanes_start(&ln, &r, 5, 0);
    ln.fx.done = done_lanes;
    fx_run(&ln.fx);
    ck_assert_uint_eq(ln.rx, LANE_CELLS);
    ck_assert_uint_eq(ln.bad, 0);
    ck_assert_uint_eq(ln.disorder, 0);
    ck_assert_uint_eq(ln.first_chain, 0);
    ck_assert_uint_gt(r.dropped, 0);
    ck_assert_int_eq(tp_quic_info(ln.fx.cli.t, &ci), 0);
    ck_assert_int_eq(tp_quic_info(ln.fx.srv.t, &si), 0);
    ck_assert_uint_eq(ci.lanes, 4);
    ck_assert_uint_eq(ci.lanes_out, 4);
    ck_assert_uint_eq(si.lanes_in, 4);
    ck_assert_uint_eq(si.lanes_out, 0); /* it sent nothing */
    ck_assert_uint_eq(lst_stats(&ln.fx).streams_refused, 0);
    uv_close((uv_handle_t *)&r.sock, NULL);
    fx_finish(&ln.fx);
}
END_TEST

static bool done_lanes_held(struct fx *fx)
{
    struct lanes *ln = (struct lanes *)fx;

    if (!ln->acked && ln->next == LANE_CHAINS - 1 && tp_outstanding(fx->cli.t) == 0) {
        ln->acked = true;
        lane_pump(fx->cli.t);
    }
    return done_lanes(fx);
}

/* The dialer's lanes carry cells, acknowledged, before its stream 0
 * carries any: the listener's end holds them until it calls tp_lanes, at
 * its first frame, which is therefore stream 0's (chain 0), as a
 * responder's is the HELLO. */
START_TEST(test_lanes_held)
{
    struct lanes ln;
    struct relay r;

    lanes_start(&ln, &r, 0, 0);
    ln.early = true;
    ln.fx.done = done_lanes_held;
    fx_run(&ln.fx);
    ck_assert_uint_eq(ln.rx, LANE_CELLS);
    ck_assert_uint_eq(ln.first_chain, 0);
    ck_assert_uint_eq(ln.disorder, 0);
    ck_assert_uint_eq(ln.bad, 0);
    uv_close((uv_handle_t *)&r.sock, NULL);
    fx_finish(&ln.fx);
}
END_TEST

static bool done_refused(struct fx *fx)
{
    return fx->cli.closed && lst_stats(fx).streams_refused > 0;
}

/* A listener that takes 2 lanes though it advertised 4: the dialer's
 * third lane is a stream past what it takes, which closes the connection
 * (STREAM_LIMIT_ERROR to the dialer) and is counted. */
START_TEST(test_lanes_too_many)
{
    struct lanes ln;
    struct relay r;

    lanes_start(&ln, &r, 0, 2);
    ln.fx.done = done_refused;
    fx_run(&ln.fx);
    ck_assert_uint_eq(lst_stats(&ln.fx).streams_refused, 1);
    ck_assert_int_eq(ln.fx.cli.closed, 1);
    ck_assert_uint_lt(ln.rx, LANE_CELLS);
    ck_assert_uint_eq(ln.disorder, 0);
    if (ln.fx.srv.t)
        ck_assert_int_eq(ln.fx.srv.closed_err, OVL_EPROTO);
    uv_close((uv_handle_t *)&r.sock, NULL);
    fx_finish(&ln.fx);
}
END_TEST

/* ---- acknowledgements ride on answers ---------------------------------- */

struct pingpong {
    unsigned k, answered;
    uint8_t frame[512];
};

static void pp_echo(struct transport *t, const uint8_t *frame, size_t len)
{
    ck_assert_int_eq(tp_send(t, frame, len), 0);
}

/* An answer came: ask again until k were answered. */
static void pp_answer(struct transport *t, const uint8_t *frame, size_t len)
{
    struct pingpong *p = t->udata;

    (void)frame, (void)len;
    if (++p->answered < p->k)
        ck_assert_int_eq(tp_send(t, p->frame, sizeof(p->frame)), 0);
}

static void pp_closed(struct transport *t, int err)
{
    (void)t, (void)err;
}

static const struct tp_cb pp_srv_cb = {.frame = pp_echo, .closed = pp_closed};
static const struct tp_cb pp_cli_cb = {.frame = pp_answer, .closed = pp_closed};
static struct pingpong pp;

static bool done_pp(struct fx *fx)
{
    (void)fx;
    return pp.answered == pp.k;
}

/* Request and answer, one at a time: each side's acknowledgement of the
 * other's lone datagram waits for its own next datagram and rides on it,
 * so an exchange costs two datagrams, not four. The hold never ends here
 * (a minute), so the count decides on events alone: an acknowledgement
 * sent on its own at ngtcp2's pace (an eighth of the round trip) would
 * show as one more datagram each. */
START_TEST(test_ack_rides_answer)
{
    struct fx fx;
    struct relay r;
    uint64_t before;

    fx_init(&fx, 256 * 1024);
    fx.env.ack_hold_ms = 60000;
    ck_assert_int_eq(fx_listen(&fx, "quic://127.0.0.1:0"), 0);
    relay_start(&r, &fx.loop, fx.lst_uri, "127.0.0.1");
    exchange_once(&fx, r.uri, 10);
    memset(&pp, 0, sizeof(pp));
    pp.k = 300;
    tp_set_cb(fx.srv.t, &pp_srv_cb, &pp);
    tp_set_cb(fx.cli.t, &pp_cli_cb, &pp);
    before = r.passed;
    ck_assert_int_eq(tp_send(fx.cli.t, pp.frame, sizeof(pp.frame)), 0);
    fx.done = done_pp;
    fx_run(&fx);
    /* A few more for Path MTU Discovery's probes and their answers. */
    ck_assert_msg(r.passed - before <= 2 * pp.k + 16, "%" PRIu64 " datagrams for %u exchanges",
                  r.passed - before, pp.k);
    uv_close((uv_handle_t *)&r.sock, NULL);
    fx_finish(&fx);
}
END_TEST

static bool done_cli_acked(struct fx *fx)
{
    return fx->srv.rx == fx->cli.tx_total && tp_outstanding(fx->cli.t) == 0;
}

/* What a connection holds of its own: a small exchange, once acknowledged,
 * leaves no send block and, once delivered, no receive buffer; a burst's
 * blocks stay until the next small exchange or tp_trim. */
START_TEST(test_held)
{
    struct fx fx;

    fx_init(&fx, 256 * 1024);
    ck_assert_int_eq(fx_listen(&fx, "quic://127.0.0.1:0"), 0);
    exchange_once(&fx, fx.lst_uri, 0);
    fx.cli.tx_total = 1; /* one frame, at most OVL_FRAME_MAX bytes */
    end_pump(&fx.cli);
    fx.done = done_cli_acked;
    fx_run(&fx);
    ck_assert_uint_eq(tp_quic_buffers(fx.cli.t), 0);
    ck_assert_uint_eq(tp_quic_buffers(fx.srv.t), 0);
    fx.cli.tx_total = 65; /* a burst: 64 frames, 40 KB or so */
    end_pump(&fx.cli);
    fx_run(&fx);
    ck_assert_uint_gt(tp_quic_buffers(fx.cli.t), 0);
    tp_trim(fx.cli.t);
    tp_trim(fx.srv.t);
    ck_assert_uint_eq(tp_quic_buffers(fx.cli.t), 0);
    ck_assert_uint_eq(tp_quic_buffers(fx.srv.t), 0);
    fx.cli.tx_total = 129;
    end_pump(&fx.cli);
    fx_run(&fx);
    ck_assert_uint_gt(tp_quic_buffers(fx.cli.t), 0);
    fx.cli.tx_total = 130; /* a small exchange after a burst */
    end_pump(&fx.cli);
    fx_run(&fx);
    ck_assert_uint_eq(tp_quic_buffers(fx.cli.t), 0);
    ck_assert_uint_eq(fx.srv.bad, 0);
    fx_finish(&fx);
}
END_TEST

static void quiet_cb(uv_timer_t *t)
{
    uv_stop(t->loop);
}

/* Run the loop for ms whatever happens (to show something does not). */
static void run_for(struct fx *fx, uint64_t ms)
{
    uv_timer_t t;

    fx->done = NULL;
    uv_timer_init(&fx->loop, &t);
    uv_timer_start(&t, quiet_cb, ms, 0);
    uv_run(&fx->loop, UV_RUN_DEFAULT);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&fx->loop, UV_RUN_NOWAIT);
}

/* The send queue counts what is not sent yet (as TCP's does); what is in
 * flight is held beside it, and counted by tp_outstanding. */
START_TEST(test_flight_held)
{
    struct fx fx;
    struct relay r;

    fx_init(&fx, 64 * 1024);
    ck_assert_int_eq(fx_listen(&fx, "quic://127.0.0.1:0"), 0);
    relay_start(&r, &fx.loop, fx.lst_uri, "127.0.0.1");
    exchange_once(&fx, r.uri, 10);
    r.blackhole = true;
    fx.cli.tx_total = 1000000;
    end_pump(&fx.cli);
    run_for(&fx, 300);
    ck_assert_int_gt(fx.cli.eagains, 0);
    ck_assert_uint_le(tp_queued(fx.cli.t), 64 * 1024);
    ck_assert_uint_gt(tp_outstanding(fx.cli.t), tp_queued(fx.cli.t));
    ck_assert_uint_le(tp_outstanding(fx.cli.t), tp_queued(fx.cli.t) + 4 * 1024 * 1024);
    uv_close((uv_handle_t *)&r.sock, NULL);
    fx_finish(&fx);
}
END_TEST

START_TEST(test_idle_vanish)
{
    struct fx fx;
    struct relay r;
    uint64_t t0;

    fx_init(&fx, 256 * 1024);
    fx.env.idle_timeout_ms = 400;
    ck_assert_int_eq(fx_listen(&fx, "quic://127.0.0.1:0"), 0);
    relay_start(&r, &fx.loop, fx.lst_uri, "127.0.0.1");
    exchange_once(&fx, r.uri, 10);
    /* Quiet but alive: keep-alives hold the connection past its timeout. */
    run_for(&fx, 1200);
    ck_assert_int_eq(fx.cli.closed + fx.srv.closed, 0);
    r.blackhole = true;
    t0 = uv_now(&fx.loop);
    fx.done = done_both_closed;
    fx_run(&fx);
    ck_assert_int_eq(fx.cli.closed_err, OVL_ETIMEDOUT);
    ck_assert_int_eq(fx.srv.closed_err, OVL_ETIMEDOUT);
    ck_assert_uint_ge(uv_now(&fx.loop) - t0, 300);
    ck_assert_uint_le(uv_now(&fx.loop) - t0, 5000);
    uv_close((uv_handle_t *)&r.sock, NULL);
    fx_finish(&fx);
}
END_TEST

START_TEST(test_reset_after_restart)
{
    struct fx fx;
    struct relay r;
    uint8_t one = 1;
    uint64_t t0;
    struct tp_quic_stats st;

    fx_init(&fx, 256 * 1024);
    fx.env.idle_timeout_ms = 20000;
    memset(fx.env.secret, 0x42, sizeof(fx.env.secret));
    ck_assert_int_eq(fx_listen(&fx, "quic://127.0.0.1:0"), 0);
    relay_start(&r, &fx.loop, fx.lst_uri, "127.0.0.1");
    exchange_once(&fx, r.uri, 10);
    /* The listener "restarts" unseen: its goodbye is lost, and a new one
     * with the same secret answers at the address the client uses. */
    r.blackhole = true;
    tp_listener_close(fx.lst);
    fx.lst = NULL;
    fx.srv.t = NULL;
    run_for(&fx, 50);
    ck_assert_int_eq(fx.cli.closed, 0);
    ck_assert_int_eq(fx_listen(&fx, "quic://127.0.0.1:0"), 0);
    relay_retarget(&r, fx.lst_uri);
    r.blackhole = false;
    t0 = uv_now(&fx.loop);
    ck_assert_int_eq(tp_send(fx.cli.t, &one, 1), 0);
    fx.done = done_cli_closed;
    fx_run(&fx);
    ck_assert_int_eq(fx.cli.closed_err, OVL_ECLOSED);
    ck_assert_uint_lt(uv_now(&fx.loop) - t0, 5000);
    st = lst_stats(&fx);
    ck_assert_uint_ge(st.resets, 1);
    ck_assert_uint_eq(st.conns, 0);
    uv_close((uv_handle_t *)&r.sock, NULL);
    fx_finish(&fx);
}
END_TEST

/* ---- one address block's flood ----------------------------------------- */

/* A client that gets as far as a pending connection at the listener and no
 * further: its relay passes back the Retry and holds the rest, so it sends
 * its Initial again with the token and then waits. */
struct flooder {
    struct relay r;
    struct transport *t;
    int connected, closed;
};

struct flood {
    struct flooder *f;
    unsigned n;
    uint64_t base; /* the listener's connections and refusals before */
    unsigned want; /* connections to wait for */
};

static void flooder_connected(struct transport *t)
{
    ((struct flooder *)t->udata)->connected++;
}

static void flooder_frame(struct transport *t, const uint8_t *frame, size_t len)
{
    (void)t, (void)frame, (void)len;
}

static void flooder_drain(struct transport *t)
{
    (void)t;
}

static void flooder_closed(struct transport *t, int err)
{
    (void)err;
    ((struct flooder *)t->udata)->closed++;
}

static const struct tp_cb flooder_cb = {
    .connected = flooder_connected,
    .frame = flooder_frame,
    .drain = flooder_drain,
    .closed = flooder_closed,
};

static uint64_t taken_or_refused(struct fx *fx)
{
    struct tp_quic_stats st = lst_stats(fx);

    return st.conns + st.refused + st.refused_block;
}

/* Every flooder's Initial was taken or refused, and the listener holds at
 * least want connections (a refused flooder's retransmission counts again,
 * so the first alone could come true early). */
static bool done_flooded(struct fx *fx)
{
    const struct flood *fl = (const void *)fx->raw;

    return taken_or_refused(fx) >= fl->base + fl->n && lst_stats(fx).conns >= fl->want;
}

static bool done_flood_gone(struct fx *fx)
{
    const struct flood *fl = (const void *)fx->raw;

    for (unsigned i = 0; i < fl->n; i++)
        if (!fl->f[i].closed)
            return false;
    return lst_stats(fx).conns == fl->want;
}

/* Dial fx's listener n times from host through relays that let nothing but
 * the Retry back, and wait until each has a pending slot or was refused and
 * the listener holds at least want connections. */
static void flood_start(struct fx *fx, struct flood *fl, unsigned n, const char *host,
                        unsigned want)
{
    fl->n = n;
    fl->want = want;
    fl->base = taken_or_refused(fx);
    fl->f = calloc(n, sizeof(*fl->f));
    ck_assert_ptr_nonnull(fl->f);
    for (unsigned i = 0; i < n; i++) {
        struct flooder *f = &fl->f[i];

        relay_start(&f->r, &fx->loop, fx->lst_uri, host);
        f->r.hold = true;
        ck_assert_int_eq(tp_dial(&fx->env, f->r.uri, &flooder_cb, f, &f->t), 0);
    }
    fx->raw = (struct raw *)(void *)fl;
    fx->done = done_flooded;
    fx_run(fx);
    fx->raw = NULL;
}

/* End the flood: the refused flooders are closed (the listener has nothing
 * of theirs), the pending ones let finish their handshakes, which the
 * listener hands to an owner who refuses them. Wait until they are all
 * closed and the listener holds want connections. */
static void flood_stop(struct fx *fx, struct flood *fl, unsigned want)
{
    fx->accept_mode = ACCEPT_IGNORE;
    for (unsigned i = 0; i < fl->n; i++) {
        ck_assert_int_eq(fl->f[i].connected, 0);
        ck_assert_int_eq(fl->f[i].closed, 0);
        if (fl->f[i].r.n_held)
            relay_release(&fl->f[i].r);
        else
            tp_close(fl->f[i].t);
    }
    fl->want = want;
    fx->raw = (struct raw *)(void *)fl;
    fx->done = done_flood_gone;
    fx_run(fx);
    fx->raw = NULL;
    fx->done = NULL;
    for (unsigned i = 0; i < fl->n; i++)
        uv_close((uv_handle_t *)&fl->f[i].r.sock, NULL);
    uv_run(&fx->loop, UV_RUN_NOWAIT); /* the closes finish before the memory goes */
    free(fl->f);
    fx->accept_mode = ACCEPT_TAKE;
}

static bool done_up_or_refused(struct fx *fx)
{
    struct tp_quic_stats st = lst_stats(fx);

    return done_up(fx) || st.refused > 0;
}

/* More handshakes from 127.0.0.0/24 than the listener has slots: the block
 * gets half of them, and a client in 127.0.1.0/24 still gets in, through a
 * Retry sent while the listener was loaded and before it kept anything for
 * that client. Once the flood's connections are gone its block has its
 * slots back: under another block's flood it gets exactly its share. */
START_TEST(test_block_flood)
{
    const unsigned n = TP_QUIC_PENDING + TP_QUIC_BLOCK_SHARE, half = TP_QUIC_PENDING / 2;
    struct fx fx;
    struct flood fa, fc;
    struct relay r;
    struct tp_quic_stats st;

    fx_init(&fx, 256 * 1024);
    ck_assert_int_eq(fx_listen(&fx, "quic://127.0.0.1:0"), 0);
    flood_start(&fx, &fa, n, "127.0.0.1", half);
    st = lst_stats(&fx);
    ck_assert_uint_eq(st.conns, half);
    ck_assert_uint_eq(st.refused, 0);
    ck_assert_uint_ge(st.refused_block, n - half);
    ck_assert_uint_eq(st.handshakes, 0);

    relay_start(&r, &fx.loop, fx.lst_uri, "127.0.1.1");
    r.lst = fx.lst;
    fx_dial(&fx, r.uri);
    fx.done = done_up_or_refused;
    fx_run(&fx);
    st = lst_stats(&fx);
    ck_assert_msg(done_up(&fx), "refused: %" PRIu64 " full, %" PRIu64 " by block", st.refused,
                  st.refused_block);
    ck_assert_int_eq(fx.accepts, 1);
    ck_assert_uint_eq(r.retries, 1);
    ck_assert_uint_eq(r.conns_at_retry, half); /* the flood's, none of ours yet */
    ck_assert_uint_eq(st.handshakes, 1);
    ck_assert_uint_eq(st.conns, half + 1);

    flood_stop(&fx, &fa, 1);
    flood_start(&fx, &fc, n, "127.0.2.1", 1 + half);
    ck_assert_uint_eq(lst_stats(&fx).conns, 1 + half);
    flood_start(&fx, &fa, TP_QUIC_BLOCK_SHARE + 2, "127.0.0.1", 1 + half + TP_QUIC_BLOCK_SHARE);
    ck_assert_uint_eq(lst_stats(&fx).conns, 1 + half + TP_QUIC_BLOCK_SHARE);
    /* fa's refused flooders go first: under the half they would get in. */
    flood_stop(&fx, &fa, 1 + half);
    flood_stop(&fx, &fc, 1);
    uv_close((uv_handle_t *)&r.sock, NULL);
    fx_finish(&fx);
}
END_TEST

/* ---- garbage ----------------------------------------------------------- */

struct junk_case {
    const char *name;
    uint8_t first;    /* first byte */
    uint32_t version; /* long header: bytes 1..4 */
    size_t len;
    unsigned count;
};

static const struct junk_case junk[] = {
    {"one byte", 0x00, 0, 1, 50},
    {"short header, tiny", 0x40, 0, 12, 50},
    {"short header, unknown id", 0x41, 0, 80, 150},
    {"long header, unknown version", 0xc0, 0x1a2a3a4a, 1200, 20},
    {"long header v1, small initial", 0xc0, 1, 300, 50},
    {"long header v1, garbage handshake", 0xe0, 1, 1200, 50},
    {"truncated: over the receive buffer", 0xc0, 1, 3000, 20},
};

struct junk_fx {
    struct fx *fx;
    uint64_t want;
};

static bool done_junk_counted(struct fx *fx)
{
    struct junk_fx *j = (void *)fx->raw;

    return lst_stats(fx).datagrams >= j->want;
}

static void send_junk(struct fx *fx, uv_udp_t *u, const struct junk_case *jc, uint64_t *sent)
{
    uint8_t d[3000];
    struct ovl_uri uri;
    struct sockaddr_storage to;
    struct junk_fx j = {fx, 0};

    ck_assert_int_eq(uri_parse(&uri, fx->lst_uri), 0);
    ck_assert_int_eq(uri_sockaddr(&uri, &to), 0);
    for (unsigned i = 0; i < jc->count; i++) {
        uv_buf_t b = uv_buf_init((char *)d, (unsigned int)jc->len);

        randombytes_buf(d, sizeof(d));
        d[0] = jc->first;
        if (jc->first & 0x80) {
            st_be32(d + 1, jc->version);
            d[5] = 8; /* dcid length, so the header parses that far */
        }
        ck_assert_int_eq(uv_udp_try_send(u, &b, 1, (struct sockaddr *)&to), (int)jc->len);
    }
    *sent += jc->count;
    j.want = *sent;
    fx->raw = (struct raw *)(void *)&j;
    fx->done = done_junk_counted;
    fx_run(fx);
    fx->raw = NULL;
}

START_TEST(test_garbage)
{
    struct fx fx;
    struct tp_quic_stats st;
    struct sockaddr_in any;
    uv_udp_t u;
    uint64_t sent = 0;

    fx_init(&fx, 256 * 1024);
    ck_assert_int_eq(fx_listen(&fx, "quic://127.0.0.1:0"), 0);
    ck_assert_int_eq(uv_ip4_addr("127.0.0.1", 0, &any), 0);
    ck_assert_int_eq(uv_udp_init(&fx.loop, &u), 0);
    ck_assert_int_eq(uv_udp_bind(&u, (const struct sockaddr *)&any, 0), 0);
    for (size_t i = 0; i < sizeof(junk) / sizeof(junk[0]); i++) {
        send_junk(&fx, &u, &junk[i], &sent);
        st = lst_stats(&fx);
        ck_assert_msg(st.conns == 0, "%s: %u connections", junk[i].name, st.conns);
    }
    st = lst_stats(&fx);
    ck_assert_uint_eq(st.datagrams, sent);
    ck_assert_uint_eq(st.handshakes, 0);
    ck_assert_uint_gt(st.dropped, 0);
    ck_assert_uint_ge(st.vneg, 1);
    /* Resets are rate limited: 150 triggers within a second get at most 100. */
    ck_assert_uint_ge(st.resets, 1);
    ck_assert_uint_le(st.resets, 100);
    ck_assert_uint_eq(st.dropped + st.vneg + st.resets + st.retries, sent);
    uv_close((uv_handle_t *)&u, NULL);
    /* The listener still serves real clients. */
    exchange_once(&fx, fx.lst_uri, 10);
    fx_finish(&fx);
}
END_TEST

START_TEST(test_stats_not_quic)
{
    struct fx fx;
    struct tp_quic_stats st;

    fx_init(&fx, 64 * 1024);
    ck_assert_int_eq(fx_listen(&fx, "tcp://127.0.0.1:0"), 0);
    ck_assert_int_eq(tp_quic_listener_stats(fx.lst, &st), OVL_EINVAL);
    ck_assert_int_eq(tp_quic_listener_stats(NULL, &st), OVL_EINVAL);
    ck_assert_ptr_eq(tp_lookup("quic"), &tp_quic_ops);
    fx_finish(&fx);
}
END_TEST

static Suite *tp_quic_suite(void)
{
    Suite *s = suite_create("tp_quic");
    TCase *tc = tcase_create("quic");

    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_exchange_ipv4);
    tcase_add_test(tc, test_exchange_ipv6);
    tcase_add_test(tc, test_frame_limits);
    tcase_add_test(tc, test_backpressure);
    tcase_add_test(tc, test_dial_refused);
    tcase_add_test(tc, test_close_in_frame);
    tcase_add_test(tc, test_local_close);
    tcase_add_test(tc, test_accept_ignored);
    tcase_add_test(tc, test_binding);
    tcase_add_test(tc, test_dns_localhost);
    tcase_add_test(tc, test_dns_close_while_resolving);
    tcase_add_test(tc, test_meter_rate);
    tcase_add_test(tc, test_meter_pause);
    tcase_add_test(tc, test_meter_close_held);
    tcase_add_test(tc, test_meter_may_send);
    tcase_add_test(tc, test_meter_lifted);
    tcase_add_test(tc, test_reconnect);
    tcase_add_test(tc, test_lossy);
    tcase_add_test(tc, test_lanes_order);
    tcase_add_test(tc, test_lanes_held);
    tcase_add_test(tc, test_lanes_too_many);
    tcase_add_test(tc, test_ack_rides_answer);
    tcase_add_test(tc, test_held);
    tcase_add_test(tc, test_flight_held);
    tcase_add_test(tc, test_idle_vanish);
    tcase_add_test(tc, test_reset_after_restart);
    tcase_add_test(tc, test_garbage);
    tcase_add_test(tc, test_block_flood);
    tcase_add_test(tc, test_stats_not_quic);
    suite_add_tcase(s, tc);
    return s;
}

OVL_CHECK_MAIN(tp_quic_suite)
