/* tp_quic.c - QUIC connections: the stream carrying frames and the timer
 * that drives ngtcp2. TLS sessions and the dial side live in
 * tp_quic_cli.c, listeners in tp_quic_srv.c; both build on this file; a server-side connection calls
 * its listener only through c->lops (tp_quic_int.h). Admission, deframing
 * and the owner's callbacks are the contract's common steps (transport.c).
 *
 * ngtcp2 forbids calling most of its API from inside its callbacks, and our
 * owners may call tp_send/tp_close from inside theirs, so the two never
 * nest: ngtcp2 callbacks only record (bytes into the streams' receive buffers, flags), and
 * quic_run() hands frames, connected() and drain() to the owner after
 * ngtcp2 returns. tp_send only queues and arms the timer at 0, so every
 * frame queued in one loop iteration leaves in one write pass; a received
 * datagram only goes into ngtcp2 and arms the same timer, so that the
 * owner gets the frames of every datagram of the turn at once and the
 * peer one acknowledgement for them, not one per datagram. The
 * acknowledgement of a lone datagram waits a little longer for the
 * owner's answer to take it along (quic_ack_held).
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <ngtcp2/ngtcp2_crypto_gnutls.h>
#include <sodium.h>

#include "core/cell.h"
#include "core/tp_quic_int.h"
#include "lib/bytes.h"
#include "lib/crypto.h"

#define QUIC_BURST        64 /* datagrams per write pass before yielding to the loop */
#define QUIC_GSO_MAX      48 /* datagrams one sendmsg carries (UDP GSO: 64 at most) */
#define QUIC_IDLE_DEFAULT 30000
#define QUIC_SOCK_BUF     (2 * 1024 * 1024) /* socket receive buffer asked for */
#define QUIC_TRIM_MS      1000 /* quic_rx_trim at most this often */
#define QUIC_MAP_LEN      (QUIC_RX_SIZE + QUIC_BATCH + sizeof(struct quic_shared))

/* A lone datagram's ACK waits this long for an answer (tp_env.ack_hold_ms);
 * it must stay well below the max_ack_delay we advertise (ngtcp2's 25 ms). */
#define QUIC_ACK_HOLD_MS 1


static void quic_on_timer(uv_timer_t *t);
static int quic_send_dgrams(struct quic_conn *c, const struct sockaddr *to, const uint8_t *b,
                            size_t len, size_t seg);

/* Ask for a write pass (and expiry handling) on the next loop turn. A
 * pass already asked for takes every frame queued meanwhile: restarting
 * the timer for each (once per cell) would only move it in libuv's heap. */
void quic_kick(struct quic_conn *c)
{
    if (tp_is_closing(&c->base) ||
        (uv_is_active((uv_handle_t *)&c->timer) && uv_timer_get_due_in(&c->timer) == 0))
        return;
    uv_timer_start(&c->timer, quic_on_timer, 0, 0);
}

/* ---- lifetime ---------------------------------------------------------- */

void quic_free(struct quic_conn *c)
{
    quic_free_blocks(c, true);
    quic_in_free(c, true);
    if (c->qc)
        ngtcp2_conn_del(c->qc);
    if (c->tls)
        gnutls_deinit(c->tls);
    if (c->lops)
        c->lops->release(c);
    if (c->base.flags & QUIC_F_RX)
        quic_rx_release(c->base.env);
    free(c);
}

int quic_udp_init(struct tp_env *env, uv_udp_t *u)
{
    int rc;

    if (!env->quic_rx) {
        void *m =
            mmap(NULL, QUIC_MAP_LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

        _Static_assert((QUIC_RX_SIZE + QUIC_BATCH) % _Alignof(struct quic_shared) == 0, "align");
        if (m == MAP_FAILED)
            return OVL_ENOMEM;
        env->quic_rx = m; /* zero filled: quic_shared() too */
    }
    env->quic_rx_users++;
    rc = uv_udp_init_ex(env->loop, u, AF_UNSPEC | UV_UDP_RECVMMSG);
    if (rc)
        quic_rx_release(env);
    return rc;
}

void quic_rx_release(struct tp_env *env)
{
    if (--env->quic_rx_users == 0) {
        struct quic_shared *sh = quic_shared(env);

        if (sh->prio)
            gnutls_priority_deinit(sh->prio);
        if (sh->cred)
            gnutls_certificate_free_credentials(sh->cred);
        munmap(env->quic_rx, QUIC_MAP_LEN);
        env->quic_rx = NULL;
    }
}

/* Give back the pages of the receive buffer and the batch, at most once
 * every QUIC_TRIM_MS: between two read callbacks and outside a write
 * pass nothing in them is in use, and the kernel hands zeroed pages back
 * when they are touched again (a busy node faults in some 40 pages a
 * second). quic_shared(), in the last page, stays. */
static void quic_rx_trim(struct tp_env *env)
{
    struct quic_shared *sh = quic_shared(env);
    uint64_t now = uv_now(env->loop);
    size_t page = (size_t)sysconf(_SC_PAGESIZE);

    if (now - sh->trimmed_ms < QUIC_TRIM_MS)
        return;
    sh->trimmed_ms = now;
#ifdef MADV_DONTNEED
    (void)madvise(env->quic_rx, (QUIC_RX_SIZE + QUIC_BATCH) / page * page, MADV_DONTNEED);
#endif
}

void quic_udp_opts(uv_udp_t *u, int family)
{
    uv_os_fd_t fd;
    int v;

    if (uv_fileno((uv_handle_t *)u, &fd) != 0)
        return;
    /* The default (208 KiB on Linux) overflowed under a window's burst of
     * 8 KiB datagrams on a busy host: real loss, and congestion control
     * backing off for it. The kernel caps it at net.core.rmem_max. */
    v = QUIC_SOCK_BUF;
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, sizeof(v));
    /* Best effort: without DF a probe may pass fragmented, no worse. */
    if (family == AF_INET6) {
        v = IPV6_PMTUDISC_PROBE;
        (void)setsockopt(fd, IPPROTO_IPV6, IPV6_MTU_DISCOVER, &v, sizeof(v));
    } else {
        v = IP_PMTUDISC_PROBE;
        (void)setsockopt(fd, IPPROTO_IP, IP_MTU_DISCOVER, &v, sizeof(v));
    }
}

static void quic_on_handle_close(uv_handle_t *h)
{
    struct quic_conn *c = h->data;

    if (--c->handles > 0)
        return;
    tp_emit_closed(&c->base);
    /* A cancelled getaddrinfo still calls back; it frees the conn then. */
    if (!(c->base.flags & TP_F_RESOLVING))
        quic_free(c);
}

static ngtcp2_conn *quic_get_conn(ngtcp2_crypto_conn_ref *ref)
{
    return ((struct quic_conn *)ref->user_data)->qc;
}

int quic_conn_new(struct tp_env *env, const struct tp_ops *ops, struct quic_conn **out)
{
    struct quic_conn *c = calloc(1, sizeof(*c));

    *out = NULL;
    if (!c)
        return OVL_ENOMEM;
    c->base.ops = ops;
    c->base.env = env;
    for (unsigned i = 0; i < QUIC_STREAMS; i++)
        c->tx[i].sid = -1;
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
    uint8_t pkt[QUIC_CTL_MAX];
    ngtcp2_path_storage ps;
    ngtcp2_ssize n;

    if (!c->qc || ngtcp2_conn_in_closing_period(c->qc) || ngtcp2_conn_in_draining_period(c->qc))
        return;
    ngtcp2_path_storage_zero(&ps);
    n = ngtcp2_conn_write_connection_close(c->qc, &ps.path, NULL, pkt, sizeof(pkt), ccerr,
                                           quic_now());
    if (n > 0)
        (void)quic_send_dgrams(c, (const struct sockaddr *)&c->remote, pkt, (size_t)n, (size_t)n);
}

void quic_conn_shutdown(struct quic_conn *c, int reason, bool quiet)
{
    ngtcp2_ccerr ccerr;

    /* Closing first: a refused goodbye must not start a second shutdown. */
    if (!tp_begin_close(&c->base, reason))
        return;
    if (!quiet) {
        ngtcp2_ccerr_default(&ccerr);
        if (reason && reason != OVL_ECLOSED)
            ngtcp2_ccerr_set_application_error(&ccerr, 1, NULL, 0);
        quic_send_close(c, &ccerr);
    }
    if (c->lops)
        c->lops->unlink(c);
    if (c->base.flags & TP_F_RESOLVING)
        (void)uv_cancel((uv_req_t *)&c->gai);
    uv_close((uv_handle_t *)&c->timer, quic_on_handle_close);
    if (c->base.flags & QUIC_F_UDP_OPEN) {
        c->handles++;
        uv_close((uv_handle_t *)&c->udp, quic_on_handle_close);
    }
}

/* Close after an ngtcp2 error: its own CONNECTION_CLOSE, or none. */
static void quic_fail(struct quic_conn *c, int liberr)
{
    ngtcp2_ccerr ccerr;
    int reason = OVL_EPROTO;

    if (liberr == NGTCP2_ERR_CALLBACK_FAILURE && (c->base.flags & QUIC_F_BAD_STREAM))
        liberr = NGTCP2_ERR_STREAM_LIMIT; /* quic_stream_opened refused it */
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
    case NGTCP2_ERR_STREAM_LIMIT: /* a stream past what we allow: ngtcp2 saw it first */
        if (c->lops)
            c->lops->bad_stream(c);
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

/* ---- ngtcp2 callbacks: record only ------------------------------------- */

static int quic_cb_recv_stream(ngtcp2_conn *qc, uint32_t flags, int64_t sid, uint64_t off,
                               const uint8_t *data, size_t len, void *ud, void *sud)
{
    struct quic_conn *c = ud;
    int rc;

    (void)qc, (void)off, (void)sud;
    if (c->tx[0].sid < 0 && tp_is_inbound(&c->base) && (sid & 3) == 0)
        c->tx[0].sid = sid;
    rc = quic_in_put(c, sid, data, len);
    if (rc == 0 && (flags & NGTCP2_STREAM_DATA_FLAG_FIN))
        c->base.flags |= QUIC_F_PEER_GONE;
    return rc;
}

static int quic_cb_acked(ngtcp2_conn *qc, int64_t sid, uint64_t off, uint64_t len, void *ud,
                         void *sud)
{
    struct quic_conn *c = ud;

    (void)qc, (void)sud;
    quic_acked(c, sid, off + len);
    return 0;
}

static int quic_cb_stream_open(ngtcp2_conn *qc, int64_t sid, void *ud)
{
    struct quic_conn *c = ud;

    (void)qc;
    if (c->tx[0].sid < 0 && tp_is_inbound(&c->base) && (sid & 3) == 0)
        c->tx[0].sid = sid;
    return quic_stream_opened(c, sid);
}

static int quic_cb_stream_close(ngtcp2_conn *qc, uint32_t flags, int64_t sid, uint64_t code,
                                void *ud, void *sud)
{
    struct quic_conn *c = ud;

    (void)qc, (void)flags, (void)code, (void)sud;
    (void)sid; /* none ends but with the link: stream 0 or a lane, the peer left */
    c->base.flags |= QUIC_F_PEER_GONE;
    return 0;
}

static int quic_cb_handshake_done(ngtcp2_conn *qc, void *ud)
{
    (void)qc;
    ((struct quic_conn *)ud)->base.flags |= QUIC_F_HS_DONE;
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
    if (!c->lops) {
        randombytes_buf(token, NGTCP2_STATELESS_RESET_TOKENLEN);
        return 0;
    }
    return c->lops->cid_new(c, cid, token) != 0 ? NGTCP2_ERR_CALLBACK_FAILURE : 0;
}

static int quic_cb_del_cid(ngtcp2_conn *qc, const ngtcp2_cid *cid, void *ud)
{
    struct quic_conn *c = ud;

    (void)qc;
    if (c->lops)
        c->lops->cid_del(c, cid);
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

/* What both sides share; quic_conn_config() adds each side's own. One
 * table, not one a side: each holds 320 bytes and a relocation a pointer. */
static const ngtcp2_callbacks quic_callbacks = {QUIC_COMMON_CALLBACKS};

static uint32_t quic_idle_ms(const struct quic_conn *c)
{
    const struct tp_env *env = c->base.env;

    return env->idle_timeout_ms ? env->idle_timeout_ms : QUIC_IDLE_DEFAULT;
}

/* The path from c's local address to remote (len bytes). */
static void quic_path(struct quic_conn *c, ngtcp2_path *path, const struct sockaddr *remote,
                      size_t len)
{
    path->local.addr = (ngtcp2_sockaddr *)&c->local;
    path->local.addrlen = (ngtcp2_socklen)c->locallen;
    path->remote.addr = (ngtcp2_sockaddr *)remote;
    path->remote.addrlen = (ngtcp2_socklen)len;
    path->user_data = NULL;
}

/* Datagram sizes Path MTU Discovery tries, in turn, above QUIC's 1200:
 * Ethernet's (IPv6), then what loopback and jumbo frames take. Fewer,
 * larger packets cost less per byte, as TCP's segments do. A size the
 * path drops (the socket sets DF) is simply not used. */
static const uint16_t quic_probes[] = {1452, 4096, QUIC_PKT_MAX};

void quic_conn_config(struct quic_conn *c, ngtcp2_settings *s, ngtcp2_transport_params *p,
                      ngtcp2_path *path, ngtcp2_callbacks *cb)
{
    *cb = quic_callbacks;
    if (tp_is_inbound(&c->base)) {
        cb->recv_client_initial = ngtcp2_crypto_recv_client_initial_cb;
    } else {
        cb->client_initial = ngtcp2_crypto_client_initial_cb;
        cb->recv_retry = ngtcp2_crypto_recv_retry_cb;
    }
    quic_path(c, path, (const struct sockaddr *)&c->remote, c->remotelen);
    ngtcp2_settings_default(s);
    s->initial_ts = quic_now();
    s->max_window = QUIC_MAX_WIN;
    s->max_stream_window = QUIC_MAX_WIN;
    s->max_tx_udp_payload_size = QUIC_PKT_MAX;
    /* BBR, not Cubic: random loss is no congestion signal to it. One link
     * with a 20 ms round trip and 1 % loss carried 13 MB/s, Cubic 5. */
    s->cc_algo = NGTCP2_CC_ALGO_BBR;
    s->pmtud_probes = quic_probes;
    s->pmtud_probeslen = sizeof(quic_probes) / sizeof(quic_probes[0]);
    s->handshake_timeout = (uint64_t)quic_idle_ms(c) * NGTCP2_MILLISECONDS;
    if (tp_is_inbound(&c->base))
        c->deadline = s->initial_ts + s->handshake_timeout;
    ngtcp2_transport_params_default(p);
    p->initial_max_stream_data_bidi_local = QUIC_WINDOW;
    p->initial_max_stream_data_bidi_remote = QUIC_WINDOW;
    p->initial_max_data = QUIC_WINDOW;
    /* The link's stream, opened by the dialer, and each end's lanes. */
    p->initial_max_streams_bidi = tp_is_inbound(&c->base) ? 1 : 0;
    p->initial_max_streams_uni = QUIC_LANES;
    p->initial_max_stream_data_uni = QUIC_WINDOW;
    p->max_idle_timeout = (uint64_t)quic_idle_ms(c) * NGTCP2_MILLISECONDS;
    p->max_udp_payload_size = QUIC_RX_BUF;
}

void quic_conn_ready(struct quic_conn *c)
{
    ngtcp2_conn_set_tls_native_handle(c->qc, c->tls);
    ngtcp2_conn_set_keep_alive_timeout(c->qc, (uint64_t)quic_idle_ms(c) / 2 * NGTCP2_MILLISECONDS);
}

/* ---- driving ngtcp2 ---------------------------------------------------- */

/* Aim the timer at ngtcp2's next expiry, or at not_before when later. */
static void quic_arm(struct quic_conn *c, ngtcp2_tstamp not_before)
{
    ngtcp2_tstamp exp = ngtcp2_conn_get_expiry(c->qc), now = quic_now();
    uint64_t ms = 0;

    if (exp < not_before)
        exp = not_before;
    /* A connection that finished TLS but never opened its stream must not
     * hold one of the listener's few handshake slots for ever. */
    if (!(c->base.flags & TP_F_ESTABLISHED) && c->deadline && c->deadline < exp)
        exp = c->deadline;
    if (exp > now)
        ms = (exp - now + NGTCP2_MILLISECONDS - 1) / NGTCP2_MILLISECONDS;
    if (ms > 3600000)
        ms = 3600000;
    uv_timer_start(&c->timer, quic_on_timer, ms, 0);
}

#ifdef UDP_SEGMENT
/* Send b[0, len) on u (to NULL when connected) as datagrams of seg bytes,
 * the last shorter, with one sendmsg the kernel cuts apart (UDP GSO).
 * 0 or a negative errno. */
static int quic_gso(uv_udp_t *u, const struct sockaddr *to, int tolen, const uint8_t *b, size_t len,
                    size_t seg)
{
    uint64_t ctl[3] = {0}; /* a cmsghdr and its u16, aligned */
    struct iovec iov = {.iov_base = (void *)b, .iov_len = len};
    struct msghdr m = {.msg_name = (void *)to,
                       .msg_namelen = to ? (socklen_t)tolen : 0,
                       .msg_iov = &iov,
                       .msg_iovlen = 1,
                       .msg_control = ctl,
                       .msg_controllen = CMSG_SPACE(sizeof(uint16_t))};
    struct cmsghdr *cm = CMSG_FIRSTHDR(&m);
    uint16_t size = (uint16_t)seg;
    uv_os_fd_t fd;

    _Static_assert(sizeof(ctl) >= CMSG_SPACE(sizeof(uint16_t)), "cmsg room");
    cm->cmsg_level = SOL_UDP;
    cm->cmsg_type = UDP_SEGMENT;
    cm->cmsg_len = CMSG_LEN(sizeof(size));
    memcpy(CMSG_DATA(cm), &size, sizeof(size));
    if (uv_fileno((uv_handle_t *)u, &fd) != 0)
        return -EINVAL;
    return sendmsg(fd, &m, 0) < 0 ? -errno : 0;
}
#endif

/* Send the datagrams in b[0, len), each seg bytes but the last (shorter),
 * to c's peer: with one sendmsg where the kernel takes UDP GSO, else one
 * by one. 0, or what the first failed send said. */
static int quic_send_dgrams(struct quic_conn *c, const struct sockaddr *to, const uint8_t *b,
                            size_t len, size_t seg)
{
    uv_udp_t *u = c->lis_udp ? c->lis_udp : &c->udp;
    int rc = 0;

    if (!c->lis_udp && !(c->base.flags & QUIC_F_UDP_OPEN))
        return UV_EBADF;
    if (!c->lis_udp)
        to = NULL; /* the dial side's socket is connected */
#ifdef UDP_SEGMENT
    if (len > seg && !(c->base.flags & QUIC_F_NO_GSO)) {
        rc = quic_gso(u, to, c->remotelen, b, len, seg);
        if (rc == UV_EIO || rc == UV_EINVAL || rc == UV_ENOPROTOOPT) {
            c->base.flags |= QUIC_F_NO_GSO; /* not here: one by one from now on */
            rc = 0;
        } else {
            len = 0;
        }
    }
#endif
    for (size_t off = 0; rc == 0 && off < len; off += seg) {
        uv_buf_t d = uv_buf_init((char *)b + off, (unsigned)(len - off < seg ? len - off : seg));

        rc = uv_udp_try_send(u, &d, 1, to);
        rc = rc < 0 ? rc : 0;
    }
    /* A datagram the path cannot take (a PMTUD probe over the interface's
     * MTU; the socket sets DF) is lost as on the wire: not an error. */
    if (rc == UV_EMSGSIZE)
        rc = 0;
    /* A refused earlier datagram surfaces here on a connected socket. */
    if (rc == UV_ECONNREFUSED && !c->lis_udp && !tp_is_closing(&c->base))
        quic_conn_shutdown(c, rc, true);
    return rc;
}

/* When an acknowledgement held back from now must leave. */
static ngtcp2_tstamp quic_hold_end(const struct quic_conn *c, ngtcp2_tstamp now)
{
    uint32_t ms = c->base.env->ack_hold_ms ? c->base.env->ack_hold_ms : QUIC_ACK_HOLD_MS;

    return now + ms * NGTCP2_MILLISECONDS;
}

/* Write packets until ngtcp2 has nothing more or a burst is done. They
 * collect in a batch of equal sizes (only the last may be shorter) that
 * leaves in one quic_send_dgrams, at most QUIC_BATCH bytes: what one UDP
 * GSO send carries. */
static void quic_flush(struct quic_conn *c)
{
    uint8_t *pkt = c->base.env->quic_rx + QUIC_RX_SIZE; /* QUIC_BATCH bytes */
    ngtcp2_path_storage ps;
    ngtcp2_tstamp now = quic_now();
    const struct sockaddr *to;
    bool wrote = false;
    unsigned burst = 0, in_batch = 0, blocked = 0, full = 0, slot = 0;
    size_t used = 0, seg = 0;
    int rc = 0;

    ngtcp2_path_storage_zero(&ps);
    to = (const struct sockaddr *)ps.path.remote.addr;
    while (burst < QUIC_BURST) {
        ngtcp2_vec v[2];
        size_t cnt = 0;
        int64_t sid = quic_next_stream(c, blocked | full, &slot, v, &cnt);
        ngtcp2_ssize nd = -1, n;

        if (in_batch > 0 && used + QUIC_PKT_MAX > QUIC_BATCH) { /* no room for one more */
            rc = quic_send_dgrams(c, to, pkt, used, seg);
            used = in_batch = 0;
            if (rc || tp_is_closing(&c->base))
                break;
        }
        n = ngtcp2_conn_writev_stream(c->qc, &ps.path, NULL, pkt + used, QUIC_PKT_MAX, &nd,
                                      NGTCP2_WRITE_STREAM_FLAG_MORE, sid, v, cnt, now);
        if (nd >= 0 && sid >= 0) {
            c->base.flags |= slot == 0 ? QUIC_F_ANNOUNCED : 0;
            quic_advance(c, &c->tx[slot], (size_t)nd);
            c->rr = (slot + 1) % QUIC_STREAMS; /* the next stream first: round robin */
            wrote = wrote || nd > 0;
        }
        if (n == NGTCP2_ERR_WRITE_MORE) {
            full |= nd <= 0 && sid >= 0 ? 1u << slot : 0; /* no room in this packet */
            continue;
        }
        if (n == NGTCP2_ERR_STREAM_DATA_BLOCKED || n == NGTCP2_ERR_STREAM_SHUT_WR ||
            n == NGTCP2_ERR_STREAM_NOT_FOUND) {
            blocked |= 1u << slot;
            continue;
        }
        if (n < 0) {
            quic_fail(c, (int)n);
            return;
        }
        if (n == 0)
            break;
        burst++;
        full = 0;
        if (in_batch > 0 && (size_t)n > seg) { /* longer than the batch's: it starts the next */
            rc = quic_send_dgrams(c, to, pkt, used, seg);
            memmove(pkt, pkt + used, (size_t)n);
            used = in_batch = 0;
        }
        if (in_batch++ == 0)
            seg = (size_t)n;
        used += (size_t)n;
        if (rc == 0 && ((size_t)n < seg || in_batch == QUIC_GSO_MAX)) {
            rc = quic_send_dgrams(c, to, pkt, used, seg);
            used = in_batch = 0;
        }
        if (tp_is_closing(&c->base))
            return;
        if (rc)
            break; /* lost as on a congested network; ngtcp2 recovers */
    }
    if (rc == 0 && used > 0 && !tp_is_closing(&c->base))
        (void)quic_send_dgrams(c, to, pkt, used, seg);
    if (tp_is_closing(&c->base))
        return;
    ngtcp2_conn_update_pkt_tx_time(c->qc, now);
    /* Acknowledgements due went out. One not due yet when ngtcp2 wrote our
     * data (it takes one along only once due) may still be waiting: held
     * as a lone one's from now, it leaves with the next packet, or alone
     * when the hold ends. */
    c->rx_lone = wrote && c->rx_lone ? 1 : 0;
    c->hold = c->rx_lone ? quic_hold_end(c, now) : 0;
    if (burst == QUIC_BURST)
        quic_kick(c);
    else
        quic_arm(c, 0);
}

/* A lone datagram of stream data came since the last write pass, and we
 * have nothing to send: hold its acknowledgement back for up to
 * QUIC_ACK_HOLD_MS instead of sending it alone at once, as ngtcp2 would (it
 * waits an eighth of the round trip, microseconds on loopback). An answer
 * the owner sends meanwhile, as a relay's backward cell or a PONG, takes
 * it along; otherwise it leaves when the hold ends. A packet on its own
 * costs both ends a system call, and its receiver a wakeup of its loop,
 * which a request crossing several relays on one busy host waits for:
 * TCP's kernel acknowledges without waking anyone. Two datagrams or more
 * are acknowledged at once as before (bulk flows, loss recovery), and the
 * hold stays far inside the max_ack_delay we advertise (25 ms), which the
 * peer allows for before it takes a packet for lost. True when holding,
 * the timer aimed at the hold's end. */
static bool quic_ack_held(struct quic_conn *c)
{
    ngtcp2_tstamp now;

    if (c->rx_lone != 1 || c->sent != c->end || !(c->base.flags & TP_F_ESTABLISHED) ||
        !(c->base.flags & (QUIC_F_ANNOUNCED | TP_F_INBOUND)))
        return false;
    now = quic_now();
    if (!c->hold)
        c->hold = quic_hold_end(c, now);
    if (now >= c->hold)
        return false;
    quic_arm(c, c->hold);
    return true;
}

/* The handshake finished: open or await the stream, tell the owner. */
static void quic_establish(struct quic_conn *c)
{
    if (!tp_is_inbound(&c->base) && c->tx[0].sid < 0) {
        int rc = ngtcp2_conn_open_bidi_stream(c->qc, &c->tx[0].sid, NULL);

        if (rc) {
            quic_fail(c, rc);
            return;
        }
    }
    if (c->tx[0].sid < 0)
        return; /* server: the dialer's first STREAM frame names it */
    c->base.flags |= TP_F_ESTABLISHED;
    if (c->lops)
        c->lops->accept(c);
    else
        tp_emit_connected(&c->base);
}

/* Run what ngtcp2 made due, owner callbacks included, then write. */
static void quic_run(struct quic_conn *c)
{
    struct transport *t = &c->base;

    if ((t->flags & (TP_F_CLOSING | QUIC_F_HS_DONE | TP_F_ESTABLISHED)) == QUIC_F_HS_DONE)
        quic_establish(c);
    if ((t->flags & (TP_F_CLOSING | TP_F_ESTABLISHED)) == TP_F_ESTABLISHED)
        quic_deliver(c);
    if ((t->flags & (TP_F_CLOSING | QUIC_F_PEER_GONE)) == QUIC_F_PEER_GONE &&
        c->in[0].len < OVL_FRAME_LENHDR)
        quic_conn_shutdown(c, OVL_ECLOSED, false);
    tp_emit_drain(t, quic_queued(t), tp_sendq_max(t));
    if (!tp_is_closing(t) && !quic_ack_held(c))
        quic_flush(c);
}

static void quic_on_timer(uv_timer_t *t)
{
    struct quic_conn *c = t->data;
    ngtcp2_tstamp now = quic_now();
    int rc;

    if (tp_is_closing(&c->base) || !c->qc)
        return;
    if (!(c->base.flags & TP_F_ESTABLISHED) && c->deadline && c->deadline <= now) {
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

    if (tp_is_closing(&c->base))
        return;
    quic_path(c, &path, remote,
              remote->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                            : sizeof(struct sockaddr_in));
    c->rx_data = false;
    rc = ngtcp2_conn_read_pkt(c->qc, &path, &pi, data, len, quic_now());
    if (rc) {
        quic_fail(c, rc);
        return;
    }
    /* Count datagrams of stream data: the acknowledgements we hold back.
     * Others (an acknowledgement, a PING, a probe) are answered with them:
     * counted, two lone acknowledgements crossing would answer each other
     * for ever, each one making the other end flush. */
    if (c->rx_data && c->rx_lone < 2)
        c->rx_lone++;
    quic_kick(c);
}

/* ---- the transport operations ------------------------------------------ */

/* Queue one frame on the stream (tp_send). */
int quic_send(struct transport *t, const uint8_t *frame, size_t len)
{
    struct quic_conn *c = quic_of(t);
    int err = tp_admit(t, frame, len, quic_queued(t), tp_sendq_max(t));

    if (err)
        return err;
    /* A frame cut short by ENOMEM would corrupt the stream: close. */
    if ((err = quic_queue_frame(c, frame, len)) != 0) {
        quic_conn_shutdown(c, err, false);
        return err;
    }
    tp_count_sent(t, len);
    if (c->qc)
        quic_kick(c);
    return 0;
}

/* Close with a goodbye to the peer (tp_close). */
void quic_close(struct transport *t)
{
    quic_conn_shutdown(quic_of(t), 0, false);
}

/* Stop handing frames over (tp_hold): the flag does it, the window the rest. */
void quic_pause(struct transport *t)
{
    (void)t;
}

/* Hand frames over again (tp_hold). */
void quic_resume(struct transport *t)
{
    struct quic_conn *c = quic_of(t);

    if (c->qc)
        quic_kick(c); /* deliver what waited, from the loop, not from here */
}

/* Give back what a quiet connection holds (tp_trim): the send blocks once
 * all was acknowledged, the receive buffer once it holds no partial
 * frame, and the node's shared buffers' pages (quic_rx_trim). Never
 * called inside a read callback or a write pass (the link's timer calls
 * it), and what deframing reads stays: its length is not 0 meanwhile. */
void quic_trim(struct transport *t)
{
    struct quic_conn *c = quic_of(t);

    quic_free_blocks(c, false);
    quic_in_free(c, false);
    if (t->env->quic_rx)
        quic_rx_trim(t->env);
}

size_t tp_quic_buffers(const struct transport *t)
{
    const struct quic_conn *c = quic_of(t);
    size_t n = 0;

    for (unsigned i = 0; i < QUIC_STREAMS; i++) {
        n += c->in[i].cap;
        for (const struct quic_blk *b = c->tx[i].head; b; b = b->next)
            n += sizeof(*b);
    }
    return n + c->nspare * sizeof(struct quic_blk);
}

/* Return what counts against sendq_max (tp_queued): the bytes not yet
 * sent, as TCP counts what its kernel has not taken; and past QUIC_FLIGHT
 * bytes sent and unacknowledged (where an honest peer's window ends), the
 * excess too. So a link keeps a window in flight beside its queue, as a
 * TCP socket's buffer does, and a peer that grants credit and acknowledges
 * nothing pins at most sendq_max + QUIC_FLIGHT bytes. */
size_t quic_queued(const struct transport *t)
{
    const struct quic_conn *c = quic_of(t);
    uint64_t held = c->end - c->acked, unsent = c->end - c->sent;

    return (size_t)(held > unsent + QUIC_FLIGHT ? held - QUIC_FLIGHT : unsent);
}

/* Return every stream byte not yet acknowledged (tp_outstanding): the queue and
 * what is in flight, all of it in our send blocks. */
size_t quic_outstanding(const struct transport *t)
{
    const struct quic_conn *c = quic_of(t);

    return (size_t)(c->end - c->acked);
}

/* Write the peer's address as a quic:// URI (tp_peer_uri). */
int quic_peer_uri(const struct transport *t, char *out, size_t outlen)
{
    const struct quic_conn *c = quic_of(t);

    return uri_from_sockaddr(out, outlen, "quic", (const struct sockaddr *)&c->remote);
}
