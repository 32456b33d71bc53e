/* guard.c - a client's entry guards: sampling, the rules that keep and
 * replace them, and the file they live in (guard.h says why and how). */
#include "client/guard.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/clock.h"
#include "lib/crypto.h"
#include "lib/encode.h"

#define GUARD_MAGIC "ovl-guards 1\n"

bool guard_related(const struct desc *a, const struct desc *b, bool distinct_subnets)
{
    return memcmp(a->id_pk, b->id_pk, OVL_ED25519_PK) == 0 ||
           select_related(a, b, distinct_subnets);
}

void guard_init(struct guard_set *gs, const struct guard_opts *o)
{
    memset(gs, 0, sizeof(*gs));
    gs->o = *o;
    if (gs->o.want > GUARD_WANT_MAX)
        gs->o.want = GUARD_WANT_MAX;
}

/* ---- the file ---- */

size_t guard_encode(const struct guard_set *gs, char *out, size_t cap)
{
    size_t n = 0;
    int w = snprintf(out, cap, "%s", GUARD_MAGIC);

    if (w < 0 || (size_t)w >= cap)
        return 0;
    n = (size_t)w;
    for (unsigned i = 0; i < gs->n; i++) {
        const struct guard *g = &gs->g[i];
        char hex[2 * OVL_ED25519_PK + 1];

        if (enc_hex(hex, sizeof(hex), g->id, OVL_ED25519_PK) != 0)
            return 0;
        w = snprintf(out + n, cap - n, "%s %" PRIu64 " %" PRIu64 " %" PRIu64 "\n", hex, g->added_ms,
                     g->expires_ms, g->bad_since_ms);
        if (w < 0 || (size_t)w >= cap - n)
            return 0;
        n += (size_t)w;
    }
    return n;
}

/* Parse one line "hex added expires bad_since" (NUL-terminated) into g. */
static int guard_parse_line(struct guard *g, const char *line)
{
    char hex[2 * OVL_ED25519_PK + 1];
    char extra;

    memset(g, 0, sizeof(*g));
    if (sscanf(line, "%64s %" SCNu64 " %" SCNu64 " %" SCNu64 " %c", hex, &g->added_ms,
               &g->expires_ms, &g->bad_since_ms, &extra) != 4 ||
        strlen(hex) != 2 * OVL_ED25519_PK || dec_hex(g->id, OVL_ED25519_PK, hex) != 0 ||
        g->expires_ms <= g->added_ms)
        return OVL_EPROTO;
    return 0;
}

int guard_decode(struct guard_set *gs, const uint8_t *buf, size_t len, uint64_t now)
{
    struct guard *g = calloc(GUARD_MAX, sizeof(*g));
    char line[160];
    size_t at = strlen(GUARD_MAGIC);
    unsigned n = 0;

    if (!g)
        return OVL_ENOMEM;
    if (len < at || memcmp(buf, GUARD_MAGIC, at) != 0)
        goto bad;
    while (at < len) {
        const uint8_t *nl = memchr(buf + at, '\n', len - at);
        size_t ll = nl ? (size_t)(nl - (buf + at)) : len - at;

        if (!nl || ll >= sizeof(line) || n >= GUARD_MAX)
            goto bad;
        memcpy(line, buf + at, ll);
        line[ll] = '\0';
        at += ll + 1;
        if (guard_parse_line(&g[n], line) != 0)
            goto bad;
        for (unsigned i = 0; i < n; i++)
            if (memcmp(g[i].id, g[n].id, OVL_ED25519_PK) == 0)
                goto bad;
        if (now < g[n].expires_ms) /* past its lifetime: replaced by the next list */
            n++;
    }
    memcpy(gs->g, g, n * sizeof(*g));
    gs->n = n;
    gs->have_list = false;
    free(g);
    return 0;
bad:
    free(g);
    return OVL_EPROTO;
}

/* Write the set to its file (nothing without one). */
static void guard_save(struct guard_set *gs)
{
    char buf[GUARD_FILE_MAX];
    size_t n = guard_encode(gs, buf, sizeof(buf));

    if (n && gs->file.path && statefile_write(&gs->file, (const uint8_t *)buf, n) != 0)
        return; /* out of memory: the next change writes it */
}

int guard_open(struct guard_set *gs, uv_loop_t *loop, const char *state_dir)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc = statefile_init(&gs->file, loop, state_dir, "guards");

    if (rc == 0)
        rc = statefile_read(&gs->file, GUARD_FILE_MAX, &buf, &len);
    if (rc == 0)
        rc = guard_decode(gs, buf, len, (uint64_t)clock_wall_ms());
    if (rc == 0)
        gs->st.loaded = gs->n;
    free(buf);
    return rc;
}

void guard_close(struct guard_set *gs)
{
    if (gs)
        statefile_free(&gs->file);
}

/* ---- the rules ---- */

static struct guard *guard_find(struct guard_set *gs, const uint8_t pk[OVL_ED25519_PK])
{
    for (unsigned i = 0; i < gs->n; i++)
        if (memcmp(gs->g[i].id, pk, OVL_ED25519_PK) == 0)
            return &gs->g[i];
    return NULL;
}

bool guard_is(const struct guard_set *gs, const uint8_t pk[OVL_ED25519_PK])
{
    return guard_find((struct guard_set *)gs, pk) != NULL;
}

static bool guard_up(const struct guard *g, uint64_t now)
{
    return (g->flags & GF_LISTED) && (!(g->flags & GF_FAILING) || now >= g->retry_ms);
}

unsigned guard_usable(const struct guard_set *gs, uint64_t now, const struct desc *pinned,
                      const uint8_t *avoid, const struct guard **out, unsigned max)
{
    unsigned k = 0;

    for (unsigned i = 0; i < gs->n && k < max; i++) {
        const struct guard *g = &gs->g[i];

        if (!guard_up(g, now) || (pinned && guard_related(&g->d, pinned, gs->o.distinct_subnets)) ||
            (avoid && memcmp(g->id, avoid, OVL_ED25519_PK) == 0))
            continue;
        out[k++] = g;
    }
    return k;
}

/* Whether relay d may be sampled: a relay sharing a suite with us, not
 * us, not a guard already nor (with the subnet rule) in a guard's subnet. */
static bool guard_candidate(const struct guard_set *gs, const struct desc *d,
                            const uint8_t (*gone)[OVL_ED25519_PK], unsigned n_gone)
{
    for (unsigned i = 0; i < n_gone; i++) /* replaced just now: not taken back */
        if (memcmp(gone[i], d->id_pk, OVL_ED25519_PK) == 0)
            return false;
    if (!(d->flags & DESC_RELAY) || !(d->suites & gs->o.suites) ||
        memcmp(d->id_pk, gs->o.self, OVL_ED25519_PK) == 0)
        return false;
    for (unsigned i = 0; i < gs->n; i++)
        if (memcmp(gs->g[i].id, d->id_pk, OVL_ED25519_PK) == 0 ||
            ((gs->g[i].flags & GF_LISTED) &&
             select_related(&gs->g[i].d, d, gs->o.distinct_subnets)))
            return false;
    return true;
}

/* Sample up to want more guards from relays (n) by the selection rule;
 * returns how many were added. */
static unsigned guard_sample(struct guard_set *gs, const struct desc *relays, unsigned n,
                             unsigned want, uint64_t now, const uint8_t (*gone)[OVL_ED25519_PK],
                             unsigned n_gone)
{
    const struct desc **cand = calloc(n ? n : 1, sizeof(*cand));
    unsigned k = 0, got;

    if (!cand)
        return 0;
    for (unsigned i = 0; i < n; i++)
        if (guard_candidate(gs, &relays[i], gone, n_gone))
            cand[k++] = &relays[i];
    if (want > GUARD_MAX - gs->n)
        want = GUARD_MAX - gs->n;
    got = select_relays(cand, k, want, gs->o.distinct_subnets, gs->o.by_capacity);
    for (unsigned i = 0; i < got; i++) {
        struct guard *g = &gs->g[gs->n++];

        memset(g, 0, sizeof(*g));
        memcpy(g->id, cand[i]->id_pk, OVL_ED25519_PK);
        g->added_ms = now;
        /* Uniform in [L, 2L]: guards sampled together do not all leave together. */
        g->expires_ms =
            now + gs->o.life_ms + (uint64_t)ovl_random_uniform(1000001) * gs->o.life_ms / 1000000;
        g->flags = GF_LISTED;
        g->d = *cand[i];
        gs->st.sampled++;
    }
    free(cand);
    return got;
}

/* Mark which guards relays lists; true when a bad-since changed. */
static bool guard_mark(struct guard_set *gs, const struct desc *relays, unsigned n, uint64_t now)
{
    bool changed = false;

    for (unsigned i = 0; i < gs->n; i++) {
        struct guard *g = &gs->g[i];
        const struct desc *d = NULL;

        for (unsigned j = 0; j < n && !d; j++)
            if (memcmp(relays[j].id_pk, g->id, OVL_ED25519_PK) == 0)
                d = &relays[j];
        if (d && (d->flags & DESC_RELAY) && (d->suites & gs->o.suites)) {
            g->flags |= GF_LISTED;
            g->d = *d;
            if (g->bad_since_ms && !(g->flags & GF_FAILING)) {
                g->bad_since_ms = 0;
                changed = true;
            }
        } else {
            g->flags &= ~GF_LISTED;
            if (!g->bad_since_ms) {
                g->bad_since_ms = now;
                changed = true;
            }
        }
    }
    return changed;
}

/* Drop the guards bad for down_ms or past their lifetime, keeping the
 * order of the others; gone receives their ids (*n_gone of them). */
static void guard_drop(struct guard_set *gs, uint64_t now, uint8_t (*gone)[OVL_ED25519_PK],
                       unsigned *n_gone)
{
    unsigned k = 0, n = gs->n;

    *n_gone = 0;
    for (unsigned i = 0; i < n; i++) {
        const struct guard *g = &gs->g[i];
        bool down =
            g->bad_since_ms && now >= g->bad_since_ms && now - g->bad_since_ms >= gs->o.down_ms;

        if (down || now >= g->expires_ms) {
            if (down)
                gs->st.dropped_down++;
            else
                gs->st.dropped_old++;
            memcpy(gone[(*n_gone)++], g->id, OVL_ED25519_PK);
            continue;
        }
        if (k != i)
            gs->g[k] = *g;
        k++;
    }
    gs->n = k;
}

void guard_update(struct guard_set *gs, const struct desc *relays, unsigned n, uint64_t now)
{
    const struct guard *first;
    uint8_t gone[GUARD_MAX][OVL_ED25519_PK]; /* dropped now: not sampled again at once */
    unsigned n_gone;
    bool changed = guard_mark(gs, relays, n, now);

    guard_drop(gs, now, gone, &n_gone);
    changed |= n_gone > 0;
    gs->have_list = true;
    if (gs->n < gs->o.want)
        changed |= guard_sample(gs, relays, n, gs->o.want - gs->n, now,
                                (const uint8_t(*)[OVL_ED25519_PK])gone, n_gone) > 0;
    /* None usable: one more, and again, up to twice want (so a client
     * whose own network is down does not sample half the list). */
    while (gs->n < 2 * gs->o.want && gs->n < GUARD_MAX &&
           guard_usable(gs, now, NULL, NULL, &first, 1) == 0 &&
           guard_sample(gs, relays, n, 1, now, (const uint8_t(*)[OVL_ED25519_PK])gone, n_gone) == 1)
        changed = true;
    if (changed)
        guard_save(gs);
}

void guard_failed(struct guard_set *gs, const uint8_t pk[OVL_ED25519_PK], uint64_t now)
{
    struct guard *g = guard_find(gs, pk);
    uint64_t wait = GUARD_RETRY_MS;

    if (!g)
        return;
    gs->st.failures++;
    for (uint32_t i = 0; i < g->fails && wait < GUARD_RETRY_MAX; i++)
        wait *= 2;
    g->fails++;
    g->flags |= GF_FAILING;
    g->retry_ms = now + (wait < GUARD_RETRY_MAX ? wait : GUARD_RETRY_MAX);
    if (!g->bad_since_ms) {
        g->bad_since_ms = now;
        guard_save(gs);
    }
}

void guard_succeeded(struct guard_set *gs, const uint8_t pk[OVL_ED25519_PK])
{
    struct guard *g = guard_find(gs, pk);

    if (!g)
        return;
    g->flags &= ~GF_FAILING;
    g->fails = 0;
    if (g->bad_since_ms && (g->flags & GF_LISTED)) {
        g->bad_since_ms = 0;
        guard_save(gs);
    }
}
