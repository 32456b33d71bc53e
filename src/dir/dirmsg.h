/* dirmsg.h - directory messages carried in CELL_DIR_REQUEST / CELL_DIR_REPLY.
 *
 * A directory message can be larger than one cell, so each cell carries a
 * fragment:  req_id(4) | index(2) | count(2) | data  (all LE), with data
 * filling the rest of the cell's len. Fragments of one message travel in
 * order on one link (links are in-order); index runs 0..count-1 and count is
 * at most DIRMSG_MAX_FRAGS. A reply has the req_id of its request. Every
 * fragment but the last carries exactly DIRMSG_FRAG_DATA bytes, none is
 * empty, and chain_id is 0.
 *
 * The reassembled message starts with op(1). A request continues with the
 * op's arguments; a reply with status(1) (enum dirmsg_status) and the op's
 * result:
 *   DIR_REGISTER   req: signed descriptor        rep: -
 *   DIR_HEARTBEAT  req: -                        rep: - (STATUS_UNKNOWN: register again)
 *   DIR_LIST       req: -                        rep: DOC_LIST document
 *   DIR_CHAIN      req: length(1) | backups(1) | exclude(32, zero = none)
 *                                                rep: DOC_CHAIN document
 *   DIR_LOOKUP     req: id_pk(32)                rep: signed descriptor
 *   DIR_REPORT     req: id_pk(32): that relay failed for the requester
 *                                                rep: - (UNKNOWN: not listed)
 *   DIR_IDESC      req: inbound descriptor (idesc.h), passed on by the exit
 *                  of the hidden node's chain    rep: - (BAD: malformed,
 *                  badly signed, expired or future; REFUSED: a relay's,
 *                  or not newer than the one held; FULL: a cap)
 *   DIR_SYNC       req: -                        rep: DOC_SYNC document (REFUSED:
 *                  the requester is not one of our configured bootstraps)
 * A DIR_LOOKUP of a hidden node answers its inbound descriptor instead of
 * a descriptor (told apart by the first byte, the version: 1, where a
 * descriptor has 2).
 * The requester is the authenticated peer of the link: a relay registers and
 * heartbeats only itself.
 *
 * Besides the codec (fragment, reassemble), this module puts a whole
 * message on a link (dirmsg_send) and hands out request IDs
 * (dirmsg_next_id): every directory message leaves through here, the
 * requests of the directory client and publisher and the bootstrap's
 * replies alike.
 */
#ifndef OVL_DIR_DIRMSG_H
#define OVL_DIR_DIRMSG_H

#include <stddef.h>
#include <stdint.h>

#include "core/cell.h"
#include "lib/err.h"

struct link;

#define DIRMSG_FRAG_HDR  8
#define DIRMSG_FRAG_DATA (OVL_CELL_PAYLOAD - DIRMSG_FRAG_HDR) /* 1008 */
#define DIRMSG_MAX_FRAGS 300                                  /* > 256 KiB */
#define DIRMSG_MAX_LEN   (DIRMSG_MAX_FRAGS * DIRMSG_FRAG_DATA)

enum dirmsg_op {
    DIR_REGISTER = 1,
    DIR_HEARTBEAT = 2,
    DIR_LIST = 3,
    DIR_CHAIN = 4,
    DIR_LOOKUP = 5,
    DIR_REPORT = 6,
    DIR_IDESC = 7,
    DIR_SYNC = 8, /* req: -  rep: DOC_SYNC; only between configured bootstraps */
};

enum dirmsg_status {
    DIR_STATUS_OK = 0,
    DIR_STATUS_BAD = 1,       /* malformed request or descriptor */
    DIR_STATUS_UNKNOWN = 2,   /* not registered / no such node */
    DIR_STATUS_FULL = 3,      /* a cap is reached */
    DIR_STATUS_NO_RELAYS = 4, /* not enough live relays for the chain */
    DIR_STATUS_REFUSED = 5,   /* not a bootstrap, or not allowed */
    DIR_STATUS_BUSY = 6,      /* over the link's request rate, or the reply does not fit now */
    DIR_STATUS_ADDRESS = 7,   /* the descriptor names an address that is not public */
};

/* Fill cell c (cmd and chain_id 0 set by the caller or here) with fragment
 * index of message msg (len bytes) for req_id. Returns the number of
 * fragments the message needs through *count. OVL_ETOOBIG above
 * DIRMSG_MAX_LEN, OVL_EINVAL for an index out of range. */
int dirmsg_fragment(struct cell *c, uint8_t cmd, uint32_t req_id, const uint8_t *msg, size_t len,
                    uint16_t index, uint16_t *count) OVL_WUR;

/* Reassembly of one message at a time per (link, direction). */
struct dirmsg_rx {
    uint32_t req_id;
    uint16_t next, count;
    uint8_t *buf; /* malloc'd, grows to at most DIRMSG_MAX_LEN */
    size_t len, cap;
};

/* Feed one fragment. Returns 1 with *msg and *len set (owned by rx until the
 * next call or dirmsg_rx_free) when a message is complete, 0 when more
 * fragments are needed, OVL_EPROTO for a malformed or out-of-order
 * fragment (rx is reset), OVL_ETOOBIG past max_len (rx is reset too).
 * *req_id is the fragment's req_id whenever its header could be read, also
 * on failure, so that a bad request can be answered. */
int dirmsg_rx_feed(struct dirmsg_rx *rx, const struct cell *c, size_t max_len, uint32_t *req_id,
                   const uint8_t **msg, size_t *len) OVL_WUR;

/* Release rx's buffer (NULL-safe). */
void dirmsg_rx_free(struct dirmsg_rx *rx);

/* Send message msg (len bytes, lent for the call) for req_id as cmd's
 * fragments on l: all of them or none, so that two messages never
 * interleave on a link. Returns 0, OVL_EAGAIN when l cannot take them all
 * now, or dirmsg_fragment's / link_send's error; if sending fails after the
 * first fragment, l is closed (LC_QUEUE_FULL): the peer would reassemble
 * garbage. */
int dirmsg_send(struct link *l, uint8_t cmd, uint32_t req_id, const uint8_t *msg,
                size_t len) OVL_WUR;

/* Advance *last to the next request ID and return it; never 0, so that 0
 * can stand for "no request". */
uint32_t dirmsg_next_id(uint32_t *last);

#endif
