/* dsync.c - a bootstrap among several, and a registry that survives a
 * restart (docs/PROTOCOL.md 16.9).
 *
 * Bootstraps configured as a set replicate by pull: every heartbeat (and
 * as soon as a link to one opens) a bootstrap asks each other configured
 * bootstrap it has a link to for DIR_SYNC, whose answer is a DOC_SYNC
 * document signed by that bootstrap holding the descriptors of the nodes
 * registered directly with it. Each is held as replicated
 * (registry_replicate): listed, drawn and looked up here, alive for ttl
 * after the last sync naming it, never passed on again. A descriptor is
 * signed by its own node, so a bootstrap can add or leave out nodes, not
 * forge one. DIR_SYNC is answered only to configured bootstraps, from a
 * copy signed at most once per change of the direct nodes (or half a
 * ttl), so a peer asking often costs copies, not signatures.
 *
 * The direct nodes are also written to <data_dir>/registry (statefile.h)
 * at most once a heartbeat when they changed, and at stop; at start the
 * ones that still hold are loaded, live for ttl unless they heartbeat.
 *
 * dir_sign_nodes, which signs DOC_SYNC, also signs the relay list
 * (dirsrv.c): one walk, sizing and cut for both documents.
 */
#include <stdlib.h>
#include <string.h>

#include "core/link.h"
#include "dir/dir_int.h"

#define DSYNC_FILE        "registry"
#define DSYNC_FILE_MAX    (64u * 1024 * 1024) /* more than max_nodes' largest descriptors */
#define DSYNC_FULL_LOG_MS 60000u

/* ---- the registry on disk ---------------------------------------------- */

/* Load <data_dir>/registry into d->reg: what still holds is live now. */
static void dsync_load(struct dir *d)
{
    unsigned loaded = 0, skipped = 0;
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc = statefile_read(&d->regfile, DSYNC_FILE_MAX, &buf, &len);

    if (rc == OVL_ENOENT)
        return;
    if (rc == 0)
        rc = registry_restore(d->reg, buf, len, clock_now_ms(), clock_wall_ms(), &loaded, &skipped);
    free(buf);
    d->st.registry_loaded += loaded;
    d->st.registry_skipped += skipped;
    if (rc)
        log_warn(&d->n->log, "bootstrap: registry file: %s (%u node(s) loaded)", ovl_strerror(rc),
                 loaded);
    else
        log_info(&d->n->log, "bootstrap: loaded %u node(s) from the registry file, %u stale",
                 loaded, skipped);
}

/* Prepare the registry file and load it. */
int dsync_init(struct dir *d)
{
    int rc;

    if (!d->reg)
        return 0;
    rc = statefile_init(&d->regfile, d->n->loop, d->n->opts.state_dir, DSYNC_FILE);
    if (rc)
        return rc;
    dsync_load(d);
    d->reg_saved = registry_direct_version(d->reg);
    return 0;
}

/* Write the direct nodes if they changed since the last write. */
static void dsync_save(struct dir *d)
{
    uint64_t v = registry_direct_version(d->reg);
    uint8_t *buf;
    size_t len;

    if (v == d->reg_saved || registry_save(d->reg, &buf, &len) != 0)
        return;
    if (statefile_write(&d->regfile, buf, len) == 0) {
        d->reg_saved = v;
        d->st.registry_saves++;
    }
    free(buf);
}

/* ---- asking the other bootstraps --------------------------------------- */

/* Send DIR_SYNC to bootstrap i over l, unless one is outstanding and
 * younger than request_timeout. */
static void dsync_ask(struct dir *d, unsigned i, struct link *l)
{
    static const uint8_t op = DIR_SYNC;
    struct dir_sync_ask *a = &d->sync[i];
    uint64_t now = clock_now_ms();

    if (a->id && now - a->sent_ms < d->o.request_timeout_ms)
        return;
    a->id = dirmsg_next_id(&d->next_id);
    a->sent_ms = now;
    if (dirmsg_send(l, CELL_DIR_REQUEST, a->id, &op, 1) != 0) {
        a->id = 0;
        return;
    }
    d->st.syncs_sent++;
}

static void dsync_tick_cb(uv_timer_t *t)
{
    struct dir *d = t->data;

    dsync_save(d);
    for (unsigned i = 0; i < d->n_bs; i++) {
        struct link *l = link_find(d->n, d->bs[i].spec.pk);

        if (l)
            dsync_ask(d, i, l);
    }
}

/* The bootstraps are being replaced: ask i keeps what old ask from[i] had
 * (or nothing, from[i] < 0). */
void dsync_remap(struct dir *d, const int *from, unsigned n)
{
    struct dir_sync_ask ns[DIR_MAX_BOOTSTRAPS];

    memset(ns, 0, sizeof(ns));
    for (unsigned i = 0; i < n; i++)
        if (from[i] >= 0)
            ns[i] = d->sync[from[i]];
    memcpy(d->sync, ns, sizeof(ns));
}

/* Start the sync timer on a bootstrap. */
void dsync_start(struct dir *d)
{
    if (d->reg)
        uv_timer_start(d->sync_timer, dsync_tick_cb, d->o.heartbeat_ms, d->o.heartbeat_ms);
}

/* Write what changed since the last write: the loop runs the write out. */
void dsync_stop(struct dir *d)
{
    if (d->reg)
        dsync_save(d);
}

/* Free the cached document and the state file. */
void dsync_free(struct dir *d)
{
    free(d->sync_doc);
    d->sync_doc = NULL;
    statefile_free(&d->regfile);
}

/* Ask bootstrap i as soon as a link to it opens. */
void dsync_linked(struct dir *d, unsigned i, struct link *l)
{
    if (d->reg)
        dsync_ask(d, i, l);
}

/* Hold every entry of DOC_SYNC doc from bootstrap i as replicated. */
static void dsync_merge(struct dir *d, unsigned i, const struct doc *doc)
{
    uint64_t now = clock_now_ms(), wall = clock_wall_ms();

    for (unsigned k = 0; k < doc->count; k++) {
        const struct doc_entry *e = &doc->entries[k];
        int rc;

        /* We speak for ourselves: our own descriptor is never a copy. */
        if (e->len >= DESC_ID_OFF + OVL_ED25519_PK &&
            ovl_equal(e->desc + DESC_ID_OFF, d->n->id.pk, OVL_ED25519_PK))
            continue;
        rc = registry_replicate(d->reg, d->bs[i].spec.pk, e->desc, e->len, now, wall);
        if (rc == REG_SYNC_ADDED)
            d->st.sync_added++;
        else if (rc == OVL_ENOMEM)
            d->st.sync_full++;
        else if (rc < 0)
            d->st.sync_bad++;
    }
}

/* Take our DIR_SYNC's reply from bootstrap i. */
bool dsync_on_reply(struct dir *d, unsigned i, uint32_t id, const uint8_t *msg, size_t len)
{
    struct doc doc;
    int rc;

    if (!d->reg || id == 0 || d->sync[i].id != id)
        return false;
    d->sync[i].id = 0;
    if (len < 2 || msg[0] != DIR_SYNC || msg[1] != DIR_STATUS_OK) {
        d->st.syncs_failed++;
        log_debug(&d->n->log, "bootstrap: %s answered our sync with status %u", d->bs[i].spec.name,
                  len >= 2 ? msg[1] : 255);
        return true;
    }
    rc = doc_parse(&doc, msg + 2, len - 2, d->bs[i].spec.pk);
    if (rc == 0 && (doc.kind != DOC_SYNC || doc.expires_ms <= clock_wall_ms()))
        rc = OVL_EPROTO;
    if (rc) {
        d->st.syncs_failed++;
        d->st.bad_replies++;
        log_warn(&d->n->log, "bootstrap: bad sync document from %s: %s", d->bs[i].spec.name,
                 ovl_strerror(rc));
        doc_free(&doc);
        return true;
    }
    d->st.syncs_ok++;
    dsync_merge(d, i, &doc);
    doc_free(&doc);
    return true;
}

/* ---- answering them ---------------------------------------------------- */

struct dir_sign_ctx {
    struct doc_builder b;
    size_t need;
    bool full;
};

static void dir_sign_size(void *arg, const struct reg_node *rn)
{
    struct dir_sign_ctx *c = arg;

    c->need += 2 + rn->raw_len;
}

static void dir_sign_add(void *arg, const struct reg_node *rn)
{
    struct dir_sign_ctx *c = arg;

    /* Past DOC_MAX_LEN the document is cut short rather than not sent. */
    if (!c->full && doc_add(&c->b, rn->raw, rn->raw_len) != 0)
        c->full = true;
}

int dir_sign_nodes(struct dir *d, enum doc_kind kind, dir_each_fn each, uint32_t life_ms,
                   uint8_t **doc, size_t *len)
{
    static const uint8_t zero[16];
    struct dir_sign_ctx c;
    uint64_t wall = clock_wall_ms();
    size_t cap;
    int rc;

    memset(&c, 0, sizeof(c));
    each(d->reg, dir_sign_size, &c);
    cap = DOC_HDR_LEN + c.need + OVL_SIG_LEN;
    rc = doc_begin(&c.b, kind, 0, 0, zero, wall, wall + life_ms,
                   cap > DOC_MAX_LEN ? DOC_MAX_LEN : cap);
    if (rc)
        return rc;
    each(d->reg, dir_sign_add, &c);
    free(*doc);
    *doc = NULL;
    rc = doc_finish(&c.b, &d->n->id, doc, len);
    doc_builder_free(&c.b);
    return rc;
}

/* Sign the direct nodes into d->sync_doc, expiring ttl after signing. */
static int dsync_build(struct dir *d, uint64_t now)
{
    int rc = dir_sign_nodes(d, DOC_SYNC, registry_each_direct, d->o.ttl_ms, &d->sync_doc,
                            &d->sync_doc_len);

    if (rc)
        return rc;
    d->sync_version = registry_direct_version(d->reg);
    d->sync_built_ms = now;
    return 0;
}

/* Whether pk is one of our configured bootstraps. */
static bool dsync_is_bootstrap(const struct dir *d, const uint8_t pk[OVL_ED25519_PK])
{
    for (unsigned i = 0; i < d->n_bs; i++)
        if (ovl_equal(pk, d->bs[i].spec.pk, OVL_ED25519_PK))
            return true;
    return false;
}

/* Answer DIR_SYNC: only to a configured bootstrap, from the cached copy,
 * signed again when the direct nodes changed or half its ttl passed. Only
 * a few bootstraps may ask, so a change costs a signature at most once
 * per request of theirs, and a dropped node leaves the copy at once. */
int dsync_serve(struct dir *d, struct link *l, size_t arg_len, uint8_t **res, size_t *res_len)
{
    uint64_t now = clock_now_ms();
    int rc;

    if (arg_len != 0)
        return DIR_STATUS_BAD;
    if (!l || !dsync_is_bootstrap(d, l->peer_pk)) {
        d->st.syncs_refused++;
        return DIR_STATUS_REFUSED;
    }
    if (!d->sync_doc || now - d->sync_built_ms >= d->o.ttl_ms / 2 ||
        registry_direct_version(d->reg) != d->sync_version) {
        rc = dsync_build(d, now);
        if (rc)
            return rc;
    }
    if (!link_can_send(
            l, (unsigned)((2 + d->sync_doc_len + DIRMSG_FRAG_DATA - 1) / DIRMSG_FRAG_DATA))) {
        d->st.replies_no_room++;
        return DIR_STATUS_BUSY;
    }
    *res = malloc(d->sync_doc_len);
    if (!*res)
        return OVL_ENOMEM;
    memcpy(*res, d->sync_doc, d->sync_doc_len);
    *res_len = d->sync_doc_len;
    d->st.syncs_served++;
    return DIR_STATUS_OK;
}

/* Warn that the registry is full, at most once a minute. */
void dsync_registry_full(struct dir *d)
{
    uint64_t now = clock_now_ms();

    if (d->full_warned_ms && now - d->full_warned_ms < DSYNC_FULL_LOG_MS)
        return;
    d->full_warned_ms = now;
    log_warn(&d->n->log, "bootstrap: registry full ([dir] max_nodes = %u): new nodes refused",
             d->o.max_nodes);
}
