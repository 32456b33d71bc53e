/* tp_quic_cli.c - the dial side of QUIC connections and the TLS sessions
 * both sides use (tp_quic_int.h). A dialed connection owns its connected
 * UDP socket; the rest of its life is tp_quic.c's, as a listener's
 * connections are.
 */
#include <netdb.h>

#include <ngtcp2/ngtcp2_crypto_gnutls.h>
#include <sodium.h>

#include "core/tp_quic_int.h"
#include "lib/crypto.h"

#define QUIC_PRIORITY "NORMAL:-VERS-ALL:+VERS-TLS1.3:%DISABLE_TLS13_COMPAT_MODE"

static const gnutls_datum_t quic_alpn = {(unsigned char *)"ovl/1", 5};

/* ---- TLS sessions ------------------------------------------------------ */

/* The exporter's label (RFC 5705, RFC 8446 7.5): ours alone, so that no
 * other use of the session's exporter gives the same value. */
#define QUIC_EXPORTER "EXPORTER-ovl-link"

/* Write the TLS exporter of c's session (tp_binding). QUIC's packet keys
 * and the exporter both come from this one TLS 1.3 handshake, so the
 * value belongs to this connection's protection and to no other's. */
int quic_binding(const struct transport *t, uint8_t out[TP_BINDING_LEN])
{
    const struct quic_conn *c = quic_of(t);

    if (!c->tls || !(t->flags & QUIC_F_HS_DONE))
        return OVL_EINVAL;
    if (gnutls_prf_rfc5705(c->tls, sizeof(QUIC_EXPORTER) - 1, QUIC_EXPORTER, 0, NULL,
                           TP_BINDING_LEN, (char *)out) < 0) {
        ovl_wipe(out, TP_BINDING_LEN);
        return OVL_ECRYPTO;
    }
    return 0;
}

gnutls_priority_t quic_shared_prio(struct tp_env *env)
{
    struct quic_shared *sh = quic_shared(env);

    if (!sh->prio && gnutls_priority_init2(&sh->prio, QUIC_PRIORITY, NULL, 0) < 0)
        sh->prio = NULL;
    return sh->prio;
}

gnutls_certificate_credentials_t quic_shared_cred(struct tp_env *env)
{
    struct quic_shared *sh = quic_shared(env);

    if (!sh->cred && gnutls_certificate_allocate_credentials(&sh->cred) < 0)
        sh->cred = NULL;
    return sh->cred;
}

/* TLS here only carries QUIC's keys: who the peer is gets proven by the
 * link handshake inside, so the client checks no certificate. */
int quic_tls_session(struct quic_conn *c, bool server)
{
    gnutls_priority_t prio = quic_shared_prio(c->base.env);
    gnutls_certificate_credentials_t cred = quic_shared_cred(c->base.env);
    int rc;

    if (!cred)
        return OVL_ENOMEM;
    if (!prio)
        return OVL_ECRYPTO;
    if (gnutls_init(&c->tls, (server ? GNUTLS_SERVER : GNUTLS_CLIENT) | GNUTLS_NO_TICKETS) < 0) {
        c->tls = NULL;
        return OVL_ENOMEM;
    }
    gnutls_session_set_ptr(c->tls, &c->cref);
    rc = server ? ngtcp2_crypto_gnutls_configure_server_session(c->tls)
                : ngtcp2_crypto_gnutls_configure_client_session(c->tls);
    if (rc || gnutls_priority_set(c->tls, prio) < 0 ||
        gnutls_credentials_set(c->tls, GNUTLS_CRD_CERTIFICATE, cred) < 0 ||
        gnutls_alpn_set_protocols(c->tls, &quic_alpn, 1, GNUTLS_ALPN_MANDATORY) < 0)
        return OVL_ECRYPTO;
    return 0;
}

/* ---- dialing ----------------------------------------------------------- */

static void quic_cli_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct quic_conn *c = h->data;

    (void)suggested;
    quic_rx_buf(c->base.env, &c->rx, buf);
}

static void quic_cli_read(uv_udp_t *u, ssize_t n, const uv_buf_t *buf, const struct sockaddr *addr,
                          unsigned flags)
{
    struct quic_conn *c = u->data;

    if (quic_rx_skip(&c->rx, n, flags) || tp_is_closing(&c->base))
        return;
    if (n < 0) {
        quic_conn_shutdown(c, (int)n, true); /* e.g. ICMP port unreachable */
        return;
    }
    /* Longer than we advertise (QUIC_RX_BUF): not ours to read. */
    if (n == 0 || n > QUIC_RX_BUF || !addr || (flags & UV_UDP_PARTIAL))
        return;
    quic_conn_input(c, addr, (const uint8_t *)buf->base, (size_t)n);
}

/* Connect the socket to sa and start the QUIC client. */
static int quic_cli_start(struct quic_conn *c, const struct sockaddr *sa)
{
    ngtcp2_settings s;
    ngtcp2_transport_params p;
    ngtcp2_path path;
    ngtcp2_callbacks cb;
    ngtcp2_cid dcid, scid;
    int rc;

    rc = uv_udp_connect(&c->udp, sa);
    if (!rc)
        quic_udp_opts(&c->udp, sa->sa_family);
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
    rc = quic_tls_session(c, false);
    if (rc)
        return rc;
    dcid.datalen = QUIC_CID_LEN;
    scid.datalen = QUIC_CID_LEN;
    randombytes_buf(dcid.data, dcid.datalen);
    randombytes_buf(scid.data, scid.datalen);
    quic_conn_config(c, &s, &p, &path, &cb);
    rc = ngtcp2_conn_client_new(&c->qc, &dcid, &scid, &path, NGTCP2_PROTO_VER_V1, &cb, &s, &p, NULL,
                                c);
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
    int rc = tp_name_resolved(&c->base, status, res, &ss);

    if (rc == TP_RESOLVED_CLOSING) {
        if (c->handles == 0)
            quic_free(c); /* the close callbacks left the freeing to us */
        return;
    }
    if (!rc)
        rc = quic_cli_start(c, (const struct sockaddr *)&ss);
    if (rc)
        quic_conn_shutdown(c, rc, true);
}

/* Dial uri (tp_quic_ops.dial), the connection using ops. */
int quic_dial(const struct tp_ops *ops, struct tp_env *env, const struct ovl_uri *uri,
              const struct tp_cb *cb, void *udata, struct transport **out)
{
    struct quic_conn *c;
    struct sockaddr_storage ss;
    int rc;

    *out = NULL;
    rc = quic_conn_new(env, ops, &c);
    if (rc)
        return rc;
    tp_set_cb(&c->base, cb, udata);
    rc = quic_udp_init(env, &c->udp);
    if (!rc) {
        c->udp.data = c;
        c->base.flags |= QUIC_F_UDP_OPEN | QUIC_F_RX;
        if (uri->is_literal) {
            rc = uri_sockaddr(uri, &ss);
            if (!rc)
                rc = quic_cli_start(c, (const struct sockaddr *)&ss);
        } else {
            rc = tp_resolve_name(&c->base, &c->gai, uri, SOCK_DGRAM, quic_on_resolved);
        }
    }
    if (rc) {
        c->base.flags |= TP_F_SILENT; /* the starting call failed: no callback fires */
        quic_conn_shutdown(c, rc, true);
        return rc;
    }
    *out = &c->base;
    return 0;
}
