/* ovlctl_roles.c - ovlctl's subcommands for the roles: send, reply, recv,
 * chains, relays, dir-chain (protocol: docs/CONTROL.md, usage: ovlctl(8)).
 *
 * Message bodies cross the control socket as base64 in data= lines of at
 * most CONTROL_DATA_CHUNK characters; replies that repeat keys are grouped
 * into records, each starting at its first key (msg, chain, relay, pos).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "app/ovlctl.h"
#include "control/control.h"
#include "lib/encode.h"

#define B64          sodium_base64_VARIANT_ORIGINAL
#define RECV_MAX_ARG 1000
#define FILE_MAX     ((size_t)64 << 20) /* the largest max_message */

/* ---- common ------------------------------------------------------------ */

/* Accept only --json (and "--") after the subcommand name. */
static int json_only(struct opts *o, int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0 || strcmp(argv[i], "-j") == 0) {
            o->json = true;
            continue;
        }
        fprintf(stderr, "ovlctl: %s: unexpected argument %s\n", argv[0], argv[i]);
        return EXIT_USAGE;
    }
    return 0;
}

static int out_of_memory(void)
{
    fprintf(stderr, "ovlctl: out of memory\n");
    return EXIT_DAEMON;
}

static bool parse_count(const char *s, long lo, long hi, long *out)
{
    char *end;
    long v;

    if (!s || !*s)
        return false;
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno || *end || v < lo || v > hi || s[0] == '+' || s[0] == '-' || s[0] == ' ')
        return false;
    *out = v;
    return true;
}

/* ---- send -------------------------------------------------------------- */

/* Read all of path into *data (at most FILE_MAX bytes). */
static int read_file(const char *path, unsigned char **data, size_t *len)
{
    FILE *f = fopen(path, "rb");
    size_t cap = 0, n = 0, k;
    unsigned char *buf = NULL;

    *data = NULL;
    if (!f) {
        fprintf(stderr, "ovlctl: send: %s: %s\n", path, strerror(errno));
        return EXIT_USAGE;
    }
    do {
        if (n == cap) {
            unsigned char *p;

            cap = cap ? cap * 2 : 65536;
            if (cap > FILE_MAX + 1)
                cap = FILE_MAX + 1;
            if (n == cap || !(p = realloc(buf, cap))) {
                fprintf(stderr, "ovlctl: send: %s: %s\n", path,
                        n == cap ? "larger than 64 MiB" : "out of memory");
                free(buf);
                fclose(f);
                return EXIT_USAGE;
            }
            buf = p;
        }
        k = fread(buf + n, 1, cap - n, f);
        n += k;
    } while (k > 0);
    if (ferror(f)) {
        fprintf(stderr, "ovlctl: send: %s: read error\n", path);
        free(buf);
        fclose(f);
        return EXIT_USAGE;
    }
    fclose(f);
    *data = buf;
    *len = n;
    return 0;
}

/* True if s can travel as one text= line: printable UTF-8, short enough. */
static bool text_ok(const char *s, size_t len)
{
    if (len == 0 || len > KV_LINE_MAX - 8 || sodium_base64_ENCODED_LEN(len, B64) == 0)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];

        if (c < 0x20 || c == 0x7f)
            return false;
    }
    return true;
}

/* Append msg as base64 data= lines. */
static void add_data(struct kvbuf *b, const unsigned char *msg, size_t len)
{
    size_t b64len = sodium_base64_ENCODED_LEN(len, B64), off;
    char *b64 = malloc(b64len);

    if (!b64) {
        b->err = OVL_ENOMEM;
        return;
    }
    sodium_bin2base64(b64, b64len, msg, len, B64);
    for (off = 0; off + 1 < b64len; off += CONTROL_DATA_CHUNK)
        kv_addf(b, "data", "%.*s", CONTROL_DATA_CHUNK, b64 + off);
    free(b64);
}

/* Join TEXT... with single blanks into a new string. */
static char *join_words(int argc, char **argv)
{
    size_t n = 1;
    char *s;

    for (int i = 0; i < argc; i++)
        n += strlen(argv[i]) + 1;
    if (!(s = malloc(n)))
        return NULL;
    s[0] = '\0';
    for (int i = 0; i < argc; i++) {
        if (i)
            strcat(s, " ");
        strcat(s, argv[i]);
    }
    return s;
}

#define WAIT_TIMEOUT_MS 65000 /* --wait without --timeout: past ovld's default deadline */

struct send_args {
    const char *to, *file; /* to: the destination, or for a reply the message ID */
    unsigned char *raw;    /* --file: its bytes, sent raw after the request (length=N) */
    size_t raw_len;
    bool reply, wait;
    int first_word; /* index of TEXT in argv, argc if none */
};

/* Parse send's or reply's arguments (argv[0] says which) into a. */
static int send_parse(struct opts *o, int argc, char **argv, struct send_args *a)
{
    bool reply = strcmp(argv[0], "reply") == 0;
    const char *eq;
    int i = 1;

    *a = (struct send_args){0};
    if (reply && argc > 1 && argv[1][0] != '-')
        a->to = argv[i++];
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "--") == 0) {
            i++;
            break;
        }
        if (opt_is(argv[i], "-j", "--json", &eq) && !eq)
            o->json = true;
        else if (!reply && opt_is(argv[i], "-r", "--reply", &eq) && !eq)
            a->reply = true;
        else if (!reply && opt_is(argv[i], "-w", "--wait", &eq) && !eq)
            a->wait = true;
        else if (!reply && opt_is(argv[i], "-t", "--to", &eq) &&
                 (a->to = opt_value(argc, argv, &i, eq)))
            continue;
        else if (opt_is(argv[i], "-f", "--file", &eq) && (a->file = opt_value(argc, argv, &i, eq)))
            continue;
        else {
            fprintf(stderr, "ovlctl: %s: bad option or missing value: %s\n", argv[0], argv[i]);
            return EXIT_USAGE;
        }
    }
    a->first_word = i;
    if (!a->to || (a->file != NULL) == (i < argc)) {
        fprintf(stderr, "ovlctl: %s: usage: %s\n", argv[0],
                reply ? "reply ID (--file F | TEXT...)"
                      : "send --to ID [--reply] [--wait] (--file F | TEXT...)");
        return EXIT_USAGE;
    }
    return 0;
}

/* Build the send request for the message in a into b. */
static int send_build(struct send_args *a, int argc, char **argv, struct kvbuf *b)
{
    unsigned char *data = NULL;
    char *text = NULL;
    size_t len = 0;
    int rc;

    bool reply = strcmp(argv[0], "reply") == 0;

    request_begin(b, argv[0]);
    kv_adds(b, reply ? "id" : "to", a->to);
    if (a->reply)
        kv_adds(b, "reply", "1");
    if (a->wait)
        kv_adds(b, "wait", "1");
    if (a->file) {
        if ((rc = read_file(a->file, &data, &len)) != 0) {
            kvbuf_free(b);
            return rc;
        }
        if (len > 0) {
            kv_addu(b, "length", len);
            a->raw = data;
            a->raw_len = len;
        } else {
            add_data(b, data, len); /* empty: the daemon says why it refuses */
            free(data);
        }
    } else if (!(text = join_words(argc - a->first_word, argv + a->first_word))) {
        kvbuf_free(b);
        return out_of_memory();
    } else {
        if (text_ok(text, strlen(text)))
            kv_adds(b, "text", text);
        else
            add_data(b, (const unsigned char *)text, strlen(text));
        free(text);
    }
    return 0;
}

/* send --to ID [--reply] [--wait] (--file F | TEXT...): print the message
 * id; with --wait only once the destination acknowledged it. reply ID
 * (--file F | TEXT...): print the reply's id once it left. */
int send_main(struct opts *o, int argc, char **argv)
{
    struct send_args a;
    struct kvmsg m = {0};
    struct kvbuf b;
    struct reply r;
    const char *id, *res;
    int rc;

    if ((rc = send_parse(o, argc, argv, &a)) != 0)
        return rc;
    if ((rc = send_build(&a, argc, argv, &b)) != 0)
        return rc;
    if (a.wait && !o->timeout_set && o->timeout_ms < WAIT_TIMEOUT_MS) {
        o->deadline += WAIT_TIMEOUT_MS - o->timeout_ms;
        o->timeout_ms = WAIT_TIMEOUT_MS;
    }
    rc = request_kv_raw(o, argv[0], &b, a.raw, a.raw_len, &m, &r);
    free(a.raw);
    if (rc != 0)
        return rc;
    id = kvmsg_get(&m, "id");
    res = kvmsg_get(&m, "result");
    if (o->json) {
        cJSON *obj = cJSON_CreateObject();

        if (obj && (!cJSON_AddStringToObject(obj, "id", id ? id : "") ||
                    (res && !cJSON_AddStringToObject(obj, "result", res))))
            obj = (cJSON_Delete(obj), NULL);
        rc = json_print(obj);
    } else {
        printf("%s%s%s\n", id ? id : "", res ? " " : "", res ? res : "");
    }
    kvmsg_free(&m);
    free(r.data);
    return rc;
}

/* ---- recv -------------------------------------------------------------- */

/* One received message as the reply describes it. */
struct rmsg {
    const char *id, *from, *reply_to, *received_ms, *len;
    unsigned char *data; /* decoded */
    size_t data_len;
};

/* True if data is UTF-8 with no control character but newline and tab. */
static bool printable(const unsigned char *d, size_t n)
{
    size_t i = 0;

    while (i < n) {
        unsigned char c = d[i];
        size_t k = c < 0x80             ? 1
                   : (c & 0xe0) == 0xc0 ? 2
                   : (c & 0xf0) == 0xe0 ? 3
                   : (c & 0xf8) == 0xf0 ? 4
                                        : 0;

        if (k == 0 || i + k > n || (k == 2 && c < 0xc2) || (k == 4 && c > 0xf4))
            return false;
        if (k == 1 && ((c < 0x20 && c != '\n' && c != '\t') || c == 0x7f))
            return false;
        for (size_t j = 1; j < k; j++)
            if ((d[i + j] & 0xc0) != 0x80)
                return false;
        /* Overlong 3- and 4-byte forms and UTF-16 surrogates. */
        if ((k == 3 && c == 0xe0 && d[i + 1] < 0xa0) || (k == 3 && c == 0xed && d[i + 1] >= 0xa0) ||
            (k == 4 && c == 0xf0 && d[i + 1] < 0x90) || (k == 4 && c == 0xf4 && d[i + 1] >= 0x90))
            return false;
        i += k;
    }
    return true;
}

/* Decode the data= lines from pairs [from, to) of m into r. */
static int rmsg_decode(const struct kvmsg *m, size_t from, size_t to, struct rmsg *r)
{
    size_t total = 0, used = 0, i;
    char *b64;

    for (i = from; i < to; i++)
        if (strcmp(m->pairs[i].key, "data") == 0)
            total += strlen(m->pairs[i].value);
    if (!(b64 = malloc(total + 1)) || !(r->data = malloc(total / 4 * 3 + 3))) {
        free(b64);
        return out_of_memory();
    }
    for (i = from; i < to; i++) {
        if (strcmp(m->pairs[i].key, "data") == 0) {
            size_t k = strlen(m->pairs[i].value);

            memcpy(b64 + used, m->pairs[i].value, k);
            used += k;
        }
    }
    if (sodium_base642bin(r->data, total / 4 * 3 + 3, b64, used, NULL, &r->data_len, NULL, B64) !=
        0) {
        free(b64);
        fprintf(stderr, "ovlctl: recv: the daemon sent bad base64\n");
        return EXIT_DAEMON;
    }
    free(b64);
    return 0;
}

/* Split the reply into messages (each starts at msg=); *out has *n entries. */
static int rmsg_split(const struct kvmsg *m, struct rmsg **out, size_t *n)
{
    size_t count = 0, i, k = 0, start = 0;
    struct rmsg *v;
    int rc;

    for (i = 0; i < m->n; i++)
        count += strcmp(m->pairs[i].key, "msg") == 0;
    *out = NULL;
    *n = 0;
    if (!(v = calloc(count ? count : 1, sizeof *v)))
        return out_of_memory();
    for (i = 0; i <= m->n; i++) {
        bool end = i == m->n || strcmp(m->pairs[i].key, "msg") == 0;

        if (end && k > 0 && (rc = rmsg_decode(m, start, i, &v[k - 1])) != 0) {
            *out = v;
            *n = k;
            return rc;
        }
        if (i == m->n)
            break;
        if (strcmp(m->pairs[i].key, "msg") == 0) {
            start = i;
            k++;
        } else if (k > 0) {
            const char *key = m->pairs[i].key, *val = m->pairs[i].value;
            struct rmsg *r = &v[k - 1];

            if (strcmp(key, "id") == 0)
                r->id = val;
            else if (strcmp(key, "from") == 0)
                r->from = val;
            else if (strcmp(key, "reply_to") == 0)
                r->reply_to = val;
            else if (strcmp(key, "received_ms") == 0)
                r->received_ms = val;
            else if (strcmp(key, "len") == 0)
                r->len = val;
        }
    }
    *out = v;
    *n = k;
    return 0;
}

static cJSON *rmsg_json(const struct rmsg *r)
{
    cJSON *o = cJSON_CreateObject();
    bool text = printable(r->data, r->data_len);
    char *s = NULL;

    if (!o)
        return NULL;
    cJSON_AddStringToObject(o, "id", r->id ? r->id : "");
    if (r->from && r->from[0])
        cJSON_AddStringToObject(o, "from", r->from);
    else
        cJSON_AddNullToObject(o, "from");
    if (r->reply_to && r->reply_to[0])
        cJSON_AddStringToObject(o, "reply_to", r->reply_to);
    else
        cJSON_AddNullToObject(o, "reply_to");
    cJSON_AddItemToObject(o, "received_ms", json_value(r->received_ms ? r->received_ms : "0"));
    cJSON_AddItemToObject(o, "len", json_value(r->len ? r->len : "0"));
    if (text) {
        if ((s = malloc(r->data_len + 1))) {
            memcpy(s, r->data, r->data_len);
            s[r->data_len] = '\0';
            cJSON_AddStringToObject(o, "text", s);
        }
    } else {
        size_t b64len = sodium_base64_ENCODED_LEN(r->data_len, B64);

        if ((s = malloc(b64len))) {
            sodium_bin2base64(s, b64len, r->data, r->data_len, B64);
            cJSON_AddStringToObject(o, "base64", s);
        }
    }
    free(s);
    if (!s || cJSON_GetArraySize(o) != 6) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

static void rmsg_print(const struct rmsg *r)
{
    printf("id:   %s\nfrom: %s\n", r->id ? r->id : "",
           r->from && r->from[0] ? r->from : "(anonymous)");
    if (r->reply_to && r->reply_to[0])
        printf("re:   %s (a reply to our message)\n", r->reply_to);
    printf("size: %zu bytes\n", r->data_len);
    if (printable(r->data, r->data_len)) {
        fwrite(r->data, 1, r->data_len, stdout);
        if (r->data_len == 0 || r->data[r->data_len - 1] != '\n')
            putchar('\n');
    } else {
        size_t b64len = sodium_base64_ENCODED_LEN(r->data_len, B64);
        char *s = malloc(b64len);

        if (s) {
            sodium_bin2base64(s, b64len, r->data, r->data_len, B64);
            printf("base64: %s\n", s);
            free(s);
        }
    }
    putchar('\n');
}

/* Print the messages of one reply; lines=true prints JSON one per line. */
static int recv_print(const struct opts *o, const struct kvmsg *m, bool lines)
{
    struct rmsg *v;
    size_t n, i;
    int rc = rmsg_split(m, &v, &n);
    cJSON *arr = NULL;

    if (rc == 0 && o->json && !lines && !(arr = cJSON_CreateArray()))
        rc = out_of_memory();
    for (i = 0; rc == 0 && i < n; i++) {
        if (!o->json) {
            rmsg_print(&v[i]);
            continue;
        }
        cJSON *obj = rmsg_json(&v[i]);
        char *s;

        if (!obj) {
            rc = out_of_memory();
        } else if (arr) {
            cJSON_AddItemToArray(arr, obj);
        } else if ((s = cJSON_PrintUnformatted(obj))) {
            printf("%s\n", s);
            cJSON_free(s);
            cJSON_Delete(obj);
        } else {
            cJSON_Delete(obj);
            rc = out_of_memory();
        }
    }
    if (arr)
        rc = rc ? (cJSON_Delete(arr), rc) : json_print(arr);
    for (i = 0; i < n; i++)
        free(v[i].data);
    free(v);
    fflush(stdout);
    return rc;
}

static volatile sig_atomic_t recv_stop; /* set by SIGINT/SIGTERM during --follow */

static void on_stop_signal(int sig)
{
    (void)sig;
    recv_stop = 1;
}

static int follow_print(void *arg, const struct kvmsg *m)
{
    return recv_print(arg, m, true); /* the subscribe reply itself holds none */
}

/* Subscribe and print each message as the daemon pushes it, until a signal. */
static int recv_follow(struct opts *o)
{
    struct sigaction sa = {0};
    struct kvbuf b;

    sa.sa_handler = on_stop_signal; /* no SA_RESTART: the wait ends at once */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    o->stop = &recv_stop;
    request_begin(&b, "subscribe");
    kv_adds(&b, "events", "messages");
    return request_stream(o, "recv", &b, follow_print, o);
}

/* recv [--follow] [--json] [--max N]. */
int recv_main(struct opts *o, int argc, char **argv)
{
    bool follow = false;
    const char *max = "100", *eq;
    struct kvmsg m = {0};
    struct reply r;
    long v;
    int rc;

    for (int i = 1; i < argc; i++) {
        if (opt_is(argv[i], "-j", "--json", &eq) && !eq)
            o->json = true;
        else if (opt_is(argv[i], "-f", "--follow", &eq) && !eq)
            follow = true;
        else if (opt_is(argv[i], "-n", "--max", &eq) && (max = opt_value(argc, argv, &i, eq)) &&
                 parse_count(max, 1, RECV_MAX_ARG, &v))
            continue;
        else {
            fprintf(stderr, "ovlctl: recv: bad option or value: %s (--max is 1 to %d)\n", argv[i],
                    RECV_MAX_ARG);
            return EXIT_USAGE;
        }
    }
    if (follow)
        return recv_follow(o); /* each message as it comes: --max means nothing */
    if ((rc = request(o, "recv", "max", max, &m, &r)) != 0)
        return rc;
    rc = recv_print(o, &m, false);
    kvmsg_free(&m);
    free(r.data);
    return rc;
}

/* ---- records: chains, relays, dir-chain -------------------------------- */

/* How the lines of one record kind map to JSON. */
struct rec_shape {
    const char *start;   /* key that starts a record */
    const char *rename;  /* its JSON name (NULL: the same) */
    const char *list;    /* a repeated key collected into an array ... */
    const char *list_as; /* ... of this name */
};

/* Build an array of records from pairs [from, m->n) of m. */
static cJSON *json_records(const struct kvmsg *m, size_t from, const struct rec_shape *sh)
{
    cJSON *arr = cJSON_CreateArray(), *cur = NULL, *list = NULL, *v;

    for (size_t i = from; arr && i < m->n; i++) {
        const struct kv_pair *p = &m->pairs[i];
        bool start = strcmp(p->key, sh->start) == 0;
        bool listed = sh->list && strcmp(p->key, sh->list) == 0;

        if (is_envelope(p->key) || (!cur && !start))
            continue;
        v = listed ? cJSON_CreateString(p->value) : json_value(p->value);
        if (!v)
            goto fail;
        if (start) {
            if (!(cur = cJSON_CreateObject())) {
                cJSON_Delete(v);
                goto fail;
            }
            cJSON_AddItemToArray(arr, cur);
            cJSON_AddItemToObject(cur, sh->rename ? sh->rename : p->key, v);
            /* The list is there even when empty. */
            if (sh->list && !(list = cJSON_AddArrayToObject(cur, sh->list_as)))
                goto fail;
        } else if (listed) {
            cJSON_AddItemToArray(list, v);
        } else {
            cJSON_AddItemToObject(cur, p->key, v);
        }
    }
    return arr;
fail:
    cJSON_Delete(arr);
    return NULL;
}

/* Print records as blocks: the start line, then "  key: value" lines;
 * ages are shown as durations. */
static void print_blocks(const struct kvmsg *m, const char *start)
{
    char age[32];

    for (size_t i = 0; i < m->n; i++) {
        const char *k = m->pairs[i].key, *v = m->pairs[i].value;
        size_t kl = strlen(k);

        if (is_envelope(k))
            continue;
        if (strcmp(k, start) == 0) {
            printf("%s%s %s\n", i > 1 ? "\n" : "", k, v);
        } else if (kl > 3 && strcmp(k + kl - 3, "_ms") == 0) {
            format_age(age, sizeof age, v);
            printf("  %.*s: %s\n", (int)(kl - 3), k, age);
        } else {
            printf("  %s: %s\n", k, v);
        }
    }
}

/* Ask for cmd and print its records, as blocks or (--json) an array. */
static int records_main(struct opts *o, int argc, char **argv, const char *cmd,
                        const struct rec_shape *sh)
{
    struct kvmsg m = {0};
    struct reply r;
    int rc;

    if ((rc = json_only(o, argc, argv)) != 0 || (rc = request(o, cmd, NULL, NULL, &m, &r)))
        return rc;
    if (o->json)
        rc = json_print(json_records(&m, 0, sh));
    else
        print_blocks(&m, sh->start);
    kvmsg_free(&m);
    free(r.data);
    return rc;
}

/* chains [--json]. */
int chains_main(struct opts *o, int argc, char **argv)
{
    static const struct rec_shape sh = {"chain", NULL, "hop", "hops"};

    return records_main(o, argc, argv, "chains", &sh);
}

/* relays [--json]: one block per registered node. */
int relays_main(struct opts *o, int argc, char **argv)
{
    static const struct rec_shape sh = {"relay", "id", "uri", "uris"};

    return records_main(o, argc, argv, "relays", &sh);
}

/* relay-chains [--json]: what this relay knows of each chain through it. */
int relay_chains_main(struct opts *o, int argc, char **argv)
{
    static const struct rec_shape sh = {"chain", NULL, NULL, NULL};

    return records_main(o, argc, argv, "relay-chains", &sh);
}

/* The head of a dir-chain reply and its positions as one JSON object. */
static cJSON *dir_chain_json(const struct kvmsg *m)
{
    static const struct rec_shape sh = {"pos", NULL, "backup", "backups"};
    cJSON *obj = cJSON_CreateObject(), *pos;
    size_t i;

    for (i = 0; obj && i < m->n && strcmp(m->pairs[i].key, "pos") != 0; i++)
        if (!is_envelope(m->pairs[i].key))
            cJSON_AddItemToObject(obj, m->pairs[i].key, json_value(m->pairs[i].value));
    if (!obj || !(pos = json_records(m, i, &sh))) {
        cJSON_Delete(obj);
        return NULL;
    }
    cJSON_AddItemToObject(obj, "positions", pos);
    return obj;
}

/* dir-chain [--length N] [--backups N] [--json]. */
int dir_chain_main(struct opts *o, int argc, char **argv)
{
    const char *len = NULL, *bk = NULL, *eq;
    struct kvmsg m = {0};
    struct kvbuf b;
    struct reply r;
    long v;
    int rc;

    for (int i = 1; i < argc; i++) {
        if (opt_is(argv[i], "-j", "--json", &eq) && !eq)
            o->json = true;
        else if (opt_is(argv[i], "-l", "--length", &eq) && (len = opt_value(argc, argv, &i, eq)) &&
                 parse_count(len, 1, 8, &v))
            continue;
        else if (opt_is(argv[i], "-b", "--backups", &eq) && (bk = opt_value(argc, argv, &i, eq)) &&
                 parse_count(bk, 0, 4, &v))
            continue;
        else {
            fprintf(stderr,
                    "ovlctl: dir-chain: bad option or value: %s (--length 1..8, "
                    "--backups 0..4)\n",
                    argv[i]);
            return EXIT_USAGE;
        }
    }
    request_begin(&b, "dir-chain");
    if (len)
        kv_adds(&b, "length", len);
    if (bk)
        kv_adds(&b, "backups", bk);
    if ((rc = request_kv(o, "dir-chain", &b, &m, &r)) != 0)
        return rc;
    if (o->json) {
        rc = json_print(dir_chain_json(&m));
    } else {
        for (size_t i = 0; i < m.n; i++) {
            const char *k = m.pairs[i].key, *val = m.pairs[i].value;

            if (is_envelope(k))
                continue;
            if (strcmp(k, "pos") == 0)
                printf("position %s:\n", val);
            else if (strcmp(k, "hop") == 0 || strcmp(k, "backup") == 0)
                printf("  %-7s %s\n", strcmp(k, "hop") == 0 ? "hop:" : "backup:", val);
            else
                printf("%s: %s\n", k, val);
        }
    }
    kvmsg_free(&m);
    free(r.data);
    return rc;
}

/* lookup ID [--json]: what the directory answers for a node: its roles
 * and addresses, or a hidden node's introduction relays. */
int lookup_main(struct opts *o, int argc, char **argv)
{
    const char *id = NULL, *eq;
    struct kvmsg m = {0};
    struct reply r;
    cJSON *obj, *uris, *intros;
    int rc;

    for (int i = 1; i < argc; i++) {
        if (opt_is(argv[i], "-j", "--json", &eq) && !eq) {
            o->json = true;
        } else if (!id && argv[i][0] != '-') {
            id = argv[i];
        } else {
            fprintf(stderr, "ovlctl: lookup: bad argument: %s (lookup NODE_ID)\n", argv[i]);
            return EXIT_USAGE;
        }
    }
    if (!id) {
        fprintf(stderr, "ovlctl: lookup needs a NODE_ID\n");
        return EXIT_USAGE;
    }
    if ((rc = request(o, "lookup", "id", id, &m, &r)) != 0)
        return rc;
    if (!o->json) {
        print_pairs(&m);
    } else if ((obj = cJSON_CreateObject()) && (uris = cJSON_AddArrayToObject(obj, "uris")) &&
               (intros = cJSON_AddArrayToObject(obj, "intros"))) {
        for (size_t i = 0; i < m.n; i++) {
            const char *k = m.pairs[i].key, *v = m.pairs[i].value;

            if (is_envelope(k))
                continue;
            if (strcmp(k, "uri") == 0 || strcmp(k, "intro") == 0)
                cJSON_AddItemToArray(k[0] == 'u' ? uris : intros, cJSON_CreateString(v));
            else
                cJSON_AddItemToObject(obj, k, json_value(v));
        }
        rc = json_print(obj);
    } else {
        cJSON_Delete(obj);
        rc = json_print(NULL);
    }
    kvmsg_free(&m);
    free(r.data);
    return rc;
}
