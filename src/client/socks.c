/* socks.c - the client's SOCKS5 front end and the streams it opens on the
 * chains of their lines (docs/PROTOCOL.md, sections 19.13 and 20;
 * client_int.h).
 *
 * A connection on a [socks] listen address speaks SOCKS5 (socks5.h) until
 * its CONNECT request is complete; then a stream (chain/stream.h) with a
 * random sid opens toward the target, carrying the request's target and
 * whatever bytes the application sent after it. The SOCKS reply waits for
 * the far end's answer: success on SE_OPENED, the code of its reason
 * otherwise. The socket and the stream are joined (chain/stsock.h) as soon
 * as the stream exists: bytes the application sends before the reply ride
 * behind the open, and nothing comes back before SE_OPENED. Each stream
 * is placed on a line (lines.c): one of its class (its credentials, or
 * none) whose exit takes its target; until then, and while its line has no
 * ready chain, it sends nothing. Frames go out as BODY_STREAM bodies on
 * the line's current chain; BODY_STREAM_BACK bodies from that line's exit
 * come back here by sid. When a line's chain changes (replaced, repaired
 * in place), the streams of that line go back to their last acknowledged
 * byte on the new one.
 *
 * A stream to <node id>.ovl goes to that node's services (docs/PROTOCOL.md
 * 20.6) on a line of its class, whatever the line's exit: once the
 * directory gave the node's onion key, its frames go sealed end to end
 * (srec.h) in BODY_DELIVER bodies to the node, never on a chain the node
 * is a relay of, and its records come back in BODY_DELIVER_BACK. The name
 * is never resolved: an ID the directory does not know is unreachable.
 *
 * A connection record lives until both its socket is closed and its stream
 * is freed (a finished stream lingers after the socket closed).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utlist.h>

#include "chain/body.h"
#include "chain/stsock.h"
#include "client/client_int.h"
#include "client/socks5.h"
#include "client/srec.h"
#include "lib/bytes.h"
#include "lib/clock.h"
#include "lib/crypto.h"
#include "lib/htab.h"
#include "lib/log.h"
#include "lib/uri.h"

#define SOCKS_MTU      (ONION_BODY - BODY_HDR) /* a frame fills a body's arguments */
#define SOCKS_IDLE_MS  300000                  /* a stream with no frame for 5 min ends */
#define SOCKS_HELLO_MS 10000                   /* the SOCKS handshake must end within this */

/* Bits of struct socks_conn's flags. */
enum {
    SCF_HELLO = 1u << 0,     /* the SOCKS handshake is going on */
    SCF_REPLIED = 1u << 1,   /* the SOCKS reply went out */
    SCF_SOCK_GONE = 1u << 2, /* the socket's close callback ran */
    SCF_WAIT = 1u << 3,      /* the stream waits for the view of the exits */
    SCF_LOOKUP = 1u << 4,    /* a .ovl name's lookup is out (dir_cancel) */
};

struct socks_conn {
    struct stsock ss; /* embeds the socket: first, its data is the record */
    struct client *c;
    struct socks_conn *prev, *next;   /* c->socks_conns */
    UT_hash_handle hh;                /* c->streams, by sid */
    struct cline *line;               /* the line its stream is on, once placed */
    struct socks_conn *lprev, *lnext; /* line->conns */
    struct stream *s;
    struct srec *rec;             /* a .ovl stream's keys, else NULL */
    uint8_t dest[OVL_ED25519_PK]; /* a .ovl stream's node */
    uint8_t sid[STREAM_SID];
    unsigned flags;
    uint64_t since_ms;
    struct socks5 p;
    uint8_t in[600];        /* handshake bytes not yet parsed */
    size_t in_len, in_used; /* in_used: of them, the request's (a .ovl lookup) */
};

struct socks_lis {
    uv_tcp_t tcp;
    struct client *c;
};

static const uint8_t reason_rep[SR_MAX + 1] = {
    [SR_DONE] = SOCKS5_REP_FAIL,
    [SR_POLICY] = SOCKS5_REP_NOT_ALLOWED,
    [SR_NET_UNREACH] = SOCKS5_REP_NET_UNREACH,
    [SR_HOST_UNREACH] = SOCKS5_REP_HOST_UNREACH,
    [SR_REFUSED] = SOCKS5_REP_REFUSED,
    [SR_TIMEOUT] = SOCKS5_REP_TTL_EXPIRED,
    [SR_PROTOCOL] = SOCKS5_REP_FAIL,
    [SR_LIMIT] = SOCKS5_REP_FAIL,
    [SR_UNKNOWN] = SOCKS5_REP_FAIL,
    [SR_PATH] = SOCKS5_REP_FAIL,
};

/* ---- records ---- */

static void conn_maybe_free(struct socks_conn *sc)
{
    if (!(sc->flags & SCF_SOCK_GONE) || sc->s)
        return;
    if (sc->flags & SCF_LOOKUP)
        dir_cancel(sc->c->n->dir, sc);
    DL_DELETE(sc->c->socks_conns, sc);
    sc->c->n_socks_conns--;
    srec_wipe(sc->rec);
    free(sc->rec);
    free(sc);
}

static void conn_sock_closed(struct stsock *ss)
{
    struct socks_conn *sc = (struct socks_conn *)ss;

    sc->flags |= SCF_SOCK_GONE;
    conn_maybe_free(sc);
}

/* Let the stream go (it closed, or the client stops). */
static void conn_drop_stream(struct socks_conn *sc)
{
    if (!sc->s)
        return;
    if (sc->line) {
        stream_set_pool(sc->s, NULL); /* its bytes in flight leave the line's window */
        DL_DELETE2(sc->line->conns, sc, lprev, lnext);
        if (--sc->line->streams == 0)
            sc->line->idle_ms = clock_now_ms();
        sc->line = NULL;
    }
    HASH_DEL(sc->c->streams, sc);
    stream_free(sc->s);
    sc->s = NULL;
    sc->ss.s = NULL;
    sc->c->st.streams_active--;
}

/* Write a handshake reply or the SOCKS reply: a few bytes on a socket
 * that has written nothing else yet, so they go at once or the peer is
 * not worth waiting for. False when they did not all go. */
static bool conn_put(struct socks_conn *sc, const uint8_t *p, size_t n)
{
    uv_buf_t b = uv_buf_init((char *)(uintptr_t)p, (unsigned)n);

    return uv_try_write((uv_stream_t *)&sc->ss.tcp, &b, 1) == (int)n;
}

/* Send the SOCKS reply with code rep (once); a failure closes the socket
 * behind it. */
static void conn_reply(struct socks_conn *sc, uint8_t rep)
{
    uint8_t out[SOCKS5_REPLY_LEN];

    if (sc->flags & (SCF_REPLIED | SCF_SOCK_GONE) || (sc->ss.flags & SSF_CLOSING))
        return;
    sc->flags |= SCF_REPLIED;
    if (socks5_reply(out, sizeof(out), rep, NULL, 0) < 0 || !conn_put(sc, out, sizeof(out)) ||
        rep != SOCKS5_REP_OK)
        stsock_close(&sc->ss);
}

/* ---- the stream's side ---- */

static int conn_send(struct stream *s, const uint8_t *f, size_t len)
{
    struct socks_conn *sc = s->ctx;
    struct client *c = sc->c;
    struct cchain *ch = sc->line ? sc->line->current : NULL;
    uint8_t body[ONION_BODY];
    struct link *l;
    int rc;

    if (!ch || ch->state != CCH_READY || !(l = link_by_serial(c->n, ch->link_serial)))
        return OVL_ECLOSED; /* the next chain takes it from the last ack */
    if (sc->rec && cchain_crosses(ch, sc->dest)) {
        cchain_avoid(sc->line, sc->dest); /* the node would see the route and the stream */
        return OVL_ECLOSED;
    }
    if (c->o.constant_rate && !c->stream_slots)
        return OVL_EAGAIN; /* the rate timer's next free slot pumps again */
    if (!bw_node_may_send(&c->n->tp_env, l->tp))
        return OVL_EAGAIN; /* [node] rate: the tokens back bring the link's drained() */
    memset(body, 0, sizeof(body));
    if (sc->rec) {
        len = srec_seal(sc->rec, SREC_FWD, body + BODY_HDR + OVL_ED25519_PK, f, len);
        memcpy(body + BODY_HDR, sc->dest, OVL_ED25519_PK);
        body_hdr_put(body, BODY_DELIVER, (uint16_t)(OVL_ED25519_PK + len));
    } else {
        body_hdr_put(body, BODY_STREAM, (uint16_t)len);
        memcpy(body + BODY_HDR, f, len);
    }
    rc = cchain_fwd_send(ch, l, ch->length, body);
    if (rc == 0) {
        c->st.stream_cells_out++;
        if (c->stream_slots)
            c->stream_slots--;
    }
    return rc; /* OVL_EAGAIN: the link's drained() pumps again */
}

static void conn_event(struct stream *s, enum stream_event ev)
{
    struct socks_conn *sc = s->ctx;

    switch (ev) {
    case SE_OPENED:
        sc->c->st.streams_opened++;
        conn_reply(sc, SOCKS5_REP_OK);
        if (stsock_start(&sc->ss) != 0)
            stream_reset(s, SR_DONE);
        break;
    case SE_READABLE:
    case SE_WRITABLE:
        stsock_event(&sc->ss, ev);
        break;
    case SE_CLOSED:
        if (s->reason != SR_DONE)
            sc->c->st.streams_failed++;
        conn_drop_stream(sc);
        if (!(sc->flags & SCF_REPLIED))
            conn_reply(sc, reason_rep[s->reason <= SR_MAX ? s->reason : SR_PROTOCOL]);
        else
            stsock_close(&sc->ss);
        conn_maybe_free(sc);
        break;
    }
}

static const struct stream_ops conn_ops = {conn_send, conn_event};

/* The socket finished both ways (err 0: the stream lingers on its own) or
 * failed (the far end hears RESET). */
static void conn_sock_done(struct stsock *ss, int err)
{
    struct socks_conn *sc = (struct socks_conn *)ss;

    if (err && sc->s)
        stream_reset(sc->s, SR_DONE);
    else
        stsock_close(ss);
}

/* ---- the handshake ---- */

/* The request's target. */
static void conn_target(const struct socks_conn *sc, struct stream_target *t)
{
    const struct socks5_req *rq = &sc->p.req;

    memset(t, 0, sizeof(*t));
    t->atyp = rq->atyp;
    t->port = rq->port;
    memcpy(t->addr, rq->addr, sizeof(t->addr));
    memcpy(t->name, rq->host, sizeof(t->name));
}

/* Put sc's stream on a line of its class whose exit takes its target
 * (lines_place; any line of its class for a .ovl stream, which needs no
 * exit's policy). It waits while the view of the exits is fetched; with
 * no line for it, it ends with the reply that says why, having sent
 * nothing: 0x02 when no registered exit takes the target, else 0x01. */
static void conn_place(struct socks_conn *sc)
{
    struct client *c = sc->c;
    struct socks5_req *rq = &sc->p.req;
    bool keyed = rq->method == SOCKS5_METHOD_USERPASS;
    uint8_t key[CLIENT_CLASS_KEY];
    struct stream_target t;
    int rc;

    conn_target(sc, &t);
    if (keyed)
        lines_class_key(c->class_secret, rq->user, rq->user_len, rq->pass, rq->pass_len, key);
    rc = lines_place(c, keyed ? key : NULL, sc->rec ? NULL : &t, &sc->line);
    ovl_wipe(key, sizeof(key));
    sc->flags &= ~SCF_WAIT;
    if (rc == OVL_EAGAIN) {
        sc->flags |= SCF_WAIT; /* socks_view comes back */
        return;
    }
    ovl_wipe(rq->user, sizeof(rq->user)); /* the class is known: the credentials go */
    ovl_wipe(rq->pass, sizeof(rq->pass));
    if (rc) {
        if (rc == OVL_EPERM)
            c->st.streams_no_exit++;
        else
            c->st.socks_refused++;
        log_info(&c->n->log, "socks: no chain for a stream: %s", ovl_strerror(rc));
        stream_reset(sc->s, rc == OVL_EPERM ? SR_POLICY : SR_LIMIT); /* no line: nothing goes */
        return;
    }
    DL_APPEND2(sc->line->conns, sc, lprev, lnext);
    sc->line->streams++;
    stream_set_pool(sc->s, &sc->line->pool); /* the line outlives it: conn_drop_stream */
    cchain_maybe_build(c);
    stream_rewind(sc->s); /* it sent nothing yet: the open goes now, if the chain is ready */
}

void socks_view(struct client *c)
{
    struct socks_conn *sc, *tmp;

    DL_FOREACH_SAFE(c->socks_conns, sc, tmp)
    {
        if ((sc->flags & SCF_WAIT) && sc->s)
            conn_place(sc);
    }
}

/* Open the stream (open args alen bytes, frames of mtu) with the bytes
 * that followed the request, and place it. */
static void conn_stream(struct socks_conn *sc, const uint8_t *args, size_t alen, size_t mtu)
{
    struct client *c = sc->c;
    size_t used = sc->in_used, n;
    uint8_t *p;

    if (c->st.streams_active >= CLIENT_MAX_STREAMS ||
        stream_new(c->n->loop, &conn_ops, sc, sc->sid, args, alen, mtu, SOCKS_IDLE_MS, &sc->s) !=
            0) {
        conn_reply(sc, SOCKS5_REP_FAIL);
        return;
    }
    sc->ss.s = sc->s;
    HASH_ADD(hh, c->streams, sid, STREAM_SID, sc);
    c->st.streams_active++;
    /* Bytes the application sent after its request go with the open. */
    while (used < sc->in_len && (n = stream_wbuf(sc->s, &p)) > 0) {
        if (n > sc->in_len - used)
            n = sc->in_len - used;
        memcpy(p, sc->in + used, n);
        used += n;
        stream_wrote(sc->s, n);
    }
    conn_place(sc);
    /* Join the socket now: what the application sends before the reply
     * goes with the open (within the far end's credit), and a client
     * that gives up is noticed. Nothing comes back before SE_OPENED. */
    if (sc->s && stsock_start(&sc->ss) != 0)
        stream_reset(sc->s, SR_DONE);
}

/* The directory answered for a .ovl stream's node: seal to its onion
 * key, or the name is unreachable. */
static void conn_looked_up(void *arg, int err, const struct desc *d, const struct idesc *in)
{
    struct socks_conn *sc = arg;
    uint8_t args[2];

    sc->flags &= ~SCF_LOOKUP;
    if (err || (d && !(d->flags & DESC_ENDPOINT)) || (!d && !in) ||
        !(sc->rec = malloc(sizeof(*sc->rec))) ||
        srec_init(sc->rec, d ? d->onion_pk : in->onion_pk, sc->sid, clock_wall_ms()) != 0) {
        conn_reply(sc, SOCKS5_REP_HOST_UNREACH);
        return;
    }
    st_be16(args, sc->p.req.port); /* a service's open names only its port */
    conn_stream(sc, args, sizeof(args), SREC_FWD_MTU);
}

/* The request is complete: open a stream to its target with the bytes
 * that followed it; a .ovl name's node is looked up first. */
static void conn_open(struct socks_conn *sc, size_t used)
{
    struct client *c = sc->c;
    const struct socks5_req *rq = &sc->p.req;
    uint8_t args[STREAM_ARGS_MAX + 4];
    struct stream_target t;
    int rc = 0, alen;

    uv_read_stop((uv_stream_t *)&sc->ss.tcp);
    sc->flags &= ~SCF_HELLO;
    sc->in_used = used;
    ovl_random(sc->sid, sizeof(sc->sid));
    if (rq->atyp == SOCKS5_ATYP_NAME)
        rc = socks5_is_ovl_name(rq->host, sc->dest);
    if (rc < 0 || (rc == 1 && memcmp(sc->dest, c->n->id.pk, OVL_ED25519_PK) == 0)) {
        conn_reply(sc, SOCKS5_REP_HOST_UNREACH); /* no node, or ourselves */
        return;
    }
    if (rc == 1) {
        if (dir_lookup(c->n->dir, sc->dest, conn_looked_up, sc) != 0)
            conn_reply(sc, SOCKS5_REP_FAIL);
        else
            sc->flags |= SCF_LOOKUP;
        return;
    }
    conn_target(sc, &t);
    alen = stream_target_put(args, &t);
    if (alen < 0) {
        conn_reply(sc, SOCKS5_REP_FAIL);
        return;
    }
    conn_stream(sc, args, (size_t)alen, SOCKS_MTU);
}

static void hello_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
    struct socks_conn *sc = h->data;

    (void)hint;
    b->base = (char *)sc->in + sc->in_len;
    b->len = sizeof(sc->in) - sc->in_len;
}

static void hello_read(uv_stream_t *t, ssize_t nread, const uv_buf_t *b)
{
    struct socks_conn *sc = t->data;
    size_t used;
    int rc;

    (void)b;
    if (nread < 0 || (nread == 0 && sc->in_len == sizeof(sc->in))) {
        stsock_close(&sc->ss); /* gone, or more than any request before its end */
        return;
    }
    sc->in_len += (size_t)nread;
    for (;;) {
        used = 0;
        rc = socks5_feed(&sc->p, sc->in, sc->in_len, &used);
        if (rc == SOCKS5_READY) {
            conn_open(sc, used);
            return;
        }
        memmove(sc->in, sc->in + used, sc->in_len - used);
        sc->in_len -= used;
        if (rc == SOCKS5_MORE)
            return;
        /* A method or auth reply (the request follows), or a failure's
         * reply (if it has one) and the end. */
        if ((sc->p.out_len && !conn_put(sc, sc->p.out, sc->p.out_len)) || rc < 0) {
            if (rc < 0)
                sc->c->st.socks_refused++;
            stsock_close(&sc->ss);
            return;
        }
    }
}

static void on_socks_conn(uv_stream_t *server, int status)
{
    struct socks_lis *sl = server->data;
    struct client *c = sl->c;
    struct socks_conn *sc;

    if (status < 0 || !(sc = calloc(1, sizeof(*sc))))
        return;
    if (stsock_init(&sc->ss, c->ssenv, NULL, conn_sock_done, conn_sock_closed) != 0) {
        free(sc);
        return;
    }
    sc->c = c;
    sc->flags = SCF_HELLO;
    sc->since_ms = clock_now_ms();
    socks5_init(&sc->p);
    DL_APPEND(c->socks_conns, sc);
    c->n_socks_conns++;
    if (uv_accept(server, (uv_stream_t *)&sc->ss.tcp) != 0 ||
        c->n_socks_conns > CLIENT_MAX_SOCKS_CONNS ||
        uv_read_start((uv_stream_t *)&sc->ss.tcp, hello_alloc, hello_read) != 0) {
        c->st.socks_refused++;
        stsock_close(&sc->ss);
    }
}

/* ---- the chain's side ---- */

/* Pump the streams of line, in turn, once its window has room for one
 * held back. */
static void line_wake(struct cline *line)
{
    STREAM_POOL_PUMP(&line->pool, line->conns, struct socks_conn, s, lprev, lnext);
}

void socks_back(struct cchain *ch, const uint8_t *f, size_t len)
{
    struct client *c = ch->c;
    const uint8_t *sid, *args;
    struct socks_conn *sc;
    uint8_t type;
    size_t alen;

    if (stream_frame_peek(f, len, &type, &sid, &args, &alen) != 0) {
        c->st.dropped_bad++;
        return;
    }
    HASH_FIND(hh, c->streams, sid, STREAM_SID, sc);
    if (!sc || sc->line != ch->line || sc->rec) {
        /* Ended here already (the exit's idle timeout ends it), not a
         * stream of this chain's line, or a .ovl stream, whose frames
         * come only sealed by its node. */
        c->st.stream_unknown++;
        return;
    }
    c->st.stream_cells_in++;
    if (stream_input(sc->s, f, len) != 0)
        c->st.dropped_bad++;
    line_wake(ch->line); /* its acks may have made room for the line's other streams */
}

void socks_rec_back(struct cchain *ch, const uint8_t *dest, const uint8_t *rec, size_t len)
{
    struct client *c = ch->c;
    uint8_t buf[SREC_MAX];
    const uint8_t *sid, *f;
    struct socks_conn *sc;
    size_t flen;
    bool open;

    if (srec_peek(rec, len, &sid, &open) != 0) {
        c->st.service_records_bad++;
        return;
    }
    HASH_FIND(hh, c->streams, sid, STREAM_SID, sc);
    if (!sc || !sc->rec || sc->line != ch->line || memcmp(sc->dest, dest, OVL_ED25519_PK) != 0) {
        c->st.stream_unknown++;
        return;
    }
    if (srec_open(sc->rec, SREC_BACK, rec, len, buf, &f, &flen, NULL) != 0) {
        c->st.service_records_bad++; /* dropped: it never ends the stream */
        return;
    }
    c->st.stream_cells_in++;
    if (stream_input(sc->s, f, flen) != 0)
        c->st.dropped_bad++;
    ovl_wipe(buf, sizeof(buf));
    line_wake(ch->line);
}

void socks_unreachable(struct client *c, const uint8_t *dest)
{
    struct socks_conn *sc, *tmp;

    HASH_ITER(hh, c->streams, sc, tmp)
    {
        if (sc->rec && !(sc->s->flags & STF_OPENED) && memcmp(sc->dest, dest, OVL_ED25519_PK) == 0)
            stream_reset(sc->s, SR_HOST_UNREACH);
    }
}

/* Whether line has a ready chain for its streams; it takes the news of a
 * change of chain: then what was in flight may be lost (*moved). */
static bool line_ready(struct cline *line, bool *moved)
{
    if (!line->current || line->current->state != CCH_READY || !line->conns)
        return false;
    *moved = line->flags & CLF_MOVED;
    line->flags &= ~CLF_MOVED;
    return true;
}

void socks_pump(struct client *c, bool main)
{
    struct socks_conn *sc, *tmp;
    struct cline *line;
    bool moved;

    DL_FOREACH(c->lines, line)
    {
        if ((line == &c->main && !main) || !line_ready(line, &moved))
            continue;
        DL_FOREACH_SAFE2(line->conns, sc, tmp, lnext)
        {
            if (moved)
                stream_rewind(sc->s);
            else
                stream_pump(sc->s);
        }
    }
}

bool socks_slot(struct cline *line)
{
    struct client *c = line->c;
    struct socks_conn *sc, *tmp;
    uint64_t before = c->st.stream_cells_out;
    bool moved;

    if (!line_ready(line, &moved))
        return false;
    c->stream_slots = 1;
    DL_FOREACH_SAFE2(line->conns, sc, tmp, lnext)
    {
        if (moved)
            stream_rewind(sc->s);
        else
            stream_pump(sc->s);
        if (c->st.stream_cells_out != before && !moved && sc->line == line && line->conns->lnext) {
            /* Its turn is over: to the back of the line, so each stream
             * gets slots in turn. */
            DL_DELETE2(line->conns, sc, lprev, lnext);
            DL_APPEND2(line->conns, sc, lprev, lnext);
            break;
        }
    }
    c->stream_slots = 0;
    return c->st.stream_cells_out != before;
}

uint64_t socks_bytes_held(const struct client *c)
{
    const struct socks_conn *sc;
    uint64_t n = 0;

    DL_FOREACH(c->socks_conns, sc)
    {
        n += sizeof(*sc) + (sc->rec ? sizeof(*sc->rec) : 0);
        if (sc->s)
            n += stream_held(sc->s);
    }
    return n;
}

void socks_tick(struct client *c, uint64_t now)
{
    struct socks_conn *sc, *tmp;
    struct cline *line;

    /* Room a stream made as it closed outside stream_input (a timeout,
     * the application) reaches the line's waiting streams here. */
    DL_FOREACH(c->lines, line)
    {
        line_wake(line);
    }

    /* _SAFE: a reset stream whose socket is already closed frees its
     * record before the loop moves on. */
    DL_FOREACH_SAFE(c->socks_conns, sc, tmp)
    {
        if ((sc->flags & SCF_HELLO) && now - sc->since_ms > SOCKS_HELLO_MS) {
            sc->flags &= ~SCF_HELLO;
            c->st.socks_refused++;
            stsock_close(&sc->ss); /* too slow to say what it wants */
        } else if (sc->s && sc->line && (sc->line->flags & CLF_DEAD)) {
            stream_reset(sc->s, SR_PATH); /* its exit is gone, and the stream with it */
        }
    }
}

/* ---- listeners ---- */

static void lis_closed(uv_handle_t *h)
{
    free(h->data);
}

static int lis_open(struct client *c, const char *addr, struct socks_lis **out)
{
    struct sockaddr_storage sa;
    char uri[OVL_URI_MAX];
    struct ovl_uri u;
    struct socks_lis *sl;
    int rc;

    *out = NULL;
    snprintf(uri, sizeof(uri), "tcp://%s", addr);
    if (uri_parse(&u, uri) != 0 || uri_sockaddr(&u, &sa) != 0)
        return OVL_EINVAL;
    sl = calloc(1, sizeof(*sl));
    if (!sl)
        return OVL_ENOMEM;
    uv_tcp_init(c->n->loop, &sl->tcp); /* cannot fail for TCP without flags */
    sl->tcp.data = sl;
    sl->c = c;
    rc = uv_tcp_bind(&sl->tcp, (const struct sockaddr *)&sa, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&sl->tcp, 128, on_socks_conn);
    if (rc) {
        log_error(&c->n->log, "socks: cannot listen on %s: %s", addr, uv_strerror(rc));
        uv_close((uv_handle_t *)&sl->tcp, lis_closed);
        return rc == UV_EADDRINUSE ? OVL_EEXIST : OVL_EINVAL;
    }
    *out = sl;
    return 0;
}

int socks_start(struct client *c)
{
    int rc;

    for (unsigned i = 0; i < c->o.n_socks; i++) {
        rc = lis_open(c, c->o.socks[i], &c->socks_lis[i]);
        if (rc)
            return rc;
        log_info(&c->n->log, "socks: listening on %s", c->o.socks[i]);
    }
    return 0;
}

/* Whether running listener sl serves address addr ("IP:PORT" as
 * configured): bound to that IP and port, or with any set, to that IP
 * and any port when PORT is 0. */
static bool lis_serves(const struct socks_lis *sl, const char *addr, bool any)
{
    struct sockaddr_storage want, have;
    char uri[OVL_URI_MAX];
    struct ovl_uri u;
    int n = sizeof(have);

    snprintf(uri, sizeof(uri), "tcp://%s", addr);
    if (uri_parse(&u, uri) != 0 || uri_sockaddr(&u, &want) != 0 || (u.port == 0) != any ||
        uv_tcp_getsockname(&sl->tcp, (struct sockaddr *)&have, &n) != 0 ||
        want.ss_family != have.ss_family)
        return false;
    if (want.ss_family == AF_INET) {
        const struct sockaddr_in *w = (const void *)&want, *h = (const void *)&have;

        return w->sin_addr.s_addr == h->sin_addr.s_addr && (any || w->sin_port == h->sin_port);
    }
    const struct sockaddr_in6 *w = (const void *)&want, *h = (const void *)&have;

    return memcmp(&w->sin6_addr, &h->sin6_addr, sizeof(w->sin6_addr)) == 0 &&
           (any || w->sin6_port == h->sin6_port);
}

/* Find for each of o's addresses a running listener (used: bits of
 * c->socks_lis taken): first one bound to its IP and port, then one of
 * the same text, then, for a port 0, one bound to its IP. */
static void socks_match(struct client *c, const struct client_opts *o, struct socks_lis **nl,
                        unsigned *used)
{
    for (int pass = 0; pass < 3; pass++)
        for (unsigned i = 0; i < o->n_socks; i++)
            for (unsigned j = 0; j < c->o.n_socks && !nl[i]; j++) {
                if ((*used & (1u << j)) || !c->socks_lis[j])
                    continue;
                if (pass == 1 ? strcmp(c->o.socks[j], o->socks[i]) == 0
                              : lis_serves(c->socks_lis[j], o->socks[i], pass == 2)) {
                    nl[i] = c->socks_lis[j];
                    *used |= 1u << j;
                }
            }
}

/* Listeners for o's addresses into nl (index as in o->socks): a running
 * one kept for each address it serves, the others opened; see
 * client_int.h. */
int socks_plan(struct client *c, const struct client_opts *o, struct socks_lis **nl,
               unsigned *fresh)
{
    unsigned used = 0;
    int rc;

    *fresh = 0;
    for (unsigned i = 0; i < CLIENT_MAX_SOCKS; i++)
        nl[i] = NULL;
    socks_match(c, o, nl, &used);
    for (unsigned i = 0; i < o->n_socks; i++) {
        if (nl[i])
            continue;
        rc = lis_open(c, o->socks[i], &nl[i]);
        if (rc) {
            socks_unplan(nl, *fresh);
            return rc;
        }
        *fresh |= 1u << i;
    }
    return 0;
}

/* Close the listeners socks_plan opened (bits of fresh). */
void socks_unplan(struct socks_lis **nl, unsigned fresh)
{
    for (unsigned i = 0; i < CLIENT_MAX_SOCKS; i++)
        if ((fresh & (1u << i)) && nl[i]) {
            uv_close((uv_handle_t *)&nl[i]->tcp, lis_closed);
            nl[i] = NULL;
        }
}

/* Make nl the listeners of o's addresses: the old ones not among them
 * close (their connections go on), the fresh ones are logged. */
void socks_commit(struct client *c, const struct client_opts *o, struct socks_lis **nl,
                  unsigned fresh)
{
    for (unsigned j = 0; j < CLIENT_MAX_SOCKS; j++) {
        bool kept = false;

        for (unsigned i = 0; i < o->n_socks && !kept; i++)
            kept = c->socks_lis[j] && nl[i] == c->socks_lis[j];
        if (c->socks_lis[j] && !kept) {
            log_info(&c->n->log, "socks: no longer listening on %s", c->o.socks[j]);
            uv_close((uv_handle_t *)&c->socks_lis[j]->tcp, lis_closed);
        }
    }
    for (unsigned i = 0; i < CLIENT_MAX_SOCKS; i++) {
        c->socks_lis[i] = nl[i];
        if (fresh & (1u << i))
            log_info(&c->n->log, "socks: listening on %s", o->socks[i]);
    }
    memcpy(c->o.socks, o->socks, sizeof(o->socks));
    c->o.n_socks = o->n_socks;
    c->o.socks_remote = o->socks_remote;
}

int client_socks_addr(const struct client *c, unsigned i, char *out, size_t len)
{
    struct sockaddr_storage sa;
    int n = sizeof(sa);

    if (i >= CLIENT_MAX_SOCKS || !c->socks_lis[i] ||
        uv_tcp_getsockname(&c->socks_lis[i]->tcp, (struct sockaddr *)&sa, &n) != 0)
        return OVL_ENOENT;
    return uri_from_sockaddr(out, len, "tcp", (struct sockaddr *)&sa);
}

void socks_stop(struct client *c)
{
    struct socks_conn *sc, *tmp;

    for (unsigned i = 0; i < CLIENT_MAX_SOCKS; i++)
        if (c->socks_lis[i]) {
            uv_close((uv_handle_t *)&c->socks_lis[i]->tcp, lis_closed);
            c->socks_lis[i] = NULL;
        }
    DL_FOREACH_SAFE(c->socks_conns, sc, tmp)
    {
        if (sc->flags & SCF_LOOKUP) {
            dir_cancel(c->n->dir, sc);
            sc->flags &= ~SCF_LOOKUP;
        }
        if (sc->s)
            stream_reset(sc->s, SR_DONE); /* closes the socket, frees the stream */
        else
            stsock_close(&sc->ss);
    }
}
