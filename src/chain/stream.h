/* stream.h - one end of a reliable, ordered, flow-controlled byte stream
 * carried in frames that may be lost, repeated or cut off by a path that
 * changes under them (docs/PROTOCOL.md, section 20).
 *
 * Frames (all integers LE):
 *
 *   type(1) | flags(1) | sid(8) | off(8) | ack(8) | lim(8) | rest
 *
 *   SF_OPEN    rest = alen(1) | args(alen) | data: the opener's first frame,
 *              sent again until SF_OPENED arrives; args name the target
 *              (the owner's business), data starts at offset 0
 *   SF_DATA    rest = data at stream offset off (may be empty: an ack)
 *   SF_OPENED  rest = data, as SF_DATA: the far end took the stream
 *   SF_RESET   rest = reason(1): the stream is over, nothing is resent
 *
 * ack is the next offset the sender of the frame expects (a FIN takes one
 * offset, as in TCP), lim the offset up to which it takes data (its free
 * receive room: the credit); SF_FIN marks the end of the sender's data at
 * off + data length, SF_GAP says that a frame was missing (the peer sends
 * again from the last ack), SF_ASK asks for an ack at once (a probe when
 * the credit is used up). A receiver takes only data at its next offset
 * and drops the rest: the sender goes back to the last ack (go-back-N) on
 * SF_GAP, on its retransmission timer and when the owner says the path
 * changed (stream_rewind), so a stream survives a chain repaired or
 * replaced under it with nothing lost, repeated or reordered.
 *
 * Chain window: the streams an owner carries on one path (a chain, a
 * line, a way back) may share a struct stream_pool, which caps the bytes
 * they have sent and not yet had acknowledged, together: new data waits
 * for room there as it waits for the peer's credit; retransmissions and a
 * FIN never wait. The owner polls stream_pool_wake() after stream_input()
 * and pumps the pool's other streams when it says so. The pool's size is
 * a congestion window that the round trips its streams measure open and
 * close (stream_pool_sample, in stream_cc.c), so a chain over a long path keeps its
 * bandwidth-delay product in flight without filling the relays' queues.
 *
 * Memory: two rings, each allocated when the first byte goes in and freed
 * when it empties, so an idle stream holds about 200 bytes. Each ring
 * starts at STREAM_WINDOW bytes, which is also the credit a receiver
 * first gives. A receiver whose application consumed a whole window and
 * caught up with everything that came doubles its window, up to
 * STREAM_WINDOW_MAX. Past that it grows only as the round trip asks, as
 * Linux's receive autotuning does: it times how long the sender takes to
 * fill a window it was given (the least such time is rcv_rtt, a round
 * trip when the window is what holds the sender back), and doubles the
 * window, up to STREAM_WINDOW_RTT_MAX, when the application consumed more
 * than half of it per rcv_rtt and caught up (its ring is empty). A sender grows its send ring to
 * hold the credit it is given, past STREAM_WINDOW_MAX only as far as its pool's window reaches too
 * (which its own round trips opened), so a peer's word alone never grows it that far. A stream that
 * one path's latency would hold back thus opens up; one whose reader stalls keeps its receive
 * window, and its sender writes at most one STREAM_WINDOW past the credit and gives its send ring's
 * growth back. Grown windows are charged to the stream's pool (at most STREAM_POOL_GROWN bytes of
 * growth each) and to the process (STREAM_GROWN_MAX): past either, a window stays as it is. A
 * stalled reader pins at most two rings; what readers that stall or lag leave unread is paid for
 * as well (STREAM_UNREAD_MAX): past it no receive window grows, and one still behind shrinks.
 * Frames are built on the stack; nothing is allocated per frame.
 *
 * Ownership: the owner creates a stream with stream_new() and ends it with
 * stream_free(), which may be called from any callback; the memory goes
 * in the close callback of the stream's timer. After a callback returns
 * the stream checks whether it was freed and then stops.
 */
#ifndef OVL_CHAIN_STREAM_H
#define OVL_CHAIN_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "lib/err.h"

#define STREAM_SID        8
#define STREAM_HDR        34
#define STREAM_WINDOW     65536  /* a ring's first size and credit, a power of two */
#define STREAM_WINDOW_MAX 524288 /* what a window grows to with use alone, a power of two */
/* What a window grows to when the measured round trip asks for it (the
 * bandwidth-delay product: 8 MiB carries 100 MB/s over 80 ms), a power of
 * two. */
#define STREAM_WINDOW_RTT_MAX (8u << 20)
#define STREAM_FRAME_MAX      888 /* the largest frame an owner may carry */
#define STREAM_ARGS_MAX       255
/* Round trips a sender times at once, one per STREAM_RTT_GAP bytes sent:
 * most acks then end one begun just before the bytes they cover, whose
 * time is the round trip plus little of the receiver's wait to ack. */
#define STREAM_RTT_SAMPLES 4
#define STREAM_RTT_GAP     16384

enum stream_frame_type { SF_OPEN = 1, SF_DATA = 2, SF_RESET = 3, SF_OPENED = 4 };

enum { SF_FIN = 1u << 0, SF_GAP = 1u << 1, SF_ASK = 1u << 2 };

/* Why a stream ended (SF_RESET's reason; the owner maps them to SOCKS5
 * replies). Unknown values read as SR_PROTOCOL. */
enum stream_reason {
    SR_DONE = 0,         /* both ends finished, or the application closed */
    SR_POLICY = 1,       /* the exit's policy or the service refuses it */
    SR_NET_UNREACH = 2,  /* no route to the target's network */
    SR_HOST_UNREACH = 3, /* unknown name or node, resolution failed */
    SR_REFUSED = 4,      /* the target refused, or no service on that port */
    SR_TIMEOUT = 5,      /* no answer in time (connect, open, idle) */
    SR_PROTOCOL = 6,     /* a frame broke the rules */
    SR_LIMIT = 7,        /* a cap at the far end was reached */
    SR_UNKNOWN = 8,      /* no such stream at the far end */
    SR_PATH = 9,         /* the path to the far end is gone for good */
    SR_MAX = SR_PATH
};

/* Events (stream_ops.event). */
enum stream_event {
    SE_OPENED = 1, /* the far end took the stream (opener only) */
    SE_READABLE,   /* stream_rbuf has new bytes, or the peer's FIN came */
    SE_WRITABLE,   /* stream_wbuf has room again */
    SE_CLOSED,     /* over, for stream_reason(): the owner frees it */
};

struct stream;

struct stream_ops {
    /* Carry frame f (len bytes) to the far end: 0 when it left, OVL_EAGAIN
     * when the path is full (the owner calls stream_pump when it drains),
     * any other error when there is no path now (stream_rewind later). */
    int (*send)(struct stream *s, const uint8_t *f, size_t len);
    void (*event)(struct stream *s, enum stream_event ev);
};

/* Bits of struct stream's flags. */
enum {
    STF_OPENER = 1u << 0,     /* we sent SF_OPEN */
    STF_OPENED = 1u << 1,     /* the open is settled (always, at the far end once taken) */
    STF_FIN_OUT = 1u << 2,    /* the application finished writing */
    STF_FIN_SENT = 1u << 3,   /* our FIN left (offset snd_end) */
    STF_FIN_IN = 1u << 4,     /* the peer's FIN arrived */
    STF_ACK_NOW = 1u << 5,    /* send an ack at the next pump */
    STF_ACK_LATE = 1u << 6,   /* an ack is owed by ack_due_ms */
    STF_GAP = 1u << 7,        /* tell the peer a frame was missing */
    STF_CLOSED = 1u << 8,     /* SE_CLOSED was delivered */
    STF_DEAD = 1u << 9,       /* stream_free ran: memory goes with the timer */
    STF_TAKEN = 1u << 10,     /* far end: the owner accepted; OPENED not yet sent */
    STF_OPEN_SENT = 1u << 11, /* opener: SF_OPEN left since the last go-back */
    STF_LINGER = 1u << 12,    /* done both ways; still acks the peer's resends */
    STF_CAUGHT = 1u << 13,    /* its application read all that came, in this receive round */
};

#define STREAM_POOL_CAP   (8u * STREAM_WINDOW)         /* a pool's first and least window */
#define STREAM_POOL_MAX   (2u * STREAM_WINDOW_RTT_MAX) /* the most its controller opens it to */
#define STREAM_POOL_GROWN (2u * STREAM_WINDOW_RTT_MAX) /* growth of windows one pool may hold */
#define STREAM_GROWN_MAX  (64u << 20)                  /* growth of windows in the process */
/* Bytes the receive rings of the process hold unread past their first
 * window (readers that stall or lag): past it no receive window grows,
 * and one whose reader is still behind gives its growth back. */
#define STREAM_UNREAD_MAX (8u << 20)

/* The chain window's controller (stream_pool_sample), in bytes the path
 * holds in its queues beyond what its round trip needs: grow below ALPHA,
 * shrink above BETA, leave slow start above GAMMA, drop the whole excess
 * above DELTA. Each is the larger of the bytes below and a share of the
 * window (1/8, 1/4, 1/6, 1/2): round trips on a busy host jitter by a
 * tenth or more, which a large window would read as that much queued.
 * Every relay's link queue holds 1 MiB by default. */
#define STREAM_CC_ALPHA (64u << 10)
#define STREAM_CC_BETA  (192u << 10)
#define STREAM_CC_GAMMA (128u << 10)
#define STREAM_CC_DELTA (512u << 10)

/* Bits of struct stream_pool's flags. */
enum {
    SPF_WAIT = 1u << 0,   /* a stream has new data held back for room */
    SPF_FULL = 1u << 1,   /* new data was held back for room during this round */
    SPF_STEADY = 1u << 2, /* slow start is over: the window moves by steps */
};

/* A window shared by streams on one path, owned by the owner, which keeps
 * it alive while a stream is charged to it. A zeroed pool is ready: its
 * first stream sets cap to STREAM_POOL_CAP. cap is a congestion window
 * driven by the round trips its streams measure (stream_pool_sample). */
struct stream_pool {
    uint64_t used;      /* bytes sent, not yet acknowledged (max - una), all streams */
    uint32_t cap;       /* new data goes only while used < cap */
    uint32_t grown;     /* its streams' rings past STREAM_WINDOW, together */
    uint32_t rtt_min;   /* the least round trip seen with the window full, us */
    uint32_t rtt_round; /* the least round trip of this round, us */
    uint32_t rtt_last;  /* the least round trip of the last round, us (0: none) */
    uint64_t round_end; /* us: the round (one round trip) ends, the window moves */
    uint8_t flags;      /* SPF_* */
};

struct stream_ring {
    uint8_t *buf;  /* cap bytes, or NULL while empty */
    uint64_t base; /* stream offset of the first byte held */
    uint32_t len;  /* bytes held */
    uint32_t cap;  /* its size, a power of two; the receive ring's is our credit */
};

struct stream {
    uv_timer_t timer; /* retransmission, delayed ack, idle; its close frees us */
    const struct stream_ops *ops;
    void *ctx;                /* the owner's */
    struct stream_pool *pool; /* the chain window it is charged to, or NULL */
    uint8_t sid[STREAM_SID];
    uint16_t flags;
    uint16_t mtu;   /* largest frame the path carries */
    uint8_t rtt_n;  /* samples in rtt_off */
    uint8_t reason; /* enum stream_reason, once closed */
    uint8_t alen;   /* open args kept until SE_OPENED (opener) */
    uint8_t *args;
    struct stream_ring snd; /* [snd.base = una, snd.base + len = end) */
    struct stream_ring rcv; /* received, not yet consumed: [rcv.base, rcv_nxt) */
    uint64_t grow_mark;     /* rcv.base when the receive window last grew */
    /* Sender: ranges of new bytes being timed to their ack, oldest first:
     * an ack at or past rtt_off[i] ends sample i, sent at rtt_at[i]. */
    uint64_t rtt_off[STREAM_RTT_SAMPLES], rtt_at[STREAM_RTT_SAMPLES];
    uint64_t mark_off; /* receiver: the credit end when rcv_rtt's timing began, 0: none */
    uint64_t mark_us;  /* when it began */
    uint64_t drs_base; /* rcv.base when the current receive round began */
    uint64_t drs_us;   /* when it began */
    uint32_t rcv_rtt;  /* receiver: the least time a window took to fill, us */
    uint64_t una;      /* the peer acked everything below (a FIN takes one) */
    uint64_t nxt, max; /* next offset to send; highest sent + 1 */
    uint64_t peer_lim; /* the peer takes data below this offset */
    uint64_t ack_sent, lim_sent;
    uint64_t last_rx_ms, rto_due_ms, ack_due_ms, rewound_ms;
    uint64_t arm_ms; /* the loop time its timer is set for */
    uint32_t rto_ms, idle_ms;
    uint64_t retransmits; /* frames sent again */
};

/* Make *out a stream with id sid whose frames are at most mtu bytes
 * (STREAM_HDR + 1 .. STREAM_FRAME_MAX) and that ends after idle_ms without
 * a frame from the peer. With args (alen bytes, the target) it is the
 * opener and sends SF_OPEN at the first pump; without, it is the far end of
 * a stream the peer opened, and the owner calls stream_take() once it
 * accepts. Returns 0, OVL_EINVAL or OVL_ENOMEM (nothing allocated). */
OVL_WUR int stream_new(uv_loop_t *loop, const struct stream_ops *ops, void *ctx,
                       const uint8_t sid[STREAM_SID], const uint8_t *args, size_t alen, size_t mtu,
                       uint32_t idle_ms, struct stream **out);

/* End s: no more callbacks, its pool charge released; its memory is
 * freed once its timer closed.
 * Sends nothing (stream_reset first to tell the peer). NULL is fine. */
void stream_free(struct stream *s);

/* Far end: the owner accepts the stream; SF_OPENED goes out. */
void stream_take(struct stream *s);

/* Take one frame for s (its sid already matched by the owner). Returns 0,
 * or OVL_EPROTO for a frame that is malformed (dropped, counted by the
 * owner); a frame that breaks the stream's rules resets it instead. */
OVL_WUR int stream_input(struct stream *s, const uint8_t *f, size_t len);

/* Contiguous free room in the send ring at *p (0: full; then wait for
 * SE_WRITABLE). Write into it, then call stream_wrote(). */
size_t stream_wbuf(struct stream *s, uint8_t **p);
void stream_wrote(struct stream *s, size_t n);

/* The application has no more to write: FIN after the buffered bytes. */
void stream_shutdown(struct stream *s);

/* Contiguous received bytes at *p (0: none now); the application says how
 * many it is done with by stream_consumed(), which gives the peer credit. */
size_t stream_rbuf(struct stream *s, const uint8_t **p);
void stream_consumed(struct stream *s, size_t n);

/* True when the peer's FIN came and every byte before it was consumed. */
bool stream_eof(const struct stream *s);

/* Send what credit and the path allow (the path drained). */
void stream_pump(struct stream *s);

/* The path changed (a chain repaired or replaced, a new return path):
 * send again everything not yet acknowledged. */
void stream_rewind(struct stream *s);

/* Tell the peer the stream is over (one SF_RESET, not resent) and close
 * it: SE_CLOSED follows. */
void stream_reset(struct stream *s, enum stream_reason why);

/* Charge s to pool p (NULL: to none): its bytes in flight leave its old
 * pool, which may then have room, and count in p, which may then be over
 * its cap until acks come. Nothing for a freed stream. */
void stream_set_pool(struct stream *s, struct stream_pool *p);

/* The chain window's controller: one round trip sample of rtt us at
 * now_us. Once a round (a round trip) is over, it compares the least
 * round trip of that round and the one before with the least ever seen in
 * a round where the window was full (SPF_FULL), as TCP Vegas does: the
 * difference times the window is what queues along the path. While
 * that stays under STREAM_CC_GAMMA the window doubles each round (slow
 * start), then grows by a step (an eighth) when under STREAM_CC_ALPHA and
 * shrinks by one over STREAM_CC_BETA (each scaled up with the window, as
 * above); it grows only in a round where new data found
 * no room (SPF_FULL). Between STREAM_POOL_CAP and STREAM_POOL_MAX; a
 * window its owner set below STREAM_POOL_CAP stays as it is. */
void stream_pool_sample(struct stream_pool *p, uint32_t rtt, uint64_t now_us);

/* A frame of p's path was lost (a go-back): halve the window, leave slow
 * start. */
void stream_pool_loss(struct stream_pool *p);

/* True once after a stream of p was held back for room and room came
 * back: the owner then pumps every stream of p (STREAM_POOL_PUMP). */
bool stream_pool_wake(struct stream_pool *p);

/* When stream_pool_wake(pool) says so, pump each stream of the owner's
 * list head once: a utlist of elements of type T linked through PREV and
 * NEXT, each with its stream in member S, all charged to pool. Those that
 * took room move to the tail in the order they took it, behind those that
 * found none, so the next wake serves another stream first and no stream
 * takes the freed room every time. Pumping only sends: nothing closes, so
 * the list stays whole. The owners' lists differ in their types and link
 * names, hence a macro (utlist.h must be included). */
#define STREAM_POOL_PUMP(pool, head, T, S, PREV, NEXT)                                             \
    do {                                                                                           \
        T *sp_el_, *sp_next_, *sp_last_;                                                           \
        if (!stream_pool_wake(pool) || !(head))                                                    \
            break;                                                                                 \
        sp_last_ = (head)->PREV; /* the tail: each stream is pumped once */                        \
        for (sp_el_ = (head); sp_el_; sp_el_ = sp_next_) {                                         \
            uint64_t sp_used_ = (pool)->used;                                                      \
            sp_next_ = sp_el_ == sp_last_ ? NULL : sp_el_->NEXT;                                   \
            stream_pump(sp_el_->S);                                                                \
            if ((pool)->used > sp_used_) {                                                         \
                DL_DELETE2(head, sp_el_, PREV, NEXT);                                              \
                DL_APPEND2(head, sp_el_, PREV, NEXT);                                              \
            }                                                                                      \
        }                                                                                          \
    } while (0)

/* Bytes s holds now: its record and the rings it has allocated. */
size_t stream_held(const struct stream *s);

/* Bytes of window growth held by every stream of the process. */
uint64_t stream_grown_total(void);

/* Bytes the receive rings of the process hold unread past their first
 * window each (STREAM_UNREAD_MAX). */
uint64_t stream_unread_total(void);

/* What the streams of the process did and hold, for status: the chain
 * windows' rounds and the last one judged (where a bulk transfer's window
 * stands), and the windows' growth and unread bytes. */
struct stream_stats {
    uint64_t cc_rounds;       /* rounds the chain windows judged */
    uint64_t cc_opened;       /* of them, rounds that opened a window */
    uint64_t cc_closed;       /* of them, rounds that closed a window for what queued */
    uint64_t cc_losses;       /* go-backs that halved a window */
    uint64_t grown;           /* stream_grown_total() */
    uint64_t unread;          /* stream_unread_total() */
    uint32_t cc_window;       /* the window after the last round judged, bytes */
    uint32_t cc_rtt_us;       /* that round's round trip (the least of it and the last) */
    uint32_t cc_rtt_least_us; /* that window's least round trip (a full window, no queue) */
    uint32_t cc_queued;       /* what that round found queued, bytes */
};

/* Fill st. */
void stream_stats(struct stream_stats *st);

/* The chain windows' part of st (stream_cc.c). */
void stream_cc_stats(struct stream_stats *st);

/* Targets, in SF_OPEN's args: atyp(1) | port(2, BE) | addr, where addr
 * is 4 bytes (STA_IPV4), 16 (STA_IPV6), or len(1) | name (STA_NAME, 1 to
 * 255 bytes, no NUL): the SOCKS5 address types. */
enum stream_atyp { STA_IPV4 = 1, STA_NAME = 3, STA_IPV6 = 4 };

struct stream_target {
    uint8_t atyp;
    uint16_t port;
    uint8_t addr[16]; /* STA_IPV4, STA_IPV6 */
    char name[256];   /* STA_NAME, NUL-terminated */
};

/* Write t as open args into out (at least 3 + 1 + 255 bytes); returns the
 * length, or OVL_EINVAL for a bad type or name. */
OVL_WUR int stream_target_put(uint8_t *out, const struct stream_target *t);

/* Read open args (alen bytes) into t: 0, or OVL_EPROTO when they are not
 * exactly one well-formed target. */
OVL_WUR int stream_target_get(struct stream_target *t, const uint8_t *args, size_t alen);

/* Read a frame's type and sid: 0, or OVL_EPROTO when f is too short or of
 * an unknown type. For SF_OPEN, *args / *alen give the open args. */
OVL_WUR int stream_frame_peek(const uint8_t *f, size_t len, uint8_t *type, const uint8_t **sid,
                              const uint8_t **args, size_t *alen);

/* Write a SF_RESET frame for sid into f (STREAM_HDR + 1 bytes), for a
 * frame that names no stream we have; returns its length. */
size_t stream_reset_frame(uint8_t *f, const uint8_t sid[STREAM_SID], enum stream_reason why);

#endif
