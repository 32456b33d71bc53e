/* tp_quic_srv.c - QUIC listeners: one UDP socket serving many connections
 * through a connection-ID map, Retry before any state, pending handshakes
 * shared out by address block, stateless resets, version negotiation; the
 * certificate of the node's TLS credentials; and tp_quic_ops, which puts
 * the connections of tp_quic.c and the listeners together.
 *
 * This file builds on tp_quic.c and not the other way round: the
 * connections it makes reach back only through quic_srv_lis_ops.
 *
 * TLS here only carries QUIC's keys: the certificate is self-signed and
 * thrown away with the node's QUIC state, and dialers check nothing. Who the peer
 * is gets proven by the link handshake inside (docs/PROTOCOL.md, QUIC).
 */
#include <string.h>
#include <time.h>

#include <gnutls/x509.h>
#include <ngtcp2/ngtcp2_crypto_gnutls.h>
#include <sodium.h>

#include "core/tp_quic_int.h"
#include "lib/clock.h"
#include "lib/htab.h"

#define QUIC_RESETS_PER_S 100 /* stateless resets sent per second at most */
#define QUIC_RETRY_TTL    (10 * NGTCP2_SECONDS)

_Static_assert(sizeof(((struct tp_env *)0)->secret) == QUIC_SECRET, "one secret size");

/* One connection ID in a listener's map. */
struct quic_cid {
    UT_hash_handle hh;
    uint8_t key[1 + NGTCP2_MAX_CIDLEN]; /* length byte, then the ID, zero padded */
    struct quic_conn *conn;
};

struct quic_listener {
    struct tp_listener base; /* first: struct tp_listener * downcasts to this */
    uv_udp_t udp;
    struct quic_rx rx; /* its reads */
    struct tp_env *env;
    uint8_t secret[QUIC_SECRET];
    struct quic_cid *cids;          /* uthash: connection ID -> connection */
    struct quic_conn *conns;        /* registered connections (server side) */
    unsigned refs;                  /* 1 for the socket + 1 per connection alive */
    unsigned pending;               /* connections not yet handed to accept() */
    uint64_t pblk[TP_QUIC_PENDING]; /* the block of each pending one; 0: free */
    uint64_t reset_epoch_ms;        /* stateless-reset rate limit window */
    unsigned resets_in_epoch;
    struct sockaddr_storage local;
    int locallen;
    struct tp_quic_stats stats;
    bool closing;
};

static const struct quic_lis_ops quic_srv_lis_ops;

static struct quic_listener *quic_lis_of(const struct tp_listener *l)
{
    return container_of(l, struct quic_listener, base);
}

/* ---- TLS --------------------------------------------------------------- */

/* Give cred a fresh P-256 key and a self-signed certificate for it. */
static int quic_make_cert(gnutls_certificate_credentials_t cred)
{
    gnutls_x509_privkey_t key = NULL;
    gnutls_x509_crt_t crt = NULL;
    uint8_t serial[16];
    time_t now = (time_t)(clock_wall_ms() / 1000);
    int rc;

    randombytes_buf(serial, sizeof(serial));
    serial[0] &= 0x7f; /* a positive serial */
    rc = gnutls_x509_privkey_init(&key);
    if (!rc)
        rc = gnutls_x509_privkey_generate(key, GNUTLS_PK_ECDSA,
                                          GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0);
    if (!rc)
        rc = gnutls_x509_crt_init(&crt);
    if (!rc)
        rc = gnutls_x509_crt_set_version(crt, 3);
    if (!rc)
        rc = gnutls_x509_crt_set_serial(crt, serial, sizeof(serial));
    if (!rc)
        rc = gnutls_x509_crt_set_activation_time(crt, now - 86400);
    if (!rc)
        rc = gnutls_x509_crt_set_expiration_time(crt, now + 3650L * 86400);
    if (!rc)
        rc = gnutls_x509_crt_set_dn(crt, "CN=ovl", NULL);
    if (!rc)
        rc = gnutls_x509_crt_set_key(crt, key);
    if (!rc)
        rc = gnutls_x509_crt_sign2(crt, crt, key, GNUTLS_DIG_SHA256, 0);
    if (!rc)
        rc = gnutls_certificate_set_x509_key(cred, &crt, 1, key);
    if (crt)
        gnutls_x509_crt_deinit(crt);
    if (key)
        gnutls_x509_privkey_deinit(key);
    return rc < 0 ? OVL_ECRYPTO : 0;
}

/* The node's TLS credentials (quic_shared_cred), with a certificate from
 * the first listener on: every listener and dialer of a node shares them,
 * and the certificate, thrown away with them, proves nothing anyway. */
static int quic_listener_cred(struct tp_env *env)
{
    struct quic_shared *sh = quic_shared(env);
    gnutls_certificate_credentials_t cred = quic_shared_cred(env);
    int rc;

    if (!cred)
        return OVL_ENOMEM;
    if (sh->flags & QUIC_SH_CERT)
        return 0;
    rc = quic_make_cert(cred);
    if (!rc)
        sh->flags |= QUIC_SH_CERT;
    return rc;
}

/* Fill token with the stateless-reset token for cid under l's secret. */
static int quic_reset_token(const struct quic_listener *l, const ngtcp2_cid *cid, uint8_t *token)
{
    return ngtcp2_crypto_generate_stateless_reset_token(token, l->secret, QUIC_SECRET, cid)
               ? OVL_ECRYPTO
               : 0;
}

/* ---- the connection-ID map --------------------------------------------- */

static void quic_cid_key(uint8_t key[1 + NGTCP2_MAX_CIDLEN], const uint8_t *id, size_t len)
{
    memset(key, 0, 1 + NGTCP2_MAX_CIDLEN);
    key[0] = (uint8_t)len;
    memcpy(key + 1, id, len);
}

static struct quic_conn *quic_cid_find(struct quic_listener *l, const uint8_t *id, size_t len)
{
    uint8_t key[1 + NGTCP2_MAX_CIDLEN];
    struct quic_cid *e;

    if (len > NGTCP2_MAX_CIDLEN)
        return NULL;
    quic_cid_key(key, id, len);
    HASH_FIND(hh, l->cids, key, sizeof(key), e);
    return e ? e->conn : NULL;
}

static int quic_cid_add(struct quic_conn *c, const ngtcp2_cid *cid)
{
    struct quic_listener *l = c->lis;
    struct quic_cid *e;
    unsigned i;

    if (!(c->base.flags & QUIC_F_LINKED))
        return 0;
    if (quic_cid_find(l, cid->data, cid->datalen))
        return OVL_EEXIST;
    for (i = 0; i < QUIC_MAX_CIDS && c->cids[i]; i++)
        ;
    if (i == QUIC_MAX_CIDS || !(e = calloc(1, sizeof(*e))))
        return OVL_ENOMEM;
    quic_cid_key(e->key, cid->data, cid->datalen);
    e->conn = c;
    HASH_ADD(hh, l->cids, key, sizeof(e->key), e);
    c->cids[i] = e;
    return 0;
}

static void quic_cid_drop(struct quic_conn *c, unsigned i)
{
    HASH_DEL(c->lis->cids, c->cids[i]);
    free(c->cids[i]);
    c->cids[i] = NULL;
}

/* lops->cid_del: ngtcp2 retired cid. */
static void quic_cid_del(struct quic_conn *c, const ngtcp2_cid *cid)
{
    uint8_t key[1 + NGTCP2_MAX_CIDLEN];

    if (!(c->base.flags & QUIC_F_LINKED) || cid->datalen > NGTCP2_MAX_CIDLEN)
        return;
    quic_cid_key(key, cid->data, cid->datalen);
    for (unsigned i = 0; i < QUIC_MAX_CIDS; i++)
        if (c->cids[i] && memcmp(c->cids[i]->key, key, sizeof(key)) == 0)
            quic_cid_drop(c, i);
}

/* lops->cid_new: ngtcp2 issued cid. Its reset token comes from our secret,
 * so we can still reset the peer's connection after a restart. */
static int quic_cid_new(struct quic_conn *c, const ngtcp2_cid *cid, uint8_t *token)
{
    int rc = quic_reset_token(c->lis, cid, token);

    return rc ? rc : quic_cid_add(c, cid);
}

/* ---- pending handshakes per address block ------------------------------ */

/* Return how many of l's pending slots hold block b. */
static unsigned quic_blk_count(const struct quic_listener *l, uint64_t b)
{
    unsigned n = 0;

    for (unsigned i = 0; i < TP_QUIC_PENDING; i++)
        n += l->pblk[i] == b;
    return n;
}

/* Turn one of l's pending slots holding from into to (0 is a free slot). */
static void quic_blk_move(struct quic_listener *l, uint64_t from, uint64_t to)
{
    for (unsigned i = 0; i < TP_QUIC_PENDING; i++)
        if (l->pblk[i] == from) {
            l->pblk[i] = to;
            return;
        }
}

/* c is no longer pending: handed over, or closing before that. */
static void quic_pending_done(struct quic_conn *c)
{
    c->lis->pending--;
    quic_blk_move(c->lis, c->blk, 0);
}

/* lops->unlink: c began closing; nothing may find it any more. */
static void quic_unregister(struct quic_conn *c)
{
    struct quic_listener *l = c->lis;

    if (!(c->base.flags & QUIC_F_LINKED))
        return;
    for (unsigned i = 0; i < QUIC_MAX_CIDS; i++)
        if (c->cids[i])
            quic_cid_drop(c, i);
    if (c->lprev)
        c->lprev->lnext = c->lnext;
    else
        l->conns = c->lnext;
    if (c->lnext)
        c->lnext->lprev = c->lprev;
    if (!(c->base.flags & TP_F_ESTABLISHED))
        quic_pending_done(c);
    c->base.flags &= ~QUIC_F_LINKED;
}

/* ---- datagrams that belong to no connection ---------------------------- */

static void quic_lis_send(struct quic_listener *l, const struct sockaddr *to, const uint8_t *pkt,
                          ngtcp2_ssize n, uint64_t *counter)
{
    uv_buf_t b = {.base = (char *)pkt, .len = (unsigned int)n};

    if (n > 0 && uv_udp_try_send(&l->udp, &b, 1, to) >= 0)
        (*counter)++;
    else
        l->stats.dropped++;
}

static int quic_addrlen(const struct sockaddr *sa)
{
    return sa->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
}

/* Tell the sender of an Initial to come back with a token, keeping nothing. */
static void quic_srv_retry(struct quic_listener *l, const ngtcp2_pkt_hd *hd,
                           const struct sockaddr *from)
{
    uint8_t token[NGTCP2_CRYPTO_MAX_RETRY_TOKENLEN], pkt[QUIC_CTL_MAX];
    ngtcp2_cid scid;
    ngtcp2_ssize tl, n = -1;

    scid.datalen = QUIC_CID_LEN;
    randombytes_buf(scid.data, scid.datalen);
    tl = ngtcp2_crypto_generate_retry_token(
        token, l->secret, QUIC_SECRET, hd->version, (const ngtcp2_sockaddr *)from,
        (ngtcp2_socklen)quic_addrlen(from), &scid, &hd->dcid, quic_now());
    if (tl > 0)
        n = ngtcp2_crypto_write_retry(pkt, sizeof(pkt), hd->version, &hd->scid, &scid, &hd->dcid,
                                      token, (size_t)tl);
    quic_lis_send(l, from, pkt, n, &l->stats.retries);
}

/* A short-header packet for a connection we do not know: perhaps one we
 * had before a restart. Tell the peer, at a bounded rate, and always
 * shorter than what came in so two endpoints cannot loop. */
static void quic_srv_reset(struct quic_listener *l, const ngtcp2_version_cid *vc,
                           const struct sockaddr *from, size_t len)
{
    uint8_t pkt[QUIC_CTL_MAX], token[NGTCP2_STATELESS_RESET_TOKENLEN], rnd[64];
    uint64_t now = uv_now(l->env->loop);
    size_t rl = len > 1 + NGTCP2_STATELESS_RESET_TOKENLEN + 1
                    ? len - 1 - NGTCP2_STATELESS_RESET_TOKENLEN - 1
                    : 0;
    ngtcp2_cid cid;

    if (now - l->reset_epoch_ms >= 1000) {
        l->reset_epoch_ms = now;
        l->resets_in_epoch = 0;
    }
    if (rl > sizeof(rnd))
        rl = sizeof(rnd);
    if (rl < NGTCP2_MIN_STATELESS_RESET_RANDLEN || l->resets_in_epoch >= QUIC_RESETS_PER_S) {
        l->stats.dropped++;
        return;
    }
    l->resets_in_epoch++;
    ngtcp2_cid_init(&cid, vc->dcid, vc->dcidlen);
    randombytes_buf(rnd, rl);
    if (quic_reset_token(l, &cid, token) != 0) {
        l->stats.dropped++;
        return;
    }
    quic_lis_send(l, from, pkt, ngtcp2_pkt_write_stateless_reset(pkt, sizeof(pkt), token, rnd, rl),
                  &l->stats.resets);
}

static void quic_srv_vneg(struct quic_listener *l, const ngtcp2_version_cid *vc,
                          const struct sockaddr *from, size_t len)
{
    static const uint32_t versions[] = {NGTCP2_PROTO_VER_V1};
    uint8_t pkt[QUIC_CTL_MAX], r;

    /* Only a full-size Initial earns an answer: no amplification. */
    if (len < NGTCP2_MAX_UDP_PAYLOAD_SIZE) {
        l->stats.dropped++;
        return;
    }
    randombytes_buf(&r, 1);
    quic_lis_send(l, from, pkt,
                  ngtcp2_pkt_write_version_negotiation(pkt, sizeof(pkt), r, vc->scid, vc->scidlen,
                                                       vc->dcid, vc->dcidlen, versions, 1),
                  &l->stats.vneg);
}

/* ---- new connections --------------------------------------------------- */

/* Set up the server side of a connection whose Initial carried a valid token. */
static int quic_srv_conn(struct quic_conn *c, const ngtcp2_pkt_hd *hd, const ngtcp2_cid *odcid)
{
    struct quic_listener *l = c->lis;
    ngtcp2_settings s;
    ngtcp2_transport_params p;
    ngtcp2_path path;
    ngtcp2_callbacks cb;
    ngtcp2_cid scid;
    int rc;

    scid.datalen = QUIC_CID_LEN;
    randombytes_buf(scid.data, scid.datalen);
    quic_conn_config(c, &s, &p, &path, &cb);
    s.token = hd->token;
    s.tokenlen = hd->tokenlen;
    s.token_type = NGTCP2_TOKEN_TYPE_RETRY;
    p.original_dcid = *odcid;
    p.original_dcid_present = 1;
    p.retry_scid = hd->dcid;
    p.retry_scid_present = 1;
    p.stateless_reset_token_present = 1;
    rc = quic_reset_token(l, &scid, p.stateless_reset_token);
    if (!rc)
        rc = quic_tls_session(c, true);
    if (rc)
        return rc;
    rc = ngtcp2_conn_server_new(&c->qc, &hd->scid, &scid, &path, hd->version, &cb, &s, &p, NULL, c);
    if (rc)
        return rc == NGTCP2_ERR_NOMEM ? OVL_ENOMEM : OVL_EPROTO;
    quic_conn_ready(c);
    rc = quic_cid_add(c, &hd->dcid);
    return rc ? rc : quic_cid_add(c, &scid);
}

/* May block blk start one more handshake? Not when every pending slot is
 * taken, nor, once half are, when blk holds its share: so one block cannot
 * shut the others out, yet a lone block may use slots nobody else wants.
 * Checked before the Retry too, so a block at its share costs us nothing.
 * Only Initials with a valid token take a slot, so shares are counted on
 * addresses that showed they receive: nobody fills another's share. */
static bool quic_srv_admit(struct quic_listener *l, uint64_t blk)
{
    if (l->pending >= TP_QUIC_PENDING) {
        l->stats.refused++;
        return false;
    }
    if (l->pending >= TP_QUIC_PENDING / 2 && quic_blk_count(l, blk) >= TP_QUIC_BLOCK_SHARE) {
        l->stats.refused_block++;
        return false;
    }
    return true;
}

static void quic_srv_new(struct quic_listener *l, const uint8_t *data, size_t len,
                         const struct sockaddr *from)
{
    uint64_t blk = uri_addr_block(from); /* as the link layer counts (admit.h) */
    ngtcp2_pkt_hd hd;
    ngtcp2_cid odcid;
    struct quic_conn *c;

    if (ngtcp2_accept(&hd, data, len) != 0) {
        l->stats.dropped++;
        return;
    }
    if (!quic_srv_admit(l, blk))
        return;
    if (hd.tokenlen == 0) {
        quic_srv_retry(l, &hd, from);
        return;
    }
    if (ngtcp2_crypto_verify_retry_token(&odcid, hd.token, hd.tokenlen, l->secret, QUIC_SECRET,
                                         hd.version, (const ngtcp2_sockaddr *)from,
                                         (ngtcp2_socklen)quic_addrlen(from), &hd.dcid,
                                         QUIC_RETRY_TTL, quic_now()) != 0 ||
        quic_conn_new(l->env, &tp_quic_ops, &c) != 0) {
        l->stats.dropped++;
        return;
    }
    c->base.flags |= TP_F_INBOUND | QUIC_F_LINKED;
    c->lops = &quic_srv_lis_ops;
    c->lis = l;
    c->lis_udp = &l->udp;
    l->refs++;
    c->lnext = l->conns;
    if (l->conns)
        l->conns->lprev = c;
    l->conns = c;
    l->pending++;
    c->blk = blk;
    quic_blk_move(l, 0, blk);
    memcpy(&c->local, &l->local, sizeof(c->local));
    c->locallen = l->locallen;
    memcpy(&c->remote, from, (size_t)quic_addrlen(from));
    c->remotelen = quic_addrlen(from);
    if (quic_srv_conn(c, &hd, &odcid) != 0) {
        l->stats.dropped++;
        c->base.flags |= TP_F_SILENT;
        quic_conn_shutdown(c, OVL_EPROTO, true);
        return;
    }
    quic_conn_input(c, from, data, len);
}

/* lops->accept: hand a completed server connection to the listener's owner. */
static void quic_listener_accept(struct quic_conn *c)
{
    struct quic_listener *l = c->lis;

    quic_pending_done(c);
    l->stats.handshakes++;
    if (!tp_emit_accept(&l->base, &c->base))
        quic_conn_shutdown(c, 0, false); /* not taken (and silent), unless closing */
}

/* ---- the listener ------------------------------------------------------ */

static void quic_srv_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct quic_listener *l = h->data;

    (void)suggested;
    quic_rx_buf(l->env, &l->rx, buf);
}

static void quic_srv_read(uv_udp_t *u, ssize_t n, const uv_buf_t *buf, const struct sockaddr *from,
                          unsigned flags)
{
    struct quic_listener *l = u->data;
    const uint8_t *data = (const uint8_t *)buf->base;
    ngtcp2_version_cid vc;
    struct quic_conn *c;
    int rc;

    if (quic_rx_skip(&l->rx, n, flags) || l->closing || n <= 0 || !from)
        return;
    l->stats.datagrams++;
    if ((flags & UV_UDP_PARTIAL) || n > QUIC_RX_BUF) { /* longer than we advertise */
        l->stats.dropped++;
        return;
    }
    rc = ngtcp2_pkt_decode_version_cid(&vc, data, (size_t)n, QUIC_CID_LEN);
    if (rc == NGTCP2_ERR_VERSION_NEGOTIATION) {
        quic_srv_vneg(l, &vc, from, (size_t)n);
        return;
    }
    if (rc) {
        l->stats.dropped++;
        return;
    }
    c = quic_cid_find(l, vc.dcid, vc.dcidlen);
    if (c)
        quic_conn_input(c, from, data, (size_t)n);
    else if (!(data[0] & 0x80))
        quic_srv_reset(l, &vc, from, (size_t)n);
    else
        quic_srv_new(l, data, (size_t)n, from);
}

/* Drop a reference on l; the last one frees it. */
static void quic_listener_unref(struct quic_listener *l)
{
    if (--l->refs > 0)
        return;
    sodium_memzero(l->secret, sizeof(l->secret));
    quic_rx_release(l->env);
    free(l);
}

/* lops->release: c is being freed, its TLS session gone. */
static void quic_conn_release(struct quic_conn *c)
{
    quic_listener_unref(c->lis);
}

/* lops->bad_stream: c's peer opened a stream past the lanes. */
static void quic_conn_bad_stream(struct quic_conn *c)
{
    c->lis->stats.streams_refused++;
}

static const struct quic_lis_ops quic_srv_lis_ops = {
    .bad_stream = quic_conn_bad_stream,
    .cid_new = quic_cid_new,
    .cid_del = quic_cid_del,
    .accept = quic_listener_accept,
    .unlink = quic_unregister,
    .release = quic_conn_release,
};

static void quic_lis_on_close(uv_handle_t *h)
{
    quic_listener_unref(h->data);
}

static int quic_listen(struct tp_env *env, const struct ovl_uri *uri, const struct tp_listen_cb *cb,
                       void *udata, struct tp_listener **out)
{
    struct quic_listener *l;
    struct sockaddr_storage ss;
    int rc;

    *out = NULL;
    if (!uri->is_literal)
        return OVL_EINVAL; /* binding needs an address now */
    rc = uri_sockaddr(uri, &ss);
    if (rc)
        return rc;
    l = calloc(1, sizeof(*l));
    if (!l)
        return OVL_ENOMEM;
    l->base.ops = &tp_quic_ops;
    l->base.cb = cb;
    l->base.udata = udata;
    l->env = env;
    l->refs = 1;
    memcpy(l->secret, env->secret, sizeof(l->secret));
    if (sodium_is_zero(l->secret, sizeof(l->secret)))
        randombytes_buf(l->secret, sizeof(l->secret));
    rc = quic_udp_init(env, &l->udp);
    if (rc) {
        sodium_memzero(l->secret, sizeof(l->secret));
        free(l);
        return rc;
    }
    l->udp.data = l;
    rc = quic_listener_cred(env);
    if (!rc)
        rc = uv_udp_bind(&l->udp, (const struct sockaddr *)&ss,
                         ss.ss_family == AF_INET6 ? UV_UDP_IPV6ONLY : 0);
    l->locallen = sizeof(l->local);
    if (!rc)
        rc = uv_udp_getsockname(&l->udp, (struct sockaddr *)&l->local, &l->locallen);
    if (!rc && !quic_shared_prio(env)) /* parsed now, or every session would fail */
        rc = OVL_ECRYPTO;
    if (!rc)
        quic_udp_opts(&l->udp, ss.ss_family);
    if (!rc)
        rc = uv_udp_recv_start(&l->udp, quic_srv_alloc, quic_srv_read);
    if (rc) {
        l->closing = true;
        uv_close((uv_handle_t *)&l->udp, quic_lis_on_close);
        return rc;
    }
    *out = &l->base;
    return 0;
}

static int quic_listener_uri(const struct tp_listener *tl, char *out, size_t outlen)
{
    const struct quic_listener *l = quic_lis_of(tl);

    return uri_from_sockaddr(out, outlen, "quic", (const struct sockaddr *)&l->local);
}

static void quic_listener_close(struct tp_listener *tl)
{
    struct quic_listener *l;

    if (!tl)
        return;
    l = quic_lis_of(tl);
    if (l->closing)
        return;
    l->closing = true;
    while (l->conns)
        quic_conn_shutdown(l->conns, OVL_ECLOSED, false);
    uv_close((uv_handle_t *)&l->udp, quic_lis_on_close);
}

int tp_quic_listener_stats(const struct tp_listener *tl, struct tp_quic_stats *out)
{
    const struct quic_listener *l;

    if (!tl || tl->ops != &tp_quic_ops || !out)
        return OVL_EINVAL;
    l = quic_lis_of(tl);
    *out = l->stats;
    out->conns = l->refs - (l->closing ? 0 : 1);
    return 0;
}

/* Packets carrying any of c's streams that ngtcp2 declared lost. */
static uint64_t quic_lost(const struct quic_conn *c)
{
    uint64_t n = 0;

    for (unsigned i = 0; i < QUIC_STREAMS; i++)
        if (c->tx[i].sid >= 0)
            n += ngtcp2_conn_get_stream_loss_count(c->qc, c->tx[i].sid);
    return n;
}

int tp_quic_info(const struct transport *t, struct tp_quic_info *out)
{
    const struct quic_conn *c;
    ngtcp2_conn_info ci;

    if (!t || t->ops != &tp_quic_ops || !out)
        return OVL_EINVAL;
    c = container_of(t, struct quic_conn, base);
    if (!c->qc || c->tx[0].sid < 0 || tp_is_closing(t))
        return OVL_EINVAL;
    ngtcp2_conn_get_conn_info(c->qc, &ci);
    out->cwnd = ci.cwnd;
    out->in_flight = ci.bytes_in_flight;
    out->srtt_us = ci.smoothed_rtt / NGTCP2_MICROSECONDS;
    out->min_rtt_us = ci.min_rtt / NGTCP2_MICROSECONDS;
    out->lost = quic_lost(c);
    out->lanes = c->lanes;
    out->lanes_out = out->lanes_in = 0;
    for (unsigned i = 1; i < QUIC_STREAMS; i++) {
        out->lanes_out += c->tx[i].sid >= 0;
        out->lanes_in += (c->lanes_in >> i) & 1;
    }
    return 0;
}

/* Dial with this table as the connection's: tp_quic.c never names it. */
static int quic_dial_op(struct tp_env *env, const struct ovl_uri *uri, const struct tp_cb *cb,
                        void *udata, struct transport **out)
{
    return quic_dial(&tp_quic_ops, env, uri, cb, udata, out);
}

const struct tp_ops tp_quic_ops = {
    .scheme = "quic",
    .listen = quic_listen,
    .dial = quic_dial_op,
    .send = quic_send,
    .close = quic_close,
    .pause = quic_pause,
    .resume = quic_resume,
    .queued = quic_queued,
    .outstanding = quic_outstanding,
    .trim = quic_trim,
    .peer_uri = quic_peer_uri,
    .binding = quic_binding,
    .lanes = quic_lanes,
    .listener_uri = quic_listener_uri,
    .listener_close = quic_listener_close,
};
