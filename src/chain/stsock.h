/* stsock.h - a TCP socket joined to a stream (stream.h): what the socket
 * reads goes into the stream's send ring, what the stream receives is
 * written to the socket, each side's end (FIN) is passed on, and each
 * side's backpressure is the other's: a socket whose writes back up gives
 * the peer no credit, a stream without credit stops the socket's reads.
 *
 * Ownership: the owner embeds struct stsock in its record, makes the TCP
 * handle with stsock_init() and passes the stream's events on with
 * stsock_event(). stsock_close() closes the socket; the owner's closed()
 * callback then runs once libuv is done with the handle, and the record
 * may be freed there. The stream is the owner's: stsock never frees it.
 * Reads land in the stream's ring and writes are made from it: nothing is
 * copied or allocated per read or write.
 */
#ifndef OVL_CHAIN_STSOCK_H
#define OVL_CHAIN_STSOCK_H

#include <uv.h>

#include "chain/stream.h"

/* Bits of struct stsock's flags. */
enum {
    SSF_READING = 1u << 0,  /* uv_read_start is on */
    SSF_WRITING = 1u << 1,  /* a uv_write from the receive ring is out */
    SSF_EOF_IN = 1u << 2,   /* the socket said EOF: the stream got its FIN */
    SSF_SHUT = 1u << 3,     /* the peer's FIN passed on (uv_shutdown) */
    SSF_CLOSING = 1u << 4,  /* stsock_close ran */
    SSF_CONNECTED = 1u << 5, /* the socket is up: read and write */
    SSF_SHUT_DONE = 1u << 6, /* that shutdown completed */
};

struct stsock {
    uv_tcp_t tcp;
    uv_write_t wr;
    uv_shutdown_t sh;
    struct stream *s; /* the owner's; NULL once the owner let it go */
    size_t writing;   /* bytes of the write that is out */
    unsigned flags;   /* SSF_* */
    /* The socket failed (err < 0, a libuv code) or both ends finished
     * (err 0): the owner decides what becomes of the stream. */
    void (*done)(struct stsock *ss, int err);
    void (*closed)(struct stsock *ss); /* the handle is closed */
};

/* Initialise ss->tcp on loop for stream s; done and closed as above.
 * Returns 0 or a negative libuv code (nothing to close then). */
int stsock_init(struct stsock *ss, uv_loop_t *loop, struct stream *s,
                void (*done)(struct stsock *, int), void (*closed)(struct stsock *));

/* The socket is connected (accepted, or its connect completed): start
 * moving bytes. Returns 0 or a negative libuv code. */
int stsock_start(struct stsock *ss);

/* Pass a stream event on (SE_READABLE, SE_WRITABLE). */
void stsock_event(struct stsock *ss, enum stream_event ev);

/* Close the socket (once); closed() follows. The stream is left alone,
 * but a write from its receive ring may be out: close the socket before
 * freeing the stream (libuv cancels the write at once). */
void stsock_close(struct stsock *ss);

#endif
