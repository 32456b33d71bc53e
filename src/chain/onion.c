/* onion.c - ovl-chain-v1: one-pass setup headers and per-hop data layers.
 *
 * onion.h is the contract and docs/PROTOCOL.md ("Chains: crypto") the
 * normative description. Everything works on caller buffers and the stack;
 * the data-cell functions neither allocate nor do public-key operations, and
 * every function that can fail leaves its input as it found it.
 */
#include "chain/onion.h"

#include <stdbool.h>
#include <string.h>

#include "lib/bytes.h"

#define KEY_LEN     32
#define OFF_CT      ONION_TAG                         /* 16 */
#define OFF_JUNK    (ONION_TAG + ONION_BODY)          /* 904 */
#define FWD_KS_LEN  (ONION_TAG + ONION_JUNK)          /* 128: new tag || new junk */
#define BACK_KS_LEN ONION_JUNK                        /* 112 */
#define HDR_REST    (ONION_HDR_LEN - ONION_SLOT_LEN)  /* 616 */
#define SLOT_CT     OVL_X25519_LEN                    /* 32 */
#define SLOT_TAG    (OVL_X25519_LEN + ONION_INFO_LEN) /* 72 */
#define NONCE_LAYER 0                                 /* first nonce byte: layer keystreams */
#define NONCE_ORIG  1   /* first nonce byte: junk of an originated cell */
#define NONCE_JUNK  2   /* first nonce byte: the sender's forward junk */
#define KS_WIDE     256 /* keystream asked of libsodium at least (stream_xor) */

_Static_assert(OFF_JUNK + ONION_JUNK == OVL_CELL_PAYLOAD, "cell layout");
_Static_assert(ONION_SLOT_LEN == 88 && ONION_HDR_LEN == 704, "header layout");
_Static_assert(OVL_AEAD_TAG == crypto_aead_chacha20poly1305_ietf_ABYTES, "slot tag");

static const uint8_t zero_nonce[OVL_AEAD_NONCE];

/* XOR len bytes at buf with ChaCha20's keystream for key and nonce.
 * libsodium makes a request under 256 bytes one 64-byte block after the
 * other, but from 256 bytes on four blocks side by side, which takes less
 * time than two blocks alone: the 112 and 128 bytes of a data cell's
 * layer cost a third less asked for as 256, of which the first len count. */
static void stream_xor(uint8_t *buf, size_t len, const uint8_t *nonce, const uint8_t *key)
{
    uint8_t t[KS_WIDE];

    if (len >= sizeof(t)) {
        crypto_stream_chacha20_ietf_xor(buf, buf, len, nonce, key);
        return;
    }
    memcpy(t, buf, len);
    memset(t + len, 0, sizeof(t) - len);
    crypto_stream_chacha20_ietf_xor(t, t, sizeof(t), nonce, key);
    memcpy(buf, t, len);
    ovl_wipe(t + len, sizeof(t) - len);
}

/* ChaCha20's keystream for key and nonce into out (len bytes): the XOR
 * of zeros, so that ovld imports one of libsodium's two stream calls. */
static void keystream(uint8_t *out, size_t len, const uint8_t *nonce, const uint8_t *key)
{
    memset(out, 0, len);
    stream_xor(out, len, nonce, key);
}

/* The setup-only secrets of one hop. */
struct hop_setup {
    uint8_t prk[KEY_LEN];
    uint8_t k_info[KEY_LEN];
    uint8_t k_hdr[KEY_LEN];
};

static void xor_into(uint8_t *dst, const uint8_t *src, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dst[i] ^= src[i];
}

/* Counter i of the window that starts at next (ONION_WINDOW of them);
 * false past the counters that can ever be used. */
static bool window_ctr(uint64_t next, unsigned i, uint64_t *c)
{
    *c = next + i;
    return *c >= next && *c != UINT64_MAX;
}

/* The counter nonce of the data layers; domain separates the two uses of
 * the backward stream key. */
static void ctr_nonce(uint8_t nonce[OVL_AEAD_NONCE], uint64_t ctr, uint8_t domain)
{
    ovl_nonce(nonce, ctr);
    nonce[0] = domain;
}

/* ---- key derivation ---- */

/* prk = B(key = H("ovl-chain-v1"), s || eph_pk || onion_pk); eph_pk is bound
 * because X25519 ignores its top bit, which must not go unnoticed. */
static void derive_setup(struct hop_setup *hs, const uint8_t s[OVL_X25519_LEN],
                         const uint8_t eph_pk[OVL_X25519_LEN],
                         const uint8_t onion_pk[OVL_X25519_LEN])
{
    static const char proto[] = "ovl-chain-v1";
    uint8_t ck[OVL_HASH_LEN], ikm[3 * OVL_X25519_LEN];

    ovl_hash2(ck, (const uint8_t *)proto, sizeof(proto) - 1, NULL, 0);
    memcpy(ikm, s, OVL_X25519_LEN);
    memcpy(ikm + OVL_X25519_LEN, eph_pk, OVL_X25519_LEN);
    memcpy(ikm + 2 * OVL_X25519_LEN, onion_pk, OVL_X25519_LEN);
    crypto_generichash(hs->prk, KEY_LEN, ikm, sizeof(ikm), ck, sizeof(ck));
    ovl_kdf_label(hs->k_info, hs->prk, "info");
    ovl_kdf_label(hs->k_hdr, hs->prk, "header");
    ovl_wipe(ikm, sizeof(ikm));
    ovl_wipe(ck, sizeof(ck));
}

static int derive_aead(struct ovl_aead *a, const uint8_t prk[KEY_LEN], const char *label,
                       enum ovl_aead_suite suite)
{
    uint8_t key[KEY_LEN];
    ovl_kdf_label(key, prk, label);
    int rc = ovl_aead_init(a, suite, key);
    ovl_wipe(key, sizeof(key));
    return rc;
}

enum { LAYER_FWD, LAYER_BACK, LAYER_ORIG };
static const char *const layer_label[3] = {"fwd", "back", "orig"};

/* Fill k with the data keys of one hop: the sender's contexts at once
 * (keep false), a hop's layer keys for contexts made on first use (keep
 * true). k is wiped on failure. */
static int derive_data(struct onion_keys *k, const uint8_t prk[KEY_LEN], enum ovl_aead_suite suite,
                       bool keep)
{
    int rc = 0;

    memset(k, 0, sizeof(*k));
    k->suite = suite;
    if (keep) {
        for (unsigned i = 0; i < 3; i++)
            ovl_kdf_label(k->layer[i], prk, layer_label[i]);
    } else if ((rc = derive_aead(&k->fwd, prk, "fwd", suite)) != 0 ||
               (rc = derive_aead(&k->back, prk, "back", suite)) != 0 ||
               (rc = derive_aead(&k->orig, prk, "orig", suite)) != 0) {
        onion_keys_wipe(k);
        return rc;
    }
    ovl_kdf_label(k->fwd_ks, prk, "fwd stream");
    ovl_kdf_label(k->back_ks, prk, "back stream");
    return 0;
}

/* The context of layer i at a hop, made from its kept key on first use
 * (after onion_keys_idle too): NULL only when the suite cannot be run. */
static const struct ovl_aead *hop_aead(struct onion_keys *k, unsigned i)
{
    struct ovl_aead *a = i == LAYER_FWD ? &k->fwd : i == LAYER_BACK ? &k->back : &k->orig;

    if (a->suite == 0 && ovl_aead_init(a, k->suite, k->layer[i]) != 0)
        return NULL;
    return a;
}

/* Give back the contexts a hop can make again. */
void onion_keys_idle(struct onion_keys *k)
{
    if (!k || sodium_is_zero(k->layer[0], sizeof(k->layer[0])))
        return;
    ovl_aead_wipe(&k->fwd);
    ovl_aead_wipe(&k->back);
    ovl_aead_wipe(&k->orig);
}

/* What the made contexts hold: only AES-256-GCM's hold anything. */
size_t onion_keys_heap(const struct onion_keys *k)
{
    size_t made = (k->fwd.suite != 0) + (k->back.suite != 0) + (k->orig.suite != 0);

    return k->suite == OVL_AEAD_AES256GCM ? made * OVL_AEAD_HEAP : 0;
}

/* Wipe k, releasing what its AEAD contexts hold. */
void onion_keys_wipe(struct onion_keys *k)
{
    if (!k)
        return;
    ovl_aead_wipe(&k->fwd);
    ovl_aead_wipe(&k->back);
    ovl_aead_wipe(&k->orig);
    ovl_wipe(k, sizeof(*k));
}

/* ---- hop info ---- */

static void info_encode(uint8_t out[ONION_INFO_LEN], const struct onion_hop_info *in)
{
    out[0] = in->type;
    out[1] = in->suite;
    st_le16(out + 2, in->flags);
    st_le32(out + 4, in->lifetime_s);
    memcpy(out + 8, in->next, OVL_ED25519_PK);
}

static void info_decode(struct onion_hop_info *out, const uint8_t in[ONION_INFO_LEN])
{
    out->type = in[0];
    out->suite = in[1];
    out->flags = ld_le16(in + 2);
    out->lifetime_s = ld_le32(in + 4);
    memcpy(out->next, in + 8, OVL_ED25519_PK);
}

/* OVL_EPROTO unless in is a well-formed version 1 info this node can run. */
static int info_check(const struct onion_hop_info *in)
{
    bool zero_next = sodium_is_zero(in->next, OVL_ED25519_PK);
    unsigned suite = in->suite;

    if (in->type != ONION_HOP_RELAY && in->type != ONION_HOP_EXIT)
        return OVL_EPROTO;
    if (suite == 0 || (suite & (suite - 1)) != 0 || !(suite & ovl_aead_available()))
        return OVL_EPROTO;
    if (in->flags != 0)
        return OVL_EPROTO;
    if (zero_next != (in->type == ONION_HOP_EXIT))
        return OVL_EPROTO;
    return 0;
}

/* ---- setup header ---- */

static void hdr_stream(uint8_t out[ONION_HDR_LEN], const uint8_t k_hdr[KEY_LEN])
{
    keystream(out, ONION_HDR_LEN, zero_nonce, k_hdr);
}

/* Put hop i's slot in front of hdr, binding the rest of the header. */
static int slot_seal(uint8_t hdr[ONION_HDR_LEN], const uint8_t eph_pk[OVL_X25519_LEN],
                     const struct onion_hop_info *info, const uint8_t k_info[KEY_LEN])
{
    uint8_t plain[ONION_INFO_LEN];
    int rc;

    info_encode(plain, info);
    memcpy(hdr, eph_pk, OVL_X25519_LEN);
    rc = crypto_aead_chacha20poly1305_ietf_encrypt_detached(
        hdr + SLOT_CT, hdr + SLOT_TAG, NULL, plain, sizeof(plain), hdr + ONION_SLOT_LEN, HDR_REST,
        NULL, zero_nonce, k_info);
    ovl_wipe(plain, sizeof(plain));
    return rc == 0 ? 0 : OVL_ECRYPTO;
}

/* The trailing slots the last hop will see: what hops 0..n-2 append, as
 * transformed by the hops after them. Returns its length. */
static size_t setup_filler(uint8_t fill[HDR_REST], const struct hop_setup *hs, unsigned n)
{
    uint8_t ks[ONION_HDR_LEN];
    size_t len = 0;

    for (unsigned i = 0; i + 1 < n; i++) {
        memset(fill + len, 0, ONION_SLOT_LEN);
        len += ONION_SLOT_LEN;
        hdr_stream(ks, hs[i].k_hdr);
        xor_into(fill, ks + ONION_HDR_LEN - len, len);
    }
    ovl_wipe(ks, sizeof(ks));
    return len;
}

/* One hop of the sender's side: ephemeral key, shared secret, all keys. */
static int build_hop(struct hop_setup *hs, uint8_t eph_pk[OVL_X25519_LEN], struct onion_keys *k,
                     const uint8_t onion_pk[OVL_X25519_LEN], enum ovl_aead_suite suite)
{
    uint8_t eph_sk[OVL_X25519_LEN], s[OVL_X25519_LEN];
    int rc;

    ovl_x25519_keypair(eph_pk, eph_sk);
    rc = ovl_x25519(s, eph_sk, onion_pk);
    ovl_wipe(eph_sk, sizeof(eph_sk));
    if (rc != 0)
        return rc;
    derive_setup(hs, s, eph_pk, onion_pk);
    ovl_wipe(s, sizeof(s));
    return derive_data(k, hs->prk, suite, false);
}

static int build_check(const struct onion_hop_info *info, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        uint8_t want = i + 1 == n ? ONION_HOP_EXIT : ONION_HOP_RELAY;
        if (info[i].type != want || info_check(&info[i]) != 0)
            return OVL_EINVAL;
    }
    return 0;
}

/* Build a setup header for n hops and hand back each hop's data keys. */
int onion_setup_build(uint8_t hdr[ONION_HDR_LEN], const uint8_t (*onion_pk)[OVL_X25519_LEN],
                      const struct onion_hop_info *info, unsigned n, struct onion_keys *keys)
{
    struct hop_setup hs[ONION_MAX_HOPS];
    uint8_t eph_pk[ONION_MAX_HOPS][OVL_X25519_LEN];
    uint8_t fill[HDR_REST];
    size_t flen;
    int rc;

    if (!hdr || !onion_pk || !info || !keys || n < 1 || n > ONION_MAX_HOPS)
        return OVL_EINVAL;
    memset(keys, 0, n * sizeof(*keys));
    memset(hs, 0, sizeof(hs));
    if ((rc = build_check(info, n)) != 0)
        goto fail;
    for (unsigned i = 0; i < n; i++) {
        if ((rc = build_hop(&hs[i], eph_pk[i], &keys[i], onion_pk[i], info[i].suite)) != 0)
            goto fail;
        ovl_random(keys[i].junk_ks, sizeof(keys[i].junk_ks));
    }
    /* The last hop's header: its slot, random slots where a shorter chain
     * has nothing, and the filler, so it cannot tell its position. */
    flen = setup_filler(fill, hs, n);
    ovl_random(hdr + ONION_SLOT_LEN, HDR_REST - flen);
    memcpy(hdr + ONION_HDR_LEN - flen, fill, flen);
    if ((rc = slot_seal(hdr, eph_pk[n - 1], &info[n - 1], hs[n - 1].k_info)) != 0)
        goto fail;
    for (unsigned i = n - 1; i-- > 0;) {
        /* Undo what hop i will do: shift right one slot, XOR its stream. */
        memmove(hdr + ONION_SLOT_LEN, hdr, HDR_REST);
        crypto_stream_chacha20_ietf_xor(hdr + ONION_SLOT_LEN, hdr + ONION_SLOT_LEN, HDR_REST,
                                        zero_nonce, hs[i].k_hdr);
        if ((rc = slot_seal(hdr, eph_pk[i], &info[i], hs[i].k_info)) != 0)
            goto fail;
    }
    rc = 0;
fail:
    ovl_wipe(hs, sizeof(hs));
    ovl_wipe(fill, sizeof(fill));
    if (rc != 0) {
        for (unsigned i = 0; i < n; i++)
            onion_keys_wipe(&keys[i]);
        ovl_wipe(hdr, ONION_HDR_LEN);
    }
    return rc;
}

/* Open the front slot with this hop's onion key and rewrite hdr for the
 * next hop; hdr is untouched unless everything checks out. */
int onion_setup_peel(uint8_t hdr[ONION_HDR_LEN], const uint8_t onion_pk[OVL_X25519_LEN],
                     const uint8_t onion_sk[OVL_X25519_LEN], struct onion_hop_info *info,
                     struct onion_keys *keys)
{
    struct hop_setup hs;
    struct onion_hop_info in;
    uint8_t s[OVL_X25519_LEN], plain[ONION_INFO_LEN], ks[ONION_HDR_LEN];
    int rc;

    if (!hdr || !onion_pk || !onion_sk || !info || !keys)
        return OVL_EINVAL;
    memset(&hs, 0, sizeof(hs));
    memset(keys, 0, sizeof(*keys)); /* so that failing below wipes nothing foreign */
    if ((rc = ovl_x25519(s, onion_sk, hdr)) != 0)
        goto fail;
    derive_setup(&hs, s, hdr, onion_pk);
    if (crypto_aead_chacha20poly1305_ietf_decrypt_detached(
            plain, NULL, hdr + SLOT_CT, ONION_INFO_LEN, hdr + SLOT_TAG, hdr + ONION_SLOT_LEN,
            HDR_REST, zero_nonce, hs.k_info) != 0) {
        rc = OVL_ECRYPTO;
        goto fail;
    }
    info_decode(&in, plain);
    if ((rc = info_check(&in)) != 0)
        goto fail;
    if ((rc = derive_data(keys, hs.prk, (enum ovl_aead_suite)in.suite, true)) != 0)
        goto fail;
    hdr_stream(ks, hs.k_hdr);
    memmove(hdr, hdr + ONION_SLOT_LEN, HDR_REST);
    memset(hdr + HDR_REST, 0, ONION_SLOT_LEN);
    xor_into(hdr, ks, ONION_HDR_LEN);
    *info = in;
    rc = 0;
fail:
    ovl_wipe(&hs, sizeof(hs));
    ovl_wipe(s, sizeof(s));
    ovl_wipe(plain, sizeof(plain));
    ovl_wipe(ks, sizeof(ks));
    if (rc != 0) {
        onion_keys_wipe(keys);
        memset(info, 0, sizeof(*info));
    }
    return rc;
}

/* ---- forward data ---- */

/* After hop peeled plain out of cell under nonce, build the next cell:
 *   new tag || new junk = (junk || 16 zero bytes) ^ KS(128)
 * so no 16-byte block of the cell crosses the hop unchanged. */
static void fwd_shift(uint8_t cell[OVL_CELL_PAYLOAD], const uint8_t plain[ONION_BODY],
                      const uint8_t ks_key[KEY_LEN], const uint8_t nonce[OVL_AEAD_NONCE])
{
    uint8_t t[FWD_KS_LEN];

    memcpy(t, cell + OFF_JUNK, ONION_JUNK);
    memset(t + ONION_JUNK, 0, ONION_TAG);
    stream_xor(t, FWD_KS_LEN, nonce, ks_key);
    memcpy(cell, t, ONION_TAG);
    memcpy(cell + OFF_CT, plain, ONION_BODY);
    memcpy(cell + OFF_JUNK, t + ONION_TAG, ONION_JUNK);
}

/* The last hop's junk: random where a shorter chain has nothing, then the
 * blocks that hops 0..n-2 shift in (the filler). "Random" is a ChaCha20
 * stream under a key only the sender has (junk_ks), at the last hop's
 * counter, so no cell costs a system call for fresh randomness; no hop
 * can tell it from random bytes. */
static void fwd_filler(uint8_t junk[ONION_JUNK], const uint8_t (*ks)[FWD_KS_LEN], unsigned n,
                       const uint8_t junk_ks[32], uint64_t ctr)
{
    uint8_t nonce[OVL_AEAD_NONCE];
    uint8_t fill[ONION_JUNK];
    size_t len = 0;

    /* The callers' n <= ONION_MAX_HOPS keeps len <= ONION_JUNK, but gcc 12
     * at -O2 and -O3 unrolls the loop without that bound and warns of a
     * write past fill (-Wstringop-overflow); the second condition, always
     * true here, puts the bound where it can see it. */
    for (unsigned i = 0; i + 1 < n && len + ONION_TAG <= sizeof(fill); i++) {
        memset(fill + len, 0, ONION_TAG);
        len += ONION_TAG;
        xor_into(fill, ks[i] + FWD_KS_LEN - len, len);
    }
    ctr_nonce(nonce, ctr, NONCE_JUNK);
    keystream(junk, ONION_JUNK - len, nonce, junk_ks);
    memcpy(junk + ONION_JUNK - len, fill, len);
}

/* Wrap body for hops keys[0..n-1] under forward counter ctr. */
int onion_fwd_wrap(uint8_t out[OVL_CELL_PAYLOAD], const struct onion_keys *keys, unsigned n,
                   const uint64_t *ctr, const uint8_t body[ONION_BODY])
{
    uint8_t ks[ONION_MAX_HOPS][FWD_KS_LEN];
    uint8_t nonce[ONION_MAX_HOPS][OVL_AEAD_NONCE], t[ONION_JUNK];
    int rc;

    if (!out || !keys || !ctr || !body || n < 1 || n > ONION_MAX_HOPS)
        return OVL_EINVAL;
    for (unsigned i = 0; i < n; i++) {
        if (ctr[i] == UINT64_MAX)
            return OVL_EINVAL;
        ctr_nonce(nonce[i], ctr[i], NONCE_LAYER);
        keystream(ks[i], FWD_KS_LEN, nonce[i], keys[i].fwd_ks);
    }
    if (body != out + OFF_CT)
        memmove(out + OFF_CT, body, ONION_BODY);
    fwd_filler(out + OFF_JUNK, (const uint8_t(*)[FWD_KS_LEN])ks, n, keys[n - 1].junk_ks,
               ctr[n - 1]);
    rc = ovl_aead_seal_detached(&keys[n - 1].fwd, out + OFF_CT, out, out + OFF_CT, ONION_BODY,
                                out + OFF_JUNK, ONION_JUNK, nonce[n - 1]);
    for (unsigned i = n - 1; rc == 0 && i-- > 0;) {
        /* Invert hop i's shift: junk = (tag' || junk'[0:96]) ^ KS[0:112]. */
        memcpy(t, out, ONION_TAG);
        memcpy(t + ONION_TAG, out + OFF_JUNK, ONION_JUNK - ONION_TAG);
        xor_into(t, ks[i], ONION_JUNK);
        memcpy(out + OFF_JUNK, t, ONION_JUNK);
        rc = ovl_aead_seal_detached(&keys[i].fwd, out + OFF_CT, out, out + OFF_CT, ONION_BODY,
                                    out + OFF_JUNK, ONION_JUNK, nonce[i]);
    }
    ovl_wipe(ks, sizeof(ks));
    if (rc != 0)
        ovl_wipe(out, OVL_CELL_PAYLOAD);
    return rc;
}

/* Remove one forward layer in place, trying the counter window. */
int onion_fwd_peel(uint8_t cell[OVL_CELL_PAYLOAD], struct onion_keys *k, uint64_t *next)
{
    uint8_t plain[ONION_BODY], nonce[OVL_AEAD_NONCE];
    const struct ovl_aead *fwd;

    if (!cell || !k || !next)
        return OVL_EINVAL;
    if (!(fwd = hop_aead(k, LAYER_FWD)))
        return OVL_ECRYPTO;
    for (unsigned w = 0; w < ONION_WINDOW; w++) {
        uint64_t c;

        if (!window_ctr(*next, w, &c))
            break;
        ctr_nonce(nonce, c, NONCE_LAYER);
        if (ovl_aead_open_detached(fwd, plain, cell + OFF_CT, ONION_BODY, cell, cell + OFF_JUNK,
                                   ONION_JUNK, nonce) == 0) {
            fwd_shift(cell, plain, k->fwd_ks, nonce);
            *next = c + 1;
            ovl_wipe(plain, sizeof(plain));
            return 0;
        }
    }
    ovl_wipe(plain, sizeof(plain));
    return OVL_ECRYPTO;
}

/* ---- backward data ---- */

/* Seal a new backward cell with k->orig. Its junk is keystream, not random,
 * so that the sender can check every junk byte that reaches it. */
int onion_back_originate(uint8_t out[OVL_CELL_PAYLOAD], struct onion_keys *k, uint64_t *ctr,
                         const uint8_t body[ONION_BODY])
{
    uint8_t nonce[OVL_AEAD_NONCE];
    const struct ovl_aead *orig;
    int rc;

    if (!out || !k || !ctr || !body || *ctr == UINT64_MAX)
        return OVL_EINVAL;
    if (!(orig = hop_aead(k, LAYER_ORIG)))
        return OVL_ECRYPTO;
    if (body != out + OFF_CT)
        memmove(out + OFF_CT, body, ONION_BODY);
    ctr_nonce(nonce, *ctr, NONCE_ORIG);
    keystream(out + OFF_JUNK, ONION_JUNK, nonce, k->back_ks);
    ctr_nonce(nonce, *ctr, NONCE_LAYER);
    rc = ovl_aead_seal_detached(orig, out + OFF_CT, out, out + OFF_CT, ONION_BODY, NULL, 0, nonce);
    if (rc != 0) {
        ovl_wipe(out, OVL_CELL_PAYLOAD);
        return rc;
    }
    (*ctr)++;
    return 0;
}

/* Add this hop's backward layer in place:
 *   tag'' | AEAD(ct) | (tag || junk[0:96]) ^ KSb(112)
 * No associated data: the sender cannot rebuild the junk a hop sees (each
 * layer drops its last block), so it checks the junk once it knows the
 * origin instead (onion_back_unwrap). */
int onion_back_add(uint8_t cell[OVL_CELL_PAYLOAD], struct onion_keys *k, uint64_t *ctr)
{
    uint8_t nonce[OVL_AEAD_NONCE], t[ONION_JUNK], tag[ONION_TAG];
    const struct ovl_aead *back;
    int rc;

    if (!cell || !k || !ctr || *ctr == UINT64_MAX)
        return OVL_EINVAL;
    if (!(back = hop_aead(k, LAYER_BACK)))
        return OVL_ECRYPTO;
    ctr_nonce(nonce, *ctr, NONCE_LAYER);
    memcpy(t, cell, ONION_TAG);
    memcpy(t + ONION_TAG, cell + OFF_JUNK, ONION_JUNK - ONION_TAG);
    stream_xor(t, BACK_KS_LEN, nonce, k->back_ks);
    rc =
        ovl_aead_seal_detached(back, cell + OFF_CT, tag, cell + OFF_CT, ONION_BODY, NULL, 0, nonce);
    if (rc != 0)
        return rc; /* only for a bad suite, before anything is written */
    memcpy(cell, tag, ONION_TAG);
    memcpy(cell + OFF_JUNK, t, ONION_JUNK);
    (*ctr)++;
    return 0;
}

enum back_result { BACK_NONE, BACK_RELAYED, BACK_ORIGINATED };

/* Hop k originated w under counter c? The first `known` junk bytes are
 * what the sender could recover at this level; every other junk byte it
 * received was a tag of a layer already opened. They must be the
 * originator's keystream, which covers the junk no AEAD does. */
static bool back_try_orig(uint8_t plain[ONION_BODY], const uint8_t w[OVL_CELL_PAYLOAD],
                          const struct onion_keys *k, uint64_t c, size_t known)
{
    uint8_t nonce[OVL_AEAD_NONCE], junk[ONION_JUNK];

    ctr_nonce(nonce, c, NONCE_ORIG);
    keystream(junk, ONION_JUNK, nonce, k->back_ks);
    if (!ovl_equal(junk, w + OFF_JUNK, known))
        return false;
    ctr_nonce(nonce, c, NONCE_LAYER);
    return ovl_aead_open_detached(&k->orig, plain, w + OFF_CT, ONION_BODY, w, NULL, 0, nonce) == 0;
}

/* Remove hop k's layer from w (relayed) or recognise its origin
 * (originated, body in plain), trying its counter window. The first
 * `known` bytes of w's junk are real; the rest were dropped on the way. */
static enum back_result back_level(uint8_t w[OVL_CELL_PAYLOAD], uint8_t plain[ONION_BODY],
                                   const struct onion_keys *k, uint64_t *next, size_t known,
                                   bool can_relay)
{
    uint8_t nonce[OVL_AEAD_NONCE], t[ONION_JUNK];

    for (unsigned i = 0; i < ONION_WINDOW; i++) {
        uint64_t c;

        if (!window_ctr(*next, i, &c))
            break;
        ctr_nonce(nonce, c, NONCE_LAYER);
        if (can_relay && ovl_aead_open_detached(&k->back, plain, w + OFF_CT, ONION_BODY, w, NULL, 0,
                                                nonce) == 0) {
            /* Inner cell: tag || junk[0:96] = junk'' ^ KSb. */
            memcpy(t, w + OFF_JUNK, ONION_JUNK);
            stream_xor(t, BACK_KS_LEN, nonce, k->back_ks);
            memcpy(w, t, ONION_TAG);
            memcpy(w + OFF_CT, plain, ONION_BODY);
            memcpy(w + OFF_JUNK, t + ONION_TAG, ONION_JUNK - ONION_TAG);
            memset(w + OFF_JUNK + ONION_JUNK - ONION_TAG, 0, ONION_TAG);
            *next = c + 1;
            return BACK_RELAYED;
        }
        if (back_try_orig(plain, w, k, c, known)) {
            *next = c + 1;
            return BACK_ORIGINATED;
        }
    }
    return BACK_NONE;
}

/* Remove every layer of a backward cell and report which hop made it. */
int onion_back_unwrap(uint8_t body[ONION_BODY], unsigned *origin, const struct onion_keys *keys,
                      unsigned n, uint64_t *next, const uint8_t cell[OVL_CELL_PAYLOAD])
{
    uint8_t w[OVL_CELL_PAYLOAD], plain[ONION_BODY];
    uint64_t nx[ONION_MAX_HOPS];
    int rc = OVL_ECRYPTO;

    if (!body || !origin || !keys || !next || !cell || n < 1 || n > ONION_MAX_HOPS)
        return OVL_EINVAL;
    memcpy(w, cell, OVL_CELL_PAYLOAD);
    memcpy(nx, next, n * sizeof(*nx));
    for (unsigned i = 0; i < n; i++) {
        enum back_result r =
            back_level(w, plain, &keys[i], &nx[i], ONION_JUNK - i * ONION_TAG, i + 1 < n);
        if (r == BACK_ORIGINATED) {
            memcpy(body, plain, ONION_BODY);
            memcpy(next, nx, n * sizeof(*nx));
            *origin = i;
            rc = 0;
            break;
        }
        if (r == BACK_NONE)
            break;
    }
    ovl_wipe(w, sizeof(w));
    ovl_wipe(plain, sizeof(plain));
    if (rc != 0)
        ovl_wipe(body, ONION_BODY);
    return rc;
}
