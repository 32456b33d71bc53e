/* stream.c - reliable ordered byte streams over lossy frames (stream.h). */
#include <stdlib.h>
#include <string.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "chain/stream.h"
#include "lib/bytes.h"
#include "lib/clock.h"

#define RTO_MIN_MS   500u /* first retransmission: paths are short, losses rare */
#define RTO_MAX_MS   8000u
#define ACK_DELAY_MS 20u    /* an ack waits this long for data to ride on */
#define OPEN_MS      30000u /* the far end must take a stream within this */
#define LINGER_MS    3000u  /* a finished stream still acks resends (our last ack may be lost) */
#define ACK_BYTES    (128u << 10) /* at most this much taken or freed before an ack */

static void stream_arm(struct stream *s);

/* The loop's time, ms: read once per loop turn, so a frame costs no clock
 * read. Round trips are timed with clock_now_us(), once per sample. */
static uint64_t stream_now(const struct stream *s)
{
    return uv_now(s->timer.loop);
}

/* Growth of windows in the process (STREAM_GROWN_MAX): one loop, one count. */
static uint64_t grown_total;

/* Bytes received and not yet read, past the first window of each ring
 * (STREAM_UNREAD_MAX): what readers that stall or lag hold. */
static uint64_t unread_total;

/* What a receive ring holding len bytes counts in unread_total. */
static uint32_t unread_of(uint32_t len)
{
    return len > STREAM_WINDOW ? len - STREAM_WINDOW : 0;
}

#ifdef __GLIBC__
#define TRIM_EVERY_MS 1000u /* malloc_trim walks the heap: at most once a second */
static uint64_t trimmed_at; /* loop time of the last malloc_trim; one loop */
#endif

/* Bytes taken or consumed that call for an ack at once: a quarter window,
 * at most ACK_BYTES, so a large window still gets acks (and round trip
 * samples) often enough for its sender to keep its pipe full. */
static uint32_t ack_every(const struct stream *s)
{
    return s->rcv.cap / 4 < ACK_BYTES ? s->rcv.cap / 4 : ACK_BYTES;
}

/* ---- rings ---- */

static bool ring_alloc(struct stream_ring *r)
{
    if (!r->buf)
        r->buf = malloc(r->cap);
    return r->buf != NULL;
}

/* Drop n bytes from the front; an empty ring gives its memory back. */
static void ring_drop(struct stream_ring *r, uint32_t n)
{
    r->base += n;
    r->len -= n;
    if (r->len == 0) {
        free(r->buf);
        r->buf = NULL;
    }
}

/* Copy n bytes from stream offset off (held by r) to out. */
static void ring_copy(const struct stream_ring *r, uint64_t off, uint8_t *out, size_t n)
{
    size_t at = (size_t)(off & (r->cap - 1u)), first = r->cap - at;

    if (first > n)
        first = n;
    memcpy(out, r->buf + at, first);
    memcpy(out + first, r->buf, n - first);
}

/* Append n bytes at the end of r (the caller checked the room). */
static void ring_put(struct stream_ring *r, const uint8_t *p, size_t n)
{
    size_t at = (size_t)((r->base + r->len) & (r->cap - 1u)), first = r->cap - at;

    if (first > n)
        first = n;
    memcpy(r->buf + at, p, first);
    memcpy(r->buf, p + first, n - first);
    r->len += (uint32_t)n;
}

/* Make r cap bytes (a larger power of two), its bytes where the new size
 * puts their offsets. False when there is no memory (r unchanged). */
static bool ring_resize(struct stream_ring *r, uint32_t cap)
{
    uint8_t *nb;
    size_t at, first;

    if (!r->buf) {
        r->cap = cap;
        return true;
    }
    nb = malloc(cap);
    if (!nb)
        return false;
    at = (size_t)(r->base & (cap - 1u));
    first = cap - at < r->len ? cap - at : r->len;
    ring_copy(r, r->base, nb + at, first);
    ring_copy(r, r->base + first, nb, r->len - first);
    free(r->buf);
    r->buf = nb;
    r->cap = cap;
    return true;
}

/* Grow ring r of s to want bytes (a power of two, at most
 * STREAM_WINDOW_RTT_MAX) if the pool and the process have room for the
 * growth; the growth is charged to both. */
static void stream_grow(struct stream *s, struct stream_ring *r, uint32_t want)
{
    uint32_t more = want - r->cap;

    if (want <= r->cap || want > STREAM_WINDOW_RTT_MAX || grown_total + more > STREAM_GROWN_MAX ||
        (r == &s->rcv && unread_total > STREAM_UNREAD_MAX) ||
        (s->pool && s->pool->grown + more > STREAM_POOL_GROWN) || !ring_resize(r, want))
        return;
    grown_total += more;
    if (s->pool)
        s->pool->grown += more;
}

/* Give back growth of ring r of s: make it cap bytes (a smaller power of
 * two, at least STREAM_WINDOW, that holds what r holds); the pool and the
 * process get the difference back. Without memory for the copy r stays. */
static void stream_shrink(struct stream *s, struct stream_ring *r, uint32_t cap)
{
    uint32_t less = r->cap - cap;

    if (cap >= r->cap || cap < STREAM_WINDOW || r->len > cap || !ring_resize(r, cap))
        return;
    grown_total -= less;
    if (s->pool)
        s->pool->grown -= less;
#ifdef __GLIBC__
    /* glibc keeps the freed ring in its heap (its mmap threshold rose when
     * a grown ring was freed): hand the free pages back. A stream shrinks
     * once per stall, but a peer whose reader stalls and resumes over and
     * over must not make every ack walk the heap: once a second at most
     * (what a later shrink frees waits for the next). */
    uint64_t now = stream_now(s);

    if (!trimmed_at || now - trimmed_at >= TRIM_EVERY_MS) {
        trimmed_at = now ? now : 1;
        malloc_trim(0);
    }
#endif
}

/* How far s's rings have grown past their first size. */
static uint32_t stream_grown(const struct stream *s)
{
    return s->snd.cap + s->rcv.cap - 2u * STREAM_WINDOW;
}

/* ---- the chain window ---- */

/* Room for new data in s's pool (no pool: no limit). */
static uint64_t pool_room(const struct stream *s)
{
    const struct stream_pool *p = s->pool;

    if (!p)
        return UINT64_MAX;
    return p->used < p->cap ? p->cap - p->used : 0;
}

/* The highest offset sent grew to top: charge the pool for the new bytes. */
static void pool_sent(struct stream *s, uint64_t top)
{
    if (top <= s->max)
        return;
    if (s->pool)
        s->pool->used += top - s->max;
    s->max = top;
}

/* The peer acked up to ack (> una): release those bytes. */
static void pool_acked(struct stream *s, uint64_t ack)
{
    if (s->pool)
        s->pool->used -= ack - s->una;
    s->una = ack;
}

void stream_set_pool(struct stream *s, struct stream_pool *p)
{
    uint64_t n;

    if (!s || (s->flags & STF_DEAD) || s->pool == p)
        return;
    n = s->max - s->una;
    if (s->pool) {
        s->pool->used -= n;
        s->pool->grown -= stream_grown(s);
    }
    s->pool = p;
    if (p) {
        if (!p->cap)
            p->cap = STREAM_POOL_CAP;
        p->used += n;
        p->grown += stream_grown(s); /* may pass STREAM_POOL_GROWN: it then grows nothing more */
    }
}

size_t stream_held(const struct stream *s)
{
    return sizeof(*s) + (s->snd.buf ? s->snd.cap : 0) + (s->rcv.buf ? s->rcv.cap : 0);
}

uint64_t stream_grown_total(void)
{
    return grown_total;
}

uint64_t stream_unread_total(void)
{
    return unread_total;
}

void stream_stats(struct stream_stats *st)
{
    stream_cc_stats(st);
    st->grown = grown_total;
    st->unread = unread_total;
}

/* ---- life ---- */

static void stream_freed(uv_handle_t *h)
{
    free(h->data);
}

int stream_new(uv_loop_t *loop, const struct stream_ops *ops, void *ctx,
               const uint8_t sid[STREAM_SID], const uint8_t *args, size_t alen, size_t mtu,
               uint32_t idle_ms, struct stream **out)
{
    struct stream *s;

    *out = NULL;
    if (mtu <= STREAM_HDR + 1 + alen || mtu > STREAM_FRAME_MAX || alen > STREAM_ARGS_MAX)
        return OVL_EINVAL;
    s = calloc(1, sizeof(*s));
    if (!s)
        return OVL_ENOMEM;
    if (args) {
        s->args = malloc(alen ? alen : 1);
        if (!s->args) {
            free(s);
            return OVL_ENOMEM;
        }
        memcpy(s->args, args, alen);
        s->alen = (uint8_t)alen;
        s->flags = STF_OPENER;
    }
    uv_timer_init(loop, &s->timer);
    s->timer.data = s;
    s->ops = ops;
    s->ctx = ctx;
    memcpy(s->sid, sid, STREAM_SID);
    s->mtu = (uint16_t)mtu;
    s->peer_lim = STREAM_WINDOW; /* the far end's ring, before it says more */
    s->snd.cap = s->rcv.cap = STREAM_WINDOW;
    s->rto_ms = RTO_MIN_MS;
    s->idle_ms = idle_ms;
    s->last_rx_ms = stream_now(s);
    *out = s;
    return 0;
}

void stream_free(struct stream *s)
{
    if (!s || (s->flags & STF_DEAD))
        return;
    stream_set_pool(s, NULL);
    grown_total -= stream_grown(s);
    unread_total -= unread_of(s->rcv.len);
    s->flags |= STF_DEAD;
    free(s->snd.buf);
    free(s->rcv.buf);
    free(s->args);
    s->snd.buf = s->rcv.buf = s->args = NULL;
    uv_close((uv_handle_t *)&s->timer, stream_freed);
}

/* Tell the owner ev; false when it freed the stream meanwhile. */
static bool stream_tell(struct stream *s, enum stream_event ev)
{
    s->ops->event(s, ev);
    return !(s->flags & STF_DEAD);
}

static void stream_linger_cb(uv_timer_t *t);

static void stream_close(struct stream *s, enum stream_reason why)
{
    if (s->flags & STF_CLOSED)
        return;
    s->flags |= STF_CLOSED;
    s->reason = (uint8_t)why;
    uv_timer_stop(&s->timer);
    (void)stream_tell(s, SE_CLOSED);
}

/* Go back to the last acknowledged offset: everything after it, and the
 * FIN if it is not acknowledged, goes again. */
static void go_back(struct stream *s)
{
    s->rtt_n = 0; /* an ack may now answer either copy: no samples */
    s->nxt = s->una;
    if (s->una <= s->snd.base + s->snd.len)
        s->flags &= (uint16_t)~STF_FIN_SENT;
}

/* Done both ways: linger a while to ack the peer's FIN again should our
 * ack of it be lost (as TCP's TIME-WAIT does), then close. */
static void stream_finish(struct stream *s)
{
    if (s->flags & (STF_LINGER | STF_CLOSED | STF_DEAD))
        return;
    s->flags |= STF_LINGER;
    uv_timer_start(&s->timer, stream_linger_cb, LINGER_MS, 0);
}

/* ---- sending ---- */

static uint64_t rcv_nxt(const struct stream *s)
{
    return s->rcv.base + s->rcv.len;
}

/* Fill the header; the ack and credit it carries are now sent. */
static void put_hdr(struct stream *s, uint8_t *f, uint8_t type, uint8_t flags, uint64_t off)
{
    uint64_t ack = rcv_nxt(s) + ((s->flags & STF_FIN_IN) ? 1 : 0);

    f[0] = type;
    f[1] = flags | ((s->flags & STF_GAP) ? SF_GAP : 0);
    memcpy(f + 2, s->sid, STREAM_SID);
    st_le64(f + 10, off);
    st_le64(f + 18, ack);
    st_le64(f + 26, s->rcv.base + s->rcv.cap);
    s->ack_sent = ack;
    if (s->rcv.base + s->rcv.cap > s->lim_sent && !s->mark_off && s->lim_sent &&
        s->rcv.cap >= STREAM_WINDOW_MAX) {
        /* The sender cannot fill this credit before it hears of it: the
         * time until it is filled is a round trip or more. Timed only with
         * a window of STREAM_WINDOW_MAX, the least that grows with the
         * round trip: where the hops take turns on one busy host, the
         * round trip grows with what is in flight, and that of a 64 KiB
         * window says nothing of a larger one's. */
        s->mark_off = s->rcv.base + s->rcv.cap;
        s->mark_us = clock_now_us();
    }
    s->lim_sent = s->rcv.base + s->rcv.cap;
}

/* Send one frame built in f; on success the ack it carried is settled. */
static int stream_emit(struct stream *s, uint8_t *f, size_t len)
{
    int rc = s->ops->send(s, f, len);

    if (rc == 0)
        s->flags &= (uint16_t) ~(STF_ACK_NOW | STF_ACK_LATE | STF_GAP);
    return rc;
}

/* The open frame, again from offset 0: args and what data fits. */
static int stream_send_open(struct stream *s)
{
    uint8_t f[STREAM_FRAME_MAX];
    size_t room = s->mtu - STREAM_HDR - 1 - s->alen, n = s->snd.len;
    uint64_t lim = s->peer_lim - s->snd.base, pool = pool_room(s);
    int rc;

    if (n > room)
        n = room;
    if (n > lim)
        n = (size_t)lim;
    if (n > s->max && n - s->max > pool)
        n = (size_t)(s->max + pool); /* bytes past max are new: the window takes them */
    put_hdr(s, f, SF_OPEN, 0, 0);
    f[STREAM_HDR] = s->alen;
    memcpy(f + STREAM_HDR + 1, s->args, s->alen);
    if (n)
        ring_copy(&s->snd, 0, f + STREAM_HDR + 1 + s->alen, n);
    rc = stream_emit(s, f, STREAM_HDR + 1 + s->alen + n);
    if (rc == 0 && s->nxt < n) {
        s->nxt = n;
        pool_sent(s, n);
    }
    return rc;
}

/* Data from s->nxt (or an empty frame carrying the ack, or the FIN). */
static int send_data(struct stream *s, uint8_t type, uint8_t flags)
{
    uint8_t f[STREAM_FRAME_MAX];
    uint64_t end = s->snd.base + s->snd.len, n = 0;

    if (s->nxt < end && s->nxt < s->peer_lim) {
        n = end - s->nxt;
        if (n > (uint64_t)(s->mtu - STREAM_HDR))
            n = (uint64_t)(s->mtu - STREAM_HDR);
        if (n > s->peer_lim - s->nxt)
            n = s->peer_lim - s->nxt;
        if (s->nxt + n > s->max && s->nxt + n - s->max > pool_room(s))
            n = (s->nxt < s->max ? s->max - s->nxt : 0) + pool_room(s);
        ring_copy(&s->snd, s->nxt, f + STREAM_HDR, (size_t)n);
    }
    if ((s->flags & STF_FIN_OUT) && s->nxt + n == end && s->nxt <= end)
        flags |= SF_FIN;
    put_hdr(s, f, type, flags, s->nxt);
    if (stream_emit(s, f, STREAM_HDR + (size_t)n))
        return OVL_EAGAIN;
    s->nxt += n + ((flags & SF_FIN) ? 1 : 0);
    if (flags & SF_FIN)
        s->flags |= STF_FIN_SENT;
    if (s->nxt > s->max && s->pool && s->rtt_n < STREAM_RTT_SAMPLES &&
        (!s->rtt_n || s->nxt >= s->rtt_off[s->rtt_n - 1] + STREAM_RTT_GAP)) {
        s->rtt_off[s->rtt_n] = s->nxt; /* time these new bytes to their ack */
        s->rtt_at[s->rtt_n++] = clock_now_us();
    }
    pool_sent(s, s->nxt);
    return 0;
}

/* True while something sent awaits its ack (or the open its answer). */
static bool stream_outstanding(const struct stream *s)
{
    return s->una < s->max || ((s->flags & STF_OPENER) && !(s->flags & STF_OPENED));
}

void stream_pump(struct stream *s)
{
    uint64_t end;
    bool sent = false;

    if (!s || (s->flags & (STF_CLOSED | STF_DEAD)))
        return;
    if (!(s->flags & (STF_OPENER | STF_OPENED)))
        goto out; /* the far end says nothing before the owner takes it */
    if ((s->flags & (STF_OPENER | STF_OPENED | STF_OPEN_SENT)) == STF_OPENER) {
        if (stream_send_open(s))
            goto out;
        s->flags |= STF_OPEN_SENT;
        sent = true;
    }
    end = s->snd.base + s->snd.len;
    for (;;) {
        bool data = s->nxt < end && s->nxt < s->peer_lim;
        bool fin = (s->flags & STF_FIN_OUT) && !(s->flags & STF_FIN_SENT) && s->nxt == end;
        uint8_t type = SF_DATA;

        if (data && s->nxt >= s->max && !pool_room(s)) {
            data = false; /* new data waits for the chain window */
            s->pool->flags |= SPF_WAIT | SPF_FULL;
        }

        if ((s->flags & (STF_OPENER | STF_TAKEN)) == STF_TAKEN)
            type = SF_OPENED; /* until the opener acks something after it */
        if (!data && !fin && !(s->flags & STF_ACK_NOW) && !(type == SF_OPENED && !sent))
            break;
        if (send_data(s, type, 0))
            break;
        sent = true;
        if (type == SF_OPENED)
            s->flags &= (uint16_t)~STF_TAKEN;
        if (!data && !fin)
            break;
    }
out:
    stream_arm(s);
}

void stream_rewind(struct stream *s)
{
    if (!s || (s->flags & (STF_CLOSED | STF_DEAD)))
        return;
    go_back(s);
    s->rewound_ms = stream_now(s);
    s->mark_off = 0; /* a new path: its round trips are yet to be seen */
    s->rcv_rtt = 0;
    if (s->pool)
        s->pool->rtt_min = s->pool->rtt_last = 0;
    s->flags &= (uint16_t)~STF_OPEN_SENT; /* the open goes again first, if unanswered */
    s->flags |= STF_ACK_NOW;
    stream_pump(s);
}

void stream_take(struct stream *s)
{
    if (!s || (s->flags & (STF_OPENER | STF_CLOSED | STF_DEAD)))
        return;
    s->flags |= STF_OPENED | STF_TAKEN;
    stream_pump(s);
}

void stream_reset(struct stream *s, enum stream_reason why)
{
    uint8_t f[STREAM_HDR + 1];

    if (!s || (s->flags & (STF_CLOSED | STF_DEAD)))
        return;
    (void)s->ops->send(s, f, stream_reset_frame(f, s->sid, why));
    if (!(s->flags & STF_DEAD))
        stream_close(s, why);
}

/* ---- the application's side ---- */

/* The most the application may have written: the peer's credit and one
 * first window beyond it, so a sender whose peer stopped reading holds
 * little more than a window of its own (the rest waits in the
 * application's socket) and its ring can shrink (snd_fit). */
static uint64_t snd_top(const struct stream *s)
{
    return s->peer_lim + STREAM_WINDOW;
}

size_t stream_wbuf(struct stream *s, uint8_t **p)
{
    uint64_t end = s->snd.base + s->snd.len;
    size_t at, room;

    *p = NULL;
    if (s->flags & (STF_FIN_OUT | STF_CLOSED | STF_DEAD) || end >= snd_top(s) ||
        !ring_alloc(&s->snd))
        return 0;
    at = (size_t)(end & (s->snd.cap - 1u));
    room = s->snd.cap - s->snd.len;
    if (room > s->snd.cap - at)
        room = s->snd.cap - at;
    if (room > snd_top(s) - end)
        room = (size_t)(snd_top(s) - end);
    *p = s->snd.buf + at;
    return room;
}

void stream_wrote(struct stream *s, size_t n)
{
    if (s->flags & (STF_CLOSED | STF_DEAD))
        return;
    s->snd.len += (uint32_t)n;
    if (s->snd.len == 0)
        ring_drop(&s->snd, 0);
    stream_pump(s);
}

void stream_shutdown(struct stream *s)
{
    if (s->flags & (STF_FIN_OUT | STF_CLOSED | STF_DEAD))
        return;
    s->flags |= STF_FIN_OUT;
    stream_pump(s);
}

size_t stream_rbuf(struct stream *s, const uint8_t **p)
{
    size_t at = (size_t)(s->rcv.base & (s->rcv.cap - 1u)), n = s->rcv.len;

    *p = s->rcv.buf ? s->rcv.buf + at : NULL;
    if (n > s->rcv.cap - at)
        n = s->rcv.cap - at;
    return n;
}

bool stream_eof(const struct stream *s)
{
    return (s->flags & STF_FIN_IN) && s->rcv.len == 0;
}

/* Both ways finished: our FIN acked, theirs consumed. */
static bool stream_done(const struct stream *s)
{
    return stream_eof(s) && (s->flags & STF_FIN_SENT) && s->una == s->max &&
           s->una == s->snd.base + s->snd.len + 1;
}

/* Past STREAM_WINDOW_MAX: once per rcv_rtt, double the window when the
 * application consumed more than half of it in that time (the window,
 * not the reader, may be what holds the sender back). */
static void rcv_autotune(struct stream *s)
{
    uint64_t now = clock_now_us();

    if (!s->drs_us || now - s->drs_us < s->rcv_rtt) {
        if (!s->drs_us) {
            s->drs_us = now;
            s->drs_base = s->rcv.base;
        }
        return;
    }
    /* More than half the window per round trip (the time since the round
     * began may be many round trips: a busy loop consumes in bursts), and
     * the application caught up with all that came at least once in the
     * round (a reader that lags, or filled a socket buffer and stopped,
     * keeps the window it has; one whose socket takes a write in parts
     * empties the ring only after the last, when the round may have just
     * been judged on the first). */
    if ((s->flags & STF_CAUGHT) &&
        2 * (s->rcv.base - s->drs_base) * s->rcv_rtt > (uint64_t)s->rcv.cap * (now - s->drs_us))
        stream_grow(s, &s->rcv, 2u * s->rcv.cap);
    s->drs_us = now;
    s->drs_base = s->rcv.base;
    s->flags &= (uint16_t)~STF_CAUGHT;
}

/* Readers that stall or lag hold more than STREAM_UNREAD_MAX unread, and
 * this one is still more than a first window behind after its application
 * read: shrink its window to the least power of two, at least
 * STREAM_WINDOW, that holds the credit already given, so that the credit
 * it gives back as its reader goes on is less (the growth goes back to the
 * process). */
static void rcv_give_back(struct stream *s)
{
    uint64_t need = s->lim_sent > s->rcv.base ? s->lim_sent - s->rcv.base : 0;
    uint32_t cap = s->rcv.cap;

    if (need < s->rcv.len)
        need = s->rcv.len;
    while (cap / 2 >= need && cap / 2 >= STREAM_WINDOW)
        cap /= 2;
    stream_shrink(s, &s->rcv, cap);
}

void stream_consumed(struct stream *s, size_t n)
{
    if (s->flags & (STF_CLOSED | STF_DEAD) || n == 0 || n > s->rcv.len)
        return;
    unread_total -= unread_of(s->rcv.len) - unread_of(s->rcv.len - (uint32_t)n);
    ring_drop(&s->rcv, (uint32_t)n);
    if (s->rcv.len == 0)
        s->flags |= STF_CAUGHT; /* the application caught up with all that came */
    else if (unread_total > STREAM_UNREAD_MAX && s->rcv.len > STREAM_WINDOW)
        rcv_give_back(s);
    /* A whole window consumed since the last growth, and the application
     * has caught up with all that came: the window, not the reader, may
     * be what holds the stream back. The ring is empty (freed), so growing
     * it copies nothing. */
    if (s->rcv.len == 0 && s->rcv.base - s->grow_mark >= s->rcv.cap &&
        s->rcv.cap < STREAM_WINDOW_MAX) {
        stream_grow(s, &s->rcv, 2u * s->rcv.cap);
        s->grow_mark = s->rcv.base;
    } else if (s->rcv_rtt && s->rcv.cap >= STREAM_WINDOW_MAX) {
        rcv_autotune(s);
    }
    /* Give credit back once a quarter of the window is free again. */
    if (s->rcv.base + s->rcv.cap - s->lim_sent >= ack_every(s))
        s->flags |= STF_ACK_NOW;
    stream_pump(s);
    if (!(s->flags & (STF_CLOSED | STF_DEAD)) && stream_done(s))
        stream_finish(s);
}

/* ---- receiving ---- */

/* How far the send ring may grow: STREAM_WINDOW_MAX, and past it twice
 * the pool's window (so new data waits there, and the window's controller
 * sees it is what holds the stream back), which only our own round trips
 * open: a peer's credit alone never grows the ring past STREAM_WINDOW_MAX. */
static uint32_t snd_limit(const struct stream *s)
{
    uint32_t lim = STREAM_WINDOW_MAX;

    while (s->pool && lim < STREAM_WINDOW_RTT_MAX && lim < 2ull * s->pool->cap)
        lim *= 2;
    return lim;
}

/* The send ring holds far more than the peer's credit calls for (its
 * reader stalled or slowed, and we wrote only up to snd_top): give the
 * growth back, down to what it holds and the credit left plus one window.
 * Only at a quarter or less, so a ring does not go up and down with each
 * ack; the peer's next credit grows it again. */
static void snd_fit(struct stream *s)
{
    uint64_t need = (s->peer_lim > s->snd.base ? s->peer_lim - s->snd.base : 0) + STREAM_WINDOW;
    uint32_t cap = s->snd.cap;

    if (need < s->snd.len)
        need = s->snd.len;
    if (need > s->snd.cap / 4)
        return;
    while (cap / 2 >= need && cap / 2 >= STREAM_WINDOW)
        cap /= 2;
    stream_shrink(s, &s->snd, cap);
}

/* Acks and credit from the peer; true when the send ring got room. */
static bool take_ack(struct stream *s, uint64_t ack, uint64_t lim, uint8_t flags, uint64_t now)
{
    uint64_t end = s->snd.base + s->snd.len;
    bool room = false;

    if (s->rtt_n && ack >= s->rtt_off[0] && ack <= s->max) {
        uint64_t now_us = clock_now_us(), rtt;
        unsigned k = 1;

        while (k < s->rtt_n && ack >= s->rtt_off[k])
            k++;
        rtt = now_us - s->rtt_at[k - 1]; /* the newest it ends waited least for the ack */
        s->rtt_n = (uint8_t)(s->rtt_n - k);
        memmove(s->rtt_off, s->rtt_off + k, s->rtt_n * sizeof(s->rtt_off[0]));
        memmove(s->rtt_at, s->rtt_at + k, s->rtt_n * sizeof(s->rtt_at[0]));
        stream_pool_sample(s->pool, rtt < UINT32_MAX ? (uint32_t)rtt : UINT32_MAX, now_us);
    }
    if (ack > s->una && ack <= s->max) {
        if (ack > s->snd.base)
            ring_drop(&s->snd, (uint32_t)((ack < end ? ack : end) - s->snd.base));
        pool_acked(s, ack);
        if (s->nxt < ack)
            s->nxt = ack;
        s->rto_ms = RTO_MIN_MS;
        s->rto_due_ms = 0;
        room = true;
    }
    if (lim > s->peer_lim && lim <= s->una + 2 * (uint64_t)STREAM_WINDOW_RTT_MAX) {
        s->peer_lim = lim;
        room = true;
    }
    /* The peer takes more than our ring holds: its window grew. */
    while (s->peer_lim - s->snd.base > s->snd.cap && s->snd.cap < snd_limit(s)) {
        uint32_t cap = s->snd.cap;

        stream_grow(s, &s->snd, 2u * cap);
        if (s->snd.cap == cap)
            break; /* no room for it */
        room = true;
    }
    snd_fit(s);
    if ((flags & SF_GAP) && s->nxt > s->una && (room || now - s->rewound_ms >= RTO_MIN_MS / 4)) {
        go_back(s); /* the peer missed a frame */
        stream_pool_loss(s->pool);
        s->rewound_ms = now;
        s->retransmits++;
    }
    if (flags & SF_ASK)
        s->flags |= STF_ACK_NOW;
    return room;
}

/* Data (n bytes at f, stream offset off; fin: the peer's end follows).
 * Returns 1 when bytes or the FIN were taken, 0 when not, -1 when the
 * frame broke the rules (the stream was reset). */
static int take_data(struct stream *s, const uint8_t *f, size_t n, uint64_t off, bool fin,
                     uint64_t now)
{
    uint64_t nx = rcv_nxt(s), top = nx + ((s->flags & STF_FIN_IN) ? 1 : 0);
    size_t skip;

    if (off > top) {
        /* A frame before this one is missing: say so at once, or with the
         * next frame when this one only carried an ack (answering acks
         * with acks at once would have both ends trade them forever). */
        s->flags |= STF_GAP | (n || fin ? STF_ACK_NOW : 0);
        if (!(n || fin) && !(s->flags & STF_ACK_LATE)) {
            s->flags |= STF_ACK_LATE;
            s->ack_due_ms = now + ACK_DELAY_MS;
        }
        return 0;
    }
    if (n == 0 && !fin)
        return 0;
    if (off + n < nx || (off + n == nx && (!fin || (s->flags & STF_FIN_IN)))) {
        s->flags |= STF_ACK_NOW; /* sent again: our ack may have been lost */
        return 0;
    }
    skip = (size_t)(nx - off);
    n -= skip;
    if ((s->flags & STF_FIN_IN) || nx + n > s->rcv.base + s->rcv.cap) {
        stream_reset(s, SR_PROTOCOL); /* past its FIN, or past our credit */
        return -1;
    }
    if (n) {
        if (!ring_alloc(&s->rcv)) {
            stream_reset(s, SR_LIMIT);
            return -1;
        }
        unread_total += unread_of(s->rcv.len + (uint32_t)n) - unread_of(s->rcv.len);
        ring_put(&s->rcv, f + skip, n);
        if (s->mark_off && rcv_nxt(s) >= s->mark_off) {
            uint64_t t = clock_now_us() - s->mark_us; /* a credit given was filled */

            if (t && (!s->rcv_rtt || t < s->rcv_rtt))
                s->rcv_rtt = t < UINT32_MAX ? (uint32_t)t : UINT32_MAX;
            s->mark_off = 0;
        }
    }
    if (fin)
        s->flags |= STF_FIN_IN | STF_ACK_NOW;
    if (rcv_nxt(s) - s->ack_sent >= ack_every(s))
        s->flags |= STF_ACK_NOW;
    else if (!(s->flags & STF_ACK_LATE)) {
        s->flags |= STF_ACK_LATE;
        s->ack_due_ms = now + ACK_DELAY_MS;
    }
    return 1;
}

int stream_input(struct stream *s, const uint8_t *f, size_t len)
{
    uint64_t now = stream_now(s);
    size_t d = STREAM_HDR;
    bool room;
    int got, why;

    if (s->flags & (STF_CLOSED | STF_DEAD))
        return 0;
    if (len < STREAM_HDR)
        return OVL_EPROTO;
    switch (f[0]) {
    case SF_RESET:
        why = len > STREAM_HDR && f[STREAM_HDR] <= SR_MAX ? f[STREAM_HDR] : SR_PROTOCOL;
        /* The peer finished and forgot the stream before our FIN's ack
         * reached us: every byte both ways is through, so it is done. */
        if (why == SR_UNKNOWN && stream_eof(s) && (s->flags & STF_FIN_SENT) &&
            s->una >= s->snd.base + s->snd.len)
            why = SR_DONE;
        stream_close(s, (enum stream_reason)why);
        return 0;
    case SF_OPEN:
        if ((s->flags & STF_OPENER) || len < STREAM_HDR + 1u + f[STREAM_HDR])
            return OVL_EPROTO;
        d += 1u + f[STREAM_HDR];
        break;
    case SF_OPENED:
    case SF_DATA:
        if (!(s->flags & STF_OPENER) && f[0] == SF_OPENED)
            return OVL_EPROTO;
        break;
    default:
        return OVL_EPROTO;
    }
    s->last_rx_ms = now;
    room = take_ack(s, ld_le64(f + 18), ld_le64(f + 26), f[1], now);
    if ((s->flags & (STF_OPENER | STF_OPENED)) == STF_OPENER && f[0] != SF_OPEN) {
        /* OPENED, or data that only comes after it (it may have been lost) */
        s->flags |= STF_OPENED;
        free(s->args);
        s->args = NULL;
        if (!stream_tell(s, SE_OPENED) || (s->flags & STF_CLOSED))
            return 0;
    }
    got = take_data(s, f + d, len - d, ld_le64(f + 10), (f[1] & SF_FIN) != 0, now);
    if (got < 0)
        return 0;
    if (got && (!stream_tell(s, SE_READABLE) || (s->flags & STF_CLOSED)))
        return 0;
    if (room && (!stream_tell(s, SE_WRITABLE) || (s->flags & STF_CLOSED)))
        return 0;
    stream_pump(s); /* first: the ack of the peer's FIN must leave */
    if (!(s->flags & (STF_CLOSED | STF_DEAD)) && stream_done(s))
        stream_finish(s);
    return 0;
}

/* ---- timers ---- */

static uint64_t stream_idle_due(const struct stream *s)
{
    bool opening = (s->flags & (STF_OPENER | STF_OPENED)) == STF_OPENER;

    return s->last_rx_ms + (opening ? OPEN_MS : s->idle_ms);
}

/* Data waits for credit the peer may have given in a lost frame. */
static bool stream_starved(const struct stream *s)
{
    return s->nxt < s->snd.base + s->snd.len && s->nxt >= s->peer_lim;
}

static void stream_linger_cb(uv_timer_t *t)
{
    stream_close(t->data, SR_DONE);
}

static void stream_timer_cb(uv_timer_t *t)
{
    struct stream *s = t->data;
    uint64_t now = stream_now(s);

    if (now >= stream_idle_due(s)) {
        stream_reset(s, SR_TIMEOUT);
        return;
    }
    if (s->rto_due_ms && now >= s->rto_due_ms) {
        s->rto_due_ms = 0;
        if (stream_outstanding(s) && s->nxt > s->una) {
            go_back(s);
            stream_pool_loss(s->pool);
            s->retransmits++;
        }
        if ((s->flags & (STF_OPENER | STF_OPENED)) == STF_OPENER) {
            s->flags &= (uint16_t)~STF_OPEN_SENT; /* the open again */
            s->retransmits++;
        }
        s->flags |= STF_ACK_NOW;
        if (stream_starved(s)) {
            uint8_t f[STREAM_HDR];

            put_hdr(s, f, SF_DATA, SF_ASK, s->nxt); /* ask for the credit again */
            (void)stream_emit(s, f, sizeof(f));
            if (s->flags & (STF_CLOSED | STF_DEAD))
                return;
        }
        s->rto_ms = s->rto_ms * 2 < RTO_MAX_MS ? s->rto_ms * 2 : RTO_MAX_MS;
    }
    if ((s->flags & STF_ACK_LATE) && now >= s->ack_due_ms)
        s->flags |= STF_ACK_NOW;
    stream_pump(s);
}

/* Run the timer at the earliest of: retransmission, a late ack, idleness. */
static void stream_arm(struct stream *s)
{
    uint64_t now = stream_now(s), due;

    if (s->flags & (STF_CLOSED | STF_DEAD | STF_LINGER))
        return;
    if (!stream_outstanding(s) && !stream_starved(s))
        s->rto_due_ms = 0;
    else if (!s->rto_due_ms)
        s->rto_due_ms = now + s->rto_ms;
    due = stream_idle_due(s);
    if (s->rto_due_ms && s->rto_due_ms < due)
        due = s->rto_due_ms;
    if ((s->flags & STF_ACK_LATE) && s->ack_due_ms < due)
        due = s->ack_due_ms;
    /* Never 0: libuv runs a timer re-armed for the loop's current time
     * again in the same pass, before any I/O, so an ack owed while the
     * path is full (it stays full until the loop reads and writes) would
     * spin here until the idle timeout. */
    if (due <= now)
        due = now + 1;
    if (due == s->arm_ms && uv_is_active((uv_handle_t *)&s->timer))
        return; /* armed for that already: a frame costs no timer heap work */
    s->arm_ms = due;
    uv_timer_start(&s->timer, stream_timer_cb, due - now, 0);
}

/* ---- frames without a stream ---- */

int stream_frame_peek(const uint8_t *f, size_t len, uint8_t *type, const uint8_t **sid,
                      const uint8_t **args, size_t *alen)
{
    *args = NULL;
    *alen = 0;
    if (len < STREAM_HDR || f[0] < SF_OPEN || f[0] > SF_OPENED)
        return OVL_EPROTO;
    *type = f[0];
    *sid = f + 2;
    if (f[0] == SF_OPEN) {
        if (len < STREAM_HDR + 1u + f[STREAM_HDR])
            return OVL_EPROTO;
        *args = f + STREAM_HDR + 1;
        *alen = f[STREAM_HDR];
    }
    return 0;
}

size_t stream_reset_frame(uint8_t *f, const uint8_t sid[STREAM_SID], enum stream_reason why)
{
    memset(f, 0, STREAM_HDR);
    f[0] = SF_RESET;
    memcpy(f + 2, sid, STREAM_SID);
    f[STREAM_HDR] = (uint8_t)why;
    return STREAM_HDR + 1;
}

/* ---- targets ---- */

int stream_target_put(uint8_t *out, const struct stream_target *t)
{
    size_t n;

    out[0] = t->atyp;
    st_be16(out + 1, t->port);
    switch (t->atyp) {
    case STA_IPV4:
        memcpy(out + 3, t->addr, 4);
        return 7;
    case STA_IPV6:
        memcpy(out + 3, t->addr, 16);
        return 19;
    case STA_NAME:
        n = strnlen(t->name, sizeof(t->name));
        if (n == 0 || n > 255)
            return OVL_EINVAL;
        out[3] = (uint8_t)n;
        memcpy(out + 4, t->name, n);
        return (int)(4 + n);
    default:
        return OVL_EINVAL;
    }
}

int stream_target_get(struct stream_target *t, const uint8_t *args, size_t alen)
{
    memset(t, 0, sizeof(*t));
    if (alen < 4)
        return OVL_EPROTO;
    t->atyp = args[0];
    t->port = ld_be16(args + 1);
    switch (t->atyp) {
    case STA_IPV4:
        if (alen != 7)
            return OVL_EPROTO;
        memcpy(t->addr, args + 3, 4);
        return 0;
    case STA_IPV6:
        if (alen != 19)
            return OVL_EPROTO;
        memcpy(t->addr, args + 3, 16);
        return 0;
    case STA_NAME:
        if (args[3] == 0 || alen != 4u + args[3] || memchr(args + 4, 0, args[3]))
            return OVL_EPROTO;
        memcpy(t->name, args + 4, args[3]);
        return 0;
    default:
        return OVL_EPROTO;
    }
}
