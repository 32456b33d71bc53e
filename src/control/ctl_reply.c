/* ctl_reply.c - what every command uses to build its reply: the error
 * text, fixed-size strings, node IDs and ages. The bottom of the control
 * layer: the server and the commands build on it. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "control/ctl_int.h"

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
    char tmp[OVL_URI_MAX + 1];
    size_t len = strnlen(s, max < OVL_URI_MAX ? max : OVL_URI_MAX);

    memcpy(tmp, s, len);
    tmp[len] = '\0';
    kv_adds(out, key, tmp);
}

/* Add key=ID for the public key pk. */
void ctl_add_id(struct kvbuf *out, const char *key, const uint8_t pk[OVL_ED25519_PK])
{
    char id[OVL_NODE_ID_LEN + 1];

    node_id_format(id, pk);
    kv_adds(out, key, id);
}

/* Milliseconds from then to now, 0 if then is unset or later. */
uint64_t ctl_since(uint64_t now, uint64_t then)
{
    return then && now >= then ? now - then : 0;
}

/* Add PREFIX + NAME for each name of names with the value at offs[i] in
 * base; see ctl_int.h. */
void ctl_add_stats(struct kvbuf *out, const char *prefix, const char *names, const uint16_t *offs,
                   const void *base)
{
    char key[KV_KEY_MAX + 1];

    for (; *names; names += strlen(names) + 1, offs++) {
        const uint8_t *f = (const uint8_t *)base + (*offs & ~CTL_U32);
        uint32_t v32;
        uint64_t v;

        if (*offs & CTL_U32) {
            memcpy(&v32, f, sizeof v32);
            v = v32;
        } else {
            memcpy(&v, f, sizeof v);
        }
        snprintf(key, sizeof key, "%s%s", prefix, names);
        kv_addu(out, key, v);
    }
}
