/* route.c - a chain's route: which relays, in which positions, with which
 * backups (docs/PROTOCOL.md 19.1, 19.14).
 *
 * A route is laid out in three parts: the guard (position 0, with the
 * next usable guards as its backups) unless guards are off; the middle
 * hops, drawn by the bootstrap or picked here from the signed relay list;
 * and the line's exit when it has one (CLF_EXIT: its streams live there),
 * without backups. The bootstrap is asked only for the middle hops, with
 * nothing excluded but ourselves, and offers [chain] choices of them: the
 * client sets aside those that name its guard, the line's exit, the
 * destination it must avoid or a relay related to those (same subnet,
 * with the subnet rule) and takes one of the others uniformly, so the
 * bootstrap learns neither the guard nor which offer is used. When none
 * fits, or no bootstrap answers, the middle hops are picked locally by
 * the same rule (select.h).
 */
#include <stdlib.h>
#include <string.h>

#include "client/client_int.h"
#include "client/guard.h"
#include "dir/select.h"

_Static_assert(CLIENT_MAX_CHOICES == DIR_MAX_CHOICES, "[chain] choices is one request's count");

void route_drop(struct dir_chain *route, uint8_t avail[ONION_MAX_HOPS], unsigned p, unsigned k)
{
    memmove(&route->hops[p][k], &route->hops[p][k + 1], (avail[p] - k) * sizeof(route->hops[p][k]));
    avail[p]--;
}

/* Whether d is the relay pk or, with near, shares its subnet. */
static bool route_hits(const struct desc *d, const uint8_t *pk, const struct desc *near)
{
    return memcmp(d->id_pk, pk, OVL_ED25519_PK) == 0 || (near && select_same_subnet(d, near));
}

int route_avoid(struct dir_chain *r, uint8_t avail[ONION_MAX_HOPS], unsigned length,
                const uint8_t *pk, const struct desc *near)
{
    for (unsigned p = 0; p < length; p++) {
        for (unsigned k = avail[p]; k > 0; k--)
            if (route_hits(&r->hops[p][k], pk, near))
                route_drop(r, avail, p, k);
        if (route_hits(&r->hops[p][0], pk, near)) {
            if (avail[p] == 0)
                return OVL_ENOENT;
            route_drop(r, avail, p, 0);
        }
    }
    return 0;
}

/* The line's exit, or NULL: a line without one. */
static const struct desc *line_exit(const struct cline *line)
{
    return (line->flags & CLF_EXIT) ? &line->exit : NULL;
}

unsigned route_middle(const struct cchain *ch)
{
    return ch->c->o.length - ch->lead - ((ch->line->flags & CLF_EXIT) != 0);
}

/* Whether d may not be a middle hop of ch: ourselves, the destination
 * to avoid, the guard or the line's exit, or related to either. */
static bool route_clash(const struct cchain *ch, const struct desc *d)
{
    const struct client *c = ch->c;
    const struct desc *x = line_exit(ch->line);
    bool sub = c->o.distinct_subnets;

    return memcmp(d->id_pk, c->n->id.pk, OVL_ED25519_PK) == 0 ||
           (ch->has_avoid && memcmp(d->id_pk, ch->avoid, OVL_ED25519_PK) == 0) ||
           (ch->lead && guard_related(d, &ch->route.hops[0][0], sub)) ||
           (x && guard_related(d, x, sub));
}

int route_put_guard(struct cchain *ch)
{
    struct client *c = ch->c;
    const struct desc *x = line_exit(ch->line);
    const struct guard *g[1 + DIR_MAX_BACKUPS];
    unsigned k;

    memset(&ch->route, 0, sizeof(ch->route));
    memset(ch->avail, 0, sizeof(ch->avail));
    ch->lead = 0;
    ch->length = 0;
    /* Without guards, or a chain of one hop that is the line's exit. */
    if (!c->guards || c->o.length - (x != NULL) == 0)
        return 0;
    k = guard_usable(c->guards, clock_wall_ms(), x, ch->has_avoid ? ch->avoid : NULL, g,
                     1 + c->o.backups);
    if (k == 0)
        return OVL_ENOENT;
    for (unsigned i = 0; i < k; i++)
        ch->route.hops[0][i] = g[i]->d;
    ch->avail[0] = (uint8_t)(k - 1);
    ch->lead = 1;
    ch->length = 1;
    return 0;
}

/* Whether offer o fits ch: the middle's shape, and no relay, backups
 * included, that route_clash refuses. An offer is a uniform draw of
 * distinct relays, so the ones that name none of those are a uniform
 * draw among the others: the choice keeps the selection law. */
static bool route_fits(const struct cchain *ch, const struct dir_chain *o)
{
    if (o->length != route_middle(ch) || o->backups > DIR_MAX_BACKUPS)
        return false;
    for (unsigned p = 0; p < o->length; p++)
        for (unsigned k = 0; k <= o->backups; k++)
            if (route_clash(ch, &o->hops[p][k]))
                return false;
    return true;
}

/* Whether offer o's hops are those of the middle of cur, the line's
 * current chain. */
static bool route_same(const struct cchain *cur, const struct dir_chain *o)
{
    if (!cur || cur->lead + o->length > cur->length)
        return false;
    for (unsigned p = 0; p < o->length; p++)
        if (memcmp(cur->route.hops[cur->lead + p][0].id_pk, o->hops[p][0].id_pk, OVL_ED25519_PK) !=
            0)
            return false;
    return true;
}

int route_choose(struct cchain *ch, const struct dir_chain *offers, unsigned n)
{
    struct client *c = ch->c;
    unsigned other[CLIENT_MAX_CHOICES], no = 0;

    for (unsigned i = 0; i < n && i < CLIENT_MAX_CHOICES; i++) {
        c->st.routes_offered++;
        if (!route_fits(ch, &offers[i])) {
            c->st.routes_unfit++;
            continue;
        }
        if (!route_same(ch->line->current, &offers[i]))
            other[no++] = i;
    }
    /* A route other than the one in use: a set the bootstrap answers
     * again from its cache still moves the line on; when every offer that
     * fits is the current route, the hops are picked locally instead. */
    return no ? (int)other[ovl_random_uniform(no)] : -1;
}

/* A backup guard that is a middle hop of ch would meet itself there if
 * it took position 0: drop it. */
static void route_trim_guards(struct cchain *ch)
{
    for (unsigned k = ch->lead ? ch->avail[0] : 0; k > 0; k--)
        for (unsigned p = 1; p < ch->length; p++)
            if (memcmp(ch->route.hops[0][k].id_pk, ch->route.hops[p][0].id_pk, OVL_ED25519_PK) ==
                0) {
                route_drop(&ch->route, ch->avail, 0, k);
                break;
            }
}

void route_take(struct cchain *ch, const struct dir_chain *o)
{
    unsigned lead = ch->lead;

    memcpy(ch->route.ref, o->ref, sizeof(ch->route.ref));
    ch->route.expires_ms = o->expires_ms;
    ch->route.backups = o->backups;
    for (unsigned p = 0; p < o->length; p++) {
        for (unsigned k = 0; k <= o->backups; k++)
            ch->route.hops[lead + p][k] = o->hops[p][k];
        ch->avail[lead + p] = (uint8_t)o->backups;
    }
    ch->length = ch->route.length = lead + o->length;
    route_trim_guards(ch);
}

int route_pick(struct cchain *ch, const struct desc *relays, unsigned count)
{
    struct client *c = ch->c;
    const struct desc **cand;
    unsigned n = 0, want = route_middle(ch), lead = ch->lead, got;

    cand = calloc(count ? count : 1, sizeof(*cand));
    if (!cand)
        return OVL_ENOMEM;
    for (unsigned i = 0; i < count; i++)
        if ((relays[i].flags & DESC_RELAY) && (relays[i].suites & c->n->opts.aead_suites) &&
            !route_clash(ch, &relays[i]))
            cand[n++] = &relays[i];
    /* The first want picks are the hops, by the selection law; the ones
     * after them, while there are relays, their backups in turn. */
    got =
        select_relays(cand, n, want * (1 + c->o.backups), c->o.distinct_subnets, c->o.by_capacity);
    if (got < want) {
        free(cand);
        return OVL_ENOENT;
    }
    for (unsigned i = 0; i < want; i++) {
        ch->route.hops[lead + i][0] = *cand[i];
        ch->avail[lead + i] = 0;
    }
    for (unsigned i = want; i < got; i++) {
        unsigned p = lead + (i - want) % want;

        ch->route.hops[p][++ch->avail[p]] = *cand[i];
    }
    free(cand);
    ch->length = ch->route.length = lead + want;
    route_trim_guards(ch);
    return 0;
}

int route_put_exit(struct cchain *ch)
{
    const struct cline *line = ch->line;
    unsigned last = ch->length;

    if (!(line->flags & CLF_EXIT))
        return 0;
    if (last >= ONION_MAX_HOPS || route_avoid(&ch->route, ch->avail, last, line->exit.id_pk, NULL))
        return OVL_ENOENT;
    ch->route.hops[last][0] = line->exit;
    ch->avail[last] = 0;
    ch->route.length = ch->length = last + 1;
    return 0;
}
