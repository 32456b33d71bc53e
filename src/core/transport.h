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
 * us is held back by the kernel's flow control) until tp_resume(); frames
 * already read in the current batch may still be delivered. A sendq_max
 * below one frame plus its framing acts as that minimum.
 */
#ifndef OVL_CORE_TRANSPORT_H
#define OVL_CORE_TRANSPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "lib/err.h"
#include "lib/log.h"
#include "lib/uri.h"

#ifndef container_of
#define container_of(ptr, type, member) ((type *)(void *)((char *)(ptr) - offsetof(type, member)))
#endif

/* Shared settings and loop for every transport of a node. Owned by the node. */
struct tp_env {
    uv_loop_t *loop;
    const struct ovl_log *log;
    size_t sendq_max;  /* bytes queued per connection before OVL_EAGAIN */
    uint32_t idle_timeout_ms; /* QUIC: peer silent this long = gone (0: 30 s) */
    /* QUIC: key for retry tokens and stateless resets. The node derives it
     * from its identity so resets still match after a restart; all zero
     * means "draw a random one per listener". Wiped by the owner. */
    uint8_t secret[32];
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
    void (*pause)(struct transport *t);
    void (*resume)(struct transport *t);
    size_t (*queued)(const struct transport *t);
    void (*want_drain)(struct transport *t);
    int (*peer_uri)(const struct transport *t, char *out, size_t outlen);
    int (*listener_uri)(const struct tp_listener *l, char *out, size_t outlen);
    void (*listener_close)(struct tp_listener *l);
};

/* The transport-independent head of every connection. */
struct transport {
    const struct tp_ops *ops;
    const struct tp_cb *cb;
    void *udata;   /* the owner (a link) */
    struct tp_stats stats;
    bool closing;  /* tp_close() was called: deliver nothing more */
    bool inbound;  /* accepted rather than dialed */
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

/* Parse uri and dial it with the matching transport (see the lifecycle above).
 * OVL_EINVAL for a bad URI or port 0, OVL_EUNSUPP for an unknown scheme. */
int tp_dial(struct tp_env *env, const char *uri, const struct tp_cb *cb, void *udata,
            struct transport **out) OVL_WUR;

/* Parse uri and listen on it; *out is NULL on failure. */
int tp_listen(struct tp_env *env, const char *uri, const struct tp_listen_cb *cb, void *udata,
              struct tp_listener **out) OVL_WUR;

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

/* Stop reading from the peer. */
static inline void tp_pause(struct transport *t)
{
    t->ops->pause(t);
}

/* Resume reading from the peer. */
static inline void tp_resume(struct transport *t)
{
    t->ops->resume(t);
}

/* Ask for one drain() once the queue falls below half, as after an
 * OVL_EAGAIN (for senders that check for room before sending). */
static inline void tp_want_drain(struct transport *t)
{
    t->ops->want_drain(t);
}

/* Return the bytes queued for sending. */
static inline size_t tp_queued(const struct transport *t)
{
    return t->ops->queued(t);
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

#endif
