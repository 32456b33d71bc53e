/* link.c - authenticated, encrypted links: handshake, sealing, life cycle.
 *
 * The data path per received frame is: transport -> link_on_frame ->
 * (handshake | link_recv_cell) -> dispatch_cell. A link whose transport
 * protects the frames itself (tp_binding) binds its handshake to the
 * transport's connection and neither seals nor opens a cell (LINK_F_BOUND):
 * the transport's protection is what an observer sees. No allocation and no
 * public-key operation happens per cell; cells live on the stack. A
 * cell's receipt and send are stamped with the loop's copy of the clock
 * (uv_now, at most one loop turn old), not a clock read each.
 */
#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include <utlist.h>

#include "lib/bytes.h"
#include "core/link.h"
#include "core/timer.h"

/* log2 of the node's configured ratchet interval (a power of two). */
static unsigned link_rekey_log2(const struct node *n)
{
    unsigned b = 0;

    while (b < 63 && (UINT64_C(1) << b) < n->opts.rekey_cells)
        b++;
    return b;
}

static int link_put_cell(struct link *l, const struct cell *c);
static void link_on_connected(struct transport *t);
static void link_on_frame(struct transport *t, const uint8_t *frame, size_t len);
static void link_on_drain(struct transport *t);
static void link_on_closed(struct transport *t, int err);
static int link_bind(struct link *l);

static const struct tp_cb link_tp_cb = {
    .connected = link_on_connected,
    .frame = link_on_frame,
    .drain = link_on_drain,
    .closed = link_on_closed,
};

static const char *const state_names[] = {
    [LINK_CONNECTING] = "connecting", [LINK_HANDSHAKE] = "handshake",
    [LINK_CONFIRMING] = "confirming", [LINK_OPEN] = "open",
    [LINK_CLOSING] = "closing",
};

const char *link_state_name(enum link_state s)
{
    if ((unsigned)s >= sizeof(state_names) / sizeof(state_names[0]))
        return "unknown";
    return state_names[s];
}

static const char *const reason_names[LC_REASON_COUNT] = {
    [LC_NONE] = "none",
    [LC_SHUTDOWN] = "shutdown",
    [LC_PEER_CLOSED] = "peer_closed",
    [LC_IO_ERROR] = "io_error",
    [LC_HS_TIMEOUT] = "hs_timeout",
    [LC_HS_MALFORMED] = "hs_malformed",
    [LC_HS_AUTH] = "hs_auth",
    [LC_HS_SUITE] = "hs_suite",
    [LC_HS_UNCONFIRMED] = "hs_unconfirmed",
    [LC_OVERSIZED] = "oversized",
    [LC_BAD_FRAME] = "bad_frame",
    [LC_REPLAY] = "replay",
    [LC_REORDER] = "reorder",
    [LC_TAMPERED] = "tampered",
    [LC_BAD_CELL] = "bad_cell",
    [LC_QUEUE_FULL] = "queue_full",
    [LC_LIMIT] = "limit",
    [LC_IDLE] = "idle",
    [LC_DEAD] = "dead",
    [LC_HS_LIMITED] = "hs_limited",
    [LC_HS_REPLAY] = "hs_replay",
    [LC_EVICTED] = "evicted",
    [LC_MEMORY] = "memory",
    [LC_STALLED] = "stalled",
};

const char *link_cipher_name(const struct link *l)
{
    return (l->flags & LINK_F_BOUND) ? "bound" : ovl_aead_name(l->suite);
}

const char *link_close_reason_name(enum link_close_reason r)
{
    if ((unsigned)r >= LC_REASON_COUNT || !reason_names[r])
        return "unknown";
    return reason_names[r];
}

/* Which states each state may move to (bit i: state i). A link moves
 * forward only; any state but CLOSING may close. Checked by assert only. */
#define LS(s) (1u << (s))
#ifndef NDEBUG
static const unsigned link_next_states[LINK_STATE_COUNT] = {
    [LINK_CONNECTING] = LS(LINK_HANDSHAKE) | LS(LINK_CLOSING),
    [LINK_HANDSHAKE] = LS(LINK_OPEN) | LS(LINK_CONFIRMING) | LS(LINK_CLOSING),
    [LINK_CONFIRMING] = LS(LINK_OPEN) | LS(LINK_CLOSING),
    [LINK_OPEN] = LS(LINK_CLOSING),
    [LINK_CLOSING] = 0,
};
#endif

/* Take l off the node's queue of unauthenticated inbound links, if on it. */
static void link_unqueue(struct link *l)
{
    if (!(l->flags & LINK_F_UNAUTH_IN))
        return;
    l->flags &= ~LINK_F_UNAUTH_IN;
    DL_DELETE2(l->node->unauth_in, l, unauth_prev, unauth_next);
}

/* Give back the inbound slot l holds, if any (closing or never started). */
static void link_release_slot(struct link *l)
{
    link_unqueue(l);
    if (!(l->flags & LINK_F_INBOUND))
        return;
    l->flags &= ~LINK_F_INBOUND;
    l->node->n_links_in--;
    admit_inbound_gone(l->node, l->block);
}

/* The one writer of l->state. An illegal move is a bug in this file, never
 * peer input: asserted in debug builds. A closing link holds no slot. */
static void link_set_state(struct link *l, enum link_state to)
{
    assert(to < LINK_STATE_COUNT && (link_next_states[l->state] & LS(to)));
    l->state = to;
    if (to == LINK_OPEN)
        link_unqueue(l);
    if (to == LINK_CLOSING) {
        l->node->n_closing++;
        link_release_slot(l);
    }
}

/* Close the oldest inbound link that is not authenticated yet (LC_EVICTED)
 * to make room for another; false when there is none. */
static bool link_evict(struct node *n)
{
    struct link *oldest = n->unauth_in; /* the queue's head: no walk over every link */

    if (!oldest)
        return false;
    n->ctr.links_evicted++;
    link_close(oldest, LC_EVICTED);
    return true;
}

/* Is there a slot for one more link (inbound: within its 7/8), evicting an
 * unauthenticated inbound link if that makes one? */
static bool link_room(struct node *n, bool inbound)
{
    uint32_t max = n->opts.max_links, max_in = max - max / 8;

    if (n->n_links - n->n_closing < max && (!inbound || n->n_links_in < max_in))
        return true;
    return link_evict(n);
}

struct link_alts {
    unsigned n, next;
    char uri[LINK_MAX_ALTS][OVL_URI_MAX];
};

static const struct tp_cb link_ignore_cb; /* for a transport we walked away from */

static void link_hs_timeout_cb(uv_timer_t *t);

/* The current dial failed while connecting: start the next address on the
 * same link. Return false when none is left or none starts. */
static bool link_try_next(struct link *l, int err)
{
    struct node *n = l->node;
    struct link_alts *a = l->alts;
    struct transport *nt;

    while (a && a->next < a->n) {
        const char *uri = a->uri[a->next++];

        n->ctr.dial_fallbacks++;
        log_info(&n->log, "link to %s: dial %s failed (%s), trying %s", l->peer_id, l->remote,
                 ovl_strerror(err), uri);
        snprintf(l->remote, sizeof(l->remote), "%s", uri);
        if (tp_dial(&n->tp_env, uri, &link_tp_cb, l, &nt) == 0) {
            l->tp = nt;
            uv_timer_start(l->timer, link_hs_timeout_cb, n->opts.handshake_timeout_ms, 0);
            return true;
        }
    }
    return false;
}

static void link_hs_timeout_cb(uv_timer_t *t)
{
    struct link *l = t->data;
    struct transport *old = l->tp;

    if (l->state == LINK_CONNECTING && link_try_next(l, OVL_ETIMEDOUT)) {
        tp_set_cb(old, &link_ignore_cb, NULL);
        tp_close(old);
        return;
    }
    link_close(l, LC_HS_TIMEOUT);
}

/* The live timer of an open link fired: do what link_timers says is due
 * (see link_timers.h for the policy) and aim the timer at what comes next. */
static void link_live_cb(uv_timer_t *t)
{
    struct link *l = t->data;
    struct node *n = l->node;
    struct cell ping = {.cmd = CELL_PING}, pad = {.cmd = CELL_PADDING};
    enum link_close_reason reason = LC_NONE;
    uint64_t next = 0, now = clock_now_ms();
    bool paused = (l->flags & LINK_F_PAUSED) != 0;
    unsigned due;

    if (!paused && l->tp && tp_is_throttled(l->tp)) {
        /* The bandwidth limit holds our reads: the silence is ours, and
         * the peer gets a whole window once we read again. */
        link_timers_resumed(&l->lt, now);
        paused = true;
    }
    due = link_timers_due(&l->lt, n, paused, now, &next, &reason);

    if (due & LT_CLOSE) {
        link_close(l, reason);
        return;
    }
    if ((due & LT_PING) && link_can_send(l, 1) && link_send(l, &ping) == 0)
        n->ctr.heartbeats++;
    if ((due & LT_PAD) && link_can_send(l, 1) && node_cover_allowed(n) && link_send(l, &pad) == 0) {
        n->ctr.padding_out++;
        n->ctr.cover_out++;
    }
    if (l->state == LINK_OPEN) /* else a cell could not be sealed or sent */
        uv_timer_start(t, link_live_cb, next, 0);
    if (l->tp && !tp_is_closing(l->tp))
        tp_trim(l->tp); /* what a burst left behind, once a heartbeat or so later */
}

int link_probe(struct link *l, uint32_t within_ms)
{
    struct cell ping = {.cmd = CELL_PING, .len = 8};
    uint64_t now = clock_now_ms();
    int rc;

    if (l->state != LINK_OPEN || !l->timer || !l->node->opts.heartbeat_ms)
        return OVL_EUNSUPP;
    if (l->lt.probe_ms)
        return 0;
    if (l->flags & LINK_F_PAUSED)
        return OVL_EAGAIN; /* we are not reading: no answer could be seen */
    /* The PONG echoes this: only the peer's answer to it ends the probe
     * (a peer that sends but does not read is not well). */
    st_le64(ping.payload, now);
    rc = link_send(l, &ping);
    if (rc)
        return rc;
    link_timers_probe_sent(&l->lt, now, within_ms);
    l->node->ctr.probes++;
    /* Bring the live timer forward to the probe's deadline, never back:
     * a heartbeat or dead check due sooner must still run on time. */
    if (uv_timer_get_due_in(l->timer) > l->lt.probe_within)
        uv_timer_start(l->timer, link_live_cb, l->lt.probe_within, 0);
    return 0;
}

/* Allocate a link with its timer armed for the handshake deadline. */
static struct link *link_new(struct node *n)
{
    struct link *l = calloc(1, sizeof(*l));

    if (!l)
        return NULL;
    l->timer = timer_new(n->loop, l);
    if (!l->timer) {
        free(l);
        return NULL;
    }
    uv_timer_start(l->timer, link_hs_timeout_cb, n->opts.handshake_timeout_ms, 0);
    l->node = n;
    l->serial = ++n->next_link_serial;
    l->opened_ms = clock_now_ms();
    link_timers_init(&l->lt, l->opened_ms);
    l->next = n->links;
    if (n->links)
        n->links->prev = l;
    n->links = l;
    n->n_links++;
    return l;
}

/* Unlink from the node and release everything; the transport is gone. */
static void link_free(struct link *l)
{
    struct node *n = l->node;

    timer_close(&l->timer);
    if (l->prev)
        l->prev->next = l->next;
    else
        n->links = l->next;
    if (l->next)
        l->next->prev = l->prev;
    n->n_links--;
    if (l->state == LINK_CLOSING)
        n->n_closing--;
    link_release_slot(l);
    free(l->alts);
    if (l->hs) {
        hs_wipe(l->hs);
        free(l->hs);
    }
    ovl_aead_wipe(&l->tx);
    ovl_aead_wipe(&l->rx);
    ovl_wipe(l->tx_key, sizeof(l->tx_key));
    ovl_wipe(l->rx_key, sizeof(l->rx_key));
    ovl_wipe(l->confirm, sizeof(l->confirm));
    free(l);
}

int link_dial(struct node *n, const char *uri, const uint8_t peer_pk[OVL_ED25519_PK],
              struct peer *peer, struct link **out)
{
    struct link *l;
    int rc;

    *out = NULL;
    if (n->stopping)
        return OVL_ECLOSED;
    if (!link_room(n, false)) {
        n->ctr.link_closed[LC_LIMIT]++;
        return OVL_ENOMEM;
    }
    l = link_new(n);
    if (!l)
        return OVL_ENOMEM;
    l->flags |= LINK_F_INITIATOR;
    l->peer = peer;
    memcpy(l->peer_pk, peer_pk, OVL_ED25519_PK);
    node_id_format(l->peer_id, peer_pk);
    snprintf(l->remote, sizeof(l->remote), "%s", uri);
    rc = tp_dial(&n->tp_env, uri, &link_tp_cb, l, &l->tp);
    if (rc) {
        link_free(l);
        return rc;
    }
    n->ctr.links_dialed++;
    *out = l;
    return 0;
}

/* Copy the usable addresses into a: the preferred transport's first. */
static void link_order(const struct node *n, const char uris[][OVL_URI_MAX], unsigned count,
                       struct link_alts *a)
{
    unsigned allow = n->opts.transports ? n->opts.transports : tp_all_bits();
    unsigned prefer = n->opts.prefer ? n->opts.prefer : tp_bit("tcp");
    struct ovl_uri u;

    a->n = a->next = 0;
    for (int pass = 0; pass < 2; pass++) {
        for (unsigned i = 0; i < count && a->n < LINK_MAX_ALTS; i++) {
            unsigned bit = uri_parse(&u, uris[i]) == 0 ? tp_bit(u.scheme) : 0;

            if ((bit & allow) && (bit == prefer) == (pass == 0))
                memcpy(a->uri[a->n++], uris[i], OVL_URI_MAX);
        }
    }
}

int link_dial_any(struct node *n, const char uris[][OVL_URI_MAX], unsigned count,
                  const uint8_t peer_pk[OVL_ED25519_PK], struct link **out)
{
    struct link_alts *a = malloc(sizeof(*a));
    int rc = OVL_ENOENT;

    *out = NULL;
    if (!a)
        return OVL_ENOMEM;
    link_order(n, uris, count, a);
    while (a->next < a->n) {
        rc = link_dial(n, a->uri[a->next++], peer_pk, NULL, out);
        if (rc == 0 || rc == OVL_ENOMEM || rc == OVL_ECLOSED)
            break; /* started, or the node itself refuses */
        if (a->next < a->n)
            n->ctr.dial_fallbacks++;
    }
    if (rc == 0 && a->next < a->n) {
        (*out)->alts = a;
        return 0;
    }
    free(a);
    return rc;
}

void link_accept(struct node *n, struct transport *tp)
{
    char remote[OVL_URI_MAX];
    admit_key block;
    struct link *l;

    if (tp_peer_uri(tp, remote, sizeof(remote)) != 0)
        snprintf(remote, sizeof(remote), "unknown");
    block = admit_block_of(remote);
    if (n->stopping || !link_room(n, true) || !admit_inbound(n, block))
        goto refuse;
    l = link_new(n);
    if (!l) {
        admit_inbound_gone(n, block);
        goto refuse;
    }
    l->flags |= LINK_F_INBOUND | LINK_F_UNAUTH_IN; /* its slot is given back however it ends */
    DL_APPEND2(n->unauth_in, l, unauth_prev, unauth_next);
    l->block = block;
    n->n_links_in++;
    l->tp = tp;
    l->hs = calloc(1, sizeof(*l->hs));
    if (!l->hs || hs_start_responder(l->hs, &n->link_id, n->opts.aead_suites) != 0 ||
        hs_set_rekey(l->hs, link_rekey_log2(n)) != 0 || link_bind(l) != 0) {
        link_free(l);
        goto refuse;
    }
    link_set_state(l, LINK_HANDSHAKE);
    l->flags |= LINK_F_HS_STARTED;
    tp_set_cb(tp, &link_tp_cb, l);
    memcpy(l->remote, remote, sizeof(l->remote));
    n->ctr.links_accepted++;
    return;
refuse:
    n->ctr.link_closed[LC_LIMIT]++;
    tp_close(tp);
}

/* Bind l's handshake to its transport's connection when the transport
 * protects the frames itself (tp_binding); 0, binding nothing, when it
 * does not. */
static int link_bind(struct link *l)
{
    uint8_t x[TP_BINDING_LEN];
    int rc = tp_binding(l->tp, x);

    _Static_assert(TP_BINDING_LEN == HS_BIND_LEN, "one binding length");
    if (rc == OVL_EUNSUPP)
        return 0;
    if (rc == 0)
        rc = hs_bind(l->hs, x);
    ovl_wipe(x, sizeof(x));
    return rc;
}

/* Send a frame outside the cell path (handshake messages). */
static int link_send_raw(struct link *l, const uint8_t *frame, size_t len)
{
    int rc = tp_send(l->tp, frame, len);

    if (rc == 0) {
        l->node->ctr.frames_out++;
        l->node->ctr.bytes_out += len;
        l->node->ctr.tp_bytes_out[tp_index(l->tp)] += len;
    }
    return rc;
}

static void link_on_connected(struct transport *t)
{
    struct link *l = t->udata;
    uint8_t msg[HS_INIT_LEN];
    int rc = OVL_ENOMEM;

    link_set_state(l, LINK_HANDSHAKE);
    l->flags |= LINK_F_HS_STARTED;
    l->hs = calloc(1, sizeof(*l->hs));
    if (l->hs)
        rc = hs_start_initiator(l->hs, &l->node->link_id, l->peer_pk, l->node->opts.aead_suites);
    if (rc == 0)
        rc = hs_set_rekey(l->hs, link_rekey_log2(l->node));
    if (rc == 0)
        rc = link_bind(l);
    if (rc == 0)
        rc = hs_write_init(l->hs, msg);
    if (rc == 0)
        rc = link_send_raw(l, msg, sizeof(msg));
    if (rc) {
        log_warn(&l->node->log, "link to %s: cannot start handshake: %s", l->remote,
                 ovl_strerror(rc));
        link_close(l, LC_IO_ERROR);
    }
}

static void link_on_drain(struct transport *t)
{
    struct link *l = t->udata;
    struct node *n = l->node;

    for (unsigned i = 0; i < n->n_observers && l->state == LINK_OPEN; i++)
        if (n->observers[i].drained)
            n->observers[i].drained(n->observers[i].ctx, l);
}

bool link_can_send(struct link *l, unsigned n)
{
    size_t need = (size_t)n * (FRAME_CELL_LEN + OVL_FRAME_LENHDR);

    if (l->state != LINK_OPEN || !l->tp)
        return false;
    if (tp_queued(l->tp) + need <= l->node->opts.sendq_max)
        return true;
    tp_want_drain(l->tp); /* the caller will wait for the observers' drained() */
    return false;
}

void link_pause(struct link *l)
{
    if (l->tp && l->state != LINK_CLOSING) {
        l->flags |= LINK_F_PAUSED;
        tp_pause(l->tp);
    }
}

void link_resume(struct link *l)
{
    if (l->tp && l->state != LINK_CLOSING) {
        /* What the peer sent meanwhile is still in the transport: give it
         * a full heartbeat window from now. */
        if (l->flags & LINK_F_PAUSED)
            link_timers_resumed(&l->lt, clock_now_ms());
        l->flags &= ~LINK_F_PAUSED;
        tp_resume(l->tp);
    }
}

struct link *link_by_serial(struct node *n, uint64_t serial)
{
    for (struct link *l = n->links; l; l = l->next)
        if (l->serial == serial)
            return l;
    return NULL;
}

/* Map a handshake error to the reason the link closes. */
static enum link_close_reason hs_reason(int rc)
{
    switch (rc) {
    case OVL_ECRYPTO:
        return LC_HS_AUTH;
    case OVL_EUNSUPP:
        return LC_HS_SUITE;
    default:
        return LC_HS_MALFORMED;
    }
}

/* Install the transport keys (bound: the HELLO's confirmation alone) and
 * forget the handshake. */
static int link_set_keys(struct link *l, struct hs_keys *k)
{
    int rc = 0;

    l->suite = k->suite;
    l->rekey_log2 = k->rekey_log2;
    if (k->flags & HS_F_BOUND) {
        l->flags |= LINK_F_BOUND;
        memcpy(l->confirm, k->confirm, sizeof(l->confirm));
    } else {
        memcpy(l->tx_key, k->tx, sizeof(l->tx_key));
        memcpy(l->rx_key, k->rx, sizeof(l->rx_key));
        rc = ovl_aead_init(&l->tx, k->suite, l->tx_key);
        if (rc == 0)
            rc = ovl_aead_init(&l->rx, k->suite, l->rx_key);
    }
    if (!link_is_initiator(l)) {
        memcpy(l->peer_pk, k->peer_pk, OVL_ED25519_PK);
        node_id_format(l->peer_id, k->peer_pk);
    }
    hs_keys_wipe(k);
    hs_wipe(l->hs);
    free(l->hs);
    l->hs = NULL;
    return rc;
}

/* The link is authenticated both ways: count it, switch timers, tell the peer. */
static void link_opened(struct link *l)
{
    struct node *n = l->node;

    link_set_state(l, LINK_OPEN);
    l->flags |= LINK_F_WAS_OPEN;
    if (l->flags & LINK_F_BOUND)
        tp_lanes(l->tp); /* after our HELLO, or the peer's: cells of chains may spread */
    free(l->alts);
    l->alts = NULL;
    n->ctr.handshakes_ok++;
    timer_close(&l->timer);
    link_timers_opened(&l->lt, n, clock_now_ms());
    if (n->opts.idle_timeout_ms || n->opts.heartbeat_ms || n->opts.padding_max_ms) {
        l->timer = timer_new(n->loop, l);
        if (l->timer)
            uv_timer_start(l->timer, link_live_cb, 0, 0);
    }
    log_info(&n->log, "link %s %s (%s) open, %s", link_is_initiator(l) ? "to" : "from", l->peer_id,
             l->remote, link_cipher_name(l));
    for (unsigned i = 0; i < n->n_observers && l->state == LINK_OPEN; i++)
        if (n->observers[i].opened)
            n->observers[i].opened(n->observers[i].ctx, l);
}

static void link_handshake_initiator(struct link *l, const uint8_t *frame, size_t len)
{
    struct hs_keys keys;
    struct cell hello = {.cmd = CELL_HELLO};
    int rc = hs_read_resp(l->hs, frame, len, &keys);
    bool bound;

    if (rc) {
        log_info(&l->node->log, "link to %s: handshake failed: %s", l->remote, ovl_strerror(rc));
        link_close(l, hs_reason(rc));
        return;
    }
    if (link_set_keys(l, &keys) != 0) {
        link_close(l, LC_HS_SUITE);
        return;
    }
    /* Bound, nothing is sealed: the HELLO proves our keys by what it carries. */
    if ((bound = (l->flags & LINK_F_BOUND) != 0)) {
        hello.len = HS_CONFIRM_LEN;
        memcpy(hello.payload, l->confirm, HS_CONFIRM_LEN);
        ovl_wipe(l->confirm, sizeof(l->confirm));
    }
    rc = link_put_cell(l, &hello); /* the first cell: the link opens with it */
    if (bound)
        ovl_wipe(hello.payload, HS_CONFIRM_LEN);
    if (rc != 0) {
        link_close(l, LC_IO_ERROR);
        return;
    }
    link_opened(l);
}

static void link_handshake_responder(struct link *l, const uint8_t *frame, size_t len)
{
    struct hs_keys keys;
    uint8_t msg[HS_RESP_LEN];
    int rc;

    /* Admission before any X25519: the block's rate, and replays (a
     * message 1 of any other length fails below without public-key work). */
    if (len == HS_INIT_LEN) {
        rc = admit_handshake(l->node, l->block, frame + HS_HDR_LEN);
        if (rc) {
            link_close(l, rc == OVL_EEXIST ? LC_HS_REPLAY : LC_HS_LIMITED);
            return;
        }
    }
    rc = hs_read_init(l->hs, frame, len);
    if (rc == 0) {
        admit_handshake_seen(l->node, frame + HS_HDR_LEN);
        rc = hs_write_resp(l->hs, msg, &keys);
    }
    if (rc) {
        log_info(&l->node->log, "link from %s: handshake failed: %s", l->remote, ovl_strerror(rc));
        link_close(l, hs_reason(rc));
        return;
    }
    if (link_set_keys(l, &keys) != 0) {
        link_close(l, LC_HS_SUITE);
        return;
    }
    rc = link_send_raw(l, msg, sizeof(msg));
    if (rc) {
        link_close(l, rc == OVL_EAGAIN ? LC_QUEUE_FULL : LC_IO_ERROR);
        return;
    }
    link_set_state(l, LINK_CONFIRMING);
}

/* Step a key to the generation that counter ctr belongs to (at most one step
 * per call since counters only advance by one). */
static int link_ratchet(struct link *l, struct ovl_aead *a, uint8_t key[OVL_AEAD_KEY],
                        uint64_t *epoch, uint64_t ctr)
{
    struct node *n = l->node;
    uint64_t want = ctr >> l->rekey_log2;

    if (want == *epoch)
        return 0;
    ovl_kdf_label(key, key, "ovl rekey");
    ovl_aead_wipe(a);
    *epoch = want;
    n->ctr.rekeys++;
    return ovl_aead_init(a, l->suite, key);
}

/* Check and open one sealed frame into raw: LC_NONE, or why it fails. */
static enum link_close_reason link_open_sealed(struct link *l, const uint8_t *frame, size_t len,
                                               uint8_t raw[OVL_CELL_LEN])
{
    uint64_t ctr;

    if (frame_counter(frame, len, &ctr) != 0)
        return LC_BAD_FRAME;
    if (ctr != l->rx_ctr)
        return ctr < l->rx_ctr ? LC_REPLAY : LC_REORDER;
    if (link_ratchet(l, &l->rx, l->rx_key, &l->rx_epoch, ctr) != 0 ||
        frame_open(raw, &l->rx, frame, len) != 0)
        return LC_TAMPERED;
    l->rx_ctr++;
    return LC_NONE;
}

/* The responder's first cell: the initiator's HELLO, which on a bound link
 * must carry the confirmation only the holder of its keys derives. */
static enum link_close_reason link_check_hello(struct link *l, const struct cell *c)
{
    bool ok;

    if (c->cmd != CELL_HELLO || c->chain_id != 0)
        return LC_HS_UNCONFIRMED;
    if (!(l->flags & LINK_F_BOUND))
        return LC_NONE;
    ok = c->len == HS_CONFIRM_LEN && ovl_equal(c->payload, l->confirm, HS_CONFIRM_LEN);
    ovl_wipe(l->confirm, sizeof(l->confirm));
    return ok ? LC_NONE : LC_HS_AUTH;
}

/* Check, open (unless bound) and dispatch one cell. */
static void link_recv_cell(struct link *l, const uint8_t *frame, size_t len)
{
    struct node *n = l->node;
    enum link_close_reason r = LC_NONE;
    uint8_t raw[OVL_CELL_LEN];
    const uint8_t *in = raw;
    struct cell c;

    if (l->flags & LINK_F_BOUND) {
        if ((in = frame_bound_cell(frame, len)) == NULL)
            r = LC_BAD_FRAME;
    } else {
        r = link_open_sealed(l, frame, len, raw);
    }
    if (r == LC_NONE && cell_decode(&c, in) != 0)
        r = LC_BAD_CELL;
    if (r != LC_NONE) {
        link_close(l, r);
        return;
    }
    l->cells_in++;
    n->ctr.cells_in++;
    link_timers_received(&l->lt, uv_now(n->loop));
    if (l->state == LINK_CONFIRMING) {
        if ((r = link_check_hello(l, &c)) != LC_NONE) {
            link_close(l, r);
            return;
        }
        link_opened(l);
    }
    dispatch_cell(&n->disp, l, &c);
}

static void link_on_frame(struct transport *t, const uint8_t *frame, size_t len)
{
    struct link *l = t->udata;

    l->node->ctr.frames_in++;
    l->node->ctr.bytes_in += len;
    l->node->ctr.tp_bytes_in[tp_index(t)] += len;
    switch (l->state) {
    case LINK_HANDSHAKE:
        if (link_is_initiator(l))
            link_handshake_initiator(l, frame, len);
        else
            link_handshake_responder(l, frame, len);
        break;
    case LINK_CONFIRMING:
    case LINK_OPEN:
        link_recv_cell(l, frame, len);
        break;
    default:
        break; /* closing: the transport stops delivering; connecting: impossible */
    }
}

int link_send(struct link *l, const struct cell *c)
{
    if (l->state != LINK_OPEN)
        return OVL_ECLOSED;
    return link_put_cell(l, c);
}

/* Seal c under the next counter and queue it; the keys are installed. The
 * cell is encoded where its ciphertext goes and sealed in place. A bound
 * link queues the encoded cell as it is. */
static int link_put_cell(struct link *l, const struct cell *c)
{
    struct node *n = l->node;
    uint8_t frame[FRAME_CELL_LEN];
    size_t len = FRAME_BOUND_LEN;
    int rc;

    _Static_assert(FRAME_BOUND_LEN <= FRAME_CELL_LEN, "one buffer");
    if (l->flags & LINK_F_BOUND) {
        frame[0] = FRAME_CELL_BOUND;
        rc = cell_encode(frame + 1, c);
    } else {
        len = FRAME_CELL_LEN;
        rc = cell_encode(frame + FRAME_CELL_AD, c);
        if (rc == 0)
            rc = link_ratchet(l, &l->tx, l->tx_key, &l->tx_epoch, l->tx_ctr);
        if (rc == 0)
            rc = frame_seal(frame, &l->tx, l->tx_ctr, frame + FRAME_CELL_AD);
    }
    if (rc == 0)
        rc = link_send_raw(l, frame, len);
    if (rc)
        return rc;
    l->tx_ctr++;
    l->cells_out++;
    link_timers_sent(&l->lt, c->chain_id || c->cmd > CELL_PONG, uv_now(n->loop));
    n->ctr.cells_out++;
    return 0;
}

void link_close(struct link *l, enum link_close_reason reason)
{
    if (l->state == LINK_CLOSING)
        return;
    l->reason = reason;
    link_set_state(l, LINK_CLOSING);
    timer_close(&l->timer);
    tp_close(l->tp);
}

/* The transport is gone: count why, tell the peer, free the link. */
static void link_on_closed(struct transport *t, int err)
{
    struct link *l = t->udata;
    struct node *n = l->node;
    enum link_close_reason r = l->reason;

    if (l->state == LINK_CONNECTING && link_try_next(l, err))
        return;
    if (l->state != LINK_CLOSING || r == LC_NONE) {
        r = err == OVL_ECLOSED   ? LC_PEER_CLOSED
            : err == OVL_ETOOBIG ? LC_OVERSIZED
            : err == OVL_EPROTO  ? LC_BAD_FRAME
                                 : LC_IO_ERROR;
        if (l->state == LINK_HANDSHAKE && r == LC_BAD_FRAME)
            r = LC_HS_MALFORMED;
    }
    if ((l->flags & (LINK_F_HS_STARTED | LINK_F_WAS_OPEN)) == LINK_F_HS_STARTED && r != LC_SHUTDOWN)
        n->ctr.handshakes_failed++;
    n->ctr.link_closed[r]++;
    if (r == LC_SHUTDOWN || r == LC_PEER_CLOSED)
        log_debug(&n->log, "link %s %s closed: %s", link_is_initiator(l) ? "to" : "from", l->remote,
                  link_close_reason_name(r));
    else
        log_info(&n->log, "link %s %s closed: %s (%s)", link_is_initiator(l) ? "to" : "from",
                 l->remote, link_close_reason_name(r), err ? ovl_strerror(err) : "local");
    l->tp = NULL;
    l->reason = r;
    l->close_err = err;
    if (l->state != LINK_CLOSING)
        link_set_state(l, LINK_CLOSING); /* observers' link_find() must not return it */
    for (unsigned i = 0; i < n->n_observers; i++)
        if (n->observers[i].closed)
            n->observers[i].closed(n->observers[i].ctx, l);
    link_free(l);
}

struct link *link_find(struct node *n, const uint8_t pk[OVL_ED25519_PK])
{
    struct link *l;

    for (l = n->links; l; l = l->next)
        if (l->state == LINK_OPEN && memcmp(l->peer_pk, pk, OVL_ED25519_PK) == 0)
            return l;
    return NULL;
}

static void on_padding(void *ctx, struct link *l, const struct cell *c)
{
    struct node *n = ctx;

    (void)l, (void)c; /* cover: received and dropped by design */
    n->ctr.padding_in++;
}

static void on_ping(void *ctx, struct link *l, const struct cell *c)
{
    struct cell pong = {.cmd = CELL_PONG, .len = c->len};
    int rc;

    (void)ctx;
    memcpy(pong.payload, c->payload, c->len);
    rc = link_send(l, &pong);
    /* Our queue to the peer is full: the peer is not reading, most often
     * because it holds us back (backpressure) while its heartbeat pings on.
     * The queued cells answer for the PONG once it reads again; closing
     * here would turn backpressure into a lost link. The queue's cap still
     * bounds what it costs us. */
    if (rc == OVL_EAGAIN)
        l->node->ctr.pongs_skipped++;
}

static void on_noop(void *ctx, struct link *l, const struct cell *c)
{
    (void)ctx, (void)l, (void)c; /* HELLO after confirmation */
}

/* A PONG is liveness; the one that echoes a pending probe ends it. */
static void on_pong(void *ctx, struct link *l, const struct cell *c)
{
    (void)ctx;
    link_timers_pong(&l->lt, c->payload, c->len);
}

int link_register_handlers(struct node *n)
{
    int rc = dispatch_register(&n->disp, CELL_PADDING, on_padding, n);

    if (rc == 0)
        rc = dispatch_register(&n->disp, CELL_HELLO, on_noop, n);
    if (rc == 0)
        rc = dispatch_register(&n->disp, CELL_PING, on_ping, n);
    if (rc == 0)
        rc = dispatch_register(&n->disp, CELL_PONG, on_pong, n);
    return rc;
}
