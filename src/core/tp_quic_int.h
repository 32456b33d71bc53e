/* tp_quic_int.h - what tp_quic.c (connections, dialing, TLS sessions) and
 * tp_quic_srv.c (listeners and tp_quic_ops) share. Not a public contract:
 * the rest of the tree talks to QUIC through transport.h and tp_quic.h only.
 *
 * Layering: tp_quic_srv.c builds on tp_quic.c, never the other way round.
 * A server-side connection reaches its listener only through what the
 * listener gave it: the quic_lis_ops table (lops) and its socket (lis_udp);
 * the fields marked "the listener's" below are kept by tp_quic_srv.c alone.
 * tp_quic.c never names tp_quic_ops either: each connection gets its ops
 * table from whoever makes it.
 *
 * Ownership: a listener owns its UDP socket and the connection-ID map;
 * every server-side connection holds a reference on its listener (released
 * through lops), and the listener is freed when its socket is closed and
 * the last connection is gone. A dialed connection owns its own connected
 * UDP socket. The TLS credentials and priorities are the node's, every
 * session's (quic_shared): freed with the receive buffer, which every
 * socket holds, so they outlive each TLS session. All memory is released
 * in uv close callbacks.
 */
#ifndef OVL_CORE_TP_QUIC_INT_H
#define OVL_CORE_TP_QUIC_INT_H

#include <gnutls/gnutls.h>
#include <ngtcp2/ngtcp2.h>
#include <ngtcp2/ngtcp2_crypto.h>

#include "core/tp_quic.h"

#define QUIC_CID_LEN  18                 /* every connection ID we issue */
#define QUIC_SECRET   32                 /* retry-token and stateless-reset secret */
#define QUIC_PKT_MAX  8192               /* largest datagram we write (once PMTUD allows) */
#define QUIC_RX_BUF   QUIC_PKT_MAX       /* largest datagram we accept (advertised) */
#define QUIC_CTL_MAX  1452               /* buffer of a Retry, reset, VN or close we write */
#define QUIC_BLK      16384              /* send-buffer block: data stays put until acked */
#define QUIC_SPARES   4                  /* free blocks a connection keeps while sending */
#define QUIC_WINDOW   (256u * 1024)      /* initial flow-control window */
#define QUIC_MAX_WIN  (4u * 1024 * 1024) /* autotuning stops here; bounds rbuf */
#define QUIC_FLIGHT   QUIC_MAX_WIN       /* sent, unacknowledged bytes beside the queue */
#define QUIC_MAX_CIDS 12                 /* CIDs one server connection may hold in the map */
#define QUIC_LANES    4                  /* unidirectional streams of cells each end may open */
#define QUIC_STREAMS  (1 + QUIC_LANES)   /* the link's stream, then the lanes */
#define QUIC_SMALL    4096               /* an exchange up to this size keeps no buffer once done */
#define QUIC_WIRE_MAX (OVL_FRAME_MAX + OVL_FRAME_LENHDR)

struct quic_conn;
struct quic_listener; /* tp_quic_srv.c */
struct quic_cid;      /* tp_quic_srv.c: an entry of the connection-ID map */

/* What a socket's reads saw (quic_rx_buf, quic_rx_skip): datagrams of the
 * recvmmsg under way, and whether the last one left the socket empty. */
struct quic_rx {
    unsigned got;
    bool drained;
};

/* How a server-side connection reaches its listener; tp_quic_srv.c fills it
 * in. Each entry is called from tp_quic.c at the moment its comment names. */
struct quic_lis_ops {
    /* ngtcp2 issued cid for c: map it, write its stateless-reset token. */
    int (*cid_new)(struct quic_conn *c, const ngtcp2_cid *cid, uint8_t *token);
    /* ngtcp2 retired cid. */
    void (*cid_del)(struct quic_conn *c, const ngtcp2_cid *cid);
    /* c is up (stream known): hand it to the listener's owner. */
    void (*accept)(struct quic_conn *c);
    /* c's peer opened a stream past the lanes: count it (c is closed). */
    void (*bad_stream)(struct quic_conn *c);
    /* c began closing: take it out of the map and the listener's list. */
    void (*unlink)(struct quic_conn *c);
    /* c is being freed, its TLS session gone: drop its listener reference. */
    void (*release)(struct quic_conn *c);
};

/* A block of the send buffer. */
struct quic_blk {
    struct quic_blk *next;
    size_t len;
    uint8_t data[QUIC_BLK];
};

/* What we send on one stream: its bytes [acked, end) in blocks
 * head..tail; the next unsent byte is at sblk->data[spos]. Slot 0 of a
 * connection's is the link's bidirectional stream, the others our lanes,
 * each opened when it first carries a cell (sid -1 until then). */
struct quic_tx {
    int64_t sid;
    struct quic_blk *head, *tail, *sblk;
    size_t spos;
    uint64_t head_off, acked, sent, end;
    uint64_t busy_from; /* stream offset where this stream's queue was last empty */
};

/* What we received on one stream and did not hand over yet: slot 0 the
 * link's stream, slot 1 + k the peer's k-th lane (its unidirectional
 * stream of ordinal k). Allocated when bytes come, freed once a few frames
 * were handed over or by tp_trim. */
struct quic_in {
    uint8_t *buf;
    size_t len, cap;
};

/* QUIC's own bits of transport.flags. TP_F_ESTABLISHED means the stream is
 * known and connected()/accept() is done or due. */
enum {
    QUIC_F_LINKED = TP_F_PRIVATE << 0,     /* the listener's: in its list and CID map */
    QUIC_F_UDP_OPEN = TP_F_PRIVATE << 1,   /* udp was initialised (dial side) */
    QUIC_F_HS_DONE = TP_F_PRIVATE << 2,    /* TLS handshake completed (set inside ngtcp2) */
    QUIC_F_ANNOUNCED = TP_F_PRIVATE << 3,  /* dial side: the stream was opened on the wire */
    QUIC_F_PEER_GONE = TP_F_PRIVATE << 4,  /* the peer ended the stream */
    QUIC_F_NO_GSO = TP_F_PRIVATE << 5,     /* UDP GSO failed: one datagram per send */
    QUIC_F_RX = TP_F_PRIVATE << 6,         /* dial side: holds the receive buffer */
    QUIC_F_LANES = TP_F_PRIVATE << 7,      /* tp_lanes came: the peer's lanes are delivered */
    QUIC_F_BAD_STREAM = TP_F_PRIVATE << 8, /* the peer opened a stream past its lanes */
};

struct quic_conn {
    struct transport base; /* first: struct transport * downcasts to this */

    /* The listener's (server side only; lops is NULL on the dial side). */
    const struct quic_lis_ops *lops;
    struct quic_listener *lis;       /* a reference, dropped by lops->release */
    uv_udp_t *lis_udp;               /* the listener's socket: datagrams leave here */
    struct quic_conn *lnext, *lprev; /* the listener's list while QUIC_F_LINKED */
    uint64_t blk;                    /* the peer's address block, for its pending share */
    struct quic_cid *cids[QUIC_MAX_CIDS];

    ngtcp2_conn *qc;
    gnutls_session_t tls;
    ngtcp2_crypto_conn_ref cref;
    uv_timer_t timer;  /* ngtcp2's expiry, and "write soon" */
    uv_udp_t udp;      /* dial side only: a connected socket */
    struct quic_rx rx; /* dial side only: its reads */
    uv_getaddrinfo_t gai;
    struct sockaddr_storage local, remote;
    int locallen, remotelen;
    ngtcp2_tstamp deadline; /* server: hand over by then, or close */

    /* The streams: tx[0].sid is the link's bidirectional stream, -1 until
     * known. end, sent and acked add up every tx's: the link's queue. */
    struct quic_tx tx[QUIC_STREAMS];
    struct quic_in in[QUIC_STREAMS];
    struct quic_blk *spare; /* free blocks, a list of nspare, every stream's */
    unsigned nspare;
    uint64_t end, sent, acked;
    unsigned lanes;    /* lanes we send cells on (0: every frame on stream 0) */
    unsigned rr;       /* the tx slot a write pass serves first */
    unsigned rr_in;    /* the lane quic_deliver serves first */
    unsigned lanes_in; /* a bit per lane of the peer that brought bytes */

    /* Acknowledgements held back (quic_ack_held): datagrams of stream data
     * read since the last write pass (2: two or more), whether the one
     * read last carried stream data, and when a held acknowledgement must
     * leave (0: none held). */
    unsigned rx_lone;
    bool rx_data;
    ngtcp2_tstamp hold;

    unsigned handles; /* uv handles still open; freed when 0 */
};

/* Return a monotonic ngtcp2 timestamp. */
static inline ngtcp2_tstamp quic_now(void)
{
    return uv_hrtime();
}

static inline struct quic_conn *quic_of(const struct transport *t)
{
    return container_of(t, struct quic_conn, base);
}

/* ---- tp_quic.c: connections, for tp_quic_cli.c and tp_quic_srv.c ---- */

/* Allocate a connection using ops, its timer initialised. */
int quic_conn_new(struct tp_env *env, const struct tp_ops *ops, struct quic_conn **out) OVL_WUR;

/* Free c and what it holds, once its handles are closed (or were never
 * opened). */
void quic_free(struct quic_conn *c);

/* Ask for a write pass (and expiry handling) on the next loop turn. */
void quic_kick(struct quic_conn *c);

/* Every QUIC socket of a node reads into one buffer, env->quic_rx: libuv
 * gives recvmmsg 64 KiB a datagram, reads one socket at a time and calls
 * back before it reads the next. A socket is made (udp_init) and freed
 * with a hold and a release of it; the last release frees it. Behind the
 * receive buffer lies the write pass's batch (QUIC_BATCH bytes): a write
 * pass never runs inside a read callback. The whole is one mapping of its
 * own, which keeps only the pages used; quic_rx_trim() gives those back at
 * most once a second (stack memory, probed page by page against stack
 * clashes, would keep all 64 KiB of the batch for good). */
/* Datagrams one recvmmsg takes (libuv's most is 20). Each lands at the
 * start of its own 64 KiB slot, and every page a datagram touched stays
 * resident: 8 slots of datagrams up to 8 KiB keep at most 72 KiB, and one
 * call still moves 64 KiB. */
#define QUIC_RX_DGRAMS 8
#define QUIC_RX_SIZE   (QUIC_RX_DGRAMS * 65536)
#define QUIC_BATCH     65000 /* bytes one sendmsg carries (UDP GSO; a datagram's most) */

/* Behind the batch: what every dialed connection's TLS session shares,
 * made at the first dial (each session's own cost 14 KiB a link). */
struct quic_shared {
    gnutls_certificate_credentials_t cred; /* every session's: listeners' and dialers' */
    gnutls_priority_t prio;                /* every session's */
    uint64_t trimmed_ms;                   /* the loop's time of the last quic_rx_trim */
    unsigned flags;                        /* QUIC_SH_* */
};

#define QUIC_SH_CERT (1u << 0) /* cred holds a listener's certificate */

static inline struct quic_shared *quic_shared(const struct tp_env *env)
{
    return (struct quic_shared *)(env->quic_rx + QUIC_RX_SIZE + QUIC_BATCH);
}

/* Init u for env's loop, reading many datagrams a call, and hold the
 * receive buffer; OVL_ENOMEM or libuv's error, nothing held, on failure. */
int quic_udp_init(struct tp_env *env, uv_udp_t *u) OVL_WUR;

/* Set DF on u's datagrams (bound or connected, of family), so that Path
 * MTU Discovery's probes are dropped where too large, never fragmented;
 * and give u a receive buffer that holds a window's burst. */
void quic_udp_opts(uv_udp_t *u, int family);

/* Give back a hold of quic_udp_init (once u's close callback ran). */
void quic_rx_release(struct tp_env *env);

/* Return the TLS priorities every session of env shares, parsed at the
 * first call; NULL when that fails. Needs a hold of quic_udp_init. */
gnutls_priority_t quic_shared_prio(struct tp_env *env);

/* Return the TLS credentials every session of env shares, made at the
 * first call (a listener adds its certificate); NULL without memory.
 * Needs a hold of quic_udp_init. */
gnutls_certificate_credentials_t quic_shared_cred(struct tp_env *env);

/* Point buf at the receive buffer (the alloc callback of every socket),
 * or at nothing once the socket's last recvmmsg took fewer datagrams than
 * it had room for: the socket was empty then, and libuv's read loop ends
 * here (calling back with UV_ENOBUFS, which quic_rx_skip takes) instead
 * of asking the kernel again only to hear EAGAIN, one system call on the
 * way of every datagram that crosses a hop. The loop polls its sockets
 * level-triggered: a datagram that came meanwhile wakes it once more. */
static inline void quic_rx_buf(const struct tp_env *env, struct quic_rx *rx, uv_buf_t *buf)
{
    if (rx->drained) {
        rx->drained = false;
        *buf = uv_buf_init(NULL, 0);
        return;
    }
    *buf = uv_buf_init((char *)env->quic_rx, QUIC_RX_SIZE);
}

/* Count what a receive callback brings (flags and n as libuv gives them);
 * true when it carries no datagram to read: the end of a recvmmsg, or the
 * stop of quic_rx_buf. */
static inline bool quic_rx_skip(struct quic_rx *rx, ssize_t n, unsigned flags)
{
    if (flags & UV_UDP_MMSG_FREE) {
        rx->drained = rx->got < QUIC_RX_DGRAMS;
        rx->got = 0;
        return true;
    }
    if (flags & UV_UDP_MMSG_CHUNK)
        rx->got++;
    return n == UV_ENOBUFS;
}

/* Feed one datagram from remote to c, then run what it made due. */
void quic_conn_input(struct quic_conn *c, const struct sockaddr *remote, const uint8_t *data,
                     size_t len);

/* Close c: send CONNECTION_CLOSE unless quiet, release, then closed(reason). */
void quic_conn_shutdown(struct quic_conn *c, int reason, bool quiet);

/* Build the ngtcp2 settings, parameters, path (c's addresses, set by then)
 * and callbacks for c, the server's or the client's as c is inbound. */
void quic_conn_config(struct quic_conn *c, ngtcp2_settings *s, ngtcp2_transport_params *p,
                      ngtcp2_path *path, ngtcp2_callbacks *cb);

/* Attach c's TLS session to its ngtcp2 connection and start keep-alives. */
void quic_conn_ready(struct quic_conn *c);

/* ---- tp_quic_lane.c: the streams' buffers, and lanes ---- */

/* Queue one frame of len bytes (framed) on the stream it belongs to;
 * OVL_ENOMEM (part of it may be queued) or OVL_EPROTO (its lane could
 * not be opened): the caller closes. */
int quic_queue_frame(struct quic_conn *c, const uint8_t *frame, size_t len) OVL_WUR;

/* Point v at s's unsent bytes (at most two blocks); return the count. */
size_t quic_unsent(const struct quic_tx *s, ngtcp2_vec v[2]);

/* The stream a write pass serves next: the first slot from c->rr on that
 * has bytes to send and no bit in skip (blocked, or this packet took
 * nothing of it); its slot in *slot, its bytes in v (*cnt of them). Else
 * stream 0 without bytes while the dialer has not announced it, or -1. */
int64_t quic_next_stream(struct quic_conn *c, unsigned skip, unsigned *slot, ngtcp2_vec v[2],
                         size_t *cnt);

/* n more bytes of s went into packets. */
void quic_advance(struct quic_conn *c, struct quic_tx *s, size_t n);

/* The peer acknowledged the bytes of stream sid below off. */
void quic_acked(struct quic_conn *c, int64_t sid, uint64_t off);

/* Free the blocks of every stream whose bytes were all acknowledged, and
 * the spares once all were; everything when all is true (c is freed). */
void quic_free_blocks(struct quic_conn *c, bool all);

/* Store stream sid's bytes data[0, len) for delivery: 0, or an ngtcp2
 * error to return from its callback (no memory, over a window). Bytes of a
 * stream that is no link's are ignored. */
int quic_in_put(struct quic_conn *c, int64_t sid, const uint8_t *data, size_t len);

/* Hand the owner every complete frame received, stream 0's first, then
 * the lanes' once tp_lanes allowed them; credit what was consumed. */
void quic_deliver(struct quic_conn *c);

/* Free the receive buffers that hold nothing (tp_trim), or all of them. */
void quic_in_free(struct quic_conn *c, bool all);

/* A stream of the peer's opened (ngtcp2's stream_open): 0, or
 * NGTCP2_ERR_CALLBACK_FAILURE for one past the lanes (QUIC_F_BAD_STREAM
 * set: quic_fail closes with STREAM_LIMIT_ERROR and counts it). */
int quic_stream_opened(struct quic_conn *c, int64_t sid);

/* tp_lanes: count the lanes the peer lets us open, deliver its own. */
void quic_lanes(struct transport *t);

/* ---- tp_quic_cli.c: TLS sessions and dialing ---- */

/* Make c's TLS session, a server's or a client's, with quic_shared_cred()
 * and quic_shared_prio(). */
int quic_tls_session(struct quic_conn *c, bool server) OVL_WUR;

/* The connection half of tp_quic_ops; quic_dial makes connections using ops. */
int quic_dial(const struct tp_ops *ops, struct tp_env *env, const struct ovl_uri *uri,
              const struct tp_cb *cb, void *udata, struct transport **out);
int quic_send(struct transport *t, const uint8_t *frame, size_t len);
void quic_close(struct transport *t);
void quic_pause(struct transport *t);
void quic_resume(struct transport *t);
size_t quic_queued(const struct transport *t);
size_t quic_outstanding(const struct transport *t);
void quic_trim(struct transport *t);
int quic_peer_uri(const struct transport *t, char *out, size_t outlen);
int quic_binding(const struct transport *t, uint8_t out[TP_BINDING_LEN]);

#endif
