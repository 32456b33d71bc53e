/* ovlctl.c - the admin tool: one request to ovld's control socket, one reply.
 *
 * A short-lived process, so blocking socket I/O is fine here; poll() bounds
 * every step by one overall deadline (--timeout). The protocol is described
 * in docs/CONTROL.md and the command line in ovlctl(8).
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cJSON.h>

#include "app/config.h"
#include "app/ovlctl.h"
#include "control/control.h"
#include "lib/kvmsg.h"
#include "ovl_config.h"

#define TIMEOUT_DEFAULT_MS 5000
#define TIMEOUT_MAX_MS     3600000

struct subcommand {
    const char *name;
    int (*fn)(struct opts *o, int argc, char **argv);
    const char *args;
    const char *help;
};

static void usage(FILE *f);

/* ---- socket I/O -------------------------------------------------------- */

/* Return CLOCK_MONOTONIC in milliseconds. */
long long now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int time_left(const struct opts *o)
{
    long long left = o->deadline - now_ms();

    return left > 0 ? (int)left : 0;
}

static int timed_out(const struct opts *o)
{
    fprintf(stderr, "ovlctl: %s: no reply within %d ms\n", o->socket, o->timeout_ms);
    return EXIT_CONNECT;
}

/* Connect to o->socket; on failure print why and return EXIT_CONNECT. */
static int ctl_connect(const struct opts *o, int *out)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int fd;

    *out = -1;
    if (strlen(o->socket) >= sizeof sa.sun_path) {
        fprintf(stderr, "ovlctl: %s: socket path too long\n", o->socket);
        return EXIT_USAGE;
    }
    memcpy(sa.sun_path, o->socket, strlen(o->socket) + 1);
    if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)) < 0)
        goto fail;
    /* EAGAIN means the daemon's backlog is full: retry until the deadline. */
    while (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        if (errno != EAGAIN && errno != EINTR)
            goto fail;
        if (time_left(o) == 0) {
            close(fd);
            return timed_out(o);
        }
        poll(NULL, 0, 10);
    }
    *out = fd;
    return 0;
fail:
    fprintf(stderr, "ovlctl: cannot connect to %s: %s\n", o->socket, strerror(errno));
    if (fd >= 0)
        close(fd);
    return EXIT_CONNECT;
}

static int wait_fd(const struct opts *o, int fd, short events)
{
    struct pollfd p = {.fd = fd, .events = events};
    int r;

    do
        r = poll(&p, 1, time_left(o));
    while (r < 0 && errno == EINTR && !(o->stop && *o->stop));
    return r;
}

/* Send everything. A daemon that closes early (after an E2BIG reply) is not
 * an error here: its reply is still waiting to be read. */
static int send_all(const struct opts *o, int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t k = send(fd, buf, len, MSG_NOSIGNAL);

        if (k > 0) {
            buf += k;
            len -= (size_t)k;
        } else if (errno == EPIPE || errno == ECONNRESET) {
            return 0;
        } else if (errno == EAGAIN || errno == EINTR) {
            if (wait_fd(o, fd, POLLOUT) <= 0)
                return timed_out(o);
        } else {
            fprintf(stderr, "ovlctl: %s: send: %s\n", o->socket, strerror(errno));
            return EXIT_CONNECT;
        }
    }
    return 0;
}

/* Return the length of the first complete message in r, 0 if none yet
 * (the same rule as kv_message_len, without rescanning from the start). */
static size_t reply_msg_len(struct reply *r)
{
    size_t i;

    if (r->len > 0 && r->data[0] == '\n')
        return 1;
    for (i = r->scan > 0 ? r->scan : 1; i < r->len; i++)
        if (r->data[i] == '\n' && r->data[i - 1] == '\n')
            return i + 1;
    r->scan = r->len;
    return 0;
}

/* Read into r until a complete message is there (or, with to_eof, until
 * the daemon closes). Return 0, or an exit status after printing why. */
static int recv_reply(const struct opts *o, int fd, struct reply *r, bool to_eof)
{
    for (;;) {
        ssize_t k;

        if (!to_eof && reply_msg_len(r) > 0)
            return 0;
        if (r->len == r->cap) {
            size_t cap = r->cap ? r->cap * 2 : 4096;
            char *p;

            if (cap > REPLY_MAX || !(p = realloc(r->data, cap + 1))) {
                fprintf(stderr, "ovlctl: %s: reply too large\n", o->socket);
                return EXIT_CONNECT;
            }
            r->data = p;
            r->cap = cap;
        }
        k = recv(fd, r->data + r->len, r->cap - r->len, 0);
        if (k > 0) {
            r->len += (size_t)k;
        } else if (k == 0 || (errno == ECONNRESET && to_eof && r->len > 0)) {
            /* A reset after a reply is how a daemon closes a connection
             * with input left unread (after E2BIG): the reply is intact. */
            if (to_eof && r->len > 0)
                return 0;
            fprintf(stderr, "ovlctl: %s: the daemon closed the connection without a reply\n",
                    o->socket);
            return EXIT_CONNECT;
        } else if (errno == EAGAIN || errno == EINTR) {
            if (wait_fd(o, fd, POLLIN) <= 0)
                return o->stop && *o->stop ? 0 : timed_out(o); /* a signal: the caller sees */
        } else {
            fprintf(stderr, "ovlctl: %s: %s\n", o->socket, strerror(errno));
            return EXIT_CONNECT;
        }
    }
}

/* Send req and read one reply into r. */
static int exchange(const struct opts *o, const char *req, size_t len, struct reply *r, bool to_eof)
{
    int fd, rc;

    if ((rc = ctl_connect(o, &fd)) != 0)
        return rc;
    rc = send_all(o, fd, req, len);
    if (rc == 0 && to_eof)
        shutdown(fd, SHUT_WR); /* tells the daemon to close after its replies */
    if (rc == 0)
        rc = recv_reply(o, fd, r, to_eof);
    close(fd);
    return rc;
}

/* ---- replies ----------------------------------------------------------- */

/* Parse the message at the start of buf and check the reply envelope; print
 * the daemon's error. Return 0 for errno=0, else an exit status. */
static int reply_check(const char *cmd, struct kvmsg *m, char *buf, size_t len)
{
    const char *e;

    if (kvmsg_parse(m, buf, len, REPLY_PAIRS) != 0 || m->n == 0 ||
        strcmp(m->pairs[0].key, "ovl-control") != 0 || !(e = kvmsg_get(m, "errno"))) {
        kvmsg_free(m);
        fprintf(stderr, "ovlctl: %s: malformed reply from the daemon\n", cmd);
        return EXIT_DAEMON;
    }
    if (strcmp(e, "0") != 0) {
        const char *msg = kvmsg_get(m, "error");

        fprintf(stderr, "ovlctl: %s: %s (errno %s)\n", cmd, msg ? msg : "unknown error", e);
        return EXIT_DAEMON;
    }
    return 0;
}

/* Send the request in b (freed here; begun by request_begin) and parse the
 * reply into m; on success the caller frees m and r.data. */
int request_kv(const struct opts *o, const char *cmd, struct kvbuf *b, struct kvmsg *m,
               struct reply *r)
{
    return request_kv_raw(o, cmd, b, NULL, 0, m, r);
}

/* As request_kv, with n raw bytes after the request's blank line. */
int request_kv_raw(const struct opts *o, const char *cmd, struct kvbuf *b, const void *raw,
                   size_t n, struct kvmsg *m, struct reply *r)
{
    int rc;

    kv_end(b);
    if (n)
        kv_raw(b, raw, n);
    if (b->err) {
        bool oom = b->err == OVL_ENOMEM;

        kvbuf_free(b);
        fprintf(stderr, "ovlctl: %s: %s\n", cmd,
                oom ? "out of memory" : "cannot build the request");
        return EXIT_USAGE;
    }
    *r = (struct reply){0};
    rc = exchange(o, b->data, b->len, r, false);
    kvbuf_free(b);
    if (rc == 0)
        rc = reply_check(cmd, m, r->data, reply_msg_len(r));
    if (rc != 0) {
        kvmsg_free(m);
        free(r->data);
        r->data = NULL;
    }
    return rc;
}

/* Send b and hand each message that comes back to fn; see ovlctl.h. */
int request_stream(struct opts *o, const char *cmd, struct kvbuf *b,
                   int (*fn)(void *arg, const struct kvmsg *m), void *arg)
{
    struct reply r = {0};
    int fd = -1, rc;

    kv_end(b);
    rc = b->err ? EXIT_USAGE : ctl_connect(o, &fd);
    if (rc == 0)
        rc = send_all(o, fd, b->data, b->len);
    kvbuf_free(b);
    while (rc == 0 && !*o->stop && (rc = recv_reply(o, fd, &r, false)) == 0 && !*o->stop) {
        struct kvmsg m = {0};
        size_t n = reply_msg_len(&r);

        if ((rc = reply_check(cmd, &m, r.data, n)) == 0)
            rc = fn(arg, &m);
        kvmsg_free(&m);
        memmove(r.data, r.data + n, r.len - n);
        r.len -= n;
        r.scan = 0;
        o->deadline = now_ms() + INT_MAX; /* what is pushed comes when it comes */
    }
    if (fd >= 0)
        close(fd);
    free(r.data);
    return *o->stop ? 0 : rc;
}

/* Start a request for cmd in b. */
void request_begin(struct kvbuf *b, const char *cmd)
{
    *b = (struct kvbuf){0};
    kv_addu(b, "ovl-control", CONTROL_PROTO_VERSION);
    kv_adds(b, "command", cmd);
}

/* Send cmd with at most one argument; see request_kv. */
int request(const struct opts *o, const char *cmd, const char *key, const char *val,
            struct kvmsg *m, struct reply *r)
{
    struct kvbuf b;

    request_begin(&b, cmd);
    if (key)
        kv_adds(&b, key, val);
    return request_kv(o, cmd, &b, m, r);
}

/* True for the reply's envelope lines (version, errno). */
bool is_envelope(const char *key)
{
    return strcmp(key, "ovl-control") == 0 || strcmp(key, "errno") == 0;
}

/* ---- output ------------------------------------------------------------ */

/* Print every data line as "key: value", aligned. */
void print_pairs(const struct kvmsg *m)
{
    size_t i, w = 0;

    for (i = 0; i < m->n; i++)
        if (!is_envelope(m->pairs[i].key) && strlen(m->pairs[i].key) > w)
            w = strlen(m->pairs[i].key);
    for (i = 0; i < m->n; i++)
        if (!is_envelope(m->pairs[i].key))
            printf("%s:%*s %s\n", m->pairs[i].key, (int)(w - strlen(m->pairs[i].key)), "",
                   m->pairs[i].value);
}

/* A decimal integer of at most 18 digits becomes a JSON number (written
 * verbatim, so no precision is lost to doubles); anything else a string. */
cJSON *json_value(const char *v)
{
    const char *p = v + (*v == '-');
    size_t n = strspn(p, "0123456789");
    char num[24];

    if (n == 0 || n > 18 || p[n] != '\0')
        return cJSON_CreateString(v);
    snprintf(num, sizeof num, "%lld", strtoll(v, NULL, 10)); /* drops leading zeros */
    return cJSON_CreateRaw(num);
}

/* Print root (consumed) as JSON; EXIT_DAEMON when out of memory. */
int json_print(cJSON *root)
{
    char *s = root ? cJSON_Print(root) : NULL;

    cJSON_Delete(root);
    if (!s) {
        fprintf(stderr, "ovlctl: out of memory\n");
        return EXIT_DAEMON;
    }
    printf("%s\n", s);
    cJSON_free(s);
    return 0;
}

/* One object of every data pair; "listen" is always an array when asked for. */
static cJSON *json_object(const struct kvmsg *m, bool listen)
{
    cJSON *obj = cJSON_CreateObject();
    cJSON *arr = listen ? cJSON_CreateArray() : NULL;
    bool placed = false;
    size_t i;

    if (!obj || (listen && !arr))
        goto fail;
    for (i = 0; i < m->n; i++) {
        const struct kv_pair *p = &m->pairs[i];
        cJSON *v;

        if (is_envelope(p->key))
            continue;
        if (listen && strcmp(p->key, "listen") == 0)
            v = cJSON_CreateString(p->value);
        else
            v = json_value(p->value);
        if (!v)
            goto fail;
        if (listen && strcmp(p->key, "listen") == 0) {
            cJSON_AddItemToArray(arr, v);
            if (!placed) /* keep the array where the first address was */
                cJSON_AddItemToObject(obj, "listen", arr);
            placed = true;
        } else {
            cJSON_AddItemToObject(obj, p->key, v);
        }
    }
    if (arr && !placed)
        cJSON_AddItemToObject(obj, "listen", arr);
    return obj;
fail:
    if (!placed)
        cJSON_Delete(arr);
    cJSON_Delete(obj);
    return NULL;
}

/* An array of objects, a new one starting at each "peer" key. */
static cJSON *json_peers(const struct kvmsg *m)
{
    cJSON *arr = cJSON_CreateArray(), *cur = NULL;
    size_t i;

    for (i = 0; arr && i < m->n; i++) {
        const struct kv_pair *p = &m->pairs[i];
        bool is_peer = strcmp(p->key, "peer") == 0;
        cJSON *v;

        if (is_envelope(p->key) || (!cur && !is_peer))
            continue;
        if (is_peer) {
            if (!(cur = cJSON_CreateObject()))
                goto fail;
            cJSON_AddItemToArray(arr, cur);
        }
        v = is_peer ? cJSON_CreateString(p->value) : json_value(p->value);
        if (!v)
            goto fail;
        cJSON_AddItemToObject(cur, p->key, v);
    }
    return arr;
fail:
    cJSON_Delete(arr);
    return NULL;
}

/* ---- peers table ------------------------------------------------------- */

enum {
    COL_PEER,
    COL_STATE,
    COL_DIR,
    COL_REMOTE,
    COL_NAME,
    COL_SUITE,
    COL_AGE,
    COL_IN,
    COL_OUT,
    N_COLS
};

static const char *const col_title[N_COLS] = {"PEER",  "STATE", "DIR",      "REMOTE",   "NAME",
                                              "SUITE", "AGE",   "CELLS_IN", "CELLS_OUT"};
static const char *const col_key[N_COLS] = {"peer",  "state",  "direction", "remote",   "name",
                                            "suite", "age_ms", "cells_in",  "cells_out"};

struct row {
    const char *f[N_COLS];
    char age[32];
};

/* Format milliseconds (a decimal string) as 5s, 3m07s, 2h05m or 1d03h. */
void format_age(char *out, size_t outlen, const char *ms)
{
    unsigned long long s = strtoull(ms, NULL, 10) / 1000;

    if (s < 60)
        snprintf(out, outlen, "%llus", s);
    else if (s < 3600)
        snprintf(out, outlen, "%llum%02llus", s / 60, s % 60);
    else if (s < 86400)
        snprintf(out, outlen, "%lluh%02llum", s / 3600, s % 3600 / 60);
    else
        snprintf(out, outlen, "%llud%02lluh", s / 86400, s % 86400 / 3600);
}

/* Split the reply into rows, one per "peer" key; return the row count. */
static size_t peer_rows(const struct kvmsg *m, struct row *rows)
{
    size_t i, n = 0;
    int c;

    for (i = 0; i < m->n; i++) {
        const struct kv_pair *p = &m->pairs[i];

        if (strcmp(p->key, "peer") == 0)
            n++;
        for (c = 0; n > 0 && c < N_COLS; c++)
            if (strcmp(p->key, col_key[c]) == 0)
                rows[n - 1].f[c] = p->value;
    }
    for (i = 0; i < n; i++) {
        if (rows[i].f[COL_AGE]) {
            format_age(rows[i].age, sizeof rows[i].age, rows[i].f[COL_AGE]);
            rows[i].f[COL_AGE] = rows[i].age;
        }
        for (c = 0; c < N_COLS; c++)
            if (!rows[i].f[c] || !rows[i].f[c][0])
                rows[i].f[c] = "-";
    }
    return n;
}

static void print_row(const char *const *f, const size_t *w)
{
    int c;

    for (c = 0; c < N_COLS - 1; c++)
        printf("%-*s  ", (int)w[c], f[c]);
    printf("%s\n", f[N_COLS - 1]);
}

static int print_peers(const struct kvmsg *m)
{
    size_t i, n = 0, rows_n, w[N_COLS];
    struct row *rows;
    int c;

    for (i = 0; i < m->n; i++)
        n += strcmp(m->pairs[i].key, "peer") == 0;
    if (!(rows = calloc(n ? n : 1, sizeof *rows))) {
        fprintf(stderr, "ovlctl: out of memory\n");
        return EXIT_DAEMON;
    }
    rows_n = peer_rows(m, rows);
    for (c = 0; c < N_COLS; c++) {
        w[c] = strlen(col_title[c]);
        for (i = 0; i < rows_n; i++)
            if (strlen(rows[i].f[c]) > w[c])
                w[c] = strlen(rows[i].f[c]);
    }
    print_row(col_title, w);
    for (i = 0; i < rows_n; i++)
        print_row(rows[i].f, w);
    free(rows);
    return 0;
}

/* ---- subcommands ------------------------------------------------------- */

/* EXIT_USAGE (after saying so) if the subcommand got arguments. */
int no_args(int argc, char **argv)
{
    if (argc == 1)
        return 0;
    fprintf(stderr, "ovlctl: %s: unexpected argument %s\n", argv[0], argv[1]);
    return EXIT_USAGE;
}

/* Run a command without arguments and print its reply as pairs or JSON. */
static int simple_main(struct opts *o, int argc, char **argv, bool listen)
{
    struct kvmsg m = {0};
    struct reply r;
    int rc;

    if ((rc = no_args(argc, argv)) != 0)
        return rc;
    if ((rc = request(o, argv[0], NULL, NULL, &m, &r)) != 0)
        return rc;
    if (o->json)
        rc = json_print(json_object(&m, listen));
    else
        print_pairs(&m);
    kvmsg_free(&m);
    free(r.data);
    return rc;
}

static int status_main(struct opts *o, int argc, char **argv)
{
    return simple_main(o, argc, argv, true);
}

static int version_main(struct opts *o, int argc, char **argv)
{
    return simple_main(o, argc, argv, false);
}

static int peers_main(struct opts *o, int argc, char **argv)
{
    struct kvmsg m = {0};
    struct reply r;
    int rc;

    if ((rc = no_args(argc, argv)) != 0)
        return rc;
    if ((rc = request(o, "peers", NULL, NULL, &m, &r)) != 0)
        return rc;
    rc = o->json ? json_print(json_peers(&m)) : print_peers(&m);
    kvmsg_free(&m);
    free(r.data);
    return rc;
}

static int log_level_main(struct opts *o, int argc, char **argv)
{
    struct kvmsg m = {0};
    struct reply r;
    const char *lv;
    int rc = 0;

    if (argc > 2) {
        fprintf(stderr, "ovlctl: log-level: unexpected argument %s\n", argv[2]);
        return EXIT_USAGE;
    }
    if ((rc = request(o, "log-level", argc == 2 ? "level" : NULL, argv[1], &m, &r)) != 0)
        return rc;
    lv = kvmsg_get(&m, "log_level");
    if (o->json) {
        cJSON *obj = cJSON_CreateObject();

        if (obj && !cJSON_AddStringToObject(obj, "log_level", lv ? lv : ""))
            obj = (cJSON_Delete(obj), NULL);
        rc = json_print(obj);
    } else {
        printf("%s\n", lv ? lv : "");
    }
    kvmsg_free(&m);
    free(r.data);
    return rc;
}

/* A command without arguments whose reply says only whether it worked. */
static int plain_main(struct opts *o, int argc, char **argv, const char *cmd)
{
    struct kvmsg m = {0};
    struct reply r;
    int rc;

    if ((rc = no_args(argc, argv)) != 0)
        return rc;
    if ((rc = request(o, cmd, NULL, NULL, &m, &r)) != 0)
        return rc;
    kvmsg_free(&m);
    free(r.data);
    return 0;
}

static int shutdown_main(struct opts *o, int argc, char **argv)
{
    return plain_main(o, argc, argv, "shutdown");
}

/* The reload's report as JSON: config, and an array for each kind of line. */
static cJSON *json_reload(const struct kvmsg *m)
{
    static const char kinds[] = "changed\0restart\0failed\0failure";
    cJSON *obj = cJSON_CreateObject();
    const char *cfg = kvmsg_get(m, "config");

    if (!obj || !cJSON_AddStringToObject(obj, "config", cfg ? cfg : ""))
        goto fail;
    for (const char *k = kinds; k < kinds + sizeof(kinds); k += strlen(k) + 1) {
        cJSON *arr = cJSON_AddArrayToObject(obj, k);

        for (size_t i = 0; arr && i < m->n; i++)
            if (strcmp(m->pairs[i].key, k) == 0 &&
                !cJSON_AddItemToArray(arr, cJSON_CreateString(m->pairs[i].value)))
                goto fail;
        if (!arr)
            goto fail;
    }
    return obj;
fail:
    cJSON_Delete(obj);
    return NULL;
}

/* Have the daemon read its configuration again; exit 1 when a part of it
 * could not be applied. */
static int reload_main(struct opts *o, int argc, char **argv)
{
    struct kvmsg m = {0};
    struct reply r;
    int rc;

    if ((rc = no_args(argc, argv)) != 0)
        return rc;
    if ((rc = request(o, "reload", NULL, NULL, &m, &r)) != 0)
        return rc;
    if (o->json)
        rc = json_print(json_reload(&m));
    else
        print_pairs(&m);
    if (rc == 0 && kvmsg_get(&m, "failed"))
        rc = EXIT_DAEMON;
    kvmsg_free(&m);
    free(r.data);
    return rc;
}

static int new_chain_main(struct opts *o, int argc, char **argv)
{
    return plain_main(o, argc, argv, "new-chain");
}

/* The exposition's samples as one JSON object: each sample as written
 * (name and labels) to its value, a number where it is one. */
static cJSON *json_metrics(const struct kvmsg *m)
{
    cJSON *obj = cJSON_CreateObject();

    for (size_t i = 0; obj && i < m->n; i++) {
        const char *v = m->pairs[i].value, *sp = strrchr(v, ' ');
        char *name = NULL;
        cJSON *num;

        if (strcmp(m->pairs[i].key, "line") != 0 || v[0] == '#' || !sp)
            continue;
        /* Seconds have a fraction; counts are integers, kept exact. */
        num = strchr(sp, '.') ? cJSON_CreateNumber(strtod(sp + 1, NULL)) : json_value(sp + 1);
        if (!num || !(name = strndup(v, (size_t)(sp - v)))) {
            cJSON_Delete(num);
            free(name);
            cJSON_Delete(obj);
            return NULL;
        }
        cJSON_AddItemToObject(obj, name, num);
        free(name);
    }
    return obj;
}

/* metrics: the Prometheus exposition as the daemon wrote it. */
static int metrics_main(struct opts *o, int argc, char **argv)
{
    struct kvmsg m = {0};
    struct reply r;
    int rc;

    if ((rc = no_args(argc, argv)) != 0)
        return rc;
    if ((rc = request(o, "metrics", NULL, NULL, &m, &r)) != 0)
        return rc;
    if (o->json)
        rc = json_print(json_metrics(&m));
    else
        for (size_t i = 0; i < m.n; i++)
            if (strcmp(m.pairs[i].key, "line") == 0)
                printf("%s\n", m.pairs[i].value);
    kvmsg_free(&m);
    free(r.data);
    return rc;
}

/* Read all of stdin (at most REPLY_MAX bytes) into r. */
static int read_stdin(struct reply *r)
{
    size_t k;

    do {
        if (r->len == r->cap) {
            size_t cap = r->cap ? r->cap * 2 : 4096;
            char *p = cap > REPLY_MAX ? NULL : realloc(r->data, cap);

            if (!p) {
                fprintf(stderr, "ovlctl: raw: request too large\n");
                return EXIT_USAGE;
            }
            r->data = p;
            r->cap = cap;
        }
        k = fread(r->data + r->len, 1, r->cap - r->len, stdin);
        r->len += k;
    } while (k > 0);
    if (ferror(stdin)) {
        fprintf(stderr, "ovlctl: raw: cannot read stdin\n");
        return EXIT_USAGE;
    }
    return 0;
}

/* Check every complete reply in r (in place): 0 when all say errno=0. */
static int raw_status(struct reply *r)
{
    size_t off = 0;
    int rc = 0;

    while (off < r->len) {
        struct reply rest = {.data = r->data + off, .len = r->len - off};
        size_t n = reply_msg_len(&rest);
        struct kvmsg m = {0};
        int e;

        if (n == 0)
            break;
        if ((e = reply_check("raw", &m, r->data + off, n)) != 0)
            rc = e;
        kvmsg_free(&m);
        off += n;
    }
    return rc;
}

static int raw_main(struct opts *o, int argc, char **argv)
{
    struct reply in = {0}, out = {0};
    int rc;

    if ((rc = no_args(argc, argv)) != 0)
        return rc;
    if ((rc = read_stdin(&in)) == 0)
        rc = exchange(o, in.data ? in.data : "", in.len, &out, true);
    if (rc == 0) {
        fwrite(out.data, 1, out.len, stdout);
        fflush(stdout);
        rc = raw_status(&out);
    }
    free(in.data);
    free(out.data);
    return rc;
}

static const struct subcommand subcommands[] = {
    {"status", status_main, "", "show the node's identity, listeners and counters"},
    {"peers", peers_main, "", "list links and configured peers"},
    {"version", version_main, "", "show the daemon's version and protocols"},
    {"log-level", log_level_main, " [LEVEL]", "show or set the log level"},
    {"shutdown", shutdown_main, "", "stop the daemon"},
    {"metrics", metrics_main, "", "print every counter in the Prometheus text format"},
    {"reload", reload_main, "",
     "read the configuration file again and apply it; print what changed"},
    {"raw", raw_main, "", "send a request read from stdin, print the raw reply"},
    {"send", send_main, " --to ID [--reply] (--file F | TEXT...)",
     "send a message (client); prints its id"},
    {"reply", send_main, " ID (--file F | TEXT...)",
     "answer received message ID on its way back (client); prints the reply's id"},
    {"recv", recv_main, " [--follow] [--max N]",
     "print the messages received; --follow: as they come, until interrupted (client)"},
    {"chains", chains_main, "", "list this client's chains"},
    {"new-chain", new_chain_main, "", "build a fresh chain and move to it (client)"},
    {"relays", relays_main, "", "list the registered nodes (bootstrap)"},
    {"relay-chains", relay_chains_main, "",
     "list the chains through this relay: each hop's neighbours"},
    {"dir-chain", dir_chain_main, " [--length N] [--backups N]", "ask the directory for a chain"},
    {"lookup", lookup_main, " NODE_ID",
     "ask the directory for a node: its addresses, or a hidden node's introduction relays"},
};

/* ---- main -------------------------------------------------------------- */

static void usage(FILE *f)
{
    size_t i;

    fprintf(f,
            "usage: ovlctl [-s SOCKET | -c CONFIG] [--json] [--timeout MS] COMMAND [ARGS]\n"
            "       ovlctl --help | --version\n"
            "  -s, --socket PATH   control socket (default %s)\n"
            "  -c, --config FILE   read control_socket from an ovld config\n"
            "  -j, --json          print the reply as JSON\n"
            "      --timeout MS    give up after MS milliseconds (default %d)\n"
            "commands:\n",
            OVL_DEFAULT_SOCKET, TIMEOUT_DEFAULT_MS);
    for (i = 0; i < sizeof subcommands / sizeof subcommands[0]; i++) {
        size_t w = strlen(subcommands[i].name) + strlen(subcommands[i].args);

        /* A long synopsis gets its help on the next line. */
        if (w > 18)
            fprintf(f, "  %s%s\n  %-18s %s\n", subcommands[i].name, subcommands[i].args, "",
                    subcommands[i].help);
        else
            fprintf(f, "  %s%-*s %s\n", subcommands[i].name,
                    (int)(18 - strlen(subcommands[i].name)), subcommands[i].args,
                    subcommands[i].help);
    }
    fprintf(f, "A command's own --json is the same as the global one.\n");
    fprintf(f, "See ovlctl(8).\n");
}

static int parse_timeout(const char *s, int *out)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < 1 || v > TIMEOUT_MAX_MS)
        return -1;
    *out = (int)v;
    return 0;
}

/* Take the value of option name from "--name=V" or the next argument. */
const char *opt_value(int argc, char **argv, int *i, const char *eq)
{
    if (eq)
        return eq + 1;
    return *i + 1 < argc ? argv[++*i] : NULL;
}

/* True if arg is shrt, lng or "lng=..." (then *eq points at the '='). */
bool opt_is(const char *arg, const char *shrt, const char *lng, const char **eq)
{
    size_t n = strlen(lng);

    *eq = NULL;
    if (strcmp(arg, shrt) == 0 || strcmp(arg, lng) == 0)
        return true;
    if (strncmp(arg, lng, n) == 0 && arg[n] == '=') {
        *eq = arg + n;
        return true;
    }
    return false;
}

/* Parse the global options; return the index of the command, or -1 after
 * printing help/version (exit 0), or -2 for a usage error. */
static int parse_opts(struct opts *o, int argc, char **argv)
{
    const char *eq, *v;
    int i;

    for (i = 1; i < argc && argv[i][0] == '-'; i++) {
        const char *a = argv[i];

        if (strcmp(a, "--") == 0)
            return i + 1;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return -1;
        }
        if (strcmp(a, "-V") == 0 || strcmp(a, "--version") == 0) {
            printf("ovlctl %s (control protocol %d)\n", OVL_VERSION, CONTROL_PROTO_VERSION);
            return -1;
        }
        if (opt_is(a, "-j", "--json", &eq) && !eq) {
            o->json = true;
            continue;
        }
        if (opt_is(a, "-s", "--socket", &eq) && (v = opt_value(argc, argv, &i, eq)) && *v)
            o->socket = v;
        else if (opt_is(a, "-c", "--config", &eq) && (v = opt_value(argc, argv, &i, eq)) && *v)
            o->config = v;
        else if (opt_is(a, "--timeout", "--timeout", &eq) && (v = opt_value(argc, argv, &i, eq)) &&
                 parse_timeout(v, &o->timeout_ms) == 0)
            o->timeout_set = true;
        else {
            fprintf(stderr, "ovlctl: bad option or missing value: %s\n", a);
            return -2;
        }
    }
    return i;
}

/* -s wins, then control_socket from -c CONFIG, then the built-in default. */
static int resolve_socket(struct opts *o)
{
    struct ovl_config *cfg;
    char err[CONFIG_ERR_MAX];

    if (o->socket)
        return 0;
    o->socket = OVL_DEFAULT_SOCKET;
    if (!o->config)
        return 0;
    if (!(cfg = malloc(sizeof *cfg))) {
        fprintf(stderr, "ovlctl: out of memory\n");
        return EXIT_USAGE;
    }
    if (config_load(cfg, o->config, err, sizeof err) != 0) {
        fprintf(stderr, "ovlctl: %s\n", err);
        free(cfg);
        return EXIT_USAGE;
    }
    if (cfg->control_socket[0]) {
        snprintf(o->sockbuf, sizeof o->sockbuf, "%s", cfg->control_socket);
        o->socket = o->sockbuf;
    }
    free(cfg);
    return 0;
}

/* Parse the options, find the subcommand and run it. */
int main(int argc, char **argv)
{
    struct opts o = {.timeout_ms = TIMEOUT_DEFAULT_MS};
    int i, rc;
    size_t k;

    i = parse_opts(&o, argc, argv);
    if (i == -1)
        return 0;
    if (i == -2 || i >= argc) {
        if (i >= argc)
            usage(stderr);
        else
            fprintf(stderr, "Try 'ovlctl --help'.\n");
        return EXIT_USAGE;
    }
    for (k = 0; k < sizeof subcommands / sizeof subcommands[0]; k++)
        if (strcmp(argv[i], subcommands[k].name) == 0)
            break;
    if (k == sizeof subcommands / sizeof subcommands[0]) {
        fprintf(stderr, "ovlctl: unknown command %s\nTry 'ovlctl --help'.\n", argv[i]);
        return EXIT_USAGE;
    }
    if ((rc = resolve_socket(&o)) != 0)
        return rc;
    o.deadline = now_ms() + o.timeout_ms;
    return subcommands[k].fn(&o, argc - i, argv + i);
}
