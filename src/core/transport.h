/* transport.h - one interface over every way of carrying frames (TCP, QUIC).
 *
 * Modelled on Redis's connection.h: each transport type has one
 * `static const struct tp_ops` table; its connection struct embeds
 * `struct transport` as the first member and downcasts with container_of.
 * Callers use the tp_* wrappers below and never look inside. A transport
 * delivers whole frames (at most OVL_FRAME_MAX bytes); framing on a byte
 * stream is the transport's business.
 *
 * Lifecycle and callbacks (struct tp_cb, one static table per owner):
 *  - tp_dial returns 0 and later calls exactly one of: connected() (then any
 *    number of frame()/drain(), then closed()), or closed(err) alone when the
 *    dial fails. When tp_dial itself returns an error no callback ever fires.
 *  - A listener's accept() hands over a new transport; the callee must call
 *    tp_set_cb() on it before returning (or tp_close() it).
 *  - closed(t, err) is the last callback: err is 0 after a local tp_close(),
 *    OVL_ECLOSED on a clean peer close, another code on an error. The
 *    transport is freed right after closed() returns.
 *  - tp_close() may be called from inside any callback; no further frame()
 *    is delivered after it.
 *
 * Buffers: frame() lends the buffer for the duration of the call only.
 * tp_send() copies the frame; the caller keeps its buffer.
 *
 * Backpressure: tp_send() queues up to env->sendq_max bytes; past that it
 * returns OVL_EAGAIN without queueing and calls drain() once the queue falls
 * below half. tp_pause() stops reading from the peer (so a peer that outruns
 * us is held back by the kernel's flow control) until tp_resume(), and
 * stops delivering at once: frames already read wait in the transport
 * (bounded by one read) and come first after tp_resume(), from the loop,
 * never inside it. A relay pausing a link because the next one is full
 * thus gets no more cells it would have to drop. A sendq_max
 * below one frame plus its framing acts as that minimum.
 *
 * Bandwidth: with env->meter set (tp_meter.h), every frame delivered and
 * queued is counted, and the meter stops a transport's reads the same way
 * (TP_F_THROTTLED, a reason of its own beside the owner's TP_F_PAUSED:
 * the transport reads only when neither holds it) until its tokens come
 * back. The owner sees nothing of it but time.
 *
 * The contract is kept once, in transport.c, and every transport builds on
 * it (as Redis's connhelpers.h does): the send-admission ladder (tp_admit),
 * u16-length deframing that calls the owner and stops once the owner closed
 * the transport (tp_deframe), the drain threshold (tp_emit_drain), the queue
 * cap (tp_sendq_max), closing exactly once (tp_begin_close), the reasons
 * to stop reading (tp_hold: the transport's pause and resume operations
 * only stop and start its reads, when the first reason comes and the last
 * goes) and the other callbacks (tp_emit_*). Their state lives in struct
 * transport: one flags word (TP_F_*, like libuv's UV_HANDLE_* bits) whose
 * high bits each transport type names for itself. A transport keeps only
 * its own I/O.
 */
#ifndef OVL_CORE_TRANSPORT_H
#define OVL_CORE_TRANSPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "core/cell.h"
#include "lib/err.h"
#include "lib/log.h"
#include "lib/uri.h"

#ifndef container_of
#define container_of(ptr, type, member) ((type *)(void *)((char *)(ptr)-offsetof(type, member)))
#endif

struct tcp_shared;
struct tp_meter;

/* Bytes of the value a protecting transport binds its connection to
 * (tp_binding). */
#define TP_BINDING_LEN 32

/* Shared settings and loop for every transport of a node. Owned by the node. */
struct tp_env {
    uv_loop_t *loop;
    const struct ovl_log *log;
    size_t sendq_max;         /* bytes queued per connection before OVL_EAGAIN */
    uint32_t idle_timeout_ms; /* QUIC: peer silent this long = gone (0: 30 s) */
    /* QUIC: a lone datagram's acknowledgement waits this long for an answer
     * to take it along (0: 1 ms; tp_quic.c, quic_ack_held) */
    uint32_t ack_hold_ms;
    /* QUIC: key for retry tokens and stateless resets. The node derives it
     * from its identity so resets still match after a restart; all zero
     * means "draw a random one per listener". Wiped by the owner. */
    uint8_t secret[32];
    /* TCP's state shared by its connections (tp_tcp.c): NULL until the
     * first connection, and again once the last is freed. */
    struct tcp_shared *tcp;
    /* QUIC's receive buffer, shared by its sockets (tp_quic.c): NULL while
     * none is open. */
    uint8_t *quic_rx;
    unsigned quic_rx_users;
    /* The node's bandwidth meter (tp_meter.h), or NULL: nothing counted,
     * nothing held. */
    struct tp_meter *meter;
    /* QUIC: lanes a peer may open (0: QUIC_LANES, what every node allows
     * it). Only tests set fewer, to play a node that takes fewer than it
     * advertised and see a peer that opens more closed and counted. */
    unsigned quic_lanes_max;
};

/* Per-connection counters. */
struct tp_stats {
    uint64_t frames_in, frames_out;
    uint64_t bytes_in, bytes_out; /* frame bytes, without framing */
    uint64_t eagain;              /* sends refused because the queue was full */
};

struct transport;
struct tp_listener;

struct tp_cb {
    void (*connected)(struct transport *t);
    void (*frame)(struct transport *t, const uint8_t *frame, size_t len);
    void (*drain)(struct transport *t);
    void (*closed)(struct transport *t, int err);
};

struct tp_listen_cb {
    void (*accept)(struct tp_listener *l, struct transport *t);
};

struct tp_ops {
    const char *scheme;
    int (*listen)(struct tp_env *env, const struct ovl_uri *uri, const struct tp_listen_cb *cb,
                  void *udata, struct tp_listener **out);
    int (*dial)(struct tp_env *env, const struct ovl_uri *uri, const struct tp_cb *cb, void *udata,
                struct transport **out);
    int (*send)(struct transport *t, const uint8_t *frame, size_t len);
    void (*close)(struct transport *t);
    void (*pause)(struct transport *t);  /* stop reading (tp_hold says when) */
    void (*resume)(struct transport *t); /* read again: what was held first, from the loop */
    size_t (*queued)(const struct transport *t);
    /* NULL: what queued() says (tp_outstanding) */
    size_t (*outstanding)(const struct transport *t);
    void (*trim)(struct transport *t); /* NULL: the transport keeps nothing to give back */
    /* NULL: the transport protects nothing the link may rely on (tp_binding) */
    int (*binding)(const struct transport *t, uint8_t out[TP_BINDING_LEN]);
    void (*lanes)(struct transport *t); /* NULL: one ordered flow of frames (tp_lanes) */
    int (*peer_uri)(const struct transport *t, char *out, size_t outlen);
    int (*listener_uri)(const struct tp_listener *l, char *out, size_t outlen);
    void (*listener_close)(struct tp_listener *l);
};

/* Bits of transport.flags. The low byte is the contract's, kept by its
 * common steps in transport.c and transport.h; bits from TP_F_PRIVATE up
 * belong to the transport type, which names them for itself (TCP_F_*,
 * QUIC_F_*). */
enum {
    TP_F_CLOSING = 1u << 0,     /* closing has begun: deliver nothing more */
    TP_F_INBOUND = 1u << 1,     /* accepted rather than dialed */
    TP_F_PAUSED = 1u << 2,      /* the owner asked us not to read */
    TP_F_WANT_DRAIN = 1u << 3,  /* call drain() once the queue is down to half */
    TP_F_SILENT = 1u << 4,      /* call nothing on close: a starting call failed,
                                 * or nobody took an accepted transport */
    TP_F_ESTABLISHED = 1u << 5, /* up: connected() or accept() is done or due */
    TP_F_RESOLVING = 1u << 6,   /* a name lookup is out; it keeps the memory alive */
    TP_F_THROTTLED = 1u << 7,   /* the bandwidth meter holds our reads (tp_meter.h) */
    TP_F_PRIVATE = 1u << 8,     /* the first bit a transport type may use */
};

/* Either reason stops a transport's reads. */
#define TP_F_HOLD (TP_F_PAUSED | TP_F_THROTTLED)

/* The transport-independent head of every connection. */
struct transport {
    const struct tp_ops *ops;
    const struct tp_cb *cb;
    void *udata;        /* the owner (a link) */
    struct tp_env *env; /* the node's; outlives every transport */
    struct tp_stats stats;
    unsigned flags; /* TP_F_* and the transport type's own bits */
    int reason;     /* handed to closed(); set when closing begins */
    /* The meter's (tp_meter.c's alone): its list of transports waiting for
     * tokens, the bytes this one may still take of its share, TPM_T_*. */
    struct transport *mprev, *mnext;
    int64_t mshare;
    unsigned mflags;
};

/* The transport-independent head of every listener. */
struct tp_listener {
    const struct tp_ops *ops;
    const struct tp_listen_cb *cb;
    void *udata;
};

/* Return the ops of the transport for scheme, or NULL. */
const struct tp_ops *tp_lookup(const char *scheme);

/* Return the compiled-in transports as "tcp" or "tcp,quic". */
const char *tp_names(void);

/* Return the bit of a compiled-in transport (for masks of transports), or 0. */
unsigned tp_bit(const char *scheme);

/* Return the mask of every compiled-in transport. */
unsigned tp_all_bits(void);

/* The transports ovl knows, compiled in or not: tcp is 0, quic 1. */
#define TP_MAX 2

/* Return the place of t's transport in tp_names() (the log2 of its
 * tp_bit()), below TP_MAX. */
unsigned tp_index(const struct transport *t);

/* Parse uri and dial it with the matching transport (see the lifecycle above).
 * OVL_EINVAL for a bad URI or port 0, OVL_EUNSUPP for an unknown scheme. */
int tp_dial(struct tp_env *env, const char *uri, const struct tp_cb *cb, void *udata,
            struct transport **out) OVL_WUR;

/* Parse uri and listen on it; *out is NULL on failure. */
int tp_listen(struct tp_env *env, const char *uri, const struct tp_listen_cb *cb, void *udata,
              struct tp_listener **out) OVL_WUR;

/* Return true once closing has begun (tp_close() or the transport's own). */
static inline bool tp_is_closing(const struct transport *t)
{
    return t->flags & TP_F_CLOSING;
}

/* Return true for a transport a listener accepted. */
static inline bool tp_is_inbound(const struct transport *t)
{
    return t->flags & TP_F_INBOUND;
}

/* Install the owner's callbacks on an accepted transport. */
static inline void tp_set_cb(struct transport *t, const struct tp_cb *cb, void *udata)
{
    t->cb = cb;
    t->udata = udata;
}

/* Queue one frame (copied). OVL_EAGAIN when the queue is full, OVL_ETOOBIG
 * above OVL_FRAME_MAX, OVL_EINVAL for an empty frame, OVL_ECLOSED after
 * tp_close(). Frames sent before connected() are queued and go out then. */
static inline int tp_send(struct transport *t, const uint8_t *frame, size_t len)
{
    return t->ops->send(t, frame, len);
}

/* Start an asynchronous close; closed(t, 0) follows unless already closing. */
static inline void tp_close(struct transport *t)
{
    t->ops->close(t);
}

/* Set (on) or clear the reason bit (TP_F_PAUSED, TP_F_THROTTLED) to stop
 * reading, and start or stop the reads when that changed whether an open
 * transport reads at all. */
static inline void tp_hold(struct transport *t, unsigned bit, bool on)
{
    bool was = (t->flags & TP_F_HOLD) != 0;

    if (t->flags & TP_F_CLOSING)
        return; /* reads nothing either way */
    t->flags = on ? t->flags | bit : t->flags & ~bit;
    if (was != ((t->flags & TP_F_HOLD) != 0)) {
        if (was)
            t->ops->resume(t);
        else
            t->ops->pause(t);
    }
}

/* Stop reading from the peer. */
static inline void tp_pause(struct transport *t)
{
    tp_hold(t, TP_F_PAUSED, true);
}

/* Resume reading from the peer (unless the meter holds it: then once it
 * lets it go). */
static inline void tp_resume(struct transport *t)
{
    tp_hold(t, TP_F_PAUSED, false);
}

/* Return true while the bandwidth meter holds t's reads. */
static inline bool tp_is_throttled(const struct transport *t)
{
    return (t->flags & TP_F_THROTTLED) != 0;
}

/* Ask for one drain() once the queue falls below half, as after an
 * OVL_EAGAIN (for senders that check for room before sending). */
static inline void tp_want_drain(struct transport *t)
{
    t->flags |= TP_F_WANT_DRAIN;
}

/* Return the bytes queued for sending: what counts against sendq_max. */
static inline size_t tp_queued(const struct transport *t)
{
    return t->ops->queued(t);
}

/* Return every byte the transport keeps for its peer's sake in our memory:
 * the queue, and what was sent but must stay until acknowledged where the
 * transport itself retransmits (QUIC; TCP's kernel does its own). What
 * the node's max_queued budget adds up. */
static inline size_t tp_outstanding(const struct transport *t)
{
    return t->ops->outstanding ? t->ops->outstanding(t) : t->ops->queued(t);
}

/* Give back the buffers the transport holds but does not need now (its
 * owner calls it on a quiet connection); they are made again when data
 * flows. Changes nothing the owner can see. */
static inline void tp_trim(struct transport *t)
{
    if (t->ops->trim)
        t->ops->trim(t);
}

/* Ask whether t protects the frames it carries itself, and to what: 0 and
 * out filled when t gives every frame confidentiality, integrity, order
 * (after tp_lanes: within each chain) and exactly-once delivery under
 * keys that only the two ends of this one connection hold, and out is a
 * secret value of those keys that both ends compute alike (QUIC: a TLS
 * exporter). Anyone who terminates the
 * connection in the middle holds two connections with two values, so a
 * handshake that mixes out into what both ends authenticate fails through
 * such a middlebox (docs/PROTOCOL.md 8.3). OVL_EUNSUPP when t protects
 * nothing (TCP), OVL_EINVAL before it is connected. out is secret: the
 * caller wipes it. */
static inline int tp_binding(const struct transport *t, uint8_t out[TP_BINDING_LEN])
{
    return t->ops->binding ? t->ops->binding(t, out) : OVL_EUNSUPP;
}

/* Tell t that from now on its frames, both ways, are the cells of a bound
 * link (FRAME_CELL_BOUND, docs/PROTOCOL.md 8.3), which need no order
 * between chains: a transport with several streams (QUIC's lanes, 4.1)
 * may then carry the cells of different chains on different streams and
 * deliver them in another order than sent, but keeps every chain's cells
 * in order, and every other frame in order with the frames sent before
 * it. Frames the peer sent on its lanes are held until this call, so that
 * none overtakes the HELLO (6.5). The link calls it once it opens; no-op
 * where the transport has one stream. */
static inline void tp_lanes(struct transport *t)
{
    if (t->ops->lanes)
        t->ops->lanes(t);
}

/* Write the peer's address as a URI into out. */
static inline int tp_peer_uri(const struct transport *t, char *out, size_t outlen)
{
    return t->ops->peer_uri(t, out, outlen);
}

/* Write the bound address (with the real port when 0 was asked) into out. */
static inline int tp_listener_uri(const struct tp_listener *l, char *out, size_t outlen)
{
    return l->ops->listener_uri(l, out, outlen);
}

/* Close a listener; it is freed asynchronously and calls nothing. */
static inline void tp_listener_close(struct tp_listener *l)
{
    l->ops->listener_close(l);
}

/* ---- for transports only: the contract's common steps (transport.c) ----
 * Owners never call these. Each keeps one promise of the header comment
 * above, so that every transport keeps it the same way. */

/* Return the send-queue cap: env->sendq_max, at least one framed frame
 * (caps below it would refuse every send forever). */
static inline size_t tp_sendq_max(const struct transport *t)
{
    const size_t min = OVL_FRAME_MAX + OVL_FRAME_LENHDR;

    return t->env->sendq_max < min ? min : t->env->sendq_max;
}

/* Admit a frame of len bytes to a queue holding queued of at most max bytes
 * (framing included): 0, or OVL_ECLOSED once closing, OVL_ETOOBIG above
 * OVL_FRAME_MAX, OVL_EINVAL when empty, OVL_EAGAIN (counted, and drain()
 * asked for) when it does not fit. Queues nothing. */
int tp_admit(struct transport *t, const uint8_t *frame, size_t len, size_t queued,
             size_t max) OVL_WUR;

/* Count a frame of len bytes that tp_admit let in and the transport
 * queued (and charge the meter). */
void tp_count_sent(struct transport *t, size_t len);

/* Hand each whole u16-length frame of buf[0, len) to the owner's frame(),
 * counted, and stop early once closing or any flag in stop is set (so an
 * owner that closes t from frame() gets nothing more). *used is set to the
 * bytes consumed, which the caller drops; a partial frame is left. Returns
 * 0, or OVL_EPROTO (empty frame) / OVL_ETOOBIG (too long) for a bad prefix:
 * the caller closes with that reason. */
int tp_deframe(struct transport *t, const uint8_t *buf, size_t len, unsigned stop,
               size_t *used) OVL_WUR;

/* Begin closing with reason for closed(); false when it had begun already. */
bool tp_begin_close(struct transport *t, int reason);

/* Call the owner's connected(). */
void tp_emit_connected(struct transport *t);

/* Hand an accepted t to l's owner. True when the owner took it and it is
 * open; false when the owner closed it, or took nothing (then t is marked
 * TP_F_SILENT and the caller closes it). */
bool tp_emit_accept(struct tp_listener *l, struct transport *t);

/* Call drain() once if it was asked for, the queue (queued bytes) is down
 * to half of max (half, so a sender woken has room for a burst) and t is
 * not closing. */
static inline void tp_emit_drain(struct transport *t, size_t queued, size_t max)
{
    if ((t->flags & (TP_F_CLOSING | TP_F_WANT_DRAIN)) != TP_F_WANT_DRAIN || queued > max / 2)
        return;
    t->flags &= ~TP_F_WANT_DRAIN;
    if (t->cb && t->cb->drain)
        t->cb->drain(t);
}

/* Call the owner's closed(t, t->reason), unless TP_F_SILENT. */
void tp_emit_closed(struct transport *t);

/* A dial of a name, not a literal address: look uri's host and port up
 * for sockets of socktype (SOCK_STREAM, SOCK_DGRAM) with req, cb called
 * on the loop. Sets TP_F_RESOLVING, which keeps t's memory alive until
 * then. Returns 0 or libuv's error (nothing is out then). */
int tp_resolve_name(struct transport *t, uv_getaddrinfo_t *req, const struct ovl_uri *uri,
                    int socktype, uv_getaddrinfo_cb cb) OVL_WUR;

/* In that cb, with its status and res (freed here): clear TP_F_RESOLVING
 * and copy the first address into *ss. Returns 0 with *ss set;
 * TP_RESOLVED_CLOSING when t began closing meanwhile (the transport frees
 * t if its handles are closed already); or a negative error, for which the
 * transport closes t. */
#define TP_RESOLVED_CLOSING 1
int tp_name_resolved(struct transport *t, int status, struct addrinfo *res,
                      struct sockaddr_storage *ss) OVL_WUR;

#endif
