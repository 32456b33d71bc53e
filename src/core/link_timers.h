/* link_timers.h - when an open link pings, pads, and gives up on its peer.
 *
 * The liveness policy of a link as a small state machine of its own (in
 * the spirit of WireGuard's timers.c), kept apart from the handshake and
 * the sealing in link.c. The link layer tells it what happened through
 * event hooks (opened, sent, received, resumed, probe sent, pong) and, when
 * its one timer fires, asks link_timers_due() what is due; link.c performs
 * the sends and the close and re-arms the timer with the delay returned.
 * The policy itself sends nothing and owns no handle, so it depends only
 * on the node's options and counters.
 *
 *  - heartbeat: a PING once the link has sent nothing for heartbeat_ms;
 *  - dead: nothing received for heartbeat_misses heartbeat intervals (the
 *    peer pings too, so a live peer is never quiet that long), unless we
 *    paused reading ourselves;
 *  - idle: nothing received for idle_timeout_ms;
 *  - probe: a PING whose echoing PONG must arrive within a deadline;
 *  - padding: a PADDING cell once the link has sent nothing but upkeep
 *    (padding, ping, pong) for a fresh U(padding_min, padding_max) draw.
 *    Heartbeats do not count, or padding would never fire; real traffic
 *    starts a new draw too, so the quiet before padding never repeats one
 *    value an observer could learn.
 */
#ifndef OVL_CORE_LINK_TIMERS_H
#define OVL_CORE_LINK_TIMERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/link_reason.h"

struct node;

/* A link's liveness clock; times from clock_now_ms(), or for cells sent
 * and received the loop's copy of it (uv_now). */
struct link_timers {
    uint64_t last_rx_ms, last_tx_ms;
    uint64_t last_real_tx_ms; /* last cell sent that was not upkeep (padding, ping, pong) */
    uint64_t pad_from_ms;     /* link padding: the quiet being timed began here */
    uint32_t pad_gap_ms;      /* and a PADDING cell goes out after this much of it */
    uint64_t probe_ms;        /* a probe's PING was sent then; 0 when none is pending */
    uint32_t probe_within;    /* and the peer has this long to answer it */
    uint64_t due_ms;          /* when link_timers_due asked to be called next; 0: no ask */
};

/* A timer that fires this much later than asked means the loop itself was
 * held up (the process was descheduled, stopped or swapped): what the peer
 * sent meanwhile is still unread, so silence proves nothing yet. */
#define LT_LATE_MS 50

/* What link_timers_due() asks of the link (bits of its result). */
#define LT_PING  (1u << 0) /* send a heartbeat PING if the queue has room */
#define LT_PAD   (1u << 1) /* send a PADDING cell if room and the cover budget allow */
#define LT_CLOSE (1u << 2) /* close the link for *reason; nothing else is due */

/* A link was created at now: its quiet starts here. */
void link_timers_init(struct link_timers *t, uint64_t now);

/* The link opened at now: the first padding draw. */
void link_timers_opened(struct link_timers *t, const struct node *n, uint64_t now);

/* A cell went out at now; real is false for upkeep (padding, ping, pong). */
void link_timers_sent(struct link_timers *t, bool real, uint64_t now);

/* A cell arrived at now. */
void link_timers_received(struct link_timers *t, uint64_t now);

/* We start reading again after a pause: what the peer sent meanwhile is
 * still in the transport, so it gets a full heartbeat window from now. */
void link_timers_resumed(struct link_timers *t, uint64_t now);

/* A probe's PING carrying sent_ms went out at sent_ms; the answer is due
 * within within_ms (0 counts as 1). */
void link_timers_probe_sent(struct link_timers *t, uint64_t sent_ms, uint32_t within_ms);

/* A PONG arrived: end the pending probe if it echoes the probe's PING. */
void link_timers_pong(struct link_timers *t, const uint8_t *payload, size_t len);

/* The link's timer fired at now (paused: we stopped reading). Return the
 * LT_* bits due; with LT_CLOSE, *reason says why (and the node's dead and
 * probe counters are updated). Otherwise *next_ms is when to look again
 * (at least 1). Padding that is due is taken as sent for its next draw.
 * Called more than LT_LATE_MS after the time it asked for, it does
 * nothing: it asks to be called again LT_LATE_MS later, after the loop has
 * read what arrived meanwhile, and decides then. */
unsigned link_timers_due(struct link_timers *t, struct node *n, bool paused, uint64_t now,
                         uint64_t *next_ms, enum link_close_reason *reason);

#endif
