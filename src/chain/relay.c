/* relay.c - the relay's core: chain setup, peel-and-forward, the chain's
 * state machine, backpressure and teardown.
 *
 * One struct relay_chain per chain through this node, found by chanmap
 * under both of its (link, ID) pairs and by serial in r->chains. The exit
 * side (BODY_DELIVER, DELIVER cells, destinations being dialed) lives in
 * exit.c, which builds on this file; this file reaches it only through
 * r->hooks (relay_int.h is the contract between the files).
 *
 * Data cells are copied once onto the stack, peeled in place and sent: no
 * allocation and no public-key operation per cell. Links are kept as
 * pointers because chanmap tells us (link_closed) before any link with a
 * slot of ours is freed, and the observer's closed() does the same for the
 * pause records.
 */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "chain/relay_int.h"
#include "core/admit.h"
#include "core/chanmap.h"
#include "core/link.h"
#include "lib/clock.h"

static void chain_cell(void *obj, struct link *l, const struct cell *c);
static void chain_link_closed(void *obj, struct link *l, uint32_t id);

const struct chain_owner relay_chain_owner = {
    .cell = chain_cell,
    .link_closed = chain_link_closed,
};

/* ---- sending and backpressure ----
 *
 * A relay pauses an incoming link when the outgoing link its cells go to
 * is (nearly) full, and resumes it from that link's drained(): every path
 * to relay_hold() has just seen link_can_send() return false or link_send()
 * return OVL_EAGAIN, and either one arms one drained() for when the queue
 * falls below half; a link that closes instead is handled by the
 * observers' closed(). The exit's own holds (a destination's queue filling
 * while it is dialed) end with their wait or after stall_timeout, and
 * relay_resume() weighs both kinds.
 *
 * A peer that never reads would hold every chain of the links paused for
 * it, so the tick closes an outgoing link that has held others for
 * longer than a bound (relay_stalls_tick). A next hop may itself be held
 * by its own next hop or destination, which it closes after
 * stall_timeout: a link to a neighbour on a chain gets twice as long, so
 * the hop nearest the peer that does not read acts first and the links
 * behind it drain instead of closing too. */

/* Remember that in is paused until out drains; false when the table is full. */
static bool pause_add(struct relay *r, struct link *in, struct link *out, unsigned pf)
{
    struct relay_pause *p;

    for (unsigned i = 0; i < r->n_pauses; i++) {
        if (r->pauses[i].in == in && r->pauses[i].out == out) {
            r->pauses[i].flags |= pf;
            return true;
        }
    }
    if (r->n_pauses >= RELAY_MAX_PAUSES)
        return false;
    p = &r->pauses[r->n_pauses++];
    p->in = in;
    p->out = out;
    p->since_ms = clock_now_ms();
    p->flags = pf;
    return true;
}

static bool pause_held(const struct relay *r, const struct link *in)
{
    for (unsigned i = 0; i < r->n_pauses; i++)
        if (r->pauses[i].in == in)
            return true;
    return false;
}

void relay_resume(struct relay *r, struct link *in)
{
    if (!pause_held(r, in) && !r->hooks->holds(r, in))
        link_resume(in);
}

/* Drop the records whose out is l, resuming the incoming links no other
 * full link (or the exit) still holds. */
static void pause_release(struct relay *r, struct link *l)
{
    unsigned i = 0;

    while (i < r->n_pauses) {
        struct relay_pause p = r->pauses[i];

        if (p.out != l) {
            i++;
            continue;
        }
        r->pauses[i] = r->pauses[--r->n_pauses];
        relay_resume(r, p.in);
    }
}

void relay_pauses_link_closed(struct relay *r, struct link *l)
{
    unsigned i = 0;

    /* Records that name l as `in` go without resuming it: it is closing. */
    while (i < r->n_pauses) {
        if (r->pauses[i].in == l)
            r->pauses[i] = r->pauses[--r->n_pauses];
        else
            i++;
    }
    pause_release(r, l);
}

void relay_pauses_drained(struct relay *r, struct link *l)
{
    pause_release(r, l);
}

void relay_pauses_clear(struct relay *r)
{
    while (r->n_pauses > 0)
        pause_release(r, r->pauses[0].out);
}

/* Stop reading from in until out drains. Callers have just been refused
 * room on out, which armed its drained(). */
static void relay_hold(struct relay *r, struct link *in, struct link *out, unsigned pf)
{
    if (in && out && out->state == LINK_OPEN && pause_add(r, in, out, pf))
        link_pause(in);
}

/* out has no room for a cell: hold in back and count the drop. */
static void relay_full(struct relay *r, struct link *in, struct link *out, unsigned pf)
{
    relay_hold(r, in, out, pf);
    r->st.dropped[RD_QUEUE_FULL]++;
}

bool relay_room(struct relay *r, struct link *in, struct link *out, unsigned pf)
{
    if (link_can_send(out, 1))
        return true;
    relay_full(r, in, out, pf);
    return false;
}

int relay_send(struct relay *r, struct link *in, struct link *out, const struct cell *c,
               unsigned pf)
{
    int rc = link_send(out, c);

    if (rc == 0)
        bw_relay_out(&r->n->tp_env, in ? in->tp : NULL); /* may hold in: backpressure */
    if (rc == OVL_EAGAIN) {
        relay_full(r, in, out, pf);
    } else if (rc) {
        r->st.dropped[RD_NO_ROUTE]++;
    } else if (!link_can_send(out, r->headroom)) {
        /* Pause before the queue is full: cells the incoming link has
         * already read still arrive, and every cell dropped at a hop
         * uses up the sender's counter window (ONION_WINDOW). */
        relay_hold(r, in, out, pf);
    }
    return rc;
}

/* out held links back too long: end what goes through it, resume what it
 * held, and close it. The exit first ends the chains delivering to it, so
 * that their next cells do not dial the same peer again. */
static void stall_close(struct relay *r, struct link *out)
{
    r->st.stalled++;
    r->hooks->link_stalled(r, out);
    pause_release(r, out);
    link_close(out, LC_STALLED); /* its chains end in the chanmap's link_closed */
}

void relay_stalls_tick(struct relay *r, uint64_t now, uint64_t late_ms)
{
    unsigned i;

    /* While the loop was held up nothing was read or sent: that time
     * does not count against anyone. */
    for (i = 0; i < r->n_pauses; i++) {
        struct relay_pause *p = &r->pauses[i];

        p->since_ms = p->since_ms + late_ms < now ? p->since_ms + late_ms : now;
    }
    i = 0;
    while (i < r->n_pauses) {
        const struct relay_pause *p = &r->pauses[i];
        uint64_t bound = (uint64_t)r->o.stall_timeout_ms * ((p->flags & RPF_DEST) ? 1 : 2);

        if (p->out->state != LINK_OPEN || now - p->since_ms < bound) {
            i++;
            continue;
        }
        stall_close(r, p->out); /* drops every record of that link */
        i = 0;
    }
}

void relay_send_destroy(struct relay *r, struct link *l, uint32_t id, uint8_t reason)
{
    struct cell c = {.chain_id = id, .cmd = CELL_CHAIN_DESTROY, .len = 1};

    c.payload[0] = reason;
    /* Best effort: a peer that does not read learns from its own timers. */
    if (link_send(l, &c) == OVL_EAGAIN)
        r->st.dropped[RD_QUEUE_FULL]++;
}

void relay_slot_end(struct relay *r, struct link *l, uint32_t id, uint8_t reason, bool tell)
{
    chanmap_del(r->n, l, id);
    if (tell)
        relay_send_destroy(r, l, id, reason);
}

int relay_originate(struct relay_chain *ch, uint8_t cmd, const uint8_t *args, size_t alen)
{
    return relay_originate_in(ch, NULL, cmd, args, alen);
}

int relay_originate_in(struct relay_chain *ch, struct link *in, uint8_t cmd, const uint8_t *args,
                       size_t alen)
{
    struct relay *r = ch->r;
    struct cell c; /* every byte written below: no initialiser clearing 1 KB */
    uint8_t *body = c.payload + ONION_BODY_OFF;
    int rc;

    if (!ch->prev || alen > ONION_BODY - BODY_HDR)
        return OVL_EINVAL;
    c.chain_id = ch->prev_id;
    c.cmd = CELL_CHAIN_BACK;
    c.flags = 0;
    c.len = OVL_CELL_PAYLOAD;
    /* The body is built where onion_back_originate seals it in place (it
     * writes the tag and junk around it), and only the padding is zeroed.
     * Nothing is wiped: the body holds what
     * args holds (a stream's bytes or a control answer, no key), the
     * caller keeps args, and the seal leaves ciphertext (or zeros, when
     * it fails) in c. */
    body_hdr_put(body, cmd, (uint16_t)alen);
    if (alen)
        memcpy(body + BODY_HDR, args, alen);
    memset(body + BODY_HDR + alen, 0, ONION_BODY - BODY_HDR - alen);
    ch->flags |= RCHF_USED;
    rc = onion_back_originate(c.payload, &ch->keys, &ch->back_ctr, body);
    if (rc)
        return rc;
    rc = relay_send(r, in, ch->prev, &c, 0);
    if (rc == 0) {
        r->st.cells_originated++;
        r->st.cells_back_out++;
    }
    return rc;
}

/* ---- chain life cycle ---- */

/* The moves each state may make (a bit per target state): the one table of
 * the chain's life, as relay_int.h draws it. */
static const uint8_t rch_moves[RCH_COUNT] = {
    [RCH_NONE] = 1u << RCH_EXTENDING,
    [RCH_EXTENDING] = 1u << RCH_OPEN,
    [RCH_OPEN] = 1u << RCH_BROKEN,
    [RCH_BROKEN] = 1u << RCH_EXTENDING,
};

/* True when a chain in state from may move to state to. */
static bool relay_chain_can_transition(enum relay_chain_state from, enum relay_chain_state to)
{
    return (unsigned)from < RCH_COUNT && (unsigned)to < RCH_COUNT &&
           ((rch_moves[from] >> to) & 1u) != 0;
}

/* Move ch to state to: the only writer of ch->state. Every caller checked
 * the state it starts from, so an illegal move is a bug here, never peer
 * input: asserted, like Tor's channel_state_can_transition(). */
static void relay_chain_set_state(struct relay_chain *ch, enum relay_chain_state to)
{
    bool legal = relay_chain_can_transition(ch->state, to);

    assert(legal);
    (void)legal; /* without assertions (NDEBUG) */
    if (to == RCH_BROKEN)
        ch->broken_ms = clock_now_ms(); /* the repair's deadline counts from here */
    ch->state = to;
}

struct relay_chain *relay_chain_find(struct relay *r, uint64_t serial)
{
    struct relay_chain *ch = NULL;

    HASH_FIND(hh, r->chains, &serial, sizeof(serial), ch);
    return ch;
}

/* ---- shares: what one link or address block holds ---- */

/* Find or make key's entry in head; NULL when out of memory. */
static struct relay_share *share_get(struct relay *r, struct relay_share **head, uint64_t key)
{
    struct relay_share *s = NULL;

    HASH_FIND(hh, *head, &key, sizeof(key), s);
    if (s || !(s = calloc(1, sizeof(*s))))
        return s;
    s->key = key;
    HASH_ADD(hh, *head, key, sizeof(s->key), s);
    r->n_shares++;
    return s;
}

/* Forget s (NULL-safe) once nothing is charged to it. */
static void share_put(struct relay *r, struct relay_share **head, struct relay_share *s)
{
    if (!s || s->chains || s->seen)
        return;
    HASH_DEL(*head, s);
    free(s);
    r->n_shares--;
}

static void shares_free(struct relay *r, struct relay_share **head)
{
    struct relay_share *s, *tmp;

    HASH_ITER(hh, *head, s, tmp)
    {
        HASH_DEL(*head, s);
        free(s);
        r->n_shares--;
    }
}

/* Take ch out of the chain table, wipe its keys and free it. */
static void chain_free(struct relay *r, struct relay_chain *ch)
{
    HASH_DEL(r->chains, ch);
    onion_keys_wipe(&ch->keys);
    free(ch->deliv);
    ovl_wipe(ch, sizeof(*ch));
    free(ch);
}

void relay_chain_end(struct relay_chain *ch, uint8_t reason, bool tell_prev, bool tell_next)
{
    struct relay *r = ch->r;

    if (ch->prev)
        relay_slot_end(r, ch->prev, ch->prev_id, reason, tell_prev);
    if (ch->next)
        relay_slot_end(r, ch->next, ch->next_id, reason, tell_next);
    r->hooks->chain_end(ch);
    r->st.chains--;
    ch->link_share->chains--;
    ch->block_share->chains--;
    share_put(r, &r->link_shares, ch->link_share);
    share_put(r, &r->block_shares, ch->block_share);
    chain_free(r, ch);
}

void relay_setup_fail(struct relay_chain *ch, uint8_t reason, enum relay_drop why)
{
    struct relay *r = ch->r;

    r->st.dropped[why]++;
    r->st.setups_failed++;
    (void)relay_originate(ch, BODY_SETUP_FAIL, &reason, 1);
    /* The sender learns from SETUP_FAIL; nothing is left to tell anyone. */
    relay_chain_end(ch, DESTROY_R_NONE, false, false);
}

void relay_extend_on(struct relay_chain *ch, struct link *out, const uint8_t hdr[ONION_HDR_LEN])
{
    struct relay *r = ch->r;
    struct cell c = {.cmd = CELL_CHAIN_SETUP, .len = ONION_HDR_LEN};
    uint32_t id;
    int rc;

    if (chanmap_alloc(r->n, out, &relay_chain_owner, ch, &id) != 0) {
        relay_setup_fail(ch, BODY_R_LIMIT, RD_LIMIT);
        return;
    }
    c.chain_id = id;
    memcpy(c.payload, hdr, ONION_HDR_LEN);
    rc = link_send(out, &c);
    if (rc) {
        chanmap_del(r->n, out, id);
        if (rc == OVL_EAGAIN)
            relay_setup_fail(ch, BODY_R_LIMIT, RD_QUEUE_FULL);
        else
            relay_setup_fail(ch, BODY_R_UNREACHABLE, RD_NO_ROUTE);
        return;
    }
    ch->next = out;
    ch->next_id = id;
    relay_chain_set_state(ch, RCH_OPEN);
    r->st.setups_ok++;
}

/* A RELAY hop: send the header on to next, now or once a link is up. */
static void chain_extend(struct relay_chain *ch, const uint8_t next[OVL_ED25519_PK],
                         const uint8_t hdr[ONION_HDR_LEN])
{
    struct relay *r = ch->r;
    struct link *out;

    if (ovl_equal(next, r->n->id.pk, OVL_ED25519_PK)) {
        relay_setup_fail(ch, BODY_R_NO_ROUTE, RD_NO_ROUTE);
        return;
    }
    out = link_find(r->n, next);
    if (out) {
        relay_extend_on(ch, out, hdr);
        return;
    }
    r->hooks->park_setup(ch, next, hdr);
}

/* An accepted setup, remembered while its onion key can open it again.
 * One table for every link, so that a replay is caught wherever it comes
 * from; each entry is charged to the address block its setup came from,
 * and a block may hold twice its chain share, so that filling the table
 * takes many blocks and a block that fills its share refuses only its
 * own setups. */
struct relay_seen {
    uint8_t eph[OVL_X25519_LEN];
    uint64_t until_ms;
    struct relay_share *block;
    UT_hash_handle hh;
};

/* Record eph, from address block blk, as used until until_ms.
 * OVL_EREPLAY if it was already, OVL_EPERM over the block's share,
 * OVL_ENOMEM at the cap (refusing beats forgetting early). */
static int seen_add(struct relay *r, const uint8_t eph[OVL_X25519_LEN], uint64_t until_ms,
                    admit_key blk)
{
    struct relay_seen *s = NULL;
    struct relay_share *b;
    int rc = 0;

    HASH_FIND(hh, r->seen, eph, OVL_X25519_LEN, s);
    if (s)
        return OVL_EREPLAY;
    if (r->n_seen >= 2 * r->o.max_chains || !(b = share_get(r, &r->block_shares, blk)))
        return OVL_ENOMEM;
    if (b->seen >= 2 * (uint64_t)r->o.max_chains_per_block)
        rc = OVL_EPERM;
    else if (!(s = malloc(sizeof(*s))))
        rc = OVL_ENOMEM;
    if (rc) {
        share_put(r, &r->block_shares, b);
        return rc;
    }
    memcpy(s->eph, eph, OVL_X25519_LEN);
    s->until_ms = until_ms;
    s->block = b;
    b->seen++;
    HASH_ADD(hh, r->seen, eph, OVL_X25519_LEN, s);
    r->n_seen++;
    return 0;
}

/* Forget setups whose key no longer opens anything (all with now 0 = free). */
static void relay_seen_prune(struct relay *r, uint64_t now)
{
    struct relay_seen *s, *tmp;

    HASH_ITER(hh, r->seen, s, tmp)
    {
        if (now && s->until_ms > now)
            continue;
        HASH_DEL(r->seen, s);
        s->block->seen--;
        share_put(r, &r->block_shares, s->block);
        free(s);
        r->n_seen--;
    }
}

/* Open the header with the current onion key, then the older ones, and
 * refuse a header opened before: a replayed setup would make a second
 * chain with the same keys and counters from zero, into which a dishonest
 * neighbour could replay old cells. */
static int setup_peel(struct relay *r, admit_key blk, uint8_t hdr[ONION_HDR_LEN],
                      struct onion_hop_info *info, struct onion_keys *keys)
{
    const struct dir_onion *ok;
    uint8_t eph[OVL_X25519_LEN];
    unsigned count = 0;
    int rc = OVL_ECRYPTO;

    memcpy(eph, hdr, sizeof(eph)); /* the front slot's ephemeral key */
    ok = dir_onion_keys(r->n->dir, &count);
    for (unsigned i = 0; ok && i < count; i++) {
        rc = onion_setup_peel(hdr, ok[i].pk, ok[i].sk, info, keys);
        if (rc == 0) {
            rc = seen_add(r, eph, dir_onion_expiry(r->n->dir, &ok[i]), blk);
            if (rc)
                onion_keys_wipe(keys);
        }
        if (rc != OVL_ECRYPTO)
            break;
    }
    return rc;
}

/* Refuse a setup on (l, id) that has no chain (so no SETUP_FAIL can go
 * back under its keys): count why and send DESTROY(reason). */
static void setup_refuse(struct relay *r, struct link *l, uint32_t id, enum relay_drop why,
                         uint8_t reason)
{
    r->st.dropped[why]++;
    r->st.setups_failed++;
    relay_send_destroy(r, l, id, reason);
}

/* Make the chain entry for a setup that opened, charged to its link and
 * address block blk, taking keys over (zeroed then); NULL (counted) on
 * failure, keys left to the caller. */
static struct relay_chain *chain_new(struct relay *r, struct link *l, uint32_t id, admit_key blk,
                                     struct onion_keys *keys)
{
    struct relay_chain *ch = calloc(1, sizeof(*ch));
    struct relay_share *ls = share_get(r, &r->link_shares, l->serial);
    struct relay_share *bs = share_get(r, &r->block_shares, blk);

    if (!ch || !ls || !bs || chanmap_add(r->n, l, id, &relay_chain_owner, ch) != 0) {
        free(ch);
        share_put(r, &r->link_shares, ls);
        share_put(r, &r->block_shares, bs);
        setup_refuse(r, l, id, RD_LIMIT, DESTROY_R_NONE);
        return NULL;
    }
    ch->link_share = ls;
    ch->block_share = bs;
    ls->chains++;
    bs->chains++;
    ch->r = r;
    ch->serial = ++r->next_serial;
    ch->prev = l;
    ch->prev_id = id;
    ch->keys = *keys; /* moved: the AEAD contexts are not copied */
    memset(keys, 0, sizeof(*keys));
    ch->created_ms = clock_now_ms();
    relay_chain_set_state(ch, RCH_EXTENDING);
    HASH_ADD(hh, r->chains, serial, sizeof(ch->serial), ch);
    r->st.chains++;
    return ch;
}

/* The drop a failed setup_peel() counts. */
static enum relay_drop setup_peel_drop(int rc)
{
    switch (rc) {
    case OVL_ECRYPTO:
        return RD_AUTH;
    case OVL_EREPLAY:
        return RD_REPLAY;
    case OVL_ENOMEM:
        return RD_LIMIT;
    case OVL_EPERM:
        return RD_SHARE;
    default:
        return RD_BAD_CELL;
    }
}

/* An opened setup: check the caps and shares, cap its lifetime, then
 * answer (exit) or extend. */
static void setup_opened(struct relay_chain *ch, const struct onion_hop_info *info,
                         const uint8_t hdr[ONION_HDR_LEN])
{
    struct relay *r = ch->r;
    uint32_t life = info->lifetime_s < r->o.max_lifetime_s ? info->lifetime_s : r->o.max_lifetime_s;

    ch->expires_ms = ch->created_ms + (uint64_t)life * 1000u;
    if (r->st.chains > r->o.max_chains) {
        relay_setup_fail(ch, BODY_R_LIMIT, RD_LIMIT);
    } else if (bw_dormant(&r->n->bw)) {
        relay_setup_fail(ch, BODY_R_LIMIT, RD_DORMANT); /* the period's bytes are spent */
    } else if (ch->link_share->chains > r->o.max_chains_per_link ||
               ch->block_share->chains > r->o.max_chains_per_block) {
        relay_setup_fail(ch, BODY_R_LIMIT, RD_SHARE); /* others keep their room */
    } else if (life == 0) {
        relay_setup_fail(ch, BODY_R_PROTOCOL, RD_BAD_CELL);
    } else if (info->type == ONION_HOP_EXIT) {
        ch->flags |= RCHF_EXIT;
        relay_chain_set_state(ch, RCH_OPEN);
        r->st.setups_ok++;
        (void)relay_originate(ch, BODY_SETUP_OK, NULL, 0);
    } else {
        chain_extend(ch, info->next, hdr);
    }
}

void relay_on_setup(void *ctx, struct link *l, const struct cell *c)
{
    struct relay *r = ctx;
    struct onion_hop_info info;
    struct onion_keys keys;
    struct relay_chain *ch;
    uint8_t hdr[ONION_HDR_LEN];
    admit_key blk;
    int rc;

    r->st.setups_in++;
    if (!chanmap_id_is_remote(l, c->chain_id)) {
        r->st.dropped[RD_BAD_CELL]++; /* that ID is ours to pick: not a setup */
        return;
    }
    if (c->len != ONION_HDR_LEN || (r->flags & RELAYF_STOPPED) || r->n->stopping) {
        setup_refuse(r, l, c->chain_id, c->len != ONION_HDR_LEN ? RD_BAD_CELL : RD_LIMIT,
                     DESTROY_R_PROTOCOL);
        return;
    }
    memcpy(hdr, c->payload, ONION_HDR_LEN);
    blk = admit_block_of(l->remote); /* 0 (unknown) is one block too */
    rc = setup_peel(r, blk, hdr, &info, &keys);
    if (rc) {
        setup_refuse(r, l, c->chain_id, setup_peel_drop(rc), DESTROY_R_PROTOCOL);
        return;
    }
    ch = chain_new(r, l, c->chain_id, blk, &keys);
    onion_keys_wipe(&keys);
    if (ch)
        setup_opened(ch, &info, hdr);
    ovl_wipe(&info, sizeof(info));
}

/* ---- data cells ---- */

/* A broken hop reads the cell that ends with it: only BODY_EXTEND, which
 * names the replacement for the lost next hop and carries the setup
 * header of the rest of the chain. */
static void chain_reextend(struct relay_chain *ch, const uint8_t body[ONION_BODY])
{
    struct relay *r = ch->r;
    if (body[0] != BODY_EXTEND || body_hdr_len(body) != BODY_EXTEND_LEN) {
        r->st.dropped[RD_BAD_CELL]++;
        return;
    }
    relay_chain_set_state(ch, RCH_EXTENDING);
    r->st.reextended++;
    chain_extend(ch, body + BODY_HDR, body + BODY_HDR + OVL_ED25519_PK);
}

static void chain_fwd(struct relay_chain *ch, const struct cell *c)
{
    struct relay *r = ch->r;
    struct cell out = {.chain_id = ch->next_id, .cmd = CELL_CHAIN_FWD, .len = OVL_CELL_PAYLOAD};
    bool ends_here = (ch->flags & RCHF_EXIT) || ch->state == RCH_BROKEN;

    r->st.cells_fwd_in++;
    bw_relay_in(&r->n->tp_env, ch->prev->tp);
    if (c->len != OVL_CELL_PAYLOAD || ch->state == RCH_EXTENDING) {
        r->st.dropped[RD_BAD_CELL]++;
        return;
    }
    if (!ends_here && !relay_room(r, ch->prev, ch->next, 0))
        return;
    memcpy(out.payload, c->payload, OVL_CELL_PAYLOAD);
    ch->flags |= RCHF_USED;
    if (onion_fwd_peel(out.payload, &ch->keys, &ch->fwd_ctr) != 0) {
        r->st.dropped[RD_AUTH]++;
        return;
    }
    r->st.cells_peeled++;
    if (ends_here) {
        if (ch->flags & RCHF_EXIT)
            r->hooks->exit_body(ch, out.payload + ONION_BODY_OFF);
        else
            chain_reextend(ch, out.payload + ONION_BODY_OFF);
        ovl_wipe(out.payload, sizeof(out.payload));
        return;
    }
    if (relay_send(r, ch->prev, ch->next, &out, 0) == 0)
        r->st.cells_forwarded++;
}

static void chain_back(struct relay_chain *ch, const struct cell *c)
{
    struct relay *r = ch->r;
    struct cell out = {.chain_id = ch->prev_id, .cmd = CELL_CHAIN_BACK, .len = OVL_CELL_PAYLOAD};

    r->st.cells_back_in++;
    bw_relay_in(&r->n->tp_env, ch->next->tp);
    if (c->len != OVL_CELL_PAYLOAD) {
        r->st.dropped[RD_BAD_CELL]++;
        return;
    }
    if (!relay_room(r, ch->next, ch->prev, 0))
        return;
    memcpy(out.payload, c->payload, OVL_CELL_PAYLOAD);
    ch->flags |= RCHF_USED;
    if (onion_back_add(out.payload, &ch->keys, &ch->back_ctr) != 0) {
        r->st.dropped[RD_BAD_CELL]++;
        return;
    }
    if (relay_send(r, ch->next, ch->prev, &out, 0) == 0)
        r->st.cells_back_out++;
}

static uint8_t destroy_reason(const struct cell *c)
{
    if (c->len < 1 || c->payload[0] > DESTROY_R_MAX)
        return DESTROY_R_NONE;
    return c->payload[0];
}

/* Route by the side the cell came from, prev or next. (A destination's
 * delivery IDs have exit.c's own chanmap owner.) */
static void chain_cell(void *obj, struct link *l, const struct cell *c)
{
    struct relay_chain *ch = obj;
    struct relay *r = ch->r;

    if (l == ch->prev && c->chain_id == ch->prev_id) {
        if (c->cmd == CELL_CHAIN_FWD)
            chain_fwd(ch, c);
        else if (c->cmd == CELL_CHAIN_DESTROY)
            relay_chain_end(ch, destroy_reason(c), false, true);
        else
            r->st.dropped[RD_BAD_CELL]++;
    } else if (l == ch->next && c->chain_id == ch->next_id) {
        if (c->cmd == CELL_CHAIN_BACK)
            chain_back(ch, c);
        else if (c->cmd == CELL_CHAIN_DESTROY)
            relay_chain_end(ch, destroy_reason(c), true, false);
        else
            r->st.dropped[RD_BAD_CELL]++;
    } else {
        r->st.dropped[RD_BAD_CELL]++; /* a slot this chain no longer uses */
    }
}

static void chain_link_closed(void *obj, struct link *l, uint32_t id)
{
    struct relay_chain *ch = obj;
    struct relay *r = ch->r;

    if (l == ch->prev && id == ch->prev_id) {
        ch->prev = NULL;
        relay_chain_end(ch, DESTROY_R_LINK_CLOSED, false, true);
    } else if (l == ch->next && id == ch->next_id) {
        uint8_t reason = DESTROY_R_LINK_CLOSED;

        ch->next = NULL;
        /* Tell the sender, under our backward key, that the hop after us
         * is gone, and keep our part: it can replace just that position
         * and set up only the hops from there on (BODY_EXTEND). */
        if (ch->state == RCH_OPEN && relay_originate(ch, BODY_BROKEN, &reason, 1) == 0) {
            relay_chain_set_state(ch, RCH_BROKEN);
            r->st.broken++;
            return;
        }
        relay_chain_end(ch, DESTROY_R_LINK_CLOSED, true, false);
    }
}

/* ---- the chain table as a whole ---- */

/* Chains that carried no cell since the last tick give back what their
 * AEAD contexts hold (onion_keys_idle); the next cell makes them again. So
 * an idle chain costs its struct and its table entries, and a busy one a
 * key schedule per tick at most, never a malloc per cell. */
void relay_chains_tick(struct relay *r, uint64_t now)
{
    struct relay_chain *ch, *tmp;

    HASH_ITER(hh, r->chains, ch, tmp)
    {
        if (!(ch->flags & RCHF_USED))
            onion_keys_idle(&ch->keys);
        ch->flags &= ~RCHF_USED;
        if (ch->expires_ms <= now) {
            r->st.dropped[RD_EXPIRED]++;
            relay_chain_end(ch, DESTROY_R_EXPIRED, true, true);
        } else if (ch->state == RCH_BROKEN && now - ch->broken_ms >= r->o.setup_timeout_ms) {
            relay_chain_end(ch, DESTROY_R_LINK_CLOSED, true, false); /* no repair came */
        }
    }
    relay_seen_prune(r, now);
}

void relay_chains_stop(struct relay *r)
{
    struct relay_chain *ch, *tmp;

    HASH_ITER(hh, r->chains, ch, tmp)
    {
        relay_chain_end(ch, DESTROY_R_SHUTDOWN, true, true);
    }
}

void relay_chains_free(struct relay *r)
{
    struct relay_chain *ch, *tmp;

    HASH_ITER(hh, r->chains, ch, tmp)
    {
        chain_free(r, ch);
    }
    relay_seen_prune(r, 0);
    shares_free(r, &r->link_shares);
    shares_free(r, &r->block_shares);
}

uint64_t relay_chains_bytes(const struct relay *r)
{
    const struct relay_chain *ch, *tmp;
    uint64_t heap = 0;

    HASH_ITER(hh, r->chains, ch, tmp)
    {
        heap += onion_keys_heap(&ch->keys) +
                (ch->deliv ? RELAY_MAX_DELIV * sizeof(struct relay_deliv) : 0);
    }
    return heap + (uint64_t)r->st.chains * sizeof(struct relay_chain) +
           (uint64_t)r->n_seen * sizeof(struct relay_seen) +
           (uint64_t)r->n_shares * sizeof(struct relay_share);
}

_Static_assert(RELAY_INFO_INTROS == RELAY_MAX_DELIV, "every delivery fits a chain's info");

void relay_each_chain(const struct relay *r,
                      void (*fn)(void *arg, const struct relay_chain_info *ci), void *arg)
{
    const struct relay_chain *ch, *tmp;
    uint64_t now = clock_now_ms();

    HASH_ITER(hh, r->chains, ch, tmp)
    {
        struct relay_chain_info ci;

        memset(&ci, 0, sizeof(ci));
        if (ch->prev)
            memcpy(ci.prev, ch->prev->peer_pk, OVL_ED25519_PK);
        if (ch->next) {
            memcpy(ci.next, ch->next->peer_pk, OVL_ED25519_PK);
            ci.has_next = true;
        }
        ci.exit = (ch->flags & RCHF_EXIT) != 0;
        ci.broken = ch->state == RCH_BROKEN;
        ci.age_ms = now - ch->created_ms;
        ci.expires_in_ms = ch->expires_ms > now ? ch->expires_ms - now : 0;
        ci.cells_fwd = ch->fwd_ctr;
        ci.cells_back = ch->back_ctr;
        for (unsigned i = 0; i < ch->n_deliv; i++) {
            const struct relay_deliv *d = &ch->deliv[i];

            if (!d->link)
                continue;
            ci.delivs++;
            /* A hidden destination shows as the relay that introduces it. */
            if (d->flags & DELIVF_INTRO)
                memcpy(ci.intros[ci.n_intros++], d->link->peer_pk, OVL_ED25519_PK);
        }
        fn(arg, &ci);
    }
}
