/* send.c - sending: client_send_cb, destination lookups, and the pump that
 * wraps fragments onto the main chain, burst-wise on an idle handle;
 * constant rate (exactly constant_rate cells a second on each line's
 * chain, cover filling the empty slots); drop and loop cover at Poisson
 * times.
 *
 * Messages go in queue order on the main chain; a message's fragments
 * may straddle a chain replacement, since the receiver reassembles by
 * message ID. The pump runs whenever something may have become sendable:
 * a message was added or sealed, a chain became current (c->chain_ready_cb),
 * the link drained, the tick. Its handles follow core/timer.h, so none of
 * their callbacks runs after client_stop closed them.
 */
#include <string.h>

#include <utlist.h>

#include "chain/body.h"
#include "client/client_int.h"
#include "core/timer.h"

#define RATE_BURST 8  /* constant-rate slots made up at once after a stall */
#define PUMP_BURST 64 /* cells wrapped before the loop runs (writes, reads) */

static void on_lookup(void *arg, int err, const struct desc *d, const struct idesc *in)
{
    struct out_msg *m = arg;
    struct client *c = m->c;

    sendq_looked_up(m, err, d, in); /* seals m, or fails it: the pump goes on */
    send_pump(c);
}

/* Ask the directory for the destinations of waiting messages. */
static void send_lookups(struct client *c)
{
    struct out_msg *m, *tmp;

    DL_FOREACH_SAFE(c->queue, m, tmp)
    {
        int rc;

        if (c->n_lookups >= LOOKUPS_MAX)
            return;
        if (m->state != OM_WAIT || m->blob)
            continue;
        rc = dir_lookup(c->n->dir, m->dest, on_lookup, m);
        if (rc) {
            sendq_fail(m, ovl_strerror(rc));
            continue;
        }
        m->state = OM_LOOKUP;
        c->n_lookups++;
    }
}

/* The link of line's chain, when the chain is ready and the link takes a
 * cell now (cover and constant rate send only then), else NULL. */
static struct link *ready_link(struct client *c, const struct cline *line)
{
    struct cchain *ch = line->current;
    struct link *l = ch ? link_by_serial(c->n, ch->link_serial) : NULL;

    return l && ch->state == CCH_READY && link_can_send(l, 1) ? l : NULL;
}

/* Send one cover cell (BODY_DROP or BODY_LOOP) on ch over l if the node's
 * cover budget allows (node_cover_allowed). 0 when sent. */
static int cover_send(struct client *c, struct cchain *ch, struct link *l, uint8_t cmd)
{
    uint8_t body[ONION_BODY] = {0};
    int rc;

    if (!node_cover_allowed(c->n)) {
        c->st.cover_skipped++;
        return OVL_ENOMEM; /* the budget is a cap */
    }
    body_hdr_put(body, cmd, 0);
    rc = cchain_fwd_send(ch, l, ch->length, body);
    if (rc == 0) {
        c->st.cover_out++;
        c->n->ctr.cover_out++;
    }
    return rc;
}

/* Wrap the next fragment of m and send it on ch over l. */
static int send_frag(struct cchain *ch, struct link *l, struct out_msg *m)
{
    uint8_t body[ONION_BODY];
    size_t flen;
    int rc;

    memset(body, 0, sizeof(body));
    flen =
        msg_frag_build(body + BODY_HDR + OVL_ED25519_PK, m->id, m->blob, m->blob_len, m->next_frag);
    body_hdr_put(body, BODY_DELIVER, (uint16_t)(OVL_ED25519_PK + flen));
    memcpy(body + BODY_HDR, m->dest, OVL_ED25519_PK);
    rc = cchain_fwd_send(ch, l, ch->length, body);
    ovl_wipe(body, sizeof(body));
    if (rc)
        return rc;
    if (m->next_frag == 0) {
        m->resent = m->sent_us != 0;
        m->sent_us = clock_now_us();
    }
    m->next_frag++;
    m->chain_serial = ch->serial;
    return 0;
}

/* Send the next fragment of the first message if it is ready: 1 when a
 * cell left, 0 when there was nothing to send, else the error. */
static int send_next(struct client *c, struct cchain *ch, struct link *l)
{
    struct out_msg *m = c->queue;
    int rc;

    if (!m || m->state != OM_READY)
        return 0;
    if (cchain_crosses(ch, m->dest)) {
        /* It waits for a chain without its destination; so does the queue
         * behind it, as order is kept. */
        cchain_avoid(&c->main, m->dest);
        return 0;
    }
    if (m->next_frag < m->nfrags) {
        rc = send_frag(ch, l, m);
        if (rc)
            return rc;
    }
    if (m->next_frag == m->nfrags) {
        c->st.messages_sent++;
        ch->messages++;
        sendq_await(m);
        send_lookups(c);
    }
    return 1;
}

static void on_cover(uv_timer_t *t);

/* Arm cover timer t (c->cover or c->loop) for its next gap: exponential
 * with the configured mean, so the cells leave at Poisson times. A gap
 * drawn as 0 waits 1 ms: libuv runs a timer re-armed for 0 ms from its own
 * callback again before any I/O. */
static void cover_arm(struct client *c, uv_timer_t *t)
{
    uint32_t mean = t == c->loop ? c->o.loop_interval_ms : c->o.cover_interval_ms;
    uint32_t gap = ovl_random_exp_ms(mean);

    uv_timer_start(t, on_cover, gap ? gap : 1, 0);
}

/* Drop cover (Loopix): a cell only the exit can tell from a real one,
 * sent on the main chain (loop cover: one the exit sends back). It is
 * skipped, not queued, when the link is full. */
static void on_cover(uv_timer_t *t)
{
    struct client *c = t->data;
    struct link *l = ready_link(c, &c->main);
    bool loop = t == c->loop;

    if (l && cover_send(c, c->main.current, l, loop ? BODY_LOOP : BODY_DROP) == 0)
        c->st.loops_out += loop;
    cover_arm(c, t);
}

/* One constant-rate slot on line's chain: a waiting fragment (the main
 * line), else a stream's frame, else cover. */
static void rate_slot(struct client *c, struct cline *line)
{
    struct link *l = ready_link(c, line);
    struct cchain *ch = line->current;
    int rc = 0;

    if (!l) {
        c->st.rate_missed += line == &c->main;
        return;
    }
    if (line == &c->main)
        rc = send_next(c, ch, l);
    if (rc == 0 && socks_slot(line))
        rc = 1; /* a stream's frame took the slot */
    if (rc == 0)
        (void)cover_send(c, ch, l, BODY_DROP); /* skipped over budget */
    else if (rc < 0 && rc != OVL_EAGAIN)
        cchain_fail(ch, ovl_strerror(rc), true);
}

/* Constant rate: each line's chain carries exactly constant_rate cells a
 * second, a waiting fragment or stream frame in each slot if there is
 * one, cover otherwise; real cells wait (messages in the send queue,
 * bounded by send_queue; streams in their rings), never dropped. */
static void on_rate(uv_timer_t *t)
{
    struct client *c = t->data;
    uint64_t due = (clock_now_ms() - c->rate_t0) * c->o.constant_rate / 1000;
    struct cline *line, *tmp;

    if (due - c->rate_sent > RATE_BURST) /* the loop stalled: do not burst */
        c->rate_sent = due - RATE_BURST;
    for (; c->rate_sent < due; c->rate_sent++) {
        DL_FOREACH_SAFE(c->lines, line, tmp)
        {
            rate_slot(c, line);
        }
    }
}

static void on_pump(uv_idle_t *h)
{
    uv_idle_stop(h);
    send_pump(h->data);
}

/* Send what can be sent: queue order, main chain, while the link takes
 * cells; the link's drained() brings us back. The streams follow, those
 * of the main line only when the messages left room. With constant_rate
 * the rate timer sends instead. */
void send_pump(struct client *c)
{
    struct cchain *ch;
    struct link *l;
    int rc;

    if (c->flags & CF_STOPPED)
        return;
    send_lookups(c);
    ch = c->main.current;
    if (!ch)
        cchain_maybe_build(c);
    if (c->o.constant_rate)
        return;
    l = ch ? link_by_serial(c->n, ch->link_serial) : NULL;
    if (!l) {
        socks_pump(c, false); /* no link: its link_closed() fails the chain */
        return;
    }
    /* No link_can_send() check first: only an OVL_EAGAIN from link_send
     * arms the drained() callback that resumes us. A burst ends after
     * PUMP_BURST cells so the link writes them while we wrap the next:
     * wrapping a whole 1 MB message first left every hop idle for
     * milliseconds, and the loop deaf as long. */
    for (unsigned k = 0; (rc = send_next(c, ch, l)) > 0;)
        if (++k == PUMP_BURST) {
            /* An idle handle, not a 0 ms timer: libuv 1.44 runs a timer
             * re-armed for now again in the same pass, before any I/O. */
            uv_idle_start(c->pump, on_pump);
            return;
        }
    if (rc < 0 && rc != OVL_EAGAIN)
        cchain_fail(ch, ovl_strerror(rc), true);
    socks_pump(c, rc == 0); /* where the messages left room, the streams take it */
}

int send_open(struct client *c)
{
    uv_loop_t *loop = c->n->loop;

    c->pump = idle_new(loop, c);
    if (!c->pump)
        return OVL_ENOMEM;
    if (c->o.cover_interval_ms && !(c->cover = timer_new(loop, c)))
        return OVL_ENOMEM;
    if (c->o.loop_interval_ms && !(c->loop = timer_new(loop, c)))
        return OVL_ENOMEM;
    if (c->o.constant_rate && !(c->rate = timer_new(loop, c)))
        return OVL_ENOMEM;
    return 0;
}

void send_start(struct client *c)
{
    if (c->cover)
        cover_arm(c, c->cover);
    if (c->loop)
        cover_arm(c, c->loop);
    if (c->rate) {
        uint64_t period = 1000 / c->o.constant_rate;

        c->rate_t0 = clock_now_ms();
        uv_timer_start(c->rate, on_rate, period ? period : 1, period ? period : 1);
    }
}

/* Allocate the timers o needs that are not there yet; see client_int.h. */
int send_plan(struct client *c, const struct client_opts *o, struct send_plan *p)
{
    uv_loop_t *loop = c->n->loop;

    *p = (struct send_plan){0};
    if ((o->cover_interval_ms && !c->cover && !(p->cover = timer_new(loop, c))) ||
        (o->loop_interval_ms && !c->loop && !(p->loop = timer_new(loop, c))) ||
        (o->constant_rate && !c->rate && !(p->rate = timer_new(loop, c)))) {
        send_unplan(p);
        return OVL_ENOMEM;
    }
    return 0;
}

/* Free what send_plan allocated and send_commit did not take. */
void send_unplan(struct send_plan *p)
{
    timer_close(&p->cover);
    timer_close(&p->loop);
    timer_close(&p->rate);
}

/* Put timer *t (planned: *plan) in place for a mean of mean ms, 0 off:
 * closed when off, re-armed when new or when the mean changed. */
static void cover_set(struct client *c, uv_timer_t **t, uv_timer_t **plan, uint32_t mean,
                      uint32_t was)
{
    if (!mean) {
        timer_close(t);
        return;
    }
    if (*plan) {
        *t = *plan;
        *plan = NULL;
    } else if (mean == was) {
        return; /* running with the same mean: its next gap stands */
    }
    cover_arm(c, *t);
}

/* Take o's cover and constant rate with the timers of p; see client_int.h. */
void send_commit(struct client *c, const struct client_opts *o, struct send_plan *p)
{
    uint32_t cover = c->o.cover_interval_ms, loop = c->o.loop_interval_ms;
    uint32_t rate = c->o.constant_rate;

    c->o.cover_interval_ms = o->cover_interval_ms;
    c->o.loop_interval_ms = o->loop_interval_ms;
    c->o.constant_rate = o->constant_rate;
    cover_set(c, &c->cover, &p->cover, o->cover_interval_ms, cover);
    cover_set(c, &c->loop, &p->loop, o->loop_interval_ms, loop);
    if (!o->constant_rate) {
        timer_close(&c->rate);
        if (rate)
            send_pump(c); /* what waited for slots goes as the links take it */
    } else if (p->rate || rate != o->constant_rate) {
        uint64_t period = 1000 / o->constant_rate;

        if (p->rate) {
            c->rate = p->rate;
            p->rate = NULL;
        }
        c->rate_t0 = clock_now_ms();
        c->rate_sent = 0;
        uv_timer_start(c->rate, on_rate, period ? period : 1, period ? period : 1);
    }
}

void send_close(struct client *c)
{
    idle_close(&c->pump);
    timer_close(&c->cover);
    timer_close(&c->loop);
    timer_close(&c->rate);
}

int client_send(struct client *c, const uint8_t dest[OVL_ED25519_PK], const uint8_t *msg,
                size_t len, bool reply, uint8_t id[CLIENT_MSG_ID])
{
    return client_send_cb(c, dest, msg, len, reply, id, NULL, NULL);
}

int client_send_cb(struct client *c, const uint8_t dest[OVL_ED25519_PK], const uint8_t *msg,
                   size_t len, bool reply, uint8_t id[CLIENT_MSG_ID], client_sent_cb cb, void *arg)
{
    struct out_msg *m;

    if (!c || !dest || !msg || !id || len == 0 || memcmp(dest, c->n->id.pk, OVL_ED25519_PK) == 0)
        return OVL_EINVAL;
    if (c->flags & CF_STOPPED)
        return OVL_ECLOSED;
    if (c->flags & CF_COVER)
        return OVL_EPERM; /* a relay's loop cover sends nothing else */
    if (len > c->o.max_message)
        return OVL_ETOOBIG;
    if (c->n_queue >= c->o.send_queue)
        return OVL_ENOMEM;
    m = sendq_add(c, dest, msg, len, reply, cb, arg);
    if (!m)
        return OVL_ENOMEM;
    memcpy(id, m->id, CLIENT_MSG_ID);
    c->adding = m;
    c->adding_err = 0;
    send_pump(c);
    if (!c->adding)
        return c->adding_err; /* it failed at once; no callback comes */
    c->adding = NULL;
    return 0;
}
