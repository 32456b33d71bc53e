/* tnet.h - the network fixture shared by test_relay.c, test_xstream.c,
 * test_svc.c, test_intro.c and test_hidden_exit.c: nodes on one uv loop over
 * loopback TCP, a bootstrap the others register with, and a sender that
 * is the test itself: it builds chain setups and forward cells with
 * onion.h instead of running the client role. Beside the world it holds
 * the sender's one-hop chains (struct tnet_chain: test_intro.c,
 * test_hidden_exit.c, test_xstream.c), and for tests of streams an echo
 * server as their target (struct tnet_echo) and the opener's ends of
 * streams through the real stream engine (struct tnet_ends: test_xstream.c,
 * test_svc.c).
 *
 * A test's world is its own struct T that begins with TNET_WORLD(T, N)
 * (the loop, loopfix.h's timers, N nodes with their directory and relay
 * contexts, indexed alike; index 0 is the bootstrap) and is followed by
 * TNET_DEFINE(T) once, which defines loopfix.h's functions for T and:
 *     tnet_open(t)           zero *t, start its loop and loopfix's timers
 *     tnet_relay(t, i, ...)  join node i as a relay and start it
 *     tnet_client(t, i, ...) join node i as a client and start it
 *     tnet_all_registered(t) condition: every node but 0 registered
 *     tnet_down(t)           stop relays and nodes, run the loop out, close it
 *     tnet_release(t)        free the relays and nodes tnet_down stopped
 *     tnet_chain_open(t, c, from, to)    open tnet_chain c, wait SETUP_OK
 *     tnet_chain_wait(t, c, i, ms)       wait for c's backward body i
 * A test brings its net up with tnet_open(), tnet_boot() and, for each
 * other node, tnet_relay(), tnet_client() or tnet_join() (adding other
 * roles' contexts, then tnet_start()). It takes it down by stopping those
 * other contexts, tnet_down(), freeing them and tnet_release(). The relays'
 * contexts in t->relay[] are the world's; other roles' are the test's, and
 * tnet.h never stops or frees them.
 *
 * The functions that take (n, dir) work on those arrays directly, so a
 * test may use them on any nodes it holds.
 */
#ifndef OVL_TESTS_TNET_H
#define OVL_TESTS_TNET_H

#include <check.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chain/body.h"
#include "chain/onion.h"
#include "chain/relay.h"
#include "chain/stream.h"
#include "core/chanmap.h"
#include "core/link.h"
#include "core/node_run.h"
#include "dir/dir.h"
#include "lib/bytes.h"
#include "loopfix.h"

/* Every node listens here, but for a test that wants another block. */
static const char tnet_listen[1][OVL_URI_MAX] = {"tcp://127.0.0.1:0"};

/* Directory options for loopback: private addresses allowed (every node
 * is 127.0.0.1), a heartbeat of a second. */
static inline void tnet_dir_opts(struct dir_opts *o)
{
    dir_opts_defaults(o);
    o->allow_private = true;
    o->heartbeat_ms = 1000;
}

/* Initialise *n on loop with a fresh identity and roles, logging errors only. */
static inline void tnet_node(uv_loop_t *loop, struct node *n, unsigned roles)
{
    struct node_opts o;
    struct ovl_identity id;

    node_opts_defaults(&o);
    ck_assert_int_eq(ovl_identity_generate(&id), 0);
    log_init(&n->log, "test", OVL_LOG_ERROR, false);
    ck_assert_int_eq(node_init(n, loop, &o, &id, roles), 0);
    ovl_identity_wipe(&id);
}

/* Make n[0] the bootstrap and start it; *bs and *peer name it for the
 * nodes that join. */
static inline void tnet_boot(uv_loop_t *loop, struct node *n, struct dir **dir,
                             const struct dir_opts *o, struct dir_bootstrap_spec *bs,
                             struct peer_spec *peer)
{
    tnet_node(loop, &n[0], ROLE_BOOTSTRAP);
    ck_assert_int_eq(dir_init(&n[0], o, NULL, 0, &dir[0]), 0);
    ck_assert_int_eq(node_start(&n[0], tnet_listen, 1, NULL, 0), 0);
    memset(bs, 0, sizeof(*bs));
    snprintf(bs->name, sizeof(bs->name), "bs");
    snprintf(bs->uri, sizeof(bs->uri), "%s", n[0].listen_uri[0]);
    memcpy(bs->pk, n[0].id.pk, OVL_ED25519_PK);
    memset(peer, 0, sizeof(*peer));
    memcpy(peer->name, bs->name, sizeof(peer->name));
    memcpy(peer->uri, bs->uri, sizeof(peer->uri));
    memcpy(peer->pk, bs->pk, sizeof(peer->pk));
}

/* Make n[i] a node with roles whose directory registers with bs; the
 * caller adds its roles' contexts, then starts it with tnet_start() (or
 * node_start(..., peer, 1) for other listen addresses). */
static inline void tnet_join(uv_loop_t *loop, struct node *n, struct dir **dir, unsigned i,
                             unsigned roles, const struct dir_opts *o,
                             const struct dir_bootstrap_spec *bs)
{
    tnet_node(loop, &n[i], roles);
    ck_assert_int_eq(dir_init(&n[i], o, bs, 1, &dir[i]), 0);
}

/* Start n[i], joined before, listening on tnet_listen and knowing the
 * bootstrap as peer. */
static inline void tnet_start(struct node *n, unsigned i, const struct peer_spec *peer)
{
    ck_assert_int_eq(node_start(&n[i], tnet_listen, 1, peer, 1), 0);
}

/* The link from n[from] to n[to], or NULL while there is none. */
static inline struct link *tnet_link(struct node *n, unsigned from, unsigned to)
{
    return link_find(&n[from], n[to].id.pk);
}

/* Dial n[to]'s first listen address from n[from]; wait for the link with
 * tnet_link(). */
static inline void tnet_dial(struct node *n, unsigned from, unsigned to)
{
    struct link *l;

    ck_assert_int_eq(link_dial(&n[from], n[to].listen_uri[0], n[to].id.pk, NULL, &l), 0);
}

/* True when nodes 1 .. count - 1 are registered with the bootstrap. */
static inline bool tnet_registered(struct dir *const *dir, unsigned count)
{
    for (unsigned i = 1; i < count; i++)
        if (!dir_registered(dir[i]))
            return false;
    return true;
}

/* Stop the directory and the node of each of the count nodes (their roles'
 * contexts are the caller's, stopped before); run the loop afterwards. */
static inline void tnet_stop(struct node *n, struct dir **dir, unsigned count)
{
    for (unsigned i = 0; i < count; i++) {
        dir_stop(dir[i]);
        node_stop(&n[i]);
    }
}

/* Free what tnet_stop stopped, once the loop has ended. */
static inline void tnet_free(struct node *n, struct dir **dir, unsigned count)
{
    for (unsigned i = 0; i < count; i++) {
        dir_free(dir[i]);
        node_free(&n[i]);
    }
}

/* Build into hdr (ONION_HDR_LEN bytes) the setup header of a chain through
 * nodes path[0 .. hops - 1] (relays, the last one the exit), each keeping
 * it lifetime_s; keys[0 .. hops - 1] receive the hops' keys. With next0,
 * hop 0 is told that identity as its next hop instead of path[1]'s. */
static inline void tnet_onion(uint8_t *hdr, const struct node *n, struct dir *const *dir,
                              const unsigned *path, unsigned hops, uint32_t lifetime_s,
                              const uint8_t *next0, struct onion_keys *keys)
{
    uint8_t onion_pk[ONION_MAX_HOPS][OVL_X25519_LEN];
    struct onion_hop_info info[ONION_MAX_HOPS];

    ck_assert_uint_le(hops, ONION_MAX_HOPS);
    memset(info, 0, sizeof(info));
    for (unsigned i = 0; i < hops; i++) {
        unsigned count = 0;
        const struct dir_onion *ok = dir_onion_keys(dir[path[i]], &count);

        ck_assert_uint_ge(count, 1);
        memcpy(onion_pk[i], ok[0].pk, OVL_X25519_LEN);
        info[i].type = i + 1 < hops ? ONION_HOP_RELAY : ONION_HOP_EXIT;
        info[i].suite = (uint8_t)ovl_aead_pick(ovl_aead_available());
        info[i].lifetime_s = lifetime_s;
        if (i + 1 < hops)
            memcpy(info[i].next, n[path[i + 1]].id.pk, OVL_ED25519_PK);
    }
    if (next0 && hops > 1)
        memcpy(info[0].next, next0, OVL_ED25519_PK);
    ck_assert_int_eq(
        onion_setup_build(hdr, (const uint8_t(*)[OVL_X25519_LEN])onion_pk, info, hops, keys), 0);
}

/* From node n[from], send on l the setup of a chain through path (as
 * tnet_onion, lifetime_s each, keys receiving the hops' keys) under a new
 * chain ID owned by owner/obj there; *id receives the ID. */
static inline void tnet_setup(struct node *n, struct dir *const *dir, unsigned from, struct link *l,
                              const unsigned *path, unsigned hops, uint32_t lifetime_s,
                              struct onion_keys *keys, const struct chain_owner *owner, void *obj,
                              uint32_t *id)
{
    struct cell c = {.cmd = CELL_CHAIN_SETUP, .len = ONION_HDR_LEN};

    tnet_onion(c.payload, n, dir, path, hops, lifetime_s, NULL, keys);
    ck_assert_int_eq(chanmap_alloc(&n[from], l, owner, obj, id), 0);
    c.chain_id = *id;
    ck_assert_int_eq(link_send(l, &c), 0);
}

/* Fill c with a CELL_CHAIN_FWD on chain_id whose body (cmd, args of alen
 * bytes) is wrapped for hops 0 .. hops - 1, hop i under counter ctr[i]. */
static inline void tnet_fwd(struct cell *c, uint32_t chain_id, const struct onion_keys *keys,
                            unsigned hops, const uint64_t *ctr, uint8_t cmd, const uint8_t *args,
                            size_t alen)
{
    uint8_t body[ONION_BODY];

    memset(c, 0, sizeof(*c));
    c->chain_id = chain_id;
    c->cmd = CELL_CHAIN_FWD;
    c->len = OVL_CELL_PAYLOAD;
    memset(body, 0, sizeof(body));
    body_hdr_put(body, cmd, (uint16_t)alen);
    if (alen)
        memcpy(body + BODY_HDR, args, alen);
    ck_assert_int_eq(onion_fwd_wrap(c->payload, keys, hops, ctr, body), 0);
}

/* ---- a one-hop chain the test opens as its sender ---- */

#define TNET_MAX_BODIES 16

/* A backward body as its chain's sender read it. */
struct tnet_body {
    uint8_t cmd;
    uint16_t len;
    uint8_t args[ONION_BODY - BODY_HDR];
};

struct tnet_chain;

/* Takes a backward body (not SETUP_OK) of chain c: cmd, args of len bytes. */
typedef void tnet_body_fn(struct tnet_chain *c, uint8_t cmd, const uint8_t *args, size_t len);

/* One one-hop chain from the test's node `from` to the relay `to`, whose
 * chain ID the test owns through chanmap. The struct is the test's (in its
 * world, which must not move); tnet_chain_open fills all but ctx and
 * on_body, which the test may set first. Backward bodies go to on_body, or
 * are kept in bodies[] when it is NULL. tnet_chain_wipe wipes the keys. */
struct tnet_chain {
    void *ctx;             /* the test's, for on_body */
    tnet_body_fn *on_body; /* NULL: keep bodies in bodies[] */
    struct node *from;
    const struct node *to;
    struct onion_keys keys[1];
    uint64_t fwd_ctr, back_next[1];
    uint32_t id; /* 0 once the chain ended */
    bool setup_ok;
    struct tnet_body bodies[TNET_MAX_BODIES];
    unsigned n_bodies;
};

/* The link chain c goes on, or NULL while there is none. */
static inline struct link *tnet_chain_link(const struct tnet_chain *c)
{
    return link_find(c->from, c->to->id.pk);
}

/* chanmap's owner callback: unwrap a backward cell of c with its one hop's
 * keys; SETUP_OK sets setup_ok, other bodies go to on_body or bodies[]. */
static inline void tnet_chain_cell(void *obj, struct link *l, const struct cell *c)
{
    struct tnet_chain *tc = obj;
    uint8_t body[ONION_BODY];
    unsigned origin;
    struct tnet_body *b;
    int blen;

    (void)l;
    if (c->cmd != CELL_CHAIN_BACK)
        return;
    ck_assert_int_eq(onion_back_unwrap(body, &origin, tc->keys, 1, tc->back_next, c->payload), 0);
    ck_assert_uint_eq(origin, 0);
    blen = body_hdr_len(body);
    ck_assert_int_ge(blen, 0);
    if (body[0] == BODY_SETUP_OK) {
        tc->setup_ok = true;
        return;
    }
    if (tc->on_body) {
        tc->on_body(tc, body[0], body + BODY_HDR, (size_t)blen);
        return;
    }
    ck_assert_uint_lt(tc->n_bodies, TNET_MAX_BODIES);
    b = &tc->bodies[tc->n_bodies++];
    b->cmd = body[0];
    b->len = (uint16_t)blen;
    memcpy(b->args, body + BODY_HDR, (size_t)blen);
}

/* chanmap's owner callback: the link went, and the chain ID with it. */
static inline void tnet_chain_closed(void *obj, struct link *l, uint32_t id)
{
    (void)l, (void)id;
    ((struct tnet_chain *)obj)->id = 0;
}

static const struct chain_owner tnet_chain_owner = {.cell = tnet_chain_cell,
                                                    .link_closed = tnet_chain_closed};

/* Make c ready to be opened again from node from to relay to: counters,
 * bodies and setup_ok cleared, the keys of the chain before wiped. */
static inline void tnet_chain_reset(struct tnet_chain *c, struct node *from, const struct node *to)
{
    onion_keys_wipe(&c->keys[0]);
    c->from = from;
    c->to = to;
    c->fwd_ctr = c->back_next[0] = 0;
    c->id = 0;
    c->setup_ok = false;
    c->n_bodies = 0;
}

/* Send a forward body (cmd, args of alen bytes) on chain c; 0, the error
 * of link_send, or OVL_ECLOSED when the chain or its link is gone. */
static inline int tnet_chain_send(struct tnet_chain *c, uint8_t cmd, const uint8_t *args,
                                  size_t alen)
{
    struct link *l = tnet_chain_link(c);
    uint64_t ctr[1] = {c->fwd_ctr};
    struct cell cell;
    int rc;

    if (!l || !c->id)
        return OVL_ECLOSED;
    tnet_fwd(&cell, c->id, c->keys, 1, ctr, cmd, args, alen);
    rc = link_send(l, &cell);
    if (rc == 0)
        c->fwd_ctr++;
    return rc;
}

/* End chain c (DESTROY) as its sender, and forget its ID. */
static inline void tnet_chain_close(struct tnet_chain *c)
{
    struct cell cell = {.chain_id = c->id, .cmd = CELL_CHAIN_DESTROY};

    ck_assert_int_eq(link_send(tnet_chain_link(c), &cell), 0);
    chanmap_del(c->from, tnet_chain_link(c), c->id);
    c->id = 0;
}

/* Wipe the keys of the count chains at c. */
static inline void tnet_chain_wipe(struct tnet_chain *c, unsigned count)
{
    for (unsigned k = 0; k < count; k++)
        onion_keys_wipe(&c[k].keys[0]);
}

/* ---- a target: an echo server ---- */

#define TNET_MAX_ECHO 8

struct tnet_echo;

/* One connection the echo server took. */
struct tnet_echo_conn {
    struct tnet_echo *echo;
    uv_tcp_t tcp;
    uv_shutdown_t sh;
    bool used;
};

/* A TCP echo server on 127.0.0.1, a stream's target: it writes back what
 * it reads and, once the peer's FIN came, shuts its side down after the
 * echoes queued before. The struct is the test's (in its world, which
 * must not move); tnet_echo_start opens it, tnet_echo_close closes its
 * handles, and the loop run that follows ends them. */
struct tnet_echo {
    uv_tcp_t srv;
    uint16_t port;
    struct tnet_echo_conn conn[TNET_MAX_ECHO];
    uint64_t bytes; /* read, and so echoed */
    unsigned eofs;  /* FINs read */
};

/* An echo's write: its request and the buffer it writes. */
struct tnet_echo_wr {
    uv_write_t req;
    char *buf;
};

static inline void tnet_echo_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
    (void)h, (void)hint;
    b->base = malloc(65536);
    b->len = b->base ? 65536 : 0;
}

static inline void tnet_echo_wrote(uv_write_t *req, int status)
{
    struct tnet_echo_wr *w = (struct tnet_echo_wr *)req;

    (void)status;
    free(w->buf);
    free(w);
}

/* Write back what came, the read buffer going with the write; at the
 * peer's FIN, shut down. */
static inline void tnet_echo_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
    struct tnet_echo_conn *c = st->data;
    struct tnet_echo_wr *w;

    if (n > 0 && (w = malloc(sizeof(*w)))) {
        uv_buf_t ob = uv_buf_init(b->base, (unsigned)n);

        w->buf = b->base;
        c->echo->bytes += (uint64_t)n;
        ck_assert_int_eq(uv_write(&w->req, st, &ob, 1, tnet_echo_wrote), 0);
        return;
    }
    free(b->base);
    if (n == UV_EOF) {
        c->echo->eofs++;
        (void)uv_shutdown(&c->sh, st, NULL); /* after the echoes queued before it */
    }
}

static inline void tnet_echo_conn_cb(uv_stream_t *srv, int status)
{
    struct tnet_echo *e = srv->data;

    ck_assert_int_eq(status, 0);
    for (unsigned i = 0; i < TNET_MAX_ECHO; i++) {
        struct tnet_echo_conn *c = &e->conn[i];

        if (c->used)
            continue;
        c->used = true;
        c->echo = e;
        uv_tcp_init(srv->loop, &c->tcp);
        c->tcp.data = c;
        ck_assert_int_eq(uv_accept(srv, (uv_stream_t *)&c->tcp), 0);
        ck_assert_int_eq(uv_read_start((uv_stream_t *)&c->tcp, tnet_echo_alloc, tnet_echo_read), 0);
        return;
    }
    ck_abort_msg("too many connections to the target");
}

/* The port TCP handle h is bound to. */
static inline uint16_t tnet_tcp_port(uv_tcp_t *h)
{
    struct sockaddr_storage ss;
    int len = sizeof(ss);

    ck_assert_int_eq(uv_tcp_getsockname(h, (struct sockaddr *)&ss, &len), 0);
    return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

/* Listen on 127.0.0.1:0 on loop; e->port is the port. */
static inline void tnet_echo_start(uv_loop_t *loop, struct tnet_echo *e)
{
    struct sockaddr_in sa;

    uv_ip4_addr("127.0.0.1", 0, &sa);
    uv_tcp_init(loop, &e->srv);
    e->srv.data = e;
    ck_assert_int_eq(uv_tcp_bind(&e->srv, (struct sockaddr *)&sa, 0), 0);
    ck_assert_int_eq(uv_listen((uv_stream_t *)&e->srv, 8, tnet_echo_conn_cb), 0);
    e->port = tnet_tcp_port(&e->srv);
}

/* Close the server and its connections; run the loop afterwards. */
static inline void tnet_echo_close(struct tnet_echo *e)
{
    for (unsigned i = 0; i < TNET_MAX_ECHO; i++)
        if (e->conn[i].used)
            uv_close((uv_handle_t *)&e->conn[i].tcp, NULL);
    uv_close((uv_handle_t *)&e->srv, NULL);
}

/* ---- the opener's ends of streams ---- */

#define TNET_MAX_ENDS 8
#define TNET_MAX_LOG  64

struct tnet_ends;

/* One stream as its opener (the test) holds it, through the real stream
 * engine; byte i it writes, and expects back, is (uint8_t)(i * 7 + 1). */
struct tnet_end {
    struct tnet_ends *ends;
    struct stream *s;      /* NULL once closed and freed */
    unsigned way;          /* the test's chain or way it goes on */
    uint32_t total;        /* bytes to write, then FIN unless ends->no_fin */
    uint32_t written, got; /* written into the stream; echoed bytes read back */
    uint64_t seen;         /* while ends->capture: the end of the new bytes the far end sent */
    uint8_t sid[STREAM_SID];
    bool opened, eof, closed, bad;
    uint8_t reason; /* once closed */
};

/* A test's stream ends, its frames carried by the test's put(). The struct
 * is the test's (in its world, which must not move): it sets ctx and put,
 * opens ends with tnet_end_open, hands the frames that come back to
 * tnet_end_input, and frees the streams left with tnet_ends_free. */
struct tnet_ends {
    void *ctx; /* the test's, for put */
    /* Carry frame f (len bytes) of end e on e->way; 0 or an error. */
    int (*put)(struct tnet_ends *ends, struct tnet_end *e, const uint8_t *f, size_t len);
    struct tnet_end end[TNET_MAX_ENDS];
    bool no_fin;                /* streams do not end once they wrote their total */
    bool capture;               /* frames back are logged (end[].seen), not taken */
    unsigned log[TNET_MAX_LOG]; /* while capture: the end of each frame with new bytes */
    unsigned n_log;
    uint64_t captured;     /* new bytes logged */
    struct tnet_end *grab; /* its next frame goes to grabbed, not to put */
    uint8_t grabbed[STREAM_FRAME_MAX];
    size_t grabbed_len;
};

/* Write what e has room for, up to its total; then FIN unless no_fin. */
static inline void tnet_end_write(struct tnet_end *e)
{
    uint8_t *p;
    size_t n;

    while (e->written < e->total && (n = stream_wbuf(e->s, &p)) > 0) {
        if (n > e->total - e->written)
            n = e->total - e->written;
        for (size_t i = 0; i < n; i++)
            p[i] = (uint8_t)((e->written + i) * 7 + 1);
        e->written += (uint32_t)n;
        stream_wrote(e->s, n);
        if (!e->s)
            return;
    }
    if (e->written == e->total && !e->ends->no_fin)
        stream_shutdown(e->s);
}

static inline int tnet_end_send(struct stream *s, const uint8_t *f, size_t len)
{
    struct tnet_end *e = s->ctx;
    struct tnet_ends *ends = e->ends;

    if (ends->grab == e) {
        memcpy(ends->grabbed, f, len);
        ends->grabbed_len = len;
        ends->grab = NULL;
        return 0;
    }
    return ends->put(ends, e, f, len);
}

static inline void tnet_end_event(struct stream *s, enum stream_event ev)
{
    struct tnet_end *e = s->ctx;
    const uint8_t *p;
    size_t n;

    switch (ev) {
    case SE_OPENED:
        e->opened = true;
        break;
    case SE_READABLE:
        while ((n = stream_rbuf(s, &p)) > 0) {
            for (size_t i = 0; i < n; i++)
                if (p[i] != (uint8_t)((e->got + i) * 7 + 1))
                    e->bad = true;
            e->got += (uint32_t)n;
            stream_consumed(s, n);
            if (e->closed)
                return;
        }
        e->eof = stream_eof(s);
        break;
    case SE_WRITABLE:
        tnet_end_write(e);
        break;
    case SE_CLOSED:
        e->closed = true;
        e->reason = s->reason;
        stream_free(s);
        e->s = NULL;
        break;
    }
}

static const struct stream_ops tnet_end_ops = {.send = tnet_end_send, .event = tnet_end_event};

/* Open end i with sid and open args (alen bytes) on loop, on the test's
 * way, carrying frames of up to mtu bytes and writing total bytes. */
static inline void tnet_end_open(struct tnet_ends *ends, uv_loop_t *loop, unsigned i, unsigned way,
                                 uint32_t total, const uint8_t sid[STREAM_SID], const uint8_t *args,
                                 size_t alen, size_t mtu)
{
    struct tnet_end *e = &ends->end[i];
    uint8_t id[STREAM_SID];

    memcpy(id, sid, STREAM_SID); /* sid may be e->sid, cleared below */
    memset(e, 0, sizeof(*e));
    e->ends = ends;
    e->way = way;
    e->total = total;
    memcpy(e->sid, id, STREAM_SID);
    ck_assert_int_eq(stream_new(loop, &tnet_end_ops, e, id, args, alen, mtu, 30000, &e->s), 0);
    tnet_end_write(e);
    stream_pump(e->s);
}

/* While capture: log a frame of end i that carries bytes past those seen
 * before; true when the frame is not to be taken (no ack goes back). */
static inline bool tnet_end_capture(struct tnet_ends *ends, unsigned i, const uint8_t *f,
                                    size_t len)
{
    struct tnet_end *e = &ends->end[i];
    uint64_t end = ld_le64(f + 10) + (len - STREAM_HDR);

    if (!ends->capture || (f[0] != SF_DATA && f[0] != SF_OPENED))
        return false;
    if (end > e->seen) {
        ck_assert_uint_lt(ends->n_log, TNET_MAX_LOG);
        ends->log[ends->n_log++] = i;
        ends->captured += end - e->seen;
        e->seen = end;
    }
    return true;
}

/* The end that opened sid, or -1: a frame back for it. */
static inline int tnet_end_find(const struct tnet_ends *ends, const uint8_t *sid)
{
    for (unsigned i = 0; i < TNET_MAX_ENDS; i++)
        if (ends->end[i].ends && memcmp(ends->end[i].sid, sid, STREAM_SID) == 0)
            return (int)i;
    return -1;
}

/* Frame f (len bytes, a whole header at least) back for end i: to its
 * stream, unless captured or the stream is gone (a late frame). */
static inline void tnet_end_input(struct tnet_ends *ends, unsigned i, const uint8_t *f, size_t len)
{
    struct tnet_end *e = &ends->end[i];

    ck_assert_uint_ge(len, STREAM_HDR);
    if (e->s && !tnet_end_capture(ends, i, f, len))
        ck_assert_int_eq(stream_input(e->s, f, len), 0);
}

/* How many ends are closed; how many were opened. */
static inline unsigned tnet_ends_closed(const struct tnet_ends *ends)
{
    unsigned n = 0;

    for (unsigned i = 0; i < TNET_MAX_ENDS; i++)
        n += ends->end[i].closed;
    return n;
}

static inline unsigned tnet_ends_opened(const struct tnet_ends *ends)
{
    unsigned n = 0;

    for (unsigned i = 0; i < TNET_MAX_ENDS; i++)
        n += ends->end[i].opened;
    return n;
}

/* Free the streams still open. */
static inline void tnet_ends_free(struct tnet_ends *ends)
{
    for (unsigned i = 0; i < TNET_MAX_ENDS; i++) {
        stream_free(ends->end[i].s);
        ends->end[i].s = NULL;
    }
}

/* ---- relays and bodies ---- */

/* Relay r's counters, by value, for one check. */
static inline struct relay_stats tnet_rstats(const struct relay *r)
{
    struct relay_stats st;

    relay_stats(r, &st);
    return st;
}

/* Write into a the arguments of an INTRO_ESTABLISH for cookie, expiring at
 * exp (wall ms), signed by the hidden node id for the introduction relay
 * relay_pk. */
static inline void tnet_intro_est(uint8_t a[BODY_INTRO_EST_LEN], const struct ovl_identity *id,
                                  const uint8_t *cookie, const uint8_t *relay_pk, uint64_t exp)
{
    uint8_t msg[INTRO_SIG_MSG_LEN];

    memcpy(a, cookie, BODY_COOKIE);
    memcpy(a + BODY_COOKIE, id->pk, OVL_ED25519_PK);
    st_le64(a + BODY_INTRO_EXP, exp);
    intro_sig_msg(msg, relay_pk, cookie, exp);
    ck_assert_int_eq(ovl_sign(id, msg, sizeof(msg), a + BODY_INTRO_SIG), 0);
}

/* A suite called name of one test case, also called name, whose tests may
 * each take timeout_s; the caller adds its tests to *tc. */
static inline Suite *tnet_suite(const char *name, unsigned timeout_s, TCase **tc)
{
    Suite *s = suite_create(name);

    *tc = tcase_create(name);
    tcase_set_timeout(*tc, (double)timeout_s);
    suite_add_tcase(s, *tc);
    return s;
}

/* ---- the world ---- */

/* The fields a test's world struct T begins with, for N nodes (see the
 * top of this file): loopfix.h's, the nodes, their directory and relay
 * contexts (NULL but for relays), and what tnet_chain_open and
 * tnet_chain_wait wait for. */
#define TNET_WORLD(T, N)                                                                           \
    uv_loop_t loop;                                                                                \
    uv_timer_t deadline, poll;                                                                     \
    bool (*done)(T * t);                                                                           \
    void (*pump)(T * t); /* called every poll, before done() */                                    \
    bool timed_out;                                                                                \
    struct node n[N];                                                                              \
    struct dir *dir[N];                                                                            \
    struct relay *relay[N];                                                                        \
    struct tnet_chain *tnet_wait_chain;                                                            \
    unsigned tnet_wait_bodies

/* The number of nodes in world t. */
#define TNET_NODES(t) ((unsigned)(sizeof((t)->n) / sizeof((t)->n[0])))

/* Define, once after the world struct T, loopfix.h's functions for T and
 * the ones the top of this file lists. Chains wait for SETUP_OK 5 s. */
#define TNET_DEFINE(T)                                                                             \
    LOOPFIX_DEFINE(T, 2)                                                                           \
                                                                                                   \
    static inline void tnet_open(T *t)                                                             \
    {                                                                                              \
        memset(t, 0, sizeof(*t));                                                                  \
        ck_assert_int_eq(uv_loop_init(&t->loop), 0);                                               \
        t->loop.data = t;                                                                          \
        loopfix_init(t);                                                                           \
    }                                                                                              \
                                                                                                   \
    static inline void tnet_relay(T *t, unsigned i, const struct dir_opts *o,                      \
                                  const struct dir_bootstrap_spec *bs,                             \
                                  const struct peer_spec *peer, const struct relay_opts *ro)       \
    {                                                                                              \
        tnet_join(&t->loop, t->n, t->dir, i, ROLE_RELAY, o, bs);                                   \
        ck_assert_int_eq(relay_init(&t->n[i], ro, &t->relay[i]), 0);                               \
        tnet_start(t->n, i, peer);                                                                 \
    }                                                                                              \
                                                                                                   \
    static inline void tnet_client(T *t, unsigned i, const struct dir_opts *o,                     \
                                   const struct dir_bootstrap_spec *bs,                            \
                                   const struct peer_spec *peer)                                   \
    {                                                                                              \
        tnet_join(&t->loop, t->n, t->dir, i, ROLE_CLIENT, o, bs);                                  \
        tnet_start(t->n, i, peer);                                                                 \
    }                                                                                              \
                                                                                                   \
    static inline void tnet_down(T *t)                                                             \
    {                                                                                              \
        for (unsigned i = 0; i < TNET_NODES(t); i++)                                               \
            relay_stop(t->relay[i]);                                                               \
        tnet_stop(t->n, t->dir, TNET_NODES(t));                                                    \
        loopfix_close(t);                                                                          \
        uv_run(&t->loop, UV_RUN_DEFAULT);                                                          \
        ck_assert_int_eq(uv_loop_close(&t->loop), 0);                                              \
    }                                                                                              \
                                                                                                   \
    static inline void tnet_release(T *t)                                                          \
    {                                                                                              \
        for (unsigned i = 0; i < TNET_NODES(t); i++)                                               \
            relay_free(t->relay[i]);                                                               \
        tnet_free(t->n, t->dir, TNET_NODES(t));                                                    \
    }                                                                                              \
                                                                                                   \
    static inline bool tnet_all_registered(T *t)                                                   \
    {                                                                                              \
        return tnet_registered(t->dir, TNET_NODES(t));                                             \
    }                                                                                              \
                                                                                                   \
    static inline bool tnet_got_setup_ok(T *t)                                                     \
    {                                                                                              \
        return t->tnet_wait_chain->setup_ok;                                                       \
    }                                                                                              \
                                                                                                   \
    static inline bool tnet_got_bodies(T *t)                                                       \
    {                                                                                              \
        return t->tnet_wait_chain->n_bodies >= t->tnet_wait_bodies;                                \
    }                                                                                              \
                                                                                                   \
    static inline void tnet_chain_open(T *t, struct tnet_chain *c, unsigned from, unsigned to)     \
    {                                                                                              \
        const unsigned path[1] = {to};                                                             \
                                                                                                   \
        tnet_chain_reset(c, &t->n[from], &t->n[to]);                                               \
        tnet_setup(t->n, t->dir, from, tnet_chain_link(c), path, 1, 600, c->keys,                  \
                   &tnet_chain_owner, c, &c->id);                                                  \
        t->tnet_wait_chain = c;                                                                    \
        ck_assert(run_until(t, tnet_got_setup_ok, 5000));                                          \
    }                                                                                              \
                                                                                                   \
    static inline const struct tnet_body *tnet_chain_wait(T *t, struct tnet_chain *c, unsigned i,  \
                                                          uint64_t ms)                             \
    {                                                                                              \
        t->tnet_wait_chain = c;                                                                    \
        t->tnet_wait_bodies = i + 1;                                                               \
        ck_assert(run_until(t, tnet_got_bodies, ms));                                              \
        return &c->bodies[i];                                                                      \
    }

#endif
