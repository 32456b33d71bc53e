/* dirpub.c - publishing ourselves to the bootstraps.
 *
 * A relay or client keeps an onion key pair (rotated every onion_rotate_ms,
 * the previous key usable for onion_overlap_ms more) and a signed
 * descriptor naming the current key and our listen addresses, kept ready
 * as a whole DIR_REGISTER request. It registers on every bootstrap link as
 * it opens, heartbeats every heartbeat_ms, and registers again when the
 * key rotates, the descriptor nears its expiry, or a bootstrap answers a
 * heartbeat with "unknown". A bootstrap that also relays lists itself in
 * its own registry instead.
 */
#include <stdlib.h>
#include <string.h>

#include "core/link.h"
#include "dir/dir_int.h"

/* ---- our onion keys and descriptor ------------------------------------ */

static void dir_onion_prune(struct dir *d, uint64_t now)
{
    unsigned i = 1;

    while (i < d->n_onion) {
        if (d->onion[i].retire_ms && d->onion[i].retire_ms <= now) {
            ovl_wipe(&d->onion[i], sizeof(d->onion[i]));
            memmove(&d->onion[i], &d->onion[i + 1], (d->n_onion - i - 1) * sizeof(d->onion[0]));
            d->n_onion--;
            ovl_wipe(&d->onion[d->n_onion], sizeof(d->onion[0]));
        } else {
            i++;
        }
    }
}

/* Make a new current onion key; the previous one starts its overlap. */
void dir_onion_new(struct dir *d)
{
    uint64_t now = clock_now_ms();

    if (d->n_onion == DIR_MAX_ONION) /* the oldest goes early rather than the cap growing */
        ovl_wipe(&d->onion[--d->n_onion], sizeof(d->onion[0]));
    if (d->n_onion > 0) {
        memmove(&d->onion[1], &d->onion[0], d->n_onion * sizeof(d->onion[0]));
        d->onion[1].retire_ms = now + d->o.onion_overlap_ms;
    }
    ovl_x25519_keypair(d->onion[0].pk, d->onion[0].sk);
    d->onion[0].created_ms = now;
    d->onion[0].retire_ms = 0;
    d->n_onion++;
    d->desc_len = 0; /* the descriptor names the current key: rebuild it */
}

/* Return our onion keys, current first. */
const struct dir_onion *dir_onion_keys(const struct dir *d, unsigned *count)
{
    *count = d->n_onion;
    return d->onion;
}

/* Return when onion key k stops opening anything. */
uint64_t dir_onion_expiry(const struct dir *d, const struct dir_onion *k)
{
    if (k->retire_ms)
        return k->retire_ms;
    return k->created_ms + d->o.onion_rotate_ms + d->o.onion_overlap_ms;
}

/* Return false, logged, when o's family names n itself or one relay
 * twice, or is too long: desc_sign would refuse our descriptor. */
bool dir_family_ok(struct node *n, const struct dir_opts *o)
{
    if (o->n_family > DESC_FAMILY_MAX)
        return false;
    for (unsigned i = 0; i < o->n_family; i++) {
        const char *why =
            memcmp(o->family[i], n->id.pk, OVL_ED25519_PK) == 0 ? "this node itself" : NULL;

        for (unsigned j = 0; j < i && !why; j++)
            if (memcmp(o->family[i], o->family[j], OVL_ED25519_PK) == 0)
                why = "one relay twice";
        if (why) {
            log_error(&n->log, "directory: [relay] family names %s", why);
            return false;
        }
    }
    return true;
}

/* Our family, when we relay and declare one (select.h: it counts only
 * with the relays that name us too). */
static void dir_desc_family(const struct dir *d, struct desc *ds)
{
    if (!(ds->flags & DESC_RELAY) || !d->o.n_family)
        return;
    ds->flags |= DESC_FAMILY;
    ds->n_family = d->o.n_family;
    memcpy(ds->family, d->o.family, (size_t)d->o.n_family * OVL_ED25519_PK);
}

/* What our descriptor claims: [relay] capacity, or the bandwidth limit
 * when that is lower (KiB/s, at least 1); and whether the relay is
 * dormant (core/bw.h). The heartbeat compares them with the published
 * ones: a reload or an accounting period tells the bootstraps at once. */
static uint32_t dir_desc_capacity(const struct dir *d)
{
    uint64_t cap = d->o.capacity_kib, rate = bw_cap_rate(&d->n->bw);

    if (rate) {
        rate = rate / 1024 ? rate / 1024 : 1;
        cap = cap && cap < rate ? cap : rate;
    }
    return cap > UINT32_MAX ? UINT32_MAX : (uint32_t)cap;
}

static bool dir_desc_stale(const struct dir *d)
{
    return d->desc_len && (d->desc_capacity != dir_desc_capacity(d) ||
                           d->desc_dormant != (uint8_t)bw_dormant(&d->n->bw));
}

/* Build and sign our descriptor; OVL_ENOENT when we have nothing to publish. */
static int dir_build_desc(struct dir *d)
{
    struct node *n = d->n;
    struct desc ds;
    int rc;

    memset(&ds, 0, sizeof(ds));
    if (n->roles & ROLE_RELAY)
        ds.flags |= DESC_RELAY;
    if (n->roles & ROLE_CLIENT)
        ds.flags |= DESC_ENDPOINT;
    /* Only what others may dial: bootstraps refuse the rest (dir.h). */
    for (unsigned i = 0; i < n->n_listeners && ds.n_uris < DESC_MAX_URIS; i++)
        if (n->listen_uri[i][0] && (d->o.allow_private || desc_uri_public(n->listen_uri[i])))
            memcpy(ds.uris[ds.n_uris++], n->listen_uri[i], OVL_URI_MAX);
    if (!ds.flags || !ds.n_uris) {
        if (!(d->flags & DIR_F_SAID_NO_DESC))
            log_info(&n->log, "directory: not publishing a descriptor (%s)",
                     !ds.flags         ? "neither relay nor client"
                     : !n->n_listeners ? "no listen address"
                                       : "no public listen address");
        d->flags |= DIR_F_SAID_NO_DESC;
        return OVL_ENOENT;
    }
    ds.suites = (uint8_t)n->opts.aead_suites;
    ds.published_ms = clock_wall_ms();
    ds.expires_ms = ds.published_ms + d->o.desc_lifetime_ms;
    memcpy(ds.id_pk, n->id.pk, OVL_ED25519_PK);
    memcpy(ds.onion_pk, d->onion[0].pk, OVL_X25519_LEN);
    ds.capacity = dir_desc_capacity(d);
    if ((ds.flags & DESC_RELAY) && bw_dormant(&n->bw))
        ds.flags |= DESC_DORMANT;
    rc = 0;
    if ((ds.flags & DESC_RELAY) && d->o.exit_policy.n) {
        size_t plen = 0;

        rc = exit_policy_encode(&d->o.exit_policy, ds.policy, sizeof(ds.policy), &plen);
        ds.policy_len = (uint8_t)plen;
        ds.flags |= DESC_EXIT;
    }
    dir_desc_family(d, &ds);
    if (rc == 0)
        rc = desc_sign(&ds, &n->id, d->desc_raw + 1, sizeof(d->desc_raw) - 1, &d->desc_len);
    if (rc) {
        log_error(&n->log, "directory: cannot sign our descriptor: %s", ovl_strerror(rc));
        d->desc_len = 0;
        return rc;
    }
    d->desc_raw[0] = DIR_REGISTER; /* kept ready as a whole DIR_REGISTER request */
    d->desc_expires_ms = ds.expires_ms;
    d->desc_capacity = ds.capacity;
    d->desc_dormant = (ds.flags & DESC_DORMANT) != 0;
    return 0;
}

/* Make sure d->desc_raw holds a descriptor that is not close to expiry
 * and says what is true now: 0 if it did, 1 if a new one was built, else
 * an error. */
static int dir_ensure_desc(struct dir *d)
{
    uint64_t margin = 2ull * d->o.heartbeat_ms;
    int rc;

    if (d->desc_len && clock_wall_ms() + margin < d->desc_expires_ms && !dir_desc_stale(d))
        return 0;
    d->desc_len = 0;
    rc = dir_build_desc(d);
    return rc ? rc : 1;
}

/* Register in our own registry: a bootstrap that also relays lists
 * itself, no link to itself needed. */
void dir_self_register(struct dir *d, bool force)
{
    struct node *n = d->n;
    int rc;

    if (!d->reg || dir_ensure_desc(d) < 0)
        return;
    if (!force && registry_heartbeat(d->reg, n->id.pk, clock_now_ms()) == 0)
        return;
    rc = registry_register(d->reg, n->id.pk, d->desc_raw + 1, d->desc_len, clock_now_ms(),
                           clock_wall_ms());
    if (rc) {
        d->st.registrations_failed++;
        log_warn(&n->log, "directory: cannot register in our own registry: %s", ovl_strerror(rc));
        return;
    }
    d->st.registrations_ok++;
    if (!(d->flags & DIR_F_REGISTERED))
        log_info(&n->log, "directory: registered in our own registry");
    d->flags |= DIR_F_REGISTERED;
}

/* Send our descriptor to bootstrap i over l. */
void dir_register_with(struct dir *d, unsigned i, struct link *l)
{
    struct dir_bs *b = &d->bs[i];
    int rc;

    if (dir_ensure_desc(d) < 0)
        return;
    b->reg_id = dirmsg_next_id(&d->next_id);
    rc = dirmsg_send(l, CELL_DIR_REQUEST, b->reg_id, d->desc_raw, d->desc_len + 1);
    if (rc) {
        d->st.registrations_failed++;
        log_debug(&d->n->log, "directory: cannot send registration to %s: %s", b->spec.name,
                  ovl_strerror(rc));
        b->reg_id = 0;
        return;
    }
    log_debug(&d->n->log, "directory: registering with bootstrap %s", b->spec.name);
}

/* Handle the reply to a registration or heartbeat from bootstrap i. */
void dir_on_reg_reply(struct dir *d, unsigned i, struct link *l, uint32_t id, uint8_t status)
{
    struct dir_bs *b = &d->bs[i];

    if (id == b->reg_id) {
        b->reg_id = 0;
        if (status == DIR_STATUS_OK) {
            d->st.registrations_ok++;
            if (!b->registered)
                log_info(&d->n->log, "directory: registered with bootstrap %s", b->spec.name);
            b->registered = true;
            d->flags |= DIR_F_REGISTERED;
        } else {
            d->st.registrations_failed++;
            log_warn(&d->n->log, "directory: bootstrap %s refused our descriptor (status %u%s)",
                     b->spec.name, status,
                     status == DIR_STATUS_ADDRESS ? ": address not public" : "");
        }
    } else if (id == b->hb_id) {
        b->hb_id = 0;
        if (status == DIR_STATUS_UNKNOWN) { /* it forgot us (restart, expiry) */
            log_info(&d->n->log, "directory: bootstrap %s forgot us, registering again",
                     b->spec.name);
            b->registered = false;
            dir_register_with(d, i, l);
        }
    } else {
        log_debug(&d->n->log, "directory: late reply %08x from %s", id, b->spec.name);
    }
}

/* Forget that bootstrap i accepted us: our last link to it closed. */
void dir_bs_unlinked(struct dir *d, unsigned i)
{
    d->bs[i].registered = false;
}

static void dir_heartbeat_cb(uv_timer_t *t)
{
    static const uint8_t hb = DIR_HEARTBEAT;
    struct dir *d = t->data;
    bool fresh;
    int rc;

    dir_onion_prune(d, clock_now_ms());
    if (!d->desc_len) /* nothing published yet: that starts when a bootstrap link opens */
        return;
    rc = dir_ensure_desc(d);
    if (rc < 0)
        return;
    fresh = rc > 0; /* the old descriptor was about to expire, or says what is no more */
    dir_self_register(d, fresh);
    for (unsigned i = 0; i < d->n_bs; i++) {
        struct dir_bs *b = &d->bs[i];
        struct link *l = link_find(d->n, b->spec.pk);

        if (!l)
            continue;
        if (fresh || !b->registered) { /* new descriptor, or an attempt failed or got lost */
            dir_register_with(d, i, l);
            continue;
        }
        b->hb_id = dirmsg_next_id(&d->next_id);
        if (dirmsg_send(l, CELL_DIR_REQUEST, b->hb_id, &hb, 1) == 0)
            d->st.heartbeats_sent++;
    }
}

/* Sign a new descriptor now and register it everywhere. */
void dir_publish_again(struct dir *d)
{
    struct link *l;

    d->desc_len = 0;
    if (dir_ensure_desc(d) < 0)
        return;
    dir_self_register(d, true);
    for (unsigned i = 0; i < d->n_bs; i++)
        if ((l = link_find(d->n, d->bs[i].spec.pk)) != NULL)
            dir_register_with(d, i, l);
}

static void dir_rotate_cb(uv_timer_t *t)
{
    struct dir *d = t->data;

    dir_onion_prune(d, clock_now_ms());
    dir_onion_new(d);
    log_info(&d->n->log, "directory: rotated our onion key");
    dir_publish_again(d);
}

/* Make bs (n of them) the bootstraps; from[i]: the index of bs[i] among
 * the old ones, whose registration state it keeps, or -1. */
void dir_bs_replace(struct dir *d, const struct dir_bootstrap_spec *bs, unsigned n, const int *from)
{
    struct dir_bs nb[DIR_MAX_BOOTSTRAPS];

    memset(nb, 0, sizeof(nb));
    for (unsigned i = 0; i < n; i++) {
        if (from[i] >= 0)
            nb[i] = d->bs[from[i]];
        nb[i].spec = bs[i];
    }
    memcpy(d->bs, nb, sizeof(nb));
    d->n_bs = n;
}

/* Start the heartbeat and rotation timers. */
void dir_publish_start(struct dir *d)
{
    uv_timer_start(d->heartbeat, dir_heartbeat_cb, d->o.heartbeat_ms, d->o.heartbeat_ms);
    uv_timer_start(d->rotate, dir_rotate_cb, d->o.onion_rotate_ms, d->o.onion_rotate_ms);
}

/* True once a bootstrap (or our own registry) accepted our descriptor. */
bool dir_registered(const struct dir *d)
{
    return d && (d->flags & DIR_F_REGISTERED);
}
