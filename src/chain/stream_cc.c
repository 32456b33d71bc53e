/* stream_cc.c - the chain window's controller (stream.h, stream_pool_*):
 * a delay-based congestion window over the round trips the streams of one
 * path measure (docs/PROTOCOL.md 20.3). It sees only struct stream_pool;
 * stream.c charges and releases the window and samples the round trips. */
#include "chain/stream.h"

/* The controller's counters and its last round (stream_cc_stats): one
 * loop per process, one set. */
static struct stream_stats cc;

/* The window's step in steady state: an eighth of it (a path of 80 ms
 * opens from 1 to 5 MB in about a second), at least a stream window. */
static uint32_t pool_step(const struct stream_pool *p)
{
    return p->cap / 8 > STREAM_WINDOW ? p->cap / 8 : STREAM_WINDOW;
}

static void pool_set(struct stream_pool *p, uint64_t cap)
{
    if (cap < STREAM_POOL_CAP)
        cap = STREAM_POOL_CAP;
    if (cap > STREAM_POOL_MAX)
        cap = STREAM_POOL_MAX;
    p->cap = (uint32_t)cap;
}

/* A threshold of the controller: least bytes, or a share of the window
 * (1 / div), whichever is more. Round trips on a busy host jitter by a
 * tenth or more, which a large window would read as that much queued. */
static uint64_t pool_mark(const struct stream_pool *p, uint32_t least, unsigned div)
{
    return p->cap / div > least ? p->cap / div : least;
}

/* A round is over: move the window by what queued along the path. */
static void pool_round(struct stream_pool *p)
{
    /* Judged on the least round trip of this round and the last: what our
     * window queues stays there round after round, while a busy host
     * delays a round now and then (a hop not scheduled for a few ms). */
    uint32_t rtt = p->rtt_last && p->rtt_last < p->rtt_round ? p->rtt_last : p->rtt_round;
    uint64_t queued = rtt > p->rtt_min ? (uint64_t)p->cap * (rtt - p->rtt_min) / rtt : 0;
    bool full = p->flags & SPF_FULL;
    uint32_t was = p->cap;

    if (queued > pool_mark(p, STREAM_CC_DELTA, 2)) {
        p->flags |= SPF_STEADY;
        pool_set(p, p->cap - queued); /* drain all that queued */
    } else if (!(p->flags & SPF_STEADY)) {
        if (queued > pool_mark(p, STREAM_CC_GAMMA, 6)) {
            p->flags |= SPF_STEADY; /* the path is full: back to what it carries */
            pool_set(p, p->cap - queued);
        } else if (full) {
            pool_set(p, 2ull * p->cap);
        }
    } else if (queued > pool_mark(p, STREAM_CC_BETA, 4)) {
        pool_set(p, p->cap - pool_step(p));
    } else if (queued < pool_mark(p, STREAM_CC_ALPHA, 8) && full) {
        pool_set(p, (uint64_t)p->cap + pool_step(p));
    }
    p->flags &= (uint8_t)~SPF_FULL;
    cc.cc_rounds++;
    cc.cc_opened += p->cap > was;
    cc.cc_closed += p->cap < was;
    cc.cc_window = p->cap;
    cc.cc_rtt_us = rtt;
    cc.cc_rtt_least_us = p->rtt_min;
    cc.cc_queued = queued < UINT32_MAX ? (uint32_t)queued : UINT32_MAX;
}

void stream_pool_sample(struct stream_pool *p, uint32_t rtt, uint64_t now_us)
{
    if (!p || rtt == 0 || p->cap < STREAM_POOL_CAP)
        return; /* a window its owner set smaller stays as it is */
    /* The least round trip of the path is taken in rounds where the window
     * held its streams back (new data waited for room), so with the window
     * full: where the hops take turns on one busy host, the round trip grows
     * with what is in flight, and a least one seen while a stream's first
     * credit held the sender would read every window above as queued. */
    if ((p->flags & SPF_FULL) && (!p->rtt_min || rtt < p->rtt_min))
        p->rtt_min = rtt;
    if (!p->rtt_round || rtt < p->rtt_round)
        p->rtt_round = rtt;
    if (!p->round_end) {
        p->round_end = now_us + p->rtt_round; /* the first round starts */
        return;
    }
    if (now_us < p->round_end)
        return;
    if (p->rtt_min) /* else no round filled the window yet: nothing to judge */
        pool_round(p);
    p->round_end = now_us + p->rtt_round;
    p->rtt_last = p->rtt_round;
    p->rtt_round = 0;
}

void stream_pool_loss(struct stream_pool *p)
{
    if (!p || p->cap <= STREAM_POOL_CAP)
        return;
    p->flags |= SPF_STEADY;
    pool_set(p, p->cap / 2);
    cc.cc_losses++;
}

bool stream_pool_wake(struct stream_pool *p)
{
    if (!p || !(p->flags & SPF_WAIT) || p->used >= p->cap)
        return false;
    p->flags &= (uint8_t)~SPF_WAIT;
    return true;
}

void stream_cc_stats(struct stream_stats *st)
{
    *st = cc;
}
