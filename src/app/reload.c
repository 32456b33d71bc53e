/* reload.c - SIGHUP and "ovlctl reload": read the configuration file
 * again, check all of it, and apply what may change while the node runs.
 *
 * A file that does not hold (syntax, a value, a rule across keys, what
 * the roles need) is refused whole: nothing changes, the refusal is logged
 * and counted (reloads_refused). Otherwise config_diff.c compares it with
 * the running configuration key by key; a changed key that takes a restart
 * keeps its running value, with a warning, and the others are applied by
 * the steps of steps[], one per layer in the layers' order, each a call of
 * that layer's reconfigure function, which changes nothing when it fails.
 * A step that fails (a SOCKS address in use) leaves its keys at their
 * running values and is counted (reload_failures); the other steps still
 * apply. Adding a key's reload is its row's .reload in config_keys.c;
 * adding a kind of setting the steps do not cover yet is one row here.
 *
 * Links and chains are left alone: a step takes new settings for what
 * comes next (new links, new chains, new streams) and closes nothing but
 * a removed SOCKS listener, so a reload that changes nothing changes
 * nothing at all.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/config_diff.h"
#include "app/ovld.h"
#include "chain/relay.h"
#include "client/client.h"
#include "control/mhttp.h"
#include "core/node_run.h"
#include "dir/dir.h"
#include "lib/kvmsg.h"

/* One step: the keys with bit in their .reload, applied by apply, which
 * returns 0, OVL_EUNSUPP when the change needs a restart after all (the
 * client code started or stopped), or the error that left it unchanged. */
struct reload_step {
    unsigned bit;
    const char *what;
    int (*apply)(struct ovld *o, const struct ovl_config *c);
};

static int apply_log(struct ovld *o, const struct ovl_config *c)
{
    struct ovl_log *lg = &o->node.log;

    if (c->syslog != lg->use_syslog) {
        log_close(lg);
        log_init(lg, lg->ident, c->log_level, c->syslog);
    }
    lg->level = c->log_level;
    return 0;
}

/* The link settings and cover budget, then who is dialed: the peers and
 * the bootstraps. */
static int apply_node(struct ovld *o, const struct ovl_config *c)
{
    struct peer_spec *dial = calloc(NODE_MAX_PEERS, sizeof(*dial));
    int rc;

    if (!dial)
        return OVL_ENOMEM;
    rc = peer_reconfigure(&o->node, dial, config_dial_peers(c, dial));
    free(dial);
    if (rc == 0)
        rc = node_reconfigure(&o->node, &c->opts);
    if (rc == 0)
        ovld_fit_nofile(o, c->opts.max_links);
    return rc;
}

static int apply_dir(struct ovld *o, const struct ovl_config *c)
{
    return dir_reconfigure(o->node.dir, &c->dir, c->bootstraps, c->n_bootstraps);
}

static int apply_relay(struct ovld *o, const struct ovl_config *c)
{
    return o->node.relay ? relay_reconfigure(o->node.relay, &c->relay) : 0;
}

/* The client code runs for the client role and for a relay's loop cover;
 * starting or stopping it takes a restart. */
static int apply_client(struct ovld *o, const struct ovl_config *c)
{
    struct client_opts *co = malloc(sizeof(*co)); /* large: its services */
    bool want;
    int rc;

    if (!co)
        return OVL_ENOMEM;
    want = config_client_opts(c, co);
    if (!want && !o->node.client)
        rc = 0;
    else if (!want || !o->node.client)
        rc = OVL_EUNSUPP;
    else
        rc = client_reconfigure(o->node.client, co);
    free(co);
    if (rc == 0)
        control_set_client_opts(o->ctl, &c->client);
    return rc;
}

/* The metrics listener moves: the old one closes (and the scrapes it
 * serves) before the new one opens, since both may want one port; when
 * the new address cannot be listened on, the old one opens again. */
static int apply_app(struct ovld *o, const struct ovl_config *c)
{
    const char *was = o->cfg.metrics_listen;
    int rc;

    if (strcmp(c->metrics_listen, was) == 0)
        return 0;
    mhttp_stop(o->mh);
    o->mh = NULL;
    if (!c->metrics_listen[0])
        return 0;
    rc = mhttp_start(o->ctl, c->metrics_listen, &o->mh);
    if (rc && was[0] && mhttp_start(o->ctl, was, &o->mh) != 0)
        log_error(&o->node.log, "metrics: listening on neither %s nor %s", c->metrics_listen, was);
    return rc;
}

/* In the layers' order. */
static const struct reload_step steps[] = {
    {RL_LOG, "log", apply_log},          {RL_NODE, "links", apply_node},
    {RL_DIR, "directory", apply_dir},    {RL_RELAY, "relay", apply_relay},
    {RL_CLIENT, "client", apply_client}, {RL_APP, "metrics", apply_app},
};

/* The names of one kind of outcome: reply lines and one log line. */
struct report {
    struct kvbuf *out; /* NULL for SIGHUP */
    const char *key;   /* "changed", "restart", "failed" */
    char line[768];
    size_t len;
    unsigned n;
};

static void report_add(void *arg, const char *name)
{
    struct report *r = arg;
    int k;

    if (r->out)
        kv_adds(r->out, r->key, name);
    if (r->len + 8 >= sizeof(r->line)) /* the log line is full: "..." ends it */
        return;
    k = snprintf(r->line + r->len, sizeof(r->line) - r->len, "%s%s", r->n ? ", " : "", name);
    if (k < 0 || (size_t)k >= sizeof(r->line) - r->len - 4)
        k = snprintf(r->line + r->len, sizeof(r->line) - r->len, "%s...", r->n ? ", " : "");
    r->len += k > 0 ? (size_t)k : 0;
    r->n++;
}

/* List the changed keys whose bits meet mask and not skip under key. */
static unsigned report_keys(struct report *r, const char *key, const struct cfg_diff *d,
                            const struct ovl_config *run, const struct ovl_config *next,
                            unsigned mask, unsigned skip)
{
    r->key = key;
    r->len = 0;
    r->n = 0;
    r->line[0] = '\0';
    return cfg_diff_names(d, run, next, mask, skip, report_add, r);
}

/* Read and check the file into next: 0, or why not in o->reload_err. */
static int reload_read(struct ovld *o, struct ovl_config *next)
{
    char *err = o->reload_err;
    int rc = config_load(next, o->cfg.path, err, sizeof(o->reload_err));

    if (rc == 0) {
        ovld_state_directory(next);
        rc = config_check_roles(next, err, sizeof(o->reload_err));
    }
    if (rc == 0 && (next->roles & o->node.roles & ROLE_RELAY)) {
        for (unsigned i = 0; i < next->dir.n_family && rc == 0; i++)
            if (memcmp(next->dir.family[i], o->node.id.pk, OVL_ED25519_PK) == 0) {
                snprintf(err, sizeof(o->reload_err),
                         "%.400s: [relay] family names this node itself", next->path);
                rc = OVL_EINVAL;
            }
    }
    return rc;
}

/* Run the steps whose keys changed; return the bits of those that failed
 * (logged) and, in *later, of those that need a restart after all. */
static unsigned reload_steps(struct ovld *o, const struct ovl_config *next, unsigned todo,
                             struct kvbuf *out, unsigned *later)
{
    unsigned failed = 0;

    *later = 0;
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        int rc;

        if (!(todo & steps[i].bit))
            continue;
        rc = steps[i].apply(o, next);
        if (rc == OVL_EUNSUPP) {
            *later |= steps[i].bit;
        } else if (rc) {
            failed |= steps[i].bit;
            o->node.ctr.reload_failures++;
            log_error(&o->node.log,
                      "reload: the %s settings were not applied, kept as they "
                      "ran: %s",
                      steps[i].what, ovl_strerror(rc));
            if (out)
                kv_addf(out, "failure", "%s: %s", steps[i].what, ovl_strerror(rc));
        }
    }
    return failed;
}

/* Apply next, read and checked; see ovld.h. */
static void reload_apply(struct ovld *o, struct ovl_config *next, struct kvbuf *out)
{
    struct ovl_log *lg = &o->node.log;
    struct report r = {.out = out};
    unsigned failed, later, kept;
    struct cfg_diff d;

    o->cfg.log_level = lg->level; /* what runs: ovlctl log-level may have set it */
    cfg_diff(&o->cfg, next, &d);
    if (out)
        kv_adds(out, "config", o->cfg.path);
    if (report_keys(&r, "restart", &d, &o->cfg, next, RL_RESTART, 0))
        log_warn(lg, "reload: these need a restart, their running values are kept: %s", r.line);
    cfg_diff_keep(next, &o->cfg, &d, RL_RESTART);
    failed = reload_steps(o, next, d.steps & ~(unsigned)RL_RESTART, out, &later);
    kept = RL_RESTART | later;
    if (report_keys(&r, "restart", &d, &o->cfg, next, later, RL_RESTART))
        log_warn(lg,
                 "reload: these need a restart (the client code starts or stops), their "
                 "running values are kept: %s",
                 r.line);
    if (report_keys(&r, "failed", &d, &o->cfg, next, failed, kept))
        log_error(lg, "reload: not applied: %s", r.line);
    if (report_keys(&r, "changed", &d, &o->cfg, next, ~0u, kept | failed))
        log_info(lg, "reload: applied %s", r.line);
    else if (!d.n_changed)
        log_info(lg, "reload: %s: nothing changed", o->cfg.path);
    cfg_diff_keep(next, &o->cfg, &d, later | failed);
    next->opts.state_dir = o->cfg.opts.state_dir;
    memcpy(&o->cfg, next, sizeof(*next));
}

int ovld_reload(struct ovld *o, struct kvbuf *out, const char **err)
{
    struct ovl_config *next = malloc(sizeof(*next));
    int rc;

    *err = o->reload_err;
    (void)sdnotify_send(&o->sd, "RELOADING=1");
    if (!next) {
        snprintf(o->reload_err, sizeof(o->reload_err), "out of memory");
        rc = OVL_ENOMEM;
    } else {
        rc = reload_read(o, next);
    }
    if (rc) {
        o->node.ctr.reloads_refused++;
        log_error(&o->node.log, "reload refused, the running settings are kept: %s", o->reload_err);
        free(next);
    } else {
        o->node.ctr.reloads++;
        reload_apply(o, next, out);
        free(next);
    }
    (void)sdnotify_send(&o->sd, "READY=1");
    return rc;
}
