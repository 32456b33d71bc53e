/* stsock.c - a TCP socket joined to a stream (stsock.h). */
#include <stdlib.h>
#include <string.h>
#include <utlist.h>

#include "chain/stsock.h"
#include "lib/clock.h"

static void ss_flush(struct stsock *ss);

/* ---- the end of the loop turn ---- */

static void env_flush(uv_check_t *h)
{
    struct stsock_env *e = h->data;
    struct stsock *ss;

    /* ss_flush may close sockets (taking them off) and never adds any. */
    while ((ss = e->dirty) != NULL) {
        DL_DELETE2(e->dirty, ss, dprev, dnext);
        ss->flags &= ~SSF_DIRTY;
        ss_flush(ss);
    }
    uv_check_stop(h);
}

struct stsock_env *stsock_env_new(uv_loop_t *loop)
{
    struct stsock_env *e = calloc(1, sizeof(*e));

    if (!e)
        return NULL;
    (void)uv_check_init(loop, &e->check); /* cannot fail */
    e->check.data = e;
    return e;
}

static void env_freed(uv_handle_t *h)
{
    free(h->data);
}

void stsock_env_close(struct stsock_env **e)
{
    if (!*e)
        return;
    uv_close((uv_handle_t *)&(*e)->check, env_freed);
    *e = NULL;
}

/* Write ss once the turn's I/O is done. */
static void ss_mark(struct stsock *ss)
{
    if (ss->flags & (SSF_DIRTY | SSF_CLOSING))
        return;
    ss->flags |= SSF_DIRTY;
    DL_APPEND2(ss->env->dirty, ss, dprev, dnext);
    uv_check_start(&ss->env->check, env_flush);
}

int stsock_init(struct stsock *ss, struct stsock_env *env, struct stream *s,
                void (*done)(struct stsock *, int), void (*closed)(struct stsock *))
{
    int rc = uv_tcp_init(env->check.loop, &ss->tcp);

    if (rc)
        return rc;
    ss->tcp.data = ss;
    ss->env = env;
    ss->dprev = ss->dnext = NULL;
    ss->s = s;
    ss->writing = 0;
    ss->flags = 0;
    ss->done = done;
    ss->closed = closed;
    return 0;
}

/* Both ends finished: the peer's FIN passed on and ours sent. */
static void ss_check_done(struct stsock *ss)
{
    if ((ss->flags & (SSF_EOF_IN | SSF_SHUT_DONE | SSF_CLOSING)) == (SSF_EOF_IN | SSF_SHUT_DONE))
        ss->done(ss, 0);
}

static void ss_fail(struct stsock *ss, int err)
{
    if (!(ss->flags & SSF_CLOSING))
        ss->done(ss, err);
}

static void ss_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
    struct stsock *ss = h->data;
    uint8_t *p = NULL;
    size_t n = ss->s ? stream_wbuf(ss->s, &p) : 0;

    (void)hint;
    b->base = (char *)p;
    b->len = n;
}

static void ss_stop_reading(struct stsock *ss)
{
    if (ss->flags & SSF_READING) {
        uv_read_stop((uv_stream_t *)&ss->tcp);
        ss->flags &= ~SSF_READING;
    }
}

static void ss_read(uv_stream_t *t, ssize_t nread, const uv_buf_t *b)
{
    struct stsock *ss = t->data;
    uint8_t *p;

    (void)b;
    if (nread > 0 && ss->s) {
        stream_wrote(ss->s, (size_t)nread);
        if (!(ss->flags & SSF_CLOSING) && ss->s && stream_wbuf(ss->s, &p) == 0)
            ss_stop_reading(ss); /* the ring is full: wait for SE_WRITABLE */
        return;
    }
    if (nread == 0)
        return;
    ss_stop_reading(ss);
    if (nread == UV_ENOBUFS)
        return;
    if (nread != UV_EOF) {
        ss_fail(ss, (int)nread);
        return;
    }
    ss->flags |= SSF_EOF_IN;
    if (ss->s)
        stream_shutdown(ss->s);
    ss_check_done(ss);
}

static void ss_shut(uv_shutdown_t *req, int status)
{
    struct stsock *ss = req->data;

    if (status < 0) {
        ss_fail(ss, status);
        return;
    }
    ss->flags |= SSF_SHUT_DONE;
    ss_check_done(ss);
}

static void ss_wrote(uv_write_t *req, int status)
{
    struct stsock *ss = req->data;
    size_t n = ss->writing;

    ss->flags &= ~SSF_WRITING;
    ss->writing = 0;
    if (status < 0) {
        ss_fail(ss, status);
        return;
    }
    if (ss->s)
        stream_consumed(ss->s, n); /* credit back to the peer */
    ss_flush(ss);
}

/* Hand the socket what it takes now and give the peer that credit at
 * once: a write left to complete later would hold the whole window until
 * the reader took its last byte (a stream through three hops then moves
 * one window per round trip). True when the stream is still ours and
 * every byte it has went out. */
static bool ss_try_write(struct stsock *ss)
{
    const uint8_t *p;
    uv_buf_t b;
    size_t n;
    int rc;

    while (ss->s && (n = stream_rbuf(ss->s, &p)) > 0) {
        b = uv_buf_init((char *)(uintptr_t)p, (unsigned)n);
        rc = uv_try_write((uv_stream_t *)&ss->tcp, &b, 1);
        if (rc == UV_EAGAIN)
            rc = 0;
        if (rc < 0) {
            ss_fail(ss, rc);
            return false;
        }
        if (rc > 0)
            stream_consumed(ss->s, (size_t)rc);
        if (ss->flags & SSF_CLOSING)
            return false;
        if ((size_t)rc < n)
            break;
    }
    if (!ss->s || (n = stream_rbuf(ss->s, &p)) == 0)
        return ss->s != NULL;
    /* The socket is full: the rest goes when it drains. */
    b = uv_buf_init((char *)(uintptr_t)p, (unsigned)n);
    ss->wr.data = ss;
    rc = uv_write(&ss->wr, (uv_stream_t *)&ss->tcp, &b, 1, ss_wrote);
    if (rc) {
        ss_fail(ss, rc);
        return false;
    }
    ss->flags |= SSF_WRITING;
    ss->writing = n;
    return false;
}

/* Write what the stream received; pass its FIN on once all is written. */
static void ss_flush(struct stsock *ss)
{
    int rc;

    if ((ss->flags & (SSF_CONNECTED | SSF_WRITING | SSF_CLOSING)) != SSF_CONNECTED || !ss->s)
        return;
    if (!ss_try_write(ss))
        return;
    if (stream_eof(ss->s) && !(ss->flags & SSF_SHUT)) {
        ss->flags |= SSF_SHUT;
        ss->sh.data = ss;
        rc = uv_shutdown(&ss->sh, (uv_stream_t *)&ss->tcp, ss_shut);
        if (rc)
            ss_fail(ss, rc);
    }
}

static void ss_read_on(struct stsock *ss)
{
    int rc;

    if ((ss->flags & (SSF_CONNECTED | SSF_READING | SSF_EOF_IN | SSF_CLOSING)) != SSF_CONNECTED)
        return;
    rc = uv_read_start((uv_stream_t *)&ss->tcp, ss_alloc, ss_read);
    if (rc)
        ss_fail(ss, rc);
    else
        ss->flags |= SSF_READING;
}

int stsock_start(struct stsock *ss)
{
    ss->flags |= SSF_CONNECTED;
    (void)uv_tcp_nodelay(&ss->tcp, 1); /* small writes are requests: no Nagle delay */
    ss_read_on(ss);
    if (ss->flags & SSF_CLOSING)
        return 0;
    ss_flush(ss);
    return 0;
}

void stsock_event(struct stsock *ss, enum stream_event ev)
{
    if (ev == SE_READABLE)
        ss_mark(ss);
    else if (ev == SE_WRITABLE)
        ss_read_on(ss);
}

static void ss_closed(uv_handle_t *h)
{
    struct stsock *ss = h->data;

    ss->flags |= SSF_GONE;
    if (!(ss->flags & SSF_RESOLVING))
        ss->closed(ss);
}

void stsock_close(struct stsock *ss)
{
    if (ss->flags & SSF_CLOSING)
        return;
    if (ss->flags & SSF_DIRTY) {
        DL_DELETE2(ss->env->dirty, ss, dprev, dnext);
        ss->flags &= ~SSF_DIRTY;
    }
    ss->flags |= SSF_CLOSING;
    if (ss->flags & SSF_RESOLVING)
        (void)uv_cancel((uv_req_t *)&ss->gai);    /* its callback still runs */
    uv_close((uv_handle_t *)&ss->tcp, ss_closed); /* a connect out ends first */
}

/* ---- dialing ---- */

enum stream_reason stsock_reason(int err)
{
    switch (err) {
    case UV_ENETUNREACH:
        return SR_NET_UNREACH;
    case UV_EHOSTUNREACH:
        return SR_HOST_UNREACH;
    case UV_ETIMEDOUT:
        return SR_TIMEOUT;
    case UV_EMFILE:
    case UV_ENFILE:
        return SR_LIMIT;
    default:
        return SR_REFUSED;
    }
}

static void ss_connected(uv_connect_t *req, int status)
{
    struct stsock *ss = req->data;

    ss->flags &= ~SSF_DIALING;
    if (!(ss->flags & SSF_CLOSING))
        ss->dialed(ss, status < 0 ? stsock_reason(status) : 0);
}

/* Connect to a (len 4 or 16) on ss->port: 0, or the reason it failed. */
static int ss_connect(struct stsock *ss, const uint8_t *a, size_t len)
{
    struct sockaddr_storage sa;
    struct sockaddr_in *in = (struct sockaddr_in *)&sa;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&sa;
    int rc;

    if (ss->allow && !ss->allow(ss, a, len))
        return SR_POLICY;
    memset(&sa, 0, sizeof(sa));
    if (len == 4) {
        in->sin_family = AF_INET;
        in->sin_port = htons(ss->port);
        memcpy(&in->sin_addr, a, 4);
    } else {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(ss->port);
        memcpy(&in6->sin6_addr, a, 16);
    }
    ss->conn.data = ss;
    rc = uv_tcp_connect(&ss->conn, &ss->tcp, (const struct sockaddr *)&sa, ss_connected);
    if (rc)
        return (int)stsock_reason(rc);
    ss->flags |= SSF_DIALING;
    ss->deadline_ms = clock_now_ms() + STSOCK_DIAL_MS;
    return 0;
}

/* The name resolved: connect to the first address allowed, in order. */
static void ss_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    struct stsock *ss = req->data;
    int why = status < 0 ? SR_HOST_UNREACH : SR_POLICY;

    ss->flags &= ~SSF_RESOLVING;
    if (ss->n_resolving)
        (*ss->n_resolving)--;
    for (struct addrinfo *ai = res; !(ss->flags & SSF_CLOSING) && status == 0 && ai;
         ai = ai->ai_next) {
        const uint8_t *a = NULL;
        size_t len = 0;

        if (ai->ai_family == AF_INET && ai->ai_addrlen >= sizeof(struct sockaddr_in)) {
            a = (const uint8_t *)&((const struct sockaddr_in *)ai->ai_addr)->sin_addr;
            len = 4;
        } else if (ai->ai_family == AF_INET6 && ai->ai_addrlen >= sizeof(struct sockaddr_in6)) {
            a = ((const struct sockaddr_in6 *)ai->ai_addr)->sin6_addr.s6_addr;
            len = 16;
        }
        if (a && (why = ss_connect(ss, a, len)) != SR_POLICY)
            break;
    }
    uv_freeaddrinfo(res);
    if (ss->flags & SSF_CLOSING) {
        if (ss->flags & SSF_GONE)
            ss->closed(ss);
    } else if (why) {
        ss->dialed(ss, why);
    }
}

int stsock_dial(struct stsock *ss, const struct stream_target *t,
                bool (*allow)(const struct stsock *, const uint8_t *, size_t),
                void (*dialed)(struct stsock *, int))
{
    struct addrinfo hints;

    ss->port = t->port;
    ss->allow = allow;
    ss->dialed = dialed;
    if (t->atyp != STA_NAME)
        return ss_connect(ss, t->addr, t->atyp == STA_IPV4 ? 4 : 16);
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    ss->gai.data = ss;
    if (uv_getaddrinfo(ss->tcp.loop, &ss->gai, ss_resolved, t->name, NULL, &hints) != 0)
        return SR_HOST_UNREACH;
    ss->flags |= SSF_RESOLVING;
    if (ss->n_resolving)
        (*ss->n_resolving)++;
    ss->deadline_ms = clock_now_ms() + STSOCK_DIAL_MS;
    return 0;
}
