/* stsock.h - a TCP socket joined to a stream (stream.h): what the socket
 * reads goes into the stream's send ring, what the stream receives is
 * written to the socket, each side's end (FIN) is passed on, and each
 * side's backpressure is the other's: a socket whose writes back up gives
 * the peer no credit, a stream without credit stops the socket's reads.
 *
 * An end that connects to its target (an exit, a service) dials with
 * stsock_dial(): an IP literal at once, a name once libuv's thread pool
 * resolved it, each step within STSOCK_DIAL_MS (the owner's tick enforces
 * deadline_ms).
 *
 * Ownership: the owner embeds struct stsock in its record, makes the TCP
 * handle with stsock_init() and passes the stream's events on with
 * stsock_event(). stsock_close() closes the socket and cancels a dial;
 * the owner's closed() callback then runs once libuv is done with the
 * handle and with any resolution, and the record may be freed there.
 * The stream is the owner's: stsock never frees it. Reads land in the
 * stream's ring and writes are made from it: nothing is copied or
 * allocated per read or write.
 *
 * Writes: what a stream receives during a loop turn is written once, after
 * the turn's I/O (one check handle for all the sockets of an owner, struct
 * stsock_env), with uv_try_write, and the bytes the socket took give the
 * peer credit at once; only what the socket cannot take now waits for it
 * to drain. A write per received frame would cost a system call per cell,
 * and a write left to complete later would hold its whole window's credit
 * until the reader took its last byte.
 */
#ifndef OVL_CHAIN_STSOCK_H
#define OVL_CHAIN_STSOCK_H

#include <uv.h>

#include "chain/stream.h"

/* Bits of struct stsock's flags. */
enum {
    SSF_READING = 1u << 0,   /* uv_read_start is on */
    SSF_WRITING = 1u << 1,   /* a uv_write from the receive ring is out */
    SSF_EOF_IN = 1u << 2,    /* the socket said EOF: the stream got its FIN */
    SSF_SHUT = 1u << 3,      /* the peer's FIN passed on (uv_shutdown) */
    SSF_CLOSING = 1u << 4,   /* stsock_close ran */
    SSF_CONNECTED = 1u << 5, /* the socket is up: read and write */
    SSF_SHUT_DONE = 1u << 6, /* that shutdown completed */
    SSF_RESOLVING = 1u << 7, /* stsock_dial's getaddrinfo is out: closed() waits for it */
    SSF_DIALING = 1u << 8,   /* stsock_dial's connect is out */
    SSF_GONE = 1u << 9,      /* the handle's close callback ran */
    SSF_DIRTY = 1u << 10,    /* on env->dirty: write at the end of the turn */
};

#define STSOCK_DIAL_MS 10000 /* resolving, and then connecting, each */

struct stsock;

/* What the sockets of one owner share: the check handle that writes those
 * that received during the loop turn (the dirty list). */
struct stsock_env {
    uv_check_t check;
    struct stsock *dirty; /* utlist, through dprev/dnext */
};

/* Return a new env on loop, or NULL (no memory). */
struct stsock_env *stsock_env_new(uv_loop_t *loop);

/* Stop and close *e, freed once libuv is done with it; *e becomes NULL.
 * Every socket of it must have been closed first (stsock_close). NULL is
 * fine. */
void stsock_env_close(struct stsock_env **e);

struct stsock {
    uv_tcp_t tcp;
    uv_write_t wr;
    uv_shutdown_t sh;
    struct stream *s; /* the owner's; NULL once the owner let it go */
    struct stsock_env *env;
    struct stsock *dprev, *dnext; /* on env->dirty while SSF_DIRTY */
    size_t writing;               /* bytes of the write that is out */
    unsigned flags;               /* SSF_* */
    /* The socket failed (err < 0, a libuv code) or both ends finished
     * (err 0): the owner decides what becomes of the stream. */
    void (*done)(struct stsock *ss, int err);
    void (*closed)(struct stsock *ss); /* the handle is closed */
    /* stsock_dial: */
    uv_connect_t conn;
    uv_getaddrinfo_t gai;
    uint16_t port;
    uint64_t deadline_ms;  /* of the resolution or connect under way */
    unsigned *n_resolving; /* the owner's count of names being resolved, or NULL */
    bool (*allow)(const struct stsock *ss, const uint8_t *a, size_t len); /* NULL: any */
    void (*dialed)(struct stsock *ss, int why);
};

/* Initialise ss->tcp on env's loop for stream s; done and closed as
 * above. Returns 0 or a negative libuv code (nothing to close then). */
int stsock_init(struct stsock *ss, struct stsock_env *env, struct stream *s,
                void (*done)(struct stsock *, int), void (*closed)(struct stsock *));

/* Connect ss (fresh from stsock_init) to target t: a literal, or each
 * address its name resolves to in the resolver's order until allow (NULL:
 * any) takes one (len 4 or 16, network order; t's port). dialed(ss, why)
 * follows once, unless stsock_close ran first: why is 0 when connected
 * (call stsock_start), else the enum stream_reason to give the peer.
 * Returns 0, or that reason when nothing started (no callback then). */
int stsock_dial(struct stsock *ss, const struct stream_target *t,
                bool (*allow)(const struct stsock *, const uint8_t *, size_t),
                void (*dialed)(struct stsock *, int));

/* The reason a libuv error of a connect gives the stream's peer. */
enum stream_reason stsock_reason(int err);

/* The socket is connected (accepted, or its connect completed): start
 * moving bytes. Returns 0 or a negative libuv code. */
int stsock_start(struct stsock *ss);

/* Pass a stream event on (SE_READABLE, SE_WRITABLE). */
void stsock_event(struct stsock *ss, enum stream_event ev);

/* Close the socket (once), cancelling a dial; closed() follows. The stream is left alone,
 * but a write from its receive ring may be out: close the socket before
 * freeing the stream (libuv cancels the write at once). */
void stsock_close(struct stsock *ss);

#endif
