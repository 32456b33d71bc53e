/* control.c - the control socket server (protocol: docs/CONTROL.md).
 *
 * Each client has a fixed CONTROL_REQ_MAX input buffer; every complete
 * request in it is answered in order, so a client may pipeline requests.
 * Replies are heap buffers handed to uv_write and freed in its callback. A
 * client whose unread replies pile up is not read from until they drain.
 *
 * Lifetime: the server handle and every client count in c->open; control_stop
 * closes them all and c is freed by the last close callback.
 */
#include "control/control.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/cell.h"
#include "core/link.h"
#include "lib/kvmsg.h"
#include "ovl_config.h"

#define CTL_BACKLOG  16
#define CTL_WQ_MAX   (1u << 20) /* queued reply bytes before a client is not read */
#define CTL_SUN_PATH sizeof(((struct sockaddr_un *)0)->sun_path)
#define CTL_ERR_MAX  160
#define CTL_STR_(x)  #x
#define CTL_STR(x)   CTL_STR_(x)

struct control;

struct ctl_client {
    struct control *ctl;
    struct ctl_client *prev, *next;
    uv_pipe_t pipe;
    uv_timer_t idle;
    unsigned open_handles; /* pipe and timer, until their close callbacks ran */
    unsigned writes;       /* uv_write requests in flight */
    size_t queued;         /* bytes of those requests */
    bool closing;
    bool refused;  /* over CONTROL_MAX_CLIENTS: gets one EBUSY reply */
    bool draining; /* read nothing more; close once the writes are done */
    bool paused;   /* reading stopped until the queued replies drain */
    size_t len;    /* bytes in buf */
    char buf[CONTROL_REQ_MAX];
};

struct control {
    struct node *node;
    uv_pipe_t server;
    struct ctl_client *clients;
    unsigned n_active; /* clients counted against CONTROL_MAX_CLIENTS */
    unsigned open;     /* server handle + clients not yet freed */
    bool stopping;
    struct control_stats st;
    char path[CTL_SUN_PATH];
};

struct ctl_write {
    uv_write_t req;
    struct ctl_client *cl;
    char *data;
    size_t len;
    bool stop_node; /* the reply to "shutdown": stop the daemon once it is out */
};

/* One request being answered. */
struct ctl_req {
    struct control *ctl;
    const struct kvmsg *m;
    struct kvbuf *out;
    const char *err; /* error text when the command fails */
    char errbuf[CTL_ERR_MAX];
    bool stop_node;
};

typedef int (*ctl_cmd_fn)(struct ctl_req *rq);

struct ctl_cmd {
    const char *name;
    ctl_cmd_fn fn;
    const char *args[2]; /* accepted argument keys, NULL-terminated */
};

static void ctl_client_process(struct ctl_client *cl);

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

static void ctl_client_closed(uv_handle_t *h)
{
    struct ctl_client *cl = h->data;
    struct control *c = cl->ctl;

    if (--cl->open_handles > 0)
        return;
    if (cl->prev)
        cl->prev->next = cl->next;
    else
        c->clients = cl->next;
    if (cl->next)
        cl->next->prev = cl->prev;
    free(cl);
    c->open--;
    ctl_maybe_free(c);
}

static void ctl_client_close(struct ctl_client *cl)
{
    if (cl->closing)
        return;
    cl->closing = true;
    if (!cl->refused)
        cl->ctl->n_active--;
    uv_close((uv_handle_t *)&cl->idle, ctl_client_closed);
    uv_close((uv_handle_t *)&cl->pipe, ctl_client_closed);
}

/* Stop reading; the client is closed once its replies are written. */
static void ctl_client_drain(struct ctl_client *cl)
{
    if (cl->closing)
        return;
    cl->draining = true;
    uv_read_stop((uv_stream_t *)&cl->pipe);
    if (cl->writes == 0)
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

/* ---- writing ----------------------------------------------------------- */

static void ctl_on_idle(uv_timer_t *t)
{
    struct ctl_client *cl = t->data;

    cl->ctl->st.clients_dropped++;
    log_debug(&cl->ctl->node->log, "control: dropping an idle client");
    ctl_client_close(cl);
}

static void ctl_touch(struct ctl_client *cl)
{
    if (!cl->closing)
        uv_timer_start(&cl->idle, ctl_on_idle, CONTROL_IDLE_MS, 0);
}

static void ctl_on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);
static void ctl_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf);

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
    } else if (cl->draining) {
        if (cl->writes == 0)
            ctl_client_close(cl);
    } else if (cl->paused && cl->queued <= CTL_WQ_MAX / 2 && !cl->closing) {
        cl->paused = false;
        if (uv_read_start((uv_stream_t *)&cl->pipe, ctl_alloc, ctl_on_read) != 0)
            ctl_client_close(cl);
        else
            ctl_client_process(cl);
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

    if (cl->closing || b->err || !(w = malloc(sizeof *w))) {
        kvbuf_free(b);
        ctl_client_close(cl);
        goto out;
    }
    w->cl = cl;
    w->data = b->data;
    w->len = b->len;
    w->stop_node = stop_node;
    *b = (struct kvbuf){0};
    ub = uv_buf_init(w->data, (unsigned)w->len);
    if (uv_write(&w->req, (uv_stream_t *)&cl->pipe, &ub, 1, ctl_on_write) != 0) {
        free(w->data);
        free(w);
        ctl_client_close(cl);
        goto out;
    }
    cl->writes++;
    cl->queued += w->len;
    if (cl->queued > CTL_WQ_MAX && !cl->paused && !cl->draining) {
        cl->paused = true;
        uv_read_stop((uv_stream_t *)&cl->pipe);
    }
    return;
out:
    if (stop_node)
        ctl_stop_node(cl->ctl);
}

static void ctl_error_reply(struct kvbuf *out, int err, const char *msg)
{
    kv_addu(out, "ovl-control", CONTROL_PROTO_VERSION);
    kv_adds(out, "error", msg);
    kv_addu(out, "errno", (uint64_t)err);
    kv_end(out);
}

/* ---- commands ---------------------------------------------------------- */

static void ctl_append(char *out, size_t outlen, size_t *used, const char *s)
{
    int k = snprintf(out + *used, outlen - *used, "%s%s", *used ? "," : "", s);

    if (k > 0 && (size_t)k < outlen - *used)
        *used += (size_t)k;
}

static void ctl_roles_format(char *out, size_t outlen, unsigned roles)
{
    size_t used = 0;

    out[0] = '\0';
    if (roles & ROLE_BOOTSTRAP)
        ctl_append(out, outlen, &used, "bootstrap");
    if (roles & ROLE_RELAY)
        ctl_append(out, outlen, &used, "relay");
    if (roles & ROLE_CLIENT)
        ctl_append(out, outlen, &used, "client");
}

static void ctl_suites_format(char *out, size_t outlen, uint32_t mask)
{
    size_t used = 0;

    out[0] = '\0';
    if (mask & OVL_AEAD_AES256GCM)
        ctl_append(out, outlen, &used, ovl_aead_name(OVL_AEAD_AES256GCM));
    if (mask & OVL_AEAD_CHACHA20POLY1305)
        ctl_append(out, outlen, &used, ovl_aead_name(OVL_AEAD_CHACHA20POLY1305));
}

/* Add a string held in a fixed array that may lack its NUL; kv_adds masks
 * any control character in it rather than failing the whole reply. */
static void ctl_add_fixed(struct kvbuf *out, const char *key, const char *s, size_t max)
{
    char tmp[OVL_URI_MAX + 1];
    size_t len = strnlen(s, max < OVL_URI_MAX ? max : OVL_URI_MAX);

    memcpy(tmp, s, len);
    tmp[len] = '\0';
    kv_adds(out, key, tmp);
}

static uint64_t ctl_since(uint64_t now, uint64_t then)
{
    return then && now >= then ? now - then : 0;
}

static void ctl_status_node(struct kvbuf *out, const struct node *n)
{
    char buf[64];
    unsigned i;
    uint32_t open = 0;
    const struct link *l;

    kv_adds(out, "node_id", n->node_id);
    kv_adds(out, "version", OVL_VERSION);
    ctl_roles_format(buf, sizeof buf, n->roles);
    kv_adds(out, "roles", buf);
    kv_adds(out, "transports", tp_names());
    kv_addu(out, "pid", (uint64_t)getpid());
    kv_addu(out, "uptime_ms", ctl_since(node_now_ms(), n->started_ms));
    kv_adds(out, "log_level", log_level_name(n->log.level));
    ctl_suites_format(buf, sizeof buf, n->opts.aead_suites);
    kv_adds(out, "aead", buf);
    for (i = 0; i < n->n_listeners && i < NODE_MAX_LISTEN; i++)
        ctl_add_fixed(out, "listen", n->listen_uri[i], OVL_URI_MAX);
    for (l = n->links; l; l = l->next)
        open += l->state == LINK_OPEN;
    kv_addu(out, "links", n->n_links);
    kv_addu(out, "links_open", open);
    kv_addu(out, "peers_configured", n->n_peers);
}

static void ctl_status_counters(struct kvbuf *out, const struct node *n)
{
    const struct node_counters *k = &n->ctr;
    char key[KV_KEY_MAX + 1];
    int r;

    kv_addu(out, "links_accepted", k->links_accepted);
    kv_addu(out, "links_dialed", k->links_dialed);
    kv_addu(out, "handshakes_ok", k->handshakes_ok);
    kv_addu(out, "handshakes_failed", k->handshakes_failed);
    kv_addu(out, "cells_in", k->cells_in);
    kv_addu(out, "cells_out", k->cells_out);
    kv_addu(out, "cells_unhandled", k->cells_unhandled + n->disp.unhandled);
    kv_addu(out, "frames_in", k->frames_in);
    kv_addu(out, "frames_out", k->frames_out);
    kv_addu(out, "bytes_in", k->bytes_in);
    kv_addu(out, "bytes_out", k->bytes_out);
    kv_addu(out, "rekeys", k->rekeys);
    for (r = LC_NONE + 1; r < LC_REASON_COUNT; r++) {
        const char *name = link_close_reason_name((enum link_close_reason)r);

        if (name && snprintf(key, sizeof key, "closed_%s", name) < (int)sizeof key)
            kv_addu(out, key, k->link_closed[r]);
    }
}

static int ctl_cmd_status(struct ctl_req *rq)
{
    const struct control_stats *st = &rq->ctl->st;

    ctl_status_node(rq->out, rq->ctl->node);
    ctl_status_counters(rq->out, rq->ctl->node);
    kv_addu(rq->out, "control_requests", st->requests);
    kv_addu(rq->out, "control_errors", st->errors);
    kv_addu(rq->out, "control_clients_refused", st->clients_refused);
    kv_addu(rq->out, "control_clients_dropped", st->clients_dropped);
    return 0;
}

static void ctl_peer_link(struct kvbuf *out, const struct link *l, uint64_t now)
{
    ctl_add_fixed(out, "peer", l->peer_id, sizeof l->peer_id);
    kv_adds(out, "state", link_state_name(l->state));
    kv_adds(out, "direction", l->initiator ? "out" : "in");
    ctl_add_fixed(out, "remote", l->remote, sizeof l->remote);
    if (l->peer)
        ctl_add_fixed(out, "name", l->peer->spec.name, PEER_NAME_MAX);
    else
        kv_adds(out, "name", "");
    if (l->state == LINK_OPEN)
        kv_adds(out, "suite", ovl_aead_name(l->suite));
    kv_addu(out, "age_ms", ctl_since(now, l->opened_ms));
    kv_addu(out, "cells_in", l->cells_in);
    kv_addu(out, "cells_out", l->cells_out);
}

static void ctl_peer_backoff(struct kvbuf *out, const struct peer *p)
{
    char id[OVL_NODE_ID_LEN + 1];

    node_id_format(id, p->spec.pk);
    kv_adds(out, "peer", id);
    kv_adds(out, "state", "backoff");
    kv_adds(out, "direction", "out");
    ctl_add_fixed(out, "remote", p->spec.uri, OVL_URI_MAX);
    ctl_add_fixed(out, "name", p->spec.name, PEER_NAME_MAX);
    kv_addu(out, "attempts", p->attempts);
    kv_addu(out, "failures", p->failures);
    kv_adds(out, "last_error", p->last_error ? ovl_strerror(p->last_error) : "");
}

static int ctl_cmd_peers(struct ctl_req *rq)
{
    const struct node *n = rq->ctl->node;
    uint64_t now = node_now_ms();
    const struct link *l;
    unsigned i;

    for (l = n->links; l; l = l->next)
        ctl_peer_link(rq->out, l, now);
    for (i = 0; n->peers && i < n->n_peers; i++)
        if (!n->peers[i].link)
            ctl_peer_backoff(rq->out, &n->peers[i]);
    return 0;
}

static int ctl_cmd_version(struct ctl_req *rq)
{
    kv_adds(rq->out, "version", OVL_VERSION);
    kv_addu(rq->out, "protocol", OVL_PROTO_VERSION);
    kv_addu(rq->out, "control", CONTROL_PROTO_VERSION);
    kv_adds(rq->out, "transports", tp_names());
    return 0;
}

static int ctl_cmd_log_level(struct ctl_req *rq)
{
    struct node *n = rq->ctl->node;
    const char *s = kvmsg_get(rq->m, "level");
    enum ovl_log_level lv;

    if (s) {
        if (log_level_parse(s, &lv) != 0) {
            rq->err = "level must be error, warn, info or debug";
            return EINVAL;
        }
        n->log.level = lv;
        log_info(&n->log, "log level set to %s over the control socket", log_level_name(lv));
    }
    kv_adds(rq->out, "log_level", log_level_name(n->log.level));
    return 0;
}

static int ctl_cmd_shutdown(struct ctl_req *rq)
{
    if (!rq->ctl->node->app_stop) {
        rq->err = "shutdown is not available in this process";
        return EOPNOTSUPP;
    }
    rq->stop_node = true;
    return 0;
}

static const struct ctl_cmd ctl_cmds[] = {
    {"status", ctl_cmd_status, {NULL}},     {"peers", ctl_cmd_peers, {NULL}},
    {"version", ctl_cmd_version, {NULL}},   {"log-level", ctl_cmd_log_level, {"level", NULL}},
    {"shutdown", ctl_cmd_shutdown, {NULL}},
};

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

static bool ctl_arg_known(const struct ctl_cmd *cmd, const char *key)
{
    size_t j;

    for (j = 0; cmd->args[j]; j++)
        if (strcmp(key, cmd->args[j]) == 0)
            return true;
    return false;
}

/* Accept only the command's own arguments, each at most once. */
static int ctl_check_args(struct ctl_req *rq, const struct ctl_cmd *cmd)
{
    const struct kvmsg *m = rq->m;
    size_t i, k;

    for (i = 2; i < m->n; i++) {
        const char *what = ctl_arg_known(cmd, m->pairs[i].key) ? NULL : "unknown";

        for (k = 2; !what && k < i; k++)
            if (strcmp(m->pairs[i].key, m->pairs[k].key) == 0)
                what = "duplicate";
        if (what) {
            snprintf(rq->errbuf, sizeof rq->errbuf, "%s argument %s for %s", what,
                     ctl_quotable(m->pairs[i].key), cmd->name);
            rq->err = rq->errbuf;
            return EINVAL;
        }
    }
    return 0;
}

/* Check the envelope, then run the command; return 0 or a positive errno. */
static int ctl_dispatch(struct ctl_req *rq)
{
    const struct kvmsg *m = rq->m;
    const char *name;
    size_t i;
    int e;

    if (m->n == 0 || strcmp(m->pairs[0].key, "ovl-control") != 0) {
        rq->err = "a request must start with ovl-control=1";
        return EPROTO;
    }
    if (strcmp(m->pairs[0].value, "1") != 0) {
        snprintf(rq->errbuf, sizeof rq->errbuf, "unsupported control protocol version %s",
                 ctl_quotable(m->pairs[0].value));
        rq->err = rq->errbuf;
        return EPROTO;
    }
    if (m->n < 2 || strcmp(m->pairs[1].key, "command") != 0) {
        rq->err = "the second line must be command=NAME";
        return EINVAL;
    }
    name = m->pairs[1].value;
    for (i = 0; i < sizeof ctl_cmds / sizeof ctl_cmds[0]; i++)
        if (strcmp(name, ctl_cmds[i].name) == 0)
            break;
    if (i == sizeof ctl_cmds / sizeof ctl_cmds[0]) {
        snprintf(rq->errbuf, sizeof rq->errbuf, "unknown command %s", ctl_quotable(name));
        rq->err = rq->errbuf;
        return EOPNOTSUPP;
    }
    if ((e = ctl_check_args(rq, &ctl_cmds[i])) != 0)
        return e;
    kv_addu(rq->out, "ovl-control", CONTROL_PROTO_VERSION);
    return ctl_cmds[i].fn(rq);
}

/* Answer the request in buf[0..len) (parsed in place). */
static void ctl_handle(struct ctl_client *cl, char *buf, size_t len)
{
    struct control *c = cl->ctl;
    struct kvmsg m = {0};
    struct kvbuf out = {0};
    struct ctl_req rq = {.ctl = c, .m = &m, .out = &out};
    int r, e;

    c->st.requests++;
    r = kvmsg_parse(&m, buf, len, CONTROL_REQ_PAIRS);
    if (r == OVL_ETOOBIG) {
        e = E2BIG;
        rq.err = "request has more than " CTL_STR(CONTROL_REQ_PAIRS) " lines";
    } else if (r != 0) {
        e = EINVAL;
        rq.err = "malformed request: every line must be key=value";
    } else {
        e = ctl_dispatch(&rq);
    }
    if (e == 0) {
        kv_addu(&out, "errno", 0);
        kv_end(&out);
        if (out.err == OVL_EINVAL) {
            e = EIO;
            rq.err = "the reply could not be encoded";
        }
    }
    kvmsg_free(&m);
    if (e != 0) {
        c->st.errors++;
        kvbuf_free(&out);
        out = (struct kvbuf){0};
        ctl_error_reply(&out, e, rq.err);
        log_debug(&c->node->log, "control: request failed: %s (errno %d)", rq.err, e);
    }
    ctl_send(cl, &out, e == 0 && rq.stop_node);
    if (e == E2BIG)
        ctl_client_drain(cl); /* cannot trust where the next request starts */
}

static void ctl_too_big(struct ctl_client *cl)
{
    struct kvbuf out = {0};

    cl->ctl->st.requests++;
    cl->ctl->st.errors++;
    ctl_error_reply(&out, E2BIG, "request longer than " CTL_STR(CONTROL_REQ_MAX) " bytes");
    ctl_send(cl, &out, false);
    ctl_client_drain(cl);
}

static void ctl_client_process(struct ctl_client *cl)
{
    while (!cl->closing && !cl->draining && !cl->paused) {
        size_t m = kv_message_len(cl->buf, cl->len);

        if (m == 0 || m > cl->len) {
            if (cl->len == sizeof cl->buf)
                ctl_too_big(cl);
            return;
        }
        ctl_handle(cl, cl->buf, m);
        memmove(cl->buf, cl->buf + m, cl->len - m);
        cl->len -= m;
    }
}

static void ctl_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    struct ctl_client *cl = h->data;

    (void)hint;
    *buf = uv_buf_init(cl->buf + cl->len, (unsigned)(sizeof cl->buf - cl->len));
}

static void ctl_on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct ctl_client *cl = s->data;

    (void)buf;
    if (nread < 0) {
        /* A client may half-close after its last request: finish the replies. */
        ctl_client_drain(cl);
        return;
    }
    if (nread == 0)
        return;
    cl->len += (size_t)nread;
    ctl_touch(cl);
    ctl_client_process(cl);
}

/* ---- accepting --------------------------------------------------------- */

static void ctl_refuse(struct ctl_client *cl)
{
    struct kvbuf out = {0};

    cl->ctl->st.clients_refused++;
    log_warn(&cl->ctl->node->log, "control: refusing a client: %d already connected",
             CONTROL_MAX_CLIENTS);
    ctl_error_reply(&out, EBUSY, "too many control clients");
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
    uv_timer_init(c->node->loop, &cl->idle);
    cl->pipe.data = cl;
    cl->idle.data = cl;
    cl->open_handles = 2;
    cl->next = c->clients;
    if (c->clients)
        c->clients->prev = cl;
    c->clients = cl;
    c->open++;
    cl->refused = c->n_active >= CONTROL_MAX_CLIENTS;
    if (!cl->refused)
        c->n_active++;
    if (uv_accept(server, (uv_stream_t *)&cl->pipe) != 0) {
        ctl_client_close(cl);
        return;
    }
    ctl_touch(cl);
    if (cl->refused)
        ctl_refuse(cl);
    else if (uv_read_start((uv_stream_t *)&cl->pipe, ctl_alloc, ctl_on_read) != 0)
        ctl_client_close(cl);
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

    if (lstat(path, &st) != 0) {
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
int control_start(struct node *n, const char *path, struct control **out)
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
    memcpy(c->path, path, strlen(path) + 1);
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
    for (cl = c->clients; cl; cl = next) {
        next = cl->next;
        ctl_client_close(cl);
    }
    uv_close((uv_handle_t *)&c->server, ctl_server_closed);
    if (unlink(c->path) != 0 && errno != ENOENT)
        log_warn(&c->node->log, "control socket %s: cannot remove: %s", c->path, strerror(errno));
}

/* Return the server's counters. */
const struct control_stats *control_stats(const struct control *c)
{
    return c ? &c->st : NULL;
}
