/* ctl_reply.c - what every command uses to build its reply: the error
 * text, fixed-size strings, node IDs, ages and received messages. The
 * bottom of the control layer: the server and the commands build on it. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control/ctl_int.h"
#include "lib/encode.h"

/* Set rq's error text and return e (a negative code). */
int ctl_fail(struct ctl_req *rq, int e, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(rq->errbuf, sizeof rq->errbuf, fmt, ap);
    va_end(ap);
    rq->err = rq->errbuf;
    return e;
}

/* Add a string held in a fixed array that may lack its NUL; kv_adds masks
 * any control character in it rather than failing the whole reply. */
void ctl_add_fixed(struct kvbuf *out, const char *key, const char *s, size_t max)
{
    kv_addn(out, key, s, max < OVL_URI_MAX ? max : OVL_URI_MAX);
}

/* Add key=ID for the public key pk, key= for none. */
void ctl_add_id(struct kvbuf *out, const char *key, const uint8_t pk[OVL_ED25519_PK])
{
    char id[OVL_NODE_ID_LEN + 1] = "";

    if (pk)
        node_id_format(id, pk);
    kv_adds(out, key, id);
}

/* Milliseconds from then to now, 0 if then is unset or later. */
uint64_t ctl_since(uint64_t now, uint64_t then)
{
    return then && now >= then ? now - then : 0;
}

/* Add one received message: its header lines, then its base64 in chunks. */
int ctl_add_msg(struct kvbuf *out, size_t index, const struct client_msg *m)
{
    char hex[2 * CLIENT_MSG_ID + 1], to[2 * CLIENT_MSG_ID + 1] = "";
    size_t b64len = sodium_base64_ENCODED_LEN(m->len, CTL_B64), off;
    char *b64 = malloc(b64len);

    if (!b64)
        return -ENOMEM;
    if (enc_hex(hex, sizeof hex, m->id, sizeof m->id) != 0 ||
        (m->has_reply_to && enc_hex(to, sizeof to, m->reply_to, sizeof m->reply_to) != 0)) {
        free(b64);
        return -EIO;
    }
    kv_addu(out, "msg", index);
    kv_adds(out, "id", hex);
    ctl_add_id(out, "from", m->has_from ? m->from : NULL);
    kv_adds(out, "reply_to", to);
    kv_addu(out, "received_ms", m->received_ms);
    kv_addu(out, "len", m->len);
    sodium_bin2base64(b64, b64len, m->data, m->len, CTL_B64);
    /* b64len counts the NUL. */
    for (off = 0; off + 1 < b64len; off += CONTROL_DATA_CHUNK)
        kv_addf(out, "data", "%.*s", CONTROL_DATA_CHUNK, b64 + off);
    free(b64);
    return 0;
}

/* Read the counter at off in base: a uint64_t, or a uint32_t with CTL_U32. */
uint64_t ctl_stat(const void *base, uint16_t off)
{
    const uint8_t *f = (const uint8_t *)base + (off & ~CTL_U32);
    uint32_t v32;
    uint64_t v;

    if (off & CTL_U32) {
        memcpy(&v32, f, sizeof v32);
        return v32;
    }
    memcpy(&v, f, sizeof v);
    return v;
}

/* Add PREFIX + NAME for each name of names with the value at offs[i] in
 * base; see ctl_int.h. */
void ctl_add_stats(struct kvbuf *out, const char *prefix, const char *names, const uint16_t *offs,
                   const void *base)
{
    char key[KV_KEY_MAX + 1];

    for (; *names; names += strlen(names) + 1, offs++) {
        snprintf(key, sizeof key, "%s%s", prefix, names);
        kv_addu(out, key, ctl_stat(base, *offs));
    }
}
