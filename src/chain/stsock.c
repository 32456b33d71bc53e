/* stsock.c - a TCP socket joined to a stream (stsock.h). */
#include "chain/stsock.h"

static void ss_flush(struct stsock *ss);

int stsock_init(struct stsock *ss, uv_loop_t *loop, struct stream *s,
                void (*done)(struct stsock *, int), void (*closed)(struct stsock *))
{
    int rc = uv_tcp_init(loop, &ss->tcp);

    if (rc)
        return rc;
    ss->tcp.data = ss;
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

/* Write what the stream received; pass its FIN on once all is written. */
static void ss_flush(struct stsock *ss)
{
    const uint8_t *p;
    uv_buf_t b;
    size_t n;
    int rc;

    if ((ss->flags & (SSF_CONNECTED | SSF_WRITING | SSF_CLOSING)) != SSF_CONNECTED || !ss->s)
        return;
    n = stream_rbuf(ss->s, &p);
    if (n) {
        b = uv_buf_init((char *)(uintptr_t)p, (unsigned)n);
        ss->wr.data = ss;
        rc = uv_write(&ss->wr, (uv_stream_t *)&ss->tcp, &b, 1, ss_wrote);
        if (rc) {
            ss_fail(ss, rc);
            return;
        }
        ss->flags |= SSF_WRITING;
        ss->writing = n;
        return;
    }
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
        ss_flush(ss);
    else if (ev == SE_WRITABLE)
        ss_read_on(ss);
}

static void ss_closed(uv_handle_t *h)
{
    struct stsock *ss = h->data;

    ss->closed(ss);
}

void stsock_close(struct stsock *ss)
{
    if (ss->flags & SSF_CLOSING)
        return;
    ss->flags |= SSF_CLOSING;
    uv_close((uv_handle_t *)&ss->tcp, ss_closed);
}
