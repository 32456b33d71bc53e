/* lines.c - which line of chains carries a SOCKS stream (docs/PROTOCOL.md
 * 19.13): classes of streams by their SOCKS credentials (isolation keys),
 * the client's view of the registered exits and their policies, the line
 * whose exit takes a target or the exit a new line ends at, and the end
 * of lines no stream uses.
 *
 * The view holds the exits of the relay list (at most CLIENT_MAX_EXITS, a
 * uniform sample beyond that). It is fetched when a stream needs it and
 * it is older than VIEW_AGE_MS; only the first fetch makes streams wait.
 * A failed fetch is not tried again for VIEW_RETRY_MS, so streams that
 * cannot be placed fail rather than ask the bootstrap in a loop.
 */
#include <stdlib.h>
#include <string.h>

#include <utlist.h>

#include "chain/stream.h"
#include "client/client_int.h"
#include "dir/select.h"
#include "lib/encode.h"

#define VIEW_AGE_MS   60000 /* a view older than this is fetched again */
#define VIEW_RETRY_MS 1000  /* no fetch this soon after one failed */

void lines_class_key(const uint8_t secret[32], const uint8_t *user, size_t ulen,
                     const uint8_t *pass, size_t plen, uint8_t key[CLIENT_CLASS_KEY])
{
    uint8_t ikm[2 + 2 * 255], out[OVL_HASH_LEN];
    size_t n = 0;

    /* Each part with its length, so no two pairs of credentials meet. */
    ulen = ulen > 255 ? 255 : ulen;
    plen = plen > 255 ? 255 : plen;
    ikm[n++] = (uint8_t)ulen;
    memcpy(ikm + n, user, ulen);
    n += ulen;
    ikm[n++] = (uint8_t)plen;
    memcpy(ikm + n, pass, plen);
    n += plen;
    ovl_kdf2(out, NULL, secret, ikm, n);
    memcpy(key, out, CLIENT_CLASS_KEY);
    ovl_wipe(ikm, sizeof(ikm));
    ovl_wipe(out, sizeof(out));
}

bool lines_accepts(const struct desc *d, const struct stream_target *t, bool allow_private)
{
    struct exit_policy p;
    size_t len = t->atyp == STA_IPV4 ? 4 : 16;

    if (!(d->flags & DESC_EXIT) || exit_policy_decode(&p, d->policy, d->policy_len) != 0)
        return false;
    if (t->atyp == STA_NAME)
        return exit_policy_may_accept_port(&p, t->port);
    return (allow_private || desc_addr_public(t->addr, len)) &&
           exit_policy_match(&p, t->addr, len, t->port);
}

int lines_pick_exit(const struct desc *exits, unsigned n, const struct stream_target *t,
                    bool allow_private, bool by_capacity)
{
    const struct desc **cand = calloc(n ? n : 1, sizeof(*cand));
    unsigned i, k = 0;
    int pick = -1;

    if (!cand)
        return OVL_ENOMEM;
    for (i = 0; i < n; i++)
        if (lines_accepts(&exits[i], t, allow_private))
            cand[k++] = &exits[i];
    if (select_relays(cand, k, 1, false, by_capacity) == 1)
        pick = (int)(cand[0] - exits);
    free(cand);
    return pick;
}

/* ---- the view of the exits ---- */

static void on_view(void *arg, int err, const struct desc *relays, unsigned count)
{
    struct client *c = arg;
    struct desc *x = NULL;
    unsigned i, j, seen = 0;

    c->flags &= ~CF_VIEW;
    if (!err && !(x = calloc(count < CLIENT_MAX_EXITS ? count + 1 : CLIENT_MAX_EXITS, sizeof(*x))))
        err = OVL_ENOMEM;
    for (i = 0; !err && i < count; i++) {
        const struct desc *d = &relays[i];

        if ((d->flags & (DESC_RELAY | DESC_EXIT)) != (DESC_RELAY | DESC_EXIT) ||
            !(d->suites & c->n->opts.aead_suites) ||
            memcmp(d->id_pk, c->n->id.pk, OVL_ED25519_PK) == 0)
            continue;
        /* Beyond the cap, a uniform sample of them (reservoir). */
        j = seen < CLIENT_MAX_EXITS ? seen : ovl_random_uniform(seen + 1);
        seen++;
        if (j < CLIENT_MAX_EXITS)
            x[j] = *d;
    }
    if (err) {
        log_info(&c->n->log, "client: no relay list for the exits: %s", ovl_strerror(err));
        c->view_try_ms = clock_now_ms(); /* not again at once */
    } else {
        free(c->exits);
        c->exits = x;
        c->view_ms = clock_now_ms();
        c->n_exits = seen < CLIENT_MAX_EXITS ? seen : CLIENT_MAX_EXITS;
    }
    c->view_cb(c);
}

/* 0 when the view may be used (a fetch of a newer one may be under way);
 * OVL_EAGAIN while the first one is fetched; OVL_ECLOSED without one. */
static int view_get(struct client *c)
{
    uint64_t now = clock_now_ms();

    if (!(c->flags & (CF_VIEW | CF_STOPPED)) && (!c->view_ms || now - c->view_ms >= VIEW_AGE_MS) &&
        (!c->view_try_ms || now - c->view_try_ms >= VIEW_RETRY_MS)) {
        c->view_try_ms = 0;
        if (dir_request_list(c->n->dir, on_view, c) == 0)
            c->flags |= CF_VIEW;
    }
    if (c->view_ms)
        return 0;
    return (c->flags & CF_VIEW) ? OVL_EAGAIN : OVL_ECLOSED;
}

void lines_stop(struct client *c)
{
    if (c->flags & CF_VIEW)
        dir_cancel(c->n->dir, c);
    c->flags &= ~CF_VIEW;
    free(c->exits);
    c->exits = NULL;
    c->n_exits = 0;
}

/* ---- lines ---- */

/* Whether line is of the class key (NULL: the default class). */
static bool line_of(const struct cline *line, const uint8_t *key)
{
    if (!key)
        return !(line->flags & CLF_KEYED);
    return (line->flags & CLF_KEYED) && ovl_equal(line->key, key, CLIENT_CLASS_KEY);
}

/* Whether line's streams to t reach an exit that takes them: only a line
 * with an exit of its own, kept by all its chains. A line without one (the
 * main line) changes its exit with every replacement, which would end the
 * stream's connection there. */
static bool line_takes(const struct cline *line, const struct stream_target *t, bool ap)
{
    return (line->flags & CLF_EXIT) && lines_accepts(&line->exit, t, ap);
}

/* Free the stream line that has been idle longest, to make room; false
 * when every line has streams. */
static bool line_evict(struct client *c)
{
    struct cline *line, *old = NULL;

    DL_FOREACH(c->lines, line)
    {
        if (line != &c->main && !(line->flags & CLF_INTRO) && !line->streams &&
            (!old || line->idle_ms < old->idle_ms))
            old = line;
    }
    if (old)
        cchain_line_free(old);
    return old != NULL;
}

/* A new line for the class key, ending at exit (NULL: any). */
static int line_new(struct client *c, const uint8_t *key, const struct desc *exit,
                    struct cline **out)
{
    struct cline *line;

    if (c->n_lines >= c->o.max_chains && !line_evict(c))
        return OVL_ENOMEM; /* the cap */
    line = calloc(1, sizeof(*line));
    if (!line)
        return OVL_ENOMEM;
    if (key) {
        line->flags |= CLF_KEYED;
        memcpy(line->key, key, CLIENT_CLASS_KEY);
    }
    if (exit) {
        line->flags |= CLF_EXIT;
        line->exit = *exit;
    }
    cchain_line_add(c, line);
    *out = line;
    return 0;
}

int lines_place(struct client *c, const uint8_t *key, const struct stream_target *t,
                struct cline **out)
{
    bool ap = dir_allow_private(c->n->dir);
    struct cline *line;
    int rc, x = -1;

    *out = NULL;
    if (t) {
        rc = view_get(c);
        if (rc)
            return rc;
        x = lines_pick_exit(c->exits, c->n_exits, t, ap, c->o.by_capacity);
        if (x < 0)
            return x == -1 ? OVL_EPERM : x;
    }
    DL_FOREACH(c->lines, line)
    {
        if (!(line->flags & (CLF_DEAD | CLF_INTRO)) && line_of(line, key) &&
            (!t || line_takes(line, t, ap))) {
            *out = line;
            return 0;
        }
    }
    return line_new(c, key, t ? &c->exits[x] : NULL, out);
}

void lines_label(const struct cline *line, char *out)
{
    if (line->flags & CLF_INTRO)
        memcpy(out, "intro", sizeof("intro"));
    else if (!(line->flags & CLF_KEYED) || enc_hex(out + 1, CLIENT_CLASS_LABEL - 1, line->key, 4) != 0)
        memcpy(out, "default", sizeof("default"));
    else
        out[0] = 'k';
}

void lines_tick(struct client *c, uint64_t now)
{
    struct cline *line, *tmp;

    DL_FOREACH_SAFE(c->lines, line, tmp)
    {
        if (line != &c->main && !(line->flags & CLF_INTRO) && !line->streams &&
            ((line->flags & CLF_DEAD) || now - line->idle_ms >= c->o.chain_idle_ms))
            cchain_line_free(line);
    }
}
