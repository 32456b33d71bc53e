/* srec.h - stream records: the frames of a stream to a node's services
 * (chain/stream.h), sealed end to end between the client and that node
 * (docs/PROTOCOL.md 20.6). They travel as the data of BODY_DELIVER to the
 * node and of chain_deliver / BODY_DELIVER_BACK from it, beside message
 * fragments and acknowledgements; their first byte, SREC_TYPE, tells them
 * apart (message IDs never begin with it, msg.h).
 *
 * Record (integers LE):
 *     type(1) = 3 | flags(1) | sid(8) | ctr(8) | [eph_pk(32)] | sealed
 *     sealed = ENC(k[dir], nonce(ctr), ad = every byte before it, [sent(8)] | frame)
 * flags bit 0 (SREC_F_OPEN): eph_pk and sent are there; only the opener's
 * records that carry SF_OPEN have them. sent is the opener's wall clock in
 * whole seconds. With the node's onion key onion_pk:
 *     ck = H("ovl-svc-v1")
 *     (k[SREC_FWD], k[SREC_BACK]) = KDF2(ck, DH(eph, onion) || eph_pk || onion_pk || sid)
 * ENC is ChaCha20-Poly1305-IETF. Each end seals under its own counter from
 * 0, one per record (a frame sent again is sealed again, under the next):
 * a nonce is never used twice under one key. The frame's sid must be the
 * record's. Only the open costs a public-key operation: the far end
 * derives the keys once and keeps them with the stream.
 *
 * No I/O and no allocation: callers pass the clocks, keys and buffers.
 */
#ifndef OVL_CLIENT_SREC_H
#define OVL_CLIENT_SREC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chain/stream.h"
#include "client/msg.h"

#define SREC_TYPE     MSG_STREAM_TYPE
#define SREC_F_OPEN   0x01
#define SREC_HDR      (2 + STREAM_SID + 8)        /* 18 */
#define SREC_OPEN_HDR (SREC_HDR + OVL_X25519_LEN) /* 50 */
#define SREC_MAX      BODY_DATA_MAX               /* 852 */
/* The largest frame each end sends: the opener's records may be opens. */
#define SREC_FWD_MTU  (SREC_MAX - SREC_OPEN_HDR - 8 - OVL_AEAD_TAG) /* 778 */
#define SREC_BACK_MTU (SREC_MAX - SREC_HDR - OVL_AEAD_TAG)          /* 818 */

enum srec_dir { SREC_FWD = 0, SREC_BACK = 1 }; /* to the node, from it */

/* One stream's keys. Secret: srec_wipe when done. */
struct srec {
    uint8_t key[2][OVL_AEAD_KEY];
    uint8_t eph[OVL_X25519_LEN]; /* the opener's public key */
    uint64_t ctr;                /* the next counter this end seals under */
    uint64_t sent;               /* the open's time, seconds */
};

/* Opener: fresh keys for stream sid to a node whose onion key is onion_pk,
 * its opens stamped with wall_ms. 0, or OVL_ECRYPTO for a low-order key. */
int srec_init(struct srec *r, const uint8_t onion_pk[OVL_X25519_LEN], const uint8_t sid[STREAM_SID],
              uint64_t wall_ms) OVL_WUR;

/* Seal frame f (len bytes, at most the direction's MTU) for direction dir
 * into out (SREC_MAX bytes); an SF_OPEN going forward makes an open
 * record. Returns the record's length. */
size_t srec_seal(struct srec *r, enum srec_dir dir, uint8_t *out, const uint8_t *f, size_t len);

/* Read a record's header (rec hostile): 0 with *sid (into rec) and *open
 * set, or OVL_EPROTO for a wrong type, unknown flags or a length outside
 * SREC_HDR + STREAM_HDR + OVL_AEAD_TAG (68) .. SREC_MAX. */
int srec_peek(const uint8_t *rec, size_t len, const uint8_t **sid, bool *open) OVL_WUR;

/* Open rec (len bytes, hostile) of direction dir with r's keys: the frame
 * is put in out (SREC_MAX bytes) at *f, *flen bytes; *sent_ms (may be
 * NULL) gets an open's time. OVL_ECRYPTO when it does not authenticate,
 * OVL_EPROTO when it is no record or its frame names another sid. */
int srec_open(const struct srec *r, enum srec_dir dir, const uint8_t *rec, size_t len, uint8_t *out,
              const uint8_t **f, size_t *flen, uint64_t *sent_ms) OVL_WUR;

/* Far end: make r from an open record, with each onion key in turn
 * (current first), and open it as srec_open does. */
int srec_accept(struct srec *r, const uint8_t *rec, size_t len, const struct dir_onion *keys,
                unsigned n_keys, uint8_t *out, const uint8_t **f, size_t *flen,
                uint64_t *sent_ms) OVL_WUR;

/* Wipe r's keys (NULL-safe). */
void srec_wipe(struct srec *r);

#endif
