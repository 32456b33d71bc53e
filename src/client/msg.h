/* msg.h - end-to-end messages: encryption, fragments, reassembly, inbox.
 *
 * Internal to the client role (its files use it; tests call it directly).
 * No I/O: the caller passes clocks and keys in.
 *
 * Blob (what is fragmented), sealed message format version 2:
 *     eph_pk(32) | ENC(k, ad = msg_id, flags(1) | sent(8, LE) | [reply_pk(32)] | message)
 *     k = first output of KDF2(H("ovl-e2e-v2"), DH(eph_sk, onion_pk) || eph_pk || onion_pk)
 * ENC is ChaCha20-Poly1305-IETF with a zero nonce (k is fresh per message).
 * sent is the sender's wall clock when it sealed the message, in whole
 * seconds since the Unix epoch (sent_ms below is sent x 1000); the
 * receiver refuses a message sealed more than replay_window away from its
 * own clock, and remembers each one it delivered until that window has
 * passed, so a replayed copy is never delivered twice.
 *
 * Fragment i of a blob of total bytes carries blob bytes
 * [i * MSG_FRAG_DATA, min((i + 1) * MSG_FRAG_DATA, total)):
 *     msg_id(16) | offset(4, LE) | total(4, LE) | bytes
 * A receiver accepts only that grid, so two fragments either are the same
 * fragment or do not overlap.
 *
 * Acknowledgement (receiver -> sender, back along the sender's chain):
 *     MSG_ACK_TYPE(1) | msg_id(16) | tag(16),  tag = KDF_LABEL(k, "ovl-e2e-ack-v2")[0..16)
 * Only the two ends know k, so no relay can forge an acknowledgement.
 *
 * Stream records (srec.h) travel beside fragments both ways and begin
 * with MSG_STREAM_TYPE: no message ID begins with it (client_send draws
 * again), so a destination tells them from fragments by their first byte.
 *
 * Reply (receiver -> sender, the same way: docs/PROTOCOL.md 19.12): each
 * fragment is an ordinary one whose message ID rid is fresh and has
 * rid[0] = MSG_REPLY_TYPE, so its first byte types the record as an
 * acknowledgement's does; the blob is
 *     id(16) | ENC(kr, ad = id, message)
 *     rkey = KDF_LABEL(k, "ovl-e2e-reply-v2"),  kr = first output of KDF2(rkey, rid)
 * where id is the message answered and k its key. The receiver keeps rkey
 * in the message's tombstone, the sender in an entry of kind MSG_SENT;
 * both are wiped when forgotten.
 *
 * Reassembly is charged for what arrived, not for the total a first
 * fragment claims: bookkeeping (4 bytes per claimed fragment) at the
 * first fragment, then buffer room as fragments arrive (at most twice
 * what arrived). Each delivering link, and each delivery chain on it,
 * holds at most its share of the partial messages and their bytes (see
 * msg_rx_init), so one of them cannot starve the others.
 */
#ifndef OVL_CLIENT_MSG_H
#define OVL_CLIENT_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chain/body.h"
#include "client/client.h"
#include "dir/dir.h"

#define MSG_FRAG_HDR     24
#define MSG_FRAG_DATA    (BODY_DATA_MAX - MSG_FRAG_HDR) /* 828 */
#define MSG_FRAG_MAX     BODY_DATA_MAX
#define MSG_PT_HDR       (1 + 8)                                      /* flags, sent */
#define MSG_BLOB_MIN     (OVL_X25519_LEN + MSG_PT_HDR + OVL_AEAD_TAG) /* 57 */
#define MSG_OVERHEAD_MAX (MSG_BLOB_MIN + OVL_ED25519_PK)              /* 89: with reply_pk */
#define MSG_ACK_TAG      16
#define MSG_ACK_TYPE     1
#define MSG_ACK_LEN      (1 + CLIENT_MSG_ID + MSG_ACK_TAG) /* 33 */
#define MSG_KEY          32                                /* rkey */
#define MSG_REPLY_TYPE   2
#define MSG_REPLY_MIN    (CLIENT_MSG_ID + 1 + OVL_AEAD_TAG) /* 33: the smallest blob */
#define MSG_STREAM_TYPE  3 /* a stream record, either way (srec.h) */

/* Encrypt message m (len bytes, 1..) to a destination whose onion key is
 * onion_pk, stamped with wall_ms (our wall clock, ms since the Unix epoch;
 * the stamp keeps whole seconds); reply_pk (may be NULL) is disclosed to
 * the receiver. *blob is malloc'd (the caller frees it); ack (may be NULL)
 * receives the tag the receiver's acknowledgement will carry, rkey (may be
 * NULL) the key of the replies to it. OVL_ECRYPTO for a low-order onion key. */
int msg_seal(uint8_t **blob, size_t *blob_len, const uint8_t onion_pk[OVL_X25519_LEN],
             const uint8_t id[CLIENT_MSG_ID], const uint8_t *reply_pk, const uint8_t *m, size_t len,
             uint64_t wall_ms, uint8_t ack[MSG_ACK_TAG], uint8_t rkey[MSG_KEY]) OVL_WUR;

/* Decrypt a blob with each key in turn (current first). On success *out is
 * a malloc'd client_msg (id, sent_ms, has_from/from, len, data; received_ms left 0)
 * and ack and rkey (each may be NULL) as for msg_seal. OVL_ECRYPTO when no
 * key opens it, OVL_EPROTO for a bad plaintext. */
int msg_open(struct client_msg **out, const uint8_t *blob, size_t blob_len,
             const uint8_t id[CLIENT_MSG_ID], const struct dir_onion *keys, unsigned n_keys,
             uint8_t ack[MSG_ACK_TAG], uint8_t rkey[MSG_KEY]) OVL_WUR;

/* Return the number of fragments of a blob of blob_len bytes. */
size_t msg_frag_count(size_t blob_len);

/* Write fragment idx of blob into out (MSG_FRAG_MAX bytes); return its length. */
size_t msg_frag_build(uint8_t out[MSG_FRAG_MAX], const uint8_t id[CLIENT_MSG_ID],
                      const uint8_t *blob, size_t blob_len, size_t idx);

/* What msg_rx_fragment did with a fragment. */
enum msg_rx_result {
    MSG_RX_PARTIAL = 0, /* stored; the message is not complete yet */
    MSG_RX_DONE,        /* completed, decrypted and put in the inbox: acknowledge */
    MSG_RX_AGAIN,       /* the last fragment of a message delivered before: acknowledge again */
    MSG_RX_IGNORED,     /* a duplicate, or for a message already finished or dropped */
    MSG_RX_DROPPED,     /* the fragment (and its message) was dropped and counted */
};

struct msg_part;
struct msg_src;

/* The kinds of entries a receiver keeps by message ID. */
enum msg_kind {
    MSG_LIVE, /* being reassembled */
    MSG_DONE, /* delivered: a tombstone, kept until its sent_ms + replay_window */
    MSG_JUNK, /* dropped as malformed or undecryptable: its late fragments are ignored */
    MSG_SENT, /* a message we sent: its rkey, kept until its sealing time + replay_window */
    MSG_KINDS
};

/* Where and when a fragment arrived. */
struct msg_from {
    uint64_t link;    /* serial of the link it came on */
    uint32_t chain;   /* its delivery ID on that link */
    uint64_t now_ms;  /* monotonic clock */
    uint64_t wall_ms; /* wall clock, ms since the Unix epoch */
    bool reply;       /* a reply fragment back on our chain (link, chain: its first hop, ID) */
};

/* Receiver state: messages being reassembled, tombstones and the inbox. */
struct msg_rx {
    uint64_t max_message, inbox_bytes_max, window_ms;
    uint64_t chain_bytes_max, link_bytes_max; /* shares of inbox_bytes_max */
    uint32_t inbox_max, timeout_ms, tomb_max;
    uint32_t chain_parts_max, link_parts_max; /* shares of inbox_max */
    struct client_stats *st;                  /* counters are added here (not owned) */

    struct msg_part *by_id;           /* uthash: every entry */
    struct msg_part *list[MSG_KINDS]; /* utlist by kind: live, junk, sent oldest first,
                                         done by expiry */
    uint32_t count[MSG_KINDS];
    struct msg_src *srcs; /* utlist: chains and links with partial messages */
    uint64_t part_bytes;  /* what live entries cost */

    struct client_msg **inbox; /* ring of inbox_max */
    uint32_t in_head, in_count;
    uint64_t in_bytes;
};

/* Set up rx with o's caps; counters go to st. The shares: a delivery
 * chain may hold inbox_messages / 8 partial messages and inbox_bytes / 8
 * bytes of them, a link inbox_messages / 4 and inbox_bytes / 4 (at least
 * one message each, and room for one of max_message, within inbox_bytes). */
int msg_rx_init(struct msg_rx *rx, const struct client_opts *o, struct client_stats *st) OVL_WUR;

/* Free everything rx holds (NULL-safe, idempotent). */
void msg_rx_free(struct msg_rx *rx);

/* Take one fragment (len bytes, hostile) that came as from says. keys
 * are tried when it completes a message. On MSG_RX_DONE and MSG_RX_AGAIN,
 * ack (MSG_ACK_LEN bytes) is the acknowledgement to send back. A message
 * is delivered only when it decrypts and its sent_ms is within
 * replay_window of from->wall_ms; it then stays known (tombstone) until
 * sent_ms + replay_window, so a retransmitted or replayed copy is
 * acknowledged again, not delivered twice. When all `tombstones` entries
 * are still in their window, a new message is refused (refused_tombstones)
 * rather than one of them forgotten. With from->reply it is a reply's
 * fragment: opened with the rkey msg_rx_sent kept (keys unused), it enters
 * the inbox with reply_to set (ack is written but means nothing). */
enum msg_rx_result msg_rx_fragment(struct msg_rx *rx, const struct msg_from *from,
                                   const uint8_t *frag, size_t len, const struct dir_onion *keys,
                                   unsigned n_keys, uint8_t ack[MSG_ACK_LEN]);

/* Remember id, a stream's open sealed at sent_ms, as delivered (a
 * tombstone) until sent_ms + replay_window, so a replay cannot open the
 * stream twice: 0 when new, OVL_ETIMEDOUT when sent_ms is outside the
 * window of wall_ms (dropped_stale), OVL_EEXIST when remembered already,
 * OVL_ENOMEM when every tombstone is still in its window (counted as
 * for messages). */
int msg_rx_seen(struct msg_rx *rx, const uint8_t id[CLIENT_MSG_ID], uint64_t sent_ms,
                uint64_t wall_ms) OVL_WUR;

/* Keep rkey for the replies to message id, which we sealed at wall_ms,
 * until wall_ms + replay_window. When `tombstones` keys are kept the
 * oldest is forgotten (reply_keys_dropped). */
void msg_rx_sent(struct msg_rx *rx, const uint8_t id[CLIENT_MSG_ID], const uint8_t rkey[MSG_KEY],
                 uint64_t wall_ms);

/* Seal m (len bytes, 1..) as a reply to message id, which we received:
 * rid is its fresh ID, *blob (malloc'd) what goes out in its fragments,
 * path->link and path->chain the link serial and delivery ID id came on.
 * OVL_ENOENT when id is not remembered (never delivered here, or its
 * replay window is over), OVL_EPERM when it came as a reply. */
int msg_reply_seal(struct msg_rx *rx, const uint8_t id[CLIENT_MSG_ID], const uint8_t *m, size_t len,
                   uint8_t rid[CLIENT_MSG_ID], uint8_t **blob, size_t *blob_len,
                   struct msg_from *path) OVL_WUR;

/* Drop messages whose reassembly started timeout_ms ago or more (now_ms,
 * monotonic), junk markers as old, and tombstones and sent keys whose
 * window ended by wall_ms. */
void msg_rx_expire(struct msg_rx *rx, uint64_t now_ms, uint64_t wall_ms);

/* Return the bytes rx holds: reassembly, tombstones, markers, keys, inbox. */
uint64_t msg_rx_held(const struct msg_rx *rx);

/* Move up to max inbox messages, oldest first, into out; return how many. */
size_t msg_rx_recv(struct msg_rx *rx, struct client_msg **out, size_t max);

#endif
