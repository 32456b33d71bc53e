/* tp_meter.c - the bandwidth meter the transports share (tp_meter.h):
 * charging, holding, the wait list, the timer that refills and lets go.
 *
 * It builds on transport.h alone (tp_hold, tp_emit_drain, the ops), so
 * transport.c can call it per frame and nothing here calls transport.c.
 */
#include <string.h>

#include "core/timer.h"
#include "core/tp_meter.h"

#define TPM_ALL       ((1u << TPM_SCOPES) - 1)
#define TPM_UNLIMITED ((int64_t)OVL_TB_MAX) /* the share of a transport no limit holds */

static void tpm_tick(uv_timer_t *timer);

static unsigned tpm_scopes(const struct transport *t)
{
    return (t->mflags / TPM_T_SCOPE) & TPM_ALL;
}

/* What a scope lets go at once: 1/64 s of its rate, within bounds. */
static uint64_t tpm_quantum(const struct tp_meter *m, unsigned s)
{
    const struct ovl_tbucket *b = &m->b[s][TPM_IN];
    uint64_t q = b->rate / 64;

    q = q < TPM_QUANTUM_MIN ? TPM_QUANTUM_MIN : q;
    return q > b->burst ? b->burst : q;
}

static void tpm_refill(struct tp_meter *m, unsigned s, uint64_t now)
{
    if (m->limited & (1u << s)) {
        ovl_tb_refill(&m->b[s][TPM_IN], now);
        ovl_tb_refill(&m->b[s][TPM_OUT], now);
    }
}

/* True when a bucket of scope s owes bytes. */
static bool tpm_owes(const struct tp_meter *m, unsigned s)
{
    return ovl_tb_empty(&m->b[s][TPM_IN]) || ovl_tb_empty(&m->b[s][TPM_OUT]);
}

/* True when scope s may let its transports go: no limit, or a quantum in
 * both buckets. */
static bool tpm_ready(const struct tp_meter *m, unsigned s)
{
    int64_t q;

    if (!(m->limited & (1u << s)))
        return true;
    q = (int64_t)tpm_quantum(m, s);
    return m->b[s][TPM_IN].tokens >= q && m->b[s][TPM_OUT].tokens >= q;
}

/* One of k transports' part of the tokens every scope in scopes holds. */
static int64_t tpm_share(const struct tp_meter *m, unsigned scopes, unsigned k)
{
    int64_t avail = TPM_UNLIMITED;

    for (unsigned s = 0; s < TPM_SCOPES; s++) {
        if (!(scopes & m->limited & (1u << s)))
            continue;
        for (unsigned d = 0; d < 2; d++)
            if (m->b[s][d].tokens < avail)
                avail = m->b[s][d].tokens;
    }
    avail /= k ? k : 1;
    return avail < (int64_t)TPM_QUANTUM_MIN ? (int64_t)TPM_QUANTUM_MIN : avail;
}

/* ---- the wait list ---------------------------------------------------- */

/* Count t's new scope bits (the list keeps a count per scope). */
static void tpm_add_scopes(struct tp_meter *m, struct transport *t, unsigned scopes)
{
    unsigned fresh = scopes & ~tpm_scopes(t);

    t->mflags |= scopes * TPM_T_SCOPE;
    if (!(t->mflags & TPM_T_LISTED))
        return;
    for (unsigned s = 0; s < TPM_SCOPES; s++)
        m->n_scope[s] += (fresh >> s) & 1u;
}

static void tpm_list(struct tp_meter *m, struct transport *t)
{
    if (t->mflags & TPM_T_LISTED)
        return;
    t->mflags |= TPM_T_LISTED;
    t->mnext = NULL;
    t->mprev = m->tail;
    if (m->tail)
        m->tail->mnext = t;
    else
        m->head = t;
    m->tail = t;
    m->n_wait++;
    for (unsigned s = 0; s < TPM_SCOPES; s++)
        m->n_scope[s] += (tpm_scopes(t) >> s) & 1u;
}

static void tpm_unlist(struct tp_meter *m, struct transport *t)
{
    if (!(t->mflags & TPM_T_LISTED))
        return;
    if (t->mprev)
        t->mprev->mnext = t->mnext;
    else
        m->head = t->mnext;
    if (t->mnext)
        t->mnext->mprev = t->mprev;
    else
        m->tail = t->mprev;
    t->mprev = t->mnext = NULL;
    t->mflags &= ~TPM_T_LISTED;
    m->n_wait--;
    for (unsigned s = 0; s < TPM_SCOPES; s++)
        m->n_scope[s] -= (tpm_scopes(t) >> s) & 1u;
}

/* ---- the timer -------------------------------------------------------- */

/* When scope s will hold a quantum in both buckets, from now. */
static uint64_t tpm_due(const struct tp_meter *m, unsigned s, uint64_t now)
{
    uint64_t q = tpm_quantum(m, s), due = 0;

    for (unsigned d = 0; d < 2; d++) {
        const struct ovl_tbucket *b = &m->b[s][d];
        uint64_t at = b->last_ms + ovl_tb_wait_ms(b, q);

        due = at > due ? at : due;
    }
    return due > now ? due - now : 0;
}

/* Aim the timer at the first scope a waiter needs that fills, or at one
 * quantum on while a scope is measured; stop it when neither. */
static void tpm_arm(struct tp_meter *m)
{
    uint64_t now = uv_now(m->loop), delay = UINT64_MAX;

    for (unsigned s = 0; s < TPM_SCOPES; s++) {
        uint64_t d = UINT64_MAX;

        if (m->n_scope[s])
            d = (m->limited & (1u << s)) ? tpm_due(m, s, now) : 0;
        else if (m->mark[s].on)
            d = tpm_quantum(m, s) * 1000 / (m->b[s][TPM_IN].rate ? m->b[s][TPM_IN].rate : 1);
        delay = d < delay ? d : delay;
    }
    if (delay == UINT64_MAX) {
        uv_timer_stop(m->timer);
        return;
    }
    delay = delay ? delay : 1; /* never a turn of the loop spent on a rounding */
    if (uv_is_active((uv_handle_t *)m->timer) && uv_timer_get_due_in(m->timer) <= delay)
        return;
    uv_timer_start(m->timer, tpm_tick, delay, 0);
}

/* Close the tick interval of each measured scope: it counts as limited
 * when a transport waited for the scope in it; a scope that held nothing
 * back in a whole interval is no longer measured. */
static void tpm_measure(struct tp_meter *m, uint64_t now)
{
    for (unsigned s = 0; s < TPM_SCOPES; s++) {
        struct tp_meter_stats *st = &m->st[s];
        struct tpm_mark *mk = &m->mark[s];

        if (!mk->on)
            continue;
        if (!mk->held && !m->n_scope[s]) {
            mk->on = false;
            continue;
        }
        st->limited_ms += now - mk->since_ms;
        for (unsigned d = 0; d < 2; d++) {
            st->limited_bytes[d] += st->bytes[d] - mk->bytes[d];
            mk->bytes[d] = st->bytes[d];
        }
        mk->since_ms = now;
        mk->held = false;
    }
}

/* Let t go with a share: read again, or tell its sender (drain). */
static void tpm_let_go(struct transport *t, int64_t share)
{
    unsigned why = t->mflags & (TPM_T_READ | TPM_T_SEND);

    t->mflags = (t->mflags & ~(TPM_T_READ | TPM_T_SEND)) | TPM_T_SHARE;
    t->mshare = share;
    if (why & TPM_T_READ)
        tp_hold(t, TP_F_THROTTLED, false);
    if (why & TPM_T_SEND) {
        /* Asked for only now, so that a queue flushed meanwhile did not
         * wake the sender for nothing; a queue still over half drains
         * by itself. */
        t->flags |= TP_F_WANT_DRAIN;
        tp_emit_drain(t, tp_queued(t), tp_sendq_max(t));
    }
}

/* Let the waiters whose scopes are ready go, oldest first, each with an
 * equal share; the others keep their turn. A drain() may send (and hold
 * transports again, behind the rest) or close any transport: the list is
 * read afresh each step, and at most as many steps as it held are taken. */
static void tpm_release(struct tp_meter *m)
{
    unsigned ready = 0, k = 0;
    struct transport *t;

    for (unsigned s = 0; s < TPM_SCOPES; s++)
        ready |= tpm_ready(m, s) ? 1u << s : 0;
    for (t = m->head; t; t = t->mnext)
        k += (tpm_scopes(t) & ~ready) == 0;
    m->last_k = k ? k : m->last_k;
    for (unsigned i = m->n_wait; i > 0 && k > 0 && (t = m->head) != NULL; i--) {
        unsigned sc = tpm_scopes(t);

        tpm_unlist(m, t);
        if (sc & ~ready) {
            tpm_list(m, t); /* to the back, in the order they were */
            continue;
        }
        tpm_let_go(t, tpm_share(m, sc, k));
    }
}

static void tpm_tick(uv_timer_t *timer)
{
    struct tp_meter *m = timer->data;
    uint64_t now = uv_now(m->loop);

    for (unsigned s = 0; s < TPM_SCOPES; s++)
        tpm_refill(m, s, now);
    tpm_measure(m, now);
    tpm_release(m);
    tpm_arm(m);
}

/* ---- holding ---------------------------------------------------------- */

/* t waits for scopes: its reads are held (why TPM_T_READ) or a sender
 * waits (TPM_T_SEND). A closing transport is left alone: it is forgotten. */
static void tpm_hold(struct tp_meter *m, struct transport *t, unsigned scopes, unsigned why)
{
    uint64_t now = uv_now(m->loop);

    if (tp_is_closing(t))
        return;
    for (unsigned s = 0; s < TPM_SCOPES; s++) {
        struct tpm_mark *mk = &m->mark[s];

        if (!(scopes & (1u << s)))
            continue;
        m->st[s].holds++;
        if (!mk->on) {
            mk->on = true;
            mk->since_ms = now;
            memcpy(mk->bytes, m->st[s].bytes, sizeof(mk->bytes));
        }
        mk->held = true;
    }
    tpm_add_scopes(m, t, scopes);
    t->mflags |= why;
    tpm_list(m, t);
    if (why & TPM_T_READ)
        tp_hold(t, TP_F_THROTTLED, true);
    tpm_arm(m);
}

/* t read past its share: while others wait, or were let go with it and
 * may not have read yet, it waits behind them; alone it goes on with a
 * new share. */
static void tpm_share_used(struct tp_meter *m, struct transport *t)
{
    unsigned sc = tpm_scopes(t);

    if (!m->n_wait && m->last_k <= 1) {
        t->mshare = tpm_share(m, sc, 1);
        return;
    }
    tpm_hold(m, t, sc ? sc : 1u << TPM_NODE, TPM_T_READ);
}

void tp_meter_frame(struct tp_meter *m, struct transport *t, size_t n)
{
    m->st[TPM_NODE].bytes[TPM_IN] += n;
    t->mshare -= (int64_t)n;
    if (m->limited & (1u << TPM_NODE)) {
        tpm_refill(m, TPM_NODE, uv_now(m->loop));
        ovl_tb_charge(&m->b[TPM_NODE][TPM_IN], n);
        if (tpm_owes(m, TPM_NODE)) {
            tpm_hold(m, t, 1u << TPM_NODE, TPM_T_READ);
            return;
        }
    }
    if ((t->mflags & (TPM_T_SHARE | TPM_T_READ)) == TPM_T_SHARE && t->mshare <= 0)
        tpm_share_used(m, t);
}

void tp_meter_sent(struct tp_meter *m, size_t n)
{
    m->st[TPM_NODE].bytes[TPM_OUT] += n;
    if (m->limited & (1u << TPM_NODE)) {
        tpm_refill(m, TPM_NODE, uv_now(m->loop));
        ovl_tb_charge(&m->b[TPM_NODE][TPM_OUT], n);
    }
}

void tp_meter_charge(struct tp_meter *m, struct transport *t, unsigned scope, unsigned dir,
                     size_t n)
{
    if (scope >= TPM_SCOPES || dir > TPM_OUT)
        return;
    m->st[scope].bytes[dir] += n;
    if (!(m->limited & (1u << scope)))
        return;
    tpm_refill(m, scope, uv_now(m->loop));
    ovl_tb_charge(&m->b[scope][dir], n);
    if (t && tpm_owes(m, scope))
        tpm_hold(m, t, 1u << scope, TPM_T_READ);
}

bool tp_meter_may_send(struct tp_meter *m, struct transport *t, unsigned scopes)
{
    uint64_t now = uv_now(m->loop);
    unsigned owes = 0;

    for (unsigned s = 0; s < TPM_SCOPES; s++) {
        if (!(scopes & m->limited & (1u << s)))
            continue;
        tpm_refill(m, s, now);
        owes |= ovl_tb_empty(&m->b[s][TPM_OUT]) ? 1u << s : 0;
    }
    if (!owes)
        return true;
    tpm_hold(m, t, owes, TPM_T_SEND);
    return false;
}

void tp_meter_forget(struct tp_meter *m, struct transport *t)
{
    tpm_unlist(m, t);
    t->mflags = 0;
}

/* ---- life ------------------------------------------------------------- */

int tp_meter_init(struct tp_meter *m, uv_loop_t *loop)
{
    memset(m, 0, sizeof(*m));
    m->loop = loop;
    m->timer = timer_new(loop, m);
    if (!m->timer)
        return OVL_ENOMEM;
    uv_unref((uv_handle_t *)m->timer); /* the transports keep the loop alive */
    for (unsigned s = 0; s < TPM_SCOPES; s++)
        for (unsigned d = 0; d < 2; d++)
            ovl_tb_set(&m->b[s][d], 0, 0, uv_now(loop));
    return 0;
}

void tp_meter_set(struct tp_meter *m, unsigned scope, uint64_t rate, uint64_t burst)
{
    uint64_t now = uv_now(m->loop);

    if (scope >= TPM_SCOPES)
        return;
    for (unsigned d = 0; d < 2; d++)
        ovl_tb_set(&m->b[scope][d], rate, burst, now);
    if (m->b[scope][TPM_IN].rate) {
        m->limited |= 1u << scope;
    } else {
        m->limited &= ~(1u << scope);
        m->mark[scope].on = false;
    }
    if (m->timer)
        tpm_arm(m); /* waiters a lifted limit frees go on the next turn */
}

void tp_meter_close(struct tp_meter *m)
{
    struct transport *t;

    while ((t = m->head) != NULL) {
        unsigned why = t->mflags & TPM_T_READ;

        tp_meter_forget(m, t);
        if (why)
            tp_hold(t, TP_F_THROTTLED, false);
    }
    timer_close(&m->timer);
}
