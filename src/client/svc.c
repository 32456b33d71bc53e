/* svc.c - our end of streams to our services (client_int.h, docs/PROTOCOL.md
 * 20.6): stream records (srec.h) that arrive as delivery cells open
 * streams to the [service.NAME] target of their port, each joined to a TCP
 * socket; frames go back sealed on the delivery ID the stream's newest
 * record came on (its way back), which the exit returns to the client.
 *
 * A record (struct svc_stream) lives from the open until its stream closed
 * (SVF_GONE: out of the table, stream freed) and libuv is done with its
 * socket and dial (SVF_SOCK); the later of those frees it. Nothing is
 * allocated per record, and only an open costs a public-key operation.
 */
#include <stdlib.h>
#include <string.h>
#include <utlist.h>

#include "chain/stsock.h"
#include "client/client_int.h"
#include "client/srec.h"
#include "lib/bytes.h"
#include "lib/htab.h"

#define SVC_MAX_RESOLVING 64 /* targets resolved at once */
#define SVC_HEADROOM      16 /* cells a frame leaves on the link to the exit */

/* Bits of struct svc_stream's flags. */
enum {
    SVF_SOCK = 1u << 0,    /* v->ss is initialised and its closed() has not run */
    SVF_UP = 1u << 1,      /* connected: the socket moves bytes */
    SVF_BLOCKED = 1u << 2, /* a frame found the way back full: pump on drained() */
    SVF_GONE = 1u << 3,    /* closed: out of the table, the stream freed */
};

struct svc_stream {
    struct stsock ss;
    struct client *c;
    struct stream *s;                 /* NULL once SVF_GONE */
    struct deliv *way;                /* the way back, NULL while the client has none */
    struct svc_stream *wprev, *wnext; /* way->svcs */
    uint8_t sid[STREAM_SID];
    UT_hash_handle hh; /* c->svcs */
    unsigned flags;    /* SVF_* */
    struct srec k;
};

static void svc_free_maybe(struct svc_stream *v)
{
    if ((v->flags & (SVF_GONE | SVF_SOCK)) == SVF_GONE) {
        srec_wipe(&v->k);
        free(v);
    }
}

static void svc_detach(struct svc_stream *v)
{
    if (v->way) {
        DL_DELETE2(v->way->svcs, v, wprev, wnext);
        v->way->n_streams--;
    }
    v->way = NULL;
    stream_set_pool(v->s, NULL); /* the way may go: its window with it */
    if (v->flags & SVF_BLOCKED) {
        v->flags &= ~SVF_BLOCKED;
        v->c->svc_blocked--;
    }
}

/* d becomes v's way back: its window takes v's bytes in flight. */
static void svc_attach(struct svc_stream *v, struct deliv *d)
{
    v->way = d;
    DL_APPEND2(d->svcs, v, wprev, wnext);
    d->n_streams++;
    stream_set_pool(v->s, &d->pool);
}

/* Pump the streams whose way back is d, in turn, once d's window has room
 * for one held back. */
static void svc_wake(struct deliv *d)
{
    STREAM_POOL_PUMP(&d->pool, d->svcs, struct svc_stream, s, wprev, wnext);
}

static void svc_end(struct svc_stream *v)
{
    struct client *c = v->c;

    if (v->flags & SVF_GONE)
        return;
    HASH_DEL(c->svcs, v);
    c->st.service_streams_active--;
    svc_detach(v);
    v->flags |= SVF_GONE;
    if (v->flags & SVF_SOCK) {
        v->ss.s = NULL;
        stsock_close(&v->ss); /* before the stream: a write may be out of its ring */
    }
    stream_free(v->s);
    v->s = NULL;
    svc_free_maybe(v);
}

/* Seal frame f under k and send it on d; a frame but a RESET leaves the
 * link SVC_HEADROOM cells (acknowledgements and replies go there too). */
static int svc_put(struct deliv *d, struct srec *k, const uint8_t *f, size_t len)
{
    uint8_t rec[OVL_CELL_PAYLOAD];
    struct link *l = deliv_link(d);
    int rc;

    if (!l)
        return OVL_ECLOSED;
    if (f[0] != SF_RESET &&
        (!link_can_send(l, SVC_HEADROOM) || !bw_node_may_send(&d->c->n->tp_env, l->tp)))
        return OVL_EAGAIN; /* armed the link's drained() ([node] rate's too) */
    rc = deliv_send(d, rec, srec_seal(k, SREC_BACK, rec, f, len));
    d->c->st.cells_out += DELIV_OUT(d, rc);
    return rc;
}

static int svc_send(struct stream *s, const uint8_t *f, size_t len)
{
    struct svc_stream *v = s->ctx;
    int rc;

    if (!v->way)
        return OVL_ECLOSED; /* the client comes back on another chain, or not */
    rc = svc_put(v->way, &v->k, f, len);
    if (rc == OVL_EAGAIN && !(v->flags & SVF_BLOCKED)) {
        v->flags |= SVF_BLOCKED;
        v->c->svc_blocked++;
    }
    return rc;
}

static void svc_event(struct stream *s, enum stream_event ev)
{
    struct svc_stream *v = s->ctx;

    if (ev == SE_CLOSED)
        svc_end(v);
    else if (v->flags & SVF_UP)
        stsock_event(&v->ss, ev);
}

static const struct stream_ops svc_ops = {.send = svc_send, .event = svc_event};

/* Answer sid's open on d with RESET(why), sealed under k. */
static void svc_refuse(struct client *c, struct deliv *d, const uint8_t *sid,
                       enum stream_reason why, struct srec *k)
{
    uint8_t f[STREAM_HDR + 1];

    c->st.service_streams_refused++;
    (void)svc_put(d, k, f, stream_reset_frame(f, sid, why));
}

/* The dial failed: the stream ends (its open's tombstone drops copies). */
static void svc_fail(struct svc_stream *v, enum stream_reason why)
{
    v->c->st.service_streams_failed++;
    stream_reset(v->s, why);
}

static void svc_done(struct stsock *ss, int err)
{
    struct svc_stream *v = container_of(ss, struct svc_stream, ss);

    if (err < 0 && v->s)
        stream_reset(v->s, stsock_reason(err));
}

static void svc_closed(struct stsock *ss)
{
    struct svc_stream *v = container_of(ss, struct svc_stream, ss);

    v->flags &= ~SVF_SOCK;
    svc_free_maybe(v);
}

static void svc_dialed(struct stsock *ss, int why)
{
    struct svc_stream *v = container_of(ss, struct svc_stream, ss);

    if (why) {
        svc_fail(v, (enum stream_reason)why);
        return;
    }
    v->flags |= SVF_UP;
    v->c->st.service_streams_opened++;
    stream_take(v->s); /* SF_OPENED goes back */
    if (!(v->flags & SVF_GONE))
        (void)stsock_start(&v->ss); /* writes what came meanwhile; failures reach svc_done */
}

/* Why an open (frame f, flen bytes, authentic) from d is refused, or 0
 * with *sv its service. */
static enum stream_reason svc_admit(struct client *c, const struct deliv *d, const uint8_t *f,
                                    size_t flen, const struct client_service **sv)
{
    const uint8_t *sid, *args;
    uint8_t type;
    size_t alen;
    unsigned i;

    if (stream_frame_peek(f, flen, &type, &sid, &args, &alen) != 0 || type != SF_OPEN || alen != 2)
        return SR_PROTOCOL;
    for (i = 0; i < c->o.n_services && c->o.services[i].port != ld_be16(args); i++)
        ;
    if (i == c->o.n_services)
        return SR_REFUSED; /* no service on that port */
    *sv = &c->o.services[i];
    if (c->st.service_streams_active >= c->o.svc_max_streams ||
        d->n_streams >= c->o.svc_max_per_chain || (c->flags & CF_STOPPED) ||
        c->svc_resolving >= SVC_MAX_RESOLVING)
        return SR_LIMIT;
    return 0;
}

/* Make the stream of an admitted open and dial its service: 0, or the
 * reason to refuse with when nothing was made. */
static enum stream_reason svc_start(struct client *c, struct deliv *d, const struct srec *k,
                                    const struct client_service *sv, const uint8_t *f, size_t flen)
{
    struct svc_stream *v = calloc(1, sizeof(*v));
    int why;

    if (!v || stream_new(c->n->loop, &svc_ops, v, f + 2, NULL, 0, SREC_BACK_MTU, c->o.svc_idle_ms,
                         &v->s) != 0) {
        free(v);
        return SR_LIMIT;
    }
    memcpy(v->sid, f + 2, STREAM_SID);
    HASH_ADD(hh, c->svcs, sid, STREAM_SID, v);
    if (!v->hh.tbl) {
        stream_free(v->s);
        free(v);
        return SR_LIMIT;
    }
    v->c = c;
    v->k = *k;
    svc_attach(v, d);
    c->st.service_streams_active++;
    why = stsock_init(&v->ss, c->ssenv, v->s, svc_done, svc_closed) ? SR_LIMIT : 0;
    if (!why) {
        v->flags |= SVF_SOCK;
        v->ss.n_resolving = &c->svc_resolving;
        why = stsock_dial(&v->ss, &sv->target, NULL, svc_dialed);
    }
    if (why) {
        svc_fail(v, (enum stream_reason)why); /* v may be gone */
        return 0;
    }
    /* The open's data waits in the receive ring until the connect. */
    if (stream_input(v->s, f, flen) != 0)
        c->st.service_records_bad++;
    return 0;
}

/* An open record for a sid we do not have: authenticate it with our
 * onion keys, check its time and that it is new, admit, start. */
static void svc_open(struct client *c, struct deliv *d, const uint8_t *rec, size_t len)
{
    uint8_t buf[SREC_MAX], id[CLIENT_MSG_ID];
    const struct client_service *sv = NULL;
    const struct dir_onion *keys;
    unsigned n_keys = 0;
    const uint8_t *f;
    size_t flen;
    uint64_t sent;
    struct srec k;
    enum stream_reason why;
    int rc;

    keys = dir_onion_keys(c->n->dir, &n_keys);
    if (srec_accept(&k, rec, len, keys, n_keys, buf, &f, &flen, &sent) != 0) {
        c->st.service_records_bad++;
        return;
    }
    /* An open that would connect leaves a tombstone (its first byte
     * keeps it apart from message IDs) that stops its replays; refusing
     * one again costs nothing. */
    why = svc_admit(c, d, f, flen, &sv);
    id[0] = SREC_TYPE;
    memcpy(id + 1, k.eph, CLIENT_MSG_ID - 1);
    rc = why ? 0 : msg_rx_seen(&c->rx, id, sent, clock_wall_ms());
    if (rc == OVL_EEXIST)
        c->st.service_replays++;
    if (rc != OVL_EEXIST && rc != OVL_ETIMEDOUT) {
        if (!why)
            why = rc ? SR_LIMIT : svc_start(c, d, &k, sv, f, flen);
        if (why)
            svc_refuse(c, d, rec + 2, why, &k);
    }
    srec_wipe(&k);
    ovl_wipe(buf, sizeof(buf));
}

void svc_input(struct client *c, struct deliv *d, const uint8_t *rec, size_t len)
{
    uint8_t buf[SREC_MAX];
    const uint8_t *sid, *f;
    struct svc_stream *v;
    size_t flen;
    bool open;

    if (srec_peek(rec, len, &sid, &open) != 0)
        goto bad;
    HASH_FIND(hh, c->svcs, sid, STREAM_SID, v);
    if (!v && open) {
        svc_open(c, d, rec, len);
    } else if (!v || srec_open(&v->k, SREC_FWD, rec, len, buf, &f, &flen, NULL) != 0) {
        goto bad; /* no keys to answer a stranger with */
    } else {
        if (v->way != d) {
            /* The client's chain was repaired or replaced: the new way
             * back gets everything not yet acknowledged. */
            svc_detach(v);
            svc_attach(v, d);
            stream_rewind(v->s);
        }
        if (stream_input(v->s, f, flen) != 0)
            c->st.service_records_bad++;
        svc_wake(d); /* its acks may have made room for the way's other streams */
    }
    ovl_wipe(buf, sizeof(buf));
    return;
bad:
    c->st.service_records_bad++;
}

void svc_way_gone(struct client *c, struct deliv *d)
{
    struct svc_stream *v, *tmp;

    (void)c;
    DL_FOREACH_SAFE2(d->svcs, v, tmp, wnext)
    {
        svc_detach(v);
    }
}

void svc_drained(struct client *c, struct link *l)
{
    struct svc_stream *v, *tmp;

    if (!c->svc_blocked)
        return;
    HASH_ITER(hh, c->svcs, v, tmp)
    {
        if ((v->flags & SVF_BLOCKED) && v->way && deliv_link(v->way) == l) {
            v->flags &= ~SVF_BLOCKED;
            c->svc_blocked--;
            stream_pump(v->s); /* sends only: nothing closes here */
        }
    }
}

void svc_tick(struct client *c, uint64_t now)
{
    struct svc_stream *v, *tmp;
    struct deliv *d;

    HASH_ITER(hh, c->svcs, v, tmp)
    {
        if ((v->ss.flags & (SSF_RESOLVING | SSF_DIALING)) && now >= v->ss.deadline_ms)
            svc_fail(v, SR_TIMEOUT);
    }
    /* Room a stream made as it closed outside stream_input reaches the
     * way's waiting streams here. */
    DL_FOREACH(c->delivs, d)
    {
        if (d->pool.flags & SPF_WAIT)
            svc_wake(d);
    }
}

void svc_stop(struct client *c)
{
    struct svc_stream *v, *tmp;

    HASH_ITER(hh, c->svcs, v, tmp)
    {
        stream_reset(v->s, SR_PATH);
    }
}

uint64_t svc_bytes_held(const struct client *c)
{
    const struct svc_stream *v, *tmp;
    uint64_t n = 0;

    HASH_ITER(hh, c->svcs, v, tmp)
    {
        n += sizeof(*v) + stream_held(v->s);
    }
    return n;
}
