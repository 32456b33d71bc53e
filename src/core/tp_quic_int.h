/* tp_quic_int.h - what tp_quic.c (connections) and tp_quic_srv.c
 * (listeners, TLS credentials) share. Not a public contract: the rest of
 * the tree talks to QUIC through transport.h and tp_quic.h only.
 *
 * Ownership: a listener owns its UDP socket, its TLS credentials and the
 * connection-ID map; every server-side connection holds a reference on its
 * listener (refs) so the credentials outlive each TLS session, and the
 * listener is freed when its socket is closed and the last connection is
 * gone. A dialed connection owns its own connected UDP socket and
 * credentials. All memory is released in uv close callbacks.
 */
#ifndef OVL_CORE_TP_QUIC_INT_H
#define OVL_CORE_TP_QUIC_INT_H

#include <gnutls/gnutls.h>
#include <ngtcp2/ngtcp2.h>
#include <ngtcp2/ngtcp2_crypto.h>

#include "lib/htab.h"
#include "core/tp_quic.h"

#define QUIC_CID_LEN  18             /* every connection ID we issue */
#define QUIC_SECRET   32             /* retry-token and stateless-reset secret */
#define QUIC_PKT_MAX  1452           /* largest datagram we write */
#define QUIC_RX_BUF   2048           /* largest datagram we accept (advertised) */
#define QUIC_BLK      16384          /* send-buffer block: data stays put until acked */
#define QUIC_WINDOW   (256u * 1024)  /* initial flow-control window */
#define QUIC_MAX_WIN  (1024u * 1024) /* autotuning stops here; bounds rbuf */
#define QUIC_MAX_CIDS 12             /* CIDs one server connection may hold in the map */

struct quic_conn;

/* One connection ID in a listener's map. */
struct quic_cid {
    UT_hash_handle hh;
    uint8_t key[1 + NGTCP2_MAX_CIDLEN]; /* length byte, then the ID, zero padded */
    struct quic_conn *conn;
};

struct quic_listener {
    struct tp_listener base; /* first: struct tp_listener * downcasts to this */
    uv_udp_t udp;
    struct tp_env *env;
    gnutls_certificate_credentials_t cred;
    uint8_t secret[QUIC_SECRET];
    struct quic_cid *cids;   /* uthash: connection ID -> connection */
    struct quic_conn *conns; /* registered connections (server side) */
    unsigned refs;           /* 1 for the socket + 1 per connection alive */
    unsigned pending;        /* connections not yet handed to accept() */
    uint64_t reset_epoch_ms; /* stateless-reset rate limit window */
    unsigned resets_in_epoch;
    struct sockaddr_storage local;
    int locallen;
    struct tp_quic_stats stats;
    bool closing;
    uint8_t rbuf[QUIC_RX_BUF];
};

/* A block of the send buffer. */
struct quic_blk {
    struct quic_blk *next;
    size_t len;
    uint8_t data[QUIC_BLK];
};

struct quic_conn {
    struct transport base; /* first: struct transport * downcasts to this */
    struct tp_env *env;
    struct quic_listener *lis;       /* server side: our listener (a reference) */
    struct quic_conn *lnext, *lprev; /* lis->conns while registered */
    struct quic_cid *cids[QUIC_MAX_CIDS];
    ngtcp2_conn *qc;
    gnutls_session_t tls;
    gnutls_certificate_credentials_t cred; /* dial side only; else the listener's */
    ngtcp2_crypto_conn_ref cref;
    uv_timer_t timer; /* ngtcp2's expiry, and "write soon" */
    uv_udp_t udp;     /* dial side only: a connected socket */
    uv_getaddrinfo_t gai;
    struct sockaddr_storage local, remote;
    int locallen, remotelen;
    int64_t sid;            /* the link's bidirectional stream, -1 until known */
    ngtcp2_tstamp deadline; /* server: hand over by then, or close */

    /* Send buffer: stream bytes [acked, end) in blocks head..tail; the next
     * unsent byte is at sblk->data[spos]. */
    struct quic_blk *head, *tail, *sblk, *spare;
    size_t spos;
    uint64_t head_off, acked, sent, end;

    /* Receive buffer: stream bytes not yet handed over as frames. */
    uint8_t *rbuf;
    size_t rlen, rcap;

    int reason;       /* handed to closed() */
    unsigned handles; /* uv handles still open; freed when 0 */
    bool linked;      /* in lis->conns and the CID map */
    bool udp_open;    /* udp was initialised (dial side) */
    bool resolving;
    bool hs_done;     /* TLS handshake completed (set inside ngtcp2) */
    bool established; /* stream known; connected()/accept() done or due */
    bool announced;   /* dial side: the stream was opened on the wire */
    bool peer_gone;   /* the peer ended the stream */
    bool paused, want_drain, silent, stream_err;
    uint8_t dbuf[]; /* dial side: datagram buffer of QUIC_RX_BUF */
};

/* Return a monotonic ngtcp2 timestamp. */
static inline ngtcp2_tstamp quic_now(void)
{
    return uv_hrtime();
}

/* Allocate a connection (with dbuf when dial), its timer initialised. */
int quic_conn_new(struct tp_env *env, bool dial, struct quic_conn **out) OVL_WUR;

/* Feed one datagram from remote to c, then run what it made due. */
void quic_conn_input(struct quic_conn *c, const struct sockaddr *remote, const uint8_t *data,
                     size_t len);

/* Close c: send CONNECTION_CLOSE unless quiet, release, then closed(reason). */
void quic_conn_shutdown(struct quic_conn *c, int reason, bool quiet);

/* Build the ngtcp2 settings, parameters and callbacks for c. */
void quic_conn_config(struct quic_conn *c, ngtcp2_settings *s, ngtcp2_transport_params *p);
extern const ngtcp2_callbacks quic_srv_callbacks;

/* Attach c's TLS session to its ngtcp2 connection and start keep-alives. */
void quic_conn_ready(struct quic_conn *c);

/* Make c's TLS session (server with cred, or client with its own). */
int quic_tls_session(struct quic_conn *c, bool server,
                     gnutls_certificate_credentials_t cred) OVL_WUR;

/* Send one datagram for c (through its listener or its own socket). */
int quic_send_dgram(struct quic_conn *c, const struct sockaddr *to, const uint8_t *pkt, size_t len);

/* Listener side of the connection-ID map. */
int quic_cid_add(struct quic_conn *c, const ngtcp2_cid *cid) OVL_WUR;
void quic_cid_del(struct quic_conn *c, const ngtcp2_cid *cid);
void quic_unregister(struct quic_conn *c);

/* Drop a reference on l; the last one frees it. */
void quic_listener_unref(struct quic_listener *l);

/* Hand a completed server connection to the listener's owner. */
void quic_listener_accept(struct quic_conn *c);

/* The listener half of tp_quic_ops (tp_quic_srv.c). */
int quic_listen(struct tp_env *env, const struct ovl_uri *uri, const struct tp_listen_cb *cb,
                void *udata, struct tp_listener **out);
int quic_listener_uri(const struct tp_listener *l, char *out, size_t outlen);
void quic_listener_close(struct tp_listener *l);

/* Fill token with the stateless-reset token for cid under l's secret. */
int quic_reset_token(const struct quic_listener *l, const ngtcp2_cid *cid, uint8_t *token) OVL_WUR;

#endif
