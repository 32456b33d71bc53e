/* cell.h - the wire format: link frames and fixed-size cells.
 *
 * Every link carries frames; a frame's first byte is its type:
 *
 *   FRAME_HS_INIT  handshake message 1 (initiator -> responder), see handshake.h
 *   FRAME_HS_RESP  handshake message 2 (responder -> initiator)
 *   FRAME_CELL     one sealed cell:  type(1) | counter(8, LE) | AEAD(cell, 1024) | tag(16)
 *   FRAME_CELL_BOUND  one cell as it is: type(1) | cell(1024), only on a link
 *                  bound to a transport that protects it (handshake.h, hs_bind)
 *
 * The AEAD binds type and counter as associated data and uses the counter as
 * its nonce, so replayed, reordered and tampered frames are told apart. A
 * cell is always OVL_CELL_LEN bytes before sealing, whatever it carries, so
 * every sealed frame on every link is FRAME_CELL_LEN bytes long, and every
 * cell frame of a bound link FRAME_BOUND_LEN. Stream
 * transports (TCP) prefix each frame with a 16-bit big-endian length;
 * datagram transports (QUIC DATAGRAM) carry one frame per datagram.
 * docs/PROTOCOL.md is the normative description.
 */
#ifndef OVL_CORE_CELL_H
#define OVL_CORE_CELL_H

#include <stddef.h>
#include <stdint.h>

#include "lib/crypto.h"
#include "lib/err.h"

#define OVL_PROTO_VERSION 1

/* 1024 bytes: 120 MB/s of bulk traffic is ~117k cells/s, inside the relay's
 * 200k cells/s budget (512-byte cells would need 234k), and a sealed cell plus
 * QUIC overhead still fits a 1200-byte datagram. See docs/PROTOCOL.md. */
#define OVL_CELL_LEN 1024
#define OVL_CELL_HDR 8
#define OVL_CELL_PAYLOAD (OVL_CELL_LEN - OVL_CELL_HDR) /* 1016 */

enum frame_type {
    FRAME_HS_INIT = 1,
    FRAME_HS_RESP = 2,
    FRAME_CELL = 3,
    FRAME_CELL_BOUND = 4,
};

#define FRAME_CELL_AD 9 /* type + counter: the associated data */
#define FRAME_CELL_LEN (FRAME_CELL_AD + OVL_CELL_LEN + OVL_AEAD_TAG) /* 1049 */
#define FRAME_BOUND_LEN (1 + OVL_CELL_LEN)                         /* 1025 */
#define OVL_FRAME_MAX 1280 /* no frame may be longer; longer ones close the link */
#define OVL_FRAME_LENHDR 2 /* length prefix on stream transports */

/* Cell commands. Link-level ones are handled by the link itself; the rest go
 * to the role that registered them with the dispatcher. Ranges are reserved so
 * that later features (cover cells, acks, stream data) fit without a new
 * cell format: chain-level commands carry those inside the onion layers. */
enum cell_cmd {
    CELL_PADDING = 0,  /* link padding: discarded by the receiving link */
    CELL_HELLO = 1,    /* first cell from the initiator: confirms its keys */
    CELL_PING = 2,     /* heartbeat request, echoed back as CELL_PONG */
    CELL_PONG = 3,
    /* 4..31 reserved for link-level use */
    CELL_CHAIN_SETUP = 32,     /* one-pass chain setup (issue: chains) */
    CELL_CHAIN_SETUP_ACK = 33,
    CELL_CHAIN_FWD = 34,       /* data toward the exit: one onion layer per hop */
    CELL_CHAIN_BACK = 35,      /* data toward the sender */
    CELL_CHAIN_DESTROY = 36,
    CELL_CHAIN_NOTICE = 37,    /* failure notice travelling back (churn) */
    CELL_CHAIN_DELIVER = 38,   /* exit -> destination: one end-to-end fragment */
    CELL_CHAIN_INTRO = 39,     /* exit -> introduction relay: a delivery ID for a cookie */
    /* 40..63 reserved for chain-level use */
    CELL_DIR_REQUEST = 64,     /* directory (bootstrap) request */
    CELL_DIR_REPLY = 65,
    /* 66..127 reserved for directory and control of the overlay */
    /* 128..255 unassigned */
};
#define CELL_CMD_COUNT 256
#define CELL_CHAIN_FIRST 32 /* chain-level commands: routed by (link, chain_id) */
#define CELL_CHAIN_LAST 63

/* A decoded cell. len counts the meaningful payload bytes; the rest of the
 * 1016-byte payload is zero on the wire (inside the AEAD). */
struct cell {
    uint32_t chain_id; /* link-local chain identifier; 0 for link-level cells */
    uint8_t cmd;       /* enum cell_cmd */
    uint8_t flags;     /* must be zero in version 1 */
    uint16_t len;      /* <= OVL_CELL_PAYLOAD */
    uint8_t payload[OVL_CELL_PAYLOAD];
};

/* Serialise c into exactly OVL_CELL_LEN bytes (unused payload zeroed).
 * OVL_EINVAL if c->len > OVL_CELL_PAYLOAD or c->flags != 0. */
int cell_encode(uint8_t out[OVL_CELL_LEN], const struct cell *c) OVL_WUR;

/* Parse OVL_CELL_LEN bytes into c. OVL_EPROTO if len exceeds the payload,
 * flags are non-zero or a payload byte past len is non-zero (c is zeroed). */
int cell_decode(struct cell *c, const uint8_t in[OVL_CELL_LEN]) OVL_WUR;

/* Return the name of a command ("ping", "chain_fwd", ...) or "unknown". */
const char *cell_cmd_name(uint8_t cmd);

/* Seal cell bytes as a FRAME_CELL: out receives FRAME_CELL_LEN bytes; cell
 * may be out + FRAME_CELL_AD (sealed in place). */
int frame_seal(uint8_t out[FRAME_CELL_LEN], const struct ovl_aead *key, uint64_t counter,
               const uint8_t cell[OVL_CELL_LEN]) OVL_WUR;

/* Read the counter of a FRAME_CELL frame; OVL_EPROTO unless len == FRAME_CELL_LEN
 * and the type byte is FRAME_CELL. */
int frame_counter(const uint8_t *frame, size_t len, uint64_t *counter) OVL_WUR;

/* Open a FRAME_CELL (length already checked by frame_counter) into cell;
 * OVL_ECRYPTO if the tag fails. */
int frame_open(uint8_t cell[OVL_CELL_LEN], const struct ovl_aead *key, const uint8_t *frame,
               size_t len) OVL_WUR;

/* Return the cell bytes of a FRAME_CELL_BOUND frame, or NULL unless len is
 * FRAME_BOUND_LEN and the type byte FRAME_CELL_BOUND. */
static inline const uint8_t *frame_bound_cell(const uint8_t *frame, size_t len)
{
    return frame && len == FRAME_BOUND_LEN && frame[0] == FRAME_CELL_BOUND ? frame + 1 : NULL;
}

#endif
