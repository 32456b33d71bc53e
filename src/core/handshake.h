/* handshake.h - the link handshake, a pure state machine with no I/O.
 *
 * Protocol "ovl-link-v1": Noise IK's message pattern over X25519, keyed
 * BLAKE2b for hashing and key derivation, ChaCha20-Poly1305 for the handshake
 * payloads. Static keys are the nodes' Ed25519 identities in X25519 form:
 *
 *   <- s                      (the initiator knows the responder's identity)
 *   -> e, es, s, ss, payload  (FRAME_HS_INIT, HS_INIT_LEN bytes)
 *   <- e, ee, se, payload     (FRAME_HS_RESP, HS_RESP_LEN bytes)
 *
 * The initiator's "s" is its Ed25519 public key, encrypted; both sides
 * convert it to X25519 for the DH. The payloads carry the AEAD suites and a
 * timestamp; the responder picks the suite for the transport keys. The
 * initiator confirms its keys with its first sealed cell (CELL_HELLO); the
 * responder treats the peer as authenticated only then, so a replayed
 * message 1 gains an attacker nothing. docs/PROTOCOL.md specifies each step.
 *
 * Over a transport that protects the frames itself (QUIC), both ends bind
 * the handshake to the transport's connection (hs_bind: its TLS exporter
 * mixed into the handshake hash) and the link then sends its cells
 * unsealed; the initiator confirms its keys with a HELLO that carries
 * hs_keys.confirm instead (docs/PROTOCOL.md 8.3).
 */
#ifndef OVL_CORE_HANDSHAKE_H
#define OVL_CORE_HANDSHAKE_H

#include <stdint.h>

#include "lib/crypto.h"
#include "lib/err.h"

#define HS_HDR_LEN     4  /* type, version, 2 reserved (zero) bytes */
#define HS_PAYLOAD_LEN 16 /* u32 suites | u32 flags | u64 unix time in ms (LE) */

/* Flags bits 0..7 carry log2 of the key-ratchet interval the sender wants
 * (cells per key); the link uses the smaller of the two. */
#define HS_REKEY_LOG2_MIN     4
#define HS_REKEY_LOG2_MAX     32
#define HS_REKEY_LOG2_DEFAULT 20
#define HS_INIT_LEN                                                                                \
    (HS_HDR_LEN + 32 + (32 + OVL_AEAD_TAG) + (HS_PAYLOAD_LEN + OVL_AEAD_TAG)) /* 116 */
#define HS_RESP_LEN    (HS_HDR_LEN + 32 + (HS_PAYLOAD_LEN + OVL_AEAD_TAG))    /* 68 */
#define HS_BIND_LEN    32 /* the transport's binding (tp_binding) */
#define HS_CONFIRM_LEN OVL_HASH_LEN

/* Bits of handshake.flags and hs_keys.flags. */
#define HS_F_BOUND (1u << 0) /* bound to the transport's connection (hs_bind) */

enum hs_role { HS_INITIATOR = 1, HS_RESPONDER = 2 };

enum hs_state {
    HS_START = 0,  /* initiator: about to write message 1 */
    HS_WAIT_INIT,  /* responder: waiting for message 1 */
    HS_WAIT_RESP,  /* initiator: message 1 sent */
    HS_READY_RESP, /* responder: message 1 read, about to write message 2 */
    HS_DONE,       /* keys handed out; the state is wiped */
    HS_FAILED,     /* any error: the state is wiped, every call fails */
};

/* The result of a completed handshake. Secret: wipe with hs_keys_wipe. */
struct hs_keys {
    uint8_t tx[OVL_AEAD_KEY];        /* our sending key */
    uint8_t rx[OVL_AEAD_KEY];        /* our receiving key */
    enum ovl_aead_suite suite;       /* chosen by the responder */
    uint8_t rekey_log2;              /* agreed ratchet interval: 2^rekey_log2 cells */
    uint8_t peer_pk[OVL_ED25519_PK]; /* the authenticated peer identity */
    uint8_t hash[OVL_HASH_LEN];      /* handshake hash, for channel binding */
    unsigned flags;                  /* HS_F_BOUND when both ends bound it */
    /* Bound only: KDF_LABEL(initiator's sending key, "ovl-link confirm"),
     * what the initiator's HELLO carries; all zero otherwise. */
    uint8_t confirm[HS_CONFIRM_LEN];
};

/* Handshake state. Everything in it is secret until HS_DONE. */
struct handshake {
    enum hs_role role;
    enum hs_state state;
    uint32_t suites;              /* our acceptable AEAD suites */
    uint8_t s_sk[OVL_X25519_LEN]; /* our static key, X25519 form */
    uint8_t s_ed[OVL_ED25519_PK]; /* our identity public key */
    uint8_t e_sk[OVL_X25519_LEN], e_pk[OVL_X25519_LEN];
    uint8_t re[OVL_X25519_LEN];    /* peer ephemeral */
    uint8_t rs_ed[OVL_ED25519_PK]; /* peer identity (known or learnt) */
    uint8_t rs_x[OVL_X25519_LEN];  /* peer static, X25519 form */
    uint32_t peer_suites;
    uint8_t rekey_log2, peer_rekey_log2;
    unsigned flags; /* HS_F_* */
    uint8_t h[OVL_HASH_LEN], ck[OVL_HASH_LEN];
};

/* Start an initiator that expects the responder identity peer_pk and accepts
 * the suites in mask that this machine can run (mask & ovl_aead_available()).
 * OVL_EINVAL for an unusable key or when that leaves no suite. Every call
 * below returns OVL_EINVAL when made in the wrong state or role, and every
 * failure of any call leaves hs wiped in HS_FAILED. */
int hs_start_initiator(struct handshake *hs, const struct ovl_identity *self,
                       const uint8_t peer_pk[OVL_ED25519_PK], uint32_t suites) OVL_WUR;

/* Start a responder that accepts the suites in mask (as above). */
int hs_start_responder(struct handshake *hs, const struct ovl_identity *self,
                       uint32_t suites) OVL_WUR;

/* Ask for a key-ratchet interval of 2^log2 cells (default HS_REKEY_LOG2_DEFAULT)
 * before the first message is written or read; OVL_EINVAL outside
 * HS_REKEY_LOG2_MIN..HS_REKEY_LOG2_MAX or in a later state. */
int hs_set_rekey(struct handshake *hs, unsigned log2) OVL_WUR;

/* Bind the handshake to the transport connection it runs on, before the
 * first message is written or read: h = H(h || binding), where binding is
 * the value the transport gave (tp_binding). Every message is then
 * authenticated under it, so the handshake succeeds only when the peer
 * bound it to the same value: an end that did not bind, or that holds
 * another connection (a middlebox in between), fails it with OVL_ECRYPTO.
 * The keys handed out carry HS_F_BOUND and the initiator's confirmation.
 * OVL_EINVAL in a later state or when bound already. */
int hs_bind(struct handshake *hs, const uint8_t binding[HS_BIND_LEN]) OVL_WUR;

/* Initiator: write message 1 (HS_INIT_LEN bytes) into out. */
int hs_write_init(struct handshake *hs, uint8_t out[HS_INIT_LEN]) OVL_WUR;

/* Responder: read message 1. OVL_EPROTO for a wrong length, type, version or
 * reserved bits; OVL_ECRYPTO when it does not decrypt (e.g. it was made for
 * another identity); OVL_EUNSUPP when no suite is shared. On success the
 * peer identity is in hs->rs_ed. Any failure moves hs to HS_FAILED. */
int hs_read_init(struct handshake *hs, const uint8_t *in, size_t len) OVL_WUR;

/* Responder: write message 2 (HS_RESP_LEN bytes) and hand out the keys. */
int hs_write_resp(struct handshake *hs, uint8_t out[HS_RESP_LEN], struct hs_keys *keys) OVL_WUR;

/* Initiator: read message 2 and hand out the keys. Errors as hs_read_init,
 * plus OVL_EPROTO for a suite the initiator did not offer. */
int hs_read_resp(struct handshake *hs, const uint8_t *in, size_t len, struct hs_keys *keys) OVL_WUR;

/* Wipe every secret in hs (also done on HS_DONE and HS_FAILED); an
 * unfinished handshake becomes HS_FAILED. NULL is ignored. */
void hs_wipe(struct handshake *hs);

/* Wipe keys. */
void hs_keys_wipe(struct hs_keys *keys);

#endif
