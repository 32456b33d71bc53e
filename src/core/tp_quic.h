/* tp_quic.h - the QUIC transport (ngtcp2 + GnuTLS), scheme "quic".
 *
 * Frames ride one bidirectional stream per connection, each as a u16
 * big-endian length and the bytes, as on TCP; once the owner calls
 * tp_lanes, the cells of chains ride up to four unidirectional streams
 * each way (lanes, one per chain, docs/PROTOCOL.md 4.1), so that a lost
 * packet stalls only the chains of its lane. TLS authenticates nothing
 * here: a node's first listener makes a throwaway self-signed certificate
 * that all its listeners show, and dialers do not check it; the link
 * handshake on top proves who the peer is, as on
 * every transport. A listener answers a new client with a Retry first, so
 * no state is kept for an address that has not shown it receives; packets
 * for unknown connections get a rate-limited stateless reset; anything
 * else it cannot use is dropped and counted. The connection closes by
 * itself when the peer is silent for tp_env.idle_timeout_ms (30 s when 0),
 * and keeps a live but quiet peer with PINGs at half that.
 *
 * A listener holds at most TP_QUIC_PENDING connections that are not yet
 * handed to accept(). Once half of those slots are taken, an address block
 * (IPv4 /24, IPv6 /48, as the link layer counts them) holding
 * TP_QUIC_BLOCK_SHARE of them gets no more until one is done: its Initials
 * are refused, counted, and nothing is kept for them.
 */
#ifndef OVL_CORE_TP_QUIC_H
#define OVL_CORE_TP_QUIC_H

#include "core/transport.h"

#define TP_QUIC_PENDING     64 /* connections not yet accepted, per listener */
#define TP_QUIC_BLOCK_SHARE 8  /* of those, one block's once half are taken */

extern const struct tp_ops tp_quic_ops;

/* What a QUIC listener did with datagrams that were not for a connection. */
struct tp_quic_stats {
    uint64_t datagrams;       /* every datagram received */
    uint64_t dropped;         /* unusable: garbage, truncated, bad token, over a rate */
    uint64_t refused;         /* Initials refused: every pending slot taken */
    uint64_t refused_block;   /* Initials refused: their block had its share */
    uint64_t retries;         /* Retry packets sent */
    uint64_t resets;          /* stateless resets sent */
    uint64_t vneg;            /* version negotiations sent */
    uint64_t handshakes;      /* connections handed to accept() */
    uint64_t streams_refused; /* connections closed: their peer opened streams past the lanes */
    unsigned conns;           /* connections alive now (handshaking or not) */
};

/* Return the bytes t (a QUIC connection) holds in buffers of its own: send
 * blocks and the receive buffer; 0 for a quiet connection after tp_trim,
 * or once a small exchange was acknowledged, for the send side. */
size_t tp_quic_buffers(const struct transport *t);

/* What ngtcp2 knows of a connection's path now (ngtcp2_conn_info), and the
 * packets carrying the link's stream it declared lost so far. */
struct tp_quic_info {
    uint64_t cwnd;      /* congestion window, bytes */
    uint64_t in_flight; /* bytes sent and not yet acknowledged or lost */
    uint64_t srtt_us, min_rtt_us;
    uint64_t lost;      /* packets of the streams declared lost (spurious ones too) */
    unsigned lanes;     /* lanes we send cells on (0 before tp_lanes, or a peer allowing none) */
    unsigned lanes_out; /* of those, opened: they carried a cell */
    unsigned lanes_in;  /* lanes of the peer that brought bytes */
};

/* Fill out for t; OVL_EINVAL when t is no QUIC connection or its stream is
 * not open yet. */
int tp_quic_info(const struct transport *t, struct tp_quic_info *out);

/* Copy l's counters into out; OVL_EINVAL when l is not a QUIC listener. */
int tp_quic_listener_stats(const struct tp_listener *l, struct tp_quic_stats *out);

#endif
