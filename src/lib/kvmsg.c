/* kvmsg.c - "key=value\n" lines ended by a blank line: parser and builder.
 *
 * The parser is strict on purpose (no "\r\n", no blank line inside a
 * message, no control characters) because it reads input from any local
 * user allowed on the control socket.
 */
#include "lib/kvmsg.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KV_PAIRS_MIN 8
#define KV_BUF_MIN   256

/* Return the length of the first complete message in buf, 0 if incomplete. */
size_t kv_message_len(const char *buf, size_t len)
{
    if (!buf || len == 0)
        return 0;
    if (buf[0] == '\n')
        return 1; /* the empty message */
    for (size_t i = 1; i < len; i++) {
        if (buf[i] == '\n' && buf[i - 1] == '\n')
            return i + 1;
    }
    return 0;
}

static bool key_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
}

static bool valid_key(const char *k, size_t len)
{
    if (len == 0 || len > KV_KEY_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        if (!key_char(k[i]))
            return false;
    }
    return true;
}

static bool valid_value(const char *v, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)v[i];
        if (c < 0x20 || c == 0x7f)
            return false;
    }
    return true;
}

static int pairs_push(struct kvmsg *m, const char *key, const char *value, size_t max_pairs)
{
    if (m->n >= max_pairs)
        return OVL_ETOOBIG;
    if (m->n == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : KV_PAIRS_MIN;
        if (cap > max_pairs)
            cap = max_pairs;
        struct kv_pair *p = realloc(m->pairs, cap * sizeof(*p));
        if (!p)
            return OVL_ENOMEM;
        m->pairs = p;
        m->cap = cap;
    }
    m->pairs[m->n].key = key;
    m->pairs[m->n].value = value;
    m->n++;
    return 0;
}

/* Check one line [line, nl) and record it; the buffer is not touched yet. */
static int parse_line(struct kvmsg *m, const char *line, const char *nl, size_t max_pairs)
{
    size_t llen = (size_t)(nl - line);
    if (llen + 1 > KV_LINE_MAX)
        return OVL_EINVAL;
    const char *eq = memchr(line, '=', llen);
    if (!eq)
        return OVL_EINVAL;
    if (!valid_key(line, (size_t)(eq - line)) || !valid_value(eq + 1, (size_t)(nl - eq - 1)))
        return OVL_EINVAL;
    return pairs_push(m, line, eq + 1, max_pairs);
}

/* Parse one complete message of len bytes in buf, in place. */
int kvmsg_parse(struct kvmsg *m, char *buf, size_t len, size_t max_pairs)
{
    if (!m)
        return OVL_EINVAL;
    memset(m, 0, sizeof(*m));
    if (!buf || len == 0)
        return OVL_EINVAL;
    size_t pos = 0;
    int rc = OVL_EINVAL; /* stays so if no blank line ends the message */
    while (pos < len) {
        const char *nl = memchr(buf + pos, '\n', len - pos);
        if (!nl)
            break;
        if (nl == buf + pos) {
            /* The blank line must be the last thing in the message. */
            rc = (pos + 1 == len) ? 0 : OVL_EINVAL;
            break;
        }
        rc = parse_line(m, buf + pos, nl, max_pairs);
        if (rc != 0)
            break;
        pos = (size_t)(nl - buf) + 1;
        rc = OVL_EINVAL;
    }
    if (rc != 0) {
        kvmsg_free(m);
        return rc;
    }
    /* Only now that everything is valid, cut the lines into C strings. */
    for (size_t i = 0; i < m->n; i++) {
        char *value = buf + (m->pairs[i].value - buf);
        char *nl = memchr(value, '\n', len - (size_t)(value - buf));
        value[-1] = '\0';
        *nl = '\0';
    }
    return 0;
}

/* Return the value of the first pair named key, or NULL. */
const char *kvmsg_get(const struct kvmsg *m, const char *key)
{
    if (!m || !key)
        return NULL;
    for (size_t i = 0; i < m->n; i++) {
        if (strcmp(m->pairs[i].key, key) == 0)
            return m->pairs[i].value;
    }
    return NULL;
}

/* Release the pair array of m (NULL-safe); m becomes empty. */
void kvmsg_free(struct kvmsg *m)
{
    if (!m)
        return;
    free(m->pairs);
    memset(m, 0, sizeof(*m));
}

/* Make room for extra bytes plus a NUL; sets the sticky error on failure. */
static bool kvbuf_reserve(struct kvbuf *b, size_t extra)
{
    if (b->err)
        return false;
    if (extra > SIZE_MAX - b->len - 1) {
        b->err = OVL_ENOMEM;
        return false;
    }
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return true;
    size_t cap = b->cap ? b->cap : KV_BUF_MIN;
    while (cap < need) {
        if (cap > SIZE_MAX / 2) {
            cap = need;
            break;
        }
        cap *= 2;
    }
    char *p = realloc(b->data, cap);
    if (!p) {
        b->err = OVL_ENOMEM;
        return false;
    }
    b->data = p;
    b->cap = cap;
    return true;
}

/* Start a line "key=": returns false (with b->err set) if it cannot. */
static bool line_begin(struct kvbuf *b, const char *key, size_t *klen)
{
    if (b->err)
        return false;
    *klen = key ? strlen(key) : 0;
    if (!key || !valid_key(key, *klen)) {
        b->err = OVL_EINVAL;
        return false;
    }
    return true;
}

/* Append "key=value\n" for the vlen bytes of value, each control
 * character as '?', or, when strict, refused (OVL_EINVAL) like a line
 * over KV_LINE_MAX. The one writer of lines: kv_addf and kv_adds. */
static void kv_line(struct kvbuf *b, const char *key, const char *value, size_t vlen, bool strict)
{
    size_t klen;
    if (!b || !line_begin(b, key, &klen))
        return;
    if (klen + 1 + vlen + 1 > KV_LINE_MAX || (strict && !valid_value(value, vlen))) {
        b->err = OVL_EINVAL;
        return;
    }
    if (!kvbuf_reserve(b, klen + 1 + vlen + 1))
        return;
    char *line = b->data + b->len;
    memcpy(line, key, klen);
    line[klen] = '=';
    for (size_t i = 0; i < vlen; i++) {
        unsigned char c = (unsigned char)value[i];
        line[klen + 1 + i] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
    }
    line[klen + 1 + vlen] = '\n';
    b->len += klen + 1 + vlen + 1;
    b->data[b->len] = '\0';
}

/* Append "key=value\n" with value printed by fmt. */
void kv_addf(struct kvbuf *b, const char *key, const char *fmt, ...)
{
    char v[KV_LINE_MAX];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(v, sizeof(v), fmt, ap);
    va_end(ap);
    /* A value that does not fit is KV_LINE_MAX bytes: too long for a line. */
    kv_line(b, key, v, n < 0 || n >= KV_LINE_MAX ? KV_LINE_MAX : (size_t)n, true);
}

/* Append "key=value\n" with a string value (control characters become '?'). */
void kv_adds(struct kvbuf *b, const char *key, const char *value)
{
    kv_addn(b, key, value, KV_LINE_MAX);
}

/* kv_adds of at most max bytes of value. */
void kv_addn(struct kvbuf *b, const char *key, const char *value, size_t max)
{
    value = value ? value : "";
    kv_line(b, key, value, strnlen(value, max), false);
}

/* Append "key=N\n". */
void kv_addu(struct kvbuf *b, const char *key, uint64_t v)
{
    kv_addf(b, key, "%" PRIu64, v);
}

/* Append the terminating blank line. */
void kv_end(struct kvbuf *b)
{
    kv_raw(b, "\n", 1);
}

void kv_raw(struct kvbuf *b, const void *p, size_t n)
{
    if (!b || !kvbuf_reserve(b, n))
        return;
    memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
}

/* Release b's storage (NULL-safe). */
void kvbuf_free(struct kvbuf *b)
{
    if (!b)
        return;
    free(b->data);
    memset(b, 0, sizeof(*b));
}
