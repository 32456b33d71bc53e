/* tpfix.h - the fixture and the transport-independent tests shared by
 * test_tp_tcp.c and test_tp_quic.c: every transport must pass the same
 * contract (transport.h), so each test body takes the URI scheme.
 *
 * Every test owns one uv loop and an unreferenced guard timer that fails
 * the test if it fires, so a hang becomes a failure instead of a timeout.
 */
#ifndef OVL_TESTS_TPFIX_H
#define OVL_TESTS_TPFIX_H

#include <check.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cell.h"
#include "core/tp_meter.h"
#include "core/transport.h"
#include "lib/bytes.h"

#define GUARD_MS 20000
#define NFRAMES  10000

enum accept_mode {
    ACCEPT_TAKE = 0, /* install the endpoint callbacks */
    ACCEPT_IGNORE,   /* leave the transport alone: it must close itself */
};

struct fx;
struct raw;

/* One side of a connection and everything it observed. */
struct end {
    struct fx *fx;
    struct transport *t;
    uint32_t seed;      /* pattern seed of what this side sends */
    uint32_t peer_seed; /* pattern seed of what it expects */
    uint32_t tx_next, tx_total;
    uint32_t rx;  /* frames received */
    uint32_t bad; /* frames that differed from the pattern */
    int connected, closed, closed_err, drains, eagains;
    int drains_after_resume;
    bool close_on_frame;
    bool pump_on_connect;
    bool pause_on_accept;
    uint8_t buf[OVL_FRAME_MAX]; /* scratch for building and checking frames */
};

struct fx {
    uv_loop_t loop;
    uv_timer_t guard;
    uv_timer_t poll; /* re-checks done() for states no callback reports */
    struct tp_env env;
    struct ovl_log log;
    struct tp_listener *lst;
    char lst_uri[OVL_URI_MAX];
    struct end srv, cli;
    enum accept_mode accept_mode;
    int accepts;
    bool resumed;
    struct raw *raw;
    bool (*done)(struct fx *fx);
};

/* ---- frame pattern ---------------------------------------------------- */

static inline size_t pat_len(uint32_t seed, uint32_t i)
{
    if (i % 97 == 0)
        return OVL_FRAME_MAX;
    return 1 + (size_t)((i * 2654435761u + seed) % OVL_FRAME_MAX);
}

static inline void pat_fill(uint8_t *b, size_t len, uint32_t seed, uint32_t i)
{
    for (size_t j = 0; j < len; j++)
        b[j] = (uint8_t)(i * 7u + j * 13u + seed + (i >> 8));
    if (len >= 4)
        st_be32(b, i);
}

/* ---- fixture ---------------------------------------------------------- */

static inline void guard_fired(uv_timer_t *t)
{
    (void)t;
    ck_abort_msg("test timed out");
}

static inline void fx_check(struct fx *fx)
{
    if (fx->done && fx->done(fx))
        uv_stop(&fx->loop);
}

static inline void fx_poll(uv_timer_t *t)
{
    fx_check(t->data);
}

static inline void fx_init(struct fx *fx, size_t sendq_max)
{
    memset(fx, 0, sizeof(*fx));
    ck_assert_int_eq(uv_loop_init(&fx->loop), 0);
    ck_assert_int_eq(uv_timer_init(&fx->loop, &fx->guard), 0);
    ck_assert_int_eq(uv_timer_start(&fx->guard, guard_fired, GUARD_MS, 0), 0);
    uv_unref((uv_handle_t *)&fx->guard);
    ck_assert_int_eq(uv_timer_init(&fx->loop, &fx->poll), 0);
    fx->poll.data = fx;
    ck_assert_int_eq(uv_timer_start(&fx->poll, fx_poll, 10, 10), 0);
    uv_unref((uv_handle_t *)&fx->poll);
    log_init(&fx->log, "test_tp", OVL_LOG_ERROR, false);
    fx->env.loop = &fx->loop;
    fx->env.log = &fx->log;
    fx->env.sendq_max = sendq_max;
    fx->srv.fx = fx;
    fx->cli.fx = fx;
    fx->srv.seed = fx->cli.peer_seed = 0x5eed0001u;
    fx->cli.seed = fx->srv.peer_seed = 0x5eed0002u;
}

static inline void fx_run(struct fx *fx)
{
    uv_run(&fx->loop, UV_RUN_DEFAULT);
}

/* Close whatever is still open, let the closes finish, and insist the loop
 * ends empty (a leaked handle makes uv_loop_close fail). */
static inline void fx_finish(struct fx *fx)
{
    if (fx->srv.t && !fx->srv.closed)
        tp_close(fx->srv.t);
    if (fx->cli.t && !fx->cli.closed)
        tp_close(fx->cli.t);
    if (fx->lst)
        tp_listener_close(fx->lst);
    fx->lst = NULL;
    fx->done = NULL;
    uv_close((uv_handle_t *)&fx->guard, NULL);
    uv_close((uv_handle_t *)&fx->poll, NULL);
    uv_run(&fx->loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(uv_loop_close(&fx->loop), 0);
    ck_assert_int_le(fx->srv.closed, 1);
    ck_assert_int_le(fx->cli.closed, 1);
}

/* ---- endpoint callbacks ---------------------------------------------- */

static inline void end_pump(struct end *e)
{
    while (e->tx_next < e->tx_total && !e->closed) {
        size_t len = pat_len(e->seed, e->tx_next);
        int err;

        pat_fill(e->buf, len, e->seed, e->tx_next);
        err = tp_send(e->t, e->buf, len);
        if (err == OVL_EAGAIN) {
            e->eagains++;
            return;
        }
        ck_assert_msg(err == 0, "tp_send: %s", ovl_strerror(err));
        e->tx_next++;
    }
}

static inline void end_connected(struct transport *t)
{
    struct end *e = t->udata;

    e->connected++;
    if (e->pump_on_connect)
        end_pump(e);
    fx_check(e->fx);
}

static inline void end_frame(struct transport *t, const uint8_t *frame, size_t len)
{
    struct end *e = t->udata;
    size_t wlen = pat_len(e->peer_seed, e->rx);

    ck_assert_msg(!e->closed && !tp_is_closing(t), "frame delivered after close");
    pat_fill(e->buf, wlen, e->peer_seed, e->rx);
    if (len != wlen || memcmp(frame, e->buf, len) != 0)
        e->bad++;
    e->rx++;
    if (e->close_on_frame)
        tp_close(t);
    fx_check(e->fx);
}

static inline void end_drain(struct transport *t)
{
    struct end *e = t->udata;

    e->drains++;
    if (e->fx->resumed)
        e->drains_after_resume++;
    end_pump(e);
    fx_check(e->fx);
}

static inline void end_closed(struct transport *t, int err)
{
    struct end *e = t->udata;

    e->closed++;
    e->closed_err = err;
    fx_check(e->fx);
}

static const struct tp_cb end_cb = {
    .connected = end_connected,
    .frame = end_frame,
    .drain = end_drain,
    .closed = end_closed,
};

static inline void on_accept(struct tp_listener *l, struct transport *t)
{
    struct fx *fx = l->udata;

    fx->accepts++;
    ck_assert(tp_is_inbound(t));
    if (fx->accept_mode == ACCEPT_IGNORE)
        return;
    ck_assert_ptr_null(fx->srv.t);
    fx->srv.t = t;
    tp_set_cb(t, &end_cb, &fx->srv);
    if (fx->srv.pause_on_accept)
        tp_pause(t);
    /* Sending before reading starts exercises the queue of a fresh conn. */
    end_pump(&fx->srv);
}

static const struct tp_listen_cb lst_cb = {.accept = on_accept};

/* Listen on uri and remember the real address; returns tp_listen's code. */
static inline int fx_listen(struct fx *fx, const char *uri)
{
    int err = tp_listen(&fx->env, uri, &lst_cb, fx, &fx->lst);

    if (err) {
        ck_assert_ptr_null(fx->lst);
        return err;
    }
    ck_assert_int_eq(tp_listener_uri(fx->lst, fx->lst_uri, sizeof(fx->lst_uri)), 0);
    return 0;
}

static inline void fx_dial(struct fx *fx, const char *uri)
{
    int err = tp_dial(&fx->env, uri, &end_cb, &fx->cli, &fx->cli.t);

    ck_assert_msg(err == 0, "tp_dial %s: %s", uri, ovl_strerror(err));
    ck_assert_ptr_nonnull(fx->cli.t);
    ck_assert(!tp_is_inbound(fx->cli.t));
}

static inline uint16_t uri_port(const char *text)
{
    struct ovl_uri u;

    ck_assert_int_eq(uri_parse(&u, text), 0);
    return u.port;
}

/* ---- bulk exchange ---------------------------------------------------- */

static inline bool done_exchange(struct fx *fx)
{
    /* Reliable transports hold frames until acknowledged: wait for that too. */
    return fx->srv.rx == NFRAMES && fx->cli.rx == NFRAMES && tp_queued(fx->cli.t) == 0 &&
           tp_queued(fx->srv.t) == 0;
}

/* Returns false (after a printed note) when the host has no such address. */
static inline bool run_exchange(const char *listen_uri, const char *want_prefix)
{
    struct fx fx;
    char peer[OVL_URI_MAX];
    int err;

    fx_init(&fx, 64 * 1024);
    err = fx_listen(&fx, listen_uri);
    if (err == UV_EADDRNOTAVAIL || err == UV_EAFNOSUPPORT) {
        printf("note: skipping %s: %s\n", listen_uri, ovl_strerror(err));
        fx_finish(&fx);
        return false;
    }
    ck_assert_msg(err == 0, "listen %s: %s", listen_uri, ovl_strerror(err));
    ck_assert_msg(strncmp(fx.lst_uri, want_prefix, strlen(want_prefix)) == 0, "%s", fx.lst_uri);
    ck_assert_uint_ne(uri_port(fx.lst_uri), 0);

    fx.srv.tx_total = fx.cli.tx_total = NFRAMES;
    fx.cli.pump_on_connect = true;
    fx.done = done_exchange;
    fx_dial(&fx, fx.lst_uri);
    fx_run(&fx);

    ck_assert_int_eq(fx.accepts, 1);
    ck_assert_int_eq(fx.cli.connected, 1);
    ck_assert_uint_eq(fx.srv.rx, NFRAMES);
    ck_assert_uint_eq(fx.cli.rx, NFRAMES);
    ck_assert_uint_eq(fx.srv.bad, 0);
    ck_assert_uint_eq(fx.cli.bad, 0);
    ck_assert_uint_eq(fx.cli.t->stats.frames_out, NFRAMES);
    ck_assert_uint_eq(fx.srv.t->stats.frames_in, NFRAMES);
    ck_assert_uint_eq(fx.srv.t->stats.bytes_in, fx.cli.t->stats.bytes_out);
    ck_assert_uint_eq(fx.cli.t->stats.bytes_in, fx.srv.t->stats.bytes_out);
    ck_assert_uint_eq(tp_queued(fx.cli.t), 0);
    ck_assert_int_eq(tp_peer_uri(fx.cli.t, peer, sizeof(peer)), 0);
    ck_assert_str_eq(peer, fx.lst_uri);
    ck_assert_int_eq(tp_peer_uri(fx.srv.t, peer, sizeof(peer)), 0);
    ck_assert_msg(strncmp(peer, want_prefix, strlen(want_prefix)) == 0, "%s", peer);
    fx_finish(&fx);
    ck_assert_int_eq(fx.srv.closed, 1);
    ck_assert_int_eq(fx.cli.closed, 1);
    ck_assert_int_eq(fx.cli.closed_err, 0);
    return true;
}

/* Write "SCH://HOST:PORT" into out. */
static inline void fx_uri(char *out, const char *sch, const char *hostport)
{
    snprintf(out, OVL_URI_MAX, "%s://%s", sch, hostport);
}

/* ---- frame size limits ------------------------------------------------ */

static inline bool done_one_each(struct fx *fx)
{
    return fx->srv.rx == 1 && fx->cli.connected == 1;
}

static inline void tpt_frame_limits(const char *sch)
{
    uint8_t big[OVL_FRAME_MAX + 1];
    char uri[OVL_URI_MAX];
    struct fx fx;

    fx_init(&fx, 64 * 1024);
    fx_uri(uri, sch, "127.0.0.1:0");
    ck_assert_int_eq(fx_listen(&fx, uri), 0);
    fx_dial(&fx, fx.lst_uri);
    /* Frame 0 of the pattern is exactly OVL_FRAME_MAX long. */
    ck_assert_uint_eq(pat_len(fx.cli.seed, 0), OVL_FRAME_MAX);
    pat_fill(big, OVL_FRAME_MAX, fx.cli.seed, 0);
    ck_assert_int_eq(tp_send(fx.cli.t, big, OVL_FRAME_MAX + 1), OVL_ETOOBIG);
    ck_assert_int_eq(tp_send(fx.cli.t, big, 0), OVL_EINVAL);
    ck_assert_uint_eq(tp_queued(fx.cli.t), 0);
    ck_assert_int_eq(tp_send(fx.cli.t, big, OVL_FRAME_MAX), 0);
    ck_assert_uint_eq(tp_queued(fx.cli.t), OVL_FRAME_MAX + OVL_FRAME_LENHDR);
    fx.done = done_one_each;
    fx_run(&fx);
    ck_assert_uint_eq(fx.srv.rx, 1);
    ck_assert_uint_eq(fx.srv.bad, 0);
    ck_assert_uint_eq(fx.srv.t->stats.bytes_in, OVL_FRAME_MAX);
    fx_finish(&fx);
}

/* ---- backpressure ----------------------------------------------------- */

#define BP_SENDQ 4096

struct bp {
    struct fx fx;
    uv_timer_t tick;
    uint32_t last_tx;
    int still_ticks;
};

/* Once the client has made no progress for a while the buffers on the way
 * are full and our queue is stuck: let the paused server read again. */
static inline void bp_tick(uv_timer_t *t)
{
    struct bp *bp = t->data;
    struct fx *fx = &bp->fx;

    if (fx->cli.eagains == 0 || fx->cli.tx_next != bp->last_tx) {
        bp->last_tx = fx->cli.tx_next;
        bp->still_ticks = 0;
        return;
    }
    if (++bp->still_ticks < 4)
        return;
    ck_assert_uint_eq(fx->srv.rx, 0);
    ck_assert_uint_gt(tp_queued(fx->cli.t), BP_SENDQ / 2);
    ck_assert_uint_le(tp_queued(fx->cli.t), BP_SENDQ);
    fx->cli.tx_total = fx->cli.tx_next;
    fx->resumed = true;
    uv_timer_stop(t);
    tp_resume(fx->srv.t);
}

static inline bool done_bp(struct fx *fx)
{
    return fx->resumed && fx->cli.drains_after_resume >= 1 && fx->srv.rx == fx->cli.tx_total;
}

static inline void tpt_backpressure(const char *sch)
{
    struct bp bp;
    struct fx *fx = &bp.fx;
    char uri[OVL_URI_MAX];

    memset(&bp, 0, sizeof(bp));
    fx_init(fx, BP_SENDQ);
    fx_uri(uri, sch, "127.0.0.1:0");
    ck_assert_int_eq(fx_listen(fx, uri), 0);
    fx->srv.pause_on_accept = true;
    fx->cli.tx_total = UINT32_MAX;
    fx->cli.pump_on_connect = true;
    fx->done = done_bp;
    ck_assert_int_eq(uv_timer_init(&fx->loop, &bp.tick), 0);
    bp.tick.data = &bp;
    ck_assert_int_eq(uv_timer_start(&bp.tick, bp_tick, 50, 50), 0);
    fx_dial(fx, fx->lst_uri);
    fx_run(fx);
    ck_assert(fx->resumed);
    ck_assert_int_ge(fx->cli.drains_after_resume, 1);
    ck_assert_uint_gt(fx->cli.tx_total, 0);
    ck_assert_uint_eq(fx->srv.rx, fx->cli.tx_total);
    ck_assert_uint_eq(fx->srv.bad, 0);
    ck_assert_uint_gt(fx->cli.t->stats.eagain, 0);
    ck_assert_uint_eq(fx->cli.t->stats.eagain, (uint64_t)fx->cli.eagains);
    uv_close((uv_handle_t *)&bp.tick, NULL);
    fx_finish(fx);
}

/* ---- dialing failures ------------------------------------------------- */

static inline bool done_cli_closed(struct fx *fx)
{
    return fx->cli.closed == 1;
}

static inline void tpt_dial_refused(const char *sch)
{
    struct fx fx;
    char uri[OVL_URI_MAX];

    fx_init(&fx, 64 * 1024);
    /* Borrow a free port, then give it back so nothing listens there. */
    fx_uri(uri, sch, "127.0.0.1:0");
    ck_assert_int_eq(fx_listen(&fx, uri), 0);
    memcpy(uri, fx.lst_uri, sizeof(uri));
    tp_listener_close(fx.lst);
    fx.lst = NULL;
    fx_dial(&fx, uri);
    fx.done = done_cli_closed;
    fx_run(&fx);
    ck_assert_int_eq(fx.cli.closed, 1);
    ck_assert_int_ne(fx.cli.closed_err, 0);
    ck_assert_int_eq(fx.cli.connected, 0);
    ck_assert_int_eq(fx.accepts, 0);
    fx_finish(&fx);
}

/* ---- closing ---------------------------------------------------------- */

static inline bool done_both_closed(struct fx *fx)
{
    return fx->srv.closed == 1 && fx->cli.closed == 1;
}

static inline void tpt_close_in_frame(const char *sch)
{
    struct fx fx;
    char uri[OVL_URI_MAX];

    fx_init(&fx, 64 * 1024);
    fx_uri(uri, sch, "127.0.0.1:0");
    ck_assert_int_eq(fx_listen(&fx, uri), 0);
    fx.srv.close_on_frame = true;
    fx.cli.tx_total = 5;
    fx_dial(&fx, fx.lst_uri);
    /* Queued before the connection is up, so all five go out together:
     * delivery must stop after the first. */
    end_pump(&fx.cli);
    ck_assert_uint_eq(fx.cli.tx_next, 5);
    ck_assert_uint_gt(tp_queued(fx.cli.t), 5 * OVL_FRAME_LENHDR);
    fx.done = done_both_closed;
    fx_run(&fx);
    ck_assert_uint_eq(fx.srv.rx, 1);
    ck_assert_uint_eq(fx.srv.bad, 0);
    ck_assert_int_eq(fx.srv.closed, 1);
    ck_assert_int_eq(fx.srv.closed_err, 0);
    ck_assert_int_eq(fx.cli.closed, 1);
    ck_assert_int_ne(fx.cli.closed_err, 0);
    fx_finish(&fx);
}

static inline bool done_up(struct fx *fx)
{
    return fx->srv.t && fx->cli.connected == 1;
}

static inline void tpt_local_close(const char *sch)
{
    struct fx fx;
    uint8_t one = 1;
    char uri[OVL_URI_MAX];

    fx_init(&fx, 64 * 1024);
    fx_uri(uri, sch, "127.0.0.1:0");
    ck_assert_int_eq(fx_listen(&fx, uri), 0);
    fx_dial(&fx, fx.lst_uri);
    fx.done = done_up;
    fx_run(&fx);
    ck_assert(done_up(&fx));
    tp_close(fx.cli.t);
    /* Everything after the close is refused or ignored, and closing again
     * does not call closed() twice. */
    ck_assert(tp_is_closing(fx.cli.t));
    ck_assert_int_eq(tp_send(fx.cli.t, &one, 1), OVL_ECLOSED);
    tp_pause(fx.cli.t);
    tp_resume(fx.cli.t);
    tp_close(fx.cli.t);
    fx.done = done_both_closed;
    fx_run(&fx);
    ck_assert_int_eq(fx.cli.closed, 1);
    ck_assert_int_eq(fx.cli.closed_err, 0);
    ck_assert_int_eq(fx.srv.closed, 1);
    ck_assert_int_eq(fx.srv.closed_err, OVL_ECLOSED);
    fx_finish(&fx);
}

/* ---- binding ----------------------------------------------------------- */

/* tp_binding: a transport that protects its frames (binds) gives both ends
 * of a connection one value, another connection another; one that does
 * not says OVL_EUNSUPP at either end. */
static inline void tpt_binding(const char *sch, bool binds)
{
    struct fx fx;
    char uri[OVL_URI_MAX];
    uint8_t x[3][TP_BINDING_LEN], zero[TP_BINDING_LEN] = {0};

    fx_init(&fx, 64 * 1024);
    fx_uri(uri, sch, "127.0.0.1:0");
    ck_assert_int_eq(fx_listen(&fx, uri), 0);
    for (int round = 0; round < 2; round++) {
        if (round == 1) {
            tp_close(fx.cli.t);
            fx.done = done_both_closed;
            fx_run(&fx);
            memset(&fx.srv, 0, sizeof(fx.srv));
            memset(&fx.cli, 0, sizeof(fx.cli));
            fx.srv.fx = fx.cli.fx = &fx;
        }
        fx_dial(&fx, fx.lst_uri);
        /* Not connected yet: nothing to bind to. */
        ck_assert_int_eq(tp_binding(fx.cli.t, x[0]), binds ? OVL_EINVAL : OVL_EUNSUPP);
        fx.done = done_up;
        fx_run(&fx);
        ck_assert_int_eq(tp_binding(fx.cli.t, x[round]), binds ? 0 : OVL_EUNSUPP);
        ck_assert_int_eq(tp_binding(fx.srv.t, x[2]), binds ? 0 : OVL_EUNSUPP);
        if (binds) {
            ck_assert_mem_eq(x[round], x[2], TP_BINDING_LEN);
            ck_assert(memcmp(x[round], zero, TP_BINDING_LEN) != 0);
        }
    }
    if (binds)
        ck_assert(memcmp(x[0], x[1], TP_BINDING_LEN) != 0);
    fx_finish(&fx);
}

static inline void tpt_accept_ignored(const char *sch)
{
    struct fx fx;
    char uri[OVL_URI_MAX];

    fx_init(&fx, 64 * 1024);
    fx_uri(uri, sch, "127.0.0.1:0");
    ck_assert_int_eq(fx_listen(&fx, uri), 0);
    fx.accept_mode = ACCEPT_IGNORE;
    fx_dial(&fx, fx.lst_uri);
    fx.done = done_cli_closed;
    fx_run(&fx);
    ck_assert_int_eq(fx.accepts, 1);
    ck_assert_int_eq(fx.cli.closed, 1);
    ck_assert_int_ne(fx.cli.closed_err, 0);
    fx_finish(&fx);
}

/* ---- DNS -------------------------------------------------------------- */

static inline bool done_dns(struct fx *fx)
{
    return fx->srv.rx == 1 && fx->cli.rx == 1;
}

static inline void tpt_dns_localhost(const char *sch, int socktype)
{
    struct fx fx;
    struct addrinfo hints, *res = NULL;
    char uri[OVL_URI_MAX];

    /* The transport dials the first address "localhost" resolves to, so
     * listen on exactly that one (resolving blocks only here, in the test). */
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = socktype;
    hints.ai_flags = AI_NUMERICSERV;
    ck_assert_int_eq(getaddrinfo("localhost", "0", &hints, &res), 0);
    ck_assert_int_eq(uri_from_sockaddr(uri, sizeof(uri), sch, res->ai_addr), 0);
    freeaddrinfo(res);

    fx_init(&fx, 64 * 1024);
    ck_assert_msg(fx_listen(&fx, uri) == 0, "listen %s", uri);
    snprintf(uri, sizeof(uri), "%s://localhost:%u", sch, (unsigned)uri_port(fx.lst_uri));
    fx.srv.tx_total = fx.cli.tx_total = 1;
    fx.cli.pump_on_connect = true;
    fx.done = done_dns;
    fx_dial(&fx, uri);
    fx_run(&fx);
    ck_assert_int_eq(fx.cli.connected, 1);
    ck_assert_uint_eq(fx.srv.rx, 1);
    ck_assert_uint_eq(fx.cli.rx, 1);
    ck_assert_uint_eq(fx.srv.bad + fx.cli.bad, 0);
    fx_finish(&fx);
}

static inline void tpt_dns_close_while_resolving(const char *sch)
{
    struct fx fx;
    char uri[OVL_URI_MAX];

    fx_init(&fx, 64 * 1024);
    fx_uri(uri, sch, "localhost:7001");
    fx_dial(&fx, uri);
    tp_close(fx.cli.t);
    fx.done = done_cli_closed;
    fx_run(&fx);
    ck_assert_int_eq(fx.cli.closed, 1);
    ck_assert_int_eq(fx.cli.closed_err, 0);
    ck_assert_int_eq(fx.cli.connected, 0);
    fx_finish(&fx);
}

/* ---- the bandwidth meter (tp_meter.h) --------------------------------- */

#define MT_RATE   (1024u * 1024u) /* bytes per second */
#define MT_BURST  (64u * 1024u)
#define MT_FRAMES 800 /* each way: about 500 KB, as many frames of the pattern */

struct mt {
    struct fx fx; /* first: done() gets it */
    struct tp_meter m;
    uint32_t other_rx; /* frames the slower direction had when the faster was done */
    bool first_done;
};

static inline void mt_setup(struct mt *mt, const char *sch, uint64_t rate, uint64_t burst)
{
    char uri[OVL_URI_MAX];

    memset(mt, 0, sizeof(*mt));
    fx_init(&mt->fx, 64 * 1024);
    ck_assert_int_eq(tp_meter_init(&mt->m, &mt->fx.loop), 0);
    tp_meter_set(&mt->m, TPM_NODE, rate, burst);
    mt->fx.env.meter = &mt->m;
    fx_uri(uri, sch, "127.0.0.1:0");
    ck_assert_int_eq(fx_listen(&mt->fx, uri), 0);
}

/* The meter's timer must be closed before the loop. */
static inline void mt_finish(struct mt *mt)
{
    tp_meter_close(&mt->m);
    mt->fx.env.meter = NULL;
    fx_finish(&mt->fx);
}

static inline bool done_meter(struct fx *fx)
{
    struct mt *mt = (struct mt *)fx;
    bool srv = fx->srv.rx == fx->cli.tx_total, cli = fx->cli.rx == fx->srv.tx_total;

    if ((srv || cli) && !mt->first_done) {
        mt->first_done = true;
        mt->other_rx = srv ? fx->cli.rx : fx->srv.rx;
    }
    return srv && cli;
}

/* Both ends send as fast as they can through one meter: every frame
 * arrives, in order; the frames read cannot have come faster than the
 * rate after the burst (a bound on the loop's clock that load only
 * widens); the meter's own measure of its limited time agrees; and
 * neither direction starved the other (equal shares). */
static inline void tpt_meter_rate(const char *sch)
{
    struct mt mt;
    struct fx *fx = &mt.fx;
    const struct tp_meter_stats *st;
    uint64_t t0, elapsed, in;

    mt_setup(&mt, sch, MT_RATE, MT_BURST);
    fx->srv.tx_total = fx->cli.tx_total = MT_FRAMES;
    fx->cli.pump_on_connect = true;
    fx->done = done_meter;
    t0 = uv_now(&fx->loop);
    fx_dial(fx, fx->lst_uri);
    fx_run(fx);
    elapsed = uv_now(&fx->loop) - t0;
    st = &mt.m.st[TPM_NODE];
    in = st->bytes[TPM_IN];
    ck_assert_uint_eq(fx->srv.rx, MT_FRAMES);
    ck_assert_uint_eq(fx->cli.rx, MT_FRAMES);
    ck_assert_uint_eq(fx->srv.bad + fx->cli.bad, 0);
    ck_assert_uint_eq(in, fx->srv.t->stats.bytes_in + fx->cli.t->stats.bytes_in +
                              2u * MT_FRAMES * OVL_FRAME_LENHDR);
    ck_assert_uint_eq(st->bytes[TPM_OUT], in);
    ck_assert_uint_gt(st->holds, 0);
    /* At most a frame each in debt, and a quantum's rounding. */
    ck_assert_msg(elapsed * MT_RATE / 1000 + MT_BURST + 4 * OVL_FRAME_MAX >= in,
                  "%llu bytes in %llu ms", (unsigned long long)in, (unsigned long long)elapsed);
    ck_assert_uint_gt(st->limited_ms, 0);
    ck_assert_msg(st->limited_bytes[TPM_IN] * 1000 <=
                      st->limited_ms * (MT_RATE + MT_RATE / 10) + (uint64_t)TPM_QUANTUM_MIN * 2000,
                  "%llu bytes in %llu limited ms", (unsigned long long)st->limited_bytes[TPM_IN],
                  (unsigned long long)st->limited_ms);
    ck_assert_msg(mt.other_rx * 10 >= MT_FRAMES * 4, "the other way had %u of %u", mt.other_rx,
                  MT_FRAMES);
    ck_assert_uint_eq(tp_meter_waiting(&mt.m), 0);
    mt_finish(&mt);
}

static inline bool done_held(struct fx *fx)
{
    return fx->srv.t && tp_is_throttled(fx->srv.t);
}

static inline bool done_let_go(struct fx *fx)
{
    return fx->srv.t && !tp_is_throttled(fx->srv.t);
}

static inline bool done_srv_all(struct fx *fx)
{
    return fx->srv.rx == fx->cli.tx_total;
}

/* The owner's pause and the meter's hold are two reasons: the meter
 * letting go of a paused transport does not make it read, the owner's
 * resume then does, and nothing is lost. */
static inline void tpt_meter_pause(const char *sch)
{
    struct mt mt;
    struct fx *fx = &mt.fx;
    uint32_t rx;

    mt_setup(&mt, sch, 256 * 1024, 4096);
    fx->cli.tx_total = 200;
    fx->cli.pump_on_connect = true;
    fx->done = done_held;
    fx_dial(fx, fx->lst_uri);
    fx_run(fx);
    tp_pause(fx->srv.t);
    rx = fx->srv.rx;
    fx->done = done_let_go;
    fx_run(fx);
    ck_assert(!tp_is_throttled(fx->srv.t));
    ck_assert(fx->srv.t->flags & TP_F_PAUSED);
    ck_assert_uint_eq(fx->srv.rx, rx); /* let go, but paused: nothing read */
    tp_resume(fx->srv.t);
    fx->done = done_srv_all;
    fx_run(fx);
    ck_assert_uint_eq(fx->srv.rx, 200);
    ck_assert_uint_eq(fx->srv.bad, 0);
    mt_finish(&mt);
}

static inline bool done_srv_closed(struct fx *fx)
{
    return fx->srv.closed == 1;
}

/* A transport closed while the meter holds it leaves the wait list. */
static inline void tpt_meter_close_held(const char *sch)
{
    struct mt mt;
    struct fx *fx = &mt.fx;

    mt_setup(&mt, sch, 64 * 1024, 4096);
    fx->cli.tx_total = 200;
    fx->cli.pump_on_connect = true;
    fx->done = done_held;
    fx_dial(fx, fx->lst_uri);
    fx_run(fx);
    ck_assert_uint_eq(tp_meter_waiting(&mt.m), 1);
    tp_close(fx->srv.t);
    ck_assert_uint_eq(tp_meter_waiting(&mt.m), 0);
    fx->done = done_srv_closed;
    fx_run(fx);
    ck_assert_uint_eq(tp_meter_waiting(&mt.m), 0);
    mt_finish(&mt);
}

static inline bool done_cli_drained(struct fx *fx)
{
    return fx->cli.drains > 0;
}

/* A sender refused for the outgoing bucket gets its drain() once the
 * bucket holds tokens again. */
static inline void tpt_meter_may_send(const char *sch)
{
    struct mt mt;
    struct fx *fx = &mt.fx;
    uint8_t frame[OVL_FRAME_MAX];
    unsigned sent = 0;

    mt_setup(&mt, sch, 64 * 1024, 8192);
    fx->done = done_up;
    fx_dial(fx, fx->lst_uri);
    fx_run(fx);
    memset(frame, 0x5a, sizeof(frame));
    while (tp_meter_may_send(&mt.m, fx->cli.t, 1u << TPM_NODE)) {
        ck_assert_int_eq(tp_send(fx->cli.t, frame, sizeof(frame)), 0);
        ck_assert_uint_lt(++sent, 100);
    }
    ck_assert_uint_ge(sent * (OVL_FRAME_MAX + OVL_FRAME_LENHDR), 8192);
    ck_assert_uint_eq(tp_meter_waiting(&mt.m), 1);
    ck_assert_int_eq(fx->cli.drains, 0);
    fx->done = done_cli_drained;
    fx_run(fx);
    ck_assert_int_eq(fx->cli.drains, 1);
    ck_assert(tp_meter_may_send(&mt.m, fx->cli.t, 1u << TPM_NODE));
    ck_assert(!(fx->cli.t->mflags & TPM_T_LISTED)); /* (the server may wait: it read them) */
    mt_finish(&mt);
}

/* A limit changed at run time (a reload: bw_apply, tp_meter_set): a
 * lower rate holds at once, and a limit lifted lets the held transport
 * read again on the next turn, with nothing lost. */
static inline void tpt_meter_lifted(const char *sch)
{
    struct mt mt;
    struct fx *fx = &mt.fx;

    mt_setup(&mt, sch, 0, 0);
    fx->cli.tx_total = 400;
    fx->cli.pump_on_connect = true;
    fx->done = done_up;
    fx_dial(fx, fx->lst_uri);
    fx_run(fx);
    ck_assert_uint_eq(mt.m.limited, 0); /* counting only */
    tp_meter_set(&mt.m, TPM_NODE, 16 * 1024, 8192);
    fx->done = done_held;
    fx_run(fx);
    ck_assert_uint_lt(fx->srv.rx, 400);
    tp_meter_set(&mt.m, TPM_NODE, 0, 0);
    fx->done = done_srv_all;
    fx_run(fx);
    ck_assert_uint_eq(fx->srv.rx, 400);
    ck_assert_uint_eq(fx->srv.bad, 0);
    ck_assert(!tp_is_throttled(fx->srv.t));
    ck_assert_uint_eq(tp_meter_waiting(&mt.m), 0);
    mt_finish(&mt);
}

#endif
