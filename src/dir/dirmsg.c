/* dirmsg.c - fragmenting directory messages into cells, putting them back
 * together, and sending a whole message on a link.
 *
 * Every fragment but the last is full (DIRMSG_FRAG_DATA bytes), so a
 * message's size is bounded by its count from the first fragment on and the
 * receiver can refuse an oversized message before buffering any of it. The
 * buffer still grows only as data arrives, never from the announced count.
 */
#include "dir/dirmsg.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "core/link.h"
#include "lib/bytes.h"

#define DIRMSG_RX_MIN  2048        /* first allocation */
#define DIRMSG_RX_KEEP (16 * 1024) /* larger buffers are not kept between messages */

/* Fill cell c with fragment index of msg for req_id. */
int dirmsg_fragment(struct cell *c, uint8_t cmd, uint32_t req_id, const uint8_t *msg, size_t len,
                    uint16_t index, uint16_t *count)
{
    size_t n, off, chunk;

    if (count)
        *count = 0;
    if (!c || !msg || !count || len == 0)
        return OVL_EINVAL;
    if (len > DIRMSG_MAX_LEN)
        return OVL_ETOOBIG;
    n = (len + DIRMSG_FRAG_DATA - 1) / DIRMSG_FRAG_DATA;
    if (index >= n)
        return OVL_EINVAL;
    off = (size_t)index * DIRMSG_FRAG_DATA;
    chunk = len - off < DIRMSG_FRAG_DATA ? len - off : DIRMSG_FRAG_DATA;

    memset(c, 0, sizeof(*c));
    c->cmd = cmd;
    c->len = (uint16_t)(DIRMSG_FRAG_HDR + chunk);
    st_le32(c->payload, req_id);
    st_le16(c->payload + 4, index);
    st_le16(c->payload + 6, (uint16_t)n);
    memcpy(c->payload + DIRMSG_FRAG_HDR, msg + off, chunk);
    *count = (uint16_t)n;
    return 0;
}

/* Forget the message in progress; a peer that misbehaved loses the buffer. */
static void rx_reset(struct dirmsg_rx *rx, bool drop)
{
    rx->req_id = 0;
    rx->next = rx->count = 0;
    rx->len = 0;
    if (drop) {
        free(rx->buf);
        rx->buf = NULL;
        rx->cap = 0;
    }
}

/* Make room for need bytes, doubling, never past max_len. */
static int rx_reserve(struct dirmsg_rx *rx, size_t need, size_t max_len)
{
    size_t cap = rx->cap ? rx->cap : DIRMSG_RX_MIN;
    uint8_t *p;

    if (need <= rx->cap)
        return 0;
    while (cap < need)
        cap *= 2;
    if (cap > max_len)
        cap = max_len;
    p = realloc(rx->buf, cap);
    if (!p)
        return OVL_ENOMEM;
    rx->buf = p;
    rx->cap = cap;
    return 0;
}

/* Check fragment (idx, cnt, dlen) against the message in progress. */
static int rx_check(const struct dirmsg_rx *rx, uint32_t rid, uint16_t idx, uint16_t cnt,
                    size_t dlen, size_t max_len)
{
    if (cnt == 0 || cnt > DIRMSG_MAX_FRAGS || idx >= cnt || dlen == 0)
        return OVL_EPROTO;
    if (idx + 1 < cnt && dlen != DIRMSG_FRAG_DATA)
        return OVL_EPROTO; /* only the last fragment may be short */
    if (rx->next == 0) {
        if (idx != 0)
            return OVL_EPROTO;
        if ((size_t)(cnt - 1) * DIRMSG_FRAG_DATA + 1 > max_len)
            return OVL_ETOOBIG;
    } else if (rid != rx->req_id || cnt != rx->count || idx != rx->next) {
        return OVL_EPROTO;
    }
    if (dlen > max_len - (rx->next == 0 ? 0 : rx->len))
        return OVL_ETOOBIG;
    return 0;
}

/* Feed one fragment; 1 and the message when it is complete. */
int dirmsg_rx_feed(struct dirmsg_rx *rx, const struct cell *c, size_t max_len, uint32_t *req_id,
                   const uint8_t **msg, size_t *len)
{
    uint32_t rid;
    uint16_t idx, cnt;
    size_t dlen;
    int rc;

    if (req_id)
        *req_id = 0;
    if (msg)
        *msg = NULL;
    if (len)
        *len = 0;
    if (!rx || !c || !req_id || !msg || !len)
        return OVL_EINVAL;
    if (max_len > DIRMSG_MAX_LEN)
        max_len = DIRMSG_MAX_LEN;
    if (c->len < DIRMSG_FRAG_HDR || c->len > OVL_CELL_PAYLOAD || c->chain_id != 0) {
        rx_reset(rx, true);
        return OVL_EPROTO;
    }
    rid = ld_le32(c->payload);
    idx = ld_le16(c->payload + 4);
    cnt = ld_le16(c->payload + 6);
    dlen = (size_t)c->len - DIRMSG_FRAG_HDR;
    *req_id = rid; /* lets the caller answer even a bad request */

    rc = rx_check(rx, rid, idx, cnt, dlen, max_len);
    if (rc != 0) {
        rx_reset(rx, true);
        return rc;
    }
    if (idx == 0) {
        rx_reset(rx, rx->cap > DIRMSG_RX_KEEP);
        rx->req_id = rid;
        rx->count = cnt;
    }
    rc = rx_reserve(rx, rx->len + dlen, max_len);
    if (rc != 0) {
        rx_reset(rx, true);
        return rc;
    }
    memcpy(rx->buf + rx->len, c->payload + DIRMSG_FRAG_HDR, dlen);
    rx->len += dlen;
    rx->next = (uint16_t)(idx + 1);
    if (rx->next < rx->count)
        return 0;
    *msg = rx->buf;
    *len = rx->len;
    rx->next = 0; /* idle again; buf and len stay until the next call */
    return 1;
}

/* Release rx's buffer. */
void dirmsg_rx_free(struct dirmsg_rx *rx)
{
    if (!rx)
        return;
    free(rx->buf);
    memset(rx, 0, sizeof(*rx));
}

/* Send msg as cmd's fragments on l, all of them or none. */
int dirmsg_send(struct link *l, uint8_t cmd, uint32_t req_id, const uint8_t *msg, size_t len)
{
    struct cell c;
    uint16_t count = 0, i;
    int rc;

    rc = dirmsg_fragment(&c, cmd, req_id, msg, len, 0, &count);
    if (rc)
        return rc;
    /* All fragments or none: two messages must never interleave on a link. */
    if (!link_can_send(l, count))
        return OVL_EAGAIN;
    for (i = 0; i < count; i++) {
        if (i > 0) {
            rc = dirmsg_fragment(&c, cmd, req_id, msg, len, i, &count);
            if (rc)
                return rc;
        }
        rc = link_send(l, &c);
        if (rc) {
            if (i > 0) /* the peer would reassemble garbage: give up on the link */
                link_close(l, LC_QUEUE_FULL);
            return rc;
        }
    }
    return 0;
}

/* Advance *last to the next non-zero request ID. */
uint32_t dirmsg_next_id(uint32_t *last)
{
    if (++*last == 0)
        *last = 1;
    return *last;
}
