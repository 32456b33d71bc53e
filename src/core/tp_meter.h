/* tp_meter.h - the bandwidth meter every transport shares: byte buckets
 * (lib/bucket.h) per scope and direction, the transports they hold back,
 * and the timer that lets them go again. core/bw.h sets one up for the
 * node and says what the scopes mean; this file is only the mechanism.
 *
 * Counting. Scope TPM_NODE counts every frame a transport hands its owner
 * (tp_deframe) and every frame it queues (tp_count_sent), each with its
 * 2-byte length. The other scope counts what its owner charges
 * (tp_meter_charge: the relay's cells). Each scope has one bucket per
 * direction, both with the scope's rate and burst; a scope without a rate
 * only counts.
 *
 * Holding. Nothing is ever dropped: a transport that delivers a frame
 * while a bucket of a scope it uses owes bytes stops reading at once
 * (tp_hold with TP_F_THROTTLED: what it read waits in it, and the kernel's
 * or QUIC's flow control holds the peer back), and joins the wait list. A
 * charge on the way out that overdraws a bucket holds the transport the
 * cell came from (tp_meter_charge with its transport); one with none (a
 * node sending of its own accord) asks tp_meter_may_send first and, when
 * refused, waits on the list for the drain() that tokens back bring, as
 * for a full queue.
 *
 * Letting go. The timer refills the buckets from the loop's clock (no
 * clock read per frame) and, once every bucket a waiting transport needs
 * holds a quantum (1/64 s of the rate, at least 4 KiB, at most the
 * burst), takes it off the list, in the order they came, each with an
 * equal share of the tokens. A transport that used up its share while
 * others wait is held again behind them: so one busy link cannot starve
 * the others, and each gets about the rate divided by the links that
 * want more than their share.
 *
 * Time limited (stats): the timer also measures, per scope, the time the
 * scope held any transport back (a tick interval counts when some
 * transport of the scope waited in it) and the bytes counted meanwhile,
 * so that limited_bytes / limited_ms is the rate the limit let through,
 * on the node's own clock.
 */
#ifndef OVL_CORE_TP_METER_H
#define OVL_CORE_TP_METER_H

#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

#include "core/transport.h"
#include "lib/bucket.h"

enum tpm_scope { TPM_NODE = 0, TPM_RELAY = 1, TPM_SCOPES };
enum tpm_dir { TPM_IN = 0, TPM_OUT = 1 };

/* Bits of transport.mflags (tp_meter.c's alone). */
enum {
    TPM_T_LISTED = 1u << 0, /* on the wait list */
    TPM_T_READ = 1u << 1,   /* its reads are held (TP_F_THROTTLED) */
    TPM_T_SEND = 1u << 2,   /* a sender waits for its drain() */
    TPM_T_SHARE = 1u << 3,  /* it was let go with a share (mshare) */
    TPM_T_SCOPE = 1u << 4,  /* TPM_T_SCOPE << s: it waits for scope s */
};

#define TPM_QUANTUM_MIN 4096u /* a quantum and a share are at least this */

struct tp_meter_stats {
    uint64_t bytes[2];         /* counted in, out */
    uint64_t holds;            /* times a transport was held for this scope */
    uint64_t limited_ms;       /* time this scope held traffic back */
    uint64_t limited_bytes[2]; /* bytes counted during that time */
};

/* A scope's measure of the time it holds traffic back (the stats). */
struct tpm_mark {
    bool on;           /* measuring: the scope held something back lately */
    bool held;         /* a transport was held for the scope since since_ms */
    uint64_t since_ms; /* the tick interval being measured began */
    uint64_t bytes[2]; /* the scope's stats bytes then */
};

struct tp_meter {
    uv_loop_t *loop;
    uv_timer_t *timer; /* core/timer.h; armed while a transport waits or a scope is measured */
    struct ovl_tbucket b[TPM_SCOPES][2];
    struct transport *head, *tail; /* waiting, oldest first */
    unsigned n_wait;
    unsigned n_scope[TPM_SCOPES]; /* of those, waiting for scope s */
    unsigned limited;             /* bit s: scope s has a rate */
    unsigned last_k;              /* transports the last release let go together */
    struct tpm_mark mark[TPM_SCOPES];
    struct tp_meter_stats st[TPM_SCOPES];
};

/* Prepare m on loop, without limits. OVL_ENOMEM. */
int tp_meter_init(struct tp_meter *m, uv_loop_t *loop) OVL_WUR;

/* Let every waiting transport go and close the timer; m may be set up
 * again with tp_meter_init. */
void tp_meter_close(struct tp_meter *m);

/* Set scope's rate (bytes per second; 0: count only) and burst (bytes; 0:
 * one second of rate) now, on a running meter: the buckets keep what
 * they hold within the new burst, and transports waiting for a limit
 * that went away are let go on the next loop turn. */
void tp_meter_set(struct tp_meter *m, unsigned scope, uint64_t rate, uint64_t burst);

/* Return how many transports wait now. */
static inline unsigned tp_meter_waiting(const struct tp_meter *m)
{
    return m->n_wait;
}

/* For a transport's reads: how many of room bytes t should read now, so
 * that little waits in it once the meter holds it (a byte stream that
 * reads more than it may deliver must keep the rest): what the incoming
 * buckets of the limited scopes and t's share allow, at least one whole
 * frame. No refill: a stale count only makes a read smaller. */
static inline size_t tp_meter_read_room(const struct tp_meter *m, const struct transport *t,
                                        size_t room)
{
    int64_t may = INT64_MAX;

    for (unsigned s = 0; s < TPM_SCOPES; s++)
        if ((m->limited & (1u << s)) && m->b[s][TPM_IN].tokens < may)
            may = m->b[s][TPM_IN].tokens;
    if ((t->mflags & TPM_T_SHARE) && t->mshare < may)
        may = t->mshare;
    if (may < (int64_t)(OVL_FRAME_MAX + OVL_FRAME_LENHDR))
        may = OVL_FRAME_MAX + OVL_FRAME_LENHDR;
    return (uint64_t)may < room ? (size_t)may : room;
}

/* For transport.c: t delivered a frame of n bytes (framing included). */
void tp_meter_frame(struct tp_meter *m, struct transport *t, size_t n);

/* For transport.c: a frame of n bytes was queued. */
void tp_meter_sent(struct tp_meter *m, size_t n);

/* For transport.c: t began closing; forget it. */
void tp_meter_forget(struct tp_meter *m, struct transport *t);

/* Count n bytes in direction dir of scope; when a bucket of the scope
 * owes bytes after it, hold t's reads (t may be NULL: count only). */
void tp_meter_charge(struct tp_meter *m, struct transport *t, unsigned scope, unsigned dir,
                     size_t n);

/* Return true when the outgoing buckets of every scope in the mask (bit s
 * for scope s) hold tokens; else t waits for them: its drain() comes once
 * they do and its queue is below half. */
bool tp_meter_may_send(struct tp_meter *m, struct transport *t, unsigned scopes) OVL_WUR;

#endif
