/* sendq.c - the client's send queue: destination lookups, sealing, and
 * keeping each message until the destination acknowledges it (retransmit,
 * deadline). Sending the cells is client.c's (client_pump).
 */
#include <stdlib.h>
#include <string.h>

#include <utlist.h>

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

void sendq_fail(struct out_msg *m, const char *why)
{
    struct client *c = m->c;

    c->st.messages_failed++;
    log_info(&c->n->log, "client: message failed: %s", why);
    msg_done(m, OVL_EPROTO);
}

/* Every fragment left: wait for the acknowledgement. */
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

/* Fail what passed its deadline; send again what waited too long for an ack. */
void sendq_tick(struct client *c, uint64_t now)
{
    struct out_msg *m, *tmp;

    DL_FOREACH_SAFE(c->queue, m, tmp)
    {
        if (now >= m->deadline_ms && m->next_frag == 0) {
            c->st.messages_failed++;
            msg_done(m, OVL_ETIMEDOUT);
        }
    }
    DL_FOREACH_SAFE(c->unacked, m, tmp)
    {
        if (now >= m->deadline_ms) {
            c->st.messages_failed++;
            log_info(&c->n->log, "client: message unacknowledged at its deadline");
            msg_done(m, OVL_ETIMEDOUT);
        } else if (now >= m->retry_ms) {
            msg_requeue(m);
        }
    }
}

/* An acknowledgement came back from the exit of a chain: the destination
 * dest read message id, if the tag says so. */
void sendq_ack(struct client *c, const uint8_t *dest, const uint8_t *rec, size_t len)
{
    struct out_msg *lists[2] = {c->unacked, c->queue}, *m;

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
            if (m->sent_us && !m->resent) /* Karn: a resent one's ack may answer either */
                samples_add(&c->rtt_us, (uint32_t)(clock_now_us() - m->sent_us));
            msg_done(m, 0);
            return;
        }
    }
    /* A late copy's acknowledgement for a message already done. */
}

static void on_lookup(void *arg, int err, const struct desc *d)
{
    struct out_msg *m = arg;
    struct client *c = m->c;
    int rc;

    m->state = OM_WAIT; /* no longer cancellable */
    c->n_lookups--;
    if (err || !(d->flags & DESC_ENDPOINT)) {
        sendq_fail(m, err ? ovl_strerror(err) : "destination is not an endpoint");
        client_pump(c);
        return;
    }
    rc = msg_seal(&m->blob, &m->blob_len, d->onion_pk, m->id, m->reply ? c->n->id.pk : NULL,
                  m->data, m->len, m->ack);
    if (rc) {
        sendq_fail(m, ovl_strerror(rc));
        client_pump(c);
        return;
    }
    ovl_wipe(m->data, m->len);
    free(m->data);
    m->data = NULL;
    m->nfrags = msg_frag_count(m->blob_len);
    m->state = OM_READY;
    client_pump(c);
}

/* Ask the directory for the destinations of waiting messages. */
void sendq_lookups(struct client *c)
{
    struct out_msg *m, *tmp;

    DL_FOREACH_SAFE(c->queue, m, tmp)
    {
        int rc;

        if (c->n_lookups >= LOOKUPS_MAX)
            return;
        if (m->state != OM_WAIT || m->blob)
            continue;
        rc = dir_lookup(c->n->dir, m->dest, on_lookup, m);
        if (rc) {
            sendq_fail(m, ovl_strerror(rc));
            continue;
        }
        m->state = OM_LOOKUP;
        c->n_lookups++;
    }
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

int client_send(struct client *c, const uint8_t dest[OVL_ED25519_PK], const uint8_t *msg,
                size_t len, bool reply, uint8_t id[CLIENT_MSG_ID])
{
    return client_send_cb(c, dest, msg, len, reply, id, NULL, NULL);
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

int client_send_cb(struct client *c, const uint8_t dest[OVL_ED25519_PK], const uint8_t *msg,
                   size_t len, bool reply, uint8_t id[CLIENT_MSG_ID], client_sent_cb cb, void *arg)
{
    struct out_msg *m;

    if (!c || !dest || !msg || !id || len == 0 || memcmp(dest, c->n->id.pk, OVL_ED25519_PK) == 0)
        return OVL_EINVAL;
    if (c->stopped)
        return OVL_ECLOSED;
    if (len > c->o.max_message)
        return OVL_ETOOBIG;
    if (c->n_queue >= c->o.send_queue)
        return OVL_ENOMEM;
    m = calloc(1, sizeof(*m));
    if (!m)
        return OVL_ENOMEM;
    m->data = malloc(len);
    if (!m->data) {
        free(m);
        return OVL_ENOMEM;
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
    ovl_random(m->id, CLIENT_MSG_ID);
    memcpy(id, m->id, CLIENT_MSG_ID);
    DL_APPEND(c->queue, m);
    if (c->n_queue++ == 0)
        c->busy_from_us = clock_now_us();
    c->adding = m;
    c->adding_err = 0;
    client_pump(c);
    if (!c->adding)
        return c->adding_err; /* it failed at once; no callback comes */
    c->adding = NULL;
    return 0;
}
