/* ctl_cmds.c - the control commands about the node itself: status, peers,
 * version, log-level, shutdown, reload (reference: docs/CONTROL.md). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "control/ctl_int.h"
#include "core/cell.h"
#include "core/link.h"
#include "core/memcap.h"
#include "core/peer.h"
#include "core/tp_quic.h"
#include "ovl_config.h"

/* The suites of mask, AES-256-GCM first, separated by commas. */
static void ctl_suites_format(char *out, size_t outlen, uint32_t mask)
{
    bool aes = mask & OVL_AEAD_AES256GCM, chacha = mask & OVL_AEAD_CHACHA20POLY1305;

    snprintf(out, outlen, "%s%s%s", aes ? ovl_aead_name(OVL_AEAD_AES256GCM) : "",
             aes && chacha ? "," : "", chacha ? ovl_aead_name(OVL_AEAD_CHACHA20POLY1305) : "");
}

static void ctl_status_node(struct kvbuf *out, const struct node *n)
{
    char buf[64];
    unsigned i;
    uint32_t open = 0;
    const struct link *l;

    kv_adds(out, "node_id", n->node_id);
    kv_adds(out, "version", OVL_VERSION);
    node_roles_format(buf, sizeof buf, n->roles);
    kv_adds(out, "roles", buf);
    kv_adds(out, "transports", tp_names());
    kv_addu(out, "pid", (uint64_t)getpid());
    kv_addu(out, "uptime_ms", ctl_since(clock_now_ms(), n->started_ms));
    kv_adds(out, "log_level", log_level_name(n->log.level));
    ctl_suites_format(buf, sizeof buf, n->opts.aead_suites);
    kv_adds(out, "aead", buf);
    for (i = 0; i < n->n_listeners && i < NODE_MAX_LISTEN; i++)
        ctl_add_fixed(out, "listen", n->listen_uri[i], OVL_URI_MAX);
    for (l = n->links; l; l = l->next)
        open += l->state == LINK_OPEN;
    kv_addu(out, "links", n->n_links);
    kv_addu(out, "links_open", open);
    kv_addu(out, "bytes_queued", memcap_queued(n));
    kv_addu(out, "max_queued", n->opts.max_queued);
    kv_addu(out, "peers_configured", n->n_peers);
}

/* The node's counters of status, in their order (all uint64_t). */
/* clang-format off */
#define NODE_STATS(X)                                                                              \
    X(links_accepted, 64) X(links_dialed, 64) X(links_evicted, 64) X(links_limited_block, 64)      \
    X(hs_limited, 64) X(hs_replays, 64) X(handshakes_ok, 64) X(handshakes_failed, 64)              \
    X(cells_in, 64) X(cells_out, 64) X(cells_unhandled, 64) X(frames_in, 64) X(frames_out, 64)     \
    X(bytes_in, 64) X(bytes_out, 64) X(rekeys, 64) X(dial_fallbacks, 64) X(heartbeats, 64)         \
    X(pongs_skipped, 64) X(memory_closed, 64) X(probes, 64) X(probes_failed, 64)                   \
    X(dead_detect_ms_last, 64) X(dead_detect_ms_max, 64) X(padding_in, 64) X(padding_out, 64)      \
    X(cover_out, 64) X(cover_skipped, 64) X(chain_unknown, 64) X(reloads, 64)                     \
    X(reloads_refused, 64) X(reload_failures, 64)
/* clang-format on */
#define NODE_STAT_OFF(f, bits) CTL_STAT_OFF(struct node_counters, f, bits)

static void ctl_status_counters(struct kvbuf *out, const struct node *n)
{
    static const char names[] = NODE_STATS(CTL_STAT_NAME);
    static const uint16_t offs[] = {NODE_STATS(NODE_STAT_OFF)};
    struct node_counters k = n->ctr;
    char key[KV_KEY_MAX + 1];
    int r;

    k.cells_unhandled += n->disp.unhandled;
    ctl_add_stats(out, "", names, offs, &k);
    kv_addu(out, "cover_permille", k.cells_out ? k.cover_out * 1000 / k.cells_out : 0);
    kv_addu(out, "chanmap", n->n_chanmap);
    for (r = LC_NONE + 1; r < LC_REASON_COUNT; r++) {
        const char *name = link_close_reason_name((enum link_close_reason)r);

        if (name && snprintf(key, sizeof key, "closed_%s", name) < (int)sizeof key)
            kv_addu(out, key, k.link_closed[r]);
    }
}

/* Sum every QUIC listener's counters. */
void ctl_quic_sum(const struct node *n, struct tp_quic_stats *sum)
{
    memset(sum, 0, sizeof *sum);
#if OVL_HAVE_QUIC
    for (unsigned i = 0; i < n->n_listeners; i++) {
        struct tp_quic_stats st;

        if (tp_quic_listener_stats(n->listeners[i], &st) != 0)
            continue;
        sum->datagrams += st.datagrams;
        sum->dropped += st.dropped;
        sum->refused += st.refused;
        sum->refused_block += st.refused_block;
        sum->retries += st.retries;
        sum->resets += st.resets;
        sum->vneg += st.vneg;
        sum->handshakes += st.handshakes;
        sum->streams_refused += st.streams_refused;
        sum->conns += st.conns;
    }
#else
    (void)n;
#endif
}

/* What the QUIC listeners did with datagrams of no connection, summed. */
static void ctl_status_quic(struct kvbuf *out, const struct node *n)
{
#if OVL_HAVE_QUIC
/* clang-format off */
#define QUIC_STATS(X)                                                                              \
    X(datagrams, 64) X(dropped, 64) X(refused, 64) X(refused_block, 64) X(retries, 64)             \
    X(resets, 64) X(vneg, 64) X(streams_refused, 64)
/* clang-format on */
#define QUIC_STAT_OFF(f, bits) CTL_STAT_OFF(struct tp_quic_stats, f, bits)
    static const char names[] = QUIC_STATS(CTL_STAT_NAME);
    static const uint16_t offs[] = {QUIC_STATS(QUIC_STAT_OFF)};
    struct tp_quic_stats sum;

    ctl_quic_sum(n, &sum);
    ctl_add_stats(out, "quic_", names, offs, &sum);
#else
    (void)out, (void)n;
#endif
}

/* Bandwidth limits and accounting (core/bw.h): the settings, what each
 * scope counted and held back, the accounting periods. */
static void ctl_status_bw(struct kvbuf *out, const struct node *n)
{
    static const char *const scopes[TPM_SCOPES] = {"node", "relay"};
    static const char *const periods[ACCT_PERIODS] = {"day", "month"};
    const struct bw *b = &n->bw;
    const struct acct *a = &b->acct;
    char key[KV_KEY_MAX + 1];

    for (unsigned s = 0; s < TPM_SCOPES; s++) {
        const struct tp_meter_stats *st = &b->meter.st[s];
        const struct {
            const char *name;
            uint64_t v;
        } kv[] = {
            {"rate", b->o.rate[s]},
            {"burst", b->o.burst[s] ? b->o.burst[s] : b->o.rate[s]},
            {"bytes_in", st->bytes[TPM_IN]},
            {"bytes_out", st->bytes[TPM_OUT]},
            {"holds", st->holds},
            {"limited_ms", st->limited_ms},
            {"limited_bytes_in", st->limited_bytes[TPM_IN]},
            {"limited_bytes_out", st->limited_bytes[TPM_OUT]},
        };

        for (size_t i = 0; i < sizeof(kv) / sizeof(kv[0]); i++) {
            snprintf(key, sizeof(key), "bw_%s_%s", scopes[s], kv[i].name);
            kv_addu(out, key, kv[i].v);
        }
    }
    kv_addu(out, "bw_waiting", (b->flags & BW_F_METER) ? tp_meter_waiting(&b->meter) : 0);
    kv_adds(out, "acct_state", !acct_on(&b->o.acct) ? "off" : bw_dormant(b) ? "dormant" : "awake");
    kv_addu(out, "acct_dormant_count", b->dormant_count);
    kv_addu(out, "acct_wake_ms", bw_dormant(b) ? acct_wake_ms(a) : 0);
    for (unsigned p = 0; p < ACCT_PERIODS; p++) {
        snprintf(key, sizeof(key), "acct_max_per_%s", periods[p]);
        kv_addu(out, key, b->o.acct.max[p]);
        snprintf(key, sizeof(key), "acct_%s_start_ms", periods[p]);
        kv_addu(out, key, a->start_ms[p]);
        snprintf(key, sizeof(key), "acct_%s_bytes_in", periods[p]);
        kv_addu(out, key, a->used[p][0]);
        snprintf(key, sizeof(key), "acct_%s_bytes_out", periods[p]);
        kv_addu(out, key, a->used[p][1]);
    }
}

/* The control server's counters of status, in their order. */
#define CONTROL_STATS(X)          X(requests, 64) X(errors, 64) X(clients_refused, 64) X(clients_dropped, 64)
#define CONTROL_STAT_OFF(f, bits) CTL_STAT_OFF(struct control_stats, f, bits)

static int ctl_cmd_status(struct ctl_req *rq)
{
    static const char names[] = CONTROL_STATS(CTL_STAT_NAME);
    static const uint16_t offs[] = {CONTROL_STATS(CONTROL_STAT_OFF)};

    ctl_status_node(rq->out, rq->ctl->node);
    ctl_status_counters(rq->out, rq->ctl->node);
    ctl_status_quic(rq->out, rq->ctl->node);
    ctl_status_bw(rq->out, rq->ctl->node);
    ctl_status_roles(rq->out, rq->ctl->node);
    ctl_add_stats(rq->out, "control_", names, offs, &rq->ctl->st);
    kv_adds(rq->out, "metrics_listen", rq->ctl->http_uri);
    return 0;
}

static void ctl_peer_link(struct kvbuf *out, const struct link *l, uint64_t now)
{
    ctl_add_fixed(out, "peer", l->peer_id, sizeof l->peer_id);
    kv_adds(out, "state", link_state_name(l->state));
    kv_adds(out, "direction", link_is_initiator(l) ? "out" : "in");
    ctl_add_fixed(out, "remote", l->remote, sizeof l->remote);
    ctl_add_fixed(out, "name", l->peer ? l->peer->spec.name : "", PEER_NAME_MAX);
    if (l->state == LINK_OPEN)
        kv_adds(out, "suite", link_cipher_name(l));
    kv_addu(out, "age_ms", ctl_since(now, l->opened_ms));
    kv_addu(out, "cells_in", l->cells_in);
    kv_addu(out, "cells_out", l->cells_out);
}

static void ctl_peer_backoff(struct kvbuf *out, const struct peer *p)
{
    ctl_add_id(out, "peer", p->spec.pk);
    kv_adds(out, "state", "backoff");
    kv_adds(out, "direction", "out");
    ctl_add_fixed(out, "remote", p->spec.uri, OVL_URI_MAX);
    ctl_add_fixed(out, "name", p->spec.name, PEER_NAME_MAX);
    kv_addu(out, "attempts", p->attempts);
    kv_addu(out, "failures", p->failures);
    kv_adds(out, "last_error", p->last_error ? ovl_strerror(p->last_error) : "");
}

static int ctl_cmd_peers(struct ctl_req *rq)
{
    const struct node *n = rq->ctl->node;
    uint64_t now = clock_now_ms();
    const struct link *l;
    unsigned i;

    for (l = n->links; l; l = l->next)
        ctl_peer_link(rq->out, l, now);
    for (i = 0; n->peers && i < n->n_peers; i++)
        if (!n->peers[i].link)
            ctl_peer_backoff(rq->out, &n->peers[i]);
    return 0;
}

static int ctl_cmd_version(struct ctl_req *rq)
{
    kv_adds(rq->out, "version", OVL_VERSION);
    kv_addu(rq->out, "protocol", OVL_PROTO_VERSION);
    kv_addu(rq->out, "control", CONTROL_PROTO_VERSION);
    kv_adds(rq->out, "transports", tp_names());
    return 0;
}

static int ctl_cmd_log_level(struct ctl_req *rq)
{
    struct node *n = rq->ctl->node;
    const char *s = kvmsg_get(rq->m, "level");
    enum ovl_log_level lv;

    if (s) {
        if (log_level_parse(s, &lv) != 0) {
            rq->err = "level must be error, warn, info or debug";
            return -EINVAL;
        }
        n->log.level = lv;
        log_info(&n->log, "log level set to %s over the control socket", log_level_name(lv));
    }
    kv_adds(rq->out, "log_level", log_level_name(n->log.level));
    return 0;
}

static int ctl_cmd_shutdown(struct ctl_req *rq)
{
    if (!rq->ctl->node->app_stop) {
        rq->err = "shutdown is not available in this process";
        return -EOPNOTSUPP;
    }
    rq->flags |= CTL_RQ_STOP_NODE;
    return 0;
}

/* Re-read the configuration file and apply it (the app's reload). */
static int ctl_cmd_reload(struct ctl_req *rq)
{
    struct control *c = rq->ctl;

    if (!c->reload) {
        rq->err = "reload is not available in this process";
        return -EOPNOTSUPP;
    }
    return c->reload(c->reload_arg, rq->out, &rq->err);
}

static const ctl_cmd_fn ctl_node_fns[] = {ctl_cmd_status,    ctl_cmd_peers,    ctl_cmd_version,
                                          ctl_cmd_log_level, ctl_cmd_shutdown, ctl_cmd_metrics,
                                          ctl_cmd_reload};
const struct ctl_cmd_table ctl_node_table = {"status\0"
                                             "peers\0"
                                             "version\0"
                                             "log-level level\0"
                                             "shutdown\0"
                                             "metrics\0"
                                             "reload\0",
                                             ctl_node_fns};
