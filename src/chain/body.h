/* body.h - what travels inside the onion: the ONION_BODY-byte body.
 *
 *   cmd(1) | flags(1, zero) | len(2, LE) | args and data (len bytes)
 *
 * Forward (sender -> exit):
 *   BODY_DELIVER   dest_pk(32) | data: the exit hands data to node dest in a
 *                  CELL_CHAIN_DELIVER cell (len - 32 <= BODY_DATA_MAX)
 *   BODY_DROP      cover: the exit discards it
 *   BODY_LOOP      loop cover: the exit answers with a BODY_LOOP_BACK
 *   BODY_EXTEND    next_pk(32) | setup header(ONION_HDR_LEN): read by a hop
 *                  that reported BODY_BROKEN (it has no next hop, so the
 *                  cell ends there); it sends the header to next as a new
 *                  CELL_CHAIN_SETUP and the chain goes on through next
 * Backward (a hop -> sender):
 *   BODY_SETUP_OK     originated by the exit when the setup reached it
 *   BODY_SETUP_FAIL   reason(1): originated by the hop that could not extend
 *   BODY_DELIVER_FAIL dest_pk(32) | reason(1): the exit could not reach dest
 *   BODY_LOOP_BACK    loop cover coming back: the sender discards it
 *   BODY_BROKEN       reason(1): the hop lost its link to the next hop (the
 *                     origin of this body tells the sender which position
 *                     failed); the hop keeps its part of the chain for
 *                     [relay] setup_timeout, waiting for a BODY_EXTEND
 *   BODY_DELIVER_BACK dest_pk(32) | data: dest sent data back (an end-to-end
 *                     acknowledgement) in a CELL_CHAIN_DELIVER under the
 *                     delivery ID; data at most BODY_DATA_MAX bytes
 *   BODY_STREAM_BACK  frame: one stream frame (chain/stream.h) from the exit's
 *                     end of a stream the sender opened with BODY_STREAM
 * Forward, streams:
 *   BODY_STREAM       frame: one stream frame for the exit's end of a
 *                     stream (chain/stream.h; the target in SF_OPEN's args)
 * Introduction relays (docs/PROTOCOL.md 22.2; the chain's exit is the
 * introduction relay I, its sender the hidden node H):
 *   BODY_INTRO_ESTABLISH  forward: cookie(16) | id_pk(32) | expires_ms(8, LE,
 *                     wall clock) | sig(64): H asks I to answer for cookie;
 *                     sig by id_pk over intro_sig_msg()
 *   BODY_INTRO_OK     backward: cookie(16): I took the cookie
 *   BODY_INTRO_FAIL   backward: cookie(16) | reason(1) (enum intro_reason)
 *   BODY_INTRO_DELIVER backward: handle(8) | data: one CELL_CHAIN_DELIVER
 *                     that arrived on a delivery bound to the cookie; the
 *                     handle is I's random name for that delivery
 *   BODY_INTRO_BACK   forward: handle(8) | data: I sends data on the
 *                     delivery the handle names, as a CELL_CHAIN_DELIVER
 *                     (data at most BODY_DATA_MAX bytes either way)
 *   BODY_PUBLISH      forward: an inbound descriptor (dir/idesc.h) of the
 *                     chain's sender: the exit hands it to its bootstraps
 *                     (dir_publish_idesc)
 *   BODY_PUBLISHED    backward: count(1): how many bootstraps it went to
 * The unused tail of a body is zero before encryption.
 */
#ifndef OVL_CHAIN_BODY_H
#define OVL_CHAIN_BODY_H

#include <stdint.h>
#include <string.h>

#include "chain/onion.h"
#include "lib/bytes.h"

#define BODY_HDR      4
#define BODY_DATA_MAX (ONION_BODY - BODY_HDR - OVL_ED25519_PK) /* 852 */
#define BODY_EXTEND_LEN (OVL_ED25519_PK + ONION_HDR_LEN)      /* 736 */

#define BODY_COOKIE        16 /* an introduction cookie: IDESC_COOKIE_LEN */
#define BODY_HANDLE        8  /* an introduction relay's name for one delivery */
#define BODY_INTRO_EXP     (BODY_COOKIE + OVL_ED25519_PK)          /* offset of expires_ms */
#define BODY_INTRO_SIG     (BODY_INTRO_EXP + 8)                    /* offset of sig */
#define BODY_INTRO_EST_LEN (BODY_INTRO_SIG + OVL_SIG_LEN)          /* 120 */
#define INTRO_SIG_DOMAIN   "ovl-intro-v1"                          /* 12 bytes, no NUL */
#define INTRO_SIG_MSG_LEN  (12 + OVL_ED25519_PK + BODY_COOKIE + 8) /* 68 */

enum body_cmd {
    BODY_DELIVER = 1,
    BODY_DROP = 2,
    BODY_LOOP = 3,
    BODY_EXTEND = 4,
    BODY_STREAM = 5,
    BODY_INTRO_ESTABLISH = 6,
    BODY_INTRO_BACK = 7,
    BODY_PUBLISH = 8, /* forward: an inbound descriptor for the exit's bootstraps (22.3) */
    BODY_SETUP_OK = 16,
    BODY_SETUP_FAIL = 17,
    BODY_DELIVER_FAIL = 18,
    BODY_DELIVER_BACK = 19,
    BODY_BROKEN = 20,
    BODY_LOOP_BACK = 21,
    BODY_STREAM_BACK = 22,
    BODY_INTRO_OK = 23,
    BODY_INTRO_FAIL = 24,
    BODY_INTRO_DELIVER = 25,
    BODY_PUBLISHED = 26, /* backward: count(1), the bootstraps it went to (22.3) */
    /* 9..15 forward, 27..31 backward: reserved */
};

/* Reasons in SETUP_FAIL / DELIVER_FAIL. */
enum body_reason {
    BODY_R_NO_ROUTE = 1, /* next hop / destination unknown to the directory */
    BODY_R_UNREACHABLE,  /* dial failed or timed out */
    BODY_R_LIMIT,        /* a cap was reached */
    BODY_R_PROTOCOL,     /* malformed setup or body */
    BODY_R_GONE,         /* a hidden destination's introduction ended: look it up again */
};

/* Reasons in INTRO_FAIL. */
enum intro_reason {
    INTRO_R_PROTOCOL = 1, /* bad signature, not signed for this relay, zero cookie */
    INTRO_R_EXPIRED,      /* expires_ms passed, or too far ahead (IDESC_MAX_LIFE_MS) */
    INTRO_R_BUSY,         /* the cookie is held already (by any chain) */
    INTRO_R_LIMIT,        /* the chain holds a cookie, or a cap was reached */
    INTRO_R_COUNT
};

/* CELL_CHAIN_DESTROY payload: reason(1), or empty (= DESTROY_R_NONE).
 * Receivers accept any payload and treat unknown reasons as DESTROY_R_NONE. */
enum chain_destroy_reason {
    DESTROY_R_NONE = 0,        /* the sender (or the hop before) asked */
    DESTROY_R_PROTOCOL = 1,    /* a setup that was malformed or did not open */
    DESTROY_R_LINK_CLOSED = 2, /* the link on the other side of the hop closed */
    DESTROY_R_EXPIRED = 3,     /* the chain's lifetime ended */
    DESTROY_R_SHUTDOWN = 4,    /* the hop is stopping */
    DESTROY_R_MAX = DESTROY_R_SHUTDOWN
};

/* Start a body: cmd, zero flags and len (the caller checked that len fits
 * in ONION_BODY - BODY_HDR); the args follow at body + BODY_HDR. */
static inline void body_hdr_put(uint8_t body[ONION_BODY], uint8_t cmd, uint16_t len)
{
    body[0] = cmd;
    body[1] = 0;
    st_le16(body + 2, len);
}

/* Return the length a received body claims, or -1 when its flags are not
 * zero or the length runs past the body (peer input: check before use). */
static inline int body_hdr_len(const uint8_t body[ONION_BODY])
{
    uint16_t len = ld_le16(body + 2);

    return body[1] != 0 || len > ONION_BODY - BODY_HDR ? -1 : (int)len;
}

/* Write into msg the INTRO_SIG_MSG_LEN bytes an INTRO_ESTABLISH signs:
 * INTRO_SIG_DOMAIN || relay_pk || cookie || expires_ms (8, LE). Binding
 * the relay's identity keeps a signature made for one relay from being
 * replayed at another; the domain keeps it from verifying as anything
 * else the node signs. */
static inline void intro_sig_msg(uint8_t msg[INTRO_SIG_MSG_LEN],
                                 const uint8_t relay_pk[OVL_ED25519_PK],
                                 const uint8_t cookie[BODY_COOKIE], uint64_t expires_ms)
{
    memcpy(msg, INTRO_SIG_DOMAIN, 12);
    memcpy(msg + 12, relay_pk, OVL_ED25519_PK);
    memcpy(msg + 12 + OVL_ED25519_PK, cookie, BODY_COOKIE);
    st_le64(msg + 12 + OVL_ED25519_PK + BODY_COOKIE, expires_ms);
}

#endif
