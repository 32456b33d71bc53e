/* handshake.c - the "ovl-link-v1" handshake state machine (see handshake.h
 * and docs/PROTOCOL.md, which give the exact sequence of hashes and DHs). */
#include "core/handshake.h"

#include <string.h>

#include "core/cell.h"
#include "lib/bytes.h"
#include "lib/clock.h"

#define HS_PROTOCOL_NAME "ovl-link-v1"

/* Offsets inside the two messages. */
#define HS_OFF_E            HS_HDR_LEN
#define HS_OFF_INIT_S       (HS_OFF_E + OVL_X25519_LEN)
#define HS_ENC_S_LEN        (OVL_ED25519_PK + OVL_AEAD_TAG)
#define HS_OFF_INIT_PAYLOAD (HS_OFF_INIT_S + HS_ENC_S_LEN)
#define HS_OFF_RESP_PAYLOAD (HS_OFF_E + OVL_X25519_LEN)
#define HS_ENC_PAYLOAD_LEN  (HS_PAYLOAD_LEN + OVL_AEAD_TAG)

/* Wipe hs and return err, so that every error path leaves HS_FAILED. */
static int hs_fail(struct handshake *hs, int err)
{
    hs->state = HS_FAILED;
    hs_wipe(hs);
    return err;
}

/* h = H(h || data), through a temporary so no aliasing rule is assumed. */
static void hs_mix_hash(struct handshake *hs, const uint8_t *data, size_t len)
{
    uint8_t t[OVL_HASH_LEN];

    ovl_hash2(t, hs->h, sizeof(hs->h), data, len);
    memcpy(hs->h, t, sizeof(t));
    ovl_wipe(t, sizeof(t));
}

/* (ck, k) = KDF2(ck, DH(sk, pk)); k may be NULL when only ck moves on. */
static int hs_mix_dh(struct handshake *hs, uint8_t k[OVL_AEAD_KEY],
                     const uint8_t sk[OVL_X25519_LEN], const uint8_t pk[OVL_X25519_LEN])
{
    uint8_t dh[OVL_X25519_LEN];
    int rc = ovl_x25519(dh, sk, pk);

    if (rc == 0)
        ovl_kdf2(hs->ck, k, hs->ck, dh, sizeof(dh));
    ovl_wipe(dh, sizeof(dh));
    return rc == 0 ? 0 : OVL_ECRYPTO;
}

/* ENC(k, h, in) into out, then h = H(h || out). Each k is used once, so the
 * fixed nonce 0 is safe. */
static int hs_encrypt(struct handshake *hs, uint8_t *out, const uint8_t k[OVL_AEAD_KEY],
                      const uint8_t *in, size_t len)
{
    struct ovl_aead a;
    uint8_t nonce[OVL_AEAD_NONCE];
    int rc = ovl_aead_init(&a, OVL_AEAD_CHACHA20POLY1305, k);

    if (rc != 0)
        return rc;
    ovl_nonce(nonce, 0);
    rc = ovl_aead_seal(&a, out, in, len, hs->h, sizeof(hs->h), nonce);
    ovl_aead_wipe(&a);
    if (rc == 0)
        hs_mix_hash(hs, out, len + OVL_AEAD_TAG);
    return rc;
}

/* The inverse of hs_encrypt: len counts the ciphertext with its tag. */
static int hs_decrypt(struct handshake *hs, uint8_t *out, const uint8_t k[OVL_AEAD_KEY],
                      const uint8_t *in, size_t len)
{
    struct ovl_aead a;
    uint8_t nonce[OVL_AEAD_NONCE];
    int rc = ovl_aead_init(&a, OVL_AEAD_CHACHA20POLY1305, k);

    if (rc != 0)
        return rc;
    ovl_nonce(nonce, 0);
    rc = ovl_aead_open(&a, out, in, len, hs->h, sizeof(hs->h), nonce);
    ovl_aead_wipe(&a);
    if (rc != 0)
        return OVL_ECRYPTO;
    hs_mix_hash(hs, in, len);
    return 0;
}

/* h = H(name); ck = h; h = H(h || prologue); h = H(h || responder static). */
static void hs_init_symmetric(struct handshake *hs, const uint8_t rs_x[OVL_X25519_LEN])
{
    static const uint8_t prologue[4] = {'o', 'v', 'l', OVL_PROTO_VERSION};

    ovl_hash2(hs->h, (const uint8_t *)HS_PROTOCOL_NAME, strlen(HS_PROTOCOL_NAME), NULL, 0);
    memcpy(hs->ck, hs->h, sizeof(hs->ck));
    hs_mix_hash(hs, prologue, sizeof(prologue));
    hs_mix_hash(hs, rs_x, OVL_X25519_LEN);
}

/* Fill the fields both roles share; leaves hs in HS_FAILED on error. */
static int hs_start(struct handshake *hs, enum hs_role role, const struct ovl_identity *self,
                    uint32_t suites)
{
    memset(hs, 0, sizeof(*hs));
    hs->role = role;
    hs->state = HS_FAILED;
    /* Never offer or pick a suite this machine cannot run. */
    hs->suites = suites & ovl_aead_available();
    if (self == NULL || hs->suites == 0)
        return OVL_EINVAL;
    if (ovl_ed_sk_to_x25519(hs->s_sk, self->sk) != 0)
        return hs_fail(hs, OVL_EINVAL);
    memcpy(hs->s_ed, self->pk, sizeof(hs->s_ed));
    hs->rekey_log2 = HS_REKEY_LOG2_DEFAULT;
    return 0;
}

/* Ask for a ratchet interval of 2^log2 cells. */
int hs_set_rekey(struct handshake *hs, unsigned log2)
{
    if (hs == NULL || (hs->state != HS_START && hs->state != HS_WAIT_INIT))
        return OVL_EINVAL;
    if (log2 < HS_REKEY_LOG2_MIN || log2 > HS_REKEY_LOG2_MAX)
        return OVL_EINVAL;
    hs->rekey_log2 = (uint8_t)log2;
    return 0;
}

/* Mix the transport's binding into h, once, before any message. */
int hs_bind(struct handshake *hs, const uint8_t binding[HS_BIND_LEN])
{
    if (hs == NULL || binding == NULL || (hs->flags & HS_F_BOUND) ||
        (hs->state != HS_START && hs->state != HS_WAIT_INIT))
        return OVL_EINVAL;
    hs_mix_hash(hs, binding, HS_BIND_LEN);
    hs->flags |= HS_F_BOUND;
    return 0;
}

/* Read the ratchet interval from a payload's flags word; 0 if out of range. */
static uint8_t hs_payload_rekey(const uint8_t payload[HS_PAYLOAD_LEN])
{
    uint32_t v = ld_le32(payload + 4) & 0xff;

    return v < HS_REKEY_LOG2_MIN || v > HS_REKEY_LOG2_MAX ? 0 : (uint8_t)v;
}

/* Start an initiator that expects the responder identity peer_pk. */
int hs_start_initiator(struct handshake *hs, const struct ovl_identity *self,
                       const uint8_t peer_pk[OVL_ED25519_PK], uint32_t suites)
{
    int rc;

    if (hs == NULL)
        return OVL_EINVAL;
    rc = hs_start(hs, HS_INITIATOR, self, suites);
    if (rc != 0)
        return rc;
    if (peer_pk == NULL)
        return hs_fail(hs, OVL_EINVAL);
    memcpy(hs->rs_ed, peer_pk, sizeof(hs->rs_ed));
    if (ovl_ed_pk_to_x25519(hs->rs_x, hs->rs_ed) != 0)
        return hs_fail(hs, OVL_EINVAL);
    hs_init_symmetric(hs, hs->rs_x);
    hs->state = HS_START;
    return 0;
}

/* Start a responder; the initiator's identity is learnt from message 1. */
int hs_start_responder(struct handshake *hs, const struct ovl_identity *self, uint32_t suites)
{
    uint8_t own_x[OVL_X25519_LEN];
    int rc;

    if (hs == NULL)
        return OVL_EINVAL;
    rc = hs_start(hs, HS_RESPONDER, self, suites);
    if (rc != 0)
        return rc;
    if (ovl_ed_pk_to_x25519(own_x, hs->s_ed) != 0)
        return hs_fail(hs, OVL_EINVAL);
    hs_init_symmetric(hs, own_x);
    hs->state = HS_WAIT_INIT;
    return 0;
}

/* Write the 4-byte header and mix it into h. */
static void hs_write_hdr(struct handshake *hs, uint8_t *out, uint8_t type)
{
    out[0] = type;
    out[1] = OVL_PROTO_VERSION;
    out[2] = 0;
    out[3] = 0;
    hs_mix_hash(hs, out, HS_HDR_LEN);
}

/* Check a received message's length and header, then mix the header in. */
static int hs_check_hdr(struct handshake *hs, const uint8_t *in, size_t len, size_t want,
                        uint8_t type)
{
    if (in == NULL || len != want)
        return OVL_EPROTO;
    if (in[0] != type || in[1] != OVL_PROTO_VERSION || in[2] != 0 || in[3] != 0)
        return OVL_EPROTO;
    hs_mix_hash(hs, in, HS_HDR_LEN);
    return 0;
}

/* Move hs to HS_FAILED and report a call the state machine did not expect. */
static int hs_check_state(struct handshake *hs, enum hs_role role, enum hs_state state)
{
    if (hs->role == role && hs->state == state)
        return 0;
    if (hs->state != HS_DONE)
        (void)hs_fail(hs, OVL_EINVAL);
    return OVL_EINVAL;
}

/* Write message 1: -> e, es, s, ss, payload. */
int hs_write_init(struct handshake *hs, uint8_t out[HS_INIT_LEN])
{
    uint8_t k[OVL_AEAD_KEY], payload[HS_PAYLOAD_LEN];
    int rc;

    if (hs == NULL)
        return OVL_EINVAL;
    if ((rc = hs_check_state(hs, HS_INITIATOR, HS_START)) != 0)
        return rc;
    if (out == NULL)
        return hs_fail(hs, OVL_EINVAL);
    hs_write_hdr(hs, out, FRAME_HS_INIT);
    ovl_x25519_keypair(hs->e_pk, hs->e_sk);
    memcpy(out + HS_OFF_E, hs->e_pk, OVL_X25519_LEN);
    hs_mix_hash(hs, hs->e_pk, OVL_X25519_LEN);
    if ((rc = hs_mix_dh(hs, k, hs->e_sk, hs->rs_x)) != 0)
        goto fail;
    if ((rc = hs_encrypt(hs, out + HS_OFF_INIT_S, k, hs->s_ed, OVL_ED25519_PK)) != 0)
        goto fail;
    if ((rc = hs_mix_dh(hs, k, hs->s_sk, hs->rs_x)) != 0)
        goto fail;
    st_le32(payload, hs->suites);
    st_le32(payload + 4, hs->rekey_log2);
    st_le64(payload + 8, clock_wall_ms()); /* informational */
    if ((rc = hs_encrypt(hs, out + HS_OFF_INIT_PAYLOAD, k, payload, sizeof(payload))) != 0)
        goto fail;
    ovl_wipe(k, sizeof(k));
    ovl_wipe(payload, sizeof(payload));
    hs->state = HS_WAIT_RESP;
    return 0;
fail:
    ovl_wipe(k, sizeof(k));
    ovl_wipe(payload, sizeof(payload));
    ovl_wipe(out, HS_INIT_LEN);
    return hs_fail(hs, rc);
}

/* Read message 1: learn and authenticate the initiator, agree on suites. */
int hs_read_init(struct handshake *hs, const uint8_t *in, size_t len)
{
    uint8_t k[OVL_AEAD_KEY], payload[HS_PAYLOAD_LEN];
    int rc;

    if (hs == NULL)
        return OVL_EINVAL;
    if ((rc = hs_check_state(hs, HS_RESPONDER, HS_WAIT_INIT)) != 0)
        return rc;
    if ((rc = hs_check_hdr(hs, in, len, HS_INIT_LEN, FRAME_HS_INIT)) != 0)
        return hs_fail(hs, rc);
    memcpy(hs->re, in + HS_OFF_E, OVL_X25519_LEN);
    hs_mix_hash(hs, hs->re, OVL_X25519_LEN);
    if ((rc = hs_mix_dh(hs, k, hs->s_sk, hs->re)) != 0)
        goto fail;
    if ((rc = hs_decrypt(hs, hs->rs_ed, k, in + HS_OFF_INIT_S, HS_ENC_S_LEN)) != 0)
        goto fail;
    if (ovl_ed_pk_to_x25519(hs->rs_x, hs->rs_ed) != 0) {
        rc = OVL_ECRYPTO;
        goto fail;
    }
    if ((rc = hs_mix_dh(hs, k, hs->s_sk, hs->rs_x)) != 0)
        goto fail;
    if ((rc = hs_decrypt(hs, payload, k, in + HS_OFF_INIT_PAYLOAD, HS_ENC_PAYLOAD_LEN)) != 0)
        goto fail;
    /* Flags and time are reserved/informational: replay protection comes
     * from the responder's fresh ephemeral and CELL_HELLO, not from a clock. */
    hs->peer_suites = ld_le32(payload);
    if ((hs->peer_suites & hs->suites) == 0) {
        rc = OVL_EUNSUPP;
        goto fail;
    }
    if ((hs->peer_rekey_log2 = hs_payload_rekey(payload)) == 0) {
        rc = OVL_EPROTO;
        goto fail;
    }
    ovl_wipe(k, sizeof(k));
    ovl_wipe(payload, sizeof(payload));
    hs->state = HS_READY_RESP;
    return 0;
fail:
    ovl_wipe(k, sizeof(k));
    ovl_wipe(payload, sizeof(payload));
    return hs_fail(hs, rc);
}

/* (k1, k2) = KDF2(ck, empty); hand out the keys for our role and finish. */
static void hs_split(struct handshake *hs, struct hs_keys *keys, enum ovl_aead_suite suite,
                     uint8_t rekey_log2)
{
    uint8_t k1[OVL_HASH_LEN], k2[OVL_HASH_LEN];

    ovl_kdf2(k1, k2, hs->ck, hs->ck, 0);
    memcpy(keys->tx, hs->role == HS_INITIATOR ? k1 : k2, OVL_AEAD_KEY);
    memcpy(keys->rx, hs->role == HS_INITIATOR ? k2 : k1, OVL_AEAD_KEY);
    keys->suite = suite;
    keys->rekey_log2 = rekey_log2;
    memcpy(keys->peer_pk, hs->rs_ed, sizeof(keys->peer_pk));
    memcpy(keys->hash, hs->h, sizeof(keys->hash));
    keys->flags = hs->flags & HS_F_BOUND;
    /* From the key only the initiator and the responder derive (h is no
     * secret: anyone who saw the messages and knows the binding has it). */
    if (keys->flags & HS_F_BOUND)
        ovl_kdf_label(keys->confirm, k1, "ovl-link confirm");
    ovl_wipe(k1, sizeof(k1));
    ovl_wipe(k2, sizeof(k2));
    hs->state = HS_DONE;
    hs_wipe(hs);
}

/* Write message 2: <- e, ee, se, payload; then split the keys. */
int hs_write_resp(struct handshake *hs, uint8_t out[HS_RESP_LEN], struct hs_keys *keys)
{
    uint8_t k[OVL_AEAD_KEY], payload[HS_PAYLOAD_LEN];
    enum ovl_aead_suite suite;
    uint8_t rekey;
    int rc;

    if (keys != NULL)
        hs_keys_wipe(keys);
    if (hs == NULL)
        return OVL_EINVAL;
    if ((rc = hs_check_state(hs, HS_RESPONDER, HS_READY_RESP)) != 0)
        return rc;
    if (out == NULL || keys == NULL)
        return hs_fail(hs, OVL_EINVAL);
    hs_write_hdr(hs, out, FRAME_HS_RESP);
    ovl_x25519_keypair(hs->e_pk, hs->e_sk);
    memcpy(out + HS_OFF_E, hs->e_pk, OVL_X25519_LEN);
    hs_mix_hash(hs, hs->e_pk, OVL_X25519_LEN);
    memset(payload, 0, sizeof(payload));
    if ((rc = hs_mix_dh(hs, NULL, hs->e_sk, hs->re)) != 0)
        goto fail;
    if ((rc = hs_mix_dh(hs, k, hs->e_sk, hs->rs_x)) != 0)
        goto fail;
    suite = ovl_aead_pick(hs->suites & hs->peer_suites);
    st_le32(payload, (uint32_t)suite);
    rekey = hs->rekey_log2 < hs->peer_rekey_log2 ? hs->rekey_log2 : hs->peer_rekey_log2;
    st_le32(payload + 4, rekey);
    if ((rc = hs_encrypt(hs, out + HS_OFF_RESP_PAYLOAD, k, payload, sizeof(payload))) != 0)
        goto fail;
    ovl_wipe(k, sizeof(k));
    hs_split(hs, keys, suite, rekey);
    return 0;
fail:
    ovl_wipe(k, sizeof(k));
    ovl_wipe(out, HS_RESP_LEN);
    return hs_fail(hs, rc);
}

/* Read message 2, check the chosen suite and split the keys. */
int hs_read_resp(struct handshake *hs, const uint8_t *in, size_t len, struct hs_keys *keys)
{
    uint8_t k[OVL_AEAD_KEY], payload[HS_PAYLOAD_LEN];
    uint32_t suite;
    uint8_t rekey;
    int rc;

    if (keys != NULL)
        hs_keys_wipe(keys);
    if (hs == NULL)
        return OVL_EINVAL;
    if ((rc = hs_check_state(hs, HS_INITIATOR, HS_WAIT_RESP)) != 0)
        return rc;
    if (keys == NULL)
        return hs_fail(hs, OVL_EINVAL);
    if ((rc = hs_check_hdr(hs, in, len, HS_RESP_LEN, FRAME_HS_RESP)) != 0)
        return hs_fail(hs, rc);
    memcpy(hs->re, in + HS_OFF_E, OVL_X25519_LEN);
    hs_mix_hash(hs, hs->re, OVL_X25519_LEN);
    if ((rc = hs_mix_dh(hs, NULL, hs->e_sk, hs->re)) != 0)
        goto fail;
    if ((rc = hs_mix_dh(hs, k, hs->s_sk, hs->re)) != 0)
        goto fail;
    if ((rc = hs_decrypt(hs, payload, k, in + HS_OFF_RESP_PAYLOAD, HS_ENC_PAYLOAD_LEN)) != 0)
        goto fail;
    suite = ld_le32(payload);
    /* Exactly one bit, and one we offered: anything else is a broken peer. */
    if (suite == 0 || (suite & (suite - 1)) != 0 || (suite & hs->suites) == 0) {
        rc = OVL_EPROTO;
        goto fail;
    }
    /* The responder must answer with the smaller interval, never a larger one. */
    rekey = hs_payload_rekey(payload);
    if (rekey == 0 || rekey > hs->rekey_log2) {
        rc = OVL_EPROTO;
        goto fail;
    }
    ovl_wipe(k, sizeof(k));
    ovl_wipe(payload, sizeof(payload));
    hs_split(hs, keys, (enum ovl_aead_suite)suite, rekey);
    return 0;
fail:
    ovl_wipe(k, sizeof(k));
    ovl_wipe(payload, sizeof(payload));
    return hs_fail(hs, rc);
}

/* Wipe every secret; the role stays and the state becomes HS_FAILED unless
 * the handshake had finished (HS_DONE). */
void hs_wipe(struct handshake *hs)
{
    enum hs_role role;
    enum hs_state state;

    if (hs == NULL)
        return;
    role = hs->role;
    state = hs->state == HS_DONE ? HS_DONE : HS_FAILED;
    ovl_wipe(hs, sizeof(*hs));
    hs->role = role;
    hs->state = state;
}

/* Wipe keys. */
void hs_keys_wipe(struct hs_keys *keys)
{
    if (keys != NULL)
        ovl_wipe(keys, sizeof(*keys));
}
