/* fuzz_socks5.c - the SOCKS5 server-side parser and reply encoder
 * (src/client/socks5.h), as the listener drives them.
 *
 * Input: split(1), then the bytes an application sends to the SOCKS port.
 * They are fed three ways, each as a listener would (every SOCKS5_SEND
 * "sent", the rest fed again, until the parser waits with nothing left,
 * is ready or fails): all at once; in two writes cut at split modulo
 * (length + 1); one byte per write.
 *
 * Properties: the three give the same result, bytes consumed, bytes sent
 * and parser state; a call never uses more than it was given, and uses
 * all of it when it waits; what is sent is a method reply, an auth status
 * or, on failure, nothing, 05 FF, 01 01 or exactly socks5_reply() of the
 * failure's code; a finished parser answers the same again and uses
 * nothing; a ready request holds the address, name (its length byte and
 * no NUL), port and credentials that stand in the input just before the
 * bytes left unconsumed; socks5_is_ovl_name on the name decodes exactly
 * the node ID the name spells, or zeroes the ID.
 */
#include <string.h>

#include "client/socks5.h"
#include "fuzz.h"
#include "lib/bytes.h"
#include "lib/encode.h"

#define SENT_MAX 16 /* method reply, auth status, a failure's reply */

static void seeds(const char *dir)
{
#define SEED(name, text)                                                                           \
    {                                                                                              \
        name, text, sizeof(text) - 1                                                               \
    }
    static const struct {
        const char *name, *text;
        size_t len;
    } texts[] = {
        SEED("noauth-ipv4",
             "\x03\x05\x01\x00\x05\x01\x00\x01\x7f\0\0\x01\x1f\x90GET / HTTP/1.1\r\n"),
        SEED("noauth-ipv6",
             "\x07\x05\x01\x00\x05\x01\x00\x04\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\x01\x01\xbb"),
        SEED("noauth-name", "\x0c\x05\x02\x00\x80\x05\x01\x00\x03\013example.org\0\x50x"),
        SEED("userpass-name",
             "\x11\x05\x02\x00\x02\x01\x04user\x04pass\x05\x01\x00\x03\013example.org\x01\xbb"),
        SEED("userpass-empty-ipv4",
             "\x00\x05\x01\x02\x01\x00\x00\x05\x01\x00\x01\x0a\0\0\x01\0\x50"),
        SEED("ovl-bad", "\x09\x05\x01\x00\x05\x01\x00\x03\x09zzzzz.OVL\0\x50"),
        SEED("bind", "\x04\x05\x01\x00\x05\x02\x00\x01\x7f\0\0\x01\0\x50"),
        SEED("udp-associate", "\x04\x05\x01\x00\x05\x03\x00\x01\0\0\0\0\0\0"),
        SEED("bad-atyp", "\x05\x05\x01\x00\x05\x01\x00\x02\x7f\0\0\x01\0\x50"),
        SEED("zero-name", "\x06\x05\x01\x00\x05\x01\x00\x03\x00\x00\x50"),
        SEED("no-method", "\x01\x05\x02\x01\x03"),
        SEED("auth-version", "\x02\x05\x01\x02\x05\x04user\x04pass"),
        SEED("socks4", "\x02\x04\x01\x00\x50\x7f\0\0\x01user\0"),
        SEED("http", "\x05GET / HTTP/1.1\r\nHost: example.org\r\n\r\n"),
    };
#undef SEED
    static const char head[] = "\x08\x05\x01\x02\x01\x01u\x01p\x05\x01\x00\x03\x38";
    static struct fuzz_seed s;
    uint8_t pk[32];
    char id[OVL_NODE_ID_LEN + 1];

    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++)
        fuzz_write_seed(dir, texts[i].name, texts[i].text, texts[i].len);
    /* A request for "<node id>.ovl" with credentials. */
    fuzz_key(pk, "socks5 node", 0);
    node_id_format(id, pk);
    seed_put(&s, head, sizeof(head) - 1);
    seed_put(&s, id, OVL_NODE_ID_LEN);
    seed_put(&s, ".ovl\x01\xbb", 6);
    fuzz_write_seed(dir, "userpass-ovl", s.buf, s.len);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_init();
    fuzz_seeds(seeds);
    return 0;
}

/* What one way of feeding the input did. */
struct run {
    int res;
    size_t used;
    uint8_t sent[SENT_MAX];
    size_t sent_len;
    struct socks5 s;
};

static void sent_add(struct run *r, const uint8_t *p, size_t n)
{
    FUZZ_ASSERT(r->sent_len + n <= SENT_MAX);
    memcpy(r->sent + r->sent_len, p, n);
    r->sent_len += n;
}

/* Check what a failure sends before the close. */
static void check_failure(const struct socks5 *s, int res)
{
    uint8_t want[SOCKS5_REPLY_LEN];

    FUZZ_ASSERT(res == OVL_EPROTO || res == OVL_EUNSUPP);
    FUZZ_ASSERT(s->rep <= SOCKS5_REP_ATYP_UNSUPP && s->rep != SOCKS5_REP_OK);
    if (s->out_len == SOCKS5_REPLY_LEN) {
        FUZZ_ASSERT(socks5_reply(want, sizeof(want), s->rep, NULL, 0) == SOCKS5_REPLY_LEN);
        FUZZ_ASSERT(memcmp(s->out, want, sizeof(want)) == 0);
        return;
    }
    FUZZ_ASSERT(s->rep == SOCKS5_REP_FAIL);
    FUZZ_ASSERT(s->out_len == 0 || (s->out_len == 2 && ((s->out[0] == 5 && s->out[1] == 0xff) ||
                                                        (s->out[0] == 1 && s->out[1] == 1))));
}

/* Feed p[0..n): first bytes available at once, then step more each time
 * the parser waits (0: all the rest). */
static void drive(struct run *r, const uint8_t *p, size_t n, size_t first, size_t step)
{
    size_t avail = first < n ? first : n, used;

    socks5_init(&r->s);
    r->used = r->sent_len = 0;
    for (;;) {
        r->res = socks5_feed(&r->s, p + r->used, avail - r->used, &used);
        FUZZ_ASSERT(used <= avail - r->used);
        r->used += used;
        if (r->res == SOCKS5_SEND) {
            FUZZ_ASSERT(r->s.out_len == 2 && used > 0);
            sent_add(r, r->s.out, 2);
            continue;
        }
        if (r->res != SOCKS5_MORE)
            break;
        FUZZ_ASSERT(r->used == avail && r->s.out_len == 0);
        if (avail == n)
            return;
        avail = step && n - avail > step ? avail + step : n;
    }
    if (r->res < 0) {
        check_failure(&r->s, r->res);
        sent_add(r, r->s.out, r->s.out_len);
    } else {
        FUZZ_ASSERT(r->res == SOCKS5_READY && r->s.out_len == 0);
    }
}

/* A finished parser gives the same answer, uses nothing, keeps out. */
static void check_final(struct run *r, const uint8_t *p, size_t n)
{
    struct socks5 before = r->s;
    size_t used = 1;

    if (r->res == SOCKS5_MORE)
        return;
    FUZZ_ASSERT(socks5_feed(&r->s, p, n, &used) == r->res && used == 0);
    FUZZ_ASSERT(memcmp(&before, &r->s, sizeof(before)) == 0);
}

/* The name's .ovl verdict agrees with its text. */
static void check_ovl(const char *host)
{
    uint8_t id[32], zero[32] = {0};
    char text[OVL_NODE_ID_LEN + 1];
    size_t n = strlen(host);
    int rc = socks5_is_ovl_name(host, id);

    if (rc != 1) {
        FUZZ_ASSERT(rc == 0 || rc == OVL_EINVAL);
        FUZZ_ASSERT(memcmp(id, zero, 32) == 0);
        return;
    }
    FUZZ_ASSERT(n == OVL_NODE_ID_LEN + 4 || n == OVL_NODE_ID_LEN + 5);
    node_id_format(text, id);
    for (size_t i = 0; i < OVL_NODE_ID_LEN; i++) {
        char c = host[i];
        FUZZ_ASSERT(text[i] == ((c >= 'A' && c <= 'Z') ? c + 32 : c));
    }
}

/* A ready request holds what stands in the input before the unused bytes. */
static void check_ready(const struct run *r, const uint8_t *p)
{
    const struct socks5_req *q = &r->s.req;
    const uint8_t *end = p + r->used; /* just after the port */
    size_t alen = q->atyp == SOCKS5_ATYP_IPV4 ? 4 : q->atyp == SOCKS5_ATYP_IPV6 ? 16 : 0;

    FUZZ_ASSERT(q->port == ld_be16(end - 2));
    if (alen) {
        FUZZ_ASSERT(memcmp(q->addr, end - 2 - alen, alen) == 0 && q->host[0] == '\0');
        FUZZ_ASSERT(*(end - 3 - alen) == q->atyp);
    } else {
        size_t hl = strlen(q->host);
        FUZZ_ASSERT(q->atyp == SOCKS5_ATYP_NAME && hl >= 1);
        FUZZ_ASSERT(*(end - 3 - hl) == hl && *(end - 4 - hl) == q->atyp);
        FUZZ_ASSERT(memcmp(q->host, end - 2 - hl, hl) == 0);
        check_ovl(q->host);
    }
    FUZZ_ASSERT(q->user[q->user_len] == 0 && q->pass[q->pass_len] == 0);
    if (q->method == SOCKS5_METHOD_USERPASS)
        FUZZ_ASSERT(r->sent_len == 4 && memcmp(r->sent, "\x05\x02\x01\x00", 4) == 0);
    else
        FUZZ_ASSERT(q->method == SOCKS5_METHOD_NONE && r->sent_len == 2 &&
                    memcmp(r->sent, "\x05\x00", 2) == 0 && q->user_len == 0 && q->pass_len == 0);
}

static void same_run(const struct run *a, const struct run *b)
{
    FUZZ_ASSERT(a->res == b->res && a->used == b->used && a->sent_len == b->sent_len);
    FUZZ_ASSERT(memcmp(a->sent, b->sent, a->sent_len) == 0);
    FUZZ_ASSERT(memcmp(&a->s, &b->s, sizeof(a->s)) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct run whole, split, bytes;
    struct fuzz_in in = {data, size};
    size_t cut, n;
    const uint8_t *p;
    uint8_t *copy;

    fuzz_begin();
    cut = fz_u8(&in);
    n = fz_take(&in, &p, size);
    copy = malloc(n ? n : 1); /* exact size: ASan sees any read past the input */
    if (!copy)
        return 0;
    memcpy(copy, p, n);
    drive(&whole, copy, n, n, 0);
    drive(&split, copy, n, cut % (n + 1), 0);
    drive(&bytes, copy, n, 0, 1);
    same_run(&whole, &split);
    same_run(&whole, &bytes);
    if (whole.res == SOCKS5_READY)
        check_ready(&whole, copy);
    check_final(&whole, copy + whole.used, n - whole.used);
    free(copy);
    return 0;
}
