/* control.c - the control socket server (protocol: docs/CONTROL.md).
 *
 * Each client has an input buffer that grows on demand up to its cap:
 * CONTROL_REQ_MAX, or c->send_max while the buffered request is a "send".
 * Every complete request in it is answered in order, so a client may
 * pipeline requests. Replies are heap buffers handed to uv_write and freed
 * in its callback. A client whose unread replies pile up is not read from
 * until they drain.
 *
 * A deferred request (ctl_defer) leaves the client "pending": its later
 * requests stay buffered until ctl_deferred_reply() answers, so replies keep
 * their order. The directory request behind it names the client as its
 * callback argument and is cancelled whenever the client is closed first.
 *
 * A "subscribe" leaves the client a subscriber for the rest of its
 * connection: its input is read (to see it go) and ignored, and ctl_feed,
 * the client role's inbox hook, moves each message of the inbox into an
 * event for one subscriber with less than CTL_WQ_MAX unwritten. The inbox
 * keeps what no subscriber has room for.
 *
 * Errors are negative codes (-errno or enum ovl_err) up to ctl_error_reply,
 * the one place that writes a reply's errno= line; ctl_wire_errno() turns
 * them into the positive errno the protocol carries there.
 *
 * Lifetime: a client's life is its pipe: it is freed in the pipe's close
 * callback, while its idle timer is a core/timer.h handle of its own. The
 * server handle and every client count in c->open; control_stop closes them
 * all and c is freed by the last close callback.
 */
#include "control/control.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "control/ctl_int.h"
#include "core/timer.h"
#include "dir/dir.h"
#include "lib/kvmsg.h"
#include "ovl_config.h"

#define CTL_BACKLOG  16
#define CTL_WQ_MAX   (1u << 20) /* queued reply bytes before a client is not read */
#define CTL_SUN_PATH sizeof(((struct sockaddr_un *)0)->sun_path)
#define CTL_STR_(x)  #x
#define CTL_STR(x)   CTL_STR_(x)
/* Only a request that starts exactly so may grow past CONTROL_REQ_MAX. */
#define CTL_SEND_PREFIX     "ovl-control=1\ncommand=send\n"
#define CTL_SEND_PREFIX_LEN (sizeof(CTL_SEND_PREFIX) - 1)
#define CTL_REPLY_PREFIX    "ovl-control=1\ncommand=reply\n" /* may grow the same way */

/* Where a client is in its life; it only ever moves forward (see
 * ctl_set_state). */
enum ctl_state {
    CTL_OPEN,     /* reading requests and answering them */
    CTL_DRAINING, /* read nothing more; close once the writes are done */
    CTL_CLOSING,  /* handles closing; freed in the pipe's close callback */
};

/* What else may hold of a client, in any combination (ctl_client.flags). */
#define CTL_F_REFUSED (1u << 0) /* over CONTROL_MAX_CLIENTS: gets one EBUSY reply */
#define CTL_F_PAUSED  (1u << 1) /* replies pile up: do not read until they drain */
#define CTL_F_EOF     (1u << 2) /* the client shut down its side; answer what is buffered */
#define CTL_F_PENDING (1u << 3) /* a deferred reply is outstanding */
#define CTL_F_READING (1u << 4) /* uv_read_start is in force */
#define CTL_F_SUB     (1u << 5) /* subscribed: gets events, its input is ignored */

struct ctl_client {
    struct control *ctl;
    struct ctl_client *prev, *next;
    uv_pipe_t pipe;         /* the client's life: freed in its close callback */
    uv_timer_t *idle_timer; /* core/timer.h; NULL once closing */
    enum ctl_state state;
    unsigned flags;  /* CTL_F_* */
    unsigned writes; /* uv_write requests in flight */
    size_t queued;   /* bytes of those requests */
    char *buf;       /* heap, cap bytes; requests as received */
    size_t len, cap;
    size_t scan; /* where the search for the blank line resumes */
    size_t hdr;  /* the first request's lines end here, once found (0: not yet) */
    size_t need; /* and, with its raw payload (send length=N), the request here */
};

struct ctl_write {
    uv_write_t req;
    struct ctl_client *cl;
    char *data;
    size_t len;
    bool stop_node; /* the reply to "shutdown": stop the daemon once it is out */
};

static void ctl_client_process(struct ctl_client *cl);
static void ctl_feed(void *arg);
static int ctl_finish_ok(struct kvbuf *out, const char **err);
static void ctl_update_reading(struct ctl_client *cl);
static void ctl_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf);
static void ctl_on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

/* ---- lifetime ---------------------------------------------------------- */

static void ctl_maybe_free(struct control *c)
{
    if (c->stopping && c->open == 0)
        free(c);
}

static void ctl_server_closed(uv_handle_t *h)
{
    struct control *c = h->data;

    c->open--;
    ctl_maybe_free(c);
}

/* Only forward: open, then draining, then closing; or open to closing. */
#ifndef NDEBUG
static bool ctl_state_can_transition(enum ctl_state from, enum ctl_state to)
{
    static const unsigned char next[] = {
        [CTL_OPEN] = 1u << CTL_DRAINING | 1u << CTL_CLOSING,
        [CTL_DRAINING] = 1u << CTL_CLOSING,
        [CTL_CLOSING] = 0,
    };

    return (next[from] >> to) & 1u;
}
#endif

static void ctl_set_state(struct ctl_client *cl, enum ctl_state to)
{
    assert(ctl_state_can_transition(cl->state, to));
    cl->state = to;
}

/* The pipe's close callback: the client goes with it. */
static void ctl_client_closed(uv_handle_t *h)
{
    struct ctl_client *cl = h->data;
    struct control *c = cl->ctl;

    if (cl->prev)
        cl->prev->next = cl->next;
    else
        c->clients = cl->next;
    if (cl->next)
        cl->next->prev = cl->prev;
    free(cl->buf);
    free(cl);
    c->open--;
    ctl_maybe_free(c);
}

static void ctl_client_close(struct ctl_client *cl)
{
    if (cl->state == CTL_CLOSING)
        return;
    ctl_set_state(cl, CTL_CLOSING);
    /* The deferred request must never call back into a freed client. */
    if ((cl->flags & CTL_F_PENDING) && cl->ctl->node->dir)
        dir_cancel(cl->ctl->node->dir, cl);
    if (cl->flags & CTL_F_PENDING)
        client_forget_cb(cl->ctl->node->client, cl);
    cl->flags &= ~CTL_F_PENDING;
    if (!(cl->flags & CTL_F_REFUSED))
        cl->ctl->n_active--;
    timer_close(&cl->idle_timer);
    uv_close((uv_handle_t *)&cl->pipe, ctl_client_closed);
}

/* Stop reading; the client is closed once its replies are written. Only an
 * open client starts draining (the callers never drain one twice). */
static void ctl_client_drain(struct ctl_client *cl)
{
    if (cl->state != CTL_OPEN)
        return;
    ctl_set_state(cl, CTL_DRAINING);
    ctl_update_reading(cl);
    if (cl->writes == 0 && !(cl->flags & CTL_F_PENDING))
        ctl_client_close(cl);
}

static void ctl_stop_node(struct control *c)
{
    struct node *n = c->node;

    /* While stopping, the app is already on its way out: do not re-enter it. */
    if (c->stopping || !n->app_stop)
        return;
    log_info(&n->log, "shutdown requested over the control socket");
    n->app_stop(n);
}

/* ---- buffering --------------------------------------------------------- */

/* Whether the buffered request is a send or a reply, which carry a message. */
static bool ctl_is_send(const struct ctl_client *cl)
{
    return (cl->len >= CTL_SEND_PREFIX_LEN &&
            memcmp(cl->buf, CTL_SEND_PREFIX, CTL_SEND_PREFIX_LEN) == 0) ||
           (cl->len > CTL_SEND_PREFIX_LEN &&
            memcmp(cl->buf, CTL_REPLY_PREFIX, CTL_SEND_PREFIX_LEN + 1) == 0);
}

/* The most bytes the request at the start of the buffer may have. */
static size_t ctl_limit(const struct ctl_client *cl)
{
    uint64_t max = cl->ctl->send_max;

    if (cl->ctl->node->client && ctl_is_send(cl) && max > CONTROL_REQ_MAX)
        return max < SIZE_MAX ? (size_t)max : SIZE_MAX;
    return CONTROL_REQ_MAX;
}

/* The N of a "length=N" line among the lines buf[0..hdr) of a send: its
 * raw payload's size. 0 when there is none or N is not a plain decimal
 * (the command then reports it); N may be anything up to SIZE_MAX / 2. */
static size_t ctl_raw_length(const char *buf, size_t hdr)
{
    static const char key[] = "\nlength=";
    const char *p = buf, *end = buf + hdr;
    size_t n = 0;

    while ((p = memchr(p, '\n', (size_t)(end - p))) != NULL &&
           (size_t)(end - p) > sizeof(key) - 1 && memcmp(p, key, sizeof(key) - 1) != 0)
        p++;
    if (!p || (size_t)(end - p) <= sizeof(key) - 1)
        return 0;
    for (p += sizeof(key) - 1; p < end && *p >= '0' && *p <= '9'; p++) {
        if (n > SIZE_MAX / 20)
            return SIZE_MAX / 2; /* over any cap: refused as too big */
        n = n * 10 + (size_t)(*p - '0');
    }
    return p < end && *p == '\n' ? n : 0;
}

/* Return the length of the first complete request, 0 if none yet (the rule
 * of kv_message_len, resumed where the last search stopped), or the length
 * it will have once its raw payload is in, which may be more than is
 * buffered. */
static size_t ctl_msg_len(struct ctl_client *cl)
{
    const char *nl;

    if (cl->need)
        return cl->need;
    if (cl->len > 0 && cl->buf[0] == '\n')
        return cl->hdr = cl->need = 1;
    for (size_t i = cl->scan > 0 ? cl->scan : 1; i < cl->len; i = (size_t)(nl - cl->buf) + 1) {
        if (!(nl = memchr(cl->buf + i, '\n', cl->len - i)))
            break;
        if (nl[-1] == '\n') {
            cl->hdr = (size_t)(nl - cl->buf) + 1;
            cl->need = cl->hdr + (ctl_is_send(cl) ? ctl_raw_length(cl->buf, cl->hdr) : 0);
            return cl->need;
        }
    }
    cl->scan = cl->len;
    return 0;
}

/* Drop the first m bytes; give back memory a big request left behind. */
static void ctl_consume(struct ctl_client *cl, size_t m)
{
    memmove(cl->buf, cl->buf + m, cl->len - m);
    cl->len -= m;
    cl->scan = cl->hdr = cl->need = 0;
    if (cl->cap > CONTROL_REQ_MAX && cl->len <= CONTROL_REQ_MAX) {
        char *p = realloc(cl->buf, CONTROL_REQ_MAX);

        if (p) {
            cl->buf = p;
            cl->cap = CONTROL_REQ_MAX;
        }
    }
}

/* Read when there is room and nothing says wait. */
static void ctl_update_reading(struct ctl_client *cl)
{
    bool want = cl->state == CTL_OPEN &&
                !(cl->flags & (CTL_F_EOF | CTL_F_PAUSED | CTL_F_REFUSED)) &&
                cl->len < ctl_limit(cl);
    bool reading = (cl->flags & CTL_F_READING) != 0;

    if (want && !reading) {
        cl->flags |= CTL_F_READING;
        if (uv_read_start((uv_stream_t *)&cl->pipe, ctl_alloc, ctl_on_read) != 0)
            ctl_client_close(cl);
    } else if (!want && reading) {
        cl->flags &= ~CTL_F_READING;
        uv_read_stop((uv_stream_t *)&cl->pipe);
    }
}

/* ---- writing ----------------------------------------------------------- */

static void ctl_on_idle(uv_timer_t *t)
{
    struct ctl_client *cl = t->data;

    cl->ctl->st.clients_dropped++;
    log_debug(&cl->ctl->node->log, "control: dropping an idle client");
    ctl_client_close(cl);
}

/* Restart the idle clock; a client waiting for a deferred reply or for
 * events is not idle. */
static void ctl_touch(struct ctl_client *cl)
{
    if (cl->state == CTL_CLOSING)
        return;
    if (cl->flags & (CTL_F_PENDING | CTL_F_SUB))
        uv_timer_stop(cl->idle_timer);
    else
        uv_timer_start(cl->idle_timer, ctl_on_idle, CONTROL_IDLE_MS, 0);
}

/* After a reply went out or a deferred one arrived: answer what is
 * buffered, close a client that said goodbye, resume reading. */
static void ctl_carry_on(struct ctl_client *cl)
{
    bool pending;

    ctl_client_process(cl);
    pending = (cl->flags & CTL_F_PENDING) != 0;
    if (cl->state == CTL_OPEN && (cl->flags & CTL_F_EOF) && !pending)
        ctl_client_drain(cl);
    else if (cl->state == CTL_DRAINING && cl->writes == 0 && !pending)
        ctl_client_close(cl);
    else if (cl->state != CTL_CLOSING)
        ctl_update_reading(cl);
}

static void ctl_on_write(uv_write_t *req, int status)
{
    struct ctl_write *w = container_of(req, struct ctl_write, req);
    struct ctl_client *cl = w->cl;
    struct control *c = cl->ctl;
    bool stop = w->stop_node;

    cl->writes--;
    cl->queued -= w->len;
    free(w->data);
    free(w);
    if (status < 0) {
        ctl_client_close(cl);
    } else if (cl->state != CTL_CLOSING) {
        if (cl->queued <= CTL_WQ_MAX / 2)
            cl->flags &= ~CTL_F_PAUSED;
        if (cl->flags & CTL_F_SUB)
            ctl_feed(c);
        ctl_carry_on(cl);
    }
    ctl_touch(cl);
    if (stop)
        ctl_stop_node(c); /* last: the app may stop us from here */
}

/* Hand the finished reply in b to the client (b is emptied). */
static void ctl_send(struct ctl_client *cl, struct kvbuf *b, bool stop_node)
{
    struct ctl_write *w = NULL;
    uv_buf_t ub;

    if (cl->state == CTL_CLOSING || b->err || !(w = malloc(sizeof *w))) {
        kvbuf_free(b);
        ctl_client_close(cl);
        goto out;
    }
    w->cl = cl;
    w->data = b->data;
    w->len = b->len;
    w->stop_node = stop_node;
    *b = (struct kvbuf){0};
    ub = (uv_buf_t){.base = w->data, .len = (unsigned)w->len};
    if (uv_write(&w->req, (uv_stream_t *)&cl->pipe, &ub, 1, ctl_on_write) != 0) {
        free(w->data);
        free(w);
        ctl_client_close(cl);
        goto out;
    }
    cl->writes++;
    cl->queued += w->len;
    if (cl->queued > CTL_WQ_MAX && !(cl->flags & CTL_F_PAUSED)) {
        cl->flags |= CTL_F_PAUSED;
        ctl_update_reading(cl);
    }
    return;
out:
    if (stop_node)
        ctl_stop_node(cl->ctl);
}

/* Move the inbox's messages to the subscribers, each message to one of
 * them with room (see the top of the file). */
static void ctl_feed(void *arg)
{
    struct control *c = arg;
    struct ctl_client *cl;
    struct client_msg *m;

    for (cl = c->clients; cl; cl = cl->next) {
        while ((cl->flags & CTL_F_SUB) && cl->state == CTL_OPEN && cl->queued < CTL_WQ_MAX &&
               client_recv(c->node->client, &m, 1) == 1) {
            struct kvbuf ev = {0};
            const char *err;

            ctl_reply_begin(&ev);
            kv_adds(&ev, "event", "message");
            if (ctl_add_msg(&ev, 0, m) != 0)
                ev.err = OVL_ENOMEM; /* the subscriber is closed: it would miss it */
            ovl_wipe(m->data, m->len);
            free(m);
            (void)ctl_finish_ok(&ev, &err);
            ctl_send(cl, &ev, false);
        }
    }
}

/* Start a successful reply with the version line. */
void ctl_reply_begin(struct kvbuf *out)
{
    kv_addu(out, "ovl-control", CONTROL_PROTO_VERSION);
}

/* The positive errno a reply's errno= line carries for err, a negative
 * code: the nearest errno for an enum ovl_err, the errno itself for -errno,
 * EIO for anything else. */
static int ctl_wire_errno(int err)
{
    static const struct {
        int ovl, e;
    } map[] = {
        {OVL_ENOMEM, ENOMEM},       {OVL_EINVAL, EINVAL},      {OVL_EPROTO, EPROTO},
        {OVL_ECRYPTO, EBADMSG},     {OVL_EAGAIN, EAGAIN},      {OVL_ECLOSED, ECONNRESET},
        {OVL_ETIMEDOUT, ETIMEDOUT}, {OVL_EPERM, EPERM},        {OVL_ENOENT, ENOENT},
        {OVL_EEXIST, EEXIST},       {OVL_EUNSUPP, EOPNOTSUPP}, {OVL_ETOOBIG, EMSGSIZE},
        {OVL_EREPLAY, EBADMSG},
    };

    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (map[i].ovl == err)
            return map[i].e;
    if (err < 0 && err > OVL_ERR_BASE)
        return -err;
    return EIO;
}

/* Write the error reply for err (a negative code) into out: the one place
 * an error becomes the protocol's positive errno. */
static void ctl_error_reply(struct kvbuf *out, int err, const char *msg)
{
    ctl_reply_begin(out);
    kv_adds(out, "error", msg);
    kv_addu(out, "errno", (uint64_t)ctl_wire_errno(err));
    kv_end(out);
}

/* Close a successful reply; an encoding failure turns it into -EIO. */
static int ctl_finish_ok(struct kvbuf *out, const char **err)
{
    kv_addu(out, "errno", 0);
    kv_end(out);
    if (out->err == OVL_EINVAL) {
        *err = "the reply could not be encoded";
        return -EIO;
    }
    return 0;
}

/* Turn out into the error reply for e, a negative code (counted and logged). */
static void ctl_make_error(struct control *c, struct kvbuf *out, int e, const char *msg)
{
    c->st.errors++;
    kvbuf_free(out);
    *out = (struct kvbuf){0};
    ctl_error_reply(out, e, msg ? msg : "failed");
    log_debug(&c->node->log, "control: request failed: %s (errno %d)", msg ? msg : "",
              ctl_wire_errno(e));
}

/* Answer cl's deferred request; see ctl_int.h. */
void ctl_deferred_reply(struct ctl_client *cl, int e, const char *msg, struct kvbuf *out)
{
    struct control *c = cl->ctl;
    struct kvbuf reply = {0};

    assert(e <= 0);
    if (cl->state == CTL_CLOSING || !(cl->flags & CTL_F_PENDING)) {
        kvbuf_free(out);
        return;
    }
    cl->flags &= ~CTL_F_PENDING;
    if (e == 0) {
        reply = *out; /* begun with ctl_reply_begin */
        *out = (struct kvbuf){0};
        e = ctl_finish_ok(&reply, &msg);
    }
    if (e != 0)
        ctl_make_error(c, &reply, e, msg);
    kvbuf_free(out);
    ctl_send(cl, &reply, false);
    ctl_touch(cl);
    if (cl->state != CTL_CLOSING)
        ctl_carry_on(cl);
}

/* ---- requests ---------------------------------------------------------- */

/* Quote peer-chosen text in an error only when it is short and plain ASCII,
 * so the error line itself always encodes. */
static const char *ctl_quotable(const char *s)
{
    size_t i;

    for (i = 0; s[i]; i++)
        if (i >= 64 || s[i] < 0x21 || s[i] > 0x7e)
            return "(too long or unprintable)";
    return s;
}

/* 0 when key is not one of args (a command's, after its name), 1 when it is, 2 when it may
 * also repeat. */
static int ctl_arg_known(const char *args, const char *key)
{
    size_t n = strlen(key), k;

    for (const char *p = args; *p; p += k) {
        k = strcspn(p, " *");
        if (k == n && memcmp(p, key, n) == 0)
            return p[k] == '*' ? 2 : 1;
        while (p[k] == ' ' || p[k] == '*') /* not strspn: one import fewer */
            k++;
    }
    return 0;
}

/* Accept only the command's own arguments, each at most once (but the one
 * that may repeat). */
static int ctl_check_args(struct ctl_req *rq, const char *args)
{
    const struct kvmsg *m = rq->m;
    size_t i, k;

    for (i = 2; i < m->n; i++) {
        const char *key = m->pairs[i].key;
        int known = ctl_arg_known(args, key);
        const char *what = known ? NULL : "unknown";

        for (k = 2; known == 1 && !what && k < i; k++)
            if (strcmp(key, m->pairs[k].key) == 0)
                what = "duplicate";
        if (what)
            return ctl_fail(rq, -EINVAL, "%s argument %s for %s", what, ctl_quotable(key),
                            m->pairs[1].value);
    }
    return 0;
}

/* The function of the command called name, and in *args its argument
 * keys (see struct ctl_cmd_table); NULL if there is none. */
static ctl_cmd_fn ctl_find_cmd(const struct control *c, const char *name, const char **args)
{
    for (unsigned t = 0; t < c->n_tables; t++) {
        const char *p = c->tables[t]->cmds, *q;

        for (size_t i = 0; *p; i++, p += strlen(p) + 1) {
            for (q = name; *q && *q != ' ' && *q == *p; q++) /* no blank: not "send to" */
                p++;
            if (!*q && (*p == ' ' || !*p)) {
                *args = p;
                return c->tables[t]->fns[i];
            }
        }
    }
    return NULL;
}

/* Check the envelope, then run the command; return 0 or a negative code. */
static int ctl_dispatch(struct ctl_req *rq)
{
    const struct kvmsg *m = rq->m;
    const char *args;
    ctl_cmd_fn fn;
    int e;

    if (m->n == 0 || strcmp(m->pairs[0].key, "ovl-control") != 0) {
        rq->err = "a request must start with ovl-control=1";
        return -EPROTO;
    }
    if (strcmp(m->pairs[0].value, "1") != 0)
        return ctl_fail(rq, -EPROTO, "unsupported control protocol version %s",
                        ctl_quotable(m->pairs[0].value));
    if (m->n < 2 || strcmp(m->pairs[1].key, "command") != 0) {
        rq->err = "the second line must be command=NAME";
        return -EINVAL;
    }
    if (!(fn = ctl_find_cmd(rq->ctl, m->pairs[1].value, &args)))
        return ctl_fail(rq, -EOPNOTSUPP, "unknown command %s", ctl_quotable(m->pairs[1].value));
    if ((e = ctl_check_args(rq, args)) != 0)
        return e;
    ctl_reply_begin(rq->out);
    return fn(rq);
}

/* Answer the request whose lines are buf[0..len) (parsed in place) and
 * whose raw payload, if any, is the raw bytes after them. */
static void ctl_handle(struct ctl_client *cl, char *buf, size_t len, size_t raw)
{
    struct control *c = cl->ctl;
    struct kvmsg m = {0};
    struct kvbuf out = {0};
    struct ctl_req rq = {.ctl = c,
                         .cl = cl,
                         .m = &m,
                         .out = &out,
                         .raw = (const uint8_t *)buf + len,
                         .raw_len = raw};
    bool is_send = ctl_is_send(cl);
    /* A send may carry as many data lines as its byte cap allows. */
    size_t max_pairs = is_send ? CONTROL_REQ_PAIRS + len / 6 : CONTROL_REQ_PAIRS;
    int r, e;

    c->st.requests++;
    r = kvmsg_parse(&m, buf, len, max_pairs);
    if (r == OVL_ETOOBIG) {
        e = -E2BIG;
        rq.err = "request has more than " CTL_STR(CONTROL_REQ_PAIRS) " lines";
    } else if (r != 0) {
        e = -EINVAL;
        rq.err = "malformed request: every line must be key=value";
    } else {
        e = ctl_dispatch(&rq);
    }
    kvmsg_free(&m);
    assert(e <= 0); /* never a positive errno: the wire's, not ours */
    if (e == 0 && (rq.flags & CTL_RQ_DEFERRED)) {
        kvbuf_free(&out);
        cl->flags |= CTL_F_PENDING;
        ctl_touch(cl);
        return;
    }
    if (e == 0)
        e = ctl_finish_ok(&out, &rq.err);
    if (e != 0)
        ctl_make_error(c, &out, e, rq.err);
    ctl_send(cl, &out, e == 0 && (rq.flags & CTL_RQ_STOP_NODE));
    if (e == -E2BIG)
        ctl_client_drain(cl); /* cannot trust where the next request starts */
    if (e == 0 && (rq.flags & CTL_RQ_SUBSCRIBE)) {
        cl->flags |= CTL_F_SUB;
        ctl_touch(cl);
        ctl_feed(c); /* what is waiting already */
    }
}

static void ctl_too_big(struct ctl_client *cl, size_t limit)
{
    struct kvbuf out = {0};
    char msg[96];

    cl->ctl->st.requests++;
    snprintf(msg, sizeof msg, "request longer than %zu bytes", limit);
    ctl_make_error(cl->ctl, &out, -E2BIG, msg);
    ctl_send(cl, &out, false);
    ctl_client_drain(cl);
}

static void ctl_client_process(struct ctl_client *cl)
{
    while (cl->state == CTL_OPEN && !(cl->flags & (CTL_F_PAUSED | CTL_F_PENDING))) {
        size_t m;

        if (cl->flags & CTL_F_SUB) { /* a subscriber's input means nothing */
            ctl_consume(cl, cl->len);
            return;
        }
        m = ctl_msg_len(cl);
        if (m == 0 || m > cl->len) {
            size_t limit = ctl_limit(cl);

            if (cl->len >= limit || m > limit)
                ctl_too_big(cl, limit);
            return;
        }
        ctl_handle(cl, cl->buf, cl->hdr, m - cl->hdr);
        if (cl->state == CTL_CLOSING)
            return;
        ctl_consume(cl, m);
    }
}

/* Offer the free end of the buffer, growing it (up to the request's cap)
 * when it is full; a zero-length buffer makes libuv report UV_ENOBUFS. */
static void ctl_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    struct ctl_client *cl = h->data;
    size_t limit = ctl_limit(cl);

    (void)hint;
    if (cl->len == cl->cap && cl->cap < limit) {
        size_t cap = cl->cap ? cl->cap * 2 : CONTROL_REQ_MAX;
        char *p;

        if (cap < cl->cap || cap > limit)
            cap = limit;
        if ((p = realloc(cl->buf, cap)) != NULL) {
            cl->buf = p;
            cl->cap = cap;
        }
    }
    *buf = (uv_buf_t){.base = cl->buf ? cl->buf + cl->len : NULL,
                      .len = (unsigned)(cl->cap - cl->len)};
}

static void ctl_on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct ctl_client *cl = s->data;

    (void)buf;
    if (nread == UV_EOF) {
        /* A client may half-close after its last request: finish the replies. */
        cl->flags |= CTL_F_EOF;
        ctl_carry_on(cl);
        return;
    }
    if (nread < 0) {
        ctl_client_close(cl);
        return;
    }
    if (nread == 0)
        return;
    cl->len += (size_t)nread;
    ctl_touch(cl);
    ctl_carry_on(cl);
}

/* ---- accepting --------------------------------------------------------- */

static void ctl_refuse(struct ctl_client *cl)
{
    struct kvbuf out = {0};

    cl->ctl->st.clients_refused++;
    log_warn(&cl->ctl->node->log, "control: refusing a client: %d already connected",
             CONTROL_MAX_CLIENTS);
    ctl_error_reply(&out, -EBUSY, "too many control clients");
    ctl_send(cl, &out, false);
    ctl_client_drain(cl);
}

static void ctl_on_connection(uv_stream_t *server, int status)
{
    struct control *c = server->data;
    struct ctl_client *cl;

    if (status < 0) {
        log_warn(&c->node->log, "control: accept: %s", uv_strerror(status));
        return;
    }
    if (!(cl = calloc(1, sizeof *cl))) {
        log_error(&c->node->log, "control: out of memory accepting a client");
        return;
    }
    cl->ctl = c;
    uv_pipe_init(c->node->loop, &cl->pipe, 0);
    cl->pipe.data = cl;
    cl->idle_timer = timer_new(c->node->loop, cl);
    cl->next = c->clients;
    if (c->clients)
        c->clients->prev = cl;
    c->clients = cl;
    c->open++;
    if (c->n_active >= CONTROL_MAX_CLIENTS)
        cl->flags |= CTL_F_REFUSED;
    else
        c->n_active++;
    /* Accept even without a timer, so the connection does not stay queued. */
    if (uv_accept(server, (uv_stream_t *)&cl->pipe) != 0 || !cl->idle_timer) {
        ctl_client_close(cl);
        return;
    }
    ctl_touch(cl);
    if (cl->flags & CTL_F_REFUSED)
        ctl_refuse(cl);
    else
        ctl_update_reading(cl);
}

/* ---- start and stop ---------------------------------------------------- */

static void ctl_sockaddr(struct sockaddr_un *sa, const char *path)
{
    memset(sa, 0, sizeof *sa);
    sa->sun_family = AF_UNIX;
    memcpy(sa->sun_path, path, strlen(path) + 1);
}

/* Remove a socket left by a dead ovld; refuse a live one or a non-socket. */
static int ctl_clear_stale(const struct node *n, const char *path)
{
    struct sockaddr_un sa;
    struct stat st;
    int fd, r, e;

    if (fstatat(AT_FDCWD, path, &st, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno == ENOENT)
            return 0;
        e = errno;
        log_error(&n->log, "control socket %s: %s", path, strerror(e));
        return -e;
    }
    if (!S_ISSOCK(st.st_mode)) {
        log_error(&n->log, "control socket %s: exists and is not a socket", path);
        return OVL_EEXIST;
    }
    if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)) < 0)
        return -errno;
    ctl_sockaddr(&sa, path);
    r = connect(fd, (struct sockaddr *)&sa, sizeof sa);
    e = errno;
    close(fd);
    /* EAGAIN: its backlog is full, so someone is listening. */
    if (r == 0 || e == EAGAIN) {
        log_error(&n->log, "control socket %s: another ovld is listening on it", path);
        return OVL_EEXIST;
    }
    if (e != ECONNREFUSED) {
        log_error(&n->log, "control socket %s: %s", path, strerror(e));
        return -e;
    }
    if (unlink(path) != 0 && errno != ENOENT) {
        e = errno;
        log_error(&n->log, "control socket %s: cannot remove stale socket: %s", path, strerror(e));
        return -e;
    }
    log_info(&n->log, "control socket %s: removed a stale socket", path);
    return 0;
}

/* Make the listening socket; nobody but the owner may ever connect. */
static int ctl_bind(const struct node *n, const char *path, int *out)
{
    struct sockaddr_un sa;
    mode_t old;
    int fd, r, e;

    *out = -1;
    if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
        return -errno;
    ctl_sockaddr(&sa, path);
    old = umask(0177);
    r = bind(fd, (struct sockaddr *)&sa, sizeof sa);
    e = errno;
    umask(old);
    if (r != 0) {
        log_error(&n->log, "control socket %s: cannot bind: %s%s", path, strerror(e),
                  e == ENOENT ? " (does its directory exist?)" : "");
        goto fail_fd;
    }
    if (chmod(path, 0600) != 0 || listen(fd, CTL_BACKLOG) != 0) {
        e = errno;
        log_error(&n->log, "control socket %s: %s", path, strerror(e));
        goto fail_unlink;
    }
    *out = fd;
    return 0;
fail_unlink:
    unlink(path);
fail_fd:
    close(fd);
    return -e;
}

/* Bind path (clearing a stale socket), chmod 0600 and start accepting. */
int ctl_server_start(struct node *n, const char *path, const struct ctl_cmd_table *const *tables,
                     unsigned n_tables, struct control **out)
{
    struct control *c;
    int fd, r;

    if (out)
        *out = NULL;
    if (!n || !path || !out)
        return OVL_EINVAL;
    if (path[0] == '\0' || strlen(path) >= CTL_SUN_PATH) {
        log_error(&n->log, "control socket %s: path empty or longer than %zu bytes", path,
                  CTL_SUN_PATH - 1);
        return OVL_EINVAL;
    }
    if ((r = ctl_clear_stale(n, path)) != 0)
        return r;
    if (!(c = calloc(1, sizeof *c)))
        return OVL_ENOMEM;
    c->node = n;
    c->tables = tables;
    c->n_tables = n_tables;
    memcpy(c->path, path, strlen(path) + 1);
    c->max_message = 1048576;
    c->send_max = control_send_max(c->max_message);
    c->chain_length = 3;
    c->chain_backups = 2;
    if ((r = ctl_bind(n, path, &fd)) != 0)
        goto fail_free;
    if ((r = uv_pipe_init(n->loop, &c->server, 0)) != 0)
        goto fail_fd;
    c->server.data = c;
    c->open = 1;
    if ((r = uv_pipe_open(&c->server, fd)) != 0)
        goto fail_handle;
    fd = -1; /* the handle owns it now */
    if ((r = uv_listen((uv_stream_t *)&c->server, CTL_BACKLOG, ctl_on_connection)) != 0)
        goto fail_handle;
    log_info(&n->log, "control socket listening on %s", path);
    client_on_inbox(n->client, ctl_feed, c);
    *out = c;
    return 0;
fail_handle:
    log_error(&n->log, "control socket %s: %s", path, uv_strerror(r));
    c->stopping = true;
    uv_close((uv_handle_t *)&c->server, ctl_server_closed); /* frees c */
    c = NULL;
fail_fd:
    if (fd >= 0)
        close(fd);
    unlink(path);
fail_free:
    free(c);
    return r;
}

/* Close the server and every client, unlink the path; c is freed later. */
void control_stop(struct control *c)
{
    struct ctl_client *cl, *next;

    if (!c || c->stopping)
        return;
    c->stopping = true;
    client_on_inbox(c->node->client, NULL, NULL);
    for (cl = c->clients; cl; cl = next) {
        next = cl->next;
        ctl_client_close(cl);
    }
    uv_close((uv_handle_t *)&c->server, ctl_server_closed);
    if (unlink(c->path) != 0 && errno != ENOENT)
        log_warn(&c->node->log, "control socket %s: cannot remove: %s", c->path, strerror(errno));
}

/* Take max_message and the dir-chain defaults from the client options. */
void control_set_client_opts(struct control *c, const struct client_opts *o)
{
    if (!c || !o)
        return;
    c->max_message = o->max_message;
    c->send_max = control_send_max(o->max_message);
    c->chain_length = o->length;
    c->chain_backups = o->backups;
}

void control_on_reload(struct control *c, control_reload_fn fn, void *arg)
{
    if (!c)
        return;
    c->reload = fn;
    c->reload_arg = arg;
}

/* Return the byte cap of a send request for messages of max_message bytes. */
uint64_t control_send_max(uint64_t max_message)
{
    uint64_t b64 = (max_message + 2) / 3 * 4;
    uint64_t lines = (b64 + CONTROL_DATA_CHUNK - 1) / CONTROL_DATA_CHUNK;

    return b64 + lines * 6 + 65536;
}

/* Return the server's counters. */
const struct control_stats *control_stats(const struct control *c)
{
    return c ? &c->st : NULL;
}
