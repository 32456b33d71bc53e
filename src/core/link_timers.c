/* link_timers.c - a link's liveness policy: heartbeat, dead, idle, probe
 * and padding deadlines, as pure decisions over the link's clock. */
#include "lib/bytes.h"
#include "core/link_timers.h"
#include "core/node.h"

void link_timers_init(struct link_timers *t, uint64_t now)
{
    *t = (struct link_timers){.last_rx_ms = now, .last_tx_ms = now};
}

/* Draw how long the link stays quiet before it sends padding. */
static uint32_t pad_gap(const struct node_opts *o)
{
    if (!o->padding_max_ms)
        return 0;
    return o->padding_min_ms + ovl_random_uniform(o->padding_max_ms - o->padding_min_ms + 1);
}

void link_timers_opened(struct link_timers *t, const struct node *n, uint64_t now)
{
    t->pad_from_ms = now;
    t->pad_gap_ms = pad_gap(&n->opts);
}

void link_timers_sent(struct link_timers *t, bool real, uint64_t now)
{
    t->last_tx_ms = now;
    if (real)
        t->last_real_tx_ms = now;
}

void link_timers_received(struct link_timers *t, uint64_t now)
{
    t->last_rx_ms = now;
}

void link_timers_resumed(struct link_timers *t, uint64_t now)
{
    t->last_rx_ms = now;
}

void link_timers_probe_sent(struct link_timers *t, uint64_t sent_ms, uint32_t within_ms)
{
    t->probe_ms = sent_ms;
    t->probe_within = within_ms ? within_ms : 1;
}

void link_timers_pong(struct link_timers *t, const uint8_t *payload, size_t len)
{
    if (t->probe_ms && len == 8 && ld_le64(payload) == t->probe_ms)
        t->probe_ms = 0;
}

/* Padding: due once the quiet since the last real cell (or the last
 * padding) reaches the current draw; return the ms until then, and set
 * *due when it is now (the next draw starts at once). */
static uint64_t pad_due(struct link_timers *t, const struct node_opts *o, uint64_t now, bool *due)
{
    *due = false;
    if (!o->padding_max_ms)
        return UINT32_MAX;
    if (t->last_real_tx_ms > t->pad_from_ms) {
        t->pad_from_ms = t->last_real_tx_ms;
        t->pad_gap_ms = pad_gap(o);
    }
    if (now - t->pad_from_ms < t->pad_gap_ms)
        return t->pad_from_ms + t->pad_gap_ms - now;
    *due = true;
    t->pad_from_ms = now;
    t->pad_gap_ms = pad_gap(o);
    return t->pad_gap_ms;
}

static uint64_t min64(uint64_t a, uint64_t b)
{
    return a < b ? a : b;
}

unsigned link_timers_due(struct link_timers *t, struct node *n, bool paused, uint64_t now,
                         uint64_t *next_ms, enum link_close_reason *reason)
{
    const struct node_opts *o = &n->opts;
    uint64_t quiet = paused ? 0 : now - t->last_rx_ms; /* we are not listening */
    uint64_t dead = (uint64_t)o->heartbeat_ms * o->heartbeat_misses, next = UINT32_MAX;
    unsigned acts = 0;
    bool pad;

    if (t->due_ms && now > t->due_ms + LT_LATE_MS) {
        /* Not 1 ms: a timer already due when the next loop pass starts
         * runs before that pass reads the sockets. */
        t->due_ms = now + LT_LATE_MS;
        *next_ms = LT_LATE_MS;
        return 0;
    }
    if (t->probe_ms && !paused && now - t->probe_ms >= t->probe_within) {
        n->ctr.probes_failed++;
        *reason = LC_DEAD;
        return LT_CLOSE;
    }
    if (o->heartbeat_ms && quiet >= dead) {
        n->ctr.dead_detect_ms_last = quiet;
        if (quiet > n->ctr.dead_detect_ms_max)
            n->ctr.dead_detect_ms_max = quiet;
        *reason = LC_DEAD;
        return LT_CLOSE;
    }
    if (o->idle_timeout_ms && quiet >= o->idle_timeout_ms) {
        *reason = LC_IDLE;
        return LT_CLOSE;
    }
    if (o->heartbeat_ms) {
        /* Due now: the PING (or a full queue, which tells the peer we are
         * alive soon enough) restarts the interval. */
        if (now - t->last_tx_ms >= o->heartbeat_ms)
            acts |= LT_PING;
        next = acts ? o->heartbeat_ms : t->last_tx_ms + o->heartbeat_ms - now;
        next = min64(next, dead - quiet);
    }
    next = min64(next, pad_due(t, o, now, &pad));
    if (pad)
        acts |= LT_PAD;
    if (o->idle_timeout_ms)
        next = min64(next, o->idle_timeout_ms - quiet);
    if (t->probe_ms)
        next = min64(next, t->probe_ms + t->probe_within - now);
    *next_ms = next ? next : 1;
    t->due_ms = now + *next_ms;
    return acts;
}
