/* bw.h - the node's bandwidth limits and accounting (docs/CONFIG.md:
 * [node] rate and burst, [relay] rate, burst, max_per_day, max_per_month
 * and accounting_start), after Tor's BandwidthRate, RelayBandwidthRate
 * and AccountingMax.
 *
 * Two scopes, each a pair of byte buckets with the scope's rate and
 * burst, one for what comes in and one for what goes out (tp_meter.h):
 *  - node (TPM_NODE): every frame any link reads or writes, handshakes
 *    and directory traffic included, 2 bytes of framing each;
 *  - relay (TPM_RELAY): the cells of chains through this relay, each
 *    counted once as it is read (forward or backward, bw_relay_in) and
 *    once as it is sent (forwarded, or a cell the exit sends back of its
 *    own: bw_relay_out), FRAME_CELL_LEN + 2 bytes each (the unit over
 *    QUIC too, where a cell's frame is FRAME_BOUND_LEN + 2).
 * Enforced by backpressure alone (tp_meter.h): a link whose cell finds a
 * bucket of its scope in debt stops reading until the meter's timer lets
 * it go, each link with an equal share of the tokens; an exit's stream
 * asks bw_relay_may_send before it sends and waits for the link's
 * drained() when refused, and so do the node's own streams (the SOCKS
 * front end's, a service's: bw_node_may_send). Nothing is dropped.
 *
 * Accounting (acct.h): with max_per_day or max_per_month the relay counts
 * its relay scope's bytes per period. Once the larger direction reaches a
 * maximum the node is dormant: the relay refuses new chains (SETUP_FAIL
 * limit, counted dropped_dormant) and its descriptor says DORMANT, which
 * takes it out of the bootstraps' lists and chains (docs/PROTOCOL.md
 * 15.1); chains it already carries go on until they end (their lifetime
 * caps that). At the next period it is awake again. The counts are
 * checked once a second, kept in the data directory's "accounting" file
 * every minute, on each change of state and at stop, and read at start.
 *
 * Limits change at run time (bw_apply): the buckets keep what they hold
 * within the new burst, and links held for a limit that went away read
 * again on the next loop turn.
 *
 * Cost: with no limit and no accounting the meter is off (tp_env.meter
 * NULL) and nothing is counted; once on it stays on, counting.
 */
#ifndef OVL_CORE_BW_H
#define OVL_CORE_BW_H

#include <stdbool.h>
#include <stdint.h>

#include "core/acct.h"
#include "core/cell.h"
#include "core/tp_meter.h"
#include "lib/statefile.h"

#define BW_CELL      (FRAME_CELL_LEN + OVL_FRAME_LENHDR) /* a relayed cell's bytes */
#define BW_ACCT_TICK 1000                                /* ms between checks of the counts */
#define BW_ACCT_SAVE 60000                               /* ms between writes of the file */
#define BW_ACCT_FILE "accounting"

/* What the config sets; all zero is no limit and no accounting. */
struct bw_opts {
    uint64_t rate[TPM_SCOPES];  /* bytes per second; 0 = none */
    uint64_t burst[TPM_SCOPES]; /* bytes; 0 = one second of rate */
    struct acct_opts acct;      /* [relay] max_per_day, max_per_month, accounting_start */
};

/* Bits of struct bw's flags. */
enum {
    BW_F_METER = 1u << 0,   /* the meter is set up (and env->meter points at it) */
    BW_F_DORMANT = 1u << 1, /* an accounting period's bytes are spent */
    BW_F_DIRTY = 1u << 2,   /* counts changed since the file was last written */
    BW_F_READ = 1u << 3,    /* the file was read (at bw_init) */
};

struct bw {
    struct tp_env *env;
    const struct ovl_log *log;
    struct bw_opts o;
    unsigned flags;
    struct tp_meter meter;
    struct acct acct;
    struct statefile file;
    uint8_t *saved; /* the file as read at start (malloc'd), for accounting turned on later */
    size_t saved_len;
    uv_timer_t *acct_timer; /* every BW_ACCT_TICK while accounting is on */
    uint64_t acct_seen[2];  /* the relay scope's bytes already counted */
    uint64_t acct_saved_ms; /* when the file was last written (loop clock) */
    uint64_t dormant_count; /* times the node went dormant */
};

/* Prepare b for the node's transports (env) and read the accounting file
 * from state_dir (NULL: none), before the loop runs. OVL_ENOMEM. */
int bw_init(struct bw *b, struct tp_env *env, const struct ovl_log *log,
            const char *state_dir) OVL_WUR;

/* Apply o now (at start, and from a reload): rates, bursts and accounting
 * (a changed accounting_start starts both periods afresh). 0 or
 * OVL_ENOMEM (then the old settings stay). */
int bw_apply(struct bw *b, const struct bw_opts *o) OVL_WUR;

/* Write the accounting file and stop the timers; the links are closing. */
void bw_stop(struct bw *b);

/* Free what is left once the loop has ended (after the file's write). */
void bw_free(struct bw *b);

/* Return true while an accounting period's bytes are spent. */
static inline bool bw_dormant(const struct bw *b)
{
    return (b->flags & BW_F_DORMANT) != 0;
}

/* Return the smallest rate that caps relayed traffic (bytes per second),
 * 0 when none does: what the descriptor's capacity may claim at most. */
uint64_t bw_cap_rate(const struct bw *b);

/* A relayed cell was read from the transport from. */
static inline void bw_relay_in(struct tp_env *env, struct transport *from)
{
    if (env->meter)
        tp_meter_charge(env->meter, from, TPM_RELAY, TPM_IN, BW_CELL);
}

/* A relayed cell was sent; from is the transport its cause was read on
 * (NULL: the exit's own, asked with bw_relay_may_send). */
static inline void bw_relay_out(struct tp_env *env, struct transport *from)
{
    if (env->meter)
        tp_meter_charge(env->meter, from, TPM_RELAY, TPM_OUT, BW_CELL);
}

/* Return true when the relay (and node) may send a cell of its own on t
 * now; else t's drained() comes when it may. */
static inline bool bw_relay_may_send(struct tp_env *env, struct transport *t)
{
    return !env->meter || !t ||
           tp_meter_may_send(env->meter, t, (1u << TPM_RELAY) | (1u << TPM_NODE));
}

/* The same for the node's own streams (its SOCKS front end, services):
 * true when the node may send a cell on t now. */
static inline bool bw_node_may_send(struct tp_env *env, struct transport *t)
{
    return !env->meter || !t || tp_meter_may_send(env->meter, t, 1u << TPM_NODE);
}

#endif
