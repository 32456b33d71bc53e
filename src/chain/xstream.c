/* xstream.c - the exit's end of streams (relay_int.h, docs/PROTOCOL.md
 * 20.5): BODY_STREAM frames from chains to streams, each joined to a TCP
 * socket to its target; frames back as BODY_STREAM_BACK on the chain the
 * stream's last frame came on (its way back).
 *
 * A record (struct xstream) lives from SF_OPEN until its stream closed
 * (XSF_GONE: out of the table, stream freed) and libuv is done with its
 * socket and dial (XSF_SOCK, stsock.h); the later of those frees it.
 */
#include <stdlib.h>
#include <string.h>
#include <utlist.h>

#include "chain/relay_int.h"
#include "chain/stsock.h"
#include "core/link.h"
#include "dir/desc.h"
#include "lib/clock.h"

#define XS_MAX_RESOLVING 64 /* names resolved at once, node-wide */
#define XS_MTU           (ONION_BODY - BODY_HDR)
#define XS_REFUSED       256   /* refused opens remembered, node-wide */
#define XS_REFUSED_MS    60000 /* for this long: past the sender's 30 s of resending */

/* An open refused here. The sender sends SF_OPEN again until an answer
 * comes; were the RESET lost, a later copy must not find room the first
 * did not and open a second connection with the same data. Copies get the
 * same answer instead. */
struct xs_refused {
    uint8_t sid[STREAM_SID];
    uint8_t why;
    uint64_t at_ms;
};

/* Bits of struct xstream's flags. */
enum {
    XSF_SOCK = 1u << 0,    /* x->ss.tcp is initialised and its closed() has not run */
    XSF_UP = 1u << 1,      /* connected: the socket moves bytes */
    XSF_BLOCKED = 1u << 2, /* a frame found the way back full: pump on drained() */
    XSF_GONE = 1u << 3,    /* closed: out of the table, the stream freed */
};

struct xstream {
    struct relay *r;
    struct stream *s;              /* NULL once XSF_GONE */
    struct relay_chain *ch;        /* the way back, NULL while the sender has none */
    struct xstream *cprev, *cnext; /* ch->xs */
    uint8_t sid[STREAM_SID];
    UT_hash_handle hh; /* r->xstreams */
    unsigned flags;    /* XSF_* */
    struct stsock ss;
};

static void xs_free_maybe(struct xstream *x)
{
    if ((x->flags & (XSF_GONE | XSF_SOCK)) == XSF_GONE)
        free(x);
}

static void xs_unblock(struct xstream *x)
{
    if (x->flags & XSF_BLOCKED) {
        x->flags &= ~XSF_BLOCKED;
        x->r->n_xblocked--;
    }
}

static void xs_detach(struct xstream *x)
{
    if (x->ch) {
        DL_DELETE2(x->ch->xs, x, cprev, cnext);
        x->ch->n_streams--;
    }
    x->ch = NULL;
    stream_set_pool(x->s, NULL); /* the chain may go: its window with it */
    xs_unblock(x);
}

/* ch becomes x's way back: its window takes x's bytes in flight. */
static void xs_attach(struct xstream *x, struct relay_chain *ch)
{
    x->ch = ch;
    DL_APPEND2(ch->xs, x, cprev, cnext);
    ch->n_streams++;
    stream_set_pool(x->s, &ch->pool);
}

/* Pump the streams whose way back is ch, in turn, once ch's window has
 * room for one held back. */
static void xs_wake(struct relay_chain *ch)
{
    STREAM_POOL_PUMP(&ch->pool, ch->xs, struct xstream, s, cprev, cnext);
}

/* The stream closed (SE_CLOSED): count its bytes, let go of everything. */
static void xs_end(struct xstream *x)
{
    struct relay *r = x->r;

    if (x->flags & XSF_GONE)
        return;
    r->st.stream_bytes_in += x->s->snd.base + x->s->snd.len;
    r->st.stream_bytes_out += x->s->rcv.base;
    HASH_DEL(r->xstreams, x);
    r->st.streams_active--;
    xs_detach(x);
    x->flags |= XSF_GONE;
    if (x->flags & XSF_SOCK) {
        x->ss.s = NULL;
        stsock_close(&x->ss); /* before the stream: a write may be out of its ring */
    }
    stream_free(x->s);
    x->s = NULL;
    xs_free_maybe(x);
}

/* stream_ops.send: one frame back on the way back. A RESET may use the
 * link's last room; other frames leave the headroom to relayed cells, and
 * wait for the relay's bandwidth (core/bw.h) as for room. */
static int xs_send(struct stream *s, const uint8_t *f, size_t len)
{
    struct xstream *x = s->ctx;
    struct relay_chain *ch = x->ch;
    int rc = OVL_EAGAIN;

    if (!ch || !ch->prev)
        return OVL_ECLOSED; /* the sender comes back on another chain, or not */
    /* The bandwidth limit too: its tokens back bring the drained(). */
    if (f[0] == SF_RESET || (link_can_send(ch->prev, x->r->headroom) &&
                             bw_relay_may_send(&x->r->n->tp_env, ch->prev->tp)))
        rc = relay_originate(ch, BODY_STREAM_BACK, f, len);
    if (rc == OVL_EAGAIN && !(x->flags & XSF_BLOCKED)) {
        x->flags |= XSF_BLOCKED; /* refused room armed the link's drained() */
        x->r->n_xblocked++;
    }
    return rc;
}

static void xs_event(struct stream *s, enum stream_event ev)
{
    struct xstream *x = s->ctx;

    if (ev == SE_CLOSED)
        xs_end(x);
    else if (x->flags & XSF_UP)
        stsock_event(&x->ss, ev);
}

static const struct stream_ops xs_ops = {.send = xs_send, .event = xs_event};

/* stsock: the socket failed (err < 0) or both ends finished (0: the
 * stream lingers and closes itself). */
static void xs_done(struct stsock *ss, int err)
{
    struct xstream *x = container_of(ss, struct xstream, ss);

    if (err < 0 && x->s)
        stream_reset(x->s, stsock_reason(err));
}

static void xs_closed(struct stsock *ss)
{
    struct xstream *x = container_of(ss, struct xstream, ss);

    x->flags &= ~XSF_SOCK;
    xs_free_maybe(x);
}

static void xs_remember(struct relay *r, const uint8_t sid[STREAM_SID], enum stream_reason why);

static void xs_fail(struct xstream *x, enum stream_reason why)
{
    xs_remember(x->r, x->sid, why);
    if (why == SR_POLICY)
        x->r->st.streams_refused_policy++;
    else if (why == SR_LIMIT)
        x->r->st.streams_refused_limit++;
    else
        x->r->st.streams_failed_connect++;
    stream_reset(x->s, why);
}

/* True when we may connect to a (len 4 or 16) on port. */
static bool xs_allowed(const struct relay *r, const uint8_t *a, size_t len, uint16_t port)
{
    const struct exit_policy *p = dir_exit_policy(r->n->dir);

    return p && exit_policy_match(p, a, len, port) &&
           (dir_allow_private(r->n->dir) || desc_addr_public(a, len));
}

static bool xs_allow(const struct stsock *ss, const uint8_t *a, size_t len)
{
    return xs_allowed(container_of(ss, struct xstream, ss)->r, a, len, ss->port);
}

/* stsock_dial's end: connected (why 0), or the reason it failed. */
static void xs_dialed(struct stsock *ss, int why)
{
    struct xstream *x = container_of(ss, struct xstream, ss);

    if (why) {
        xs_fail(x, (enum stream_reason)why);
        return;
    }
    x->flags |= XSF_UP;
    x->r->st.streams_opened++;
    stream_take(x->s); /* SF_OPENED goes back */
    if (!(x->flags & XSF_GONE))
        (void)stsock_start(&x->ss); /* writes what came meanwhile; failures reach xs_done */
}

/* Start toward target t: 0, or the reason to refuse with. */
static enum stream_reason xs_start(struct xstream *x, const struct stream_target *t)
{
    if (stsock_init(&x->ss, x->r->ssenv, x->s, xs_done, xs_closed) != 0)
        return SR_LIMIT;
    x->flags |= XSF_SOCK;
    x->ss.n_resolving = &x->r->n_resolving;
    return (enum stream_reason)stsock_dial(&x->ss, t, xs_allow, xs_dialed);
}

/* Remember that sid's open was refused for why (oldest entry out). */
static void xs_remember(struct relay *r, const uint8_t sid[STREAM_SID], enum stream_reason why)
{
    struct xs_refused *e;

    if (r->flags & RELAYF_STOPPED)
        return; /* xstream_stop freed the table for good */
    if (!r->refused && !(r->refused = calloc(XS_REFUSED, sizeof(*r->refused))))
        return;
    e = &r->refused[r->refused_next++ % XS_REFUSED];
    memcpy(e->sid, sid, STREAM_SID);
    e->why = (uint8_t)why;
    e->at_ms = clock_now_ms();
}

/* The reason sid's open was refused lately, or 0. */
static enum stream_reason xs_was_refused(const struct relay *r, const uint8_t sid[STREAM_SID])
{
    uint64_t now = clock_now_ms();

    for (unsigned i = 0; r->refused && i < XS_REFUSED; i++)
        if (r->refused[i].at_ms && now - r->refused[i].at_ms < XS_REFUSED_MS &&
            memcmp(r->refused[i].sid, sid, STREAM_SID) == 0)
            return (enum stream_reason)r->refused[i].why;
    return 0;
}

/* Answer a frame that has no stream (or whose stream we refuse). */
static void xs_refuse(struct relay_chain *ch, const uint8_t sid[STREAM_SID], enum stream_reason why)
{
    uint8_t f[STREAM_HDR + 1];

    if (why != SR_UNKNOWN)
        xs_remember(ch->r, sid, why);
    (void)relay_originate(ch, BODY_STREAM_BACK, f, stream_reset_frame(f, sid, why));
}

/* Why an open for t from ch is refused before any work, or 0. */
static enum stream_reason xs_admit(struct relay_chain *ch, const struct stream_target *t)
{
    const struct relay *r = ch->r;
    const struct exit_policy *p = dir_exit_policy(r->n->dir);

    if (!p)
        return SR_POLICY; /* not an exit */
    if (r->st.streams_active >= r->o.max_streams || ch->n_streams >= r->o.max_streams_per_chain ||
        (r->flags & RELAYF_STOPPED))
        return SR_LIMIT;
    if (t->atyp != STA_NAME)
        return xs_allowed(r, t->addr, t->atyp == STA_IPV4 ? 4 : 16, t->port) ? 0 : SR_POLICY;
    if (!exit_policy_may_accept_port(p, t->port))
        return SR_POLICY;
    return r->n_resolving >= XS_MAX_RESOLVING ? SR_LIMIT : 0;
}

/* SF_OPEN for a sid we do not have: check, make the stream, start. */
static void xs_open(struct relay_chain *ch, const uint8_t *f, size_t len, const uint8_t *sid,
                    const uint8_t *args, size_t alen)
{
    struct relay *r = ch->r;
    struct stream_target t;
    struct xstream *x;
    enum stream_reason why;

    if (stream_target_get(&t, args, alen) != 0) {
        r->st.dropped[RD_BAD_CELL]++;
        xs_refuse(ch, sid, SR_PROTOCOL);
        return;
    }
    why = xs_admit(ch, &t);
    x = why ? NULL : calloc(1, sizeof(*x));
    if (x && stream_new(r->n->loop, &xs_ops, x, sid, NULL, 0, XS_MTU, r->o.stream_idle_ms, &x->s)) {
        free(x);
        x = NULL;
    }
    if (x) {
        memcpy(x->sid, sid, STREAM_SID);
        HASH_ADD(hh, r->xstreams, sid, STREAM_SID, x);
        if (!x->hh.tbl) {
            stream_free(x->s);
            free(x);
            x = NULL;
        }
    }
    if (!x) {
        why = why ? why : SR_LIMIT;
        if (why == SR_POLICY)
            r->st.streams_refused_policy++;
        else
            r->st.streams_refused_limit++;
        xs_refuse(ch, sid, why);
        return;
    }
    x->r = r;
    xs_attach(x, ch);
    r->st.streams_active++;
    why = xs_start(x, &t);
    if (why) {
        xs_fail(x, why); /* x may be gone */
        return;
    }
    /* The open's data waits in the receive ring until the connect; a
     * resolution or socket keeps x alive whatever the frame does. */
    if (stream_input(x->s, f, len) != 0)
        r->st.dropped[RD_BAD_CELL]++;
}

void xstream_input(struct relay_chain *ch, const uint8_t *f, size_t len)
{
    struct relay *r = ch->r;
    const uint8_t *sid, *args;
    struct xstream *x = NULL;
    uint8_t type;
    size_t alen;

    if (stream_frame_peek(f, len, &type, &sid, &args, &alen) != 0) {
        r->st.dropped[RD_BAD_CELL]++;
        return;
    }
    HASH_FIND(hh, r->xstreams, sid, STREAM_SID, x);
    if (!x) {
        enum stream_reason was = type == SF_OPEN ? xs_was_refused(r, sid) : 0;

        if (was) {
            r->st.streams_unknown++; /* a copy of a refused open: the same answer */
            xs_refuse(ch, sid, was);
        } else if (type == SF_OPEN) {
            xs_open(ch, f, len, sid, args, alen);
        } else if (type != SF_RESET) { /* a RESET is never answered */
            r->st.streams_unknown++;
            xs_refuse(ch, sid, SR_UNKNOWN);
        }
        return;
    }
    if (x->ch != ch) {
        /* The sender's chain was repaired or replaced: the new way back
         * gets everything not yet acknowledged. */
        xs_detach(x);
        xs_attach(x, ch);
        stream_rewind(x->s);
    }
    if (stream_input(x->s, f, len) != 0)
        r->st.dropped[RD_BAD_CELL]++;
    xs_wake(ch); /* its acks may have made room for the chain's other streams */
}

void xstream_chain_end(struct relay_chain *ch)
{
    struct xstream *x, *tmp;

    DL_FOREACH_SAFE2(ch->xs, x, tmp, cnext)
    {
        xs_detach(x);
    }
}

void xstream_drained(struct relay *r, struct link *l)
{
    struct xstream *x, *tmp;

    if (!r->n_xblocked)
        return;
    HASH_ITER(hh, r->xstreams, x, tmp)
    {
        if ((x->flags & XSF_BLOCKED) && x->ch && x->ch->prev == l) {
            xs_unblock(x);
            stream_pump(x->s); /* sends only: nothing closes here */
        }
    }
}

void xstream_tick(struct relay *r, uint64_t now)
{
    struct xstream *x, *tmp;
    struct relay_chain *ch, *ctmp;

    HASH_ITER(hh, r->xstreams, x, tmp)
    {
        if ((x->ss.flags & (SSF_RESOLVING | SSF_DIALING)) && now >= x->ss.deadline_ms)
            xs_fail(x, SR_TIMEOUT);
    }
    /* Room a stream made as it closed outside stream_input (a timeout, the
     * target's socket) reaches the chain's waiting streams here. */
    if (!r->xstreams)
        return;
    HASH_ITER(hh, r->chains, ch, ctmp)
    {
        if (ch->pool.flags & SPF_WAIT)
            xs_wake(ch);
    }
}

void xstream_stop(struct relay *r)
{
    struct xstream *x, *tmp;

    HASH_ITER(hh, r->xstreams, x, tmp)
    {
        stream_reset(x->s, SR_PATH);
    }
    free(r->refused);
    r->refused = NULL;
}

void xstream_stats(const struct relay *r, struct relay_stats *st)
{
    const struct xstream *x, *tmp;

    HASH_ITER(hh, r->xstreams, x, tmp)
    {
        st->stream_bytes_in += x->s->snd.base + x->s->snd.len;
        st->stream_bytes_out += x->s->rcv.base;
        st->bytes_held += sizeof(*x) + stream_held(x->s);
    }
}
