/* ctl_roles.c - the control commands of the roles: send, recv, chains,
 * relays, dir-chain, and the role counters of status (docs/CONTROL.md).
 *
 * Message bodies travel as base64 (libsodium's original variant, padded)
 * cut into data= lines of at most CONTROL_DATA_CHUNK characters, because a
 * control line holds at most KV_LINE_MAX bytes.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chain/relay.h"
#include "chain/stream.h"
#include "client/client.h"
#include "client/guard.h" /* GUARD_MAX */
#include "control/ctl_int.h"
#include "dir/dir.h"
#include "lib/crypto.h"
#include "lib/encode.h"

#define CTL_RECV_DEFAULT 100
#define CTL_RECV_MAX     1000
#define CTL_RECV_BUDGET  ((size_t)16 << 20) /* base64 bytes per recv reply, past the first */

/* ---- status ------------------------------------------------------------ */

/* The relay's counters of status, in their order. */
/* clang-format off */
#define RELAY_STATS(X)                                                                             \
    X(chains, 32) X(setups_in, 64) X(setups_ok, 64) X(setups_failed, 64) X(cells_fwd_in, 64)       \
    X(cells_peeled, 64) X(cells_forwarded, 64) X(cells_back_in, 64) X(cells_back_out, 64)          \
    X(cells_originated, 64) X(delivered_cells, 64) X(delivered_back, 64) X(broken, 64)             \
    X(reextended, 64) X(stalled, 64) X(bytes_held, 64) X(dropped_cover, 64)                        \
    X(streams_active, 32) X(streams_opened, 64) X(streams_refused_policy, 64)                      \
    X(streams_refused_limit, 64) X(streams_unknown, 64) X(streams_failed_connect, 64)              \
    X(stream_bytes_in, 64) X(stream_bytes_out, 64) X(intros_active, 32)                           \
    X(intros_established, 64) X(intros_refused_protocol, 64) X(intros_refused_expired, 64)         \
    X(intros_refused_busy, 64) X(intros_refused_limit, 64) X(intro_delivs_active, 32)              \
    X(intro_cells_down, 64) X(intro_cells_up, 64) X(intro_unknown, 64) X(publishes, 64)            \
    X(publishes_refused, 64) X(hidden_delivs, 64) X(hidden_gone, 64)
/* clang-format on */
#define RELAY_STAT_OFF(f, bits) CTL_STAT_OFF(struct relay_stats, f, bits)

static void ctl_status_relay(struct kvbuf *out, const struct relay *r)
{
    static const char names[] = RELAY_STATS(CTL_STAT_NAME);
    static const uint16_t offs[] = {RELAY_STATS(RELAY_STAT_OFF)};
    struct relay_stats st;
    char key[KV_KEY_MAX + 1];

    relay_stats(r, &st);
    ctl_add_stats(out, "relay_", names, offs, &st);
    for (int i = 0; i < RD_COUNT; i++) {
        const char *name = relay_drop_name((enum relay_drop)i);

        if (name && snprintf(key, sizeof key, "relay_dropped_%s", name) < (int)sizeof key)
            kv_addu(out, key, st.dropped[i]);
    }
}

/* The client's counters of status, in their order. */
/* clang-format off */
#define CLIENT_STATS(X)                                                                            \
    X(messages_sent, 64) X(messages_failed, 64) X(messages_received, 64) X(cells_out, 64)          \
    X(cells_in, 64) X(fragments_in, 64) X(chains_built, 64) X(chains_failed, 64)                   \
    X(chains_replaced, 64) X(chains_repaired, 64) X(avoid_builds, 64) X(bytes_acked, 64)           \
    X(busy_us, 64) X(setup_us_p50, 32) X(setup_us_p90, 32) X(setup_samples, 32)                    \
    X(rtt_us_p50, 32) X(rtt_us_p90, 32) X(rtt_samples, 32) X(chains, 32) X(cover_out, 64)          \
    X(cover_skipped, 64) X(cover_permille, 32) X(rate_missed, 64) X(loops_out, 64)                 \
    X(loops_in, 64) X(bytes_held, 64) X(dropped_auth, 64) X(dropped_bad, 64)                       \
    X(dropped_reassembly, 64) X(dropped_inbox_full, 64) X(inbox_messages, 32)                      \
    X(inbox_bytes, 64) X(send_queued, 32) X(acks_sent, 64) X(acks_in, 64) X(replies_sent, 64)      \
    X(replies_in, 64) X(reply_keys_dropped, 64) X(retransmits, 64)               \
    X(duplicates, 64) X(dropped_stale, 64) X(refused_tombstones, 64) X(refused_share, 64)          \
    X(refused_ids, 64) X(deliveries, 32) X(tombstones, 32) X(streams_opened, 64)                  \
    X(streams_failed, 64) X(streams_active, 32) X(stream_cells_out, 64) X(stream_cells_in, 64)     \
    X(stream_unknown, 64) X(socks_refused, 64) X(streams_no_exit, 64)                              \
    X(service_streams_opened, 64) X(service_streams_refused, 64) X(service_streams_failed, 64)     \
    X(service_streams_active, 32) X(service_records_bad, 64) X(service_replays, 64)             \
    X(intros_established, 64) X(intros_refused, 64) X(intro_cells_in, 64)                         \
    X(idesc_published, 64) X(idesc_unpublished, 64) X(hidden_gone, 64) X(routes_offered, 64)     \
    X(routes_chosen, 64) X(routes_local, 64) X(routes_unfit, 64) X(guards, 32)                    \
    X(guards_sampled, 64) X(guards_dropped_down, 64) X(guards_dropped_old, 64)                    \
    X(guard_failures, 64) X(guards_loaded, 64)
/* clang-format on */
#define CLIENT_STAT_OFF(f, bits) CTL_STAT_OFF(struct client_stats, f, bits)

/* A hidden node's introduction relays, "ID:state:chain:deliveries" each,
 * and its descriptor. */
static void ctl_status_hidden(struct kvbuf *out, const struct client *c)
{
    struct client_hidden_info hi;
    char list[4 * (OVL_NODE_ID_LEN + 48)] = "";
    size_t n = 0;

    kv_adds(out, "hidden", client_hidden(c, &hi) == 0 ? "yes" : "no");
    for (unsigned i = 0; i < hi.n; i++) {
        char id[OVL_NODE_ID_LEN + 1];
        int w;

        node_id_format(id, hi.intro[i].relay);
        w = snprintf(list + n, sizeof(list) - n, "%s%s:%s:%" PRIu32 ":%" PRIu32, n ? " " : "", id,
                     hi.intro[i].state, hi.intro[i].chain, hi.intro[i].deliveries);
        if (w < 0 || (size_t)w >= sizeof(list) - n)
            break;
        n += (size_t)w;
    }
    kv_adds(out, "intro_relays", list);
    kv_addu(out, "idesc_seq", hi.seq);
    kv_addu(out, "idesc_age_ms", hi.published_ago_ms);
    kv_addu(out, "idesc_expires_in_ms", hi.expires_in_ms);
}

/* The entry guards, in order, "ID:state" each, and the one in use. */
struct ctl_guards {
    char list[GUARD_MAX * (OVL_NODE_ID_LEN + 12)];
    size_t n;
    char first[OVL_NODE_ID_LEN + 1];
};

static void ctl_guard_one(void *arg, const struct client_guard_info *gi)
{
    struct ctl_guards *g = arg;
    char id[OVL_NODE_ID_LEN + 1];
    int w;

    node_id_format(id, gi->id);
    if (gi->first)
        memcpy(g->first, id, sizeof(id));
    w = snprintf(g->list + g->n, sizeof(g->list) - g->n, "%s%s:%s", g->n ? " " : "", id, gi->state);
    if (w > 0 && (size_t)w < sizeof(g->list) - g->n)
        g->n += (size_t)w;
}

static void ctl_status_guards(struct kvbuf *out, const struct client *c)
{
    struct ctl_guards g;

    memset(&g, 0, sizeof(g));
    client_each_guard(c, ctl_guard_one, &g);
    kv_adds(out, "guards", g.list);
    kv_adds(out, "guard", g.first);
}

static void ctl_status_client(struct kvbuf *out, const struct client *c)
{
    static const char names[] = CLIENT_STATS(CTL_STAT_NAME);
    static const uint16_t offs[] = {CLIENT_STATS(CLIENT_STAT_OFF)};
    struct client_stats st;

    char addrs[CLIENT_MAX_SOCKS * OVL_URI_MAX] = "";
    size_t n = 0;

    client_stats(c, &st);
    ctl_add_stats(out, "client_", names, offs, &st);
    /* The SOCKS addresses as bound (a port 0 asked for shows its port). */
    for (unsigned i = 0; n < sizeof(addrs) - OVL_URI_MAX &&
                         client_socks_addr(c, i, addrs + n + !!n, OVL_URI_MAX) == 0;
         i++) {
        if (n)
            addrs[n] = ' ';
        n += strlen(addrs + n);
    }
    kv_adds(out, "socks", addrs);
    ctl_status_guards(out, c);
    ctl_status_hidden(out, c);
}

/* The directory's counters of status, in their order: every node's, then
 * a bootstrap's. */
/* clang-format off */
#define DIR_STATS(X)                                                                               \
    X(requests_in, 64) X(replies_out, 64) X(bad_requests, 64) X(replies_dropped, 64)               \
    X(requests_limited, 64) X(replies_no_room, 64) X(bad_addresses, 64) X(registrations_ok, 64)    \
    X(registrations_failed, 64) X(heartbeats_sent, 64) X(requests_out, 64) X(replies_in, 64)       \
    X(request_timeouts, 64) X(bad_replies, 64) X(dropped_link_closed, 64) X(reports_sent, 64)       \
    X(idesc_published, 64) X(idesc_answers, 64) X(idesc_answer_bad, 64)                           \
    X(idesc_answer_bad_sig, 64) X(idesc_answer_refused[IDESC_OTHER_KEY], 64)                      \
    X(idesc_answer_refused[IDESC_EXPIRED], 64) X(idesc_answer_refused[IDESC_FUTURE], 64)          \
    X(idesc_answer_refused[IDESC_STALE], 64) X(list_fallbacks, 64) X(lists_saved, 64)             \
    X(list_restored, 64) X(lookup_fallbacks, 64) X(list_relays, 32)
/* clang-format on */
/* clang-format off */
#define DIR_BOOT_STATS(X)                                                                          \
    X(reports_in, 64) X(reports_probed, 64) X(reg.relays, 32) X(reg.endpoints, 32)                 \
    X(reg.chains, 32) X(reg.registered, 64) X(reg.dropped, 64) X(reg.chains_generated, 64)         \
    X(reg.chains_cached, 64) X(reg.chains_evicted, 64) X(lists_built, 64) X(idescs, 32)             \
    X(idesc_accepted, 64) X(idesc_bad, 64) X(idesc_bad_sig, 64) X(idesc_relay, 64)                 \
    X(idesc_full, 64) X(idesc_refused[IDESC_EXPIRED], 64) X(idesc_refused[IDESC_FUTURE], 64)       \
    X(idesc_refused[IDESC_STALE], 64) X(idesc_refused[IDESC_REPLAY], 64) X(idescs_dropped, 64)   \
    X(reg.chains_refreshed, 64) X(requests_limited_block, 64) X(chains_limited_block, 64)         \
    X(chains_held_block, 64) X(registrations_full_block, 64) X(blocks, 32)                        \
    X(lists_limited, 64) X(reg.dormant, 32)
/* clang-format on */
#define DIR_STAT_OFF(f, bits) CTL_STAT_OFF(struct dir_stats, f, bits)
/* clang-format off */
#define DIR_SYNC_STATS(X)                                                                          \
    X(reg.replicated_relays, 32) X(reg.replicated_endpoints, 32) X(syncs_sent, 64)                 \
    X(syncs_ok, 64) X(syncs_failed, 64) X(syncs_served, 64) X(syncs_refused, 64)                   \
    X(sync_added, 64) X(sync_bad, 64) X(sync_full, 64) X(reg.replicated_kept, 64)                  \
    X(reg.replicated_ceded, 64) X(reg.full, 64) X(registry_loaded, 64) X(registry_skipped, 64)     \
    X(registry_saves, 64)
/* clang-format on */

static void ctl_status_dir(struct kvbuf *out, const struct dir *d, bool bootstrap)
{
    static const char names[] =
        "requests_in\0replies_out\0bad_requests\0replies_dropped\0requests_limited\0"
        "replies_no_room\0bad_addresses\0registrations_ok\0registrations_failed\0"
        "heartbeats_sent\0requests_out\0replies_in\0request_timeouts\0bad_replies\0"
        "dropped_link_closed\0reports_sent\0idesc_published\0idesc_answers\0idesc_answer_bad\0"
        "idesc_answer_bad_sig\0idesc_answer_other_key\0idesc_answer_expired\0"
        "idesc_answer_future\0idesc_answer_stale\0list_fallbacks\0lists_saved\0list_"
        "restored\0lookup_fallbacks\0list_relays\0";
    static const uint16_t offs[] = {DIR_STATS(DIR_STAT_OFF)};
    static const char boot_names[] = "reports_in\0reports_probed\0relays\0endpoints\0chains\0"
                                     "nodes_registered\0nodes_dropped\0chains_generated\0"
                                     "chains_cached\0chains_evicted\0lists_built\0idescs\0"
                                     "idesc_accepted\0idesc_bad\0idesc_bad_sig\0idesc_relay\0"
                                     "idesc_full\0idesc_expired\0idesc_future\0idesc_stale\0"
                                     "idesc_replay\0idescs_dropped\0chains_refreshed\0"
                                     "requests_limited_block\0chains_limited_block\0"
                                     "chains_held_block\0registrations_full_block\0blocks\0"
                                     "lists_limited\0relays_dormant\0";
    static const uint16_t boot_offs[] = {DIR_BOOT_STATS(DIR_STAT_OFF)};
    static const char sync_names[] = "relays_replicated\0endpoints_replicated\0syncs_sent\0"
                                     "syncs_ok\0syncs_failed\0syncs_served\0syncs_refused\0"
                                     "sync_added\0sync_bad\0sync_full\0replicated_kept\0"
                                     "replicated_ceded\0registry_full\0registry_loaded\0"
                                     "registry_skipped\0registry_saves\0";
    static const uint16_t sync_offs[] = {DIR_SYNC_STATS(DIR_STAT_OFF)};
    struct dir_stats st;

    memset(&st, 0, sizeof st);
    dir_stats(d, &st);
    kv_addu(out, "dir_registered", dir_registered(d) ? 1 : 0);
    ctl_add_stats(out, "dir_", names, offs, &st);
    if (bootstrap) {
        ctl_add_stats(out, "dir_", boot_names, boot_offs, &st);
        ctl_add_stats(out, "dir_", sync_names, sync_offs, &st);
    }
}

/* A relay's loop cover ([relay] loop_interval): the counters of the
 * cover-only client that sends it, when the node runs no client role (with
 * one, the relay's loops are the client's: client_loops_*); 0 when off. */
static void ctl_status_relay_loops(struct kvbuf *out, const struct node *n)
{
    struct client_stats st;

    client_stats((n->roles & ROLE_CLIENT) ? NULL : n->client, &st); /* NULL: zeros */
    kv_addu(out, "relay_loops_out", st.loops_out);
    kv_addu(out, "relay_loops_in", st.loops_in);
    kv_addu(out, "relay_loops_skipped", st.cover_skipped);
    kv_addu(out, "relay_loop_chains", st.chains);
    kv_addu(out, "relay_loop_chains_built", st.chains_built);
    kv_addu(out, "relay_loop_chains_failed", st.chains_failed);
}

/* Add the counters of every role this node runs. */
/* The streams' counters of status (the exit's and the client's alike). */
/* clang-format off */
#define STREAM_STATS(X)                                                                            \
    X(cc_rounds, 64) X(cc_opened, 64) X(cc_closed, 64) X(cc_losses, 64) X(cc_window, 32)           \
    X(cc_rtt_us, 32) X(cc_rtt_least_us, 32) X(cc_queued, 32) X(grown, 64) X(unread, 64)
/* clang-format on */
#define STREAM_STAT_OFF(f, bits) CTL_STAT_OFF(struct stream_stats, f, bits)

static void ctl_status_streams(struct kvbuf *out)
{
    static const char names[] = STREAM_STATS(CTL_STAT_NAME);
    static const uint16_t offs[] = {STREAM_STATS(STREAM_STAT_OFF)};
    struct stream_stats st;

    stream_stats(&st);
    ctl_add_stats(out, "stream_", names, offs, &st);
}

void ctl_status_roles(struct kvbuf *out, const struct node *n)
{
    if (n->relay) {
        ctl_status_relay(out, n->relay);
        ctl_status_relay_loops(out, n);
    }
    if (n->client && (n->roles & ROLE_CLIENT))
        ctl_status_client(out, n->client);
    if (n->relay || (n->client && (n->roles & ROLE_CLIENT)))
        ctl_status_streams(out);
    if (n->dir)
        ctl_status_dir(out, n->dir, (n->roles & ROLE_BOOTSTRAP) != 0);
}

/* ---- send -------------------------------------------------------------- */

/* Refuse a command on a node without what it needs (role: "the client
 * role", ...): one copy of the words and of the call. */
static int ctl_needs(struct ctl_req *rq, const char *role)
{
    return ctl_fail(rq, -EOPNOTSUPP, "%s needs the %s", rq->m->pairs[1].value, role);
}

/* Refuse a command of the client role on a node without it. */
static int ctl_no_client(struct ctl_req *rq)
{
    return ctl_needs(rq, "client role");
}

/* The client that sends and receives messages, or NULL: a relay's loop
 * cover runs the client's code without the client role, and takes none. */
static struct client *ctl_msg_client(const struct ctl_req *rq)
{
    const struct node *n = rq->ctl->node;

    return (n->roles & ROLE_CLIENT) ? n->client : NULL;
}

/* Parse a decimal in lo..hi (digits only). */
static bool ctl_parse_uint(const char *s, unsigned lo, unsigned hi, unsigned *out)
{
    unsigned long v = 0;
    size_t i;

    if (!s || !*s || strlen(s) > 9)
        return false;
    for (i = 0; s[i]; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (unsigned long)(s[i] - '0');
    }
    if (v < lo || v > hi)
        return false;
    *out = (unsigned)v;
    return true;
}

/* Join the data= lines of the request into one base64 text and decode it
 * into a new buffer (*msg, *len; the caller frees it). */
static int ctl_decode_data(struct ctl_req *rq, uint8_t **msg, size_t *len)
{
    const struct kvmsg *m = rq->m;
    size_t total = 0, used = 0, i;
    char *b64;
    uint8_t *bin;
    int e;

    *msg = NULL;
    for (i = 2; i < m->n; i++) {
        size_t k;

        if (strcmp(m->pairs[i].key, "data") != 0)
            continue;
        k = strlen(m->pairs[i].value);
        if (k > CONTROL_DATA_CHUNK)
            return ctl_fail(rq, -EINVAL, "a data line holds at most %d base64 characters",
                            CONTROL_DATA_CHUNK);
        total += k;
    }
    if (!(b64 = malloc(total + 1)))
        return ctl_fail(rq, -ENOMEM, "out of memory");
    for (i = 2; i < m->n; i++) {
        if (strcmp(m->pairs[i].key, "data") == 0) {
            size_t k = strlen(m->pairs[i].value);

            memcpy(b64 + used, m->pairs[i].value, k);
            used += k;
        }
    }
    b64[used] = '\0';
    if (!(bin = malloc(total / 4 * 3 + 3))) {
        e = ctl_fail(rq, -ENOMEM, "out of memory");
        goto out;
    }
    /* No ignore set and no end pointer: any stray character or misplaced
     * padding fails the whole decode. */
    if (sodium_base642bin(bin, total / 4 * 3 + 3, b64, used, NULL, len, NULL, CTL_B64) != 0) {
        e = ctl_fail(rq, -EINVAL, "data is not valid base64 (standard alphabet, padded)");
        free(bin);
        goto out;
    }
    *msg = bin;
    e = 0;
out:
    free(b64);
    return e;
}

/* The message of a send or a reply: text=, the raw bytes after length=N,
 * or the data= lines decoded into *buf (malloc'd, for the caller to free;
 * NULL otherwise). */
static int ctl_body(struct ctl_req *rq, const uint8_t **msg, size_t *len, uint8_t **buf)
{
    const char *text = kvmsg_get(rq->m, "text");
    bool data = kvmsg_get(rq->m, "data") != NULL, raw = kvmsg_get(rq->m, "length") != NULL;
    int e;

    *buf = NULL;
    if ((text != NULL) + data + raw != 1)
        return ctl_fail(rq, -EINVAL,
                        "%s needs one of text=, data= lines or length=", rq->m->pairs[1].value);
    if (raw && rq->raw_len == 0)
        return ctl_fail(rq, -EINVAL, "length must be a decimal byte count from 1");
    if (text) {
        *msg = (const uint8_t *)text;
        *len = strlen(text);
    } else if (raw) {
        *msg = rq->raw; /* no decoding: the client copies */
        *len = rq->raw_len;
    } else if ((e = ctl_decode_data(rq, buf, len)) != 0) {
        return e;
    } else {
        *msg = *buf;
    }
    return 0;
}

/* Check send's arguments into dest and reply. */
static int ctl_send_args(struct ctl_req *rq, uint8_t dest[OVL_ED25519_PK], bool *reply)
{
    const char *to = kvmsg_get(rq->m, "to");
    const char *r = kvmsg_get(rq->m, "reply");

    if (!to)
        return ctl_fail(rq, -EINVAL, "send needs to=NODE_ID");
    if (node_id_parse(dest, to) != 0)
        return ctl_fail(rq, -EINVAL, "to must be a %d-character node ID", OVL_NODE_ID_LEN);
    if (r && strcmp(r, "0") != 0 && strcmp(r, "1") != 0)
        return ctl_fail(rq, -EINVAL, "reply must be 0 or 1");
    *reply = r && strcmp(r, "1") == 0;
    return 0;
}

static int ctl_send_error(struct ctl_req *rq, int err)
{
    switch (err) {
    case OVL_ETOOBIG:
        return ctl_fail(rq, -EMSGSIZE, "message larger than max_message (%llu bytes)",
                        (unsigned long long)rq->ctl->max_message);
    case OVL_ENOMEM:
    case OVL_EAGAIN:
        return ctl_fail(rq, -EAGAIN, "the send queue is full; try again later");
    case OVL_EINVAL:
        return ctl_fail(rq, -EINVAL, "cannot send this: empty message or bad destination");
    default:
        return ctl_fail(rq, err, "send failed: %s", ovl_strerror(err));
    }
}

/* send wait=1: the message was acknowledged (err 0) or failed. */
static void ctl_send_done(void *arg, const uint8_t id[CLIENT_MSG_ID], int err)
{
    struct kvbuf out = {0};
    char hex[2 * CLIENT_MSG_ID + 1], msg[CTL_ERR_MAX];

    if (err) {
        snprintf(msg, sizeof msg, "not delivered: %s",
                 err == OVL_ETIMEDOUT ? "no acknowledgement in time" : ovl_strerror(err));
        ctl_deferred_reply(arg, err, msg, &out);
        return;
    }
    ctl_reply_begin(&out);
    if (enc_hex(hex, sizeof hex, id, CLIENT_MSG_ID) == 0)
        kv_adds(&out, "id", hex);
    kv_adds(&out, "result", "delivered");
    ctl_deferred_reply(arg, 0, NULL, &out);
}

/* Add id=HEX for a message ID. */
static int ctl_add_hex(struct ctl_req *rq, const uint8_t id[CLIENT_MSG_ID])
{
    char hex[2 * CLIENT_MSG_ID + 1];

    if (enc_hex(hex, sizeof hex, id, CLIENT_MSG_ID) != 0)
        return ctl_fail(rq, -EIO, "cannot format the message id");
    kv_adds(rq->out, "id", hex);
    return 0;
}

static int ctl_cmd_send(struct ctl_req *rq)
{
    struct client *c = ctl_msg_client(rq);
    uint8_t dest[OVL_ED25519_PK], id[CLIENT_MSG_ID], *buf;
    const uint8_t *msg;
    const char *w = kvmsg_get(rq->m, "wait");
    size_t len;
    bool reply = false, wait = w && strcmp(w, "1") == 0;
    int e, err;

    if (!c)
        return ctl_no_client(rq);
    if ((e = ctl_send_args(rq, dest, &reply)) != 0)
        return e;
    if (w && !wait && strcmp(w, "0") != 0)
        return ctl_fail(rq, -EINVAL, "wait must be 0 or 1");
    if ((e = ctl_body(rq, &msg, &len, &buf)) != 0)
        return e;
    err = client_send_cb(c, dest, msg, len, reply, id, wait ? ctl_send_done : NULL, rq->cl);
    free(buf);
    if (err != 0)
        return ctl_send_error(rq, err);
    if (wait)
        return ctl_defer(rq);
    return ctl_add_hex(rq, id);
}

/* reply id=ID (text= | data= | length=): answer a received message. */
static int ctl_cmd_reply(struct ctl_req *rq)
{
    struct client *c = ctl_msg_client(rq);
    const char *s = kvmsg_get(rq->m, "id"), *why;
    uint8_t id[CLIENT_MSG_ID], rid[CLIENT_MSG_ID], *buf;
    const uint8_t *msg;
    size_t len;
    int e;

    if (!c)
        return ctl_no_client(rq);
    if (!s || dec_hex(id, CLIENT_MSG_ID, s) != 0)
        return ctl_fail(rq, -EINVAL, "id must be 32 hex digits");
    if ((e = ctl_body(rq, &msg, &len, &buf)) != 0)
        return e;
    e = client_reply(c, id, msg, len, rid);
    free(buf);
    /* The errno is the nearest to e (ENOENT, EPERM, ECONNRESET, EAGAIN,
     * EMSGSIZE, ...); the text says why. */
    why = e == OVL_ENOENT    ? "unknown message (or past its replay_window)"
          : e == OVL_EPERM   ? "a reply has no way back"
          : e == OVL_ECLOSED ? "the sender's chain is gone"
          : e == OVL_EAGAIN  ? "the link back is full; try later"
          : e == OVL_ETOOBIG ? "over 65536 bytes (or max_message)"
                             : ovl_strerror(e);
    return e ? ctl_fail(rq, e, "cannot reply: %s", why) : ctl_add_hex(rq, rid);
}

/* subscribe events=messages: from the reply on, each message that enters
 * the inbox comes as an event on this connection. */
static int ctl_cmd_subscribe(struct ctl_req *rq)
{
    const char *ev = kvmsg_get(rq->m, "events");

    if (!ctl_msg_client(rq))
        return ctl_no_client(rq);
    if (!ev || strcmp(ev, "messages") != 0)
        return ctl_fail(rq, -EINVAL, "subscribe needs events=messages");
    rq->flags |= CTL_RQ_SUBSCRIBE;
    return 0;
}

/* ---- recv -------------------------------------------------------------- */

static int ctl_cmd_recv(struct ctl_req *rq)
{
    struct client *c = ctl_msg_client(rq);
    const char *s = kvmsg_get(rq->m, "max");
    struct client_msg **msgs;
    unsigned max = CTL_RECV_DEFAULT;
    size_t n = 0, bytes = 0, i;
    int e = 0;

    if (!c)
        return ctl_no_client(rq);
    if (s && !ctl_parse_uint(s, 1, CTL_RECV_MAX, &max))
        return ctl_fail(rq, -EINVAL, "max must be 1 to %d", CTL_RECV_MAX);
    if (!(msgs = calloc(max, sizeof *msgs)))
        return ctl_fail(rq, -ENOMEM, "out of memory");
    /* One at a time, so that a reply never takes more than it can carry. */
    while (n < max && (n == 0 || bytes < CTL_RECV_BUDGET) && client_recv(c, &msgs[n], 1) == 1)
        bytes += msgs[n++]->len / 3 * 4;
    kv_addu(rq->out, "count", n);
    for (i = 0; i < n; i++) {
        if (e == 0)
            e = ctl_add_msg(rq->out, i, msgs[i]);
        ovl_wipe(msgs[i]->data, msgs[i]->len);
        free(msgs[i]);
    }
    free(msgs);
    if (e != 0)
        return ctl_fail(rq, e, "cannot encode the received messages (they are lost)");
    return 0;
}

/* ---- chains, relays ---------------------------------------------------- */

static void ctl_chain_info(void *arg, const struct client_chain_info *ci)
{
    struct kvbuf *out = arg;
    unsigned i, len = ci->length <= 8 ? ci->length : 8;

    kv_addu(out, "chain", ci->serial);
    kv_adds(out, "state", ci->state); /* NULL as "" */
    kv_addu(out, "age_ms", ci->age_ms);
    kv_addu(out, "expires_in_ms", ci->expires_in_ms);
    kv_addu(out, "length", ci->length);
    for (i = 0; i < len; i++)
        ctl_add_id(out, "hop", ci->hops[i]);
    kv_addu(out, "cells_out", ci->cells_out);
    kv_addu(out, "cells_in", ci->cells_in);
    kv_addu(out, "messages", ci->messages);
    kv_adds(out, "class", ci->cls);
    kv_addu(out, "streams", ci->streams);
}

static int ctl_cmd_new_chain(struct ctl_req *rq)
{
    struct client *c = rq->ctl->node->client;
    int err;

    if (!c)
        return ctl_no_client(rq);
    err = client_new_chain(c);
    if (err == OVL_EAGAIN)
        return ctl_fail(rq, -EBUSY, "a chain is being built already");
    if (err != 0)
        return ctl_fail(rq, err, "cannot build a chain: %s", ovl_strerror(err));
    return 0;
}

static int ctl_cmd_chains(struct ctl_req *rq)
{
    struct client *c = rq->ctl->node->client;

    if (!c)
        return ctl_no_client(rq);
    client_each_chain(c, ctl_chain_info, rq->out);
    return 0;
}

struct ctl_rchains {
    struct kvbuf *out;
    uint64_t index;
};

static void ctl_rchain_info(void *arg, const struct relay_chain_info *ci)
{
    struct ctl_rchains *rc = arg;
    char intros[RELAY_INFO_INTROS * (OVL_NODE_ID_LEN + 1)];

    kv_addu(rc->out, "chain", rc->index++);
    ctl_add_id(rc->out, "prev", ci->prev);
    ctl_add_id(rc->out, "next", ci->has_next ? ci->next : NULL);
    kv_addu(rc->out, "exit", ci->exit);
    kv_addu(rc->out, "broken", ci->broken);
    kv_addu(rc->out, "age_ms", ci->age_ms);
    kv_addu(rc->out, "expires_in_ms", ci->expires_in_ms);
    kv_addu(rc->out, "cells_fwd", ci->cells_fwd);
    kv_addu(rc->out, "cells_back", ci->cells_back);
    kv_addu(rc->out, "delivs", ci->delivs);
    /* Introduction relays by their IDs, comma-separated: never the hidden
     * nodes they stand for. */
    intros[0] = '\0';
    for (unsigned i = 0, at = 0; i < ci->n_intros && i < RELAY_INFO_INTROS; i++) {
        if (i)
            intros[at++] = ',';
        node_id_format(intros + at, ci->intros[i]);
        at += OVL_NODE_ID_LEN;
    }
    kv_adds(rc->out, "intro", intros);
}

static int ctl_cmd_relay_chains(struct ctl_req *rq)
{
    struct relay *r = rq->ctl->node->relay;
    struct ctl_rchains rc = {rq->out, 0};

    if (!r)
        return ctl_needs(rq, "relay role");
    relay_each_chain(r, ctl_rchain_info, &rc);
    return 0;
}

struct ctl_relays {
    struct kvbuf *out;
    uint64_t now;
};

/* The relays d names its family, "ID,ID,...", when it names any. */
static void ctl_add_family(struct kvbuf *out, const struct desc *d)
{
    char list[DESC_FAMILY_MAX * (OVL_NODE_ID_LEN + 1)], *at = list;
    unsigned n = d->n_family < DESC_FAMILY_MAX ? d->n_family : DESC_FAMILY_MAX;

    if (!n)
        return;
    for (unsigned i = 0; i < n; i++, at += OVL_NODE_ID_LEN + 1) {
        node_id_format(at, d->family[i]);
        at[OVL_NODE_ID_LEN] = ',';
    }
    at[-1] = '\0';
    kv_adds(out, "family", list);
}

static void ctl_relay_info(void *arg, const struct reg_node *rn)
{
    struct ctl_relays *r = arg;
    const struct desc *d = &rn->d;
    bool relay = d->flags & DESC_RELAY;
    char flags[32], policy[KV_LINE_MAX - sizeof("policy=")];
    struct exit_policy ep;
    unsigned i;

    snprintf(flags, sizeof(flags), "%s%s%s%s", relay ? "relay" : "",
             !(d->flags & DESC_ENDPOINT) ? ""
             : relay                     ? ",endpoint"
                                         : "endpoint",
             d->flags & DESC_EXIT ? ",exit" : "", d->flags & DESC_DORMANT ? ",dormant" : "");
    ctl_add_id(r->out, "relay", d->id_pk);
    kv_adds(r->out, "flags", flags);
    for (i = 0; i < d->n_uris && i < DESC_MAX_URIS; i++)
        ctl_add_fixed(r->out, "uri", d->uris[i], OVL_URI_MAX - 1);
    kv_addu(r->out, "capacity", d->capacity);
    ctl_add_family(r->out, d);
    /* One line: a policy too long for it is cut after a whole rule, " ..." */
    if ((d->flags & DESC_EXIT) && exit_policy_decode(&ep, d->policy, d->policy_len) == 0 &&
        exit_policy_format(&ep, policy, sizeof(policy)) != OVL_EINVAL)
        kv_adds(r->out, "policy", policy);
    kv_addu(r->out, "age_ms", ctl_since(r->now, rn->registered_ms));
    kv_addu(r->out, "last_seen_ms", ctl_since(r->now, rn->last_seen_ms));
    kv_addu(r->out, "heartbeats", rn->heartbeats);
    if (rn->flags & REG_NODE_REPLICATED) /* held from another bootstrap's DOC_SYNC */
        ctl_add_id(r->out, "origin", rn->origin);
}

static int ctl_cmd_relays(struct ctl_req *rq)
{
    const struct node *n = rq->ctl->node;
    struct ctl_relays r = {rq->out, clock_now_ms()};

    if (!(n->roles & ROLE_BOOTSTRAP) || !n->dir ||
        dir_each_registered(n->dir, ctl_relay_info, &r) != 0)
        return ctl_needs(rq, "bootstrap role");
    return 0;
}

/* ---- dir-chain --------------------------------------------------------- */

static void ctl_dir_chain_done(void *arg, int err, const struct dir_chain *ch)
{
    struct ctl_client *cl = arg;
    struct kvbuf out = {0};
    char hex[2 * sizeof ch->ref + 1], msg[CTL_ERR_MAX];
    unsigned p, b, len, backups;

    if (err != 0 || !ch) {
        snprintf(msg, sizeof msg, "no chain from the directory: %s",
                 ovl_strerror(err ? err : OVL_EPROTO));
        ctl_deferred_reply(cl, err ? err : OVL_EPROTO, msg, &out);
        return;
    }
    len = ch->length <= DIR_MAX_HOPS ? ch->length : DIR_MAX_HOPS;
    backups = ch->backups <= DIR_MAX_BACKUPS ? ch->backups : DIR_MAX_BACKUPS;
    ctl_reply_begin(&out);
    if (enc_hex(hex, sizeof hex, ch->ref, sizeof ch->ref) != 0)
        hex[0] = '\0';
    kv_adds(&out, "ref", hex);
    kv_addu(&out, "expires_ms", ch->expires_ms);
    kv_addu(&out, "length", len);
    kv_addu(&out, "backups", backups);
    for (p = 0; p < len; p++) {
        kv_addu(&out, "pos", p);
        ctl_add_id(&out, "hop", ch->hops[p][0].id_pk);
        for (b = 1; b <= backups; b++)
            ctl_add_id(&out, "backup", ch->hops[p][b].id_pk);
    }
    ctl_deferred_reply(cl, 0, NULL, &out);
}

static int ctl_cmd_dir_chain(struct ctl_req *rq)
{
    struct control *c = rq->ctl;
    unsigned length = c->chain_length, backups = c->chain_backups;
    const char *s;
    int err;

    if (!c->node->dir)
        return ctl_needs(rq, "directory");
    if ((s = kvmsg_get(rq->m, "length")) && !ctl_parse_uint(s, 1, DIR_MAX_HOPS, &length))
        return ctl_fail(rq, -EINVAL, "length must be 1 to %d", DIR_MAX_HOPS);
    if ((s = kvmsg_get(rq->m, "backups")) && !ctl_parse_uint(s, 0, DIR_MAX_BACKUPS, &backups))
        return ctl_fail(rq, -EINVAL, "backups must be 0 to %d", DIR_MAX_BACKUPS);
    err = dir_request_chain(c->node->dir, length, backups, NULL, ctl_dir_chain_done, rq->cl);
    if (err != 0)
        return ctl_fail(rq, err, "cannot ask the directory: %s", ovl_strerror(err));
    return ctl_defer(rq);
}

/* ---- lookup ------------------------------------------------------------ */

/* What a lookup found: a node's descriptor (its roles and addresses), or
 * a hidden node's inbound descriptor (its introduction relays, never an
 * address). */
static void ctl_lookup_done(void *arg, int err, const struct desc *d, const struct idesc *in)
{
    struct ctl_client *cl = arg;
    struct kvbuf out = {0};
    char msg[CTL_ERR_MAX];

    if (err || (!d && !in)) {
        err = err ? err : OVL_EPROTO;
        snprintf(msg, sizeof msg, "lookup failed: %s", ovl_strerror(err));
        ctl_deferred_reply(cl, err, msg, &out);
        return;
    }
    ctl_reply_begin(&out);
    ctl_add_id(&out, "id", d ? d->id_pk : in->id_pk);
    if (d) {
        kv_adds(&out, "kind", "node");
        kv_adds(&out, "relay", (d->flags & DESC_RELAY) ? "yes" : "no");
        kv_adds(&out, "exit", (d->flags & DESC_EXIT) ? "yes" : "no");
        for (unsigned i = 0; i < d->n_uris && i < DESC_MAX_URIS; i++)
            ctl_add_fixed(&out, "uri", d->uris[i], OVL_URI_MAX);
    } else {
        kv_adds(&out, "kind", "hidden");
        kv_addu(&out, "seq", in->seq);
        kv_addu(&out, "published_ms", in->published_ms);
        kv_addu(&out, "expires_ms", in->expires_ms);
        for (unsigned i = 0; i < in->n_intro && i < IDESC_MAX_INTRO; i++)
            ctl_add_id(&out, "intro", in->intro[i].relay_pk);
    }
    ctl_deferred_reply(cl, 0, NULL, &out);
}

static int ctl_cmd_lookup(struct ctl_req *rq)
{
    const char *id = kvmsg_get(rq->m, "id");
    uint8_t pk[OVL_ED25519_PK];
    int err;

    if (!rq->ctl->node->dir)
        return ctl_needs(rq, "directory");
    if (!id || node_id_parse(pk, id) != 0)
        return ctl_fail(rq, -EINVAL, "lookup needs id=NODE_ID (%d characters)", OVL_NODE_ID_LEN);
    err = dir_lookup(rq->ctl->node->dir, pk, ctl_lookup_done, rq->cl);
    if (err != 0)
        return ctl_fail(rq, err, "cannot ask the directory: %s", ovl_strerror(err));
    return ctl_defer(rq);
}

static const ctl_cmd_fn ctl_role_fns[] = {
    ctl_cmd_send,      ctl_cmd_recv,   ctl_cmd_reply,        ctl_cmd_subscribe, ctl_cmd_chains,
    ctl_cmd_new_chain, ctl_cmd_relays, ctl_cmd_relay_chains, ctl_cmd_dir_chain, ctl_cmd_lookup};
const struct ctl_cmd_table ctl_role_table = {"send to reply text data* length wait\0"
                                             "recv max\0"
                                             "reply id text data* length\0"
                                             "subscribe events\0"
                                             "chains\0"
                                             "new-chain\0"
                                             "relays\0"
                                             "relay-chains\0"
                                             "dir-chain length backups\0"
                                             "lookup id\0",
                                             ctl_role_fns};
