/* tp_quic_lane.c - the bytes of a QUIC connection's streams: what we send
 * on each (blocks kept until acknowledged, since ngtcp2 retransmits from
 * them), what we received and did not hand over yet, and which stream a
 * frame takes. Slot 0 is the link's bidirectional stream; the others are
 * lanes (docs/PROTOCOL.md 4.1). Built on tp_quic.c; the owner sees one
 * queue and one flow of frames whatever the streams.
 */
#include <stdlib.h>
#include <string.h>

#include "core/cell.h"
#include "core/tp_quic_int.h"
#include "lib/bytes.h"

/* ---- sending ----------------------------------------------------------- */

/* Append n bytes at the end of stream s; blocks never move once written
 * because ngtcp2 keeps pointers into them until they are acknowledged. */
static int quic_append(struct quic_conn *c, struct quic_tx *s, const uint8_t *p, size_t n)
{
    while (n > 0) {
        struct quic_blk *b = s->tail;
        size_t room;

        if (!b || b->len == QUIC_BLK) {
            struct quic_blk *nb = c->spare ? c->spare : malloc(sizeof(*nb));

            if (!nb)
                return OVL_ENOMEM;
            if (c->spare) {
                c->spare = nb->next;
                c->nspare--;
            }
            nb->next = NULL;
            nb->len = 0;
            if (b)
                b->next = nb;
            else
                s->head = nb;
            if (!s->sblk || (s->sblk == b && s->spos == QUIC_BLK)) {
                s->sblk = nb;
                s->spos = 0;
            }
            s->tail = b = nb;
        }
        room = QUIC_BLK - b->len;
        if (room > n)
            room = n;
        memcpy(b->data + b->len, p, room);
        b->len += room;
        s->end += room;
        c->end += room;
        p += room;
        n -= room;
    }
    return 0;
}

/* The stream a frame of len bytes takes: slot 0, unless lanes are open
 * and it is the cell of a chain; then the lane of its chain ID, the same
 * for every cell of the chain, so that a chain's cells stay in order. */
static unsigned quic_lane_of(const struct quic_conn *c, const uint8_t *frame, size_t len)
{
    const uint8_t *cell = frame_bound_cell(frame, len);
    uint32_t id;

    if (c->lanes == 0 || !cell || (id = ld_be32(cell)) == 0)
        return 0;
    return 1 + (unsigned)(((uint64_t)(id * 0x9e3779b1u) * c->lanes) >> 32);
}

int quic_queue_frame(struct quic_conn *c, const uint8_t *frame, size_t len)
{
    struct quic_tx *s = &c->tx[quic_lane_of(c, frame, len)];
    uint8_t hdr[OVL_FRAME_LENHDR];

    /* Cannot fail: quic_lanes counted what the peer allows. Were it to,
     * no other stream would keep the chain's order: the link closes. */
    if (s->sid < 0 && s != &c->tx[0] && ngtcp2_conn_open_uni_stream(c->qc, &s->sid, NULL) != 0)
        return OVL_EPROTO;
    if (s->acked == s->end)
        s->busy_from = s->end;
    st_be16(hdr, (uint16_t)len);
    if (quic_append(c, s, hdr, sizeof(hdr)) != 0 || quic_append(c, s, frame, len) != 0)
        return OVL_ENOMEM;
    return 0;
}

size_t quic_unsent(const struct quic_tx *s, ngtcp2_vec v[2])
{
    const struct quic_blk *b = s->sblk;
    size_t cnt = 0, pos = s->spos;

    while (b && cnt < 2) {
        if (b->len > pos) {
            v[cnt].base = (uint8_t *)b->data + pos;
            v[cnt].len = b->len - pos;
            cnt++;
        }
        b = b->next;
        pos = 0;
    }
    return cnt;
}

void quic_advance(struct quic_conn *c, struct quic_tx *s, size_t n)
{
    s->sent += n;
    c->sent += n;
    while (n > 0 && s->sblk) {
        size_t left = s->sblk->len - s->spos;

        if (n < left) {
            s->spos += n;
            return;
        }
        n -= left;
        s->spos += left;
        if (s->sblk->next) {
            s->sblk = s->sblk->next;
            s->spos = 0;
        }
    }
}

int64_t quic_next_stream(struct quic_conn *c, unsigned skip, unsigned *slot, ngtcp2_vec v[2],
                         size_t *cnt)
{
    for (unsigned i = 0; i < QUIC_STREAMS; i++) {
        unsigned k = (c->rr + i) % QUIC_STREAMS;
        struct quic_tx *s = &c->tx[k];

        if (s->sid < 0 || (skip & (1u << k)) || s->sent == s->end)
            continue;
        *slot = k;
        *cnt = quic_unsent(s, v);
        return s->sid;
    }
    *cnt = 0;
    *slot = 0;
    if (c->tx[0].sid >= 0 && !(c->base.flags & (QUIC_F_ANNOUNCED | TP_F_INBOUND)) && !(skip & 1))
        return c->tx[0].sid; /* the dialer announces its stream with an empty frame */
    return -1;
}

static void quic_blk_free_list(struct quic_blk *b)
{
    while (b) {
        struct quic_blk *nb = b->next;

        free(b);
        b = nb;
    }
}

/* Free s's blocks; only once all was acknowledged (or c is freed). */
static void quic_tx_free(struct quic_tx *s)
{
    quic_blk_free_list(s->head);
    s->head = s->tail = s->sblk = NULL;
    s->spos = 0;
    s->head_off = s->end;
}

void quic_free_blocks(struct quic_conn *c, bool all)
{
    for (unsigned i = 0; i < QUIC_STREAMS; i++)
        if (all || c->tx[i].acked == c->tx[i].end)
            quic_tx_free(&c->tx[i]);
    if (all || c->acked == c->end) {
        quic_blk_free_list(c->spare);
        c->spare = NULL;
        c->nspare = 0;
    }
}

static struct quic_tx *quic_tx_of(struct quic_conn *c, int64_t sid)
{
    for (unsigned i = 0; i < QUIC_STREAMS; i++)
        if (c->tx[i].sid == sid && sid >= 0)
            return &c->tx[i];
    return NULL;
}

/* The peer acknowledged everything of stream sid below off: release
 * whole blocks. A few stay as spares while bytes are in flight: freeing
 * and allocating 16 KiB blocks at the top of the heap made glibc shrink
 * and grow it (brk, a TLB flush, page faults) several times per window.
 * Once all is acknowledged, the spares go; and when what a stream queued
 * since its queue was last empty is a few frames (a heartbeat, a round
 * trip: not a burst), its blocks go, as TCP gives back the buffer of a
 * small write, so that a quiet link holds none. A burst's blocks stay for
 * the next one until such an exchange or tp_trim(). */
void quic_acked(struct quic_conn *c, int64_t sid, uint64_t off)
{
    struct quic_tx *s = quic_tx_of(c, sid);

    if (!s || off <= s->acked)
        return;
    c->acked += off - s->acked;
    s->acked = off;
    while (s->head && s->head->len == QUIC_BLK && s->head_off + QUIC_BLK <= off &&
           s->head != s->sblk) {
        struct quic_blk *b = s->head;

        s->head = b->next;
        s->head_off += QUIC_BLK;
        if (!s->head)
            s->tail = NULL;
        if (c->nspare < QUIC_SPARES) {
            b->next = c->spare;
            c->spare = b;
            c->nspare++;
        } else {
            free(b);
        }
    }
    if (s->acked == s->end && s->end - s->busy_from <= QUIC_SMALL)
        quic_tx_free(s);
    if (c->acked == c->end) {
        quic_blk_free_list(c->spare);
        c->spare = NULL;
        c->nspare = 0;
    }
}

/* ---- receiving --------------------------------------------------------- */

/* The low bits of the peer's unidirectional streams' IDs (RFC 9000 2.1):
 * a dialer's are 2, a listener's 3. */
static int64_t quic_peer_uni(const struct quic_conn *c)
{
    return tp_is_inbound(&c->base) ? 2 : 3;
}

/* The lanes a peer may open. */
static unsigned quic_lanes_max(const struct quic_conn *c)
{
    unsigned n = c->base.env->quic_lanes_max;

    return n && n < QUIC_LANES ? n : QUIC_LANES;
}

/* The ID of the peer's lane in receive slot k >= 1. */
static int64_t quic_in_sid(const struct quic_conn *c, unsigned k)
{
    return (int64_t)(k - 1) << 2 | quic_peer_uni(c);
}

/* The receive slot of stream sid, or NULL when sid is no stream of ours:
 * slot 0 the link's stream, slot 1 + k the peer's lane of ordinal k. */
static struct quic_in *quic_in_of(struct quic_conn *c, int64_t sid)
{
    if (sid == c->tx[0].sid)
        return &c->in[0];
    if ((sid & 3) == quic_peer_uni(c) && (sid >> 2) < (int64_t)quic_lanes_max(c))
        return &c->in[1 + (sid >> 2)];
    return NULL;
}

int quic_stream_opened(struct quic_conn *c, int64_t sid)
{
    if ((sid & 3) != quic_peer_uni(c) || quic_in_of(c, sid))
        return 0; /* bidirectional ones past stream 0 ngtcp2 refuses itself */
    log_info(c->base.env->log, "quic: peer opened stream %lld, past its %u lanes", (long long)sid,
             quic_lanes_max(c));
    c->base.flags |= QUIC_F_BAD_STREAM;
    return NGTCP2_ERR_CALLBACK_FAILURE;
}

void quic_lanes(struct transport *t)
{
    struct quic_conn *c = quic_of(t);
    uint64_t left;

    if (!c->qc || (t->flags & QUIC_F_LANES))
        return;
    left = ngtcp2_conn_get_streams_uni_left(c->qc);
    c->lanes = left < QUIC_LANES ? (unsigned)left : QUIC_LANES;
    t->flags |= QUIC_F_LANES;
    quic_kick(c); /* what the peer's lanes brought meanwhile, from the loop */
}

int quic_in_put(struct quic_conn *c, int64_t sid, const uint8_t *data, size_t len)
{
    struct quic_in *s = quic_in_of(c, sid);

    if (!s)
        return 0;
    c->rx_data = true;
    c->lanes_in |= 1u << (s - c->in);
    if (s->len + len > s->cap) {
        size_t cap = s->cap ? s->cap : 2048; /* a largest frame fits */
        uint8_t *nb;

        while (cap < s->len + len)
            cap *= 2;
        /* Flow control keeps an honest peer under the window. */
        if (cap > QUIC_MAX_WIN + QUIC_WIRE_MAX)
            return NGTCP2_ERR_CALLBACK_FAILURE;
        nb = realloc(s->buf, cap);
        if (!nb)
            return NGTCP2_ERR_CALLBACK_FAILURE;
        s->buf = nb;
        s->cap = cap;
    }
    if (len)
        memcpy(s->buf + s->len, data, len);
    s->len += len;
    return 0;
}

static void quic_in_drop(struct quic_in *s)
{
    free(s->buf);
    s->buf = NULL;
    s->cap = 0;
}

void quic_in_free(struct quic_conn *c, bool all)
{
    for (unsigned i = 0; i < QUIC_STREAMS; i++)
        if (all || c->in[i].len == 0)
            quic_in_drop(&c->in[i]);
}

/* Hand every complete frame of stream sid (slot s) to the owner; credit
 * what was consumed. A pause stops the batch: the rest waits uncredited,
 * so the peer's window closes behind it, until quic_resume() kicks the
 * next run. False once c is closing. */
static bool quic_in_deliver(struct quic_conn *c, struct quic_in *s, int64_t sid)
{
    size_t used;
    int err = tp_deframe(&c->base, s->buf, s->len, TP_F_PAUSED, &used);

    if (err) {
        quic_conn_shutdown(c, err, false);
        return false;
    }
    if (tp_is_closing(&c->base))
        return false;
    if (used == 0)
        return true;
    memmove(s->buf, s->buf + used, s->len - used);
    s->len -= used;
    /* A few frames (a heartbeat, a round trip) leave no buffer behind, as
     * TCP's buffer of a partial frame goes once a read ends on a frame's
     * end; a burst's stays for the next one, until tp_trim. */
    if (s->len == 0 && s->cap <= QUIC_SMALL)
        quic_in_drop(s);
    if (ngtcp2_conn_extend_max_stream_offset(c->qc, sid, used) != 0) {
        quic_conn_shutdown(c, OVL_EPROTO, false);
        return false;
    }
    ngtcp2_conn_extend_max_offset(c->qc, used);
    return true;
}

/* Stream 0 first (what came before tp_lanes), then each lane, from a
 * different one each run, so that a pause that keeps falling in one lane's
 * batch does not starve the others. */
void quic_deliver(struct quic_conn *c)
{
    if (c->in[0].len && !quic_in_deliver(c, &c->in[0], c->tx[0].sid))
        return;
    if (!(c->base.flags & QUIC_F_LANES))
        return;
    for (unsigned i = 0; i < QUIC_LANES && !(c->base.flags & TP_F_PAUSED); i++) {
        unsigned k = 1 + (c->rr_in + i) % QUIC_LANES;

        if (c->in[k].len && !quic_in_deliver(c, &c->in[k], quic_in_sid(c, k)))
            return;
    }
    c->rr_in = (c->rr_in + 1) % QUIC_LANES;
}
