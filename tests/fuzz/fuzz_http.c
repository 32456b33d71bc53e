/* fuzz_http.c - the head of an HTTP request as the metrics listener reads
 * it (src/control/httpreq.h: httpreq_parse, httpreq_route).
 *
 * Input: cut(1), cap(1), then the bytes a client sends. The cap is
 * HTTPREQ_HEAD_MAX when its byte is 0, else 8 times it (8..2040), so that
 * heads past the cap are common. The bytes are fed three ways, as the
 * listener would with reads of different sizes (the whole buffer so far
 * each time, the same struct): all at once; in two reads cut at cut
 * modulo (length + 1); one byte per read. Each stops at the first answer
 * other than "more".
 *
 * Properties: the three give the same answer and the same fields; an
 * answer is a head length, 0 (more), OVL_ETOOBIG, OVL_EUNSUPP or
 * OVL_EPROTO; "more" only while fewer than cap bytes came and no empty
 * line ended a head; too large only once cap bytes came without one; a
 * head length is at most the bytes given and the cap and ends in LF; a
 * parsed head's method is a token and its target visible ASCII, both
 * inside the head and in the order of the request line; the route is
 * 200, 404 or 405, and 200 only for GET of /metrics.
 */
#include <string.h>

#include "control/httpreq.h"
#include "fuzz.h"

static void seeds(const char *dir)
{
#define SEED(name, text) fuzz_write_seed(dir, name, text, sizeof(text) - 1)
    SEED("get", "\x10\x00GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:9101\r\nAccept-Encoding: "
                "gzip\r\nAccept: text/plain;version=0.0.4\r\n\r\n");
    SEED("get-10-lf", "\x05\x00GET /metrics?x=1 HTTP/1.0\n\n");
    SEED("post-body", "\x20\x00POST /metrics HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc");
    SEED("other-path", "\x00\x00GET /favicon.ico HTTP/1.1\r\nHost: a\r\n\r\n");
    SEED("no-host", "\x07\x00GET /metrics HTTP/1.1\r\nConnection: close\r\n\r\n");
    SEED("version", "\x03\x00GET /metrics HTTP/2.0\r\nHost: a\r\n\r\n");
    SEED("folded", "\x09\x00GET /metrics HTTP/1.1\r\nHost: a\r\n b\r\n\r\n");
    SEED("bare-cr", "\x02\x00GET /metrics HTTP/1.1\rHost: a\r\n\r\n");
    SEED("small-cap",
         "\x01\x04GET /metrics HTTP/1.1\r\nHost: a\r\nX-Long: aaaaaaaaaaaaaaaa\r\n\r\n");
    SEED("tls", "\x01\x00\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03");
#undef SEED
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
    int rc;
    size_t fed; /* bytes given to the call that answered */
    struct httpreq r;
};

/* Feed p[0..n): first bytes at once, then step more each time (0: all). */
static void drive(struct run *run, const uint8_t *p, size_t n, size_t cap, size_t first,
                  size_t step)
{
    size_t avail = first < n ? first : n;

    memset(run, 0, sizeof(*run));
    for (;;) {
        run->rc = httpreq_parse(&run->r, p, avail, cap);
        run->fed = avail;
        if (run->rc != 0 || avail == n)
            return;
        avail = step && n - avail > step ? avail + step : n;
    }
}

static bool tchar(uint8_t c)
{
    return (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* Whether p[0..n) holds the end of a head: LF LF or LF CR LF. */
static bool has_end(const uint8_t *p, size_t n)
{
    for (size_t i = 1; i < n; i++)
        if (p[i] == '\n' && (p[i - 1] == '\n' || (i >= 2 && p[i - 1] == '\r' && p[i - 2] == '\n')))
            return true;
    return false;
}

static void check_head(const struct run *run, const uint8_t *p, size_t cap)
{
    const struct httpreq *r = &run->r;
    int route;

    FUZZ_ASSERT((size_t)run->rc <= run->fed && (size_t)run->rc <= cap);
    FUZZ_ASSERT(p[run->rc - 1] == '\n' && has_end(p, (size_t)run->rc));
    FUZZ_ASSERT(!has_end(p, (size_t)run->rc - 1)); /* the first end, not a later one */
    FUZZ_ASSERT(r->method_len >= 1 && r->method_len <= HTTPREQ_METHOD_MAX);
    for (size_t i = 0; i < r->method_len; i++)
        FUZZ_ASSERT(tchar(p[i]));
    FUZZ_ASSERT(r->target_off == r->method_len + 1 && p[r->method_len] == ' ');
    FUZZ_ASSERT(r->target_len >= 1 && r->target_len <= HTTPREQ_TARGET_MAX);
    FUZZ_ASSERT((size_t)r->target_off + r->target_len < (size_t)run->rc);
    for (size_t i = 0; i < r->target_len; i++)
        FUZZ_ASSERT(p[r->target_off + i] > 0x20 && p[r->target_off + i] < 0x7f);
    FUZZ_ASSERT(r->minor <= 1);
    route = httpreq_route(r, p);
    FUZZ_ASSERT(route == 200 || route == 404 || route == 405);
    if (route == 200)
        FUZZ_ASSERT(r->method_len == 3 && memcmp(p, "GET", 3) == 0 && r->target_len >= 8 &&
                    memcmp(p + r->target_off, "/metrics", 8) == 0);
}

static void same_run(const struct run *a, const struct run *b)
{
    FUZZ_ASSERT(a->rc == b->rc);
    if (a->rc > 0)
        FUZZ_ASSERT(a->r.method_len == b->r.method_len && a->r.target_off == b->r.target_off &&
                    a->r.target_len == b->r.target_len && a->r.minor == b->r.minor);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct run whole, split, bytes;
    struct fuzz_in in = {data, size};
    size_t cut, cap, n;
    const uint8_t *p;
    uint8_t *copy;

    fuzz_begin();
    cut = fz_u8(&in);
    cap = fz_u8(&in);
    cap = cap ? cap * 8 : HTTPREQ_HEAD_MAX;
    n = fz_take(&in, &p, size);
    copy = malloc(n ? n : 1); /* exact size: ASan sees any read past the input */
    if (!copy)
        return 0;
    memcpy(copy, p, n);
    drive(&whole, copy, n, cap, n, 0);
    drive(&split, copy, n, cap, cut % (n + 1), 0);
    drive(&bytes, copy, n, cap, 0, 1);
    same_run(&whole, &split);
    same_run(&whole, &bytes);
    FUZZ_ASSERT(whole.rc >= 0 || whole.rc == OVL_ETOOBIG || whole.rc == OVL_EUNSUPP ||
                whole.rc == OVL_EPROTO);
    if (whole.rc == 0)
        FUZZ_ASSERT(n < cap && !has_end(copy, n));
    if (whole.rc == OVL_ETOOBIG)
        FUZZ_ASSERT(n >= cap && !has_end(copy, cap) && bytes.fed == cap);
    if (whole.rc > 0) {
        FUZZ_ASSERT(bytes.fed == (size_t)whole.rc); /* known at its last byte */
        check_head(&whole, copy, cap);
    }
    free(copy);
    return 0;
}
