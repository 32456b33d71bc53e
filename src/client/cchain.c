/* cchain.c - the client's chains: the state machine, building a route
 * (from the bootstrap or picked locally), setup, repair (a rebuild through
 * a backup, or a splice from the hop that lost its next one), replacement
 * and retiring, teardown, and the cells coming back from the first hop.
 * Each chain serves a line (client_int.h): the line has at most one chain
 * being built and one current, its own backoff and repair plan, and with
 * CLF_EXIT every chain it builds ends at the line's exit, which never has
 * a backup (its streams live there: another exit would not know them).
 *
 * Every state change goes through cchain_set_state, which checks it
 * against the table of legal moves and sets the state's deadline, so the
 * tick (cchain_tick) only compares times. Queued messages are the send
 * queue's (sendq.c); a chain becoming current is told upward through
 * c->chain_ready_cb.
 */
#include <assert.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <utlist.h>

#include "chain/body.h"
#include "client/client_int.h"
#include "core/chanmap.h"
#include "dir/select.h"

#define BACKOFF_MAX_MS  2000 /* well inside a message's deadline */
#define LINE_FAILS_MAX  8    /* failed builds in a row that end a stream line */
#define RETIRE_GRACE_MS 2000 /* a replaced chain lingers for late backward cells */
#define INTRO_GRACE_MS                                                                             \
    15000 /* and a replaced chain to an introduction relay keeps its                               \
             cookie while senders' exits learn the new one */
#define NO_DESTROY           (-1)
#define REPLACE_AT(lifetime) ((lifetime) / 5 * 4)
#define GUARD_LIST_MS        60000 /* the guards' relay list is fetched again after this */

static void chain_cell(void *obj, struct link *l, const struct cell *cl);
static void chain_link_closed(void *obj, struct link *l, uint32_t id);

static const struct chain_owner client_chain_owner = {
    .cell = chain_cell,
    .link_closed = chain_link_closed,
};

static const char *const chain_state_names[] = {
    [CCH_DIR] = "building", [CCH_CONNECTING] = "building", [CCH_SETUP] = "building",
    [CCH_READY] = "ready",  [CCH_RETIRING] = "retiring",   [CCH_REPAIR] = "repairing",
};

/* ---- the state machine ---- */

/* Whether a chain may move from one state to the other. Inline so that a
 * build without assertions has no unused table. */
static inline bool cchain_can_move(enum cchain_state from, enum cchain_state to)
{
    static const uint8_t moves[] = {
        [CCH_DIR] = 1u << CCH_CONNECTING,                        /* the route is known */
        [CCH_CONNECTING] = 1u << CCH_SETUP,                      /* the setup left */
        [CCH_SETUP] = 1u << CCH_READY,                           /* SETUP_OK */
        [CCH_READY] = (1u << CCH_RETIRING) | (1u << CCH_REPAIR), /* replaced; spliced */
        [CCH_REPAIR] = 1u << CCH_READY,                          /* SETUP_OK of the new part */
        [CCH_RETIRING] = 0,                                      /* only destroyed */
    };

    return (unsigned)from < sizeof(moves) && ((moves[from] >> to) & 1u);
}

/* Move ch to state to (an internal invariant, hence the assertion) and
 * set that state's deadline: setting up must end within setup_timeout, a
 * retiring chain lingers RETIRE_GRACE_MS, a ready one has none. */
static void cchain_set_state(struct cchain *ch, enum cchain_state to)
{
    assert(cchain_can_move(ch->state, to));
    ch->state = to;
    switch (to) {
    case CCH_CONNECTING:
    case CCH_SETUP:
    case CCH_REPAIR:
        ch->deadline_ms = clock_now_ms() + ch->c->o.setup_timeout_ms;
        break;
    case CCH_RETIRING:
        ch->deadline_ms =
            clock_now_ms() + ((ch->line->flags & CLF_INTRO) ? INTRO_GRACE_MS : RETIRE_GRACE_MS);
        break;
    default:
        ch->deadline_ms = 0;
        break;
    }
}

const char *cchain_state_name(enum cchain_state s)
{
    return chain_state_names[s];
}

/* ---- routes ---- */

bool cchain_crosses(const struct cchain *ch, const uint8_t pk[OVL_ED25519_PK])
{
    for (unsigned p = 0; p < ch->length; p++)
        if (memcmp(ch->route.hops[p][0].id_pk, pk, OVL_ED25519_PK) == 0)
            return true;
    return false;
}

struct cchain *cchain_find(struct client *c, uint32_t serial)
{
    struct cchain *ch;

    DL_FOREACH(c->chains, ch)
    {
        if (ch->serial == serial)
            return ch;
    }
    return NULL;
}

const struct desc *cchain_exit(const struct cchain *ch)
{
    return &ch->route.hops[ch->length ? ch->length - 1 : 0][0];
}

/* The first hop of ch could not be reached: if it is a guard, it waits
 * for its retry time (a backup guard serves meanwhile). */
static void chain_first_failed(struct cchain *ch)
{
    struct client *c = ch->c;

    if (c->guards && ch->length)
        guard_failed(c->guards, ch->route.hops[0][0].id_pk, clock_wall_ms());
}

/* ---- teardown ---- */

/* Forget ch; reason >= 0 sends CELL_CHAIN_DESTROY with it (enum
 * chain_destroy_reason) to the first hop. */
static void chain_destroy(struct cchain *ch, int reason)
{
    struct client *c = ch->c;
    struct node *n = c->n;
    unsigned i;

    dir_cancel(n->dir, ch);
    if (ch->chain_id) {
        struct link *l = link_by_serial(n, ch->link_serial);

        if (l) {
            if (reason >= 0 && l->state == LINK_OPEN) {
                struct cell cl = {.chain_id = ch->chain_id, .cmd = CELL_CHAIN_DESTROY, .len = 1};

                cl.payload[0] = (uint8_t)reason;

                if (link_send(l, &cl) != 0)
                    log_debug(&n->log, "client: chain %u: DESTROY not sent", ch->serial);
            }
            chanmap_del(n, l, ch->chain_id);
        }
    }
    DL_DELETE(c->chains, ch);
    if (ch->line->current == ch)
        ch->line->current = NULL;
    if (ch->line->building == ch)
        ch->line->building = NULL;
    for (i = 0; i < ONION_MAX_HOPS; i++)
        onion_keys_wipe(&ch->keys[i]);
    ovl_wipe(ch, sizeof(*ch));
    free(ch);
}

/* Destroy line's chains; reason as chain_destroy. */
static void line_destroy_chains(struct cline *line, int reason)
{
    struct cchain *ch, *tmp;

    DL_FOREACH_SAFE(line->c->chains, ch, tmp)
    {
        if (ch->line == line)
            chain_destroy(ch, reason);
    }
    free(line->repair);
    line->repair = NULL;
    line->flags &= ~CLF_REPAIR;
}

void cchain_line_add(struct client *c, struct cline *line)
{
    line->c = c;
    line->backoff_ms = BACKOFF_MIN_MS;
    line->idle_ms = clock_now_ms();
    DL_APPEND(c->lines, line);
    c->n_lines++;
}

void cchain_line_free(struct cline *line)
{
    struct client *c = line->c;

    line_destroy_chains(line, DESTROY_R_NONE);
    DL_DELETE(c->lines, line);
    c->n_lines--;
    if (line != &c->main) {
        ovl_wipe(line, sizeof(*line));
        free(line);
    }
}

void cchain_destroy_all(struct client *c)
{
    while (c->chains)
        chain_destroy(c->chains, DESTROY_R_SHUTDOWN);
    while (c->lines)
        cchain_line_free(c->lines);
}

/* A hop told us position p (ch->broken - 1) is gone: keep the route for
 * the line's next build with p's first backup moved into its place. Only
 * the line's current chain, or the one being built, plans: a retiring
 * chain failing first would take the one plan with its old route (and,
 * on the main line, its old exit), and the current chain's repair would
 * then be refused. */
static void chain_plan_repair(struct cchain *ch)
{
    struct cline *line = ch->line;
    unsigned p = ch->broken - 1;

    if (line->current && ch != line->current && ch != line->building)
        return;
    if (!ch->broken || p >= ch->length || ch->avail[p] == 0 || (line->flags & CLF_REPAIR))
        return;
    if (!line->repair && !(line->repair = malloc(sizeof(*line->repair))))
        return; /* a fresh chain instead */
    *line->repair = ch->route;
    line->repair_lead = ch->lead;
    memcpy(line->repair_avail, ch->avail, sizeof(line->repair_avail));
    route_drop(line->repair, line->repair_avail, p, 0);
    line->flags |= CLF_REPAIR;
    line->next_build_ms = 0; /* no backoff: the rest of the route is known good */
}

void cchain_fail(struct cchain *ch, const char *why, bool send_destroy)
{
    struct client *c = ch->c;
    struct cline *line = ch->line;
    uint32_t serial = ch->serial;

    c->st.chains_failed++;
    log_info(&c->n->log, "client: chain %u failed: %s", serial, why);
    chain_plan_repair(ch);
    /* A stream line whose exit is gone, or that cannot get a chain, ends:
     * its streams lived at that exit. */
    if ((line->flags & CLF_EXIT) &&
        ((ch->broken && ch->broken == ch->length) || ++line->fails >= LINE_FAILS_MAX))
        line->flags |= CLF_DEAD;
    chain_destroy(ch, send_destroy ? DESTROY_R_NONE : NO_DESTROY);
    sendq_requeue(c, serial);
    if (!(line->flags & CLF_REPAIR)) {
        line->next_build_ms = clock_now_ms() + line->backoff_ms;
        line->backoff_ms =
            line->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : line->backoff_ms * 2;
    }
}

/* No route leaves ch->avoid out: fail the messages to it (they would
 * have to cross it), not the rest of the queue, and this build. */
static void chain_avoid_failed(struct cchain *ch)
{
    sendq_fail_to(ch->c, ch->avoid, "the destination is a relay of every route on offer");
    cchain_fail(ch, "no route leaves the destination out", false);
}

void cchain_tick(struct client *c, uint64_t now)
{
    struct cchain *ch, *tmp;

    DL_FOREACH_SAFE(c->chains, ch, tmp)
    {
        if ((ch->state == CCH_CONNECTING || ch->state == CCH_SETUP || ch->state == CCH_REPAIR) &&
            now >= ch->deadline_ms) {
            if (ch->state == CCH_CONNECTING) /* its first hop's link never opened */
                chain_first_failed(ch);
            cchain_fail(ch, "setup timed out", ch->state != CCH_CONNECTING);
        } else if (ch->state == CCH_READY && now >= ch->expires_ms)
            chain_destroy(ch, DESTROY_R_EXPIRED); /* no replacement came in time */
        else if (ch->state == CCH_RETIRING && (now >= ch->deadline_ms || now >= ch->expires_ms))
            chain_destroy(ch, DESTROY_R_NONE);
    }
}

/* ---- building and setup ---- */

/* Send the setup on the open first-hop link l. */
static void chain_send_setup(struct cchain *ch, struct link *l)
{
    struct client *c = ch->c;
    struct cell cl;
    int rc;

    rc = chanmap_alloc(c->n, l, &client_chain_owner, ch, &ch->chain_id);
    if (rc) {
        cchain_fail(ch, ovl_strerror(rc), false);
        return;
    }
    ch->link_serial = l->serial;
    memset(&cl, 0, sizeof(cl));
    cl.chain_id = ch->chain_id;
    cl.cmd = CELL_CHAIN_SETUP;
    cl.len = ONION_HDR_LEN;
    memcpy(cl.payload, ch->hdr, ONION_HDR_LEN);
    rc = link_send(l, &cl);
    if (rc) {
        cchain_fail(ch, ovl_strerror(rc), false);
        return;
    }
    ch->cells_out++;
    c->st.cells_out++;
    ch->setup_us = clock_now_us();
    cchain_set_state(ch, CCH_SETUP);
}

/* Fill the hop infos of hops from.. from the route and build their setup
 * header (keys[from..] receive their keys, counters start at zero). */
static int chain_onion(struct cchain *ch, unsigned from)
{
    struct client *c = ch->c;
    uint8_t opk[ONION_MAX_HOPS][OVL_X25519_LEN];
    struct onion_hop_info info[ONION_MAX_HOPS];
    unsigned i, j;

    memset(info, 0, sizeof(info));
    for (i = from; i < ch->length; i++) {
        const struct desc *d = &ch->route.hops[i][0];

        j = i - from;
        memcpy(opk[j], d->onion_pk, OVL_X25519_LEN);
        info[j].type = i + 1 < ch->length ? ONION_HOP_RELAY : ONION_HOP_EXIT;
        info[j].suite = (uint8_t)ovl_aead_pick(d->suites & c->n->opts.aead_suites);
        if (!info[j].suite)
            return OVL_EUNSUPP;
        info[j].lifetime_s = c->o.lifetime_ms / 1000 + 60;
        if (i + 1 < ch->length)
            memcpy(info[j].next, ch->route.hops[i + 1][0].id_pk, OVL_ED25519_PK);
        onion_keys_wipe(&ch->keys[i]);
        ch->fwd_ctr[i] = ch->back_next[i] = 0;
    }
    return onion_setup_build(ch->hdr, (const uint8_t(*)[OVL_X25519_LEN])opk, info,
                             ch->length - from, ch->keys + from);
}

/* The route is known: make the onion and reach the first hop. */
static void chain_connect(struct cchain *ch)
{
    struct client *c = ch->c;
    struct node *n = c->n;
    const struct desc *d0 = &ch->route.hops[0][0];
    struct link *l;
    int rc;

    if (cchain_crosses(ch, n->id.pk)) {
        cchain_fail(ch, "route goes through ourselves", false);
        return;
    }
    if (ch->has_avoid && route_avoid(&ch->route, ch->avail, ch->length, ch->avoid, NULL) != 0) {
        chain_avoid_failed(ch);
        return;
    }
    rc = chain_onion(ch, 0);
    if (rc) {
        cchain_fail(ch, ovl_strerror(rc), false);
        return;
    }
    cchain_set_state(ch, CCH_CONNECTING);
    l = link_find(n, d0->id_pk);
    if (l) {
        chain_send_setup(ch, l);
        return;
    }
    rc = link_dial_any(n, d0->uris, d0->n_uris < DESC_MAX_URIS ? d0->n_uris : DESC_MAX_URIS,
                       d0->id_pk, &l);
    if (rc) {
        chain_first_failed(ch);
        cchain_fail(ch, "cannot dial the first hop", false);
        return;
    }
    ch->link_serial = l->serial; /* cchain_link_opened continues */
}

/* The middle hops are known: the exit follows, then the onion. */
static void route_done(struct cchain *ch)
{
    if (route_put_exit(ch) != 0) {
        cchain_fail(ch, "no route leaves room for the exit", false);
        return;
    }
    chain_connect(ch);
}

static void on_dir_list(void *arg, int err, const struct desc *relays, unsigned count)
{
    struct cchain *ch = arg;
    int rc = err ? err : route_pick(ch, relays, count);

    if (rc == OVL_ENOENT && ch->has_avoid) {
        chain_avoid_failed(ch);
    } else if (rc) {
        cchain_fail(ch, rc == OVL_ENOENT ? "not enough relays" : ovl_strerror(rc), false);
    } else {
        ch->c->st.routes_local++;
        route_done(ch);
    }
}

/* Pick the middle hops from the relay list (the last good one when no
 * bootstrap answers). */
static void route_local(struct cchain *ch)
{
    int rc = dir_request_list(ch->c->n->dir, on_dir_list, ch);

    if (rc)
        cchain_fail(ch, ovl_strerror(rc), false);
}

/* The bootstrap's offers of middle hops (n, or err): one that fits, taken
 * in private, or else a local pick. */
static void on_dir_chains(void *arg, int err, const struct dir_chain *offers, unsigned n)
{
    struct cchain *ch = arg;
    int k;

    if (err == OVL_ECLOSED) {
        cchain_fail(ch, ovl_strerror(err), false);
        return;
    }
    k = err ? -1 : route_choose(ch, offers, n);
    if (k < 0) {
        route_local(ch); /* no bootstrap answered, or nothing it offered fits */
        return;
    }
    ch->c->st.routes_chosen++;
    route_take(ch, &offers[k]);
    route_done(ch);
}

/* The guard is placed: ask for the middle hops. */
static void route_middles(struct cchain *ch)
{
    struct client *c = ch->c;
    int rc = 0;

    if (route_middle(ch) == 0) /* the guard and the exit are the whole route */
        route_done(ch);
    else if (c->o.source == CHAIN_SOURCE_LOCAL)
        route_local(ch);
    else /* nothing excluded but ourselves: the bootstrap learns no guard, no exit;
            a fresh draw, so a replacement or new-chain gets a new route */
        rc = dir_request_chains(c->n->dir, route_middle(ch), c->o.backups, c->o.choices,
                                DIR_CHAIN_FRESH, c->n->id.pk, on_dir_chains, ch);
    if (rc)
        cchain_fail(ch, ovl_strerror(rc), false);
}

static void on_guard_list(void *arg, int err, const struct desc *relays, unsigned count);

/* Place the guard (when there are guards), then the rest. With no guard
 * usable (killed, unreachable), the relay list once more: guard_update
 * then adds guards, up to twice [client] guards, rather than the line
 * waiting for the next list. */
static void route_start(struct cchain *ch)
{
    if (route_put_guard(ch) == 0) {
        route_middles(ch);
        return;
    }
    if (!(ch->flags & CCF_GUARD_LIST) &&
        dir_request_list(ch->c->n->dir, on_guard_list, ch) == 0) {
        ch->flags |= CCF_GUARD_LIST;
        return;
    }
    cchain_fail(ch, "no entry guard is usable", false);
}

/* A relay list for the guards (or err): they learn which are listed and
 * with which descriptors; then the route. */
static void on_guard_list(void *arg, int err, const struct desc *relays, unsigned count)
{
    struct cchain *ch = arg;
    struct client *c = ch->c;

    if (!err) {
        guard_update(c->guards, relays, count, clock_wall_ms());
        c->guards_ms = clock_now_ms();
    }
    route_start(ch);
}

/* Start ch's route: with guards, the relay list first when the guards'
 * view of it is older than GUARD_LIST_MS (their descriptors carry the
 * onion keys, which rotate). */
static void route_begin(struct cchain *ch)
{
    struct client *c = ch->c;
    int rc;

    if (!c->guards || (c->guards->have_list && clock_now_ms() - c->guards_ms < GUARD_LIST_MS)) {
        route_start(ch);
        return;
    }
    rc = dir_request_list(c->n->dir, on_guard_list, ch);
    if (rc)
        cchain_fail(ch, ovl_strerror(rc), false);
}

static void chain_build(struct cline *line)
{
    struct client *c = line->c;
    struct cchain *ch = calloc(1, sizeof(*ch));

    if (!ch) {
        line->next_build_ms = clock_now_ms() + line->backoff_ms;
        return;
    }
    ch->c = c;
    ch->line = line;
    ch->serial = ++c->next_serial;
    ch->state = CCH_DIR; /* where every chain starts */
    ch->created_ms = clock_now_ms();
    DL_APPEND(c->chains, ch);
    line->building = ch;
    if (line->flags & CLF_AVOID) {
        ch->has_avoid = true;
        memcpy(ch->avoid, line->avoid, OVL_ED25519_PK);
        line->flags &= ~CLF_AVOID;
        c->st.avoid_builds++;
    }
    if (line->flags & CLF_REPAIR) {
        /* Same hops but the failed one: one setup round trip, no directory. */
        line->flags &= ~CLF_REPAIR;
        c->st.chains_repaired++;
        ch->route = *line->repair;
        ch->length = line->repair->length;
        ch->lead = line->repair_lead;
        memcpy(ch->avail, line->repair_avail, sizeof(ch->avail));
        log_info(&c->n->log, "client: chain %u: repairing with a backup relay", ch->serial);
        chain_connect(ch);
        return;
    }
    route_begin(ch);
}

/* Whether line wants a chain built now. A stream line wants one only
 * while streams use it (an idle one ends instead). */
static bool line_wants(struct client *c, struct cline *line, uint64_t now)
{
    bool main = line == &c->main, intro = line->flags & CLF_INTRO;

    if (line->building || now < line->next_build_ms || (line->flags & CLF_DEAD))
        return false;
    if (line->current)
        return (line->flags & CLF_AVOID) ||
               ((main || intro || line->streams) &&
                now >= line->current->ready_ms + REPLACE_AT(c->o.lifetime_ms));
    /* A client keeps its main chain ready once registered, or while it
     * holds a relay list (its bootstraps may all be down). */
    return line->streams > 0 || intro ||
           (main && (c->n_queue > 0 || c->hidden ||
                     (((c->n->roles & ROLE_CLIENT) || (c->flags & CF_COVER)) &&
                      (dir_registered(c->n->dir) || dir_has_list(c->n->dir)))));
}

void cchain_maybe_build(struct client *c)
{
    uint64_t now = clock_now_ms();
    struct cline *line, *tmp;

    if (c->flags & CF_STOPPED)
        return;
    DL_FOREACH_SAFE(c->lines, line, tmp)
    {
        if (line_wants(c, line, now))
            chain_build(line);
    }
}

void cchain_avoid(struct cline *line, const uint8_t dest[OVL_ED25519_PK])
{
    struct cchain *b = line->building;

    /* Asked for once: by the next build, or the one under way already. */
    if (!(line->flags & CLF_AVOID) &&
        (!b || !b->has_avoid || memcmp(b->avoid, dest, OVL_ED25519_PK) != 0)) {
        line->flags |= CLF_AVOID;
        memcpy(line->avoid, dest, OVL_ED25519_PK);
    }
    cchain_maybe_build(line->c);
}

int client_new_chain(struct client *c)
{
    if (c->flags & CF_STOPPED)
        return OVL_ECLOSED;
    if (c->main.building)
        return OVL_EAGAIN;
    c->main.next_build_ms = 0; /* asked for: no backoff */
    chain_build(&c->main);
    return 0;
}

void cchain_link_opened(struct client *c, struct link *l)
{
    struct cchain *ch, *tmp;

    DL_FOREACH_SAFE(c->chains, ch, tmp)
    {
        if (ch->state == CCH_CONNECTING &&
            (ch->link_serial == l->serial ||
             memcmp(l->peer_pk, ch->route.hops[0][0].id_pk, OVL_ED25519_PK) == 0))
            chain_send_setup(ch, l);
    }
}

void cchain_link_closed(struct client *c, struct link *l)
{
    struct cchain *ch, *tmp;

    /* Chains with a slot on l hear it from the chanmap; this catches the
     * ones still waiting for the link to open. */
    DL_FOREACH_SAFE(c->chains, ch, tmp)
    {
        if (ch->state == CCH_CONNECTING && ch->link_serial == l->serial) {
            chain_first_failed(ch);
            cchain_fail(ch, "cannot reach the first hop", false);
        }
    }
}

/* ---- ready, replaced, spliced ---- */

/* The exit answered the setup: new cells of its line use this chain now,
 * and the one they used retires. */
static void chain_ready(struct cchain *ch)
{
    struct client *c = ch->c;
    struct cline *line = ch->line;
    struct cchain *old = line->current;
    uint64_t now = clock_now_ms();

    if (ch->state == CCH_REPAIR) {
        log_info(&c->n->log, "client: chain %u repaired", ch->serial);
    } else {
        ch->ready_ms = now;
        ch->expires_ms = now + c->o.lifetime_ms;
        if (ch->setup_us) {
            uint64_t us = clock_now_us() - ch->setup_us;

            samples_add(&c->setup_us, (uint32_t)us);
            hist_add(&c->setup_hist, us);
        }
        c->st.chains_built++;
        if (c->guards)
            guard_succeeded(c->guards, ch->route.hops[0][0].id_pk);
        log_info(&c->n->log, "client: chain %u ready (%u hops)", ch->serial, ch->length);
    }
    cchain_set_state(ch, CCH_READY);
    ch->broken = 0;
    ovl_wipe(ch->hdr, sizeof(ch->hdr));
    if (line->building == ch)
        line->building = NULL;
    line->current = ch;
    line->flags |= CLF_MOVED;
    line->flags &= ~CLF_AVOID; /* asked again if this chain has the destination too */
    line->fails = 0;
    line->backoff_ms = BACKOFF_MIN_MS;
    if (old && old != ch) {
        cchain_set_state(old, CCH_RETIRING);
        c->st.chains_replaced++;
    }
    c->chain_ready_cb(c);
}

/* Hop o lost its next hop and kept its part of the chain: move position
 * o + 1's first backup into place and set up only the hops from there on,
 * with a BODY_EXTEND that ends at hop o (the only cell it can read now).
 * False when that cannot be done here: the chain is not its line's current one,
 * no backup is left, or the cell did not leave. */
static bool chain_splice(struct cchain *ch, unsigned o)
{
    struct client *c = ch->c;
    struct cline *line = ch->line;
    struct link *l = link_by_serial(c->n, ch->link_serial);
    uint8_t body[ONION_BODY];
    unsigned f = o + 1;
    int rc;

    if (ch != line->current || ch->avail[f] == 0 || !l)
        return false;
    route_drop(&ch->route, ch->avail, f, 0);
    rc = chain_onion(ch, f);
    if (rc == 0) {
        memset(body, 0, sizeof(body));
        body_hdr_put(body, BODY_EXTEND, BODY_EXTEND_LEN);
        memcpy(body + BODY_HDR, ch->route.hops[f][0].id_pk, OVL_ED25519_PK);
        memcpy(body + BODY_HDR + OVL_ED25519_PK, ch->hdr, ONION_HDR_LEN);
        rc = cchain_fwd_send(ch, l, f, body);
        ovl_wipe(body, sizeof(body));
    }
    if (rc)
        return false;
    log_info(&c->n->log, "client: chain %u: hop %u lost its next hop, repairing from there",
             ch->serial, o);
    cchain_set_state(ch, CCH_REPAIR);
    ch->splices++;
    line->current = NULL;
    if (!line->building)
        line->building = ch;
    c->st.chains_repaired++;
    sendq_requeue(c, ch->serial);
    return true;
}

int cchain_fwd_send(struct cchain *ch, struct link *l, unsigned hops, const uint8_t *body)
{
    struct cell cl;
    int rc;

    memset(&cl, 0, offsetof(struct cell, payload));
    cl.chain_id = ch->chain_id;
    cl.cmd = CELL_CHAIN_FWD;
    cl.len = OVL_CELL_PAYLOAD;
    rc = onion_fwd_wrap(cl.payload, ch->keys, hops, ch->fwd_ctr, body);
    if (rc == 0)
        rc = link_send(l, &cl);
    if (rc)
        return rc; /* the wrapped cell never left: its counters are reused */
    for (unsigned i = 0; i < hops; i++)
        ch->fwd_ctr[i]++;
    ch->cells_out++;
    ch->c->st.cells_out++;
    return 0;
}

/* ---- cells from the first hop ---- */

/* Hop `origin` reports it cannot reach the next one: that position is the
 * one to replace, and the bootstrap hears of the relay. */
static void chain_next_lost(struct cchain *ch, unsigned origin)
{
    ch->broken = origin + 2;
    dir_report(ch->c->n->dir, ch->route.hops[origin + 1][0].id_pk);
}

/* A body from hop origin (authenticated, its length blen checked); false
 * when it has no business arriving now or from there. */
static bool chain_body(struct cchain *ch, const uint8_t *body, int blen, unsigned origin)
{
    struct client *c = ch->c;
    bool building = ch->state == CCH_SETUP || ch->state == CCH_REPAIR;
    bool from_exit = origin + 1 == ch->length;
    const uint8_t *args = body + BODY_HDR;

    switch (body[0]) {
    case BODY_SETUP_OK:
        if (!building || !from_exit)
            return false;
        chain_ready(ch);
        return true;
    case BODY_SETUP_FAIL:
        if (!building)
            return false;
        log_info(&c->n->log, "client: chain %u: hop %u refused the setup (reason %u)", ch->serial,
                 origin, blen >= 1 ? args[0] : 0);
        if (blen >= 1 && args[0] == BODY_R_UNREACHABLE && !from_exit)
            chain_next_lost(ch, origin);
        cchain_fail(ch, "setup refused", true);
        return true;
    case BODY_LOOP_BACK:
        if (!from_exit)
            return false;
        c->st.loops_in++; /* our own loop cover, home again */
        return true;
    case BODY_BROKEN:
        if ((ch->state != CCH_READY && ch->state != CCH_RETIRING) || from_exit)
            return false;
        chain_next_lost(ch, origin);
        if (!chain_splice(ch, origin))
            cchain_fail(ch, "a hop lost its next hop", true);
        return true;
    case BODY_DELIVER_FAIL:
        if (!from_exit || blen < OVL_ED25519_PK + 1)
            return false;
        sendq_undeliverable(c, args, args[OVL_ED25519_PK]);
        return true;
    case BODY_STREAM_BACK:
        if (!from_exit || !c->stream_cb)
            return false;
        c->stream_cb(ch, args, (size_t)blen);
        return true;
    case BODY_DELIVER_BACK:
        if (!from_exit || blen < OVL_ED25519_PK)
            return false;
        sendq_back(ch, args, args + OVL_ED25519_PK, (size_t)blen - OVL_ED25519_PK);
        return true;
    case BODY_INTRO_OK:
    case BODY_INTRO_FAIL:
    case BODY_INTRO_DELIVER:
    case BODY_PUBLISHED:
        if (!from_exit || !(ch->line->flags & CLF_INTRO) || !c->intro_cb)
            return false;
        c->intro_cb(ch, body[0], args, (size_t)blen);
        return true;
    default:
        return false;
    }
}

static void chain_back(struct cchain *ch, const struct cell *cl)
{
    struct client *c = ch->c;
    uint8_t body[ONION_BODY];
    unsigned origin;
    int blen;

    if (cl->len != OVL_CELL_PAYLOAD) {
        c->st.dropped_bad++;
        return;
    }
    if (onion_back_unwrap(body, &origin, ch->keys, ch->length, ch->back_next, cl->payload) != 0) {
        c->st.dropped_auth++;
        return;
    }
    blen = body_hdr_len(body);
    if (blen < 0 || !chain_body(ch, body, blen, origin))
        c->st.dropped_bad++;
}

static void chain_cell(void *obj, struct link *l, const struct cell *cl)
{
    struct cchain *ch = obj;
    struct client *c = ch->c;

    (void)l;
    if (c->flags & CF_STOPPED)
        return;
    ch->cells_in++;
    c->st.cells_in++;
    switch (cl->cmd) {
    case CELL_CHAIN_BACK:
        chain_back(ch, cl);
        break;
    case CELL_CHAIN_DESTROY:
        cchain_fail(ch, "destroyed by the first hop", false);
        break;
    default:
        c->st.dropped_bad++;
        break;
    }
}

static void chain_link_closed(void *obj, struct link *l, uint32_t id)
{
    struct cchain *ch = obj;

    (void)l;
    (void)id;
    ch->chain_id = 0; /* the slot is gone already */
    if (ch->state == CCH_READY)
        ch->broken = 1; /* the first hop: rebuild with its backup */
    if (!(ch->c->flags & CF_STOPPED)) {
        chain_first_failed(ch);
        cchain_fail(ch, "first-hop link closed", false);
    }
}
