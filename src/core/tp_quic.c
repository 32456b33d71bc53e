/* tp_quic.c - QUIC connections: the stream carrying frames, the timer
 * that drives ngtcp2, and the dial side. Listeners live in tp_quic_srv.c.
 *
 * ngtcp2 forbids calling most of its API from inside its callbacks, and our
 * owners may call tp_send/tp_close from inside theirs, so the two never
 * nest: ngtcp2 callbacks only record (bytes into rbuf, flags), and
 * quic_run() hands frames, connected() and drain() to the owner after
 * ngtcp2 returns. tp_send only queues and arms the timer at 0, so every
 * frame queued in one loop iteration leaves in one write pass.
 */
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ngtcp2/ngtcp2_crypto_gnutls.h>
#include <sodium.h>

#include "core/cell.h"
#include "core/tp_quic_int.h"
#include "lib/bytes.h"

#define QUIC_BURST        64 /* datagrams per write pass before yielding to the loop */
#define QUIC_IDLE_DEFAULT 30000
#define QUIC_WIRE_MAX     (OVL_FRAME_MAX + OVL_FRAME_LENHDR)

static struct quic_conn *quic_of(const struct transport *t)
{
    return container_of(t, struct quic_conn, base);
}

static void quic_on_timer(uv_timer_t *t);

/* Ask for a write pass (and expiry handling) on the next loop turn. */
static void quic_kick(struct quic_conn *c)
{
    if (!c->base.closing)
        uv_timer_start(&c->timer, quic_on_timer, 0, 0);
}

/* ---- lifetime ---------------------------------------------------------- */

static void quic_free(struct quic_conn *c)
{
    struct quic_blk *b, *nb;

    for (b = c->head; b; b = nb) {
        nb = b->next;
        free(b);
    }
    free(c->spare);
    free(c->rbuf);
    if (c->qc)
        ngtcp2_conn_del(c->qc);
    if (c->tls)
        gnutls_deinit(c->tls);
    if (c->cred)
        gnutls_certificate_free_credentials(c->cred);
    if (c->lis)
        quic_listener_unref(c->lis);
    free(c);
}

static void quic_on_handle_close(uv_handle_t *h)
{
    struct quic_conn *c = h->data;

    if (--c->handles > 0)
        return;
    if (!c->silent && c->base.cb && c->base.cb->closed)
        c->base.cb->closed(&c->base, c->reason);
    /* A cancelled getaddrinfo still calls back; it frees the conn then. */
    if (!c->resolving)
        quic_free(c);
}

static ngtcp2_conn *quic_get_conn(ngtcp2_crypto_conn_ref *ref)
{
    return ((struct quic_conn *)ref->user_data)->qc;
}

int quic_conn_new(struct tp_env *env, bool dial, struct quic_conn **out)
{
    struct quic_conn *c = calloc(1, sizeof(*c) + (dial ? QUIC_RX_BUF : 0));

    *out = NULL;
    if (!c)
        return OVL_ENOMEM;
    c->base.ops = &tp_quic_ops;
    c->env = env;
    c->sid = -1;
    c->cref.get_conn = quic_get_conn;
    c->cref.user_data = c;
    uv_timer_init(env->loop, &c->timer);
    c->timer.data = c;
    c->handles = 1;
    *out = c;
    return 0;
}

/* Send a CONNECTION_CLOSE carrying ccerr, best effort. */
static void quic_send_close(struct quic_conn *c, const ngtcp2_ccerr *ccerr)
{
    uint8_t pkt[QUIC_PKT_MAX];
    ngtcp2_path_storage ps;
    ngtcp2_ssize n;

    if (!c->qc || ngtcp2_conn_in_closing_period(c->qc) || ngtcp2_conn_in_draining_period(c->qc))
        return;
    ngtcp2_path_storage_zero(&ps);
    n = ngtcp2_conn_write_connection_close(c->qc, &ps.path, NULL, pkt, sizeof(pkt), ccerr,
                                           quic_now());
    if (n > 0)
        (void)quic_send_dgram(c, (const struct sockaddr *)&c->remote, pkt, (size_t)n);
}

void quic_conn_shutdown(struct quic_conn *c, int reason, bool quiet)
{
    ngtcp2_ccerr ccerr;

    if (c->base.closing)
        return;
    /* Closing first: a refused goodbye must not start a second shutdown. */
    c->base.closing = true;
    c->reason = reason;
    if (!quiet) {
        ngtcp2_ccerr_default(&ccerr);
        if (reason && reason != OVL_ECLOSED)
            ngtcp2_ccerr_set_application_error(&ccerr, 1, NULL, 0);
        quic_send_close(c, &ccerr);
    }
    quic_unregister(c);
    if (c->resolving)
        (void)uv_cancel((uv_req_t *)&c->gai);
    uv_close((uv_handle_t *)&c->timer, quic_on_handle_close);
    if (c->udp_open) {
        c->handles++;
        uv_close((uv_handle_t *)&c->udp, quic_on_handle_close);
    }
}

/* Close after an ngtcp2 error: its own CONNECTION_CLOSE, or none. */
static void quic_fail(struct quic_conn *c, int liberr)
{
    ngtcp2_ccerr ccerr;
    int reason = OVL_EPROTO;

    switch (liberr) {
    case NGTCP2_ERR_DRAINING:
        reason = OVL_ECLOSED; /* the peer closed, or reset us */
        break;
    case NGTCP2_ERR_IDLE_CLOSE:
    case NGTCP2_ERR_HANDSHAKE_TIMEOUT:
        reason = OVL_ETIMEDOUT;
        break;
    case NGTCP2_ERR_NOMEM:
        reason = OVL_ENOMEM;
        break;
    case NGTCP2_ERR_CRYPTO:
        reason = OVL_ECRYPTO;
        break;
    }
    if (liberr != NGTCP2_ERR_DRAINING && liberr != NGTCP2_ERR_IDLE_CLOSE &&
        liberr != NGTCP2_ERR_DROP_CONN && liberr != NGTCP2_ERR_CLOSING) {
        ngtcp2_ccerr_default(&ccerr);
        ngtcp2_ccerr_set_liberr(&ccerr, liberr, NULL, 0);
        quic_send_close(c, &ccerr);
    }
    quic_conn_shutdown(c, reason, true);
}

/* ---- the send buffer --------------------------------------------------- */

/* Append n bytes at the end of the stream; blocks never move once written
 * because ngtcp2 keeps pointers into them until they are acknowledged. */
static int quic_append(struct quic_conn *c, const uint8_t *p, size_t n)
{
    while (n > 0) {
        struct quic_blk *b = c->tail;
        size_t room;

        if (!b || b->len == QUIC_BLK) {
            struct quic_blk *nb = c->spare ? c->spare : malloc(sizeof(*nb));

            if (!nb)
                return OVL_ENOMEM;
            c->spare = NULL;
            nb->next = NULL;
            nb->len = 0;
            if (b)
                b->next = nb;
            else
                c->head = nb;
            if (!c->sblk || (c->sblk == b && c->spos == QUIC_BLK)) {
                c->sblk = nb;
                c->spos = 0;
            }
            c->tail = b = nb;
        }
        room = QUIC_BLK - b->len;
        if (room > n)
            room = n;
        memcpy(b->data + b->len, p, room);
        b->len += room;
        c->end += room;
        p += room;
        n -= room;
    }
    return 0;
}

/* Point v at the unsent bytes (at most two blocks); return the count. */
static size_t quic_unsent(const struct quic_conn *c, ngtcp2_vec v[2])
{
    const struct quic_blk *b = c->sblk;
    size_t cnt = 0, pos = c->spos;

    while (b && cnt < 2) {
        if (b->len > pos) {
            v[cnt].base = (uint8_t *)b->data + pos;
            v[cnt].len = b->len - pos;
            cnt++;
        }
        b = b->next;
        pos = 0;
    }
    return cnt;
}

/* n more bytes went into packets. */
static void quic_advance(struct quic_conn *c, size_t n)
{
    c->sent += n;
    while (n > 0 && c->sblk) {
        size_t left = c->sblk->len - c->spos;

        if (n < left) {
            c->spos += n;
            return;
        }
        n -= left;
        c->spos += left;
        if (c->sblk->next) {
            c->sblk = c->sblk->next;
            c->spos = 0;
        }
    }
}

/* The peer acknowledged everything below off: release whole blocks. */
static void quic_acked(struct quic_conn *c, uint64_t off)
{
    if (off <= c->acked)
        return;
    c->acked = off;
    while (c->head && c->head->len == QUIC_BLK && c->head_off + QUIC_BLK <= off &&
           c->head != c->sblk) {
        struct quic_blk *b = c->head;

        c->head = b->next;
        c->head_off += QUIC_BLK;
        if (!c->head)
            c->tail = NULL;
        if (!c->spare)
            c->spare = b;
        else
            free(b);
    }
}

static size_t quic_sendq_max(const struct quic_conn *c)
{
    return c->env->sendq_max < QUIC_WIRE_MAX ? QUIC_WIRE_MAX : c->env->sendq_max;
}

/* ---- ngtcp2 callbacks: record only ------------------------------------- */

static int quic_cb_recv_stream(ngtcp2_conn *qc, uint32_t flags, int64_t sid, uint64_t off,
                               const uint8_t *data, size_t len, void *ud, void *sud)
{
    struct quic_conn *c = ud;

    (void)qc, (void)off, (void)sud;
    if (c->sid < 0 && c->base.inbound && (sid & 3) == 0)
        c->sid = sid;
    if (sid != c->sid)
        return 0;
    if (c->rlen + len > c->rcap) {
        size_t cap = c->rcap ? c->rcap : 4096;
        uint8_t *nb;

        while (cap < c->rlen + len)
            cap *= 2;
        /* Flow control keeps an honest peer under the window. */
        if (cap > QUIC_MAX_WIN + QUIC_WIRE_MAX)
            return NGTCP2_ERR_CALLBACK_FAILURE;
        nb = realloc(c->rbuf, cap);
        if (!nb)
            return NGTCP2_ERR_CALLBACK_FAILURE;
        c->rbuf = nb;
        c->rcap = cap;
    }
    if (len)
        memcpy(c->rbuf + c->rlen, data, len);
    c->rlen += len;
    if (flags & NGTCP2_STREAM_DATA_FLAG_FIN)
        c->peer_gone = true;
    return 0;
}

static int quic_cb_acked(ngtcp2_conn *qc, int64_t sid, uint64_t off, uint64_t len, void *ud,
                         void *sud)
{
    struct quic_conn *c = ud;

    (void)qc, (void)sud;
    if (sid == c->sid)
        quic_acked(c, off + len);
    return 0;
}

static int quic_cb_stream_open(ngtcp2_conn *qc, int64_t sid, void *ud)
{
    struct quic_conn *c = ud;

    (void)qc;
    if (c->sid < 0 && c->base.inbound && (sid & 3) == 0)
        c->sid = sid;
    return 0;
}

static int quic_cb_stream_close(ngtcp2_conn *qc, uint32_t flags, int64_t sid, uint64_t code,
                                void *ud, void *sud)
{
    struct quic_conn *c = ud;

    (void)qc, (void)flags, (void)code, (void)sud;
    if (sid == c->sid)
        c->peer_gone = true;
    return 0;
}

static int quic_cb_handshake_done(ngtcp2_conn *qc, void *ud)
{
    (void)qc;
    ((struct quic_conn *)ud)->hs_done = true;
    return 0;
}

static void quic_cb_rand(uint8_t *dest, size_t len, const ngtcp2_rand_ctx *ctx)
{
    (void)ctx;
    randombytes_buf(dest, len);
}

static int quic_cb_new_cid(ngtcp2_conn *qc, ngtcp2_cid *cid, uint8_t *token, size_t cidlen,
                           void *ud)
{
    struct quic_conn *c = ud;

    (void)qc;
    randombytes_buf(cid->data, cidlen);
    cid->datalen = cidlen;
    if (!c->lis) {
        randombytes_buf(token, NGTCP2_STATELESS_RESET_TOKENLEN);
        return 0;
    }
    if (quic_reset_token(c->lis, cid, token) != 0 || quic_cid_add(c, cid) != 0)
        return NGTCP2_ERR_CALLBACK_FAILURE;
    return 0;
}

static int quic_cb_del_cid(ngtcp2_conn *qc, const ngtcp2_cid *cid, void *ud)
{
    (void)qc;
    quic_cid_del(ud, cid);
    return 0;
}

#define QUIC_COMMON_CALLBACKS                                                                      \
    .recv_crypto_data = ngtcp2_crypto_recv_crypto_data_cb,                                         \
    .handshake_completed = quic_cb_handshake_done, .encrypt = ngtcp2_crypto_encrypt_cb,            \
    .decrypt = ngtcp2_crypto_decrypt_cb, .hp_mask = ngtcp2_crypto_hp_mask_cb,                      \
    .recv_stream_data = quic_cb_recv_stream, .acked_stream_data_offset = quic_cb_acked,            \
    .stream_open = quic_cb_stream_open, .stream_close = quic_cb_stream_close,                      \
    .rand = quic_cb_rand, .get_new_connection_id = quic_cb_new_cid,                                \
    .remove_connection_id = quic_cb_del_cid, .update_key = ngtcp2_crypto_update_key_cb,            \
    .delete_crypto_aead_ctx = ngtcp2_crypto_delete_crypto_aead_ctx_cb,                             \
    .delete_crypto_cipher_ctx = ngtcp2_crypto_delete_crypto_cipher_ctx_cb,                         \
    .get_path_challenge_data = ngtcp2_crypto_get_path_challenge_data_cb,                           \
    .version_negotiation = ngtcp2_crypto_version_negotiation_cb

static const ngtcp2_callbacks quic_cli_callbacks = {
    .client_initial = ngtcp2_crypto_client_initial_cb,
    .recv_retry = ngtcp2_crypto_recv_retry_cb,
    QUIC_COMMON_CALLBACKS,
};

const ngtcp2_callbacks quic_srv_callbacks = {
    .recv_client_initial = ngtcp2_crypto_recv_client_initial_cb,
    QUIC_COMMON_CALLBACKS,
};

static uint32_t quic_idle_ms(const struct quic_conn *c)
{
    return c->env->idle_timeout_ms ? c->env->idle_timeout_ms : QUIC_IDLE_DEFAULT;
}

void quic_conn_config(struct quic_conn *c, ngtcp2_settings *s, ngtcp2_transport_params *p)
{
    ngtcp2_settings_default(s);
    s->initial_ts = quic_now();
    s->max_window = QUIC_MAX_WIN;
    s->max_stream_window = QUIC_MAX_WIN;
    s->handshake_timeout = (uint64_t)quic_idle_ms(c) * NGTCP2_MILLISECONDS;
    if (c->base.inbound)
        c->deadline = s->initial_ts + s->handshake_timeout;
    ngtcp2_transport_params_default(p);
    p->initial_max_stream_data_bidi_local = QUIC_WINDOW;
    p->initial_max_stream_data_bidi_remote = QUIC_WINDOW;
    p->initial_max_data = QUIC_WINDOW;
    /* One stream per connection, opened by the dialer. */
    p->initial_max_streams_bidi = c->base.inbound ? 1 : 0;
    p->initial_max_streams_uni = 0;
    p->max_idle_timeout = (uint64_t)quic_idle_ms(c) * NGTCP2_MILLISECONDS;
    p->max_udp_payload_size = QUIC_RX_BUF;
}

void quic_conn_ready(struct quic_conn *c)
{
    ngtcp2_conn_set_tls_native_handle(c->qc, c->tls);
    ngtcp2_conn_set_keep_alive_timeout(c->qc, (uint64_t)quic_idle_ms(c) / 2 * NGTCP2_MILLISECONDS);
}

/* ---- driving ngtcp2 ---------------------------------------------------- */

static void quic_arm(struct quic_conn *c)
{
    ngtcp2_tstamp exp = ngtcp2_conn_get_expiry(c->qc), now = quic_now();
    uint64_t ms = 0;

    /* A connection that finished TLS but never opened its stream must not
     * hold one of the listener's few handshake slots for ever. */
    if (!c->established && c->deadline && c->deadline < exp)
        exp = c->deadline;
    if (exp > now)
        ms = (exp - now + NGTCP2_MILLISECONDS - 1) / NGTCP2_MILLISECONDS;
    if (ms > 3600000)
        ms = 3600000;
    uv_timer_start(&c->timer, quic_on_timer, ms, 0);
}

/* Write packets until ngtcp2 has nothing more or a burst is done. */
static void quic_flush(struct quic_conn *c)
{
    uint8_t pkt[QUIC_PKT_MAX];
    ngtcp2_path_storage ps;
    ngtcp2_tstamp now = quic_now();
    bool blocked = false;
    unsigned burst = 0;

    ngtcp2_path_storage_zero(&ps);
    while (burst < QUIC_BURST) {
        ngtcp2_vec v[2];
        size_t cnt = (c->sid >= 0 && !blocked) ? quic_unsent(c, v) : 0;
        bool open = c->sid >= 0 && !c->announced && !c->base.inbound && !blocked;
        int64_t sid = (cnt || open) ? c->sid : -1;
        ngtcp2_ssize nd = -1;
        ngtcp2_ssize n = ngtcp2_conn_writev_stream(c->qc, &ps.path, NULL, pkt, sizeof(pkt), &nd,
                                                   NGTCP2_WRITE_STREAM_FLAG_MORE, sid, v, cnt, now);

        if (nd >= 0 && sid >= 0) {
            c->announced = true;
            quic_advance(c, (size_t)nd);
        }
        if (n == NGTCP2_ERR_WRITE_MORE)
            continue;
        if (n == NGTCP2_ERR_STREAM_DATA_BLOCKED || n == NGTCP2_ERR_STREAM_SHUT_WR ||
            n == NGTCP2_ERR_STREAM_NOT_FOUND) {
            blocked = true;
            continue;
        }
        if (n < 0) {
            quic_fail(c, (int)n);
            return;
        }
        if (n == 0)
            break;
        if (quic_send_dgram(c, (const struct sockaddr *)ps.path.remote.addr, pkt, (size_t)n) != 0)
            break; /* lost as on a congested network; ngtcp2 recovers */
        if (c->base.closing)
            return;
        burst++;
    }
    if (c->base.closing)
        return;
    ngtcp2_conn_update_pkt_tx_time(c->qc, now);
    if (burst == QUIC_BURST)
        quic_kick(c);
    else
        quic_arm(c);
}

/* Hand every complete frame to the owner; credit what was consumed. */
static void quic_deliver(struct quic_conn *c)
{
    size_t off = 0;

    while (!c->paused && !c->base.closing && c->rlen - off >= OVL_FRAME_LENHDR) {
        size_t flen = ld_be16(c->rbuf + off);

        if (flen == 0 || flen > OVL_FRAME_MAX) {
            quic_conn_shutdown(c, flen ? OVL_ETOOBIG : OVL_EPROTO, false);
            return;
        }
        if (c->rlen - off - OVL_FRAME_LENHDR < flen)
            break;
        c->base.stats.frames_in++;
        c->base.stats.bytes_in += flen;
        if (c->base.cb && c->base.cb->frame)
            c->base.cb->frame(&c->base, c->rbuf + off + OVL_FRAME_LENHDR, flen);
        off += OVL_FRAME_LENHDR + flen;
    }
    if (off == 0 || c->base.closing)
        return;
    memmove(c->rbuf, c->rbuf + off, c->rlen - off);
    c->rlen -= off;
    if (ngtcp2_conn_extend_max_stream_offset(c->qc, c->sid, off) != 0) {
        quic_conn_shutdown(c, OVL_EPROTO, false);
        return;
    }
    ngtcp2_conn_extend_max_offset(c->qc, off);
}

/* The handshake finished: open or await the stream, tell the owner. */
static void quic_establish(struct quic_conn *c)
{
    if (!c->base.inbound && c->sid < 0) {
        int rc = ngtcp2_conn_open_bidi_stream(c->qc, &c->sid, NULL);

        if (rc) {
            quic_fail(c, rc);
            return;
        }
    }
    if (c->sid < 0)
        return; /* server: the dialer's first STREAM frame names it */
    c->established = true;
    if (c->base.inbound)
        quic_listener_accept(c);
    else if (c->base.cb && c->base.cb->connected)
        c->base.cb->connected(&c->base);
}

/* Run what ngtcp2 made due, owner callbacks included, then write. */
static void quic_run(struct quic_conn *c)
{
    if (!c->base.closing && c->hs_done && !c->established)
        quic_establish(c);
    if (!c->base.closing && c->established)
        quic_deliver(c);
    if (!c->base.closing && c->peer_gone && c->rlen < OVL_FRAME_LENHDR)
        quic_conn_shutdown(c, OVL_ECLOSED, false);
    if (!c->base.closing && c->want_drain && c->end - c->acked <= quic_sendq_max(c) / 2) {
        c->want_drain = false;
        if (c->base.cb && c->base.cb->drain)
            c->base.cb->drain(&c->base);
    }
    if (!c->base.closing)
        quic_flush(c);
}

static void quic_on_timer(uv_timer_t *t)
{
    struct quic_conn *c = t->data;
    ngtcp2_tstamp now = quic_now();
    int rc;

    if (c->base.closing || !c->qc)
        return;
    if (!c->established && c->deadline && c->deadline <= now) {
        quic_conn_shutdown(c, OVL_ETIMEDOUT, false);
        return;
    }
    if (ngtcp2_conn_get_expiry(c->qc) <= now) {
        rc = ngtcp2_conn_handle_expiry(c->qc, now);
        if (rc) {
            quic_fail(c, rc);
            return;
        }
    }
    quic_run(c);
}

void quic_conn_input(struct quic_conn *c, const struct sockaddr *remote, const uint8_t *data,
                     size_t len)
{
    ngtcp2_path path;
    ngtcp2_pkt_info pi = {0};
    int rc;

    if (c->base.closing)
        return;
    path.local.addr = (ngtcp2_sockaddr *)&c->local;
    path.local.addrlen = (ngtcp2_socklen)c->locallen;
    path.remote.addr = (ngtcp2_sockaddr *)remote;
    path.remote.addrlen =
        remote->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
    path.user_data = NULL;
    rc = ngtcp2_conn_read_pkt(c->qc, &path, &pi, data, len, quic_now());
    if (rc) {
        quic_fail(c, rc);
        return;
    }
    quic_run(c);
}

/* ---- the transport operations ------------------------------------------ */

static int quic_send(struct transport *t, const uint8_t *frame, size_t len)
{
    struct quic_conn *c = quic_of(t);
    uint8_t hdr[OVL_FRAME_LENHDR];

    if (c->base.closing)
        return OVL_ECLOSED;
    if (len > OVL_FRAME_MAX)
        return OVL_ETOOBIG;
    if (len == 0 || !frame)
        return OVL_EINVAL;
    if (c->end - c->acked + OVL_FRAME_LENHDR + len > quic_sendq_max(c)) {
        c->base.stats.eagain++;
        c->want_drain = true;
        return OVL_EAGAIN;
    }
    st_be16(hdr, (uint16_t)len);
    /* A frame cut short by ENOMEM would corrupt the stream: close. */
    if (quic_append(c, hdr, sizeof(hdr)) != 0 || quic_append(c, frame, len) != 0) {
        quic_conn_shutdown(c, OVL_ENOMEM, false);
        return OVL_ENOMEM;
    }
    c->base.stats.frames_out++;
    c->base.stats.bytes_out += len;
    if (c->qc)
        quic_kick(c);
    return 0;
}

static void quic_close(struct transport *t)
{
    quic_conn_shutdown(quic_of(t), 0, false);
}

static void quic_pause(struct transport *t)
{
    quic_of(t)->paused = true;
}

static void quic_resume(struct transport *t)
{
    struct quic_conn *c = quic_of(t);

    if (!c->paused)
        return;
    c->paused = false;
    if (c->qc)
        quic_kick(c); /* deliver what waited, from the loop, not from here */
}

static size_t quic_queued(const struct transport *t)
{
    const struct quic_conn *c = quic_of(t);

    return (size_t)(c->end - c->acked);
}

static void quic_want_drain(struct transport *t)
{
    quic_of(t)->want_drain = true;
}

static int quic_peer_uri(const struct transport *t, char *out, size_t outlen)
{
    const struct quic_conn *c = quic_of(t);

    return uri_from_sockaddr(out, outlen, "quic", (const struct sockaddr *)&c->remote);
}

/* ---- dialing ----------------------------------------------------------- */

int quic_send_dgram(struct quic_conn *c, const struct sockaddr *to, const uint8_t *pkt, size_t len)
{
    uv_buf_t b = uv_buf_init((char *)pkt, (unsigned int)len);
    int rc;

    if (c->lis) {
        rc = uv_udp_try_send(&c->lis->udp, &b, 1, to);
    } else if (c->udp_open) {
        rc = uv_udp_try_send(&c->udp, &b, 1, NULL);
        /* A refused earlier datagram surfaces here on a connected socket. */
        if (rc == UV_ECONNREFUSED && !c->base.closing)
            quic_conn_shutdown(c, rc, true);
    } else {
        rc = UV_EBADF;
    }
    return rc < 0 ? rc : 0;
}

static void quic_cli_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct quic_conn *c = h->data;

    (void)suggested;
    *buf = uv_buf_init((char *)c->dbuf, QUIC_RX_BUF);
}

static void quic_cli_read(uv_udp_t *u, ssize_t n, const uv_buf_t *buf, const struct sockaddr *addr,
                          unsigned flags)
{
    struct quic_conn *c = u->data;

    if (c->base.closing)
        return;
    if (n < 0) {
        quic_conn_shutdown(c, (int)n, true); /* e.g. ICMP port unreachable */
        return;
    }
    if (n == 0 || !addr || (flags & UV_UDP_PARTIAL))
        return;
    quic_conn_input(c, addr, (const uint8_t *)buf->base, (size_t)n);
}

/* Connect the socket to sa and start the QUIC client. */
static int quic_cli_start(struct quic_conn *c, const struct sockaddr *sa)
{
    ngtcp2_settings s;
    ngtcp2_transport_params p;
    ngtcp2_path path;
    ngtcp2_cid dcid, scid;
    int rc;

    rc = uv_udp_connect(&c->udp, sa);
    if (!rc) {
        c->locallen = sizeof(c->local);
        rc = uv_udp_getsockname(&c->udp, (struct sockaddr *)&c->local, &c->locallen);
    }
    if (!rc) {
        c->remotelen = sizeof(c->remote);
        rc = uv_udp_getpeername(&c->udp, (struct sockaddr *)&c->remote, &c->remotelen);
    }
    if (!rc)
        rc = uv_udp_recv_start(&c->udp, quic_cli_alloc, quic_cli_read);
    if (rc)
        return rc;
    rc = quic_tls_session(c, false, NULL);
    if (rc)
        return rc;
    dcid.datalen = QUIC_CID_LEN;
    scid.datalen = QUIC_CID_LEN;
    randombytes_buf(dcid.data, dcid.datalen);
    randombytes_buf(scid.data, scid.datalen);
    path.local.addr = (ngtcp2_sockaddr *)&c->local;
    path.local.addrlen = (ngtcp2_socklen)c->locallen;
    path.remote.addr = (ngtcp2_sockaddr *)&c->remote;
    path.remote.addrlen = (ngtcp2_socklen)c->remotelen;
    path.user_data = NULL;
    quic_conn_config(c, &s, &p);
    rc = ngtcp2_conn_client_new(&c->qc, &dcid, &scid, &path, NGTCP2_PROTO_VER_V1,
                                &quic_cli_callbacks, &s, &p, NULL, c);
    if (rc)
        return rc == NGTCP2_ERR_NOMEM ? OVL_ENOMEM : OVL_EINVAL;
    quic_conn_ready(c);
    quic_kick(c); /* the Initial leaves from the loop, never inside tp_dial */
    return 0;
}

static void quic_on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    struct quic_conn *c = container_of(req, struct quic_conn, gai);
    struct sockaddr_storage ss;
    int rc;

    c->resolving = false;
    if (c->base.closing) {
        uv_freeaddrinfo(res);
        if (c->handles == 0)
            quic_free(c); /* the close callbacks left the freeing to us */
        return;
    }
    if (status < 0 || !res || res->ai_addrlen > sizeof(ss)) {
        uv_freeaddrinfo(res);
        quic_conn_shutdown(c, status < 0 ? status : OVL_ENOENT, true);
        return;
    }
    memset(&ss, 0, sizeof(ss));
    memcpy(&ss, res->ai_addr, res->ai_addrlen);
    uv_freeaddrinfo(res);
    rc = quic_cli_start(c, (const struct sockaddr *)&ss);
    if (rc)
        quic_conn_shutdown(c, rc, true);
}

static int quic_dial(struct tp_env *env, const struct ovl_uri *uri, const struct tp_cb *cb,
                     void *udata, struct transport **out)
{
    struct quic_conn *c;
    struct sockaddr_storage ss;
    struct addrinfo hints;
    char port[8];
    int rc;

    *out = NULL;
    rc = quic_conn_new(env, true, &c);
    if (rc)
        return rc;
    tp_set_cb(&c->base, cb, udata);
    rc = uv_udp_init(env->loop, &c->udp);
    if (!rc) {
        c->udp.data = c;
        c->udp_open = true;
        if (uri->is_literal) {
            rc = uri_sockaddr(uri, &ss);
            if (!rc)
                rc = quic_cli_start(c, (const struct sockaddr *)&ss);
        } else {
            memset(&hints, 0, sizeof(hints));
            hints.ai_family = AF_UNSPEC;
            hints.ai_socktype = SOCK_DGRAM;
            hints.ai_flags = AI_NUMERICSERV;
            snprintf(port, sizeof(port), "%u", (unsigned)uri->port);
            rc = uv_getaddrinfo(env->loop, &c->gai, quic_on_resolved, uri->host, port, &hints);
            c->resolving = rc == 0;
        }
    }
    if (rc) {
        c->silent = true; /* the starting call failed: no callback fires */
        quic_conn_shutdown(c, rc, true);
        return rc;
    }
    *out = &c->base;
    return 0;
}

const struct tp_ops tp_quic_ops = {
    .scheme = "quic",
    .listen = quic_listen,
    .dial = quic_dial,
    .send = quic_send,
    .close = quic_close,
    .pause = quic_pause,
    .resume = quic_resume,
    .queued = quic_queued,
    .want_drain = quic_want_drain,
    .peer_uri = quic_peer_uri,
    .listener_uri = quic_listener_uri,
    .listener_close = quic_listener_close,
};
