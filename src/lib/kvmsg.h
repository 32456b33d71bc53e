/* kvmsg.h - the control protocol's message codec (see docs/CONTROL.md).
 *
 * A message is a sequence of "key=value\n" lines ended by an empty line.
 * Keys are [a-z0-9_-]{1,63}; values are printable ASCII or UTF-8 without
 * control characters, up to KV_LINE_MAX bytes per line. The same codec reads
 * requests in ovld and replies in ovlctl; only the caps differ.
 */
#ifndef OVL_LIB_KVMSG_H
#define OVL_LIB_KVMSG_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/err.h"

#define KV_LINE_MAX 1024 /* bytes per line, newline included */
#define KV_KEY_MAX  63

struct kv_pair {
    const char *key;   /* points into the parsed buffer */
    const char *value; /* points into the parsed buffer; "" if empty */
};

/* A parsed message. pairs is owned by the message: free with kvmsg_free. */
struct kvmsg {
    struct kv_pair *pairs;
    size_t n;
    size_t cap;
};

/* Return the length of the first complete message in buf (through the blank
 * line), 0 if more bytes are needed. */
size_t kv_message_len(const char *buf, size_t len);

/* Parse one complete message of len bytes in buf (as measured by
 * kv_message_len), in place: newlines and '=' become NULs, so buf must stay
 * alive while m is used. Caps the number of pairs at max_pairs (OVL_ETOOBIG).
 * OVL_EINVAL on a line without '=', a bad key or value, or an overlong line.
 * On failure m is left empty. */
int kvmsg_parse(struct kvmsg *m, char *buf, size_t len, size_t max_pairs) OVL_WUR;

/* Return the value of the first pair named key, or NULL. */
const char *kvmsg_get(const struct kvmsg *m, const char *key);

/* Release the pair array of m (NULL-safe); m becomes empty. */
void kvmsg_free(struct kvmsg *m);

/* A growing output buffer for building messages; owns data. */
struct kvbuf {
    char *data;
    size_t len;
    size_t cap;
    int err; /* first error seen (sticky): OVL_ENOMEM or OVL_EINVAL */
};

/* Append "key=value\n" with value printed by fmt. Invalid keys or values
 * (newline, control characters, too long) set b->err to OVL_EINVAL. */
void kv_addf(struct kvbuf *b, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Append "key=value\n" with a string value (replaces control characters with '?'). */
void kv_adds(struct kvbuf *b, const char *key, const char *value);

/* kv_adds of at most the first max bytes of value: a fixed array that may
 * lack its NUL. */
void kv_addn(struct kvbuf *b, const char *key, const char *value, size_t max);

/* Append "key=N\n". */
void kv_addu(struct kvbuf *b, const char *key, uint64_t v);

/* Append the terminating blank line. */
void kv_end(struct kvbuf *b);

/* Append n bytes verbatim, after kv_end: a payload the message's own lines
 * announce (send length=N). */
void kv_raw(struct kvbuf *b, const void *p, size_t n);

/* Release b's storage (NULL-safe). */
void kvbuf_free(struct kvbuf *b);

#endif
