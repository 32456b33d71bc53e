/* mhttp.c - the metrics listener: one GET /metrics per connection over
 * HTTP/1.1 (mhttp.h; the head is parsed by httpreq.c, the body built by
 * metrics.c).
 *
 * A connection reads its head into a buffer of MHTTP_REQ_MAX bytes,
 * allocated once it is taken (a connection over a cap never gets one),
 * answers once the head is complete, too large or malformed, then shuts
 * its side down and drops whatever still comes until the client closes.
 * One timer per connection bounds each phase: the head, then the answer
 * and the close.
 *
 * The counters live in the control server (ctl->http), which reads them
 * without calling in here; once mhttp_stop has run, connections still
 * closing no longer touch it.
 */
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control/ctl_int.h"
#include "control/httpreq.h"
#include "control/metrics.h"
#include "control/mhttp.h"
#include "core/timer.h"
#include "lib/uri.h"
#include "utlist.h"

/* Bits of mh_conn.flags. */
#define MHC_ANSWERED (1u << 0) /* the answer is going or gone: input is dropped */
#define MHC_WRITING  (1u << 1) /* uv_write in flight */
#define MHC_EOF      (1u << 2) /* the client closed its side */
#define MHC_CLOSING  (1u << 3) /* uv_close called; freed in its callback */
#define MHC_COUNTED  (1u << 4) /* taken: counted in open */

struct mh_conn {
    struct mhttp *m;
    struct mh_conn *prev, *next;
    uv_tcp_t tcp;      /* the connection's life: freed in its close callback */
    uv_timer_t *timer; /* core/timer.h; NULL once closing */
    uv_write_t wr;
    uv_shutdown_t sh;
    unsigned flags; /* MHC_* */
    uint64_t block; /* the client's address block (uri_addr_block) */
    struct httpreq req;
    uint8_t *in; /* MHTTP_REQ_MAX bytes; NULL for a refused connection */
    size_t len;
    char head[256];    /* the answer's status line and fields */
    struct kvbuf body; /* and its body */
};

struct mhttp {
    struct control *c; /* NULL once stopped */
    uv_tcp_t tcp;
    struct mh_conn *conns;
    unsigned open; /* the listener and the connections not yet freed */
};

static void mh_maybe_free(struct mhttp *m)
{
    if (!m->c && m->open == 0)
        free(m);
}

static void mh_lis_closed(uv_handle_t *h)
{
    struct mhttp *m = h->data;

    m->open--;
    mh_maybe_free(m);
}

static void mh_closed(uv_handle_t *h)
{
    struct mh_conn *k = h->data;
    struct mhttp *m = k->m;

    if (m->c && (k->flags & MHC_COUNTED))
        m->c->http.open--;
    DL_DELETE(m->conns, k);
    kvbuf_free(&k->body);
    free(k->in);
    free(k);
    m->open--;
    mh_maybe_free(m);
}

static void mh_close(struct mh_conn *k)
{
    if (k->flags & MHC_CLOSING)
        return;
    k->flags |= MHC_CLOSING;
    timer_close(&k->timer);
    uv_close((uv_handle_t *)&k->tcp, mh_closed);
}

/* No head in time, or the answer not taken in time. */
static void mh_timeout(uv_timer_t *t)
{
    struct mh_conn *k = t->data;

    if (k->m->c && (!(k->flags & MHC_ANSWERED) || (k->flags & MHC_WRITING)))
        k->m->c->http.timeouts++;
    mh_close(k);
}

static void mh_shut(uv_shutdown_t *req, int status)
{
    if (status < 0)
        mh_close(req->data);
}

/* The answer is out: send our FIN, then drop what comes until theirs. */
static void mh_written(uv_write_t *req, int status)
{
    struct mh_conn *k = req->data;

    k->flags &= ~MHC_WRITING;
    kvbuf_free(&k->body);
    if (k->flags & MHC_CLOSING)
        return;
    k->sh.data = k;
    if (status < 0 || (k->flags & MHC_EOF) ||
        uv_shutdown(&k->sh, (uv_stream_t *)&k->tcp, mh_shut) != 0)
        mh_close(k);
}

/* Build the answer for status code (metrics for 200) and write it. */
static void mh_answer(struct mh_conn *k, int code)
{
    static const uint16_t codes[MHTTP_N_CODES] = {200, 400, 404, 405, 431, 505};
    static const char reasons[] = "OK\0Bad Request\0Not Found\0Method Not Allowed\0"
                                  "Request Header Fields Too Large\0HTTP Version Not Supported\0";
    const char *why = reasons;
    struct control *c = k->m->c;
    unsigned i = 0;
    uv_buf_t b[2];
    int n;

    while (i < MHTTP_N_CODES - 1 && codes[i] != code) {
        why += strlen(why) + 1;
        i++;
    }
    if (code == 200) {
        metrics_build(&k->body, c->node, c);
    } else {
        kv_raw(&k->body, why, strlen(why));
        kv_raw(&k->body, "\n", 1);
    }
    n = snprintf(k->head, sizeof k->head,
                 "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s"
                 "Connection: close\r\n\r\n",
                 code, why, code == 200 ? METRICS_CONTENT_TYPE : "text/plain; charset=utf-8",
                 k->body.len, code == 405 ? "Allow: GET\r\n" : "");
    k->flags |= MHC_ANSWERED;
    if (k->body.err || n < 0 || (size_t)n >= sizeof k->head) {
        mh_close(k);
        return;
    }
    c->http.answers[i]++;
    b[0] = (uv_buf_t){.base = k->head, .len = (size_t)n};
    b[1] = (uv_buf_t){.base = k->body.data, .len = k->body.len};
    k->wr.data = k;
    uv_timer_start(k->timer, mh_timeout, MHTTP_TIMEOUT_MS, 0);
    if (uv_write(&k->wr, (uv_stream_t *)&k->tcp, b, 2, mh_written) != 0) {
        mh_close(k);
        return;
    }
    k->flags |= MHC_WRITING;
}

static void mh_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
    struct mh_conn *k = h->data;

    (void)hint;
    /* After the answer the head's bytes are no longer needed: reuse them. */
    if (k->flags & MHC_ANSWERED)
        k->len = 0;
    b->base = (char *)k->in + k->len;
    b->len = MHTTP_REQ_MAX - k->len;
}

static void mh_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
    struct mh_conn *k = s->data;
    int rc;

    (void)b;
    if (nread < 0) {
        uv_read_stop(s);
        k->flags |= MHC_EOF;
        if (!(k->flags & MHC_WRITING))
            mh_close(k);
        return;
    }
    if (nread == 0 || (k->flags & MHC_ANSWERED) || !k->m->c)
        return;
    k->len += (size_t)nread;
    rc = httpreq_parse(&k->req, k->in, k->len, MHTTP_REQ_MAX);
    if (rc > 0)
        mh_answer(k, httpreq_route(&k->req, k->in));
    else if (rc < 0)
        mh_answer(k, rc == OVL_ETOOBIG ? 431 : rc == OVL_EUNSUPP ? 505 : 400);
}

/* Whether k may stay: the caps on all connections and on its address
 * block's; the connections counted are the taken ones. */
static bool mh_admit(struct mhttp *m, struct mh_conn *k)
{
    struct sockaddr_storage sa;
    int len = sizeof sa;
    unsigned all = 0, same = 0;
    struct mh_conn *o;

    if (uv_tcp_getpeername(&k->tcp, (struct sockaddr *)&sa, &len) != 0)
        return false;
    k->block = uri_addr_block((const struct sockaddr *)&sa);
    DL_FOREACH(m->conns, o)
    {
        if (o == k || !(o->flags & MHC_COUNTED))
            continue;
        all++;
        same += o->block == k->block;
    }
    return all < MHTTP_MAX_CONNS && same < MHTTP_MAX_PER_ADDR;
}

static void mh_on_conn(uv_stream_t *server, int status)
{
    struct mhttp *m = server->data;
    struct mh_conn *k;

    if (status < 0 || !m->c || !(k = calloc(1, sizeof *k)))
        return;
    k->m = m;
    uv_tcp_init(server->loop, &k->tcp); /* cannot fail for TCP without flags */
    k->tcp.data = k;
    DL_APPEND(m->conns, k);
    m->open++;
    if (uv_accept(server, (uv_stream_t *)&k->tcp) != 0 || !mh_admit(m, k)) {
        m->c->http.refused++;
        mh_close(k);
        return;
    }
    k->flags |= MHC_COUNTED;
    m->c->http.accepted++;
    m->c->http.open++;
    if (!(k->in = malloc(MHTTP_REQ_MAX)) || !(k->timer = timer_new(server->loop, k)) ||
        uv_timer_start(k->timer, mh_timeout, MHTTP_TIMEOUT_MS, 0) != 0 ||
        uv_read_start((uv_stream_t *)&k->tcp, mh_alloc, mh_read) != 0)
        mh_close(k);
}

/* True for 127.0.0.0/8 and ::1. */
static bool mh_loopback(const struct sockaddr_storage *sa)
{
    if (sa->ss_family == AF_INET)
        return ((const uint8_t *)&((const struct sockaddr_in *)sa)->sin_addr)[0] == 127;
    return IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)sa)->sin6_addr);
}

/* Bind and listen on sa; log why not. */
static int mh_listen(struct mhttp *m, const struct sockaddr_storage *sa, const char *addr)
{
    struct ovl_log *lg = &m->c->node->log;
    int rc = uv_tcp_bind(&m->tcp, (const struct sockaddr *)sa, 0);
    int len = sizeof(struct sockaddr_storage);
    struct sockaddr_storage bound;

    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&m->tcp, MHTTP_MAX_CONNS, mh_on_conn);
    if (rc == 0 && (rc = uv_tcp_getsockname(&m->tcp, (struct sockaddr *)&bound, &len)) == 0)
        rc = uri_from_sockaddr(m->c->http_uri, sizeof m->c->http_uri, "tcp",
                               (struct sockaddr *)&bound);
    if (rc) {
        m->c->http_uri[0] = '\0';
        log_error(lg, "metrics: cannot listen on %s: %s", addr, ovl_strerror(rc));
        return rc == UV_EADDRINUSE ? OVL_EEXIST : OVL_EINVAL;
    }
    if (!mh_loopback(sa))
        log_warn(lg,
                 "metrics: listening on %s, not a loopback address: whoever reaches it reads "
                 "every counter of this node",
                 addr);
    log_info(lg, "metrics: listening on %s", m->c->http_uri);
    return 0;
}

int mhttp_start(struct control *c, const char *addr, struct mhttp **out)
{
    struct sockaddr_storage sa;
    char uri[OVL_URI_MAX];
    struct ovl_uri u;
    struct mhttp *m;
    int rc;

    *out = NULL;
    snprintf(uri, sizeof uri, "tcp://%s", addr);
    if (strlen(addr) >= sizeof uri - 6 || uri_parse(&u, uri) != 0 || uri_sockaddr(&u, &sa) != 0)
        return OVL_EINVAL;
    if (!(m = calloc(1, sizeof *m)))
        return OVL_ENOMEM;
    m->c = c;
    uv_tcp_init(c->node->loop, &m->tcp); /* cannot fail for TCP without flags */
    m->tcp.data = m;
    m->open = 1;
    if ((rc = mh_listen(m, &sa, addr)) != 0) {
        mhttp_stop(m);
        return rc;
    }
    *out = m;
    return 0;
}

void mhttp_stop(struct mhttp *m)
{
    struct mh_conn *k, *tmp;

    if (!m || !m->c)
        return;
    m->c->http_uri[0] = '\0';
    m->c->http.open = 0;
    m->c = NULL;
    uv_close((uv_handle_t *)&m->tcp, mh_lis_closed);
    DL_FOREACH_SAFE(m->conns, k, tmp)
    mh_close(k);
}
