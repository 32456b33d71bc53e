/* test_link.c - links between two nodes on one loop, over loopback TCP. */
#include <arpa/inet.h>
#include <check.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>

#include "ovl_config.h"

#include "core/link.h"
#include "core/memcap.h"
#include "core/node_run.h"
#include "check_main.h"

#define TEST_CMD 200 /* an unassigned command the test registers */

struct pair {
    uv_loop_t loop;
    struct node a, b;
    uv_timer_t deadline, poll;
    bool (*done)(struct pair *p);
    bool timed_out;
    unsigned got_a, got_b;   /* TEST_CMD cells received by each node */
    uint32_t next_a, next_b; /* expected sequence numbers */
    bool order_ok;
};

static void on_test_cell(void *ctx, struct link *l, const struct cell *c)
{
    struct pair *p = ctx;
    bool at_a = l->node == &p->a;
    uint32_t *next = at_a ? &p->next_a : &p->next_b;
    uint32_t seq;

    ck_assert_uint_eq(c->len, 4 + (*next % 1000));
    memcpy(&seq, c->payload, 4);
    if (seq != *next)
        p->order_ok = false;
    (*next)++;
    if (at_a)
        p->got_a++;
    else
        p->got_b++;
}

static void make_node(struct pair *p, struct node *n, const struct node_opts *o)
{
    struct ovl_identity id;

    ck_assert_int_eq(ovl_identity_generate(&id), 0);
    memset(n, 0, sizeof(*n));
    log_init(&n->log, "test", OVL_LOG_WARN, false);
    ck_assert_int_eq(node_init(n, &p->loop, o, &id, ROLE_RELAY), 0);
    ovl_identity_wipe(&id);
    ck_assert_int_eq(dispatch_register(&n->disp, TEST_CMD, on_test_cell, p), 0);
}

static void deadline_cb(uv_timer_t *t)
{
    struct pair *p = t->data;

    p->timed_out = true;
    uv_stop(&p->loop);
}

static void poll_cb(uv_timer_t *t)
{
    struct pair *p = t->data;

    if (p->done(p))
        uv_stop(&p->loop);
}

/* Run the loop until done(p) holds or ms pass; return whether it held. */
static bool run_until(struct pair *p, bool (*done)(struct pair *), uint64_t ms)
{
    p->done = done;
    p->timed_out = false;
    uv_timer_start(&p->deadline, deadline_cb, ms, 0);
    uv_timer_start(&p->poll, poll_cb, 1, 1);
    uv_run(&p->loop, UV_RUN_DEFAULT);
    uv_timer_stop(&p->deadline);
    uv_timer_stop(&p->poll);
    return !p->timed_out && done(p);
}

static void pair_setup(struct pair *p, const struct node_opts *oa, const struct node_opts *ob)
{
    static const char listen[1][OVL_URI_MAX] = {"tcp://127.0.0.1:0"};

    memset(p, 0, sizeof(*p));
    p->order_ok = true;
    ck_assert_int_eq(uv_loop_init(&p->loop), 0);
    uv_timer_init(&p->loop, &p->deadline);
    uv_timer_init(&p->loop, &p->poll);
    p->deadline.data = p->poll.data = p;
    make_node(p, &p->a, oa);
    make_node(p, &p->b, ob);
    ck_assert_int_eq(node_start(&p->b, listen, 1, NULL, 0), 0);
    ck_assert_uint_eq(p->b.n_listeners, 1);
}

/* A dials B, expecting identity pk (B's unless the test lies). */
static void pair_dial(struct pair *p, const uint8_t *pk)
{
    struct peer_spec spec;

    memset(&spec, 0, sizeof(spec));
    snprintf(spec.name, sizeof(spec.name), "b");
    snprintf(spec.uri, sizeof(spec.uri), "%s", p->b.listen_uri[0]);
    memcpy(spec.pk, pk ? pk : p->b.id.pk, 32);
    ck_assert_int_eq(node_start(&p->a, NULL, 0, &spec, 1), 0);
}

static bool all_closed(struct pair *p)
{
    return p->a.n_links == 0 && p->b.n_links == 0;
}

static void pair_teardown(struct pair *p)
{
    node_stop(&p->a);
    node_stop(&p->b);
    uv_close((uv_handle_t *)&p->deadline, NULL);
    uv_close((uv_handle_t *)&p->poll, NULL);
    uv_run(&p->loop, UV_RUN_DEFAULT);
    ck_assert_uint_eq(p->a.n_links, 0);
    ck_assert_uint_eq(p->b.n_links, 0);
    ck_assert_int_eq(uv_loop_close(&p->loop), 0);
    node_free(&p->a);
    node_free(&p->b);
}

static bool both_open(struct pair *p)
{
    return p->a.links && p->a.links->state == LINK_OPEN && p->b.links &&
           p->b.links->state == LINK_OPEN;
}

static void send_seq(struct link *l, uint32_t count)
{
    uint32_t i;

    for (i = 0; i < count; i++) {
        struct cell c = {.cmd = TEST_CMD, .len = (uint16_t)(4 + i % 1000)};

        memcpy(c.payload, &i, 4);
        memset(c.payload + 4, (int)(i & 0xff), c.len - 4);
        ck_assert_int_eq(link_send(l, &c), 0);
    }
}

static uint32_t want_cells;
static bool all_cells(struct pair *p)
{
    return p->got_a >= want_cells && p->got_b >= want_cells;
}

/* Open a link, exchange cells both ways across several key ratchets. */
static void exchange(uint32_t suites_a, uint32_t suites_b, enum ovl_aead_suite want)
{
    struct node_opts oa, ob;
    struct pair p;

    node_opts_defaults(&oa);
    oa.rekey_cells = 16;
    oa.aead_suites = suites_a;
    ob = oa;
    ob.aead_suites = suites_b;
    ob.rekey_cells = 1u << 20; /* the link agrees on the smaller interval */
    pair_setup(&p, &oa, &ob);
    pair_dial(&p, NULL);
    ck_assert(run_until(&p, both_open, 5000));
    ck_assert_int_eq(p.a.links->suite, want);
    ck_assert_int_eq(p.b.links->suite, want);
    ck_assert_uint_eq(p.a.links->rekey_log2, 4);
    ck_assert_uint_eq(p.b.links->rekey_log2, 4);
    ck_assert_mem_eq(p.a.links->peer_pk, p.b.id.pk, 32);
    ck_assert_mem_eq(p.b.links->peer_pk, p.a.id.pk, 32);
    ck_assert_str_eq(p.b.links->peer_id, p.a.node_id);
    ck_assert_uint_eq(p.a.ctr.handshakes_ok, 1);
    ck_assert_uint_eq(p.b.ctr.handshakes_ok, 1);
    want_cells = 200;
    send_seq(p.a.links, want_cells);
    send_seq(p.b.links, want_cells);
    ck_assert(run_until(&p, all_cells, 5000));
    ck_assert(p.order_ok);
    ck_assert_uint_eq(p.got_a, want_cells);
    ck_assert_uint_eq(p.got_b, want_cells);
    /* 201 cells each way (HELLO + 200) with a ratchet every 16 cells. */
    ck_assert_uint_ge(p.a.ctr.rekeys, 2 * (201 / 16));
    pair_teardown(&p);
    ck_assert_uint_eq(p.a.ctr.link_closed[LC_SHUTDOWN] + p.a.ctr.link_closed[LC_PEER_CLOSED], 1);
}

START_TEST(test_open_chacha)
{
    exchange(OVL_AEAD_CHACHA20POLY1305, OVL_AEAD_ALL & ovl_aead_available(),
             OVL_AEAD_CHACHA20POLY1305);
}
END_TEST

START_TEST(test_open_aes)
{
    if (!(ovl_aead_available() & OVL_AEAD_AES256GCM)) {
        printf("test_open_aes: skipped, no AES-NI on this CPU\n");
        return;
    }
    exchange(OVL_AEAD_ALL, OVL_AEAD_ALL, OVL_AEAD_AES256GCM);
}
END_TEST

static bool refused(struct pair *p)
{
    return p->b.ctr.link_closed[LC_HS_AUTH] > 0 && all_closed(p);
}

START_TEST(test_wrong_key_refused)
{
    struct node_opts o;
    struct ovl_identity other;
    struct pair p;

    node_opts_defaults(&o);
    pair_setup(&p, &o, &o);
    ck_assert_int_eq(ovl_identity_generate(&other), 0);
    pair_dial(&p, other.pk);
    ck_assert(run_until(&p, refused, 5000));
    ck_assert_uint_ge(p.b.ctr.link_closed[LC_HS_AUTH], 1);
    ck_assert_uint_eq(p.a.ctr.handshakes_ok, 0);
    ck_assert_uint_eq(p.b.ctr.handshakes_ok, 0);
    ck_assert_uint_ge(p.a.ctr.handshakes_failed, 1);
    ck_assert_ptr_null(link_find(&p.a, other.pk));
    ovl_identity_wipe(&other);
    pair_teardown(&p);
}
END_TEST

static bool b_timed_out(struct pair *p)
{
    return p->b.ctr.link_closed[LC_HS_TIMEOUT] > 0 && p->b.n_links == 0;
}

static void silent_closed(struct transport *t, int err)
{
    (void)t, (void)err;
}

static const struct tp_cb silent_cb = {.closed = silent_closed};

START_TEST(test_handshake_timeout)
{
    struct node_opts o;
    struct transport *t;
    struct pair p;

    node_opts_defaults(&o);
    o.handshake_timeout_ms = 150;
    pair_setup(&p, &o, &o);
    /* A connection that never says anything. */
    ck_assert_int_eq(tp_dial(&p.a.tp_env, p.b.listen_uri[0], &silent_cb, NULL, &t), 0);
    ck_assert(run_until(&p, b_timed_out, 3000));
    ck_assert_uint_eq(p.b.ctr.handshakes_failed, 1);
    pair_teardown(&p);
}
END_TEST

static bool a_has_link(struct pair *p)
{
    return p->a.peers && p->a.peers[0].link && p->a.peers[0].link->state == LINK_OPEN &&
           p->a.peers[0].attempts >= 2;
}

START_TEST(test_peer_reconnects)
{
    struct node_opts o;
    struct pair p;

    node_opts_defaults(&o);
    o.reconnect_min_ms = 100;
    pair_setup(&p, &o, &o);
    pair_dial(&p, NULL);
    ck_assert(run_until(&p, both_open, 5000));
    link_close(p.b.links, LC_SHUTDOWN); /* B drops the link: A must redial */
    ck_assert(run_until(&p, a_has_link, 5000));
    ck_assert_uint_eq(p.a.ctr.handshakes_ok, 2);
    pair_teardown(&p);
}
END_TEST

/* ---- heartbeats -------------------------------------------------------- */

static bool b_dead(struct pair *p)
{
    return p->b.ctr.link_closed[LC_DEAD] > 0 && all_closed(p);
}

static void quiet_cb(uv_timer_t *t)
{
    uv_stop(t->loop);
}

/* Run the loop for ms, whatever happens. */
static void run_for(struct pair *p, uint64_t ms)
{
    uv_timer_t t;

    uv_timer_init(&p->loop, &t);
    uv_timer_start(&t, quiet_cb, ms, 0);
    uv_run(&p->loop, UV_RUN_DEFAULT);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&p->loop, UV_RUN_NOWAIT); /* t lives on this stack: finish its close */
}

/* Two nodes with the given heartbeat, linked. */
static void hb_pair(struct pair *p, uint32_t heartbeat_ms, uint32_t misses)
{
    struct node_opts o;

    node_opts_defaults(&o);
    o.heartbeat_ms = heartbeat_ms;
    o.heartbeat_misses = misses;
    pair_setup(p, &o, &o);
    pair_dial(p, NULL);
    ck_assert(run_until(p, both_open, 5000));
}

static bool a_pinged_6(struct pair *p)
{
    return p->a.ctr.heartbeats >= 6 || !both_open(p);
}

START_TEST(test_heartbeat_keeps_link)
{
    struct pair p;
    uint64_t out_a;

    hb_pair(&p, 200, 3); /* intervals long against a busy machine's jitter */
    out_a = p.a.links->cells_out;
    /* Nothing to say for 6 intervals and more: PINGs alone keep both ends
     * alive. */
    ck_assert(run_until(&p, a_pinged_6, 20000));
    ck_assert(both_open(&p));
    ck_assert_uint_ge(p.a.ctr.heartbeats, 6);
    ck_assert_uint_ge(p.a.links->cells_out - out_a, 6);
    ck_assert_uint_eq(p.a.ctr.link_closed[LC_DEAD] + p.b.ctr.link_closed[LC_DEAD], 0);
    pair_teardown(&p);
}
END_TEST

START_TEST(test_heartbeat_detects_dead)
{
    struct pair p;
    uint64_t t0;

    hb_pair(&p, 100, 3);
    /* B stops hearing A (as if A hung; the transport, not the link, stops
     * reading): within 3 intervals B calls it dead. */
    t0 = clock_now_ms();
    tp_pause(p.b.links->tp);
    ck_assert(run_until(&p, b_dead, 20000));
    ck_assert_uint_ge(clock_now_ms() - t0, 150); /* the last cell came < 1 interval ago */
    /* Never before 3 intervals of silence (exactly then: test_link_timers). */
    ck_assert_uint_ge(p.b.ctr.dead_detect_ms_last, 300);
    ck_assert_uint_eq(p.b.ctr.dead_detect_ms_max, p.b.ctr.dead_detect_ms_last);
    ck_assert_uint_eq(p.a.ctr.link_closed[LC_DEAD], 0);
    pair_teardown(&p);
}
END_TEST

START_TEST(test_heartbeat_spares_backpressure)
{
    struct pair p;

    hb_pair(&p, 200, 3); /* intervals long against a busy machine's jitter */
    /* B holds A back on purpose (link_pause) for 10 intervals: its own
     * silence toward A is no sign that A died. */
    link_pause(p.b.links);
    run_for(&p, 2000);
    ck_assert(both_open(&p));
    link_resume(p.b.links);
    run_for(&p, 1200);
    ck_assert(both_open(&p));
    ck_assert_uint_eq(p.a.ctr.link_closed[LC_DEAD] + p.b.ctr.link_closed[LC_DEAD], 0);
    pair_teardown(&p);
}
END_TEST

static bool b_closed_dead(struct pair *p)
{
    return p->b.ctr.link_closed[LC_DEAD] > 0; /* A, not reading, may not know yet */
}

static bool b_probe_answered(struct pair *p)
{
    return p->b.links == NULL || p->b.links->lt.probe_ms == 0 || !both_open(p);
}

/* A probe asks for a sign of life now: a live peer answers its PING and
 * the link stays; a hung one is declared dead within the probe's window,
 * long before its 10 heartbeat intervals would run out. */
START_TEST(test_probe)
{
    struct pair p;
    uint64_t t0;

    signal(SIGPIPE, SIG_IGN); /* as ovld does: A writes after B closed */
    hb_pair(&p, 1000, 10);
    ck_assert_int_eq(link_probe(p.b.links, 200), 0);
    ck_assert_int_eq(link_probe(p.b.links, 200), 0); /* pending: not sent again */
    ck_assert(run_until(&p, b_probe_answered, 20000));
    ck_assert(both_open(&p));
    ck_assert_uint_eq(p.b.ctr.probes, 1);
    ck_assert_uint_eq(p.b.ctr.probes_failed, 0);
    ck_assert_uint_eq(p.b.links->lt.probe_ms, 0);
    /* A stops reading (hung): it never sees the PING. */
    tp_pause(p.a.links->tp);
    t0 = clock_now_ms();
    ck_assert_int_eq(link_probe(p.b.links, 200), 0);
    ck_assert(run_until(&p, b_closed_dead, 20000));
    ck_assert_uint_ge(clock_now_ms() - t0, 150); /* never before its window */
    ck_assert_uint_eq(p.b.ctr.probes, 2);
    /* The probe, not the heartbeat (10 s of silence), found it dead. */
    ck_assert_uint_eq(p.b.ctr.probes_failed, 1);
    ck_assert_uint_eq(p.b.ctr.dead_detect_ms_last, 0);
    pair_teardown(&p);
}
END_TEST

static bool b_got_want(struct pair *p)
{
    return p->got_b >= want_cells || !both_open(p);
}

static bool a_skipped_pong(struct pair *p)
{
    return p->a.ctr.pongs_skipped >= 1 || !both_open(p);
}

/* B holds A back (stops reading) until A's queue to B is full, and pings
 * on meanwhile, as a relay's heartbeat does during backpressure: A skips
 * the PONG and keeps the link (closing it would turn backpressure into a
 * lost link); once B reads again, everything A queued arrives. */
START_TEST(test_pong_when_full)
{
    struct pair p;
    struct cell c = {.cmd = TEST_CMD}, ping = {.cmd = CELL_PING};
    uint32_t sent = 0;
    int rc = 0;

    hb_pair(&p, 600000, 10); /* no heartbeat of its own in the test's time */
    link_pause(p.b.links);
    for (unsigned i = 0; i < 1000000 && rc != OVL_EAGAIN; i++) {
        c.len = (uint16_t)(4 + sent % 1000); /* what on_test_cell checks */
        memcpy(c.payload, &sent, 4);
        rc = link_send(p.a.links, &c);
        if (rc == 0)
            sent++;
        uv_run(&p.loop, UV_RUN_NOWAIT); /* let the kernel take what it will */
    }
    ck_assert_int_eq(rc, OVL_EAGAIN);
    ck_assert_int_eq(link_send(p.b.links, &ping), 0);
    ck_assert(run_until(&p, a_skipped_pong, 5000));
    ck_assert(both_open(&p));
    ck_assert_uint_eq(p.a.ctr.pongs_skipped, 1);
    ck_assert_uint_eq(p.a.ctr.link_closed[LC_QUEUE_FULL], 0);
    link_resume(p.b.links);
    want_cells = sent;
    ck_assert(run_until(&p, b_got_want, 10000));
    ck_assert(p.order_ok);
    ck_assert(both_open(&p));
    pair_teardown(&p);
}
END_TEST

static unsigned want_accepted;
static bool b_accepted(struct pair *p)
{
    return p->b.ctr.links_accepted + p->b.ctr.link_closed[LC_LIMIT] >= want_accepted;
}

/* Open a TCP connection to B that never says a word. */
static int silent_conn(struct pair *p)
{
    struct ovl_uri u;
    struct sockaddr_storage ss;
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(uri_parse(&u, p->b.listen_uri[0]), 0);
    ck_assert_int_eq(uri_sockaddr(&u, &ss), 0);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&ss, sizeof(struct sockaddr_in)), 0);
    return fd;
}

/* B (max_links 8: 7 for inbound links, 1 kept for its own dials) is held
 * by silent connections; a new one evicts the oldest of them, never the
 * open link from A, and B can still dial out. */
START_TEST(test_link_slots)
{
    struct pair p;
    struct node_opts oa, ob;
    int fds[8];
    struct link *l;
    uint64_t first = 0;
    unsigned queued = 0;

    node_opts_defaults(&oa);
    node_opts_defaults(&ob);
    ob.max_links = 8;
    ob.handshake_timeout_ms = 60000; /* only eviction ends them in the test */
    pair_setup(&p, &oa, &ob);
    pair_dial(&p, NULL);
    ck_assert(run_until(&p, both_open, 5000));
    for (int i = 0; i < 6; i++) { /* A's link and six silent ones: 7 inbound */
        fds[i] = silent_conn(&p);
        want_accepted = 2 + (unsigned)i;
        ck_assert(run_until(&p, b_accepted, 5000));
        if (i == 0) /* the oldest silent one, first in B's queue of them */
            first = p.b.unauth_in->serial;
    }
    ck_assert_uint_eq(p.b.ctr.links_evicted, 0);
    fds[6] = silent_conn(&p);
    want_accepted = 8;
    ck_assert(run_until(&p, b_accepted, 5000));
    ck_assert_uint_eq(p.b.ctr.links_evicted, 1);
    for (l = p.b.unauth_in; l; l = l->unauth_next, queued++)
        ck_assert_uint_ne(l->serial, first);
    ck_assert_uint_eq(queued, 6); /* A's link left the queue when it opened */
    for (l = p.b.links; l; l = l->next)
        if (l->serial == first)
            ck_assert_int_eq(l->state, LINK_CLOSING);
    ck_assert_uint_eq(p.b.ctr.link_closed[LC_LIMIT], 0);
    ck_assert_ptr_nonnull(link_find(&p.b, p.a.id.pk));
    /* The eighth slot is B's: a dial goes out (to A, which does not listen:
     * it fails later, but it is started). */
    ck_assert_int_eq(link_dial(&p.b, "tcp://127.0.0.1:9", p.a.id.pk, NULL, &l), 0);
    for (int i = 0; i < 7; i++)
        close(fds[i]);
    pair_teardown(&p);
}
END_TEST

static bool a_no_links(struct pair *p)
{
    return p->a.n_links == 0;
}

/* B stops reading and A queues for it until its link is full: within the
 * node-wide budget nothing happens; over it, the link with the most queued
 * is closed (`memory`), counted, and the queued bytes are gone. */
START_TEST(test_memcap)
{
    struct pair p;
    struct node_opts o;
    struct cell c = {.cmd = TEST_CMD};
    uint32_t sent = 0;
    int rc = 0;

    node_opts_defaults(&o);
    o.heartbeat_ms = 600000;
    o.sendq_max = 262144;
    o.max_queued = 0; /* no timer: the test calls memcap_check itself */
    pair_setup(&p, &o, &o);
    pair_dial(&p, NULL);
    ck_assert(run_until(&p, both_open, 5000));
    link_pause(p.b.links);
    for (unsigned i = 0; i < 1000000 && rc != OVL_EAGAIN; i++) {
        c.len = (uint16_t)(4 + sent % 1000);
        memcpy(c.payload, &sent, 4);
        rc = link_send(p.a.links, &c);
        sent += rc == 0;
        uv_run(&p.loop, UV_RUN_NOWAIT);
    }
    ck_assert_int_eq(rc, OVL_EAGAIN);
    ck_assert_uint_gt(memcap_queued(&p.a), 65536);
    p.a.opts.max_queued = memcap_queued(&p.a); /* at the budget: fine */
    ck_assert_uint_eq(memcap_check(&p.a), 0);
    p.a.opts.max_queued = 65536;
    ck_assert_uint_eq(memcap_check(&p.a), 1);
    ck_assert_uint_eq(p.a.ctr.memory_closed, 1);
    ck_assert(run_until(&p, a_no_links, 5000)); /* its queue is gone with it */
    ck_assert_uint_eq(p.a.ctr.link_closed[LC_MEMORY], 1);
    ck_assert_uint_eq(memcap_queued(&p.a), 0);
    pair_teardown(&p);
}
END_TEST

/* Link padding: receive times (us) of the PADDING cells B got. */
#define PAD_MAX 256
static uint64_t pad_at[PAD_MAX];
static unsigned pad_n;

static void rec_padding(void *ctx, struct link *l, const struct cell *c)
{
    (void)ctx, (void)l, (void)c;
    if (pad_n < PAD_MAX)
        pad_at[pad_n++] = uv_hrtime() / 1000;
}

/* A pads (min..max ms, heartbeat 1 s: it must not hold padding back); B
 * only records. */
static void pad_pair(struct pair *p, uint32_t min, uint32_t max, uint32_t budget)
{
    struct node_opts oa, ob;

    node_opts_defaults(&oa);
    oa.padding_min_ms = min;
    oa.padding_max_ms = max;
    oa.cover_budget = budget;
    node_opts_defaults(&ob);
    ob.padding_max_ms = 0;
    pair_setup(p, &oa, &ob);
    p->b.disp.h[CELL_PADDING].fn = rec_padding;
    pad_n = 0;
    pair_dial(p, NULL);
    ck_assert(run_until(p, both_open, 5000));
}

static unsigned want_pads;
static bool pads_arrived(struct pair *p)
{
    return pad_n >= want_pads || !both_open(p);
}

/* On an idle link A pads on its own, B receives every padding cell, and
 * each is counted as padding and as cover. (When each is due, and that the
 * gaps follow U(min, max), is test_link_timers' business: it checks the
 * same policy at exact times, where no timer lateness blurs them.) */
START_TEST(test_padding_gaps)
{
    struct pair p;

    pad_pair(&p, 20, 100, 100);
    want_pads = 30;
    ck_assert(run_until(&p, pads_arrived, 20000));
    ck_assert(both_open(&p));
    ck_assert_uint_eq(p.b.ctr.padding_in, 0); /* the test's handler took them */
    ck_assert_uint_ge(p.a.ctr.padding_out, pad_n);
    ck_assert_uint_eq(p.a.ctr.cover_out, p.a.ctr.padding_out);
    pair_teardown(&p);
}
END_TEST

static void real_cb(uv_timer_t *t)
{
    struct pair *p = t->data;
    struct cell c = {.cmd = TEST_CMD + 1, .len = 1}; /* unhandled at B, but real */

    if (both_open(p))
        ck_assert_int_eq(link_send(p->a.links, &c), 0);
}

static uint64_t want_real;
static bool b_got_real(struct pair *p)
{
    return p->b.disp.unhandled >= want_real || !both_open(p);
}

static bool a_skipped_5(struct pair *p)
{
    return p->a.ctr.cover_skipped >= 5;
}

/* Real traffic more often than padding_min holds padding back entirely; a
 * cover_budget of 0 stops it too, counted as skipped. */
START_TEST(test_padding_yields)
{
    struct pair p;
    uv_timer_t t;

    pad_pair(&p, 40, 60, 100);
    uv_timer_init(&p.loop, &t);
    t.data = &p;
    uv_timer_start(&t, real_cb, 0, 10);
    /* The real cell's timer is always due before the padding (10 < 40 ms),
     * and due timers run in order, so even a held-up loop sends no padding. */
    want_real = 20;
    ck_assert(run_until(&p, b_got_real, 20000));
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&p.loop, UV_RUN_NOWAIT);
    ck_assert_uint_eq(pad_n, 0);
    want_pads = 3; /* idle again: it pads */
    ck_assert(run_until(&p, pads_arrived, 20000));
    pair_teardown(&p);

    pad_pair(&p, 10, 20, 0);
    ck_assert(run_until(&p, a_skipped_5, 20000));
    ck_assert_uint_eq(pad_n, 0);
    ck_assert_uint_eq(p.a.ctr.padding_out, 0);
    pair_teardown(&p);
}
END_TEST

/* ---- dialing a node that publishes several addresses ------------------ */

enum fb_uri {
    FB_END = 0,
    FB_TCP,     /* B's TCP listener */
    FB_QUIC,    /* B's QUIC listener */
    FB_REFUSED, /* a TCP port nobody listens on */
    FB_SILENT,  /* a UDP port that swallows everything (QUIC hangs) */
    FB_UNKNOWN, /* a scheme nobody has */
};

struct fb_case {
    const char *name;
    bool quic;              /* needs the QUIC transport */
    const char *transports; /* NULL: all; else "tcp" or "quic" */
    const char *prefer;     /* NULL: default (tcp) */
    enum fb_uri uris[4];
    int dial_rc;          /* what link_dial_any returns */
    const char *opens_on; /* scheme the link ends up on, or NULL: it closes */
    uint64_t fallbacks;
};

static const struct fb_case fb_cases[] = {
    {"refused, then tcp", false, NULL, NULL, {FB_REFUSED, FB_TCP}, 0, "tcp", 1},
    {"unknown scheme skipped", false, NULL, NULL, {FB_UNKNOWN, FB_REFUSED, FB_TCP}, 0, "tcp", 1},
    {"all refused", false, NULL, NULL, {FB_REFUSED, FB_REFUSED}, 0, NULL, 1},
    {"nothing usable", false, NULL, NULL, {FB_UNKNOWN}, OVL_ENOENT, NULL, 0},
    {"tcp preferred by default", true, NULL, NULL, {FB_QUIC, FB_TCP}, 0, "tcp", 0},
    {"prefer quic", true, NULL, "quic", {FB_TCP, FB_QUIC}, 0, "quic", 0},
    {"quic silent, timer falls back", true, NULL, "quic", {FB_SILENT, FB_TCP}, 0, "tcp", 1},
    {"transports = tcp skips quic", true, "tcp", NULL, {FB_QUIC, FB_REFUSED}, 0, NULL, 0},
};

struct fb_obs {
    unsigned opened, closed;
};

static void fb_opened(void *ctx, struct link *l)
{
    (void)l;
    ((struct fb_obs *)ctx)->opened++;
}

static void fb_closed(void *ctx, struct link *l)
{
    if (link_is_initiator(l))
        ((struct fb_obs *)ctx)->closed++;
}

static struct fb_obs fb_seen;

static bool fb_settled(struct pair *p)
{
    (void)p;
    return fb_seen.opened + fb_seen.closed > 0;
}

/* Bind a socket on 127.0.0.1 and write its port; keep it open if h. */
static unsigned fb_port(uv_loop_t *loop, bool udp, uv_udp_t *h)
{
    struct sockaddr_in sa;
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    uv_tcp_t t;
    uv_udp_t u;
    uv_handle_t *any = udp ? (uv_handle_t *)(h ? h : &u) : (uv_handle_t *)&t;

    ck_assert_int_eq(uv_ip4_addr("127.0.0.1", 0, &sa), 0);
    if (udp) {
        ck_assert_int_eq(uv_udp_init(loop, (uv_udp_t *)any), 0);
        ck_assert_int_eq(uv_udp_bind((uv_udp_t *)any, (struct sockaddr *)&sa, 0), 0);
        ck_assert_int_eq(uv_udp_getsockname((uv_udp_t *)any, (struct sockaddr *)&ss, &len), 0);
    } else {
        ck_assert_int_eq(uv_tcp_init(loop, &t), 0);
        ck_assert_int_eq(uv_tcp_bind(&t, (struct sockaddr *)&sa, 0), 0);
        ck_assert_int_eq(uv_tcp_getsockname(&t, (struct sockaddr *)&ss, &len), 0);
    }
    if (!h) {
        uv_close(any, NULL);
        uv_run(loop, UV_RUN_NOWAIT); /* the handle lives on this stack */
    }
    return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

START_TEST(test_dial_fallback)
{
    const struct fb_case *fc = &fb_cases[_i];
    static const char listen[2][OVL_URI_MAX] = {"tcp://127.0.0.1:0", "quic://127.0.0.1:0"};
    struct link_observer obs = {.opened = fb_opened, .closed = fb_closed, .ctx = &fb_seen};
    char uris[4][OVL_URI_MAX];
    struct node_opts o;
    struct link *l = NULL;
    struct pair p;
    uv_udp_t silent;
    unsigned n = 0;
    uint64_t serial;

    if (fc->quic && !OVL_HAVE_QUIC)
        return;
    node_opts_defaults(&o);
    o.handshake_timeout_ms = 300;
    if (fc->transports)
        o.transports = tp_bit(fc->transports);
    if (fc->prefer)
        o.prefer = tp_bit(fc->prefer);
    memset(&p, 0, sizeof(p));
    ck_assert_int_eq(uv_loop_init(&p.loop), 0);
    uv_timer_init(&p.loop, &p.deadline);
    uv_timer_init(&p.loop, &p.poll);
    p.deadline.data = p.poll.data = &p;
    make_node(&p, &p.a, &o);
    make_node(&p, &p.b, &o);
    ck_assert_int_eq(node_start(&p.b, listen, OVL_HAVE_QUIC ? 2 : 1, NULL, 0), 0);
    ck_assert_int_eq(node_start(&p.a, NULL, 0, NULL, 0), 0);
    ck_assert_int_eq(node_observe_links(&p.a, &obs), 0);
    memset(&fb_seen, 0, sizeof(fb_seen));
    for (; n < 4 && fc->uris[n] != FB_END; n++) {
        switch (fc->uris[n]) {
        case FB_TCP:
        case FB_QUIC:
            snprintf(uris[n], OVL_URI_MAX, "%s", p.b.listen_uri[fc->uris[n] == FB_QUIC]);
            break;
        case FB_REFUSED:
            snprintf(uris[n], OVL_URI_MAX, "tcp://127.0.0.1:%u", fb_port(&p.loop, false, NULL));
            break;
        case FB_SILENT:
            snprintf(uris[n], OVL_URI_MAX, "quic://127.0.0.1:%u", fb_port(&p.loop, true, &silent));
            break;
        default:
            snprintf(uris[n], OVL_URI_MAX, "sctp://127.0.0.1:1");
        }
    }
    ck_assert_int_eq(link_dial_any(&p.a, uris, n, p.b.id.pk, &l), fc->dial_rc);
    if (fc->dial_rc == 0) {
        serial = l->serial;
        ck_assert_msg(run_until(&p, fb_settled, 5000), "%s: neither opened nor closed", fc->name);
        ck_assert_uint_eq(fb_seen.opened, fc->opens_on ? 1 : 0);
        ck_assert_uint_eq(fb_seen.closed, fc->opens_on ? 0 : 1);
        if (fc->opens_on) {
            l = link_by_serial(&p.a, serial);
            ck_assert_ptr_nonnull(l);
            ck_assert_msg(strncmp(l->remote, fc->opens_on, strlen(fc->opens_on)) == 0,
                          "%s: link on %s", fc->name, l->remote);
        }
    } else {
        ck_assert_ptr_null(l);
    }
    ck_assert_msg(p.a.ctr.dial_fallbacks == fc->fallbacks, "%s: %" PRIu64 " fallbacks", fc->name,
                  p.a.ctr.dial_fallbacks);
    if (fc->uris[0] == FB_SILENT)
        uv_close((uv_handle_t *)&silent, NULL);
    pair_teardown(&p);
}
END_TEST

/* ---- reconfiguring a running node --------------------------------------- */

static struct peer_spec rc_specs[2]; /* b as a peer, and c: nobody listens there */
static uint64_t rc_attempts;         /* c's dial attempts when the wait began */

static bool c_dialed_twice_more(struct pair *p)
{
    for (unsigned i = 0; i < p->a.n_peers; i++)
        if (strcmp(p->a.peers[i].spec.name, "c") == 0)
            return p->a.peers[i].attempts >= rc_attempts + 2;
    return false;
}

static bool b_link_gone(struct pair *p)
{
    return !link_find(&p->a, p->b.id.pk);
}

static uint64_t c_attempts(const struct node *n)
{
    for (unsigned i = 0; i < n->n_peers; i++)
        if (strcmp(n->peers[i].spec.name, "c") == 0)
            return n->peers[i].attempts;
    return 0;
}

/* Peers kept keep their link and redial as before (their state moved);
 * a new one is dialed; a removed one's link stays, and is not dialed
 * again once it closes. */
START_TEST(test_peer_reconfigure)
{
    struct node_opts o;
    struct link *l;
    struct pair p;

    node_opts_defaults(&o);
    o.reconnect_min_ms = 100;
    o.reconnect_max_ms = 1000;
    pair_setup(&p, &o, &o);
    pair_dial(&p, NULL);
    ck_assert(run_until(&p, both_open, 5000));
    l = p.a.peers[0].link;
    rc_specs[0] = p.a.peers[0].spec;
    snprintf(rc_specs[0].name, sizeof(rc_specs[0].name), "b2"); /* renamed: kept */
    memset(&rc_specs[1], 0, sizeof(rc_specs[1]));
    snprintf(rc_specs[1].name, sizeof(rc_specs[1].name), "c");
    snprintf(rc_specs[1].uri, OVL_URI_MAX, "tcp://127.0.0.1:%u", fb_port(&p.loop, false, NULL));
    ovl_random(rc_specs[1].pk, sizeof(rc_specs[1].pk));
    ck_assert_int_eq(peer_reconfigure(&p.a, rc_specs, 2), 0);
    ck_assert_uint_eq(p.a.n_peers, 2);
    ck_assert_ptr_eq(p.a.peers[0].link, l);
    ck_assert_ptr_eq(l->peer, &p.a.peers[0]);
    ck_assert_str_eq(p.a.peers[0].spec.name, "b2");
    ck_assert_uint_eq(p.a.peers[1].attempts, 1); /* dialed at once */
    link_close(p.b.links, LC_SHUTDOWN);          /* b's link closes: the moved peer redials */
    ck_assert(run_until(&p, a_has_link, 5000));
    ck_assert_uint_eq(p.a.ctr.handshakes_ok, 2);
    l = p.a.peers[0].link;
    ck_assert_int_eq(peer_reconfigure(&p.a, &rc_specs[1], 1), 0); /* b2 goes */
    ck_assert_uint_eq(p.a.n_peers, 1);
    ck_assert_ptr_eq(link_find(&p.a, p.b.id.pk), l); /* its link stays, no peer's */
    ck_assert_ptr_null(l->peer);
    link_close(p.b.links, LC_SHUTDOWN);
    ck_assert(run_until(&p, b_link_gone, 5000));
    rc_attempts = c_attempts(&p.a);
    ck_assert(run_until(&p, c_dialed_twice_more, 10000)); /* time enough for a redial */
    ck_assert_ptr_null(link_find(&p.a, p.b.id.pk));
    ck_assert_uint_eq(p.a.ctr.handshakes_ok, 2);
    ck_assert_int_eq(peer_reconfigure(&p.a, NULL, 0), 0);
    ck_assert_uint_eq(p.a.n_peers, 0);
    ck_assert_ptr_null(p.a.peers);
    pair_teardown(&p);
}
END_TEST

/* node_reconfigure takes what may change, refuses what node_init would. */
START_TEST(test_node_reconfigure)
{
    struct node_opts o, n2;
    struct pair p;

    node_opts_defaults(&o);
    o.max_queued = 0;
    pair_setup(&p, &o, &o);
    pair_dial(&p, NULL);
    ck_assert(run_until(&p, both_open, 5000));
    ck_assert_ptr_null(p.a.memcap_timer);
    n2 = o;
    n2.padding_min_ms = 500;
    n2.padding_max_ms = 400; /* below min: refused, nothing changed */
    n2.heartbeat_ms = 250;
    ck_assert_int_eq(node_reconfigure(&p.a, &n2), OVL_EINVAL);
    ck_assert_uint_eq(p.a.opts.heartbeat_ms, o.heartbeat_ms);
    n2.padding_max_ms = 600;
    n2.max_queued = 1u << 20;
    n2.aead_suites = OVL_AEAD_CHACHA20POLY1305; /* needs a restart: kept */
    n2.sendq_max = 20000;
    ck_assert_int_eq(node_reconfigure(&p.a, &n2), 0);
    ck_assert_uint_eq(p.a.opts.heartbeat_ms, 250);
    ck_assert_uint_eq(p.a.opts.padding_max_ms, 600);
    ck_assert_uint_eq(p.a.opts.max_queued, 1u << 20);
    ck_assert_ptr_nonnull(p.a.memcap_timer); /* the budget is checked from now on */
    ck_assert_uint_eq(p.a.opts.aead_suites, o.aead_suites);
    ck_assert_uint_eq(p.a.opts.sendq_max, o.sendq_max);
    ck_assert(both_open(&p));
    pair_teardown(&p);
}
END_TEST

static Suite *link_suite(void)
{
    Suite *s = suite_create("link");
    TCase *tc = tcase_create("core");

    tcase_set_timeout(tc, 20);
    tcase_add_test(tc, test_open_chacha);
    tcase_add_test(tc, test_peer_reconfigure);
    tcase_add_test(tc, test_node_reconfigure);
    tcase_add_test(tc, test_open_aes);
    tcase_add_test(tc, test_wrong_key_refused);
    tcase_add_test(tc, test_handshake_timeout);
    tcase_add_test(tc, test_peer_reconnects);
    tcase_add_test(tc, test_heartbeat_keeps_link);
    tcase_add_test(tc, test_heartbeat_detects_dead);
    tcase_add_test(tc, test_heartbeat_spares_backpressure);
    tcase_add_test(tc, test_probe);
    tcase_add_test(tc, test_pong_when_full);
    tcase_add_test(tc, test_link_slots);
    tcase_add_test(tc, test_memcap);
    tcase_add_test(tc, test_padding_gaps);
    tcase_add_test(tc, test_padding_yields);
    tcase_add_loop_test(tc, test_dial_fallback, 0, (int)(sizeof(fb_cases) / sizeof(fb_cases[0])));
    suite_add_tcase(s, tc);
    return s;
}

OVL_CHECK_MAIN(link_suite)
