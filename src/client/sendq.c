/* sendq.c - the client's send queue: each message from client_send_cb
 * until the destination acknowledges it or it fails (retransmission,
 * deadline), and its sealing once the directory named the destination's
 * onion key. It calls nothing else of the client's but msg.c: sending the
 * cells, and asking for the lookups, is send.c's.
 */
#include <stdlib.h>
#include <string.h>

#include <utlist.h>

#include "chain/body.h"
#include "client/client_int.h"
#include "core/node.h"

static void msg_free(struct out_msg *m)
{
    struct client *c = m->c;

    if (m->unacked)
        DL_DELETE(c->unacked, m);
    else
        DL_DELETE(c->queue, m);
    if (--c->n_queue == 0 && c->busy_from_us) {
        /* Idle time is the sender's, not the path's: throughput = bytes / busy. */
        c->st.busy_us += clock_now_us() - c->busy_from_us;
        c->busy_from_us = 0;
    }
    if (m->state == OM_LOOKUP) {
        dir_cancel(c->n->dir, m);
        c->n_lookups--;
    }
    if (m->data)
        ovl_wipe(m->data, m->len);
    if (m->blob)
        ovl_wipe(m->blob, m->blob_len);
    free(m->data);
    free(m->blob);
    free(m);
}

/* The message is done: tell its owner (err 0: acknowledged) and free it. */
static void msg_done(struct out_msg *m, int err)
{
    client_sent_cb cb = m->cb;
    void *arg = m->cb_arg;
    uint8_t id[CLIENT_MSG_ID];

    memcpy(id, m->id, CLIENT_MSG_ID);
    if (m->c->adding == m) {
        /* Inside client_send_cb: it returns the error instead. */
        m->c->adding = NULL;
        m->c->adding_err = err ? err : OVL_EPROTO;
        cb = NULL;
    }
    msg_free(m);
    if (cb)
        cb(arg, id, err);
}

struct out_msg *sendq_add(struct client *c, const uint8_t dest[OVL_ED25519_PK], const uint8_t *msg,
                          size_t len, bool reply, client_sent_cb cb, void *arg)
{
    struct out_msg *m = calloc(1, sizeof(*m));

    if (!m)
        return NULL;
    m->data = malloc(len);
    if (!m->data) {
        free(m);
        return NULL;
    }
    memcpy(m->data, msg, len);
    m->len = len;
    m->c = c;
    memcpy(m->dest, dest, OVL_ED25519_PK);
    m->reply = reply;
    m->cb = cb;
    m->cb_arg = arg;
    m->rto_ms = c->o.retransmit_ms;
    m->deadline_ms = clock_now_ms() + c->o.deadline_ms;
    do /* the first byte types what a destination receives (msg.h) */
        ovl_random(m->id, CLIENT_MSG_ID);
    while (m->id[0] == MSG_STREAM_TYPE);
    DL_APPEND(c->queue, m);
    if (c->n_queue++ == 0)
        c->busy_from_us = clock_now_us();
    return m;
}

/* The message failed with err: count it, tell its owner, free it. */
static void msg_fail(struct out_msg *m, int err)
{
    m->c->st.messages_failed++;
    msg_done(m, err);
}

void sendq_fail(struct out_msg *m, const char *why)
{
    log_info(&m->c->n->log, "client: message failed: %s", why);
    msg_fail(m, OVL_EPROTO);
}

void sendq_fail_to(struct client *c, const uint8_t dest[OVL_ED25519_PK], const char *why)
{
    struct out_msg *m, *tmp;

    if (c->unreach_cb)
        c->unreach_cb(c, dest);
    DL_FOREACH_SAFE(c->queue, m, tmp)
    {
        if (memcmp(m->dest, dest, OVL_ED25519_PK) == 0)
            sendq_fail(m, why);
    }
}

void sendq_undeliverable(struct client *c, const uint8_t dest[OVL_ED25519_PK], unsigned reason)
{
    struct out_msg *m;
    char id[OVL_NODE_ID_LEN + 1];

    node_id_format(id, dest);
    log_info(&c->n->log, "client: exit cannot deliver to %s (reason %u)", id, reason);
    if (reason == BODY_R_GONE) {
        /* A hidden node's introduction ended: the exit looks it up again
         * for the next cells, and what was lost goes again after its
         * acknowledgement's wait, as any lost cell does. */
        c->st.hidden_gone++;
        return;
    }
    if (c->unreach_cb)
        c->unreach_cb(c, dest);
    DL_FOREACH(c->queue, m)
    {
        if (m->next_frag > 0 && memcmp(m->dest, dest, OVL_ED25519_PK) == 0) {
            sendq_fail(m, "the exit could not reach the destination");
            return;
        }
    }
}

void sendq_await(struct out_msg *m)
{
    struct client *c = m->c;

    DL_DELETE(c->queue, m);
    DL_APPEND(c->unacked, m);
    m->unacked = true;
    m->retry_ms = clock_now_ms() + m->rto_ms;
    m->rto_ms = m->rto_ms * 2 > RTO_MAX_MS ? RTO_MAX_MS : m->rto_ms * 2;
}

/* Send m again from its first fragment, after what is queued now. */
static void msg_requeue(struct out_msg *m)
{
    struct client *c = m->c;

    DL_DELETE(c->unacked, m);
    DL_APPEND(c->queue, m);
    m->unacked = false;
    m->next_frag = 0;
    c->st.retransmits++;
}

void sendq_requeue(struct client *c, uint32_t serial)
{
    struct out_msg *m;

    /* A half-sent message goes again whole; the receiver ignores
     * duplicates. */
    DL_FOREACH(c->queue, m)
    {
        if (m->chain_serial == serial && m->next_frag < m->nfrags)
            m->next_frag = 0;
    }
    /* Sent whole but not acknowledged: again on the next chain. */
    DL_FOREACH(c->unacked, m)
    {
        if (m->chain_serial == serial)
            m->retry_ms = 0;
    }
}

void sendq_tick(struct client *c, uint64_t now)
{
    struct out_msg *m, *tmp;

    DL_FOREACH_SAFE(c->queue, m, tmp)
    {
        if (now >= m->deadline_ms && m->next_frag == 0)
            msg_fail(m, OVL_ETIMEDOUT);
    }
    DL_FOREACH_SAFE(c->unacked, m, tmp)
    {
        if (now >= m->deadline_ms) {
            log_info(&c->n->log, "client: message unacknowledged at its deadline");
            msg_fail(m, OVL_ETIMEDOUT);
        } else if (now >= m->retry_ms) {
            msg_requeue(m);
        }
    }
}

/* A fragment of a reply: through the reassembly, charged to ch's first
 * link and chain ID. */
static void reply_in(struct cchain *ch, const uint8_t *rec, size_t len)
{
    struct client *c = ch->c;
    struct msg_from from = {.link = ch->link_serial, .chain = ch->chain_id, .reply = true};
    uint8_t ack[MSG_ACK_LEN];

    from.now_ms = clock_now_ms();
    from.wall_ms = clock_wall_ms();
    if (msg_rx_fragment(&c->rx, &from, rec, len, NULL, 0, ack) == MSG_RX_DONE) {
        c->st.replies_in++;
        client_tell_inbox(c);
    }
}

/* The destination dest read message id, if the tag says so; or it
 * answers, or one of our streams to it goes on. */
void sendq_back(struct cchain *ch, const uint8_t *dest, const uint8_t *rec, size_t len)
{
    struct client *c = ch->c;
    struct out_msg *lists[2] = {c->unacked, c->queue}, *m;

    if (len > 0 && rec[0] == MSG_REPLY_TYPE) {
        reply_in(ch, rec, len);
        return;
    }
    if (len > 0 && rec[0] == MSG_STREAM_TYPE && c->rec_cb) {
        c->rec_cb(ch, dest, rec, len);
        return;
    }
    if (len < MSG_ACK_LEN || rec[0] != MSG_ACK_TYPE) {
        c->st.dropped_bad++;
        return;
    }
    for (int i = 0; i < 2; i++) {
        DL_FOREACH(lists[i], m)
        {
            if (memcmp(m->id, rec + 1, CLIENT_MSG_ID) != 0 || !m->blob)
                continue;
            if (memcmp(m->dest, dest, OVL_ED25519_PK) != 0 ||
                !ovl_equal(m->ack, rec + 1 + CLIENT_MSG_ID, MSG_ACK_TAG)) {
                c->st.dropped_auth++;
                return;
            }
            /* A copy still queued must not go out after this. */
            c->st.acks_in++;
            c->st.bytes_acked += m->len;
            if (m->sent_us && !m->resent) { /* Karn: a resent one's ack may answer either */
                uint64_t us = clock_now_us() - m->sent_us;

                samples_add(&c->rtt_us, (uint32_t)us);
                hist_add(&c->rtt_hist, us);
            }
            msg_done(m, 0);
            return;
        }
    }
    /* A late copy's acknowledgement for a message already done. */
}

void sendq_looked_up(struct out_msg *m, int err, const struct desc *d, const struct idesc *in)
{
    struct client *c = m->c;
    uint8_t rkey[MSG_KEY];
    uint64_t wall = clock_wall_ms();
    int rc;

    m->state = OM_WAIT; /* no longer cancellable */
    c->n_lookups--;
    if (err || (d && !(d->flags & DESC_ENDPOINT)) || (!d && !in)) {
        sendq_fail(m, err ? ovl_strerror(err) : "destination is not an endpoint");
        return;
    }
    rc = msg_seal(&m->blob, &m->blob_len, d ? d->onion_pk : in->onion_pk, m->id, m->reply ? c->n->id.pk : NULL,
                  m->data, m->len, wall, m->ack, rkey);
    if (rc == 0) /* kept past the acknowledgement, to open the replies */
        msg_rx_sent(&c->rx, m->id, rkey, wall);
    ovl_wipe(rkey, sizeof(rkey));
    if (rc) {
        sendq_fail(m, ovl_strerror(rc));
        return;
    }
    ovl_wipe(m->data, m->len);
    free(m->data);
    m->data = NULL;
    m->nfrags = msg_frag_count(m->blob_len);
    m->state = OM_READY;
}

uint64_t sendq_bytes(const struct client *c)
{
    const struct out_msg *lists[2] = {c->queue, c->unacked}, *m;
    uint64_t b = 0;

    for (int i = 0; i < 2; i++)
        for (m = lists[i]; m; m = m->next)
            b += sizeof(*m) + (m->data ? m->len : 0) + m->blob_len;
    return b;
}

void client_forget_cb(struct client *c, void *arg)
{
    struct out_msg *lists[2], *m;

    if (!c)
        return;
    lists[0] = c->queue;
    lists[1] = c->unacked;
    for (int i = 0; i < 2; i++) {
        DL_FOREACH(lists[i], m)
        {
            if (m->cb_arg == arg)
                m->cb = NULL;
        }
    }
}
