/* srec.c - stream records sealed end to end (srec.h). */
#include <string.h>

#include "client/srec.h"
#include "lib/bytes.h"

#define SREC_LABEL "ovl-svc-v1"

/* Both directions' keys from the DH result (wiped here). */
static void srec_keys(struct srec *r, uint8_t dh[OVL_X25519_LEN],
                      const uint8_t onion_pk[OVL_X25519_LEN], const uint8_t sid[STREAM_SID])
{
    uint8_t ck[OVL_HASH_LEN], ikm[3 * OVL_X25519_LEN + STREAM_SID];

    ovl_hash2(ck, (const uint8_t *)SREC_LABEL, strlen(SREC_LABEL), NULL, 0);
    memcpy(ikm, dh, OVL_X25519_LEN);
    memcpy(ikm + OVL_X25519_LEN, r->eph, OVL_X25519_LEN);
    memcpy(ikm + 2 * OVL_X25519_LEN, onion_pk, OVL_X25519_LEN);
    memcpy(ikm + 3 * OVL_X25519_LEN, sid, STREAM_SID);
    ovl_kdf2(r->key[SREC_FWD], r->key[SREC_BACK], ck, ikm, sizeof(ikm));
    ovl_wipe(ikm, sizeof(ikm));
    ovl_wipe(dh, OVL_X25519_LEN);
}

int srec_init(struct srec *r, const uint8_t onion_pk[OVL_X25519_LEN], const uint8_t sid[STREAM_SID],
              uint64_t wall_ms)
{
    uint8_t sk[OVL_X25519_LEN], dh[OVL_X25519_LEN];
    int rc;

    memset(r, 0, sizeof(*r));
    ovl_x25519_keypair(r->eph, sk);
    rc = ovl_x25519(dh, sk, onion_pk);
    ovl_wipe(sk, sizeof(sk));
    if (rc)
        return rc;
    srec_keys(r, dh, onion_pk, sid);
    r->sent = wall_ms / 1000; /* whole seconds, as messages (19.7) */
    return 0;
}

/* Seal (or open) len bytes at buf in place under r's key of dir, the
 * counter and associated data from the record's header (hdr bytes). */
static int srec_crypt(const struct srec *r, enum srec_dir dir, bool seal, const uint8_t *rec,
                      size_t hdr, uint8_t *buf, size_t len)
{
    uint8_t nonce[OVL_AEAD_NONCE];
    struct ovl_aead a;
    int rc = ovl_aead_init(&a, OVL_AEAD_CHACHA20POLY1305, r->key[dir]);

    ovl_nonce(nonce, ld_le64(rec + 2 + STREAM_SID));
    if (rc == 0)
        rc = seal ? ovl_aead_seal(&a, buf, buf, len, rec, hdr, nonce)
                  : ovl_aead_open(&a, buf, buf, len, rec, hdr, nonce);
    ovl_aead_wipe(&a);
    return rc;
}

size_t srec_seal(struct srec *r, enum srec_dir dir, uint8_t *out, const uint8_t *f, size_t len)
{
    bool open = dir == SREC_FWD && len > 0 && f[0] == SF_OPEN;
    size_t hdr = open ? SREC_OPEN_HDR : SREC_HDR, pt = len + (open ? 8 : 0);

    out[0] = SREC_TYPE;
    out[1] = open ? SREC_F_OPEN : 0;
    memcpy(out + 2, f + 2, STREAM_SID);
    st_le64(out + 2 + STREAM_SID, r->ctr++);
    if (open) {
        memcpy(out + SREC_HDR, r->eph, OVL_X25519_LEN);
        st_le64(out + hdr, r->sent);
    }
    memcpy(out + hdr + pt - len, f, len);
    /* Cannot fail: the key is set and ChaCha20-Poly1305 is always there. */
    (void)srec_crypt(r, dir, true, out, hdr, out + hdr, pt);
    return hdr + pt + OVL_AEAD_TAG;
}

int srec_peek(const uint8_t *rec, size_t len, const uint8_t **sid, bool *open)
{
    if (len < SREC_HDR + STREAM_HDR + OVL_AEAD_TAG || len > SREC_MAX || rec[0] != SREC_TYPE ||
        (rec[1] & ~SREC_F_OPEN))
        return OVL_EPROTO;
    *sid = rec + 2;
    *open = rec[1] & SREC_F_OPEN;
    return 0;
}

int srec_open(const struct srec *r, enum srec_dir dir, const uint8_t *rec, size_t len, uint8_t *out,
              const uint8_t **f, size_t *flen, uint64_t *sent_ms)
{
    const uint8_t *sid;
    bool open;
    size_t hdr, pt;

    if (srec_peek(rec, len, &sid, &open) != 0 || (open && dir != SREC_FWD))
        return OVL_EPROTO;
    hdr = open ? SREC_OPEN_HDR : SREC_HDR;
    if (len < hdr + (open ? 8 : 0) + STREAM_HDR + OVL_AEAD_TAG)
        return OVL_EPROTO;
    pt = len - hdr - OVL_AEAD_TAG;
    memcpy(out, rec + hdr, len - hdr);
    if (srec_crypt(r, dir, false, rec, hdr, out, len - hdr) != 0)
        return OVL_ECRYPTO;
    *f = out + (open ? 8 : 0);
    *flen = pt - (open ? 8 : 0);
    if (sent_ms) {
        uint64_t s = open ? ld_le64(out) : 0;

        *sent_ms = s < UINT64_MAX / 1000 ? s * 1000 : UINT64_MAX;
    }
    return memcmp(*f + 2, sid, STREAM_SID) == 0 ? 0 : OVL_EPROTO;
}

int srec_accept(struct srec *r, const uint8_t *rec, size_t len, const struct dir_onion *keys,
                unsigned n_keys, uint8_t *out, const uint8_t **f, size_t *flen, uint64_t *sent_ms)
{
    uint8_t dh[OVL_X25519_LEN];
    int rc = OVL_ECRYPTO;

    if (len < SREC_OPEN_HDR || rec[1] != SREC_F_OPEN)
        return OVL_EPROTO;
    for (unsigned i = 0; i < n_keys; i++) {
        memset(r, 0, sizeof(*r));
        memcpy(r->eph, rec + SREC_HDR, OVL_X25519_LEN);
        if (ovl_x25519(dh, keys[i].sk, r->eph) != 0)
            return OVL_ECRYPTO; /* low order: no key makes it good */
        srec_keys(r, dh, keys[i].pk, rec + 2);
        rc = srec_open(r, SREC_FWD, rec, len, out, f, flen, sent_ms);
        if (rc != OVL_ECRYPTO)
            break;
    }
    if (rc)
        srec_wipe(r);
    return rc;
}

void srec_wipe(struct srec *r)
{
    if (r)
        ovl_wipe(r, sizeof(*r));
}
