/* link_reason.h - why a link ended: the vocabulary shared by the link layer,
 * which decides, and the node's counters, which count. (Its own header so
 * that node.h can size its counters without including link.h, which
 * builds on node.h.) */
#ifndef OVL_CORE_LINK_REASON_H
#define OVL_CORE_LINK_REASON_H

/* Why a link ended. Each has a counter in node_counters.link_closed and a
 * name in link_close_reason_name() (link.h; used by the control protocol). */
enum link_close_reason {
    LC_NONE = 0,
    LC_SHUTDOWN,       /* we are shutting down or closed it on purpose */
    LC_PEER_CLOSED,    /* the peer closed the connection */
    LC_IO_ERROR,       /* the transport failed (reset, refused, unreachable) */
    LC_HS_TIMEOUT,     /* the handshake did not finish in time */
    LC_HS_MALFORMED,   /* a handshake message had a bad length, type or version */
    LC_HS_AUTH,        /* a handshake message did not decrypt: wrong or forged key */
    LC_HS_SUITE,       /* no AEAD suite in common */
    LC_HS_UNCONFIRMED, /* the initiator's first cell was not a valid CELL_HELLO */
    LC_OVERSIZED,      /* a frame longer than OVL_FRAME_MAX */
    LC_BAD_FRAME,      /* unexpected frame type or length for the link's state */
    LC_REPLAY,         /* a counter we already received */
    LC_REORDER,        /* a counter that skips ahead */
    LC_TAMPERED,       /* a sealed cell whose tag failed */
    LC_BAD_CELL,       /* a cell with a bad header (length, flags) */
    LC_QUEUE_FULL,     /* the peer does not read what we send */
    LC_LIMIT,          /* too many links */
    LC_IDLE,           /* no cell for idle_timeout */
    LC_DEAD,           /* no cell for heartbeat_misses heartbeat intervals */
    LC_HS_LIMITED,     /* message 1 over its address block's handshake rate */
    LC_HS_REPLAY,      /* message 1 seen before (a replay) */
    LC_EVICTED,        /* not yet authenticated, closed to make room for another link */
    LC_MEMORY,         /* the links held more than [node] max_queued: the largest queues closed */
    LC_STALLED,        /* held chains on other links back too long without draining (relay) */
    LC_REASON_COUNT
};

/* Return the snake_case name of a close reason ("hs_timeout", ...). */
const char *link_close_reason_name(enum link_close_reason r);

#endif
