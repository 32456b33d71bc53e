/* test_metrics.c - the Prometheus exposition (src/control/metrics.c) and
 * the metrics listener (src/control/mhttp.c), on one loop.
 *
 * The exposition of a node with all three roles (not started, as
 * fuzz_control makes it) is checked against the text format 0.0.4: every
 * family has one HELP and one TYPE line before its samples, names are
 * ovl_..., counters end in _total, no sample twice, every value a number,
 * histograms' buckets cumulative up to +Inf = _count; then counters set
 * by hand show up in the samples that carry them. The listener runs on
 * 127.0.0.1:0 and is talked to through non-blocking sockets that the
 * loop's poll timer reads: its answers by status, its caps per address
 * block and in all (sockets bound to 127.0.X.1 stand for other blocks),
 * and its read timeout.
 */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "app/config.h"
#include "check_main.h"
#include "client/client_int.h"
#include "control/control.h"
#include "control/ctl_int.h"
#include "control/metrics.h"
#include "control/mhttp.h"
#include "core/node_run.h"
#include "loopfix.h"

#define N_CONNS  20
#define RESP_MAX (256 * 1024)

/* One test client of the listener. */
struct hc {
    int fd;
    bool eof;
    size_t len;
    char buf[RESP_MAX];
};

struct net {
    uv_loop_t loop;
    uv_timer_t deadline, poll;
    bool timed_out;
    bool (*done)(struct net *);
    void (*pump)(struct net *);
    struct ovl_config cfg;
    struct node n;
    struct dir *d;
    struct relay *r;
    struct client *c;
    struct control *ctl;
    struct mhttp *mh;
    uint16_t port;
    char dir[64], sock[96];
    struct hc *hc[N_CONNS];
    unsigned n_hc;
    struct hc *watch; /* the client watched_closed waits for */
};

LOOPFIX_DEFINE(struct net, 2)

static struct net *net_new(bool listener)
{
    struct net *w = calloc(1, sizeof(*w));
    struct ovl_identity id;
    const char *p;

    ck_assert_ptr_nonnull(w);
    ck_assert_int_eq(uv_loop_init(&w->loop), 0);
    loopfix_init(w);
    config_defaults(&w->cfg);
    w->cfg.roles = ROLE_BOOTSTRAP | ROLE_RELAY | ROLE_CLIENT;
    ck_assert_int_eq(ovl_identity_generate(&id), 0);
    log_init(&w->n.log, "test_metrics", OVL_LOG_ERROR, false);
    ck_assert_int_eq(node_init(&w->n, &w->loop, &w->cfg.opts, &id, w->cfg.roles), 0);
    ck_assert_int_eq(dir_init(&w->n, &w->cfg.dir, NULL, 0, &w->d), 0);
    ck_assert_int_eq(relay_init(&w->n, &w->cfg.relay, &w->r), 0);
    ck_assert_int_eq(client_init(&w->n, &w->cfg.client, &w->c), 0);
    snprintf(w->dir, sizeof(w->dir), "/tmp/ovl-test-metrics-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(w->dir));
    snprintf(w->sock, sizeof(w->sock), "%s/ctl.sock", w->dir);
    ck_assert_int_eq(control_start(&w->n, w->sock, &w->ctl), 0);
    if (!listener)
        return w;
    ck_assert_int_eq(mhttp_start(w->ctl, "127.0.0.1:0", &w->mh), 0);
    p = strrchr(w->ctl->http_uri, ':');
    ck_assert_ptr_nonnull(p);
    w->port = (uint16_t)atoi(p + 1);
    ck_assert_uint_gt(w->port, 0);
    return w;
}

static void net_free(struct net *w)
{
    for (unsigned i = 0; i < w->n_hc; i++) {
        if (w->hc[i]->fd >= 0)
            close(w->hc[i]->fd);
        free(w->hc[i]);
    }
    mhttp_stop(w->mh);
    client_stop(w->c);
    relay_stop(w->r);
    dir_stop(w->d);
    control_stop(w->ctl);
    node_stop(&w->n);
    loopfix_close(w);
    uv_run(&w->loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(uv_loop_close(&w->loop), 0);
    client_free(w->c);
    relay_free(w->r);
    dir_free(w->d);
    w->n.client = NULL;
    w->n.relay = NULL;
    w->n.dir = NULL;
    node_free(&w->n);
    log_close(&w->n.log);
    rmdir(w->dir);
    free(w);
}

/* ---- the text format ---------------------------------------------------- */

#define MAX_NAMES 2048

/* A name of the format: [a-zA-Z_:][a-zA-Z0-9_:]*, here ovl_ and lower case. */
static bool good_name(const char *s, size_t n)
{
    if (n < 5 || strncmp(s, "ovl_", 4) != 0)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
            return false;
    return true;
}

static bool ends_with(const char *s, size_t n, const char *suffix)
{
    size_t k = strlen(suffix);

    return n >= k && memcmp(s + n - k, suffix, k) == 0;
}

/* Whether key (n bytes) was seen; remember it. */
static bool seen_before(char **seen, unsigned *n_seen, const char *key, size_t n)
{
    for (unsigned i = 0; i < *n_seen; i++)
        if (strlen(seen[i]) == n && memcmp(seen[i], key, n) == 0)
            return true;
    ck_assert_uint_lt(*n_seen, MAX_NAMES);
    seen[(*n_seen)++] = strndup(key, n);
    return false;
}

/* Labels {k="v",...}: names, quoted values with only \\, \" and \n escapes. */
static void check_labels(const char *p, const char *end)
{
    ck_assert(*p == '{' && end[-1] == '}');
    for (p++; p < end - 1;) {
        const char *eq = memchr(p, '=', (size_t)(end - p));

        ck_assert_ptr_nonnull(eq);
        ck_assert(eq > p && eq[1] == '"');
        for (p = eq + 2; *p != '"'; p++) {
            ck_assert(p < end && *p != '\n');
            if (*p == '\\') {
                p++;
                ck_assert(*p == '\\' || *p == '"' || *p == 'n');
            }
        }
        p++;
        ck_assert(*p == ',' || p == end - 1);
        p += *p == ',';
    }
}

struct fam {
    char name[128];
    char type[16];
    uint64_t last_bucket;
    bool inf;
};

/* One sample line of family f (n bytes at text). */
static void check_sample(struct fam *f, const char *text, size_t n, char **seen, unsigned *n_seen)
{
    char line[600], *sp, *lb, *end;
    size_t nlen, flen = strlen(f->name);
    double v;

    ck_assert_uint_lt(n, sizeof(line));
    memcpy(line, text, n);
    line[n] = '\0';
    sp = strrchr(line, ' ');
    lb = strchr(line, '{');
    ck_assert_ptr_nonnull(sp);
    nlen = (size_t)((lb && lb < sp ? lb : sp) - line);
    ck_assert_msg(f->name[0], "a sample before any HELP: %s", line);
    ck_assert_msg(!seen_before(seen, n_seen, line, (size_t)(sp - line)), "twice: %s", line);
    if (lb && lb < sp)
        check_labels(lb, sp);
    v = strtod(sp + 1, &end);
    ck_assert_msg(sp[1] && *end == '\0' && v >= 0, "not a value: %s", line);
    if (strcmp(f->type, "histogram") != 0) {
        ck_assert_msg(nlen == flen && memcmp(line, f->name, flen) == 0, "%s in family %s", line,
                      f->name);
        return;
    }
    ck_assert(nlen > flen && memcmp(line, f->name, flen) == 0);
    if (nlen == flen + 7 && memcmp(line + flen, "_bucket", 7) == 0) {
        ck_assert_msg((uint64_t)v >= f->last_bucket, "buckets not cumulative: %s", line);
        f->last_bucket = (uint64_t)v;
        f->inf = strstr(line, "le=\"+Inf\"") != NULL;
    } else if (nlen == flen + 6 && memcmp(line + flen, "_count", 6) == 0) {
        ck_assert_msg(f->inf && (uint64_t)v == f->last_bucket, "_count is not the +Inf bucket");
    } else {
        ck_assert(nlen == flen + 4 && memcmp(line + flen, "_sum", 4) == 0);
    }
}

/* Check text against the format; return how many families it has. */
static unsigned check_exposition(const char *text)
{
    static char *seen[MAX_NAMES], *fams[MAX_NAMES];
    unsigned n_seen = 0, n_fams = 0;
    struct fam f = {0};

    ck_assert(text && *text && text[strlen(text) - 1] == '\n');
    for (const char *p = text, *nl; (nl = strchr(p, '\n')); p = nl + 1) {
        size_t n = (size_t)(nl - p), k;

        ck_assert_msg(n > 0, "an empty line");
        if (strncmp(p, "# HELP ", 7) == 0) {
            k = strcspn(p + 7, " \n");
            ck_assert_msg(good_name(p + 7, k), "bad name: %.*s", (int)n, p);
            ck_assert_msg(!seen_before(fams, &n_fams, p + 7, k), "family twice: %.*s", (int)n, p);
            ck_assert_msg(n > 8 + k, "no help: %.*s", (int)n, p);
            memset(&f, 0, sizeof(f));
            snprintf(f.name, sizeof(f.name), "%.*s", (int)k, p + 7);
            p = nl + 1;
            nl = strchr(p, '\n');
            ck_assert_ptr_nonnull(nl);
            ck_assert_msg(strncmp(p, "# TYPE ", 7) == 0 && strncmp(p + 7, f.name, k) == 0 &&
                              p[7 + k] == ' ',
                          "HELP of %s without its TYPE", f.name);
            snprintf(f.type, sizeof(f.type), "%.*s", (int)(nl - p - 8 - (long)k), p + 8 + k);
            ck_assert(strcmp(f.type, "counter") == 0 || strcmp(f.type, "gauge") == 0 ||
                      strcmp(f.type, "histogram") == 0);
            ck_assert_msg(ends_with(f.name, k, "_total") == (strcmp(f.type, "counter") == 0),
                          "%s: _total is for counters alone", f.name);
            continue;
        }
        ck_assert_msg(p[0] != '#', "another comment: %.*s", (int)n, p);
        check_sample(&f, p, n, seen, &n_seen);
    }
    for (unsigned i = 0; i < n_seen; i++)
        free(seen[i]);
    for (unsigned i = 0; i < n_fams; i++)
        free(fams[i]);
    return n_fams;
}

/* The value of the sample written exactly as key (name and labels). */
static double sample(const char *text, const char *key)
{
    size_t k = strlen(key);

    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
        if (strncmp(p, key, k) == 0 && p[k] == ' ')
            return strtod(p + k + 1, NULL);
    ck_abort_msg("no sample %s", key);
    return -1;
}

static bool has(const char *text, const char *s)
{
    return strstr(text, s) != NULL;
}

/* ---- the exposition ----------------------------------------------------- */

START_TEST(test_escape)
{
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"", ""},
        {"0.1.0", "0.1.0"},
        {"a\"b", "a\\\"b"},
        {"back\\slash", "back\\\\slash"},
        {"two\nlines", "two\\nlines"},
        {"\\\"\n", "\\\\\\\"\\n"},
        {"tab\there", "tab\there"}, /* only those three are escaped */
    };
    char out[32];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int n = metrics_escape(out, sizeof(out), cases[i].in);

        ck_assert_int_eq(n, (int)strlen(cases[i].out));
        ck_assert_str_eq(out, cases[i].out);
    }
    /* Exactly full, one short, and an escape cut in two: refused whole. */
    ck_assert_int_eq(metrics_escape(out, 4, "abc"), 3);
    ck_assert_int_eq(metrics_escape(out, 3, "abc"), OVL_ETOOBIG);
    ck_assert_str_eq(out, "");
    ck_assert_int_eq(metrics_escape(out, 4, "ab\""), OVL_ETOOBIG);
    ck_assert_str_eq(out, "");
    ck_assert_int_eq(metrics_escape(out, 5, "ab\""), 4);
    ck_assert_int_eq(metrics_escape(out, 0, ""), OVL_ETOOBIG);
}
END_TEST

START_TEST(test_hist)
{
    struct kvbuf b = {0};
    struct hist h;

    memset(&h, 0, sizeof(h));
    hist_add(&h, 50);       /* 0.0001 */
    hist_add(&h, 100);      /* 0.0001: a bound is inclusive */
    hist_add(&h, 700);      /* 0.001 */
    hist_add(&h, 2000000);  /* 2.5 */
    hist_add(&h, 60000000); /* +Inf only */
    metrics_hist(&b, "x_seconds", "A test", &h);
    ck_assert_int_eq(b.err, 0);
    ck_assert_uint_eq(check_exposition(b.data), 1);
    ck_assert(has(b.data, "# HELP ovl_x_seconds A test\n# TYPE ovl_x_seconds histogram\n"));
    ck_assert(sample(b.data, "ovl_x_seconds_bucket{le=\"0.0001\"}") == 2);
    ck_assert(sample(b.data, "ovl_x_seconds_bucket{le=\"0.00025\"}") == 2);
    ck_assert(sample(b.data, "ovl_x_seconds_bucket{le=\"0.001\"}") == 3);
    ck_assert(sample(b.data, "ovl_x_seconds_bucket{le=\"1\"}") == 3);
    ck_assert(sample(b.data, "ovl_x_seconds_bucket{le=\"2.5\"}") == 4);
    ck_assert(sample(b.data, "ovl_x_seconds_bucket{le=\"10\"}") == 4);
    ck_assert(sample(b.data, "ovl_x_seconds_bucket{le=\"+Inf\"}") == 5);
    ck_assert(sample(b.data, "ovl_x_seconds_count") == 5);
    ck_assert(has(b.data, "\novl_x_seconds_sum 62.00085\n"));
    kvbuf_free(&b);
}
END_TEST

/* A node with every role, idle: the whole exposition keeps the format,
 * and every role's families are there. */
START_TEST(test_exposition)
{
    struct net *w = net_new(false);
    struct kvbuf b = {0};
    unsigned fams;

    metrics_build(&b, &w->n, w->ctl);
    ck_assert_int_eq(b.err, 0);
    fams = check_exposition(b.data);
    ck_assert_uint_gt(fams, 180); /* 193 without QUIC, 202 with it */
    ck_assert(has(b.data, "\novl_info{version=\""));
    ck_assert(sample(b.data, "ovl_role{role=\"bootstrap\"}") == 1);
    ck_assert(sample(b.data, "ovl_role{role=\"client\"}") == 1);
    ck_assert(sample(b.data, "ovl_links{state=\"open\"}") == 0);
    ck_assert(sample(b.data, "ovl_link_cells_total{direction=\"in\"}") == 0);
    ck_assert(sample(b.data, "ovl_link_bytes_total{direction=\"out\",transport=\"tcp\"}") == 0);
    ck_assert(sample(b.data, "ovl_link_closes_total{reason=\"dead\"}") == 0);
    ck_assert(sample(b.data, "ovl_relay_chains") == 0);
    ck_assert(sample(b.data, "ovl_relay_cells_dropped_total{reason=\"auth\"}") == 0);
    ck_assert(sample(b.data, "ovl_client_chains") == 0);
    ck_assert(sample(b.data, "ovl_dir_relays") == 0);
    ck_assert(sample(b.data, "ovl_control_requests_total") == 0);
    ck_assert(sample(b.data, "ovl_chain_setup_seconds_count") == 0);
    ck_assert(sample(b.data, "ovl_message_round_trip_seconds_bucket{le=\"+Inf\"}") == 0);
    ck_assert(sample(b.data, "ovl_resident_memory_bytes") > 0);
    ck_assert(!has(b.data, "ovl_metrics_http")); /* no listener */
    kvbuf_free(&b);
    net_free(w);
}
END_TEST

/* Counters set by hand come out in their samples, in their units. */
START_TEST(test_values)
{
    struct net *w = net_new(false);
    struct kvbuf b = {0};

    w->n.ctr.cells_in = 42;
    w->n.ctr.cells_unhandled = 1;
    w->n.disp.unhandled = 2;
    w->n.ctr.tp_bytes_in[0] = 1000;
    w->n.ctr.link_closed[LC_DEAD] = 3;
    w->n.ctr.dead_detect_ms_max = 3250;
    w->c->st.busy_us = 1500;
    w->c->st.dropped_stale = 7;
    hist_add(&w->c->setup_hist, 1200);
    hist_add(&w->c->rtt_hist, 300);
    hist_add(&w->c->rtt_hist, 400);
    metrics_build(&b, &w->n, w->ctl);
    ck_assert_int_eq(b.err, 0);
    check_exposition(b.data);
    ck_assert(sample(b.data, "ovl_link_cells_total{direction=\"in\"}") == 42);
    ck_assert(sample(b.data, "ovl_link_cells_unhandled_total") == 3);
    ck_assert(sample(b.data, "ovl_link_bytes_total{direction=\"in\",transport=\"tcp\"}") == 1000);
    ck_assert(sample(b.data, "ovl_link_closes_total{reason=\"dead\"}") == 3);
    ck_assert(has(b.data, "\novl_link_dead_detect_max_seconds 3.25\n"));
    ck_assert(has(b.data, "\novl_client_busy_seconds_total 0.0015\n"));
    ck_assert(sample(b.data, "ovl_client_received_dropped_total{reason=\"stale\"}") == 7);
    ck_assert(sample(b.data, "ovl_chain_setup_seconds_bucket{le=\"0.001\"}") == 0);
    ck_assert(sample(b.data, "ovl_chain_setup_seconds_bucket{le=\"0.0025\"}") == 1);
    ck_assert(sample(b.data, "ovl_message_round_trip_seconds_count") == 2);
    ck_assert(has(b.data, "\novl_message_round_trip_seconds_sum 0.0007\n"));
    kvbuf_free(&b);
    net_free(w);
}
END_TEST

/* A relay alone: no client's or bootstrap's families, no histograms. */
START_TEST(test_roles_off)
{
    struct net *w = net_new(false);
    struct kvbuf b = {0};

    w->n.roles = ROLE_RELAY;
    metrics_build(&b, &w->n, NULL);
    ck_assert_int_eq(b.err, 0);
    check_exposition(b.data);
    ck_assert(sample(b.data, "ovl_role{role=\"client\"}") == 0);
    ck_assert(sample(b.data, "ovl_relay_chains") == 0);
    ck_assert(!has(b.data, "ovl_client_") && !has(b.data, "ovl_dir_relays"));
    ck_assert(!has(b.data, "ovl_control_"));
    ck_assert(has(b.data, "ovl_dir_registered 0\n")); /* every node's directory */
    w->n.roles = ROLE_BOOTSTRAP | ROLE_RELAY | ROLE_CLIENT;
    kvbuf_free(&b);
    net_free(w);
}
END_TEST

/* ---- the listener ------------------------------------------------------- */

/* Connect to the listener from 127.0.blk.1 (blk 0: 127.0.0.1). */
static struct hc *hc_open(struct net *w, unsigned blk)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(w->port)};
    struct sockaddr_in src = {.sin_family = AF_INET};
    struct hc *h = calloc(1, sizeof(*h));
    int rc;

    ck_assert_ptr_nonnull(h);
    ck_assert_uint_lt(w->n_hc, N_CONNS);
    w->hc[w->n_hc++] = h;
    h->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(h->fd, 0);
    src.sin_addr.s_addr = htonl(0x7f000001u | (blk << 8));
    ck_assert_int_eq(bind(h->fd, (struct sockaddr *)&src, sizeof(src)), 0);
    sa.sin_addr.s_addr = htonl(0x7f000001u);
    rc = connect(h->fd, (struct sockaddr *)&sa, sizeof(sa));
    ck_assert(rc == 0 || errno == EINPROGRESS);
    /* The kernel finishes the handshake into the backlog by itself. */
    ck_assert_int_eq(poll(&(struct pollfd){.fd = h->fd, .events = POLLOUT}, 1, 10000), 1);
    return h;
}

static bool watched_closed(struct net *w)
{
    return w->watch->eof;
}

static void hc_send(struct hc *h, const void *p, size_t n)
{
    ck_assert_int_eq(write(h->fd, p, n), (ssize_t)n);
}

/* Read what every client has; note the ends. */
static void hc_pump(struct net *w)
{
    for (unsigned i = 0; i < w->n_hc; i++) {
        struct hc *h = w->hc[i];
        ssize_t r = -1;

        while (h->fd >= 0 && !h->eof &&
               (r = read(h->fd, h->buf + h->len, sizeof(h->buf) - 1 - h->len)) != 0) {
            if (r < 0) {
                h->eof = errno != EAGAIN && errno != EINPROGRESS && errno != ENOTCONN;
                break;
            }
            h->len += (size_t)r;
            h->buf[h->len] = '\0';
        }
        if (r == 0 && h->fd >= 0)
            h->eof = true;
    }
}

static bool none_open(struct net *w)
{
    return w->ctl->http.open == 0;
}

/* Send req on a new connection and return the whole answer. */
static const char *ask(struct net *w, const char *req, size_t n)
{
    struct hc *h = hc_open(w, 0);

    w->pump = hc_pump;
    w->watch = h;
    hc_send(h, req, n);
    ck_assert_msg(run_until(w, watched_closed, 20000), "no answer");
    close(h->fd); /* as curl does once it has the answer */
    h->fd = -1;
    ck_assert(run_until(w, none_open, 20000));
    return h->buf;
}

static const char *ask_s(struct net *w, const char *req)
{
    return ask(w, req, strlen(req));
}

static size_t content_length(const char *ans)
{
    const char *cl = strstr(ans, "\r\nContent-Length: ");

    ck_assert_ptr_nonnull(cl);
    return strtoul(cl + 18, NULL, 10);
}

START_TEST(test_http_answers)
{
    static char big[9000];
    struct net *w = net_new(true);
    const char *a, *body;

    a = ask_s(w, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    ck_assert_msg(strncmp(a, "HTTP/1.1 200 OK\r\n", 17) == 0, "%.80s", a);
    ck_assert(has(a, "\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"));
    ck_assert(has(a, "\r\nConnection: close\r\n"));
    body = strstr(a, "\r\n\r\n") + 4;
    ck_assert_uint_eq(strlen(body), content_length(a));
    check_exposition(body);
    ck_assert(has(body, "ovl_metrics_http_answers_total{code=\"200\"} 0\n")); /* counted after */
    a = ask_s(w, "GET /nothing HTTP/1.1\r\nHost: x\r\n\r\n");
    ck_assert(strncmp(a, "HTTP/1.1 404 Not Found\r\n", 24) == 0);
    a = ask_s(w, "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nabcd");
    ck_assert(strncmp(a, "HTTP/1.1 405 Method Not Allowed\r\n", 33) == 0);
    ck_assert(has(a, "\r\nAllow: GET\r\n"));
    a = ask_s(w, "GET /metrics HTTP/1.1\r\n\r\n");
    ck_assert(strncmp(a, "HTTP/1.1 400 Bad Request\r\n", 26) == 0);
    a = ask_s(w, "GET /metrics HTTP/3.0\r\nHost: x\r\n\r\n");
    ck_assert_msg(strncmp(a, "HTTP/1.1 505 HTTP Version Not Supported\r\n", 41) == 0, "%.60s", a);
    memcpy(big, "GET /metrics HTTP/1.1\r\nX: ", 26);
    memset(big + 26, 'a', sizeof(big) - 26);
    a = ask(w, big, sizeof(big));
    ck_assert(strncmp(a, "HTTP/1.1 431 Request Header Fields Too Large\r\n", 46) == 0);
    ck_assert_uint_eq(strlen(strstr(a, "\r\n\r\n") + 4), content_length(a));
    ck_assert_uint_eq(w->ctl->http.accepted, 6);
    for (unsigned i = 0; i < MHTTP_N_CODES; i++)
        ck_assert_uint_eq(w->ctl->http.answers[i], 1);
    ck_assert_uint_eq(w->ctl->http.open, 0);
    net_free(w);
}
END_TEST

static bool four_taken(struct net *w)
{
    return w->ctl->http.open == MHTTP_MAX_PER_ADDR;
}

static bool full(struct net *w)
{
    return w->ctl->http.open == MHTTP_MAX_CONNS;
}

/* Over the cap of an address block, and over the cap of all, a
 * connection is closed unanswered; other blocks are taken until the
 * cap of all. */
START_TEST(test_http_caps)
{
    struct net *w = net_new(true);
    struct hc *late;
    unsigned i;

    w->pump = hc_pump;
    for (i = 0; i < MHTTP_MAX_PER_ADDR; i++)
        hc_open(w, 0);
    ck_assert(run_until(w, four_taken, 20000));
    w->watch = late = hc_open(w, 0);
    ck_assert(run_until(w, watched_closed, 20000));
    ck_assert_uint_eq(late->len, 0);
    ck_assert_uint_eq(w->ctl->http.refused, 1);
    for (i = MHTTP_MAX_PER_ADDR; i < MHTTP_MAX_CONNS; i++)
        hc_open(w, 1 + i / MHTTP_MAX_PER_ADDR);
    ck_assert(run_until(w, full, 20000));
    w->watch = late = hc_open(w, 9);
    ck_assert(run_until(w, watched_closed, 20000));
    ck_assert_uint_eq(late->len, 0);
    ck_assert_uint_eq(w->ctl->http.refused, 2);
    ck_assert_uint_eq(w->ctl->http.accepted, MHTTP_MAX_CONNS);
    /* The others were idle all along, well within the head's timeout: a
     * host so slow that one ran out would have refused wrongly above. */
    ck_assert_uint_eq(w->ctl->http.timeouts, 0);
    ck_assert_uint_eq(w->ctl->http.open, MHTTP_MAX_CONNS);
    net_free(w);
}
END_TEST

/* A connection that sends no whole head is closed after the timeout. */
START_TEST(test_http_timeout)
{
    struct net *w = net_new(true);
    struct hc *h = hc_open(w, 0);

    w->pump = hc_pump;
    w->watch = h;
    hc_send(h, "GET /metrics HTTP/1.1\r\n", 23);
    ck_assert(run_until(w, watched_closed, 4 * MHTTP_TIMEOUT_MS));
    ck_assert(run_until(w, none_open, 1000));
    ck_assert_uint_eq(h->len, 0);
    ck_assert_uint_eq(w->ctl->http.timeouts, 1);
    ck_assert_uint_eq(w->ctl->http.answers[0], 0);
    net_free(w);
}
END_TEST

/* Another node's listener on the address of the first is refused, and
 * so is an address that is none. */
START_TEST(test_http_taken)
{
    struct net *w = net_new(true), *w2 = net_new(false);
    struct mhttp *m2;
    char addr[64];

    snprintf(addr, sizeof(addr), "127.0.0.1:%u", w->port);
    ck_assert_int_eq(mhttp_start(w2->ctl, addr, &m2), OVL_EEXIST);
    ck_assert_ptr_null(m2);
    ck_assert_str_eq(w2->ctl->http_uri, "");
    ck_assert_int_eq(mhttp_start(w2->ctl, "not an address", &m2), OVL_EINVAL);
    ck_assert_ptr_null(m2);
    ck_assert_int_eq(mhttp_start(w2->ctl, "localhost:9101", &m2), OVL_EINVAL);
    net_free(w2);
    uv_run(&w->loop, UV_RUN_NOWAIT);
    net_free(w);
}
END_TEST

static Suite *metrics_suite(void)
{
    Suite *s = suite_create("metrics");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, test_escape);
    tcase_add_test(tc, test_hist);
    tcase_add_test(tc, test_exposition);
    tcase_add_test(tc, test_values);
    tcase_add_test(tc, test_roles_off);
    tcase_add_test(tc, test_http_answers);
    tcase_add_test(tc, test_http_caps);
    tcase_add_test(tc, test_http_timeout);
    tcase_add_test(tc, test_http_taken);
    suite_add_tcase(s, tc);
    return s;
}

OVL_CHECK_MAIN(metrics_suite)
