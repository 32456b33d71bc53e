/* tp_tcp.c - the TCP transport: frames as u16-big-endian length + bytes.
 *
 * System calls are the cost that counts on the data path, so each one
 * carries as much as it can. Reads go into one 64 KiB buffer that the
 * node's connections share (libuv reads, then calls back, one connection
 * at a time); a connection keeps only the partial frame a read ended in,
 * in a buffer it holds only while there is one.
 * Sent frames collect in "pend" and are written once per turn of the loop,
 * just before it polls (a prepare handle, also shared), with
 * uv_try_write: a write the socket takes whole needs no request, so libuv
 * queues no callback and changes nothing in the poller. Only what the
 * socket does not take goes to a uv_write ("fly"), which waits for room;
 * new frames collect in pend meanwhile. A small write gives its buffer
 * back at once and tp_trim() (the link's timer, on a quiet link) the
 * buffers a burst left, so an idle connection holds no buffer at all.
 * Everything is freed in the close callbacks, the shared part with the
 * last connection. Admission,
 * deframing and the callbacks are the contract's common steps
 * (transport.c); this file keeps the socket, its buffers and its own flags.
 */
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cell.h"
#include "core/tp_meter.h"
#include "core/tp_tcp.h"
#include "lib/bytes.h"

#define TCP_RBUF_SIZE 65536 /* one read: what libuv offers, far above one frame */
#define TCP_SBUF_MIN  4096  /* first send buffer; doubles up to the queue cap */
#define TCP_BACKLOG   128
#define TCP_WIRE_MAX  (OVL_FRAME_MAX + OVL_FRAME_LENHDR)

_Static_assert(TCP_RBUF_SIZE > TCP_WIRE_MAX, "receive buffer must hold a whole frame");
_Static_assert(OVL_FRAME_MAX <= UINT16_MAX, "frame length must fit the u16 prefix");

struct tcp_sbuf {
    uint8_t *buf;
    size_t len, cap;
};

/* TCP's own bits of transport.flags. TP_F_ESTABLISHED means reads and
 * writes may start; TP_F_RESOLVING that gai_req is outstanding. */
enum {
    TCP_F_READING = TP_F_PRIVATE << 0,       /* uv_read_start is in effect */
    TCP_F_WRITING = TP_F_PRIVATE << 1,       /* fly is owned by an uv_write */
    TCP_F_HANDLE_CLOSED = TP_F_PRIVATE << 2, /* the close callback ran */
    TCP_F_DIRTY = TP_F_PRIVATE << 3,         /* on the shared list of conns to flush */
};

struct tcp_conn;

/* What a node's connections share (env->tcp): made with the first
 * connection, closed with the last. */
struct tcp_shared {
    uv_prepare_t flush;     /* runs tcp_flush_all before the loop polls */
    struct tcp_conn *dirty; /* connections with frames to write */
    unsigned conns;
    uint8_t rbuf[TCP_RBUF_SIZE]; /* lent to one read at a time */
};

struct tcp_conn {
    struct transport base; /* first: struct transport * downcasts to this */
    uv_tcp_t handle;
    uv_connect_t connect_req;
    uv_getaddrinfo_t gai_req;
    uv_write_t write_req;
    struct tcp_sbuf pend, fly;
    struct tcp_conn *dnext, **dprev; /* the dirty list, while TCP_F_DIRTY */
    size_t rlen;                     /* bytes in tail */
    uint8_t *tail;                   /* a frame the last read ended in (TCP_WIRE_MAX
                                        bytes, malloc'd while rlen > 0) */
    uint8_t *held;                   /* read but not delivered: the owner paused us
                                        mid-read (malloc'd, at most TCP_RBUF_SIZE) */
    size_t held_len;
};

struct tcp_listener {
    struct tp_listener base; /* first, as above */
    uv_tcp_t handle;
    struct tp_env *env;
    bool closing;
};

static struct tcp_conn *tcp_conn_of(const struct transport *t)
{
    return container_of(t, struct tcp_conn, base);
}

/* The contract's cap, within what one uv_buf_t (unsigned int) can carry. */
static size_t tcp_sendq_max(const struct tcp_conn *c)
{
    size_t max = tp_sendq_max(&c->base);

    return max > INT32_MAX ? INT32_MAX : max;
}

/* ---- what connections share ------------------------------------------ */

static void tcp_flush(struct tcp_conn *c);

/* Write every connection that has frames pending; one written from here
 * may make others (or itself) dirty again through drain(), so the list is
 * emptied, not walked. */
static void tcp_flush_all(uv_prepare_t *p)
{
    struct tcp_shared *sh = p->data;

    while (sh->dirty)
        tcp_flush(sh->dirty); /* takes it off the list */
    uv_prepare_stop(p);
}

static void tcp_shared_on_close(uv_handle_t *h)
{
    free(h->data);
}

/* Count one more connection, making the shared part with the first. */
static int tcp_shared_hold(struct tp_env *env)
{
    struct tcp_shared *sh = env->tcp;

    if (!sh) {
        sh = malloc(sizeof(*sh));
        if (!sh)
            return OVL_ENOMEM;
        (void)uv_prepare_init(env->loop, &sh->flush); /* cannot fail */
        uv_unref((uv_handle_t *)&sh->flush);          /* the connections keep the loop alive */
        sh->flush.data = sh;
        sh->dirty = NULL;
        sh->conns = 0;
        env->tcp = sh;
    }
    sh->conns++;
    return 0;
}

/* Count one connection less, closing the shared part with the last. */
static void tcp_shared_release(struct tp_env *env)
{
    struct tcp_shared *sh = env->tcp;

    if (--sh->conns > 0)
        return;
    env->tcp = NULL;
    uv_close((uv_handle_t *)&sh->flush, tcp_shared_on_close);
}

/* Put c on the list written before the loop polls again. */
static void tcp_mark_dirty(struct tcp_conn *c)
{
    struct tcp_shared *sh = c->base.env->tcp;

    if (!sh->dirty)
        uv_prepare_start(&sh->flush, tcp_flush_all);
    c->dnext = sh->dirty;
    if (c->dnext)
        c->dnext->dprev = &c->dnext;
    c->dprev = &sh->dirty;
    sh->dirty = c;
    c->base.flags |= TCP_F_DIRTY;
}

static void tcp_unmark_dirty(struct tcp_conn *c)
{
    if (!(c->base.flags & TCP_F_DIRTY))
        return;
    *c->dprev = c->dnext;
    if (c->dnext)
        c->dnext->dprev = c->dprev;
    c->base.flags &= ~TCP_F_DIRTY;
}

/* ---- lifetime --------------------------------------------------------- */

static void tcp_conn_free(struct tcp_conn *c)
{
    tcp_shared_release(c->base.env);
    free(c->pend.buf);
    free(c->fly.buf);
    free(c->held);
    free(c->tail);
    free(c);
}

static void tcp_on_close(uv_handle_t *h)
{
    struct tcp_conn *c = h->data;

    c->base.flags |= TCP_F_HANDLE_CLOSED;
    tp_emit_closed(&c->base);
    /* A cancelled getaddrinfo still calls back; it frees the conn then. */
    if (!(c->base.flags & TP_F_RESOLVING))
        tcp_conn_free(c);
}

/* Start the close exactly once, remembering why for closed(). */
static void tcp_shutdown(struct tcp_conn *c, int reason)
{
    if (!tp_begin_close(&c->base, reason))
        return;
    tcp_unmark_dirty(c);
    if (c->base.flags & TP_F_RESOLVING)
        (void)uv_cancel((uv_req_t *)&c->gai_req);
    uv_close((uv_handle_t *)&c->handle, tcp_on_close);
}

/* Undo a connection whose starting call failed: no callback may fire. */
static void tcp_abort(struct tcp_conn *c)
{
    c->base.flags |= TP_F_SILENT;
    tcp_shutdown(c, 0);
}

static int tcp_conn_new(struct tp_env *env, struct tcp_conn **out)
{
    struct tcp_conn *c;
    int err;

    *out = NULL;
    c = calloc(1, sizeof(*c));
    if (!c)
        return OVL_ENOMEM;
    c->base.ops = &tp_tcp_ops;
    c->base.env = env;
    err = tcp_shared_hold(env);
    if (err) {
        free(c);
        return err;
    }
    err = uv_tcp_init(env->loop, &c->handle);
    if (err) {
        tcp_shared_release(env);
        free(c);
        return err;
    }
    c->handle.data = c;
    /* No socket exists yet: libuv records the flag and applies it when
     * connect or accept creates one, so this covers both directions. */
    err = uv_tcp_nodelay(&c->handle, 1);
    if (err) {
        tcp_abort(c);
        return err;
    }
    *out = c;
    return 0;
}

/* ---- reading ---------------------------------------------------------- */

/* Lend the shared buffer, with the frame the last read ended in in front.
 * libuv calls back right after the read, before any other connection's.
 * Under a bandwidth limit only what the meter may let through is read, so
 * that a hold keeps about a frame here, not a whole buffer per link. */
static void tcp_on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct tcp_conn *c = h->data;
    uint8_t *rbuf = c->base.env->tcp->rbuf;
    size_t room = TCP_RBUF_SIZE - c->rlen;

    (void)suggested;
    if (c->rlen)
        memcpy(rbuf, c->tail, c->rlen);
    if (c->base.env->meter)
        room = tp_meter_read_room(c->base.env->meter, &c->base, room);
    buf->base = (char *)rbuf + c->rlen;
    buf->len = room;
}

/* Hand the complete frames of the len bytes at buf to the owner until it
 * pauses us; keep what is left: after a pause all of it (in c->held,
 * delivered once resumed, before anything is read again), else the
 * partial tail. A pause stops delivery at once, so a relay that pauses a
 * link because the next one is full gets no more of its cells to drop:
 * a run of dropped cells would put the chains' counters out of step. */
static void tcp_deliver(struct tcp_conn *c, const uint8_t *buf, size_t len)
{
    size_t used, left;
    uint8_t *keep;
    int err = tp_deframe(&c->base, buf, len, TP_F_HOLD, &used);

    if (err) {
        tcp_shutdown(c, err);
        return;
    }
    if (tp_is_closing(&c->base))
        return;
    left = len - used;
    if ((c->base.flags & TP_F_HOLD) && left > 0) {
        keep = buf == c->held ? c->held : malloc(left);
        if (!keep) {
            tcp_shutdown(c, OVL_ENOMEM);
            return;
        }
        memmove(keep, buf + used, left);
        c->held = keep;
        c->held_len = left;
        return;
    }
    /* Not paused, so every whole frame went out: less than one is left,
     * kept in a buffer made for it (one malloc per read at most, never
     * per frame) and given back once a read ends on a frame's end. */
    if (left > 0 && !c->tail && !(c->tail = malloc(TCP_WIRE_MAX))) {
        tcp_shutdown(c, OVL_ENOMEM);
        return;
    }
    c->rlen = left;
    if (left > 0) {
        memcpy(c->tail, buf + used, left);
    } else {
        free(c->tail);
        c->tail = NULL;
    }
    if (buf == c->held) {
        free(c->held);
        c->held = NULL;
        c->held_len = 0;
    }
}

static void tcp_on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct tcp_conn *c = s->data;

    (void)buf;
    if (tp_is_closing(&c->base))
        return;
    if (nread < 0) {
        tcp_shutdown(c, nread == UV_EOF ? OVL_ECLOSED : (int)nread);
        return;
    }
    if (nread > 0)
        tcp_deliver(c, c->base.env->tcp->rbuf, c->rlen + (size_t)nread);
}

static void tcp_read_start(struct tcp_conn *c)
{
    int err;

    if ((c->base.flags & (TP_F_CLOSING | TP_F_HOLD | TCP_F_READING | TP_F_ESTABLISHED)) !=
            TP_F_ESTABLISHED ||
        c->held)
        return; /* what was held back goes first (tcp_flush) */
    err = uv_read_start((uv_stream_t *)&c->handle, tcp_on_alloc, tcp_on_read);
    if (err) {
        tcp_shutdown(c, err);
        return;
    }
    c->base.flags |= TCP_F_READING;
}

/* Stop reading (tp_hold: the first reason came). */
static void tcp_pause(struct transport *t)
{
    struct tcp_conn *c = tcp_conn_of(t);

    if (c->base.flags & TCP_F_READING) {
        (void)uv_read_stop((uv_stream_t *)&c->handle);
        c->base.flags &= ~TCP_F_READING;
    }
}

/* Read again (tp_hold: the last reason went). */
static void tcp_resume(struct transport *t)
{
    struct tcp_conn *c = tcp_conn_of(t);

    if (c->held && !(c->base.flags & TCP_F_DIRTY))
        tcp_mark_dirty(c); /* delivered before the loop polls, never inside the resume */
    tcp_read_start(c);
}

/* ---- writing ---------------------------------------------------------- */

static void tcp_on_write(uv_write_t *req, int status);

static void tcp_sbuf_release(struct tcp_sbuf *b)
{
    free(b->buf);
    *b = (struct tcp_sbuf){0};
}

/* Hand pend from byte off on to one uv_write; fly must be empty. */
static void tcp_write_start(struct tcp_conn *c, size_t off)
{
    struct tcp_sbuf tmp = c->fly;
    uv_buf_t b;
    int err;

    c->fly = c->pend;
    c->pend = tmp;
    c->pend.len = 0;
    b = (uv_buf_t){.base = (char *)c->fly.buf + off, .len = (unsigned int)(c->fly.len - off)};
    err = uv_write(&c->write_req, (uv_stream_t *)&c->handle, &b, 1, tcp_on_write);
    if (err) {
        tcp_shutdown(c, err);
        return;
    }
    c->base.flags |= TCP_F_WRITING;
}

/* Write pend now, as far as the socket takes it (see the top of the file),
 * and take c off the dirty list. */
static void tcp_flush(struct tcp_conn *c)
{
    tcp_unmark_dirty(c);
    if (c->held && !(c->base.flags & TP_F_HOLD)) {
        tcp_deliver(c, c->held, c->held_len);
        if (tp_is_closing(&c->base))
            return;
        tcp_read_start(c); /* nothing, while paused again with some still held */
    }
    while (c->pend.len > 0 && (c->base.flags & (TP_F_CLOSING | TCP_F_WRITING | TP_F_ESTABLISHED)) ==
                                  TP_F_ESTABLISHED) {
        uv_buf_t b = {.base = (char *)c->pend.buf, .len = (unsigned int)c->pend.len};
        int n = uv_try_write((uv_stream_t *)&c->handle, &b, 1);

        if (n == UV_EAGAIN)
            n = 0;
        if (n < 0) {
            tcp_shutdown(c, n);
            return;
        }
        if ((size_t)n < c->pend.len) {
            tcp_write_start(c, (size_t)n);
            return;
        }
        c->pend.len = 0;
        /* A write of a few frames (a round trip, upkeep) is not a burst:
         * give the buffer back rather than hold it while the link idles. */
        if ((size_t)n < TCP_SBUF_MIN)
            tcp_sbuf_release(&c->pend);
        /* The owner may queue more from drain(): the loop writes it too. */
        tp_emit_drain(&c->base, 0, tcp_sendq_max(c));
    }
}

static void tcp_on_write(uv_write_t *req, int status)
{
    struct tcp_conn *c = container_of(req, struct tcp_conn, write_req);

    /* After uv_close, cancelled writes land here before the close callback
     * frees the conn: the buffers are still ours and nothing is to be done. */
    if (tp_is_closing(&c->base))
        return;
    c->base.flags &= ~TCP_F_WRITING;
    if (status < 0) {
        tcp_shutdown(c, status);
        return;
    }
    c->fly.len = 0;
    tcp_flush(c);
    tp_emit_drain(&c->base, c->pend.len + c->fly.len, tcp_sendq_max(c));
}

/* Make room for need more bytes in b, doubling but never past max. */
static int tcp_sbuf_reserve(struct tcp_sbuf *b, size_t need, size_t max)
{
    size_t cap = b->cap ? b->cap : TCP_SBUF_MIN;
    uint8_t *nb;

    if (b->len + need <= b->cap)
        return 0;
    while (cap < b->len + need)
        cap *= 2;
    if (cap > max)
        cap = max;
    nb = realloc(b->buf, cap);
    if (!nb)
        return OVL_ENOMEM;
    b->buf = nb;
    b->cap = cap;
    return 0;
}

static int tcp_send(struct transport *t, const uint8_t *frame, size_t len)
{
    struct tcp_conn *c = tcp_conn_of(t);
    size_t max = tcp_sendq_max(c);
    int err = tp_admit(t, frame, len, c->pend.len + c->fly.len, max);

    if (!err)
        err = tcp_sbuf_reserve(&c->pend, OVL_FRAME_LENHDR + len, max);
    if (err)
        return err;
    st_be16(c->pend.buf + c->pend.len, (uint16_t)len);
    memcpy(c->pend.buf + c->pend.len + OVL_FRAME_LENHDR, frame, len);
    c->pend.len += OVL_FRAME_LENHDR + len;
    tp_count_sent(t, len);
    /* Before the connection is up there is no socket to write to (the
     * connect callback flushes), and a uv_write under way flushes when it
     * completes. */
    if ((t->flags & (TP_F_ESTABLISHED | TCP_F_WRITING | TCP_F_DIRTY)) == TP_F_ESTABLISHED)
        tcp_mark_dirty(c);
    return 0;
}

/* Give back the send buffers that hold nothing now. */
static void tcp_trim(struct transport *t)
{
    struct tcp_conn *c = tcp_conn_of(t);

    if (c->pend.len == 0)
        tcp_sbuf_release(&c->pend);
    if (c->fly.len == 0 && !(c->base.flags & TCP_F_WRITING))
        tcp_sbuf_release(&c->fly);
}

size_t tp_tcp_held(const struct transport *t)
{
    const struct tcp_conn *c = tcp_conn_of(t);

    return c->pend.cap + c->fly.cap + (c->tail ? TCP_WIRE_MAX : 0) + (c->held ? c->held_len : 0);
}

static size_t tcp_queued(const struct transport *t)
{
    const struct tcp_conn *c = tcp_conn_of(t);

    return c->pend.len + c->fly.len;
}

/* ---- connection setup ------------------------------------------------- */

/* The socket is usable: tell the owner, then start reading and writing. */
static void tcp_established(struct tcp_conn *c, bool notify)
{
    c->base.flags |= TP_F_ESTABLISHED;
    if (notify) {
        tp_emit_connected(&c->base);
        if (tp_is_closing(&c->base))
            return;
    }
    tcp_read_start(c);
    tcp_flush(c);
}

static void tcp_on_connect(uv_connect_t *req, int status)
{
    struct tcp_conn *c = container_of(req, struct tcp_conn, connect_req);

    if (tp_is_closing(&c->base))
        return;
    if (status < 0) {
        tcp_shutdown(c, status);
        return;
    }
    tcp_established(c, true);
}

static int tcp_connect_addr(struct tcp_conn *c, const struct sockaddr *sa)
{
    return uv_tcp_connect(&c->connect_req, &c->handle, sa, tcp_on_connect);
}

static void tcp_on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    struct tcp_conn *c = container_of(req, struct tcp_conn, gai_req);
    struct sockaddr_storage ss;
    int err = tp_name_resolved(&c->base, status, res, &ss);

    if (err == TP_RESOLVED_CLOSING) {
        /* The close callback already ran and left the freeing to us. */
        if (c->base.flags & TCP_F_HANDLE_CLOSED)
            tcp_conn_free(c);
        return;
    }
    if (!err)
        err = tcp_connect_addr(c, (const struct sockaddr *)&ss);
    if (err)
        tcp_shutdown(c, err);
}

static int tcp_dial(struct tp_env *env, const struct ovl_uri *uri, const struct tp_cb *cb,
                    void *udata, struct transport **out)
{
    struct tcp_conn *c = NULL;
    struct sockaddr_storage ss;
    int err;

    *out = NULL;
    if (uri->port == 0)
        return OVL_EINVAL;
    err = tcp_conn_new(env, &c);
    if (err)
        return err;
    tp_set_cb(&c->base, cb, udata);
    if (uri->is_literal) {
        err = uri_sockaddr(uri, &ss);
        if (!err)
            err = tcp_connect_addr(c, (const struct sockaddr *)&ss);
    } else {
        err = tp_resolve_name(&c->base, &c->gai_req, uri, SOCK_STREAM, tcp_on_resolved);
    }
    if (err) {
        tcp_abort(c);
        return err;
    }
    *out = &c->base;
    return 0;
}

static void tcp_close(struct transport *t)
{
    tcp_shutdown(tcp_conn_of(t), 0);
}

static int tcp_peer_uri(const struct transport *t, char *out, size_t outlen)
{
    const struct tcp_conn *c = tcp_conn_of(t);
    struct sockaddr_storage ss;
    int len = (int)sizeof(ss);
    int err;

    err = uv_tcp_getpeername(&c->handle, (struct sockaddr *)&ss, &len);
    if (err)
        return err;
    return uri_from_sockaddr(out, outlen, "tcp", (const struct sockaddr *)&ss);
}

/* ---- listening -------------------------------------------------------- */

static void tcp_listener_on_close(uv_handle_t *h)
{
    free(h->data);
}

static void tcp_on_connection(uv_stream_t *server, int status)
{
    struct tcp_listener *l = server->data;
    struct tcp_conn *c = NULL;
    int err;

    if (l->closing)
        return;
    if (status < 0) {
        log_warn(l->env->log, "tcp: accept: %s", uv_strerror(status));
        return;
    }
    err = tcp_conn_new(l->env, &c);
    if (err) {
        log_error(l->env->log, "tcp: cannot take a connection: %s", ovl_strerror(err));
        return;
    }
    err = uv_accept(server, (uv_stream_t *)&c->handle);
    if (err) {
        log_warn(l->env->log, "tcp: accept: %s", uv_strerror(err));
        tcp_abort(c);
        return;
    }
    c->base.flags |= TP_F_INBOUND;
    if (!tp_emit_accept(&l->base, &c->base)) {
        tcp_shutdown(c, 0); /* not taken (and silent), unless already closing */
        return;
    }
    tcp_established(c, false);
}

static int tcp_listen(struct tp_env *env, const struct ovl_uri *uri, const struct tp_listen_cb *cb,
                      void *udata, struct tp_listener **out)
{
    struct tcp_listener *l;
    struct sockaddr_storage ss;
    unsigned int flags;
    int err;

    *out = NULL;
    /* Binding needs an address now; resolving would block or race. */
    if (!uri->is_literal)
        return OVL_EINVAL;
    err = uri_sockaddr(uri, &ss);
    if (err)
        return err;
    l = calloc(1, sizeof(*l));
    if (!l)
        return OVL_ENOMEM;
    l->base.ops = &tp_tcp_ops;
    l->base.cb = cb;
    l->base.udata = udata;
    l->env = env;
    err = uv_tcp_init(env->loop, &l->handle);
    if (err) {
        free(l);
        return err;
    }
    l->handle.data = l;
    /* v6-only lets [::] and 0.0.0.0 listen side by side on one port. */
    flags = ss.ss_family == AF_INET6 ? UV_TCP_IPV6ONLY : 0;
    err = uv_tcp_bind(&l->handle, (const struct sockaddr *)&ss, flags);
    if (!err)
        err = uv_listen((uv_stream_t *)&l->handle, TCP_BACKLOG, tcp_on_connection);
    if (err) {
        l->closing = true;
        uv_close((uv_handle_t *)&l->handle, tcp_listener_on_close);
        return err;
    }
    *out = &l->base;
    return 0;
}

static int tcp_listener_uri(const struct tp_listener *tl, char *out, size_t outlen)
{
    const struct tcp_listener *l = container_of(tl, struct tcp_listener, base);
    struct sockaddr_storage ss;
    int len = (int)sizeof(ss);
    int err;

    err = uv_tcp_getsockname(&l->handle, (struct sockaddr *)&ss, &len);
    if (err)
        return err;
    return uri_from_sockaddr(out, outlen, "tcp", (const struct sockaddr *)&ss);
}

static void tcp_listener_close(struct tp_listener *tl)
{
    struct tcp_listener *l;

    if (!tl)
        return;
    l = container_of(tl, struct tcp_listener, base);
    if (l->closing)
        return;
    l->closing = true;
    uv_close((uv_handle_t *)&l->handle, tcp_listener_on_close);
}

const struct tp_ops tp_tcp_ops = {
    .scheme = "tcp",
    .listen = tcp_listen,
    .dial = tcp_dial,
    .send = tcp_send,
    .close = tcp_close,
    .pause = tcp_pause,
    .resume = tcp_resume,
    .queued = tcp_queued,
    .trim = tcp_trim,
    .peer_uri = tcp_peer_uri,
    .listener_uri = tcp_listener_uri,
    .listener_close = tcp_listener_close,
};
